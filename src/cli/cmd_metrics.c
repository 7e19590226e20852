/* mvirt metrics: the daemon's metrics (GetMetrics) in the Prometheus text format, as mvirt-web
 * --metrics serves them at /metrics. */
#include "cli.h"

static void print_metrics(const ProtobufCMessage *msg)
{
	const Mvirt__GetMetricsResponse *resp = (const Mvirt__GetMetricsResponse *)msg;

	fputs(resp->text, stdout);
}

static int cmd_metrics_exec(struct cli *cli, const struct args *args)
{
	Mvirt__GetMetricsRequest req = MVIRT__GET_METRICS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int r;

	(void)args;
	if ((r = cli_call(cli, "GetMetrics", &req.base, &resp)) != CLI_EXIT_OK)
		return r;
	r = cli_print_result(cli, resp, print_metrics);
	protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

const struct cmd_entry cmd_metrics_entry = {
	.name = "metrics",
	.usage = "",
	.summary = "print the daemon's metrics (Prometheus text format)",
	.help = "Print mvirt-vmm's metrics in the Prometheus text exposition format (0.0.4): VM\n"
		"states, vCPUs, memory and uptime, cloud-hypervisor's disk and NIC counters of\n"
		"running VMs, API call counts and latencies, the state database's size. For a\n"
		"Prometheus server, run mvirt-web --metrics and scrape its /metrics.",
	.min_args = 0,
	.max_args = 0,
	.exec = cmd_metrics_exec,
};
