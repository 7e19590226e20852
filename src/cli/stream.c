/* See stream.h: the loop shared by the commands that follow a server stream. */
#include "stream.h"

#include <errno.h>
#include <string.h>

#include "client.h"

/* The exit status for the end of the call on s (st NULL: err, a local failure). */
static int stream_end(struct cli *cli, const char *method, const struct stream_ops *ops,
		      void *userdata, const struct client_status *st, int err)
{
	int r;

	if (ops->end && (r = ops->end(userdata, st)) >= 0)
		return r;
	if (!st)
		return cli_error("%s: %s", method, strerror(-err));
	return cli_report_status(cli, method, st);
}

int stream_run(struct cli *cli, const ProtobufCServiceDescriptor *service, const char *method,
	       const ProtobufCMessage *req, const struct stream_ops *ops, void *userdata)
{
	struct client_stream *s = NULL;
	int r;

	if ((r = cli_stream_open_service(cli, service, method, &s)) != CLI_EXIT_OK)
		return r;
	if (client_stream_send(s, req) < 0 || client_stream_close_send(s) < 0) {
		r = cli_error("%s: cannot send the request", method);
		goto out;
	}
	for (;;) {
		ProtobufCMessage *msg = NULL;
		int timeout = ops->wait ? ops->wait(userdata, s) : -1;
		int ev = client_stream_next(s, timeout, &msg);

		if (ev == -EINTR || ev == -EBADMSG) /* -EBADMSG: the END that follows says it */
			continue;
		if (ev < 0) {
			r = stream_end(cli, method, ops, userdata, NULL, ev);
			break;
		}
		if (ev == CLIENT_STREAM_END) {
			r = stream_end(cli, method, ops, userdata, client_stream_status(s), 0);
			break;
		}
		r = ops->event(userdata, ev, msg);
		if (msg)
			protobuf_c_message_free_unpacked(msg, NULL);
		if (r != CLI_EXIT_OK)
			break;
	}
out:
	client_stream_free(s);
	return r;
}
