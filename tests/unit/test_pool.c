/* Component tests of the storage manager (storage*.c) against real pool
 * directories, a real state database and the real qemu-img/cp: volume name and path
 * confinement (traversal, absolute names, NUL, long names, symlinks in the pool pointing
 * outside, disk paths under a pool), the operations and their rules (clones, users, grow
 * only), disk full on a small tmpfs pool (root only), reconciliation after a simulated crash,
 * and cancellation of an import (no partial file, no child left). Each test gets a fresh
 * directory with a pool, a database and its own event loop. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "storage/storage.h"
#include "storage/storage_internal.h"
#include "store/store.h"

#define MiB (1024ULL * 1024)

struct fixture {
	char dir[64];
	char pool[96];
	char db[96];
	sd_event *event;
	struct store *store;
	struct storage *storage;
	/* fake VM manager: which VMs use which volume */
	const char *user_volume;
	const char *user_vm;
	bool user_running;
};

/* What a done callback saw. */
struct result {
	bool called;
	int code;
	char msg[MV_ERROR_MAX];
	char name[64];
	enum disk_format format;
	uint64_t virtual_size;
	char backing[64];
	unsigned progress_calls;
	uint64_t last_done, last_total;
	bool cancel_on_progress;
	struct storage_job *op;
};

static void xsystem(const char *fmt, ...) _printf_(1, 2);
static void xsystem(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

static int users_fn(void *userdata, const char *volume, bool running_only, char ***ret_names)
{
	struct fixture *f = userdata;
	char **v = calloc(2, sizeof(char *));

	if (!v)
		return -ENOMEM;
	if (f->user_volume && streq(volume, f->user_volume) && (!running_only || f->user_running))
		v[0] = strdup(f->user_vm);
	*ret_names = v;
	return 0;
}

static void open_storage(struct fixture *f)
{
	struct storage_pool_config pools[] = {{"default", f->pool}};
	struct mv_error err = {0};

	if (storage_new(f->event, f->store, pools, 1, &f->storage, &err) < 0)
		fail_msg("storage_new: %s", err.msg);
	storage_set_users_fn(f->storage, users_fn, f);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct mv_error err = {0};

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/mvirt-test-pool-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->pool, sizeof(f->pool), "%s/pool", f->dir);
	snprintf(f->db, sizeof(f->db), "%s/mvirt.db", f->dir);
	if (sd_event_new(&f->event) < 0 || store_open(f->db, &f->store, &err) < 0)
		return -1;
	open_storage(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	storage_free(f->storage);
	store_close(f->store);
	sd_event_unref(f->event);
	(void)umount2(f->pool, MNT_DETACH);
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", f->dir);
	free(f);
	return system(cmd) == 0 ? 0 : -1;
}

static void reopen(struct fixture *f)
{
	storage_free(f->storage);
	f->storage = NULL;
	open_storage(f);
}

static void on_done(void *userdata, const struct storage_volume_info *vol,
		    const struct mv_error *err)
{
	struct result *res = userdata;

	assert_false(res->called);
	res->called = true;
	res->code = err->code;
	snprintf(res->msg, sizeof(res->msg), "%s", err->msg);
	assert_true((vol == NULL) == (err->code < 0));
	if (vol) {
		snprintf(res->name, sizeof(res->name), "%s", vol->name);
		res->format = vol->format;
		res->virtual_size = vol->virtual_size;
		snprintf(res->backing, sizeof(res->backing), "%s", strempty(vol->backing));
	}
}

static void on_progress(void *userdata, uint64_t done, uint64_t total)
{
	struct result *res = userdata;

	res->progress_calls++;
	assert_true(done <= total);
	res->last_done = done;
	res->last_total = total;
	if (res->cancel_on_progress && res->op) {
		storage_job_cancel(res->op);
		res->op = NULL;
	}
}

static void run_until(struct fixture *f, const bool *flag)
{
	for (int i = 0; i < 600 && !*flag; i++)
		assert_true(sd_event_run(f->event, 100 * 1000) >= 0);
	assert_true(*flag);
}

/* Runs the loop until no operation is left (cancelled ones wait for their child). */
static void run_until_idle(struct fixture *f)
{
	for (int i = 0; i < 600 && f->storage->ops; i++)
		assert_true(sd_event_run(f->event, 100 * 1000) >= 0);
	assert_null(f->storage->ops);
}

static void assert_no_children(void)
{
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* The names in the pool directory, sorted, space-separated. */
static char *pool_listing(const char *pool)
{
	struct dirent **names;
	char *out = calloc(1, 4096);
	size_t len = 0;
	int n = scandir(pool, &names, NULL, alphasort);

	assert_non_null(out);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
			int w = snprintf(out + len, 4096 - len, "%s%s", len ? " " : "",
					 names[i]->d_name);
			assert_true(w > 0 && (size_t)w < 4096 - len);
			len += (size_t)w;
		}
		free(names[i]);
	}
	free(names);
	return out;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void assert_pool_is(struct fixture *f, const char *want)
{
	char *got = pool_listing(f->pool);

	if (!streq(got, want))
		fail_msg("pool holds '%s', expected '%s'", got, want);
	free(got);
}

static int create_sync(struct fixture *f, const char *name, uint64_t size, enum disk_format fmt,
		       struct result *res)
{
	struct mv_error err = {0};
	int r;

	memset(res, 0, sizeof(*res));
	r = storage_volume_create(f->storage, name, size, fmt, NULL, on_done, res, &err);
	if (r < 0) {
		res->code = r;
		snprintf(res->msg, sizeof(res->msg), "%s", err.msg);
		return r;
	}
	run_until(f, &res->called);
	return res->code;
}

static char *path_in(const char *dir, const char *leaf)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, leaf) > 0);
	return p;
}

