/*
 * reflection.c: gRPC server reflection over the embedded descriptor set
 * (see reflection.h).
 *
 * The set is cut into its files without copying (each FileDescriptorProto
 * is sent as the bytes protoc wrote) and each file is decoded once, to
 * find the symbols it declares and the files it imports. A handful of
 * files: lookups are linear scans.
 */
#include <stdlib.h>
#include <string.h>

#include "reflection.h"
#include "server.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

extern const unsigned char sentra__descriptor_set[];
extern const size_t sentra__descriptor_set_len;

typedef struct rfile {
    const uint8_t *bytes;                      /* the FileDescriptorProto, inside the set */
    size_t len;
    Google__Protobuf__FileDescriptorProto *fd; /* decoded */
} rfile_t;

struct reflection {
    rfile_t *files;                            /* in the set's order */
    size_t nfiles;
};

/* ---------------------------------------------------------------- the index */

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

static struct reflection *index_build(void)
{
    struct reflection *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    const uint8_t *p = sentra__descriptor_set, *end = p + sentra__descriptor_set_len;
    /* FileDescriptorSet: field 1 (file), length-delimited, repeated. */
    while (p < end) {
        uint64_t tag, len;
        if (varint(&p, end, &tag) != 0 || tag != ((1 << 3) | 2) || varint(&p, end, &len) != 0 ||
            len > (uint64_t)(end - p))
            abort();   /* the build made it: cannot be wrong */
        rfile_t *f = realloc(r->files, (r->nfiles + 1) * sizeof(*f));
        if (f == NULL)
            abort();
        r->files = f;
        f = &r->files[r->nfiles++];
        f->bytes = p;
        f->len = (size_t)len;
        f->fd = google__protobuf__file_descriptor_proto__unpack(NULL, f->len, f->bytes);
        if (f->fd == NULL)
            abort();
        p += len;
    }
    return r;
}

static struct reflection *index_get(server_t *srv)
{
    if (srv->reflection == NULL)
        srv->reflection = index_build();
    return srv->reflection;
}

void reflection_free(server_t *srv)
{
    struct reflection *r = srv->reflection;
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nfiles; i++)
        google__protobuf__file_descriptor_proto__free_unpacked(r->files[i].fd, NULL);
    free(r->files);
    free(r);
    srv->reflection = NULL;
}

/* Whether name is scope + "." + local (or local when scope is ""); *rest
 * points past it. */
static int scoped(const char *name, const char *scope, const char *local, const char **rest)
{
    size_t n = strlen(scope);
    if (n > 0) {
        if (strncmp(name, scope, n) != 0 || name[n] != '.')
            return 0;
        name += n + 1;
    }
    size_t l = strlen(local);
    if (strncmp(name, local, l) != 0 || (name[l] != '\0' && name[l] != '.'))
        return 0;
    *rest = name + l;
    return 1;
}

static int enum_has(Google__Protobuf__EnumDescriptorProto *const *e, size_t n, const char *scope,
                    const char *sym)
{
    const char *rest;
    for (size_t i = 0; i < n; i++)
        if (scoped(sym, scope, e[i]->name, &rest) && *rest == '\0')
            return 1;
    return 0;
}

/* A message, or anything nested in it (messages, enums, fields). */
static int message_has(Google__Protobuf__DescriptorProto *const *m, size_t n, const char *scope,
                       const char *sym)
{
    const char *rest;
    for (size_t i = 0; i < n; i++) {
        if (!scoped(sym, scope, m[i]->name, &rest))
            continue;
        if (*rest == '\0')
            return 1;
        size_t sl = (size_t)(rest - sym);
        char *inner = malloc(sl + 1);
        if (inner == NULL)
            abort();
        memcpy(inner, sym, sl);
        inner[sl] = '\0';
        int found = message_has(m[i]->nested_type, m[i]->n_nested_type, inner, sym) ||
                    enum_has(m[i]->enum_type, m[i]->n_enum_type, inner, sym);
        for (size_t f = 0; !found && f < m[i]->n_field; f++)
            found = strcmp(rest + 1, m[i]->field[f]->name) == 0;
        free(inner);
        if (found)
            return 1;
    }
    return 0;
}

static int file_has(const Google__Protobuf__FileDescriptorProto *fd, const char *sym)
{
    const char *pkg = fd->package ? fd->package : "", *rest;
    for (size_t i = 0; i < fd->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
        if (!scoped(sym, pkg, s->name, &rest))
            continue;
        if (*rest == '\0')
            return 1;
        for (size_t m = 0; m < s->n_method; m++)
            if (strcmp(rest + 1, s->method[m]->name) == 0)
                return 1;
    }
    return message_has(fd->message_type, fd->n_message_type, pkg, sym) ||
           enum_has(fd->enum_type, fd->n_enum_type, pkg, sym);
}

