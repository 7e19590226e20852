/* The handlers of mvirt.VolumeService: decode the request, call the storage manager
 * (storage.h), encode the answer or map the error. ImportVolume is a server stream of progress
 * messages ending with the volume; a client that goes away cancels the import, which removes
 * the partial file. Create, clone and resize answer once their child processes are done.
 * Registered by the daemon with api_server_new(). */
#pragma once

#include "api/api.h"

/* userdata of the API server must be a struct api_context (api_context.h). */
extern const struct api_method api_volume_methods[];
