/* Unit tests of network/nft.c against the real kernel, inside a network namespace of the test's
 * own (unshare(CLONE_NEWNET) at start): nftables rulesets and the ip_forward sysctl are per
 * namespace, so the machine's firewall is never touched. The ruleset is checked independently
 * with the nft CLI (`nft list table inet mvirt`), and the last test sends real packets between
 * namespaces of its own (veth pairs held by child processes). Skipped when the test may not
 * make a namespace (not root) or nft is missing. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/macro.h"
#include "network/nft.h"

#define ID_A "aaaaaaaa-0000-4000-8000-00000000000a"
#define ID_B "bbbbbbbb-0000-4000-8000-00000000000b"
#define ID_C "cccccccc-0000-4000-8000-00000000000c"
#define ID_D "dddddddd-0000-4000-8000-00000000000d"
#define ID_E "eeeeeeee-0000-4000-8000-00000000000e"

static bool have_netns;

/* 10.77.<third>.0/<prefix> in host order. */
#define SUBNET(third, len) ((struct net_ipv4){(10u << 24) | (77u << 16) | ((third) << 8), (len)})

static const struct nft_network NET_A = {ID_A, "mvbr-a", SUBNET(1, 24), NET_MODE_NAT};
static const struct nft_network NET_B = {ID_B, "mvbr-b", SUBNET(2, 24), NET_MODE_ISOLATED};
static const struct nft_network NET_C = {ID_C, "mvbr-c", SUBNET(3, 24), NET_MODE_UNSPECIFIED};
static const struct nft_network NET_D = {ID_D, "lab.br_0", SUBNET(4, 22), NET_MODE_NAT};

#define NEED_NETNS()                                                                               \
	do {                                                                                       \
		if (!have_netns)                                                                   \
			skip(); /* needs root and nft for a network namespace of its own */        \
	} while (0)

static int sh(const char *fmt, ...) _printf_(1, 2);
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

#define xsh(...) assert_int_equal(sh(__VA_ARGS__), 0)

/* The stdout of cmd (caller frees). */
static char *capture(const char *cmd)
{
	char *buf = NULL;
	size_t size = 0, n;
	char chunk[4096];
	FILE *out = open_memstream(&buf, &size);
	FILE *p = popen(cmd, "re");

	assert_non_null(out);
	assert_non_null(p);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		fwrite(chunk, 1, n, out);
	pclose(p);
	fclose(out);
	return buf;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `nft list table inet mvirt`, with the set's elements on one line and sorted (a hash set lists
 * them in no particular order, nft wraps them); "" when there is no such table. */
static char *mvirt_table(void)
{
	char *text = capture("nft list table inet mvirt 2>/dev/null");
	char *line = strstr(text, "elements = { "), *end, *items[16], *out;
	size_t n = 0, size = 0;
	FILE *f;

	if (!line)
		return text;
	line += strlen("elements = { ");
	end = strstr(line, " }\n");
	assert_non_null(end);
	*end = '\0';
	for (char *s = line, *comma; s; s = comma) {
		assert_true(n < ELEMENTSOF(items));
		comma = strchr(s, ',');
		if (comma) {
			*comma++ = '\0';
			comma += strspn(comma, " \t\n");
		}
		items[n++] = s;
	}
	qsort(items, n, sizeof(items[0]), cmp_str);
	f = open_memstream(&out, &size);
	fprintf(f, "%.*s", (int)(line - text), text);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? ", " : "", items[i]);
	fprintf(f, " }\n%s", end + 3);
	fclose(f);
	free(text);
	return out;
}

static const char *subnet_text(const struct nft_network *net, char *buf)
{
	char addr[16];

	snprintf(buf, 24, "%s/%u", net_ipv4_format(net->subnet.addr, addr), net->subnet.prefix);
	return buf;
}

/* What `nft list table inet mvirt` should print after nets[0..n) were written in that order
 * (chains and base-chain rules are appended when a network is written). Written out here
 * rule by rule, independently of nft.c. */
