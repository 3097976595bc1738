/*
 * http1.c: HTTP/1.1 on a connection (conn.c chooses it when the first
 * byte is an upper-case letter, the start of a request line), parsed by
 * http-parser (Debian libhttp-parser-dev). What it serves:
 *
 *   POST|GET /sentra.v1.Service/Method   the Connect protocol (connect.c),
 *                                        unary and server streams (chunked)
 *   GET|HEAD /healthz                    200 serving / 503 not (JSON)
 *   OPTIONS *                            CORS preflight (--cors-origin)
 *   GET|HEAD /...                        the dashboard's files (web.c)
 *
 * Keep-alive with pipelining: requests are read ahead of their answers (at
 * most H1_MAX_PIPELINE, then reading stops) and answered in the order they
 * came, each as soon as it and every answer before it are ready. Limits,
 * each answered and then the connection closed (what follows a broken
 * request cannot be trusted to be the next one): request line and headers
 * above H1_MAX_HEADER_BYTES or H1_MAX_HEADERS (431), a URL above H1_MAX_URL
 * (414), a body above --max-frame (413, before reading it when
 * Content-Length says so), a request that has not arrived whole within
 * --http-request-timeout of its first byte (408), anything http-parser
 * refuses (400). Connections idle for --idle-timeout are closed.
 *
 * Memory (docs/PROTOCOL.md, limits), as for the native protocol:
 *
 *   - A request's body stays in the connection's read buffer (conn.c)
 *     until all of it has come: it counts among the server's partial
 *     frames, bounded in total, the oldest sent away (503). Only then is
 *     it parsed, in one pass (body_wait: a copy of the parser scans ahead
 *     for the end of a chunked body, from where it stopped).
 *   - Request bytes of calls in flight: past H1_INFLIGHT_MAX the
 *     connection is not read until they are under H1_INFLIGHT_LOW.
 *   - Answers kept here (behind an earlier one, or a stream's unwritten
 *     part) count as waiting for the client (conn_kept); an answer that
 *     would take the connection past its bound of unread answers
 *     (conn_answer_fits) is replaced by RESOURCE_EXHAUSTED (429), but for
 *     the outcome of a write.
 */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "call.h"
#include "config.h"
#include "conn.h"
#include "connect.h"
#include "log.h"
#include "methods.h"
#include "pbjson.h"
#include "server.h"
#include "version.h"
#include "web.h"

#define H1_MAX_HEADER_BYTES (16 * 1024)  /* request line and headers */
#define H1_MAX_HEADERS 64
#define H1_MAX_URL 8192
#define H1_MAX_PIPELINE 16               /* requests read ahead of their answers */
#define H1_STREAM_HIGH (64 * 1024)       /* a stream not yet at the head pauses above this */
#define H1_INFLIGHT_MAX ((size_t)8 << 20) /* request bytes of calls in flight: stop reading */
#define H1_INFLIGHT_LOW ((size_t)4 << 20) /* ... and read again below this */

struct h1;

/* One request and its answer, in arrival order. */
typedef struct exchange {
    struct exchange *next;     /* the next request of the connection */
    struct h1 *h;              /* the connection's state */
    call_t *call;              /* the call while it runs (then NULL) */
    connect_call_t cc;         /* Connect's view of the request */
    int is_connect;            /* cc is in use */
    int ready;                 /* out holds the whole answer */
    uint8_t *out;              /* the answer's bytes (status line to body), or
                                * what a stream has not written yet */
    size_t outlen, outcap;
    size_t kept;               /* what out counts in conn->kept */
    size_t req_bytes;          /* the request's bytes, in h->inflight while its call runs */
    int headers_sent;          /* a stream's status line and headers are in out (or gone) */
    int waiting;               /* a stream's handler waits for call_writable */
    int keep_alive;            /* the connection may carry another request */
    int head;                  /* HEAD: headers without the body */
    int http10;                /* an HTTP/1.0 request */
    char *origin;              /* the request's Origin when CORS allows it, or NULL */
    int vary_origin;           /* answers depend on Origin (an allow-list is set) */
} exchange_t;

