/* See client.h. Everything runs on the calling thread: each operation is started with a tag and
 * its completion plucked from the client's own completion queue. */
#include "client.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

struct client {
	grpc_channel *channel;
	grpc_completion_queue *cq;
	bool connected; /* the channel has been READY */
};

/* Completion-queue tags: only their addresses matter. */
static char tag_connect, tag_call;

static gpr_timespec deadline_in(int seconds)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_seconds(seconds, GPR_TIMESPAN));
}

/* gRPC logs connection failures by itself at ERROR level; the CLI reports them in its own words,
 * so keep gRPC quiet unless the user asked for its logs. */
static void quiet_log(gpr_log_func_args *args)
{
	(void)args;
}

int client_new(const char *target, struct client **ret)
{
	grpc_arg args[] = {
		{.type = GRPC_ARG_INTEGER,
		 .key = (char *)GRPC_ARG_ENABLE_HTTP_PROXY,
		 .value.integer = 0},
		{.type = GRPC_ARG_INTEGER,
		 .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		 .value.integer = CLIENT_MESSAGE_MAX},
	};
	grpc_channel_args chargs = {.num_args = ELEMENTSOF(args), .args = args};
	grpc_channel_credentials *creds;
	struct client *c;

	if (!getenv("GRPC_VERBOSITY") && !getenv("GRPC_TRACE"))
		gpr_set_log_function(quiet_log);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	grpc_init();
	creds = grpc_insecure_credentials_create();
	c->channel = grpc_channel_create(target, creds, &chargs);
	grpc_channel_credentials_release(creds);
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	if (!c->channel || !c->cq) {
		client_free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	if (c->channel)
		grpc_channel_destroy(c->channel);
	if (c->cq) {
		grpc_completion_queue_shutdown(c->cq);
		while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME),
						   NULL)
			       .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(c->cq);
	}
	free(c);
	grpc_shutdown();
}

/* Waits until the channel is READY (0) or has failed (-ECONNREFUSED), at most
 * CLIENT_CONNECT_TIMEOUT_S (-ETIMEDOUT). */
static int client_connect(struct client *c)
{
	gpr_timespec deadline = deadline_in(CLIENT_CONNECT_TIMEOUT_S);
	grpc_connectivity_state s = grpc_channel_check_connectivity_state(c->channel, 1);

	while (s != GRPC_CHANNEL_READY) {
		grpc_event ev;

		if (s == GRPC_CHANNEL_TRANSIENT_FAILURE || s == GRPC_CHANNEL_SHUTDOWN)
			return -ECONNREFUSED;
		grpc_channel_watch_connectivity_state(c->channel, s, deadline, c->cq, &tag_connect);
		ev = grpc_completion_queue_pluck(c->cq, &tag_connect,
						 gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type != GRPC_OP_COMPLETE || !ev.success)
			return -ETIMEDOUT;
		s = grpc_channel_check_connectivity_state(c->channel, 1);
	}
	c->connected = true;
	return 0;
}

static void status_set(struct client_status *st, grpc_status_code code, const char *msg)
{
	st->code = code;
	snprintf(st->message, sizeof(st->message), "%s", msg);
}

static int pack_request(const ProtobufCMessage *req, grpc_byte_buffer **ret)
{
	size_t size = protobuf_c_message_get_packed_size(req);
	grpc_slice slice = grpc_slice_malloc(size);

	if (protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(slice)) != size) {
		grpc_slice_unref(slice);
		return -EINVAL;
	}
	*ret = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return 0;
}

static int unpack_response(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc,
			   ProtobufCMessage **ret)
{
	grpc_byte_buffer_reader reader;
	grpc_slice slice;
	ProtobufCMessage *msg;

	if (!grpc_byte_buffer_reader_init(&reader, bb))
		return -EBADMSG;
	slice = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	msg = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(slice),
					GRPC_SLICE_START_PTR(slice));
	grpc_slice_unref(slice);
	if (!msg)
		return -EBADMSG;
	*ret = msg;
	return 0;
}