static char *expected_table(const struct nft_network *const *nets, size_t n)
{
	const char *bridges[8];
	char *text = NULL, sub[24];
	size_t size = 0, nb = 0, i;
	FILE *f = open_memstream(&text, &size);

	for (i = 0; i < n; i++)
		if (nets[i]->mode != NET_MODE_BRIDGE)
			bridges[nb++] = nets[i]->bridge;
	qsort(bridges, nb, sizeof(bridges[0]), cmp_str);

	fputs("table inet mvirt {\n\tset bridges {\n\t\ttype ifname\n", f);
	for (i = 0; i < nb; i++)
		fprintf(f, "%s\"%s\"%s", i ? ", " : "\t\telements = { ", bridges[i],
			i + 1 == nb ? " }\n" : "");
	fputs("\t}\n\n\tchain forward {\n"
	      "\t\ttype filter hook forward priority filter; policy accept;\n",
	      f);
	for (i = 0; i < n; i++) {
		const char *b = nets[i]->bridge, *id = nets[i]->id;

		if (nets[i]->mode == NET_MODE_BRIDGE)
			continue;
		fprintf(f, "\t\tiifname \"%s\" jump net-%s comment \"net-%s\"\n", b, id, id);
		fprintf(f, "\t\toifname \"%s\" jump net-%s comment \"net-%s\"\n", b, id, id);
	}
	fputs("\t}\n\n\tchain postrouting {\n"
	      "\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
	      f);
	for (i = 0; i < n; i++)
		if (nets[i]->mode == NET_MODE_NAT || nets[i]->mode == NET_MODE_UNSPECIFIED)
			fprintf(f,
				"\t\toifname != \"%s\" ip saddr %s masquerade comment \"net-%s\"\n",
				nets[i]->bridge, subnet_text(nets[i], sub), nets[i]->id);
	fputs("\t}\n", f);
	for (i = 0; i < n; i++) {
		const char *b = nets[i]->bridge;

		if (nets[i]->mode == NET_MODE_BRIDGE)
			continue;
		fprintf(f, "\n\tchain net-%s {\n", nets[i]->id);
		fprintf(f, "\t\tiifname \"%s\" oifname \"%s\" accept\n", b, b);
		fprintf(f, "\t\tiifname \"%s\" oifname @bridges drop\n", b);
		fprintf(f, "\t\toifname \"%s\" iifname @bridges drop\n", b);
		if (nets[i]->mode == NET_MODE_ISOLATED) {
			fprintf(f, "\t\tiifname \"%s\" drop\n", b);
			fprintf(f, "\t\toifname \"%s\" drop\n", b);
		} else {
			fprintf(f, "\t\tiifname \"%s\" ip saddr %s accept\n", b,
				subnet_text(nets[i], sub));
			fprintf(f, "\t\toifname \"%s\" ct state established,related accept\n", b);
			fprintf(f, "\t\tiifname \"%s\" meta nfproto ipv4 drop\n", b);
			fprintf(f, "\t\toifname \"%s\" meta nfproto ipv4 drop\n", b);
		}
		fputs("\t}\n", f);
	}
	fputs("}\n", f);
	fclose(f);
	return text;
}

#define assert_table(...)                                                                          \
	do {                                                                                       \
		const struct nft_network *const _nets_[] = {__VA_ARGS__};                          \
		_cleanup_free_ char *_want_ = expected_table(_nets_, ELEMENTSOF(_nets_));          \
		_cleanup_free_ char *_got_ = mvirt_table();                                        \
		assert_string_equal(_got_, _want_);                                                \
	} while (0)

static int setup(void **state)
{
	struct nft *n = NULL;
	struct mv_error err = {0};

	if (!have_netns)
		return 0;
	assert_int_equal(nft_open(&n, &err), 0);
	*state = n;
	return 0;
}

