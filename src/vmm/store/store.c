/* The state store: VM records and storage volumes in one SQLite file (contract in store.h).
 *
 * Owns the sqlite3 connection, its cached statements and the JSON form of a vm_config (built and
 * parsed here only). Invariants: nothing is written to the file before it has passed the
 * read-only checks (user_version, quick_check), and checkpoint-on-close is off until then, so a
 * refused file (and its WAL) is left byte-identical; once store_open returned 0 the schema is
 * STORE_SCHEMA_VERSION, the journal is WAL and every commit is synced (synchronous=FULL).
 * Called by the VM manager and the storage manager from the daemon's event loop; never logs. */
#include "store/store.h"
#include "store/store_json.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/macro.h"

#define STORE_BUSY_TIMEOUT_MS 100
#define STORE_CHECK_MSG_MAX 320
#define STORE_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct store {
	sqlite3 *db;
	char *path;
	int version_found;
	sqlite3_stmt *save;
	sqlite3_stmt *delete;
	sqlite3_stmt *load_all;
	sqlite3_stmt *find_name;
	sqlite3_stmt *volume_save;
	sqlite3_stmt *volume_delete;
	sqlite3_stmt *volume_load_all;
	json_tokener *tok;
};

/* Each step takes the schema from version - 1 to version; store_migrate applies the steps a file
 * lacks, in order, in one transaction. */
static const struct migration {
	int version;
	const char *sql;
} migrations[] = {
	{1, "CREATE TABLE vms ("
	    " id TEXT PRIMARY KEY NOT NULL,"
	    " name TEXT NOT NULL UNIQUE,"
	    " state INTEGER NOT NULL,"
	    " state_reason TEXT,"
	    " created_at_us INTEGER NOT NULL,"
	    " started_at_us INTEGER NOT NULL DEFAULT 0,"
	    " config TEXT NOT NULL)"},
	/* The hypervisor process of a running VM, for re-adoption after a restart. */
	{2, "ALTER TABLE vms ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE vms ADD COLUMN pid_starttime INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE vms ADD COLUMN boot_id TEXT NOT NULL DEFAULT ''"},
	/* Storage volumes (storage.c). A backing volume cannot be deleted before its overlays. */
	{3, "CREATE TABLE volumes ("
	    " name TEXT PRIMARY KEY NOT NULL,"
	    " pool TEXT NOT NULL,"
	    " format INTEGER NOT NULL,"
	    " created_at_us INTEGER NOT NULL,"
	    " backing TEXT REFERENCES volumes(name))"},
};
_Static_assert(ELEMENTSOF(migrations) == STORE_SCHEMA_VERSION, "one migration per version");

#define VM_COLUMNS                                                                                 \
	"id, name, state, state_reason, created_at_us, started_at_us, config, pid, pid_starttime," \
	" boot_id"

static const char sql_save[] =
	"INSERT INTO vms (" VM_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
	" ON CONFLICT(id) DO UPDATE SET name = excluded.name, state = excluded.state,"
	" state_reason = excluded.state_reason, created_at_us = excluded.created_at_us,"
	" started_at_us = excluded.started_at_us, config = excluded.config, pid = excluded.pid,"
	" pid_starttime = excluded.pid_starttime, boot_id = excluded.boot_id";
static const char sql_delete[] = "DELETE FROM vms WHERE id = ?1";
static const char sql_load_all[] = "SELECT " VM_COLUMNS " FROM vms ORDER BY name";
static const char sql_find_name[] = "SELECT id FROM vms WHERE name = ?1";
static const char sql_volume_save[] =
	"INSERT INTO volumes (name, pool, format, created_at_us, backing) VALUES (?1, ?2, ?3, ?4, ?5)"
	" ON CONFLICT(name) DO UPDATE SET pool = excluded.pool, format = excluded.format,"
	" created_at_us = excluded.created_at_us, backing = excluded.backing";
static const char sql_volume_delete[] = "DELETE FROM volumes WHERE name = ?1";
static const char sql_volume_load_all[] =
	"SELECT name, pool, format, created_at_us, backing FROM volumes ORDER BY name";

