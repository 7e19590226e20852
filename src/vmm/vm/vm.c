/* See vm.h. The VM manager's public calls that are not the lifecycle's: set-up and tear-down,
 * loading, CreateVm, DeleteVm, the console lookups and the storage manager's question which
 * VMs use a volume. Calls the lifecycle (vm_lifecycle.c), the disks (vm_disks.c) and the
 * registry (vm_registry.c); none of them calls back here. */
#include "vm/vm.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <systemd/sd-id128.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "network/network.h"
#include "common/strv.h"
#include "storage/storage.h"
#include "vm/vm_autostart.h"
#include "vm/vm_disks.h"
#include "vm/vm_lifecycle.h"
#include "vm/vm_registry.h"

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
	m->networks = cfg->networks;
	m->paths = cfg->paths;
	if (m->storage)
		storage_set_users_fn(m->storage, volume_users_cb, m);
	*ret = m;
	return 0;
}

/* Frees a VM that is out of the registry (or never was in it), leaving its process running. */
static void vm_dispose(struct vm *vm, const char *reason)
{
	if (!vm)
		return;
	vm_lifecycle_release(vm, reason);
	vm_free(vm);
}

void vm_manager_free(struct vm_manager *m)
{
	if (!m)
		return;
	if (m->storage)
		storage_set_users_fn(m->storage, NULL, NULL);
	vm_autostart_cancel(m);
	for (size_t i = 0; i < m->n_vms; i++)
		vm_dispose(m->vms[i], "mvirt-vmm is shutting down");
	vm_autostart_free(m);
	free(m->vms);
	ch_client_free(m->ch);
	sd_event_unref(m->event);
	free(m->hypervisor);
	free(m->runtime_dir);
	free(m->state_dir);
	free(m);
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
			r = mv_err_oom(err);
			goto out;
		}
		vm->rec = all[i];
		memset(&all[i], 0, sizeof(all[i]));
		if (vm->rec.config.version == 0) /* stored before config versions existed */
			vm->rec.config.version = 1;
		pos = vm_registry_find_name(m, vm->rec.name);
		if (pos >= 0) {
			/* The store's UNIQUE constraint makes this impossible. */
			r = mv_err_internal(err, -EUCLEAN,
					    "state database holds two VMs named '%s'",
					    vm->rec.name);
			vm_free(vm);
			goto out;
		}
		r = vm_registry_insert(m, (size_t)(-pos - 1), vm);
		if (r < 0) {
			vm_free(vm);
			mv_err_oom(err);
			goto out;
		}
	}
	vm_registry_sync_hosts(m);
	r = 0;
out:
	for (size_t i = 0; i < n; i++)
		vmdef_record_done(&all[i]);
	free(all);
	return r;
}

void vm_manager_adopt(struct vm_manager *m)
{
	vm_lifecycle_adopt_all(m);
	vm_manager_autostart(m);
}

static bool looks_like_uuid(const char *s)
{
	sd_id128_t id;

	return strlen(s) == VM_ID_LEN && sd_id128_from_string(s, &id) >= 0;
}

/* A MAC address names one NIC on the host's networks: one given twice, even in another
 * case, is refused (validate_vm_config refuses it within one VM). */
static int check_macs_unique(struct vm_manager *m, const struct vm_config *c,
			     const struct vm *except, struct mv_error *err)
{
	for (size_t i = 0; i < c->n_nics; i++) {
		size_t k = 0;
		const struct vm *other = vm_registry_find_mac(m, c->nics[i].mac, except, &k);

		if (other)
			return mv_err_exists(err,
					     "config.nics[%zu].mac: %s is already used by vm '%s' "
					     "(nics[%zu])",
					     i, c->nics[i].mac, other->rec.name, k);
	}
	return 0;
}

/* Each NIC on a network names one that exists (by name: the VM's config keeps the name). */
static int check_networks(struct vm_manager *m, const struct vm_config *c, struct mv_error *err)
{
	for (size_t i = 0; i < c->n_nics; i++) {
		const struct network *net;

		if (isempty(c->nics[i].network))
			continue;
		if (!m->networks)
			return mv_err_invalid(err,
					      "config.nics[%zu].network: this daemon manages no "
					      "networks (see its log); use tap",
					      i);
		net = network_find(m->networks, c->nics[i].network);
		if (!net || !streq(net->name, c->nics[i].network))
			return mv_err_invalid(
				err, "config.nics[%zu].network: network '%s' does not exist", i,
				c->nics[i].network);
	}
	return 0;
}

