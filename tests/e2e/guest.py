"""Real test guests for the end-to-end tests: built images, disk images, console and process checks.

    guest_dir(build_dir)        build_dir/"test-guest" after scripts/make-test-guest ran (once per
                                session): vmlinuz + initramfs.gz (Debian's cloud kernel, busybox),
                                tinyguest.elf. Skips the test when the kernel cannot be fetched.
    tinyguest(build_dir)        path of tinyguest.elf (skips when its sources are absent)
    run_arg(snippet)            "mvirt.run=<base64>": a shell snippet the Linux guest runs at boot
    make_ext4(path, mb, files)  an ext4 image filled from {relative path: str|bytes} (no mounts)
    read_ext4(path, file)       a file's bytes from an ext4 image (FileNotFoundError if absent)
    wait_console(daemon, vm_id, marker, timeout=90)
                                polls the VM's console log until marker appears; fails early if
                                the VM stops or the daemon dies
    process_tree(pid) / wait_gone(pids)
                                a hypervisor process and its descendants (QEMU), and a check that
                                none of them is left

The Linux guest (see scripts/make-test-guest) mounts a cloud-init seed (the disk labelled
CIDATA/cidata) read-only on /seed and, with SEED_PRINT on its cmdline, prints each seed file
between "mvirt-guest: seed <file> begin" and "... end" lines; mounts /dev/vda (unless it is the
seed) on /mnt, runs mvirt.run, prints READY_MARKER, keeps a shell on the console and powers off
cleanly on the ACPI power button.
Guests run under QEMU/TCG through tools/ch-emu: boots take seconds, and much longer on a loaded
machine, so every wait polls against a generous deadline.
"""

import base64
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import mvirt_proto

pb = mvirt_proto.mvirt_pb2
REPO = Path(__file__).resolve().parents[2]
CH_EMU = REPO / "tools" / "ch-emu" / "ch-emu"
MAKE_TEST_GUEST = REPO / "scripts" / "make-test-guest"
READY_MARKER = "MVIRT-GUEST-READY"
SEED_PRINT = "mvirt.seed=print"  # cmdline token: the guest prints its cloud-init seed's files
SKIP_STATUS = 77  # make-test-guest: the kernel cannot be fetched

_built = {}  # build dir -> (returncode, output)


def require_tools(*tools):
    """Skips the test when one of the host tools is missing."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip("needs " + ", ".join(missing) + " (see scripts/packages.txt)")


def _make(build_dir) -> Path:
    out = Path(build_dir) / "test-guest"
    key = str(out)
    if key not in _built:
        res = subprocess.run(
            [str(MAKE_TEST_GUEST), str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=600,
        )
        _built[key] = (res.returncode, res.stdout)
    rc, output = _built[key]
    if rc not in (0, SKIP_STATUS):
        pytest.fail(f"scripts/make-test-guest {out} failed (exit status {rc}):\n{output}")
    return out


def guest_dir(build_dir) -> Path:
    """The directory with vmlinuz, initramfs.gz (and tinyguest.elf), built on first use."""
    out = _make(build_dir)
    rc, output = _built[str(out)]
    if rc == SKIP_STATUS:
        pytest.skip(f"no Linux test guest: the Debian cloud kernel cannot be fetched:\n{output}")
    return out


def tinyguest(build_dir) -> Path:
    """tinyguest.elf, built on first use (it needs no kernel download)."""
    out = _make(build_dir)
    p = out / "tinyguest.elf"
    if not p.is_file():
        output = _built[str(out)][1]
        pytest.skip(f"no tinyguest.elf (its sources are not beside the repo):\n{output}")
    return p


def run_arg(snippet: str) -> str:
    """The kernel command-line token that makes the Linux guest run snippet (sh) at boot."""
    return "mvirt.run=" + base64.b64encode(snippet.encode()).decode()


def make_ext4(path, size_mb: int, files: dict) -> Path:
    """Creates an ext4 image of size_mb MiB at path holding files ({relative path: str|bytes})."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="mvext4") as d:
        for rel, content in files.items():
            f = Path(d) / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(content.encode() if isinstance(content, str) else content)
        if path.exists():
            path.unlink()
        subprocess.run(["truncate", "-s", f"{size_mb}M", str(path)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", d, str(path)], check=True)
    return path


def read_ext4(path, file: str) -> bytes:
    """The contents of /file in the ext4 image at path; FileNotFoundError if it is not there."""
    res = subprocess.run(
        ["debugfs", "-R", f"cat /{file.lstrip('/')}", str(path)], capture_output=True, check=True
    )
    err = res.stderr.decode(errors="replace")
    if "not found" in err or "Bad magic" in err or "while trying to open" in err:
        raise FileNotFoundError(f"{path}: /{file}: {err.strip()}")
    return res.stdout


def console_log(daemon, vm_id: str) -> Path:
    return Path(daemon.state_dir) / "vms" / vm_id / "console.log"


def console_text(daemon, vm_id: str) -> str:
    try:
        return console_log(daemon, vm_id).read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


def wait_console(daemon, vm_id: str, marker: str, timeout: float = 90) -> str:
    """Polls the VM's console log until it contains marker; returns the log text. Fails with
    the log's tail when the deadline passes, the daemon exits, or the VM leaves the running
    states first."""
    deadline = time.monotonic() + timeout
    next_state_check = 0.0
    while True:
        text = console_text(daemon, vm_id)
        if marker in text:
            return text
        now = time.monotonic()
        if not daemon.running():
            pytest.fail(f"mvirt-vmm exited while waiting for {marker!r}; console:\n{text[-3000:]}")
        if now >= next_state_check:
            next_state_check = now + 1.0
            vm = daemon.call("GetVm", pb.GetVmRequest(vm=vm_id))
            if vm.state not in (pb.VM_STATE_STARTING, pb.VM_STATE_RUNNING):
                text = console_text(daemon, vm_id)
                if marker in text:
                    return text
                pytest.fail(
                    f"VM is {pb.VmState.Name(vm.state)} ({vm.state_reason!r}) before printing "
                    f"{marker!r}; console:\n{text[-3000:]}"
                )
        if now >= deadline:
            pytest.fail(
                f"no {marker!r} on the console within {timeout:.0f}s; console:\n{text[-3000:]}")
        time.sleep(0.1)


def _children() -> dict:
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def process_tree(pid: int) -> set:
    """pid and all its live descendants."""
    kids = _children()
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p in found or not alive(p):
            continue
        found.add(p)
        todo.extend(kids.get(p, ()))
    return found


def alive(pid: int) -> bool:
    """True when pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_gone(pids, timeout: float = 15) -> list:
    """Waits until none of pids is alive; returns the ones still alive after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)
