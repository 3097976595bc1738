/*
 * conn.c: one client connection over TCP or a Unix socket: the socket, its
 * reads and writes, its timer and its place in the server's list (see
 * conn.h). The protocol spoken on it (native.c, ...) is chosen by the first
 * bytes the client sends (sniff) and does everything else. A first byte
 * that starts a TLS handshake puts a TLS session (tls.c) between the
 * socket and the protocol: on_read hands it the bytes, it hands back
 * plaintext (sentra__conn_plain); conn_write encrypts through it and it
 * queues the records (sentra__conn_write_raw), so that what is counted as
 * queued is what waits for the socket.
 *
 * Memory stays bounded per connection and in total (conn.h): an idle
 * connection holds no read buffer (reads land in one shared buffer and only
 * bytes the protocol left unused are copied out, into a buffer sized by
 * what came), partial frames together are bounded, and a client that does
 * not read its answers stops being read once CONN_WQ_HIGH bytes are queued
 * for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "server.h"
#include "status.h"
#include "tls.h"

#define READ_CHUNK (64 * 1024)
#define CLOSE_LINGER_MS 2000       /* a last answer gets this long to be written */
#define ALLOC_OVERHEAD 16          /* glibc: a chunk header, 16-byte alignment */
#define RBUF_MIN 256               /* smallest partial-frame buffer */
#define BIG_BUFFER (128 * 1024)    /* freeing one is worth giving memory back */

struct wreq {
    uv_write_t req;
    struct conn *conn;
    size_t cost;                   /* what it counts in wqueued */
    uint8_t *buf;
};

/* What a write of len bytes costs: the bytes, the request, two mallocs. */
#define WRITE_COST(len) ((len) + sizeof(struct wreq) + 2 * ALLOC_OVERHEAD)

/* One loop per thread reads through this buffer; see the file comment. */
static _Thread_local uint8_t shared_rbuf[READ_CHUNK];

static void start_reading(struct conn *c);
static void feed(struct conn *c, const uint8_t *data, size_t len);
static void rbuf_free(struct conn *c);
static void on_tick(uv_timer_t *t);

uint64_t conn_now_ms(const struct conn *c)
{
    return uv_now(c->srv->loop);
}

/* ---------------------------------------------------------------- closing */

static void on_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles > 0)
        return;
    if (c->proto != NULL && c->proto->free != NULL)
        c->proto->free(c);
    sentra__tls_conn_free(c);
    c->srv->wq_total -= c->kept;
    if (c->flags & CONN_F_REFUSED)
        c->srv->nrefused--;
    rbuf_free(c);
    auth_memo_free(c->auth_memo);
    server_conn_gone(c->srv, c);
    free(c);
}

void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    if (c->proto != NULL && c->proto->closing != NULL)
        c->proto->closing(c);
    uv_read_stop(&c->h.stream);
    uv_close(&c->h.handle, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

static void maybe_close(struct conn *c)
{
    if (!(c->flags & CONN_F_CLOSE_AFTER) || c->wqueued != 0)
        return;
    /* TLS ends with a close_notify, after everything else; its write's
     * completion comes back here. */
    if (c->tls != NULL && sentra__tls_close_notify(c))
        return;
    if (!(c->flags & CONN_F_LINGER)) {
        conn_close(c);
        return;
    }
    /* Half-close once; the client's EOF (on_read) or the linger deadline
     * (on_tick) closes. */
    c->flags &= ~CONN_F_LINGER;
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req == NULL)
        abort();
    if (uv_shutdown(req, &c->h.stream, on_shutdown) != 0) {
        free(req);
        conn_close(c);
    }
}

void conn_linger_close(struct conn *c)
{
    if (c->flags & CONN_F_CLOSE_AFTER)
        return;
    c->flags |= CONN_F_CLOSE_AFTER | CONN_F_LINGER;
    c->close_at_ms = conn_now_ms(c) + CLOSE_LINGER_MS;
    maybe_close(c);
}

void conn_close_after_write(struct conn *c)
{
    if (c->flags & CONN_F_CLOSE_AFTER)
        return;
    c->flags |= CONN_F_CLOSE_AFTER;
    c->close_at_ms = conn_now_ms(c) + CLOSE_LINGER_MS;
    uv_read_stop(&c->h.stream);
    maybe_close(c);
}

