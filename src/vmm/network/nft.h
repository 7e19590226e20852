/* mvirt's firewall rules, kept with libnftables: the only code of mvirt that knows nftables.
 *
 * Everything lives in one table of mvirt's own, "inet mvirt". It is created when missing; no
 * other table is ever read for more than its name, changed or flushed (no "flush ruleset"):
 *
 *   table inet mvirt {
 *     set bridges { type ifname; elements = { <bridge of every network with rules> } }
 *     chain forward {      type filter hook forward priority filter (0); policy accept;
 *       iifname "BR" jump net-<id> comment "net-<id>"     two per network, only these
 *       oifname "BR" jump net-<id> comment "net-<id>"
 *     }
 *     chain postrouting {  type nat hook postrouting priority srcnat (100); policy accept;
 *       oifname != "BR" ip saddr SUBNET masquerade comment "net-<id>"        nat networks
 *     }
 *     chain net-<id> {     a regular chain per network, <id> its full UUID
 *       iifname "BR" oifname "BR" accept         within the network (seen with br_netfilter)
 *       iifname "BR" oifname @bridges drop        to any other mvirt network
 *       oifname "BR" iifname @bridges drop        from any other mvirt network
 *       nat:      iifname "BR" ip saddr SUBNET accept
 *                 oifname "BR" ct state established,related accept
 *                 iifname "BR" meta nfproto ipv4 drop     spoofed sources
 *                 oifname "BR" meta nfproto ipv4 drop     new connections from outside
 *       isolated: iifname "BR" drop
 *                 oifname "BR" drop
 *     }
 *   }
 *
 * Separation: a packet of the forward hook from or to a mvirt bridge jumps to that network's
 * chain, and every net- chain decides every packet it sees (its last rules drop all that is
 * left, nat networks' IPv6 aside). Each chain drops traffic between its bridge and any bridge
 * in the set before any accept, so traffic between two networks is dropped whichever of the two
 * chains sees it first; the set holds the bridge names, so that one network's rules never
 * depend on the others (no per-pair rules). The "within the network" accept comes first because
 * with br_netfilter (Docker loads it) bridged frames between two VMs of one bridge pass the
 * forward hook with iifname = oifname = the bridge. IPv6: the struct has no IPv6 prefix yet,
 * so nat networks drop only IPv4 beyond their accepts (IPv6 is routed, not translated, and left
 * to the host, except between two networks); isolated networks drop both. BRIDGE-mode networks
 * get no rules. The input hook is never hooked: the host stays reachable (DHCP, DNS).
 *
 * Priorities are the standard ones and the base chains' policy is accept, so traffic that is
 * not from or to a mvirt bridge sees no change. An accept here ends only this table's
 * evaluation: another table's base chain on the same hook (iptables-nft, firewalld, Docker's
 * FORWARD policy drop) still sees the packet, and a drop there wins, as nftables says.
 *
 * A network's rules are exactly its chain net-<id> and the base-chain rules with the comment
 * "net-<id>": that is how remove and reconcile find them (by listing the table as JSON), also
 * those of networks that no longer exist. Every call changes the table in one nftables
 * transaction (all of it or nothing), re-asserts the base chains' types and policy and rewrites
 * the set from the networks that have rules. IPv4 forwarding must be on for nat networks
 * (nft_enable_ip_forward); when to turn it on is the caller's decision.
 *
 * Called by the network manager (network.c) on the daemon's event loop; synchronous. Silent:
 * failures fill err with the cause, libnftables' own error text included, and return -errno
 * (-EINVAL bad input, -EEXIST a bridge with another network's rules, -EPERM without
 * CAP_NET_ADMIN, -EIO for what nftables reports otherwise). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "model/netdef.h"

#define NFT_TABLE_FAMILY "inet"
#define NFT_TABLE_NAME "mvirt"
#define NFT_CHAIN_PREFIX "net-"
#define NFT_ID_LEN 36 /* a UUID, lowercase: 8-4-4-4-12 hex digits */

struct nft;

/* A network as its rules need it. Strings are borrowed for the call. */
struct nft_network {
	const char *id;         /* its UUID (lowercase) */
	const char *bridge;     /* its bridge: a valid ifname; unused in bridge mode */
	struct net_ipv4 subnet; /* host order; host bits ignored; prefix 1..32; nat only */
	enum net_mode mode;     /* NET_MODE_UNSPECIFIED counts as NET_MODE_NAT */
};

/* A libnftables context; touches no rule. *ret is written only on success. It holds a netlink
 * socket of its own, marked close-on-exec here (libnftables does not). Without CAP_NET_ADMIN
 * the calls fail with MV_ERR_DENIED; libnftables then also prints a line to stderr itself. */
int nft_open(struct nft **ret, struct mv_error *err);
void nft_close(struct nft *n);

/* Replaces the rules of network net->id with those of net (none in bridge mode), creating the
 * table when needed. Idempotent. Checks net first (MV_ERR_INVALID naming the field: "id",
 * "bridge", "subnet", "mode"); MV_ERR_EXISTS when another network's rules use the bridge
 * (remove them or reconcile). */
int nft_network_apply(struct nft *n, const struct nft_network *net, struct mv_error *err);
/* Deletes the rules of network id (MV_ERR_INVALID when id is not a UUID). 0 when it has none,
 * also when the table does not exist (which it then does not create). */
int nft_network_remove(struct nft *n, const char *id, struct mv_error *err);
/* Makes the table hold exactly the rules of nets: deletes those of every other id, rewrites
 * those of nets. Checks all of nets first (fields named "nets[i].<field>"), also that no id
 * and no bridge appears twice; nothing changes on a failure. */
int nft_reconcile(struct nft *n, const struct nft_network *nets, size_t n_nets,
		  struct mv_error *err);

/* Turns net.ipv4.ip_forward on (in the caller's network namespace) when it is off;
 * *ret_changed (may be NULL) tells whether it was off. */
int nft_enable_ip_forward(bool *ret_changed, struct mv_error *err);
