"""mvirt-vmm --check-config (-n): every problem of the config file and the command line, each
with FILE:LINE (or the option), exit 1; "ok" and exit 0 when there is none; either way no state
or runtime directory, lock, database or socket is made. A daemon started with such a file
refuses with the same list (exit 2) and also makes nothing."""

import subprocess
from pathlib import Path

import pytest

from conftest import make_tmpdir

BAD = """\
# every line below but the comments is wrong
state_dir = relative/path
colour = blue
listen = 0.0.0.0:50051
just some words
max_connections = 0
state-dir = /var/lib/mvirt-again
default_network = 10.0.0.0

pool = nopath
idle_timeout = -5
listen = unix:/run/mvirt/ok.sock
"""

# (line, what the message says) for each problem in BAD
EXPECTED = [
    (2, "state-dir: 'relative/path' must be an absolute path"),
    (3, "unknown key 'colour'"),
    (4, "not a loopback address"),
    (5, "expected KEY = VALUE"),
    (6, "max-connections: '0' is not a whole number 1..65536"),
    (7, "state-dir is set again (first at line 2)"),
    (8, "default-network: '10.0.0.0' is not auto, off or an IPv4 CIDR"),
    (10, "pool: 'nopath' is not NAME:PATH"),
    (11, "idle-timeout: '-5' is not a whole number"),
]


@pytest.fixture
def tree():
    d = make_tmpdir("mvcc")
    yield d
    subprocess.run(["rm", "-rf", str(d)])


def run(build_dir, *args, timeout=30):
    return subprocess.run([str(build_dir / "src/vmm/mvirt-vmm"), *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def dirs(tree):
    return ["--state-dir", str(tree / "state"), "--runtime-dir", str(tree / "run")]


def assert_nothing_made(tree):
    left = sorted(p.name for p in tree.iterdir() if p.name != "mvirt-vmm.conf")
    assert left == [], left


@pytest.mark.parametrize("flag", ["--check-config", "-n"])
def test_every_problem_reported_with_file_and_line(build_dir, tree, flag):
    conf = tree / "mvirt-vmm.conf"
    conf.write_text(BAD)
    r = run(build_dir, flag, "--config", str(conf), *dirs(tree))
    assert r.returncode == 1, r
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith(f"mvirt-vmm: {conf}:")]
    assert len(lines) == len(EXPECTED), r.stderr
    for (lineno, what), ln in zip(EXPECTED, lines):
        assert ln.startswith(f"mvirt-vmm: {conf}:{lineno}: "), (lineno, ln)
        assert what in ln, (what, ln)
    assert f"{len(EXPECTED)} problems" in r.stderr, r.stderr
    assert r.stdout == ""
    assert_nothing_made(tree)


def test_command_line_problems_are_listed_too(build_dir, tree):
    conf = tree / "mvirt-vmm.conf"
    conf.write_text("colour = blue\n")
    r = run(build_dir, "-n", "--config", str(conf), "--max-connections", "lots",
            "--listen", "10.1.2.3:80", *dirs(tree))
    assert r.returncode == 1, r
    assert "--max-connections: 'lots' is not a whole number" in r.stderr, r.stderr
    assert "--listen address '10.1.2.3:80': not a loopback address" in r.stderr
    assert f"{conf}:1: unknown key 'colour'" in r.stderr
    assert "3 problems" in r.stderr
    assert_nothing_made(tree)


def test_good_config_is_ok(build_dir, tree):
    conf = tree / "mvirt-vmm.conf"
    conf.write_text("# all defaults but these\nstate_dir = /var/lib/elsewhere\n"
                    "listen = unix:/run/x/mvirt.sock\nlisten = 127.0.0.1:50099\n"
                    'group = ""\npool = fast:/srv/fast\ndefault-network = 10.9.0.0/24\n')
    r = run(build_dir, "--check-config", "--config", str(conf))
    assert (r.returncode, r.stderr) == (0, ""), r
    assert r.stdout == f"mvirt-vmm: configuration ok ({conf})\n"
    assert not Path("/var/lib/elsewhere").exists()
    assert_nothing_made(tree)


def test_missing_config_file(build_dir, tree):
    r = run(build_dir, "-n", "--config", str(tree / "nope.conf"))
    assert r.returncode == 1, r
    assert f"{tree}/nope.conf: cannot read the config file: No such file or directory" \
        in r.stderr
    assert_nothing_made(tree)


def test_the_shipped_config_file_is_valid(build_dir):
    """debian/mvirt-vmm.conf, installed as /etc/mvirt/mvirt-vmm.conf: all defaults, commented,
    and valid with every setting uncommented."""
    shipped = Path(__file__).resolve().parents[2] / "debian" / "mvirt-vmm.conf"
    r = run(build_dir, "-n", "--config", str(shipped))
    assert r.returncode == 0, r
    d = make_tmpdir("mvcc")
    try:
        uncommented = d / "all.conf"
        uncommented.write_text("".join(
            ln[1:] if ln[:1] == "#" and ln[1:2].isalpha() else ln
            for ln in shipped.read_text().splitlines(keepends=True)))
        assert "state_dir = /var/lib/mvirt" in uncommented.read_text()
        r = run(build_dir, "-n", "--config", str(uncommented))
        assert r.returncode == 0, (r, uncommented.read_text())
    finally:
        subprocess.run(["rm", "-rf", str(d)])


def test_daemon_refuses_to_start_with_every_problem(build_dir, tree):
    conf = tree / "mvirt-vmm.conf"
    conf.write_text(BAD)
    r = run(build_dir, "--config", str(conf), *dirs(tree))
    assert r.returncode == 2, r
    assert sum(1 for ln in r.stderr.splitlines() if f"{conf}:" in ln) == len(EXPECTED), r.stderr
    assert_nothing_made(tree)
