/* Autostart (vm.h, vm_manager_autostart): after a host boot, the VMs whose config has autostart
 * set are started, one after the other, in ascending autostart_order and then by name.
 *
 * A host boot is told from a mere daemon restart by the kernel's boot id, which the store keeps
 * from the daemon's last start (meta "boot_id"): the same id means the daemon restarted and its
 * VMs were re-adopted, so nothing is started. The id is saved before any start, so a daemon that
 * dies amid the starts does not start them again when it comes back (a crash loop stays a
 * daemon's problem, not a storm of VM starts). A store without a boot id (its first start, or
 * one from before autostart) records the id and starts nothing.
 *
 * Each start's failure is logged and reported to the watchers as an event on the VM (type
 * STOPPED or CRASHED, as the VM is, reason "autostart failed: ...") and the next VM's start goes
 * on. The starts run from a defer source, after the daemon is ready. Owns m->autostart. */
#include "vm/vm_autostart.h"

#include <stdlib.h>
#include <string.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/strv.h"
#include "vm/vm_lifecycle.h"
#include "vm/vm_registry.h"

#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
/* Test hook, for the e2e tests only: a file read instead of BOOT_ID_PATH, so that a test can
 * make the daemon believe the host rebooted. It changes nothing but this decision (re-adoption
 * keeps the kernel's boot id), and at worst starts VMs their owner marked for autostart. */
#define BOOT_ID_TEST_ENV "MVIRT_VMM_TEST_BOOT_ID_FILE"
#define BOOT_ID_MAX 64

struct vm_autostart {
	struct vm_manager *m;
	sd_event_source *defer;
	char **ids; /* the VMs to start, in order (NULL-terminated) */
	size_t n, next;
	bool waiting;   /* a start is in progress: its callback continues */
	bool cancelled; /* the manager is going away: callbacks do nothing */
};

/* The boot id (trimmed) in *ret, from BOOT_ID_PATH or the test hook's file. */
static int read_boot_id(char **ret)
{
	const char *path = secure_getenv(BOOT_ID_TEST_ENV);
	char *text = NULL;
	int r;

	r = read_file(isempty(path) ? BOOT_ID_PATH : path, BOOT_ID_MAX, &text);
	if (r < 0)
		return r;
	text[strcspn(text, " \t\r\n")] = '\0';
	if (isempty(text)) {
		free(text);
		return -EBADMSG;
	}
	*ret = text;
	return 0;
}

static int cmp_vms(const void *a, const void *b)
{
	const struct vm *x = *(struct vm *const *)a, *y = *(struct vm *const *)b;

	if (x->rec.config.autostart_order != y->rec.config.autostart_order)
		return x->rec.config.autostart_order < y->rec.config.autostart_order ? -1 : 1;
	return strcmp(x->rec.name, y->rec.name);
}

