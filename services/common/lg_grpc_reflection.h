/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_grpc_reflection: the gRPC server reflection service, so that grpcurl-style tools can list
 * and describe our services. Serves grpc.reflection.v1 and grpc.reflection.v1alpha (identical
 * schemas; grpcurl tries v1 and falls back to v1alpha) on the bidirectional
 * ServerReflectionInfo method, answering each request as it arrives:
 *   list_services               every service declared in the descriptor set
 *   file_by_filename            that file and its transitive dependencies
 *   file_containing_symbol      the file declaring a package-qualified message, enum,
 *                               service or method ("pkg.Service.Method"), with dependencies
 *   all_extension_numbers_of_type  an empty list for known messages (we define no extensions)
 * Anything unknown gets error_response with code 5 (NOT_FOUND).
 *
 * The descriptors are the serialized FileDescriptorSet that `protoc --descriptor_set_out
 * --include_imports` wrote at build time and the build embedded in the binary (cmake:
 * lg_grpc_descriptor_set() in services/common/grpc_server.cmake); each file is served as the
 * exact FileDescriptorProto bytes protoc produced.
 *
 * Thread: the server's loop thread only.
 * Ownership: |fds| is borrowed and must outlive the object (embedded data is static).
 * The object must be freed after lg_grpc_server_free.
 * Errors: LG_ERR_MALFORMED (|fds| is not a FileDescriptorSet), LG_ERR_NOMEM,
 * LG_ERR_TOO_LARGE (more files or symbols than LG_GRPC_REFLECTION_MAX_*), and what
 * lg_grpc_server_register returns.
 */
#ifndef LG_GRPC_REFLECTION_H
#define LG_GRPC_REFLECTION_H

#include <stddef.h>
#include <stdint.h>

#include "lg_grpc_server.h"

typedef struct lg_grpc_reflection lg_grpc_reflection;

/* Indexes the FileDescriptorSet |fds| (|fds_len| bytes, borrowed) and registers
 * /grpc.reflection.v1.ServerReflection/ServerReflectionInfo and the v1alpha twin on |srv|.
 * Returns LG_OK and |*out| (returned owned; free with lg_grpc_reflection_free after the
 * server) or an error above; after a failure free the server too (a registration that
 * succeeded cannot be undone). */
int lg_grpc_reflection_new(lg_grpc_reflection **out, lg_grpc_server *srv, const uint8_t *fds,
                           size_t fds_len);
/* Frees |r|. Accepts NULL. */
void lg_grpc_reflection_free(lg_grpc_reflection *r);

/* Number of files and of services indexed (for tests). */
size_t lg_grpc_reflection_get_file_count(const lg_grpc_reflection *r);
size_t lg_grpc_reflection_get_service_count(const lg_grpc_reflection *r);

#endif /* LG_GRPC_REFLECTION_H */
