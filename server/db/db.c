/*
 * db.c: the PostgreSQL connection pool (see db.h).
 *
 * Each connection is a non-blocking libpq connection in pipeline mode whose
 * socket is watched by a uv_poll handle. A query is sent as
 *
 *     [Parse (first use on this connection)] Bind/Execute  Sync
 *
 * so that every query is its own implicit transaction and an error in one
 * never aborts its neighbours. Results come back in order; each query in
 * flight walks through the phases PREPARE -> QUERY -> SYNC as libpq hands
 * back its results, and is delivered only at its Sync's PIPELINE_SYNC: an
 * error reported between its last result and that point is an error at
 * commit and becomes the query's result. With a deferred trigger failing at
 * commit libpq gives TUPLES_OK, NULL, FATAL_ERROR, NULL, PIPELINE_SYNC.
 *
 * Cancellation: PostgreSQL cancels whatever a backend runs when the cancel
 * request arrives, not a chosen statement; on a pipelined connection that
 * may be the next query, or the commit of the query before (issue 12: an
 * acknowledged create was rolled back that way). So a cancelled query that
 * was sent stays in its pipeline, its result dropped, and a cancel request
 * goes out only while every query in flight on its connection is a
 * cancelled one (most often it is alone there); from then until PQcancel
 * has returned (the postmaster has signalled the backend before it closes
 * the cancel connection), the connection takes no new query, nor while it
 * holds a cancelled slow query. A cancel that arrives once the backend is
 * back waiting for input is discarded by PostgreSQL, so a cancel can reach
 * nothing but statements it was aimed at, or their own commits. No query is ever retried
 * for SQLSTATE 57014: one that gets it was cancelled by statement_timeout
 * or by someone else, and the error is its answer.
 *
 * Sections: queries, deferred delivery, prepared statements, cancel,
 * polling, sending, choosing a connection, receiving, connecting, the
 * watchdog, the public functions.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_ATTEMPTS 3      /* sends of one query (re-sent after others' failures) */
#define MAX_CANCELS 2       /* PQcancel calls at once: each holds one of libuv's
                             * four worker threads (name lookups need them too) */
#define MAX_HOSTS 64        /* entries of a multi-host conninfo */
#define MAX_ADDRS 16        /* addresses tried per host name */

enum dbc_state {
    DBC_IDLE,        /* not connected; the backoff timer may be armed */
    DBC_RESOLVING,   /* uv_getaddrinfo for the host being tried */
    DBC_CONNECTING,  /* PQconnectPoll in progress */
    DBC_READY,       /* in pipeline mode, accepting queries */
    DBC_CLOSING      /* the pool is closing */
};

enum q_phase {
    PH_QUEUED,       /* in the pool queue */
    PH_PREPARE,      /* its Parse's result is next */
    PH_QUERY,        /* its Execute's results are next */
    PH_SYNC,         /* its Sync's result is next (an error at commit first, maybe) */
    PH_HELD          /* grouped: results complete, waiting for the group's Sync */
};

enum q_kind {
    Q_USER,          /* db_query */
    Q_INTERNAL,      /* the pool's own text query (LISTEN, DEALLOCATE) */
    Q_MARKER         /* not a query: the Sync closing a group */
};

struct db_conn;

struct db_query {
    db_pool_t *pool;
    struct db_conn *conn;    /* the connection running it; NULL while queued */
    enum q_kind kind;
    db_stmt_t *stmt;         /* Q_USER; NULL once cancelled (its owner may free it) */
    int quick;               /* stmt->quick, kept past the cancel */
    char *text;              /* Q_INTERNAL: the SQL (no parameters) */
    void (*idone)(struct db_conn *dc, struct db_query *q); /* Q_INTERNAL: its result is in */
    int ilast;               /* Q_INTERNAL: the last LISTEN of a connection */
    int nparams;
    char **values;           /* copies; NULL entries are SQL NULL */
    size_t bytes;            /* of the values, for max_queued_bytes */
    db_cb cb;                /* NULL for internal queries */
    void *arg;
    enum q_phase phase;
    int refs;                /* 1 while queued or in a pipeline, +1 until its callback ran */
    int answered;            /* its callback ran or is scheduled */
    int cancelled;           /* db_query_cancel was called: its result is dropped */
    int status;              /* DB_* for the deferred callback */
    int attempts;            /* times sent */
    int solo;                /* send with a Sync of its own even if quick (a re-send) */
    int grouped;             /* sent without a Sync of its own (see group_close) */
    unsigned prep;           /* its statement's name here ("p<prep>"); 0: none */
    int parsed_here;         /* its own Parse was sent with it */
    int sync_null_pending;   /* an error came at its Sync; libpq's NULL after it is next */
    PGresult *result;        /* the result to deliver (ours to clear) */
    PGresult *sync_error;    /* an error reported at its Sync: at commit */
    struct db_query *next;   /* in the pool queue or the connection's pipeline */
    struct db_query *dnext;  /* in the pool's done list */
};

/* A statement prepared on one connection: an entry of its LRU. */
struct prep {
    uint64_t hash;           /* of sql */
    char *sql;               /* our copy */
    unsigned name;           /* prepared as "p<name>"; never reused on a connection */
    struct prep *hnext;      /* hash chain */
    struct prep *newer, *older; /* LRU list: newest first */
};

struct db_conn {
    db_pool_t *pool;
    int index;               /* position in pool->conns */
    enum dbc_state state;
    PGconn *pg;
    uint64_t gen;            /* bumped at every attempt and break: older work is stale */
    uv_poll_t *poll;         /* watches poll_fd; NULL when not watching */
    int poll_fd;
    int poll_events;
    uv_timer_t timer;        /* IDLE: reconnect backoff; RESOLVING/CONNECTING: connect timeout */
    int backoff_ms;
    /* connecting: one host entry of the conninfo at a time, one address at a time */
    int host_i;              /* entry being tried */
    int pass;                /* target_session_attrs=prefer-standby: 0 standby, 1 any */
    char *addrs[MAX_ADDRS];  /* hostaddr values to try for host_i (NULL: let libpq) */
    int naddrs, addr_i;
    char lasterr[256];       /* why the last address failed */
    /* pipeline */
    struct db_query *head, *tail; /* sent, not yet delivered */
    struct db_query *cur;    /* the first whose results are still coming */
    int inflight;            /* queries in the pipeline (markers not counted) */
    int slow_inflight;       /* of them, user queries that are not quick (see pick_conn) */
    int group_open;          /* quick queries sent since the last Sync */
    int cancelling;          /* a cancel request is out: take no new query */
    int slow_orphans;        /* cancelled slow queries in the pipeline: take no new query */
    uint64_t done_count;     /* queries that left the pipeline (see maybe_cancel) */
    uint64_t cancel_at;      /* done_count when the last cancel request went out */
    uint64_t progress_ns;    /* bytes or a result last came, or the pipeline filled */
    int listening;           /* this connection carries the LISTENs */
    /* prepared statements: a hash table over an LRU list */
    struct prep **ptab;      /* pool->ptab_size buckets */
    int pcount;
    struct prep *newest, *oldest;
    unsigned next_name;
};

struct db_pool {
    uv_loop_t *loop;
    db_pool_opts_t o;
    /* the conninfo, parsed once */
    const char **kw, **val;  /* the user's settings but those below; NULL-terminated */
    int nkw;
    char *hosts[MAX_HOSTS], *hostaddrs[MAX_HOSTS], *ports[MAX_HOSTS];
    int nhosts;
    char tsa[32];            /* target_session_attrs as given; "" none */
    int connect_timeout_ms;
    int set_keepalives, set_user_timeout, set_appname; /* not given by the user */
    char *options;           /* the "options" we send: ours, then the user's */
    PQconninfoOption *parsed;/* owns the strings kw/val point to */
    /* connections and queries */
    struct db_conn *conns;
    int ptab_size;           /* buckets per connection (power of two) */
    struct db_query *qhead, *qtail; /* waiting for a connection */
    int nqueued;
    size_t queued_bytes;
    struct db_query *done;   /* to deliver from the defer timer (dnext), newest first */
    int notify_lost;         /* deliver "notifications lost" from the defer timer */
    uint64_t full_logged_ns; /* last db_queue_full log line */
    uv_timer_t defer;
    uv_prepare_t sync;       /* closes open groups before the loop blocks */
    uv_timer_t watchdog;
    int closing;
    int closed;              /* the defer timer is closed: deliver at once */
    int open_handles;        /* handles still to close before free */
    int pending_reqs;        /* worker-thread requests not yet called back */
    int cancels;             /* cancel requests running */
    char **channels;         /* LISTEN channels */
    int nchannels;
    db_notify_cb notify_cb;
    void *notify_arg;
};

