/* The network manager (network.h): the table of networks, their rows, their bridges. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-id128.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/fs.h"
#include "network/dnsmasq.h"
#include "network/netlink.h"
#include "network/nft.h"
#include "network/tap.h"
#include "network/network.h"

struct network_manager {
	struct store *store;
	char alias_prefix[64]; /* "mvirt:<instance>:network=" */
	struct netlink *nl;
	struct nft *nft;
	struct network **nets; /* sorted by name */
	size_t n;
	/* network_manager_set_dhcp */
	sd_event *event;
	char *dnsmasq, *run_networks, *state_networks; /* <dir>/networks */
};

static bool owns_bridge(const struct network *net)
{
	return net->config.mode != NET_MODE_BRIDGE;
}

static void network_free(struct network *net)
{
	if (!net)
		return;
	dnsmasq_free(net->dns);
	free(net->name);
	net_config_done(&net->config);
	free(net);
}

int network_manager_new(struct store *store, const char *instance, struct network_manager **ret,
			struct mv_error *err)
{
	size_t len = instance ? strlen(instance) : 0;
	struct network_manager *m;
	int r;

	if (len == 0 || len > NETWORK_INSTANCE_MAX ||
	    strspn(instance, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
		    len)
		return mv_err_invalid(err, "network manager: bad instance id '%s'",
				      strempty(instance));
	if (!(m = calloc(1, sizeof(*m))))
		return mv_err_oom(err);
	m->store = store;
	snprintf(m->alias_prefix, sizeof(m->alias_prefix),
		 NETWORK_ALIAS_MARK "%s:network=", instance);
	r = netlink_open(&m->nl);
	if (r < 0) {
		free(m);
		return mv_err_internal(err, r, "network manager: cannot open rtnetlink: %m");
	}
	r = nft_open(&m->nft, err);
	if (r < 0) {
		netlink_close(m->nl);
		free(m);
		return mv_err_prefix(err, "network manager: "), r;
	}
	*ret = m;
	return 0;
}

void network_manager_free(struct network_manager *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		network_free(m->nets[i]);
	free(m->nets);
	netlink_close(m->nl);
	nft_close(m->nft);
	sd_event_unref(m->event);
	free(m->dnsmasq);
	free(m->run_networks);
	free(m->state_networks);
	free(m);
}

int network_manager_set_dhcp(struct network_manager *m, const struct network_dhcp_config *cfg)
{
	if (!(m->dnsmasq = strdup(cfg->dnsmasq)) ||
	    asprintf(&m->run_networks, "%s/networks", cfg->runtime_dir) < 0 ||
	    asprintf(&m->state_networks, "%s/networks", cfg->state_dir) < 0)
		return -ENOMEM;
	m->event = sd_event_ref(cfg->event);
	return 0;
}

/* The network's firewall rules (nft.h: NAT and separation; none in bridge mode), and for NAT
 * IPv4 forwarding, which is on for the whole host (namespace) from then on, as with libvirt. */
static int apply_rules(struct network_manager *m, const struct network *net, struct mv_error *err)
{
	bool changed = false;
	int r;

	r = nft_network_apply(m->nft,
			      &(struct nft_network){.id = net->id,
						    .bridge = net->bridge,
						    .subnet = net->plan.subnet,
						    .mode = net->config.mode},
			      err);
	if (r < 0)
		return mv_err_prefix(err, "firewall rules: "), r;
	if (net->config.mode == NET_MODE_BRIDGE || net->config.mode == NET_MODE_ISOLATED)
		return 0;
	r = nft_enable_ip_forward(&changed, err);
	if (r < 0)
		return r;
	if (changed)
		log_notice("network %s: turned on net.ipv4.ip_forward for NAT", net->name);
	return 0;
}

/* The network's dnsmasq, adopted or started (nat, isolated; once DHCP is configured). */
static int start_dns(struct network_manager *m, struct network *net, struct mv_error *err)
{
	_cleanup_free_ char *rundir = NULL, *statedir = NULL, *domain = NULL;
	struct dnsmasq_params p;

	if (!m->event || !owns_bridge(net) || net->dns)
		return 0;
	if (asprintf(&rundir, "%s/%s", m->run_networks, net->id) < 0 ||
	    asprintf(&statedir, "%s/%s", m->state_networks, net->id) < 0 ||
	    asprintf(&domain, "%s", isempty(net->config.domain) ? "" : net->config.domain) < 0)
		return mv_err_oom(err);
	if (!*domain) {
		free(domain);
		if (asprintf(&domain, "%s" NET_DOMAIN_SUFFIX, net->name) < 0)
			return domain = NULL, mv_err_oom(err);
	}
	p = (struct dnsmasq_params){
		.event = m->event,
		.binary = m->dnsmasq,
		.name = net->name,
		.rundir = rundir,
		.statedir = statedir,
		.bridge = net->bridge,
		.domain = domain,
		.plan = &net->plan,
		.isolated = net->config.mode == NET_MODE_ISOLATED,
	};
	return dnsmasq_new(&p, &net->dns, err);
}

int network_set_hosts(struct network_manager *m, const char *network,
		      const struct network_host *hosts, size_t n)
{
	const struct network *net = network_find(m, network);

	_Static_assert(sizeof(struct network_host) == sizeof(struct dnsmasq_host), "same layout");
	if (!net || !net->dns)
		return 0;
	return dnsmasq_set_hosts(net->dns, (const struct dnsmasq_host *)hosts, n);
}

int network_leases(struct network_manager *m, const struct network *net, struct dnsmasq_lease **ret,
		   size_t *ret_n)
{
	(void)m;
	*ret = NULL;
	*ret_n = 0;
	return net->dns ? dnsmasq_leases(net->dns, ret, ret_n) : 0;
}

int network_leases_all(struct network_manager *m, struct dnsmasq_lease **ret, size_t *ret_n)
{
	_cleanup_free_ struct dnsmasq_lease *all = NULL;
	size_t n = 0;
	time_t now = time(NULL);

	*ret = NULL;
	*ret_n = 0;
	for (size_t i = 0; m && i < m->n; i++) {
		_cleanup_free_ struct dnsmasq_lease *v = NULL;
		struct dnsmasq_lease *grown;
		size_t k = 0;

		if (network_leases(m, m->nets[i], &v, &k) < 0 || k == 0)
			continue; /* a lease file being rewritten: its addresses show next time */
		if (!(grown = reallocarray(all, n + k, sizeof(*all))))
			return -ENOMEM;
		all = grown;
		for (size_t j = 0; j < k; j++)
			if (v[j].expires == 0 || v[j].expires > now)
				all[n++] = v[j];
	}
	*ret = TAKE_PTR(all);
	*ret_n = n;
	return 0;
}

const struct network *network_find(const struct network_manager *m, const char *name_or_id)
{
	if (!name_or_id)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (streq(m->nets[i]->name, name_or_id) || streq(m->nets[i]->id, name_or_id))
			return m->nets[i];
	return NULL;
}

size_t network_count(const struct network_manager *m)
{
	return m->n;
}

const struct network *network_at(const struct network_manager *m, size_t i)
{
	return i < m->n ? m->nets[i] : NULL;
}

static int table_add(struct network_manager *m, struct network *net)
{
	struct network **nets = realloc(m->nets, (m->n + 1) * sizeof(*nets));
	size_t i;

	if (!nets)
		return -ENOMEM;
	m->nets = nets;
	for (i = m->n; i > 0 && strcmp(nets[i - 1]->name, net->name) > 0; i--)
		nets[i] = nets[i - 1];
	nets[i] = net;
	m->n++;
	return 0;
}

static void table_remove(struct network_manager *m, const struct network *net)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->nets[i] == net) {
			memmove(&m->nets[i], &m->nets[i + 1], (m->n - i - 1) * sizeof(*m->nets));
			m->n--;
			return;
		}
}

