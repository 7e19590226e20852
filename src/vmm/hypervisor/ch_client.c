/* The hypervisor client: cloud-hypervisor's REST API over its Unix socket, with libcurl's multi
 * interface driven by the daemon's sd-event loop. Only this file knows CURL.
 *
 * One CURLM per client while it has requests: created at its first request, dropped when the
 * last one ends (client_idle), so an idle client holds no curl state and no fd (a multi handle
 * owns a wakeup socketpair). curl says which sockets to watch (on_curl_socket: one sd-event io
 * source per socket, kept with curl_multi_assign) and when to call it back (on_curl_timer: one
 * oneshot CLOCK_MONOTONIC timer, armed only, never acted on from inside curl). When a source
 * fires we call curl_multi_socket_action and then drain curl_multi_info_read for finished
 * transfers.
 *
 * libcurl is not linked: it drags a TLS stack, Kerberos, LDAP and more into the daemon, whose
 * constructors run at load and whose pages stay resident, while the daemon only speaks plain HTTP
 * to local sockets. It is dlopen()ed at the first ch_request_start (never at ch_client_new, which
 * the daemon calls at start-up) and called only through the sym_* pointers below; <curl/curl.h>
 * gives types and constants only. The load happens once per process and is never retried: if it
 * fails, every request fails through its callback with -ELIBACC. Test hook: the environment
 * variable MVIRT_LIBCURL, read at the load, names the library to load instead of libcurl.so.4
 * (unit tests point it at absent or wrong libraries); nothing else reads it.
 *
 * Invariants:
 * - c->multi != NULL only once libcurl is loaded and while c has requests (or a dispatch
 *   runs); no sym_* pointer is called before the load;
 * - every live request is on c->requests; ch_client_free cancels them all;
 * - a reply callback runs only from a loop dispatch (io, timer or defer source), never from
 *   ch_request_start and never from inside a curl callback;
 * - before its callback runs a request is detached (off the multi handle and the list), so
 *   the callback may start and cancel requests and even free the client: while callbacks may
 *   run, c->busy > 0 and ch_client_free only marks the client, which is destroyed when the
 *   dispatch unwinds.
 * Silent (no logging). Called by the VM manager. */
#include "hypervisor/ch_client.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/un.h>

#include "common/macro.h"
#include "hypervisor/ch_curl.h"
#include "hypervisor/ch_http_fds.h"
#include "hypervisor/ch_http_parse.h"

#define CH_REPLY_MAX (1024 * 1024)
#define CH_URL_PREFIX "http://localhost/api/v1/"
#define USEC_PER_MSEC UINT64_C(1000)

/* One socket curl asked us to watch. */
struct ch_watch {
	struct ch_client *client;
	sd_event_source *source;
	struct ch_watch *prev, *next;
};

struct ch_client {
	sd_event *event;
	CURLM *multi;           /* while requests run: see client_idle */
	sd_event_source *timer; /* curl's timeout, created on first use */
	struct ch_request *requests;
	struct ch_watch *watches;
	unsigned busy;     /* > 0 while reply callbacks may run */
	bool free_pending; /* ch_client_free was called while busy */
};

struct ch_request {
	struct ch_client *client;
	struct ch_request *prev, *next;
	bool linked;     /* on client->requests */
	bool added;      /* easy is on client->multi */
	bool delivering; /* fn is running: cancel is a no-op */
	CURL *easy;
	struct ch_http_fds *raw; /* instead of easy: a request that passes fds */
	sd_event_source *defer;  /* delivers defer_error, a failure found at start */
	int defer_error;
	const char *defer_message; /* static; NULL: "<socket>: <strerror>" */
	struct curl_slist *headers;
	char *socket_path, *url, *body;
	char *resp; /* response body, NUL-terminated, at most CH_REPLY_MAX bytes */
	size_t resp_len, resp_cap;
	bool resp_too_big, resp_nomem;
	char errbuf[CURL_ERROR_SIZE];
	ch_reply_fn fn;
	void *userdata;
};

/* ---- libcurl, loaded on first use (systemd's "dlopen on demand") ---- */

/* ---- requests and sockets ---- */

static void watch_free(struct ch_watch *w)
{
	struct ch_client *c = w->client;

	sd_event_source_disable_unref(w->source);
	if (w->prev)
		w->prev->next = w->next;
	else
		c->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	free(w);
}

