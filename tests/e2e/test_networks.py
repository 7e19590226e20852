"""Managed networks end to end: mvirt.NetworkService against a real mvirt-vmm that runs inside a
network namespace of the test's own (the netns fixture), never in the machine's own one.

What the daemon says is checked against the namespace itself (`ip -j -d addr`): the bridge, its
gateway address, its alias mark; after restarts, kill -9 and deletes, that nothing mvirt made is
left and nothing it did not make is touched.
"""

import itertools
import os
import subprocess
import time

import grpc
import pytest

import mvirt_proto
from conftest import DaemonStartError, netns_links

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode
NET = "/mvirt.NetworkService/"
NAT, ISOLATED, BRIDGE = pb.NETWORK_MODE_NAT, pb.NETWORK_MODE_ISOLATED, pb.NETWORK_MODE_BRIDGE


def ncall(d, method, req=None):
    return d.call(NET + method, req)


def create(d, name, **config):
    return ncall(d, "CreateNetwork", pb.CreateNetworkRequest(name=name,
                                                             config=pb.NetworkConfig(**config)))


def error_of(fn, *args):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args)
    return e.value


def assert_status(err, code, *needles):
    assert err.code() == code, (err.code(), err.details())
    for n in needles:
        assert n in err.details(), (n, err.details())


def ip(ns, *args):
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)


def host_route(ns, ifname, addr):
    """A link of the "host" (a veth pair in ns: the dummy driver may be missing) with addr,
    so that the namespace has a route on its subnet."""
    ip(ns, "link", "add", ifname, "type", "veth", "peer", "name", ifname + "p")
    ip(ns, "addr", "add", addr, "dev", ifname)
    ip(ns, "link", "set", ifname + "p", "up")
    ip(ns, "link", "set", ifname, "up")


@pytest.fixture
def nd(netns, make_ch_daemon):
    """A daemon in the test's namespace, without the default network."""
    return make_ch_daemon(netns=netns, extra_args=("--default-network", "off"))


def test_create_get_list_delete(nd, netns):
    net = create(nd, "lan", ipv4_subnet="10.88.0.0/24")
    assert (net.name, net.mode, net.bridge) == ("lan", NAT, "mvbr-lan")
    assert (net.ipv4_subnet, net.gateway) == ("10.88.0.0/24", "10.88.0.1")
    assert (net.dhcp_start, net.dhcp_end) == ("10.88.0.2", "10.88.0.254")
    assert net.domain == "lan.mvirt" and net.status == "ok" and len(net.id) == 36
    assert net.config.ipv4_subnet == "10.88.0.0/24" and not net.config.bridge
    link = netns_links(netns)["mvbr-lan"]
    assert link["kind"] == "bridge" and link["addrs"] == ["10.88.0.1/24"]
    assert link["alias"].startswith("mvirt:") and link["alias"].endswith(":network=" + net.id)

    iso = create(nd, "iso", mode=ISOLATED, ipv4_subnet="10.89.0.254/24", bridge="isobr0",
                 dhcp_start="10.89.0.100", domain="lab.example")
    assert (iso.mode, iso.bridge, iso.gateway) == (ISOLATED, "isobr0", "10.89.0.254")
    assert (iso.dhcp_start, iso.dhcp_end, iso.domain) == ("10.89.0.100", "10.89.0.253",
                                                          "lab.example")
    assert [n.name for n in ncall(nd, "ListNetworks", pb.ListNetworksRequest()).networks] == [
        "iso", "lan"]
    assert ncall(nd, "GetNetwork", pb.GetNetworkRequest(network=net.id)).name == "lan"
    assert ncall(nd, "GetNetwork", pb.GetNetworkRequest(network="iso")).id == iso.id

    ncall(nd, "DeleteNetwork", pb.DeleteNetworkRequest(network="lan"))
    ncall(nd, "DeleteNetwork", pb.DeleteNetworkRequest(network=iso.id))
    assert set(netns_links(netns)) == {"lo"}
    assert not ncall(nd, "ListNetworks", pb.ListNetworksRequest()).networks
    assert_status(error_of(ncall, nd, "GetNetwork", pb.GetNetworkRequest(network="lan")),
                  Code.NOT_FOUND, "lan")


