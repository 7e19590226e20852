"""Kill -9 of the daemon at every step of CreateNetwork, DeleteNetwork, StartVm and StopVm (a VM
with a NIC on a managed network), not at a few points in time: strace, attached to the daemon's
main thread (where all of that work runs), kills it at the n-th call of one system call that
changes something outside the process: a netlink or API message (sendmsg, sendto), a tap ioctl,
a spawn (clone3, clone, vfork), a write to the database (pwrite64) or to any other file
(write, ftruncate), a flush to disk (fsync, fdatasync), a file renamed or removed.
The call it kills at has not happened; everything before it has. Steps are counted by tracing
the operation once, and every (call, n) is tried.

After each kill the daemon is started again, and what it then shows must be whole (a network
with its bridge, rules and dnsmasq; a running VM with its tap, or a stopped one with none), and
deleting everything through the API must leave nothing of mvirt's: no bridge, tap, nft chain,
dnsmasq, hypervisor, or file under the networks' dirs.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import mvirt_proto
from test_network_nat import _leftovers, chains, ns_run
from test_networks import create, ncall, nic_vm, tap_name, taps_of, wait_for

pb = mvirt_proto.mvirt_pb2

pytestmark = pytest.mark.skipif(not shutil.which("strace") or not shutil.which("nft"),
                                reason="needs strace (to kill at a system call) and nft")

STEPS = ("sendmsg", "sendto", "ioctl", "clone3", "clone", "vfork", "pwrite64", "write", "fsync",
         "fdatasync", "ftruncate", "rename",
         "renameat", "renameat2", "unlink", "unlinkat", "rmdir", "mkdir", "mkdirat")
SUBNET = "10.90.0.0/24"


@pytest.fixture
def nd(netns, make_ch_daemon):
    return make_ch_daemon(netns=netns, extra_args=("--default-network", "off"))


class Strace:
    """strace attached to the daemon's main thread (not -f: its threads and children are not
    traced). kill=(syscall, n) makes it SIGKILL the daemon on entering that call."""

    def __init__(self, pid, kill=None):
        self.log = tempfile.NamedTemporaryFile(prefix="mvstrace", suffix=".log", delete=False)
        argv = ["strace", "-p", str(pid), "-e", "trace=" + ",".join(STEPS), "-o", self.log.name]
        if kill:
            argv += ["-e", f"inject={kill[0]}:signal=KILL:when={kill[1]}"]
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()  # "strace: Process N attached"
        assert "attached" in line, line + self.proc.stderr.read()

    def calls(self) -> list:
        """Ends the trace (detaching if the daemon lives); the traced calls' names in order."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)
        with open(self.log.name) as f:
            text = f.read()
        os.unlink(self.log.name)
        return [line.split("(", 1)[0] for line in text.splitlines()
                if "(" in line and not line.startswith(("+++", "---"))]


def _call(fn):
    try:
        fn()
    except Exception:  # the daemon died under the call, or refused after a kill: both fine
        pass


def steps_of(d, fn) -> dict:
    """{syscall: how many times} the daemon's main thread makes it while fn runs."""
    st = Strace(d.pid)
    fn()
    counts = {}
    for name in st.calls():
        counts[name] = counts.get(name, 0) + 1
    return counts


def killed_at(d, fn, kill) -> bool:
    """Runs fn with the daemon killed at kill=(syscall, n); starts it again. Returns whether
    it died (false: fn made fewer such calls this time)."""
    st = Strace(d.pid, kill)
    _call(fn)
    died = False
    try:
        d.proc.wait(timeout=5)
        died = True
    except subprocess.TimeoutExpired:
        pass
    st.calls()
    d._close_channels()
    if died:
        d.start()
    return died


def network_whole(d, netns, name) -> bool:
    """Either the network is there and whole, or absent; asserts which, returns whether there."""
    nets = [n for n in ncall(d, "ListNetworks").networks if n.name == name]
    if not nets:
        return False
    wait_for(lambda: ncall(d, "GetNetwork", pb.GetNetworkRequest(network=name)).status == "ok",
             f"network {name} to be repaired")
    n = nets[0]
    assert n.bridge in ns_run(netns, "ip", "-o", "link").stdout
    assert "net-" + n.id in chains(netns)
    wait_for(lambda: any(n.id in open(f"/proc/{p}/cmdline").read() for p in d.dnsmasq_pids()),
             "the network's dnsmasq")
    return True


def delete_all(d, netns):
    for v in d.call("ListVms").vms:
        if v.pid:
            d.call("StopVm", pb.StopVmRequest(vm=v.id, force=True), timeout=60)
        d.call("DeleteVm", pb.DeleteVmRequest(vm=v.id))
    for n in ncall(d, "ListNetworks").networks:
        ncall(d, "DeleteNetwork", pb.DeleteNetworkRequest(network=n.name))
    wait_for(lambda: not _leftovers(d, netns), "nothing of mvirt's to be left", deadline=20.0)


