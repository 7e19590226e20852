/* See vm.h. The registry is an array of records sorted by name: binary search by name, a scan
 * by id (UUIDs are compared with memcmp; 1,000 VMs scan in microseconds), and ListVms walks it
 * in order without sorting. */
#include "vm/vm.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-id128.h>
#include <time.h>

#include "common/log.h"
#include "storage/storage.h"
#include "vm/vm_internal.h"

static int volume_users_cb(void *userdata, const char *volume, bool running_only, char ***ret_names)
{
	return vm_manager_volume_users(userdata, volume, running_only, ret_names);
}

int vm_manager_new(const struct vm_manager_config *cfg, struct vm_manager **ret)
{
	struct vm_manager *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->event = sd_event_ref(cfg->event);
	m->store = cfg->store;
	m->hypervisor = strdup(cfg->hypervisor);
	m->runtime_dir = strdup(cfg->runtime_dir);
	m->state_dir = strdup(cfg->state_dir);
	if (!m->hypervisor || !m->runtime_dir || !m->state_dir) {
		vm_manager_free(m);
		return -ENOMEM;
	}
	r = ch_client_new(cfg->event, &m->ch);
	if (r < 0) {
		vm_manager_free(m);
		return r;
	}
	m->storage = cfg->storage;
	if (m->storage)
		storage_set_users_fn(m->storage, volume_users_cb, m);
	*ret = m;
	return 0;
}

static void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	vm_run_detach(vm, "mvirt-vmm is shutting down");
	vmdef_record_done(&vm->rec);
	free(vm);
}

void vm_manager_free(struct vm_manager *m)
{
	if (!m)
		return;
	if (m->storage)
		storage_set_users_fn(m->storage, NULL, NULL);
	for (size_t i = 0; i < m->n_vms; i++)
		vm_free(m->vms[i]);
	free(m->vms);
	ch_client_free(m->ch);
	sd_event_unref(m->event);
	free(m->hypervisor);
	free(m->runtime_dir);
	free(m->state_dir);
	free(m);
}

int vm_save(struct vm *vm)
{
	struct mv_error err = {0};
	int r = store_vm_save(vm->m->store, &vm->rec, &err);

	if (r < 0)
		log_error_errno(r, "vm %s: cannot save its state: %s", vm->rec.name, err.msg);
	return r;
}

const char *vm_event_type_name(enum vm_event_type type)
{
	static const char *const names[] = {
		[VM_EVENT_CREATED] = "created",
		[VM_EVENT_STARTED] = "started",
		[VM_EVENT_STOPPED] = "stopped",
		[VM_EVENT_CRASHED] = "crashed",
		[VM_EVENT_PAUSED] = "paused",
		[VM_EVENT_RESUMED] = "resumed",
		[VM_EVENT_REBOOTED] = "rebooted",
		[VM_EVENT_DELETED] = "deleted",
		[VM_EVENT_CONFIG_CHANGED] = "config-changed",
		[VM_EVENT_STATE_CHANGED] = "state-changed",
	};

	return (size_t)type < ELEMENTSOF(names) && names[type] ? names[type] : "unknown";
}

int vm_manager_watch(struct vm_manager *m, vm_event_fn fn, void *userdata, struct vm_watch **ret)
{
	struct vm_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->m = m;
	w->fn = fn;
	w->userdata = userdata;
	w->next = m->watches;
	if (m->watches)
		m->watches->prev = w;
	m->watches = w;
	*ret = w;
	return 0;
}

void vm_watch_free(struct vm_watch *w)
{
	struct vm_manager *m;

	if (!w)
		return;
	m = w->m;
	if (m->dispatch_next == w)
		m->dispatch_next = w->next;
	if (w->prev)
		w->prev->next = w->next;
	else
		m->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	free(w);
}

void vm_emit(struct vm *vm, enum vm_event_type type)
{
	struct vm_manager *m = vm->m;
	struct timespec ts;
	struct vm_event ev = {.type = type, .vm = &vm->rec, .sequence = ++m->event_sequence};

	clock_gettime(CLOCK_REALTIME, &ts);
	ev.time_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	/* Each watch may remove itself or the next one. */
	for (struct vm_watch *w = m->watches; w; w = m->dispatch_next) {
		m->dispatch_next = w->next;
		w->fn(w->userdata, &ev);
	}
	m->dispatch_next = NULL;
}

