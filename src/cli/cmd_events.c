/* mvirt events [NAME|ID]: follows WatchVms and prints every event as it happens, one line each
 * under a header printed once the daemon has subscribed the stream (or, with -o json, one
 * compact JSON object per line and no header), until interrupted or the daemon ends the stream.
 * Each line is flushed at once, so the output can be piped into another program. */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "output.h"
#include "stream.h"

#define LINE_FORMAT "%-23s  %-16s  %-14s  %-8s  %s\n"

static void print_event(const Mvirt__VmEvent *ev)
{
	char time[64], type[32], state[32];

	output_format_time_ms(ev->time, time, sizeof(time));
	output_format_event_type(ev->type, type, sizeof(type));
	output_format_state(ev->state, state, sizeof(state));
	printf(LINE_FORMAT, time, output_dash(ev->vm_name), type, state, output_dash(ev->reason));
}

/* How long after the headers an immediate error (a trailers-only answer, which gRPC core reports
 * as headers too) may still come before the header line is printed. */
#define SUBSCRIBE_SETTLE_MS 100

static int print_message(const struct cli *cli, const ProtobufCMessage *msg)
{
	int r;

	if (cli->output == CLI_OUTPUT_JSON) {
		if ((r = output_json_line(msg)) < 0)
			return cli_error("cannot convert an event to JSON: %s", strerror(-r));
	} else {
		print_event((const Mvirt__VmEvent *)msg);
	}
	if (fflush(stdout) != 0)
		return cli_error("cannot write the output: %s", strerror(errno));
	return CLI_EXIT_OK;
}

struct watch {
	const struct cli *cli;
	bool header_pending; /* table output: the header line is due once the stream settles */
};

static int watch_wait(void *userdata, struct client_stream *s)
{
	const struct watch *w = userdata;

	(void)s;
	return w->header_pending ? SUBSCRIBE_SETTLE_MS : -1;
}

static int watch_event(void *userdata, int ev, const ProtobufCMessage *msg)
{
	struct watch *w = userdata;

	if (ev == CLIENT_STREAM_HEADERS) {
		/* The daemon sends its headers once it has subscribed the stream: from then on,
		 * nothing is missed. */
		w->header_pending = w->cli->output == CLI_OUTPUT_TABLE;
		return CLI_EXIT_OK;
	}
	if (w->header_pending && (ev == CLIENT_STREAM_NONE || ev == CLIENT_STREAM_MESSAGE)) {
		w->header_pending = false;
		printf(LINE_FORMAT, "TIME", "VM", "EVENT", "STATE", "REASON");
	}
	if (ev == CLIENT_STREAM_MESSAGE)
		return print_message(w->cli, msg);
	if (fflush(stdout) != 0)
		return cli_error("cannot write the output: %s", strerror(errno));
	return CLI_EXIT_OK;
}

static int cmd_events_exec(struct cli *cli, const struct args *args)
{
	static const struct stream_ops ops = {.wait = watch_wait, .event = watch_event};
	Mvirt__WatchVmsRequest req = MVIRT__WATCH_VMS_REQUEST__INIT;
	struct watch w = {.cli = cli};

	if (args->n_positional > 0)
		req.vm = args->positional[0];
	return stream_run(cli, &mvirt__vm_service__descriptor, "WatchVms", &req.base, &ops, &w);
}

const struct cmd_entry cmd_events_entry = {
	.name = "events",
	.usage = "[NAME|ID]",
	.summary = "print VM events as they happen",
	.help = "Print the events of all VMs, or of one VM, as they happen: created, started,\n"
		"stopped, crashed, paused, resumed, rebooted, deleted, config-changed and\n"
		"state-changed (starting, stopping). One line per event: local time, VM name,\n"
		"event, the VM's state after it, and the reason, under a header line printed once\n"
		"the daemon is watching. With -o json, one compact JSON object (a VmEvent) per line.\n"
		"Watching one VM ends when it is deleted. Runs until interrupted (Ctrl-C) or until the daemon\n"
		"ends the stream; a watcher that does not keep up is cut off by the daemon\n"
		"(exit status 1).",
	.min_args = 0,
	.max_args = 1,
	.exec = cmd_events_exec,
};