static size_t rows(struct fixture *f, const char *name)
{
	struct volume_record *recs = NULL;
	size_t n = 0, found = 0;

	assert_int_equal(store_volume_load_all(f->store, &recs, &n, NULL), 0);
	for (size_t i = 0; i < n; i++) {
		found += !name || streq(recs[i].name, name);
		store_volume_record_done(&recs[i]);
	}
	free(recs);
	return found;
}

/* ---- names and paths ---- */

static void test_name_rules(void **state)
{
	struct fixture *f = *state;
	char long_name[80];
	const struct {
		const char *name;
		size_t len;
		const char *cause;
	} bad[] = {
		{"../x", 4, "is invalid"},
		{"..", 2, "is invalid"},
		{".", 1, "is invalid"},
		{"/abs", 4, "is invalid"},
		{"/etc/passwd", 11, "is invalid"},
		{"a/b", 3, "is invalid"},
		{".tmp-x", 6, "is invalid"},
		{"Upper", 5, "is invalid"},
		{"a\0../../etc", 11, "NUL"},
		{"\0", 1, "NUL"},
		{"", 0, "required"},
	};
	struct result res;
	struct mv_error err = {0};

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		mv_error_clear(&err);
		assert_int_equal(storage_check_name(bad[i].name, bad[i].len, "name", &err),
				 -EINVAL);
		if (!strstr(err.msg, "name:") || !strstr(err.msg, bad[i].cause))
			fail_msg("case %zu: message '%s' lacks 'name:' or '%s'", i, err.msg,
				 bad[i].cause);
		if (bad[i].len == strlen(bad[i].name))
			assert_int_equal(create_sync(f, bad[i].name, MiB, DISK_FORMAT_RAW, &res),
					 -EINVAL);
	}
	memset(long_name, 'a', 63);
	long_name[63] = '\0';
	assert_int_equal(storage_check_name(long_name, 63, "name", NULL), 0);
	assert_int_equal(create_sync(f, long_name, MiB, DISK_FORMAT_RAW, &res), 0);
	long_name[63] = 'a';
	long_name[64] = '\0';
	mv_error_clear(&err);
	assert_int_equal(storage_check_name(long_name, 64, "name", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "too long"));
	assert_int_equal(create_sync(f, long_name, MiB, DISK_FORMAT_RAW, &res), -EINVAL);
	/* nothing but the one valid volume was made, and nothing outside the pool */
	long_name[63] = '\0';
	assert_pool_is(f, long_name);
	assert_int_equal(access("/tmp/mvirt-test-pool-x", F_OK), -1);
}

