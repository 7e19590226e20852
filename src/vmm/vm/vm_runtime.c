/* See vm_runtime.h. The runtime directory holds nothing but the files below (and, while it is
 * built, the cloud-init seed's temporary directory), so removing them and the directory leaves
 * nothing behind. */
#include "vm/vm_runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "common/clock.h"
#include "common/log.h"
#include "vm/cloudinit.h"
#include "vm/console.h"
#include "vm/vm_registry.h"

#define LOG_ROTATE_BYTES (1024 * 1024)
#define SEED_FILE "seed.img" /* the cloud-init NoCloud seed, in the runtime directory */

static const char *const rundir_files[] = {"api.sock", "serial.sock", "events.json", SEED_FILE};

int vm_runtime_paths(struct vm *vm)
{
	if (vm->run.rundir)
		return 0;
	if (asprintf(&vm->run.rundir, "%s/vms/%s", vm->m->runtime_dir, vm->rec.id) < 0) {
		vm->run.rundir = NULL;
		return -ENOMEM;
	}
	if (asprintf(&vm->run.api_socket, "%s/api.sock", vm->run.rundir) < 0) {
		vm->run.api_socket = NULL;
		return -ENOMEM;
	}
	return 0;
}

char *vm_runtime_file(struct vm *vm, const char *name)
{
	char *p;

	return asprintf(&p, "%s/%s", vm->run.rundir, name) < 0 ? NULL : p;
}

/* The files a runtime directory may hold, and the directory: 0, or -errno of the rmdir (e.g.
 * -ENOTEMPTY: something else is in it). */
static int dir_remove(const char *dir)
{
	for (size_t i = 0; i < ELEMENTSOF(rundir_files); i++) {
		_cleanup_free_ char *p = NULL;

		if (asprintf(&p, "%s/%s", dir, rundir_files[i]) < 0) {
			p = NULL;
			continue;
		}
		if (streq(rundir_files[i], SEED_FILE))
			cloudinit_seed_remove(p); /* with a crashed build's leftovers */
		else
			(void)unlink(p);
	}
	return rmdir(dir) < 0 && errno != ENOENT ? -errno : 0;
}

static void rundir_remove(struct vm *vm)
{
	if (vm->run.rundir)
		(void)dir_remove(vm->run.rundir);
}

void vm_runtime_sweep(struct vm_manager *m)
{
	_cleanup_free_ char *parent = NULL;
	struct dirent *de;
	DIR *d;

	if (asprintf(&parent, "%s/vms", m->runtime_dir) < 0 || !(d = opendir(parent)))
		return;
	while ((de = readdir(d))) {
		_cleanup_free_ char *dir = NULL;
		struct vm *vm;
		int r;

		if (de->d_name[0] == '.')
			continue;
		vm = vm_registry_find(m, de->d_name);
		if (vm && streq(vm->rec.id, de->d_name) && vm->rec.process.pid != 0)
			continue; /* its hypervisor's */
		if (asprintf(&dir, "%s/%s", parent, de->d_name) < 0) {
			dir = NULL;
			continue;
		}
		r = dir_remove(dir);
		if (r < 0)
			log_warning_errno(r, "cannot remove the stale runtime directory %s: %m",
					  dir);
		else
			log_info("removed %s, left by %s", dir,
				 vm ? "a start the last mvirt-vmm did not finish"
				    : "a VM that no longer exists");
	}
	closedir(d);
}

int vm_runtime_prepare(struct vm *vm, struct mv_error *err)
{
	_cleanup_free_ char *parent = NULL;
	int r;

	r = vm_runtime_paths(vm);
	if (r < 0)
		return mv_err_oom(err);
	if (asprintf(&parent, "%s/vms", vm->m->runtime_dir) < 0) {
		parent = NULL;
		return mv_err_oom(err);
	}
	if (mkdir(parent, 0700) < 0 && errno != EEXIST)
		return mv_err_internal(err, -errno, "cannot create %s: %m", parent);
	rundir_remove(vm);
	if (mkdir(vm->run.rundir, 0700) < 0)
		return mv_err_internal(err, -errno, "cannot create %s: %m", vm->run.rundir);
	return 0;
}

int vm_runtime_bind_api_socket(struct vm *vm, struct mv_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = vm->run.api_socket;
	_cleanup_close_ int fd = -1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return mv_err_precondition(err, -ENAMETOOLONG,
					   "%s: path too long for a socket; choose a shorter "
					   "--runtime-dir",
					   path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 16) < 0)
		return mv_err_internal(err, -errno, "cannot bind %s: %m", path);
	return TAKE_FD(fd);
}

