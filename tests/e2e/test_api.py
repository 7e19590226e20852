"""The VmService API through an independent client (Python grpcio + protoc-generated messages):
CreateVm/GetVm/ListVms/DeleteVm, every error status with the field it names, GetVersion and
GetSystemInfo, against a real mvirt-vmm."""

import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path

import grpc
import pytest

import mvirt_proto

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
REPO = Path(__file__).resolve().parents[2]
LIFECYCLE = ("StartVm", "StopVm", "KillVm", "RebootVm", "PauseVm", "ResumeVm")


def meminfo_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def base_config(files, **kw) -> "pb.VmConfig":
    c = pb.VmConfig(vcpus=1, memory_mb=128, kernel=files["kernel"], disk=files["disk"])
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def create(daemon, name, config, **kw):
    return daemon.call("CreateVm", pb.CreateVmRequest(name=name, config=config), **kw)


def get(daemon, vm):
    return daemon.call("GetVm", pb.GetVmRequest(vm=vm))


def list_vms(daemon):
    return daemon.call("ListVms", pb.ListVmsRequest())


def rpc_error(fn, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as ei:
        fn(*args, **kw)
    return ei.value


def assert_status(err, code, *patterns):
    assert err.code() == code, f"expected {code}, got {err.code()}: {err.details()!r}"
    for p in patterns:
        assert re.search(p, err.details() or ""), f"details {err.details()!r} do not match {p!r}"


# --- happy paths ---------------------------------------------------------------------------


def test_create_returns_the_vm(daemon, vm_files):
    before = time.time()
    cfg = base_config(vm_files, vcpus=1, memory_mb=256, initramfs=vm_files["initramfs"],
                      cmdline="console=ttyS0 root=/dev/vda rw")
    vm = create(daemon, "web-1", cfg)
    after = time.time()
    assert vm.name == "web-1"
    assert UUID_RE.match(vm.id), vm.id
    assert vm.state == pb.VM_STATE_STOPPED
    assert vm.state_reason, "a new VM has a state reason"
    assert vm.HasField("created_at")
    assert before - 5 <= vm.created_at.ToNanoseconds() / 1e9 <= after + 5
    assert not vm.HasField("started_at")
    c = vm.config
    assert (c.vcpus, c.memory_mb) == (1, 256)
    assert c.kernel == vm_files["kernel"]
    assert c.initramfs == vm_files["initramfs"]
    assert c.cmdline == "console=ttyS0 root=/dev/vda rw"
    assert c.firmware == ""
    # The shorthand is kept as given or expanded into one disks entry with a detected format.
    if c.disk:
        assert c.disk == vm_files["disk"] and len(c.disks) == 0
    else:
        assert [(d.path, d.format) for d in c.disks] == [(vm_files["disk"], pb.DISK_FORMAT_RAW)]


def test_get_by_name_and_by_id(daemon, vm_files):
    vm = create(daemon, "db", base_config(vm_files))
    other = create(daemon, "other", base_config(vm_files, vcpus=1))
    assert vm.id != other.id
    by_name = get(daemon, "db")
    by_id = get(daemon, vm.id)
    assert by_name.SerializeToString() == vm.SerializeToString()
    assert by_id.SerializeToString() == vm.SerializeToString()
    assert get(daemon, other.id).name == "other"


def test_list_ordered_by_name(daemon, vm_files):
    names = ["b-vm", "a_b", "zeta", "a.b", "ab", "a-b", "a0", "9lives"]
    ids = {}
    for n in names:
        ids[n] = create(daemon, n, base_config(vm_files)).id
    resp = list_vms(daemon)
    assert [v.name for v in resp.vms] == sorted(names)  # byte order
    for v in resp.vms:
        assert v.id == ids[v.name]
        assert v.SerializeToString() == get(daemon, v.id).SerializeToString()


def test_list_empty(daemon):
    assert list(list_vms(daemon).vms) == []


@pytest.mark.parametrize("by", ["name", "id"])
def test_delete(daemon, vm_files, by):
    keep = create(daemon, "keep", base_config(vm_files))
    vm = create(daemon, "gone", base_config(vm_files))
    before = get(daemon, vm.id)
    resp = daemon.call("DeleteVm", pb.DeleteVmRequest(vm=vm.name if by == "name" else vm.id))
    assert resp.vm.SerializeToString() == before.SerializeToString()
    assert_status(rpc_error(get, daemon, vm.id), Code.NOT_FOUND)
    assert_status(rpc_error(get, daemon, "gone"), Code.NOT_FOUND)
    assert [v.id for v in list_vms(daemon).vms] == [keep.id]
    # The name is free again; the new VM gets a new id.
    again = create(daemon, "gone", base_config(vm_files))
    assert again.id != vm.id
    assert_status(rpc_error(daemon.call, "DeleteVm", pb.DeleteVmRequest(vm=vm.id)), Code.NOT_FOUND)


def test_disk_formats_detected_from_header(daemon, vm_files, tmp_path):
    if "qcow2" not in vm_files:
        pytest.skip("qemu-img not installed")
    d = Path(vm_files["disk"]).parent
    fake = d / "fake.qcow2"  # raw bytes, misleading name
    fake.write_bytes(b"not a qcow2 header\n" * 10)
    real = d / "real.raw"  # qcow2 header, misleading name
    shutil.copyfile(vm_files["qcow2"], real)
    cfg = base_config(vm_files, disk="")
    cfg.disks.add(path=vm_files["qcow2"])
    cfg.disks.add(path=str(fake))
    cfg.disks.add(path=str(real), readonly=True)
    cfg.disks.add(path=vm_files["disk2"], format=pb.DISK_FORMAT_RAW)
    vm = create(daemon, "formats", cfg)
    assert [(x.path, x.format, x.readonly) for x in vm.config.disks] == [
        (vm_files["qcow2"], pb.DISK_FORMAT_QCOW2, False),
        (str(fake), pb.DISK_FORMAT_RAW, False),
        (str(real), pb.DISK_FORMAT_QCOW2, True),
        (vm_files["disk2"], pb.DISK_FORMAT_RAW, False),
    ]
    assert get(daemon, "formats").SerializeToString() == vm.SerializeToString()


def test_nic_macs_assigned(daemon, vm_files):
    cfg = base_config(vm_files)
    cfg.nics.add(tap="tap-mv0")
    cfg.nics.add(tap="tap-mv1", mac="52:54:00:aa:bb:cc")
    cfg.nics.add(tap="tap-mv2")
    vm = create(daemon, "net", cfg)
    macs = [n.mac for n in vm.config.nics]
    assert [n.tap for n in vm.config.nics] == ["tap-mv0", "tap-mv1", "tap-mv2"]
    assert macs[1] == "52:54:00:aa:bb:cc"
    for m in macs:
        assert MAC_RE.match(m.lower()), m
        assert int(m[:2], 16) & 1 == 0, f"{m} is multicast"
    assert len(set(m.lower() for m in macs)) == 3, macs
    # Assigned once, then stable.
    assert [n.mac for n in get(daemon, "net").config.nics] == macs


def test_nic_mac_unique_across_vms(daemon, vm_files):
    cfg = base_config(vm_files)
    cfg.nics.add(tap="tap-mv0", mac="52:54:00:aa:bb:cc")
    first = create(daemon, "first", cfg)
    for mac in ("52:54:00:aa:bb:cc", "52:54:00:AA:BB:Cc"):
        cfg = base_config(vm_files)
        cfg.nics.add(tap="tap-mv1")
        cfg.nics.add(tap="tap-mv2", mac=mac)
        e = rpc_error(daemon.call, "CreateVm", pb.CreateVmRequest(name="second", config=cfg))
        assert e.code() == grpc.StatusCode.ALREADY_EXISTS, e.details()
        assert re.search(r"config\.nics\[1\]\.mac: .* already used by vm 'first' \(nics\[0\]\)",
                         e.details()), e.details()
    # Nothing of the refused VM is left; the first one is untouched.
    assert [v.name for v in daemon.call("ListVms").vms] == ["first"]
    assert get(daemon, "first").SerializeToString() == first.SerializeToString()
    # Assigned addresses never collide with a VM's either (one NIC each, many VMs).
    seen = {first.config.nics[0].mac.lower()}
    for i in range(20):
        cfg = base_config(vm_files)
        cfg.nics.add(tap=f"tap-a{i}")
        vm = create(daemon, f"auto-{i}", cfg)
        mac = vm.config.nics[0].mac.lower()
        assert mac not in seen, mac
        seen.add(mac)


def test_boundaries_accepted(daemon, vm_files):
    info = daemon.call("GetSystemInfo")
    name = "a" * 63
    vm = create(daemon, name, base_config(vm_files, vcpus=info.host_cpus, memory_mb=64))
    assert vm.name == name
    assert (vm.config.vcpus, vm.config.memory_mb) == (info.host_cpus, 64)
    vm = create(daemon, "big", base_config(vm_files, vcpus=1, memory_mb=info.host_memory_mb))
    assert vm.config.memory_mb == info.host_memory_mb


def test_firmware_boot(daemon, vm_files):
    cfg = base_config(vm_files, kernel="", firmware=vm_files["kernel"])
    vm = create(daemon, "fw", cfg)
    assert vm.config.firmware == vm_files["kernel"]
    assert vm.config.kernel == ""


# --- errors --------------------------------------------------------------------------------


@pytest.fixture
def seeded(daemon, vm_files):
    """A daemon holding one VM, to check that failed calls change nothing."""
    create(daemon, "existing", base_config(vm_files))
    return daemon


def assert_create_fails(daemon, name, cfg, code, *patterns):
    before = list_vms(daemon).SerializeToString()
    info = daemon.call("GetSystemInfo")
    err = rpc_error(create, daemon, name, cfg)
    assert_status(err, code, *patterns)
    assert list_vms(daemon).SerializeToString() == before, "failed CreateVm left something behind"
    after = daemon.call("GetSystemInfo")
    assert (after.vm_count, after.allocated_vcpus, after.allocated_memory_mb) == (
        info.vm_count, info.allocated_vcpus, info.allocated_memory_mb)
    return err


@pytest.mark.parametrize("name", ["Web", "UPPER", "-web", "a" * 64, "", "../x", "a/b", ".hidden",
                                  "with space", "tab\tname", "é"])
def test_bad_names(seeded, vm_files, name):
    assert_create_fails(seeded, name, base_config(vm_files), Code.INVALID_ARGUMENT, r"\bname\b")


def _dir_of(files):
    return str(Path(files["kernel"]).parent)


BAD_CONFIGS = {
    # id: (mutation(cfg, files), pattern the details must match)
    "vcpus-0": (lambda c, f: setattr(c, "vcpus", 0), r"config\.vcpus"),
    "vcpus-above-host": (lambda c, f: setattr(c, "vcpus", os.cpu_count() + 1), r"config\.vcpus"),
    "memory-32": (lambda c, f: setattr(c, "memory_mb", 32), r"config\.memory_mb"),
    "memory-0": (lambda c, f: setattr(c, "memory_mb", 0), r"config\.memory_mb"),
    "kernel-relative": (lambda c, f: setattr(c, "kernel", "vmlinux"), r"config\.kernel"),
    "kernel-missing": (lambda c, f: setattr(c, "kernel", _dir_of(f) + "/no-such-kernel"), r"config\.kernel"),
    "kernel-directory": (lambda c, f: setattr(c, "kernel", _dir_of(f)), r"config\.kernel"),
    "initramfs-missing": (lambda c, f: setattr(c, "initramfs", _dir_of(f) + "/nope"), r"config\.initramfs"),
    "disk-dev-null": (lambda c, f: setattr(c, "disk", "/dev/null"), r"config\.disk\b"),
    "disk-relative": (lambda c, f: setattr(c, "disk", "disk.raw"), r"config\.disk\b"),
    "disks-dev-null": (lambda c, f: (setattr(c, "disk", ""), c.disks.add(path="/dev/null")),
                       r"config\.disks\[0\]\.path"),
    "disks-second-missing": (lambda c, f: (setattr(c, "disk", ""), c.disks.add(path=f["disk"]),
                                           c.disks.add(path=_dir_of(f) + "/nope")),
                             r"config\.disks\[1\]\.path"),
    "disks-format-9": (lambda c, f: (setattr(c, "disk", ""), c.disks.add(path=f["disk"], format=9)),
                       r"config\.disks\[0\]\.format"),
    "disk-twice": (lambda c, f: c.disks.add(path=f["disk"]), r"config\.disk"),
    "kernel-and-firmware": (lambda c, f: setattr(c, "firmware", f["initramfs"]),
                            r"config\.(kernel|firmware)"),
    "neither-kernel-nor-firmware": (lambda c, f: setattr(c, "kernel", ""), r"config\.(kernel|firmware)"),
    "initramfs-without-kernel": (lambda c, f: (setattr(c, "kernel", ""), setattr(c, "firmware", f["kernel"]),
                                               setattr(c, "initramfs", f["initramfs"])),
                                 r"config\.initramfs"),
    "cmdline-without-kernel": (lambda c, f: (setattr(c, "kernel", ""), setattr(c, "firmware", f["kernel"]),
                                             setattr(c, "cmdline", "console=ttyS0")), r"config\.cmdline"),
    "nic-bad-mac": (lambda c, f: c.nics.add(tap="tap0", mac="zz:54:00:12:34:56"), r"config\.nics\[0\]\.mac"),
    "nic-multicast-mac": (lambda c, f: c.nics.add(tap="tap0", mac="01:00:5e:00:00:01"),
                          r"config\.nics\[0\]\.mac"),
    "nic-tap-too-long": (lambda c, f: c.nics.add(tap="t" * 16), r"config\.nics\[0\]\.tap"),
    "nic-tap-and-network": (lambda c, f: c.nics.add(tap="tap0", network="default"), r"config\.nics\[0\]"),
    "nic-neither": (lambda c, f: c.nics.add(mac="52:54:00:12:34:56"), r"config\.nics\[0\]"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_configs(seeded, vm_files, case):
    mutate, pattern = BAD_CONFIGS[case]
    cfg = base_config(vm_files)
    mutate(cfg, vm_files)
    assert_create_fails(seeded, "new-vm", cfg, Code.INVALID_ARGUMENT, pattern)


def test_memory_above_host(seeded, vm_files):
    host = max(meminfo_mb(), seeded.call("GetSystemInfo").host_memory_mb)
    assert_create_fails(seeded, "new-vm", base_config(vm_files, memory_mb=host + 1),
                        Code.INVALID_ARGUMENT, r"config\.memory_mb")


def test_missing_config(seeded):
    before = list_vms(seeded).SerializeToString()
    err = rpc_error(seeded.call, "CreateVm", pb.CreateVmRequest(name="no-config"))
    assert_status(err, Code.INVALID_ARGUMENT, r"config")
    assert list_vms(seeded).SerializeToString() == before


@pytest.mark.parametrize("method", ["GetVm", "DeleteVm"])
@pytest.mark.parametrize("what", ["name", "uuid"])
def test_not_found(seeded, method, what):
    key = "no-such-vm" if what == "name" else str(uuid.uuid4())
    before = list_vms(seeded).SerializeToString()
    req_cls, _ = mvirt_proto.method_types(method)
    err = rpc_error(seeded.call, method, req_cls(vm=key))
    assert_status(err, Code.NOT_FOUND, re.escape(key))
    assert list_vms(seeded).SerializeToString() == before


def test_duplicate_name(daemon, vm_files):
    first = create(daemon, "dup", base_config(vm_files, vcpus=1, memory_mb=128))
    assert_create_fails(daemon, "dup", base_config(vm_files, vcpus=1, memory_mb=512,
                                                  kernel=vm_files["initramfs"]),
                        Code.ALREADY_EXISTS, r"dup")
    assert get(daemon, "dup").SerializeToString() == first.SerializeToString()
    assert len(list_vms(daemon).vms) == 1


# The lifecycle calls on a daemon with no hypervisor at hand: what does not need a VM process.
# The lifecycle itself is tested in test_lifecycle.py.
@pytest.mark.parametrize("method", [m for m in LIFECYCLE if m != "StartVm"])
def test_lifecycle_on_a_stopped_vm(seeded, method):
    before = get(seeded, "existing").SerializeToString()
    req_cls, _ = mvirt_proto.method_types(method)
    err = rpc_error(seeded.call, method, req_cls(vm="existing"))
    assert_status(err, Code.FAILED_PRECONDITION, r"existing", r"\bstopped\b")
    assert get(seeded, "existing").SerializeToString() == before


@pytest.mark.parametrize("method", LIFECYCLE)
@pytest.mark.parametrize("what", ["name", "uuid"])
def test_lifecycle_not_found(seeded, method, what):
    key = "no-such-vm" if what == "name" else str(uuid.uuid4())
    before = list_vms(seeded).SerializeToString()
    req_cls, _ = mvirt_proto.method_types(method)
    err = rpc_error(seeded.call, method, req_cls(vm=key))
    assert_status(err, Code.NOT_FOUND, re.escape(key))
    assert list_vms(seeded).SerializeToString() == before


def test_delete_running_vm_fails(ch_daemon, emulated, vm_files):
    if not emulated:
        pytest.skip("boots a simulated guest: needs ch-emu")
    create(ch_daemon, "existing", base_config(vm_files))
    vm = ch_daemon.call("StartVm", pb.StartVmRequest(vm="existing"), timeout=60)
    assert vm.state == pb.VM_STATE_RUNNING
    before = list_vms(ch_daemon).SerializeToString()
    for ref in ("existing", vm.id):
        err = rpc_error(ch_daemon.call, "DeleteVm", pb.DeleteVmRequest(vm=ref))
        assert_status(err, Code.FAILED_PRECONDITION, r"existing", r"running")
    assert list_vms(ch_daemon).SerializeToString() == before
    assert os.path.exists(f"/proc/{vm.pid}")
    stopped = ch_daemon.call("StopVm", pb.StopVmRequest(vm="existing"), timeout=60)
    assert stopped.state == pb.VM_STATE_STOPPED
    ch_daemon.call("DeleteVm", pb.DeleteVmRequest(vm="existing"))
    assert list(list_vms(ch_daemon).vms) == []


# --- version and host ----------------------------------------------------------------------


def test_get_version(daemon):
    resp = daemon.call("GetVersion")
    m = re.search(r"version\s*:\s*'([^']+)'", (REPO / "meson.build").read_text())
    assert m, "no version in meson.build"
    assert resp.version == m.group(1)
    assert resp.api_version >= 1


def test_system_info_host(make_daemon):
    d = make_daemon(extra_args=["--hypervisor", "/nonexistent"])
    info = d.call("GetSystemInfo")
    assert info.host_cpus == os.cpu_count()
    assert abs(info.host_memory_mb - meminfo_mb()) <= max(16, meminfo_mb() // 100)
    assert info.hostname == socket.gethostname()
    assert info.kernel_release == os.uname().release
    assert info.hypervisor_path == "/nonexistent"
    assert info.hypervisor_found is False
    assert info.hypervisor_version == ""
    assert (info.vm_count, info.allocated_vcpus, info.allocated_memory_mb) == (0, 0, 0)


def test_system_info_hypervisor_version(make_daemon):
    d = make_daemon(start=False)
    fake = d.base / "fake-ch"
    fake.write_text("#!/bin/sh\n"
                    "[ \"$1\" = --version ] && echo 'cloud-hypervisor v54.0.0' && exit 0\n"
                    "exit 1\n")
    fake.chmod(0o755)
    d.start(["--hypervisor", str(fake)])
    info = d.call("GetSystemInfo")
    assert info.hypervisor_path == str(fake)
    assert info.hypervisor_found is True
    assert info.hypervisor_version == "cloud-hypervisor v54.0.0"


def test_system_info_allocations(daemon, vm_files):
    def alloc():
        i = daemon.call("GetSystemInfo")
        return i.vm_count, i.allocated_vcpus, i.allocated_memory_mb

    assert alloc() == (0, 0, 0)
    a = create(daemon, "a", base_config(vm_files, vcpus=1, memory_mb=128))
    assert alloc() == (1, 1, 128)
    create(daemon, "b", base_config(vm_files, vcpus=min(2, os.cpu_count()), memory_mb=300))
    assert alloc() == (2, 1 + min(2, os.cpu_count()), 428)
    daemon.call("DeleteVm", pb.DeleteVmRequest(vm=a.id))
    assert alloc() == (1, min(2, os.cpu_count()), 300)
    rpc_error(create, daemon, "b", base_config(vm_files, vcpus=1, memory_mb=1000))
    assert alloc() == (1, min(2, os.cpu_count()), 300)
    daemon.call("DeleteVm", pb.DeleteVmRequest(vm="b"))
    assert alloc() == (0, 0, 0)


@pytest.mark.parametrize("where", ["name", "kernel", "disk_path", "nic_tap"])
def test_nul_bytes_are_refused_not_truncated(daemon, vm_files, where):
    # protobuf-c would cut a string at its first NUL: "ok\0../x" must not become "ok".
    cfg = base_config(vm_files)
    name = "nul-test"
    if where == "name":
        name = "ok\0../x"
    elif where == "kernel":
        cfg.kernel = vm_files["kernel"] + "\0/../x"
    elif where == "disk_path":
        cfg.disks.add(path=vm_files["disk2"] + "\0x")
    else:
        cfg.nics.add(tap="tap0\0x")
    err = rpc_error(create, daemon, name, cfg)
    assert_status(err, Code.INVALID_ARGUMENT, "contains a NUL byte")
    assert len(list_vms(daemon).vms) == 0
