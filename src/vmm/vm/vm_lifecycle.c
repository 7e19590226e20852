/* VM lifecycle: one cloud-hypervisor process per running VM, driven through its REST API.
 *
 * Start: prepare <runtime-dir>/vms/<id> (0700, stale leftovers removed), bind the API socket
 * (passed to the hypervisor as fd 3: no connect race), spawn, vm.create with the full VmConfig,
 * vm.boot, and vm.info must say Running before the VM is RUNNING. Any failure kills the
 * process, and the caller hears about it only once the process is gone and the runtime
 * directory removed.
 * Stop: vm.power-button, wait for the guest, then vmm.shutdown, SIGTERM, SIGKILL; StopVm
 * returns once the process is gone.
 * The process's exit (pidfd, process supervisor) is the truth about a VM that ends on its own;
 * the event monitor stream is a hint (guest power-off vs. crash, guest panic).
 *
 * Every REST call is asynchronous with a timeout (ch_client.c), so a hung hypervisor blocks
 * neither the loop nor other VMs. */
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "common/log.h"
#include "hypervisor/ch_config.h"
#include "os/sysinfo.h"
#include "storage/storage.h"
#include "vm/cloudinit.h"
#include "vm/vm_internal.h"

#define CH_CREATE_TIMEOUT_MS 10000
#define CH_BOOT_TIMEOUT_MS 30000
#define CH_CALL_TIMEOUT_MS 5000
#define STOP_STEP_USEC (5 * 1000000ULL) /* vmm.shutdown, then SIGTERM, each get this long */

enum start_step {
	START_CREATE,
	START_BOOT,
	START_INFO,
};

