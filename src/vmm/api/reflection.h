/* gRPC server reflection (grpc.reflection.v1 and v1alpha): lets grpcurl and other generic
 * clients list services and fetch their descriptors with no .proto at hand. Serves the
 * FileDescriptorSet embedded at build time (proto/meson.build: mvirt_descriptors.c). */
#pragma once

#include "api/api.h"

/* The method table to pass to api_server_new(): ServerReflectionInfo of v1 and v1alpha. */
extern const struct api_method reflection_methods[];

/* Parses the embedded descriptor set and builds the symbol index. Call once at start;
 * -EINVAL if the embedded set cannot be parsed (a build fault). */
int reflection_init(void);
void reflection_done(void);
