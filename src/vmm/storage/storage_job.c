/* The storage manager's job runner (see storage_job.h): a short list of child-process
 * steps (qemu-img, cp, sync) run one after the other through the process supervisor (proc.c),
 * each with its stdout and stderr on a pipe read from the event loop: `qemu-img convert -p`
 * progress lines become progress callbacks, the output of `qemu-img info --output=json` is
 * parsed to check the result, and the last other line is the cause reported when a step fails.
 * Work that needs no child is done by the caller at once, and its callback deferred to the next
 * loop iteration (storage_job_defer_success).
 *
 * A new volume is built under a temporary name (STORAGE_TMP_PREFIX "NAME-XXXXXXXX", created
 * with O_EXCL in the pool), synced, renamed to NAME without replacing anything, and only then
 * its row is written and it is registered (storage_job_commit). Failure or cancellation removes
 * the temporary file. An operation reserves its target name (storage_job_reserves) and keeps the
 * volumes it works on busy (no delete, no second operation) until it ends. The operations
 * themselves are in storage_volume_ops.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/macro.h"
#include "os/proc.h"
#include "storage/storage_job.h"

#define OP_OUTPUT_MAX (64 * 1024) /* output kept per step: the info JSON, messages */
#define MIN(a, b) ((a) < (b) ? (a) : (b))

bool storage_job_reserves(struct storage *s, const char *name)
{
	for (struct storage_job *op = s->ops; op; op = op->next)
		if (!op->cancelled && op->kind != STORAGE_JOB_RESIZE && streq(op->name, name))
			return true;
	return false;
}

int storage_name_available(struct storage *s, const char *name, const char *field,
			   struct storage_pool *pool, struct mv_error *err)
{
	struct stat st;
	int r;

