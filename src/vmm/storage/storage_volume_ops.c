/* The storage manager's operations (see storage.h): create, import, clone, resize. Each checks
 * its request, then builds a storage_job (storage_job.c) of child-process steps, or does the work
 * at once when no child is needed (a sparse raw file, growing one). Callers: api_volume.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "model/validate.h"
#include "storage/storage_job.h"

/* ---- the operations ---- */

static int check_size(uint64_t size, const char *field, struct mv_error *err)
{
	if (size < STORAGE_SIZE_MIN || size > STORAGE_SIZE_MAX)
		return mv_err_invalid(err, "%s: %" PRIu64 " is out of range (512 bytes to 64 TiB)",
				      field, size);
	if (size % 512)
		return mv_err_invalid(err, "%s: %" PRIu64 " is not a multiple of 512", field, size);
	return 0;
}

static int check_format(enum disk_format f, struct mv_error *err)
{
	if (f != DISK_FORMAT_UNSPECIFIED && f != DISK_FORMAT_RAW && f != DISK_FORMAT_QCOW2)
		return mv_err_invalid(err, "format: unknown value %d", (int)f);
	return 0;
}

static int create_raw(struct storage_job *op, struct mv_error *err)
{
	_cleanup_close_ int fd = -1;
	int r;

	fd = openat(op->pool->dir_fd, op->tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)op->size) < 0) {
		r = -errno;
		return mv_err_internal(err, r, "volume '%s': cannot size its file: %m", op->name);
	}
	if ((r = storage_job_commit(op, err)) < 0)
		return r;
	return storage_job_defer_success(op, err);
}

int storage_volume_create(struct storage *s, const char *name, uint64_t size,
			  enum disk_format format, const char *pool, storage_done_fn done,
			  void *userdata, struct mv_error *err)
{
	_cleanup_free_ char *tmp_path = NULL, *size_str = NULL;
	struct storage_pool *p;
	struct storage_job *op;
	int r;

	if ((r = storage_pool_lookup(s, pool, &p, err)) < 0 ||
	    (r = storage_name_available(s, name, "name", p, err)) < 0 ||
	    (r = check_size(size, "size_bytes", err)) < 0 || (r = check_format(format, err)) < 0)
		return r;
	if (!(op = storage_job_new(s, STORAGE_JOB_CREATE, p, name, done, userdata)))
		return mv_err_internal(err, -ENOMEM, "volume '%s': out of memory", name);
	op->size = size;
	op->format = format == DISK_FORMAT_QCOW2 ? DISK_FORMAT_QCOW2 : DISK_FORMAT_RAW;
	if ((r = storage_job_make_tmp(op, err)) < 0)
		goto fail;
	if (op->format == DISK_FORMAT_RAW) {
		if ((r = create_raw(op, err)) < 0)
			goto fail;
		return 0;
	}
	if (!(tmp_path = storage_job_tmp_path(op)) || asprintf(&size_str, "%" PRIu64, size) < 0 ||
	    storage_job_add_step(op, "qemu-img create", 0, STORAGE_QEMU_IMG, "create", "-q", "-f",
				 "qcow2", tmp_path, size_str, NULL) < 0 ||
	    storage_job_add_step(op, "qemu-img info", STORAGE_STEP_INFO, STORAGE_QEMU_IMG, "info",
				 "--output=json", "-f", "qcow2", tmp_path, NULL) < 0) {
		r = mv_err_internal(err, -ENOMEM, "volume '%s': out of memory", name);
		goto fail;
	}
	return storage_job_start(op, err);
fail:
	storage_job_remove_tmp(op);
	storage_job_free(op);
	return r;
}

int storage_volume_import(struct storage *s, const char *name, const char *source,
			  enum disk_format format, const char *pool, storage_progress_fn progress,
			  storage_done_fn done, void *userdata, struct storage_job **ret_op,
			  struct mv_error *err)
{
	_cleanup_free_ char *tmp_path = NULL;
	_cleanup_close_ int fd = -1;
	struct mv_error src_err = {0};
	enum disk_format src_format;
	_cleanup_free_ char *real = NULL;
	struct storage_pool *p, *in_pool;
	struct stat src_st;
	struct storage_job *op;
	uint64_t total = 0;
	int r;