/* A symlink in the pool pointing outside: never followed, whatever the operation. */
static void test_symlink_escape(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *outside = path_in(f->dir, "outside.img");
	_cleanup_free_ char *link = path_in(f->pool, "evil");
	struct volume_record rec = {.name = (char *)"evil",
				    .pool = (char *)"default",
				    .format = DISK_FORMAT_RAW,
				    .created_at_us = 1};
	struct storage_volume_info info;
	struct mv_error err = {0};
	struct result res;
	enum disk_format fmt;
	char *path = NULL;
	bool backing;
	struct stat st;

	xsystem("printf 'precious' > %s", outside);
	assert_int_equal(symlink(outside, link), 0);

	/* a new volume cannot take the name */
	assert_int_equal(create_sync(f, "evil", MiB, DISK_FORMAT_RAW, &res), -EEXIST);
	assert_non_null(strstr(res.msg, "not a volume"));

	/* a row naming it (as if the file had been swapped for a link behind our back) */
	assert_int_equal(store_volume_save(f->store, &rec, NULL), 0);
	reopen(f);
	assert_int_equal(storage_volume_get(f->storage, "evil", &info, &err), 0);
	assert_string_equal(info.status, "file is a symlink (refused)");
	assert_int_equal(info.virtual_size, 0);
	storage_volume_info_done(&info);
	assert_int_equal(storage_volume_resolve(f->storage, "evil", MV_ERR_NOT_FOUND, &path, &fmt,
						&backing, &err),
			 -ENOENT);
	assert_null(path);
	assert_non_null(strstr(err.msg, "symlink"));
	mv_error_clear(&err);
	assert_int_equal(storage_volume_resize(f->storage, "evil", 8 * MiB, on_done, &res, &err),
			 -ENOENT);
	mv_error_clear(&err);
	assert_int_equal(storage_volume_clone(f->storage, "evil", "copy", on_done, &res, &err),
			 -ENOENT);
	/* delete removes the link, not what it points to */
	assert_int_equal(storage_volume_delete(f->storage, "evil", &err), 0);
	assert_int_equal(lstat(link, &st), -1);
	assert_int_equal(stat(outside, &st), 0);
	assert_int_equal(st.st_size, 8);
	assert_pool_is(f, "");
}

static void test_check_disk_path(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *vol = path_in(f->pool, "vol");
	_cleanup_free_ char *stray = path_in(f->pool, "stray");
	_cleanup_free_ char *dotdot = NULL, *sub = NULL, *hard = path_in(f->dir, "hard");
	_cleanup_free_ char *alias = path_in(f->dir, "alias"), *via_alias = NULL;
	_cleanup_free_ char *outside = path_in(f->dir, "outside.img");
	struct mv_error err = {0};
	struct result res;

	assert_int_equal(create_sync(f, "vol", MiB, DISK_FORMAT_RAW, &res), 0);
	xsystem("touch %s %s && mkdir %s/sub && touch %s/sub/x", stray, outside, f->pool, f->pool);
	assert_true(asprintf(&dotdot, "%s/../pool/stray", f->pool) > 0);
	assert_true(asprintf(&sub, "%s/sub/x", f->pool) > 0);
	assert_true(asprintf(&via_alias, "%s/stray", alias) > 0);
	assert_int_equal(symlink(f->pool, alias), 0);
	assert_int_equal(link(vol, hard), 0);

	assert_int_equal(storage_check_disk_path(f->storage, vol, "config.disk", &err), 0);
	assert_int_equal(storage_check_disk_path(f->storage, outside, "config.disk", &err), 0);
	assert_int_equal(storage_check_disk_path(f->storage, "/nonexistent/x", "d", &err), 0);
	const char *refused[] = {stray, dotdot, sub, via_alias, f->pool};
	for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
		mv_error_clear(&err);
		if (storage_check_disk_path(f->storage, refused[i], "config.disks[1].path", &err) !=
		    -EINVAL)
			fail_msg("%s was accepted", refused[i]);
		assert_non_null(strstr(err.msg, "config.disks[1].path: "));
		assert_non_null(strstr(err.msg, "pool 'default'"));
	}
	mv_error_clear(&err);
	assert_int_equal(storage_check_disk_path(f->storage, hard, "config.disk", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "volume 'vol'"));
}

