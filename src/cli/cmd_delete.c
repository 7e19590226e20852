/* mvirt delete: removes a VM definition (DeleteVm). */
#include "cli.h"

static void print_deleted(const ProtobufCMessage *msg)
{
	const Mvirt__DeleteVmResponse *resp = (const Mvirt__DeleteVmResponse *)msg;

	if (resp->vm)
		printf("deleted vm %s (%s)\n", resp->vm->name, resp->vm->id);
}

static int cmd_delete_exec(struct cli *cli, const struct args *args)
{
	Mvirt__DeleteVmRequest req = MVIRT__DELETE_VM_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int r;

	req.vm = args->positional[0];
	if ((r = cli_call(cli, "DeleteVm", &req.base, &resp)) != CLI_EXIT_OK)
		return r;
	r = cli_print_result(cli, resp, print_deleted);
	protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

const struct cmd_entry cmd_delete_entry = {
	.name = "delete",
	.alias = "rm",
	.usage = "NAME|ID",
	.summary = "delete a stopped VM",
	.help = "Delete the definition of a VM, named by its name or its id. The VM must not be\n"
		"running.",
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_delete_exec,
};
