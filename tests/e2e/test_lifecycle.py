"""VM lifecycle end to end: StartVm/StopVm/KillVm/RebootVm/PauseVm/ResumeVm through gRPC against
a real mvirt-vmm whose hypervisor is the cloud-hypervisor emulator (tools/ch-emu) with simulated
guests, scripted with chemu.* tokens on the kernel cmdline or CH_EMU_SCRIPT in the daemon's
environment (see tools/ch-emu/README.md).

What the daemon says is checked against what really happens: the hypervisor process in /proc
(and through a pidfd for exit times), the runtime directory, the emulator's own vm.info over its
API socket, the console log. "Within 1 s" claims are measured with time.monotonic() against
TOLERANCE; everything else polls with generous deadlines, never fixed sleeps. The fixtures
(conftest.py) fail a test that leaves a hypervisor process behind or leaks fds in the daemon.
"""

import http.client
import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest

import mvirt_proto

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode

TOLERANCE = 1.0  # seconds: "noticed within 1 s", "answers fast", "at once"
DEADLINE = 20.0  # seconds: generous bound for anything merely expected to happen
REST_TIMEOUT = 5.0  # the daemon's timeout for cloud-hypervisor REST calls (hypervisor/ch_vm.c)
CALL_TIMEOUT = 60  # gRPC deadline of the test's own calls
POLL = 0.01

RUNNING, STOPPED, PAUSED = pb.VM_STATE_RUNNING, pb.VM_STATE_STOPPED, pb.VM_STATE_PAUSED
STARTING, CRASHED = pb.VM_STATE_STARTING, pb.VM_STATE_CRASHED


@pytest.fixture(autouse=True)
def _needs_emulator(emulated):
    if not emulated:
        pytest.skip("simulated guests and chemu.* scripts need ch-emu, not $MVIRT_TEST_CH")


# ---- helpers ----------------------------------------------------------------------------------

def config(files, cmdline="", disk=None):
    return pb.VmConfig(vcpus=1, memory_mb=128, kernel=files["kernel"],
                       disk=files["disk"] if disk is None else disk, cmdline=cmdline)


def create(d, name, files, cmdline="", **kw):
    return d.call("CreateVm", pb.CreateVmRequest(name=name, config=config(files, cmdline, **kw)))


def get(d, vm):
    return d.call("GetVm", pb.GetVmRequest(vm=vm))


def start(d, vm):
    return d.call("StartVm", pb.StartVmRequest(vm=vm), timeout=CALL_TIMEOUT)


def stop(d, vm, timeout=None, force=False):
    req = pb.StopVmRequest(vm=vm, force=force)
    if timeout is not None:
        req.timeout_seconds.value = timeout
    return d.call("StopVm", req, timeout=CALL_TIMEOUT)


def op(d, method, vm):
    req_cls, _ = mvirt_proto.method_types(method)
    return d.call(method, req_cls(vm=vm), timeout=CALL_TIMEOUT)


