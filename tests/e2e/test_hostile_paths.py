"""Paths judged by what they name, not by their file type alone: kernel files (procfs, sysfs,
/dev), magic links, and the daemon's own state and runtime files are refused as kernel,
initramfs, firmware, disk or import source, also through a symlink or a hard link, with
INVALID_ARGUMENT naming the field; and the same check holds again at StartVm (a file swapped for
a symlink to one of them after CreateVm is a failed precondition, never handed to the
hypervisor)."""

import glob
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import grpc
import pytest

import mvirt_proto
from test_api import assert_status, base_config, create, list_vms, rpc_error
from test_lifecycle import hv_info

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode


def sysfs_file():
    for p in sorted(glob.glob("/sys/kernel/*")):
        if os.path.isfile(p) and os.access(p, os.R_OK):
            return p
    pytest.skip("no readable file under /sys/kernel")


def hostile(d, tmp_path):
    """{label: path} of what must be refused (made now: links in tmp_path)."""
    db = d.state_dir / "mvirt.db"
    links = {"symlink-proc-mem": "/proc/self/mem", "symlink-db": str(db),
             "symlink-dir-state": str(d.state_dir)}
    out = {"proc-mem": "/proc/self/mem", "proc-magic-fd": "/proc/self/fd/0",
           "proc-pid-environ": f"/proc/{d.pid}/environ", "sysfs": sysfs_file(),
           "db": str(db), "db-wal": str(db) + "-wal", "instance-id": str(d.state_dir /
                                                                          "instance-id")}
    for label, target in links.items():
        link = tmp_path / label
        link.symlink_to(target)
        out[label] = str(link) + ("/mvirt.db" if label == "symlink-dir-state" else "")
    hard = d.base / "db-hardlink"  # same filesystem, outside the state dir
    os.link(db, hard)
    out["hardlink-db"] = str(hard)
    if os.path.isdir("/dev/shm"):
        shm = "/dev/shm/mvirt-test-%d" % os.getpid()
        with open(shm, "wb") as f:
            f.write(b"x" * 512)
        out["dev-shm-file"] = shm
    return out


WHERE = {
    "kernel": (lambda c, p: setattr(c, "kernel", p), r"^config\.kernel: "),
    "initramfs": (lambda c, p: setattr(c, "initramfs", p), r"^config\.initramfs: "),
    "disk": (lambda c, p: setattr(c, "disk", p), r"^config\.disk: "),
    "disks[1]": (lambda c, p: (c.disks.add(path=c.disk), c.disks.add(path=p),
                               setattr(c, "disk", "")), r"^config\.disks\[1\]\.path: "),
}


@pytest.fixture
def paths(daemon, tmp_path):
    out = hostile(daemon, tmp_path)
    yield out
    if "dev-shm-file" in out:
        os.unlink(out["dev-shm-file"])


def test_create_refuses_kernel_and_own_files(daemon, vm_files, paths):
    wrong = []
    for label, path in paths.items():
        for where, (setter, pattern) in WHERE.items():
            cfg = base_config(vm_files)
            setter(cfg, path)
            try:
                create(daemon, "h", cfg)
                wrong.append(f"{where} = {label} ({path}): accepted")
                daemon.call("DeleteVm", pb.DeleteVmRequest(vm="h"))
                continue
            except grpc.RpcError as e:
                import re
                if e.code() != Code.INVALID_ARGUMENT or not re.search(pattern, e.details()):
                    wrong.append(f"{where} = {label}: {e.code()} {e.details()!r}")
    assert not wrong, "\n".join(wrong)
    assert not list_vms(daemon).vms


def test_import_refuses_kernel_and_own_files(daemon, paths):
    imp = mvirt_proto.unary(daemon.channel(), "/mvirt.VolumeService/ImportVolume")
    wrong = []
    for label, path in paths.items():
        try:
            list(daemon.channel().unary_stream(
                "/mvirt.VolumeService/ImportVolume",
                request_serializer=pb.ImportVolumeRequest.SerializeToString,
                response_deserializer=pb.VolumeProgress.FromString)(
                    pb.ImportVolumeRequest(name="imp", source_path=path), timeout=10))
            wrong.append(f"{label} ({path}): imported")
        except grpc.RpcError as e:
            if e.code() != Code.INVALID_ARGUMENT or not e.details().startswith("source_path: "):
                wrong.append(f"{label}: {e.code()} {e.details()!r}")
    del imp
    assert not wrong, "\n".join(wrong)
    vols = mvirt_proto.unary(daemon.channel(), "/mvirt.VolumeService/ListVolumes")(
        pb.ListVolumesRequest(), timeout=5).volumes
    assert not vols


def test_a_good_symlink_is_fine(daemon, vm_files, tmp_path):
    link = tmp_path / "vmlinuz"
    link.symlink_to(vm_files["kernel"])
    create(daemon, "ok", base_config(vm_files, kernel=str(link)))
    assert get_kernel(daemon, "ok") == str(link)  # kept as the user wrote it


def get_kernel(d, vm):
    return d.call("GetVm", pb.GetVmRequest(vm=vm)).config.kernel


@pytest.mark.parametrize("target", ["proc-mem", "db"])
def test_a_file_swapped_after_create_is_refused_at_start(ch_daemon, vm_files, tmp_path, target):
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(open(vm_files["kernel"], "rb").read())
    create(ch_daemon, "swap", base_config(vm_files, kernel=str(kernel)))
    kernel.unlink()
    kernel.symlink_to("/proc/self/mem" if target == "proc-mem"
                      else str(ch_daemon.state_dir / "mvirt.db"))
    err = rpc_error(ch_daemon.call, "StartVm", pb.StartVmRequest(vm="swap"))
    assert_status(err, Code.FAILED_PRECONDITION, r"config\.kernel: ")
    vm = ch_daemon.call("GetVm", pb.GetVmRequest(vm="swap"))
    assert vm.state == pb.VM_STATE_STOPPED and not vm.pid
    assert not ch_daemon.hypervisor_pids()


