/* VM lifecycle: one cloud-hypervisor process per running VM, driven through its REST API
 * (typed calls: hypervisor/ch_vm.h).
 *
 * Start: a prepare step does everything that can fail without a process (the hypervisor
 * binary, the stored config checked again, disks resolved, the runtime directory made afresh,
 * the cloud-init seed, the VmConfig JSON, the API socket bound to be passed as fd 3, the
 * event-monitor file, the hypervisor log), filling one struct start_launch; the spawn step
 * starts the process and vm.create, vm.boot follow, and vm.info must say Running before the VM
 * is RUNNING. A failure before the spawn leaves nothing behind and is answered at once; after
 * it, the process is killed and the caller hears about it only once the process is gone and
 * the runtime directory removed.
 * Stop: vm.power-button, wait for the guest, then vmm.shutdown, SIGTERM, SIGKILL; StopVm
 * returns once the process is gone.
 * The process's exit (pidfd, process supervisor) is the truth about a VM that ends on its own;
 * the event monitor stream is a hint (guest power-off vs. crash, guest panic), and its policy
 * is here: a panicked guest is killed, a reboot the guest did by itself is an event.
 *
 * Every REST call is asynchronous with a timeout (ch_client.c), so a hung hypervisor blocks
 * neither the loop nor other VMs. Owns vm->proc, vm->op, vm->info_req and the event flags;
 * sets the VM's state through the registry. */
#include "vm/vm_lifecycle.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "hypervisor/ch_config.h"
#include "hypervisor/ch_vm.h"
#include "model/validate.h"
#include "network/network.h"
#include "os/sysinfo.h"
#include "vm/vm_disks.h"
#include "vm/vm_registry.h"
#include "vm/vm_runtime.h"

#define STOP_STEP_USEC (5 * 1000000ULL) /* vmm.shutdown, then SIGTERM, each get this long */

enum start_step {
	START_CREATE,
	START_ADD_NET, /* one vm.add-net per NIC on a network, with its tap fd */
	START_BOOT,
	START_INFO,
};

/* The daemon's fds of the taps: once cloud-hypervisor holds its own (or the start failed),
 * closing them leaves each tap to live exactly as long as the hypervisor. */
static void op_close_taps(struct vm_op *op)
{
	for (size_t i = 0; i < op->n_taps; i++)
		closep(&op->tap_fds[i]);
	op->n_taps = op->next_tap = 0;
}

static void op_cancel_io(struct vm_op *op)
{
	if (op->req)
		ch_request_cancel(op->req);
	op->req = NULL;
	op->timer = sd_event_source_disable_unref(op->timer);
}

/* Ends the operation in progress and tells its caller. err NULL = success. */
void vm_op_finish(struct vm *vm, const struct mv_error *err)
{
	struct vm_op *op = vm->op;
	struct mv_error ok = {0};

	if (!op)
		return;
	vm->op = NULL;
	op_cancel_io(op);
	op_close_taps(op);
	vmdef_config_done(&op->new_config);
	if (err && err->kind != MV_ERR_NONE)
		log_info("vm %s: %s failed: %s", vm->rec.name, vm_op_kind_name(op->kind), err->msg);
	else
		log_debug("vm %s: %s took %.3f ms, %.3f ms of it waiting for cloud-hypervisor",
			  vm->rec.name, vm_op_kind_name(op->kind),
			  (double)(clock_mono_us() - op->t_begin_us) / 1000.0,
			  (double)op->hv_wait_us / 1000.0);
	op->fn(op->userdata, &vm->rec, err ? err : &ok);
	free(op);
}

/* Fills err from a failed REST reply: HTTP errors carry cloud-hypervisor's own text. */
int vm_op_reply_error(struct vm *vm, const char *what, const struct ch_reply *reply,
		      struct mv_error *err)
{
	if (reply->error == -ETIMEDOUT)
		return mv_err_timeout(err, "vm '%s': %s: cloud-hypervisor did not answer in time",
				      vm->rec.name, what);
	if (reply->error < 0)
		return mv_err_internal(err, -EIO, "vm '%s': %s: cannot reach cloud-hypervisor: %s",
				       vm->rec.name, what, reply->message);
	/* cloud-hypervisor refused: the request does not fit the VM as it is now. */
	return mv_err_precondition(err, -EREMOTEIO, "vm '%s': %s: cloud-hypervisor: %s",
				   vm->rec.name, what, reply->message);
}

/* Called first thing in every reply callback of an operation: accounts the wait. */
void vm_op_replied(struct vm_op *op)
{
	op->req = NULL;
	if (op->t_call_us)
		op->hv_wait_us += clock_mono_us() - op->t_call_us;
	op->t_call_us = 0;
}

/* Accounts the time of a REST call that the operation in progress waits for. */
void vm_op_calling(struct vm *vm)
{
	if (vm->op)
		vm->op->t_call_us = clock_mono_us();
}