static int sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* What a failed SQLite call means for the caller: a full disk is a resource running out, a
 * database locked by another process is worth a retry, anything else is the host's fault. */
static enum mv_error_kind sqlite_kind(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return MV_ERR_EXHAUSTED;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return MV_ERR_UNAVAILABLE;
	default:
		return MV_ERR_INTERNAL;
	}
}

/* Fills err from the connection's last error; call before anything that could overwrite it. */
static int store_fail(struct store *s, int rc, struct mv_error *err, const char *what)
{
	return mv_err_kind(err, sqlite_kind(rc), sqlite_errno(rc), "state database %s: %s: %s",
			   s->path, what, sqlite3_errmsg(s->db));
}

static int refuse_corrupt(struct store *s, const char *cause, struct mv_error *err)
{
	return mv_err_internal(
		err, -EUCLEAN,
		"state database %s is corrupt (%s); refusing to start. Restore it from a backup "
		"or move it away; mvirt-vmm never deletes it.",
		s->path, cause);
}

static int read_user_version(struct store *s, int *ret, struct mv_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int(st, 0);
	else if (sqlite_errno(rc) == -EUCLEAN)
		r = refuse_corrupt(s, sqlite3_errmsg(s->db), err);
	else
		r = store_fail(s, rc, err, "reading the schema version");
	sqlite3_finalize(st);
	return r;
}

/* Appends row to the "; "-separated list in buf, on one line, ending in "..." when cut. */
static void append_row(char *buf, size_t size, const char *row)
{
	size_t n = strlen(buf);

	if (n + 6 > size)
		return;
	if (n > 0) {
		buf[n++] = ';';
		buf[n++] = ' ';
	}
	for (; *row && n + 6 <= size; row++) {
		if (*row == '\n') {
			buf[n++] = ';';
			buf[n++] = ' ';
		} else
			buf[n++] = *row;
	}
	if (*row) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
}

static int run_quick_check(struct store *s, struct mv_error *err)
{
	char msg[STORE_CHECK_MSG_MAX] = "quick_check: ";
	sqlite3_stmt *st = NULL;
	const size_t prefix = strlen(msg);
	bool ok = false;
	int rc, rows = 0, r = 0;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL);
	while (rc == SQLITE_OK || rc == SQLITE_ROW) {
		const char *row;

		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			break;
		row = (const char *)sqlite3_column_text(st, 0);
		ok = rows++ == 0 && row && streq(row, "ok");
		append_row(msg + prefix, sizeof(msg) - prefix, strempty(row));
	}
	if (rc != SQLITE_DONE) {
		if (sqlite_errno(rc) == -EUCLEAN) {
			append_row(msg + prefix, sizeof(msg) - prefix, sqlite3_errmsg(s->db));
			r = refuse_corrupt(s, msg, err);
		} else
			r = store_fail(s, rc, err, "running quick_check");
	} else if (!ok || rows != 1)
		r = refuse_corrupt(s, msg, err);
	sqlite3_finalize(st);
	return r;
}

/* The read-only checks: nothing here writes to the database file or its WAL. */
static int store_check(struct store *s, struct mv_error *err)
{
	int r;

	if ((r = read_user_version(s, &s->version_found, err)) < 0)
		return r;
	if (s->version_found > STORE_SCHEMA_VERSION || s->version_found < 0)
		return mv_err_internal(
			err, -EPROTO,
			"state database %s has schema version %d, newer than this mvirt-vmm "
			"understands (%d); refusing to start",
			s->path, s->version_found, STORE_SCHEMA_VERSION);
	return run_quick_check(s, err);
}

static int store_configure(struct store *s, struct mv_error *err)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		r = store_fail(s, rc, err, "enabling WAL");
	else if (!(mode = (const char *)sqlite3_column_text(st, 0)) || strcasecmp(mode, "wal") != 0)
		r = mv_err_internal(err, -EIO,
				    "state database %s: cannot enable WAL (journal mode is %s)",
				    s->path, strempty(mode));
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	rc = sqlite3_exec(s->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", NULL, NULL,
			  NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, rc, err, "setting pragmas");
	return 0;
}

