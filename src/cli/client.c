/* See client.h. gRPC over HTTP/2 (h2c, prior knowledge) as nghttp2 frames it, with no gRPC
 * core: linking libgrpc brings ~50 shared libraries (abseil, re2, c-ares, OpenSSL...) whose
 * dynamic linking alone cost every CLI call ~10 ms before main() (callgrind: 11.7M of the
 * 12.1M instructions of `mvirt --version` were ld.so's relocations). What a client needs of
 * gRPC is small: a POST per call with content-type application/grpc and te: trailers,
 * messages as 5-byte length-prefixed frames, and the status in the trailers (grpc-status,
 * grpc-message percent-encoded), or in the headers of a trailers-only answer.
 *
 * A connection (struct conn) is one socket and one nghttp2 session, driven from the calling
 * thread only: nghttp2 reads from and writes to the non-blocking socket through the callbacks
 * below. The client keeps one connection for its unary calls, made at the first call and made
 * again when the daemon closed it (a restart); a unary call waits on it with poll() until its
 * stream is closed. Each stream has a connection of its own, so that its owner can poll one fd
 * for it: client_stream_fd() is an epoll fd over the socket (in when the daemon sent
 * something, out while nghttp2 has something to write) and an eventfd that is set while
 * events are waiting to be handed out, so it is readable exactly when client_stream_next()
 * has something to do.
 *
 * Flow control is HTTP/2's: a unary call's bytes are consumed as they arrive; a stream's only
 * as its messages are handed out, so a reader that stops calling client_stream_next() stops
 * the daemon's flow once the window (STREAM_WINDOW) is full. */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client_grpc.h"
#include "common/macro.h"

#define STREAM_WINDOW (1 << 20) /* per stream, before the reader hands messages out */
#define CONN_WINDOW (16 << 20)  /* per connection */
#define READ_CHUNK (64 * 1024)
#define WRITE_GATHER (256 * 1024) /* frames gathered into one send() at most */
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

struct conn {
	int fd;
	nghttp2_session *h2;
	bool ready;    /* the daemon's SETTINGS arrived: it speaks HTTP/2 */
	bool dead;     /* EOF, a socket or protocol error: no more calls on it */
	int error;     /* errno of the socket error that killed it, or 0 */
	uint8_t *wbuf; /* frames nghttp2 made that the socket did not take yet */
	size_t wlen, wcap;
	struct call *calls; /* open calls on it (one for the unary connection, one per stream) */
};

/* One gRPC call: an HTTP/2 stream. */
struct call {
	struct conn *conn;
	struct call *next;
	int32_t id;
	bool unary;

	/* the request side: framed messages waiting for nghttp2's data source */
	uint8_t *out;
	size_t out_len, out_off;
	bool out_eof;      /* end the stream after out */
	bool deferred;     /* the data source said NGHTTP2_ERR_DEFERRED: resume on more */
	bool sending;      /* a send is being written */
	bool sent_pending; /* it was written: CLIENT_STREAM_SENT to report */

	/* the response side */
	int http_status;
	bool grpc_content; /* content-type application/grpc[+...] */
	bool headers;      /* the response headers came */
	bool closed;       /* the stream is over */
	bool rst;          /* it was reset (error_code) rather than ended by the daemon */
	uint32_t error_code;
	int grpc_status; /* -1: none came */
	char *grpc_message;
	struct grpc_frames frames; /* received bytes, split into messages */
};

struct client {
	char *target;
	struct conn *conn; /* for unary calls */
};