/* ---- what the hypervisor reports ---- */

static void runtime_clear(struct vm *vm, const char *reason);

/* The event monitor's policy. */
static void on_hv_event(void *userdata, const struct ch_event *ev)
{
	struct vm *vm = userdata;

	log_debug("vm %s: event %s/%s", vm->rec.name, ev->source, ev->event);
	if (streq(ev->source, "vm") && streq(ev->event, "shutdown")) {
		vm->guest_shutdown = true;
	} else if (streq(ev->source, "guest") && streq(ev->event, "panic")) {
		/* As libvirt's default on_crash=destroy: a panicked guest is of no use. */
		log_warning("vm %s: guest kernel panic; stopping its hypervisor", vm->rec.name);
		vm->guest_panic = true;
		if (vm->proc)
			(void)proc_signal(vm->proc, SIGKILL);
	} else if (streq(ev->source, "vm") && streq(ev->event, "rebooted")) {
		/* A reboot the guest did by itself; RebootVm reports its own, whose event may
		 * come before or after the REST reply. */
		if (vm->op && vm->op->kind == VM_OP_REBOOT) {
			vm->op->event_seen = true;
		} else if (vm->reboot_events_owed > 0) {
			vm->reboot_events_owed--;
		} else {
			log_info("vm %s: the guest rebooted", vm->rec.name);
			vm_emit(vm, VM_EVENT_REBOOTED);
		}
	}
}

static void on_proc_exit(void *userdata, const struct proc_exit *exit)
{
	struct vm *vm = userdata;
	struct vm_op *op = vm->op;
	enum vm_op_kind kind = op ? op->kind : VM_OP_START;
	enum vm_state state = VM_STATE_STOPPED;
	enum vm_event_type type = VM_EVENT_STOPPED;
	struct mv_error err = {0};
	char how[128], reason[MV_ERROR_MAX + 64], closing[sizeof(reason) + 64];
	bool guest_off, panic;

	vm_runtime_events_read(vm); /* the last events may explain the exit */
	guest_off = vm->guest_shutdown || (exit->known && exit->signal == 0 && exit->code == 0);
	panic = vm->guest_panic;
	proc_exit_describe(exit, how, sizeof(how));
	log_debug("vm %s: cloud-hypervisor %s", vm->rec.name, how);

	if (op && kind == VM_OP_START) {
		if (!op->failing)
			mv_err_internal(&op->err, -EIO,
					"vm '%s': cloud-hypervisor %s while starting the VM (see "
					"%s/vms/%s/hypervisor.log)",
					vm->rec.name, how, vm->m->state_dir, vm->rec.id);
		snprintf(reason, sizeof(reason), "start failed: %s", op->err.msg);
	} else if (op && kind == VM_OP_STOP) {
		if (op->step == STOP_PHASE_BUTTON && guest_off)
			snprintf(reason, sizeof(reason), "guest powered off (stop requested)");
		else
			snprintf(reason, sizeof(reason), "stopped (cloud-hypervisor %s)", how);
	} else if (op && kind == VM_OP_KILL) {
		snprintf(reason, sizeof(reason), "killed");
	} else if (vm->abandoned) {
		snprintf(reason, sizeof(reason),
			 "stopped: a start or stop did not finish before mvirt-vmm restarted");
	} else if (panic) {
		state = VM_STATE_CRASHED;
		snprintf(reason, sizeof(reason), "guest kernel panic");
	} else if (guest_off) {
		snprintf(reason, sizeof(reason), "guest powered off");
	} else {
		state = VM_STATE_CRASHED;
		snprintf(reason, sizeof(reason), "cloud-hypervisor %s", how);
	}
	if (state == VM_STATE_CRASHED)
		type = VM_EVENT_CRASHED;
	if (op && kind != VM_OP_START && kind != VM_OP_STOP && kind != VM_OP_KILL)
		mv_err_internal(&err, -EIO, "vm '%s': cloud-hypervisor %s during %s", vm->rec.name,
				how, vm_op_kind_name(kind));

	snprintf(closing, sizeof(closing), "vm %s: %s", vm_state_name(state), reason);
	runtime_clear(vm, closing);
	vm_set_state(vm, state, type, "%s", reason);
	if (op)
		vm_op_finish(vm, kind == VM_OP_START ? &op->err : &err);
}

/* Cancels what the lifecycle has in flight for the VM but the operation itself, and lets go of
 * the process handle (not the process) and the runtime streams. */
static void detach(struct vm *vm, const char *reason)
{
	if (vm->info_req)
		ch_request_cancel(vm->info_req);
	vm->info_req = NULL;
	proc_free(vm->proc);
	vm->proc = NULL;
	vm_runtime_release(vm, reason);
}

/* The process is gone: its runtime directory goes, and nothing of it is remembered. An
 * operation in progress stays (its caller is told by whoever called this). */
