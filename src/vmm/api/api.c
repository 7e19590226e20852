/* The API server: see api.h for the threading model and the call contract.
 *
 * Every asynchronous gRPC operation carries a struct api_tag. The completion-queue thread
 * stores the result in the tag and appends it to a locked FIFO, waking the event loop through
 * an eventfd; the loop then runs on_tag() for each, in order. A call lives until its
 * RECV_CLOSE_ON_SERVER operation has completed and no other batch is outstanding
 * (call_maybe_free). Only the loop touches struct api_call. */
#include "api/api.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "api/api_metrics.h"
#include "api/api_wire.h"
#include "common/clock.h"
#include "common/grpc_runtime.h"
#include "common/log.h"
#include "common/macro.h"

#define API_OUTSTANDING_REQUESTS 8
#define API_MAX_MESSAGE (8 * 1024 * 1024)

enum tag_kind {
	TAG_NEW_CALL,
	TAG_RECV,
	TAG_SEND,
	TAG_CLOSE,
	TAG_RELEASE, /* posted by the loop itself: a held call was answered after it closed */
	TAG_SERVER_SHUTDOWN,
};

struct api_tag {
	enum tag_kind kind;
	struct api_call *call; /* NULL for TAG_SERVER_SHUTDOWN */
	struct api_tag *next;  /* FIFO link, owned by whoever holds the tag */
	bool ok;               /* written by the CQ thread before the push */
};

struct api_msg {
	struct api_msg *next;
	grpc_byte_buffer *buf;
};

struct api_call {
	struct api_server *srv;
	enum api_srv_kind kind; /* the server it arrived on */
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array request_md;
	char *method_name; /* copy of details.method, for logs */
	const struct api_method *method;

	struct api_tag t_new, t_recv, t_send, t_close, t_release;
	grpc_byte_buffer *recv_buf;
	int cancelled;

	struct api_msg *q_head, *q_tail;
	size_t q_len;
	grpc_byte_buffer *in_flight;
	grpc_slice status_slice;
	bool has_status_slice;

	bool started;       /* t_new completed */
	bool sending;       /* a send batch is outstanding */
	bool md_sent;       /* initial metadata went out */
	bool status_queued; /* the handler ended the call */
	bool status_sent;   /* SEND_STATUS is in a started batch */
	bool closed;        /* RECV_CLOSE_ON_SERVER completed */
	bool held;          /* api_call_hold(): not freed before the handler answers */
	bool md_wanted;     /* api_call_begin_stream(): send initial metadata now */
	grpc_status_code status;
	unsigned pending; /* outstanding batches, t_close included */

	/* metrics (api_metrics.h): counted once, when the call ends or goes */
	size_t stat;         /* index in srv->stats; srv->stats.n: a method not served */
	uint64_t t_begin_us; /* CLOCK_MONOTONIC when it arrived */
	bool recorded;

	void *data;
	struct api_call *prev, *next; /* srv->calls */
};

struct api_server {
	sd_event *event;
	sd_event_source *wake_source;
	int wake_fd;
	void *userdata;
	const struct api_method *const *tables;

	grpc_completion_queue *cq;
	grpc_server *servers[API_SRV_N];
	struct api_tag t_shutdown[API_SRV_N];
	unsigned servers_down;
	struct api_limits limits;
	struct api_conn *conns; /* connections handed to gRPC and (perhaps) still open */
	size_t n_conns, peak_conns;
	unsigned n_calls;        /* started and not yet freed (the calls list) */
	uint64_t busy_logged_us; /* last "too many connections" warning */
	sd_event_source *sweep;  /* checks conns while there are any; trims memory after a burst */
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;
	struct api_tag *fifo_head, *fifo_tail; /* guarded by lock */

	struct api_call *calls; /* started calls */
	unsigned n_requests;    /* outstanding grpc_server_request_call */
	bool shutting_down;
	void (*shutdown_done)(void *userdata);
	void *shutdown_userdata;
	bool shutdown_reported;

