/*
 * async.c: the connection engine of libsentra, on a libuv loop.
 *
 * A sentra_async_t owns at most one connection (struct sconn) at a time.
 * Calls wait in `pending` until the connection is ready, then go on the wire
 * with the next odd stream id and sit in the connection's table until their
 * RESPONSE arrives. When the connection is lost, calls that were on the wire
 * are retried only when that is safe (reads, writes with an idempotency key,
 * or anything above a GOAWAY's last_stream_id, which the server promised not
 * to have processed); the others fail with SENTRA_ECONNLOST because the
 * server may or may not have applied them. A new connection is made only
 * while calls are waiting, after an exponential backoff.
 *
 * Each call has one timer that serves both its deadline and its retry
 * backoff: it is armed for whichever comes first. The blocking API
 * (client.c) runs this same engine on a private loop.
 *
 * TLS (tls.c) sits between the socket and the frames when the handle has
 * it: a connection is ready only after its handshake (within the connect
 * timeout), ciphertext read goes through the session into rbuf, and every
 * frame sent is encrypted before it is written. A certificate that is not
 * accepted, or a server that refuses ours, fails the calls at once
 * (SENTRA_ETLS): trying again would meet the same certificate.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "internal.h"
#include "status.h"

/* ---------------------------------------------------------------- queues */

/* A circular doubly linked list with a sentinel (libuv's QUEUE, simplified). */
typedef struct qnode {
    struct qnode *next, *prev;
} qnode_t;

static void q_init(qnode_t *q) { q->next = q->prev = q; }
static int q_empty(const qnode_t *q) { return q->next == q; }
static void q_remove(qnode_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}
static void q_push(qnode_t *q, qnode_t *n)
{
    n->prev = q->prev;
    n->next = q;
    q->prev->next = n;
    q->prev = n;
}

#define CONTAINER_OF(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))

/* ---------------------------------------------------------------- types */

#define NBUCKETS 256 /* in-flight table of a connection, keyed by stream id */

enum call_state {
    CALL_PENDING,    /* waiting for a ready connection */
    CALL_INFLIGHT,   /* on the wire, in conn->buckets */
    CALL_WAIT_RETRY, /* backing off before another attempt */
    CALL_FINISHING,  /* outcome decided; callback runs from the timer */
};

struct sentra_async_call {
    sentra_async_t *a;
    enum call_state state;
    qnode_t node;              /* in a->pending, a->waiting or a bucket */
    struct sconn *conn;        /* CALL_INFLIGHT: the connection it went on */
    uint32_t stream_id;        /* CALL_INFLIGHT: its stream */
    char *method;              /* owned */
    uint8_t *payload;          /* the packed request message; owned */
    size_t payload_len;
    const ProtobufCMessageDescriptor *resp_desc;
    char *idem_key;            /* owned; NULL when none */
    int retry_safe;            /* may be sent again after a loss */
    unsigned attempts;         /* sends and failed connects so far */
    uint64_t deadline;         /* uv_now() value; 0: none */
    uint64_t retry_at;         /* CALL_WAIT_RETRY: when to go again */
    uv_timer_t timer;          /* deadline, backoff and deferred finish */
    /* CALL_FINISHING: the outcome to report. */
    int rc;
    ProtobufCMessage *resp;
    sentra_status_t status;
    sentra_async_cb cb;
    void *arg;
    /* Server streaming (sentra_async_stream): each message goes to
     * on_message as it comes; cb ends the call. */
    sentra_async_message_cb on_message;
    uint64_t messages;         /* messages handed over so far */
};

enum conn_state {
    CONN_RESOLVING,  /* getaddrinfo running */
    CONN_CONNECTING, /* connect running */
    CONN_READY,      /* sending and receiving */
    CONN_DRAINING,   /* GOAWAY received: no new requests on it */
    CONN_CLOSING,    /* handles being closed; freed when the last closes */
};

union io_u {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
};

struct sconn {
    sentra_async_t *a;
    enum conn_state state;
    union io_u *io;            /* the socket of the current attempt, or
                                  NULL; its own allocation, freed in its
                                  close callback, so that the next address
                                  can be tried while the last one closes */
    uv_timer_t timer;          /* connect timeout */
    uv_getaddrinfo_t gai;
    int gai_running;           /* gai callback still to come */
    struct addrinfo *ai_list;  /* owned, from getaddrinfo */
    struct addrinfo *ai_next;  /* next address to try */
    uv_connect_t creq;
    int closes_pending;        /* close callbacks still to come */
    uint8_t *rbuf;             /* received bytes (plaintext) not yet parsed */
    size_t rlen, rcap;
    sentra__tls_t *tls;        /* the TLS session once TCP is up; NULL: plaintext */
    int tls_done;              /* its handshake finished */
    uint8_t *cbuf;             /* TLS: ciphertext read buffer (CBUF_LEN) */
    uint32_t next_stream;      /* next stream id to use (odd) */
    uint32_t goaway_last;      /* CONN_DRAINING: the server's last stream id */
    unsigned n_inflight;
    qnode_t buckets[NBUCKETS]; /* calls on the wire */
};

struct sentra_async {
    uv_loop_t *loop;           /* not owned */
    char *address;             /* owned */
    char *token;               /* owned; "" for none */
    unsigned connect_timeout_ms;
    unsigned default_deadline_ms;
    unsigned max_attempts;
    unsigned backoff_initial_ms;
    unsigned backoff_max_ms;
    uint32_t max_frame;
    unsigned max_inflight;     /* cap of calls on the wire; more wait */
    struct sconn *conn;        /* the current connection, or NULL */
    uv_timer_t reconnect_timer;/* backoff between connection attempts */
    unsigned connect_failures; /* consecutive failed connects */
    qnode_t pending;           /* CALL_PENDING calls, in order */
    qnode_t waiting;           /* CALL_WAIT_RETRY calls */
    unsigned outstanding;      /* calls whose callback has not run */
    unsigned calls_alive;      /* call structs not yet freed */
    unsigned conns_alive;      /* sconn structs not yet freed */
    int timer_closed;          /* reconnect_timer's close callback ran */
    int closing;               /* sentra_async_close was called */
    sentra_async_close_cb close_cb;
    void *close_arg;
    uint64_t connections;      /* connections established */
    char errmsg[256];          /* last connection-level failure */
    sentra__tls_cfg_t *tls;    /* TLS settings; NULL: plaintext */
    int tls_broken;            /* the TLS files could not be loaded: calls fail */
    char tls_error[256];       /* why, when tls_broken */
};

#define CBUF_LEN 65536

