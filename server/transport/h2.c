/*
 * h2.c: HTTP/2 on a connection, on nghttp2 (see h2.h for the seam between
 * this file and the protocols on its streams).
 *
 * Bytes in: conn.c hands what it read to on_bytes, which feeds nghttp2
 * (nghttp2_session_mem_recv); nghttp2 calls back per header, DATA chunk,
 * frame and stream close, and those callbacks drive the stream's app.
 *
 * Bytes out: nothing is written from inside a callback. flush() runs
 * nghttp2_session_send, whose callbacks append frames to one buffer that
 * leaves in one conn_write per flush (a buffer on flush's stack while it
 * fits: most flushes are small and go to the socket whole, so they cost
 * no allocation). What apps queue while bytes are
 * read is flushed once at the end of on_bytes; what they queue at other
 * times (answers after a query, deadlines) is flushed in the idle phase
 * of the loop's next turn (flush_soon), so that headers, DATA and
 * trailers of every stream answered in one turn leave in one write, and
 * a stream never closes (on_close) inside an app's own call. Response bodies are not copied into
 * nghttp2: the data source says NGHTTP2_DATA_FLAG_NO_COPY and the DATA
 * frame is written straight from the stream's buffer (send_data_cb).
 * Nothing more is produced while CONN_WQ_HIGH bytes wait in the socket's
 * queue (the send callbacks answer WOULDBLOCK); conn.c calls h2_writable
 * once the queue drains, and streams whose apps paused get on_drained.
 *
 * Bounds per connection: at most --max-inflight concurrent streams
 * (SETTINGS_MAX_CONCURRENT_STREAMS), H2_MAX_HEADER_BYTES of request
 * headers per stream, H2_CONN_IN_BUDGET of request bytes held for apps
 * (bodies being received, and those of requests whose calls run: apps
 * release them when the call is done) before the connection window stops
 * being given back; when bodies still being received would pass it alone,
 * the stream receiving is reset with ENHANCE_YOUR_CALM, which gRPC reads
 * as RESOURCE_EXHAUSTED (withholding the window cannot help when no
 * request is complete: none would finish); H2_STREAM_HIGH per stream of
 * response bytes before a producer pauses, and nghttp2's own limits on
 * queued control frames, SETTINGS, CONTINUATION frames and the rate of
 * stream resets (CVE-2023-44487). What waits in the streams' buffers
 * (bodies and trailers, and nghttp2's copy of the trailers) counts as
 * answers waiting for the client (conn_kept): apps refuse answers beyond
 * CONN_WQ_MAX per connection (conn_answer_fits), as the native protocol
 * does.
 *
 * Connection rules (gRPC's): PING is answered, but a client pinging more
 * often than the policy allows gets GOAWAY(ENHANCE_YOUR_CALM,
 * "too_many_pings"); a connection without streams for --idle-timeout gets
 * a GOAWAY(NO_ERROR, "idle timeout"); a silent client is pinged every
 * --keepalive and closed when it does not answer; a drain (SIGTERM) sends
 * the two-step GOAWAY (a shutdown notice, then after a PING round trip the
 * last stream id): streams already sent are served, later ones refused.
 * Any protocol violation nghttp2 finds ends the connection with GOAWAY and
 * the error it names (PROTOCOL_ERROR, FLOW_CONTROL_ERROR, ...).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "h2.h"
#include "log.h"
#include "server.h"

#define H2_MAX_HEADER_BYTES (32 * 1024)   /* request header list, per stream */
#define H2_MAX_HEADERS 100                /* request header fields, per stream */
#define H2_WINDOW (1024 * 1024)           /* our receive windows (stream and connection) */
#define H2_PING_MIN_MS (5 * 60 * 1000)    /* gRPC: pings with calls at most this often */
#define H2_PING_IDLE_MS (2 * 3600 * 1000) /* gRPC: pings without calls at most this often */
#define H2_PING_STRIKES 2                 /* tolerated before GOAWAY(too_many_pings) */
#define H2_DRAIN_WAIT_MS 1000             /* notice to final GOAWAY when no PING comes back */
#define H2_FLUSH_STACK (16 * 1024)        /* frames of one flush held on its stack */

static const uint8_t drain_ping[8] = { 's', 'e', 'n', 't', 'r', 'a', 'g', 'o' };

