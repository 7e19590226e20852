"""Autostart end to end against a daemon whose hypervisor is the emulator. A host boot is
simulated with the daemon's test hook MVIRT_VMM_TEST_BOOT_ID_FILE (a file read instead of
/proc/sys/kernel/random/boot_id): a new id there is a reboot, the same one a daemon restart.

After a "reboot" the autostart VMs start in ascending autostart_order, then by name; one whose
start fails (its kernel gone, or the hypervisor refusing vm.boot) is reported with its reason
and does not stop the others. After a plain restart nothing is started again.
"""

import re
import shutil
import time

import pytest

import mvirt_proto

pb = mvirt_proto.mvirt_pb2
CALL_TIMEOUT = 60
DEADLINE = 30.0


@pytest.fixture(autouse=True)
def _needs_emulator(emulated):
    if not emulated:
        pytest.skip("chemu.* scripts need ch-emu, not $MVIRT_TEST_CH")


def wait_for(pred, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while not (v := pred()):
        if time.monotonic() >= end:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.02)
    return v


@pytest.fixture
def boot(tmp_path, make_ch_daemon):
    """(daemon, set_boot_id): a daemon reading its boot id from a file of the test's."""
    path = tmp_path / "boot_id"
    path.write_text("11111111-1111-1111-1111-111111111111\n")
    d = make_ch_daemon(env={"MVIRT_VMM_TEST_BOOT_ID_FILE": str(path)})

    def set_boot_id(n):
        path.write_text(f"{n:08d}-2222-2222-2222-222222222222\n")

    yield d, set_boot_id
    if d.running():
        for vm in d.call("ListVms").vms:
            if vm.pid:
                d.call("KillVm", pb.KillVmRequest(vm=vm.id), timeout=CALL_TIMEOUT)


def create(d, name, kernel, disk, order=0, autostart=True, cmdline=""):
    cfg = pb.VmConfig(vcpus=1, memory_mb=128, kernel=kernel, disk=disk, cmdline=cmdline,
                      autostart=autostart, autostart_order=order)
    return d.call("CreateVm", pb.CreateVmRequest(name=name, config=cfg))


def states(d):
    return {vm.name: (pb.VmState.Name(vm.state), vm.state_reason) for vm in
            d.call("ListVms").vms}


def log_since(d, offset):
    return d.log_text()[offset:]


def autostart_order(text):
    return re.findall(r"vm (\S+): autostarting", text)


def test_reboot_starts_in_order_and_failures_do_not_block(boot, vm_files, tmp_path):
    d, set_boot_id = boot
    kernel2 = tmp_path / "kernel2"
    shutil.copy(vm_files["kernel"], kernel2)
    k, disk = vm_files["kernel"], vm_files["disk"]
    create(d, "zeta", k, disk, order=1)
    create(d, "alpha", k, disk, order=5)
    create(d, "beta", k, disk, order=1)
    create(d, "gone", str(kernel2), disk, order=2)  # its kernel is deleted below
    create(d, "boom", k, disk, order=3, cmdline="chemu.fail=vm.boot")
    create(d, "manual", k, disk, autostart=False)
    kernel2.unlink()

    # first a plain restart: same boot id, nothing starts
    d.restart()
    assert all(s == "VM_STATE_STOPPED" for s, _ in states(d).values()), states(d)

    set_boot_id(2)
    offset = len(d.log_text())
    d.stop()
    d.start()
    wait_for(lambda: "autostart: done" in log_since(d, offset),
             lambda: log_since(d, offset))
    text = log_since(d, offset)
    assert autostart_order(text) == ["beta", "zeta", "gone", "boom", "alpha"], text
    st = states(d)
    for name in ("beta", "zeta", "alpha"):
        assert st[name][0] == "VM_STATE_RUNNING", st
    assert st["manual"] == ("VM_STATE_STOPPED", "created"), st
    for name, cause in (("gone", "config.kernel"), ("boom", "vm.boot")):
        state, reason = st[name]
        assert state in ("VM_STATE_STOPPED", "VM_STATE_CRASHED"), st
        assert reason.startswith("autostart failed: ") and cause in reason, st
        assert re.search(rf"vm {name}: autostart failed: .*{re.escape(cause)}", text), text

    # a plain restart now: the running VMs are re-adopted, none is started again
    pids = {vm.name: vm.pid for vm in d.call("ListVms").vms}
    offset = len(d.log_text())
    d.restart()
    text = log_since(d, offset)
    assert autostart_order(text) == [], text
    assert {vm.name: vm.pid for vm in d.call("ListVms").vms} == pids
    st2 = states(d)
    assert st2["gone"] == st["gone"] and st2["boom"] == st["boom"]


def test_reboot_with_vms_running_starts_only_stopped_ones(boot, vm_files):
    """A "reboot" that finds a VM running (the test hook's reboot left the processes be)
    leaves it alone, and a VM that was deleted or had autostart turned off is not started."""
    d, set_boot_id = boot
    k, disk = vm_files["kernel"], vm_files["disk"]
    create(d, "up", k, disk)
    create(d, "down", k, disk)
    create(d, "off", k, disk)
    up = d.call("StartVm", pb.StartVmRequest(vm="up"), timeout=CALL_TIMEOUT)
    req = pb.UpdateVmRequest(vm="off", config=pb.VmConfig(autostart=False))
    req.update_mask.paths.append("autostart")
    d.call("UpdateVm", req)
    set_boot_id(3)
    offset = len(d.log_text())
    d.restart()
    wait_for(lambda: "autostart: done" in log_since(d, offset), lambda: log_since(d, offset))
    text = log_since(d, offset)
    assert autostart_order(text) == ["down"], text
    assert "vm up: autostart: already running" in text
    vms = {vm.name: vm for vm in d.call("ListVms").vms}
    assert vms["up"].pid == up.pid
    assert vms["down"].state == pb.VM_STATE_RUNNING
    assert vms["off"].state == pb.VM_STATE_STOPPED


def test_first_start_of_a_state_starts_nothing(tmp_path, make_ch_daemon, vm_files):
    """A state without a recorded boot id (new, or from before autostart) is no reboot."""
    path = tmp_path / "boot_id"
    path.write_text("33333333-3333-3333-3333-333333333333\n")
    d = make_ch_daemon(env={"MVIRT_VMM_TEST_BOOT_ID_FILE": str(path)})
    assert "autostart: first start with this state" in d.log_text()
    create(d, "a", vm_files["kernel"], vm_files["disk"])
    d.restart()
    assert d.call("GetVm", pb.GetVmRequest(vm="a")).state == pb.VM_STATE_STOPPED
    assert "autostarting" not in d.log_text()
