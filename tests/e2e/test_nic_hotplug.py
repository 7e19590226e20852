"""NIC hotplug end to end: AddNic and RemoveNic on stopped and running VMs, against a daemon in
the test's own network namespace whose hypervisor is the emulator (simulated guests).

What the daemon says is checked against the hypervisor's own vm.info (its net devices, by the
ids the daemon gives them), the namespace's links (the taps the daemon makes), the network's
DNS hosts file and the stored config after a kill -9 of the daemon. Bad requests name the field
and change nothing.
"""

import grpc
import pytest

import mvirt_proto
from test_lifecycle import hv_info
from test_networks import (ISOLATED, assert_status, create, error_of, ip, ncall, nic_vm,
                           tap_name, taps_of, wait_for)

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode
RUNNING = pb.VM_STATE_RUNNING


@pytest.fixture
def nd(netns, make_ch_daemon):
    d = make_ch_daemon(netns=netns, extra_args=("--default-network", "off"))
    create(d, "lan", ipv4_subnet="10.90.0.0/24")
    create(d, "iso", mode=ISOLATED, ipv4_subnet="10.91.0.0/24")
    return d


def add(d, vm, **nic):
    return d.call("AddNic", pb.AddNicRequest(vm=vm, nic=pb.Nic(**nic)), timeout=60)


def remove(d, vm, mac):
    return d.call("RemoveNic", pb.RemoveNicRequest(vm=vm, mac=mac), timeout=60)


def hv_nets(d, vm) -> dict:
    """{device id: mac} of the hypervisor's net devices."""
    return {n.get("id"): n.get("mac") for n in hv_info(d, vm)["config"].get("net") or []}


def dev_id(mac):
    return "net" + mac.replace(":", "").lower()


def test_stopped_vm_config_only(nd, vm_files):
    nic_vm(nd, "web", vm_files, "lan")
    vm = add(nd, "web", network="iso")
    assert [n.network for n in vm.config.nics] == ["lan", "iso"]
    mac = vm.config.nics[1].mac
    assert mac.startswith("52:54:00:") and not vm.nics  # no process: no taps
    vm = add(nd, "web", tap="usertap0", mac="52:54:00:AA:00:01")
    assert vm.config.nics[2].mac == "52:54:00:AA:00:01"
    vm = remove(nd, "web", "52:54:00:aa:00:01")  # case-insensitive
    assert [n.network for n in vm.config.nics] == ["lan", "iso"]
    nd.stop(sig=9)
    nd.start()
    got = nd.call("GetVm", pb.GetVmRequest(vm="web"))
    assert [(n.network, n.mac) for n in got.config.nics] == [("lan", vm.config.nics[0].mac),
                                                              ("iso", mac)]


def test_running_vm_gets_and_loses_devices(nd, netns, vm_files):
    nic_vm(nd, "web", vm_files, "lan")
    vm = nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60)
    mac0 = vm.config.nics[0].mac
    assert hv_nets(nd, vm) == {dev_id(mac0): mac0}
    vm = add(nd, "web", network="iso")
    mac1 = vm.config.nics[1].mac
    assert vm.state == RUNNING
    assert hv_nets(nd, vm) == {dev_id(mac0): mac0, dev_id(mac1): mac1}
    taps = taps_of(netns)
    assert set(taps) == {tap_name(mac0), tap_name(mac1)}
    assert taps[tap_name(mac1)]["master"] == "mvbr-iso"
    assert [(n.tap, n.network) for n in vm.nics] == [(tap_name(mac0), "lan"),
                                                      (tap_name(mac1), "iso")]
    iso_id = ncall(nd, "GetNetwork", pb.GetNetworkRequest(network="iso")).id
    hosts = nd.runtime_dir / "networks" / iso_id / "hosts"
    assert hosts.read_text().split() == [mac1 + ",web"]

    # the first NIC goes; the second keeps its device and tap (ids follow MACs, not places)
    vm = remove(nd, "web", mac0)
    assert [n.mac for n in vm.config.nics] == [mac1]
    assert hv_nets(nd, vm) == {dev_id(mac1): mac1}
    wait_for(lambda: set(taps_of(netns)) == {tap_name(mac1)}, "the removed NIC's tap to go")
    # after a kill -9 of the daemon the re-adopted VM still finds its devices by MAC
    nd.stop(sig=9)
    nd.start()
    vm = add(nd, "web", network="lan")
    mac2 = vm.config.nics[1].mac
    assert hv_nets(nd, vm) == {dev_id(mac1): mac1, dev_id(mac2): mac2}
    vm = remove(nd, "web", mac1)
    assert hv_nets(nd, vm) == {dev_id(mac2): mac2}
    assert hosts.read_text().split() == []
    got = nd.call("GetVm", pb.GetVmRequest(vm="web"))
    assert [n.mac for n in got.config.nics] == [mac2]
    nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)
    wait_for(lambda: not taps_of(netns), "the taps to go with the hypervisor")
    # and the next start has exactly the stored NICs
    vm = nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60)
    assert hv_nets(nd, vm) == {dev_id(mac2): mac2}
    nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)