/* One request stream. */
struct stream {
    h2_stream_t pub;               /* what apps see; first, so casts work */
    struct h2 *h2;                 /* the connection's HTTP/2 state */
    struct stream *next, *prev;    /* in h2->streams */
    struct hdr { uint32_t name, value; } *hdr;  /* request headers: offsets in hmem */
    size_t nhdr, hdr_cap;          /* pairs held, room */
    char *hmem;                    /* their names and values, each NUL-terminated */
    size_t hmem_len, hmem_cap;
    size_t hdr_bytes;              /* their size, for H2_MAX_HEADER_BYTES */
    uint8_t *out;                  /* response body waiting to be sent ... */
    size_t out_off, out_len, out_cap; /* ... in out[out_off..out_len) */
    nghttp2_nv *trailers;          /* to send after the body (h2_stream_end) */
    size_t ntrailers;
    char *trailer_mem;             /* their names and values */
    size_t kept;                   /* out_cap and the trailers' memory (ours and
                                    * nghttp2's copy), counted in conn->kept */
    size_t in_held;                /* request bytes given to the app, not released */
    unsigned flags;                /* S_* */
};

#define S_HEADERS_SENT 0x01        /* response headers submitted */
#define S_BODY 0x02                /* ... with a data source */
#define S_DEFERRED 0x04            /* the data source waits for bytes */
#define S_END 0x08                 /* h2_stream_end: no more body */
#define S_TRAILERS_SUBMITTED 0x10
#define S_REMOTE_ENDED 0x20        /* the client sent END_STREAM */
#define S_CLOSED 0x40              /* closed or reset: writes are dropped */
#define S_WANT_DRAIN 0x80          /* the app paused: tell it on_drained */
#define S_TOO_BIG 0x100            /* request headers over the limit */

/* The protocol's state for one connection. */
typedef struct h2 {
    nghttp2_session *session;      /* nghttp2's state */
    struct conn *conn;             /* the connection */
    struct stream *streams;        /* open request streams */
    int nstreams;                  /* how many */
    uint8_t *wbuf;                 /* frames collected by one flush: flush's stack
                                    * buffer, or malloc'ed once they outgrow it */
    int wbuf_stack;                /* wbuf is flush's stack buffer */
    size_t wlen, wcap;
    int in_recv;                   /* inside mem_recv: flush at its end */
    int flushing;                  /* inside flush(): flush again at its end */
    int flush_again;
    int blocked;                   /* the send callbacks said WOULDBLOCK this pass */
    uv_idle_t *soon;               /* runs the flush put off by flush_soon; malloc'ed,
                                    * as it is closed apart from the connection */
    int drained_pending;           /* a stream may want on_drained */
    size_t in_held;                /* request bytes held by apps (in_budget) */
    size_t in_partial;             /* ... of them, of streams the client has not ended */
    size_t in_budget;              /* H2_CONN_IN_BUDGET, or a maximum frame and more */
    size_t in_owed;                /* connection window not given back yet */
    uint64_t last_stream_ms;       /* last stream opened or closed (idle timeout) */
    uint64_t last_ping_ms;         /* client's last PING (gRPC ping policy) */
    int ping_strikes;
    int reset_ping_strikes;        /* we sent HEADERS or DATA since */
    uint64_t ping_sent_ms;         /* our keepalive PING ... */
    int ping_outstanding;          /* ... awaits its ACK */
    int draining;                  /* shutdown notice sent */
    uint64_t drain_ms;             /* when */
    int goaway_sent;               /* the final GOAWAY is submitted */
    int dead;                      /* a fatal error: closing after the GOAWAY */
    char drain_reason[64];         /* debug data of the final GOAWAY */
} h2_t;

static h2_t *state(struct conn *c)
{
    return c->proto_state;
}

static void flush(h2_t *h);
static void flush_soon(h2_t *h);

static void fatal(h2_t *h, uint32_t code, const char *why)
{
    if (h->dead)
        return;
    log_info("conn_protocol_error", "peer=%s protocol=h2 reason=\"%s\"", h->conn->peer, why);
    h->dead = 1;
    h->conn->state = CONN_DRAINING;
    /* Fails when nghttp2 already queued its own GOAWAY; either way one
     * leaves before the connection closes. */
    nghttp2_session_terminate_session(h->session, code);
}

/* ---------------------------------------------------------------- streams */

static struct stream *stream_of(h2_t *h, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h->session, id);
}

static void stream_free(struct stream *s)
{
    conn_kept(s->h2->conn, -(ptrdiff_t)s->kept);
    free(s->hdr);
    free(s->hmem);
    free(s->out);
    free(s->trailers);
    free(s->trailer_mem);
    free(s);
}

static void stream_unlink(h2_t *h, struct stream *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    h->nstreams--;
}

/* The app is done with s's request bytes: gives back the connection
 * window owed while apps held many. */
static void release_bytes(h2_t *h, struct stream *s)
{
    h->in_held -= s->in_held;
    if (!(s->flags & S_REMOTE_ENDED))
        h->in_partial -= s->in_held;
    s->in_held = 0;
    if (h->in_owed > 0 && h->in_held < h->in_budget) {
        nghttp2_session_consume_connection(h->session, h->in_owed);
        h->in_owed = 0;
    }
}