void conn_drain(struct conn *c, int code, const char *reason)
{
    if (c->state != CONN_OPEN)
        return;
    if (c->proto != NULL && c->proto->drain != NULL) {
        c->proto->drain(c, code, reason);
        return;
    }
    c->state = CONN_DRAINING;
    conn_close_after_write(c);
}

/* ---------------------------------------------------------------- writing */

static void resume(struct conn *c);

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->conn;
    c->wqueued -= w->cost;
    c->srv->wq_total -= w->cost;
    if (w->cost >= BIG_BUFFER)
        c->srv->mem_freed += w->cost;
    free(w->buf);
    free(w);
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        log_debug("conn_write_failed", "peer=%s error=%s", c->peer, uv_strerror(status));
        conn_close(c);
        return;
    }
    if ((c->flags & CONN_F_PAUSED) && c->wqueued < CONN_WQ_LOW) {
        c->flags &= ~CONN_F_PAUSED;
        if (c->proto != NULL && c->proto->on_writable != NULL)
            c->proto->on_writable(c);
        resume(c);
        if (c->state == CONN_CLOSING)
            return;
    }
    maybe_close(c);
}

/* Writes what the socket takes at once, without waiting (see conn_write);
 * returns how many bytes went. */
static size_t write_now(struct conn *c, const uint8_t *data, size_t len)
{
    /* Most answers fit in the socket's buffer: written here, at once,
     * they cost one write(2) and nothing else. Through uv_write alone
     * each also cost a request, a callback on the next loop turn and an
     * epoll_ctl (libuv re-arms the watcher after every completed write
     * request): a third of the system calls of a small request.
     * uv_try_write writes nothing while earlier writes wait (order is
     * kept). A close waiting for the queue to empty goes through
     * uv_write, so that on_write closes after the last byte. An error is
     * left to uv_write too, which reports it through on_write on a later
     * turn, as before: closing here, inside a protocol's call, could free
     * what its caller still uses. */
    if (c->wqueued != 0 || (c->flags & CONN_F_CLOSE_AFTER) || len == 0)
        return 0;
    uv_buf_t t = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write(&c->h.stream, &t, 1);
    return n > 0 ? (size_t)n : 0;
}

/* Queues data[0..n) through uv_write; buf (which holds it) is taken and
 * freed once written. Counted in wqueued as the whole write of whole bytes
 * (so that a client that reads slowly is paused exactly as when nothing
 * went at once: h2.c's flush relies on it). */
static void write_queue(struct conn *c, uint8_t *buf, const uint8_t *data, size_t n, size_t whole)
{
    struct wreq *w = malloc(sizeof(*w));
    if (w == NULL)
        abort();
    w->conn = c;
    w->cost = WRITE_COST(whole);
    w->buf = buf;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
    int r = uv_write(&w->req, &c->h.stream, &b, 1, on_write);
    if (r != 0) {
        free(buf);
        free(w);
        conn_close(c);
        return;
    }
    c->wqueued += w->cost;
    c->srv->wq_total += w->cost;
    if (!(c->flags & CONN_F_PAUSED) &&
        (c->wqueued > CONN_WQ_HIGH ||
         (c->srv->wq_total > SERVER_WQ_HIGH && c->wqueued > CONN_WQ_LOW))) {
        /* The client is not reading (or the server holds too much for
         * all): stop reading it until it catches up. The protocol's
         * on_bytes sees it at once (conn_reading_held). */
        c->flags |= CONN_F_PAUSED;
        uv_read_stop(&c->h.stream);
    }
}

void conn_write(struct conn *c, uint8_t *buf, size_t len)
{
    if (c->state == CONN_CLOSING) {
        free(buf);
        return;
    }
    if (c->tls != NULL) {
        sentra__tls_send(c, buf, len);  /* back in sentra__conn_write_raw */
        return;
    }
    sentra__conn_write_raw(c, buf, len);
}

