"""NAT and isolation of managed networks end to end, with real packets between network
namespaces that the test makes (never the machine's own):

    guest ns (a "VM": veth g0, address by DHCP) --- bridge in the daemon's ns --- up0 =====
        192.0.2.1/24 ===== out0 192.0.2.2/24 in the "outside host" ns

The outside host has no route back to the networks' subnets unless a test adds one: a reply
from it arrives only when the daemon's masquerade rule rewrote the source. Rules are also
checked as nftables lists them (`nft -j list table inet mvirt` in the daemon's namespace),
including that a table of someone else is never touched.
"""

import itertools
import json
import os
import shutil
import signal
import subprocess

import pytest

import mvirt_proto
from test_networks import ISOLATED, create, ip, ncall

pb = mvirt_proto.mvirt_pb2

pytestmark = pytest.mark.skipif(not shutil.which("busybox") or not shutil.which("nft"),
                                reason="needs busybox (udhcpc, ping) and nft")

OUTSIDE = "192.0.2.2"
_count = itertools.count()


@pytest.fixture
def nd(netns, make_ch_daemon):
    return make_ch_daemon(netns=netns, extra_args=("--default-network", "off"))


@pytest.fixture
def make_ns():
    """Makes more namespaces (a guest's, the outside host's); all removed at teardown."""
    made = []

    def factory(tag):
        name = f"mvt{os.getpid()}-{tag}{next(_count)}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        made.append(name)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        return name

    yield factory
    for name in made:
        for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                  text=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", name], check=False)


def ns_run(ns, *argv, timeout=60):
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=timeout)


def outside_host(netns, make_ns):
    out = make_ns("out")
    ip(netns, "link", "add", "up0", "type", "veth", "peer", "name", "out0", "netns", out)
    ip(netns, "addr", "add", "192.0.2.1/24", "dev", "up0")
    ip(netns, "link", "set", "up0", "up")
    ip(out, "addr", "add", OUTSIDE + "/24", "dev", "out0")
    ip(out, "link", "set", "out0", "up")
    return out


def guest(netns, make_ns, bridge, tmp_path):
    """A namespace whose g0 is a port of bridge, configured by DHCP (address, default route).
    Returns (namespace, address)."""
    g = make_ns("g")
    ip(netns, "link", "add", "p" + g[-6:], "type", "veth", "peer", "name", "g0", "netns", g)
    ip(netns, "link", "set", "p" + g[-6:], "master", bridge, "up")
    ip(g, "link", "set", "g0", "up")
    script = tmp_path / f"udhcpc-{g}.sh"
    script.write_text('#!/bin/sh\n[ "$1" = bound ] || exit 0\n'
                      'ip addr add "$ip/$mask" dev "$interface"\n'
                      'ip route add default via "$router"\necho "$ip"\n')
    script.chmod(0o755)
    r = ns_run(g, "busybox", "udhcpc", "-i", "g0", "-f", "-q", "-n", "-t", "10", "-T", "1",
               "-s", str(script))
    assert r.returncode == 0, r.stdout + r.stderr
    addr = [w for w in r.stdout.split() if w.count(".") == 3][-1]
    return g, addr


def pings(ns, addr, wait=3) -> bool:
    return ns_run(ns, "busybox", "ping", "-c", "1", "-W", str(wait), addr).returncode == 0


def blocked(ns, addr) -> bool:
    """No answer within a second (a reply would come in well under a millisecond here)."""
    return not pings(ns, addr, wait=1)


def rules(netns) -> list:
    """The objects of table inet mvirt ([] when it does not exist)."""
    r = ns_run(netns, "nft", "-j", "list", "table", "inet", "mvirt")
    if r.returncode != 0:
        return []
    return [o for o in json.loads(r.stdout)["nftables"] if "metainfo" not in o]


def chains(netns) -> set:
    return {o["chain"]["name"] for o in rules(netns) if "chain" in o}


