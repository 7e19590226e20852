/* mvirt network VERB ...: the network manager's networks (mvirt.NetworkService).
 *
 *   create NAME [--mode nat|isolated|bridge] [--subnet CIDR] [--bridge IFNAME]
 *               [--dhcp-range START-END | --dhcp-start ADDR --dhcp-end ADDR] [--ipv6 PREFIX]
 *               [--domain DOMAIN]
 *   ls [-q] | show NAME | rm NAME... | leases NAME
 *
 * A group entry of the command table whose children are the verbs, one entry each, as in
 * cmd_volume.c; the verbs share one option namespace. The CLI only splits --dhcp-range and
 * maps --mode to the enum: subnets, addresses, bridge names and domains are the daemon's to
 * check, so its messages (which name the config field) are the ones users see. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "output.h"

/* ---- formatting ---- */

static void format_mode(Mvirt__NetworkMode m, char *buf, size_t size)
{
	switch (m) {
	case MVIRT__NETWORK_MODE__NETWORK_MODE_UNSPECIFIED: /* means NAT */
	case MVIRT__NETWORK_MODE__NETWORK_MODE_NAT:
		snprintf(buf, size, "nat");
		break;
	case MVIRT__NETWORK_MODE__NETWORK_MODE_ISOLATED:
		snprintf(buf, size, "isolated");
		break;
	case MVIRT__NETWORK_MODE__NETWORK_MODE_BRIDGE:
		snprintf(buf, size, "bridge");
		break;
	default:
		snprintf(buf, size, "%d", (int)m);
		break;
	}
}

/* "10.77.0.2-10.77.0.254", or "-" when the network has no DHCP (bridge mode). */
static void format_dhcp(const Mvirt__Network *n, const char *sep, char *buf, size_t size)
{
	if (isempty(n->dhcp_start) && isempty(n->dhcp_end))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%s%s%s", output_dash(n->dhcp_start), sep,
			 output_dash(n->dhcp_end));
}

static void print_network(const Mvirt__Network *n)
{
	char buf[128];

	output_kv("id", "%s", n->id);
	output_kv("name", "%s", n->name);
	format_mode(n->mode, buf, sizeof(buf));
	output_kv("mode", "%s", buf);
	output_kv("bridge", "%s", output_dash(n->bridge));
	output_kv("subnet", "%s", output_dash(n->ipv4_subnet));
	output_kv("gateway", "%s", output_dash(n->gateway));
	format_dhcp(n, " - ", buf, sizeof(buf));
	output_kv("dhcp", "%s", buf);
	output_kv("ipv6", "%s", output_dash(n->ipv6_prefix));
	output_kv("domain", "%s", output_dash(n->domain));
	if (n->n_used_by == 0)
		output_kv("used by", "-");
	for (size_t i = 0; i < n->n_used_by; i++)
		output_kv(i == 0 ? "used by" : "", "%s", n->used_by[i]);
	output_format_time(n->created_at, buf, sizeof(buf));
	output_kv("created", "%s", buf);
	output_kv("status", "%s", output_dash(n->status));
}

static void print_network_msg(const ProtobufCMessage *msg)
{
	print_network((const Mvirt__Network *)msg);
}

static void print_list_table(const ProtobufCMessage *msg)
{
	const Mvirt__ListNetworksResponse *resp = (const Mvirt__ListNetworksResponse *)msg;
	static const char *const headers[] = {"NAME",    "MODE", "BRIDGE", "SUBNET",
					      "GATEWAY", "DHCP", "VMS",    "STATUS"};
	struct table *t = table_new(ELEMENTSOF(headers), headers);

	if (!t) {
		cli_error("out of memory");
		return;
	}
	for (size_t i = 0; i < resp->n_networks; i++) {
		const Mvirt__Network *n = resp->networks[i];
		char mode[16], dhcp[64], vms[16];

		format_mode(n->mode, mode, sizeof(mode));
		format_dhcp(n, "-", dhcp, sizeof(dhcp));
		snprintf(vms, sizeof(vms), "%zu", n->n_used_by);
		if (table_add_row(t, (const char *const[]){n->name, mode, output_dash(n->bridge),
							   output_dash(n->ipv4_subnet),
							   output_dash(n->gateway), dhcp, vms,
							   output_dash(n->status)}) < 0) {
			cli_error("out of memory");
			break;
		}
	}
	table_print(t);
	table_free(t);
}

static void print_leases_table(const ProtobufCMessage *msg)
{
	const Mvirt__ListLeasesResponse *resp = (const Mvirt__ListLeasesResponse *)msg;
	static const char *const headers[] = {"MAC", "ADDRESS", "HOSTNAME", "VM", "EXPIRES"};
	struct table *t = table_new(ELEMENTSOF(headers), headers);

	if (!t) {
		cli_error("out of memory");
		return;
	}
	for (size_t i = 0; i < resp->n_leases; i++) {
		const Mvirt__Lease *l = resp->leases[i];
		char expires[64];

		output_format_time(l->expires_at, expires, sizeof(expires));
		if (table_add_row(t, (const char *const[]){l->mac, output_dash(l->address),
							   output_dash(l->hostname),
							   output_dash(l->vm), expires}) < 0) {
			cli_error("out of memory");
			break;
		}
	}
	table_print(t);
	table_free(t);
}

