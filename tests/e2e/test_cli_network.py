"""`mvirt network` and `mvirt create --network` end to end: the real CLI against a real mvirt-vmm
that runs inside a network namespace of the test's own (the netns fixture), never in the
machine's own one, started without the default network.

What the CLI prints is checked against what the daemon says through an independent client
(grpcio + mvirt_proto): `-o json` must equal the canonical proto3 JSON of the same response, an
error must be the daemon's own message; and the bridges against the namespace itself.

Exit statuses: 0 ok, 1 daemon error, 2 usage error, 3 daemon unreachable.
"""

import json
import os
import re
import subprocess

import grpc
import pytest
from google.protobuf import json_format

import mvirt_proto
from conftest import netns_links

pb = mvirt_proto.mvirt_pb2
NET = "/mvirt.NetworkService/"
CLI = [""]  # the mvirt binary, set by _cli_built


@pytest.fixture(autouse=True)
def _cli_built(build_dir):
    CLI[0] = str(build_dir / "src" / "cli" / "mvirt")
    if not os.access(CLI[0], os.X_OK):
        pytest.fail(f"CLI binary {CLI[0]} not built (set MVIRT_BUILD_DIR)")


@pytest.fixture
def nd(netns, make_ch_daemon):
    """A daemon in the test's namespace, without the default network."""
    return make_ch_daemon(netns=netns, extra_args=("--default-network", "off"))


# ---- helpers ----------------------------------------------------------------------------------

def cli(d, *args, server=None, timeout=60):
    """Runs mvirt against d's unix socket (or server) and returns (rc, stdout, stderr)."""
    argv = [CLI[0], "-s", server or d.unix_addr, *map(str, args)]
    env = {k: v for k, v in os.environ.items() if k != "MVIRT_SERVER"}
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    return res.returncode, res.stdout, res.stderr


def ncall(d, method, req):
    return d.call(NET + method, req)


def get(d, name):
    return ncall(d, "GetNetwork", pb.GetNetworkRequest(network=name))


def names(d):
    return [n.name for n in ncall(d, "ListNetworks", pb.ListNetworksRequest()).networks]


def rpc_error(fn, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        fn(*args)
    return e.value


def canonical_json(msg) -> dict:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                     including_default_value_fields=True)


def kv(out) -> dict:
    """The key: value block of a show as {key: [value, continuation lines...]}."""
    fields, key = {}, None
    for line in out.splitlines():
        m = re.match(r"^(\S[^:]*):\s+(.*)$", line)
        if m:
            key = m.group(1)
            fields[key] = [m.group(2)]
        else:
            fields[key].append(line.strip())
    return fields


def table(out) -> list:
    return [line.split() for line in out.splitlines()]


def vm_args(name, files, *extra):
    return ["create", name, "--vcpus", 1, "--memory", 64, "--kernel", files["kernel"], *extra]


# ---- create / ls / show / rm ------------------------------------------------------------------

