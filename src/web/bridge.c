/* See bridge.h. A call lives until both its peer is done with it (answered, or gone) and its
 * adopted completion fd is closed; whichever comes last frees it. */
#include "bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "common/macro.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "mvirt.pb-c.h"

#define QUEUE_MAX (1u << 20) /* bytes queued for a WebSocket before reading pauses */
#define QUEUE_RESUME (256u << 10)
#define INPUT_MAX 64 /* request messages waiting for the previous send */

struct frame {
	struct frame *next;
	bool text;
	size_t len;
	uint8_t data[]; /* LWS_PRE bytes, then len */
};

struct bridge_call {
	struct client_stream *stream;
	const ProtobufCMethodDescriptor *method;
	struct lws *raw;  /* the adopted dup of the stream's fd; NULL once closed */
	struct lws *peer; /* NULL once the peer is gone */
	bool ws, ended, paused, closing_send;
	bool ready_pending; /* the daemon's headers came: tell the peer unless END follows */
	/* unary */
	unsigned http_status;
	char *body; /* response message, or the status JSON */
	size_t body_len;
	int n_msgs;
	/* WebSocket: frames to the peer, and request messages waiting to be sent */
	struct frame *out_head, *out_tail;
	size_t queued;
	ProtobufCMessage *input[INPUT_MAX];
	size_t n_input;
};

extern const unsigned char mvirt_descriptor_set[];
extern const size_t mvirt_descriptor_set_len;

/* "mvirt.VmService/WatchVms" for each method that streams (either way), from the API's own
 * descriptor set (protobuf-c's method descriptors do not say). */
static char **streaming;
static size_t n_streaming;

int bridge_init(void)
{
	Google__Protobuf__FileDescriptorSet *set = google__protobuf__file_descriptor_set__unpack(
		NULL, mvirt_descriptor_set_len, mvirt_descriptor_set);

	if (!set)
		return -EBADMSG;
	for (size_t f = 0; f < set->n_file; f++) {
		const Google__Protobuf__FileDescriptorProto *fd = set->file[f];

		for (size_t i = 0; i < fd->n_service; i++)
			for (size_t k = 0; k < fd->service[i]->n_method; k++) {
				const Google__Protobuf__MethodDescriptorProto *m =
					fd->service[i]->method[k];
				char **v;

				if (!m->server_streaming && !m->client_streaming)
					continue;
				v = realloc(streaming, (n_streaming + 1) * sizeof(*v));
				if (!v)
					break;
				streaming = v;
				if (asprintf(&v[n_streaming], "%s%s%s/%s",
					     fd->package ? fd->package : "", fd->package ? "." : "",
					     fd->service[i]->name, m->name) >= 0)
					n_streaming++;
			}
	}
	google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
	return 0;
}

static bool is_streaming(const char *path)
{
	for (size_t i = 0; i < n_streaming; i++)
		if (streq(streaming[i], path))
			return true;
	return false;
}

static const ProtobufCServiceDescriptor *const services[] = {
	&mvirt__vm_service__descriptor,
	&mvirt__volume_service__descriptor,
	&mvirt__network_service__descriptor,
};

static void call_free(struct bridge_call *c)
{
	client_stream_free(c->stream);
	for (struct frame *f = c->out_head, *next; f; f = next) {
		next = f->next;
		free(f);
	}
	for (size_t i = 0; i < c->n_input; i++)
		protobuf_c_message_free_unpacked(c->input[i], NULL);
	free(c->body);
	free(c);
}

static void call_maybe_free(struct bridge_call *c)
{
	if (!c->raw && !c->peer)
		call_free(c);
}