int vm_runtime_open_hv_log(struct vm *vm, struct mv_error *err)
{
	_cleanup_free_ char *path = NULL, *old = NULL;
	struct stat st;
	int r, fd;

	r = vm_state_path(vm, "hypervisor.log", &path);
	if (r < 0)
		return mv_err_internal(err, r, "vm '%s': cannot reach its state directory: %m",
				       vm->rec.name);
	if (stat(path, &st) == 0 && st.st_size > LOG_ROTATE_BYTES &&
	    asprintf(&old, "%s.1", path) >= 0)
		(void)rename(path, old);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return mv_err_internal(err, -errno, "vm '%s': cannot open %s: %m", vm->rec.name,
				       path);
	return fd;
}

void vm_runtime_events_read(struct vm *vm)
{
	char buf[8192];
	ssize_t n;

	if (vm->run.events_fd < 0)
		return;
	while ((n = read(vm->run.events_fd, buf, sizeof(buf))) > 0)
		(void)ch_event_parser_feed(&vm->run.events, buf, (size_t)n, vm->run.on_event, vm);
}

static int on_events(sd_event_source *s, const struct inotify_event *ev, void *userdata)
{
	(void)s;
	(void)ev;
	vm_runtime_events_read(userdata);
	return 0;
}

int vm_runtime_events_open(struct vm *vm, bool create, ch_event_fn fn, struct mv_error *err)
{
	_cleanup_free_ char *path = vm_runtime_file(vm, "events.json");
	int r;

	if (!path)
		return mv_err_oom(err);
	if (create) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return mv_err_internal(err, -errno, "cannot create %s: %m", path);
		close(fd);
	}
	vm->run.events_fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (vm->run.events_fd < 0)
		return mv_err_internal(err, -errno, "cannot open %s: %m", path);
	if (!create)
		(void)lseek(vm->run.events_fd, 0, SEEK_END);
	ch_event_parser_init(&vm->run.events);
	vm->run.on_event = fn;
	r = sd_event_add_inotify(vm->m->event, &vm->run.events_watch, path, IN_MODIFY, on_events,
				 vm);
	if (r < 0)
		return mv_err_internal(err, r, "cannot watch %s: %m", path);
	return 0;
}

void vm_runtime_console_open(struct vm *vm)
{
	_cleanup_free_ char *sock = vm_runtime_file(vm, "serial.sock");
	_cleanup_free_ char *log = NULL;

	if (vm->run.console || !sock || vm_state_path(vm, "console.log", &log) < 0)
		return;
	if (console_new(vm->m->event, sock, log, &vm->run.console) < 0)
		log_warning("vm %s: cannot follow the serial console", vm->rec.name);
}

int vm_runtime_seed(struct vm *vm, struct vm_disk_set *set, struct mv_error *err)
{
	const struct vm_config *c = &vm->rec.config;
	struct cloudinit_seed seed = {
		.user_data = c->user_data,
		.meta_data = c->meta_data,
		.network_config = c->network_config,
		.instance_id = vm->rec.id,
		.hostname = vm->rec.name,
	};
	uint64_t t0 = clock_mono_us();
	char *path;
	int r;

	if (isempty(c->user_data))
		return 0;
	path = vm_runtime_file(vm, SEED_FILE);
	if (!path)
		return mv_err_oom(err);
	r = cloudinit_seed_build(&seed, path, err);
	if (r < 0) {
		free(path);
		mv_err_prefix(err, "vm '%s': cannot build its cloud-init seed: ", vm->rec.name);
		return r;
	}
	log_debug("vm %s: cloud-init seed built in %.3f ms", vm->rec.name,
		  (double)(clock_mono_us() - t0) / 1000.0);
	r = vm_disk_set_append(set, path, DISK_FORMAT_RAW, true);
	if (r < 0) {
		free(path);
		return mv_err_internal(err, r, "vm '%s': no room for the cloud-init seed",
				       vm->rec.name);
	}
	return 0;
}

void vm_runtime_release(struct vm *vm, const char *reason)
{
	console_free(vm->run.console, reason);
	vm->run.console = NULL;
	vm->run.events_watch = sd_event_source_disable_unref(vm->run.events_watch);
	if (vm->run.events_fd >= 0)
		close(vm->run.events_fd);
	vm->run.events_fd = -1;
	ch_event_parser_done(&vm->run.events);
	free(vm->run.rundir);
	free(vm->run.api_socket);
	vm->run.rundir = vm->run.api_socket = NULL;
}

void vm_runtime_remove(struct vm *vm, const char *reason)
{
	(void)vm_runtime_paths(vm);
	rundir_remove(vm);
	vm_runtime_release(vm, reason);
}
