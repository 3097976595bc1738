/*
 * connect_h2.c: the Connect protocol on HTTP/2 streams: the h2_app_t
 * (h2.h) that h2.c gives streams whose content-type is application/json,
 * application/proto, application/connect+json|proto (server streams) or
 * absent (a Connect GET). The rules are connect.c's,
 * as for HTTP/1.1 (http1.c); only the framing differs: the request's
 * pseudo-headers and headers come from the stream, the answer leaves as
 * its response headers and body.
 *
 * The body is gathered up to --max-frame (beyond, it is dropped as it
 * comes and 413 answered at its end); the call starts at END_STREAM. A
 * stream the client resets cancels its call, as a native CANCEL frame
 * does. Its bytes count against the connection's budget of request bytes
 * (h2.c) until the call is done; an answer that would take the connection
 * past its bound of unread answers (conn_answer_fits) is replaced by
 * RESOURCE_EXHAUSTED (429), but for the outcome of a write.
 *
 * GET and HEAD of other paths are answered as on HTTP/1.1: /healthz, and
 * the static files of --web-root (web.h). Over TLS a browser's ALPN picks
 * HTTP/2, so the dashboard and health checks must be here too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "call.h"
#include "config.h"
#include "conn.h"
#include "connect.h"
#include "h2.h"
#include "db.h"
#include "log.h"
#include "methods.h"
#include "pbjson.h"
#include "server.h"
#include "version.h"
#include "web.h"

/* The app's state for one stream. */
typedef struct cstream {
    h2_stream_t *s;            /* the stream */
    call_t *call;              /* the call while it runs */
    connect_call_t cc;         /* Connect's view of the request */
    uint8_t *in;               /* the request body so far */
    size_t in_len, in_cap;
    int too_big;               /* the body is over --max-frame: dropped, 413 at the end */
    int headers_sent;          /* a stream's response headers are out */
    int finished;              /* answered, refused or gone: nothing more is sent */
} cstream_t;