static int teardown(void **state)
{
	nft_close(*state);
	if (have_netns) /* only this test's namespace: the machine's ruleset is not ours */
		(void)sh("nft delete table inet mvirt 2>/dev/null; nft delete table inet other "
			 "2>/dev/null; nft delete table ip mvirt 2>/dev/null");
	return 0;
}

static void test_apply_nat(void **state)
{
	struct mv_error err = {0};

	NEED_NETNS();
	assert_int_equal(nft_network_apply(*state, &NET_A, &err), 0);
	assert_table(&NET_A);
	/* host bits of the subnet are ignored; "unspecified" is nat */
	struct nft_network a = NET_A;
	a.subnet.addr |= 0xfe;
	a.mode = NET_MODE_UNSPECIFIED;
	assert_int_equal(nft_network_apply(*state, &a, &err), 0);
	assert_table(&NET_A);
}

static void test_apply_isolated_and_bridge_mode(void **state)
{
	struct nft_network br = {ID_E, "br0", SUBNET(9, 24), NET_MODE_BRIDGE};
	struct mv_error err = {0};
	_cleanup_free_ char *tables = NULL;

	NEED_NETNS();
	/* a bridge-mode network has no rules: not even the table is made for it */
	assert_int_equal(nft_network_apply(*state, &br, &err), 0);
	tables = capture("nft list tables");
	assert_string_equal(tables, "");

	assert_int_equal(nft_network_apply(*state, &NET_B, &err), 0);
	assert_table(&NET_B);
	assert_int_equal(nft_network_apply(*state, &br, &err), 0);
	assert_table(&NET_B);

	/* the bridge of a bridge-mode network may be NULL */
	br.bridge = NULL;
	assert_int_equal(nft_network_apply(*state, &br, &err), 0);
	assert_table(&NET_B);
}

static void test_apply_is_idempotent_and_replaces(void **state)
{
	struct nft_network a2 = {ID_A, "mvbr-a2", SUBNET(7, 24), NET_MODE_ISOLATED};
	struct mv_error err = {0};

	NEED_NETNS();
	assert_int_equal(nft_network_apply(*state, &NET_A, &err), 0);
	assert_int_equal(nft_network_apply(*state, &NET_B, &err), 0);
	assert_int_equal(nft_network_apply(*state, &NET_B, &err), 0);
	assert_table(&NET_A, &NET_B);
	/* re-applying rewrites that network's rules (appended again), nothing else */
	assert_int_equal(nft_network_apply(*state, &NET_A, &err), 0);
	assert_table(&NET_B, &NET_A);

	/* a changed bridge, subnet and mode replace the old rules; the old bridge leaves the set */
	assert_int_equal(nft_network_apply(*state, &a2, &err), 0);
	assert_table(&NET_B, &a2);

	/* a base chain's policy changed by hand is set back to accept */
	xsh("nft add chain inet mvirt forward '{ type filter hook forward priority filter; "
	    "policy drop; }'");
	assert_int_equal(nft_network_apply(*state, &NET_A, &err), 0);
	assert_table(&NET_B, &NET_A);

	/* turned into a bridge-mode network, it has no rules any more */
	a2.mode = NET_MODE_BRIDGE;
	assert_int_equal(nft_network_apply(*state, &a2, &err), 0);
	assert_table(&NET_B);
}

static void test_remove(void **state)
{
	struct mv_error err = {0};
	_cleanup_free_ char *tables = NULL;

	NEED_NETNS();
	/* nothing there: fine, and no table is made */
	assert_int_equal(nft_network_remove(*state, ID_A, &err), 0);
	tables = capture("nft list tables");
	assert_string_equal(tables, "");

	assert_int_equal(nft_network_apply(*state, &NET_A, &err), 0);
	assert_int_equal(nft_network_apply(*state, &NET_B, &err), 0);
	assert_int_equal(nft_network_apply(*state, &NET_C, &err), 0);
	assert_int_equal(nft_network_remove(*state, ID_B, &err), 0);
	assert_table(&NET_A, &NET_C);
	assert_int_equal(nft_network_remove(*state, ID_B, &err), 0);
	assert_table(&NET_A, &NET_C);
	assert_int_equal(nft_network_remove(*state, ID_D, &err), 0);
	assert_table(&NET_A, &NET_C);
	assert_int_equal(nft_network_remove(*state, ID_A, &err), 0);
	assert_int_equal(nft_network_remove(*state, ID_C, &err), 0);
	assert_table();
	assert_int_equal(err.kind, MV_ERR_NONE);
}

