/* The handlers of mvirt.VmService's console and event calls: Console (bidi stream: history,
 * then live serial output; input to the guest), GetConsoleLog (unary) and WatchVms (server
 * stream of VM events). They adapt the console fan-out (console.h) and the VM manager's event
 * bus (vm.h) to gRPC streams with bounded queues: a client that does not read never slows the
 * VM, other clients or the daemon. Registered by the daemon with api_server_new(). */
#pragma once

#include "api/api.h"

/* userdata of the API server must be a struct api_context (api_context.h). */
extern const struct api_method api_console_methods[];
