/* The lifecycle verbs: mvirt start | stop | kill | reboot | pause | resume NAME|ID. Each sends
 * its request and prints the VM's new state (or, with -o json, the returned Vm). They share this
 * file because they differ only in the request they send (and stop's two options). */
#include <errno.h>

#include "cli.h"
#include "output.h"

static void print_state(const ProtobufCMessage *msg)
{
	const Mvirt__Vm *vm = (const Mvirt__Vm *)msg;
	char state[32];

	output_format_state(vm->state, state, sizeof(state));
	printf("%s: %s\n", vm->name, state);
}

static int lifecycle_call(struct cli *cli, const char *method, const ProtobufCMessage *req)
{
	ProtobufCMessage *resp = NULL;
	int r;

	if ((r = cli_call(cli, method, req, &resp)) != CLI_EXIT_OK)
		return r;
	r = cli_print_result(cli, resp, print_state);
	protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

static int cmd_start_exec(struct cli *cli, const struct args *args)
{
	Mvirt__StartVmRequest req = MVIRT__START_VM_REQUEST__INIT;

	req.vm = args->positional[0];
	return lifecycle_call(cli, "StartVm", &req.base);
}

static int cmd_stop_exec(struct cli *cli, const struct args *args)
{
	Mvirt__StopVmRequest req = MVIRT__STOP_VM_REQUEST__INIT;
	Google__Protobuf__UInt32Value timeout = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
	const char *t = args_get(args, "timeout");

	req.vm = args->positional[0];
	req.force = args_has(args, "force");
	if (t) {
		if (cli_parse_u32(t, &timeout.value) < 0)
			return cli_usage_error(cli, "--timeout: '%s' is not a number of seconds",
					       t);
		req.timeout_seconds = &timeout;
	}
	return lifecycle_call(cli, "StopVm", &req.base);
}

static int cmd_kill_exec(struct cli *cli, const struct args *args)
{
	Mvirt__KillVmRequest req = MVIRT__KILL_VM_REQUEST__INIT;

	req.vm = args->positional[0];
	return lifecycle_call(cli, "KillVm", &req.base);
}

static int cmd_reboot_exec(struct cli *cli, const struct args *args)
{
	Mvirt__RebootVmRequest req = MVIRT__REBOOT_VM_REQUEST__INIT;

	req.vm = args->positional[0];
	return lifecycle_call(cli, "RebootVm", &req.base);
}

static int cmd_pause_exec(struct cli *cli, const struct args *args)
{
	Mvirt__PauseVmRequest req = MVIRT__PAUSE_VM_REQUEST__INIT;

	req.vm = args->positional[0];
	return lifecycle_call(cli, "PauseVm", &req.base);
}

static int cmd_resume_exec(struct cli *cli, const struct args *args)
{
	Mvirt__ResumeVmRequest req = MVIRT__RESUME_VM_REQUEST__INIT;

	req.vm = args->positional[0];
	return lifecycle_call(cli, "ResumeVm", &req.base);
}

const struct cmd_entry cmd_start_entry = {
	.name = "start",
	.usage = "NAME|ID",
	.summary = "boot a stopped VM",
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_start_exec,
};

static const struct cmd_option stop_options[] = {
	{"timeout", 't', "SECONDS",
	 "wait this long for the guest to power off (default 30; 0: do not wait)"},
	{"force", 0, NULL, "skip the power button and stop the hypervisor at once"},
	{NULL},
};

const struct cmd_entry cmd_stop_entry = {
	.name = "stop",
	.usage = "[-t SECONDS] [--force] NAME|ID",
	.summary = "shut a VM down",
	.help = "Shut a VM down: press its ACPI power button and wait for the guest to power off,\n"
		"or with --force stop the hypervisor at once.",
	.options = stop_options,
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_stop_exec,
};

const struct cmd_entry cmd_kill_entry = {
	.name = "kill",
	.usage = "NAME|ID",
	.summary = "stop a VM at once, without a guest shutdown",
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_kill_exec,
};

const struct cmd_entry cmd_reboot_entry = {
	.name = "reboot",
	.usage = "NAME|ID",
	.summary = "reboot a running VM",
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_reboot_exec,
};

const struct cmd_entry cmd_pause_entry = {
	.name = "pause",
	.usage = "NAME|ID",
	.summary = "pause a running VM",
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_pause_exec,
};

const struct cmd_entry cmd_resume_entry = {
	.name = "resume",
	.usage = "NAME|ID",
	.summary = "resume a paused VM",
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_resume_exec,
};
