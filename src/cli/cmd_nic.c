/* mvirt nic VERB ...: NIC hotplug (mvirt.VmService AddNic, RemoveNic).
 *
 *   add VM SPEC     SPEC as --nic takes it (network=NET or tap=NAME, then [,mac=MAC]), or
 *                   NET[,mac=MAC] for a NIC on the mvirt network NET
 *   rm VM MAC...    the NICs with these MAC addresses
 *
 * Both show the VM afterwards (as mvirt show does; with -o json the Vm message, one per NIC
 * removed). The daemon checks the NIC and names the field in its messages. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int call_vm(struct cli *cli, const char *method, const ProtobufCMessage *req)
{
	ProtobufCMessage *resp = NULL;
	int r;

	if ((r = cli_call(cli, method, req, &resp)) != CLI_EXIT_OK)
		return r;
	r = cli_print_result(cli, resp, cli_print_vm);
	protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

static int verb_add(struct cli *cli, const struct args *args)
{
	Mvirt__AddNicRequest req = MVIRT__ADD_NIC_REQUEST__INIT;
	Mvirt__Nic nic = MVIRT__NIC__INIT;
	const char *spec = args->positional[1];
	/* "tap=..." / "network=..." / "mac=..." first: the --nic form; else NET[,mac=MAC] */
	bool short_form = !(strncmp(spec, "tap=", 4) == 0 || strncmp(spec, "network=", 8) == 0 ||
			    strncmp(spec, "mac=", 4) == 0);
	int r;

	req.vm = args->positional[0];
	req.nic = &nic;
	r = cli_parse_nic(cli, "SPEC", spec, short_form, &nic);
	if (r == CLI_EXIT_OK)
		r = call_vm(cli, "AddNic", &req.base);
	for (char **f = (char *[]){nic.tap, nic.network, nic.mac, NULL}; *f; f++)
		if (*f != protobuf_c_empty_string)
			free(*f);
	return r;
}

static int remove_one(struct cli *cli, const char *mac, void *userdata)
{
	Mvirt__RemoveNicRequest req = MVIRT__REMOVE_NIC_REQUEST__INIT;

	req.vm = userdata;
	req.mac = (char *)mac;
	return call_vm(cli, "RemoveNic", &req.base);
}

/* Removes each NIC in turn (cli_for_each_arg). */
static int verb_rm(struct cli *cli, const struct args *args)
{
	return cli_for_each_arg(cli, args, 1, remove_one, args->positional[0]);
}

static const struct cmd_entry nic_add_entry = {
	.name = "add",
	.usage = "VM NET[,mac=MAC] | VM tap=NAME[,mac=MAC] | VM network=NET[,mac=MAC]",
	.summary = "add a NIC to a VM, running or stopped",
	.help = "Add a NIC to the VM and show it. A running VM gets the device at once (on an mvirt\n"
		"network the daemon makes its tap); a stopped one gets it at its next start. The\n"
		"daemon assigns a MAC address unless one is given.",
	.min_args = 2,
	.max_args = 2,
	.exec = verb_add,
};

static const struct cmd_entry nic_rm_entry = {
	.name = "rm",
	.alias = "remove",
	.usage = "VM MAC...",
	.summary = "remove NICs from a VM by MAC address",
	.help = "Remove each NIC named by its MAC address (case-insensitive) from the VM, in turn,\n"
		"and show the VM after each. A running VM loses the device at once.",
	.min_args = 2,
	.max_args = -1,
	.exec = verb_rm,
};

static const struct cmd_entry *const nic_verbs[] = {&nic_add_entry, &nic_rm_entry, NULL};

const struct cmd_entry cmd_nic_entry = {
	.name = "nic",
	.usage = "VERB [ARGS]",
	.summary = "add or remove the NICs of a VM (add, rm)",
	.help = "NIC hotplug: add a NIC to a VM or remove one, while it runs or while it is\n"
		"stopped. The VM's NICs and their addresses: mvirt show VM.",
	.children = nic_verbs,
	.child_noun = "verb",
	.shared_options = true,
};