static void conn_connect(struct db_conn *dc);
static void conn_broken(struct db_conn *dc, const char *why);
static void on_poll(uv_poll_t *h, int status, int events);
static void pump(db_pool_t *pool);
static int conn_flush(struct db_conn *dc);
static int send_query(struct db_conn *dc, struct db_query *q);
static void maybe_cancel(struct db_conn *dc);
static void pool_maybe_free(db_pool_t *pool);

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

/* ---------------------------------------------------------------- queries */

static void query_unref(struct db_query *q)
{
    if (--q->refs > 0)
        return;
    for (int i = 0; i < q->nparams; i++)
        free(q->values[i]);
    free(q->values);
    free(q->text);
    if (q->result != NULL)
        PQclear(q->result);
    if (q->sync_error != NULL)
        PQclear(q->sync_error);
    free(q);
}

static struct db_query *query_new(db_pool_t *pool, enum q_kind kind, int nparams,
                                  const char *const *values)
{
    struct db_query *q = calloc(1, sizeof(*q));
    if (q == NULL)
        abort();
    q->pool = pool;
    q->kind = kind;
    q->refs = 1;
    q->nparams = nparams;
    if (nparams > 0) {
        q->values = calloc((size_t)nparams, sizeof(char *));
        if (q->values == NULL)
            abort();
        for (int i = 0; i < nparams; i++) {
            if (values[i] == NULL)
                continue;
            size_t n = strlen(values[i]);
            if ((q->values[i] = malloc(n + 1)) == NULL)
                abort();
            memcpy(q->values[i], values[i], n + 1);
            q->bytes += n;
        }
    }
    return q;
}

static int query_slow(const struct db_query *q)
{
    return q->kind == Q_USER && !q->quick;
}

PGresult *db_query_take_result(db_query_t *q)
{
    PGresult *res = q->result;
    q->result = NULL;
    return res;
}

static void queue_push(db_pool_t *pool, struct db_query *q, int front)
{
    q->phase = PH_QUEUED;
    q->conn = NULL;
    if (front) {
        q->next = pool->qhead;
        pool->qhead = q;
        if (pool->qtail == NULL)
            pool->qtail = q;
    } else {
        q->next = NULL;
        if (pool->qtail != NULL)
            pool->qtail->next = q;
        else
            pool->qhead = q;
        pool->qtail = q;
    }
    pool->nqueued++;
    pool->queued_bytes += q->bytes;
}

/* Takes the first query off the queue. */
static struct db_query *queue_shift(db_pool_t *pool)
{
    struct db_query *q = pool->qhead;
    if (q == NULL)
        return NULL;
    pool->qhead = q->next;
    if (pool->qhead == NULL)
        pool->qtail = NULL;
    q->next = NULL;
    pool->nqueued--;
    pool->queued_bytes -= q->bytes;
    return q;
}

/* Takes q out of the queue; returns 0 when it was not there. */
static int queue_unlink(db_pool_t *pool, struct db_query *q)
{
    struct db_query **pp = &pool->qhead, *prev = NULL;
    while (*pp != NULL && *pp != q) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp != q)
        return 0;
    *pp = q->next;
    if (pool->qtail == q)
        pool->qtail = prev;
    q->next = NULL;
    pool->nqueued--;
    pool->queued_bytes -= q->bytes;
    return 1;
}

/* ---------------------------------------------------------------- deferred delivery */

/*
 * Everything but a result is delivered from the loop, through the defer
 * timer: DB_CANCELLED, DB_UNAVAILABLE, DB_EXHAUSTED and the "notifications
 * lost" event. So no callback ever runs in the middle of a state change of
 * the pool (issue 13: conn_broken woke thousands of long polls whose
 * queries broke the same connection again, one stack level each), nor from
 * inside db_query or db_query_cancel.
 */
static void on_defer(uv_timer_t *t)
{
    db_pool_t *pool = t->data;
    /* Deliver in the order they were scheduled: the list was built by
     * prepending. */
    struct db_query *list = pool->done, *rev = NULL;
    pool->done = NULL;
    while (list != NULL) {
        struct db_query *n = list->dnext;
        list->dnext = rev;
        rev = list;
        list = n;
    }
    while (rev != NULL) {
        struct db_query *q = rev;
        rev = q->dnext;
        db_cb cb = q->cb;
        q->cb = NULL;
        if (cb != NULL)
            cb(q->arg, q->status, NULL);
        query_unref(q);          /* the callback's reference */
    }
    if (pool->notify_lost) {
        pool->notify_lost = 0;
        if (pool->notify_cb != NULL)
            pool->notify_cb(pool->notify_arg, NULL, NULL);
    }
}

static void defer_kick(db_pool_t *pool)
{
    if (pool->closed)
        on_defer(&pool->defer);  /* the loop is winding down (db_pool_close) */
    else if (!uv_is_active((uv_handle_t *)&pool->defer))
        uv_timer_start(&pool->defer, on_defer, 0, 0);
}

/* Schedules q's callback with status (q keeps its other references). */
static void defer_answer(struct db_query *q, int status)
{
    db_pool_t *pool = q->pool;
    assert(!q->answered && q->kind == Q_USER);
    q->answered = 1;
    q->status = status;
    q->dnext = pool->done;
    pool->done = q;
    defer_kick(pool);
}

/* q has left the queue or its pipeline for good: if its callback has not
 * been scheduled, schedule it with status; then drop the pool's reference. */
static void query_fail(struct db_query *q, int status)
{
    if (q->kind == Q_USER && !q->answered)
        defer_answer(q, status);
    query_unref(q);
}

/* Delivers q's result now (q has left its pipeline). */
static void query_deliver(struct db_query *q)
{
    assert(!q->answered && !q->cancelled);
    q->answered = 1;
    db_cb cb = q->cb;
    q->cb = NULL;
    if (cb != NULL)
        cb(q->arg, DB_OK, q->result);
    query_unref(q);              /* the callback's */
    query_unref(q);              /* the pool's */
}

/* ---------------------------------------------------------------- prepared statements */

/*
 * Each connection keeps at most max_prepared statements, found by the hash
 * and text of their SQL, in least-recently-used order. Making room sends
 * DEALLOCATE for the oldest (after what was already sent, so queries in
 * flight that use it still find it). Names are never reused on a
 * connection, so a Parse that fails, or is skipped with its group, only
 * ever makes its own entry wrong: prep_forget drops it by name. Statement
 * SQL built per request (GetStatistics and ListSentra shapes, of which
 * there are hundreds of thousands) therefore costs each backend at most
 * max_prepared plans, and sentrad max_prepared copies per connection.
 */
static uint64_t sql_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;       /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h | 1;                               /* 0 means "not computed" */
}

static uint64_t stmt_hash(db_stmt_t *st)
{
    /* Fixed statements are shared by every loop: the value is the same
     * whoever computes it, so a relaxed store is enough. */
    uint64_t h = __atomic_load_n(&st->hash, __ATOMIC_RELAXED);
    if (h == 0) {
        h = sql_hash(st->sql);
        __atomic_store_n(&st->hash, h, __ATOMIC_RELAXED);
    }
    return h;
}

static void lru_unlink(struct db_conn *dc, struct prep *p)
{
    if (p->newer != NULL)
        p->newer->older = p->older;
    else
        dc->newest = p->older;
    if (p->older != NULL)
        p->older->newer = p->newer;
    else
        dc->oldest = p->newer;
    p->newer = p->older = NULL;
}

static void lru_push(struct db_conn *dc, struct prep *p)
{
    p->older = dc->newest;
    p->newer = NULL;
    if (dc->newest != NULL)
        dc->newest->newer = p;
    dc->newest = p;
    if (dc->oldest == NULL)
        dc->oldest = p;
}

static struct prep *prep_find(struct db_conn *dc, uint64_t hash, const char *sql)
{
    size_t b = (size_t)(hash & (uint64_t)(dc->pool->ptab_size - 1));
    for (struct prep *p = dc->ptab[b]; p != NULL; p = p->hnext)
        if (p->hash == hash && strcmp(p->sql, sql) == 0)
            return p;
    return NULL;
}

static void prep_remove(struct db_conn *dc, struct prep *p)
{
    size_t b = (size_t)(p->hash & (uint64_t)(dc->pool->ptab_size - 1));
    for (struct prep **pp = &dc->ptab[b]; *pp != NULL; pp = &(*pp)->hnext)
        if (*pp == p) {
            *pp = p->hnext;
            break;
        }
    lru_unlink(dc, p);
    dc->pcount--;
    free(p->sql);
    free(p);
}

