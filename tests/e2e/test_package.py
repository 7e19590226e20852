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

PID 1 here is not systemd, so the service is not started through systemctl; the unit files are
checked as installed files. The package is built once per session from a copy of the tracked
files (the source tree is never written to), with DEB_BUILD_OPTIONS=nocheck."""

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
              "/usr/share/doc/mvirt/copyright"):
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
