"""VM disks that name storage-manager volumes, and cloud-init NoCloud seeds (issue 5, VM side).

Simulated guests (ch-emu, fast) check what the daemon hands to cloud-hypervisor: the VmConfig
the hypervisor holds (GET vm.info on the VM's API socket) has the volume's file with the right
image_type and backing_files, and the seed as the last disk, read-only and raw; the seed image
itself holds the files cloud-init reads (checked with mtools); CreateVm refuses unknown volumes
and pool paths that are not volumes; a seed that cannot be built fails the start with the tool's
message and leaves nothing behind.

Real guests (QEMU/TCG through ch-emu, `chemu.guest=real`) prove the whole path: an ext4 image
imported as a volume, cloned, booted from the clone; what the guest writes lands in the clone
only. And a guest mounts its seed (label CIDATA) and prints its user-data on the console.
"""

import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

import grpc
import pytest

import mvirt_proto
from guest import (
    CH_EMU,
    READY_MARKER,
    SEED_PRINT,
    console_text,
    guest_dir,
    make_ext4,
    read_ext4,
    require_tools,
    run_arg,
    wait_console,
)
from test_real_guest import (
    BOOT_TIMEOUT,
    LINUX_CMDLINE,
    assert_clean_ext4,
    start,
    stop_gracefully,
    vm_procs,  # noqa: F401  (a fixture)
)

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode
VOLUME_SERVICE = "/mvirt.VolumeService/"
SEED = "seed.img"


# ---- VolumeService, VmService ------------------------------------------------------------------

def vol_call(d, method, request, resp_cls, timeout=60):
    fn = d.channel().unary_unary(VOLUME_SERVICE + method,
                                 request_serializer=type(request).SerializeToString,
                                 response_deserializer=resp_cls.FromString)
    return fn(request, timeout=timeout)


def create_volume(d, name, size, fmt=pb.DISK_FORMAT_RAW):
    return vol_call(d, "CreateVolume",
                    pb.CreateVolumeRequest(name=name, size_bytes=size, format=fmt), pb.Volume)


def import_volume(d, name, source, fmt=pb.DISK_FORMAT_UNSPECIFIED):
    """ImportVolume, reading the progress stream to its end; returns the volume."""
    fn = d.channel().unary_stream(VOLUME_SERVICE + "ImportVolume",
                                  request_serializer=pb.ImportVolumeRequest.SerializeToString,
                                  response_deserializer=pb.VolumeProgress.FromString)
    last = None
    for msg in fn(pb.ImportVolumeRequest(name=name, source_path=str(source), format=fmt),
                  timeout=120):
        last = msg
    assert last is not None and last.HasField("volume"), last
    return last.volume


def clone_volume(d, source, name):
    return vol_call(d, "CloneVolume", pb.CloneVolumeRequest(source=source, name=name), pb.Volume)


def get_volume(d, name):
    return vol_call(d, "GetVolume", pb.GetVolumeRequest(name=name), pb.Volume)


def delete_volume(d, name):
    return vol_call(d, "DeleteVolume", pb.DeleteVolumeRequest(name=name),
                    pb.DeleteVolumeResponse)


