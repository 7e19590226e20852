/* Fuzzes the client's gRPC wire format (src/cli/client_grpc.c) as a broken or hostile server
 * could send it: a response body split into messages, fed in pieces, and the status headers.
 * Input: a byte that picks the largest message accepted (0..255 bytes), a byte that picks the
 * size of the pieces (1..256), then the body; the same bytes are also read as grpc-status,
 * grpc-message and content-type values.
 * Invariants:
 * - fed in pieces, the body gives the same messages and the same error as fed at once; every
 *   message lies inside what was fed, is at most the largest accepted, and they follow each
 *   other without a gap;
 * - after an error nothing more is accepted;
 * - grpc-status is a code 0..16; the decoded grpc-message is not longer than its value and has
 *   no byte the value did not have unless it came from a %XX escape. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_grpc.h"
#include "fuzz.h"

struct result {
	size_t n, total;
	int error;
	uint8_t digest[64]; /* the first bytes of every message, one each */
};

static struct result feed(const uint8_t *body, size_t len, size_t piece, size_t max)
{
	struct grpc_frames f = {.max = max ? max : 1};
	struct result res = {0};
	struct grpc_message m;

	for (size_t off = 0; off < len || off == 0; off += piece) {
		size_t n = off + piece > len ? len - off : piece;
		int r = grpc_frames_add(&f, body + off, n);

		FUZZ_ASSERT(r == 0 || r == -EPROTO || r == -EMSGSIZE);
		if (r < 0) {
			FUZZ_ASSERT(f.error_code != 0 && f.error[0]);
			FUZZ_ASSERT(grpc_frames_add(&f, body, 1) == -EPROTO);
			res.error = f.error_code;
		}
		while (grpc_frames_next(&f, &m) == 1) {
			FUZZ_ASSERT(m.len <= (max ? max : 1));
			FUZZ_ASSERT(m.data >= f.buf && m.data + m.len <= f.buf + f.len);
			FUZZ_ASSERT(res.total + 5 + m.len <= len);
			FUZZ_ASSERT(memcmp(m.data, body + res.total + 5, m.len) == 0);
			if (res.n < sizeof(res.digest))
				res.digest[res.n] = m.len ? m.data[0] : 0;
			res.total += 5 + m.len;
			res.n++;
		}
		if (r < 0 || len == 0)
			break;
	}
	grpc_frames_free(&f);
	return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result whole, pieces;
	size_t max, piece;
	char *s;

	if (size < 2)
		return 0;
	max = data[0];
	piece = (size_t)data[1] + 1;
	data += 2;
	size -= 2;
	whole = feed(data, size, size ? size : 1, max);
	pieces = feed(data, size, piece, max);
	FUZZ_ASSERT(whole.n == pieces.n && whole.total == pieces.total);
	FUZZ_ASSERT(whole.error == pieces.error);
	FUZZ_ASSERT(memcmp(whole.digest, pieces.digest, sizeof(whole.digest)) == 0);

	FUZZ_ASSERT((unsigned)grpc_parse_status((const char *)data, size) <= 16);
	s = grpc_percent_decode((const char *)data, size);
	FUZZ_ASSERT(s);
	FUZZ_ASSERT(strlen(s) <= size);
	if (!memchr(data, '%', size))
		FUZZ_ASSERT(memcmp(s, data, strlen(s)) == 0);
	free(s);
	(void)grpc_is_content_type((const char *)data, size);
	return 0;
}
