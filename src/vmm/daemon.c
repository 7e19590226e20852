/* See daemon.h. Start-up order matters: the state-directory lock comes first, so a second
 * daemon gives up before it touches anything of the first one's; the store is checked before
 * any socket exists; READY=1 is sent only once every listener accepts. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_console.h"
#include "api/api_metrics.h"
#include "api/api_network.h"
#include "api/api_vm.h"
#include "api/api_volume.h"
#include "api/listener.h"
#include "api/reflection.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strv.h"
#include "network/network.h"
#include "storage/storage.h"
#include "store/store.h"
#include "vm/vm.h"

#define SHUTDOWN_TIMEOUT_USEC (10 * 1000000ULL)

#define CHECKPOINT_DELAY_US (200 * 1000)

static int on_checkpoint(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;
	struct mv_error err = {0};

	(void)s, (void)usec;
	d->checkpoint = sd_event_source_unref(d->checkpoint);
	if (store_checkpoint(d->store, &err) < 0)
		log_warning("%s", err.msg);
	return 0;
}

/* A write was committed: checkpoint CHECKPOINT_DELAY_US after the first of a burst, so the
 * database file holds the state and losing the -wal loses at most the last moments. */
static void on_store_write(void *userdata)
{
	struct daemon *d = userdata;

	if (d->checkpoint || d->stopping)
		return;
	if (sd_event_add_time_relative(d->event, &d->checkpoint, CLOCK_MONOTONIC,
				       CHECKPOINT_DELAY_US, 0, on_checkpoint, d) < 0)
		d->checkpoint = NULL; /* the next write tries again; close checkpoints anyway */
}

/* A database that is missing or empty (0 bytes: truncated) while the state dir holds what
 * only a database could have made (VM or network dirs, volumes) is state lost, not a first
 * start: starting would make an empty database over it and forget every VM. */
static int check_db_not_lost(struct daemon *d, const char *db)
{
	static const char *const kinds[] = {"vms", "networks", "volumes"};
	struct stat st;
	bool missing = false;

	if (stat(db, &st) == 0 && st.st_size > 0)
		return 0;
	if (stat(db, &st) < 0) {
		if (errno != ENOENT)
			return 0; /* store_open reports it */
		missing = true;
	}
	for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
		_cleanup_free_ char *dir = NULL;
		size_t n;

		if (asprintf(&dir, "%s/%s", d->cfg->state_dir, kinds[i]) < 0)
			return log_oom();
		if ((n = dir_count_entries(dir)) > 0)
			return log_error_errno(
				-EUCLEAN,
				"state database %s is %s, but %s holds %zu entr%s that only it can "
				"explain: the database was lost or truncated; refusing to start "
				"empty over it. Restore it from a backup, or move %s away to start "
				"anew.",
				db, missing ? "missing" : "empty (0 bytes)", dir, n,
				n == 1 ? "y" : "ies", dir);
	}
	return 0;
}

/* Takes <state-dir>/mvirt-vmm.lock; the lock dies with the process, the file stays. */
static int lock_state_dir(struct daemon *d)
{
	_cleanup_free_ char *path = NULL;
	char buf[32] = "";
	int fd;

	if (asprintf(&path, "%s/mvirt-vmm.lock", d->cfg->state_dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return log_error_errno(errno, "cannot open %s: %m", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK)
			return log_error_errno(EBUSY,
					       "another mvirt-vmm (pid %s) is already running with "
					       "state directory %s; refusing to start",
					       *buf ? buf : "unknown", d->cfg->state_dir);
		return log_error_errno(e, "cannot lock %s: %m", path);
	}
	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, strlen(buf), 0) < 0)
		log_warning_errno(errno, "cannot write pid to %s: %m", path);
	d->lock_fd = fd;
	return 0;
}

/* The id of this state directory (network.h: it marks the host objects made for it), from
 * <state-dir>/instance-id; made on the first start, which *ret_first says. */
