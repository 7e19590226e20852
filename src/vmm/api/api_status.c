/* Error kinds → gRPC status codes: the one table that decides what status a failure gets.
 * The kind is chosen where the error is made (common/err.h); nothing here looks at errno. */
#include "api/api.h"

static const grpc_status_code status_of_kind[] = {
	[MV_ERR_NONE] = GRPC_STATUS_INTERNAL,
	[MV_ERR_INVALID] = GRPC_STATUS_INVALID_ARGUMENT,
	[MV_ERR_NOT_FOUND] = GRPC_STATUS_NOT_FOUND,
	[MV_ERR_EXISTS] = GRPC_STATUS_ALREADY_EXISTS,
	[MV_ERR_PRECONDITION] = GRPC_STATUS_FAILED_PRECONDITION,
	[MV_ERR_ABORTED] = GRPC_STATUS_ABORTED,
	[MV_ERR_TIMEOUT] = GRPC_STATUS_DEADLINE_EXCEEDED,
	[MV_ERR_EXHAUSTED] = GRPC_STATUS_RESOURCE_EXHAUSTED,
	[MV_ERR_DENIED] = GRPC_STATUS_PERMISSION_DENIED,
	[MV_ERR_UNAVAILABLE] = GRPC_STATUS_UNAVAILABLE,
	[MV_ERR_UNSUPPORTED] = GRPC_STATUS_UNIMPLEMENTED,
	[MV_ERR_INTERNAL] = GRPC_STATUS_INTERNAL,
};

_Static_assert(ELEMENTSOF(status_of_kind) == _MV_ERR_KIND_MAX, "a status for every error kind");

grpc_status_code api_status_from_kind(enum mv_error_kind kind)
{
	if ((size_t)kind >= ELEMENTSOF(status_of_kind))
		return GRPC_STATUS_INTERNAL;
	return status_of_kind[kind];
}
