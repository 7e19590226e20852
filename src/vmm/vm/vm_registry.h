/* The VM registry (vm_registry.c): the VM manager's records in name order, lookup by id or
 * name, write-through to the store, and the event bus. The bottom of the VM manager: calls
 * nothing else of it. Runs on the event loop. */
#pragma once

#include <sys/types.h>

#include "vm/vm_internal.h"

/* A zeroed VM of m, not yet in the registry; NULL when out of memory. */
struct vm *vm_new(struct vm_manager *m);
/* Frees a VM that has no runtime left (vm_lifecycle_release first) and is not in the
 * registry. NULL-safe. */
void vm_free(struct vm *vm);

/* Index of name in m->vms, or -(insertion point) - 1. */
ssize_t vm_registry_find_name(const struct vm_manager *m, const char *name);
/* The VM whose id or name is ref (NULL or "" find nothing), or NULL. */
struct vm *vm_registry_find(struct vm_manager *m, const char *ref);
/* Like vm_registry_find, but -ENOENT ("vm 'x' not found") or -EINVAL (empty ref, naming
 * field) with a message. */
int vm_registry_lookup(struct vm_manager *m, const char *ref, const char *field, struct vm **ret,
		       struct mv_error *err);
/* The VM other than except (may be NULL) with a NIC whose MAC address is mac, compared
 * case-insensitively, or NULL; *ret_nic (may be NULL) is that NIC's index. */
struct vm *vm_registry_find_mac(struct vm_manager *m, const char *mac, const struct vm *except,
				size_t *ret_nic);
/* Makes room for one more VM, so that the next vm_registry_insert cannot fail. */
int vm_registry_reserve(struct vm_manager *m);
/* Inserts vm at pos (from vm_registry_find_name); -ENOMEM unless room was reserved. */
int vm_registry_insert(struct vm_manager *m, size_t pos, struct vm *vm);
/* Takes vm out of the registry (it is not freed). */
void vm_registry_remove(struct vm_manager *m, struct vm *vm);

/* Writes vm->rec to the store; on failure logs (the in-memory state stays authoritative for
 * this run) and returns < 0. */
int vm_save(struct vm *vm);
/* The same when only the runtime state changed (state, reason, process): not waited for
 * on disk (store_vm_save_runtime). */
int vm_save_state(struct vm *vm);
/* Sets state and reason (formatted, copied), saves, and tells the watchers (event type). */
void vm_set_state(struct vm *vm, enum vm_state state, enum vm_event_type type,
		  const char *reason_fmt, ...) _printf_(4, 5);
/* Tells the watchers about an event on vm; after a VM came, went or changed its config, also
 * the networks' DNS (vm_registry_sync_hosts). */
void vm_emit(struct vm *vm, enum vm_event_type type);
/* Tells each managed network which VM names its NICs' MACs have (network_set_hosts), so that
 * leases carry them and they resolve in the network's domain: the first NIC of a VM on a
 * network gets the VM's name if it is a DNS label (no '.' or '_', not ending in '-'). */
void vm_registry_sync_hosts(struct vm_manager *m);

/* <state-dir>/vms/<id>/file (newly allocated), the directory created 0700 on demand. */
int vm_state_path(struct vm *vm, const char *file, char **ret);
