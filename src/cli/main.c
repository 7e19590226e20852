/* mvirt: the command-line client of mvirt-vmm.
 *
 *   mvirt [-s|--server ADDR] [-o|--output table|json] COMMAND [ARGS]
 *
 * Owns the command table (cmd_root and its children, cmd_table), the walk down it along argv,
 * the parsing of the global options (accepted at every level) and of the command's options,
 * --help, and the process exit status (enum cli_exit). A group's first positional argument
 * names its child; a group given none, or an unknown one, is a usage error that lists its
 * children. The daemon's address is chosen at the first call (cli.c). */
#include <stdlib.h>

#include "cli.h"
#include "usage.h"

const struct cmd_entry *const cmd_table[] = {
	&cmd_list_entry,
	&cmd_create_entry,
	&cmd_set_entry,
	&cmd_edit_entry,
	&cmd_show_entry,
	&cmd_delete_entry,
	&cmd_start_entry,
	&cmd_stop_entry,
	&cmd_kill_entry,
	&cmd_reboot_entry,
	&cmd_pause_entry,
	&cmd_resume_entry,
	&cmd_console_entry,
	&cmd_logs_entry,
	&cmd_events_entry,
	&cmd_volume_entry,
	&cmd_network_entry,
	&cmd_nic_entry,
	&cmd_version_entry,
	&cmd_sysinfo_entry,
	&cmd_metrics_entry,
	&cmd_help_entry,
	NULL,
};

const struct cmd_entry cmd_root = {
	.name = "mvirt",
	.usage = "[-s ADDR] [-o table|json] COMMAND [ARGS]",
	.summary = "Manage the virtual machines of an mvirt-vmm daemon.",
	.footer =
		"The default server is $MVIRT_SERVER if set, else the daemon's Unix socket if it exists\n"
		"(root: /run/mvirt/mvirt.sock; others: $XDG_RUNTIME_DIR/mvirt/mvirt.sock, then\n"
		"/run/mvirt/mvirt.sock), else 127.0.0.1:50051.\n"
		"\n"
		"Exit status: 0 success, 1 error reported by the daemon, 2 usage error,\n"
		"3 daemon unreachable.",
	.children = cmd_table,
	.child_noun = "command",
};

static bool table_has(const struct cmd_option *table, const struct cmd_option *o)
{
	for (; table && table->name; table++)
		if (table == o)
			return true;
	return false;
}

/* The option tables to parse with, NULL-terminated, stored in *ret (free it): e's own (none for
 * a NULL e), the global ones and, when group shares its children's options, the other
 * children's. Returns 0 or -ENOMEM. */
static int option_tables(const struct cmd_entry *e, const struct cmd_entry *group,
			 const struct cmd_option ***ret)
{
	static const struct cmd_option no_options[] = {{NULL}};
	const struct cmd_entry *const *kids =
		group && group->shared_options ? group->children : NULL;
	const struct cmd_option **t;
	size_t n = 0, i = 0;

	for (const struct cmd_entry *const *c = kids; c && *c; c++)
		n++;
	if (!(t = calloc(n + 3, sizeof(*t))))
		return -ENOMEM;
	t[i++] = e && e->options ? e->options : no_options;
	t[i++] = cli_global_options;
	for (const struct cmd_entry *const *c = kids; c && *c; c++)
		if (*c != e && (*c)->options)
			t[i++] = (*c)->options;
	*ret = t;
	return 0;
}