/* net->bridge from the config: the user's name, or NET_BRIDGE_PREFIX + name. */
static void set_bridge_name(struct network *net)
{
	if (!isempty(net->config.bridge))
		snprintf(net->bridge, sizeof(net->bridge), "%s", net->config.bridge);
	else
		snprintf(net->bridge, sizeof(net->bridge), NET_BRIDGE_PREFIX "%s", net->name);
}

void network_bridge_alias(const struct network_manager *m, const struct network *net, char *buf,
			  size_t size)
{
	snprintf(buf, size, "%s%s", m->alias_prefix, net->id);
}

static int netlink_failed(struct mv_error *err, int r, const char *what, const char *ifname)
{
	if (r == -EPERM || r == -EACCES)
		return mv_err_denied(
			err, r, "cannot %s %s: %m (the daemon needs CAP_NET_ADMIN for networks)",
			what, ifname);
	return mv_err_internal(err, r, "cannot %s %s: %m", what, ifname);
}

/* The gateway addresses on the bridge, and the bridge up. Addresses it has already are fine. */
static int configure_bridge(struct network_manager *m, const struct network *net,
			    struct mv_error *err)
{
	int r = netlink_addr_add_ipv4(m->nl, net->bridge, net->plan.gateway,
				      net->plan.subnet.prefix);

