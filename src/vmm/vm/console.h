/* The serial console of a running VM. cloud-hypervisor serves the serial port on a Unix socket
 * that accepts one client at a time; the daemon is that client, for as long as the VM runs, and
 * fans the output out:
 *   - to the VM's console log on disk (<state-dir>/vms/<id>/console.log, rotated to
 *     console.log.1 past CONSOLE_LOG_MAX bytes; an empty console.log.truncated appears once a
 *     rotation dropped output), so output is kept when nobody watches and survives daemon
 *     restarts;
 *   - to an in-memory window of the last CONSOLE_RING_SIZE bytes, for fast history replay;
 *   - to any number of viewers, each told of every chunk through a callback that must not
 *     block (the API layer queues with a bound and skips ahead for slow clients).
 * The socket disappears and comes back at every guest reboot (cloud-hypervisor re-binds it):
 * the console reconnects by itself while it is open. Runs on the event loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define CONSOLE_RING_SIZE (64 * 1024)
#define CONSOLE_LOG_MAX (1024 * 1024)

struct console;
struct console_viewer;

struct console_viewer_ops {
	/* Guest output, in order. data is valid during the call only. */
	void (*output)(void *userdata, const void *data, size_t len);
	/* The console is going away (the VM stopped); reason says why. The viewer is detached
	 * and freed right after this returns. */
	void (*closed)(void *userdata, const char *reason);
};

/* Starts following the serial socket at socket_path, logging to log_path (created 0600 if
 * absent; console.log.1 beside it on rotation). Connection failures are retried until
 * console_free(). */
int console_new(sd_event *event, const char *socket_path, const char *log_path,
		struct console **ret);
/* Stops following (the log stays); every viewer gets closed(reason). NULL-safe. */
void console_free(struct console *c, const char *reason);

/* Sends bytes to the guest's serial input; -ENOTCONN while not connected (e.g. during a
 * reboot), else the count written (a short count: the guest is not reading). */
int console_write(struct console *c, const void *data, size_t len);

/* Attaches a viewer; it first receives the last history bytes (at most what the in-memory
 * window holds; more comes from the log, see console_log_read), then live output. */
int console_viewer_add(struct console *c, const struct console_viewer_ops *ops, void *userdata,
		       size_t history, struct console_viewer **ret);
/* Detaches; no callback runs after this. NULL-safe. */
void console_viewer_remove(struct console_viewer *v);

/* Reads the last tail bytes (0: all) of the console log at log_path, including its rotated
 * predecessor, into a new buffer. *ret_truncated tells whether older output existed. Works
 * whether or not the VM runs. -ENOENT when there is no log yet. */
int console_log_read(const char *log_path, uint64_t tail, char **ret, size_t *ret_len,
		     bool *ret_truncated);
