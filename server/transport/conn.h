/*
 * conn.h: one accepted client socket (TCP or Unix), and the protocols that
 * run on it.
 *
 * conn.c owns the socket: it reads, writes, counts what is queued, keeps
 * the connection's timer and its place in the server's list. It knows no
 * protocol. The first bytes a client sends choose one (sniff in conn.c): the
 * native framing (transport/native.c), HTTP/2 (transport/h2.c) and, as
 * they are added, others; each
 * is a conn_proto_t whose functions conn.c calls. A protocol turns bytes
 * into calls (core/call.h) and answers into bytes, which it hands back with
 * conn_write().
 *
 * TLS (transport/tls.c) sits between the socket and the protocol when the
 * client's first byte starts a TLS handshake: reads go through the session
 * before the protocol sees them (sentra__conn_plain), conn_write()
 * encrypts, and what conn.c queues and counts is the encrypted bytes
 * (sentra__conn_write_raw). ALPN may choose the protocol instead of sniff.
 *
 * Memory, counted in real bytes (each write's request and malloc overhead
 * too) and bounded per connection and in total (docs/PROTOCOL.md, limits):
 *
 *   - Reads land in one shared buffer; only bytes a protocol did not
 *     consume yet (a partial frame) are kept in the connection, in a buffer
 *     that grows with the bytes that came (never with what a header
 *     announces). All partial frames together hold at most
 *     conn_partial_max(): past it the connection whose partial frame is the
 *     oldest is sent away (GOAWAY RESOURCE_EXHAUSTED), until they fit.
 *   - A client that does not read its answers stops being read once
 *     CONN_WQ_HIGH bytes are queued for it (or CONN_WQ_LOW while the server
 *     holds SERVER_WQ_HIGH for all), and is read again below CONN_WQ_LOW.
 *   - Answers that would pile up beyond CONN_WQ_MAX on one connection, or
 *     SERVER_WQ_MAX in total, are refused (conn_answer_fits): the protocol
 *     answers RESOURCE_EXHAUSTED instead. What a protocol keeps for the
 *     client outside the socket's queue (an HTTP/2 stream's buffer, an
 *     HTTP/1.1 answer waiting behind an earlier one) counts as waiting too
 *     (conn_kept).
 */
#ifndef SENTRA_CONN_H
#define SENTRA_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct server;
struct conn;
struct tls_conn;

#define CONN_WQ_HIGH ((size_t)1 << 20)      /* stop reading above this many queued bytes */
#define CONN_WQ_LOW ((size_t)256 << 10)      /* resume below this */
#define CONN_WQ_MAX ((size_t)8 << 20)        /* refuse answers beyond (conn_answer_fits) */
#define SERVER_WQ_HIGH ((size_t)64 << 20)    /* all connections: stop reading sooner */
#define SERVER_WQ_MAX ((size_t)256 << 20)    /* all connections: refuse answers beyond */
#define CONN_PARTIAL_MIN ((size_t)64 << 20)  /* partial frames, all connections (at least) */

/* A protocol spoken on a connection. Every function is optional but
 * on_bytes. */
typedef struct conn_proto {
    const char *name;                /* "native", ... (logs) */
    /* The connection chose this protocol: set up c->proto_state. Returns
     * 0, or -1 (the connection is then closed). */
    int (*open)(struct conn *c);
    /* Bytes from the client, data[0..len): returns how many were used; the
     * rest are given again, with what follows, at the next read (a partial
     * frame). Stops early when conn_reading_held() says so. */
    size_t (*on_bytes)(struct conn *c, const uint8_t *data, size_t len);
    /* The write queue fell below CONN_WQ_LOW: streams may send again. */
    void (*on_writable)(struct conn *c);
    /* Once or twice a second, with the loop's time. */
    void (*tick)(struct conn *c, uint64_t now_ms);
    /* A graceful stop (server stopping, idle): tell the client, finish
     * what is in flight, then conn_close_after_write(). */
    void (*drain)(struct conn *c, int code, const char *reason);
    /* The socket is closing: detach every call (call_detach). */
    void (*closing)(struct conn *c);
    /* Frees c->proto_state (after the last handle closed). */
    void (*free)(struct conn *c);
} conn_proto_t;

