/*
 * grpc.c: gRPC over HTTP/2 (gRPC's PROTOCOL-HTTP2 document), an h2_app_t
 * on the streams of h2.c.
 *
 * A request stream (POST, content-type application/grpc[+proto]) carries
 * length-prefixed messages (1 flag byte, 4 bytes big-endian length). For
 * the methods of the dispatch table (core/methods.c) its one request
 * message becomes a call, exactly as a native REQUEST frame does: the
 * same call_new/call_start, so every handler, deadline, scope check and
 * request log is shared. The answer comes back through the sink below:
 * response headers, DATA with the prefixed message, trailers with
 * grpc-status and grpc-message; an error before any message is one
 * trailers-only HEADERS frame. INVALID_ARGUMENT carries the field
 * violations in grpc-status-details-bin (google.rpc.Status with a
 * google.rpc.BadRequest), ABORTED on a version conflict the version the
 * server holds in the sentra-current-version trailer.
 *
 * Bounds (docs/PROTOCOL.md, limits): an answer that would take the
 * connection past its bound of unread answers (conn_answer_fits: the
 * stream buffers count, h2.c) is replaced by RESOURCE_EXHAUSTED, but for
 * the outcome of a write; a request's bytes count against the
 * connection's budget (h2.c) until its call is done.
 *
 * Server streaming (METHOD_STREAM): each call_send() is one message;
 * the sink says "full" (returns 1) once H2_STREAM_HIGH bytes wait in the
 * stream or the socket's queue is full, and h2.c's on_drained resumes the
 * handler through call_writable().
 *
 * Server reflection (grpc.reflection.v1 and v1alpha ServerReflectionInfo)
 * is bidirectional streaming and needs no token or database, so it does
 * not go through call.c: each request message is answered at once by
 * services/reflection.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "config.h"
#include "conn.h"
#include "h2.h"
#include "log.h"
#include "methods.h"
#include "reflection.h"
#include "server.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define GRPC_PREFIX 5

enum gmode { G_CALL, G_REFLECTION };

/* The gRPC state of one stream. */
typedef struct gstream {
    h2_stream_t *s;                /* the stream */
    call_t *call;                  /* the call while it runs (G_CALL) */
    enum gmode mode;               /* a call (call.c), or reflection (answered here) */
    uint8_t *in;                   /* request bytes: prefixed messages */
    size_t in_len, in_cap;
    size_t in_off;                 /* where the message being read starts */
    int nmsg;                      /* complete request messages seen */
    uint32_t timeout_ms;           /* grpc-timeout; 0: none */
    const char *path;              /* :path (the stream's header), or NULL */
    int headers;                   /* response headers sent (a message went) */
    int finished;                  /* status sent (or refused): ignore input */
} gstream_t;

static uint32_t max_message(const h2_stream_t *s)
{
    return h2_stream_server(s)->cfg->max_frame;
}

/* ---------------------------------------------------------------- status */

static const nghttp2_nv ct_grpc = {
    (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE
};

static nghttp2_nv nv_str(const char *name, const char *value)
{
    return (nghttp2_nv){ (uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                         NGHTTP2_NV_FLAG_NONE };
}

/* gRPC's percent-encoding of grpc-message: 0x20-0x7E but '%' pass. */
static char *percent_encode(const char *msg)
{
    size_t n = strlen(msg);
    char *out = malloc(3 * n + 1), *p = out;
    if (out == NULL)
        abort();
    for (const unsigned char *q = (const unsigned char *)msg; *q; q++) {
        if (*q >= 0x20 && *q <= 0x7e && *q != '%') {
            *p++ = (char)*q;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            *p++ = '%';
            *p++ = hex[*q >> 4];
            *p++ = hex[*q & 15];
        }
    }
    *p = '\0';
    return out;
}

/* Unpadded base64, as gRPC sends -bin metadata. */
static char *base64(const uint8_t *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((len + 2) / 3) + 1), *p = out;
    if (out == NULL)
        abort();
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *p++ = tab[v >> 18];
        *p++ = tab[(v >> 12) & 63];
        *p++ = tab[(v >> 6) & 63];
        *p++ = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        *p++ = tab[v >> 18];
        *p++ = tab[(v >> 12) & 63];
        if (i + 1 < len)
            *p++ = tab[(v >> 6) & 63];
    }
    *p = '\0';
    return out;
}

/* google.rpc.Status{code, message, details: [BadRequest{violations}]},
 * serialized and base64'ed for grpc-status-details-bin. */