/* The Parse of statement name failed or was skipped: forget it. */
static void prep_forget(struct db_conn *dc, unsigned name)
{
    if (name == 0)
        return;
    for (struct prep *p = dc->newest; p != NULL; p = p->older)
        if (p->name == name) {
            prep_remove(dc, p);
            return;
        }
}

static void prep_clear(struct db_conn *dc)
{
    while (dc->newest != NULL)
        prep_remove(dc, dc->newest);
}

static struct prep *prep_add(struct db_conn *dc, uint64_t hash, const char *sql)
{
    struct prep *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->sql = strdup(sql)) == NULL)
        abort();
    p->hash = hash;
    p->name = ++dc->next_name;
    size_t b = (size_t)(hash & (uint64_t)(dc->pool->ptab_size - 1));
    p->hnext = dc->ptab[b];
    dc->ptab[b] = p;
    lru_push(dc, p);
    dc->pcount++;
    return p;
}

static void dealloc_done(struct db_conn *dc, struct db_query *q)
{
    /* 26000: its Parse had failed, so there was nothing to free. */
    const char *st = q->result ? PQresultErrorField(q->result, PG_DIAG_SQLSTATE) : NULL;
    if (q->result != NULL && PQresultStatus(q->result) == PGRES_FATAL_ERROR &&
        (st == NULL || strcmp(st, "26000") != 0))
        log_warn("db_deallocate_failed", "conn=%d error=\"%s\"", dc->index,
                 PQresultErrorField(q->result, PG_DIAG_MESSAGE_PRIMARY));
}

