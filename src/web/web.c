/* mvirt-web: the web UI's server. A client of mvirt-vmm's gRPC API like the CLI (bridge.c), an
 * HTTP and WebSocket server through libwebsockets (no HTTP parsing or WebSocket framing here),
 * serving the UI's built assets and nothing to a client that has not logged in but the login
 * page (auth.c). One thread runs the libwebsockets loop; gRPC core's own threads complete the
 * calls and wake it through the call's pipe.
 *
 * Safety: plain HTTP only on loopback: any other address implies TLS (--tls), with the user's
 * certificate (--tls-cert/--tls-key) or the one it generates at first start in
 * <state-dir>/tls (tls.c), checked before libwebsockets loads it and its SHA-256 fingerprint
 * printed for the user to compare with the browser's; sessions are HttpOnly, SameSite=Strict
 * cookies (Secure over TLS); every POST but the login carries the session's CSRF token
 * (X-CSRF-Token) and, when the browser sends one, an Origin equal to this server's; WebSocket
 * upgrades need a session and a matching Origin. libwebsockets adds the security headers
 * (Content-Security-Policy, X-Frame-Options ...) to every answer.
 *
 * Exporter mode (--metrics): GET /metrics answers mvirt-vmm's GetMetrics text, for Prometheus.
 * Without a session or token only while plain HTTP on loopback (what exporters do; anyone on the
 * host may read it, as anyone may read /proc); with TLS (any other address) the scraper sends the
 * login token as "Authorization: Bearer <token>". A daemon that does not answer makes it
 * "mvirt_up 0". Off by default: 404. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <json-c/json.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bridge.h"
#include "client.h"
#include "common/macro.h"
#include "mvirt.pb-c.h"
#include "tls.h"

#define WS_PROTOCOL "mvirt-stream"
#define CALL_PREFIX "/api/call/"
#define STREAM_PREFIX "/api/stream/"
#define COOKIE "mvirt_session"
#define URI_MAX 512

struct web {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct client *client;
	struct auth *auth;
	const char *assets;
	bool tls, stop;
	bool metrics;      /* --metrics: GET /metrics */
	bool metrics_open; /* ... without a session or token (plain HTTP on loopback) */
};

static struct web web;

struct http_req {
	char uri[URI_MAX];
	bool post, too_big, answered, dispatched;
	bool metrics; /* GET /metrics: the call is GetMetrics, answered as text */
	uint8_t *body;
	size_t body_len, body_cap;
	struct bridge_call *call;
	/* an answer of our own (not a call's) */
	bool have_answer;
	unsigned status;
	const char *ctype;
	char *answer;
	size_t answer_len;
	char set_cookie[160];
};

struct ws_conn {
	struct bridge_call *call;
	uint8_t *rx;
	size_t rx_len;
};

static uint64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* NULL-safe: a connection whose TLS handshake fails is closed (LWS_CALLBACK_CLOSED_HTTP)
 * before it has a request. */
static void req_reset(struct http_req *r)
{
	if (!r)
		return;
	bridge_detach(r->call);
	free(r->body);
	free(r->answer);
	*r = (struct http_req){0};
}

/* The session of this request's cookie, or NULL. */
static const struct auth_session *session_of(struct lws *wsi)
{
	char id[AUTH_ID_LEN + 8];
	size_t max = sizeof(id);

	if (lws_http_cookie_get(wsi, COOKIE, id, &max) != 0)
		return NULL;
	id[max < sizeof(id) ? max : sizeof(id) - 1] = '\0';
	return auth_session_find(web.auth, id, now_s());
}

/* An Origin header, when there is one (required: there must be), names this server. */
static bool origin_ok(struct lws *wsi, bool required)
{
	char origin[256], host[200], want[256];

	if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0)
		return !required;
	if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0 ||
	    lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
		return false;
	snprintf(want, sizeof(want), "%s://%s", web.tls ? "https" : "http", host);
	return streq(origin, want);
}

