/* See vm_disks.h. qcow2 images given by path may be overlays of any file the user names
 * (backing_files on, as the user could name that file directly); a volume gets backing_files
 * only when the storage manager made it an overlay of another volume. */
#include "vm/vm_disks.h"

#include <stdio.h>
#include <string.h>

#include "common/macro.h"
#include "model/validate.h"
#include "storage/storage.h"

#define FIELD_MAX 64

static enum mv_error_kind bad_kind(enum vm_disks_purpose purpose)
{
	return purpose == VM_DISKS_CREATE ? MV_ERR_INVALID : MV_ERR_PRECONDITION;
}

/* A file's identity, to find two names for the same disk. */
struct file_id {
	dev_t dev;
	ino_t ino;
	char field[FIELD_MAX];
};

/* Records the identity of path (of fd, when it is >= 0) as field's; fails when an earlier
 * disk is the same file. A path that cannot be stat()ed is left to the format check or the
 * hypervisor's error. */
static int note_disk(struct file_id *seen, size_t *n, const char *path, int fd, const char *field,
		     enum mv_error_kind bad, struct mv_error *err)
{
	struct stat st;

	if ((fd >= 0 ? fstat(fd, &st) : stat(path, &st)) < 0)
		return 0;
	for (size_t k = 0; k < *n; k++)
		if (seen[k].dev == st.st_dev && seen[k].ino == st.st_ino)
			return mv_err_kind(err, bad, -EINVAL, "%s: %s is the same disk as %s",
					   field, path, seen[k].field);
	seen[*n] = (struct file_id){.dev = st.st_dev, .ino = st.st_ino};
	snprintf(seen[*n].field, sizeof(seen[*n].field), "%s", field);
	(*n)++;
	return 0;
}

/* Writing to a volume that clones are backed by would corrupt every clone: such a volume is
 * only attached read-only. */
static int check_no_clones(struct storage *storage, const char *volume, const char *field,
			   struct mv_error *err)
{
	struct storage_volume_info info = {0};
	int r;

	r = storage_volume_get(storage, volume, &info, err);
	if (r < 0)
		return mv_err_prefix(err, "%s: ", field), r;
	if (info.clones && info.clones[0])
		r = mv_err_precondition(
			err, -EBUSY,
			"%s: volume '%s' is the backing of clone '%s'%s; writing to "
			"it would corrupt them: attach it read-only",
			field, volume, info.clones[0], info.clones[1] ? " and others" : "");
	storage_volume_info_done(&info);
	return r;
}

static int resolve_volume(struct storage *storage, const struct vm_config *c, size_t i,
			  enum vm_disks_purpose purpose, struct ch_disk *d, char **owned,
			  struct mv_error *err)
{
	const struct vm_disk *dk = &c->disks[i];
	enum mv_error_kind bad = bad_kind(purpose);
	char field[FIELD_MAX];
	bool backing = false;
	int r;

	snprintf(field, sizeof(field), "config.disks[%zu].volume", i);
	if (!storage)
		return mv_err_kind(err, bad, -ENOENT,
				   "%s: volume '%s' not found (this mvirt-vmm has no volumes)",
				   field, dk->volume);
	for (size_t k = 0; k < i; k++)
		if (!isempty(c->disks[k].volume) && streq(c->disks[k].volume, dk->volume))
			return mv_err_kind(err, bad, -EINVAL,
					   "%s: volume '%s' is already config.disks[%zu]", field,
					   dk->volume, k);
	r = storage_volume_resolve(storage, dk->volume, bad, owned, &d->format, &backing, err);
	if (r < 0)
		return mv_err_prefix(err, "%s: ", field), r;
	d->path = *owned;
	d->readonly = dk->readonly;
	d->backing_files = backing && d->format == DISK_FORMAT_QCOW2;
	if (purpose == VM_DISKS_START && !d->readonly)
		return check_no_clones(storage, dk->volume, field, err);
	return 0;
}

/* A disk given by path (opened as fd, when it is >= 0): its format from the config or its
 * header. */
static int resolve_path(struct storage *storage, const char *path, int fd, enum disk_format format,
			const char *field, enum vm_disks_purpose purpose, struct ch_disk *d,
			struct mv_error *err)
{
	int r;

