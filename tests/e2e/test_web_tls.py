"""mvirt-web over TLS: the certificate it generates at first start in <state-dir>/tls (modes,
names, the fingerprint it prints against the one the server presents, reuse on restart), the
user's own pair and the clear refusals of a bad one, HTTPS login with a Secure cookie, and
"any address but loopback implies TLS", tried in a network namespace of the test's own (never
on an address of the machine). The server runs against a real daemon with ch-emu."""

import hashlib
import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest

import mvirt_proto
from conftest import free_tcp_port, make_tmpdir
from test_web import Session, Web, web_binary  # noqa: F401  (fixture)

pb = mvirt_proto.mvirt_pb2

TLS_LINE = re.compile(r"mvirt-web: TLS certificate (\S+) (generated, self-signed )?"
                      r"\(SHA-256 fingerprint ([0-9A-F]{2}(?::[0-9A-F]{2}){31})\)")


def fingerprint_of(der):
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def unverified():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TlsWeb(Web):
    """A Web with --tls: requests over HTTPS, trusting only the certificate it serves (so a
    request also checks that the certificate names 127.0.0.1), and the TLS line it printed."""

    def __init__(self, binary, daemon, extra=("--tls",)):
        super().__init__(binary, daemon, extra)
        self.tls_dir = self.base / "web" / "tls"
        self.cert = self.fingerprint = None
        self.generated = False
        self.lines = []

    def start(self, *extra):
        self.proc = subprocess.Popen(self.argv + list(extra), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.cert = self.fingerprint = None
        while True:
            line = self.proc.stdout.readline()
            assert line, "mvirt-web exited:\n" + "".join(self.lines)
            self.lines.append(line)
            m = re.match(r"mvirt-web: login token: (\S+)", line)
            if m:
                self.token = m.group(1)
            m = TLS_LINE.match(line)
            if m:
                self.cert, self.generated, self.fingerprint = m.group(1), bool(m.group(2)), \
                    m.group(3)
            if line.startswith("mvirt-web: serving"):
                assert line.startswith(f"mvirt-web: serving https://{self.host}/"), line
                assert self.fingerprint, "no TLS certificate line before:\n" + \
                    "".join(self.lines)
                return self

    def _connection(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=ctx)

    def presented_der(self, host="127.0.0.1"):
        with socket.create_connection((host, self.port), timeout=10) as s:
            with unverified().wrap_socket(s, server_hostname="localhost") as t:
                return t.getpeercert(binary_form=True)


@pytest.fixture
def tls_web(web_binary, ch_daemon):  # noqa: F811
    w = TlsWeb(web_binary, ch_daemon).start()
    yield w
    w.stop()


def subject_alt_names(pem_path):
    """(DNS names, IP addresses as text) of a PEM certificate's subjectAltName."""
    try:
        import ipaddress
        from cryptography import x509
    except ImportError:
        text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                               str(pem_path)], capture_output=True, text=True, check=True).stdout
        dns = re.findall(r"DNS:([^,\s]+)", text)
        ips = [a.lower() for a in re.findall(r"IP Address:([0-9A-Fa-f:.]+)", text)]
        return dns, [str(ipaddress.ip_address(a)) for a in ips]
    cert = x509.load_pem_x509_certificate(open(pem_path, "rb").read())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), \
        [str(a) for a in san.get_values_for_type(x509.IPAddress)]


def run_web(binary, daemon, *args):
    """mvirt-web that must refuse to start: its exit status and output."""
    r = subprocess.run([str(binary), "--listen", f"127.0.0.1:{free_tcp_port()}", "--daemon",
                        daemon.unix_addr,
                        *args], capture_output=True, text=True, timeout=20)
    assert "serving" not in r.stdout, r.stdout
    return r.returncode, r.stderr


def test_first_start_generates_a_certificate_with_private_modes(tls_web):
    d = tls_web.tls_dir
    assert tls_web.generated and tls_web.cert == str(d / "cert.pem")
    assert oct(d.stat().st_mode & 0o777) == "0o700"
    assert oct((d / "cert.pem").stat().st_mode & 0o777) == "0o644"
    assert oct((d / "key.pem").stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in d.iterdir()) == ["cert.pem", "key.pem"]  # no .tmp left
    assert "PRIVATE KEY-----" in (d / "key.pem").read_text()


