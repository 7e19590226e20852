"""Network devices (VmConfig.net / vm.add-net), as cloud-hypervisor v54 handles them.

A NetConfig is backed by, in upstream's order of preference: `tap` (an interface name CH opens,
creating it if needed), `fds` (tap fds the manager passed with SCM_RIGHTS on vm.add-net, one
per queue pair), or nothing (CH creates a tap `vmtap%d` itself, which needs CAP_NET_ADMIN).
ch-emu keeps named taps as config only (it never opens or creates an interface: it must not
touch the host's network), holds fds from vm.add-net until the device goes away, and refuses a
device with neither when the device is created (at vm.boot, or at vm.add-net on a booted VM).

In the stored config `fds` holds the numbers ch-emu owns; vm.info prints each as -1, like
upstream's serializer ("FDs that can't be serialized correctly").
"""

import fcntl
import os
import random
import struct

from .serial import os_error_text

TUNGETIFF = 0x800454D2  # _IOR('T', 210, unsigned int)
TUNSETVNETHDRSZ = 0x400454D8  # _IOW('T', 216, int)
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFF_MULTI_QUEUE = 0x0100
VNET_HDR_LEN = 12  # struct virtio_net_hdr_v1, what upstream sets on every tap
MIN_MTU = 1280

CREATE_FAILED = ["Error from device manager", "Cannot create virtio-net device"]


def random_mac():
    """MacAddr::local_random(): random, locally administered, unicast (serde default)."""
    b = [random.randrange(256) for _ in range(6)]
    b[0] = (b[0] | 0x02) & 0xFE
    return ":".join("%02x" % x for x in b)


def tap_info(fd):
    """(interface name, TUN flags) of a tap fd; OSError when it is none (TUNGETIFF)."""
    ifr = bytearray(40)  # struct ifreq: char name[16]; short flags; padding
    fcntl.ioctl(fd, TUNGETIFF, ifr)
    name = bytes(ifr[:16]).split(b"\0", 1)[0].decode("utf-8", "replace")
    flags = struct.unpack_from("=H", ifr, 16)[0]
    return name, flags


def tap_counters(fd):
    """virtio-net's counters for a device on tap fd FD, read off the tap's own interface
    statistics (/proc/self/net/dev: this process's network namespace): what the guest received
    (rx) is what the host's side of the tap transmitted, and the other way round. None when FD
    is no tap (any more) or its interface is gone. Every queue pair's fd is the same interface."""
    try:
        name, _ = tap_info(fd)
        with open("/proc/self/net/dev") as f:
            lines = f.read().splitlines()[2:]  # two header lines
    except OSError:
        return None
    for line in lines:
        ifname, _, rest = line.partition(":")
        if ifname.strip() == name:
            v = [int(x) for x in rest.split()]  # receive: bytes packets ... (8); transmit: ...
            return {"rx_bytes": v[8], "rx_frames": v[9], "tx_bytes": v[0], "tx_frames": v[1]}
    return None


def open_tap_fds(net, log):
    """What virtio-net's from_tap_fds() does with each fd: TUNGETIFF (it must be an attached
    tap), O_NONBLOCK on the open file (shared with the manager's copy, as upstream), vnet header
    size 12. Returns ([(fd, name, flags)], None) or (None, error chain)."""
    out = []
    for fd in net.get("fds") or []:
        try:
            fl = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        except OSError as e:
            return None, CREATE_FAILED + [
                "Using existing tap",
                "Unable to configure tap interface",
                os_error_text(e),
            ]
        try:
            name, flags = tap_info(fd)
        except OSError as e:
            err = os_error_text(e)
            return None, CREATE_FAILED + [
                "Using existing tap",
                "ioctl (%d) failed: %s" % (TUNGETIFF, err),
                err,
            ]
        if not flags & IFF_TAP:
            log.warn("net: %s: fd %d is a tun, not a tap device (%s)" % (net.get("id"), fd, name))
        if not flags & IFF_VNET_HDR:
            log.warn(
                "net: %s: tap %s was opened without IFF_VNET_HDR; cloud-hypervisor cannot add "
                "it to an attached fd and the guest's packets would be garbled"
                % (net.get("id"), name)
            )
        try:
            fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("=i", VNET_HDR_LEN))
        except OSError as e:
            err = os_error_text(e)
            return None, CREATE_FAILED + [
                "Using existing tap",
                "ioctl (%d) failed: %s" % (TUNSETVNETHDRSZ, err),
                err,
            ]
        out.append((fd, name, flags))
    return out, None


