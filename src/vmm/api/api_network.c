/* See api_network.h. Network messages borrow their strings from the manager's struct network
 * and from buffers of struct network_pb (valid for the duration of the reply). */
#include "api/api_network.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_context.h"
#include "api/api_convert.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/strv.h"
#include "mvirt.pb-c.h"
#include "network/dnsmasq.h"
#include "network/network.h"
#include "vm/vm.h"

/* One Network message and what it points to. */
struct network_pb {
	Mvirt__Network msg;
	Mvirt__NetworkConfig config;
	Google__Protobuf__Timestamp created_at;
	char subnet[20], gateway[16], dhcp_start[16], dhcp_end[16], ipv6[48];
	char domain[NET_NAME_MAX + sizeof(NET_DOMAIN_SUFFIX)];
	char **used_by; /* NULL-terminated, owned */
};

static char *pb_str(const char *s)
{
	return (char *)(s ? s : protobuf_c_empty_string);
}

static struct network_manager *networks_of(struct api_call *call)
{
	return api_context_of(call)->networks;
}

static bool have_networks(struct api_call *call)
{
	if (networks_of(call))
		return true;
	api_call_fail(call, GRPC_STATUS_UNAVAILABLE,
		      "the network manager is not available on this host (the daemon cannot "
		      "manage links; see its log)");
	return false;
}

/* The names of the VMs with a NIC on network name, NULL-terminated; NULL when out of memory. */
static char **network_users(struct vm_manager *vms, const char *name)
{
	size_t n = 0, count = vm_manager_count(vms);
	char **v = calloc(count + 1, sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		const struct vm_record *r = vm_manager_at(vms, i);

		for (size_t k = 0; k < r->config.n_nics; k++)
			if (streq(r->config.nics[k].network, name)) {
				if (!(v[n++] = strdup(r->name))) {
					strv_free(v);
					return NULL;
				}
				break;
			}
	}
	return v;
}

static void ipv6_format(const struct net_ipv6 *p, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN] = "";

	inet_ntop(AF_INET6, p->addr, a, sizeof(a));
	snprintf(buf, size, "%s/%u", a, (unsigned)p->prefix);
}

/* Fills pb from net; -ENOMEM (pb then needs no network_pb_done) when out of memory. */
static int network_to_pb(struct api_call *call, const struct network *net, struct network_pb *pb)
{
	const struct net_config *c = &net->config;
	const struct net_plan *p = &net->plan;
	Mvirt__Network *m = &pb->msg;
	bool addressed = c->mode != NET_MODE_BRIDGE;

	memset(pb, 0, sizeof(*pb));
	if (!(pb->used_by = network_users(api_context_of(call)->vms, net->name)))
		return -ENOMEM;
	pb->config = (Mvirt__NetworkConfig)MVIRT__NETWORK_CONFIG__INIT;
	pb->config.mode = (Mvirt__NetworkMode)c->mode;
	pb->config.bridge = pb_str(c->bridge);
	pb->config.ipv4_subnet = pb_str(c->ipv4_subnet);
	pb->config.dhcp_start = pb_str(c->dhcp_start);
	pb->config.dhcp_end = pb_str(c->dhcp_end);
	pb->config.ipv6_prefix = pb_str(c->ipv6_prefix);
	pb->config.domain = pb_str(c->domain);
	api_convert_timestamp(net->created_at_us, &pb->created_at);

	*m = (Mvirt__Network)MVIRT__NETWORK__INIT;
	m->id = (char *)net->id;
	m->name = net->name;
	m->config = &pb->config;
	m->mode = c->mode == NET_MODE_UNSPECIFIED ? MVIRT__NETWORK_MODE__NETWORK_MODE_NAT
						  : (Mvirt__NetworkMode)c->mode;
	m->bridge = (char *)net->bridge;
	if (addressed) {
		char a[16];

		snprintf(pb->subnet, sizeof(pb->subnet), "%s/%u",
			 net_ipv4_format(p->subnet.addr, a), (unsigned)p->subnet.prefix);
		net_ipv4_format(p->gateway, pb->gateway);
		net_ipv4_format(p->dhcp_start, pb->dhcp_start);
		net_ipv4_format(p->dhcp_end, pb->dhcp_end);
		m->ipv4_subnet = pb->subnet;
		m->gateway = pb->gateway;
		m->dhcp_start = pb->dhcp_start;
		m->dhcp_end = pb->dhcp_end;
		if (p->has_ipv6) {
			ipv6_format(&p->ipv6, pb->ipv6, sizeof(pb->ipv6));
			m->ipv6_prefix = pb->ipv6;
		}
		/* unset: the derived default, net_config_resolve's rule */
		snprintf(pb->domain, sizeof(pb->domain), "%s" NET_DOMAIN_SUFFIX, net->name);
		m->domain = isempty(c->domain) ? pb->domain : c->domain;
	}
	m->n_used_by = strv_len(pb->used_by);
	m->used_by = pb->used_by;
	m->created_at = &pb->created_at;
	m->status = (char *)(net->status[0] ? net->status : "ok");
	return 0;
}