/* ---- operations ---- */

static void test_create_raw_sparse(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *p = path_in(f->pool, "disk");
	struct result res;
	struct stat st;
	enum disk_format fmt;
	char *path = NULL;
	bool backing = true;

	assert_int_equal(create_sync(f, "disk", 10ULL << 30, DISK_FORMAT_UNSPECIFIED, &res), 0);
	assert_string_equal(res.name, "disk");
	assert_int_equal(res.format, DISK_FORMAT_RAW);
	assert_int_equal(res.virtual_size, 10ULL << 30);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 10LL << 30);
	assert_true(st.st_blocks < 64); /* sparse */
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(rows(f, "disk"), 1);
	assert_pool_is(f, "disk");

	assert_int_equal(storage_volume_resolve(f->storage, "disk", MV_ERR_NOT_FOUND, &path, &fmt,
						&backing, NULL),
			 0);
	assert_string_equal(path, p);
	assert_int_equal(fmt, DISK_FORMAT_RAW);
	assert_false(backing);
	free(path);

	assert_int_equal(create_sync(f, "disk", MiB, DISK_FORMAT_RAW, &res), -EEXIST);
	assert_int_equal(create_sync(f, "odd", MiB + 1, DISK_FORMAT_RAW, &res), -EINVAL);
	assert_non_null(strstr(res.msg, "size_bytes"));
	assert_int_equal(create_sync(f, "zero", 0, DISK_FORMAT_RAW, &res), -EINVAL);
	assert_int_equal(create_sync(f, "huge", 1ULL << 60, DISK_FORMAT_RAW, &res), -EINVAL);
	assert_int_equal(create_sync(f, "fmt", MiB, (enum disk_format)7, &res), -EINVAL);
	assert_non_null(strstr(res.msg, "format"));
	memset(&res, 0, sizeof(res));
	assert_int_equal(storage_volume_create(f->storage, "p", MiB, DISK_FORMAT_RAW, "nope",
					       on_done, &res, NULL),
			 -ENOENT);
	assert_pool_is(f, "disk");
	assert_false(res.called);
}

static void test_qcow2_clone_chain(void **state)
{
	struct fixture *f = *state;
	struct storage_volume_info info;
	struct mv_error err = {0};
	struct result res;
	enum disk_format fmt;
	char *path = NULL;
	bool backing = false;

	if (access(STORAGE_QEMU_IMG, X_OK) < 0)
		skip();
	assert_int_equal(create_sync(f, "base", 64 * MiB, DISK_FORMAT_QCOW2, &res), 0);
	assert_int_equal(res.format, DISK_FORMAT_QCOW2);
	assert_int_equal(res.virtual_size, 64 * MiB);

	memset(&res, 0, sizeof(res));
	assert_int_equal(storage_volume_clone(f->storage, "base", "mid", on_done, &res, &err), 0);
	run_until(f, &res.called);
	assert_int_equal(res.code, 0);
	assert_string_equal(res.backing, "base");
	memset(&res, 0, sizeof(res));
	assert_int_equal(storage_volume_clone(f->storage, "mid", "top", on_done, &res, &err), 0);
	run_until(f, &res.called);
	assert_int_equal(res.code, 0);

	assert_int_equal(storage_volume_get(f->storage, "top", &info, &err), 0);
	assert_string_equal(info.backing_chain[0], "mid");
	assert_string_equal(info.backing_chain[1], "base");
	assert_null(info.backing_chain[2]);
	assert_int_equal(info.virtual_size, 64 * MiB);
	storage_volume_info_done(&info);
	assert_int_equal(storage_volume_get(f->storage, "base", &info, &err), 0);
	assert_string_equal(info.clones[0], "mid");
	assert_null(info.clones[1]);
	storage_volume_info_done(&info);
	assert_int_equal(storage_volume_resolve(f->storage, "top", MV_ERR_NOT_FOUND, &path, &fmt,
						&backing, NULL),
			 0);
	assert_int_equal(fmt, DISK_FORMAT_QCOW2);
	assert_true(backing);
	free(path);

	/* the backing volume of clones cannot go; its clones name it */
	mv_error_clear(&err);
	assert_int_equal(storage_volume_delete(f->storage, "base", &err), -EBUSY);
	assert_non_null(strstr(err.msg, "mid"));
	mv_error_clear(&err);
	assert_int_equal(storage_volume_delete(f->storage, "mid", &err), -EBUSY);
	assert_non_null(strstr(err.msg, "top"));
	assert_int_equal(storage_volume_delete(f->storage, "top", NULL), 0);
	assert_int_equal(storage_volume_delete(f->storage, "mid", NULL), 0);
	assert_int_equal(storage_volume_delete(f->storage, "base", NULL), 0);
	assert_pool_is(f, "");
	assert_int_equal(rows(f, NULL), 0);
	assert_no_children();
}