/* ---- parsing ---- */

static int parse_mode(struct cli *cli, const char *s, Mvirt__NetworkMode *ret)
{
	if (!s)
		*ret = MVIRT__NETWORK_MODE__NETWORK_MODE_UNSPECIFIED;
	else if (streq(s, "nat"))
		*ret = MVIRT__NETWORK_MODE__NETWORK_MODE_NAT;
	else if (streq(s, "isolated"))
		*ret = MVIRT__NETWORK_MODE__NETWORK_MODE_ISOLATED;
	else if (streq(s, "bridge"))
		*ret = MVIRT__NETWORK_MODE__NETWORK_MODE_BRIDGE;
	else
		return cli_usage_error(cli, "--mode: unknown mode '%s' (nat, isolated or bridge)",
				       s);
	return CLI_EXIT_OK;
}

/* The option's value, or protobuf_c_empty_string when it is absent. */
static char *opt_str(const struct args *args, const char *name)
{
	const char *v = args_get(args, name);

	return (char *)(v ? v : protobuf_c_empty_string);
}

/* Fills c from the options; its strings borrow from argv, except the two halves of
 * --dhcp-range, stored in *ret_range (free it). */
static int build_config(struct cli *cli, const struct args *args, Mvirt__NetworkConfig *c,
			char **ret_range)
{
	const char *range = args_get(args, "dhcp-range");
	char *copy, *dash;
	int r;

	if ((r = parse_mode(cli, args_get(args, "mode"), &c->mode)) != CLI_EXIT_OK)
		return r;
	c->bridge = opt_str(args, "bridge");
	c->ipv4_subnet = opt_str(args, "subnet");
	c->dhcp_start = opt_str(args, "dhcp-start");
	c->dhcp_end = opt_str(args, "dhcp-end");
	c->ipv6_prefix = opt_str(args, "ipv6");
	c->domain = opt_str(args, "domain");
	if (!range)
		return CLI_EXIT_OK;
	if (args_has(args, "dhcp-start") || args_has(args, "dhcp-end"))
		return cli_usage_error(
			cli, "--dhcp-range: give either it or --dhcp-start/--dhcp-end, not both");
	dash = strchr(range, '-');
	if (!dash || dash == range || !dash[1] || strchr(dash + 1, '-'))
		return cli_usage_error(
			cli, "--dhcp-range: '%s' is not START-END (e.g. 10.77.0.100-10.77.0.200)",
			range);
	if (!(copy = strdup(range)))
		return cli_error("out of memory");
	copy[dash - range] = '\0';
	c->dhcp_start = copy;
	c->dhcp_end = copy + (dash - range) + 1;
	*ret_range = copy;
	return CLI_EXIT_OK;
}

/* ---- verbs ---- */

static const ProtobufCServiceDescriptor *const network_service =
	&mvirt__network_service__descriptor;