/* The protocol's state for one connection. */
typedef struct h1 {
    struct conn *conn;         /* the socket */
    http_parser parser;        /* http-parser's state */
    /* The request being read. hbuf holds the URL, then each header name
     * and value, NUL-terminated; offsets because it grows. */
    char *hbuf;
    size_t hlen, hcap;
    size_t url_len;            /* the URL is hbuf[0..url_len) */
    struct { size_t name, value; } hdr[H1_MAX_HEADERS];
    size_t nh;                 /* headers read */
    int in_value;              /* the last piece was part of a value */
    uint8_t *body;             /* the body, when copied (a chunked one) ... */
    const uint8_t *bref;       /* ... or where it lies in the bytes being parsed */
    size_t blen, bcap;
    int body_wait;             /* headers read: waiting until the whole body is here */
    http_parser scan;          /* a copy of parser that looks ahead for the body's end */
    size_t scan_used;          /* bytes it took, from the body's start */
    size_t scan_body;          /* body bytes it saw */
    int status;                /* a limit hit in a callback: 413, 414, 431 */
    int complete;              /* on_message_complete came */
    int reading;               /* a request has begun and not yet completed */
    uint64_t started_ms;       /* its first byte */
    /* Answers to send, in order. */
    exchange_t *head, *tail;
    int n;                     /* exchanges queued */
    int held;                  /* reading stopped: H1_MAX_PIPELINE or H1_INFLIGHT_MAX reached */
    size_t inflight;           /* request bytes of calls in flight (x->req_bytes) */
    int in_bytes;              /* inside on_bytes (no nested feeding) */
    int closing;               /* no more requests: answer the queue, then close */
    uint64_t last_ms;          /* the last answer went out (idle timeout) */
} h1_t;

static h1_t *state(struct conn *c)
{
    return c->proto_state;
}

/* x's output now holds n bytes of memory (conn_kept). */
static void kept_set(exchange_t *x, size_t n)
{
    conn_kept(x->h->conn, (ptrdiff_t)n - (ptrdiff_t)x->kept);
    x->kept = n;
}

/* ---------------------------------------------------------------- answers */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "Status";
}

/* The Date header's value, formatted once a second. */
static const char *http_date(void)
{
    static _Thread_local char buf[40];
    static _Thread_local time_t when;
    time_t now = time(NULL);
    if (now != when || buf[0] == '\0') {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        when = now;
    }
    return buf;
}

static void add_str(pbjson_buf_t *b, const char *s)
{
    pbjson_buf_add(b, s, strlen(s));
}

static void add_num(pbjson_buf_t *b, unsigned long long v)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    pbjson_buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* "Name: value\r\n" */
static void add_header(pbjson_buf_t *b, const char *name_colon_space, const char *value)
{
    add_str(b, name_colon_space);
    add_str(b, value);
    pbjson_buf_add(b, "\r\n", 2);
}

/* The status line and headers of x's answer into b. With len -1 the body
 * is chunked (a stream), or for HTTP/1.0 runs to the connection's close.
 * Written piece by piece rather than through snprintf: this runs for
 * every answer, and formatting cost more than the rest of the framing. */
static void head_lines(exchange_t *x, const connect_reply_t *r, const char *extra, long long len,
                       pbjson_buf_t *b)
{
    int bodyless = r->status == 304 || r->status == 204 || r->status < 200;
    pbjson_buf_reserve(b, 1024);
    pbjson_buf_add(b, "HTTP/1.1 ", 9);
    add_num(b, (unsigned)r->status);
    pbjson_buf_add(b, " ", 1);
    add_str(b, reason(r->status));
    pbjson_buf_add(b, "\r\n", 2);
    add_header(b, "Date: ", http_date());
    if (!bodyless) {
        if (r->content_type != NULL)
            add_header(b, "Content-Type: ", r->content_type);
        if (len >= 0) {
            pbjson_buf_add(b, "Content-Length: ", 16);
            add_num(b, (unsigned long long)len);
            pbjson_buf_add(b, "\r\n", 2);
        } else if (!x->http10) {
            add_str(b, "Transfer-Encoding: chunked\r\n");
        }
    }
    if (r->etag[0])
        add_header(b, "ETag: ", r->etag);
    if (r->cache_control != NULL)
        add_header(b, "Cache-Control: ", r->cache_control);
    if (r->allow != NULL)
        add_header(b, "Allow: ", r->allow);
    if (r->accept_post != NULL)
        add_header(b, "Accept-Post: ", r->accept_post);
    if (x->origin != NULL) {
        pbjson_buf_add(b, "Access-Control-Allow-Origin: ", 29);
        pbjson_buf_add(b, x->origin, strlen(x->origin));
        pbjson_buf_add(b, "\r\nAccess-Control-Expose-Headers: " CONNECT_CORS_EXPOSE "\r\n",
                       strlen("\r\nAccess-Control-Expose-Headers: " CONNECT_CORS_EXPOSE "\r\n"));
    }
    if (x->vary_origin)
        pbjson_buf_add(b, "Vary: Origin\r\n", 14);
    if (extra != NULL)
        pbjson_buf_add(b, extra, strlen(extra));
    pbjson_buf_add(b, WEB_SECURITY_HEADERS, strlen(WEB_SECURITY_HEADERS));
    if (!x->keep_alive)
        pbjson_buf_add(b, "Connection: close\r\n", 19);
    else if (x->http10)
        pbjson_buf_add(b, "Connection: keep-alive\r\n", 24);
    pbjson_buf_add(b, "\r\n", 2);
}

