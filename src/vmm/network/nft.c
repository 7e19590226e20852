/* mvirt's firewall rules in table inet mvirt, with libnftables (nft.h). Commands are fed as
 * nft's text syntax, one buffer per call, which libnftables runs as one transaction; the table
 * is read back as JSON (json-c) to find what each network has in it. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <json-c/json.h>
#include <nftables/libnftables.h>

#include "common/macro.h"
#include "network/nft.h"

#define TABLE NFT_TABLE_FAMILY " " NFT_TABLE_NAME
#define SET "bridges"
#define CHAIN_FORWARD "forward"
#define CHAIN_POSTROUTING "postrouting"
#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"

struct nft {
	struct nft_ctx *ctx;
};

/* What the table holds of one network: its chain and its rules in the base chains. */
struct present_rule {
	const char *chain; /* CHAIN_FORWARD or CHAIN_POSTROUTING */
	int64_t handle;
};

struct present {
	char id[NFT_ID_LEN + 1];
	char bridge[NET_IFNAME_MAX + 1]; /* from its base-chain rules; "" when none says */
	bool chain;
	struct present_rule *rules;
	size_t n_rules;
};

struct state {
	bool table;
	struct present *nets;
	size_t n;
};

static void state_done(struct state *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->nets[i].rules);
	free(s->nets);
	*s = (struct state){0};
}

/* The fd that a /proc/self/fd entry names, -1 for "." and "..". */
static int parse_fd(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > INT32_MAX)
		return -1;
	return (int)v;
}

/* The open fds of the process, in *ret (caller frees). */
static int fd_list(int **ret, size_t *ret_n)
{
	_cleanup_free_ int *fds = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int fd = parse_fd(de->d_name);

		if (fd < 0 || fd == dirfd(d))
			continue;
		if (n == cap) {
			int *p = realloc(fds, (cap = cap ? 2 * cap : 64) * sizeof(*p));

			if (!p) {
				closedir(d);
				return -ENOMEM;
			}
			fds = p;
		}
		fds[n++] = fd;
	}
	closedir(d);
	*ret = TAKE_PTR(fds);
	*ret_n = n;
	return 0;
}

/* libnftables opens its netlink socket in nft_ctx_new() without SOCK_CLOEXEC and does not
 * give it out: marks close-on-exec each netfilter netlink socket not in before[0..n). The
 * spawner closes stray fds in its children anyway (os/proc.c); this covers any other exec. */
