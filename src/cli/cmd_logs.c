/* mvirt logs [-f] [--tail BYTES] NAME|ID: the VM's console log.
 *
 * Without -f: GetConsoleLog, the bytes written to stdout as they are (or, with -o json, the
 * GetConsoleLogResponse). With -f: a Console stream that asks for the last BYTES of history,
 * never sends input (half-closed at once) and prints the output as it comes until the VM stops
 * or the user interrupts; with -o json each ConsoleResponse is one compact JSON line. Daemon
 * notices go to stderr on a line of their own. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "output.h"
#include "stream.h"

#define FOLLOW_HISTORY_DEFAULT (16 * 1024)

struct follow {
	bool json;
	bool at_line_start; /* the last byte written to stdout was '\n' (or nothing yet) */
};

static int write_output(struct follow *f, const ProtobufCBinaryData *out)
{
	if (out->len == 0)
		return 0;
	if (fwrite(out->data, 1, out->len, stdout) != out->len)
		return -EIO;
	f->at_line_start = out->data[out->len - 1] == '\n';
	return 0;
}

static void print_notice(struct follow *f, const char *notice)
{
	/* On a terminal, stdout and stderr share the screen: start the notice on a fresh line. */
	const char *nl = !f->at_line_start && isatty(STDOUT_FILENO) ? "\n" : "";

	fflush(stdout);
	fprintf(stderr, "%s[mvirt: %s]\n", nl, notice);
	f->at_line_start = true;
}

static int handle_response(struct follow *f, const Mvirt__ConsoleResponse *resp)
{
	int r;

	if (f->json) {
		if ((r = output_json_line(&resp->base)) < 0)
			return cli_error("cannot convert the output to JSON: %s", strerror(-r));
	} else {
		if (write_output(f, &resp->output) < 0)
			return cli_error("cannot write the output: %s", strerror(errno));
		if (!isempty(resp->notice))
			print_notice(f, resp->notice);
	}
	if (fflush(stdout) != 0)
		return cli_error("cannot write the output: %s", strerror(errno));
	return CLI_EXIT_OK;
}

static int follow_event(void *userdata, int ev, const ProtobufCMessage *msg)
{
	if (ev != CLIENT_STREAM_MESSAGE)
		return CLI_EXIT_OK;
	return handle_response(userdata, (const Mvirt__ConsoleResponse *)msg);
}

static int follow(struct cli *cli, const char *vm, uint64_t history)
{
	static const struct stream_ops ops = {.event = follow_event};
	Mvirt__ConsoleRequest req = MVIRT__CONSOLE_REQUEST__INIT;
	struct follow f = {.json = cli->output == CLI_OUTPUT_JSON, .at_line_start = true};

	req.vm = (char *)vm;
	req.history_bytes = history;
	return stream_run(cli, &mvirt__vm_service__descriptor, "Console", &req.base, &ops, &f);
}

static void print_log(const ProtobufCMessage *msg)
{
	const Mvirt__GetConsoleLogResponse *resp = (const Mvirt__GetConsoleLogResponse *)msg;

	fwrite(resp->data.data, 1, resp->data.len, stdout);
}

static int cmd_logs_exec(struct cli *cli, const struct args *args)
{
	Mvirt__GetConsoleLogRequest req = MVIRT__GET_CONSOLE_LOG_REQUEST__INIT;
	const char *tail = args_get(args, "tail");
	ProtobufCMessage *resp = NULL;
	uint64_t n = 0;
	int r;

	if (tail && cli_parse_u64(tail, &n) < 0)
		return cli_usage_error(cli, "--tail: '%s' is not a number of bytes", tail);
	if (args_has(args, "follow"))
		return follow(cli, args->positional[0], tail ? n : FOLLOW_HISTORY_DEFAULT);

	req.vm = args->positional[0];
	/* tail_bytes 0 means everything: for --tail 0, ask for one byte (the daemon still checks
	 * the VM) and print none. */
	req.tail_bytes = tail && n == 0 ? 1 : n;
	if ((r = cli_call(cli, "GetConsoleLog", &req.base, &resp)) != CLI_EXIT_OK)
		return r;
	if (tail && n == 0)
		((Mvirt__GetConsoleLogResponse *)resp)->data.len = 0; /* the byte asked for above */
	r = cli_print_result(cli, resp, print_log);
	protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

static const struct cmd_option logs_options[] = {
	{"follow", 'f', NULL,
	 "keep printing new output until the VM stops or you interrupt (Ctrl-C)"},
	{"tail", 'n', "BYTES",
	 "only the last BYTES bytes (default: all the log keeps; with -f: 16384, at most what the "
	 "daemon holds in memory)"},
	{NULL},
};

const struct cmd_entry cmd_logs_entry = {
	.name = "logs",
	.usage = "[-f] [--tail BYTES] NAME|ID",
	.summary = "print a VM's console log",
	.help = "Print what the VM printed on its serial console, across boots and daemon restarts\n"
		"(the daemon keeps the last few MiB), as raw bytes. With -f, print the last\n"
		"16 KiB (or --tail BYTES) and then the new output as it comes; this ends when the VM\n"
		"stops (exit status 0, the reason on stderr) and needs a running VM. Notices of the\n"
		"daemon go to stderr as \"[mvirt: ...]\". With -o json: the GetConsoleLogResponse\n"
		"(data in base64), or with -f one ConsoleResponse per line.",
	.options = logs_options,
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_logs_exec,
};
