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
 * Memory stays bounded per connection: an idle connection holds no read
 * buffer (reads land in one shared buffer and only bytes the protocol left
 * unused are copied out), and a client that does not read its answers
 * stops being read once CONN_WQ_HIGH bytes are queued for it.
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

struct wreq {
    uv_write_t req;
    struct conn *conn;
    size_t len;
    uint8_t *buf;
};

/* One loop per thread reads through this buffer; see the file comment. */
static _Thread_local uint8_t shared_rbuf[READ_CHUNK];

static void start_reading(struct conn *c);
static void feed(struct conn *c, const uint8_t *data, size_t len);
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
    free(c->rbuf);
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
    if ((c->flags & CONN_F_PAUSED) && c->wqueued < CONN_WQ_LOW) {
        c->flags &= ~CONN_F_PAUSED;
        if (c->proto != NULL && c->proto->on_writable != NULL)
            c->proto->on_writable(c);
        if (c->state != CONN_CLOSING && !(c->flags & CONN_F_CLOSE_AFTER))
            start_reading(c);
    }
    maybe_close(c);
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
    if (c->wqueued > CONN_WQ_HIGH && !(c->flags & CONN_F_PAUSED)) {
        /* The client is not reading: stop reading it until it catches up. */
        c->flags |= CONN_F_PAUSED;
        uv_read_stop(&c->h.stream);
    }
}

/* ---------------------------------------------------------------- reading */

int conn_reading_held(const struct conn *c)
{
    return c->state == CONN_CLOSING || (c->flags & (CONN_F_CLOSE_AFTER | CONN_F_PAUSED | CONN_F_HELD));
}

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
        const conn_proto_t *p = sniff(data, len);
        if (p == NULL) {
            ensure_rbuf(c, len > READ_CHUNK ? len : READ_CHUNK);
            if (data != c->rbuf)
                memcpy(c->rbuf, data, len);
            c->rlen = len;
            return;
        }
        if (conn_choose_proto(c, p) != 0)
            return;
    }
    size_t used = c->proto->on_bytes(c, data, len);
    if (c->state == CONN_CLOSING)
        return;
    if (used >= len || (c->flags & CONN_F_CLOSE_AFTER)) {
        /* Idle connections keep no buffer. */
        free(c->rbuf);
        c->rbuf = NULL;
        c->rlen = c->rcap = 0;
        return;
    }
    size_t left = len - used;
    if (data == c->rbuf) {
        memmove(c->rbuf, c->rbuf + used, left);
    } else {
        ensure_rbuf(c, left > READ_CHUNK ? left : READ_CHUNK);
        memcpy(c->rbuf, data + used, left);
    }
    c->rlen = left;
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
        uint64_t period = uv_timer_get_repeat(&c->timer);
        uint64_t deadline = (uint64_t)srv->cfg->tls_handshake_timeout_ms;
        uv_timer_start(&c->timer, on_tick, deadline < period ? deadline : period, period);
        return 0;
    }
    if (srv->cfg->tls_only && (c->flags & CONN_F_TCP)) {
        log_info("conn_plaintext_refused", "peer=%s reason=\"--tls-only: TLS is required on TCP\"", c->peer);
        conn_close(c);
        return -1;
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    /* Ciphertext is never kept here (OpenSSL keeps a partial record):
     * TLS reads always land in the shared buffer. */
    if (c->rlen == 0 || c->tls != NULL) {
        buf->base = (char *)shared_rbuf;
        buf->len = sizeof(shared_rbuf);
        return;
    }
    /* Bytes are waiting (a partial frame): read after them, with room for
     * the whole frame when its header says how long it is (already checked
     * against max_frame by the decoder). */
    size_t need = c->rlen + READ_CHUNK;
    if (c->proto == &sentra__native_proto && c->rlen >= 4) {
        size_t flen = 12 + ((size_t)c->rbuf[0] << 24 | (size_t)c->rbuf[1] << 16 |
                            (size_t)c->rbuf[2] << 8 | c->rbuf[3]);
        if (flen > need && flen <= (size_t)c->srv->cfg->max_frame + 12)
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
    c->last_read_ms = conn_now_ms(c);
    if (c->tls == NULL && c->proto == NULL && c->rlen == 0 &&
        first_byte(c, (const uint8_t *)buf->base) != 0)
        return;
    if (c->tls != NULL) {
        sentra__tls_recv(c, (const uint8_t *)buf->base, (size_t)nread);
    } else if ((uint8_t *)buf->base == shared_rbuf) {
        feed(c, shared_rbuf, (size_t)nread);
    } else {
        c->rlen += (size_t)nread;
        feed(c, c->rbuf, c->rlen);
    }
    if (c->state != CONN_CLOSING && (c->flags & (CONN_F_PAUSED | CONN_F_HELD)))
        uv_read_stop(&c->h.stream);
}

void sentra__conn_plain(struct conn *c, const uint8_t *data, size_t len)
{
    if (c->rlen == 0) {
        feed(c, data, len);
        return;
    }
    /* After the bytes the protocol left (a partial frame). */
    ensure_rbuf(c, c->rlen + len);
    memcpy(c->rbuf + c->rlen, data, len);
    c->rlen += len;
    feed(c, c->rbuf, c->rlen);
}

static void start_reading(struct conn *c)
{
    if (c->flags & (CONN_F_PAUSED | CONN_F_HELD))
        return;
    uv_read_start(&c->h.stream, on_alloc, on_read);
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
    if (c->state == CONN_CLOSING || (c->flags & CONN_F_CLOSE_AFTER))
        return;
    if (c->rlen > 0 && !(c->flags & CONN_F_PAUSED))
        feed(c, c->rbuf, c->rlen);
    if (c->state != CONN_CLOSING && !(c->flags & CONN_F_CLOSE_AFTER))
        start_reading(c);
}

/* ---------------------------------------------------------------- timer */

static void on_tick(uv_timer_t *t)
{
    struct conn *c = t->data;
    uint64_t now = conn_now_ms(c);

    if (c->state == CONN_CLOSING)
        return;
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
        /* Connected but silent, or too few bytes to tell a protocol: the
         * idle timeout applies. */
        if (now - c->opened_ms >= (uint64_t)c->srv->cfg->idle_timeout_ms)
            conn_close(c);
        return;
    }
    if (c->proto->tick != NULL)
        c->proto->tick(c, now);
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
    c->opened_ms = c->last_read_ms = conn_now_ms(c);

    const config_t *cfg = srv->cfg;
    uint64_t tick = (uint64_t)(cfg->keepalive_ms < cfg->idle_timeout_ms ? cfg->keepalive_ms
                                                                      : cfg->idle_timeout_ms) / 4;
    if (tick < 100)
        tick = 100;
    if (tick > 5000)
        tick = 5000;
    uv_timer_start(&c->timer, on_tick, tick, tick);

    if (srv->nconns > cfg->max_connections || srv->stopping) {
        /* Refused before it spoke: the protocol is not known yet, so the
         * native one (whose GOAWAY says why) answers. */
        c->proto = &sentra__native_proto;
        if (c->proto->open(c) != 0) {
            conn_close(c);
            return;
        }
        if (srv->stopping)
            conn_drain(c, SENTRA_UNAVAILABLE, "server shutting down");
        else
            conn_drain(c, SENTRA_RESOURCE_EXHAUSTED, "too many connections");
        return;
    }
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
