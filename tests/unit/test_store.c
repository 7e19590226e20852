/* Unit tests of store.c, the SQLite state store, against real database files in a fresh
 * temporary directory per test: schema creation and migration (from nothing and from version 1
 * files with content), WAL and synchronous commits, exact round trips (the hypervisor process
 * included), upsert/duplicate/delete semantics, ordering, persistence, and refusal of corrupt
 * rows and of corrupt or too-new files without changing a byte of them. The test reads and
 * prepares files through its own sqlite3 connection; a pass-through VFS counts syncs of the WAL.
 * Volume rows: round trip, upsert, the backing-volume constraint, migration from version 2.
 * Network rows: round trip of every member and mode, replace by id, duplicate names, delete,
 * invalid records, rows with a broken config, migration from version 3. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/mvirt-test-store-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/mvirt.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct dirent *de;
	DIR *d = opendir(f->dir);

	if (d) {
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* --- helpers --------------------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

static void set_id(struct vm_record *r, unsigned n)
{
	snprintf(r->id, sizeof(r->id), "00000000-0000-4000-8000-%012u", n);
}

/* A small, typical record: free with vmdef_record_done(). */
static void basic_record(struct vm_record *r, unsigned n, const char *name)
{
	memset(r, 0, sizeof(*r));
	set_id(r, n);
	r->name = xstrdup(name);
	r->state = VM_STATE_STOPPED;
	r->created_at_us = 1700000000000000 + n;
	r->config.vcpus = 2;
	r->config.memory_mb = 1024;
	r->config.kernel = xstrdup("/boot/vmlinuz");
	r->config.cmdline = xstrdup("console=ttyS0");
	r->config.n_disks = 1;
	r->config.disks = calloc(1, sizeof(*r->config.disks));
	assert_non_null(r->config.disks);
	r->config.disks[0] =
		(struct vm_disk){xstrdup("/var/lib/mvirt/a.raw"), false, DISK_FORMAT_RAW};
}

static const char tricky[] = "quote \" backslash \\ slash / tab \t newline \n cr \r "
			     "ctl \x01\x1f del \x7f unicode \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 "
			     "json {\"a\": [1, 2]} sql '); DROP TABLE vms; -- \\u0041 end";

/* A record that stresses every member: extremes, odd strings, 16 disks, 16 nics, 1 MiB of
 * user data. */
static void huge_record(struct vm_record *r, unsigned n, const char *name)
{
	const size_t ud_len = 1024 * 1024;
	char buf[128];

	memset(r, 0, sizeof(*r));
	set_id(r, n);
	r->name = xstrdup(name);
	r->state = VM_STATE_CRASHED;
	r->state_reason = xstrdup(tricky);
	r->created_at_us = INT64_MAX;
	r->started_at_us = INT64_MIN;
	r->config.vcpus = UINT32_MAX;
	r->config.plain_paths = VM_PLAIN_KERNEL | VM_PLAIN_DISKS(3);
	r->config.memory_mb = UINT64_MAX;
	r->config.kernel = xstrdup(tricky);
	r->config.initramfs = xstrdup("/boot/initrd \xe6\x97\xa5\xe6\x9c\xac");
	r->config.cmdline = xstrdup("console=ttyS0 quiet \"x=1 2\"\nsecond line");
	r->config.firmware = xstrdup("");
	r->config.disk = xstrdup("/dev/disk/by-id/\xc3\xbf\xc3\xbe-latin");
	r->config.n_disks = 16;
	r->config.disks = calloc(16, sizeof(*r->config.disks));
	assert_non_null(r->config.disks);
	for (unsigned i = 0; i < 16; i++) {
		snprintf(buf, sizeof(buf), "/var/lib/mvirt/disk \"%u\".img", i);
		r->config.disks[i].path = i == 7 ? NULL : xstrdup(buf);
		r->config.disks[i].readonly = i % 2;
		r->config.disks[i].format = (enum disk_format)(i % 3);
	}
	r->config.n_nics = 16;
	r->config.nics = calloc(16, sizeof(*r->config.nics));
	assert_non_null(r->config.nics);
	for (unsigned i = 0; i < 16; i++) {
		snprintf(buf, sizeof(buf), "tap%u", i);
		r->config.nics[i].tap = xstrdup(buf);
		snprintf(buf, sizeof(buf), "net-%u\n'", i);
		r->config.nics[i].network = i == 3 ? NULL : xstrdup(buf);
		snprintf(buf, sizeof(buf), "52:54:00:00:00:%02x", i);
		r->config.nics[i].mac = xstrdup(buf);
	}
	r->config.user_data = malloc(ud_len + 1);
	assert_non_null(r->config.user_data);
	for (size_t i = 0; i < ud_len; i++)
		r->config.user_data[i] = (char)(' ' + (i * 7919 + i / 13) % 95);
	for (size_t i = 0; i < ud_len; i += 4099)
		r->config.user_data[i] = "\n\"\\\t"[i % 4];
	r->config.user_data[ud_len] = '\0';
}

static struct store *open_ok(const char *path)
{
	struct mv_error err = {0};
	struct store *s = NULL;
	int r = store_open(path, &s, &err);

	if (r < 0)
		fail_msg("store_open: %d %s", r, err.msg);
	assert_non_null(s);
	return s;
}

static void save_ok(struct store *s, const struct vm_record *r)
{
	struct mv_error err = {0};
	int ret = store_vm_save(s, r, &err);

	if (ret < 0)
		fail_msg("store_vm_save: %d %s", ret, err.msg);
	assert_int_equal(err.code, 0);
}

static size_t load_ok(struct store *s, struct vm_record **ret)
{
	struct mv_error err = {0};
	size_t n = SIZE_MAX;
	int r = store_vm_load_all(s, ret, &n, &err);

	if (r < 0)
		fail_msg("store_vm_load_all: %d %s", r, err.msg);
	assert_int_not_equal(n, SIZE_MAX);
	return n;
}

static void free_records(struct vm_record *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vmdef_record_done(&v[i]);
	free(v);
}

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(
		sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
		SQLITE_OK);
	sqlite3_busy_timeout(db, 1000);
	return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

/* The first column of the first row of sql, as a newly allocated string ("" if none). */
static char *raw_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	char *out;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = xstrdup((const char *)sqlite3_column_text(st, 0));
	else
		out = xstrdup("");
	sqlite3_finalize(st);
	return out;
}

static long long raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The vms table as "name:type:notnull:default:pk" per column, in column order ("-" for no
 * default), as a newly allocated string. */
static char *table_layout(sqlite3 *db)
{
	return raw_text(db,
			"SELECT group_concat(name || ':' || type || ':' || \"notnull\" || ':' || "
			"ifnull(dflt_value, '-') || ':' || pk, ' ') "
			"FROM (SELECT * FROM pragma_table_info('vms') ORDER BY cid)");
}

/* Whole file contents; *len is 0 and the result NULL when the file does not exist. */
static unsigned char *slurp(const char *path, size_t *len)
{
	unsigned char *buf;
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*len = 0;
	if (fd < 0) {
		assert_int_equal(errno, ENOENT);
		return NULL;
	}
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	n = read(fd, buf, (size_t)st.st_size);
	assert_int_equal(n, st.st_size);
	close(fd);
	*len = (size_t)n;
	return buf;
}

static void write_at(const char *path, off_t off, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, off), (ssize_t)len);
	close(fd);
}

/* Asserts that store_open refuses path with code, that the message contains each of needles,
 * and that neither the file nor its WAL changed by a single byte. */
static void assert_refused(const char *path, int code, const char *const *needles)
{
	struct mv_error err = {0};
	struct store *s = NULL;
	unsigned char *before, *after, *wal_before, *wal_after;
	size_t len_before, len_after, wal_len_before, wal_len_after;
	char wal[PATH_MAX];
	int r;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	before = slurp(path, &len_before);
	wal_before = slurp(wal, &wal_len_before);
	assert_non_null(before);

	r = store_open(path, &s, &err);
	assert_int_equal(r, code);
	assert_null(s);
	assert_int_equal(err.code, code);
	for (size_t i = 0; needles[i]; i++)
		if (!strstr(err.msg, needles[i]))
			fail_msg("message lacks \"%s\": %s", needles[i], err.msg);

	after = slurp(path, &len_after);
	assert_non_null(after);
	assert_int_equal(len_before, len_after);
	assert_memory_equal(before, after, len_before);
	wal_after = slurp(wal, &wal_len_after);
	if (wal_len_before > 0) {
		assert_int_equal(wal_len_before, wal_len_after);
		assert_memory_equal(wal_before, wal_after, wal_len_before);
	} else
		assert_int_equal(wal_len_after, 0);
	free(before);
	free(after);
	free(wal_before);
	free(wal_after);
}

static const char *const corrupt_needles[] = {"is corrupt", "refusing to start", "never deletes it",
					      NULL};

/* --- a pass-through VFS that counts xSync calls on WAL files ------------------------------- */

struct shim_file {
	sqlite3_file base;
	sqlite3_file *real;
	bool wal;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;
static int wal_syncs;

#define REAL(f) (((struct shim_file *)(f))->real)

static int shim_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}
static int shim_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}
static int shim_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int shim_sync(sqlite3_file *f, int flags)
{
	if (((struct shim_file *)f)->wal)
		wal_syncs++;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int shim_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int shim_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int shim_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int shim_check_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int shim_file_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int shim_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int shim_device_characteristics(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int shim_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, pp);
}
static int shim_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void shim_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int shim_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, amt, pp);
}
static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods shim_methods = {
	3,
	shim_close,
	shim_read,
	shim_write,
	shim_truncate,
	shim_sync,
	shim_file_size,
	shim_lock,
	shim_unlock,
	shim_check_reserved,
	shim_file_control,
	shim_sector_size,
	shim_device_characteristics,
	shim_shm_map,
	shim_shm_lock,
	shim_shm_barrier,
	shim_shm_unmap,
	shim_fetch,
	shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
		     int *out_flags)
{
	struct shim_file *f = (struct shim_file *)file;
	int rc;

	(void)vfs;
	f->real = (sqlite3_file *)(f + 1);
	f->wal = flags & SQLITE_OPEN_WAL;
	f->base.pMethods = NULL;
	rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
	if (f->real->pMethods)
		f->base.pMethods = &shim_methods;
	return rc;
}

