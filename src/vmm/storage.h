/* The storage manager: volumes (disk images) in pool directories, their metadata in the state
 * store, and image formats. Long operations (import, convert, copy) run as child processes
 * (qemu-img, cp) watched on the event loop, never on it. Volume names follow the VM name rule
 * and are file names inside their pool: files are opened relative to the pool directory, never
 * following symlinks out of it. Silent: returns -errno and fills the error object. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "err.h"
#include "vmdef.h"

struct store;
struct storage;

struct storage_pool_config {
	const char *name; /* "default" is <state-dir>/volumes */
	const char *path; /* absolute */
};

/* Which VMs use a volume (their names, NULL-terminated, caller frees each and the array);
 * running_only: only VMs whose hypervisor runs. Provided by the VM manager. */
typedef int (*storage_users_fn)(void *userdata, const char *volume, bool running_only,
				char ***ret_names);

/* Opens the pools (creating their directories 0700), loads the volumes from the store and
 * reconciles them with the files: a volume without a file or a file without a volume is
 * reported (logged, and shown by ListVolumes), never deleted. */
int storage_new(sd_event *event, struct store *store, const struct storage_pool_config *pools,
		size_t n_pools, struct storage **ret, struct mv_error *err);
void storage_free(struct storage *s);
void storage_set_users_fn(struct storage *s, storage_users_fn fn, void *userdata);

/* For a VM disk that names a volume: the volume's file path (caller frees), format, and
 * whether it is a qcow2 overlay with a backing file. -ENOENT "volume 'x' not found". */
int storage_volume_resolve(struct storage *s, const char *name, char **ret_path,
			   enum disk_format *ret_format, bool *ret_has_backing, struct mv_error *err);

/* Checks a raw disk path given in a VM config: a path inside a pool directory must be a volume
 * of that pool (-EINVAL naming it otherwise). 0 when the path is fine. */
int storage_check_disk_path(struct storage *s, const char *path, const char *field,
			    struct mv_error *err);

/* Reads the image header of path (a regular file or block device) and returns its format:
 * qcow2 when it starts with the qcow2 magic "QFI\xfb" and a supported version (2 or 3),
 * raw otherwise. Never trusts the file name. */
int storage_detect_format(const char *path, enum disk_format *ret, struct mv_error *err);
