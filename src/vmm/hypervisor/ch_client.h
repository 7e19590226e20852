/* The hypervisor client: cloud-hypervisor's REST API (HTTP/1.1 over its Unix socket), driven
 * asynchronously inside the daemon's sd-event loop, so a slow or hung hypervisor never blocks
 * the loop: every request has a timeout and completes through a callback on the loop. Each
 * request is one exchange on a connection of its own, written and read by the project's own
 * HTTP/1.1 code (ch_http_fds.h, ch_http_parse.h); no HTTP library. Silent (the caller logs). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct ch_client;
struct ch_request;

struct ch_reply {
	/* 0, or -errno: -ETIMEDOUT, -ECONNREFUSED/-ENOENT/-EACCES/-ENAMETOOLONG (socket), -EFBIG
	 * (body over 1 MiB), -EBADMSG (not an HTTP answer we can read), -EPIPE/-ECONNRESET (the
	 * hypervisor hung up), -ENOMEM ... */
	int error;
	long http_status; /* 0 when no HTTP answer was received */
	const char *body; /* NUL-terminated response body ("" if none); valid during the callback */
	/* A human-readable message for failures: cloud-hypervisor's JSON error array joined with
	 * ": " (e.g. "Error from API: The VM could not be created: VM is already created"), or the
	 * transport error as "<socket>: <what>" ("/run/mvirt/vm/x/api.sock: Connection refused");
	 * "" on success. Valid during the callback. */
	const char *message;
};

/* ok = 2xx status and no transport error. */
static inline bool ch_reply_ok(const struct ch_reply *r)
{
	return r->error == 0 && r->http_status >= 200 && r->http_status < 300;
}

typedef void (*ch_reply_fn)(void *userdata, const struct ch_reply *reply);

/* Cheap: holds no fd and no connection (each request opens its own). Returns 0, -EINVAL or
 * -ENOMEM. */
int ch_client_new(sd_event *event, struct ch_client **ret);
/* Cancels every request still running (their callbacks are not called) and frees c.
 * NULL-safe. May be called from a reply callback (the request being answered ends when its
 * callback returns; c must not be used any more). */
void ch_client_free(struct ch_client *c);

/* Starts `method http://localhost/api/v1/<endpoint>` on the Unix socket socket_path with an
 * optional JSON body (copied). fn runs on the loop exactly once (unless the request is
 * cancelled), never from inside this call. Response bodies are capped at 1 MiB (larger: error
 * -EFBIG). On success, *ret (if non-NULL) is a handle valid until fn runs. fn may start and
 * cancel requests. method is "PUT" or "GET" (GET without body); endpoint is [A-Za-z0-9._~/-]+;
 * timeout_ms > 0 (bounds the whole exchange, connect included); else -EINVAL. Socket errors, a
 * path too long for a Unix socket (-ENAMETOOLONG) included, arrive through fn. */
int ch_request_start(struct ch_client *c, const char *socket_path, const char *method,
		     const char *endpoint, const char *body, uint64_t timeout_ms, ch_reply_fn fn,
		     void *userdata, struct ch_request **ret);

/* The same for a PUT that passes fds (SCM_RIGHTS with the request, ch_http_fds.h): the kernel
 * duplicates them into the hypervisor; the caller keeps its own. At most 16 fds. */
int ch_request_start_fds(struct ch_client *c, const char *socket_path, const char *method,
			 const char *endpoint, const char *body, const int *fds, size_t n_fds,
			 uint64_t timeout_ms, ch_reply_fn fn, void *userdata,
			 struct ch_request **ret);

/* Aborts a running request; its callback is not called. NULL-safe; a no-op from inside the
 * request's own callback. */
void ch_request_cancel(struct ch_request *r);