/* Calls method and prints the response with table (or as JSON). */
static int call_print(struct cli *cli, const char *method, const ProtobufCMessage *req,
		      void (*table)(const ProtobufCMessage *msg))
{
	ProtobufCMessage *resp = NULL;
	int r;

	if ((r = cli_call_service(cli, network_service, method, req, &resp)) != CLI_EXIT_OK)
		return r;
	r = cli_print_result(cli, resp, table);
	protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

static int verb_create(struct cli *cli, const struct args *args)
{
	Mvirt__CreateNetworkRequest req = MVIRT__CREATE_NETWORK_REQUEST__INIT;
	Mvirt__NetworkConfig config = MVIRT__NETWORK_CONFIG__INIT;
	_cleanup_free_ char *range = NULL;
	int r;

	if ((r = build_config(cli, args, &config, &range)) != CLI_EXIT_OK)
		return r;
	req.name = args->positional[0];
	req.config = &config;
	return call_print(cli, "CreateNetwork", &req.base, print_network_msg);
}

/* ls -q: the network names alone, one per line (for scripts and shell completion). */
static void print_names(const ProtobufCMessage *msg)
{
	const Mvirt__ListNetworksResponse *resp = (const Mvirt__ListNetworksResponse *)msg;

	for (size_t i = 0; i < resp->n_networks; i++)
		printf("%s\n", resp->networks[i]->name);
}

static int verb_ls(struct cli *cli, const struct args *args)
{
	Mvirt__ListNetworksRequest req = MVIRT__LIST_NETWORKS_REQUEST__INIT;

	return call_print(cli, "ListNetworks", &req.base,
			  args_has(args, "quiet") ? print_names : print_list_table);
}

static int verb_show(struct cli *cli, const struct args *args)
{
	Mvirt__GetNetworkRequest req = MVIRT__GET_NETWORK_REQUEST__INIT;

	req.network = args->positional[0];
	return call_print(cli, "GetNetwork", &req.base, print_network_msg);
}

static int delete_one(struct cli *cli, const char *network, void *userdata)
{
	Mvirt__DeleteNetworkRequest req = MVIRT__DELETE_NETWORK_REQUEST__INIT;
	int r;

	(void)userdata;
	req.network = (char *)network;
	r = call_print(cli, "DeleteNetwork", &req.base, NULL);
	if (r == CLI_EXIT_OK && cli->output == CLI_OUTPUT_TABLE)
		printf("deleted network %s\n", network);
	return r;
}

/* Deletes each network in turn (cli_for_each_arg). */
static int verb_rm(struct cli *cli, const struct args *args)
{
	return cli_for_each_arg(cli, args, 0, delete_one, NULL);
}

static int verb_leases(struct cli *cli, const struct args *args)
{
	Mvirt__ListLeasesRequest req = MVIRT__LIST_LEASES_REQUEST__INIT;

	req.network = args->positional[0];
	return call_print(cli, "ListLeases", &req.base, print_leases_table);
}

static const struct cmd_option create_options[] = {
	{"mode", 0, "MODE",
	 "nat (default): a bridge of mvirt's with DHCP and DNS, masqueraded to the host's uplink; "
	 "isolated: the same without NAT (VMs and host only); bridge: NICs join an existing host "
	 "bridge, no DHCP"},
	{"subnet", 0, "CIDR",
	 "the IPv4 subnet: 10.77.0.0/24 (gateway .1) or 10.77.0.254/24 (that address is the "
	 "gateway); required for nat and isolated"},
	{"bridge", 0, "IFNAME",
	 "the Linux bridge (default: mvbr-NAME); in bridge mode the host's existing bridge"},
	{"dhcp-range", 0, "START-END",
	 "the DHCP pool, e.g. 10.77.0.100-10.77.0.200 (default: every host address of the subnet "
	 "but the gateway's)"},
	{"dhcp-start", 0, "ADDR", "the first address of the DHCP pool"},
	{"dhcp-end", 0, "ADDR", "the last address of the DHCP pool"},
	{"ipv6", 0, "PREFIX",
	 "an IPv6 prefix, e.g. fd42:1::/64 (router advertisements and DHCPv6)"},
	{"domain", 0, "DOMAIN", "the DNS domain of the VMs' names (default: NAME.mvirt)"},
	{NULL},
};

static const struct cmd_entry network_create_entry = {
	.name = "create",
	.usage = "NAME [--mode nat|isolated|bridge] [--subnet CIDR] [--bridge IFNAME] [OPTIONS]",
	.summary = "a new network: a bridge with gateway, DHCP and DNS, or a host bridge",
	.help = "Create the network NAME and show it. In nat (default) and isolated mode mvirt makes\n"
		"the bridge, puts the gateway address on it and serves DHCP and DNS; --subnet is\n"
		"required. In bridge mode NICs join the existing host bridge --bridge.",
	.options = create_options,
	.min_args = 1,
	.max_args = 1,
	.exec = verb_create,
};

static const struct cmd_option ls_options[] = {
	{"quiet", 'q', NULL, "only the names, one per line (-o json still prints the whole list)"},
	{NULL},
};

static const struct cmd_entry network_ls_entry = {
	.name = "ls",
	.alias = "list",
	.usage = "[-q]",
	.summary = "list the networks, ordered by name",
	.help = "List the networks, ordered by name: mode, bridge, subnet, gateway, DHCP range, the\n"
		"number of VMs with a NIC on it, and status.",
	.options = ls_options,
	.min_args = 0,
	.max_args = 0,
	.exec = verb_ls,
};

static const struct cmd_entry network_show_entry = {
	.name = "show",
	.alias = "info",
	.usage = "NAME|ID",
	.summary = "mode, bridge, addresses, DHCP range, domain, VMs using it, status",
	.min_args = 1,
	.max_args = 1,
	.exec = verb_show,
};

static const struct cmd_entry network_rm_entry = {
	.name = "rm",
	.alias = "delete",
	.usage = "NAME|ID...",
	.summary = "delete networks no VM has a NIC on",
	.help = "Delete each network named, in turn; one that a VM still has a NIC on is refused\n"
		"(the daemon names the VMs) and the others are still deleted. With -o json: one\n"
		"(empty) response object per network deleted.",
	.min_args = 1,
	.max_args = -1,
	.exec = verb_rm,
};

static const struct cmd_entry network_leases_entry = {
	.name = "leases",
	.usage = "NAME|ID",
	.summary = "the DHCP leases of a network: MAC, address, host name, VM, expiry",
	.min_args = 1,
	.max_args = 1,
	.exec = verb_leases,
};

static const struct cmd_entry *const network_verbs[] = {
	&network_create_entry, &network_ls_entry,     &network_show_entry,
	&network_rm_entry,     &network_leases_entry, NULL,
};

const struct cmd_entry cmd_network_entry = {
	.name = "network",
	.alias = "net",
	.usage = "VERB [ARGS]",
	.summary = "manage networks (create, ls, show, rm, leases)",
	.help = "Manage the networks VM NICs join (mvirt create --network NAME): Linux bridges of\n"
		"mvirt's with DHCP and DNS, NAT'd or isolated, or existing host bridges.",
	.children = network_verbs,
	.child_noun = "verb",
	.shared_options = true,
};
