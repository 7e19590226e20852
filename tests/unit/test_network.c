/* Unit tests of network/network.c, the network manager, against the real kernel in a network
 * namespace of the test's own (unshare(CLONE_NEWNET); only "lo" is there, and it goes away
 * with the process) and a state store in a temporary directory. Skipped without root. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/macro.h"
#include "network/netlink.h"
#include "network/network.h"
#include "store/store.h"

#define INSTANCE "0f0e0d0c-test"
#define ALIAS_PREFIX "mvirt:" INSTANCE ":network="

static bool have_netns;

struct fixture {
	char dir[64];
	char db[96];
	struct store *store;
	struct netlink *nl;
	struct network_manager *m;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct mv_error err = {};

	assert_non_null(f);
	*state = f;
	if (!have_netns)
		return 0;
	snprintf(f->dir, sizeof(f->dir), "/tmp/mvirt-test-network.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/mvirt.db", f->dir);
	assert_int_equal(store_open(f->db, &f->store, &err), 0);
	assert_int_equal(netlink_open(&f->nl), 0);
	assert_int_equal(network_manager_new(f->store, INSTANCE, &f->m, &err), 0);
	assert_int_equal(network_manager_reconcile(f->m, &err), 0);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];

	if (have_netns) {
		network_manager_free(f->m);
		netlink_close(f->nl);
		store_close(f->store);
		for (const char *s = ""; s; s = *s ? NULL : "-wal") {
			snprintf(path, sizeof(path), "%s%s", f->db, s);
			unlink(path);
		}
		snprintf(path, sizeof(path), "%s-shm", f->db);
		unlink(path);
		rmdir(f->dir);
	}
	free(f);
	return 0;
}

#define NEED_NETNS()                                                                               \
	do {                                                                                       \
		if (!have_netns)                                                                   \
			skip(); /* needs root for a network namespace of its own */                \
	} while (0)

static struct net_config nat(const char *subnet)
{
	return (struct net_config){.mode = NET_MODE_NAT, .ipv4_subnet = (char *)subnet};
}

static void assert_fails(struct network_manager *m, const char *name, struct net_config c,
			 enum mv_error_kind kind, const char *needle)
{
	struct mv_error err = {};

	assert_true(network_create(m, name, &c, NULL, &err) < 0);
	assert_int_equal(err.kind, kind);
	if (!strstr(err.msg, needle))
		fail_msg("'%s' does not contain '%s'", err.msg, needle);
}

static int count_routes_on(uint32_t dst, uint8_t prefix, const char *dev, void *userdata)
{
	(void)dst, (void)prefix;
	if (streq(dev, "mvbr-lab"))
		++*(int *)userdata;
	return 0;
}

