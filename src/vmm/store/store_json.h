/* A VM's config as the JSON document the state store keeps in vms.config (store_json.c).
 * Pure and silent: explicit member names (vcpus, memory_mb, kernel, ..., disks[], nics[]);
 * NULL strings are omitted. Only the store uses it. */
#pragma once

#include <json-c/json.h>

#include "model/vmdef.h"

/* For _cleanup_(json_putp). */
static inline void json_putp(struct json_object **o)
{
	json_object_put(*o);
}

/* 0 or -ENOMEM. */
int store_config_to_json(const struct vm_config *c, struct json_object **ret);
/* Fills c (zeroed first; the caller frees it with vmdef_config_done(), also on failure) from o;
 * -EBADMSG naming the bad member in *ret_field, or -ENOMEM. */
int store_config_from_json(struct json_object *o, struct vm_config *c, const char **ret_field);
