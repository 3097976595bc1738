/*
 * replica.c: the read router for a hot standby (see replica.h).
 *
 * Two positions drive it, both WAL positions (LSNs):
 *
 *   the primary's flush position, read with one quick query on the primary
 *   pool: for a LATEST read when it arrives (one query serves every read
 *   that arrived before it was sent), and every SAMPLE_MS for the lag;
 *
 *   the standby's replay position, read with one quick query on the standby
 *   pool every SAMPLE_MS, and every POLL_MS while reads wait for it.
 *
 * A commit acknowledged before the primary's position P was read has its
 * commit record at or below P (it was flushed before the answer went out),
 * so once the standby has replayed P, it shows that commit. The lag is
 * measured the same way: samples of P keep the time their query was sent;
 * the newest sample at or below the standby's replay position says that
 * everything committed before that time is on the standby, and the lag is
 * the time since.
 *
 * The standby pool is recycled (closed and opened again) when its server is
 * found out of recovery for RECYCLE_MS: after a failover the standby became
 * the primary, and a new connection attempt with prefer-standby then finds
 * the new standby once there is one again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "replica.h"

#define SAMPLE_MS 250        /* lag samples: primary and standby positions */
#define POLL_MS 2            /* standby position while reads wait for it */
#define NSAMPLES 64          /* primary positions kept (16 s at SAMPLE_MS) */
#define RECYCLE_MS 5000      /* a standby out of recovery this long: reconnect */

struct waiter {
    replica_route_cb cb;
    void *arg;
    uint64_t target;         /* LATEST: the primary position to reach */
    uint64_t deadline;       /* uv_now() past which the primary serves it */
    struct waiter *next;
};

struct replica {
    uv_loop_t *loop;
    db_pool_t *primary;          /* borrowed: the server's pool */
    db_pool_t *pool;             /* ours: the standby */
    char *conninfo;              /* the standby's, for recycling the pool */
    db_pool_opts_t opts;         /* our pool's settings, the same */
    int max_lag_ms;              /* BOUNDED: the standby serves up to this lag */
    int max_wait_ms;             /* LATEST: how long a read waits for replay */

    struct waiter *fetch_list;   /* covered by the primary query in flight */
    struct waiter *next_list;    /* arrived after it was sent: the next one */
    struct waiter *replay_list;  /* have a target, wait for the standby */
    int fetching;                /* a primary position query is in flight */
    uint64_t fetch_sent;         /* uv_now() when it was sent */
    uint64_t last_sample;        /* uv_now() of the last one sent */

    int polling;                 /* a standby position query is in flight */
    uint64_t last_poll;          /* uv_now() when the last one was sent */
    int standby_ok;              /* the last poll found a standby in recovery */
    uint64_t replay;             /* its replay position then */
    uint64_t not_standby_since;  /* uv_now() when it was found not to be one; 0 */
    unsigned recycles;           /* pool reopenings since it last was a standby */

    struct { uint64_t lsn, t; } samples[NSAMPLES]; /* primary positions, ring */
    int nsamples, next_sample;
    uint64_t covered_t;          /* everything committed before this is on the
                                    standby (uv_now() clock); 0: unknown */

    uv_timer_t tick;
    int closing;
    int refs;                    /* the timer, queries in flight */
    uint64_t to_replica, to_primary;
};

static db_stmt_t primary_pos_stmt = { "SELECT pg_current_wal_flush_lsn()::text", 0, 1 };
static db_stmt_t standby_pos_stmt = {
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text", 0, 1
};

static void schedule(replica_t *r);

/* "16/B374D848" -> 0x16B374D848; 0 when it is not an LSN. */
static uint64_t parse_lsn(const char *s)
{
    unsigned hi, lo;
    if (s == NULL || sscanf(s, "%X/%X", &hi, &lo) != 2)
        return 0;
    return (uint64_t)hi << 32 | lo;
}

static void unref(replica_t *r)
{
    if (--r->refs > 0)
        return;
    free(r->conninfo);
    free(r);
}

static void route(replica_t *r, struct waiter *w, int to_replica)
{
    if (to_replica)
        r->to_replica++;
    else
        r->to_primary++;
    w->cb(w->arg, to_replica ? r->pool : r->primary, to_replica);
    free(w);
}

/* Sends every waiter of *list to the primary (or nowhere when closing). */
static void route_all_primary(replica_t *r, struct waiter **list)
{
    while (*list != NULL) {
        struct waiter *w = *list;
        *list = w->next;
        if (r->closing) {
            w->cb(w->arg, NULL, 0);
            free(w);
        } else {
            route(r, w, 0);
        }
    }
}