def test_networks_survive_restart_and_are_repaired(nd, netns):
    net = create(nd, "lan", ipv4_subnet="10.88.0.0/24")
    nd.stop(sig=9)
    ip(netns, "link", "del", "mvbr-lan")  # the host lost it while the daemon was away
    nd.start()
    got = ncall(nd, "GetNetwork", pb.GetNetworkRequest(network="lan"))
    assert got.id == net.id and got.created_at == net.created_at and got.status == "ok"
    assert netns_links(netns)["mvbr-lan"]["addrs"] == ["10.88.0.1/24"]


def test_bad_input_names_the_field(nd, netns):
    ip(netns, "link", "add", "hostbr", "type", "bridge")  # the host's own, not mvirt's
    host_route(netns, "eth0", "10.90.0.5/24")
    create(nd, "lan", ipv4_subnet="10.88.0.0/24")
    cases = [
        (dict(name="a", ipv4_subnet="10.1.0.0/33"), Code.INVALID_ARGUMENT,
         ["config.ipv4_subnet"]),
        (dict(name="a", ipv4_subnet="nonsense"), Code.INVALID_ARGUMENT, ["config.ipv4_subnet"]),
        (dict(name="a", ipv4_subnet="10.1.0.0/24", dhcp_start="10.1.1.1"),
         Code.INVALID_ARGUMENT, ["config.dhcp_start"]),
        (dict(name="a-very-long-network-name-over-31-chars", ipv4_subnet="10.1.0.0/24"),
         Code.INVALID_ARGUMENT, ["name"]),
        (dict(name="toolong", ipv4_subnet="10.1.0.0/24", bridge="sixteen-chars-xx"),
         Code.INVALID_ARGUMENT, ["config.bridge"]),
        (dict(name="a", ipv4_subnet="10.1.0.0/24", bridge="hostbr"), Code.INVALID_ARGUMENT,
         ["config.bridge", "hostbr", "not mvirt's"]),
        (dict(name="a", mode=BRIDGE, bridge="nosuchbr"), Code.INVALID_ARGUMENT,
         ["config.bridge", "nosuchbr"]),
        (dict(name="a", ipv4_subnet="10.88.0.128/25"), Code.INVALID_ARGUMENT,
         ["config.ipv4_subnet", "10.88.0.128/25", "'lan'", "10.88.0.0/24"]),
        (dict(name="a", ipv4_subnet="10.90.0.0/16"), Code.INVALID_ARGUMENT,
         ["config.ipv4_subnet", "10.90.0.0/16", "10.90.0.0/24", "eth0"]),
        (dict(name="lan", ipv4_subnet="10.2.0.0/24"), Code.ALREADY_EXISTS, ["lan"]),
    ]
    for fields, code, needles in cases:
        name = fields.pop("name")
        assert_status(error_of(lambda: create(nd, name, **fields)), code, *needles)
    assert set(netns_links(netns)) == {"lo", "hostbr", "eth0", "eth0p", "mvbr-lan"}
    assert [n.name for n in ncall(nd, "ListNetworks", pb.ListNetworksRequest()).networks] == [
        "lan"]
    # bridge mode: an existing host bridge, no address of mvirt's on it
    br = create(nd, "ext", mode=BRIDGE, bridge="hostbr")
    assert (br.mode, br.bridge, br.gateway, br.ipv4_subnet) == (BRIDGE, "hostbr", "", "")
    ncall(nd, "DeleteNetwork", pb.DeleteNetworkRequest(network="ext"))
    assert "hostbr" in netns_links(netns)  # never mvirt's to delete


def test_delete_in_use_names_the_vms(nd, vm_files):
    create(nd, "lan", ipv4_subnet="10.88.0.0/24")
    for name in ("web", "db"):
        nd.call("CreateVm", pb.CreateVmRequest(name=name, config=pb.VmConfig(
            vcpus=1, memory_mb=64, kernel=vm_files["kernel"],
            nics=[pb.Nic(network="lan")])))
    err = error_of(ncall, nd, "DeleteNetwork", pb.DeleteNetworkRequest(network="lan"))
    assert_status(err, Code.FAILED_PRECONDITION, "'lan'", "'db'", "'web'")
    got = ncall(nd, "GetNetwork", pb.GetNetworkRequest(network="lan"))
    assert list(got.used_by) == ["db", "web"]
    for name in ("web", "db"):
        nd.call("DeleteVm", pb.DeleteVmRequest(vm=name))
    ncall(nd, "DeleteNetwork", pb.DeleteNetworkRequest(network="lan"))