static int store_migrate(struct store *s, struct mv_error *err)
{
	char set_version[64];
	char *msg = NULL;
	int rc, r;

	if (s->version_found == STORE_SCHEMA_VERSION)
		return 0;
	snprintf(set_version, sizeof(set_version), "PRAGMA user_version = %d",
		 STORE_SCHEMA_VERSION);
	rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, &msg);
	for (size_t i = 0; rc == SQLITE_OK && i < ELEMENTSOF(migrations); i++)
		if (migrations[i].version > s->version_found)
			rc = sqlite3_exec(s->db, migrations[i].sql, NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, set_version, NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		return 0;
	r = mv_err_kind(err, sqlite_kind(rc), sqlite_errno(rc),
			"state database %s: migrating the schema from version %d to %d: %s",
			s->path, s->version_found, STORE_SCHEMA_VERSION,
			msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static int store_prepare(struct store *s, struct mv_error *err)
{
	const struct {
		sqlite3_stmt **stmt;
		const char *sql;
	} stmts[] = {
		{&s->save, sql_save},
		{&s->delete, sql_delete},
		{&s->load_all, sql_load_all},
		{&s->find_name, sql_find_name},
		{&s->volume_save, sql_volume_save},
		{&s->volume_delete, sql_volume_delete},
		{&s->volume_load_all, sql_volume_load_all},
	};

	for (size_t i = 0; i < ELEMENTSOF(stmts); i++) {
		int rc = sqlite3_prepare_v3(s->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
					    stmts[i].stmt, NULL);
		if (rc != SQLITE_OK)
			return store_fail(s, rc, err, "preparing statements");
	}
	return 0;
}

int store_open(const char *path, struct store **ret, struct mv_error *err)
{
	struct store *s;
	int fd, rc, r;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return mv_err_internal(err, -errno, "state database %s: cannot open: %s", path,
				       strerror(errno));
	close(fd);

	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return mv_err_internal(err, -ENOMEM, "state database %s: out of memory", path);
	}
	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				     SQLITE_OPEN_EXRESCODE,
			     NULL);
	if (rc != SQLITE_OK) {
		r = s->db ? store_fail(s, rc, err, "cannot open")
			  : mv_err_internal(err, -ENOMEM, "state database %s: out of memory", path);
		goto fail;
	}
	/* Until the checks pass, closing must not checkpoint a WAL into a file we refuse. */
	rc = sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
	if (rc != SQLITE_OK) {
		r = store_fail(s, rc, err, "configuring the connection");
		goto fail;
	}
	if ((r = store_check(s, err)) < 0)
		goto fail;
	rc = sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
	if (rc != SQLITE_OK) {
		r = store_fail(s, rc, err, "configuring the connection");
		goto fail;
	}
	if ((r = store_configure(s, err)) < 0 || (r = store_migrate(s, err)) < 0 ||
	    (r = store_prepare(s, err)) < 0)
		goto fail;
	s->tok = json_tokener_new();
	if (!s->tok) {
		r = mv_err_internal(err, -ENOMEM, "state database %s: out of memory", path);
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	store_close(s);
	return r;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->save);
	sqlite3_finalize(s->delete);
	sqlite3_finalize(s->load_all);
	sqlite3_finalize(s->find_name);
	sqlite3_finalize(s->volume_save);
	sqlite3_finalize(s->volume_delete);
	sqlite3_finalize(s->volume_load_all);
	if (s->tok)
		json_tokener_free(s->tok);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

int store_schema_version_found(const struct store *s)
{
	return s->version_found;
}

/* --- VM rows -------------------------------------------------------------------------------- */

static bool vm_state_valid(int64_t state)
{
	return state >= VM_STATE_STOPPED && state <= VM_STATE_CRASHED;
}

static int check_record(const struct vm_record *vm, struct mv_error *err)
{
	size_t id_len = strnlen(vm->id, sizeof(vm->id));

	if (id_len == 0 || id_len > VM_ID_LEN)
		return mv_err_invalid(err, "vm has no valid id");
	if (isempty(vm->name))
		return mv_err_invalid(err, "vm %s has no name", vm->id);
	if (!vm_state_valid(vm->state))
		return mv_err_invalid(err, "vm '%s': invalid state %d", vm->name, (int)vm->state);
	if (vm->process.pid < 0)
		return mv_err_invalid(err, "vm '%s': invalid pid %d", vm->name,
				      (int)vm->process.pid);
	if (strnlen(vm->process.boot_id, sizeof(vm->process.boot_id)) ==
	    sizeof(vm->process.boot_id))
		return mv_err_invalid(err, "vm '%s': boot_id is not terminated", vm->name);
	for (size_t i = 0; i < vm->config.n_disks; i++) {
		enum disk_format f = vm->config.disks[i].format;

		if (f != DISK_FORMAT_UNSPECIFIED && f != DISK_FORMAT_RAW && f != DISK_FORMAT_QCOW2)
			return mv_err_invalid(err,
					      "vm '%s': config.disks[%zu].format: invalid value %d",
					      vm->name, i, (int)f);
	}
	return 0;
}

static int name_conflict(struct store *s, const char *name, struct mv_error *err)
{
	sqlite3_stmt *st = s->find_name;
	int rc, r;

	rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = mv_err_exists(err, "name '%s' is already used by vm %s", name,
				  (const char *)sqlite3_column_text(st, 0));
	else
		r = mv_err_exists(err, "name '%s' is already used by another vm", name);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int store_vm_save(struct store *s, const struct vm_record *vm, struct mv_error *err)
{
	_cleanup_(json_putp) struct json_object *config = NULL;
	sqlite3_stmt *st = s->save;
	const char *text;
	size_t len;
	int rc, r;

	if ((r = check_record(vm, err)) < 0)
		return r;
	if (store_config_to_json(&vm->config, &config) < 0 ||
	    !(text = json_object_to_json_string_length(config, STORE_JSON_FLAGS, &len)))
		return mv_err_internal(err, -ENOMEM, "vm '%s': out of memory", vm->name);
	if (len > INT_MAX)
		return mv_err_kind(err, MV_ERR_INVALID, -E2BIG, "vm '%s': config is too large",
				   vm->name);

	rc = sqlite3_bind_text(st, 1, vm->id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, vm->name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(st, 3, (int)vm->state);
	if (rc == SQLITE_OK)
		rc = vm->state_reason
			     ? sqlite3_bind_text(st, 4, vm->state_reason, -1, SQLITE_STATIC)
			     : sqlite3_bind_null(st, 4);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 5, vm->created_at_us);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 6, vm->started_at_us);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 7, text, (int)len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 8, vm->process.pid);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 9, (sqlite3_int64)vm->process.starttime);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 10, vm->process.boot_id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = 0;
	else if (rc != SQLITE_CONSTRAINT_UNIQUE)
		r = store_fail(s, rc, err, "saving vm");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return name_conflict(s, vm->name, err);
	if (r < 0)
		return mv_err_prefix(err, "vm '%s': ", vm->name), r;
	return 0;
}