void vm_set_state(struct vm *vm, enum vm_state state, enum vm_event_type type,
		  const char *reason_fmt, ...)
{
	char *reason = NULL;
	va_list ap;

	va_start(ap, reason_fmt);
	if (vasprintf(&reason, reason_fmt, ap) < 0)
		reason = NULL;
	va_end(ap);
	if (reason) {
		free(vm->rec.state_reason);
		vm->rec.state_reason = reason;
	}
	if (vm->rec.state != state)
		log_info("vm %s: %s (%s)", vm->rec.name, vm_state_name(state),
			 strempty(vm->rec.state_reason));
	vm->rec.state = state;
	(void)vm_save(vm);
	vm_emit(vm, type);
}

int vm_manager_console(struct vm_manager *m, const char *ref, struct console **ret,
		       const struct vm_record **ret_rec, struct mv_error *err)
{
	const struct vm_record *rec;
	struct vm *vm;
	int r;

	r = vm_manager_lookup(m, ref, "vm", &rec, err);
	if (r < 0)
		return r;
	vm = vm_find_ref(m, ref);
	if (!vm->console || vm->rec.state == VM_STATE_STOPPED || vm->rec.state == VM_STATE_CRASHED)
		return mv_err(err, -EBUSY, "vm '%s' is %s: its console is available while it runs",
			      vm->rec.name, vm_state_name(vm->rec.state));
	*ret = vm->console;
	if (ret_rec)
		*ret_rec = &vm->rec;
	return 0;
}

int vm_manager_console_log(struct vm_manager *m, const char *ref, char **ret_path,
			   const struct vm_record **ret_rec, struct mv_error *err)
{
	const struct vm_record *rec;
	int r;

	r = vm_manager_lookup(m, ref, "vm", &rec, err);
	if (r < 0)
		return r;
	r = vm_state_path(vm_find_ref(m, ref), "console.log", ret_path);
	if (r < 0)
		return mv_err(err, r, "vm '%s': cannot reach its console log: %s", rec->name,
			      strerror(-r));
	if (ret_rec)
		*ret_rec = rec;
	return 0;
}

int vm_state_path(struct vm *vm, const char *file, char **ret)
{
	_cleanup_free_ char *dir = NULL;

	if (asprintf(&dir, "%s/vms", vm->m->state_dir) < 0)
		return -ENOMEM;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	free(dir);
	if (asprintf(&dir, "%s/vms/%s", vm->m->state_dir, vm->rec.id) < 0) {
		dir = NULL;
		return -ENOMEM;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (asprintf(ret, "%s/%s", dir, file) < 0)
		return -ENOMEM;
	return 0;
}

/* Index of name in m->vms, or -(insertion point) - 1. */
static ssize_t find_name(const struct vm_manager *m, const char *name)
{
	size_t lo = 0, hi = m->n_vms;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->vms[mid]->rec.name, name);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(ssize_t)lo - 1;
}

static ssize_t find_ref(const struct vm_manager *m, const char *ref)
{
	ssize_t i;

	if (strlen(ref) == VM_ID_LEN)
		for (size_t j = 0; j < m->n_vms; j++)
			if (memcmp(m->vms[j]->rec.id, ref, VM_ID_LEN) == 0)
				return (ssize_t)j;
	i = find_name(m, ref);
	return i >= 0 ? i : -1;
}

static int insert_at(struct vm_manager *m, size_t pos, struct vm *r)
{
	if (m->n_vms == m->n_alloc) {
		size_t n = m->n_alloc ? m->n_alloc * 2 : 64;
		struct vm **v = realloc(m->vms, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->vms = v;
		m->n_alloc = n;
	}
	memmove(m->vms + pos + 1, m->vms + pos, (m->n_vms - pos) * sizeof(*m->vms));
	m->vms[pos] = r;
	m->n_vms++;
	return 0;
}

static struct vm *vm_new(struct vm_manager *m)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->m = m;
	vm->events_fd = -1;
	return vm;
}

int vm_manager_load(struct vm_manager *m, struct mv_error *err)
{
	struct vm_record *all = NULL;
	size_t n = 0;
	int r;

	r = store_vm_load_all(m->store, &all, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct vm *vm = vm_new(m);
		ssize_t pos;

		if (!vm) {
			r = -ENOMEM;
			goto out;
		}
		vm->rec = all[i];
		memset(&all[i], 0, sizeof(all[i]));
		pos = find_name(m, vm->rec.name);
		if (pos >= 0) {
			/* The store's UNIQUE constraint makes this impossible. */
			vm_free(vm);
			r = mv_err(err, -EUCLEAN, "state database holds two VMs named '%s'",
				   m->vms[pos]->rec.name);
			goto out;
		}
		r = insert_at(m, (size_t)(-pos - 1), vm);
		if (r < 0) {
			vm_free(vm);
			goto out;
		}
	}
	for (size_t i = 0; i < m->n_vms; i++)
		if (m->vms[i]->rec.process.pid != 0)
			vm_run_adopt(m->vms[i]);
	r = 0;
out:
	for (size_t i = 0; i < n; i++)
		vmdef_record_done(&all[i]);
	free(all);
	return r;
}

