/* The VM manager: the registry of VMs and the only owner of their state.
 *
 * Keeps every VM in memory (sorted by name, for ListVms) and writes every change through to
 * the store before it becomes visible: a call that returned an error changed nothing, in
 * memory or on disk. Lifecycle operations (vm_lifecycle.c) drive one cloud-hypervisor process per
 * VM through the hypervisor client, asynchronously: they return at once and report through a
 * callback on the event loop. One operation per VM at a time, except kill, which always goes
 * through. Runs on the event loop only. Records returned as const pointers stay valid until the
 * loop runs again. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/err.h"
#include "model/validate.h"
#include "model/vmdef.h"
#include "store/store.h"

struct vm_manager;

struct vm_manager_config {
	sd_event *event;
	struct store *store;
	const char *hypervisor;           /* cloud-hypervisor binary */
	const char *runtime_dir;          /* per-VM sockets: <runtime_dir>/vms/<id>/ */
	const char *state_dir;            /* per-VM logs: <state_dir>/vms/<id>/ */
	struct network_manager *networks; /* networks named by VM NICs; NULL: none */
	const struct path_policy *paths;  /* the daemon's own files, never a VM's; borrowed */
	struct storage *storage;          /* volumes named by VM disks; NULL: none can be used. Must
				  * outlive the VM manager, which registers itself with it as
				  * the users function (storage_set_users_fn) until it is freed */
};

int vm_manager_new(const struct vm_manager_config *cfg, struct vm_manager **ret);
/* Stops watching the VMs; their hypervisor processes keep running. NULL-safe. */
void vm_manager_free(struct vm_manager *m);

/* Loads every VM from the store. Their hypervisor processes are not looked at yet: the daemon
 * calls vm_manager_adopt next. */
int vm_manager_load(struct vm_manager *m, struct mv_error *err);
/* Re-adopts the hypervisor processes of the VMs that were running (vm_lifecycle.c): a process
 * that is gone (or whose pid now names another process) makes its VM STOPPED with reason
 * "exited while mvirt-vmm was down"; a process that is there is watched again and asked for
 * its state. Never kills a VM it fails to re-adopt.
 * Then, after a host boot (the kernel's boot id differs from the one the store kept at the last
 * start), schedules the starts of the VMs whose config has autostart: one after the other, in
 * ascending autostart_order, then by name, once the event loop runs (after the daemon is
 * ready). A failed start is logged and reported as an event of its VM (reason "autostart
 * failed: ...") and the next one goes on. After a mere daemon restart nothing is started.
 * See vm_autostart.c. */
void vm_manager_adopt(struct vm_manager *m);

/* The VM whose id or name is ref, or NULL. */
const struct vm_record *vm_manager_find(struct vm_manager *m, const char *ref);
/* Like vm_manager_find, but -ENOENT ("vm 'x' not found") or -EINVAL (empty ref, naming field)
 * with a message. */
int vm_manager_lookup(struct vm_manager *m, const char *ref, const char *field,
		      const struct vm_record **ret, struct mv_error *err);

/* Validates name and config against host, fills what the daemon assigns (id, MAC addresses,
 * disk formats detected from image headers), stores the new VM in state STOPPED. Disks that
 * name a volume must name an existing one (-EINVAL "config.disks[N].volume: volume 'x' not
 * found"); raw disk paths inside a pool must be volumes of it (storage_check_disk_path). */
int vm_manager_create(struct vm_manager *m, const char *name, const struct vm_config *config,
		      const struct host_limits *host, const struct vm_record **ret,
		      struct mv_error *err);

/* Changes the config of the VM ref names: the members of config that fields (VM_FIELD_* bits)
 * names replace the VM's (config is borrowed). version: 0, or the config version the caller
 * read (-ECANCELED, MV_ERR_ABORTED, when the VM's is another). The result is checked and
 * completed as vm_manager_create does (errors name "config.<field>"), stored, and announced
 * (VM_EVENT_CONFIG_CHANGED) all or nothing. Only a VM that is stopped or crashed, without an
 * operation in progress, can change (-EBUSY otherwise), except autostart and autostart_order,
 * which change in any state. A request that changes nothing returns the VM as it is. */