	if (r < 0 && r != -EEXIST)
		return netlink_failed(err, r, "add the gateway address to", net->bridge);
	if (net->plan.has_ipv6) {
		uint8_t gw[16];

		memcpy(gw, net->plan.ipv6.addr, sizeof(gw));
		gw[15] |= 1; /* <prefix>::1 */
		r = netlink_addr_add_ipv6(m->nl, net->bridge, gw, net->plan.ipv6.prefix);
		if (r < 0 && r != -EEXIST)
			return netlink_failed(err, r, "add the IPv6 gateway address to",
					      net->bridge);
	}
	r = netlink_link_set_up(m->nl, net->bridge, true);
	if (r < 0)
		return netlink_failed(err, r, "bring up", net->bridge);
	return 0;
}

/* Creates and marks the bridge, then configures it; deletes it again on failure. */
static int make_bridge(struct network_manager *m, const struct network *net, struct mv_error *err)
{
	char alias[NETLINK_ALIAS_MAX];
	int r;

	network_bridge_alias(m, net, alias, sizeof(alias));
	r = netlink_bridge_create(m->nl, net->bridge, alias);
	if (r < 0)
		return netlink_failed(err, r, "create the bridge", net->bridge);
	r = configure_bridge(m, net, err);
	if (r < 0)
		(void)netlink_link_delete(m->nl, net->bridge);
	return r;
}

struct route_check {
	const struct network_manager *m;
	const struct net_ipv4 *subnet;
	struct mv_error *err;
};

static bool is_our_bridge(const struct network_manager *m, const char *dev)
{
	for (size_t i = 0; i < m->n; i++)
		if (owns_bridge(m->nets[i]) && streq(m->nets[i]->bridge, dev))
			return true;
	return false;
}

static int check_route(uint32_t dst, uint8_t prefix, const char *dev, void *userdata)
{
	struct route_check *c = userdata;
	struct net_ipv4 route = {dst, prefix};
	char a[16], b[16];

	if (!net_ipv4_overlaps(&route, c->subnet) || is_our_bridge(c->m, dev))
		return 0;
	return mv_err_invalid(c->err,
			      "config.ipv4_subnet: %s/%u overlaps the host's route %s/%u%s%s; "
			      "choose another subnet",
			      net_ipv4_format(c->subnet->addr, a), c->subnet->prefix,
			      net_ipv4_format(dst, b), prefix, *dev ? " dev " : "", dev);
}

/* Refuses what another network or the host has already: the name, the bridge, the subnet. */
static int check_conflicts(struct network_manager *m, const struct network *net,
			   struct mv_error *err)
{
	struct netlink_link link;
	char a[16], b[16];
	int r;

	for (size_t i = 0; i < m->n; i++) {
		const struct network *o = m->nets[i];

		if (streq(o->name, net->name))
			return mv_err_exists(err, "exists already");
		if (owns_bridge(net) && streq(o->bridge, net->bridge))
			return mv_err_exists(err, "config.bridge: %s is the bridge of network '%s'",
					     net->bridge, o->name);
		if (owns_bridge(net) && owns_bridge(o) &&
		    net_ipv4_overlaps(&net->plan.subnet, &o->plan.subnet))
			return mv_err_invalid(
				err, "config.ipv4_subnet: %s/%u overlaps network '%s' (%s/%u)",
				net_ipv4_format(net->plan.subnet.addr, a), net->plan.subnet.prefix,
				o->name, net_ipv4_format(o->plan.subnet.addr, b),
				o->plan.subnet.prefix);
	}

