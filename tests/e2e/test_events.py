"""VM events end to end: the WatchVms server stream against a real mvirt-vmm whose hypervisor is
the cloud-hypervisor emulator (tools/ch-emu) with simulated guests (chemu.* on the kernel
cmdline make them reboot, panic or crash by themselves).

A watcher is subscribed once its stream's initial metadata has arrived (the daemon sends it
right after subscribing), so the tests never sleep to wait for a subscription. Every event's
type, VM, state, reason, time and sequence number are checked against what the test did.
"""

import re
import threading
import time

import grpc
import pytest

import mvirt_proto

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode
T = pb.VmEventType
S = pb.VmState

DEADLINE = 20.0
CALL_TIMEOUT = 60
POLL = 0.01
WATCH_MAX_QUEUED = 256  # api_console.c


@pytest.fixture(autouse=True)
def _needs_emulator(emulated):
    if not emulated:
        pytest.skip("simulated guests and chemu.* scripts need ch-emu, not $MVIRT_TEST_CH")


# ---- helpers ----------------------------------------------------------------------------------

def create(d, name, files, cmdline=""):
    cfg = pb.VmConfig(vcpus=1, memory_mb=128, kernel=files["kernel"], disk=files["disk"],
                      cmdline=cmdline)
    return d.call("CreateVm", pb.CreateVmRequest(name=name, config=cfg))


def op(d, method, vm, **kw):
    req_cls, _ = mvirt_proto.method_types(method)
    return d.call(method, req_cls(vm=vm, **kw), timeout=CALL_TIMEOUT)


def wait_for(pred, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {deadline}s waiting for "
                                 f"{what() if callable(what) else what}")
        time.sleep(POLL)


def private_channel(d, addr=None, options=()):
    """A channel with its own connection (grpc shares subchannels between channels)."""
    return grpc.insecure_channel(addr or d.unix_addr,
                                 options=[("grpc.use_local_subchannel_pool", 1), *options])


def watch_call(channel, vm=""):
    fn = channel.unary_stream("/mvirt.VmService/WatchVms",
                              request_serializer=pb.WatchVmsRequest.SerializeToString,
                              response_deserializer=pb.VmEvent.FromString)
    return fn(pb.WatchVmsRequest(vm=vm), timeout=300)


class Watcher:
    """A WatchVms stream read by a thread; subscribed when the constructor returns."""

    def __init__(self, d, vm="", channel=None):
        self.own_channel = channel is None
        self.channel = channel or private_channel(d)
        self.call = watch_call(self.channel, vm)
        self.lock = threading.Lock()
        self.events = []
        self.code = self.details = None
        self.done = threading.Event()
        self.subscribed = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.subscribed.wait(DEADLINE)

    def _run(self):
        try:
            self.call.initial_metadata()
            self.subscribed.set()
            for ev in self.call:
                with self.lock:
                    self.events.append(ev)
            self.code, self.details = self.call.code(), self.call.details()
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        finally:
            self.subscribed.set()
            self.done.set()

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def wait_count(self, n, deadline=DEADLINE):
        return wait_for(lambda: len(self.snapshot()) >= n and self.snapshot(),
                        lambda: f"{n} events; got {summary(self.snapshot())} "
                                f"(status {self.code}: {self.details})", deadline)

    def wait_event(self, vm_id, type_, deadline=DEADLINE):
        def found():
            for ev in self.snapshot():
                if ev.vm_id == vm_id and ev.type == type_:
                    return ev
            return None

        return wait_for(found, lambda: f"{T.Name(type_)} for {vm_id}; got "
                                       f"{summary(self.snapshot())}", deadline)

    def wait_end(self, deadline=DEADLINE):
        assert self.done.wait(deadline), "watch stream did not end"
        return self.code, self.details

    def close(self):
        self.call.cancel()
        self.done.wait(DEADLINE)
        if self.own_channel:
            self.channel.close()


def summary(events):
    return [(e.vm_name, T.Name(e.type), S.Name(e.state), e.sequence) for e in events]


def kinds(events):
    return [(T.Name(e.type), S.Name(e.state)) for e in events]


@pytest.fixture
def d(ch_daemon):
    yield ch_daemon
    if ch_daemon.running():
        for vm in ch_daemon.call("ListVms").vms:
            if vm.pid:
                ch_daemon.call("KillVm", pb.KillVmRequest(vm=vm.id), timeout=CALL_TIMEOUT)


@pytest.fixture
def watchers():
    opened = []
    yield lambda *a, **kw: opened.append(Watcher(*a, **kw)) or opened[-1]
    for w in opened:
        w.close()