	if (purpose == VM_DISKS_CREATE && storage) {
		r = storage_check_disk_path(storage, path, field, err);
		if (r < 0)
			return r;
	}
	d->path = path;
	d->format = format;
	if (d->format == DISK_FORMAT_UNSPECIFIED) {
		r = fd >= 0 ? storage_detect_format_fd(fd, path, bad_kind(purpose), &d->format, err)
			    : storage_detect_format(path, bad_kind(purpose), &d->format, err);
		if (r < 0)
			return mv_err_prefix(err, "%s: ", field), r;
	}
	d->backing_files = d->format == DISK_FORMAT_QCOW2;
	return 0;
}

int vm_disks_resolve(struct storage *storage, const struct vm_config *c,
		     const struct vm_path_fds *fds, enum vm_disks_purpose purpose,
		     struct vm_disk_set *ret, struct mv_error *err)
{
	struct file_id seen[VM_MAX_DISKS + 1];
	enum mv_error_kind bad = bad_kind(purpose);
	size_t n_seen = 0;
	int r;

	*ret = (struct vm_disk_set){0};
	if (c->n_disks > VM_MAX_DISKS)
		return mv_err_kind(err, bad, -EINVAL, "config.disks: %zu disks, at most %d",
				   c->n_disks, VM_MAX_DISKS);
	ret->cap = c->n_disks + 2;
	ret->disks = calloc(ret->cap, sizeof(*ret->disks));
	ret->owned = calloc(ret->cap, sizeof(*ret->owned));
	ret->index = calloc(ret->cap, sizeof(*ret->index));
	if (!ret->disks || !ret->owned || !ret->index)
		return mv_err_oom(err);
	if (!isempty(c->disk)) {
		struct ch_disk *d = &ret->disks[ret->n];

		int fd = fds ? fds->disk : -1;

		ret->index[ret->n] = -1;
		r = resolve_path(storage, c->disk, fd, DISK_FORMAT_UNSPECIFIED, "config.disk",
				 purpose, d, err);
		if (r < 0)
			return r;
		r = note_disk(seen, &n_seen, d->path, fd, "config.disk", bad, err);
		if (r < 0)
			return r;
		ret->n++;
	}
	for (size_t i = 0; i < c->n_disks; i++) {
		const struct vm_disk *dk = &c->disks[i];
		struct ch_disk *d = &ret->disks[ret->n];
		char field[FIELD_MAX];
		int fd = -1;

		ret->index[ret->n] = (ssize_t)i;
		if (!isempty(dk->volume)) {
			snprintf(field, sizeof(field), "config.disks[%zu].volume", i);
			r = resolve_volume(storage, c, i, purpose, d, &ret->owned[ret->n], err);
		} else {
			snprintf(field, sizeof(field), "config.disks[%zu].path", i);
			fd = fds && i < VM_MAX_DISKS ? fds->disks[i] : -1;
			r = resolve_path(storage, dk->path, fd, dk->format, field, purpose, d, err);
			d->readonly = dk->readonly;
		}
		if (r < 0)
			return r;
		r = note_disk(seen, &n_seen, d->path, fd, field, bad, err);
		if (r < 0)
			return r;
		ret->n++;
	}
	return 0;
}

int vm_disk_set_append(struct vm_disk_set *set, char *path, enum disk_format format, bool readonly)
{
	if (set->n >= set->cap)
		return -ENOSPC;
	set->owned[set->n] = path;
	set->index[set->n] = -1;
	set->disks[set->n] = (struct ch_disk){.path = path, .format = format, .readonly = readonly};
	set->n++;
	return 0;
}

void vm_disk_set_done(struct vm_disk_set *set)
{
	for (size_t i = 0; set->owned && i < set->cap; i++)
		free(set->owned[i]);
	free(set->owned);
	free(set->disks);
	free(set->index);
	*set = (struct vm_disk_set){0};
}

static bool same_file(const char *path, const struct stat *vol_st)
{
	struct stat st;

	return vol_st && !isempty(path) && stat(path, &st) == 0 && st.st_dev == vol_st->st_dev &&
	       st.st_ino == vol_st->st_ino;
}

bool vm_disks_use_volume(const struct vm_config *c, const char *volume, const struct stat *vol_st)
{
	for (size_t i = 0; i < c->n_disks; i++) {
		const struct vm_disk *d = &c->disks[i];

		if (!isempty(d->volume) && streq(d->volume, volume))
			return true;
		if (isempty(d->volume) && same_file(d->path, vol_st))
			return true;
	}
	return same_file(c->disk, vol_st);
}
