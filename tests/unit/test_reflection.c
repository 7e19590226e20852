/* Unit tests of server reflection: the index over the embedded descriptor set, every request
 * kind through reflection_answer() and the wire, synthetic sets for nesting, dependency order
 * and malformed input, and the stream handler of reflection.c against a fake api_call_*(). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/reflection.h"
#include "api/reflection_internal.h"
#include "common/macro.h"
#include "google/protobuf/descriptor.pb-c.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest Request;
typedef Grpc__Reflection__V1__ServerReflectionResponse Response;

#define CASE(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x
#define RCASE(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x

/* Packs the answer to req and parses it back, as a client would. */
static Response *ask(const Request *req)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	Response *resp;

	assert_int_equal(reflection_answer(req, &buf, &len), 0);
	resp = grpc__reflection__v1__server_reflection_response__unpack(NULL, len, buf);
	free(buf);
	assert_non_null(resp);
	return resp;
}

static Response *ask_symbol(const char *symbol)
{
	Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;

	req.message_request_case = CASE(FILE_CONTAINING_SYMBOL);
	req.file_containing_symbol = (char *)symbol;
	return ask(&req);
}

static Response *ask_file(const char *name)
{
	Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;

	req.message_request_case = CASE(FILE_BY_FILENAME);
	req.file_by_filename = (char *)name;
	return ask(&req);
}

static Google__Protobuf__FileDescriptorProto *blob_file(const Response *resp, size_t i)
{
	const ProtobufCBinaryData *b;
	Google__Protobuf__FileDescriptorProto *f;

	assert_int_equal(resp->message_response_case, RCASE(FILE_DESCRIPTOR_RESPONSE));
	assert_true(i < resp->file_descriptor_response->n_file_descriptor_proto);
	b = &resp->file_descriptor_response->file_descriptor_proto[i];
	f = google__protobuf__file_descriptor_proto__unpack(NULL, b->len, b->data);
	assert_non_null(f);
	return f;
}

/* Asserts that resp carries exactly the files in names, in that order, each parsing as a
 * FileDescriptorProto of that name. */
static void assert_files(const Response *resp, const char *const *names, size_t n)
{
	assert_int_equal(resp->message_response_case, RCASE(FILE_DESCRIPTOR_RESPONSE));
	assert_int_equal(resp->file_descriptor_response->n_file_descriptor_proto, n);
	for (size_t i = 0; i < n; i++) {
		Google__Protobuf__FileDescriptorProto *f = blob_file(resp, i);

		assert_string_equal(f->name, names[i]);
		google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
	}
}

static void assert_error(const Response *resp, int code, const char *message)
{
	assert_int_equal(resp->message_response_case, RCASE(ERROR_RESPONSE));
	assert_int_equal(resp->error_response->error_code, code);
	if (message)
		assert_string_equal(resp->error_response->error_message, message);
}

static int setup_embedded(void **state)
{
	(void)state;
	return reflection_init();
}

static int teardown_index(void **state)
{
	(void)state;
	reflection_done();
	return 0;
}