static void request_unlink(struct ch_request *r)
{
	struct ch_client *c = r->client;

	if (!r->linked)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		c->requests = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	r->linked = false;
}

static void request_link(struct ch_request *r)
{
	struct ch_client *c = r->client;

	r->prev = NULL;
	r->next = c->requests;
	if (c->requests)
		c->requests->prev = r;
	c->requests = r;
	r->linked = true;
}

/* Takes r off the list, the multi handle and the loop; r's memory stays. */
static void request_detach(struct ch_request *r)
{
	request_unlink(r);
	if (r->added) {
		sym_curl_multi_remove_handle(r->client->multi, r->easy);
		r->added = false;
	}
	r->defer = sd_event_source_disable_unref(r->defer);
	ch_http_fds_free(r->raw);
	r->raw = NULL;
}

static void request_free(struct ch_request *r)
{
	request_detach(r);
	if (r->easy)
		sym_curl_easy_cleanup(r->easy);
	if (r->headers)
		sym_curl_slist_free_all(r->headers);
	free(r->socket_path);
	free(r->url);
	free(r->body);
	free(r->resp);
	free(r);
}

static void client_destroy(struct ch_client *c)
{
	/* Cleanup may still report sockets and timeouts to the callbacks: c stays valid. */
	if (c->multi)
		sym_curl_multi_cleanup(c->multi);
	while (c->watches)
		watch_free(c->watches);
	sd_event_source_disable_unref(c->timer);
	sd_event_unref(c->event);
	free(c);
}

/* Drops the multi handle of a client that has no request left. Only where no curl call is on
 * the stack: outside dispatches (busy == 0). */
static void client_idle(struct ch_client *c)
{
	if (c->busy > 0 || c->requests || !c->multi)
		return;
	sym_curl_multi_cleanup(c->multi);
	c->multi = NULL;
	while (c->watches)
		watch_free(c->watches);
	if (c->timer)
		sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
}

static void client_enter(struct ch_client *c)
{
	c->busy++;
}

/* Ends a dispatch; destroys c if a callback freed it. c must not be used afterwards. */
static void client_leave(struct ch_client *c)
{
	if (--c->busy > 0)
		return;
	if (c->free_pending)
		client_destroy(c);
	else
		client_idle(c);
}

/* Runs fn once with reply, then frees r. The callback may start or cancel other requests,
 * or free the client. */
static void request_deliver(struct ch_request *r, const struct ch_reply *reply)
{
	request_detach(r);
	r->delivering = true;
	r->fn(r->userdata, reply);
	request_free(r);
}

static size_t on_curl_write(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct ch_request *r = userdata;
	size_t n = size * nmemb;

	if (n > CH_REPLY_MAX - r->resp_len) {
		r->resp_too_big = true;
		return 0;
	}
	if (r->resp_len + n + 1 > r->resp_cap) {
		size_t cap = r->resp_cap ? r->resp_cap * 2 : 4096;
		char *p;

		while (cap < r->resp_len + n + 1)
			cap *= 2;
		if (cap > CH_REPLY_MAX + 1)
			cap = CH_REPLY_MAX + 1;
		p = realloc(r->resp, cap);
		if (!p) {
			r->resp_nomem = true;
			return 0;
		}
		r->resp = p;
		r->resp_cap = cap;
	}
	memcpy(r->resp + r->resp_len, data, n);
	r->resp_len += n;
	r->resp[r->resp_len] = '\0';
	return n;
}

static int error_from_curl(struct ch_request *r, CURLcode code)
{
	long os_errno = 0;

	switch (code) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		sym_curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == ENOENT || os_errno == EACCES)
			return (int)-os_errno;
		if (access(r->socket_path, F_OK) < 0 && errno == ENOENT)
			return -ENOENT;
		return -ECONNREFUSED;
	case CURLE_FILESIZE_EXCEEDED:
		return -EFBIG;
	case CURLE_WRITE_ERROR:
		if (r->resp_too_big)
			return -EFBIG;
		return r->resp_nomem ? -ENOMEM : -EIO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* "<curl's text for code>: <detail>"; for socket errors the detail names the socket. */