static size_t stored(struct store *s)
{
	struct network_record *recs;
	size_t n;
	struct mv_error err = {};

	assert_int_equal(store_network_load_all(s, &recs, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		store_network_record_done(&recs[i]);
	free(recs);
	return n;
}

static void test_create_and_delete(void **state)
{
	struct fixture *f = *state;
	struct net_config c = nat("10.77.0.0/24");
	const struct network *net;
	struct netlink_link link;
	struct mv_error err = {};
	char alias[NETLINK_ALIAS_MAX];
	int routes = 0;

	NEED_NETNS();
	assert_int_equal(network_create(f->m, "lab", &c, &net, &err), 0);
	assert_string_equal(net->name, "lab");
	assert_string_equal(net->bridge, "mvbr-lab");
	assert_int_equal(net->plan.gateway, 0x0a4d0001);
	assert_ptr_equal(network_find(f->m, "lab"), net);
	assert_ptr_equal(network_find(f->m, net->id), net);
	assert_int_equal(network_count(f->m), 1);
	assert_int_equal(stored(f->store), 1);

	assert_int_equal(netlink_link_get(f->nl, "mvbr-lab", &link), 0);
	snprintf(alias, sizeof(alias), ALIAS_PREFIX "%s", net->id);
	assert_string_equal(link.kind, "bridge");
	assert_string_equal(link.alias, alias);
	assert_true(link.up);
	assert_int_equal(netlink_ipv4_route_foreach(f->nl, count_routes_on, &routes), 0);
	assert_int_equal(routes, 1);

	assert_int_equal(network_delete(f->m, "lab", &err), 0);
	assert_int_equal(netlink_link_get(f->nl, "mvbr-lab", &link), -ENODEV);
	assert_null(network_find(f->m, "lab"));
	assert_int_equal(stored(f->store), 0);

	err = (struct mv_error){};
	assert_int_equal(network_delete(f->m, "lab", &err), -ENOENT);
	assert_int_equal(err.kind, MV_ERR_NOT_FOUND);
}

static void test_conflicts_are_refused(void **state)
{
	struct fixture *f = *state;
	struct net_config c = nat("10.77.0.0/24");
	struct mv_error err = {};
	struct netlink_link link;

	NEED_NETNS();
	assert_int_equal(network_create(f->m, "lab", &c, NULL, &err), 0);
	/* the host's own interfaces: an "uplink" with an address, a bridge of someone else */
	assert_int_equal(netlink_bridge_create(f->nl, "uplink", NULL), 0);
	assert_int_equal(netlink_link_set_up(f->nl, "uplink", true), 0);
	assert_int_equal(netlink_addr_add_ipv4(f->nl, "uplink", 0xc0a83201, 24), 0);
	assert_int_equal(netlink_bridge_create(f->nl, "mvbr-taken", NULL), 0);

	assert_fails(f->m, "lab", nat("10.78.0.0/24"), MV_ERR_EXISTS,
		     "network 'lab': exists already");
	assert_fails(f->m, "wide", nat("10.0.0.0/8"), MV_ERR_INVALID,
		     "config.ipv4_subnet: 10.0.0.0/8 overlaps network 'lab' (10.77.0.0/24)");
	assert_fails(f->m, "up", nat("192.168.50.128/25"), MV_ERR_INVALID,
		     "overlaps the host's route 192.168.50.0/24 dev uplink");
	assert_fails(f->m, "taken", nat("10.79.0.0/24"), MV_ERR_INVALID,
		     "config.bridge: the host has a link named mvbr-taken already that is not "
		     "mvirt's");
	c = nat("10.80.0.0/24");
	c.bridge = "mvbr-lab";
	assert_fails(f->m, "other", c, MV_ERR_EXISTS,
		     "config.bridge: mvbr-lab is the bridge of network 'lab'");
	assert_fails(f->m, "bad", nat("10.81.0.0/33"), MV_ERR_INVALID, "config.ipv4_subnet");
	/* each message names the network */
	assert_fails(f->m, "bad", nat("10.81.0.0/33"), MV_ERR_INVALID, "network 'bad': ");

	/* nothing of the refused ones was made or stored */
	assert_int_equal(network_count(f->m), 1);
	assert_int_equal(stored(f->store), 1);
	assert_int_equal(netlink_link_get(f->nl, "mvbr-wide", &link), -ENODEV);
	assert_int_equal(netlink_link_get(f->nl, "mvbr-up", &link), -ENODEV);
	assert_int_equal(netlink_link_get(f->nl, "mvbr-taken", &link), 0);
	assert_string_equal(link.alias, "");

	/* a bridge-mode network uses the host's bridge and owns nothing */
	c = (struct net_config){.mode = NET_MODE_BRIDGE, .bridge = "uplink"};
	assert_int_equal(network_create(f->m, "host", &c, NULL, &err), 0);
	c.bridge = "nosuch";
	assert_fails(f->m, "host2", c, MV_ERR_INVALID,
		     "config.bridge: the host has no bridge named nosuch");
	c.bridge = "lo";
	assert_fails(f->m, "host3", c, MV_ERR_INVALID, "config.bridge: lo is a");
	assert_int_equal(network_delete(f->m, "host", &err), 0);
	assert_int_equal(netlink_link_get(f->nl, "uplink", &link), 0);

	assert_int_equal(network_delete(f->m, "lab", &err), 0);
	assert_int_equal(netlink_link_delete(f->nl, "uplink"), 0);
	assert_int_equal(netlink_link_delete(f->nl, "mvbr-taken"), 0);
}

/* What a crash can leave, and what a new manager's reconcile makes of it. */
static void test_reconcile_after_a_crash(void **state)
{
	struct fixture *f = *state;
	struct net_config c = nat("10.77.0.0/24");
	struct network_record rec = {.id = "5f1c2b8e-0000-4000-8000-000000000001",
				     .name = (char *)"half",
				     .config = nat("10.90.0.0/24")};
	struct network_manager *m2;
	struct netlink_link link;
	struct mv_error err = {};
	char alias[NETLINK_ALIAS_MAX];
	int routes = 0;

	NEED_NETNS();
	assert_int_equal(network_create(f->m, "lab", &c, NULL, &err), 0);
	/* lab's bridge vanished (deleted by hand) */
	assert_int_equal(netlink_link_delete(f->nl, "mvbr-lab"), 0);
	/* a network whose row was saved and whose bridge was made, but not marked */
	assert_int_equal(store_network_save(f->store, &rec, &err), 0);
	assert_int_equal(netlink_bridge_create(f->nl, "mvbr-half", NULL), 0);
	/* the bridge of a network whose row is gone (crash inside a delete) */
	assert_int_equal(netlink_bridge_create(f->nl, "mvbr-gone",
					       ALIAS_PREFIX "5f1c2b8e-0000-4000-8000-0000000000ff"),
			 0);
	/* the bridge of another daemon's network (another state directory) */
	assert_int_equal(
		netlink_bridge_create(f->nl, "mvbr-theirs",
				      "mvirt:other:network=5f1c2b8e-0000-4000-8000-0000000000ee"),
		0);
	/* someone else's bridge */
	assert_int_equal(netlink_bridge_create(f->nl, "user-br", NULL), 0);

	assert_int_equal(network_manager_new(f->store, INSTANCE, &m2, &err), 0);
	assert_int_equal(network_manager_reconcile(m2, &err), 0);
	assert_int_equal(network_count(m2), 2);

	assert_int_equal(netlink_link_get(f->nl, "mvbr-lab", &link), 0);
	assert_true(link.up);
	assert_int_equal(netlink_ipv4_route_foreach(f->nl, count_routes_on, &routes), 0);
	assert_int_equal(routes, 1);
	assert_int_equal(netlink_link_get(f->nl, "mvbr-half", &link), 0);
	snprintf(alias, sizeof(alias), ALIAS_PREFIX "%s", rec.id);
	assert_string_equal(link.alias, alias);
	assert_true(link.up);
	assert_int_equal(netlink_link_get(f->nl, "mvbr-gone", &link), -ENODEV);
	assert_int_equal(netlink_link_get(f->nl, "user-br", &link), 0);
	assert_int_equal(netlink_link_get(f->nl, "mvbr-theirs", &link), 0);

	/* reconciling again changes nothing */
	assert_int_equal(network_manager_reconcile(f->m, &err), 0);
	assert_int_equal(netlink_link_get(f->nl, "mvbr-half", &link), 0);

	assert_int_equal(network_delete(m2, "lab", &err), 0);
	assert_int_equal(network_delete(m2, "half", &err), 0);
	network_manager_free(m2);
	assert_int_equal(stored(f->store), 0);
	assert_int_equal(netlink_link_delete(f->nl, "user-br"), 0);
	assert_int_equal(netlink_link_delete(f->nl, "mvbr-theirs"), 0);
	/* f->m still lists lab and half: a fresh manager for teardown */
	network_manager_free(f->m);
	assert_int_equal(network_manager_new(f->store, INSTANCE, &f->m, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflicts_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_after_a_crash, setup, teardown),
	};

	have_netns = unshare(CLONE_NEWNET) == 0;
	if (!have_netns)
		fprintf(stderr, "# no network namespace (%s): skipping\n", strerror(errno));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