/* The MAC addresses the daemon assigns: 52:54:00 prefix, random, unique among all VMs. */
static int assign_macs(struct vm_manager *m, struct vm_config *c, struct mv_error *err)
{
	for (size_t i = 0; i < c->n_nics; i++) {
		uint8_t b[3];
		sd_id128_t rnd;

		if (!isempty(c->nics[i].mac))
			continue;
		if (sd_id128_randomize(&rnd) < 0)
			return mv_err_internal(err, -EIO,
					       "cannot get random bytes for a MAC address");
		memcpy(b, rnd.bytes, sizeof(b));
		free(c->nics[i].mac);
		if (asprintf(&c->nics[i].mac, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]) < 0) {
			c->nics[i].mac = NULL;
			return mv_err_oom(err);
		}
		bool taken = vm_registry_find_mac(m, c->nics[i].mac, NULL, NULL) != NULL;

		for (size_t j = 0; j < c->n_nics && !taken; j++)
			taken = j != i && c->nics[j].mac &&
				strcasecmp(c->nics[j].mac, c->nics[i].mac) == 0;
		if (taken)
			i--; /* collision: draw again */
	}
	return 0;
}

/* Resolves the config's disks (checking the storage rules) and writes the formats found in
 * image headers into the disks given by path without one. */
static int complete_disks(struct vm_manager *m, struct vm_config *c, struct mv_error *err)
{
	struct vm_disk_set set;
	int r;

	r = vm_disks_resolve(m->storage, c, NULL, VM_DISKS_CREATE, &set, err);
	for (size_t i = 0; r >= 0 && i < set.n; i++) {
		ssize_t k = set.index[i];

		if (k >= 0 && isempty(c->disks[k].volume) &&
		    c->disks[k].format == DISK_FORMAT_UNSPECIFIED)
			c->disks[k].format = set.disks[i].format;
	}
	vm_disk_set_done(&set);
	return r;
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
		return mv_err_invalid(
			err, "name: '%s' has the form of a VM id (UUID); choose another name",
			name);
	pos = vm_registry_find_name(m, name);
	if (pos >= 0)
		return mv_err_exists(err, "name: a VM named '%s' already exists (id %s)", name,
				     m->vms[pos]->rec.id);
	struct host_limits limits = host ? *host : (struct host_limits){0};

	limits.paths = m->paths;
	r = validate_vm_config(config, &limits, MV_ERR_INVALID, err);
	if (r < 0)
		return r;
	r = check_macs_unique(m, config, NULL, err);
	if (r < 0)
		return r;
	r = check_networks(m, config, err);
	if (r < 0)
		return r;

	vm = vm_new(m);
	if (!vm)
		return mv_err_oom(err);
	rec = &vm->rec;
	r = vmdef_config_copy(&rec->config, config);
	if (r < 0) {
		mv_err_oom(err);
		goto fail;
	}
	r = complete_disks(m, &rec->config, err);
	if (r < 0)
		goto fail;
	rec->config.plain_paths = validate_plain_paths(&rec->config);
	rec->config.version = 1;
	r = assign_macs(m, &rec->config, err);
	if (r < 0)
		goto fail;
	r = sd_id128_randomize(&id);
	if (r < 0) {
		mv_err_internal(err, r, "cannot generate a VM id: %m");
		goto fail;
	}
	sd_id128_to_uuid_string(id, rec->id);
	rec->name = strdup(name);
	rec->state_reason = strdup("created");
	if (!rec->name || !rec->state_reason) {
		r = mv_err_oom(err);
		goto fail;
	}
	rec->state = VM_STATE_STOPPED;
	rec->created_at_us = clock_real_us();

	/* Reserve the slot first so that nothing can fail after the store has the VM. */
	r = vm_registry_reserve(m);
	if (r < 0) {
		mv_err_oom(err);
		goto fail;
	}
	r = store_vm_save(m->store, rec, err);
	if (r < 0) {
		mv_err_prefix(err, "vm '%s': cannot save: ", name);
		goto fail;
	}
	(void)vm_registry_insert(m, (size_t)(-pos - 1), vm); /* cannot fail: reserved */
	vm_emit(vm, VM_EVENT_CREATED);
	*ret = rec;
	return 0;
fail:
	vm_free(vm);
	return r;
}

static bool path_equal(const char *a, const char *b)
{
	return streq(strempty(a), strempty(b));
}

