/* The runtime resources of a VM besides its hypervisor process: the runtime directory and its
 * API socket, the hypervisor log, the event-monitor stream, the serial console, and the disks
 * (resolved volumes, the cloud-init seed) it is launched with. Used by the lifecycle (vm_run.c).
 * Runs on the event loop. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "common/log.h"
#include "hypervisor/ch_config.h"
#include "storage/storage.h"
#include "vm/cloudinit.h"
#include "vm/vm_internal.h"

#define LOG_ROTATE_BYTES (1024 * 1024)
#define SEED_FILE "seed.img" /* the cloud-init NoCloud seed, in the runtime directory */

uint64_t vm_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- runtime directory, log, events ---- */

int vm_rundir_path(struct vm *vm)
{
	if (vm->rundir)
		return 0;
	if (asprintf(&vm->rundir, "%s/vms/%s", vm->m->runtime_dir, vm->rec.id) < 0) {
		vm->rundir = NULL;
		return -ENOMEM;
	}
	if (asprintf(&vm->api_socket, "%s/api.sock", vm->rundir) < 0) {
		vm->api_socket = NULL;
		return -ENOMEM;
	}
	return 0;
}

char *vm_rundir_file(struct vm *vm, const char *name)
{
	char *p;

	return asprintf(&p, "%s/%s", vm->rundir, name) < 0 ? NULL : p;
}

/* The files a hypervisor and its start leave in the runtime directory; nothing else is ever
 * there (but the cloud-init seed's temporary directory while it is built). */
static const char *const rundir_files[] = {"api.sock", "serial.sock", "events.json", SEED_FILE};

void vm_rundir_remove(struct vm *vm)
{
	if (!vm->rundir)
		return;
	for (size_t i = 0; i < ELEMENTSOF(rundir_files); i++) {
		_cleanup_free_ char *p = vm_rundir_file(vm, rundir_files[i]);
		if (p && streq(rundir_files[i], SEED_FILE))
			cloudinit_seed_remove(p); /* with a crashed build's leftovers */
		else if (p)
			(void)unlink(p);
	}
	(void)rmdir(vm->rundir);
}

/* Creates the runtime directory afresh: a killed hypervisor's stale sockets never stop a VM
 * from starting again. */
int vm_rundir_prepare(struct vm *vm, struct mv_error *err)
{
	_cleanup_free_ char *parent = NULL;
	int r;

	r = vm_rundir_path(vm);
	if (r < 0)
		return r;
	if (asprintf(&parent, "%s/vms", vm->m->runtime_dir) < 0) {
		parent = NULL;
		return -ENOMEM;
	}
	if (mkdir(parent, 0700) < 0 && errno != EEXIST)
		return mv_err(err, -errno, "cannot create %s: %m", parent);
	vm_rundir_remove(vm);
	if (mkdir(vm->rundir, 0700) < 0)
		return mv_err(err, -errno, "cannot create %s: %m", vm->rundir);
	return 0;
}

int vm_bind_api_socket(struct vm *vm, struct mv_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;

	if (strlen(vm->api_socket) >= sizeof(sa.sun_path))
		return mv_err(err, -ENAMETOOLONG, "%s: path too long for a socket", vm->api_socket);
	memcpy(sa.sun_path, vm->api_socket, strlen(vm->api_socket) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(vm->api_socket, 0600) < 0 || listen(fd, 16) < 0)
		return mv_err(err, -errno, "cannot bind %s: %m", vm->api_socket);
	return TAKE_FD(fd);
}

/* The hypervisor's stdout/stderr: <state-dir>/vms/<id>/hypervisor.log, kept across starts and
 * rotated once it exceeds LOG_ROTATE_BYTES. */
int vm_open_hv_log(struct vm *vm, char **ret_path)
{
	_cleanup_free_ char *path = NULL, *old = NULL;
	struct stat st;
	int r, fd;

	r = vm_state_path(vm, "hypervisor.log", &path);
	if (r < 0)
		return r;
	if (stat(path, &st) == 0 && st.st_size > LOG_ROTATE_BYTES &&
	    asprintf(&old, "%s.1", path) >= 0)
		(void)rename(path, old);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	*ret_path = TAKE_PTR(path);
	return fd;
}