static char *status_details(int code, const char *message, const violations_t *v)
{
    Google__Rpc__BadRequest br = GOOGLE__RPC__BAD_REQUEST__INIT;
    Google__Rpc__BadRequest__FieldViolation *fv = calloc(v->n, sizeof(*fv));
    Google__Rpc__BadRequest__FieldViolation **fvp = calloc(v->n, sizeof(*fvp));
    if (fv == NULL || fvp == NULL)
        abort();
    for (size_t i = 0; i < v->n; i++) {
        google__rpc__bad_request__field_violation__init(&fv[i]);
        fv[i].field = v->items[i]->field;
        fv[i].description = v->items[i]->description;
        fvp[i] = &fv[i];
    }
    br.n_field_violations = v->n;
    br.field_violations = fvp;
    size_t blen = google__rpc__bad_request__get_packed_size(&br);
    uint8_t *bbuf = malloc(blen ? blen : 1);
    if (bbuf == NULL)
        abort();
    google__rpc__bad_request__pack(&br, bbuf);

    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "type.googleapis.com/google.rpc.BadRequest";
    any.value.data = bbuf;
    any.value.len = blen;
    Google__Protobuf__Any *anyp = &any;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = code;
    st.message = (char *)message;
    st.n_details = 1;
    st.details = &anyp;
    size_t slen = google__rpc__status__get_packed_size(&st);
    uint8_t *sbuf = malloc(slen ? slen : 1);
    if (sbuf == NULL)
        abort();
    google__rpc__status__pack(&st, sbuf);
    char *b64 = base64(sbuf, slen);
    free(sbuf);
    free(bbuf);
    free(fvp);
    free(fv);
    return b64;
}

/* Sends the status: as trailers after the messages, or, when nothing was
 * sent yet, as one HEADERS frame holding headers and status
 * (trailers-only, with accept_encoding when given). */
static void send_status(gstream_t *g, int code, const char *message, const violations_t *v,
                        int64_t current_version, const char *accept_encoding)
{
    h2_stream_t *s = g->s;
    g->finished = 1;
    if (!h2_stream_open(s))
        return;
    char codebuf[12], verbuf[24];
    char *msg = NULL, *details = NULL;
    nghttp2_nv nv[7];
    size_t n = 0;
    if (!g->headers)
        nv[n++] = ct_grpc;
    snprintf(codebuf, sizeof(codebuf), "%d", code);
    nv[n++] = nv_str("grpc-status", codebuf);
    if (message != NULL && message[0]) {
        msg = percent_encode(message);
        nv[n++] = nv_str("grpc-message", msg);
    }
    if (v != NULL && v->n > 0) {
        details = status_details(code, message ? message : "", v);
        nv[n++] = nv_str("grpc-status-details-bin", details);
    }
    if (code == SENTRA_ABORTED && current_version != 0) {
        snprintf(verbuf, sizeof(verbuf), "%" PRId64, current_version);
        nv[n++] = nv_str("sentra-current-version", verbuf);
    }
    if (accept_encoding != NULL)
        nv[n++] = nv_str("grpc-accept-encoding", accept_encoding);
    if (g->headers)
        h2_stream_end(s, nv, n);
    else
        h2_stream_respond(s, 200, nv, n, 1);
    free(msg);
    free(details);
}

/* The status, whichever way fits what was sent. */
static void finish(gstream_t *g, int code, const char *message, const violations_t *v,
                   int64_t current_version)
{
    if (!g->finished)
        send_status(g, code, message, v, current_version, NULL);
}

/* ---------------------------------------------------------------- messages */

/* Response headers, once, before the first message. */
static int ensure_headers(gstream_t *g)
{
    if (g->headers)
        return 0;
    if (h2_stream_respond(g->s, 200, &ct_grpc, 1, 0) != 0)
        return -1;
    g->headers = 1;
    return 0;
}

/* Packs m (n bytes packed) as one length-prefixed message straight into
 * the stream's buffer. Returns 0, or -1 when the stream is gone or m is
 * over the limit (the status then says so). */
static int send_message(gstream_t *g, const ProtobufCMessage *m, size_t n)
{
    if (n > max_message(g->s)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "response of %zu bytes is larger than the limit of %" PRIu32
                 " bytes; ask for less (a smaller page)", n, max_message(g->s));
        finish(g, SENTRA_RESOURCE_EXHAUSTED, msg, NULL, 0);
        return -1;
    }
    if (ensure_headers(g) != 0)
        return -1;
    uint8_t *p = h2_stream_reserve(g->s, GRPC_PREFIX + n);
    if (p == NULL)
        return -1;
    p[0] = 0;
    p[1] = (uint8_t)(n >> 24);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 8);
    p[4] = (uint8_t)n;
    protobuf_c_message_pack(m, p + GRPC_PREFIX);
    h2_stream_commit(g->s, GRPC_PREFIX + n);
    return 0;
}

