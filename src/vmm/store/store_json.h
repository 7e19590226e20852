/* A VM's config and a network's config as the JSON documents the state store keeps in
 * vms.config and networks.config (store_json.c). Pure and silent: explicit member names
 * (vcpus, memory_mb, kernel, ..., disks[], nics[]; mode, bridge, ipv4_subnet, ...); NULL strings
 * (and an unspecified network mode) are omitted. Only the store uses it. */
#pragma once

#include <json-c/json.h>

#include "model/netdef.h"
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

/* 0 or -ENOMEM. The mode is "nat", "isolated" or "bridge"; NET_MODE_UNSPECIFIED is omitted (the
 * caller stores valid modes only). */
int store_net_config_to_json(const struct net_config *c, struct json_object **ret);
/* Fills c (zeroed first; the caller frees it with net_config_done(), also on failure) from o;
 * an absent or null mode reads as NET_MODE_UNSPECIFIED. -EBADMSG naming the bad member in
 * *ret_field, or -ENOMEM. */
int store_net_config_from_json(struct json_object *o, struct net_config *c, const char **ret_field);
