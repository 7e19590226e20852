"""The real guest: one qemu-system-x86_64 (TCG) per boot, driven over QMP.

Machine: `-M microvm,acpi=on` for a PVH ELF kernel (ELF with a Xen PVH note, e.g. tinyguest),
`-M q35` for a bzImage. QEMU runs with -no-reboot, so every guest reset ends the QEMU process
(SHUTDOWN reason "guest-reset"); the VMM then "reboots" by starting a fresh QEMU after
truncating/rebinding the console devices, exactly like cloud-hypervisor builds a new VM.
The serial port, the virtio console and QMP are socketpairs passed to QEMU by fd (`fd=N`
chardevs), and the tap fds of net devices added with vm.add-net are passed as they are
(`-netdev tap,fd=N`), so QEMU gets no other descriptor of ours; it dies with us
(PR_SET_PDEATHSIG).

API mapping: pause/resume -> QMP stop/cont, power button -> system_powerdown, hard stop
(vm.shutdown, reboot, exit) -> QMP quit, SIGKILL after 3 s. Guest -> VMM: vmm.guest_output,
vmm.guest_poweroff (SHUTDOWN guest-shutdown), vmm.guest_reset (guest-reset),
vmm.guest_panic (GUEST_PANICKED; pvpanic device when VmConfig.pvpanic, panic action none),
vmm.guest_failed(msg) (QEMU died on its own).
"""

import ctypes
import functools
import json
import os
import re
import shlex
import signal
import socket
import struct
import subprocess