static void runtime_clear(struct vm *vm, const char *reason)
{
	detach(vm, reason);
	vm_runtime_remove(vm, reason);
	memset(&vm->rec.process, 0, sizeof(vm->rec.process));
	vm->guest_shutdown = false;
	vm->guest_panic = false;
	vm->abandoned = false;
	vm->reboot_events_owed = 0;
}

bool vm_lifecycle_runs(const struct vm *vm)
{
	return vm->proc || vm->rec.process.pid != 0 ||
	       (vm->rec.state != VM_STATE_STOPPED && vm->rec.state != VM_STATE_CRASHED);
}

void vm_lifecycle_release(struct vm *vm, const char *reason)
{
	if (vm->op) {
		op_cancel_io(vm->op);
		op_close_taps(vm->op);
		vmdef_config_done(&vm->op->new_config);
		free(vm->op);
		vm->op = NULL;
	}
	detach(vm, reason);
}

/* ---- start ---- */

static void start_fail(struct vm *vm, const struct mv_error *err)
{
	struct vm_op *op = vm->op;

	op_cancel_io(op);
	if (!op->failing) {
		op->failing = true;
		op->err = *err;
	}
	if (vm->proc)
		(void)proc_signal(vm->proc, SIGKILL); /* on_proc_exit finishes the op */
}

static void start_step(struct vm *vm);

static void on_start_reply(void *userdata, const struct ch_reply *reply)
{
	static const char *const what[] = {"vm.create", "vm.add-net", "vm.boot", "vm.info"};
	struct vm *vm = userdata;
	struct vm_op *op = vm->op;
	struct mv_error err = {0};
	struct ch_vm_info info;

	vm_op_replied(vm->op);
	if (!ch_reply_ok(reply)) {
		vm_op_reply_error(vm, what[op->step], reply, &err);
		start_fail(vm, &err);
		return;
	}
	if (op->step == START_INFO) {
		if (ch_reply_vm_info(reply, &info) < 0 || info.state != CH_VM_STATE_RUNNING) {
			mv_err_internal(&err, -EIO,
					"vm '%s': cloud-hypervisor reports state %s after vm.boot",
					vm->rec.name,
					info.state_name[0] ? info.state_name : "(none)");
			start_fail(vm, &err);
			return;
		}
		vm->rec.started_at_us = clock_real_us();
		vm_set_state(vm, VM_STATE_RUNNING, VM_EVENT_STARTED, "started");
		vm_op_finish(vm, NULL);
		return;
	}
	if (op->step == START_CREATE)
		vm_runtime_console_open(vm); /* the serial socket exists from vm.create on */
	if (op->step == START_CREATE && op->n_taps > 0) {
		op->step = START_ADD_NET;
	} else if (op->step == START_ADD_NET && ++op->next_tap < op->n_taps) {
		/* the next NIC */
	} else {
		if (op->step == START_ADD_NET)
			op_close_taps(op);
		op->step = op->step == START_CREATE ? START_BOOT : op->step + 1;
	}
	start_step(vm);
}

static void start_step(struct vm *vm)
{
	struct vm_op *op = vm->op;
	struct ch_client *ch = vm->m->ch;
	const char *sock = vm->run.api_socket;
	struct mv_error err = {0};
	int r;

	vm_op_calling(vm);
	switch (op->step) {
	case START_ADD_NET: {
		size_t i = op->tap_nic[op->next_tap];
		_cleanup_free_ char *json = NULL;

		r = ch_config_net_json(&vm->rec.config.nics[i], &json);
		if (r >= 0)
			r = ch_vm_add_net_fds(ch, sock, json, &op->tap_fds[op->next_tap], 1,
					      on_start_reply, vm, &op->req);
		break;
	}
	case START_BOOT:
		r = ch_vm_boot(ch, sock, on_start_reply, vm, &op->req);
		break;
	case START_INFO:
		r = ch_vm_info(ch, sock, on_start_reply, vm, &op->req);
		break;
	default:
		r = -EINVAL;
	}
	if (r < 0) {
		mv_err_internal(&err, r, "vm '%s': cannot talk to cloud-hypervisor: %m",
				vm->rec.name);
		start_fail(vm, &err);
	}
}

/* What a start needs before the hypervisor process exists. */
/* The hypervisor's fds from 3 on: the API socket, then the files of the config. */
#define START_MAX_FDS (1 + 4 + VM_MAX_DISKS)

struct start_launch {
	struct vm_disk_set disks;
	struct vm_path_fds files; /* what the config's paths named when they were judged */
	char *config_json;
	char *events_arg; /* --event-monitor path=<rundir>/events.json */
	int api_fd;       /* the bound API socket, the hypervisor's fd 3 */
	int log_fd;       /* the hypervisor's stdout/stderr */
	bool rundir_made; /* the runtime directory exists: remove it on failure */
	/* pass_fds[k] becomes the hypervisor's fd 3 + k; [0] is api_fd, set at the spawn. */
	int pass_fds[START_MAX_FDS];
	size_t n_pass;
	char *payload[3]; /* /proc/self/fd/N for the kernel, initramfs, firmware */
};

