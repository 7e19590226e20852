/* mvirt-vmm: the mvirt daemon. Parses the configuration and runs the daemon (daemon.c), or
 * with --check-config only reports what is wrong with the configuration. */
#include <stdio.h>

#include "common/strv.h"
#include "config.h"
#include "daemon.h"

/* Every problem config_parse found, one line each, then how many. */
static void print_problems(const struct daemon_config *cfg)
{
	size_t kept = strv_len(cfg->problems);

	for (size_t i = 0; i < kept; i++)
		fprintf(stderr, "mvirt-vmm: %s\n", cfg->problems[i]);
	if (cfg->n_problems > kept)
		fprintf(stderr, "mvirt-vmm: ... and %zu more\n", cfg->n_problems - kept);
	fprintf(stderr, "mvirt-vmm: %zu problem%s in the configuration (%s)\n", cfg->n_problems,
		cfg->n_problems == 1 ? "" : "s",
		cfg->config_file ? cfg->config_file : "command line; no config file");
}

int main(int argc, char **argv)
{
	struct daemon_config cfg;
	struct mv_error err = {0};
	int r;

	r = config_parse(argc, argv, &cfg, &err);
	if (r < 0) {
		/* --check-config: 1 when the configuration has problems; a start refused for
		 * them, or a usage error: 2 */
		int code = cfg.check_only && cfg.n_problems > 0 ? 1 : 2;

		if (cfg.n_problems > 0)
			print_problems(&cfg);
		else
			fprintf(stderr, "mvirt-vmm: %s\n",
				err.msg[0] ? err.msg : "invalid configuration");
		config_done(&cfg);
		return code;
	}
	if (r == CONFIG_EXIT) {
		config_done(&cfg);
		return 0;
	}
	if (cfg.check_only) {
		printf("mvirt-vmm: configuration ok (%s)\n",
		       cfg.config_file ? cfg.config_file : "no config file; defaults");
		config_done(&cfg);
		return 0;
	}
	r = daemon_run(&cfg);
	config_done(&cfg);
	return r;
}