struct client_stream {
	struct client *client; /* borrowed */
	const ProtobufCMethodDescriptor *md;
	struct conn *conn;
	struct call *call;
	int epfd, evfd;
	bool out_watched; /* EPOLLOUT is asked for */
	bool headers_told, close_wanted, ended;
	struct client_status status;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ms_left(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

static void status_set(struct client_status *st, grpc_status_code code, const char *fmt, ...)
	_printf_(3, 4);
static void status_set(struct client_status *st, grpc_status_code code, const char *fmt, ...)
{
	va_list ap;

	st->code = code;
	va_start(ap, fmt);
	vsnprintf(st->message, sizeof(st->message), fmt, ap);
	va_end(ap);
}

/* ---- nghttp2 callbacks ---- */

static struct call *call_of(nghttp2_session *h2, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h2, id);
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *userdata)
{
	struct call *k = call_of(h2, frame->hd.stream_id);

	(void)flags;
	(void)userdata;
	if (!k || frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0)
		k->http_status = valuelen == 3 ? (value[0] - '0') * 100 + (value[1] - '0') * 10 +
							 (value[2] - '0')
					       : 0;
	else if (namelen == 12 && memcmp(name, "content-type", 12) == 0)
		k->grpc_content = grpc_is_content_type((const char *)value, valuelen);
	else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
		k->grpc_status = grpc_parse_status((const char *)value, valuelen);
	else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
		free(k->grpc_message);
		k->grpc_message = grpc_percent_decode((const char *)value, valuelen);
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *userdata)
{
	struct conn *c = userdata;
	struct call *k;

	if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK))
		c->ready = true;
	if (frame->hd.type == NGHTTP2_HEADERS && (k = call_of(h2, frame->hd.stream_id)) &&
	    frame->headers.cat == NGHTTP2_HCAT_RESPONSE)
		k->headers = true;
	return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *userdata)
{
	struct call *k = call_of(h2, id);

	(void)flags;
	(void)userdata;
	if (!k)
		return 0;
	if (k->unary)
		(void)nghttp2_session_consume(h2, id, len);
	if (grpc_frames_add(&k->frames, data, len) < 0) {
		/* Too big, compressed or out of memory: the call ends here, with that status. */
		(void)nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
		if (k->grpc_status < 0) {
			k->grpc_status = k->frames.error_code;
			free(k->grpc_message);
			k->grpc_message = strdup(k->frames.error);
		}
	}
	return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t error_code, void *userdata)
{
	struct call *k = call_of(h2, id);

	(void)userdata;
	if (k) {
		k->closed = true;
		k->error_code = error_code;
		k->rst = error_code != NGHTTP2_NO_ERROR;
	}
	return 0;
}

/* The request body: what out holds; deferred when it is empty and the stream goes on. */
static ssize_t data_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *userdata)
{
	struct call *k = src->ptr;
	size_t n = MIN(len, k->out_len - k->out_off);

	(void)h2;
	(void)id;
	(void)userdata;
	if (n > 0)
		memcpy(buf, k->out + k->out_off, n);
	k->out_off += n;
	if (k->out_off == k->out_len) {
		k->out_off = k->out_len = 0;
		if (k->sending) {
			k->sending = false;
			k->sent_pending = true;
		}
		if (k->out_eof)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		else if (n == 0) {
			k->deferred = true;
			return NGHTTP2_ERR_DEFERRED;
		}
	}
	return (ssize_t)n;
}

/* ---- connections ---- */

static void conn_free(struct conn *c)
{
	if (!c)
		return;
	nghttp2_session_del(c->h2);
	free(c->wbuf);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static void conn_kill(struct conn *c, int error)
{
	if (!c->dead && error)
		c->error = error;
	c->dead = true;
	for (struct call *k = c->calls; k; k = k->next)
		k->closed = true;
}

/* Writes what nghttp2 has to write, as far as the socket takes it: its frames are gathered
 * first (nghttp2_session_mem_send), so a request is one send(), not one per frame. */
static int conn_flush(struct conn *c)
{
	if (c->dead) {
		conn_kill(c, 0); /* a call started on it since is over too */
		return -EPIPE;
	}
	while (c->wlen < WRITE_GATHER) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->h2, &data);

		if (n < 0) {
			conn_kill(c, EPROTO);
			return -EPIPE;
		}
		if (n == 0)
			break;
		if (c->wlen + (size_t)n > c->wcap) {
			size_t cap = MAX(c->wcap * 2, c->wlen + (size_t)n);
			uint8_t *p = realloc(c->wbuf, cap);

			if (!p) {
				conn_kill(c, ENOMEM);
				return -EPIPE;
			}
			c->wbuf = p;
			c->wcap = cap;
		}
		memcpy(c->wbuf + c->wlen, data, (size_t)n);
		c->wlen += (size_t)n;
	}
	while (c->wlen > 0) {
		ssize_t n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			conn_kill(c, errno);
			return -EPIPE;
		}
		memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
		c->wlen -= (size_t)n;
		if (c->wlen == 0 && nghttp2_session_want_write(c->h2))
			return conn_flush(c); /* more than WRITE_GATHER was waiting */
	}
	return 0;
}