/* Frames r as x's answer (takes r's body) and marks x ready. extra: more
 * header lines ("Name: value\r\n"), or NULL. */
static void set_answer(exchange_t *x, connect_reply_t *r, const char *extra)
{
    pbjson_buf_t b = { 0 };
    int bodyless = r->status == 304 || r->status == 204 || r->status < 200;
    int with_body = !bodyless && !x->head && r->len > 0;
    pbjson_buf_reserve(&b, 1024 + (with_body ? r->len : 0));   /* one allocation */
    head_lines(x, r, extra, (long long)r->len, &b);
    if (with_body)
        pbjson_buf_add(&b, (const char *)r->body, r->len);
    connect_reply_free(r);
    free(x->out);
    x->out = (uint8_t *)b.data;
    x->outlen = b.len;
    x->outcap = b.cap;
    kept_set(x, b.cap);
    x->ready = 1;
}

/* Appends data to x's pending output as one chunk of a stream (as they
 * are for HTTP/1.0, whose stream ends with the connection). */
static void stream_add(exchange_t *x, const pbjson_buf_t *data, int last)
{
    pbjson_buf_t b = { .data = (char *)x->out, .len = x->outlen, .cap = x->outcap };
    if (x->http10) {
        pbjson_buf_add(&b, data->data, data->len);
    } else {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", data->len);
        pbjson_buf_add(&b, size, (size_t)n);
        pbjson_buf_add(&b, data->data, data->len);
        pbjson_buf_add(&b, "\r\n", 2);
        if (last)
            pbjson_buf_add(&b, "0\r\n\r\n", 5);
    }
    x->out = (uint8_t *)b.data;
    x->outlen = b.len;
    x->outcap = b.cap;
    kept_set(x, b.cap);
}

/* The headers of a stream's answer, before its first message. */
static void stream_begin(exchange_t *x)
{
    if (x->headers_sent)
        return;
    x->headers_sent = 1;
    if (x->http10)
        x->keep_alive = 0;   /* the stream ends with the connection */
    connect_reply_t r;
    memset(&r, 0, sizeof(r));
    r.status = 200;
    r.content_type = connect_content_type(&x->cc);
    r.cache_control = "no-store";
    pbjson_buf_t b = { .data = (char *)x->out, .len = x->outlen, .cap = x->outcap };
    head_lines(x, &r, NULL, -1, &b);
    x->out = (uint8_t *)b.data;
    x->outlen = b.len;
    x->outcap = b.cap;
    kept_set(x, b.cap);
}

static void exchange_free(exchange_t *x)
{
    kept_set(x, 0);
    if (x->is_connect)
        connect_call_free(&x->cc);
    free(x->out);
    free(x->origin);
    free(x);
}

/* Writes the answers that are ready at the head of the queue, in order;
 * closes after the last one when the connection is closing. */
/* Writes what a stream at the head of the queue has produced so far. */
static void stream_push(h1_t *h, exchange_t *x)
{
    if (x != h->head || x->outlen == 0)
        return;
    kept_set(x, 0);
    conn_write(h->conn, x->out, x->outlen);
    x->out = NULL;
    x->outlen = x->outcap = 0;
}