static void network_pb_done(struct network_pb *pb)
{
	strv_free(pb->used_by);
	pb->used_by = NULL;
}

static void reply_network(struct api_call *call, const struct network *net)
{
	struct network_pb pb;

	if (network_to_pb(call, net, &pb) < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return;
	}
	api_call_reply(call, &pb.msg.base);
	network_pb_done(&pb);
}

static int config_from_pb(const Mvirt__NetworkConfig *pb, struct net_config *c)
{
	const char *const *src[] = {
		(const char *const *)&pb->bridge,      (const char *const *)&pb->ipv4_subnet,
		(const char *const *)&pb->dhcp_start,  (const char *const *)&pb->dhcp_end,
		(const char *const *)&pb->ipv6_prefix, (const char *const *)&pb->domain};
	char **dst[] = {&c->bridge,   &c->ipv4_subnet, &c->dhcp_start,
			&c->dhcp_end, &c->ipv6_prefix, &c->domain};

	memset(c, 0, sizeof(*c));
	c->mode = (enum net_mode)pb->mode;
	for (size_t i = 0; i < ELEMENTSOF(dst); i++)
		if (!isempty(*src[i]) && !(*dst[i] = strdup(*src[i]))) {
			net_config_done(c);
			return -ENOMEM;
		}
	return 0;
}

static void handle_create(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__CreateNetworkRequest *req = (const Mvirt__CreateNetworkRequest *)msg;
	static const Mvirt__NetworkConfig empty = MVIRT__NETWORK_CONFIG__INIT;
	const struct network *net = NULL;
	struct net_config c;
	struct mv_error err = {0};

	if (!have_networks(call))
		return;
	if (config_from_pb(req->config ? req->config : &empty, &c) < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return;
	}
	if (network_create(networks_of(call), req->name, &c, &net, &err) < 0) {
		log_info("api CreateNetwork: %s", err.msg);
		api_call_fail_err(call, &err);
	} else {
		reply_network(call, net);
	}
	net_config_done(&c);
}

static const struct network *find(struct api_call *call, const char *name)
{
	const struct network *net;

	if (isempty(name)) {
		api_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "network: give the name or id of a network");
		return NULL;
	}
	net = network_find(networks_of(call), name);
	if (!net)
		api_call_fail(call, GRPC_STATUS_NOT_FOUND, "network '%s' does not exist", name);
	return net;
}

static void handle_get(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__GetNetworkRequest *req = (const Mvirt__GetNetworkRequest *)msg;
	const struct network *net;

	if (have_networks(call) && (net = find(call, req->network)))
		reply_network(call, net);
}

static void handle_list(struct api_call *call, const ProtobufCMessage *msg)
{
	Mvirt__ListNetworksResponse resp = MVIRT__LIST_NETWORKS_RESPONSE__INIT;
	struct network_manager *m = networks_of(call);
	size_t n = m ? network_count(m) : 0, done = 0;
	struct network_pb *pbs = NULL;
	Mvirt__Network **ptrs = NULL;

	(void)msg;
	if (n > 0 && (!(pbs = calloc(n, sizeof(*pbs))) || !(ptrs = calloc(n, sizeof(*ptrs)))))
		goto oom;
	for (; done < n; done++) {
		if (network_to_pb(call, network_at(m, done), &pbs[done]) < 0)
			goto oom;
		ptrs[done] = &pbs[done].msg;
	}
	resp.n_networks = n;
	resp.networks = ptrs;
	/* A daemon without the network manager has no networks: an empty list, not an error. */
	api_call_reply(call, &resp.base);
	goto out;
oom:
	api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
out:
	for (size_t i = 0; i < done; i++)
		network_pb_done(&pbs[i]);
	free(pbs);
	free(ptrs);
}

