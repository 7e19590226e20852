/* mvirt events [NAME|ID]: follows WatchVms and prints every event as it happens, one line each
 * under a header printed once the daemon has subscribed the stream (or, with -o json, one
 * compact JSON object per line and no header), until interrupted or the daemon ends the stream.
 * Each line is flushed at once, so the output can be piped into another program. */
#include "cli.h"
#include "client.h"
#include "output.h"

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

static int cmd_events_exec(struct cli *cli, const struct args *args)
{
	Mvirt__WatchVmsRequest req = MVIRT__WATCH_VMS_REQUEST__INIT;
	struct client_stream *s = NULL;
	bool header_pending = false;
	int r;

	if (args->n_positional > 0)
		req.vm = args->positional[0];
	if ((r = cli_stream_open(cli, "WatchVms", &s)) != CLI_EXIT_OK)
		return r;
	if (client_stream_send(s, &req.base) < 0 || client_stream_close_send(s) < 0) {
		r = cli_error("WatchVms: cannot send the request");
		goto out;
	}
	for (;;) {
		ProtobufCMessage *msg = NULL;
		int ev = client_stream_next(s, header_pending ? SUBSCRIBE_SETTLE_MS : -1, &msg);

		if (ev == -EINTR || ev == -EBADMSG) /* -EBADMSG: the END that follows says it */
			continue;
		if (ev < 0) {
			r = cli_error("WatchVms: %s", strerror(-ev));
			break;
		}
		if (ev == CLIENT_STREAM_END) {
			r = cli_report_status(cli, "WatchVms", client_stream_status(s));
			break;
		}
		if (ev == CLIENT_STREAM_HEADERS) {
			/* The daemon sends its headers once it has subscribed the stream: from
			 * then on, nothing is missed. */
			header_pending = cli->output == CLI_OUTPUT_TABLE;
			continue;
		}
		if (header_pending && (ev == CLIENT_STREAM_NONE || ev == CLIENT_STREAM_MESSAGE)) {
			header_pending = false;
			printf(LINE_FORMAT, "TIME", "VM", "EVENT", "STATE", "REASON");
		}
		if (ev != CLIENT_STREAM_MESSAGE) {
			if (fflush(stdout) != 0) {
				r = cli_error("cannot write the output: %s", strerror(errno));
				break;
			}
			continue;
		}
		r = print_message(cli, msg);
		protobuf_c_message_free_unpacked(msg, NULL);
		if (r != CLI_EXIT_OK)
			break;
	}
out:
	client_stream_free(s);
	return r;
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
