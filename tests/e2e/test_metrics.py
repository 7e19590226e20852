"""Metrics end to end: GetMetrics over grpcio, `mvirt metrics`, and `mvirt-web --metrics` at
GET /metrics, each parsed with prometheus_client's own text parser (Debian's
python3-prometheus-client), against a real daemon whose hypervisor is ch-emu.

Checked: the call counts are exactly the calls made (a failing one under its status code), each
histogram's buckets are cumulative and end in its count, the VM gauges match what GetVm says,
a running VM has cloud-hypervisor's device counters (vm.counters) while one whose hypervisor
does not answer them is marked mvirt_vm_counters_up 0 and the scrape still answers, and the
exporter is off by default and needs the login token over TLS."""

import collections
import os
import ssl
import subprocess
import time

import grpc
import pytest

import mvirt_proto
from test_web import Web, web_binary  # noqa: F401 (fixture)

parser = pytest.importorskip("prometheus_client.parser")
pb = mvirt_proto.mvirt_pb2
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CALL_TIMEOUT = 60


@pytest.fixture(autouse=True)
def _needs_emulator(emulated):
    if not emulated:
        pytest.skip("chemu.hang needs ch-emu, not $MVIRT_TEST_CH")


def parse(text):
    """{family name: family} and {(sample name, frozenset(labels)): value}; the parser raises
    on anything that is not valid text format."""
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    samples = {}
    for f in families.values():
        for s in f.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return families, samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def metrics(d):
    resp = d.call("GetMetrics", timeout=CALL_TIMEOUT)
    assert resp.content_type == CONTENT_TYPE
    assert resp.text.endswith("\n")
    return resp.text


def create(d, name, files, cmdline=""):
    cfg = pb.VmConfig(vcpus=2, memory_mb=192, kernel=files["kernel"], disk=files["disk"],
                      cmdline=cmdline)
    return d.call("CreateVm", pb.CreateVmRequest(name=name, config=cfg))


