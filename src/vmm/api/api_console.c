/* See api_console.h.
 *
 * Console: one struct console_session per stream, attached as a console viewer from the first
 * request until the stream is over (on_cancel) or the console closes (the VM stopped). The
 * viewer callback never blocks: output is coalesced and queued with a bound of
 * CONSOLE_MAX_QUEUED messages; past it the session skips output, counting the bytes, and once
 * the client has drained its queue below half it gets a notice saying how much it missed, then
 * live output again. History is sent before the viewer sees live output: both happen within
 * one turn of the event loop, which alone feeds the console, so nothing is lost or repeated in
 * between.
 *
 * WatchVms: one struct watcher per stream, subscribed to the VM manager's event bus from the
 * request until the stream is over. A full queue (WATCH_MAX_QUEUED) unsubscribes the watcher
 * at once and ends its stream: the client gets the events queued so far, then
 * RESOURCE_EXHAUSTED. The daemon never holds more than that for a watcher. */
#include "api/api_console.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "api/api_context.h"
#include "common/log.h"
#include "mvirt.pb-c.h"
#include "vm/console.h"
#include "vm/vm.h"

/* Live output: at most this many messages wait for a client; each holds at most
 * CONSOLE_CHUNK bytes (so a slow client costs the daemon about 1 MiB, as long as
 * cloud-hypervisor's own ring). */
#define CONSOLE_MAX_QUEUED 64
#define CONSOLE_CHUNK (16 * 1024)
#define CONSOLE_HISTORY_CHUNK (64 * 1024)
/* How often a session with coalesced or skipped output looks at its queue again. */
#define CONSOLE_TIMER_USEC (5 * 1000ULL)
#define CONSOLE_TIMER_ACCURACY_USEC 1000ULL
#define WATCH_MAX_QUEUED 256

/* ---- Console ---- */

/* Guest output often comes a few bytes at a time (a UART writes byte by byte), much faster
 * than a client takes messages one by one: while a message waits in the queue, output is
 * coalesced into `pending` and sent as one message when the queue is empty or the chunk
 * full. */
struct console_session {
	struct api_call *call;
	sd_event *event;
	struct console *console; /* NULL once the console closed */
	struct console_viewer *viewer;
	char *vm_name;
	/* history delivered by console_viewer_add, collected before it is sent */
	bool collecting;
	char *history;
	size_t history_len;
	char *pending; /* CONSOLE_CHUNK bytes, allocated on first use */
	size_t pending_len;
	/* output bytes dropped since the last notice */
	uint64_t skipped;
	/* runs while pending_len > 0 or skipped > 0 */
	sd_event_source *timer;
};

static int send_output(struct console_session *s, const void *data, size_t len, size_t bound)
{
	Mvirt__ConsoleResponse resp = MVIRT__CONSOLE_RESPONSE__INIT;

	resp.output.data = (uint8_t *)data;
	resp.output.len = len;
	return api_call_send(s->call, &resp.base, bound);
}

static int send_notice(struct console_session *s, size_t bound, const char *fmt, ...)
	_printf_(3, 4);