def ip_forward(netns) -> str:
    return ns_run(netns, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()


def test_nat_gets_out_and_isolated_does_not(nd, netns, make_ns, tmp_path):
    out = outside_host(netns, make_ns)
    lan = create(nd, "lan", ipv4_subnet="10.90.0.0/24")
    iso = create(nd, "iso", mode=ISOLATED, ipv4_subnet="10.91.0.0/24")
    assert ip_forward(netns) == "1"
    g1, a1 = guest(netns, make_ns, lan.bridge, tmp_path)
    g2, a2 = guest(netns, make_ns, iso.bridge, tmp_path)
    assert a1.startswith("10.90.0.") and a2.startswith("10.91.0.")
    # each reaches its own gateway (DHCP and DNS live there)
    assert pings(g1, lan.gateway) and pings(g2, iso.gateway)
    # NAT: out, with the uplink's address as source (the outside host has no route back)
    assert pings(g1, OUTSIDE)
    # isolated: not out, even when the outside host knows the way back
    ip(out, "route", "add", "10.91.0.0/24", "via", "192.0.2.1")
    assert blocked(g2, OUTSIDE)
    # and the outside host cannot open connections into either network
    ip(out, "route", "add", "10.90.0.0/24", "via", "192.0.2.1")
    assert blocked(out, a1) and blocked(out, a2)
    # two networks never reach each other, either way
    assert blocked(g1, a2) and blocked(g2, a1)


def test_rules_follow_the_networks(nd, netns):
    # someone else's table: never read beyond its name, never changed
    foreign = ("add table inet other; add chain inet other c { type filter hook forward "
               "priority 0; policy accept; }; add rule inet other c counter")
    assert ns_run(netns, "nft", foreign).returncode == 0
    lan = create(nd, "lan", ipv4_subnet="10.90.0.0/24")
    iso = create(nd, "iso", mode=ISOLATED, ipv4_subnet="10.91.0.0/24")
    assert chains(netns) == {"forward", "postrouting", "net-" + lan.id, "net-" + iso.id}
    text = ns_run(netns, "nft", "list", "table", "inet", "mvirt").stdout
    assert "ip saddr 10.90.0.0/24 masquerade" in text and "10.91.0.0/24" not in text
    # kill -9, someone deletes our rules: the next start puts them back
    nd.stop(sig=signal.SIGKILL)
    assert ns_run(netns, "nft", "delete", "table", "inet", "mvirt").returncode == 0
    nd.start()
    assert chains(netns) == {"forward", "postrouting", "net-" + lan.id, "net-" + iso.id}
    ncall(nd, "DeleteNetwork", pb.DeleteNetworkRequest(network="iso"))
    assert chains(netns) == {"forward", "postrouting", "net-" + lan.id}
    ncall(nd, "DeleteNetwork", pb.DeleteNetworkRequest(network="lan"))
    assert chains(netns) <= {"forward", "postrouting"}
    assert "counter" in ns_run(netns, "nft", "list", "table", "inet", "other").stdout


def test_bridge_mode_gets_no_rules(nd, netns):
    ip(netns, "link", "add", "hostbr0", "type", "bridge")
    create(nd, "ext", mode=pb.NETWORK_MODE_BRIDGE, bridge="hostbr0")
    assert not [c for c in chains(netns) if c.startswith("net-")]
    assert not nd.dnsmasq_pids()


def test_kill_9_mid_create_or_delete_is_finished_at_start(nd, netns):
    """What a kill -9 inside CreateNetwork or DeleteNetwork leaves (the row is written first
    and removed last): the next start makes the network whole, or takes all of it away."""
    import sqlite3
    lan = create(nd, "lan", ipv4_subnet="10.90.0.0/24")
    gone = create(nd, "gone", ipv4_subnet="10.92.0.0/24")
    nd.stop(sig=signal.SIGKILL)
    # "lan": the row, and nothing on the host (a crash between row and bridge)
    ip(netns, "link", "del", lan.bridge)
    assert ns_run(netns, "nft", "delete", "chain", "inet", "mvirt", "net-" + lan.id
                  ).returncode != 0  # referenced by the base chains: flush the table instead
    assert ns_run(netns, "nft", "flush", "table", "inet", "mvirt").returncode == 0
    assert ns_run(netns, "nft", "delete", "chain", "inet", "mvirt", "net-" + lan.id
                  ).returncode == 0
    for pid in nd.dnsmasq_pids():
        if lan.id in open(f"/proc/{pid}/cmdline").read():
            os.kill(pid, signal.SIGKILL)
    # "gone": everything on the host, no row (its row removed, nothing else yet)
    with sqlite3.connect(nd.state_dir / "mvirt.db") as db:
        db.execute("DELETE FROM networks WHERE id = ?", (gone.id,))
    db.close()
    nd.start()
    got = ncall(nd, "GetNetwork", pb.GetNetworkRequest(network="lan"))
    assert got.status == "ok" and got.bridge == lan.bridge
    assert "net-" + lan.id in chains(netns) and "net-" + gone.id not in chains(netns)
    assert [n.name for n in ncall(nd, "ListNetworks").networks] == ["lan"]
    assert lan.bridge in ns_run(netns, "ip", "link").stdout
    assert gone.bridge not in ns_run(netns, "ip", "link").stdout
    pids = nd.dnsmasq_pids()
    assert len(pids) == 1 and lan.id in open(f"/proc/{pids[0]}/cmdline").read()
    assert sorted(os.listdir(nd.runtime_dir / "networks")) == [lan.id]
    assert sorted(os.listdir(nd.state_dir / "networks")) == [lan.id]


def _leftovers(d, netns) -> list:
    """What mvirt made in netns and still has, once everything was deleted through the API."""
    links = ns_run(netns, "ip", "-o", "link").stdout
    found = [w.rstrip(":@") for line in links.splitlines() for w in line.split()[1:2]
             if w.startswith(("mvbr-", "mv"))]
    found += sorted(c for c in chains(netns) if c.startswith("net-"))
    found += [f"dnsmasq {p}" for p in d.dnsmasq_pids()]
    found += [f"hypervisor {p}" for p in d.hypervisor_pids()]
    for base in (d.runtime_dir / "networks", d.state_dir / "networks"):
        found += [str(base / f) for f in (os.listdir(base) if base.is_dir() else [])]
    return found


def _killed_during(d, fn, delay):
    """Calls fn in a thread and kill -9s the daemon delay seconds later; then starts it again."""
    import threading
    import time
    t = threading.Thread(target=lambda: _swallow(fn), daemon=True)
    t.start()
    time.sleep(delay)
    d.stop(sig=signal.SIGKILL)
    t.join(30)
    d._close_channels()  # the thread's call may have opened one to the dead daemon
    d.start()


def _swallow(fn):
    try:
        fn()
    except Exception:  # the daemon dies under the call: any outcome is fine here
        pass


@pytest.mark.parametrize("delay", [0.0, 0.003, 0.008, 0.02, 0.05])
def test_kill_9_at_any_step_leaves_nothing_after_delete(nd, netns, vm_files, delay):
    """Kill -9 in the middle of CreateNetwork, StartVm (with NICs), StopVm and DeleteNetwork,
    at a few points in time; after a restart, deleting what exists leaves nothing of mvirt's."""
    from test_networks import nic_vm
    _killed_during(nd, lambda: create(nd, "lan", ipv4_subnet="10.90.0.0/24"), delay)
    if not [n for n in ncall(nd, "ListNetworks").networks if n.name == "lan"]:
        create(nd, "lan", ipv4_subnet="10.90.0.0/24")
    nic_vm(nd, "web", vm_files, "lan", "lan")
    _killed_during(nd, lambda: nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=30),
                   delay)
    from test_networks import wait_for
    # a start the daemon did not finish is finished (stopped) after the restart
    wait_for(lambda: nd.call("GetVm", pb.GetVmRequest(vm="web")).state in (
        pb.VM_STATE_RUNNING, pb.VM_STATE_STOPPED), "the interrupted start to be finished")
    vm = nd.call("GetVm", pb.GetVmRequest(vm="web"))
    if vm.pid:
        _killed_during(nd, lambda: nd.call("StopVm", pb.StopVmRequest(vm="web", force=True),
                                           timeout=30), delay)
    wait_for(lambda: nd.call("GetVm", pb.GetVmRequest(vm="web")).state in (
        pb.VM_STATE_RUNNING, pb.VM_STATE_STOPPED), "the interrupted stop to be finished")
    vm = nd.call("GetVm", pb.GetVmRequest(vm="web"))
    if vm.pid:
        nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)
    nd.call("DeleteVm", pb.DeleteVmRequest(vm="web"))
    _killed_during(nd, lambda: ncall(nd, "DeleteNetwork", pb.DeleteNetworkRequest(network="lan")),
                   delay)
    for n in ncall(nd, "ListNetworks").networks:
        ncall(nd, "DeleteNetwork", pb.DeleteNetworkRequest(network=n.name))
    wait_for(lambda: not _leftovers(nd, netns), "nothing of mvirt's to be left",
             deadline=20.0)