static void flush(h1_t *h)
{
    struct conn *c = h->conn;
    while (h->head != NULL) {
        exchange_t *x = h->head;
        if (!x->ready || x->call != NULL) {
            /* A stream at the head goes out as it is produced. */
            if (x->cc.stream && x->headers_sent)
                stream_push(h, x);
            break;
        }
        h->head = x->next;
        if (h->head == NULL)
            h->tail = NULL;
        h->n--;
        if (!x->keep_alive)
            h->closing = 1;
        kept_set(x, 0);
        if (x->outlen > 0)
            conn_write(c, x->out, x->outlen);
        x->out = NULL;
        exchange_free(x);
        h->last_ms = conn_now_ms(c);
        if (c->state == CONN_CLOSING)
            return;
    }
    if ((h->closing || c->state == CONN_DRAINING) && h->head == NULL) {
        conn_linger_close(c);
        return;
    }
    if (h->held && h->n < H1_MAX_PIPELINE && h->inflight <= H1_INFLIGHT_LOW && !h->in_bytes) {
        /* Room again: read what waits (conn.c gives it to on_bytes). */
        h->held = 0;
        conn_hold(c, 0);
    }
    /* Last, with the queue in order: a stream that waited behind earlier
     * answers, now at the head, goes on. */
    exchange_t *x = h->head;
    if (x != NULL && x->waiting && x->call != NULL && !(c->flags & CONN_F_PAUSED) &&
        c->state != CONN_CLOSING) {
        x->waiting = 0;
        call_writable(x->call);
    }
}

/* A new exchange at the end of the queue. */
static exchange_t *exchange_new(h1_t *h, int keep_alive)
{
    exchange_t *x = calloc(1, sizeof(*x));
    if (x == NULL)
        abort();
    x->h = h;
    x->keep_alive = keep_alive;
    if (h->tail != NULL)
        h->tail->next = x;
    else
        h->head = x;
    h->tail = x;
    h->n++;
    return x;
}

/* An answer made at once (no call), queued in order. */
static void answer_now(h1_t *h, exchange_t *x, connect_reply_t *r, const char *extra)
{
    set_answer(x, r, extra);
    flush(h);
}

/* A refusal of the request being read: answered in order, then the
 * connection closes. */
static void refuse(h1_t *h, int status, const char *text)
{
    log_info("http_refused", "peer=%s status=%d reason=\"%s\"", h->conn->peer, status, text);
    connect_reply_t r;
    connect_plain(status, text, &r);
    exchange_t *x = exchange_new(h, 0);
    h->closing = 1;
    answer_now(h, x, &r, NULL);
}

/* ---------------------------------------------------------------- the sink */

static void sink_answer(call_t *call, const call_answer_t *a)
{
    exchange_t *x = call->sink_arg;
    if (x->cc.stream) {
        /* The end of a stream (its status); done() then writes it. */
        stream_begin(x);
        pbjson_buf_t end = { 0 };
        connect_stream_end(&x->cc, a, &end);
        stream_add(x, &end, 1);
        free(end.data);
        x->ready = 1;
        return;
    }
    connect_reply_t r;
    connect_answer(&x->cc, a, &r);
    if (r.len > 0 && !conn_answer_fits(x->h->conn, r.len) &&
        !(call->method != NULL && (call->method->flags & METHOD_WRITE))) {
        /* The client leaves its answers unread: this one would take the
         * connection (or the server) past its bound. The outcome of a
         * write is always sent. */
        struct conn *c = x->h->conn;
        char msg[200];
        snprintf(msg, sizeof(msg), "answer of %zu bytes not sent: %zu bytes of earlier answers "
                 "are still unread on this connection; read them, then retry",
                 r.len, c->wqueued + c->kept);
        connect_reply_free(&r);
        connect_error(SENTRA_RESOURCE_EXHAUSTED, msg, &r);
    }
    set_answer(x, &r, NULL);
}

/* One message of a server stream: written at once when the stream is at
 * the head of the queue, else kept until it is. Full (1) when the socket's
 * queue is full or H1_STREAM_HIGH bytes wait here; call_writable follows. */
static int sink_message(call_t *call, const ProtobufCMessage *m)
{
    exchange_t *x = call->sink_arg;
    h1_t *h = x->h;
    stream_begin(x);
    pbjson_buf_t env = { 0 };
    connect_stream_message(&x->cc, m, &env);
    stream_add(x, &env, 0);
    free(env.data);
    stream_push(h, x);
    int full = (h->conn->flags & CONN_F_PAUSED) || x->outlen > H1_STREAM_HIGH;
    if (full)
        x->waiting = 1;
    return full;
}

static int sink_ready(call_t *call)
{
    exchange_t *x = call->sink_arg;
    connect_reply_t r;
    if (!connect_ready(&x->cc, call, &r))
        return 0;
    set_answer(x, &r, NULL);
    return 1;
}

