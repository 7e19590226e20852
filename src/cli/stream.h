/* Following a server-streaming call to its end, for the commands that do (events, logs -f,
 * volume import): open the stream, send the one request and half-close, then hand every event
 * to the command's callbacks until the call is over, and turn the end into an exit status.
 * Interactive bidi streams (console) drive client_stream themselves. */
#pragma once

#include "cli.h"

struct stream_ops {
	/* Optional: called before each wait, e.g. to cancel the stream after an interrupt.
	 * Returns the wait's timeout in milliseconds (-1: none). NULL: never a timeout. */
	int (*wait)(void *userdata, struct client_stream *s);
	/* Called for each event but the end (enum client_stream_event): msg is the message for
	 * CLIENT_STREAM_MESSAGE (borrowed for the call), else NULL. Returns CLI_EXIT_OK to go on,
	 * or the exit status to stop with (the callback printed why). */
	int (*event)(void *userdata, int ev, const ProtobufCMessage *msg);
	/* Optional: called once when the call is over or the stream failed, before anything is
	 * printed about it; st is the call's final status, NULL when the stream failed on this
	 * side. Returns the exit status, or -1 to have stream_run report the end itself. Not
	 * called when event stopped the stream. */
	int (*end)(void *userdata, const struct client_status *st);
};

/* Calls method of service with req (borrowed) as a stream on the server cli_call would use, and
 * drives it with ops and userdata until it is over; interrupted waits are retried. Returns
 * CLI_EXIT_OK when the call ended with status OK, else an exit status with the error printed
 * (as cli_call does, or what ops chose). */
int stream_run(struct cli *cli, const ProtobufCServiceDescriptor *service, const char *method,
	       const ProtobufCMessage *req, const struct stream_ops *ops, void *userdata);
