/*
 * fuzz_request.c: libFuzzer target for the request envelope.
 *
 * The input is the payload of a REQUEST frame. It goes through what
 * conn.c and call.c do before a handler runs: unpack sentra.v1.Request,
 * look the method up in the dispatch table (server/core/methods.c), unpack the
 * method's request message with the table's descriptor, read the metadata
 * the way the token check does, and scan it for NUL bytes in strings as
 * call.c does. Then everything decoded is packed again
 * and unpacked again, which must succeed and give the same bytes: a
 * message protobuf-c accepted must survive its own round trip.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "methods.h"
#include "pbscan.h"
#include "sentra/v1/rpc.pb-c.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_request: %s:%d: check failed: %s\n",       \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* Whether m or a message inside it kept unknown fields. */
static int has_unknown(const ProtobufCMessage *m)
{
    if (m->n_unknown_fields > 0)
        return 1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)base;
            for (size_t k = 0; k < n; k++)
                if (has_unknown(v[k]))
                    return 1;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)base;
            if (sub != NULL && has_unknown(sub))
                return 1;
        }
    }
    return 0;
}

/* Packs m, unpacks the bytes with its descriptor, packs again: the two
 * packings must be equal.
 *
 * One known exception, in protobuf-c itself (1.4): unpack accepts a field
 * tag written with a redundant varint byte that decodes to field number 0
 * (bytes 80 00) and keeps it as an unknown field; packing writes it back
 * as the canonical 00, which unpack then rejects. The server never packs a
 * request again, so this harms nothing; messages with unknown fields are
 * only required to pack to their announced size. */
static void round_trip(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *a = malloc(n + 1), *b = malloc(n + 1);
    CHECK(a != NULL && b != NULL);
    CHECK(protobuf_c_message_pack(m, a) == n);
    ProtobufCMessage *again = protobuf_c_message_unpack(m->descriptor, NULL, n, a);
    if (again == NULL && has_unknown(m)) {
        free(a);
        free(b);
        return;
    }
    CHECK(again != NULL);
    CHECK(protobuf_c_message_get_packed_size(again) == n);
    CHECK(protobuf_c_message_pack(again, b) == n);
    CHECK(memcmp(a, b, n) == 0);
    protobuf_c_message_free_unpacked(again, NULL);
    free(a);
    free(b);
}

static int nul_paths;

static void on_nul(void *arg, const char *path)
{
    (void)arg;
    CHECK(path != NULL && strlen(path) < SENTRA_PBSCAN_MAX_PATH);
    nul_paths++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Sentra__V1__Request *req = sentra__v1__request__unpack(NULL, size, data);
    if (req == NULL)
        return 0;
    CHECK(req->method != NULL);
    const method_t *m = method_find(req->method);
    if (m != NULL) {
        CHECK(strcmp(m->name, req->method) == 0);
        ProtobufCMessage *msg =
            protobuf_c_message_unpack(m->input, NULL, req->payload.len, req->payload.data);
        /* The call layer's NUL scan (server/core/pbscan.c) reads any bytes
         * without reading past them, and takes every message protobuf-c
         * took as well formed. */
        nul_paths = 0;
        int nul = sentra__pbscan_nul(m->input, req->payload.data, req->payload.len,
                                     "sentra", on_nul, NULL);
        CHECK(nul == -1 || nul == nul_paths);
        if (msg != NULL) {
            CHECK(nul >= 0);
            CHECK(msg->descriptor == m->input);
            round_trip(msg);
            protobuf_c_message_free_unpacked(msg, NULL);
        }
    }
    /* The token check's reading of the metadata. */
    for (size_t i = 0; i < req->n_metadata; i++) {
        const Sentra__V1__Metadata *md = req->metadata[i];
        CHECK(md != NULL && md->key != NULL && md->value != NULL);
        if (strcasecmp(md->key, "authorization") == 0 && strncasecmp(md->value, "Bearer ", 7) == 0)
            CHECK(strlen(md->value + 7) < size);
    }
    CHECK(req->idempotency_key != NULL);
    round_trip(&req->base);
    sentra__v1__request__free_unpacked(req, NULL);
    return 0;
}
