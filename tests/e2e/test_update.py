"""UpdateVm end to end, through an independent gRPC client (grpcio), against a daemon whose
hypervisor is the emulator: every field of a stopped VM's config changes, as a whole config or
by update_mask; a bad field is refused naming it and changes nothing (in memory and on disk);
a running VM is refused (but for autostart); a stale config_version is refused (two editors);
the change is announced (CONFIG_CHANGED) and survives a daemon restart and a kill -9.
"""

import json
import os

import grpc
import pytest
from google.protobuf import field_mask_pb2

import mvirt_proto
from test_events import Watcher

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode
T = pb.VmEventType
CALL_TIMEOUT = 60


def create(d, name, files, **cfg):
    base = dict(vcpus=1, memory_mb=128, kernel=files["kernel"], disk=files["disk"])
    base.update(cfg)
    return d.call("CreateVm", pb.CreateVmRequest(name=name, config=pb.VmConfig(**base)))


def update(d, vm, config, paths=None, version=0):
    req = pb.UpdateVmRequest(vm=vm, config=config, config_version=version)
    if paths is not None:
        req.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=paths))
    return d.call("UpdateVm", req, timeout=CALL_TIMEOUT)


def refused(d, vm, config, paths=None, version=0):
    with pytest.raises(grpc.RpcError) as e:
        update(d, vm, config, paths, version)
    return e.value.code(), e.value.details()


def get(d, vm):
    return d.call("GetVm", pb.GetVmRequest(vm=vm))


def test_whole_config_replaces_every_field(ch_daemon, vm_files):
    d = ch_daemon
    vm = create(d, "a", vm_files)
    assert vm.config_version == 1
    new = pb.VmConfig()
    new.CopyFrom(vm.config)
    new.vcpus = 2
    new.memory_mb = 256
    new.cmdline = "console=ttyS0 quiet"
    new.initramfs = vm_files["initramfs"]
    new.disk = ""
    new.disks.add(path=vm_files["disk2"], readonly=True)
    new.disks.add(path=vm_files["disk"])
    new.nics.add(tap="tapx0")
    new.user_data = "#cloud-config\n"
    new.meta_data = "instance-id: x\n"
    new.network_config = "version: 2\n"
    new.autostart = True
    new.autostart_order = 7
    got = update(d, "a", new)
    c = got.config
    assert (c.vcpus, c.memory_mb, c.cmdline, c.initramfs) == (2, 256, "console=ttyS0 quiet",
                                                              vm_files["initramfs"])
    assert [(x.path, x.readonly, x.format) for x in c.disks] == [
        (vm_files["disk2"], True, pb.DISK_FORMAT_RAW), (vm_files["disk"], False,
                                                        pb.DISK_FORMAT_RAW)]
    assert c.disk == ""
    assert c.nics[0].tap == "tapx0" and c.nics[0].mac.startswith("52:54:00:")  # assigned
    assert (c.user_data, c.meta_data, c.network_config) == ("#cloud-config\n",
                                                            "instance-id: x\n", "version: 2\n")
    assert (c.autostart, c.autostart_order) == (True, 7)
    assert got.config_version == 2
    assert get(d, "a") == got
    # the whole config goes: what a client leaves out takes its default
    bare = pb.VmConfig(vcpus=1, memory_mb=128, kernel=vm_files["kernel"])
    got = update(d, got.id, bare)
    assert got.config == pb.VmConfig(vcpus=1, memory_mb=128, kernel=vm_files["kernel"])
    assert got.config_version == 3


def test_update_mask_takes_only_the_named_fields(ch_daemon, vm_files):
    d = ch_daemon
    vm = create(d, "a", vm_files, cmdline="old")
    got = update(d, "a", pb.VmConfig(memory_mb=512, vcpus=99, cmdline="ignored"), ["memory_mb"])
    assert (got.config.memory_mb, got.config.vcpus, got.config.cmdline) == (512, 1, "old")
    got = update(d, "a", pb.VmConfig(cmdline=""), ["cmdline"])  # cleared
    assert got.config.cmdline == ""
    assert got.config.kernel == vm.config.kernel and got.config.disk == vm.config.disk
    code, msg = refused(d, "a", pb.VmConfig(vcpus=2), ["vcpus", "cpus"])
    assert code == Code.INVALID_ARGUMENT and msg.startswith("update_mask.paths[1]: 'cpus'"), msg


