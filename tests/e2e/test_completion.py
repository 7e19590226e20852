"""Bash completion (completions/mvirt.bash) driven in a real bash against a real daemon.

Each case sources the script in `bash --norc`, sets COMP_WORDS / COMP_CWORD as readline would
for a command line with the cursor at its end (words split at blanks and at the word-break
characters ':' and '=', which bash makes words of their own), calls the completion function
that `complete -p mvirt` names, and reads COMPREPLY. The command word is the built mvirt, so
commands and options come from its --help; names come from the daemon of the test (the daemon
fixture, or one in a network namespace of its own for networks), reached through -s,
--server=, or $MVIRT_SERVER. Also checks the CLI's -q (names only) output the script relies on.
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

import mvirt_proto
from test_docs import help_children, help_text

pb = mvirt_proto.mvirt_pb2
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "completions" / "mvirt.bash"
VOL = "/mvirt.VolumeService/"
NET = "/mvirt.NetworkService/"

# What bash's completion machinery would do, with the words given as arguments ($1: COMP_CWORD).
HARNESS = r'''
source "$SCRIPT" || exit 90
spec=$(complete -p mvirt) || exit 91
[[ $spec =~ -F\ ([^ ]+) ]] || exit 92
fn=${BASH_REMATCH[1]}
COMP_CWORD=$1; shift
COMP_WORDS=("$@")
COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$fn" mvirt "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


@pytest.fixture
def mvirt(cli_binary):
    return str(cli_binary)


def comp_words(line: str) -> list:
    """The COMP_WORDS of line (cursor at the end): blanks separate words, and each run of
    ':' or '=' is a word of its own (COMP_WORDBREAKS)."""
    words = []
    for w in line.split(" "):
        if w == "":
            continue
        words += [p for p in re.split(r"([:=]+)", w) if p]
    if line.endswith(" ") or not words:
        words.append("")
    return words


def complete(mvirt, line: str, env=None) -> list:
    """COMPREPLY for line, whose first word is replaced by the built mvirt's path."""
    words = comp_words(line)
    assert words[0] == "mvirt"
    words[0] = mvirt
    e = {k: v for k, v in os.environ.items() if k != "MVIRT_SERVER"}
    e.update(env or {}, SCRIPT=str(SCRIPT))
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", HARNESS, "harness",
                        str(len(words) - 1), *words],
                       capture_output=True, text=True, timeout=60, env=e)
    assert r.returncode == 0, f"harness exit {r.returncode}: {r.stderr}"
    assert r.stderr == "", r.stderr
    return [w for w in r.stdout.split("\n") if w]


