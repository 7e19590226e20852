"""Storage volumes end to end: mvirt.VolumeService and `mvirt volume` against a real mvirt-vmm
(fixtures in conftest.py) with the real qemu-img and cp.

What the daemon says is checked against the pool directory itself (files, sizes, sparseness,
contents, no ".tmp-" leftovers) and against qemu-img's own view of the images; `-o json` output
against the canonical proto3 JSON of the same response from an independent gRPC client. Waits
poll with deadlines, never fixed sleeps. The fixtures fail a test that leaves a qemu-img (or any
process started by the daemon) behind, or leaks fds in the daemon (fd_check).
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

import mvirt_proto

pb = mvirt_proto.mvirt_pb2
Code = grpc.StatusCode
SERVICE = "/mvirt.VolumeService/"
MiB = 1024 * 1024
GiB = 1024 * MiB
DEADLINE = 20.0
RAW, QCOW2 = pb.DISK_FORMAT_RAW, pb.DISK_FORMAT_QCOW2


CLI = [""]  # the mvirt binary, set by _needs_tools


@pytest.fixture(autouse=True)
def _needs_tools(build_dir):
    for tool in ("/usr/bin/qemu-img", "/usr/bin/cp"):
        if not os.access(tool, os.X_OK):
            pytest.skip(f"{tool} is needed")
    CLI[0] = str(build_dir / "src" / "cli" / "mvirt")
    if not os.access(CLI[0], os.X_OK):
        pytest.fail("CLI binary not built (set MVIRT_BUILD_DIR)")


@pytest.fixture
def vd(make_daemon):
    """A daemon with the fd check."""
    return make_daemon(fd_check=True)


# ---- helpers ----------------------------------------------------------------------------------

def _types(method):
    m = pb.DESCRIPTOR.services_by_name["VolumeService"].methods_by_name[method]
    return getattr(pb, m.input_type.name), getattr(pb, m.output_type.name)


def vcall(d, method, timeout=60, **fields):
    req_cls, resp_cls = _types(method)
    fn = d.channel().unary_unary(SERVICE + method, request_serializer=req_cls.SerializeToString,
                                 response_deserializer=resp_cls.FromString)
    return fn(req_cls(**fields), timeout=timeout)


def vimport(d, timeout=120, **fields):
    """The ImportVolume stream (an iterator of VolumeProgress; .cancel() ends it)."""
    fn = d.channel().unary_stream(SERVICE + "ImportVolume",
                                  request_serializer=pb.ImportVolumeRequest.SerializeToString,
                                  response_deserializer=pb.VolumeProgress.FromString)
    return fn(pb.ImportVolumeRequest(**fields), timeout=timeout)


def import_all(d, **fields):
    msgs = list(vimport(d, **fields))
    assert msgs and msgs[-1].HasField("volume"), msgs
    return msgs


def rpc_error(fn, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    return e.value


def assert_status(err, code, *needles):
    assert err.code() == code, (err.code(), err.details())
    for n in needles:
        assert n in err.details(), (n, err.details())


def pool_dir(d) -> Path:
    return d.state_dir / "volumes"


def pool_files(d) -> list:
    return sorted(os.listdir(pool_dir(d)))


def wait_for(pred, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def qemu_info(path) -> dict:
    out = subprocess.run(["qemu-img", "info", "--output=json", "-U", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def canonical_json(msg) -> dict:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                     including_default_value_fields=True)


def cli(d, *args, timeout=120):
    argv = [CLI[0], "-s", d.unix_addr, *map(str, args)]
    env = {k: v for k, v in os.environ.items() if k != "MVIRT_SERVER"}
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    return res.returncode, res.stdout, res.stderr


def write_sparse(path, size, chunks):
    """A sparse file of size bytes with chunks {offset: bytes}."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in chunks.items():
            f.seek(off)
            f.write(data)


def write_dense(path, mib):
    block = bytes(range(1, 256)) * 4200  # no zero bytes: qemu-img must copy every cluster
    block = block[:MiB]
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(block)


# ---- create, clone, resize, delete, get, list -------------------------------------------------

