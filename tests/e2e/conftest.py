"""Fixtures for the end-to-end tests: real mvirt-vmm daemons in throw-away directories.

Fixtures (test_cli.py relies on these names and attributes):
    build_dir    pathlib.Path of the meson build dir (env MVIRT_BUILD_DIR, default <repo>/build)
    daemon       a started daemon (function scope), see class Daemon
    make_daemon  factory: make_daemon(state_dir=None, port=None, extra_args=(), start=True,
                 env=None, fd_check=False); env: extra environment of the daemon (and so of
                 the hypervisors it spawns, e.g. CH_EMU_SCRIPT, CH_EMU_FD_REPORT)
    vm_files     {"kernel", "initramfs", "disk", "disk2"[, "qcow2"]}: paths (str) of small files
    hypervisor   (session) the hypervisor binary for VM tests: $MVIRT_TEST_CH (a real
                 cloud-hypervisor) if set, else tools/ch-emu/ch-emu (the emulator)
    emulated     (session) True when `hypervisor` is ch-emu (simulated guests, chemu.* scripts)
    make_ch_daemon  factory: make_daemon with --hypervisor <hypervisor> and fd_check=True;
                 same arguments as make_daemon
    ch_daemon    a started make_ch_daemon() daemon
    netns        a network namespace of the test's own (its name), removed at teardown; pass
                 netns= to make_daemon/make_ch_daemon to run the daemon inside it. Daemons
                 outside one run with --default-network off: tests never touch the host's links.

A daemon is ready when it sends READY=1 to the NOTIFY_SOCKET this file gives it (never a fixed
sleep). Every daemon started here is stopped at teardown (SIGTERM, then SIGKILL), its log is
printed when the test failed, and the teardown fails if an mvirt-vmm process of the test is
left. Directories are short mkdtemp() paths under /tmp: unix socket paths must stay < 108 bytes.

Every daemon gets MVIRT_E2E_MARK=<its base dir> in its environment, which the hypervisors it
spawns (and their QEMUs) inherit: the teardown fails, and kills them, if any such process is
still alive (zombies excepted: PID 1 reaps orphans late). With fd_check, a daemon still running
at teardown with no VM process left must hold no fd it did not hold right after READY, beyond
gRPC connections that go away once the test's clients are closed and sd-event's per-clock
timerfds: nothing under the runtime or state dir's vms/, no pidfd, no extra socket.
"""

import collections
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
import pytest