static void shim_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	assert_true(real_vfs->iVersion >= 3);
	shim_vfs = *real_vfs;
	shim_vfs.pNext = NULL;
	shim_vfs.zName = "mvirt-test-sync-counter";
	shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
	shim_vfs.xOpen = shim_open;
	assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
	assert_ptr_equal(sqlite3_vfs_find(NULL), &shim_vfs);
}

static void shim_remove(void)
{
	assert_int_equal(sqlite3_vfs_unregister(&shim_vfs), SQLITE_OK);
	assert_ptr_equal(sqlite3_vfs_find(NULL), real_vfs);
}

/* --- tests ------------------------------------------------------------------------------------ */

/* The vms table as STORE_SCHEMA_VERSION defines it (see table_layout): a migration that changes
 * the table must change this too. */
static const char vms_layout[] =
	"id:TEXT:1:-:1 name:TEXT:1:-:0 state:INTEGER:1:-:0 state_reason:TEXT:0:-:0 "
	"created_at_us:INTEGER:1:-:0 started_at_us:INTEGER:1:0:0 config:TEXT:1:-:0 "
	"pid:INTEGER:1:0:0 pid_starttime:INTEGER:1:0:0 boot_id:TEXT:1:'':0";

/* Version 1 of the table, verbatim from the first migration in store.c: what an mvirt-vmm of
 * that era left on disk. Frozen: never change it. */
static const char vms_v1_sql[] = "CREATE TABLE vms ("
				 " id TEXT PRIMARY KEY NOT NULL,"
				 " name TEXT NOT NULL UNIQUE,"
				 " state INTEGER NOT NULL,"
				 " state_reason TEXT,"
				 " created_at_us INTEGER NOT NULL,"
				 " started_at_us INTEGER NOT NULL DEFAULT 0,"
				 " config TEXT NOT NULL)";

/* The columns every schema version has, for raw INSERTs. */
#define V1_COLUMNS "id, name, state, state_reason, created_at_us, started_at_us, config"

static void test_new_database(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	struct stat st;
	sqlite3 *db;
	char *mode, *cols;

	s = open_ok(f->path);
	assert_int_equal(store_schema_version_found(s), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	mode = raw_text(db, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	cols = table_layout(db);
	assert_string_equal(cols, vms_layout);
	free(mode);
	free(cols);
	sqlite3_close(db);
	store_close(s);

	s = open_ok(f->path);
	assert_int_equal(store_schema_version_found(s), STORE_SCHEMA_VERSION);
	store_close(s);
	store_close(NULL);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct mv_error err = {0};
	struct store *s = NULL;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/missing-dir/mvirt.db", f->dir);
	assert_int_equal(store_open(path, &s, &err), -ENOENT);
	assert_null(s);
	assert_non_null(strstr(err.msg, path));

	mv_error_clear(&err);
	assert_int_equal(store_open(f->dir, &s, &err), -EISDIR);
	assert_null(s);
}

/* synchronous=FULL in WAL mode syncs the WAL on every commit; NORMAL does not. The second half
 * proves that the counter tells the two apart. */
static void test_commits_are_synced(void **state)
{
	struct fixture *f = *state;
	struct vm_record r;
	struct store *s;
	char other[PATH_MAX];
	sqlite3 *db;

	shim_install();
	s = open_ok(f->path);
	basic_record(&r, 1, "synced");
	wal_syncs = 0;
	save_ok(s, &r);
	assert_true(wal_syncs >= 1);
	wal_syncs = 0;
	assert_int_equal(store_vm_delete(s, r.id, NULL), 0);
	assert_true(wal_syncs >= 1);
	store_close(s);
	vmdef_record_done(&r);

	snprintf(other, sizeof(other), "%s/other.db", f->dir);
	db = raw_open(other);
	raw_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE t(x)");
	wal_syncs = 0;
	raw_exec(db, "INSERT INTO t VALUES (1)");
	assert_int_equal(wal_syncs, 0);
	raw_exec(db, "PRAGMA synchronous = FULL");
	raw_exec(db, "INSERT INTO t VALUES (2)");
	assert_true(wal_syncs >= 1);
	sqlite3_close(db);
	shim_remove();
}

/* A runtime-state save commits without a sync, the next durable one syncs again, and both
 * are there after a reopen. */
static void test_runtime_saves_are_not_synced(void **state)
{
	struct fixture *f = *state;
	struct vm_record r, *out = NULL;
	struct store *s;
	size_t n;

	shim_install();
	s = open_ok(f->path);
	basic_record(&r, 1, "runtime");
	save_ok(s, &r);
	r.state = VM_STATE_RUNNING;
	r.process = (struct vm_process){4242, 99, "6f1c2a4e-9b3d-4e8f-a1b2-c3d4e5f60718"};
	wal_syncs = 0;
	assert_int_equal(store_vm_save_runtime(s, &r, NULL), 0);
	assert_int_equal(wal_syncs, 0);
	r.config.vcpus = 3;
	save_ok(s, &r);
	assert_true(wal_syncs >= 1);
	r.state = VM_STATE_STOPPED;
	memset(&r.process, 0, sizeof(r.process));
	wal_syncs = 0;
	assert_int_equal(store_vm_save_runtime(s, &r, NULL), 0);
	assert_int_equal(wal_syncs, 0);
	store_close(s);
	shim_remove();

	s = open_ok(f->path);
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_true(vmdef_record_equal(&r, &out[0]));
	free_records(out, n);
	store_close(s);
	vmdef_record_done(&r);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct vm_record in[4], *out = NULL;
	struct store *s;
	size_t n;

	/* names chosen so that the order by name is in[0..3] */
	huge_record(&in[0], 10, "a-huge");
	basic_record(&in[1], 11, "b-basic");
	memset(&in[2], 0, sizeof(in[2])); /* every optional member unset */
	set_id(&in[2], 12);
	in[2].name = xstrdup("c-minimal");
	in[2].state = VM_STATE_STOPPED;
	basic_record(&in[3], 13, "d-\xc3\xbcnicode \"quoted\"\n'name'");
	in[3].state = VM_STATE_PAUSED;
	in[3].state_reason = xstrdup("");
	in[3].started_at_us = -1;
	in[3].created_at_us = INT64_MIN;
	in[3].config.memory_mb = (uint64_t)INT64_MAX + 1;
	in[3].config.disks[0].format = DISK_FORMAT_UNSPECIFIED;
	in[3].config.disks[0].readonly = true;

	s = open_ok(f->path);
	for (size_t i = 0; i < 4; i++)
		save_ok(s, &in[i]);
	n = load_ok(s, &out);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 4; i++) {
		if (!vmdef_record_equal(&in[i], &out[i]))
			fail_msg("record %zu (%s) did not round-trip", i, in[i].name);
	}
	/* Spot checks that do not rely on vmdef_record_equal alone. */
	assert_int_equal(out[0].config.memory_mb, UINT64_MAX);
	assert_int_equal(out[0].config.vcpus, UINT32_MAX);
	assert_true(out[0].created_at_us == INT64_MAX);
	assert_true(out[0].started_at_us == INT64_MIN);
	assert_int_equal(strlen(out[0].config.user_data), 1024 * 1024);
	assert_memory_equal(out[0].config.user_data, in[0].config.user_data, 1024 * 1024);
	assert_string_equal(out[0].config.kernel, tricky);
	assert_int_equal(out[0].config.n_disks, 16);
	assert_int_equal(out[0].config.n_nics, 16);
	assert_null(out[0].config.disks[7].path);
	assert_int_equal(out[0].config.disks[5].format, DISK_FORMAT_QCOW2);
	assert_null(out[0].config.nics[3].network);
	assert_null(out[2].config.disks);
	assert_null(out[2].config.nics);
	assert_null(out[2].config.kernel);
	assert_null(out[2].state_reason);
	assert_int_equal(out[3].config.memory_mb, (uint64_t)INT64_MAX + 1);
	assert_string_equal(out[3].name, in[3].name);
	free_records(out, n);
	store_close(s);

	/* and again from the file */
	s = open_ok(f->path);
	n = load_ok(s, &out);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 4; i++)
		assert_true(vmdef_record_equal(&in[i], &out[i]));
	free_records(out, n);
	store_close(s);
	for (size_t i = 0; i < 4; i++)
		vmdef_record_done(&in[i]);
}

/* The hypervisor process of a VM round-trips exactly (all 64 bits of its start time), and each
 * of its members is stored on its own: changing one alone changes what is loaded. */
static void test_process_round_trip(void **state)
{
	struct fixture *f = *state;
	struct vm_record in[3], before, *out = NULL;
	struct store *s;
	sqlite3 *db;
	size_t n;

	/* names chosen so that the order by name is in[0..2] */
	basic_record(&in[0], 1, "p-max");
	in[0].state = VM_STATE_RUNNING;
	in[0].process =
		(struct vm_process){INT32_MAX, UINT64_MAX, "ffffffff-ffff-4fff-bfff-ffffffffffff"};
	basic_record(&in[1], 2, "p-top-bit");
	in[1].state = VM_STATE_PAUSED;
	in[1].process =
		(struct vm_process){1, (uint64_t)1 << 63, "00000000-0000-4000-8000-000000000000"};
	basic_record(&in[2], 3, "p-typical");
	in[2].state = VM_STATE_RUNNING;
	in[2].process = (struct vm_process){4242, ((uint64_t)1 << 40) + 12345,
					    "6f1c2a4e-9b3d-4e8f-a1b2-c3d4e5f60718"};

	s = open_ok(f->path);
	for (size_t i = 0; i < 3; i++)
		save_ok(s, &in[i]);
	n = load_ok(s, &out);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		if (!vmdef_record_equal(&in[i], &out[i]))
			fail_msg("record %zu (%s) did not round-trip", i, in[i].name);
	/* Spot checks that do not rely on vmdef_record_equal alone. */
	assert_int_equal(out[0].process.pid, INT32_MAX);
	assert_true(out[0].process.starttime == UINT64_MAX);
	assert_string_equal(out[0].process.boot_id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
	assert_true(out[1].process.starttime == (uint64_t)1 << 63);
	assert_int_equal(out[2].process.pid, 4242);
	assert_true(out[2].process.starttime == ((uint64_t)1 << 40) + 12345);
	assert_string_equal(out[2].process.boot_id, "6f1c2a4e-9b3d-4e8f-a1b2-c3d4e5f60718");
	free_records(out, n);
	store_close(s);

	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "SELECT pid_starttime FROM vms WHERE name = 'p-typical'"),
			 ((long long)1 << 40) + 12345);
	sqlite3_close(db);

	/* one member at a time: the store keeps it, and equality tells old from new */
	s = open_ok(f->path);
	for (int m = 0; m < 3; m++) {
		assert_int_equal(vmdef_record_copy(&before, &in[2]), 0);
		if (m == 0)
			in[2].process.pid++;
		else if (m == 1)
			in[2].process.starttime ^= (uint64_t)1 << 33; /* low 32 bits unchanged */
		else
			in[2].process.boot_id[35] = '9';
		assert_false(vmdef_record_equal(&before, &in[2]));
		save_ok(s, &in[2]);
		n = load_ok(s, &out);
		assert_int_equal(n, 3);
		if (!vmdef_record_equal(&in[2], &out[2]) || vmdef_record_equal(&before, &out[2]))
			fail_msg("change %d of the process was not stored", m);
		assert_true(vmdef_record_equal(&in[0], &out[0]));
		assert_true(vmdef_record_equal(&in[1], &out[1]));
		free_records(out, n);
		vmdef_record_done(&before);
	}
	store_close(s);

	/* and from the file */
	s = open_ok(f->path);
	n = load_ok(s, &out);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_true(vmdef_record_equal(&in[i], &out[i]));
	free_records(out, n);
	store_close(s);
	for (size_t i = 0; i < 3; i++)
		vmdef_record_done(&in[i]);
}

