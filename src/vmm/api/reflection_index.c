/* The descriptor index behind server reflection, and the answers computed from it.
 *
 * Owns the parsed FileDescriptorSet (embedded at build time, proto/mvirt_descriptors.c), one
 * serialized FileDescriptorProto per file, and for each file the list of blobs a
 * FileDescriptorResponse carries: the file first, then its transitive dependencies in
 * pre-order, each once (what grpc's own reflection sends, and what grpcurl expects). Symbols
 * (services, methods, messages with their nested messages, enums) are fully qualified without
 * a leading dot and sorted for bsearch. Every string and blob a reply points to lives here,
 * so replies allocate nothing.
 *
 * Called by reflection.c (the gRPC handler) and by tests; event loop only. */
#include "api/reflection_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/reflection.h" /* and through api.h, grpc/status.h: error codes are gRPC's */
#include "common/macro.h"
#include "google/protobuf/descriptor.pb-c.h"

#define REQUEST_CASE(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x
#define RESPONSE_CASE(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x
#define ERROR_SUBJECT_MAX 256 /* bytes of a requested name quoted in an error message */

extern const unsigned char mvirt_descriptor_set[];
extern const size_t mvirt_descriptor_set_len;

enum symbol_kind {
	SYMBOL_MESSAGE,
	SYMBOL_ENUM,
	SYMBOL_SERVICE,
	SYMBOL_METHOD,
};

struct symbol {
	char *name;
	enum symbol_kind kind;
	size_t file;
};

struct file {
	const char *name; /* in set */
	ProtobufCBinaryData blob;
	ProtobufCBinaryData *closure; /* blobs borrowed from files[] */
	size_t n_closure;
};

static struct {
	Google__Protobuf__FileDescriptorSet *set;
	struct file *files;
	size_t n_files;
	struct symbol *symbols;
	size_t n_symbols, n_symbols_alloc;
	Grpc__Reflection__V1__ServiceResponse *services; /* names borrowed from symbols */
	Grpc__Reflection__V1__ServiceResponse **service_ptrs;
	size_t n_services;
} idx;

static void index_clear(void)
{
	for (size_t i = 0; i < idx.n_files; i++) {
		free(idx.files[i].blob.data);
		free(idx.files[i].closure);
	}
	free(idx.files);
	for (size_t i = 0; i < idx.n_symbols; i++)
		free(idx.symbols[i].name);
	free(idx.symbols);
	free(idx.services);
	free(idx.service_ptrs);
	if (idx.set)
		google__protobuf__file_descriptor_set__free_unpacked(idx.set, NULL);
	memset(&idx, 0, sizeof(idx));
}

/* Returns the new symbol's name (owned by the index) or NULL on -ENOMEM. */
static const char *symbol_add(const char *scope, const char *name, enum symbol_kind kind,
			      size_t file)
{
	char *full;

	if (idx.n_symbols == idx.n_symbols_alloc) {
		size_t n = idx.n_symbols_alloc ? idx.n_symbols_alloc * 2 : 64;
		struct symbol *s = reallocarray(idx.symbols, n, sizeof(*s));

		if (!s)
			return NULL;
		idx.symbols = s;
		idx.n_symbols_alloc = n;
	}
	if (isempty(scope))
		full = strdup(strempty(name));
	else if (asprintf(&full, "%s.%s", scope, strempty(name)) < 0)
		full = NULL;
	if (!full)
		return NULL;
	idx.symbols[idx.n_symbols++] = (struct symbol){.name = full, .kind = kind, .file = file};
	return full;
}

static int index_message(const char *scope, const Google__Protobuf__DescriptorProto *m, size_t file)
{
	const char *full = symbol_add(scope, m->name, SYMBOL_MESSAGE, file);

	if (!full)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_nested_type; i++) {
		int r = index_message(full, m->nested_type[i], file);

		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < m->n_enum_type; i++)
		if (!symbol_add(full, m->enum_type[i]->name, SYMBOL_ENUM, file))
			return -ENOMEM;
	return 0;
}

