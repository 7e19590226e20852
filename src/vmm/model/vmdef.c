/* See vmdef.h. */
#include "model/vmdef.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"

/* prefix + the hex digits of mac, lowercase (at most 12). */
static const char *mac_name(const char *prefix, const char *mac, char *buf)
{
	size_t n = strlen(prefix), k = 0;

	memcpy(buf, prefix, n);
	for (const char *p = mac ? mac : ""; *p && k < 12; p++)
		if (isxdigit((unsigned char)*p)) {
			buf[n++] = (char)tolower((unsigned char)*p);
			k++;
		}
	buf[n] = '\0';
	return buf;
}

const char *vm_nic_tap_name(const char *mac, char *buf)
{
	return mac_name("mv", mac, buf);
}

const char *vm_nic_device_id(const char *mac, char *buf)
{
	return mac_name("net", mac, buf);
}

const char *vm_state_name(enum vm_state state)
{
	switch (state) {
	case VM_STATE_STOPPED:
		return "stopped";
	case VM_STATE_STARTING:
		return "starting";
	case VM_STATE_RUNNING:
		return "running";
	case VM_STATE_PAUSED:
		return "paused";
	case VM_STATE_STOPPING:
		return "stopping";
	case VM_STATE_CRASHED:
		return "crashed";
	}
	return "unknown";
}

const char *disk_format_name(enum disk_format format)
{
	switch (format) {
	case DISK_FORMAT_RAW:
		return "raw";
	case DISK_FORMAT_QCOW2:
		return "qcow2";
	case DISK_FORMAT_UNSPECIFIED:
		return "unspecified";
	}
	return "unknown";
}

int disk_format_from_name(const char *name, enum disk_format *ret)
{
	if (streq(name, "raw"))
		*ret = DISK_FORMAT_RAW;
	else if (streq(name, "qcow2"))
		*ret = DISK_FORMAT_QCOW2;
	else
		return -EINVAL;
	return 0;
}

void vmdef_config_done(struct vm_config *c)
{
	if (!c)
		return;
	free(c->kernel);
	free(c->initramfs);
	free(c->cmdline);
	free(c->firmware);
	free(c->disk);
	for (size_t i = 0; i < c->n_disks; i++) {
		free(c->disks[i].path);
		free(c->disks[i].volume);
	}
	free(c->disks);
	for (size_t i = 0; i < c->n_nics; i++) {
		free(c->nics[i].tap);
		free(c->nics[i].network);
		free(c->nics[i].mac);
	}
	free(c->nics);
	free(c->user_data);
	free(c->meta_data);
	free(c->network_config);
	memset(c, 0, sizeof(*c));
}

void vmdef_record_done(struct vm_record *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->state_reason);
	vmdef_config_done(&r->config);
	memset(r, 0, sizeof(*r));
}

void vmdef_record_free(struct vm_record *r)
{
	vmdef_record_done(r);
	free(r);
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int vmdef_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	struct vm_config c = {
		.vcpus = src->vcpus,
		.memory_mb = src->memory_mb,
		.plain_paths = src->plain_paths,
		.autostart = src->autostart,
		.autostart_order = src->autostart_order,
		.version = src->version,
	};

	if (dup_str(&c.kernel, src->kernel) < 0 || dup_str(&c.initramfs, src->initramfs) < 0 ||
	    dup_str(&c.cmdline, src->cmdline) < 0 || dup_str(&c.firmware, src->firmware) < 0 ||
	    dup_str(&c.disk, src->disk) < 0 || dup_str(&c.user_data, src->user_data) < 0 ||
	    dup_str(&c.meta_data, src->meta_data) < 0 ||
	    dup_str(&c.network_config, src->network_config) < 0)
		goto fail;
	if (src->n_disks > 0) {
		c.disks = calloc(src->n_disks, sizeof(*c.disks));
		if (!c.disks)
			goto fail;
		c.n_disks = src->n_disks;
		for (size_t i = 0; i < src->n_disks; i++) {
			c.disks[i].readonly = src->disks[i].readonly;
			c.disks[i].format = src->disks[i].format;
			if (dup_str(&c.disks[i].path, src->disks[i].path) < 0 ||
			    dup_str(&c.disks[i].volume, src->disks[i].volume) < 0)
				goto fail;
		}
	}
	if (src->n_nics > 0) {
		c.nics = calloc(src->n_nics, sizeof(*c.nics));
		if (!c.nics)
			goto fail;
		c.n_nics = src->n_nics;
		for (size_t i = 0; i < src->n_nics; i++)
			if (dup_str(&c.nics[i].tap, src->nics[i].tap) < 0 ||
			    dup_str(&c.nics[i].network, src->nics[i].network) < 0 ||
			    dup_str(&c.nics[i].mac, src->nics[i].mac) < 0)
				goto fail;
	}
	*dst = c;
	return 0;
fail:
	vmdef_config_done(&c);
	memset(dst, 0, sizeof(*dst));
	return -ENOMEM;
}

int vmdef_record_copy(struct vm_record *dst, const struct vm_record *src)
{
	struct vm_record r = {
		.state = src->state,
		.created_at_us = src->created_at_us,
		.started_at_us = src->started_at_us,
		.process = src->process,
	};

	memcpy(r.id, src->id, sizeof(r.id));
	if (dup_str(&r.name, src->name) < 0 || dup_str(&r.state_reason, src->state_reason) < 0 ||
	    vmdef_config_copy(&r.config, &src->config) < 0) {
		vmdef_record_done(&r);
		memset(dst, 0, sizeof(*dst));
		return -ENOMEM;
	}
	*dst = r;
	return 0;
}