struct vm *vm_find_ref(struct vm_manager *m, const char *ref)
{
	ssize_t i = isempty(ref) ? -1 : find_ref(m, ref);

	return i >= 0 ? m->vms[i] : NULL;
}

const struct vm_record *vm_manager_find(struct vm_manager *m, const char *ref)
{
	struct vm *vm = vm_find_ref(m, ref);

	return vm ? &vm->rec : NULL;
}

int vm_manager_lookup(struct vm_manager *m, const char *ref, const char *field,
		      const struct vm_record **ret, struct mv_error *err)
{
	const struct vm_record *r;

	if (isempty(ref))
		return mv_err(err, -EINVAL, "%s: required (a VM id or name)", field);
	r = vm_manager_find(m, ref);
	if (!r)
		return mv_err(err, -ENOENT, "vm '%s' not found", ref);
	*ret = r;
	return 0;
}

static bool looks_like_uuid(const char *s)
{
	sd_id128_t id;

	return strlen(s) == VM_ID_LEN && sd_id128_from_string(s, &id) >= 0;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Fills what the daemon assigns: MAC addresses (52:54:00 prefix, random, unique within the
 * VM) and the formats of disks given without one. */
static int complete_config(struct vm_config *c, struct mv_error *err)
{
	for (size_t i = 0; i < c->n_disks; i++) {
		if (c->disks[i].format != DISK_FORMAT_UNSPECIFIED || !isempty(c->disks[i].volume))
			continue;
		int r = storage_detect_format(c->disks[i].path, &c->disks[i].format, err);
		if (r < 0)
			return mv_err_prefix(err, "config.disks[%zu].path: ", i), r;
	}
	for (size_t i = 0; i < c->n_nics; i++) {
		uint8_t b[3];
		sd_id128_t rnd;

		if (!isempty(c->nics[i].mac))
			continue;
		if (sd_id128_randomize(&rnd) < 0)
			return mv_err(err, -EIO, "cannot get random bytes for a MAC address");
		memcpy(b, rnd.bytes, sizeof(b));
		free(c->nics[i].mac);
		if (asprintf(&c->nics[i].mac, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]) < 0) {
			c->nics[i].mac = NULL;
			return -ENOMEM;
		}
		for (size_t j = 0; j < c->n_nics; j++)
			if (j != i && c->nics[j].mac && streq(c->nics[j].mac, c->nics[i].mac)) {
				i--; /* collision: draw again */
				break;
			}
	}
	return 0;
}

/* A file's identity, to find two names for the same disk. */
struct file_id {
	dev_t dev;
	ino_t ino;
	const char *field;
};

/* Records the identity of path as field's; -EINVAL when an earlier disk is the same file.
 * A path that cannot be stat()ed is left to the hypervisor's error at start. */
static int note_disk(struct file_id *seen, size_t *n, const char *path, const char *field,
		     struct mv_error *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;
	for (size_t k = 0; k < *n; k++)
		if (seen[k].dev == st.st_dev && seen[k].ino == st.st_ino)
			return mv_err(err, -EINVAL, "%s: %s is the same disk as %s", field, path,
				      seen[k].field);
	seen[*n] = (struct file_id){st.st_dev, st.st_ino, field};
	(*n)++;
	return 0;
}

/* The storage manager's part of CreateVm: every named volume exists, a raw path inside a pool
 * is a volume of that pool, and no disk appears twice (a volume named twice, or named and
 * given by its path). */