static int index_file(size_t file)
{
	const Google__Protobuf__FileDescriptorProto *f = idx.set->file[file];
	int r;

	for (size_t i = 0; i < f->n_message_type; i++)
		if ((r = index_message(f->package, f->message_type[i], file)) < 0)
			return r;
	for (size_t i = 0; i < f->n_enum_type; i++)
		if (!symbol_add(f->package, f->enum_type[i]->name, SYMBOL_ENUM, file))
			return -ENOMEM;
	for (size_t i = 0; i < f->n_service; i++) {
		const Google__Protobuf__ServiceDescriptorProto *s = f->service[i];
		const char *full = symbol_add(f->package, s->name, SYMBOL_SERVICE, file);

		if (!full)
			return -ENOMEM;
		idx.services[idx.n_services] = (Grpc__Reflection__V1__ServiceResponse)
			GRPC__REFLECTION__V1__SERVICE_RESPONSE__INIT;
		idx.services[idx.n_services].name = (char *)full;
		idx.service_ptrs[idx.n_services] = &idx.services[idx.n_services];
		idx.n_services++;
		for (size_t j = 0; j < s->n_method; j++)
			if (!symbol_add(full, s->method[j]->name, SYMBOL_METHOD, file))
				return -ENOMEM;
	}
	return 0;
}

static struct file *file_find(const char *name)
{
	for (size_t i = 0; i < idx.n_files; i++)
		if (streq(idx.files[i].name, name))
			return &idx.files[i];
	return NULL;
}

/* Pre-order walk of the dependency graph from file; seen[] marks files already listed. */
static int closure_add(struct file *root, size_t file, bool *seen)
{
	const Google__Protobuf__FileDescriptorProto *f = idx.set->file[file];

	if (seen[file])
		return 0;
	seen[file] = true;
	root->closure[root->n_closure++] = idx.files[file].blob;
	for (size_t i = 0; i < f->n_dependency; i++) {
		struct file *dep = file_find(f->dependency[i]);
		int r;

		if (!dep)
			return -EINVAL;
		if ((r = closure_add(root, (size_t)(dep - idx.files), seen)) < 0)
			return r;
	}
	return 0;
}

static int symbol_cmp(const void *a, const void *b)
{
	return strcmp(((const struct symbol *)a)->name, ((const struct symbol *)b)->name);
}

static int index_build(void)
{
	size_t n_services = 0;
	int r;

	idx.files = calloc(idx.set->n_file ? idx.set->n_file : 1, sizeof(*idx.files));
	if (!idx.files)
		return -ENOMEM;
	for (size_t i = 0; i < idx.set->n_file; i++) {
		const Google__Protobuf__FileDescriptorProto *f = idx.set->file[i];
		struct file *file = &idx.files[i];

		if (isempty(f->name) || file_find(f->name))
			return -EINVAL;
		file->name = f->name;
		idx.n_files++;
		file->blob.len = protobuf_c_message_get_packed_size(&f->base);
		file->blob.data = malloc(file->blob.len ? file->blob.len : 1);
		if (!file->blob.data)
			return -ENOMEM;
		protobuf_c_message_pack(&f->base, file->blob.data);
		n_services += f->n_service;
	}

	idx.services = calloc(n_services ? n_services : 1, sizeof(*idx.services));
	idx.service_ptrs = calloc(n_services ? n_services : 1, sizeof(*idx.service_ptrs));
	if (!idx.services || !idx.service_ptrs)
		return -ENOMEM;
	for (size_t i = 0; i < idx.n_files; i++)
		if ((r = index_file(i)) < 0)
			return r;
	qsort(idx.symbols, idx.n_symbols, sizeof(*idx.symbols), symbol_cmp);
	for (size_t i = 1; i < idx.n_symbols; i++)
		if (streq(idx.symbols[i - 1].name, idx.symbols[i].name))
			return -EINVAL;

	for (size_t i = 0; i < idx.n_files; i++) {
		_cleanup_free_ bool *seen = calloc(idx.n_files, sizeof(*seen));

		idx.files[i].closure = calloc(idx.n_files, sizeof(*idx.files[i].closure));
		if (!seen || !idx.files[i].closure)
			return -ENOMEM;
		if ((r = closure_add(&idx.files[i], i, seen)) < 0)
			return r;
	}
	return 0;
}

int reflection_index_load(const uint8_t *data, size_t len)
{
	int r;

	index_clear();
	idx.set = google__protobuf__file_descriptor_set__unpack(NULL, len, data);
	if (!idx.set)
		return -EINVAL;
	if ((r = index_build()) < 0)
		index_clear();
	return r;
}

int reflection_init(void)
{
	return reflection_index_load(mvirt_descriptor_set, mvirt_descriptor_set_len);
}

void reflection_done(void)
{
	index_clear();
}

static const struct symbol *symbol_find(const char *name)
{
	struct symbol key;

	if (!name)
		return NULL;
	if (name[0] == '.')
		name++;
	key.name = (char *)name;
	return bsearch(&key, idx.symbols, idx.n_symbols, sizeof(*idx.symbols), symbol_cmp);
}