static int read_instance_id(struct daemon *d, bool *ret_first)
{
	_cleanup_free_ char *path = NULL, *tmp = NULL;
	_cleanup_close_ int fd = -1;
	char buf[SD_ID128_UUID_STRING_MAX + 1] = "";
	sd_id128_t id;
	ssize_t n;
	int r;

	if (asprintf(&path, "%s/instance-id", d->cfg->state_dir) < 0 ||
	    asprintf(&tmp, "%s/.instance-id.tmp", d->cfg->state_dir) < 0)
		return log_oom();
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (sd_id128_from_string(buf, &id) < 0)
			return log_error_errno(
				EUCLEAN,
				"%s does not hold an instance id (a UUID); restore "
				"it or, if no bridge of this daemon exists, delete it",
				path);
		snprintf(d->instance, sizeof(d->instance), "%s", buf);
		*ret_first = false;
		return 0;
	}
	if (errno != ENOENT)
		return log_error_errno(errno, "cannot open %s: %m", path);
	if ((r = sd_id128_randomize(&id)) < 0)
		return log_error_errno(r, "cannot generate an instance id: %m");
	sd_id128_to_uuid_string(id, d->instance);
	snprintf(buf, sizeof(buf), "%s\n", d->instance);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf) || fsync(fd) < 0 ||
	    rename(tmp, path) < 0) {
		r = -errno;
		(void)unlink(tmp);
		return log_error_errno(r, "cannot write %s: %m", path);
	}
	*ret_first = true;
	return 0;
}

/* The network manager, when the host lets us manage links (else the daemon runs without
 * networks), its networks reconciled, and on the first start the default network. */
static int open_networks(struct daemon *d)
{
	const char *def = d->cfg->default_network;
	struct mv_error err = {0};
	bool first = false;
	int r;

	r = read_instance_id(d, &first);
	if (r < 0)
		return r;
	r = network_manager_new(d->store, d->instance, &d->networks, &err);
	if (r < 0) {
		log_warning("networks are not available: %s", err.msg);
		return 0;
	}
	if (access(d->cfg->dnsmasq, X_OK) < 0)
		log_warning("networks have no DHCP or DNS: cannot run %s: %m (install dnsmasq-base "
			    "or set --dnsmasq)",
			    d->cfg->dnsmasq);
	else if ((r = network_manager_set_dhcp(d->networks,
					       &(struct network_dhcp_config){
						       .event = d->event,
						       .dnsmasq = d->cfg->dnsmasq,
						       .runtime_dir = d->cfg->runtime_dir,
						       .state_dir = d->cfg->state_dir,
					       })) < 0)
		return log_error_errno(r, "cannot set up DHCP: %m");
	r = network_manager_reconcile(d->networks, &err);
	if (r < 0)
		return log_error_errno(r, "cannot load networks: %s", err.msg);
	if (!first || streq(def, "off"))
		return 0;
	mv_error_clear(&err);
	r = network_create_default(d->networks, streq(def, "auto") ? NULL : def, &err);
	if (r < 0)
		log_warning("no default network: %s", err.msg);
	return 0;
}

static void on_api_down(void *userdata)
{
	struct daemon *d = userdata;

	sd_event_exit(d->event, 0);
}

static int on_shutdown_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;

	(void)s;
	(void)usec;
	log_warning("calls still running %llus after the stop request; cancelling them",
		    SHUTDOWN_TIMEOUT_USEC / 1000000ULL);
	sd_event_exit(d->event, 0);
	return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;

	(void)s;
	if (d->stopping)
		return 0;
	d->stopping = true;
	log_info("received %s, shutting down (running VMs are left running)",
		 strsignal((int)si->ssi_signo));
	(void)sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
	for (size_t i = 0; i < d->n_listeners; i++)
		listener_free(d->listeners[i]);
	d->n_listeners = 0;
	vm_manager_abort_ops(d->vms);
	(void)sd_event_add_time_relative(d->event, NULL, CLOCK_MONOTONIC, SHUTDOWN_TIMEOUT_USEC, 0,
					 on_shutdown_timeout, d);
	api_server_shutdown(d->api, on_api_down, d);
	return 0;
}