def every_step(d, setup, op, check, teardown):
    """For every (syscall, n) that op makes on a daemon prepared by setup: kill there, restart,
    check, teardown. Returns how many kills were tried."""
    setup()
    counts = steps_of(d, op)
    teardown()
    print(f"steps: {counts}")
    assert counts, "the operation made no traced call: is strace attached to the right thread?"
    tried = 0
    for name, total in sorted(counts.items()):
        for n in range(1, total + 1):
            setup()
            if not killed_at(d, op, (name, n)):
                break
            tried += 1
            try:
                check()
                teardown()
            except AssertionError as e:
                raise AssertionError(f"after a kill at {name} #{n}: {e}") from e
    return tried


def test_kill_at_every_step_of_create_and_delete_network(nd, netns):
    def nothing():
        pass

    def create_lan():
        create(nd, "lan", ipv4_subnet=SUBNET)

    def delete_lan():
        ncall(nd, "DeleteNetwork", pb.DeleteNetworkRequest(network="lan"))

    def have_lan():
        if not [n for n in ncall(nd, "ListNetworks").networks if n.name == "lan"]:
            create_lan()

    tried = every_step(nd, nothing, create_lan, lambda: network_whole(nd, netns, "lan"),
                       lambda: delete_all(nd, netns))
    tried += every_step(nd, have_lan, delete_lan, lambda: network_whole(nd, netns, "lan"),
                        lambda: delete_all(nd, netns))
    print(f"{tried} kills")


def vm_whole(d, netns, name) -> bool:
    """The VM is running with its tap on the bridge, or stopped without one (and without a
    process); returns whether it runs."""
    wait_for(lambda: d.call("GetVm", pb.GetVmRequest(vm=name)).state in (
        pb.VM_STATE_RUNNING, pb.VM_STATE_STOPPED), f"{name}'s interrupted operation to finish")
    vm = d.call("GetVm", pb.GetVmRequest(vm=name))
    tap = tap_name(vm.config.nics[0].mac)
    if vm.state == pb.VM_STATE_RUNNING:
        assert vm.pid and taps_of(netns)[tap]["master"].startswith("mvbr-")
        return True
    wait_for(lambda: tap not in taps_of(netns), f"{tap} to be removed")
    wait_for(lambda: not d.hypervisor_pids(), "no hypervisor")
    rundir = d.runtime_dir / "vms" / vm.id
    wait_for(lambda: not rundir.exists(), f"{rundir} to be removed")
    return False


def test_kill_at_every_step_of_start_and_stop(nd, netns, vm_files):
    def have_stopped_vm():
        if not ncall(nd, "ListNetworks").networks:
            create(nd, "lan", ipv4_subnet=SUBNET)
        vms = nd.call("ListVms").vms
        if not vms:
            nic_vm(nd, "web", vm_files, "lan")
        elif vms[0].pid:
            nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)

    def have_running_vm():
        have_stopped_vm()
        nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=30)

    def start():
        nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=30)

    def stop():
        nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=30)

    def check():
        vm_whole(nd, netns, "web")
        assert network_whole(nd, netns, "lan")

    def reset():
        pass  # the next setup brings the VM to the state it needs

    tried = every_step(nd, have_stopped_vm, start, check, reset)
    tried += every_step(nd, have_running_vm, stop, check, reset)
    delete_all(nd, netns)
    print(f"{tried} kills")


def test_kill_at_every_step_of_create_and_delete_vm(nd, netns, vm_files):
    """CreateVm and DeleteVm of a VM with a NIC on a managed network (a row, a MAC, the
    network's hosts file): after a kill the VM is there whole or not at all, and the network's
    hosts file names exactly the VMs that exist."""
    def have_lan():
        if not ncall(nd, "ListNetworks").networks:
            create(nd, "lan", ipv4_subnet=SUBNET)

    def no_vm():
        have_lan()
        for v in nd.call("ListVms").vms:
            nd.call("DeleteVm", pb.DeleteVmRequest(vm=v.id))

    def have_vm():
        have_lan()
        if not nd.call("ListVms").vms:
            nic_vm(nd, "web", vm_files, "lan")

    def check():
        vms = nd.call("ListVms").vms
        assert [v.name for v in vms] in ([], ["web"])
        for v in vms:
            assert v.state == pb.VM_STATE_STOPPED and len(v.config.nics) == 1
        net = ncall(nd, "ListNetworks").networks[0]
        hosts = nd.runtime_dir / "networks" / net.id
        named = sorted(ln.split(",")[1].strip() for f in hosts.glob("*host*") if f.is_file()
                       for ln in f.read_text().splitlines() if "," in ln)
        wait_for(lambda: sorted(ln.split(",")[1].strip() for f in hosts.glob("*host*")
                                if f.is_file() for ln in f.read_text().splitlines()
                                if "," in ln) == [v.name for v in vms],
                 f"the hosts file to name {[v.name for v in vms]} (it names {named})")
        assert network_whole(nd, netns, "lan")

    def reset():
        pass

    tried = every_step(nd, no_vm, lambda: nic_vm(nd, "web", vm_files, "lan"), check, reset)
    tried += every_step(nd, have_vm, lambda: nd.call("DeleteVm", pb.DeleteVmRequest(vm="web")),
                        check, reset)
    delete_all(nd, netns)
    print(f"{tried} kills")