def test_the_printed_fingerprint_is_the_served_certificates(tls_web):
    der = tls_web.presented_der()
    assert fingerprint_of(der) == tls_web.fingerprint
    assert ssl.DER_cert_to_PEM_cert(der).split() == (tls_web.tls_dir / "cert.pem").read_text() \
        .split()
    dns, ips = subject_alt_names(tls_web.cert)
    assert "localhost" in dns
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}", socket.gethostname()):
        assert socket.gethostname() in dns
    assert "127.0.0.1" in ips and "::1" in ips
    # and a client that trusts just this certificate accepts it for localhost by name
    ctx = ssl.create_default_context(cafile=tls_web.cert)
    c = http.client.HTTPSConnection("localhost", tls_web.port, timeout=10, context=ctx)
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 200 and b"Access token" in r.read()
    c.close()


def test_login_over_https_sets_a_secure_cookie(tls_web):
    s = Session(tls_web)
    attrs = [a.strip() for a in s.set_cookie.split(";")]
    assert "Secure" in attrs and "HttpOnly" in attrs and "SameSite=Strict" in attrs
    h = s.headers()
    h["Origin"] = f"https://{tls_web.host}"  # our origin is https now
    status, _, body = tls_web.request("POST", "/api/call/mvirt.VmService/ListVms",
                                      pb.ListVmsRequest().SerializeToString(), h)
    assert status == 200, body
    h["Origin"] = f"http://{tls_web.host}"
    status, _, _ = tls_web.request("POST", "/api/call/mvirt.VmService/ListVms",
                                   pb.ListVmsRequest().SerializeToString(), h)
    assert status == 403


def test_plain_http_to_the_tls_port_gets_no_ui(tls_web):
    for _ in range(3):
        c = http.client.HTTPConnection("127.0.0.1", tls_web.port, timeout=10)
        try:
            c.request("GET", "/")
            r = c.getresponse()
            assert b"Access token" not in r.read() and r.status != 200
        except (ConnectionError, http.client.HTTPException, socket.timeout):
            pass
        finally:
            c.close()
        # a client that gives up in the handshake (a browser refusing the certificate)
        with socket.create_connection(("127.0.0.1", tls_web.port), timeout=10) as raw:
            with pytest.raises(ssl.SSLCertVerificationError):
                ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")
    assert tls_web.proc.poll() is None
    assert tls_web.request("GET", "/")[0] == 200


def test_a_restart_reuses_the_certificate(web_binary, ch_daemon):  # noqa: F811
    w = TlsWeb(web_binary, ch_daemon).start()
    try:
        first = w.fingerprint
        cert = (w.tls_dir / "cert.pem").read_bytes()
        key = (w.tls_dir / "key.pem").read_bytes()
        token = w.token
        w.stop()
        w.start()
        assert not w.generated and w.fingerprint == first
        assert (w.tls_dir / "cert.pem").read_bytes() == cert
        assert (w.tls_dir / "key.pem").read_bytes() == key
        assert fingerprint_of(w.presented_der()) == first
        w.token = token
        Session(w)
    finally:
        w.stop()


@pytest.fixture
def pairs(web_binary, ch_daemon):  # noqa: F811
    """Two cert/key pairs, each made by a first start of its own."""
    out = []
    for _ in range(2):
        w = TlsWeb(web_binary, ch_daemon).start()
        w.stop()
        out.append((w.tls_dir / "cert.pem", w.tls_dir / "key.pem", w.fingerprint))
    return out


def test_the_users_own_pair_is_served_and_nothing_generated(web_binary, ch_daemon, pairs):  # noqa: F811,E501
    cert, key, fp = pairs[0]
    w = TlsWeb(web_binary, ch_daemon, ("--tls-cert", str(cert), "--tls-key", str(key))).start()
    try:
        assert w.cert == str(cert) and not w.generated and w.fingerprint == fp
        assert fingerprint_of(w.presented_der()) == fp
        assert not w.tls_dir.exists()
        Session(w)
    finally:
        w.stop()