/* A shorter boot_id replaces a longer one whole, an empty one clears it, and a stopped VM's
 * process is stored as none at all. */
static void test_process_cleared(void **state)
{
	static const char uuid[] = "6f1c2a4e-9b3d-4e8f-a1b2-c3d4e5f60718";
	struct fixture *f = *state;
	struct vm_record r, *out = NULL;
	struct store *s = open_ok(f->path);
	sqlite3 *db;
	char *text;
	size_t n;

	basic_record(&r, 1, "stops");
	r.state = VM_STATE_RUNNING;
	r.process = (struct vm_process){777, 99, ""};
	memcpy(r.process.boot_id, uuid, sizeof(uuid));
	save_ok(s, &r);
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].process.boot_id, uuid);
	free_records(out, n);

	memcpy(r.process.boot_id, "b00t", sizeof("b00t"));
	save_ok(s, &r);
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].process.boot_id, "b00t");
	free_records(out, n);

	r.process.boot_id[0] = '\0';
	save_ok(s, &r);
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].process.boot_id, "");
	assert_int_equal(out[0].process.pid, 777);
	assert_true(vmdef_record_equal(&r, &out[0]));
	free_records(out, n);

	r.state = VM_STATE_STOPPED;
	memset(&r.process, 0, sizeof(r.process));
	save_ok(s, &r);
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].process.pid, 0);
	assert_int_equal(out[0].process.starttime, 0);
	assert_string_equal(out[0].process.boot_id, "");
	assert_true(vmdef_record_equal(&r, &out[0]));
	free_records(out, n);

	db = raw_open(f->path);
	text = raw_text(db, "SELECT typeof(boot_id) || ':' || quote(boot_id) || ':' || pid || ':' "
			    "|| pid_starttime FROM vms");
	assert_string_equal(text, "text:'':0:0");
	free(text);
	sqlite3_close(db);
	store_close(s);
	vmdef_record_done(&r);
}

static void test_upsert(void **state)
{
	struct fixture *f = *state;
	struct vm_record r, *out = NULL;
	struct store *s = open_ok(f->path);
	size_t n;

	basic_record(&r, 1, "web");
	save_ok(s, &r);
	r.state = VM_STATE_RUNNING;
	r.state_reason = xstrdup("started");
	r.started_at_us = 1700000000999999;
	r.config.vcpus = 8;
	free(r.name);
	r.name = xstrdup("web-renamed");
	save_ok(s, &r);

	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].state, VM_STATE_RUNNING);
	assert_string_equal(out[0].state_reason, "started");
	assert_string_equal(out[0].name, "web-renamed");
	assert_true(vmdef_record_equal(&r, &out[0]));
	free_records(out, n);

	/* back to no reason: NULL is stored as NULL, not left over */
	free(r.state_reason);
	r.state_reason = NULL;
	r.state = VM_STATE_STOPPED;
	save_ok(s, &r);
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_null(out[0].state_reason);
	assert_int_equal(out[0].state, VM_STATE_STOPPED);
	free_records(out, n);
	store_close(s);
	vmdef_record_done(&r);
}

static void test_duplicate_name(void **state)
{
	struct fixture *f = *state;
	struct vm_record a, b, *out = NULL;
	struct mv_error err = {0};
	struct store *s = open_ok(f->path);
	char want[256];
	size_t n;

	basic_record(&a, 1, "db");
	basic_record(&b, 2, "db");
	b.config.vcpus = 16;
	save_ok(s, &a);
	assert_int_equal(store_vm_save(s, &b, &err), -EEXIST);
	snprintf(want, sizeof(want), "name 'db' is already used by vm %s", a.id);
	assert_string_equal(err.msg, want);

	/* renaming an existing VM onto a taken name fails the same way */
	free(b.name);
	b.name = xstrdup("db-2");
	save_ok(s, &b);
	free(b.name);
	b.name = xstrdup("db");
	mv_error_clear(&err);
	assert_int_equal(store_vm_save(s, &b, &err), -EEXIST);
	assert_string_equal(err.msg, want);

	/* nothing changed, and the store still works */
	n = load_ok(s, &out);
	assert_int_equal(n, 2);
	assert_true(vmdef_record_equal(&out[0], &a));
	assert_string_equal(out[1].name, "db-2");
	assert_int_equal(out[1].config.vcpus, 16);
	free_records(out, n);
	free(b.name);
	b.name = xstrdup("db-3");
	save_ok(s, &b);
	store_close(s);
	vmdef_record_done(&a);
	vmdef_record_done(&b);
}

static void test_invalid_records(void **state)
{
	struct fixture *f = *state;
	struct mv_error err = {0};
	struct store *s = open_ok(f->path);
	struct vm_record r, *out = NULL;
	char *name;

	basic_record(&r, 1, "bad");
	r.state = (enum vm_state)0;
	assert_int_equal(store_vm_save(s, &r, &err), -EINVAL);
	r.state = VM_STATE_STOPPED;
	r.config.disks[0].format = (enum disk_format)9;
	mv_error_clear(&err);
	assert_int_equal(store_vm_save(s, &r, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "disks[0].format"));
	r.config.disks[0].format = DISK_FORMAT_RAW;
	name = r.name;
	r.name = NULL;
	assert_int_equal(store_vm_save(s, &r, NULL), -EINVAL);
	r.name = name;
	r.process.pid = -1;
	mv_error_clear(&err);
	assert_int_equal(store_vm_save(s, &r, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "pid"));
	r.process.pid = 1;
	memset(r.process.boot_id, 'b', sizeof(r.process.boot_id));
	mv_error_clear(&err);
	assert_int_equal(store_vm_save(s, &r, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "boot_id"));
	r.process.boot_id[sizeof(r.process.boot_id) - 1] = '\0';
	save_ok(s, &r); /* 36 characters is the most there is room for */
	assert_int_equal(store_vm_delete(s, r.id, NULL), 0);
	r.id[0] = '\0';
	assert_int_equal(store_vm_save(s, &r, NULL), -EINVAL);
	assert_int_equal(load_ok(s, &out), 0);
	free(out);
	store_close(s);
	vmdef_record_done(&r);
}

static void test_delete(void **state)
{
	struct fixture *f = *state;
	struct vm_record a, b, *out = NULL;
	struct mv_error err = {0};
	struct store *s = open_ok(f->path);
	size_t n;

	basic_record(&a, 1, "one");
	basic_record(&b, 2, "two");
	save_ok(s, &a);
	save_ok(s, &b);
	assert_int_equal(store_vm_delete(s, a.id, &err), 0);
	assert_int_equal(err.code, 0);
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].id, b.id);
	free_records(out, n);

	assert_int_equal(store_vm_delete(s, a.id, &err), -ENOENT);
	assert_non_null(strstr(err.msg, a.id));
	assert_int_equal(store_vm_delete(s, "no-such-id", NULL), -ENOENT);

	/* the name of a deleted VM is free again */
	set_id(&a, 3);
	free(a.name);
	a.name = xstrdup("two-again");
	save_ok(s, &a);
	assert_int_equal(store_vm_delete(s, b.id, NULL), 0);
	free(a.name);
	a.name = xstrdup("two");
	save_ok(s, &a);
	store_close(s);

	s = open_ok(f->path);
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_true(vmdef_record_equal(&out[0], &a));
	free_records(out, n);
	store_close(s);
	vmdef_record_done(&a);
	vmdef_record_done(&b);
}

static void test_persistence_and_order(void **state)
{
	static const char *const names[] = {"web-2", "a", "web-10", "B", "zeta", "Web-1", "_x"};
	static const char *const sorted[] = {"B", "Web-1", "_x", "a", "web-10", "web-2", "zeta"};
	struct fixture *f = *state;
	struct vm_record in[7], *out = NULL;
	struct store *s = open_ok(f->path);
	size_t n;

	for (unsigned i = 0; i < 7; i++) {
		basic_record(&in[i], 100 + i, names[i]);
		save_ok(s, &in[i]);
	}
	store_close(s);

	s = open_ok(f->path);
	assert_int_equal(store_schema_version_found(s), STORE_SCHEMA_VERSION);
	n = load_ok(s, &out);
	assert_int_equal(n, 7);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(out[i].name, sorted[i]);
		for (size_t j = 0; j < 7; j++)
			if (strcmp(in[j].name, sorted[i]) == 0)
				assert_true(vmdef_record_equal(&in[j], &out[i]));
	}
	free_records(out, n);
	store_close(s);
	for (size_t i = 0; i < 7; i++)
		vmdef_record_done(&in[i]);
}

static void test_empty_load(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct vm_record *out = (struct vm_record *)&out;

	assert_int_equal(load_ok(s, &out), 0);
	free(out);
	store_close(s);
}