static void test_reconcile(void **state)
{
	const struct nft_network want[] = {NET_A, NET_D};
	struct mv_error err = {0};

	NEED_NETNS();
	assert_int_equal(nft_network_apply(*state, &NET_A, &err), 0);
	assert_int_equal(nft_network_apply(*state, &NET_B, &err), 0);
	assert_int_equal(nft_network_apply(*state, &NET_C, &err), 0);
	/* leftovers of a network E that a crash half removed: a chain alone, a tagged rule */
	xsh("nft add chain inet mvirt net-" ID_E);
	xsh("nft add rule inet mvirt net-" ID_E " iifname mvbr-e drop");
	xsh("nft add rule inet mvirt postrouting oifname != mvbr-e masquerade comment net-" ID_E);

	/* B, C and E go, A is rewritten, D is added */
	assert_int_equal(nft_reconcile(*state, want, ELEMENTSOF(want), &err), 0);
	assert_table(&NET_A, &NET_D);
	assert_int_equal(nft_reconcile(*state, want, ELEMENTSOF(want), &err), 0);
	assert_table(&NET_A, &NET_D);

	/* none at all: an empty table */
	assert_int_equal(nft_reconcile(*state, NULL, 0, &err), 0);
	assert_table();
	assert_int_equal(err.kind, MV_ERR_NONE);
}

static void test_reconcile_without_table(void **state)
{
	const struct nft_network want[] = {NET_C};
	struct mv_error err = {0};
	_cleanup_free_ char *tables = NULL;

	NEED_NETNS();
	assert_int_equal(nft_reconcile(*state, NULL, 0, &err), 0);
	tables = capture("nft list tables");
	assert_string_equal(tables, "");
	assert_int_equal(nft_reconcile(*state, want, 1, &err), 0);
	assert_table(&NET_C);
}

static void test_foreign_tables_are_never_touched(void **state)
{
	const struct nft_network want[] = {NET_B, NET_C};
	_cleanup_free_ char *before = NULL, *after = NULL, *tables = NULL;
	struct mv_error err = {0};

	NEED_NETNS();
	xsh("nft add table inet other && nft add chain inet other forward '{ type filter hook "
	    "forward priority 0; policy accept; }' && nft add rule inet other forward "
	    "iifname mvbr-a counter drop comment \\\"net-" ID_A "\\\" && nft add chain inet other "
	    "net-" ID_B " && nft add table ip mvirt && nft add chain ip mvirt c && "
	    "nft add rule ip mvirt c ip saddr 10.77.1.0/24 accept comment \\\"net-" ID_A "\\\"");
	before = capture("nft list table inet other; nft list table ip mvirt");

	assert_int_equal(nft_network_apply(*state, &NET_A, &err), 0);
	assert_int_equal(nft_network_apply(*state, &NET_B, &err), 0);
	assert_int_equal(nft_network_remove(*state, ID_A, &err), 0);
	assert_int_equal(nft_network_remove(*state, ID_B, &err), 0);
	assert_int_equal(nft_reconcile(*state, want, ELEMENTSOF(want), &err), 0);
	assert_table(&NET_B, &NET_C);

	after = capture("nft list table inet other; nft list table ip mvirt");
	assert_string_equal(after, before);
	tables = capture("nft list tables");
	assert_string_equal(tables, "table inet other\ntable ip mvirt\ntable inet mvirt\n");
}

