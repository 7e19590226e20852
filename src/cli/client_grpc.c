/* See client_grpc.h. */
#include "client_grpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "common/macro.h"

static uint32_t prefix_len(const uint8_t *p)
{
	return (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
}

static int refuse(struct grpc_frames *f, grpc_status_code code, int r, const char *msg)
{
	f->error_code = code;
	snprintf(f->error, sizeof(f->error), "%s", msg);
	return r;
}

/* Checks the prefixes of the messages that arrived whole enough to have one. */
static int check_prefixes(struct grpc_frames *f)
{
	size_t max = f->max ? f->max : CLIENT_MESSAGE_MAX;

	while (f->len - f->checked >= 5) {
		const uint8_t *p = f->buf + f->checked;
		uint32_t n = prefix_len(p);

		if (p[0] != 0)
			return refuse(f, GRPC_STATUS_INTERNAL, -EPROTO,
				      "the daemon sent a compressed message (none was offered)");
		if (n > max) {
			char msg[128];

			snprintf(msg, sizeof(msg),
				 "the daemon's message of %u bytes is over the %zu "
				 "allowed",
				 n, max);
			return refuse(f, GRPC_STATUS_RESOURCE_EXHAUSTED, -EMSGSIZE, msg);
		}
		if (f->len - f->checked - 5 < n)
			break;
		f->checked += 5 + (size_t)n;
	}
	return 0;
}

int grpc_frames_add(struct grpc_frames *f, const uint8_t *data, size_t len)
{
	if (f->error_code)
		return -EPROTO;
	if (len == 0)
		return 0;
	if (f->off > 0 && (f->off == f->len || f->len + len > f->cap)) {
		/* what was handed out goes before the buffer grows */
		memmove(f->buf, f->buf + f->off, f->len - f->off);
		f->len -= f->off;
		f->checked -= f->off;
		f->off = 0;
	}
	if (f->len + len > f->cap) {
		size_t cap = f->cap ? f->cap : 4096;
		uint8_t *p;

		while (cap < f->len + len)
			cap *= 2;
		p = realloc(f->buf, cap);
		if (!p)
			return refuse(f, GRPC_STATUS_RESOURCE_EXHAUSTED, -ENOMEM, "out of memory");
		f->buf = p;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, data, len);
	f->len += len;
	return check_prefixes(f);
}

bool grpc_frames_ready(const struct grpc_frames *f)
{
	return f->checked > f->off;
}

int grpc_frames_next(struct grpc_frames *f, struct grpc_message *m)
{
	if (!grpc_frames_ready(f))
		return 0;
	m->len = prefix_len(f->buf + f->off);
	m->data = f->buf + f->off + 5;
	f->off += 5 + m->len;
	return 1;
}

void grpc_frames_free(struct grpc_frames *f)
{
	free(f->buf);
	*f = (struct grpc_frames){0};
}

grpc_status_code grpc_parse_status(const char *value, size_t len)
{
	unsigned v = 0;

	if (len == 0 || len > 2)
		return GRPC_STATUS_UNKNOWN;
	for (size_t i = 0; i < len; i++) {
		if (value[i] < '0' || value[i] > '9')
			return GRPC_STATUS_UNKNOWN;
		v = v * 10 + (unsigned)(value[i] - '0');
	}
	return v <= GRPC_STATUS_UNAUTHENTICATED ? (grpc_status_code)v : GRPC_STATUS_UNKNOWN;
}

char *grpc_percent_decode(const char *value, size_t len)
{
	char *out = malloc(len + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (value[i] == '%' && i + 2 < len && (hi = hex_value(value[i + 1])) >= 0 &&
		    (lo = hex_value(value[i + 2])) >= 0) {
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else
			*o++ = value[i];
	}
	*o = '\0';
	return out;
}

bool grpc_is_content_type(const char *value, size_t len)
{
	static const char ct[] = "application/grpc";
	size_t n = sizeof(ct) - 1;

	return len >= n && strncmp(value, ct, n) == 0 &&
	       (len == n || value[n] == '+' || value[n] == ';');
}

grpc_status_code grpc_status_from_http(int http_status)
{
	switch (http_status) {
	case 400:
		return GRPC_STATUS_INTERNAL;
	case 401:
		return GRPC_STATUS_UNAUTHENTICATED;
	case 403:
		return GRPC_STATUS_PERMISSION_DENIED;
	case 404:
		return GRPC_STATUS_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return GRPC_STATUS_UNAVAILABLE;
	default:
		return GRPC_STATUS_UNKNOWN;
	}
}