static void conn_start(sentra_async_t *a);
static void update_ref(sentra_async_t *a);
static void conn_fail(struct sconn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void flush_pending(sentra_async_t *a);
static void call_finish(sentra_async_call_t *call, int rc, ProtobufCMessage *resp);
static void call_arm_timer(sentra_async_call_t *call);
static void maybe_free_async(sentra_async_t *a);

/* ---------------------------------------------------------------- addresses */

/* Splits "host:port" / "[v6]:port" / "tls://host:port" into host and
 * port; 0 or SENTRA_EADDR. For Unix paths sets *path; *tls says whether
 * the address asked for TLS. host must have room for strlen(addr)+1. */
static int parse_address(const char *addr, const char **path, char *host, char *port, int *tls)
{
    *path = NULL;
    *tls = 0;
    if (!addr || !*addr)
        return SENTRA_EADDR;
    if (strncmp(addr, "tls://", 6) == 0) {
        /* TLS over TCP only: a Unix socket is local and needs none. */
        *tls = 1;
        addr += 6;
        if (strncmp(addr, "unix:", 5) == 0 || addr[0] == '/' || addr[0] == '.')
            return SENTRA_EADDR;
    }
    if (strncmp(addr, "unix:", 5) == 0) {
        *path = addr + 5;
        return **path ? 0 : SENTRA_EADDR;
    }
    if (addr[0] == '/' || addr[0] == '.') {
        *path = addr;
        return 0;
    }
    const char *colon;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (!rb || rb[1] != ':')
            return SENTRA_EADDR;
        memcpy(host, addr + 1, (size_t)(rb - addr - 1));
        host[rb - addr - 1] = 0;
        colon = rb + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || colon == addr)
            return SENTRA_EADDR;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
    }
    const char *p = colon + 1;
    if (!*p || strlen(p) > 5)
        return SENTRA_EADDR;
    long v = 0;
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9')
            return SENTRA_EADDR;
        v = v * 10 + (*q - '0');
    }
    if (v < 1 || v > 65535 || !*host)
        return SENTRA_EADDR;
    strcpy(port, p);
    return 0;
}

int sentra__check_address(const char *addr)
{
    if (!addr)
        return SENTRA_EADDR;
    char *host = malloc(strlen(addr) + 1);
    char port[8];
    const char *path;
    int tls;
    if (!host)
        return SENTRA_ENOMEM;
    int rc = parse_address(addr, &path, host, port, &tls);
    free(host);
    return rc;
}

/* ---------------------------------------------------------------- options */

void sentra_client_opts_init(sentra_client_opts_t *o)
{
    memset(o, 0, sizeof *o);
}

static int apply_opts(sentra_async_t *a, const sentra_client_opts_t *opts)
{
    sentra_client_opts_t o;
    if (opts)
        o = *opts;
    else
        sentra_client_opts_init(&o);
    const char *addr = o.address ? o.address : getenv("SENTRA_ADDR");
    if (!addr || !*addr)
        addr = SENTRA__DEFAULT_ADDR;
    const char *tok = o.token ? o.token : getenv("SENTRA_TOKEN");
    if (!tok)
        tok = "";
    int rc = sentra__check_address(addr);
    if (rc)
        return rc;
    a->address = strdup(addr);
    a->token = strdup(tok);
    if (!a->address || !a->token)
        return SENTRA_ENOMEM;
    a->connect_timeout_ms = o.connect_timeout_ms ? o.connect_timeout_ms : SENTRA__DEFAULT_CONNECT_MS;
    a->default_deadline_ms = o.default_deadline_ms ? o.default_deadline_ms : SENTRA__DEFAULT_DEADLINE_MS;
    a->max_attempts = o.max_attempts ? o.max_attempts : SENTRA__DEFAULT_ATTEMPTS;
    a->backoff_initial_ms = o.backoff_initial_ms ? o.backoff_initial_ms : SENTRA__DEFAULT_BACKOFF_MS;
    a->backoff_max_ms = o.backoff_max_ms ? o.backoff_max_ms : SENTRA__DEFAULT_BACKOFF_MAX_MS;
    if (a->backoff_max_ms < a->backoff_initial_ms)
        a->backoff_max_ms = a->backoff_initial_ms;
    a->max_frame = o.max_frame ? o.max_frame : SENTRA_FRAME_DEFAULT_MAX;
    a->max_inflight = o.max_inflight ? o.max_inflight : SENTRA__DEFAULT_MAX_INFLIGHT;
    return 0;
}

/* Delay before retry number n (1-based): initial * 2^(n-1), capped, with
 * jitter between 50 % and 100 % so that many clients do not retry in step. */
static uint64_t backoff_ms(const sentra_async_t *a, unsigned n)
{
    uint64_t d = a->backoff_initial_ms;
    for (unsigned i = 1; i < n && d < a->backoff_max_ms; i++)
        d *= 2;
    if (d > a->backoff_max_ms)
        d = a->backoff_max_ms;
    return d / 2 + (uint64_t)rand() % (d / 2 + 1);
}

/* ---------------------------------------------------------------- lifecycle */

static void reconnect_timer_closed(uv_handle_t *h)
{
    sentra_async_t *a = h->data;
    a->timer_closed = 1;
    maybe_free_async(a);
}

void sentra_tls_opts_init(sentra_tls_opts_t *tls)
{
    memset(tls, 0, sizeof *tls);
}

sentra_async_t *sentra_async_new(uv_loop_t *loop, const sentra_client_opts_t *opts)
{
    return sentra_async_new_tls(loop, opts, NULL);
}

/* The TLS settings of a new handle, when its address or tls asks for TLS.
 * 0, or SENTRA_ENOMEM; files that cannot be loaded leave the handle
 * broken (its calls fail with the reason). */
static int apply_tls(sentra_async_t *a, const sentra_tls_opts_t *tls)
{
    char *host = malloc(strlen(a->address) + 1);
    char port[8];
    const char *path;
    int want;
    if (!host)
        return SENTRA_ENOMEM;
    parse_address(a->address, &path, host, port, &want);
    if (tls && tls->enable)
        want = 1;
    if (!want) {
        free(host);
        return 0;
    }
    if (path) {
        free(host);
        snprintf(a->tls_error, sizeof a->tls_error, "TLS is for TCP addresses, not the Unix socket %s", path);
        a->tls_broken = 1;
        snprintf(a->errmsg, sizeof a->errmsg, "%s", a->tls_error);
        return 0;
    }
    int rc = sentra__tls_cfg_new(&a->tls, tls, host, a->tls_error, sizeof a->tls_error);
    free(host);
    if (rc == SENTRA_ETLS) {
        a->tls_broken = 1;
        snprintf(a->errmsg, sizeof a->errmsg, "%s", a->tls_error);
        return 0;
    }
    return rc;
}

