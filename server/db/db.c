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
 * back its results.
 *
 * Cancellation: PostgreSQL cancels whatever a connection is running, not a
 * chosen query, and with pipelining that may be another query than the one
 * meant. So a cancel request is sent only for the query at the head of a
 * connection's pipeline, from a worker thread (PQcancel blocks), and a query
 * that fails with 57014 without having been cancelled itself is simply sent
 * again: its statement was rolled back, so a retry is safe.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum dbc_state {
    DBC_IDLE,        /* not connected; a retry timer may be armed */
    DBC_CONNECTING,  /* PQconnectPoll in progress */
    DBC_READY,       /* in pipeline mode, accepting queries */
    DBC_CLOSING      /* the pool is closing */
};

enum q_phase { PH_QUEUED, PH_PREPARE, PH_QUERY, PH_SYNC };

struct db_query {
    db_pool_t *pool;
    struct db_conn *conn;    /* the connection running it; NULL while queued */
    db_stmt_t *stmt;         /* NULL for internal text queries (LISTEN) */
    char *text;              /* internal text query */
    int nparams;
    char **values;           /* copies; NULL entries are SQL NULL */
    db_cb cb;                /* NULL for internal queries */
    void *arg;
    enum q_phase phase;
    int cancelled;           /* db_query_cancel was called */
    int cancel_sent;         /* a cancel request went to the server for it */
    PGresult *result;        /* the result to deliver (ours to clear) */
    int grouped;             /* sent without a Sync of its own (see group_close) */
    int marker;              /* not a query: the Sync closing a group */
    struct db_query *next;   /* in the pool queue, the conn pipeline or the done list */
};

struct db_conn {
    db_pool_t *pool;
    int index;               /* position in pool->conns */
    enum dbc_state state;
    PGconn *pg;
    uv_poll_t *poll;         /* watches poll_fd; NULL when not watching */
    int poll_fd;
    int poll_events;
    uv_timer_t retry;        /* reconnect backoff */
    int backoff_ms;
    struct db_query *head, *tail;  /* pipeline: sent, waiting for results */
    int inflight;
    int slow_inflight;       /* of them, not quick (see pump) */
    int group_open;          /* quick queries sent since the last Sync */
    unsigned char *prepared; /* prepared[id] is 1 once Parse was sent here */
    int prepared_cap;
    int listening;           /* this connection carries the LISTENs */
};

struct db_pool {
    uv_loop_t *loop;
    char *conninfo;
    int size;
    int depth;
    struct db_conn *conns;
    struct db_query *qhead, *qtail;  /* waiting for a connection */
    struct db_query *done;           /* to deliver from the defer timer */
    uv_timer_t defer;
    uv_prepare_t sync;               /* closes open groups before the loop blocks */
    int closing;
    int open_handles;                /* handles still to close before free */
    char **channels;                 /* LISTEN channels */
    int nchannels;
    db_notify_cb notify_cb;
    void *notify_arg;
};

static int next_stmt_id = 1;

static void conn_connect(struct db_conn *dc);
static void conn_broken(struct db_conn *dc, const char *why);
static void on_poll(uv_poll_t *h, int status, int events);
static void pump(db_pool_t *pool);
static void conn_flush(struct db_conn *dc);

/* ---------------------------------------------------------------- queries */

static void query_free(struct db_query *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->values[i]);
    free(q->values);
    free(q->text);
    if (q->result != NULL)
        PQclear(q->result);
    free(q);
}

static void on_defer(uv_timer_t *t)
{
    db_pool_t *pool = t->data;
    /* Deliver in submission order: the list was built by prepending. */
    struct db_query *list = pool->done, *rev = NULL;
    pool->done = NULL;
    while (list != NULL) {
        struct db_query *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev != NULL) {
        struct db_query *q = rev;
        rev = q->next;
        if (q->cb != NULL)
            q->cb(q->arg, q->cancelled ? DB_CANCELLED : DB_UNAVAILABLE, NULL);
        query_free(q);
    }
}

PGresult *db_query_take_result(db_query_t *q)
{
    PGresult *res = q->result;
    q->result = NULL;
    return res;
}

/* Finishes q later, from the loop, with DB_CANCELLED or DB_UNAVAILABLE. */
static void defer_finish(db_pool_t *pool, struct db_query *q)
{
    q->next = pool->done;
    pool->done = q;
    if (!uv_is_active((uv_handle_t *)&pool->defer))
        uv_timer_start(&pool->defer, on_defer, 0, 0);
}