static gid_t resolve_group(const char *name)
{
	struct group *g;

	if (isempty(name)) {
		log_info("access: root only (no access group configured)");
		return (gid_t)-1;
	}
	g = getgrnam(name);
	if (!g) {
		log_notice("access: group '%s' does not exist; only root may use the API", name);
		return (gid_t)-1;
	}
	log_debug("access: root and members of group '%s' (gid %u)", name, (unsigned)g->gr_gid);
	return g->gr_gid;
}

/* The pools: "default" at <state-dir>/volumes unless configured, then the configured ones
 * ("NAME:PATH", checked by config_parse). */
/* The daemon's own files, which no VM config or import may name (validate_path): the state and
 * runtime dirs (resolved), the pools in them (whose files the storage manager judges), and the
 * database with its -wal and -shm, also through a hard link elsewhere. */
static int build_path_policy(struct daemon *d, const char *db)
{
	size_t n_pools = storage_n_pools(d->storage), n = 0;

	d->own_dirs[0] = realpath(d->cfg->state_dir, NULL);
	d->own_dirs[1] = realpath(d->cfg->runtime_dir, NULL);
	d->pool_dirs = calloc(n_pools + 1, sizeof(*d->pool_dirs));
	if (!d->own_dirs[0] || !d->own_dirs[1] || !d->pool_dirs ||
	    asprintf(&d->own_files[0], "%s", db) < 0 ||
	    asprintf(&d->own_files[1], "%s-wal", db) < 0 ||
	    asprintf(&d->own_files[2], "%s-shm", db) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n_pools; i++)
		if (!(d->pool_dirs[n++] = strdup(storage_pool_path(d->storage, i))))
			return -ENOMEM;
	d->paths = (struct path_policy){.own_dirs = (const char *const *)d->own_dirs,
					.n_own_dirs = ELEMENTSOF(d->own_dirs),
					.pool_dirs = (const char *const *)d->pool_dirs,
					.n_pool_dirs = n,
					.own_files = (const char *const *)d->own_files,
					.n_own_files = ELEMENTSOF(d->own_files)};
	storage_set_path_policy(d->storage, &d->paths);
	return 0;
}

static void path_policy_done(struct daemon *d)
{
	for (size_t i = 0; i < ELEMENTSOF(d->own_dirs); i++)
		free(d->own_dirs[i]);
	for (size_t i = 0; i < ELEMENTSOF(d->own_files); i++)
		free(d->own_files[i]);
	strv_free(d->pool_dirs);
}

static int open_storage(struct daemon *d, struct mv_error *err)
{
	_cleanup_free_ struct storage_pool_config *pools = NULL;
	_cleanup_free_ char *default_path = NULL;
	char **specs = d->cfg->pools, **copies = NULL;
	size_t n = 0, n_cfg = 0;
	bool have_default = false;
	int r = -ENOMEM;

	while (specs && specs[n_cfg])
		n_cfg++;
	if (!(pools = calloc(n_cfg + 1, sizeof(*pools))) ||
	    !(copies = calloc(n_cfg + 1, sizeof(*copies))) ||
	    asprintf(&default_path, "%s/volumes", d->cfg->state_dir) < 0)
		goto out;
	for (; n < n_cfg; n++) {
		char *colon;

		if (!(copies[n] = strdup(specs[n])))
			goto out;
		colon = strchr(copies[n], ':');
		*colon = '\0';
		pools[n] = (struct storage_pool_config){.name = copies[n], .path = colon + 1};
		have_default = have_default || streq(copies[n], STORAGE_DEFAULT_POOL);
	}
	if (!have_default)
		pools[n++] = (struct storage_pool_config){.name = STORAGE_DEFAULT_POOL,
							  .path = default_path};
	r = storage_new(d->event, d->store, pools, n, &d->storage, err);
out:
	for (size_t i = 0; copies && copies[i]; i++)
		free(copies[i]);
	free(copies);
	if (r == -ENOMEM)
		mv_err_internal(err, r, "storage: out of memory");
	return r;
}

