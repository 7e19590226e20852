/* The state store: VM records, storage volumes and managed networks in one SQLite file (contract
 * in store.h).
 *
 * Owns the sqlite3 connection, its cached statements and the JSON form of a vm_config and of a
 * net_config (built and parsed here only, with store_json.c). Invariants: nothing is written to
 * the file before it has passed the read-only checks (user_version, integrity_check: every page, and every index against its table), and
 * checkpoint-on-close is off until then, so a refused file (and its WAL) is left byte-identical;
 * once store_open returned 0 the schema is STORE_SCHEMA_VERSION, the journal is WAL and every
 * commit is synced (synchronous=FULL).
 * Called by the VM manager, the storage manager and the network manager from the daemon's event
 * loop; never logs. */
#include "store/store.h"
#include "store/store_json.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/macro.h"
#include "common/utf8.h"

#define STORE_BUSY_TIMEOUT_MS 100
#define STORE_CHECK_MSG_MAX 320
#define STORE_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct store {
	sqlite3 *db;
	char *path;
	int version_found;
	uint64_t check_usec;     /* how long integrity_check took at open */
	store_write_fn write_fn; /* see store_set_write_hook */
	void *write_data;
	sqlite3_stmt *save;
	sqlite3_stmt *delete;
	sqlite3_stmt *load_all;
	sqlite3_stmt *find_name;
	sqlite3_stmt *volume_save;
	sqlite3_stmt *volume_delete;
	sqlite3_stmt *volume_load_all;
	sqlite3_stmt *network_save;
	sqlite3_stmt *network_delete;
	sqlite3_stmt *network_load_all;
	sqlite3_stmt *network_find_name;
	sqlite3_stmt *meta_get;
	sqlite3_stmt *meta_set;
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
	/* Managed networks (network/network.c); config is the JSON of a net_config (store_json.c). */
	{4, "CREATE TABLE networks ("
	    " id TEXT PRIMARY KEY NOT NULL,"
	    " name TEXT NOT NULL UNIQUE,"
	    " created_at_us INTEGER NOT NULL,"
	    " config TEXT NOT NULL)"},
	/* What the daemon remembers about its host between runs (store_meta_get): the boot id
	 * of its last start, for autostart. */
	{5, "CREATE TABLE meta ("
	    " key TEXT PRIMARY KEY NOT NULL,"
	    " value TEXT NOT NULL)"},
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
static const char sql_network_save[] =
	"INSERT INTO networks (id, name, created_at_us, config) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT(id) DO UPDATE SET name = excluded.name,"
	" created_at_us = excluded.created_at_us, config = excluded.config";
static const char sql_network_delete[] = "DELETE FROM networks WHERE id = ?1";
static const char sql_network_load_all[] =
	"SELECT id, name, created_at_us, config FROM networks ORDER BY name";
static const char sql_network_find_name[] = "SELECT id FROM networks WHERE name = ?1";
static const char sql_meta_get[] = "SELECT value FROM meta WHERE key = ?1";
static const char sql_meta_set[] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
				   " ON CONFLICT(key) DO UPDATE SET value = excluded.value";

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

/* Fills err from the connection's last error, saying what failed (a printf format); call before
 * anything that could overwrite it. */
