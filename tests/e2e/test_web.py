"""mvirt-web, the web UI's server, as a browser meets it (without the browser: http.client and a
WebSocket client): only the login page for a client without a session, the token login and its
cookie, CSRF and Origin checks on every mutating request and WebSocket, and the bridge to the
daemon's API (a unary call over HTTP, a stream over a WebSocket) with the daemon's errors passed
on as they are. The server runs against a real daemon with ch-emu."""

import http.client
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

import mvirt_proto
from conftest import built_binary, free_tcp_port, make_tmpdir

pb = mvirt_proto.mvirt_pb2
websocket = pytest.importorskip("websocket")

class Web:
    def __init__(self, binary, daemon, extra=()):
        self.base = make_tmpdir("mvw")
        self.port = free_tcp_port()
        self.host = f"127.0.0.1:{self.port}"
        self.argv = [str(binary), "--listen", self.host, "--daemon", daemon.unix_addr,
                     "--state-dir", str(self.base / "web"),
                     "--assets", str(Path(binary).parent / "ui"), *extra]
        self.proc = None
        self.token = None

    def start(self, *extra):
        self.proc = subprocess.Popen(self.argv + list(extra), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        lines = []
        while True:
            line = self.proc.stdout.readline()
            assert line, "mvirt-web exited:\n" + "".join(lines)
            lines.append(line)
            m = re.match(r"mvirt-web: login token: (\S+)", line)
            if m:
                self.token = m.group(1)
            if line.startswith("mvirt-web: serving"):
                return self

    def stop(self):
        """SIGTERM; it must have lived until then and exit 0 (a crash, or an ASan report in
        the sanitizer build, fails the test)."""
        if self.proc:
            assert self.proc.poll() is None, \
                f"mvirt-web died: {self.proc.returncode}\n{self.proc.stdout.read()}"
            self.proc.terminate()
            assert self.proc.wait(10) == 0, self.proc.stdout.read()

    def _connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=b"", headers=None):
        c = self._connection()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()


class Session:
    """A logged-in client: its cookie and CSRF token."""

    def __init__(self, web):
        self.web = web
        status, headers, body = web.request("POST", "/api/login", web.token.encode())
        assert status == 200, (status, body)
        self.set_cookie = headers["set-cookie"]
        self.cookie = self.set_cookie.split(";", 1)[0]
        self.csrf = json.loads(body)["csrf"]

    def headers(self, csrf=True, origin=True):
        h = {"Cookie": self.cookie}
        if csrf:
            h["X-CSRF-Token"] = self.csrf
        if origin:
            h["Origin"] = f"http://{self.web.host}"
        return h

    def call(self, method, req, **kw):
        service = "mvirt.VmService"
        if method.endswith(("Volume", "Volumes")):
            service = "mvirt.VolumeService"
        return self.web.request("POST", f"/api/call/{service}/{method}", req.SerializeToString(),
                                self.headers(**kw))

    def ws(self, path, origin=None):
        return websocket.create_connection(
            f"ws://{self.web.host}{path}", subprotocols=["mvirt-stream"], timeout=20,
            header=[f"Cookie: {self.cookie}"],
            origin=origin if origin is not None else f"http://{self.web.host}")


@pytest.fixture
def web_binary(build_dir):
    b = built_binary(build_dir, "src/web/mvirt-web")
    if not (b.parent / "ui" / "login.html").exists():
        pytest.fail(f"the web UI is not built in {b.parent / 'ui'} (needs npm: -Dweb_ui)")
    return b


@pytest.fixture
def web(web_binary, ch_daemon):
    w = Web(web_binary, ch_daemon).start()
    yield w
    w.stop()


def vm_config(files):
    return pb.VmConfig(vcpus=1, memory_mb=64, kernel=files["kernel"])


def test_a_client_without_a_session_gets_only_the_login_page(web):
    status, headers, body = web.request("GET", "/")
    assert status == 200 and b"Access token" in body
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"].lower() == "deny"
    assert web.request("GET", "/login.js")[0] == 200
    for path in ("/index.html", "/api/session", "/anything"):
        assert web.request("GET", path)[0] == 401, path
    status, _, body = web.request("POST", "/api/call/mvirt.VmService/ListVms", b"")
    assert status == 401 and json.loads(body)["message"] == "not logged in"
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(f"ws://{web.host}/api/stream/mvirt.VmService/WatchVms",
                                    subprotocols=["mvirt-stream"], timeout=10,
                                    origin=f"http://{web.host}")


def test_login_sets_a_strict_httponly_cookie(web):
    status, _, body = web.request("POST", "/api/login", b"not-the-token")
    assert status == 401 and json.loads(body)["message"] == "wrong token"
    s = Session(web)
    attrs = [a.strip() for a in s.set_cookie.split(";")]
    assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs
    assert "Secure" not in attrs  # plain HTTP on loopback
    status, _, body = web.request("GET", "/api/session", headers={"Cookie": s.cookie})
    assert status == 200 and json.loads(body)["csrf"] == s.csrf
    status, _, body = web.request("GET", "/", headers={"Cookie": s.cookie})
    assert status == 200 and b"Access token" not in body
    # logout ends the session
    assert web.request("POST", "/api/logout", headers=s.headers())[0] == 200
    assert web.request("GET", "/api/session", headers={"Cookie": s.cookie})[0] == 401