def test_create_raw_is_sparse_and_qcow2_is_an_image(vd):
    v = vcall(vd, "CreateVolume", name="data", size_bytes=10 * GiB)
    assert (v.name, v.pool, v.format, v.virtual_size, v.status) == ("data", "default", RAW,
                                                                    10 * GiB, "ok")
    p = pool_dir(vd) / "data"
    assert v.path == str(p)
    st = os.lstat(p)
    assert st.st_size == 10 * GiB and st.st_blocks * 512 < MiB  # sparse
    assert oct(st.st_mode & 0o777) == "0o600"
    assert v.allocated_bytes == st.st_blocks * 512

    q = vcall(vd, "CreateVolume", name="q", size_bytes=GiB, format=QCOW2)
    info = qemu_info(pool_dir(vd) / "q")
    assert (q.format, q.virtual_size) == (QCOW2, GiB)
    assert info["format"] == "qcow2" and info["virtual-size"] == GiB
    assert pool_files(vd) == ["data", "q"]


def test_errors_name_the_field(vd, tmp_path):
    vcall(vd, "CreateVolume", name="a", size_bytes=MiB)
    cases = [
        ("CreateVolume", dict(name="a", size_bytes=MiB), Code.ALREADY_EXISTS, "'a' already exists"),
        ("CreateVolume", dict(name="../x", size_bytes=MiB), Code.INVALID_ARGUMENT, "name: "),
        ("CreateVolume", dict(name="/abs", size_bytes=MiB), Code.INVALID_ARGUMENT, "name: "),
        ("CreateVolume", dict(name="x" * 64, size_bytes=MiB), Code.INVALID_ARGUMENT, "too long"),
        ("CreateVolume", dict(name="", size_bytes=MiB), Code.INVALID_ARGUMENT, "name: required"),
        ("CreateVolume", dict(name="b", size_bytes=0), Code.INVALID_ARGUMENT, "size_bytes: "),
        ("CreateVolume", dict(name="b", size_bytes=MiB + 1), Code.INVALID_ARGUMENT, "size_bytes: "),
        ("CreateVolume", dict(name="b", size_bytes=MiB, format=9), Code.INVALID_ARGUMENT,
         "format: "),
        ("CreateVolume", dict(name="b", size_bytes=MiB, pool="nope"), Code.NOT_FOUND,
         "pool 'nope' not found"),
        ("GetVolume", dict(name="nope"), Code.NOT_FOUND, "volume 'nope' not found"),
        ("GetVolume", dict(name="../../etc"), Code.INVALID_ARGUMENT, "name: "),
        ("DeleteVolume", dict(name="nope"), Code.NOT_FOUND, "'nope' not found"),
        ("CloneVolume", dict(source="nope", name="c"), Code.NOT_FOUND, "'nope' not found"),
        ("CloneVolume", dict(source="", name="c"), Code.INVALID_ARGUMENT, "source: required"),
        ("CloneVolume", dict(source="a", name="a"), Code.ALREADY_EXISTS, "'a' already exists"),
        ("CloneVolume", dict(source="a", name="../c"), Code.INVALID_ARGUMENT, "name: "),
        ("ResizeVolume", dict(name="a", size_bytes=512), Code.INVALID_ARGUMENT,
         "size_bytes: ", "shrinking"),
        ("ResizeVolume", dict(name="nope", size_bytes=GiB), Code.NOT_FOUND, "'nope' not found"),
        ("ListVolumes", dict(pool="nope"), Code.NOT_FOUND, "pool 'nope' not found"),
    ]
    for method, fields, code, *needles in cases:
        assert_status(rpc_error(vcall, vd, method, **fields), code, *needles)
    for fields, code, needle in [
        (dict(name="i", source_path="relative.img"), Code.INVALID_ARGUMENT, "source_path: "),
        (dict(name="i", source_path=str(tmp_path / "missing")), Code.INVALID_ARGUMENT,
         "source_path: "),
        (dict(name="i", source_path=str(tmp_path)), Code.INVALID_ARGUMENT, "source_path: "),
        (dict(name="a", source_path="/dev/null"), Code.ALREADY_EXISTS, "'a' already exists"),
        (dict(name="../i", source_path="/dev/null"), Code.INVALID_ARGUMENT, "name: "),
    ]:
        assert_status(rpc_error(import_all, vd, **fields), code, needle)
    assert pool_files(vd) == ["a"]