def rpc_error(fn, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as ei:
        fn(*args, **kw)
    return ei.value


def assert_status(err, code, *patterns):
    assert err.code() == code, f"expected {code}, got {err.code()}: {err.details()!r}"
    for p in patterns:
        assert re.search(p, err.details() or ""), f"details {err.details()!r} do not match {p!r}"


def state_name(s) -> str:
    return pb.VmState.Name(s)


def wait_state(d, vm, states, deadline=DEADLINE):
    """Polls GetVm until the VM is in one of states; returns (vm, monotonic time seen)."""
    if not isinstance(states, (tuple, list, set)):
        states = (states,)
    end = time.monotonic() + deadline
    while True:
        v = get(d, vm)
        now = time.monotonic()
        if v.state in states:
            return v, now
        assert now < end, (f"vm {vm} still {state_name(v.state)} ({v.state_reason!r}) after "
                           f"{deadline}s, expected {[state_name(s) for s in states]}")
        time.sleep(POLL)


def proc_stat(pid):
    """(state letter, starttime) of pid, or None when /proc has no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0].decode(), int(fields[19])


def alive(pid) -> bool:
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def identity(pid):
    st = proc_stat(pid)
    assert st is not None, f"pid {pid} does not exist"
    return pid, st[1]


def reaped(ident) -> bool:
    """The process is gone from /proc entirely (its parent reaped it)."""
    pid, starttime = ident
    st = proc_stat(pid)
    return st is None or st[1] != starttime


def dead(ident) -> bool:
    """The process has exited: gone, or a zombie waiting for PID 1 (re-adopted processes are
    not the daemon's children; PID 1 reaps orphans late)."""
    pid, starttime = ident
    st = proc_stat(pid)
    return st is None or st[1] != starttime or st[0] in ("Z", "X")


def wait_exit(pid, deadline=DEADLINE) -> float:
    """Monotonic time at which pid exits (through a pidfd: exact, no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return time.monotonic()
    try:
        r, _, _ = select.select([fd], [], [], deadline)
        t = time.monotonic()
        assert r, f"pid {pid} still running after {deadline}s"
        return t
    finally:
        os.close(fd)


def wait_for(pred, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while not pred():
        assert time.monotonic() < end, f"timed out after {deadline}s waiting for {what}"
        time.sleep(POLL)


def rundir(d, vm) -> Path:
    return d.runtime_dir / "vms" / vm.id


def statedir(d, vm) -> Path:
    return d.state_dir / "vms" / vm.id


def cmdline_of(pid) -> list:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=REST_TIMEOUT)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def hv_info(d, vm) -> dict:
    """The hypervisor's own idea of the VM: GET vm.info on its API socket."""
    c = _UnixHTTP(str(rundir(d, vm) / "api.sock"))
    try:
        c.request("GET", "/api/v1/vm.info")
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
        return json.loads(body)
    finally:
        c.close()


def hv_state(d, vm) -> str:
    return hv_info(d, vm)["state"]


class Bg(threading.Thread):
    """Runs one call in a thread; result or grpc error, and when it ended."""

    def __init__(self, fn, *args, **kw):
        super().__init__(daemon=True)
        self.fn, self.args, self.kw = fn, args, kw
        self.result = self.error = None
        self.t_begin = self.t_end = None
        self.start()

    def run(self):
        self.t_begin = time.monotonic()
        try:
            self.result = self.fn(*self.args, **self.kw)
        except grpc.RpcError as e:
            self.error = e
        finally:
            self.t_end = time.monotonic()

    def wait(self, deadline=DEADLINE):
        self.join(deadline)
        assert not self.is_alive(), f"{self.args[1:]} still running after {deadline}s"
        return self


def timed(fn, *args, **kw):
    t = time.monotonic()
    r = fn(*args, **kw)
    return r, time.monotonic() - t


def start_running(d, name, files, cmdline=""):
    """Creates and starts a VM; returns (vm, process identity) once RUNNING."""
    create(d, name, files, cmdline)
    vm = start(d, name)
    assert vm.state == RUNNING, (state_name(vm.state), vm.state_reason)
    assert vm.pid > 0
    return vm, identity(vm.pid)


def assert_left_nothing(d, vm):
    v = get(d, vm.id)
    assert v.pid == 0, v
    assert not rundir(d, v).exists(), sorted(os.listdir(rundir(d, v)))
    assert d.hypervisor_pids() == [], "hypervisor processes left"


# ---- start and stop ---------------------------------------------------------------------------

def test_start_then_stop(ch_daemon, vm_files):
    d = ch_daemon
    create(d, "vm1", vm_files)
    before = time.time()
    vm = start(d, "vm1")
    after = time.time()
    assert vm.state == RUNNING, (state_name(vm.state), vm.state_reason)
    assert vm.pid > 0 and alive(vm.pid)
    assert vm.HasField("started_at")
    assert before - 1 <= vm.started_at.ToNanoseconds() / 1e9 <= after + 1
    ident = identity(vm.pid)
    # It is really the configured hypervisor, in a session of its own, child of the daemon.
    argv = cmdline_of(vm.pid)
    assert any(a.endswith("ch-emu") for a in argv), argv
    assert os.getsid(vm.pid) == vm.pid
    assert hv_state(d, vm) == "Running"
    rd = rundir(d, vm)
    assert rd.is_dir() and (rd.stat().st_mode & 0o777) == 0o700
    assert (rd / "api.sock").is_socket()
    assert get(d, "vm1").SerializeToString() == vm.SerializeToString()
    assert [(v.name, v.state, v.pid) for v in d.call("ListVms").vms] == [("vm1", RUNNING, vm.pid)]

    stopped = stop(d, "vm1")
    # StopVm answers only once the VM is STOPPED and its process is gone.
    assert reaped(ident), f"pid {vm.pid} still exists after StopVm returned"
    assert stopped.state == STOPPED, (state_name(stopped.state), stopped.state_reason)
    assert re.search(r"guest powered off", stopped.state_reason), stopped.state_reason
    assert stopped.pid == 0
    assert not rd.exists(), f"{rd} left after stop"
    assert get(d, "vm1").SerializeToString() == stopped.SerializeToString()
    assert (statedir(d, vm) / "hypervisor.log").exists()

    # And it starts again, with a new process.
    again = start(d, "vm1")
    assert again.state == RUNNING and again.pid > 0 and again.pid != vm.pid
    assert again.started_at.ToNanoseconds() >= vm.started_at.ToNanoseconds()
    ident2 = identity(again.pid)
    stopped = stop(d, again.id, timeout=10)
    assert stopped.state == STOPPED and reaped(ident2)
    assert_left_nothing(d, vm)


def test_stop_escalates_when_the_guest_ignores_the_power_button(ch_daemon, vm_files):
    d = ch_daemon
    vm, ident = start_running(d, "deaf", vm_files, "chemu.ignore_power_button=1")
    stopped, took = timed(stop, d, "deaf", timeout=1)
    assert stopped.state == STOPPED, stopped
    assert reaped(ident)
    assert 1.0 <= took <= 1.0 + TOLERANCE, f"StopVm -t 1 took {took:.3f}s"
    assert not re.search(r"guest powered off", stopped.state_reason), stopped.state_reason
    assert_left_nothing(d, vm)

    for kw in ({"force": True}, {"timeout": 0}, {"timeout": 30, "force": True}):
        vm = start(d, "deaf")
        assert vm.state == RUNNING
        ident = identity(vm.pid)
        stopped, took = timed(stop, d, "deaf", **kw)
        assert stopped.state == STOPPED, (kw, stopped)
        assert reaped(ident), kw
        assert took < TOLERANCE, f"StopVm {kw} took {took:.3f}s: it waited for the guest"
        assert_left_nothing(d, vm)


def test_kill(ch_daemon, vm_files):
    d = ch_daemon
    vm, ident = start_running(d, "k", vm_files, "chemu.ignore_power_button=1")
    killed, took = timed(op, d, "KillVm", "k")
    assert reaped(ident), "KillVm returned before the process was gone"
    assert took < TOLERANCE
    assert killed.state == STOPPED and killed.state_reason == "killed", killed
    assert killed.pid == 0
    assert_left_nothing(d, vm)


def test_kill_while_starting(ch_daemon, vm_files):
    d = ch_daemon
    create(d, "slow", vm_files, "chemu.delay=vm.boot:3000")
    d.call("ListVms")  # the channel exists before threads share it
    starting = Bg(start, d, "slow")
    v, _ = wait_state(d, "slow", STARTING)
    wait_for(lambda: get(d, "slow").pid > 0, "a hypervisor pid")
    pid = get(d, "slow").pid
    ident = identity(pid)
    killed, took = timed(op, d, "KillVm", "slow")
    assert took < TOLERANCE, f"KillVm took {took:.3f}s"
    assert killed.state == STOPPED and killed.state_reason == "killed", killed
    assert reaped(ident)
    starting.wait()
    assert starting.error is not None, f"StartVm succeeded: {starting.result}"
    assert_status(starting.error, Code.ABORTED, r"kill")
    assert starting.t_end - starting.t_begin < 3.0, "StartVm waited for the delayed vm.boot"
    assert_left_nothing(d, v)


# ---- pause, resume, reboot --------------------------------------------------------------------

def test_pause_resume_reboot(ch_daemon, vm_files):
    d = ch_daemon
    vm, ident = start_running(d, "pr", vm_files, 'chemu.print="up"')
    log = statedir(d, vm) / "console.log"
    wait_for(lambda: log.exists() and "boot 1" in log.read_text(errors="replace"),
             "boot 1 on the console")

    paused = op(d, "PauseVm", "pr")
    assert paused.state == PAUSED and paused.pid == vm.pid, paused
    assert get(d, "pr").state == PAUSED
    assert hv_state(d, vm) == "Paused"
    assert_status(rpc_error(op, d, "PauseVm", "pr"), Code.FAILED_PRECONDITION, r"paused")
    assert get(d, "pr").state == PAUSED and hv_state(d, vm) == "Paused"

    resumed = op(d, "ResumeVm", "pr")
    assert resumed.state == RUNNING and resumed.pid == vm.pid, resumed
    assert hv_state(d, vm) == "Running"

    rebooted = op(d, "RebootVm", "pr")
    assert rebooted.state == RUNNING and rebooted.pid == vm.pid, rebooted
    wait_for(lambda: "boot 2" in log.read_text(errors="replace"), "boot 2 on the console")

    # From PAUSED too.
    assert op(d, "PauseVm", "pr").state == PAUSED
    rebooted = op(d, "RebootVm", "pr")
    assert rebooted.state == RUNNING and rebooted.pid == vm.pid, rebooted
    assert hv_state(d, vm) == "Running"
    wait_for(lambda: "boot 3" in log.read_text(errors="replace"), "boot 3 on the console")
    assert not reaped(ident)

    # A paused VM stops too.
    assert op(d, "PauseVm", "pr").state == PAUSED
    stopped = stop(d, "pr", timeout=2)
    assert stopped.state == STOPPED and reaped(ident)
    assert_left_nothing(d, vm)


WRONG_STATE = {
    # state: calls that must get FAILED_PRECONDITION naming the state
    "stopped": ("StopVm", "KillVm", "PauseVm", "ResumeVm", "RebootVm"),
    "running": ("StartVm", "ResumeVm"),
    "paused": ("StartVm", "PauseVm"),
}


def test_wrong_state_calls(ch_daemon, vm_files):
    d = ch_daemon
    vm = create(d, "ws", vm_files)

    def check(state):
        before = get(d, "ws")
        for method in WRONG_STATE[state]:
            err = rpc_error(op, d, method, "ws")
            assert_status(err, Code.FAILED_PRECONDITION, rf"\b{state}\b")
            after = get(d, "ws")
            assert (after.state, after.pid, after.state_reason) == (
                before.state, before.pid, before.state_reason), method

    check("stopped")
    vm = start(d, "ws")
    check("running")
    err = rpc_error(d.call, "DeleteVm", pb.DeleteVmRequest(vm="ws"))
    assert_status(err, Code.FAILED_PRECONDITION, r"running")
    op(d, "PauseVm", "ws")
    check("paused")
    ident = identity(vm.pid)
    assert stop(d, "ws", timeout=5).state == STOPPED
    assert reaped(ident)
    check("stopped")


# ---- what the guest and the hypervisor do on their own -------------------------------------------

def wait_change(d, vm, pid, new_states):
    """Waits for pid to exit, then for the VM to leave RUNNING; returns (vm, seconds between
    the exit and the new state being visible, monotonic time it was seen)."""
    t_exit = wait_exit(pid)
    v, t_seen = wait_state(d, vm, new_states)
    return v, t_seen - t_exit, t_seen


def test_guest_powers_off(ch_daemon, vm_files):
    d = ch_daemon
    vm, ident = start_running(d, "off", vm_files, "chemu.poweroff_after=300")
    v, lag, _ = wait_change(d, "off", vm.pid, (STOPPED, CRASHED))
    assert v.state == STOPPED, (state_name(v.state), v.state_reason)
    assert v.state_reason == "guest powered off"
    assert lag <= TOLERANCE, f"noticed {lag:.3f}s after the process exited"
    wait_for(lambda: reaped(ident), "the daemon to reap its child")
    assert_left_nothing(d, v)


@pytest.mark.parametrize("how", ["crash_after", "kill-9"])
def test_hypervisor_crash(ch_daemon, vm_files, how):
    d = ch_daemon
    cmdline = "chemu.crash_after=300" if how == "crash_after" else ""
    vm, ident = start_running(d, "crash", vm_files, cmdline)
    t_kill = None
    if how == "kill-9":
        t_kill = time.monotonic()
        os.kill(vm.pid, signal.SIGKILL)
    v, lag, t_seen = wait_change(d, "crash", vm.pid, (STOPPED, CRASHED))
    assert v.state == CRASHED, (state_name(v.state), v.state_reason)
    sig = r"SIGSEGV|signal 11\b" if how == "crash_after" else r"SIGKILL|signal 9\b"
    assert re.search(sig, v.state_reason), v.state_reason
    assert lag <= TOLERANCE, f"noticed {lag:.3f}s after the process exited"
    if t_kill is not None:
        assert t_seen - t_kill <= TOLERANCE, f"noticed {t_seen - t_kill:.3f}s after kill -9"
    wait_for(lambda: reaped(ident), "the daemon to reap its child")
    # The crashed hypervisor's stale sockets are gone with its runtime directory.
    assert_left_nothing(d, v)
    if how == "kill-9":
        # A CRASHED VM starts again.
        again = start(d, "crash")
        assert again.state == RUNNING
        ident2 = identity(again.pid)
        assert op(d, "KillVm", "crash").state == STOPPED and reaped(ident2)
        assert_left_nothing(d, v)


def test_guest_panic(ch_daemon, vm_files):
    d = ch_daemon
    vm, ident = start_running(d, "panic", vm_files, "chemu.panic_after=300")
    t_started = time.monotonic()
    v, t_seen = wait_state(d, "panic", (STOPPED, CRASHED))
    assert v.state == CRASHED and v.state_reason == "guest kernel panic", v
    assert dead(ident), "a panicked guest's hypervisor is left running"
    assert t_seen - t_started <= 0.3 + TOLERANCE, f"noticed {t_seen - t_started:.3f}s after start"
    wait_for(lambda: reaped(ident), "the daemon to reap its child")
    assert_left_nothing(d, v)


# ---- start failures ---------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["vm.create", "vm.boot"])
def test_start_failure_leaves_nothing(make_ch_daemon, vm_files, where):
    if where == "vm.create":  # only the environment can script vm.create itself
        d = make_ch_daemon(env={"CH_EMU_SCRIPT": "chemu.fail=vm.create"})
        vm = create(d, "bad", vm_files)
    else:
        d = make_ch_daemon()
        vm = create(d, "bad", vm_files, "chemu.fail=vm.boot")
    err = rpc_error(start, d, "bad")
    assert err.code() in (Code.FAILED_PRECONDITION, Code.INTERNAL), (err.code(), err.details())
    assert "ch-emu: injected failure (chemu.fail)" in err.details(), err.details()
    assert where in err.details(), err.details()
    v = get(d, "bad")
    assert v.state == STOPPED, (state_name(v.state), v.state_reason)
    assert v.state_reason.startswith("start failed"), v.state_reason
    assert_left_nothing(d, vm)


def test_start_without_hypervisor(make_daemon, vm_files):
    d = make_daemon(extra_args=["--hypervisor", "/nonexistent"])
    vm = create(d, "nohv", vm_files)
    err = rpc_error(start, d, "nohv")
    assert_status(err, Code.FAILED_PRECONDITION, r"--hypervisor", r"/nonexistent")
    v = get(d, "nohv")
    assert v.state == STOPPED and v.pid == 0
    assert not rundir(d, vm).exists()


def test_start_with_a_disk_gone(ch_daemon, vm_files, tmp_path):
    d = ch_daemon
    disk = tmp_path / "gone.raw"
    disk.write_bytes(b"\0" * 4096)
    vm = create(d, "nodisk", vm_files, disk=str(disk))
    disk.unlink()
    err = rpc_error(start, d, "nodisk")
    assert_status(err, Code.FAILED_PRECONDITION, r"config\.disk", re.escape(str(disk)))
    v = get(d, "nodisk")
    assert v.state == STOPPED
    assert_left_nothing(d, vm)


# ---- concurrency ------------------------------------------------------------------------------

def test_hung_hypervisor_does_not_block_the_api(ch_daemon, vm_files):
    d = ch_daemon
    a, ident_a = start_running(d, "hung", vm_files, "chemu.hang=vm.pause")
    start_running(d, "other", vm_files)
    pausing = Bg(op, d, "PauseVm", "hung")

    def pause_in_progress():
        e = rpc_error(op, d, "ResumeVm", "hung")
        assert e.code() == Code.FAILED_PRECONDITION, (e.code(), e.details())
        return "pause is in progress" in e.details()

    wait_for(pause_in_progress, "PauseVm(hung) to be in progress")
    for what, fn in (
        ("ListVms", lambda: d.call("ListVms")),
        ("GetVm hung", lambda: get(d, "hung")),
        ("GetVm other", lambda: get(d, "other")),
        ("StopVm other", lambda: stop(d, "other")),
        ("StartVm other", lambda: start(d, "other")),
        ("StopVm other again", lambda: stop(d, "other", timeout=0)),
    ):
        r, took = timed(fn)
        assert took < TOLERANCE, f"{what} took {took:.3f}s while hung's hypervisor hangs"
    assert pausing.is_alive(), "PauseVm(hung) ended before the REST timeout"
    assert get(d, "other").state == STOPPED

    pausing.wait()
    assert pausing.error is not None, f"PauseVm succeeded: {pausing.result}"
    assert_status(pausing.error, Code.DEADLINE_EXCEEDED, r"vm\.pause|pause")
    took = pausing.t_end - pausing.t_begin
    assert REST_TIMEOUT - 0.1 <= took <= REST_TIMEOUT + TOLERANCE, f"PauseVm took {took:.3f}s"
    v = get(d, "hung")
    assert v.state == RUNNING and v.pid == a.pid, v
    assert hv_state(d, a) == "Running"
    stopped = stop(d, "hung", timeout=10)
    assert stopped.state == STOPPED and reaped(ident_a)


def test_one_operation_at_a_time(ch_daemon, vm_files):
    d = ch_daemon
    create(d, "busy", vm_files, "chemu.delay=vm.boot:2000")
    d.call("ListVms")
    starting = Bg(start, d, "busy")
    v, _ = wait_state(d, "busy", STARTING)
    for method in ("StartVm", "StopVm", "PauseVm", "ResumeVm", "RebootVm"):
        err = rpc_error(op, d, method, "busy")
        assert_status(err, Code.FAILED_PRECONDITION, r"\bstart\b.*in progress")
    assert_status(rpc_error(d.call, "DeleteVm", pb.DeleteVmRequest(vm="busy")),
                  Code.FAILED_PRECONDITION)
    assert starting.is_alive()
    killed, took = timed(op, d, "KillVm", "busy")
    assert killed.state == STOPPED and killed.state_reason == "killed", killed
    assert took < TOLERANCE
    starting.wait()
    assert_status(starting.error, Code.ABORTED)
    assert_left_nothing(d, v)


N_CONCURRENT = 10


def test_concurrent_starts_and_stops(ch_daemon, vm_files):
    d = ch_daemon
    names = [f"c{i}" for i in range(N_CONCURRENT)]
    for n in names:
        create(d, n, vm_files)
    starts = [Bg(start, d, n) for n in names]
    for t in starts:
        t.wait(CALL_TIMEOUT)
    errors = {t.args[1]: (t.error.code(), t.error.details()) for t in starts if t.error}
    assert not errors, errors
    assert all(t.result.state == RUNNING for t in starts)
    pids = [t.result.pid for t in starts]
    assert len(set(pids)) == N_CONCURRENT and all(alive(p) for p in pids)
    idents = [identity(p) for p in pids]
    assert {v.name: v.state for v in d.call("ListVms").vms} == {n: RUNNING for n in names}

    stops = [Bg(stop, d, n) for n in names]
    for t in stops:
        t.wait(CALL_TIMEOUT)
    errors = {t.args[1]: (t.error.code(), t.error.details()) for t in stops if t.error}
    assert not errors, errors
    assert all(t.result.state == STOPPED for t in stops)
    assert all(reaped(i) for i in idents)
    assert {v.name: (v.state, v.pid) for v in d.call("ListVms").vms} == {
        n: (STOPPED, 0) for n in names}
    assert d.hypervisor_pids() == []
    assert os.listdir(d.runtime_dir / "vms") == []


# ---- daemon restarts --------------------------------------------------------------------------

def test_daemon_sigkill_then_readopt(ch_daemon, vm_files):
    d = ch_daemon
    a, ident_a = start_running(d, "a", vm_files)
    b, ident_b = start_running(d, "b", vm_files)
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    for ident in (ident_a, ident_b):
        assert alive(ident[0]), f"pid {ident[0]} died with the daemon"

    d.start()
    for vm, ident in ((a, ident_a), (b, ident_b)):
        v, _ = wait_state(d, vm.name, (RUNNING,))
        assert v.pid == vm.pid and alive(vm.pid), v
        assert identity(vm.pid) == ident
    assert [(v.name, v.state) for v in d.call("ListVms").vms] == [("a", RUNNING), ("b", RUNNING)]

    # The re-adopted VMs are fully controllable.
    assert op(d, "PauseVm", "b").state == PAUSED
    assert hv_state(d, b) == "Paused"
    assert op(d, "ResumeVm", "b").state == RUNNING
    for vm, ident in ((a, ident_a), (b, ident_b)):
        stopped = stop(d, vm.name, timeout=10)
        assert stopped.state == STOPPED, stopped
        assert dead(ident), f"{vm.name}: StopVm returned with pid {vm.pid} alive"
        assert not rundir(d, vm).exists()
    assert d.hypervisor_pids() == []
    # And they start again, as the daemon's children.
    again = start(d, "a")
    assert again.state == RUNNING
    ident = identity(again.pid)
    assert stop(d, "a").state == STOPPED and reaped(ident)


def test_a_stop_the_daemon_died_in_is_finished_after_the_restart(ch_daemon, vm_files):
    """StopVm pressed the power button, the guest takes 3 s to power off, and the daemon is
    SIGKILLed meanwhile (the VM is stored STOPPING). The restarted daemon re-adopts the VM and
    stops it again: the exit that follows is the stop the user asked for, STOPPED, not a
    crash (an adopted process's exit status is unknown)."""
    d = ch_daemon
    vm, ident = start_running(d, "slow", vm_files, "chemu.poweroff_delay=3000")
    bg = Bg(stop, d, "slow", timeout=30)
    wait_state(d, "slow", (pb.VM_STATE_STOPPING,))
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    bg.wait()
    assert alive(vm.pid)
    d.start()
    v, _ = wait_state(d, "slow", (STOPPED, CRASHED))
    assert v.state == STOPPED and v.pid == 0, (state_name(v.state), v.state_reason)
    assert dead(ident) and not rundir(d, vm).exists()
    assert "stopping it again" in d.log_text()


@pytest.mark.parametrize("zombie", [False, True], ids=["reaped", "zombie"])
def test_vm_exited_while_the_daemon_was_down(ch_daemon, vm_files, zombie):
    """The hypervisor is SIGKILLed while the daemon is down. PID 1 reaps orphans late here
    (~1.5 s), so at the restart its zombie may still be in /proc ("zombie": restart at once) or
    not ("reaped": wait for PID 1 first); either way it is dead, not re-adopted."""
    d = ch_daemon
    keep, ident_keep = start_running(d, "keep", vm_files)
    c, ident_c = start_running(d, "c", vm_files)
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    os.kill(c.pid, signal.SIGKILL)
    wait_exit(c.pid)
    if not zombie:
        wait_for(lambda: reaped(ident_c), "PID 1 to reap the orphan")
    d.start()
    vc = get(d, "c")
    assert (vc.state, vc.state_reason, vc.pid) == (
        STOPPED, "exited while mvirt-vmm was down", 0), vc
    assert not rundir(d, c).exists()
    v, _ = wait_state(d, "keep", (RUNNING,))
    assert v.pid == keep.pid
    assert stop(d, "keep").state == STOPPED and dead(ident_keep)
    again = start(d, "c")
    assert again.state == RUNNING
    ident = identity(again.pid)
    assert stop(d, "c").state == STOPPED and reaped(ident)


def test_stale_pid_is_not_adopted(ch_daemon, vm_files):
    d = ch_daemon
    vm, ident = start_running(d, "stale", vm_files)
    assert d.stop() == 0
    os.kill(vm.pid, signal.SIGKILL)
    wait_exit(vm.pid)
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        db = sqlite3.connect(str(d.state_dir / "mvirt.db"))
        with db:
            row = db.execute("SELECT pid, pid_starttime FROM vms WHERE id = ?", (vm.id,)).fetchone()
            assert row == (vm.pid, ident[1]), row
            db.execute("UPDATE vms SET pid = ? WHERE id = ?", (sleeper.pid, vm.id))
        db.close()
        d.start()
        v = get(d, "stale")
        assert (v.state, v.state_reason, v.pid) == (
            STOPPED, "exited while mvirt-vmm was down", 0), v
        assert sleeper.poll() is None, "the daemon killed the process that reused the pid"
        assert alive(sleeper.pid)
        assert not rundir(d, vm).exists()
        # Still untouched a moment later (nothing was sent to it asynchronously either).
        d.call("ListVms")
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_sigterm_leaves_vms_running(ch_daemon, vm_files):
    d = ch_daemon
    vm, ident = start_running(d, "keep", vm_files)
    assert d.stop() == 0
    assert alive(vm.pid) and identity(vm.pid) == ident
    d.start()
    v, _ = wait_state(d, "keep", (RUNNING,))
    assert v.pid == vm.pid and identity(vm.pid) == ident
    assert hv_state(d, vm) == "Running"
    stopped = stop(d, "keep")
    assert stopped.state == STOPPED and dead(ident)
    assert d.hypervisor_pids() == []


# ---- what the hypervisor gets -----------------------------------------------------------------

def unix_socket_paths() -> dict:
    """inode -> path of the bound Unix sockets of this host (/proc/net/unix)."""
    out = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) >= 8:
                out[int(parts[6])] = parts[7]
    return out


def test_no_fds_leak_into_the_hypervisor(make_ch_daemon, vm_files, tmp_path):
    report = tmp_path / "fds"
    report.mkdir()
    d = make_ch_daemon(env={"CH_EMU_FD_REPORT": str(report)})
    vm, ident = start_running(d, "fds", vm_files)
    path = report / f"{vm.pid}.fds"
    wait_for(path.exists, f"{path}")
    fds = {}
    for line in path.read_text().splitlines():
        fd, target = line.split(" ", 1)
        fds[int(fd)] = target
    # 0-2, the API socket, then the files of the config the daemon checked (kernel, disk),
    # which vm.create names as /proc/self/fd/4 and 5.
    assert sorted(fds) == [0, 1, 2, 3, 4, 5], fds
    assert fds[4] == vm_files["kernel"] and fds[5] == vm_files["disk"], fds
    info = hv_info(d, vm)["config"]
    assert info["payload"]["kernel"] == "/proc/self/fd/4", info["payload"]
    assert [x["path"] for x in info["disks"]] == ["/proc/self/fd/5"], info["disks"]
    assert fds[0] == "/dev/null"
    log = str(statedir(d, vm) / "hypervisor.log")
    assert fds[1] == log and fds[2] == log, fds
    m = re.fullmatch(r"socket:\[(\d+)\]", fds[3])
    assert m, fds
    # fd 3 is the API socket the daemon bound in the VM's runtime directory.
    assert unix_socket_paths().get(int(m.group(1))) == str(rundir(d, vm) / "api.sock")
    assert stop(d, "fds").state == STOPPED and reaped(ident)


def test_console_log(ch_daemon, vm_files):
    d = ch_daemon
    vm, ident = start_running(d, "con", vm_files, 'chemu.print="hello|world"')
    log = statedir(d, vm) / "console.log"

    def text():
        return log.read_text(errors="replace") if log.exists() else ""

    wait_for(lambda: re.search(r"^hello\r?\nworld\r?$", text(), re.M), "hello/world in console.log")
    assert "simulated guest started (boot 1)" in text()
    first = text()
    assert d.stop() == 0
    assert text() == first
    d.start()
    wait_state(d, "con", (RUNNING,))
    assert text().startswith(first), "console.log lost its content over a daemon restart"
    # The restarted daemon follows the console again: a reboot prints the lines anew.
    assert op(d, "RebootVm", "con").state == RUNNING
    wait_for(lambda: "(boot 2)" in text(), "the second boot's output")
    wait_for(lambda: text().count("world") >= 2, "the second boot's lines")
    assert text().startswith(first)
    assert stop(d, "con").state == STOPPED and dead(ident)
    assert log.exists() and text().count("hello") >= 2