/* Whether the socket has to be watched for POLLOUT. */
static bool conn_wants_write(const struct conn *c)
{
	return !c->dead && (c->wlen > 0 || nghttp2_session_want_write(c->h2));
}

/* Reads what the socket has and hands it to nghttp2 (whose callbacks fill the calls). */
static int conn_read(struct conn *c)
{
	uint8_t buf[READ_CHUNK];

	while (!c->dead) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_kill(c, n < 0 ? errno : ECONNRESET);
			return -EPIPE;
		}
		if (nghttp2_session_mem_recv(c->h2, buf, (size_t)n) != n) {
			conn_kill(c, EPROTO);
			return -EPROTO;
		}
		if ((size_t)n < sizeof(buf))
			break;
	}
	return conn_flush(c); /* SETTINGS and PING acks, window updates */
}

/* One wait on the socket, at most timeout_ms; then reads and writes what it can. Returns 0,
 * -EINTR or -EPIPE (the connection is dead). */
static int conn_wait(struct conn *c, int timeout_ms)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	int r;

	if (c->dead)
		return -EPIPE;
	if (conn_wants_write(c))
		pfd.events |= POLLOUT;
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? -EINTR : -errno;
	if (r == 0)
		return 0;
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
		return conn_read(c);
	return conn_flush(c);
}

/* "unix:/path", "unix:///path", "unix:rel/path" -> a sockaddr_un; 0, or -ENAMETOOLONG. */
static int unix_address(const char *target, struct sockaddr_un *sa)
{
	const char *path = target + strlen("unix:");

	if (startswith(path, "//"))
		path += 2;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	*sa = (struct sockaddr_un){.sun_family = AF_UNIX};
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

/* Connects fd to sa within the deadline: 0 or -errno (-ETIMEDOUT). */
static int connect_by(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	socklen_t elen = sizeof(int);
	int err = 0, r;

	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return -errno;
	do
		r = poll(&pfd, 1, ms_left(deadline));
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r == 0 ? -ETIMEDOUT : -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return -errno;
	return -err;
}

/* "host:port", "[v6]:port", "dns:///host:port", "ipv4:a.b.c.d:port", "ipv6:[::1]:port":
 * the host and the port (in buf). 0 or -EINVAL. */
static int split_host_port(const char *target, char *buf, size_t size, char **host, char **port)
{
	static const char *const schemes[] = {"dns:///", "ipv4:", "ipv6:"};
	char *colon;

	for (size_t i = 0; i < ELEMENTSOF(schemes); i++)
		if (startswith(target, schemes[i])) {
			target += strlen(schemes[i]);
			break;
		}
	if (snprintf(buf, size, "%s", target) >= (int)size)
		return -EINVAL;
	colon = strrchr(buf, ':');
	if (!colon || colon == buf || !colon[1])
		return -EINVAL;
	*colon = '\0';
	*port = colon + 1;
	*host = buf;
	if (buf[0] == '[' && colon[-1] == ']') {
		colon[-1] = '\0';
		*host = buf + 1;
	}
	return 0;
}

static int socket_for(int family)
{
	return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* A connected socket to target within the deadline: the fd, or -errno. */
static int dial(const char *target, int64_t deadline)
{
	int fd, r;

	if (startswith(target, "unix:")) {
		struct sockaddr_un sa;

		if ((r = unix_address(target, &sa)) < 0)
			return r;
		if ((fd = socket_for(AF_UNIX)) < 0)
			return -errno;
		if ((r = connect_by(fd, (struct sockaddr *)&sa, sizeof(sa), deadline)) < 0) {
			close(fd);
			return r;
		}
		return fd;
	}

	char buf[512], *host, *port;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;

	if (split_host_port(target, buf, sizeof(buf), &host, &port) < 0)
		return -EINVAL;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0)
		return r == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	r = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int one = 1;

		if ((fd = socket_for(ai->ai_family)) < 0) {
			r = -errno;
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if ((r = connect_by(fd, ai->ai_addr, ai->ai_addrlen, deadline)) == 0)
			break;
		close(fd);
		fd = -1;
		if (r == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return r < 0 ? r : fd;
}

static nghttp2_session_callbacks *callbacks(void)
{
	static nghttp2_session_callbacks *cbs;

	if (!cbs && nghttp2_session_callbacks_new(&cbs) == 0) {
		nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
		nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	}
	return cbs;
}

/* A new HTTP/2 connection to target, ready (the daemon's SETTINGS came) within
 * CLIENT_CONNECT_TIMEOUT_S. Returns 0, or fills *st (unreachable) and returns -ECONNREFUSED;
 * -ENOMEM. */
static int conn_open(const char *target, struct conn **ret, struct client_status *st)
{
	int64_t deadline = now_ms() + CLIENT_CONNECT_TIMEOUT_S * 1000;
	nghttp2_settings_entry settings[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
	};
	nghttp2_option *opt = NULL;
	struct conn *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c || !callbacks() || nghttp2_option_new(&opt) != 0) {
		free(c);
		return -ENOMEM;
	}
	c->fd = -1;
	/* Window updates as messages are handed out (see the top of the file). */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	r = nghttp2_session_client_new2(&c->h2, callbacks(), c, opt);
	nghttp2_option_del(opt);
	if (r != 0 ||
	    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, settings, ELEMENTSOF(settings)) ||
	    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW)) {
		conn_free(c);
		return -ENOMEM;
	}
	st->unreachable = true;
	c->fd = dial(target, deadline);
	if (c->fd < 0) {
		r = c->fd;
		status_set(st,
			   r == -ETIMEDOUT ? GRPC_STATUS_DEADLINE_EXCEEDED
					   : GRPC_STATUS_UNAVAILABLE,
			   "%s",
			   r == -EINVAL         ? "not an address (unix:PATH or HOST:PORT)"
			   : r == -EHOSTUNREACH ? "cannot resolve the host name"
			   : r == -ETIMEDOUT    ? "no connection within the time allowed"
						: strerror(-r));
		conn_free(c);
		return -ECONNREFUSED;
	}
	/* Our preface and SETTINGS out, the daemon's SETTINGS in: an HTTP/2 server. */
	while (!c->ready && !c->dead && ms_left(deadline) > 0)
		(void)conn_wait(c, ms_left(deadline)); /* -EINTR: on with the wait */
	if (!c->ready) {
		if (c->dead)
			status_set(st, GRPC_STATUS_UNAVAILABLE, "%s",
				   c->error == EPROTO ? "the peer does not speak HTTP/2"
				   : c->error         ? strerror(c->error)
						      : "the connection closed");
		else
			status_set(st, GRPC_STATUS_DEADLINE_EXCEEDED, "no answer within %d seconds",
				   CLIENT_CONNECT_TIMEOUT_S);
		conn_free(c);
		return -ECONNREFUSED;
	}
	st->unreachable = false;
	*ret = c;
	return 0;
}