def plain_vm(d, name, tmp_path):
    """A VM whose kernel and disk are plain files in tmp_path, and a secret beside them (a
    stand-in for /etc/shadow); (kernel, disk, secret) paths."""
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret\n")
    kernel, disk = tmp_path / "vmlinuz", tmp_path / "disk.raw"
    kernel.write_bytes(b"\x7fELF kernel")
    disk.write_bytes(b"\0" * 4096)
    cfg = pb.VmConfig(vcpus=1, memory_mb=64, kernel=str(kernel))
    cfg.disks.add(path=str(disk))
    create(d, name, cfg)
    return kernel, disk, secret


def test_a_file_swapped_for_a_symlink_to_an_ordinary_file_is_refused(ch_daemon, vm_files,
                                                                     tmp_path):
    """The issue's case: kernel and disk were plain files at CreateVm; by StartVm they are
    symlinks to a file the caller could not name (here a stand-in for /etc/shadow). Refused,
    also after a daemon restart (what was plain is stored with the VM)."""
    kernel, disk, secret = plain_vm(ch_daemon, "swapped", tmp_path)
    ch_daemon.restart()
    for path, field in ((kernel, r"config\.kernel"), (disk, r"config\.disks\[0\]\.path")):
        path.rename(str(path) + ".orig")
        path.symlink_to(secret)
        err = rpc_error(ch_daemon.call, "StartVm", pb.StartVmRequest(vm="swapped"))
        assert_status(err, Code.FAILED_PRECONDITION, field + r": .* now is reached through a "
                      r"symbolic link \(to .*shadow\)")
        path.unlink()
        os.rename(str(path) + ".orig", path)
    assert not ch_daemon.hypervisor_pids()
    # the plain files back: it starts
    vm = ch_daemon.call("StartVm", pb.StartVmRequest(vm="swapped"), timeout=30)
    assert vm.state == pb.VM_STATE_RUNNING
    ch_daemon.call("StopVm", pb.StopVmRequest(vm="swapped", force=True), timeout=30)


def test_a_symlink_given_at_create_may_be_retargeted(ch_daemon, vm_files, tmp_path):
    """Who names a symlink (/vmlinuz -> vmlinuz-6.1) keeps following it: a kernel upgrade that
    retargets it is no swap."""
    old, new = tmp_path / "vmlinuz-1", tmp_path / "vmlinuz-2"
    old.write_bytes(b"\x7fELF one")
    new.write_bytes(b"\x7fELF two")
    link = tmp_path / "vmlinuz"
    link.symlink_to(old)
    create(ch_daemon, "upgraded", pb.VmConfig(vcpus=1, memory_mb=64, kernel=str(link)))
    link.unlink()
    link.symlink_to(new)
    vm = ch_daemon.call("StartVm", pb.StartVmRequest(vm="upgraded"), timeout=30)
    assert vm.state == pb.VM_STATE_RUNNING
    ch_daemon.call("StopVm", pb.StopVmRequest(vm="upgraded", force=True), timeout=30)


def syscall_of(pid) -> str:
    """The number of the system call the thread is in (or stopped at), or "running"."""
    with open(f"/proc/{pid}/task/{pid}/syscall") as f:
        return f.read().split(" ", 1)[0].strip()


CLONE3 = "435"  # x86_64


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_what_runs_is_what_was_checked(ch_daemon, vm_files, tmp_path):
    """The window between the daemon's check and the hypervisor's open: the daemon is held
    (strace delays its spawn of the hypervisor, after every check), the kernel is replaced by
    another file and the disk by a symlink to a secret. The hypervisor still gets the files
    that were checked: vm.create names them as fds it inherited, and those fds are the
    original inodes. GetVm keeps the user's paths."""
    d = ch_daemon
    kernel, disk, secret = plain_vm(d, "held", tmp_path)
    checked = {"kernel": os.stat(kernel).st_ino, "disk": os.stat(disk).st_ino}

    st = subprocess.Popen(["strace", "-p", str(d.pid), "-e", "trace=clone3,clone", "-e",
                           "inject=clone3,clone:delay_enter=3000000:when=1", "-o", "/dev/null"],
                          stderr=subprocess.PIPE, text=True)
    try:
        assert "attached" in st.stderr.readline()
        result = {}
        t = threading.Thread(target=lambda: result.update(
            vm=d.call("StartVm", pb.StartVmRequest(vm="held"), timeout=30)))
        t.start()
        deadline = time.monotonic() + 20
        while syscall_of(d.pid) != CLONE3:
            assert time.monotonic() < deadline, "the daemon never reached its spawn"
            time.sleep(0.005)
        other = tmp_path / "other"
        other.write_bytes(b"\x7fELF another kernel")
        os.replace(other, kernel)
        disk.unlink()
        disk.symlink_to(secret)
        t.join(30)
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(10)
    vm = result["vm"]
    assert vm.state == pb.VM_STATE_RUNNING, vm
    assert vm.config.kernel == str(kernel) and vm.config.disks[0].path == str(disk)
    info = hv_info(d, vm)["config"]
    got = {"kernel": info["payload"]["kernel"], "disk": info["disks"][0]["path"]}
    for what, path in got.items():
        assert re.fullmatch(r"/proc/self/fd/\d+", path), (what, path)
        fd = path.rsplit("/", 1)[1]
        assert os.stat(f"/proc/{vm.pid}/fd/{fd}").st_ino == checked[what], what
    d.call("StopVm", pb.StopVmRequest(vm="held", force=True), timeout=30)