/* ---------------------------------------------------------------- the sink */

static void sink_answer(call_t *c, const call_answer_t *a)
{
    gstream_t *g = c->sink_arg;
    if (g == NULL || g->finished)
        return;
    if (a->code == SENTRA_OK && a->payload != NULL) {
        size_t n = protobuf_c_message_get_packed_size(a->payload);
        if (!conn_answer_fits(g->s->conn, GRPC_PREFIX + n) &&
            !(c->method != NULL && (c->method->flags & METHOD_WRITE))) {
            /* The client leaves its answers unread: this one would take
             * the connection (or the server) past its bound. The outcome
             * of a write is always sent. */
            char msg[200];
            snprintf(msg, sizeof(msg), "answer of %zu bytes not sent: %zu bytes of earlier answers "
                     "are still unread on this connection; read them, then retry",
                     n, g->s->conn->wqueued + g->s->conn->kept);
            finish(g, SENTRA_RESOURCE_EXHAUSTED, msg, NULL, 0);
            return;
        }
        if (send_message(g, a->payload, n) != 0)
            return;
    }
    finish(g, a->code, a->message, a->violations, a->current_version);
}

static int sink_message(call_t *c, const ProtobufCMessage *m)
{
    gstream_t *g = c->sink_arg;
    /* When the stream's status already left (a response over the limit,
     * or the client went), say "full": the handler waits for a writable
     * that never comes, and the call ends when the stream closes
     * (g_on_close cancels it), instead of producing into nothing. */
    if (g == NULL || g->finished || send_message(g, m, protobuf_c_message_get_packed_size(m)) != 0)
        return 1;
    return h2_stream_full(g->s);
}

static void sink_done(call_t *c)
{
    gstream_t *g = c->sink_arg;
    g->call = NULL;
    call_unref(c);
    /* Its request bytes stop counting against the connection's budget. */
    h2_stream_release(g->s);
}

static const call_sink_t grpc_sink = {
    .name = "grpc",
    .answer = sink_answer,
    .message = sink_message,
    .done = sink_done,
};

/* ---------------------------------------------------------------- requests */

/* grpc-timeout: 1-8 digits and a unit (H M S m u n). Returns 0 with *ms
 * set (rounded up, at least 1, capped), or -1 when malformed. */
static int parse_timeout(const char *v, uint32_t *ms)
{
    size_t len = strlen(v);
    if (len < 2 || len > 9)
        return -1;
    uint64_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    uint64_t out;
    switch (v[len - 1]) {
    case 'H': out = n * 3600000; break;
    case 'M': out = n * 60000; break;
    case 'S': out = n * 1000; break;
    case 'm': out = n; break;
    case 'u': out = (n + 999) / 1000; break;
    case 'n': out = (n + 999999) / 1000000; break;
    default: return -1;
    }
    if (out == 0)
        out = 1;            /* 0 would mean "the server's default" */
    *ms = out > UINT32_MAX ? UINT32_MAX : (uint32_t)out;
    return 0;
}

