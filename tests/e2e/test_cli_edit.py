"""`mvirt set`, `mvirt edit` and `mvirt create --autostart` end to end: the real CLI against a
real daemon (hypervisor: the emulator), with a scripted $EDITOR (a Python script that edits the
JSON file as the test says). What the CLI reports is checked against GetVm (grpcio).
"""

import json
import os
import pty
import re
import subprocess
import sys
import textwrap

import pytest

import mvirt_proto
from test_cli import cli_path, create_ok, run_cli

pb = mvirt_proto.mvirt_pb2

EDITOR_SCRIPT = textwrap.dedent("""\
    import json, os, subprocess, sys
    path = sys.argv[1]
    log = os.environ.get("EDIT_LOG")
    n = 0
    if log:
        n = len(open(log).read().splitlines()) if os.path.exists(log) else 0
        with open(log, "a") as f:
            f.write(path + "\\n")
    steps = json.loads(os.environ["EDIT_STEPS"])
    step = steps[min(n, len(steps) - 1)]
    if step.get("before"):
        subprocess.run(step["before"], check=True)
    if "raw" in step:
        open(path, "w").write(step["raw"])
    elif "set" in step:
        c = json.load(open(path))
        c.update(step["set"])
        json.dump(c, open(path, "w"), indent=1)
    sys.exit(step.get("exit", 0))
""")


@pytest.fixture
def editor(tmp_path):
    """env for run_cli: EDITOR runs the scripted editor with the given steps (one per run)."""
    script = tmp_path / "editor.py"
    script.write_text(EDITOR_SCRIPT)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    log = tmp_path / "editor.log"

    def env(*steps, var="EDITOR"):
        e = {"EDITOR": "", "VISUAL": "", "TMPDIR": str(tmpdir), "EDIT_LOG": str(log),
             "EDIT_STEPS": json.dumps(list(steps))}
        e[var] = f"{sys.executable} {script}"
        return e

    env.tmpdir = tmpdir
    env.runs = lambda: log.read_text().splitlines() if log.exists() else []
    return env


def get(d, vm):
    return d.call("GetVm", pb.GetVmRequest(vm=vm))


# ---- set ----------------------------------------------------------------------------------

def test_set_changes_the_fields_given(ch_daemon, vm_files):
    d = ch_daemon
    vm = create_ok(d, "a", vm_files, "--cmdline", "old", "--disk", vm_files["disk"])
    rc, out, err = run_cli(d, "set", "a", "--memory", "1G", "--vcpus", "2", "--cmdline",
                           "console=ttyS0")
    assert rc == 0, err
    got = get(d, "a")
    assert (got.config.memory_mb, got.config.vcpus, got.config.cmdline) == (1024, 2,
                                                                            "console=ttyS0")
    assert got.config.disks == vm.config.disks and got.config.kernel == vm.config.kernel
    assert re.search(r"^memory: +1\.0 GiB$", out, re.M), out
    rc, out, err = run_cli(d, "set", "a", "--autostart", "on", "--autostart-order", "4")
    assert rc == 0, err
    assert "autostart:" in out and "on (order 4)" in out, out
    rc, out, err = run_cli(d, "set", "a", "--cmdline", "", "--disk", vm_files["disk2"],
                           "--disk-ro", vm_files["disk"])
    assert rc == 0, err
    got = get(d, "a")
    assert got.config.cmdline == ""
    assert [(x.path, x.readonly) for x in got.config.disks] == [(vm_files["disk2"], False),
                                                                (vm_files["disk"], True)]
    rc, out, err = run_cli(d, "-o", "json", "show", "a")
    assert json.loads(out)["config"]["autostart"] is True