def test_the_token_is_kept_hashed_and_survives_a_restart(web_binary, ch_daemon):
    w = Web(web_binary, ch_daemon).start()
    try:
        stored = (w.base / "web" / "token.hash").read_text()
        assert stored.startswith("$y$") and w.token not in stored
        assert oct((w.base / "web" / "token.hash").stat().st_mode & 0o777) == "0o600"
        token = w.token
        w.stop()
        w.token = None
        w.start()
        assert w.token is None  # not shown again
        w.token = token
        Session(w)
        w.stop()
        w.start("--reset-token")
        assert w.token and w.token != token
        assert w.request("POST", "/api/login", token.encode())[0] == 401
    finally:
        w.stop()


def test_failed_logins_are_limited(web):
    for _ in range(10):
        assert web.request("POST", "/api/login", b"guess")[0] == 401
    status, _, body = web.request("POST", "/api/login", web.token.encode())
    assert status == 429 and "wait a minute" in json.loads(body)["message"]


def test_mutations_need_the_csrf_token_and_our_origin(web, vm_files):
    s = Session(web)
    req = pb.CreateVmRequest(name="csrf", config=vm_config(vm_files))
    assert s.call("CreateVm", req, csrf=False)[0] == 403
    h = s.headers()
    h["Origin"] = "http://evil.example"
    status, _, _ = web.request("POST", "/api/call/mvirt.VmService/CreateVm",
                               req.SerializeToString(), h)
    assert status == 403
    h = s.headers()
    h["X-CSRF-Token"] = "x" * len(s.csrf)
    assert web.request("POST", "/api/call/mvirt.VmService/CreateVm", req.SerializeToString(),
                       h)[0] == 403
    # nothing was created by the refused ones
    status, _, body = s.call("ListVms", pb.ListVmsRequest())
    assert status == 200 and not pb.ListVmsResponse.FromString(body).vms


def test_unary_calls_reach_the_daemon_and_its_errors_come_back(web, ch_daemon, vm_files):
    s = Session(web)
    bad = vm_config(vm_files)
    bad.memory_mb = 1
    status, headers, body = s.call("CreateVm", pb.CreateVmRequest(name="web1", config=bad))
    assert status == 400 and headers["content-type"] == "application/json"
    err = json.loads(body)
    assert err["status"] == "INVALID_ARGUMENT" and err["code"] == 3
    assert err["message"].startswith("config.memory_mb: "), err
    status, headers, body = s.call("CreateVm",
                                   pb.CreateVmRequest(name="web1", config=vm_config(vm_files)))
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    vm = pb.Vm.FromString(body)
    assert vm.name == "web1" and vm.state == pb.VM_STATE_STOPPED
    # the daemon itself has it: the bridge went through its API
    assert ch_daemon.call("GetVm", pb.GetVmRequest(vm="web1")).id == vm.id
    status, _, body = s.call("CreateVm", pb.CreateVmRequest(name="web1",
                                                            config=vm_config(vm_files)))
    assert status == 409 and json.loads(body)["status"] == "ALREADY_EXISTS"
    status, _, body = s.call("GetVm", pb.GetVmRequest(vm="nope"))
    assert status == 404 and json.loads(body)["message"] == "vm 'nope' not found"


def test_bad_requests_get_a_clear_error_and_the_server_lives_on(web):
    s = Session(web)
    h = s.headers()
    status, _, body = web.request("POST", "/api/call/mvirt.VmService/GetVm", b"\xff\xff\xff", h)
    assert status == 400 and "mvirt.GetVmRequest" in json.loads(body)["message"]
    status, _, body = web.request("POST", "/api/call/mvirt.VmService/Nope", b"", h)
    assert status == 404 and "no such method" in json.loads(body)["message"]
    status, _, _ = web.request("POST", "/api/call/mvirt.VmService/GetVm/x", b"", h)
    assert status == 404
    status, _, body = web.request("POST", "/api/call/mvirt.VmService/WatchVms", b"", h)
    assert status == 400 and "over the WebSocket /api/stream/mvirt.VmService/WatchVms" in \
        json.loads(body)["message"]
    assert web.request("POST", "/api/call/mvirt.VmService/ListVms", b"x" * (9 << 20), h)[0] == 413
    assert web.request("GET", "/../../etc/passwd", headers={"Cookie": s.cookie})[0] == 404
    assert web.proc.poll() is None
    assert s.call("ListVms", pb.ListVmsRequest())[0] == 200


def test_a_daemon_that_is_gone_is_unavailable_not_a_crash(web_binary, make_daemon):
    d = make_daemon()
    w = Web(web_binary, d).start()
    try:
        s = Session(w)
        d.stop()
        status, _, body = s.call("ListVms", pb.ListVmsRequest())
        assert status == 503 and json.loads(body)["status"] == "UNAVAILABLE", body
        assert w.proc.poll() is None
    finally:
        w.stop()


