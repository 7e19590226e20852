"""Serial console end to end: the Console bidi stream and GetConsoleLog against a real mvirt-vmm
whose hypervisor is the cloud-hypervisor emulator (tools/ch-emu) with simulated guests scripted
on the kernel cmdline: chemu.print (lines at boot), chemu.echo (input echoed, lines answered),
chemu.tick (periodic output), chemu.poweroff_after.

What a viewer receives is compared with what the guest printed and with the console log the
daemon keeps (GetConsoleLog); waits poll with generous deadlines, never fixed sleeps, except
where a test must let time pass to show that something does NOT stall.
"""

import re
import secrets
import threading
import time

import grpc
import pytest

import mvirt_proto

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode

DEADLINE = 20.0
CALL_TIMEOUT = 60
POLL = 0.01
RING = 64 * 1024  # CONSOLE_RING_SIZE: the daemon's in-memory window
CONSOLE_PATH = "/mvirt.VmService/Console"


@pytest.fixture(autouse=True)
def _needs_emulator(emulated):
    if not emulated:
        pytest.skip("simulated guests and chemu.* scripts need ch-emu, not $MVIRT_TEST_CH")


# ---- helpers ----------------------------------------------------------------------------------

def create(d, name, files, cmdline=""):
    cfg = pb.VmConfig(vcpus=1, memory_mb=128, kernel=files["kernel"], disk=files["disk"],
                      cmdline=cmdline)
    return d.call("CreateVm", pb.CreateVmRequest(name=name, config=cfg))


def start(d, vm):
    return d.call("StartVm", pb.StartVmRequest(vm=vm), timeout=CALL_TIMEOUT)


def stop(d, vm, force=False):
    return d.call("StopVm", pb.StopVmRequest(vm=vm, force=force), timeout=CALL_TIMEOUT)


def console_log(d, vm, tail=0):
    return d.call("GetConsoleLog", pb.GetConsoleLogRequest(vm=vm, tail_bytes=tail))


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


def wait_log(d, vm, needle: bytes):
    """Waits for needle in the console log; returns the GetConsoleLog response that has it."""
    def check():
        r = console_log(d, vm)
        return r if needle in r.data else None

    return wait_for(check, f"{needle!r} in the console log")


def private_channel(d, addr=None, options=()):
    """A channel with its own connection (grpc shares subchannels between channels by default):
    a stalled stream on one must not hold back another through connection flow control."""
    return grpc.insecure_channel(addr or d.unix_addr,
                                 options=[("grpc.use_local_subchannel_pool", 1), *options])


def console_call(channel, first, queue=None):
    fn = channel.stream_stream(CONSOLE_PATH,
                               request_serializer=pb.ConsoleRequest.SerializeToString,
                               response_deserializer=pb.ConsoleResponse.FromString)
    q = queue or mvirt_proto.RequestQueue()
    q.put(first)
    return fn(q, timeout=300), q


class Viewer:
    """A Console stream whose responses a thread collects: output bytes, notices (with the
    output offset at which they arrived), and the final status."""

    def __init__(self, d, vm, history=0, channel=None, half_close=False):
        self.channel = channel or private_channel(d)
        first = pb.ConsoleRequest(vm=vm, history_bytes=history)
        self.call, self.q = console_call(self.channel, first)
        if half_close:
            self.q.close()
        self.lock = threading.Lock()
        self.out = bytearray()
        self.notices = []  # (offset in out, text)
        self.messages = 0
        self.code = self.details = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for resp in self.call:
                with self.lock:
                    self.messages += 1
                    if resp.notice:
                        self.notices.append((len(self.out), resp.notice))
                    self.out += resp.output
            self.code, self.details = self.call.code(), self.call.details()
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        finally:
            self.done.set()

    def text(self) -> bytes:
        with self.lock:
            return bytes(self.out)

    def wait(self, pattern, deadline=DEADLINE, since=0):
        """Waits until the output from offset since matches the regex (bytes) pattern;
        returns the match."""
        rx = re.compile(pattern)

        def found():
            ended = self.done.is_set()
            m = rx.search(self.text(), since)
            assert m or not ended, f"stream ended ({self.code}: {self.details}) before {pattern!r}"
            return m

        return wait_for(found, lambda: f"{pattern!r} on the console; got "
                        f"{self.text()[-300:]!r}, notices {self.notices}", deadline)

    def send(self, data: bytes):
        self.q.put(pb.ConsoleRequest(input=data))

    def wait_end(self, deadline=DEADLINE):
        assert self.done.wait(deadline), "console stream did not end"
        return self.code, self.details

    def close(self):
        self.call.cancel()
        self.q.close()
        self.done.wait(DEADLINE)
        self.channel.close()


