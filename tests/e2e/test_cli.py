"""End-to-end tests of the mvirt CLI against a real mvirt-vmm (fixtures in conftest.py).

The CLI's output is checked against what the daemon says through an independent client (grpcio +
the Python protobuf modules of mvirt_proto): `-o json` must equal the canonical proto3 JSON of
the same response (google.protobuf.json_format, original field names, defaults included), which
also covers src/common/pbjson.c.

Exit statuses: 0 ok, 1 daemon error, 2 usage error, 3 daemon unreachable.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

import mvirt_proto

pb = mvirt_proto.mvirt_pb2

COMMANDS = (
    "list", "create", "show", "delete", "start", "stop", "kill", "reboot", "pause", "resume",
    "console", "logs", "events", "volume", "version", "sysinfo", "help",
)
ALIASES = {"ls": "list", "info": "show", "rm": "delete", "vol": "volume"}
VOLUME_VERBS = ("create", "import", "clone", "resize", "rm", "ls", "show")
VOLUME_ALIASES = {"delete": "rm", "list": "ls", "info": "show"}
LIFECYCLE = {
    "start": "StartVm", "stop": "StopVm", "kill": "KillVm", "reboot": "RebootVm",
    "pause": "PauseVm", "resume": "ResumeVm",
}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$")


def cli_path() -> Path:
    """build_dir/src/cli/mvirt, with build_dir chosen as conftest.py chooses it."""
    build = Path(os.environ.get("MVIRT_BUILD_DIR", Path(__file__).resolve().parents[2] / "build"))
    return build.resolve() / "src" / "cli" / "mvirt"


@pytest.fixture(autouse=True)
def _cli_built(cli_binary):
    pass


def run_cli(daemon, *args, server=None, env=None, cwd=None, timeout=60, uid=None):
    """Runs mvirt and returns (rc, stdout, stderr).

    server: None puts `-s daemon.unix_addr` in front of args (nothing if daemon is None);
    False passes no -s at all (to test $MVIRT_SERVER and options after the command); a string
    is passed as -s. $MVIRT_SERVER is removed from the environment unless env sets it.
    uid: run as this user (and group, no supplementary groups); needs root."""
    argv = [str(cli_path())]
    if server is None and daemon is not None:
        server = daemon.unix_addr
    if server:
        argv += ["-s", server]
    argv += [str(a) for a in args]
    full_env = {k: v for k, v in os.environ.items() if k != "MVIRT_SERVER"}
    full_env.update(env or {})
    preexec = None
    if uid is not None:
        def preexec():
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
    res = subprocess.run(
        argv, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout, preexec_fn=preexec
    )
    return res.returncode, res.stdout, res.stderr


def canonical_json(msg) -> dict:
    """The proto3 JSON of msg as the CLI must print it: original field names, scalar and
    repeated defaults included, unset message fields left out."""
    return json_format.MessageToDict(
        msg, preserving_proto_field_name=True, including_default_value_fields=True
    )


def create_args(name, files, vcpus=1, memory=128):
    return ["create", name, "--vcpus", vcpus, "--memory", memory, "--kernel", files["kernel"]]


def create_ok(daemon, name, files, *extra):
    rc, out, err = run_cli(daemon, *create_args(name, files), *extra)
    assert rc == 0, err
    return daemon.call("GetVm", pb.GetVmRequest(vm=name))


# ---- usage -------------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS + tuple(ALIASES))
def test_help_of_every_command(command):
    name = ALIASES.get(command, command)
    for argv in ([command, "--help"], [command, "-h"], ["--help", command], ["help", command]):
        rc, out, err = run_cli(None, *argv)
        assert rc == 0, (argv, err)
        assert f"Usage: mvirt {name}" in out, (argv, out)
        assert err == ""


@pytest.mark.parametrize("verb", VOLUME_VERBS + tuple(VOLUME_ALIASES))
def test_help_of_every_volume_verb(verb):
    name = VOLUME_ALIASES.get(verb, verb)
    for argv in (["volume", verb, "--help"], ["vol", verb, "-h"], ["volume", "--help", verb],
                 ["help", "volume", verb]):
        rc, out, err = run_cli(None, *argv)
        assert rc == 0, (argv, err)
        assert out.startswith(f"Usage: mvirt volume {name}"), (argv, out)
        assert err == ""


def test_volume_create_help_lists_only_its_options():
    rc, out, _ = run_cli(None, "volume", "create", "--help")
    assert rc == 0
    for opt in ("--size", "--format", "--pool"):
        assert opt in out
    rc, out, _ = run_cli(None, "volume", "show", "--help")
    assert rc == 0 and "--size" not in out and "--pool" not in out


def test_general_help_lists_every_command():
    for argv in (["--help"], ["-h"], ["help"]):
        rc, out, err = run_cli(None, *argv)
        assert rc == 0, err
        assert out.startswith("Usage: mvirt"), out
        for command in COMMANDS:
            assert re.search(rf"^  {command}\b", out, re.M), (command, out)


def test_create_help_lists_its_options():
    rc, out, _ = run_cli(None, "create", "--help")
    assert rc == 0
    for opt in ("--vcpus", "--memory", "--kernel", "--initramfs", "--cmdline", "--firmware",
                "--disk", "--disk-ro", "--disk-spec", "--nic", "--user-data"):
        assert opt in out


@pytest.mark.parametrize("argv, needle", [
    (["frobnicate"], "unknown command 'frobnicate'"),
    ([], "no command"),
    (["list", "--bogus"], "unknown option '--bogus'"),
    (["-x", "list"], "unknown option '-x'"),
    (["show"], "missing argument"),
    (["list", "extra"], "unexpected argument 'extra'"),
    (["-o", "yaml", "list"], "yaml"),
    (["create", "a", "--vcpus"], "needs a value"),
    (["create", "a", "--vcpus", "two"], "--vcpus"),
    (["create", "a", "--memory", "12X"], "--memory"),
    (["create", "a", "--disk-spec", "path=/x,format=vmdk"], "vmdk"),
    (["create", "a", "--disk-spec", "format=raw"], "path"),
    (["create", "a", "--nic", "bridge=br0"], "bridge"),
    (["stop", "-t", "soon", "a"], "--timeout"),
    (["stop", "--force=yes", "a"], "--force"),
    (["help", "frobnicate"], "frobnicate"),
    (["help", "volume", "frobnicate"], "unknown verb 'frobnicate'"),
    (["help", "list", "x"], "no sub-command"),
    (["volume", "bogus"], "unknown verb 'bogus'"),
    (["volume", "--pool", "p"], "missing argument"),
    (["volume", "--size", "1G", "show", "a"], "--size does not apply"),
    (["-s", "no-port-here", "list"], "invalid server address 'no-port-here'"),
    (["list", "-s", ""], "invalid server address"),
])
def test_usage_errors_exit_2(daemon, argv, needle):
    rc, out, err = run_cli(daemon, *argv)
    assert rc == 2, (argv, out, err)
    assert err.startswith("mvirt: "), err
    assert needle in err
    assert "--help" in err  # the hint
    assert out == ""
    # Nothing reached the daemon.
    assert list(daemon.call("ListVms").vms) == []


# ---- create / list / show / delete ----------------------------------------------------------

def test_list_empty_prints_the_header(daemon):
    rc, out, err = run_cli(daemon, "list")
    assert rc == 0, err
    assert out.split() == ["NAME", "STATE", "VCPUS", "MEMORY", "AUTOSTART", "ID"]
    rc, out, err = run_cli(daemon, "-o", "json", "list")
    assert rc == 0, err
    assert json.loads(out) == {"vms": []}


def test_create_then_list(daemon, vm_files):
    rc, out, err = run_cli(daemon, *create_args("web-1", vm_files, vcpus=2, memory="1G"))
    assert rc == 0, err
    vm = daemon.call("GetVm", pb.GetVmRequest(vm="web-1"))
    assert vm.config.memory_mb == 1024
    assert re.search(rf"^id:\s+{vm.id}$", out, re.M), out
    assert re.search(r"^state:\s+stopped$", out, re.M), out
    create_ok(daemon, "db", vm_files)

    rc, out, err = run_cli(daemon, "list")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "VCPUS", "MEMORY", "AUTOSTART", "ID"]
    rows = [line.split() for line in lines[1:]]
    db = daemon.call("GetVm", pb.GetVmRequest(vm="db"))
    assert rows == [
        ["db", "stopped", "1", "128", "MiB", "off", db.id],
        ["web-1", "stopped", "2", "1.0", "GiB", "off", vm.id],
    ]
    rc, out2, _ = run_cli(daemon, "ls")
    assert rc == 0 and out2 == out


def test_create_makes_relative_paths_absolute(daemon, vm_files):
    d = Path(vm_files["kernel"]).parent
    rc, out, err = run_cli(
        daemon, "create", "rel", "--vcpus", "1", "--memory", "128",
        "--kernel", "kernel", "--initramfs", "./initramfs", "--disk", "disk",
        "--disk-spec", "path=disk2,readonly=on", cwd=d,
    )
    assert rc == 0, err
    c = daemon.call("GetVm", pb.GetVmRequest(vm="rel")).config
    assert c.kernel == str(d / "kernel")
    assert c.initramfs == str(d / "initramfs")
    assert [(x.path, x.readonly) for x in c.disks] == [(str(d / "disk"), False), (str(d / "disk2"), True)]

    # A relative path that does not exist is prefixed with the cwd, and the daemon names it.
    rc, out, err = run_cli(daemon, *create_args("rel2", vm_files), "--initramfs", "missing/initrd", cwd=d)
    assert rc == 1, (out, err)
    assert str(d / "missing" / "initrd") in err


def test_create_disks_nics_user_data_in_order(daemon, vm_files, tmp_path):
    ud = tmp_path / "user-data"
    ud.write_text("#cloud-config\nhostname: full\n")
    create_ok(
        daemon, "full", vm_files,
        "--cmdline", "console=ttyS0 root=/dev/vda",
        "--disk-ro", vm_files["disk2"],
        "--disk-spec", f"path={vm_files['disk']},format=raw,readonly=off",
        "--nic", "tap=tap-mv0",
        "--nic", "tap=tap-mv1,mac=52:54:00:12:34:56",
        "--user-data", str(ud),
    )
    c = daemon.call("GetVm", pb.GetVmRequest(vm="full")).config
    assert c.cmdline == "console=ttyS0 root=/dev/vda"
    assert [(x.path, x.readonly) for x in c.disks] == [(vm_files["disk2"], True), (vm_files["disk"], False)]
    assert c.disks[1].format == pb.DISK_FORMAT_RAW
    assert [(n.tap, n.network) for n in c.nics] == [("tap-mv0", ""), ("tap-mv1", "")]
    assert c.nics[1].mac == "52:54:00:12:34:56"
    assert c.user_data == ud.read_text()

    rc, out, err = run_cli(daemon, "show", "full")
    assert rc == 0, err
    assert re.search(rf"^disks:\s+{re.escape(vm_files['disk2'])} \(\w+, ro\)$", out, re.M), out
    assert re.search(rf"^\s+{re.escape(vm_files['disk'])} \(raw, rw\)$", out, re.M), out
    assert re.search(r"^nics:\s+tap=tap-mv0 mac=", out, re.M), out
    assert re.search(r"^\s+tap=tap-mv1 mac=52:54:00:12:34:56$", out, re.M), out


@pytest.mark.parametrize("memory, mib", [("96", 96), ("200M", 200), ("1G", 1024), ("1GiB", 1024)])
def test_memory_sizes(daemon, vm_files, memory, mib):
    rc, _, err = run_cli(daemon, *create_args("m", vm_files, memory=memory))
    assert rc == 0, err
    assert daemon.call("GetVm", pb.GetVmRequest(vm="m")).config.memory_mb == mib


def test_show_by_name_and_by_id(daemon, vm_files):
    vm = create_ok(daemon, "web-1", vm_files, "--initramfs", vm_files["initramfs"])
    rc, by_name, err = run_cli(daemon, "show", "web-1")
    assert rc == 0, err
    rc, by_id, err = run_cli(daemon, "info", vm.id)
    assert rc == 0, err
    assert by_name == by_id
    fields = dict(re.match(r"^(\w[\w-]*):\s+(.*)$", line).groups() for line in by_name.splitlines())
    assert fields["id"] == vm.id
    assert fields["name"] == "web-1"
    assert fields["state"] == "stopped"
    assert fields["reason"] == vm.state_reason
    assert fields["vcpus"] == "1"
    assert fields["memory"] == "128 MiB"
    assert fields["kernel"] == vm_files["kernel"]
    assert fields["initramfs"] == vm_files["initramfs"]
    assert fields["started"] == "never"
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(vm.created_at.seconds))
    assert fields["created"].startswith(created), fields["created"]


def test_json_output_is_canonical_proto3_json(daemon, vm_files):
    vm = create_ok(daemon, "web-1", vm_files, "--disk", vm_files["disk"], "--nic", "tap=tap-mv0")
    rc, out, err = run_cli(daemon, "-o", "json", "show", "web-1")
    assert rc == 0, err
    got = json.loads(out)
    assert got == canonical_json(vm)
    assert got["name"] == "web-1" and got["id"] == vm.id
    assert got["state"] == "VM_STATE_STOPPED"
    assert got["config"]["memory_mb"] == "128"  # 64-bit integers are strings
    assert got["config"]["vcpus"] == 1
    assert got["config"]["firmware"] == "" and got["config"]["disks"][0]["readonly"] is False
    assert RFC3339_UTC.match(got["created_at"]), got["created_at"]
    assert "started_at" not in got  # unset message field

    create_ok(daemon, "a-first", vm_files)
    rc, out, err = run_cli(daemon, "list", "--output=json")
    assert rc == 0, err
    got = json.loads(out)
    assert [v["name"] for v in got["vms"]] == ["a-first", "web-1"]
    assert got == canonical_json(daemon.call("ListVms"))


def test_create_json_prints_the_vm(daemon, vm_files):
    rc, out, err = run_cli(daemon, "-o", "json", *create_args("j", vm_files))
    assert rc == 0, err
    assert json.loads(out) == canonical_json(daemon.call("GetVm", pb.GetVmRequest(vm="j")))


def test_delete(daemon, vm_files):
    vm = create_ok(daemon, "gone", vm_files)
    create_ok(daemon, "kept", vm_files)
    rc, out, err = run_cli(daemon, "delete", "gone")
    assert rc == 0, err
    assert "gone" in out and vm.id in out
    assert [v.name for v in daemon.call("ListVms").vms] == ["kept"]
    rc, _, err = run_cli(daemon, "show", "gone")
    assert rc == 1 and "gone" in err

    kept = daemon.call("GetVm", pb.GetVmRequest(vm="kept"))
    rc, out, err = run_cli(daemon, "-o", "json", "rm", kept.id)
    assert rc == 0, err
    assert json.loads(out) == {"vm": canonical_json(kept)}
    assert list(daemon.call("ListVms").vms) == []


def test_delete_unknown(daemon):
    rc, out, err = run_cli(daemon, "delete", "no-such-vm")
    assert rc == 1
    assert out == ""
    assert err.startswith("mvirt: ") and "no-such-vm" in err


def test_create_duplicate(daemon, vm_files):
    create_ok(daemon, "dup", vm_files)
    rc, out, err = run_cli(daemon, *create_args("dup", vm_files))
    assert rc == 1
    assert err.startswith("mvirt: ") and "already" in err
    assert len(daemon.call("ListVms").vms) == 1


def test_create_invalid_config_shows_daemon_message(daemon, vm_files):
    rc, out, err = run_cli(daemon, *create_args("zero", vm_files, vcpus=0))
    assert rc == 1
    assert out == ""
    assert err.startswith("mvirt: ") and "config.vcpus" in err
    assert list(daemon.call("ListVms").vms) == []


def test_user_data_file_missing(daemon, vm_files, tmp_path):
    rc, out, err = run_cli(daemon, *create_args("u", vm_files), "--user-data", tmp_path / "nope")
    assert rc == 1
    assert "user-data" in err and "nope" in err
    assert list(daemon.call("ListVms").vms) == []


# ---- version / sysinfo ----------------------------------------------------------------------

def test_version(daemon):
    v = daemon.call("GetVersion")
    rc, out, err = run_cli(daemon, "version")
    assert rc == 0, err
    lines = out.splitlines()
    assert re.match(r"^client: \S+$", lines[0]), out
    assert lines[1] == f"daemon: {v.version} (api {v.api_version})"
    rc, out, err = run_cli(daemon, "version", "-o", "json")
    assert rc == 0, err
    assert json.loads(out) == canonical_json(v)


def test_sysinfo(daemon, vm_files):
    create_ok(daemon, "s", vm_files)
    info = daemon.call("GetSystemInfo")
    rc, out, err = run_cli(daemon, "sysinfo")
    assert rc == 0, err
    fields = dict(re.match(r"^(\w+):\s+(.*)$", line).groups() for line in out.splitlines())
    assert fields["hostname"] == info.hostname
    assert fields["cpus"] == f"{info.host_cpus} ({info.allocated_vcpus} allocated to VMs)"
    assert fields["vms"] == "1"
    assert fields["hypervisor"].startswith(info.hypervisor_path)
    rc, out, err = run_cli(daemon, "-o", "json", "sysinfo")
    assert rc == 0, err
    got = json.loads(out)
    assert got == canonical_json(info)
    assert got["allocated_memory_mb"] == "128"


# ---- choosing and reaching the server ---------------------------------------------------------

def test_server_unix_and_tcp(daemon, vm_files):
    create_ok(daemon, "both", vm_files)
    for server in (daemon.unix_addr, daemon.unix_path, daemon.tcp_addr):
        rc, out, err = run_cli(daemon, "list", server=server)
        assert rc == 0, (server, err)
        assert "both" in out, server
    # Global options after the command name, long form.
    rc, out, err = run_cli(daemon, "list", "--server", daemon.tcp_addr, server=False)
    assert rc == 0, err
    assert "both" in out
    rc, out, err = run_cli(daemon, "show", "both", f"--server={daemon.unix_addr}", "-o", "json", server=False)
    assert rc == 0, err
    assert json.loads(out)["name"] == "both"


def test_mvirt_server_env(daemon, vm_files, tmp_path):
    create_ok(daemon, "env", vm_files)
    for addr in (daemon.tcp_addr, daemon.unix_addr):
        rc, out, err = run_cli(daemon, "list", server=False, env={"MVIRT_SERVER": addr})
        assert rc == 0, (addr, err)
        assert "env" in out
    bad = f"unix:{tmp_path}/nothing.sock"
    rc, out, err = run_cli(daemon, "list", server=False, env={"MVIRT_SERVER": bad})
    assert rc == 3, err
    assert bad in err
    # --server wins over the environment.
    rc, out, err = run_cli(daemon, "list", server=daemon.tcp_addr, env={"MVIRT_SERVER": bad})
    assert rc == 0, err


def test_unreachable_exits_3_fast(daemon, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    for server in (f"unix:{tmp_path}/absent.sock", f"127.0.0.1:{closed_port}"):
        t0 = time.monotonic()
        rc, out, err = run_cli(daemon, "list", server=server)
        assert rc == 3, (server, err)
        assert time.monotonic() - t0 < 5, server
        assert f"cannot reach mvirt-vmm at {server}" in err
        assert out == ""

    # The daemon's own address once it is stopped.
    daemon.stop()
    rc, out, err = run_cli(daemon, "version")
    assert rc == 3, err
    assert "client: " in out
    assert daemon.unix_addr in err
    daemon.start()
    rc, _, err = run_cli(daemon, "version")
    assert rc == 0, err


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.mark.skipif(os.path.exists("/run/mvirt/mvirt.sock") or not _port_free(50051),
                    reason="a system mvirt-vmm is installed here")
def test_default_server_is_local_tcp(tmp_path):
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    rc, out, err = run_cli(None, "list", env=env)
    assert rc == 3, err
    assert "cannot reach mvirt-vmm at 127.0.0.1:50051" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the CLI as another user")
def test_default_server_of_a_user_is_in_xdg_runtime_dir():
    """A non-root user's default is $XDG_RUNTIME_DIR/mvirt/mvirt.sock when that socket exists.
    The socket here is bound but not listening: connecting fails at once, naming the path."""
    d = Path(tempfile.mkdtemp(prefix="mvx", dir="/tmp"))
    try:
        (d / "mvirt").mkdir()
        for p in (d, d / "mvirt"):
            p.chmod(0o755)
        path = d / "mvirt" / "mvirt.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(str(path))
            path.chmod(0o777)
            rc, out, err = run_cli(None, "list", env={"XDG_RUNTIME_DIR": str(d)}, uid=65534)
        assert rc == 3, err
        assert f"cannot reach mvirt-vmm at unix:{path}" in err
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the CLI as another user")
def test_unprivileged_user(daemon):
    """Over TCP the daemon answers PERMISSION_DENIED (a daemon error: exit 1, its message); the
    Unix socket (mode 0660) refuses the connection itself (exit 3, with a hint)."""
    nobody = 65534
    rc, out, err = run_cli(daemon, "list", server=daemon.tcp_addr, uid=nobody)
    assert rc == 1, err
    assert out == ""
    assert err.startswith("mvirt: ") and "permission" in err.lower()
    rc, out, err = run_cli(daemon, "list", uid=nobody)
    assert rc == 3, err
    assert "access group" in err
    # root is let in on both.
    for server in (daemon.tcp_addr, daemon.unix_addr):
        rc, _, err = run_cli(daemon, "list", server=server)
        assert rc == 0, err


def test_silent_server_times_out_with_exit_3(daemon):
    """A peer that accepts TCP connections but never speaks HTTP/2: the connect deadline
    (5 s) applies, not the 30 s call deadline."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []

    def accept():
        try:
            while True:
                conns.append(srv.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        t0 = time.monotonic()
        rc, out, err = run_cli(daemon, "list", server=f"127.0.0.1:{srv.getsockname()[1]}")
        elapsed = time.monotonic() - t0
    finally:
        srv.close()
        for c in conns:
            c.close()
    assert rc == 3, err
    assert "cannot reach mvirt-vmm" in err
    assert 4 < elapsed < 15, elapsed


# ---- lifecycle verbs --------------------------------------------------------------------------

def state_word(state) -> str:
    return pb.VmState.Name(state)[len("VM_STATE_"):].lower()


def list_states(daemon) -> dict:
    rc, out, err = run_cli(daemon, "list")
    assert rc == 0, err
    return {row.split()[0]: row.split()[1] for row in out.splitlines()[1:]}


def assert_daemon_error(daemon, method, vm, argv, code):
    """The CLI exits 1 with the daemon's own message for what the daemon refuses: the same
    call through grpcio (which must change nothing) gives the message to expect."""
    before = None
    if code != grpc.StatusCode.NOT_FOUND:
        before = daemon.call("GetVm", pb.GetVmRequest(vm=vm))
    req_cls, _ = mvirt_proto.method_types(method)
    with pytest.raises(grpc.RpcError) as exc:
        daemon.call(method, req_cls(vm=vm), timeout=60)
    assert exc.value.code() == code, (exc.value.code(), exc.value.details())
    rc, out, err = run_cli(daemon, *argv)
    assert rc == 1, (argv, out, err)
    assert out == ""
    assert err.strip().splitlines()[0] == f"mvirt: {exc.value.details()}", err
    if before is not None:
        after = daemon.call("GetVm", pb.GetVmRequest(vm=vm))
        assert (after.state, after.pid) == (before.state, before.pid)


@pytest.fixture
def ch_cli_daemon(ch_daemon, emulated):
    if not emulated:
        pytest.skip("boots simulated guests: needs ch-emu")
    return ch_daemon


def test_lifecycle_verbs(ch_cli_daemon, vm_files):
    d = ch_cli_daemon
    create_ok(d, "lc", vm_files)
    create_ok(d, "idle", vm_files)

    def verb(*argv, expect):
        rc, out, err = run_cli(d, *argv)
        assert rc == 0, (argv, err)
        assert out == f"lc: {expect}\n", (argv, out)
        vm = d.call("GetVm", pb.GetVmRequest(vm="lc"))
        assert state_word(vm.state) == expect, (argv, vm)
        return vm

    vm = verb("start", "lc", expect="running")
    assert vm.pid > 0 and os.path.exists(f"/proc/{vm.pid}")
    pid = vm.pid
    assert list_states(d) == {"idle": "stopped", "lc": "running"}
    verb("pause", "lc", expect="paused")
    assert list_states(d) == {"idle": "stopped", "lc": "paused"}
    assert_daemon_error(d, "PauseVm", "lc", ["pause", "lc"], grpc.StatusCode.FAILED_PRECONDITION)
    assert_daemon_error(d, "StartVm", "lc", ["start", "lc"], grpc.StatusCode.FAILED_PRECONDITION)
    verb("resume", "lc", expect="running")
    assert_daemon_error(d, "ResumeVm", "lc", ["resume", "lc"], grpc.StatusCode.FAILED_PRECONDITION)
    assert verb("reboot", "lc", expect="running").pid == pid
    # -o json prints the returned Vm as the API has it.
    rc, out, err = run_cli(d, "-o", "json", "stop", "-t", "10", "lc")
    assert rc == 0, err
    vm = d.call("GetVm", pb.GetVmRequest(vm="lc"))
    assert vm.state == pb.VM_STATE_STOPPED and vm.pid == 0
    assert json.loads(out) == canonical_json(vm)
    assert list_states(d) == {"idle": "stopped", "lc": "stopped"}
    for argv, method in ((["stop", "lc"], "StopVm"), (["kill", "lc"], "KillVm"),
                         (["pause", "lc"], "PauseVm"), (["reboot", "lc"], "RebootVm")):
        assert_daemon_error(d, method, "lc", argv, grpc.StatusCode.FAILED_PRECONDITION)
    assert_daemon_error(d, "StartVm", "nosuch", ["start", "nosuch"], grpc.StatusCode.NOT_FOUND)

    verb("start", "lc", expect="running")
    vm = verb("kill", "lc", expect="stopped")
    assert vm.state_reason == "killed"
    verb("start", "lc", expect="running")
    verb("stop", "--force", "lc", expect="stopped")
    verb("start", "lc", expect="running")
    verb("stop", "-t", "0", "lc", expect="stopped")
    assert list_states(d) == {"idle": "stopped", "lc": "stopped"}


def test_list_shows_a_crashed_vm(ch_cli_daemon, vm_files):
    d = ch_cli_daemon
    create_ok(d, "boom", vm_files, "--cmdline", "chemu.crash_after=100")
    rc, out, err = run_cli(d, "start", "boom")
    assert rc == 0 and out == "boom: running\n", (out, err)
    deadline = time.monotonic() + 20
    while list_states(d)["boom"] != "crashed":
        assert time.monotonic() < deadline, list_states(d)
        time.sleep(0.02)
    rc, out, err = run_cli(d, "show", "boom")
    assert rc == 0, err
    assert re.search(r"^state:\s+crashed$", out, re.M), out
    assert re.search(r"^reason:\s+.*SIGSEGV", out, re.M), out
