/* The VM manager's objects, shared by its files: types only, no functions. Every field has one
 * file that writes it (named beside it); the others only read it:
 *   vm.c            the manager's public calls (create, delete, load, queries)
 *   vm_registry.c   the registry: records, lookup, persistence, events
 *   vm_lifecycle.c  operations, the hypervisor process and what it reports
 *   vm_runtime.c    a running VM's files and streams: runtime dir, sockets, logs, console
 *   vm_disks.c      (no state) the disks a config names, resolved
 *   vm_autostart.c  the starts after a host boot
 * The files call each other in one direction: vm.c → vm_autostart.c → vm_lifecycle.c →
 * vm_runtime.c, vm_disks.c → vm_registry.c. Nothing outside src/vmm/vm/ includes this. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "hypervisor/ch_client.h"
#include "hypervisor/ch_events.h"
#include "os/proc.h"
#include "vm/vm.h"

/* Stop escalation: power button (guest's own power-off), then vmm.shutdown, SIGTERM, SIGKILL. */
enum vm_stop_phase {
	STOP_PHASE_BUTTON,
	STOP_PHASE_SHUTDOWN,
	STOP_PHASE_TERM,
	STOP_PHASE_KILL,
};

/* An operation in progress (vm_lifecycle.c). */
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
	/* start: the taps of NICs on networks, until vm.add-net has handed them over */
	int tap_fds[VM_MAX_NICS];
	size_t tap_nic[VM_MAX_NICS]; /* which config.nics[] each is */
	size_t n_taps, next_tap;
	/* add-nic, remove-nic (vm_nics.c): the config once cloud-hypervisor agreed, and the NIC */
	struct vm_config new_config;
	size_t nic_index; /* the NIC: in new_config (add) or in rec.config (remove) */
};

/* A running VM's files and streams (vm_runtime.c), while its hypervisor process exists. */
struct vm_runtime {
	char *rundir;     /* <runtime-dir>/vms/<id> */
	char *api_socket; /* <rundir>/api.sock */
	struct console *console;
	sd_event_source *events_watch; /* inotify on <rundir>/events.json */
	int events_fd;
	struct ch_event_parser events;
	ch_event_fn on_event; /* the lifecycle's policy for what the event monitor reports */
};

struct vm {
	struct vm_record rec;  /* vm_registry.c (vm_lifecycle.c sets state through it, and
				* rec.process and rec.started_at_us itself): what the API shows
				* and the store keeps */
	struct vm_manager *m;  /* vm_registry.c */
	struct vm_runtime run; /* vm_runtime.c */

	/* vm_lifecycle.c */
	struct proc *proc;           /* the hypervisor process, while it exists */
	struct vm_op *op;            /* the operation in progress, or NULL */
	struct ch_request *info_req; /* vm.info / vmm.shutdown after re-adoption */
	bool guest_shutdown;         /* a "vm shutdown" event was seen: the guest powered off */
	bool guest_panic;            /* a "guest panic" event was seen */
	bool abandoned; /* re-adopted amid a start or stop the last daemon did not finish: being
			 * shut down, and STOPPED (not CRASHED) when it exits */
	unsigned reboot_events_owed; /* RebootVm calls done whose "vm rebooted" event is due */
};

/* vm_registry.c */
struct vm_watch {
	struct vm_manager *m;
	vm_event_fn fn;
	void *userdata;
	struct vm_watch *prev, *next;
};

struct vm_manager {
	sd_event *event;
	/* vm.c, from the config; read by all */
	struct store *store;
	struct storage *storage;          /* borrowed; NULL: no volumes */
	struct network_manager *networks; /* borrowed; NULL: no networks */
	char *hypervisor;
	char *runtime_dir;
	char *state_dir;
	const struct path_policy *paths; /* borrowed; NULL: none known */
	/* vm_lifecycle.c */
	struct ch_client *ch;
	/* vm_registry.c */
	struct vm **vms; /* sorted by name */
	size_t n_vms, n_alloc;
	struct vm_watch *watches;
	struct vm_watch *dispatch_next; /* next watch of an event delivery in progress */
	uint64_t event_sequence;
	/* vm_autostart.c */
	struct vm_autostart *autostart; /* the starts after a host boot; NULL: none */
};