/* The client ended s: its bytes are no longer a body being received. */
static void remote_ended(h2_t *h, struct stream *s)
{
    s->flags |= S_REMOTE_ENDED;
    h->in_partial -= s->in_held;
}

/* The app's last call, then the record goes (nghttp2 forgets it too). */
static void stream_close(h2_t *h, struct stream *s, uint32_t code)
{
    s->flags |= S_CLOSED;
    const h2_app_t *app = s->pub.app;
    s->pub.app = NULL;
    if (app != NULL && app->on_close != NULL)
        app->on_close(&s->pub, code);
    release_bytes(h, s);
    stream_unlink(h, s);
    if (h->conn->state != CONN_CLOSING)
        nghttp2_session_set_stream_user_data(h->session, s->pub.id, NULL);
    stream_free(s);
    h->last_stream_ms = conn_now_ms(h->conn);
}

const char *h2_stream_header(const h2_stream_t *pub, const char *name)
{
    const struct stream *s = (const struct stream *)pub;
    for (size_t i = 0; i < s->nhdr; i++)
        if (strcmp(s->hmem + s->hdr[i].name, name) == 0)
            return s->hmem + s->hdr[i].value;
    return NULL;
}

size_t h2_stream_nheaders(const h2_stream_t *pub)
{
    return ((const struct stream *)pub)->nhdr;
}

void h2_stream_header_at(const h2_stream_t *pub, size_t i, const char **name, const char **value)
{
    const struct stream *s = (const struct stream *)pub;
    *name = s->hmem + s->hdr[i].name;
    *value = s->hmem + s->hdr[i].value;
}

struct server *h2_stream_server(const h2_stream_t *pub)
{
    return pub->conn->srv;
}

int h2_stream_open(const h2_stream_t *pub)
{
    const struct stream *s = (const struct stream *)pub;
    return !(s->flags & S_CLOSED) && s->h2->conn->state != CONN_CLOSING;
}

size_t h2_stream_buffered(const h2_stream_t *pub)
{
    const struct stream *s = (const struct stream *)pub;
    return s->out_len - s->out_off;
}

int h2_stream_full(h2_stream_t *pub)
{
    struct stream *s = (struct stream *)pub;
    if (h2_stream_buffered(pub) >= H2_STREAM_HIGH || (s->h2->conn->flags & CONN_F_PAUSED)) {
        s->flags |= S_WANT_DRAIN;
        return 1;
    }
    return 0;
}

void h2_stream_release(h2_stream_t *pub)
{
    struct stream *s = (struct stream *)pub;
    release_bytes(s->h2, s);
    flush_soon(s->h2);
}

/* ---------------------------------------------------------------- response */

/* Body bytes for nghttp2: never copied here (NO_COPY; send_data_cb writes
 * them); DEFERRED until the app queues more; EOF with the trailers. */