void sentra__conn_write_raw(struct conn *c, uint8_t *buf, size_t len)
{
    if (c->state == CONN_CLOSING) {
        free(buf);
        return;
    }
    size_t off = write_now(c, buf, len);
    if (off == len && len > 0) {
        free(buf);
        return;
    }
    write_queue(c, buf, buf + off, len - off, len);
}

void conn_write_copy(struct conn *c, const uint8_t *data, size_t len)
{
    if (c->state == CONN_CLOSING)
        return;
    if (c->tls != NULL) {
        sentra__tls_write(c, data, len);  /* encrypted into its own buffer */
        return;
    }
    size_t off = write_now(c, data, len);
    if (off == len && len > 0)
        return;
    /* What is left, copied. */
    uint8_t *buf = malloc(len - off ? len - off : 1);
    if (buf == NULL)
        abort();
    memcpy(buf, data + off, len - off);
    write_queue(c, buf, buf, len - off, len);
}

int conn_answer_fits(const struct conn *c, size_t len)
{
    size_t cost = WRITE_COST(len), waiting = c->wqueued + c->kept;
    if (waiting < CONN_WQ_HIGH)
        return 1;
    return waiting + cost <= CONN_WQ_MAX && c->srv->wq_total + cost <= SERVER_WQ_MAX;
}

void conn_kept(struct conn *c, ptrdiff_t delta)
{
    c->kept = (size_t)((ptrdiff_t)c->kept + delta);
    c->srv->wq_total = (size_t)((ptrdiff_t)c->srv->wq_total + delta);
}

/* ---------------------------------------------------------------- reading */

int conn_reading_held(const struct conn *c)
{
    return c->state == CONN_CLOSING ||
           (c->flags & (CONN_F_CLOSE_AFTER | CONN_F_PAUSED | CONN_F_HELD | CONN_F_NOREAD));
}

/* ---------------------------------------------------------------- partial frames */

size_t conn_partial_max(const server_t *srv)
{
    size_t four = 4 * ((size_t)srv->cfg->max_frame + 12);
    return four > CONN_PARTIAL_MIN ? four : CONN_PARTIAL_MIN;
}

static void partial_unlink(struct conn *c)
{
    server_t *srv = c->srv;
    if (c->pprev != NULL)
        c->pprev->pnext = c->pnext;
    else
        srv->partial_head = c->pnext;
    if (c->pnext != NULL)
        c->pnext->pprev = c->pprev;
    else
        srv->partial_tail = c->pprev;
    c->pnext = c->pprev = NULL;
}

/* Resizes rbuf to cap bytes (0: frees it), keeping srv->partial_total and
 * the list of partial frames right. */
static void rbuf_resize(struct conn *c, size_t cap)
{
    server_t *srv = c->srv;
    if (cap == c->rcap)
        return;
    if (cap == 0) {
        if (c->rcap >= BIG_BUFFER)
            srv->mem_freed += c->rcap;
        free(c->rbuf);
        c->rbuf = NULL;
    } else {
        uint8_t *p = realloc(c->rbuf, cap);
        if (p == NULL)
            abort();
        c->rbuf = p;
    }
    if (c->rcap == 0 && cap > 0) {
        /* A partial frame begins: the newest. */
        c->partial_ms = conn_now_ms(c);
        c->pprev = srv->partial_tail;
        c->pnext = NULL;
        if (srv->partial_tail != NULL)
            srv->partial_tail->pnext = c;
        else
            srv->partial_head = c;
        srv->partial_tail = c;
    } else if (cap == 0) {
        partial_unlink(c);
    }
    srv->partial_total = srv->partial_total - c->rcap + cap;
    c->rcap = cap;
}

static void rbuf_free(struct conn *c)
{
    rbuf_resize(c, 0);
    c->rlen = 0;
}

/* The capacity for need bytes: what came, and as much again (at most), so
 * that a frame arriving in many reads is copied O(1) times per byte. */
static size_t rbuf_cap_for(size_t need)
{
    size_t cap = RBUF_MIN;
    while (cap < need)
        cap *= 2;
    return cap;
}

/* Sends connections away, the oldest partial frame first, until all
 * partial frames fit again. */