def test_get_metrics(ch_daemon, vm_files):
    d = ch_daemon
    create(d, "alpha", vm_files)
    create(d, "beta", vm_files)
    # gamma's hypervisor never answers vm.counters: the scrape must not wait for it
    create(d, "gamma", vm_files, cmdline="chemu.hang=vm.counters")
    started = time.time()
    d.call("StartVm", pb.StartVmRequest(vm="alpha"), timeout=CALL_TIMEOUT)
    d.call("StartVm", pb.StartVmRequest(vm="gamma"), timeout=CALL_TIMEOUT)
    for _ in range(3):
        d.call("GetVm", pb.GetVmRequest(vm="beta"))
    with pytest.raises(grpc.RpcError) as e:
        d.call("GetVm", pb.GetVmRequest(vm="nosuch"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    alpha = d.call("GetVm", pb.GetVmRequest(vm="alpha"))

    t0 = time.monotonic()
    text = metrics(d)
    families, s = parse(text)
    elapsed = time.monotonic() - t0
    # gamma timed out (about a second) instead of holding the answer for ever
    assert elapsed < 30, elapsed

    assert value(s, "mvirt_up") == 1
    assert families["mvirt_build_info"].type == "gauge"
    assert len(families["mvirt_build_info"].samples) == 1
    assert value(s, "mvirt_store_size_bytes") >= (d.state_dir / "mvirt.db").stat().st_size > 0
    assert value(s, "mvirt_vms") == 3

    # VM gauges
    assert value(s, "mvirt_vm_info", vm="alpha", id=alpha.id) == 1
    for vm, state in (("alpha", "running"), ("beta", "stopped"), ("gamma", "running")):
        states = {k: v for (n, k), v in s.items() if n == "mvirt_vm_state"
                  and dict(k)["vm"] == vm}
        assert len(states) == 6 and sum(states.values()) == 1, states
        assert value(s, "mvirt_vm_state", vm=vm, state=state) == 1
        assert value(s, "mvirt_vm_vcpus", vm=vm) == 2
        assert value(s, "mvirt_vm_memory_bytes", vm=vm) == 192 * 1024 * 1024
    t_start = value(s, "mvirt_vm_start_time_seconds", vm="alpha")
    assert abs(t_start - alpha.started_at.seconds) <= 1
    assert started - 5 <= t_start <= time.time()
    assert 0 <= value(s, "mvirt_vm_uptime_seconds", vm="alpha") <= time.time() - started + 5
    assert value(s, "mvirt_vm_start_time_seconds", vm="beta") is None

    # cloud-hypervisor's counters: the running VM's disk (ch-emu names it like upstream does)
    assert value(s, "mvirt_vm_counters_up", vm="alpha") == 1
    assert value(s, "mvirt_vm_counters_up", vm="gamma") == 0
    assert value(s, "mvirt_vm_counters_up", vm="beta") is None
    for name in ("disk_read_bytes", "disk_written_bytes", "disk_reads", "disk_writes"):
        fam = families[f"mvirt_vm_{name}"]
        assert fam.type == "counter"
        assert value(s, f"mvirt_vm_{name}_total", vm="alpha", device="_disk0") == 0
        assert not [x for x in fam.samples if x.labels["vm"] != "alpha"]

    # call counts: exactly the calls made before this scrape (GetMetrics counts once it ended)
    calls = collections.Counter()
    for (n, k), v in s.items():
        if n == "mvirt_api_calls_total":
            k = dict(k)
            assert k["service"] == "mvirt.VmService", k
            calls[(k["method"], k["code"])] += v
    assert calls == {("CreateVm", "OK"): 3, ("StartVm", "OK"): 2, ("GetVm", "OK"): 4,
                     ("GetVm", "NOT_FOUND"): 1}, calls

    # histograms: cumulative buckets ending in the count, one count per unary call
    hist = families["mvirt_api_call_duration_seconds"]
    assert hist.type == "histogram"
    by_method = collections.defaultdict(list)
    for x in hist.samples:
        by_method[x.labels["method"]].append(x)
    assert set(by_method) == {"CreateVm", "StartVm", "GetVm"}
    for method, xs in by_method.items():
        buckets = [(float(x.labels["le"]), x.value) for x in xs if x.name.endswith("_bucket")]
        assert buckets == sorted(buckets) and buckets[-1][0] == float("inf")
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), (method, buckets)
        count = [x.value for x in xs if x.name.endswith("_count")]
        total = sum(v for (m, _), v in calls.items() if m == method)
        assert count == [counts[-1]] == [total]
        assert [x.value for x in xs if x.name.endswith("_sum")][0] > 0

    # the first scrape is counted by the next one
    _, s2 = parse(metrics(d))
    assert value(s2, "mvirt_api_calls_total", service="mvirt.VmService", method="GetMetrics",
                 code="OK") == 1

    # stopped VMs are not asked; an unknown method is counted without its name
    d.call("KillVm", pb.KillVmRequest(vm="gamma"), timeout=CALL_TIMEOUT)
    with pytest.raises(grpc.RpcError) as e:
        d.channel().unary_unary("/mvirt.VmService/NoSuchMethod")(b"", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    _, s3 = parse(metrics(d))
    assert value(s3, "mvirt_vm_counters_up", vm="gamma") is None
    assert value(s3, "mvirt_vm_state", vm="gamma", state="stopped") == 1
    assert value(s3, "mvirt_api_calls_total", service="", method="unknown",
                 code="UNIMPLEMENTED") == 1
    d.call("KillVm", pb.KillVmRequest(vm="alpha"), timeout=CALL_TIMEOUT)


def test_cli_metrics(daemon, build_dir, vm_files):
    create(daemon, "one", vm_files)
    env = dict(os.environ, MVIRT_SERVER=daemon.unix_addr)
    out = subprocess.run([str(build_dir / "src" / "cli" / "mvirt"), "metrics"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    _, s = parse(out.stdout)
    assert value(s, "mvirt_vm_state", vm="one", state="stopped") == 1
    assert value(s, "mvirt_api_calls_total", service="mvirt.VmService", method="CreateVm",
                 code="OK") == 1


def test_web_metrics(web_binary, ch_daemon, vm_files):  # noqa: F811
    create(ch_daemon, "webvm", vm_files)
    off = Web(web_binary, ch_daemon).start()
    try:
        status, _, body = off.request("GET", "/metrics")
        assert status == 404 and b"--metrics" in body
    finally:
        off.stop()

    on = Web(web_binary, ch_daemon, extra=["--metrics"]).start()
    try:
        status, headers, body = on.request("GET", "/metrics")
        assert status == 200, body
        assert headers["content-type"] == CONTENT_TYPE
        _, s = parse(body.decode())
        assert value(s, "mvirt_up") == 1
        assert value(s, "mvirt_vm_state", vm="webvm", state="stopped") == 1
    finally:
        on.stop()

    # daemon gone: the exporter still answers, saying so
    down = Web(web_binary, ch_daemon, extra=["--metrics"])
    down.argv[down.argv.index("--daemon") + 1] = "unix:/nonexistent/mvirt.sock"
    down.start()
    try:
        status, _, body = down.request("GET", "/metrics")
        assert status == 200
        _, s = parse(body.decode())
        assert value(s, "mvirt_up") == 0
    finally:
        down.stop()


class TlsWeb(Web):
    def _connection(self):
        import http.client
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=ctx)


def test_web_metrics_tls_needs_token(web_binary, ch_daemon):  # noqa: F811
    w = TlsWeb(web_binary, ch_daemon, extra=["--metrics", "--tls"]).start()
    try:
        status, _, body = w.request("GET", "/metrics")
        assert status == 401 and b"Bearer" in body
        status, _, _ = w.request("GET", "/metrics", headers={"Authorization": "Bearer wrong"})
        assert status == 401
        status, _, body = w.request("GET", "/metrics",
                                    headers={"Authorization": f"Bearer {w.token}"})
        assert status == 200, body
        _, s = parse(body.decode())
        assert value(s, "mvirt_up") == 1
    finally:
        w.stop()


def test_real_guest_disk_counters_move(make_daemon, build_dir, tmp_path):
    """A real guest (QEMU under ch-emu) that writes its disk: the disk's counters come from
    QEMU's block statistics and show the reads of the kernel's probe and the guest's writes."""
    import test_real_guest as rg
    from guest import READY_MARKER, make_ext4, require_tools, wait_console

    require_tools("mkfs.ext4", "debugfs")
    disk = make_ext4(tmp_path / "disk.raw", 64, {"seed.txt": "seed\n"})
    d = rg.hypervisor_daemon(make_daemon)
    cfg = rg.linux_config(build_dir, "dd if=/dev/zero of=/mnt/zero bs=64k count=16; sync",
                          [pb.Disk(path=str(disk), format=pb.DISK_FORMAT_RAW)])
    vm = rg.create(d, "real", cfg)
    started = d.call("StartVm", pb.StartVmRequest(vm=vm.id), timeout=60)
    assert started.state == pb.VM_STATE_RUNNING, started.state_reason
    try:
        text = wait_console(d, vm.id, READY_MARKER, timeout=rg.BOOT_TIMEOUT)
        assert "mvirt.run exited with status 0" in text, text[-2000:]
        _, s = parse(metrics(d))
        assert value(s, "mvirt_vm_counters_up", vm="real") == 1
        dev = dict(vm="real", device="_disk0")
        assert value(s, "mvirt_vm_disk_reads_total", **dev) > 0
        assert value(s, "mvirt_vm_disk_read_bytes_total", **dev) > 0
        assert value(s, "mvirt_vm_disk_writes_total", **dev) > 0
        assert value(s, "mvirt_vm_disk_written_bytes_total", **dev) >= 16 * 65536
    finally:
        d.call("KillVm", pb.KillVmRequest(vm=vm.id), timeout=CALL_TIMEOUT)
