/* Tests of netdef.c: the address parsers, overlap, names, and net_config_resolve(): the plans
 * it derives and the first problem it reports, with the field the message must start with and
 * the cause it must carry. Run under ASan, the copy and done cases also check for leaks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/macro.h"
#include "model/netdef.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static void test_mode_names(void **state)
{
	(void)state;
	assert_string_equal(net_mode_name(NET_MODE_UNSPECIFIED), "nat");
	assert_string_equal(net_mode_name(NET_MODE_NAT), "nat");
	assert_string_equal(net_mode_name(NET_MODE_ISOLATED), "isolated");
	assert_string_equal(net_mode_name(NET_MODE_BRIDGE), "bridge");
	assert_string_equal(net_mode_name((enum net_mode)4), "unknown");
	assert_string_equal(net_mode_name((enum net_mode) - 1), "unknown");
}

struct ipv4_case {
	const char *s;
	bool ok;
	uint32_t addr;
};

static void test_ipv4_parse(void **state)
{
	const struct ipv4_case cases[] = {
		{"10.0.0.1", true, IP(10, 0, 0, 1)},
		{"0.0.0.0", true, 0},
		{"255.255.255.255", true, UINT32_MAX},
		{"192.168.100.200", true, IP(192, 168, 100, 200)},
		{"1.2.3", false, 0},
		{"1.2.3.4.5", false, 0},
		{"01.2.3.4", false, 0},
		{"1.2.3.00", false, 0},
		{"1.2.3.010", false, 0},
		{"256.1.1.1", false, 0},
		{"1.2.3.1000", false, 0},
		{"1.2.3.4 ", false, 0},
		{" 1.2.3.4", false, 0},
		{"1. 2.3.4", false, 0},
		{"", false, 0},
		{"1.2.3.4/", false, 0},
		{"1.2.3.4/24", false, 0},
		{"1.2.3.", false, 0},
		{".1.2.3", false, 0},
		{"1..2.3", false, 0},
		{"+1.2.3.4", false, 0},
		{"-1.2.3.4", false, 0},
		{"0x1.2.3.4", false, 0},
		{"1.2.3.4\n", false, 0},
		{"a.b.c.d", false, 0},
		{"4294967295", false, 0},
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint32_t addr = 0xdeadbeef;
		int r = net_ipv4_parse(cases[i].s, &addr);

		if (cases[i].ok && (r != 0 || addr != cases[i].addr))
			fail_msg("'%s': expected %08x, got %d %08x", cases[i].s, cases[i].addr, r,
				 addr);
		if (!cases[i].ok && (r != -EINVAL || addr != 0xdeadbeef))
			fail_msg("'%s': expected -EINVAL and *ret untouched, got %d %08x",
				 cases[i].s, r, addr);
	}
	assert_int_equal(net_ipv4_parse(NULL, &(uint32_t){0}), -EINVAL);
}

struct cidr4_case {
	const char *s;
	bool ok;
	uint32_t addr;
	uint8_t prefix;
};

static void test_ipv4_cidr_parse(void **state)
{
	const struct cidr4_case cases[] = {
		{"10.77.0.0/24", true, IP(10, 77, 0, 0), 24},
		{"10.77.0.254/24", true, IP(10, 77, 0, 254), 24}, /* as written */
		{"0.0.0.0/0", true, 0, 0},
		{"1.2.3.4/32", true, IP(1, 2, 3, 4), 32},
		{"1.2.3.4/9", true, IP(1, 2, 3, 4), 9},
		{"1.2.3.4/", false, 0, 0},
		{"1.2.3.4/033", false, 0, 0},
		{"1.2.3.4/00", false, 0, 0},
		{"1.2.3.4/33", false, 0, 0},
		{"1.2.3.4/100", false, 0, 0},
		{"1.2.3.4/-1", false, 0, 0},
		{"1.2.3.4/+8", false, 0, 0},
		{"1.2.3.4/24 ", false, 0, 0},
		{"1.2.3.4 /24", false, 0, 0},
		{"1.2.3.4/ 24", false, 0, 0},
		{"1.2.3.4/24/", false, 0, 0},
		{"1.2.3.4/2x", false, 0, 0},
		{"1.2.3.4", false, 0, 0},
		{"1.2.3/24", false, 0, 0},
		{"01.2.3.4/24", false, 0, 0},
		{"256.1.1.1/8", false, 0, 0},
		{"/24", false, 0, 0},
		{"", false, 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct net_ipv4 p = {.addr = 0xdeadbeef, .prefix = 99};
		int r = net_ipv4_cidr_parse(cases[i].s, &p);

		if (cases[i].ok &&
		    (r != 0 || p.addr != cases[i].addr || p.prefix != cases[i].prefix))
			fail_msg("'%s': expected %08x/%u, got %d %08x/%u", cases[i].s,
				 cases[i].addr, cases[i].prefix, r, p.addr, p.prefix);
		if (!cases[i].ok && (r != -EINVAL || p.addr != 0xdeadbeef || p.prefix != 99))
			fail_msg("'%s': expected -EINVAL and *ret untouched, got %d", cases[i].s,
				 r);
	}
}

struct cidr6_case {
	const char *s;
	bool ok;
	uint8_t prefix;
};

static void test_ipv6_cidr_parse(void **state)
{
	const struct cidr6_case cases[] = {
		{"fd42:1::/64", true, 64},
		{"fd42:1::1/64", true, 64},
		{"2001:db8::/32", true, 32},
		{"::/1", true, 1},
		{"::1/128", true, 128},
		{"FD42:0001:0000:0000:0000:0000:0000:0000/48", true, 48},
		{"fd42::/0", false, 0},
		{"fd42::/129", false, 0},
		{"fd42::/064", false, 0},
		{"fd42::/", false, 0},
		{"fd42::", false, 0},
		{"fd42::/64 ", false, 0},
		{" fd42::/64", false, 0},
		{"fd42::/6a", false, 0},
		{"fd42:::/64", false, 0},
		{"fd42::g/64", false, 0},
		{"fe80::1%eth0/64", false, 0},
		{"10.0.0.0/8", false, 0},
		{"/64", false, 0},
		{"", false, 0},
		{"1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16:17:18:19:20/64", false, 0},
	};
	struct net_ipv6 p;
	const uint8_t fd42_1[16] = {0xfd, 0x42, 0, 1, [15] = 0};
	const uint8_t fd42_1_1[16] = {0xfd, 0x42, 0, 1, [15] = 1};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		int r;

		memset(&p, 0xaa, sizeof(p));
		r = net_ipv6_cidr_parse(cases[i].s, &p);

		if (cases[i].ok && (r != 0 || p.prefix != cases[i].prefix))
			fail_msg("'%s': expected /%u, got %d /%u", cases[i].s, cases[i].prefix, r,
				 p.prefix);
		if (!cases[i].ok && (r != -EINVAL || p.prefix != 0xaa))
			fail_msg("'%s': expected -EINVAL and *ret untouched, got %d", cases[i].s,
				 r);
	}
	assert_int_equal(net_ipv6_cidr_parse("fd42:1::/64", &p), 0);
	assert_memory_equal(p.addr, fd42_1, 16);
	assert_int_equal(net_ipv6_cidr_parse("fd42:1::1/64", &p), 0);
	assert_memory_equal(p.addr, fd42_1_1, 16); /* as written */
}

