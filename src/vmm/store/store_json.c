/* See store_json.h. */
#include "store/store_json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"

#define STORE_JSON_KEY (JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY)

/* Adds v (owned; NULL means a failed allocation) to o under the literal key. */
static int json_add(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add_ex(o, key, v, STORE_JSON_KEY) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int json_add_str(struct json_object *o, const char *key, const char *v)
{
	return v ? json_add(o, key, json_object_new_string(v)) : 0;
}

static int json_append(struct json_object *array, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_array_add(array, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *disk_to_json(const struct vm_disk *d)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (json_add_str(o, "path", d->path) < 0 || json_add_str(o, "volume", d->volume) < 0 ||
	    json_add(o, "readonly", json_object_new_boolean(d->readonly)) < 0 ||
	    (d->format != DISK_FORMAT_UNSPECIFIED &&
	     json_add(o, "format", json_object_new_string(disk_format_name(d->format))) < 0)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *nic_to_json(const struct vm_nic *n)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (json_add_str(o, "tap", n->tap) < 0 || json_add_str(o, "network", n->network) < 0 ||
	    json_add_str(o, "mac", n->mac) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *disks_to_json(const struct vm_config *c)
{
	struct json_object *a = json_object_new_array_ext((int)c->n_disks);

	for (size_t i = 0; a && i < c->n_disks; i++)
		if (json_append(a, disk_to_json(&c->disks[i])) < 0) {
			json_object_put(a);
			return NULL;
		}
	return a;
}

static struct json_object *nics_to_json(const struct vm_config *c)
{
	struct json_object *a = json_object_new_array_ext((int)c->n_nics);

	for (size_t i = 0; a && i < c->n_nics; i++)
		if (json_append(a, nic_to_json(&c->nics[i])) < 0) {
			json_object_put(a);
			return NULL;
		}
	return a;
}

int store_config_to_json(const struct vm_config *c, struct json_object **ret)
{
	_cleanup_(json_putp) struct json_object *o = json_object_new_object();

	if (!o || json_add(o, "vcpus", json_object_new_int64(c->vcpus)) < 0 ||
	    json_add(o, "memory_mb", json_object_new_uint64(c->memory_mb)) < 0 ||
	    json_add_str(o, "kernel", c->kernel) < 0 ||
	    json_add_str(o, "initramfs", c->initramfs) < 0 ||
	    json_add_str(o, "cmdline", c->cmdline) < 0 ||
	    json_add_str(o, "firmware", c->firmware) < 0 || json_add_str(o, "disk", c->disk) < 0 ||
	    json_add(o, "disks", disks_to_json(c)) < 0 ||
	    json_add(o, "nics", nics_to_json(c)) < 0 ||
	    json_add_str(o, "user_data", c->user_data) < 0 ||
	    json_add_str(o, "meta_data", c->meta_data) < 0 ||
	    json_add_str(o, "network_config", c->network_config) < 0 ||
	    (c->plain_paths &&
	     json_add(o, "plain_paths", json_object_new_int64(c->plain_paths)) < 0) ||
	    (c->autostart && json_add(o, "autostart", json_object_new_boolean(true)) < 0) ||
	    (c->autostart_order &&
	     json_add(o, "autostart_order", json_object_new_int64(c->autostart_order)) < 0) ||
	    (c->version && json_add(o, "version", json_object_new_uint64(c->version)) < 0))
		return -ENOMEM;
	*ret = TAKE_PTR(o);
	return 0;
}

/* Readers: 0, -ENOMEM, or -EBADMSG when the member has the wrong type or range. An absent
 * member (or JSON null) reads as NULL / 0 / false. */
static int json_get_str(struct json_object *o, const char *key, char **ret)
{
	struct json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -EBADMSG;
	*ret = strdup(json_object_get_string(v));
	return *ret ? 0 : -ENOMEM;
}

static int json_get_bool(struct json_object *o, const char *key, bool *ret)
{
	struct json_object *v;

	*ret = false;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return -EBADMSG;
	*ret = json_object_get_boolean(v);
	return 0;
}

static int json_get_u64(struct json_object *o, const char *key, uint64_t max, uint64_t *ret)
{
	struct json_object *v;

	*ret = 0;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
	    json_object_get_uint64(v) > max)
		return -EBADMSG;
	*ret = json_object_get_uint64(v);
	return 0;
}

/* Returns the array member key (NULL when absent), or sets *bad when it is not an array. */
static struct json_object *json_get_array(struct json_object *o, const char *key, bool *bad)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	if (!json_object_is_type(v, json_type_array))
		*bad = true;
	return *bad ? NULL : v;
}

static int disk_from_json(struct json_object *o, struct vm_disk *d)
{
	_cleanup_free_ char *format = NULL;
	int r;

	if (!json_object_is_type(o, json_type_object))
		return -EBADMSG;
	if ((r = json_get_str(o, "path", &d->path)) < 0 ||
	    (r = json_get_str(o, "volume", &d->volume)) < 0 ||
	    (r = json_get_bool(o, "readonly", &d->readonly)) < 0 ||
	    (r = json_get_str(o, "format", &format)) < 0)
		return r;
	d->format = DISK_FORMAT_UNSPECIFIED;
	if (format && disk_format_from_name(format, &d->format) < 0)
		return -EBADMSG;
	return 0;
}

static int nic_from_json(struct json_object *o, struct vm_nic *n)
{
	int r;

	if (!json_object_is_type(o, json_type_object))
		return -EBADMSG;
	if ((r = json_get_str(o, "tap", &n->tap)) < 0 ||
	    (r = json_get_str(o, "network", &n->network)) < 0 ||
	    (r = json_get_str(o, "mac", &n->mac)) < 0)
		return r;
	return 0;
}

/* Sets *ret_field to field, then returns from the caller (which has int r and const char
 * **ret_field) if call fails. */
#define GET(field, call)                                                                           \
	do {                                                                                       \
		*ret_field = field;                                                                \
		if ((r = (call)) < 0)                                                              \
			return r;                                                                  \
	} while (0)

/* Fills c (zeroed here, freed by the caller also on failure) from a parsed config;
 * on -EBADMSG, *ret_field names the offending member. */
int store_config_from_json(struct json_object *o, struct vm_config *c, const char **ret_field)
{
	struct json_object *disks, *nics;
	bool bad = false;
	uint64_t vcpus, plain, order;
	int r;

	*c = (struct vm_config){};

	GET("config", json_object_is_type(o, json_type_object) ? 0 : -EBADMSG);
	GET("vcpus", json_get_u64(o, "vcpus", UINT32_MAX, &vcpus));
	c->vcpus = (uint32_t)vcpus;
	GET("memory_mb", json_get_u64(o, "memory_mb", UINT64_MAX, &c->memory_mb));
	GET("kernel", json_get_str(o, "kernel", &c->kernel));
	GET("initramfs", json_get_str(o, "initramfs", &c->initramfs));
	GET("cmdline", json_get_str(o, "cmdline", &c->cmdline));
	GET("firmware", json_get_str(o, "firmware", &c->firmware));
	GET("disk", json_get_str(o, "disk", &c->disk));
	GET("user_data", json_get_str(o, "user_data", &c->user_data));
	GET("meta_data", json_get_str(o, "meta_data", &c->meta_data));
	GET("network_config", json_get_str(o, "network_config", &c->network_config));
	GET("plain_paths", json_get_u64(o, "plain_paths", UINT32_MAX, &plain));
	c->plain_paths = (uint32_t)plain;
	GET("autostart", json_get_bool(o, "autostart", &c->autostart));
	GET("autostart_order", json_get_u64(o, "autostart_order", UINT32_MAX, &order));
	c->autostart_order = (uint32_t)order;
	GET("version", json_get_u64(o, "version", UINT64_MAX, &c->version));
	disks = json_get_array(o, "disks", &bad);
	GET("disks", bad ? -EBADMSG : 0);
	nics = json_get_array(o, "nics", &bad);
	GET("nics", bad ? -EBADMSG : 0);

	*ret_field = "disks";
	if (disks && json_object_array_length(disks) > 0) {
		size_t n = json_object_array_length(disks);

		if (!(c->disks = calloc(n, sizeof(*c->disks))))
			return -ENOMEM;
		for (; c->n_disks < n; c->n_disks++)
			if ((r = disk_from_json(json_object_array_get_idx(disks, c->n_disks),
						&c->disks[c->n_disks])) < 0) {
				c->n_disks++;
				return r;
			}
	}
	*ret_field = "nics";
	if (nics && json_object_array_length(nics) > 0) {
		size_t n = json_object_array_length(nics);

		if (!(c->nics = calloc(n, sizeof(*c->nics))))
			return -ENOMEM;
		for (; c->n_nics < n; c->n_nics++)
			if ((r = nic_from_json(json_object_array_get_idx(nics, c->n_nics),
					       &c->nics[c->n_nics])) < 0) {
				c->n_nics++;
				return r;
			}
	}
	return 0;
}

/* --- network configs ------------------------------------------------------------------------ */

/* The modes as stored: exactly the enum's names (NET_MODE_UNSPECIFIED has none: it is
 * omitted, unlike in net_mode_name(), so that it reads back as what was written). */
static const char *const net_mode_names[] = {
	[NET_MODE_NAT] = "nat",
	[NET_MODE_ISOLATED] = "isolated",
	[NET_MODE_BRIDGE] = "bridge",
};

int store_net_config_to_json(const struct net_config *c, struct json_object **ret)
{
	_cleanup_(json_putp) struct json_object *o = json_object_new_object();
	const char *mode =
		(size_t)c->mode < ELEMENTSOF(net_mode_names) ? net_mode_names[c->mode] : NULL;

	if (!o || json_add_str(o, "mode", mode) < 0 || json_add_str(o, "bridge", c->bridge) < 0 ||
	    json_add_str(o, "ipv4_subnet", c->ipv4_subnet) < 0 ||
	    json_add_str(o, "dhcp_start", c->dhcp_start) < 0 ||
	    json_add_str(o, "dhcp_end", c->dhcp_end) < 0 ||
	    json_add_str(o, "ipv6_prefix", c->ipv6_prefix) < 0 ||
	    json_add_str(o, "domain", c->domain) < 0)
		return -ENOMEM;
	*ret = TAKE_PTR(o);
	return 0;
}

static int net_mode_from_name(const char *name, enum net_mode *ret)
{
	for (size_t i = 0; i < ELEMENTSOF(net_mode_names); i++)
		if (net_mode_names[i] && streq(net_mode_names[i], name)) {
			*ret = (enum net_mode)i;
			return 0;
		}
	return -EBADMSG;
}

/* Fills c (zeroed here, freed by the caller also on failure) from a parsed network config;
 * on -EBADMSG, *ret_field names the offending member. */
int store_net_config_from_json(struct json_object *o, struct net_config *c, const char **ret_field)
{
	_cleanup_free_ char *mode = NULL;
	int r;

	*c = (struct net_config){};

	GET("config", json_object_is_type(o, json_type_object) ? 0 : -EBADMSG);
	GET("mode", json_get_str(o, "mode", &mode));
	GET("mode", mode ? net_mode_from_name(mode, &c->mode) : 0);
	GET("bridge", json_get_str(o, "bridge", &c->bridge));
	GET("ipv4_subnet", json_get_str(o, "ipv4_subnet", &c->ipv4_subnet));
	GET("dhcp_start", json_get_str(o, "dhcp_start", &c->dhcp_start));
	GET("dhcp_end", json_get_str(o, "dhcp_end", &c->dhcp_end));
	GET("ipv6_prefix", json_get_str(o, "ipv6_prefix", &c->ipv6_prefix));
	GET("domain", json_get_str(o, "domain", &c->domain));
	return 0;
}