/* ---- calls ---- */

static void call_free(struct call *k)
{
	if (!k)
		return;
	if (k->conn) {
		struct call **p = &k->conn->calls;

		while (*p && *p != k)
			p = &(*p)->next;
		if (*p)
			*p = k->next;
		if (k->id > 0 && !k->conn->dead) {
			nghttp2_session_set_stream_user_data(k->conn->h2, k->id, NULL);
			if (!k->closed)
				(void)nghttp2_submit_rst_stream(k->conn->h2, NGHTTP2_FLAG_NONE,
								k->id, NGHTTP2_CANCEL);
			(void)conn_flush(k->conn);
		}
	}
	free(k->out);
	free(k->grpc_message);
	grpc_frames_free(&k->frames);
	free(k);
}

/* Appends msg, framed, to what the call has to send. */
static int call_queue(struct call *k, const ProtobufCMessage *msg)
{
	size_t size = protobuf_c_message_get_packed_size(msg);
	uint8_t *p;

	if (size > UINT32_MAX)
		return -EMSGSIZE;
	p = realloc(k->out, k->out_len + 5 + size);
	if (!p)
		return -ENOMEM;
	k->out = p;
	p += k->out_len;
	p[0] = 0; /* not compressed */
	p[1] = (uint8_t)(size >> 24);
	p[2] = (uint8_t)(size >> 16);
	p[3] = (uint8_t)(size >> 8);
	p[4] = (uint8_t)size;
	if (protobuf_c_message_pack(msg, p + 5) != size)
		return -EINVAL;
	k->out_len += 5 + size;
	return 0;
}

#define NV(n, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                          \
			NGHTTP2_NV_FLAG_NO_COPY_NAME                                               \
	}