static void handle_delete(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__DeleteNetworkRequest *req = (const Mvirt__DeleteNetworkRequest *)msg;
	Mvirt__DeleteNetworkResponse resp = MVIRT__DELETE_NETWORK_RESPONSE__INIT;
	struct mv_error err = {0};
	const struct network *net;
	char **users;

	if (!have_networks(call) || !(net = find(call, req->network)))
		return;
	if (!(users = network_users(api_context_of(call)->vms, net->name))) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return;
	}
	if (users[0]) {
		char list[512] = "";
		size_t len = 0, n = 0;

		for (; users[n]; n++)
			if (len < sizeof(list))
				len += (size_t)snprintf(list + len, sizeof(list) - len, "%s'%s'",
							n ? ", " : "", users[n]);
		api_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			      "network '%s' is used by %s %s; remove their NICs on it or delete "
			      "them first",
			      net->name, n == 1 ? "VM" : "VMs", list);
		strv_free(users);
		return;
	}
	strv_free(users);
	if (network_delete(networks_of(call), net->id, &err) < 0) {
		api_call_fail_err(call, &err);
		return;
	}
	api_call_reply(call, &resp.base);
}

/* The VM with a NIC of MAC mac, or NULL. */
static const char *vm_of_mac(struct vm_manager *vms, const char *mac)
{
	for (size_t i = 0; i < vm_manager_count(vms); i++) {
		const struct vm_record *r = vm_manager_at(vms, i);

		for (size_t k = 0; k < r->config.n_nics; k++)
			if (r->config.nics[k].mac && strcasecmp(r->config.nics[k].mac, mac) == 0)
				return r->name;
	}
	return NULL;
}

static void handle_list_leases(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__ListLeasesRequest *req = (const Mvirt__ListLeasesRequest *)msg;
	Mvirt__ListLeasesResponse resp = MVIRT__LIST_LEASES_RESPONSE__INIT;
	_cleanup_free_ struct dnsmasq_lease *v = NULL;
	_cleanup_free_ Mvirt__Lease *pbs = NULL;
	_cleanup_free_ Mvirt__Lease **ptrs = NULL;
	_cleanup_free_ Google__Protobuf__Timestamp *ts = NULL;
	const struct network *net;
	size_t n = 0;
	int r;

	if (!have_networks(call) || !(net = find(call, req->network)))
		return;
	r = network_leases(networks_of(call), net, &v, &n);
	if (r < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL,
			      "network '%s': cannot read its leases: %s", net->name, strerror(-r));
		return;
	}
	if (n > 0 && (!(pbs = calloc(n, sizeof(*pbs))) || !(ptrs = calloc(n, sizeof(*ptrs))) ||
		      !(ts = calloc(n, sizeof(*ts))))) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		pbs[i] = (Mvirt__Lease)MVIRT__LEASE__INIT;
		pbs[i].mac = v[i].mac;
		pbs[i].address = v[i].address;
		pbs[i].hostname = v[i].hostname;
		pbs[i].vm = pb_str(vm_of_mac(api_context_of(call)->vms, v[i].mac));
		if (v[i].expires > 0) {
			ts[i] = (Google__Protobuf__Timestamp)GOOGLE__PROTOBUF__TIMESTAMP__INIT;
			api_convert_timestamp(v[i].expires * 1000000, &ts[i]);
			pbs[i].expires_at = &ts[i];
		}
		ptrs[i] = &pbs[i];
	}
	resp.n_leases = n;
	resp.leases = ptrs;
	api_call_reply(call, &resp.base);
}

#define UNARY(method, type, fn) API_UNARY("/mvirt.NetworkService/" method, type, fn)

const struct api_method api_network_methods[] = {
	UNARY("CreateNetwork", mvirt__create_network_request, handle_create),
	UNARY("GetNetwork", mvirt__get_network_request, handle_get),
	UNARY("ListNetworks", mvirt__list_networks_request, handle_list),
	UNARY("DeleteNetwork", mvirt__delete_network_request, handle_delete),
	UNARY("ListLeases", mvirt__list_leases_request, handle_list_leases),
	{.path = NULL},
};
