"""Tests for tools/ch-emu, the cloud-hypervisor v54 stand-in.

Run: /usr/bin/python3 -m pytest tests/ch-emu
Drives ch-emu directly over its Unix socket (http.client on AF_UNIX). The expected status
codes, error arrays and events come from ../shared/reference/cloud-hypervisor.md (observed on a
real v54 binary). The real-guest tests boot ../shared/tools/tinyguest under QEMU/TCG and are
skipped when QEMU or the compiler are missing. Never a fixed sleep where an outcome can be
polled: every wait has a deadline.
"""

import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHEMU = REPO / "tools" / "ch-emu" / "ch-emu"
SHARED = Path(os.environ.get("MVIRT_SHARED", REPO.parent / "shared"))


# ---------------------------------------------------------------- helpers
class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def request(conn, method, endpoint, body=None):
    data = None
    headers = {"Accept": "*/*"}
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, "/api/v1/" + endpoint, body=data, headers=headers)
    r = conn.getresponse()
    raw = r.read()
    return r.status, (json.loads(raw) if raw else None)


def wait_for(pred, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def parse_events(text):
    """Events by brace balance (raw_decode), as a manager must parse them."""
    dec = json.JSONDecoder()
    out, i = [], 0
    while True:
        while i < len(text) and text[i] in " \r\n\t":
            i += 1
        if i >= len(text):
            return out
        obj, i = dec.raw_decode(text, i)
        out.append(obj)


class Emu:
    """One ch-emu process with its API socket and event file in a private directory."""

    def __init__(self, tmp, args=(), env=None, api=True, script=None, pass_fds=(), api_arg=None):
        self.dir = Path(tmp)
        self.api = self.dir / "api.sock"
        self.ev = self.dir / "events"
        self.stderr_path = self.dir / "stderr"
        cmd = [str(CHEMU)]
        if api_arg:
            cmd += ["--api-socket", api_arg]
        elif api:
            cmd += ["--api-socket", "path=%s" % self.api]
        if "--event-monitor" not in args:
            cmd += ["--event-monitor", "path=%s" % self.ev]
        cmd += list(args)
        e = dict(os.environ)
        e.pop("CH_EMU_SCRIPT", None)
        e.pop("CH_EMU_GUEST", None)
        if script:
            e["CH_EMU_SCRIPT"] = script
        e.update(env or {})
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd, env=e, stdin=subprocess.DEVNULL, stdout=err, stderr=err, pass_fds=pass_fds
            )
        if api and not api_arg:
            wait_for(self._pingable, 10, "ch-emu API socket")

    def _pingable(self):
        if self.proc.poll() is not None:
            raise AssertionError("ch-emu exited early: %s" % self.stderr_path.read_text())
        try:
            return self.call("GET", "vmm.ping", timeout=1)[0] == 200
        except OSError:
            return False

    def call(self, method, endpoint, body=None, timeout=5.0):
        conn = UnixHTTPConnection(self.api, timeout)
        try:
            return request(conn, method, endpoint, body)
        finally:
            conn.close()

    def state(self):
        st, info = self.call("GET", "vm.info")
        return info["state"] if st == 200 else None

    def events(self):
        try:
            return parse_events(self.ev.read_text())
        except FileNotFoundError:
            return []

    def names(self):
        return ["%s/%s" % (e["source"], e["event"]) for e in self.events()]

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("ch-emu did not exit within %.0fs" % timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def emus():
    started = []
    yield started
    for e in started:
        e.kill()


@pytest.fixture
def emu(tmp_path, emus):
    def start(*args, **kw):
        d = tmp_path / ("e%d" % len(emus))
        d.mkdir()
        e = Emu(d, *args, **kw)
        emus.append(e)
        return e

    return start


def vm_config(tmp_path, cmdline="", serial=None, console=None, **extra):
    kernel = tmp_path / "vmlinux"
    if not kernel.exists():
        kernel.write_bytes(b"not a real kernel")
    cfg = {
        "payload": {"kernel": str(kernel), "cmdline": cmdline},
        "cpus": {"boot_vcpus": 1, "max_vcpus": 1},
        "memory": {"size": 64 << 20},
        "serial": serial or {"mode": "Null"},
        "console": console or {"mode": "Off"},
    }
    cfg.update(extra)
    return cfg


def api_error(status_body):
    status, body = status_body
    assert isinstance(body, list) and all(isinstance(x, str) for x in body), body
    return status, body


def connect_unix(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    return s


def read_until(sock, marker, timeout, buf=b""):
    deadline = time.monotonic() + timeout
    while marker not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for %r; got %r" % (marker, buf[-400:]))
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        if not d:
            raise AssertionError("EOF waiting for %r; got %r" % (marker, buf[-400:]))
        buf += d
    return buf


def read_eof(sock, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


# ---------------------------------------------------------------- command line
def test_version_and_unknown_flag():
    r = subprocess.run([str(CHEMU), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    assert r.stdout.strip() == "cloud-hypervisor v54.0.0 (ch-emu)"
    r = subprocess.run(
        [str(CHEMU), "--kernel-typo", "x"], capture_output=True, text=True, timeout=10
    )
    assert r.returncode != 0
    assert "--kernel-typo" in r.stderr
    r = subprocess.run(
        [str(CHEMU), "--seccomp", "maybe"], capture_output=True, text=True, timeout=10
    )
    assert r.returncode != 0 and "seccomp" in r.stderr


def test_ping_and_accepted_flags(emu):
    e = emu(args=["-v", "-v", "--seccomp", "false", "--landlock", "--log-file", "/dev/null"])
    st, body = e.call("GET", "vmm.ping")
    assert st == 200
    assert body == {
        "build_version": "v54.0.0",
        "version": "54.0.0",
        "pid": e.proc.pid,
        "features": ["kvm"],
    }
    ev = e.events()
    assert ev[0]["source"] == "vmm" and ev[0]["event"] == "starting"


# ---------------------------------------------------------------- lifecycle table
def test_lifecycle_state_table(emu, tmp_path):
    e = emu()
    st, body = api_error(e.call("GET", "vm.info"))
    assert (st, body[-1]) == (404, "VM is not created")
    assert body[:2] == ["Error from API", "The VM info is not available"]
    st, body = api_error(e.call("PUT", "vm.boot"))
    assert (st, body) == (404, ["Error from API", "The VM could not boot", "VM config is missing"])

    assert e.call("PUT", "vm.create", vm_config(tmp_path)) == (204, None)
    assert e.state() == "Created"
    st, body = api_error(e.call("PUT", "vm.create", vm_config(tmp_path)))
    assert (st, body[-1]) == (500, "VM is already created")

    assert e.call("PUT", "vm.boot") == (204, None)
    assert e.state() == "Running"
    st, body = api_error(e.call("PUT", "vm.boot"))
    assert (st, body[-1]) == (500, "VM is already created")

    assert e.call("PUT", "vm.pause") == (204, None)
    assert e.state() == "Paused"
    st, body = api_error(e.call("PUT", "vm.pause"))
    assert st == 500
    assert body[1] == "The VM could not be paused"
    assert body[-1] == "Invalid transition: InvalidStateTransition(Paused, Paused)"

    assert e.call("PUT", "vm.resume") == (204, None)
    assert e.state() == "Running"
    st, body = api_error(e.call("PUT", "vm.resume"))
    assert st == 500 and "InvalidStateTransition(Running, Running)" in body[-1]

    pid = e.proc.pid
    assert e.call("PUT", "vm.pause") == (204, None)
    assert e.call("PUT", "vm.reboot") == (204, None)  # reboot while paused comes back running
    assert e.state() == "Running"
    assert e.call("GET", "vmm.ping")[1]["pid"] == pid

    st, counters = e.call("GET", "vm.counters")
    assert st == 200 and isinstance(counters, dict)

    assert e.call("PUT", "vm.shutdown") == (204, None)
    assert e.state() == "Created"
    assert e.proc.poll() is None
    st, body = api_error(e.call("PUT", "vm.power-button"))
    assert st == 500
    assert body == ["Error from API", "Error triggering power button", "VM is not running"]
    st, body = api_error(e.call("PUT", "vm.shutdown"))
    assert (st, body[-1]) == (500, "VM is not running")
    st, body = api_error(e.call("PUT", "vm.pause"))
    assert (st, body[-1]) == (500, "VM is not running")
    st, body = api_error(e.call("PUT", "vm.reboot"))
    assert (st, body[-1]) == (404, "VM is not created")

    assert e.call("PUT", "vm.boot") == (204, None)  # boots again after a hard stop
    assert e.state() == "Running"
    assert e.call("PUT", "vm.delete") == (204, None)
    assert e.call("GET", "vm.info")[0] == 404
    assert e.call("PUT", "vm.delete") == (204, None)  # nothing to delete is fine
    assert e.proc.poll() is None

    st, _ = e.call("PUT", "vmm.shutdown")
    assert st == 200
    assert e.wait(10) == 0
    names = e.names()
    # vm.delete of a running VM shuts it down first; vmm.shutdown then has nothing to delete
    assert names[-5:] == ["vm/booting", "vm/booted", "vm/shutdown", "vm/deleted", "vmm/shutdown"]
    assert "vm/rebooting" in names and "vm/rebooted" in names
    assert names.count("vm/booted") == 2


def test_info_fills_defaults(emu, tmp_path):
    e = emu()
    disk = tmp_path / "d.raw"
    disk.write_bytes(b"\0" * 4096)
    cfg = {
        "payload": {"kernel": str(tmp_path / "k")},
        "memory": {"size": 128 << 20},
        "disks": [{"path": str(disk), "image_type": "Raw"}],
    }
    (tmp_path / "k").write_bytes(b"k")
    assert e.call("PUT", "vm.create", cfg) == (204, None)
    st, info = e.call("GET", "vm.info")
    assert st == 200
    c = info["config"]
    assert info["state"] == "Created"
    assert info["memory_actual_size"] == 128 << 20
    assert c["cpus"]["boot_vcpus"] == 1 and c["cpus"]["max_vcpus"] == 1
    assert c["serial"]["mode"] == "Null" and c["console"]["mode"] == "Tty"
    assert c["memory"]["size"] == 128 << 20 and c["memory"]["thp"] is True
    d = c["disks"][0]
    assert d["readonly"] is False and d["num_queues"] == 1 and d["queue_size"] == 128
    assert d["image_type"] == "Raw"
    assert c["payload"]["kernel"] == str(tmp_path / "k")
    assert c["iommu"] is False and c["pvpanic"] is False


# ---------------------------------------------------------------- schema
@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda c: c.update(bogus=1), "unknown field `bogus`"),
        (lambda c: c["memory"].update(sizee=1), "memory.sizee"),
        (lambda c: c["memory"].update(size="1G"), "memory.size"),
        (lambda c: c.pop("payload"), "missing field `payload`"),
        (lambda c: c["cpus"].pop("max_vcpus"), "missing field `max_vcpus`"),
        (lambda c: c["serial"].update(mode="Bogus"), "unknown variant `Bogus`"),
        (lambda c: c.update(disks=[{"path": "/x", "readonly": "yes"}]), "disks[0].readonly"),
        (lambda c: c.update(disks=[{"path": "/x", "pci_segment": 70000}]), "disks[0].pci_segment"),
        (lambda c: c["cpus"].update(boot_vcpus=0), "cpus.boot_vcpus"),
        (lambda c: c["memory"].update(size=-1), "memory.size"),
        (lambda c: c.update(net=[{"tap": "t0", "num_queues": 1.5}]), "net[0].num_queues"),
    ],
)
def test_schema_rejects_bad_bodies(emu, tmp_path, mutate, needle):
    e = emu()
    cfg = vm_config(tmp_path)
    mutate(cfg)
    st, body = api_error(e.call("PUT", "vm.create", cfg))
    assert st == 400
    assert body[0] == "Failed to deserialize JSON"
    assert needle in body[-1], body
    assert e.call("GET", "vm.info")[0] == 404  # nothing stored


def test_http_edge_cases(emu, tmp_path):
    e = emu()
    st, body = e.call("PUT", "vm.create", b"{not json")
    assert st == 400 and body[0] == "Failed to deserialize JSON"
    assert e.call("GET", "vm.boot") == (400, ["Bad Request"])  # wrong method
    assert e.call("PUT", "vm.info")[0] == 400
    st, _ = e.call("POST", "vm.boot")
    assert st == 400
    assert e.call("GET", "vm.nonexistent") == (404, ["Not Found"])
    assert e.call("PUT", "vm.boot", {"x": 1}) == (400, ["Bad Request"])  # action with a body
    assert e.call("PUT", "vm.create")[0] == 400  # no body

    # keep-alive: several requests and statuses on one connection
    conn = UnixHTTPConnection(e.api)
    try:
        assert request(conn, "GET", "vmm.ping")[0] == 200
        assert request(conn, "GET", "vm.info")[0] == 404
        assert request(conn, "PUT", "vm.create", vm_config(tmp_path))[0] == 204
        assert request(conn, "PUT", "vm.boot")[0] == 204
        assert request(conn, "GET", "vm.info")[1]["state"] == "Running"
    finally:
        conn.close()


def test_api_socket_fd(emu, tmp_path):
    path = tmp_path / "pre.sock"
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(str(path))
    ls.listen(8)
    fd = ls.fileno()
    e = emu(api_arg="fd=%d" % fd, pass_fds=(fd,))
    # The socket exists before ch-emu runs: no connect race, the request just waits.
    conn = UnixHTTPConnection(path)
    try:
        st, body = request(conn, "GET", "vmm.ping")
    finally:
        conn.close()
    ls.close()
    assert st == 200 and body["pid"] == e.proc.pid


# ---------------------------------------------------------------- events, exits
def test_event_stream_poweroff(emu, tmp_path):
    e = emu()
    assert e.call("PUT", "vm.create", vm_config(tmp_path, "chemu.poweroff_after=50")) == (204, None)
    assert e.call("PUT", "vm.boot") == (204, None)
    assert e.wait(10) == 0
    assert e.names() == [
        "vmm/starting",
        "vm/booting",
        "vm/booted",
        "vm/shutdown",
        "vm/deleted",
        "vmm/shutdown",
    ]
    text = e.ev.read_text()
    # pretty-printed objects separated by a blank line
    assert text.startswith('{\n  "timestamp": {\n    "secs": ')
    assert text.count("}\n\n{") == 5 and text.endswith("}\n\n")
    ev = e.events()
    assert all(x["properties"] is None for x in ev)
    ts = [x["timestamp"]["secs"] + x["timestamp"]["nanos"] / 1e9 for x in ev]
    assert ts == sorted(ts)
    assert not e.api.exists()


def test_event_stream_reboot_and_pause(emu, tmp_path):
    e = emu()
    e.call("PUT", "vm.create", vm_config(tmp_path))
    e.call("PUT", "vm.boot")
    assert e.call("PUT", "vm.reboot") == (204, None)
    assert e.call("PUT", "vm.pause") == (204, None)
    assert e.call("PUT", "vm.resume") == (204, None)
    assert e.names()[3:] == [
        "vm/rebooting",
        "vm/rebooted",
        "vm/pausing",
        "vm/paused",
        "vm/resuming",
        "vm/resumed",
    ]


def test_guest_initiated_reboot(emu, tmp_path):
    e = emu()
    e.call("PUT", "vm.create", vm_config(tmp_path, "chemu.reboot_after=40"))
    e.call("PUT", "vm.boot")
    wait_for(lambda: e.names().count("vm/rebooted") >= 2, 10, "two guest reboots")
    assert e.state() == "Running" and e.proc.poll() is None


def test_power_button_obeyed_and_ignored(emu, tmp_path):
    e = emu()
    e.call("PUT", "vm.create", vm_config(tmp_path))
    e.call("PUT", "vm.boot")
    t0 = time.monotonic()
    assert e.call("PUT", "vm.power-button") == (204, None)
    assert e.wait(10) == 0
    assert time.monotonic() - t0 < 5
    assert e.names()[-3:] == ["vm/shutdown", "vm/deleted", "vmm/shutdown"]

    e2 = emu()
    e2.call("PUT", "vm.create", vm_config(tmp_path, "chemu.ignore_power_button=1"))
    e2.call("PUT", "vm.boot")
    before = e2.names()
    assert e2.call("PUT", "vm.power-button") == (204, None)
    with pytest.raises(subprocess.TimeoutExpired):
        e2.proc.wait(0.3)
    assert e2.state() == "Running"
    assert e2.names() == before  # no event at all


def test_no_shutdown_keeps_vmm(emu, tmp_path):
    e = emu(args=["--no-shutdown"])
    e.call("PUT", "vm.create", vm_config(tmp_path, "chemu.poweroff_after=30"))
    e.call("PUT", "vm.boot")
    wait_for(lambda: "vm/shutdown" in e.names(), 10, "vm/shutdown event")
    assert e.state() == "Created"
    assert e.proc.poll() is None
    assert e.call("PUT", "vm.boot") == (204, None)


def test_sigterm_is_graceful(emu, tmp_path):
    e = emu()
    e.call("PUT", "vm.create", vm_config(tmp_path))
    e.call("PUT", "vm.boot")
    e.proc.send_signal(signal.SIGTERM)
    assert e.wait(10) == 0
    assert e.names()[-3:] == ["vm/shutdown", "vm/deleted", "vmm/shutdown"]


def test_sigkill_leaves_sockets_and_restart_clears_api_socket(emu, tmp_path):
    e = emu()
    ser = tmp_path / "serial.sock"
    e.call("PUT", "vm.create", vm_config(tmp_path, serial={"mode": "Socket", "socket": str(ser)}))
    e.call("PUT", "vm.boot")
    e.proc.kill()
    e.proc.wait()
    assert e.api.exists() and ser.exists()
    names = e.names()
    assert "vm/shutdown" not in names and "vmm/shutdown" not in names
    # a new process on the same path= clears the stale API socket itself
    e2 = Emu(e.dir)
    try:
        assert e2.call("GET", "vmm.ping")[1]["pid"] == e2.proc.pid
        # ... but a stale serial socket makes vm.create fail, with the config kept
        cfg = vm_config(tmp_path, serial={"mode": "Socket", "socket": str(ser)})
        st, body = api_error(e2.call("PUT", "vm.create", cfg))
        assert st == 500
        assert body[1] == "The VM could not be created"
        assert body[-1] == "Address already in use (os error 98)"
        assert e2.state() == "Created"
        assert e2.call("PUT", "vm.delete") == (204, None)
        assert e2.call("GET", "vm.info")[0] == 404
    finally:
        e2.kill()


def test_second_instance_on_live_api_socket_refused(emu):
    e = emu()
    r = subprocess.run(
        [str(CHEMU), "--api-socket", "path=%s" % e.api], capture_output=True, text=True, timeout=10
    )
    assert r.returncode != 0 and "in use" in r.stderr
    assert e.call("GET", "vmm.ping")[0] == 200


# ---------------------------------------------------------------- script hooks
def test_hang_only_that_call(emu, tmp_path):
    e = emu(script="chemu.hang=vm.boot")
    e.call("PUT", "vm.create", vm_config(tmp_path))
    with pytest.raises(socket.timeout):
        e.call("PUT", "vm.boot", timeout=0.5)
    assert e.call("GET", "vmm.ping")[0] == 200
    assert e.state() == "Created"
    assert e.proc.poll() is None


def test_delay_and_fail(emu, tmp_path):
    e = emu(script="chemu.delay=vm.info:300 chemu.fail=vm.pause")
    e.call("PUT", "vm.create", vm_config(tmp_path))
    e.call("PUT", "vm.boot")
    t0 = time.monotonic()
    assert e.call("GET", "vm.info")[0] == 200
    assert time.monotonic() - t0 >= 0.3
    st, body = api_error(e.call("PUT", "vm.pause"))
    assert st == 500 and body[1] == "The VM could not be paused"
    assert e.state() == "Running"


def test_script_typo_fails_loudly(emu, tmp_path):
    e = emu()
    st, body = api_error(e.call("PUT", "vm.create", vm_config(tmp_path, "chemu.poweroff_aftr=5")))
    assert st == 500 and "chemu.poweroff_aftr" in body[-1]
    st, body = api_error(e.call("PUT", "vm.create", vm_config(tmp_path, "chemu.delay=vm.boot")))
    assert st == 500 and "chemu.delay" in body[-1]
    r = subprocess.run([str(CHEMU)], env=dict(os.environ, CH_EMU_SCRIPT="chemu.nope=1"),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "chemu.nope" in r.stderr


def test_event_monitor_fd_and_lost_exit_events(emu, tmp_path):
    r, w = os.pipe()
    e = emu(args=["--event-monitor", "fd=%d" % w], pass_fds=(w,))
    os.close(w)
    cfg = vm_config(tmp_path, "chemu.poweroff_after=20 chemu.lose_exit_events=1")
    e.call("PUT", "vm.create", cfg)
    e.call("PUT", "vm.boot")
    assert e.wait(10) == 0  # the exit status is the truth...
    text = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        text += chunk
    os.close(r)
    names = ["%s/%s" % (x["source"], x["event"]) for x in parse_events(text.decode())]
    assert names == ["vmm/starting", "vm/booting", "vm/booted"]  # ...the events are a hint


@pytest.mark.parametrize("script, expect", [("chemu.crash_after=30", -signal.SIGSEGV),
                                            ("chemu.crash_after=30 chemu.exit_code=3", 3)])
def test_crash(emu, tmp_path, script, expect):
    e = emu()
    e.call("PUT", "vm.create", vm_config(tmp_path, script))
    e.call("PUT", "vm.boot")
    assert e.wait(10) == expect
    assert e.api.exists()
    assert "vmm/shutdown" not in e.names()


def test_panic_event(emu, tmp_path):
    e = emu()
    e.call("PUT", "vm.create", vm_config(tmp_path, "chemu.panic_after=20"))
    e.call("PUT", "vm.boot")
    wait_for(lambda: "guest/panic" in e.names(), 10, "guest/panic event")
    assert e.state() == "Running"


def test_timers_stop_while_paused(emu, tmp_path):
    e = emu()
    e.call("PUT", "vm.create", vm_config(tmp_path, "chemu.poweroff_after=200"))
    e.call("PUT", "vm.boot")
    e.call("PUT", "vm.pause")
    with pytest.raises(subprocess.TimeoutExpired):
        e.proc.wait(0.4)
    e.call("PUT", "vm.resume")
    assert e.wait(10) == 0


# ---------------------------------------------------------------- serial
def test_serial_socket_rules(emu, tmp_path):
    ser = tmp_path / "serial.sock"
    e = emu()
    cfg = vm_config(tmp_path, 'chemu.print="line one|line two" chemu.echo=1',
                    serial={"mode": "Socket", "socket": str(ser)})
    assert e.call("PUT", "vm.create", cfg) == (204, None)
    assert ser.exists()  # bound at vm.create
    e.call("PUT", "vm.boot")
    # no client during boot: the output waits in the ring and is replayed
    c1 = connect_unix(ser)
    buf = read_until(c1, b"chemu> ", 10)
    assert b"line one\r\nline two\r\n" in buf
    c1.sendall(b"hi\r")
    read_until(c1, b"you typed 'hi' (ended by \\r)", 10)
    c1.sendall(b"ab")
    time.sleep(0.05)  # two writes: "ab" then a lone "\n", which reaches the guest as "\r"
    c1.sendall(b"\n")
    read_until(c1, b"you typed 'ab' (ended by \\r)", 10)
    # a second client replaces the first: EOF on the first
    c2 = connect_unix(ser)
    assert read_eof(c1, 5)
    c1.close()
    c2.sendall(b"x")
    read_until(c2, b"x", 5)
    # a client disconnect injects 0x00 into the guest input
    c2.close()
    c3 = connect_unix(ser)
    c3.sendall(b"\r")
    read_until(c3, b"you typed 'x\\x00' (ended by \\r)", 10)
    # reboot: the socket is unlinked and bound again; the client gets EOF
    e.call("PUT", "vm.reboot")
    assert read_eof(c3, 5)
    c3.close()
    c4 = wait_for(lambda: _try_connect(ser), 5, "serial socket after reboot")
    buf = read_until(c4, b"(boot 2)", 10)
    assert b"(boot 1)" not in buf
    c4.close()
    e.call("PUT", "vmm.shutdown")
    assert e.wait(10) == 0
    assert not ser.exists()


def _try_connect(path):
    try:
        return connect_unix(path)
    except OSError:
        return None


def test_serial_file_truncated_at_boot_and_reboot(emu, tmp_path):
    log = tmp_path / "serial.log"
    log.write_text("old content\n")
    e = emu()
    e.call("PUT", "vm.create", vm_config(tmp_path, "chemu.print=MARK",
                                         serial={"mode": "File", "file": str(log)}))
    assert log.read_bytes() == b""  # created (truncated) at vm.create
    e.call("PUT", "vm.boot")
    out = wait_for(lambda: log.read_bytes() if b"MARK" in log.read_bytes() else None, 5, "MARK")
    assert b"(boot 1)" in out
    e.call("PUT", "vm.reboot")
    out = wait_for(
        lambda: log.read_bytes() if b"(boot 2)" in log.read_bytes() else None, 5, "boot 2"
    )
    assert b"(boot 1)" not in out and out.count(b"MARK") == 1


def test_serial_pty(emu, tmp_path):
    e = emu()
    e.call("PUT", "vm.create", vm_config(tmp_path, "chemu.echo=1", serial={"mode": "Pty"}))
    path = e.call("GET", "vm.info")[1]["config"]["serial"]["file"]
    assert path.startswith("/dev/pts/")
    e.call("PUT", "vm.boot")
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, b"ping\r")
        buf = b""
        deadline = time.monotonic() + 5
        while b"you typed 'ping'" not in buf and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                buf += os.read(fd, 4096)
        assert b"you typed 'ping'" in buf
    finally:
        os.close(fd)
    e.call("PUT", "vm.reboot")
    assert e.call("GET", "vm.info")[1]["config"]["serial"]["file"].startswith("/dev/pts/")


def test_console_socket_refused(emu, tmp_path):
    e = emu()
    cfg = vm_config(tmp_path, console={"mode": "Socket", "socket": str(tmp_path / "c")})
    st, body = api_error(e.call("PUT", "vm.create", cfg))
    assert st == 500 and "No socket option support for console device" in body[-1]
    assert e.state() == "Created"


def test_boot_checks_files(emu, tmp_path):
    e = emu()
    cfg = vm_config(tmp_path, disks=[{"path": str(tmp_path / "missing.raw"), "image_type": "Raw"}])
    e.call("PUT", "vm.create", cfg)
    st, body = api_error(e.call("PUT", "vm.boot"))
    assert st == 500 and body[-1] == "No such file or directory (os error 2)"
    assert e.state() == "Created"


# ---------------------------------------------------------------- real guest (QEMU + tinyguest)
@pytest.fixture(scope="session")
def tinyguest(tmp_path_factory):
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 not installed")
    src = SHARED / "tools" / "tinyguest"
    if not (src / "Makefile").exists():
        pytest.skip("tinyguest sources not found at %s (set MVIRT_SHARED)" % src)
    out = tmp_path_factory.mktemp("tinyguest")
    r = subprocess.run(["make", "-s", "-C", str(src), "B=%s" % out], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot build tinyguest: %s" % r.stderr[-500:])
    return out / "tinyguest.elf"


def _fd_targets(pid):
    out = {}
    d = "/proc/%d/fd" % pid
    for n in os.listdir(d):
        try:
            out[int(n)] = os.readlink(os.path.join(d, n))
        except OSError:
            pass
    return out


def _children(pid):
    kids = []
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            text = Path("/proc/%d/task/%s/children" % (pid, t)).read_text()
            kids += [int(x) for x in text.split()]
        except OSError:
            pass
    return kids


def test_real_guest_socket(emu, tmp_path, tinyguest):
    ser = tmp_path / "serial.sock"
    e = emu(env={"CH_EMU_GUEST": "real"})
    cfg = vm_config(tmp_path, serial={"mode": "Socket", "socket": str(ser)})
    cfg["payload"] = {"kernel": str(tinyguest), "cmdline": "tg.tick=0"}
    assert e.call("PUT", "vm.create", cfg) == (204, None)
    c = connect_unix(ser)  # before boot: accepted once the guest exists
    assert e.call("PUT", "vm.boot", timeout=30) == (204, None)
    read_until(c, b"tg> ", 30)

    # QEMU holds nothing of ours beyond what was passed on purpose
    qemu = wait_for(lambda: _children(e.proc.pid), 5, "qemu child")
    q = _fd_targets(qemu[0])
    mine = set(_fd_targets(e.proc.pid).values())
    leaked = {fd: t for fd, t in q.items() if fd > 2 and t in mine}
    assert not leaked, leaked

    c.sendall(b"help\r")
    read_until(c, b"commands:", 30)

    assert e.call("PUT", "vm.pause") == (204, None)
    assert e.state() == "Paused"
    c.sendall(b"info\r")
    c.settimeout(0.3)
    got = b""
    try:
        got = c.recv(4096)
    except socket.timeout:
        pass
    assert b"state: irq=" not in got  # a paused guest does not answer...
    assert e.call("PUT", "vm.resume") == (204, None)
    read_until(c, b"state: irq=", 30, got)  # ...until resumed

    assert e.call("PUT", "vm.reboot", timeout=30) == (204, None)
    assert read_eof(c, 10)
    c.close()
    c = wait_for(lambda: _try_connect(ser), 10, "serial socket after reboot")
    read_until(c, b"hello from a tiny PVH guest", 30)
    read_until(c, b"tg> ", 30)

    c.sendall(b"reboot\r")  # guest-initiated ACPI reset: same process, new QEMU
    assert read_eof(c, 30)
    c.close()
    wait_for(lambda: e.names().count("vm/rebooted") >= 2, 30, "guest reboot events")
    c = wait_for(lambda: _try_connect(ser), 10, "serial socket after guest reboot")
    read_until(c, b"tg> ", 30)
    assert e.state() == "Running"

    t0 = time.monotonic()
    assert e.call("PUT", "vm.power-button") == (204, None)
    assert e.wait(30) == 0
    assert time.monotonic() - t0 < 30
    assert e.names()[-3:] == ["vm/shutdown", "vm/deleted", "vmm/shutdown"]
    wait_for(lambda: not _alive(qemu[0]), 10, "qemu gone")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        st = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return st not in ("Z", "X")


def test_real_guest_file_poweroff_and_shutdown(emu, tmp_path, tinyguest):
    log = tmp_path / "serial.log"
    e = emu(args=["--no-shutdown"], env={"CH_EMU_GUEST": "real"})
    cfg = vm_config(tmp_path, serial={"mode": "File", "file": str(log)})
    cfg["payload"] = {"kernel": str(tinyguest), "cmdline": "tg.auto=poweroff tg.delay=100"}
    e.call("PUT", "vm.create", cfg)
    assert e.call("PUT", "vm.boot", timeout=30) == (204, None)
    wait_for(lambda: b"hello from a tiny PVH guest" in log.read_bytes(), 30, "serial banner")
    wait_for(lambda: "vm/shutdown" in e.names(), 30, "guest power-off")
    assert e.state() == "Created" and e.proc.poll() is None
    assert b"power off (tg.auto)" in log.read_bytes()

    # boot again (file truncated), then a hard stop through vm.shutdown ends QEMU
    cfg_tick = e.call("GET", "vm.info")[1]["config"]
    assert cfg_tick["payload"]["kernel"] == str(tinyguest)
    e.call("PUT", "vm.delete")
    cfg["payload"]["cmdline"] = "tg.tick=0"
    e.call("PUT", "vm.create", cfg)
    assert e.call("PUT", "vm.boot", timeout=30) == (204, None)
    wait_for(lambda: b"tg> " in log.read_bytes(), 30, "prompt in serial file")
    assert b"power off" not in log.read_bytes()  # truncated at boot
    qemu = _children(e.proc.pid)
    assert qemu
    assert e.call("PUT", "vm.shutdown", timeout=30) == (204, None)
    assert e.state() == "Created"
    wait_for(lambda: not _alive(qemu[0]), 10, "qemu gone after vm.shutdown")
    # SIGTERM with a running QEMU: graceful exit, QEMU killed
    assert e.call("PUT", "vm.boot", timeout=30) == (204, None)
    qemu = _children(e.proc.pid)
    e.proc.send_signal(signal.SIGTERM)
    assert e.wait(30) == 0
    wait_for(lambda: not _alive(qemu[0]), 10, "qemu gone after SIGTERM")


def test_real_guest_dies_with_chemu(emu, tmp_path, tinyguest):
    e = emu(env={"CH_EMU_GUEST": "real"})
    cfg = vm_config(tmp_path)
    cfg["payload"] = {"kernel": str(tinyguest), "cmdline": "tg.tick=0"}
    e.call("PUT", "vm.create", cfg)
    assert e.call("PUT", "vm.boot", timeout=30) == (204, None)
    qemu = wait_for(lambda: _children(e.proc.pid), 5, "qemu child")
    e.proc.kill()  # no cleanup possible: PR_SET_PDEATHSIG must take QEMU down
    e.proc.wait()
    wait_for(lambda: not _alive(qemu[0]), 10, "qemu gone after SIGKILL of ch-emu")


def test_counters_shape(emu, tmp_path):
    """vm.counters (VmCounters: {device id: {counter: int}}): 500 until booted; then every
    disk's virtio-block counters, unnamed disks named as upstream names them at boot (one
    counter over unnamed devices: _disk0, _disk1 ...; named ones keep their id)."""
    e = emu()
    disks = []
    for i, did in enumerate((None, "data", None)):
        p = tmp_path / ("d%d.raw" % i)
        p.write_bytes(b"\0" * 4096)
        disks.append({"path": str(p), "image_type": "Raw", **({"id": did} if did else {})})
    assert e.call("PUT", "vm.create", vm_config(tmp_path, disks=disks)) == (204, None)
    st, body = api_error(e.call("GET", "vm.counters"))
    assert st == 500 and body[-1] == "VM is not running"
    assert e.call("PUT", "vm.boot") == (204, None)
    st, counters = e.call("GET", "vm.counters")
    assert st == 200
    want = {"read_bytes": 0, "read_ops": 0, "write_bytes": 0, "write_ops": 0}
    assert counters == {"_disk0": want, "data": want, "_disk1": want}
