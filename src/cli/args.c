/* See args.h. */
#include "args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"

static const struct cmd_option *find_long(const struct cmd_option *const *tables, const char *name,
					  size_t len)
{
	for (; *tables; tables++)
		for (const struct cmd_option *o = *tables; o->name; o++)
			if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
				return o;
	return NULL;
}

static const struct cmd_option *find_short(const struct cmd_option *const *tables, char c)
{
	for (; *tables; tables++)
		for (const struct cmd_option *o = *tables; o->name; o++)
			if (o->short_name != 0 && o->short_name == c)
				return o;
	return NULL;
}

static int add_value(struct args *a, const struct cmd_option *opt, const char *value)
{
	struct arg_value *v = reallocarray(a->values, a->n_values + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	a->values = v;
	a->values[a->n_values++] = (struct arg_value){.opt = opt, .value = value};
	return 0;
}

static int add_positional(struct args *a, char *arg)
{
	char **p = reallocarray(a->positional, a->n_positional + 1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	a->positional = p;
	a->positional[a->n_positional++] = arg;
	return 0;
}

/* "--name", "--name=value": *i is advanced past a value taken from the next argument. */
static int parse_long(const struct cmd_option *const *tables, int argc, char **argv, int *i,
		      struct args *a, struct mv_error *err)
{
	const char *name = argv[*i] + 2;
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct cmd_option *opt = find_long(tables, name, len);

	if (!opt)
		return mv_err_invalid(err, "unknown option '--%.*s'", (int)len, name);
	if (!opt->metavar) {
		if (eq)
			return mv_err_invalid(err, "option '--%s' takes no value", opt->name);
		return add_value(a, opt, "");
	}
	if (eq)
		return add_value(a, opt, eq + 1);
	if (*i + 1 >= argc)
		return mv_err_invalid(err, "option '--%s' needs a value (%s)", opt->name,
				      opt->metavar);
	return add_value(a, opt, argv[++*i]);
}

/* "-x", "-xVALUE", "-x VALUE", "-fh". */
static int parse_short(const struct cmd_option *const *tables, int argc, char **argv, int *i,
		       struct args *a, struct mv_error *err)
{
	const char *p = argv[*i] + 1;
	int r;

	for (; *p; p++) {
		const struct cmd_option *opt = find_short(tables, *p);

		if (!opt)
			return mv_err_invalid(err, "unknown option '-%c'", *p);
		if (!opt->metavar) {
			if ((r = add_value(a, opt, "")) < 0)
				return r;
			continue;
		}
		if (p[1])
			return add_value(a, opt, p + 1);
		if (*i + 1 >= argc)
			return mv_err_invalid(err, "option '-%c' needs a value (%s)", *p,
					      opt->metavar);
		return add_value(a, opt, argv[++*i]);
	}
	return 0;
}

int args_parse(const struct cmd_option *const *tables, int argc, char **argv, unsigned flags,
	       struct args *ret, struct mv_error *err)
{
	bool options_done = false;
	int r;

	*ret = (struct args){.next = argc};
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			if (flags & ARGS_STOP_AT_POSITIONAL) {
				ret->next = i;
				return 0;
			}
			r = add_positional(ret, argv[i]);
		} else if (streq(arg, "--")) {
			options_done = true;
			continue;
		} else if (arg[1] == '-') {
			r = parse_long(tables, argc, argv, &i, ret, err);
		} else {
			r = parse_short(tables, argc, argv, &i, ret, err);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

void args_done(struct args *a)
{
	free(a->values);
	free(a->positional);
	*a = (struct args){0};
}

const char *args_get(const struct args *a, const char *name)
{
	for (size_t i = a->n_values; i > 0; i--)
		if (streq(a->values[i - 1].opt->name, name))
			return a->values[i - 1].value;
	return NULL;
}

bool args_has(const struct args *a, const char *name)
{
	return args_get(a, name) != NULL;
}
