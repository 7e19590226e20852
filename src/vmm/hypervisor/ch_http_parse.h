/* The parsers of cloud-hypervisor's HTTP answers, apart from the code that moves the bytes, so
 * that the daemon and the fuzz target (tests/fuzz/fuzz_ch_http.c) run the same code: the
 * HTTP/1.1 response framing of ch_http_fds.c (every REST call of the daemon) and the error
 * message ch_client.c builds from a non-2xx body. Internal to the hypervisor component: only
 * ch_http_fds.c, ch_client.c and tests include this header. Pure and silent. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* At most this many bytes of status line and header fields, blank line included. */
#define CH_HTTP_HEADERS_MAX 16384

/* Parses the answer buf[0..len): the bytes read so far (need not be NUL-terminated; may hold
 * any byte); eof: the peer closed after them. The status line must be "HTTP/1.0" or
 * "HTTP/1.1", a space and three digits (then a space or the line's end); 1xx (never asked
 * for) is refused. The body is Content-Length bytes, none for 204 and 304, else everything up
 * to EOF. Returns
 *   1: complete: *status (200..999) and the body, buf[*body_off, *body_off + *body_len), at
 *      most max_body bytes; bytes after it are ignored;
 *   0: incomplete, read more (never when eof);
 *   -EBADMSG: not an answer we can read: a bad status line, a bad or conflicting
 *      Content-Length, a Transfer-Encoding, a NUL before the body, header fields over
 *      CH_HTTP_HEADERS_MAX, or EOF before the end;
 *   -EFBIG: a body over max_body.
 * Monotonic, so that the answer may arrive split anywhere: once a prefix of the bytes gives a
 * result other than 0, every longer one gives the same. It decides by
 * CH_HTTP_HEADERS_MAX + max_body + 1 bytes at the latest. */
int ch_http_parse_answer(const char *buf, size_t len, bool eof, size_t max_body, long *status,
			 size_t *body_off, size_t *body_len);

/* The message for an answer with a non-2xx status whose body is body[0..len) (need not be
 * NUL-terminated): cloud-hypervisor's JSON error array of strings (outermost first) joined
 * with ": ", else the body without leading and trailing white space, else "HTTP <status>".
 * Valid UTF-8 without NUL (either becomes '?', byte for byte), never empty; NULL only on
 * ENOMEM. Free it. */
char *ch_reply_message(const char *body, size_t len, long status);
