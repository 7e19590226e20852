"""The Debian package: built from the repository with dpkg-buildpackage (debian/), installed with
apt-get into overlays of /usr, /etc and /var inside a mount namespace of its own (unshare), so
that the install changes nothing of this machine (an empty tmpfs hides its /run and
/var/lib/mvirt there), then checked there: the files and their
places, the mvirt group made by postinst, the registered conffile, nothing enabled or started;
and the installed /usr/sbin/mvirt-vmm, started by hand with its default state directory
(/var/lib/mvirt, in the overlay) and the cloud-hypervisor emulator, answers a grpcurl-style
CreateVm (a request built from JSON) over TCP and the installed /usr/bin/mvirt over the Unix
socket; a purge then removes the package's files and conffile but neither the state
(/var/lib/mvirt) nor the group.

PID 1 here need not be systemd: test_package_under_systemd boots one (systemd-nspawn --boot) in
a container whose root is this machine's own file system under an overlay, with a network of
its own, installs the package there with apt-get and runs the units through systemctl: socket
activation, Type=notify, the journal's fields, a restart that keeps a VM running, mvirt-web.
The package is built once per session from a copy of the tracked files (the source tree is
never written to), with DEB_BUILD_OPTIONS=nocheck."""

import json
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
from google.protobuf import json_format

import mvirt_proto
from conftest import CH_EMU, READY_TIMEOUT, REPO, free_tcp_port

BUILD_TIMEOUT = 900
CREATE_JSON = '{"name":"pkg-vm","config":{"vcpus":1,"memory_mb":128,"kernel":"%s"}}'


def _need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pytest.skip("not installed: " + ", ".join(missing) + " (scripts/packages.txt)")


@pytest.fixture(scope="session")
def deb(tmp_path_factory):
    """Path of the built mvirt_*.deb."""
    _need("dpkg-buildpackage", "dh", "git", "fakeroot")
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the package is built from the tracked files")
    top = tmp_path_factory.mktemp("deb")
    src = top / "mvirt"
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], capture_output=True,
                           check=True).stdout.split(b"\0")
    for f in filter(None, files):
        rel = f.decode()
        p = REPO / rel
        if not p.exists() and not p.is_symlink():
            continue  # deleted in the work tree
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, src / rel, follow_symlinks=False)
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2")
    r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env,
                       capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    debs = sorted(top.glob("mvirt_*.deb"))
    assert len(debs) == 1, list(top.iterdir())
    return debs[0]


def test_package_contents(deb):
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                         check=True).stdout
    paths = {line.split()[5].lstrip(".") for line in out.splitlines()}
    for p in ("/usr/bin/mvirt", "/usr/bin/mvirt-web", "/usr/sbin/mvirt-vmm",
              "/etc/mvirt/mvirt-vmm.conf", "/lib/systemd/system/mvirt-vmm.service",
              "/lib/systemd/system/mvirt-vmm.socket", "/lib/systemd/system/mvirt-web.service",
              "/usr/share/doc/mvirt/copyright", "/usr/share/bash-completion/completions/mvirt",
              "/usr/share/zsh/vendor-completions/_mvirt", "/usr/share/man/man1/mvirt.1.gz"):
        assert p in paths, p
    # the state belongs to the admin, not to dpkg: purge never deletes it
    assert not any(p.startswith("/var/lib/mvirt") for p in paths), sorted(paths)


