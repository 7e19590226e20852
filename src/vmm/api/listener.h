/* The daemon's listening sockets. mvirt-vmm binds and accepts connections itself, instead of
 * letting gRPC do it, for three reasons: it decides per connection whether the peer may use
 * the API (peer.h) before gRPC sees a byte; it never unlinks a Unix socket another daemon is
 * serving (gRPC would); and it never shares a TCP port (no SO_REUSEPORT). Accepted sockets
 * go to the API server with api_server_add_connection(). Runs on the event loop. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "api/api.h"
#include "common/err.h"

struct listener;

/* Parses ADDR: "unix:/abs/path", "/abs/path", "127.0.0.1:PORT", "localhost:PORT",
 * "[::1]:PORT". Only loopback addresses are accepted (no TLS yet). */
int listener_check_address(const char *addr, struct mv_error *err);

/* Binds addr and starts accepting on event. Unix sockets are created 0660 and owned by
 * access_gid ((gid_t)-1: left root's); a stale socket file (nobody accepting) is replaced, a live
 * one is refused with -EADDRINUSE. */
int listener_open(sd_event *event, const char *addr, struct api_server *api, gid_t access_gid,
		  struct listener **ret, struct mv_error *err);

/* Serves fd, a listening stream socket made by someone else (systemd's socket activation:
 * sd_listen_fds), under the same rules as an address of listener_open: a Unix socket file or
 * a loopback TCP address. Its mode and owner are left as they are, and its file is never
 * unlinked. On success the listener owns fd (made non-blocking and close-on-exec); on failure
 * fd stays the caller's. */
int listener_adopt(sd_event *event, int fd, struct api_server *api, gid_t access_gid,
		   struct listener **ret, struct mv_error *err);

/* Whether the listen addresses addr and other name the same socket (both valid). */
bool listener_serves(const char *addr, const char *other);

/* Stops accepting and closes the socket; a Unix socket's file is unlinked. NULL-safe. */
void listener_free(struct listener *l);

const char *listener_address(const struct listener *l);