static void assert_refused(int r, const struct mv_error *err, const char *needle)
{
	assert_int_equal(r, -EINVAL);
	assert_int_equal(err->kind, MV_ERR_INVALID);
	if (!strstr(err->msg, needle))
		fail_msg("'%s' does not name '%s'", err->msg, needle);
}

static void test_bad_input_is_refused(void **state)
{
	struct nft_network bad = NET_A;
	struct mv_error err = {0};
	_cleanup_free_ char *tables = NULL;

	NEED_NETNS();
	bad.bridge = "mvbr a";
	assert_refused(nft_network_apply(*state, &bad, &err), &err, "bridge: 'mvbr a'");
	mv_error_clear(&err);
	bad.bridge = "mvbr\"a";
	assert_refused(nft_network_apply(*state, &bad, &err), &err, "bridge:");
	mv_error_clear(&err);
	bad.bridge = "";
	assert_refused(nft_network_apply(*state, &bad, &err), &err, "bridge: required");
	mv_error_clear(&err);
	bad.bridge = "0123456789abcdef";
	assert_refused(nft_network_apply(*state, &bad, &err), &err, "bridge: is too long");
	mv_error_clear(&err);

	bad = NET_A;
	bad.id = "web";
	assert_refused(nft_network_apply(*state, &bad, &err), &err, "id: 'web' is not a UUID");
	mv_error_clear(&err);
	bad.id = "AAAAAAAA-0000-4000-8000-00000000000A";
	assert_refused(nft_network_apply(*state, &bad, &err), &err, "id:");
	mv_error_clear(&err);
	bad.id = "aaaaaaaa-0000-4000-8000-00000000000a\" drop";
	assert_refused(nft_network_apply(*state, &bad, &err), &err, "id:");
	mv_error_clear(&err);
	bad.id = NULL;
	assert_refused(nft_network_apply(*state, &bad, &err), &err, "id: required");
	mv_error_clear(&err);
	assert_refused(nft_network_remove(*state, "aaaaaaaa", &err), &err, "id:");
	mv_error_clear(&err);
	assert_refused(nft_network_apply(*state, NULL, &err), &err, "network: required");
	mv_error_clear(&err);

	bad = NET_A;
	bad.subnet.prefix = 0;
	assert_refused(nft_network_apply(*state, &bad, &err), &err, "subnet: prefix /0");
	mv_error_clear(&err);
	bad.subnet.prefix = 33;
	assert_refused(nft_network_apply(*state, &bad, &err), &err, "subnet:");
	mv_error_clear(&err);
	bad = NET_A;
	bad.mode = 7;
	assert_refused(nft_network_apply(*state, &bad, &err), &err, "mode: unknown (7)");
	mv_error_clear(&err);

	/* reconcile names the entry, refuses doubles, and changes nothing */
	struct nft_network nets[] = {NET_A, NET_B};
	nets[1].bridge = "b r";
	assert_refused(nft_reconcile(*state, nets, 2, &err), &err, "nets[1].bridge:");
	mv_error_clear(&err);
	nets[1] = NET_A;
	assert_refused(nft_reconcile(*state, nets, 2, &err), &err, "nets[1].id:");
	mv_error_clear(&err);
	nets[1] = NET_B;
	nets[1].bridge = NET_A.bridge;
	assert_refused(nft_reconcile(*state, nets, 2, &err), &err, "nets[1].bridge: 'mvbr-a'");
	mv_error_clear(&err);
	assert_refused(nft_reconcile(*state, NULL, 1, &err), &err, "nets: required");

	tables = capture("nft list tables");
	assert_string_equal(tables, "");
}

static void test_bridge_of_another_network(void **state)
{
	struct nft_network b = NET_B;
	struct mv_error err = {0};

	NEED_NETNS();
	assert_int_equal(nft_network_apply(*state, &NET_A, &err), 0);
	b.bridge = NET_A.bridge;
	assert_int_equal(nft_network_apply(*state, &b, &err), -EEXIST);
	assert_int_equal(err.kind, MV_ERR_EXISTS);
	assert_non_null(
		strstr(err.msg, "bridge: 'mvbr-a' has the firewall rules of network " ID_A));
	assert_table(&NET_A);
}

