/* The hypervisor client: cloud-hypervisor's REST API (HTTP/1.1 over its Unix socket), driven
 * asynchronously by libcurl's multi interface inside the daemon's sd-event loop, so a slow or
 * hung hypervisor never blocks the loop: every request has a timeout and completes through a
 * callback on the loop. Only this module knows CURL; it does not link libcurl but dlopen()s
 * libcurl.so.4 at the first ch_request_start of the process. Silent (the caller logs). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct ch_client;
struct ch_request;

struct ch_reply {
	/* 0, or -errno: -ETIMEDOUT, -ECONNREFUSED/-ENOENT (socket), -EIO, -ELIBACC (libcurl
	 * cannot be loaded: message "cannot load libcurl.so.4: <dlerror()>") ... */
	int error;
	long http_status; /* 0 when no HTTP answer was received */
	const char *body; /* NUL-terminated response body ("" if none); valid during the callback */
	/* A human-readable message for failures: cloud-hypervisor's JSON error array joined with
	 * ": " (e.g. "Error from API: The VM could not be created: VM is already created"), or the
	 * transport error; "" on success. Valid during the callback. */
	const char *message;
};

/* ok = 2xx status and no transport error. */
static inline bool ch_reply_ok(const struct ch_reply *r)
{
	return r->error == 0 && r->http_status >= 200 && r->http_status < 300;
}

typedef void (*ch_reply_fn)(void *userdata, const struct ch_reply *reply);

/* Cheap: neither loads libcurl nor creates curl state (the first request does), so a daemon
 * that never starts a VM never maps libcurl. Returns 0, -EINVAL or -ENOMEM. */
int ch_client_new(sd_event *event, struct ch_client **ret);
/* Cancels every request still running (their callbacks are not called). NULL-safe. May be
 * called from a reply callback (the client is then released when the callback returns). */
void ch_client_free(struct ch_client *c);

/* Starts `method http://localhost/api/v1/<endpoint>` on the Unix socket socket_path with an
 * optional JSON body. fn runs on the loop exactly once (unless the request is cancelled), never
 * from inside this call. Response bodies are capped at 1 MiB (larger: error -EFBIG). On
 * success, *ret (if non-NULL) is a handle valid until fn runs. fn may start and cancel
 * requests. method is "PUT" or "GET" (GET without body); endpoint is [A-Za-z0-9._~/-]+;
 * timeout_ms > 0; else -EINVAL. Socket errors, a path too long for a Unix socket
 * (-ENAMETOOLONG) included, arrive through fn, and so does a libcurl that cannot be loaded or
 * initialised (-ELIBACC, -EIO: loading is tried once per process, at the first call). */
int ch_request_start(struct ch_client *c, const char *socket_path, const char *method,
		     const char *endpoint, const char *body, uint64_t timeout_ms, ch_reply_fn fn,
		     void *userdata, struct ch_request **ret);

/* The same for a PUT that passes fds (SCM_RIGHTS with the request, ch_http_fds.h), which
 * libcurl cannot send: the kernel duplicates them into the hypervisor; the caller keeps its
 * own. At most 16 fds. */
int ch_request_start_fds(struct ch_client *c, const char *socket_path, const char *method,
			 const char *endpoint, const char *body, const int *fds, size_t n_fds,
			 uint64_t timeout_ms, ch_reply_fn fn, void *userdata,
			 struct ch_request **ret);

/* Aborts a running request; its callback is not called. NULL-safe; a no-op from inside the
 * request's own callback. */
void ch_request_cancel(struct ch_request *r);
