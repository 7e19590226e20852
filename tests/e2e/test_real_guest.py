"""Real guests through mvirt: the daemon spawns tools/ch-emu (the cloud-hypervisor emulator), which
boots the VM's kernel in QEMU/TCG (`chemu.guest=real`). These prove what the simulated guest
cannot: the VM config reaches a real machine (kernel, initramfs, cmdline, disks and their
formats), the guest's console output lands in the console log, StopVm's power button makes a
real guest power off cleanly, and nothing of the VM's processes is left afterwards.

Guests (tests/e2e/guest.py, scripts/make-test-guest): Debian's cloud kernel with a busybox
initramfs (~2-5 s to userspace under TCG, longer on a loaded machine) and tinyguest (~0.1 s).
"""

import hashlib
import os
import signal
import subprocess

import pytest
from google.protobuf import wrappers_pb2

import mvirt_proto
from guest import (
    CH_EMU,
    READY_MARKER,
    cmdline,
    console_text,
    guest_dir,
    make_ext4,
    process_tree,
    read_ext4,
    require_tools,
    run_arg,
    tinyguest,
    wait_console,
    wait_gone,
)

pb = mvirt_proto.mvirt_pb2
LINUX_CMDLINE = "console=ttyS0 panic=-1 quiet chemu.guest=real"
BOOT_TIMEOUT = 90  # seconds to MVIRT-GUEST-READY; ~3 s on an idle machine
STOP_TIMEOUT = 60  # StopVm's wait for the guest's own power-off


@pytest.fixture
def vm_procs():
    """Records hypervisor process trees; any still alive at teardown is SIGKILLed (the tests
    themselves assert that none is left; this only keeps a failed test from leaking QEMUs)."""
    tracked = set()

    def track(pid):
        tree = process_tree(pid)
        tracked.update(tree)
        return tree

    yield track
    for p in wait_gone(tracked, timeout=0):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def hypervisor_daemon(make_daemon):
    require_tools("qemu-system-x86_64")
    return make_daemon(extra_args=["--hypervisor", str(CH_EMU)])


def create(daemon, name, config):
    return daemon.call("CreateVm", pb.CreateVmRequest(name=name, config=config))


def start(daemon, vm, vm_procs):
    """StartVm; asserts RUNNING and that a real QEMU guest (not ch-emu's simulation) runs under
    the VM's hypervisor process. Returns the process tree."""
    started = daemon.call("StartVm", pb.StartVmRequest(vm=vm.id), timeout=60)
    assert started.state == pb.VM_STATE_RUNNING, (
        f"{pb.VmState.Name(started.state)}: {started.state_reason}")
    assert started.pid > 0
    procs = vm_procs(started.pid)
    assert started.pid in procs, f"hypervisor pid {started.pid} is not alive"
    qemus = [p for p in procs if "qemu-system-x86_64" in cmdline(p)]
    assert qemus, "no QEMU under the hypervisor: the guest is not real: " + repr(
        {p: cmdline(p) for p in procs})
    return procs


def stop_gracefully(daemon, vm, procs):
    """StopVm with a long wait; asserts the guest powered off by itself after the power button
    and that the hypervisor and its QEMU are gone."""
    stopped = daemon.call(
        "StopVm",
        pb.StopVmRequest(vm=vm.id, timeout_seconds=wrappers_pb2.UInt32Value(value=STOP_TIMEOUT)),
        timeout=STOP_TIMEOUT + 30,
    )
    assert stopped.state == pb.VM_STATE_STOPPED, pb.VmState.Name(stopped.state)
    assert "guest powered off" in stopped.state_reason, stopped.state_reason
    assert stopped.pid == 0
    left = wait_gone(procs)
    assert not left, "processes left after StopVm: " + repr({p: cmdline(p) for p in left})
    return stopped


def linux_config(build_dir, snippet, disks):
    g = guest_dir(build_dir)
    return pb.VmConfig(
        vcpus=1,
        memory_mb=256,
        kernel=str(g / "vmlinuz"),
        initramfs=str(g / "initramfs.gz"),
        cmdline=f"{LINUX_CMDLINE} {run_arg(snippet)}",
        disks=disks,
    )


