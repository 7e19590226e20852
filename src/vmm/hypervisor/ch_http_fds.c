/* See ch_http_fds.h. States: the defer source connects and sends (fn never runs inside
 * start: errors found there, a socket path too long included, wait for it), the io source sends
 * the rest and reads the answer, the timer bounds it all. */
#include "hypervisor/ch_http_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/macro.h"
#include "hypervisor/ch_http_parse.h"

#define USEC_PER_MSEC UINT64_C(1000)
#define TIMEOUT_MAX_MS (UINT64_C(100) * 365 * 24 * 3600 * 1000)

struct ch_http_fds {
	sd_event *event;
	sd_event_source *defer, *io, *timer;
	int sock;
	int start_error; /* found at start, delivered by the defer source */
	struct sockaddr_un sa;
	int fds[CH_HTTP_FDS_MAX];
	size_t n_fds;
	bool fds_sent;
	char *req; /* the whole request */
	size_t req_len, req_sent;
	char *resp; /* what arrived, NUL-terminated */
	size_t resp_len, resp_cap, max_body;
	ch_http_fds_fn fn;
	void *userdata;
};

void ch_http_fds_free(struct ch_http_fds *x)
{
	if (!x)
		return;
	sd_event_source_disable_unref(x->defer);
	sd_event_source_disable_unref(x->io);
	sd_event_source_disable_unref(x->timer);
	if (x->sock >= 0)
		close(x->sock);
	for (size_t i = 0; i < x->n_fds; i++)
		close(x->fds[i]);
	free(x->req);
	free(x->resp);
	sd_event_unref(x->event);
	free(x);
}

static void finish(struct ch_http_fds *x, int error, long status, const char *body, size_t len)
{
	ch_http_fds_fn fn = x->fn;
	void *userdata = x->userdata;

	/* fn may free x (through the request that owns it): nothing of x after this call. */
	x->defer = sd_event_source_disable_unref(x->defer);
	x->io = sd_event_source_disable_unref(x->io);
	x->timer = sd_event_source_disable_unref(x->timer);
	fn(userdata, error, status, body ? body : "", body ? len : 0);
}

/* The answer, once it is complete: 1 done (finish called), 0 need more, <0 malformed. */
static int parse_answer(struct ch_http_fds *x, bool eof)
{
	size_t off, len;
	long status;
	int r = ch_http_parse_answer(x->resp, x->resp_len, eof, x->max_body, &status, &off, &len);

	if (r <= 0)
		return r;
	x->resp[off + len] = '\0'; /* inside what was read: off + len <= resp_len */
	finish(x, 0, status, x->resp + off, len);
	return 1;
}

static int do_read(struct ch_http_fds *x)
{
	/* The parser decides by CH_HTTP_HEADERS_MAX + max_body + 1 bytes: room for them and the
	 * NUL, and no more (a doubling past it would refuse an answer the cap allows). */
	size_t limit = CH_HTTP_HEADERS_MAX + x->max_body + 2;

	for (;;) {
		ssize_t n;

		if (x->resp_cap - x->resp_len < 4096 && x->resp_cap < limit) {
			size_t cap = x->resp_cap ? x->resp_cap * 2 : 8192;
			char *p;

			if (cap > limit)
				cap = limit;
			if (!(p = realloc(x->resp, cap)))
				return -ENOMEM;
			x->resp = p;
			x->resp_cap = cap;
		}
		if (x->resp_cap - x->resp_len < 2)
			return -EFBIG; /* cannot happen: the parser decided before */
		n = recv(x->sock, x->resp + x->resp_len, x->resp_cap - x->resp_len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -errno;
		x->resp_len += (size_t)n;
		x->resp[x->resp_len] = '\0';
		int r = parse_answer(x, n == 0);
		if (r != 0)
			return r > 0 ? 1 : r;
	}
}

/* Sends what is left; the fds go with the first bytes. 1 all sent, 0 try again, <0 error. */
static int do_send(struct ch_http_fds *x)
{
	while (x->req_sent < x->req_len) {
		struct iovec iov = {x->req + x->req_sent, x->req_len - x->req_sent};
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * CH_HTTP_FDS_MAX)];
		} control;
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		if (!x->fds_sent && x->n_fds > 0) {
			struct cmsghdr *c;

			memset(&control, 0, sizeof(control));
			msg.msg_control = control.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * x->n_fds);
			c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * x->n_fds);
			memcpy(CMSG_DATA(c), x->fds, sizeof(int) * x->n_fds);
		}
		n = sendmsg(x->sock, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -errno;
		x->fds_sent = true;
		x->req_sent += (size_t)n;
	}
	return 1;
}