/* Sends a text query of the pool's own; returns send_query's result. */
static int send_internal(struct db_conn *dc, const char *sql,
                         void (*idone)(struct db_conn *, struct db_query *), int ilast)
{
    struct db_query *q = query_new(dc->pool, Q_INTERNAL, 0, NULL);
    if ((q->text = strdup(sql)) == NULL)
        abort();
    q->idone = idone;
    q->ilast = ilast;
    if (send_query(dc, q) != 0) {
        query_unref(q);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- cancel */

struct cancel_work {
    uv_work_t req;
    PGcancel *cancel;
    struct db_conn *dc;
    uint64_t gen;            /* dc->gen when sent */
    int ok;
    char err[256];
};

static void cancel_run(uv_work_t *w)
{
    struct cancel_work *cw = (struct cancel_work *)w;
    /* PQcancel returns once the server closed the cancel connection, which
     * the postmaster does after it signalled the backend. */
    cw->ok = PQcancel(cw->cancel, cw->err, sizeof(cw->err));
}

static void cancel_done(uv_work_t *w, int status)
{
    struct cancel_work *cw = (struct cancel_work *)w;
    struct db_conn *dc = cw->dc;
    db_pool_t *pool = dc->pool;
    if (!cw->ok)
        log_warn("db_cancel_failed", "conn=%d error=\"%s\"", dc->index, cw->err);
    PQfreeCancel(cw->cancel);
    pool->cancels--;
    pool->pending_reqs--;
    /* A connection broken meanwhile has a new backend, which the request
     * could not reach. */
    if (cw->gen == dc->gen)
        dc->cancelling = 0;
    free(cw);
    if (pool->closing) {
        pool_maybe_free(pool);
        return;
    }
    /* A slot is free: another connection may be waiting to cancel. */
    for (int i = 0; i < pool->o.size; i++)
        if (pool->conns[i].state == DBC_READY)
            maybe_cancel(&pool->conns[i]);
    pump(pool);
}

/* Sends a cancel request when every query in flight on dc was cancelled
 * (so whichever statement it reaches is one we aimed at; most often there
 * is one) and one of them is slow (quick ones are over sooner than a
 * cancel would arrive), and something finished since the last request
 * there (each costs the postmaster a fork; one ends one statement). Until
 * the request is done the connection takes no new query (conn_open). */
static void maybe_cancel(struct db_conn *dc)
{
    db_pool_t *pool = dc->pool;
    if (dc->state != DBC_READY || dc->head == NULL || dc->cancelling || dc->slow_orphans == 0 ||
        dc->done_count == dc->cancel_at || pool->cancels >= MAX_CANCELS || pool->closing)
        return;
    for (struct db_query *q = dc->head; q != NULL; q = q->next)
        if (q->kind == Q_INTERNAL || (q->kind == Q_USER && !q->cancelled))
            return;
    struct cancel_work *cw = calloc(1, sizeof(*cw));
    if (cw == NULL)
        abort();
    cw->cancel = PQgetCancel(dc->pg);
    if (cw->cancel == NULL) {
        free(cw);
        return;
    }
    cw->dc = dc;
    cw->gen = dc->gen;
    if (uv_queue_work(pool->loop, &cw->req, cancel_run, cancel_done) != 0) {
        PQfreeCancel(cw->cancel);
        free(cw);
        return;
    }
    dc->cancelling = 1;
    dc->cancel_at = dc->done_count;
    pool->cancels++;
    pool->pending_reqs++;
}

/* ---------------------------------------------------------------- polling */

static void poll_closed(uv_handle_t *h)
{
    db_pool_t *pool = h->data;
    free(h);
    pool->open_handles--;
    pool_maybe_free(pool);
}

static void poll_stop(struct db_conn *dc)
{
    if (dc->poll != NULL) {
        /* The handle memory lives until its close callback: hand it over. */
        dc->poll->data = dc->pool;
        uv_close((uv_handle_t *)dc->poll, poll_closed);
        dc->poll = NULL;
    }
}

/* Watches the connection's socket for events. With fresh set, or when the
 * socket is another, the handle is made anew: while connecting libpq may
 * close its socket and open another (next address, SSL or GSS fallback),
 * which often gets the same number; a handle kept across that would watch
 * nothing (epoll forgets a closed socket). Returns 0, or -1 when the
 * handle could not be made (the connection is then broken). */
static int poll_want(struct db_conn *dc, int events, int fresh)
{
    int fd = PQsocket(dc->pg);
    if (fd < 0)
        return -1;
    if (dc->poll != NULL && (fresh || dc->poll_fd != fd))
        poll_stop(dc);
    if (dc->poll == NULL) {
        uv_poll_t *p = malloc(sizeof(*p));
        if (p == NULL || uv_poll_init(dc->pool->loop, p, fd) != 0) {
            free(p);
            return -1;
        }
        p->data = dc;
        dc->poll = p;
        dc->poll_fd = fd;
        dc->poll_events = 0;
        dc->pool->open_handles++;
    }
    if (dc->poll_events != events) {
        dc->poll_events = events;
        if (uv_poll_start(dc->poll, events, on_poll) != 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- sending */

static void pipeline_append(struct db_conn *dc, struct db_query *q)
{
    q->conn = dc;
    q->next = NULL;
    if (dc->tail != NULL)
        dc->tail->next = q;
    else
        dc->head = q;
    dc->tail = q;
    if (dc->cur == NULL)
        dc->cur = q;
}

/*
 * Groups. Each query is its own implicit transaction: a Sync follows it,
 * and libpq 15 sends the buffer at every Sync (PQpipelineSync flushes), so
 * each query cost a send(), and PostgreSQL flushed each result apart.
 * Quick statements (read-only key lookups, see pick_conn) are sent without
 * a Sync of their own instead, and one Sync closes all those sent to a
 * connection in the same turn of the event loop (on_sync, a prepare
 * handle: just before the loop would block). They run in one implicit
 * transaction, which for lookups changes nothing (each statement still
 * takes its own snapshot), and their results are delivered only at the
 * group's Sync, like any other: an error there (at commit) is sent again,
 * alone. An error in one aborts those after it in the group: those are
 * sent again, alone, so they can fail only for their own sake. A marker in
 * the pipeline stands for the group's Sync.
 */
static int group_close(struct db_conn *dc)
{
    if (!PQpipelineSync(dc->pg))
        return -1;
    struct db_query *m = query_new(dc->pool, Q_MARKER, 0, NULL);
    m->phase = PH_SYNC;
    pipeline_append(dc, m);
    dc->group_open = 0;
    return 0;
}

static void on_sync(uv_prepare_t *h)
{
    db_pool_t *pool = h->data;
    uv_prepare_stop(h);
    for (int i = 0; i < pool->o.size; i++) {
        struct db_conn *dc = &pool->conns[i];
        if (dc->state != DBC_READY || !dc->group_open)
            continue;
        if (group_close(dc) != 0)
            conn_broken(dc, PQerrorMessage(dc->pg));
        else
            conn_flush(dc);
    }
}

/* Puts q into dc's pipeline. Returns 0, or -1 when libpq refused (the
 * connection is then treated as broken by the caller; q is not in it). */
static int send_query(struct db_conn *dc, struct db_query *q)
{
    db_pool_t *pool = dc->pool;
    PGconn *pg = dc->pg;
    const char *const *vals = (const char *const *)q->values;
    int group = q->kind == Q_USER && q->quick && !q->solo;

    if (!group && dc->group_open && group_close(dc) != 0)
        return -1;

    q->prep = 0;
    q->parsed_here = 0;
    if (q->kind == Q_INTERNAL) {
        if (!PQsendQueryParams(pg, q->text, 0, NULL, NULL, NULL, NULL, 0))
            return -1;
        q->phase = PH_QUERY;
    } else {
        char name[16];
        uint64_t h = stmt_hash(q->stmt);
        struct prep *p = prep_find(dc, h, q->stmt->sql);
        if (p != NULL) {
            lru_unlink(dc, p);
            lru_push(dc, p);
        } else {
            if (dc->pcount >= pool->o.max_prepared && dc->oldest != NULL) {
                /* Make room first: queries already sent that use it run
                 * before the DEALLOCATE, and the backend never holds more
                 * than max_prepared. */
                char sql[32];
                snprintf(sql, sizeof(sql), "DEALLOCATE p%u", dc->oldest->name);
                prep_remove(dc, dc->oldest);
                if (send_internal(dc, sql, dealloc_done, 0) != 0)
                    return -1;
            }
            p = prep_add(dc, h, q->stmt->sql);
            q->parsed_here = 1;
        }
        q->prep = p->name;
        snprintf(name, sizeof(name), "p%u", p->name);
        if (q->parsed_here && !PQsendPrepare(pg, name, q->stmt->sql, q->nparams, NULL))
            return -1;
        if (!PQsendQueryPrepared(pg, name, q->nparams, vals, NULL, NULL, 0))
            return -1;
        q->phase = q->parsed_here ? PH_PREPARE : PH_QUERY;
    }
    if (group) {
        q->grouped = 1;
        dc->group_open = 1;
        if (!uv_is_active((uv_handle_t *)&pool->sync))
            uv_prepare_start(&pool->sync, on_sync);
    } else {
        q->grouped = 0;
        if (!PQpipelineSync(pg))
            return -1;
    }
    q->sync_null_pending = 0;
    q->attempts++;
    if (dc->head == NULL)
        dc->progress_ns = now_ns();
    pipeline_append(dc, q);
    dc->inflight++;
    dc->slow_inflight += query_slow(q);
    return 0;
}

/* Flushes libpq's output and sets the poll events accordingly. Returns 0,
 * or -1 when the connection broke. */
static int conn_flush(struct db_conn *dc)
{
    int r = PQflush(dc->pg);
    if (r < 0) {
        conn_broken(dc, PQerrorMessage(dc->pg));
        return -1;
    }
    if (poll_want(dc, UV_READABLE | (r == 1 ? UV_WRITABLE : 0), 0) != 0) {
        conn_broken(dc, "cannot watch the socket");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- choosing a connection */

static int pool_live(const db_pool_t *pool, int *connecting)
{
    int ready = 0;
    *connecting = 0;
    for (int i = 0; i < pool->o.size; i++) {
        enum dbc_state s = pool->conns[i].state;
        if (s == DBC_READY)
            ready++;
        else if (s == DBC_CONNECTING || s == DBC_RESOLVING)
            (*connecting)++;
    }
    return ready;
}

/* Whether dc may take a new query: it is up, has room, has no cancel
 * request out, and holds no cancelled slow query: a query sent behind one
 * would wait for it, and would stop it from being cancelled (maybe_cancel
 * cancels only when every query in flight is cancelled). */
static int conn_open(const db_pool_t *pool, const struct db_conn *dc)
{
    return dc->state == DBC_READY && dc->inflight < pool->o.depth && !dc->cancelling &&
           dc->slow_orphans == 0;
}

/*
 * The connection for q, or NULL when none has room. A query that is not
 * quick goes to the least busy connection (an idle one if there is one).
 * A quick one joins the busiest connection that has room and runs only
 * quick queries: one backend then works through a stream of lookups
 * without sleeping between them, where spreading them over every
 * connection woke four backends in turn on two cores (GetSentra at 16
 * clients: 40,000 requests/s spread, 52,000 gathered; docs/BENCHMARKS.md).
 * Queued behind quick queries only, it waits a fraction of a millisecond;
 * it never joins a pipeline that holds a slow query.
 */
static struct db_conn *pick_conn(db_pool_t *pool, const struct db_query *q)
{
    struct db_conn *least = NULL, *lane = NULL;

    for (int i = 0; i < pool->o.size; i++) {
        struct db_conn *dc = &pool->conns[i];
        if (!conn_open(pool, dc))
            continue;
        if (least == NULL || dc->inflight < least->inflight)
            least = dc;
        if (dc->slow_inflight == 0 && (lane == NULL || dc->inflight > lane->inflight))
            lane = dc;
    }
    return q->kind == Q_USER && q->quick && lane != NULL ? lane : least;
}

/* Moves queued queries into ready connections (pick_conn). */
static void pump(db_pool_t *pool)
{
    while (pool->qhead != NULL) {
        struct db_conn *best = pick_conn(pool, pool->qhead);
        if (best == NULL)
            break;
        if (best->slow_inflight > 0 || (best->inflight > 0 && query_slow(pool->qhead))) {
            /* Every open connection is busy. Queued behind another query a
             * fast one waits for the slow one (pipelines run in order), so
             * rather wait for a connection that is coming up. */
            int connecting;
            pool_live(pool, &connecting);
            if (connecting > 0)
                break;
        }
        struct db_query *q = queue_shift(pool);
        if (send_query(best, q) != 0) {
            queue_push(pool, q, 1);
            conn_broken(best, PQerrorMessage(best->pg));
            continue;
        }
        if (!q->grouped || !best->group_open)
            conn_flush(best);       /* an open group goes out in on_sync */
    }

    /* Nothing can run these: fail them rather than let them wait for their
     * deadlines. */
    int connecting;
    if (pool->qhead != NULL && pool_live(pool, &connecting) == 0 && connecting == 0) {
        struct db_query *q;
        while ((q = queue_shift(pool)) != NULL)
            query_fail(q, DB_UNAVAILABLE);
    }
}

/* ---------------------------------------------------------------- receiving */

/* Takes q (the head) out of dc's pipeline. */
static void pipeline_shift(struct db_conn *dc, struct db_query *q)
{
    assert(dc->head == q);
    dc->head = q->next;
    if (dc->head == NULL)
        dc->tail = NULL;
    if (dc->cur == q)
        dc->cur = q->next;
    q->next = NULL;
    if (q->kind != Q_MARKER) {
        dc->inflight--;
        dc->slow_inflight -= query_slow(q);
        dc->slow_orphans -= q->cancelled && query_slow(q);
        dc->done_count++;
    }
}

/* Whether q, which has all its results, must be sent again rather than
 * delivered: it was skipped because an earlier query of its group failed,
 * or it found its statement missing (a Parse it counted on was skipped). */
static int query_resend(struct db_conn *dc, struct db_query *q)
{
    const char *state = q->result ? PQresultErrorField(q->result, PG_DIAG_SQLSTATE) : NULL;
    int aborted = q->result != NULL && PQresultStatus(q->result) == PGRES_PIPELINE_ABORTED;
    int unprepared = state != NULL && strcmp(state, "26000") == 0 && !q->parsed_here;
    if (!(aborted || unprepared) || q->attempts >= MAX_ATTEMPTS)
        return 0;
    if (unprepared)
        prep_forget(dc, q->prep);
    return 1;
}

/* Puts the queries of list (linked by next, in order) back at the front
 * of the pool queue, each to be sent alone. */
static void requeue_front(db_pool_t *pool, struct db_query *list)
{
    /* Reverse, then push each to the front: the order is kept. */
    struct db_query *rev = NULL;
    while (list != NULL) {
        struct db_query *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev != NULL) {
        struct db_query *q = rev;
        rev = q->next;
        if (q->result != NULL)
            PQclear(q->result);
        q->result = NULL;
        q->solo = 1;
        if (pool->closing)
            query_fail(q, DB_UNAVAILABLE);
        else
            queue_push(pool, q, 1);
    }
}

/* q has all its results and has left the pipeline: deliver it, drop it
 * (cancelled), run its internal continuation, or add it to *resend. */
static void query_complete(struct db_conn *dc, struct db_query *q, struct db_query ***resend)
{
    if (q->kind == Q_INTERNAL) {
        if (q->idone != NULL)
            q->idone(dc, q);
        query_unref(q);
        return;
    }
    if (q->cancelled) {
        query_unref(q);          /* its callback (DB_CANCELLED) is scheduled */
        return;
    }
    if (dc->state == DBC_READY && query_resend(dc, q)) {
        q->next = NULL;
        **resend = q;
        *resend = &q->next;
        return;
    }
    query_deliver(q);
}

/* The Sync of a group (marker m) is in, with the error it reported, if any:
 * deliver the group's queries or send them again. */
static void group_done(struct db_conn *dc, struct db_query *m)
{
    db_pool_t *pool = dc->pool;
    PGresult *err = m->sync_error;
    struct db_query *list = NULL, **tail = &list, *resend = NULL, **rtail = &resend;

    /* Take the group out first: callbacks may send on this connection. */
    while (dc->head != m) {
        struct db_query *q = dc->head;
        assert(q->phase == PH_HELD);
        pipeline_shift(dc, q);
        *tail = q;
        tail = &q->next;
    }
    pipeline_shift(dc, m);
    while (list != NULL) {
        struct db_query *q = list;
        list = q->next;
        q->next = NULL;
        if (err != NULL && !q->cancelled) {
            /* The group's transaction failed at commit: read-only lookups
             * caused nothing there; what they read is sent again, alone
             * (once: alone, an error at its Sync is its own answer). */
            *rtail = q;
            rtail = &q->next;
        } else {
            query_complete(dc, q, &rtail);
        }
    }
    if (err != NULL)
        log_warn("db_group_failed_at_sync", "conn=%d sqlstate=%s error=\"%s\"", dc->index,
                 PQresultErrorField(err, PG_DIAG_SQLSTATE) ? PQresultErrorField(err, PG_DIAG_SQLSTATE) : "",
                 PQresultErrorField(err, PG_DIAG_MESSAGE_PRIMARY) ? PQresultErrorField(err, PG_DIAG_MESSAGE_PRIMARY) : "");
    query_unref(m);
    requeue_front(pool, resend);
}

/* A query with a Sync of its own has its Sync's result. */
static void solo_done(struct db_conn *dc, struct db_query *q)
{
    struct db_query *resend = NULL, **rtail = &resend;
    pipeline_shift(dc, q);
    if (q->sync_error != NULL) {
        /* Failed at commit (or at its Sync): that is its answer, whatever
         * its statement returned before. */
        if (q->result != NULL)
            PQclear(q->result);
        q->result = q->sync_error;
        q->sync_error = NULL;
    }
    query_complete(dc, q, &rtail);
    requeue_front(dc->pool, resend);
}

/* Takes the results libpq has ready. */
static void conn_read_results(struct db_conn *dc)
{
    uint64_t gen = dc->gen;
    while (dc->cur != NULL && dc->state == DBC_READY && dc->gen == gen) {
        if (PQisBusy(dc->pg))
            return;
        struct db_query *q = dc->cur;
        PGresult *res = PQgetResult(dc->pg);
        if (res != NULL)
            dc->progress_ns = now_ns();

        switch (q->phase) {
        case PH_PREPARE:
            if (res == NULL) {
                q->phase = PH_QUERY;
            } else if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
                /* The statement did not prepare: its Execute is aborted;
                 * deliver this error, which says why. */
                prep_forget(dc, q->prep);
                if (q->result == NULL)
                    q->result = res;
                else
                    PQclear(res);
            } else {
                /* Skipped with its group: not prepared. */
                if (PQresultStatus(res) == PGRES_PIPELINE_ABORTED)
                    prep_forget(dc, q->prep);
                PQclear(res);
            }
            break;
        case PH_QUERY:
            if (res == NULL) {
                if (q->grouped) {
                    q->phase = PH_HELD;     /* delivered at its group's Sync */
                    dc->cur = q->next;
                } else {
                    q->phase = PH_SYNC;
                }
            } else if (q->result == NULL) {
                q->result = res;
            } else {
                /* An aborted result after the prepare error, or a second
                 * result: keep the first. */
                PQclear(res);
            }
            break;
        case PH_SYNC:
            if (res == NULL) {
                if (q->sync_null_pending) {
                    q->sync_null_pending = 0;   /* the NULL after an error at Sync */
                    break;
                }
                return;     /* not expected: wait for more input */
            }
            if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
                /* An error at the Sync: the transaction failed at commit
                 * (a deferred constraint or trigger, a full NOTIFY queue,
                 * a cancel or a termination). libpq gives a NULL after it,
                 * then the Sync's result, which may already be here. */
                if (q->sync_error == NULL)
                    q->sync_error = res;
                else
                    PQclear(res);
                q->sync_null_pending = 1;
                break;
            }
            PQclear(res);
            if (q->kind == Q_MARKER)
                group_done(dc, q);
            else
                solo_done(dc, q);
            if (dc->state == DBC_READY && dc->gen == gen)
                maybe_cancel(dc);
            break;
        case PH_HELD:
        case PH_QUEUED:
            assert(0);
            break;
        }
    }
}

static void conn_notifies(struct db_conn *dc)
{
    PGnotify *n;
    uint64_t gen = dc->gen;
    while (dc->state == DBC_READY && dc->gen == gen && (n = PQnotifies(dc->pg)) != NULL) {
        if (dc->pool->notify_cb != NULL)
            dc->pool->notify_cb(dc->pool->notify_arg, n->relname, n->extra);
        PQfreemem(n);
    }
}

static void connect_step(struct db_conn *dc);

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct db_conn *dc = h->data;
    db_pool_t *pool = dc->pool;

    if (dc->state == DBC_CONNECTING) {
        connect_step(dc);
        return;
    }
    if (dc->state != DBC_READY)
        return;
    if (status < 0) {
        conn_broken(dc, uv_strerror(status));
        return;
    }
    uint64_t gen = dc->gen;
    if (events & UV_READABLE) {
        dc->progress_ns = now_ns();
        if (!PQconsumeInput(dc->pg)) {
            conn_broken(dc, PQerrorMessage(dc->pg));
            return;
        }
        conn_read_results(dc);
        if (dc->state != DBC_READY || dc->gen != gen)
            return;
        conn_notifies(dc);
        if (dc->state != DBC_READY || dc->gen != gen)
            return;
    }
    if (conn_flush(dc) == 0)
        pump(pool);
}

/* ---------------------------------------------------------------- connecting */

/*
 * A connection attempt walks the host entries of the conninfo in order
 * (libpq's order), each host name resolved off the loop with
 * uv_getaddrinfo and each of its addresses tried in turn with hostaddr set
 * (so libpq never resolves on the loop thread, and host still serves TLS
 * verification and the password file). libpq gets one host at a time with
 * the user's target_session_attrs, and so checks it for that host; for
 * prefer-standby a first pass asks for a standby, a second for any. Each
 * address has its own connect timeout, our own: libpq does not apply
 * connect_timeout under PQconnectPoll. When every address failed the
 * connection backs off and starts over.
 */

static void addrs_clear(struct db_conn *dc)
{
    for (int i = 0; i < dc->naddrs; i++)
        free(dc->addrs[i]);
    dc->naddrs = dc->addr_i = 0;
}

static void set_err(struct db_conn *dc, const char *fmt, const char *a, const char *b)
{
    snprintf(dc->lasterr, sizeof(dc->lasterr), fmt, a ? a : "", b ? b : "");
    dc->lasterr[strcspn(dc->lasterr, "\n")] = '\0';
}

static const char *host_name(const db_pool_t *pool, int i)
{
    return pool->hosts[i] ? pool->hosts[i] : "";
}

static const char *host_port(const db_pool_t *pool, int i)
{
    return pool->ports[i];
}

static void try_host(struct db_conn *dc);
static void try_addr(struct db_conn *dc);

static void on_timeout(uv_timer_t *t)
{
    struct db_conn *dc = t->data;
    db_pool_t *pool = dc->pool;
    char ms[16];
    snprintf(ms, sizeof(ms), "%d", pool->connect_timeout_ms);
    if (dc->state == DBC_RESOLVING) {
        set_err(dc, "timeout after %s ms resolving %s", ms, host_name(pool, dc->host_i));
        dc->gen++;               /* its lookup's answer is stale now */
        dc->host_i++;
        try_host(dc);
    } else if (dc->state == DBC_CONNECTING) {
        set_err(dc, "timeout after %s ms connecting to %s", ms,
                dc->addrs[dc->addr_i] ? dc->addrs[dc->addr_i] : host_name(pool, dc->host_i));
        poll_stop(dc);
        PQfinish(dc->pg);
        dc->pg = NULL;
        dc->addr_i++;
        try_addr(dc);
    }
}

struct resolve_req {
    uv_getaddrinfo_t req;
    struct db_conn *dc;
    uint64_t gen;
};

static void on_resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *res)
{
    struct resolve_req *rr = (struct resolve_req *)r;
    struct db_conn *dc = rr->dc;
    db_pool_t *pool = dc->pool;
    int stale = rr->gen != dc->gen || dc->state != DBC_RESOLVING;
    free(rr);
    pool->pending_reqs--;
    if (stale) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        pool_maybe_free(pool);
        return;
    }
    uv_timer_stop(&dc->timer);
    addrs_clear(dc);
    if (status != 0) {
        set_err(dc, "cannot resolve %s: %s", host_name(pool, dc->host_i), uv_strerror(status));
    } else {
        for (struct addrinfo *a = res; a != NULL && dc->naddrs < MAX_ADDRS; a = a->ai_next) {
            char ip[64];
            if (a->ai_family == AF_INET)
                uv_ip4_name((struct sockaddr_in *)a->ai_addr, ip, sizeof(ip));
            else if (a->ai_family == AF_INET6)
                uv_ip6_name((struct sockaddr_in6 *)a->ai_addr, ip, sizeof(ip));
            else
                continue;
            int dup = 0;
            for (int i = 0; i < dc->naddrs; i++)
                dup |= strcmp(dc->addrs[i], ip) == 0;
            if (!dup && (dc->addrs[dc->naddrs++] = strdup(ip)) == NULL)
                abort();
        }
        if (dc->naddrs == 0)
            set_err(dc, "no address for %s%s", host_name(pool, dc->host_i), NULL);
    }
    if (res != NULL)
        uv_freeaddrinfo(res);
    if (dc->naddrs == 0) {
        dc->host_i++;
        try_host(dc);
        return;
    }
    try_addr(dc);
}

/* Starts trying host entry dc->host_i (or the next pass, or gives up). */
static void try_host(struct db_conn *dc)
{
    db_pool_t *pool = dc->pool;
    addrs_clear(dc);
    if (dc->host_i >= pool->nhosts) {
        if (strcmp(pool->tsa, "prefer-standby") == 0 && dc->pass == 0) {
            dc->pass = 1;
            dc->host_i = 0;
        } else {
            conn_broken(dc, dc->lasterr);
            return;
        }
    }
    int i = dc->host_i;
    const char *h = host_name(pool, i);
    unsigned char buf[sizeof(struct in6_addr)];
    if (pool->hostaddrs[i] != NULL || h[0] == '\0' || h[0] == '/' || h[0] == '@' ||
        inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1) {
        /* Given an address, a Unix socket, or nothing (libpq's default,
         * a socket): nothing to resolve. */
        dc->addrs[0] = NULL;
        if (pool->hostaddrs[i] != NULL && (dc->addrs[0] = strdup(pool->hostaddrs[i])) == NULL)
            abort();
        dc->naddrs = 1;
        try_addr(dc);
        return;
    }
    struct resolve_req *rr = calloc(1, sizeof(*rr));
    if (rr == NULL)
        abort();
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rr->dc = dc;
    rr->gen = ++dc->gen;
    dc->state = DBC_RESOLVING;
    int r = uv_getaddrinfo(pool->loop, &rr->req, on_resolved, h, NULL, &hints);
    if (r != 0) {
        free(rr);
        set_err(dc, "cannot resolve %s: %s", h, uv_strerror(r));
        dc->host_i++;
        try_host(dc);
        return;
    }
    pool->pending_reqs++;
    uv_timer_start(&dc->timer, on_timeout, (uint64_t)pool->connect_timeout_ms, 0);
}

/* Server notices (and the FATAL sent before a forced disconnect) go to the
 * log as one line, not raw to stderr. */
static void on_notice(void *arg, const char *message)
{
    struct db_conn *dc = arg;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", message);
    msg[strcspn(msg, "\n")] = '\0';
    log_info("db_notice", "conn=%d message=\"%s\"", dc->index, msg);
}

/* Starts a libpq connection to address dc->addr_i of host dc->host_i (or
 * goes on to the next host). */
static void try_addr(struct db_conn *dc)
{
    db_pool_t *pool = dc->pool;
    while (dc->addr_i < dc->naddrs) {
        const char *kw[64], *val[64];
        int n = 0, i = dc->host_i;
        for (int k = 0; k < pool->nkw && n < 48; k++) {
            kw[n] = pool->kw[k];
            val[n++] = pool->val[k];
        }
        if (pool->hosts[i] != NULL) {
            kw[n] = "host";
            val[n++] = pool->hosts[i];
        }
        if (dc->addrs[dc->addr_i] != NULL) {
            kw[n] = "hostaddr";
            val[n++] = dc->addrs[dc->addr_i];
        }
        if (host_port(pool, i) != NULL) {
            kw[n] = "port";
            val[n++] = host_port(pool, i);
        }
        if (pool->tsa[0]) {
            kw[n] = "target_session_attrs";
            val[n++] = strcmp(pool->tsa, "prefer-standby") != 0 ? pool->tsa
                       : dc->pass == 0 ? "standby" : "any";
        }
        if (pool->set_keepalives) {
            kw[n] = "keepalives"; val[n++] = "1";
            kw[n] = "keepalives_idle"; val[n++] = "15";
            kw[n] = "keepalives_interval"; val[n++] = "5";
            kw[n] = "keepalives_count"; val[n++] = "3";
        }
        if (pool->set_user_timeout) {
            kw[n] = "tcp_user_timeout"; val[n++] = "30000";
        }
        if (pool->set_appname) {
            kw[n] = "fallback_application_name"; val[n++] = "sentrad";
        }
        if (pool->options != NULL) {
            kw[n] = "options"; val[n++] = pool->options;
        }
        kw[n] = NULL;
        val[n] = NULL;

        dc->gen++;
        dc->pg = PQconnectStartParams(kw, val, 0);
        if (dc->pg == NULL) {
            conn_broken(dc, "out of memory");
            return;
        }
        if (PQstatus(dc->pg) == CONNECTION_BAD) {
            set_err(dc, "%s%s", PQerrorMessage(dc->pg), NULL);
            PQfinish(dc->pg);
            dc->pg = NULL;
            dc->addr_i++;
            continue;
        }
        PQsetnonblocking(dc->pg, 1);
        PQsetNoticeProcessor(dc->pg, on_notice, dc);
        dc->state = DBC_CONNECTING;
        uv_timer_start(&dc->timer, on_timeout, (uint64_t)pool->connect_timeout_ms, 0);
        connect_step(dc);
        return;
    }
    dc->host_i++;
    try_host(dc);
}

static void listen_done(struct db_conn *dc, struct db_query *q)
{
    db_pool_t *pool = dc->pool;
    if (q->result == NULL || PQresultStatus(q->result) != PGRES_COMMAND_OK) {
        conn_broken(dc, q->result ? PQresultErrorField(q->result, PG_DIAG_MESSAGE_PRIMARY)
                                  : "LISTEN failed");
        return;
    }
    if (q->ilast) {
        /* Listening again: what committed while nobody listened sent no
         * notification we heard (db.h). */
        pool->notify_lost = 1;
        defer_kick(pool);
    }
}

static void conn_ready(struct db_conn *dc)
{
    db_pool_t *pool = dc->pool;
    uv_timer_stop(&dc->timer);
    if (!PQenterPipelineMode(dc->pg)) {
        conn_broken(dc, "cannot enter pipeline mode");
        return;
    }
    addrs_clear(dc);
    dc->state = DBC_READY;
    dc->backoff_ms = 0;
    dc->progress_ns = now_ns();
    /* The backend's pid and whether this connection LISTENs: what an
     * operator (and a test) needs to find it in pg_stat_activity. */
    log_info("db_connected", "conn=%d pid=%d listen=%d host=%s port=%s ready=%d", dc->index,
             PQbackendPID(dc->pg), dc->index == 0 && pool->nchannels > 0,
             PQhost(dc->pg) ? PQhost(dc->pg) : "", PQport(dc->pg) ? PQport(dc->pg) : "",
             db_pool_ready(pool));

    if (dc->index == 0 && pool->nchannels > 0) {
        dc->listening = 1;
        for (int i = 0; i < pool->nchannels; i++) {
            char sql[128];
            snprintf(sql, sizeof(sql), "LISTEN \"%s\"", pool->channels[i]);
            if (send_internal(dc, sql, listen_done, i == pool->nchannels - 1) != 0) {
                conn_broken(dc, PQerrorMessage(dc->pg));
                return;
            }
        }
    }
    if (conn_flush(dc) == 0)
        pump(pool);
}

/* Advances the connection attempt after an event on its socket. */
static void connect_step(struct db_conn *dc)
{
    switch (PQconnectPoll(dc->pg)) {
    case PGRES_POLLING_READING:
        if (poll_want(dc, UV_READABLE, 1) != 0)
            conn_broken(dc, "cannot watch the socket");
        break;
    case PGRES_POLLING_WRITING:
        if (poll_want(dc, UV_WRITABLE, 1) != 0)
            conn_broken(dc, "cannot watch the socket");
        break;
    case PGRES_POLLING_OK:
        conn_ready(dc);
        break;
    default:
        set_err(dc, "%s%s", PQerrorMessage(dc->pg), NULL);
        uv_timer_stop(&dc->timer);
        poll_stop(dc);
        PQfinish(dc->pg);
        dc->pg = NULL;
        dc->addr_i++;
        try_addr(dc);
        break;
    }
}

static void on_retry(uv_timer_t *t);

/* Starts a connection attempt from the first host. */
static void conn_connect(struct db_conn *dc)
{
    dc->host_i = 0;
    dc->pass = 0;
    dc->lasterr[0] = '\0';
    try_host(dc);
}

static void on_retry(uv_timer_t *t)
{
    struct db_conn *dc = t->data;
    if (dc->state == DBC_IDLE && !dc->pool->closing)
        conn_connect(dc);
}

/* Drops the connection, fails its queries and schedules a reconnect. Every
 * callback this causes runs later, from the loop. */
static void conn_broken(struct db_conn *dc, const char *why)
{
    db_pool_t *pool = dc->pool;
    int was_ready = dc->state == DBC_READY;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", why ? why : "");
    msg[strcspn(msg, "\n")] = '\0';

    dc->gen++;
    uv_timer_stop(&dc->timer);
    poll_stop(dc);
    if (dc->pg != NULL) {
        PQfinish(dc->pg);
        dc->pg = NULL;
    }
    addrs_clear(dc);
    prep_clear(dc);
    dc->next_name = 0;

    /* Queries in flight: their outcome is unknown. The call layer answers
     * UNAVAILABLE; nothing was acknowledged. */
    struct db_query *list = dc->head;
    dc->head = dc->tail = dc->cur = NULL;
    dc->inflight = 0;
    dc->slow_inflight = 0;
    dc->group_open = 0;
    dc->cancelling = 0;
    dc->slow_orphans = 0;
    dc->cancel_at = dc->done_count - 1;
    while (list != NULL) {
        struct db_query *q = list;
        list = q->next;
        q->next = NULL;
        q->conn = NULL;
        query_fail(q, DB_UNAVAILABLE);
    }
    if (dc->listening) {
        pool->notify_lost = 1;
        defer_kick(pool);
    }
    dc->listening = 0;

    if (pool->closing) {
        dc->state = DBC_CLOSING;
        return;
    }
    dc->state = DBC_IDLE;
    dc->backoff_ms = dc->backoff_ms ? dc->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (dc->backoff_ms > BACKOFF_MAX_MS)
        dc->backoff_ms = BACKOFF_MAX_MS;
    int delay = dc->backoff_ms / 2 + rand() % (dc->backoff_ms / 2 + 1);
    if (was_ready || dc->backoff_ms >= BACKOFF_MAX_MS)
        log_warn("db_disconnected", "conn=%d retry_ms=%d error=\"%s\"", dc->index, delay, msg);
    uv_timer_start(&dc->timer, on_retry, (uint64_t)delay, 0);
    pump(pool);
}

/* ---------------------------------------------------------------- the watchdog */

/* Whether dc's queries have waited longer than the stall bound without a
 * byte or a result: a dead backend, a silent host, a stopped process. */
static int conn_stalled(const db_pool_t *pool, const struct db_conn *dc, uint64_t now)
{
    return dc->state == DBC_READY && dc->head != NULL &&
           now - dc->progress_ns > (uint64_t)pool->o.stall_timeout_ms * 1000000u;
}

/* Breaks stalled connections. statement_timeout bounds what a healthy
 * backend spends on one statement, so the bound sits above it; keepalives
 * and tcp_user_timeout catch a dead peer over TCP, this catches the rest
 * (a backend that stopped, a host that accepts and never answers, a commit
 * waiting for ever). A connection idle for half the bound (at most 10 s)
 * gets a probe, so that Health learns of a silent host before a client
 * query does: one "SELECT 1" per idle connection every 10 s. */
static void on_watchdog(uv_timer_t *t)
{
    db_pool_t *pool = t->data;
    uint64_t now = now_ns();
    uint64_t probe_ns = (uint64_t)pool->o.stall_timeout_ms * 500000u;
    if (probe_ns > 10000000000ull)
        probe_ns = 10000000000ull;
    for (int i = 0; i < pool->o.size; i++) {
        struct db_conn *dc = &pool->conns[i];
        if (dc->state == DBC_READY && dc->head == NULL && !dc->cancelling &&
            now - dc->progress_ns > probe_ns) {
            if (send_internal(dc, "SELECT 1", NULL, 0) != 0)
                conn_broken(dc, PQerrorMessage(dc->pg));
            else
                conn_flush(dc);
            continue;
        }
        if (conn_stalled(pool, dc, now)) {
            char why[96];
            snprintf(why, sizeof(why), "no answer from the database for %d ms", pool->o.stall_timeout_ms);
            log_warn("db_stalled", "conn=%d inflight=%d stall_ms=%d", dc->index, dc->inflight,
                     pool->o.stall_timeout_ms);
            conn_broken(dc, why);
        }
    }
}

/* ---------------------------------------------------------------- public */

void db_pool_opts_init(db_pool_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->size = 4;
    o->depth = 16;
    o->max_prepared = 128;
    o->max_queued = 10000;
    o->max_queued_bytes = (size_t)64 << 20;
    o->statement_timeout_ms = 60000;
    o->connect_timeout_ms = 10000;
    o->stall_timeout_ms = 75000;
}

/* Splits a comma-separated list (libpq's rule: no escaping) into out[];
 * empty entries become NULL. Returns the count, or -1 when too many. */
static int split_list(const char *s, char **out, int max)
{
    int n = 0;
    if (s == NULL)
        return 0;
    for (;;) {
        size_t len = strcspn(s, ",");
        if (n >= max)
            return -1;
        out[n] = NULL;
        if (len > 0 && (out[n] = strndup(s, len)) == NULL)
            abort();
        n++;
        if (s[len] == '\0')
            return n;
        s += len + 1;
    }
}

/* Reads the conninfo into the pool: the user's settings, the host list,
 * and which of our defaults apply. Returns 0, or -1 (logged). */
static int parse_conninfo(db_pool_t *pool, const char *conninfo)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (opts == NULL) {
        log_error("db_conninfo_invalid", "error=\"%s\"", err ? err : "out of memory");
        PQfreemem(err);
        return -1;
    }
    pool->parsed = opts;
    const char *host = NULL, *hostaddr = NULL, *port = NULL, *options = NULL;
    int n = 0;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        n++;
    pool->kw = calloc((size_t)n + 1, sizeof(char *));
    pool->val = calloc((size_t)n + 1, sizeof(char *));
    if (pool->kw == NULL || pool->val == NULL)
        abort();
    pool->set_keepalives = pool->set_user_timeout = pool->set_appname = 1;
    pool->connect_timeout_ms = pool->o.connect_timeout_ms;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        const char *k = o->keyword;
        if (o->val == NULL)
            continue;
        if (strcmp(k, "host") == 0) {
            host = o->val;
        } else if (strcmp(k, "hostaddr") == 0) {
            hostaddr = o->val;
        } else if (strcmp(k, "port") == 0) {
            port = o->val;
        } else if (strcmp(k, "options") == 0) {
            options = o->val;
        } else if (strcmp(k, "target_session_attrs") == 0) {
            snprintf(pool->tsa, sizeof(pool->tsa), "%s", o->val);
        } else if (strcmp(k, "connect_timeout") == 0) {
            int s = atoi(o->val);
            if (s > 0)
                pool->connect_timeout_ms = s < 2 ? 2000 : s * 1000; /* libpq's minimum: 2 s */
        } else {
            if (strncmp(k, "keepalives", 10) == 0)
                pool->set_keepalives = 0;
            else if (strcmp(k, "tcp_user_timeout") == 0)
                pool->set_user_timeout = 0;
            else if (strcmp(k, "application_name") == 0 || strcmp(k, "fallback_application_name") == 0)
                pool->set_appname = 0;
            pool->kw[pool->nkw] = k;
            pool->val[pool->nkw++] = o->val;
        }
    }
    if (pool->nkw > 40) {
        log_error("db_conninfo_invalid", "error=\"too many settings\"");
        return -1;
    }
    /* No host given: the environment's (PGHOST) or libpq's default, so that
     * a name there is resolved off the loop too. */
    PQconninfoOption *defs = NULL;
    if (host == NULL && hostaddr == NULL && (defs = PQconndefaults()) != NULL)
        for (PQconninfoOption *o = defs; o->keyword != NULL; o++)
            if (strcmp(o->keyword, "host") == 0 && o->val != NULL && o->val[0])
                host = o->val;
    int nh = split_list(host, pool->hosts, MAX_HOSTS);
    int na = split_list(hostaddr, pool->hostaddrs, MAX_HOSTS);
    int np = split_list(port, pool->ports, MAX_HOSTS);
    if (defs != NULL)
        PQconninfoFree(defs);
    if (nh < 0 || na < 0 || np < 0) {
        log_error("db_conninfo_invalid", "error=\"more than %d hosts\"", MAX_HOSTS);
        return -1;
    }
    if (nh > 0 && na > 0 && na != nh) {
        log_error("db_conninfo_invalid", "error=\"%d host names but %d host addresses\"", nh, na);
        return -1;
    }
    pool->nhosts = nh > na ? nh : na;
    if (pool->nhosts == 0)
        pool->nhosts = 1;           /* libpq's default */
    if (np > 1 && np != pool->nhosts) {
        log_error("db_conninfo_invalid", "error=\"%d hosts but %d ports\"", pool->nhosts, np);
        return -1;
    }
    for (int i = 1; np == 1 && i < pool->nhosts; i++)
        if (pool->ports[0] != NULL && (pool->ports[i] = strdup(pool->ports[0])) == NULL)
            abort();
    /* Ours first, so that the user's own -c settings win. */
    char mine[64] = "";
    if (pool->o.statement_timeout_ms > 0)
        snprintf(mine, sizeof(mine), "-c statement_timeout=%d", pool->o.statement_timeout_ms);
    if (mine[0] || options != NULL) {
        size_t len = strlen(mine) + (options ? strlen(options) : 0) + 2;
        if ((pool->options = malloc(len)) == NULL)
            abort();
        snprintf(pool->options, len, "%s%s%s", mine, mine[0] && options ? " " : "",
                 options ? options : "");
    }
    return 0;
}

