/* What the API handlers may reach: the managers they call and the few facts of the daemon they
 * report. The daemon fills one and hands it to api_server_new() as the handlers' userdata
 * (api_context_of()); handlers never see struct daemon. Runs on the event loop. */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>

#include "api/api.h"
#include "model/validate.h"
#include "os/sysinfo.h"

struct api_context {
	sd_event *event;
	struct vm_manager *vms;
	struct storage *storage;          /* NULL: this daemon has no volumes */
	struct network_manager *networks; /* NULL: this daemon manages no networks */
	const char *hypervisor;           /* the cloud-hypervisor binary, as configured */
	const char *store_path;           /* the database, for GetMetrics; may be NULL */

	/* the host's CPUs and memory, last read successfully */
	struct sysinfo_host host;
	/* `hypervisor --version`, cached by the binary's identity */
	char *hv_version;
	dev_t hv_dev;
	ino_t hv_ino;
	struct timespec hv_mtime;
};

static inline struct api_context *api_context_of(struct api_call *call)
{
	return api_call_userdata(call);
}

/* The host's limits for validation, refreshed from the system (the last good reading when
 * the system cannot be read). */
void api_context_host_limits(struct api_context *ctx, struct host_limits *ret);
/* The hypervisor's `--version` line ("" when unknown), re-run only when the binary changed;
 * *ret_found says whether the binary is there. The string belongs to ctx. */
const char *api_context_hypervisor_version(struct api_context *ctx, bool *ret_found);
/* Frees what the context caches (not the managers it points to). NULL-safe. */
void api_context_done(struct api_context *ctx);