static char *message_from_curl(struct ch_request *r, CURLcode code, int error)
{
	const char *what = sym_curl_easy_strerror(code);
	size_t n = strlen(r->errbuf);
	char *msg = NULL;
	int k;

	if (error == -EFBIG)
		k = asprintf(&msg, "response body larger than %d bytes", CH_REPLY_MAX);
	else if (code == CURLE_COULDNT_CONNECT)
		k = asprintf(&msg, "%s: %s: %s", what, r->socket_path, strerror(-error));
	else {
		while (n > 0 && isspace((unsigned char)r->errbuf[n - 1]))
			r->errbuf[--n] = '\0';
		if (n > 0 && !streq(r->errbuf, what))
			k = asprintf(&msg, "%s: %s", what, r->errbuf);
		else
			k = asprintf(&msg, "%s", what);
	}
	return k < 0 ? NULL : msg;
}

static void request_complete(struct ch_request *r, CURLcode code)
{
	struct ch_reply reply = {.body = r->resp ? r->resp : "", .message = ""};
	_cleanup_free_ char *message = NULL;

	sym_curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &reply.http_status);
	if (code != CURLE_OK) {
		reply.error = error_from_curl(r, code);
		message = message_from_curl(r, code, reply.error);
	} else if (reply.http_status < 200 || reply.http_status >= 300) {
		message = ch_reply_message(reply.body, r->resp_len, reply.http_status);
	}
	if (message)
		reply.message = message;
	else if (!ch_reply_ok(&reply))
		reply.message = "out of memory";
	request_deliver(r, &reply);
}

/* Completes every transfer curl reports finished. Stops if a callback freed the client. */
static void client_drain(struct ch_client *c)
{
	CURLMsg *msg;
	int left;

	while (!c->free_pending && (msg = sym_curl_multi_info_read(c->multi, &left))) {
		CURLcode code = msg->data.result;
		char *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		sym_curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		request_complete((struct ch_request *)priv, code);
	}
}

static int on_io(sd_event_source *s _unused_, int fd, uint32_t revents, void *userdata)
{
	struct ch_client *c = userdata;
	int action = 0, running;

	if (revents & (EPOLLIN | EPOLLHUP))
		action |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		action |= CURL_CSELECT_OUT;
	if (revents & EPOLLERR)
		action |= CURL_CSELECT_ERR;
	client_enter(c);
	sym_curl_multi_socket_action(c->multi, fd, action, &running);
	client_drain(c);
	client_leave(c);
	return 0;
}

