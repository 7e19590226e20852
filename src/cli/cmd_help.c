/* mvirt help [COMMAND]: the usage, on stdout. */
#include "cli.h"

static int cmd_help_exec(struct cli *cli, const struct args *args)
{
	const struct cmd_entry *e;

	if (args->n_positional == 0) {
		cli_print_usage(stdout);
		return CLI_EXIT_OK;
	}
	e = cmd_find(args->positional[0]);
	if (!e)
		return cli_usage_error(cli, "unknown command '%s'", args->positional[0]);
	cli_print_cmd_usage(e, stdout);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_help_entry = {
	.name = "help",
	.usage = "[COMMAND]",
	.summary = "show the usage of mvirt or of a command",
	.min_args = 0,
	.max_args = 1,
	.exec = cmd_help_exec,
};
