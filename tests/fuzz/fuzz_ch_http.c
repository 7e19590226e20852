/* Fuzzes the parsers of cloud-hypervisor's HTTP answers (hypervisor/ch_http_parse.c) as a
 * broken or hostile hypervisor could send them: the response framing ch_http_fds.c reads
 * (status line, Content-Length, body, EOF) and the error message ch_client.c makes of a
 * non-2xx body. Input: a byte of flags (bit 0: the peer closes after the bytes; bits 1-7: the
 * body cap), a byte that picks the size of the reads (1..256, but at most 512 reads), then
 * the answer.
 * Invariants:
 * - the parser returns 1, 0 (never at EOF), -EBADMSG or -EFBIG; a complete answer has a
 *   status in 200..999 and a body inside the bytes, within the cap, empty for 204 and 304;
 * - fed in reads of the picked size, as ch_http_fds.c feeds it (stopping at the first result),
 *   it gives what it gives fed at once; it decides by CH_HTTP_HEADERS_MAX + cap + 1 bytes;
 * - the message made of the body (and of the raw bytes, to reach the JSON error array without
 *   the framing) is not NULL nor empty, is valid UTF-8 without NUL, is not longer than its
 *   input (or is "HTTP <status>"), and is the body trimmed, byte for byte or '?', when the body
 *   cannot be a JSON array (json-c allows comments before it).
 * Every buffer is allocated at its exact size, so ASan sees a read past it.
 * fuzz-dict: http.dict */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "fuzz.h"
#include "hypervisor/ch_http_parse.h"

struct answer {
	int r;
	long status;
	size_t off, len;
};

static struct answer parse(const char *buf, size_t len, bool eof, size_t max_body)
{
	struct answer a = {.status = -1, .off = SIZE_MAX, .len = SIZE_MAX};
	char *copy = malloc(len ? len : 1);

	FUZZ_ASSERT(copy);
	memcpy(copy, buf, len);
	a.r = ch_http_parse_answer(copy, len, eof, max_body, &a.status, &a.off, &a.len);
	free(copy);
	FUZZ_ASSERT(a.r == 1 || a.r == 0 || a.r == -EBADMSG || a.r == -EFBIG);
	FUZZ_ASSERT(!(eof && a.r == 0));
	if (a.r == 1) {
		FUZZ_ASSERT(a.status >= 200 && a.status <= 999);
		FUZZ_ASSERT(a.off <= len && a.len <= len - a.off && a.len <= max_body);
		FUZZ_ASSERT(a.off <= CH_HTTP_HEADERS_MAX);
		if (a.status == 204 || a.status == 304)
			FUZZ_ASSERT(a.len == 0);
	}
	return a;
}

static bool same(struct answer a, struct answer b)
{
	if (a.r != b.r)
		return false;
	return a.r != 1 || (a.status == b.status && a.off == b.off && a.len == b.len);
}

static void check_message(const char *data, size_t len, long status)
{
	char *body = malloc(len ? len : 1), *msg, http[32];
	const char *start, *end;
	size_t n;

	FUZZ_ASSERT(body);
	memcpy(body, data, len);
	msg = ch_reply_message(body, len, status);
	FUZZ_ASSERT(msg);
	n = strlen(msg);
	FUZZ_ASSERT(n > 0);
	FUZZ_ASSERT(utf8_valid(msg, n, NULL));
	snprintf(http, sizeof(http), "HTTP %ld", status);
	FUZZ_ASSERT(n <= len || strcmp(msg, http) == 0);

	start = body;
	end = body + len;
	while (start < end && isspace((unsigned char)*start))
		start++;
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	if (start == end) {
		FUZZ_ASSERT(strcmp(msg, http) == 0);
	} else if (*start != '[' && *start != '/') { /* json-c skips comments before the array */
		FUZZ_ASSERT(n == (size_t)(end - start));
		for (size_t i = 0; i < n; i++)
			FUZZ_ASSERT(msg[i] == start[i] || msg[i] == '?');
	}
	free(msg);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct answer whole, fed = {0};
	const char *buf = (const char *)data + 2;
	size_t len, chunk, max_body, k = 0;
	bool eof;

	if (size < 2)
		return 0;
	eof = data[0] & 1;
	max_body = data[0] & 0x80 ? 1024 * 1024 : (size_t)((data[0] >> 1) & 0x3f) * 64;
	chunk = (size_t)data[1] + 1;
	len = size - 2;
	if (chunk < len / 512 + 1)
		chunk = len / 512 + 1; /* each read parses a fresh copy of all so far */

	whole = parse(buf, len, eof, max_body);
	/* the reads as they come, then EOF (recv returning 0) when the peer closed */
	while (k < len) {
		k = len - k < chunk ? len : k + chunk;
		fed = parse(buf, k, false, max_body);
		if (fed.r != 0)
			break;
	}
	if (fed.r == 0 && eof)
		fed = parse(buf, len, true, max_body);
	FUZZ_ASSERT(same(whole, fed));
	if (len >= CH_HTTP_HEADERS_MAX + max_body + 1)
		FUZZ_ASSERT(parse(buf, CH_HTTP_HEADERS_MAX + max_body + 1, false, max_body).r != 0);

	if (whole.r == 1)
		check_message(buf + whole.off, whole.len, whole.status);
	check_message(buf, len, 500);
	return 0;
}