/* The plain_paths bits (see vmdef.h) the new config c inherits from old: a path it names as old
 * did keeps old's bit, so that one swapped for a symlink since stays refused. The bits of the
 * paths that are new in c go into *ret_new: they are judged now, as at a create. */
static uint32_t kept_plain_paths(const struct vm_config *old, const struct vm_config *c,
				 uint32_t *ret_new)
{
	uint32_t keep = 0, fresh = 0;
	const struct {
		const char *a, *b;
		uint32_t bit;
	} single[] = {
		{old->kernel, c->kernel, VM_PLAIN_KERNEL},
		{old->initramfs, c->initramfs, VM_PLAIN_INITRAMFS},
		{old->firmware, c->firmware, VM_PLAIN_FIRMWARE},
		{old->disk, c->disk, VM_PLAIN_DISK},
	};

	for (size_t i = 0; i < ELEMENTSOF(single); i++) {
		if (path_equal(single[i].a, single[i].b))
			keep |= old->plain_paths & single[i].bit;
		else
			fresh |= single[i].bit;
	}
	for (size_t i = 0; i < c->n_disks && i < VM_MAX_DISKS; i++) {
		size_t j;

		if (isempty(c->disks[i].path))
			continue;
		for (j = 0; j < old->n_disks && j < VM_MAX_DISKS; j++)
			if (path_equal(old->disks[j].path, c->disks[i].path))
				break;
		if (j < old->n_disks && j < VM_MAX_DISKS)
			keep |= (old->plain_paths & VM_PLAIN_DISKS(j)) ? VM_PLAIN_DISKS(i) : 0;
		else
			fresh |= VM_PLAIN_DISKS(i);
	}
	*ret_new = fresh;
	return keep;
}

/* The checks and completions of vm_manager_create, for the config c that is to replace vm's. */
static int update_check(struct vm_manager *m, struct vm *vm, struct vm_config *c,
			const struct host_limits *host, struct mv_error *err)
{
	struct host_limits limits = host ? *host : (struct host_limits){0};
	uint32_t fresh;
	int r;

	limits.paths = m->paths;
	c->plain_paths = kept_plain_paths(&vm->rec.config, c, &fresh);
	if ((r = validate_vm_config(c, &limits, MV_ERR_INVALID, err)) < 0 ||
	    (r = check_macs_unique(m, c, vm, err)) < 0 || (r = check_networks(m, c, err)) < 0 ||
	    (r = complete_disks(m, c, err)) < 0)
		return r;
	c->plain_paths |= validate_plain_paths(c) & fresh;
	return assign_macs(m, c, err);
}

int vm_manager_update(struct vm_manager *m, const char *ref, const struct vm_config *config,
		      uint32_t fields, uint64_t version, const struct host_limits *host,
		      const struct vm_record **ret, struct mv_error *err)
{
	_cleanup_(vmdef_config_done) struct vm_config c = {0}, given = {0};
	struct vm *vm;
	bool settings;
	int r;

	if ((r = vm_registry_lookup(m, ref, "vm", &vm, err)) < 0)
		return r;
	if (version != 0 && version != vm->rec.config.version)
		return mv_err_aborted(err,
				      "config_version: vm '%s' has config version %" PRIu64
				      ", not %" PRIu64 ": its config was changed since it was "
				      "read; read it again",
				      vm->rec.name, vm->rec.config.version, version);
	if (vm->op)
		return mv_err_precondition(err, -EBUSY, "vm '%s': %s is in progress", vm->rec.name,
					   vm_op_kind_name(vm->op->kind));
	if (vmdef_config_copy(&c, &vm->rec.config) < 0 || vmdef_config_copy(&given, config) < 0)
		return mv_err_oom(err);
	vmdef_config_swap_fields(&c, &given, fields & VM_FIELD_ALL);
	if (vmdef_config_same_settings(&c, &vm->rec.config, true)) {
		*ret = &vm->rec; /* nothing to change */
		return 0;
	}
	settings = !vmdef_config_same_settings(&c, &vm->rec.config, false);
	if (settings &&
	    (vm->proc || (vm->rec.state != VM_STATE_STOPPED && vm->rec.state != VM_STATE_CRASHED)))
		return mv_err_precondition(err, -EBUSY,
					   "vm '%s' is %s; stop it before changing its config "
					   "(only autostart can change while it runs)",
					   vm->rec.name, vm_state_name(vm->rec.state));
	if (settings && (r = update_check(m, vm, &c, host, err)) < 0)
		return r;
	/* completed (formats detected, say), it may be what the VM has already */
	if (vmdef_config_same_settings(&c, &vm->rec.config, true)) {
		*ret = &vm->rec;
		return 0;
	}
	c.version = vm->rec.config.version + 1;
	SWAP(vm->rec.config, c);
	r = store_vm_save(m->store, &vm->rec, err);
	if (r < 0) {
		SWAP(vm->rec.config, c);
		return mv_err_prefix(err, "vm '%s': cannot save: ", vm->rec.name), r;
	}
	log_info("vm %s: config changed (version %" PRIu64 ")", vm->rec.name,
		 vm->rec.config.version);
	vm_emit(vm, VM_EVENT_CONFIG_CHANGED);
	*ret = &vm->rec;
	return 0;
}

