/* Tap devices for VM NICs. A tap is made without TUNSETPERSIST: it lives exactly as long as a
 * file descriptor of it is open, so once the daemon has handed its fd to cloud-hypervisor and
 * closed its own, the tap goes away with the hypervisor process (exit, crash, SIGKILL, also
 * while the daemon is down). Silent: -errno. */
#pragma once

/* Creates tap name (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, as cloud-hypervisor expects of a
 * tap fd it is given) and returns its O_CLOEXEC fd. -EBUSY when a link of that name exists
 * (IFF_TUN_EXCL: never attaches to someone else's tap), -EINVAL for a bad name, -ENOENT or
 * -EPERM when /dev/net/tun is missing or closed to the daemon. */
int tap_create(const char *name);