/* A failure inside nftables reports its own text, and the transaction changes nothing. */
static void test_nft_error_is_reported(void **state)
{
	struct mv_error err = {0};
	_cleanup_free_ char *before = NULL, *after = NULL;

	NEED_NETNS();
	assert_int_equal(nft_network_apply(*state, &NET_A, &err), 0);
	assert_int_equal(nft_network_apply(*state, &NET_C, &err), 0);
	/* someone else's jump to A's chain keeps nftables from deleting it */
	xsh("nft add rule inet mvirt forward udp dport 9 jump net-" ID_A);
	before = capture("nft list table inet mvirt");
	assert_int_equal(nft_network_remove(*state, ID_A, &err), -EIO);
	assert_int_equal(err.kind, MV_ERR_INTERNAL);
	if (!strstr(err.msg, "nftables: network " ID_A ": ") ||
	    !strstr(err.msg, "Device or resource busy"))
		fail_msg("unexpected message: %s", err.msg);
	after = capture("nft list table inet mvirt");
	assert_string_equal(after, before);
}

/* Whatever nft_open() and a command leave open is close-on-exec (libnftables' own socket is
 * not, out of the box). */
static void test_fds_are_cloexec(void **state)
{
	struct mv_error err = {0};
	struct nft *n = NULL;
	bool open_before[256];
	int fd;

	(void)state;
	NEED_NETNS();
	for (fd = 0; fd < (int)ELEMENTSOF(open_before); fd++)
		open_before[fd] = fcntl(fd, F_GETFD) >= 0;
	assert_int_equal(nft_open(&n, &err), 0);
	assert_int_equal(nft_network_apply(n, &NET_A, &err), 0);
	for (fd = 0; fd < (int)ELEMENTSOF(open_before); fd++) {
		int flags = fcntl(fd, F_GETFD);

		if (!open_before[fd] && flags >= 0 && !(flags & FD_CLOEXEC))
			fail_msg("fd %d is not close-on-exec", fd);
	}
	nft_close(n);
}

static void test_ip_forward(void **state)
{
	struct mv_error err = {0};
	_cleanup_free_ char *value = NULL;
	bool changed = false;

	(void)state;
	NEED_NETNS();
	xsh("echo 0 > /proc/sys/net/ipv4/ip_forward");
	assert_int_equal(nft_enable_ip_forward(&changed, &err), 0);
	assert_true(changed);
	value = capture("cat /proc/sys/net/ipv4/ip_forward");
	assert_string_equal(value, "1\n");
	assert_int_equal(nft_enable_ip_forward(&changed, &err), 0);
	assert_false(changed);
	assert_int_equal(nft_enable_ip_forward(NULL, &err), 0);
}

/* ---- packets between namespaces ---- */

/* A network namespace held by a child process (killed with the test, PR_SET_PDEATHSIG). */
struct peer_ns {
	pid_t pid;
	int fd;
};

static void peer_start(struct peer_ns *ns)
{
	char path[64], c;
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	ns->pid = fork();
	assert_true(ns->pid >= 0);
	if (ns->pid == 0) {
		close(p[0]);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || unshare(CLONE_NEWNET) < 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)ns->pid);
	ns->fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(ns->fd >= 0);
}

static void peer_stop(struct peer_ns *ns)
{
	if (ns->pid <= 0)
		return;
	close(ns->fd);
	kill(ns->pid, SIGKILL);
	waitpid(ns->pid, NULL, 0);
	ns->pid = 0;
}

struct probe {
	bool received;
	char source[INET_ADDRSTRLEN]; /* as the receiver saw it */
	bool replied;                 /* the receiver's answer came back */
};

