"""The VMM side of the serial port and the virtio console: where guest output goes and where
guest input comes from, per ConsoleMode (Off, Null, Tty, File, Pty, Socket).

Lifecycle mirrors cloud-hypervisor v54 ("console devices"):
  create()    at vm.create (and at vm.boot after vm.shutdown): File is created/truncated,
              Socket is bound (EADDRINUSE on a stale path), Pty is opened (path stored in the
              config's `file`).
  attach()    the guest exists: a Socket port starts accepting clients.
  reboot()    File truncated, Socket closed + unlinked + bound again with an empty buffer,
              a new Pty.
  shutdown()  the guest is gone: everything closed, the Socket path unlinked.
  release()   vm.delete of a VM that never booted: closed, the socket file stays on disk.
Socket mode: one client at a time (a new client replaces the old one), a 1 MiB ring keeps
output while no client is connected and is replayed to the next one, a client-initiated
disconnect injects one 0x00 byte into the guest input, and a lone "\\n" read from the client
reaches the guest as "\\r".
"""

import errno
import os
import socket
import tty

RING_MAX = 1024 * 1024
CLIENT_OUT_MAX = 4 * 1024 * 1024


class PortError(Exception):
    """Creating a device failed; .chain is the error-array tail (outermost first)."""

    def __init__(self, *chain):
        super().__init__(": ".join(chain))
        self.chain = list(chain)


def os_error_text(e):
    return "%s (os error %d)" % (os.strerror(e.errno), e.errno) if e.errno else str(e)