static bool csrf_ok(struct lws *wsi, const struct auth_session *s)
{
	char token[AUTH_ID_LEN + 8];
	int n = lws_hdr_custom_copy(wsi, token, sizeof(token), "x-csrf-token:", 13);

	return n > 0 && auth_equal(token, s->csrf);
}

/* Sets r's answer (a copy of body) and asks to write it. */
static int answer(struct lws *wsi, struct http_req *r, unsigned status, const char *ctype,
		  const char *body)
{
	r->have_answer = true;
	r->status = status;
	r->ctype = ctype;
	r->answer = strdup(body);
	r->answer_len = r->answer ? strlen(r->answer) : 0;
	lws_callback_on_writable(wsi);
	return 0;
}

static int answer_error(struct lws *wsi, struct http_req *r, unsigned status, const char *message)
{
	char *json = NULL;
	struct json_object *o = json_object_new_object();

	if (o && json_object_object_add(o, "message", json_object_new_string(message)) == 0)
		json = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	answer(wsi, r, status, "application/json", json ? json : "{}");
	free(json);
	return 0;
}

static int answer_session(struct lws *wsi, struct http_req *r, const struct auth_session *s)
{
	char json[128];

	snprintf(json, sizeof(json), "{\"csrf\":\"%s\"}", s->csrf);
	return answer(wsi, r, 200, "application/json", json);
}

static const char *mime_of(const char *path)
{
	static const struct {
		const char *ext, *mime;
	} types[] = {
		{".html", "text/html; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".svg", "image/svg+xml"},
		{".png", "image/png"},
		{".ico", "image/x-icon"},
		{".json", "application/json"},
		{".map", "application/json"},
		{".woff2", "font/woff2"},
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < ELEMENTSOF(types); i++)
		if (streq(dot, types[i].ext))
			return types[i].mime;
	return "application/octet-stream";
}

/* A file of the assets directory: only plain names ([A-Za-z0-9._-] and '/', no ".."). */
static int serve_file(struct lws *wsi, struct http_req *r, const char *name)
{
	char path[1024];
	struct stat st;
	int n;

	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("._-/", *p)))
			return answer_error(wsi, r, 404, "not found");
	if (strstr(name, "..") || name[0] == '/' || !name[0])
		return answer_error(wsi, r, 404, "not found");
	snprintf(path, sizeof(path), "%s/%s", web.assets, name);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return answer_error(wsi, r, 404, "not found");
	r->answered = true;
	n = lws_serve_http_file(wsi, path, mime_of(path), NULL, 0);
	if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
		return -1;
	return 0;
}

/* What a client without a session may have: the login page and its script and style. */
static bool public_file(const char *name)
{
	return streq(name, "login.html") || streq(name, "login.js") || streq(name, "login.css");
}

static int write_answer(struct lws *wsi, unsigned status, const char *ctype, const uint8_t *body,
			size_t len, const char *cookie);

#define METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"
/* What /metrics says when mvirt-vmm does not answer (an exporter's way of saying its target is
 * down: the scrape itself succeeds). */
static const char metrics_down[] = "# HELP mvirt_up 1: mvirt-vmm answered (an exporter that "
				   "cannot reach it says 0).\n# TYPE mvirt_up gauge\nmvirt_up 0\n";

/* "Authorization: Bearer <login token>". */
static bool bearer_ok(struct lws *wsi)
{
	char h[160];
	bool ok;

	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) <= 0 ||
	    lws_hdr_copy(wsi, h, sizeof(h), WSI_TOKEN_HTTP_AUTHORIZATION) <= 0 ||
	    strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	ok = auth_login(web.auth, h + 7, now_s());
	explicit_bzero(h, sizeof(h));
	return ok;
}

