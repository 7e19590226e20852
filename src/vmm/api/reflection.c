/* The gRPC side of server reflection: one bidi stream per client, one response per request,
 * for both grpc.reflection.v1 and v1alpha (wire-identical, so the v1 messages serve both).
 * The answers come from reflection_index.c; no per-call state. Registered by the daemon with
 * api_server_new(). */
#include "api/reflection.h"

#include <errno.h>

#include "api/reflection_internal.h"

/* Responses a client may leave unread before the stream is cut off. */
#define REFLECTION_MAX_QUEUED 64

static void reflection_handle(struct api_call *call, const ProtobufCMessage *msg)
{
	struct reflection_reply reply;
	int r;

	if (!msg) {
		api_call_finish(call, GRPC_STATUS_OK, NULL);
		return;
	}
	reflection_reply_build((const Grpc__Reflection__V1__ServerReflectionRequest *)msg, &reply);
	r = api_call_send(call, &reply.resp.base, REFLECTION_MAX_QUEUED);
	if (r == -ENOBUFS)
		api_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
				"too many unread reflection responses");
	else if (r < 0 && r != -ECANCELED) /* the client would wait forever for its answer */
		api_call_finish(call, GRPC_STATUS_INTERNAL, "cannot queue the reflection response");
}

const struct api_method reflection_methods[] = {
	{
		.path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		.kind = API_METHOD_BIDI_STREAM,
		.request = &grpc__reflection__v1__server_reflection_request__descriptor,
		.handle = reflection_handle,
	},
	{
		.path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
		.kind = API_METHOD_BIDI_STREAM,
		.request = &grpc__reflection__v1__server_reflection_request__descriptor,
		.handle = reflection_handle,
	},
	{.path = NULL},
};
