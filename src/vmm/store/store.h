/* The state store: VM definitions and state, storage volumes and managed networks, in SQLite.
 *
 * One database file per state directory (<state-dir>/mvirt.db), opened by one daemon at a time
 * (the daemon holds a lock file, see main.c). WAL mode with synchronous=FULL: a save that
 * returned 0 survives a power cut. The schema is versioned with PRAGMA user_version and
 * migrated forward in one transaction at open; a database that fails PRAGMA integrity_check, or
 * whose user_version is newer than this build knows, is refused and left untouched.
 *
 * Only this module touches sqlite3. It never logs: it returns -errno and, where a user must
 * read the cause, fills the error object. Called from the daemon's event loop only. */
#pragma once

#include <stddef.h>

#include "common/err.h"
#include "model/netdef.h"
#include "model/vmdef.h"

#define STORE_SCHEMA_VERSION 5

struct store;

/* Opens (creating if absent, mode 0600) the database at path, checks and migrates it.
 * Refuses with -EUCLEAN (corrupt: integrity_check failed, or not a database) or -EPROTO (schema
 * newer than STORE_SCHEMA_VERSION), and a message saying so, without modifying the file. */
int store_open(const char *path, struct store **ret, struct mv_error *err);
void store_close(struct store *s);

/* Inserts or replaces the VM with vm->id, atomically. -EEXIST if another VM has its name. */
int store_vm_save(struct store *s, const struct vm_record *vm, struct mv_error *err);
/* The same for a change of runtime state only (state, reason, process): what the process
 * table tells again after any crash, so the commit does not wait for the disk. */
int store_vm_save_runtime(struct store *s, const struct vm_record *vm, struct mv_error *err);
/* Removes the VM; -ENOENT if there is none with that id. */
int store_vm_delete(struct store *s, const char *id, struct mv_error *err);
/* All VMs, ordered by name, as a newly allocated array the caller frees with
 * vmdef_record_done() on each element and free() on the array. */
int store_vm_load_all(struct store *s, struct vm_record **ret, size_t *ret_n, struct mv_error *err);

/* A volume of the storage manager (storage.h), as stored. The row is written once the volume's
 * file is complete, so a row always names a file that was whole (see storage.c). */
struct volume_record {
	char *name;
	char *pool;
	enum disk_format format; /* raw or qcow2 */
	int64_t created_at_us;
	char *backing; /* the volume this one is a qcow2 overlay of; NULL: none */
};

void store_volume_record_done(struct volume_record *v);

/* Inserts or replaces the volume named v->name, atomically. The backing volume must exist
 * (-EINVAL otherwise). */
int store_volume_save(struct store *s, const struct volume_record *v, struct mv_error *err);
/* Removes the volume; -ENOENT if there is none with that name, -EBUSY if another volume names
 * it as its backing volume. */
int store_volume_delete(struct store *s, const char *name, struct mv_error *err);
/* All volumes, ordered by name, as a newly allocated array the caller frees with
 * store_volume_record_done() on each element and free() on the array. */
int store_volume_load_all(struct store *s, struct volume_record **ret, size_t *ret_n,
			  struct mv_error *err);

/* A managed network of the network manager (network/network.h), as stored. The row is written
 * before the network's bridge is made and removed after it is gone, so that a daemon that dies
 * in between finds (and finishes or undoes) what it started. */
struct network_record {
	char id[37]; /* UUID, the row's key */
	char *name;  /* unique */
	struct net_config config;
	int64_t created_at_us;
};

void store_network_record_done(struct network_record *n);

/* Inserts or replaces the network with n->id, atomically. -EEXIST if another network has its
 * name; -EINVAL without an id or name, or with a mode outside enum net_mode. The config is
 * stored as it is: checking it (net_config_resolve) is the caller's business. */
int store_network_save(struct store *s, const struct network_record *n, struct mv_error *err);
/* Removes the network; -ENOENT if there is none with that id. */
int store_network_delete(struct store *s, const char *id, struct mv_error *err);
/* All networks, ordered by name, as a newly allocated array the caller frees with
 * store_network_record_done() on each element and free() on the array. A row whose config does
 * not parse fails the whole load with -EUCLEAN, naming the network's id and the member. */
int store_network_load_all(struct store *s, struct network_record **ret, size_t *ret_n,
			   struct mv_error *err);

/* Small values the daemon keeps about its host between runs, by key ("boot_id"): the value, or
 * NULL when unset, in *ret (caller frees); set inserts or replaces it, atomically. */
int store_meta_get(struct store *s, const char *key, char **ret, struct mv_error *err);
int store_meta_set(struct store *s, const char *key, const char *value, struct mv_error *err);

/* The schema version the file at hand had before store_open migrated it (for tests/logs). */
int store_schema_version_found(const struct store *s);
/* fn runs after every committed write (it replaces SQLite's checkpoint every 1,000 pages):
 * the caller checkpoints once a burst of writes is over (store_checkpoint), so that the
 * database file, not the -wal, holds the state. NULL restores SQLite's own checkpoints. */
typedef void (*store_write_fn)(void *userdata);
void store_set_write_hook(struct store *s, store_write_fn fn, void *userdata);
/* Copies the WAL into the database file and empties it (TRUNCATE). */
int store_checkpoint(struct store *s, struct mv_error *err);
/* How long PRAGMA integrity_check took at open (it reads every page: ~N ms per MB). */
uint64_t store_check_usec(const struct store *s);