def test_a_garbage_certificate_is_refused_naming_the_file(web_binary, ch_daemon, pairs):  # noqa: F811,E501
    d = make_tmpdir("mvt")
    bad = d / "garbage.pem"
    bad.write_text("this is not a certificate\n")
    _, key, _ = pairs[0]
    rc, err = run_web(web_binary, ch_daemon, "--state-dir", str(d / "w"), "--tls-cert",
                      str(bad), "--tls-key", str(key))
    assert rc == 2 and f"certificate {bad}: not a PEM certificate" in err, err
    # a truncated one too, and one that is not there
    cert, key, _ = pairs[0]
    bad.write_text(cert.read_text()[:300])
    rc, err = run_web(web_binary, ch_daemon, "--state-dir", str(d / "w"), "--tls-cert",
                      str(bad), "--tls-key", str(key))
    assert rc == 2 and f"certificate {bad}: not a PEM certificate" in err, err
    rc, err = run_web(web_binary, ch_daemon, "--state-dir", str(d / "w"), "--tls-cert",
                      str(d / "nope.pem"), "--tls-key", str(key))
    assert rc == 2 and f"certificate {d / 'nope.pem'}: cannot read it" in err, err
    rc, err = run_web(web_binary, ch_daemon, "--state-dir", str(d / "w"), "--tls-cert",
                      str(cert), "--tls-key", str(bad))
    assert rc == 2 and f"private key {bad}: not a PEM private key" in err, err
    assert not (d / "w" / "token.hash").exists()  # refused before a token was made
    shutil.rmtree(d)


def test_a_key_that_does_not_match_is_refused(web_binary, ch_daemon, pairs):  # noqa: F811
    (cert, _, _), (_, other_key, _) = pairs
    d = make_tmpdir("mvt")
    rc, err = run_web(web_binary, ch_daemon, "--state-dir", str(d / "w"), "--tls-cert",
                      str(cert), "--tls-key", str(other_key))
    assert rc == 2, err
    assert f"private key {other_key} does not match the certificate {cert}" in err, err
    assert "key values mismatch" in err, err
    shutil.rmtree(d)


def test_a_key_without_its_certificate_is_refused_and_kept(web_binary, ch_daemon):  # noqa: F811
    w = TlsWeb(web_binary, ch_daemon).start()
    w.stop()
    cert, key = w.tls_dir / "cert.pem", w.tls_dir / "key.pem"
    before = key.read_bytes(), key.stat().st_mtime_ns
    cert.unlink()
    rc, err = run_web(web_binary, ch_daemon, "--state-dir", str(w.base / "web"), "--tls")
    assert rc == 1 and f"TLS certificate {cert} is missing" in err, err
    assert (key.read_bytes(), key.stat().st_mtime_ns) == before
    assert sorted(p.name for p in w.tls_dir.iterdir()) == ["key.pem"]
    # and the other way round
    key.rename(cert)
    rc, err = run_web(web_binary, ch_daemon, "--state-dir", str(w.base / "web"), "--tls")
    assert rc == 1 and f"TLS key {key} is missing" in err, err
    assert sorted(p.name for p in w.tls_dir.iterdir()) == ["cert.pem"]


NETNS_ADDR = "10.213.7.1"

CLIENT = """
import hashlib, http.client, json, socket, ssl, sys
addr, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = http.client.HTTPSConnection(addr, port, timeout=10, context=ctx)
c.request("GET", "/")
r = c.getresponse()
body = r.read()
der = c.sock.getpeercert(binary_form=True)
print(json.dumps({"status": r.status, "login": b"Access token" in body,
                  "sha256": hashlib.sha256(der).hexdigest()}))
"""


def test_an_address_other_than_loopback_implies_tls(web_binary, ch_daemon, netns):  # noqa: F811
    ns = ["ip", "netns", "exec", netns]
    subprocess.run(ns + ["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(ns + ["ip", "addr", "add", f"{NETNS_ADDR}/32", "dev", "lo"], check=True)
    w = TlsWeb(web_binary, ch_daemon, extra=())
    w.argv = ns + [a if a != w.host else f"{NETNS_ADDR}:8443" for a in w.argv]
    w.host = f"{NETNS_ADDR}:8443"
    w.start()  # checks the TLS line and "serving https://10.213.7.1:8443/"
    try:
        assert w.generated
        dns, ips = subject_alt_names(w.cert)
        assert NETNS_ADDR in ips and "127.0.0.1" in ips and "localhost" in dns
        deadline = time.monotonic() + 10
        while True:
            r = subprocess.run(ns + ["/usr/bin/python3", "-c", CLIENT, NETNS_ADDR, "8443"],
                               capture_output=True, text=True, timeout=30)
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        assert got["status"] == 200 and got["login"], got
        assert got["sha256"] == w.fingerprint.replace(":", "").lower()
    finally:
        w.stop()
