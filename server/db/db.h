/*
 * db.h: the PostgreSQL connection pool, non-blocking libpq inside the
 * event loop.
 *
 * Each pool connection runs in libpq pipeline mode; its socket is watched
 * with uv_poll. Queries wait in one FIFO and go to a connection with room,
 * up to depth in flight each: quick ones gather on the busiest connection
 * that runs only quick ones, others go to the least busy. Every query is
 * its own implicit transaction (a Sync follows it; quick ones sent in the
 * same loop turn share one, see db.c). An error reported at the Sync (at
 * commit: a deferred constraint or trigger, a full NOTIFY queue) is the
 * query's own error: a query is delivered DB_OK only once its transaction
 * ended, and then its result says whether it committed.
 *
 * Prepared statements are made lazily, the first time a connection runs a
 * statement, and kept per connection in a bounded LRU (the least recently
 * used is deallocated beyond max_prepared), keyed by the SQL text.
 *
 * When a connection breaks, its queries in flight fail with
 * DB_UNAVAILABLE and the pool reconnects with exponential backoff. Host
 * names are resolved off the loop thread; every address (and every host of
 * a multi-host conninfo) gets a connect timeout of its own.
 */
#ifndef SENTRA_DB_H
#define SENTRA_DB_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

typedef struct db_pool db_pool_t;
typedef struct db_query db_query_t;

/* A statement. Fixed statements are statics in the file that uses them;
 * statements whose SQL is built per request may live in call memory. The
 * statement and its SQL must stay valid until the query's callback has
 * run; the pool keeps its own copy of the text of what it prepared. quick
 * marks a read-only statement that always answers in well under a
 * millisecond (a lookup by key): see pick_conn() in db.c. */
typedef struct db_stmt {
    const char *sql;      /* $1..$n parameters, all sent as text */
    uint64_t hash;        /* 0 until first used; the pool caches the SQL's hash here */
    int quick;            /* 1: a read-only key lookup, cheap to queue behind */
} db_stmt_t;

enum db_status {
    DB_OK = 0,            /* res holds the result (which may be an SQL error) */
    DB_UNAVAILABLE = 1,   /* no connection could run it; outcome unknown if sent */
    DB_CANCELLED = 2,     /* cancelled through db_query_cancel; outcome unknown; res NULL */
    DB_EXHAUSTED = 3      /* not sent: the pool's queue is full (max_queued, max_queued_bytes) */
};

/* Called once per query. res is owned by the pool and cleared after the
 * callback returns; it is NULL unless status is DB_OK. On DB_OK, check
 * PQresultStatus(res): PGRES_FATAL_ERROR carries the SQL error, which may
 * have been raised at commit. */
typedef void (*db_cb)(void *arg, int status, PGresult *res);

/* Pool settings; db_pool_opts_init() fills the defaults named here. */
typedef struct db_pool_opts {
    int size;                  /* connections (4) */
    int depth;                 /* queries in flight per connection (16) */
    int max_prepared;          /* prepared statements kept per connection (128) */
    int max_queued;            /* queries waiting for a connection, at most (10000) */
    size_t max_queued_bytes;   /* and their parameter bytes (64 MiB) */
    int statement_timeout_ms;  /* statement_timeout of pool sessions; 0: the server's (60000) */
    int connect_timeout_ms;    /* per address tried, resolution included (10000); a
                                * connect_timeout in the conninfo (seconds) wins */
    int stall_timeout_ms;      /* a connection whose queries show no progress this
                                * long is broken (75000) */
} db_pool_opts_t;

void db_pool_opts_init(db_pool_opts_t *o);

/* Creates the pool and starts connecting; never blocks. conninfo (a
 * key=value string or a URI, multi-host lists and target_session_attrs
 * included) is parsed and copied; returns NULL when it cannot be parsed
 * (reason logged) or on allocation failure. The pool adds TCP keepalives,
 * tcp_user_timeout, the statement timeout and fallback_application_name
 * unless the conninfo sets them. */
db_pool_t *db_pool_new_opts(uv_loop_t *loop, const char *conninfo, const db_pool_opts_t *opts);

/* db_pool_new_opts with the defaults but size and depth. */
db_pool_t *db_pool_new(uv_loop_t *loop, const char *conninfo, int size, int depth);

/* Closes every connection; queued and in-flight queries get DB_UNAVAILABLE
 * (their callbacks run before this returns). The pool is freed once all
 * its handles have closed and its worker-thread requests returned. */
void db_pool_close(db_pool_t *pool);

/* Number of connections up now (for health and logs). */
int db_pool_ready(const db_pool_t *pool);

/* Number of connections up and not stalled: none of their queries has
 * waited longer than stall_timeout_ms without progress. Health answers
 * NOT_SERVING when this is 0. */
int db_pool_healthy(const db_pool_t *pool);

/* Queues a query. values[i] may be NULL for SQL NULL; they are copied, so
 * the caller may free them on return. Returns a handle valid until the
 * callback runs. Never calls cb before it returns (a query refused because
 * the queue is full gets DB_EXHAUSTED from the loop). Must not be called
 * after db_pool_close (the server closes the pool only once no call is
 * left). */
db_query_t *db_query(db_pool_t *pool, db_stmt_t *stmt, int nparams,
                     const char *const *values, db_cb cb, void *arg);

/* Inside q's callback (status DB_OK): takes its result, which the pool
 * then leaves alone; the caller frees it with PQclear. */
PGresult *db_query_take_result(db_query_t *q);

/* Cancels a query; the callback then runs once with DB_CANCELLED (soon,
 * from the loop, never from inside this function), and the statement may
 * be freed once it has. A queued query is dropped. One already sent is
 * left to finish and its result dropped: PostgreSQL cancels whatever a
 * backend runs when the request arrives, not a chosen statement, so a
 * cancel request is sent only while the query is the only one in flight on
 * its connection (see db.c). The outcome of a cancelled write is unknown:
 * it may have committed. */
void db_query_cancel(db_query_t *q);

/* Called with (channel, payload) for NOTIFY on channels the pool LISTENs to
 * (set before connecting; see db_pool_listen), and with channel NULL
 * ("notifications may have been missed": act as if every channel fired)
 * (a) after the listening connection was lost and (b) once more each time
 * its LISTENs are active again after a (re)connect, the first connect
 * included: what committed between the loss and the new LISTEN sent no
 * notification anyone heard, so a cache that (a) emptied may have been
 * refilled meanwhile with what (b) must drop again. Always called from
 * the loop, never from inside another pool function. */
typedef void (*db_notify_cb)(void *arg, const char *channel, const char *payload);
void db_pool_listen(db_pool_t *pool, const char *const *channels, int n,
                    db_notify_cb cb, void *arg);

#endif