static void sink_done(call_t *call)
{
    exchange_t *x = call->sink_arg;
    x->call = NULL;
    call_unref(call);
    x->h->inflight -= x->req_bytes;
    x->req_bytes = 0;
    if (!x->ready) {
        /* Finished without an answer (cannot happen for unary calls). */
        connect_reply_t r;
        connect_error(SENTRA_INTERNAL, "the call ended without an answer", &r);
        set_answer(x, &r, NULL);
    }
    flush(x->h);
}

static const call_sink_t http1_sink = {
    .name = "connect",
    .answer = sink_answer,
    .message = sink_message,
    .done = sink_done,
    .ready = sink_ready,
};

/* ---------------------------------------------------------------- requests */

static const char *req_header(const h1_t *h, const char *name)
{
    for (size_t i = 0; i < h->nh; i++)
        if (strcmp(h->hbuf + h->hdr[i].name, name) == 0)
            return h->hbuf + h->hdr[i].value;
    return NULL;
}

static void serve_health(h1_t *h, exchange_t *x)
{
    server_t *srv = h->conn->srv;
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
    answer_now(h, x, &r, NULL);
}

static void serve_static(h1_t *h, exchange_t *x, const char *path, size_t len)
{
    const web_file_t *f = web_find_encoded(h->conn->srv->web, path, len);
    connect_reply_t r;
    if (f == NULL) {
        connect_plain(404, h->conn->srv->web == NULL ? "not found (no --web-root to serve)" : "not found", &r);
        answer_now(h, x, &r, NULL);
        return;
    }
    memset(&r, 0, sizeof(r));
    memcpy(r.etag, f->etag, sizeof(f->etag));
    r.cache_control = f->cache_control;
    const char *inm = req_header(h, "if-none-match");
    if (inm != NULL && strstr(inm, f->etag) != NULL) {
        r.status = 304;
        answer_now(h, x, &r, NULL);
        return;
    }
    r.status = 200;
    r.content_type = f->content_type;
    r.len = f->len;
    if (!x->head) {
        r.body = malloc(f->len ? f->len : 1);
        if (r.body == NULL)
            abort();
        memcpy(r.body, f->data, f->len);
    }
    answer_now(h, x, &r, NULL);
}

static void serve_preflight(h1_t *h, exchange_t *x, const char *origin)
{
    connect_reply_t r;
    const char *cors = h->conn->srv->cfg->cors_origin;
    if (origin == NULL || req_header(h, "access-control-request-method") == NULL) {
        memset(&r, 0, sizeof(r));
        r.status = 204;
        r.allow = "GET, HEAD, POST, OPTIONS";
        answer_now(h, x, &r, NULL);
        return;
    }
    if (!connect_cors_allowed(cors, origin)) {
        connect_plain(403, "cross-origin requests from this origin are not allowed (see --cors-origin)", &r);
        answer_now(h, x, &r, NULL);
        return;
    }
    memset(&r, 0, sizeof(r));
    r.status = 204;
    answer_now(h, x, &r,
               "Access-Control-Allow-Methods: " CONNECT_CORS_METHODS "\r\n"
               "Access-Control-Allow-Headers: " CONNECT_CORS_HEADERS "\r\n"
               "Access-Control-Max-Age: 7200\r\n");
}