static void test_raw_clone_and_resize(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *src = path_in(f->pool, "src"), *dst = path_in(f->pool, "copy");
	struct storage_volume_info info;
	struct mv_error err = {0};
	struct result res;
	char buf[16] = "";
	int fd;

	assert_int_equal(create_sync(f, "src", 8 * MiB, DISK_FORMAT_RAW, &res), 0);
	xsystem("printf 'hello' | dd of=%s bs=1 seek=4096 conv=notrunc status=none", src);
	memset(&res, 0, sizeof(res));
	assert_int_equal(storage_volume_clone(f->storage, "src", "copy", on_done, &res, &err), 0);
	run_until(f, &res.called);
	assert_int_equal(res.code, 0);
	assert_string_equal(res.backing, ""); /* an independent copy */
	fd = open(dst, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, 5, 4096), 5);
	close(fd);
	assert_string_equal(buf, "hello");
	assert_int_equal(storage_volume_delete(f->storage, "src", NULL), 0); /* not a backing */

	/* grow only; not while a VM using it runs */
	f->user_volume = "copy";
	f->user_vm = "web-1";
	f->user_running = true;
	memset(&res, 0, sizeof(res));
	assert_int_equal(storage_volume_resize(f->storage, "copy", 16 * MiB, on_done, &res, &err),
			 -EBUSY);
	assert_non_null(strstr(err.msg, "web-1"));
	f->user_running = false;
	mv_error_clear(&err);
	assert_int_equal(storage_volume_resize(f->storage, "copy", 4 * MiB, on_done, &res, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "shrinking"));
	assert_int_equal(storage_volume_resize(f->storage, "copy", 16 * MiB, on_done, &res, &err),
			 0);
	run_until(f, &res.called);
	assert_int_equal(res.code, 0);
	assert_int_equal(res.virtual_size, 16 * MiB);

	/* a VM names it (stopped): no delete, naming the VM */
	mv_error_clear(&err);
	assert_int_equal(storage_volume_delete(f->storage, "copy", &err), -EBUSY);
	assert_non_null(strstr(err.msg, "web-1"));
	assert_int_equal(storage_volume_get(f->storage, "copy", &info, &err), 0);
	assert_string_equal(info.used_by[0], "web-1");
	storage_volume_info_done(&info);
	f->user_volume = NULL;
	assert_int_equal(storage_volume_delete(f->storage, "copy", NULL), 0);
	assert_pool_is(f, "");
	assert_no_children();
}

static void test_qcow2_resize(void **state)
{
	struct fixture *f = *state;
	struct result res;

	if (access(STORAGE_QEMU_IMG, X_OK) < 0)
		skip();
	assert_int_equal(create_sync(f, "q", 64 * MiB, DISK_FORMAT_QCOW2, &res), 0);
	memset(&res, 0, sizeof(res));
	assert_int_equal(storage_volume_resize(f->storage, "q", 128 * MiB, on_done, &res, NULL), 0);
	run_until(f, &res.called);
	assert_int_equal(res.code, 0);
	assert_int_equal(res.virtual_size, 128 * MiB);
	assert_no_children();
}

