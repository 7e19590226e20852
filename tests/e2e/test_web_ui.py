"""The web UI in a real browser (Debian's chromium, driven by playwright-core from the UI's npm
packages; the scenarios are in web_ui.cjs), against mvirt-web and a daemon with ch-emu. The
screenshots of every page land in <build>/web-screenshots/ for a reviewer."""

import json
import os
import shutil
import subprocess

import pytest

from test_web import Web, web_binary  # noqa: F401  (fixture)

SCRIPT = os.path.join(os.path.dirname(__file__), "web_ui.cjs")

pytestmark = pytest.mark.skipif(not shutil.which("chromium") or not shutil.which("node"),
                                reason="needs chromium and node")


@pytest.fixture
def ui(web_binary, ch_daemon, build_dir):  # noqa: F811
    w = Web(web_binary, ch_daemon).start()
    shots = build_dir / "web-screenshots"
    shots.mkdir(exist_ok=True)
    yield w, shots
    w.stop()


def run(ui, build_dir, scenario, **extra):
    w, shots = ui
    modules = build_dir / "src" / "web" / "ui-npm" / "node_modules"
    r = subprocess.run(["node", SCRIPT, scenario, f"http://{w.host}/", w.token, str(shots),
                        json.dumps(extra)], env={**os.environ, "NODE_PATH": str(modules)},
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"{scenario}: {r.stderr}{r.stdout}"


def test_login_page_only_without_a_session(ui, build_dir):
    run(ui, build_dir, "login")


def test_create_start_console_stop_in_the_browser(ui, build_dir, vm_files, emulated):
    if not emulated:
        pytest.skip("the scenario's guest answers typed lines (ch-emu's simulated guest)")
    run(ui, build_dir, "lifecycle", kernel=vm_files["kernel"])