static int on_metrics(struct lws *wsi, struct http_req *r, const struct auth_session *s)
{
	static const uint8_t empty[1];
	unsigned status;
	char *err = NULL;

	if (!web.metrics)
		return answer_error(wsi, r, 404, "not found: mvirt-web runs without --metrics");
	if (!web.metrics_open && !s) {
		if (auth_throttled(web.auth, now_s()))
			return answer_error(wsi, r, 429, "too many failed logins; wait a minute");
		if (!bearer_ok(wsi))
			return answer_error(wsi, r, 401,
					    "/metrics over TLS needs the login token: "
					    "Authorization: Bearer <token>");
	}
	r->metrics = true;
	if (bridge_start(web.client, web.vh, wsi, false, "mvirt.VmService/GetMetrics", empty, 0,
			 &r->call, &status, &err) < 0) {
		free(err);
		return answer(wsi, r, 200, METRICS_CTYPE, metrics_down);
	}
	return 0;
}

/* The text of a GetMetrics answer, or metrics_down when the daemon did not give one. */
static int write_metrics(struct lws *wsi, unsigned status, const uint8_t *body, size_t len)
{
	Mvirt__GetMetricsResponse *m = NULL;
	int r;

	if (status == 200)
		m = mvirt__get_metrics_response__unpack(NULL, len, body);
	if (!m || !m->text)
		r = write_answer(wsi, 200, METRICS_CTYPE, (const uint8_t *)metrics_down,
				 strlen(metrics_down), "");
	else
		r = write_answer(wsi, 200,
				 !isempty(m->content_type) ? m->content_type
							   : "text/plain; version=0.0.4",
				 (const uint8_t *)m->text, strlen(m->text), "");
	if (m)
		mvirt__get_metrics_response__free_unpacked(m, NULL);
	return r;
}

static int on_get(struct lws *wsi, struct http_req *r)
{
	const struct auth_session *s = session_of(wsi);
	const char *name = r->uri[0] == '/' ? r->uri + 1 : r->uri;

	if (streq(r->uri, "/metrics"))
		return on_metrics(wsi, r, s);
	if (streq(r->uri, "/api/session"))
		return s ? answer_session(wsi, r, s) : answer_error(wsi, r, 401, "not logged in");
	if (startswith(r->uri, "/api/"))
		return answer_error(wsi, r, s ? 405 : 401, s ? "use POST" : "not logged in");
	if (!*name)
		name = s ? "index.html" : "login.html";
	if (!s && !public_file(name))
		return answer_error(wsi, r, 401, "not logged in");
	return serve_file(wsi, r, name);
}

static void set_cookie(struct http_req *r, const char *value, int max_age)
{
	snprintf(r->set_cookie, sizeof(r->set_cookie),
		 COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", value, max_age,
		 web.tls ? "; Secure" : "");
}

static int on_login(struct lws *wsi, struct http_req *r)
{
	const struct auth_session *s;
	char token[128];
	size_t n = r->body_len;

	if (!origin_ok(wsi, false))
		return answer_error(wsi, r, 403, "cross-origin login refused");
	if (auth_throttled(web.auth, now_s()))
		return answer_error(wsi, r, 429, "too many failed logins; wait a minute");
	while (n > 0 && (r->body[n - 1] == '\n' || r->body[n - 1] == '\r'))
		n--;
	if (n == 0 || n >= sizeof(token))
		return answer_error(wsi, r, 401, "wrong token");
	memcpy(token, r->body, n);
	token[n] = '\0';
	if (memchr(token, '\0', n) || !auth_login(web.auth, token, now_s())) {
		explicit_bzero(token, sizeof(token));
		lwsl_user("login refused from %s\n", "a client");
		return answer_error(wsi, r, 401, "wrong token");
	}
	explicit_bzero(token, sizeof(token));
	s = auth_session_new(web.auth, now_s());
	if (!s)
		return answer_error(wsi, r, 500, "out of memory");
	set_cookie(r, s->id, AUTH_SESSION_TTL_S);
	return answer_session(wsi, r, s);
}