static unsigned http_of(grpc_status_code code)
{
	switch (code) {
	case GRPC_STATUS_OK:
		return 200;
	case GRPC_STATUS_INVALID_ARGUMENT:
	case GRPC_STATUS_OUT_OF_RANGE:
		return 400;
	case GRPC_STATUS_UNAUTHENTICATED:
		return 401;
	case GRPC_STATUS_PERMISSION_DENIED:
		return 403;
	case GRPC_STATUS_NOT_FOUND:
		return 404;
	case GRPC_STATUS_ALREADY_EXISTS:
	case GRPC_STATUS_ABORTED:
	case GRPC_STATUS_FAILED_PRECONDITION:
		return 409;
	case GRPC_STATUS_RESOURCE_EXHAUSTED:
		return 429;
	case GRPC_STATUS_CANCELLED:
		return 499;
	case GRPC_STATUS_UNIMPLEMENTED:
		return 501;
	case GRPC_STATUS_UNAVAILABLE:
		return 503;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		return 504;
	default:
		return 500;
	}
}

/* {"code": N, "status": "NAME", "message": "..."}; NULL on ENOMEM. */
static char *status_json(grpc_status_code code, const char *message)
{
	struct json_object *o = json_object_new_object();
	char *s = NULL;

	if (o && json_object_object_add(o, "code", json_object_new_int(code)) == 0 &&
	    json_object_object_add(o, "status",
				   json_object_new_string(client_status_code_name(code))) == 0 &&
	    json_object_object_add(o, "message", json_object_new_string(message)) == 0)
		s = strdup(json_object_to_json_string_ext(
			o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static int fail(unsigned status, grpc_status_code code, const char *message, unsigned *http_status,
		char **ret_err)
{
	*http_status = status;
	*ret_err = status_json(code, message);
	return -EINVAL;
}

static int queue(struct bridge_call *c, bool text, const void *data, size_t len)
{
	struct frame *f = malloc(sizeof(*f) + LWS_PRE + len);

	if (!f)
		return -ENOMEM;
	f->next = NULL;
	f->text = text;
	f->len = len;
	memcpy(f->data + LWS_PRE, data, len);
	if (c->out_tail)
		c->out_tail->next = f;
	else
		c->out_head = f;
	c->out_tail = f;
	c->queued += len;
	if (c->queued > QUEUE_MAX && c->raw && !c->paused) {
		lws_rx_flow_control(c->raw, 0);
		c->paused = true;
	}
	return 0;
}

/* The next waiting request message, if a send can start. */
static void send_pending(struct bridge_call *c)
{
	while (c->n_input > 0 && client_stream_can_send(c->stream)) {
		ProtobufCMessage *m = c->input[0];

		memmove(c->input, c->input + 1, --c->n_input * sizeof(c->input[0]));
		(void)client_stream_send(c->stream, m);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	if (c->n_input == 0 && c->closing_send)
		(void)client_stream_close_send(c->stream);
}

static void on_message(struct bridge_call *c, ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(n ? n : 1);

	if (!buf) {
		client_stream_cancel(c->stream);
		return;
	}
	protobuf_c_message_pack(msg, buf);
	if (c->ws) {
		if (queue(c, false, buf, n) < 0)
			client_stream_cancel(c->stream);
		else if (c->peer)
			lws_callback_on_writable(c->peer);
		free(buf);
		return;
	}
	if (c->n_msgs++ == 0) {
		c->body = (char *)buf;
		c->body_len = n;
		return;
	}
	free(buf); /* a second answer: not a unary method */
	client_stream_cancel(c->stream);
}

static void on_end(struct bridge_call *c)
{
	const struct client_status *st = client_stream_status(c->stream);
	grpc_status_code code = st->code;
	const char *message = st->message;
	char *json;

	c->ended = true;
	if (!c->ws && code == GRPC_STATUS_CANCELLED && c->n_msgs > 1) {
		code = GRPC_STATUS_UNIMPLEMENTED;
		message = "a streaming method: call it over the WebSocket /api/stream/";
	} else if (!c->ws && code == GRPC_STATUS_OK && c->n_msgs != 1) {
		code = GRPC_STATUS_INTERNAL;
		message = "the daemon sent no answer";
	}
	json = status_json(code, message);
	if (c->ws) {
		/* without memory for it, the close without a status frame tells */
		if (json)
			(void)queue(c, true, json, strlen(json));
		free(json);
	} else {
		c->http_status = http_of(code);
		if (code != GRPC_STATUS_OK) {
			free(c->body);
			c->body = json;
			c->body_len = json ? strlen(json) : 0;
		} else
			free(json);
	}
	if (c->peer)
		lws_callback_on_writable(c->peer);
}

/* The daemon has taken the call (its response headers): for WatchVms, no event after this
 * frame is missed. Held back until the next event, as a trailers-only answer (an error at
 * once) has its END right after the headers. */
static void tell_ready(struct bridge_call *c)
{
	static const char ready[] = "{\"ready\":true}";

	if (!c->ready_pending)
		return;
	c->ready_pending = false;
	if (queue(c, true, ready, strlen(ready)) < 0)
		client_stream_cancel(c->stream);
	else if (c->peer)
		lws_callback_on_writable(c->peer);
}

/* Everything the stream has to report now. 0, or -1 once it is over (close the raw fd). */
static int pump(struct bridge_call *c)
{
	for (int i = 0; i < 64; i++) {
		ProtobufCMessage *msg = NULL;
		int ev = client_stream_next(c->stream, 0, &msg);

		if (ev == CLIENT_STREAM_END)
			c->ready_pending = false;
		else if (ev != CLIENT_STREAM_HEADERS)
			tell_ready(c);
		switch (ev) {
		case CLIENT_STREAM_NONE:
			return 0;
		case CLIENT_STREAM_HEADERS:
			c->ready_pending = c->ws;
			break;
		case CLIENT_STREAM_SENT:
			send_pending(c);
			break;
		case CLIENT_STREAM_MESSAGE:
			on_message(c, msg);
			protobuf_c_message_free_unpacked(msg, NULL);
			if (c->paused)
				return 0;
			break;
		case CLIENT_STREAM_END:
			on_end(c);
			return -1;
		default:
			if (ev == -EINTR)
				break;
			client_stream_cancel(c->stream); /* END follows */
			break;
		}
	}
	return 0;
}

int bridge_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct bridge_call *c = lws_get_opaque_user_data(wsi);

	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (!c)
			return -1;
		return pump(c);
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (c) {
			c->raw = NULL;
			lws_set_opaque_user_data(wsi, NULL);
			call_maybe_free(c);
		}
		return 0;
	default:
		return 0;
	}
}

/* "mvirt.VmService/GetVm" → the method. */
static const ProtobufCMethodDescriptor *find_method(const char *path)
{
	const char *slash = strchr(path, '/');

	if (!slash || strchr(slash + 1, '/'))
		return NULL;
	for (size_t i = 0; i < ELEMENTSOF(services); i++) {
		size_t n = strlen(services[i]->name);

		if ((size_t)(slash - path) == n && strncmp(path, services[i]->name, n) == 0)
			return protobuf_c_service_descriptor_get_method_by_name(services[i],
										slash + 1);
	}
	return NULL;
}

static const ProtobufCServiceDescriptor *service_of(const char *path)
{
	for (size_t i = 0; i < ELEMENTSOF(services); i++) {
		size_t n = strlen(services[i]->name);

		if (strncmp(path, services[i]->name, n) == 0 && path[n] == '/')
			return services[i];
	}
	return NULL;
}

int bridge_start(struct client *client, struct lws_vhost *vh, struct lws *peer, bool ws,
		 const char *path, const uint8_t *req, size_t len, struct bridge_call **ret,
		 unsigned *http_status, char **ret_err)
{
	const ProtobufCMethodDescriptor *m = find_method(path);
	ProtobufCMessage *msg = NULL;
	struct client_status st = {0};
	struct bridge_call *c;
	lws_sock_file_fd_type u;
	char what[256];
	int r, fd;

	*ret = NULL;
	*ret_err = NULL;
	if (!m) {
		snprintf(what, sizeof(what), "no such method: %s", path);
		return fail(404, GRPC_STATUS_UNIMPLEMENTED, what, http_status, ret_err);
	}
	if (!ws && is_streaming(path)) {
		snprintf(what, sizeof(what),
			 "%s streams: call it over the WebSocket /api/stream/%s", path, path);
		return fail(400, GRPC_STATUS_INVALID_ARGUMENT, what, http_status, ret_err);
	}
	if (!ws) {
		msg = protobuf_c_message_unpack(m->input, NULL, len, req);
		if (!msg) {
			snprintf(what, sizeof(what), "the body is not a %s message",
				 m->input->name);
			return fail(400, GRPC_STATUS_INVALID_ARGUMENT, what, http_status, ret_err);
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		protobuf_c_message_free_unpacked(msg, NULL);
		return fail(500, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", http_status,
			    ret_err);
	}
	c->method = m;
	c->ws = ws;
	r = client_stream_open(client, service_of(path), m->name, &c->stream, &st);
	if (r >= 0 && msg) {
		r = client_stream_send(c->stream, msg);
		if (r >= 0)
			r = client_stream_close_send(c->stream);
	}
	protobuf_c_message_free_unpacked(msg, NULL);
	if (r < 0) {
		call_free(c);
		if (!st.message[0])
			snprintf(st.message, sizeof(st.message), "cannot call %s: %s", path,
				 strerror(-r));
		return fail(st.unreachable ? 503 : 500, st.code ? st.code : GRPC_STATUS_INTERNAL,
			    st.message, http_status, ret_err);
	}
	fd = fcntl(client_stream_fd(c->stream), F_DUPFD_CLOEXEC, 3);
	u.filefd = fd;
	c->raw = fd < 0 ? NULL
			: lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u,
						     BRIDGE_PROTOCOL, NULL);
	if (!c->raw) {
		if (fd >= 0)
			close(fd);
		call_free(c);
		return fail(500, GRPC_STATUS_RESOURCE_EXHAUSTED, "cannot watch the call",
			    http_status, ret_err);
	}
	lws_set_opaque_user_data(c->raw, c);
	c->peer = peer;
	*ret = c;
	return 0;
}

void bridge_detach(struct bridge_call *c)
{
	if (!c)
		return;
	c->peer = NULL;
	if (!c->ended)
		client_stream_cancel(c->stream);
	call_maybe_free(c);
}

int bridge_send(struct bridge_call *c, const uint8_t *msg, size_t len)
{
	ProtobufCMessage *m;

	if (c->ended || c->closing_send)
		return -EPIPE;
	if (c->n_input >= INPUT_MAX)
		return -ENOBUFS;
	m = protobuf_c_message_unpack(c->method->input, NULL, len, msg);
	if (!m)
		return -EBADMSG;
	c->input[c->n_input++] = m;
	send_pending(c);
	return 0;
}

int bridge_close_send(struct bridge_call *c)
{
	if (c->ended)
		return -EPIPE;
	c->closing_send = true;
	send_pending(c);
	return 0;
}

bool bridge_unary_done(const struct bridge_call *c, unsigned *status, const char **ctype,
		       const uint8_t **body, size_t *len)
{
	if (!c->ended)
		return false;
	*status = c->http_status;
	*ctype = c->http_status == 200 ? "application/x-protobuf" : "application/json";
	*body = (const uint8_t *)c->body;
	*len = c->body_len;
	return true;
}

int bridge_ws_write(struct bridge_call *c)
{
	struct frame *f = c->out_head;
	bool last;

	if (!f)
		return c->ended ? -1 : 0;
	c->out_head = f->next;
	if (!c->out_head)
		c->out_tail = NULL;
	c->queued -= f->len;
	last = c->ended && !c->out_head;
	if (lws_write(c->peer, f->data + LWS_PRE, f->len,
		      f->text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY) < (int)f->len) {
		free(f);
		return -1;
	}
	free(f);
	if (c->paused && c->queued < QUEUE_RESUME && c->raw) {
		lws_rx_flow_control(c->raw, 1); /* the pipe is still readable: reading resumes */
		c->paused = false;
	}
	if (last)
		return -1;
	return c->out_head ? 1 : 0;
}
