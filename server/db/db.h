/*
 * db.h: the PostgreSQL connection pool, non-blocking libpq inside the
 * event loop.
 *
 * Each pool connection runs in libpq pipeline mode; its socket is watched
 * with uv_poll. Queries wait in one FIFO and go to a connection with room,
 * up to db_pipeline_depth in flight each: quick ones gather on the busiest
 * connection that runs only quick ones, others go to the least busy. Every query is its own
 * implicit transaction (a Sync follows it). Statements are prepared lazily,
 * once per connection, the first time a connection runs them.
 *
 * When a connection breaks, its queries in flight fail with
 * DB_UNAVAILABLE and the pool reconnects with exponential backoff.
 */
#ifndef SENTRA_DB_H
#define SENTRA_DB_H

#include <libpq-fe.h>
#include <uv.h>

typedef struct db_pool db_pool_t;
typedef struct db_query db_query_t;

/* A statement: define one per query as a static in the file that uses it.
 * The pool fills in id on first use; never share a db_stmt_t between two
 * different SQL texts. quick marks a statement that always answers in well
 * under a millisecond (a lookup by key): see pump() in db.c. */
typedef struct db_stmt {
    const char *sql;      /* $1..$n parameters, all sent as text */
    int id;               /* 0 until first used; assigned by the pool */
    int quick;            /* 1: a key lookup, cheap to queue behind */
} db_stmt_t;

enum db_status {
    DB_OK = 0,            /* res holds the result (which may be an SQL error) */
    DB_UNAVAILABLE = 1,   /* no connection could run it; outcome unknown if sent */
    DB_CANCELLED = 2      /* cancelled through db_query_cancel; res NULL */
};

/* Called once per query. res is owned by the pool and cleared after the
 * callback returns; it is NULL unless status is DB_OK. On DB_OK, check
 * PQresultStatus(res): PGRES_FATAL_ERROR carries the SQL error. */
typedef void (*db_cb)(void *arg, int status, PGresult *res);

/* Creates the pool and starts connecting; never blocks. conninfo is copied. */
db_pool_t *db_pool_new(uv_loop_t *loop, const char *conninfo, int size, int depth);

/* Closes every connection; queued and in-flight queries get DB_UNAVAILABLE.
 * The pool is freed once all its handles have closed. */
void db_pool_close(db_pool_t *pool);

/* Number of connections up now (for health). */
int db_pool_ready(const db_pool_t *pool);

/* Queues a query. values[i] may be NULL for SQL NULL; they are copied, so
 * the caller may free them on return. Returns a handle valid until the
 * callback runs. Never calls cb before it returns. Must not be called after
 * db_pool_close (the server closes the pool only once no call is left). */
db_query_t *db_query(db_pool_t *pool, db_stmt_t *stmt, int nparams,
                     const char *const *values, db_cb cb, void *arg);

/* Inside q's callback (status DB_OK): takes its result, which the pool
 * then leaves alone; the caller frees it with PQclear. */
PGresult *db_query_take_result(db_query_t *q);

/* Cancels a query: a queued one is dropped, a running one gets a PostgreSQL
 * cancel request. The callback then runs once with DB_CANCELLED (soon, from
 * the loop, never from inside this function). */
void db_query_cancel(db_query_t *q);

/* Called with (channel, payload) for NOTIFY on channels the pool LISTENs to
 * (set before connecting; see db_pool_listen), and with channel NULL when
 * the listening connection was lost (notifications may have been missed). */
typedef void (*db_notify_cb)(void *arg, const char *channel, const char *payload);
void db_pool_listen(db_pool_t *pool, const char *const *channels, int n,
                    db_notify_cb cb, void *arg);

#endif
