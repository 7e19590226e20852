"""End-to-end tests of `mvirt console`, `mvirt logs` and `mvirt events` (issue 4): the real CLI
against a real mvirt-vmm whose hypervisor is tools/ch-emu (fixtures in conftest.py).

`mvirt console` runs on a pseudo-terminal (os.openpty): the tests type into the master side,
read what the CLI writes, and compare the slave's termios before the start and after the exit
(and check raw mode while attached, so that "restored" means something). Guests are simulated
(chemu.echo answers typed lines, chemu.print and chemu.tick print), except one tinyguest booted
for real under QEMU/TCG (`chemu.guest=real`), which echoes input and answers unknown lines with
`tinyguest: unknown command '...'`.

What the CLI prints is checked against what the daemon says through an independent client
(grpcio): console errors carry the daemon's status message, `logs` equals GetConsoleLog, and
`events -o json` equals the canonical proto3 JSON of the VmEvents a grpcio watcher receives.
Waits poll against generous deadlines.

Exit statuses: 0 ok (detach, VM stopped), 1 daemon error, 2 usage, 3 unreachable, 128+N signal N.
"""

import json
import os
import re
import secrets
import select
import signal
import subprocess
import termios
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

import mvirt_proto

pb = mvirt_proto.mvirt_pb2
REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30.0
CALL_TIMEOUT = 60
ESCAPE = b"\x1d"  # Ctrl+]
HINT = b"escape character is ^]"


# ---- helpers ----------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def cli(cli_binary) -> str:
    return str(cli_binary)


@pytest.fixture
def sim(emulated):
    if not emulated:
        pytest.skip("simulated guests and chemu.* scripts need ch-emu, not $MVIRT_TEST_CH")


def env_without_server():
    return {k: v for k, v in os.environ.items() if k != "MVIRT_SERVER"}


def run_cli(cli, server, *args, timeout=60, stdin=subprocess.DEVNULL):
    """Runs mvirt -s server args...; returns (rc, stdout bytes, stderr text)."""
    res = subprocess.run([cli, "-s", server, *map(str, args)], stdin=stdin, capture_output=True,
                         timeout=timeout, env=env_without_server())
    return res.returncode, res.stdout, res.stderr.decode(errors="replace")


def wait_for(pred, what, deadline=DEADLINE, interval=0.02):
    end = time.monotonic() + deadline
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < end, f"timed out after {deadline}s waiting for {what}"
        time.sleep(interval)


def create(d, name, files, cmdline="", **config):
    cfg = dict(vcpus=1, memory_mb=128, kernel=files["kernel"], cmdline=cmdline)
    cfg.update(config)
    return d.call("CreateVm", pb.CreateVmRequest(name=name, config=pb.VmConfig(**cfg)))


def start(d, vm):
    vm = d.call("StartVm", pb.StartVmRequest(vm=vm), timeout=CALL_TIMEOUT)
    assert vm.state == pb.VM_STATE_RUNNING, vm.state_reason
    return vm


def stop(d, vm, force=False):
    return d.call("StopVm", pb.StopVmRequest(vm=vm, force=force), timeout=CALL_TIMEOUT)


def state(d, vm):
    return d.call("GetVm", pb.GetVmRequest(vm=vm)).state


def console_log(d, vm, tail=0) -> bytes:
    return d.call("GetConsoleLog", pb.GetConsoleLogRequest(vm=vm, tail_bytes=tail)).data


def console_error(d, vm):
    """(code, details) of a Console call the daemon refuses, from an independent client."""
    fn = d.channel().stream_stream("/mvirt.VmService/Console",
                                   request_serializer=pb.ConsoleRequest.SerializeToString,
                                   response_deserializer=pb.ConsoleResponse.FromString)
    with pytest.raises(grpc.RpcError) as e:
        for _ in fn(iter([pb.ConsoleRequest(vm=vm)]), timeout=10):
            pass
    return e.value.code(), e.value.details()


def is_raw(attrs) -> bool:
    iflag, oflag, cflag, lflag = attrs[:4]
    return not (lflag & (termios.ICANON | termios.ECHO | termios.ISIG)) and not (
        oflag & termios.OPOST) and not (iflag & termios.ICRNL)