enum conn_state {
    CONN_OPEN,      /* serving */
    CONN_DRAINING,  /* going away: answering what is in flight, then closing */
    CONN_CLOSING    /* handles closing; freed in the last close callback */
};

#define CONN_F_PAUSED      0x01  /* reading stopped: too much queued to write */
#define CONN_F_CLOSE_AFTER 0x02  /* close once the write queue is empty */
#define CONN_F_TCP         0x04  /* handle is a uv_tcp_t (else a uv_pipe_t) */
#define CONN_F_HELD        0x08  /* reading stopped by the protocol (conn_hold) */
#define CONN_F_LINGER      0x10  /* CLOSE_AFTER by conn_linger_close: half-close, then drain */
#define CONN_F_NOREAD      0x20  /* reading stopped for good (its partial frame was evicted) */
#define CONN_F_REFEED      0x40  /* bytes kept wait for the protocol (after conn_hold(c, 0)) */
#define CONN_F_REFUSED     0x80  /* refused at accept: its first bytes say how to tell it */

/* A connection refused at accept (too many, or the server stopping) is
 * answered in the protocol its first bytes name (refuse.c; an HTTP/2 one
 * once this long has passed since it connected), or closed when none come
 * within this long. Those being refused do not count against
 * --max-connections (or clients retrying fast would keep the server full
 * of refusals); beyond CONN_REFUSE_MAX of them at once, one is closed at
 * once, unanswered. */
#define CONN_REFUSE_WAIT_MS 1000
#define CONN_REFUSE_MAX 1024

struct conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;                        /* the socket; h.handle.data == this */
    uv_timer_t timer;           /* the protocol's tick, close linger, refeed */
    uint64_t tick_ms;           /* its interval */
    struct server *srv;         /* owner */
    enum conn_state state;      /* see enum */
    unsigned flags;             /* CONN_F_* */
    int handles;                /* handles still open (socket, timer) */
    const conn_proto_t *proto;  /* NULL until the first bytes (or ALPN) chose one */
    struct tls_conn *tls;       /* the TLS session (tls.c); NULL: plaintext */
    void *proto_state;          /* the protocol's own state */
    uint8_t *rbuf;              /* bytes not yet used by the protocol */
    size_t rlen, rcap;          /* bytes held, bytes allocated (in srv->partial_total) */
    uint64_t partial_ms;        /* when rbuf began to hold bytes (loop time) */
    struct conn *pnext, *pprev; /* in srv's list of partial frames, oldest first */
    size_t wqueued;             /* bytes handed to uv_write, not yet written, with the
                                 * write request's and malloc's overhead */
    size_t kept;                /* answer bytes the protocol keeps for the client
                                 * outside the socket's queue (conn_kept) */
    uint64_t opened_ms;         /* accepted at (loop time) */
    uint64_t last_read_ms;      /* last bytes received */
    uint64_t close_at_ms;       /* CLOSE_AFTER deadline */
    struct conn *next, *prev;   /* in srv->conns */
    struct auth_memo *auth_memo; /* its token secret's digest, computed once
                                 * (auth.h; the protocols pass it to calls) */
    char peer[64];              /* "ip:port" or "unix" */
};

/* Accepts a pending connection on listener. Aborts when out of memory,
 * as the rest of the server does. */
void conn_accept(struct server *srv, uv_stream_t *listener);

/* Whether an answer of len bytes may be queued on c: always while what
 * waits for c's client (its socket's queue and what the protocol keeps,
 * conn_kept) is below CONN_WQ_HIGH (its client reads), else only if c
 * stays within CONN_WQ_MAX and the server within SERVER_WQ_MAX. When not,
 * the protocol sends a small RESOURCE_EXHAUSTED answer instead. */
int conn_answer_fits(const struct conn *c, size_t len);

/* The answer bytes the protocol keeps for c's client outside the socket's
 * queue (an HTTP/2 stream's buffer, an HTTP/1.1 answer behind an earlier
 * one) grew by delta (< 0: shrank). They count as waiting for the client,
 * in conn_answer_fits and in the server's total; what is left when the
 * connection is freed is taken off there. */