static void cloexec_new_sockets(const int *before, size_t n)
{
	_cleanup_free_ int *now = NULL;
	size_t n_now = 0, i, j;

	if (fd_list(&now, &n_now) < 0)
		return;
	for (i = 0; i < n_now; i++) {
		int domain = 0, proto = 0, flags;
		socklen_t len = sizeof(int);

		for (j = 0; j < n && before[j] != now[i]; j++)
			;
		if (j < n)
			continue;
		if (getsockopt(now[i], SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
		    domain != AF_NETLINK)
			continue;
		len = sizeof(int);
		if (getsockopt(now[i], SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0 ||
		    proto != NETLINK_NETFILTER)
			continue;
		flags = fcntl(now[i], F_GETFD);
		if (flags >= 0 && !(flags & FD_CLOEXEC))
			(void)fcntl(now[i], F_SETFD, flags | FD_CLOEXEC);
	}
}

/* libnftables, and what it pulls in (libnftnl, libxtables, libjansson, libgmp: ~1 MB of
 * resident pages), is loaded at the first firewall change or listing, not at start: a host
 * whose networks need no rules never maps it. Its header still gives every type. */
#define NFT_LIBRARY "libnftables.so.1"

static struct {
	bool loaded;
	__typeof__(nft_ctx_new) *ctx_new;
	__typeof__(nft_ctx_free) *ctx_free;
	__typeof__(nft_ctx_buffer_output) *buffer_output;
	__typeof__(nft_ctx_buffer_error) *buffer_error;
	__typeof__(nft_ctx_get_output_buffer) *get_output_buffer;
	__typeof__(nft_ctx_get_error_buffer) *get_error_buffer;
	__typeof__(nft_ctx_output_get_flags) *output_get_flags;
	__typeof__(nft_ctx_output_set_flags) *output_set_flags;
	__typeof__(nft_run_cmd_from_buffer) *run_cmd_from_buffer;
} lib;

static int lib_load(struct mv_error *err)
{
	const struct {
		void **fn;
		const char *name;
	} syms[] = {
		{(void **)&lib.ctx_new, "nft_ctx_new"},
		{(void **)&lib.ctx_free, "nft_ctx_free"},
		{(void **)&lib.buffer_output, "nft_ctx_buffer_output"},
		{(void **)&lib.buffer_error, "nft_ctx_buffer_error"},
		{(void **)&lib.get_output_buffer, "nft_ctx_get_output_buffer"},
		{(void **)&lib.get_error_buffer, "nft_ctx_get_error_buffer"},
		{(void **)&lib.output_get_flags, "nft_ctx_output_get_flags"},
		{(void **)&lib.output_set_flags, "nft_ctx_output_set_flags"},
		{(void **)&lib.run_cmd_from_buffer, "nft_run_cmd_from_buffer"},
	};
	void *h;

	if (lib.loaded)
		return 0;
	/* kept for the process's life: its contexts may outlive any one caller */
	h = dlopen(NFT_LIBRARY, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return mv_err_internal(err, -ENOENT, "nftables: cannot load %s: %s", NFT_LIBRARY,
				       dlerror());
	for (size_t i = 0; i < ELEMENTSOF(syms); i++) {
		*syms[i].fn = dlsym(h, syms[i].name);
		if (!*syms[i].fn)
			return mv_err_internal(err, -ENOENT, "nftables: %s has no %s: %s",
					       NFT_LIBRARY, syms[i].name, dlerror());
	}
	lib.loaded = true;
	return 0;
}

int nft_open(struct nft **ret, struct mv_error *err)
{
	struct nft *n = calloc(1, sizeof(*n));

	if (!n)
		return mv_err_oom(err);
	*ret = n;
	return 0;
}

/* The context, made (and the library loaded) at first use. */
static int ctx_get(struct nft *n, struct mv_error *err)
{
	_cleanup_free_ int *before = NULL;
	size_t n_before = 0;
	int r;

	if (n->ctx)
		return 0;
	if ((r = lib_load(err)) < 0)
		return r;
	(void)fd_list(&before, &n_before);
	n->ctx = lib.ctx_new(NFT_CTX_DEFAULT);
	if (!n->ctx || lib.buffer_output(n->ctx) < 0 || lib.buffer_error(n->ctx) < 0) {
		if (n->ctx)
			lib.ctx_free(n->ctx);
		n->ctx = NULL;
		return mv_err_oom(err);
	}
	cloexec_new_sockets(before, n_before);
	return 0;
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	if (n->ctx)
		lib.ctx_free(n->ctx);
	free(n);
}

/* ---- input checks ---- */

static bool is_uuid(const char *s)
{
	size_t i;

	if (!s || strlen(s) != NFT_ID_LEN)
		return false;
	for (i = 0; i < NFT_ID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-'
			 : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

static int check_id(const char *id, const char *prefix, struct mv_error *err)
{
	char quoted[NFT_ID_LEN + 8];

	if (isempty(id))
		return mv_err_invalid(err, "%sid: required", prefix);
	if (!is_uuid(id))
		return mv_err_invalid(err,
				      "%sid: '%s' is not a UUID (lowercase 8-4-4-4-12 hex digits)",
				      prefix, mv_printable(id, quoted, sizeof(quoted)));
	return 0;
}

static bool is_nat(enum net_mode mode)
{
	return mode == NET_MODE_NAT || mode == NET_MODE_UNSPECIFIED;
}

static bool has_rules(enum net_mode mode)
{
	return is_nat(mode) || mode == NET_MODE_ISOLATED;
}

/* prefix: how fields are named ("" or "nets[3]."). */
static int check_network(const struct nft_network *net, const char *prefix, struct mv_error *err)
{
	char field[64];
	int r;

	if (!net)
		return mv_err_invalid(err, "%snetwork: required", prefix);
	if ((r = check_id(net->id, prefix, err)) < 0)
		return r;
	if (net->mode != NET_MODE_BRIDGE && !has_rules(net->mode))
		return mv_err_invalid(err, "network %s: %smode: unknown (%d)", net->id, prefix,
				      (int)net->mode);
	if (!has_rules(net->mode))
		return 0;
	snprintf(field, sizeof(field), "%sbridge", prefix);
	if ((r = net_validate_ifname(net->bridge, field, err)) < 0)
		return mv_err_prefix(err, "network %s: ", net->id), r;
	if (is_nat(net->mode) && (net->subnet.prefix < 1 || net->subnet.prefix > 32))
		return mv_err_invalid(err, "network %s: %ssubnet: prefix /%u is not 1..32", net->id,
				      prefix, net->subnet.prefix);
	return 0;
}

/* ---- running commands ---- */

/* libnftables' error text on one line: its "Error: ..." lines and the commands they quote,
 * without the caret lines that point into them. */
static void condense(const char *text, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	while (text && *text) {
		size_t line = strcspn(text, "\n");
		size_t k, lead = 0;
		bool carets = true;

		for (k = 0; k < line; k++)
			if (text[k] != ' ' && text[k] != '\t' && text[k] != '^')
				carets = false;
		while (lead < line && (text[lead] == ' ' || text[lead] == '\t'))
			lead++;
		if (!carets && len + 4 < size) {
			int w = snprintf(buf + len, size - len, "%s%.*s", len ? " | " : "",
					 (int)(line - lead), text + lead);
			if (w > 0)
				len = strlen(buf); /* snprintf truncates at size - 1 */
		}
		text += line;
		if (*text == '\n')
			text++;
	}
	if (!buf[0])
		snprintf(buf, size, "failed without saying why");
}

/* Runs cmds; fails with what libnftables said. Leaves the output (JSON when asked for) in
 * *ret_out (may be NULL), valid until the next run. */
static int run(struct nft *n, const char *cmds, const char *what, const char **ret_out,
	       struct mv_error *err)
{
	const char *out, *error;
	char text[MV_ERROR_MAX - 128];
	int rc;

	if ((rc = ctx_get(n, err)) < 0)
		return rc;
	rc = lib.run_cmd_from_buffer(n->ctx, cmds);
	/* reading a buffer rewinds it for the next run */
	out = lib.get_output_buffer(n->ctx);
	error = lib.get_error_buffer(n->ctx);
	if (rc == 0) {
		if (ret_out)
			*ret_out = strempty(out);
		return 0;
	}
	condense(error, text, sizeof(text));
	if (error && strstr(error, "Operation not permitted"))
		return mv_err_denied(err, -EPERM, "nftables: %s: %s", what, text);
	return mv_err_internal(err, -EIO, "nftables: %s: %s", what, text);
}

/* Runs a list command with JSON output and parses it into *ret. */
static int list_json(struct nft *n, const char *cmd, json_object **ret, struct mv_error *err)
{
	enum json_tokener_error jerr;
	unsigned int flags;
	const char *out;
	json_object *root;
	int r;

	if ((r = ctx_get(n, err)) < 0)
		return r;
	flags = lib.output_get_flags(n->ctx);
	lib.output_set_flags(n->ctx, flags | NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
	r = run(n, cmd, cmd, &out, err);
	lib.output_set_flags(n->ctx, flags);
	if (r < 0)
		return r;
	root = json_tokener_parse_verbose(out, &jerr);
	if (!root)
		return mv_err_internal(err, -EIO, "nftables: %s: unreadable JSON: %s", cmd,
				       json_tokener_error_desc(jerr));
	*ret = root;
	return 0;
}

/* ---- reading the table ---- */

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The array of objects of a listing ("nftables": [{"table": {...}}, {"rule": {...}}, ...]). */
static json_object *items_of(json_object *root)
{
	json_object *items;

	if (!json_object_object_get_ex(root, "nftables", &items) ||
	    !json_object_is_type(items, json_type_array))
		return NULL;
	return items;
}

/* The body of item if it is a kind ("chain", "rule") of table inet mvirt, else NULL. */
static json_object *ours(json_object *item, const char *kind)
{
	json_object *o;
	const char *family, *table;

	if (!json_object_object_get_ex(item, kind, &o))
		return NULL;
	family = jstr(o, "family");
	table = jstr(o, streq(kind, "table") ? "name" : "table");
	if (!family || !table || !streq(family, NFT_TABLE_FAMILY) || !streq(table, NFT_TABLE_NAME))
		return NULL;
	return o;
}

/* The id in "net-<uuid>", or NULL. */
static const char *id_of(const char *name)
{
	if (!name || !startswith(name, NFT_CHAIN_PREFIX))
		return NULL;
	name += strlen(NFT_CHAIN_PREFIX);
	return is_uuid(name) ? name : NULL;
}

static struct present *state_get(struct state *s, const char *id)
{
	struct present *p;

	for (size_t i = 0; i < s->n; i++)
		if (streq(s->nets[i].id, id))
			return &s->nets[i];
	p = realloc(s->nets, (s->n + 1) * sizeof(*p));
	if (!p)
		return NULL;
	s->nets = p;
	p = &s->nets[s->n++];
	*p = (struct present){0};
	snprintf(p->id, sizeof(p->id), "%s", id);
	return p;
}

/* The interface name of the first iifname/oifname match among a rule's expressions. */
static void bridge_of(json_object *rule, char *buf, size_t size)
{
	json_object *expr, *match, *left, *meta;
	const char *key, *right;
	size_t i;

	if (!json_object_object_get_ex(rule, "expr", &expr) ||
	    !json_object_is_type(expr, json_type_array))
		return;
	for (i = 0; i < json_object_array_length(expr); i++) {
		if (!json_object_object_get_ex(json_object_array_get_idx(expr, i), "match",
					       &match) ||
		    !json_object_object_get_ex(match, "left", &left) ||
		    !json_object_object_get_ex(left, "meta", &meta))
			continue;
		key = jstr(meta, "key");
		right = jstr(match, "right");
		if (!key || !right || (!streq(key, "iifname") && !streq(key, "oifname")) ||
		    net_validate_ifname(right, NULL, NULL) < 0)
			continue;
		snprintf(buf, size, "%s", right);
		return;
	}
}

static int add_rule(struct state *s, json_object *rule)
{
	const char *chain = jstr(rule, "chain"), *id = id_of(jstr(rule, "comment"));
	struct present_rule *rules;
	json_object *handle;
	struct present *p;

	if (!chain || !id || !json_object_object_get_ex(rule, "handle", &handle))
		return 0;
	if (streq(chain, CHAIN_FORWARD))
		chain = CHAIN_FORWARD;
	else if (streq(chain, CHAIN_POSTROUTING))
		chain = CHAIN_POSTROUTING;
	else
		return 0; /* not where mvirt writes */
	if (!(p = state_get(s, id)))
		return -ENOMEM;
	rules = realloc(p->rules, (p->n_rules + 1) * sizeof(*rules));
	if (!rules)
		return -ENOMEM;
	p->rules = rules;
	rules[p->n_rules++] = (struct present_rule){chain, json_object_get_int64(handle)};
	if (!p->bridge[0])
		bridge_of(rule, p->bridge, sizeof(p->bridge));
	return 0;
}

static int table_exists(struct nft *n, bool *ret, struct mv_error *err)
{
	json_object *root = NULL, *items;
	bool found = false;
	int r;

	if ((r = list_json(n, "list tables " NFT_TABLE_FAMILY, &root, err)) < 0)
		return r;
	if ((items = items_of(root)))
		for (size_t i = 0; i < json_object_array_length(items) && !found; i++)
			found = ours(json_object_array_get_idx(items, i), "table") != NULL;
	json_object_put(root);
	*ret = found;
	return 0;
}

/* What table inet mvirt holds of which network. */
static int state_load(struct nft *n, struct state *ret, struct mv_error *err)
{
	static const char *const lists[] = {
		"list chains " NFT_TABLE_FAMILY,
		"list chain " TABLE " " CHAIN_FORWARD,
		"list chain " TABLE " " CHAIN_POSTROUTING,
	};
	struct state s = {0};
	json_object *root = NULL, *items, *o;
	int r;

	if ((r = table_exists(n, &s.table, err)) < 0 || !s.table)
		goto out;
	/* The chains without their rules, and the rules of the two base chains only: a network's
	 * own chain is deleted whole, so its rules are never read (the table's listing would
	 * grow with ten rules per network, each parsed on every create and delete). */
	bool listed[ELEMENTSOF(lists)] = {true, false, false}; /* base chains: once seen */

	for (size_t k = 0; k < ELEMENTSOF(lists); k++) {
		if (!listed[k])
			continue; /* someone deleted it: nothing to read, the preamble adds it */
		if ((r = list_json(n, lists[k], &root, err)) < 0)
			goto out;
		if (!(items = items_of(root))) {
			r = mv_err_internal(err, -EIO, "nftables: %s: no \"nftables\"", lists[k]);
			goto out;
		}
		for (size_t i = 0; i < json_object_array_length(items); i++) {
			json_object *item = json_object_array_get_idx(items, i);
			const char *id;

			const char *name =
				(o = ours(item, "chain")) ? strempty(jstr(o, "name")) : "";

			if (o && k == 0 && !id_of(name)) {
				listed[1] = listed[1] || streq(name, CHAIN_FORWARD);
				listed[2] = listed[2] || streq(name, CHAIN_POSTROUTING);
			} else if (o && (id = id_of(name))) {
				struct present *p = state_get(&s, id);

				if (!p) {
					r = mv_err_oom(err);
					goto out;
				}
				p->chain = true;
			} else if ((o = ours(item, "rule")) && (r = add_rule(&s, o)) < 0) {
				r = mv_err_oom(err);
				goto out;
			}
		}
		json_object_put(TAKE_PTR(root));
	}
	r = 0;
out:
	json_object_put(root);
	if (r < 0)
		state_done(&s);
	else
		*ret = s;
	return r;
}

/* ---- writing the transaction ---- */

/* Belt and braces: names that go into the text between quotes are checked before. */
static bool quotable(const char *s)
{
	return net_validate_ifname(s, NULL, NULL) == 0;
}

static void emit_preamble(FILE *f)
{
	fputs("add table " TABLE "\n"
	      "add set " TABLE " " SET " { type ifname; }\n"
	      "add chain " TABLE " " CHAIN_FORWARD
	      " { type filter hook forward priority filter; policy accept; }\n"
	      "add chain " TABLE " " CHAIN_POSTROUTING
	      " { type nat hook postrouting priority srcnat; policy accept; }\n",
	      f);
}

static void emit_drop(FILE *f, const struct present *p)
{
	for (size_t i = 0; i < p->n_rules; i++)
		fprintf(f, "delete rule " TABLE " %s handle %" PRId64 "\n", p->rules[i].chain,
			p->rules[i].handle);
	if (p->chain)
		fprintf(f, "delete chain " TABLE " " NFT_CHAIN_PREFIX "%s\n", p->id);
}

/* The set holds the bridges of bridges[0..n). */
static void emit_set(FILE *f, const char *const *bridges, size_t n)
{
	fputs("flush set " TABLE " " SET "\n", f);
	if (n == 0)
		return;
	fputs("add element " TABLE " " SET " { ", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\"%s\"", i ? ", " : "", bridges[i]);
	fputs(" }\n", f);
}

static int emit_network(FILE *f, const struct nft_network *net)
{
	const char *b = net->bridge, *id = net->id;
	char addr[16] = "";

	if (!has_rules(net->mode))
		return 0;
	if (!is_uuid(id) || !quotable(b))
		return -EINVAL;
#define RULE "add rule " TABLE " " NFT_CHAIN_PREFIX "%s "
	fprintf(f, "add chain " TABLE " " NFT_CHAIN_PREFIX "%s\n", id);
	fprintf(f, RULE "iifname \"%s\" oifname \"%s\" accept\n", id, b, b);
	fprintf(f, RULE "iifname \"%s\" oifname @" SET " drop\n", id, b);
	fprintf(f, RULE "oifname \"%s\" iifname @" SET " drop\n", id, b);
	if (is_nat(net->mode)) {
		net_ipv4_format(net->subnet.addr & net_ipv4_mask(net->subnet.prefix), addr);
		fprintf(f, RULE "iifname \"%s\" ip saddr %s/%u accept\n", id, b, addr,
			net->subnet.prefix);
		fprintf(f, RULE "oifname \"%s\" ct state established,related accept\n", id, b);
		fprintf(f, RULE "iifname \"%s\" meta nfproto ipv4 drop\n", id, b);
		fprintf(f, RULE "oifname \"%s\" meta nfproto ipv4 drop\n", id, b);
	} else {
		fprintf(f, RULE "iifname \"%s\" drop\n", id, b);
		fprintf(f, RULE "oifname \"%s\" drop\n", id, b);
	}
#undef RULE
#define BASE_RULE(chain) "add rule " TABLE " " chain " "
#define TAG " comment \"" NFT_CHAIN_PREFIX "%s\"\n"
	fprintf(f, BASE_RULE(CHAIN_FORWARD) "iifname \"%s\" jump " NFT_CHAIN_PREFIX "%s" TAG, b, id,
		id);
	fprintf(f, BASE_RULE(CHAIN_FORWARD) "oifname \"%s\" jump " NFT_CHAIN_PREFIX "%s" TAG, b, id,
		id);
	if (is_nat(net->mode))
		fprintf(f,
			BASE_RULE(
				CHAIN_POSTROUTING) "oifname != \"%s\" ip saddr %s/%u masquerade" TAG,
			b, addr, net->subnet.prefix, id);
#undef BASE_RULE
#undef TAG
	return 0;
}

static bool contains(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (streq(v[i], s))
			return true;
	return false;
}

/* Builds and runs one transaction on the table as s found it: the networks present whose id
 * is in drop[0..n_drop) lose their rules, those of nets[0..n_nets) get theirs (re)written, all
 * other networks present keep theirs. */
static int transact(struct nft *n, const struct state *s, const char *const *drop, size_t n_drop,
		    const struct nft_network *nets, size_t n_nets, const char *what,
		    struct mv_error *err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ const char **bridges = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	size_t size = 0, n_bridges = 0, i;
	bool writes = false;
	int r;

	for (i = 0; i < n_nets; i++)
		writes = writes || has_rules(nets[i].mode);
	if (!s->table && !writes)
		return 0; /* nothing to delete, nothing to write: not even the table */

	bridges = calloc(s->n + n_nets + 1, sizeof(*bridges));
	f = open_memstream(&text, &size);
	if (!bridges || !f)
		return mv_err_oom(err);

	emit_preamble(f);
	for (i = 0; i < s->n; i++) {
		const struct present *p = &s->nets[i];

		if (contains(drop, n_drop, p->id))
			emit_drop(f, p);
		else if (p->bridge[0] && !contains(bridges, n_bridges, p->bridge))
			bridges[n_bridges++] = p->bridge;
	}
	for (i = 0; i < n_nets; i++)
		if (has_rules(nets[i].mode) && !contains(bridges, n_bridges, nets[i].bridge))
			bridges[n_bridges++] = nets[i].bridge;
	emit_set(f, bridges, n_bridges);
	for (i = 0; i < n_nets; i++)
		if ((r = emit_network(f, &nets[i])) < 0)
			return mv_err_internal(err, r,
					       "network %s: refusing to write its rules: %m",
					       strempty(nets[i].id));
	if (fflush(f) != 0 || ferror(f))
		return mv_err_oom(err);
	fclose(TAKE_PTR(f));
	return run(n, text, what, NULL, err);
}

/* ---- the API ---- */

int nft_network_apply(struct nft *n, const struct nft_network *net, struct mv_error *err)
{
	_cleanup_(state_done) struct state s = {0};
	const char *drop[1];
	char what[64];
	int r;

	if ((r = check_network(net, "", err)) < 0)
		return r;
	if ((r = state_load(n, &s, err)) < 0)
		return r;
	if (has_rules(net->mode))
		for (size_t i = 0; i < s.n; i++)
			if (!streq(s.nets[i].id, net->id) && streq(s.nets[i].bridge, net->bridge))
				return mv_err_exists(err,
						     "network %s: bridge: '%s' has the firewall "
						     "rules of network %s",
						     net->id, net->bridge, s.nets[i].id);
	drop[0] = net->id;
	snprintf(what, sizeof(what), "network %s", net->id);
	return transact(n, &s, drop, 1, net, 1, what, err);
}

int nft_network_remove(struct nft *n, const char *id, struct mv_error *err)
{
	_cleanup_(state_done) struct state s = {0};
	char what[64];
	bool found = false;
	int r;

	if ((r = check_id(id, "", err)) < 0)
		return r;
	if ((r = state_load(n, &s, err)) < 0)
		return r;
	for (size_t i = 0; i < s.n; i++)
		found = found || streq(s.nets[i].id, id);
	if (!found)
		return 0;
	snprintf(what, sizeof(what), "network %s", id);
	return transact(n, &s, &id, 1, NULL, 0, what, err);
}

int nft_reconcile(struct nft *n, const struct nft_network *nets, size_t n_nets,
		  struct mv_error *err)
{
	_cleanup_(state_done) struct state s = {0};
	_cleanup_free_ const char **drop = NULL;
	char prefix[32];
	size_t i, j;
	int r;

	if (n_nets > 0 && !nets)
		return mv_err_invalid(err, "nets: required");
	for (i = 0; i < n_nets; i++) {
		snprintf(prefix, sizeof(prefix), "nets[%zu].", i);
		if ((r = check_network(&nets[i], prefix, err)) < 0)
			return r;
		for (j = 0; j < i; j++) {
			if (streq(nets[j].id, nets[i].id))
				return mv_err_invalid(err, "nets[%zu].id: '%s' is also nets[%zu]'s",
						      i, nets[i].id, j);
			if (has_rules(nets[i].mode) && has_rules(nets[j].mode) &&
			    streq(nets[j].bridge, nets[i].bridge))
				return mv_err_invalid(
					err,
					"nets[%zu].bridge: '%s' is also the bridge of "
					"nets[%zu] (network %s)",
					i, nets[i].bridge, j, nets[j].id);
		}
	}
	if ((r = state_load(n, &s, err)) < 0)
		return r;
	/* every network present loses its rules; those of nets are written anew */
	drop = calloc(s.n + 1, sizeof(*drop));
	if (!drop)
		return mv_err_oom(err);
	for (i = 0; i < s.n; i++)
		drop[i] = s.nets[i].id;
	return transact(n, &s, drop, s.n, nets, n_nets, "reconcile", err);
}

int nft_enable_ip_forward(bool *ret_changed, struct mv_error *err)
{
	_cleanup_close_ int fd = -1;
	char buf[8] = "";
	ssize_t len;

	fd = open(IP_FORWARD, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int code = -errno;

		if (code == -EACCES || code == -EPERM || code == -EROFS)
			return mv_err_denied(err, code, "net.ipv4.ip_forward: %s: %m", IP_FORWARD);
		return mv_err_internal(err, code, "net.ipv4.ip_forward: %s: %m", IP_FORWARD);
	}
	len = pread(fd, buf, sizeof(buf) - 1, 0);
	if (len < 0)
		return mv_err_internal(err, -errno, "net.ipv4.ip_forward: reading %s: %m",
				       IP_FORWARD);
	if (buf[0] == '1') {
		if (ret_changed)
			*ret_changed = false;
		return 0;
	}
	len = pwrite(fd, "1\n", 2, 0);
	if (len != 2)
		return mv_err_internal(err, len < 0 ? -errno : -EIO,
				       "net.ipv4.ip_forward: writing %s: %m", IP_FORWARD);
	if (ret_changed)
		*ret_changed = true;
	return 0;
}
