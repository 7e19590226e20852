/* See usage.h: help and usage text from the command table. Layout: option help and wrapped
 * summaries start at fixed columns and wrap at word boundaries before HELP_WIDTH; the text of
 * entries (help, footer) is printed as written. */
#include "usage.h"

#include <ctype.h>
#include <string.h>

#define HELP_WIDTH 100
#define OPTION_COLUMN 28 /* where an option's help starts */
#define CHILD_COLUMN 20  /* where a child's summary starts */

/* Prints text from column col (the cursor is there), wrapped at word boundaries before
 * HELP_WIDTH, and ends the line. */
static void print_wrapped(const char *text, size_t col0, FILE *f)
{
	size_t col = col0;

	while (*text) {
		size_t word = strcspn(text, " ");

		if (col > col0 && col + 1 + word > HELP_WIDTH) {
			fprintf(f, "\n%*s", (int)col0, "");
			col = col0;
		} else if (col > col0) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", (int)word, text);
		col += word;
		text += word;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

/* Prints left at column 2, then moves to column col: on the same line if left leaves room,
 * else on the next one. */
static void print_left(const char *left, size_t col, FILE *f)
{
	if (strlen(left) + 4 <= col)
		fprintf(f, "  %-*s", (int)col - 2, left);
	else
		fprintf(f, "  %s\n%*s", left, (int)col, "");
}

static void print_options(const struct cmd_option *opts, FILE *f)
{
	for (const struct cmd_option *o = opts; o->name; o++) {
		char left[64];

		snprintf(left, sizeof(left), "%c%c%c --%s%s%s", o->short_name ? '-' : ' ',
			 o->short_name ? o->short_name : ' ', o->short_name ? ',' : ' ', o->name,
			 o->metavar ? " " : "", strempty(o->metavar));
		print_left(left, OPTION_COLUMN, f);
		print_wrapped(o->help, OPTION_COLUMN, f);
	}
}

void usage_print_children(const struct cmd_entry *group, FILE *f)
{
	for (const struct cmd_entry *const *c = group->children; c && *c; c++) {
		char left[64];

		if ((*c)->alias)
			snprintf(left, sizeof(left), "%s (%s)", (*c)->name, (*c)->alias);
		else
			snprintf(left, sizeof(left), "%s", (*c)->name);
		print_left(left, CHILD_COLUMN, f);
		print_wrapped((*c)->summary, CHILD_COLUMN, f);
	}
}

void usage_path(const struct cmd_path *path, size_t from, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = from; i < path->n && len < size; i++) {
		int n = snprintf(buf + len, size - len, "%s%s", i > from ? " " : "",
				 path->entries[i]->name);

		if (n < 0)
			break;
		len += (size_t)n;
	}
}

/* "command" → "COMMAND" (at most 31 characters). */
static void upper(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++)
		buf[i] = (char)toupper((unsigned char)s[i]);
	buf[i] = '\0';
}

void usage_print(const struct cmd_path *path, FILE *f)
{
	const struct cmd_entry *e = cmd_path_last(path);
	const char *noun = e->child_noun ? e->child_noun : "command";
	char name[128], noun_upper[32];

	usage_path(path, 0, name, sizeof(name));
	upper(noun, noun_upper, sizeof(noun_upper));
	fprintf(f, "Usage: %s%s%s\n", name, *e->usage ? " " : "", e->usage);
	if (e->alias)
		fprintf(f, "Alias: %s\n", e->alias);
	fprintf(f, "\n%s\n", e->help ? e->help : e->summary);
	if (e->children) {
		fprintf(f, "\n%c%ss:\n", noun_upper[0], noun + 1);
		usage_print_children(e, f);
	}
	if (e->options && e->options[0].name) {
		fputs("\nOptions:\n", f);
		print_options(e->options, f);
	}
	if (e->children)
		fprintf(f, "\nGlobal options (also accepted after the %s):\n", noun);
	else
		fputs("\nGlobal options:\n", f);
	print_options(cli_global_options, f);
	if (e->footer)
		fprintf(f, "\n%s\n", e->footer);
	if (e->children)
		fprintf(f, "\nRun '%s %s --help' for the arguments and options of a %s.\n", name,
			noun_upper, noun);
}