def test_nul_in_a_name_never_escapes_the_pool(vd):
    """protobuf-c hands the daemon strings cut at the first NUL, so "ok\\0../x" arrives as
    "ok" (storage_check_name refuses a NUL within a length it is given; the unit tests cover
    it). Whatever the daemon makes of it, nothing may land outside the pool."""
    outside = pool_dir(vd).parent / "x"
    try:
        v = vcall(vd, "CreateVolume", name="ok\0../x", size_bytes=MiB)
        assert v.name == "ok" and v.path == str(pool_dir(vd) / "ok")
    except grpc.RpcError as e:
        assert e.code() == Code.INVALID_ARGUMENT and "name: " in e.details()
    assert not outside.exists()
    assert set(pool_files(vd)) <= {"ok"}


def test_clone_qcow2_overlay_and_delete_rules(vd):
    vcall(vd, "CreateVolume", name="base", size_bytes=64 * MiB, format=QCOW2)
    c1 = vcall(vd, "CloneVolume", source="base", name="c1")
    c2 = vcall(vd, "CloneVolume", source="c1", name="c2")
    assert (c1.format, c1.backing_volume, list(c1.backing_chain)) == (QCOW2, "base", ["base"])
    assert list(c2.backing_chain) == ["c1", "base"]
    info = qemu_info(pool_dir(vd) / "c1")
    assert info["backing-filename"] == str(pool_dir(vd) / "base")
    assert info["backing-filename-format"] == "qcow2"
    assert list(vcall(vd, "GetVolume", name="base").clones) == ["c1"]

    err = rpc_error(vcall, vd, "DeleteVolume", name="base")
    assert_status(err, Code.FAILED_PRECONDITION, "c1")
    assert_status(rpc_error(vcall, vd, "DeleteVolume", name="c1"), Code.FAILED_PRECONDITION,
                  "c2")
    vcall(vd, "DeleteVolume", name="c2")
    vcall(vd, "DeleteVolume", name="c1")
    vcall(vd, "DeleteVolume", name="base")
    assert pool_files(vd) == []
    assert list(vcall(vd, "ListVolumes").volumes) == []


def test_clone_raw_is_an_independent_sparse_copy(vd):
    vcall(vd, "CreateVolume", name="src", size_bytes=256 * MiB)
    with open(pool_dir(vd) / "src", "r+b") as f:
        f.seek(100 * MiB)
        f.write(b"marker")
    c = vcall(vd, "CloneVolume", source="src", name="copy")
    assert (c.format, c.backing_volume, c.virtual_size) == (RAW, "", 256 * MiB)
    st = os.stat(pool_dir(vd) / "copy")
    assert st.st_blocks * 512 < 4 * MiB  # holes kept
    with open(pool_dir(vd) / "copy", "rb") as f:
        f.seek(100 * MiB)
        assert f.read(6) == b"marker"
    vcall(vd, "DeleteVolume", name="src")  # not a backing volume
    assert pool_files(vd) == ["copy"]


def test_resize_grows_only(vd):
    vcall(vd, "CreateVolume", name="r", size_bytes=MiB)
    vcall(vd, "CreateVolume", name="q", size_bytes=MiB, format=QCOW2)
    assert vcall(vd, "ResizeVolume", name="r", size_bytes=3 * MiB).virtual_size == 3 * MiB
    assert os.stat(pool_dir(vd) / "r").st_size == 3 * MiB
    assert vcall(vd, "ResizeVolume", name="q", size_bytes=5 * MiB).virtual_size == 5 * MiB
    assert qemu_info(pool_dir(vd) / "q")["virtual-size"] == 5 * MiB
    assert vcall(vd, "ResizeVolume", name="q", size_bytes=5 * MiB).virtual_size == 5 * MiB
    assert_status(rpc_error(vcall, vd, "ResizeVolume", name="q", size_bytes=MiB),
                  Code.INVALID_ARGUMENT, "size_bytes: ", "shrinking")
    assert qemu_info(pool_dir(vd) / "q")["virtual-size"] == 5 * MiB


# ---- import -----------------------------------------------------------------------------------