/* A POST, with its whole body (once: libwebsockets may report the end of an empty body too). */
static int on_post(struct lws *wsi, struct http_req *r)
{
	const struct auth_session *s;
	unsigned status;
	char *err = NULL;

	if (r->dispatched)
		return 0;
	r->dispatched = true;
	if (r->too_big)
		return answer_error(wsi, r, 413, "request too large");
	if (streq(r->uri, "/api/login"))
		return on_login(wsi, r);
	s = session_of(wsi);
	if (!s)
		return answer_error(wsi, r, 401, "not logged in");
	if (!origin_ok(wsi, false) || !csrf_ok(wsi, s))
		return answer_error(wsi, r, 403,
				    "missing or wrong X-CSRF-Token, or a foreign Origin");
	if (streq(r->uri, "/api/logout")) {
		char id[AUTH_ID_LEN + 1];

		snprintf(id, sizeof(id), "%s", s->id);
		auth_session_end(web.auth, id);
		set_cookie(r, "", 0);
		return answer(wsi, r, 200, "application/json", "{}");
	}
	if (!startswith(r->uri, CALL_PREFIX))
		return answer_error(wsi, r, 404, "not found");
	if (bridge_start(web.client, web.vh, wsi, false, r->uri + strlen(CALL_PREFIX), r->body,
			 r->body_len, &r->call, &status, &err) < 0) {
		answer(wsi, r, status, "application/json", err ? err : "{}");
		free(err);
	}
	return 0;
}