static long file_by_name(const struct reflection *r, const char *name)
{
    for (size_t i = 0; i < r->nfiles; i++)
        if (strcmp(r->files[i].fd->name, name) == 0)
            return (long)i;
    return -1;
}

/* Adds file i, then what it imports (depth first), each once. */
static void collect(const struct reflection *r, size_t i, unsigned char *seen, size_t *order, size_t *n)
{
    if (seen[i])
        return;
    seen[i] = 1;
    order[(*n)++] = i;
    const Google__Protobuf__FileDescriptorProto *fd = r->files[i].fd;
    for (size_t d = 0; d < fd->n_dependency; d++) {
        long j = file_by_name(r, fd->dependency[d]);
        if (j >= 0)
            collect(r, (size_t)j, seen, order, n);
    }
}

/* ---------------------------------------------------------------- answering */

uint8_t *reflection_answer(server_t *srv, const uint8_t *req, size_t reqlen, size_t *len)
{
    Grpc__Reflection__V1__ServerReflectionRequest *q =
        grpc__reflection__v1__server_reflection_request__unpack(NULL, reqlen, req);
    if (q == NULL)
        return NULL;
    struct reflection *r = index_get(srv);

    Grpc__Reflection__V1__ServerReflectionResponse resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1__FileDescriptorResponse files = GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1__ListServiceResponse list = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1__ErrorResponse err = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    Grpc__Reflection__V1__ServiceResponse *svc = NULL, **svcp = NULL;
    ProtobufCBinaryData *blobs = NULL;
    unsigned char *seen = calloc(r->nfiles + 1, 1);
    size_t *order = calloc(r->nfiles + 1, sizeof(*order));
    char **names = NULL;
    if (seen == NULL || order == NULL)
        abort();
    resp.valid_host = q->host;
    resp.original_request = q;

    long found = -1;
    switch (q->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
        size_t n = 0;
        for (size_t i = 0; i < r->nfiles; i++)
            n += r->files[i].fd->n_service;
        svc = calloc(n + 1, sizeof(*svc));
        svcp = calloc(n + 1, sizeof(*svcp));
        names = calloc(n + 1, sizeof(*names));
        if (svc == NULL || svcp == NULL || names == NULL)
            abort();
        n = 0;
        for (size_t i = 0; i < r->nfiles; i++) {
            const Google__Protobuf__FileDescriptorProto *fd = r->files[i].fd;
            for (size_t s = 0; s < fd->n_service; s++) {
                const char *pkg = fd->package ? fd->package : "";
                size_t l = strlen(pkg) + strlen(fd->service[s]->name) + 2;
                if ((names[n] = malloc(l)) == NULL)
                    abort();
                strcpy(names[n], pkg);
                if (pkg[0])
                    strcat(names[n], ".");
                strcat(names[n], fd->service[s]->name);
                grpc__reflection__v1__service_response__init(&svc[n]);
                svc[n].name = names[n];
                svcp[n] = &svc[n];
                n++;
            }
        }
        list.n_service = n;
        list.service = svcp;
        resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &list;
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        found = file_by_name(r, q->file_by_filename);
        if (found < 0)
            err.error_message = "file not found";
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        for (size_t i = 0; found < 0 && i < r->nfiles; i++)
            if (file_has(r->files[i].fd, q->file_containing_symbol))
                found = (long)i;
        if (found < 0)
            err.error_message = "symbol not found";
        break;
    default:
        err.error_message = "this server declares no extensions; only list_services, "
                            "file_by_filename and file_containing_symbol are answered";
        break;
    }
    if (found >= 0) {
        size_t n = 0;
        collect(r, (size_t)found, seen, order, &n);
        blobs = calloc(n, sizeof(*blobs));
        if (blobs == NULL)
            abort();
        for (size_t i = 0; i < n; i++) {
            blobs[i].data = (uint8_t *)r->files[order[i]].bytes;
            blobs[i].len = r->files[order[i]].len;
        }
        files.n_file_descriptor_proto = n;
        files.file_descriptor_proto = blobs;
        resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
        resp.file_descriptor_response = &files;
    } else if (resp.message_response_case == GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET) {
        err.error_code = 5;   /* NOT_FOUND */
        resp.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &err;
    }

    *len = grpc__reflection__v1__server_reflection_response__get_packed_size(&resp);
    uint8_t *out = malloc(*len ? *len : 1);
    if (out == NULL)
        abort();
    grpc__reflection__v1__server_reflection_response__pack(&resp, out);

    if (names != NULL)
        for (size_t i = 0; i < list.n_service; i++)
            free(names[i]);
    free(names);
    free(svc);
    free(svcp);
    free(blobs);
    free(seen);
    free(order);
    grpc__reflection__v1__server_reflection_request__free_unpacked(q, NULL);
    return out;
}