	r = netlink_link_get(m->nl, net->bridge, &link);
	if (r < 0 && r != -ENODEV)
		return netlink_failed(err, r, "look up", net->bridge);
	if (!owns_bridge(net)) {
		if (r == -ENODEV)
			return mv_err_invalid(err, "config.bridge: the host has no bridge named %s",
					      net->bridge);
		if (!streq(link.kind, "bridge"))
			return mv_err_invalid(err, "config.bridge: %s is a %s device, not a bridge",
					      net->bridge, *link.kind ? link.kind : "plain");
		return 0;
	}
	if (r == 0)
		return mv_err_invalid(err,
				      "config.bridge: the host has a link named %s already%s; "
				      "name another bridge",
				      net->bridge,
				      startswith(link.alias, m->alias_prefix)
					      ? " (left by a network of this daemon that is gone)"
				      : startswith(link.alias, NETWORK_ALIAS_MARK)
					      ? " (a bridge of another mvirt daemon)"
					      : " that is not mvirt's");

	struct route_check c = {m, &net->plan.subnet, err};
	r = netlink_ipv4_route_foreach(m->nl, check_route, &c);
	if (r == -EINVAL)
		return r; /* check_route's, message set */
	if (r < 0)
		return netlink_failed(err, r, "read the routes of", "the host");
	return 0;
}

static int network_new(const char *id, const char *name, const struct net_config *c,
		       int64_t created_at_us, struct network **ret, struct mv_error *err)
{
	struct network *net = calloc(1, sizeof(*net));
	int r;

	if (!net)
		return mv_err_oom(err);
	snprintf(net->id, sizeof(net->id), "%s", id);
	net->created_at_us = created_at_us;
	if (!(net->name = strdup(name)) || net_config_copy(&net->config, c) < 0) {
		network_free(net);
		return mv_err_oom(err);
	}
	r = net_config_resolve(name, &net->config, "config.", &net->plan, err);
	if (r < 0) {
		network_free(net);
		return r;
	}
	set_bridge_name(net);
	*ret = net;
	return 0;
}

static int save(struct network_manager *m, const struct network *net, struct mv_error *err)
{
	struct network_record rec = {
		.name = net->name,
		.config = net->config,
		.created_at_us = net->created_at_us,
	};

	memcpy(rec.id, net->id, sizeof(rec.id));
	return store_network_save(m->store, &rec, err);
}

int network_create(struct network_manager *m, const char *name, const struct net_config *c,
		   const struct network **ret, struct mv_error *err)
{
	struct network *net = NULL;
	char id[SD_ID128_UUID_STRING_MAX];
	sd_id128_t rnd;
	int r;

	r = sd_id128_randomize(&rnd);
	if (r < 0)
		return mv_err_internal(err, r, "cannot generate a network id: %m");
	sd_id128_to_uuid_string(rnd, id);
	r = network_new(id, name, c, clock_real_us(), &net, err);
	if (r < 0)
		return mv_err_prefix(err, "network '%s': ", strempty(name)), r;
	r = check_conflicts(m, net, err);
	if (r < 0)
		goto fail;
	/* The row first: a crash from here on leaves a row that reconcile finishes. */
	r = save(m, net, err);
	if (r < 0)
		goto fail;
	if (owns_bridge(net) && (r = make_bridge(m, net, err)) < 0) {
		(void)store_network_delete(m->store, net->id, NULL);
		goto fail;
	}
	if ((r = start_dns(m, net, err)) < 0) {
		(void)netlink_link_delete(m->nl, net->bridge);
		(void)store_network_delete(m->store, net->id, NULL);
		goto fail;
	}
	r = apply_rules(m, net, err);
	if (r >= 0 && (r = table_add(m, net)) < 0)
		mv_err_oom(err);
	if (r < 0) {
		(void)nft_network_remove(m->nft, net->id, NULL);
		dnsmasq_destroy(net->dns);
		net->dns = NULL;
		if (owns_bridge(net))
			(void)netlink_link_delete(m->nl, net->bridge);
		(void)store_network_delete(m->store, net->id, NULL);
		goto fail;
	}
	log_info("network %s: created (%s, bridge %s)", net->name, net_mode_name(net->config.mode),
		 net->bridge);
	if (ret)
		*ret = net;
	return 0;
fail:
	mv_err_prefix(err, "network '%s': ", name);
	network_free(net);
	return r;
}

