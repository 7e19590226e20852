/* The VM manager: the registry of VMs, the only owner of their state.
 *
 * Keeps every VM in memory (sorted by name, for ListVms) and writes every change through to
 * the store before it becomes visible: a call that returned an error changed nothing, in
 * memory or on disk. Runs on the event loop only. Records returned as const pointers stay
 * valid until the next call that modifies the manager. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"
#include "validate.h"
#include "vmdef.h"

struct vm_manager;

int vm_manager_new(struct store *store, struct vm_manager **ret);
void vm_manager_free(struct vm_manager *m);

/* Loads every VM from the store. */
int vm_manager_load(struct vm_manager *m, struct mv_error *err);

/* The VM whose id or name is ref, or NULL. */
const struct vm_record *vm_manager_find(struct vm_manager *m, const char *ref);
/* Like vm_manager_find, but -ENOENT ("vm 'x' not found") or -EINVAL (empty ref, naming field)
 * with a message. */
int vm_manager_lookup(struct vm_manager *m, const char *ref, const char *field,
		      const struct vm_record **ret, struct mv_error *err);

/* Validates name and config against host, fills what the daemon assigns (id, MAC addresses,
 * disk formats detected from image headers), stores the new VM in state STOPPED. */
int vm_manager_create(struct vm_manager *m, const char *name, const struct vm_config *config,
		      const struct host_limits *host, const struct vm_record **ret,
		      struct mv_error *err);

/* Removes a VM that is not running; -EBUSY (FAILED_PRECONDITION) otherwise. The removed
 * record is moved into *ret_old when non-NULL (caller frees with vmdef_record_done). */
int vm_manager_delete(struct vm_manager *m, const char *ref, struct vm_record *ret_old,
		      struct mv_error *err);

size_t vm_manager_count(const struct vm_manager *m);
/* The i-th VM in name order. */
const struct vm_record *vm_manager_at(const struct vm_manager *m, size_t i);
/* Sums of vcpus and memory over all VMs. */
void vm_manager_totals(const struct vm_manager *m, uint32_t *ret_vcpus, uint64_t *ret_memory_mb);
