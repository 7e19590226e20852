"""Minimal HTTP/1.1 server side over a listening AF_UNIX socket, on the event loop.

Each connection handles one request at a time (pipelined requests wait their turn), keeps the
connection alive unless the client asks otherwise, honours Content-Length and
`Expect: 100-continue`, and refuses what cloud-hypervisor's micro_http refuses (chunked bodies,
oversized heads/bodies) with a 400 and a closed connection. The dispatcher gets a Request and
a reply(status, body_bytes, on_sent=None) callable it may call later (or never: chemu.hang).

File descriptors passed as SCM_RIGHTS ancillary data (as cloud-hypervisor's micro_http accepts
them, e.g. tap fds for vm.add-net) become Request.fds: the request that contains the last byte
of the recvmsg() that carried them gets them (the kernel ends a read after the segment that
carries fds, so that is the request whose sendmsg() sent them). The dispatcher owns
Request.fds; fds of a request that is never complete are closed with the connection.
"""

import array
import os
import socket

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
MAX_FDS = 253  # SCM_MAX_FD: the most one sendmsg() can carry
_ANC_SPACE = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)

REASONS = {
    100: "Continue",
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
}


class Request:
    __slots__ = ("method", "target", "path", "version", "headers", "body", "fds")

    def __init__(self, method, target, version, headers, body, fds=None):
        self.method = method
        self.target = target
        self.path = target.split("?", 1)[0]
        self.version = version
        self.headers = headers
        self.body = body
        self.fds = fds or []


def close_fds(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _recv_with_fds(sock, log):
    """recvmsg(): (data, [fds]); received fds are close-on-exec."""
    data, anc, flags, _ = sock.recvmsg(65536, _ANC_SPACE, socket.MSG_CMSG_CLOEXEC)
    fds = []
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(payload[: len(payload) - len(payload) % a.itemsize])
            fds.extend(a)
    if flags & socket.MSG_CTRUNC:
        log.warn("api: ancillary data truncated: more than %d fds in one message" % MAX_FDS)
    return data, fds


class Server:
    def __init__(self, loop, sock, dispatch, log):
        self.loop = loop
        self.sock = sock
        self.sock.setblocking(False)
        self.dispatch = dispatch
        self.log = log
        self.conns = set()
        loop.add_reader(sock.fileno(), self._accept)

    def _accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.log.warn("api: accept failed: %s" % e)
                return
            self.conns.add(Conn(self, s))

    def close(self):
        self.loop.forget(self.sock.fileno())
        self.sock.close()
        for c in list(self.conns):
            c.close()


class Conn:
    def __init__(self, server, sock):
        self.server = server
        self.loop = server.loop
        self.sock = sock
        self.fd = sock.fileno()
        sock.setblocking(False)
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.busy = False
        self.closed = False
        self.close_after_flush = False
        self.peer_eof = False
        self.sent_continue = False
        self.on_flushed = []
        self.seq = 0
        self.stream_pos = 0  # stream offset of inbuf[0]
        self.fd_marks = []  # (stream offset of the last byte read with them, [fds])
        self.loop.add_reader(self.fd, self._readable)

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.loop.forget(self.fd)
        try:
            self.sock.close()
        except OSError:
            pass
        self.server.conns.discard(self)
        marks, self.fd_marks = self.fd_marks, []
        for _, fds in marks:
            close_fds(fds)
        cbs, self.on_flushed = self.on_flushed, []
        for cb in cbs:
            cb()

    def _readable(self):
        try:
            data, fds = _recv_with_fds(self.sock, self.server.log)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if fds:
            if data and not self.peer_eof and not self.close_after_flush:
                last = self.stream_pos + len(self.inbuf) + len(data) - 1
                self.fd_marks.append((last, fds))
            else:
                close_fds(fds)
        if not data:
            self.peer_eof = True
            self.loop.remove_reader(self.fd)
            if not self.busy and not self.outbuf:
                self.close()
            return
        self.inbuf += data
        self._parse()

    def _error(self, status, body=b""):
        self.close_after_flush = True
        self.loop.remove_reader(self.fd)
        self._send_response(status, body)

    def _parse(self):
        while not self.busy and not self.closed and not self.close_after_flush:
            end = self.inbuf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.inbuf) > MAX_HEAD:
                    self._error(400, b'["Bad Request","request head too large"]')
                return
            head = bytes(self.inbuf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                self._error(400, b'["Bad Request","malformed request line"]')
                return
            method, target, version = parts
            headers = {}
            for ln in lines[1:]:
                if ":" not in ln:
                    self._error(400, b'["Bad Request","malformed header"]')
                    return
                k, v = ln.split(":", 1)
                headers[k.strip().lower()] = v.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._error(400, b'["Bad Request","chunked transfer encoding is not supported"]')
                return
            try:
                clen = int(headers.get("content-length", "0"))
            except ValueError:
                self._error(400, b'["Bad Request","invalid Content-Length"]')
                return
            if clen < 0 or clen > MAX_BODY:
                self._error(400, b'["Bad Request","invalid Content-Length"]')
                return
            have = len(self.inbuf) - (end + 4)
            if have < clen:
                if (
                    not self.sent_continue
                    and headers.get("expect", "").lower() == "100-continue"
                ):
                    self.sent_continue = True
                    self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            body = bytes(self.inbuf[end + 4 : end + 4 + clen])
            del self.inbuf[: end + 4 + clen]
            self.stream_pos += end + 4 + clen
            fds = []
            while self.fd_marks and self.fd_marks[0][0] < self.stream_pos:
                fds += self.fd_marks.pop(0)[1]
            self.sent_continue = False
            conn_hdr = headers.get("connection", "").lower()
            if version == "HTTP/1.0":
                keep = conn_hdr == "keep-alive"
            else:
                keep = conn_hdr != "close"
            req = Request(method, target, version, headers, body if clen else None, fds)
            self.busy = True
            self.seq += 1
            seq = self.seq
            if not keep:
                self.close_after_flush = True

            def reply(status, rbody=None, on_sent=None, _seq=seq):
                if self.closed or _seq != self.seq or not self.busy:
                    if on_sent:
                        on_sent()
                    return
                if on_sent:
                    self.on_flushed.append(on_sent)
                self._send_response(status, rbody)
                self.busy = False
                if self.peer_eof and not self.inbuf:
                    self.close_after_flush = True
                self._maybe_finish()
                if not self.closed:
                    self._parse()

            self.server.dispatch(req, reply)

    def _send_response(self, status, body):
        reason = REASONS.get(status, "Unknown")
        hdr = ["HTTP/1.1 %d %s" % (status, reason), "Server: Cloud Hypervisor API"]
        hdr.append("Connection: %s" % ("close" if self.close_after_flush else "keep-alive"))
        if status != 204:
            body = body or b""
            hdr.append("Content-Type: application/json")
            hdr.append("Content-Length: %d" % len(body))
        else:
            body = b""
        self._write(("\r\n".join(hdr) + "\r\n\r\n").encode("latin-1") + body)

    def _write(self, data):
        self.outbuf += data
        self._flush()

    def _flush(self):
        while self.outbuf:
            try:
                n = self.sock.send(self.outbuf)
            except (BlockingIOError, InterruptedError):
                self.loop.add_writer(self.fd, self._flush)
                return
            except OSError:
                self.close()
                return
            del self.outbuf[:n]
        self.loop.remove_writer(self.fd)
        cbs, self.on_flushed = self.on_flushed, []
        for cb in cbs:
            cb()
        self._maybe_finish()

    def _maybe_finish(self):
        if self.closed or self.outbuf or self.busy:
            return
        if self.close_after_flush:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.close()