static void pool_free(db_pool_t *pool)
{
    for (int i = 0; i < pool->o.size; i++)
        free(pool->conns[i].ptab);
    for (int i = 0; i < MAX_HOSTS; i++) {
        free(pool->hosts[i]);
        free(pool->hostaddrs[i]);
        free(pool->ports[i]);
    }
    for (int i = 0; i < pool->nchannels; i++)
        free(pool->channels[i]);
    free(pool->channels);
    free(pool->conns);
    free(pool->kw);
    free(pool->val);
    free(pool->options);
    if (pool->parsed != NULL)
        PQconninfoFree(pool->parsed);
    free(pool);
}

static void pool_maybe_free(db_pool_t *pool)
{
    if (pool->closing && pool->open_handles == 0 && pool->pending_reqs == 0)
        pool_free(pool);
}

static void handle_closed(uv_handle_t *h)
{
    db_pool_t *pool = h->data;
    pool->open_handles--;
    pool_maybe_free(pool);
}

db_pool_t *db_pool_new_opts(uv_loop_t *loop, const char *conninfo, const db_pool_opts_t *opts)
{
    db_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->loop = loop;
    pool->o = *opts;
    if (pool->o.size < 1)
        pool->o.size = 1;
    if (pool->o.depth < 1)
        pool->o.depth = 1;
    if (pool->o.max_prepared < 1)
        pool->o.max_prepared = 1;
    if (pool->o.connect_timeout_ms < 1)
        pool->o.connect_timeout_ms = 1;
    if (pool->o.stall_timeout_ms < 1)
        pool->o.stall_timeout_ms = 1;
    pool->ptab_size = 16;
    while (pool->ptab_size < 2 * pool->o.max_prepared)
        pool->ptab_size *= 2;
    pool->conns = calloc((size_t)pool->o.size, sizeof(struct db_conn));
    if (pool->conns == NULL || parse_conninfo(pool, conninfo) != 0) {
        pool->closing = 1;
        pool_free(pool);
        return NULL;
    }
    uv_timer_init(loop, &pool->defer);
    pool->defer.data = pool;
    uv_prepare_init(loop, &pool->sync);
    pool->sync.data = pool;
    uv_timer_init(loop, &pool->watchdog);
    pool->watchdog.data = pool;
    pool->open_handles = 3;
    uint64_t tick = (uint64_t)pool->o.stall_timeout_ms / 4;
    tick = tick < 50 ? 50 : tick > 1000 ? 1000 : tick;
    uv_timer_start(&pool->watchdog, on_watchdog, tick, tick);
    uv_unref((uv_handle_t *)&pool->watchdog);
    for (int i = 0; i < pool->o.size; i++) {
        struct db_conn *dc = &pool->conns[i];
        dc->pool = pool;
        dc->index = i;
        dc->cancel_at = UINT64_MAX;     /* no cancel request yet */
        dc->ptab = calloc((size_t)pool->ptab_size, sizeof(struct prep *));
        if (dc->ptab == NULL)
            abort();
        uv_timer_init(loop, &dc->timer);
        dc->timer.data = dc;
        pool->open_handles++;
        uv_timer_start(&dc->timer, on_retry, 0, 0);
    }
    return pool;
}

