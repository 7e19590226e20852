"""The VMM: REST endpoints, the VM state machine, events, console devices, the guest.

State, as in cloud-hypervisor v54: `config` (vm.create .. vm.delete), `guest` (vm.boot ..
vm.shutdown / power-off; its state Running or Paused), `ports` (the console devices, created
with the config and again after a shutdown). vm.info reports Created when there is a config
but no guest. Error bodies are ["Error from API", <operation>, <causes>...]; 404 when the
innermost cause is "VM is not created" / "VM config is missing", 500 otherwise.

Lifecycle operations (API calls and guest-initiated power-off/reset) run one at a time in
arrival order, like the real VMM thread; chemu.hang / chemu.delay act before the queue, so a
hung call blocks nobody else.

Net devices (net.py): fds passed with SCM_RIGHTS count only on vm.add-net, where all of them
become the device's `fds` (numbers in the body are dropped, as in vm.create); fds sent with any
other request are closed. ch-emu owns them from then on: they are closed by vm.remove-device,
vm.delete, vmm.shutdown and at exit, and kept across vm.shutdown / reboot (the config keeps
them). PCI slots (for vm.add-net's PciDeviceInfo) are handed out at boot in the device
manager's order and, on hotplug, the lowest free slot.
"""

import functools
import json
import os
import resource
import signal

from . import net as net_mod
from . import script as script_mod
from .guest_qemu import QemuGuest, kernel_kind
from .guest_sim import SimGuest
from .http import close_fds
from .schema import SchemaError
from .serial import PortError, create_ports, os_error_text

VERSION = "54.0.0"
BUILD_VERSION = "v54.0.0"

GET = "GET"
PUT = "PUT"

# endpoint -> (method, ApiError text used as the second element of error arrays)
ROUTES = {
    "vmm.ping": (GET, "The VMM could not be pinged"),
    "vmm.shutdown": (PUT, "The VMM could not shutdown"),
    "vm.info": (GET, "The VM info is not available"),
    "vm.counters": (GET, "The VM info is not available"),
    "vm.create": (PUT, "The VM could not be created"),
    "vm.delete": (PUT, "The VM could not be deleted"),
    "vm.boot": (PUT, "The VM could not boot"),
    "vm.pause": (PUT, "The VM could not be paused"),
    "vm.resume": (PUT, "The VM could not resume"),
    "vm.shutdown": (PUT, "The VM could not shutdown"),
    "vm.reboot": (PUT, "The VM could not reboot"),
    "vm.power-button": (PUT, "Error triggering power button"),
    "vm.nmi": (PUT, "Error triggering NMI"),
    "vm.resize": (PUT, "The VM could not be resized"),
    "vm.resize-disk": (PUT, "The disk could not be resized"),
    "vm.resize-zone": (PUT, "The memory zone could not be resized"),
    "vm.add-device": (PUT, "The device could not be added to the VM"),
    "vm.add-user-device": (PUT, "The user device could not be added to the VM"),
    "vm.remove-device": (PUT, "The device could not be removed from the VM"),
    "vm.add-disk": (PUT, "The disk could not be added to the VM"),
    "vm.add-fs": (PUT, "The fs could not be added to the VM"),
    "vm.add-generic-vhost-user": (
        PUT,
        "The generic vhost-user device could not be added to the VM",
    ),
    "vm.add-pmem": (PUT, "The pmem device could not be added to the VM"),
    "vm.add-net": (PUT, "The network device could not be added to the VM"),
    "vm.add-vdpa": (PUT, "The vDPA device could not be added to the VM"),
    "vm.add-vsock": (PUT, "The vsock device could not be added to the VM"),
    "vm.snapshot": (PUT, "The VM could not be snapshotted"),
    "vm.restore": (PUT, "The VM could not be restored"),
    "vm.receive-migration": (PUT, "Error starting migration receiver"),
    "vm.send-migration": (PUT, "Error starting migration sender"),
}