def assert_clean_ext4(image):
    """The guest unmounted the file system before it powered off (no journal to replay)."""
    res = subprocess.run(["e2fsck", "-fn", str(image)], capture_output=True, text=True)
    assert res.returncode == 0, f"e2fsck -fn {image}: {res.returncode}\n{res.stdout}{res.stderr}"


def test_linux_guest_writes_its_disk_and_powers_off_on_stop(make_daemon, build_dir, tmp_path,
                                                            vm_procs):
    require_tools("mkfs.ext4", "debugfs", "e2fsck")
    disk = make_ext4(tmp_path / "disk.raw", 64, {"seed.txt": "seed\n"})
    d = hypervisor_daemon(make_daemon)
    cfg = linux_config(build_dir, "echo hello-from-guest > /mnt/hello.txt; sync",
                       [pb.Disk(path=str(disk), format=pb.DISK_FORMAT_RAW)])
    vm = create(d, "linux", cfg)
    procs = start(d, vm, vm_procs)

    text = wait_console(d, vm.id, READY_MARKER, timeout=BOOT_TIMEOUT)
    assert "mvirt.run exited with status 0" in text, text[-2000:]

    stop_gracefully(d, vm, procs)
    assert "power button: syncing and powering off" in console_text(d, vm.id)
    assert read_ext4(disk, "hello.txt") == b"hello-from-guest\n"
    assert read_ext4(disk, "seed.txt") == b"seed\n"
    assert_clean_ext4(disk)
    got = d.call("GetVm", pb.GetVmRequest(vm=vm.id))
    assert got.state == pb.VM_STATE_STOPPED and "guest powered off" in got.state_reason


def test_tinyguest_boots_and_obeys_the_power_button(make_daemon, build_dir, vm_procs):
    elf = tinyguest(build_dir)
    d = hypervisor_daemon(make_daemon)
    vm = create(d, "tiny", pb.VmConfig(vcpus=1, memory_mb=128, kernel=str(elf),
                                        cmdline="chemu.guest=real"))
    procs = start(d, vm, vm_procs)

    wait_console(d, vm.id, "tg> ", timeout=60)
    stop_gracefully(d, vm, procs)
    assert "tinyguest: power off (ACPI power button)" in console_text(d, vm.id)


def test_qcow2_overlay_takes_the_writes_and_spares_its_base(make_daemon, build_dir, tmp_path,
                                                            vm_procs):
    require_tools("mkfs.ext4", "debugfs", "e2fsck", "qemu-img")
    base = make_ext4(tmp_path / "base.raw", 64, {"base.txt": "from-base\n"})
    base_sum = hashlib.sha256(base.read_bytes()).hexdigest()
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
                    str(overlay)], check=True)
    d = hypervisor_daemon(make_daemon)
    # The format is left to the daemon's detection (qcow2 header).
    cfg = linux_config(build_dir,
                       "cat /mnt/base.txt > /mnt/seen.txt; echo in-overlay > /mnt/hello.txt; sync",
                       [pb.Disk(path=str(overlay))])
    vm = create(d, "overlay", cfg)
    assert [x.format for x in vm.config.disks] == [pb.DISK_FORMAT_QCOW2]
    procs = start(d, vm, vm_procs)

    text = wait_console(d, vm.id, READY_MARKER, timeout=BOOT_TIMEOUT)
    assert "mvirt.run exited with status 0" in text, text[-2000:]
    stop_gracefully(d, vm, procs)

    assert hashlib.sha256(base.read_bytes()).hexdigest() == base_sum, "the base image was written"
    with pytest.raises(FileNotFoundError):
        read_ext4(base, "hello.txt")
    flat = tmp_path / "flat.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(overlay), str(flat)], check=True)
    assert read_ext4(flat, "hello.txt") == b"in-overlay\n"
    assert read_ext4(flat, "seen.txt") == b"from-base\n"
    assert_clean_ext4(flat)