static void start_launch_done(struct start_launch *l)
{
	vm_disk_set_done(&l->disks);
	vm_path_fds_close(&l->files);
	free(l->config_json);
	free(l->events_arg);
	closep(&l->api_fd);
	closep(&l->log_fd);
	for (size_t i = 0; i < ELEMENTSOF(l->payload); i++)
		free(l->payload[i]);
}

/* Passes fd (if any) to the hypervisor; *ret is the name it opens it by. */
static int hand_over(struct start_launch *l, int fd, char **ret)
{
	if (fd < 0)
		return 0;
	assert(l->n_pass < ELEMENTSOF(l->pass_fds));
	if (asprintf(ret, "/proc/self/fd/%zu", 3 + l->n_pass) < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	l->pass_fds[l->n_pass++] = fd;
	return 0;
}

/* The hypervisor opens the files the start judged, not the paths again: whatever is renamed,
 * replaced or swapped for a symlink after the check, it gets what was checked. Each file goes
 * as an inherited O_PATH fd, named /proc/self/fd/N in vm.create, which it opens as it would
 * open the path (also again at a reboot). Volumes and the seed are the daemon's own files. */
static int hand_over_files(struct start_launch *l, struct ch_launch *launch)
{
	struct vm_disk_set *set = &l->disks;
	int r;

	l->n_pass = 1;
	if ((r = hand_over(l, l->files.kernel, &l->payload[0])) < 0 ||
	    (r = hand_over(l, l->files.initramfs, &l->payload[1])) < 0 ||
	    (r = hand_over(l, l->files.firmware, &l->payload[2])) < 0)
		return r;
	launch->kernel = l->payload[0];
	launch->initramfs = l->payload[1];
	launch->firmware = l->payload[2];
	for (size_t k = 0; k < set->n; k++) {
		ssize_t i = set->index[k];
		int fd;

		if (set->owned[k]) /* a volume's file, the seed */
			continue;
		fd = i < 0 ? l->files.disk : i < VM_MAX_DISKS ? l->files.disks[i] : -1;
		if ((r = hand_over(l, fd, &set->owned[k])) < 0)
			return r;
		if (set->owned[k])
			set->disks[k].path = set->owned[k];
	}
	return 0;
}

/* A tap on its network's bridge for each NIC on a network, into the op. */
static int open_taps(struct vm *vm, struct mv_error *err)
{
	const struct vm_config *c = &vm->rec.config;
	struct vm_op *op = vm->op;

	for (size_t i = 0; i < c->n_nics; i++) {
		char tap[16];
		int fd;

		if (isempty(c->nics[i].network))
			continue;
		if (!vm->m->networks)
			return mv_err_precondition(
				err, -ENOTSUP,
				"cannot start vm '%s': config.nics[%zu].network: "
				"this daemon manages no networks (see its log)",
				vm->rec.name, i);
		fd = network_tap_open(vm->m->networks, c->nics[i].network,
				      vm_nic_tap_name(c->nics[i].mac, tap), err);
		if (fd < 0)
			return mv_err_prefix(err,
					     "cannot start vm '%s': config.nics[%zu].network: ",
					     vm->rec.name, i),
			       fd;
		op->tap_fds[op->n_taps] = fd;
		op->tap_nic[op->n_taps++] = i;
		log_debug("vm %s: tap %s on network %s", vm->rec.name, tap, c->nics[i].network);
	}
	return 0;
}

/* Everything up to the spawn, synchronously; fills l. On failure the caller removes what l
 * says was made. */
static int start_prepare(struct vm *vm, struct start_launch *l, struct mv_error *err)
{
	struct vm_manager *m = vm->m;
	_cleanup_free_ char *serial = NULL;
	struct sysinfo_host host;
	struct host_limits limits = {0};
	struct ch_launch launch = {.config = &vm->rec.config};
	int r;

	if (access(m->hypervisor, X_OK) < 0)
		return mv_err_precondition(
			err, -errno,
			"cannot start vm '%s': cloud-hypervisor not found at %s (%m); install "
			"it, or run mvirt-vmm with --hypervisor PATH (config file: hypervisor = "
			"PATH)",
			vm->rec.name, m->hypervisor);
	/* Files and volumes may have gone since the VM was created: a precondition of the
	 * start that failed, not a bad argument of StartVm. */
	if (sysinfo_host_read(&host) >= 0)
		limits = (struct host_limits){.cpus = host.cpus, .memory_mb = host.memory_mb};
	limits.paths = m->paths;
	r = validate_vm_config_open(&vm->rec.config, &limits, MV_ERR_PRECONDITION, &l->files, err);
	if (r >= 0)
		r = vm_disks_resolve(m->storage, &vm->rec.config, &l->files, VM_DISKS_START,
				     &l->disks, err);
	if (r < 0)
		return mv_err_prefix(err, "cannot start vm '%s': ", vm->rec.name), r;

	r = open_taps(vm, err);
	if (r < 0)
		return r;
	r = vm_runtime_prepare(vm, err);
	if (r < 0)
		return r;
	l->rundir_made = true;
	r = vm_runtime_seed(vm, &l->disks, err);
	if (r < 0)
		return r;
	serial = vm_runtime_file(vm, "serial.sock");
	if (!serial || asprintf(&l->events_arg, "path=%s/events.json", vm->run.rundir) < 0) {
		l->events_arg = NULL;
		return mv_err_oom(err);
	}
	if (hand_over_files(l, &launch) < 0)
		return mv_err_oom(err);
	launch.disks = l->disks.disks;
	launch.n_disks = l->disks.n;
	launch.serial_socket = serial;
	r = ch_config_json(&launch, &l->config_json, err);
	if (r < 0)
		return mv_err_prefix(err, "cannot start vm '%s': ", vm->rec.name), r;
	l->api_fd = vm_runtime_bind_api_socket(vm, err);
	if (l->api_fd < 0)
		return l->api_fd;
	r = vm_runtime_events_open(vm, true, on_hv_event, err);
	if (r < 0)
		return mv_err_prefix(err,
				     "vm '%s': cannot follow the event monitor: ", vm->rec.name),
		       r;
	l->log_fd = vm_runtime_open_hv_log(vm, err);
	if (l->log_fd < 0)
		return l->log_fd;
	return 0;
}

/* Starts the hypervisor with what l holds and sends vm.create. From here on a failure is
 * reported through the operation, once the process is gone. */
static int start_spawn(struct vm *vm, struct start_launch *l, struct mv_error *err)
{
	struct vm_manager *m = vm->m;
	const struct proc_id *id;
	char *argv[] = {m->hypervisor,  (char *)"--api-socket",
			(char *)"fd=3", (char *)"--event-monitor",
			l->events_arg,  NULL};
	struct proc_spec spec = {
		.path = m->hypervisor,
		.argv = argv,
		.pass_fds = l->pass_fds,
		.n_pass_fds = l->n_pass,
		.log_fd = l->log_fd,
	};
	int r;

	l->pass_fds[0] = l->api_fd;
	r = proc_spawn(m->event, &spec, on_proc_exit, vm, &vm->proc, err);
	if (r < 0)
		return r;
	id = proc_get_id(vm->proc);
	vm->rec.process.pid = id->pid;
	vm->rec.process.starttime = id->starttime;
	memcpy(vm->rec.process.boot_id, id->boot_id, sizeof(vm->rec.process.boot_id));
	vm_set_state(vm, VM_STATE_STARTING, VM_EVENT_STATE_CHANGED, "starting");
	log_debug("vm %s: cloud-hypervisor pid %d", vm->rec.name, (int)id->pid);

	vm_op_calling(vm);
	r = ch_vm_create(m->ch, vm->run.api_socket, l->config_json, on_start_reply, vm,
			 &vm->op->req);
	if (r < 0) {
		/* The process exists: the op finishes once it is gone. */
		mv_err_internal(&vm->op->err, r, "vm '%s': cannot talk to cloud-hypervisor: %m",
				vm->rec.name);
		start_fail(vm, &vm->op->err);
	}
	return 0;
}

static int start_begin(struct vm *vm, struct mv_error *err)
{
	_cleanup_(start_launch_done) struct start_launch l = {.api_fd = -1, .log_fd = -1};
	int r;

	vm_path_fds_init(&l.files);
	r = start_prepare(vm, &l, err);
	if (r >= 0)
		r = start_spawn(vm, &l, err);
	if (r < 0 && l.rundir_made)
		runtime_clear(vm, "start failed");
	return r;
}

/* ---- stop ---- */

static void stop_escalate(struct vm *vm);

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct vm *vm = userdata;

	(void)s;
	(void)usec;
	vm->op->timer = sd_event_source_disable_unref(vm->op->timer);
	if (vm->op->req)
		ch_request_cancel(vm->op->req);
	vm->op->req = NULL;
	log_info("vm %s: still running after %s; escalating", vm->rec.name,
		 vm->op->step == STOP_PHASE_BUTTON     ? "the power button"
		 : vm->op->step == STOP_PHASE_SHUTDOWN ? "vmm.shutdown"
						       : "SIGTERM");
	stop_escalate(vm);
	return 0;
}

