"""Net devices backed by tap fds passed with SCM_RIGHTS (vm.add-net), as cloud-hypervisor v54
takes them (vmm/src/api/http/http_endpoint.rs upstream): the fds travel as ancillary data of
the request's first sendmsg, vm.add-net gives all of them to the new device, vm.create drops
any `fds` of its net entries.

Run: /usr/bin/python3 -m pytest tests/ch-emu
The taps live in a network namespace each test creates (and deletes): a helper process enters
only that namespace (nsenter --net, so /dev/net/tun keeps its path) and hands the tap fd back
over a socketpair. No interface is ever created in the machine's own namespace. Needs root (or
CAP_SYS_ADMIN + CAP_NET_ADMIN), `ip` and `nsenter`; skipped otherwise.
"""

import fcntl
import http.client
import json
import os
import shutil
import socket
import subprocess
import uuid

import pytest
from test_ch_emu import (  # noqa: F401  (emu, emus and tinyguest are fixtures)
    _children,
    _fd_targets,
    api_error,
    emu,
    emus,
    tinyguest,
    vm_config,
    wait_for,
)

IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TAP_FLAGS = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR  # what the mvirt daemon opens

# Runs inside the namespace: open a tap like the daemon does, pass the fd back on fd argv[1].
_OPEN_TAP = r"""
import fcntl, os, socket, struct, sys
s = socket.socket(fileno=int(sys.argv[1]))
fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH22x", sys.argv[2].encode(), int(sys.argv[3])))
socket.send_fds(s, [b"tap"], [fd])
"""


