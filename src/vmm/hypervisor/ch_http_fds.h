/* One HTTP/1.1 exchange on cloud-hypervisor's API socket, the transport of every REST call of
 * ch_client.c: a connection of its own (nothing kept alive to a hypervisor that may go away),
 * the request in as few sendmsg as the socket takes, the answer read up to its Content-Length
 * (cloud-hypervisor keeps connections alive) or EOF, as ch_http_parse_answer (ch_http_parse.h)
 * frames it, then fn. It can also pass file descriptors with SCM_RIGHTS on the request's first
 * sendmsg: cloud-hypervisor takes the tap fds of a network device as ancillary data of the
 * request that adds it (vm.add-net; see the OpenAPI file and vmm/src/api/http/http_endpoint.rs
 * upstream), which is why libvirt's ch driver writes such requests by hand. Runs on the
 * sd-event loop, never blocks it; used by ch_client.c only. Silent. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define CH_HTTP_FDS_MAX 16 /* SCM_MAX_FD is 253; cloud-hypervisor takes one per queue pair */

struct ch_http_fds;

/* error: 0 or -errno (-ETIMEDOUT, -ECONNREFUSED, -ENOENT, -ENAMETOOLONG for a socket path over
 * sun_path, -EBADMSG for an answer that is not HTTP we can read, -EFBIG for a body over
 * max_body bytes, -EPIPE...); status: the HTTP status (0 without
 * an answer); body: NUL-terminated, len bytes ("" if none). Runs once, from the loop. */
typedef void (*ch_http_fds_fn)(void *userdata, int error, long status, const char *body,
			       size_t len);

/* Sends `method /api/v1/<endpoint>` with body (may be NULL) and fds (none: n_fds 0; else
 * duplicated here and by the kernel at send time; the caller keeps its own) to socket_path.
 * The request carries Host, Accept: application/json, with a body Content-Type:
 * application/json, and Content-Length for a body and on any method but GET (0 on a bodiless
 * PUT, which cloud-hypervisor requires). method and endpoint go out as given: the caller
 * checks them. fn never runs from inside this call. -EINVAL (bad arguments, n_fds over
 * CH_HTTP_FDS_MAX, max_body over SIZE_MAX / 2), -ENOMEM; transport errors reach fn. */
int ch_http_fds_start(sd_event *event, const char *socket_path, const char *method,
		      const char *endpoint, const char *body, const int *fds, size_t n_fds,
		      uint64_t timeout_ms, size_t max_body, ch_http_fds_fn fn, void *userdata,
		      struct ch_http_fds **ret);
/* Aborts the exchange (fn is not called). NULL-safe. */
void ch_http_fds_free(struct ch_http_fds *x);