static int media(const char *ct, const char *type)
{
    size_t n = strlen(type);
    return strncasecmp(ct, type, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static int c_match(const char *ct)
{
    return ct[0] == '\0' || media(ct, "application/json") || media(ct, "application/proto") ||
           media(ct, "application/connect+json") || media(ct, "application/connect+proto");
}

static nghttp2_nv nv(const char *name, const char *value)
{
    nghttp2_nv v = { (uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value), NGHTTP2_NV_FLAG_NONE };
    return v;
}

/* Sends r as the stream's answer (takes its body). */
static void respond(cstream_t *cs, connect_reply_t *r)
{
    if (cs->finished) {
        connect_reply_free(r);
        return;
    }
    cs->finished = 1;
    nghttp2_nv h[12];
    size_t n = 0;
    int body = r->body != NULL && r->len > 0 && r->status != 304;
    if (r->content_type != NULL && r->status != 304)
        h[n++] = nv("content-type", r->content_type);
    if (r->etag[0])
        h[n++] = nv("etag", r->etag);
    if (r->cache_control != NULL)
        h[n++] = nv("cache-control", r->cache_control);
    if (r->allow != NULL)
        h[n++] = nv("allow", r->allow);
    if (r->accept_post != NULL)
        h[n++] = nv("accept-post", r->accept_post);
    h[n++] = nv("x-content-type-options", "nosniff");
    h[n++] = nv("content-security-policy", WEB_CSP);
    h[n++] = nv("referrer-policy", WEB_REFERRER_POLICY);
    h[n++] = nv("x-frame-options", WEB_FRAME_OPTIONS);
    if (h2_stream_respond(cs->s, r->status, h, n, !body) == 0 && body) {
        uint8_t *p = h2_stream_reserve(cs->s, r->len);
        if (p != NULL) {
            memcpy(p, r->body, r->len);
            h2_stream_commit(cs->s, r->len);
        }
        h2_stream_end(cs->s, NULL, 0);
    }
    connect_reply_free(r);
}

static void refuse(cstream_t *cs, int status, const char *text)
{
    connect_reply_t r;
    connect_plain(status, text, &r);
    respond(cs, &r);
}

/* ---------------------------------------------------------------- the sink */

/* A stream's response headers, before its first envelope. Returns 0, or
 * -1 when the stream is gone. */
static int stream_begin(cstream_t *cs)
{
    if (cs->headers_sent)
        return 0;
    cs->headers_sent = 1;
    nghttp2_nv h[3] = { nv("content-type", connect_content_type(&cs->cc)), nv("cache-control", "no-store"),
                        nv("x-content-type-options", "nosniff") };
    return h2_stream_respond(cs->s, 200, h, 3, 0);
}

static void stream_put(cstream_t *cs, const pbjson_buf_t *b)
{
    uint8_t *p = h2_stream_reserve(cs->s, b->len);
    if (p != NULL) {
        memcpy(p, b->data, b->len);
        h2_stream_commit(cs->s, b->len);
    }
}

static int sink_message(call_t *c, const ProtobufCMessage *m)
{
    cstream_t *cs = c->sink_arg;
    if (cs->finished || stream_begin(cs) != 0)
        return 1;   /* gone: the call ends when the stream closes */
    pbjson_buf_t env = { 0 };
    connect_stream_message(&cs->cc, m, &env);
    stream_put(cs, &env);
    free(env.data);
    return h2_stream_full(cs->s);
}

static void sink_answer(call_t *c, const call_answer_t *a)
{
    cstream_t *cs = c->sink_arg;
    if (cs->cc.stream) {
        if (cs->finished || stream_begin(cs) != 0)
            return;
        cs->finished = 1;
        pbjson_buf_t end = { 0 };
        connect_stream_end(&cs->cc, a, &end);
        stream_put(cs, &end);
        free(end.data);
        h2_stream_end(cs->s, NULL, 0);
        return;
    }
    connect_reply_t r;
    connect_answer(&cs->cc, a, &r);
    if (r.len > 0 && !conn_answer_fits(cs->s->conn, r.len) &&
        !(c->method != NULL && (c->method->flags & METHOD_WRITE))) {
        /* The client leaves its answers unread: this one would take the
         * connection (or the server) past its bound. The outcome of a
         * write is always sent. */
        char msg[200];
        snprintf(msg, sizeof(msg), "answer of %zu bytes not sent: %zu bytes of earlier answers "
                 "are still unread on this connection; read them, then retry",
                 r.len, cs->s->conn->wqueued + cs->s->conn->kept);
        connect_reply_free(&r);
        connect_error(SENTRA_RESOURCE_EXHAUSTED, msg, &r);
    }
    respond(cs, &r);
}

static int sink_ready(call_t *c)
{
    cstream_t *cs = c->sink_arg;
    connect_reply_t r;
    if (!connect_ready(&cs->cc, c, &r))
        return 0;
    respond(cs, &r);
    return 1;
}

static void sink_done(call_t *c)
{
    cstream_t *cs = c->sink_arg;
    cs->call = NULL;
    call_unref(c);
    /* Its request bytes stop counting against the connection's budget. */
    h2_stream_release(cs->s);
}

static const call_sink_t connect_h2_sink = {
    .name = "connect-h2",
    .answer = sink_answer,
    .message = sink_message,
    .done = sink_done,
    .ready = sink_ready,
};

/* ---------------------------------------------------------------- GET and HEAD */

/* A HEAD's answer: the headers of the GET, no body (HTTP/2 forbids DATA
 * after a HEAD). */
static void drop_body(connect_reply_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* /healthz: 200 while the database pool has a connection and the server
 * is not stopping, else 503 (as on HTTP/1.1). */
static void serve_health(cstream_t *cs, int head)
{
    server_t *srv = h2_stream_server(cs->s);
    int up = db_pool_ready(srv->db);
    Sentra__V1__HealthCheckResponse resp = SENTRA__V1__HEALTH_CHECK_RESPONSE__INIT;
    int serving = up > 0 && !srv->stopping;
    resp.status = serving ? SENTRA__V1__SERVING_STATUS__SERVING_STATUS_SERVING
                          : SENTRA__V1__SERVING_STATUS__SERVING_STATUS_NOT_SERVING;
    resp.version = SENTRA_VERSION;
    resp.db_connections = up;
    connect_reply_t r;
    memset(&r, 0, sizeof(r));
    r.status = serving ? 200 : 503;
    r.content_type = "application/json";
    r.cache_control = "no-store";
    r.body = (uint8_t *)pbjson_encode(&resp.base, 0, &r.len);
    if (head)
        drop_body(&r);
    respond(cs, &r);
}

/* A file of --web-root (ETag and If-None-Match as on HTTP/1.1). */
static void serve_static(cstream_t *cs, const char *path, size_t len, int head)
{
    server_t *srv = h2_stream_server(cs->s);
    const web_file_t *f = web_find_encoded(srv->web, path, len);
    connect_reply_t r;
    if (f == NULL) {
        connect_plain(404, srv->web == NULL ? "not found (no --web-root to serve)" : "not found", &r);
        if (head)
            drop_body(&r);
        respond(cs, &r);
        return;
    }
    memset(&r, 0, sizeof(r));
    memcpy(r.etag, f->etag, sizeof(f->etag));
    r.cache_control = f->cache_control;
    const char *inm = h2_stream_header(cs->s, "if-none-match");
    if (inm != NULL && strstr(inm, f->etag) != NULL) {
        r.status = 304;
        respond(cs, &r);
        return;
    }
    r.status = 200;
    r.content_type = f->content_type;
    if (!head && f->len > 0) {
        if ((r.body = malloc(f->len)) == NULL)
            abort();
        memcpy(r.body, f->data, f->len);
        r.len = f->len;
    }
    respond(cs, &r);
}

/* ---------------------------------------------------------------- streams */

static void c_on_headers(h2_stream_t *s)
{
    cstream_t *cs = calloc(1, sizeof(*cs));
    if (cs == NULL)
        abort();
    cs->s = s;
    s->app_data = cs;
    const char *cl = h2_stream_header(s, "content-length");
    uint32_t max = h2_stream_server(s)->cfg->max_frame;
    if (cl != NULL && strtoull(cl, NULL, 10) > max)
        cs->too_big = 1;
}

static void c_on_data(h2_stream_t *s, const uint8_t *data, size_t len)
{
    cstream_t *cs = s->app_data;
    uint32_t max = h2_stream_server(s)->cfg->max_frame;
    if (cs != NULL && !cs->finished && !cs->too_big && cs->in_len + len > max) {
        free(cs->in);
        cs->in = NULL;
        cs->in_len = cs->in_cap = 0;
        cs->too_big = 1;
    }
    if (cs == NULL || cs->finished || cs->too_big) {
        /* Dropped as it comes: what a refused request sends costs no
         * memory. */
        h2_stream_release(s);
        return;
    }
    if (cs->in_len + len > cs->in_cap) {
        size_t cap = cs->in_cap ? cs->in_cap : 4096;
        while (cap < cs->in_len + len)
            cap *= 2;
        uint8_t *p = realloc(cs->in, cap);
        if (p == NULL)
            abort();
        cs->in = p;
        cs->in_cap = cap;
    }
    memcpy(cs->in + cs->in_len, data, len);
    cs->in_len += len;
    /* Not released: the body counts against the connection's budget
     * until its call is done. */
}

static void c_request(cstream_t *cs, h2_stream_t *s);

static void c_on_end(h2_stream_t *s)
{
    cstream_t *cs = s->app_data;
    if (cs == NULL || cs->finished)
        return;
    if (cs->too_big) {
        /* Answered once the client has sent it all: a response with the
         * stream still open from its side would be followed by a reset,
         * which some clients report instead of the answer. */
        refuse(cs, 413, "request body larger than --max-frame");
        return;
    }
    c_request(cs, s);
    if (cs->call == NULL)
        h2_stream_release(s);    /* answered without a call (or it is over) */
}

/* The whole request is in: a call, or the answer that refuses it. */
static void c_request(cstream_t *cs, h2_stream_t *s)
{
    const char *method = h2_stream_header(s, ":method");
    const char *full = h2_stream_header(s, ":path");
    if (method == NULL || full == NULL) {
        refuse(cs, 400, "a request needs :method and :path");
        return;
    }
    size_t plen = strcspn(full, "?");
    char *path = strndup(full, plen);
    if (path == NULL)
        abort();
    const char *query = full[plen] == '?' ? full + plen + 1 : NULL;
    if (!connect_is_procedure(path, plen)) {
        int get = strcmp(method, "GET") == 0, head = strcmp(method, "HEAD") == 0;
        if ((get || head) && strcmp(path, "/healthz") == 0)
            serve_health(cs, head);
        else if (get || head)
            serve_static(cs, path, plen, head);
        else
            refuse(cs, 404, "not found: procedures are at /sentra.v1.<Service>/<Method>");
        free(path);
        return;
    }
    size_t nh = h2_stream_nheaders(s), k = 0;
    call_md_t md_small[32], *md = md_small;
    if (nh > sizeof(md_small) / sizeof(md_small[0]) && (md = malloc(nh * sizeof(*md))) == NULL)
        abort();
    for (size_t i = 0; i < nh; i++) {
        const char *name, *value;
        h2_stream_header_at(s, i, &name, &value);
        if (name[0] == ':')
            continue;
        md[k].key = name;
        md[k].value = value;
        k++;
    }
    connect_reply_t r;
    if (connect_prepare(&cs->cc, method, path, plen, query, md, k, cs->in, cs->in_len, &r) != 0) {
        respond(cs, &r);
    } else {
        cs->cc.req.auth_memo = &s->conn->auth_memo;
        cs->call = call_new(h2_stream_server(s), &connect_h2_sink, cs, (uint32_t)s->id);
        call_start(cs->call, &cs->cc.req);
    }
    /* call_start copied what it keeps. */
    if (md != md_small)
        free(md);
    free(path);
    free(cs->in);
    cs->in = NULL;
    cs->in_len = cs->in_cap = 0;
}

static void c_on_drained(h2_stream_t *s)
{
    cstream_t *cs = s->app_data;
    if (cs != NULL && cs->call != NULL)
        call_writable(cs->call);
}

static void c_on_close(h2_stream_t *s, uint32_t error_code)
{
    cstream_t *cs = s->app_data;
    if (cs == NULL)
        return;
    cs->finished = 1;
    if (cs->call != NULL) {
        call_t *c = cs->call;
        if (s->conn->state != CONN_CLOSING) {
            /* Reset by the client: the call and its statement stop. */
            log_debug("connect_stream_reset", "peer=%s stream=%d code=%u", s->conn->peer, s->id, error_code);
            call_cancel(c, SENTRA_CANCELLED);
        }
        if (cs->call != NULL) {
            cs->call = NULL;
            call_detach(c);
        }
    }
    connect_call_free(&cs->cc);
    free(cs->in);
    free(cs);
    s->app_data = NULL;
}

const h2_app_t sentra__h2_connect_app = {
    .name = "connect",
    .match = c_match,
    .on_headers = c_on_headers,
    .on_data = c_on_data,
    .on_end = c_on_end,
    .on_drained = c_on_drained,
    .on_close = c_on_close,
};
