/* The plain data model of a managed network (issue 9: the network manager) and its pure
 * checks: IPv4/IPv6 prefixes, the DHCP range, bridge and domain names, overlap between
 * subnets. No I/O: whether a bridge exists or a host route collides is the network manager's
 * business, with the helpers here (net_ipv4_overlaps).
 *
 * Ownership as in vmdef.h: every char * is owned by the struct, NULL for "unset";
 * net_config_done() frees the members; an empty string counts as unset, like proto3. Silent;
 * failures return -EINVAL with a message naming the field ("config.ipv4_subnet: ...") and the
 * cause, of kind MV_ERR_INVALID. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define NET_NAME_MAX 31
#define NET_IFNAME_MAX 15 /* IFNAMSIZ - 1 */
#define NET_DOMAIN_MAX 253
#define NET_BRIDGE_PREFIX "mvbr-"
#define NET_DOMAIN_SUFFIX ".mvirt" /* the default domain: name + NET_DOMAIN_SUFFIX */

enum net_mode {
	NET_MODE_UNSPECIFIED = 0, /* values match mvirt.NetworkMode; means NAT */
	NET_MODE_NAT = 1,         /* masquerade to the host's uplink */
	NET_MODE_ISOLATED = 2,    /* the VMs and the host only */
	NET_MODE_BRIDGE = 3,      /* an existing host bridge; no addresses, no DHCP from mvirt */
};

/* An IPv4 prefix, addresses in host byte order. */
struct net_ipv4 {
	uint32_t addr; /* as written: the network, or (Incus style) the gateway inside it */
	uint8_t prefix;
};

struct net_ipv6 {
	uint8_t addr[16];
	uint8_t prefix;
};

struct net_config {
	enum net_mode mode;
	char *bridge;      /* the Linux bridge; NULL: NET_BRIDGE_PREFIX + name (nat, isolated) */
	char *ipv4_subnet; /* CIDR: "10.77.0.0/24" (gateway .1) or "10.77.0.254/24" (the gateway) */
	char *dhcp_start;  /* NULL: the first address after the gateway... */
	char *dhcp_end;    /* ...NULL: the last one before the broadcast address */
	char *ipv6_prefix; /* optional: "fd42:1::/64" (router advertisements, DHCPv6) */
	char *domain;      /* NULL: "<name>.mvirt", derived by the caller */
};

/* The addresses a valid config stands for, derived by net_config_resolve(). */
struct net_plan {
	struct net_ipv4 subnet;        /* the network: host bits zero */
	uint32_t gateway;              /* the bridge's address */
	uint32_t dhcp_start, dhcp_end; /* inclusive; never containing the gateway */
	bool has_ipv6;
	struct net_ipv6 ipv6; /* host bits zero */
};

/* Frees the members of c (which may be NULL) and zeroes it. */
void net_config_done(struct net_config *c);
/* Deep copy of src into dst (not initialized); -ENOMEM leaves dst zeroed. */
int net_config_copy(struct net_config *dst, const struct net_config *src);

/* "nat" (also for NET_MODE_UNSPECIFIED), "isolated", "bridge"; "unknown" for anything else. */
const char *net_mode_name(enum net_mode mode);

/* Names match ^[a-z0-9][a-z0-9-]{0,30}$ (they become part of interface and domain names).
 * field: how messages name it, NULL for "name". */
int net_validate_name(const char *name, const char *field, struct mv_error *err);
/* An interface name: 1..15 characters of [A-Za-z0-9_.-], not "." or "..". field: as above,
 * NULL for "ifname". */
int net_validate_ifname(const char *ifname, const char *field, struct mv_error *err);

/* The parsers return 0 or -EINVAL and write *ret only on success; nothing may follow the
 * text, no spaces. */
/* Strict dotted quad ("10.0.0.1": four decimal octets 0..255, no leading zeros but "0"). */
int net_ipv4_parse(const char *s, uint32_t *ret);
/* "A.B.C.D/N", N 0..32 in decimal without leading zeros; addr kept as written. */
int net_ipv4_cidr_parse(const char *s, struct net_ipv4 *ret);
/* "xxxx::/N" (inet_pton syntax), N 1..128 in decimal without leading zeros; addr as
 * written. */
int net_ipv6_cidr_parse(const char *s, struct net_ipv6 *ret);
/* Dotted quad of addr (host order) in buf (at least 16 bytes). */
const char *net_ipv4_format(uint32_t addr, char *buf);
/* The netmask of prefix (0: 0, 32 or more: all ones). */
uint32_t net_ipv4_mask(uint8_t prefix);
/* Whether two IPv4 prefixes share an address (host bits of addr are ignored). */
bool net_ipv4_overlaps(const struct net_ipv4 *a, const struct net_ipv4 *b);

/* Checks c for a network named name and derives its addresses into *ret (may be NULL; written
 * only on success, all zero in bridge mode). Reports the first problem, in field order.
 * Rules: name valid (net_validate_name, named "name"); mode known; bridge mode needs a valid
 * bridge and takes no addresses, DHCP range or domain; nat and isolated take an optional
 * bridge (a valid ifname; unset, NET_BRIDGE_PREFIX + name must fit NET_IFNAME_MAX) and need
 * ipv4_subnet, a prefix of 8..30 not overlapping 0.0.0.0/8, loopback, link-local, multicast
 * or reserved (240/4) space. Written with host bits set ("10.77.0.254/24"), its address is
 * the gateway (not the broadcast address); with host bits zero the gateway is network + 1.
 * The DHCP range: each end set is a strict address inside the subnet, not the network,
 * gateway or broadcast address; start <= end and the range does not contain the gateway.
 * Neither set: gateway + 1 .. broadcast - 1, or network + 1 .. gateway - 1 when the gateway
 * is the last host address; one set: the other end extends it to the gateway or the edge of
 * the subnet on its side. An IPv6 prefix of 1..64 (RA needs /64 or shorter) not overlapping
 * link-local, loopback or multicast space (host bits are dropped in the plan); a domain of
 * dot-separated labels ([a-z0-9-], 1..63, not starting or ending with '-'), or unset when
 * name + NET_DOMAIN_SUFFIX is one (the name does not end with '-'). Fields are named
 * prefix + "<field>": NULL for "config.", "" for none (the name is always "name"). */
int net_config_resolve(const char *name, const struct net_config *c, const char *prefix,
		       struct net_plan *ret, struct mv_error *err);
