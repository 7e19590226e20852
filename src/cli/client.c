/* See client.h. Unary calls run on the calling thread: each operation is started with a tag and
 * its completion plucked from the client's own completion queue. A stream has a completion
 * queue of its own, emptied by a helper thread into a pipe; everything else about the stream
 * (starting operations, reading their results) happens on the owner's thread, so the stream's
 * state needs no lock: a completion is only looked at after it has come through the pipe. */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/grpc_runtime.h"
#include "common/macro.h"

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
	grpc_runtime_tune();
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

/* Connects the channel before its first call. Returns 0, or -ECONNREFUSED with *st filled when
 * no connection came up in time. A refused connection returns 0: the call then fails at once and
 * its status says why. */
static int ensure_connected(struct client *c, struct client_status *st)
{
	if (c->connected || client_connect(c) != -ETIMEDOUT)
		return 0;
	st->unreachable = true;
	st->code = GRPC_STATUS_DEADLINE_EXCEEDED;
	snprintf(st->message, sizeof(st->message), "no connection within %d seconds",
		 CLIENT_CONNECT_TIMEOUT_S);
	return -ECONNREFUSED;
}

/* Copies the final status of a call into *st; a call that failed with UNAVAILABLE before the
 * client ever reached the daemon means the daemon is unreachable. */
static void status_from_call(struct client *c, grpc_status_code code, grpc_slice details,
			     struct client_status *st)
{
	char *msg = grpc_slice_to_c_string(details);

	st->code = code;
	snprintf(st->message, sizeof(st->message), "%s", msg ? msg : "");
	gpr_free(msg);
	st->unreachable = code == GRPC_STATUS_UNAVAILABLE && !c->connected;
	if (code != GRPC_STATUS_UNAVAILABLE)
		c->connected = true;
}

/* A call of md on c's channel ("/mvirt.VmService/GetVm"), completing on cq; NULL on failure. */
static grpc_call *create_call(struct client *c, const ProtobufCServiceDescriptor *service,
			      const ProtobufCMethodDescriptor *md, grpc_completion_queue *cq,
			      gpr_timespec deadline)
{
	_cleanup_free_ char *path = NULL;
	grpc_slice method_slice;
	grpc_call *call;

	if (asprintf(&path, "/%s/%s", service->name, md->name) < 0) {
		path = NULL;
		return NULL;
	}
	method_slice = grpc_slice_from_copied_string(path);
	call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method_slice,
					NULL, deadline, NULL);
	grpc_slice_unref(method_slice);
	return call;
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
	grpc_metadata_array initial_md, trailing_md;
	grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;
	grpc_status_code code = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	const char *error_string = NULL;
	grpc_call *call;
	grpc_op ops[6] = {0};
	grpc_event ev;
	int r;

	*st = (struct client_status){.code = GRPC_STATUS_OK};
	md = protobuf_c_service_descriptor_get_method_by_name(service, method);
	if (!md || req->descriptor != md->input) {
		status_set(st, GRPC_STATUS_INTERNAL, "no such method");
		return -EINVAL;
	}
	if ((r = ensure_connected(c, st)) < 0)
		return r;

	if ((r = pack_request(req, &send_bb)) < 0) {
		status_set(st, GRPC_STATUS_INTERNAL, "cannot serialize the request");
		return r;
	}
	call = create_call(c, service, md, c->cq, deadline_in(CLIENT_CALL_TIMEOUT_S));
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

	status_from_call(c, code, details, st);
	if (code != GRPC_STATUS_OK) {
		r = st->unreachable ? -ECONNREFUSED : -EREMOTEIO;
		goto finish;
	}
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

/* ---- streams ---- */

/* What the helper thread passes through the pipe for each completed batch. */
struct completion {
	void *tag;
	int success;
};