sentra_async_t *sentra_async_new_tls(uv_loop_t *loop, const sentra_client_opts_t *opts,
                                     const sentra_tls_opts_t *tls)
{
    if (!loop)
        return NULL;
    /* A write to a connection the server just closed raises SIGPIPE, whose
     * default action kills the process; libuv does not suppress it. As
     * gRPC does, ignore it when nobody installed a handler, and report
     * EPIPE as a lost connection instead. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    sentra_async_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->loop = loop;
    q_init(&a->pending);
    q_init(&a->waiting);
    if (apply_opts(a, opts) != 0 || apply_tls(a, tls) != 0) {
        free(a->address);
        free(a->token);
        free(a);
        return NULL;
    }
    uv_timer_init(loop, &a->reconnect_timer);
    a->reconnect_timer.data = a;
    /* It runs only while calls wait for a connection, and must then keep
     * the loop alive: a call without a deadline has no timer of its own,
     * and a loop with nothing referenced would return without ever
     * reconnecting. It is stopped when the last call completes. */
    return a;
}

static void maybe_free_async(sentra_async_t *a)
{
    if (!a->closing || !a->timer_closed || a->calls_alive || a->conns_alive)
        return;
    sentra_async_close_cb cb = a->close_cb;
    void *arg = a->close_arg;
    if (cb)
        cb(a, arg);
    sentra__tls_cfg_free(a->tls);
    free(a->address);
    free(a->token);
    free(a);
}

void sentra_async_close(sentra_async_t *a, sentra_async_close_cb close_cb, void *arg)
{
    if (!a || a->closing)
        return;
    a->closing = 1;
    a->close_cb = close_cb;
    a->close_arg = arg;
    uv_timer_stop(&a->reconnect_timer);
    /* Calls on the wire get a CANCEL before the connection goes. */
    if (a->conn)
        conn_fail(a->conn, SENTRA_ECLOSED, "client handle closed");
    while (!q_empty(&a->pending)) {
        sentra_async_call_t *call = CONTAINER_OF(a->pending.next, sentra_async_call_t, node);
        call_finish(call, sentra__local_status(&call->status, SENTRA_ECLOSED, SENTRA_CANCELLED,
                                               "client handle closed"), NULL);
    }
    while (!q_empty(&a->waiting)) {
        sentra_async_call_t *call = CONTAINER_OF(a->waiting.next, sentra_async_call_t, node);
        call_finish(call, sentra__local_status(&call->status, SENTRA_ECLOSED, SENTRA_CANCELLED,
                                               "client handle closed"), NULL);
    }
    uv_close((uv_handle_t *)&a->reconnect_timer, reconnect_timer_closed);
}

int sentra_async_set_token(sentra_async_t *a, const char *token)
{
    char *t = strdup(token ? token : "");
    if (!t)
        return SENTRA_ENOMEM;
    free(a->token);
    a->token = t;
    return 0;
}

void sentra_async_set_deadline(sentra_async_t *a, unsigned ms) { a->default_deadline_ms = ms; }
const char *sentra_async_address(const sentra_async_t *a) { return a->address; }
unsigned sentra_async_outstanding(const sentra_async_t *a) { return a->outstanding; }
uint64_t sentra_async_connections(const sentra_async_t *a) { return a->connections; }
const char *sentra_async_error_message(const sentra_async_t *a) { return a->errmsg; }
int sentra_async_is_connected(const sentra_async_t *a)
{
    return a->conn && a->conn->state == CONN_READY;
}

/* An idle connection must not keep the caller's loop alive; one with calls
 * outstanding must, even when no call has a deadline timer running. */
static void update_ref(sentra_async_t *a)
{
    struct sconn *c = a->conn;
    if (!c || !c->io)
        return;
    if (a->outstanding)
        uv_ref(&c->io->handle);
    else
        uv_unref(&c->io->handle);
}

/* ---------------------------------------------------------------- writing */

struct wreq {
    uv_write_t req;
    uv_buf_t buf;
    uint8_t data[];
};

static void write_done(uv_write_t *req, int status)
{
    struct wreq *w = CONTAINER_OF(req, struct wreq, req);
    struct sconn *c = req->data;
    free(w);
    if (status < 0 && status != UV_ECANCELED && c->state != CONN_CLOSING)
        conn_fail(c, SENTRA_ECONNLOST, "write to %s: %s", c->a->address, uv_strerror(status));
}

/* Writes the records the TLS session has ready. 0 or a negative libuv
 * error. */
static int tls_flush(struct sconn *c)
{
    size_t n = c->tls ? sentra__tls_pending(c->tls) : 0;
    if (n == 0 || !c->io)
        return 0;
    struct wreq *w = malloc(sizeof *w + n);
    if (!w)
        return UV_ENOMEM;
    n = sentra__tls_take(c->tls, w->data, n);
    w->buf = uv_buf_init((char *)w->data, (unsigned)n);
    w->req.data = c;
    int rc = uv_write(&w->req, &c->io->stream, &w->buf, 1, write_done);
    if (rc < 0)
        free(w);
    return rc;
}

/* Queues one frame; the payload is copied. 0 or a negative libuv error. */
static int send_frame(struct sconn *c, uint8_t type, uint32_t stream, const uint8_t *p, size_t n)
{
    struct wreq *w = malloc(sizeof *w + SENTRA_FRAME_HEADER_LEN + n);
    if (!w)
        return UV_ENOMEM;
    sentra_frame_header(w->data, type, 0, stream, (uint32_t)n);
    if (n)
        memcpy(w->data + SENTRA_FRAME_HEADER_LEN, p, n);
    if (c->tls) {
        int trc = sentra__tls_write(c->tls, w->data, SENTRA_FRAME_HEADER_LEN + n);
        free(w);
        return trc ? UV_EIO : tls_flush(c);
    }
    w->buf = uv_buf_init((char *)w->data, (unsigned)(SENTRA_FRAME_HEADER_LEN + n));
    w->req.data = c;
    int rc = uv_write(&w->req, &c->io->stream, &w->buf, 1, write_done);
    if (rc < 0)
        free(w);
    return rc;
}

/* Puts a call on the wire. On failure the connection is failed (which
 * requeues or fails the call). */
