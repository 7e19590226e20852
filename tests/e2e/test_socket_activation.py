"""mvirt-vmm under systemd's socket activation, done here the way systemd does it (PID 1 is not
systemd): listening sockets as fds 3.. with LISTEN_FDS and LISTEN_PID (sd_listen_fds(3)). The
daemon serves them, binds only the --listen addresses not among them, leaves their mode and
files alone (systemd's), and refuses a passed socket it would not listen on itself."""

import os
import signal
import socket
import stat
import subprocess
import time

import grpc
import pytest

import mvirt_proto
from conftest import READY_TIMEOUT, free_tcp_port, make_tmpdir

# exec'd by sh so that LISTEN_PID is the daemon's pid ($$ survives exec)
WRAPPER = 'LISTEN_PID=$$ LISTEN_FDS=$1 exec "${@:2}"'


class Activated:
    """A daemon started with the given listening sockets passed as fds 3, 4, ..."""

    def __init__(self, binary, base, socks, args):
        self.base = base
        self.log_path = base / "mvirt-vmm.log"
        notify_path = str(base / "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        # the passed sockets at fds >= 20 first, so dup2 onto 3, 4, ... never clobbers one
        high = [os.dup2(s.fileno(), 20 + i, inheritable=True) for i, s in enumerate(socks)]

        def place():
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i, inheritable=True)

        env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "JOURNAL"))}
        env["NOTIFY_SOCKET"] = notify_path
        argv = ["bash", "-c", WRAPPER, "sh", str(len(socks)), str(binary),
                "--default-network", "off", "--state-dir", str(base / "state"),
                "--runtime-dir", str(base / "run"), "-v", *args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env, preexec_fn=place,
                                         pass_fds=tuple(range(3, 3 + len(socks))))
        for fd in high:
            os.close(fd)
        self.ready = False
        notify.settimeout(0.2)
        deadline = time.monotonic() + READY_TIMEOUT
        try:
            while not self.ready and self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    self.ready = b"READY=1" in notify.recv(4096).split(b"\n")
                except socket.timeout:
                    pass
        finally:
            notify.close()

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def version(addr):
    with grpc.insecure_channel(addr) as ch:
        return mvirt_proto.unary(ch, "GetVersion")(mvirt_proto.method_types("GetVersion")[0](),
                                                   timeout=10)


@pytest.fixture
def base():
    d = make_tmpdir("mvsa")
    (d / "run").mkdir()
    yield d
    subprocess.run(["rm", "-rf", str(d)])


def unix_listener(path, mode):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, mode)
    s.listen(16)
    return s


def tcp_listener(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(16)
    return s


def test_serves_the_passed_sockets(vmm_binary, base):
    path = str(base / "run" / "mvirt.sock")
    us = unix_listener(path, 0o666)  # not the daemon's 0660: it must not touch systemd's socket
    ts = tcp_listener()
    tcp = "127.0.0.1:%d" % ts.getsockname()[1]
    own = "127.0.0.1:%d" % free_tcp_port()  # configured, not passed: bound by the daemon
    d = Activated(vmm_binary, base, [us, ts], ["--listen", "unix:" + path, "--listen", tcp,
                                               "--listen", own])
    us.close(), ts.close()  # the daemon holds the only copies now
    try:
        assert d.ready, d.log()
        for addr in ("unix:" + path, tcp, own):
            assert version(addr).version, addr
        log = d.log()
        assert f"listening on unix:{path} (socket from systemd)" in log, log
        assert f"listening on {tcp} (socket from systemd)" in log, log
        assert f"listening on {own}\n" in log and f"listening on {own} (" not in log, log
        assert f"listening on unix:{path}\n" not in log, log  # not bound a second time
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        assert d.stop() == 0, d.log()
        # systemd's socket file stays (systemd listens on it while the daemon is down)
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    finally:
        d.stop()


def test_passed_sockets_alone_without_listen_match(vmm_binary, base):
    """A socket unit may name other addresses than the config: those are served too."""
    ts = tcp_listener()
    tcp = "127.0.0.1:%d" % ts.getsockname()[1]
    own = "127.0.0.1:%d" % free_tcp_port()
    d = Activated(vmm_binary, base, [ts], ["--listen", own])
    ts.close()
    try:
        assert d.ready, d.log()
        assert version(tcp).version and version(own).version
    finally:
        assert d.stop() == 0, d.log()


def test_non_loopback_passed_socket_refused(vmm_binary, base):
    ts = tcp_listener("0.0.0.0")
    port = ts.getsockname()[1]
    d = Activated(vmm_binary, base, [ts], ["--listen", "127.0.0.1:%d" % free_tcp_port()])
    ts.close()
    try:
        assert not d.ready
        assert d.proc.wait(timeout=30) == 1
        log = d.log()
        assert f"socket from systemd: listen address '0.0.0.0:{port}': not a loopback" in log, log
    finally:
        d.stop()