	struct api_stats stats; /* the methods of tables, and what their calls did */
};

/* ---- completion-queue thread ---- */

static void push_tag(struct api_server *srv, struct api_tag *tag);

static void *cq_thread(void *arg)
{
	struct api_server *srv = arg;

	for (;;) {
		grpc_event ev = grpc_completion_queue_next(
			srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;

		struct api_tag *tag = ev.tag;

		tag->ok = ev.success != 0;
		push_tag(srv, tag);
	}
	return NULL;
}

/* Appends tag to the FIFO the loop drains; callable from any thread. */
static void push_tag(struct api_server *srv, struct api_tag *tag)
{
	bool was_empty;

	tag->next = NULL;
	pthread_mutex_lock(&srv->lock);
	was_empty = !srv->fifo_head;
	if (srv->fifo_tail)
		srv->fifo_tail->next = tag;
	else
		srv->fifo_head = tag;
	srv->fifo_tail = tag;
	pthread_mutex_unlock(&srv->lock);
	if (was_empty) {
		uint64_t one = 1;
		(void)!write(srv->wake_fd, &one, sizeof(one));
	}
}

/* ---- calls ---- */

static struct api_call *call_new(struct api_server *srv, enum api_srv_kind kind)
{
	struct api_call *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->srv = srv;
	c->kind = kind;
	c->t_new = (struct api_tag){.kind = TAG_NEW_CALL, .call = c};
	c->t_recv = (struct api_tag){.kind = TAG_RECV, .call = c};
	c->t_send = (struct api_tag){.kind = TAG_SEND, .call = c};
	c->t_close = (struct api_tag){.kind = TAG_CLOSE, .call = c};
	c->t_release = (struct api_tag){.kind = TAG_RELEASE, .call = c};
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->request_md);
	return c;
}

static void queue_clear(struct api_call *c)
{
	while (c->q_head) {
		struct api_msg *m = c->q_head;
		c->q_head = m->next;
		grpc_byte_buffer_destroy(m->buf);
		free(m);
	}
	c->q_tail = NULL;
	c->q_len = 0;
}

static void call_record(struct api_call *c, grpc_status_code status)
{
	if (c->recorded || !c->started)
		return;
	c->recorded = true;
	api_stats_record(&c->srv->stats, c->stat, !c->method || c->method->kind == API_METHOD_UNARY,
			 status, clock_mono_us() - c->t_begin_us);
}

static void call_free(struct api_call *c)
{
	struct api_server *srv = c->srv;

	/* a call that never ended: the client went away first */
	call_record(c, GRPC_STATUS_CANCELLED);
	if (c->started) {
		srv->n_calls--;
		if (c->prev)
			c->prev->next = c->next;
		else
			srv->calls = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	queue_clear(c);
	if (c->in_flight)
		grpc_byte_buffer_destroy(c->in_flight);
	if (c->recv_buf)
		grpc_byte_buffer_destroy(c->recv_buf);
	if (c->has_status_slice)
		grpc_slice_unref(c->status_slice);
	if (c->call)
		grpc_call_unref(c->call);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->request_md);
	free(c->method_name);
	free(c);
}

static void server_check_shutdown(struct api_server *srv);

/* Frees the call once gRPC holds no more of its tags. Returns true if freed. */
static bool call_maybe_free(struct api_call *c)
{
	struct api_server *srv = c->srv;

	if (!c->closed || c->pending > 0 || c->held)
		return false;
	call_free(c);
	server_check_shutdown(srv);
	return true;
}

static void start_batch(struct api_call *c, const grpc_op *ops, size_t n, struct api_tag *tag)
{
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);

	if (e != GRPC_CALL_OK) {
		/* Only a programming error gets here (two batches of one kind). */
		log_error("api %s: grpc_call_start_batch failed: %s", strempty(c->method_name),
			  grpc_call_error_to_string(e));
		return;
	}
	c->pending++;
}