def kill_all(d):
    """Teardown: no VM process may outlive a test (conftest checks)."""
    if not d.running():
        return
    for vm in d.call("ListVms").vms:
        if vm.pid:
            d.call("KillVm", pb.KillVmRequest(vm=vm.id), timeout=CALL_TIMEOUT)


@pytest.fixture
def d(ch_daemon):
    yield ch_daemon
    kill_all(ch_daemon)


@pytest.fixture
def viewers():
    opened = []
    yield lambda *a, **kw: opened.append(Viewer(*a, **kw)) or opened[-1]
    for v in opened:
        v.close()


def type_burst(v, total_out, width=64):
    """Makes an echoing guest (chemu.echo=1) print at least total_out bytes, typing lines
    through viewer v in batches of 64 lines, each batch once the last is answered: the guest
    reads its serial input slowly, and input it cannot take is dropped."""
    begin = since = len(v.text())
    batch = 0
    while len(v.text()) - begin < total_out:
        mark = b"m%07d" % batch
        lines = [b"%s-%02d" % (mark, i) + b"." * (width - 12) + b"\r" for i in range(63)]
        v.send(b"".join(lines) + mark + b"\r")
        m = v.wait(rb"you typed '%s' " % mark, since=since)
        since = m.end()
        batch += 1


def ticks(data: bytes) -> list:
    return [int(n) for n in re.findall(rb"chemu: tick (\d+)\r\n", data)]


def assert_contiguous(nums, what):
    assert nums, f"{what}: no ticks"
    assert nums == list(range(nums[0], nums[0] + len(nums))), f"{what}: ticks not in order: {nums}"


# ---- history ---------------------------------------------------------------------------------

def test_history_replay(d, vm_files, viewers):
    create(d, "hist", vm_files, 'chemu.print="alpha one|beta two|gamma three" chemu.echo=1')
    start(d, "hist")
    log = wait_log(d, "hist", b"chemu> ")

    v = viewers(d, "hist", history=4096)
    v.wait(rb"chemu> ")
    text = v.text()
    assert text == log.data, "history must be the console log's tail, byte for byte"
    assert re.search(rb"simulated guest started \(boot 1\)\r\nalpha one\r\nbeta two\r\n"
                     rb"gamma three\r\nchemu> $", text), text

    # Exactly the last N bytes.
    v2 = viewers(d, "hist", history=10)
    wait_for(lambda: len(v2.text()) >= 10, "10 bytes of history")
    time.sleep(0.2)  # nothing more may come: the guest is idle
    assert v2.text() == log.data[-10:]

    # No history: only what the guest prints from now on.
    v3 = viewers(d, "hist", history=0)
    word = secrets.token_hex(4)
    v3.send(word.encode() + b"\r")
    v3.wait(rb"you typed '" + word.encode() + rb"'")
    assert b"alpha one" not in v3.text()
    assert v3.text().startswith(word.encode()), v3.text()


def test_history_beyond_the_window_comes_from_the_log(d, vm_files, viewers):
    create(d, "big", vm_files, "chemu.echo=1")
    start(d, "big")
    w = viewers(d, "big")
    type_burst(w, 2 * RING)
    w.wait(rb"chemu> $")
    log = console_log(d, "big").data
    assert len(log) > 2 * RING

    want = 100_000
    v = viewers(d, "big", history=want)
    wait_for(lambda: len(v.text()) >= want, f"{want} bytes of history")
    time.sleep(0.2)
    assert v.text() == log[-want:]
    assert v.messages >= 2, "history is sent in chunks of at most 64 KiB"

    # All of it (more than there is): the whole log.
    v2 = viewers(d, "big", history=10 * len(log))
    wait_for(lambda: len(v2.text()) >= len(log), "the whole log as history")
    time.sleep(0.2)
    assert v2.text() == log

    # Live output follows the history, with no gap or repetition.
    v2.send(b"after\r")
    v2.wait(rb"you typed 'after'")
    assert v2.text().startswith(log + b"after")