def test_package_lintian(deb):
    """lintian finds nothing but what debian/mvirt.lintian-overrides explains."""
    _need("lintian")
    r = subprocess.run(["lintian", "--fail-on", "error,warning", str(deb)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


INSTALL = r"""
set -eu
t=$1 out=$2 deb=$3
mount -t tmpfs tmpfs "$t"
for d in usr etc var; do
	mkdir -p "$t/$d.up" "$t/$d.work"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$t/$d.up,workdir=$t/$d.work" "/$d"
done
mount -t tmpfs tmpfs /run
# this machine's own mvirt state (a daemon of ./dev.sh demo, say) stays out of sight: an empty
# /var/lib/mvirt as on a fresh install
mkdir -p /var/lib/mvirt
mount -t tmpfs -o mode=0700 tmpfs /var/lib/mvirt
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$deb" \
		>"$out/install.log" 2>&1; then
	echo apt-get install failed >>"$out/install.log"
	exit 97
fi
getent group mvirt >"$out/group" || true
dpkg-query -W -f='${Conffiles}' mvirt >"$out/conffiles"
dpkg-query -W -f='${Depends}' mvirt >"$out/depends"
ls /etc/systemd/system/*.wants 2>/dev/null | grep mvirt >"$out/enabled" || true
shift 3
exec "$@"
"""


def test_package_installs_and_serves(deb, vm_files, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("installing into the overlays needs root (mount namespace, overlayfs)")
    _need("unshare", "apt-get", "dpkg-query")
    host_has_group = subprocess.run(["getent", "group", "mvirt"],
                                    capture_output=True).returncode == 0
    host_has_pkg = subprocess.run(["dpkg-query", "-W", "mvirt"],
                                  capture_output=True).returncode == 0
    overlay = Path(tempfile.mkdtemp(prefix="mvpk", dir="/tmp"))
    out = tmp_path / "out"
    out.mkdir()
    port = free_tcp_port()
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "JOURNAL_"))}
    env["NOTIFY_SOCKET"] = notify_path
    argv = ["unshare", "--mount", "--propagation", "private",
            "sh", "-c", INSTALL, "install", str(overlay), str(out), str(deb),
            "/usr/sbin/mvirt-vmm", "--hypervisor", str(CH_EMU), "--default-network", "off",
            "--listen", "unix:/run/mvirt/mvirt.sock", "--listen", f"127.0.0.1:{port}"]
    log = open(tmp_path / "mvirt-vmm.log", "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    try:
        deadline = time.monotonic() + READY_TIMEOUT + 300  # apt-get first
        notify.settimeout(0.2)
        ready = False
        while not ready:
            try:
                ready = b"READY=1" in notify.recv(4096).split(b"\n")
                continue
            except socket.timeout:
                pass
            rc = proc.poll()
            install_log = (out / "install.log").read_text(errors="replace") \
                if (out / "install.log").exists() else ""
            assert rc is None, "exit %s\n%s\n%s" % (
                rc, install_log[-4000:], (tmp_path / "mvirt-vmm.log").read_text())
            assert time.monotonic() < deadline, "no READY=1\n" + install_log[-4000:]

        root = Path(f"/proc/{proc.pid}/root")
        group = (out / "group").read_text().strip()
        assert group.startswith("mvirt:"), group
        gid = int(group.split(":")[2])
        assert gid < 1000, group  # a system group (addgroup --system)
        conffiles = (out / "conffiles").read_text().split()
        assert "/etc/mvirt/mvirt-vmm.conf" in conffiles, conffiles
        # loaded with dlopen, so named by hand (debian/control)
        depends = (out / "depends").read_text()
        assert "libnftables1" in depends, depends
        assert (out / "enabled").read_text() == "", "units enabled on install"
        for unit in ("mvirt-vmm.service", "mvirt-vmm.socket", "mvirt-web.service"):
            text = (root / "lib/systemd/system" / unit).read_text()
            assert "/usr/local" not in text, unit
        assert "ExecStart=/usr/sbin/mvirt-vmm" in \
            (root / "lib/systemd/system/mvirt-vmm.service").read_text()
        if shutil.which("systemd-analyze"):  # systemd's own reading of the installed units
            r = subprocess.run(
                ["nsenter", f"--mount=/proc/{proc.pid}/ns/mnt", "systemd-analyze", "verify",
                 "--man=no", "/lib/systemd/system/mvirt-vmm.socket",
                 "/lib/systemd/system/mvirt-vmm.service", "/lib/systemd/system/mvirt-web.service"],
                capture_output=True, text=True, timeout=60)
            assert (r.returncode, r.stdout + r.stderr) == (0, ""), r

        # the default state directory, in the overlay of /var
        assert (root / "var/lib/mvirt/mvirt.db").exists()
        sock = root / "run/mvirt/mvirt.sock"
        st = sock.stat()
        assert (st.st_mode & 0o777, st.st_gid) == (0o660, gid)

        # the conffile as shipped is valid, and reads as the defaults
        r = subprocess.run(["nsenter", f"--mount=/proc/{proc.pid}/ns/mnt", "/usr/sbin/mvirt-vmm",
                            "--check-config"], capture_output=True, text=True)
        assert r.returncode == 0 and "/etc/mvirt/mvirt-vmm.conf" in r.stdout, r

        # grpcurl -plaintext -d '{...}' 127.0.0.1:PORT mvirt.VmService/CreateVm
        req_cls, _ = mvirt_proto.method_types("CreateVm")
        req = json_format.Parse(CREATE_JSON % vm_files["kernel"], req_cls())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            vm = mvirt_proto.unary(ch, "CreateVm")(req, timeout=10)
        assert vm.name == "pkg-vm" and vm.config.kernel == vm_files["kernel"]

        # the installed CLI, over the Unix socket
        r = subprocess.run(["nsenter", f"--mount=/proc/{proc.pid}/ns/mnt", "/usr/bin/mvirt",
                            "-o", "json", "list"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r
        assert [v["name"] for v in json.loads(r.stdout)["vms"]] == ["pkg-vm"]

        # purge: the package's files and conffile go; the state and the group stay
        r = subprocess.run(["nsenter", f"--mount=/proc/{proc.pid}/ns/mnt", "dpkg", "--purge",
                            "mvirt"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r
        assert not (root / "usr/sbin/mvirt-vmm").exists()
        assert not (root / "etc/mvirt/mvirt-vmm.conf").exists()
        assert (root / "var/lib/mvirt/mvirt.db").exists()
        assert f"\nmvirt:x:{gid}:" in "\n" + (root / "etc/group").read_text()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        notify.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(overlay, ignore_errors=True)
    # this machine is as it was: no package, no group
    assert (subprocess.run(["dpkg-query", "-W", "mvirt"], capture_output=True).returncode
            == 0) == host_has_pkg
    assert (subprocess.run(["getent", "group", "mvirt"], capture_output=True).returncode
            == 0) == host_has_group
    assert not Path("/usr/sbin/mvirt-vmm").exists() or host_has_pkg


# A container whose root is this machine's own file system under an overlay (upper layer on a
# tmpfs of the mount namespace's own), with systemd as its PID 1: nothing of the machine
# changes, nothing is downloaded. nspawn gets a cgroup of its own (it splits it into
# supervisor/ and payload/), removed afterwards; the machine's mvirt state and drop-ins are
# whited out in the overlay as on a fresh install; timers.target is masked (no apt-daily in
# the middle of the test).
BOOT = r"""
set -eu
t=$1 debdir=$2 chemu=$3
shift 3
for cg in "$@"; do
	echo $$ >"$cg/cgroup.procs"
done
mount -t tmpfs tmpfs "$t"
mount -t tmpfs tmpfs /run
mkdir "$t/up" "$t/work" "$t/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$t/up,workdir=$t/work" "$t/root"
rm -rf "$t/root/var/lib/mvirt" "$t/root/var/lib/mvirt-web" "$t/root/var/lib/private/mvirt-web" \
	"$t/root/etc/systemd/system/mvirt-"*
ln -s /dev/null "$t/root/etc/systemd/system/timers.target"
exec systemd-nspawn --quiet --boot --directory "$t/root" --private-network --register=no \
	--keep-unit --link-journal=no --notify-ready=yes --console=pipe \
	--bind-ro="$debdir:/mnt/mvirt-deb" --bind-ro="$chemu:/opt/ch-emu" -- --unit=basic.target
"""
SYSTEMD_READY_TIMEOUT = 60.0


def _cgroup_roots():
    """The hierarchies nspawn places its container in: name=systemd and the unified one of
    a hybrid setup, or /sys/fs/cgroup itself when it is cgroup2 only."""
    base = Path("/sys/fs/cgroup")
    roots = [base / h for h in ("systemd", "unified") if (base / h / "cgroup.procs").exists()]
    return roots or [base]


def _rmdir_cgroup(path: Path):
    """path and its children, deepest first; their processes may take a moment to be gone."""
    deadline = time.monotonic() + 10
    while path.exists():
        try:
            for d in sorted((p for p in path.rglob("*") if p.is_dir()),
                            key=lambda p: len(p.parts), reverse=True) + [path]:
                d.rmdir()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_package_under_systemd(deb, tmp_path):
    """The installed package under a real systemd as PID 1 (systemd-nspawn --boot): apt-get
    install enables and starts nothing; starting mvirt-vmm.socket gives root:mvirt 0660 on
    /run/mvirt/mvirt.sock, and the first connection starts mvirt-vmm.service (socket
    activation, Type=notify up to active); a grpcurl-style CreateVm and a StartVm (the
    cloud-hypervisor emulator, set in the conffile as an admin would) work through the unit's
    sandbox; the daemon's lines are in the journal with MVIRT_VM_NAME and MVIRT_VM_ID;
    systemctl restart keeps the VM's hypervisor running (KillMode=process) and the new daemon
    re-adopts it; mvirt-web.service starts as its dynamic user and serves its page, without
    errors in its journal. The container's network is its own (--private-network)."""
    if os.geteuid() != 0:
        pytest.skip("booting systemd in a container needs root (nspawn, overlayfs, cgroups)")
    _need("systemd-nspawn", "unshare", "nsenter")
    if not Path("/lib/systemd/systemd").exists():
        pytest.skip("systemd is not installed (/lib/systemd/systemd)")

    top = Path(tempfile.mkdtemp(prefix="mvsd", dir="/tmp"))
    cgroups = [r / f"mvirt-test-{top.name}" for r in _cgroup_roots()]
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "JOURNAL_"))}
    env["NOTIFY_SOCKET"] = notify_path
    log_path = tmp_path / "nspawn.log"
    log = open(log_path, "wb")
    proc = None

    def boot_log():
        return log_path.read_text(errors="replace")[-6000:]

    try:
        for cg in cgroups:
            cg.mkdir()
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", BOOT, "boot",
             str(top), str(deb.parent), str(CH_EMU.parent), *map(str, cgroups)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)

        # nspawn says READY=1 once the container's systemd has, and names its PID 1
        leader, ready = None, False
        deadline = time.monotonic() + SYSTEMD_READY_TIMEOUT
        notify.settimeout(0.2)
        while not (ready and leader):
            try:
                for line in notify.recv(4096).decode().split("\n"):
                    if line == "READY=1":
                        ready = True
                    elif line.startswith("X_NSPAWN_LEADER_PID="):
                        leader = int(line.split("=", 1)[1])
                continue
            except socket.timeout:
                pass
            assert proc.poll() is None, f"nspawn exited {proc.returncode}\n{boot_log()}"
            assert time.monotonic() < deadline, "systemd did not become ready\n" + boot_log()
        root = Path(f"/proc/{leader}/root")

        def run(*argv, check=True, timeout=60):
            r = subprocess.run(["nsenter", "-t", str(leader), "-a", "-r", "-w", *argv],
                               capture_output=True, text=True, timeout=timeout)
            assert r.returncode == 0 or not check, (argv, r.returncode, r.stdout, r.stderr)
            return r.stdout.strip()

        def show(unit, prop):
            return run("systemctl", "show", "-P", prop, unit)

        def journal(*match):
            out = run("journalctl", "--no-pager", "-o", "json", *match)
            return [json.loads(line) for line in out.splitlines()]

        assert run("systemctl", "is-system-running", "--wait", check=False) == "running", \
            run("systemctl", "--failed", "--no-pager", check=False)

        r = subprocess.run(
            ["nsenter", "-t", str(leader), "-a", "-r", "-w", "env",
             "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
             "--no-install-recommends", f"/mnt/mvirt-deb/{deb.name}"],
            capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
        units = ("mvirt-vmm.socket", "mvirt-vmm.service", "mvirt-web.service")
        # installed, neither enabled nor started (dh_installsystemd --no-enable --no-start)
        assert run("systemctl", "is-enabled", *units, check=False).split() == ["disabled"] * 3
        assert run("systemctl", "is-active", *units, check=False).split() == ["inactive"] * 3

        with open(root / "etc/mvirt/mvirt-vmm.conf", "a") as f:
            f.write("hypervisor = /opt/ch-emu/ch-emu\ndefault_network = off\n")
        kernel = root / "srv/mvirt-test/kernel"  # outside /tmp: the unit has PrivateTmp
        kernel.parent.mkdir(parents=True)
        kernel.write_bytes(b"\x7fELF not really a kernel\n")

        run("systemctl", "start", "mvirt-vmm.socket")
        gid = int(run("getent", "group", "mvirt").split(":")[2])
        st = (root / "run/mvirt/mvirt.sock").stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, gid, 0o660)
        assert show("mvirt-vmm.service", "ActiveState") == "inactive"  # until a client comes

        # grpcurl -plaintext -unix -d '{...}' /run/mvirt/mvirt.sock mvirt.VmService/CreateVm
        pb = mvirt_proto.mvirt_pb2
        with grpc.insecure_channel(f"unix:{root}/run/mvirt/mvirt.sock") as ch:
            req = json_format.Parse(
                CREATE_JSON.replace("pkg-vm", "sd-vm") % "/srv/mvirt-test/kernel",
                pb.CreateVmRequest())
            vm = mvirt_proto.unary(ch, "CreateVm")(req, timeout=30)
            assert vm.name == "sd-vm"
            vm = mvirt_proto.unary(ch, "StartVm")(pb.StartVmRequest(vm="sd-vm"), timeout=30)
            assert vm.state == pb.VM_STATE_RUNNING and vm.pid > 0, vm
        assert (show("mvirt-vmm.service", "ActiveState"),
                show("mvirt-vmm.service", "SubState")) == ("active", "running")
        assert show("mvirt-vmm.service", "TriggeredBy") == "mvirt-vmm.socket"
        assert show("mvirt-vmm.service", "StatusText").startswith("serving"), \
            show("mvirt-vmm.service", "StatusText")
        main_pid = show("mvirt-vmm.service", "MainPID")

        # the journal, structured: journalctl -u mvirt-vmm MVIRT_VM_NAME=sd-vm
        deadline = time.monotonic() + 10
        while True:
            entries = journal("-u", "mvirt-vmm.service", "MVIRT_VM_NAME=sd-vm")
            msgs = [e["MESSAGE"] for e in entries]
            if any(m.startswith("vm sd-vm: running") for m in msgs) or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert any(m.startswith("vm sd-vm: created") for m in msgs), msgs
        assert any(m.startswith("vm sd-vm: running") for m in msgs), msgs
        assert {(e["MVIRT_VM_ID"], e["_SYSTEMD_UNIT"]) for e in entries} == \
            {(vm.id, "mvirt-vmm.service")}, entries

        # KillMode=process: the VM's hypervisor outlives the daemon; the next one re-adopts it
        run("systemctl", "restart", "mvirt-vmm.service")
        assert show("mvirt-vmm.service", "ActiveState") == "active"
        assert show("mvirt-vmm.service", "MainPID") != main_pid
        assert (root / f"proc/{vm.pid}/cmdline").read_bytes().split(b"\0")[1] == \
            b"/opt/ch-emu/ch-emu"
        with grpc.insecure_channel(f"unix:{root}/run/mvirt/mvirt.sock") as ch:
            vms = mvirt_proto.unary(ch, "ListVms")(pb.ListVmsRequest(), timeout=30).vms
        assert [(v.name, v.state, v.pid) for v in vms] == \
            [("sd-vm", pb.VM_STATE_RUNNING, vm.pid)]
        assert f"vm sd-vm: re-adopted cloud-hypervisor pid {vm.pid}" in \
            [e["MESSAGE"] for e in journal("-u", "mvirt-vmm.service")]

        # mvirt-web: a dynamic user in group mvirt, Type=notify, behind its sandbox
        run("systemctl", "start", "mvirt-web.service")
        assert show("mvirt-web.service", "ActiveState") == "active"
        page = run("python3", "-c", "import urllib.request; print(urllib.request.urlopen("
                   "'http://127.0.0.1:8080/', timeout=10).status)")
        assert page == "200"
        web = [e["MESSAGE"] for e in journal("-u", "mvirt-web.service", "_COMM=mvirt-web")]
        assert any(m.startswith("mvirt-web: serving http://127.0.0.1:8080/") for m in web), web
        assert not any(" E: " in m for m in web), web  # libwebsockets' errors

        # nothing at "err" or worse from the daemons or from systemd about their units
        bad = [(e.get("_SYSTEMD_UNIT"), e["MESSAGE"]) for e in journal("-p", "err")
               if "mvirt" in e.get("_SYSTEMD_UNIT", "") + e.get("UNIT", "")]
        assert bad == []
    finally:
        notify.close()
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()  # nspawn: the container powers off
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()  # and its PID 1 with it (PR_SET_PDEATHSIG)
                    proc.wait()
        log.close()
        for cg in cgroups:
            _rmdir_cgroup(cg)
        shutil.rmtree(top, ignore_errors=True)
    assert proc.returncode == 0, boot_log()