/* Starts the next send batch: initial metadata on first use, one queued message, and the
 * status once nothing else is queued. */
static void call_pump(struct api_call *c)
{
	grpc_op ops[3];
	size_t n = 0;

	if (c->sending || c->closed || c->status_sent)
		return;
	memset(ops, 0, sizeof(ops));
	if (!c->md_sent && (c->q_head || c->status_queued || c->md_wanted)) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->md_sent = true;
	}
	if (c->q_head) {
		struct api_msg *m = c->q_head;
		c->q_head = m->next;
		if (!c->q_head)
			c->q_tail = NULL;
		c->q_len--;
		c->in_flight = m->buf;
		free(m);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->in_flight;
	}
	if (c->status_queued && !c->q_head) {
		ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		ops[n].data.send_status_from_server.status = c->status;
		ops[n].data.send_status_from_server.status_details =
			c->has_status_slice ? &c->status_slice : NULL;
		n++;
		c->status_sent = true;
	}
	if (n == 0)
		return;
	c->sending = true;
	start_batch(c, ops, n, &c->t_send);
}

static void call_end(struct api_call *c, grpc_status_code status, const char *details)
{
	/* an answer to a client that is gone is not what it got */
	call_record(c, c->closed && !c->status_queued ? GRPC_STATUS_CANCELLED : status);
	if (!c->status_queued && !c->closed) {
		c->status_queued = true;
		c->status = status;
		if (details && *details) {
			c->status_slice = grpc_slice_from_copied_string(details);
			c->has_status_slice = true;
		}
		call_pump(c);
	}
	if (c->held) {
		c->held = false;
		/* Freed from the loop's next turn, never under the caller's feet. */
		if (c->closed && c->pending == 0)
			push_tag(c->srv, &c->t_release);
	}
}

void api_call_begin_stream(struct api_call *call)
{
	call->md_wanted = true;
	call_pump(call);
}

void api_call_hold(struct api_call *call)
{
	call->held = true;
}

bool api_call_is_cancelled(struct api_call *call)
{
	return call->closed;
}

void api_call_finish(struct api_call *call, grpc_status_code status, const char *details)
{
	call_end(call, status, details);
}

void api_call_fail(struct api_call *call, grpc_status_code status, const char *fmt, ...)
{
	char buf[MV_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_get_max_level() >= LOG_LEVEL_DEBUG)
		log_debug("api %s: %s", strempty(call->method_name), buf);
	call_end(call, status, buf);
}

void api_call_fail_err(struct api_call *call, const struct mv_error *err)
{
	api_call_fail(call, api_status_from_kind(err->kind), "%s",
		      err->msg[0] ? err->msg
		      : err->code ? strerror(err->code < 0 ? -err->code : err->code)
				  : "unknown error");
}

int api_call_send(struct api_call *call, const ProtobufCMessage *msg, size_t max_queued)
{
	struct api_msg *m;
	grpc_slice slice;
	size_t len;

	if (call->closed || call->status_queued)
		return -ECANCELED;
	if (call->q_len >= max_queued)
		return -ENOBUFS;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	len = protobuf_c_message_get_packed_size(msg);
	slice = grpc_slice_malloc(len);
	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
	m->buf = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	if (call->q_tail)
		call->q_tail->next = m;
	else
		call->q_head = m;
	call->q_tail = m;
	call->q_len++;
	call_pump(call);
	return 0;
}

void api_call_reply(struct api_call *call, const ProtobufCMessage *msg)
{
	int r = api_call_send(call, msg, SIZE_MAX);

	if (r == -ECANCELED)
		return;
	if (r < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "cannot queue the reply: %s",
			      strerror(-r));
		return;
	}
	call_end(call, GRPC_STATUS_OK, NULL);
}

size_t api_call_queued(struct api_call *call)
{
	return call->q_len;
}

void *api_call_userdata(struct api_call *call)
{
	return call->srv->userdata;
}

const char *api_call_method(struct api_call *call)
{
	return strempty(call->method_name);
}