static void stop_arm(struct vm *vm, uint64_t usec)
{
	vm->op->timer = sd_event_source_disable_unref(vm->op->timer);
	if (sd_event_add_time_relative(vm->m->event, &vm->op->timer, CLOCK_MONOTONIC, usec, 0,
				       on_stop_timer, vm) < 0)
		stop_escalate(vm); /* cannot wait: go on at once */
}

static void on_stop_reply(void *userdata, const struct ch_reply *reply)
{
	struct vm *vm = userdata;

	vm_op_replied(vm->op);
	if (!ch_reply_ok(reply)) {
		/* e.g. "VM is not running": the guest cannot act on a button. */
		log_debug("vm %s: stop step %d: %s", vm->rec.name, vm->op->step, reply->message);
		vm->op->timer = sd_event_source_disable_unref(vm->op->timer);
		stop_escalate(vm);
	}
	/* Success: wait for the process to exit or the timer to fire. */
}

/* Moves to the next, harsher stop step. */
static void stop_escalate(struct vm *vm)
{
	struct vm_op *op = vm->op;

	op->step++;
	switch (op->step) {
	case STOP_PHASE_SHUTDOWN:
		stop_arm(vm, STOP_STEP_USEC);
		vm_op_calling(vm);
		if (ch_vmm_shutdown(vm->m->ch, vm->run.api_socket, on_stop_reply, vm, &op->req) < 0)
			op->req = NULL;
		break;
	case STOP_PHASE_TERM:
		(void)proc_signal(vm->proc, SIGTERM);
		stop_arm(vm, STOP_STEP_USEC);
		break;
	default:
		op->step = STOP_PHASE_KILL;
		op->timer = sd_event_source_disable_unref(op->timer);
		(void)proc_signal(vm->proc, SIGKILL); /* no timer: the pidfd will fire */
	}
}