static void send_call(struct sconn *c, sentra_async_call_t *call)
{
    sentra_async_t *a = c->a;
    Sentra__V1__Request req = SENTRA__V1__REQUEST__INIT;
    Sentra__V1__Metadata md = SENTRA__V1__METADATA__INIT;
    Sentra__V1__Metadata *mds[1] = {&md};
    char *auth = NULL;
    req.method = call->method;
    if (call->deadline) {
        uint64_t now = uv_now(a->loop);
        uint64_t left = call->deadline > now ? call->deadline - now : 1;
        req.timeout_ms = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
    }
    if (a->token[0]) {
        if (asprintf(&auth, "Bearer %s", a->token) < 0) {
            call_finish(call, sentra__local_status(&call->status, SENTRA_ENOMEM,
                                                   SENTRA_RESOURCE_EXHAUSTED, "out of memory"), NULL);
            return;
        }
        md.key = "authorization";
        md.value = auth;
        req.n_metadata = 1;
        req.metadata = mds;
    }
    if (call->idem_key)
        req.idempotency_key = call->idem_key;
    req.payload.data = call->payload;
    req.payload.len = call->payload_len;

    size_t n = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        free(auth);
        call_finish(call, sentra__local_status(&call->status, SENTRA_ENOMEM,
                                               SENTRA_RESOURCE_EXHAUSTED, "out of memory"), NULL);
        return;
    }
    protobuf_c_message_pack(&req.base, buf);
    free(auth);

    call->stream_id = c->next_stream;
    c->next_stream += 2;
    call->conn = c;
    call->state = CALL_INFLIGHT;
    call->attempts++;
    q_push(&c->buckets[call->stream_id % NBUCKETS], &call->node);
    c->n_inflight++;
    int rc = send_frame(c, SENTRA_FRAME_REQUEST, call->stream_id, buf, n);
    free(buf);
    if (rc < 0)
        conn_fail(c, SENTRA_ECONNLOST, "write to %s: %s", a->address, uv_strerror(rc));
}

static void flush_pending(sentra_async_t *a)
{
    struct sconn *c = a->conn;
    while (c && c->state == CONN_READY && !q_empty(&a->pending) && c->n_inflight < a->max_inflight) {
        sentra_async_call_t *call = CONTAINER_OF(a->pending.next, sentra_async_call_t, node);
        q_remove(&call->node);
        if (c->next_stream > 0x7ffffffd) {
            /* Stream ids ran out: finish this connection, use a new one. */
            q_push(&a->pending, &call->node);
            c->state = CONN_DRAINING;
            c->goaway_last = UINT32_MAX;
            if (c->n_inflight == 0)
                conn_fail(c, SENTRA_ECONNLOST, "stream ids exhausted");
            return;
        }
        send_call(c, call);
        c = a->conn; /* send_call may have failed the connection */
    }
}

/* Makes sure a connection is coming when calls wait for one. */
static void kick(sentra_async_t *a)
{
    if (a->closing || q_empty(&a->pending))
        return;
    if (a->conn) {
        if (a->conn->state == CONN_READY)
            flush_pending(a);
        return; /* connecting, or draining: its end starts the next one */
    }
    if (uv_is_active((uv_handle_t *)&a->reconnect_timer))
        return;
    conn_start(a);
}

/* ---------------------------------------------------------------- calls */

static void call_closed(uv_handle_t *h)
{
    sentra_async_call_t *call = h->data;
    sentra_async_t *a = call->a;
    free(call);
    a->calls_alive--;
    maybe_free_async(a);
}

/* Runs the callback now. The call must be out of every queue. */
static void call_complete_now(sentra_async_call_t *call)
{
    sentra_async_t *a = call->a;
    uv_timer_stop(&call->timer);
    a->outstanding--;
    ProtobufCMessage *resp = call->resp;
    call->resp = NULL;
    call->cb(call, call->rc, resp, &call->status, call->arg);
    sentra_status_clear(&call->status);
    free(call->method);
    free(call->payload);
    free(call->idem_key);
    uv_close((uv_handle_t *)&call->timer, call_closed);
    if (a->outstanding == 0 && !a->closing)
        uv_timer_stop(&a->reconnect_timer);
    update_ref(a);
}

static void call_timer_cb(uv_timer_t *t);

/* Detaches the call from where it is and runs the callback. rc and
 * call->status must be set (rc 0 requires resp). */
static void call_finish(sentra_async_call_t *call, int rc, ProtobufCMessage *resp)
{
    if (call->state == CALL_INFLIGHT) {
        call->conn->n_inflight--;
        call->conn = NULL;
    }
    q_remove(&call->node);
    call->state = CALL_FINISHING;
    call->rc = rc;
    call->resp = resp;
    call_complete_now(call);
}

/* Finishes the call on the next loop iteration (for cancel, which must not
 * call back from inside itself). */
static void call_finish_later(sentra_async_call_t *call, int rc)
{
    if (call->state == CALL_INFLIGHT) {
        call->conn->n_inflight--;
        call->conn = NULL;
    }
    q_remove(&call->node);
    call->state = CALL_FINISHING;
    call->rc = rc;
    call->resp = NULL;
    uv_timer_start(&call->timer, call_timer_cb, 0, 0);
}

/* Sends the call again later or now, or fails it when attempts or time ran
 * out. `err` and the message describe why the last attempt failed; they
 * become the call's outcome when no retry is left. */
static void call_retry(sentra_async_call_t *call, int err, int code, const char *msg, int delay)
{
    sentra_async_t *a = call->a;
    if (call->state == CALL_INFLIGHT) {
        call->conn->n_inflight--;
        call->conn = NULL;
    }
    q_remove(&call->node);
    uint64_t now = uv_now(a->loop);
    uint64_t wait = delay ? backoff_ms(a, call->attempts) : 0;
    if (call->attempts >= a->max_attempts || a->closing ||
        (call->deadline && now + wait >= call->deadline)) {
        call->state = CALL_PENDING; /* so that call_finish does not touch conn */
        call_finish(call, sentra__local_status(&call->status, err, code, "%s", msg), NULL);
        return;
    }
    if (wait == 0) {
        call->state = CALL_PENDING;
        q_push(&a->pending, &call->node);
        kick(a);
        return;
    }
    call->state = CALL_WAIT_RETRY;
    call->retry_at = now + wait;
    q_push(&a->waiting, &call->node);
    call_arm_timer(call);
}

static void call_arm_timer(sentra_async_call_t *call)
{
    uint64_t now = uv_now(call->a->loop);
    uint64_t at = 0;
    if (call->deadline)
        at = call->deadline;
    if (call->state == CALL_WAIT_RETRY && (!at || call->retry_at < at))
        at = call->retry_at;
    if (!at) {
        uv_timer_stop(&call->timer);
        return;
    }
    uv_timer_start(&call->timer, call_timer_cb, at > now ? at - now : 0, 0);
}