void api_call_set_data(struct api_call *call, void *data)
{
	call->data = data;
}

void *api_call_get_data(struct api_call *call)
{
	return call->data;
}

/* The index of the method in srv->stats, srv->stats.n when it is not served. */
static size_t method_index(struct api_server *srv, const char *name)
{
	size_t i = 0;

	for (; i < srv->stats.n; i++)
		if (streq(srv->stats.methods[i]->path, name))
			break;
	return i;
}

const struct api_stats *api_call_stats(struct api_call *call)
{
	return &call->srv->stats;
}

static void call_recv(struct api_call *c)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->recv_buf;
	start_batch(c, &op, 1, &c->t_recv);
}

static void server_request(struct api_server *srv, enum api_srv_kind kind);

static void on_new_call(struct api_call *c, bool ok)
{
	struct api_server *srv = c->srv;
	grpc_op op;

	srv->n_requests--;
	if (!ok) {
		/* The server is shutting down; this request will never see a call. */
		call_free(c);
		server_check_shutdown(srv);
		return;
	}
	server_request(srv, c->kind);

	c->started = true;
	srv->n_calls++;
	c->next = srv->calls;
	if (srv->calls)
		srv->calls->prev = c;
	srv->calls = c;
	c->method_name = grpc_slice_to_c_string(c->details.method);
	c->t_begin_us = clock_mono_us();
	c->stat = method_index(srv, c->method_name);

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	start_batch(c, &op, 1, &c->t_close);

	if (c->kind == API_SRV_DENY) {
		api_call_fail(
			c, GRPC_STATUS_PERMISSION_DENIED,
			"permission denied: mvirt-vmm serves only root and members of its access "
			"group");
		return;
	}
	if (c->kind == API_SRV_BUSY) {
		api_call_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "too many connections: mvirt-vmm serves at most %u at once, %u per "
			      "user (settings max-connections, max-connections-per-user); close "
			      "some and retry",
			      srv->limits.max_connections, srv->limits.max_per_user);
		return;
	}
	if (srv->shutting_down) {
		api_call_fail(c, GRPC_STATUS_UNAVAILABLE, "mvirt-vmm is shutting down");
		return;
	}
	if (srv->n_calls > API_MAX_CALLS) {
		api_call_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "too many calls in progress: mvirt-vmm runs at most %d at once, over "
			      "all connections; retry when some have ended",
			      API_MAX_CALLS);
		return;
	}
	c->method = c->stat < srv->stats.n ? srv->stats.methods[c->stat] : NULL;
	if (!c->method) {
		api_call_fail(c, GRPC_STATUS_UNIMPLEMENTED, "method %s is not served by mvirt-vmm",
			      c->method_name);
		return;
	}
	call_recv(c);
}

static void on_recv(struct api_call *c)
{
	grpc_byte_buffer *buf = TAKE_PTR(c->recv_buf);
	ProtobufCMessage *msg = NULL;
	bool unary_like = c->method->kind != API_METHOD_BIDI_STREAM;

	if (c->closed || c->status_queued)
		goto out;
	if (!buf) {
		if (unary_like)
			api_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "request message missing");
		else
			c->method->handle(c, NULL);
		goto out;
	}

	grpc_byte_buffer_reader reader;
	grpc_slice slice;

	if (!grpc_byte_buffer_reader_init(&reader, buf)) {
		api_call_fail(c, GRPC_STATUS_INTERNAL, "cannot read the request");
		goto out;
	}
	slice = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	struct api_wire_fault fault;

	if (api_wire_check_strings(c->method->request, GRPC_SLICE_START_PTR(slice),
				   GRPC_SLICE_LENGTH(slice), &fault)) {
		grpc_slice_unref(slice);
		api_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "%s: %s", fault.path, fault.cause);
		goto out;
	}
	msg = protobuf_c_message_unpack(c->method->request, NULL, GRPC_SLICE_LENGTH(slice),
					GRPC_SLICE_START_PTR(slice));
	grpc_slice_unref(slice);
	if (!msg) {
		api_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed request: not a valid %s",
			      c->method->request->name);
		goto out;
	}
	c->method->handle(c, msg);
	if (!unary_like && !c->status_queued && !c->closed)
		call_recv(c);