int vm_manager_update(struct vm_manager *m, const char *ref, const struct vm_config *config,
		      uint32_t fields, uint64_t version, const struct host_limits *host,
		      const struct vm_record **ret, struct mv_error *err);

/* Removes a VM that is not running (-EBUSY otherwise) with its logs. The removed record is
 * moved into *ret_old when non-NULL (caller frees with vmdef_record_done). */
int vm_manager_delete(struct vm_manager *m, const char *ref, struct vm_record *ret_old,
		      struct mv_error *err);

/* The names of the VMs (in name order, NULL-terminated; caller frees each and the array)
 * whose config uses the volume: by name in config.disks[].volume, or by the path of its file.
 * running_only: only VMs whose hypervisor process exists. The storage manager's
 * storage_users_fn (registered by vm_manager_new). */
int vm_manager_volume_users(struct vm_manager *m, const char *volume, bool running_only,
			    char ***ret_names);

size_t vm_manager_count(const struct vm_manager *m);
/* The i-th VM in name order. */
const struct vm_record *vm_manager_at(const struct vm_manager *m, size_t i);
/* Sums of vcpus and memory over all VMs. */
void vm_manager_totals(const struct vm_manager *m, uint32_t *ret_vcpus, uint64_t *ret_memory_mb);

/* ---- events ---- */

enum vm_event_type {
	VM_EVENT_CREATED = 1, /* values match mvirt.VmEventType */
	VM_EVENT_STARTED = 2,
	VM_EVENT_STOPPED = 3,
	VM_EVENT_CRASHED = 4,
	VM_EVENT_PAUSED = 5,
	VM_EVENT_RESUMED = 6,
	VM_EVENT_REBOOTED = 7,
	VM_EVENT_DELETED = 8,
	VM_EVENT_CONFIG_CHANGED = 9,
	VM_EVENT_STATE_CHANGED = 10, /* STARTING, STOPPING, re-adoption */
};

struct vm_event {
	enum vm_event_type type;
	const struct vm_record *vm; /* the VM after the event (for DELETED: as it was) */
	int64_t time_us;            /* CLOCK_REALTIME */
	uint64_t sequence;          /* +1 per event, over all VMs */
};

typedef void (*vm_event_fn)(void *userdata, const struct vm_event *ev);
struct vm_watch;

/* Calls fn for every event from now on, synchronously on the loop, in order. fn must not
 * block; it may free its own watch (or others). */
int vm_manager_watch(struct vm_manager *m, vm_event_fn fn, void *userdata, struct vm_watch **ret);
void vm_watch_free(struct vm_watch *w);

const char *vm_event_type_name(enum vm_event_type type);

/* ---- console ---- */

struct console;

/* The serial console of a running VM: -EBUSY (a failed precondition) when it does not run. */
int vm_manager_console(struct vm_manager *m, const char *ref, struct console **ret,
		       const struct vm_record **ret_rec, struct mv_error *err);
/* The console log path of any VM (it may not exist yet). */
int vm_manager_console_log(struct vm_manager *m, const char *ref, char **ret_path,
			   const struct vm_record **ret_rec, struct mv_error *err);

/* ---- device counters (vm_counters.c) ---- */

/* One of cloud-hypervisor's vm.counters: device id, counter name, value. */
struct vm_device_counter {
	char device[64];
	char name[32];
	uint64_t value;
};

struct vm_counters {
	char *vm;                    /* the VM's name when the collection began */
	bool up;                     /* its hypervisor answered with a VmCounters document */
	struct vm_device_counter *v; /* in the hypervisor's order */
	size_t n;
};

/* The results, in name order; valid during the call only. */
typedef void (*vm_counters_fn)(void *userdata, const struct vm_counters *vms, size_t n);