static void call_timer_cb(uv_timer_t *t)
{
    sentra_async_call_t *call = t->data;
    sentra_async_t *a = call->a;
    uint64_t now = uv_now(a->loop);

    if (call->state == CALL_FINISHING) {
        call_complete_now(call);
        kick(a); /* a cancelled call may have made room on the wire */
        return;
    }
    if (call->deadline && now >= call->deadline) {
        if (call->state == CALL_INFLIGHT && call->conn->state != CONN_CLOSING)
            send_frame(call->conn, SENTRA_FRAME_CANCEL, call->stream_id, NULL, 0);
        call_finish(call, sentra__local_status(&call->status, SENTRA_ETIMEDOUT,
                                               SENTRA_DEADLINE_EXCEEDED,
                                               "deadline exceeded (client side, after %u attempt%s)",
                                               call->attempts, call->attempts == 1 ? "" : "s"),
                    NULL);
        kick(a);
        return;
    }
    if (call->state == CALL_WAIT_RETRY && now >= call->retry_at) {
        q_remove(&call->node);
        call->state = CALL_PENDING;
        q_push(&a->pending, &call->node);
        call_arm_timer(call);
        kick(a);
        return;
    }
    call_arm_timer(call);
}

sentra_async_call_t *sentra_async_call(sentra_async_t *a, const char *method,
                                       const ProtobufCMessage *req,
                                       const ProtobufCMessageDescriptor *resp_desc,
                                       const sentra_call_opts_t *opts,
                                       sentra_async_cb cb, void *arg)
{
    if (!a || !method || !*method || !req || !resp_desc || !cb || a->closing)
        return NULL;
    size_t n = protobuf_c_message_get_packed_size(req);
    /* The envelope adds the method, token and key: keep a margin. */
    if (n + strlen(method) + strlen(a->token) + 1024 > a->max_frame)
        return NULL;
    sentra_async_call_t *call = calloc(1, sizeof *call);
    if (!call)
        return NULL;
    call->a = a;
    call->method = strdup(method);
    call->payload = malloc(n ? n : 1);
    const char *key = opts && opts->idempotency_key && opts->idempotency_key[0]
                          ? opts->idempotency_key : NULL;
    if (key)
        call->idem_key = strdup(key);
    if (!call->method || !call->payload || (key && !call->idem_key)) {
        free(call->method);
        free(call->payload);
        free(call->idem_key);
        free(call);
        return NULL;
    }
    call->payload_len = protobuf_c_message_pack(req, call->payload);
    call->resp_desc = resp_desc;
    call->retry_safe = !(opts && opts->no_retry) && (key || sentra_method_is_read(method));
    int64_t dl = opts && opts->deadline_ms ? opts->deadline_ms : (int64_t)a->default_deadline_ms;
    /* uv_now is cached per loop iteration; refresh it so a deadline set
     * after a long stretch of work is not already partly spent. */
    if (dl > 0) {
        uv_update_time(a->loop);
        call->deadline = uv_now(a->loop) + (uint64_t)dl;
    }
    call->cb = cb;
    call->arg = arg;
    q_init(&call->node);
    uv_timer_init(a->loop, &call->timer);
    call->timer.data = call;
    call->state = CALL_PENDING;
    /* The connect backoff grows over one burst of waiting calls; a call
     * arriving after that burst has ended starts it afresh, so that a
     * blocking caller does not inherit the delays of earlier failures. */
    if (a->outstanding == 0 && !a->conn)
        a->connect_failures = 0;
    a->outstanding++;
    a->calls_alive++;
    q_push(&a->pending, &call->node);
    call_arm_timer(call);
    kick(a);
    update_ref(a);
    return call;
}

sentra_async_call_t *sentra_async_stream(sentra_async_t *a, const char *method,
                                         const ProtobufCMessage *req,
                                         const ProtobufCMessageDescriptor *msg_desc,
                                         const sentra_call_opts_t *opts,
                                         sentra_async_message_cb on_message,
                                         sentra_async_cb on_end, void *arg)
{
    if (!on_message)
        return NULL;
    /* A stream lasts as long as its caller wants: no default deadline. */
    sentra_call_opts_t o = {0};
    if (opts)
        o = *opts;
    if (o.deadline_ms == 0)
        o.deadline_ms = -1;
    sentra_async_call_t *call = sentra_async_call(a, method, req, msg_desc, &o, on_end, arg);
    if (call)
        call->on_message = on_message;
    return call;
}

int sentra_async_cancel(sentra_async_call_t *call)
{
    if (!call || call->state == CALL_FINISHING)
        return SENTRA_EINVAL;
    if (call->state == CALL_INFLIGHT && call->conn->state != CONN_CLOSING)
        send_frame(call->conn, SENTRA_FRAME_CANCEL, call->stream_id, NULL, 0);
    sentra__local_status(&call->status, SENTRA_ECANCELED, SENTRA_CANCELLED, "call cancelled by the client");
    call_finish_later(call, SENTRA_ECANCELED);
    return 0;
}

/* ---------------------------------------------------------------- connection */

static void conn_closed(uv_handle_t *h)
{
    struct sconn *c = h->data;
    if (h != (uv_handle_t *)&c->timer)
        free(h); /* a union io_u */
    if (--c->closes_pending > 0 || c->gai_running)
        return;
    sentra_async_t *a = c->a;
    if (c->ai_list)
        uv_freeaddrinfo(c->ai_list);
    sentra__tls_free(c->tls);
    free(c->cbuf);
    free(c->rbuf);
    free(c);
    a->conns_alive--;
    maybe_free_async(a);
}

static void conn_release(struct sconn *c)
{
    c->state = CONN_CLOSING;
    c->closes_pending = 1;
    uv_close((uv_handle_t *)&c->timer, conn_closed);
    if (c->io) {
        c->closes_pending++;
        uv_close(&c->io->handle, conn_closed);
        c->io = NULL;
    }
}

static void reconnect_cb(uv_timer_t *t)
{
    sentra_async_t *a = t->data;
    if (!a->conn && !q_empty(&a->pending))
        conn_start(a);
}

/* Ends the connection: calls on the wire are retried or failed, waiting
 * calls get a new connection after a backoff. */