static int on_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata)
{
	struct ch_client *c = userdata;
	int running;

	client_enter(c);
	sym_curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	client_drain(c);
	client_leave(c);
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: mirror curl's interest in fd onto an io source. */
static int on_curl_socket(CURL *easy _unused_, curl_socket_t fd, int what, void *userdata,
			  void *socketp)
{
	struct ch_client *c = userdata;
	struct ch_watch *w = socketp;
	uint32_t events = 0;
	int r;

	if (what == CURL_POLL_REMOVE) {
		if (w) {
			sym_curl_multi_assign(c->multi, fd, NULL);
			watch_free(w);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return -1;
		w->client = c;
		r = sd_event_add_io(c->event, &w->source, fd, events, on_io, c);
		if (r < 0) {
			free(w);
			return -1;
		}
		w->next = c->watches;
		if (c->watches)
			c->watches->prev = w;
		c->watches = w;
		sym_curl_multi_assign(c->multi, fd, w);
	} else {
		r = sd_event_source_set_io_events(w->source, events);
		if (r < 0)
			return -1;
	}
	r = sd_event_source_set_enabled(w->source, events ? SD_EVENT_ON : SD_EVENT_OFF);
	return r < 0 ? -1 : 0;
}

/* CURLMOPT_TIMERFUNCTION: arm (or disarm, timeout_ms < 0) the one timer. Only arms: curl is
 * called back from the loop, never from here. */
static int on_curl_timer(CURLM *multi _unused_, long timeout_ms, void *userdata)
{
	struct ch_client *c = userdata;
	uint64_t usec;
	int r;

	if (timeout_ms < 0) {
		if (!c->timer)
			return 0;
		return sd_event_source_set_enabled(c->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
	}
	usec = (uint64_t)timeout_ms * USEC_PER_MSEC;
	if (!c->timer) {
		/* accuracy 1 µs: 0 would mean sd-event's default of 250 ms */
		r = sd_event_add_time_relative(c->event, &c->timer, CLOCK_MONOTONIC, usec, 1,
					       on_timer, c);
		return r < 0 ? -1 : 0;
	}
	r = sd_event_source_set_time_relative(c->timer, usec);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
	return r < 0 ? -1 : 0;
}

int ch_client_new(sd_event *event, struct ch_client **ret)
{
	struct ch_client *c;

	if (!event || !ret)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->event = sd_event_ref(event);
	*ret = c;
	return 0;
}

/* Creates c's multi handle (libcurl is loaded). Returns 0, -ENOMEM or -EIO. */
static int client_multi(struct ch_client *c)
{
	CURLM *m;

	if (c->multi)
		return 0;
	m = sym_curl_multi_init();
	if (!m)
		return -ENOMEM;
	if (sym_curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
	    sym_curl_multi_setopt(m, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
	    sym_curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
	    sym_curl_multi_setopt(m, CURLMOPT_TIMERDATA, c) != CURLM_OK) {
		sym_curl_multi_cleanup(m);
		return -EIO;
	}
	c->multi = m;
	return 0;
}

void ch_client_free(struct ch_client *c)
{
	if (!c)
		return;
	while (c->requests)
		request_free(c->requests);
	if (c->busy > 0) {
		c->free_pending = true;
		return;
	}
	client_destroy(c);
}

static int on_defer(sd_event_source *s _unused_, void *userdata)
{
	struct ch_request *r = userdata;
	struct ch_client *c = r->client;
	_cleanup_free_ char *message = NULL;
	struct ch_reply reply = {.error = r->defer_error, .body = "", .message = "out of memory"};

	if (r->defer_message)
		reply.message = r->defer_message;
	else if (asprintf(&message, "%s: %s", r->socket_path, strerror(-r->defer_error)) >= 0)
		reply.message = message;
	client_enter(c);
	request_deliver(r, &reply);
	client_leave(c);
	return 0;
}

static bool endpoint_valid(const char *endpoint)
{
	if (isempty(endpoint))
		return false;
	for (const char *p = endpoint; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-~/", *p))
			return false;
	return true;
}

/* Configures r->easy for method on r->url. Returns 0 or -ENOMEM. */
static int request_setup(struct ch_request *r, const char *method, uint64_t timeout_ms)
{
	CURL *e = r->easy;
	long timeout = timeout_ms > LONG_MAX ? LONG_MAX : (long)timeout_ms;
	bool put = streq(method, "PUT");
	/* An empty value removes the header: no 100-continue round trip, and no curl default
	 * "Content-Type: application/x-www-form-urlencoded" on a bodiless PUT. */
	const char *lines[] = {
		"Accept: application/json",
		"Expect:",
		r->body ? "Content-Type: application/json" : "Content-Type:",
	};

	for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
		struct curl_slist *h = sym_curl_slist_append(r->headers, lines[i]);

		if (!h)
			return -ENOMEM;
		r->headers = h;
	}

	if (sym_curl_easy_setopt(e, CURLOPT_PRIVATE, r) != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_URL, r->url) != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, r->socket_path) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
	    sym_curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http") != CURLE_OK ||
#else
	    sym_curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP) != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)CURLPROTO_HTTP) != CURLE_OK ||
#endif
	    sym_curl_easy_setopt(e, CURLOPT_NOPROXY, "*") != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout) != CURLE_OK ||
	    /* a fresh connection per request: no idle fds to a hypervisor that may go away */
	    sym_curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) !=
		    CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write) != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_WRITEDATA, r) != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CH_REPLY_MAX) !=
		    CURLE_OK)
		return -ENOMEM;

	if (!put)
		return sym_curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK ? 0 : -ENOMEM;
	/* PUT with POSTFIELDS ("" when bodiless) sends Content-Length, 0 included, which
	 * cloud-hypervisor requires. */
	if (sym_curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "") != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(r->body ? strlen(r->body) : 0)) != CURLE_OK ||
	    sym_curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT") != CURLE_OK)
		return -ENOMEM;
	return 0;
}