/* Sets the error answer "what: subject". subject (may be NULL) is quoted up to
 * ERROR_SUBJECT_MAX bytes, cut at a UTF-8 character boundary so that the message stays a valid
 * proto3 string. */
static void reply_error(struct reflection_reply *reply, int code, const char *what,
			const char *subject)
{
	size_t len = subject ? strlen(subject) : 0, n = len;

	if (n > ERROR_SUBJECT_MAX) {
		n = ERROR_SUBJECT_MAX;
		while (n > 0 && ((unsigned char)subject[n] & 0xc0) == 0x80)
			n--;
	}
	if (subject)
		snprintf(reply->error_message, sizeof(reply->error_message), "%s: %.*s%s", what,
			 (int)n, subject, n < len ? "..." : "");
	else
		snprintf(reply->error_message, sizeof(reply->error_message), "%s", what);
	reply->error.error_code = code;
	reply->error.error_message = reply->error_message;
	reply->resp.message_response_case = RESPONSE_CASE(ERROR_RESPONSE);
	reply->resp.error_response = &reply->error;
}

static void reply_files(struct reflection_reply *reply, const struct file *file)
{
	reply->files.file_descriptor_proto = file->closure;
	reply->files.n_file_descriptor_proto = file->n_closure;
	reply->resp.message_response_case = RESPONSE_CASE(FILE_DESCRIPTOR_RESPONSE);
	reply->resp.file_descriptor_response = &reply->files;
}

void reflection_reply_build(const Grpc__Reflection__V1__ServerReflectionRequest *req,
			    struct reflection_reply *ret)
{
	const struct symbol *sym;
	const struct file *file;

	*ret = (struct reflection_reply){
		.resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT,
		.files = GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT,
		.services = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT,
		.extensions = GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT,
		.error = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT,
	};
	ret->resp.valid_host = req->host ? req->host : (char *)protobuf_c_empty_string;
	ret->resp.original_request = (Grpc__Reflection__V1__ServerReflectionRequest *)req;

	switch (req->message_request_case) {
	case REQUEST_CASE(LIST_SERVICES):
		ret->services.service = idx.service_ptrs;
		ret->services.n_service = idx.n_services;
		ret->resp.message_response_case = RESPONSE_CASE(LIST_SERVICES_RESPONSE);
		ret->resp.list_services_response = &ret->services;
		break;
	case REQUEST_CASE(FILE_BY_FILENAME):
		file = req->file_by_filename ? file_find(req->file_by_filename) : NULL;
		if (file)
			reply_files(ret, file);
		else
			reply_error(ret, GRPC_STATUS_NOT_FOUND, "file not found",
				    req->file_by_filename);
		break;
	case REQUEST_CASE(FILE_CONTAINING_SYMBOL):
		sym = symbol_find(req->file_containing_symbol);
		if (sym)
			reply_files(ret, &idx.files[sym->file]);
		else
			reply_error(ret, GRPC_STATUS_NOT_FOUND, "symbol not found",
				    req->file_containing_symbol);
		break;
	case REQUEST_CASE(FILE_CONTAINING_EXTENSION):
		/* the set declares no extensions */
		reply_error(ret, GRPC_STATUS_NOT_FOUND, "extension not found",
			    req->file_containing_extension
				    ? req->file_containing_extension->containing_type
				    : NULL);
		break;
	case REQUEST_CASE(ALL_EXTENSION_NUMBERS_OF_TYPE):
		sym = symbol_find(req->all_extension_numbers_of_type);
		if (sym && sym->kind == SYMBOL_MESSAGE) {
			ret->extensions.base_type_name = sym->name;
			ret->resp.message_response_case =
				RESPONSE_CASE(ALL_EXTENSION_NUMBERS_RESPONSE);
			ret->resp.all_extension_numbers_response = &ret->extensions;
		} else
			reply_error(ret, GRPC_STATUS_NOT_FOUND, "type not found",
				    req->all_extension_numbers_of_type);
		break;
	default:
		reply_error(ret, GRPC_STATUS_INVALID_ARGUMENT, "empty or unknown request", NULL);
		break;
	}
}

int reflection_answer(const Grpc__Reflection__V1__ServerReflectionRequest *req, uint8_t **ret_buf,
		      size_t *ret_len)
{
	struct reflection_reply reply;
	uint8_t *buf;
	size_t len;

	reflection_reply_build(req, &reply);
	len = protobuf_c_message_get_packed_size(&reply.resp.base);
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(&reply.resp.base, buf);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}