int network_delete(struct network_manager *m, const char *name_or_id, struct mv_error *err)
{
	struct network *net = (struct network *)network_find(m, name_or_id);
	int r;

	if (!net)
		return mv_err_not_found(err, "network '%s' does not exist", name_or_id);
	/* Rules, dnsmasq, then the bridge: a crash from here on leaves a row that reconcile
	 * makes whole again (so that no rules are ever left without their row). */
	r = nft_network_remove(m->nft, net->id, err);
	if (r < 0)
		return mv_err_prefix(err, "network '%s': firewall rules: ", net->name), r;
	dnsmasq_destroy(net->dns);
	net->dns = NULL;
	if (owns_bridge(net)) {
		r = netlink_link_delete(m->nl, net->bridge);
		if (r < 0 && r != -ENODEV)
			return mv_err_prefix(err, "network '%s': ", net->name),
			       netlink_failed(err, r, "delete the bridge", net->bridge);
	}
	r = store_network_delete(m->store, net->id, err);
	if (r < 0 && r != -ENOENT)
		return mv_err_prefix(err, "network '%s': ", net->name), r;
	log_info("network %s: deleted", net->name);
	table_remove(m, net);
	network_free(net);
	return 0;
}

struct subnet_probe {
	const struct net_ipv4 *subnet;
};

static int probe_route(uint32_t dst, uint8_t prefix, const char *dev, void *userdata)
{
	struct subnet_probe *p = userdata;
	struct net_ipv4 route = {dst, prefix};

	(void)dev;
	return net_ipv4_overlaps(&route, p->subnet) ? -EADDRINUSE : 0;
}

/* Whether no network and no route of the host has an address of subnet; errors count as
 * "in use", so that a host whose routes cannot be read gets no guessed default. */
static bool subnet_free(struct network_manager *m, const struct net_ipv4 *subnet)
{
	struct subnet_probe p = {subnet};

	for (size_t i = 0; i < m->n; i++)
		if (owns_bridge(m->nets[i]) && net_ipv4_overlaps(&m->nets[i]->plan.subnet, subnet))
			return false;
	return netlink_ipv4_route_foreach(m->nl, probe_route, &p) == 0;
}

int network_create_default(struct network_manager *m, const char *subnet, struct mv_error *err)
{
	char cidr[32];
	struct net_config c = {.mode = NET_MODE_NAT};

	if (network_find(m, NETWORK_DEFAULT_NAME))
		return 0;
	if (subnet) {
		c.ipv4_subnet = (char *)subnet;
		return network_create(m, NETWORK_DEFAULT_NAME, &c, NULL, err);
	}
	/* 10.77.0.0/24 upward: a private /24 that no route of the host touches. */
	for (unsigned i = 0; i < 256; i++) {
		struct net_ipv4 s = {(10u << 24) | (77u << 16) | (i << 8), 24};

		if (!subnet_free(m, &s))
			continue;
		snprintf(cidr, sizeof(cidr), "10.77.%u.0/24", i);
		c.ipv4_subnet = cidr;
		return network_create(m, NETWORK_DEFAULT_NAME, &c, NULL, err);
	}
	return mv_err_precondition(
		err, -EADDRINUSE,
		"network 'default': every /24 of 10.77.0.0/16 is used by a route "
		"of the host or another network; give one with "
		"--default-network CIDR");
}

/* Makes a stored network's bridge whole: made if missing, adopted if a crash left it
 * unmarked, addresses and link state restored. */
static int reconcile_bridge(struct network_manager *m, const struct network *net,
			    struct mv_error *err)
{
	char alias[NETLINK_ALIAS_MAX];
	struct netlink_link link;
	int r = netlink_link_get(m->nl, net->bridge, &link);

	if (r == -ENODEV)
		return make_bridge(m, net, err);
	if (r < 0)
		return netlink_failed(err, r, "look up", net->bridge);
	network_bridge_alias(m, net, alias, sizeof(alias));
	if (!streq(link.kind, "bridge") || (*link.alias && !streq(link.alias, alias)))
		return mv_err_precondition(err, -EEXIST,
					   "%s is not this network's bridge (%s%s%s); "
					   "delete it or the network",
					   net->bridge, *link.kind ? link.kind : "device",
					   *link.alias ? ", alias " : "", link.alias);
	if (!*link.alias) {
		log_notice("network %s: adopting bridge %s, made before a crash", net->name,
			   net->bridge);
		r = netlink_link_set_alias(m->nl, net->bridge, alias);
		if (r < 0)
			return netlink_failed(err, r, "mark", net->bridge);
	}
	return configure_bridge(m, net, err);
}