def test_default_network_on_first_start_only(netns, make_ch_daemon):
    # a route of the host on 10.77.0.0/24: the default network takes the next free /24
    host_route(netns, "eth0", "10.77.0.9/24")
    d = make_ch_daemon(netns=netns)
    nets = ncall(d, "ListNetworks", pb.ListNetworksRequest()).networks
    assert [(n.name, n.mode, n.ipv4_subnet, n.bridge) for n in nets] == [
        ("default", NAT, "10.77.1.0/24", "mvbr-default")]
    assert netns_links(netns)["mvbr-default"]["addrs"] == ["10.77.1.1/24"]
    # deleted by the user: not made again at the next start
    ncall(d, "DeleteNetwork", pb.DeleteNetworkRequest(network="default"))
    d.restart()
    assert not ncall(d, "ListNetworks", pb.ListNetworksRequest()).networks
    assert "mvbr-default" not in netns_links(netns)


def test_default_network_on_a_given_subnet(netns, make_ch_daemon):
    d = make_ch_daemon(netns=netns, extra_args=("--default-network", "172.30.5.1/24"))
    (net,) = ncall(d, "ListNetworks", pb.ListNetworksRequest()).networks
    assert (net.name, net.ipv4_subnet, net.gateway) == ("default", "172.30.5.0/24", "172.30.5.1")


def test_bad_default_network_setting_refused(netns, make_daemon):
    with pytest.raises(DaemonStartError) as ei:
        make_daemon(netns=netns, extra_args=("--default-network", "10.0.0.0/99"))
    assert "--default-network" in ei.value.stderr and "10.0.0.0/99" in ei.value.stderr


def test_daemon_outside_a_test_namespace_makes_no_network(daemon):
    # conftest runs such daemons with --default-network off: they never touch the host
    assert not daemon.call(NET + "ListNetworks", pb.ListNetworksRequest()).networks


def test_two_daemons_never_take_each_others_bridges(netns, make_ch_daemon):
    a = make_ch_daemon(netns=netns, extra_args=("--default-network", "off"))
    b = make_ch_daemon(netns=netns, extra_args=("--default-network", "off"))
    create(a, "one", ipv4_subnet="10.88.0.0/24")
    b.restart()  # b's reconcile sees a's bridge and must leave it alone
    assert "mvbr-one" in netns_links(netns)
    assert_status(error_of(lambda: create(b, "one", ipv4_subnet="10.89.0.0/24")),
                  Code.INVALID_ARGUMENT, "mvbr-one", "another mvirt daemon")


# ---- NICs on networks: the daemon's taps ------------------------------------------------------

RUNNING, STOPPED = pb.VM_STATE_RUNNING, pb.VM_STATE_STOPPED


def wait_for(pred, what, deadline=20.0):
    end = time.monotonic() + deadline
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def nic_vm(d, name, files, *networks, macs=()):
    nics = [pb.Nic(network=n, mac=m) for n, m in itertools.zip_longest(networks, macs,
                                                                       fillvalue="")]
    return d.call("CreateVm", pb.CreateVmRequest(name=name, config=pb.VmConfig(
        vcpus=1, memory_mb=64, kernel=files["kernel"], nics=nics)))


def tap_name(mac):
    """The tap the daemon makes for a NIC on a network: "mv" + the MAC's hex digits."""
    return "mv" + mac.replace(":", "").lower()


def taps_of(ns):
    return {n: l for n, l in netns_links(ns).items() if l["kind"] == "tun"}


def holds_tun(pid) -> bool:
    fd_dir = f"/proc/{pid}/fd"
    return any(os.readlink(os.path.join(fd_dir, f)) == "/dev/net/tun" for f in os.listdir(fd_dir))