class PtyCli:
    """The CLI with a pseudo-terminal as stdin, stdout and stderr. A thread collects what it
    writes (the master side's output); send() types. before: the slave's termios at the start."""

    def __init__(self, argv):
        self.master, self.slave = os.openpty()
        self.before = termios.tcgetattr(self.slave)
        self.argv = argv
        self.lock = threading.Lock()
        self.buf = bytearray()
        self.stop = False
        self.proc = subprocess.Popen(argv, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                     start_new_session=True, env=env_without_server())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stop:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            with self.lock:
                self.buf += data

    @property
    def out(self) -> bytes:
        with self.lock:
            return bytes(self.buf)

    def expect(self, needle: bytes, timeout=DEADLINE, after=0) -> int:
        """Waits for needle in the output (from offset after); returns the offset past it."""
        def seen():
            i = self.out.find(needle, after)
            return i + len(needle) if i >= 0 else None
        end = time.monotonic() + timeout
        while True:
            i = seen()
            if i is not None:
                return i
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader take the last bytes
                i = seen()
                if i is not None:
                    return i
                pytest.fail(f"{self.argv} exited ({self.proc.returncode}) before printing "
                            f"{needle!r}; output: {self.out!r}")
            if time.monotonic() > end:
                pytest.fail(f"no {needle!r} within {timeout}s; output: {self.out!r}")
            time.sleep(0.01)

    def send(self, data: bytes):
        os.write(self.master, data)

    def termios(self):
        return termios.tcgetattr(self.slave)

    def wait(self, timeout=DEADLINE) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.argv} still running after {timeout}s; output: {self.out!r}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stop = True
        self.thread.join()
        os.close(self.master)
        os.close(self.slave)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Bg:
    """A background CLI process whose stdout lines a thread collects."""

    def __init__(self, argv):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env_without_server())
        self.lock = threading.Lock()
        self._lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.lock:
                self._lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def lines(self):
        with self.lock:
            return list(self._lines)

    def wait_line(self, pred, what, deadline=DEADLINE):
        def check():
            if self.proc.poll() is not None:
                self.thread.join(timeout=5)
                found = [l for l in self.lines if pred(l)]
                assert found, (f"{self.argv} exited ({self.proc.returncode}) before {what}; "
                               f"stdout: {self.lines}; stderr: {self.proc.stderr.read()!r}")
                return found
            return [l for l in self.lines if pred(l)]
        return wait_for(check, f"{what}; got {self.lines}", deadline)

    def finish(self, timeout=DEADLINE):
        """Waits for the exit; returns (rc, stderr text)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.argv} still running after {timeout}s; stdout: {self.lines}")
        self.thread.join(timeout=5)
        return rc, self.proc.stderr.read().decode(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.thread.join(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()


def kill_all(d):
    """No VM process may outlive a test (conftest checks): kill what still runs."""
    if not d.running():
        return
    for vm in d.call("ListVms").vms:
        if vm.pid:
            d.call("KillVm", pb.KillVmRequest(vm=vm.id), timeout=CALL_TIMEOUT)


@pytest.fixture
def ch(make_ch_daemon):
    """ch, and at teardown every VM of its daemons killed."""
    made = []

    def factory(**kw):
        made.append(make_ch_daemon(**kw))
        return made[-1]

    yield factory
    for d in made:
        kill_all(d)


@pytest.fixture
def procs():
    """Background CLI processes, killed at teardown whatever happened."""
    started = []
    yield started
    for p in started:
        if isinstance(p, Bg):
            p.kill()
        else:
            p.close()


def tinyguest_elf(build_dir) -> Path:
    """tinyguest.elf via tests/e2e/guest.py, else built with make from the shared sources."""
    try:
        from guest import tinyguest
    except ImportError:
        tinyguest = None
    if tinyguest is not None:
        return tinyguest(build_dir)
    shared = Path(os.environ.get("MVIRT_SHARED", REPO.parent / "shared"))
    src = shared / "tools" / "tinyguest"
    if not (src / "Makefile").is_file():
        pytest.skip(f"no tinyguest sources at {src} (set MVIRT_SHARED)")
    out = Path(build_dir) / "tinyguest-cli"
    res = subprocess.run(["make", "-s", "-C", str(src), f"B={out}", str(out / "tinyguest.elf")],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot build tinyguest: {res.stdout}{res.stderr}")
    return out / "tinyguest.elf"


def event_fields(line: str):
    """A table line of `mvirt events`: (name, event, state, reason)."""
    parts = line.split(None, 5)
    assert len(parts) == 6 and re.fullmatch(r"\d{4}-\d\d-\d\d", parts[0]) and re.fullmatch(
        r"\d\d:\d\d:\d\d\.\d{3}", parts[1]), line
    return tuple(parts[2:])


def is_header(line: str) -> bool:
    return re.match(r"^TIME\s+VM\s+EVENT\s+STATE\s+REASON$", line) is not None


# ---- console ----------------------------------------------------------------------------------

def test_console_real_tinyguest_on_a_pty(ch, build_dir, emulated, cli, procs):
    """The issue's proof: a guest booted for real, a word typed through the real CLI on a
    pseudo-terminal, the guest's answer read back, Ctrl+] detaches, the terminal is as before."""
    from guest import require_tools, wait_console

    if emulated:
        require_tools("qemu-system-x86_64")
    elf = tinyguest_elf(build_dir)
    d = ch()
    vm = create(d, "tiny", {"kernel": str(elf)}, "chemu.guest=real")
    start(d, "tiny")
    wait_console(d, vm.id, "tg> ", timeout=90)

    c = PtyCli([cli, "-s", d.unix_addr, "console", "--history", "256", "tiny"])
    procs.append(c)
    end_hint = c.expect(HINT)
    assert is_raw(c.termios()), "the terminal is not in raw mode while attached"
    c.expect(b"tg> ", after=end_hint)  # the history replays the prompt
    word = "w" + secrets.token_hex(5)
    mark = len(c.out)
    c.send(word.encode() + b"\r")
    c.expect(f"tinyguest: unknown command '{word}'".encode(), timeout=60, after=mark)
    c.send(ESCAPE)
    assert c.wait() == 0, c.out
    assert c.termios() == c.before, "terminal mode not restored after Ctrl+]"

    assert state(d, "tiny") == pb.VM_STATE_RUNNING  # detaching never disturbs the VM
    assert f"tinyguest: unknown command '{word}'".encode() in console_log(d, "tiny")
    stopped = d.call("StopVm", pb.StopVmRequest(vm="tiny"), timeout=120)
    assert stopped.state == pb.VM_STATE_STOPPED, stopped.state_reason