static int send_notice(struct console_session *s, size_t bound, const char *fmt, ...)
{
	Mvirt__ConsoleResponse resp = MVIRT__CONSOLE_RESPONSE__INIT;
	char buf[MV_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	resp.notice = buf;
	return api_call_send(s->call, &resp.base, bound);
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata);

/* Arms the timer unless it is armed already (never postpones it). */
static void timer_arm(struct console_session *s)
{
	int enabled;

	if (s->timer) {
		if (sd_event_source_get_enabled(s->timer, &enabled) < 0 || enabled != SD_EVENT_OFF)
			return;
		if (sd_event_source_set_time_relative(s->timer, CONSOLE_TIMER_USEC) >= 0)
			(void)sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
		return;
	}
	(void)sd_event_add_time_relative(s->event, &s->timer, CLOCK_MONOTONIC, CONSOLE_TIMER_USEC,
					 CONSOLE_TIMER_ACCURACY_USEC, on_timer, s);
}

static void skip(struct console_session *s, size_t len)
{
	if (s->skipped == 0)
		log_debug("vm %s: console client too slow; skipping output", s->vm_name);
	s->skipped += len;
	timer_arm(s);
}

/* Tells the client how much it missed once its queue has drained below half (or at once
 * with force); true when live output may flow again. */
static bool skip_end(struct console_session *s, bool force)
{
	if (!force && api_call_queued(s->call) >= CONSOLE_MAX_QUEUED / 2)
		return false;
	if (send_notice(s, force ? SIZE_MAX : CONSOLE_MAX_QUEUED,
			"skipped %" PRIu64 " bytes: client too slow", s->skipped) == -ENOBUFS)
		return false;
	s->skipped = 0;
	return true;
}

static void flush_pending(struct console_session *s, size_t bound)
{
	if (s->pending_len == 0)
		return;
	if (send_output(s, s->pending, s->pending_len, bound) == -ENOBUFS)
		skip(s, s->pending_len);
	s->pending_len = 0;
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct console_session *s = userdata;

	(void)src;
	(void)usec;
	if (s->skipped > 0)
		(void)skip_end(s, false);
	else if (s->pending_len > 0 && api_call_queued(s->call) == 0)
		flush_pending(s, CONSOLE_MAX_QUEUED);
	if (s->skipped > 0 || s->pending_len > 0)
		timer_arm(s);
	return 0;
}

static void output_live(struct console_session *s, const char *data, size_t len)
{
	if (s->skipped > 0 && !skip_end(s, false)) {
		s->skipped += len;
		return;
	}
	if (s->pending_len == 0 && api_call_queued(s->call) == 0) {
		if (send_output(s, data, len, CONSOLE_MAX_QUEUED) == -ENOBUFS)
			skip(s, len);
		return;
	}
	if (!s->pending && !(s->pending = malloc(CONSOLE_CHUNK))) {
		skip(s, len);
		return;
	}
	while (len > 0 && s->skipped == 0) {
		size_t n = CONSOLE_CHUNK - s->pending_len;

		if (n > len)
			n = len;
		memcpy(s->pending + s->pending_len, data, n);
		s->pending_len += n;
		data += n;
		len -= n;
		if (s->pending_len == CONSOLE_CHUNK)
			flush_pending(s, CONSOLE_MAX_QUEUED);
	}
	if (len > 0)
		s->skipped += len; /* the chunk before did not fit */
	if (s->pending_len > 0 && api_call_queued(s->call) == 0)
		flush_pending(s, CONSOLE_MAX_QUEUED);
	if (s->pending_len > 0)
		timer_arm(s);
}

static void on_console_output(void *userdata, const void *data, size_t len)
{
	struct console_session *s = userdata;

	if (s->collecting) {
		char *p = realloc(s->history, s->history_len + len);

		if (!p)
			return; /* a shorter history, not a broken stream */
		memcpy(p + s->history_len, data, len);
		s->history = p;
		s->history_len += len;
		return;
	}
	output_live(s, data, len);
}

static void on_console_closed(void *userdata, const char *reason)
{
	struct console_session *s = userdata;

	/* The console frees the viewer when this returns. */
	s->viewer = NULL;
	s->console = NULL;
	if (s->skipped > 0)
		(void)skip_end(s, true);
	else
		flush_pending(s, SIZE_MAX);
	s->timer = sd_event_source_disable_unref(s->timer);
	(void)send_notice(s, SIZE_MAX, "%s", reason);
	api_call_finish(s->call, GRPC_STATUS_OK, reason);
}

static const struct console_viewer_ops console_ops = {
	.output = on_console_output,
	.closed = on_console_closed,
};

static void session_free(struct console_session *s)
{
	if (!s)
		return;
	console_viewer_remove(s->viewer);
	sd_event_source_disable_unref(s->timer);
	free(s->pending);
	free(s->history);
	free(s->vm_name);
	free(s);
}

/* The last `want` bytes of the console log, when the in-memory window had less. */
static void history_from_log(struct console_session *s, struct api_context *ctx, const char *ref,
			     uint64_t want)
{
	_cleanup_free_ char *path = NULL;
	struct mv_error err = {0};
	char *buf = NULL;
	size_t len = 0;
	bool truncated;

	if (vm_manager_console_log(ctx->vms, ref, &path, NULL, &err) < 0 ||
	    console_log_read(path, want, &buf, &len, &truncated) < 0)
		return;
	if (len <= s->history_len) {
		free(buf);
		return;
	}
	free(s->history);
	s->history = buf;
	s->history_len = len;
}

/* Sends the history in chunks; they may exceed the live bound (history is bounded by the
 * console log's size), which only delays live output until the client has read them. */
static int send_history(struct console_session *s)
{
	for (size_t off = 0; off < s->history_len;) {
		size_t n = s->history_len - off;
		int r;

		if (n > CONSOLE_HISTORY_CHUNK)
			n = CONSOLE_HISTORY_CHUNK;
		r = send_output(s, s->history + off, n, SIZE_MAX);
		if (r < 0)
			return r;
		off += n;
	}
	return 0;
}

/* Attaches the stream to the console of the VM the first request names and queues the
 * history. NULL when the call was ended with an error. */
static struct console_session *console_attach(struct api_call *call,
					      const Mvirt__ConsoleRequest *req)
{
	struct api_context *ctx = api_context_of(call);
	struct console_session *s;
	const struct vm_record *rec;
	struct console *console;
	struct mv_error err = {0};
	uint64_t want = req->history_bytes;
	int r;

	if (vm_manager_console(ctx->vms, req->vm, &console, &rec, &err) < 0) {
		api_call_fail_err(call, &err);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->vm_name = strdup(rec->name))) {
		free(s);
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return NULL;
	}
	s->call = call;
	s->event = ctx->event;
	s->console = console;
	api_call_set_data(call, s);

	s->collecting = true;
	r = console_viewer_add(console, &console_ops, s,
			       want <= CONSOLE_RING_SIZE ? (size_t)want : 0, &s->viewer);
	s->collecting = false;
	if (r < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL,
			      "vm '%s': cannot attach to the console: %s", rec->name, strerror(-r));
		return NULL;
	}
	/* The window holds only this run's recent output; the log has the rest. */
	if (want > s->history_len)
		history_from_log(s, ctx, req->vm, want);
	api_call_begin_stream(call);
	r = send_history(s);
	free(TAKE_PTR(s->history));
	s->history_len = 0;
	if (r < 0 && r != -ECANCELED) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "vm '%s': cannot queue the history: %s",
			      rec->name, strerror(-r));
		return NULL;
	}
	log_debug("vm %s: console client attached", rec->name);
	return s;
}

