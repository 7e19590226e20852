"""DHCP and DNS of managed networks end to end: the daemon's dnsmasq, inside the test's own
network namespace, answering a real DHCP client (busybox udhcpc) and a real DNS client (busybox
nslookup) on a veth port of the network's bridge that plays a VM's NIC (it takes the MAC of one).

Checked: a lease carries the VM's name and shows in ListLeases and in GetVm's NIC addresses, the
name resolves in the network's domain, the address is stable across a new request and across
restarts, dnsmasq is re-adopted after kill -9 of the daemon and started again when it dies, and
DeleteNetwork takes it and its files away.
"""

import os
import shutil
import signal
import subprocess

import pytest

import mvirt_proto
from test_networks import ISOLATED, create, ip, ncall, nic_vm, wait_for

pb = mvirt_proto.mvirt_pb2

pytestmark = pytest.mark.skipif(not shutil.which("busybox") or not os.path.exists(
    "/usr/sbin/dnsmasq"), reason="needs busybox (udhcpc, nslookup) and dnsmasq-base")


@pytest.fixture
def nd(netns, make_ch_daemon):
    return make_ch_daemon(netns=netns, extra_args=("--default-network", "off"))


def port(ns, bridge, name, mac):
    """A veth pair in ns: name (the "guest" end, with mac) and name+"p" on bridge."""
    ip(ns, "link", "add", name, "address", mac, "type", "veth", "peer", "name", name + "p")
    ip(ns, "link", "set", name + "p", "master", bridge, "up")
    ip(ns, "link", "set", name, "up")


def dhcp(ns, ifname, tmp_path, release=False) -> str:
    """The address busybox udhcpc gets on ifname (it does not configure it)."""
    script = tmp_path / "udhcpc.sh"
    out = tmp_path / "lease"
    script.write_text(f'#!/bin/sh\n[ "$1" = bound ] && echo "$ip" > {out}\nexit 0\n')
    script.chmod(0o755)
    out.unlink(missing_ok=True)
    r = subprocess.run(["ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", ifname, "-f",
                        "-q", "-n", "-t", "10", "-T", "1", "-s", str(script)]
                       + (["-R"] if release else []),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and out.exists(), r.stdout + r.stderr
    return out.read_text().strip()


def resolve(ns, name, server) -> list:
    r = subprocess.run(["ip", "netns", "exec", ns, "busybox", "nslookup", name, server],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return []
    lines = r.stdout.split("Name:", 1)[-1].splitlines()
    return [w for line in lines if line.strip().startswith("Address") for w in line.split()
            if w.count(".") == 3]


def dnsmasq_pid(d) -> int:
    pids = d.dnsmasq_pids()
    return pids[0] if len(pids) == 1 else 0


def test_lease_name_and_addresses(nd, netns, vm_files, tmp_path):
    net = create(nd, "lan", ipv4_subnet="10.90.0.0/24")
    vm = nic_vm(nd, "web", vm_files, "lan")
    mac = vm.config.nics[0].mac
    port(netns, "mvbr-lan", "g0", mac)
    vm = nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60)

    addr = dhcp(netns, "g0", tmp_path)
    assert addr.startswith("10.90.0.") and addr != net.gateway
    leases = ncall(nd, "ListLeases", pb.ListLeasesRequest(network="lan")).leases
    assert [(l.mac, l.address, l.vm) for l in leases] == [(mac, addr, "web")]
    assert leases[0].expires_at.seconds > 0
    got = nd.call("GetVm", pb.GetVmRequest(vm="web"))
    assert list(got.nics[0].addresses) == [addr]
    assert [list(n.addresses) for n in nd.call("ListVms").vms[0].nics] == [[addr]]
    # the VM's name, not what the client calls itself, in the network's domain
    assert resolve(netns, "web.lan.mvirt", net.gateway) == [addr]
    # the same address on a new request (a rebooted guest) and after a daemon kill -9
    assert dhcp(netns, "g0", tmp_path) == addr
    pid = dnsmasq_pid(nd)
    nd.stop(sig=signal.SIGKILL)
    nd.start()
    assert dnsmasq_pid(nd) == pid  # re-adopted, not restarted
    assert list(nd.call("GetVm", pb.GetVmRequest(vm="web")).nics[0].addresses) == [addr]
    assert resolve(netns, "web.lan.mvirt", net.gateway) == [addr]
    nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)
    assert not nd.call("GetVm", pb.GetVmRequest(vm="web")).nics


def test_hosts_follow_the_vms(nd, netns, vm_files):
    create(nd, "lan", ipv4_subnet="10.90.0.0/24")
    net_id = ncall(nd, "GetNetwork", pb.GetNetworkRequest(network="lan")).id
    hosts = nd.runtime_dir / "networks" / net_id / "hosts"
    a = nic_vm(nd, "a", vm_files, "lan", "lan")
    nic_vm(nd, "b.2", vm_files, "lan")  # a dot makes no DNS label: no name
    nic_vm(nd, "c", vm_files)
    assert hosts.read_text().split() == [a.config.nics[0].mac + ",a"]
    nd.call("DeleteVm", pb.DeleteVmRequest(vm="a"))
    assert hosts.read_text().split() == []


def test_dnsmasq_restarted_when_it_dies(nd, netns, tmp_path):
    net = create(nd, "iso", mode=ISOLATED, ipv4_subnet="10.91.0.0/24")
    pid = dnsmasq_pid(nd)
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: dnsmasq_pid(nd) not in (0, pid), "dnsmasq to be started again")
    assert "starting it again" in nd.log_text()
    port(netns, net.bridge, "g0", "52:54:00:aa:bb:01")
    assert dhcp(netns, "g0", tmp_path).startswith("10.91.0.")


def test_delete_network_stops_dnsmasq_and_removes_its_files(nd, netns):
    net = create(nd, "lan", ipv4_subnet="10.90.0.0/24")
    pid = dnsmasq_pid(nd)
    rundir = nd.runtime_dir / "networks" / net.id
    statedir = nd.state_dir / "networks" / net.id
    assert pid and (rundir / "dnsmasq.conf").exists() and statedir.is_dir()
    ncall(nd, "DeleteNetwork", pb.DeleteNetworkRequest(network="lan"))
    wait_for(lambda: not nd.dnsmasq_pids(), "dnsmasq to stop")
    assert not rundir.exists() and not statedir.exists()
    with pytest.raises(Exception):
        ncall(nd, "ListLeases", pb.ListLeasesRequest(network="lan"))


def test_without_dnsmasq_networks_still_work(netns, make_ch_daemon):
    d = make_ch_daemon(netns=netns, extra_args=("--default-network", "off",
                                                "--dnsmasq", "/nonexistent/dnsmasq"))
    create(d, "lan", ipv4_subnet="10.90.0.0/24")
    assert not d.dnsmasq_pids()
    assert "networks have no DHCP or DNS" in d.log_text()
    assert not ncall(d, "ListLeases", pb.ListLeasesRequest(network="lan")).leases


def test_leases_bad_input(nd):
    import grpc
    for name, code in (("", grpc.StatusCode.INVALID_ARGUMENT),
                       ("nope", grpc.StatusCode.NOT_FOUND)):
        with pytest.raises(grpc.RpcError) as e:
            ncall(nd, "ListLeases", pb.ListLeasesRequest(network=name))
        assert e.value.code() == code and "network" in e.value.details()
