/* The handlers of mvirt.NetworkService: decode the request, call the network manager
 * (network/network.h), encode the answer or map the error. Which VMs use a network is read
 * from the VM manager: DeleteNetwork refuses while any VM has a NIC on it. Registered by the
 * daemon with api_server_new(). */
#pragma once

#include "api/api.h"

/* userdata of the API server must be a struct api_context (api_context.h). */
extern const struct api_method api_network_methods[];
