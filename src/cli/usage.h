/* The CLI's help and usage text, printed from the command table (struct cmd_entry, cli.h) and
 * the option tables alone: no command writes its own. Used by main.c (--help, a group given no
 * child), cmd_help.c (mvirt help) and cli.c (the hint after a usage error). */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include "cli.h"

/* Prints the help of the last entry of path to f: the usage line (the names along path, then
 * the entry's usage), alias, help text, the children of a group, the options, the global
 * options and the footer. */
void usage_print(const struct cmd_path *path, FILE *f);
/* Prints the list of group's children to f, one line each: name (alias) and summary. */
void usage_print_children(const struct cmd_entry *group, FILE *f);
/* Writes the names of path's entries from index from on, separated by spaces, to buf (always
 * terminated, truncated to size): from 0 gives "mvirt volume create", from 1 "volume create"
 * (and "" for the root alone). */
void usage_path(const struct cmd_path *path, size_t from, char *buf, size_t size);
