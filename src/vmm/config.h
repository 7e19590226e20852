/* The daemon's configuration: command line, config file and defaults, described by one table
 * (config.c) that drives parsing, defaults and --help. Precedence: command line > config file
 * > defaults. Defaults depend on who runs the daemon: root gets the system paths
 * (/var/lib/mvirt, /run/mvirt), other users their XDG directories. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

struct daemon_config {
	char **listen; /* NULL-terminated */
	char *state_dir;
	char *runtime_dir;
	char *hypervisor;
	char *dnsmasq;         /* DHCP/DNS of managed networks */
	char *group;           /* access group name; "" = root only */
	char **pools;          /* storage pools "NAME:PATH", NULL-terminated (or NULL) */
	char *default_network; /* "auto", "off" or a CIDR (checked when the network is made) */
	char *max_connections, *max_connections_per_user, *idle_timeout; /* as given */
	unsigned n_max_connections;                                      /* all clients together */
	unsigned n_max_connections_per_user;                             /* one uid */
	unsigned idle_timeout_s; /* a connection without calls is closed after it */
	char *config_file;
	int verbose;       /* 0 info, 1+ debug */
	bool check_only;   /* --check-config: report problems, start nothing */
	char **problems;   /* what is wrong, one "WHERE: what" each (the first 100), or NULL */
	size_t n_problems; /* all of them, also beyond those kept */
};

enum config_parse_result {
	CONFIG_RUN,  /* start the daemon */
	CONFIG_EXIT, /* --help / --version printed */
};

/* Parses argv (and the config file it names, or the default one if present) into a fresh
 * cfg. Every bad value or config-file line is a problem of its own in cfg->problems
 * ("PATH:LINE: what" or "--option: what"); parsing goes on past each, so all are reported at
 * once. Touches nothing but the config file, which it reads. Returns CONFIG_RUN/CONFIG_EXIT,
 * or -EINVAL with the first problem (or a usage error, which stops parsing) in err, or
 * -ENOMEM. cfg is to be freed with config_done() in every case. */
int config_parse(int argc, char **argv, struct daemon_config *cfg, struct mv_error *err);
void config_done(struct daemon_config *cfg);
