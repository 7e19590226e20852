/* cloud-init NoCloud seed disks: a small FAT image labelled CIDATA holding user-data,
 * meta-data and (optionally) network-config, built with Debian's dosfstools (mkfs.vfat) and
 * mtools (mcopy), never by mounting anything. The VM manager builds one in a VM's runtime
 * directory at every start and attaches it read-only as the VM's last disk.
 *
 * The tools run as short-lived children, synchronously, each bounded by a timeout after which
 * it is killed: both together take ~10 ms for a seed, and the VM manager's start is synchronous
 * up to the hypervisor's spawn so that any failure reaches the caller at once with nothing left
 * behind; an asynchronous build would add a state to the start for no measurable gain. They are looked up in $PATH, then /usr/sbin and
 * /sbin. Silent: returns -errno and fills the error object, with the tool's own error text
 * when a tool fails. */
#pragma once

#include <stdint.h>

#include "common/err.h"

#define CLOUDINIT_LABEL "CIDATA"
#define CLOUDINIT_TIMEOUT_MS_DEFAULT 10000
/* The image's size: its contents rounded up to KiB, plus this much room for the FAT
 * structures, directory entries and per-file slack. */
#define CLOUDINIT_OVERHEAD_KIB 1024

struct cloudinit_seed {
	const char *user_data;      /* required, at most VM_USER_DATA_MAX bytes */
	const char *meta_data;      /* NULL or "": "instance-id: <id>\nlocal-hostname: <name>\n" */
	const char *network_config; /* NULL or "": no network-config file */
	const char *instance_id;    /* for the default meta-data (the VM's id) */
	const char *hostname;       /* for the default meta-data (the VM's name) */
	uint32_t timeout_ms;        /* per tool; 0: CLOUDINIT_TIMEOUT_MS_DEFAULT */
};

/* Builds the seed image at path (absolute, which must not exist; its directory must). The
 * image appears at path complete or not at all: it is built under a temporary directory beside
 * path and renamed into place, and every temporary file is removed whatever happens. Errors:
 * -EINVAL (no user-data, a file over its size cap, a relative path), -ENOMEDIUM (a tool is not
 * installed), -ETIMEDOUT (a tool did not finish in time; it is killed), -EIO (a tool failed:
 * its stderr is in the message), -EEXIST, or the errno of a file operation. */
int cloudinit_seed_build(const struct cloudinit_seed *seed, const char *path, struct mv_error *err);

/* Removes the seed image at path and the temporary directory of a build that did not finish
 * (the daemon died during it): <path>.tmp-* beside it. Silent; what is not there is fine. */
void cloudinit_seed_remove(const char *path);

/* The size in KiB of the image cloudinit_seed_build makes for files of total bytes. */
uint64_t cloudinit_seed_size_kib(uint64_t total);