class Port:
    def __init__(self, loop, kind, cfg, log):
        self.loop = loop
        self.kind = kind  # "serial" or "console"
        self.cfg = cfg  # the live config dict (Pty path is written into it)
        self.mode = cfg.get("mode", "Null")
        self.log = log
        self.input_cb = None
        self.file_fd = None
        self.listener = None
        self.client = None
        self.client_out = bytearray()
        self.ring = bytearray()
        self.accepting = False
        self.pty_master = None
        self.pty_slave = None

    # ---- lifecycle
    def create(self):
        m = self.mode
        if m == "File":
            path = self.cfg.get("file")
            if not path:
                raise PortError(
                    "Error creating console device", "Path missing when using file console mode"
                )
            self._open_file(path)
        elif m == "Socket":
            if self.kind != "serial":
                raise PortError("No socket option support for console device")
            path = self.cfg.get("socket")
            if not path:
                raise PortError(
                    "Error creating console device", "Path missing when using socket console mode"
                )
            self._bind(path)
        elif m == "Pty":
            self._open_pty()

    def attach(self, input_cb):
        """The guest exists from now on: deliver its input to input_cb(bytes)."""
        self.input_cb = input_cb
        if self.mode == "Socket" and self.listener is not None and not self.accepting:
            self.accepting = True
            self.loop.add_reader(self.listener.fileno(), self._accept)
        if self.mode == "Pty" and self.pty_master is not None:
            self.loop.add_reader(self.pty_master, self._pty_readable)

    def reboot(self):
        m = self.mode
        if m == "File":
            self._close_file()
            self._open_file(self.cfg["file"])
        elif m == "Socket":
            self._close_socket(unlink=True)
            self.ring = bytearray()
            self._bind(self.cfg["socket"])
        elif m == "Pty":
            self._close_pty()
            self._open_pty()

    def shutdown(self):
        self.input_cb = None
        self._close_file()
        self._close_socket(unlink=True)
        self.ring = bytearray()
        self._close_pty()

    def release(self):
        self.input_cb = None
        self._close_file()
        self._close_socket(unlink=False)
        self._close_pty()

    # ---- guest output
    def output(self, data):
        if not data:
            return
        m = self.mode
        if m == "File" and self.file_fd is not None:
            try:
                os.write(self.file_fd, data)
            except OSError as e:
                self.log.warn("%s: write to file failed: %s" % (self.kind, e))
        elif m == "Socket":
            if self.client is not None:
                self._client_send(data)
            else:
                self.ring += data
                if len(self.ring) > RING_MAX:
                    del self.ring[: len(self.ring) - RING_MAX]
        elif m == "Pty" and self.pty_master is not None:
            try:
                os.write(self.pty_master, data)
            except OSError:
                pass  # no reader and the tty buffer is full: dropped
        elif m == "Tty":
            try:
                os.write(1, data)
            except OSError:
                pass

    # ---- File
    def _open_file(self, path):
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
            self.file_fd = os.open(path, flags, 0o644)
        except OSError as e:
            raise PortError("Error creating console device", os_error_text(e))

    def _close_file(self):
        if self.file_fd is not None:
            os.close(self.file_fd)
            self.file_fd = None

    # ---- Socket
    def _bind(self, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            s.bind(path)
            s.listen(8)
        except OSError as e:
            s.close()
            raise PortError("Error creating console device", os_error_text(e))
        s.setblocking(False)
        self.listener = s
        self.accepting = False
        if self.input_cb is not None:
            self.accepting = True
            self.loop.add_reader(s.fileno(), self._accept)

    def _close_socket(self, unlink):
        self._drop_client()
        if self.listener is not None:
            self.loop.forget(self.listener.fileno())
            self.listener.close()
            self.listener = None
            self.accepting = False
            if unlink and self.cfg.get("socket"):
                try:
                    os.unlink(self.cfg["socket"])
                except OSError:
                    pass

    def _accept(self):
        while self.listener is not None:
            try:
                c, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.log.warn("%s: accept failed: %s" % (self.kind, e))
                return
            self._drop_client()  # one client at a time: the newest wins
            c.setblocking(False)
            self.client = c
            self.client_out = bytearray()
            self.loop.add_reader(c.fileno(), self._client_readable)
            if self.ring:
                data, self.ring = bytes(self.ring), bytearray()
                self._client_send(data)

    def _drop_client(self):
        if self.client is not None:
            self.loop.forget(self.client.fileno())
            try:
                self.client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.client.close()
            self.client = None
            self.client_out = bytearray()

    def _client_readable(self):
        c = self.client
        try:
            data = c.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop_client()
            if self.input_cb:
                self.input_cb(b"\x00")
            return
        if data == b"\n":
            data = b"\r"
        if self.input_cb:
            self.input_cb(data)

    def _client_send(self, data):
        self.client_out += data
        if len(self.client_out) > CLIENT_OUT_MAX:
            del self.client_out[: len(self.client_out) - CLIENT_OUT_MAX]
        self._client_flush()

    def _client_flush(self):
        c = self.client
        if c is None:
            return
        while self.client_out:
            try:
                n = c.send(self.client_out)
            except (BlockingIOError, InterruptedError):
                self.loop.add_writer(c.fileno(), self._client_flush)
                return
            except OSError:
                self._drop_client()
                return
            del self.client_out[:n]
        self.loop.remove_writer(c.fileno())

    # ---- Pty
    def _open_pty(self):
        try:
            master, slave = os.openpty()
        except OSError as e:
            raise PortError("Error creating console device", os_error_text(e))
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.pty_master, self.pty_slave = master, slave
        self.cfg["file"] = os.ttyname(slave)
        if self.input_cb is not None:
            self.loop.add_reader(master, self._pty_readable)

    def _close_pty(self):
        if self.pty_master is not None:
            self.loop.forget(self.pty_master)
            os.close(self.pty_master)
            os.close(self.pty_slave)
            self.pty_master = self.pty_slave = None

    def _pty_readable(self):
        try:
            data = os.read(self.pty_master, 4096)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno == errno.EIO:
                return
            raise
        if data and self.input_cb:
            self.input_cb(data)


def create_ports(loop, config, log):
    """Create the console then the serial device (cloud-hypervisor's order). On failure the
    ports created so far are released and PortError is raised."""
    ports = {}
    try:
        for kind in ("console", "serial"):
            p = Port(loop, kind, config[kind], log)
            p.create()
            ports[kind] = p
    except PortError:
        for p in ports.values():
            p.release()
        raise
    return ports