static void test_format_mask(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(net_ipv4_format(IP(10, 77, 0, 1), buf), "10.77.0.1");
	assert_string_equal(net_ipv4_format(0, buf), "0.0.0.0");
	assert_string_equal(net_ipv4_format(UINT32_MAX, buf), "255.255.255.255");
	assert_ptr_equal(net_ipv4_format(1, buf), buf);

	assert_int_equal(net_ipv4_mask(0), 0);
	assert_int_equal(net_ipv4_mask(1), 0x80000000u);
	assert_int_equal(net_ipv4_mask(8), 0xff000000u);
	assert_int_equal(net_ipv4_mask(24), 0xffffff00u);
	assert_int_equal(net_ipv4_mask(31), 0xfffffffeu);
	assert_int_equal(net_ipv4_mask(32), 0xffffffffu);
	assert_int_equal(net_ipv4_mask(40), 0xffffffffu);
}

struct overlap_case {
	const char *a, *b;
	bool overlaps;
};

static void test_overlaps(void **state)
{
	const struct overlap_case cases[] = {
		{"10.0.0.0/8", "10.77.0.0/24", true},      /* nested */
		{"10.77.0.0/24", "10.0.0.0/8", true},      /* nested, the other way */
		{"10.77.0.0/24", "10.77.0.0/24", true},    /* equal */
		{"10.77.0.254/24", "10.77.0.0/24", true},  /* host bits ignored */
		{"10.77.0.0/24", "10.77.0.128/25", true},  /* upper half */
		{"10.77.0.0/24", "10.78.0.0/24", false},   /* disjoint */
		{"10.77.0.0/24", "10.77.1.0/24", false},   /* adjacent */
		{"10.77.0.0/25", "10.77.0.128/25", false}, /* adjacent halves */
		{"10.77.0.255/32", "10.77.1.0/32", false}, /* adjacent hosts */
		{"10.77.0.5/32", "10.77.0.5/32", true},
		{"0.0.0.0/0", "192.168.1.0/24", true}, /* /0 holds everything */
		{"192.168.1.0/24", "0.0.0.0/0", true},
		{"0.0.0.0/0", "0.0.0.0/0", true},
		{"172.16.0.0/12", "172.32.0.0/12", false},
		{"172.16.0.0/12", "172.31.255.0/24", true},
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct net_ipv4 a, b;

		assert_int_equal(net_ipv4_cidr_parse(cases[i].a, &a), 0);
		assert_int_equal(net_ipv4_cidr_parse(cases[i].b, &b), 0);
		if (net_ipv4_overlaps(&a, &b) != cases[i].overlaps)
			fail_msg("%s and %s: expected overlaps=%d", cases[i].a, cases[i].b,
				 cases[i].overlaps);
	}
}

struct name_case {
	const char *s;
	bool ok;
};