static ssize_t read_cb(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                       uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    struct stream *s = source->ptr;
    (void)buf;
    (void)user_data;
    size_t avail = s->out_len - s->out_off;
    size_t n = avail < length ? avail : length;
    if (n == 0 && !(s->flags & S_END)) {
        s->flags |= S_DEFERRED;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n > 0)
        *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && (s->flags & S_END)) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->ntrailers > 0 && !(s->flags & S_TRAILERS_SUBMITTED)) {
            s->flags |= S_TRAILERS_SUBMITTED;
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (nghttp2_submit_trailer(session, id, s->trailers, s->ntrailers) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

static int wbuf_room(h2_t *h, size_t n)
{
    /* Stop producing while the socket's queue is full: the frame is
     * offered again after h2_writable. */
    if (h->conn->wqueued + h->wlen > CONN_WQ_HIGH) {
        h->blocked = 1;
        return -1;
    }
    if (h->wlen + n > h->wcap) {
        size_t cap = h->wcap ? h->wcap : 16 * 1024;
        while (cap < h->wlen + n)
            cap *= 2;
        uint8_t *p = h->wbuf_stack ? malloc(cap) : realloc(h->wbuf, cap);
        if (p == NULL)
            abort();
        if (h->wbuf_stack)
            memcpy(p, h->wbuf, h->wlen);
        h->wbuf_stack = 0;
        h->wbuf = p;
        h->wcap = cap;
    }
    return 0;
}

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    h2_t *h = user_data;
    (void)session;
    (void)flags;
    if (wbuf_room(h, length) != 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    memcpy(h->wbuf + h->wlen, data, length);
    h->wlen += length;
    return (ssize_t)length;
}

static int send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user_data)
{
    h2_t *h = user_data;
    struct stream *s = source->ptr;
    size_t pad = frame->data.padlen;
    (void)session;
    if (wbuf_room(h, 9 + pad + length) != 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    memcpy(h->wbuf + h->wlen, framehd, 9);
    h->wlen += 9;
    if (pad > 0)
        h->wbuf[h->wlen++] = (uint8_t)(pad - 1);
    memcpy(h->wbuf + h->wlen, s->out + s->out_off, length);
    h->wlen += length;
    if (pad > 1) {
        memset(h->wbuf + h->wlen, 0, pad - 1);
        h->wlen += pad - 1;
    }
    s->out_off += length;
    if (s->out_off == s->out_len)
        s->out_off = s->out_len = 0;
    if ((s->flags & S_WANT_DRAIN) && s->out_len - s->out_off < H2_STREAM_LOW)
        h->drained_pending = 1;
    return 0;
}

int h2_stream_respond(h2_stream_t *pub, int status, const nghttp2_nv *nva, size_t n, int end)
{
    struct stream *s = (struct stream *)pub;
    if (!h2_stream_open(pub) || (s->flags & S_HEADERS_SENT))
        return -1;
    nghttp2_nv small[12], *nv = small;
    if (n + 1 > sizeof(small) / sizeof(small[0]) && (nv = malloc((n + 1) * sizeof(*nv))) == NULL)
        abort();
    char st[4];
    unsigned code = (unsigned)status % 1000;
    st[0] = (char)('0' + code / 100);
    st[1] = (char)('0' + code / 10 % 10);
    st[2] = (char)('0' + code % 10);
    st[3] = '\0';
    nv[0] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)st, 7, 3, NGHTTP2_NV_FLAG_NONE };
    memcpy(nv + 1, nva, n * sizeof(*nv));
    s->flags |= S_HEADERS_SENT;
    int rv;
    if (end) {
        rv = nghttp2_submit_response(s->h2->session, pub->id, nv, n + 1, NULL);
    } else {
        nghttp2_data_provider prd = { .source.ptr = s, .read_callback = read_cb };
        s->flags |= S_BODY;
        rv = nghttp2_submit_response(s->h2->session, pub->id, nv, n + 1, &prd);
    }
    if (nv != small)
        free(nv);
    if (rv != 0)
        return -1;
    flush_soon(s->h2);
    return 0;
}

uint8_t *h2_stream_reserve(h2_stream_t *pub, size_t n)
{
    struct stream *s = (struct stream *)pub;
    if (!h2_stream_open(pub))
        return NULL;
    if (s->out_off > 0 && s->out_off == s->out_len)
        s->out_off = s->out_len = 0;
    if (s->out_len + n > s->out_cap) {
        if (s->out_off > 0) {
            /* Move what waits to the front rather than grow. */
            memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
            s->out_len -= s->out_off;
            s->out_off = 0;
        }
        if (s->out_len + n > s->out_cap) {
            size_t cap = s->out_cap ? s->out_cap : 256;
            while (cap < s->out_len + n)
                cap *= 2;
            uint8_t *p = realloc(s->out, cap);
            if (p == NULL)
                abort();
            conn_kept(s->h2->conn, (ptrdiff_t)(cap - s->out_cap));
            s->kept += cap - s->out_cap;
            s->out = p;
            s->out_cap = cap;
        }
    }
    return s->out + s->out_len;
}

static void resume(struct stream *s)
{
    if (s->flags & S_DEFERRED) {
        s->flags &= ~S_DEFERRED;
        nghttp2_session_resume_data(s->h2->session, s->pub.id);
    }
    flush_soon(s->h2);
}

void h2_stream_commit(h2_stream_t *pub, size_t n)
{
    struct stream *s = (struct stream *)pub;
    if (!h2_stream_open(pub) || !(s->flags & S_BODY) || (s->flags & S_END))
        return;
    s->out_len += n;
    resume(s);
}

void h2_stream_end(h2_stream_t *pub, const nghttp2_nv *nva, size_t n)
{
    struct stream *s = (struct stream *)pub;
    if (!h2_stream_open(pub) || !(s->flags & S_BODY) || (s->flags & S_END))
        return;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += nva[i].namelen + nva[i].valuelen;
    if (n > 0) {
        s->trailers = malloc(n * sizeof(*s->trailers));
        s->trailer_mem = malloc(bytes ? bytes : 1);
        if (s->trailers == NULL || s->trailer_mem == NULL)
            abort();
        char *p = s->trailer_mem;
        for (size_t i = 0; i < n; i++) {
            memcpy(p, nva[i].name, nva[i].namelen);
            s->trailers[i].name = (uint8_t *)p;
            p += nva[i].namelen;
            memcpy(p, nva[i].value, nva[i].valuelen);
            s->trailers[i].value = (uint8_t *)p;
            p += nva[i].valuelen;
            s->trailers[i].namelen = nva[i].namelen;
            s->trailers[i].valuelen = nva[i].valuelen;
            s->trailers[i].flags = NGHTTP2_NV_FLAG_NONE;
        }
        s->ntrailers = n;
        /* Ours and the copy nghttp2 makes when they are submitted. */
        size_t mem = 2 * (bytes + n * sizeof(*s->trailers));
        conn_kept(s->h2->conn, (ptrdiff_t)mem);
        s->kept += mem;
    }
    s->flags |= S_END;
    resume(s);
}