static int import_sync(struct fixture *f, const char *name, const char *source,
		       enum disk_format fmt, struct result *res)
{
	struct mv_error err = {0};
	int r;

	memset(res, 0, sizeof(*res));
	r = storage_volume_import(f->storage, name, source, fmt, NULL, on_progress, on_done, res,
				  &res->op, &err);
	if (r < 0) {
		res->code = r;
		snprintf(res->msg, sizeof(res->msg), "%s", err.msg);
		return r;
	}
	run_until(f, &res->called);
	return res->code;
}

/* The header decides, never the name; a raw file that looks like qcow2 follows the rules. */
static void test_import_formats(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *q = path_in(f->dir, "really-qcow2.raw");
	_cleanup_free_ char *r = path_in(f->dir, "really-raw.qcow2");
	_cleanup_free_ char *fake = path_in(f->dir, "fake.img");
	_cleanup_free_ char *v7 = path_in(f->dir, "v7.img");
	struct result res;

	if (access(STORAGE_QEMU_IMG, X_OK) < 0)
		skip();
	xsystem("qemu-img create -q -f qcow2 %s 32M && truncate -s 3M %s && "
		"printf 'QFI\\373\\000\\000\\000\\003garbage' > %s && "
		"printf 'QFI\\373\\000\\000\\000\\007' > %s && truncate -s 1M %s",
		q, r, fake, v7, v7);

	assert_int_equal(import_sync(f, "a", q, DISK_FORMAT_UNSPECIFIED, &res), 0);
	assert_int_equal(res.format, DISK_FORMAT_QCOW2);
	assert_int_equal(res.virtual_size, 32 * MiB);
	assert_true(res.progress_calls >= 1);
	assert_int_equal(res.last_done, res.last_total);

	assert_int_equal(import_sync(f, "b", r, DISK_FORMAT_UNSPECIFIED, &res), 0);
	assert_int_equal(res.format, DISK_FORMAT_RAW);
	assert_int_equal(res.virtual_size, 3 * MiB);

	/* converted on the way in */
	assert_int_equal(import_sync(f, "c", r, DISK_FORMAT_QCOW2, &res), 0);
	assert_int_equal(res.format, DISK_FORMAT_QCOW2);
	assert_int_equal(res.virtual_size, 3 * MiB);

	/* magic and a supported version: qcow2 by the rules; too short for a qcow2 header */
	assert_int_equal(import_sync(f, "d", fake, DISK_FORMAT_UNSPECIFIED, &res), -EINVAL);
	assert_non_null(strstr(res.msg, "source_path: "));
	/* ... and long enough: qemu-img refuses the rest of the header */
	xsystem("truncate -s 1M %s", fake);
	assert_int_equal(import_sync(f, "d", fake, DISK_FORMAT_UNSPECIFIED, &res), -EIO);
	assert_non_null(strstr(res.msg, "qemu-img convert exited with status 1: qemu-img: "));
	/* magic and an unsupported version: refused before anything runs */
	assert_int_equal(import_sync(f, "e", v7, DISK_FORMAT_UNSPECIFIED, &res), -EINVAL);
	assert_non_null(strstr(res.msg, "source_path: "));
	assert_non_null(strstr(res.msg, "version 7"));
	assert_int_equal(import_sync(f, "e", "relative.img", DISK_FORMAT_RAW, &res), -EINVAL);
	assert_int_equal(import_sync(f, "e", "/nonexistent.img", DISK_FORMAT_RAW, &res), -EINVAL);
	assert_non_null(strstr(res.msg, "source_path: "));

	assert_pool_is(f, "a b c");
	assert_int_equal(rows(f, NULL), 3);
	assert_no_children();
}

/* Disk full: a 1 MiB tmpfs pool. Sparse creation is fine; an import of 4 MiB of random data
 * fails with -ENOSPC and leaves nothing. */