def test_set_refusals(ch_daemon, vm_files):
    d = ch_daemon
    vm = create_ok(d, "a", vm_files)
    rc, out, err = run_cli(d, "set", "a", "--vcpus", "0")
    assert rc == 1 and "config.vcpus" in err, err
    rc, out, err = run_cli(d, "set", "a", "--kernel", "/nonexistent")
    assert rc == 1 and "config.kernel" in err, err
    rc, out, err = run_cli(d, "set", "a")
    assert rc == 2 and "nothing to change" in err, err
    rc, out, err = run_cli(d, "set", "a", "--autostart", "maybe")
    assert rc == 2 and "--autostart" in err, err
    assert get(d, "a") == vm
    d.call("StartVm", pb.StartVmRequest(vm="a"), timeout=60)
    try:
        rc, out, err = run_cli(d, "set", "a", "--memory", "256")
        assert rc == 1 and "is running" in err, err
        rc, out, err = run_cli(d, "set", "a", "--autostart", "on")
        assert rc == 0, err
        assert get(d, "a").config.autostart
    finally:
        d.call("KillVm", pb.KillVmRequest(vm="a"), timeout=60)


def test_create_autostart(ch_daemon, vm_files):
    d = ch_daemon
    vm = create_ok(d, "a", vm_files, "--autostart", "--autostart-order", "9")
    assert (vm.config.autostart, vm.config.autostart_order) == (True, 9)
    assert not create_ok(d, "b", vm_files).config.autostart
    create_ok(d, "c", vm_files, "--autostart")
    rc, out, err = run_cli(d, "list")
    assert rc == 0, err
    # NAME STATE VCPUS MEMORY AUTOSTART ID: the order shows where it is not the default
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][4] == "AUTOSTART" and [(r[0], r[5]) for r in rows[1:]] == [
        ("a", "on/9"), ("b", "off"), ("c", "on")], out


# ---- edit ---------------------------------------------------------------------------------

def test_edit_applies_the_edited_config(ch_daemon, vm_files, editor):
    d = ch_daemon
    vm = create_ok(d, "a", vm_files)
    rc, out, err = run_cli(d, "edit", "a", env=editor(
        {"set": {"memory_mb": 512, "cmdline": "quiet", "autostart": True,
                 "disks": [{"path": vm_files["disk"], "readonly": True}]}}))
    assert rc == 0, err
    got = get(d, "a")
    assert (got.config.memory_mb, got.config.cmdline, got.config.autostart) == (512, "quiet",
                                                                                True)
    assert [(x.path, x.readonly) for x in got.config.disks] == [(vm_files["disk"], True)]
    assert got.config_version == vm.config_version + 1
    assert "cmdline:" in out and "quiet" in out, out
    [path] = editor.runs()
    assert path.startswith(str(editor.tmpdir)) and path.endswith(".json")
    assert not os.listdir(editor.tmpdir)  # the temporary file is gone


def test_edit_unchanged_sends_nothing(ch_daemon, vm_files, editor):
    d = ch_daemon
    vm = create_ok(d, "a", vm_files)
    rc, out, err = run_cli(d, "edit", "a", env=editor({}))
    assert rc == 0, err
    assert out.strip() == "vm a: unchanged"
    # reformatted but equal (a number for the 64-bit string) is unchanged too
    rc, out, err = run_cli(d, "edit", "a", env=editor({"set": {"memory_mb": 128}}))
    assert rc == 0 and "unchanged" in out, err
    assert get(d, "a") == vm
    assert "config changed" not in d.log_text()


@pytest.mark.parametrize("step,message", [
    ({"set": {"vcpus": 0}}, "config.vcpus"),
    ({"set": {"kernel": "/nonexistent"}}, "config.kernel"),
    ({"set": {"cpus": 2}}, "config.cpus: unknown field"),
    ({"set": {"disks": [{"format": "vhd"}]}}, "config.disks[0].format: expected one of"),
    ({"set": {"vcpus": "two"}}, "config.vcpus: "),
    ({"raw": "{ not json"}, "not valid JSON"),
    ({"raw": "{} {}"}, "not valid JSON"),
])
def test_edit_refused_keeps_the_file_without_a_terminal(ch_daemon, vm_files, editor, step,
                                                        message):
    d = ch_daemon
    vm = create_ok(d, "a", vm_files)
    rc, out, err = run_cli(d, "edit", "a", env=editor(step))
    assert rc == 1, (out, err)
    assert message in err, err
    kept = os.listdir(editor.tmpdir)
    assert len(kept) == 1 and f"kept in {editor.tmpdir / kept[0]}" in err, err
    assert get(d, "a") == vm
    assert len(editor.runs()) == 1  # no terminal: no second round