_printf_(4, 5) static int store_fail(struct store *s, int rc, struct mv_error *err, const char *fmt,
				     ...)
{
	char what[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
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

static int run_integrity_check(struct store *s, struct mv_error *err)
{
	char msg[STORE_CHECK_MSG_MAX] = "integrity_check: ";
	sqlite3_stmt *st = NULL;
	const size_t prefix = strlen(msg);
	bool ok = false;
	int rc, rows = 0, r = 0;

	rc = sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL);
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
			r = store_fail(s, rc, err, "running integrity_check");
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
	uint64_t t0 = clock_mono_us();

	r = run_integrity_check(s, err);
	s->check_usec = clock_mono_us() - t0;
	return r;
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
		{&s->network_save, sql_network_save},
		{&s->network_delete, sql_network_delete},
		{&s->network_load_all, sql_network_load_all},
		{&s->network_find_name, sql_network_find_name},
		{&s->meta_get, sql_meta_get},
		{&s->meta_set, sql_meta_set},
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
	json_tokener_set_flags(s->tok, JSON_TOKENER_VALIDATE_UTF8);
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
	sqlite3_finalize(s->network_save);
	sqlite3_finalize(s->network_delete);
	sqlite3_finalize(s->network_load_all);
	sqlite3_finalize(s->network_find_name);
	sqlite3_finalize(s->meta_get);
	sqlite3_finalize(s->meta_set);
	if (s->tok)
		json_tokener_free(s->tok);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

static int on_wal_commit(void *userdata, sqlite3 *db, const char *name, int pages)
{
	struct store *s = userdata;

	(void)db, (void)name, (void)pages;
	s->write_fn(s->write_data);
	return SQLITE_OK;
}

void store_set_write_hook(struct store *s, store_write_fn fn, void *userdata)
{
	s->write_fn = fn;
	s->write_data = userdata;
	if (fn)
		sqlite3_wal_hook(s->db, on_wal_commit, s);
	else
		sqlite3_wal_autocheckpoint(s->db, 1000); /* SQLite's default */
}

int store_checkpoint(struct store *s, struct mv_error *err)
{
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

	if (rc != SQLITE_OK)
		return store_fail(s, rc, err, "checkpointing the WAL");
	/* Idle after writes: the page cache is not needed until the next (the daemon answers
	 * reads from memory). */
	sqlite3_db_release_memory(s->db);
	return 0;
}

uint64_t store_check_usec(const struct store *s)
{
	return s->check_usec;
}

int store_schema_version_found(const struct store *s)
{
	return s->version_found;
}

/* --- helpers of every table ----------------------------------------------------------------- */

/* The -EEXIST of a save that hit the unique name of kind's table, naming the row that holds it
 * (find_name: "SELECT id FROM <table> WHERE name = ?1"). */
static int name_conflict(sqlite3_stmt *find_name, const char *kind, const char *name,
			 struct mv_error *err)
{
	int rc, r;

	rc = sqlite3_bind_text(find_name, 1, name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(find_name);
	if (rc == SQLITE_ROW)
		r = mv_err_exists(err, "name '%s' is already used by %s %s", name, kind,
				  (const char *)sqlite3_column_text(find_name, 0));
	else
		r = mv_err_exists(err, "name '%s' is already used by another %s", name, kind);
	sqlite3_reset(find_name);
	sqlite3_clear_bindings(find_name);
	return r;
}

/* Steps the upsert st of the row of kind named name, whose parameters are bound (rc: how
 * binding went), and resets it: -EEXIST (name_conflict) when another row has the name, other
 * failures prefixed with "<kind> '<name>': ". */
static int save_row(struct store *s, sqlite3_stmt *st, int rc, sqlite3_stmt *find_name,
		    const char *kind, const char *name, struct mv_error *err)
{
	int r = 0;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_CONSTRAINT_UNIQUE)
		r = store_fail(s, rc, err, "saving %s", kind);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return name_conflict(find_name, kind, name, err);
	if (r < 0)
		return mv_err_prefix(err, "%s '%s': ", kind, name), r;
	return 0;
}

/* Removes the row of kind with key id by st ("DELETE FROM <table> WHERE id = ?1"); -ENOENT
 * when there is none. */
static int delete_row(struct store *s, sqlite3_stmt *st, const char *kind, const char *id,
		      struct mv_error *err)
{
	int rc, r = 0;

	if (!id)
		return mv_err_invalid(err, "no %s id given", kind);
	rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = store_fail(s, rc, err, "deleting %s", kind);
	else if (sqlite3_changes(s->db) == 0)
		r = mv_err_not_found(err, "%s %s does not exist", kind, id);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (r < 0 && r != -ENOENT)
		return mv_err_prefix(err, "%s %s: ", kind, id), r;
	return r;
}

/* The text of config, the JSON document of the row of kind named name, to bind. */
static int config_text(struct json_object *config, const char *kind, const char *name,
		       const char **ret, int *ret_len, struct mv_error *err)
{
	const char *text;
	size_t len;

	if (!(text = json_object_to_json_string_length(config, STORE_JSON_FLAGS, &len)))
		return mv_err_internal(err, -ENOMEM, "%s '%s': out of memory", kind, name);
	if (len > INT_MAX)
		return mv_err_kind(err, MV_ERR_INVALID, -E2BIG, "%s '%s': config is too large",
				   kind, name);
	*ret = text;
	*ret_len = (int)len;
	return 0;
}

/* Copies a text column; a NULL column gives NULL. -EILSEQ when it is not valid UTF-8 or holds a
 * NUL (rows written by something else than this daemon, which refuses such strings at the API:
 * served, they would make every answer that carries them unparseable by standard clients). */
static int column_strdup(sqlite3_stmt *st, int col, char **ret)
{
	const unsigned char *text = sqlite3_column_text(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	*ret = NULL;
	if (!text)
		return sqlite3_column_type(st, col) == SQLITE_NULL ? 0 : -ENOMEM;
	if (memchr(text, '\0', n) || !utf8_valid((const char *)text, n, NULL))
		return -EILSEQ;
	*ret = malloc(n + 1);
	if (!*ret)
		return -ENOMEM;
	memcpy(*ret, text, n + 1);
	return 0;
}

/* The error of column_strdup's r for column of the row of kind with key id. */
static int column_fail(struct store *s, int r, const char *kind, const char *id, const char *column,
		       struct mv_error *err)
{
	if (r == -EILSEQ)
		return mv_err_internal(err, -EUCLEAN,
				       "state database %s: %s %s: %s is not valid UTF-8 (or holds "
				       "a NUL byte); refusing to load it",
				       s->path, kind, id, column);
	return mv_err_internal(err, -ENOMEM, "%s %s: out of memory", kind, id);
}

/* Copies the key of a row of kind, a non-empty text of fewer than size bytes, into buf. */
static int column_id(struct store *s, sqlite3_stmt *st, int col, const char *kind, char *buf,
		     size_t size, struct mv_error *err)
{
	const char *id = (const char *)sqlite3_column_text(st, col);
	int len = sqlite3_column_bytes(st, col);

	if (!id || len == 0 || (size_t)len >= size)
		return mv_err_internal(err, -EUCLEAN,
				       "state database %s: a %s row has an invalid id", s->path,
				       kind);
	memcpy(buf, id, (size_t)len);
	buf[len] = '\0';
	return 0;
}

/* Parses the config column col of the row of kind with key id as one whole JSON document. */
static int column_json(struct store *s, sqlite3_stmt *st, int col, const char *kind, const char *id,
		       struct json_object **ret, struct mv_error *err)
{
	const char *text = (const char *)sqlite3_column_text(st, col);
	int len = sqlite3_column_bytes(st, col);
	struct json_object *o;

	if (!text)
		return mv_err_internal(err, -EUCLEAN, "state database %s: %s %s: no config",
				       s->path, kind, id);
	json_tokener_reset(s->tok);
	o = json_tokener_parse_ex(s->tok, text, len);
	if (!o || json_tokener_get_error(s->tok) != json_tokener_success ||
	    json_tokener_get_parse_end(s->tok) != (size_t)len) {
		bool utf8 = json_tokener_get_error(s->tok) == json_tokener_error_parse_utf8_string;

		json_object_put(o);
		return mv_err_internal(err, -EUCLEAN, "state database %s: %s %s: config is not %s",
				       s->path, kind, id, utf8 ? "valid UTF-8" : "valid JSON");
	}
	*ret = o;
	return 0;
}

/* The error of a config column that is JSON but not a config: r from store_*config_from_json,
 * field the member it named. */
static int config_fail(struct store *s, int r, const char *kind, const char *id, const char *field,
		       struct mv_error *err)
{
	if (r == -ENOMEM)
		return mv_err_internal(err, r, "%s %s: out of memory", kind, id);
	return mv_err_internal(err, -EUCLEAN, "state database %s: %s %s: config.%s is invalid",
			       s->path, kind, id, strempty(field));
}

/* How load_rows reads a table: its name for messages, the size of an element, how one row
 * fills a zeroed element, and the element's destructor. */
struct row_reader {
	const char *what;
	size_t size;
	int (*read)(struct store *s, sqlite3_stmt *st, void *elem, struct mv_error *err);
	void (*done)(void *elem);
};

/* All rows of the query st as a newly allocated array; on failure, nothing is returned and
 * what was read is freed. */
static int load_rows(struct store *s, sqlite3_stmt *st, const struct row_reader *rd, void **ret,
		     size_t *ret_n, struct mv_error *err)
{
	char *rows = NULL;
	size_t n = 0, cap = 0;
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char *p = reallocarray(rows, ncap, rd->size);

			if (!p) {
				r = mv_err_internal(err, -ENOMEM, "loading %s: out of memory",
						    rd->what);
				break;
			}
			rows = p;
			cap = ncap;
		}
		memset(rows + n * rd->size, 0, rd->size);
		r = rd->read(s, st, rows + n * rd->size, err);
		n++;
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc, err, "loading %s", rd->what);
	sqlite3_reset(st);
	/* Everything is in memory now; the pages come back on demand (a write reads a few). */
	sqlite3_db_release_memory(s->db);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			rd->done(rows + i * rd->size);
		free(rows);
		return r;
	}
	*ret = rows;
	*ret_n = n;
	return 0;
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

int store_vm_save(struct store *s, const struct vm_record *vm, struct mv_error *err)
{
	_cleanup_(json_putp) struct json_object *config = NULL;
	sqlite3_stmt *st = s->save;
	const char *text;
	int len, rc, r;

	if ((r = check_record(vm, err)) < 0)
		return r;
	if (store_config_to_json(&vm->config, &config) < 0)
		return mv_err_internal(err, -ENOMEM, "vm '%s': out of memory", vm->name);
	if ((r = config_text(config, "vm", vm->name, &text, &len, err)) < 0)
		return r;

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
		rc = sqlite3_bind_text(st, 7, text, len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 8, vm->process.pid);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 9, (sqlite3_int64)vm->process.starttime);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 10, vm->process.boot_id, -1, SQLITE_STATIC);
	return save_row(s, st, rc, s->find_name, "vm", vm->name, err);
}