int store_vm_delete(struct store *s, const char *id, struct mv_error *err)
{
	sqlite3_stmt *st = s->delete;
	int rc, r = 0;

	if (!id)
		return mv_err_invalid(err, "no vm id given");
	rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = store_fail(s, rc, err, "deleting vm");
	else if (sqlite3_changes(s->db) == 0)
		r = mv_err_not_found(err, "vm %s does not exist", id);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (r < 0 && r != -ENOENT)
		return mv_err_prefix(err, "vm %s: ", id), r;
	return r;
}

/* Copies a text column; a NULL column gives NULL. */
static int column_strdup(sqlite3_stmt *st, int col, char **ret)
{
	const unsigned char *text = sqlite3_column_text(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	*ret = NULL;
	if (!text)
		return sqlite3_column_type(st, col) == SQLITE_NULL ? 0 : -ENOMEM;
	*ret = malloc(n + 1);
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, text, n + 1);
	return 0;
}

static int row_to_record(struct store *s, sqlite3_stmt *st, struct vm_record *vm,
			 struct mv_error *err)
{
	_cleanup_(json_putp) struct json_object *config = NULL;
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *text, *field = NULL;
	int64_t state, pid;
	int len, r;

	len = sqlite3_column_bytes(st, 0);
	if (!id || len == 0 || len > VM_ID_LEN)
		return mv_err_internal(err, -EUCLEAN,
				       "state database %s: a vm row has an invalid id", s->path);
	memcpy(vm->id, id, (size_t)len);
	vm->id[len] = '\0';
	if (column_strdup(st, 1, &vm->name) < 0 || column_strdup(st, 3, &vm->state_reason) < 0)
		return mv_err_internal(err, -ENOMEM, "vm %s: out of memory", vm->id);
	state = sqlite3_column_int64(st, 2);
	if (!vm->name || !vm_state_valid(state))
		return mv_err_internal(err, -EUCLEAN,
				       "state database %s: vm %s: invalid name or state", s->path,
				       vm->id);
	vm->state = (enum vm_state)state;
	vm->created_at_us = sqlite3_column_int64(st, 4);
	vm->started_at_us = sqlite3_column_int64(st, 5);
	pid = sqlite3_column_int64(st, 7);
	if (pid < 0 || pid > INT32_MAX)
		return mv_err_internal(err, -EUCLEAN, "state database %s: vm %s: invalid pid",
				       s->path, vm->id);
	vm->process.pid = (int32_t)pid;
	vm->process.starttime = (uint64_t)sqlite3_column_int64(st, 8);
	text = (const char *)sqlite3_column_text(st, 9);
	len = sqlite3_column_bytes(st, 9);
	if (!text && sqlite3_column_type(st, 9) != SQLITE_NULL)
		return mv_err_internal(err, -ENOMEM, "vm %s: out of memory", vm->id);
	if (!text || (size_t)len >= sizeof(vm->process.boot_id) || memchr(text, '\0', (size_t)len))
		return mv_err_internal(err, -EUCLEAN, "state database %s: vm %s: invalid boot_id",
				       s->path, vm->id);
	memcpy(vm->process.boot_id, text, (size_t)len + 1);