def test_import_streams_progress_then_the_volume(vd, tmp_path):
    src = tmp_path / "disk.img"
    chunks = {0: os.urandom(MiB), 300 * MiB: b"middle", 512 * MiB - 4096: b"end!"}
    write_sparse(src, 512 * MiB, chunks)
    msgs = import_all(vd, name="imp", source_path=str(src))
    *progress, last = msgs
    assert progress, "no progress message before the last one"
    assert all(not m.HasField("volume") for m in progress)
    assert all(m.total_bytes == 512 * MiB for m in msgs)
    dones = [m.done_bytes for m in msgs]
    assert dones == sorted(dones) and last.done_bytes == 512 * MiB
    v = last.volume
    assert (v.name, v.format, v.virtual_size, v.status) == ("imp", RAW, 512 * MiB, "ok")
    assert canonical_json(v) == canonical_json(vcall(vd, "GetVolume", name="imp"))
    p = pool_dir(vd) / "imp"
    assert os.stat(p).st_blocks * 512 < 16 * MiB  # sparse, like the source
    with open(p, "rb") as f:
        for off, data in chunks.items():
            f.seek(off)
            assert f.read(len(data)) == data
    assert pool_files(vd) == ["imp"]


def test_import_detects_format_from_header_not_name(vd, tmp_path):
    q = tmp_path / "really-qcow2.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(q), "48M"], check=True)
    r = tmp_path / "really-raw.qcow2"
    write_sparse(r, 8 * MiB, {0: b"QFI"})  # almost the magic
    v = import_all(vd, name="a", source_path=str(q))[-1].volume
    assert (v.format, v.virtual_size) == (QCOW2, 48 * MiB)
    assert qemu_info(pool_dir(vd) / "a")["format"] == "qcow2"
    v = import_all(vd, name="b", source_path=str(r))[-1].volume
    assert (v.format, v.virtual_size) == (RAW, 8 * MiB)
    # converted on the way in, both ways
    v = import_all(vd, name="c", source_path=str(q), format=RAW)[-1].volume
    assert v.format == RAW and qemu_info(pool_dir(vd) / "c")["format"] == "raw"
    v = import_all(vd, name="d", source_path=str(r), format=QCOW2)[-1].volume
    assert v.format == QCOW2 and qemu_info(pool_dir(vd) / "d")["format"] == "qcow2"
    # a raw file that starts like qcow2 follows the header rules: unsupported version
    bad = tmp_path / "bad.img"
    write_sparse(bad, MiB, {0: b"QFI\xfb\0\0\0\x07"})
    assert_status(rpc_error(import_all, vd, name="e", source_path=str(bad)),
                  Code.INVALID_ARGUMENT, "source_path: ", "version 7")
    assert pool_files(vd) == ["a", "b", "c", "d"]


def test_cancelled_import_leaves_no_file(vd, tmp_path):
    src = tmp_path / "dense.img"
    write_dense(src, 768)
    stream = vimport(vd, name="big", source_path=str(src))
    first = next(stream)
    assert first.total_bytes == 768 * MiB and not first.HasField("volume")
    assert vd.hypervisor_pids() != [], "qemu-img should still be copying"
    t0 = time.monotonic()
    stream.cancel()
    assert_status(rpc_error(list, stream), Code.CANCELLED)
    wait_for(lambda: vd.hypervisor_pids() == [], "qemu-img to be gone")
    t_kill = time.monotonic() - t0
    wait_for(lambda: pool_files(vd) == [], "the partial file to go")
    wait_for(lambda: "import cancelled" in vd.log_text(), "the daemon to log the cancel")
    assert_status(rpc_error(vcall, vd, "GetVolume", name="big"), Code.NOT_FOUND)
    # the name is free again, and a full import of the same file works
    t0 = time.monotonic()
    v = import_all(vd, name="big", source_path=str(src))[-1].volume
    t_full = time.monotonic() - t0
    assert v.virtual_size == 768 * MiB
    assert pool_files(vd) == ["big"]
    # killed, not left to finish: gone in well under the time a whole copy takes
    assert t_kill < t_full / 2, (t_kill, t_full)