db_pool_t *db_pool_new(uv_loop_t *loop, const char *conninfo, int size, int depth)
{
    db_pool_opts_t o;
    db_pool_opts_init(&o);
    o.size = size;
    o.depth = depth;
    return db_pool_new_opts(loop, conninfo, &o);
}

void db_pool_listen(db_pool_t *pool, const char *const *channels, int n,
                    db_notify_cb cb, void *arg)
{
    pool->channels = calloc((size_t)n, sizeof(char *));
    if (pool->channels == NULL)
        abort();
    for (int i = 0; i < n; i++)
        if ((pool->channels[i] = strdup(channels[i])) == NULL)
            abort();
    pool->nchannels = n;
    pool->notify_cb = cb;
    pool->notify_arg = arg;
}

int db_pool_ready(const db_pool_t *pool)
{
    int connecting;
    return pool_live(pool, &connecting);
}

int db_pool_healthy(const db_pool_t *pool)
{
    uint64_t now = now_ns();
    int n = 0;
    for (int i = 0; i < pool->o.size; i++)
        n += pool->conns[i].state == DBC_READY && !conn_stalled(pool, &pool->conns[i], now);
    return n;
}

db_query_t *db_query(db_pool_t *pool, db_stmt_t *stmt, int nparams,
                     const char *const *values, db_cb cb, void *arg)
{
    assert(!pool->closing);
    struct db_query *q = query_new(pool, Q_USER, nparams, values);
    q->stmt = stmt;
    q->quick = stmt->quick;
    q->cb = cb;
    q->arg = arg;
    q->refs = 2;                 /* the pool's, and the callback's */
    if (pool->nqueued >= pool->o.max_queued ||
        pool->queued_bytes + q->bytes > pool->o.max_queued_bytes) {
        uint64_t now = now_ns();
        if (now - pool->full_logged_ns > 1000000000ull) {
            pool->full_logged_ns = now;
            log_warn("db_queue_full", "queued=%d bytes=%zu", pool->nqueued, pool->queued_bytes);
        }
        q->phase = PH_QUEUED;
        query_fail(q, DB_EXHAUSTED);
        return q;
    }
    queue_push(pool, q, 0);
    pump(pool);
    return q;
}