def cli(mvirt, d, *args):
    r = subprocess.run([mvirt, "-s", d.unix_addr, *args], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stdout, r.stderr


def make_vm(d, name, vm_files, nics=()):
    cfg = pb.VmConfig(vcpus=1, memory_mb=128, kernel=vm_files["kernel"],
                      nics=[pb.Nic(tap=t, mac=m) for t, m in nics])
    d.call("CreateVm", pb.CreateVmRequest(name=name, config=cfg))


def make_volume(d, name):
    d.call(VOL + "CreateVolume", pb.CreateVolumeRequest(name=name, size_bytes=1 << 20))


def networks_daemon(netns, make_daemon):
    """A daemon in the test's network namespace with two isolated networks, lan and lab."""
    d = make_daemon(netns=netns, extra_args=("--default-network", "off"))
    for name, subnet in (("lan", "10.91.0.0/24"), ("lab", "10.92.0.0/24")):
        d.call(NET + "CreateNetwork", pb.CreateNetworkRequest(
            name=name, config=pb.NetworkConfig(mode=pb.NETWORK_MODE_ISOLATED,
                                               ipv4_subnet=subnet)))
    return d


# ---- commands and options --------------------------------------------------------------------

def test_command_names(mvirt):
    commands = list(help_children(help_text(mvirt)))
    assert "list" in commands and "volume" in commands
    assert complete(mvirt, "mvirt ") == commands
    assert complete(mvirt, "mvirt vo") == ["volume"]
    assert complete(mvirt, "mvirt st") == ["start", "stop"]
    # after global options too
    assert complete(mvirt, "mvirt -o json st") == ["start", "stop"]
    assert complete(mvirt, "mvirt -s unix:/nonexistent/x.sock st") == ["start", "stop"]


def test_verbs_of_groups_and_their_aliases(mvirt):
    verbs = list(help_children(help_text(mvirt, "volume")))
    assert "create" in verbs and "ls" in verbs
    assert complete(mvirt, "mvirt volume ") == verbs
    assert complete(mvirt, "mvirt vol ") == verbs  # the group's alias
    assert complete(mvirt, "mvirt network c") == ["create"]
    assert complete(mvirt, "mvirt help ") == list(help_children(help_text(mvirt)))
    assert complete(mvirt, "mvirt help volume ") == verbs


def test_options_per_command(mvirt):
    assert complete(mvirt, "mvirt stop --f") == ["--force"]
    assert complete(mvirt, "mvirt stop --t") == ["--timeout"]
    opts = complete(mvirt, "mvirt volume create --")
    assert {"--size", "--format", "--pool", "--server", "--output", "--help"} == set(opts)
    assert "--force" not in complete(mvirt, "mvirt start --")
    assert complete(mvirt, "mvirt list --q") == ["--quiet"]
    # the root's own: the global options
    assert set(complete(mvirt, "mvirt --")) == {"--server", "--output", "--help"}


def test_option_values(mvirt, tmp_path):
    assert complete(mvirt, "mvirt -o ") == ["table", "json"]
    assert complete(mvirt, "mvirt --output=j") == ["json"]
    assert complete(mvirt, "mvirt volume create x --format q") == ["qcow2"]
    assert complete(mvirt, "mvirt network create x --mode ") == ["nat", "isolated", "bridge"]
    # a metavar of alternatives ("on|off") offers them
    assert complete(mvirt, "mvirt set x --autostart ") == ["on", "off"]
    (tmp_path / "vmlinuz").write_bytes(b"k")
    (tmp_path / "other").write_bytes(b"o")
    assert complete(mvirt, f"mvirt create x --kernel {tmp_path}/vm") == [f"{tmp_path}/vmlinuz"]
    assert complete(mvirt, f"mvirt volume import x {tmp_path}/o") == [f"{tmp_path}/other"]
    (tmp_path / "user data").write_text("#cloud-config\n")
    assert complete(mvirt, f"mvirt create x --user-data {tmp_path}/u") == [f"{tmp_path}/user data"]
    assert complete(mvirt, f"mvirt create x --disk-spec path={tmp_path}/vm") == [f"{tmp_path}/vmlinuz"]
    # a value is not taken for a command or a positional argument
    assert complete(mvirt, "mvirt stop -t 5 --f") == ["--force"]


# ---- names from the daemon -------------------------------------------------------------------

def test_vm_names_from_the_daemon(mvirt, daemon, vm_files):
    for name in ("web", "web2", "db"):
        make_vm(daemon, name, vm_files)
    s = daemon.unix_addr
    assert complete(mvirt, f"mvirt -s {s} start ") == ["db", "web", "web2"]
    assert complete(mvirt, f"mvirt -s {s} start we") == ["web", "web2"]
    assert complete(mvirt, f"mvirt --server={s} show d") == ["db"]
    assert complete(mvirt, f"mvirt stop -s {s} -t 5 w") == ["web", "web2"]
    assert complete(mvirt, f"mvirt -s{s} kill d") == ["db"]
    assert complete(mvirt, "mvirt console d", env={"MVIRT_SERVER": s}) == ["db"]
    assert complete(mvirt, f"mvirt -s {daemon.tcp_addr} logs ") == ["db", "web", "web2"]
    # one VM argument only; a new VM's name is not completed
    assert complete(mvirt, f"mvirt -s {s} start web ") == []
    assert complete(mvirt, f"mvirt -s {s} create ") == []
    # a VM deleted is gone from the completion at once
    daemon.call("DeleteVm", pb.DeleteVmRequest(vm="web2"))
    assert complete(mvirt, f"mvirt -s {s} start we") == ["web"]


def test_macs_of_a_vm(mvirt, daemon, vm_files):
    make_vm(daemon, "db", vm_files, nics=[("mvtap0", "52:54:00:11:22:33"),
                                          ("mvtap1", "52:54:00:aa:bb:cc")])
    s = daemon.unix_addr
    assert complete(mvirt, f"mvirt -s {s} nic rm db ") == ["52:54:00:11:22:33",
                                                           "52:54:00:aa:bb:cc"]
    # bash replaces only what follows the word's last ':'
    assert complete(mvirt, f"mvirt -s {s} nic rm db 52:54:00:a") == ["aa:bb:cc"]
    assert complete(mvirt, f"mvirt -s {s} nic ") == ["add", "rm"]
    assert complete(mvirt, f"mvirt -s {s} nic add d") == ["db"]


def test_volume_names_from_the_daemon(mvirt, daemon):
    for name in ("data", "disk2", "scratch"):
        make_volume(daemon, name)
    s = daemon.unix_addr
    assert complete(mvirt, f"mvirt -s {s} volume rm ") == ["data", "disk2", "scratch"]
    assert complete(mvirt, f"mvirt -s {s} volume show d") == ["data", "disk2"]
    assert complete(mvirt, f"mvirt -s {s} vol clone s") == ["scratch"]
    assert complete(mvirt, f"mvirt -s {s} volume clone scratch ") == []  # the new name
    assert complete(mvirt, f"mvirt -s {s} create x --volume d") == ["data", "disk2"]
    assert complete(mvirt, f"mvirt -s {s} create x --volume-ro=s") == ["scratch"]


def test_network_names_from_the_daemon(mvirt, netns, make_daemon):
    d = networks_daemon(netns, make_daemon)
    s = d.unix_addr
    assert complete(mvirt, f"mvirt -s {s} network show ") == ["lab", "lan"]
    assert complete(mvirt, f"mvirt -s {s} net rm lab la") == ["lab", "lan"]  # NAME|ID...
    assert complete(mvirt, f"mvirt -s {s} create x --network lan") == ["lan"]
    # the word bash replaces is what follows network=
    assert complete(mvirt, f"mvirt -s {s} create x --nic network=la") == ["lab", "lan"]
    assert complete(mvirt, f"mvirt -s {s} create x --nic ") == ["network=", "tap="]


def test_server_value(mvirt, daemon):
    run = str(daemon.runtime_dir)
    # the socket's path after unix: (bash replaces what follows the ':')
    got = complete(mvirt, f"mvirt -s unix:{run}/mvirt.s")
    assert got == [f"{run}/mvirt.sock"]
    got = complete(mvirt, f"mvirt --server=unix:{run}/mvirt.s")
    assert got == [f"{run}/mvirt.sock"]
    assert "127.0.0.1:50051" in complete(mvirt, "mvirt -s ")


def test_unreachable_daemon_offers_nothing_and_says_nothing(mvirt):
    t = time.monotonic()
    assert complete(mvirt, "mvirt -s unix:/nonexistent/mvirt.sock start ") == []
    assert complete(mvirt, "mvirt -s unix:/nonexistent/mvirt.sock volume rm ") == []
    assert time.monotonic() - t < 30


# ---- the CLI's names-only output -------------------------------------------------------------

def test_quiet_lists_print_only_names(mvirt, daemon, vm_files):
    for name in ("b-vm", "a-vm"):
        make_vm(daemon, name, vm_files)
    make_volume(daemon, "vol1")
    assert cli(mvirt, daemon, "list", "-q") == (0, "a-vm\nb-vm\n", "")
    assert cli(mvirt, daemon, "ls", "--quiet") == (0, "a-vm\nb-vm\n", "")
    assert cli(mvirt, daemon, "volume", "ls", "-q") == (0, "vol1\n", "")
    assert cli(mvirt, daemon, "network", "ls", "-q") == (0, "", "")
    rc, out, err = cli(mvirt, daemon, "-o", "json", "list", "-q")
    assert rc == 0, err
    assert [v["name"] for v in json.loads(out)["vms"]] == ["a-vm", "b-vm"]
    rc, _, err = cli(mvirt, daemon, "show", "a-vm", "-q")
    assert rc == 2 and "unknown option '-q'" in err, err
