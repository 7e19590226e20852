/* The storage manager: volumes (disk images) in pool directories, their metadata in the state
 * store, and image formats. Long operations (import, convert, copy) run as child processes
 * (qemu-img, cp) watched on the event loop, never on it. Volume names follow the VM name rule
 * and are file names inside their pool: files are opened relative to the pool directory, never
 * following symlinks out of it. Silent: returns -errno and fills the error object.
 *
 * Crash consistency: a volume's file is built under a temporary name in its pool
 * (".tmp-NAME-XXXXXX", never a valid volume name), synced, renamed to NAME, and only then its
 * row is written; deleting removes the row first, then the file. So after a crash at any point
 * a row names a complete file (or, if the file vanished behind our back, is reported "file
 * missing"), a complete file may lack its row (reported as an unknown file, never deleted), and
 * ".tmp-" files are leftovers of interrupted operations, which storage_new() removes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/err.h"
#include "model/vmdef.h"

struct store;
struct storage;
struct storage_job;

#define STORAGE_DEFAULT_POOL "default"
#define STORAGE_TMP_PREFIX ".tmp-"
/* Volume sizes: at least one 512-byte sector, at most 64 TiB, a multiple of 512. */
#define STORAGE_SIZE_MIN 512ULL
#define STORAGE_SIZE_MAX (64ULL << 40)

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
 * reported (logged, and shown by ListVolumes), never deleted. Leftover ".tmp-" files of
 * interrupted operations are removed. Pool names follow the VM name rule; two pools may not
 * share or nest directories. This function logs what reconciliation finds. */
int storage_new(sd_event *event, struct store *store, const struct storage_pool_config *pools,
		size_t n_pools, struct storage **ret, struct mv_error *err);
/* Kills the child processes of operations still running and removes their temporary files
 * (a resize, which works in place, is waited for instead). NULL-safe. */
void storage_free(struct storage *s);
void storage_set_users_fn(struct storage *s, storage_users_fn fn, void *userdata);
/* The canonical directory of pool i (i < storage_n_pools). */
size_t storage_n_pools(const struct storage *s);
const char *storage_pool_path(const struct storage *s, size_t i);
/* What an import source may not be (validate_path); borrowed, NULL: no daemon files known. */
struct path_policy;
void storage_set_path_policy(struct storage *s, const struct path_policy *policy);

/* For a VM disk that names a volume: the volume's file path (caller frees), format, and
 * whether it is a qcow2 overlay with a backing file. -ENOENT "volume 'x' not found" or "cannot
 * be used" of kind bad (the caller's view: a bad argument of a CreateVm, a failed
 * precondition of a start); -EBUSY while an operation works on the volume. */
int storage_volume_resolve(struct storage *s, const char *name, enum mv_error_kind bad,
			   char **ret_path, enum disk_format *ret_format, bool *ret_has_backing,
			   struct mv_error *err);

/* Checks a raw disk path given in a VM config: a path inside a pool directory must be a volume
 * of that pool (-EINVAL naming it otherwise). 0 when the path is fine. */
int storage_check_disk_path(struct storage *s, const char *path, const char *field,
			    struct mv_error *err);

/* Reads the image header of path (a regular file or block device) and returns its format:
 * qcow2 when it starts with the qcow2 magic "QFI\xfb" and a supported version (2 or 3),
 * raw otherwise. Never trusts the file name. Failures (a file that cannot be opened or read,
 * not a file or device, an unsupported qcow2 version) are of kind bad. */
int storage_detect_format(const char *path, enum mv_error_kind bad, enum disk_format *ret,
			  struct mv_error *err);
/* The same for the file fd refers to (an O_PATH fd will do: it is reopened for reading);
 * messages name it as shown. */
int storage_detect_format_fd(int fd, const char *shown, enum mv_error_kind bad,
			     enum disk_format *ret, struct mv_error *err);

/* A volume name as received (len bytes, which may include NULs): the VM name rule, no NUL.
 * -EINVAL naming field otherwise. */
int storage_check_name(const char *name, size_t len, const char *field, struct mv_error *err);