static void test_list_services(void **state)
{
	static const char *const want[] = {
		"mvirt.VmService", "mvirt.VolumeService", "mvirt.NetworkService",
		"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"};
	Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	Response *resp;

	(void)state;
	req.message_request_case = CASE(LIST_SERVICES);
	req.list_services = (char *)"*";
	resp = ask(&req);
	assert_int_equal(resp->message_response_case, RCASE(LIST_SERVICES_RESPONSE));
	assert_int_equal(resp->list_services_response->n_service, ELEMENTSOF(want));
	for (size_t i = 0; i < ELEMENTSOF(want); i++) {
		size_t found = 0;

		for (size_t j = 0; j < resp->list_services_response->n_service; j++)
			if (streq(resp->list_services_response->service[j]->name, want[i]))
				found++;
		assert_int_equal(found, 1);
	}
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void test_service_with_dependencies(void **state)
{
	Response *resp;
	Google__Protobuf__FileDescriptorProto *f;
	bool ts = false, wrappers = false, mask = false;

	(void)state;
	resp = ask_symbol("mvirt.VmService");
	assert_int_equal(resp->message_response_case, RCASE(FILE_DESCRIPTOR_RESPONSE));
	assert_int_equal(resp->file_descriptor_response->n_file_descriptor_proto, 4);

	f = blob_file(resp, 0);
	assert_string_equal(f->name, "mvirt.proto");
	assert_string_equal(f->package, "mvirt");
	assert_int_equal(f->n_service, 3);
	assert_string_equal(f->service[0]->name, "VmService");
	assert_string_equal(f->service[1]->name, "VolumeService");
	assert_string_equal(f->service[2]->name, "NetworkService");
	assert_true(f->service[0]->n_method >= 12);
	google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);

	for (size_t i = 1; i < 4; i++) {
		f = blob_file(resp, i);
		if (streq(f->name, "google/protobuf/timestamp.proto"))
			ts = true;
		else if (streq(f->name, "google/protobuf/wrappers.proto"))
			wrappers = true;
		else if (streq(f->name, "google/protobuf/field_mask.proto"))
			mask = true;
		google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
	}
	assert_true(ts);
	assert_true(wrappers);
	assert_true(mask);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void test_symbols(void **state)
{
	static const struct {
		const char *symbol, *file;
	} cases[] = {
		{"mvirt.VmService.CreateVm", "mvirt.proto"},
		{"mvirt.VmService.GetSystemInfo", "mvirt.proto"},
		{"mvirt.VmConfig", "mvirt.proto"},
		{"mvirt.Vm", "mvirt.proto"},
		{".mvirt.Vm", "mvirt.proto"},
		{"mvirt.VmState", "mvirt.proto"},
		{"google.protobuf.Timestamp", "google/protobuf/timestamp.proto"},
		{"google.protobuf.UInt32Value", "google/protobuf/wrappers.proto"},
		{"grpc.reflection.v1.ServerReflection.ServerReflectionInfo",
		 "grpc/reflection/v1/reflection.proto"},
		{"grpc.reflection.v1alpha.ServerReflectionResponse",
		 "grpc/reflection/v1alpha/reflection.proto"},
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		Response *resp = ask_symbol(cases[i].symbol);
		Google__Protobuf__FileDescriptorProto *f = blob_file(resp, 0);

		assert_string_equal(f->name, cases[i].file);
		google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
		grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	}
}

static void test_by_filename(void **state)
{
	static const char *const wrappers[] = {"google/protobuf/wrappers.proto"};
	static const char *const refl[] = {"grpc/reflection/v1/reflection.proto"};
	Response *resp;
	Google__Protobuf__FileDescriptorProto *f;

	(void)state;
	resp = ask_file("mvirt.proto");
	assert_int_equal(resp->file_descriptor_response->n_file_descriptor_proto, 4);
	f = blob_file(resp, 0);
	assert_string_equal(f->name, "mvirt.proto");
	assert_int_equal(f->n_dependency, 3);
	google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);

	resp = ask_file("google/protobuf/wrappers.proto");
	assert_files(resp, wrappers, 1);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);

	resp = ask_file("grpc/reflection/v1/reflection.proto");
	assert_files(resp, refl, 1);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void test_not_found(void **state)
{
	Response *resp;

	(void)state;
	resp = ask_symbol("mvirt.NoSuchThing");
	assert_error(resp, 5, "symbol not found: mvirt.NoSuchThing");
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);

	/* a package is not a symbol, nor is a prefix */
	resp = ask_symbol("mvirt");
	assert_error(resp, 5, "symbol not found: mvirt");
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	resp = ask_symbol("mvirt.VmServic");
	assert_error(resp, 5, NULL);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);

	resp = ask_file("nope.proto");
	assert_error(resp, 5, "file not found: nope.proto");
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);

	resp = ask_file("");
	assert_error(resp, 5, "file not found: ");
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void test_long_name_truncated(void **state)
{
	char name[600];
	Response *resp;
	const char *msg;

	(void)state;
	/* 'a' then two-byte characters: byte 256 falls inside one */
	name[0] = 'a';
	for (size_t i = 1; i + 2 < sizeof(name); i += 2) {
		name[i] = (char)0xc3;
		name[i + 1] = (char)0xa9;
	}
	name[sizeof(name) - 1] = '\0';
	resp = ask_symbol(name);
	assert_error(resp, 5, NULL);
	msg = resp->error_response->error_message;
	assert_true(strlen(msg) < REFLECTION_ERROR_MESSAGE_MAX);
	assert_int_equal(strncmp(msg, "symbol not found: a\xc3\xa9", 20), 0);
	/* ends with a whole character, then "..." */
	assert_int_equal(strlen(msg), strlen("symbol not found: ") + 255 + 3);
	assert_string_equal(msg + strlen(msg) - 5, "\xc3\xa9...");
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void test_extensions(void **state)
{
	Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	Grpc__Reflection__V1__ExtensionRequest ext = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
	Response *resp;

	(void)state;
	req.message_request_case = CASE(ALL_EXTENSION_NUMBERS_OF_TYPE);
	req.all_extension_numbers_of_type = (char *)".mvirt.Vm";
	resp = ask(&req);
	assert_int_equal(resp->message_response_case, RCASE(ALL_EXTENSION_NUMBERS_RESPONSE));
	assert_string_equal(resp->all_extension_numbers_response->base_type_name, "mvirt.Vm");
	assert_int_equal(resp->all_extension_numbers_response->n_extension_number, 0);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);

	/* only message types have extension numbers */
	req.all_extension_numbers_of_type = (char *)"mvirt.VmService";
	resp = ask(&req);
	assert_error(resp, 5, NULL);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	req.all_extension_numbers_of_type = (char *)"mvirt.Nope";
	resp = ask(&req);
	assert_error(resp, 5, NULL);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);

	req.message_request_case = CASE(FILE_CONTAINING_EXTENSION);
	ext.containing_type = (char *)"mvirt.Vm";
	ext.extension_number = 100;
	req.file_containing_extension = &ext;
	resp = ask(&req);
	assert_error(resp, 5, NULL);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void test_empty_request(void **state)
{
	Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	Response *resp;

	(void)state;
	req.host = (char *)"localhost";
	resp = ask(&req);
	assert_error(resp, 3, NULL);
	assert_string_equal(resp->valid_host, "localhost");
	assert_non_null(resp->original_request);
	assert_int_equal(resp->original_request->message_request_case, CASE(_NOT_SET));
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void test_echo(void **state)
{
	Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	Response *resp;

	(void)state;
	req.host = (char *)"example:1234";
	req.message_request_case = CASE(FILE_CONTAINING_SYMBOL);
	req.file_containing_symbol = (char *)"mvirt.Nope";
	resp = ask(&req);
	assert_string_equal(resp->valid_host, "example:1234");
	assert_non_null(resp->original_request);
	assert_string_equal(resp->original_request->host, "example:1234");
	assert_int_equal(resp->original_request->message_request_case,
			 CASE(FILE_CONTAINING_SYMBOL));
	assert_string_equal(resp->original_request->file_containing_symbol, "mvirt.Nope");
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);

	req.host = (char *)"";
	req.message_request_case = CASE(LIST_SERVICES);
	req.list_services = (char *)"";
	resp = ask(&req);
	assert_string_equal(resp->valid_host, "");
	assert_int_equal(resp->original_request->message_request_case, CASE(LIST_SERVICES));
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

/* --- synthetic descriptor sets --- */

struct fake_file {
	const char *name, *package;
	const char *deps[3];
	const char *message, *nested, *service;
};

/* Packs a FileDescriptorSet of files; *ret_len is its size, the buffer is the caller's. */
static uint8_t *pack_set(const struct fake_file *files, size_t n, size_t *ret_len)
{
	Google__Protobuf__FileDescriptorSet set = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_SET__INIT;
	Google__Protobuf__FileDescriptorProto fds[8], *fdp[8];
	Google__Protobuf__DescriptorProto msgs[8], nested[8], *msgp[8], *nestedp[8];
	Google__Protobuf__ServiceDescriptorProto svcs[8], *svcp[8];
	uint8_t *buf;

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		size_t n_deps = 0;

		fds[i] = (Google__Protobuf__FileDescriptorProto)
			GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
		fds[i].name = (char *)files[i].name;
		fds[i].package = (char *)files[i].package;
		while (n_deps < ELEMENTSOF(files[i].deps) && files[i].deps[n_deps])
			n_deps++;
		fds[i].dependency = (char **)files[i].deps;
		fds[i].n_dependency = n_deps;
		if (files[i].message) {
			msgs[i] = (Google__Protobuf__DescriptorProto)
				GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
			msgs[i].name = (char *)files[i].message;
			msgp[i] = &msgs[i];
			fds[i].message_type = &msgp[i];
			fds[i].n_message_type = 1;
			if (files[i].nested) {
				nested[i] = (Google__Protobuf__DescriptorProto)
					GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
				nested[i].name = (char *)files[i].nested;
				nestedp[i] = &nested[i];
				msgs[i].nested_type = &nestedp[i];
				msgs[i].n_nested_type = 1;
			}
		}
		if (files[i].service) {
			svcs[i] = (Google__Protobuf__ServiceDescriptorProto)
				GOOGLE__PROTOBUF__SERVICE_DESCRIPTOR_PROTO__INIT;
			svcs[i].name = (char *)files[i].service;
			svcp[i] = &svcs[i];
			fds[i].service = &svcp[i];
			fds[i].n_service = 1;
		}
		fdp[i] = &fds[i];
	}
	set.file = fdp;
	set.n_file = n;
	*ret_len = google__protobuf__file_descriptor_set__get_packed_size(&set);
	buf = malloc(*ret_len ? *ret_len : 1);
	assert_non_null(buf);
	google__protobuf__file_descriptor_set__pack(&set, buf);
	return buf;
}