/* Finishes q now with its result. */
static void finish(struct db_query *q)
{
    if (q->cb != NULL) {
        if (q->cancelled)
            q->cb(q->arg, DB_CANCELLED, NULL);
        else
            q->cb(q->arg, DB_OK, q->result);
    } else if (q->result != NULL && PQresultStatus(q->result) == PGRES_FATAL_ERROR) {
        log_warn("db_internal_query_failed", "error=\"%s\"",
                 PQresultErrorField(q->result, PG_DIAG_MESSAGE_PRIMARY));
    }
    query_free(q);
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
}

static struct db_query *query_new(db_pool_t *pool, int nparams,
                                  const char *const *values)
{
    struct db_query *q = calloc(1, sizeof(*q));
    if (q == NULL)
        abort();
    q->pool = pool;
    q->nparams = nparams;
    if (nparams > 0) {
        q->values = calloc((size_t)nparams, sizeof(char *));
        if (q->values == NULL)
            abort();
        for (int i = 0; i < nparams; i++) {
            if (values[i] != NULL && (q->values[i] = strdup(values[i])) == NULL)
                abort();
        }
    }
    return q;
}

/* ---------------------------------------------------------------- cancel */

struct cancel_work {
    uv_work_t req;
    PGcancel *cancel;
};

static void cancel_run(uv_work_t *w)
{
    struct cancel_work *cw = (struct cancel_work *)w;
    char err[256];
    if (!PQcancel(cw->cancel, err, sizeof(err)))
        log_warn("db_cancel_failed", "error=\"%s\"", err);
}

static void cancel_done(uv_work_t *w, int status)
{
    struct cancel_work *cw = (struct cancel_work *)w;
    PQfreeCancel(cw->cancel);
    free(cw);
}

/* Sends a cancel request for the query running at the head of dc. */
static void send_cancel(struct db_conn *dc)
{
    struct db_query *q = dc->head;
    if (q == NULL || q->cancel_sent || dc->pg == NULL)
        return;
    q->cancel_sent = 1;
    struct cancel_work *cw = calloc(1, sizeof(*cw));
    if (cw == NULL)
        return;
    cw->cancel = PQgetCancel(dc->pg);
    if (cw->cancel == NULL) {
        free(cw);
        return;
    }
    uv_queue_work(dc->pool->loop, &cw->req, cancel_run, cancel_done);
}

/* ---------------------------------------------------------------- polling */

static void pool_release(db_pool_t *pool);

static void poll_closed(uv_handle_t *h)
{
    db_pool_t *pool = h->data;
    free(h);
    pool_release(pool);
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

/* Watches the connection's socket for events; re-creates the poll handle
 * if libpq moved to another socket (it can, while connecting). Returns 0 or
 * -1 when the handle could not be made (the connection is then broken). */
static int poll_want(struct db_conn *dc, int events)
{
    int fd = PQsocket(dc->pg);
    if (fd < 0)
        return -1;
    if (dc->poll != NULL && dc->poll_fd != fd)
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
        uv_poll_start(dc->poll, events, on_poll);
    }
    return 0;
}

/* ---------------------------------------------------------------- sending */

static void prepared_mark(struct db_conn *dc, int id)
{
    if (id >= dc->prepared_cap) {
        int cap = dc->prepared_cap ? dc->prepared_cap : 64;
        while (cap <= id)
            cap *= 2;
        unsigned char *p = realloc(dc->prepared, (size_t)cap);
        if (p == NULL)
            abort();
        memset(p + dc->prepared_cap, 0, (size_t)(cap - dc->prepared_cap));
        dc->prepared = p;
        dc->prepared_cap = cap;
    }
    dc->prepared[id] = 1;
}

static int query_quick(const struct db_query *q)
{
    return q->stmt != NULL && q->stmt->quick;
}

static void pipeline_append(struct db_conn *dc, struct db_query *q)
{
    q->conn = dc;
    q->next = NULL;
    if (dc->tail != NULL)
        dc->tail->next = q;
    else
        dc->head = q;
    dc->tail = q;
}