/* Input goes to the guest as it comes, never buffered: what the serial port does not take now
 * is dropped, and the client told (after the output that came before). */
static void console_input(struct console_session *s, const ProtobufCBinaryData *in)
{
	size_t dropped = in->len;
	const char *why;
	int r;

	if (!s->console)
		return; /* closed: the final notice is on its way */
	r = console_write(s->console, in->data, in->len);
	if (r >= 0 && (size_t)r == in->len)
		return;
	why = "the guest is not reading";
	if (r == -ENOTCONN)
		why = "the serial port is not connected (the guest is rebooting?)";
	else if (r < 0)
		why = strerror(-r);
	else
		dropped -= (size_t)r;
	log_debug("vm %s: console input dropped (%zu of %zu bytes): %s", s->vm_name, dropped,
		  in->len, why);
	if (s->skipped == 0)
		flush_pending(s, CONSOLE_MAX_QUEUED);
	(void)send_notice(s, CONSOLE_MAX_QUEUED, "input dropped (%zu of %zu bytes): %s", dropped,
			  in->len, why);
}

static void handle_console(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__ConsoleRequest *req = (const Mvirt__ConsoleRequest *)msg;
	struct console_session *s = api_call_get_data(call);

	if (!s) {
		if (!req) {
			api_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
				      "vm: the first request must name the VM");
			return;
		}
		s = console_attach(call, req);
		if (!s)
			return;
	}
	/* req == NULL: the client half-closed; it keeps following the output. */
	if (req && req->input.len > 0)
		console_input(s, &req->input);
}

static void console_cancel(struct api_call *call)
{
	struct console_session *s = api_call_get_data(call);

	if (s && s->viewer)
		log_debug("vm %s: console client detached", s->vm_name);
	session_free(s);
	api_call_set_data(call, NULL);
}

/* ---- GetConsoleLog ---- */

static void handle_console_log(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__GetConsoleLogRequest *req = (const Mvirt__GetConsoleLogRequest *)msg;
	Mvirt__GetConsoleLogResponse resp = MVIRT__GET_CONSOLE_LOG_RESPONSE__INIT;
	_cleanup_free_ char *path = NULL, *buf = NULL;
	const struct vm_record *rec;
	struct mv_error err = {0};
	bool truncated = false;
	size_t len = 0;
	int r;

	if (vm_manager_console_log(api_context_of(call)->vms, req->vm, &path, &rec, &err) < 0) {
		api_call_fail_err(call, &err);
		return;
	}
	r = console_log_read(path, req->tail_bytes, &buf, &len, &truncated);
	if (r < 0 && r != -ENOENT) { /* no log yet: the VM never printed */
		api_call_fail(call, GRPC_STATUS_INTERNAL,
			      "vm '%s': cannot read its console log: %s", rec->name, strerror(-r));
		return;
	}
	resp.data.data = (uint8_t *)buf;
	resp.data.len = len;
	resp.truncated = truncated;
	api_call_reply(call, &resp.base);
}