static int write_answer(struct lws *wsi, unsigned status, const char *ctype, const uint8_t *body,
			size_t len, const char *cookie)
{
	uint8_t head[LWS_PRE + 2048], *start = head + LWS_PRE, *p = start,
				      *end = head + sizeof(head) - 1;
	_cleanup_free_ uint8_t *buf = NULL;

	if (lws_add_http_common_headers(wsi, status, ctype, len, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const uint8_t *)"cache-control:",
					(const uint8_t *)"no-store", 8, &p, end) ||
	    (cookie[0] && lws_add_http_header_by_name(
				  wsi, (const uint8_t *)"set-cookie:", (const uint8_t *)cookie,
				  (int)strlen(cookie), &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (len > 0) {
		buf = malloc(LWS_PRE + len);
		if (!buf)
			return -1;
		memcpy(buf + LWS_PRE, body, len);
		if (lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < (int)len)
			return -1;
	}
	return 0;
}

/* The answer is out: r is cleared before the transaction ends, as libwebsockets may free it
 * then (its per-request data). */
static int finish(struct lws *wsi, struct http_req *r, int written)
{
	req_reset(r);
	if (written < 0)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_writeable(struct lws *wsi, struct http_req *r)
{
	const uint8_t *body;
	const char *ctype;
	unsigned status;
	size_t len;

	if (r->have_answer)
		return finish(wsi, r,
			      write_answer(wsi, r->status, r->ctype, (const uint8_t *)r->answer,
					   r->answer_len, r->set_cookie));
	if (r->call && bridge_unary_done(r->call, &status, &ctype, &body, &len))
		return finish(wsi, r,
			      r->metrics ? write_metrics(wsi, status, body, len)
					 : write_answer(wsi, status, ctype, body, len, ""));
	return 0;
}

static int content_length(struct lws *wsi, size_t *ret)
{
	char v[32];

	*ret = 0;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
		return 0;
	if (lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
		return -1;
	*ret = (size_t)strtoull(v, NULL, 10);
	return 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct http_req *r = user;
	size_t length;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		req_reset(r);
		snprintf(r->uri, sizeof(r->uri), "%s", (const char *)in);
		r->post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
		if (!r->post)
			return on_get(wsi, r);
		if (content_length(wsi, &length) < 0)
			return answer_error(wsi, r, 400, "bad Content-Length");
		if (length > BRIDGE_BODY_MAX)
			r->too_big = true;
		if (length == 0)
			return on_post(wsi, r);
		return 0;
	case LWS_CALLBACK_HTTP_BODY:
		if (len == 0) /* libwebsockets may report an empty piece, with in NULL */
			return 0;
		if (r->too_big || r->body_len + len > BRIDGE_BODY_MAX) {
			r->too_big = true;
			return 0;
		}
		if (r->body_len + len > r->body_cap) {
			size_t cap = (r->body_len + len) * 2;
			uint8_t *b = realloc(r->body, cap);

			if (!b)
				return -1;
			r->body = b;
			r->body_cap = cap;
		}
		memcpy(r->body + r->body_len, in, len);
		r->body_len += len;
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return on_post(wsi, r);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return on_writeable(wsi, r);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
		/* A WebSocket needs a session, our Origin and a stream path: else 403/401. */
		char uri[URI_MAX];

		if (!session_of(wsi)) {
			lws_return_http_status(wsi, HTTP_STATUS_UNAUTHORIZED, NULL);
			return 1;
		}
		if (!origin_ok(wsi, true) ||
		    lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
		    !startswith(uri, STREAM_PREFIX)) {
			lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, NULL);
			return 1;
		}
		return 0;
	}
	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	case LWS_CALLBACK_CLOSED_HTTP:
		req_reset(r);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	struct ws_conn *w = user;
	char uri[URI_MAX];
	unsigned status;
	char *err = NULL;
	int r;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* nonzero refuses the upgrade */
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
		    !startswith(uri, STREAM_PREFIX) || !origin_ok(wsi, true) || !session_of(wsi))
			return 1;
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		*w = (struct ws_conn){0};
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
			return -1;
		if (bridge_start(web.client, web.vh, wsi, true, uri + strlen(STREAM_PREFIX), NULL,
				 0, &w->call, &status, &err) < 0) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
					 (unsigned char *)(err ? err : ""),
					 err ? (strlen(err) < 123 ? strlen(err) : 123) : 0);
			free(err);
			return -1;
		}
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (!w->call)
			return -1;
		if (w->rx_len + len > BRIDGE_BODY_MAX)
			return -1;
		if (len > 0) {
			uint8_t *b = realloc(w->rx, w->rx_len + len);

			if (!b)
				return -1;
			w->rx = b;
			memcpy(w->rx + w->rx_len, in, len);
			w->rx_len += len;
		}
		if (!lws_is_final_fragment(wsi))
			return 0;
		if (lws_frame_is_binary(wsi))
			r = bridge_send(w->call, w->rx, w->rx_len);
		else
			r = w->rx_len == 3 && memcmp(w->rx, "end", 3) == 0
				    ? bridge_close_send(w->call)
				    : -EBADMSG;
		free(w->rx);
		w->rx = NULL;
		w->rx_len = 0;
		if (r == -EBADMSG || r == -ENOBUFS) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_INVALID_PAYLOAD, NULL, 0);
			return -1;
		}
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!w->call)
			return -1;
		r = bridge_ws_write(w->call);
		if (r > 0)
			lws_callback_on_writable(wsi);
		if (r < 0) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		return 0;
	case LWS_CALLBACK_CLOSED:
		bridge_detach(w->call);
		w->call = NULL;
		free(w->rx);
		w->rx = NULL;
		return 0;
	default:
		return 0;
	}
}

