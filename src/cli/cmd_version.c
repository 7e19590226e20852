/* mvirt version: the client's version and the daemon's (GetVersion). */
#include "cli.h"

static void print_version(const ProtobufCMessage *msg)
{
	const Mvirt__GetVersionResponse *resp = (const Mvirt__GetVersionResponse *)msg;

	printf("daemon: %s (api %u)\n", resp->version, resp->api_version);
}

static int cmd_version_exec(struct cli *cli, const struct args *args)
{
	Mvirt__GetVersionRequest req = MVIRT__GET_VERSION_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int r;

	(void)args;
	if (cli->output == CLI_OUTPUT_TABLE) {
		printf("client: %s\n", MVIRT_VERSION);
		fflush(stdout);
	}
	if ((r = cli_call(cli, "GetVersion", &req.base, &resp)) != CLI_EXIT_OK)
		return r;
	r = cli_print_result(cli, resp, print_version);
	protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

const struct cmd_entry cmd_version_entry = {
	.name = "version",
	.usage = "",
	.summary = "show the client and daemon versions",
	.help = "Show the version of this client, then the daemon's version and API revision.\n"
		"With -o json, only the daemon's answer is printed.",
	.min_args = 0,
	.max_args = 0,
	.exec = cmd_version_exec,
};