void h2_stream_reset(h2_stream_t *pub, uint32_t error_code)
{
    struct stream *s = (struct stream *)pub;
    if (!h2_stream_open(pub))
        return;
    nghttp2_submit_rst_stream(s->h2->session, NGHTTP2_FLAG_NONE, pub->id, error_code);
    flush_soon(s->h2);
}

/* ---------------------------------------------------------------- the apps */

/* The per-stream dispatch on content-type: the first app whose match()
 * accepts the stream serves it: gRPC, then Connect (JSON, proto, GET). */
static const h2_app_t *const apps[] = {
    &sentra__h2_grpc_app,
    &sentra__h2_connect_app,
    NULL
};

static void dispatch(struct stream *s)
{
    if (s->flags & S_TOO_BIG) {
        static const nghttp2_nv nv[] = {
            { (uint8_t *)"content-type", (uint8_t *)"text/plain", 12, 10, NGHTTP2_NV_FLAG_NONE },
        };
        h2_stream_respond(&s->pub, 431, nv, 1, 1);
        return;
    }
    const char *ct = h2_stream_header(&s->pub, "content-type");
    for (size_t i = 0; apps[i] != NULL; i++) {
        if (apps[i]->match(ct ? ct : "")) {
            s->pub.app = apps[i];
            apps[i]->on_headers(&s->pub);
            return;
        }
    }
    /* Nobody speaks it (gRPC's rule for a content-type that is not
     * application/grpc...). */
    static const nghttp2_nv nv[] = {
        { (uint8_t *)"content-type", (uint8_t *)"text/plain", 12, 10, NGHTTP2_NV_FLAG_NONE },
    };
    if (h2_stream_respond(&s->pub, 415, nv, 1, 0) == 0) {
        static const char body[] = "unsupported content-type; use application/grpc, application/json or application/proto\n";
        uint8_t *p = h2_stream_reserve(&s->pub, sizeof(body) - 1);
        memcpy(p, body, sizeof(body) - 1);
        h2_stream_commit(&s->pub, sizeof(body) - 1);
        h2_stream_end(&s->pub, NULL, 0);
    }
}

/* ---------------------------------------------------------------- callbacks */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    h2_t *h = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->pub.id = frame->hd.stream_id;
    s->pub.conn = h->conn;
    s->h2 = h;
    s->next = h->streams;
    if (h->streams != NULL)
        h->streams->prev = s;
    h->streams = s;
    h->nstreams++;
    h->last_stream_ms = conn_now_ms(h->conn);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    h2_t *h = user_data;
    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;   /* trailers of a request: nothing we use */
    struct stream *s = stream_of(h, frame->hd.stream_id);
    (void)session;
    if (s == NULL || (s->flags & S_TOO_BIG))
        return 0;
    s->hdr_bytes += namelen + valuelen + 32;   /* RFC 9113's accounting */
    if (s->hdr_bytes > H2_MAX_HEADER_BYTES || s->nhdr >= H2_MAX_HEADERS) {
        s->flags |= S_TOO_BIG;
        return 0;
    }
    /* Copied into one buffer per stream (two allocations for all the
     * headers, where a pair of mallocs per header cost more than the
     * HPACK decoding). The limits above keep it under 32 KiB plus the
     * NULs, so uint32_t offsets hold. */
    if (s->nhdr == s->hdr_cap) {
        size_t cap = s->hdr_cap ? 2 * s->hdr_cap : 16;
        struct hdr *p = realloc(s->hdr, cap * sizeof(*p));
        if (p == NULL)
            abort();
        s->hdr = p;
        s->hdr_cap = cap;
    }
    size_t need = s->hmem_len + namelen + valuelen + 2;
    if (need > s->hmem_cap) {
        size_t cap = s->hmem_cap ? s->hmem_cap : 512;
        while (cap < need)
            cap *= 2;
        char *p = realloc(s->hmem, cap);
        if (p == NULL)
            abort();
        s->hmem = p;
        s->hmem_cap = cap;
    }
    /* nghttp2 has already refused names with upper case and values with
     * NUL, CR or LF (RFC 9113 field checks), so these are C strings. */
    struct hdr *e = &s->hdr[s->nhdr++];
    e->name = (uint32_t)s->hmem_len;
    memcpy(s->hmem + s->hmem_len, name, namelen);
    s->hmem_len += namelen;
    s->hmem[s->hmem_len++] = '\0';
    e->value = (uint32_t)s->hmem_len;
    memcpy(s->hmem + s->hmem_len, value, valuelen);
    s->hmem_len += valuelen;
    s->hmem[s->hmem_len++] = '\0';
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user_data)
{
    h2_t *h = user_data;
    (void)flags;
    nghttp2_session_consume_stream(session, id, len);
    struct stream *s = stream_of(h, id);
    if (s == NULL || s->pub.app == NULL || (s->flags & S_CLOSED)) {
        nghttp2_session_consume_connection(session, len);
        return 0;
    }
    if (!(s->flags & S_REMOTE_ENDED) && h->in_partial + len > h->in_budget) {
        /* Bodies being received hold the budget: none is complete, so
         * withholding the window would only stall them all. This stream
         * goes (the others can finish). */
        log_info("h2_stream_refused", "peer=%s stream=%d reason=\"request bodies in progress on this "
                 "connection exceed %zu bytes\"", h->conn->peer, id, h->in_budget);
        release_bytes(h, s);
        s->flags |= S_CLOSED;
        nghttp2_session_consume_connection(session, len);
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_ENHANCE_YOUR_CALM);
        return 0;
    }
    /* The connection's window comes back at once while apps hold little,
     * later (release_bytes) when they hold much. */
    s->in_held += len;
    h->in_held += len;
    if (!(s->flags & S_REMOTE_ENDED))
        h->in_partial += len;
    if (h->in_held <= h->in_budget)
        nghttp2_session_consume_connection(session, len);
    else
        h->in_owed += len;
    s->pub.app->on_data(&s->pub, data, len);
    return 0;
}