/* ---- WatchVms ---- */

struct watcher {
	struct api_call *call;
	struct vm_watch *watch; /* NULL once unsubscribed */
	char *vm_id;            /* the filter, or NULL: all VMs */
};

static void watcher_end(struct watcher *w, grpc_status_code status, const char *details)
{
	vm_watch_free(w->watch);
	w->watch = NULL;
	api_call_finish(w->call, status, details);
}

static void on_vm_event(void *userdata, const struct vm_event *ev)
{
	struct watcher *w = userdata;
	Mvirt__VmEvent pb = MVIRT__VM_EVENT__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	char details[128];
	int r;

	if (w->vm_id && !streq(w->vm_id, ev->vm->id))
		return;
	pb.type = (Mvirt__VmEventType)ev->type;
	pb.vm_id = (char *)ev->vm->id;
	pb.vm_name = ev->vm->name;
	pb.state = (Mvirt__VmState)ev->vm->state;
	pb.reason = (char *)strempty(ev->vm->state_reason);
	ts.seconds = ev->time_us / 1000000;
	ts.nanos = (int32_t)(ev->time_us % 1000000) * 1000;
	pb.time = &ts;
	pb.sequence = ev->sequence;
	r = api_call_send(w->call, &pb.base, WATCH_MAX_QUEUED);
	if (r == -ENOBUFS) {
		snprintf(details, sizeof(details), "watcher too slow: more than %d events not read",
			 WATCH_MAX_QUEUED);
		log_info("api WatchVms: %s; disconnecting it", details);
		watcher_end(w, GRPC_STATUS_RESOURCE_EXHAUSTED, details);
	} else if (r == -ECANCELED) {
		vm_watch_free(TAKE_PTR(w->watch)); /* on_cancel follows */
	} else if (r < 0) {
		watcher_end(w, GRPC_STATUS_INTERNAL, "cannot queue an event");
	} else if (w->vm_id && ev->type == VM_EVENT_DELETED) {
		watcher_end(w, GRPC_STATUS_OK, "vm deleted");
	}
}

static void handle_watch(struct api_call *call, const ProtobufCMessage *msg)
{
	const Mvirt__WatchVmsRequest *req = (const Mvirt__WatchVmsRequest *)msg;
	struct api_context *ctx = api_context_of(call);
	const struct vm_record *rec;
	struct mv_error err = {0};
	struct watcher *w;
	int r;

	w = calloc(1, sizeof(*w));
	if (!w) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
		return;
	}
	w->call = call;
	api_call_set_data(call, w);
	if (!isempty(req->vm)) {
		if (vm_manager_lookup(ctx->vms, req->vm, "vm", &rec, &err) < 0) {
			api_call_fail_err(call, &err);
			return;
		}
		if (!(w->vm_id = strdup(rec->id))) {
			api_call_fail(call, GRPC_STATUS_INTERNAL, "out of memory");
			return;
		}
	}
	r = vm_manager_watch(ctx->vms, on_vm_event, w, &w->watch);
	if (r < 0) {
		api_call_fail(call, GRPC_STATUS_INTERNAL, "cannot subscribe: %s", strerror(-r));
		return;
	}
	/* The client's initial metadata now tells it that it is subscribed. */
	api_call_begin_stream(call);
}

static void watch_cancel(struct api_call *call)
{
	struct watcher *w = api_call_get_data(call);

	if (!w)
		return;
	vm_watch_free(w->watch);
	free(w->vm_id);
	free(w);
	api_call_set_data(call, NULL);
}

const struct api_method api_console_methods[] = {
	{
		.path = "/mvirt.VmService/Console",
		.kind = API_METHOD_BIDI_STREAM,
		.request = &mvirt__console_request__descriptor,
		.handle = handle_console,
		.on_cancel = console_cancel,
	},
	{
		.path = "/mvirt.VmService/GetConsoleLog",
		.kind = API_METHOD_UNARY,
		.request = &mvirt__get_console_log_request__descriptor,
		.handle = handle_console_log,
	},
	{
		.path = "/mvirt.VmService/WatchVms",
		.kind = API_METHOD_SERVER_STREAM,
		.request = &mvirt__watch_vms_request__descriptor,
		.handle = handle_watch,
		.on_cancel = watch_cancel,
	},
	{.path = NULL},
};