struct client_stream {
	struct client *client; /* borrowed */
	const ProtobufCMethodDescriptor *md;
	grpc_completion_queue *cq;
	grpc_call *call;
	pthread_t thread;
	bool thread_started;
	int pipe[2];       /* completions: [1] written by the thread, [0] read by the owner */
	unsigned inflight; /* batches started and not yet seen through the pipe */

	bool md_sent;      /* SEND_INITIAL_METADATA started (with the first send or the close) */
	bool sending;      /* a SEND_MESSAGE batch is outstanding */
	bool send_failed;  /* a send failed: the call is going down */
	bool close_wanted; /* client_stream_close_send() was called */
	bool close_started;
	bool headers_done; /* RECV_INITIAL_METADATA completed */
	bool recv_done;    /* RECV_MESSAGE found the end of the responses */
	bool status_done;  /* RECV_STATUS_ON_CLIENT completed */
	bool ended;        /* CLIENT_STREAM_END was returned */

	grpc_byte_buffer *send_bb, *recv_bb;
	grpc_metadata_array initial_md, trailing_md;
	grpc_status_code code;
	grpc_slice details;
	const char *error_string;
	struct client_status status;

	/* Batch tags: only their addresses matter. */
	char t_headers, t_recv, t_send, t_close, t_status;
};

static void *stream_thread(void *arg)
{
	struct client_stream *s = arg;

	for (;;) {
		grpc_event ev =
			grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		struct completion comp;
		const char *p = (const char *)&comp;
		size_t left = sizeof(comp);

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		memset(&comp, 0, sizeof(comp)); /* no uninitialized padding through the pipe */
		comp.tag = ev.tag;
		comp.success = ev.success;
		/* Smaller than PIPE_BUF: written in one piece; at most five batches are ever
		 * outstanding, so the pipe never fills. */
		while (left > 0) {
			ssize_t n = write(s->pipe[1], p, left);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				abort(); /* a lost completion would hang the owner forever */
			p += n;
			left -= (size_t)n;
		}
	}
	return NULL;
}

static int stream_start_batch(struct client_stream *s, const grpc_op *ops, size_t n, void *tag)
{
	if (grpc_call_start_batch(s->call, ops, n, tag, NULL) != GRPC_CALL_OK)
		return -EIO;
	s->inflight++;
	return 0;
}

static int stream_start_recv(struct client_stream *s)
{
	grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
	int r;

	op.data.recv_message.recv_message = &s->recv_bb;
	if ((r = stream_start_batch(s, &op, 1, &s->t_recv)) < 0)
		s->recv_done = true;
	return r;
}

/* Adds SEND_INITIAL_METADATA to ops[*n] before the first send or the close. */
static void stream_add_initial_md(struct client_stream *s, grpc_op *ops, size_t *n)
{
	if (s->md_sent)
		return;
	ops[(*n)++] = (grpc_op){.op = GRPC_OP_SEND_INITIAL_METADATA};
	s->md_sent = true;
}

static int stream_start_close(struct client_stream *s)
{
	grpc_op ops[2] = {0};
	size_t n = 0;

	s->close_started = true;
	stream_add_initial_md(s, ops, &n);
	ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	return stream_start_batch(s, ops, n, &s->t_close);
}