def test_create_ls_show_rm(nd, netns):
    rc, out, err = cli(nd, "network", "create", "lan", "--subnet", "10.88.0.0/24")
    assert rc == 0, err
    lan = get(nd, "lan")
    f = kv(out)
    assert f["id"] == [lan.id] and f["name"] == ["lan"] and f["mode"] == ["nat"]
    assert f["bridge"] == ["mvbr-lan"] and f["subnet"] == ["10.88.0.0/24"]
    assert f["gateway"] == ["10.88.0.1"] and f["dhcp"] == ["10.88.0.2 - 10.88.0.254"]
    assert f["ipv6"] == ["-"] and f["domain"] == ["lan.mvirt"]
    assert f["used by"] == ["-"] and f["status"] == ["ok"]
    assert netns_links(netns)["mvbr-lan"]["addrs"] == ["10.88.0.1/24"]

    rc, out, err = cli(nd, "net", "create", "iso", "--mode", "isolated",
                       "--subnet", "10.89.0.254/24", "--bridge", "isobr0",
                       "--dhcp-range", "10.89.0.100-10.89.0.200", "--domain", "lab.example",
                       "--ipv6", "fd42:1::/64")
    assert rc == 0, err
    iso = get(nd, "iso")
    assert (iso.mode, iso.bridge, iso.gateway) == (pb.NETWORK_MODE_ISOLATED, "isobr0",
                                                   "10.89.0.254")
    assert (iso.config.dhcp_start, iso.config.dhcp_end) == ("10.89.0.100", "10.89.0.200")
    assert (iso.domain, iso.ipv6_prefix) == ("lab.example", "fd42:1::/64")
    assert iso.config.ipv4_subnet == "10.89.0.254/24" and iso.config.bridge == "isobr0"
    rc, out, err = cli(nd, "network", "create", "half", "--subnet", "10.90.0.0/24",
                       "--dhcp-start", "10.90.0.50")
    assert rc == 0, err
    half = get(nd, "half")
    assert (half.config.dhcp_start, half.config.dhcp_end) == ("10.90.0.50", "")
    assert (half.dhcp_start, half.dhcp_end) == ("10.90.0.50", "10.90.0.254")

    rc, out, err = cli(nd, "network", "ls")
    assert rc == 0, err
    rows = table(out)
    assert rows[0] == ["NAME", "MODE", "BRIDGE", "SUBNET", "GATEWAY", "DHCP", "VMS", "STATUS"]
    assert rows[1:] == [
        ["half", "nat", "mvbr-half", "10.90.0.0/24", "10.90.0.1", "10.90.0.50-10.90.0.254", "0",
         "ok"],
        ["iso", "isolated", "isobr0", "10.89.0.0/24", "10.89.0.254", "10.89.0.100-10.89.0.200",
         "0", "ok"],
        ["lan", "nat", "mvbr-lan", "10.88.0.0/24", "10.88.0.1", "10.88.0.2-10.88.0.254", "0",
         "ok"],
    ]
    rc, out2, _ = cli(nd, "network", "list")
    assert rc == 0 and out2 == out

    rc, by_name, err = cli(nd, "network", "show", "iso")
    assert rc == 0, err
    rc, by_id, err = cli(nd, "network", "info", iso.id)
    assert rc == 0 and by_id == by_name, err
    f = kv(by_name)
    assert f["mode"] == ["isolated"] and f["dhcp"] == ["10.89.0.100 - 10.89.0.200"]
    assert f["ipv6"] == ["fd42:1::/64"] and f["domain"] == ["lab.example"]

    rc, out, err = cli(nd, "network", "rm", "lan", iso.id, "half")
    assert rc == 0, err
    assert out == f"deleted network lan\ndeleted network {iso.id}\ndeleted network half\n"
    assert names(nd) == []
    assert set(netns_links(netns)) == {"lo"}
    rc, out, err = cli(nd, "network", "ls")
    assert rc == 0 and table(out) == [["NAME", "MODE", "BRIDGE", "SUBNET", "GATEWAY", "DHCP",
                                       "VMS", "STATUS"]], err


def test_bridge_mode_shows_no_addresses(nd, netns):
    subprocess.run(["ip", "-n", netns, "link", "add", "hostbr", "type", "bridge"], check=True)
    rc, out, err = cli(nd, "network", "create", "ext", "--mode", "bridge", "--bridge", "hostbr")
    assert rc == 0, err
    f = kv(out)
    assert (f["mode"], f["bridge"], f["subnet"], f["gateway"], f["dhcp"]) == (
        ["bridge"], ["hostbr"], ["-"], ["-"], ["-"])
    rc, out, err = cli(nd, "network", "ls")
    assert table(out)[1] == ["ext", "bridge", "hostbr", "-", "-", "-", "0", "ok"]