static void handle_event(void *userdata, const struct ch_event *ev)
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

void vm_events_read(struct vm *vm)
{
	char buf[8192];
	ssize_t n;

	if (vm->events_fd < 0)
		return;
	while ((n = read(vm->events_fd, buf, sizeof(buf))) > 0)
		(void)ch_event_parser_feed(&vm->events, buf, (size_t)n, handle_event, vm);
}

static int on_events(sd_event_source *s, const struct inotify_event *ev, void *userdata)
{
	(void)s;
	(void)ev;
	vm_events_read(userdata);
	return 0;
}

/* Follows <rundir>/events.json (the --event-monitor file), from its start or its end. */
int vm_events_open(struct vm *vm, bool create)
{
	_cleanup_free_ char *path = vm_rundir_file(vm, "events.json");
	int r;

	if (!path)
		return -ENOMEM;
	if (create) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -errno;
		close(fd);
	}
	vm->events_fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (vm->events_fd < 0)
		return -errno;
	if (!create)
		(void)lseek(vm->events_fd, 0, SEEK_END);
	ch_event_parser_init(&vm->events);
	r = sd_event_add_inotify(vm->m->event, &vm->events_watch, path, IN_MODIFY, on_events, vm);
	if (r < 0)
		return r;
	return 0;
}

void vm_console_open(struct vm *vm)
{
	_cleanup_free_ char *sock = vm_rundir_file(vm, "serial.sock");
	_cleanup_free_ char *log = NULL;

	if (vm->console || !sock || vm_state_path(vm, "console.log", &log) < 0)
		return;
	if (console_new(vm->m->event, sock, log, &vm->console) < 0)
		log_warning("vm %s: cannot follow the serial console", vm->rec.name);
}

/* Releases everything runtime but the process itself; console viewers are told why. */
void vm_run_detach(struct vm *vm, const char *reason)
{
	if (vm->op) {
		vm_op_cancel_io(vm->op);
		free(vm->op);
		vm->op = NULL;
	}
	if (vm->info_req)
		ch_request_cancel(vm->info_req);
	vm->info_req = NULL;
	proc_free(vm->proc);
	vm->proc = NULL;
	console_free(vm->console, reason);
	vm->console = NULL;
	vm->events_watch = sd_event_source_disable_unref(vm->events_watch);
	if (vm->events_fd >= 0)
		close(vm->events_fd);
	vm->events_fd = -1;
	ch_event_parser_done(&vm->events);
	free(vm->rundir);
	free(vm->api_socket);
	vm->rundir = vm->api_socket = NULL;
}

/* The process is gone: drop its runtime and remember that it has none. */
void vm_runtime_clear(struct vm *vm, const char *reason)
{
	struct vm_op *op = TAKE_PTR(vm->op);

	vm_rundir_path(vm);
	vm_rundir_remove(vm);
	vm_run_detach(vm, reason);
	vm->op = op;
	memset(&vm->rec.process, 0, sizeof(vm->rec.process));
	vm->guest_shutdown = false;
	vm->guest_panic = false;
	vm->reboot_events_owed = 0;
}

void vm_launch_disks_done(struct vm_launch_disks *l)
{
	for (size_t i = 0; l->owned && i < l->cap; i++)
		free(l->owned[i]);
	free(l->owned);
	free(l->disks);
	*l = (struct vm_launch_disks){0};
}

/* Writing to a volume that clones are backed by would corrupt every clone: such a volume is
 * only attached read-only. */
static int check_no_clones(struct vm *vm, const char *volume, size_t i, struct mv_error *err)
{
	struct storage_volume_info info = {0};
	int r;

	r = storage_volume_get(vm->m->storage, volume, &info, err);
	if (r < 0)
		return mv_err_prefix(err, "config.disks[%zu].volume: ", i), r;
	if (info.clones && info.clones[0]) {
		r = mv_err(err, -ENOMEDIUM,
			   "config.disks[%zu].volume: volume '%s' is the backing of clone '%s'%s; "
			   "writing to it would corrupt them: attach it read-only",
			   i, volume, info.clones[0], info.clones[1] ? " and others" : "");
	}
	storage_volume_info_done(&info);
	return r;
}

