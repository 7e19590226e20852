/* Unit tests of network/netlink.c and network/tap.c against the real kernel, inside a network
 * namespace of the test's own (unshare(CLONE_NEWNET) at start; it has only "lo" and goes away
 * with the process), so the machine's interfaces are never touched. Skipped when the test may
 * not make a namespace (not root). */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/macro.h"
#include "network/netlink.h"
#include "network/tap.h"

static bool have_netns;

static int setup(void **state)
{
	struct netlink *nl;

	if (!have_netns)
		return 0;
	assert_int_equal(netlink_open(&nl), 0);
	*state = nl;
	return 0;
}

static int teardown(void **state)
{
	netlink_close(*state);
	return 0;
}

#define NEED_NETNS()                                                                               \
	do {                                                                                       \
		if (!have_netns)                                                                   \
			skip(); /* needs root for a network namespace of its own */                \
	} while (0)

static void test_bridge_create_get_delete(void **state)
{
	struct netlink *nl = *state;
	struct netlink_link l;

	NEED_NETNS();
	assert_int_equal(netlink_link_get(nl, "mvbr-a", &l), -ENODEV);
	assert_int_equal(netlink_bridge_create(nl, "mvbr-a", "mvirt:network=a"), 0);
	assert_int_equal(netlink_link_get(nl, "mvbr-a", &l), 0);
	assert_string_equal(l.name, "mvbr-a");
	assert_string_equal(l.kind, "bridge");
	assert_string_equal(l.alias, "mvirt:network=a");
	assert_true(l.ifindex > 1);
	assert_false(l.up);
	assert_int_equal(l.master, 0);

	/* a second one of that name is refused, the first keeps its alias */
	assert_int_equal(netlink_bridge_create(nl, "mvbr-a", "other"), -EEXIST);
	assert_int_equal(netlink_link_get(nl, "mvbr-a", &l), 0);
	assert_string_equal(l.alias, "mvirt:network=a");

	assert_int_equal(netlink_link_set_up(nl, "mvbr-a", true), 0);
	assert_int_equal(netlink_link_get(nl, "mvbr-a", &l), 0);
	assert_true(l.up);

	assert_int_equal(netlink_link_delete(nl, "mvbr-a"), 0);
	assert_int_equal(netlink_link_get(nl, "mvbr-a", &l), -ENODEV);
	assert_int_equal(netlink_link_delete(nl, "mvbr-a"), -ENODEV);
}

static void test_bridge_without_alias(void **state)
{
	struct netlink *nl = *state;
	struct netlink_link l;

	NEED_NETNS();
	assert_int_equal(netlink_bridge_create(nl, "plain", NULL), 0);
	assert_int_equal(netlink_link_get(nl, "plain", &l), 0);
	assert_string_equal(l.alias, "");
	assert_int_equal(netlink_link_delete(nl, "plain"), 0);
}

static void test_bad_names(void **state)
{
	struct netlink *nl = *state;
	struct netlink_link l;

	NEED_NETNS();
	assert_int_equal(netlink_bridge_create(nl, "0123456789abcdef", NULL), -EINVAL);
	assert_int_equal(netlink_bridge_create(nl, "", NULL), -EINVAL);
	assert_int_equal(netlink_link_get(nl, "0123456789abcdef", &l), -EINVAL);
	assert_int_equal(tap_create("0123456789abcdef"), -EINVAL);
	assert_int_equal(tap_create(""), -EINVAL);
	assert_int_equal(tap_create(NULL), -EINVAL);
	/* the longest name that fits, 15 characters */
	assert_int_equal(netlink_bridge_create(nl, "0123456789abcde", NULL), 0);
	assert_int_equal(netlink_link_delete(nl, "0123456789abcde"), 0);
}

struct route_seen {
	int n;
	uint32_t dst;
	uint8_t prefix;
	char dev[16];
};

static int on_route(uint32_t dst, uint8_t prefix, const char *dev, void *userdata)
{
	struct route_seen *r = userdata;

	if (strcmp(dev, "mvbr-r") != 0)
		return 0;
	r->n++;
	r->dst = dst;
	r->prefix = prefix;
	snprintf(r->dev, sizeof(r->dev), "%s", dev);
	return 0;
}

static int stop_at_first(uint32_t dst, uint8_t prefix, const char *dev, void *userdata)
{
	(void)dst, (void)prefix, (void)dev;
	++*(int *)userdata;
	return -ECANCELED;
}