/* Every descriptor of the store is close-on-exec (the daemon spawns hypervisors) and is gone
 * after store_close. */
static void test_fds_cloexec_and_released(void **state)
{
	struct fixture *f = *state;
	struct vm_record r;
	struct store *s;
	struct dirent *de;
	DIR *d;
	int before = 0, during = 0, after = 0, mine = 0;

	for (d = opendir("/proc/self/fd"); (de = readdir(d));)
		before += de->d_name[0] != '.';
	closedir(d);

	s = open_ok(f->path);
	basic_record(&r, 1, "fds");
	save_ok(s, &r);
	d = opendir("/proc/self/fd");
	assert_non_null(d);
	while ((de = readdir(d))) {
		char target[PATH_MAX] = "", info[300], line[128];
		unsigned long flags = 0;
		ssize_t n;
		FILE *fi;

		if (de->d_name[0] == '.')
			continue;
		during++;
		n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
		if (n <= 0 || strncmp(target, f->dir, strlen(f->dir)) != 0)
			continue;
		snprintf(info, sizeof(info), "/proc/self/fdinfo/%s", de->d_name);
		fi = fopen(info, "re");
		assert_non_null(fi);
		while (fgets(line, sizeof(line), fi))
			if (sscanf(line, "flags: %lo", &flags) == 1)
				break;
		fclose(fi);
		if (!(flags & O_CLOEXEC))
			fail_msg("fd %s (%s) lacks O_CLOEXEC", de->d_name, target);
		mine++;
	}
	closedir(d);
	assert_true(during > before);
	assert_true(mine >= 3); /* the database, its WAL and its shm */
	store_close(s);
	vmdef_record_done(&r);

	for (d = opendir("/proc/self/fd"); (de = readdir(d));)
		after += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(after, before);
}

static void test_refuse_garbage(void **state)
{
	struct fixture *f = *state;
	unsigned char junk[65536];
	static const char text[] = "this is not a database at all, just some text\n";

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)((i * 2654435761u) >> 13);
	write_at(f->path, 0, junk, sizeof(junk));
	assert_refused(f->path, -EUCLEAN, corrupt_needles);

	assert_int_equal(unlink(f->path), 0);
	write_at(f->path, 0, text, sizeof(text) - 1);
	assert_refused(f->path, -EUCLEAN, corrupt_needles);
}

static void test_refuse_newer_schema(void **state)
{
	char known[32];
	const char *const needles[] = {"schema version 99", "newer than this mvirt-vmm", known,
				       "refusing to start", NULL};
	struct fixture *f = *state;
	sqlite3 *db;
	size_t wal_len;
	char wal[PATH_MAX];
	unsigned char *buf;

	snprintf(known, sizeof(known), "understands (%d)", STORE_SCHEMA_VERSION);
	/* a rollback-journal database */
	db = raw_open(f->path);
	raw_exec(db, "CREATE TABLE future(x); INSERT INTO future VALUES ('from the future');"
		     "PRAGMA user_version = 99");
	sqlite3_close(db);
	assert_refused(f->path, -EPROTO, needles);
	unlink(f->path);

	/* a WAL database whose last commits are still in the WAL: closing the refused file must
	 * not checkpoint them into it */
	db = raw_open(f->path);
	raw_exec(db, "PRAGMA journal_mode = WAL; CREATE TABLE future(x); PRAGMA user_version = 99;"
		     "INSERT INTO future VALUES ('in the wal')");
	assert_int_equal(sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	buf = slurp(wal, &wal_len);
	assert_true(wal_len > 0);
	free(buf);
	assert_refused(f->path, -EPROTO, needles);

	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), 99);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM future"), 1);
	sqlite3_close(db);
}

/* Fills a new store with n small VMs, copying one saved through the store in SQL. */
static void fill_store(const char *path, unsigned n)
{
	struct vm_record r;
	struct store *s = open_ok(path);
	char sql[1024];
	sqlite3 *db;

	basic_record(&r, 0, "vm-00000");
	save_ok(s, &r);
	db = raw_open(path);
	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %u) "
		 "INSERT INTO vms (" V1_COLUMNS
		 ") SELECT printf('00000000-0000-4000-8000-%%012d', i), "
		 "printf('vm-%%05d', i), state, state_reason, created_at_us + i, started_at_us, "
		 "config FROM c, vms WHERE vms.id = '%s'",
		 n - 1, r.id);
	raw_exec(db, sql);
	sqlite3_close(db);
	store_close(s);
	vmdef_record_done(&r);
}

/* Reads the 4-byte big-endian child pointer of the middle cell of an interior table page. */
static unsigned middle_child(const unsigned char *page, unsigned hdr)
{
	unsigned ncells = (unsigned)page[hdr + 3] << 8 | page[hdr + 4];
	unsigned cell = (unsigned)page[hdr + 12 + 2 * (ncells / 2)] << 8 |
			page[hdr + 12 + 2 * (ncells / 2) + 1];

	return (unsigned)page[cell] << 24 | (unsigned)page[cell + 1] << 16 |
	       (unsigned)page[cell + 2] << 8 | page[cell + 3];
}

/* Finds a leaf page of the vms table by walking down from its root through middle cells. */
static unsigned vms_leaf_page(const char *path, unsigned *ret_page_size)
{
	unsigned char *file;
	size_t len;
	unsigned page_size, pgno;
	sqlite3 *db = raw_open(path);

	page_size = (unsigned)raw_int(db, "PRAGMA page_size");
	pgno = (unsigned)raw_int(db, "SELECT rootpage FROM sqlite_schema WHERE name = 'vms'");
	sqlite3_close(db);
	file = slurp(path, &len);
	for (;;) {
		const unsigned char *page = file + (size_t)(pgno - 1) * page_size;
		unsigned hdr = pgno == 1 ? 100 : 0;

		assert_true((size_t)pgno * page_size <= len);
		if (page[hdr] == 0x0d) /* leaf table page */
			break;
		assert_int_equal(page[hdr], 0x05); /* interior table page */
		pgno = middle_child(page, hdr);
	}
	free(file);
	*ret_page_size = page_size;
	return pgno;
}

/* quick_check validates structure, not values: the damage must reach cell headers (a few bytes
 * changed inside a stored value pass it and are caught when the row is parsed, see
 * test_bad_config_row). */
static void test_refuse_corrupt_page(void **state)
{
	static const struct {
		unsigned from_quarters, len_quarters;
	} damage[] = {
		{1, 2}, /* the middle half of a leaf page: cells only */
		{0, 2}, /* its first half: header and cell pointers */
	};
	struct fixture *f = *state;
	unsigned char junk[65536];
	unsigned page_size, pgno;
	char wal[PATH_MAX];
	struct stat st;

	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	memset(junk, 0xee, sizeof(junk));
	for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
		unlink(f->path);
		fill_store(f->path, 2000);
		/* all checkpointed into the file at close */
		assert_true(stat(wal, &st) < 0 && errno == ENOENT);
		pgno = vms_leaf_page(f->path, &page_size);
		assert_true(page_size <= sizeof(junk));
		assert_true(pgno > 2);
		write_at(f->path,
			 (off_t)(pgno - 1) * page_size + damage[i].from_quarters * page_size / 4,
			 junk, damage[i].len_quarters * page_size / 4);
		assert_refused(f->path, -EUCLEAN, corrupt_needles);
		assert_refused(f->path, -EUCLEAN, (const char *const[]){"integrity_check", NULL});
	}
}

static void test_migrate_v0_with_content(void **state)
{
	struct fixture *f = *state;
	struct vm_record r, *out = NULL;
	struct store *s;
	sqlite3 *db;
	char *kept;
	size_t n;

	db = raw_open(f->path);
	raw_exec(db, "CREATE TABLE notes(x TEXT); INSERT INTO notes VALUES ('keep me')");
	sqlite3_close(db);

	s = open_ok(f->path);
	assert_int_equal(store_schema_version_found(s), 0);
	basic_record(&r, 1, "after-migration");
	save_ok(s, &r);
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_true(vmdef_record_equal(&r, &out[0]));
	free_records(out, n);
	store_close(s);

	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	kept = raw_text(db, "SELECT x FROM notes");
	assert_string_equal(kept, "keep me");
	free(kept);
	sqlite3_close(db);
	vmdef_record_done(&r);
}

/* A file written at schema version 1, with VMs in it, is migrated at open: every row intact,
 * the process columns zero/empty, and the table exactly as a new database has it. */
