/* The network manager: managed networks (model/netdef.h) and what they are on the host.
 *
 * A nat or isolated network owns a Linux bridge (mvbr-<name> unless the user names one) that
 * carries the network's gateway address; the bridge's alias, "mvirt:<instance>:network=<id>",
 * marks it as made by this daemon's state (instance: an id of the state directory, so that two
 * daemons on one host, a test's and the real one, never take each other's bridges). A
 * bridge-mode network attaches NICs to a bridge the user made and owns nothing.
 *
 * Crash safety: a network's row is saved before its bridge is made and removed after the
 * bridge is gone, so network_manager_reconcile() at start finds every half-done create or
 * delete: it makes each stored network's bridge whole again and deletes bridges marked as
 * this instance's that no stored network owns. It never touches a link without mvirt's mark, except
 * adopting the bridge of a stored network that a crash left between creation and marking.
 *
 * Which VMs use a network is the VM manager's knowledge: callers check that before
 * network_delete(). Runs on the daemon's event loop; every call is synchronous. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "model/netdef.h"
#include "store/store.h"
#include <systemd/sd-event.h>

#define NETWORK_ALIAS_MARK "mvirt:"
#define NETWORK_INSTANCE_MAX 36
#define NETWORK_DEFAULT_NAME "default"

struct network {
	char id[37];
	char *name;
	struct net_config config; /* as the user gave it */
	struct net_plan plan;     /* its addresses, derived from config */
	char bridge[NET_IFNAME_MAX + 1];
	int64_t created_at_us;
	char status[1024]; /* "": fine; else what the last reconcile could not repair */
	struct dnsmasq
		*dns; /* its DHCP/DNS server (nat, isolated), with network_manager_set_dhcp */
};

/* Where and how networks get DHCP and DNS (network/dnsmasq.h). */
struct network_dhcp_config {
	sd_event *event;
	const char *dnsmasq;     /* absolute path of the dnsmasq binary */
	const char *runtime_dir; /* the daemon's; a network's files are in networks/<id>/ */
	const char *state_dir;
};

struct network_host {
	const char *mac;
	const char *name;
};

struct network_manager;

/* Opens rtnetlink; store is borrowed and must outlive the manager. instance: 1 to
 * NETWORK_INSTANCE_MAX characters of [A-Za-z0-9-] naming the state the bridges belong to. */
int network_manager_new(struct store *store, const char *instance, struct network_manager **ret,
			struct mv_error *err);
/* The alias that marks a network's bridge, "mvirt:<instance>:network=<id>". */
void network_bridge_alias(const struct network_manager *m, const struct network *net, char *buf,
			  size_t size);
void network_manager_free(struct network_manager *m);
/* Gives nat and isolated networks a dnsmasq each from the next reconcile or create on (without
 * it, as in unit tests, networks have no DHCP). Strings are copied. */
int network_manager_set_dhcp(struct network_manager *m, const struct network_dhcp_config *cfg);

/* Loads the stored networks and makes the host match them (see above). A network whose bridge
 * cannot be made whole is kept, with the cause logged; only a store failure fails the call. */
int network_manager_reconcile(struct network_manager *m, struct mv_error *err);

/* Checks name and c (net_config_resolve), refuses a name or bridge another network has
 * (MV_ERR_EXISTS), a subnet that overlaps another network's or a route of the host
 * (MV_ERR_INVALID naming both), a bridge name that some link of the host has (nat,
 * isolated) or that is not an existing bridge (bridge mode); then saves the network and
 * brings up its bridge with the gateway address. Nothing is left behind on failure. */
int network_create(struct network_manager *m, const char *name, const struct net_config *c,
		   const struct network **ret, struct mv_error *err);
/* Creates the network NETWORK_DEFAULT_NAME (nat) unless it exists: on subnet (a CIDR) or, when
 * NULL, on the first 10.77.N.0/24 that no other network and no route of the host overlaps. */
int network_create_default(struct network_manager *m, const char *subnet, struct mv_error *err);
/* Deletes the network's bridge (nat, isolated) and its row. MV_ERR_NOT_FOUND if there is none. */
int network_delete(struct network_manager *m, const char *name_or_id, struct mv_error *err);

/* Creates tap (tap.h: it lives as long as an fd of it is open), attaches it to the bridge of
 * network (name or id) and brings it up. Returns its fd: hand it to the hypervisor, then close
 * it. MV_ERR_PRECONDITION when the network does not exist or a link named tap does. */
int network_tap_open(struct network_manager *m, const char *network, const char *tap,
		     struct mv_error *err);

/* Tells the network's DHCP/DNS server which name each MAC has (VM NICs), so that leases carry
 * VM names and the names resolve in the network's domain. A network without DHCP: no-op. */
int network_set_hosts(struct network_manager *m, const char *network,
		      const struct network_host *hosts, size_t n);
/* The DHCP leases of the network (caller frees *ret); none without DHCP. */
struct dnsmasq_lease;
int network_leases(struct network_manager *m, const struct network *net, struct dnsmasq_lease **ret,
		   size_t *ret_n);

/* The unexpired DHCP leases of all networks, for the addresses of VM NICs (caller frees). */
int network_leases_all(struct network_manager *m, struct dnsmasq_lease **ret, size_t *ret_n);

/* By name or id; NULL if none. */
const struct network *network_find(const struct network_manager *m, const char *name_or_id);
/* The networks in name order; valid until the next create or delete. */
size_t network_count(const struct network_manager *m);
const struct network *network_at(const struct network_manager *m, size_t i);