def test_json_output_is_canonical_proto3_json(nd):
    rc, out, err = cli(nd, "-o", "json", "network", "create", "lan", "--subnet", "10.88.0.0/24")
    assert rc == 0, err
    assert json.loads(out) == canonical_json(get(nd, "lan"))
    rc, out, err = cli(nd, "network", "create", "iso", "--mode", "isolated", "--subnet",
                       "10.89.0.0/24", "-o", "json")
    assert rc == 0, err
    created = json.loads(out)
    assert created["mode"] == "NETWORK_MODE_ISOLATED" and created["used_by"] == []
    assert created == canonical_json(get(nd, "iso"))

    rc, out, err = cli(nd, "-o", "json", "network", "ls")
    assert rc == 0, err
    assert json.loads(out) == canonical_json(ncall(nd, "ListNetworks", pb.ListNetworksRequest()))
    rc, out, err = cli(nd, "network", "show", "lan", "-o", "json")
    assert rc == 0, err
    assert json.loads(out) == canonical_json(get(nd, "lan"))
    rc, out, err = cli(nd, "-o", "json", "network", "rm", "lan")
    assert rc == 0, err
    assert json.loads(out) == canonical_json(pb.DeleteNetworkResponse()) == {}
    assert names(nd) == ["iso"]
    rc, out, err = cli(nd, "-o", "json", "network", "rm", "nosuch")
    assert rc == 1 and out == "" and "nosuch" in err


def test_empty_list_json(nd):
    rc, out, err = cli(nd, "-o", "json", "network", "ls")
    assert rc == 0 and json.loads(out) == {"networks": []}, err