/* The ids of the autostart VMs in their order, into as->ids. */
static int collect(struct vm_autostart *as)
{
	struct vm_manager *m = as->m;
	_cleanup_free_ struct vm **v = calloc(m->n_vms + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_vms; i++)
		if (m->vms[i]->rec.config.autostart)
			v[n++] = m->vms[i];
	qsort(v, n, sizeof(*v), cmp_vms);
	as->ids = calloc(1, sizeof(*as->ids));
	if (!as->ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (strv_push(&as->ids, &as->n, v[i]->rec.id) < 0)
			return -ENOMEM;
	return 0;
}

/* Tells the log and the watchers that the VM with id did not start. */
static void report_failure(struct vm_autostart *as, const char *id, const struct mv_error *err)
{
	struct vm *vm = vm_registry_find(as->m, id);

	if (!vm)
		return;
	log_warning("vm %s: autostart failed: %s", vm->rec.name, err->msg);
	if (vm->proc || (vm->rec.state != VM_STATE_STOPPED && vm->rec.state != VM_STATE_CRASHED))
		return; /* something else has it now (a client's start, say) */
	vm_set_state(vm, vm->rec.state,
		     vm->rec.state == VM_STATE_CRASHED ? VM_EVENT_CRASHED : VM_EVENT_STOPPED,
		     "autostart failed: %s", err->msg);
}

static void run_next(struct vm_autostart *as);

static void on_started(void *userdata, const struct vm_record *rec, const struct mv_error *err)
{
	struct vm_autostart *as = userdata;

	(void)rec;
	as->waiting = false;
	if (as->cancelled)
		return;
	if (err->kind == MV_ERR_UNAVAILABLE) {
		log_info("autostart: interrupted, the daemon is stopping");
		return;
	}
	if (err->kind != MV_ERR_NONE)
		report_failure(as, as->ids[as->next - 1], err);
	else
		log_info("vm %s: autostarted", rec ? rec->name : as->ids[as->next - 1]);
	run_next(as);
}

/* Starts the next VM that is there and stopped; the ones that cannot begin are reported at
 * once. Returns when a start is in progress or none is left. */
static void run_next(struct vm_autostart *as)
{
	while (as->next < as->n) {
		const char *id = as->ids[as->next++];
		struct vm *vm = vm_registry_find(as->m, id);
		struct mv_error err = {0};

		if (!vm)
			continue; /* deleted meanwhile */
		if (vm_lifecycle_runs(vm) ||
		    (vm->rec.state != VM_STATE_STOPPED && vm->rec.state != VM_STATE_CRASHED)) {
			log_info("vm %s: autostart: already %s", vm->rec.name,
				 vm_state_name(vm->rec.state));
			continue;
		}
		log_info("vm %s: autostarting (order %u)", vm->rec.name,
			 vm->rec.config.autostart_order);
		as->waiting = true;
		if (vm_manager_op(as->m, VM_OP_START, id, NULL, on_started, as, &err) >= 0)
			return;
		as->waiting = false;
		mv_err_ensure(&err, -EIO);
		report_failure(as, id, &err);
	}
	if (as->n > 0)
		log_info("autostart: done");
}

static int on_defer(sd_event_source *s, void *userdata)
{
	struct vm_autostart *as = userdata;

	(void)s;
	as->defer = sd_event_source_disable_unref(as->defer);
	run_next(as);
	return 0;
}

void vm_manager_autostart(struct vm_manager *m)
{
	_cleanup_free_ char *now = NULL, *last = NULL;
	struct mv_error err = {0};
	struct vm_autostart *as;
	int r;

	if (m->autostart)
		return;
	if ((r = read_boot_id(&now)) < 0) {
		log_warning_errno(r, "autostart: cannot read the boot id: %m; starting nothing");
		return;
	}
	if (store_meta_get(m->store, "boot_id", &last, &err) < 0) {
		log_warning("autostart: %s; starting nothing", err.msg);
		return;
	}
	if (last && streq(last, now))
		return; /* a daemon restart: the VMs were re-adopted */
	if (store_meta_set(m->store, "boot_id", now, &err) < 0) {
		log_warning("autostart: cannot save the boot id: %s; starting nothing", err.msg);
		return;
	}
	if (!last) {
		log_info("autostart: first start with this state (boot id %s); starting nothing",
			 now);
		return;
	}
	if (!(as = calloc(1, sizeof(*as))))
		return (void)log_oom();
	as->m = m;
	m->autostart = as;
	if (collect(as) < 0)
		return (void)log_oom();
	log_info("autostart: the host booted (boot id %s); %zu VM%s to start", now, as->n,
		 as->n == 1 ? "" : "s");
	if (as->n > 0 && sd_event_add_defer(m->event, &as->defer, on_defer, as) < 0)
		log_warning("autostart: cannot schedule the starts");
}

void vm_autostart_free(struct vm_manager *m)
{
	struct vm_autostart *as = m->autostart;

	if (!as)
		return;
	m->autostart = NULL;
	as->defer = sd_event_source_disable_unref(as->defer);
	strv_free(as->ids);
	free(as);
}

void vm_autostart_cancel(struct vm_manager *m)
{
	if (m->autostart)
		m->autostart->cancelled = true;
}