	if ((r = storage_check_name(name, name ? strlen(name) : 0, field, err)) < 0)
		return r;
	if (storage_find(s, name))
		return mv_err_exists(err, "volume '%s' already exists", name);
	if (storage_job_reserves(s, name))
		return mv_err_exists(err, "volume '%s' is being created", name);
	if (fstatat(pool->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return mv_err_exists(err,
				     "pool '%s' already has a file named '%s' that is not a volume",
				     pool->name, name);
	if (errno != ENOENT)
		return mv_err_internal(err, -errno, "pool '%s': %s: %s", pool->name, name,
				       storage_strerror(errno));
	return 0;
}

static void op_close_output(struct storage_job *op)
{
	op->out_source = sd_event_source_disable_unref(op->out_source);
	if (op->out_fd >= 0)
		close(op->out_fd);
	op->out_fd = -1;
}

void storage_job_remove_tmp(struct storage_job *op)
{
	if (op->tmp)
		(void)unlinkat(op->pool->dir_fd, op->tmp, 0);
	free(op->tmp);
	op->tmp = NULL;
}

void storage_job_free(struct storage_job *op)
{
	struct storage *s = op->s;

	op_close_output(op);
	proc_free(op->proc);
	sd_event_source_disable_unref(op->defer);
	storage_job_remove_tmp(op);
	if (op->src)
		op->src->busy--;
	if (op->vol)
		op->vol->busy--;
	if (op->prev)
		op->prev->next = op->next;
	else
		s->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	for (size_t i = 0; i < op->n_steps; i++)
		for (size_t j = 0; op->steps[i].argv[j]; j++)
			free(op->steps[i].argv[j]);
	free(op->name);
	free(op->backing);
	free(op->backing_path);
	free(op->out);
	free(op);
}

struct storage_job *storage_job_new(struct storage *s, enum storage_job_kind kind,
				    struct storage_pool *pool, const char *name,
				    storage_done_fn done, void *userdata)
{
	struct storage_job *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->s = s;
	op->kind = kind;
	op->pool = pool;
	op->out_fd = -1;
	op->done = done;
	op->userdata = userdata;
	op->next = s->ops;
	if (s->ops)
		s->ops->prev = op;
	s->ops = op;
	if (!(op->name = strdup(name)) || !(op->out = malloc(OP_OUTPUT_MAX + 1))) {
		storage_job_free(op);
		return NULL;
	}
	return op;
}

void storage_job_hold(struct storage_volume **slot, struct storage_volume *v)
{
	*slot = v;
	v->busy++;
}

/* Appends a step; the arguments after what and flags are the argv, NULL-terminated. */
int storage_job_add_step(struct storage_job *op, const char *what, unsigned flags, ...)
{
	struct storage_job_step *st = &op->steps[op->n_steps];
	const char *arg;
	size_t n = 0;
	va_list ap;
	int r = 0;

	if (op->n_steps == STORAGE_JOB_MAX_STEPS)
		return -E2BIG;
	op->n_steps++;
	st->what = what;
	st->flags = flags;
	va_start(ap, flags);
	while ((arg = va_arg(ap, const char *))) {
		if (n + 1 >= STORAGE_JOB_MAX_ARGS) {
			r = -E2BIG;
			break;
		}
		if (!(st->argv[n++] = strdup(arg))) {
			r = -ENOMEM;
			break;
		}
	}
	va_end(ap);
	return r;
}

/* Creates the temporary file that reserves the operation's place in the pool. */
int storage_job_make_tmp(struct storage_job *op, struct mv_error *err)
{
	for (int attempt = 0; attempt < 16; attempt++) {
		uint32_t rnd;
		char *tmp;
		int fd;

		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint32_t)clock_real_us() ^ (uint32_t)attempt;
		if (asprintf(&tmp, STORAGE_TMP_PREFIX "%s-%08" PRIx32, op->name, rnd) < 0)
			return mv_err_internal(err, -ENOMEM, "volume '%s': out of memory",
					       op->name);
		fd = openat(op->pool->dir_fd, tmp,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
		if (fd >= 0) {
			close(fd);
			op->tmp = tmp;
			return 0;
		}
		free(tmp);
		if (errno != EEXIST)
			return mv_err_internal(err, -errno,
					       "pool '%s': cannot create a file in %s: %m",
					       op->pool->name, op->pool->path);
	}
	return mv_err_exists(err, "pool '%s': cannot find a free temporary name", op->pool->name);
}

char *storage_job_tmp_path(struct storage_job *op)
{
	return storage_pool_file(op->pool, op->tmp);
}

/* ---- completion ---- */

static void op_finish(struct storage_job *op, const struct storage_volume_info *vol,
		      const struct mv_error *err)
{
	storage_done_fn done = op->cancelled ? NULL : op->done;

	op->cancelled = true; /* no callback from here on, whatever done does */
	if (done)
		done(op->userdata, vol, err);
	storage_job_free(op);
}

static void op_fail(struct storage_job *op, enum mv_error_kind kind, int code, const char *fmt, ...)
	_printf_(4, 5);
static void op_fail(struct storage_job *op, enum mv_error_kind kind, int code, const char *fmt, ...)
{
	struct mv_error err = {0};
	char msg[MV_ERROR_MAX];
	va_list ap;

	errno = code < 0 ? -code : code; /* for %m */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mv_err_kind(&err, kind, code, "volume '%s': %s", op->name, msg);
	storage_job_remove_tmp(op);
	op_finish(op, NULL, &err);
}

static void op_succeed(struct storage_job *op)
{
	struct storage_volume_info info;
	struct mv_error err = {0};
	int r;

	if ((r = storage_volume_info_fill(op->s, op->vol, &info)) < 0) {
		mv_err_internal(&err, r, "volume '%s': %m", op->name);
		op_finish(op, NULL, &err);
		return;
	}
	op_finish(op, &info, &err);
	storage_volume_info_done(&info);
}

static int on_defer(sd_event_source *source, void *userdata)
{
	(void)source;
	op_succeed(userdata);
	return 0;
}

/* For work done synchronously: done runs from the loop, never inside the initiating call. */
int storage_job_defer_success(struct storage_job *op, struct mv_error *err)
{
	int r = sd_event_add_defer(op->s->event, &op->defer, on_defer, op);

	if (r < 0)
		return mv_err_internal(err, r, "volume '%s': %m", op->name);
	return 0;
}

static int sync_file(int dir_fd, const char *leaf)
{
	_cleanup_close_ int fd = openat(dir_fd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/* The temporary file becomes the volume: synced, renamed (never over anything), row written,
 * registered. On failure nothing is left. */
int storage_job_commit(struct storage_job *op, struct mv_error *err)
{
	struct storage *s = op->s;
	struct volume_record rec = {0};
	struct storage_volume *v;
	int r;

	if ((r = sync_file(op->pool->dir_fd, op->tmp)) < 0)
		return mv_err_internal(err, r, "volume '%s': cannot sync its file: %m", op->name);
	if (renameat2(op->pool->dir_fd, op->tmp, op->pool->dir_fd, op->name, RENAME_NOREPLACE) < 0)
		return mv_err_internal(err, -errno,
				       "volume '%s': cannot rename its file into place: %m",
				       op->name);
	free(op->tmp);
	op->tmp = NULL;
	(void)fsync(op->pool->dir_fd);

	rec.format = op->format;
	rec.created_at_us = clock_real_us();
	if (!(rec.name = strdup(op->name)) || !(rec.pool = strdup(op->pool->name)) ||
	    (op->backing && !(rec.backing = strdup(op->backing)))) {
		r = mv_err_internal(err, -ENOMEM, "volume '%s': out of memory", op->name);
		goto fail;
	}
	if ((r = store_volume_save(s->store, &rec, err)) < 0)
		goto fail;
	if ((r = storage_register(s, &rec, op->pool)) < 0) {
		(void)store_volume_delete(s->store, op->name, NULL);
		r = mv_err_internal(err, r, "volume '%s': out of memory", op->name);
		goto fail;
	}
	v = storage_find(s, op->name);
	storage_job_hold(&op->vol, v);
	return 0;
fail:
	store_volume_record_done(&rec);
	(void)unlinkat(op->pool->dir_fd, op->name, 0);
	return r;
}

/* ---- child processes ---- */

static int tool_errno(const char *msg)
{
	if (strstr(msg, "No space left on device"))
		return -ENOSPC;
	if (strstr(msg, "Disk quota exceeded"))
		return -EDQUOT;
	return -EIO;
}

/* A full disk is a resource running out, anything else a fault of the host. */
static enum mv_error_kind tool_kind(int code)
{
	return code == -ENOSPC || code == -EDQUOT ? MV_ERR_EXHAUSTED : MV_ERR_INTERNAL;
}

/* "    (12.34/100%)": the progress in hundredths of a percent, or -1. */
static int parse_progress(const char *line)
{
	unsigned whole = 0, frac = 0;
	char end = 0;

	while (*line == ' ')
		line++;
	if (sscanf(line, "(%3u.%2u/100%c", &whole, &frac, &end) != 3 || end != '%' || whole > 100)
		return -1;
	return (int)(whole * 100 + frac);
}

static void op_line(struct storage_job *op)
{
	const struct storage_job_step *st = &op->steps[op->step];
	int hundredths;

	op->line[op->line_len] = '\0';
	op->line_len = 0;
	if ((st->flags & STORAGE_STEP_PROGRESS) && (hundredths = parse_progress(op->line)) >= 0) {
		uint64_t t = op->total;
		uint64_t done = t / 10000 * (uint64_t)hundredths + t % 10000 * hundredths / 10000;

		if (done != op->reported && op->progress && !op->cancelled) {
			op->reported = done;
			op->progress(op->userdata, done, t);
		}
		return;
	}
	if (op->line[strspn(op->line, " \t")])
		snprintf(op->last_msg, sizeof(op->last_msg), "%s", op->line);
}

static void op_feed(struct storage_job *op, const char *buf, size_t n)
{
	size_t keep = MIN(n, OP_OUTPUT_MAX - op->out_len);

	memcpy(op->out + op->out_len, buf, keep);
	op->out_len += keep;
	for (size_t i = 0; i < n && !op->cancelled; i++) {
		if (buf[i] == '\r' || buf[i] == '\n')
			op_line(op);
		else if (op->line_len + 1 < sizeof(op->line))
			op->line[op->line_len++] = buf[i];
	}
}

/* Reads what the child wrote; false at end of file or on error. */
static bool op_read(struct storage_job *op)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(op->out_fd, buf, sizeof(buf));

		if (n > 0) {
			op_feed(op, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN;
	}
}

static int on_output(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	struct storage_job *op = userdata;

	(void)fd;
	(void)revents;
	if (!op_read(op))
		sd_event_source_set_enabled(source, SD_EVENT_OFF);
	return 0;
}

static int op_run_step(struct storage_job *op, struct mv_error *err);
static void op_complete(struct storage_job *op);

/* Checks the qemu-img info JSON of the result against what the operation made. */
static int op_check_info(struct storage_job *op, struct mv_error *err)
{
	const char *fmt = disk_format_name(op->format);
	struct json_object *o = NULL, *v;
	const char *backing = NULL;
	int64_t vsize = -1;
	int r = 0;

	op->out[op->out_len] = '\0';
	o = json_tokener_parse(op->out);
	if (!o || !json_object_is_type(o, json_type_object)) {
		r = mv_err_internal(err, -EIO, "volume '%s': qemu-img info printed no JSON object",
				    op->name);
		goto out;
	}
	if (json_object_object_get_ex(o, "virtual-size", &v))
		vsize = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "backing-filename", &v))
		backing = json_object_get_string(v);
	if (!json_object_object_get_ex(o, "format", &v) || !streq(json_object_get_string(v), fmt))
		r = mv_err_internal(err, -EIO, "volume '%s': qemu-img info: the image is not %s",
				    op->name, fmt);
	else if (vsize < 0 || (op->size && (uint64_t)vsize != op->size))
		r = mv_err_internal(err, -EIO,
				    "volume '%s': qemu-img info: virtual size %" PRId64
				    " instead of %" PRIu64,
				    op->name, vsize, op->size);
	else if (!op->backing_path != !backing || (backing && !streq(backing, op->backing_path)))
		r = mv_err_internal(err, -EIO,
				    "volume '%s': qemu-img info: backing file '%s' instead of '%s'",
				    op->name, strempty(backing), strempty(op->backing_path));
out:
	json_object_put(o);
	return r;
}

static void on_step_exit(void *userdata, const struct proc_exit *e)
{
	struct storage_job *op = userdata;
	const struct storage_job_step *st = &op->steps[op->step];
	struct mv_error err = {0};
	char how[128];

	if (op->out_fd >= 0)
		(void)op_read(op); /* the child is gone: all it wrote is in the pipe */
	if (op->line_len > 0)
		op_line(op);
	op_close_output(op);
	proc_free(op->proc);
	op->proc = NULL;
	if (op->cancelled) {
		storage_job_free(op);
		return;
	}
	if (!e->known || e->signal || e->code != 0) {
		int code = tool_errno(op->last_msg);

		proc_exit_describe(e, how, sizeof(how));
		op_fail(op, tool_kind(code), code, "%s %s%s%s", st->what, how,
			op->last_msg[0] ? ": " : "", op->last_msg);
		return;
	}
	if ((st->flags & STORAGE_STEP_INFO) && op_check_info(op, &err) < 0) {
		storage_job_remove_tmp(op);
		op_finish(op, NULL, &err);
		return;
	}
	if (++op->step == op->n_steps) {
		op_complete(op);
	} else if (op_run_step(op, &err) < 0) {
		storage_job_remove_tmp(op);
		op_finish(op, NULL, &err);
	}
}

/* Spawns the current step with its output on a pipe; the loop sees its output and its exit. */
static int op_run_step(struct storage_job *op, struct mv_error *err)
{
	struct storage_job_step *st = &op->steps[op->step];
	int fds[2], r;

	op->out_len = op->line_len = 0;
	op->last_msg[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) < 0)
		return mv_err_internal(err, -errno, "volume '%s': cannot create a pipe: %m",
				       op->name);
	/* Non-blocking on our side only: the child writes its progress normally. */
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
		r = -errno;
	else
		r = sd_event_add_io(op->s->event, &op->out_source, fds[0], EPOLLIN, on_output, op);
	if (r < 0) {
		close(fds[0]);
		close(fds[1]);
		return mv_err_internal(err, r, "volume '%s': cannot watch %s: %m", op->name,
				       st->what);
	}
	op->out_fd = fds[0];
	r = proc_spawn(op->s->event,
		       &(struct proc_spec){.path = st->argv[0], .argv = st->argv, .log_fd = fds[1]},
		       on_step_exit, op, &op->proc, err);
	close(fds[1]);
	if (r < 0) {
		op_close_output(op);
		mv_err_prefix(err, "volume '%s': ", op->name);
		return r;
	}
	return 0;
}

/* All steps succeeded. */
static void op_complete(struct storage_job *op)
{
	struct mv_error err = {0};

	if (op->kind != STORAGE_JOB_RESIZE && storage_job_commit(op, &err) < 0) {
		storage_job_remove_tmp(op);
		op_finish(op, NULL, &err);
		return;
	}
	if (op->kind == STORAGE_JOB_RESIZE && sync_file(op->pool->dir_fd, op->name) < 0) {
		op_fail(op, MV_ERR_INTERNAL, -errno, "cannot sync its file: %m");
		return;
	}
	op_succeed(op);
}

/* Starts the first step; on failure frees op and returns < 0 (done is not called). */
int storage_job_start(struct storage_job *op, struct mv_error *err)
{
	int r = op_run_step(op, err);

	if (r < 0) {
		storage_job_remove_tmp(op);
		storage_job_free(op);
	}
	return r;
}

void storage_job_cancel(struct storage_job *op)
{
	if (!op || op->cancelled)
		return;
	op->cancelled = true;
	if (op->kind == STORAGE_JOB_RESIZE)
		return; /* works in place: killing it could corrupt the image; it just ends */
	storage_job_remove_tmp(op);
	if (op->proc) {
		(void)proc_signal(op->proc, SIGKILL);
		return; /* freed when its exit is seen */
	}
	storage_job_free(op);
}

void storage_job_free_all(struct storage *s)
{
	while (s->ops) {
		struct storage_job *op = s->ops;

		if (op->proc) {
			pid_t pid = proc_get_id(op->proc)->pid;

			if (op->kind != STORAGE_JOB_RESIZE)
				(void)proc_signal(op->proc, SIGKILL);
			(void)waitpid(pid, NULL, 0);
		}
		storage_job_free(op);
	}
}
