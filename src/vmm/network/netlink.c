/* rtnetlink through libnl-route-3: links, bridges, addresses, routes (netlink.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/route.h>

#include "common/macro.h"
#include "network/netlink.h"

struct netlink {
	struct nl_sock *sk;
};

/* libnl's negative NLE_* codes back to the errno the kernel (or libnl) meant. */
static int errno_of(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_SUCCESS:
		return 0;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_INVAL:
	case NLE_RANGE:
	case NLE_MISSING_ATTR:
		return -EINVAL;
	case NLE_OPNOTSUPP:
	case NLE_AF_NOSUPPORT:
		return -EOPNOTSUPP;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return -ENODEV;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_PERM:
		return -EPERM;
	case NLE_NOADDR:
		return -EADDRNOTAVAIL;
	case NLE_AGAIN:
	case NLE_DUMP_INTR:
		return -EAGAIN;
	case NLE_INTR:
		return -EINTR;
	default:
		return -EIO;
	}
}

static void link_putp(struct rtnl_link **l)
{
	if (*l)
		rtnl_link_put(*l);
}
#define _cleanup_link_ _cleanup_(link_putp)

int netlink_open(struct netlink **ret)
{
	struct netlink *nl = calloc(1, sizeof(*nl));
	int r;

	if (!nl)
		return -ENOMEM;
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		free(nl);
		return -ENOMEM;
	}
	r = nl_connect(nl->sk, NETLINK_ROUTE);
	if (r < 0) {
		nl_socket_free(nl->sk);
		free(nl);
		return errno_of(r);
	}
	*ret = nl;
	return 0;
}

void netlink_close(struct netlink *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->sk); /* closes the socket too */
	free(nl);
}

static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;

	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

static void fill_link(struct rtnl_link *l, struct netlink_link *ret)
{
	*ret = (struct netlink_link){
		.ifindex = rtnl_link_get_ifindex(l),
		.master = rtnl_link_get_master(l),
		.up = (rtnl_link_get_flags(l) & IFF_UP) != 0,
	};
	copy_str(ret->name, sizeof(ret->name), rtnl_link_get_name(l));
	copy_str(ret->kind, sizeof(ret->kind), rtnl_link_get_type(l));
	copy_str(ret->alias, sizeof(ret->alias), rtnl_link_get_ifalias(l));
}

