/* The VM lifecycle (vm_lifecycle.c): start, stop, kill, reboot, pause, resume, the hypervisor
 * process and what it reports, re-adoption after a daemon restart. Its public calls are in
 * vm.h (vm_manager_op, vm_manager_abort_ops, vm_manager_adopt); these are for vm.c. */
#pragma once

#include "vm/vm_internal.h"

/* True when the VM's hypervisor process exists (or is about to, or may still). */
bool vm_lifecycle_runs(const struct vm *vm);
/* Lets go of everything the VM has at run time but the process itself, which keeps running:
 * an operation in progress ends without its callback, console viewers are told reason. For a
 * VM about to be freed (daemon shutdown, delete). */
void vm_lifecycle_release(struct vm *vm, const char *reason);