static int check_storage(struct vm_manager *m, const struct vm_config *c, struct mv_error *err)
{
	char fields[VM_MAX_DISKS + 1][64];
	struct file_id seen[VM_MAX_DISKS + 1];
	size_t n_seen = 0;
	int r;

	if (c->n_disks > VM_MAX_DISKS)
		return mv_err(err, -EINVAL, "config.disks: %zu disks, at most %d", c->n_disks,
			      VM_MAX_DISKS);
	if (!isempty(c->disk) && m->storage) {
		r = storage_check_disk_path(m->storage, c->disk, "config.disk", err);
		if (r < 0)
			return r;
		snprintf(fields[0], sizeof(fields[0]), "config.disk");
		r = note_disk(seen, &n_seen, c->disk, fields[0], err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->n_disks; i++) {
		const struct vm_disk *d = &c->disks[i];
		_cleanup_free_ char *path = NULL;
		char *field = fields[i + 1];
		enum disk_format format;
		bool backing;

		if (isempty(d->volume)) {
			snprintf(field, sizeof(fields[0]), "config.disks[%zu].path", i);
			if (!m->storage)
				continue;
			r = storage_check_disk_path(m->storage, d->path, field, err);
			if (r < 0)
				return r;
			r = note_disk(seen, &n_seen, d->path, field, err);
			if (r < 0)
				return r;
			continue;
		}
		snprintf(field, sizeof(fields[0]), "config.disks[%zu].volume", i);
		if (!m->storage)
			return mv_err(err, -EINVAL,
				      "%s: volume '%s' not found (this mvirt-vmm has no volumes)",
				      field, d->volume);
		for (size_t k = 0; k < i; k++)
			if (!isempty(c->disks[k].volume) && streq(c->disks[k].volume, d->volume))
				return mv_err(err, -EINVAL,
					      "%s: volume '%s' is already config.disks[%zu]", field,
					      d->volume, k);
		r = storage_volume_resolve(m->storage, d->volume, &path, &format, &backing, err);
		if (r < 0) {
			mv_err_prefix(err, "%s: ", field);
			/* A name that does not resolve is a bad argument, not a missing VM. */
			if (r == -ENOENT)
				err->code = r = -EINVAL;
			return r;
		}
		r = note_disk(seen, &n_seen, path, field, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* True when the VM's hypervisor process exists (or is about to, or may still). */
static bool vm_runs(const struct vm *vm)
{
	return vm->proc || vm->rec.process.pid != 0 ||
	       (vm->rec.state != VM_STATE_STOPPED && vm->rec.state != VM_STATE_CRASHED);
}

/* True when the VM's config uses the volume: by name, or by the path of its file (vol_st). */
static bool vm_uses_volume(const struct vm *vm, const char *volume, const struct stat *vol_st)
{
	const struct vm_config *c = &vm->rec.config;
	struct stat st;

	for (size_t i = 0; i < c->n_disks; i++) {
		const struct vm_disk *d = &c->disks[i];

		if (!isempty(d->volume) && streq(d->volume, volume))
			return true;
		if (vol_st && isempty(d->volume) && !isempty(d->path) && stat(d->path, &st) == 0 &&
		    st.st_dev == vol_st->st_dev && st.st_ino == vol_st->st_ino)
			return true;
	}
	if (vol_st && !isempty(c->disk) && stat(c->disk, &st) == 0 && st.st_dev == vol_st->st_dev &&
	    st.st_ino == vol_st->st_ino)
		return true;
	return false;
}

int vm_manager_volume_users(struct vm_manager *m, const char *volume, bool running_only,
			    char ***ret_names)
{
	_cleanup_free_ char *path = NULL;
	struct stat vol_st;
	bool have_st = false;
	char **names;
	size_t n = 0;

	/* Raw paths may name a volume's file too (storage_check_disk_path allows it). */
	if (m->storage) {
		enum disk_format format;
		bool backing;

		if (storage_volume_resolve(m->storage, volume, &path, &format, &backing, NULL) >=
			    0 &&
		    stat(path, &vol_st) == 0)
			have_st = true;
	}
	names = calloc(m->n_vms + 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_vms; i++) {
		const struct vm *vm = m->vms[i];

		if (running_only && !vm_runs(vm))
			continue;
		if (!vm_uses_volume(vm, volume, have_st ? &vol_st : NULL))
			continue;
		names[n] = strdup(vm->rec.name);
		if (!names[n]) {
			for (size_t k = 0; k < n; k++)
				free(names[k]);
			free(names);
			return -ENOMEM;
		}
		n++;
	}
	*ret_names = names;
	return 0;
}

int vm_manager_create(struct vm_manager *m, const char *name, const struct vm_config *config,
		      const struct host_limits *host, const struct vm_record **ret,
		      struct mv_error *err)
{
	struct vm *vm = NULL;
	struct vm_record *rec;
	sd_id128_t id;
	ssize_t pos;
	int r;

	r = validate_vm_name(name, "name", err);
	if (r < 0)
		return r;
	if (looks_like_uuid(name))
		return mv_err(err, -EINVAL,
			      "name: '%s' has the form of a VM id (UUID); choose another name",
			      name);
	pos = find_name(m, name);
	if (pos >= 0)
		return mv_err(err, -EEXIST, "name: a VM named '%s' already exists (id %s)", name,
			      m->vms[pos]->rec.id);
	r = validate_vm_config(config, host, err);
	if (r < 0)
		return r;
	r = check_storage(m, config, err);
	if (r < 0)
		return r;

	vm = vm_new(m);
	if (!vm)
		return -ENOMEM;
	rec = &vm->rec;
	r = vmdef_config_copy(&rec->config, config);
	if (r < 0)
		goto fail;
	r = complete_config(&rec->config, err);
	if (r < 0)
		goto fail;
	r = sd_id128_randomize(&id);
	if (r < 0) {
		mv_err(err, r, "cannot generate a VM id: %s", strerror(-r));
		goto fail;
	}
	sd_id128_to_uuid_string(id, rec->id);
	rec->name = strdup(name);
	rec->state_reason = strdup("created");
	if (!rec->name || !rec->state_reason) {
		r = -ENOMEM;
		goto fail;
	}
	rec->state = VM_STATE_STOPPED;
	rec->created_at_us = now_us();

	/* Reserve the slot first so that nothing can fail after the store has the VM. */
	if (m->n_vms == m->n_alloc) {
		r = insert_at(m, m->n_vms, vm);
		if (r < 0)
			goto fail;
		m->n_vms--;
	}
	r = store_vm_save(m->store, rec, err);
	if (r < 0) {
		mv_err_prefix(err, "vm '%s': cannot save: ", name);
		goto fail;
	}
	r = insert_at(m, (size_t)(-pos - 1), vm);
	if (r < 0)
		goto fail; /* cannot happen: the slot is reserved */
	vm_emit(vm, VM_EVENT_CREATED);
	*ret = rec;
	return 0;
fail:
	vm_free(vm);
	return r;
}

/* Removes a directory of plain files (no recursion: per-VM directories hold none). */
static void remove_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	(void)rmdir(path);
}

int vm_manager_delete(struct vm_manager *m, const char *ref, struct vm_record *ret_old,
		      struct mv_error *err)
{
	const struct vm_record *found;
	_cleanup_free_ char *dir = NULL;
	struct vm *vm;
	ssize_t i;
	int r;

	r = vm_manager_lookup(m, ref, "vm", &found, err);
	if (r < 0)
		return r;
	i = find_ref(m, ref);
	vm = m->vms[i];
	if (vm->op)
		return mv_err(err, -EBUSY, "vm '%s': %s is in progress", vm->rec.name,
			      vm_op_kind_name(vm->op->kind));
	if (vm->proc || (vm->rec.state != VM_STATE_STOPPED && vm->rec.state != VM_STATE_CRASHED))
		return mv_err(err, -EBUSY, "vm '%s' is %s; stop it before deleting it",
			      vm->rec.name, vm_state_name(vm->rec.state));
	r = store_vm_delete(m->store, vm->rec.id, err);
	if (r < 0)
		return mv_err_prefix(err, "vm '%s': cannot delete: ", vm->rec.name), r;
	memmove(m->vms + i, m->vms + i + 1, (m->n_vms - (size_t)i - 1) * sizeof(*m->vms));
	m->n_vms--;
	/* Its logs go with it; a failure here leaves files, never a half-deleted VM. */
	if (asprintf(&dir, "%s/vms/%s", m->state_dir, vm->rec.id) >= 0)
		remove_dir(dir);
	vm_emit(vm, VM_EVENT_DELETED);
	if (ret_old) {
		*ret_old = vm->rec;
		memset(&vm->rec, 0, sizeof(vm->rec));
	}
	vm_free(vm);
	return 0;
}

size_t vm_manager_count(const struct vm_manager *m)
{
	return m->n_vms;
}

const struct vm_record *vm_manager_at(const struct vm_manager *m, size_t i)
{
	return i < m->n_vms ? &m->vms[i]->rec : NULL;
}

void vm_manager_totals(const struct vm_manager *m, uint32_t *ret_vcpus, uint64_t *ret_memory_mb)
{
	uint32_t vcpus = 0;
	uint64_t mem = 0;

	for (size_t i = 0; i < m->n_vms; i++) {
		vcpus += m->vms[i]->rec.config.vcpus;
		mem += m->vms[i]->rec.config.memory_mb;
	}
	*ret_vcpus = vcpus;
	*ret_memory_mb = mem;
}