static void partial_enforce(server_t *srv)
{
    size_t max = conn_partial_max(srv);
    while (srv->partial_total > max && srv->partial_head != NULL) {
        struct conn *c = srv->partial_head;
        log_warn("conn_partial_evicted", "peer=%s bytes=%zu age_ms=%llu total=%zu", c->peer,
                 c->rlen, (unsigned long long)(conn_now_ms(c) - c->partial_ms),
                 srv->partial_total);
        rbuf_free(c);
        c->flags |= CONN_F_NOREAD;
        uv_read_stop(&c->h.stream);
        /* GOAWAY: its requests in flight are still answered. */
        conn_drain(c, SENTRA_RESOURCE_EXHAUSTED,
                   "server memory for partial frames is full; this connection's was the oldest");
    }
}

/* Keeps data[0..len) as the connection's unused bytes (len may be 0;
 * data may point into rbuf itself). */
static void rbuf_keep(struct conn *c, const uint8_t *data, size_t len)
{
    if (len == 0) {
        rbuf_free(c);
        return;
    }
    if (c->rbuf != NULL && data >= c->rbuf && data < c->rbuf + c->rcap) {
        memmove(c->rbuf, data, len);
        c->rlen = len;
        /* A buffer twice too large (a big frame just went) shrinks. */
        if (c->rcap > 2 * rbuf_cap_for(len))
            rbuf_resize(c, rbuf_cap_for(len));
        return;
    }
    if (c->rcap < len || c->rcap > 2 * rbuf_cap_for(len))
        rbuf_resize(c, rbuf_cap_for(len));
    memcpy(c->rbuf, data, len);
    c->rlen = len;
}

/*
 * The protocol for the first bytes of a connection. The native framing
 * starts with a 4-byte big-endian payload length no larger than the
 * maximum frame (under 16 MiB), so its first byte is always 0; HTTP/2's
 * preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", what every gRPC client sends
 * in plaintext) and HTTP/1.1's request line start with an upper-case
 * letter. Returns NULL while too few bytes have come to tell.
 */
static const conn_proto_t *sniff(const uint8_t *data, size_t len)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const size_t plen = sizeof(preface) - 1;
    if (len == 0)
        return NULL;
    if (data[0] == 'P') {
        /* HTTP/2's preface, or one of its first bytes so far (wait). */
        size_t n = len < plen ? len : plen;
        if (memcmp(data, preface, n) == 0)
            return n == plen ? &sentra__h2_proto : NULL;
    }
    if (data[0] >= 'A' && data[0] <= 'Z')
        return &sentra__http1_proto;
    /* A 0 byte, or anything else (the native codec refuses garbage with a
     * GOAWAY). */
    return &sentra__native_proto;
}

int conn_choose_proto(struct conn *c, const conn_proto_t *p)
{
    /* A connection refused at accept is never served: feed answers it as
     * refused, in the protocol its bytes speak (refuse.c), whoever would
     * have chosen the protocol (ALPN too). */
    if (c->flags & CONN_F_REFUSED)
        return 0;
    c->proto = p;
    if (p->open != NULL && p->open(c) != 0) {
        c->proto = NULL;
        conn_close(c);
        return -1;
    }
    log_debug("conn_protocol", "peer=%s protocol=%s", c->peer, p->name);
    return 0;
}

/* Gives the protocol data[0..len) and keeps what it left unused. */
static void feed(struct conn *c, const uint8_t *data, size_t len)
{
    if (c->proto == NULL) {
        const conn_proto_t *p = NULL;
        if (c->flags & CONN_F_REFUSED) {
            /* Answered in the protocol it speaks (refuse.c); until then
             * its bytes are kept, after that dropped. */
            if (!(c->flags & CONN_F_CLOSE_AFTER) && (p = sniff(data, len)) != NULL)
                sentra__conn_refuse(c, p);
            if (c->flags & CONN_F_CLOSE_AFTER)
                rbuf_free(c);
            else
                rbuf_keep(c, data, len);
            return;
        }
        p = sniff(data, len);
        if (p == NULL) {
            rbuf_keep(c, data, len);
            return;
        }
        if (conn_choose_proto(c, p) != 0)
            return;
    }
    size_t used = c->proto->on_bytes(c, data, len);
    if (c->state == CONN_CLOSING)
        return;
    if (used >= len || (c->flags & (CONN_F_CLOSE_AFTER | CONN_F_NOREAD))) {
        /* Idle connections keep no buffer. */
        rbuf_free(c);
        return;
    }
    rbuf_keep(c, data + used, len - used);
}