# ---------------------------------------------------------------- helpers
@pytest.fixture
def netns():
    """A fresh network namespace (deleted afterwards) and a tap opener inside it."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace and taps")
    for tool in ("ip", "nsenter"):
        if not shutil.which(tool):
            pytest.skip("%s not installed" % tool)
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun")
    name = "chemu-%s" % uuid.uuid4().hex[:8]
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot create a network namespace: %s" % r.stderr.strip())
    ns = NetNs(name)
    try:
        yield ns
    finally:
        for fd in ns.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


class NetNs:
    def __init__(self, name):
        self.name = name
        self.fds = []

    def open_tap(self, ifname, flags=TAP_FLAGS):
        """A tap fd (our copy, close-on-exec) for a new tap `ifname` in this namespace."""
        ours, theirs = socket.socketpair()
        try:
            subprocess.run(
                [
                    "nsenter",
                    "--net=/run/netns/%s" % self.name,
                    "/usr/bin/python3",
                    "-c",
                    _OPEN_TAP,
                    str(theirs.fileno()),
                    ifname,
                    str(flags),
                ],
                pass_fds=(theirs.fileno(),),
                check=True,
                timeout=30,
            )
            theirs.close()
            _, fds, _, _ = socket.recv_fds(ours, 16, 4)
        finally:
            ours.close()
        assert len(fds) == 1
        os.set_inheritable(fds[0], False)
        self.fds.append(fds[0])
        return fds[0]

    def close(self, fd):
        self.fds.remove(fd)
        os.close(fd)

    def has_link(self, ifname):
        r = subprocess.run(
            ["ip", "-n", self.name, "link", "show", ifname], capture_output=True, timeout=10
        )
        return r.returncode == 0


def call_fds(api, method, endpoint, body=None, fds=(), timeout=10.0):
    """One request with fds as SCM_RIGHTS on the sendmsg of its head, as a manager sends it."""
    data = b"" if body is None else json.dumps(body).encode()
    head = "%s /api/v1/%s HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n" % (method, endpoint)
    if body is not None:
        head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
    head = (head + "\r\n").encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(api))
        if fds:
            assert socket.send_fds(s, [head], list(fds)) == len(head)
        else:
            s.sendall(head)
        s.sendall(data)
        r = http.client.HTTPResponse(s)
        r.begin()
        raw = r.read()
    finally:
        s.close()
    return r.status, (json.loads(raw) if raw else None)


def tun_fds(pid):
    return sorted(fd for fd, t in _fd_targets(pid).items() if t == "/dev/net/tun")


NET_ERR = "The network device could not be added to the VM"
RM_ERR = "The device could not be removed from the VM"
NEITHER = "has neither tap nor fds"


# ---------------------------------------------------------------- simulated guest
def test_add_net_before_boot_info_remove(emu, tmp_path, netns):
    e = emu()
    assert e.call("PUT", "vm.create", vm_config(tmp_path)) == (204, None)
    tap = netns.open_tap("chemu0")
    body = {"id": "net0", "mac": "52:54:00:12:34:56"}
    # Not booted: the device joins the config, created at vm.boot (upstream answers 204).
    assert call_fds(e.api, "PUT", "vm.add-net", body, [tap]) == (204, None)
    held = wait_for(lambda: tun_fds(e.proc.pid), 5, "ch-emu holding the tap")
    assert len(held) == 1

    st, info = e.call("GET", "vm.info")
    n = info["config"]["net"]
    assert st == 200 and len(n) == 1
    assert n[0]["id"] == "net0" and n[0]["mac"] == "52:54:00:12:34:56"
    assert n[0]["fds"] == [-1]  # upstream serializes fds as invalid ones
    assert n[0]["num_queues"] == 2 and "tap" not in n[0]

    assert e.call("PUT", "vm.boot") == (204, None)
    assert e.state() == "Running"
    # Like upstream's from_tap_fds(): O_NONBLOCK on the (shared) open file description.
    assert fcntl.fcntl(tap, fcntl.F_GETFL) & os.O_NONBLOCK
    netns.close(tap)  # the manager may drop its copy: the hypervisor keeps the tap alive
    assert netns.has_link("chemu0")
    assert tun_fds(e.proc.pid) == held
    st, counters = e.call("GET", "vm.counters")
    assert counters["net0"] == {"rx_bytes": 0, "rx_frames": 0, "tx_bytes": 0, "tx_frames": 0}

    # A reboot and a hard stop keep the device (the config holds the fds).
    assert e.call("PUT", "vm.reboot") == (204, None)
    assert e.call("PUT", "vm.shutdown") == (204, None)
    assert tun_fds(e.proc.pid) == held
    assert e.call("PUT", "vm.boot") == (204, None)

    assert e.call("PUT", "vm.remove-device", {"id": "net0"}) == (204, None)
    assert e.call("GET", "vm.info")[1]["config"]["net"] == []
    assert tun_fds(e.proc.pid) == []
    wait_for(lambda: not netns.has_link("chemu0"), 5, "tap gone with its last fd")
    assert e.call("PUT", "vm.remove-device", {"id": "net0"}) == (
        500,
        [
            "Error from API",
            RM_ERR,
            "Error from device manager",
            "Failed to find device corresponding to the given identifier",
        ],
    )


def test_hotplug_on_running_vm(emu, tmp_path, netns):
    e = emu()
    e.call("PUT", "vm.create", vm_config(tmp_path))
    assert e.call("PUT", "vm.boot") == (204, None)
    t1 = netns.open_tap("chemu1")
    # console Off, no disk: rng is 00:01.0, the hotplugged NIC takes the lowest free slot
    st, body = call_fds(e.api, "PUT", "vm.add-net", {"id": "net1", "num_queues": 2}, [t1])
    assert (st, body) == (200, {"id": "net1", "bdf": "0000:00:02.0"})
    assert len(tun_fds(e.proc.pid)) == 1
    info = e.call("GET", "vm.info")[1]["config"]["net"]
    assert [n["id"] for n in info] == ["net1"] and info[0]["fds"] == [-1]

    # A duplicate id fails config validation; the fds of the failed request are closed.
    t2 = netns.open_tap("chemu2")
    st, body = api_error(call_fds(e.api, "PUT", "vm.add-net", {"id": "net1"}, [t2]))
    assert (st, body) == (
        500,
        ["Error from API", NET_ERR, "Failed to validate config", "Identifier net1 is not unique"],
    )
    assert len(tun_fds(e.proc.pid)) == 1

    # Without an id the VMM names the device.
    st, body = call_fds(e.api, "PUT", "vm.add-net", {}, [t2])
    assert st == 200 and body["id"].startswith("_net") and body["bdf"] == "0000:00:03.0"
    assert len(tun_fds(e.proc.pid)) == 2

    assert e.call("PUT", "vm.remove-device", {"id": "net1"}) == (204, None)
    assert len(tun_fds(e.proc.pid)) == 1
    st, body = call_fds(e.api, "PUT", "vm.add-net", {"id": "net1"}, [t1])
    assert (st, body) == (200, {"id": "net1", "bdf": "0000:00:02.0"})  # slot freed, reused

    # vm.delete closes every fd the VMM holds
    assert e.call("PUT", "vm.delete") == (204, None)
    assert tun_fds(e.proc.pid) == []


def test_add_net_validation_and_device_errors(emu, tmp_path, netns):
    e = emu()
    tap = netns.open_tap("chemu3")
    # no VM yet: 404, nothing kept
    assert call_fds(e.api, "PUT", "vm.add-net", {"id": "net0"}, [tap]) == (
        404,
        ["Error from API", NET_ERR, "VM is not created"],
    )
    assert tun_fds(e.proc.pid) == []
    e.call("PUT", "vm.create", vm_config(tmp_path))

    # num_queues must be 2 x fds (default 2: one fd)
    st, body = call_fds(e.api, "PUT", "vm.add-net", {"id": "net0", "num_queues": 4}, [tap])
    assert st == 500 and body[2:] == [
        "Failed to validate config",
        "Number of queues to virtio_net does not match the number of input FDs",
    ]
    two = [tap, tap]  # validation comes before any check of the fds themselves
    st, body = call_fds(e.api, "PUT", "vm.add-net", {"id": "net0"}, two)
    assert body[-1] == "Number of queues to virtio_net does not match the number of input FDs"
    st, body = call_fds(e.api, "PUT", "vm.add-net", {"id": "net0", "num_queues": 4}, two)
    assert st == 500 and body[-1] == "Number of vCPUs is insufficient for number of queues"
    st, body = call_fds(e.api, "PUT", "vm.add-net", {"id": "net0", "mtu": 1000}, [tap])
    assert body[-1] == "Provided MTU 1000 is lower than 1280 (expected by VIRTIO specification)"
    assert tun_fds(e.proc.pid) == []

    # Neither tap nor fds (fds in the body never count): accepted cold, refused at boot, where
    # cloud-hypervisor would create a tap itself.
    assert call_fds(e.api, "PUT", "vm.add-net", {"id": "net0", "fds": [5]}) == (204, None)
    n = e.call("GET", "vm.info")[1]["config"]["net"][0]
    assert "fds" not in n and "tap" not in n
    st, body = api_error(e.call("PUT", "vm.boot"))
    assert st == 500 and body[:5] == [
        "Error from API",
        "The VM could not boot",
        "Error from device manager",
        "Cannot create virtio-net device",
        body[4],
    ]
    assert NEITHER in body[4]
    assert e.state() == "Created"
    assert e.call("PUT", "vm.remove-device", {"id": "net0"}) == (204, None)  # config only
    assert e.call("PUT", "vm.remove-device", {"id": "net0"}) == (
        500,
        ["Error from API", RM_ERR, 'No device with id "net0" to remove'],
    )
    assert e.call("PUT", "vm.remove-device", {})[0] == 400  # id is required upstream

    # On a running VM the device is created at once: errors come from vm.add-net itself.
    assert e.call("PUT", "vm.boot") == (204, None)
    st, body = api_error(call_fds(e.api, "PUT", "vm.add-net", {"id": "net9"}))
    assert st == 500 and body[1] == NET_ERR and NEITHER in body[-1]
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        st, body = call_fds(e.api, "PUT", "vm.add-net", {"id": "net9"}, [null])
    finally:
        os.close(null)
    assert st == 500 and body[2:] == [
        "Error from device manager",
        "Cannot create virtio-net device",
        "Using existing tap",
        "ioctl (2147767506) failed: Inappropriate ioctl for device (os error 25)",
        "Inappropriate ioctl for device (os error 25)",
    ]
    assert [fd for fd, t in _fd_targets(e.proc.pid).items() if t == "/dev/null" and fd > 2] == []
    assert e.call("GET", "vm.info")[1]["config"]["net"] == []


def test_fds_only_on_add_net(emu, tmp_path, netns):
    e = emu()
    tap = netns.open_tap("chemu4")
    # vm.create: the fds sent with it and the `fds` numbers of its nets are both dropped
    cfg = vm_config(tmp_path, net=[{"id": "net0", "fds": [-1]}, {"id": "net1", "tap": "tapx"}])
    assert call_fds(e.api, "PUT", "vm.create", cfg, [tap]) == (204, None)
    assert tun_fds(e.proc.pid) == []
    nets = e.call("GET", "vm.info")[1]["config"]["net"]
    assert "fds" not in nets[0] and nets[1]["tap"] == "tapx"
    assert all(n["mac"] for n in nets)  # serde default: a random local MAC
    st, body = api_error(e.call("PUT", "vm.boot"))
    assert st == 500 and NEITHER in body[-1] and "net0" in body[-1]
    assert e.call("PUT", "vm.remove-device", {"id": "net0"}) == (204, None)
    # a named tap keeps working as before (config only: ch-emu never opens host interfaces)
    assert call_fds(e.api, "PUT", "vm.boot", None, [tap]) == (204, None)  # fds closed
    assert tun_fds(e.proc.pid) == []
    assert e.state() == "Running"

    # the schema knows NetConfig.fds (i32s, not in the v54 yaml) but still types it
    e2 = emu()
    st, body = api_error(e2.call("PUT", "vm.create", vm_config(tmp_path, net=[{"fds": "x"}])))
    assert st == 400 and body[-1] == 'net[0].fds: invalid type: string "x", expected a sequence'
    st, body = api_error(e2.call("PUT", "vm.create", vm_config(tmp_path, net=[{"fdz": 1}])))
    assert st == 400 and "`fds`" in body[-1]


def test_fds_go_to_the_request_that_carried_them(emu, tmp_path, netns):
    """Pipelined requests on one keep-alive connection: the fds belong to the request whose
    sendmsg carried them, not to the one before or after it."""
    e = emu()
    e.call("PUT", "vm.create", vm_config(tmp_path))
    tap = netns.open_tap("chemu7")
    body = json.dumps({"id": "net0"}).encode()

    def put(ep, data=b""):
        h = "PUT /api/v1/%s HTTP/1.1\r\nHost: localhost\r\n" % ep
        if data:
            h += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
        return (h + "\r\n").encode()

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(e.api))
    try:
        s.sendall(put("vm.pause"))  # answered 500 (not running): takes no fds
        socket.send_fds(s, [put("vm.add-net", body)], [tap])
        s.sendall(body + put("vm.boot"))
        f = s.makefile("rb")  # one buffered reader for all three responses
        statuses = []
        for _ in range(3):
            status = int(f.readline().split()[1])
            length = 0
            for line in iter(f.readline, b"\r\n"):
                k, _, v = line.decode().partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v)
            f.read(length)
            statuses.append(status)
        f.close()
    finally:
        s.close()
    assert statuses == [500, 204, 204]
    n = e.call("GET", "vm.info")[1]["config"]["net"][0]
    assert n["id"] == "net0" and n["fds"] == [-1]
    assert len(tun_fds(e.proc.pid)) == 1


# ---------------------------------------------------------------- real guest (QEMU)
def test_real_guest_gets_the_tap_fd(emu, tmp_path, netns, tinyguest):
    e = emu(env={"CH_EMU_GUEST": "real"})
    cfg = vm_config(tmp_path)
    cfg["payload"] = {"kernel": str(tinyguest), "cmdline": "tg.tick=0"}
    e.call("PUT", "vm.create", cfg)
    tap = netns.open_tap("chemu5")
    mac = "52:54:00:ab:cd:ef"
    assert call_fds(e.api, "PUT", "vm.add-net", {"id": "net0", "mac": mac}, [tap]) == (204, None)
    held = tun_fds(e.proc.pid)
    assert len(held) == 1
    st, body = e.call("PUT", "vm.boot", timeout=30)
    assert (st, body) == (204, None), body
    qemu = wait_for(lambda: _children(e.proc.pid), 5, "qemu child")[0]
    # QEMU inherited the very fd ch-emu holds, with the same number
    assert tun_fds(qemu) == held
    argv = open("/proc/%d/cmdline" % qemu, "rb").read().split(b"\0")
    assert b"tap,id=nic0,fd=%d" % held[0] in argv
    assert b"virtio-net-device,netdev=nic0,mac=" + mac.encode() in argv

    # hotplug / hot-unplug need QEMU's monitor and a hotplug bus: refused clearly
    t2 = netns.open_tap("chemu6")
    st, body = api_error(call_fds(e.api, "PUT", "vm.add-net", {"id": "net1"}, [t2]))
    assert st == 500 and body[1] == NET_ERR and "not emulated" in body[-1]
    st, body = api_error(e.call("PUT", "vm.remove-device", {"id": "net0"}))
    assert st == 500 and "not emulated" in body[-1]
    assert tun_fds(e.proc.pid) == held

    assert e.call("PUT", "vmm.shutdown", timeout=30)[0] == 200
    assert e.wait(30) == 0
    netns.close(tap)
    wait_for(lambda: not netns.has_link("chemu5"), 10, "tap gone with ch-emu and QEMU")
