/*
 * reflection.h: gRPC server reflection (grpc.reflection.v1 and v1alpha
 * ServerReflectionInfo), answered from the FileDescriptorSet the build
 * embeds (sentra__descriptor_set: our .proto files with their imports,
 * gRPC health and reflection).
 *
 * Reflection needs no token and no database, and ServerReflectionInfo is
 * bidirectional streaming, so it does not go through call.c: the gRPC
 * transport (transport/grpc.c) hands each request message here and sends
 * back what this returns. v1 and v1alpha use the same messages (same
 * fields and numbers), so one decoder serves both.
 */
#ifndef SENTRA_REFLECTION_H
#define SENTRA_REFLECTION_H

#include <stddef.h>
#include <stdint.h>

struct server;

/* Answers one serialized ServerReflectionRequest: returns a malloc'ed
 * serialized ServerReflectionResponse (caller frees) and its length in
 * *len, or NULL when req is not a ServerReflectionRequest. list_services,
 * file_containing_symbol and file_by_filename are answered (files with
 * their transitive imports); anything else, and unknown names, get an
 * ErrorResponse with code 5 (NOT_FOUND). The index of the descriptor set
 * is built on first use and kept in srv->reflection. */
uint8_t *reflection_answer(struct server *srv, const uint8_t *req, size_t reqlen, size_t *len);

/* Frees srv->reflection (server.c, at the end). */
void reflection_free(struct server *srv);

#endif