static void test_migrate_v1_with_content(void **state)
{
	static const char basic_json[] =
		"{\"vcpus\":2,\"memory_mb\":1024,\"kernel\":\"/boot/vmlinuz\","
		"\"cmdline\":\"console=ttyS0\",\"disks\":[{\"path\":\"/var/lib/mvirt/a.raw\","
		"\"readonly\":false,\"format\":\"raw\"}],\"nics\":[]}";
	struct fixture *f = *state;
	struct vm_record want[4], *out = NULL, dup;
	struct mv_error err = {0};
	char fresh_path[PATH_MAX], sql[2048], *fresh, *migrated;
	struct store *s;
	sqlite3 *db;
	size_t n;
	int len;

	/* what store.c wrote for these records at version 1, in name order */
	basic_record(&want[0], 1, "alpha");
	basic_record(&want[1], 2, "beta \xc3\xa9");
	want[1].state = VM_STATE_RUNNING;
	want[1].state_reason = xstrdup("started by user");
	want[1].started_at_us = 1700000000500000;
	memset(&want[2], 0, sizeof(want[2]));
	set_id(&want[2], 3);
	want[2].name = xstrdup("gamma");
	want[2].state = VM_STATE_CRASHED;
	want[2].state_reason = xstrdup("it's gone");
	want[2].created_at_us = INT64_MAX;
	want[2].config.vcpus = 1;
	want[2].config.memory_mb = 512;
	want[2].config.n_nics = 1;
	want[2].config.nics = calloc(1, sizeof(*want[2].config.nics));
	assert_non_null(want[2].config.nics);
	want[2].config.nics[0] =
		(struct vm_nic){xstrdup("tap0"), NULL, xstrdup("52:54:00:00:00:01")};

	db = raw_open(f->path);
	raw_exec(db, "PRAGMA journal_mode = WAL");
	raw_exec(db, vms_v1_sql);
	len = snprintf(
		sql, sizeof(sql),
		"INSERT INTO vms (" V1_COLUMNS ") VALUES "
		"('%s', 'alpha', 1, NULL, %" PRId64 ", 0, '%s'),"
		"('%s', 'beta \xc3\xa9', 3, 'started by user', %" PRId64 ", %" PRId64 ", '%s'),"
		"('%s', 'gamma', 6, 'it''s gone', %" PRId64 ", 0, '{\"vcpus\":1,\"memory_mb\":512,"
		"\"disks\":[],\"nics\":[{\"tap\":\"tap0\",\"mac\":\"52:54:00:00:00:01\"}]}');"
		"PRAGMA user_version = 1",
		want[0].id, want[0].created_at_us, basic_json, want[1].id, want[1].created_at_us,
		want[1].started_at_us, basic_json, want[2].id, want[2].created_at_us);
	assert_true(len > 0 && (size_t)len < sizeof(sql));
	raw_exec(db, sql);
	sqlite3_close(db);

	s = open_ok(f->path);
	assert_int_equal(store_schema_version_found(s), 1);
	n = load_ok(s, &out);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		if (!vmdef_record_equal(&want[i], &out[i]))
			fail_msg("row %zu (%s) changed in the migration", i, want[i].name);
		assert_int_equal(out[i].process.pid, 0);
		assert_int_equal(out[i].process.starttime, 0);
		assert_string_equal(out[i].process.boot_id, "");
	}
	assert_string_equal(out[1].state_reason, "started by user");
	assert_string_equal(out[2].config.nics[0].mac, "52:54:00:00:00:01");
	free_records(out, n);

	/* the migrated table takes the new columns and keeps its constraints */
	basic_record(&want[3], 4, "omega");
	want[3].state = VM_STATE_RUNNING;
	want[3].process = (struct vm_process){4242, (uint64_t)1 << 40,
					      "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"};
	save_ok(s, &want[3]);
	basic_record(&dup, 5, "alpha");
	assert_int_equal(store_vm_save(s, &dup, &err), -EEXIST);
	vmdef_record_done(&dup);
	store_close(s);

	snprintf(fresh_path, sizeof(fresh_path), "%s/fresh.db", f->dir);
	store_close(open_ok(fresh_path));
	db = raw_open(fresh_path);
	fresh = table_layout(db);
	sqlite3_close(db);
	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	migrated = table_layout(db);
	assert_string_equal(migrated, fresh);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM vms"), 4);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM vms WHERE pid = 0 AND "
				     "pid_starttime = 0 AND boot_id = ''"),
			 3);
	free(fresh);
	free(migrated);
	sqlite3_close(db);

	s = open_ok(f->path);
	assert_int_equal(store_schema_version_found(s), STORE_SCHEMA_VERSION);
	n = load_ok(s, &out);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_true(vmdef_record_equal(&want[i], &out[i]));
	free_records(out, n);
	store_close(s);
	for (size_t i = 0; i < 4; i++)
		vmdef_record_done(&want[i]);
}

/* A failing migration leaves the schema as it was: one transaction, whichever step fails. */
static void test_migration_is_atomic(void **state)
{
	struct fixture *f = *state;
	struct mv_error err = {0};
	struct store *s = NULL;
	char want[128], *before, *after;
	sqlite3 *db;

	/* the first step fails: a foreign table already has the name */
	db = raw_open(f->path);
	raw_exec(db, "CREATE TABLE vms(x TEXT); INSERT INTO vms VALUES ('foreign')");
	sqlite3_close(db);

	assert_int_equal(store_open(f->path, &s, &err), -EIO);
	assert_null(s);
	snprintf(want, sizeof(want), "migrating the schema from version 0 to %d",
		 STORE_SCHEMA_VERSION);
	if (!strstr(err.msg, want))
		fail_msg("message lacks \"%s\": %s", want, err.msg);

	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), 0);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_table_info('vms')"), 1);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM vms"), 1);
	sqlite3_close(db);
	assert_int_equal(unlink(f->path), 0);

	/* a version 1 file whose table already has the last column that step 2 adds: its first
	 * ALTERs succeed, the last fails, and all of them are rolled back */
	db = raw_open(f->path);
	raw_exec(db, vms_v1_sql);
	raw_exec(db,
		 "ALTER TABLE vms ADD COLUMN boot_id TEXT; PRAGMA user_version = 1;"
		 "INSERT INTO vms (" V1_COLUMNS ") VALUES ('id-1', 'kept', 1, NULL, 1, 0, '{}')");
	before = table_layout(db);
	sqlite3_close(db);

	mv_error_clear(&err);
	assert_int_equal(store_open(f->path, &s, &err), -EIO);
	assert_null(s);
	snprintf(want, sizeof(want), "migrating the schema from version 1 to %d",
		 STORE_SCHEMA_VERSION);
	if (!strstr(err.msg, want))
		fail_msg("message lacks \"%s\": %s", want, err.msg);
	assert_non_null(strstr(err.msg, "boot_id"));

	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), 1);
	after = table_layout(db);
	assert_string_equal(after, before);
	assert_null(strstr(after, "pid"));
	assert_int_equal(raw_int(db, "SELECT count(*) FROM vms WHERE name = 'kept'"), 1);
	free(before);
	free(after);
	sqlite3_close(db);
}

/* A row whose config is not what the store writes is reported, not loaded half-way. */
static void test_bad_config_row(void **state)
{
	struct fixture *f = *state;
	struct vm_record *out = NULL;
	struct mv_error err = {0};
	struct store *s = open_ok(f->path);
	sqlite3 *db = raw_open(f->path);
	size_t n = 0;

	raw_exec(db, "INSERT INTO vms (" V1_COLUMNS ") VALUES "
		     "('id-1', 'ok', 1, NULL, 1, 0, '{\"vcpus\": 1}'),"
		     "('id-2', 'x', 1, NULL, 1, 0, '{\"vcpus\": -1}')");
	assert_int_equal(store_vm_load_all(s, &out, &n, &err), -EUCLEAN);
	assert_non_null(strstr(err.msg, "config.vcpus"));
	raw_exec(
		db,
		"UPDATE vms SET config = '{\"disks\": [{\"format\": \"vhd\"}]}' WHERE id = 'id-2'");
	mv_error_clear(&err);
	assert_int_equal(store_vm_load_all(s, &out, &n, &err), -EUCLEAN);
	assert_non_null(strstr(err.msg, "disks"));
	raw_exec(db, "UPDATE vms SET config = '{\"vcpus\": 1} trailing' WHERE id = 'id-2'");
	mv_error_clear(&err);
	assert_int_equal(store_vm_load_all(s, &out, &n, &err), -EUCLEAN);
	/* not UTF-8 (written by something else than mvirt-vmm): named, never served */
	raw_exec(db, "UPDATE vms SET config = '{\"cmdline\": \"a\xff\"}' WHERE id = 'id-2'");
	mv_error_clear(&err);
	assert_int_equal(store_vm_load_all(s, &out, &n, &err), -EUCLEAN);
	assert_non_null(strstr(err.msg, "vm id-2: config is not valid UTF-8"));
	raw_exec(db, "UPDATE vms SET config = '{\"vcpus\": 1}', name = 'x\xc0\xaf' "
		     "WHERE id = 'id-2'");
	mv_error_clear(&err);
	assert_int_equal(store_vm_load_all(s, &out, &n, &err), -EUCLEAN);
	assert_non_null(strstr(err.msg, "vm id-2: name is not valid UTF-8"));
	raw_exec(db, "UPDATE vms SET name = 'x', config = '{\"memory_mb\": 18446744073709551615}' "
		     "WHERE id = 'id-2'");
	n = load_ok(s, &out);
	assert_int_equal(n, 2);
	assert_int_equal(out[1].config.memory_mb, UINT64_MAX);
	assert_int_equal(out[0].config.vcpus, 1);
	free_records(out, n);
	sqlite3_close(db);
	store_close(s);
}

/* A row whose process columns the store cannot have written is reported, not truncated. */
static void test_bad_process_row(void **state)
{
	static const char *const bad[] = {
		"pid = -1",
		"pid = 2147483648",
		"boot_id = '6f1c2a4e-9b3d-4e8f-a1b2-c3d4e5f60718X'",
		"boot_id = CAST(X'610062' AS TEXT)",
	};
	struct fixture *f = *state;
	struct vm_record r, *out = NULL;
	struct mv_error err = {0};
	struct store *s = open_ok(f->path);
	sqlite3 *db = raw_open(f->path);
	char sql[256];
	size_t n = 0;

	basic_record(&r, 1, "proc");
	save_ok(s, &r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		raw_exec(db, "UPDATE vms SET pid = 1, boot_id = ''");
		snprintf(sql, sizeof(sql), "UPDATE vms SET %s", bad[i]);
		raw_exec(db, sql);
		mv_error_clear(&err);
		if (store_vm_load_all(s, &out, &n, &err) != -EUCLEAN)
			fail_msg("%s: loaded", bad[i]);
		assert_non_null(strstr(err.msg, i < 2 ? "invalid pid" : "invalid boot_id"));
		assert_non_null(strstr(err.msg, r.id));
	}
	raw_exec(db, "UPDATE vms SET pid = 2147483647, "
		     "boot_id = '6f1c2a4e-9b3d-4e8f-a1b2-c3d4e5f60718'");
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].process.pid, INT32_MAX);
	assert_string_equal(out[0].process.boot_id, "6f1c2a4e-9b3d-4e8f-a1b2-c3d4e5f60718");
	free_records(out, n);
	sqlite3_close(db);
	store_close(s);
	vmdef_record_done(&r);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_load_1000_is_fast(void **state)
{
	struct fixture *f = *state;
	struct vm_record *out = NULL, r;
	struct store *s;
	double t0, load_ms, save_ms;
	size_t n;

	fill_store(f->path, 1000);
	s = open_ok(f->path);
	t0 = now_ms();
	n = load_ok(s, &out);
	load_ms = now_ms() - t0;
	assert_int_equal(n, 1000);
	for (size_t i = 0; i < n; i++) {
		char want[32];

		snprintf(want, sizeof(want), "vm-%05zu", i);
		assert_string_equal(out[i].name, want);
	}
	assert_true(vmdef_config_equal(&out[0].config, &out[999].config));

	basic_record(&r, 5000, "one-more");
	t0 = now_ms();
	save_ok(s, &r);
	save_ms = now_ms() - t0;
	print_message("load of %zu vms: %.2f ms; one save: %.2f ms\n", n, load_ms, save_ms);
	/* a few ms in a release build; the bound leaves room for sanitizers and slow CI */
	assert_true(load_ms < 250.0);
	free_records(out, n);
	vmdef_record_done(&r);
	store_close(s);
}