def test_bad_requests_name_the_field_and_change_nothing(nd, netns, vm_files):
    other = nic_vm(nd, "other", vm_files, "lan")
    nic_vm(nd, "web", vm_files, "lan")
    before = nd.call("GetVm", pb.GetVmRequest(vm="web")).config
    cases = [
        (lambda: nd.call("AddNic", pb.AddNicRequest(vm="web")), Code.INVALID_ARGUMENT,
         "nic: required"),
        (lambda: add(nd, "web"), Code.INVALID_ARGUMENT, "nic: set tap or network"),
        (lambda: add(nd, "web", tap="t0", network="lan"), Code.INVALID_ARGUMENT, "not both"),
        (lambda: add(nd, "web", network="nope"), Code.INVALID_ARGUMENT,
         "nic.network: network 'nope' does not exist"),
        (lambda: add(nd, "web", network="lan", mac="zz"), Code.INVALID_ARGUMENT, "nic.mac"),
        (lambda: add(nd, "web", network="lan", mac=other.config.nics[0].mac.upper()),
         Code.ALREADY_EXISTS, "nic.mac", "'other'"),
        (lambda: add(nd, "web", network="lan", mac=before.nics[0].mac), Code.INVALID_ARGUMENT,
         "nic.mac", "config.nics[0]"),
        (lambda: add(nd, "", network="lan"), Code.INVALID_ARGUMENT, "vm"),
        (lambda: add(nd, "ghost", network="lan"), Code.NOT_FOUND, "ghost"),
        (lambda: remove(nd, "web", ""), Code.INVALID_ARGUMENT, "mac"),
        (lambda: remove(nd, "web", "52:54:00:00:00:99"), Code.NOT_FOUND, "mac",
         "52:54:00:00:00:99"),
    ]
    for fn, code, *needles in cases:
        assert_status(error_of(fn), code, *needles)
    for _ in range(15):
        add(nd, "web", network="iso")
    assert_status(error_of(lambda: add(nd, "web", network="iso")), Code.INVALID_ARGUMENT,
                  "nic:", "at most 16")
    assert len(nd.call("GetVm", pb.GetVmRequest(vm="web")).config.nics) == 16


def test_running_failures_leave_nothing(nd, netns, vm_files):
    nic_vm(nd, "web", vm_files, "lan")
    vm = nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60)
    squat_mac = "52:54:00:bb:00:01"
    ip(netns, "link", "add", tap_name(squat_mac), "type", "bridge")  # not ours
    err = error_of(lambda: add(nd, "web", network="iso", mac=squat_mac))
    assert_status(err, Code.FAILED_PRECONDITION, "nic.network", tap_name(squat_mac))
    got = nd.call("GetVm", pb.GetVmRequest(vm="web"))
    assert len(got.config.nics) == 1 and len(hv_nets(nd, vm)) == 1
    assert set(taps_of(netns)) == {tap_name(vm.config.nics[0].mac)}
    # a paused VM: resume first
    nd.call("PauseVm", pb.PauseVmRequest(vm="web"), timeout=60)
    assert_status(error_of(lambda: add(nd, "web", network="iso")), Code.FAILED_PRECONDITION,
                  "paused")
    assert_status(error_of(lambda: remove(nd, "web", vm.config.nics[0].mac)),
                  Code.FAILED_PRECONDITION, "paused")
    nd.call("ResumeVm", pb.ResumeVmRequest(vm="web"), timeout=60)
    nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)


def test_running_vm_gets_a_tap_of_the_users(nd, netns, vm_files):
    ip(netns, "tuntap", "add", "usertap0", "mode", "tap")
    nic_vm(nd, "web", vm_files, "lan")
    nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60)
    vm = add(nd, "web", tap="usertap0")
    mac = vm.config.nics[1].mac
    info = {n.get("id"): n for n in hv_info(nd, vm)["config"]["net"]}
    assert info[dev_id(mac)].get("tap") == "usertap0"
    assert vm.nics[1].tap == "usertap0" and not vm.nics[1].network
    vm = remove(nd, "web", mac)
    assert dev_id(mac) not in hv_nets(nd, vm)
    assert "usertap0" in taps_of(netns)  # the user's: never removed by mvirt
    nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)