static void ping_policy(h2_t *h, const nghttp2_frame *frame)
{
    uint64_t now = conn_now_ms(h->conn);
    nghttp2_submit_ping(h->session, NGHTTP2_FLAG_ACK, frame->ping.opaque_data);
    /* gRPC's keepalive enforcement (as grpc-go's server does it): a ping
     * after we sent headers or data is free; otherwise one sooner than
     * the policy's interval is a strike, and too many end the
     * connection. */
    uint64_t last = h->last_ping_ms;
    h->last_ping_ms = now;
    if (h->reset_ping_strikes) {
        h->reset_ping_strikes = 0;
        h->ping_strikes = 0;
        return;
    }
    uint64_t min = h->nstreams > 0 ? H2_PING_MIN_MS : H2_PING_IDLE_MS;
    if (last != 0 && now - last < min)
        h->ping_strikes++;
    if (h->ping_strikes > H2_PING_STRIKES && !h->dead) {
        log_info("conn_too_many_pings", "peer=%s", h->conn->peer);
        h->dead = 1;
        h->conn->state = CONN_DRAINING;
        nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(h->session),
                              NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)"too_many_pings", 14);
    }
}

static void final_goaway(h2_t *h)
{
    if (h->goaway_sent || h->dead)
        return;
    h->goaway_sent = 1;
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR,
                          (const uint8_t *)h->drain_reason, strlen(h->drain_reason));
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    h2_t *h = user_data;
    struct stream *s;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        s = stream_of(h, frame->hd.stream_id);
        if (s == NULL)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            dispatch(s);
        if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !(s->flags & S_REMOTE_ENDED)) {
            remote_ended(h, s);
            if (s->pub.app != NULL && !(s->flags & S_CLOSED))
                s->pub.app->on_end(&s->pub);
        }
        break;
    case NGHTTP2_DATA:
        s = stream_of(h, frame->hd.stream_id);
        if (s != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !(s->flags & S_REMOTE_ENDED)) {
            remote_ended(h, s);
            if (s->pub.app != NULL && !(s->flags & S_CLOSED))
                s->pub.app->on_end(&s->pub);
        }
        break;
    case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
            ping_policy(h, frame);
        } else if (memcmp(frame->ping.opaque_data, drain_ping, 8) == 0) {
            final_goaway(h);   /* the client has seen the notice */
        } else {
            h->ping_outstanding = 0;
        }
        break;
    default:
        break;
    }
    (void)session;
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    h2_t *h = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    h->reset_ping_strikes = 1;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        /* Our side ended before the client's: gRPC wants RST_STREAM
         * (NO_ERROR) so that the client stops sending. */
        struct stream *s = stream_of(h, frame->hd.stream_id);
        if (s != NULL && !(s->flags & S_REMOTE_ENDED))
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user_data)
{
    h2_t *h = user_data;
    (void)session;
    struct stream *s = stream_of(h, id);
    if (s != NULL)
        stream_close(h, s, error_code);
    return 0;
}