void db_query_cancel(db_query_t *q)
{
    if (q->cancelled || q->kind != Q_USER)
        return;
    q->cancelled = 1;
    q->stmt = NULL;              /* its owner may free it after the callback */
    db_pool_t *pool = q->pool;
    if (q->answered) {
        /* Its callback is scheduled already (not yet run): say cancelled. */
        q->status = DB_CANCELLED;
        return;
    }
    if (q->phase == PH_QUEUED) {
        if (queue_unlink(pool, q))
            query_fail(q, DB_CANCELLED);
        return;
    }
    /* Sent: it stays in its pipeline and its result is dropped. */
    defer_answer(q, DB_CANCELLED);
    if (q->conn != NULL) {
        q->conn->slow_orphans += query_slow(q);
        maybe_cancel(q->conn);
    }
}

void db_pool_close(db_pool_t *pool)
{
    pool->closing = 1;
    for (int i = 0; i < pool->o.size; i++) {
        struct db_conn *dc = &pool->conns[i];
        conn_broken(dc, "closing");
        dc->timer.data = pool;
        uv_close((uv_handle_t *)&dc->timer, handle_closed);
    }
    struct db_query *q;
    while ((q = queue_shift(pool)) != NULL)
        query_fail(q, DB_UNAVAILABLE);
    /* Deliver what is deferred now: the loop is winding down. */
    on_defer(&pool->defer);
    pool->closed = 1;
    uv_close((uv_handle_t *)&pool->defer, handle_closed);
    uv_close((uv_handle_t *)&pool->sync, handle_closed);
    uv_close((uv_handle_t *)&pool->watchdog, handle_closed);
}
