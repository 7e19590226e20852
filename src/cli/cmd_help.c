/* mvirt help [COMMAND [VERB]]: the help of mvirt or of the command the words name (the same
 * text as COMMAND [VERB] --help), on stdout. */
#include "cli.h"
#include "usage.h"

static int cmd_help_exec(struct cli *cli, const struct args *args)
{
	struct cmd_path path = {.entries = {&cmd_root}, .n = 1};
	char name[128];

	for (size_t i = 0; i < args->n_positional; i++) {
		const struct cmd_entry *group = cmd_path_last(&path);
		const struct cmd_entry *e = cmd_find(group, args->positional[i]);

		usage_path(&path, 1, name, sizeof(name));
		if (!group->children)
			return cli_usage_error(cli, "help: '%s' has no sub-command '%s'", name,
					       args->positional[i]);
		if (!e)
			return cli_usage_error(cli, "help: %s%sunknown %s '%s'", name,
					       *name ? ": " : "", group->child_noun,
					       args->positional[i]);
		if (cmd_path_push(&path, e) < 0)
			return cli_error("the command table is deeper than %d", CMD_DEPTH_MAX);
	}
	usage_print(&path, stdout);
	return CLI_EXIT_OK;
}

const struct cmd_entry cmd_help_entry = {
	.name = "help",
	.usage = "[COMMAND [VERB]]",
	.summary = "show the usage of mvirt or of a command",
	.min_args = 0,
	.max_args = CMD_DEPTH_MAX - 1,
	.exec = cmd_help_exec,
};
