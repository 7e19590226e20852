/* The serial console of a running VM. cloud-hypervisor serves the serial port on a Unix socket
 * that accepts one client at a time; the daemon is that client, for as long as the VM runs, and
 * keeps every byte the guest prints in the VM's console log (a file in its state directory), so
 * output is never lost when nobody watches and survives daemon restarts.
 *
 * The socket disappears and comes back at every guest reboot (cloud-hypervisor re-binds it):
 * the console reconnects by itself while it is open. Runs on the event loop. */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

struct console;

/* Starts following the serial socket at socket_path, appending output to log_path (created
 * 0600 if absent). Connection failures are retried until console_free(). */
int console_new(sd_event *event, const char *socket_path, const char *log_path,
		struct console **ret);
/* Stops following (the log stays). NULL-safe. */
void console_free(struct console *c);

/* Sends bytes to the guest's serial input; -ENOTCONN while not connected. */
int console_write(struct console *c, const void *data, size_t len);