int store_vm_save_runtime(struct store *s, const struct vm_record *vm, struct mv_error *err)
{
	int r, rc;

	/* Committed without waiting for the disk. A daemon crash loses nothing (the kernel has
	 * the write); a power loss may lose it, but then the hypervisor processes are gone too
	 * and the next start tells so from the boot id. A later durable commit syncs it too. */
	if (sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK)
		return store_vm_save(s, vm, err);
	r = store_vm_save(s, vm, err);
	rc = sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	if (rc != SQLITE_OK && r == 0)
		return store_fail(s, rc, err, "making commits durable again");
	return r;
}

int store_vm_delete(struct store *s, const char *id, struct mv_error *err)
{
	return delete_row(s, s->delete, "vm", id, err);
}

static int row_to_record(struct store *s, sqlite3_stmt *st, void *elem, struct mv_error *err)
{
	_cleanup_(json_putp) struct json_object *config = NULL;
	struct vm_record *vm = elem;
	const char *text, *field = NULL;
	int64_t state, pid;
	int len, r;

	if ((r = column_id(s, st, 0, "vm", vm->id, sizeof(vm->id), err)) < 0)
		return r;
	if ((r = column_strdup(st, 1, &vm->name)) < 0)
		return column_fail(s, r, "vm", vm->id, "name", err);
	if ((r = column_strdup(st, 3, &vm->state_reason)) < 0)
		return column_fail(s, r, "vm", vm->id, "state_reason", err);
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

	if ((r = column_json(s, st, 6, "vm", vm->id, &config, err)) < 0)
		return r;
	if ((r = store_config_from_json(config, &vm->config, &field)) < 0)
		return config_fail(s, r, "vm", vm->id, field, err);
	return 0;
}

