/* What the host offers: CPUs, memory, names, and the hypervisor binary's version. Silent. */
#pragma once

#include <stdint.h>

struct sysinfo_host {
	uint32_t cpus;      /* online CPUs (sysconf _SC_NPROCESSORS_ONLN) */
	uint64_t memory_mb; /* MemTotal from /proc/meminfo */
	char hostname[256];
	char kernel_release[256];
};

int sysinfo_host_read(struct sysinfo_host *ret);

/* Runs `path --version` (no shell, stdin /dev/null, 2 s timeout, output capped at 4 KiB) and
 * returns its first line trimmed, e.g. "cloud-hypervisor v54.0.0". -ENOENT when path is not an
 * executable file, -ETIMEDOUT, or -EIO when it fails. */
int sysinfo_hypervisor_version(const char *path, char **ret_version);