static void test_addresses_and_routes(void **state)
{
	struct netlink *nl = *state;
	struct route_seen seen = {0};
	static const uint8_t v6[16] = {0xfd, 0x42, 0, 1, [15] = 1};
	int calls = 0;

	NEED_NETNS();
	assert_int_equal(netlink_bridge_create(nl, "mvbr-r", NULL), 0);
	assert_int_equal(netlink_link_set_up(nl, "mvbr-r", true), 0);
	/* 10.77.3.1/24 */
	assert_int_equal(netlink_addr_add_ipv4(nl, "mvbr-r", 0x0a4d0301, 24), 0);
	assert_int_equal(netlink_addr_add_ipv4(nl, "mvbr-r", 0x0a4d0301, 24), -EEXIST);
	assert_int_equal(netlink_addr_add_ipv4(nl, "mvbr-r", 0x0a4d0301, 33), -EINVAL);
	assert_int_equal(netlink_addr_add_ipv4(nl, "nosuch", 0x0a4d0301, 24), -ENODEV);
	assert_int_equal(netlink_addr_add_ipv6(nl, "mvbr-r", v6, 64), 0);

	/* the connected route of the address, on the bridge */
	assert_int_equal(netlink_ipv4_route_foreach(nl, on_route, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.dst, 0x0a4d0300);
	assert_int_equal(seen.prefix, 24);
	assert_string_equal(seen.dev, "mvbr-r");
	/* a callback's error stops the walk and is returned */
	assert_int_equal(netlink_ipv4_route_foreach(nl, stop_at_first, &calls), -ECANCELED);
	assert_int_equal(calls, 1);

	assert_int_equal(netlink_link_delete(nl, "mvbr-r"), 0);
	seen = (struct route_seen){0};
	assert_int_equal(netlink_ipv4_route_foreach(nl, on_route, &seen), 0);
	assert_int_equal(seen.n, 0);
}

static void test_tap_lives_with_its_fd(void **state)
{
	struct netlink *nl = *state;
	struct netlink_link br, l;
	int fd;

	NEED_NETNS();
	assert_int_equal(netlink_bridge_create(nl, "mvbr-t", NULL), 0);
	fd = tap_create("mvtap0");
	assert_true(fd >= 0);
	assert_int_equal(netlink_link_get(nl, "mvtap0", &l), 0);
	assert_string_equal(l.kind, "tun");
	assert_int_equal(l.master, 0);

	/* a second tap, or the tap of a name that another link has, is refused */
	assert_int_equal(tap_create("mvtap0"), -EBUSY);
	assert_int_equal(tap_create("mvbr-t"), -EBUSY);
	assert_int_equal(tap_create("lo"), -EBUSY);

	assert_int_equal(netlink_link_set_master(nl, "mvtap0", "mvbr-t"), 0);
	assert_int_equal(netlink_link_set_up(nl, "mvtap0", true), 0);
	assert_int_equal(netlink_link_get(nl, "mvbr-t", &br), 0);
	assert_int_equal(netlink_link_get(nl, "mvtap0", &l), 0);
	assert_int_equal(l.master, br.ifindex);
	assert_true(l.up);
	assert_int_equal(netlink_link_set_master(nl, "mvtap0", "nosuch"), -ENODEV);
	assert_int_equal(netlink_link_set_master(nl, "mvtap0", NULL), 0);
	assert_int_equal(netlink_link_get(nl, "mvtap0", &l), 0);
	assert_int_equal(l.master, 0);

	/* not persistent: closing the last fd removes it */
	close(fd);
	assert_int_equal(netlink_link_get(nl, "mvtap0", &l), -ENODEV);
	assert_int_equal(netlink_link_delete(nl, "mvbr-t"), 0);
}

struct count {
	int links, bridges;
};

static int count_link(const struct netlink_link *l, void *userdata)
{
	struct count *c = userdata;

	c->links++;
	if (streq(l->kind, "bridge"))
		c->bridges++;
	return 0;
}

static void test_link_foreach(void **state)
{
	struct netlink *nl = *state;
	struct count before = {0}, after = {0};

	NEED_NETNS();
	assert_int_equal(netlink_link_foreach(nl, count_link, &before), 0);
	assert_true(before.links >= 1); /* lo */
	assert_int_equal(netlink_bridge_create(nl, "mvbr-c1", NULL), 0);
	assert_int_equal(netlink_bridge_create(nl, "mvbr-c2", NULL), 0);
	assert_int_equal(netlink_link_foreach(nl, count_link, &after), 0);
	assert_int_equal(after.links, before.links + 2);
	assert_int_equal(after.bridges, before.bridges + 2);
	assert_int_equal(netlink_link_delete(nl, "mvbr-c1"), 0);
	assert_int_equal(netlink_link_delete(nl, "mvbr-c2"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bridge_create_get_delete),
		cmocka_unit_test(test_bridge_without_alias),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_addresses_and_routes),
		cmocka_unit_test(test_tap_lives_with_its_fd),
		cmocka_unit_test(test_link_foreach),
	};

	have_netns = unshare(CLONE_NEWNET) == 0;
	if (!have_netns)
		fprintf(stderr, "# no network namespace (%s): skipping\n", strerror(errno));
	return cmocka_run_group_tests(tests, setup, teardown);
}