def create_device(net, log):
    """Device creation checks (vm.boot for config devices, vm.add-net when booted):
    None or an error chain."""
    if net.get("vhost_user"):
        return None  # the socket belongs to a backend; nothing ch-emu can check
    if net.get("tap"):
        return None  # named taps stay config only (see module doc)
    if net.get("fds"):
        taps, err = open_tap_fds(net, log)
        if err:
            return err
        for fd, name, flags in taps:
            log.info("net: %s: fd %d is tap %s (flags 0x%x)" % (net.get("id"), fd, name, flags))
        return None
    return CREATE_FAILED + [
        "ch-emu: net device %s has neither tap nor fds: cloud-hypervisor would create a tap "
        "itself (needs CAP_NET_ADMIN); not emulated, pass a tap fd with vm.add-net"
        % (net.get("id") or "without id")
    ]


def validate(cfg, net):
    """NetConfig::validate(): None or the ValidationError text."""
    nq = net.get("num_queues", 2)
    fds = net.get("fds")
    if nq < 2:
        return "Number of queues to virtio_net less than 2"
    if fds is not None and len(fds) * 2 != nq:
        return "Number of queues to virtio_net does not match the number of input FDs"
    for fd in fds or []:
        if fd <= 2:
            return "Reserved fd number (<= 2)"
    if nq // 2 > cfg["cpus"]["boot_vcpus"]:
        return "Number of vCPUs is insufficient for number of queues"
    if net.get("vhost_user") and net.get("iommu"):
        return "Device does not support being placed behind IOMMU"
    platform = cfg.get("platform")
    seg = net.get("pci_segment") or 0
    if platform is not None and seg >= (platform.get("num_pci_segments") or 1):
        return "Invalid PCI segment id: %d" % seg
    if net.get("mtu") is not None and net["mtu"] < MIN_MTU:
        return "Provided MTU %d is lower than %d (expected by VIRTIO specification)" % (
            net["mtu"],
            MIN_MTU,
        )
    if not net.get("offload_csum", True) and (
        net.get("offload_tso", True) or net.get("offload_ufo", True)
    ):
        return '"offload_tso" and "offload_ufo" depend on "offload_csum"'
    return None


# VmConfig sections whose entries carry an `id` (VmConfig::validate's identifier list).
ID_SECTIONS = (
    "disks",
    "net",
    "fs",
    "pmem",
    "devices",
    "user_devices",
    "vdpa",
    "generic_vhost_user",
)


def device_ids(cfg):
    ids = []
    for sec in ID_SECTIONS:
        for d in cfg.get(sec) or []:
            if d.get("id") is not None:
                ids.append(d["id"])
    if cfg.get("vsock") and cfg["vsock"].get("id") is not None:
        ids.append(cfg["vsock"]["id"])
    return ids


def validate_config(cfg):
    """The parts of VmConfig::validate() that concern net devices: each NetConfig, then unique
    identifiers. None or ["Failed to validate config", text]."""
    for n in cfg.get("net") or []:
        err = validate(cfg, n)
        if err:
            return ["Failed to validate config", err]
    seen = set()
    for i in device_ids(cfg):
        if i in seen:
            return ["Failed to validate config", "Identifier %s is not unique" % i]
        seen.add(i)
    return None


def public(net):
    """A NetConfig as vm.info prints it: fds as -1 each."""
    if net.get("fds") is None:
        return net
    out = dict(net)
    out["fds"] = [-1] * len(net["fds"])
    return out


def close(net):
    fds = net.pop("fds", None) or []
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