	text = (const char *)sqlite3_column_text(st, 6);
	len = sqlite3_column_bytes(st, 6);
	if (!text)
		return mv_err_internal(err, -EUCLEAN, "state database %s: vm %s: no config",
				       s->path, vm->id);
	json_tokener_reset(s->tok);
	config = json_tokener_parse_ex(s->tok, text, len);
	if (!config || json_tokener_get_error(s->tok) != json_tokener_success ||
	    json_tokener_get_parse_end(s->tok) != (size_t)len)
		return mv_err_internal(err, -EUCLEAN,
				       "state database %s: vm %s: config is not valid JSON",
				       s->path, vm->id);
	r = store_config_from_json(config, &vm->config, &field);
	if (r == -ENOMEM)
		return mv_err_internal(err, r, "vm %s: out of memory", vm->id);
	if (r < 0)
		return mv_err_internal(err, -EUCLEAN,
				       "state database %s: vm %s: config.%s is invalid", s->path,
				       vm->id, field);
	return 0;
}

int store_vm_load_all(struct store *s, struct vm_record **ret, size_t *ret_n, struct mv_error *err)
{
	sqlite3_stmt *st = s->load_all;
	struct vm_record *vms = NULL;
	size_t n = 0, cap = 0;
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct vm_record *p = reallocarray(vms, ncap, sizeof(*vms));

			if (!p) {
				r = mv_err_internal(err, -ENOMEM, "loading vms: out of memory");
				break;
			}
			vms = p;
			cap = ncap;
		}
		memset(&vms[n], 0, sizeof(vms[n]));
		r = row_to_record(s, st, &vms[n], err);
		n++;
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc, err, "loading vms");
	sqlite3_reset(st);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			vmdef_record_done(&vms[i]);
		free(vms);
		return r;
	}
	*ret = vms;
	*ret_n = n;
	return 0;
}