static int load_fake(const struct fake_file *files, size_t n)
{
	size_t len;
	uint8_t *buf = pack_set(files, n, &len);
	int r = reflection_index_load(buf, len);

	free(buf);
	return r;
}

static size_t n_services(void)
{
	Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	Response *resp;
	size_t n;

	req.message_request_case = CASE(LIST_SERVICES);
	resp = ask(&req);
	n = resp->list_services_response->n_service;
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	return n;
}

/* A diamond: a -> b, c; b -> d; c -> d. Pre-order, each file once: a b d c. */
static void test_dependency_order(void **state)
{
	static const struct fake_file files[] = {
		{.name = "d.proto", .package = "p", .message = "D"},
		{.name = "c.proto", .package = "p", .deps = {"d.proto"}, .message = "C"},
		{.name = "b.proto", .package = "p", .deps = {"d.proto"}, .message = "B"},
		{.name = "a.proto",
		 .package = "p",
		 .deps = {"b.proto", "c.proto"},
		 .message = "A",
		 .nested = "Inner",
		 .service = "Svc"},
	};
	static const char *const from_a[] = {"a.proto", "b.proto", "d.proto", "c.proto"};
	static const char *const from_c[] = {"c.proto", "d.proto"};
	Response *resp;

	(void)state;
	assert_int_equal(load_fake(files, ELEMENTSOF(files)), 0);
	resp = ask_symbol("p.A");
	assert_files(resp, from_a, ELEMENTSOF(from_a));
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	resp = ask_symbol("p.A.Inner"); /* nested message */
	assert_files(resp, from_a, ELEMENTSOF(from_a));
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	resp = ask_symbol("p.Svc");
	assert_files(resp, from_a, ELEMENTSOF(from_a));
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	resp = ask_file("c.proto");
	assert_files(resp, from_c, ELEMENTSOF(from_c));
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	resp = ask_symbol("p.Inner"); /* nested names are scoped */
	assert_error(resp, 5, NULL);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	assert_int_equal(n_services(), 1);
}