# Defaults cloud-hypervisor applies that the OpenAPI file does not state (serde defaults of
# whole sections and of a few required-in-spec fields). Schema `default:`s are added on top.
CH_SECTION_DEFAULTS = {
    "cpus": {"boot_vcpus": 1, "max_vcpus": 1},
    "memory": {"size": 512 * 1024 * 1024},
    "serial": {"mode": "Null"},
    "console": {"mode": "Tty"},
    "rng": {"src": "/dev/urandom"},
    "debug_console": {"mode": "Off", "iobase": 0xE9},
}
CH_FIELD_DEFAULTS = {"cpus": {"max_phys_bits": 46}}

NOT_FOUND_CAUSES = ("VM is not created", "VM config is missing")


def _json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def _bdf(seg, slot):
    return "%04x:00:%02x.0" % (seg, slot)


class Vmm:
    def __init__(self, loop, schema, events, log, env_script, no_shutdown):
        self.loop = loop
        self.schema = schema
        self.events = events
        self.log = log
        self.env_script = env_script
        self.cmd_script = script_mod.Script()
        self.no_shutdown = no_shutdown
        self.config = None
        self.guest = None
        self.state = None  # guest state: "Running" / "Paused"
        self.ports = None
        self.boot_count = 0
        self.crash_timer = None
        self.ops = []
        self.op_running = False
        self.exit_code = None
        self.exiting = False
        self.pci_used = {}  # PCI segment -> set of device slots in use (while booted)
        self.pci_ids = {}  # device id -> (segment, slot)
        self.device_id_cnt = 0

    @property
    def script(self):
        return self.env_script.merged(self.cmd_script)

    # ---- HTTP entry point
    def dispatch(self, req, reply):
        prefix = "/api/v1/"
        ep = req.path[len(prefix):] if req.path.startswith(prefix) else None
        fds, req.fds = req.fds, []
        if fds and ep != "vm.add-net":
            # cloud-hypervisor attaches received fds to net devices on vm.add-net only.
            self.log.warn(
                "api: %d fd(s) received with %s closed (only vm.add-net takes fds)"
                % (len(fds), req.path)
            )
            close_fds(fds)
            fds = []

        def reject(status, rbody):
            close_fds(fds)
            reply(status, rbody)

        if ep not in ROUTES:
            reject(404, _json(["Not Found"]))
            return
        method, _ = ROUTES[ep]
        if req.method not in (GET, PUT):
            reject(400, None)
            return
        if req.method != method:
            reject(400, _json(["Bad Request"]))
            return
        body = None
        bschema = self.schema.request_schema(ep, method)
        if bschema is None:
            if req.body is not None and method == PUT:
                reject(400, _json(["Bad Request"]))
                return
        else:
            if req.body is None:
                reject(400, None if ep == "vm.create" else _json(["Bad Request"]))
                return
            try:
                body = json.loads(req.body)
                self.schema.validate(body, bschema)
            except ValueError as e:  # includes json.JSONDecodeError
                reject(400, _json(["Failed to deserialize JSON", str(e)]))
                return
            except SchemaError as e:
                reject(400, _json(["Failed to deserialize JSON", str(e)]))
                return
        self.log.info("api: %s %s%s" % (req.method, ep, " (%d fds)" % len(fds) if fds else ""))
        s = self.script  # validated when parsed
        hang = ep in s.endpoints("hang")
        fail = ep in s.endpoints("fail")
        delay = s.delays().get(ep)
        if hang:
            self.log.info("api: %s hangs (chemu.hang)" % ep)
            close_fds(fds)
            return
        handler = getattr(self, "api_" + ep.replace(".", "_").replace("-", "_"), None)
        if fail:
            close_fds(fds)
            handler = self._api_injected_failure
        elif handler is None:
            handler = self._api_not_emulated
        elif ep == "vm.add-net":
            handler = functools.partial(handler, fds=fds)

        def run():
            self.enqueue(lambda done: handler(ep, body, self._chain_done(reply, done)))

        if delay:
            self.loop.call_later(delay / 1000.0, run)
        else:
            run()

    @staticmethod
    def _chain_done(reply, done):
        def r(status, body=None, on_sent=None):
            reply(status, body, on_sent)
            done()

        return r

    def fail(self, reply, ep, *chain):
        status = 404 if chain and chain[-1] in NOT_FOUND_CAUSES else 500
        reply(status, _json(["Error from API", ROUTES[ep][1]] + list(chain)))

    # ---- operation queue
    def enqueue(self, fn):
        self.ops.append(fn)
        if not self.op_running:
            self._next_op()

    def _next_op(self):
        if not self.ops or self.exiting:
            self.op_running = False
            return
        self.op_running = True
        fn = self.ops.pop(0)
        state = {"done": False}

        def done():
            if not state["done"]:
                state["done"] = True
                self.loop.call_soon(self._next_op)

        fn(done)

    # ---- endpoints
    def api_vmm_ping(self, ep, body, reply):
        reply(
            200,
            _json(
                {
                    "build_version": BUILD_VERSION,
                    "version": VERSION,
                    "pid": os.getpid(),
                    "features": ["kvm"],
                }
            ),
        )

    def api_vmm_shutdown(self, ep, body, reply):
        self._vmm_shutdown(lambda: reply(200, b"", on_sent=lambda: self.exit(0)))

    def api_vm_create(self, ep, body, reply):
        if self.config is not None:
            self.fail(reply, ep, "VM is already created")
            return
        try:
            cmd_script = script_mod.Script(script_mod.parse(body["payload"].get("cmdline", "")))
        except script_mod.ScriptError as e:
            self.fail(reply, ep, "ch-emu: payload.cmdline: %s" % e)
            return
        cfg = dict(body)
        if cfg.get("net"):
            cfg["net"] = [self._net_from_body(n) for n in cfg["net"]]
        for sec, d in CH_SECTION_DEFAULTS.items():
            if cfg.get(sec) is None:
                cfg[sec] = dict(d)
        for sec, d in CH_FIELD_DEFAULTS.items():
            for k, v in d.items():
                cfg[sec].setdefault(k, v)
        self.config = self.schema.fill_defaults(cfg, self.schema.component("VmConfig"))
        self.cmd_script = cmd_script
        try:
            self.ports = create_ports(self.loop, self.config, self.log)
        except PortError as e:
            # Like cloud-hypervisor: the config is already stored when this fails.
            self.fail(reply, ep, "Error creating console devices", *e.chain)
            return
        reply(204)

    def api_vm_boot(self, ep, body, reply):
        if self.guest is not None:
            self.fail(reply, ep, "VM is already created")
            return
        self.events.emit("vm", "booting")
        if self.config is None:
            self.fail(reply, ep, "VM config is missing")
            return
        if self.ports is None:
            try:
                self.ports = create_ports(self.loop, self.config, self.log)
            except PortError as e:
                self.fail(reply, ep, "Error creating console devices", *e.chain)
                return
        err = self._check_boot()
        if err:
            self.fail(reply, ep, *err)
            return

        def started(err):
            if err:
                self._drop_ports()
                self.fail(reply, ep, *err)
                return
            self.events.emit("vm", "booted")
            reply(204)

        self._arm_crash()
        self._start_guest(started)

    def api_vm_pause(self, ep, body, reply):
        if self.guest is None:
            self.fail(reply, ep, "VM is not running")
            return
        self.events.emit("vm", "pausing")
        if self.state != "Running":
            self.fail(
                reply,
                ep,
                "Cannot pause VM",
                "Failed to pause migratable component",
                "Invalid transition: InvalidStateTransition(%s, Paused)" % self.state,
            )
            return

        def paused(err):
            if err:
                self.fail(
                    reply, ep, "Cannot pause VM", "Failed to pause migratable component", *err
                )
                return
            self.state = "Paused"
            self.events.emit("vm", "paused")
            reply(204)

        self.guest.pause(paused)

    def api_vm_resume(self, ep, body, reply):
        if self.guest is None:
            self.fail(reply, ep, "VM is not running")
            return
        self.events.emit("vm", "resuming")
        if self.state != "Paused":
            self.fail(
                reply,
                ep,
                "Cannot resume VM",
                "Failed to resume migratable component",
                "Invalid transition: InvalidStateTransition(%s, Running)" % self.state,
            )
            return

        def resumed(err):
            if err:
                self.fail(
                    reply, ep, "Cannot resume VM", "Failed to resume migratable component", *err
                )
                return
            self.state = "Running"
            self.events.emit("vm", "resumed")
            reply(204)

        self.guest.resume(resumed)

    def api_vm_reboot(self, ep, body, reply):
        self.events.emit("vm", "rebooting")
        if self.guest is None:
            self.fail(reply, ep, "VM is not created")
            return

        def rebooted(err):
            if err:
                self.fail(reply, ep, *err)
            else:
                reply(204)

        self._reboot(rebooted)

    def api_vm_shutdown(self, ep, body, reply):
        if self.guest is None:
            self.fail(reply, ep, "VM is not running")
            return
        self._vm_shutdown(lambda: reply(204))

    def api_vm_power_button(self, ep, body, reply):
        if self.guest is None:
            self.fail(reply, ep, "VM is not running")
            return
        self.guest.power_button()
        reply(204)

    def api_vm_nmi(self, ep, body, reply):
        if self.guest is None:
            self.fail(reply, ep, "VM is not running")
            return
        self.guest.nmi()
        reply(204)

    def api_vm_delete(self, ep, body, reply):
        self._vm_delete(lambda: reply(204))

    def api_vm_info(self, ep, body, reply):
        if self.config is None:
            self.fail(reply, ep, "VM is not created")
            return
        mem = self.config["memory"]
        zones = mem.get("zones") or []
        actual = int(mem.get("size", 0)) + sum(int(z.get("size", 0)) for z in zones)
        cfg = self.config
        if cfg.get("net"):
            cfg = dict(cfg)
            cfg["net"] = [net_mod.public(n) for n in cfg["net"]]
        info = {
            "config": cfg,
            "state": self.state if self.guest is not None else "Created",
            "memory_actual_size": actual,
        }
        reply(200, _json(info))

    def api_vm_counters(self, ep, body, reply):
        if self.guest is None:
            self.fail(reply, ep, "VM is not running")
            return
        # Devices without an id are named at boot from one counter over all of them, disks
        # first, then nets (upstream's next_device_name): _disk0, _disk1, _net2.
        counters = {}
        disk_ids = []  # per config.disks entry, in order
        unnamed = 0
        for d in self.config.get("disks") or []:
            did = d.get("id")
            if did is None:
                did, unnamed = "_disk%d" % unnamed, unnamed + 1
            disk_ids.append(did)
            counters[did] = {
                "read_bytes": 0,
                "read_ops": 0,
                "write_bytes": 0,
                "write_ops": 0,
            }
        nets = []  # (id, config.net entry)
        for n in self.config.get("net") or []:
            did = n.get("id")
            if did is None:
                did, unnamed = "_net%d" % unnamed, unnamed + 1
            nets.append((did, n))
            counters[did] = {
                "rx_bytes": 0,
                "rx_frames": 0,
                "tx_bytes": 0,
                "tx_frames": 0,
            }
        # the guest fills in what it knows (a real guest: QEMU's block statistics)
        self.guest.counters(counters, disk_ids, nets, lambda c: reply(200, _json(c)))

    def api_vm_add_net(self, ep, body, reply, fds=()):
        fds = list(fds)
        if self.config is None:
            close_fds(fds)
            self.fail(reply, ep, "VM is not created")
            return
        n = self._net_from_body(body)
        if fds:
            n["fds"] = fds  # all fds of the request, in order: one per queue pair
        n = self.schema.fill_defaults(n, self.schema.component("NetConfig"))
        trial = dict(self.config)
        trial["net"] = list(self.config.get("net") or []) + [n]
        err = net_mod.validate_config(trial)
        if err:
            net_mod.close(n)
            self.fail(reply, ep, *err)
            return
        if self.guest is None:
            # Not booted: the device joins the config and is created at vm.boot (204).
            self.config["net"] = trial["net"]
            reply(204)
            return
        err = self.guest.add_net(n)
        if not err:
            if n.get("id") is None:
                n["id"] = self._next_device_name("_net")
            err = net_mod.create_device(n, self.log)
        if not err:
            seg = n.get("pci_segment") or 0
            slot = self._pci_alloc(seg)
            if slot is None:
                err = ["Error from device manager", "Failed to find an available PCI device ID"]
        if err:
            net_mod.close(n)
            self.fail(reply, ep, *err)
            return
        self.pci_ids[n["id"]] = (seg, slot)
        self.config["net"] = trial["net"]
        self.log.info("vm: %s hotplugged at %s" % (n["id"], _bdf(seg, slot)))
        reply(200, _json({"id": n["id"], "bdf": _bdf(seg, slot)}))

    def api_vm_remove_device(self, ep, body, reply):
        did = body.get("id")
        if did is None:  # VmRemoveDeviceData.id is a plain String upstream
            reply(400, _json(["Failed to deserialize JSON", "missing field `id`"]))
            return
        if self.config is None:
            self.fail(reply, ep, "VM is not created")
            return
        found = self._find_device(did)
        if self.guest is not None:
            if found is None:
                self.fail(
                    reply,
                    ep,
                    "Error from device manager",
                    "Failed to find device corresponding to the given identifier",
                )
                return
            sec, dev = found
            if sec != "net":
                err = ["ch-emu: hot-removing a %s device is not emulated" % sec]
            else:
                err = self.guest.remove_net(dev)
            if err:
                self.fail(reply, ep, *err)
                return
            # The simulated guest ejects the device at once: slot freed, fds closed.
            seg_slot = self.pci_ids.pop(did, None)
            if seg_slot:
                self.pci_used.get(seg_slot[0], set()).discard(seg_slot[1])
        elif found is None:
            self.fail(reply, ep, "No device with id %s to remove" % json.dumps(did))
            return
        sec, dev = found
        if sec == "vsock":
            del self.config["vsock"]
        else:
            self.config[sec] = [d for d in self.config[sec] if d is not dev]
        if sec == "net":
            net_mod.close(dev)
        self.log.info("vm: device %s removed" % did)
        reply(204)

    def _net_from_body(self, body):
        """A copy of a NetConfig as upstream's serde leaves it: fds numbers in a body are never
        valid (only SCM_RIGHTS fds on vm.add-net count), mac defaults to a random local one."""
        n = dict(body)
        if n.get("fds") is not None:
            self.log.warn(
                "api: FD numbers were present in HTTP request body for device %s but will be "
                "ignored" % json.dumps(n.get("id"))
            )
        n.pop("fds", None)
        if n.get("mac") is None:
            n["mac"] = net_mod.random_mac()
        return n

    def _find_device(self, did):
        """(section, entry) of the config device with this id, or None."""
        for sec in net_mod.ID_SECTIONS:
            for d in self.config.get(sec) or []:
                if d.get("id") == did:
                    return sec, d
        v = self.config.get("vsock")
        if v and v.get("id") == did:
            return "vsock", v
        return None

    def _next_device_name(self, prefix):
        taken = set(net_mod.device_ids(self.config)) | set(self.pci_ids)
        while True:
            name = "%s%d" % (prefix, self.device_id_cnt)
            self.device_id_cnt += 1
            if name not in taken:
                return name

    def _pci_alloc(self, seg):
        used = self.pci_used.setdefault(seg, {0})  # device 0: the host bridge
        for slot in range(32):
            if slot not in used:
                used.add(slot)
                return slot
        return None

    def _pci_assign(self):
        """At every boot, like the device manager: device 0 of each segment is the host bridge,
        then the virtio console, disks, nets, rng, fs, pmem, vsock, balloon, watchdog, vDPA,
        VFIO and user devices, pvpanic each take the lowest free slot of their segment."""
        cfg = self.config
        self.pci_used = {}
        self.pci_ids = {}
        order = []
        if cfg["console"]["mode"] != "Off":
            order.append(("__console", 0))
        unnamed = 0
        for sec in ("disks", "net"):
            for d in cfg.get(sec) or []:
                order.append((d.get("id"), d.get("pci_segment") or 0))
                unnamed += d.get("id") is None
        order.append(("__rng", (cfg.get("rng") or {}).get("pci_segment") or 0))
        for sec in ("fs", "pmem"):
            for d in cfg.get(sec) or []:
                order.append((d.get("id"), d.get("pci_segment") or 0))
                unnamed += d.get("id") is None
        if cfg.get("vsock"):
            order.append((cfg["vsock"].get("id"), cfg["vsock"].get("pci_segment") or 0))
        if cfg.get("balloon"):
            order.append(("__balloon", 0))
        if cfg.get("watchdog"):
            order.append(("__watchdog", 0))
        for sec in ("vdpa", "devices", "user_devices"):
            for d in cfg.get(sec) or []:
                order.append((d.get("id"), d.get("pci_segment") or 0))
        if cfg.get("pvpanic"):
            order.append(("__pvpanic", 0))
        for did, seg in order:
            slot = self._pci_alloc(seg)
            if did is not None and slot is not None:
                self.pci_ids[did] = (seg, slot)
        self.device_id_cnt = unnamed  # names upstream gives unnamed devices at boot

    def _api_not_emulated(self, ep, body, reply):
        self.fail(reply, ep, "ch-emu: %s is not emulated" % ep)

    def _api_injected_failure(self, ep, body, reply):
        self.fail(reply, ep, "ch-emu: injected failure (chemu.fail)")

    # ---- lifecycle helpers
    def _check_boot(self):
        cfg = self.config
        cpus = cfg["cpus"]
        if cpus["boot_vcpus"] > cpus["max_vcpus"]:
            return ["Failed to validate config", "Max CPUs lower than boot CPUs"]
        p = cfg["payload"]
        if not (p.get("kernel") or p.get("firmware") or p.get("igvm")):
            return ["Failed to validate config", "No kernel specified"]
        err = net_mod.validate_config(cfg)
        if err:
            return err
        checks = [
            ("kernel", "Cannot open kernel file"),
            ("firmware", "Cannot open firmware file"),
            ("initramfs", "Cannot open the initramfs image"),
        ]
        for key, msg in checks:
            if p.get(key):
                try:
                    os.close(os.open(p[key], os.O_RDONLY | os.O_CLOEXEC))
                except OSError as e:
                    return [msg, os_error_text(e)]
        for d in cfg.get("disks") or []:
            if d.get("path"):
                flags = os.O_RDONLY if d.get("readonly") else os.O_RDWR
                try:
                    os.close(os.open(d["path"], flags | os.O_CLOEXEC))
                except OSError as e:
                    return ["Error from device manager", "Cannot open disk path", os_error_text(e)]
        for n in cfg.get("net") or []:
            err = net_mod.create_device(n, self.log)
            if err:
                return err
        return None

    def _guest_mode(self):
        return (
            self.cmd_script.str("guest")
            or os.environ.get("CH_EMU_GUEST")
            or self.env_script.str("guest")
            or "sim"
        )

    def _start_guest(self, cb):
        self.boot_count += 1
        s = self.script
        kernel = self.config["payload"].get("kernel")
        kk = kernel_kind(kernel) if kernel else None
        if self._guest_mode() == "real" and kk:
            g = QemuGuest(self, s, self.boot_count, self.config, kk)
        else:
            if self._guest_mode() == "real":
                self.log.warn(
                    "vm: real guest requested but %r is no PVH ELF or bzImage; simulating" % kernel
                )
            g = SimGuest(self, s, self.boot_count, self.config["payload"].get("cmdline", ""))
        self.guest = g
        self.state = "Running"
        self._pci_assign()
        for kind, port in self.ports.items():
            port.attach(lambda data, k=kind: self._guest_input(k, data))

        def started(err):
            if err:
                if self.guest is g:
                    self.guest = None
                    self.state = None
                cb(err)
            else:
                cb(None)

        g.start(started)

    def _drop_ports(self):
        if self.ports:
            for p in self.ports.values():
                p.shutdown()
            self.ports = None

    def _guest_input(self, kind, data):
        if self.guest is not None:
            self.guest.input(kind, data)

    def _reboot(self, cb):
        """Stop the guest, reset the console devices, start a new guest; cb(err_chain|None)."""
        g = self.guest

        def stopped():
            self.guest = None
            self.state = None
            try:
                for p in self.ports.values():
                    p.reboot()
            except PortError as e:
                self._drop_ports()
                cb(["Error creating console devices"] + e.chain)
                return

            def started(err):
                if err:
                    self._drop_ports()
                    cb(err)
                    return
                self.events.emit("vm", "rebooted")
                cb(None)

            self._start_guest(started)

        g.stop(stopped)

    def _vm_shutdown(self, cb):
        g = self.guest
        if g is None:
            cb()
            return

        def stopped():
            if self.guest is g:
                self.guest = None
                self.state = None
            self._drop_ports()
            self.events.emit("vm", "shutdown")
            cb()

        g.stop(stopped)

    def _vm_delete(self, cb):
        if self.config is None:
            cb()
            return

        def finish():
            if self.ports:  # never booted: closed, a socket file stays on disk
                for p in self.ports.values():
                    p.release()
                self.ports = None
            for n in self.config.get("net") or []:
                net_mod.close(n)
            self.config = None
            self.cmd_script = script_mod.Script()
            self.events.emit("vm", "deleted")
            cb()

        if self.guest is not None:
            self._vm_shutdown(finish)
        else:
            finish()

    def _vmm_shutdown(self, cb):
        if self.script.flag("lose_exit_events"):
            self.events.muted = True  # the real event thread is not joined at exit

        def deleted():
            self.events.emit("vmm", "shutdown")
            cb()

        self._vm_delete(deleted)

    def _arm_crash(self):
        if self.crash_timer is not None:
            return
        ms = self.script.ms("crash_after")
        if ms is not None:
            self.crash_timer = self.loop.call_later(ms / 1000.0, self._crash)

    def _crash(self):
        s = self.script
        code = s.str("exit_code")
        self.log.error("crashing on purpose (chemu.crash_after)")
        if code not in (None, ""):
            os._exit(int(code))
        name = (s.str("crash_signal") or "SEGV").upper()
        sig = getattr(signal, name if name.startswith("SIG") else "SIG" + name, signal.SIGSEGV)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)

    # ---- guest -> VMM
    def guest_output(self, kind, data):
        if self.ports and kind in self.ports:
            self.ports[kind].output(data)

    def guest_panic(self):
        self.events.emit("guest", "panic")

    def guest_poweroff(self):
        g = self.guest

        def op(done):
            if self.guest is not g or g is None:
                done()
                return
            if self.no_shutdown:
                self._vm_shutdown(done)
            else:
                self._vmm_shutdown(lambda: (self.exit(0), done()))

        self.loop.call_soon(lambda: self.enqueue(op))

    def guest_reset(self):
        g = self.guest

        def op(done):
            if self.guest is not g or g is None:
                done()
                return
            self.events.emit("vm", "rebooting")

            def rebooted(err):
                if err:
                    self.log.error("vm: reboot failed: %s" % ": ".join(err))
                    self.exit(1)
                done()

            self._reboot(rebooted)

        self.loop.call_soon(lambda: self.enqueue(op))

    def guest_failed(self, msg):
        self.log.error("vm: %s" % msg)
        os._exit(1)

    # ---- process exit
    def terminate(self, sig):
        """SIGTERM/SIGINT: graceful, like the real VMM's exit event."""
        if self.exiting:
            return
        self.log.info("vmm: signal %d, shutting down" % sig)
        self.loop.call_later(10.0, lambda: self.exit(1))
        self._vmm_shutdown(lambda: self.exit(0))

    def exit(self, code):
        if self.exit_code is None:
            self.exit_code = code
        self.exiting = True
        self.loop.stop()

    def cleanup(self):
        if self.guest is not None and isinstance(self.guest, QemuGuest):
            self.guest.kill_now()
        self._drop_ports()
        if self.config is not None:
            for n in self.config.get("net") or []:
                net_mod.close(n)