static int signal_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	struct signalfd_siginfo si;

	(void)user;
	(void)in;
	(void)len;
	if (reason == LWS_CALLBACK_RAW_RX_FILE) {
		if (read(lws_get_socket_fd(wsi), &si, sizeof(si)) == sizeof(si)) {
			lwsl_user("received %s, stopping\n", strsignal((int)si.ssi_signo));
			web.stop = true;
		}
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{"http", http_callback, sizeof(struct http_req), 0, 0, NULL, 0},
	{WS_PROTOCOL, ws_callback, sizeof(struct ws_conn), 64 * 1024, 0, NULL, 0},
	{BRIDGE_PROTOCOL, bridge_callback, 0, 0, 0, NULL, 0},
	{"mvirt-signal", signal_callback, 0, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

struct options {
	const char *listen, *daemon, *state_dir, *assets, *tls_cert, *tls_key;
	bool reset_token, tls, metrics;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: mvirt-web [OPTIONS]\n"
		"The web UI of mvirt: serves it over HTTP(S) and talks to mvirt-vmm's API.\n\n"
		"  --listen ADDR:PORT   where to listen (default 127.0.0.1:8080); an address\n"
		"                       other than loopback implies --tls\n"
		"  --daemon TARGET      mvirt-vmm's API (default unix:/run/mvirt/mvirt.sock)\n"
		"  --state-dir DIR      where the login token's hash is kept (default\n"
		"                       /var/lib/mvirt-web); a new token is made and shown once\n"
		"                       when there is none\n"
		"  --reset-token        make and show a new token (logs every session out)\n"
		"  --assets DIR         the built web UI (default " MVIRT_WEB_ASSETS ")\n"
		"  --tls                serve HTTPS, with --tls-cert/--tls-key or else the\n"
		"                       certificate in DIR/tls (cert.pem, key.pem), a\n"
		"                       self-signed one made at first start; its SHA-256\n"
		"                       fingerprint is printed at start\n"
		"  --tls-cert FILE      PEM certificate (chain) for HTTPS (implies --tls)\n"
		"  --tls-key FILE       its PEM private key, unencrypted\n"
		"  --metrics            serve mvirt-vmm's metrics for Prometheus at GET\n"
		"                       /metrics: open on plain-HTTP loopback, else with\n"
		"                       Authorization: Bearer <login token>\n"
		"  -h, --help, --version\n");
}

static bool loopback(const char *addr)
{
	return streq(addr, "127.0.0.1") || startswith(addr, "127.") || streq(addr, "::1") ||
	       streq(addr, "localhost");
}

static int parse(int argc, char **argv, struct options *o)
{
	enum {
		O_LISTEN = 256,
		O_DAEMON,
		O_STATE,
		O_ASSETS,
		O_TLS,
		O_CERT,
		O_KEY,
		O_RESET,
		O_METRICS,
		O_VERSION
	};
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, O_LISTEN},
		{"daemon", required_argument, NULL, O_DAEMON},
		{"state-dir", required_argument, NULL, O_STATE},
		{"assets", required_argument, NULL, O_ASSETS},
		{"tls", no_argument, NULL, O_TLS},
		{"tls-cert", required_argument, NULL, O_CERT},
		{"tls-key", required_argument, NULL, O_KEY},
		{"reset-token", no_argument, NULL, O_RESET},
		{"metrics", no_argument, NULL, O_METRICS},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, O_VERSION},
		{0},
	};
	int c;

	*o = (struct options){"127.0.0.1:8080",
			      "unix:/run/mvirt/mvirt.sock",
			      "/var/lib/mvirt-web",
			      MVIRT_WEB_ASSETS,
			      NULL,
			      NULL,
			      false,
			      false,
			      false};
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN:
			o->listen = optarg;
			break;
		case O_DAEMON:
			o->daemon = optarg;
			break;
		case O_STATE:
			o->state_dir = optarg;
			break;
		case O_ASSETS:
			o->assets = optarg;
			break;
		case O_TLS:
			o->tls = true;
			break;
		case O_CERT:
			o->tls_cert = optarg;
			o->tls = true;
			break;
		case O_KEY:
			o->tls_key = optarg;
			o->tls = true;
			break;
		case O_RESET:
			o->reset_token = true;
			break;
		case O_METRICS:
			o->metrics = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case O_VERSION:
			printf("mvirt-web %s\n", MVIRT_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mvirt-web: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->tls_cert != !o->tls_key) {
		fprintf(stderr, "mvirt-web: --tls-cert and --tls-key go together\n");
		return -EINVAL;
	}
	return 0;
}

/* "ADDR:PORT" or "[ADDR]:PORT" into addr and port. */
static int split_listen(const char *s, char *addr, size_t size, int *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long p;

	if (!colon || colon == s)
		return -EINVAL;
	p = strtol(colon + 1, &end, 10);
	if (*end || p < 1 || p > 65535)
		return -EINVAL;
	if (s[0] == '[' && colon[-1] == ']')
		snprintf(addr, size, "%.*s", (int)(colon - s - 2), s + 1);
	else
		snprintf(addr, size, "%.*s", (int)(colon - s), s);
	*port = (int)p;
	return 0;
}