def test_console_over_tcp_simulated_guest(ch, vm_files, sim, cli, procs):
    d = ch()
    create(d, "echo", vm_files, "chemu.echo=1")
    start(d, "echo")

    c = PtyCli([cli, "-s", d.tcp_addr, "console", "echo"])
    procs.append(c)
    c.expect(HINT)
    assert is_raw(c.termios())
    word = "t" + secrets.token_hex(5)
    mark = len(c.out)
    c.send(word.encode() + b"\r")
    # The raw terminal passes CR unchanged (no ICRNL): the guest sees the line ended by \r.
    c.expect(f"chemu: you typed '{word}' (ended by \\r)".encode(), after=mark)
    c.send(b"more" + ESCAPE + b"ignored\r")
    assert c.wait() == 0, c.out
    assert c.termios() == c.before
    assert state(d, "echo") == pb.VM_STATE_RUNNING
    # What was typed before Ctrl+] reached the guest; nothing after it did.
    log = wait_for(lambda: (lambda b: b if b"more" in b else None)(console_log(d, "echo")),
                   "the bytes typed before Ctrl+] in the console log")
    assert b"ignored" not in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT])
def test_console_signal_restores_the_terminal(ch, vm_files, sim, cli, procs, sig):
    d = ch()
    create(d, "sig", vm_files, "chemu.tick=50")
    start(d, "sig")

    c = PtyCli([cli, "-s", d.unix_addr, "console", "sig"])
    procs.append(c)
    end_hint = c.expect(HINT)
    c.expect(b"chemu: tick", after=end_hint)  # attached, output flowing
    assert is_raw(c.termios())
    c.proc.send_signal(sig)
    rc = c.wait()
    assert rc == 128 + sig, (rc, c.out)
    assert c.termios() == c.before, f"terminal mode not restored after signal {sig}"
    assert state(d, "sig") == pb.VM_STATE_RUNNING