static void conn_fail(struct sconn *c, int err, const char *fmt, ...)
{
    sentra_async_t *a = c->a;
    if (c->state == CONN_CLOSING)
        return;
    int was_connected = c->state == CONN_READY || c->state == CONN_DRAINING;
    int draining = c->state == CONN_DRAINING;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->errmsg, sizeof a->errmsg, fmt, ap);
    va_end(ap);
    if (a->conn == c)
        a->conn = NULL;
    c->state = CONN_CLOSING; /* from here no frame is sent on it */

    for (int b = 0; b < NBUCKETS; b++) {
        while (!q_empty(&c->buckets[b])) {
            sentra_async_call_t *call = CONTAINER_OF(c->buckets[b].next, sentra_async_call_t, node);
            if (a->closing) {
                if (was_connected)
                    send_frame(c, SENTRA_FRAME_CANCEL, call->stream_id, NULL, 0);
                call_finish(call, sentra__local_status(&call->status, SENTRA_ECLOSED,
                                                       SENTRA_CANCELLED, "client handle closed"),
                            NULL);
            } else if (err == SENTRA_ETLS) {
                /* The server refused our certificate (TLS 1.3 says so after
                 * the client's side of the handshake): it read no request. */
                call_finish(call, sentra__local_status(&call->status, SENTRA_ETLS, SENTRA_UNAVAILABLE, "%s",
                                                       a->errmsg), NULL);
            } else if (call->retry_safe || (draining && call->stream_id > c->goaway_last)) {
                call_retry(call, SENTRA_ECONNLOST, SENTRA_UNAVAILABLE, a->errmsg, 0);
            } else {
                call_finish(call, sentra__local_status(&call->status, SENTRA_ECONNLOST, SENTRA_UNAVAILABLE,
                                                       "%s; the request may or may not have been applied",
                                                       a->errmsg),
                            NULL);
            }
        }
    }
    if (a->closing && was_connected && c->tls && c->tls_done) {
        /* The handle is closing: say goodbye at the TLS level too. */
        sentra__tls_close_notify(c->tls);
        tls_flush(c);
    }
    conn_release(c);

    if (a->closing)
        return;
    if (err == SENTRA_ETLS) {
        /* Another attempt would meet the same certificate. */
        while (!q_empty(&a->pending)) {
            sentra_async_call_t *call = CONTAINER_OF(a->pending.next, sentra_async_call_t, node);
            call_finish(call, sentra__local_status(&call->status, SENTRA_ETLS, SENTRA_UNAVAILABLE, "%s",
                                                   a->errmsg), NULL);
        }
    } else if (!was_connected) {
        /* A failed connect counts as an attempt for every waiting call. */
        a->connect_failures++;
        qnode_t *n = a->pending.next;
        while (n != &a->pending) {
            sentra_async_call_t *call = CONTAINER_OF(n, sentra_async_call_t, node);
            n = n->next;
            if (++call->attempts >= a->max_attempts)
                call_finish(call, sentra__local_status(&call->status, err == SENTRA_ECONNLOST ? SENTRA_ECONNECT : err,
                                                       SENTRA_UNAVAILABLE, "%s", a->errmsg),
                            NULL);
        }
    }
    if (!q_empty(&a->pending) && !a->conn) {
        uint64_t d = a->connect_failures ? backoff_ms(a, a->connect_failures) : 0;
        uv_timer_start(&a->reconnect_timer, reconnect_cb, d, 0);
    }
}

static void conn_timeout(uv_timer_t *t)
{
    struct sconn *c = t->data;
    conn_fail(c, SENTRA_ECONNECT, "connect to %s: timed out after %u ms", c->a->address,
              c->a->connect_timeout_ms);
}

/* ---------------------------------------------------------------- reading */