static int is_reflection(const char *path)
{
    return strcmp(path, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo") == 0 ||
           strcmp(path, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") == 0;
}

/* Headers that are the transport's, not metadata for handlers. */
static int reserved_header(const char *name)
{
    return name[0] == ':' || strncmp(name, "grpc-", 5) == 0 || strcmp(name, "te") == 0 ||
           strcmp(name, "content-type") == 0 || strcmp(name, "content-length") == 0 ||
           strcmp(name, "connection") == 0 || strcmp(name, "host") == 0;
}

static int g_match(const char *ct)
{
    return strncmp(ct, "application/grpc", 16) == 0 && (ct[16] == '\0' || ct[16] == '+' || ct[16] == ';');
}

static void g_on_headers(h2_stream_t *s)
{
    gstream_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        abort();
    g->s = s;
    s->app_data = g;

    /* The headers read here, in one pass (the first of each name, as
     * h2_stream_header would find it). */
    const char *method = NULL, *path = NULL, *ct = NULL, *enc = NULL, *timeout = NULL;
    for (size_t i = 0, n = h2_stream_nheaders(s); i < n; i++) {
        const char *name, *value, **want = NULL;
        h2_stream_header_at(s, i, &name, &value);
        if (name[0] == ':')
            want = strcmp(name, ":method") == 0 ? &method : strcmp(name, ":path") == 0 ? &path : NULL;
        else if (name[0] == 'c')
            want = strcmp(name, "content-type") == 0 ? &ct : NULL;
        else if (name[0] == 'g')
            want = strcmp(name, "grpc-encoding") == 0 ? &enc : strcmp(name, "grpc-timeout") == 0 ? &timeout : NULL;
        if (want != NULL && *want == NULL)
            *want = value;
    }
    g->path = path;

    if (method == NULL || strcmp(method, "POST") != 0) {
        send_status(g, SENTRA_UNIMPLEMENTED, "gRPC calls are POST requests", NULL, 0, NULL);
        return;
    }
    /* application/grpc, application/grpc+proto, with parameters or not. */
    if (ct[16] == '+' && strncmp(ct + 17, "proto", 5) != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "content-type \"%.80s\" is not served: use application/grpc+proto", ct);
        send_status(g, SENTRA_UNIMPLEMENTED, msg, NULL, 0, NULL);
        return;
    }
    if (enc != NULL && strcmp(enc, "identity") != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "grpc-encoding \"%.60s\" is not supported; this server reads identity", enc);
        send_status(g, SENTRA_UNIMPLEMENTED, msg, NULL, 0, "identity");
        return;
    }
    if (timeout != NULL && parse_timeout(timeout, &g->timeout_ms) != 0) {
        send_status(g, SENTRA_INVALID_ARGUMENT, "malformed grpc-timeout", NULL, 0, NULL);
        return;
    }
    g->mode = path != NULL && is_reflection(path) ? G_REFLECTION : G_CALL;
}

/* One complete reflection request: answered at once. */
static void reflect(gstream_t *g, const uint8_t *msg, size_t len)
{
    size_t outlen = 0;
    uint8_t *out = reflection_answer(h2_stream_server(g->s), msg, len, &outlen);
    if (out == NULL) {
        finish(g, SENTRA_INVALID_ARGUMENT, "not a valid ServerReflectionRequest", NULL, 0);
        return;
    }
    if (!conn_answer_fits(g->s->conn, GRPC_PREFIX + outlen)) {
        /* A client that asks and never reads gets an error, not our
         * memory. */
        free(out);
        finish(g, SENTRA_RESOURCE_EXHAUSTED, "reflection answers are not being read", NULL, 0);
        return;
    }
    if (ensure_headers(g) != 0) {
        free(out);
        return;
    }
    uint8_t *p = h2_stream_reserve(g->s, GRPC_PREFIX + outlen);
    if (p != NULL) {
        p[0] = 0;
        p[1] = (uint8_t)(outlen >> 24);
        p[2] = (uint8_t)(outlen >> 16);
        p[3] = (uint8_t)(outlen >> 8);
        p[4] = (uint8_t)outlen;
        memcpy(p + GRPC_PREFIX, out, outlen);
        h2_stream_commit(g->s, GRPC_PREFIX + outlen);
    }
    free(out);
}

static void g_on_data(h2_stream_t *s, const uint8_t *data, size_t len)
{
    gstream_t *g = s->app_data;
    if (g == NULL || g->finished) {
        h2_stream_release(s);
        return;
    }
    while (len > 0 && !g->finished) {
        /* Take at most the rest of the current message (or its prefix). */
        size_t have = g->in_len - g->in_off, need;
        if (have < GRPC_PREFIX) {
            need = GRPC_PREFIX - have;
        } else {
            const uint8_t *h = g->in + g->in_off;
            uint32_t mlen = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
            need = GRPC_PREFIX + (size_t)mlen - have;
        }
        size_t take = len < need ? len : need;
        if (g->in_len + take > g->in_cap) {
            size_t cap = g->in_cap ? g->in_cap : 256;
            while (cap < g->in_len + take)
                cap *= 2;
            uint8_t *p = realloc(g->in, cap);
            if (p == NULL)
                abort();
            g->in = p;
            g->in_cap = cap;
        }
        memcpy(g->in + g->in_len, data, take);
        g->in_len += take;
        data += take;
        len -= take;
        have = g->in_len - g->in_off;
        if (have < GRPC_PREFIX)
            break;
        const uint8_t *h = g->in + g->in_off;
        uint32_t mlen = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
        if (have == GRPC_PREFIX) {
            /* The prefix is complete: check it before taking the body. */
            if (h[0] & 1) {
                finish(g, SENTRA_INTERNAL, "compressed message without a grpc-encoding", NULL, 0);
                break;
            }
            if (h[0] != 0) {
                finish(g, SENTRA_INTERNAL, "unknown flags in the message prefix", NULL, 0);
                break;
            }
            if (mlen > max_message(s)) {
                char msg[128];
                snprintf(msg, sizeof(msg), "received message larger than max (%" PRIu32 " vs. %" PRIu32 ")",
                         mlen, max_message(s));
                finish(g, SENTRA_RESOURCE_EXHAUSTED, msg, NULL, 0);
                break;
            }
        }
        if (have < GRPC_PREFIX + (size_t)mlen)
            continue;
        /* One whole message. */
        g->nmsg++;
        if (g->mode == G_REFLECTION) {
            reflect(g, g->in + g->in_off + GRPC_PREFIX, mlen);
            g->in_len = g->in_off = 0;
        } else if (g->nmsg > 1) {
            finish(g, SENTRA_INVALID_ARGUMENT, "this method takes exactly one request message", NULL, 0);
        } else {
            g->in_off = g->in_len;   /* kept for on_end; more bytes start a second message */
        }
    }
    if (g->mode == G_REFLECTION || g->finished)
        h2_stream_release(s);
}