/* Asks the hypervisor of every RUNNING or PAUSED VM for its device counters (vm.counters), all
 * at once, each bounded by timeout_ms: a hung hypervisor only makes its VM's entry !up. fn runs
 * once, on the loop, when every answer is in or timed out (also when there is no VM to ask);
 * never from inside this call. Deleting or stopping VMs meanwhile is fine (names are copied).
 * Returns 0, or -ENOMEM (fn is then not called). Silent. */
int vm_manager_collect_counters(struct vm_manager *m, uint64_t timeout_ms, vm_counters_fn fn,
				void *userdata);

/* ---- lifecycle (vm_lifecycle.c) ---- */

/* Called once when an operation ends: err->code == 0 and rec = the VM on success; on failure
 * err says why and rec is the VM as it is now (or NULL if it is gone). */
typedef void (*vm_done_fn)(void *userdata, const struct vm_record *rec, const struct mv_error *err);

enum vm_op_kind {
	VM_OP_START,
	VM_OP_STOP,
	VM_OP_KILL,
	VM_OP_REBOOT,
	VM_OP_PAUSE,
	VM_OP_RESUME,
	VM_OP_ADD_NIC,    /* vm_manager_add_nic only */
	VM_OP_REMOVE_NIC, /* vm_manager_remove_nic only */
};

struct vm_op_args {
	uint32_t timeout_s; /* stop: seconds to wait for the guest after the power button */
	bool force;         /* stop: skip the power button */
	/* add-nic, remove-nic (vm.c): the VM's config after the change, moved into the operation
	 * when it begins (else left to the caller), and the NIC's index (in it for add, in the
	 * current config for remove) */
	struct vm_config *config;
	size_t nic;
};

#define VM_STOP_DEFAULT_TIMEOUT_S 30

/* Starts the operation on the VM named by ref. Returns < 0 with err filled when it cannot
 * begin (not found; a failed precondition: wrong state, another operation in progress, no
 * hypervisor binary, files of the config gone); fn is then not called. Returns 0 when it began; fn runs later, on the loop. */
int vm_manager_op(struct vm_manager *m, enum vm_op_kind kind, const char *ref,
		  const struct vm_op_args *args, vm_done_fn fn, void *userdata,
		  struct mv_error *err);

/* NIC hotplug. Adds nic (checked like a CreateVm NIC; errors name "nic.<field>"; a MAC is
 * assigned when it has none) to the VM's config, or removes the NIC whose MAC is mac
 * (case-insensitive; -ENOENT naming "mac" when there is none). A running VM gets or loses the
 * device first (vm.add-net with the tap the daemon makes for a NIC on a network, or the
 * user's tap; vm.remove-device), and the config changes only when cloud-hypervisor said yes;
 * a stopped one only changes its config, and fn runs before the call returns. Other states
 * (paused, starting, stopping) are a failed precondition. VM_EVENT_CONFIG_CHANGED on success. */
int vm_manager_add_nic(struct vm_manager *m, const char *ref, const struct vm_nic *nic,
		       vm_done_fn fn, void *userdata, struct mv_error *err);
int vm_manager_remove_nic(struct vm_manager *m, const char *ref, const char *mac, vm_done_fn fn,
			  void *userdata, struct mv_error *err);

/* Ends every operation in progress as unavailable (the daemon is stopping; processes are left
 * as they are and re-adopted at the next start). */
void vm_manager_abort_ops(struct vm_manager *m);

const char *vm_op_kind_name(enum vm_op_kind kind);

/* The vocabulary (vm_state.c). The state table: may kind begin on a VM in state, with or without a hypervisor
 * process? Start needs a stopped or crashed VM without one; stop and reboot a running or
 * paused one; pause a running one, resume a paused one; kill only needs a process; NIC hotplug a running VM with one or a stopped or crashed VM without one. */
bool vm_op_allowed(enum vm_state state, bool has_process, enum vm_op_kind kind);
