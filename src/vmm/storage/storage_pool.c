/* The storage manager's pools (see storage.h): opening them at start, loading the volumes and
 * reconciling them with the files (storage_new, the only part that logs: what it finds),
 * storage_free, and the check that a raw VM disk path inside a pool is one of its volumes.
 * Callers: the daemon (new/free), the VM manager (check_disk_path). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/macro.h"
#include "model/validate.h"
#include "os/proc.h"
#include "storage/storage_job.h"

/* The pool whose directory is path or one of its parents, and the first component below it
 * (NULL when path is the directory itself). Compares device and inode, so bind mounts and
 * symlinked spellings of a pool are recognized too. */
struct storage_pool *storage_pool_containing(struct storage *s, const char *path,
					     const char **ret_leaf)
{
	_cleanup_free_ char *p = strdup(path);
	const char *leaf = NULL;
	struct stat st;
	char *slash;

	while (p && *p) {
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			for (size_t i = 0; i < s->n_pools; i++)
				if (s->pools[i].dev == st.st_dev && s->pools[i].ino == st.st_ino) {
					if (ret_leaf)
						*ret_leaf = leaf ? path + (leaf - p) : NULL;
					return &s->pools[i];
				}
		slash = strrchr(p, '/');
		if (!slash)
			break;
		*slash = '\0';
		leaf = slash + 1;
	}
	return NULL;
}

size_t storage_n_pools(const struct storage *s)
{
	return s->n_pools;
}

const char *storage_pool_path(const struct storage *s, size_t i)
{
	return i < s->n_pools ? s->pools[i].path : NULL;
}

void storage_set_path_policy(struct storage *s, const struct path_policy *policy)
{
	s->paths = policy;
}

int storage_check_disk_path(struct storage *s, const char *path, const char *field,
			    struct mv_error *err)
{
	_cleanup_free_ char *real = NULL;
	struct storage_pool *pool;
	struct storage_volume *v;
	const char *leaf = NULL;
	struct stat st, vst;
	size_t len;