int client_call(struct client *c, const ProtobufCServiceDescriptor *service, const char *method,
		const ProtobufCMessage *req, ProtobufCMessage **ret_resp, struct client_status *st)
{
	const ProtobufCMethodDescriptor *md;
	_cleanup_free_ char *path = NULL;
	grpc_metadata_array initial_md, trailing_md;
	grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;
	grpc_status_code code = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	const char *error_string = NULL;
	grpc_slice method_slice;
	grpc_call *call;
	grpc_op ops[6] = {0};
	grpc_event ev;
	char *msg;
	int r;

	*st = (struct client_status){.code = GRPC_STATUS_OK};
	md = protobuf_c_service_descriptor_get_method_by_name(service, method);
	if (!md || req->descriptor != md->input) {
		status_set(st, GRPC_STATUS_INTERNAL, "no such method");
		return -EINVAL;
	}
	if (asprintf(&path, "/%s/%s", service->name, md->name) < 0) {
		path = NULL;
		return -ENOMEM;
	}

	if (!c->connected) {
		r = client_connect(c);
		if (r == -ETIMEDOUT) {
			st->unreachable = true;
			status_set(st, GRPC_STATUS_DEADLINE_EXCEEDED, "");
			snprintf(st->message, sizeof(st->message),
				 "no connection within %d seconds", CLIENT_CONNECT_TIMEOUT_S);
			return -ECONNREFUSED;
		}
		/* On -ECONNREFUSED, go on: the call fails at once and says why. */
	}

	if ((r = pack_request(req, &send_bb)) < 0) {
		status_set(st, GRPC_STATUS_INTERNAL, "cannot serialize the request");
		return r;
	}
	method_slice = grpc_slice_from_copied_string(path);
	call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
					method_slice, NULL, deadline_in(CLIENT_CALL_TIMEOUT_S),
					NULL);
	grpc_slice_unref(method_slice);
	grpc_metadata_array_init(&initial_md);
	grpc_metadata_array_init(&trailing_md);

	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send_bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv_bb;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
	ops[5].data.recv_status_on_client.status = &code;
	ops[5].data.recv_status_on_client.status_details = &details;
	ops[5].data.recv_status_on_client.error_string = &error_string;

	if (!call ||
	    grpc_call_start_batch(call, ops, ELEMENTSOF(ops), &tag_call, NULL) != GRPC_CALL_OK) {
		status_set(st, GRPC_STATUS_INTERNAL, "cannot start the call");
		r = -EIO;
		goto finish;
	}
	ev = grpc_completion_queue_pluck(c->cq, &tag_call, gpr_inf_future(GPR_CLOCK_REALTIME),
					 NULL);
	if (ev.type != GRPC_OP_COMPLETE) {
		status_set(st, GRPC_STATUS_INTERNAL, "the call did not complete");
		r = -EIO;
		goto finish;
	}

	st->code = code;
	msg = grpc_slice_to_c_string(details);
	snprintf(st->message, sizeof(st->message), "%s", msg ? msg : "");
	gpr_free(msg);
	if (code != GRPC_STATUS_OK) {
		if (!c->connected && code == GRPC_STATUS_UNAVAILABLE) {
			st->unreachable = true;
			r = -ECONNREFUSED;
		} else {
			r = -EREMOTEIO;
		}
		goto finish;
	}
	c->connected = true;
	if (!recv_bb) {
		status_set(st, GRPC_STATUS_INTERNAL, "the daemon sent no response message");
		r = -EBADMSG;
		goto finish;
	}
	r = unpack_response(recv_bb, md->output, ret_resp);
	if (r < 0)
		status_set(st, GRPC_STATUS_INTERNAL, "the daemon's response does not parse");

finish:
	if (call)
		grpc_call_unref(call);
	grpc_byte_buffer_destroy(send_bb);
	if (recv_bb)
		grpc_byte_buffer_destroy(recv_bb);
	grpc_slice_unref(details);
	gpr_free((void *)error_string);
	grpc_metadata_array_destroy(&initial_md);
	grpc_metadata_array_destroy(&trailing_md);
	return r;
}

const char *client_status_code_name(grpc_status_code code)
{
	static const char *const names[] = {
		[GRPC_STATUS_OK] = "OK",
		[GRPC_STATUS_CANCELLED] = "CANCELLED",
		[GRPC_STATUS_UNKNOWN] = "UNKNOWN",
		[GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
		[GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
		[GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
		[GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
		[GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
		[GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
		[GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
		[GRPC_STATUS_ABORTED] = "ABORTED",
		[GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
		[GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
		[GRPC_STATUS_INTERNAL] = "INTERNAL",
		[GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
		[GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
		[GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
	};

	if ((unsigned)code < ELEMENTSOF(names) && names[code])
		return names[code];
	return "UNKNOWN_STATUS";
}