@pytest.mark.parametrize("paths,config,field", [
    (["vcpus"], dict(vcpus=0), "config.vcpus"),
    (["vcpus"], dict(vcpus=100000), "config.vcpus"),
    (["memory_mb"], dict(memory_mb=1), "config.memory_mb"),
    (["kernel"], dict(kernel="/nonexistent/vmlinux"), "config.kernel"),
    (["kernel"], dict(kernel="relative/vmlinux"), "config.kernel"),
    (["initramfs"], dict(initramfs="/nonexistent/initrd"), "config.initramfs"),
    (["disks"], dict(disks=[pb.Disk(path="/nonexistent.img")]), "config.disks[0]"),
    (["disks"], dict(disks=[pb.Disk(volume="novol")]), "config.disks[0].volume"),
    (["nics"], dict(nics=[pb.Nic(tap="tap0", mac="zz:zz")]), "config.nics[0].mac"),
    (["nics"], dict(nics=[pb.Nic(network="nonet")]), "config.nics[0].network"),
    (["cmdline", "kernel"], dict(cmdline="x", kernel=""), "config."),
])
def test_bad_field_is_named_and_changes_nothing(ch_daemon, vm_files, paths, config, field):
    d = ch_daemon
    vm = create(d, "a", vm_files, cmdline="keep")
    w = Watcher(d, vm="a")
    try:
        code, msg = refused(d, "a", pb.VmConfig(**config), paths)
        assert code == Code.INVALID_ARGUMENT, (code, msg)
        assert msg.startswith(field), msg
        assert get(d, "a") == vm
    finally:
        w.close()
    assert not [e for e in w.snapshot() if e.type == T.VM_EVENT_TYPE_CONFIG_CHANGED]
    d.stop(sig=9)
    d.start()
    assert get(d, "a") == vm


def test_mac_of_another_vm_is_refused(ch_daemon, vm_files):
    d = ch_daemon
    other = create(d, "b", vm_files, nics=[pb.Nic(tap="tapb")])
    vm = create(d, "a", vm_files)
    code, msg = refused(d, "a", pb.VmConfig(nics=[pb.Nic(tap="tapa",
                                                          mac=other.config.nics[0].mac)]),
                        ["nics"])
    assert code == Code.ALREADY_EXISTS and "config.nics[0].mac" in msg and "'b'" in msg, msg
    assert get(d, "a") == vm


def test_running_vm_is_refused_but_autostart_changes(ch_daemon, vm_files):
    d = ch_daemon
    create(d, "a", vm_files)
    vm = d.call("StartVm", pb.StartVmRequest(vm="a"), timeout=CALL_TIMEOUT)
    try:
        code, msg = refused(d, "a", pb.VmConfig(memory_mb=256), ["memory_mb"])
        assert code == Code.FAILED_PRECONDITION and "is running" in msg, msg
        assert get(d, "a").config == vm.config
        got = update(d, "a", pb.VmConfig(autostart=True, autostart_order=3),
                     ["autostart", "autostart_order"])
        assert (got.config.autostart, got.config.autostart_order) == (True, 3)
        assert got.state == pb.VM_STATE_RUNNING and got.pid == vm.pid
        # the whole config, unchanged but for autostart, also passes while it runs
        whole = pb.VmConfig()
        whole.CopyFrom(got.config)
        whole.autostart = False
        assert not update(d, "a", whole).config.autostart
    finally:
        d.call("KillVm", pb.KillVmRequest(vm="a"), timeout=CALL_TIMEOUT)
    assert update(d, "a", pb.VmConfig(memory_mb=256), ["memory_mb"]).config.memory_mb == 256


def test_stale_config_version_is_refused(ch_daemon, vm_files):
    d = ch_daemon
    vm = create(d, "a", vm_files)
    # two editors read version 1; the first one's change wins, the second is refused
    first = update(d, "a", pb.VmConfig(vcpus=2), ["vcpus"], version=vm.config_version)
    assert first.config_version == vm.config_version + 1
    code, msg = refused(d, "a", pb.VmConfig(memory_mb=256), ["memory_mb"],
                        version=vm.config_version)
    assert code == Code.ABORTED and msg.startswith("config_version:"), msg
    assert get(d, "a") == first
    # NIC hotplug changes the config too: it moves the version on
    after = d.call("AddNic", pb.AddNicRequest(vm="a", nic=pb.Nic(tap="tapq")),
                   timeout=CALL_TIMEOUT)
    assert after.config_version == first.config_version + 1
    assert refused(d, "a", pb.VmConfig(vcpus=1), ["vcpus"],
                   version=first.config_version)[0] == Code.ABORTED