static void test_names(void **state)
{
	const struct name_case cases[] = {
		{"a", true},
		{"0", true},
		{"lab", true},
		{"lab-1", true},
		{"9lives", true},
		{"lab-", true},
		{"abcdefghijklmnopqrstuvwxyz01234", true}, /* 31 */
		{"abcdefghijklmnopqrstuvwxyz012345", false},
		{"", false},
		{"-lab", false},
		{"Lab", false},
		{"lab_1", false},
		{"lab.1", false},
		{"lab 1", false},
		{"lab\n", false},
		{"caf\xc3\xa9", false},
	};
	struct mv_error err = {0};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		int r;

		mv_error_clear(&err);
		r = net_validate_name(cases[i].s, "networks[2].name", &err);
		if (cases[i].ok && r != 0)
			fail_msg("'%s': expected valid, got %d: %s", cases[i].s, r, err.msg);
		if (!cases[i].ok && (r != -EINVAL || err.kind != MV_ERR_INVALID ||
				     strncmp(err.msg, "networks[2].name: ", 18) != 0))
			fail_msg("'%s': expected -EINVAL naming networks[2].name, got %d: %s",
				 cases[i].s, r, err.msg);
	}

	mv_error_clear(&err);
	assert_int_equal(net_validate_name("Lab", NULL, &err), -EINVAL);
	assert_string_equal(
		err.msg,
		"name: 'Lab' is invalid: use 1-31 characters a-z 0-9 -, starting with a letter or digit");
	mv_error_clear(&err);
	assert_int_equal(net_validate_name(NULL, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "name: required");
	mv_error_clear(&err);
	assert_int_equal(net_validate_name("abcdefghijklmnopqrstuvwxyz0123456789", NULL, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "name: is too long (36 characters, at most 31)");
	mv_error_clear(&err);
	assert_int_equal(net_validate_name("a\x1b[2J", NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "'a?[2J'"));
	assert_int_equal(net_validate_name("bad name", NULL, NULL), -EINVAL);
}

static void test_ifnames(void **state)
{
	const struct name_case cases[] = {
		{"br0", true},
		{"virbr0", true},
		{"Br_lan.10-x", true},
		{"a", true},
		{"...", true},
		{"abcdefghijklmno", true}, /* 15 */
		{"abcdefghijklmnop", false},
		{"", false},
		{".", false},
		{"..", false},
		{"br 0", false},
		{"br/0", false},
		{"br:0", false},
		{"br\t0", false},
		{"br@0", false},
		{"br\xc3\xa9", false},
	};
	struct mv_error err = {0};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		int r;

		mv_error_clear(&err);
		r = net_validate_ifname(cases[i].s, "config.bridge", &err);
		if (cases[i].ok && r != 0)
			fail_msg("'%s': expected valid, got %d: %s", cases[i].s, r, err.msg);
		if (!cases[i].ok && (r != -EINVAL || err.kind != MV_ERR_INVALID ||
				     strncmp(err.msg, "config.bridge: ", 15) != 0))
			fail_msg("'%s': expected -EINVAL naming config.bridge, got %d: %s",
				 cases[i].s, r, err.msg);
	}

	mv_error_clear(&err);
	assert_int_equal(net_validate_ifname("br/0", "config.bridge", &err), -EINVAL);
	assert_string_equal(err.msg, "config.bridge: 'br/0' is not a valid interface name: use "
				     "1-15 characters A-Z a-z 0-9 _ . -");
	mv_error_clear(&err);
	assert_int_equal(net_validate_ifname("abcdefghijklmnop", NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "ifname: is too long (16 characters, at most 15)");
	mv_error_clear(&err);
	assert_int_equal(net_validate_ifname(NULL, "config.bridge", &err), -EINVAL);
	assert_string_equal(err.msg, "config.bridge: required");
}

/* ---- net_config_resolve ---- */

#define DEFAULT_SUBNET "10.77.0.0/24"

/* One config: the name (NULL: "lab") and the fields as given, but for ipv4_subnet, whose
 * NULL means DEFAULT_SUBNET in nat and isolated mode ("" leaves it unset). */
struct netcfg {
	const char *name;
	enum net_mode mode;
	const char *bridge, *subnet, *start, *end, *ipv6, *domain;
};

static char *dup_or_null(const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	assert_non_null(d);
	return d;
}

static void build(struct net_config *c, const struct netcfg *t)
{
	const char *subnet = t->subnet;

	if (!subnet && t->mode != NET_MODE_BRIDGE)
		subnet = DEFAULT_SUBNET;
	*c = (struct net_config){
		.mode = t->mode,
		.bridge = dup_or_null(t->bridge),
		.ipv4_subnet = dup_or_null(subnet),
		.dhcp_start = dup_or_null(t->start),
		.dhcp_end = dup_or_null(t->end),
		.ipv6_prefix = dup_or_null(t->ipv6),
		.domain = dup_or_null(t->domain),
	};
}

static int resolve(const struct netcfg *t, const char *prefix, struct net_plan *ret,
		   struct mv_error *err)
{
	struct net_config c;
	int r;

	build(&c, t);
	r = net_config_resolve(t->name ? t->name : "lab", &c, prefix, ret, err);
	net_config_done(&c);
	return r;
}

struct plan_case {
	struct netcfg cfg;
	const char *network, *gateway, *start, *end;
	uint8_t prefix;
};

/* The addresses derived from valid configs: gateway from the host bits or network + 1, the
 * default DHCP range on the larger side of the gateway, one given end extended. */
static void test_resolve_plans(void **state)
{
	const struct plan_case cases[] = {
		{{.subnet = "10.77.0.0/24"},
		 "10.77.0.0",
		 "10.77.0.1",
		 "10.77.0.2",
		 "10.77.0.254",
		 24},
		{{.subnet = "10.77.0.254/24"},
		 "10.77.0.0",
		 "10.77.0.254",
		 "10.77.0.1",
		 "10.77.0.253",
		 24}, /* gateway at the top */
		{{.subnet = "10.77.0.100/24"},
		 "10.77.0.0",
		 "10.77.0.100",
		 "10.77.0.101",
		 "10.77.0.254",
		 24},
		{{.subnet = "10.77.0.1/24"},
		 "10.77.0.0",
		 "10.77.0.1",
		 "10.77.0.2",
		 "10.77.0.254",
		 24},
		{{.subnet = "192.168.5.8/30"},
		 "192.168.5.8",
		 "192.168.5.9",
		 "192.168.5.10",
		 "192.168.5.10",
		 30},
		{{.subnet = "192.168.5.10/30"},
		 "192.168.5.8",
		 "192.168.5.10",
		 "192.168.5.9",
		 "192.168.5.9",
		 30}, /* /30, gateway at the top */
		{{.subnet = "10.0.0.0/8"}, "10.0.0.0", "10.0.0.1", "10.0.0.2", "10.255.255.254", 8},
		{{.subnet = "10.255.255.254/8"},
		 "10.0.0.0",
		 "10.255.255.254",
		 "10.0.0.1",
		 "10.255.255.253",
		 8},
		{{.subnet = "172.16.0.0/12"},
		 "172.16.0.0",
		 "172.16.0.1",
		 "172.16.0.2",
		 "172.31.255.254",
		 12},
		{{.start = "10.77.0.10", .end = "10.77.0.20"},
		 "10.77.0.0",
		 "10.77.0.1",
		 "10.77.0.10",
		 "10.77.0.20",
		 24},
		{{.start = "10.77.0.10", .end = "10.77.0.10"},
		 "10.77.0.0",
		 "10.77.0.1",
		 "10.77.0.10",
		 "10.77.0.10",
		 24},
		{{.start = "10.77.0.2", .end = "10.77.0.254"},
		 "10.77.0.0",
		 "10.77.0.1",
		 "10.77.0.2",
		 "10.77.0.254",
		 24},
		{{.start = "10.77.0.50"},
		 "10.77.0.0",
		 "10.77.0.1",
		 "10.77.0.50",
		 "10.77.0.254",
		 24},
		{{.end = "10.77.0.50"}, "10.77.0.0", "10.77.0.1", "10.77.0.2", "10.77.0.50", 24},
		{{.subnet = "10.77.0.100/24", .start = "10.77.0.10"},
		 "10.77.0.0",
		 "10.77.0.100",
		 "10.77.0.10",
		 "10.77.0.99",
		 24}, /* below the gateway: up to it */
		{{.subnet = "10.77.0.100/24", .start = "10.77.0.150"},
		 "10.77.0.0",
		 "10.77.0.100",
		 "10.77.0.150",
		 "10.77.0.254",
		 24},
		{{.subnet = "10.77.0.100/24", .end = "10.77.0.50"},
		 "10.77.0.0",
		 "10.77.0.100",
		 "10.77.0.1",
		 "10.77.0.50",
		 24},
		{{.subnet = "10.77.0.100/24", .end = "10.77.0.200"},
		 "10.77.0.0",
		 "10.77.0.100",
		 "10.77.0.101",
		 "10.77.0.200",
		 24}, /* above the gateway: from it */
		{{.subnet = "10.77.0.254/24", .start = "10.77.0.1", .end = "10.77.0.253"},
		 "10.77.0.0",
		 "10.77.0.254",
		 "10.77.0.1",
		 "10.77.0.253",
		 24},
		{{.mode = NET_MODE_ISOLATED},
		 "10.77.0.0",
		 "10.77.0.1",
		 "10.77.0.2",
		 "10.77.0.254",
		 24},
		{{.mode = NET_MODE_NAT, .start = "", .end = ""}, /* "" is unset */
		 "10.77.0.0",
		 "10.77.0.1",
		 "10.77.0.2",
		 "10.77.0.254",
		 24},
		{{.subnet = "100.64.0.0/10"},
		 "100.64.0.0",
		 "100.64.0.1",
		 "100.64.0.2",
		 "100.127.255.254",
		 10},
		{{.subnet = "223.255.255.0/24"},
		 "223.255.255.0",
		 "223.255.255.1",
		 "223.255.255.2",
		 "223.255.255.254",
		 24}, /* just below multicast */
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		const struct plan_case *t = &cases[i];
		struct mv_error err = {0};
		struct net_plan p;
		uint32_t network, gateway, start, end;
		int r;

		assert_int_equal(net_ipv4_parse(t->network, &network), 0);
		assert_int_equal(net_ipv4_parse(t->gateway, &gateway), 0);
		assert_int_equal(net_ipv4_parse(t->start, &start), 0);
		assert_int_equal(net_ipv4_parse(t->end, &end), 0);
		memset(&p, 0xaa, sizeof(p));
		r = resolve(&t->cfg, NULL, &p, &err);
		if (r != 0)
			fail_msg("case %zu (%s): expected success, got %d: %s", i,
				 strempty(t->cfg.subnet), r, err.msg);
		assert_int_equal(err.kind, MV_ERR_NONE);
		if (p.subnet.addr != network || p.subnet.prefix != t->prefix ||
		    p.gateway != gateway || p.dhcp_start != start || p.dhcp_end != end) {
			char a[16], b[16], c[16], d[16];

			fail_msg("case %zu: got %s/%u gw %s range %s..%s", i,
				 net_ipv4_format(p.subnet.addr, a), p.subnet.prefix,
				 net_ipv4_format(p.gateway, b), net_ipv4_format(p.dhcp_start, c),
				 net_ipv4_format(p.dhcp_end, d));
		}
		assert_false(p.has_ipv6);
	}
}

static void test_resolve_ipv6_plan(void **state)
{
	const uint8_t fd42_1[16] = {0xfd, 0x42, 0, 1};
	const uint8_t net48[16] = {0x20, 0x01, 0x0d, 0xb8, 0x12, 0x30};
	struct netcfg t = {.ipv6 = "fd42:1::1/64"};
	struct mv_error err = {0};
	struct net_plan p;

	(void)state;
	assert_int_equal(resolve(&t, NULL, &p, &err), 0);
	assert_true(p.has_ipv6);
	assert_int_equal(p.ipv6.prefix, 64);
	assert_memory_equal(p.ipv6.addr, fd42_1, 16); /* host bits dropped */

	t.ipv6 = "2001:db8:1234:5678::/44";
	assert_int_equal(resolve(&t, NULL, &p, &err), 0);
	assert_int_equal(p.ipv6.prefix, 44);
	assert_memory_equal(p.ipv6.addr, net48, 16); /* 0x34 -> 0x30, the rest cleared */

	t.ipv6 = "8000::/1";
	assert_int_equal(resolve(&t, NULL, &p, &err), -EINVAL); /* holds fe80::/10 */
}

static void test_resolve_bridge_plan(void **state)
{
	const struct net_plan zero = {0};
	struct netcfg t = {.mode = NET_MODE_BRIDGE, .bridge = "br0"};
	struct mv_error err = {0};
	struct net_plan p;

	(void)state;
	memset(&p, 0xaa, sizeof(p));
	assert_int_equal(resolve(&t, NULL, &p, &err), 0);
	assert_memory_equal(&p, &zero, sizeof(p));

	/* A long name is fine when no bridge name is derived from it. */
	t.name = "abcdefghijklmnopqrstuvwxyz01234";
	assert_int_equal(resolve(&t, NULL, NULL, &err), 0);
	/* As is a trailing '-': no domain is derived either. */
	t.name = "lab-";
	assert_int_equal(resolve(&t, NULL, NULL, &err), 0);
	t.bridge = "";
	t.name = "lab";
	t.subnet = "";
	t.start = t.end = t.ipv6 = t.domain = "";
	assert_int_equal(resolve(&t, NULL, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "config.bridge: required in bridge mode");
}

/* Other valid configs, without checking the plan. */
static void test_resolve_valid(void **state)
{
	const struct netcfg cases[] = {
		{.bridge = "mybr0"},
		{.mode = NET_MODE_NAT, .bridge = "Br_lan.10-x"},
		{.name = "abcdefghij"}, /* mvbr-abcdefghij: 15 characters */
		{.name = "abcdefghijklmnopqrstuvwxyz01234", .bridge = "br0"},
		{.name = "lab-", .domain = "lab.example"},
		{.name = "0"},
		{.domain = "lab.example.com"},
		{.domain = "a"},
		{.domain = "x-1.0-y.z9"},
		{.domain =
			 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"}, /* 63 */
		{.ipv6 = "fd42:1::/64"},
		{.ipv6 = "2001:db8::/32"},
		{.ipv6 = "fd00::/8"},
		{.ipv6 = "fc00::/7"},
		{.ipv6 = "fe00::/9"}, /* just below link-local */
		{.ipv6 = "fec0::/10"},
		{.ipv6 = "::2:0:0:0:0/64"},
		{.subnet = "1.0.0.0/8"},
		{.subnet = "126.255.255.0/24"},
		{.subnet = "128.0.0.0/8"},
		{.subnet = "169.253.0.0/16"},
		{.subnet = "169.255.0.0/16"},
		{.subnet = "169.0.0.0/9"},
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct mv_error err = {0};
		int r = resolve(&cases[i], NULL, NULL, &err);

		if (r != 0)
			fail_msg("case %zu: expected success, got %d: %s", i, r, err.msg);
	}
}

struct error_case {
	const char *what;
	struct netcfg cfg;
	const char *field; /* the message starts with "<field>: " */
	const char *cause; /* and contains this after it */
};

#define LONG_DOMAIN                                                                                \
	"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl.com" /* 64 + 4 */

static const struct error_case error_cases[] = {
	/* name */
	{"no name", {.name = ""}, "name", "required"},
	{"bad name", {.name = "Lab"}, "name", "is invalid"},
	{"long name", {.name = "abcdefghijklmnopqrstuvwxyz012345"}, "name", "too long"},
	{"derived bridge too long",
	 {.name = "abcdefghijk"},
	 "name",
	 "too long for the bridge name mvbr-abcdefghijk"},
	{"derived bridge too long, hint", {.name = "abcdefghijk"}, "name", "set config.bridge"},
	{"derived bridge too long, isolated",
	 {.name = "abcdefghijklmnop", .mode = NET_MODE_ISOLATED},
	 "name",
	 "at most 10 characters"},
	{"derived domain", {.name = "lab-"}, "name", "cannot make the domain lab-.mvirt"},
	{"derived domain, hint", {.name = "lab-"}, "name", "set config.domain"},
	/* mode */
	{"unknown mode", {.mode = (enum net_mode)4}, "config.mode", "unknown value 4"},
	{"negative mode", {.mode = (enum net_mode) - 1}, "config.mode", "unknown value -1"},
	/* bridge mode */
	{"bridge mode, no bridge", {.mode = NET_MODE_BRIDGE}, "config.bridge", "required"},
	{"bridge mode, bad bridge",
	 {.mode = NET_MODE_BRIDGE, .bridge = "br 0"},
	 "config.bridge",
	 "not a valid interface name"},
	{"bridge mode, long bridge",
	 {.mode = NET_MODE_BRIDGE, .bridge = "abcdefghijklmnop"},
	 "config.bridge",
	 "too long"},
	{"bridge mode, subnet",
	 {.mode = NET_MODE_BRIDGE, .bridge = "br0", .subnet = "10.77.0.0/24"},
	 "config.ipv4_subnet",
	 "not used in bridge mode"},
	{"bridge mode, dhcp_start",
	 {.mode = NET_MODE_BRIDGE, .bridge = "br0", .start = "10.77.0.5"},
	 "config.dhcp_start",
	 "not used in bridge mode"},
	{"bridge mode, dhcp_end",
	 {.mode = NET_MODE_BRIDGE, .bridge = "br0", .end = "10.77.0.5"},
	 "config.dhcp_end",
	 "not used in bridge mode"},
	{"bridge mode, ipv6",
	 {.mode = NET_MODE_BRIDGE, .bridge = "br0", .ipv6 = "fd42::/64"},
	 "config.ipv6_prefix",
	 "not used in bridge mode"},
	{"bridge mode, domain",
	 {.mode = NET_MODE_BRIDGE, .bridge = "br0", .domain = "lab"},
	 "config.domain",
	 "not used in bridge mode"},
	/* nat/isolated bridge */
	{"bad bridge", {.bridge = "br:0"}, "config.bridge", "not a valid interface name"},
	{"bridge dot", {.bridge = "."}, "config.bridge", "not a valid interface name"},
	{"long bridge", {.bridge = "abcdefghijklmnop"}, "config.bridge", "too long"},
	/* ipv4_subnet */
	{"no subnet", {.subnet = ""}, "config.ipv4_subnet", "required in nat mode"},
	{"no subnet, isolated",
	 {.mode = NET_MODE_ISOLATED, .subnet = ""},
	 "config.ipv4_subnet",
	 "required in isolated mode"},
	{"subnet /33", {.subnet = "10.0.0.0/33"}, "config.ipv4_subnet", "must be 0..32"},
	{"subnet /", {.subnet = "10.0.0.0/"}, "config.ipv4_subnet", "must be 0..32"},
	{"subnet /033", {.subnet = "10.0.0.0/033"}, "config.ipv4_subnet", "must be 0..32"},
	{"subnet no prefix", {.subnet = "10.0.0.0"}, "config.ipv4_subnet", "not an IPv4 prefix"},
	{"subnet 3 octets", {.subnet = "10.0.0/24"}, "config.ipv4_subnet", "not an IPv4 prefix"},
	{"subnet 5 octets",
	 {.subnet = "10.0.0.0.0/24"},
	 "config.ipv4_subnet",
	 "not an IPv4 prefix"},
	{"subnet leading 0",
	 {.subnet = "010.0.0.0/24"},
	 "config.ipv4_subnet",
	 "not an IPv4 prefix"},
	{"subnet 256", {.subnet = "10.256.0.0/24"}, "config.ipv4_subnet", "not an IPv4 prefix"},
	{"subnet space", {.subnet = "10.0.0.0/24 "}, "config.ipv4_subnet", "not an IPv4 prefix"},
	{"subnet /-1", {.subnet = "10.0.0.0/-1"}, "config.ipv4_subnet", "not an IPv4 prefix"},
	{"subnet /100", {.subnet = "10.0.0.0/100"}, "config.ipv4_subnet", "must be 0..32"},
	{"subnet /00", {.subnet = "10.0.0.0/00"}, "config.ipv4_subnet", "must be 0..32"},
	{"subnet /31", {.subnet = "10.0.0.0/31"}, "config.ipv4_subnet", "must be 8..30"},
	{"subnet /32", {.subnet = "10.0.0.1/32"}, "config.ipv4_subnet", "must be 8..30"},
	{"subnet /7", {.subnet = "10.0.0.0/7"}, "config.ipv4_subnet", "must be 8..30"},
	{"subnet /0", {.subnet = "0.0.0.0/0"}, "config.ipv4_subnet", "must be 8..30"},
	{"this network", {.subnet = "0.0.0.0/8"}, "config.ipv4_subnet", "overlaps 0.0.0.0/8"},
	{"this network, inside", {.subnet = "0.1.2.0/24"}, "config.ipv4_subnet", "0.0.0.0/8"},
	{"loopback", {.subnet = "127.0.0.0/8"}, "config.ipv4_subnet", "127.0.0.0/8 (loopback)"},
	{"loopback, inside", {.subnet = "127.1.0.0/16"}, "config.ipv4_subnet", "(loopback)"},
	{"link-local", {.subnet = "169.254.0.0/16"}, "config.ipv4_subnet", "(link-local)"},
	{"link-local, inside", {.subnet = "169.254.10.0/24"}, "config.ipv4_subnet", "(link-local)"},
	{"holds link-local", {.subnet = "169.0.0.0/8"}, "config.ipv4_subnet", "(link-local)"},
	{"multicast", {.subnet = "224.0.0.0/8"}, "config.ipv4_subnet", "(multicast)"},
	{"multicast, top", {.subnet = "239.255.255.0/24"}, "config.ipv4_subnet", "(multicast)"},
	{"reserved", {.subnet = "240.0.0.0/8"}, "config.ipv4_subnet", "240.0.0.0/4 (reserved)"},
	{"broadcast /24",
	 {.subnet = "255.255.255.0/24"},
	 "config.ipv4_subnet",
	 "240.0.0.0/4 (reserved)"},
	{"gateway is broadcast",
	 {.subnet = "10.77.0.255/24"},
	 "config.ipv4_subnet",
	 "10.77.0.255 is the broadcast address; write the network (10.77.0.0/24)"},
	{"gateway is broadcast /30",
	 {.subnet = "10.77.0.7/30"},
	 "config.ipv4_subnet",
	 "10.77.0.7 is the broadcast address"},
	/* dhcp_start */
	{"start syntax", {.start = "10.77.0"}, "config.dhcp_start", "not an IPv4 address"},
	{"start leading 0", {.start = "10.77.0.05"}, "config.dhcp_start", "not an IPv4 address"},
	{"start space", {.start = "10.77.0.5 "}, "config.dhcp_start", "not an IPv4 address"},
	{"start cidr", {.start = "10.77.0.5/24"}, "config.dhcp_start", "not an IPv4 address"},
	{"start outside below",
	 {.start = "10.76.255.255"},
	 "config.dhcp_start",
	 "outside config.ipv4_subnet 10.77.0.0/24"},
	{"start outside above", {.start = "10.77.1.5"}, "config.dhcp_start", "outside"},
	{"start network", {.start = "10.77.0.0"}, "config.dhcp_start", "is the network address"},
	{"start broadcast",
	 {.start = "10.77.0.255"},
	 "config.dhcp_start",
	 "is the broadcast address"},
	{"start gateway", {.start = "10.77.0.1"}, "config.dhcp_start", "is the gateway address"},
	{"start gateway written",
	 {.subnet = "10.77.0.254/24", .start = "10.77.0.254"},
	 "config.dhcp_start",
	 "10.77.0.254 is the gateway address"},
	/* dhcp_end */
	{"end syntax", {.end = "x"}, "config.dhcp_end", "not an IPv4 address"},
	{"end empty-ish", {.end = " "}, "config.dhcp_end", "not an IPv4 address"},
	{"end outside", {.end = "10.78.0.1"}, "config.dhcp_end", "outside"},
	{"end network", {.end = "10.77.0.0"}, "config.dhcp_end", "is the network address"},
	{"end broadcast", {.end = "10.77.0.255"}, "config.dhcp_end", "is the broadcast address"},
	{"end gateway", {.end = "10.77.0.1"}, "config.dhcp_end", "is the gateway address"},
	{"start bad before end bad",
	 {.start = "10.77.0.0", .end = "10.77.0.255"},
	 "config.dhcp_start",
	 "network"},
	/* the range */
	{"start after end",
	 {.start = "10.77.0.20", .end = "10.77.0.10"},
	 "config.dhcp_end",
	 "10.77.0.10 is before config.dhcp_start 10.77.0.20"},
	{"start after default end",
	 {.subnet = "10.77.0.254/24", .end = "10.77.0.5", .start = "10.77.0.6"},
	 "config.dhcp_end",
	 "before"},
	{"range holds gateway",
	 {.subnet = "10.77.0.100/24", .start = "10.77.0.10", .end = "10.77.0.200"},
	 "config.dhcp_start",
	 "the range 10.77.0.10..10.77.0.200 contains the gateway 10.77.0.100"},
	/* ipv6_prefix */
	{"ipv6 syntax", {.ipv6 = "fd42::g/64"}, "config.ipv6_prefix", "not an IPv6 prefix"},
	{"ipv6 no prefix", {.ipv6 = "fd42::"}, "config.ipv6_prefix", "not an IPv6 prefix"},
	{"ipv6 v4", {.ipv6 = "10.0.0.0/8"}, "config.ipv6_prefix", "not an IPv6 prefix"},
	{"ipv6 /0", {.ipv6 = "fd42::/0"}, "config.ipv6_prefix", "must be 1..128"},
	{"ipv6 /129", {.ipv6 = "fd42::/129"}, "config.ipv6_prefix", "must be 1..128"},
	{"ipv6 /064", {.ipv6 = "fd42::/064"}, "config.ipv6_prefix", "must be 1..128"},
	{"ipv6 /", {.ipv6 = "fd42::/"}, "config.ipv6_prefix", "must be 1..128"},
	{"ipv6 space", {.ipv6 = "fd42::/64 "}, "config.ipv6_prefix", "not an IPv6 prefix"},
	{"ipv6 /65", {.ipv6 = "fd42::/65"}, "config.ipv6_prefix", "must be 1..64"},
	{"ipv6 /128", {.ipv6 = "fd42::1/128"}, "config.ipv6_prefix", "must be 1..64"},
	{"ipv6 link-local", {.ipv6 = "fe80::/64"}, "config.ipv6_prefix", "fe80::/10 (link-local)"},
	{"ipv6 link-local top", {.ipv6 = "febf:1::/64"}, "config.ipv6_prefix", "(link-local)"},
	{"ipv6 multicast", {.ipv6 = "ff02::/64"}, "config.ipv6_prefix", "ff00::/8 (multicast)"},
	{"ipv6 loopback", {.ipv6 = "::/64"}, "config.ipv6_prefix", "::1/128 (loopback)"},
	{"ipv6 holds all", {.ipv6 = "::/1"}, "config.ipv6_prefix", "(loopback)"},
	{"ipv6 holds ll", {.ipv6 = "fe00::/7"}, "config.ipv6_prefix", "(link-local)"},
	/* domain */
	{"domain upper", {.domain = "Lab.example"}, "config.domain", "a character other than"},
	{"domain underscore", {.domain = "my_lab"}, "config.domain", "a character other than"},
	{"domain space", {.domain = "my lab"}, "config.domain", "a character other than"},
	{"domain empty label", {.domain = "lab..example"}, "config.domain", "an empty label"},
	{"domain trailing dot", {.domain = "lab.example."}, "config.domain", "an empty label"},
	{"domain leading dot", {.domain = ".lab"}, "config.domain", "an empty label"},
	{"domain dot", {.domain = "."}, "config.domain", "an empty label"},
	{"domain hyphen start", {.domain = "-lab.example"}, "config.domain", "starting or ending"},
	{"domain hyphen end", {.domain = "lab-.example"}, "config.domain", "starting or ending"},
	{"domain long label", {.domain = LONG_DOMAIN}, "config.domain", "longer than 63"},
	/* the order of fields: the first problem wins */
	{"order name before mode", {.name = "", .mode = (enum net_mode)9}, "name", "required"},
	{"order mode before subnet",
	 {.mode = (enum net_mode)9, .subnet = "x"},
	 "config.mode",
	 "unknown"},
	{"order bridge before subnet",
	 {.bridge = "a b", .subnet = "x"},
	 "config.bridge",
	 "interface name"},
	{"order subnet before dhcp",
	 {.subnet = "127.0.0.0/8", .start = "x"},
	 "config.ipv4_subnet",
	 "loopback"},
	{"order dhcp before ipv6",
	 {.start = "x", .ipv6 = "x"},
	 "config.dhcp_start",
	 "not an IPv4 address"},
	{"order ipv6 before domain",
	 {.ipv6 = "x", .domain = "-"},
	 "config.ipv6_prefix",
	 "not an IPv6 prefix"},
};

static void test_resolve_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(error_cases); i++) {
		const struct error_case *t = &error_cases[i];
		struct mv_error err = {0};
		struct net_plan p, untouched;
		size_t n = strlen(t->field);
		int r;

		memset(&p, 0xaa, sizeof(p));
		untouched = p;
		r = resolve(&t->cfg, NULL, &p, &err);
		if (r != -EINVAL || err.code != -EINVAL || err.kind != MV_ERR_INVALID)
			fail_msg("%s: expected -EINVAL/invalid, got %d (code %d, %s): %s", t->what,
				 r, err.code, mv_error_kind_name(err.kind), err.msg);
		if (strncmp(err.msg, t->field, n) != 0 || strncmp(err.msg + n, ": ", 2) != 0 ||
		    !strstr(err.msg + n, t->cause))
			fail_msg("%s: message '%s' does not start with '%s: ' or lacks '%s'",
				 t->what, err.msg, t->field, t->cause);
		if (memcmp(&p, &untouched, sizeof(p)) != 0)
			fail_msg("%s: *ret was written on failure", t->what);
	}
}

/* Messages word for word, for the forms the documentation quotes. */
static void test_resolve_exact_messages(void **state)
{
	const struct {
		struct netcfg cfg;
		const char *msg;
	} cases[] = {
		{{.subnet = "10.0.0.0/33"},
		 "config.ipv4_subnet: '10.0.0.0/33': the prefix length must be 0..32"},
		{{.subnet = "10.0.0.0/31"},
		 "config.ipv4_subnet: '10.0.0.0/31': the prefix length must be 8..30"},
		{{.subnet = "10.0.0/24"},
		 "config.ipv4_subnet: '10.0.0/24': not an IPv4 prefix: use A.B.C.D/N, like 10.77.0.0/24"},
		{{.subnet = "127.0.0.0/24"},
		 "config.ipv4_subnet: '127.0.0.0/24' overlaps 127.0.0.0/8 (loopback); use private space "
		 "like 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"},
		{{.subnet = "10.77.0.255/24"},
		 "config.ipv4_subnet: '10.77.0.255/24': 10.77.0.255 is the broadcast address; write the "
		 "network (10.77.0.0/24) or the gateway's address"},
		{{.subnet = ""}, "config.ipv4_subnet: required in nat mode"},
		{{.start = "10.78.0.5"},
		 "config.dhcp_start: 10.78.0.5 is outside config.ipv4_subnet 10.77.0.0/24"},
		{{.start = "10.77.0.1"},
		 "config.dhcp_start: 10.77.0.1 is the gateway address of 10.77.0.0/24"},
		{{.end = "10.77.0.255"},
		 "config.dhcp_end: 10.77.0.255 is the broadcast address of 10.77.0.0/24"},
		{{.start = "1.2.3.4 "},
		 "config.dhcp_start: '1.2.3.4 ' is not an IPv4 address: use A.B.C.D, like 10.77.0.10"},
		{{.start = "10.77.0.9", .end = "10.77.0.8"},
		 "config.dhcp_end: 10.77.0.8 is before config.dhcp_start 10.77.0.9"},
		{{.subnet = "10.77.0.128/24", .start = "10.77.0.2", .end = "10.77.0.250"},
		 "config.dhcp_start: the range 10.77.0.2..10.77.0.250 contains the gateway 10.77.0.128; "
		 "put the range on one side of it"},
		{{.ipv6 = "fd42::/96"},
		 "config.ipv6_prefix: 'fd42::/96': the prefix length must be 1..64 (router "
		 "advertisements need /64 or shorter)"},
		{{.ipv6 = "fe80::/64"},
		 "config.ipv6_prefix: 'fe80::/64' overlaps fe80::/10 (link-local); use a unique local "
		 "prefix like fd42:1::/64"},
		{{.domain = "a..b"},
		 "config.domain: 'a..b' has an empty label: use dot-separated labels of 1-63 characters "
		 "a-z 0-9 -, not starting or ending with '-'"},
		{{.name = "abcdefghijk"},
		 "name: 'abcdefghijk' is too long for the bridge name mvbr-abcdefghijk (at most 15 "
		 "characters); pick a name of at most 10 characters or set config.bridge"},
		{{.name = "lab-"},
		 "name: 'lab-' ends with '-', which cannot make the domain lab-.mvirt; pick another name "
		 "or set config.domain"},
		{{.mode = (enum net_mode)7}, "config.mode: unknown value 7"},
		{{.mode = NET_MODE_BRIDGE, .bridge = "br0", .domain = "x"},
		 "config.domain: not used in bridge mode (the bridge's own network assigns addresses)"},
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct mv_error err = {0};

		assert_int_equal(resolve(&cases[i].cfg, NULL, NULL, &err), -EINVAL);
		assert_string_equal(err.msg, cases[i].msg);
	}
}

/* Control characters in user input never reach the message; long input is cut. */
static void test_resolve_quoting(void **state)
{
	struct mv_error err = {0};
	struct netcfg t = {.subnet = "10.0.0.0/24\n\x1b[2J"};
	char long_subnet[300];

	(void)state;
	assert_int_equal(resolve(&t, NULL, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "config.ipv4_subnet: '10.0.0.0/24??[2J': not an IPv4 prefix: "
				     "use A.B.C.D/N, like 10.77.0.0/24");

	memset(long_subnet, '1', sizeof(long_subnet) - 1);
	long_subnet[sizeof(long_subnet) - 1] = '\0';
	t.subnet = long_subnet;
	mv_error_clear(&err);
	assert_int_equal(resolve(&t, NULL, NULL, &err), -EINVAL);
	assert_true(strlen(err.msg) < 200);

	t = (struct netcfg){.domain = "lab\x7f"};
	mv_error_clear(&err);
	assert_int_equal(resolve(&t, NULL, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "'lab?'"));
}

/* The prefix of field names, a NULL err, a NULL ret, and an error already set. */
static void test_resolve_prefix(void **state)
{
	struct netcfg t = {.subnet = "10.0.0.0/33"};
	struct mv_error err = {0};

	(void)state;
	assert_int_equal(resolve(&t, "", NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "ipv4_subnet: '10.0.0.0/33': the prefix length must be 0..32");

	mv_error_clear(&err);
	assert_int_equal(resolve(&t, "networks[1].config.", NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "networks[1].config.ipv4_subnet: '10.0.0.0/33': the prefix "
				     "length must be 0..32");

	mv_error_clear(&err);
	t = (struct netcfg){.start = "10.78.0.1"};
	assert_int_equal(resolve(&t, "spec.", NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "spec.dhcp_start: 10.78.0.1 is outside spec.ipv4_subnet "
				     "10.77.0.0/24");

	mv_error_clear(&err);
	t = (struct netcfg){.mode = NET_MODE_BRIDGE, .bridge = "br 0"};
	assert_int_equal(resolve(&t, "spec.", NULL, &err), -EINVAL);
	assert_true(strncmp(err.msg, "spec.bridge: ", 13) == 0);

	mv_error_clear(&err);
	t = (struct netcfg){.name = "abcdefghijk"};
	assert_int_equal(resolve(&t, "", NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "or set bridge"));

	/* A NULL error object is allowed, for both outcomes. */
	t = (struct netcfg){.subnet = "x"};
	assert_int_equal(resolve(&t, NULL, NULL, NULL), -EINVAL);
	t = (struct netcfg){0};
	assert_int_equal(resolve(&t, NULL, NULL, NULL), 0);

	/* The first error recorded wins. */
	mv_error_clear(&err);
	mv_err_invalid(&err, "earlier");
	t = (struct netcfg){.subnet = "x"};
	assert_int_equal(resolve(&t, NULL, NULL, &err), -EINVAL);
	assert_string_equal(err.msg, "earlier");
}

static void test_resolve_not_modified(void **state)
{
	struct netcfg t = {.bridge = "br0",
			   .subnet = "10.77.0.254/24",
			   .start = "10.77.0.10",
			   .ipv6 = "fd42:1::1/64",
			   .domain = "lab.example"};
	struct net_config c, copy;
	struct mv_error err = {0};

	(void)state;
	build(&c, &t);
	assert_int_equal(net_config_copy(&copy, &c), 0);
	assert_int_equal(net_config_resolve("lab", &c, NULL, NULL, &err), 0);
	assert_int_equal(c.mode, copy.mode);
	assert_string_equal(c.bridge, copy.bridge);
	assert_string_equal(c.ipv4_subnet, copy.ipv4_subnet);
	assert_string_equal(c.dhcp_start, copy.dhcp_start);
	assert_null(c.dhcp_end);
	assert_string_equal(c.ipv6_prefix, copy.ipv6_prefix);
	assert_string_equal(c.domain, copy.domain);
	net_config_done(&c);
	net_config_done(&copy);
}

static void test_copy_done(void **state)
{
	struct netcfg t = {.mode = NET_MODE_ISOLATED,
			   .bridge = "br0",
			   .subnet = "10.77.0.0/24",
			   .start = "10.77.0.10",
			   .end = "",
			   .ipv6 = "fd42::/64",
			   .domain = "lab.example"};
	const struct net_config zero = {0};
	struct net_config c, copy, empty = {0};

	(void)state;
	build(&c, &t);
	assert_int_equal(net_config_copy(&copy, &c), 0);
	assert_int_equal(copy.mode, NET_MODE_ISOLATED);
	assert_string_equal(copy.bridge, "br0");
	assert_ptr_not_equal(copy.bridge, c.bridge);
	assert_string_equal(copy.ipv4_subnet, "10.77.0.0/24");
	assert_ptr_not_equal(copy.ipv4_subnet, c.ipv4_subnet);
	assert_string_equal(copy.dhcp_start, "10.77.0.10");
	assert_string_equal(copy.dhcp_end, "");
	assert_ptr_not_equal(copy.dhcp_end, c.dhcp_end);
	assert_string_equal(copy.ipv6_prefix, "fd42::/64");
	assert_string_equal(copy.domain, "lab.example");
	net_config_done(&c); /* the copy owns its own strings */
	assert_memory_equal(&c, &zero, sizeof(c));
	assert_string_equal(copy.domain, "lab.example");
	net_config_done(&copy);
	assert_memory_equal(&copy, &zero, sizeof(copy));

	/* An empty config copies to an empty one. */
	memset(&copy, 0xaa, sizeof(copy));
	assert_int_equal(net_config_copy(&copy, &empty), 0);
	assert_memory_equal(&copy, &zero, sizeof(copy));
	net_config_done(&copy);

	/* done is NULL-safe and idempotent. */
	net_config_done(NULL);
	net_config_done(&copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_names),
		cmocka_unit_test(test_ipv4_parse),
		cmocka_unit_test(test_ipv4_cidr_parse),
		cmocka_unit_test(test_ipv6_cidr_parse),
		cmocka_unit_test(test_format_mask),
		cmocka_unit_test(test_overlaps),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_ifnames),
		cmocka_unit_test(test_resolve_plans),
		cmocka_unit_test(test_resolve_ipv6_plan),
		cmocka_unit_test(test_resolve_bridge_plan),
		cmocka_unit_test(test_resolve_valid),
		cmocka_unit_test(test_resolve_errors),
		cmocka_unit_test(test_resolve_exact_messages),
		cmocka_unit_test(test_resolve_quoting),
		cmocka_unit_test(test_resolve_prefix),
		cmocka_unit_test(test_resolve_not_modified),
		cmocka_unit_test(test_copy_done),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