static void test_enospc(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *src = path_in(f->dir, "random.img");
	struct result res;

	if (geteuid() != 0 || access(STORAGE_QEMU_IMG, X_OK) < 0)
		skip();
	storage_free(f->storage);
	f->storage = NULL;
	if (mount("tmpfs", f->pool, "tmpfs", 0, "size=1m,mode=0700") < 0)
		skip();
	open_storage(f);
	xsystem("head -c 4M /dev/urandom > %s", src);

	assert_int_equal(create_sync(f, "sparse", 4 * MiB, DISK_FORMAT_RAW, &res), 0);
	assert_int_equal(import_sync(f, "full", src, DISK_FORMAT_RAW, &res), -ENOSPC);
	assert_non_null(strstr(res.msg, "No space left on device"));
	assert_non_null(strstr(res.msg, "volume 'full'"));
	assert_pool_is(f, "sparse");
	assert_int_equal(rows(f, "full"), 0);
	assert_int_equal(import_sync(f, "full2", src, DISK_FORMAT_QCOW2, &res), -ENOSPC);
	assert_pool_is(f, "sparse");
	assert_no_children();
}

/* After a crash: a row whose file is gone, a file without a row, a temporary leftover. */
static void test_reconcile(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *gone = path_in(f->pool, "gone");
	_cleanup_free_ char *stray = path_in(f->pool, "stray.img");
	_cleanup_free_ char *tmp = path_in(f->pool, ".tmp-half-0000abcd");
	struct storage_volume_info *infos = NULL;
	char **unknown = NULL;
	struct result res;
	size_t n = 0;

	assert_int_equal(create_sync(f, "gone", MiB, DISK_FORMAT_RAW, &res), 0);
	assert_int_equal(create_sync(f, "kept", MiB, DISK_FORMAT_RAW, &res), 0);
	storage_free(f->storage);
	f->storage = NULL;
	assert_int_equal(unlink(gone), 0);
	xsystem("echo data > %s && echo half > %s", stray, tmp);
	open_storage(f);

	assert_int_equal(storage_volume_list(f->storage, NULL, &infos, &n, &unknown, NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(infos[0].name, "gone");
	assert_string_equal(infos[0].status, "file missing");
	assert_string_equal(infos[1].name, "kept");
	assert_string_equal(infos[1].status, "ok");
	assert_non_null(unknown);
	assert_string_equal(unknown[0], stray);
	assert_null(unknown[1]);
	for (size_t i = 0; i < n; i++)
		storage_volume_info_done(&infos[i]);
	free(infos);
	strv_free(unknown);

	/* never deleted: the stray file and the row stay; only the leftover went */
	assert_int_equal(access(stray, F_OK), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(rows(f, "gone"), 1);
	/* a volume whose file is missing cannot be used, but can be deleted */
	assert_int_equal(create_sync(f, "stray.img", MiB, DISK_FORMAT_RAW, &res), -EEXIST);
	assert_int_equal(storage_volume_delete(f->storage, "gone", NULL), 0);
	assert_int_equal(rows(f, "gone"), 0);
}

static char *make_dense(struct fixture *f, unsigned mib)
{
	char *src = path_in(f->dir, "dense.img");

	xsystem("head -c %uM /dev/zero | tr '\\000' '\\001' > %s", mib, src);
	return src;
}

/* Cancelling an import kills qemu-img and removes the partial file at once. */
static void test_import_cancel(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *src = NULL;
	struct mv_error err = {0};
	struct result res = {.cancel_on_progress = true};

	if (access(STORAGE_QEMU_IMG, X_OK) < 0)
		skip();
	src = make_dense(f, 256);
	assert_int_equal(storage_volume_import(f->storage, "big", src, DISK_FORMAT_RAW, NULL,
					       on_progress, on_done, &res, &res.op, &err),
			 0);
	while (res.op)
		assert_true(sd_event_run(f->event, 100 * 1000) >= 0);
	assert_pool_is(f, ""); /* removed when cancelled, before the child is even gone */
	run_until_idle(f);
	assert_false(res.called);
	assert_int_equal(res.progress_calls, 1);
	assert_no_children();
	assert_int_equal(rows(f, NULL), 0);
	/* the name is free again */
	assert_int_equal(create_sync(f, "big", MiB, DISK_FORMAT_RAW, &res), 0);
}

/* Freeing the manager (daemon shutdown) mid-import kills and reaps the child. */
static void test_free_mid_import(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *src = NULL;
	struct result res = {0};

	if (access(STORAGE_QEMU_IMG, X_OK) < 0)
		skip();
	src = make_dense(f, 256);
	assert_int_equal(storage_volume_import(f->storage, "big", src, DISK_FORMAT_RAW, NULL,
					       on_progress, on_done, &res, &res.op, NULL),
			 0);
	while (res.progress_calls == 0)
		assert_true(sd_event_run(f->event, 100 * 1000) >= 0);
	storage_free(f->storage);
	f->storage = NULL;
	assert_no_children();
	assert_false(res.called);
	assert_pool_is(f, "");
	open_storage(f);
}

static void test_pools(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *other = path_in(f->dir, "other"), *nested = path_in(f->pool, "n");
	struct storage_pool_config two[] = {{"default", f->pool}, {"fast", other}};
	struct storage_pool_config overlap[] = {{"default", f->pool}, {"inner", nested}};
	struct storage_pool_config dup[] = {{"default", f->pool}, {"default", other}};
	struct storage_pool_config relative[] = {{"default", "rel/dir"}};
	struct storage_pool_config badname[] = {{"../x", other}};
	struct storage_volume_info *infos = NULL;
	struct storage *s = NULL;
	struct mv_error err = {0};
	struct result res = {0};
	char **unknown = NULL;
	size_t n = 0;
	struct stat st;

	assert_int_equal(storage_new(f->event, f->store, overlap, 2, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "overlap"));
	mv_error_clear(&err);
	assert_int_equal(storage_new(f->event, f->store, dup, 2, &s, &err), -EINVAL);
	assert_int_equal(storage_new(f->event, f->store, relative, 1, &s, NULL), -EINVAL);
	assert_int_equal(storage_new(f->event, f->store, badname, 1, &s, NULL), -EINVAL);
	assert_null(s);

	storage_free(f->storage);
	assert_int_equal(storage_new(f->event, f->store, two, 2, &f->storage, &err), 0);
	assert_int_equal(stat(other, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(storage_volume_create(f->storage, "v", MiB, DISK_FORMAT_RAW, "fast",
					       on_done, &res, &err),
			 0);
	run_until(f, &res.called);
	assert_int_equal(res.code, 0);
	assert_int_equal(storage_volume_list(f->storage, "fast", &infos, &n, &unknown, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(infos[0].pool, "fast");
	assert_null(unknown);
	storage_volume_info_done(&infos[0]);
	free(infos);
	/* the failed attempt with a nested pool left its directory: not a volume */
	assert_int_equal(storage_volume_list(f->storage, "default", &infos, &n, &unknown, NULL), 0);
	assert_int_equal(n, 0);
	assert_non_null(unknown);
	assert_string_equal(unknown[0], nested);
	strv_free(unknown);
	free(infos);
	assert_int_equal(storage_volume_list(f->storage, "nope", &infos, &n, &unknown, NULL),
			 -ENOENT);
	/* names are global across pools */
	assert_int_equal(create_sync(f, "v", MiB, DISK_FORMAT_RAW, &res), -EEXIST);

	/* a pool that is no longer configured: its volumes are reported, not lost */
	reopen(f);
	assert_int_equal(storage_volume_list(f->storage, NULL, &infos, &n, &unknown, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(infos[0].status, "pool 'fast' is not configured");
	storage_volume_info_done(&infos[0]);
	free(infos);
	strv_free(unknown);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_name_rules),
		T(test_symlink_escape),
		T(test_check_disk_path),
		T(test_create_raw_sparse),
		T(test_qcow2_clone_chain),
		T(test_raw_clone_and_resize),
		T(test_qcow2_resize),
		T(test_import_formats),
		T(test_enospc),
		T(test_reconcile),
		T(test_import_cancel),
		T(test_free_mid_import),
		T(test_pools),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
