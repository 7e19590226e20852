/* The hypervisor client: cloud-hypervisor's REST API over its Unix socket, on the daemon's
 * sd-event loop. Every request is one HTTP/1.1 exchange of ch_http_fds.c on a connection of its
 * own (connect, send, read the answer up to its Content-Length, close), with or without fds to
 * pass; this file checks the arguments, keeps the client's list of requests (cancelled at
 * ch_client_free) and turns an exchange's outcome into a ch_reply with its message.
 *
 * No HTTP library: the daemon speaks plain HTTP/1.1 to local sockets and nothing else, and the
 * fd passing of vm.add-net needs a hand-written exchange anyway (SCM_RIGHTS, which libcurl
 * cannot send). libcurl, used here before, mapped 32 shared libraries (OpenSSL, GnuTLS,
 * Kerberos, LDAP, SSH...) into a root daemon and cost ~8.7 MB of RSS once a VM had run.
 *
 * Invariants:
 * - every live request is on c->requests and owns its exchange (r->http); ch_client_free
 *   cancels them all;
 * - a reply callback runs only from the loop: ch_http_fds never calls back from inside its
 *   start, not even for errors found there (a socket path too long);
 * - before its callback runs a request is off the list and its exchange is out of its hands,
 *   and after the callback nothing touches the client: so the callback may start and cancel
 *   requests and even free the client (which frees the other requests, not this one).
 * Silent (no logging). Called by the VM manager (through ch_vm.c). */
#include "hypervisor/ch_client.h"

#include <ctype.h>
#include <inttypes.h>

#include "common/macro.h"
#include "hypervisor/ch_http_fds.h"
#include "hypervisor/ch_http_parse.h"

#define CH_REPLY_MAX (1024 * 1024)

struct ch_client {
	sd_event *event;
	struct ch_request *requests;
};

struct ch_request {
	struct ch_client *client;
	struct ch_request *prev, *next;
	bool linked;     /* on client->requests */
	bool delivering; /* fn is running: cancel is a no-op */
	struct ch_http_fds *http;
	char *socket_path;
	uint64_t timeout_ms;
	ch_reply_fn fn;
	void *userdata;
};

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

/* Aborts r's exchange (if it still has it) and frees r. */
static void request_free(struct ch_request *r)
{
	request_unlink(r);
	ch_http_fds_free(r->http);
	free(r->socket_path);
	free(r);
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

void ch_client_free(struct ch_client *c)
{
	if (!c)
		return;
	/* A request whose callback is running is off the list: its delivery frees it. */
	while (c->requests)
		request_free(c->requests);
	sd_event_unref(c->event);
	free(c);
}

/* The message of a failed exchange: "<socket>: <what went wrong>". NULL on ENOMEM. */
static char *transport_message(const struct ch_request *r, int error)
{
	char *msg = NULL;
	int k;

	switch (error) {
	case -ETIMEDOUT:
		k = asprintf(&msg, "%s: %s (no answer within %" PRIu64 " ms)", r->socket_path,
			     strerror(-error), r->timeout_ms);
		break;
	case -EFBIG:
		k = asprintf(&msg, "%s: response body larger than %d bytes", r->socket_path,
			     CH_REPLY_MAX);
		break;
	case -EBADMSG:
		k = asprintf(&msg, "%s: not an HTTP/1.1 answer we can read", r->socket_path);
		break;
	default:
		k = asprintf(&msg, "%s: %s", r->socket_path, strerror(-error));
		break;
	}
	return k < 0 ? NULL : msg;
}

/* The exchange is over: runs fn once with its outcome, then frees r. */
static void on_http_done(void *userdata, int error, long status, const char *body, size_t len)
{
	struct ch_request *r = userdata;
	_cleanup_free_ char *message = NULL;
	struct ch_reply reply = {
		.error = error, .http_status = status, .body = body, .message = ""};
	/* body lives in the exchange: freed after the delivery (ch_http_fds touches nothing of
	 * its own after this callback returns) */
	struct ch_http_fds *http = TAKE_PTR(r->http);

	if (error < 0)
		message = transport_message(r, error);
	else if (!ch_reply_ok(&reply))
		message = ch_reply_message(body, len, status);
	if (!ch_reply_ok(&reply))
		reply.message = message ? message : "out of memory";

	request_unlink(r);
	r->delivering = true;
	r->fn(r->userdata, &reply);
	request_free(r);
	ch_http_fds_free(http);
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

/* Both entry points, once their arguments are checked. */
static int request_start(struct ch_client *c, const char *socket_path, const char *method,
			 const char *endpoint, const char *body, const int *fds, size_t n_fds,
			 uint64_t timeout_ms, ch_reply_fn fn, void *userdata,
			 struct ch_request **ret)
{
	struct ch_request *r;
	int k;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->client = c;
	r->fn = fn;
	r->userdata = userdata;
	r->timeout_ms = timeout_ms;
	r->socket_path = strdup(socket_path);
	if (!r->socket_path) {
		free(r);
		return -ENOMEM;
	}
	k = ch_http_fds_start(c->event, socket_path, method, endpoint, body, fds, n_fds, timeout_ms,
			      CH_REPLY_MAX, on_http_done, r, &r->http);
	if (k < 0) {
		request_free(r);
		return k;
	}
	request_link(r);
	if (ret)
		*ret = r;
	return 0;
}

int ch_request_start(struct ch_client *c, const char *socket_path, const char *method,
		     const char *endpoint, const char *body, uint64_t timeout_ms, ch_reply_fn fn,
		     void *userdata, struct ch_request **ret)
{
	if (!c || isempty(socket_path) || !method || !fn || timeout_ms == 0)
		return -EINVAL;
	if (!streq(method, "PUT") && !(streq(method, "GET") && !body))
		return -EINVAL;
	if (!endpoint_valid(endpoint))
		return -EINVAL;
	return request_start(c, socket_path, method, endpoint, body, NULL, 0, timeout_ms, fn,
			     userdata, ret);
}

int ch_request_start_fds(struct ch_client *c, const char *socket_path, const char *method,
			 const char *endpoint, const char *body, const int *fds, size_t n_fds,
			 uint64_t timeout_ms, ch_reply_fn fn, void *userdata,
			 struct ch_request **ret)
{
	if (!c || isempty(socket_path) || !method || !fn || timeout_ms == 0)
		return -EINVAL;
	if (!streq(method, "PUT") || !endpoint_valid(endpoint))
		return -EINVAL;
	return request_start(c, socket_path, method, endpoint, body, fds, n_fds, timeout_ms, fn,
			     userdata, ret);
}

void ch_request_cancel(struct ch_request *r)
{
	if (!r || r->delivering)
		return;
	request_free(r);
}