out:
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
	if (buf)
		grpc_byte_buffer_destroy(buf);
}

static void on_tag(struct api_server *srv, struct api_tag *tag)
{
	struct api_call *c = tag->call;

	switch (tag->kind) {
	case TAG_SERVER_SHUTDOWN:
		srv->servers_down++;
		server_check_shutdown(srv);
		return;
	case TAG_NEW_CALL:
		on_new_call(c, tag->ok);
		return;
	case TAG_RECV:
		c->pending--;
		if (tag->ok)
			on_recv(c);
		else if (c->recv_buf)
			grpc_byte_buffer_destroy(TAKE_PTR(c->recv_buf));
		break;
	case TAG_SEND:
		c->pending--;
		c->sending = false;
		if (c->in_flight)
			grpc_byte_buffer_destroy(TAKE_PTR(c->in_flight));
		if (!tag->ok)
			queue_clear(c);
		else
			call_pump(c);
		break;
	case TAG_RELEASE:
		break;
	case TAG_CLOSE:
		c->pending--;
		c->closed = true;
		queue_clear(c);
		/* Streams: the call is over, whoever ended it; the handler lets go of it. */
		if (c->method && c->method->kind != API_METHOD_UNARY && c->method->on_cancel)
			c->method->on_cancel(c);
		break;
	}
	call_maybe_free(c);
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct api_server *srv = userdata;
	struct api_tag *list;
	uint64_t v;

	(void)s;
	(void)revents;
	(void)!read(fd, &v, sizeof(v));
	pthread_mutex_lock(&srv->lock);
	list = srv->fifo_head;
	srv->fifo_head = srv->fifo_tail = NULL;
	pthread_mutex_unlock(&srv->lock);
	while (list) {
		struct api_tag *t = list;
		list = t->next;
		on_tag(srv, t);
	}
	return 0;
}

static void server_request(struct api_server *srv, enum api_srv_kind kind)
{
	struct api_call *c;
	grpc_call_error e;

	if (srv->shutting_down)
		return;
	c = call_new(srv, kind);
	if (!c) {
		log_error("api: out of memory, cannot accept more calls");
		return;
	}
	e = grpc_server_request_call(srv->servers[kind], &c->call, &c->details, &c->request_md,
				     srv->cq, srv->cq, &c->t_new);
	if (e != GRPC_CALL_OK) {
		log_error("api: grpc_server_request_call failed: %s", grpc_call_error_to_string(e));
		call_free(c);
		return;
	}
	srv->n_requests++;
}

static void server_check_shutdown(struct api_server *srv)
{
	if (!srv->shutting_down || srv->shutdown_reported || srv->servers_down < API_SRV_N ||
	    srv->calls || srv->n_requests > 0)
		return;
	srv->shutdown_reported = true;
	if (srv->shutdown_done)
		srv->shutdown_done(srv->shutdown_userdata);
}