void conn_kept(struct conn *c, ptrdiff_t delta);

/* The bound on all partial frames together: CONN_PARTIAL_MIN, or four
 * maximum frames when that is more. */
size_t conn_partial_max(const struct server *srv);

/* Queues len bytes of buf for the client and takes ownership of buf
 * (malloc'ed; freed once written, or at once when the connection is
 * closing). */
void conn_write(struct conn *c, uint8_t *buf, size_t len);

/* The same for bytes the caller keeps: data is not taken; what cannot be
 * written at once is copied. For a protocol that builds its output in a
 * buffer of its own (h2.c, on its stack), where most writes go whole. */
void conn_write_copy(struct conn *c, const uint8_t *data, size_t len);

/* Stops (held = 1) or resumes (0) reading on the protocol's behalf; bytes
 * already read but not used are given to on_bytes again on resume, from
 * the loop (never from inside this call). */
void conn_hold(struct conn *c, int held);

/* Whether on_bytes should stop now and leave the rest for later (the
 * connection is closing, paused or held). Bytes left are given again, with
 * what follows, when reading resumes. */
int conn_reading_held(const struct conn *c);

/* A graceful stop: the protocol's drain, or a plain close when no protocol
 * was chosen yet. */
void conn_drain(struct conn *c, int code, const char *reason);

/* Stops reading and closes once the write queue is empty (at most a couple
 * of seconds later). */
void conn_close_after_write(struct conn *c);

/* Like conn_close_after_write, but the way HTTP servers close ("lingering
 * close"): once the queue is written the sending side is shut down and
 * whatever the client still sends is read and dropped until it closes too
 * (or CLOSE_LINGER_MS pass). Closing at once with unread bytes pending
 * would make the kernel reset the connection, and the client could lose
 * the answer it was sent (a 400 or 413 to a pipelined or large request). */
void conn_linger_close(struct conn *c);

/* Closes now: the protocol's closing() detaches its calls. */
void conn_close(struct conn *c);

/* Starts protocol p on c (its open()); returns 0, or -1 when it failed
 * and the connection is closing. feed() calls it with what sniff() chose;
 * a TLS layer calls it with the protocol its ALPN named ("h2":
 * sentra__h2_proto) instead of sniffing. On a connection refused at accept
 * it chooses nothing and returns 0 (feed answers it as refused). */
int conn_choose_proto(struct conn *c, const conn_proto_t *p);

/* For tls.c: plaintext that came through the TLS session, handled as
 * bytes read from a plaintext socket are (the protocol, or sniffing). */
void sentra__conn_plain(struct conn *c, const uint8_t *data, size_t len);

/* For tls.c: queues len bytes of buf (encrypted records) on the socket
 * and counts them; takes ownership of buf as conn_write() does. */
void sentra__conn_write_raw(struct conn *c, uint8_t *buf, size_t len);

/* The loop's time in milliseconds. */
uint64_t conn_now_ms(const struct conn *c);

/* For server.c: walking and unlinking its list of connections. */
struct conn *sentra__conn_next(struct conn *c);
void sentra__conn_unlink(struct server *srv, struct conn *c);

/* The allocator of conn_accept (calloc); tests replace it to make it fail. */
extern void *(*sentra__conn_calloc)(size_t, size_t);

/* The protocols. */
extern const conn_proto_t sentra__native_proto;   /* native.c */
extern const conn_proto_t sentra__http1_proto;    /* http1.c: HTTP/1.1, Connect, static files */
extern const conn_proto_t sentra__h2_proto;       /* h2.c: HTTP/2 (gRPC, later Connect) */

/* Answers a connection refused at accept (CONN_F_REFUSED) in protocol p,
 * what its first bytes named, then closes it (refuse.c): its
 * CONN_F_CLOSE_AFTER is set. When it is not, the answer is not due yet:
 * the bytes are kept and on_tick asks again. */
void sentra__conn_refuse(struct conn *c, const conn_proto_t *p);

#endif