static int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                    void *user_data)
{
    h2_t *h = user_data;
    (void)session;
    (void)lib_error_code;
    log_debug("h2_error", "peer=%s error=\"%.*s\"", h->conn->peer, (int)len, msg);
    return 0;
}

/* ---------------------------------------------------------------- output */

/* Streams whose apps paused and now have room hear it (after nghttp2 has
 * finished sending, never from inside its callbacks). */
static void notify_drained(h2_t *h)
{
    if (!h->drained_pending || (h->conn->flags & CONN_F_PAUSED))
        return;
    h->drained_pending = 0;
    for (struct stream *s = h->streams; s != NULL;) {
        struct stream *next = s->next;
        if ((s->flags & S_WANT_DRAIN) && !(s->flags & S_CLOSED) &&
            s->out_len - s->out_off < H2_STREAM_LOW) {
            s->flags &= ~S_WANT_DRAIN;
            if (s->pub.app != NULL && s->pub.app->on_drained != NULL)
                s->pub.app->on_drained(&s->pub);
        }
        s = next;
    }
}

static void flush(h2_t *h)
{
    struct conn *c = h->conn;
    if (h->in_recv || h->flushing) {
        h->flush_again = 1;
        return;
    }
    if (c->state == CONN_CLOSING)
        return;
    h->flushing = 1;
    do {
        h->flush_again = 0;
        if (c->wqueued > CONN_WQ_HIGH)
            break;      /* h2_writable comes back */
        uint8_t stack[H2_FLUSH_STACK];
        h->wbuf = stack;
        h->wcap = sizeof(stack);
        h->wlen = 0;
        h->wbuf_stack = 1;
        h->blocked = 0;
        int rv = nghttp2_session_send(h->session);
        if (h->wbuf_stack) {
            if (h->wlen > 0)
                conn_write_copy(c, h->wbuf, h->wlen);
        } else {
            conn_write(c, h->wbuf, h->wlen);   /* takes it */
        }
        h->wbuf = NULL;
        h->wlen = h->wcap = 0;
        h->wbuf_stack = 0;
        /* Stopped for room, but the socket took it all at once (conn_write
         * did not pause the connection, so no h2_writable comes): go on. */
        if (h->blocked && !(c->flags & CONN_F_PAUSED) && c->state != CONN_CLOSING)
            h->flush_again = 1;
        if (rv != 0) {
            log_info("conn_h2_send_failed", "peer=%s error=\"%s\"", c->peer, nghttp2_strerror(rv));
            h->dead = 1;
            break;
        }
        if (c->state == CONN_CLOSING)
            break;
        notify_drained(h);
    } while (h->flush_again);
    h->flushing = 0;
    if (c->state == CONN_CLOSING)
        return;
    if (h->dead || (!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session)) ||
        (h->goaway_sent && h->nstreams == 0))
        conn_close_after_write(c);
}

static void on_soon(uv_idle_t *t)
{
    uv_idle_stop(t);
    flush(t->data);
}

/* A flush for what an app queued outside on_bytes: in the idle phase of
 * the loop's next turn, after every callback of this turn has had its say
 * (the answers to a group of queries come in one turn). An active idle
 * handle also keeps the loop from blocking before it runs, so nothing
 * waits: a deadline's answer queued by a timer goes in the same turn. */
static void flush_soon(h2_t *h)
{
    if (h->in_recv || h->flushing) {
        h->flush_again = 1;
        return;
    }
    if (h->conn->state == CONN_CLOSING)
        return;
    if (h->soon == NULL) {
        h->soon = malloc(sizeof(*h->soon));
        if (h->soon == NULL)
            abort();
        uv_idle_init(h->conn->srv->loop, h->soon);
        h->soon->data = h;
    }
    uv_idle_start(h->soon, on_soon);   /* nothing when already started */
}

static void free_handle(uv_handle_t *handle)
{
    free(handle);
}

/* Closes the idle handle: its callback never runs after this. */
static void soon_close(h2_t *h)
{
    if (h->soon != NULL) {
        uv_close((uv_handle_t *)h->soon, free_handle);
        h->soon = NULL;
    }
}

/* ---------------------------------------------------------------- the protocol */

static size_t h2_on_bytes(struct conn *c, const uint8_t *data, size_t len)
{
    h2_t *h = state(c);
    if (h->dead)
        return len;
    h->in_recv = 1;
    ssize_t rv = nghttp2_session_mem_recv(h->session, data, len);
    h->in_recv = 0;
    if (c->state == CONN_CLOSING)
        return len;
    if (rv < 0) {
        fatal(h, rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR,
              nghttp2_strerror((int)rv));
    }
    flush(h);
    return len;
}

