/*
 * conn.c: one client connection over TCP or a Unix socket.
 *
 * Bytes come in through libuv, the codec (common/frame.c) cuts them into
 * frames, and each REQUEST frame becomes a call (call.c). Answers leave
 * through conn_send_response(). This file knows frames; handlers do not.
 *
 * Memory stays bounded per connection: an idle connection holds no read
 * buffer (reads land in one shared buffer and only a partial frame is
 * copied out), a frame can be no larger than max_frame, requests in flight
 * are capped (max_inflight), and a client that does not read its replies
 * stops being read once WQ_HIGH bytes are queued for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "server.h"

#define READ_CHUNK (64 * 1024)
#define WQ_HIGH (1024 * 1024)      /* stop reading above this many queued bytes */
#define WQ_LOW (256 * 1024)        /* resume below this */
#define CLOSE_LINGER_MS 2000       /* a GOAWAY gets this long to be written */

enum conn_state {
    CONN_OPEN,      /* serving */
    CONN_DRAINING,  /* GOAWAY sent: answering what is in flight, then closing */
    CONN_CLOSING    /* handles closing; freed in the last close callback */
};

#define CONN_F_PAUSED      0x01  /* reading stopped: too much queued to write */
#define CONN_F_CLOSE_AFTER 0x02  /* close once the write queue is empty */
#define CONN_F_TCP         0x04  /* handle is a uv_tcp_t (else a uv_pipe_t) */

struct conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;                        /* the socket; h.handle.data == this */
    uv_timer_t timer;           /* idle timeout, keepalive, close linger */
    server_t *srv;              /* owner */
    enum conn_state state;      /* see enum */
    unsigned flags;             /* CONN_F_* */
    int handles;                /* handles still open (socket, timer) */
    uint8_t *rbuf;              /* a partial frame carried between reads */
    size_t rlen, rcap;          /* bytes held, bytes allocated */
    call_t *calls;              /* calls in flight (doubly linked) */
    int ncalls;                 /* how many */
    size_t wqueued;             /* bytes handed to uv_write, not yet written */
    uint32_t max_stream_id;     /* highest request stream id seen */
    uint64_t last_read_ms;      /* last bytes received */
    uint64_t last_request_ms;   /* last request started (idle timeout) */
    uint64_t ping_sent_ms;      /* when our keepalive PING left */
    uint64_t close_at_ms;       /* CLOSE_AFTER deadline */
    int ping_outstanding;       /* a PING of ours awaits its PONG */
    struct conn *next, *prev;   /* in srv->conns */
    char peer[64];              /* "ip:port" or "unix" */
};

struct wreq {
    uv_write_t req;
    struct conn *conn;
    size_t len;
    uint8_t *buf;
};

/* One loop per thread reads through this buffer; see the file comment. */
static _Thread_local uint8_t shared_rbuf[READ_CHUNK];

static void protocol_error(struct conn *c, int code, const char *reason);
static void resume_reading(struct conn *c);

static uint64_t now_ms(const struct conn *c)
{
    return uv_now(c->srv->loop);
}

/* ---------------------------------------------------------------- closing */

static void on_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles > 0)
        return;
    free(c->rbuf);
    server_conn_gone(c->srv, c);
    free(c);
}

void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    while (c->calls != NULL) {
        call_t *call = c->calls;
        c->calls = call->next;
        c->ncalls--;
        call_detach(call);
    }
    uv_read_stop(&c->h.stream);
    uv_close(&c->h.handle, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void maybe_close(struct conn *c)
{
    if ((c->flags & CONN_F_CLOSE_AFTER) && c->wqueued == 0)
        conn_close(c);
}

static void close_after_write(struct conn *c)
{
    if (c->flags & CONN_F_CLOSE_AFTER)
        return;
    c->flags |= CONN_F_CLOSE_AFTER;
    c->close_at_ms = now_ms(c) + CLOSE_LINGER_MS;
    uv_read_stop(&c->h.stream);
    maybe_close(c);
}

/* ---------------------------------------------------------------- writing */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->conn;
    c->wqueued -= w->len;
    free(w->buf);
    free(w);
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        log_debug("conn_write_failed", "peer=%s error=%s", c->peer, uv_strerror(status));
        conn_close(c);
        return;
    }
    if ((c->flags & CONN_F_PAUSED) && c->wqueued < WQ_LOW && c->state == CONN_OPEN &&
        !(c->flags & CONN_F_CLOSE_AFTER)) {
        c->flags &= ~CONN_F_PAUSED;
        resume_reading(c);
    }
    maybe_close(c);
}