/* Fills l with the config's disks in order: formats of paths are read from image headers
 * where the config leaves them open, volumes are resolved to their file and format. Room is
 * left for one more disk (the seed). qcow2 images given by path may be overlays of any file
 * the user names (backing_files on, as the user could name that file directly); a volume gets
 * backing_files only when the storage manager made it an overlay of another volume. */
int vm_launch_disks(struct vm *vm, struct vm_launch_disks *l, struct mv_error *err)
{
	const struct vm_config *c = &vm->rec.config;
	size_t n = 0;
	int r;

	l->disks = calloc(c->n_disks + 2, sizeof(*l->disks));
	l->owned = calloc(c->n_disks + 2, sizeof(*l->owned));
	if (!l->disks || !l->owned)
		return -ENOMEM;
	l->cap = c->n_disks + 2;
	if (!isempty(c->disk)) {
		l->disks[n].path = c->disk;
		r = storage_detect_format(c->disk, &l->disks[n].format, err);
		if (r < 0) {
			mv_err_prefix(err, "config.disk: ");
			return r;
		}
		l->disks[n].backing_files = l->disks[n].format == DISK_FORMAT_QCOW2;
		l->n = ++n;
	}
	for (size_t i = 0; i < c->n_disks; i++) {
		const struct vm_disk *dk = &c->disks[i];
		struct ch_disk *d = &l->disks[n];
		bool backing = false;

		d->readonly = dk->readonly;
		if (!isempty(dk->volume)) {
			if (!vm->m->storage)
				return mv_err(
					err, -ENOMEDIUM,
					"config.disks[%zu].volume: volume '%s' not found (this "
					"mvirt-vmm has no volumes)",
					i, dk->volume);
			r = storage_volume_resolve(vm->m->storage, dk->volume, &l->owned[n],
						   &d->format, &backing, err);
			if (r < 0) {
				mv_err_prefix(err, "config.disks[%zu].volume: ", i);
				return r;
			}
			d->path = l->owned[n];
			d->backing_files = backing && d->format == DISK_FORMAT_QCOW2;
			if (!d->readonly) {
				r = check_no_clones(vm, dk->volume, i, err);
				if (r < 0)
					return r;
			}
		} else {
			d->path = dk->path;
			d->format = dk->format;
			if (d->format == DISK_FORMAT_UNSPECIFIED) {
				r = storage_detect_format(d->path, &d->format, err);
				if (r < 0) {
					mv_err_prefix(err, "config.disks[%zu].path: ", i);
					return r;
				}
			}
			d->backing_files = d->format == DISK_FORMAT_QCOW2;
		}
		l->n = ++n;
	}
	return 0;
}

/* Builds the VM's cloud-init seed in its runtime directory when the config has user_data, and
 * appends it to l as a read-only raw disk. */
int vm_launch_seed(struct vm *vm, struct vm_launch_disks *l, struct mv_error *err)
{
	const struct vm_config *c = &vm->rec.config;
	struct cloudinit_seed seed = {
		.user_data = c->user_data,
		.meta_data = c->meta_data,
		.network_config = c->network_config,
		.instance_id = vm->rec.id,
		.hostname = vm->rec.name,
	};
	char *path;
	uint64_t t0 = vm_mono_us();
	int r;

	if (isempty(c->user_data))
		return 0;
	path = vm_rundir_file(vm, SEED_FILE);
	if (!path)
		return -ENOMEM;
	r = cloudinit_seed_build(&seed, path, err);
	if (r < 0) {
		free(path);
		mv_err_prefix(err, "vm '%s': cannot build its cloud-init seed: ", vm->rec.name);
		return r;
	}
	log_debug("vm %s: cloud-init seed built in %.3f ms", vm->rec.name,
		  (double)(vm_mono_us() - t0) / 1000.0);
	l->owned[l->n] = path;
	l->disks[l->n] =
		(struct ch_disk){.path = path, .format = DISK_FORMAT_RAW, .readonly = true};
	l->n++;
	return 0;
}
