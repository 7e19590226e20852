"""The daemon as a process: persistence across restarts, the one-daemon-per-state-dir lock,
listen address rules, socket permissions and access control, graceful shutdown with open
streams, and refusal of corrupt or too-new databases."""

import os
import re
import signal
import sqlite3
import stat
import subprocess
import textwrap

import grpc
import pytest

import mvirt_proto
from conftest import DaemonStartError
from mvirt_proto import RequestQueue

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode
NOBODY = 65534
USERS_GID = 100  # Debian's "users" group


def create(d, name, cfg):
    return d.call("CreateVm", pb.CreateVmRequest(name=name, config=cfg))


def snapshot(d):
    """Every VM as raw bytes, by id and by name, plus the ListVms bytes."""
    vms = d.call("ListVms").vms
    return {
        "list": d.call("ListVms").SerializeToString(),
        "by_id": {v.id: d.call("GetVm", pb.GetVmRequest(vm=v.id)).SerializeToString() for v in vms},
        "by_name": {v.name: d.call("GetVm", pb.GetVmRequest(vm=v.name)).SerializeToString() for v in vms},
    }


def answers(addr):
    """GetVersion over a brand-new connection (not a cached one)."""
    with grpc.insecure_channel(addr) as ch:
        return mvirt_proto.unary(ch, "GetVersion")(pb.GetVersionRequest(), timeout=10)


def expect_refused(d, extra_args=()):
    with pytest.raises(DaemonStartError) as ei:
        d.start(extra_args)
    e = ei.value
    assert e.returncode is not None, f"daemon hung instead of exiting: {e.stderr}"
    assert e.returncode != 0, e.stderr
    assert not d.running()
    return e


def populate(d, files):
    cfg = pb.VmConfig(vcpus=1, memory_mb=256, kernel=files["kernel"], initramfs=files["initramfs"],
                      cmdline='console=ttyS0 root=/dev/vda rw quiet init="/sbin/init x"',
                      user_data="#cloud-config\nusers:\n  - name: été ☃\n    ssh_authorized_keys: []\n")
    cfg.disks.add(path=files["disk"])
    cfg.disks.add(path=files["disk2"], readonly=True, format=pb.DISK_FORMAT_RAW)
    cfg.nics.add(tap="tap-mv0", mac="52:54:00:12:34:56")
    cfg.nics.add(tap="tap-mv1")
    create(d, "alpha", cfg)

    cfg = pb.VmConfig(vcpus=min(2, os.cpu_count()), memory_mb=512, firmware=files["kernel"],
                      disk=files["disk2"])
    create(d, "beta", cfg)

    cfg = pb.VmConfig(vcpus=1, memory_mb=64, kernel=files["kernel"])
    if "qcow2" in files:
        cfg.disks.add(path=files["qcow2"])
    cfg.nics.add(tap="tap-mv2")
    create(d, "gamma", cfg)

    create(d, "delta", pb.VmConfig(vcpus=1, memory_mb=64, kernel=files["kernel"]))
    d.call("DeleteVm", pb.DeleteVmRequest(vm="delta"))


# --- persistence ---------------------------------------------------------------------------


def test_persistence_across_restart(daemon, vm_files):
    populate(daemon, vm_files)
    before = snapshot(daemon)
    assert sorted(before["by_name"]) == ["alpha", "beta", "gamma"]

    assert daemon.stop() == 0, daemon.log_text()
    db = daemon.state_dir / "mvirt.db"
    assert db.is_file()
    assert stat.S_IMODE(db.stat().st_mode) & 0o077 == 0, oct(db.stat().st_mode)

    for _ in range(2):  # twice: opening an up-to-date database changes nothing either
        daemon.start()
        after = snapshot(daemon)
        assert after["list"] == before["list"]
        assert after["by_id"] == before["by_id"]
        assert after["by_name"] == before["by_name"]
        with pytest.raises(grpc.RpcError) as ei:
            daemon.call("GetVm", pb.GetVmRequest(vm="delta"))
        assert ei.value.code() == Code.NOT_FOUND
        assert daemon.stop() == 0, daemon.log_text()

    daemon.start()
    new = create(daemon, "epsilon", pb.VmConfig(vcpus=1, memory_mb=64, kernel=vm_files["kernel"]))
    assert new.id not in before["by_id"]
    assert [v.name for v in daemon.call("ListVms").vms] == ["alpha", "beta", "epsilon", "gamma"]


