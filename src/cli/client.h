/* The CLI's gRPC client: unary calls to mvirt-vmm over gRPC core's C API, messages packed and
 * unpacked with protobuf-c descriptors. One channel per client, insecure credentials (the
 * daemon listens on a Unix socket and on loopback TCP), no HTTP proxy.
 *
 * Before the first call the channel is connected with a short deadline, so that an absent daemon
 * fails within CLIENT_CONNECT_TIMEOUT_S; each call then has a deadline of CLIENT_CALL_TIMEOUT_S.
 * Silent: results and errors are returned to the caller (cli.c), which prints them. */
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

/* "NOT_FOUND" for GRPC_STATUS_NOT_FOUND, "UNKNOWN_STATUS" if out of range. */
const char *client_status_code_name(grpc_status_code code);