def rpc_error(fn, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as ei:
        fn(*args, **kw)
    return ei.value


def create(d, name, config):
    return d.call("CreateVm", pb.CreateVmRequest(name=name, config=config))


def start_vm(d, vm):
    v = d.call("StartVm", pb.StartVmRequest(vm=vm.id), timeout=60)
    assert v.state == pb.VM_STATE_RUNNING, (pb.VmState.Name(v.state), v.state_reason)
    return v


def stop_vm(d, vm):
    return d.call("StopVm", pb.StopVmRequest(vm=vm.id), timeout=60)


# ---- the hypervisor's side ----------------------------------------------------------------------

class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def rundir(d, vm) -> Path:
    return Path(d.runtime_dir) / "vms" / vm.id


def hv_disks(d, vm) -> list:
    """config.disks of the VmConfig the hypervisor holds (GET vm.info on its API socket), a
    disk given by path as the file it opens: the daemon hands such files over as fds, named
    /proc/self/fd/N (translated here), volumes and the seed by their paths."""
    pid = d.call("GetVm", pb.GetVmRequest(vm=vm.id)).pid
    disks = _hv_disks(d, vm)
    for x in disks:
        if x["path"].startswith("/proc/self/fd/"):
            x["path"] = os.readlink(f"/proc/{pid}/fd/" + x["path"].rsplit("/", 1)[1])
    return disks


def _hv_disks(d, vm) -> list:
    c = _UnixHTTP(str(rundir(d, vm) / "api.sock"))
    try:
        c.request("GET", "/api/v1/vm.info")
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
        return json.loads(body)["config"]["disks"]
    finally:
        c.close()


def mtools(*args) -> str:
    res = subprocess.run(list(args), capture_output=True, text=True,
                         env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    assert res.returncode == 0, f"{args}: {res.returncode}\n{res.stderr}"
    return res.stdout


def seed_files(image) -> dict:
    """{name: text} of the files in the root of the FAT image, and its label under ''."""
    names = [line.rsplit("/", 1)[-1] for line in mtools("mdir", "-b", "-i", str(image), "::")
             .splitlines() if line.strip()]
    files = {n: mtools("mtype", "-i", str(image), "::" + n) for n in names}
    files[""] = mtools("mlabel", "-s", "-i", str(image), "::").strip()
    return files


def sim_daemon(make_daemon, env=None):
    """A daemon on ch-emu with simulated guests (whatever $MVIRT_TEST_CH says: these tests
    read ch-emu's vm.info and boot fake kernels)."""
    return make_daemon(extra_args=["--hypervisor", str(CH_EMU)], env=env, fd_check=True)


def sim_config(files, disks=(), **kw):
    return pb.VmConfig(vcpus=1, memory_mb=128, kernel=files["kernel"],
                       initramfs=files["initramfs"], cmdline="console=ttyS0", disks=list(disks),
                       **kw)


def assert_left_nothing(d, vm):
    v = d.call("GetVm", pb.GetVmRequest(vm=vm.id))
    assert v.pid == 0 and v.state == pb.VM_STATE_STOPPED, v
    assert not rundir(d, vm).exists(), sorted(os.listdir(rundir(d, vm)))
    assert d.hypervisor_pids() == [], "hypervisor processes left"


# ---- simulated guests: volumes ----------------------------------------------------------------

def test_volume_disks_reach_the_hypervisor_with_their_format(make_daemon, vm_files):
    require_tools("qemu-img")
    d = sim_daemon(make_daemon)
    raw = create_volume(d, "data-raw", 8 << 20)
    base = create_volume(d, "base-q", 16 << 20, pb.DISK_FORMAT_QCOW2)
    clone = clone_volume(d, "base-q", "clone-q")
    assert clone.format == pb.DISK_FORMAT_QCOW2 and clone.backing_volume == "base-q", clone
    vm = create(d, "vols", sim_config(vm_files, [
        pb.Disk(volume="data-raw"),
        pb.Disk(volume="base-q", readonly=True),
        pb.Disk(volume="clone-q"),
        pb.Disk(path=vm_files["disk2"]),
    ]))
    assert [x.volume for x in vm.config.disks] == ["data-raw", "base-q", "clone-q", ""]

    start_vm(d, vm)
    got = hv_disks(d, vm)
    assert [x["path"] for x in got] == [raw.path, base.path, clone.path, vm_files["disk2"]]
    assert [x["image_type"] for x in got] == ["Raw", "Qcow2", "Qcow2", "Raw"]
    # backing_files only for the overlay (a qcow2 volume of its own has no backing file).
    assert [x.get("backing_files", False) for x in got] == [False, False, True, False]
    assert [x.get("readonly", False) for x in got] == [False, True, False, False]
    # No seed without user_data.
    assert not (rundir(d, vm) / SEED).exists()

    # Named by a VM: used_by says so; in use by a running VM: neither deleted nor resized.
    assert list(get_volume(d, "clone-q").used_by) == ["vols"]
    err = rpc_error(delete_volume, d, "clone-q")
    assert err.code() == Code.FAILED_PRECONDITION and "vols" in err.details(), err.details()
    err = rpc_error(vol_call, d, "ResizeVolume",
                    pb.ResizeVolumeRequest(name="data-raw", size_bytes=16 << 20), pb.Volume)
    assert err.code() == Code.FAILED_PRECONDITION and "vols" in err.details(), err.details()

    stop_vm(d, vm)
    assert_left_nothing(d, vm)
    # The volumes' files are the same ones before and after: nothing moved them.
    assert Path(raw.path).is_file() and Path(clone.path).is_file()


def test_unknown_volume_is_refused_at_create(make_daemon, vm_files):
    d = sim_daemon(make_daemon)
    create_volume(d, "present", 1 << 20)
    err = rpc_error(create, d, "novol",
                    sim_config(vm_files, [pb.Disk(volume="present"), pb.Disk(volume="absent")]))
    assert err.code() == Code.INVALID_ARGUMENT
    assert err.details() == "config.disks[1].volume: volume 'absent' not found", err.details()
    assert len(d.call("ListVms").vms) == 0


def test_a_volume_with_clones_is_attached_read_only_only(make_daemon, vm_files):
    # Writing to a backing volume would corrupt its clones.
    d = sim_daemon(make_daemon)
    create_volume(d, "base", 1 << 20, pb.DISK_FORMAT_QCOW2)
    clone_volume(d, "base", "child")
    rw = create(d, "rw", sim_config(vm_files, [pb.Disk(volume="base")]))
    err = rpc_error(d.call, "StartVm", pb.StartVmRequest(vm=rw.id), timeout=60)
    assert err.code() == Code.FAILED_PRECONDITION, err.details()
    assert "clone 'child'" in err.details() and "read-only" in err.details(), err.details()
    assert_left_nothing(d, rw)
    ro = create(d, "ro", sim_config(vm_files, [pb.Disk(volume="base", readonly=True)]))
    start_vm(d, ro)
    kid = create(d, "kid", sim_config(vm_files, [pb.Disk(volume="child")]))
    start_vm(d, kid)
    for vm in (ro, kid):
        d.call("KillVm", pb.KillVmRequest(vm=vm.id), timeout=30)


def test_same_volume_twice_is_refused(make_daemon, vm_files):
    d = sim_daemon(make_daemon)
    vol = create_volume(d, "twice", 1 << 20)
    err = rpc_error(create, d, "dup",
                    sim_config(vm_files, [pb.Disk(volume="twice"), pb.Disk(volume="twice")]))
    assert err.code() == Code.INVALID_ARGUMENT
    assert "config.disks[1].volume" in err.details() and "config.disks[0]" in err.details()
    # Its file by path beside its name: the storage manager says "use the volume", or the
    # duplicate check says it is the same disk; refused either way.
    err = rpc_error(create, d, "dup2",
                    sim_config(vm_files, [pb.Disk(volume="twice"), pb.Disk(path=vol.path)]))
    assert err.code() == Code.INVALID_ARGUMENT
    assert "config.disks[1].path" in err.details(), err.details()


def test_pool_paths_must_be_volumes(make_daemon, vm_files):
    d = sim_daemon(make_daemon)
    vol = create_volume(d, "real-vol", 1 << 20)
    pool = Path(vol.path).parent
    stray = pool / "stray.raw"
    stray.write_bytes(b"\0" * 4096)
    for disks, shorthand, field in (
        ([pb.Disk(path=str(stray))], "", "config.disks[0].path"),
        ([], str(stray), "config.disk"),
    ):
        err = rpc_error(create, d, "stray", sim_config(vm_files, disks, disk=shorthand))
        assert err.code() == Code.INVALID_ARGUMENT, err.details()
        assert err.details().startswith(field + ": "), err.details()
        assert str(stray) in err.details() and "not one of its volumes" in err.details()
    # Outside the pools, paths stay allowed.
    create(d, "outside", sim_config(vm_files, [pb.Disk(path=vm_files["disk"])]))


def test_volume_users_by_name_and_path(make_daemon, vm_files):
    d = sim_daemon(make_daemon)
    vol = create_volume(d, "shared", 1 << 20)
    create(d, "by-name", sim_config(vm_files, [pb.Disk(volume="shared")]))
    create(d, "by-path", sim_config(vm_files, [pb.Disk(path=vol.path)]))
    create(d, "other", sim_config(vm_files, [pb.Disk(path=vm_files["disk"])]))
    assert list(get_volume(d, "shared").used_by) == ["by-name", "by-path"]
    err = rpc_error(delete_volume, d, "shared")
    assert err.code() == Code.FAILED_PRECONDITION
    assert "by-name" in err.details() and "by-path" in err.details(), err.details()
    for name in ("by-name", "by-path"):
        d.call("DeleteVm", pb.DeleteVmRequest(vm=name))
    assert list(get_volume(d, "shared").used_by) == []
    delete_volume(d, "shared")


# ---- simulated guests: cloud-init seeds -------------------------------------------------------

def test_seed_is_the_last_disk_read_only(make_daemon, vm_files):
    require_tools("mdir", "mtype", "mlabel")
    d = sim_daemon(make_daemon)
    ud = "#cloud-config\n# mvirt-test-" + secrets.token_hex(8) + "\nruncmd: [[echo, hi]]\n"
    vm = create(d, "seeded", sim_config(vm_files, [pb.Disk(path=vm_files["disk"])],
                                        user_data=ud))
    start_vm(d, vm)
    seed = rundir(d, vm) / SEED
    got = hv_disks(d, vm)
    assert len(got) == 2
    assert got[0]["path"] == vm_files["disk"]
    assert got[1]["path"] == str(seed)
    assert got[1]["readonly"] is True and got[1]["image_type"] == "Raw", got[1]
    assert not got[1].get("backing_files", False)
    assert seed.is_file()
    files = seed_files(seed)
    assert files[""] == "Volume label is CIDATA", files[""]
    assert sorted(files) == ["", "meta-data", "user-data"]
    assert files["user-data"] == ud
    assert files["meta-data"] == f"instance-id: {vm.id}\nlocal-hostname: seeded\n"
    # Only the seed is new in the runtime directory; nothing is left of its build.
    assert sorted(p.name for p in rundir(d, vm).iterdir()) == sorted(
        ["api.sock", "events.json", "serial.sock", SEED])

    stop_vm(d, vm)
    assert_left_nothing(d, vm)
    # A second start builds it afresh (the previous one went with the runtime directory).
    start_vm(d, vm)
    assert seed_files(rundir(d, vm) / SEED)["user-data"] == ud
    stop_vm(d, vm)
    assert_left_nothing(d, vm)


def test_seed_with_meta_data_and_network_config(make_daemon, vm_files):
    require_tools("mdir", "mtype", "mlabel")
    d = sim_daemon(make_daemon)
    md = "instance-id: custom-1\nlocal-hostname: given-name\n"
    nc = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"
    vm = create(d, "seeded2", sim_config(vm_files, user_data="#cloud-config\n", meta_data=md,
                                         network_config=nc))
    start_vm(d, vm)
    got = hv_disks(d, vm)
    assert [x["path"] for x in got] == [str(rundir(d, vm) / SEED)]
    files = seed_files(rundir(d, vm) / SEED)
    assert files["meta-data"] == md and files["network-config"] == nc
    assert files["user-data"] == "#cloud-config\n"
    stop_vm(d, vm)
    assert_left_nothing(d, vm)


def test_seed_failure_fails_the_start_and_leaves_nothing(make_daemon, vm_files, tmp_path):
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    mcopy = fakebin / "mcopy"
    mcopy.write_text("#!/bin/sh\necho 'mcopy: injected failure: no room' >&2\nexit 4\n")
    mcopy.chmod(0o755)
    d = sim_daemon(make_daemon, env={"PATH": f"{fakebin}:{os.environ.get('PATH', '/usr/bin')}"})
    vm = create(d, "badseed", sim_config(vm_files, user_data="#cloud-config\n"))
    err = rpc_error(start_vm, d, vm)
    assert err.code() == Code.INTERNAL, (err.code(), err.details())
    assert err.details() == (
        "vm 'badseed': cannot build its cloud-init seed: mcopy exited with status 4: "
        "mcopy: injected failure: no room"), err.details()
    assert_left_nothing(d, vm)
    # No hypervisor was spawned: there is no hypervisor log either.
    assert not (Path(d.state_dir) / "vms" / vm.id / "hypervisor.log").exists()


# ---- real guests --------------------------------------------------------------------------------

def real_daemon(make_daemon):
    require_tools("qemu-system-x86_64")
    return make_daemon(extra_args=["--hypervisor", str(CH_EMU)])


def linux_config(build_dir, snippet, disks, cmdline_extra="", **kw):
    g = guest_dir(build_dir)
    return pb.VmConfig(vcpus=1, memory_mb=256, kernel=str(g / "vmlinuz"),
                       initramfs=str(g / "initramfs.gz"),
                       cmdline=f"{LINUX_CMDLINE} {cmdline_extra} {run_arg(snippet)}".strip(),
                       disks=disks, **kw)


def to_raw(image, out) -> Path:
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(out)], check=True)
    return Path(out)