static int get_kernel(struct netlink *nl, const char *name, struct rtnl_link **ret)
{
	if (!name || !*name || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	return errno_of(rtnl_link_get_kernel(nl->sk, 0, name, ret));
}

int netlink_link_get(struct netlink *nl, const char *name, struct netlink_link *ret)
{
	_cleanup_link_ struct rtnl_link *l = NULL;
	int r = get_kernel(nl, name, &l);

	if (r < 0)
		return r;
	fill_link(l, ret);
	return 0;
}

struct foreach_ctx {
	int (*fn)(const struct netlink_link *, void *);
	void *userdata;
	int r;
};

static void foreach_link(struct nl_object *o, void *arg)
{
	struct foreach_ctx *ctx = arg;
	struct netlink_link link;

	if (ctx->r < 0)
		return;
	fill_link((struct rtnl_link *)o, &link);
	ctx->r = ctx->fn(&link, ctx->userdata);
}

int netlink_link_foreach(struct netlink *nl, int (*fn)(const struct netlink_link *, void *),
			 void *userdata)
{
	struct nl_cache *cache;
	struct foreach_ctx ctx = {fn, userdata, 0};
	int r = rtnl_link_alloc_cache(nl->sk, AF_UNSPEC, &cache);

	if (r < 0)
		return errno_of(r);
	nl_cache_foreach(cache, foreach_link, &ctx);
	nl_cache_free(cache);
	return ctx.r < 0 ? ctx.r : 0;
}

/* Applies the changes in want to link name. */
static int change(struct netlink *nl, const char *name, struct rtnl_link *want)
{
	_cleanup_link_ struct rtnl_link *l = NULL;
	int r = get_kernel(nl, name, &l);

	if (r < 0)
		return r;
	return errno_of(rtnl_link_change(nl->sk, l, want, 0));
}

int netlink_bridge_create(struct netlink *nl, const char *name, const char *alias)
{
	_cleanup_link_ struct rtnl_link *br = NULL;
	int r;

	if (!name || !*name || strlen(name) >= IFNAMSIZ ||
	    (alias && strlen(alias) >= NETLINK_ALIAS_MAX))
		return -EINVAL;
	if (!(br = rtnl_link_bridge_alloc()))
		return -ENOMEM;
	rtnl_link_set_name(br, name);
	r = errno_of(rtnl_link_add(nl->sk, br, NLM_F_CREATE | NLM_F_EXCL));
	if (r < 0 || !alias)
		return r;
	r = netlink_link_set_alias(nl, name, alias);
	if (r < 0)
		(void)netlink_link_delete(nl, name);
	return r;
}

int netlink_link_set_alias(struct netlink *nl, const char *name, const char *alias)
{
	_cleanup_link_ struct rtnl_link *want = NULL;

	if (!alias || strlen(alias) >= NETLINK_ALIAS_MAX)
		return -EINVAL;
	if (!(want = rtnl_link_alloc()))
		return -ENOMEM;
	rtnl_link_set_ifalias(want, alias);
	return change(nl, name, want);
}

int netlink_link_set_up(struct netlink *nl, const char *name, bool up)
{
	_cleanup_link_ struct rtnl_link *want = rtnl_link_alloc();

	if (!want)
		return -ENOMEM;
	if (up)
		rtnl_link_set_flags(want, IFF_UP);
	else
		rtnl_link_unset_flags(want, IFF_UP);
	return change(nl, name, want);
}

int netlink_link_set_master(struct netlink *nl, const char *name, const char *bridge)
{
	_cleanup_link_ struct rtnl_link *want = rtnl_link_alloc(), *br = NULL;
	int r;

	if (!want)
		return -ENOMEM;
	if (bridge) {
		if ((r = get_kernel(nl, bridge, &br)) < 0)
			return r;
		rtnl_link_set_master(want, rtnl_link_get_ifindex(br));
	} else
		rtnl_link_set_master(want, 0);
	return change(nl, name, want);
}

int netlink_link_delete(struct netlink *nl, const char *name)
{
	_cleanup_link_ struct rtnl_link *l = NULL;
	int r = get_kernel(nl, name, &l);

	if (r < 0)
		return r;
	return errno_of(rtnl_link_delete(nl->sk, l));
}

static int addr_add(struct netlink *nl, const char *name, int family, const void *bytes, size_t len,
		    uint8_t prefix)
{
	_cleanup_link_ struct rtnl_link *l = NULL;
	struct rtnl_addr *a;
	struct nl_addr *local;
	int r = get_kernel(nl, name, &l);

	if (r < 0)
		return r;
	if (!(a = rtnl_addr_alloc()))
		return -ENOMEM;
	if (!(local = nl_addr_build(family, bytes, len))) {
		rtnl_addr_put(a);
		return -ENOMEM;
	}
	nl_addr_set_prefixlen(local, prefix);
	rtnl_addr_set_ifindex(a, rtnl_link_get_ifindex(l));
	r = errno_of(rtnl_addr_set_local(a, local));
	if (r == 0)
		r = errno_of(rtnl_addr_add(nl->sk, a, NLM_F_CREATE | NLM_F_EXCL));
	nl_addr_put(local);
	rtnl_addr_put(a);
	return r;
}

int netlink_addr_add_ipv4(struct netlink *nl, const char *name, uint32_t addr, uint8_t prefix)
{
	uint32_t be = htonl(addr);

	if (prefix > 32)
		return -EINVAL;
	return addr_add(nl, name, AF_INET, &be, sizeof(be), prefix);
}

int netlink_addr_add_ipv6(struct netlink *nl, const char *name, const uint8_t addr[16],
			  uint8_t prefix)
{
	if (prefix > 128)
		return -EINVAL;
	return addr_add(nl, name, AF_INET6, addr, 16, prefix);
}

struct route_ctx {
	struct nl_cache *links;
	int (*fn)(uint32_t, uint8_t, const char *, void *);
	void *userdata;
	int r;
};

static void foreach_route(struct nl_object *o, void *arg)
{
	struct route_ctx *ctx = arg;
	struct rtnl_route *route = (struct rtnl_route *)o;
	struct nl_addr *dst = rtnl_route_get_dst(route);
	char dev[IFNAMSIZ] = "";
	uint32_t be;

	if (ctx->r < 0 || rtnl_route_get_table(route) != RT_TABLE_MAIN || !dst ||
	    nl_addr_get_family(dst) != AF_INET || nl_addr_get_prefixlen(dst) == 0 ||
	    nl_addr_get_len(dst) != sizeof(be))
		return;
	memcpy(&be, nl_addr_get_binary_addr(dst), sizeof(be));
	if (rtnl_route_get_nnexthops(route) == 1) {
		struct rtnl_nexthop *nh = rtnl_route_nexthop_n(route, 0);

		if (!rtnl_link_i2name(ctx->links, rtnl_route_nh_get_ifindex(nh), dev, sizeof(dev)))
			dev[0] = '\0';
	}
	ctx->r = ctx->fn(ntohl(be), (uint8_t)nl_addr_get_prefixlen(dst), dev, ctx->userdata);
}

int netlink_ipv4_route_foreach(struct netlink *nl,
			       int (*fn)(uint32_t dst, uint8_t prefix, const char *dev, void *),
			       void *userdata)
{
	struct nl_cache *routes;
	struct route_ctx ctx = {.fn = fn, .userdata = userdata};
	int r = rtnl_link_alloc_cache(nl->sk, AF_UNSPEC, &ctx.links);

	if (r < 0)
		return errno_of(r);
	r = rtnl_route_alloc_cache(nl->sk, AF_INET, 0, &routes);
	if (r < 0) {
		nl_cache_free(ctx.links);
		return errno_of(r);
	}
	nl_cache_foreach(routes, foreach_route, &ctx);
	nl_cache_free(routes);
	nl_cache_free(ctx.links);
	return ctx.r < 0 ? ctx.r : 0;
}
