/* The network definition and its pure checks (see netdef.h).
 *
 * net_config_resolve() checks a config in the field order of struct net_config (mode, bridge,
 * ipv4_subnet, dhcp_start, dhcp_end, ipv6_prefix, domain), after the network's name, and
 * reports the first problem only, as "<field>: <cause>". Empty strings count as unset, like
 * proto3 does. Addresses are kept in host byte order. Callers: the API layer on
 * CreateNetwork and the network manager, before anything is stored or configured. */
#include "model/netdef.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"

#define NAME_RULE "use 1-31 characters a-z 0-9 -, starting with a letter or digit"
#define IFNAME_RULE "use 1-15 characters A-Z a-z 0-9 _ . -"
#define DOMAIN_RULE                                                                                \
	"use dot-separated labels of 1-63 characters a-z 0-9 -, not starting or ending with '-'"
#define IPV4_SYNTAX "not an IPv4 prefix: use A.B.C.D/N, like 10.77.0.0/24"
#define IPV6_SYNTAX "not an IPv6 prefix: use xxxx::/N, like fd42:1::/64"
#define QUOTE_MAX 64 /* addresses and names quoted in messages; longer input is cut */

/* Space no managed network may touch: its addresses mean something else to every host. */
static const struct {
	struct net_ipv4 net;
	const char *what;
} ipv4_reserved[] = {
	{{0x00000000, 8}, "0.0.0.0/8 (this network)"},
	{{0x7f000000, 8}, "127.0.0.0/8 (loopback)"},
	{{0xa9fe0000, 16}, "169.254.0.0/16 (link-local)"},
	{{0xe0000000, 4}, "224.0.0.0/4 (multicast)"},
	{{0xf0000000, 4}, "240.0.0.0/4 (reserved)"},
};

static const struct {
	uint8_t addr[16];
	uint8_t prefix;
	const char *what;
} ipv6_reserved[] = {
	{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "::1/128 (loopback)"},
	{{0xfe, 0x80}, 10, "fe80::/10 (link-local)"},
	{{0xff}, 8, "ff00::/8 (multicast)"},
};

void net_config_done(struct net_config *c)
{
	if (!c)
		return;
	free(c->bridge);
	free(c->ipv4_subnet);
	free(c->dhcp_start);
	free(c->dhcp_end);
	free(c->ipv6_prefix);
	free(c->domain);
	memset(c, 0, sizeof(*c));
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int net_config_copy(struct net_config *dst, const struct net_config *src)
{
	struct net_config c = {.mode = src->mode};

	if (dup_str(&c.bridge, src->bridge) < 0 || dup_str(&c.ipv4_subnet, src->ipv4_subnet) < 0 ||
	    dup_str(&c.dhcp_start, src->dhcp_start) < 0 ||
	    dup_str(&c.dhcp_end, src->dhcp_end) < 0 ||
	    dup_str(&c.ipv6_prefix, src->ipv6_prefix) < 0 || dup_str(&c.domain, src->domain) < 0) {
		net_config_done(&c);
		memset(dst, 0, sizeof(*dst));
		return -ENOMEM;
	}
	*dst = c;
	return 0;
}

const char *net_mode_name(enum net_mode mode)
{
	switch (mode) {
	case NET_MODE_UNSPECIFIED:
	case NET_MODE_NAT:
		return "nat";
	case NET_MODE_ISOLATED:
		return "isolated";
	case NET_MODE_BRIDGE:
		return "bridge";
	}
	return "unknown";
}

static bool is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

int net_validate_name(const char *name, const char *field, struct mv_error *err)
{
	char quoted[NET_NAME_MAX + 1];
	size_t len, i;

	if (!field)
		field = "name";
	if (isempty(name))
		return mv_err_invalid(err, "%s: required", field);

	len = strlen(name);
	if (len > NET_NAME_MAX)
		return mv_err_invalid(err, "%s: is too long (%zu characters, at most %d)", field,
				      len, NET_NAME_MAX);
	for (i = 0; i < len; i++)
		if (!is_name_char(name[i]) && !(i > 0 && name[i] == '-'))
			return mv_err_invalid(err, "%s: '%s' is invalid: " NAME_RULE, field,
					      mv_printable(name, quoted, sizeof(quoted)));
	return 0;
}

static bool is_ifname_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '.' || ch == '-';
}

