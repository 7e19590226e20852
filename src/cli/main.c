/* mvirt: the command-line client of mvirt-vmm.
 *
 *   mvirt [-s|--server ADDR] [-o|--output table|json] COMMAND [ARGS]
 *
 * Owns the command table, the parsing of global options (before and after the command name) and
 * of the command's options, --help, and the process exit status (enum cli_exit). The daemon's
 * address is chosen at the first call (cli.c). */
#include "cli.h"

const struct cmd_entry *const cmd_table[] = {
	&cmd_list_entry,    &cmd_create_entry,  &cmd_show_entry,
	&cmd_delete_entry,  &cmd_start_entry,   &cmd_stop_entry,
	&cmd_kill_entry,    &cmd_reboot_entry,  &cmd_pause_entry,
	&cmd_resume_entry,  &cmd_console_entry, &cmd_logs_entry,
	&cmd_events_entry,  &cmd_volume_entry,  &cmd_version_entry,
	&cmd_sysinfo_entry, &cmd_help_entry,    NULL,
};

/* Applies the global options found in a (last one wins). Returns 0 or an exit status. */
static int apply_globals(struct cli *cli, const struct args *a, bool *help)
{
	for (size_t i = 0; i < a->n_values; i++) {
		const struct arg_value *v = &a->values[i];

		if (streq(v->opt->name, "server")) {
			cli->server_addr = v->value;
		} else if (streq(v->opt->name, "output")) {
			if (streq(v->value, "table"))
				cli->output = CLI_OUTPUT_TABLE;
			else if (streq(v->value, "json"))
				cli->output = CLI_OUTPUT_JSON;
			else
				return cli_usage_error(cli,
						       "unknown output format '%s' (table or json)",
						       v->value);
		} else if (streq(v->opt->name, "help")) {
			*help = true;
		}
	}
	return 0;
}

static int run(struct cli *cli, int argc, char **argv)
{
	const struct cmd_option *const global_tables[] = {cli_global_options, NULL};
	static const struct cmd_option no_options[] = {{NULL}};
	const struct cmd_option *cmd_tables[3] = {NULL};
	struct args globals = {0}, cmd_args = {0};
	const struct cmd_entry *e;
	struct mv_error err = {0};
	bool help = false;
	int r;

	if (args_parse(global_tables, argc - 1, argv + 1, ARGS_STOP_AT_POSITIONAL, &globals, &err) <
	    0) {
		r = cli_usage_error(cli, "%s", err.msg[0] ? err.msg : "out of memory");
		goto out;
	}
	if ((r = apply_globals(cli, &globals, &help)) != 0)
		goto out;
	if (globals.next >= argc - 1) {
		if (help) {
			cli_print_usage(stdout);
			r = CLI_EXIT_OK;
		} else {
			r = cli_usage_error(cli, "no command given");
		}
		goto out;
	}
	e = cmd_find(argv[1 + globals.next]);
	if (!e) {
		r = cli_usage_error(cli, "unknown command '%s'", argv[1 + globals.next]);
		goto out;
	}
	cli->cmd = e;

	cmd_tables[0] = e->options ? e->options : no_options;
	cmd_tables[1] = cli_global_options;
	if (args_parse((const struct cmd_option *const *)cmd_tables, argc - 2 - globals.next,
		       argv + 2 + globals.next, 0, &cmd_args, &err) < 0) {
		r = cli_usage_error(cli, "%s", err.msg[0] ? err.msg : "out of memory");
		goto out;
	}
	if ((r = apply_globals(cli, &cmd_args, &help)) != 0)
		goto out;
	if (help) {
		cli_print_cmd_usage(e, stdout);
		r = CLI_EXIT_OK;
		goto out;
	}
	if ((int)cmd_args.n_positional < e->min_args) {
		r = cli_usage_error(cli, "%s: missing argument (%s)", e->name, e->usage);
		goto out;
	}
	if (e->max_args >= 0 && (int)cmd_args.n_positional > e->max_args) {
		r = cli_usage_error(cli, "%s: unexpected argument '%s'", e->name,
				    cmd_args.positional[e->max_args]);
		goto out;
	}

	r = e->exec(cli, &cmd_args);

out:
	args_done(&globals);
	args_done(&cmd_args);
	return r;
}

int main(int argc, char **argv)
{
	struct cli cli = {.output = CLI_OUTPUT_TABLE};
	int r;

	r = run(&cli, argc, argv);
	cli_done(&cli);
	return r;
}
