/* The host's network interfaces, addresses and routes over rtnetlink, with libnl-route-3:
 * the only code of mvirt that talks netlink. Synchronous (each call is one or two netlink
 * round trips of well under a millisecond) and silent: failures return -errno (-EEXIST,
 * -ENODEV, -EPERM, -EBUSY, -EINVAL, -ENOMEM, or -EIO for what netlink does not say better).
 *
 * Ownership of a link is marked in its alias (IFLA_IFALIAS, `ip link show` prints it), which
 * mvirt sets right after creating a bridge: the kernel ignores an alias in the creating
 * request. Callers that must survive a crash between the two record their intent first. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define NETLINK_ALIAS_MAX 128

struct netlink;

struct netlink_link {
	int ifindex;
	char name[16];
	char kind[16]; /* "bridge", "tun", "veth", ...; "" for a device without one */
	char alias[NETLINK_ALIAS_MAX]; /* "" when unset */
	int master;                    /* ifindex of the bridge it is attached to, 0 for none */
	bool up;                       /* IFF_UP */
};

int netlink_open(struct netlink **ret);
void netlink_close(struct netlink *nl);

/* 0 and *ret filled, or -ENODEV. */
int netlink_link_get(struct netlink *nl, const char *name, struct netlink_link *ret);
/* Calls fn for every link; stops at and returns fn's first negative return. */
int netlink_link_foreach(struct netlink *nl, int (*fn)(const struct netlink_link *, void *),
			 void *userdata);

/* Creates bridge name (-EEXIST if any link has that name), then sets its alias (when alias is
 * not NULL). On a failure after the creation the bridge is deleted again. The bridge is down
 * and has no address. */
int netlink_bridge_create(struct netlink *nl, const char *name, const char *alias);
int netlink_link_set_up(struct netlink *nl, const char *name, bool up);
int netlink_link_set_alias(struct netlink *nl, const char *name, const char *alias);
/* Attaches link name to bridge (NULL: detaches it). */
int netlink_link_set_master(struct netlink *nl, const char *name, const char *bridge);
/* -ENODEV when there is no such link. */
int netlink_link_delete(struct netlink *nl, const char *name);

/* Adds address/prefix to link name; -EEXIST if it has it. addr in host byte order. */
int netlink_addr_add_ipv4(struct netlink *nl, const char *name, uint32_t addr, uint8_t prefix);
int netlink_addr_add_ipv6(struct netlink *nl, const char *name, const uint8_t addr[16],
			  uint8_t prefix);

/* Calls fn for every IPv4 route of the main table with a destination prefix longer than 0
 * (the default route overlaps everything and is left out); dst in host byte order, dev the
 * name of the route's output link ("" when it has none or several). */
int netlink_ipv4_route_foreach(struct netlink *nl,
			       int (*fn)(uint32_t dst, uint8_t prefix, const char *dev, void *),
			       void *userdata);
