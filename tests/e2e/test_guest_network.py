"""Managed networks seen from inside real guests: Linux VMs (Debian's cloud kernel with the busybox
initramfs of scripts/make-test-guest, under QEMU/TCG through tools/ch-emu) with a NIC on a network
of a daemon that runs in the test's own network namespace:

    guest eth0 (virtio-net on the daemon's tap) --- bridge, dnsmasq, nftables in the daemon's
        ns --- up0 192.0.2.1/24 ===== out0 192.0.2.2/24 in an "outside host" ns

What the guests see is printed by their mvirt.run snippet as "NETTEST ..." lines (and by the
initramfs' udhcpc script as "mvirt-guest: dhcp eth0 bound ADDR/MASK router R") and read back
from the VM's console log. Checked against the daemon: the lease the guest got by DHCP is the one
GetVm's NIC status and ListLeases show (with the VM's name); the gateway answers; one guest
resolves another by name (<vm>.<network>.mvirt, via the gateway's DNS) to that guest's lease and
reaches it; NAT takes a guest out to a host with no route back, an isolated network does not
even when that host has one.

At most two guests run at once (each TCG QEMU costs ~200 MB and a core); every wait is for a
marker against a generous deadline, since a 2.5 s boot can take 25 s on a loaded machine.
"""

import os
import re
import shutil

import pytest

import mvirt_proto
from guest import (CH_EMU, READY_MARKER, cmdline, guest_dir, require_tools, run_arg,
                   wait_console, wait_gone)
from test_network_nat import OUTSIDE, ip_forward, make_ns, ns_run, outside_host  # noqa: F401
from test_networks import ISOLATED, create, ip, ncall, wait_for
from test_real_guest import LINUX_CMDLINE, start, vm_procs  # noqa: F401 (vm_procs: a fixture)

pb = mvirt_proto.mvirt_pb2

pytestmark = pytest.mark.skipif(
    not shutil.which("busybox") or not shutil.which("nft") or not os.path.exists(
        "/usr/sbin/dnsmasq"), reason="needs busybox (ping), nft and dnsmasq-base")

BOOT_TIMEOUT = 240  # to the end of a guest's snippet: boot (~3 s idle), DHCP, pings
PEER_WAIT = 180  # seconds the first guest polls DNS for the second one's name
CMDLINE_MAX = 2047  # x86 COMMAND_LINE_SIZE less the NUL

# The guest's side: wait for eth0, DHCP (the initramfs' udhcpc script configures the address,
# the default route and prints the lease), then the test's steps. p ADDR prints whether ADDR
# answers a ping; r NAME SERVER polls DNS until NAME resolves (or PEER_WAIT runs out).
PRELUDE = f"""\
ip link set lo up
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do usleep 100000; n=$((n+1)); done
echo "NETTEST mac $(cat /sys/class/net/eth0/address)"
udhcpc -i eth0 -f -q -n -t 60 -T 2 || echo "NETTEST dhcp failed"
p() {{
if ping -c 3 -W 5 "$1" >/dev/null 2>&1; then v=ok; else v=fail; fi
echo "NETTEST ping $1 $v"
}}
r() {{
n=0
while :; do
a=$(nslookup "$1" "$2" 2>/dev/null | sed -n '/^Name:/,$s/^Address[^:]*:[[:space:]]*\\([0-9.]*\\).*/\\1/p' | head -n 1)
if [ -n "$a" ] || [ $n -ge {PEER_WAIT} ]; then break; fi
n=$((n+1)); sleep 1
done
echo "NETTEST resolve $1 ${{a:-none}}"
}}
"""


def snippet(*steps) -> str:
    return PRELUDE + "\n".join(steps) + "\n"


@pytest.fixture
def gd(netns, make_daemon, build_dir):
    """A daemon in the test's namespace whose hypervisor is ch-emu, booting real guests; skips
    (before anything starts) when the guest kernel cannot be fetched."""
    require_tools("qemu-system-x86_64")
    guest_dir(build_dir)
    return make_daemon(netns=netns, fd_check=True,
                       extra_args=("--hypervisor", str(CH_EMU), "--default-network", "off"))