int net_validate_ifname(const char *ifname, const char *field, struct mv_error *err)
{
	char quoted[NET_IFNAME_MAX + 2];
	size_t len, i;

	if (!field)
		field = "ifname";
	if (isempty(ifname))
		return mv_err_invalid(err, "%s: required", field);

	len = strlen(ifname);
	if (len > NET_IFNAME_MAX)
		return mv_err_invalid(err, "%s: is too long (%zu characters, at most %d)", field,
				      len, NET_IFNAME_MAX);
	for (i = 0; i < len; i++)
		if (!is_ifname_char(ifname[i]))
			goto bad;
	if (streq(ifname, ".") || streq(ifname, ".."))
		goto bad;
	return 0;

bad:
	return mv_err_invalid(err, "%s: '%s' is not a valid interface name: " IFNAME_RULE, field,
			      mv_printable(ifname, quoted, sizeof(quoted)));
}

/* A decimal number of at most max_digits digits, no sign, no leading zero (but "0"), no more
 * than max. *end: the first character after it. */
static int parse_decimal(const char *s, unsigned max_digits, unsigned max, unsigned *ret,
			 const char **end)
{
	unsigned v = 0, n;

	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++) {
		if (n == max_digits)
			return -EINVAL;
		v = v * 10 + (unsigned)(s[n] - '0');
	}
	if (n == 0 || (n > 1 && s[0] == '0') || v > max)
		return -EINVAL;
	*ret = v;
	*end = s + n;
	return 0;
}

/* Whether s is nothing but decimal digits (or nothing). */
static bool all_digits(const char *s)
{
	return s[strspn(s, "0123456789")] == '\0';
}

/* Four dot-separated octets at the start of s; *end: the first character after them. */
static int parse_quad(const char *s, uint32_t *ret, const char **end)
{
	uint32_t addr = 0;
	unsigned octet;

	for (int i = 0; i < 4; i++) {
		if (i > 0) {
			if (*s != '.')
				return -EINVAL;
			s++;
		}
		if (parse_decimal(s, 3, 255, &octet, &s) < 0)
			return -EINVAL;
		addr = addr << 8 | octet;
	}
	*ret = addr;
	*end = s;
	return 0;
}

int net_ipv4_parse(const char *s, uint32_t *ret)
{
	const char *end;
	uint32_t addr;

	if (!s || parse_quad(s, &addr, &end) < 0 || *end != '\0')
		return -EINVAL;
	*ret = addr;
	return 0;
}

/* Parses "A.B.C.D/N"; returns NULL, or on failure the cause for a message. */
static const char *ipv4_cidr_parse(const char *s, struct net_ipv4 *ret)
{
	const char *end;
	uint32_t addr;
	unsigned prefix;

	if (parse_quad(s, &addr, &end) < 0 || *end != '/' || !all_digits(end + 1))
		return IPV4_SYNTAX;
	if (parse_decimal(end + 1, 2, 32, &prefix, &end) < 0)
		return "the prefix length must be 0..32";
	*ret = (struct net_ipv4){.addr = addr, .prefix = (uint8_t)prefix};
	return NULL;
}

int net_ipv4_cidr_parse(const char *s, struct net_ipv4 *ret)
{
	struct net_ipv4 p;

	if (!s || ipv4_cidr_parse(s, &p))
		return -EINVAL;
	*ret = p;
	return 0;
}

/* Parses "xxxx::/N", N 1..128; returns NULL, or on failure the cause for a message. */
static const char *ipv6_cidr_parse(const char *s, struct net_ipv6 *ret)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/'), *end;
	struct net_ipv6 p;
	unsigned prefix;
	size_t len;

	if (!slash || !all_digits(slash + 1))
		return IPV6_SYNTAX;
	len = (size_t)(slash - s);
	if (len == 0 || len >= sizeof(buf))
		return IPV6_SYNTAX;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET6, buf, p.addr) != 1)
		return IPV6_SYNTAX;
	if (parse_decimal(slash + 1, 3, 128, &prefix, &end) < 0 || prefix == 0)
		return "the prefix length must be 1..128";
	p.prefix = (uint8_t)prefix;
	*ret = p;
	return NULL;
}

int net_ipv6_cidr_parse(const char *s, struct net_ipv6 *ret)
{
	struct net_ipv6 p;

	if (!s || ipv6_cidr_parse(s, &p))
		return -EINVAL;
	*ret = p;
	return 0;
}

const char *net_ipv4_format(uint32_t addr, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
		 addr & 0xff);
	return buf;
}