# ---- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("options, field", [
    (["--subnet", "10.1.0.0/33"], "config.ipv4_subnet"),
    (["--subnet", "nonsense"], "config.ipv4_subnet"),
    ([], "config.ipv4_subnet"),  # required in nat mode
    (["--subnet", "10.1.0.0/24", "--dhcp-range", "10.1.1.1-10.1.1.9"], "config.dhcp_start"),
    (["--subnet", "10.1.0.0/24", "--bridge", "sixteen-chars-xx"], "config.bridge"),
    (["--mode", "bridge", "--bridge", "nosuchbr"], "config.bridge"),
])
def test_bad_config_prints_the_daemon_message(nd, netns, options, field):
    rc, out, err = cli(nd, "network", "create", "bad", *options)
    assert rc == 1 and out == "", (rc, out, err)
    assert field in err, err
    # exactly the daemon's message, as the other verbs print it
    config = {"--subnet": "ipv4_subnet", "--bridge": "bridge", "--mode": "mode"}
    fields = {}
    for opt, value in zip(options[::2], options[1::2]):
        if opt == "--dhcp-range":
            fields["dhcp_start"], fields["dhcp_end"] = value.split("-")
        elif opt == "--mode":
            fields["mode"] = pb.NETWORK_MODE_BRIDGE
        else:
            fields[config[opt]] = value
    e = rpc_error(ncall, nd, "CreateNetwork",
                  pb.CreateNetworkRequest(name="bad", config=pb.NetworkConfig(**fields)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err == f"mvirt: {e.details()}\n"
    assert names(nd) == [] and set(netns_links(netns)) == {"lo"}


def test_existing_name_and_unknown_network(nd):
    assert cli(nd, "network", "create", "lan", "--subnet", "10.88.0.0/24")[0] == 0
    rc, out, err = cli(nd, "network", "create", "lan", "--subnet", "10.89.0.0/24")
    assert rc == 1 and out == "" and "lan" in err, err
    for verb in ("show", "rm"):  # leases: see test_leases
        rc, out, err = cli(nd, "network", verb, "nosuch")
        assert rc == 1 and out == "", (verb, err)
        assert err == "mvirt: network 'nosuch' does not exist\n", (verb, err)


def test_rm_of_a_network_in_use_names_the_vms(nd, vm_files):
    for name, subnet in (("lan", "10.88.0.0/24"), ("spare", "10.89.0.0/24")):
        assert cli(nd, "network", "create", name, "--subnet", subnet)[0] == 0
    for vm in ("web", "db"):
        rc, out, err = cli(nd, *vm_args(vm, vm_files, "--network", "lan"))
        assert rc == 0, err
    rc, out, err = cli(nd, "network", "rm", "lan")
    assert rc == 1 and out == "", err
    assert "'lan'" in err and "'db'" in err and "'web'" in err
    e = rpc_error(ncall, nd, "DeleteNetwork", pb.DeleteNetworkRequest(network="lan"))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and err == f"mvirt: {e.details()}\n"
    assert list(get(nd, "lan").used_by) == ["db", "web"]
    f = kv(cli(nd, "network", "show", "lan")[1])
    assert f["used by"] == ["db", "web"]
    assert table(cli(nd, "network", "ls")[1])[1][6] == "2"

    # the others named are still deleted; the exit status says one was refused
    rc, out, err = cli(nd, "network", "rm", "lan", "spare")
    assert rc == 1 and out == "deleted network spare\n" and "'web'" in err, (out, err)
    assert names(nd) == ["lan"]
    for vm in ("web", "db"):
        assert cli(nd, "delete", vm)[0] == 0
    rc, out, err = cli(nd, "network", "rm", "lan")
    assert rc == 0 and out == "deleted network lan\n", err


def test_leases(nd, netns, vm_files, tmp_path):
    from test_network_dhcp import dhcp, port
    from test_networks import nic_vm
    assert cli(nd, "network", "create", "lan", "--subnet", "10.88.0.0/24")[0] == 0
    rc, out, err = cli(nd, "network", "leases", "lan")
    assert rc == 0 and table(out) == [["MAC", "ADDRESS", "HOSTNAME", "VM", "EXPIRES"]], err
    mac = nic_vm(nd, "web", vm_files, "lan").config.nics[0].mac
    port(netns, "mvbr-lan", "g0", mac)
    addr = dhcp(netns, "g0", tmp_path)
    rc, out, err = cli(nd, "network", "leases", "lan")
    assert rc == 0, err
    rows = table(out)
    assert len(rows) == 2 and rows[1][:4] == [mac, addr, "web", "web"], rows
    resp = ncall(nd, "ListLeases", pb.ListLeasesRequest(network="lan"))
    rc, out, err = cli(nd, "-o", "json", "network", "leases", "lan")
    assert rc == 0 and json.loads(out) == canonical_json(resp), err


def test_unreachable_daemon_exits_3(tmp_path):
    for args in (["network", "ls"], ["network", "rm", "a", "b"]):
        rc, out, err = cli(None, *args, server=f"unix:{tmp_path}/none.sock")
        assert rc == 3 and out == "" and "cannot reach mvirt-vmm" in err, (args, err)
        assert err.count("cannot reach") == 1  # rm stops at the first


@pytest.mark.parametrize("argv, needle", [
    (["network"], "missing argument"),
    (["network", "frobnicate"], "unknown verb 'frobnicate'"),
    (["network", "create"], "network create: missing argument (usage: mvirt network create NAME"),
    (["network", "create", "a", "b"], "unexpected argument 'b'"),
    (["network", "create", "a", "--mode", "routed"], "--mode: unknown mode 'routed'"),
    (["network", "create", "a", "--mode"], "'--mode' needs a value"),
    (["network", "create", "a", "--subnet", "10.1.0.0/24", "--dhcp-range", "10.1.0.5"],
     "--dhcp-range: '10.1.0.5' is not START-END"),
    (["network", "create", "a", "--dhcp-range", "-10.1.0.5"], "--dhcp-range"),
    (["network", "create", "a", "--dhcp-range", "10.1.0.5-10.1.0.9", "--dhcp-end", "10.1.0.7"],
     "--dhcp-range"),
    (["network", "create", "a", "--size", "1G"], "unknown option '--size'"),
    (["network", "ls", "--subnet", "10.1.0.0/24"], "--subnet does not apply"),
    (["network", "show"], "missing argument"),
    (["network", "rm"], "missing argument"),
    (["network", "leases"], "missing argument"),
    (["network", "leases", "a", "b"], "unexpected argument 'b'"),
    (["create", "vm", "--network", ""], "--network: the network's name is missing"),
    (["create", "vm", "--network", ",mac=52:54:00:12:34:56"], "--network: the network's name"),
    (["create", "vm", "--network", "network=lan"], "--network: 'network=lan' is not a network"),
    (["create", "vm", "--network", "lan,tap=t0"], "--network: unknown key 'tap' (mac)"),
    (["create", "vm", "--network", "lan,mac"], "--network: 'mac' is not key=value"),
])
def test_usage_errors_exit_2(nd, argv, needle):
    rc, out, err = cli(nd, *argv)
    assert rc == 2 and out == "", (argv, rc, out, err)
    assert err.startswith("mvirt: ") and needle in err, err
    assert "--help" in err  # the hint
    assert names(nd) == [] and list(nd.call("ListVms").vms) == []  # nothing reached the daemon


def test_help():
    def run(*args):
        res = subprocess.run([CLI[0], *args], capture_output=True, text=True)
        assert res.returncode == 0 and res.stderr == "", res
        return res.stdout

    out = run("network", "--help")
    assert out.startswith("Usage: mvirt network VERB")
    for verb in ("create", "ls", "show", "rm", "leases"):
        assert re.search(rf"^  {verb}\b", out, re.M), verb
    assert re.search(r"^  network \(net\)\s", run("--help"), re.M)
    out = run("network", "create", "--help")
    assert out.startswith("Usage: mvirt network create NAME")
    for opt in ("--mode", "--subnet", "--bridge", "--dhcp-range", "--dhcp-start", "--dhcp-end",
                "--ipv6", "--domain"):
        assert opt in out, opt
    assert "--subnet" not in run("network", "show", "--help")
    for verb, alias in (("ls", "list"), ("show", "info"), ("rm", "delete")):
        assert run("net", alias, "-h").startswith(f"Usage: mvirt network {verb}")
    assert run("help", "network", "leases").startswith("Usage: mvirt network leases NAME")
    out = run("create", "--help")
    assert "--network NET" in out and "--nic SPEC" in out


# ---- VMs on networks --------------------------------------------------------------------------

def test_create_network_gives_the_vm_a_nic(nd, vm_files):
    for name, subnet in (("lan", "10.88.0.0/24"), ("iso", "10.89.0.0/24")):
        assert cli(nd, "network", "create", name, "--subnet", subnet)[0] == 0
    rc, out, err = cli(nd, *vm_args("web", vm_files, "--network", "lan", "--nic", "network=iso",
                                    "--network", "lan,mac=52:54:00:12:34:56"))
    assert rc == 0, err
    c = nd.call("GetVm", pb.GetVmRequest(vm="web")).config
    assert [(n.network, n.tap) for n in c.nics] == [("lan", ""), ("iso", ""), ("lan", "")]
    assert c.nics[2].mac == "52:54:00:12:34:56"
    assert list(get(nd, "lan").used_by) == ["web"]
    rc, out, err = cli(nd, "show", "web")
    assert rc == 0, err
    nics = kv(out)["nics"]
    assert [re.sub(r" mac=\S+$", "", n) for n in nics] == ["network=lan", "network=iso",
                                                            "network=lan"]
    assert nics[2] == "network=lan mac=52:54:00:12:34:56"


def test_show_of_a_running_vm_shows_its_taps(nd, vm_files, emulated):
    if not emulated:
        pytest.skip("needs the emulator's simulated guests")
    assert cli(nd, "network", "create", "lan", "--subnet", "10.88.0.0/24")[0] == 0
    assert cli(nd, *vm_args("web", vm_files, "--network", "lan"))[0] == 0
    nd.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60)
    vm = nd.call("GetVm", pb.GetVmRequest(vm="web"))
    assert vm.nics
    rc, out, err = cli(nd, "show", "web")
    assert rc == 0, err
    (nic,) = vm.nics
    line = f"network=lan mac={nic.mac} tap={nic.tap}"
    if nic.addresses:
        line += " addresses=" + ",".join(nic.addresses)
    assert kv(out)["nics"] == [line]
    rc, out, err = cli(nd, "-o", "json", "show", "web")
    assert rc == 0 and json.loads(out) == canonical_json(vm), err
    nd.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)
    rc, out, err = cli(nd, "show", "web")
    assert kv(out)["nics"] == [f"network=lan mac={nic.mac}"]