def test_output_without_a_viewer_is_kept(d, vm_files, viewers):
    create(d, "tick", vm_files, "chemu.tick=20")
    start(d, "tick")
    wait_log(d, "tick", b"chemu: tick 10\r\n")
    log = console_log(d, "tick").data
    assert_contiguous(ticks(log), "console log")
    assert ticks(log)[0] == 1

    v = viewers(d, "tick", history=RING)
    v.wait(rb"chemu: tick 10\r\n")
    seen = ticks(v.text())
    assert seen[0] == 1, "history starts with the output printed while nobody watched"
    last = seen[-1]
    v.wait(rb"chemu: tick %d\r\n" % (last + 5))
    assert_contiguous(ticks(v.text()), "viewer")


def test_history_after_a_daemon_restart(d, vm_files, viewers):
    create(d, "rs", vm_files, 'chemu.print="before restart" chemu.echo=1')
    start(d, "rs")
    wait_log(d, "rs", b"chemu> ")
    d.restart()  # the VM keeps running; the new daemon follows its console again
    v = viewers(d, "rs", history=4096)
    v.wait(rb"before restart\r\nchemu> ")
    v.send(b"again\r")
    # (ch-emu injects a 0x00 when a client disconnects: the old daemon's at its exit)
    v.wait(rb"you typed '(\\x00)?again'")


# ---- viewers ---------------------------------------------------------------------------------

def test_two_viewers_see_the_same_output(d, vm_files, viewers):
    create(d, "two", vm_files, "chemu.echo=1 chemu.tick=10")
    start(d, "two")
    a = viewers(d, "two")
    b = viewers(d, "two", channel=private_channel(d, d.tcp_addr))
    a.wait(rb"tick \d+\r\n")
    b.wait(rb"tick \d+\r\n")
    a.send(b"from-a\r")
    b.send(b"from-b\r")
    for v in (a, b):
        v.wait(rb"you typed 'from-a'")
        v.wait(rb"you typed 'from-b'")
    n = max(ticks(a.text())[-1], ticks(b.text())[-1]) + 20
    a.wait(rb"tick %d\r\n" % n)
    b.wait(rb"tick %d\r\n" % n)
    # The same bytes from the first tick both saw to tick n.
    first = max(ticks(a.text())[0], ticks(b.text())[0])
    cut = []
    for v in (a, b):
        t = v.text()
        i = t.index(b"chemu: tick %d\r\n" % first)
        j = t.index(b"chemu: tick %d\r\n" % n)
        cut.append(t[i:j])
    assert cut[0] == cut[1]
    assert b"from-a" in cut[0] and b"from-b" in cut[0]
    assert not a.notices and not b.notices, (a.notices, b.notices)


def test_read_only_follower_half_closes(d, vm_files, viewers):
    create(d, "ro", vm_files, "chemu.tick=10")
    start(d, "ro")
    v = viewers(d, "ro", half_close=True)
    v.wait(rb"tick \d+\r\n")
    n = ticks(v.text())[-1]
    v.wait(rb"tick %d\r\n" % (n + 10))
    assert not v.done.is_set()


