/* Shared between vm.c (registry, persistence) and vm_run.c (lifecycle). Nothing else
 * includes this. */
#pragma once

#include "hypervisor/ch_client.h"
#include "hypervisor/ch_events.h"
#include "os/proc.h"
#include "vm/console.h"
#include "vm/vm.h"

/* Stop escalation: power button (guest's own power-off), then vmm.shutdown, SIGTERM, SIGKILL. */
enum vm_stop_phase {
	STOP_PHASE_BUTTON,
	STOP_PHASE_SHUTDOWN,
	STOP_PHASE_TERM,
	STOP_PHASE_KILL,
};

struct vm_op {
	enum vm_op_kind kind;
	struct vm_op_args args;
	vm_done_fn fn;
	void *userdata;
	struct ch_request *req; /* the REST call in flight */
	sd_event_source *timer; /* a deadline of the current step */
	int step;               /* start: which REST call; stop: enum vm_stop_phase */
	bool failing;           /* start failed: waiting for the process to be gone */
	bool event_seen;        /* reboot: the event monitor's "vm rebooted" arrived already */
	uint64_t t_begin_us;    /* CLOCK_MONOTONIC at the request */
	uint64_t t_call_us;     /* ... when the REST call in flight was sent */
	uint64_t hv_wait_us;    /* time spent waiting for the hypervisor's answers */
	struct mv_error err;    /* the failure to report */
};

struct vm {
	struct vm_record rec; /* first: what the API shows and the store keeps */
	struct vm_manager *m;

	/* runtime, only while the hypervisor process exists */
	struct proc *proc;
	struct console *console;
	sd_event_source *events_watch;
	int events_fd;
	struct ch_event_parser events;
	bool guest_shutdown;         /* a "vm shutdown" event was seen: the guest powered off */
	bool guest_panic;            /* a "guest panic" event was seen */
	unsigned reboot_events_owed; /* RebootVm calls done whose "vm rebooted" event is due */
	struct ch_request *info_req; /* vm.info / vmm.shutdown after re-adoption */
	char *rundir;                /* <runtime-dir>/vms/<id> */
	char *api_socket;            /* <rundir>/api.sock */
	struct vm_op *op;            /* the operation in progress, or NULL */
};

struct vm_watch {
	struct vm_manager *m;
	vm_event_fn fn;
	void *userdata;
	struct vm_watch *prev, *next;
};

struct vm_manager {
	sd_event *event;
	struct vm_watch *watches;
	struct vm_watch *dispatch_next; /* next watch of an event delivery in progress */
	uint64_t event_sequence;
	struct store *store;
	struct storage *storage; /* borrowed; NULL: no volumes */
	struct ch_client *ch;
	char *hypervisor;
	char *runtime_dir;
	char *state_dir;
	struct vm **vms; /* sorted by name */
	size_t n_vms, n_alloc;
};

/* Writes vm->rec to the store; on failure logs (the in-memory state stays authoritative for
 * this run) and returns < 0. */
int vm_save(struct vm *vm);
/* Sets state and reason (copied), saves, and tells the watchers (event type). */
void vm_set_state(struct vm *vm, enum vm_state state, enum vm_event_type type,
		  const char *reason_fmt, ...) _printf_(4, 5);
/* Tells the watchers about an event on vm. */
void vm_emit(struct vm *vm, enum vm_event_type type);
struct vm *vm_find_ref(struct vm_manager *m, const char *ref);

/* <state-dir>/vms/<id>, created 0700 on demand. */
int vm_state_path(struct vm *vm, const char *file, char **ret);

/* vm_run.c: re-adopt the VM's process at load (vm->rec.process.pid != 0). */
void vm_run_adopt(struct vm *vm);
/* vm_run.c: release runtime watchers (not the process); console viewers get reason. */
void vm_run_detach(struct vm *vm, const char *reason);

/* ---- vm_runtime.c: what a running VM has besides its process ---- */

/* The disks to hand to cloud-hypervisor, and the strings they point to that are not the
 * config's own (resolved volume paths, the seed's path). */
struct vm_launch_disks {
	struct ch_disk *disks;
	char **owned; /* parallel to disks; NULL where the path is borrowed from the config */
	size_t n, cap;
};

/* vm_run.c: stops the REST call and the timer of an operation. */
void vm_op_cancel_io(struct vm_op *op);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t vm_mono_us(void);
/* <runtime-dir>/vms/<id> and its api.sock path, computed once. */
int vm_rundir_path(struct vm *vm);
/* <rundir>/name, newly allocated, or NULL. */
char *vm_rundir_file(struct vm *vm, const char *name);
void vm_rundir_remove(struct vm *vm);
/* Creates the runtime directory afresh (stale leftovers of a killed hypervisor removed). */
int vm_rundir_prepare(struct vm *vm, struct mv_error *err);
/* Binds, chmods and listens on <rundir>/api.sock; returns the fd. */
int vm_bind_api_socket(struct vm *vm, struct mv_error *err);
/* Opens (rotating) <state-dir>/vms/<id>/hypervisor.log for the hypervisor's output. */
int vm_open_hv_log(struct vm *vm, char **ret_path);
/* Follows <rundir>/events.json from its start (create) or its end (re-adoption). */
int vm_events_open(struct vm *vm, bool create);
void vm_events_read(struct vm *vm);
void vm_console_open(struct vm *vm);
/* The process is gone: drop its runtime, tell console viewers why. */
void vm_runtime_clear(struct vm *vm, const char *reason);
int vm_launch_disks(struct vm *vm, struct vm_launch_disks *l, struct mv_error *err);
int vm_launch_seed(struct vm *vm, struct vm_launch_disks *l, struct mv_error *err);
void vm_launch_disks_done(struct vm_launch_disks *l);