/* --- volume rows ---------------------------------------------------------------------------- */

void store_volume_record_done(struct volume_record *v)
{
	if (!v)
		return;
	free(v->name);
	free(v->pool);
	free(v->backing);
	memset(v, 0, sizeof(*v));
}

int store_volume_save(struct store *s, const struct volume_record *v, struct mv_error *err)
{
	sqlite3_stmt *st = s->volume_save;
	int rc, r = 0;

	if (isempty(v->name) || isempty(v->pool))
		return mv_err_invalid(err, "volume has no name or pool");
	if (v->format != DISK_FORMAT_RAW && v->format != DISK_FORMAT_QCOW2)
		return mv_err_invalid(err, "volume '%s': invalid format %d", v->name,
				      (int)v->format);
	rc = sqlite3_bind_text(st, 1, v->name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, v->pool, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(st, 3, (int)v->format);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 4, v->created_at_us);
	if (rc == SQLITE_OK)
		rc = v->backing ? sqlite3_bind_text(st, 5, v->backing, -1, SQLITE_STATIC)
				: sqlite3_bind_null(st, 5);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		r = mv_err_invalid(err, "volume '%s': backing volume '%s' does not exist", v->name,
				   strempty(v->backing));
	else if (rc != SQLITE_DONE)
		r = store_fail(s, rc, err, "saving volume");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (r < 0 && rc != SQLITE_CONSTRAINT_FOREIGNKEY)
		mv_err_prefix(err, "volume '%s': ", v->name);
	return r;
}

int store_volume_delete(struct store *s, const char *name, struct mv_error *err)
{
	sqlite3_stmt *st = s->volume_delete;
	int rc, r = 0;

	if (!name)
		return mv_err_invalid(err, "no volume name given");
	rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		r = mv_err_precondition(err, -EBUSY,
					"volume '%s' is the backing volume of other volumes", name);
	else if (rc != SQLITE_DONE)
		r = store_fail(s, rc, err, "deleting volume");
	else if (sqlite3_changes(s->db) == 0)
		r = mv_err_not_found(err, "volume '%s' does not exist", name);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (r < 0 && r != -ENOENT && r != -EBUSY)
		mv_err_prefix(err, "volume '%s': ", name);
	return r;
}

static int row_to_volume(struct store *s, sqlite3_stmt *st, struct volume_record *v,
			 struct mv_error *err)
{
	int64_t format;

	if (column_strdup(st, 0, &v->name) < 0 || column_strdup(st, 1, &v->pool) < 0 ||
	    column_strdup(st, 4, &v->backing) < 0)
		return mv_err_internal(err, -ENOMEM, "loading volumes: out of memory");
	format = sqlite3_column_int64(st, 2);
	if (isempty(v->name) || isempty(v->pool) ||
	    (format != DISK_FORMAT_RAW && format != DISK_FORMAT_QCOW2))
		return mv_err_internal(
			err, -EUCLEAN,
			"state database %s: volume '%s' has an invalid name, pool or format",
			s->path, strempty(v->name));
	v->format = (enum disk_format)format;
	v->created_at_us = sqlite3_column_int64(st, 3);
	return 0;
}

int store_volume_load_all(struct store *s, struct volume_record **ret, size_t *ret_n,
			  struct mv_error *err)
{
	sqlite3_stmt *st = s->volume_load_all;
	struct volume_record *vols = NULL;
	size_t n = 0, cap = 0;
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct volume_record *p = reallocarray(vols, ncap, sizeof(*vols));

			if (!p) {
				r = mv_err_internal(err, -ENOMEM, "loading volumes: out of memory");
				break;
			}
			vols = p;
			cap = ncap;
		}
		memset(&vols[n], 0, sizeof(vols[n]));
		r = row_to_volume(s, st, &vols[n], err);
		n++;
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc, err, "loading volumes");
	sqlite3_reset(st);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			store_volume_record_done(&vols[i]);
		free(vols);
		return r;
	}
	*ret = vols;
	*ret_n = n;
	return 0;
}