def test_a_viewer_that_never_reads_stalls_nothing(d, vm_files, viewers):
    create(d, "slow", vm_files, "chemu.echo=1")
    start(d, "slow")
    log0 = wait_log(d, "slow", b"chemu> ").data  # the guest is idle now
    # Without BDP probing the client's HTTP/2 window stays at 64 KiB (with it, grpc lets a
    # client that does not read buffer several MiB on its side before the daemon notices).
    slow_channel = private_channel(d, options=[("grpc.http2.bdp_probe", 0)])
    slow, slow_q = console_call(slow_channel, pb.ConsoleRequest(vm="slow"))  # not read yet
    try:
        fast = viewers(d, "slow", channel=private_channel(d, d.tcp_addr))
        # Far more output than flow-control windows and the daemon's bounded queue hold.
        type_burst(fast, 1600 * 1024)  # the log keeps it all (< 2 rotations)
        fast.wait(rb"chemu> $")
        log = console_log(d, "slow").data
        stream = log[len(log0):]
        # The fast viewer got every byte, in order, nothing skipped.
        assert fast.text() == stream
        assert not fast.notices, fast.notices
        assert d.call("GetVm", pb.GetVmRequest(vm="slow")).state == pb.VM_STATE_RUNNING

        # The slow viewer, reading at last: what it got plus what it was told it skipped is
        # exactly the guest's output, in order.
        got, notices = bytearray(), []
        done = threading.Event()

        def read_slow():
            for resp in slow:
                if resp.notice:
                    notices.append((len(got), resp.notice))
                got.extend(resp.output)
                skipped = sum(int(re.match(r"skipped (\d+) ", n).group(1)) for _, n in notices
                              if n.startswith("skipped "))
                if len(got) + skipped >= len(stream):
                    break
            done.set()

        threading.Thread(target=read_slow, daemon=True).start()
        assert done.wait(DEADLINE), f"slow viewer: {len(got)} bytes, notices {notices}"
        assert notices, "the slow viewer was never told that it skipped output"
        pos = prev = 0
        for off, text in notices:
            m = re.fullmatch(r"skipped (\d+) bytes: client too slow", text)
            assert m, text
            seg = bytes(got[prev:off])
            assert stream[pos:pos + len(seg)] == seg, "output between notices is the guest's"
            pos += len(seg) + int(m.group(1))
            prev = off
        assert stream[pos:] == bytes(got[prev:])
        assert len(got) < len(stream), "it skipped something"

        # Then live output again.
        fast.send(b"after-slow\r")
        fast.wait(rb"you typed 'after-slow'")
        more = next(slow)
        assert more.output and not more.notice
        after = console_log(d, "slow").data[len(log0):]
        assert after.startswith(stream + more.output)
    finally:
        slow.cancel()
        slow_q.close()
        slow_channel.close()


# ---- input -----------------------------------------------------------------------------------

def test_input_reaches_the_guest(d, vm_files, viewers):
    create(d, "in", vm_files, "chemu.echo=1")
    start(d, "in")
    v = viewers(d, "in")
    word = secrets.token_hex(6)
    v.send(word.encode() + b"\r")
    v.wait(rb"chemu: you typed '%s' \(ended by \\r\)" % word.encode())
    # A command: the guest acts on typed lines.
    v.send(b"help\r")
    v.wait(rb"commands: poweroff reboot")
    assert not v.notices, v.notices


def test_input_the_guest_cannot_take_is_dropped_with_a_notice(d, vm_files, viewers):
    create(d, "full", vm_files, "chemu.tick=20")
    start(d, "full")
    v = viewers(d, "full")
    v.wait(rb"tick \d+\r\n")
    big = 4 * 1024 * 1024  # far more than a socket buffer: the write is short
    v.send(b"\0" * big)
    wait_for(lambda: v.notices, lambda: f"a notice; got {v.notices}, stream "
             f"{'ended (%s: %s)' % (v.code, v.details) if v.done.is_set() else 'open'}")
    m = re.fullmatch(r"input dropped \((\d+) of (\d+) bytes\): the guest is not reading",
                     v.notices[0][1])
    assert m, v.notices
    assert 0 < int(m.group(1)) < big and int(m.group(2)) == big
    # The stream and the VM go on.
    n = ticks(v.text())[-1]
    v.wait(rb"tick %d\r\n" % (n + 3))
    assert not v.done.is_set()


# ---- end of stream, errors -------------------------------------------------------------------