/* Queues buf (a whole frame, header included) and takes ownership of it. */
static void queue_frame(struct conn *c, uint8_t *buf, size_t len)
{
    if (c->state == CONN_CLOSING) {
        free(buf);
        return;
    }
    struct wreq *w = malloc(sizeof(*w));
    if (w == NULL)
        abort();
    w->conn = c;
    w->len = len;
    w->buf = buf;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    int r = uv_write(&w->req, &c->h.stream, &b, 1, on_write);
    if (r != 0) {
        free(buf);
        free(w);
        conn_close(c);
        return;
    }
    c->wqueued += len;
    if (c->wqueued > WQ_HIGH && !(c->flags & CONN_F_PAUSED)) {
        /* The client is not reading: stop reading it until it catches up. */
        c->flags |= CONN_F_PAUSED;
        uv_read_stop(&c->h.stream);
    }
}

static void send_frame(struct conn *c, uint8_t type, uint32_t stream_id,
                       const void *payload, size_t len)
{
    uint8_t *buf = malloc(SENTRA_FRAME_HEADER_LEN + len);
    if (buf == NULL)
        abort();
    sentra_frame_header(buf, type, 0, stream_id, (uint32_t)len);
    if (len > 0)
        memcpy(buf + SENTRA_FRAME_HEADER_LEN, payload, len);
    queue_frame(c, buf, SENTRA_FRAME_HEADER_LEN + len);
}

void conn_send_response(struct conn *c, uint32_t stream_id, uint8_t *buf, size_t len)
{
    sentra_frame_header(buf, SENTRA_FRAME_RESPONSE, 0, stream_id, (uint32_t)len);
    queue_frame(c, buf, SENTRA_FRAME_HEADER_LEN + len);
}

/* A RESPONSE that needs no call: refusals before a call exists. */
static void send_status(struct conn *c, uint32_t stream_id, int code, const char *msg)
{
    Sentra__V1__Response r = SENTRA__V1__RESPONSE__INIT;
    r.code = (Sentra__V1__Code)code;
    r.message = (char *)msg;
    size_t len = sentra__v1__response__get_packed_size(&r);
    uint8_t *buf = malloc(SENTRA_FRAME_HEADER_LEN + len);
    if (buf == NULL)
        abort();
    sentra__v1__response__pack(&r, buf + SENTRA_FRAME_HEADER_LEN);
    conn_send_response(c, stream_id, buf, len);
}

static void send_goaway(struct conn *c, int code, const char *reason)
{
    Sentra__V1__GoAway g = SENTRA__V1__GO_AWAY__INIT;
    g.last_stream_id = c->max_stream_id;
    g.code = (Sentra__V1__Code)code;
    g.reason = (char *)reason;
    size_t len = sentra__v1__go_away__get_packed_size(&g);
    uint8_t *buf = malloc(SENTRA_FRAME_HEADER_LEN + len);
    if (buf == NULL)
        abort();
    sentra_frame_header(buf, SENTRA_FRAME_GOAWAY, 0, 0, (uint32_t)len);
    sentra__v1__go_away__pack(&g, buf + SENTRA_FRAME_HEADER_LEN);
    queue_frame(c, buf, SENTRA_FRAME_HEADER_LEN + len);
}

void conn_drain(struct conn *c, int code, const char *reason)
{
    if (c->state != CONN_OPEN)
        return;
    c->state = CONN_DRAINING;
    send_goaway(c, code, reason);
    if (c->ncalls == 0)
        close_after_write(c);
}

/* A violation of the protocol: GOAWAY naming it, then close. Calls in
 * flight are cancelled: nothing more from this peer can be trusted. */
static void protocol_error(struct conn *c, int code, const char *reason)
{
    log_info("conn_protocol_error", "peer=%s reason=\"%s\"", c->peer, reason);
    if (c->state == CONN_CLOSING)
        return;
    while (c->calls != NULL) {
        call_t *call = c->calls;
        c->calls = call->next;
        c->ncalls--;
        call_detach(call);
    }
    c->state = CONN_DRAINING;
    send_goaway(c, code, reason);
    close_after_write(c);
}

void conn_call_done(struct conn *c, call_t *call)
{
    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    call->next = call->prev = NULL;
    c->ncalls--;
    call_unref(call);
    if (c->state == CONN_DRAINING && c->ncalls == 0)
        close_after_write(c);
}

/* ---------------------------------------------------------------- frames */