int vm_manager_delete(struct vm_manager *m, const char *ref, struct vm_record *ret_old,
		      struct mv_error *err)
{
	_cleanup_free_ char *dir = NULL;
	struct vm *vm;
	int r;

	r = vm_registry_lookup(m, ref, "vm", &vm, err);
	if (r < 0)
		return r;
	if (vm->op)
		return mv_err_precondition(err, -EBUSY, "vm '%s': %s is in progress", vm->rec.name,
					   vm_op_kind_name(vm->op->kind));
	if (vm->proc || (vm->rec.state != VM_STATE_STOPPED && vm->rec.state != VM_STATE_CRASHED))
		return mv_err_precondition(err, -EBUSY, "vm '%s' is %s; stop it before deleting it",
					   vm->rec.name, vm_state_name(vm->rec.state));
	r = store_vm_delete(m->store, vm->rec.id, err);
	if (r < 0)
		return mv_err_prefix(err, "vm '%s': cannot delete: ", vm->rec.name), r;
	vm_registry_remove(m, vm);
	/* Its logs go with it; a failure here leaves files, never a half-deleted VM. */
	if (asprintf(&dir, "%s/vms/%s", m->state_dir, vm->rec.id) >= 0)
		remove_dir_files(dir);
	else
		dir = NULL;
	vm_emit(vm, VM_EVENT_DELETED);
	if (ret_old) {
		*ret_old = vm->rec;
		memset(&vm->rec, 0, sizeof(vm->rec));
	}
	vm_dispose(vm, "vm deleted");
	return 0;
}

int vm_manager_volume_users(struct vm_manager *m, const char *volume, bool running_only,
			    char ***ret_names)
{
	_cleanup_free_ char *path = NULL;
	struct stat vol_st;
	bool have_st = false;
	char **names = NULL;
	size_t n = 0;

	/* Raw paths may name a volume's file too (storage_check_disk_path allows it). */
	if (m->storage) {
		enum disk_format format;
		bool backing;

		if (storage_volume_resolve(m->storage, volume, MV_ERR_NOT_FOUND, &path, &format,
					   &backing, NULL) >= 0 &&
		    stat(path, &vol_st) == 0)
			have_st = true;
	}
	names = calloc(1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_vms; i++) {
		const struct vm *vm = m->vms[i];

		if (running_only && !vm_lifecycle_runs(vm))
			continue;
		if (!vm_disks_use_volume(&vm->rec.config, volume, have_st ? &vol_st : NULL))
			continue;
		if (strv_push(&names, &n, vm->rec.name) < 0) {
			strv_free(names);
			return -ENOMEM;
		}
	}
	*ret_names = names;
	return 0;
}

int vm_manager_console(struct vm_manager *m, const char *ref, struct console **ret,
		       const struct vm_record **ret_rec, struct mv_error *err)
{
	struct vm *vm;
	int r;

	r = vm_registry_lookup(m, ref, "vm", &vm, err);
	if (r < 0)
		return r;
	if (!vm->run.console || vm->rec.state == VM_STATE_STOPPED ||
	    vm->rec.state == VM_STATE_CRASHED)
		return mv_err_precondition(err, -EBUSY,
					   "vm '%s' is %s: its console is available while it runs",
					   vm->rec.name, vm_state_name(vm->rec.state));
	*ret = vm->run.console;
	if (ret_rec)
		*ret_rec = &vm->rec;
	return 0;
}

int vm_manager_console_log(struct vm_manager *m, const char *ref, char **ret_path,
			   const struct vm_record **ret_rec, struct mv_error *err)
{
	struct vm *vm;
	int r;

	r = vm_registry_lookup(m, ref, "vm", &vm, err);
	if (r < 0)
		return r;
	r = vm_state_path(vm, "console.log", ret_path);
	if (r < 0)
		return mv_err_internal(err, r, "vm '%s': cannot reach its console log: %m",
				       vm->rec.name);
	if (ret_rec)
		*ret_rec = &vm->rec;
	return 0;
}