static void test_bad_sets(void **state)
{
	static const struct fake_file missing_dep[] = {
		{.name = "a.proto", .package = "p", .deps = {"gone.proto"}, .message = "A"},
	};
	static const struct fake_file dup_symbol[] = {
		{.name = "a.proto", .package = "p", .message = "A"},
		{.name = "b.proto", .package = "p", .message = "A", .service = "S"},
	};
	static const struct fake_file dup_file[] = {
		{.name = "a.proto", .package = "p", .message = "A"},
		{.name = "a.proto", .package = "q", .message = "B"},
	};
	static const struct fake_file ok[] = {
		{.name = "a.proto", .package = "p", .message = "A", .service = "S"},
	};
	static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01};

	(void)state;
	assert_int_equal(load_fake(ok, ELEMENTSOF(ok)), 0);
	assert_int_equal(n_services(), 1);

	assert_int_equal(load_fake(missing_dep, ELEMENTSOF(missing_dep)), -EINVAL);
	assert_int_equal(n_services(), 0); /* a failed load leaves an empty index */
	assert_int_equal(load_fake(dup_symbol, ELEMENTSOF(dup_symbol)), -EINVAL);
	assert_int_equal(load_fake(dup_file, ELEMENTSOF(dup_file)), -EINVAL);
	assert_int_equal(reflection_index_load(garbage, sizeof(garbage)), -EINVAL);
	assert_int_equal(n_services(), 0);

	/* a package without symbols of its own is fine: no package at all */
	assert_int_equal(
		load_fake((const struct fake_file[]){{.name = "x.proto", .message = "X"}}, 1), 0);
	{
		Response *resp = ask_symbol("X");
		static const char *const x[] = {"x.proto"};

		assert_files(resp, x, 1);
		grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	}

	/* the embedded set loads again after all that */
	assert_int_equal(reflection_init(), 0);
	assert_int_equal(n_services(), 5);
}