int ch_request_start(struct ch_client *c, const char *socket_path, const char *method,
		     const char *endpoint, const char *body, uint64_t timeout_ms, ch_reply_fn fn,
		     void *userdata, struct ch_request **ret)
{
	struct sockaddr_un sa;
	struct ch_request *r;
	int k;

	if (!c || isempty(socket_path) || !method || !fn || timeout_ms == 0)
		return -EINVAL;
	if (!streq(method, "PUT") && !(streq(method, "GET") && !body))
		return -EINVAL;
	if (!endpoint_valid(endpoint))
		return -EINVAL;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->client = c;
	r->fn = fn;
	r->userdata = userdata;
	r->socket_path = strdup(socket_path);
	if (!r->socket_path) {
		k = -ENOMEM;
		goto fail;
	}

	/* Failures found here reach fn from the loop, like socket errors. */
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		r->defer_error = -ENAMETOOLONG;
	} else if ((k = ch_curl_load()) < 0) {
		r->defer_error = k;
		r->defer_message = ch_curl_load_message();
	}
	if (r->defer_error < 0) {
		k = sd_event_add_defer(c->event, &r->defer, on_defer, r);
		if (k < 0)
			goto fail;
		goto done;
	}
	k = client_multi(c);
	if (k < 0)
		goto fail;

	if (asprintf(&r->url, CH_URL_PREFIX "%s", endpoint) < 0) {
		r->url = NULL;
		k = -ENOMEM;
		goto fail;
	}
	if (body) {
		r->body = strdup(body);
		if (!r->body) {
			k = -ENOMEM;
			goto fail;
		}
	}
	r->easy = sym_curl_easy_init();
	if (!r->easy) {
		k = -ENOMEM;
		goto fail;
	}
	k = request_setup(r, method, timeout_ms);
	if (k < 0)
		goto fail;
	/* Only arms curl's timer (to 0): the transfer starts from the loop. */
	if (sym_curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
		k = -ENOMEM;
		goto fail;
	}
	r->added = true;
done:
	request_link(r);
	if (ret)
		*ret = r;
	return 0;
fail:
	request_free(r);
	client_idle(c);
	return k;
}

void ch_request_cancel(struct ch_request *r)
{
	struct ch_client *c;

	if (!r || r->delivering)
		return;
	c = r->client;
	request_free(r);
	client_idle(c);
}

static void on_raw_done(void *userdata, int error, long status, const char *body, size_t len)
{
	struct ch_request *r = userdata;
	struct ch_client *c = r->client;
	_cleanup_free_ char *message = NULL;
	struct ch_reply reply = {
		.error = error, .http_status = status, .body = body, .message = ""};

	/* body lives in raw: freed after the delivery (ch_http_fds touches nothing of its own
	 * after this callback returns) */
	struct ch_http_fds *raw = TAKE_PTR(r->raw);

	if (error < 0) {
		if (asprintf(&message, "%s: %s", r->socket_path, strerror(-error)) < 0)
			message = NULL;
	} else if (status < 200 || status >= 300)
		message = ch_reply_message(body, len, status);
	if (error < 0 || status < 200 || status >= 300)
		reply.message = message ? message : "out of memory";
	client_enter(c);
	request_deliver(r, &reply);
	ch_http_fds_free(raw);
	client_leave(c);
}

int ch_request_start_fds(struct ch_client *c, const char *socket_path, const char *method,
			 const char *endpoint, const char *body, const int *fds, size_t n_fds,
			 uint64_t timeout_ms, ch_reply_fn fn, void *userdata,
			 struct ch_request **ret)
{
	struct ch_request *r;
	int k;

	if (!c || isempty(socket_path) || !method || !fn || timeout_ms == 0)
		return -EINVAL;
	if (!streq(method, "PUT") || !endpoint_valid(endpoint))
		return -EINVAL;
	if (!(r = calloc(1, sizeof(*r))))
		return -ENOMEM;
	r->client = c;
	r->fn = fn;
	r->userdata = userdata;
	if (!(r->socket_path = strdup(socket_path))) {
		free(r);
		return -ENOMEM;
	}
	k = ch_http_fds_start(c->event, socket_path, method, endpoint, body, fds, n_fds, timeout_ms,
			      CH_REPLY_MAX, on_raw_done, r, &r->raw);
	if (k < 0) {
		request_free(r);
		return k;
	}
	request_link(r);
	if (ret)
		*ret = r;
	return 0;
}