	if ((r = storage_pool_lookup(s, pool, &p, err)) < 0 ||
	    (r = storage_name_available(s, name, "name", p, err)) < 0 ||
	    (r = check_format(format, err)) < 0)
		return r;
	if (isempty(source) || source[0] != '/')
		return mv_err_invalid(err, "source_path: '%s' is not an absolute path",
				      strempty(source));
	if ((r = validate_path(source, "source_path", PATH_DISK, s->paths, &src_st, err)) < 0)
		return r;
	if ((real = realpath(source, NULL)) && (in_pool = storage_pool_containing(s, real, NULL)))
		return mv_err_invalid(err,
				      "source_path: %s lies in storage pool '%s'; copy a volume "
				      "with CloneVolume",
				      source, in_pool->name);
	if (storage_detect_format(source, MV_ERR_INVALID, &src_format, &src_err) < 0)
		return mv_err_invalid(err, "source_path: %s", src_err.msg);
	fd = open(source, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || (r = storage_image_size(fd, src_format, &total)) < 0)
		return mv_err_invalid(err, "source_path: %s: cannot read its size: %s", source,
				      strerror(fd < 0 ? errno : -r));
	if (!(op = storage_job_new(s, STORAGE_JOB_IMPORT, p, name, done, userdata)))
		return mv_err_internal(err, -ENOMEM, "volume '%s': out of memory", name);
	op->format = format == DISK_FORMAT_UNSPECIFIED ? src_format : format;
	op->total = total;
	op->reported = UINT64_MAX; /* the first progress line is reported, 0 included */
	op->progress = progress;
	if ((r = storage_job_make_tmp(op, err)) < 0)
		goto fail;
	/* -f: the source is never probed by qemu-img; -t writeback: flushed before exit. */
	if (!(tmp_path = storage_job_tmp_path(op)) ||
	    storage_job_add_step(op, "qemu-img convert", STORAGE_STEP_PROGRESS, STORAGE_QEMU_IMG,
				 "convert", "-p", "-t", "writeback", "-f",
				 disk_format_name(src_format), "-O", disk_format_name(op->format),
				 source, tmp_path, NULL) < 0 ||
	    storage_job_add_step(op, "qemu-img info", STORAGE_STEP_INFO, STORAGE_QEMU_IMG, "info",
				 "--output=json", "-f", disk_format_name(op->format), tmp_path,
				 NULL) < 0) {
		r = mv_err_internal(err, -ENOMEM, "volume '%s': out of memory", name);
		goto fail;
	}
	if ((r = storage_job_start(op, err)) < 0)
		return r;
	if (ret_op)
		*ret_op = op;
	return 0;
fail:
	storage_job_remove_tmp(op);
	storage_job_free(op);
	return r;
}

int storage_volume_clone(struct storage *s, const char *source, const char *name,
			 storage_done_fn done, void *userdata, struct mv_error *err)
{
	_cleanup_free_ char *tmp_path = NULL, *src_path = NULL;
	struct storage_volume *src;
	struct storage_job *op;
	int r;

	if ((r = storage_lookup(s, source, "source", &src, err)) < 0)
		return r;
	if (!src->pool)
		return storage_volume_usable(src, MV_ERR_PRECONDITION, err);
	if ((r = storage_name_available(s, name, "name", src->pool, err)) < 0)
		return r;
	if (src->busy)
		return mv_err_precondition(
			err, -EBUSY, "volume '%s': an operation on it is in progress", source);
	if ((r = storage_volume_usable(src, MV_ERR_PRECONDITION, err)) < 0 ||
	    (r = storage_check_users(s, source, true, "clone", err)) < 0)
		return r;
	if (!(op = storage_job_new(s, STORAGE_JOB_CLONE, src->pool, name, done, userdata)))
		return mv_err_internal(err, -ENOMEM, "volume '%s': out of memory", name);
	storage_job_hold(&op->src, src);
	op->format = src->rec.format;
	if ((r = storage_job_make_tmp(op, err)) < 0)
		goto fail;
	r = -ENOMEM;
	if (!(tmp_path = storage_job_tmp_path(op)) ||
	    !(src_path = storage_pool_file(src->pool, source)))
		goto oom;
	if (src->rec.format == DISK_FORMAT_QCOW2) {
		if (!(op->backing = strdup(source)) || !(op->backing_path = strdup(src_path)) ||
		    storage_job_add_step(op, "qemu-img create", 0, STORAGE_QEMU_IMG, "create", "-q",
					 "-f", "qcow2", "-b", src_path, "-F", "qcow2", tmp_path,
					 NULL) < 0 ||
		    storage_job_add_step(op, "qemu-img info", STORAGE_STEP_INFO, STORAGE_QEMU_IMG,
					 "info", "--output=json", "-f", "qcow2", tmp_path,
					 NULL) < 0)
			goto oom;
	} else if (storage_job_add_step(op, "cp", 0, STORAGE_CP, "--reflink=auto",
					"--sparse=always", src_path, tmp_path, NULL) < 0 ||
		   storage_job_add_step(op, "sync", 0, STORAGE_SYNC, "--data", tmp_path, NULL) <
			   0) {
		goto oom;
	}
	return storage_job_start(op, err);
oom:
	r = mv_err_internal(err, -ENOMEM, "volume '%s': out of memory", name);
fail:
	storage_job_remove_tmp(op);
	storage_job_free(op);
	return r;
}

