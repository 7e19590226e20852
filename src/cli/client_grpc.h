/* The gRPC part of the client's wire format, apart from HTTP/2 (client.c, nghttp2): the
 * length-prefixed messages of a response body, and the status headers (grpc-status,
 * grpc-message, content-type, and the HTTP status when there is no gRPC one), as the gRPC
 * over HTTP/2 protocol (PROTOCOL-HTTP2.md) defines them. Pure functions over bytes: unit
 * tested and fuzzed (tests/fuzz/fuzz_grpc_frames.c). */
#pragma once

#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a response body as they arrive, and the messages they hold. */
struct grpc_frames {
	uint8_t *buf;
	size_t len, off, cap;        /* buf[off..len) is not handed out yet */
	size_t checked;              /* offset of the next message prefix not yet checked */
	size_t max;                  /* the largest message accepted; 0: CLIENT_MESSAGE_MAX */
	grpc_status_code error_code; /* set when a prefix was refused (0: none) */
	char error[128];
};

struct grpc_message {
	const uint8_t *data; /* inside the frames' buffer: valid until the next add */
	size_t len;
};

/* Appends received bytes. Returns 0, or -EMSGSIZE (a message is longer than max), -EPROTO (a
 * compressed message: no compression was offered) or -ENOMEM, with error_code and error set;
 * after an error nothing more is accepted. */
int grpc_frames_add(struct grpc_frames *f, const uint8_t *data, size_t len);
/* True when a whole message is there. */
bool grpc_frames_ready(const struct grpc_frames *f);
/* The next whole message into *m: 1, or 0 when there is none (yet). */
int grpc_frames_next(struct grpc_frames *f, struct grpc_message *m);
void grpc_frames_free(struct grpc_frames *f);

/* grpc-status's value: the code, or GRPC_STATUS_UNKNOWN for anything but a number 0..16. */
grpc_status_code grpc_parse_status(const char *value, size_t len);
/* grpc-message's value, percent-decoded (%XX; a bad escape is kept as it is); malloc'd, NULL
 * when out of memory. */
char *grpc_percent_decode(const char *value, size_t len);
/* content-type: "application/grpc", optionally followed by "+proto" or ";...". */
bool grpc_is_content_type(const char *value, size_t len);
/* The status of an answer with an HTTP status but no grpc-status (the protocol's table). */
grpc_status_code grpc_status_from_http(int http_status);