/*
 * Groups. Each query is its own implicit transaction: a Sync follows it,
 * and libpq 15 sends the buffer at every Sync (PQpipelineSync flushes), so
 * each query cost a send(), and PostgreSQL flushed each result apart.
 * Quick statements (key lookups, see pick_conn) are sent without a Sync of
 * their own instead, and one Sync closes all those sent to a connection in
 * the same turn of the event loop (on_sync, a prepare handle: just before
 * the loop would block). They run in one implicit transaction, which for
 * lookups changes nothing (each statement still takes its own snapshot),
 * except that an error in one aborts those after it in the group: those
 * are sent again (conn_read_results). A Sync marker in the pipeline stands
 * for the group's Sync result.
 */
static int group_close(struct db_conn *dc)
{
    struct db_query *m = calloc(1, sizeof(*m));
    if (m == NULL)
        abort();
    if (!PQpipelineSync(dc->pg)) {
        free(m);
        return -1;
    }
    m->pool = dc->pool;
    m->marker = 1;
    m->phase = PH_SYNC;
    pipeline_append(dc, m);
    dc->group_open = 0;
    return 0;
}

static void on_sync(uv_prepare_t *h)
{
    db_pool_t *pool = h->data;
    uv_prepare_stop(h);
    for (int i = 0; i < pool->size; i++) {
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
 * connection is then treated as broken by the caller). */
static int send_query(struct db_conn *dc, struct db_query *q)
{
    PGconn *pg = dc->pg;
    const char *const *vals = (const char *const *)q->values;
    int group = query_quick(q);

    if (!group && dc->group_open && group_close(dc) != 0)
        return -1;

    if (q->stmt == NULL) {
        if (!PQsendQueryParams(pg, q->text, q->nparams, NULL, vals, NULL, NULL, 0))
            return -1;
        q->phase = PH_QUERY;
    } else {
        char name[16];
        if (__atomic_load_n(&q->stmt->id, __ATOMIC_ACQUIRE) == 0) {
            /* Ids are process-wide (a statement keeps its id on every
             * connection of every loop), so take one atomically. */
            int id = __atomic_fetch_add(&next_stmt_id, 1, __ATOMIC_RELAXED);
            int zero = 0;
            __atomic_compare_exchange_n(&q->stmt->id, &zero, id, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE);
        }
        snprintf(name, sizeof(name), "s%d", q->stmt->id);
        int need_prepare = q->stmt->id >= dc->prepared_cap || !dc->prepared[q->stmt->id];
        if (need_prepare) {
            if (!PQsendPrepare(pg, name, q->stmt->sql, q->nparams, NULL))
                return -1;
            prepared_mark(dc, q->stmt->id);
        }
        if (!PQsendQueryPrepared(pg, name, q->nparams, vals, NULL, NULL, 0))
            return -1;
        q->phase = need_prepare ? PH_PREPARE : PH_QUERY;
    }
    if (group) {
        /* A Flush, so that PostgreSQL sends this result as soon as it has
         * it rather than at the group's Sync. */
        if (!PQsendFlushRequest(pg))
            return -1;
        q->grouped = 1;
        dc->group_open = 1;
        if (!uv_is_active((uv_handle_t *)&dc->pool->sync))
            uv_prepare_start(&dc->pool->sync, on_sync);
    } else if (!PQpipelineSync(pg)) {
        return -1;
    }

    pipeline_append(dc, q);
    dc->inflight++;
    dc->slow_inflight += !query_quick(q);
    return 0;
}

/* Flushes libpq's output and sets the poll events accordingly. */
static void conn_flush(struct db_conn *dc)
{
    int r = PQflush(dc->pg);
    if (r < 0) {
        conn_broken(dc, PQerrorMessage(dc->pg));
        return;
    }
    if (poll_want(dc, UV_READABLE | (r == 1 ? UV_WRITABLE : 0)) != 0)
        conn_broken(dc, "cannot watch the socket");
}

static int pool_live(const db_pool_t *pool, int *connecting)
{
    int ready = 0;
    *connecting = 0;
    for (int i = 0; i < pool->size; i++) {
        if (pool->conns[i].state == DBC_READY)
            ready++;
        else if (pool->conns[i].state == DBC_CONNECTING)
            (*connecting)++;
    }
    return ready;
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

    for (int i = 0; i < pool->size; i++) {
        struct db_conn *dc = &pool->conns[i];
        if (dc->state != DBC_READY || dc->inflight >= pool->depth)
            continue;
        if (least == NULL || dc->inflight < least->inflight)
            least = dc;
        if (dc->slow_inflight == 0 && (lane == NULL || dc->inflight > lane->inflight))
            lane = dc;
    }
    return query_quick(q) && lane != NULL ? lane : least;
}

/* Moves queued queries into ready connections (pick_conn). */
static void pump(db_pool_t *pool)
{
    while (pool->qhead != NULL) {
        struct db_conn *best = pick_conn(pool, pool->qhead);
        if (best == NULL)
            break;
        if (best->slow_inflight > 0 || (best->inflight > 0 && !query_quick(pool->qhead))) {
            /* Every ready connection is busy. Queued behind another query a
             * fast one waits for the slow one (pipelines run in order), so
             * rather wait for a connection that is coming up. */
            int connecting;
            pool_live(pool, &connecting);
            if (connecting > 0)
                break;
        }
        struct db_query *q = pool->qhead;
        pool->qhead = q->next;
        if (pool->qhead == NULL)
            pool->qtail = NULL;
        if (send_query(best, q) != 0) {
            queue_push(pool, q, 1);
            conn_broken(best, PQerrorMessage(best->pg));
            continue;
        }
        if (!q->grouped)
            conn_flush(best);       /* a group goes out in on_sync */
    }

    /* Nothing can run these: fail them rather than let them wait for their
     * deadlines. */
    int connecting;
    if (pool->qhead != NULL && pool_live(pool, &connecting) == 0 && connecting == 0) {
        while (pool->qhead != NULL) {
            struct db_query *q = pool->qhead;
            pool->qhead = q->next;
            defer_finish(pool, q);
        }
        pool->qtail = NULL;
    }
}

/* ---------------------------------------------------------------- receiving */

/* q, at the head of dc's pipeline, has all its results: deliver it, or
 * send it again when it failed for another query's sake. */
static void query_done(struct db_conn *dc, struct db_query *q)
{
    dc->head = q->next;
    if (dc->head == NULL)
        dc->tail = NULL;
    dc->inflight--;
    dc->slow_inflight -= !query_quick(q);

    const char *state = q->result ? PQresultErrorField(q->result, PG_DIAG_SQLSTATE) : NULL;
    int aborted = q->result != NULL && PQresultStatus(q->result) == PGRES_PIPELINE_ABORTED;
    int unprepared = state != NULL && strcmp(state, "26000") == 0 && q->stmt != NULL;
    if (!q->cancelled && (aborted || unprepared || (state != NULL && strcmp(state, "57014") == 0))) {
        /* Hit by a cancel meant for another query, or skipped because an
         * earlier query of its group failed (its Parse too, perhaps, which
         * a later query then missed): run it again. */
        if (unprepared && q->stmt->id < dc->prepared_cap)
            dc->prepared[q->stmt->id] = 0;
        PQclear(q->result);
        q->result = NULL;
        q->cancel_sent = 0;
        q->grouped = 0;
        queue_push(dc->pool, q, 1);
    } else {
        finish(q);
    }
}

/* Takes the results libpq has ready. */
static void conn_read_results(struct db_conn *dc)
{
    while (dc->head != NULL && dc->state == DBC_READY) {
        if (PQisBusy(dc->pg))
            return;
        struct db_query *q = dc->head;
        PGresult *res = PQgetResult(dc->pg);

        switch (q->phase) {
        case PH_PREPARE:
            if (res == NULL) {
                q->phase = PH_QUERY;
            } else if (PQresultStatus(res) == PGRES_FATAL_ERROR && q->result == NULL) {
                /* The statement did not prepare: its query will be aborted;
                 * deliver this error, which says why. Forget the Parse. */
                q->result = res;
                dc->prepared[q->stmt->id] = 0;
            } else {
                /* Skipped with its group (see query_done): not prepared. */
                if (PQresultStatus(res) == PGRES_PIPELINE_ABORTED)
                    dc->prepared[q->stmt->id] = 0;
                PQclear(res);
            }
            break;
        case PH_QUERY:
            if (res == NULL) {
                if (q->grouped) {
                    query_done(dc, q);      /* its group's Sync comes later */
                    if (dc->head != NULL && dc->head->cancelled)
                        send_cancel(dc);
                } else {
                    q->phase = PH_SYNC;
                }
            } else if (q->result == NULL) {
                q->result = res;
            } else {
                /* An aborted-pipeline result after the prepare error, or a
                 * second result: keep the first. */
                PQclear(res);
            }
            break;
        case PH_SYNC:
            if (res == NULL)
                return; /* not expected: wait for more input */
            if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
                PQclear(res);
                break;
            }
            PQclear(res);
            if (q->marker) {
                dc->head = q->next;
                if (dc->head == NULL)
                    dc->tail = NULL;
                query_free(q);
            } else {
                query_done(dc, q);
            }
            if (dc->head != NULL && dc->head->cancelled)
                send_cancel(dc);
            break;
        case PH_QUEUED:
            assert(0);
            break;
        }
    }
}