def test_event_and_persistence(ch_daemon, vm_files):
    d = ch_daemon
    vm = create(d, "a", vm_files)
    w = Watcher(d, vm="a")
    try:
        got = update(d, "a", pb.VmConfig(vcpus=2, cmdline="x"), ["vcpus", "cmdline"])
        ev = w.wait_event(vm.id, T.VM_EVENT_TYPE_CONFIG_CHANGED)
        assert (ev.vm_name, ev.state) == ("a", pb.VM_STATE_STOPPED)
        n = len(w.snapshot())
        # no change: no event, no new version
        same = update(d, "a", pb.VmConfig(vcpus=2), ["vcpus"])
        assert same.config_version == got.config_version
        # a disk sent without the format the daemon detected: the same config once completed
        b = create(d, "b", vm_files, disk="", disks=[pb.Disk(path=vm_files["disk2"])])
        assert b.config.disks[0].format == pb.DISK_FORMAT_RAW
        same = update(d, "b", pb.VmConfig(disks=[pb.Disk(path=vm_files["disk2"])]), ["disks"])
        assert same == b
        ev2 = update(d, "a", pb.VmConfig(vcpus=1), ["vcpus"])
        w.wait_count(n + 1)
        assert [e.type for e in w.snapshot()[n:]] == [T.VM_EVENT_TYPE_CONFIG_CHANGED]
    finally:
        w.close()
    d.restart()
    assert get(d, "a") == ev2
    d.stop(sig=9)
    d.start()
    assert get(d, "a") == ev2
    # it starts with the new config
    started = d.call("StartVm", pb.StartVmRequest(vm="a"), timeout=CALL_TIMEOUT)
    assert started.state == pb.VM_STATE_RUNNING
    d.call("KillVm", pb.KillVmRequest(vm="a"), timeout=CALL_TIMEOUT)


def test_new_symlinked_path_is_taken_as_create_would(ch_daemon, vm_files, tmp_path):
    """A path given by an update is judged as at create (plain_paths follows), and the old
    ones keep their judgement: a kernel swapped for a symlink after create stays refused."""
    d = ch_daemon
    create(d, "a", vm_files)
    link = tmp_path / "kernel-link"
    os.symlink(vm_files["kernel"], link)
    got = update(d, "a", pb.VmConfig(kernel=str(link)), ["kernel"])
    assert got.config.kernel == str(link)
    started = d.call("StartVm", pb.StartVmRequest(vm="a"), timeout=CALL_TIMEOUT)
    assert started.state == pb.VM_STATE_RUNNING
    d.call("KillVm", pb.KillVmRequest(vm="a"), timeout=CALL_TIMEOUT)


def test_unknown_vm_and_missing_config(ch_daemon):
    d = ch_daemon
    code, msg = refused(d, "nope", pb.VmConfig(vcpus=1), ["vcpus"])
    assert code == Code.NOT_FOUND and "nope" in msg
    with pytest.raises(grpc.RpcError) as e:
        d.call("UpdateVm", pb.UpdateVmRequest(vm="nope"))
    assert e.value.code() == Code.INVALID_ARGUMENT and e.value.details().startswith("config")


def test_generic_client_from_json_via_reflection(ch_daemon, vm_files):
    """What grpcurl does: descriptors from server reflection (field_mask.proto among them), the
    request from JSON (a FieldMask is "a,b" in lowerCamelCase there), a call by method path."""
    from google.protobuf import json_format

    from test_reflection import ReflectionClient, build_pool, fetch_files, message_class

    d = ch_daemon
    create(d, "a", vm_files)
    c = ReflectionClient(d.channel(), "v1")
    try:
        files = fetch_files(c, "mvirt.VmService")
    finally:
        c.cancel()
    assert "google/protobuf/field_mask.proto" in files
    pool = build_pool(files)
    method = pool.FindServiceByName("mvirt.VmService").methods_by_name["UpdateVm"]
    Req = message_class(pool, method.input_type)
    Resp = message_class(pool, method.output_type)
    req = json_format.Parse('{"vm": "a", "config": {"memory_mb": 2048, "cmdline": "x y"},'
                            ' "update_mask": "memoryMb,cmdline", "config_version": "1"}', Req())
    call = d.channel().unary_unary("/mvirt.VmService/UpdateVm",
                                   request_serializer=Req.SerializeToString,
                                   response_deserializer=Resp.FromString)
    out = json.loads(json_format.MessageToJson(call(req, timeout=CALL_TIMEOUT),
                                               preserving_proto_field_name=True))
    assert out["config"]["memory_mb"] == "2048" and out["config"]["cmdline"] == "x y"
    assert out["config_version"] == "2"
    assert get(d, "a").config.memory_mb == 2048


def test_volumes_follow_the_disks(ch_daemon, vm_files):
    """A volume the new config names is in use by the VM at once (used_by, refused delete);
    one it no longer names is free again."""
    from test_vm_volumes import create_volume, delete_volume, get_volume, rpc_error

    d = ch_daemon
    create_volume(d, "v1", 1 << 20)
    create_volume(d, "v2", 1 << 20)
    create(d, "a", vm_files)
    got = update(d, "a", pb.VmConfig(disks=[pb.Disk(volume="v1")]), ["disks"])
    assert got.config.disks[0].volume == "v1"
    assert list(get_volume(d, "v1").used_by) == ["a"] and not get_volume(d, "v2").used_by
    assert rpc_error(delete_volume, d, "v1").code() == Code.FAILED_PRECONDITION
    update(d, "a", pb.VmConfig(disks=[pb.Disk(volume="v2", readonly=True)]), ["disks"])
    assert not get_volume(d, "v1").used_by and list(get_volume(d, "v2").used_by) == ["a"]
    delete_volume(d, "v1")