static void vm_row_done(void *elem)
{
	vmdef_record_done(elem);
}

int store_vm_load_all(struct store *s, struct vm_record **ret, size_t *ret_n, struct mv_error *err)
{
	static const struct row_reader vm_rows = {"vms", sizeof(struct vm_record), row_to_record,
						  vm_row_done};
	void *rows;
	int r = load_rows(s, s->load_all, &vm_rows, &rows, ret_n, err);

	if (r == 0)
		*ret = rows;
	return r;
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

static int row_to_volume(struct store *s, sqlite3_stmt *st, void *elem, struct mv_error *err)
{
	struct volume_record *v = elem;
	int64_t format;
	int r;

	if ((r = column_strdup(st, 0, &v->name)) < 0)
		return column_fail(s, r, "a", "volume row", "its name", err);
	if ((r = column_strdup(st, 1, &v->pool)) < 0)
		return column_fail(s, r, "volume", strempty(v->name), "pool", err);
	if ((r = column_strdup(st, 4, &v->backing)) < 0)
		return column_fail(s, r, "volume", strempty(v->name), "backing", err);
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

static void volume_row_done(void *elem)
{
	store_volume_record_done(elem);
}

int store_volume_load_all(struct store *s, struct volume_record **ret, size_t *ret_n,
			  struct mv_error *err)
{
	static const struct row_reader volume_rows = {"volumes", sizeof(struct volume_record),
						      row_to_volume, volume_row_done};
	void *rows;
	int r = load_rows(s, s->volume_load_all, &volume_rows, &rows, ret_n, err);

	if (r == 0)
		*ret = rows;
	return r;
}

/* --- network rows --------------------------------------------------------------------------- */

void store_network_record_done(struct network_record *n)
{
	if (!n)
		return;
	free(n->name);
	net_config_done(&n->config);
	memset(n, 0, sizeof(*n));
}

static bool net_mode_valid(int64_t mode)
{
	return mode >= NET_MODE_UNSPECIFIED && mode <= NET_MODE_BRIDGE;
}

int store_network_save(struct store *s, const struct network_record *n, struct mv_error *err)
{
	_cleanup_(json_putp) struct json_object *config = NULL;
	sqlite3_stmt *st = s->network_save;
	size_t id_len = strnlen(n->id, sizeof(n->id));
	const char *text;
	int len, rc, r;

	if (id_len == 0 || id_len == sizeof(n->id))
		return mv_err_invalid(err, "network has no valid id");
	if (isempty(n->name))
		return mv_err_invalid(err, "network %s has no name", n->id);
	if (!net_mode_valid(n->config.mode))
		return mv_err_invalid(err, "network '%s': config.mode: invalid value %d", n->name,
				      (int)n->config.mode);
	if (store_net_config_to_json(&n->config, &config) < 0)
		return mv_err_internal(err, -ENOMEM, "network '%s': out of memory", n->name);
	if ((r = config_text(config, "network", n->name, &text, &len, err)) < 0)
		return r;

	rc = sqlite3_bind_text(st, 1, n->id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, n->name, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 3, n->created_at_us);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 4, text, len, SQLITE_STATIC);
	return save_row(s, st, rc, s->network_find_name, "network", n->name, err);
}

int store_network_delete(struct store *s, const char *id, struct mv_error *err)
{
	return delete_row(s, s->network_delete, "network", id, err);
}

static int row_to_network(struct store *s, sqlite3_stmt *st, void *elem, struct mv_error *err)
{
	_cleanup_(json_putp) struct json_object *config = NULL;
	struct network_record *n = elem;
	const char *field = NULL;
	int r;

	if ((r = column_id(s, st, 0, "network", n->id, sizeof(n->id), err)) < 0)
		return r;
	if ((r = column_strdup(st, 1, &n->name)) < 0)
		return column_fail(s, r, "network", n->id, "name", err);
	if (isempty(n->name))
		return mv_err_internal(err, -EUCLEAN, "state database %s: network %s: invalid name",
				       s->path, n->id);
	n->created_at_us = sqlite3_column_int64(st, 2);
	if ((r = column_json(s, st, 3, "network", n->id, &config, err)) < 0)
		return r;
	if ((r = store_net_config_from_json(config, &n->config, &field)) < 0)
		return config_fail(s, r, "network", n->id, field, err);
	return 0;
}

static void network_row_done(void *elem)
{
	store_network_record_done(elem);
}

int store_network_load_all(struct store *s, struct network_record **ret, size_t *ret_n,
			   struct mv_error *err)
{
	static const struct row_reader network_rows = {"networks", sizeof(struct network_record),
						       row_to_network, network_row_done};
	void *rows;
	int r = load_rows(s, s->network_load_all, &network_rows, &rows, ret_n, err);

	if (r == 0)
		*ret = rows;
	return r;
}

/* --- meta rows ------------------------------------------------------------------------------ */

int store_meta_get(struct store *s, const char *key, char **ret, struct mv_error *err)
{
	sqlite3_stmt *st = s->meta_get;
	char *value = NULL;
	int rc, r = 0;

	rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if ((r = column_strdup(st, 0, &value)) < 0)
			r = column_fail(s, r, "meta", key, "value", err);
	} else if (rc != SQLITE_DONE) {
		r = store_fail(s, rc, err, "reading meta '%s'", key);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (r < 0)
		return r;
	*ret = value;
	return 0;
}

int store_meta_set(struct store *s, const char *key, const char *value, struct mv_error *err)
{
	sqlite3_stmt *st = s->meta_set;
	int rc, r = 0;

	rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		r = store_fail(s, rc, err, "saving meta '%s'", key);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}