int api_server_new(sd_event *event, const struct api_method *const *tables, void *userdata,
		   const struct api_limits *limits, struct api_server **ret)
{
	struct api_server *srv;
	grpc_arg arg[] = {
		{.type = GRPC_ARG_INTEGER,
		 .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		 .value.integer = API_MAX_MESSAGE},
		/* streams (calls) at once on one connection */
		{.type = GRPC_ARG_INTEGER,
		 .key = (char *)GRPC_ARG_MAX_CONCURRENT_STREAMS,
		 .value.integer = API_MAX_STREAMS_PER_CONNECTION},
		/* a connection without calls, from its start on, is closed (GOAWAY) after this */
		{.type = GRPC_ARG_INTEGER,
		 .key = (char *)GRPC_ARG_MAX_CONNECTION_IDLE_MS,
		 .value.integer = (int)(limits->idle_timeout_s * 1000u)},
	};
	grpc_channel_args args = {.num_args = ELEMENTSOF(arg), .args = arg};
	int r;

	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->wake_fd = -1;
	srv->event = sd_event_ref(event);
	srv->tables = tables;
	srv->userdata = userdata;
	srv->limits = *limits;
	for (int k = 0; k < API_SRV_N; k++)
		srv->t_shutdown[k].kind = TAG_SERVER_SHUTDOWN;
	pthread_mutex_init(&srv->lock, NULL);
	if ((r = api_stats_init(&srv->stats, tables)) < 0)
		goto fail;
	srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->wake_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = sd_event_add_io(event, &srv->wake_source, srv->wake_fd, EPOLLIN, on_wake, srv);
	if (r < 0)
		goto fail;

	grpc_runtime_tune();
	grpc_init();
	srv->cq = grpc_completion_queue_create_for_next(NULL);
	for (int k = 0; k < API_SRV_N; k++) {
		srv->servers[k] = grpc_server_create(&args, NULL);
		grpc_server_register_completion_queue(srv->servers[k], srv->cq, NULL);
		grpc_server_start(srv->servers[k]);
	}

	r = -pthread_create(&srv->thread, NULL, cq_thread, srv);
	if (r < 0)
		goto fail;
	srv->thread_started = true;

	for (int i = 0; i < API_OUTSTANDING_REQUESTS; i++)
		server_request(srv, API_SRV_MAIN);
	server_request(srv, API_SRV_DENY);
	server_request(srv, API_SRV_BUSY);
	*ret = srv;
	return 0;
fail:
	api_server_free(srv);
	return r;
}