/* Sends one UDP datagram from namespace from to dst (an address in namespace to); the
 * receiver answers it. Sockets stay in the namespace they were made in, so the test process
 * makes each in its namespace and comes back to self. */
static struct probe probe(int self, int from, int to, const char *dst)
{
	static uint16_t port = 41000;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(++port)};
	struct sockaddr_in src;
	socklen_t len = sizeof(src);
	struct probe ret = {0};
	struct pollfd pfd;
	char buf[8];
	int rx, tx;

	assert_int_equal(setns(to, CLONE_NEWNET), 0);
	rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(rx >= 0);
	assert_int_equal(bind(rx, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(setns(from, CLONE_NEWNET), 0);
	tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(tx >= 0);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);

	assert_int_equal(inet_pton(AF_INET, dst, &a.sin_addr), 1);
	assert_int_equal(sendto(tx, "ping", 4, 0, (struct sockaddr *)&a, sizeof(a)), 4);
	pfd = (struct pollfd){.fd = rx, .events = POLLIN};
	if (poll(&pfd, 1, 1000) == 1 &&
	    recvfrom(rx, buf, sizeof(buf), 0, (struct sockaddr *)&src, &len) == 4) {
		ret.received = true;
		inet_ntop(AF_INET, &src.sin_addr, ret.source, sizeof(ret.source));
		assert_int_equal(sendto(rx, "pong", 4, 0, (struct sockaddr *)&src, len), 4);
		pfd = (struct pollfd){.fd = tx, .events = POLLIN};
		ret.replied = poll(&pfd, 1, 1000) == 1 && recv(tx, buf, sizeof(buf), 0) == 4;
	}
	close(rx);
	close(tx);
	return ret;
}

#define assert_passes(from, to, dst, want_src)                                                     \
	do {                                                                                       \
		struct probe _p_ = probe(self, (from).fd, (to).fd, (dst));                         \
		if (!_p_.received || !streq(_p_.source, (want_src)) || !_p_.replied)               \
			fail_msg("to %s: received %d from '%s', replied %d; want from %s", (dst),  \
				 _p_.received, _p_.source, _p_.replied, (want_src));               \
	} while (0)
#define assert_dropped(from, to, dst)                                                              \
	do {                                                                                       \
		struct probe _p_ = probe(self, (from).fd, (to).fd, (dst));                         \
		if (_p_.received)                                                                  \
			fail_msg("to %s: received from %s; want dropped", (dst), _p_.source);      \
	} while (0)

/* An uplink to an "outside" namespace (192.0.2.2, which routes 10.77.0.0/16 back to the host)
 * and two networks: A (mvbr-a, vm1) and B (mvbr-b, vm2 and vm3), each VM a namespace of its
 * own on a veth port of the bridge. */