/* --- volume rows ---------------------------------------------------------------------------- */

/* The volumes table as migration 3 defines it. */
static const char volumes_layout[] = "name:TEXT:1:-:1 pool:TEXT:1:-:0 format:INTEGER:1:-:0 "
				     "created_at_us:INTEGER:1:-:0 backing:TEXT:0:-:0";

static char *volumes_table_layout(sqlite3 *db)
{
	return raw_text(db,
			"SELECT group_concat(name || ':' || type || ':' || \"notnull\" || ':' || "
			"ifnull(dflt_value, '-') || ':' || pk, ' ') "
			"FROM (SELECT * FROM pragma_table_info('volumes') ORDER BY cid)");
}

static size_t load_volumes_ok(struct store *s, struct volume_record **ret)
{
	struct mv_error err = {0};
	size_t n = SIZE_MAX;
	int r = store_volume_load_all(s, ret, &n, &err);

	if (r < 0)
		fail_msg("store_volume_load_all: %d %s", r, err.msg);
	return n;
}

static void free_volumes(struct volume_record *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_volume_record_done(&v[i]);
	free(v);
}

static void test_volume_rows(void **state)
{
	struct fixture *f = *state;
	const struct volume_record want[] = {
		{(char *)"base", (char *)"default", DISK_FORMAT_QCOW2, 1700000000000001, NULL},
		{(char *)"clone-1", (char *)"fast", DISK_FORMAT_QCOW2, INT64_MAX, (char *)"base"},
		{(char *)"it's", (char *)"default", DISK_FORMAT_RAW, INT64_MIN, NULL},
	};
	struct volume_record upd = want[2], *out = NULL;
	struct mv_error err = {0};
	struct store *s = open_ok(f->path);
	char *layout;
	sqlite3 *db;
	size_t n;

	db = raw_open(f->path);
	layout = volumes_table_layout(db);
	assert_string_equal(layout, volumes_layout);
	free(layout);
	sqlite3_close(db);

	assert_int_equal(load_volumes_ok(s, &out), 0);
	free(out);
	/* saved in an order where the backing volume comes first, loaded by name */
	assert_int_equal(store_volume_save(s, &want[2], &err), 0);
	assert_int_equal(store_volume_save(s, &want[0], &err), 0);
	assert_int_equal(store_volume_save(s, &want[1], &err), 0);
	store_close(s);

	s = open_ok(f->path);
	n = load_volumes_ok(s, &out);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(out[i].name, want[i].name);
		assert_string_equal(out[i].pool, want[i].pool);
		assert_int_equal(out[i].format, want[i].format);
		assert_int_equal(out[i].created_at_us, want[i].created_at_us);
		if (want[i].backing)
			assert_string_equal(out[i].backing, want[i].backing);
		else
			assert_null(out[i].backing);
	}
	free_volumes(out, n);

	/* upsert */
	upd.pool = (char *)"fast";
	upd.format = DISK_FORMAT_QCOW2;
	assert_int_equal(store_volume_save(s, &upd, &err), 0);
	n = load_volumes_ok(s, &out);
	assert_int_equal(n, 3);
	assert_string_equal(out[2].pool, "fast");
	assert_int_equal(out[2].format, DISK_FORMAT_QCOW2);
	free_volumes(out, n);

	/* a backing volume must exist, and cannot go before its clones */
	upd = want[1];
	upd.name = (char *)"orphan";
	upd.backing = (char *)"nope";
	assert_int_equal(store_volume_save(s, &upd, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "backing volume 'nope'"));
	mv_error_clear(&err);
	assert_int_equal(store_volume_delete(s, "base", &err), -EBUSY);
	assert_non_null(strstr(err.msg, "'base'"));
	/* invalid records */
	upd = want[0];
	upd.format = DISK_FORMAT_UNSPECIFIED;
	assert_int_equal(store_volume_save(s, &upd, NULL), -EINVAL);
	upd = want[0];
	upd.pool = NULL;
	assert_int_equal(store_volume_save(s, &upd, NULL), -EINVAL);

	mv_error_clear(&err);
	assert_int_equal(store_volume_delete(s, "missing", &err), -ENOENT);
	assert_non_null(strstr(err.msg, "'missing'"));
	assert_int_equal(store_volume_delete(s, NULL, NULL), -EINVAL);
	assert_int_equal(store_volume_delete(s, "clone-1", NULL), 0);
	assert_int_equal(store_volume_delete(s, "base", NULL), 0);
	n = load_volumes_ok(s, &out);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].name, "it's");
	free_volumes(out, n);
	store_close(s);
	store_volume_record_done(NULL);
}

static void test_bad_volume_row(void **state)
{
	struct fixture *f = *state;
	struct volume_record *out = NULL;
	struct mv_error err = {0};
	struct store *s = open_ok(f->path);
	size_t n = 0;
	sqlite3 *db;

	store_close(s);
	db = raw_open(f->path);
	raw_exec(db, "INSERT INTO volumes VALUES ('v', 'default', 9, 1, NULL)");
	sqlite3_close(db);
	s = open_ok(f->path);
	assert_int_equal(store_volume_load_all(s, &out, &n, &err), -EUCLEAN);
	assert_null(out);
	assert_non_null(strstr(err.msg, "volume 'v'"));
	store_close(s);
}

/* A version 2 file gets the volumes table; its VMs stay as they were. */
static void test_migrate_v2_with_content(void **state)
{
	struct fixture *f = *state;
	struct vm_record want, *out = NULL;
	struct volume_record vol = {(char *)"v", (char *)"default", DISK_FORMAT_RAW, 1, NULL};
	struct volume_record *vols = NULL;
	struct store *s;
	char fresh_path[PATH_MAX], sql[1024], *fresh, *migrated;
	sqlite3 *db;
	size_t n;

	basic_record(&want, 1, "alpha");
	db = raw_open(f->path);
	raw_exec(db, "PRAGMA journal_mode = WAL");
	raw_exec(db, vms_v1_sql);
	raw_exec(db, "ALTER TABLE vms ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;"
		     "ALTER TABLE vms ADD COLUMN pid_starttime INTEGER NOT NULL DEFAULT 0;"
		     "ALTER TABLE vms ADD COLUMN boot_id TEXT NOT NULL DEFAULT ''");
	snprintf(sql, sizeof(sql),
		 "INSERT INTO vms (" V1_COLUMNS ") VALUES ('%s', 'alpha', 1, NULL, %" PRId64
		 ", 0, '{\"vcpus\":2,\"memory_mb\":1024,\"kernel\":\"/boot/vmlinuz\","
		 "\"cmdline\":\"console=ttyS0\",\"disks\":[{\"path\":\"/var/lib/mvirt/a.raw\","
		 "\"readonly\":false,\"format\":\"raw\"}],\"nics\":[]}'); PRAGMA user_version = 2",
		 want.id, want.created_at_us);
	raw_exec(db, sql);
	sqlite3_close(db);

	s = open_ok(f->path);
	assert_int_equal(store_schema_version_found(s), 2);
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_true(vmdef_record_equal(&want, &out[0]));
	free_records(out, n);
	assert_int_equal(load_volumes_ok(s, &vols), 0);
	free(vols);
	assert_int_equal(store_volume_save(s, &vol, NULL), 0);
	store_close(s);

	snprintf(fresh_path, sizeof(fresh_path), "%s/fresh.db", f->dir);
	store_close(open_ok(fresh_path));
	db = raw_open(fresh_path);
	fresh = volumes_table_layout(db);
	sqlite3_close(db);
	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	migrated = volumes_table_layout(db);
	assert_string_equal(migrated, fresh);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM volumes"), 1);
	free(fresh);
	free(migrated);
	sqlite3_close(db);
	vmdef_record_done(&want);
}

/* --- network rows --------------------------------------------------------------------------- */

/* The networks table as migration 4 defines it. */
static const char networks_layout[] = "id:TEXT:1:-:1 name:TEXT:1:-:0 created_at_us:INTEGER:1:-:0 "
				      "config:TEXT:1:-:0";

static char *networks_table_layout(sqlite3 *db)
{
	return raw_text(db,
			"SELECT group_concat(name || ':' || type || ':' || \"notnull\" || ':' || "
			"ifnull(dflt_value, '-') || ':' || pk, ' ') "
			"FROM (SELECT * FROM pragma_table_info('networks') ORDER BY cid)");
}

static char *xstrdup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* A network record (free with store_network_record_done()); NULL strings stay unset. */
static void net_record(struct network_record *n, unsigned id, const char *name, enum net_mode mode,
		       const char *bridge, const char *subnet, const char *dhcp_start,
		       const char *dhcp_end, const char *ipv6, const char *domain)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->id, sizeof(n->id), "00000000-0000-4000-9000-%012u", id);
	n->name = xstrdup(name);
	n->created_at_us = 1700000000000000 + id;
	n->config = (struct net_config){
		mode,
		xstrdup_or_null(bridge),
		xstrdup_or_null(subnet),
		xstrdup_or_null(dhcp_start),
		xstrdup_or_null(dhcp_end),
		xstrdup_or_null(ipv6),
		xstrdup_or_null(domain),
	};
}

static void assert_str_or_null(const char *want, const char *got, const char *what)
{
	if (!want && !got)
		return;
	if (!want || !got || strcmp(want, got) != 0)
		fail_msg("%s: want %s%s%s, got %s%s%s", what, want ? "'" : "", want ? want : "NULL",
			 want ? "'" : "", got ? "'" : "", got ? got : "NULL", got ? "'" : "");
}

