/* mvirt list: all VMs, ordered by name (ListVms); -q prints only their names. */
#include "cli.h"
#include "output.h"

static void print_table(const ProtobufCMessage *msg)
{
	const Mvirt__ListVmsResponse *resp = (const Mvirt__ListVmsResponse *)msg;
	static const char *const headers[] = {"NAME",   "STATE",     "VCPUS",
					      "MEMORY", "AUTOSTART", "ID"};
	struct table *t = table_new(ELEMENTSOF(headers), headers);

	if (!t) {
		cli_error("out of memory");
		return;
	}
	for (size_t i = 0; i < resp->n_vms; i++) {
		const Mvirt__Vm *vm = resp->vms[i];
		char state[32], vcpus[16] = "-", memory[32] = "-", autostart[16] = "-";

		output_format_state(vm->state, state, sizeof(state));
		if (vm->config) {
			snprintf(vcpus, sizeof(vcpus), "%u", vm->config->vcpus);
			output_format_mib(vm->config->memory_mb, memory, sizeof(memory));
			/* the order only where it decides something: "on" alone is order 0 */
			if (!vm->config->autostart)
				snprintf(autostart, sizeof(autostart), "off");
			else if (vm->config->autostart_order == 0)
				snprintf(autostart, sizeof(autostart), "on");
			else
				snprintf(autostart, sizeof(autostart), "on/%u",
					 vm->config->autostart_order);
		}
		if (table_add_row(t, (const char *const[]){vm->name, state, vcpus, memory,
							   autostart, vm->id}) < 0) {
			cli_error("out of memory");
			break;
		}
	}
	table_print(t);
	table_free(t);
}

/* -q: the names alone, one per line (for scripts and shell completion). */
static void print_names(const ProtobufCMessage *msg)
{
	const Mvirt__ListVmsResponse *resp = (const Mvirt__ListVmsResponse *)msg;

	for (size_t i = 0; i < resp->n_vms; i++)
		printf("%s\n", resp->vms[i]->name);
}

static int cmd_list_exec(struct cli *cli, const struct args *args)
{
	Mvirt__ListVmsRequest req = MVIRT__LIST_VMS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int r;

	if ((r = cli_call(cli, "ListVms", &req.base, &resp)) != CLI_EXIT_OK)
		return r;
	r = cli_print_result(cli, resp, args_has(args, "quiet") ? print_names : print_table);
	protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

static const struct cmd_option list_options[] = {
	{"quiet", 'q', NULL, "only the names, one per line (-o json still prints the whole list)"},
	{NULL},
};

const struct cmd_entry cmd_list_entry = {
	.name = "list",
	.alias = "ls",
	.usage = "[-q]",
	.summary = "list the VMs",
	.help = "List all VMs, ordered by name: name, state, vCPUs, memory, autostart (off, on,\n"
		"or on/N for autostart order N) and id.\n"
		"With -o json: {\"vms\": [...]}.",
	.options = list_options,
	.min_args = 0,
	.max_args = 0,
	.exec = cmd_list_exec,
};