import mvirt_proto

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0
CH_EMU = REPO / "tools" / "ch-emu" / "ch-emu"
MARK_ENV = "MVIRT_E2E_MARK"
FD_SETTLE_TIMEOUT = 5.0  # for the test's gRPC connections to be closed by the daemon
TIMERFD_SLACK = 5  # sd-event creates one timerfd per clock type, lazily


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _test_failed(request) -> bool:
    return any(
        getattr(request.node, "rep_" + w, None) is not None and getattr(request.node, "rep_" + w).failed
        for w in ("setup", "call")
    )


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tmpdir(prefix: str = "mv") -> Path:
    """A short private directory under /tmp, traversable by everyone (mode 0755) so that
    unprivileged test clients can reach sockets below it."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    d.chmod(0o755)
    return d


class DaemonStartError(Exception):
    """The daemon exited (or hung) before it sent READY=1."""

    def __init__(self, returncode, stderr: str):
        super().__init__(f"mvirt-vmm did not become ready (exit status {returncode}):\n{stderr}")
        self.returncode = returncode
        self.stderr = stderr


class Daemon:
    """One mvirt-vmm with its own runtime dir, unix socket, loopback TCP port and log file.

    state_dir may be shared with another Daemon (to test the single-daemon lock)."""

    def __init__(self, binary: Path, base: Path, state_dir=None, port=None, extra_args=(), env=None,
                 fd_check=False, netns=None):
        self.binary = Path(binary)
        self.netns = netns  # run inside this network namespace (see the netns fixture)
        self.env = dict(env or {})  # extra environment, applied at every start
        self.fd_check = fd_check
        self.fd_baseline = {}  # the daemon's fds right after READY (see open_fds)
        self.base = base
        self.state_dir = Path(state_dir) if state_dir else base / "state"
        self.runtime_dir = base / "run"
        self.unix_path = str(self.runtime_dir / "mvirt.sock")
        self.unix_addr = "unix:" + self.unix_path
        self.port = port if port else free_tcp_port()
        self.tcp_addr = f"127.0.0.1:{self.port}"
        self.log_path = base / "mvirt-vmm.log"
        self.notify_path = str(base / "notify.sock")
        self.extra_args = tuple(extra_args)
        self.proc = None
        self.pids = []  # every pid this object spawned
        self._start_args = ()
        self._channels = {}
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.runtime_dir.mkdir(mode=0o755, parents=True, exist_ok=True)

    def argv(self, extra_args=()):
        # Outside a test's own network namespace a daemon must not touch the host's links: no
        # default network (network tests run their daemons with netns=).
        host_net = [] if self.netns else ["--default-network", "off"]
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [
            *prefix,
            str(self.binary),
            *host_net,
            "--listen", self.unix_addr,
            "--listen", self.tcp_addr,
            "--state-dir", str(self.state_dir),
            "--runtime-dir", str(self.runtime_dir),
            "-v",
            *self.extra_args,
            *extra_args,
        ]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, extra_args=()):
        """Starts the daemon and waits for READY=1. Raises DaemonStartError (with the exit
        status and the stderr of this run) if it exits first or is not ready in 30 s."""
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        self._start_args = tuple(extra_args)
        argv = self.argv(extra_args)
        try:
            os.unlink(self.notify_path)
        except FileNotFoundError:
            pass
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(self.notify_path)
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = self.notify_path
        for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(k, None)
        env.update(self.env)
        env[MARK_ENV] = str(self.base)
        try:
            with open(self.log_path, "ab") as log:
                log.write(("=== " + " ".join(argv) + "\n").encode())
                log.flush()
                offset = log.tell()
                # The daemon dies with this process even if pytest is killed (setpriv execs it).
                self.proc = subprocess.Popen(
                    ["setpriv", "--pdeathsig", "KILL", *argv],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, close_fds=True,
                )
            self.pids.append(self.proc.pid)
            deadline = time.monotonic() + READY_TIMEOUT
            ready = False
            notify.settimeout(0.1)
            while not ready:
                try:
                    data = notify.recv(4096)
                    ready = b"READY=1" in data.split(b"\n")
                    continue
                except socket.timeout:
                    pass
                rc = self.proc.poll()
                if rc is not None:
                    raise DaemonStartError(rc, self._log_since(offset))
                if time.monotonic() > deadline:
                    self.proc.kill()
                    self.proc.wait()
                    msg = "no READY=1 within %ds\n" % READY_TIMEOUT
                    raise DaemonStartError(None, msg + self._log_since(offset))
        finally:
            notify.close()
            try:
                os.unlink(self.notify_path)
            except FileNotFoundError:
                pass
        self.fd_baseline = self.open_fds()
        return self

    def _log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def open_fds(self) -> dict:
        """{fd: readlink target} of the running daemon ({} if it is not running)."""
        if not self.running():
            return {}
        return _open_fds(self.proc.pid)

    def hypervisor_pids(self) -> list:
        """Live (non-zombie) processes spawned under this daemon's environment mark: its
        hypervisors and their children, whether or not the daemon still runs."""
        return [p for p in self._spawned() if not _is_dnsmasq(p)]

    def _spawned(self) -> list:
        return sorted(set(_marked_processes(str(self.base))) - set(self.pids))

    def dnsmasq_pids(self) -> list:
        """The live dnsmasq processes of this daemon's networks."""
        return [p for p in self._spawned() if _is_dnsmasq(p)]

    def fd_leaks(self) -> list:
        """What the running daemon holds now beyond its fds at READY (see the module doc)."""
        now = self.open_fds()
        vms_dirs = (str(self.runtime_dir / "vms") + "/", str(self.state_dir / "vms") + "/")
        problems = [f"fd {fd} -> {t}" for fd, t in sorted(now.items())
                    if t.startswith(vms_dirs)]
        # one pidfd per supervised dnsmasq (a network's DHCP/DNS); none for anything else
        pidfds = sum(1 for t in now.values() if t == "anon_inode:[pidfd]")
        if pidfds > len(self.dnsmasq_pids()):
            problems.append(f"{pidfds} pidfds, {len(self.dnsmasq_pids())} dnsmasq processes")
        base_kinds = collections.Counter(_fd_kind(t) for t in self.fd_baseline.values())
        kinds = collections.Counter(_fd_kind(t) for t in now.values())
        # libnftables is loaded at the first firewall rule (network/nft.c) and keeps its one
        # netfilter socket from then on
        netfilter = _netfilter_inodes(self.proc.pid)
        if any(t in netfilter for t in now.values()) and \
                not any(t in netfilter for t in self.fd_baseline.values()):
            kinds["socket"] -= 1
        for kind, n in sorted(kinds.items()):
            if kind == "anon_inode:[pidfd]":
                continue  # counted above
            allowed = base_kinds[kind] + (TIMERFD_SLACK if kind == "anon_inode:[timerfd]" else 0)
            if n > allowed:
                problems.append(f"{n} fds of kind {kind}, {base_kinds[kind]} at READY")
        base_files = {t for t in self.fd_baseline.values() if _fd_kind(t) == "file"}
        problems += [f"fd {fd} -> {t} (not open at READY)" for fd, t in sorted(now.items())
                     if _fd_kind(t) == "file" and t not in base_files
                     and not t.startswith(vms_dirs)]
        return problems

    def check_fds(self) -> str:
        """The fd check of the teardown: '' when fine (or not applicable: the daemon is not
        running, or a VM still has a process), else what leaked."""
        if not self.running():
            return ""
        try:
            vms = self.call("ListVms").vms
        except grpc.RpcError as e:
            return f"ListVms failed before the fd check: {e.code()}: {e.details()}"
        if any(v.pid for v in vms):
            return ""  # the leftover process check reports those
        self._close_channels()
        deadline = time.monotonic() + FD_SETTLE_TIMEOUT
        while True:
            problems = self.fd_leaks()
            if not problems or time.monotonic() > deadline or not self.running():
                break
            time.sleep(0.05)
        if not problems:
            return ""
        return (f"mvirt-vmm pid {self.proc.pid} leaked fds (all VMs stopped):\n  "
                + "\n  ".join(problems) + "\nat READY: " + repr(self.fd_baseline)
                + "\nnow: " + repr(self.open_fds()))

    def _close_channels(self):
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends sig and waits for the exit; returns the exit status (negative: killed by a
        signal). Raises AssertionError if the daemon had to be SIGKILLed after timeout."""
        self._close_channels()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"mvirt-vmm did not exit within {timeout}s of signal {sig}")
        return self.proc.returncode

    def restart(self):
        rc = self.stop()
        assert rc == 0, f"mvirt-vmm exited with {rc} on SIGTERM:\n{self.log_text()}"
        return self.start(self._start_args)

    def channel(self, addr=None):
        addr = addr or self.unix_addr
        if addr not in self._channels:
            self._channels[addr] = grpc.insecure_channel(addr)
        return self._channels[addr]

    def call(self, method, request=None, addr=None, timeout=10):
        """Calls a unary VmService method ("GetVm" or "/mvirt.VmService/GetVm"); request None
        means an empty request. Returns the response or raises grpc.RpcError."""
        req_cls, _ = mvirt_proto.method_types(method)
        if request is None:
            request = req_cls()
        return mvirt_proto.unary(self.channel(addr), method)(request, timeout=timeout)

    def _kill(self):
        """Teardown: SIGTERM, then SIGKILL; never raises."""
        self._close_channels()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _open_fds(pid: int) -> dict:
    out = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for name in names:
        try:
            out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            pass
    return out


def _netfilter_inodes(pid) -> set:
    """'socket:[INODE]' of each NETLINK_NETFILTER socket in pid's network namespace."""
    try:
        with open(f"/proc/{pid}/net/netlink") as f:
            rows = [ln.split() for ln in f.readlines()[1:]]
    except OSError:
        return set()
    return {f"socket:[{r[9]}]" for r in rows if len(r) >= 10 and r[1] == "12"}