uint32_t net_ipv4_mask(uint8_t prefix)
{
	if (prefix == 0)
		return 0;
	if (prefix >= 32)
		return UINT32_MAX;
	return UINT32_MAX << (32 - prefix);
}

bool net_ipv4_overlaps(const struct net_ipv4 *a, const struct net_ipv4 *b)
{
	uint32_t mask = net_ipv4_mask(a->prefix < b->prefix ? a->prefix : b->prefix);

	return (a->addr & mask) == (b->addr & mask);
}

/* Whether the first prefix bits of a and b are equal. */
static bool ipv6_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned bytes = prefix / 8, bits = prefix % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (bits == 0)
		return true;
	return ((a[bytes] ^ b[bytes]) & (uint8_t)(0xff << (8 - bits))) == 0;
}

/* Clears the bits of addr after the first prefix. */
static void ipv6_mask(uint8_t *addr, unsigned prefix)
{
	for (unsigned i = 0; i < 16; i++) {
		if (prefix >= 8 * (i + 1))
			continue;
		addr[i] &= prefix > 8 * i ? (uint8_t)(0xff << (8 - (prefix - 8 * i))) : 0;
	}
}

/* What the caller needs to know of the subnet while checking the DHCP range. */
struct subnet {
	const char *text; /* the subnet as written, quoted */
	uint32_t network, broadcast, gateway;
};

/* One end of a DHCP range, set by the user: a strict address inside the subnet that is
 * neither the network, the broadcast nor the gateway address. */
static int check_dhcp_end(const char *value, const char *prefix, const char *field,
			  const struct subnet *s, uint32_t *ret, struct mv_error *err)
{
	char quoted[QUOTE_MAX];
	uint32_t addr;

	if (net_ipv4_parse(value, &addr) < 0)
		return mv_err_invalid(
			err, "%s%s: '%s' is not an IPv4 address: use A.B.C.D, like 10.77.0.10",
			prefix, field, mv_printable(value, quoted, sizeof(quoted)));
	if (addr < s->network || addr > s->broadcast)
		return mv_err_invalid(err, "%s%s: %s is outside %sipv4_subnet %s", prefix, field,
				      value, prefix, s->text);
	if (addr == s->network)
		return mv_err_invalid(err, "%s%s: %s is the network address of %s", prefix, field,
				      value, s->text);
	if (addr == s->broadcast)
		return mv_err_invalid(err, "%s%s: %s is the broadcast address of %s", prefix, field,
				      value, s->text);
	if (addr == s->gateway)
		return mv_err_invalid(err, "%s%s: %s is the gateway address of %s", prefix, field,
				      value, s->text);
	*ret = addr;
	return 0;
}

/* The DHCP range. An end left unset extends the given one to the edge of the stretch of the
 * subnet it lies in, the gateway or the network/broadcast address bounding it; with neither
 * set, the range is the larger side: after the gateway, or before it when it is at the top. */
static int check_dhcp(const struct net_config *c, const char *prefix, const struct subnet *s,
		      struct net_plan *plan, struct mv_error *err)
{
	bool has_start = !isempty(c->dhcp_start), has_end = !isempty(c->dhcp_end);
	uint32_t g = s->gateway, start = 0, end = 0;
	char a[16], b[16], gw[16];
	int r;

	if (has_start) {
		r = check_dhcp_end(c->dhcp_start, prefix, "dhcp_start", s, &start, err);
		if (r < 0)
			return r;
	}
	if (has_end) {
		r = check_dhcp_end(c->dhcp_end, prefix, "dhcp_end", s, &end, err);
		if (r < 0)
			return r;
	}

	if (!has_start && !has_end) {
		if (g == s->broadcast - 1) {
			start = s->network + 1;
			end = g - 1;
		} else {
			start = g + 1;
			end = s->broadcast - 1;
		}
	} else if (!has_end)
		end = start < g ? g - 1 : s->broadcast - 1;
	else if (!has_start)
		start = end > g ? g + 1 : s->network + 1;

	if (start > end)
		return mv_err_invalid(err, "%sdhcp_end: %s is before %sdhcp_start %s", prefix,
				      net_ipv4_format(end, b), prefix, net_ipv4_format(start, a));
	if (start < g && g < end)
		return mv_err_invalid(
			err,
			"%sdhcp_start: the range %s..%s contains the gateway %s; put the range on one side of it",
			prefix, net_ipv4_format(start, a), net_ipv4_format(end, b),
			net_ipv4_format(g, gw));
	plan->dhcp_start = start;
	plan->dhcp_end = end;
	return 0;
}