static int remove_orphan(const struct netlink_link *link, void *userdata)
{
	struct network_manager *m = userdata;
	struct mv_error e = {};
	const char *id;
	int r;

	if (!startswith(link->alias, m->alias_prefix))
		return 0;
	id = link->alias + strlen(m->alias_prefix);
	if (network_find(m, id))
		return 0;
	/* its rules too: they are found by the id the mark names, never by the bridge's name */
	if (nft_network_remove(m->nft, id, &e) < 0)
		log_warning("network: cannot remove the rules of deleted network %s: %s", id,
			    e.msg);
	r = netlink_link_delete(m->nl, link->name);
	if (r < 0 && r != -ENODEV)
		log_warning_errno(r, "network: cannot delete %s, left by a deleted network: %m",
				  link->name);
	else
		log_notice("network: deleted %s, left by a network deleted before a crash",
			   link->name);
	return 0;
}

/* dnsmasq processes and files of networks that no longer exist (a crash mid-create/delete). */
static void remove_stray_dns(struct network_manager *m)
{
	const char *dirs[] = {m->run_networks, m->state_networks};
	int keep[256];
	size_t n_keep = 0;

	for (size_t i = 0; i < m->n && n_keep < ELEMENTSOF(keep); i++)
		if (dnsmasq_pid(m->nets[i]->dns) > 0)
			keep[n_keep++] = dnsmasq_pid(m->nets[i]->dns);
	(void)dnsmasq_kill_strays(m->run_networks, keep, n_keep);
	for (size_t k = 0; k < ELEMENTSOF(dirs); k++) {
		DIR *d = opendir(dirs[k]);
		struct dirent *de;

		if (!d)
			continue;
		while ((de = readdir(d))) {
			char *path;

			if (de->d_name[0] == '.' || network_find(m, de->d_name))
				continue;
			if (asprintf(&path, "%s/%s", dirs[k], de->d_name) < 0)
				break;
			log_notice("network: removing %s, left by a deleted network", path);
			remove_dir_files(path);
			free(path);
		}
		closedir(d);
	}
}

/* A stored network into the table; NULL, with the cause logged, when it cannot be. */
static struct network *load(struct network_manager *m, const struct network_record *rec)
{
	struct network *net = NULL;
	struct mv_error e = {};

	if (network_new(rec->id, rec->name, &rec->config, rec->created_at_us, &net, &e) < 0 ||
	    table_add(m, net) < 0) {
		log_error("network %s: cannot load: %s", rec->name,
			  e.msg[0] ? e.msg : "out of memory");
		network_free(net);
		return NULL;
	}
	return net;
}

int network_manager_reconcile(struct network_manager *m, struct mv_error *err)
{
	struct network_record *recs = NULL;
	size_t n = 0;
	int r;

	r = store_network_load_all(m->store, &recs, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		/* found: reconciled before, and the host may have changed since */
		struct network *net = (struct network *)network_find(m, recs[i].id);
		struct mv_error e = {};

		if (!net && !(net = load(m, &recs[i])))
			continue;
		net->status[0] = '\0';
		if ((owns_bridge(net) && reconcile_bridge(m, net, &e) < 0) ||
		    start_dns(m, net, &e) < 0 || apply_rules(m, net, &e) < 0) {
			log_error("network %s: %s", net->name, e.msg);
			snprintf(net->status, sizeof(net->status), "%s", e.msg);
		}
	}
	for (size_t i = 0; i < n; i++)
		store_network_record_done(&recs[i]);
	free(recs);

	r = netlink_link_foreach(m->nl, remove_orphan, m);
	if (r < 0)
		log_warning_errno(r, "network: cannot list the host's links: %m");
	if (m->event)
		remove_stray_dns(m);
	return 0;
}

int network_tap_open(struct network_manager *m, const char *network, const char *tap,
		     struct mv_error *err)
{
	const struct network *net = network_find(m, network);
	int fd, r;

	if (!net)
		return mv_err_precondition(err, -ENOENT, "network '%s' does not exist", network);
	fd = tap_create(tap);
	if (fd == -EBUSY)
		return mv_err_precondition(err, -EBUSY,
					   "a link named %s exists already (not made by this "
					   "start); delete it",
					   tap);
	if (fd < 0)
		return mv_err_internal(err, fd, "cannot create tap %s: %m", tap);
	/* The tap goes away with its last fd: on failure closing it is all the cleanup. */
	r = netlink_link_set_master(m->nl, tap, net->bridge);
	if (r >= 0)
		r = netlink_link_set_up(m->nl, tap, true);
	if (r < 0) {
		close(fd);
		return netlink_failed(err, r, "attach the tap to", net->bridge);
	}
	return fd;
}