/* Opens the call's stream on conn: the request headers, and the body from out. */
static int call_start(struct call *k, struct conn *c, const char *path, int timeout_s)
{
	char timeout[16];

	snprintf(timeout, sizeof(timeout), "%dS", timeout_s);

	nghttp2_nv hdrs[] = {
		NV(":method", "POST"),
		NV(":scheme", "http"),
		NV(":path", path),
		NV(":authority", "mvirt-vmm"),
		NV("content-type", "application/grpc"),
		NV("te", "trailers"),
		NV("user-agent", "mvirt/" MVIRT_VERSION),
		NV("grpc-timeout", timeout),
	};
	nghttp2_data_provider body = {.source.ptr = k, .read_callback = data_read};
	size_t n = ELEMENTSOF(hdrs) - (timeout_s <= 0); /* streams: no deadline */

	k->conn = c;
	k->grpc_status = -1;
	k->id = nghttp2_submit_request(c->h2, NULL, hdrs, n, &body, k);
	if (k->id < 0)
		return -EIO;
	k->next = c->calls;
	c->calls = k;
	return conn_flush(c);
}

/* The call's final status into *st (once it is closed). */
static void call_status(const struct call *k, const struct conn *c, struct client_status *st)
{
	if (k->grpc_status >= 0) {
		status_set(st, k->grpc_status, "%s", k->grpc_message ? k->grpc_message : "");
		return;
	}
	if (k->http_status && k->http_status != 200) {
		status_set(st, grpc_status_from_http(k->http_status),
			   "HTTP status %d from the daemon", k->http_status);
		return;
	}
	if (c->dead) {
		status_set(st, GRPC_STATUS_UNAVAILABLE, "the connection to mvirt-vmm closed%s%s",
			   c->error ? ": " : "", c->error ? strerror(c->error) : "");
		return;
	}
	if (k->rst) {
		status_set(st,
			   k->error_code == NGHTTP2_REFUSED_STREAM ? GRPC_STATUS_UNAVAILABLE
			   : k->error_code == NGHTTP2_CANCEL       ? GRPC_STATUS_CANCELLED
								   : GRPC_STATUS_INTERNAL,
			   "the daemon reset the call (HTTP/2 error %u)", k->error_code);
		return;
	}
	if (k->headers && !k->grpc_content) {
		status_set(st, GRPC_STATUS_UNKNOWN, "the answer is not gRPC");
		return;
	}
	status_set(st, GRPC_STATUS_INTERNAL, "the daemon sent no status");
}

static const ProtobufCMethodDescriptor *method_of(const ProtobufCServiceDescriptor *service,
						  const char *method, char *path, size_t size)
{
	const ProtobufCMethodDescriptor *md =
		protobuf_c_service_descriptor_get_method_by_name(service, method);

	if (md && snprintf(path, size, "/%s/%s", service->name, md->name) >= (int)size)
		return NULL;
	return md;
}

/* ---- the client and unary calls ---- */

