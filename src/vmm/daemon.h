/* The daemon: owns the event loop and wires the parts together (state store, VM manager, API
 * server, listeners). Signals are handled in the loop (signalfd via sd-event), never in signal
 * context. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "api/api_context.h"
#include "config.h"
#include "model/validate.h"

struct daemon {
	const struct daemon_config *cfg;
	sd_event *event;
	struct store *store;
	struct vm_manager *vms;
	struct storage *storage;
	struct network_manager *networks; /* NULL: the host lets us manage no links */
	char instance[37];                /* <state-dir>/instance-id */
	struct api_server *api;
	struct listener **listeners;
	size_t n_listeners;
	struct api_context api_ctx; /* what the handlers see */
	int lock_fd;
	gid_t access_gid;
	bool stopping;
	sd_event_source *checkpoint; /* armed by a write, fires when the burst is over */
	/* what no VM or import may name: see build_path_policy */
	struct path_policy paths;
	char *own_dirs[2], **pool_dirs, *own_files[3];
};

/* Runs the daemon until SIGTERM/SIGINT. Returns the process exit code. */
int daemon_run(const struct daemon_config *cfg);