def test_restart_after_sigkill(daemon, vm_files):
    vm = create(daemon, "survivor", pb.VmConfig(vcpus=1, memory_mb=64, kernel=vm_files["kernel"]))
    before = snapshot(daemon)
    assert daemon.stop(sig=signal.SIGKILL) == -signal.SIGKILL
    daemon.start()  # stale unix socket and lock left behind by the killed daemon
    assert snapshot(daemon) == before
    assert answers(daemon.unix_addr).version
    assert answers(daemon.tcp_addr).version
    assert daemon.call("GetVm", pb.GetVmRequest(vm=vm.id)).name == "survivor"
    assert daemon.stop() == 0


# --- one daemon per state dir, listen addresses ----------------------------------------------


@pytest.mark.parametrize("sockets", ["same-sockets", "own-sockets"])
def test_second_daemon_same_state_dir_refused(daemon, make_daemon, vm_files, sockets):
    create(daemon, "first", pb.VmConfig(vcpus=1, memory_mb=64, kernel=vm_files["kernel"]))
    ino = os.stat(daemon.unix_path).st_ino
    if sockets == "same-sockets":
        second = make_daemon(state_dir=daemon.state_dir, port=daemon.port, start=False)
        second.unix_path, second.unix_addr = daemon.unix_path, daemon.unix_addr
    else:
        second = make_daemon(state_dir=daemon.state_dir, start=False)
    e = expect_refused(second)
    assert re.search(r"lock|another|already running", e.stderr, re.I), e.stderr

    assert os.stat(daemon.unix_path).st_ino == ino, "the first daemon's socket was replaced"
    assert answers(daemon.unix_addr).version
    assert answers(daemon.tcp_addr).version
    assert [v.name for v in daemon.call("ListVms").vms] == ["first"]
    assert daemon.running()
    assert daemon.stop() == 0


def test_second_daemon_same_tcp_port_refused(daemon, make_daemon):
    second = make_daemon(port=daemon.port, start=False)
    e = expect_refused(second)
    assert re.search(r"address|in use|bind|%d" % daemon.port, e.stderr, re.I), e.stderr
    assert answers(daemon.tcp_addr).version
    assert answers(daemon.unix_addr).version
    assert daemon.stop() == 0


@pytest.mark.parametrize("addr", ["0.0.0.0:{port}", "[::]:{port}"])
def test_non_loopback_listen_refused(make_daemon, addr):
    d = make_daemon(start=False)
    port = d.port + 1 if d.port < 65535 else d.port - 1
    bad = addr.format(port=port)
    e = expect_refused(d, ["--listen", bad])
    assert re.search(r"loopback|" + re.escape(bad.split(":")[0].strip("[]")), e.stderr, re.I), e.stderr


# --- socket permissions and access control -------------------------------------------------


def test_unix_socket_mode(daemon):
    st = os.stat(daemon.unix_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert st.st_uid == 0
    try:
        import grp
        gid = grp.getgrnam("mvirt").gr_gid
    except KeyError:
        gid = 0
    assert st.st_gid == gid


def test_unix_socket_group(make_daemon):
    d = make_daemon(extra_args=["--group", "users"])
    st = os.stat(d.unix_path)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert (st.st_uid, st.st_gid) == (0, USERS_GID)


CLIENT = textwrap.dedent('''\
    import sys
    import grpc
    addr, what = sys.argv[1], sys.argv[2]
    ch = grpc.insecure_channel(addr)
    try:
        if what == "reflection":
            fn = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
            list(fn(iter([b"\\x3a\\x01*"]), timeout=10))  # list_services: "*"
        else:
            ch.unary_unary("/mvirt.VmService/" + what)(b"", timeout=10)
        print("OK")
    except grpc.RpcError as e:
        print(e.code().name)
        print(e.details(), file=sys.stderr)
''')


def run_as(d, groups, addr, what):
    """Runs a one-call client as uid/gid 65534 with the given supplementary groups (None: none)
    and returns the status code name it got ("OK", "PERMISSION_DENIED", ...)."""
    script = d.base / "client.py"
    script.write_text(CLIENT)
    script.chmod(0o644)
    grp_arg = "--clear-groups" if not groups else "--groups=" + ",".join(str(g) for g in groups)
    res = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", grp_arg,
         "/usr/bin/python3", str(script), addr, what],
        capture_output=True, text=True, timeout=60, cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"},
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().splitlines()[-1], res.stderr


