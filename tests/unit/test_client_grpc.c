/* Unit tests for the client's gRPC wire format (src/cli/client_grpc.c): response bodies split
 * into messages however the bytes arrive, the refusals (compressed, too big), and the status
 * headers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_grpc.h"

/* A message framed: flag, 4-byte length, payload. */
static size_t frame(uint8_t *out, uint8_t flag, const char *payload)
{
	size_t n = strlen(payload);

	out[0] = flag;
	out[1] = (uint8_t)(n >> 24);
	out[2] = (uint8_t)(n >> 16);
	out[3] = (uint8_t)(n >> 8);
	out[4] = (uint8_t)n;
	memcpy(out + 5, payload, n);
	return 5 + n;
}

static void expect_message(struct grpc_frames *f, const char *payload)
{
	struct grpc_message m;

	assert_int_equal(grpc_frames_next(f, &m), 1);
	assert_int_equal(m.len, strlen(payload));
	assert_memory_equal(m.data, payload, m.len);
}

static void test_messages_in_any_pieces(void **state)
{
	uint8_t body[256];
	size_t n = 0;

	(void)state;
	n += frame(body + n, 0, "first");
	n += frame(body + n, 0, "");
	n += frame(body + n, 0, "the third message");
	for (size_t piece = 1; piece <= n; piece++) {
		struct grpc_frames f = {0};
		struct grpc_message m;
		int got = 0;

		for (size_t off = 0; off < n; off += piece) {
			size_t len = off + piece > n ? n - off : piece;

			assert_int_equal(grpc_frames_add(&f, body + off, len), 0);
			/* a message is handed out as soon as its last byte is there */
			while (grpc_frames_ready(&f)) {
				assert_int_equal(grpc_frames_next(&f, &m), 1);
				assert_memory_equal(m.data,
						    got == 0   ? "first"
						    : got == 1 ? ""
							       : "the third message",
						    m.len);
				got++;
			}
		}
		assert_int_equal(got, 3);
		assert_int_equal(grpc_frames_next(&f, &m), 0);
		grpc_frames_free(&f);
	}
}

static void test_incomplete_message_is_not_handed_out(void **state)
{
	struct grpc_frames f = {0};
	struct grpc_message m;
	uint8_t body[64];
	size_t n = frame(body, 0, "payload");

	(void)state;
	assert_int_equal(grpc_frames_add(&f, body, n - 1), 0);
	assert_false(grpc_frames_ready(&f));
	assert_int_equal(grpc_frames_next(&f, &m), 0);
	assert_int_equal(grpc_frames_add(&f, body + n - 1, 1), 0);
	expect_message(&f, "payload");
	grpc_frames_free(&f);
}

static void test_compressed_and_oversized_are_refused(void **state)
{
	struct grpc_frames f = {0}, g = {.max = 4};
	uint8_t body[64];
	size_t n;

	(void)state;
	n = frame(body, 1, "zz");
	assert_int_equal(grpc_frames_add(&f, body, n), -EPROTO);
	assert_int_equal(f.error_code, GRPC_STATUS_INTERNAL);
	assert_non_null(strstr(f.error, "compressed"));
	assert_int_equal(grpc_frames_add(&f, body, n), -EPROTO); /* nothing after an error */
	grpc_frames_free(&f);

	n = frame(body, 0, "1234");
	n += frame(body + n, 0, "12345");
	/* the refusal comes with the prefix, before the payload is there */
	assert_int_equal(grpc_frames_add(&g, body, 9 + 5), -EMSGSIZE);
	assert_int_equal(g.error_code, GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(g.error, "5 bytes"));
	expect_message(&g, "1234"); /* what came whole before it is still there */
	grpc_frames_free(&g);
}

static void test_status_headers(void **state)
{
	char *s;

	(void)state;
	assert_int_equal(grpc_parse_status("0", 1), GRPC_STATUS_OK);
	assert_int_equal(grpc_parse_status("16", 2), GRPC_STATUS_UNAUTHENTICATED);
	assert_int_equal(grpc_parse_status("5x", 1), GRPC_STATUS_NOT_FOUND);
	assert_int_equal(grpc_parse_status("17", 2), GRPC_STATUS_UNKNOWN);
	assert_int_equal(grpc_parse_status("", 0), GRPC_STATUS_UNKNOWN);
	assert_int_equal(grpc_parse_status("-1", 2), GRPC_STATUS_UNKNOWN);
	assert_int_equal(grpc_parse_status("003", 3), GRPC_STATUS_UNKNOWN);

	s = grpc_percent_decode("vm 'a%20b': 100%25 %zz%4", 24);
	assert_string_equal(s, "vm 'a b': 100% %zz%4");
	free(s);
	s = grpc_percent_decode("caf%C3%A9%", 10);
	assert_string_equal(s, "caf\xc3\xa9%");
	free(s);

	assert_true(grpc_is_content_type("application/grpc", 16));
	assert_true(grpc_is_content_type("application/grpc+proto", 22));
	assert_true(grpc_is_content_type("application/grpc; charset=x", 27));
	assert_false(grpc_is_content_type("application/grpcx", 17));
	assert_false(grpc_is_content_type("text/html", 9));

	assert_int_equal(grpc_status_from_http(503), GRPC_STATUS_UNAVAILABLE);
	assert_int_equal(grpc_status_from_http(404), GRPC_STATUS_UNIMPLEMENTED);
	assert_int_equal(grpc_status_from_http(418), GRPC_STATUS_UNKNOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_messages_in_any_pieces),
		cmocka_unit_test(test_incomplete_message_is_not_handed_out),
		cmocka_unit_test(test_compressed_and_oversized_are_refused),
		cmocka_unit_test(test_status_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
