"""Zsh completion (completions/_mvirt) driven in a real interactive zsh against a real daemon.

Each case starts `zsh -d -i` on a pseudo-terminal (zsh's zpty module, run by a `zsh -f`
driver) with a .zshrc that puts completions/ first in $fpath and runs compinit, so _mvirt is
found by its #compdef line as an installed one would be. The driver types the command line and
a Tab, which is bound to a widget that runs zsh's complete-word and then writes $BUFFER (what
zsh inserted) to a file. compadd is wrapped to also write the matches each call adds (after
zsh's own matching against the word), so the candidates are those of zsh's real machinery
(_describe, _wanted, _files). The listing zsh prints on the terminal is kept too: it shows
the descriptions. The built mvirt is first in $PATH, so commands and options come from its
--help; names come from the daemon of the test, reached through -s, --server=, or
$MVIRT_SERVER.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import pytest

import mvirt_proto
from test_completion import make_volume, make_vm, networks_daemon
from test_docs import help_children, help_text

pb = mvirt_proto.mvirt_pb2
REPO = Path(__file__).resolve().parents[2]
COMPDIR = REPO / "completions"

# The interactive zsh's startup file ($T: the case's directory).
ZSHRC = r'''
PS1='%# '
fpath=($COMPDIR $fpath)
autoload -Uz compinit && compinit -u -d $ZCOMPDUMP  # the dump: 0.1 s, not 2 s of scanning
LISTMAX=100000          # list everything, never ask "do you wish to see all ...?"

# zsh's own queries (-O, -A, -D: matches stored in an array, none added) pass through; the
# others are also written to $T/words, the matches that survive zsh's matching, one a line
compadd()
{
    local -a __head=("${(@)@[1,${@[(i)(-|--)]}-1]}")
    if (( ${__head[(I)-[a-zA-Z0-9]#[OAD]]} )); then
        builtin compadd "$@"
        return
    fi
    local -a __hits
    builtin compadd -O __hits "$@"
    (( $#__hits )) && print -rl -- "${__hits[@]}" >>$T/words
    builtin compadd "$@"
}

_t_complete()
{
    zle complete-word
    print -r -- "$BUFFER" >|$T/buffer
    : >|$T/done
}
zle -N _t_complete
bindkey '^I' _t_complete
'''

# Types $1 and a Tab into an interactive zsh on a pseudo-terminal, keeps what it prints in
# $T/tty, and waits for the widget's $T/done.
DRIVER = r'''
zmodload zsh/zpty || exit 90
zmodload zsh/zselect || exit 90
zpty z zsh -d -i || exit 91
zpty -w -n z "$1"$'\t'
integer n
for (( n = 0; n < 1000; n++ )); do
    while zpty -rt z chunk; do print -rn -- "$chunk" >>$T/tty; done
    [[ -e $T/done ]] && break
    zselect -t 5
done
zpty -d z
[[ -e $T/done ]] || exit 93
'''


class Shell(NamedTuple):
    mvirt: str      # the built mvirt
    dump: str       # compinit's dump file, shared by the cases


class Completion(NamedTuple):
    words: list    # the matches added, in the order they were added
    buffer: str    # the command line after the completion
    listing: str   # what zsh printed (the list of matches with their descriptions)


@pytest.fixture(scope="session")
def zcompdump(tmp_path_factory):
    if not shutil.which("zsh") or subprocess.run(["zsh", "-f", "-c", "zmodload zsh/zpty"],
                                                 capture_output=True).returncode != 0:
        pytest.skip("zsh with its zpty module is not installed (scripts/packages.txt)")
    return str(tmp_path_factory.mktemp("zsh") / "zcompdump")


@pytest.fixture
def mvirt(cli_binary, zcompdump):
    return Shell(str(cli_binary), zcompdump)


def complete(sh: Shell, line: str, env=None) -> Completion:
    """Types line (its first word: mvirt, the built one by $PATH) and a Tab in zsh."""
    assert line.startswith("mvirt")
    with tempfile.TemporaryDirectory(prefix="mvzsh") as t:
        (Path(t) / ".zshrc").write_text(ZSHRC)
        e = {k: v for k, v in os.environ.items() if k != "MVIRT_SERVER"}
        e.update(env or {}, T=t, ZDOTDIR=t, COMPDIR=str(COMPDIR), ZCOMPDUMP=sh.dump,
                 TERM="dumb", PATH=str(Path(sh.mvirt).parent) + ":" + os.environ["PATH"])
        r = subprocess.run(["zsh", "-f", "-c", DRIVER, "driver", line], capture_output=True,
                           text=True, timeout=90, env=e)
        tty = Path(t, "tty").read_text(errors="replace") if Path(t, "tty").exists() else ""
        assert r.returncode == 0, f"driver exit {r.returncode}: {r.stderr}\n{tty}"
        words = Path(t, "words").read_text().split("\n") if Path(t, "words").exists() else []
        buffer = Path(t, "buffer").read_text().rstrip("\n")
    listing = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]|[\r\x08]", "", tty)
    # the completion functions print nothing of their own (no errors of zsh's either)
    assert not re.search(r"_mvirt\w*:\d+:|command not found", listing), listing
    seen = []
    for w in words:
        if w and w not in seen:
            seen.append(w)
    return Completion(seen, buffer, listing)


def words(mvirt, line: str, env=None) -> list:
    return complete(mvirt, line, env).words


def inserted(mvirt, line: str, env=None) -> str:
    """The command line after the completion of line."""
    return complete(mvirt, line, env).buffer


# ---- commands and options --------------------------------------------------------------------

def test_command_names_with_descriptions(mvirt):
    commands = list(help_children(help_text(mvirt.mvirt)))
    assert "list" in commands and "volume" in commands
    c = complete(mvirt, "mvirt ")
    assert c.words == commands
    assert c.buffer == "mvirt "
    # the descriptions of mvirt --help are in the listing
    assert "boot a stopped VM" in c.listing and "shut a VM down" in c.listing
    # a single match is inserted, with a space after it
    assert inserted(mvirt, "mvirt vo") == "mvirt volume "
    assert words(mvirt, "mvirt st") == ["start", "stop"]
    # after global options too, and after a command's alias
    assert words(mvirt, "mvirt -o json st") == ["start", "stop"]
    assert words(mvirt, "mvirt -s unix:/nonexistent/x.sock st") == ["start", "stop"]
    assert words(mvirt, "mvirt nope ") == []


def test_verbs_of_groups_and_their_aliases(mvirt):
    verbs = list(help_children(help_text(mvirt.mvirt, "volume")))
    assert "create" in verbs and "ls" in verbs
    c = complete(mvirt, "mvirt volume ")
    assert c.words == verbs
    assert "a thin copy" in c.listing
    assert words(mvirt, "mvirt vol ") == verbs  # the group's alias
    assert inserted(mvirt, "mvirt network c") == "mvirt network create "
    assert words(mvirt, "mvirt help ") == list(help_children(help_text(mvirt.mvirt)))
    assert words(mvirt, "mvirt help volume ") == verbs


def test_options_per_command(mvirt):
    assert inserted(mvirt, "mvirt stop --f") == "mvirt stop --force "
    c = complete(mvirt, "mvirt stop -")
    assert set(c.words) == {"-t", "--timeout", "--force", "-s", "--server", "-o", "--output",
                            "-h", "--help"}
    assert "skip the power button" in c.listing
    opts = words(mvirt, "mvirt volume create --")
    assert {"--size", "--format", "--pool", "--server", "--output", "--help"} == set(opts)
    assert "--force" not in words(mvirt, "mvirt start --")
    assert inserted(mvirt, "mvirt list --q") == "mvirt list --quiet "
    # the root's own: the global options
    assert set(words(mvirt, "mvirt --")) == {"--server", "--output", "--help"}
    # a description on the line after a long option and metavar
    assert "cloud-init network-config" in complete(mvirt, "mvirt create x --network").listing


def test_option_values(mvirt, tmp_path):
    # alternatives from the usage line: mvirt [-o table|json], [--format raw|qcow2], ...
    assert words(mvirt, "mvirt -o ") == ["table", "json"]
    assert words(mvirt, "mvirt start -o ") == ["table", "json"]
    assert inserted(mvirt, "mvirt --output=j") == "mvirt --output=json "
    assert inserted(mvirt, "mvirt volume create x --format q") == \
        "mvirt volume create x --format qcow2 "
    assert words(mvirt, "mvirt network create x --mode ") == ["nat", "isolated", "bridge"]
    # ... and from a metavar of alternatives ("--autostart on|off")
    assert words(mvirt, "mvirt set x --autostart ") == ["on", "off"]
    assert words(mvirt, "mvirt set x --autostart o") == ["on", "off"]
    assert words(mvirt, "mvirt set x --autostart-order ") == []  # N: nothing to offer
    (tmp_path / "vmlinuz").write_bytes(b"k")
    (tmp_path / "other").write_bytes(b"o")
    assert inserted(mvirt, f"mvirt create x --kernel {tmp_path}/vm") == \
        f"mvirt create x --kernel {tmp_path}/vmlinuz "
    assert inserted(mvirt, f"mvirt volume import x {tmp_path}/o") == \
        f"mvirt volume import x {tmp_path}/other "
    (tmp_path / "user data").write_text("#cloud-config\n")
    assert inserted(mvirt, f"mvirt create x --user-data {tmp_path}/u") == \
        f"mvirt create x --user-data {tmp_path}/user\\ data "
    assert inserted(mvirt, f"mvirt create x --disk-spec path={tmp_path}/vm") == \
        f"mvirt create x --disk-spec path={tmp_path}/vmlinuz "
    assert words(mvirt, "mvirt create x --disk-spec ") == ["path="]
    # a value is not taken for a command or a positional argument
    assert inserted(mvirt, "mvirt stop -t 5 --f") == "mvirt stop -t 5 --force "


# ---- names from the daemon -------------------------------------------------------------------

def test_vm_names_from_the_daemon(mvirt, daemon, vm_files):
    for name in ("web", "web2", "db"):
        make_vm(daemon, name, vm_files)
    s = daemon.unix_addr
    assert words(mvirt, f"mvirt -s {s} start ") == ["db", "web", "web2"]
    assert words(mvirt, f"mvirt -s {s} start we") == ["web", "web2"]
    assert inserted(mvirt, f"mvirt --server={s} show d") == f"mvirt --server={s} show db "
    assert words(mvirt, f"mvirt stop -s {s} -t 5 w") == ["web", "web2"]
    assert words(mvirt, f"mvirt -s{s} kill d") == ["db"]
    assert words(mvirt, "mvirt console d", env={"MVIRT_SERVER": s}) == ["db"]
    assert words(mvirt, f"mvirt -s {daemon.tcp_addr} logs ") == ["db", "web", "web2"]
    assert words(mvirt, f"mvirt -s {s} set ") == ["db", "web", "web2"]  # VM
    # one VM argument only; a new VM's name is not completed
    assert words(mvirt, f"mvirt -s {s} start web ") == []
    assert words(mvirt, f"mvirt -s {s} create ") == []
    # a VM deleted is gone from the completion at once
    daemon.call("DeleteVm", pb.DeleteVmRequest(vm="web2"))
    assert inserted(mvirt, f"mvirt -s {s} start we") == f"mvirt -s {s} start web "


def test_server_of_the_command_line_is_asked(mvirt, make_daemon, vm_files):
    a, b = make_daemon(), make_daemon()
    make_vm(a, "alpha", vm_files)
    make_vm(b, "beta", vm_files)
    assert words(mvirt, f"mvirt -s {a.unix_addr} start ") == ["alpha"]
    assert words(mvirt, f"mvirt -s {b.unix_addr} start ") == ["beta"]
    assert words(mvirt, f"mvirt start --server {b.unix_addr} ") == ["beta"]
    # the command line's -s wins over $MVIRT_SERVER
    env = {"MVIRT_SERVER": a.unix_addr}
    assert words(mvirt, "mvirt start ", env=env) == ["alpha"]
    assert words(mvirt, f"mvirt -s {b.unix_addr} start ", env=env) == ["beta"]


def test_macs_of_a_vm(mvirt, daemon, vm_files):
    make_vm(daemon, "db", vm_files, nics=[("mvtap0", "52:54:00:11:22:33"),
                                          ("mvtap1", "52:54:00:aa:bb:cc")])
    s = daemon.unix_addr
    assert words(mvirt, f"mvirt -s {s} nic rm db ") == ["52:54:00:11:22:33",
                                                        "52:54:00:aa:bb:cc"]
    assert inserted(mvirt, f"mvirt -s {s} nic rm db 52:54:00:a") == \
        f"mvirt -s {s} nic rm db 52:54:00:aa:bb:cc "
    assert words(mvirt, f"mvirt -s {s} nic ") == ["add", "rm"]
    assert words(mvirt, f"mvirt -s {s} nic add d") == ["db"]


def test_volume_names_from_the_daemon(mvirt, daemon):
    for name in ("data", "disk2", "scratch"):
        make_volume(daemon, name)
    s = daemon.unix_addr
    assert words(mvirt, f"mvirt -s {s} volume rm ") == ["data", "disk2", "scratch"]
    assert words(mvirt, f"mvirt -s {s} volume show d") == ["data", "disk2"]
    assert inserted(mvirt, f"mvirt -s {s} vol clone s") == f"mvirt -s {s} vol clone scratch "
    assert words(mvirt, f"mvirt -s {s} volume clone scratch ") == []  # the new name
    assert words(mvirt, f"mvirt -s {s} create x --volume d") == ["data", "disk2"]
    assert inserted(mvirt, f"mvirt -s {s} create x --volume-ro=s") == \
        f"mvirt -s {s} create x --volume-ro=scratch "


def test_network_names_from_the_daemon(mvirt, netns, make_daemon):
    d = networks_daemon(netns, make_daemon)
    s = d.unix_addr
    assert words(mvirt, f"mvirt -s {s} network show ") == ["lab", "lan"]
    assert words(mvirt, f"mvirt -s {s} net rm lab la") == ["lab", "lan"]  # NAME|ID...
    assert inserted(mvirt, f"mvirt -s {s} create x --network lan") == \
        f"mvirt -s {s} create x --network lan "
    assert words(mvirt, f"mvirt -s {s} create x --nic network=la") == ["lab", "lan"]
    assert words(mvirt, f"mvirt -s {s} create x --nic ") == ["network=", "tap="]
    assert words(mvirt, f"mvirt -s {s} nic add x ") == ["lab", "lan"]  # NET


def test_server_value(mvirt, daemon):
    run = str(daemon.runtime_dir)
    assert inserted(mvirt, f"mvirt -s unix:{run}/mvirt.s") == f"mvirt -s unix:{run}/mvirt.sock "
    assert inserted(mvirt, f"mvirt --server=unix:{run}/mvirt.s") == \
        f"mvirt --server=unix:{run}/mvirt.sock "
    assert "127.0.0.1:50051" in words(mvirt, "mvirt -s ")


def test_unreachable_daemon_offers_nothing_and_says_nothing(mvirt):
    t = time.monotonic()
    assert words(mvirt, "mvirt -s unix:/nonexistent/mvirt.sock start ") == []
    assert words(mvirt, "mvirt -s unix:/nonexistent/mvirt.sock volume rm ") == []
    assert time.monotonic() - t < 30