int client_new(const char *target, struct client **ret)
{
	struct client *c = calloc(1, sizeof(*c));

	if (!c || !(c->target = strdup(target))) {
		free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	conn_free(c->conn);
	free(c->target);
	free(c);
}

/* The unary connection, usable for a new call: made again when the daemon closed it (a look
 * at the socket first, so that a restart seen only now is not a failed call). */
static int unary_conn(struct client *c, struct client_status *st)
{
	if (c->conn && !c->conn->dead)
		(void)conn_wait(c->conn, 0);
	if (c->conn && (c->conn->dead || !nghttp2_session_check_request_allowed(c->conn->h2))) {
		conn_free(c->conn);
		c->conn = NULL;
	}
	if (!c->conn)
		return conn_open(c->target, &c->conn, st);
	return 0;
}

int client_call(struct client *c, const ProtobufCServiceDescriptor *service, const char *method,
		const ProtobufCMessage *req, ProtobufCMessage **ret_resp, struct client_status *st)
{
	const ProtobufCMethodDescriptor *md;
	int64_t deadline = now_ms() + CLIENT_CALL_TIMEOUT_S * 1000;
	struct grpc_message m;
	struct call *k = NULL;
	char path[256];
	int r;

	*st = (struct client_status){.code = GRPC_STATUS_OK};
	md = method_of(service, method, path, sizeof(path));
	if (!md || req->descriptor != md->input) {
		status_set(st, GRPC_STATUS_INTERNAL, "no such method");
		return -EINVAL;
	}
	for (int attempt = 0;; attempt++) {
		if ((r = unary_conn(c, st)) < 0)
			return r;
		k = calloc(1, sizeof(*k));
		if (!k)
			return -ENOMEM;
		k->unary = true;
		k->out_eof = true;
		if ((r = call_queue(k, req)) < 0) {
			call_free(k);
			status_set(st, GRPC_STATUS_INTERNAL, "cannot serialize the request");
			return r;
		}
		if (call_start(k, c->conn, path, CLIENT_CALL_TIMEOUT_S) == -EIO) {
			call_free(k);
			status_set(st, GRPC_STATUS_INTERNAL, "cannot start the call");
			return -EIO;
		}
		while (!k->closed && ms_left(deadline) > 0)
			(void)conn_wait(c->conn, ms_left(deadline)); /* -EINTR: on with the wait */
		/* Refused before the daemon looked at it (it was going away: GOAWAY): once more,
		 * on a new connection. Nothing else is retried: the daemon may have acted. */
		if (attempt == 0 && k->rst && k->error_code == NGHTTP2_REFUSED_STREAM) {
			call_free(k);
			conn_free(c->conn);
			c->conn = NULL;
			continue;
		}
		break;
	}
	if (!k->closed) {
		call_free(k);
		status_set(st, GRPC_STATUS_DEADLINE_EXCEEDED, "no answer within %d seconds",
			   CLIENT_CALL_TIMEOUT_S);
		return -EREMOTEIO;
	}
	call_status(k, c->conn, st);
	if (st->code != GRPC_STATUS_OK) {
		call_free(k);
		return -EREMOTEIO;
	}
	r = grpc_frames_next(&k->frames, &m);
	if (r <= 0) {
		call_free(k);
		status_set(st, GRPC_STATUS_INTERNAL, "the daemon sent no response message");
		return -EBADMSG;
	}
	*ret_resp = protobuf_c_message_unpack(md->output, NULL, m.len, m.data);
	call_free(k);
	if (!*ret_resp) {
		status_set(st, GRPC_STATUS_INTERNAL, "the daemon's response does not parse");
		return -EBADMSG;
	}
	return 0;
}

/* ---- streams ---- */

static void stream_update_fds(struct client_stream *s);

int client_stream_open(struct client *c, const ProtobufCServiceDescriptor *service,
		       const char *method, struct client_stream **ret, struct client_status *st)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct client_stream *s;
	char path[256];
	int r;

	*st = (struct client_status){.code = GRPC_STATUS_OK};
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->client = c;
	s->epfd = s->evfd = -1;
	s->md = method_of(service, method, path, sizeof(path));
	if (!s->md) {
		free(s);
		status_set(st, GRPC_STATUS_INTERNAL, "no such method");
		return -EINVAL;
	}
	if ((r = conn_open(c->target, &s->conn, st)) < 0) {
		free(s);
		return r;
	}
	s->call = calloc(1, sizeof(*s->call));
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!s->call || s->epfd < 0 || s->evfd < 0) {
		r = s->call ? -errno : -ENOMEM;
		goto fail;
	}
	ev.data.fd = s->evfd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	ev.data.fd = s->conn->fd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->conn->fd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = call_start(s->call, s->conn, path, 0)) < 0)
		goto fail;
	stream_update_fds(s);
	*ret = s;
	return 0;

fail:
	status_set(st, GRPC_STATUS_INTERNAL, "cannot start the call");
	client_stream_free(s);
	return r < 0 ? r : -EIO;
}

void client_stream_free(struct client_stream *s)
{
	if (!s)
		return;
	call_free(s->call);
	conn_free(s->conn);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->evfd >= 0)
		close(s->evfd);
	free(s);
}

int client_stream_fd(const struct client_stream *s)
{
	return s->epfd;
}

bool client_stream_can_send(const struct client_stream *s)
{
	return !s->call->sending && !s->call->sent_pending && !s->close_wanted && !s->call->closed;
}

/* What client_stream_next() would hand out first, without doing it: an event is waiting. */
static bool stream_has_event(const struct client_stream *s)
{
	const struct call *k = s->call;

	if (s->ended)
		return false;
	return ((k->headers || k->closed) && !s->headers_told) || k->sent_pending ||
	       grpc_frames_ready(&k->frames) || k->closed;
}

/* The eventfd set exactly while an event waits; EPOLLOUT on the socket while nghttp2 has
 * something to write. */