def test_boot_from_a_clone_writes_the_clone_only(make_daemon, build_dir, tmp_path, vm_procs):
    """The issue's proof: import an ext4 image as a volume, clone it, boot a VM from the clone;
    the guest's file is in the clone and not in the base."""
    require_tools("mkfs.ext4", "debugfs", "e2fsck", "qemu-img")
    src = make_ext4(tmp_path / "src.raw", 64, {"base.txt": "from-base\n"})
    d = real_daemon(make_daemon)
    base = import_volume(d, "base", src, pb.DISK_FORMAT_QCOW2)
    assert base.format == pb.DISK_FORMAT_QCOW2, base
    clone = clone_volume(d, "base", "vm-disk")
    assert clone.backing_volume == "base" and clone.format == pb.DISK_FORMAT_QCOW2, clone
    base_sum = subprocess.run(["sha256sum", base.path], capture_output=True, text=True,
                              check=True).stdout.split()[0]

    cfg = linux_config(build_dir,
                       "cat /mnt/base.txt > /mnt/seen.txt; echo from-guest > /mnt/clone.txt; "
                       "sync",
                       [pb.Disk(volume="vm-disk")])
    vm = create(d, "fromclone", cfg)
    procs = start(d, vm, vm_procs)
    text = wait_console(d, vm.id, READY_MARKER, timeout=BOOT_TIMEOUT)
    assert "mvirt.run exited with status 0" in text, text[-2000:]
    stop_gracefully(d, vm, procs)

    flat_clone = to_raw(clone.path, tmp_path / "clone.raw")
    assert read_ext4(flat_clone, "clone.txt") == b"from-guest\n"
    assert read_ext4(flat_clone, "seen.txt") == b"from-base\n"
    assert_clean_ext4(flat_clone)
    flat_base = to_raw(base.path, tmp_path / "base.raw")
    with pytest.raises(FileNotFoundError):
        read_ext4(flat_base, "clone.txt")
    assert read_ext4(flat_base, "base.txt") == b"from-base\n"
    assert subprocess.run(["sha256sum", base.path], capture_output=True, text=True,
                          check=True).stdout.split()[0] == base_sum, "the base was written"
    with pytest.raises(FileNotFoundError):
        read_ext4(src, "clone.txt")


