/*
 * server.h: the server as a whole: its loop, listeners, connections,
 * database pool and token cache. One server per event loop; several loops
 * on several threads would each own one (nothing here is global but the
 * SQL hash a fixed db_stmt_t caches, the same whoever computes it).
 */
#ifndef SENTRA_SERVER_H
#define SENTRA_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "auth.h"
#include "config.h"
#include "db.h"

struct conn;
struct tls_server;

typedef struct server {
    uv_loop_t *loop;            /* the loop everything runs on */
    config_t *cfg;              /* configuration; not owned */
    db_pool_t *db;              /* the PostgreSQL pool */
    struct replica *replica;    /* reads for a hot standby (--db-read); NULL: none */
    auth_cache_t *auth;         /* verified tokens */
    uv_tcp_t tcp;               /* TCP listener */
    uv_pipe_t unix_sock;        /* optional Unix socket listener */
    int tcp_open, unix_open;    /* listeners open */
    uv_signal_t sigterm, sigint;
    uv_signal_t sighup;         /* reloads the TLS certificate (transport/tls.c) */
    struct tls_server *tls;     /* TLS on TCP connections (--tls-cert); NULL: plaintext only */
    uv_timer_t grace;           /* shutdown grace period */
    struct conn *conns;         /* every open connection */
    int nconns;                 /* how many */
    int nrefused;               /* of them, refused at accept and being answered
                                 * (conn.c): not counted against --max-connections */
    int stopping;               /* SIGTERM/SIGINT received */
    int bound_port;             /* the TCP port actually bound */
    uint64_t requests;          /* requests started, for logs */
    struct call *waiters;       /* calls parked in call_wait_change() */
    uint64_t generation;        /* +1 at every sentra_change or sentra_token
                                 * notification and whenever notifications may
                                 * have been lost: data read at generation g are
                                 * still current while it is g (ETags) */
    uint64_t instance;          /* random at start: names this process in ETags */
    struct web *web;            /* static files served over HTTP (web.h); NULL: none */
    struct reflection *reflection; /* gRPC reflection's index of the descriptor set
                                    * (services/reflection.c; built on first use) */
    uint64_t change_seq;        /* wake-ups handled (NOTIFY sentra_change, losses):
                                 * call_change_mark() */

    /* Token revocations reach this server only while the pool's LISTEN
     * works: after a loss (and at start) the token cache stays off until a
     * probe NOTIFY of ours comes back through it (auth.h). */
    uv_timer_t probe;           /* sends probes while not confirmed */
    int probe_inflight;         /* a probe query is out */
    uint64_t probe_epoch;       /* bumped by every loss: only a probe of this epoch counts */
    char probe_id[48];          /* "probe <pid>-<random>": tells our probes apart */

    /* Memory (call.c, conn.c): bounded in total, whatever the connections. */
    size_t req_mem;             /* held by requests in progress (messages, decoded) */
    size_t wq_total;            /* bytes queued for writing, with their overhead */
    size_t partial_total;       /* bytes held for partial frames */
    struct conn *partial_head;  /* connections holding a partial frame, oldest first */
    struct conn *partial_tail;
    size_t mem_freed;           /* large buffers freed since memory was last given back */
    uv_timer_t mem_timer;       /* gives freed memory back to the system */
} server_t;

/* Request memory (call.c) in total; past it new requests are refused
 * RESOURCE_EXHAUSTED. */
#define SERVER_REQ_MEM_MAX ((size_t)256 << 20)

/* Binds the listeners and starts serving on loop. Returns 0 or a negative
 * libuv error (logged). */
int server_start(server_t *srv, uv_loop_t *loop, config_t *cfg, const char *conninfo);

/* Begins a graceful stop: no new connections, GOAWAY to every client,
 * requests in flight get the grace period, then everything closes and
 * uv_run returns. */
void server_stop(server_t *srv);

/* Called by conn.c when a connection has been freed. */
void server_conn_gone(server_t *srv, struct conn *c);

#endif