static void assert_network_equal(const struct network_record *want,
				 const struct network_record *got)
{
	assert_string_equal(got->id, want->id);
	assert_string_equal(got->name, want->name);
	assert_true(got->created_at_us == want->created_at_us);
	assert_int_equal(got->config.mode, want->config.mode);
	assert_str_or_null(want->config.bridge, got->config.bridge, "bridge");
	assert_str_or_null(want->config.ipv4_subnet, got->config.ipv4_subnet, "ipv4_subnet");
	assert_str_or_null(want->config.dhcp_start, got->config.dhcp_start, "dhcp_start");
	assert_str_or_null(want->config.dhcp_end, got->config.dhcp_end, "dhcp_end");
	assert_str_or_null(want->config.ipv6_prefix, got->config.ipv6_prefix, "ipv6_prefix");
	assert_str_or_null(want->config.domain, got->config.domain, "domain");
}

static void save_network_ok(struct store *s, const struct network_record *n)
{
	struct mv_error err = {0};
	int r = store_network_save(s, n, &err);

	if (r < 0)
		fail_msg("store_network_save: %d %s", r, err.msg);
	assert_int_equal(err.code, 0);
}

static size_t load_networks_ok(struct store *s, struct network_record **ret)
{
	struct mv_error err = {0};
	size_t n = SIZE_MAX;
	int r = store_network_load_all(s, ret, &n, &err);

	if (r < 0)
		fail_msg("store_network_load_all: %d %s", r, err.msg);
	assert_int_not_equal(n, SIZE_MAX);
	return n;
}

static void free_networks(struct network_record *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_network_record_done(&v[i]);
	free(v);
}

/* Every member round-trips, every mode, and all-unset optional members stay unset. */
static void test_network_rows(void **state)
{
	struct fixture *f = *state;
	struct network_record in[5], *out = (struct network_record *)&out;
	struct store *s = open_ok(f->path);
	char *text;
	sqlite3 *db;
	size_t n;

	db = raw_open(f->path);
	text = networks_table_layout(db);
	assert_string_equal(text, networks_layout);
	free(text);
	sqlite3_close(db);
	assert_int_equal(load_networks_ok(s, &out), 0);
	assert_null(out);

	/* names chosen so that the order by name is in[0..4] */
	net_record(&in[0], 1, "a-nat", NET_MODE_NAT, "mvbr-a", "10.77.0.254/24", "10.77.0.10",
		   "10.77.0.99", "fd42:1::/64", "lab.example");
	in[0].created_at_us = INT64_MAX;
	net_record(&in[1], 2, "b-unset", NET_MODE_UNSPECIFIED, NULL, NULL, NULL, NULL, NULL, NULL);
	in[1].created_at_us = INT64_MIN;
	net_record(&in[2], 3, "c-isolated", NET_MODE_ISOLATED, NULL, "192.168.5.0/24", NULL,
		   "192.168.5.200", NULL, NULL);
	net_record(&in[3], 4, "d-bridge", NET_MODE_BRIDGE, "br0", NULL, NULL, NULL, NULL, NULL);
	net_record(&in[4], 5, "e-odd", NET_MODE_NAT, tricky, "", tricky, "\xc3\xbf", "'); --",
		   "d\xc3\xa9j\xc3\xa0.vu");

	for (size_t i = 5; i-- > 0;)
		save_network_ok(s, &in[i]);
	n = load_networks_ok(s, &out);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_network_equal(&in[i], &out[i]);
	free_networks(out, n);
	store_close(s);

	/* the JSON as stored: the modes by name, unset members (and mode) absent */
	db = raw_open(f->path);
	text = raw_text(db, "SELECT group_concat(config, ' ') FROM "
			    "(SELECT config FROM networks WHERE name IN ('b-unset', 'c-isolated', "
			    "'d-bridge') ORDER BY name)");
	assert_string_equal(text, "{} {\"mode\":\"isolated\",\"ipv4_subnet\":\"192.168.5.0/24\","
				  "\"dhcp_end\":\"192.168.5.200\"} "
				  "{\"mode\":\"bridge\",\"bridge\":\"br0\"}");
	free(text);
	text = raw_text(db, "SELECT json_extract(config, '$.mode') FROM networks WHERE name = "
			    "'a-nat'");
	assert_string_equal(text, "nat");
	free(text);
	sqlite3_close(db);

	/* and again from the file */
	s = open_ok(f->path);
	n = load_networks_ok(s, &out);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_network_equal(&in[i], &out[i]);
	free_networks(out, n);
	store_close(s);
	for (size_t i = 0; i < 5; i++)
		store_network_record_done(&in[i]);
	store_network_record_done(NULL);
}

/* A save with the id of a stored network replaces all of it, unset members included. */
static void test_network_upsert(void **state)
{
	struct fixture *f = *state;
	struct network_record a, b, *out = NULL;
	struct store *s = open_ok(f->path);
	size_t n;

	net_record(&a, 1, "lab", NET_MODE_NAT, "mvbr-lab", "10.1.0.0/24", "10.1.0.5", "10.1.0.9",
		   "fd00:1::/64", "lab.mvirt");
	net_record(&b, 1, "lab-2", NET_MODE_ISOLATED, NULL, "10.2.0.0/16", NULL, NULL, NULL, NULL);
	b.created_at_us = 42;
	save_network_ok(s, &a);
	save_network_ok(s, &b);
	n = load_networks_ok(s, &out);
	assert_int_equal(n, 1);
	assert_network_equal(&b, &out[0]);
	free_networks(out, n);

	/* the old name is free again */
	a.id[35] = '2';
	save_network_ok(s, &a);
	n = load_networks_ok(s, &out);
	assert_int_equal(n, 2);
	assert_network_equal(&a, &out[0]);
	assert_network_equal(&b, &out[1]);
	free_networks(out, n);
	store_close(s);
	store_network_record_done(&a);
	store_network_record_done(&b);
}

static void test_network_duplicate_name(void **state)
{
	struct fixture *f = *state;
	struct network_record a, b, *out = NULL;
	struct vm_record vm;
	struct mv_error err = {0};
	struct store *s = open_ok(f->path);
	char want[256];
	size_t n;

	net_record(&a, 1, "web", NET_MODE_NAT, NULL, "10.3.0.0/24", NULL, NULL, NULL, NULL);
	net_record(&b, 2, "web", NET_MODE_BRIDGE, "br0", NULL, NULL, NULL, NULL, NULL);
	save_network_ok(s, &a);
	assert_int_equal(store_network_save(s, &b, &err), -EEXIST);
	assert_int_equal(err.kind, MV_ERR_EXISTS);
	snprintf(want, sizeof(want), "name 'web' is already used by network %s", a.id);
	assert_string_equal(err.msg, want);

	/* renaming another network onto the name fails the same way */
	free(b.name);
	b.name = xstrdup("web-2");
	save_network_ok(s, &b);
	free(b.name);
	b.name = xstrdup("web");
	mv_error_clear(&err);
	assert_int_equal(store_network_save(s, &b, &err), -EEXIST);
	assert_string_equal(err.msg, want);

	/* nothing changed; a VM may have a network's name */
	n = load_networks_ok(s, &out);
	assert_int_equal(n, 2);
	assert_network_equal(&a, &out[0]);
	assert_string_equal(out[1].name, "web-2");
	assert_int_equal(out[1].config.mode, NET_MODE_BRIDGE);
	free_networks(out, n);
	basic_record(&vm, 1, "web");
	save_ok(s, &vm);
	store_close(s);
	vmdef_record_done(&vm);
	store_network_record_done(&a);
	store_network_record_done(&b);
}

static void test_network_delete(void **state)
{
	struct fixture *f = *state;
	struct network_record a, b, *out = NULL;
	struct mv_error err = {0};
	struct store *s = open_ok(f->path);
	size_t n;

	net_record(&a, 1, "one", NET_MODE_NAT, NULL, "10.4.0.0/24", NULL, NULL, NULL, NULL);
	net_record(&b, 2, "two", NET_MODE_ISOLATED, NULL, "10.5.0.0/24", NULL, NULL, NULL, NULL);
	save_network_ok(s, &a);
	save_network_ok(s, &b);
	assert_int_equal(store_network_delete(s, a.id, &err), 0);
	assert_int_equal(err.code, 0);
	n = load_networks_ok(s, &out);
	assert_int_equal(n, 1);
	assert_network_equal(&b, &out[0]);
	free_networks(out, n);

	assert_int_equal(store_network_delete(s, a.id, &err), -ENOENT);
	assert_int_equal(err.kind, MV_ERR_NOT_FOUND);
	assert_non_null(strstr(err.msg, a.id));
	assert_non_null(strstr(err.msg, "network"));
	assert_int_equal(store_network_delete(s, "no-such-id", NULL), -ENOENT);
	assert_int_equal(store_network_delete(s, NULL, NULL), -EINVAL);
	/* a VM's id is not a network's */
	assert_int_equal(store_network_delete(s, "00000000-0000-4000-8000-000000000002", NULL),
			 -ENOENT);

	/* the name of a deleted network is free again, and it stays deleted in the file */
	free(a.name);
	a.name = xstrdup("two");
	a.id[35] = '3';
	assert_int_equal(store_network_delete(s, b.id, NULL), 0);
	save_network_ok(s, &a);
	store_close(s);
	s = open_ok(f->path);
	n = load_networks_ok(s, &out);
	assert_int_equal(n, 1);
	assert_network_equal(&a, &out[0]);
	free_networks(out, n);
	store_close(s);
	store_network_record_done(&a);
	store_network_record_done(&b);
}

static void test_invalid_network_records(void **state)
{
	struct fixture *f = *state;
	struct network_record r, *out = NULL;
	struct mv_error err = {0};
	struct store *s = open_ok(f->path);
	char *name;

	net_record(&r, 1, "bad", NET_MODE_NAT, NULL, "10.6.0.0/24", NULL, NULL, NULL, NULL);
	r.config.mode = (enum net_mode)4;
	assert_int_equal(store_network_save(s, &r, &err), -EINVAL);
	assert_int_equal(err.kind, MV_ERR_INVALID);
	assert_non_null(strstr(err.msg, "config.mode"));
	assert_non_null(strstr(err.msg, "'bad'"));
	r.config.mode = (enum net_mode) - 1;
	assert_int_equal(store_network_save(s, &r, NULL), -EINVAL);
	r.config.mode = NET_MODE_NAT;
	name = r.name;
	r.name = NULL;
	assert_int_equal(store_network_save(s, &r, NULL), -EINVAL);
	r.name = (char *)"";
	assert_int_equal(store_network_save(s, &r, NULL), -EINVAL);
	r.name = name;
	memset(r.id, 'x', sizeof(r.id));
	mv_error_clear(&err);
	assert_int_equal(store_network_save(s, &r, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "id"));
	r.id[0] = '\0';
	assert_int_equal(store_network_save(s, &r, NULL), -EINVAL);
	assert_int_equal(load_networks_ok(s, &out), 0);
	free(out);

	r.id[0] = 'x';
	r.id[sizeof(r.id) - 1] = '\0';
	save_network_ok(s, &r); /* 36 characters is the most there is room for */
	store_close(s);
	store_network_record_done(&r);
}