def _fd_kind(target: str) -> str:
    if target.startswith("socket:"):
        return "socket"
    if target.startswith("pipe:"):
        return "pipe"
    if target.startswith("anon_inode:"):
        return target
    return "file"


def _is_dnsmasq(pid: int) -> bool:
    return _cmdline(pid).split(" ", 1)[0].endswith("/dnsmasq")


def _marked_processes(mark: str):
    """pids of live (non-zombie) processes whose environment has MARK_ENV=mark or whose
    command line mentions mark (a daemon's base dir: the runtime dir is below it), so that a
    hypervisor spawned with a cleaned environment is found too."""
    needle = f"{MARK_ENV}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                marked = needle in f.read().split(b"\0")
            if not marked:
                prefix = mark.encode() + b"/"
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    marked = any(a.startswith(prefix) or b"=" + prefix in a
                                 for a in f.read().split(b"\0"))
            if not marked:
                continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def _leftover_processes(binary: Path, marker: str):
    """pids of live mvirt-vmm processes whose command line mentions marker."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state == b"Z":
            continue
        if args and os.path.basename(args[0].decode(errors="replace")) == binary.name and any(
            marker.encode() in a for a in args
        ):
            found.append(int(entry))
    return found


@pytest.fixture(scope="session")
def build_dir() -> Path:
    d = Path(os.environ.get("MVIRT_BUILD_DIR", REPO / "build")).resolve()
    return d


def built_binary(build_dir, rel: str) -> Path:
    """build_dir/rel, failing the test when it is not built."""
    b = build_dir / rel
    if not os.access(b, os.X_OK):
        pytest.fail(f"{b} not built (set MVIRT_BUILD_DIR)")
    return b


@pytest.fixture(scope="session")
def vmm_binary(build_dir) -> Path:
    return built_binary(build_dir, "src/vmm/mvirt-vmm")


@pytest.fixture(scope="session")
def cli_binary(build_dir) -> Path:
    return built_binary(build_dir, "src/cli/mvirt")


@pytest.fixture
def make_daemon(request, vmm_binary):
    """make_daemon(state_dir=None, port=None, extra_args=(), start=True, env=None,
    fd_check=False) -> Daemon. extra_args are passed on every start; start() takes more for one
    run. env (also Daemon.env) is added to the daemon's environment at every start."""
    created = []

    def factory(state_dir=None, port=None, extra_args=(), start=True, env=None, fd_check=False,
                netns=None):
        d = Daemon(vmm_binary, make_tmpdir(), state_dir=state_dir, port=port, extra_args=extra_args,
                   env=env, fd_check=fd_check, netns=netns)
        created.append(d)
        if start:
            d.start()
        return d

    yield factory

    fd_problems = []
    for d in created:
        if d.fd_check:
            try:
                msg = d.check_fds()
            except Exception as e:  # a broken daemon must not hide the process checks
                msg = f"fd check failed: {e!r}"
            if msg:
                fd_problems.append(msg)
    for d in created:
        d._kill()
    failed = _test_failed(request)
    for d in created:
        if failed:
            print(f"----- {d.log_path} -----")
            print(d.log_text())
    left = set()
    live = set(_leftover_processes(vmm_binary, ""))
    for d in created:
        left.update(_leftover_processes(vmm_binary, str(d.base)))
        left.update(live.intersection(d.pids))
    hv_left = {}
    for d in created:
        # a network's dnsmasq outlives its daemon by design (re-adopted at the next start):
        # stopped here, not counted as left behind
        for pid in d.dnsmasq_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in d.hypervisor_pids():
            hv_left[pid] = _cmdline(pid)
    # a process caught in the middle of its exit (its cmdline already gone) is not left
    # behind: give such ones a moment to finish
    deadline = time.monotonic() + 1.0
    while any(c == "" for c in hv_left.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
        hv_left = {p: c for p, c in hv_left.items() if c != "" or _alive(p)}
    for pid in left | set(hv_left):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for d in created:
        shutil.rmtree(d.base, ignore_errors=True)
    assert not left, f"mvirt-vmm processes left after the test: {sorted(left)}"
    # After a failure these are mostly its consequence (the test did not get to clean up):
    # reported, but only a passing test is failed for them.
    if hv_left and failed:
        print(f"hypervisor processes left after the failed test (killed now): {hv_left}")
    if fd_problems and failed:
        print("\n".join(fd_problems))
    assert failed or not hv_left, (
        f"hypervisor processes left after the test (killed now): {hv_left}")
    assert failed or not fd_problems, "\n".join(fd_problems)


def _alive(pid: int) -> bool:
    """Whether pid is a process that has not exited (not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


@pytest.fixture
def daemon(make_daemon) -> Daemon:
    return make_daemon()


@pytest.fixture(scope="session")
def hypervisor() -> Path:
    hv = os.environ.get("MVIRT_TEST_CH")
    return Path(hv) if hv else CH_EMU


@pytest.fixture(scope="session")
def emulated(hypervisor) -> bool:
    return hypervisor == CH_EMU


@pytest.fixture
def make_ch_daemon(make_daemon, hypervisor):
    """make_daemon with --hypervisor <hypervisor> (before extra_args) and the fd check."""

    def factory(state_dir=None, port=None, extra_args=(), start=True, env=None, netns=None):
        return make_daemon(state_dir=state_dir, port=port,
                           extra_args=("--hypervisor", str(hypervisor), *extra_args),
                           start=start, env=env, fd_check=True, netns=netns)

    return factory


@pytest.fixture
def ch_daemon(make_ch_daemon) -> Daemon:
    return make_ch_daemon()


@pytest.fixture
def vm_files():
    d = make_tmpdir("mvf")
    files = {}
    for name, content in (
        ("kernel", b"\x7fELF not really a kernel\n"),
        ("initramfs", b"070701 not really an initramfs\n"),
        ("disk", b"raw disk bytes\n"),
        ("disk2", b"\0" * 4096),
    ):
        p = d / name
        p.write_bytes(content)
        p.chmod(0o644)
        files[name] = str(p)
    if shutil.which("qemu-img"):
        p = d / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(p), "16M"], check=True)
        files["qcow2"] = str(p)
    yield files
    shutil.rmtree(d, ignore_errors=True)


_netns_count = itertools.count()


def _netns_pids(name: str) -> list:
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture
def netns():
    """A network namespace of this test's own (its name), with lo up; everything in it (links,
    processes) goes away at teardown. Network tests run their daemons in one (netns=), never
    in the machine's own namespace. Skips when namespaces cannot be made (not root)."""
    name = f"mvt{os.getpid()}-{next(_netns_count)}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {r.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        for pid in _netns_pids(name):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", name], check=False)


def netns_links(name: str) -> dict:
    """{ifname: {"kind": ..., "master": ..., "alias": ..., "addrs": [...]}} of a namespace."""
    import json
    out = subprocess.run(["ip", "-n", name, "-j", "-d", "addr"], capture_output=True, text=True,
                         check=True).stdout
    links = {}
    for link in json.loads(out):
        info = link.get("linkinfo", {})
        links[link["ifname"]] = {
            "kind": info.get("info_kind", ""),
            "master": link.get("master", ""),
            "alias": link.get("ifalias", ""),
            "addrs": [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                      if a.get("family") == "inet"],
        }
    return links