/* The listening sockets: those systemd passes (socket activation, mvirt-vmm.socket), then
 * each --listen address none of them serves, bound here. Without activation that is every
 * --listen address. */
static int open_listeners(struct daemon *d)
{
	int n_fds = sd_listen_fds(1), r;
	size_t n_listen = strv_len(d->cfg->listen);
	struct mv_error err = {0};

	if (n_fds < 0) {
		log_warning_errno(n_fds, "ignoring the sockets passed by systemd: %m");
		n_fds = 0;
	}
	d->listeners = calloc(n_listen + (size_t)n_fds, sizeof(*d->listeners));
	if (!d->listeners)
		return log_oom();
	for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n_fds; fd++) {
		mv_error_clear(&err);
		r = listener_adopt(d->event, fd, d->api, d->access_gid,
				   &d->listeners[d->n_listeners], &err);
		if (r < 0) {
			close(fd);
			return log_error_errno(r, "%s", err.msg[0] ? err.msg : strerror(-r));
		}
		log_info("listening on %s (socket from systemd)",
			 listener_address(d->listeners[d->n_listeners]));
		d->n_listeners++;
	}
	for (size_t i = 0; i < n_listen; i++) {
		const char *addr = d->cfg->listen[i];
		bool passed = false;

		for (size_t j = 0; j < (size_t)n_fds && !passed; j++)
			passed = listener_serves(listener_address(d->listeners[j]), addr);
		if (passed)
			continue;
		mv_error_clear(&err);
		r = listener_open(d->event, addr, d->api, d->access_gid,
				  &d->listeners[d->n_listeners], &err);
		if (r < 0)
			return log_error_errno(r, "%s", err.msg[0] ? err.msg : strerror(-r));
		d->n_listeners++;
		log_info("listening on %s", addr);
	}
	return 0;
}

/* For log.c: the id of a VM a log line names, for its MVIRT_VM_ID journal field. */
static const char *vm_id_of(const char *name, void *userdata)
{
	struct daemon *d = userdata;
	const struct vm_record *rec = d->vms ? vm_manager_find(d->vms, name) : NULL;

	return rec ? rec->id : NULL;
}

