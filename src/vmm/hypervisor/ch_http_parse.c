/* See ch_http_parse.h. The bytes are read with their length (memmem, memchr), never as a C
 * string: the answer need not be terminated and may hold NULs, which a string function would
 * take for its end. */
#include "hypervisor/ch_http_parse.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/utf8.h"

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* "HTTP/1.0" or "HTTP/1.1", a space, three digits, then a space or the end: line[0..n), its
 * CRLF excluded. 1xx is an interim or upgrade answer, which we never ask for. */
static int parse_status_line(const char *line, size_t n, long *ret)
{
	long status = 0;

	if (n < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
	    line[8] != ' ' || (n > 12 && line[12] != ' '))
		return -EBADMSG;
	for (size_t i = 9; i < 12; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -EBADMSG;
		status = status * 10 + (line[i] - '0');
	}
	if (status < 200)
		return -EBADMSG;
	*ret = status;
	return 0;
}

/* Whether line[0..n) is the field name (any case), then ':'; *value: the rest of the line. */
static bool field_is(const char *line, size_t n, const char *name, const char **value,
		     size_t *value_len)
{
	size_t k = strlen(name);

	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return false;
	*value = line + k + 1;
	*value_len = n - k - 1;
	return true;
}

/* Digits between optional spaces and tabs; SIZE_MAX for a number that does not fit. */
static int parse_length(const char *v, size_t n, size_t *ret)
{
	size_t i = 0, x = 0;

	while (n > 0 && is_ows(v[n - 1]))
		n--;
	while (i < n && is_ows(v[i]))
		i++;
	if (i == n)
		return -EBADMSG;
	for (; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EBADMSG;
		x = x > (SIZE_MAX - 9) / 10 ? SIZE_MAX : x * 10 + (size_t)(v[i] - '0');
	}
	*ret = x;
	return 0;
}

int ch_http_parse_answer(const char *buf, size_t len, bool eof, size_t max_body, long *ret_status,
			 size_t *body_off, size_t *body_len)
{
	const char *end, *p, *stop;
	size_t head, avail, length = 0;
	bool have_length = false;
	long status = 0;
	int r;

	if (!buf || len == 0) /* nothing yet (a NULL buffer holds nothing) */
		return eof ? -EBADMSG : 0;
	end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end) {
		/* What is wrong already stays wrong whatever follows (monotonic): a NUL here or
		 * too many bytes would be inside the header block, which "\r\n\r\n" ends. */
		if (memcmp(buf, "HTTP/1.", len < 7 ? len : 7) != 0 || memchr(buf, '\0', len) ||
		    len >= CH_HTTP_HEADERS_MAX || eof)
			return -EBADMSG;
		return 0;
	}
	head = (size_t)(end - buf) + 4;
	if (head > CH_HTTP_HEADERS_MAX || memchr(buf, '\0', head))
		return -EBADMSG;

	/* One line per CRLF up to the blank line: the status line, then the fields. Only the
	 * CRLF ends a line (a bare LF is part of it), as the answer was framed by "\r\n\r\n". */
	stop = end + 2;
	for (p = buf; p < stop;) {
		const char *eol = memmem(p, (size_t)(stop - p), "\r\n", 2), *v;
		size_t n, vn, l;

		if (!eol) /* cannot happen: stop is the CRLF ending the last line */
			return -EBADMSG;
		n = (size_t)(eol - p);
		if (p == buf) {
			if ((r = parse_status_line(p, n, &status)) < 0)
				return r;
		} else if (field_is(p, n, "Content-Length", &v, &vn)) {
			if ((r = parse_length(v, vn, &l)) < 0)
				return r;
			if (have_length && l != length)
				return -EBADMSG; /* which one frames the body? */
			length = l;
			have_length = true;
		} else if (field_is(p, n, "Transfer-Encoding", &v, &vn)) {
			return -EBADMSG; /* chunked framing: cloud-hypervisor never sends it */
		}
		p = eol + 2;
	}

	avail = len - head;
	if (status == 204 || status == 304) {
		length = 0; /* no body, whatever the fields say (RFC 9112 6.3) */
	} else if (have_length) {
		if (length > max_body || length == SIZE_MAX)
			return -EFBIG;
		if (avail < length)
			return eof ? -EBADMSG : 0;
	} else {
		if (avail > max_body)
			return -EFBIG;
		if (!eof)
			return 0; /* the body ends at EOF */
		length = avail;
	}
	*ret_status = status;
	*body_off = head;
	*body_len = length;
	return 1;
}

/* The text made valid: every NUL, and every byte that does not begin valid UTF-8, becomes '?'. */
static char *text_sanitize(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0')
			s[i] = '?';
	s[n] = '\0';
	return utf8_sanitize(s);
}

/* cloud-hypervisor's error body, a JSON array of strings (outermost first), joined with ": ";
 * NULL if body is not such an array. */
static char *message_from_json(const char *body, size_t len)
{
	json_tokener *tok;
	json_object *j;
	char *msg = NULL, *p;
	size_t n, total = 0;

	if (len > INT_MAX)
		return NULL;
	tok = json_tokener_new();
	if (!tok)
		return NULL;
	j = json_tokener_parse_ex(tok, body, (int)len);
	if (!j || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(j, json_type_array) || json_object_array_length(j) == 0)
		goto out;
	n = json_object_array_length(j);
	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(j, i);

		if (!json_object_is_type(s, json_type_string))
			goto out;
		total += (size_t)json_object_get_string_len(s) + 2;
	}
	msg = malloc(total + 1);
	if (!msg)
		goto out;
	p = msg;
	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(j, i);
		size_t l = (size_t)json_object_get_string_len(s);

		if (i > 0) {
			memcpy(p, ": ", 2);
			p += 2;
		}
		memcpy(p, json_object_get_string(s), l);
		p += l;
	}
	if (p == msg) { /* [""]: no words, the body says more */
		free(msg);
		msg = NULL;
		goto out;
	}
	/* a string may hold "\u0000": the message must not end there */
	text_sanitize(msg, (size_t)(p - msg));
out:
	json_object_put(j);
	json_tokener_free(tok);
	return msg;
}

char *ch_reply_message(const char *body, size_t len, long status)
{
	const char *start = body, *end = body + len;
	char *msg = NULL;

	/* the hypervisor's words reach clients and the store: valid UTF-8, whatever it sent */
	if (len > 0 && (msg = message_from_json(body, len)))
		return msg;
	while (start < end && isspace((unsigned char)*start))
		start++;
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	if (end > start) {
		if (!(msg = malloc((size_t)(end - start) + 1)))
			return NULL;
		memcpy(msg, start, (size_t)(end - start));
		return text_sanitize(msg, (size_t)(end - start));
	}
	if (asprintf(&msg, "HTTP %ld", status) < 0)
		return NULL;
	return msg;
}