static void stop_begin(struct vm *vm)
{
	struct vm_op *op = vm->op;
	bool button =
		!op->args.force && op->args.timeout_s > 0 && vm->rec.state == VM_STATE_RUNNING;

	vm_set_state(vm, VM_STATE_STOPPING, VM_EVENT_STATE_CHANGED, "stop requested");
	op->step = STOP_PHASE_BUTTON; /* without the button, escalate goes to vmm.shutdown */
	if (!button) {
		stop_escalate(vm);
		return;
	}
	stop_arm(vm, (uint64_t)op->args.timeout_s * 1000000ULL);
	vm_op_calling(vm);
	if (ch_vm_power_button(vm->m->ch, vm->run.api_socket, on_stop_reply, vm, &op->req) < 0) {
		op->req = NULL;
		op->timer = sd_event_source_disable_unref(op->timer);
		stop_escalate(vm);
	}
}

/* ---- reboot, pause, resume ---- */

static void on_simple_reply(void *userdata, const struct ch_reply *reply)
{
	struct vm *vm = userdata;
	struct vm_op *op = vm->op;
	struct mv_error err = {0};

	vm_op_replied(vm->op);
	if (!ch_reply_ok(reply)) {
		vm_op_reply_error(vm, vm_op_kind_name(op->kind), reply, &err);
		vm_op_finish(vm, &err);
		return;
	}
	switch (op->kind) {
	case VM_OP_PAUSE:
		vm_set_state(vm, VM_STATE_PAUSED, VM_EVENT_PAUSED, "paused");
		break;
	case VM_OP_RESUME:
		vm_set_state(vm, VM_STATE_RUNNING, VM_EVENT_RESUMED, "resumed");
		break;
	default:
		if (!op->event_seen)
			vm->reboot_events_owed++;
		vm_set_state(vm, VM_STATE_RUNNING, VM_EVENT_REBOOTED, "rebooted");
	}
	vm_op_finish(vm, NULL);
}

static int simple_begin(struct vm *vm, struct mv_error *err)
{
	struct ch_client *ch = vm->m->ch;
	const char *sock = vm->run.api_socket;
	struct vm_op *op = vm->op;
	int r;

	vm_op_calling(vm);
	switch (op->kind) {
	case VM_OP_REBOOT:
		r = ch_vm_reboot(ch, sock, on_simple_reply, vm, &op->req);
		break;
	case VM_OP_PAUSE:
		r = ch_vm_pause(ch, sock, on_simple_reply, vm, &op->req);
		break;
	default:
		r = ch_vm_resume(ch, sock, on_simple_reply, vm, &op->req);
		break;
	}
	if (r < 0)
		return mv_err_internal(err, r, "vm '%s': cannot talk to cloud-hypervisor: %m",
				       vm->rec.name);
	return 0;
}

/* ---- entry points ---- */

int vm_manager_op(struct vm_manager *m, enum vm_op_kind kind, const char *ref,
		  const struct vm_op_args *args, vm_done_fn fn, void *userdata,
		  struct mv_error *err)
{
	struct vm_op *op;
	struct vm *vm;
	int r;