static int daemon_start(struct daemon *d)
{
	static const struct api_method *const tables[] = {api_vm_methods,
							  api_console_methods,
							  api_volume_methods,
							  api_network_methods,
							  api_metrics_methods,
							  reflection_methods,
							  NULL};
	struct mv_error err = {0};
	_cleanup_free_ char *db = NULL;
	sigset_t mask;
	int r;

	for (size_t i = 0; d->cfg->listen[i]; i++)
		if ((r = listener_check_address(d->cfg->listen[i], &err)) < 0)
			return log_error_errno(r, "%s", err.msg);
	if ((r = mkdir_parents(d->cfg->state_dir, 0700)) < 0)
		return log_error_errno(r, "cannot create state directory %s: %m",
				       d->cfg->state_dir);
	if ((r = mkdir_parents(d->cfg->runtime_dir, 0755)) < 0)
		return log_error_errno(r, "cannot create runtime directory %s: %m",
				       d->cfg->runtime_dir);
	r = lock_state_dir(d);
	if (r < 0)
		return r;

	if (asprintf(&db, "%s/mvirt.db", d->cfg->state_dir) < 0)
		return log_oom();
	if ((r = check_db_not_lost(d, db)) < 0)
		return r;
	r = store_open(db, &d->store, &err);
	if (r < 0)
		return log_error_errno(r, "%s", err.msg[0] ? err.msg : strerror(-r));
	log_info("state database %s: integrity_check passed in %.1f ms", db,
		 (double)store_check_usec(d->store) / 1000.0);
	if (sd_event_default(&d->event) < 0)
		return log_oom();
	store_set_write_hook(d->store, on_store_write, d);
	if ((r = open_storage(d, &err)) < 0)
		return log_error_errno(r, "%s", err.msg[0] ? err.msg : strerror(-r));
	if (build_path_policy(d, db) < 0)
		return log_oom();
	if ((r = open_networks(d)) < 0)
		return r;
	r = vm_manager_new(&(struct vm_manager_config){.event = d->event,
						       .store = d->store,
						       .hypervisor = d->cfg->hypervisor,
						       .runtime_dir = d->cfg->runtime_dir,
						       .state_dir = d->cfg->state_dir,
						       .storage = d->storage,
						       .networks = d->networks,
						       .paths = &d->paths},
			   &d->vms);
	if (r < 0)
		return log_error_errno(r, "cannot set up the VM manager: %m");
	r = vm_manager_load(d->vms, &err);
	if (r < 0)
		return log_error_errno(r, "cannot load VMs: %s",
				       err.msg[0] ? err.msg : strerror(-r));
	log_set_vm_id_lookup(vm_id_of, d);
	vm_manager_adopt(d->vms);
	r = reflection_init();
	if (r < 0)
		return log_error_errno(r, "cannot load the API descriptors for reflection");
	d->api_ctx = (struct api_context){.event = d->event,
					  .vms = d->vms,
					  .storage = d->storage,
					  .networks = d->networks,
					  .hypervisor = d->cfg->hypervisor,
					  .store_path = d->own_files[0]};
	if (sysinfo_host_read(&d->api_ctx.host) < 0)
		log_warning("cannot read host CPU and memory sizes");
	d->access_gid = resolve_group(d->cfg->group);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((r = sd_event_add_signal(d->event, NULL, SIGTERM, on_signal, d)) < 0 ||
	    (r = sd_event_add_signal(d->event, NULL, SIGINT, on_signal, d)) < 0)
		return log_error_errno(r, "cannot watch signals");

	r = api_server_new(d->event, tables, &d->api_ctx,
			   &(struct api_limits){.max_connections = d->cfg->n_max_connections,
						.max_per_user = d->cfg->n_max_connections_per_user,
						.idle_timeout_s = d->cfg->idle_timeout_s},
			   &d->api);
	if (r < 0)
		return log_error_errno(r, "cannot start the gRPC server");

	if ((r = open_listeners(d)) < 0)
		return r;
	log_info("mvirt-vmm " MVIRT_VERSION " ready: %zu VMs, state %s", vm_manager_count(d->vms),
		 d->cfg->state_dir);
	(void)sd_notifyf(0, "READY=1\nSTATUS=serving %zu VMs\nMAINPID=%d", vm_manager_count(d->vms),
			 (int)getpid());
	return 0;
}

static void daemon_done(struct daemon *d)
{
	log_set_vm_id_lookup(NULL, NULL);
	for (size_t i = 0; i < d->n_listeners; i++)
		listener_free(d->listeners[i]);
	free(d->listeners);
	api_server_free(d->api);
	vm_manager_free(d->vms);
	storage_free(d->storage);
	path_policy_done(d);
	network_manager_free(d->networks);
	d->checkpoint = sd_event_source_disable_unref(d->checkpoint);
	if (d->store) {
		struct mv_error err = {0};

		store_set_write_hook(d->store, NULL, NULL);
		if (store_checkpoint(d->store, &err) < 0) /* a clean stop leaves no -wal content */
			log_warning("%s", err.msg);
	}
	store_close(d->store);
	reflection_done();
	api_context_done(&d->api_ctx);
	sd_event_unref(d->event);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
}

int daemon_run(const struct daemon_config *cfg)
{
	struct daemon d = {.cfg = cfg, .lock_fd = -1};
	int r;

	log_set_max_level(cfg->verbose > 0 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	r = daemon_start(&d);
	if (r >= 0)
		r = sd_event_loop(d.event);
	daemon_done(&d);
	if (r < 0)
		return 1;
	log_info("stopped");
	return 0;
}