static void stream_update_fds(struct client_stream *s)
{
	bool want_out = conn_wants_write(s->conn);
	uint64_t v = 1;

	if (stream_has_event(s))
		(void)!write(s->evfd, &v, sizeof(v));
	else
		(void)!read(s->evfd, &v, sizeof(v));
	if (want_out != s->out_watched && !s->conn->dead) {
		struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0),
					 .data.fd = s->conn->fd};

		if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->conn->fd, &ev) == 0)
			s->out_watched = want_out;
	}
}

/* More to send (a message, or the end): the data source goes on, and out it goes. */
static void stream_kick(struct client_stream *s)
{
	struct call *k = s->call;

	if (k->deferred) {
		k->deferred = false;
		(void)nghttp2_session_resume_data(s->conn->h2, k->id);
	}
	(void)conn_flush(s->conn);
	stream_update_fds(s);
}

int client_stream_send(struct client_stream *s, const ProtobufCMessage *msg)
{
	struct call *k = s->call;
	int r;

	if (msg->descriptor != s->md->input)
		return -EINVAL;
	if (k->sending || k->sent_pending)
		return -EBUSY;
	if (!client_stream_can_send(s))
		return -EPIPE;
	if ((r = call_queue(k, msg)) < 0)
		return r;
	k->sending = true;
	stream_kick(s);
	return 0;
}

int client_stream_close_send(struct client_stream *s)
{
	struct call *k = s->call;

	if (s->close_wanted)
		return 0;
	s->close_wanted = true;
	if (k->closed)
		return 0;
	k->out_eof = true;
	stream_kick(s);
	return 0;
}

void client_stream_cancel(struct client_stream *s)
{
	struct call *k = s->call;

	if (k->closed)
		return;
	(void)nghttp2_submit_rst_stream(s->conn->h2, NGHTTP2_FLAG_NONE, k->id, NGHTTP2_CANCEL);
	(void)conn_flush(s->conn);
	k->closed = true;
	k->rst = true;
	k->error_code = NGHTTP2_CANCEL;
	if (k->grpc_status < 0) {
		k->grpc_status = GRPC_STATUS_CANCELLED;
		free(k->grpc_message);
		k->grpc_message = strdup("cancelled");
	}
	stream_update_fds(s);
}

/* Hands out the first waiting event, or CLIENT_STREAM_NONE. */
static int stream_take(struct client_stream *s, ProtobufCMessage **ret_msg)
{
	struct call *k = s->call;
	struct grpc_message m;
	int r;

	if (s->ended)
		return CLIENT_STREAM_NONE;
	if (k->sent_pending) {
		k->sent_pending = false;
		return CLIENT_STREAM_SENT;
	}
	if ((k->headers || k->closed) && !s->headers_told) {
		s->headers_told = true;
		return CLIENT_STREAM_HEADERS;
	}
	if ((r = grpc_frames_next(&k->frames, &m)) > 0) {
		ProtobufCMessage *msg =
			protobuf_c_message_unpack(s->md->output, NULL, m.len, m.data);

		if (!s->conn->dead) {
			(void)nghttp2_session_consume(s->conn->h2, k->id, 5 + m.len);
			(void)conn_flush(s->conn);
		}
		if (!msg) {
			client_stream_cancel(s);
			k->grpc_status = GRPC_STATUS_INTERNAL;
			free(k->grpc_message);
			k->grpc_message = strdup("the daemon's response does not parse");
			return -EBADMSG;
		}
		*ret_msg = msg;
		return CLIENT_STREAM_MESSAGE;
	}
	if (k->closed) {
		s->ended = true;
		call_status(k, s->conn, &s->status);
		return CLIENT_STREAM_END;
	}
	return CLIENT_STREAM_NONE;
}

int client_stream_next(struct client_stream *s, int timeout_ms, ProtobufCMessage **ret_msg)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int r;

	for (;;) {
		/* What the socket has now, then what is waiting. */
		if (!s->conn->dead)
			(void)conn_wait(s->conn, 0);
		r = stream_take(s, ret_msg);
		stream_update_fds(s);
		if (r != CLIENT_STREAM_NONE || s->ended)
			return r;
		if (ms_left(deadline) == 0)
			return CLIENT_STREAM_NONE;
		r = conn_wait(s->conn, ms_left(deadline));
		if (r == -EINTR)
			return -EINTR;
	}
}

const struct client_status *client_stream_status(const struct client_stream *s)
{
	return &s->status;
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
