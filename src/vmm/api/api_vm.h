/* The handlers of mvirt.VmService: decode the request, call the VM manager, encode the answer
 * or map the error. Thin on purpose: rules live in the VM manager and validation. */
#pragma once

#include "api/api.h"
#include "common/log.h"

/* userdata of the API server must be a struct api_context (api_context.h). */
extern const struct api_method api_vm_methods[];
