/* The API server: gRPC core (C API) on one side, the daemon's sd-event loop on the other.
 *
 * Threading: one thread runs the gRPC completion queue and does nothing but hand every
 * completed operation to the event loop (a locked FIFO plus an eventfd). Everything else, all
 * method handlers included, runs on the event loop, which alone owns VM state. grpc_call_*
 * functions are thread-safe, so handlers start batches directly.
 *
 * Two grpc_server instances share the completion queue: connections from authorized peers are
 * handed to the main server, all others to a "deny" server that answers every call with
 * PERMISSION_DENIED (see listener.c). Methods are looked up by their full path in the tables
 * given to api_server_new().
 *
 * A call is owned by this module. A handler finishes a unary call with api_call_reply() or
 * api_call_fail*() exactly once, now or later (the call stays valid until then). Streaming
 * handlers send with api_call_send() and end with api_call_finish(); once a stream is over
 * (ended by the handler, by the daemon's shutdown, or by the client going away) the method's
 * on_cancel hook runs, and the handler must drop every pointer to the call there. */
#pragma once

#include <grpc/grpc.h>
#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "common/err.h"

struct api_server;
struct api_call;

enum api_method_kind {
	API_METHOD_UNARY,
	API_METHOD_SERVER_STREAM, /* one request, many responses */
	API_METHOD_BIDI_STREAM,   /* many requests, many responses */
};

struct api_method {
	const char *path; /* "/mvirt.VmService/GetVm" */
	enum api_method_kind kind;
	const ProtobufCMessageDescriptor *request;
	/* Called with each request message: once for unary and server-stream methods; for
	 * bidi-stream methods once per message and once more with req == NULL at the client's
	 * half-close. req is freed after the call returns. */
	void (*handle)(struct api_call *call, const ProtobufCMessage *req);
	/* Streams only: the call is over (finished, cancelled, connection lost) and about to be
	 * freed. Called exactly once. Drop every reference to it. May be NULL. */
	void (*on_cancel)(struct api_call *call);
};

/* A row of a method table for a unary method: path "/mvirt.VmService/GetVm", type the
 * request's protobuf-c name (mvirt__get_vm_request), fn its handler. */
#define API_UNARY(path_, type, fn)                                                                 \
	{                                                                                          \
		.path = (path_), .kind = API_METHOD_UNARY, .request = &type##__descriptor,         \
		.handle = (fn),                                                                    \
	}

/* The gRPC servers a connection may go to: the API, the one that answers every call with
 * PERMISSION_DENIED (a peer not allowed), and the one that answers RESOURCE_EXHAUSTED (a peer
 * over the connection limits). */
enum api_srv_kind { API_SRV_MAIN, API_SRV_DENY, API_SRV_BUSY, API_SRV_N };

#define API_MAX_STREAMS_PER_CONNECTION 100
#define API_MAX_CALLS 4096 /* calls and streams at once, over all connections */

struct api_limits {
	unsigned max_connections; /* open at once, all peers */
	unsigned max_per_user;    /* open at once, one uid */
	unsigned idle_timeout_s;  /* a connection without calls is closed after it */
};

/* A connection handed to gRPC, known by its socket's identity (gRPC closes the fd itself). */
struct api_conn {
	int fd;
	dev_t dev;
	ino_t ino;
	uid_t uid;
};

/* Creates the servers and the completion-queue thread; handlers see userdata through
 * api_call_userdata(). tables is a NULL-terminated array of { method... , {NULL} } arrays. */
int api_server_new(sd_event *event, const struct api_method *const *tables, void *userdata,
		   const struct api_limits *limits, struct api_server **ret);

/* Hands an accepted, connected socket of peer uid to gRPC (ownership of fd passes, even on
 * failure). allowed selects the main server or the PERMISSION_DENIED one; a peer over the
 * limits gets the RESOURCE_EXHAUSTED one (and, beyond twice the total, a closed socket). */
void api_server_add_connection(struct api_server *srv, int fd, bool allowed, uid_t uid);

/* Begins a graceful shutdown: no new calls (they get UNAVAILABLE), streams end with
 * UNAVAILABLE, in-flight unary calls complete. done(userdata) runs on the loop once all calls
 * are gone (its own userdata: the server's goes to the method handlers). */
void api_server_shutdown(struct api_server *srv, void (*done)(void *userdata), void *userdata);

/* Stops the thread and frees everything. Calls still alive are cancelled. */
void api_server_free(struct api_server *srv);

void *api_call_userdata(struct api_call *call);
/* The server's call statistics (api_metrics.h), for GetMetrics. */
struct api_stats;
const struct api_stats *api_call_stats(struct api_call *call);
const char *api_call_method(struct api_call *call);
/* Per-call state of a streaming handler. */
void api_call_set_data(struct api_call *call, void *data);
void *api_call_get_data(struct api_call *call);

/* Streams: sends the response headers now, so that a client can tell its stream is
 * established (e.g. a watcher subscribed) before any message flows. */
void api_call_begin_stream(struct api_call *call);

/* The handler answers later (after asynchronous work): the call stays valid until it is
 * answered, even if the client goes away meanwhile (answers to a gone client are dropped). */
void api_call_hold(struct api_call *call);
/* True once the client is gone (cancelled, deadline exceeded, connection lost). */
bool api_call_is_cancelled(struct api_call *call);

/* Unary: sends msg and status OK. */
void api_call_reply(struct api_call *call, const ProtobufCMessage *msg);
/* Ends the call with status and a message (printf-style). */
void api_call_fail(struct api_call *call, grpc_status_code status, const char *fmt, ...)
	_printf_(3, 4);
/* Ends the call with the gRPC status of err->kind (api_status_from_kind) and err->msg. */
void api_call_fail_err(struct api_call *call, const struct mv_error *err);

/* Streams: queues msg (serialized now; msg stays the caller's). Returns -ECANCELED when the
 * call is over, -ENOBUFS when more than max_queued messages wait (the caller decides whether
 * to cut the client off). */
int api_call_send(struct api_call *call, const ProtobufCMessage *msg, size_t max_queued);
/* Streams: ends the call with status after the queued messages. */
void api_call_finish(struct api_call *call, grpc_status_code status, const char *details);
/* Number of messages queued and not yet sent. */
size_t api_call_queued(struct api_call *call);

/* The gRPC status of an error kind (api_status.c): the one place where kinds become statuses.
 * MV_ERR_NONE (nothing recorded) is INTERNAL: a failure without a kind is the daemon's fault. */
grpc_status_code api_status_from_kind(enum mv_error_kind kind);