def test_cli_import_interrupted(vd, tmp_path):
    src = tmp_path / "dense.img"
    write_dense(src, 768)
    proc = subprocess.Popen([CLI[0], "-s", vd.unix_addr,
                             "volume", "import", "big", str(src)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert line.startswith("import: 0%"), line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 1, (out, err)
    assert "interrupted" in err and out == ""
    wait_for(lambda: pool_files(vd) == [], "the partial file to go")
    wait_for(lambda: vd.hypervisor_pids() == [], "qemu-img to be gone")
    assert list(vcall(vd, "ListVolumes").volumes) == []


# ---- the CLI ----------------------------------------------------------------------------------

def test_cli_every_verb(vd, tmp_path):
    rc, out, err = cli(vd, "volume", "create", "v1", "--size", "64M")
    assert rc == 0, err
    assert "name:       v1" in out and "64.0 MiB (67108864 bytes)" in out
    rc, out, err = cli(vd, "volume", "create", "q1", "--size", "1G", "--format", "qcow2",
                       "--pool", "default")
    assert rc == 0 and "format:     qcow2" in out, err

    src = tmp_path / "img.raw"
    write_sparse(src, 32 * MiB, {MiB: b"data"})
    rc, out, err = cli(vd, "volume", "import", "i1", src)
    assert rc == 0, err
    lines = err.splitlines()
    assert lines and all(l.startswith("import: ") for l in lines), err
    assert lines[-1] == "import: 100% (32.0 MiB of 32.0 MiB)", err
    assert "name:       i1" in out and "format:     raw" in out
    rc, out, err = cli(vd, "volume", "import", "i2", src, "-f", "qcow2")
    assert rc == 0 and "format:     qcow2" in out, err

    rc, out, err = cli(vd, "volume", "clone", "q1", "c1")
    assert rc == 0 and "backing:    q1" in out, err
    rc, out, err = cli(vd, "volume", "resize", "v1", "128M")
    assert rc == 0 and "128.0 MiB (134217728 bytes)" in out, err

    rc, out, err = cli(vd, "volume", "ls")
    assert rc == 0, err
    rows = [l.split() for l in out.splitlines()]
    assert rows[0] == ["NAME", "POOL", "FORMAT", "SIZE", "ALLOCATED", "BACKING", "STATUS"]
    assert [r[0] for r in rows[1:]] == ["c1", "i1", "i2", "q1", "v1"]
    assert rows[1][-2:] == ["q1", "ok"]

    rc, out, err = cli(vd, "-o", "json", "volume", "ls")
    assert rc == 0, err
    assert json.loads(out) == canonical_json(vcall(vd, "ListVolumes"))
    rc, out, err = cli(vd, "volume", "show", "q1", "-o", "json")
    assert rc == 0, err
    assert json.loads(out) == canonical_json(vcall(vd, "GetVolume", name="q1"))
    rc, out, err = cli(vd, "volume", "show", "q1")
    assert rc == 0 and "clones:     c1" in out, err

    rc, out, err = cli(vd, "volume", "rm", "q1")
    assert rc == 1 and "c1" in err and out == ""
    rc, out, err = cli(vd, "volume", "rm", "c1")
    assert rc == 0 and out == "deleted volume c1\n", err
    rc, out, err = cli(vd, "volume", "show", "c1")
    assert rc == 1 and "volume 'c1' not found" in err


def test_cli_import_progress_bar_on_a_terminal(vd, tmp_path):
    src = tmp_path / "img.raw"
    write_sparse(src, 64 * MiB, {0: os.urandom(4 * MiB)})
    master, slave = os.openpty()
    try:
        res = subprocess.run([CLI[0], "-s", vd.unix_addr, "volume", "import", "tty", str(src)],
                             stdout=subprocess.PIPE, stderr=slave, text=True, timeout=60)
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert res.returncode == 0
    text = shown.decode()
    assert "\r[" in text and "] 100%  64.0 MiB / 64.0 MiB" in text, text
    assert "import: " not in text  # no plain lines on a terminal
    assert text.endswith("\n")
    assert "name:       tty" in res.stdout


@pytest.mark.parametrize("argv, needle", [
    (["volume"], "missing argument"),
    (["volume", "frobnicate"], "unknown verb"),
    (["volume", "create", "x"], "--size is required"),
    (["volume", "create", "x", "--size", "10Q"], "--size"),
    (["volume", "create", "x", "--size", "1G", "--format", "vmdk"], "--format"),
    (["volume", "clone", "a"], "missing arguments"),
    (["volume", "show", "a", "b"], "too many arguments"),
    (["volume", "ls", "--size", "1G"], "--size does not apply"),
    (["volume", "resize", "a", "big"], "not a size"),
])
def test_cli_usage_errors(vd, argv, needle):
    rc, out, err = cli(vd, *argv)
    assert rc == 2 and needle in err and out == "", (rc, out, err)


def test_cli_help():
    res = subprocess.run([CLI[0], "volume", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("Usage: mvirt volume"), res
    for verb in ("create", "import", "clone", "resize", "rm", "ls", "show"):
        assert f"\n  {verb} " in res.stdout, verb


# ---- reconciliation ---------------------------------------------------------------------------

def test_reconcile_after_restart(make_daemon):
    d = make_daemon()
    vcall(d, "CreateVolume", name="gone", size_bytes=MiB)
    vcall(d, "CreateVolume", name="kept", size_bytes=MiB)
    d.stop()
    pool = pool_dir(d)
    (pool / "gone").unlink()
    (pool / "stray.img").write_bytes(b"user data")
    (pool / ".tmp-half-0badcafe").write_bytes(b"half an import")
    d.start()

    resp = vcall(d, "ListVolumes")
    status = {v.name: v.status for v in resp.volumes}
    assert status == {"gone": "file missing", "kept": "ok"}
    assert list(resp.unknown_files) == [str(pool / "stray.img")]
    assert (pool / "stray.img").read_bytes() == b"user data"  # never deleted
    assert not (pool / ".tmp-half-0badcafe").exists()  # never was a volume
    log = d.log_text()
    assert "stray.img is not a volume" in log and "volume gone: file missing" in log

    rc, out, err = cli(d, "volume", "ls")
    assert rc == 0 and "file missing" in out and str(pool / "stray.img") in out, (out, err)
    # a volume whose file is missing can still be deleted; the stray name stays taken
    vcall(d, "DeleteVolume", name="gone")
    assert_status(rpc_error(vcall, d, "CreateVolume", name="stray.img", size_bytes=MiB),
                  Code.ALREADY_EXISTS, "not a volume")


def test_more_pools(make_daemon, tmp_path):
    fast = tmp_path / "fast"
    d = make_daemon(extra_args=("--pool", f"fast:{fast}"), fd_check=True)
    v = vcall(d, "CreateVolume", name="f1", size_bytes=MiB, pool="fast")
    assert v.pool == "fast" and v.path == str(fast / "f1")
    assert os.path.exists(fast / "f1")
    assert [x.name for x in vcall(d, "ListVolumes", pool="fast").volumes] == ["f1"]
    assert list(vcall(d, "ListVolumes", pool="default").volumes) == []
    c = vcall(d, "CloneVolume", source="f1", name="f2")
    assert c.pool == "fast"


def test_bad_pool_config_refuses_to_start(make_daemon, tmp_path):
    from conftest import DaemonStartError
    d = make_daemon(extra_args=("--pool", "fast:relative"), start=False)
    with pytest.raises(DaemonStartError) as e:
        d.start()
    assert "--pool" in e.value.stderr


# ---- volumes used by VMs ----------------------------------------------------------------------

def test_volume_used_by_a_vm(make_ch_daemon, vm_files, emulated):
    if not emulated:
        pytest.skip("needs the emulator's simulated guests")
    d = make_ch_daemon()
    vcall(d, "CreateVolume", name="root", size_bytes=64 * MiB)
    d.call("CreateVm", pb.CreateVmRequest(name="web", config=pb.VmConfig(
        vcpus=1, memory_mb=128, kernel=vm_files["kernel"], disks=[pb.Disk(volume="root")])))
    assert list(vcall(d, "GetVolume", name="root").used_by) == ["web"]
    assert_status(rpc_error(vcall, d, "DeleteVolume", name="root"), Code.FAILED_PRECONDITION,
                  "web")
    d.call("StartVm", pb.StartVmRequest(vm="web"), timeout=60)
    assert_status(rpc_error(vcall, d, "ResizeVolume", name="root", size_bytes=128 * MiB),
                  Code.FAILED_PRECONDITION, "web")
    d.call("StopVm", pb.StopVmRequest(vm="web", force=True), timeout=60)
    assert vcall(d, "ResizeVolume", name="root", size_bytes=128 * MiB).virtual_size == 128 * MiB
    d.call("DeleteVm", pb.DeleteVmRequest(vm="web"))
    vcall(d, "DeleteVolume", name="root")
    assert pool_files(d) == []