def test_console_ends_when_the_vm_stops(ch, vm_files, sim, cli, procs):
    d = ch()
    create(d, "down", vm_files, "chemu.echo=1")
    start(d, "down")

    c = PtyCli([cli, "-s", d.unix_addr, "console", "down"])
    procs.append(c)
    end_hint = c.expect(HINT)
    stopped = stop(d, "down")
    assert stopped.state == pb.VM_STATE_STOPPED
    rc = c.wait()
    assert rc == 0, c.out
    assert re.search(rb"\[mvirt: [^\]\r\n]+\]\r\n", c.out[end_hint:]), c.out
    assert c.termios() == c.before


def test_console_with_stdin_not_a_terminal(ch, vm_files, sim, cli, procs):
    """A pipe as stdin: forwarded as is, its end only stops the input; output goes on until
    interrupted."""
    d = ch()
    create(d, "pipe", vm_files, "chemu.echo=1 chemu.tick=100")
    start(d, "pipe")

    p = subprocess.Popen([cli, "-s", d.unix_addr, "console", "pipe"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_without_server())
    word = "p" + secrets.token_hex(4)
    p.stdin.write(word.encode() + b"\x1d\n")  # no escape character off a terminal
    p.stdin.close()
    out = bytearray()

    def read_some():
        r, _, _ = select.select([p.stdout], [], [], 0.1)
        if r:
            out.extend(os.read(p.stdout.fileno(), 65536))
        return out

    try:
        wait_for(lambda: f"you typed '{word}\\x1d' (ended by \\n)".encode() in read_some(),
                 "the guest's answer")
        n = int(re.findall(rb"chemu: tick (\d+)", bytes(out))[-1]) if b"tick" in out else 0
        wait_for(lambda: any(int(t) > n + 1 for t in re.findall(rb"chemu: tick (\d+)",
                                                                 read_some())),
                 "output after the end of stdin")
        assert p.poll() is None
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=DEADLINE) == 128 + signal.SIGINT
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
    assert state(d, "pipe") == pb.VM_STATE_RUNNING


def test_console_refused_for_a_stopped_or_unknown_vm(ch, vm_files, cli, procs):
    d = ch()
    create(d, "off", vm_files)

    code, details = console_error(d, "off")
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    c = PtyCli([cli, "-s", d.unix_addr, "console", "off"])
    procs.append(c)
    assert c.wait() == 1, c.out
    time.sleep(0.2)
    assert f"mvirt: {details}".encode() in c.out, c.out
    assert HINT not in c.out
    assert c.termios() == c.before

    code, details = console_error(d, "nosuchvm")
    assert code == grpc.StatusCode.NOT_FOUND
    rc, _, err = run_cli(cli, d.unix_addr, "console", "nosuchvm")
    assert rc == 1 and f"mvirt: {details}" in err, err


# ---- logs -------------------------------------------------------------------------------------

def ticks(data: bytes):
    return [int(n) for n in re.findall(rb"chemu: tick (\d+)", data)]


