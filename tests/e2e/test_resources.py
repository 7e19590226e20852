"""Resource limits of the API: connections per user and in all (answered with
RESOURCE_EXHAUSTED, not dropped), and the file-descriptor limit (the listener pauses instead
of spinning on EMFILE, and accepts again once fds are free)."""

import os
import re
import socket
import subprocess
import time

import grpc
import pytest

import mvirt_proto

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode


def cpu_seconds(pid) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_connections_over_the_per_user_limit_get_resource_exhausted(make_daemon):
    d = make_daemon(extra_args=("--max-connections-per-user", "4"))
    held = []
    try:
        for _ in range(4):
            ch = grpc.insecure_channel(d.unix_addr, options=[("grpc.use_local_subchannel_pool",
                                                              1)])
            mvirt_proto.unary(ch, "ListVms")(pb.ListVmsRequest(), timeout=10)
            held.append(ch)
        extra = grpc.insecure_channel(d.unix_addr, options=[("grpc.use_local_subchannel_pool",
                                                             1)])
        with pytest.raises(grpc.RpcError) as ei:
            mvirt_proto.unary(extra, "ListVms")(pb.ListVmsRequest(), timeout=10)
        assert ei.value.code() == Code.RESOURCE_EXHAUSTED
        assert "max-connections-per-user" in ei.value.details()
        extra.close()
        held.pop().close()
        # a closed connection frees its place (noticed at the next accept)
        end = time.monotonic() + 10
        while True:
            again = grpc.insecure_channel(d.unix_addr,
                                          options=[("grpc.use_local_subchannel_pool", 1)])
            try:
                mvirt_proto.unary(again, "ListVms")(pb.ListVmsRequest(), timeout=10)
                held.append(again)
                break
            except grpc.RpcError as e:
                again.close()
                assert e.code() == Code.RESOURCE_EXHAUSTED and time.monotonic() < end
                time.sleep(0.1)
    finally:
        for ch in held:
            ch.close()


def test_bad_limit_settings_are_refused(make_daemon):
    from conftest import DaemonStartError
    for args, needle in ((("--max-connections", "0"), "--max-connections: '0'"),
                         (("--idle-timeout", "soon"), "--idle-timeout: 'soon'")):
        d = make_daemon(start=False)
        with pytest.raises(DaemonStartError) as ei:
            d.start(args)
        assert needle in ei.value.stderr, ei.value.stderr


def test_at_the_fd_limit_the_listener_pauses_and_resumes(make_daemon):
    d = make_daemon()
    subprocess.run(["prlimit", f"--pid={d.pid}", "--nofile=48:"], check=True)
    conns = []
    for _ in range(80):  # more than the daemon can hold: the rest wait in the backlog
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(d.unix_path)
        conns.append(s)
    end = time.monotonic() + 10
    while "out of file descriptors" not in d.log_text():
        assert time.monotonic() < end, "the daemon never ran out of fds"
        time.sleep(0.05)
    before = cpu_seconds(d.pid)
    time.sleep(2)
    used = cpu_seconds(d.pid) - before
    # a listener spinning on EMFILE burns a whole CPU (2 s here); pausing costs next to none
    assert used < 0.5, f"the daemon used {used:.2f} s of CPU in 2 s while out of fds"
    for s in conns:
        s.close()
    subprocess.run(["prlimit", f"--pid={d.pid}", "--nofile=1024:"], check=True)
    d._close_channels()
    assert len(d.call("ListVms", timeout=15).vms) == 0
    assert "file descriptors are free again" in d.log_text()


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MB tmpfs of the test's own (skipped when mounting is not allowed)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_out_of_disk_space_is_resource_exhausted_and_recovers(make_daemon, vm_files, small_fs):
    d = make_daemon(state_dir=small_fs / "state")
    big = "#cloud-config\n# " + "x" * (900 * 1024) + "\n"
    made, err = [], None
    for i in range(10):
        try:
            d.call("CreateVm", pb.CreateVmRequest(name=f"big{i}", config=pb.VmConfig(
                vcpus=1, memory_mb=64, kernel=vm_files["kernel"], user_data=big)))
            made.append(f"big{i}")
        except grpc.RpcError as e:
            err = e
            break
    assert err is not None, "a 2 MB filesystem took 9 MB of VMs"
    assert err.code() == Code.RESOURCE_EXHAUSTED, (err.code(), err.details())
    assert re.search(r"full|space", err.details(), re.I), err.details()
    # nothing half-made: exactly the VMs that were answered OK exist
    assert [v.name for v in d.call("ListVms").vms] == made
    subprocess.run(["mount", "-o", "remount,size=32m", str(small_fs)], check=True)
    d.call("CreateVm", pb.CreateVmRequest(name="after", config=pb.VmConfig(
        vcpus=1, memory_mb=64, kernel=vm_files["kernel"], user_data=big)))
    assert [v.name for v in d.call("ListVms").vms] == sorted(made + ["after"])
    d.restart()
    assert [v.name for v in d.call("ListVms").vms] == sorted(made + ["after"])


def test_out_of_fds_a_start_is_resource_exhausted_and_leaves_nothing(ch_daemon, vm_files):
    d = ch_daemon
    d.call("CreateVm", pb.CreateVmRequest(name="a", config=pb.VmConfig(
        vcpus=1, memory_mb=64, kernel=vm_files["kernel"])))
    n = len(os.listdir(f"/proc/{d.pid}/fd"))
    subprocess.run(["prlimit", f"--pid={d.pid}", f"--nofile={n + 1}:"], check=True)
    with pytest.raises(grpc.RpcError) as ei:
        d.call("StartVm", pb.StartVmRequest(vm="a"), timeout=30)
    assert ei.value.code() == Code.RESOURCE_EXHAUSTED, ei.value.details()
    assert "Too many open files" in ei.value.details()
    vm = d.call("GetVm", pb.GetVmRequest(vm="a"))
    assert vm.state == pb.VM_STATE_STOPPED and not vm.pid
    assert not d.hypervisor_pids()
    subprocess.run(["prlimit", f"--pid={d.pid}", "--nofile=1024:"], check=True)
    assert d.call("StartVm", pb.StartVmRequest(vm="a"), timeout=30).state == pb.VM_STATE_RUNNING
    d.call("StopVm", pb.StopVmRequest(vm="a", force=True), timeout=30)
