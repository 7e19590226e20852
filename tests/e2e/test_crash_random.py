"""Kill -9 of the daemon at seeded random moments while four clients keep it busy from as many
threads (CreateVm, StartVm, StopVm, DeleteVm, GetVm, ListVms on a few names, in a random
order). It complements the every-step tests (test_network_crash, test_volume_crash), which
kill the main thread at each of its system calls: here the kill falls anywhere, also while
gRPC core's threads read a request or write a reply, or between two steps of the main loop.

After each kill the daemon is started again on the same state, and once its reconcile is
done: every VM it shows as running has its live hypervisor and every live hypervisor is one
of those, a runtime directory exists exactly for the VMs with a process, no VM is left in a
transitional state, and the database passes integrity_check. At the end, deleting everything
leaves no process and no runtime directory. MVIRT_CRASH_SEED picks another sequence.
"""

import os
import random
import sqlite3
import threading
import time

import grpc
import pytest

import mvirt_proto

pb = mvirt_proto.mvirt_pb2

SEED = int(os.environ.get("MVIRT_CRASH_SEED", "8"))
KILLS = 12
NAMES = ("r0", "r1", "r2", "r3")
STABLE = (pb.VM_STATE_RUNNING, pb.VM_STATE_STOPPED, pb.VM_STATE_CRASHED)


@pytest.fixture(autouse=True)
def _needs_emulator(emulated):
    if not emulated:
        pytest.skip("fast simulated guests need ch-emu")


def client(d, files, seed, stop):
    """Random calls until stop is set; every outcome is fine (the daemon dies under them)."""
    rnd = random.Random(seed)
    ch = grpc.insecure_channel(d.unix_addr)
    cfg = pb.VmConfig(vcpus=1, memory_mb=64, kernel=files["kernel"])
    calls = {
        "CreateVm": lambda n: pb.CreateVmRequest(name=n, config=cfg),
        "StartVm": lambda n: pb.StartVmRequest(vm=n),
        "StopVm": lambda n: pb.StopVmRequest(vm=n, force=rnd.random() < 0.5),
        "DeleteVm": lambda n: pb.DeleteVmRequest(vm=n),
        "GetVm": lambda n: pb.GetVmRequest(vm=n),
        "ListVms": lambda n: pb.ListVmsRequest(),
    }
    try:
        while not stop.is_set():
            method = rnd.choice(sorted(calls))
            try:
                mvirt_proto.unary(ch, method)(calls[method](rnd.choice(NAMES)), timeout=5)
            except grpc.RpcError:
                time.sleep(0.005)
    finally:
        ch.close()


def settled(d):
    """ListVms once no VM is in a transitional state and the live hypervisors are exactly the
    running VMs' (the restart's reconcile may still be stopping a half-started one)."""
    end = time.monotonic() + 30
    while True:
        vms = d.call("ListVms").vms
        running = {v.pid for v in vms if v.pid}
        if all(v.state in STABLE for v in vms) and running == set(d.hypervisor_pids()):
            return vms
        assert time.monotonic() < end, (
            [(v.name, pb.VmState.Name(v.state), v.pid) for v in vms], d.hypervisor_pids())
        time.sleep(0.02)


def check_whole(d):
    vms = settled(d)
    for v in vms:
        assert (v.state == pb.VM_STATE_RUNNING) == bool(v.pid), (v.name, v.state, v.pid)
    vmdir = d.runtime_dir / "vms"
    for _ in range(250):
        dirs = set(os.listdir(vmdir)) if vmdir.exists() else set()
        if dirs == {v.id for v in vms if v.pid}:
            break
        time.sleep(0.02)
    extra = {x: sorted(os.listdir(vmdir / x)) for x in dirs - {v.id for v in vms if v.pid}}
    assert dirs == {v.id for v in vms if v.pid}, (dirs, [(v.id, v.pid) for v in vms], extra)
    db = sqlite3.connect(f"file:{d.state_dir / 'mvirt.db'}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()
    return vms


def test_kill_at_random_moments_under_load(make_ch_daemon, vm_files):
    d = make_ch_daemon()
    rnd = random.Random(SEED)
    seen = set()
    for k in range(KILLS):
        stop = threading.Event()
        threads = [threading.Thread(target=client, args=(d, vm_files, SEED * 100 + k * 10 + i,
                                                         stop)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(0.05, 0.6))
        d.proc.kill()
        d.proc.wait(10)
        stop.set()
        for t in threads:
            t.join(30)
        d._close_channels()
        d.start()
        try:
            vms = check_whole(d)
        except AssertionError as e:
            raise AssertionError(f"after kill #{k + 1} (seed {SEED}): {e}") from e
        seen |= {pb.VmState.Name(v.state) for v in vms}
    print(f"{KILLS} kills; states seen after them: {sorted(seen)}")
    for v in d.call("ListVms").vms:
        if v.pid:
            d.call("StopVm", pb.StopVmRequest(vm=v.id, force=True), timeout=30)
        d.call("DeleteVm", pb.DeleteVmRequest(vm=v.id))
    assert not d.hypervisor_pids()
    vmdir = d.runtime_dir / "vms"
    assert not vmdir.exists() or not os.listdir(vmdir)
