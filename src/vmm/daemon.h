/* The daemon: owns the event loop and wires the parts together (state store, VM manager, API
 * server, listeners). Signals are handled in the loop (signalfd via sd-event), never in signal
 * context. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "sysinfo.h"
#include "validate.h"

struct daemon {
	const struct daemon_config *cfg;
	sd_event *event;
	struct store *store;
	struct vm_manager *vms;
	struct storage *storage;
	struct api_server *api;
	struct listener **listeners;
	size_t n_listeners;
	int lock_fd;
	gid_t access_gid;
	struct sysinfo_host host;
	/* cached `hypervisor --version`, keyed by the binary's identity */
	char *hv_version;
	dev_t hv_dev;
	ino_t hv_ino;
	struct timespec hv_mtime;
	bool stopping;
};

/* Runs the daemon until SIGTERM/SIGINT. Returns the process exit code. */
int daemon_run(const struct daemon_config *cfg);

/* The host's limits for validation, refreshed from the system. */
void daemon_host_limits(struct daemon *d, struct host_limits *ret);
