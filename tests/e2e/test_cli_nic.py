"""mvirt nic add|rm against a daemon in the test's own network namespace (simulated guests):
what the CLI prints and sends, checked against GetVm; errors are the daemon's, naming the
field; exit statuses as for the other verbs (0 ok, 1 refused, 2 usage, 3 unreachable)."""

import json

import pytest

import mvirt_proto
from test_cli_network import _cli_built, canonical_json, cli, kv, vm_args  # noqa: F401
from test_networks import create, tap_name

pb = mvirt_proto.mvirt_pb2


@pytest.fixture
def nd(netns, make_ch_daemon):
    d = make_ch_daemon(netns=netns, extra_args=("--default-network", "off"))
    create(d, "lan", ipv4_subnet="10.90.0.0/24")
    return d


def test_add_and_rm(nd, vm_files):
    assert cli(nd, *vm_args("web", vm_files))[0] == 0
    rc, out, err = cli(nd, "nic", "add", "web", "lan,mac=52:54:00:0a:0b:0c")
    assert rc == 0, err
    assert "network=lan mac=52:54:00:0a:0b:0c" in out
    rc, out, err = cli(nd, "nic", "add", "web", "tap=usertap7")
    assert rc == 0, err
    nics = nd.call("GetVm", pb.GetVmRequest(vm="web")).config.nics
    assert [(n.network, n.tap) for n in nics] == [("lan", ""), ("", "usertap7")]
    # running: the tap the daemon made shows in show
    nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60)
    rc, out, err = cli(nd, "-o", "json", "nic", "add", "web", "network=lan")
    assert rc == 0, err
    vm = nd.call("GetVm", pb.GetVmRequest(vm="web"))
    assert json.loads(out)["config"] == canonical_json(vm)["config"]
    new_mac = vm.config.nics[2].mac
    assert tap_name(new_mac) in cli(nd, "show", "web")[1]
    rc, out, err = cli(nd, "nic", "rm", "web", new_mac, "52:54:00:0A:0B:0C")
    assert rc == 0, err
    nics = nd.call("GetVm", pb.GetVmRequest(vm="web")).config.nics
    assert [n.tap for n in nics] == ["usertap7"]
    nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)


def test_errors(nd, vm_files, tmp_path):
    assert cli(nd, *vm_args("web", vm_files))[0] == 0
    rc, out, err = cli(nd, "nic", "add", "web", "nope")
    assert (rc, out) == (1, "") and "nic.network: network 'nope' does not exist" in err, err
    rc, out, err = cli(nd, "nic", "add", "web", "lan,color=red")
    assert rc == 2 and "SPEC: unknown key 'color' (mac)" in err, err
    rc, out, err = cli(nd, "nic", "rm", "web", "52:54:00:00:00:01", "zz")
    assert rc == 1 and err.count("mac: vm 'web' has no NIC") == 2, err
    for argv in (["nic", "add", "web"], ["nic", "rm", "web"], ["nic", "add", "a", "b", "c"]):
        assert cli(nd, *argv)[0] == 2, argv
    rc, out, err = cli(None, "nic", "add", "web", "lan", server=f"unix:{tmp_path}/none.sock")
    assert rc == 3 and "cannot reach mvirt-vmm" in err
    assert not nd.call("GetVm", pb.GetVmRequest(vm="web")).config.nics
