/* mvirt sysinfo: the daemon's host and what the VMs take of it (GetSystemInfo). */
#include "cli.h"
#include "output.h"

static void print_sysinfo(const ProtobufCMessage *msg)
{
	const Mvirt__SystemInfo *s = (const Mvirt__SystemInfo *)msg;
	char host_mem[32], vm_mem[32];

	output_format_mib(s->host_memory_mb, host_mem, sizeof(host_mem));
	output_format_mib(s->allocated_memory_mb, vm_mem, sizeof(vm_mem));
	output_kv("hostname", "%s", output_dash(s->hostname));
	output_kv("kernel", "%s", output_dash(s->kernel_release));
	output_kv("cpus", "%u (%u allocated to VMs)", s->host_cpus, s->allocated_vcpus);
	output_kv("memory", "%s (%s allocated to VMs)", host_mem, vm_mem);
	output_kv("vms", "%u", s->vm_count);
	if (s->hypervisor_found)
		output_kv("hypervisor", "%s (%s)", output_dash(s->hypervisor_path),
			  output_dash(s->hypervisor_version));
	else
		output_kv("hypervisor", "%s (not found)", output_dash(s->hypervisor_path));
}

static int cmd_sysinfo_exec(struct cli *cli, const struct args *args)
{
	Mvirt__GetSystemInfoRequest req = MVIRT__GET_SYSTEM_INFO_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int r;

	(void)args;
	if ((r = cli_call(cli, "GetSystemInfo", &req.base, &resp)) != CLI_EXIT_OK)
		return r;
	r = cli_print_result(cli, resp, print_sysinfo);
	protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

const struct cmd_entry cmd_sysinfo_entry = {
	.name = "sysinfo",
	.usage = "",
	.summary = "show the daemon's host: CPUs, memory, hypervisor",
	.help = "Show the daemon's host (name, kernel, CPUs, memory), the vCPUs and memory\n"
		"defined VMs add up to, and the hypervisor binary the daemon uses.",
	.min_args = 0,
	.max_args = 0,
	.exec = cmd_sysinfo_exec,
};