/* ADDR must be an IP address ("localhost" becomes 127.0.0.1): libwebsockets takes a name
 * for a network interface and waits for it to appear. Binding it once here turns a port in
 * use or an address of another host into a message, where libwebsockets would print
 * "serving" and retry quietly. 0, or the exit status. */
static int check_listen(char *addr, size_t size, int port, const char *listen)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
	socklen_t len;
	int fd, e, one = 1;

	memset(&u, 0, sizeof(u));
	if (streq(addr, "localhost"))
		snprintf(addr, size, "127.0.0.1");
	if (inet_pton(AF_INET, addr, &u.in.sin_addr) == 1) {
		u.in.sin_family = AF_INET;
		u.in.sin_port = htons((uint16_t)port);
		len = sizeof(u.in);
	} else if (inet_pton(AF_INET6, addr, &u.in6.sin6_addr) == 1) {
		u.in6.sin6_family = AF_INET6;
		u.in6.sin6_port = htons((uint16_t)port);
		len = sizeof(u.in6);
	} else {
		fprintf(stderr,
			"mvirt-web: --listen %s: '%s' is not an IP address (e.g. 127.0.0.1:8080, "
			"[::1]:8080, 0.0.0.0:8443)\n",
			listen, addr);
		return 2;
	}
	fd = socket(u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "mvirt-web: --listen %s: cannot make a socket: %m\n", listen);
		return 1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* as lws does */
	e = bind(fd, &u.sa, len) < 0 ? errno : 0;
	close(fd);
	if (!e)
		return 0;
	fprintf(stderr, "mvirt-web: --listen %s: cannot listen there: %s%s\n", listen, strerror(e),
		e == EADDRINUSE      ? " (another program listens on it)"
		: e == EADDRNOTAVAIL ? " (not an address of this host)"
				     : "");
	return 1;
}

/* SIGTERM and SIGINT blocked in every thread (before any is made) and read from a signalfd
 * in the loop. */
static void block_signals(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, mask, NULL);
}

static int adopt_signals(const sigset_t *mask)
{
	lws_sock_file_fd_type u;
	int fd;

	fd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	u.filefd = fd;
	return lws_adopt_descriptor_vhost(web.vh, LWS_ADOPT_RAW_FILE_DESC, u, "mvirt-signal", NULL)
		       ? 0
		       : -EIO;
}

/* The certificate and key to serve (the user's, or those of state_dir/tls, generated when
 * there are none), checked, with the certificate's fingerprint and whether it was just made.
 * Prints what fails; returns main's exit code (0 when all is well). */
static int tls_setup(const struct options *o, const char *addr, char **ret_cert, char **ret_key,
		     char fingerprint[TLS_FINGERPRINT_LEN + 1], bool *ret_generated)
{
	_cleanup_free_ char *cert = NULL, *key = NULL;
	struct mv_error err = {0};
	bool generated = false;

	if (o->tls_cert) {
		cert = strdup(o->tls_cert);
		key = strdup(o->tls_key);
		if (!cert || !key) {
			fprintf(stderr, "mvirt-web: out of memory\n");
			return 1;
		}
	} else if (tls_ensure(o->state_dir, addr, &cert, &key, &generated, &err) < 0) {
		fprintf(stderr, "mvirt-web: %s\n", err.msg);
		return 1;
	}
	if (tls_check(cert, key, fingerprint, &err) < 0) {
		fprintf(stderr, "mvirt-web: %s%s\n", o->tls_cert ? "--tls-cert/--tls-key: " : "",
			err.msg);
		return o->tls_cert ? 2 : 1;
	}
	*ret_generated = generated;
	*ret_cert = TAKE_PTR(cert);
	*ret_key = TAKE_PTR(key);
	return 0;
}