static int on_io(sd_event_source *s _unused_, int fd _unused_, uint32_t revents, void *userdata)
{
	struct ch_http_fds *x = userdata;
	int r = 1;

	if (x->req_sent < x->req_len) {
		r = do_send(x);
		if (r == 1)
			r = sd_event_source_set_io_events(x->io, EPOLLIN);
		if (r < 0)
			goto fail;
		return 0;
	}
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		r = do_read(x);
		if (r < 0)
			goto fail;
	}
	return 0;
fail:
	finish(x, r, 0, NULL, 0);
	return 0;
}

static int on_timeout(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata)
{
	finish(userdata, -ETIMEDOUT, 0, NULL, 0);
	return 0;
}

static int on_defer(sd_event_source *s _unused_, void *userdata)
{
	struct ch_http_fds *x = userdata;
	int r;

	x->defer = sd_event_source_disable_unref(x->defer);
	if (x->start_error < 0) {
		r = x->start_error;
		goto fail;
	}
	x->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (x->sock < 0) {
		r = -errno;
		goto fail;
	}
	/* A Unix connect completes at once or fails (EAGAIN: the backlog is full). */
	if (connect(x->sock, (struct sockaddr *)&x->sa, sizeof(x->sa)) < 0) {
		r = -errno;
		goto fail;
	}
	r = do_send(x);
	if (r < 0)
		goto fail;
	r = sd_event_add_io(x->event, &x->io, x->sock, r == 1 ? EPOLLIN : EPOLLOUT | EPOLLIN, on_io,
			    x);
	if (r < 0)
		goto fail;
	return 0;
fail:
	finish(x, r, 0, NULL, 0);
	return 0;
}

int ch_http_fds_start(sd_event *event, const char *socket_path, const char *method,
		      const char *endpoint, const char *body, const int *fds, size_t n_fds,
		      uint64_t timeout_ms, size_t max_body, ch_http_fds_fn fn, void *userdata,
		      struct ch_http_fds **ret)
{
	struct ch_http_fds *x;
	_cleanup_free_ char *length = NULL;
	uint64_t usec;
	int r;

	if (!event || isempty(socket_path) || isempty(method) || isempty(endpoint) || !fn ||
	    timeout_ms == 0 || n_fds > CH_HTTP_FDS_MAX || (n_fds > 0 && !fds) ||
	    max_body > SIZE_MAX / 2)
		return -EINVAL;
	if (!(x = calloc(1, sizeof(*x))))
		return -ENOMEM;
	x->sock = -1;
	x->event = sd_event_ref(event);
	x->fn = fn;
	x->userdata = userdata;
	x->max_body = max_body;
	x->sa.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof(x->sa.sun_path))
		x->start_error = -ENAMETOOLONG;
	else
		memcpy(x->sa.sun_path, socket_path, strlen(socket_path) + 1);
	for (; x->n_fds < n_fds; x->n_fds++)
		if ((x->fds[x->n_fds] = fcntl(fds[x->n_fds], F_DUPFD_CLOEXEC, 3)) < 0) {
			r = -errno;
			goto fail;
		}
	/* Content-Length with a body and on every PUT, 0 included (cloud-hypervisor wants it on
	 * a bodiless PUT); none on a GET without body (RFC 9110 8.6). Content-Type with a body. */
	if ((body || !streq(method, "GET")) &&
	    asprintf(&length, "Content-Length: %zu\r\n", body ? strlen(body) : 0) < 0) {
		length = NULL;
		r = -ENOMEM;
		goto fail;
	}
	r = asprintf(&x->req,
		     "%s /api/v1/%s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
		     "%s%s\r\n%s",
		     method, endpoint, body ? "Content-Type: application/json\r\n" : "",
		     strempty(length), strempty(body));
	if (r < 0) {
		x->req = NULL;
		r = -ENOMEM;
		goto fail;
	}
	x->req_len = (size_t)r;
	/* Beyond a century is never; sd-event refuses a time past the end of its clock. Accuracy
	 * 1 ms: 0 would mean sd-event's default of 250 ms. */
	usec = timeout_ms > TIMEOUT_MAX_MS ? TIMEOUT_MAX_MS * USEC_PER_MSEC
					   : timeout_ms * USEC_PER_MSEC;
	if ((r = sd_event_add_defer(event, &x->defer, on_defer, x)) < 0 ||
	    (r = sd_event_add_time_relative(event, &x->timer, CLOCK_MONOTONIC, usec, USEC_PER_MSEC,
					    on_timeout, x)) < 0)
		goto fail;
	*ret = x;
	return 0;
fail:
	ch_http_fds_free(x);
	return r;
}