@pytest.mark.parametrize("what", ["GetVersion", "ListVms", "CreateVm", "reflection"])
def test_unprivileged_tcp_denied(daemon, what):
    code, details = run_as(daemon, None, daemon.tcp_addr, what)
    assert code == "PERMISSION_DENIED", details
    if what == "CreateVm":
        assert list(daemon.call("ListVms").vms) == []
    assert answers(daemon.tcp_addr).version  # root still allowed on the same port


def test_unprivileged_unix_denied(daemon):
    code, details = run_as(daemon, None, daemon.unix_addr, "GetVersion")
    assert code in ("UNAVAILABLE", "PERMISSION_DENIED"), (code, details)


def test_unprivileged_unix_not_in_group_denied(make_daemon):
    d = make_daemon(extra_args=["--group", "users"])
    code, details = run_as(d, [NOBODY], d.unix_addr, "GetVersion")
    assert code in ("UNAVAILABLE", "PERMISSION_DENIED"), (code, details)


def test_group_member_allowed_on_unix_socket(make_daemon):
    d = make_daemon(extra_args=["--group", "users"])
    code, details = run_as(d, [USERS_GID], d.unix_addr, "GetVersion")
    assert code == "OK", details
    # An empty CreateVmRequest gets past access control and fails validation.
    code, details = run_as(d, [USERS_GID], d.unix_addr, "CreateVm")
    assert code == "INVALID_ARGUMENT", details
    code, details = run_as(d, [USERS_GID], d.unix_addr, "reflection")
    assert code == "OK", details
    # Over TCP only the uid is known, and nobody is not in "users" in the user database.
    code, details = run_as(d, [USERS_GID], d.tcp_addr, "GetVersion")
    assert code == "PERMISSION_DENIED", details


def test_group_from_user_database_allowed_on_tcp(make_daemon):
    """Over TCP the daemon finds the uid with sock_diag and its groups in the user database:
    nobody's primary group is nogroup (65534)."""
    import grp
    import pwd
    if pwd.getpwuid(NOBODY).pw_gid != NOBODY:
        pytest.skip("nobody's primary group is not 65534 here")
    d = make_daemon(extra_args=["--group", grp.getgrgid(NOBODY).gr_name])
    code, details = run_as(d, None, d.tcp_addr, "GetVersion")
    assert code == "OK", details


# --- graceful shutdown ---------------------------------------------------------------------


@pytest.mark.parametrize("version", mvirt_proto.REFLECTION_VERSIONS)
def test_sigterm_with_open_stream(daemon, version):
    fn, Req, _ = mvirt_proto.reflection_stream(daemon.channel(), version)
    q = RequestQueue()
    it = fn(iter(q), timeout=60)
    try:
        q.put(Req(list_services="*"))
        assert next(it).WhichOneof("message_response") == "list_services_response"
        daemon.proc.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError) as ei:
            next(it)
        assert ei.value.code() == Code.UNAVAILABLE, ei.value.details()
        assert daemon.proc.wait(timeout=30) == 0, daemon.log_text()
        assert "calls still running" not in daemon.log_text()
    finally:
        q.close()
        it.cancel()


def test_sigterm_idle_exits_zero(daemon):
    daemon.call("ListVms")  # a finished call, and its connection still open
    assert daemon.stop() == 0, daemon.log_text()
    assert (daemon.state_dir / "mvirt.db").is_file()
    # The graceful shutdown completed on its own: the forced-cancel timer never fired (it did
    # while the shutdown callback got the wrong userdata, adding 10 s to every stop).
    assert "calls still running" not in daemon.log_text()


# --- databases the daemon must refuse ------------------------------------------------------


def _refused_untouched(make_daemon, prepare, pattern):
    d = make_daemon(start=False)
    db = d.state_dir / "mvirt.db"
    prepare(db)
    os.chmod(db, 0o600)
    content, mtime = db.read_bytes(), db.stat().st_mtime_ns
    e = expect_refused(d)
    assert re.search(pattern, e.stderr, re.I), e.stderr
    assert db.read_bytes() == content, "the refused database was modified"
    assert db.stat().st_mtime_ns == mtime


def test_garbage_database_refused(make_daemon):
    _refused_untouched(make_daemon, lambda db: db.write_bytes(b"this is not a database\n" * 300),
                       r"corrupt")