/* ---- NIC hotplug (the device part: vm_nics.c) ---- */

/* A message about config.nics[index] of the config after an add names the request's field,
 * "nic", instead. */
static void nic_field(struct mv_error *err, size_t index)
{
	char prefix[32];
	size_t n = (size_t)snprintf(prefix, sizeof(prefix), "config.nics[%zu]", index);

	if (err && startswith(err->msg, prefix)) {
		memmove(err->msg + 3, err->msg + n, strlen(err->msg + n) + 1);
		memcpy(err->msg, "nic", 3);
	}
}

static int nic_copy(struct vm_nic *dst, const struct vm_nic *src)
{
	*dst = (struct vm_nic){0};
	if ((src->tap && !(dst->tap = strdup(src->tap))) ||
	    (src->network && !(dst->network = strdup(src->network))) ||
	    (src->mac && !(dst->mac = strdup(src->mac)))) {
		free(dst->tap);
		free(dst->network);
		free(dst->mac);
		return -ENOMEM;
	}
	return 0;
}

/* The VM ref names and a copy of its config, for AddNic/RemoveNic to change. */
static int nic_change_begin(struct vm_manager *m, const char *ref, struct vm **ret_vm,
			    struct vm_config *c, struct mv_error *err)
{
	int r = vm_registry_lookup(m, ref, "vm", ret_vm, err);

	if (r < 0)
		return r;
	if (vmdef_config_copy(c, &(*ret_vm)->rec.config) < 0)
		return mv_err_oom(err);
	c->version++;
	return 0;
}

int vm_manager_add_nic(struct vm_manager *m, const char *ref, const struct vm_nic *nic,
		       vm_done_fn fn, void *userdata, struct mv_error *err)
{
	_cleanup_(vmdef_config_done) struct vm_config c = {0};
	struct vm_nic *grown;
	struct vm *vm;
	size_t i;
	int r;

	if ((r = nic_change_begin(m, ref, &vm, &c, err)) < 0)
		return r;
	i = c.n_nics;
	if (i >= VM_MAX_NICS)
		return mv_err_invalid(err, "nic: vm '%s' has %zu NICs already, at most %d",
				      vm->rec.name, i, VM_MAX_NICS);
	if (!(grown = reallocarray(c.nics, i + 1, sizeof(*c.nics))))
		return mv_err_oom(err);
	c.nics = grown;
	if (nic_copy(&c.nics[i], nic) < 0)
		return mv_err_oom(err);
	c.n_nics++;
	if ((r = validate_vm_nics(&c, err)) < 0 || (r = check_macs_unique(m, &c, vm, err)) < 0 ||
	    (r = check_networks(m, &c, err)) < 0 || (r = assign_macs(m, &c, err)) < 0) {
		nic_field(err, i);
		return r;
	}
	return vm_manager_op(m, VM_OP_ADD_NIC, vm->rec.id,
			     &(struct vm_op_args){.config = &c, .nic = i}, fn, userdata, err);
}

int vm_manager_remove_nic(struct vm_manager *m, const char *ref, const char *mac, vm_done_fn fn,
			  void *userdata, struct mv_error *err)
{
	_cleanup_(vmdef_config_done) struct vm_config c = {0};
	struct vm *vm;
	size_t i;
	int r;

	if ((r = nic_change_begin(m, ref, &vm, &c, err)) < 0)
		return r;
	if (isempty(mac))
		return mv_err_invalid(err, "mac: give the MAC address of the NIC to remove");
	for (i = 0; i < c.n_nics; i++)
		if (c.nics[i].mac && strcasecmp(c.nics[i].mac, mac) == 0)
			break;
	if (i == c.n_nics)
		return mv_err_not_found(err, "mac: vm '%s' has no NIC with MAC %s", vm->rec.name,
					mac);
	free(c.nics[i].tap);
	free(c.nics[i].network);
	free(c.nics[i].mac);
	memmove(&c.nics[i], &c.nics[i + 1], (c.n_nics - i - 1) * sizeof(*c.nics));
	c.n_nics--;
	return vm_manager_op(m, VM_OP_REMOVE_NIC, vm->rec.id,
			     &(struct vm_op_args){.config = &c, .nic = i}, fn, userdata, err);
}