/* The IPv4 subnet and the DHCP range of a nat or isolated network. */
static int check_ipv4(const struct net_config *c, const char *prefix, struct net_plan *plan,
		      struct mv_error *err)
{
	char quoted[QUOTE_MAX], a[16], n[16];
	struct net_ipv4 net;
	struct subnet s;
	const char *cause;
	uint32_t mask;

	if (isempty(c->ipv4_subnet))
		return mv_err_invalid(err, "%sipv4_subnet: required in %s mode", prefix,
				      net_mode_name(c->mode));
	mv_printable(c->ipv4_subnet, quoted, sizeof(quoted));
	cause = ipv4_cidr_parse(c->ipv4_subnet, &net);
	if (cause)
		return mv_err_invalid(err, "%sipv4_subnet: '%s': %s", prefix, quoted, cause);
	if (net.prefix < 8 || net.prefix > 30)
		return mv_err_invalid(err, "%sipv4_subnet: '%s': the prefix length must be 8..30",
				      prefix, quoted);
	for (size_t i = 0; i < ELEMENTSOF(ipv4_reserved); i++)
		if (net_ipv4_overlaps(&net, &ipv4_reserved[i].net))
			return mv_err_invalid(
				err,
				"%sipv4_subnet: '%s' overlaps %s; use private space like 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
				prefix, quoted, ipv4_reserved[i].what);

	mask = net_ipv4_mask(net.prefix);
	s = (struct subnet){
		.text = quoted,
		.network = net.addr & mask,
		.broadcast = net.addr | ~mask,
	};
	s.gateway = net.addr == s.network ? s.network + 1 : net.addr;
	if (s.gateway == s.broadcast)
		return mv_err_invalid(
			err,
			"%sipv4_subnet: '%s': %s is the broadcast address; write the network (%s/%u) or the gateway's address",
			prefix, quoted, net_ipv4_format(s.broadcast, a),
			net_ipv4_format(s.network, n), (unsigned)net.prefix);

	plan->subnet = (struct net_ipv4){.addr = s.network, .prefix = net.prefix};
	plan->gateway = s.gateway;
	return check_dhcp(c, prefix, &s, plan, err);
}

static int check_ipv6(const struct net_config *c, const char *prefix, struct net_plan *plan,
		      struct mv_error *err)
{
	char quoted[QUOTE_MAX];
	struct net_ipv6 p;
	const char *cause;

	mv_printable(c->ipv6_prefix, quoted, sizeof(quoted));
	cause = ipv6_cidr_parse(c->ipv6_prefix, &p);
	if (cause)
		return mv_err_invalid(err, "%sipv6_prefix: '%s': %s", prefix, quoted, cause);
	if (p.prefix > 64)
		return mv_err_invalid(
			err,
			"%sipv6_prefix: '%s': the prefix length must be 1..64 (router advertisements need /64 or shorter)",
			prefix, quoted);
	for (size_t i = 0; i < ELEMENTSOF(ipv6_reserved); i++)
		if (ipv6_prefix_equal(p.addr, ipv6_reserved[i].addr,
				      p.prefix < ipv6_reserved[i].prefix ? p.prefix
									 : ipv6_reserved[i].prefix))
			return mv_err_invalid(
				err,
				"%sipv6_prefix: '%s' overlaps %s; use a unique local prefix like fd42:1::/64",
				prefix, quoted, ipv6_reserved[i].what);

	ipv6_mask(p.addr, p.prefix);
	plan->has_ipv6 = true;
	plan->ipv6 = p;
	return 0;
}

/* Dot-separated labels of [a-z0-9-], 1..63 each, not starting or ending with '-'. */
static int check_domain(const char *domain, const char *prefix, struct mv_error *err)
{
	char quoted[NET_DOMAIN_MAX + 1];
	const char *label = domain, *cause = NULL;
	size_t len = strlen(domain);

	if (len > NET_DOMAIN_MAX)
		return mv_err_invalid(err, "%sdomain: is too long (%zu characters, at most %d)",
				      prefix, len, NET_DOMAIN_MAX);
	for (;;) {
		size_t n = strcspn(label, ".");

		if (n == 0)
			cause = "an empty label";
		else if (n > 63)
			cause = "a label longer than 63 characters";
		else if (label[0] == '-' || label[n - 1] == '-')
			cause = "a label starting or ending with '-'";
		for (size_t i = 0; !cause && i < n; i++)
			if (!is_name_char(label[i]) && label[i] != '-')
				cause = "a character other than a-z 0-9 -";
		if (cause)
			return mv_err_invalid(err, "%sdomain: '%s' has %s: " DOMAIN_RULE, prefix,
					      mv_printable(domain, quoted, sizeof(quoted)), cause);
		if (label[n] == '\0')
			return 0;
		label += n + 1;
	}
}