def test_calls_go_on_after_the_daemon_closed_the_connection(web_binary, make_ch_daemon,
                                                          vm_files):
    """After the daemon closed mvirt-web's connections (its idle timeout's GOAWAY, then a
    restart), the next calls find it again: nothing fails in between."""
    d = make_ch_daemon(extra_args=("--idle-timeout", "1"))
    w = Web(web_binary, d).start()
    try:
        s = Session(w)
        status, _, body = s.call("CreateVm", pb.CreateVmRequest(name="a", config=vm_config(vm_files)))
        assert status == 200, body
        time.sleep(2.5)  # idle: the daemon sends GOAWAY and closes
        status, _, body = s.call("GetVm", pb.GetVmRequest(vm="a"))
        assert status == 200, body
        d.restart()
        status, _, body = s.call("GetVm", pb.GetVmRequest(vm="a"))
        assert status == 200, body
        assert pb.Vm.FromString(body).name == "a"
    finally:
        w.stop()


def test_watch_over_a_websocket(web, vm_files):
    s = Session(web)
    ws = s.ws("/api/stream/mvirt.VmService/WatchVms")
    try:
        ws.send_binary(pb.WatchVmsRequest().SerializeToString())
        ws.send("end")
        # the daemon's headers, relayed: subscribed, so the create below is seen
        assert ws.recv_data() == (websocket.ABNF.OPCODE_TEXT, b'{"ready":true}')
        status, _, body = s.call("CreateVm",
                                 pb.CreateVmRequest(name="watched", config=vm_config(vm_files)))
        assert status == 200, body
        opcode, data = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY
        ev = pb.VmEvent.FromString(data)
        assert ev.vm_name == "watched" and ev.type == pb.VM_EVENT_TYPE_CREATED, ev
    finally:
        ws.close()


def test_a_stream_refused_at_once_ends_with_its_status_and_no_ready(web):
    s = Session(web)
    ws = s.ws("/api/stream/mvirt.VmService/Console")
    try:
        ws.send_binary(pb.ConsoleRequest(vm="nope").SerializeToString())
        opcode, data = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_TEXT
        st = json.loads(data)
        assert st["status"] == "NOT_FOUND" and "nope" in st["message"], st
    finally:
        ws.close()


def test_listen_localhost_is_127_0_0_1(web_binary, ch_daemon):
    w = Web(web_binary, ch_daemon)
    w.argv[w.argv.index("--listen") + 1] = f"localhost:{w.port}"
    w.start()
    try:
        status, _, _ = w.request("GET", "/")  # over 127.0.0.1
        assert status in (200, 302, 303), status
    finally:
        w.stop()


def test_websocket_upgrades_need_our_origin(web):
    s = Session(web)
    with pytest.raises(websocket.WebSocketBadStatusException):
        s.ws("/api/stream/mvirt.VmService/WatchVms", origin="http://evil.example")
    with pytest.raises(websocket.WebSocketBadStatusException):
        s.ws("/elsewhere")


def recv_until(ws, pred, what):
    """Console output from the stream's frames until pred(text); the text."""
    text = ""
    end = time.monotonic() + 20
    while not pred(text):
        assert time.monotonic() < end, f"no {what} in {text!r}"
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_TEXT:
            st = json.loads(data)
            if st.get("ready"):
                continue
            return text, st
        text += pb.ConsoleResponse.FromString(data).output.decode(errors="replace")
    return text, None


def test_console_over_a_websocket_history_typing_and_the_end(web, ch_daemon, vm_files):
    s = Session(web)
    cfg = vm_config(vm_files)
    cfg.cmdline = 'chemu.echo=1 chemu.print="booted-ok"'
    assert s.call("CreateVm", pb.CreateVmRequest(name="con", config=cfg))[0] == 200
    status, _, body = s.call("StartVm", pb.StartVmRequest(vm="con"))
    assert status == 200 and pb.Vm.FromString(body).state == pb.VM_STATE_RUNNING, body
    ws = s.ws("/api/stream/mvirt.VmService/Console")
    other = s.ws("/api/stream/mvirt.VmService/Console")  # a second viewer at once
    try:
        for w in (ws, other):
            w.send_binary(pb.ConsoleRequest(vm="con", history_bytes=65536).SerializeToString())
        recv_until(ws, lambda t: "booted-ok" in t, "history")
        ws.send_binary(pb.ConsoleRequest(input=b"hello web\r").SerializeToString())
        recv_until(ws, lambda t: "you typed 'hello web'" in t, "the guest's answer")
        recv_until(other, lambda t: "you typed 'hello web'" in t, "the answer for the other")
        status, _, _ = s.call("StopVm", pb.StopVmRequest(vm="con", force=True))
        assert status == 200
        _, final = recv_until(ws, lambda t: False, "the end of the stream")
        assert final is not None and final["status"] == "OK", final
    finally:
        ws.close()
        other.close()