def assert_consecutive(events):
    seqs = [e.sequence for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"sequence gaps: {seqs}"


# ---- ordering and every event type -----------------------------------------------------------

def test_lifecycle_events_in_order(d, vm_files, watchers):
    w = watchers(d)
    t0 = time.time()
    vm = create(d, "ev", vm_files)
    op(d, "StartVm", "ev")
    op(d, "PauseVm", "ev")
    op(d, "ResumeVm", "ev")
    op(d, "RebootVm", "ev")
    op(d, "StopVm", "ev")
    op(d, "DeleteVm", "ev")
    t1 = time.time()
    expected = [
        ("VM_EVENT_TYPE_CREATED", "VM_STATE_STOPPED"),
        ("VM_EVENT_TYPE_STATE_CHANGED", "VM_STATE_STARTING"),
        ("VM_EVENT_TYPE_STARTED", "VM_STATE_RUNNING"),
        ("VM_EVENT_TYPE_PAUSED", "VM_STATE_PAUSED"),
        ("VM_EVENT_TYPE_RESUMED", "VM_STATE_RUNNING"),
        ("VM_EVENT_TYPE_REBOOTED", "VM_STATE_RUNNING"),
        ("VM_EVENT_TYPE_STATE_CHANGED", "VM_STATE_STOPPING"),
        ("VM_EVENT_TYPE_STOPPED", "VM_STATE_STOPPED"),
        ("VM_EVENT_TYPE_DELETED", "VM_STATE_STOPPED"),
    ]
    events = w.wait_count(len(expected))
    time.sleep(0.3)  # a late duplicate (e.g. the event monitor's reboot) would show up here
    events = w.snapshot()
    assert kinds(events) == expected, summary(events)
    assert_consecutive(events)
    for e in events:
        assert e.vm_id == vm.id and e.vm_name == "ev"
        t = e.time.seconds + e.time.nanos / 1e9
        assert t0 - 1 <= t <= t1 + 1, (t0, t, t1)
    times = [e.time.seconds * 10**9 + e.time.nanos for e in events]
    assert times == sorted(times)
    reasons = [e.reason for e in events]
    assert reasons[1] == "starting" and reasons[2] == "started"
    assert reasons[6] == "stop requested"
    assert "guest powered off" in reasons[7], reasons[7]
    assert not w.done.is_set(), "an unfiltered watcher keeps watching after a delete"


def test_guest_initiated_events(d, vm_files, watchers):
    w = watchers(d)
    boot = create(d, "rb", vm_files, "chemu.reboot_after=300")
    crash = create(d, "cr", vm_files, "chemu.crash_after=300")
    panic = create(d, "pn", vm_files, "chemu.panic_after=300")
    off = create(d, "po", vm_files, "chemu.poweroff_after=300")
    for name in ("rb", "cr", "pn", "po"):
        op(d, "StartVm", name)

    ev = w.wait_event(boot.id, T.VM_EVENT_TYPE_REBOOTED)
    assert ev.state == S.VM_STATE_RUNNING
    ev = w.wait_event(crash.id, T.VM_EVENT_TYPE_CRASHED)
    assert ev.state == S.VM_STATE_CRASHED
    assert re.search(r"signal|SEGV|crash|exit", ev.reason, re.I), ev.reason
    ev = w.wait_event(panic.id, T.VM_EVENT_TYPE_CRASHED)
    assert ev.state == S.VM_STATE_CRASHED and "panic" in ev.reason, ev.reason
    ev = w.wait_event(off.id, T.VM_EVENT_TYPE_STOPPED)
    assert ev.state == S.VM_STATE_STOPPED and "guest powered off" in ev.reason, ev.reason

    events = w.snapshot()
    assert_consecutive(events)
    for vm in (boot, crash, panic, off):
        mine = [e for e in events if e.vm_id == vm.id]
        assert kinds(mine)[:3] == [("VM_EVENT_TYPE_CREATED", "VM_STATE_STOPPED"),
                                   ("VM_EVENT_TYPE_STATE_CHANGED", "VM_STATE_STARTING"),
                                   ("VM_EVENT_TYPE_STARTED", "VM_STATE_RUNNING")], summary(mine)


# ---- filters ---------------------------------------------------------------------------------

def test_filter_by_name_and_by_id(d, vm_files, watchers):
    a = create(d, "fa", vm_files)
    b = create(d, "fb", vm_files)
    wa = watchers(d, vm="fa")
    wb = watchers(d, vm=b.id)
    wall = watchers(d)
    for name in ("fa", "fb"):
        op(d, "StartVm", name)
    for name in ("fb", "fa"):
        op(d, "StopVm", name, force=True)
    op(d, "DeleteVm", "fb")

    code, details = wb.wait_end()
    assert code == Code.OK, "a filtered watch ends with its VM"
    eb = wb.snapshot()
    assert {e.vm_id for e in eb} == {b.id}
    assert [T.Name(e.type) for e in eb] == [
        "VM_EVENT_TYPE_STATE_CHANGED", "VM_EVENT_TYPE_STARTED",
        "VM_EVENT_TYPE_STATE_CHANGED", "VM_EVENT_TYPE_STOPPED", "VM_EVENT_TYPE_DELETED"]

    ea = wa.wait_count(4)
    assert {e.vm_id for e in ea} == {a.id}
    assert [T.Name(e.type) for e in ea] == [
        "VM_EVENT_TYPE_STATE_CHANGED", "VM_EVENT_TYPE_STARTED",
        "VM_EVENT_TYPE_STATE_CHANGED", "VM_EVENT_TYPE_STOPPED"]
    assert not wa.done.is_set()

    # The unfiltered watcher saw both, interleaved in the order they happened; the filtered
    # ones saw the same events with the same sequence numbers.
    eall = wall.wait_count(9)
    assert_consecutive(eall)
    assert [e.sequence for e in eall if e.vm_id == a.id] == [e.sequence for e in ea]
    assert [e.sequence for e in eall if e.vm_id == b.id] == [e.sequence for e in eb]

    # The watch by name follows that VM to its deletion too.
    op(d, "DeleteVm", "fa")
    wa.wait_end()
    assert wa.code == Code.OK and wa.snapshot()[-1].type == T.VM_EVENT_TYPE_DELETED


def test_unknown_filter(d, watchers):
    w = watchers(d, vm="no-such-vm")
    code, details = w.wait_end()
    assert code == Code.NOT_FOUND, (code, details)
    assert "no-such-vm" in details
    w = watchers(d, vm="00000000-0000-0000-0000-000000000000")
    assert w.wait_end()[0] == Code.NOT_FOUND


# ---- slow watchers ---------------------------------------------------------------------------

def test_slow_watcher_is_cut_off(d, vm_files, watchers):
    # Without BDP probing the client's HTTP/2 window stays at 64 KiB: a watcher that does not
    # read fills it with a few hundred events, then the daemon's queue.
    slow_channel = private_channel(d, options=[("grpc.http2.bdp_probe", 0)])
    slow = watch_call(slow_channel)
    slow.initial_metadata()  # subscribed; never read until the end
    good = watchers(d)
    try:
        n = 0
        # Events (create/delete: two each, ~100 bytes each) until the daemon says it cut the
        # watcher off; the client cannot tell before it reads: the status follows the events
        # that were queued.
        cfg = pb.VmConfig(vcpus=1, memory_mb=64, kernel=vm_files["kernel"])
        while True:
            d.call("CreateVm", pb.CreateVmRequest(name=f"s{n}", config=cfg))
            d.call("DeleteVm", pb.DeleteVmRequest(vm=f"s{n}"))
            n += 1
            if n % 50 == 0 and "watcher too slow" in d.log_text():
                break
            assert n < 20000, "the slow watcher was never cut off"
        assert d.call("GetVersion").version  # the daemon answers meanwhile
        got = []
        with pytest.raises(grpc.RpcError) as ei:
            for ev in slow:
                got.append(ev)
        assert ei.value.code() == Code.RESOURCE_EXHAUSTED, ei.value
        assert re.search(r"watcher too slow", ei.value.details()), ei.value.details()
        assert len(got) >= WATCH_MAX_QUEUED, "it got what was queued before the cut-off"
        assert_consecutive(got)
        assert len(got) < 2 * n, "it did not get everything"

        # The reading watcher got every event.
        events = good.wait_count(2 * n)
        assert_consecutive(events)
        assert kinds(events[:2]) == [("VM_EVENT_TYPE_CREATED", "VM_STATE_STOPPED"),
                                     ("VM_EVENT_TYPE_DELETED", "VM_STATE_STOPPED")]
        assert not good.done.is_set()
    finally:
        slow.cancel()
        slow_channel.close()


def test_hundred_watchers_do_not_break_start(d, vm_files):
    vm = create(d, "many", vm_files)
    channels = [private_channel(d) for _ in range(4)]
    ws = []
    try:
        for i in range(100):
            ws.append(Watcher(d, vm="many" if i % 2 else "", channel=channels[i % 4]))
        assert all(w.subscribed.is_set() and not w.done.is_set() for w in ws)
        started = op(d, "StartVm", "many")
        assert started.state == S.VM_STATE_RUNNING
        for w in ws:
            ev = w.wait_event(vm.id, T.VM_EVENT_TYPE_STARTED)
            assert ev.vm_name == "many" and ev.state == S.VM_STATE_RUNNING
        seqs = {tuple(e.sequence for e in w.snapshot()) for w in ws}
        assert len(seqs) == 1, "every watcher saw the same events"
        op(d, "StopVm", "many", force=True)
    finally:
        for w in ws:
            w.close()
        for c in channels:
            c.close()