const char *vm_op_kind_name(enum vm_op_kind kind)
{
	switch (kind) {
	case VM_OP_START:
		return "start";
	case VM_OP_STOP:
		return "stop";
	case VM_OP_KILL:
		return "kill";
	case VM_OP_REBOOT:
		return "reboot";
	case VM_OP_PAUSE:
		return "pause";
	case VM_OP_RESUME:
		return "resume";
	}
	return "operation";
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void vm_op_cancel_io(struct vm_op *op)
{
	if (op->req)
		ch_request_cancel(op->req);
	op->req = NULL;
	op->timer = sd_event_source_disable_unref(op->timer);
}

/* Ends the operation in progress and tells its caller. err NULL = success. */
static void op_finish(struct vm *vm, const struct mv_error *err)
{
	struct vm_op *op = vm->op;
	struct mv_error ok = {0};

	if (!op)
		return;
	vm->op = NULL;
	vm_op_cancel_io(op);
	if (err && err->code != 0)
		log_info("vm %s: %s failed: %s", vm->rec.name, vm_op_kind_name(op->kind), err->msg);
	else
		log_debug("vm %s: %s took %.3f ms, %.3f ms of it waiting for cloud-hypervisor",
			  vm->rec.name, vm_op_kind_name(op->kind),
			  (double)(vm_mono_us() - op->t_begin_us) / 1000.0,
			  (double)op->hv_wait_us / 1000.0);
	op->fn(op->userdata, &vm->rec, err ? err : &ok);
	free(op);
}

/* Fills err from a failed REST reply: HTTP errors carry cloud-hypervisor's own text. */
static int reply_error(struct vm *vm, const char *what, const struct ch_reply *reply,
		       struct mv_error *err)
{
	if (reply->error == -ETIMEDOUT)
		return mv_err(err, -ETIMEDOUT,
			      "vm '%s': %s: cloud-hypervisor did not answer in time", vm->rec.name,
			      what);
	if (reply->error < 0)
		return mv_err(err, -EIO, "vm '%s': %s: cannot reach cloud-hypervisor: %s",
			      vm->rec.name, what, reply->message);
	return mv_err(err, -ENOEXEC, "vm '%s': %s: cloud-hypervisor: %s", vm->rec.name, what,
		      reply->message);
}

/* Called first thing in every reply callback of an operation: accounts the wait. */
static void op_replied(struct vm_op *op)
{
	op->req = NULL;
	if (op->t_call_us)
		op->hv_wait_us += vm_mono_us() - op->t_call_us;
	op->t_call_us = 0;
}

static int ch_call(struct vm *vm, const char *method, const char *endpoint, const char *body,
		   uint64_t timeout_ms, ch_reply_fn fn, struct ch_request **ret)
{
	if (vm->op)
		vm->op->t_call_us = vm_mono_us();
	return ch_request_start(vm->m->ch, vm->api_socket, method, endpoint, body, timeout_ms, fn,
				vm, ret);
}

/* ---- process exit ---- */

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

	vm_events_read(vm); /* the last events may explain the exit */
	guest_off = vm->guest_shutdown || (exit->known && exit->signal == 0 && exit->code == 0);
	panic = vm->guest_panic;
	proc_exit_describe(exit, how, sizeof(how));
	log_debug("vm %s: cloud-hypervisor %s", vm->rec.name, how);

	if (op && kind == VM_OP_START) {
		if (!op->failing)
			mv_err(&op->err, -EIO,
			       "vm '%s': cloud-hypervisor %s while starting the VM (see %s/vms/%s/"
			       "hypervisor.log)",
			       vm->rec.name, how, vm->m->state_dir, vm->rec.id);
		snprintf(reason, sizeof(reason), "start failed: %s", op->err.msg);
	} else if (op && kind == VM_OP_STOP) {
		if (op->step == STOP_PHASE_BUTTON && guest_off)
			snprintf(reason, sizeof(reason), "guest powered off (stop requested)");
		else
			snprintf(reason, sizeof(reason), "stopped (cloud-hypervisor %s)", how);
	} else if (op && kind == VM_OP_KILL) {
		snprintf(reason, sizeof(reason), "killed");
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
		mv_err(&err, -EIO, "vm '%s': cloud-hypervisor %s during %s", vm->rec.name, how,
		       vm_op_kind_name(kind));

	snprintf(closing, sizeof(closing), "vm %s: %s", vm_state_name(state), reason);
	vm_runtime_clear(vm, closing);
	vm_set_state(vm, state, type, "%s", reason);
	if (op)
		op_finish(vm, kind == VM_OP_START ? &op->err : &err);
}

/* ---- start ---- */

static void start_fail(struct vm *vm, const struct mv_error *err)
{
	struct vm_op *op = vm->op;

	vm_op_cancel_io(op);
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
	static const char *const what[] = {"vm.create", "vm.boot", "vm.info"};
	struct vm *vm = userdata;
	struct vm_op *op = vm->op;
	struct mv_error err = {0};

	op_replied(vm->op);
	if (!ch_reply_ok(reply)) {
		reply_error(vm, what[op->step], reply, &err);
		start_fail(vm, &err);
		return;
	}
	if (op->step == START_INFO) {
		struct json_object *info = json_tokener_parse(reply->body), *state = NULL;
		const char *s = info && json_object_object_get_ex(info, "state", &state)
					? json_object_get_string(state)
					: NULL;

		if (!s || !streq(s, "Running")) {
			mv_err(&err, -EIO,
			       "vm '%s': cloud-hypervisor reports state %s after vm.boot",
			       vm->rec.name, s ? s : "(none)");
			json_object_put(info);
			start_fail(vm, &err);
			return;
		}
		json_object_put(info);
		vm->rec.started_at_us = now_us();
		vm_set_state(vm, VM_STATE_RUNNING, VM_EVENT_STARTED, "started");
		op_finish(vm, NULL);
		return;
	}
	if (op->step == START_CREATE)
		vm_console_open(vm); /* the serial socket exists from vm.create on */
	op->step++;
	start_step(vm);
}

static void start_step(struct vm *vm)
{
	struct vm_op *op = vm->op;
	struct mv_error err = {0};
	int r;

	switch (op->step) {
	case START_BOOT:
		r = ch_call(vm, "PUT", "vm.boot", NULL, CH_BOOT_TIMEOUT_MS, on_start_reply,
			    &op->req);
		break;
	case START_INFO:
		r = ch_call(vm, "GET", "vm.info", NULL, CH_CALL_TIMEOUT_MS, on_start_reply,
			    &op->req);
		break;
	default:
		r = -EINVAL;
	}
	if (r < 0) {
		mv_err(&err, r, "vm '%s': cannot talk to cloud-hypervisor: %s", vm->rec.name,
		       strerror(-r));
		start_fail(vm, &err);
	}
}

/* Everything up to the spawn, synchronously: on failure nothing is left behind and the caller
 * gets the error at once. */
static int start_launch(struct vm *vm, struct mv_error *err)
{
	struct vm_manager *m = vm->m;
	struct vm_launch_disks disks = {0};
	_cleanup_free_ char *json = NULL, *serial = NULL, *events_arg = NULL, *log_path = NULL;
	_cleanup_close_ int api_fd = -1, log_fd = -1;
	struct ch_launch launch = {.config = &vm->rec.config};
	struct sysinfo_host host;
	struct host_limits limits = {0};
	const struct proc_id *id;
	int r;

	if (access(m->hypervisor, X_OK) < 0)
		return mv_err(
			err, -ENOMEDIUM,
			"cannot start vm '%s': cloud-hypervisor not found at %s (%m); install "
			"it, or run mvirt-vmm with --hypervisor PATH (config file: hypervisor = "
			"PATH)",
			vm->rec.name, m->hypervisor);
	/* Files and volumes may have gone since the VM was created: a precondition of the
	 * start that failed, not a bad argument of StartVm. */
	if (sysinfo_host_read(&host) >= 0)
		limits = (struct host_limits){.cpus = host.cpus, .memory_mb = host.memory_mb};
	r = validate_vm_config(&vm->rec.config, &limits, err);
	if (r >= 0)
		r = vm_launch_disks(vm, &disks, err);
	if (r < 0) {
		vm_launch_disks_done(&disks);
		mv_err_prefix(err, "cannot start vm '%s': ", vm->rec.name);
		if (err && r != -ENOMEM)
			err->code = -ENOMEDIUM;
		return r == -ENOMEM ? r : -ENOMEDIUM;
	}

	r = vm_rundir_prepare(vm, err);
	if (r < 0) {
		vm_launch_disks_done(&disks);
		return r;
	}
	r = vm_launch_seed(vm, &disks, err);
	if (r < 0)
		goto fail;
	launch.disks = disks.disks;
	launch.n_disks = disks.n;
	serial = vm_rundir_file(vm, "serial.sock");
	if (!serial || asprintf(&events_arg, "path=%s/events.json", vm->rundir) < 0) {
		events_arg = NULL;
		r = -ENOMEM;
		goto fail;
	}
	launch.serial_socket = serial;
	r = ch_config_json(&launch, &json, err);
	if (r < 0) {
		mv_err_prefix(err, "cannot start vm '%s': ", vm->rec.name);
		goto fail;
	}
	api_fd = vm_bind_api_socket(vm, err);
	if (api_fd < 0) {
		r = api_fd;
		goto fail;
	}
	r = vm_events_open(vm, true);
	if (r < 0) {
		mv_err(err, r, "vm '%s': cannot follow the event monitor: %s", vm->rec.name,
		       strerror(-r));
		goto fail;
	}
	log_fd = vm_open_hv_log(vm, &log_path);
	if (log_fd < 0) {
		r = mv_err(err, log_fd, "vm '%s': cannot open its hypervisor log: %s", vm->rec.name,
			   strerror(-log_fd));
		goto fail;
	}

	char *argv[] = {m->hypervisor,  (char *)"--api-socket",
			(char *)"fd=3", (char *)"--event-monitor",
			events_arg,     NULL};
	struct proc_spec spec = {
		.path = m->hypervisor,
		.argv = argv,
		.pass_fds = &api_fd,
		.n_pass_fds = 1,
		.log_fd = log_fd,
	};
	r = proc_spawn(m->event, &spec, on_proc_exit, vm, &vm->proc, err);
	if (r < 0)
		goto fail;
	id = proc_get_id(vm->proc);
	vm->rec.process.pid = id->pid;
	vm->rec.process.starttime = id->starttime;
	memcpy(vm->rec.process.boot_id, id->boot_id, sizeof(vm->rec.process.boot_id));
	vm_set_state(vm, VM_STATE_STARTING, VM_EVENT_STATE_CHANGED, "starting");
	log_debug("vm %s: cloud-hypervisor pid %d", vm->rec.name, (int)id->pid);

	r = ch_call(vm, "PUT", "vm.create", json, CH_CREATE_TIMEOUT_MS, on_start_reply,
		    &vm->op->req);
	if (r < 0) {
		/* The process exists: the op finishes once it is gone. */
		mv_err(&vm->op->err, r, "vm '%s': cannot talk to cloud-hypervisor: %s",
		       vm->rec.name, strerror(-r));
		start_fail(vm, &vm->op->err);
	}
	vm_launch_disks_done(&disks);
	return 0;
fail:
	vm_launch_disks_done(&disks);
	vm_runtime_clear(vm, "start failed");
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

	op_replied(vm->op);
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
		if (ch_call(vm, "PUT", "vmm.shutdown", NULL, CH_CALL_TIMEOUT_MS, on_stop_reply,
			    &op->req) < 0)
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
	if (!button) {
		op->step = STOP_PHASE_BUTTON; /* escalate goes to vmm.shutdown */
		stop_escalate(vm);
		return;
	}
	op->step = STOP_PHASE_BUTTON;
	stop_arm(vm, (uint64_t)op->args.timeout_s * 1000000ULL);
	if (ch_call(vm, "PUT", "vm.power-button", NULL, CH_CALL_TIMEOUT_MS, on_stop_reply,
		    &op->req) < 0) {
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

	op_replied(vm->op);
	if (!ch_reply_ok(reply)) {
		reply_error(vm, vm_op_kind_name(op->kind), reply, &err);
		op_finish(vm, &err);
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
	op_finish(vm, NULL);
}

/* ---- entry points ---- */

static int check_state(struct vm *vm, enum vm_op_kind kind, struct mv_error *err)
{
	if (!vm_op_allowed(vm->rec.state, vm->proc != NULL, kind))
		return mv_err(err, -EBUSY, "vm '%s' is %s: cannot %s it", vm->rec.name,
			      vm_state_name(vm->rec.state), vm_op_kind_name(kind));
	return 0;
}

int vm_manager_op(struct vm_manager *m, enum vm_op_kind kind, const char *ref,
		  const struct vm_op_args *args, vm_done_fn fn, void *userdata,
		  struct mv_error *err)
{
	const struct vm_record *found;
	struct vm_op *op;
	struct vm *vm;
	int r;

	r = vm_manager_lookup(m, ref, "vm", &found, err);
	if (r < 0)
		return r;
	vm = vm_find_ref(m, ref);
	if (vm->op && kind != VM_OP_KILL)
		return mv_err(err, -EBUSY, "vm '%s': %s is in progress; try again when it is done",
			      vm->rec.name, vm_op_kind_name(vm->op->kind));
	if (vm->op && vm->op->kind == VM_OP_KILL)
		return mv_err(err, -EBUSY, "vm '%s': kill is already in progress", vm->rec.name);
	r = check_state(vm, kind, err);
	if (r < 0)
		return r;

	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->kind = kind;
	op->t_begin_us = vm_mono_us();
	if (args)
		op->args = *args;
	op->fn = fn;
	op->userdata = userdata;

	if (kind == VM_OP_KILL && vm->op) {
		struct vm_op *old = vm->op;
		struct mv_error e = {0};

		mv_err(&e, -ECANCELED, "vm '%s': %s interrupted by kill", vm->rec.name,
		       vm_op_kind_name(old->kind));
		op_finish(vm, &e);
	}
	vm->op = op;
	switch (kind) {
	case VM_OP_START:
		r = start_launch(vm, err);
		if (r < 0) {
			vm->op = NULL;
			free(op);
			return r;
		}
		break;
	case VM_OP_STOP:
		stop_begin(vm);
		break;
	case VM_OP_KILL:
		op->step = STOP_PHASE_KILL;
		r = proc_signal(vm->proc, SIGKILL);
		if (r < 0 && r != -ESRCH)
			log_warning_errno(r, "vm %s: cannot send SIGKILL: %s", vm->rec.name,
					  strerror(-r));
		break;
	case VM_OP_REBOOT:
	case VM_OP_PAUSE:
	case VM_OP_RESUME:
		r = ch_call(vm, "PUT",
			    kind == VM_OP_REBOOT  ? "vm.reboot"
			    : kind == VM_OP_PAUSE ? "vm.pause"
						  : "vm.resume",
			    NULL, CH_CALL_TIMEOUT_MS, on_simple_reply, &op->req);
		if (r < 0) {
			vm->op = NULL;
			free(op);
			return mv_err(err, r, "vm '%s': cannot talk to cloud-hypervisor: %s",
				      vm->rec.name, strerror(-r));
		}
		break;
	}
	return 0;
}

void vm_manager_abort_ops(struct vm_manager *m)
{
	for (size_t i = 0; i < m->n_vms; i++) {
		struct vm *vm = m->vms[i];
		struct mv_error err = {0};

		if (!vm->op)
			continue;
		mv_err(&err, -ESHUTDOWN,
		       "vm '%s': mvirt-vmm is shutting down; the %s did not finish and the VM is "
		       "left as it is",
		       vm->rec.name, vm_op_kind_name(vm->op->kind));
		op_finish(vm, &err);
	}
}

/* ---- re-adoption after a daemon restart ---- */

static void on_adopt_info(void *userdata, const struct ch_reply *reply)
{
	struct vm *vm = userdata;
	struct json_object *info = NULL, *state = NULL;
	const char *s = NULL;

	vm->info_req = NULL;
	if (!ch_reply_ok(reply)) {
		/* Leave it be: a hypervisor that does not answer now is not killed for it. */
		log_warning("vm %s: re-adopted pid %d, but vm.info failed: %s", vm->rec.name,
			    (int)vm->rec.process.pid, reply->message);
		return;
	}
	info = json_tokener_parse(reply->body);
	if (info && json_object_object_get_ex(info, "state", &state))
		s = json_object_get_string(state);
	if (s && streq(s, "Running") && vm->rec.state != VM_STATE_RUNNING)
		vm_set_state(vm, VM_STATE_RUNNING, VM_EVENT_STATE_CHANGED,
			     "running (re-adopted after a daemon restart)");
	else if (s && streq(s, "Paused") && vm->rec.state != VM_STATE_PAUSED)
		vm_set_state(vm, VM_STATE_PAUSED, VM_EVENT_STATE_CHANGED,
			     "paused (re-adopted after a daemon restart)");
	else if (s && !streq(s, "Running") && !streq(s, "Paused") && !vm->op) {
		/* Created or Shutdown: a start or stop the last daemon did not finish. Finish
		 * the stop: the process ends and on_proc_exit records it. */
		log_info("vm %s: hypervisor in state %s after a daemon restart; shutting it down",
			 vm->rec.name, s);
		(void)ch_call(vm, "PUT", "vmm.shutdown", NULL, CH_CALL_TIMEOUT_MS, on_adopt_info,
			      &vm->info_req);
	}
	json_object_put(info);
}

void vm_run_adopt(struct vm *vm)
{
	struct proc_id id = {.pid = vm->rec.process.pid, .starttime = vm->rec.process.starttime};
	int r;

	memcpy(id.boot_id, vm->rec.process.boot_id, sizeof(id.boot_id));
	if (vm_rundir_path(vm) < 0)
		return;
	r = proc_adopt(vm->m->event, &id, on_proc_exit, vm, &vm->proc);
	if (r == -ESRCH) {
		vm_runtime_clear(vm, "exited while mvirt-vmm was down");
		vm_set_state(vm, VM_STATE_STOPPED, VM_EVENT_STOPPED,
			     "exited while mvirt-vmm was down");
		return;
	}
	if (r < 0) {
		log_warning_errno(r, "vm %s: cannot watch pid %d: %s; leaving it running unwatched",
				  vm->rec.name, (int)id.pid, strerror(-r));
		return;
	}
	log_info("vm %s: re-adopted cloud-hypervisor pid %d", vm->rec.name, (int)id.pid);
	if (vm_events_open(vm, false) < 0)
		log_warning("vm %s: cannot follow its event monitor", vm->rec.name);
	vm_console_open(vm);
	if (ch_call(vm, "GET", "vm.info", NULL, CH_CALL_TIMEOUT_MS, on_adopt_info, &vm->info_req) <
	    0)
		vm->info_req = NULL;
}
