/* Shared by the parts of the storage manager: storage.c (formats, names, the volume registry,
 * queries, delete), storage_pool.c (pools, start-up and reconciliation, VM disk paths),
 * storage_op.c (an operation and its child processes) and storage_ops.c (create, import,
 * clone, resize). Not for other modules. */
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
	struct storage_op *ops; /* in progress, or cancelled and waiting for their child */
	storage_users_fn users_fn;
	void *users_data;
};

/* strerrordesc_np(e), never NULL. */
const char *storage_strerror(int e);
struct storage_volume *storage_find(struct storage *s, const char *name);
/* The pool named name ("default" when NULL or empty), or -ENOENT with a message. */
int storage_pool_lookup(struct storage *s, const char *name, struct storage_pool **ret,
			struct mv_error *err);
/* Like storage_find, with -ENOENT "volume 'x' not found" and the name rule checked first. */
int storage_lookup(struct storage *s, const char *name, const char *field,
		   struct storage_volume **ret, struct mv_error *err);
/* Checks that name is a valid, free volume name in pool: no volume, no operation creating one,
 * and no file of that name in the pool (-EEXIST). */
int storage_name_available(struct storage *s, const char *name, const char *field,
			   struct storage_pool *pool, struct mv_error *err);
/* -EBUSY naming the VMs that use the volume (only running ones with running_only). */
int storage_check_users(struct storage *s, const char *name, bool running_only, const char *action,
			struct mv_error *err);
/* -ENOENT "volume 'x' cannot be used: <status>" unless its file is there and sound. */
int storage_volume_usable(const struct storage_volume *v, struct mv_error *err);
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

/* ---- operations (storage_op.c) ---- */

#define STORAGE_OP_MAX_STEPS 3
#define STORAGE_OP_MAX_ARGS 16
#define STORAGE_OP_LINE_MAX 512

enum storage_op_kind {
	STORAGE_OP_CREATE,
	STORAGE_OP_IMPORT,
	STORAGE_OP_CLONE,
	STORAGE_OP_RESIZE,
};

enum storage_step_flags {
	STORAGE_STEP_PROGRESS = 1 << 0, /* qemu-img -p output */
	STORAGE_STEP_INFO = 1 << 1,     /* qemu-img info --output=json: check the image */
};

struct storage_op_step {
	const char *what; /* "qemu-img convert", for messages */
	unsigned flags;
	char *argv[STORAGE_OP_MAX_ARGS]; /* owned, NULL-terminated */
};

struct storage_op {
	struct storage *s;
	struct storage_op *prev, *next;
	enum storage_op_kind kind;
	struct storage_pool *pool;
	char *name;                 /* the volume made or worked on */
	char *tmp;                  /* temporary file in the pool while it exists; NULL: none */
	enum disk_format format;    /* of the result */
	uint64_t size;              /* create, resize: the virtual size asked for */
	struct storage_volume *src; /* clone source: busy while the operation runs */
	struct storage_volume *vol; /* the volume worked on or made: busy until done ran */
	char *backing;              /* clone of a qcow2: the source volume */
	char *backing_path;         /* ... and its file, which the overlay must name */
	uint64_t total;             /* import: virtual size of the source */
	uint64_t reported;

	struct storage_op_step steps[STORAGE_OP_MAX_STEPS];
	size_t n_steps, step;
	struct proc *proc;
	int out_fd;
	sd_event_source *out_source;
	char *out; /* OP_OUTPUT_MAX bytes and a NUL */
	size_t out_len;
	char line[STORAGE_OP_LINE_MAX];
	size_t line_len;
	char last_msg[STORAGE_OP_LINE_MAX];
	sd_event_source *defer;

	storage_progress_fn progress;
	storage_done_fn done;
	void *userdata;
	bool cancelled;
};

/* A new operation, linked into s->ops; NULL when out of memory. */
struct storage_op *storage_op_new(struct storage *s, enum storage_op_kind kind,
				  struct storage_pool *pool, const char *name, storage_done_fn done,
				  void *userdata);
/* Unlinks and frees op (its temporary file removed, its volumes no longer busy); no callback. */
void storage_op_free(struct storage_op *op);
/* Points *slot (op->src or op->vol) at v and keeps v busy until the operation is freed. */
void storage_op_hold(struct storage_volume **slot, struct storage_volume *v);
/* Appends a step; the arguments after flags are its argv, NULL-terminated. */
int storage_op_add_step(struct storage_op *op, const char *what, unsigned flags, ...);
/* Creates op->tmp, the temporary file that reserves the operation's place in its pool. */
int storage_op_make_tmp(struct storage_op *op, struct mv_error *err);
/* The path of op->tmp (caller frees); NULL when out of memory. */
char *storage_op_tmp_path(struct storage_op *op);
void storage_op_remove_tmp(struct storage_op *op);
/* Makes op->tmp the volume op->name (synced, renamed, row written, registered, held in
 * op->vol); on failure nothing is left. */
int storage_op_commit(struct storage_op *op, struct mv_error *err);
/* The operation is done: done(op->vol) runs on the next loop iteration. */
int storage_op_defer_success(struct storage_op *op, struct mv_error *err);
/* Starts the first step; on failure frees op and returns < 0 (done is not called). */
int storage_op_start(struct storage_op *op, struct mv_error *err);
/* True when an operation is creating a volume of that name. */
bool storage_op_reserves(struct storage *s, const char *name);
/* Ends every operation without callbacks (see storage_free). */
void storage_op_free_all(struct storage *s);