/* ---- volumes as the API shows them ---- */

struct storage_volume_info {
	char *name;
	char *pool;
	char *path;
	enum disk_format format;
	uint64_t virtual_size;    /* 0 when the file cannot be read */
	uint64_t allocated_bytes; /* st_blocks * 512 */
	char *backing;            /* NULL: none */
	char **backing_chain;     /* NULL-terminated: backing, its backing, ... */
	char **used_by;           /* NULL-terminated VM names */
	char **clones;            /* NULL-terminated names of volumes backed by this one */
	int64_t created_at_us;
	char *status; /* "ok", or what reconciliation found ("file missing", ...) */
};

void storage_volume_info_done(struct storage_volume_info *v);

/* One volume by name: -ENOENT "volume 'x' not found". */
int storage_volume_get(struct storage *s, const char *name, struct storage_volume_info *ret,
		       struct mv_error *err);
/* The volumes of one pool (or all when pool is NULL or ""), ordered by name, and the files
 * found in pool directories at start that are not volumes (and still exist), as paths. Free
 * each element with storage_volume_info_done, then the arrays; unknown files with free().
 * -ENOENT when the pool does not exist. */
int storage_volume_list(struct storage *s, const char *pool, struct storage_volume_info **ret,
			size_t *ret_n, char ***ret_unknown_files, struct mv_error *err);

/* Deletes a volume that no VM names (-EBUSY naming the VMs), that is no other volume's backing
 * volume (-EBUSY naming the clones) and that no operation is working on (-EBUSY). */
int storage_volume_delete(struct storage *s, const char *name, struct mv_error *err);

/* ---- volume operations (storage_volume_ops.c, run as jobs by storage_job.c) ----
 *
 * Each returns < 0 with err filled when it cannot begin (nothing was changed; done is not
 * called), or 0 once it began: done then runs exactly once, later, on the event loop — with the
 * new volume, or with vol NULL and err saying why (nothing is left behind: no file, no row).
 * ENOSPC/EDQUOT from the tools come back as -ENOSPC/-EDQUOT, other failures as -EIO with the
 * tool's message. Pointers given to the callbacks are valid during the call only. */

typedef void (*storage_done_fn)(void *userdata, const struct storage_volume_info *vol,
				const struct mv_error *err);
typedef void (*storage_progress_fn)(void *userdata, uint64_t done_bytes, uint64_t total_bytes);

/* A new empty volume of size bytes: a sparse raw file, or a qcow2 image (qemu-img create).
 * format UNSPECIFIED means raw; pool NULL or "" means "default". */
int storage_volume_create(struct storage *s, const char *name, uint64_t size,
			  enum disk_format format, const char *pool, storage_done_fn done,
			  void *userdata, struct mv_error *err);

/* Copies the image at source (absolute path; its format is read from its header) into a new
 * volume, converted to format (UNSPECIFIED: the source's), with qemu-img convert. progress
 * (may be NULL) reports the bytes copied so far. *ret_op (may be NULL) lets the caller cancel
 * it; it is valid until done runs or storage_job_cancel is called. */
int storage_volume_import(struct storage *s, const char *name, const char *source,
			  enum disk_format format, const char *pool, storage_progress_fn progress,
			  storage_done_fn done, void *userdata, struct storage_job **ret_op,
			  struct mv_error *err);

/* A thin copy of source named name, in the source's pool: a qcow2 overlay backed by a qcow2
 * source, or a reflink (where the file system has them) / sparse copy of a raw one. The source
 * must not be in use by a running VM (-EBUSY). */
int storage_volume_clone(struct storage *s, const char *source, const char *name,
			 storage_done_fn done, void *userdata, struct mv_error *err);

/* Grows a volume to size bytes (shrinking: -EINVAL); refused while a VM using it runs
 * (-EBUSY naming it). */
int storage_volume_resize(struct storage *s, const char *name, uint64_t size, storage_done_fn done,
			  void *userdata, struct mv_error *err);

/* Stops an operation: no callback runs any more, its child process is killed and its
 * temporary file removed now. */
void storage_job_cancel(struct storage_job *op);
