/* Fuzzes the daemon's config file reader (config.c) with arbitrary file contents, as
 * /etc/mvirt/mvirt-vmm.conf may hold them: read through a memfd, with no command-line settings.
 * Invariants: it either yields a config to run with, whose settings hold no NUL and no line
 * break (each came from one line), or fails with a message that names the file and the
 * problem; it never exits or prints. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static void check_value(const char *v)
{
	if (v)
		FUZZ_ASSERT(!strpbrk(v, "\n\r"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daemon_config cfg = {0};
	struct mv_error err = {0};
	char path[64], *argv[] = {"mvirt-vmm", "--config", path, NULL};
	int fd = memfd_create("mvirt-vmm.conf", MFD_CLOEXEC), r;

	FUZZ_ASSERT(fd >= 0);
	FUZZ_ASSERT(write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	optind = 0; /* getopt_long starts over for every input */
	r = config_parse(3, argv, &cfg, &err);
	close(fd);
	if (r == CONFIG_RUN) {
		check_value(cfg.state_dir);
		check_value(cfg.runtime_dir);
		check_value(cfg.hypervisor);
		check_value(cfg.dnsmasq);
		for (size_t i = 0; cfg.listen && cfg.listen[i]; i++)
			check_value(cfg.listen[i]);
		for (size_t i = 0; cfg.pools && cfg.pools[i]; i++)
			check_value(cfg.pools[i]);
	} else {
		FUZZ_ASSERT(r < 0 && err.msg[0]);
	}
	config_done(&cfg);
	return 0;
}
