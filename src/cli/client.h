/* The CLI's gRPC client (also mvirt-web's and the benchmarks'): unary and streaming calls to
 * mvirt-vmm, gRPC over HTTP/2 with nghttp2 (client.c says why not gRPC core), messages packed
 * and unpacked with protobuf-c descriptors. Plaintext (h2c): the daemon listens on a Unix
 * socket and on loopback TCP. Targets as gRPC writes them: "unix:/path", "unix:///path",
 * "host:port", "[::1]:port", "dns:///host:port", "ipv4:..." and "ipv6:...".
 *
 * A connection counts as made once the daemon's HTTP/2 SETTINGS came, within
 * CLIENT_CONNECT_TIMEOUT_S, so that an absent daemon, or a peer that is not one, fails in
 * that time; each unary call then has a deadline of CLIENT_CALL_TIMEOUT_S (sent as
 * grpc-timeout too), streams have none. Silent: results and errors are returned to the caller
 * (cli.c, the cmd_*.c files, mvirt-web, the benchmarks), which prints them. */
#pragma once

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#define CLIENT_CONNECT_TIMEOUT_S 5
#define CLIENT_CALL_TIMEOUT_S 30
#define CLIENT_MESSAGE_MAX (64 * 1024 * 1024)

struct client;

struct client_status {
	grpc_status_code code;
	bool unreachable; /* no connection could be made: code is UNAVAILABLE or DEADLINE_EXCEEDED */
	char message[1024];
};

/* Creates a client for a gRPC target ("unix:/run/mvirt/mvirt.sock", "127.0.0.1:50051"); does not
 * connect yet. Returns 0 or -ENOMEM. */
int client_new(const char *target, struct client **ret);
/* NULL-safe. */
void client_free(struct client *c);

/* Calls method of service with req (borrowed; its descriptor must be the method's input) and
 * stores the unpacked response in *ret_resp (free with protobuf_c_message_free_unpacked).
 * Returns 0 on status OK; otherwise fills *st and returns -ECONNREFUSED (daemon unreachable,
 * st->unreachable set), -EREMOTEIO (the daemon answered with a non-OK status), -EBADMSG (the
 * response does not parse), -EINVAL (no such method) or -ENOMEM. */
int client_call(struct client *c, const ProtobufCServiceDescriptor *service, const char *method,
		const ProtobufCMessage *req, ProtobufCMessage **ret_resp, struct client_status *st);

/* ---- streaming calls (server-stream and bidi) ----
 *
 * A stream is driven by its owner's thread through client_stream_next(), on a connection of
 * its own; client_stream_fd() can sit in the owner's poll() beside other fds (stdin, a signal
 * pipe) and is readable when client_stream_next() has something to do. At most one send is
 * outstanding (client_stream_can_send()); receiving is automatic, and a message's bytes are
 * given back to the daemon's HTTP/2 flow-control window only when it is handed out, so a
 * reader that stops calling client_stream_next() stops the server's flow. The stream borrows
 * its client, which must outlive it. */
struct client_stream;

enum client_stream_event {
	CLIENT_STREAM_NONE,    /* nothing within the timeout */
	CLIENT_STREAM_HEADERS, /* the server's response headers: the stream is established, or the
				* call ended at once (a trailers-only answer): then
				* CLIENT_STREAM_END follows at once */
	CLIENT_STREAM_MESSAGE, /* a message from the server */
	CLIENT_STREAM_SENT,    /* the outstanding send completed; the next one may start */
	CLIENT_STREAM_END, /* the call is over (after the last message): client_stream_status() */
};

/* Starts a call of method of service (no deadline) and stores it in *ret; nothing is sent yet.
 * Returns 0, or fills *st and returns -ECONNREFUSED (daemon unreachable, st->unreachable set),
 * -EINVAL (no such method) or -ENOMEM/-EIO. A daemon that goes away later ends the stream with
 * UNAVAILABLE (CLIENT_STREAM_END). */
int client_stream_open(struct client *c, const ProtobufCServiceDescriptor *service,
		       const char *method, struct client_stream **ret, struct client_status *st);
/* Cancels the call if it is not over, waits for its outstanding operations, frees. NULL-safe. */
void client_stream_free(struct client_stream *s);

/* Readable when client_stream_next() has something to report. */
int client_stream_fd(const struct client_stream *s);
/* True when no send is outstanding and the stream is neither half-closed nor over. */
bool client_stream_can_send(const struct client_stream *s);

/* Starts sending msg (packed now: msg stays the caller's; its descriptor must be the method's
 * input); completion is reported as CLIENT_STREAM_SENT. Returns 0, -EBUSY (a send is
 * outstanding), -EPIPE (half-closed, over, or an earlier send failed), -EINVAL or -ENOMEM. */
int client_stream_send(struct client_stream *s, const ProtobufCMessage *msg);
/* Half-closes: the server sees the end of the requests once the outstanding send is done.
 * Idempotent. Returns 0 or -EIO. */
int client_stream_close_send(struct client_stream *s);
/* Cancels the call: the outstanding operations fail and CLIENT_STREAM_END follows with
 * CANCELLED (unless the call was already over). */
void client_stream_cancel(struct client_stream *s);

/* Waits up to timeout_ms (0: just look, -1: forever) for the next event and returns it. For
 * CLIENT_STREAM_MESSAGE, *ret_msg is the unpacked message (free it with
 * protobuf_c_message_free_unpacked); otherwise *ret_msg is untouched. CLIENT_STREAM_END is
 * returned once; later calls return CLIENT_STREAM_NONE at once. Returns the event, -EINTR (a
 * signal interrupted the wait), -EBADMSG (a message does not parse: the call is cancelled) or
 * -EIO. */
int client_stream_next(struct client_stream *s, int timeout_ms, ProtobufCMessage **ret_msg);
/* The final status, valid once CLIENT_STREAM_END was returned. */
const struct client_status *client_stream_status(const struct client_stream *s);

/* "NOT_FOUND" for GRPC_STATUS_NOT_FOUND, "UNKNOWN_STATUS" if out of range. */
const char *client_status_code_name(grpc_status_code code);