/* Applies the global options found in a (last one wins). Returns 0 or an exit status. */
static int apply_globals(struct cli *cli, const struct args *a, bool *help)
{
	for (size_t i = 0; i < a->n_values; i++) {
		const struct arg_value *v = &a->values[i];

		if (!table_has(cli_global_options, v->opt))
			continue;
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

/* Parses argv[0..argc) for e, a child of group (NULL: of none that shares options), into *a.
 * Returns 0 or an exit status (a usage error printed). */
static int parse(struct cli *cli, const struct cmd_entry *e, const struct cmd_entry *group,
		 int argc, char **argv, unsigned flags, struct args *a, bool *help)
{
	_cleanup_free_ const struct cmd_option **tables = NULL;
	struct mv_error err = {0};

	args_done(a);
	if (option_tables(e, group, &tables) < 0)
		return cli_error("out of memory");
	if (args_parse(tables, argc, argv, flags, a, &err) < 0)
		return cli_usage_error(cli, "%s", err.msg[0] ? err.msg : "out of memory");
	return apply_globals(cli, a, help);
}

/* Checks the options and the number of positional arguments a holds for the command e (named
 * name, "volume create"). Returns 0 or an exit status (a usage error printed). */
static int check_args(struct cli *cli, const struct cmd_entry *e, const char *name,
		      const struct args *a)
{
	char full[128];

	usage_path(&cli->path, 0, full, sizeof(full));
	for (size_t i = 0; i < a->n_values; i++) {
		const struct cmd_option *o = a->values[i].opt;

		if (!table_has(e->options, o) && !table_has(cli_global_options, o))
			return cli_usage_error(cli, "%s: option --%s does not apply", name,
					       o->name);
	}
	if ((int)a->n_positional < e->min_args)
		return cli_usage_error(cli, "%s: missing argument%s (usage: %s%s%s)", name,
				       e->min_args > 1 ? "s" : "", full, *e->usage ? " " : "",
				       e->usage);
	if (e->max_args >= 0 && (int)a->n_positional > e->max_args)
		return cli_usage_error(cli,
				       "%s: too many arguments (unexpected argument '%s'; usage: "
				       "%s%s%s)",
				       name, a->positional[e->max_args], full, *e->usage ? " " : "",
				       e->usage);
	return 0;
}

/* Walks the table from cmd_root along argv to a command and runs it. Options given before the
 * child's name in a group that shares its children's options are carried down to the child's
 * parse. Returns the exit status. */
static int run(struct cli *cli, int argc, char **argv)
{
	_cleanup_free_ char **carried = NULL;
	const struct cmd_entry *e = &cmd_root, *group = NULL;
	struct args a = {0};
	char name[128], full[128];
	bool help = false;
	int pos = 1, n_carried = 0, r;

	(void)cmd_path_push(&cli->path, &cmd_root);
	if (!(carried = calloc((size_t)argc, sizeof(*carried))))
		return cli_error("out of memory");
	while (e->children) {
		const struct cmd_entry *child;
		int at;

		if ((r = parse(cli, NULL, e, argc - pos, argv + pos, ARGS_STOP_AT_POSITIONAL, &a,
			       &help)) != 0)
			goto out;
		at = pos + a.next;
		for (int i = pos; e->shared_options && i < at; i++)
			carried[n_carried++] = argv[i];
		usage_path(&cli->path, 0, full, sizeof(full));
		usage_path(&cli->path, 1, name, sizeof(name));
		if (at >= argc) {
			if (help) {
				usage_print(&cli->path, stdout);
				r = CLI_EXIT_OK;
			} else if (e == &cmd_root) {
				r = cli_group_usage_error(cli, "no command given");
			} else {
				r = cli_group_usage_error(cli,
							  "%s: missing argument (usage: %s %s)",
							  name, full, e->usage);
			}
			goto out;
		}
		if (!(child = cmd_find(e, argv[at]))) {
			r = cli_group_usage_error(cli, "%s%sunknown %s '%s'", name,
						  *name ? ": " : "", e->child_noun, argv[at]);
			goto out;
		}
		if (cmd_path_push(&cli->path, child) < 0) {
			r = cli_error("the command table is deeper than %d", CMD_DEPTH_MAX);
			goto out;
		}
		group = e;
		e = child;
		pos = at + 1;
	}

	for (int i = pos; i < argc; i++)
		carried[n_carried++] = argv[i];
	if ((r = parse(cli, e, group, n_carried, carried, 0, &a, &help)) != 0)
		goto out;
	if (help) {
		usage_print(&cli->path, stdout);
		r = CLI_EXIT_OK;
		goto out;
	}
	usage_path(&cli->path, 1, name, sizeof(name));
	if ((r = check_args(cli, e, name, &a)) != 0)
		goto out;
	r = e->exec(cli, &a);
out:
	args_done(&a);
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