/* ---------------------------------------------------------------- positions */

static void update_covered(replica_t *r)
{
    /* The newest sample at or below the standby's replay position. */
    for (int i = 0; i < r->nsamples; i++) {
        int k = (r->next_sample - 1 - i + NSAMPLES) % NSAMPLES;
        if (r->samples[k].lsn <= r->replay) {
            if (r->samples[k].t > r->covered_t)
                r->covered_t = r->samples[k].t;
            return;
        }
    }
}

static void release_replayed(replica_t *r)
{
    uint64_t now = uv_now(r->loop);
    struct waiter **pp = &r->replay_list;
    while (*pp != NULL) {
        struct waiter *w = *pp;
        int ready = r->standby_ok && r->replay >= w->target;
        if (ready || !r->standby_ok || now >= w->deadline || r->closing) {
            *pp = w->next;
            if (r->closing) {
                w->cb(w->arg, NULL, 0);
                free(w);
            } else {
                route(r, w, ready);
            }
        } else {
            pp = &w->next;
        }
    }
}

static void send_fetch(replica_t *r);

static void on_primary_pos(void *arg, int status, PGresult *res)
{
    replica_t *r = arg;
    uint64_t lsn = 0;
    r->fetching = 0;
    if (status == DB_OK && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        lsn = parse_lsn(PQgetvalue(res, 0, 0));
    struct waiter *list = r->fetch_list;
    r->fetch_list = NULL;
    if (lsn == 0 || r->closing) {
        /* The primary could not say: it is likely down, and these reads
         * then fail there as any other would. */
        route_all_primary(r, &list);
    } else {
        r->samples[r->next_sample].lsn = lsn;
        r->samples[r->next_sample].t = r->fetch_sent;
        r->next_sample = (r->next_sample + 1) % NSAMPLES;
        if (r->nsamples < NSAMPLES)
            r->nsamples++;
        while (list != NULL) {
            struct waiter *w = list;
            list = w->next;
            w->target = lsn;
            if (r->standby_ok && r->replay >= lsn) {
                route(r, w, 1);
            } else {
                w->next = r->replay_list;
                r->replay_list = w;
            }
        }
    }
    if (!r->closing && r->next_list != NULL)
        send_fetch(r);
    if (!r->closing)
        schedule(r);
    unref(r);
}

static void send_fetch(replica_t *r)
{
    r->fetch_list = r->next_list;
    r->next_list = NULL;
    r->fetching = 1;
    r->fetch_sent = r->last_sample = uv_now(r->loop);
    r->refs++;
    db_query(r->primary, &primary_pos_stmt, 0, NULL, on_primary_pos, r);
}

static void on_standby_pos(void *arg, int status, PGresult *res)
{
    replica_t *r = arg;
    r->polling = 0;
    int ok = status == DB_OK && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    int in_recovery = ok && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    uint64_t lsn = in_recovery ? parse_lsn(PQgetvalue(res, 0, 1)) : 0;
    int was_ok = r->standby_ok;
    if (lsn != 0) {
        r->standby_ok = 1;
        r->not_standby_since = 0;
        r->recycles = 0;
        if (lsn > r->replay)
            r->replay = lsn;
        update_covered(r);
    } else {
        r->standby_ok = 0;
        r->covered_t = 0;
        r->replay = 0;
        if (ok && r->not_standby_since == 0)
            r->not_standby_since = uv_now(r->loop);
    }
    if (was_ok != r->standby_ok && !r->closing)
        log_info(r->standby_ok ? "db_read_standby_up" : "db_read_standby_unusable",
                 "reason=%s", r->standby_ok ? "in recovery" : ok ? "not in recovery" : "unreachable");
    release_replayed(r);
    if (!r->closing)
        schedule(r);
    unref(r);
}

static void send_poll(replica_t *r)
{
    r->polling = 1;
    r->last_poll = uv_now(r->loop);
    r->refs++;
    db_query(r->pool, &standby_pos_stmt, 0, NULL, on_standby_pos, r);
}

/* ---------------------------------------------------------------- the tick */

static void on_tick(uv_timer_t *t)
{
    replica_t *r = t->data;
    uint64_t now = uv_now(r->loop);
    if (r->closing)
        return;
    if (r->not_standby_since != 0 && now - r->not_standby_since >= RECYCLE_MS && !r->polling) {
        /* Once per stretch at info; a --db-read that names a primary would
         * otherwise log every RECYCLE_MS. */
        if (r->recycles++ == 0)
            log_warn("db_read_reconnect", "reason=\"the server is not in recovery (no standby)\"");
        else
            log_debug("db_read_reconnect", "reason=\"the server is not in recovery (no standby)\"");
        db_pool_close(r->pool);
        r->pool = db_pool_new_opts(r->loop, r->conninfo, &r->opts);
        if (r->pool == NULL)
            abort();
        r->not_standby_since = 0;
    }
    if (!r->fetching && now - r->last_sample >= SAMPLE_MS)
        send_fetch(r);
    if (!r->polling && (r->replay_list != NULL || now - r->last_poll >= SAMPLE_MS))
        send_poll(r);
    release_replayed(r);
    schedule(r);
}

static void schedule(replica_t *r)
{
    uint64_t delay = r->replay_list != NULL ? POLL_MS : SAMPLE_MS;
    if (r->replay_list != NULL) {
        /* Also wake for the earliest deadline. */
        uint64_t now = uv_now(r->loop), first = UINT64_MAX;
        for (struct waiter *w = r->replay_list; w != NULL; w = w->next)
            if (w->deadline < first)
                first = w->deadline;
        if (first <= now)
            delay = 0;
        else if (first - now < delay)
            delay = first - now;
    }
    uv_timer_start(&r->tick, on_tick, delay, 0);
}

/* ---------------------------------------------------------------- public */

replica_t *replica_new(uv_loop_t *loop, db_pool_t *primary, const char *conninfo,
                       const db_pool_opts_t *opts, int max_lag_ms, int max_wait_ms)
{
    replica_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->conninfo = strdup(conninfo)) == NULL) {
        free(r);
        return NULL;
    }
    r->loop = loop;
    r->primary = primary;
    r->opts = *opts;
    r->max_lag_ms = max_lag_ms;
    r->max_wait_ms = max_wait_ms;
    r->pool = db_pool_new_opts(loop, conninfo, opts);
    if (r->pool == NULL) {
        free(r->conninfo);
        free(r);
        return NULL;
    }
    uv_timer_init(loop, &r->tick);
    r->tick.data = r;
    r->refs = 1;
    uv_timer_start(&r->tick, on_tick, 0, 0);
    return r;
}

