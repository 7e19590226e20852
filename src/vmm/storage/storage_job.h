/* The storage manager's job runner (storage_job.c): a volume operation (create, import, clone,
 * resize) as up to STORAGE_JOB_MAX_STEPS child processes (qemu-img, cp, sync) run one after the
 * other and watched on the event loop, with their progress parsed, a temporary file in the pool
 * that reserves the volume's name until the job commits it, and the job's end reported once.
 * Used by storage_volume_ops.c (which builds jobs) and storage_pool.c (which ends them all). */
#pragma once

#include "storage/storage_internal.h"

#define STORAGE_JOB_MAX_STEPS 3
#define STORAGE_JOB_MAX_ARGS 16
#define STORAGE_JOB_LINE_MAX 512

enum storage_job_kind {
	STORAGE_JOB_CREATE,
	STORAGE_JOB_IMPORT,
	STORAGE_JOB_CLONE,
	STORAGE_JOB_RESIZE,
};

enum storage_step_flags {
	STORAGE_STEP_PROGRESS = 1 << 0, /* qemu-img -p output */
	STORAGE_STEP_INFO = 1 << 1,     /* qemu-img info --output=json: check the image */
};

struct storage_job_step {
	const char *what; /* "qemu-img convert", for messages */
	unsigned flags;
	char *argv[STORAGE_JOB_MAX_ARGS]; /* owned, NULL-terminated */
};

struct storage_job {
	struct storage *s;
	struct storage_job *prev, *next;
	enum storage_job_kind kind;
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

	struct storage_job_step steps[STORAGE_JOB_MAX_STEPS];
	size_t n_steps, step;
	struct proc *proc;
	int out_fd;
	sd_event_source *out_source;
	char *out; /* OP_OUTPUT_MAX bytes and a NUL */
	size_t out_len;
	char line[STORAGE_JOB_LINE_MAX];
	size_t line_len;
	char last_msg[STORAGE_JOB_LINE_MAX];
	sd_event_source *defer;

	storage_progress_fn progress;
	storage_done_fn done;
	void *userdata;
	bool cancelled;
};

/* A new operation, linked into s->ops; NULL when out of memory. */
struct storage_job *storage_job_new(struct storage *s, enum storage_job_kind kind,
				    struct storage_pool *pool, const char *name,
				    storage_done_fn done, void *userdata);
/* Unlinks and frees op (its temporary file removed, its volumes no longer busy); no callback. */
void storage_job_free(struct storage_job *op);
/* Points *slot (op->src or op->vol) at v and keeps v busy until the operation is freed. */
void storage_job_hold(struct storage_volume **slot, struct storage_volume *v);
/* Appends a step; the arguments after flags are its argv, NULL-terminated. */
int storage_job_add_step(struct storage_job *op, const char *what, unsigned flags, ...);
/* Creates op->tmp, the temporary file that reserves the operation's place in its pool. */
int storage_job_make_tmp(struct storage_job *op, struct mv_error *err);
/* The path of op->tmp (caller frees); NULL when out of memory. */
char *storage_job_tmp_path(struct storage_job *op);
void storage_job_remove_tmp(struct storage_job *op);
/* Makes op->tmp the volume op->name (synced, renamed, row written, registered, held in
 * op->vol); on failure nothing is left. */
int storage_job_commit(struct storage_job *op, struct mv_error *err);
/* The operation is done: done(op->vol) runs on the next loop iteration. */
int storage_job_defer_success(struct storage_job *op, struct mv_error *err);
/* Starts the first step; on failure frees op and returns < 0 (done is not called). */
int storage_job_start(struct storage_job *op, struct mv_error *err);
/* True when an operation is creating a volume of that name. */
bool storage_job_reserves(struct storage *s, const char *name);
/* Ends every operation without callbacks (see storage_free). */
void storage_job_free_all(struct storage *s);

/* Checks that name is a valid, free volume name in pool: no volume, no operation creating one,
 * and no file of that name in the pool (-EEXIST). */
int storage_name_available(struct storage *s, const char *name, const char *field,
			   struct storage_pool *pool, struct mv_error *err);