	r = vm_registry_lookup(m, ref, "vm", &vm, err);
	if (r < 0)
		return r;
	if (vm->op && kind != VM_OP_KILL)
		return mv_err_precondition(err, -EBUSY,
					   "vm '%s': %s is in progress; try again when it is done",
					   vm->rec.name, vm_op_kind_name(vm->op->kind));
	if (vm->op && vm->op->kind == VM_OP_KILL)
		return mv_err_precondition(err, -EBUSY, "vm '%s': kill is already in progress",
					   vm->rec.name);
	if (!vm_op_allowed(vm->rec.state, vm->proc != NULL, kind))
		return mv_err_precondition(err, -EBUSY, "vm '%s' is %s: cannot %s it", vm->rec.name,
					   vm_state_name(vm->rec.state), vm_op_kind_name(kind));

	if ((kind == VM_OP_ADD_NIC || kind == VM_OP_REMOVE_NIC) && (!args || !args->config))
		return mv_err_internal(err, -EINVAL, "vm '%s': %s without a config", vm->rec.name,
				       vm_op_kind_name(kind));
	op = calloc(1, sizeof(*op));
	if (!op)
		return mv_err_oom(err);
	op->kind = kind;
	op->t_begin_us = clock_mono_us();
	if (args)
		op->args = *args;
	op->fn = fn;
	op->userdata = userdata;
	if (kind == VM_OP_ADD_NIC || kind == VM_OP_REMOVE_NIC) {
		op->new_config = *args->config;
		memset(args->config, 0, sizeof(*args->config));
		op->nic_index = args->nic;
		op->args.config = NULL;
	}

	if (kind == VM_OP_KILL && vm->op) {
		struct mv_error e = {0};

		mv_err_aborted(&e, "vm '%s': %s interrupted by kill", vm->rec.name,
			       vm_op_kind_name(vm->op->kind));
		vm_op_finish(vm, &e);
	}
	vm->op = op;
	switch (kind) {
	case VM_OP_START:
		r = start_begin(vm, err);
		break;
	case VM_OP_STOP:
		stop_begin(vm);
		r = 0;
		break;
	case VM_OP_KILL:
		op->step = STOP_PHASE_KILL;
		r = proc_signal(vm->proc, SIGKILL);
		if (r < 0 && r != -ESRCH)
			log_warning_errno(r, "vm %s: cannot send SIGKILL: %m", vm->rec.name);
		r = 0;
		break;
	case VM_OP_ADD_NIC:
	case VM_OP_REMOVE_NIC:
		r = vm_nics_begin(vm, err);
		break;
	default:
		r = simple_begin(vm, err);
		break;
	}
	if (r < 0 && vm->op == op) {
		vm->op = NULL;
		op_close_taps(op);
		vmdef_config_done(&op->new_config);
		free(op);
	}
	if (r < 0)
		return r;
	return 0;
}

void vm_manager_abort_ops(struct vm_manager *m)
{
	for (size_t i = 0; i < m->n_vms; i++) {
		struct vm *vm = m->vms[i];
		struct mv_error err = {0};

		if (!vm->op)
			continue;
		mv_err_unavailable(&err,
				   "vm '%s': mvirt-vmm is shutting down; the %s did not finish and "
				   "the VM is left as it is",
				   vm->rec.name, vm_op_kind_name(vm->op->kind));
		vm_op_finish(vm, &err);
	}
}

/* ---- re-adoption after a daemon restart ---- */

static void on_resumed_stop(void *userdata, const struct vm_record *rec, const struct mv_error *err)
{
	(void)userdata;
	if (err && err->code < 0)
		log_warning("vm %s: the resumed stop failed: %s", rec->name, err->msg);
}

/* A StopVm was in progress when the last daemon died (the VM was stored STOPPING): the user's
 * request still stands, so the stop runs again from its start (the power button, then the
 * default timeout and the harsher steps). */
static void resume_stop(struct vm *vm)
{
	struct vm_op_args args = {.timeout_s = VM_STOP_DEFAULT_TIMEOUT_S};
	struct mv_error err = {0};

	log_info("vm %s: it was being stopped when mvirt-vmm went down; stopping it again",
		 vm->rec.name);
	if (vm_manager_op(vm->m, VM_OP_STOP, vm->rec.id, &args, on_resumed_stop, vm, &err) < 0)
		log_warning("vm %s: cannot resume its stop: %s", vm->rec.name, err.msg);
}

