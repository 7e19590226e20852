/* Command-line parsing for the CLI from declarative option tables (one per command, plus the
 * global one). Options may appear anywhere among the positional arguments; "--" ends them.
 * Accepted forms: --name VALUE, --name=VALUE, -x VALUE, -xVALUE, clustered short flags (-fh).
 *
 * Values are borrowed pointers into argv, which outlives the parse. Silent: problems are
 * returned in a struct mv_error. Called by main.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct cmd_option {
	const char *name;    /* long name without "--"; NULL ends a table */
	char short_name;     /* 0: none */
	const char *metavar; /* name of the value in the help ("N"); NULL: a flag without value */
	const char *help;
};

struct arg_value {
	const struct cmd_option *opt;
	const char *value; /* "" for a flag */
};

struct args {
	struct arg_value *values; /* in command-line order */
	size_t n_values;
	char **positional;
	size_t n_positional;
	int next; /* with ARGS_STOP_AT_POSITIONAL: index in argv of the first positional, or argc */
};

enum {
	/* Stop at the first positional argument (used for the options before the command). */
	ARGS_STOP_AT_POSITIONAL = 1 << 0,
};

/* Parses argv[0..argc) against the option tables (a NULL-terminated array of tables, searched
 * in order) into *ret, which the caller frees with args_done() whatever the result. Returns 0 or
 * -EINVAL (unknown option, missing value, value given to a flag) with err filled, or -ENOMEM. */
int args_parse(const struct cmd_option *const *tables, int argc, char **argv, unsigned flags,
	       struct args *ret, struct mv_error *err);
void args_done(struct args *a);

/* The value of the last occurrence of the option named name, or NULL if absent. */
const char *args_get(const struct args *a, const char *name);
bool args_has(const struct args *a, const char *name);