static void on_request(struct conn *c, const sentra_frame_t *f)
{
    if (f->stream_id <= c->max_stream_id) {
        protocol_error(c, SENTRA_INVALID_ARGUMENT, "stream ids must increase");
        return;
    }
    c->max_stream_id = f->stream_id;
    if (c->state != CONN_OPEN) {
        send_status(c, f->stream_id, SENTRA_UNAVAILABLE, "server is going away; retry on a new connection");
        return;
    }
    if (c->ncalls >= c->srv->cfg->max_inflight) {
        send_status(c, f->stream_id, SENTRA_RESOURCE_EXHAUSTED, "too many requests in flight on this connection");
        return;
    }
    Sentra__V1__Request *req = sentra__v1__request__unpack(NULL, f->length, f->payload);
    if (req == NULL) {
        send_status(c, f->stream_id, SENTRA_INVALID_ARGUMENT, "request envelope is not a valid sentra.v1.Request");
        return;
    }
    c->last_request_ms = now_ms(c);

    call_t *call = call_new(c->srv, c, f->stream_id);
    call->next = c->calls;
    if (c->calls != NULL)
        c->calls->prev = call;
    c->calls = call;
    c->ncalls++;
    call_start(call, req);
    sentra__v1__request__free_unpacked(req, NULL);
}

static void on_cancel(struct conn *c, uint32_t stream_id)
{
    for (call_t *call = c->calls; call != NULL; call = call->next) {
        if (call->stream_id == stream_id) {
            call_cancel(call, SENTRA_CANCELLED);
            return;
        }
    }
    /* Already answered, or never seen: nothing to do. */
}

static void on_frame(struct conn *c, const sentra_frame_t *f)
{
    switch (f->type) {
    case SENTRA_FRAME_REQUEST:
        on_request(c, f);
        break;
    case SENTRA_FRAME_CANCEL:
        on_cancel(c, f->stream_id);
        break;
    case SENTRA_FRAME_PING:
        c->last_request_ms = now_ms(c);
        send_frame(c, SENTRA_FRAME_PONG, 0, f->payload, f->length);
        break;
    case SENTRA_FRAME_PONG:
        c->ping_outstanding = 0;
        break;
    case SENTRA_FRAME_GOAWAY:
        /* The client is leaving; it will close. Answer what is in flight. */
        break;
    case SENTRA_FRAME_RESPONSE:
        protocol_error(c, SENTRA_INVALID_ARGUMENT, "clients do not send RESPONSE frames");
        break;
    }
}

/* Decodes and handles the frames in data[0..len); returns the bytes used. */
static size_t on_bytes(struct conn *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len && c->state != CONN_CLOSING && !(c->flags & CONN_F_CLOSE_AFTER)) {
        sentra_frame_t f;
        size_t used;
        int r = sentra_frame_decode(data + off, len - off, c->srv->cfg->max_frame, &f, &used);
        if (r == SENTRA_FRAME_NEED_MORE)
            break;
        if (r == SENTRA_FRAME_OK) {
            on_frame(c, &f);
            off += used;
            continue;
        }
        char reason[160];
        if (r == SENTRA_FRAME_ETOOBIG) {
            snprintf(reason, sizeof(reason), "frame of %u bytes exceeds the maximum frame size of %u bytes",
                     f.length, c->srv->cfg->max_frame);
            if (f.type == SENTRA_FRAME_REQUEST && f.stream_id > c->max_stream_id) {
                c->max_stream_id = f.stream_id;
                send_status(c, f.stream_id, SENTRA_RESOURCE_EXHAUSTED, reason);
            }
            protocol_error(c, SENTRA_RESOURCE_EXHAUSTED, reason);
        } else {
            snprintf(reason, sizeof(reason), "protocol error: %s", sentra_frame_strerror(r));
            protocol_error(c, SENTRA_INVALID_ARGUMENT, reason);
        }
        return len;
    }
    return off;
}

/* ---------------------------------------------------------------- reading */