def test_start_makes_a_tap_per_nic_on_its_bridge(nd, netns, vm_files):
    create(nd, "lan", ipv4_subnet="10.88.0.0/24")
    create(nd, "iso", mode=ISOLATED, ipv4_subnet="10.89.0.0/24")
    vm = nic_vm(nd, "web", vm_files, "lan", "iso")
    assert not taps_of(netns)
    vm = nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60)
    assert vm.state == RUNNING
    tap0, tap1 = (tap_name(n.mac) for n in vm.config.nics)
    taps = taps_of(netns)
    assert set(taps) == {tap0, tap1}, taps
    assert taps[tap0]["master"] == "mvbr-lan" and taps[tap1]["master"] == "mvbr-iso"
    # the hypervisor holds the taps, the daemon does not (a tap lives as long as its fds)
    assert holds_tun(vm.pid)
    assert not holds_tun(nd.pid)
    assert [(n.tap, n.network, n.mac) for n in vm.nics] == [
        (tap0, "lan", vm.config.nics[0].mac), (tap1, "iso", vm.config.nics[1].mac)]
    # kill -9 of the daemon: the taps stay with the VM, and come back under the new daemon
    nd.stop(sig=9)
    assert set(taps_of(netns)) == {tap0, tap1}
    nd.start()
    assert [n.tap for n in nd.call("GetVm", pb.GetVmRequest(vm="web")).nics] == [tap0, tap1]
    nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)
    wait_for(lambda: not taps_of(netns), "the taps to go with the hypervisor")
    assert not nd.call("GetVm", pb.GetVmRequest(vm="web")).nics


def test_taps_go_when_the_hypervisor_is_killed(nd, netns, vm_files):
    create(nd, "lan", ipv4_subnet="10.88.0.0/24")
    nic_vm(nd, "web", vm_files, "lan")
    vm = nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60)
    assert len(taps_of(netns)) == 1
    nd.stop(sig=9)  # the daemon is away when the hypervisor dies
    os.kill(vm.pid, 9)
    wait_for(lambda: not taps_of(netns), "the tap to go with the hypervisor")
    nd.start()
    # A hypervisor still in its exit when the daemon re-adopts it (its fds, the tap's among
    # them, close before its pidfd says it exited) is seen gone through the pidfd just after.
    wait_for(lambda: nd.call("GetVm", pb.GetVmRequest(vm="web")).state != RUNNING,
             "the VM to be seen stopped")
    got = nd.call("GetVm", pb.GetVmRequest(vm="web"))
    assert got.state != RUNNING and not got.nics
    # and it starts again on a fresh tap of the same name
    nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60)
    assert len(taps_of(netns)) == 1
    nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)
    wait_for(lambda: not taps_of(netns), "the tap to go")


def test_nic_network_must_exist(nd, vm_files):
    err = error_of(nic_vm, nd, "web", vm_files, "nosuch")
    assert_status(err, Code.INVALID_ARGUMENT, "config.nics[0].network", "'nosuch'",
                  "does not exist")
    assert not nd.call("ListVms", pb.ListVmsRequest()).vms


def test_start_fails_cleanly_when_the_tap_cannot_be_made(nd, netns, vm_files):
    create(nd, "lan", ipv4_subnet="10.88.0.0/24")
    vm = nic_vm(nd, "web", vm_files, "lan", "lan")
    squatter = tap_name(vm.config.nics[1].mac)
    ip(netns, "link", "add", squatter, "type", "bridge")  # someone else's link of that name
    err = error_of(lambda: nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60))
    assert_status(err, Code.FAILED_PRECONDITION, "config.nics[1].network", squatter)
    got = nd.call("GetVm", pb.GetVmRequest(vm="web"))
    assert got.state == STOPPED and got.pid == 0
    assert set(taps_of(netns)) == set()  # the first NIC's tap went with the failed start
    assert squatter in netns_links(netns)  # not ours: untouched
    assert not nd.hypervisor_pids()


def test_mac_unique_across_vms(nd, vm_files):
    create(nd, "lan", ipv4_subnet="10.88.0.0/24")
    nic_vm(nd, "web", vm_files, "lan", macs=["52:54:00:aa:bb:cc"])
    err = error_of(lambda: nic_vm(nd, "db", vm_files, "lan", macs=["52:54:00:AA:BB:CC"]))
    assert_status(err, Code.ALREADY_EXISTS, "config.nics[0].mac", "'web'")