/*
 * The first byte of a connection: a TLS handshake record starts a TLS
 * session (when --tls-cert is set); under --tls-only anything else on TCP
 * is refused. Returns 0 (go on), or -1 when the connection is closing.
 */
static int first_byte(struct conn *c, const uint8_t *data)
{
    server_t *srv = c->srv;
    if (data[0] == TLS_RECORD_HANDSHAKE) {
        if (srv->tls == NULL) {
            log_info("conn_tls_refused", "peer=%s reason=\"TLS handshake, but TLS is not configured "
                     "(--tls-cert)\"", c->peer);
            conn_close(c);
            return -1;
        }
        if (sentra__tls_accept(c) != 0)
            return -1;
        /* The handshake has a deadline of its own (on_tick): when it is
         * shorter than the timer's period the next run is at it, else the
         * period's runs check it. Later runs keep the period. */
        uint64_t deadline = (uint64_t)srv->cfg->tls_handshake_timeout_ms;
        uv_timer_start(&c->timer, on_tick, deadline < c->tick_ms ? deadline : c->tick_ms, c->tick_ms);
        return 0;
    }
    if (srv->cfg->tls_only && (c->flags & CONN_F_TCP)) {
        log_info("conn_plaintext_refused", "peer=%s reason=\"--tls-only: TLS is required on TCP\"", c->peer);
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Reads always land in the shared buffer: a connection's own buffer holds
 * only bytes that came, never room that a frame header asks for. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = (char *)shared_rbuf;
    buf->len = sizeof(shared_rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    size_t n = nread > 0 ? (size_t)nread : 0;
    if (nread < 0) {
        if (nread != UV_EOF)
            log_debug("conn_read_failed", "peer=%s error=%s", c->peer, uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (n == 0 || (c->flags & CONN_F_NOREAD))
        return;
    c->last_read_ms = conn_now_ms(c);
    if (c->tls == NULL && c->proto == NULL && c->rlen == 0 &&
        first_byte(c, (const uint8_t *)buf->base) != 0)
        return;
    if (c->tls != NULL) {
        /* Ciphertext: the plaintext comes back through sentra__conn_plain,
         * which keeps and bounds what the protocol leaves. */
        sentra__tls_recv(c, (const uint8_t *)buf->base, n);
        if (c->state != CONN_CLOSING && conn_reading_held(c))
            uv_read_stop(&c->h.stream);
        return;
    }
    sentra__conn_plain(c, (const uint8_t *)buf->base, n);
}

void sentra__conn_plain(struct conn *c, const uint8_t *data, size_t n)
{
    if (c->rlen == 0) {
        feed(c, data, n);
    } else {
        /* After the bytes of the partial frame. */
        if (c->rcap - c->rlen < n)
            rbuf_resize(c, rbuf_cap_for(c->rlen + n));
        memcpy(c->rbuf + c->rlen, data, n);
        c->rlen += n;
        partial_enforce(c->srv);
        if (c->state == CONN_CLOSING || (c->flags & CONN_F_NOREAD))
            return;
        feed(c, c->rbuf, c->rlen);
    }
    if (c->state == CONN_CLOSING)
        return;
    if (c->rlen > 0)
        partial_enforce(c->srv);
    if (c->state != CONN_CLOSING && conn_reading_held(c))
        uv_read_stop(&c->h.stream);
}

static void start_reading(struct conn *c)
{
    if (conn_reading_held(c))
        return;
    uv_read_start(&c->h.stream, on_alloc, on_read);
}

/* Reading may go on: first the bytes already here (the client may have
 * sent everything and now wait), then the socket. */
static void resume(struct conn *c)
{
    if (conn_reading_held(c))
        return;
    if (c->rlen > 0) {
        feed(c, c->rbuf, c->rlen);
        if (conn_reading_held(c))
            return;
    }
    start_reading(c);
}

void conn_hold(struct conn *c, int held)
{
    if (held) {
        c->flags |= CONN_F_HELD;
        uv_read_stop(&c->h.stream);
        return;
    }
    if (!(c->flags & CONN_F_HELD))
        return;
    c->flags &= ~CONN_F_HELD;
    if (c->state == CONN_CLOSING)
        return;
    /* From the loop, not from inside the caller (which may be answering a
     * call): the timer's next run gives the waiting bytes to the protocol. */
    c->flags |= CONN_F_REFEED;
    uv_timer_start(&c->timer, on_tick, 0, c->tick_ms);
}

/* ---------------------------------------------------------------- timer */

static void on_tick(uv_timer_t *t)
{
    struct conn *c = t->data;
    uint64_t now = conn_now_ms(c);

    if (c->state == CONN_CLOSING)
        return;
    if (c->flags & CONN_F_REFEED) {
        c->flags &= ~CONN_F_REFEED;
        resume(c);
        if (c->state == CONN_CLOSING)
            return;
    }
    if (c->flags & CONN_F_CLOSE_AFTER) {
        if (now >= c->close_at_ms)
            conn_close(c);
        return;
    }
    if (sentra__tls_handshaking(c) &&
        now - c->opened_ms >= (uint64_t)c->srv->cfg->tls_handshake_timeout_ms) {
        /* A slow (or stalled) handshake must not pin a session's memory. */
        log_info("tls_handshake_timeout", "peer=%s timeout_ms=%d", c->peer,
                 c->srv->cfg->tls_handshake_timeout_ms);
        conn_close(c);
        return;
    }
    if (c->proto == NULL) {
        if ((c->flags & CONN_F_REFUSED) && c->rlen > 0) {
            /* A refused client that spoke: its answer may be due now. */
            feed(c, c->rbuf, c->rlen);
            if (c->state == CONN_CLOSING || (c->flags & CONN_F_CLOSE_AFTER))
                return;
        }
        /* Connected but silent, or too few bytes to tell a protocol: the
         * idle timeout applies (a refused connection's short wait). */
        uint64_t limit = (c->flags & CONN_F_REFUSED) ? CONN_REFUSE_WAIT_MS
                                                     : (uint64_t)c->srv->cfg->idle_timeout_ms;
        if (now - c->opened_ms >= limit)
            conn_close(c);
        return;
    }
    if (c->proto->tick != NULL)
        c->proto->tick(c, now);
}

/* ---------------------------------------------------------------- accept */

/* Tests make this fail (tests/unit/test_conn_accept.c). */
void *(*sentra__conn_calloc)(size_t, size_t) = calloc;

void conn_accept(server_t *srv, uv_stream_t *listener)
{
    /* Out of memory: abort, as everywhere in the server (call_alloc,
     * conn_write). Returning would leave the connection unaccepted, and
     * libuv then stops accepting on this listener for good. */
    struct conn *c = sentra__conn_calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error("out_of_memory", "where=conn_accept");
        abort();
    }
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
    c->opened_ms = c->last_read_ms = conn_now_ms(c);

    const config_t *cfg = srv->cfg;
    uint64_t tick = (uint64_t)(cfg->keepalive_ms < cfg->idle_timeout_ms ? cfg->keepalive_ms
                                                                      : cfg->idle_timeout_ms) / 4;
    if (tick < 100)
        tick = 100;
    if (tick > 5000)
        tick = 5000;
    if (srv->nconns - srv->nrefused > cfg->max_connections || srv->stopping) {
        /* Refused before it spoke: its first bytes say which protocol the
         * refusal must be in (sentra__conn_refuse, in feed); one that says
         * nothing is closed after CONN_REFUSE_WAIT_MS (on_tick). */
        if (srv->nrefused >= CONN_REFUSE_MAX) {
            conn_close(c);
            return;
        }
        c->flags |= CONN_F_REFUSED;
        srv->nrefused++;
        tick = 100;
    }
    c->tick_ms = tick;
    uv_timer_start(&c->timer, on_tick, tick, tick);
    if (!(c->flags & CONN_F_REFUSED))
        log_debug("conn_open", "peer=%s conns=%d", c->peer, srv->nconns);
    start_reading(c);
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