/* Drops the connections gRPC has closed: their fd is closed, or now another file. */
static void conns_prune(struct api_server *srv)
{
	size_t j = 0;

	for (size_t i = 0; i < srv->n_conns; i++) {
		struct api_conn *c = &srv->conns[i];
		struct stat st;

		if (fstat(c->fd, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
			srv->conns[j++] = *c;
	}
	srv->n_conns = j;
}

#define SWEEP_US (1000 * 1000)
#define TRIM_PEAK 32 /* connections: below this, a burst leaves too little to give back */

/* While connections are open: once a second, forget the closed ones; once a burst of them is
 * over (half gone), give the memory they used back to the kernel (glibc keeps it otherwise:
 * ~10 MB after 1,000 connections). */
static int on_sweep(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct api_server *srv = userdata;

	(void)usec;
	conns_prune(srv);
	if (srv->peak_conns >= TRIM_PEAK && srv->n_conns <= srv->peak_conns / 2) {
		malloc_trim(0);
		srv->peak_conns = srv->n_conns;
	}
	if (srv->n_conns == 0 && srv->peak_conns < TRIM_PEAK) {
		srv->sweep = sd_event_source_disable_unref(srv->sweep);
		return 0;
	}
	return sd_event_source_set_time_relative(es, SWEEP_US) < 0
		       ? 0
		       : sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
}

void api_server_add_connection(struct api_server *srv, int fd, bool allowed, uid_t uid)
{
	enum api_srv_kind kind = allowed ? API_SRV_MAIN : API_SRV_DENY;
	grpc_server_credentials *creds;
	struct api_conn *conns;
	unsigned of_uid = 0;
	struct stat st;

	if (srv->shutting_down || fstat(fd, &st) < 0) {
		close(fd);
		return;
	}
	conns_prune(srv);
	for (size_t i = 0; i < srv->n_conns; i++)
		of_uid += srv->conns[i].uid == uid;
	if (allowed &&
	    (srv->n_conns >= srv->limits.max_connections || of_uid >= srv->limits.max_per_user)) {
		/* answered with RESOURCE_EXHAUSTED; beyond twice the limit not even that */
		if (srv->n_conns >= 2 * (size_t)srv->limits.max_connections) {
			close(fd);
			return;
		}
		if (clock_mono_us() - srv->busy_logged_us > 5 * 1000 * 1000) {
			srv->busy_logged_us = clock_mono_us();
			log_warning(
				"api: uid %u: too many connections (%zu open, %u of this user); "
				"refusing their calls with RESOURCE_EXHAUSTED",
				(unsigned)uid, srv->n_conns, of_uid);
		}
		kind = API_SRV_BUSY;
	}
	conns = reallocarray(srv->conns, srv->n_conns + 1, sizeof(*conns));
	if (!conns) {
		close(fd);
		return;
	}
	srv->conns = conns;
	srv->conns[srv->n_conns++] =
		(struct api_conn){.fd = fd, .dev = st.st_dev, .ino = st.st_ino, .uid = uid};
	if (srv->n_conns > srv->peak_conns)
		srv->peak_conns = srv->n_conns;
	if (!srv->sweep && sd_event_add_time_relative(srv->event, &srv->sweep, CLOCK_MONOTONIC,
						      SWEEP_US, 0, on_sweep, srv) < 0)
		srv->sweep = NULL;
	creds = grpc_insecure_server_credentials_create();
	grpc_server_add_channel_from_fd(srv->servers[kind], fd, creds);
	grpc_server_credentials_release(creds);
}

void api_server_shutdown(struct api_server *srv, void (*done)(void *userdata), void *userdata)
{
	if (srv->shutting_down)
		return;
	srv->shutting_down = true;
	srv->shutdown_done = done;
	srv->shutdown_userdata = userdata;
	for (struct api_call *c = srv->calls, *next; c; c = next) {
		next = c->next;
		if (c->method && c->method->kind != API_METHOD_UNARY)
			call_end(c, GRPC_STATUS_UNAVAILABLE, "mvirt-vmm is shutting down");
	}
	for (int k = 0; k < API_SRV_N; k++)
		grpc_server_shutdown_and_notify(srv->servers[k], srv->cq, &srv->t_shutdown[k]);
}

/* Runs the loop side by hand until the servers are down and every call is gone (used when
 * the event loop no longer runs). Gives up after timeout_ms. */
static void drain(struct api_server *srv, int timeout_ms)
{
	uint64_t deadline = gpr_now(GPR_CLOCK_MONOTONIC).tv_sec * 1000ULL + (uint64_t)timeout_ms;

	while (srv->servers_down < API_SRV_N || srv->calls || srv->n_requests > 0) {
		struct pollfd pfd = {.fd = srv->wake_fd, .events = POLLIN};
		uint64_t now = gpr_now(GPR_CLOCK_MONOTONIC).tv_sec * 1000ULL;

		if (now > deadline)
			break;
		if (poll(&pfd, 1, 100) > 0)
			on_wake(NULL, srv->wake_fd, POLLIN, srv);
	}
}

void api_server_free(struct api_server *srv)
{
	if (!srv)
		return;
	if (srv->servers[API_SRV_MAIN]) {
		if (!srv->shutting_down)
			api_server_shutdown(srv, NULL, NULL);
		srv->shutdown_done = NULL;
		for (int k = 0; k < API_SRV_N; k++)
			grpc_server_cancel_all_calls(srv->servers[k]);
		if (srv->thread_started)
			drain(srv, 5000);
	}
	if (srv->cq)
		grpc_completion_queue_shutdown(srv->cq);
	if (srv->thread_started)
		pthread_join(srv->thread, NULL);
	for (int k = 0; k < API_SRV_N; k++)
		if (srv->servers[k])
			grpc_server_destroy(srv->servers[k]);
	sd_event_source_disable_unref(srv->sweep);
	free(srv->conns);
	if (srv->cq) {
		grpc_completion_queue_destroy(srv->cq);
		grpc_shutdown();
	}
	sd_event_source_disable_unref(srv->wake_source);
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
	sd_event_unref(srv->event);
	pthread_mutex_destroy(&srv->lock);
	api_stats_done(&srv->stats);
	free(srv);
}
