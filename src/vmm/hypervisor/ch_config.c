/* See ch_config.h. Builds cloud-hypervisor's VmConfig (openapi v54) as a json-c tree, one
 * static function per section, then prints it plain with slashes unescaped. Every key emitted
 * exists in the v54 schema (tests/unit/golden/check_schema.py checks the golden files against
 * it); optional members that are unset are omitted, so cloud-hypervisor applies its defaults.
 * Called by the VM manager just before `vm.create`. */
#include "hypervisor/ch_config.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdint.h>

#include "common/macro.h"

static void json_putp(struct json_object **p)
{
	json_object_put(*p);
}
#define _cleanup_json_ _cleanup_(json_putp)

/* Adds val (owned; NULL means it could not be allocated) to obj under key. */
static int add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

static int add_string(struct json_object *obj, const char *key, const char *s)
{
	return add(obj, key, json_object_new_string(s));
}

/* Like add_string, but leaves the member out when s is NULL or "". */
static int add_string_opt(struct json_object *obj, const char *key, const char *s)
{
	return isempty(s) ? 0 : add_string(obj, key, s);
}

static int append(struct json_object *arr, struct json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_array_add(arr, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

/* {"boot_vcpus": n, "max_vcpus": n}: no CPU hotplug, so both are the configured count. */
static int config_cpus(const struct vm_config *c, struct json_object **ret, struct mv_error *err)
{
	_cleanup_json_ struct json_object *o = NULL;
	int r;

	if (c->vcpus < 1)
		return mv_err_invalid(err, "config.vcpus: must be at least 1");
	if (!(o = json_object_new_object()))
		return -ENOMEM;
	if ((r = add(o, "boot_vcpus", json_object_new_int64(c->vcpus))) < 0 ||
	    (r = add(o, "max_vcpus", json_object_new_int64(c->vcpus))) < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
}

/* {"size": bytes}. The schema's size is an int64, so memory_mb must fit once shifted. */
static int config_memory(const struct vm_config *c, struct json_object **ret, struct mv_error *err)
{
	_cleanup_json_ struct json_object *o = NULL;
	int r;

	if (c->memory_mb < 1)
		return mv_err_invalid(err, "config.memory_mb: must be at least 1");
	if (c->memory_mb > (uint64_t)INT64_MAX >> 20)
		return mv_err_invalid(err, "config.memory_mb: %" PRIu64 " MiB is too large",
				      c->memory_mb);
	if (!(o = json_object_new_object()))
		return -ENOMEM;
	if ((r = add(o, "size", json_object_new_int64((int64_t)(c->memory_mb << 20)))) < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
}

/* The path the hypervisor opens for a file of the config: launch's in place of it, if any. */
static const char *payload_path(const char *over, const char *path)
{
	return isempty(path) ? path : over ? over : path;
}

/* {"kernel", "initramfs"?, "cmdline"?} for a direct kernel boot, or {"firmware"}. */
static int config_payload(const struct ch_launch *launch, struct json_object **ret,
			  struct mv_error *err)
{
	_cleanup_json_ struct json_object *o = NULL;
	const struct vm_config *c = launch->config;
	int r;

	if (!isempty(c->kernel) && !isempty(c->firmware))
		return mv_err_invalid(err,
				      "config.firmware: cannot be combined with config.kernel");
	if (isempty(c->kernel) && isempty(c->firmware))
		return mv_err_invalid(err, "config: set kernel or firmware");
	if (!(o = json_object_new_object()))
		return -ENOMEM;
	if (!isempty(c->kernel)) {
		if ((r = add_string(o, "kernel", payload_path(launch->kernel, c->kernel))) < 0 ||
		    (r = add_string_opt(o, "initramfs",
					payload_path(launch->initramfs, c->initramfs))) < 0 ||
		    (r = add_string_opt(o, "cmdline", c->cmdline)) < 0)
			return r;
	} else if ((r = add_string(o, "firmware", payload_path(launch->firmware, c->firmware))) < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
}

/* One DiskConfig: {"path", "readonly"? (only when true), "image_type", "backing_files"?}.
 * image_type is always explicit (a guessed raw image gets sector 0 write-protected);
 * backing_files only for qcow2 overlays (it lets the image name a host file to open). */
static int config_disk(const struct ch_disk *d, size_t i, struct json_object **ret,
		       struct mv_error *err)
{
	_cleanup_json_ struct json_object *o = NULL;
	const char *image_type;
	int r;

	if (isempty(d->path))
		return mv_err_invalid(err, "disk %zu: no path", i);
	switch (d->format) {
	case DISK_FORMAT_RAW:
		image_type = "Raw";
		break;
	case DISK_FORMAT_QCOW2:
		image_type = "Qcow2";
		break;
	default:
		return mv_err_invalid(err, "disk %zu (%s): format %s is not resolved", i, d->path,
				      disk_format_name(d->format));
	}
	if (!(o = json_object_new_object()))
		return -ENOMEM;
	if ((r = add_string(o, "path", d->path)) < 0)
		return r;
	if (d->readonly && (r = add(o, "readonly", json_object_new_boolean(true))) < 0)
		return r;
	if ((r = add_string(o, "image_type", image_type)) < 0)
		return r;
	if (d->format == DISK_FORMAT_QCOW2 && d->backing_files &&
	    (r = add(o, "backing_files", json_object_new_boolean(true))) < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
}

/* [DiskConfig...] in the caller's order, or NULL in *ret when there are no disks. */
static int config_disks(const struct ch_launch *l, struct json_object **ret, struct mv_error *err)
{
	_cleanup_json_ struct json_object *arr = NULL;
	size_t i;
	int r;

	*ret = NULL;
	if (l->n_disks == 0)
		return 0;
	if (!(arr = json_object_new_array()))
		return -ENOMEM;
	for (i = 0; i < l->n_disks; i++) {
		struct json_object *d = NULL;

		if ((r = config_disk(&l->disks[i], i, &d, err)) < 0 || (r = append(arr, d)) < 0)
			return r;
	}
	*ret = TAKE_PTR(arr);
	return 0;
}

/* {"id"?, "tap"?, "mac"?} of a NIC. */
static int net_object(const struct vm_nic *nic, struct json_object **ret)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();
	char id[16];
	int r;

	if (!o)
		return -ENOMEM;
	/* no MAC (only in unit tests: the daemon gives every NIC one), no id: CH picks both */
	if ((!isempty(nic->mac) && (r = add_string(o, "id", vm_nic_device_id(nic->mac, id))) < 0) ||
	    (isempty(nic->network) && (r = add_string(o, "tap", nic->tap)) < 0) ||
	    (r = add_string_opt(o, "mac", nic->mac)) < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
}

/* [NetConfig...]: {"id", "tap", "mac"?} per tap NIC, or NULL in *ret when there is none. NICs on
 * mvirt networks are left out: their taps are fds, which vm.create does not take; they are
 * added with vm.add-net (ch_config_net_json) before vm.boot. */
static int config_net(const struct vm_config *c, struct json_object **ret, struct mv_error *err)
{
	_cleanup_json_ struct json_object *arr = NULL;
	size_t i;
	int r;

	*ret = NULL;
	for (i = 0; i < c->n_nics; i++) {
		const struct vm_nic *n = &c->nics[i];
		_cleanup_json_ struct json_object *o = NULL;

		if (!isempty(n->network))
			continue;
		if (isempty(n->tap))
			return mv_err_invalid(err, "config.nics[%zu]: set tap or network", i);
		if (!arr && !(arr = json_object_new_array()))
			return -ENOMEM;
		if ((r = net_object(n, &o)) < 0)
			return r;
		if ((r = append(arr, TAKE_PTR(o))) < 0)
			return r;
	}
	*ret = TAKE_PTR(arr);
	return 0;
}

int ch_config_net_json(const struct vm_nic *nic, char **ret)
{
	_cleanup_json_ struct json_object *o = NULL;
	const char *s;
	int r;

	if ((r = net_object(nic, &o)) < 0)
		return r;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (!s || !(*ret = strdup(s)))
		return -ENOMEM;
	return 0;
}

/* {"mode": "Socket", "socket": path}: cloud-hypervisor listens there, the daemon connects. */
static int config_serial(const struct ch_launch *l, struct json_object **ret, struct mv_error *err)
{
	_cleanup_json_ struct json_object *o = NULL;
	int r;

	if (isempty(l->serial_socket))
		return mv_err_invalid(err, "serial socket path is not set");
	if (!(o = json_object_new_object()))
		return -ENOMEM;
	if ((r = add_string(o, "mode", "Socket")) < 0 ||
	    (r = add_string(o, "socket", l->serial_socket)) < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
}

/* {"mode": "Off"}: the default (Tty) would take over the daemon's terminal. */
static int config_console(struct json_object **ret)
{
	_cleanup_json_ struct json_object *o = NULL;
	int r;

	if (!(o = json_object_new_object()))
		return -ENOMEM;
	if ((r = add_string(o, "mode", "Off")) < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
}

int ch_config_json(const struct ch_launch *launch, char **ret, struct mv_error *err)
{
	_cleanup_json_ struct json_object *root = NULL;
	const struct vm_config *c = launch->config;
	struct json_object *cpus = NULL, *memory = NULL, *payload = NULL, *disks = NULL,
			   *net = NULL, *serial = NULL, *console = NULL;
	const char *text;
	char *s;
	int r;

	if (!(root = json_object_new_object()))
		return -ENOMEM;
	if ((r = config_cpus(c, &cpus, err)) < 0 || (r = add(root, "cpus", cpus)) < 0)
		return r;
	if ((r = config_memory(c, &memory, err)) < 0 || (r = add(root, "memory", memory)) < 0)
		return r;
	if ((r = config_payload(launch, &payload, err)) < 0 ||
	    (r = add(root, "payload", payload)) < 0)
		return r;
	if ((r = config_disks(launch, &disks, err)) < 0 ||
	    (disks && (r = add(root, "disks", disks)) < 0))
		return r;
	if ((r = config_net(c, &net, err)) < 0 || (net && (r = add(root, "net", net)) < 0))
		return r;
	if ((r = config_serial(launch, &serial, err)) < 0 || (r = add(root, "serial", serial)) < 0)
		return r;
	if ((r = config_console(&console)) < 0 || (r = add(root, "console", console)) < 0)
		return r;
	if ((r = add(root, "pvpanic", json_object_new_boolean(true))) < 0)
		return r;

	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text || !(s = strdup(text)))
		return -ENOMEM;
	*ret = s;
	return 0;
}
