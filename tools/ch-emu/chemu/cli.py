"""Command line of cloud-hypervisor (the subset a manager uses) and process setup.

Accepted: --api-socket path=P|fd=N|P, --event-monitor path=P|fd=N, --log-file P, -v (repeat),
--seccomp true|false|log, --landlock, --no-shutdown, --version/-V, --help/-h; both
`--flag value` and `--flag=value`. Anything else is refused the way clap refuses it: a message
on stderr and exit status 2.
"""

import os
import signal
import socket
import sys
import time

from . import evloop, http, monitor, script, vmm
from .schema import Schema

USAGE = """Usage: cloud-hypervisor [OPTIONS]

ch-emu: a cloud-hypervisor v54 stand-in for tests (see tools/ch-emu/README.md).
Options:
  --api-socket <api-socket>        path=</path/to/a/file> or fd=<fd>
  --event-monitor <event-monitor>  path=</path/to/a/file> or fd=<fd>
  --log-file <log-file>            log file
  -v...                            verbosity (repeat for more)
  --seccomp <seccomp>              [possible values: true, false, log]
  --landlock                       accepted, no effect
  --no-shutdown                    keep the VMM alive when the guest powers off
  -V, --version                    print version and exit
  -h, --help                       print help
"""

VALUE_FLAGS = {"--api-socket", "--event-monitor", "--log-file", "--seccomp"}
BOOL_FLAGS = {"--landlock", "--no-shutdown"}


def clap_error(msg):
    sys.stderr.write(
        "error: %s\n\nUsage: cloud-hypervisor [OPTIONS]\n\nFor more information, try '--help'.\n"
        % msg
    )
    sys.exit(2)


def parse_args(argv):
    opts = {"verbose": 0}
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a in ("-V", "--version"):
            print("cloud-hypervisor v54.0.0 (ch-emu)")
            sys.exit(0)
        if a in ("-h", "--help"):
            sys.stdout.write(USAGE)
            sys.exit(0)
        if a.startswith("-") and not a.startswith("--") and len(a) > 1 and set(a[1:]) == {"v"}:
            opts["verbose"] += len(a) - 1
            continue
        name, eq, val = a.partition("=")
        if name in VALUE_FLAGS:
            if not eq:
                if i >= len(argv):
                    clap_error(
                        "a value is required for '%s <%s>' but none was supplied" % (name, name[2:])
                    )
                val = argv[i]
                i += 1
            if name in opts:
                clap_error(
                    "the argument '%s <%s>' cannot be used multiple times" % (name, name[2:])
                )
            opts[name] = val
        elif name in BOOL_FLAGS and not eq:
            opts[name] = True
        else:
            clap_error("unexpected argument '%s' found" % a)
    sec = opts.get("--seccomp", "true")
    if sec not in ("true", "false", "log"):
        clap_error(
            "invalid value '%s' for '--seccomp <seccomp>'\n"
            "  [possible values: true, false, log]" % sec
        )
    return opts


def parse_kv(flag, value):
    """`path=P` / `fd=N` (or a bare path) -> ("path", P) / ("fd", N)."""
    if "=" not in value:
        return "path", value
    out = {}
    for item in value.split(","):
        k, _, v = item.partition("=")
        if k not in ("path", "fd"):
            monitor.die("Error: %s: unknown parameter '%s'" % (flag, k))
        out[k] = v
    if "fd" in out:
        try:
            return "fd", int(out["fd"])
        except ValueError:
            monitor.die("Error: %s: invalid fd '%s'" % (flag, out["fd"]))
    if "path" in out and out["path"]:
        return "path", out["path"]
    monitor.die("Error: %s: path or fd required" % flag)


def open_api_socket(spec):
    kind, val = parse_kv("--api-socket", spec)
    if kind == "fd":
        try:
            s = socket.socket(fileno=val)
        except OSError as e:
            monitor.die("Error: --api-socket fd=%d: %s" % (val, e))
        s.set_inheritable(False)
        try:
            s.listen(64)
        except OSError as e:
            monitor.die("Error: --api-socket fd=%d: %s" % (val, e))
        return s, None
    path = val
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.bind(path)
    except OSError as e:
        if e.errno != 98:  # EADDRINUSE: a stale socket from a killed instance, or a live one
            monitor.die("Error: Error creation API server's socket: %s" % vmm_os_error(e))
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            probe.connect(path)
            monitor.die("Error: API socket is already in use: %s" % path)
        except OSError:
            pass
        finally:
            probe.close()
        os.unlink(path)
        try:
            s.bind(path)
        except OSError as e2:
            monitor.die("Error: Error creation API server's socket: %s" % vmm_os_error(e2))
    s.listen(64)
    return s, path


def vmm_os_error(e):
    return "%s (os error %d)" % (os.strerror(e.errno), e.errno)


def open_event_monitor(spec):
    kind, val = parse_kv("--event-monitor", spec)
    if kind == "fd":
        try:
            os.fstat(val)
        except OSError as e:
            monitor.die("Error: --event-monitor fd=%d: %s" % (val, e))
        os.set_inheritable(val, False)
        return val
    try:
        return os.open(val, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except OSError as e:
        monitor.die("Error: Error opening event monitor file: %s" % vmm_os_error(e))


def main(argv):
    t0 = time.monotonic()
    opts = parse_args(argv)
    log = monitor.Log(opts.get("--log-file"), opts["verbose"], t0)
    ev_fd = open_event_monitor(opts["--event-monitor"]) if "--event-monitor" in opts else None
    events = monitor.EventMonitor(ev_fd, t0)
    try:
        env_script = script.Script(script.parse(os.environ.get("CH_EMU_SCRIPT", "")))
    except script.ScriptError as e:
        monitor.die("Error: CH_EMU_SCRIPT: %s" % e)
    loop = evloop.Loop()
    api_sock, api_path = (None, None)
    if "--api-socket" in opts:
        api_sock, api_path = open_api_socket(opts["--api-socket"])
    schema = Schema.load()
    events.emit("vmm", "starting")
    v = vmm.Vmm(loop, schema, events, log, env_script, opts.get("--no-shutdown", False))
    server = http.Server(loop, api_sock, v.dispatch, log) if api_sock is not None else None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal(sig, v.terminate)
    log.info("vmm: ch-emu ready (pid %d)" % os.getpid())
    loop.run()
    v.cleanup()
    if server is not None:
        server.close()
    if api_path:
        try:
            os.unlink(api_path)
        except OSError:
            pass
    return v.exit_code if v.exit_code is not None else 0