def guest_vm(d, build_dir, name, network, steps):
    g = guest_dir(build_dir)
    line = f"{LINUX_CMDLINE} {run_arg(snippet(*steps))}"
    assert len(line) <= CMDLINE_MAX, f"the guest's command line is too long ({len(line)})"
    return d.call("CreateVm", pb.CreateVmRequest(name=name, config=pb.VmConfig(
        vcpus=1, memory_mb=256, kernel=str(g / "vmlinuz"), initramfs=str(g / "initramfs.gz"),
        cmdline=line, nics=[pb.Nic(network=network)])))


class Seen:
    """What a guest printed: its MAC, its DHCP lease, its pings and name lookups."""

    def __init__(self, text):
        self.text = text
        self.mac = self.lease = self.mask = self.router = None
        self.pings, self.resolved = {}, {}
        for line in text.replace("\r", "").splitlines():
            m = re.match(r"mvirt-guest: dhcp eth0 bound (\S+)/(\S+) router (\S+)$", line)
            if m:
                self.lease, self.mask, self.router = m.groups()
            w = line.split()
            if len(w) == 3 and w[:2] == ["NETTEST", "mac"]:
                self.mac = w[2]
            elif len(w) == 4 and w[:2] == ["NETTEST", "ping"]:
                self.pings[w[2]] = w[3]
            elif len(w) == 4 and w[:2] == ["NETTEST", "resolve"]:
                self.resolved[w[2]] = w[3]

    def __repr__(self):
        lines = [l for l in self.text.replace("\r", "").splitlines()
                 if l.startswith(("NETTEST", "mvirt-guest: dhcp", "mvirt-guest: mvirt.run"))]
        return "guest said: " + " | ".join(lines) + "\nconsole tail:\n" + self.text[-1500:]


def run_to_end(d, vm):
    """Waits for the end of the guest's snippet; returns what it printed."""
    text = wait_console(d, vm.id, READY_MARKER, timeout=BOOT_TIMEOUT)
    assert "mvirt.run exited with status 0" in text, text[-3000:]
    return Seen(text)


def wait_lease(d, vm, seen):
    """The guest's lease as the daemon reports it: ListLeases (with the VM's name) and GetVm's
    NIC status. dnsmasq writes its lease file as it acks; polled for a little while anyway."""
    mac = vm.config.nics[0].mac

    def leases():
        return [(l.mac, l.address, l.vm) for l in ncall(
            d, "ListLeases", pb.ListLeasesRequest(network=vm.config.nics[0].network)).leases
            if l.mac == mac]

    wait_for(lambda: leases(), f"a lease of {vm.name} in ListLeases")
    assert leases() == [(mac, seen.lease, vm.name)], (leases(), seen)
    got = d.call("GetVm", pb.GetVmRequest(vm=vm.id))
    assert [(n.mac, n.network, list(n.addresses)) for n in got.nics] == [
        (mac, vm.config.nics[0].network, [seen.lease])], (got.nics, seen)


def in_subnet(addr, net) -> bool:
    """addr in net's /24 (the tests' networks are all /24s), and neither its gateway nor its
    network or broadcast address."""
    prefix = net.ipv4_subnet.rsplit(".", 1)[0] + "."
    assert net.ipv4_subnet.endswith(".0/24"), net.ipv4_subnet
    return (addr.startswith(prefix) and addr != net.gateway
            and addr.rsplit(".", 1)[1] not in ("0", "255"))


def net_counters(d, name):
    """The VM's NICs' counters from GetMetrics: [{receive_bytes: N, ...}] by device, parsed
    with Prometheus' own parser."""
    from prometheus_client.parser import text_string_to_metric_families
    text = d.call("GetMetrics", timeout=60).text
    out = {}
    for fam in text_string_to_metric_families(text):
        if not fam.name.startswith("mvirt_vm_network_"):
            continue
        what = fam.name[len("mvirt_vm_network_"):].removesuffix("_total")
        for smp in fam.samples:
            if smp.labels.get("vm") == name:
                out.setdefault(smp.labels["device"], {})[what] = smp.value
    return list(out.values())