static void g_on_end(h2_stream_t *s)
{
    gstream_t *g = s->app_data;
    if (g == NULL || g->finished)
        return;
    if (g->mode == G_REFLECTION) {
        if (g->in_len > 0)
            finish(g, SENTRA_INTERNAL, "request ended inside a message", NULL, 0);
        else
            finish(g, SENTRA_OK, NULL, NULL, 0);
        return;
    }
    if (g->nmsg != 1 || g->in_len != g->in_off) {
        finish(g, g->nmsg == 0 && g->in_len == 0 ? SENTRA_INVALID_ARGUMENT : SENTRA_INTERNAL,
               g->nmsg == 0 && g->in_len == 0 ? "this method takes exactly one request message"
                                              : "request ended inside a message",
               NULL, 0);
        h2_stream_release(s);
        return;
    }

    /* Metadata for the call: every header but the transport's own. */
    size_t nh = h2_stream_nheaders(s), k = 0;
    call_md_t md_small[16], *md = md_small;
    if (nh > sizeof(md_small) / sizeof(md_small[0]) && (md = malloc(nh * sizeof(*md))) == NULL)
        abort();
    for (size_t i = 0; i < nh; i++) {
        const char *name, *value;
        h2_stream_header_at(s, i, &name, &value);
        if (reserved_header(name))
            continue;
        md[k].key = name;
        md[k].value = value;
        k++;
    }
    call_request_t r = {
        .method = g->path ? g->path : "",
        .payload = g->in + GRPC_PREFIX,
        .len = g->in_len - GRPC_PREFIX,
        .codec = CALL_CODEC_PROTO,
        .timeout_ms = g->timeout_ms,
        .md = md,
        .n_md = k,
        .auth_memo = &s->conn->auth_memo,
    };
    g->call = call_new(h2_stream_server(s), &grpc_sink, g, (uint32_t)s->id);
    call_start(g->call, &r);
    if (md != md_small)
        free(md);
    /* call_start copied what it keeps; the bytes count until the call is
     * done (sink_done), as the native protocol counts its frames. */
    free(g->in);
    g->in = NULL;
    g->in_len = g->in_off = g->in_cap = 0;
}

static void g_on_drained(h2_stream_t *s)
{
    gstream_t *g = s->app_data;
    if (g != NULL && g->call != NULL)
        call_writable(g->call);
}

static void g_on_close(h2_stream_t *s, uint32_t error_code)
{
    gstream_t *g = s->app_data;
    if (g == NULL)
        return;
    g->finished = 1;
    if (g->call != NULL) {
        call_t *c = g->call;
        if (s->conn->state == CONN_CLOSING) {
            /* The connection is going: no answer can leave. */
            g->call = NULL;
            c->sink_arg = NULL;
            call_detach(c);
        } else {
            /* RST_STREAM from the client (CANCEL, or any code): the call
             * is cancelled as a native CANCEL frame would (its statement
             * too); the answer finds the stream closed and is dropped. */
            log_debug("grpc_stream_reset", "peer=%s stream=%d code=%u", s->conn->peer, s->id, error_code);
            call_cancel(c, SENTRA_CANCELLED);
            if (g->call != NULL) {
                g->call = NULL;
                c->sink_arg = NULL;
                call_detach(c);
            }
        }
    }
    free(g->in);
    free(g);
    s->app_data = NULL;
}

const h2_app_t sentra__h2_grpc_app = {
    .name = "grpc",
    .match = g_match,
    .on_headers = g_on_headers,
    .on_data = g_on_data,
    .on_end = g_on_end,
    .on_drained = g_on_drained,
    .on_close = g_on_close,
};