from . import net as net_mod
from . import script as script_mod

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def kernel_kind(path):
    """'pvh' for an ELF with a Xen PVH entry note, 'bzimage' for a Linux bzImage, else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            if head[:4] == b"\x7fELF":
                return "pvh" if _elf_has_pvh_note(f, head) else None
            if len(head) > 0x206 and head[0x202:0x206] == b"HdrS":
                return "bzimage"
    except OSError:
        return None
    return None


def _elf_has_pvh_note(f, head):
    if head[4] != 2:  # ELFCLASS64 only (tinyguest and Linux vmlinux are 64-bit ELF files)
        return False
    phoff = struct.unpack_from("<Q", head, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    for i in range(min(phnum, 64)):
        f.seek(phoff + i * phentsize)
        ph = f.read(56)
        if len(ph) < 56:
            return False
        p_type = struct.unpack_from("<I", ph, 0)[0]
        if p_type != 4:  # PT_NOTE
            continue
        p_offset = struct.unpack_from("<Q", ph, 8)[0]
        p_filesz = struct.unpack_from("<Q", ph, 32)[0]
        f.seek(p_offset)
        notes = f.read(min(p_filesz, 65536))
        off = 0
        while off + 12 <= len(notes):
            namesz, descsz, ntype = struct.unpack_from("<III", notes, off)
            name = notes[off + 12 : off + 12 + namesz]
            if name.rstrip(b"\0") == b"Xen" and ntype == 18:  # XEN_ELFNOTE_PHYS32_ENTRY
                return True
            off += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


def _child_setup(parent):
    # Runs in the forked child before exec: die with the parent (and do not outlive a parent
    # that died before prctl), own process group so terminal signals reach only ch-emu.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
    os.setpgid(0, 0)


class Relay:
    """Our end of a chardev socketpair: QEMU output -> vmm.guest_output(kind)."""

    def __init__(self, guest, kind, sock):
        self.guest = guest
        self.kind = kind
        self.sock = sock
        self.out = bytearray()
        sock.setblocking(False)
        guest.loop.add_reader(sock.fileno(), self.readable)

    def readable(self):
        while self.sock is not None:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            self.guest.vmm.guest_output(self.kind, data)

    def send(self, data):
        if self.sock is None:
            return
        self.out += data
        self.flush()

    def flush(self):
        while self.out and self.sock is not None:
            try:
                n = self.sock.send(self.out)
            except (BlockingIOError, InterruptedError):
                self.guest.loop.add_writer(self.sock.fileno(), self.flush)
                return
            except OSError:
                self.out = bytearray()
                return
            del self.out[:n]
        if self.sock is not None:
            self.guest.loop.remove_writer(self.sock.fileno())

    def close(self):
        if self.sock is not None:
            self.guest.loop.forget(self.sock.fileno())
            self.sock.close()
            self.sock = None


class Qmp:
    def __init__(self, guest, sock):
        self.guest = guest
        self.sock = sock
        self.buf = bytearray()
        self.pending = {}
        self.next_id = 1
        self.ready = False
        self.on_ready = None
        sock.setblocking(False)
        guest.loop.add_reader(sock.fileno(), self.readable)

    def command(self, name, cb=None, **args):
        if self.sock is None:
            if cb:
                cb({"error": {"desc": "QMP connection closed"}})
            return
        cid = self.next_id
        self.next_id += 1
        msg = {"execute": name, "id": cid}
        if args:
            msg["arguments"] = args
        self.pending[cid] = cb
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as e:
            self.pending.pop(cid, None)
            if cb:
                cb({"error": {"desc": str(e)}})

    def readable(self):
        while self.sock is not None:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self.close()
                break
            self.buf += data
        while b"\n" in self.buf:
            line, _, rest = bytes(self.buf).partition(b"\n")
            self.buf = bytearray(rest)
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            self._handle(msg)

    def _handle(self, msg):
        if "QMP" in msg:
            self.command("qmp_capabilities", self._caps_done)
        elif "event" in msg:
            self.guest.qmp_event(msg)
        elif "id" in msg:
            cb = self.pending.pop(msg["id"], None)
            if cb:
                cb(msg)

    def _caps_done(self, msg):
        self.ready = True
        if self.on_ready:
            cb, self.on_ready = self.on_ready, None
            cb(msg.get("error"))

    def close(self):
        if self.sock is not None:
            self.guest.loop.forget(self.sock.fileno())
            self.sock.close()
            self.sock = None
        pending, self.pending = self.pending, {}
        for cb in pending.values():
            if cb:
                cb({"error": {"desc": "QMP connection closed"}})


class QemuGuest:
    kind = "real"

    def __init__(self, vmm, script, boot_no, config, kkind):
        self.vmm = vmm
        self.loop = vmm.loop
        self.log = vmm.log
        self.script = script
        self.boot_no = boot_no
        self.config = config
        self.kkind = kkind
        self.proc = None
        self.pidfd = None
        self.relays = {}
        self.qmp = None
        self.stderr_fd = None
        self.stderr_tail = b""
        self.shutdown_reason = None
        self.expect_exit = False
        self.exit_cbs = []
        self.kill_timer = None
        self.exited = False
        self.start_done = None

    # ---- command line
    def argv(self, fds):
        cfg = self.config
        pvh = self.kkind == "pvh"
        qemu = os.environ.get("CH_EMU_QEMU", "qemu-system-x86_64")
        mem_mib = max(16, -(-int(cfg["memory"]["size"]) // (1024 * 1024)))
        a = [qemu, "-accel", "tcg", "-M", "microvm,acpi=on" if pvh else "q35"]
        a += ["-m", "%dM" % mem_mib, "-smp", str(cfg["cpus"]["boot_vcpus"])]
        a += ["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]
        a += ["-action", "panic=none"]
        p = cfg["payload"]
        a += ["-kernel", p["kernel"]]
        if p.get("initramfs"):
            a += ["-initrd", p["initramfs"]]
        cmdline = script_mod.strip(p.get("cmdline", ""))
        if cmdline:
            a += ["-append", cmdline]
        if "serial" in fds:
            a += ["-chardev", "socket,id=ser0,fd=%d" % fds["serial"], "-serial", "chardev:ser0"]
        if "console" in fds:
            a += ["-device", "virtio-serial-device" if pvh else "virtio-serial-pci"]
            a += ["-chardev", "socket,id=con0,fd=%d" % fds["console"]]
            a += ["-device", "virtconsole,chardev=con0"]
        a += ["-chardev", "socket,id=qmp,fd=%d" % fds["qmp"], "-mon", "chardev=qmp,mode=control"]
        for i, d in enumerate(cfg.get("disks") or []):
            if not d.get("path"):
                continue
            fmt = "qcow2" if d.get("image_type") == "Qcow2" else "raw"
            path = d["path"].replace(",", ",,")
            drive = "file=%s,if=none,id=disk%d,format=%s" % (path, i, fmt)
            if d.get("readonly"):
                drive += ",readonly=on"
            a += ["-drive", drive]
            dev = "%s,drive=disk%d" % ("virtio-blk-device" if pvh else "virtio-blk-pci", i)
            if d.get("serial"):
                dev += ",serial=%s" % d["serial"].replace(",", ",,")
            a += ["-device", dev]
        for i, n in enumerate(cfg.get("net") or []):
            a += self._net_args(i, n, pvh)
        if cfg.get("pvpanic"):
            a += ["-device", "pvpanic"]
        a += shlex.split(os.environ.get("CH_EMU_QEMU_ARGS", ""))
        return a

    def _net_args(self, i, n, pvh):
        """A net device backed by tap fds (vm.add-net): QEMU gets the fds themselves (inherited,
        see net_fds) as `-netdev tap,fd=N` (fds=a:b with several queue pairs). Named taps and
        vhost-user devices are not connected (ch-emu never opens host interfaces)."""
        fds = n.get("fds")
        if not fds:
            if n.get("tap"):
                self.log.warn(
                    "vm: %s: named tap %s is not connected in real mode" % (n.get("id"), n["tap"])
                )
            return []
        # No vnet_hdr= (QEMU refuses it with fd=/fds=): QEMU uses the virtio-net header when
        # the tap was opened with IFF_VNET_HDR, as cloud-hypervisor needs it.
        if len(fds) == 1:
            netdev = "tap,id=nic%d,fd=%d" % (i, fds[0])
        else:
            netdev = "tap,id=nic%d,fds=%s" % (i, ":".join(str(f) for f in fds))
        model = "virtio-net-device" if pvh else "virtio-net-pci"
        dev = "%s,netdev=nic%d,mac=%s" % (model, i, n["mac"])
        if len(fds) > 1:
            dev += ",mq=on"
            if not pvh:
                dev += ",vectors=%d" % (2 * len(fds) + 2)
        if n.get("mtu"):
            dev += ",host_mtu=%d" % n["mtu"]
        if not pvh:
            dev += ",romfile="  # no iPXE option ROM: the kernel is loaded directly
        return ["-netdev", netdev, "-device", dev]

    def net_fds(self):
        return [fd for n in self.config.get("net") or [] for fd in n.get("fds") or []]

    def path_fds(self):
        """The fds behind /proc/self/fd/N paths in the config (a manager that passes the files
        it checked, as mvirt does): cloud-hypervisor opens such a path in its own process, so
        QEMU, which opens the paths in its stead, must hold the same fds."""
        p = self.config["payload"]
        paths = [p.get(k) for k in ("kernel", "initramfs", "firmware")]
        paths += [d.get("path") for d in self.config.get("disks") or []]
        out = []
        for path in paths:
            m = re.fullmatch(r"/proc/self/fd/(\d+)", path or "")
            if m:
                out.append(int(m.group(1)))
        return out

    # ---- lifecycle
    def start(self, done):
        self.start_done = done
        ours = {}
        theirs = {}
        for kind in ("serial", "console"):
            if self.config[kind]["mode"] not in ("Off", "Null"):
                ours[kind], theirs[kind] = socket.socketpair()
        ours["qmp"], theirs["qmp"] = socket.socketpair()
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        fds = {k: s.fileno() for k, s in theirs.items()}
        argv = self.argv(fds)
        self.log.info("vm: starting %s" % " ".join(shlex.quote(x) for x in argv))
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=err_w,
                stderr=err_w,
                pass_fds=tuple(fds.values()) + tuple(self.net_fds()) + tuple(self.path_fds()),
                preexec_fn=functools.partial(_child_setup, os.getpid()),
            )
        except OSError as e:
            for s in list(ours.values()) + list(theirs.values()):
                s.close()
            os.close(err_r)
            os.close(err_w)
            self.start_done = None
            done(["Error spawning %s" % argv[0], "%s (os error %d)" % (e.strerror, e.errno)])
            return
        for s in theirs.values():
            s.close()
        os.close(err_w)
        self.stderr_fd = err_r
        os.set_blocking(err_r, False)
        self.loop.add_reader(err_r, self._stderr_readable)
        for kind in ("serial", "console"):
            if kind in ours:
                self.relays[kind] = Relay(self, kind, ours[kind])
        self.qmp = Qmp(self, ours["qmp"])
        self.qmp.on_ready = self._qmp_ready
        self.pidfd = os.pidfd_open(self.proc.pid)
        self.loop.add_reader(self.pidfd, self._exited)

    def _qmp_ready(self, err):
        done, self.start_done = self.start_done, None
        if done:
            done(["QMP negotiation failed: %s" % err] if err else None)

    def _stderr_readable(self):
        try:
            data = os.read(self.stderr_fd, 65536)
        except BlockingIOError:
            return
        if not data:
            self.loop.forget(self.stderr_fd)
            os.close(self.stderr_fd)
            self.stderr_fd = None
            return
        self.stderr_tail = (self.stderr_tail + data)[-4096:]
        for line in data.decode("utf-8", "replace").splitlines():
            self.log.warn("qemu: %s" % line)

    def qmp_event(self, msg):
        ev = msg.get("event")
        if ev == "SHUTDOWN":
            self.shutdown_reason = msg.get("data", {}).get("reason")
        elif ev == "GUEST_PANICKED":
            self.vmm.guest_panic()

    def _exited(self):
        if self.exited:
            return
        self.exited = True
        # Output written just before the exit must land before the VMM reacts.
        for r in self.relays.values():
            r.readable()
        if self.qmp:
            self.qmp.readable()
        if self.stderr_fd is not None:
            self._stderr_readable()
        self.loop.forget(self.pidfd)
        os.close(self.pidfd)
        self.pidfd = None
        status = self.proc.wait()
        if self.kill_timer:
            self.kill_timer.cancel()
        self._close_channels()
        self.log.info("vm: qemu exited with status %s (reason %s)" % (status, self.shutdown_reason))
        booting = self.start_done is not None
        if booting:
            done, self.start_done = self.start_done, None
            tail = self.stderr_tail.decode("utf-8", "replace").strip().splitlines()
            done(["qemu exited with status %s" % status] + tail[-3:])
        if self.expect_exit:
            cbs, self.exit_cbs = self.exit_cbs, []
            for cb in cbs:
                cb()
            return
        if booting:
            return
        reason = self.shutdown_reason
        if reason == "guest-shutdown":
            self.vmm.guest_poweroff()
        elif reason == "guest-reset":
            self.vmm.guest_reset()
        elif reason == "guest-panic":
            self.vmm.guest_panic()
            self.vmm.guest_poweroff()
        else:
            tail = self.stderr_tail.decode("utf-8", "replace").strip()
            self.vmm.guest_failed("qemu exited unexpectedly with status %s: %s" % (status, tail))

    def _close_channels(self):
        for r in self.relays.values():
            r.close()
        if self.qmp:
            self.qmp.close()

    def stop(self, done):
        """Hard stop (QMP quit, SIGKILL after 3 s); done() once QEMU is gone."""
        if self.exited or self.proc is None:
            done()
            return
        self.exit_cbs.append(done)
        if self.expect_exit:
            return
        self.expect_exit = True
        if self.qmp is not None and self.qmp.ready:
            self.qmp.command("quit")
            self.kill_timer = self.loop.call_later(3.0, self._kill)
        else:
            self._kill()

    def _kill(self):
        if not self.exited and self.proc is not None:
            try:
                self.proc.kill()
            except OSError:
                pass

    def kill_now(self):
        """Used at exit: QEMU must be gone before ch-emu returns."""
        if self.proc is not None and not self.exited:
            try:
                self.proc.kill()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.exited = True

    def pause(self, done):
        self.qmp.command("stop", lambda r: done(self._err(r)))

    def resume(self, done):
        self.qmp.command("cont", lambda r: done(self._err(r)))

    def power_button(self):
        self.qmp.command("system_powerdown")

    def nmi(self):
        self.qmp.command("inject-nmi")

    def counters(self, counters, disk_ids, nets, done):
        """vm.counters: each disk's bytes and requests from QEMU's block statistics (QMP
        query-blockstats; drive diskN is config.disks[N]), each tap-backed net's frames and
        bytes from its tap's interface statistics (QEMU keeps no counters of its own for them;
        a net without fds stays at 0). A QMP failure leaves the disks' zeros."""
        for did, n in nets:
            fds = n.get("fds") or []
            tap = net_mod.tap_counters(fds[0]) if fds else None
            if tap:
                counters[did].update(tap)

        def got(resp):
            for st in resp.get("return") or []:
                dev, s = st.get("device") or "", st.get("stats") or {}
                if not dev.startswith("disk") or not dev[4:].isdigit():
                    continue
                i = int(dev[4:])
                if i < len(disk_ids) and disk_ids[i] in counters:
                    counters[disk_ids[i]].update({
                        "read_bytes": s.get("rd_bytes", 0),
                        "read_ops": s.get("rd_operations", 0),
                        "write_bytes": s.get("wr_bytes", 0),
                        "write_ops": s.get("wr_operations", 0),
                    })
            done(counters)

        if self.qmp is None:
            done(counters)
        else:
            self.qmp.command("query-blockstats", got)

    def add_net(self, net):
        """Hotplug would need QMP getfd/netdev_add/device_add and a hotplug-capable bus (the
        devices sit on microvm's virtio-mmio or q35's root bus): refused."""
        return [
            "ch-emu: hotplugging a net device into a real (QEMU) guest is not emulated; "
            "add it with vm.add-net before vm.boot"
        ]

    def remove_net(self, net):
        return ["ch-emu: removing a device from a running real (QEMU) guest is not emulated"]

    def input(self, kind, data):
        r = self.relays.get(kind)
        if r:
            r.send(data)

    @staticmethod
    def _err(resp):
        if "error" in resp:
            return [resp["error"].get("desc", "QMP error")]
        return None