static void test_packets(void **state)
{
	struct peer_ns out = {0}, vm1 = {0}, vm2 = {0}, vm3 = {0};
	struct nft_network nets[] = {NET_A, NET_B};
	struct mv_error err = {0};
	struct peer_ns host;
	int self;

	NEED_NETNS();
	if (sh("ip -V >/dev/null 2>&1") != 0)
		skip(); /* needs iproute2 */
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_true(self >= 0);
	host = (struct peer_ns){getpid(), self};
	peer_start(&out);
	peer_start(&vm1);
	peer_start(&vm2);
	peer_start(&vm3);

	assert_int_equal(nft_enable_ip_forward(NULL, &err), 0);
	xsh("ip link set lo up && ip link add up0 type veth peer name eth0 netns %d && "
	    "ip addr add 192.0.2.1/24 dev up0 && ip link set up0 up && "
	    "nsenter -t %d -n sh -c 'ip link set lo up && ip addr add 192.0.2.2/24 dev eth0 && "
	    "ip link set eth0 up && ip route add 10.77.0.0/16 via 192.0.2.1'",
	    (int)out.pid, (int)out.pid);
	xsh("ip link add mvbr-a type bridge && ip addr add 10.77.1.1/24 dev mvbr-a && "
	    "ip link set mvbr-a up && ip link add mvbr-b type bridge && "
	    "ip addr add 10.77.2.1/24 dev mvbr-b && ip link set mvbr-b up");
	const struct {
		struct peer_ns *ns;
		const char *port, *bridge, *addr, *gw;
	} vms[] = {
		{&vm1, "va1", "mvbr-a", "10.77.1.2", "10.77.1.1"},
		{&vm2, "vb2", "mvbr-b", "10.77.2.2", "10.77.2.1"},
		{&vm3, "vb3", "mvbr-b", "10.77.2.3", "10.77.2.1"},
	};
	for (size_t i = 0; i < ELEMENTSOF(vms); i++)
		xsh("ip link add %s type veth peer name eth0 netns %d && ip link set %s master %s "
		    "up && nsenter -t %d -n sh -c 'ip link set lo up && ip addr add %s/24 dev eth0 "
		    "&& ip link set eth0 up && ip route add default via %s'",
		    vms[i].port, (int)vms[i].ns->pid, vms[i].port, vms[i].bridge,
		    (int)vms[i].ns->pid, vms[i].addr, vms[i].gw);

	/* without rules: plain routing, no translation, the networks reach each other */
	assert_passes(vm1, out, "192.0.2.2", "10.77.1.2");
	assert_passes(out, vm1, "10.77.1.2", "192.0.2.2");
	assert_passes(vm1, vm2, "10.77.2.2", "10.77.1.2");

	/* both nat: out with the host's address, replies come back; nothing new comes in from
	 * outside or from the other network; the host and the VMs of one network are reachable */
	nets[1].mode = NET_MODE_NAT;
	assert_int_equal(nft_reconcile(*state, nets, 2, &err), 0);
	assert_passes(vm1, out, "192.0.2.2", "192.0.2.1");
	assert_passes(vm2, out, "192.0.2.2", "192.0.2.1");
	assert_dropped(out, vm1, "10.77.1.2");
	assert_dropped(vm1, vm2, "10.77.2.2");
	assert_dropped(vm2, vm1, "10.77.1.2");
	assert_passes(vm2, vm3, "10.77.2.3", "10.77.2.2");
	assert_passes(vm1, host, "10.77.1.1", "10.77.1.2");

	/* B isolated: no way out or in, but its VMs and the host still talk */
	assert_int_equal(nft_network_apply(*state, &NET_B, &err), 0);
	assert_dropped(vm2, out, "192.0.2.2");
	assert_dropped(out, vm2, "10.77.2.2");
	assert_dropped(vm1, vm2, "10.77.2.2");
	assert_passes(vm2, vm3, "10.77.2.3", "10.77.2.2");
	assert_passes(vm2, host, "10.77.2.1", "10.77.2.2");
	assert_passes(vm1, out, "192.0.2.2", "192.0.2.1");

	/* all rules gone: as before */
	assert_int_equal(nft_reconcile(*state, NULL, 0, &err), 0);
	assert_passes(vm1, vm2, "10.77.2.2", "10.77.1.2");

	peer_stop(&vm3);
	peer_stop(&vm2);
	peer_stop(&vm1);
	peer_stop(&out);
	/* the veth pairs went with the namespaces of their other ends */
	xsh("ip link delete mvbr-a && ip link delete mvbr-b");
	close(self);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apply_nat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_isolated_and_bridge_mode, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_apply_is_idempotent_and_replaces, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_without_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_tables_are_never_touched, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_input_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bridge_of_another_network, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nft_error_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_are_cloexec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ip_forward, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packets, setup, teardown),
	};

	have_netns = unshare(CLONE_NEWNET) == 0;
	if (!have_netns)
		fprintf(stderr, "# no network namespace (%s): skipping\n", strerror(errno));
	else if (system("nft --version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "# no nft command (package nftables): skipping\n");
		have_netns = false;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
