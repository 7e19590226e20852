"""The web UI in a real browser (Debian's chromium, driven by playwright-core from the UI's npm
packages; the scenarios are in web_ui.cjs), against mvirt-web and a daemon with ch-emu. The
screenshots of every page land in <build>/web-screenshots/ for a reviewer."""

import json
import os
import shutil
import subprocess

import pytest

import mvirt_proto
from test_volumes import write_sparse
from test_web import Web, web_binary  # noqa: F401  (fixture)

pb = mvirt_proto.mvirt_pb2
MiB = 1 << 20

SCRIPT = os.path.join(os.path.dirname(__file__), "web_ui.cjs")

pytestmark = pytest.mark.skipif(not shutil.which("chromium") or not shutil.which("node"),
                                reason="needs chromium and node")


class UI:
    def __init__(self, web, shots, daemon):
        self.web, self.shots, self.daemon = web, shots, daemon


@pytest.fixture
def make_ui(web_binary, build_dir, make_ch_daemon):  # noqa: F811
    """mvirt-web for a daemon (after the daemon factory: stopped before its daemons are
    checked for fds)."""
    made = []

    def factory(daemon):
        w = Web(web_binary, daemon).start()
        made.append(w)
        shots = build_dir / "web-screenshots"
        shots.mkdir(exist_ok=True)
        return UI(w, shots, daemon)

    yield factory
    for w in made:
        w.stop()


@pytest.fixture
def ui(make_ui, ch_daemon):
    return make_ui(ch_daemon)


def run(ui, build_dir, scenario, asked=None, **extra):
    """Runs SCENARIO of web_ui.cjs; when it asks ("ask: ..." on its stdout), asked(question)
    does it and the scenario goes on."""
    modules = build_dir / "src" / "web" / "ui-npm" / "node_modules"
    p = subprocess.Popen(["node", SCRIPT, scenario, f"http://{ui.web.host}/", ui.web.token,
                          str(ui.shots), json.dumps(extra)],
                         env={**os.environ, "NODE_PATH": str(modules)}, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = []
        for line in p.stdout:
            out.append(line)
            if line.startswith("ask: "):
                assert asked, f"{scenario} asked for {line!r}"
                asked(line[5:].strip())
                p.stdin.write("done\n")
                p.stdin.flush()
        rc = p.wait(180)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 0, f"{scenario}: {p.stderr.read()}{''.join(out)}"


def test_login_page_only_without_a_session(ui, build_dir):
    run(ui, build_dir, "login")


def test_create_start_console_stop_in_the_browser(ui, build_dir, vm_files, emulated):
    if not emulated:
        pytest.skip("the scenario's guest answers typed lines (ch-emu's simulated guest)")
    def asked(question):
        assert question == "set autostart of VM 'web-ui' on, order 2", question
        req = pb.UpdateVmRequest(vm="web-ui", config=pb.VmConfig(autostart=True,
                                                                 autostart_order=2))
        req.update_mask.paths.extend(["autostart", "autostart_order"])
        ui.daemon.call("UpdateVm", req)

    run(ui, build_dir, "lifecycle", asked=asked, kernel=vm_files["kernel"])


def test_volumes_page_create_import_clone_resize_delete(ui, build_dir, vm_files, tmp_path):
    image = tmp_path / "disk.img"
    write_sparse(image, 512 * MiB, {0: os.urandom(MiB), 511 * MiB: b"end"})
    image.chmod(0o644)
    tmp_path.chmod(0o755)
    run(ui, build_dir, "volumes", kernel=vm_files["kernel"], image=str(image))
    names = sorted(v.name for v in ui.daemon.call("/mvirt.VolumeService/ListVolumes", pb.ListVolumesRequest()).volumes)
    assert names == ["data", "data-clone", "imported"]  # the failed import left nothing


def test_networks_page(netns, make_ch_daemon, make_ui, build_dir, vm_files):
    d = make_ch_daemon(netns=netns, extra_args=("--default-network", "off"))
    run(make_ui(d), build_dir, "networks", kernel=vm_files["kernel"])
    net = d.call("/mvirt.NetworkService/GetNetwork", pb.GetNetworkRequest(network="lan"))
    assert list(net.used_by) == ["on-lan"]


def test_host_page(ui, build_dir, vm_files):
    run(ui, build_dir, "host", kernel=vm_files["kernel"], cpus=os.cpu_count())


def test_page_reconnects_after_a_daemon_restart(ui, build_dir, vm_files):
    def asked(question):
        assert question.startswith("restart the daemon"), question
        ui.daemon.restart()
        ui.daemon.call("CreateVm", pb.CreateVmRequest(
            name="made-while-away", config=pb.VmConfig(kernel=vm_files["kernel"], vcpus=1, memory_mb=128)))

    run(ui, build_dir, "reconnect", asked=asked)
