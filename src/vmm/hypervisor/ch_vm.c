/* See ch_vm.h. The timeouts: vm.create parses the config and opens every disk and device, and
 * vm.boot loads the kernel or firmware, so both may take seconds on a loaded host; every other
 * call is a state change cloud-hypervisor answers at once. */
#include "hypervisor/ch_vm.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "common/macro.h"

#define CH_CREATE_TIMEOUT_MS 10000
#define CH_BOOT_TIMEOUT_MS 30000
#define CH_CALL_TIMEOUT_MS 5000
#define CH_DEVICE_ID_MAX 64

static int put(struct ch_client *c, const char *socket, const char *endpoint, const char *body,
	       uint64_t timeout_ms, ch_reply_fn fn, void *userdata, struct ch_request **ret)
{
	return ch_request_start(c, socket, "PUT", endpoint, body, timeout_ms, fn, userdata, ret);
}

int ch_vm_create(struct ch_client *c, const char *socket, const char *config_json, ch_reply_fn fn,
		 void *userdata, struct ch_request **ret)
{
	if (isempty(config_json))
		return -EINVAL;
	return put(c, socket, "vm.create", config_json, CH_CREATE_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vm_boot(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
	       struct ch_request **ret)
{
	return put(c, socket, "vm.boot", NULL, CH_BOOT_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vm_info(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
	       struct ch_request **ret)
{
	return ch_request_start(c, socket, "GET", "vm.info", NULL, CH_CALL_TIMEOUT_MS, fn, userdata,
				ret);
}

int ch_vm_power_button(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		       struct ch_request **ret)
{
	return put(c, socket, "vm.power-button", NULL, CH_CALL_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vm_pause(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		struct ch_request **ret)
{
	return put(c, socket, "vm.pause", NULL, CH_CALL_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vm_resume(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		 struct ch_request **ret)
{
	return put(c, socket, "vm.resume", NULL, CH_CALL_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vm_reboot(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		 struct ch_request **ret)
{
	return put(c, socket, "vm.reboot", NULL, CH_CALL_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vm_shutdown(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		   struct ch_request **ret)
{
	return put(c, socket, "vm.shutdown", NULL, CH_CALL_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vmm_shutdown(struct ch_client *c, const char *socket, ch_reply_fn fn, void *userdata,
		    struct ch_request **ret)
{
	return put(c, socket, "vmm.shutdown", NULL, CH_CALL_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vm_add_disk(struct ch_client *c, const char *socket, const char *disk_json, ch_reply_fn fn,
		   void *userdata, struct ch_request **ret)
{
	if (isempty(disk_json))
		return -EINVAL;
	return put(c, socket, "vm.add-disk", disk_json, CH_CALL_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vm_add_net(struct ch_client *c, const char *socket, const char *net_json, ch_reply_fn fn,
		  void *userdata, struct ch_request **ret)
{
	if (isempty(net_json))
		return -EINVAL;
	return put(c, socket, "vm.add-net", net_json, CH_CALL_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vm_add_net_fds(struct ch_client *c, const char *socket, const char *net_json, const int *fds,
		      size_t n_fds, ch_reply_fn fn, void *userdata, struct ch_request **ret)
{
	if (isempty(net_json) || n_fds == 0)
		return -EINVAL;
	return ch_request_start_fds(c, socket, "PUT", "vm.add-net", net_json, fds, n_fds,
				    CH_CALL_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vm_remove_device(struct ch_client *c, const char *socket, const char *id, ch_reply_fn fn,
			void *userdata, struct ch_request **ret)
{
	_cleanup_free_ char *body = NULL;
	struct json_object *o;
	size_t len = id ? strlen(id) : 0;

	if (len == 0 || len > CH_DEVICE_ID_MAX || strcspn(id, "\"\\") != len)
		return -EINVAL;
	/* VmRemoveDevice: {"id": "..."}; built by json-c, not by hand. */
	o = json_object_new_object();
	if (!o || json_object_object_add(o, "id", json_object_new_string(id)) < 0) {
		json_object_put(o);
		return -ENOMEM;
	}
	body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (!body)
		return -ENOMEM;
	return put(c, socket, "vm.remove-device", body, CH_CALL_TIMEOUT_MS, fn, userdata, ret);
}

int ch_vm_counters(struct ch_client *c, const char *socket, uint64_t timeout_ms, ch_reply_fn fn,
		   void *userdata, struct ch_request **ret)
{
	return ch_request_start(c, socket, "GET", "vm.counters", NULL, timeout_ms, fn, userdata,
				ret);
}

int ch_vm_counters_parse(const char *body, ch_counter_fn fn, void *userdata)
{
	struct json_object *root = body ? json_tokener_parse(body) : NULL;
	size_t n = 0;
	int r = 0;

	if (!root || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return -EBADMSG;
	}
	json_object_object_foreach(root, device, counters)
	{
		if (!json_object_is_type(counters, json_type_object))
			continue;
		json_object_object_foreach(counters, name, value)
		{
			if (!json_object_is_type(value, json_type_int))
				continue;
			if (++n > CH_COUNTERS_MAX) {
				r = -E2BIG;
				goto out;
			}
			/* counters are u64 upstream; negative ones read as 0 */
			if ((r = fn(userdata, device, name, json_object_get_uint64(value))) < 0)
				goto out;
		}
	}
out:
	json_object_put(root);
	return r;
}

static const char *const state_names[] = {
	[CH_VM_STATE_UNKNOWN] = "unknown", [CH_VM_STATE_CREATED] = "Created",
	[CH_VM_STATE_RUNNING] = "Running", [CH_VM_STATE_SHUTDOWN] = "Shutdown",
	[CH_VM_STATE_PAUSED] = "Paused",
};

const char *ch_vm_state_name(enum ch_vm_state state)
{
	return (size_t)state < ELEMENTSOF(state_names) ? state_names[state] : "unknown";
}

int ch_vm_info_parse(const char *body, struct ch_vm_info *ret)
{
	struct json_object *info = NULL, *state = NULL;
	const char *s = NULL;

	*ret = (struct ch_vm_info){.state = CH_VM_STATE_UNKNOWN};
	if (body)
		info = json_tokener_parse(body);
	if (info && json_object_is_type(info, json_type_object) &&
	    json_object_object_get_ex(info, "state", &state) &&
	    json_object_is_type(state, json_type_string))
		s = json_object_get_string(state);
	if (s) {
		snprintf(ret->state_name, sizeof(ret->state_name), "%s", s);
		for (size_t i = 1; i < ELEMENTSOF(state_names); i++)
			if (streq(s, state_names[i]))
				ret->state = (enum ch_vm_state)i;
	}
	json_object_put(info);
	return s ? 0 : -EBADMSG;
}

int ch_reply_vm_info(const struct ch_reply *reply, struct ch_vm_info *ret)
{
	if (!ch_reply_ok(reply)) {
		*ret = (struct ch_vm_info){.state = CH_VM_STATE_UNKNOWN};
		return -EIO;
	}
	return ch_vm_info_parse(reply->body, ret);
}
