/* mvirt set VM OPTION...: changes fields of a VM's config (UpdateVm with an update_mask naming
 * the fields the options give) and shows the VM.
 *
 * Takes create's config options (cli_build_config parses them) plus --autostart on|off: a
 * field given replaces the VM's (--disk/--volume/--disk-spec options together are the new disk
 * list, --nic/--network the new NIC list; "" clears a string such as --cmdline ""), fields not
 * given stay. The daemon checks the result as CreateVm does and names the field it refuses. */
#include <string.h>

#include "cli.h"

/* Which VmConfig field each option sets. */
static const struct {
	const char *option;
	const char *field;
} option_fields[] = {
	{"vcpus", "vcpus"},
	{"memory", "memory_mb"},
	{"kernel", "kernel"},
	{"initramfs", "initramfs"},
	{"cmdline", "cmdline"},
	{"firmware", "firmware"},
	{"disk", "disks"},
	{"disk-ro", "disks"},
	{"disk-spec", "disks"},
	{"volume", "disks"},
	{"volume-ro", "disks"},
	{"network", "nics"},
	{"nic", "nics"},
	{"user-data", "user_data"},
	{"meta-data", "meta_data"},
	{"network-config", "network_config"},
	{"autostart", "autostart"},
	{"autostart-order", "autostart_order"},
};

/* The fields the options name, each once, into paths (room for every entry). */
static size_t mask_paths(const struct args *args, char **paths)
{
	size_t n = 0;

	for (size_t i = 0; i < args->n_values; i++)
		for (size_t k = 0; k < ELEMENTSOF(option_fields); k++) {
			bool seen = false;

			if (!streq(args->values[i].opt->name, option_fields[k].option))
				continue;
			for (size_t j = 0; j < n && !seen; j++)
				seen = streq(paths[j], option_fields[k].field);
			if (!seen)
				paths[n++] = (char *)option_fields[k].field;
		}
	return n;
}

static int cmd_set_exec(struct cli *cli, const struct args *args)
{
	Mvirt__UpdateVmRequest req = MVIRT__UPDATE_VM_REQUEST__INIT;
	Mvirt__VmConfig config = MVIRT__VM_CONFIG__INIT;
	Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	char *paths[ELEMENTSOF(option_fields)];
	ProtobufCMessage *resp = NULL;
	int r;

	mask.paths = paths;
	mask.n_paths = mask_paths(args, paths);
	if (mask.n_paths == 0)
		return cli_usage_error(cli, "set: nothing to change (give --vcpus, --memory, "
					    "--cmdline, --autostart, ...)");
	req.vm = args->positional[0];
	req.config = &config;
	req.update_mask = &mask;
	if ((r = cli_build_config(cli, args, &config)) == CLI_EXIT_OK &&
	    (r = cli_call(cli, "UpdateVm", &req.base, &resp)) == CLI_EXIT_OK) {
		r = cli_print_result(cli, resp, cli_print_vm);
		protobuf_c_message_free_unpacked(resp, NULL);
	}
	cli_config_done(&config);
	return r;
}

static const struct cmd_option set_options[] = {
	{"vcpus", 0, "N", "number of virtual CPUs"},
	{"memory", 0, "SIZE", "memory in MiB, or with a suffix: 512M, 2G"},
	{"kernel", 0, "PATH", "kernel for direct boot"},
	{"initramfs", 0, "PATH", "initramfs (\"\": none)"},
	{"cmdline", 0, "STR", "kernel command line (\"\": none)"},
	{"firmware", 0, "PATH", "firmware to boot instead of a kernel"},
	{"disk", 0, "PATH", "the disks become those given: a read-write disk (repeatable)"},
	{"disk-ro", 0, "PATH", "... a read-only disk (repeatable)"},
	{"disk-spec", 0, "SPEC", "... path=PATH[,format=raw|qcow2|auto][,readonly=on|off]"},
	{"volume", 0, "NAME", "... a read-write volume disk (repeatable)"},
	{"volume-ro", 0, "NAME", "... a read-only volume disk (repeatable)"},
	{"network", 0, "NET", "the NICs become those given: one on network NET (repeatable)"},
	{"nic", 0, "SPEC", "... tap=NAME or network=NAME, then [,mac=MAC] (repeatable)"},
	{"user-data", 0, "FILE", "cloud-init user-data"},
	{"meta-data", 0, "FILE", "cloud-init meta-data"},
	{"network-config", 0, "FILE", "cloud-init network-config"},
	{"autostart", 0, "on|off", "start the VM when mvirt-vmm starts after a host boot"},
	{"autostart-order", 0, "N", "autostart position: lower first, then by name"},
	{NULL},
};

const struct cmd_entry cmd_set_entry = {
	.name = "set",
	.usage = "VM OPTION...",
	.summary = "change fields of a stopped VM's config",
	.help = "Change the fields of the VM's config that the options give, and show the VM.\n"
		"The others stay as they are. The VM must be stopped, except for --autostart and\n"
		"--autostart-order, which change at any time. The daemon checks the new config as\n"
		"create does and changes nothing when it refuses a field. To edit the whole config\n"
		"in an editor: mvirt edit VM.",
	.options = set_options,
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_set_exec,
};
