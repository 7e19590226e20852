/* mvirt-vmm: the mvirt daemon. Parses the configuration and runs the daemon (daemon.c). */
#include <stdio.h>

#include "config.h"
#include "daemon.h"

int main(int argc, char **argv)
{
	struct daemon_config cfg;
	struct mv_error err = {0};
	int r;

	r = config_parse(argc, argv, &cfg, &err);
	if (r < 0) {
		fprintf(stderr, "mvirt-vmm: %s\n", err.msg[0] ? err.msg : "invalid configuration");
		config_done(&cfg);
		return 2;
	}
	if (r == CONFIG_EXIT) {
		config_done(&cfg);
		return 0;
	}
	r = daemon_run(&cfg);
	config_done(&cfg);
	return r;
}