int main(int argc, char **argv)
{
	struct lws_context_creation_info info = {0};
	struct options o;
	sigset_t mask;
	struct mv_error err = {0};
	char addr[128], token_path[1024];
	_cleanup_free_ char *cert = NULL, *key = NULL;
	char *token = NULL, fingerprint[TLS_FINGERPRINT_LEN + 1];
	bool generated = false;
	int port, r;

	signal(SIGPIPE, SIG_IGN);
	block_signals(&mask);
	if (parse(argc, argv, &o) < 0)
		return 2;
	if (split_listen(o.listen, addr, sizeof(addr), &port) < 0) {
		fprintf(stderr,
			"mvirt-web: --listen %s: expected ADDR:PORT (e.g. 127.0.0.1:8080)\n",
			o.listen);
		return 2;
	}
	if ((r = check_listen(addr, sizeof(addr), port, o.listen)) != 0)
		return r;
	if (!loopback(addr))
		o.tls = true; /* remote access: never in the clear */
	if (mkdir(o.state_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "mvirt-web: cannot create %s: %m\n", o.state_dir);
		return 1;
	}
	if (o.tls && (r = tls_setup(&o, addr, &cert, &key, fingerprint, &generated)) != 0)
		return r;
	snprintf(token_path, sizeof(token_path), "%s/token.hash", o.state_dir);
	if (auth_open(token_path, o.reset_token, &token, &web.auth, &err) < 0) {
		fprintf(stderr, "mvirt-web: %s\n", err.msg);
		return 1;
	}
	if (bridge_init() < 0 || client_new(o.daemon, &web.client) < 0) {
		fprintf(stderr, "mvirt-web: out of memory\n");
		return 1;
	}
	web.assets = o.assets;
	web.tls = o.tls;
	web.metrics = o.metrics;
	web.metrics_open = o.metrics && !o.tls && loopback(addr);

	lws_set_log_level(LLL_ERR | LLL_WARN | LLL_USER, NULL);
	info.port = port;
	info.iface = addr;
	info.protocols = protocols;
	info.vhost_name = "mvirt-web";
	info.options = LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE |
		       LWS_SERVER_OPTION_VALIDATE_UTF8;
	if (web.tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cert;
		info.ssl_private_key_filepath = key;
	}
	web.ctx = lws_create_context(&info);
	if (!web.ctx) {
		fprintf(stderr, "mvirt-web: cannot listen on %s (in use, or a bad certificate?)\n",
			o.listen);
		return 1;
	}
	web.vh = lws_get_vhost_by_name(web.ctx, "mvirt-web");
	if (!web.vh || (r = adopt_signals(&mask)) < 0) {
		fprintf(stderr, "mvirt-web: cannot set up the event loop\n");
		return 1;
	}
	if (token) {
		printf("mvirt-web: login token: %s\n(shown once; only its hash is kept, in %s; "
		       "--reset-token makes a new one)\n",
		       token, token_path);
		explicit_bzero(token, strlen(token));
		free(token);
	}
	if (web.tls && generated)
		printf("mvirt-web: TLS certificate %s generated, self-signed (SHA-256 fingerprint "
		       "%s): browsers warn about it; accept it only if they show this fingerprint\n",
		       cert, fingerprint);
	else if (web.tls)
		printf("mvirt-web: TLS certificate %s (SHA-256 fingerprint %s)\n", cert,
		       fingerprint);
	if (web.metrics)
		printf("mvirt-web: metrics at %s://%s/metrics%s\n", web.tls ? "https" : "http",
		       o.listen, web.metrics_open ? "" : " (Authorization: Bearer <login token>)");
	printf("mvirt-web: serving %s://%s/ (mvirt-vmm at %s)\n", web.tls ? "https" : "http",
	       o.listen, o.daemon);
	fflush(stdout);
	(void)sd_notify(0, "READY=1");
	while (!web.stop && lws_service(web.ctx, 0) >= 0)
		;
	(void)sd_notify(0, "STOPPING=1");
	lws_context_destroy(web.ctx);
	client_free(web.client);
	auth_free(web.auth);
	return 0;
}