static void on_adopt_info(void *userdata, const struct ch_reply *reply)
{
	struct vm *vm = userdata;
	struct ch_vm_info info;
	bool was_stopping = vm->rec.state == VM_STATE_STOPPING;

	vm->info_req = NULL;
	if (!ch_reply_ok(reply) && reply->http_status >= 400 &&
	    vm->rec.state == VM_STATE_STARTING && !vm->op && !vm->abandoned) {
		/* It answers that it has no VM: the last daemon died between spawning it and
		 * vm.create. Nothing runs in it; finish the failed start. */
		log_info("vm %s: its start did not finish before the daemon restart (%s); shutting "
			 "the hypervisor down",
			 vm->rec.name, reply->message);
		vm->abandoned = true;
		(void)ch_vmm_shutdown(vm->m->ch, vm->run.api_socket, on_adopt_info, vm,
				      &vm->info_req);
		return;
	}
	if (!ch_reply_ok(reply)) {
		/* Leave it be: a hypervisor that does not answer now is not killed for it. */
		log_warning("vm %s: re-adopted pid %d, but vm.info failed: %s", vm->rec.name,
			    (int)vm->rec.process.pid, reply->message);
		return;
	}
	if (ch_reply_vm_info(reply, &info) < 0)
		return; /* vmm.shutdown's answer, or no state: the exit will tell */
	if (info.state == CH_VM_STATE_RUNNING && vm->rec.state != VM_STATE_RUNNING)
		vm_set_state(vm, VM_STATE_RUNNING, VM_EVENT_STATE_CHANGED,
			     "running (re-adopted after a daemon restart)");
	else if (info.state == CH_VM_STATE_PAUSED && vm->rec.state != VM_STATE_PAUSED)
		vm_set_state(vm, VM_STATE_PAUSED, VM_EVENT_STATE_CHANGED,
			     "paused (re-adopted after a daemon restart)");
	if ((info.state == CH_VM_STATE_RUNNING || info.state == CH_VM_STATE_PAUSED) &&
	    was_stopping && !vm->op)
		resume_stop(vm);
	else if (info.state != CH_VM_STATE_RUNNING && info.state != CH_VM_STATE_PAUSED && !vm->op) {
		/* Created or Shutdown: a start or stop the last daemon did not finish. Finish
		 * the stop: the process ends and on_proc_exit records it. */
		log_info("vm %s: hypervisor in state %s after a daemon restart; shutting it down",
			 vm->rec.name, info.state_name);
		vm->abandoned = true;
		(void)ch_vmm_shutdown(vm->m->ch, vm->run.api_socket, on_adopt_info, vm,
				      &vm->info_req);
	}
}

static void adopt(struct vm *vm)
{
	struct proc_id id = {.pid = vm->rec.process.pid, .starttime = vm->rec.process.starttime};
	struct mv_error err = {0};
	int r;

	memcpy(id.boot_id, vm->rec.process.boot_id, sizeof(id.boot_id));
	if (vm_runtime_paths(vm) < 0)
		return;
	r = proc_adopt(vm->m->event, &id, on_proc_exit, vm, &vm->proc);
	/* Stopping when the last daemon died: an exit from here on ends that stop, it is no
	 * crash (an adopted process's exit status is unknown). */
	if (vm->rec.state == VM_STATE_STOPPING)
		vm->abandoned = true;
	if (r == -ESRCH) {
		runtime_clear(vm, "exited while mvirt-vmm was down");
		vm_set_state(vm, VM_STATE_STOPPED, VM_EVENT_STOPPED,
			     "exited while mvirt-vmm was down");
		return;
	}
	if (r < 0) {
		log_warning_errno(r, "vm %s: cannot watch pid %d: %m; leaving it running unwatched",
				  vm->rec.name, (int)id.pid);
		return;
	}
	log_info("vm %s: re-adopted cloud-hypervisor pid %d", vm->rec.name, (int)id.pid);
	if (vm_runtime_events_open(vm, false, on_hv_event, &err) < 0)
		log_warning("vm %s: cannot follow its event monitor: %s", vm->rec.name, err.msg);
	vm_runtime_console_open(vm);
	if (ch_vm_info(vm->m->ch, vm->run.api_socket, on_adopt_info, vm, &vm->info_req) < 0)
		vm->info_req = NULL;
}

void vm_lifecycle_adopt_all(struct vm_manager *m)
{
	_cleanup_free_ int *keep = calloc(m->n_vms + 1, sizeof(*keep));
	_cleanup_free_ char *prefix = NULL;
	size_t n_keep = 0;

	for (size_t i = 0; i < m->n_vms; i++)
		if (m->vms[i]->rec.process.pid != 0) {
			if (keep)
				keep[n_keep++] = (int)m->vms[i]->rec.process.pid;
			adopt(m->vms[i]);
		}
	/* A hypervisor the last daemon spawned but died before recording (its --event-monitor
	 * lies under our runtime dir): no VM knows it, and its VM is stopped; stop it too. */
	if (keep && asprintf(&prefix, "path=%s/vms/", m->runtime_dir) < 0)
		prefix = NULL;
	if (keep && prefix)
		(void)proc_kill_strays(NULL, prefix, keep, n_keep);
	vm_runtime_sweep(m);
}