int client_stream_open(struct client *c, const ProtobufCServiceDescriptor *service,
		       const char *method, struct client_stream **ret, struct client_status *st)
{
	const ProtobufCMethodDescriptor *md;
	struct client_stream *s;
	grpc_op op_headers = {.op = GRPC_OP_RECV_INITIAL_METADATA};
	grpc_op op_status = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
	sigset_t all, saved;
	int r;

	*st = (struct client_status){.code = GRPC_STATUS_OK};
	md = protobuf_c_service_descriptor_get_method_by_name(service, method);
	if (!md) {
		status_set(st, GRPC_STATUS_INTERNAL, "no such method");
		return -EINVAL;
	}
	if ((r = ensure_connected(c, st)) < 0)
		return r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->client = c;
	s->md = md;
	s->pipe[0] = s->pipe[1] = -1;
	s->details = grpc_empty_slice();
	grpc_metadata_array_init(&s->initial_md);
	grpc_metadata_array_init(&s->trailing_md);
	if (pipe2(s->pipe, O_CLOEXEC) < 0 || fcntl(s->pipe[0], F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}
	s->cq = grpc_completion_queue_create_for_next(NULL);
	if (!s->cq) {
		r = -ENOMEM;
		goto fail;
	}
	s->call = create_call(c, service, md, s->cq, gpr_inf_future(GPR_CLOCK_REALTIME));
	if (!s->call) {
		r = -ENOMEM;
		goto fail;
	}
	/* Signals are for the owner's thread (its poll loop), never for the helper. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	r = -pthread_create(&s->thread, NULL, stream_thread, s);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (r < 0)
		goto fail;
	s->thread_started = true;

	op_headers.data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
	op_status.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
	op_status.data.recv_status_on_client.status = &s->code;
	op_status.data.recv_status_on_client.status_details = &s->details;
	op_status.data.recv_status_on_client.error_string = &s->error_string;
	if ((r = stream_start_batch(s, &op_headers, 1, &s->t_headers)) < 0 ||
	    (r = stream_start_batch(s, &op_status, 1, &s->t_status)) < 0)
		goto fail;
	*ret = s;
	return 0;

fail:
	status_set(st, GRPC_STATUS_INTERNAL, "cannot start the call");
	client_stream_free(s);
	return r;
}

int client_stream_fd(const struct client_stream *s)
{
	return s->pipe[0];
}

bool client_stream_can_send(const struct client_stream *s)
{
	return !s->sending && !s->send_failed && !s->close_wanted && !s->status_done;
}

int client_stream_send(struct client_stream *s, const ProtobufCMessage *msg)
{
	grpc_op ops[2] = {0};
	size_t n = 0;
	int r;

	if (msg->descriptor != s->md->input)
		return -EINVAL;
	if (s->sending)
		return -EBUSY;
	if (!client_stream_can_send(s))
		return -EPIPE;
	if ((r = pack_request(msg, &s->send_bb)) < 0)
		return r;
	stream_add_initial_md(s, ops, &n);
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = s->send_bb;
	if ((r = stream_start_batch(s, ops, n, &s->t_send)) < 0) {
		grpc_byte_buffer_destroy(s->send_bb);
		s->send_bb = NULL;
		s->send_failed = true;
		return -EPIPE;
	}
	s->sending = true;
	return 0;
}

int client_stream_close_send(struct client_stream *s)
{
	if (s->close_wanted)
		return 0;
	s->close_wanted = true;
	if (s->sending || s->status_done)
		return 0; /* started when the send completes; pointless once the call is over */
	return stream_start_close(s);
}

void client_stream_cancel(struct client_stream *s)
{
	if (!s->status_done)
		grpc_call_cancel(s->call, NULL);
}

static int stream_maybe_end(struct client_stream *s)
{
	if (s->ended || !s->status_done || !s->headers_done || !s->recv_done)
		return CLIENT_STREAM_NONE;
	s->ended = true;
	return CLIENT_STREAM_END;
}

/* Accounts for one completed batch and says what it means for the owner. */
static int stream_complete(struct client_stream *s, const struct completion *comp,
			   ProtobufCMessage **ret_msg)
{
	ProtobufCMessage *msg = NULL;
	int r;

	s->inflight--;
	if (comp->tag == &s->t_headers) {
		s->headers_done = true;
		(void)stream_start_recv(s);
		return CLIENT_STREAM_HEADERS;
	}
	if (comp->tag == &s->t_recv) {
		if (!s->recv_bb) {
			s->recv_done = true;
			return stream_maybe_end(s);
		}
		r = unpack_response(s->recv_bb, s->md->output, &msg);
		grpc_byte_buffer_destroy(s->recv_bb);
		s->recv_bb = NULL;
		if (r < 0) {
			s->recv_done = true;
			grpc_call_cancel_with_status(s->call, GRPC_STATUS_INTERNAL,
						     "the daemon's response does not parse", NULL);
			return -EBADMSG;
		}
		(void)stream_start_recv(s);
		*ret_msg = msg;
		return CLIENT_STREAM_MESSAGE;
	}
	if (comp->tag == &s->t_send) {
		s->sending = false;
		grpc_byte_buffer_destroy(s->send_bb);
		s->send_bb = NULL;
		if (!comp->success)
			s->send_failed = true;
		else if (s->close_wanted && !s->close_started && !s->status_done)
			(void)stream_start_close(s);
		return CLIENT_STREAM_SENT;
	}
	if (comp->tag == &s->t_status) {
		s->status_done = true;
		status_from_call(s->client, s->code, s->details, &s->status);
		return stream_maybe_end(s);
	}
	return CLIENT_STREAM_NONE; /* t_close */
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int client_stream_next(struct client_stream *s, int timeout_ms, ProtobufCMessage **ret_msg)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	while (!s->ended) {
		struct pollfd pfd = {.fd = s->pipe[0], .events = POLLIN};
		struct completion comp;
		ssize_t n = read(s->pipe[0], &comp, sizeof(comp));
		int wait = -1, r;

		if (n == sizeof(comp)) {
			if ((r = stream_complete(s, &comp, ret_msg)) != CLIENT_STREAM_NONE)
				return r;
			continue;
		}
		if (n >= 0)
			return -EIO; /* the thread writes whole completions or nothing */
		if (errno == EINTR)
			return -EINTR;
		if (errno != EAGAIN)
			return -errno;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();

			if (left <= 0)
				return CLIENT_STREAM_NONE;
			wait = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		r = poll(&pfd, 1, wait);
		if (r < 0)
			return errno == EINTR ? -EINTR : -errno;
		if (r == 0)
			return CLIENT_STREAM_NONE;
	}
	return CLIENT_STREAM_NONE;
}

const struct client_status *client_stream_status(const struct client_stream *s)
{
	return &s->status;
}

void client_stream_free(struct client_stream *s)
{
	if (!s)
		return;
	if (s->call) {
		grpc_call_cancel(s->call, NULL);
		while (s->inflight > 0) {
			struct pollfd pfd = {.fd = s->pipe[0], .events = POLLIN};
			ProtobufCMessage *msg = NULL;
			struct completion comp;

			/* The cancel makes every outstanding batch complete soon. */
			if (read(s->pipe[0], &comp, sizeof(comp)) == sizeof(comp)) {
				if (stream_complete(s, &comp, &msg) == CLIENT_STREAM_MESSAGE)
					protobuf_c_message_free_unpacked(msg, NULL);
				continue;
			}
			(void)poll(&pfd, 1, -1);
		}
		grpc_call_unref(s->call);
	}
	if (s->cq) {
		grpc_completion_queue_shutdown(s->cq);
		if (s->thread_started)
			pthread_join(s->thread, NULL);
		else
			while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
							  NULL)
				       .type != GRPC_QUEUE_SHUTDOWN)
				;
		grpc_completion_queue_destroy(s->cq);
	}
	if (s->send_bb)
		grpc_byte_buffer_destroy(s->send_bb);
	if (s->recv_bb)
		grpc_byte_buffer_destroy(s->recv_bb);
	grpc_slice_unref(s->details);
	gpr_free((void *)s->error_string);
	grpc_metadata_array_destroy(&s->initial_md);
	grpc_metadata_array_destroy(&s->trailing_md);
	if (s->pipe[0] >= 0)
		close(s->pipe[0]);
	if (s->pipe[1] >= 0)
		close(s->pipe[1]);
	free(s);
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