static void ensure_rbuf(struct conn *c, size_t need)
{
    if (c->rcap >= need)
        return;
    uint8_t *p = realloc(c->rbuf, need);
    if (p == NULL)
        abort();
    c->rbuf = p;
    c->rcap = need;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    if (c->rlen == 0) {
        buf->base = (char *)shared_rbuf;
        buf->len = sizeof(shared_rbuf);
        return;
    }
    /* A partial frame is waiting: read after it, with room for the whole
     * frame when its header says how long it is (already checked against
     * max_frame by the decoder). */
    size_t need = c->rlen + READ_CHUNK;
    if (c->rlen >= SENTRA_FRAME_HEADER_LEN) {
        size_t flen = SENTRA_FRAME_HEADER_LEN + ((size_t)c->rbuf[0] << 24 | (size_t)c->rbuf[1] << 16 |
                                                 (size_t)c->rbuf[2] << 8 | c->rbuf[3]);
        if (flen > need && flen <= (size_t)c->srv->cfg->max_frame + SENTRA_FRAME_HEADER_LEN)
            need = flen;
    }
    ensure_rbuf(c, need);
    buf->base = (char *)c->rbuf + c->rlen;
    buf->len = c->rcap - c->rlen;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        if (nread != UV_EOF)
            log_debug("conn_read_failed", "peer=%s error=%s", c->peer, uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    c->last_read_ms = now_ms(c);

    if ((uint8_t *)buf->base == shared_rbuf) {
        size_t used = on_bytes(c, shared_rbuf, (size_t)nread);
        if (used < (size_t)nread && c->state != CONN_CLOSING && !(c->flags & CONN_F_CLOSE_AFTER)) {
            size_t left = (size_t)nread - used;
            ensure_rbuf(c, left > READ_CHUNK ? left : READ_CHUNK);
            memcpy(c->rbuf, shared_rbuf + used, left);
            c->rlen = left;
        }
        return;
    }
    c->rlen += (size_t)nread;
    size_t used = on_bytes(c, c->rbuf, c->rlen);
    if (c->state == CONN_CLOSING)
        return;
    if (used > 0) {
        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= used;
    }
    if (c->rlen == 0) {
        /* Idle connections keep no buffer. */
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
}

static void resume_reading(struct conn *c)
{
    uv_read_start(&c->h.stream, on_alloc, on_read);
}

/* ---------------------------------------------------------------- timer */

static void on_tick(uv_timer_t *t)
{
    struct conn *c = t->data;
    const config_t *cfg = c->srv->cfg;
    uint64_t now = now_ms(c);

    if (c->state == CONN_CLOSING)
        return;
    if (c->flags & CONN_F_CLOSE_AFTER) {
        if (now >= c->close_at_ms)
            conn_close(c);
        return;
    }
    if (c->ping_outstanding && now - c->ping_sent_ms >= (uint64_t)cfg->keepalive_ms) {
        log_info("conn_keepalive_timeout", "peer=%s", c->peer);
        conn_close(c);
        return;
    }
    if (c->ncalls == 0 && c->state == CONN_OPEN &&
        now - c->last_request_ms >= (uint64_t)cfg->idle_timeout_ms) {
        conn_drain(c, SENTRA_UNAVAILABLE, "idle timeout");
        return;
    }
    if (!c->ping_outstanding && now - c->last_read_ms >= (uint64_t)cfg->keepalive_ms) {
        uint8_t payload[8];
        for (int i = 0; i < 8; i++)
            payload[i] = (uint8_t)(now >> (56 - 8 * i));
        c->ping_outstanding = 1;
        c->ping_sent_ms = now;
        send_frame(c, SENTRA_FRAME_PING, 0, payload, sizeof(payload));
    }
}

/* ---------------------------------------------------------------- accept */

void conn_accept(server_t *srv, uv_stream_t *listener)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    int r;
    if (listener->type == UV_TCP) {
        uv_tcp_init(srv->loop, &c->h.tcp);
        c->flags |= CONN_F_TCP;
    } else {
        uv_pipe_init(srv->loop, &c->h.pipe, 0);
    }
    c->h.handle.data = c;
    c->srv = srv;
    c->handles = 2;
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;

    /* Linked first, so that closing always finds it in the list. */
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;

    if ((r = uv_accept(listener, &c->h.stream)) != 0) {
        log_warn("accept_failed", "error=%s", uv_strerror(r));
        conn_close(c);
        return;
    }
    snprintf(c->peer, sizeof(c->peer), "unix");
    if (c->flags & CONN_F_TCP) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        uv_tcp_nodelay(&c->h.tcp, 1);
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
            char ip[48];
            if (ss.ss_family == AF_INET) {
                uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
                snprintf(c->peer, sizeof(c->peer), "%s:%d", ip,
                         ntohs(((struct sockaddr_in *)&ss)->sin_port));
            } else if (ss.ss_family == AF_INET6) {
                uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
                snprintf(c->peer, sizeof(c->peer), "[%s]:%d", ip,
                         ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
            }
        }
    }
    c->last_read_ms = c->last_request_ms = now_ms(c);

    const config_t *cfg = srv->cfg;
    uint64_t tick = (uint64_t)(cfg->keepalive_ms < cfg->idle_timeout_ms ? cfg->keepalive_ms
                                                                      : cfg->idle_timeout_ms) / 4;
    if (tick < 100)
        tick = 100;
    if (tick > 5000)
        tick = 5000;
    uv_timer_start(&c->timer, on_tick, tick, tick);

    if (srv->nconns > cfg->max_connections) {
        conn_drain(c, SENTRA_RESOURCE_EXHAUSTED, "too many connections");
        return;
    }
    if (srv->stopping) {
        conn_drain(c, SENTRA_UNAVAILABLE, "server shutting down");
        return;
    }
    log_debug("conn_open", "peer=%s conns=%d", c->peer, srv->nconns);
    uv_read_start(&c->h.stream, on_alloc, on_read);
}

/* Used by server.c to walk connections. */
struct conn *sentra__conn_next(struct conn *c)
{
    return c->next;
}

void sentra__conn_unlink(server_t *srv, struct conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->nconns--;
}