def test_guest_reads_its_cloud_init_seed(make_daemon, build_dir, tmp_path, vm_procs):
    require_tools("mkfs.ext4", "debugfs", "e2fsck")
    marker = "mvirt-test-" + secrets.token_hex(8)
    disk = make_ext4(tmp_path / "disk.raw", 32, {})
    d = real_daemon(make_daemon)
    ud = f"#cloud-config\n# {marker}\n"
    cfg = linux_config(build_dir, "cp /seed/meta-data /mnt/meta-data; sync",
                       [pb.Disk(path=str(disk))], cmdline_extra=SEED_PRINT,
                       user_data=ud)
    vm = create(d, "cidata", cfg)
    procs = start(d, vm, vm_procs)
    text = wait_console(d, vm.id, READY_MARKER, timeout=BOOT_TIMEOUT)
    assert "mvirt.run exited with status 0" in text, text[-2000:]
    # The seed is the last disk (vdb); the data disk keeps vda.
    assert "cloud-init seed /dev/vdb mounted on /seed: meta-data user-data" in text, text[-3000:]
    assert marker in text, text[-3000:]
    printed = text.replace("\r\n", "\n")
    assert ("mvirt-guest: seed user-data begin\n#cloud-config\n# " + marker
            + "\nmvirt-guest: seed user-data end") in printed, printed[-3000:]
    assert (f"mvirt-guest: seed meta-data begin\ninstance-id: {vm.id}\nlocal-hostname: cidata\n"
            "mvirt-guest: seed meta-data end") in printed, printed[-3000:]
    stop_gracefully(d, vm, procs)
    assert read_ext4(disk, "meta-data") == f"instance-id: {vm.id}\nlocal-hostname: cidata\n".encode()
    assert_clean_ext4(disk)
    assert not rundir(d, vm).exists()
    assert "power button" in console_text(d, vm.id)