def test_edit_again_on_a_terminal(ch_daemon, vm_files, editor):
    """With a tty on stdin a refusal asks "edit again?"; the same file is edited again."""
    d = ch_daemon
    create_ok(d, "a", vm_files)
    env = dict(os.environ)
    env.pop("MVIRT_SERVER", None)
    env.update(editor({"set": {"vcpus": 0}}, {"set": {"vcpus": 2}}))
    master, slave = pty.openpty()
    try:
        os.write(master, b"\n")  # the answer: the default, yes
        res = subprocess.run([str(cli_path()), "-s", d.unix_addr, "edit", "a"], stdin=slave,
                             capture_output=True, text=True, env=env, timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    assert res.returncode == 0, res.stderr
    assert "config.vcpus" in res.stderr and "edit again? [Y/n]" in res.stderr
    runs = editor.runs()
    assert len(runs) == 2 and runs[0] == runs[1]
    assert get(d, "a").config.vcpus == 2
    assert not os.listdir(editor.tmpdir)


def test_concurrent_change_is_not_overwritten(ch_daemon, vm_files, editor):
    """Someone changes the VM while the editor is open: the edit is refused, the file kept."""
    d = ch_daemon
    create_ok(d, "a", vm_files)
    other = [str(cli_path()), "-s", d.unix_addr, "set", "a", "--vcpus", "2"]
    rc, out, err = run_cli(d, "edit", "a",
                           env=editor({"before": other, "set": {"memory_mb": 512}}))
    assert rc == 1 and "config_version" in err and "kept in" in err, err
    got = get(d, "a")
    assert (got.config.vcpus, got.config.memory_mb) == (2, 128)
    assert len(os.listdir(editor.tmpdir)) == 1


def test_edit_editor_choice_and_failure(ch_daemon, vm_files, editor):
    d = ch_daemon
    vm = create_ok(d, "a", vm_files)
    rc, out, err = run_cli(d, "edit", "a", env=editor({"set": {"vcpus": 2}}, var="VISUAL"))
    assert rc == 0, err
    assert get(d, "a").config.vcpus == 2
    rc, out, err = run_cli(d, "edit", "a", env=editor({"set": {"vcpus": 1}, "exit": 3}))
    assert rc == 1 and "status 3" in err and "unchanged" in err, err
    assert get(d, "a").config.vcpus == 2
    assert not os.listdir(editor.tmpdir)
    rc, out, err = run_cli(d, "edit", "nope", env=editor({}))
    assert rc == 1 and "nope" in err
    rc, out, err = run_cli(d, "-o", "json", "edit", "a", env=editor({"set": {"vcpus": 1}}))
    assert rc == 0, err
    assert json.loads(out)["config"]["vcpus"] == 1 and json.loads(out)["id"] == vm.id


def test_edit_running_vm(ch_daemon, vm_files, editor):
    """A running VM: the editor still opens (autostart can change), with a note; another
    change is refused with the daemon's message and changes nothing."""
    d = ch_daemon
    create_ok(d, "a", vm_files)
    d.call("StartVm", pb.StartVmRequest(vm="a"), timeout=60)
    try:
        rc, out, err = run_cli(d, "edit", "a", env=editor({"set": {"memory_mb": 256}}))
        assert rc == 1 and "is not stopped" in err and "is running" in err, err
        assert get(d, "a").config.memory_mb == 128
        rc, out, err = run_cli(d, "edit", "a", env=editor({"set": {"autostart": True}}))
        assert rc == 0, err
        assert get(d, "a").config.autostart
    finally:
        d.call("KillVm", pb.KillVmRequest(vm="a"), timeout=60)
