/* See vm_registry.h. The registry is an array of records sorted by name: binary search by name,
 * a scan by id (UUIDs are compared with memcmp; 1,000 VMs scan in microseconds), and ListVms
 * walks it in order without sorting. Watches are a list; an event is delivered to each in
 * turn, and a watch may remove itself or the next one while that runs. */
#include "vm/vm_registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/utf8.h"
#include "network/network.h"
#include "store/store.h"

struct vm *vm_new(struct vm_manager *m)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->m = m;
	vm->run.events_fd = -1;
	return vm;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	vmdef_record_done(&vm->rec);
	free(vm);
}

ssize_t vm_registry_find_name(const struct vm_manager *m, const char *name)
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

struct vm *vm_registry_find_mac(struct vm_manager *m, const char *mac, const struct vm *except,
				size_t *ret_nic)
{
	if (isempty(mac))
		return NULL;
	for (size_t i = 0; i < m->n_vms; i++) {
		const struct vm_config *c = &m->vms[i]->rec.config;

		if (m->vms[i] == except)
			continue;
		for (size_t k = 0; k < c->n_nics; k++)
			if (c->nics[k].mac && strcasecmp(c->nics[k].mac, mac) == 0) {
				if (ret_nic)
					*ret_nic = k;
				return m->vms[i];
			}
	}
	return NULL;
}

struct vm *vm_registry_find(struct vm_manager *m, const char *ref)
{
	ssize_t i;

	if (isempty(ref))
		return NULL;
	if (strlen(ref) == VM_ID_LEN)
		for (size_t j = 0; j < m->n_vms; j++)
			if (memcmp(m->vms[j]->rec.id, ref, VM_ID_LEN) == 0)
				return m->vms[j];
	i = vm_registry_find_name(m, ref);
	return i >= 0 ? m->vms[i] : NULL;
}

int vm_registry_lookup(struct vm_manager *m, const char *ref, const char *field, struct vm **ret,
		       struct mv_error *err)
{
	struct vm *vm;

	if (isempty(ref))
		return mv_err_invalid(err, "%s: required (a VM id or name)", field);
	vm = vm_registry_find(m, ref);
	if (!vm)
		return mv_err_not_found(err, "vm '%s' not found", ref);
	*ret = vm;
	return 0;
}

int vm_registry_reserve(struct vm_manager *m)
{
	size_t n;
	struct vm **v;

	if (m->n_vms < m->n_alloc)
		return 0;
	n = m->n_alloc ? m->n_alloc * 2 : 64;
	v = reallocarray(m->vms, n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->vms = v;
	m->n_alloc = n;
	return 0;
}

int vm_registry_insert(struct vm_manager *m, size_t pos, struct vm *vm)
{
	int r = vm_registry_reserve(m);

	if (r < 0)
		return r;
	memmove(m->vms + pos + 1, m->vms + pos, (m->n_vms - pos) * sizeof(*m->vms));
	m->vms[pos] = vm;
	m->n_vms++;
	return 0;
}

void vm_registry_remove(struct vm_manager *m, struct vm *vm)
{
	for (size_t i = 0; i < m->n_vms; i++)
		if (m->vms[i] == vm) {
			memmove(m->vms + i, m->vms + i + 1, (m->n_vms - i - 1) * sizeof(*m->vms));
			m->n_vms--;
			return;
		}
}

const struct vm_record *vm_manager_find(struct vm_manager *m, const char *ref)
{
	struct vm *vm = vm_registry_find(m, ref);

	return vm ? &vm->rec : NULL;
}

int vm_manager_lookup(struct vm_manager *m, const char *ref, const char *field,
		      const struct vm_record **ret, struct mv_error *err)
{
	struct vm *vm;
	int r = vm_registry_lookup(m, ref, field, &vm, err);

	if (r < 0)
		return r;
	*ret = &vm->rec;
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

/* ---- persistence ---- */

static int save(struct vm *vm, bool runtime_only)
{
	struct mv_error err = {0};
	int r = runtime_only ? store_vm_save_runtime(vm->m->store, &vm->rec, &err)
			     : store_vm_save(vm->m->store, &vm->rec, &err);

	if (r < 0)
		log_error_errno(r, "vm %s: cannot save its state: %s", vm->rec.name, err.msg);
	return r;
}

int vm_save(struct vm *vm)
{
	return save(vm, false);
}

int vm_save_state(struct vm *vm)
{
	return save(vm, true);
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
		/* it may quote a hypervisor's words: stored and served, so valid UTF-8 */
		vm->rec.state_reason = utf8_sanitize(reason);
	}
	if (vm->rec.state != state)
		log_info("vm %s: %s (%s)", vm->rec.name, vm_state_name(state),
			 strempty(vm->rec.state_reason));
	vm->rec.state = state;
	(void)vm_save_state(vm);
	vm_emit(vm, type);
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

/* ---- events ---- */

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
	struct vm_event ev = {.type = type,
			      .vm = &vm->rec,
			      .time_us = clock_real_us(),
			      .sequence = ++m->event_sequence};

	/* Each watch may remove itself or the next one. */
	for (struct vm_watch *w = m->watches; w; w = m->dispatch_next) {
		m->dispatch_next = w->next;
		w->fn(w->userdata, &ev);
	}
	m->dispatch_next = NULL;
	if (type == VM_EVENT_CREATED || type == VM_EVENT_DELETED || type == VM_EVENT_CONFIG_CHANGED)
		vm_registry_sync_hosts(m);
}

static bool is_dns_label(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 63 && s[n - 1] != '-' &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* The hosts of net: at most one per VM (its first NIC there). */
static int hosts_of(struct vm_manager *m, const struct network *net, struct network_host **ret,
		    size_t *ret_n)
{
	_cleanup_free_ struct network_host *hosts = NULL;
	size_t n = 0;

	if (m->n_vms && !(hosts = calloc(m->n_vms, sizeof(*hosts))))
		return -ENOMEM;
	for (size_t i = 0; i < m->n_vms; i++) {
		const struct vm_config *c = &m->vms[i]->rec.config;

		if (!is_dns_label(m->vms[i]->rec.name))
			continue;
		for (size_t j = 0; j < c->n_nics; j++) {
			if (c->nics[j].network && c->nics[j].mac &&
			    network_find(m->networks, c->nics[j].network) == net) {
				hosts[n++] = (struct network_host){.mac = c->nics[j].mac,
								   .name = m->vms[i]->rec.name};
				break;
			}
		}
	}
	*ret = TAKE_PTR(hosts);
	*ret_n = n;
	return 0;
}

void vm_registry_sync_hosts(struct vm_manager *m)
{
	for (size_t i = 0; m->networks && i < network_count(m->networks); i++) {
		const struct network *net = network_at(m->networks, i);
		_cleanup_free_ struct network_host *hosts = NULL;
		size_t n = 0;
		int r;

		r = hosts_of(m, net, &hosts, &n);
		if (r >= 0)
			r = network_set_hosts(m->networks, net->id, hosts, n);
		if (r < 0)
			log_warning("network %s: cannot update the names of its VMs: %s", net->name,
				    strerror(-r));
	}
}