void replica_route(replica_t *r, int mode, replica_route_cb cb, void *arg)
{
    if (r->closing) {
        cb(arg, NULL, 0);
        return;
    }
    struct waiter *w = calloc(1, sizeof(*w));
    if (w == NULL)
        abort();
    w->cb = cb;
    w->arg = arg;
    if (!r->standby_ok) {
        route(r, w, 0);
        return;
    }
    if (mode == REPLICA_BOUNDED) {
        int64_t lag = replica_lag_ms(r);
        route(r, w, lag >= 0 && lag <= r->max_lag_ms);
        return;
    }
    /* A standby known to lag by more than a read may wait (give or take
     * the sampling's grain) would make every read pay the whole wait:
     * the primary serves them until it has caught up. */
    int64_t lag = replica_lag_ms(r);
    if (lag < 0 || lag > (int64_t)r->max_wait_ms + 2 * SAMPLE_MS) {
        route(r, w, 0);
        return;
    }
    w->deadline = uv_now(r->loop) + (uint64_t)r->max_wait_ms;
    /* The query in flight (if any) was sent before this read arrived, so
     * it cannot vouch for it: wait for the next. */
    w->next = r->next_list;
    r->next_list = w;
    if (!r->fetching)
        send_fetch(r);
    schedule(r);
}

int64_t replica_lag_ms(const replica_t *r)
{
    if (!r->standby_ok || r->covered_t == 0)
        return -1;
    uint64_t now = uv_now(r->loop);
    return now > r->covered_t ? (int64_t)(now - r->covered_t) : 0;
}

void replica_counts(const replica_t *r, uint64_t *to_replica, uint64_t *to_primary)
{
    *to_replica = r->to_replica;
    *to_primary = r->to_primary;
}

static void tick_closed(uv_handle_t *h)
{
    unref(h->data);
}

void replica_close(replica_t *r)
{
    log_info("db_read_routed", "standby=%" PRIu64 " primary=%" PRIu64, r->to_replica, r->to_primary);
    r->closing = 1;
    route_all_primary(r, &r->next_list);
    release_replayed(r);
    /* fetch_list waits for its query, which answers when the primary pool
     * closes (on_primary_pos then routes it nowhere). */
    uv_timer_stop(&r->tick);
    uv_close((uv_handle_t *)&r->tick, tick_closed);
    db_pool_close(r->pool);
    r->pool = NULL;
}