static bool str_equal(const char *a, const char *b)
{
	return streq(strempty(a), strempty(b));
}

bool vmdef_config_equal(const struct vm_config *a, const struct vm_config *b)
{
	return a->plain_paths == b->plain_paths && a->version == b->version &&
	       vmdef_config_same_settings(a, b, true);
}

bool vmdef_config_same_settings(const struct vm_config *a, const struct vm_config *b,
				bool autostart)
{
	if (autostart && (a->autostart != b->autostart || a->autostart_order != b->autostart_order))
		return false;
	if (a->vcpus != b->vcpus || a->memory_mb != b->memory_mb ||
	    !str_equal(a->kernel, b->kernel) || !str_equal(a->initramfs, b->initramfs) ||
	    !str_equal(a->cmdline, b->cmdline) || !str_equal(a->firmware, b->firmware) ||
	    !str_equal(a->disk, b->disk) || !str_equal(a->user_data, b->user_data) ||
	    !str_equal(a->meta_data, b->meta_data) ||
	    !str_equal(a->network_config, b->network_config) || a->n_disks != b->n_disks ||
	    a->n_nics != b->n_nics)
		return false;
	for (size_t i = 0; i < a->n_disks; i++)
		if (!str_equal(a->disks[i].path, b->disks[i].path) ||
		    a->disks[i].readonly != b->disks[i].readonly ||
		    !str_equal(a->disks[i].volume, b->disks[i].volume) ||
		    a->disks[i].format != b->disks[i].format)
			return false;
	for (size_t i = 0; i < a->n_nics; i++)
		if (!str_equal(a->nics[i].tap, b->nics[i].tap) ||
		    !str_equal(a->nics[i].network, b->nics[i].network) ||
		    !str_equal(a->nics[i].mac, b->nics[i].mac))
			return false;
	return true;
}

bool vmdef_record_equal(const struct vm_record *a, const struct vm_record *b)
{
	return streq(a->id, b->id) && str_equal(a->name, b->name) && a->state == b->state &&
	       str_equal(a->state_reason, b->state_reason) &&
	       a->created_at_us == b->created_at_us && a->started_at_us == b->started_at_us &&
	       a->process.pid == b->process.pid && a->process.starttime == b->process.starttime &&
	       streq(a->process.boot_id, b->process.boot_id) &&
	       vmdef_config_equal(&a->config, &b->config);
}

static const struct {
	const char *name;
	uint32_t bit;
} config_fields[] = {
	{"vcpus", VM_FIELD_VCPUS},         {"memory_mb", VM_FIELD_MEMORY_MB},
	{"kernel", VM_FIELD_KERNEL},       {"initramfs", VM_FIELD_INITRAMFS},
	{"cmdline", VM_FIELD_CMDLINE},     {"firmware", VM_FIELD_FIRMWARE},
	{"disk", VM_FIELD_DISK},           {"disks", VM_FIELD_DISKS},
	{"nics", VM_FIELD_NICS},           {"user_data", VM_FIELD_USER_DATA},
	{"meta_data", VM_FIELD_META_DATA}, {"network_config", VM_FIELD_NETWORK_CONFIG},
	{"autostart", VM_FIELD_AUTOSTART}, {"autostart_order", VM_FIELD_AUTOSTART_ORDER},
};

uint32_t vmdef_config_field_from_name(const char *name)
{
	for (size_t i = 0; name && i < ELEMENTSOF(config_fields); i++)
		if (streq(config_fields[i].name, name))
			return config_fields[i].bit;
	return 0;
}

void vmdef_config_swap_fields(struct vm_config *dst, struct vm_config *src, uint32_t fields)
{
	if (fields & VM_FIELD_VCPUS)
		SWAP(dst->vcpus, src->vcpus);
	if (fields & VM_FIELD_MEMORY_MB)
		SWAP(dst->memory_mb, src->memory_mb);
	if (fields & VM_FIELD_KERNEL)
		SWAP(dst->kernel, src->kernel);
	if (fields & VM_FIELD_INITRAMFS)
		SWAP(dst->initramfs, src->initramfs);
	if (fields & VM_FIELD_CMDLINE)
		SWAP(dst->cmdline, src->cmdline);
	if (fields & VM_FIELD_FIRMWARE)
		SWAP(dst->firmware, src->firmware);
	if (fields & VM_FIELD_DISK)
		SWAP(dst->disk, src->disk);
	if (fields & VM_FIELD_DISKS) {
		SWAP(dst->disks, src->disks);
		SWAP(dst->n_disks, src->n_disks);
	}
	if (fields & VM_FIELD_NICS) {
		SWAP(dst->nics, src->nics);
		SWAP(dst->n_nics, src->n_nics);
	}
	if (fields & VM_FIELD_USER_DATA)
		SWAP(dst->user_data, src->user_data);
	if (fields & VM_FIELD_META_DATA)
		SWAP(dst->meta_data, src->meta_data);
	if (fields & VM_FIELD_NETWORK_CONFIG)
		SWAP(dst->network_config, src->network_config);
	if (fields & VM_FIELD_AUTOSTART)
		SWAP(dst->autostart, src->autostart);
	if (fields & VM_FIELD_AUTOSTART_ORDER)
		SWAP(dst->autostart_order, src->autostart_order);
}