static int resize_raw(struct storage_job *op, struct mv_error *err)
{
	_cleanup_close_ int fd = -1;

	fd = openat(op->pool->dir_fd, op->name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)op->size) < 0 || fsync(fd) < 0)
		return mv_err_internal(err, -errno, "volume '%s': cannot resize its file: %m",
				       op->name);
	return storage_job_defer_success(op, err);
}

int storage_volume_resize(struct storage *s, const char *name, uint64_t size, storage_done_fn done,
			  void *userdata, struct mv_error *err)
{
	_cleanup_free_ char *path = NULL, *size_str = NULL;
	_cleanup_close_ int fd = -1;
	struct storage_volume *v;
	struct storage_job *op;
	uint64_t current;
	int r;

	if ((r = storage_lookup(s, name, "name", &v, err)) < 0 ||
	    (r = check_size(size, "size_bytes", err)) < 0 ||
	    (r = storage_volume_usable(v, MV_ERR_PRECONDITION, err)) < 0)
		return r;
	if (v->busy)
		return mv_err_precondition(err, -EBUSY,
					   "volume '%s': an operation on it is in progress", name);
	if ((r = storage_check_users(s, name, true, "resize", err)) < 0)
		return r;
	fd = openat(v->pool->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || (r = storage_image_size(fd, v->rec.format, &current)) < 0)
		return mv_err_internal(err, -EIO, "volume '%s': cannot read its size: %s", name,
				       strerror(fd < 0 ? errno : -r));
	if (size < current)
		return mv_err_invalid(err,
				      "size_bytes: %" PRIu64
				      " is smaller than the size of volume '%s' (%" PRIu64
				      "); shrinking is refused",
				      size, name, current);
	if (!(op = storage_job_new(s, STORAGE_JOB_RESIZE, v->pool, name, done, userdata)))
		return mv_err_internal(err, -ENOMEM, "volume '%s': out of memory", name);
	storage_job_hold(&op->vol, v);
	op->format = v->rec.format;
	op->size = size;
	if (size == current) {
		if ((r = storage_job_defer_success(op, err)) < 0)
			goto fail;
		return 0;
	}
	if (v->rec.format == DISK_FORMAT_RAW) {
		if ((r = resize_raw(op, err)) < 0)
			goto fail;
		return 0;
	}
	if (v->rec.backing && !(op->backing_path = storage_pool_file(v->pool, v->rec.backing)))
		goto oom;
	if (!(path = storage_pool_file(v->pool, name)) ||
	    asprintf(&size_str, "%" PRIu64, size) < 0 ||
	    storage_job_add_step(op, "qemu-img resize", 0, STORAGE_QEMU_IMG, "resize", "-q", "-f",
				 "qcow2", path, size_str, NULL) < 0 ||
	    storage_job_add_step(op, "qemu-img info", STORAGE_STEP_INFO, STORAGE_QEMU_IMG, "info",
				 "--output=json", "-f", "qcow2", path, NULL) < 0)
		goto oom;
	return storage_job_start(op, err);
oom:
	r = mv_err_internal(err, -ENOMEM, "volume '%s': out of memory", name);
fail:
	storage_job_free(op);
	return r;
}
