/* Validation of what users send: VM names and VM configs. Pure checks plus an O_PATH open of
 * each path a config names (kept for the caller by validate_vm_config_open); never modifies its
 * input. Every failure returns -EINVAL with a message
 * naming the field ("config.disks[1].path: ...") and the cause, of kind MV_ERR_INVALID unless
 * the caller says otherwise. Silent (no logging). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/err.h"
#include "model/vmdef.h"

#define VM_MIN_MEMORY_MB 64
#define VM_CMDLINE_MAX 4096
#define VM_USER_DATA_MAX (1024 * 1024)
#define VM_META_DATA_MAX (64 * 1024)
#define VM_MAX_DISKS 16
#define VM_MAX_NICS 16

/* What the daemon keeps for itself: no path in a config or import may name it. */
struct path_policy {
	const char *const *own_dirs; /* absolute, resolved: state and runtime dirs */
	size_t n_own_dirs;
	const char *const *pool_dirs; /* resolved; inside an own dir, left to the storage manager */
	size_t n_pool_dirs;
	const char *const
		*own_files; /* also refused through a hard link: the database, -wal, -shm */
	size_t n_own_files;
};

struct host_limits {
	uint32_t cpus;                   /* online host CPUs */
	uint64_t memory_mb;              /* total host memory */
	const struct path_policy *paths; /* NULL: no daemon files to protect (tests) */
};

enum path_kind {
	PATH_FILE, /* a regular file */
	PATH_DISK, /* a regular file or a block device */
};

/* What path names, judged by what it is after every symlink: an absolute path to an existing
 * regular file (or block device, for PATH_DISK), not a kernel file (procfs, sysfs and the like,
 * whatever they are mounted as, nor anything under /proc, /sys or /dev but a block device),
 * not reached through a magic link (/proc/PID/fd/N), and not the daemon's own (policy). The
 * object is opened (O_PATH) and judged by the opened file, so a symlink is judged by what it
 * points to. -EINVAL "field: path: cause" of kind MV_ERR_INVALID; its stat in *ret_st. */
int validate_path(const char *path, const char *field, enum path_kind kind,
		  const struct path_policy *policy, struct stat *ret_st, struct mv_error *err);

/* The VM_PLAIN_* bits of c's paths that are reached without any symbolic link now (at
 * create): validate_vm_config then refuses them at a start if one has become a symlink. */
uint32_t validate_plain_paths(const struct vm_config *c);

/* Names match ^[a-z0-9][a-z0-9._-]{0,62}$. field is used in the message ("name"). */
int validate_vm_name(const char *name, const char *field, struct mv_error *err);

/* Checks every field of c against the rules documented in proto/mvirt.proto and the host's
 * limits: vcpus 1..host cpus, memory VM_MIN_MEMORY_MB..host memory, exactly one of kernel and
 * firmware, initramfs/cmdline only with kernel, absolute existing paths (regular files for
 * kernel/initramfs/firmware; regular files or block devices for disks), known enum values,
 * no disk path twice, NIC tap/network/MAC syntax, size caps. A failure is of kind bad:
 * MV_ERR_INVALID for a config a request brings, MV_ERR_PRECONDITION for a stored config checked
 * again before a start (the host or its files changed since). */
/* Only the NICs of c (the NIC part of validate_vm_config): count, tap or network, their
 * syntax, MAC syntax and no MAC twice. MV_ERR_INVALID naming "config.nics[i].<field>". */
int validate_vm_nics(const struct vm_config *c, struct mv_error *err);
int validate_vm_config(const struct vm_config *c, const struct host_limits *host,
		       enum mv_error_kind bad, struct mv_error *err);

/* The files a config's paths name, kept open (O_PATH, close-on-exec) as validate_vm_config
 * judged them: a start hands these to the hypervisor (as /proc/self/fd/N) instead of the
 * paths, so that what runs is what was checked, whatever is renamed or swapped in between.
 * -1 where the config names no path. */
struct vm_path_fds {
	int kernel, initramfs, firmware;
	int disk;                /* config.disk */
	int disks[VM_MAX_DISKS]; /* config.disks[i] given by path; -1 for a volume */
};
void vm_path_fds_init(struct vm_path_fds *fds);
void vm_path_fds_close(struct vm_path_fds *fds); /* and back to -1 */

/* validate_vm_config, keeping each judged file open in *ret (all -1 and closed on failure). */
int validate_vm_config_open(const struct vm_config *c, const struct host_limits *host,
			    enum mv_error_kind bad, struct vm_path_fds *ret, struct mv_error *err);

/* A MAC address "xx:xx:xx:xx:xx:xx" (hex, either case), unicast. */
int validate_mac(const char *mac, const char *field, struct mv_error *err);