/* A row whose config is not what the store writes fails the load, naming the network and the
 * member; nothing is loaded half-way. */
static void test_bad_network_row(void **state)
{
	static const struct {
		const char *config, *needle;
	} bad[] = {
		{"{\"mode\": \"bogus\"}", "config.mode is invalid"},
		{"{\"mode\": \"unknown\"}", "config.mode is invalid"},
		{"{\"mode\": \"\"}", "config.mode is invalid"},
		{"{\"mode\": \"NAT\"}", "config.mode is invalid"},
		{"{\"mode\": 1}", "config.mode is invalid"},
		{"{\"mode\": \"nat\", \"bridge\": 5}", "config.bridge is invalid"},
		{"{\"ipv4_subnet\": true}", "config.ipv4_subnet is invalid"},
		{"{\"dhcp_start\": {}}", "config.dhcp_start is invalid"},
		{"{\"dhcp_end\": 1.5}", "config.dhcp_end is invalid"},
		{"{\"ipv6_prefix\": [\"fd00::/64\"]}", "config.ipv6_prefix is invalid"},
		{"{\"domain\": 0}", "config.domain is invalid"},
		{"[]", "config.config is invalid"},
		{"\"nat\"", "config.config is invalid"},
		{"{\"mode\": \"nat\"} trailing", "config is not valid JSON"},
		{"{\"mode\": \"nat\"", "config is not valid JSON"},
		{"", "config is not valid JSON"},
	};
	static const char bad_id[] = "00000000-0000-4000-9000-00000000000b";
	struct fixture *f = *state;
	struct network_record *out = NULL;
	struct mv_error err = {0};
	struct store *s = open_ok(f->path);
	sqlite3 *db = raw_open(f->path);
	char sql[256];
	size_t n = 0;

	raw_exec(db, "INSERT INTO networks VALUES "
		     "('00000000-0000-4000-9000-00000000000a', 'a-ok', 1, '{\"mode\": \"nat\"}'),"
		     "('00000000-0000-4000-9000-00000000000b', 'b-bad', 2, '{}')");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_prepare_v2(db,
						    "UPDATE networks SET config = ?1 "
						    "WHERE name = 'b-bad'",
						    -1, &st, NULL),
				 SQLITE_OK);
		sqlite3_bind_text(st, 1, bad[i].config, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
		mv_error_clear(&err);
		out = NULL;
		n = 7;
		if (store_network_load_all(s, &out, &n, &err) != -EUCLEAN)
			fail_msg("%s: loaded", bad[i].config);
		assert_null(out);
		assert_int_equal(n, 7);
		assert_int_equal(err.kind, MV_ERR_INTERNAL);
		if (!strstr(err.msg, bad[i].needle) || !strstr(err.msg, bad_id) ||
		    !strstr(err.msg, "network") || !strstr(err.msg, f->path))
			fail_msg("%s: %s", bad[i].config, err.msg);
	}

	/* JSON null is unset, and so is an absent mode */
	raw_exec(db, "UPDATE networks SET config = '{\"mode\": null, \"bridge\": null, "
		     "\"domain\": \"x.y\"}' WHERE name = 'b-bad'");
	n = load_networks_ok(s, &out);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].config.mode, NET_MODE_NAT);
	assert_int_equal(out[1].config.mode, NET_MODE_UNSPECIFIED);
	assert_null(out[1].config.bridge);
	assert_string_equal(out[1].config.domain, "x.y");
	free_networks(out, n);

	/* rows the store cannot have written otherwise */
	snprintf(sql, sizeof(sql), "UPDATE networks SET name = '' WHERE id = '%s'", bad_id);
	raw_exec(db, sql);
	mv_error_clear(&err);
	assert_int_equal(store_network_load_all(s, &out, &n, &err), -EUCLEAN);
	assert_non_null(strstr(err.msg, "invalid name"));
	raw_exec(db, "UPDATE networks SET name = 'b', id = '' WHERE name = ''");
	mv_error_clear(&err);
	assert_int_equal(store_network_load_all(s, &out, &n, &err), -EUCLEAN);
	assert_non_null(strstr(err.msg, "a network row has an invalid id"));
	sqlite3_close(db);
	store_close(s);
}

/* Version 3 of the volumes table, verbatim from the third migration in store.c. Frozen. */
static const char volumes_v3_sql[] = "CREATE TABLE volumes ("
				     " name TEXT PRIMARY KEY NOT NULL,"
				     " pool TEXT NOT NULL,"
				     " format INTEGER NOT NULL,"
				     " created_at_us INTEGER NOT NULL,"
				     " backing TEXT REFERENCES volumes(name))";

/* A version 3 file gets an empty networks table; its VMs and volumes stay as they were. */
static void test_migrate_v3_with_content(void **state)
{
	struct fixture *f = *state;
	struct vm_record want, *out = NULL;
	struct volume_record *vols = NULL;
	struct network_record net, *nets = NULL;
	struct store *s;
	char fresh_path[PATH_MAX], sql[1024], *fresh, *migrated;
	sqlite3 *db;
	size_t n;

	basic_record(&want, 1, "alpha");
	want.state = VM_STATE_RUNNING;
	want.process = (struct vm_process){4242, 77, "6f1c2a4e-9b3d-4e8f-a1b2-c3d4e5f60718"};
	db = raw_open(f->path);
	raw_exec(db, "PRAGMA journal_mode = WAL");
	raw_exec(db, vms_v1_sql);
	raw_exec(db, "ALTER TABLE vms ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;"
		     "ALTER TABLE vms ADD COLUMN pid_starttime INTEGER NOT NULL DEFAULT 0;"
		     "ALTER TABLE vms ADD COLUMN boot_id TEXT NOT NULL DEFAULT ''");
	raw_exec(db, volumes_v3_sql);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO vms (" V1_COLUMNS ", pid, pid_starttime, boot_id) VALUES "
		 "('%s', 'alpha', 3, NULL, %" PRId64
		 ", 0, '{\"vcpus\":2,\"memory_mb\":1024,\"kernel\":\"/boot/vmlinuz\","
		 "\"cmdline\":\"console=ttyS0\",\"disks\":[{\"path\":\"/var/lib/mvirt/a.raw\","
		 "\"readonly\":false,\"format\":\"raw\"}],\"nics\":[]}', 4242, 77, '%s');"
		 "INSERT INTO volumes VALUES ('base', 'default', 2, 5, NULL),"
		 " ('clone', 'fast', 2, 6, 'base'); PRAGMA user_version = 3",
		 want.id, want.created_at_us, want.process.boot_id);
	raw_exec(db, sql);
	sqlite3_close(db);

	s = open_ok(f->path);
	assert_int_equal(store_schema_version_found(s), 3);
	n = load_ok(s, &out);
	assert_int_equal(n, 1);
	assert_true(vmdef_record_equal(&want, &out[0]));
	free_records(out, n);
	n = load_volumes_ok(s, &vols);
	assert_int_equal(n, 2);
	assert_string_equal(vols[0].name, "base");
	assert_int_equal(vols[0].format, DISK_FORMAT_QCOW2);
	assert_true(vols[0].created_at_us == 5);
	assert_null(vols[0].backing);
	assert_string_equal(vols[1].pool, "fast");
	assert_string_equal(vols[1].backing, "base");
	free_volumes(vols, n);
	assert_int_equal(store_volume_delete(s, "base", NULL), -EBUSY);
	assert_int_equal(load_networks_ok(s, &nets), 0);
	free(nets);
	net_record(&net, 1, "lab", NET_MODE_NAT, NULL, "10.7.0.0/24", NULL, NULL, NULL, NULL);
	save_network_ok(s, &net);
	store_close(s);

	snprintf(fresh_path, sizeof(fresh_path), "%s/fresh.db", f->dir);
	store_close(open_ok(fresh_path));
	db = raw_open(fresh_path);
	fresh = networks_table_layout(db);
	sqlite3_close(db);
	db = raw_open(f->path);
	assert_int_equal(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	migrated = networks_table_layout(db);
	assert_string_equal(migrated, fresh);
	assert_string_equal(migrated, networks_layout);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM networks"), 1);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM volumes"), 2);
	free(fresh);
	free(migrated);
	sqlite3_close(db);

	s = open_ok(f->path);
	assert_int_equal(store_schema_version_found(s), STORE_SCHEMA_VERSION);
	n = load_networks_ok(s, &nets);
	assert_int_equal(n, 1);
	assert_network_equal(&net, &nets[0]);
	free_networks(nets, n);
	store_close(s);
	store_network_record_done(&net);
	vmdef_record_done(&want);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_new_database),
		T(test_open_errors),
		T(test_commits_are_synced),
		T(test_runtime_saves_are_not_synced),
		T(test_round_trip),
		T(test_process_round_trip),
		T(test_process_cleared),
		T(test_upsert),
		T(test_duplicate_name),
		T(test_invalid_records),
		T(test_delete),
		T(test_persistence_and_order),
		T(test_empty_load),
		T(test_fds_cloexec_and_released),
		T(test_refuse_garbage),
		T(test_refuse_newer_schema),
		T(test_refuse_corrupt_page),
		T(test_migrate_v0_with_content),
		T(test_migrate_v1_with_content),
		T(test_migration_is_atomic),
		T(test_bad_config_row),
		T(test_bad_process_row),
		T(test_load_1000_is_fast),
		T(test_volume_rows),
		T(test_bad_volume_row),
		T(test_migrate_v2_with_content),
		T(test_network_rows),
		T(test_network_upsert),
		T(test_network_duplicate_name),
		T(test_network_delete),
		T(test_invalid_network_records),
		T(test_bad_network_row),
		T(test_migrate_v3_with_content),
	};
#undef T

	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