def test_logs_after_restart_tail_and_follow(ch, vm_files, sim, cli, procs):
    d = ch()
    create(d, "lg", vm_files, 'chemu.print="boot-alpha|boot-beta" chemu.tick=100')
    start(d, "lg")
    wait_for(lambda: b"boot-beta" in run_cli(cli, d.unix_addr, "logs", "lg")[1],
             "the boot lines in `mvirt logs`")

    d.restart()
    rc, out, err = run_cli(cli, d.unix_addr, "logs", "lg")
    assert rc == 0, err
    assert b"boot-alpha" in out and b"boot-beta" in out, out
    assert console_log(d, "lg").startswith(out)  # the same bytes GetConsoleLog has
    if state(d, "lg") != pb.VM_STATE_RUNNING:
        start(d, "lg")

    # -f: the recent history, then new output, until the VM powers off.
    before = ticks(console_log(d, "lg"))
    last = max(before) if before else 0
    f = Bg([cli, "-s", d.unix_addr, "logs", "-f", "lg"])
    procs.append(f)
    f.wait_line(lambda l: "boot-beta" in l, "the boot lines replayed by -f")
    f.wait_line(lambda l: any(t > last + 1 for t in ticks(l.encode())), "a new tick")
    assert f.proc.poll() is None
    stopped = stop(d, "lg")
    assert stopped.state == pb.VM_STATE_STOPPED
    rc, err = f.finish()
    assert rc == 0, err
    assert re.search(r"^\[mvirt: .+\]$", err, re.M), err

    # --tail on the (now stable) log of the stopped VM.
    rc, full, err = run_cli(cli, d.unix_addr, "logs", "lg")
    assert rc == 0, err
    assert full == console_log(d, "lg")
    for n in (1, 13, len(full) // 2, len(full), len(full) + 100):
        rc, out, err = run_cli(cli, d.unix_addr, "logs", "--tail", n, "lg")
        assert rc == 0, err
        assert out == full[-n:], n
    rc, out, err = run_cli(cli, d.unix_addr, "logs", "-n", "0", "lg")
    assert (rc, out) == (0, b""), err
    rc, out, err = run_cli(cli, d.unix_addr, "-o", "json", "logs", "--tail", 13, "lg")
    assert rc == 0, err
    assert json.loads(out) == json_format.MessageToDict(
        d.call("GetConsoleLog", pb.GetConsoleLogRequest(vm="lg", tail_bytes=13)),
        preserving_proto_field_name=True, including_default_value_fields=True)

    # -f needs a running VM: the daemon's refusal.
    code, details = console_error(d, "lg")
    rc, out, err = run_cli(cli, d.unix_addr, "logs", "-f", "lg")
    assert rc == 1 and f"mvirt: {details}" in err, err
    rc, out, err = run_cli(cli, d.unix_addr, "logs", "nosuchvm")
    assert rc == 1 and err.startswith("mvirt: "), err


# ---- events -----------------------------------------------------------------------------------

class GrpcWatcher:
    """An independent WatchVms stream (grpcio) collecting VmEvents."""

    def __init__(self, d, vm=""):
        fn = d.channel().unary_stream("/mvirt.VmService/WatchVms",
                                      request_serializer=pb.WatchVmsRequest.SerializeToString,
                                      response_deserializer=pb.VmEvent.FromString)
        self.call = fn(pb.WatchVmsRequest(vm=vm), timeout=300)
        self.events = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for ev in self.call:
                self.events.append(ev)
        except grpc.RpcError:
            pass

    def close(self):
        self.call.cancel()
        self.thread.join(timeout=5)


def sync_json_watcher(d, files, w: Bg, gw: GrpcWatcher):
    """Creates throw-away VMs until both watchers report one: they are subscribed."""
    for i in range(50):
        name = f"sync{i}"
        create(d, name, files)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            if any(f'"vm_name":"{name}"' in l for l in w.lines) and any(
                    e.vm_name == name for e in gw.events):
                return
            time.sleep(0.02)
    pytest.fail(f"the JSON watcher never reported a created VM: {w.lines}")


def test_events_table_json_and_filter(ch, vm_files, sim, cli, procs):
    d = ch()
    table = Bg([cli, "-s", d.unix_addr, "events"])
    procs.append(table)
    header = table.wait_line(is_header, "the header (subscribed)")
    assert table.lines[0] == header[0]
    js = Bg([cli, "-s", d.unix_addr, "-o", "json", "events"])
    procs.append(js)
    gw = GrpcWatcher(d)
    try:
        sync_json_watcher(d, vm_files, js, gw)
        create(d, "ev-b", vm_files)
        flt = Bg([cli, "-s", d.unix_addr, "events", "ev-b"])
        procs.append(flt)
        flt.wait_line(is_header, "the filtered watcher's header")

        create(d, "ev-a", vm_files)
        start(d, "ev-a")
        start(d, "ev-b")
        stop(d, "ev-a", force=True)
        stop(d, "ev-b", force=True)
        d.call("DeleteVm", pb.DeleteVmRequest(vm="ev-b"))

        # Table: one line per event, in order, with the VM's state after it.
        def rows(w, name):
            return [event_fields(l) for l in w.lines if not is_header(l)
                    and event_fields(l)[0] == name]

        wait_for(lambda: any(r[1] == "stopped" for r in rows(table, "ev-a")),
                 f"ev-a stopped in the table; got {table.lines}")
        a = [(r[1], r[2]) for r in rows(table, "ev-a")]
        main = [x for x in a if x[0] != "state-changed"]
        assert main == [("created", "stopped"), ("started", "running"),
                        ("stopped", "stopped")], a

        # Filter: only ev-b, up to its deletion, which ends the stream (exit 0).
        rc, err = flt.finish()
        assert rc == 0, err
        body = [l for l in flt.lines if not is_header(l)]
        assert body and all(event_fields(l)[0] == "ev-b" for l in body), flt.lines
        assert [event_fields(l)[1] for l in body if event_fields(l)[1] != "state-changed"] == [
            "started", "stopped", "deleted"], flt.lines

        # JSON: one compact object per line, equal to what the independent watcher got.
        wait_for(lambda: any('"vm_name":"ev-b"' in l and "DELETED" in l for l in js.lines)
                 and any(e.vm_name == "ev-b" and e.type == pb.VM_EVENT_TYPE_DELETED
                         for e in gw.events), "ev-b deleted in the JSON output")
        by_seq = {e.sequence: e for e in gw.events}
        objs = []
        for line in js.lines:
            assert line.startswith("{") and ": " not in line and "\n" not in line, line
            obj = json.loads(line)
            objs.append(obj)
            ev = by_seq[int(obj["sequence"])]
            assert obj == json_format.MessageToDict(
                ev, preserving_proto_field_name=True, including_default_value_fields=True)
        a_json = [(o["type"], o["state"]) for o in objs if o["vm_name"] == "ev-a"
                  and o["type"] != "VM_EVENT_TYPE_STATE_CHANGED"]
        assert a_json == [("VM_EVENT_TYPE_CREATED", "VM_STATE_STOPPED"),
                          ("VM_EVENT_TYPE_STARTED", "VM_STATE_RUNNING"),
                          ("VM_EVENT_TYPE_STOPPED", "VM_STATE_STOPPED")], a_json
        seqs = [int(o["sequence"]) for o in objs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

        # The unfiltered watchers run until interrupted.
        for w in (table, js):
            assert w.proc.poll() is None
            w.proc.send_signal(signal.SIGINT)
            rc, _ = w.finish()
            assert rc == -signal.SIGINT
    finally:
        gw.close()


def test_events_errors(ch, cli, tmp_path):
    d = ch()
    rc, out, err = run_cli(cli, d.unix_addr, "events", "nosuchvm", timeout=30)
    assert rc == 1 and err.startswith("mvirt: ") and "nosuchvm" in err, err
    assert out == b""  # no header for a watch that never started
    rc, out, err = run_cli(cli, f"unix:{tmp_path}/none.sock", "events", timeout=30)
    assert rc == 3, err
    rc, out, err = run_cli(cli, f"unix:{tmp_path}/none.sock", "console", "x", timeout=30)
    assert rc == 3, err


# ---- usage ------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, needle", [
    (["console"], "missing argument"),
    (["console", "a", "b"], "unexpected argument"),
    (["console", "--history", "x", "a"], "--history"),
    (["-o", "json", "console", "a"], "not supported"),
    (["logs"], "missing argument"),
    (["logs", "--tail", "-1", "a"], "--tail"),
    (["logs", "--tail", "ten", "a"], "--tail"),
    (["events", "a", "b"], "unexpected argument"),
])
def test_usage_errors(cli, argv, needle):
    res = subprocess.run([cli, "-s", "unix:/nonexistent", *argv], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr


@pytest.mark.parametrize("command", ["console", "logs", "events"])
def test_help(cli, command):
    for argv in ([command, "--help"], ["help", command]):
        res = subprocess.run([cli, *argv], capture_output=True, text=True, timeout=30)
        assert res.returncode == 0 and res.stderr == ""
        assert res.stdout.startswith(f"Usage: mvirt {command}"), res.stdout
    res = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=30)
    assert re.search(rf"^  {command}\b", res.stdout, re.M)