/* The bridge of a nat or isolated network: the one given, or the derived one, which must fit
 * an interface name. */
static int check_own_bridge(const char *name, const struct net_config *c, const char *prefix,
			    struct mv_error *err)
{
	char field[64];

	if (!isempty(c->bridge)) {
		snprintf(field, sizeof(field), "%sbridge", prefix);
		return net_validate_ifname(c->bridge, field, err);
	}
	if (strlen(NET_BRIDGE_PREFIX) + strlen(name) > NET_IFNAME_MAX)
		return mv_err_invalid(
			err,
			"name: '%s' is too long for the bridge name " NET_BRIDGE_PREFIX
			"%s (at most %d characters); pick a name of at most %zu characters or set %sbridge",
			name, name, NET_IFNAME_MAX, NET_IFNAME_MAX - strlen(NET_BRIDGE_PREFIX),
			prefix);
	return 0;
}

/* Bridge mode: an existing bridge, and nothing mvirt would configure on it. */
static int check_bridge_mode(const struct net_config *c, const char *prefix, struct mv_error *err)
{
	static const char *const why = "not used in bridge mode (the bridge's own network "
				       "assigns addresses)";
	char field[64];
	int r;

	if (isempty(c->bridge))
		return mv_err_invalid(err, "%sbridge: required in bridge mode", prefix);
	snprintf(field, sizeof(field), "%sbridge", prefix);
	r = net_validate_ifname(c->bridge, field, err);
	if (r < 0)
		return r;
	if (!isempty(c->ipv4_subnet))
		return mv_err_invalid(err, "%sipv4_subnet: %s", prefix, why);
	if (!isempty(c->dhcp_start))
		return mv_err_invalid(err, "%sdhcp_start: %s", prefix, why);
	if (!isempty(c->dhcp_end))
		return mv_err_invalid(err, "%sdhcp_end: %s", prefix, why);
	if (!isempty(c->ipv6_prefix))
		return mv_err_invalid(err, "%sipv6_prefix: %s", prefix, why);
	if (!isempty(c->domain))
		return mv_err_invalid(err, "%sdomain: %s", prefix, why);
	return 0;
}

int net_config_resolve(const char *name, const struct net_config *c, const char *prefix,
		       struct net_plan *ret, struct mv_error *err)
{
	struct net_plan plan = {0};
	size_t len;
	int r;

	if (!prefix)
		prefix = "config.";
	r = net_validate_name(name, "name", err);
	if (r < 0)
		return r;

	switch (c->mode) {
	case NET_MODE_UNSPECIFIED:
	case NET_MODE_NAT:
	case NET_MODE_ISOLATED:
		break;
	case NET_MODE_BRIDGE:
		r = check_bridge_mode(c, prefix, err);
		if (r < 0)
			return r;
		goto done;
	default:
		return mv_err_invalid(err, "%smode: unknown value %d", prefix, (int)c->mode);
	}

	r = check_own_bridge(name, c, prefix, err);
	if (r < 0)
		return r;
	r = check_ipv4(c, prefix, &plan, err);
	if (r < 0)
		return r;
	if (!isempty(c->ipv6_prefix)) {
		r = check_ipv6(c, prefix, &plan, err);
		if (r < 0)
			return r;
	}
	if (!isempty(c->domain)) {
		r = check_domain(c->domain, prefix, err);
		if (r < 0)
			return r;
	} else {
		/* The derived "<name>" NET_DOMAIN_SUFFIX: a name is a label but for a final '-'. */
		len = strlen(name);
		if (name[len - 1] == '-')
			return mv_err_invalid(
				err,
				"name: '%s' ends with '-', which cannot make the domain %s" NET_DOMAIN_SUFFIX
				"; pick another name or set %sdomain",
				name, name, prefix);
	}

done:
	if (ret)
		*ret = plan;
	return 0;
}