def stop_all(d, vms, procs):
    for vm in vms:
        got = d.call("StopVm", pb.StopVmRequest(vm=vm.id, force=True), timeout=60)
        assert got.state == pb.VM_STATE_STOPPED, pb.VmState.Name(got.state)
        assert not got.nics
    left = wait_gone(procs)
    assert not left, "processes left after StopVm: " + repr({p: cmdline(p) for p in left})


def test_guests_lease_resolve_each_other_and_get_out_by_nat(gd, netns, make_ns, build_dir,
                                                            vm_procs):
    out = outside_host(netns, make_ns)  # no route back to 10.90.0.0/24: replies need the NAT
    lan = create(gd, "lan", ipv4_subnet="10.90.0.0/24")
    assert lan.mode == pb.NETWORK_MODE_NAT and ip_forward(netns) == "1"
    gw = lan.gateway
    peer = "db.lan.mvirt"
    db = guest_vm(gd, build_dir, "db", "lan", [f"p {gw}"])
    web = guest_vm(gd, build_dir, "web", "lan", [f"p {gw}", f"r {peer} {gw}",
                                                 'p "$a"', f"p {OUTSIDE}"])
    procs = start(gd, db, vm_procs) | start(gd, web, vm_procs)

    s_db = run_to_end(gd, db)
    s_web = run_to_end(gd, web)
    for vm, s in ((db, s_db), (web, s_web)):
        # the guest's NIC is the one the daemon gave the VM, configured by the network's DHCP
        assert s.mac == vm.config.nics[0].mac, s
        assert s.lease and in_subnet(s.lease, lan), s
        assert (s.mask, s.router) == ("24", gw), s  # udhcpc gives the prefix length
        wait_lease(gd, vm, s)
        assert s.pings.get(gw) == "ok", s
    assert s_db.lease != s_web.lease
    # the first guest found the second by its VM name through the gateway's DNS, and reached it
    assert s_web.resolved.get(peer) == s_db.lease, s_web
    assert s_web.pings.get(s_db.lease) == "ok", s_web
    # and got out: the outside host answered an address it has no route to (masquerade)
    assert "10.90.0.0/24" not in ns_run(out, "ip", "route").stdout
    assert s_web.pings.get(OUTSIDE) == "ok", s_web
    # the traffic shows in GetMetrics: cloud-hypervisor's virtio-net counters (ch-emu: the tap's)
    for vm in (db, web):
        nic = net_counters(gd, vm.name)
        assert len(nic) == 1 and all(
            nic[0][k] > 0 for k in ("receive_bytes", "transmit_bytes", "receive_packets",
                                    "transmit_packets")), nic
        assert nic[0]["transmit_bytes"] >= 3 * 98, nic  # at least its three pings' frames

    stop_all(gd, (db, web), procs)


def test_isolated_guest_reaches_its_gateway_but_not_out(gd, netns, make_ns, build_dir, vm_procs):
    out = outside_host(netns, make_ns)
    iso = create(gd, "iso", mode=ISOLATED, ipv4_subnet="10.91.0.0/24")
    # the outside host knows the way back and the daemon's namespace forwards (an isolated
    # network alone does not turn forwarding on): only the network's firewall rules can keep
    # the guest in
    ip(out, "route", "add", "10.91.0.0/24", "via", "192.0.2.1")
    assert ns_run(netns, "sysctl", "-qw", "net.ipv4.ip_forward=1").returncode == 0
    assert ip_forward(netns) == "1"
    assert ns_run(netns, "busybox", "ping", "-c", "1", "-W", "3", OUTSIDE).returncode == 0
    vm = guest_vm(gd, build_dir, "lab", "iso", [f"p {iso.gateway}", f"p {OUTSIDE}"])
    procs = start(gd, vm, vm_procs)

    s = run_to_end(gd, vm)
    assert s.mac == vm.config.nics[0].mac, s
    assert s.lease and in_subnet(s.lease, iso), s
    assert s.router == iso.gateway, s
    wait_lease(gd, vm, s)
    assert s.pings.get(iso.gateway) == "ok", s
    assert s.pings.get(OUTSIDE) == "fail", s

    stop_all(gd, (vm,), procs)