static void conn_notifies(struct db_conn *dc)
{
    PGnotify *n;
    while ((n = PQnotifies(dc->pg)) != NULL) {
        if (dc->pool->notify_cb != NULL)
            dc->pool->notify_cb(dc->pool->notify_arg, n->relname, n->extra);
        PQfreemem(n);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct db_conn *dc = h->data;
    db_pool_t *pool = dc->pool;

    if (dc->state == DBC_CONNECTING) {
        conn_connect(dc);
        return;
    }
    if (dc->state != DBC_READY)
        return;
    if (status < 0) {
        conn_broken(dc, uv_strerror(status));
        return;
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(dc->pg)) {
            conn_broken(dc, PQerrorMessage(dc->pg));
            return;
        }
        conn_read_results(dc);
        if (dc->state != DBC_READY)
            return;
        conn_notifies(dc);
    }
    conn_flush(dc);
    pump(pool);
}

/* ---------------------------------------------------------------- connecting */

static void on_retry(uv_timer_t *t)
{
    struct db_conn *dc = t->data;
    if (dc->state == DBC_IDLE && !dc->pool->closing)
        conn_connect(dc);
}

static void conn_ready(struct db_conn *dc)
{
    db_pool_t *pool = dc->pool;
    if (!PQenterPipelineMode(dc->pg)) {
        conn_broken(dc, "cannot enter pipeline mode");
        return;
    }
    dc->state = DBC_READY;
    dc->backoff_ms = 0;
    log_info("db_connected", "conn=%d ready=%d", dc->index, db_pool_ready(pool));

    if (dc->index == 0 && pool->nchannels > 0) {
        for (int i = 0; i < pool->nchannels; i++) {
            struct db_query *q = query_new(pool, 0, NULL);
            size_t len = strlen(pool->channels[i]) + 16;
            q->text = malloc(len);
            if (q->text == NULL)
                abort();
            snprintf(q->text, len, "LISTEN \"%s\"", pool->channels[i]);
            if (send_query(dc, q) != 0) {
                query_free(q);
                conn_broken(dc, PQerrorMessage(dc->pg));
                return;
            }
        }
        dc->listening = 1;
    }
    conn_flush(dc);
    pump(pool);
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

/* Starts or advances the connection attempt. */
static void conn_connect(struct db_conn *dc)
{
    if (dc->pg == NULL) {
        dc->pg = PQconnectStart(dc->pool->conninfo);
        if (dc->pg == NULL) {
            conn_broken(dc, "out of memory");
            return;
        }
        if (PQstatus(dc->pg) == CONNECTION_BAD) {
            conn_broken(dc, PQerrorMessage(dc->pg));
            return;
        }
        PQsetnonblocking(dc->pg, 1);
        PQsetNoticeProcessor(dc->pg, on_notice, dc);
        dc->state = DBC_CONNECTING;
    }
    switch (PQconnectPoll(dc->pg)) {
    case PGRES_POLLING_READING:
        if (poll_want(dc, UV_READABLE) != 0)
            conn_broken(dc, "cannot watch the socket");
        break;
    case PGRES_POLLING_WRITING:
        if (poll_want(dc, UV_WRITABLE) != 0)
            conn_broken(dc, "cannot watch the socket");
        break;
    case PGRES_POLLING_OK:
        conn_ready(dc);
        break;
    default:
        conn_broken(dc, PQerrorMessage(dc->pg));
        break;
    }
}

/* Drops the connection, fails its queries and schedules a reconnect. */
static void conn_broken(struct db_conn *dc, const char *why)
{
    db_pool_t *pool = dc->pool;
    int was_ready = dc->state == DBC_READY;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", why ? why : "");
    msg[strcspn(msg, "\n")] = '\0';

    poll_stop(dc);
    if (dc->pg != NULL) {
        PQfinish(dc->pg);
        dc->pg = NULL;
    }
    if (dc->prepared != NULL)
        memset(dc->prepared, 0, (size_t)dc->prepared_cap);

    /* Queries in flight: their outcome is unknown. The call layer answers
     * UNAVAILABLE; nothing was acknowledged, so nothing is lost. */
    while (dc->head != NULL) {
        struct db_query *q = dc->head;
        dc->head = q->next;
        defer_finish(pool, q);
    }
    dc->tail = NULL;
    dc->inflight = 0;
    dc->slow_inflight = 0;
    dc->group_open = 0;
    if (dc->listening && pool->notify_cb != NULL)
        pool->notify_cb(pool->notify_arg, NULL, NULL);
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
    uv_timer_start(&dc->retry, on_retry, (uint64_t)delay, 0);
    pump(pool);
}

/* ---------------------------------------------------------------- public */

db_pool_t *db_pool_new(uv_loop_t *loop, const char *conninfo, int size, int depth)
{
    db_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->loop = loop;
    pool->size = size > 0 ? size : 1;
    pool->depth = depth > 0 ? depth : 1;
    pool->conninfo = strdup(conninfo);
    pool->conns = calloc((size_t)pool->size, sizeof(struct db_conn));
    if (pool->conninfo == NULL || pool->conns == NULL) {
        free(pool->conninfo);
        free(pool->conns);
        free(pool);
        return NULL;
    }
    uv_timer_init(loop, &pool->defer);
    pool->defer.data = pool;
    uv_prepare_init(loop, &pool->sync);
    pool->sync.data = pool;
    pool->open_handles = 2;
    for (int i = 0; i < pool->size; i++) {
        struct db_conn *dc = &pool->conns[i];
        dc->pool = pool;
        dc->index = i;
        uv_timer_init(loop, &dc->retry);
        dc->retry.data = dc;
        pool->open_handles++;
        /* Spread the first attempts so that a restart does not stampede. */
        uv_timer_start(&dc->retry, on_retry, 0, 0);
    }
    return pool;
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

db_query_t *db_query(db_pool_t *pool, db_stmt_t *stmt, int nparams,
                     const char *const *values, db_cb cb, void *arg)
{
    struct db_query *q = query_new(pool, nparams, values);
    q->stmt = stmt;
    q->cb = cb;
    q->arg = arg;
    assert(!pool->closing);
    queue_push(pool, q, 0);
    pump(pool);
    return q;
}

void db_query_cancel(db_query_t *q)
{
    if (q->cancelled)
        return;
    q->cancelled = 1;
    db_pool_t *pool = q->pool;
    if (q->phase == PH_QUEUED) {
        /* Still waiting (or already in the done list): unlink if queued. */
        struct db_query **pp = &pool->qhead, *prev = NULL;
        while (*pp != NULL && *pp != q) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp == q) {
            *pp = q->next;
            if (pool->qtail == q)
                pool->qtail = prev;
            defer_finish(pool, q);
        }
        return;
    }
    if (q->conn != NULL && q->conn->head == q)
        send_cancel(q->conn);
}

static void pool_release(db_pool_t *pool)
{
    if (--pool->open_handles > 0)
        return;
    for (int i = 0; i < pool->size; i++)
        free(pool->conns[i].prepared);
    for (int i = 0; i < pool->nchannels; i++)
        free(pool->channels[i]);
    free(pool->channels);
    free(pool->conns);
    free(pool->conninfo);
    free(pool);
}

static void retry_closed(uv_handle_t *h)
{
    pool_release(((struct db_conn *)h->data)->pool);
}

static void defer_closed(uv_handle_t *h)
{
    pool_release(h->data);
}

void db_pool_close(db_pool_t *pool)
{
    pool->closing = 1;
    for (int i = 0; i < pool->size; i++) {
        struct db_conn *dc = &pool->conns[i];
        conn_broken(dc, "closing");
        uv_close((uv_handle_t *)&dc->retry, retry_closed);
    }
    while (pool->qhead != NULL) {
        struct db_query *q = pool->qhead;
        pool->qhead = q->next;
        q->next = NULL;
        if (q->cb != NULL)
            q->cb(q->arg, DB_UNAVAILABLE, NULL);
        query_free(q);
    }
    pool->qtail = NULL;
    /* Deliver what is deferred now: the loop is winding down. */
    on_defer(&pool->defer);
    uv_close((uv_handle_t *)&pool->defer, defer_closed);
    uv_close((uv_handle_t *)&pool->sync, defer_closed);
}
