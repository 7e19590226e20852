/* See api_convert.h. The protobuf-c side of the VM data model.
 *
 * Conventions: in a message built here an unset string is protobuf_c_empty_string (never freed),
 * every other pointer is heap memory owned by the message tree and released by
 * api_convert_vm_pb_done(). In the plain structs an empty string is NULL. Enum values cross
 * unchanged, known or not: validate.c decides what is acceptable. */
#include "api/api_convert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/macro.h"

#define USEC_PER_SEC INT64_C(1000000)
#define NSEC_PER_USEC 1000

/* "" and NULL both mean unset in the plain structs. */
static int str_from_pb(const char *s, char **ret)
{
	*ret = NULL;
	if (isempty(s))
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int str_to_pb(const char *s, char **ret)
{
	*ret = (char *)protobuf_c_empty_string;
	if (isempty(s))
		return 0;
	*ret = strdup(s);
	if (!*ret) {
		*ret = (char *)protobuf_c_empty_string;
		return -ENOMEM;
	}
	return 0;
}

static void str_pb_free(char **s)
{
	if (*s != protobuf_c_empty_string)
		free(*s);
	*s = (char *)protobuf_c_empty_string;
}

int api_convert_config_from_pb(const Mvirt__VmConfig *pb, struct vm_config *ret)
{
	struct vm_config c = {};

	if (!pb) {
		*ret = c;
		return 0;
	}
	c.vcpus = pb->vcpus;
	c.memory_mb = pb->memory_mb;
	c.autostart = pb->autostart;
	c.autostart_order = pb->autostart_order;
	if (str_from_pb(pb->kernel, &c.kernel) < 0 ||
	    str_from_pb(pb->initramfs, &c.initramfs) < 0 ||
	    str_from_pb(pb->cmdline, &c.cmdline) < 0 ||
	    str_from_pb(pb->firmware, &c.firmware) < 0 || str_from_pb(pb->disk, &c.disk) < 0 ||
	    str_from_pb(pb->user_data, &c.user_data) < 0 ||
	    str_from_pb(pb->meta_data, &c.meta_data) < 0 ||
	    str_from_pb(pb->network_config, &c.network_config) < 0)
		goto fail;
	if (pb->n_disks > 0) {
		c.disks = calloc(pb->n_disks, sizeof(*c.disks));
		if (!c.disks)
			goto fail;
		c.n_disks = pb->n_disks;
		for (size_t i = 0; i < pb->n_disks; i++) {
			const Mvirt__Disk *d = pb->disks[i];

			c.disks[i].readonly = d->readonly;
			c.disks[i].format = (enum disk_format)d->format;
			if (str_from_pb(d->path, &c.disks[i].path) < 0 ||
			    str_from_pb(d->volume, &c.disks[i].volume) < 0)
				goto fail;
		}
	}
	if (pb->n_nics > 0) {
		c.nics = calloc(pb->n_nics, sizeof(*c.nics));
		if (!c.nics)
			goto fail;
		c.n_nics = pb->n_nics;
		for (size_t i = 0; i < pb->n_nics; i++) {
			const Mvirt__Nic *n = pb->nics[i];

			if (str_from_pb(n->tap, &c.nics[i].tap) < 0 ||
			    str_from_pb(n->network, &c.nics[i].network) < 0 ||
			    str_from_pb(n->mac, &c.nics[i].mac) < 0)
				goto fail;
		}
	}
	*ret = c;
	return 0;
fail:
	vmdef_config_done(&c);
	memset(ret, 0, sizeof(*ret));
	return -ENOMEM;
}

void api_convert_timestamp(int64_t us, Google__Protobuf__Timestamp *ts)
{
	int64_t sec = us / USEC_PER_SEC, rem = us % USEC_PER_SEC;

	if (rem < 0) {
		sec--;
		rem += USEC_PER_SEC;
	}
	*ts = (Google__Protobuf__Timestamp)GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ts->seconds = sec;
	ts->nanos = (int32_t)(rem * NSEC_PER_USEC);
}

static Google__Protobuf__Timestamp *timestamp_new(int64_t us)
{
	Google__Protobuf__Timestamp *ts = malloc(sizeof(*ts));

	if (ts)
		api_convert_timestamp(us, ts);
	return ts;
}

static Mvirt__Disk *disk_to_pb(const struct vm_disk *d)
{
	Mvirt__Disk *pb = malloc(sizeof(*pb));

	if (!pb)
		return NULL;
	*pb = (Mvirt__Disk)MVIRT__DISK__INIT;
	pb->readonly = d->readonly;
	pb->format = (Mvirt__DiskFormat)d->format;
	if (str_to_pb(d->path, &pb->path) < 0 || str_to_pb(d->volume, &pb->volume) < 0) {
		str_pb_free(&pb->path);
		free(pb);
		return NULL;
	}
	return pb;
}

static void disk_pb_free(Mvirt__Disk *pb)
{
	if (!pb)
		return;
	str_pb_free(&pb->path);
	str_pb_free(&pb->volume);
	free(pb);
}

static Mvirt__Nic *nic_to_pb(const struct vm_nic *n)
{
	Mvirt__Nic *pb = malloc(sizeof(*pb));

	if (!pb)
		return NULL;
	*pb = (Mvirt__Nic)MVIRT__NIC__INIT;
	if (str_to_pb(n->tap, &pb->tap) < 0 || str_to_pb(n->network, &pb->network) < 0 ||
	    str_to_pb(n->mac, &pb->mac) < 0) {
		str_pb_free(&pb->tap);
		str_pb_free(&pb->network);
		str_pb_free(&pb->mac);
		free(pb);
		return NULL;
	}
	return pb;
}

static void nic_pb_free(Mvirt__Nic *pb)
{
	if (!pb)
		return;
	str_pb_free(&pb->tap);
	str_pb_free(&pb->network);
	str_pb_free(&pb->mac);
	free(pb);
}

static void config_pb_free(Mvirt__VmConfig *pb)
{
	if (!pb)
		return;
	str_pb_free(&pb->kernel);
	str_pb_free(&pb->initramfs);
	str_pb_free(&pb->cmdline);
	str_pb_free(&pb->firmware);
	str_pb_free(&pb->disk);
	str_pb_free(&pb->user_data);
	str_pb_free(&pb->meta_data);
	str_pb_free(&pb->network_config);
	for (size_t i = 0; i < pb->n_disks; i++)
		disk_pb_free(pb->disks[i]);
	free(pb->disks);
	for (size_t i = 0; i < pb->n_nics; i++)
		nic_pb_free(pb->nics[i]);
	free(pb->nics);
	free(pb);
}

/* On failure returns NULL with nothing left allocated. */
static Mvirt__VmConfig *config_to_pb(const struct vm_config *c)
{
	Mvirt__VmConfig *pb = malloc(sizeof(*pb));

	if (!pb)
		return NULL;
	*pb = (Mvirt__VmConfig)MVIRT__VM_CONFIG__INIT;
	pb->vcpus = c->vcpus;
	pb->memory_mb = c->memory_mb;
	pb->autostart = c->autostart;
	pb->autostart_order = c->autostart_order;
	if (str_to_pb(c->kernel, &pb->kernel) < 0 || str_to_pb(c->initramfs, &pb->initramfs) < 0 ||
	    str_to_pb(c->cmdline, &pb->cmdline) < 0 || str_to_pb(c->firmware, &pb->firmware) < 0 ||
	    str_to_pb(c->disk, &pb->disk) < 0 || str_to_pb(c->user_data, &pb->user_data) < 0 ||
	    str_to_pb(c->meta_data, &pb->meta_data) < 0 ||
	    str_to_pb(c->network_config, &pb->network_config) < 0)
		goto fail;
	if (c->n_disks > 0) {
		/* calloc: a partly built array holds NULLs, which config_pb_free() skips */
		pb->disks = calloc(c->n_disks, sizeof(*pb->disks));
		if (!pb->disks)
			goto fail;
		pb->n_disks = c->n_disks;
		for (size_t i = 0; i < c->n_disks; i++)
			if (!(pb->disks[i] = disk_to_pb(&c->disks[i])))
				goto fail;
	}
	if (c->n_nics > 0) {
		pb->nics = calloc(c->n_nics, sizeof(*pb->nics));
		if (!pb->nics)
			goto fail;
		pb->n_nics = c->n_nics;
		for (size_t i = 0; i < c->n_nics; i++)
			if (!(pb->nics[i] = nic_to_pb(&c->nics[i])))
				goto fail;
	}
	return pb;
fail:
	config_pb_free(pb);
	return NULL;
}

static void nic_status_free(Mvirt__NicStatus *pb)
{
	if (!pb)
		return;
	str_pb_free(&pb->mac);
	str_pb_free(&pb->tap);
	str_pb_free(&pb->network);
	for (size_t i = 0; i < pb->n_addresses; i++)
		str_pb_free(&pb->addresses[i]);
	free(pb->addresses);
	free(pb);
}

/* The addresses leased to mac, in lease order. */
static int nic_addresses_to_pb(const char *mac, const struct api_leases *l, Mvirt__NicStatus *pb)
{
	for (size_t i = 0; l && mac && i < l->n; i++) {
		if (strcasecmp(l->v[i].mac, mac) != 0)
			continue;
		if (!pb->addresses && !(pb->addresses = calloc(l->n, sizeof(*pb->addresses))))
			return -ENOMEM;
		if (str_to_pb(l->v[i].address, &pb->addresses[pb->n_addresses]) < 0)
			return -ENOMEM;
		pb->n_addresses++;
	}
	return 0;
}

/* What a NIC of a VM with a hypervisor process is on the host: its tap (the daemon's, named
 * after the VM, for a NIC on a network). */
static Mvirt__NicStatus *nic_status_to_pb(const struct vm_record *r, size_t i,
					  const struct api_leases *leases)
{
	const struct vm_nic *n = &r->config.nics[i];
	Mvirt__NicStatus *pb = malloc(sizeof(*pb));
	char tap[16];

	if (!pb)
		return NULL;
	*pb = (Mvirt__NicStatus)MVIRT__NIC_STATUS__INIT;
	if (str_to_pb(n->mac, &pb->mac) < 0 ||
	    str_to_pb(isempty(n->network) ? n->tap : vm_nic_tap_name(n->mac, tap), &pb->tap) < 0 ||
	    str_to_pb(n->network, &pb->network) < 0 ||
	    nic_addresses_to_pb(n->mac, leases, pb) < 0) {
		nic_status_free(pb);
		return NULL;
	}
	return pb;
}

int api_convert_vm_to_pb(const struct vm_record *r, const struct api_leases *leases, Mvirt__Vm *ret)
{
	Mvirt__Vm vm = MVIRT__VM__INIT;

	vm.state = (Mvirt__VmState)r->state;
	vm.pid = r->process.pid > 0 ? (uint32_t)r->process.pid : 0;
	vm.config_version = r->config.version;
	if (str_to_pb(r->id, &vm.id) < 0 || str_to_pb(r->name, &vm.name) < 0 ||
	    str_to_pb(r->state_reason, &vm.state_reason) < 0)
		goto fail;
	if (!(vm.config = config_to_pb(&r->config)))
		goto fail;
	if (!(vm.created_at = timestamp_new(r->created_at_us)))
		goto fail;
	if (r->started_at_us != 0 && !(vm.started_at = timestamp_new(r->started_at_us)))
		goto fail;
	if (r->process.pid > 0 && r->config.n_nics > 0) {
		if (!(vm.nics = calloc(r->config.n_nics, sizeof(*vm.nics))))
			goto fail;
		for (; vm.n_nics < r->config.n_nics; vm.n_nics++)
			if (!(vm.nics[vm.n_nics] = nic_status_to_pb(r, vm.n_nics, leases)))
				goto fail;
	}
	*ret = vm;
	return 0;
fail:
	api_convert_vm_pb_done(&vm);
	*ret = vm;
	return -ENOMEM;
}

void api_convert_vm_pb_done(Mvirt__Vm *vm)
{
	if (!vm)
		return;
	str_pb_free(&vm->id);
	str_pb_free(&vm->name);
	str_pb_free(&vm->state_reason);
	config_pb_free(vm->config);
	free(vm->created_at);
	free(vm->started_at);
	for (size_t i = 0; i < vm->n_nics; i++)
		nic_status_free(vm->nics[i]);
	free(vm->nics);
	*vm = (Mvirt__Vm)MVIRT__VM__INIT;
}