static int h2_open(struct conn *c)
{
    h2_t *h = calloc(1, sizeof(*h));
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    if (h == NULL)
        return -1;
    h->conn = c;
    h->last_stream_ms = conn_now_ms(c);
    /* A request of the largest size must always fit. */
    h->in_budget = H2_CONN_IN_BUDGET;
    if (h->in_budget < (size_t)c->srv->cfg->max_frame + 64 * 1024)
        h->in_budget = (size_t)c->srv->cfg->max_frame + 64 * 1024;
    if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        goto fail;
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);

    nghttp2_option_set_no_auto_window_update(opt, 1);    /* H2_CONN_IN_BUDGET */
    nghttp2_option_set_no_auto_ping_ack(opt, 1);         /* the ping policy */
    /* nghttp2's defaults, stated: 1000 resets at once, 33 a second after. */
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);

    if (nghttp2_session_server_new2(&h->session, cb, h, opt) != 0)
        goto fail;
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    cb = NULL;
    opt = NULL;

    const config_t *cfg = c->srv->cfg;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)cfg->max_inflight },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, H2_MAX_HEADER_BYTES },
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
    };
    if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0, H2_WINDOW) != 0)
        goto fail;
    c->proto_state = h;
    return 0;

fail:
    if (h->session != NULL)
        nghttp2_session_del(h->session);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    free(h);
    return -1;
}

static void h2_writable(struct conn *c)
{
    h2_t *h = state(c);
    h->drained_pending = 1;
    flush(h);
}

static void h2_tick(struct conn *c, uint64_t now)
{
    h2_t *h = state(c);
    const config_t *cfg = c->srv->cfg;

    if (h->ping_outstanding && now - h->ping_sent_ms >= (uint64_t)cfg->keepalive_ms) {
        log_info("conn_keepalive_timeout", "peer=%s", c->peer);
        conn_close(c);
        return;
    }
    if (h->draining && !h->goaway_sent && now - h->drain_ms >= H2_DRAIN_WAIT_MS) {
        final_goaway(h);
        flush(h);
        return;
    }
    if (h->nstreams == 0 && c->state == CONN_OPEN &&
        now - h->last_stream_ms >= (uint64_t)cfg->idle_timeout_ms) {
        conn_drain(c, 0, "idle timeout");
        return;
    }
    if (!h->ping_outstanding && c->state == CONN_OPEN &&
        now - c->last_read_ms >= (uint64_t)cfg->keepalive_ms) {
        uint8_t payload[8];
        for (int i = 0; i < 8; i++)
            payload[i] = (uint8_t)(now >> (56 - 8 * i));
        h->ping_outstanding = 1;
        h->ping_sent_ms = now;
        nghttp2_submit_ping(h->session, NGHTTP2_FLAG_NONE, payload);
        flush(h);
    }
}

static void h2_drain(struct conn *c, int code, const char *reason)
{
    h2_t *h = state(c);
    (void)code;   /* HTTP/2 says NO_ERROR for a graceful stop; the reason travels as debug data */
    c->state = CONN_DRAINING;
    snprintf(h->drain_reason, sizeof(h->drain_reason), "%s", reason ? reason : "");
    if (h->dead)
        return;
    /* Two steps, as RFC 9113 section 6.8 advises: a GOAWAY with the
     * largest stream id tells the client to open no more streams; once a
     * PING has come back (it has seen the notice), the final GOAWAY
     * names the last stream we took. */
    h->draining = 1;
    h->drain_ms = conn_now_ms(c);
    nghttp2_submit_shutdown_notice(h->session);
    nghttp2_submit_ping(h->session, NGHTTP2_FLAG_NONE, drain_ping);
    flush(h);
}

static void h2_closing(struct conn *c)
{
    h2_t *h = state(c);
    soon_close(h);
    /* Every app lets go of its stream (calls are detached: conn->state
     * is CONN_CLOSING). The records go in h2_free. */
    for (struct stream *s = h->streams; s != NULL; s = s->next) {
        const h2_app_t *app = s->pub.app;
        s->flags |= S_CLOSED;
        s->pub.app = NULL;
        if (app != NULL && app->on_close != NULL)
            app->on_close(&s->pub, NGHTTP2_CANCEL);
    }
}

static void h2_free(struct conn *c)
{
    h2_t *h = state(c);
    if (h == NULL)
        return;
    soon_close(h);
    /* nghttp2_session_del calls no stream callbacks. */
    nghttp2_session_del(h->session);
    while (h->streams != NULL) {
        struct stream *s = h->streams;
        stream_unlink(h, s);
        stream_free(s);
    }
    free(h->wbuf);
    free(h);
    c->proto_state = NULL;
}

const conn_proto_t sentra__h2_proto = {
    .name = "h2",
    .open = h2_open,
    .on_bytes = h2_on_bytes,
    .on_writable = h2_writable,
    .tick = h2_tick,
    .drain = h2_drain,
    .closing = h2_closing,
    .free = h2_free,
};
