"""The daemon's log lines as structured journal entries. journald does not run here, so the test
is journald: a datagram socket of its own, bind-mounted over /run/systemd/journal/socket in a
mount namespace of the daemon's (where sd_journal_sendv sends), and $JOURNAL_STREAM naming the
daemon's stderr as systemd would. The entries are read in journald's native protocol."""

import os
import signal
import socket
import struct
import subprocess
import time

import grpc
import pytest

import mvirt_proto
from conftest import READY_TIMEOUT, free_tcp_port, make_tmpdir

SETUP = r"""
set -eu
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal
touch /run/systemd/journal/socket
mount --bind "$1" /run/systemd/journal/socket
shift
exec "$@"
"""


def parse_entry(data: bytes) -> dict:
    """journald's native protocol: KEY=value\\n, or KEY\\n<le64 size><value>\\n."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields[k.decode()] = v.decode(errors="replace")
    return fields


@pytest.fixture
def journal_daemon(vmm_binary):
    if os.geteuid() != 0:
        pytest.skip("the stand-in journald needs a mount namespace (root)")
    base = make_tmpdir("mvjr")
    jsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    jsock.bind(str(base / "journal.sock"))
    notify_path = str(base / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    log = open(base / "stderr.log", "wb")
    st = os.fstat(log.fileno())
    port = free_tcp_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "JOURNAL_"))}
    env.update(NOTIFY_SOCKET=notify_path, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", SETUP, "journal",
         str(base / "journal.sock"), str(vmm_binary), "--default-network", "off",
         "--state-dir", str(base / "state"), "--runtime-dir", str(base / "run"),
         "--listen", f"127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    notify.settimeout(0.2)
    deadline = time.monotonic() + READY_TIMEOUT
    ready = False
    while not ready and proc.poll() is None and time.monotonic() < deadline:
        try:
            ready = b"READY=1" in notify.recv(4096).split(b"\n")
        except socket.timeout:
            pass
    notify.close()
    try:
        assert ready, (base / "stderr.log").read_text()
        yield proc, port, jsock, base / "stderr.log"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        jsock.close()
        subprocess.run(["rm", "-rf", str(base)])


def entries(jsock, until, timeout=10.0):
    """Entries received until one satisfies until(entry); returns all of them."""
    got = []
    jsock.settimeout(timeout)
    while not got or not until(got[-1]):
        got.append(parse_entry(jsock.recv(1 << 20)))
    return got


def test_vm_lines_carry_the_vm_fields(journal_daemon, vm_files):
    proc, port, jsock, stderr = journal_daemon

    # start-up lines came as entries, with a priority and the identifier
    first = entries(jsock, lambda e: "ready" in e.get("MESSAGE", ""))
    assert all(e["SYSLOG_IDENTIFIER"] == "mvirt-vmm" for e in first), first
    assert all(e["PRIORITY"] in "34567" for e in first), first
    assert not any("MVIRT_VM_NAME" in e for e in first), first

    req_cls, _ = mvirt_proto.method_types("CreateVm")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        vm = mvirt_proto.unary(ch, "CreateVm")(
            req_cls(name="jvm", config=mvirt_proto.mvirt_pb2.VmConfig(
                vcpus=1, memory_mb=128, kernel=vm_files["kernel"])), timeout=10)
    got = entries(jsock, lambda e: e.get("MVIRT_VM_NAME") == "jvm")
    e = got[-1]
    assert e["MESSAGE"].startswith("vm jvm: created"), e
    assert e["MVIRT_VM_ID"] == vm.id, e
    assert e["PRIORITY"] == "6", e
    assert "CODE_FILE" not in e, e  # it would name log.c, for every line
    # and nothing of it on stderr: one copy, in the journal
    assert "vm jvm" not in stderr.read_text()


def test_without_journald_lines_go_to_the_stream(vmm_binary):
    """stderr is the journal stream but journald's socket is gone: the lines go to the stream
    with the "<N>" priority prefix journald parses, none is lost."""
    if os.geteuid() != 0:
        pytest.skip("hiding /run needs a mount namespace (root)")
    base = make_tmpdir("mvjr")
    try:
        with open(base / "stderr.log", "wb") as log:
            st = os.fstat(log.fileno())
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("LISTEN_", "JOURNAL_", "NOTIFY_"))}
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
            r = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount -t tmpfs tmpfs /run && exec "$@"', "nojournal", str(vmm_binary),
                 "--listen", "127.0.0.1:1", "--listen", "127.0.0.1:1", "--state-dir",
                 str(base / "state"), "--runtime-dir", str(base / "run"),
                 "--default-network", "off"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, timeout=60)
        text = (base / "stderr.log").read_text()
        # the second listen on the same port fails: an error line, priority 3
        assert r.returncode == 1, text
        assert "<6>state database" in text, text
        assert any(ln.startswith("<3>listen 127.0.0.1:1: bind:") for ln in text.splitlines()), text
        assert "mvirt-vmm: " not in text, text
    finally:
        subprocess.run(["rm", "-rf", str(base)])