/* --- the stream handler, against a fake api_call_*() --- */

static struct {
	int sends, finishes;
	int send_result;
	grpc_status_code status;
	Response *last;
} fake;

int api_call_send(struct api_call *call, const ProtobufCMessage *msg, size_t max_queued)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);

	assert_non_null(call);
	assert_int_equal(max_queued, 64);
	assert_ptr_equal(msg->descriptor,
			 &grpc__reflection__v1__server_reflection_response__descriptor);
	assert_non_null(buf);
	protobuf_c_message_pack(msg, buf);
	if (fake.last)
		grpc__reflection__v1__server_reflection_response__free_unpacked(fake.last, NULL);
	fake.last = grpc__reflection__v1__server_reflection_response__unpack(NULL, len, buf);
	free(buf);
	fake.sends++;
	return fake.send_result;
}

void api_call_finish(struct api_call *call, grpc_status_code status, const char *details)
{
	(void)details;
	assert_non_null(call);
	fake.finishes++;
	fake.status = status;
}

static void test_handler(void **state)
{
	const struct api_method *v1 = &reflection_methods[0], *v1alpha = &reflection_methods[1];
	Request req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	struct api_call *call = (struct api_call *)&fake;

	(void)state;
	assert_string_equal(v1->path, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
	assert_string_equal(v1alpha->path,
			    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
	assert_null(reflection_methods[2].path);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(reflection_methods[i].kind, API_METHOD_BIDI_STREAM);
		assert_ptr_equal(reflection_methods[i].request,
				 &grpc__reflection__v1__server_reflection_request__descriptor);
	}

	memset(&fake, 0, sizeof(fake));
	req.message_request_case = CASE(FILE_CONTAINING_SYMBOL);
	req.file_containing_symbol = (char *)"mvirt.Vm";
	v1alpha->handle(call, &req.base);
	assert_int_equal(fake.sends, 1);
	assert_int_equal(fake.finishes, 0);
	assert_non_null(fake.last);
	assert_int_equal(fake.last->message_response_case, RCASE(FILE_DESCRIPTOR_RESPONSE));
	assert_string_equal(fake.last->original_request->file_containing_symbol, "mvirt.Vm");

	v1->handle(call, &req.base);
	assert_int_equal(fake.sends, 2);
	v1->handle(call, NULL); /* half-close */
	assert_int_equal(fake.finishes, 1);
	assert_int_equal(fake.status, GRPC_STATUS_OK);

	/* a client that does not read is cut off */
	fake.send_result = -ENOBUFS;
	v1->handle(call, &req.base);
	assert_int_equal(fake.finishes, 2);
	assert_int_equal(fake.status, GRPC_STATUS_RESOURCE_EXHAUSTED);

	/* a response that cannot be queued ends the call rather than leave the client waiting */
	fake.send_result = -ENOMEM;
	v1->handle(call, &req.base);
	assert_int_equal(fake.finishes, 3);
	assert_int_equal(fake.status, GRPC_STATUS_INTERNAL);

	/* a call already over is left alone */
	fake.send_result = -ECANCELED;
	v1->handle(call, &req.base);
	assert_int_equal(fake.finishes, 3);

	grpc__reflection__v1__server_reflection_response__free_unpacked(fake.last, NULL);
	fake.last = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_services),
		cmocka_unit_test(test_service_with_dependencies),
		cmocka_unit_test(test_symbols),
		cmocka_unit_test(test_by_filename),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_long_name_truncated),
		cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_empty_request),
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_handler),
		cmocka_unit_test(test_dependency_order),
		cmocka_unit_test(test_bad_sets),
	};

	return cmocka_run_group_tests(tests, setup_embedded, teardown_index);
}
