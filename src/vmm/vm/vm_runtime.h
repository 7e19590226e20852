/* A running VM's files and streams besides its hypervisor process (vm_runtime.c): the runtime
 * directory <runtime-dir>/vms/<id> and its API socket, the hypervisor log, the event-monitor
 * stream, the serial console, the cloud-init seed. Owns struct vm_runtime (vm->run); the
 * lifecycle (vm_lifecycle.c) decides when each exists and what events mean. Runs on the
 * event loop. */
#pragma once

#include "vm/vm_disks.h"
#include "vm/vm_internal.h"

/* Computes vm->run.rundir and api_socket once. */
int vm_runtime_paths(struct vm *vm);
/* <rundir>/name, newly allocated, or NULL. */
char *vm_runtime_file(struct vm *vm, const char *name);
/* Creates the runtime directory afresh (stale leftovers of a killed hypervisor removed). */
int vm_runtime_prepare(struct vm *vm, struct mv_error *err);
/* Binds, chmods 0600 and listens on <rundir>/api.sock; returns the fd. */
int vm_runtime_bind_api_socket(struct vm *vm, struct mv_error *err);
/* Opens (rotating at 1 MiB) <state-dir>/vms/<id>/hypervisor.log for the hypervisor's output;
 * returns the fd. */
int vm_runtime_open_hv_log(struct vm *vm, struct mv_error *err);
/* Follows <rundir>/events.json (the --event-monitor file) from its start (create: made empty
 * first) or its end (re-adoption); every event goes to fn. */
int vm_runtime_events_open(struct vm *vm, bool create, ch_event_fn fn, struct mv_error *err);
/* Reads what the event monitor wrote since the last read (the last events before an exit). */
void vm_runtime_events_read(struct vm *vm);
/* Connects to <rundir>/serial.sock, which exists from vm.create on; logs when it cannot. */
void vm_runtime_console_open(struct vm *vm);
/* Builds the cloud-init seed in the runtime directory when the config has user_data and
 * appends it to set as a read-only raw disk. */
int vm_runtime_seed(struct vm *vm, struct vm_disk_set *set, struct mv_error *err);
/* Closes the streams (console viewers are told reason) and forgets the paths; files stay. */
void vm_runtime_release(struct vm *vm, const char *reason);
/* The process is gone: removes the runtime directory and releases everything. */
void vm_runtime_remove(struct vm *vm, const char *reason);

/* Removes every runtime directory that no VM with a process owns (under <runtime>/vms): what a
 * daemon killed between a start's directory and its spawn, or during a delete, left behind.
 * Run once at start, after re-adoption has settled which VMs run. */
void vm_runtime_sweep(struct vm_manager *m);