def test_stream_ends_when_the_vm_stops(d, vm_files, viewers):
    create(d, "off", vm_files, "chemu.poweroff_after=1500 chemu.tick=50")
    start(d, "off")
    v = viewers(d, "off")
    v.wait(rb"tick \d+\r\n")
    code, details = v.wait_end()
    assert code == Code.OK, (code, details)
    assert v.notices, "a final notice says why"
    assert re.search(r"stopped.*guest powered off", v.notices[-1][1]), v.notices
    assert v.notices[-1][0] == len(v.text()), "the notice is the last message"
    assert b"power off (chemu.poweroff_after)" in v.text()
    vm = d.call("GetVm", pb.GetVmRequest(vm="off"))
    assert vm.state == pb.VM_STATE_STOPPED


def test_stream_ends_on_stop_vm(d, vm_files, viewers):
    create(d, "stp", vm_files, "chemu.tick=50")
    start(d, "stp")
    v = viewers(d, "stp")
    v.wait(rb"tick \d+\r\n")
    stop(d, "stp")
    code, _ = v.wait_end()
    assert code == Code.OK
    assert re.search(r"stopped", v.notices[-1][1]), v.notices


def test_closing_the_stream_does_not_disturb_the_vm(d, vm_files):
    create(d, "cl", vm_files, "chemu.echo=1 chemu.tick=20")
    start(d, "cl")
    for _ in range(3):
        v = Viewer(d, "cl")
        v.wait(rb"tick \d+\r\n")
        v.close()
    n = ticks(console_log(d, "cl").data)[-1]
    wait_log(d, "cl", b"chemu: tick %d\r\n" % (n + 10))
    ticks_log = ticks(console_log(d, "cl").data)
    assert_contiguous(ticks_log, "console log")
    assert d.call("GetVm", pb.GetVmRequest(vm="cl")).state == pb.VM_STATE_RUNNING


def test_console_errors(d, vm_files):
    create(d, "down", vm_files)
    v = Viewer(d, "down")
    code, details = v.wait_end()
    assert code == Code.FAILED_PRECONDITION, (code, details)
    assert "down" in details and "stopped" in details, details
    v.close()

    v = Viewer(d, "no-such-vm")
    code, details = v.wait_end()
    assert code == Code.NOT_FOUND, (code, details)
    assert "no-such-vm" in details
    v.close()

    v = Viewer(d, "")
    code, _ = v.wait_end()
    assert code == Code.INVALID_ARGUMENT
    v.close()

    # A client that half-closes without naming a VM.
    ch = private_channel(d)
    fn = ch.stream_stream(CONSOLE_PATH, request_serializer=pb.ConsoleRequest.SerializeToString,
                          response_deserializer=pb.ConsoleResponse.FromString)
    with pytest.raises(grpc.RpcError) as ei:
        list(fn(iter(()), timeout=10))
    assert ei.value.code() == Code.INVALID_ARGUMENT
    ch.close()

    # The daemon still answers.
    assert d.call("GetVm", pb.GetVmRequest(vm="down")).state == pb.VM_STATE_STOPPED


# ---- GetConsoleLog ---------------------------------------------------------------------------

def test_get_console_log(d, vm_files):
    create(d, "lg", vm_files, 'chemu.print="boot line one|boot line two"')
    r = console_log(d, "lg")
    assert r.data == b"" and not r.truncated, "never started: no output yet"

    start(d, "lg")
    log = wait_log(d, "lg", b"boot line two\r\n").data
    assert not console_log(d, "lg").truncated
    t = console_log(d, "lg", tail=12)
    assert t.data == log[-12:] and t.truncated
    t = console_log(d, "lg", tail=len(log))
    assert t.data == log and not t.truncated
    t = console_log(d, "lg", tail=len(log) + 1000)
    assert t.data == log and not t.truncated

    stop(d, "lg")
    d.restart()
    after = console_log(d, "lg")
    assert after.data.startswith(log), "the boot lines survive the VM's stop and a daemon restart"
    assert b"boot line one\r\nboot line two\r\n" in after.data

    # The next boot appends.
    start(d, "lg")
    wait_for(lambda: console_log(d, "lg").data.count(b"boot line two") == 2, "the second boot")
    assert console_log(d, "lg").data.startswith(after.data)

    with pytest.raises(grpc.RpcError) as ei:
        console_log(d, "nope")
    assert ei.value.code() == Code.NOT_FOUND
    stop(d, "lg", force=True)
