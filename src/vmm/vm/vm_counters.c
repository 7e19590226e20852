/* Device counters of the running VMs, for GetMetrics: one vm.counters call per hypervisor, all
 * in flight at once on a ch_client of the collection's own (so that nothing here outlives or
 * touches the lifecycle's requests), each with its own timeout. The collection copies what it
 * needs of each VM when it begins and frees itself after calling back. Reads struct vm and the
 * registry only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "hypervisor/ch_vm.h"
#include "vm/vm_internal.h"

struct collect;

struct collect_item {
	struct collect *c;
	size_t i;
	char *socket; /* the VM's API socket, copied */
	struct ch_request *req;
};

struct collect {
	struct ch_client *ch;
	sd_event_source *defer; /* answers on the loop when nothing is in flight */
	vm_counters_fn fn;
	void *userdata;
	struct vm_counters *vms;
	struct collect_item *items;
	size_t n, pending;
	size_t alloc; /* of the counters of the item being parsed */
};

static void collect_free(struct collect *c)
{
	if (!c)
		return;
	ch_client_free(c->ch);
	sd_event_source_disable_unref(c->defer);
	for (size_t i = 0; i < c->n; i++) {
		free(c->vms[i].vm);
		free(c->vms[i].v);
		free(c->items[i].socket);
	}
	free(c->vms);
	free(c->items);
	free(c);
}

static void collect_done(struct collect *c)
{
	c->fn(c->userdata, c->vms, c->n);
	collect_free(c);
}

static int on_defer(sd_event_source *s, void *userdata)
{
	(void)s;
	collect_done(userdata);
	return 0;
}

static int add_counter(void *userdata, const char *device, const char *name, uint64_t value)
{
	struct collect_item *it = userdata;
	struct vm_counters *vc = &it->c->vms[it->i];
	struct vm_device_counter *d;

	/* ids and names are short upstream; a longer one is left out rather than cut */
	if (strlen(device) >= sizeof(d->device) || strlen(name) >= sizeof(d->name))
		return 0;
	if (vc->n == it->c->alloc) {
		size_t na = it->c->alloc ? it->c->alloc * 2 : 16;
		d = reallocarray(vc->v, na, sizeof(*d));
		if (!d)
			return -ENOMEM;
		vc->v = d;
		it->c->alloc = na;
	}
	d = &vc->v[vc->n++];
	snprintf(d->device, sizeof(d->device), "%s", device);
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->value = value;
	return 0;
}

static void on_reply(void *userdata, const struct ch_reply *reply)
{
	struct collect_item *it = userdata;
	struct collect *c = it->c;
	struct vm_counters *vc = &c->vms[it->i];

	it->req = NULL;
	c->alloc = 0;
	if (ch_reply_ok(reply) && ch_vm_counters_parse(reply->body, add_counter, it) >= 0) {
		vc->up = true;
	} else {
		free(vc->v);
		vc->v = NULL;
		vc->n = 0;
	}
	if (--c->pending == 0)
		collect_done(c); /* frees c->ch from inside its callback: allowed */
}

static bool has_counters(const struct vm *v)
{
	return v->proc && v->run.api_socket &&
	       (v->rec.state == VM_STATE_RUNNING || v->rec.state == VM_STATE_PAUSED);
}

int vm_manager_collect_counters(struct vm_manager *m, uint64_t timeout_ms, vm_counters_fn fn,
				void *userdata)
{
	struct collect *c = calloc(1, sizeof(*c));
	size_t n = 0;
	int r = -ENOMEM;

	if (!c)
		return -ENOMEM;
	c->fn = fn;
	c->userdata = userdata;
	for (size_t i = 0; i < m->n_vms; i++)
		n += has_counters(m->vms[i]);
	if (n > 0) {
		c->vms = calloc(n, sizeof(*c->vms));
		c->items = calloc(n, sizeof(*c->items));
		if (!c->vms || !c->items)
			goto fail;
	}
	if ((r = ch_client_new(m->event, &c->ch)) < 0)
		goto fail;
	for (size_t i = 0; i < m->n_vms; i++) {
		const struct vm *v = m->vms[i];

		if (!has_counters(v))
			continue;
		c->items[c->n] = (struct collect_item){.c = c, .i = c->n};
		c->vms[c->n].vm = strdup(v->rec.name);
		c->items[c->n].socket = strdup(v->run.api_socket);
		c->n++;
		if (!c->vms[c->n - 1].vm || !c->items[c->n - 1].socket) {
			r = -ENOMEM;
			goto fail;
		}
	}
	/* All names are copied before the first request starts: a failure above leaves none
	 * running. A request that cannot start leaves its VM !up. */
	for (size_t i = 0; i < c->n; i++)
		if (ch_vm_counters(c->ch, c->items[i].socket, timeout_ms, on_reply, &c->items[i],
				   &c->items[i].req) >= 0)
			c->pending++;
	if (c->pending == 0 && (r = sd_event_add_defer(m->event, &c->defer, on_defer, c)) < 0)
		goto fail;
	return 0;
fail:
	collect_free(c);
	return r;
}
