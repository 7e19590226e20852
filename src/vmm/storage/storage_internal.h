/* The storage manager's objects and its registry (storage.c), shared by its parts: storage.c
 * (formats, names, the volume registry, queries, delete), storage_pool.c (pools, start-up and
 * reconciliation, VM disk paths), storage_job.c (the job runner: a volume operation's steps as
 * child processes, storage_job.h) and storage_volume_ops.c (create, import, clone, resize, as
 * jobs). They call each other in one direction: storage_pool.c, storage_volume_ops.c →
 * storage_job.c → storage.c. Not for other modules. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "storage/storage.h"
#include "store/store.h"

#define STORAGE_QEMU_IMG "/usr/bin/qemu-img"
#define STORAGE_CP "/usr/bin/cp"
#define STORAGE_SYNC "/usr/bin/sync"

struct storage_pool {
	char *name;
	char *path; /* canonical (realpath at start): the prefix of every volume path */
	int dir_fd; /* every volume file is opened relative to it, O_NOFOLLOW */
	dev_t dev;
	ino_t ino;
};

struct storage_volume {
	struct volume_record rec;
	struct storage_pool *pool; /* NULL when rec.pool is not configured (any more) */
	unsigned busy;             /* operations using it (resize, clone source) */
};

/* A file found in a pool directory at start that is not a volume. */
struct storage_unknown {
	struct storage_pool *pool;
	char *leaf;
};

struct storage {
	sd_event *event;
	struct store *store;
	struct storage_pool *pools;
	size_t n_pools;
	struct storage_volume **vols; /* sorted by name */
	size_t n_vols;
	struct storage_unknown *unknown;
	size_t n_unknown;
	struct storage_job *ops; /* in progress, or cancelled and waiting for their child */
	storage_users_fn users_fn;
	void *users_data;
	const struct path_policy *paths; /* borrowed */
};

/* strerrordesc_np(e), never NULL. */
const char *storage_strerror(int e);
struct storage_volume *storage_find(struct storage *s, const char *name);
/* The pool whose directory is path or one of its parents, and the first component below it
 * (NULL when path is the directory itself; ret_leaf may be NULL). By device and inode. */
struct storage_pool *storage_pool_containing(struct storage *s, const char *path,
					     const char **ret_leaf);
/* The pool named name ("default" when NULL or empty), or -ENOENT with a message. */
int storage_pool_lookup(struct storage *s, const char *name, struct storage_pool **ret,
			struct mv_error *err);
/* Like storage_find, with -ENOENT "volume 'x' not found" and the name rule checked first. */
int storage_lookup(struct storage *s, const char *name, const char *field,
		   struct storage_volume **ret, struct mv_error *err);
/* -EBUSY naming the VMs that use the volume (only running ones with running_only). */
int storage_check_users(struct storage *s, const char *name, bool running_only, const char *action,
			struct mv_error *err);
/* -ENOENT "volume 'x' cannot be used: <status>" (of kind bad) unless its file is there and
 * sound. */
int storage_volume_usable(const struct storage_volume *v, enum mv_error_kind bad,
			  struct mv_error *err);
/* Adds a volume (rec is moved in) to the registry; -ENOMEM. */
int storage_register(struct storage *s, struct volume_record *rec, struct storage_pool *pool);
/* What is wrong with the volume's file ("ok" when nothing) into buf, and its sizes when
 * readable (0 otherwise). */
void storage_volume_status(const struct storage_volume *v, char *buf, size_t size,
			   uint64_t *ret_virtual, uint64_t *ret_allocated);
void storage_volume_free(struct storage_volume *v);
/* Fills ret for vol, reading its file's header and sizes. */
int storage_volume_info_fill(struct storage *s, const struct storage_volume *vol,
			     struct storage_volume_info *ret);
/* The virtual size of an image open at fd: the file or device size for raw, the header's
 * size field for qcow2. */
int storage_image_size(int fd, enum disk_format format, uint64_t *ret);
/* pool path + "/" + leaf, or NULL when out of memory. */
char *storage_pool_file(const struct storage_pool *pool, const char *leaf);
