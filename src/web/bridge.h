/* The web server's bridge to mvirt-vmm: every API call a browser makes goes through the daemon's
 * gRPC API (the CLI's client library, src/cli/client.c) and through nothing else, so the web UI
 * can never do what the daemon would refuse.
 *
 * Two transports, both carrying protobuf messages as the daemon's gRPC API defines them:
 *   POST /api/call/<service>/<method>   a unary call: the body is the request message, the
 *       answer the response message (200, application/x-protobuf) or, for a non-OK status, a
 *       JSON {"code", "status", "message"} with an HTTP status that matches (400 for
 *       INVALID_ARGUMENT, 404, 409, 429, 503 ...); the daemon's message is passed on as is.
 *   WebSocket /api/stream/<service>/<method> (subprotocol "mvirt-stream")   a streaming call:
 *       each binary frame from the browser is one request message, a text frame "end"
 *       half-closes; each binary frame to the browser is one response message, and the last
 *       frame is a text frame with the JSON status, after which the socket closes.
 * A call's completions arrive on a pipe of the client library; bridge adopts it into the
 * libwebsockets loop (protocol BRIDGE_PROTOCOL), so nothing blocks the loop. */
#pragma once

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BRIDGE_PROTOCOL "mvirt-bridge"
#define BRIDGE_BODY_MAX (8u << 20) /* a request message; CreateVm with user_data fits */

struct client;
struct bridge_call;

/* Learns which methods stream, from the API's descriptor set. 0 or -EBADMSG/-ENOMEM. */
int bridge_init(void);

/* The libwebsockets protocol callback for the adopted completion fds. */
int bridge_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len);

/* Starts "<service>/<method>" (e.g. "mvirt.VmService/GetVm") for peer (an HTTP request when
 * ws is false, a WebSocket when true) with the first request message (NULL for a WebSocket: its
 * frames follow). On failure *http_status and a JSON body in *ret_err (caller frees) say why;
 * returns 0 or -errno. */
int bridge_start(struct client *client, struct lws_vhost *vh, struct lws *peer, bool ws,
		 const char *path, const uint8_t *req, size_t len, struct bridge_call **ret,
		 unsigned *http_status, char **ret_err);

/* The peer is gone: cancel the call; it is freed once its completions are drained. */
void bridge_detach(struct bridge_call *call);

/* WebSocket input: one request message, or the end of them. 0, -EBADMSG (does not parse),
 * -ENOBUFS (too many queued) or -EPIPE (the call is over). */
int bridge_send(struct bridge_call *call, const uint8_t *msg, size_t len);
int bridge_close_send(struct bridge_call *call);

/* Unary: once the call is over (the peer was asked to write), the answer: HTTP status, content
 * type and body (borrowed until bridge_detach). */
bool bridge_unary_done(const struct bridge_call *call, unsigned *status, const char **ctype,
		       const uint8_t **body, size_t *len);

/* WebSocket: writes the next queued frame to the peer. Returns 1 if more remain, 0 when the
 * queue is empty and the call goes on, -1 when the last frame (the status) has been written:
 * close the socket. */
int bridge_ws_write(struct bridge_call *call);