/* A whole request has been read: route it, then forget it. */
static void request_done(h1_t *h)
{
    struct conn *c = h->conn;
    http_parser *p = &h->parser;
    int keep_alive = http_should_keep_alive(p) && !p->upgrade && c->state == CONN_OPEN;
    exchange_t *x = exchange_new(h, keep_alive);
    if (!keep_alive)
        h->closing = 1;
    const char *method = http_method_str((enum http_method)p->method);
    x->head = p->method == HTTP_HEAD;
    x->http10 = p->http_major == 1 && p->http_minor == 0;

    /* CORS: answers echo an allowed Origin; with an allow-list set they
     * depend on Origin. */
    const char *cors = c->srv->cfg->cors_origin;
    const char *origin = req_header(h, "origin");
    x->vary_origin = cors != NULL && cors[0];
    if (origin != NULL && connect_cors_allowed(cors, origin) && (x->origin = strdup(origin)) == NULL)
        abort();

    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(h->hbuf, h->url_len, p->method == HTTP_CONNECT, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH))) {
        connect_reply_t r;
        connect_plain(400, "malformed request target", &r);
        x->keep_alive = 0;
        answer_now(h, x, &r, NULL);
        return;
    }
    char *path = h->hbuf + u.field_data[UF_PATH].off;
    size_t path_len = u.field_data[UF_PATH].len;
    char *query = (u.field_set & (1 << UF_QUERY)) ? h->hbuf + u.field_data[UF_QUERY].off : NULL;
    /* Terminate path and query inside hbuf (the URL's own bytes). */
    if (query != NULL)
        query[u.field_data[UF_QUERY].len] = '\0';
    path[path_len] = '\0';

    if (p->method == HTTP_OPTIONS) {
        serve_preflight(h, x, origin);
        return;
    }
    if (connect_is_procedure(path, path_len)) {
        call_md_t md[H1_MAX_HEADERS];
        for (size_t i = 0; i < h->nh; i++) {
            md[i].key = h->hbuf + h->hdr[i].name;
            md[i].value = h->hbuf + h->hdr[i].value;
        }
        connect_reply_t r;
        x->is_connect = 1;
        const uint8_t *body = h->bref != NULL ? h->bref : h->body;
        if (connect_prepare(&x->cc, method, path, path_len, query, md, h->nh, body, h->blen, &r) != 0) {
            answer_now(h, x, &r, NULL);
            return;
        }
        x->cc.req.auth_memo = &c->auth_memo;
        call_t *call = call_new(c->srv, &http1_sink, x, (uint32_t)c->srv->requests);
        x->call = call;
        /* Its bytes count until the call is done (sink_done). */
        x->req_bytes = h->hlen + h->blen;
        h->inflight += x->req_bytes;
        call_start(call, &x->cc.req);
        return;
    }
    if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
        connect_reply_t r;
        connect_plain(405, "only GET and HEAD here; procedures are at /sentra.v1.<Service>/<Method>", &r);
        r.allow = "GET, HEAD, OPTIONS";
        answer_now(h, x, &r, NULL);
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        serve_health(h, x);
        return;
    }
    serve_static(h, x, path, path_len);
}

static void request_reset(h1_t *h)
{
    h->hlen = 0;
    h->url_len = 0;
    h->nh = 0;
    h->in_value = 0;
    h->blen = 0;
    h->bref = NULL;
    h->body_wait = 0;
    h->status = 0;
    h->complete = 0;
    h->reading = 0;
    /* No buffer is kept between requests: a keep-alive connection that
     * waits holds none (two allocations a request cost less than idle
     * memory on thousands of connections). */
    free(h->body);
    h->body = NULL;
    h->bcap = 0;
    free(h->hbuf);
    h->hbuf = NULL;
    h->hcap = 0;
}

/* ---------------------------------------------------------------- parsing */

static int hbuf_add(h1_t *h, const char *at, size_t n)
{
    if (h->hlen + n + 1 > H1_MAX_HEADER_BYTES) {
        h->status = 431;
        return -1;
    }
    if (h->hlen + n + 1 > h->hcap) {
        size_t cap = h->hcap ? h->hcap : 1024;
        while (cap < h->hlen + n + 1)
            cap *= 2;
        char *nb = realloc(h->hbuf, cap);
        if (nb == NULL)
            abort();
        h->hbuf = nb;
        h->hcap = cap;
    }
    memcpy(h->hbuf + h->hlen, at, n);
    h->hlen += n;
    return 0;
}

static int hbuf_end(h1_t *h)
{
    return hbuf_add(h, "", 1) == 0 ? 0 : -1;
}

