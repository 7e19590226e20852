/* The pure part of server reflection (reflection_index.c): the descriptor index and the answer
 * to one ServerReflectionRequest. reflection.c puts it on the wire; the unit tests call it
 * directly. Not thread-safe: the index is global and used from the event loop only. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "grpc/reflection/v1/reflection.pb-c.h"

#define REFLECTION_ERROR_MESSAGE_MAX 320

/* The answer to one request: resp and the sub-messages it points to. Built in place by
 * reflection_reply_build() and not to be copied (resp points into the struct). It borrows the
 * request (valid_host, original_request) and the index (descriptors, service names): it is
 * valid while both are, and needs no destructor. */
struct reflection_reply {
	Grpc__Reflection__V1__ServerReflectionResponse resp;
	Grpc__Reflection__V1__FileDescriptorResponse files;
	Grpc__Reflection__V1__ListServiceResponse services;
	Grpc__Reflection__V1__ExtensionNumberResponse extensions;
	Grpc__Reflection__V1__ErrorResponse error;
	char error_message[REFLECTION_ERROR_MESSAGE_MAX];
};

/* Replaces the index with one built from a serialized FileDescriptorSet (data is not kept).
 * -EINVAL when the set does not parse, names a file twice, defines a symbol twice or depends
 * on a file it does not contain; -ENOMEM. On failure the index is empty. reflection_init()
 * calls it with the embedded set. */
int reflection_index_load(const uint8_t *data, size_t len);

/* Answers req from the index (an unloaded index knows nothing). Never fails. */
void reflection_reply_build(const Grpc__Reflection__V1__ServerReflectionRequest *req,
			    struct reflection_reply *ret);

/* The same answer, packed: *ret_buf is malloc'ed and the caller's. 0 or -ENOMEM. */
int reflection_answer(const Grpc__Reflection__V1__ServerReflectionRequest *req, uint8_t **ret_buf,
		      size_t *ret_len);
