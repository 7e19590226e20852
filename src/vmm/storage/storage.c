/* The storage manager (see storage.h): the registry of volumes, queries, delete, the resolution
 * of VM disks that name a volume, volume names, and image formats read from headers only
 * (parsed by image.c).
 *
 * Invariants: every volume in the registry has a row in the store (rows are written before a
 * volume is registered and deleted before it is dropped); volume files are only ever opened,
 * renamed or removed relative to their pool's directory fd with O_NOFOLLOW; a volume that an
 * operation works on (busy) is not deleted. Callers: the API (api_volume.c), the VM manager
 * (resolve, detect_format), the other storage_*.c files. Runs on the event loop; silent. */
#include "storage/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/strv.h"
#include "model/validate.h"
#include "storage/image.h"
#include "storage/storage_internal.h"

#define LIST_MSG_MAX 512 /* names listed in an error message */

const char *storage_strerror(int e)
{
	const char *d = strerrordesc_np(e);

	return d ? d : "unknown error";
}

/* Reads up to size bytes at offset 0, retrying short reads and EINTR; returns the number of
 * bytes read (less than size only at end of file) or -errno. */
static ssize_t read_head(int fd, uint8_t *buf, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pread(fd, buf + done, size - done, (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* The header of an open image, read and parsed (image.c): 0, -EPROTONOSUPPORT (see
 * image_header_parse) or -errno from reading. */
static int read_header(int fd, struct image_header *ret)
{
	uint8_t head[IMAGE_HEADER_PEEK];
	ssize_t n = read_head(fd, head, sizeof(head));

	if (n < 0)
		return (int)n;
	return image_header_parse(head, (size_t)n, ret);
}

/* Opens path, which messages call shown. */
static int detect_format(const char *path, const char *shown, enum disk_format *ret,
			 struct mv_error *err)
{
	_cleanup_close_ int fd = -1;
	struct image_header h;
	struct stat st;
	int r;

	/* O_NONBLOCK: a FIFO must not hang the caller; it has no effect on files and disks. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return mv_err_internal(err, -errno, "%s: %s", shown, storage_strerror(errno));
	if (fstat(fd, &st) < 0)
		return mv_err_internal(err, -errno, "%s: %s", shown, storage_strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return mv_err_invalid(err, "%s: not a regular file or block device", shown);
	r = read_header(fd, &h);
	if (r == -EPROTONOSUPPORT)
		return mv_err_invalid(err, "%s: qcow2 version %" PRIu32 " is not supported", shown,
				      h.qcow2_version);
	if (r < 0)
		return mv_err_internal(err, r, "%s: %s", shown, storage_strerror(-r));
	*ret = h.format;
	return 0;
}

static int detect(const char *path, const char *shown, enum mv_error_kind bad,
		  enum disk_format *ret, struct mv_error *err)
{
	struct mv_error e = {0};
	int r = detect_format(path, shown, ret, &e);

	if (r < 0)
		return mv_err_kind(err, e.code == -ENOMEM ? MV_ERR_INTERNAL : bad, r, "%s", e.msg);
	return 0;
}

int storage_detect_format(const char *path, enum mv_error_kind bad, enum disk_format *ret,
			  struct mv_error *err)
{
	return detect(path, path, bad, ret, err);
}

int storage_detect_format_fd(int fd, const char *shown, enum mv_error_kind bad,
			     enum disk_format *ret, struct mv_error *err)
{
	char link[32];

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	return detect(link, shown, bad, ret, err);
}

int storage_image_size(int fd, enum disk_format format, uint64_t *ret)
{
	struct image_header h;
	struct stat st;
	uint64_t size;
	int r;

	if (format == DISK_FORMAT_QCOW2) {
		r = read_header(fd, &h);
		if (r < 0 && r != -EPROTONOSUPPORT)
			return r;
		if (r < 0 || h.format != DISK_FORMAT_QCOW2 || !h.size_known)
			return -EBADMSG;
		*ret = h.virtual_size;
		return 0;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0)
			return -errno;
		*ret = size;
		return 0;
	}
	*ret = (uint64_t)st.st_size;
	return 0;
}

int storage_check_name(const char *name, size_t len, const char *field, struct mv_error *err)
{
	if (name && memchr(name, '\0', len))
		return mv_err_invalid(err, "%s: contains a NUL byte", field);
	if (name && len > VM_NAME_MAX)
		return mv_err_invalid(err, "%s: is too long (%zu characters, at most %d)", field,
				      len, VM_NAME_MAX);
	return validate_vm_name(name, field, err);
}

char *storage_pool_file(const struct storage_pool *pool, const char *leaf)
{
	char *p;

	return asprintf(&p, "%s/%s", pool->path, leaf) < 0 ? NULL : p;
}

/* ---- registry ---- */

struct storage_volume *storage_find(struct storage *s, const char *name)
{
	for (size_t i = 0; name && i < s->n_vols; i++)
		if (streq(s->vols[i]->rec.name, name))
			return s->vols[i];
	return NULL;
}

int storage_lookup(struct storage *s, const char *name, const char *field,
		   struct storage_volume **ret, struct mv_error *err)
{
	struct storage_volume *v;
	int r;

	if ((r = storage_check_name(name, name ? strlen(name) : 0, field, err)) < 0)
		return r;
	v = storage_find(s, name);
	if (!v)
		return mv_err_not_found(err, "volume '%s' not found", name);
	*ret = v;
	return 0;
}

int storage_pool_lookup(struct storage *s, const char *name, struct storage_pool **ret,
			struct mv_error *err)
{
	char names[LIST_MSG_MAX] = "";
	size_t len = 0;

	if (isempty(name))
		name = STORAGE_DEFAULT_POOL;
	for (size_t i = 0; i < s->n_pools; i++)
		if (streq(s->pools[i].name, name)) {
			*ret = &s->pools[i];
			return 0;
		}
	for (size_t i = 0; i < s->n_pools && len < sizeof(names); i++) {
		int n = snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "",
				 s->pools[i].name);
		len += n > 0 ? (size_t)n : 0;
	}
	return mv_err_not_found(err, "pool '%s' not found (pools: %s)", name, names);
}

int storage_register(struct storage *s, struct volume_record *rec, struct storage_pool *pool)
{
	struct storage_volume **p, *v;
	size_t at = 0;

	p = reallocarray(s->vols, s->n_vols + 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	s->vols = p;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->rec = *rec;
	*rec = (struct volume_record){0};
	v->pool = pool;
	while (at < s->n_vols && strcmp(s->vols[at]->rec.name, v->rec.name) < 0)
		at++;
	memmove(&s->vols[at + 1], &s->vols[at], (s->n_vols - at) * sizeof(*p));
	s->vols[at] = v;
	s->n_vols++;
	return 0;
}

void storage_volume_free(struct storage_volume *v)
{
	if (!v)
		return;
	store_volume_record_done(&v->rec);
	free(v);
}

static void unregister(struct storage *s, struct storage_volume *v)
{
	for (size_t i = 0; i < s->n_vols; i++)
		if (s->vols[i] == v) {
			memmove(&s->vols[i], &s->vols[i + 1], (s->n_vols - i - 1) * sizeof(v));
			s->n_vols--;
			break;
		}
	storage_volume_free(v);
}

int storage_check_users(struct storage *s, const char *name, bool running_only, const char *action,
			struct mv_error *err)
{
	char **users = NULL;
	char list[LIST_MSG_MAX];
	int r;

	if (!s->users_fn)
		return 0;
	r = s->users_fn(s->users_data, name, running_only, &users);
	if (r < 0)
		return mv_err_internal(err, r, "volume '%s': cannot tell which VMs use it: %s",
				       name, storage_strerror(-r));
	if (users && users[0]) {
		strv_join(users, list, sizeof(list));
		r = mv_err_precondition(
			err, -EBUSY, "volume '%s' is used by %s VM%s %s; cannot %s it", name,
			running_only ? "running" : "the", users[1] ? "s" : "", list, action);
	}
	strv_free(users);
	return r;
}

/* ---- volume files ---- */

static int volume_open(const struct storage_volume *v)
{
	return openat(v->pool->dir_fd, v->rec.name,
		      O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

void storage_volume_status(const struct storage_volume *v, char *buf, size_t size,
			   uint64_t *ret_virtual, uint64_t *ret_allocated)
{
	_cleanup_close_ int fd = -1;
	struct image_header h;
	struct stat st;
	int r;

	*ret_virtual = *ret_allocated = 0;
	if (!v->pool) {
		snprintf(buf, size, "pool '%s' is not configured", v->rec.pool);
		return;
	}
	fd = volume_open(v);
	if (fd < 0) {
		if (errno == ENOENT)
			snprintf(buf, size, "file missing");
		else if (errno == ELOOP)
			snprintf(buf, size, "file is a symlink (refused)");
		else
			snprintf(buf, size, "cannot open file: %s", storage_strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(buf, size, "not a regular file");
		return;
	}
	*ret_allocated = (uint64_t)st.st_blocks * 512;
	r = read_header(fd, &h);
	if (r == 0 && h.format != v->rec.format) {
		snprintf(buf, size, "file is %s, not %s", disk_format_name(h.format),
			 disk_format_name(v->rec.format));
		return;
	}
	if (r < 0 || storage_image_size(fd, v->rec.format, ret_virtual) < 0) {
		snprintf(buf, size, "cannot read the image header");
		return;
	}
	snprintf(buf, size, "ok");
}

void storage_volume_info_done(struct storage_volume_info *v)
{
	if (!v)
		return;
	free(v->name);
	free(v->pool);
	free(v->path);
	free(v->backing);
	strv_free(v->backing_chain);
	strv_free(v->used_by);
	strv_free(v->clones);
	free(v->status);
	memset(v, 0, sizeof(*v));
}

int storage_volume_info_fill(struct storage *s, const struct storage_volume *vol,
			     struct storage_volume_info *ret)
{
	struct storage_volume_info info = {0};
	const struct storage_volume *b = vol;
	size_t n_chain = 0, n_clones = 0;
	char status[256];
	int r = -ENOMEM;

	storage_volume_status(vol, status, sizeof(status), &info.virtual_size,
			      &info.allocated_bytes);
	info.format = vol->rec.format;
	info.created_at_us = vol->rec.created_at_us;
	if (!(info.name = strdup(vol->rec.name)) || !(info.pool = strdup(vol->rec.pool)) ||
	    !(info.status = strdup(status)) ||
	    !(info.path = vol->pool ? storage_pool_file(vol->pool, vol->rec.name) : strdup("")) ||
	    (vol->rec.backing && !(info.backing = strdup(vol->rec.backing))))
		goto fail;
	/* The chain is bounded by the number of volumes, whatever the rows say. */
	for (size_t depth = 0; b && b->rec.backing && depth < s->n_vols; depth++) {
		if (strv_push(&info.backing_chain, &n_chain, b->rec.backing) < 0)
			goto fail;
		b = storage_find(s, b->rec.backing);
	}
	for (size_t i = 0; i < s->n_vols; i++)
		if (s->vols[i]->rec.backing && streq(s->vols[i]->rec.backing, vol->rec.name) &&
		    strv_push(&info.clones, &n_clones, s->vols[i]->rec.name) < 0)
			goto fail;
	if (s->users_fn &&
	    (r = s->users_fn(s->users_data, vol->rec.name, false, &info.used_by)) < 0)
		goto fail;
	*ret = info;
	return 0;
fail:
	storage_volume_info_done(&info);
	return r;
}

/* ---- queries and delete ---- */

int storage_volume_get(struct storage *s, const char *name, struct storage_volume_info *ret,
		       struct mv_error *err)
{
	struct storage_volume *v;
	int r;

	if ((r = storage_lookup(s, name, "name", &v, err)) < 0)
		return r;
	if ((r = storage_volume_info_fill(s, v, ret)) < 0)
		return mv_err_internal(err, r, "volume '%s': %s", name, storage_strerror(-r));
	return 0;
}

int storage_volume_list(struct storage *s, const char *pool, struct storage_volume_info **ret,
			size_t *ret_n, char ***ret_unknown_files, struct mv_error *err)
{
	struct storage_volume_info *infos = NULL;
	struct storage_pool *p = NULL;
	char **unknown = NULL;
	size_t n = 0, n_unknown = 0;
	struct stat st;
	int r;

	if (!isempty(pool) && (r = storage_pool_lookup(s, pool, &p, err)) < 0)
		return r;
	if (s->n_vols > 0 && !(infos = calloc(s->n_vols, sizeof(*infos))))
		goto oom;
	for (size_t i = 0; i < s->n_vols; i++) {
		if (p && s->vols[i]->pool != p)
			continue;
		if ((r = storage_volume_info_fill(s, s->vols[i], &infos[n])) < 0)
			goto fail;
		n++;
	}
	for (size_t i = 0; i < s->n_unknown; i++) {
		const struct storage_unknown *u = &s->unknown[i];
		_cleanup_free_ char *path = NULL;

		if ((p && u->pool != p) ||
		    fstatat(u->pool->dir_fd, u->leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!(path = storage_pool_file(u->pool, u->leaf)) ||
		    strv_push(&unknown, &n_unknown, path) < 0)
			goto oom;
	}
	*ret = infos;
	*ret_n = n;
	*ret_unknown_files = unknown;
	return 0;
oom:
	r = -ENOMEM;
fail:
	for (size_t i = 0; i < n; i++)
		storage_volume_info_done(&infos[i]);
	free(infos);
	strv_free(unknown);
	return mv_err_internal(err, r, "listing volumes: %s", storage_strerror(-r));
}

int storage_volume_delete(struct storage *s, const char *name, struct mv_error *err)
{
	struct storage_volume *v;
	char **clones = NULL;
	size_t n_clones = 0;
	char list[LIST_MSG_MAX];
	int r;

	if ((r = storage_lookup(s, name, "name", &v, err)) < 0)
		return r;
	if (v->busy)
		return mv_err_precondition(err, -EBUSY,
					   "volume '%s': an operation on it is in progress", name);
	if ((r = storage_check_users(s, name, false, "delete", err)) < 0)
		return r;
	for (size_t i = 0; i < s->n_vols; i++)
		if (s->vols[i]->rec.backing && streq(s->vols[i]->rec.backing, name) &&
		    strv_push(&clones, &n_clones, s->vols[i]->rec.name) < 0) {
			strv_free(clones);
			return mv_err_internal(err, -ENOMEM, "volume '%s': out of memory", name);
		}
	if (n_clones > 0) {
		strv_join(clones, list, sizeof(list));
		strv_free(clones);
		return mv_err_precondition(
			err, -EBUSY, "volume '%s' is the backing volume of %s; delete %s first",
			name, list, n_clones > 1 ? "those clones" : "that clone");
	}
	/* The row goes first: a crash in between leaves a file without a row (reported at the
	 * next start), never a row whose data is gone. */
	if ((r = store_volume_delete(s->store, name, err)) < 0)
		return r;
	if (v->pool && unlinkat(v->pool->dir_fd, name, 0) < 0 && errno != ENOENT) {
		r = -errno;
		if (store_volume_save(s->store, &v->rec, NULL) < 0)
			unregister(s, v); /* the row is gone: so is the volume */
		return mv_err_internal(err, r, "volume '%s': cannot remove its file: %s", name,
				       storage_strerror(-r));
	}
	if (v->pool)
		(void)fsync(v->pool->dir_fd);
	unregister(s, v);
	return 0;
}

/* ---- VM disks ---- */

int storage_volume_usable(const struct storage_volume *v, enum mv_error_kind bad,
			  struct mv_error *err)
{
	uint64_t vsize, alloc;
	char status[256];

	storage_volume_status(v, status, sizeof(status), &vsize, &alloc);
	if (!streq(status, "ok"))
		return mv_err_kind(err, bad, -ENOENT, "volume '%s' cannot be used: %s", v->rec.name,
				   status);
	return 0;
}

int storage_volume_resolve(struct storage *s, const char *name, enum mv_error_kind bad,
			   char **ret_path, enum disk_format *ret_format, bool *ret_has_backing,
			   struct mv_error *err)
{
	struct storage_volume *v;
	char *path;
	int r;

	if ((r = storage_check_name(name, name ? strlen(name) : 0, "volume", err)) < 0)
		return r;
	if (!(v = storage_find(s, name)))
		return mv_err_kind(err, bad, -ENOENT, "volume '%s' not found", name);
	if (v->busy)
		return mv_err_precondition(err, -EBUSY,
					   "volume '%s': an operation on it is in progress", name);
	if ((r = storage_volume_usable(v, bad, err)) < 0)
		return r;
	if (!(path = storage_pool_file(v->pool, name)))
		return mv_err_internal(err, -ENOMEM, "volume '%s': out of memory", name);
	*ret_path = path;
	*ret_format = v->rec.format;
	*ret_has_backing = v->rec.backing != NULL;
	return 0;
}
