/* The disks a VM config names, resolved once for every use (vm_disks.c): a path's format read
 * from its image header where the config leaves it open, a volume's file, format and backing,
 * and the rules that hold between them (no disk twice, a path inside a pool must be one of its
 * volumes, a volume with clones only read-only). CreateVm resolves a new config to check it
 * and to fill in the formats; a start resolves the stored config again to launch it (files
 * and volumes may have changed since). Calls the storage manager; no state of its own. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "common/err.h"
#include "hypervisor/ch_config.h"
#include "model/validate.h"
#include "model/vmdef.h"

struct storage;

enum vm_disks_purpose {
	VM_DISKS_CREATE, /* a config a request brings: failures are bad arguments */
	VM_DISKS_START,  /* a stored config about to run: failures are failed preconditions */
};

/* The disks in launch order: config.disk first, then config.disks[], then room for one more
 * (the cloud-init seed, appended by the caller with vm_disk_set_append). */
struct vm_disk_set {
	struct ch_disk *disks;
	char **owned;   /* parallel to disks: the path when it is not the config's own */
	ssize_t *index; /* parallel to disks: index in config.disks, -1 for config.disk/extra */
	size_t n, cap;
};

/* Resolves every disk of c; storage may be NULL (a daemon without volumes). Disks given by
 * path are read through fds when it is set (a start: the files validate_vm_config_open
 * judged), else by their paths. On failure err names the field ("config.disks[1].volume:
 * volume 'x' not found"). Fills *ret, which the caller releases with vm_disk_set_done, also
 * on failure. */
int vm_disks_resolve(struct storage *storage, const struct vm_config *c,
		     const struct vm_path_fds *fds, enum vm_disks_purpose purpose,
		     struct vm_disk_set *ret, struct mv_error *err);
/* Appends a disk whose path set takes over (freed with the set); -ENOSPC when full. */
int vm_disk_set_append(struct vm_disk_set *set, char *path, enum disk_format format, bool readonly);
void vm_disk_set_done(struct vm_disk_set *set);

/* True when c uses the volume: by name, or by the path of its file (vol_st, NULL: unknown). */
bool vm_disks_use_volume(const struct vm_config *c, const char *volume, const struct stat *vol_st);
