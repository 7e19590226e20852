/* The VM lifecycle (vm_lifecycle.c, vm_nics.c): start, stop, kill, reboot, pause, resume, NIC
 * hotplug, the hypervisor
 * process and what it reports, re-adoption after a daemon restart. Its public calls are in
 * vm.h (vm_manager_op, vm_manager_abort_ops, vm_manager_adopt); these are for vm.c. */
#pragma once

#include "vm/vm_internal.h"

/* The operation in progress, for the files of the lifecycle (vm_nics.c). */
/* Ends it and tells its caller; err NULL = success. */
void vm_op_finish(struct vm *vm, const struct mv_error *err);
/* Fills err from a failed REST reply (what: the call, e.g. "vm.add-net"). */
int vm_op_reply_error(struct vm *vm, const char *what, const struct ch_reply *reply,
		      struct mv_error *err);
/* Called first thing in every reply callback of an operation: accounts the wait. */
void vm_op_replied(struct vm_op *op);
/* Accounts the time of a REST call that the operation in progress waits for. */
void vm_op_calling(struct vm *vm);

/* vm_nics.c: begins add-nic or remove-nic (vm->op holds the config after the change). */
int vm_nics_begin(struct vm *vm, struct mv_error *err);

/* vm_manager_adopt's re-adoption of the hypervisor processes (see vm.h). */
void vm_lifecycle_adopt_all(struct vm_manager *m);

/* True when the VM's hypervisor process exists (or is about to, or may still). */
bool vm_lifecycle_runs(const struct vm *vm);
/* Lets go of everything the VM has at run time but the process itself, which keeps running:
 * an operation in progress ends without its callback, console viewers are told reason. For a
 * VM about to be freed (daemon shutdown, delete). */
void vm_lifecycle_release(struct vm *vm, const char *reason);