/* Room for 64 KiB more in rbuf; 0 or -1 (out of memory). */
static int rbuf_room(struct sconn *c)
{
    if (c->rcap - c->rlen < 65536) {
        size_t ncap = c->rcap ? c->rcap * 2 : 131072;
        while (ncap - c->rlen < 65536)
            ncap *= 2;
        uint8_t *nb = realloc(c->rbuf, ncap);
        if (!nb)
            return -1;
        c->rbuf = nb;
        c->rcap = ncap;
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct sconn *c = h->data;
    if (c->tls) {
        /* Ciphertext: decrypted into rbuf by on_read. */
        if (!c->cbuf && !(c->cbuf = malloc(CBUF_LEN))) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        *buf = uv_buf_init((char *)c->cbuf, CBUF_LEN);
        return;
    }
    if (c->rcap - c->rlen < 65536) {
        size_t ncap = c->rcap ? c->rcap * 2 : 131072;
        while (ncap - c->rlen < 65536)
            ncap *= 2;
        uint8_t *nb = realloc(c->rbuf, ncap);
        if (!nb) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        c->rbuf = nb;
        c->rcap = ncap;
    }
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

/* One message of a server stream (a RESPONSE flagged SENTRA_FRAME_F_MORE). */
static void on_stream_message(sentra_async_call_t *call, const uint8_t *p, size_t n)
{
    Sentra__V1__Response *r = sentra__v1__response__unpack(NULL, n, p);
    ProtobufCMessage *m = NULL;
    if (r != NULL && (int)r->code == SENTRA_OK)
        m = protobuf_c_message_unpack(call->resp_desc, NULL, r->payload.len, r->payload.data);
    if (r != NULL)
        sentra__v1__response__free_unpacked(r, NULL);
    if (m == NULL) {
        if (call->state == CALL_INFLIGHT && call->conn->state != CONN_CLOSING)
            send_frame(call->conn, SENTRA_FRAME_CANCEL, call->stream_id, NULL, 0);
        call_finish(call, sentra__local_status(&call->status, SENTRA_EDECODE, SENTRA_INTERNAL,
                                               "undecodable %s stream message", call->resp_desc->name),
                    NULL);
        return;
    }
    /* From the first message on, the caller has seen part of the answer:
     * a loss is no longer retried here (the caller resumes, from the
     * cursor it holds, say). */
    call->messages++;
    call->retry_safe = 0;
    if (call->on_message(call, m, call->arg) != 0 && call->state == CALL_INFLIGHT)
        sentra_async_cancel(call);
}

static void on_response(struct sconn *c, uint32_t stream, uint8_t flags, const uint8_t *p, size_t n)
{
    sentra_async_t *a = c->a;
    sentra_async_call_t *call = NULL;
    qnode_t *b = &c->buckets[stream % NBUCKETS];
    for (qnode_t *q = b->next; q != b; q = q->next) {
        sentra_async_call_t *x = CONTAINER_OF(q, sentra_async_call_t, node);
        if (x->stream_id == stream) {
            call = x;
            break;
        }
    }
    if (!call)
        return; /* cancelled or timed out locally: the late answer is dropped */
    if (flags & SENTRA_FRAME_F_MORE) {
        if (call->on_message != NULL) {
            on_stream_message(call, p, n);
        } else {
            call_finish(call, sentra__local_status(&call->status, SENTRA_EPROTO, SENTRA_INTERNAL,
                                                   "stream message for a unary call"), NULL);
        }
        return;
    }

    Sentra__V1__Response *r = sentra__v1__response__unpack(NULL, n, p);
    if (!r) {
        call_finish(call, sentra__local_status(&call->status, SENTRA_EDECODE, SENTRA_INTERNAL,
                                               "undecodable Response envelope"), NULL);
        return;
    }
    if ((int)r->code == SENTRA_OK && call->on_message != NULL) {
        /* The end of a stream: its status only. */
        sentra__v1__response__free_unpacked(r, NULL);
        sentra_status_clear(&call->status);
        call_finish(call, 0, NULL);
        return;
    }
    if ((int)r->code == SENTRA_OK) {
        ProtobufCMessage *m = protobuf_c_message_unpack(call->resp_desc, NULL, r->payload.len, r->payload.data);
        sentra__v1__response__free_unpacked(r, NULL);
        if (!m) {
            call_finish(call, sentra__local_status(&call->status, SENTRA_EDECODE, SENTRA_INTERNAL,
                                                   "undecodable %s payload", call->resp_desc->name),
                        NULL);
            return;
        }
        sentra_status_clear(&call->status);
        call_finish(call, 0, m);
        return;
    }
    if ((int)r->code == SENTRA_UNAVAILABLE && call->retry_safe && !a->closing) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", r->message ? r->message : "unavailable");
        sentra__v1__response__free_unpacked(r, NULL);
        /* The server's own words should survive if this was the last try. */
        if (call->attempts >= a->max_attempts) {
            Sentra__V1__Response tmp = SENTRA__V1__RESPONSE__INIT;
            tmp.code = SENTRA__V1__CODE__UNAVAILABLE;
            tmp.message = msg;
            sentra__status_from_response(&call->status, &tmp);
            call_finish(call, SENTRA_ESTATUS, NULL);
            return;
        }
        call_retry(call, SENTRA_ESTATUS, SENTRA_UNAVAILABLE, msg, 1);
        return;
    }
    int rc = sentra__status_from_response(&call->status, r);
    sentra__v1__response__free_unpacked(r, NULL);
    call_finish(call, rc ? rc : SENTRA_ESTATUS, NULL);
}

static void on_goaway(struct sconn *c, const uint8_t *p, size_t n)
{
    Sentra__V1__GoAway *g = sentra__v1__go_away__unpack(NULL, n, p);
    uint32_t last = g ? g->last_stream_id : 0;
    snprintf(c->a->errmsg, sizeof c->a->errmsg, "server sent GOAWAY (%s: %s)",
             g ? sentra_status_name(g->code) : "?", g && g->reason ? g->reason : "");
    if (g)
        sentra__v1__go_away__free_unpacked(g, NULL);
    if (c->state == CONN_READY || c->state == CONN_DRAINING) {
        c->state = CONN_DRAINING;
        c->goaway_last = last;
    }
    /* Requests above `last` were not processed: send them again elsewhere. */
    sentra_async_t *a = c->a;
    for (int b = 0; b < NBUCKETS; b++) {
        qnode_t *q = c->buckets[b].next;
        while (q != &c->buckets[b]) {
            sentra_async_call_t *call = CONTAINER_OF(q, sentra_async_call_t, node);
            q = q->next;
            if (call->stream_id > last)
                call_retry(call, SENTRA_ECONNLOST, SENTRA_UNAVAILABLE, a->errmsg, 0);
        }
    }
    if (c->n_inflight == 0)
        conn_fail(c, SENTRA_ECONNLOST, "%s", a->errmsg);
}

static void conn_ready(struct sconn *c);
static void parse_frames(struct sconn *c);

/* TLS: ciphertext in buf[0..n): the handshake, then plaintext into rbuf. */
static void tls_read(struct sconn *c, const uint8_t *data, size_t n)
{
    sentra_async_t *a = c->a;
    char err[256];
    if (sentra__tls_feed(c->tls, data, n) != 0) {
        conn_fail(c, SENTRA_ECONNLOST, "connection to %s: out of memory", a->address);
        return;
    }
    if (!c->tls_done) {
        int r = sentra__tls_handshake(c->tls, err, sizeof err);
        int wr = tls_flush(c); /* our next flight, or the alert */
        if (r < 0) {
            conn_fail(c, r, "connect to %s: %s", a->address, err);
            return;
        }
        if (wr < 0) {
            conn_fail(c, SENTRA_ECONNECT, "connect to %s: %s", a->address, uv_strerror(wr));
            return;
        }
        if (r == 0)
            return;
        c->tls_done = 1;
        conn_ready(c);
        if (c->state == CONN_CLOSING)
            return;
    }
    for (;;) {
        size_t got;
        if (rbuf_room(c) != 0) {
            conn_fail(c, SENTRA_ECONNLOST, "connection to %s: out of memory", a->address);
            return;
        }
        int r = sentra__tls_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen, &got, err, sizeof err);
        if (r < 0) {
            tls_flush(c);
            conn_fail(c, r, "connection to %s lost: %s", a->address, err);
            return;
        }
        if (r == 0)
            break;
        c->rlen += got;
    }
    if (tls_flush(c) < 0) {
        conn_fail(c, SENTRA_ECONNLOST, "write to %s failed", a->address);
        return;
    }
    parse_frames(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct sconn *c = s->data;
    sentra_async_t *a = c->a;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (c->tls && !c->tls_done)
            conn_fail(c, SENTRA_ECONNLOST, "connect to %s: the server closed the connection during the TLS "
                      "handshake (does it serve TLS on this port?)", a->address);
        else
            conn_fail(c, SENTRA_ECONNLOST, "connection to %s lost: %s", a->address,
                      nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
        return;
    }
    if (c->tls) {
        tls_read(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    c->rlen += (size_t)nread;
    parse_frames(c);
}

/* Handles the whole frames in rbuf. */
static void parse_frames(struct sconn *c)
{
    sentra_async_t *a = c->a;
    size_t start = 0;
    while (c->state != CONN_CLOSING) {
        sentra_frame_t f;
        size_t used;
        int r = sentra_frame_decode(c->rbuf + start, c->rlen - start, a->max_frame, &f, &used);
        if (r == SENTRA_FRAME_NEED_MORE)
            break;
        if (r < 0) {
            conn_fail(c, SENTRA_EPROTO, "protocol error from %s: %s", a->address, sentra_frame_strerror(r));
            return;
        }
        start += used;
        switch (f.type) {
        case SENTRA_FRAME_RESPONSE:
            on_response(c, f.stream_id, f.flags, f.payload, f.length);
            break;
        case SENTRA_FRAME_PING:
            send_frame(c, SENTRA_FRAME_PONG, 0, f.payload, f.length);
            break;
        case SENTRA_FRAME_PONG:
            break;
        case SENTRA_FRAME_GOAWAY:
            on_goaway(c, f.payload, f.length);
            break;
        default: /* REQUEST or CANCEL from a server makes no sense */
            conn_fail(c, SENTRA_EPROTO, "protocol error from %s: unexpected %s frame", a->address,
                      sentra_frame_type_name(f.type));
            return;
        }
    }
    if (c->state == CONN_CLOSING)
        return;
    if (start) {
        memmove(c->rbuf, c->rbuf + start, c->rlen - start);
        c->rlen -= start;
    }
    /* Answers made room under max_inflight for calls that wait. */
    if (c->state == CONN_READY && !q_empty(&a->pending))
        flush_pending(a);
    /* Draining and nothing left to wait for: make way for a new connection. */
    if (c->state == CONN_DRAINING && c->n_inflight == 0)
        conn_fail(c, SENTRA_ECONNLOST, "%s", a->errmsg);
}

/* ---------------------------------------------------------------- connecting */

static void on_connect(uv_connect_t *req, int status);

static void try_next_addr(struct sconn *c, int last_err)
{
    sentra_async_t *a = c->a;
    while (c->ai_next) {
        struct addrinfo *ai = c->ai_next;
        c->ai_next = ai->ai_next;
        if (c->io) {
            /* The previous address' socket closes on its own. */
            c->closes_pending++;
            uv_close(&c->io->handle, conn_closed);
            c->io = NULL;
        }
        if (!(c->io = malloc(sizeof *c->io))) {
            last_err = UV_ENOMEM;
            break;
        }
        uv_tcp_init(a->loop, &c->io->tcp);
        c->io->handle.data = c;
        uv_tcp_nodelay(&c->io->tcp, 1);
        c->creq.data = c;
        int rc = uv_tcp_connect(&c->creq, &c->io->tcp, ai->ai_addr, on_connect);
        if (rc == 0)
            return;
        last_err = rc;
    }
    conn_fail(c, SENTRA_ECONNECT, "connect to %s: %s", a->address, uv_strerror(last_err));
}

static void on_connect(uv_connect_t *req, int status)
{
    struct sconn *c = req->data;
    sentra_async_t *a = c->a;
    if (status == UV_ECANCELED || c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        if (c->ai_next) {
            try_next_addr(c, status);
            return;
        }
        conn_fail(c, SENTRA_ECONNECT, "connect to %s: %s", a->address, uv_strerror(status));
        return;
    }
    if (a->tls) {
        /* The handshake first, under the same connect timeout. */
        if (!(c->tls = sentra__tls_new(a->tls))) {
            conn_fail(c, SENTRA_ENOMEM, "connect to %s: out of memory", a->address);
            return;
        }
        char err[256];
        int r = sentra__tls_handshake(c->tls, err, sizeof err); /* the ClientHello */
        int rc = r < 0 ? 0 : tls_flush(c);
        if (r < 0 || rc < 0) {
            conn_fail(c, r < 0 ? r : SENTRA_ECONNECT, "connect to %s: %s", a->address,
                      r < 0 ? err : uv_strerror(rc));
            return;
        }
        if ((rc = uv_read_start(&c->io->stream, on_alloc, on_read)) < 0)
            conn_fail(c, SENTRA_ECONNECT, "connect to %s: %s", a->address, uv_strerror(rc));
        return;
    }
    int rc = uv_read_start(&c->io->stream, on_alloc, on_read);
    if (rc < 0) {
        conn_fail(c, SENTRA_ECONNECT, "connect to %s: %s", a->address, uv_strerror(rc));
        return;
    }
    conn_ready(c);
}

/* Connected (and TLS done): calls may go. */
static void conn_ready(struct sconn *c)
{
    sentra_async_t *a = c->a;
    uv_timer_stop(&c->timer);
    c->state = CONN_READY;
    update_ref(a);
    a->connect_failures = 0;
    a->connections++;
    a->errmsg[0] = 0;
    flush_pending(a);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct sconn *c = req->data;
    c->gai_running = 0;
    c->ai_list = res;
    if (c->state == CONN_CLOSING) {
        /* Abandoned while resolving: finish the deferred free. */
        c->closes_pending++;
        conn_closed((uv_handle_t *)&c->timer);
        return;
    }
    if (status < 0) {
        conn_fail(c, SENTRA_ECONNECT, "resolve %s: %s", c->a->address, uv_strerror(status));
        return;
    }
    c->ai_next = res;
    c->state = CONN_CONNECTING;
    try_next_addr(c, UV_EADDRNOTAVAIL);
}

static void conn_start(sentra_async_t *a)
{
    if (a->tls_broken) {
        /* The TLS files could not be loaded: no connection can be made.
         * Later, never inside the call that kicked. */
        snprintf(a->errmsg, sizeof a->errmsg, "%s", a->tls_error);
        while (!q_empty(&a->pending)) {
            sentra_async_call_t *call = CONTAINER_OF(a->pending.next, sentra_async_call_t, node);
            sentra__local_status(&call->status, SENTRA_ETLS, SENTRA_UNAVAILABLE, "%s", a->tls_error);
            call_finish_later(call, SENTRA_ETLS);
        }
        return;
    }
    struct sconn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(a->errmsg, sizeof a->errmsg, "out of memory");
        while (!q_empty(&a->pending)) {
            sentra_async_call_t *call = CONTAINER_OF(a->pending.next, sentra_async_call_t, node);
            call_finish(call, sentra__local_status(&call->status, SENTRA_ENOMEM, SENTRA_RESOURCE_EXHAUSTED,
                                                   "out of memory"), NULL);
        }
        return;
    }
    c->a = a;
    c->next_stream = 1;
    for (int i = 0; i < NBUCKETS; i++)
        q_init(&c->buckets[i]);
    uv_timer_init(a->loop, &c->timer);
    c->timer.data = c;
    a->conn = c;
    a->conns_alive++;
    uv_timer_start(&c->timer, conn_timeout, a->connect_timeout_ms, 0);

    char *host = malloc(strlen(a->address) + 1);
    char port[8];
    const char *path;
    int tls;
    if (!host) {
        conn_fail(c, SENTRA_ENOMEM, "out of memory");
        return;
    }
    parse_address(a->address, &path, host, port, &tls); /* checked at creation */
    if (path) {
        free(host);
        c->state = CONN_CONNECTING;
        if (!(c->io = malloc(sizeof *c->io))) {
            conn_fail(c, SENTRA_ENOMEM, "out of memory");
            return;
        }
        uv_pipe_init(a->loop, &c->io->pipe, 0);
        c->io->handle.data = c;
        c->creq.data = c;
        uv_pipe_connect(&c->creq, &c->io->pipe, path, on_connect);
        return;
    }
    c->state = CONN_RESOLVING;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    c->gai.data = c;
    c->gai_running = 1;
    int rc = uv_getaddrinfo(a->loop, &c->gai, on_resolved, host, port, &hints);
    free(host);
    if (rc < 0) {
        c->gai_running = 0;
        conn_fail(c, SENTRA_ECONNECT, "resolve %s: %s", a->address, uv_strerror(rc));
    }
}
