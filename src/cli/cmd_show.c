/* mvirt show: one VM in detail (GetVm). Also prints the VM that create returns. NICs are shown
 * as the host has them (Vm.nics: tap, MAC, leased addresses) while the VM has a hypervisor, else
 * as configured. */
#include <string.h>

#include "cli.h"
#include "output.h"

static const char *disk_format_name(Mvirt__DiskFormat f)
{
	switch (f) {
	case MVIRT__DISK_FORMAT__DISK_FORMAT_RAW:
		return "raw";
	case MVIRT__DISK_FORMAT__DISK_FORMAT_QCOW2:
		return "qcow2";
	case MVIRT__DISK_FORMAT__DISK_FORMAT_UNSPECIFIED:
		return "auto";
	default:
		return "unknown";
	}
}

/* "disks:" then one disk per line, the later ones under the first. */
static void print_disks(const Mvirt__VmConfig *c)
{
	size_t n = 0;

	if (!isempty(c->disk)) {
		output_kv("disks", "%s (auto, rw)", c->disk);
		n++;
	}
	for (size_t i = 0; i < c->n_disks; i++, n++) {
		const Mvirt__Disk *d = c->disks[i];

		if (!isempty(d->volume))
			output_kv(n == 0 ? "disks" : "", "volume %s (%s)", d->volume,
				  d->readonly ? "ro" : "rw");
		else
			output_kv(n == 0 ? "disks" : "", "%s (%s, %s)", d->path,
				  disk_format_name(d->format), d->readonly ? "ro" : "rw");
	}
	if (n == 0)
		output_kv("disks", "-");
}

/* "a,b" of the addresses of a NIC, in buf (truncated to size). */
static void join_addresses(const Mvirt__NicStatus *st, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < st->n_addresses && len < size; i++) {
		int n = snprintf(buf + len, size - len, "%s%s", i ? "," : "", st->addresses[i]);

		if (n < 0)
			break;
		len += (size_t)n;
	}
}

/* "nics:" then one NIC per line: what each is on the host now (vm->nics, while the VM has a
 * hypervisor), else as configured. */
static void print_nics(const Mvirt__Vm *vm, const Mvirt__VmConfig *c)
{
	for (size_t i = 0; i < vm->n_nics; i++) {
		const Mvirt__NicStatus *st = vm->nics[i];
		char addrs[256];

		join_addresses(st, addrs, sizeof(addrs));
		if (isempty(st->network))
			output_kv(i == 0 ? "nics" : "", "tap=%s mac=%s", output_dash(st->tap),
				  output_dash(st->mac));
		else
			output_kv(i == 0 ? "nics" : "", "network=%s mac=%s tap=%s%s%s", st->network,
				  output_dash(st->mac), output_dash(st->tap),
				  addrs[0] ? " addresses=" : "", addrs);
	}
	if (vm->n_nics > 0)
		return;
	for (size_t i = 0; c && i < c->n_nics; i++) {
		const Mvirt__Nic *nic = c->nics[i];

		output_kv(i == 0 ? "nics" : "", "%s=%s mac=%s",
			  isempty(nic->tap) ? "network" : "tap",
			  isempty(nic->tap) ? nic->network : nic->tap, output_dash(nic->mac));
	}
	if (!c || c->n_nics == 0)
		output_kv("nics", "-");
}

void cmd_show_print_vm(const Mvirt__Vm *vm)
{
	const Mvirt__VmConfig *c = vm->config;
	char state[32], buf[64];

	output_kv("id", "%s", vm->id);
	output_kv("name", "%s", vm->name);
	output_format_state(vm->state, state, sizeof(state));
	output_kv("state", "%s", state);
	output_kv("reason", "%s", output_dash(vm->state_reason));
	if (c) {
		output_kv("vcpus", "%u", c->vcpus);
		output_format_mib(c->memory_mb, buf, sizeof(buf));
		output_kv("memory", "%s", buf);
		output_kv("kernel", "%s", output_dash(c->kernel));
		output_kv("initramfs", "%s", output_dash(c->initramfs));
		output_kv("cmdline", "%s", output_dash(c->cmdline));
		output_kv("firmware", "%s", output_dash(c->firmware));
		print_disks(c);
		print_nics(vm, c);
		if (!isempty(c->user_data))
			output_kv("user-data", "%zu bytes", strlen(c->user_data));
		if (!isempty(c->meta_data))
			output_kv("meta-data", "%zu bytes", strlen(c->meta_data));
		if (!isempty(c->network_config))
			output_kv("network-cfg", "%zu bytes", strlen(c->network_config));
		if (c->autostart)
			output_kv("autostart", "on (order %u)", c->autostart_order);
		else
			output_kv("autostart", "off");
	}
	output_format_time(vm->created_at, buf, sizeof(buf));
	output_kv("created", "%s", buf);
	output_format_time(vm->started_at, buf, sizeof(buf));
	output_kv("started", "%s", vm->started_at ? buf : "never");
}

static void print_vm(const ProtobufCMessage *msg)
{
	cmd_show_print_vm((const Mvirt__Vm *)msg);
}

static int cmd_show_exec(struct cli *cli, const struct args *args)
{
	Mvirt__GetVmRequest req = MVIRT__GET_VM_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int r;

	req.vm = args->positional[0];
	if ((r = cli_call(cli, "GetVm", &req.base, &resp)) != CLI_EXIT_OK)
		return r;
	r = cli_print_result(cli, resp, print_vm);
	protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

const struct cmd_entry cmd_show_entry = {
	.name = "show",
	.alias = "info",
	.usage = "NAME|ID",
	.summary = "show a VM's state and configuration",
	.help = "Show a VM, named by its name or its id: state and why, configuration, disks,\n"
		"NICs, and when it was created and last started (local time).",
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_show_exec,
};