def test_damaged_database_refused(make_daemon):
    def prepare(db):
        con = sqlite3.connect(db)
        con.execute("PRAGMA page_size=4096")
        con.execute("CREATE TABLE filler (x BLOB)")
        con.executemany("INSERT INTO filler VALUES (?)", [(bytes([i % 251]) * 300,) for i in range(200)])
        con.commit()
        con.close()
        data = bytearray(db.read_bytes())
        assert len(data) >= 4 * 4096
        data[2 * 4096:3 * 4096] = b"\xa5" * 4096  # page 3: a table b-tree page
        db.write_bytes(bytes(data))

    _refused_untouched(make_daemon, prepare, r"corrupt")


def test_index_damage_quick_check_misses_is_refused(make_daemon):
    """An index whose entries no longer match its table: the pages are well-formed, so
    PRAGMA quick_check passes; integrity_check compares every index with its table."""
    def prepare(db):
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE filler (x TEXT)")
        con.execute("CREATE INDEX filler_x ON filler (x)")
        con.executemany("INSERT INTO filler VALUES (?)", [("key%05d" % i,) for i in range(300)])
        con.commit()
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
        con.close()
        data = bytearray(db.read_bytes())
        # the index leaf page (b-tree page type 0x0a) holding the key; the table has it too
        leaves = [p for p in range(1, len(data) // page_size)
                  if data[p * page_size] == 0x0a and b"key00007" in
                  data[p * page_size:(p + 1) * page_size]]
        assert leaves, "an index leaf page holds the key"
        at = data.find(b"key00007", leaves[0] * page_size)
        data[at:at + 8] = b"key00008"  # the order holds, the entry is wrong
        db.write_bytes(bytes(data))
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA integrity_check").fetchone()[0] != "ok"
        con.close()

    _refused_untouched(make_daemon, prepare, r"corrupt.*integrity_check")


@pytest.mark.parametrize("how", ["truncated", "deleted"])
def test_lost_database_over_existing_state_is_refused(ch_daemon, vm_files, how):
    """A database truncated to 0 bytes (or gone) while VM dirs exist is lost state: the daemon
    says so and does not start over it with an empty one."""
    d = ch_daemon
    d.call("CreateVm", pb.CreateVmRequest(name="kept", config=pb.VmConfig(
        vcpus=1, memory_mb=64, kernel=vm_files["kernel"])))
    d.call("StartVm", pb.StartVmRequest(vm="kept"), timeout=30)
    d.call("StopVm", pb.StopVmRequest(vm="kept", force=True), timeout=30)
    assert d.stop() == 0
    db = d.state_dir / "mvirt.db"
    for suffix in ("-wal", "-shm"):
        (d.state_dir / ("mvirt.db" + suffix)).unlink(missing_ok=True)
    if how == "truncated":
        os.truncate(db, 0)
    else:
        db.unlink()
    e = expect_refused(d)
    assert re.search(r"(empty \(0 bytes\)|missing).*vms holds 1 entry.*lost or truncated",
                     e.stderr), e.stderr
    assert (db.stat().st_size == 0) if how == "truncated" else not db.exists()


def test_wal_is_checkpointed_after_a_burst(daemon, vm_files):
    """Once a burst of writes is over, the database file holds them: losing the -wal (and
    -shm) then, even with a kill -9, loses nothing."""
    import time
    for i in range(5):
        daemon.call("CreateVm", pb.CreateVmRequest(name=f"w{i}", config=pb.VmConfig(
            vcpus=1, memory_mb=64, kernel=vm_files["kernel"])))
    wal = daemon.state_dir / "mvirt.db-wal"
    end = time.monotonic() + 10
    while wal.exists() and wal.stat().st_size > 0:
        assert time.monotonic() < end, f"the WAL still holds {wal.stat().st_size} bytes"
        time.sleep(0.05)
    daemon.stop(sig=signal.SIGKILL)
    for suffix in ("-wal", "-shm"):
        (daemon.state_dir / ("mvirt.db" + suffix)).unlink(missing_ok=True)
    daemon.start()
    assert [v.name for v in daemon.call("ListVms").vms] == [f"w{i}" for i in range(5)]


def test_newer_schema_refused(make_daemon):
    def prepare(db):
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE future (x)")
        con.execute("PRAGMA user_version=99")
        con.commit()
        con.close()

    _refused_untouched(make_daemon, prepare, r"schema|version|newer")