static int on_message_begin(http_parser *p)
{
    h1_t *h = p->data;
    request_reset(h);
    h->reading = 1;
    h->started_ms = conn_now_ms(h->conn);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    h1_t *h = p->data;
    if (h->url_len + n > H1_MAX_URL) {
        h->status = 414;
        return -1;
    }
    if (hbuf_add(h, at, n) != 0)
        return -1;
    h->url_len += n;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    h1_t *h = p->data;
    if (h->nh == 0 || h->in_value) {
        /* A new header: end the URL or the last value. */
        if (h->nh == H1_MAX_HEADERS) {
            h->status = 431;
            return -1;
        }
        if (hbuf_end(h) != 0)
            return -1;
        h->hdr[h->nh].name = h->hlen;
        h->hdr[h->nh].value = 0;
        h->nh++;
        h->in_value = 0;
    }
    return hbuf_add(h, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    h1_t *h = p->data;
    if (!h->in_value) {
        if (hbuf_end(h) != 0)
            return -1;
        h->hdr[h->nh - 1].value = h->hlen;
        h->in_value = 1;
    }
    return hbuf_add(h, at, n);
}

static int on_headers_complete(http_parser *p)
{
    h1_t *h = p->data;
    struct conn *c = h->conn;
    if (hbuf_end(h) != 0)
        return -1;
    if (h->nh > 0 && !h->in_value) {
        /* A name with no value at all: an empty one. */
        h->hdr[h->nh - 1].value = h->hlen - 1;
    }
    if (h->nh == 0) {
        /* The URL was never ended by a header: it is, now. */
    }
    for (size_t i = 0; i < h->nh; i++)
        for (char *s = h->hbuf + h->hdr[i].name; *s; s++)
            if (*s >= 'A' && *s <= 'Z')
                *s = (char)(*s - 'A' + 'a');
    uint32_t max = c->srv->cfg->max_frame;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > max) {
        h->status = 413;
        return -1;
    }
    const char *expect = req_header(h, "expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && h->head == NULL) {
        /* The client waits for this before it sends the body; it would be
         * out of order behind answers still owed, so only when none is. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uint8_t *b = malloc(sizeof(cont) - 1);
        if (b == NULL)
            abort();
        memcpy(b, cont, sizeof(cont) - 1);
        conn_write(c, b, sizeof(cont) - 1);
    }
    if ((p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX)) {
        /* A body comes: on_bytes waits until it is all here (it stays in
         * conn.c's read buffer, among the partial frames) and only then
         * lets the parser take it. */
        h->body_wait = 1;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    h1_t *h = p->data;
    uint32_t max = h->conn->srv->cfg->max_frame;
    if (h->blen + n > max) {
        h->status = 413;
        return -1;
    }
    /* The body is all in the bytes being parsed (body_wait): a body in one
     * piece (Content-Length) is used where it lies; pieces of a chunked
     * one are put together. */
    if (h->blen == 0 && h->body == NULL) {
        h->bref = (const uint8_t *)at;
        h->blen = n;
        return 0;
    }
    if (h->bref != NULL) {
        uint8_t *nb = malloc(h->blen + n);
        if (nb == NULL)
            abort();
        memcpy(nb, h->bref, h->blen);
        h->body = nb;
        h->bcap = h->blen + n;
        h->bref = NULL;
    }
    if (h->blen + n > h->bcap) {
        size_t cap = h->bcap ? h->bcap : 4096;
        while (cap < h->blen + n)
            cap *= 2;
        if (cap > max)
            cap = max;
        uint8_t *nb = realloc(h->body, cap);
        if (nb == NULL)
            abort();
        h->body = nb;
        h->bcap = cap;
    }
    memcpy(h->body + h->blen, at, n);
    h->blen += n;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    h1_t *h = p->data;
    h->complete = 1;
    h->reading = 0;
    /* One request at a time: on_bytes routes it once the parser has
     * returned, not from inside it. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The look-ahead (h->scan): counts the body, stops at its end. */
static int scan_body(http_parser *p, const char *at, size_t n)
{
    h1_t *h = p->data;
    (void)at;
    h->scan_body += n;
    /* Over the limit: the parser itself will say 413 at the same byte. */
    return h->scan_body > h->conn->srv->cfg->max_frame ? -1 : 0;
}

static int scan_complete(http_parser *p)
{
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings scan_settings = {
    .on_body = scan_body,
    .on_message_complete = scan_complete,
};

/* While the body of the request being read has not all come: looks ahead
 * in data[0..len) (the body's start onwards, given again with what came
 * since) from where the last look stopped. Returns 1 while more must
 * come, 0 once the parser can take it: the body is whole, or the look
 * found an error that the parser will report at the same byte. */
static int body_missing(h1_t *h, const uint8_t *data, size_t len)
{
    if (h->scan_used >= len)
        return 1;
    size_t n = http_parser_execute(&h->scan, &scan_settings, (const char *)data + h->scan_used,
                                   len - h->scan_used);
    h->scan_used += n;
    if (HTTP_PARSER_ERRNO(&h->scan) != HPE_OK) {
        h->body_wait = 0;       /* its end (HPE_PAUSED), or an error */
        return 0;
    }
    return 1;
}

static size_t on_bytes(struct conn *c, const uint8_t *data, size_t len)
{
    h1_t *h = state(c);
    size_t off = 0;
    h->in_bytes = 1;
    while (off < len && !conn_reading_held(c)) {
        if (h->closing || c->state != CONN_OPEN) {
            off = len; /* nothing after a last request is read */
            break;
        }
        if (h->n >= H1_MAX_PIPELINE || h->inflight > H1_INFLIGHT_MAX) {
            h->held = 1;
            conn_hold(c, 1);
            break;
        }
        if (h->body_wait && body_missing(h, data + off, len - off))
            break;              /* the body stays in conn.c's buffer until it is all here */
        size_t used = http_parser_execute(&h->parser, &settings, (const char *)data + off, len - off);
        off += used;
        enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&h->parser, 0);
            if (h->complete) {
                h->complete = 0;
                request_done(h);
                request_reset(h);
            } else if (h->body_wait) {
                /* Headers read, a body to come: look ahead for its end. */
                h->scan = h->parser;
                h->scan_used = h->scan_body = 0;
            }
            continue;
        }
        if (e != HPE_OK) {
            char why[200];
            int status = h->status ? h->status : 400;
            if (status == 413)
                snprintf(why, sizeof(why), "request body larger than %u bytes (--max-frame)",
                         c->srv->cfg->max_frame);
            else if (status == 431)
                snprintf(why, sizeof(why), "request headers larger than %d bytes or more than %d of them",
                         H1_MAX_HEADER_BYTES, H1_MAX_HEADERS);
            else if (status == 414)
                snprintf(why, sizeof(why), "request target longer than %d bytes", H1_MAX_URL);
            else
                snprintf(why, sizeof(why), "malformed HTTP request: %s", http_errno_description(e));
            h->reading = 0;
            refuse(h, status, why);
            off = len;
            break;
        }
        if (h->parser.upgrade) {
            /* Upgrade (h2c, websocket) is not offered: what follows the
             * request is not HTTP/1.1 any more, so nothing more is read. */
            h->closing = 1;
            off = len;
            break;
        }
        if (used == 0)
            break;
    }
    h->in_bytes = 0;
    return off;
}

/* ---------------------------------------------------------------- the protocol */

static int h1_open(struct conn *c)
{
    h1_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -1;
    h->conn = c;
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    h->last_ms = conn_now_ms(c);
    c->proto_state = h;
    return 0;
}

static void h1_writable(struct conn *c)
{
    /* The socket's queue drained: a stream that was told "full" goes on. */
    exchange_t *x = state(c)->head;
    if (x != NULL && x->waiting && x->call != NULL) {
        x->waiting = 0;
        call_writable(x->call);
    }
}

static void h1_tick(struct conn *c, uint64_t now)
{
    h1_t *h = state(c);
    const config_t *cfg = c->srv->cfg;
    if (c->state != CONN_OPEN)
        return;
    if (h->reading && now - h->started_ms >= (uint64_t)cfg->http_request_timeout_ms) {
        h->reading = 0;
        refuse(h, 408, "the request did not arrive in time (--http-request-timeout)");
        return;
    }
    if (!h->reading && h->head == NULL && now - h->last_ms >= (uint64_t)cfg->idle_timeout_ms) {
        log_debug("http_idle_close", "peer=%s", c->peer);
        conn_close(c);
    }
}

static void h1_drain(struct conn *c, int code, const char *why)
{
    h1_t *h = state(c);
    (void)code;
    c->state = CONN_DRAINING;
    h->closing = 1;
    if (h->reading) {
        /* A request half read (its bytes were let go when the server's
         * memory for partial requests was full, or the server stops): it
         * is answered, not dropped unseen. */
        h->reading = 0;
        refuse(h, 503, why != NULL && why[0] ? why : "the server is going away");
        return;
    }
    if (h->head == NULL)
        conn_linger_close(c);
}

static void h1_closing(struct conn *c)
{
    h1_t *h = state(c);
    for (exchange_t *x = h->head; x != NULL; x = x->next) {
        if (x->call != NULL) {
            call_t *call = x->call;
            x->call = NULL;
            call_detach(call);
        }
    }
}

static void h1_free(struct conn *c)
{
    h1_t *h = state(c);
    while (h->head != NULL) {
        exchange_t *x = h->head;
        h->head = x->next;
        exchange_free(x);
    }
    free(h->hbuf);
    free(h->body);
    free(h);
    c->proto_state = NULL;
}

const conn_proto_t sentra__http1_proto = {
    .name = "http1",
    .open = h1_open,
    .on_bytes = on_bytes,
    .on_writable = h1_writable,
    .tick = h1_tick,
    .drain = h1_drain,
    .closing = h1_closing,
    .free = h1_free,
};