	if (isempty(path) || !(real = realpath(path, NULL)))
		return 0; /* validation reports paths that do not exist */
	pool = storage_pool_containing(s, real, &leaf);
	if (pool) {
		len = leaf ? strcspn(leaf, "/") : 0;
		v = leaf && !leaf[len] ? storage_find(s, leaf) : NULL;
		if (!v || v->pool != pool)
			return mv_err_invalid(
				err,
				"%s: %s lies in storage pool '%s' but is not one of its "
				"volumes",
				field, path, pool->name);
		return 0;
	}
	/* Elsewhere, but the same file as a volume (a hard link): it must be named as such. */
	if (stat(real, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	for (size_t i = 0; i < s->n_vols; i++) {
		v = s->vols[i];
		if (v->pool &&
		    fstatat(v->pool->dir_fd, v->rec.name, &vst, AT_SYMLINK_NOFOLLOW) == 0 &&
		    vst.st_dev == st.st_dev && vst.st_ino == st.st_ino)
			return mv_err_invalid(
				err,
				"%s: %s is a link to volume '%s' of pool '%s'; use the "
				"volume instead",
				field, path, v->rec.name, v->pool->name);
	}
	return 0;
}

/* ---- start: pools and reconciliation ---- */

static int pool_open(struct storage *s, const struct storage_pool_config *cfg, struct mv_error *err)
{
	struct storage_pool *pool = &s->pools[s->n_pools];
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if ((r = validate_vm_name(cfg->name, "pool name", err)) < 0)
		return r;
	if (!cfg->path || cfg->path[0] != '/')
		return mv_err_invalid(err, "pool '%s': path '%s' must be absolute", cfg->name,
				      strempty(cfg->path));
	for (size_t i = 0; i < s->n_pools; i++)
		if (streq(s->pools[i].name, cfg->name))
			return mv_err_invalid(err, "pool '%s' is configured twice", cfg->name);
	if ((r = mkdir_parents(cfg->path, 0700)) < 0)
		return mv_err_internal(err, r, "pool '%s': cannot create %s: %s", cfg->name,
				       cfg->path, storage_strerror(-r));
	fd = open(cfg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return mv_err_internal(err, -errno, "pool '%s': cannot open %s: %s", cfg->name,
				       cfg->path, storage_strerror(errno));
	*pool = (struct storage_pool){.dir_fd = -1, .dev = st.st_dev, .ino = st.st_ino};
	if (!(pool->name = strdup(cfg->name)) || !(pool->path = realpath(cfg->path, NULL))) {
		free(pool->name);
		return mv_err_internal(err, -ENOMEM, "pool '%s': out of memory", cfg->name);
	}
	pool->dir_fd = TAKE_FD(fd);
	s->n_pools++;
	for (size_t i = 0; i + 1 < s->n_pools; i++) {
		const char *a = s->pools[i].path, *b = pool->path;
		size_t la = strlen(a), lb = strlen(b);

		if ((la <= lb && !strncmp(a, b, la) && (b[la] == '/' || !b[la] || la == 1)) ||
		    (lb < la && !strncmp(a, b, lb) && (a[lb] == '/' || lb == 1)))
			return mv_err_invalid(err, "pools '%s' (%s) and '%s' (%s) overlap",
					      s->pools[i].name, a, pool->name, b);
	}
	return 0;
}

static int note_unknown(struct storage *s, struct storage_pool *pool, const char *leaf)
{
	struct storage_unknown *u = reallocarray(s->unknown, s->n_unknown + 1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	s->unknown = u;
	u[s->n_unknown] = (struct storage_unknown){.pool = pool, .leaf = strdup(leaf)};
	if (!u[s->n_unknown].leaf)
		return -ENOMEM;
	s->n_unknown++;
	log_warning("storage: %s/%s is not a volume (no row in the state database); "
		    "left alone, listed by ListVolumes",
		    pool->path, leaf);
	return 0;
}

/* Removes the ".tmp-" leftovers of interrupted operations and notes files that are not
 * volumes. */
static int pool_scan(struct storage *s, struct storage_pool *pool, struct mv_error *err)
{
	_cleanup_free_ char *tmp_prefix = NULL;
	DIR *d;
	struct dirent *de;
	int fd, r = 0;

	/* qemu-img or cp of a daemon that died mid-job still writes its temporary file (or is
	 * about to create it): gone first, or it would leave one after this scan. */
	if (asprintf(&tmp_prefix, "%s/%s", pool->path, STORAGE_TMP_PREFIX) < 0)
		return mv_err_oom(err);
	(void)proc_kill_strays_wait(NULL, tmp_prefix, 5000);

	fd = openat(pool->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return mv_err_internal(err, r, "pool '%s': cannot read %s: %s", pool->name,
				       pool->path, storage_strerror(-r));
	}
	while (r >= 0 && (errno = 0, de = readdir(d))) {
		struct storage_volume *v;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (startswith(de->d_name, STORAGE_TMP_PREFIX) && de->d_type != DT_DIR) {
			if (unlinkat(pool->dir_fd, de->d_name, 0) == 0)
				log_notice("storage: removed %s/%s, left over by an interrupted "
					   "operation",
					   pool->path, de->d_name);
			else
				log_warning_errno(errno, "storage: cannot remove %s/%s: %m",
						  pool->path, de->d_name);
			continue;
		}
		if (de->d_type == DT_DIR && streq(de->d_name, "lost+found"))
			continue;
		v = storage_find(s, de->d_name);
		if (!v || v->pool != pool)
			r = note_unknown(s, pool, de->d_name);
	}
	if (r == 0 && errno != 0)
		r = -errno;
	closedir(d);
	if (r < 0)
		return mv_err_internal(err, r, "pool '%s': scanning %s: %s", pool->name, pool->path,
				       storage_strerror(-r));
	(void)fsync(pool->dir_fd);
	return 0;
}

static int load_volumes(struct storage *s, struct mv_error *err)
{
	struct volume_record *recs = NULL;
	size_t n = 0, i;
	int r;

	if ((r = store_volume_load_all(s->store, &recs, &n, err)) < 0)
		return r;
	for (i = 0; i < n; i++) {
		struct storage_pool *pool = NULL;

		(void)storage_pool_lookup(s, recs[i].pool, &pool, NULL);
		if ((r = storage_register(s, &recs[i], pool)) < 0) {
			mv_err_internal(err, r, "loading volumes: out of memory");
			break;
		}
	}
	for (i = 0; i < n; i++)
		store_volume_record_done(&recs[i]);
	free(recs);
	return r;
}

static void log_volume_problems(struct storage *s)
{
	for (size_t i = 0; i < s->n_vols; i++) {
		char status[256];
		uint64_t vsize, alloc;

		storage_volume_status(s->vols[i], status, sizeof(status), &vsize, &alloc);
		if (!streq(status, "ok"))
			log_warning("storage: volume %s: %s; kept in the state database, "
				    "shown by ListVolumes",
				    s->vols[i]->rec.name, status);
	}
}

int storage_new(sd_event *event, struct store *store, const struct storage_pool_config *pools,
		size_t n_pools, struct storage **ret, struct mv_error *err)
{
	struct storage *s = calloc(1, sizeof(*s));
	int r;

	if (!s || (n_pools > 0 && !(s->pools = calloc(n_pools, sizeof(*s->pools))))) {
		free(s);
		return mv_err_internal(err, -ENOMEM, "storage: out of memory");
	}
	s->event = sd_event_ref(event);
	s->store = store;
	for (size_t i = 0; i < n_pools; i++)
		if ((r = pool_open(s, &pools[i], err)) < 0)
			goto fail;
	if ((r = load_volumes(s, err)) < 0)
		goto fail;
	for (size_t i = 0; i < s->n_pools; i++)
		if ((r = pool_scan(s, &s->pools[i], err)) < 0)
			goto fail;
	log_volume_problems(s);
	*ret = s;
	return 0;
fail:
	storage_free(s);
	return r;
}

void storage_free(struct storage *s)
{
	if (!s)
		return;
	storage_job_free_all(s);
	for (size_t i = 0; i < s->n_vols; i++)
		storage_volume_free(s->vols[i]);
	free(s->vols);
	for (size_t i = 0; i < s->n_unknown; i++)
		free(s->unknown[i].leaf);
	free(s->unknown);
	for (size_t i = 0; i < s->n_pools; i++) {
		free(s->pools[i].name);
		free(s->pools[i].path);
		if (s->pools[i].dir_fd >= 0)
			close(s->pools[i].dir_fd);
	}
	free(s->pools);
	sd_event_unref(s->event);
	free(s);
}

void storage_set_users_fn(struct storage *s, storage_users_fn fn, void *userdata)
{
	s->users_fn = fn;
	s->users_data = userdata;
}
