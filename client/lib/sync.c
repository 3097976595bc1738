/*
 * sync.c: the sync helper (sync.h): PullChanges and PushChanges loops that
 * keep the cursor and the pending mutations in the caller's storage through
 * callbacks, with an outer retry loop and backoff for outages longer than
 * the per-call retries cover.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sentra/sync.h>

#include "internal.h"
#include "status.h"

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Errors worth another round: the server was unreachable or said so. */
static int transient(int rc, const sentra_status_t *st)
{
    return rc == SENTRA_ECONNECT || rc == SENTRA_ECONNLOST ||
           (rc == SENTRA_ESTATUS && st->code == SENTRA_UNAVAILABLE);
}

static unsigned next_delay(unsigned d)
{
    d *= 2;
    return d > 10000 ? 10000 : d;
}

/* Kinds named (kinds->n_kinds > 0): records go to kinds->apply_record;
 * else sentra to store->apply. */
static int named(const sentra_sync_kinds_t *kinds)
{
    return kinds != NULL && kinds->n_kinds > 0;
}

static int callbacks_ok(const sentra_sync_store_t *store, const sentra_sync_kinds_t *kinds)
{
    return store && store->save_cursor && (named(kinds) ? kinds->apply_record != NULL : store->apply != NULL);
}

static int sync_pull(sentra_client_t *c, const char *cursor, const sentra_sync_opts_t *opts,
                     const sentra_sync_kinds_t *kinds, const sentra_sync_store_t *store,
                     sentra_sync_stats_t *stats, sentra_status_t *st)
{
    sentra_sync_stats_t local_stats;
    sentra_status_t local_st;
    if (!stats)
        stats = &local_stats;
    if (!st) {
        sentra_status_init(&local_st);
        st = &local_st;
    }
    memset(stats, 0, sizeof *stats);
    if (!c || !callbacks_ok(store, kinds))
        return sentra__local_status(st, SENTRA_EINVAL, SENTRA_INVALID_ARGUMENT, "missing client or callbacks");
    unsigned max_retries = opts && opts->max_retries ? opts->max_retries : 5;
    unsigned base = opts && opts->backoff_ms ? opts->backoff_ms : 500;

    char *cur = strdup(cursor ? cursor : "");
    Sentra__V1__PullChangesRequest rq = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
    rq.limit = opts && opts->batch ? opts->batch : 500;
    rq.filter = opts ? (Sentra__V1__SentraFilter *)opts->filter : NULL;
    if (named(kinds)) {
        rq.kinds = (Sentra__V1__RecordKind *)kinds->kinds;
        rq.n_kinds = kinds->n_kinds;
    }
    int rc = 0;
    for (;;) {
        rq.cursor = cur;
        Sentra__V1__PullChangesResponse *r = NULL;
        unsigned delay = base, round = 0;
        for (;;) {
            rc = sentra_pull_changes(c, &rq, &r, NULL, st);
            if (rc == 0 || !transient(rc, st) || round++ >= max_retries)
                break;
            stats->retries++;
            sleep_ms(delay);
            delay = next_delay(delay);
        }
        if (rc)
            break;
        /* The server fills `changes` without kinds, `records` with. */
        for (size_t i = 0; i < r->n_changes && !rc && !named(kinds); i++) {
            if (store->apply(store->arg, r->changes[i]) != 0)
                rc = sentra__local_status(st, SENTRA_ESYNC, SENTRA_ABORTED, "stopped by the apply callback");
            else
                stats->changes++;
        }
        for (size_t i = 0; i < r->n_records && !rc && named(kinds); i++) {
            if (kinds->apply_record(store->arg, r->records[i]) != 0)
                rc = sentra__local_status(st, SENTRA_ESYNC, SENTRA_ABORTED, "stopped by the apply callback");
            else
                stats->changes++;
        }
        if (!rc && r->next_cursor && *r->next_cursor) {
            if (store->save_cursor(store->arg, r->next_cursor) != 0) {
                rc = sentra__local_status(st, SENTRA_ESYNC, SENTRA_ABORTED, "stopped by the save_cursor callback");
            } else {
                free(cur);
                cur = strdup(r->next_cursor);
            }
        }
        stats->batches++;
        if (store->progress)
            store->progress(store->arg, stats->changes);
        int more = r->more && r->n_changes + r->n_records > 0;
        sentra__v1__pull_changes_response__free_unpacked(r, NULL);
        if (rc || !more)
            break;
    }
    free(cur);
    if (st == &local_st)
        sentra_status_clear(&local_st);
    return rc;
}

int sentra_sync_pull(sentra_client_t *c, const char *cursor, const sentra_sync_opts_t *opts,
                     const sentra_sync_store_t *store, sentra_sync_stats_t *stats, sentra_status_t *st)
{
    return sync_pull(c, cursor, opts, NULL, store, stats, st);
}

int sentra_sync_pull_kinds(sentra_client_t *c, const char *cursor, const sentra_sync_opts_t *opts,
                           const sentra_sync_kinds_t *kinds, const sentra_sync_store_t *store,
                           sentra_sync_stats_t *stats, sentra_status_t *st)
{
    return sync_pull(c, cursor, opts, kinds, store, stats, st);
}

/* ---------------------------------------------------------------- stream */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct stream_ctx {
    const sentra_sync_store_t *store;
    const sentra_sync_kinds_t *kinds; /* NULL: sentra only */
    sentra_sync_stats_t *stats;
    char *cursor;            /* the last cursor saved (malloc'ed) */
    int failed;              /* a callback said stop */
    long messages;           /* in this round */
};

static int stream_on_message(void *arg, const Sentra__V1__StreamChangesResponse *m)
{
    struct stream_ctx *k = arg;
    k->messages++;
    for (size_t i = 0; i < m->n_changes && !named(k->kinds); i++) {
        if (k->store->apply(k->store->arg, m->changes[i]) != 0) {
            k->failed = 1;
            return 1;
        }
        k->stats->changes++;
    }
    for (size_t i = 0; i < m->n_records && named(k->kinds); i++) {
        if (k->kinds->apply_record(k->store->arg, m->records[i]) != 0) {
            k->failed = 1;
            return 1;
        }
        k->stats->changes++;
    }
    if (m->next_cursor && *m->next_cursor && strcmp(m->next_cursor, k->cursor) != 0) {
        char *cur = strdup(m->next_cursor);
        if (!cur || k->store->save_cursor(k->store->arg, m->next_cursor) != 0) {
            free(cur);
            k->failed = 1;
            return 1;
        }
        free(k->cursor);
        k->cursor = cur;
    }
    k->stats->batches++;
    if (k->store->progress)
        k->store->progress(k->store->arg, k->stats->changes);
    return 0;
}

static int sync_stream(sentra_client_t *c, const char *cursor, const sentra_sync_opts_t *opts,
                       const sentra_sync_kinds_t *kinds, unsigned max_ms,
                       const sentra_sync_store_t *store, sentra_sync_stats_t *stats,
                       sentra_status_t *st)
{
    sentra_sync_stats_t local_stats;
    sentra_status_t local_st;
    if (!stats)
        stats = &local_stats;
    if (!st) {
        sentra_status_init(&local_st);
        st = &local_st;
    }
    memset(stats, 0, sizeof *stats);
    if (!c || !callbacks_ok(store, kinds))
        return sentra__local_status(st, SENTRA_EINVAL, SENTRA_INVALID_ARGUMENT, "missing client or callbacks");
    unsigned max_retries = opts && opts->max_retries ? opts->max_retries : 5;
    unsigned base = opts && opts->backoff_ms ? opts->backoff_ms : 500;
    uint64_t end = max_ms ? now_ms() + max_ms : 0;

    struct stream_ctx k = {store, named(kinds) ? kinds : NULL, stats, strdup(cursor ? cursor : ""), 0, 0};
    if (!k.cursor)
        return sentra__local_status(st, SENTRA_ENOMEM, SENTRA_RESOURCE_EXHAUSTED, "out of memory");
    Sentra__V1__StreamChangesRequest rq = SENTRA__V1__STREAM_CHANGES_REQUEST__INIT;
    rq.limit = opts && opts->batch ? opts->batch : 0;
    rq.filter = opts ? (Sentra__V1__SentraFilter *)opts->filter : NULL;
    if (named(kinds)) {
        rq.kinds = (Sentra__V1__RecordKind *)kinds->kinds;
        rq.n_kinds = kinds->n_kinds;
    }
    unsigned delay = base, rounds = 0;
    int rc;
    for (;;) {
        sentra_call_opts_t co = {0};
        if (end) {
            uint64_t now = now_ms();
            if (now >= end) {
                rc = 0;
                sentra_status_clear(st);
                break;
            }
            co.deadline_ms = (int64_t)(end - now);
        }
        rq.cursor = k.cursor;
        k.messages = 0;
        rc = sentra_stream_changes(c, &rq, stream_on_message, &k, &co, st);
        if (k.failed) {
            rc = sentra__local_status(st, SENTRA_ESYNC, SENTRA_ABORTED, "stopped by a store callback");
            break;
        }
        if (end && now_ms() + 5 >= end &&
            (rc == SENTRA_ETIMEDOUT || (rc == SENTRA_ESTATUS && st->code == SENTRA_DEADLINE_EXCEEDED))) {
            rc = 0;                  /* max_ms has passed: a normal end */
            sentra_status_clear(st);
            break;
        }
        if (rc == 0) {
            /* The server ended the stream (its maximum duration): go on. */
            delay = base;
            rounds = 0;
            continue;
        }
        if (!transient(rc, st))
            break;
        if (k.messages > 0) {
            /* It was flowing: start the backoff afresh. */
            delay = base;
            rounds = 0;
        }
        if (rounds++ >= max_retries)
            break;
        stats->retries++;
        unsigned d = delay;
        if (end && now_ms() + d >= end)
            d = (unsigned)(end > now_ms() ? end - now_ms() : 0);
        sleep_ms(d);
        delay = next_delay(delay);
    }
    free(k.cursor);
    if (st == &local_st)
        sentra_status_clear(&local_st);
    return rc;
}

int sentra_sync_stream(sentra_client_t *c, const char *cursor, const sentra_sync_opts_t *opts,
                       unsigned max_ms, const sentra_sync_store_t *store, sentra_sync_stats_t *stats,
                       sentra_status_t *st)
{
    return sync_stream(c, cursor, opts, NULL, max_ms, store, stats, st);
}

int sentra_sync_stream_kinds(sentra_client_t *c, const char *cursor, const sentra_sync_opts_t *opts,
                             const sentra_sync_kinds_t *kinds, unsigned max_ms,
                             const sentra_sync_store_t *store, sentra_sync_stats_t *stats,
                             sentra_status_t *st)
{
    return sync_stream(c, cursor, opts, kinds, max_ms, store, stats, st);
}

/* The key of a batch: the same mutations from the same client give the
 * same key, so a retried batch is recognised by the server. */
static void batch_key(char *out, size_t len, const char *client_id, Sentra__V1__Mutation **m, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the mutation ids */
    for (size_t i = 0; i < n; i++) {
        for (const char *p = m[i]->mutation_id; p && *p; p++)
            h = (h ^ (uint8_t)*p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    snprintf(out, len, "push-%.64s-%zu-%016llx", client_id, n, (unsigned long long)h);
}

int sentra_sync_push(sentra_client_t *c, const char *client_id, const sentra_sync_opts_t *opts,
                     const sentra_sync_store_t *store, sentra_sync_stats_t *stats, sentra_status_t *st)
{
    sentra_sync_stats_t local_stats;
    sentra_status_t local_st;
    if (!stats)
        stats = &local_stats;
    if (!st) {
        sentra_status_init(&local_st);
        st = &local_st;
    }
    memset(stats, 0, sizeof *stats);
    if (!c || !client_id || !store || !store->next_mutations || !store->on_result)
        return sentra__local_status(st, SENTRA_EINVAL, SENTRA_INVALID_ARGUMENT, "missing client, id or callbacks");
    size_t batch = opts && opts->batch > 0 && opts->batch <= 500 ? (size_t)opts->batch : 500;
    unsigned max_retries = opts && opts->max_retries ? opts->max_retries : 5;
    unsigned base = opts && opts->backoff_ms ? opts->backoff_ms : 500;
    Sentra__V1__Mutation **muts = calloc(batch, sizeof *muts);
    if (!muts)
        return sentra__local_status(st, SENTRA_ENOMEM, SENTRA_RESOURCE_EXHAUSTED, "out of memory");
    int rc = 0;
    long done = 0;
    for (;;) {
        size_t n = store->next_mutations(store->arg, muts, batch);
        if (n == 0)
            break;
        if (n > batch)
            n = batch;
        Sentra__V1__PushChangesRequest rq = SENTRA__V1__PUSH_CHANGES_REQUEST__INIT;
        rq.client_id = (char *)client_id;
        rq.mutations = muts;
        rq.n_mutations = n;
        char key[128];
        batch_key(key, sizeof key, client_id, muts, n);
        sentra_call_opts_t co = {0, key, 0};
        Sentra__V1__PushChangesResponse *r = NULL;
        unsigned delay = base, round = 0;
        for (;;) {
            rc = sentra_push_changes(c, &rq, &r, &co, st);
            if (rc == 0 || !transient(rc, st) || round++ >= max_retries)
                break;
            stats->retries++;
            sleep_ms(delay);
            delay = next_delay(delay);
        }
        if (rc)
            break;
        /* Results come by mutation id; match them to the batch. */
        for (size_t i = 0; i < r->n_results && !rc; i++) {
            const Sentra__V1__MutationResult *res = r->results[i];
            const Sentra__V1__Mutation *m = NULL;
            for (size_t k = 0; k < n; k++)
                if (strcmp(muts[k]->mutation_id, res->mutation_id) == 0)
                    m = muts[k];
            if (!m)
                continue;
            switch (res->outcome) {
            case SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED: stats->applied++; break;
            case SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT: stats->conflicts++; break;
            default: stats->rejected++; break;
            }
            if (store->on_result(store->arg, m, res) != 0)
                rc = sentra__local_status(st, SENTRA_ESYNC, SENTRA_ABORTED, "stopped by the on_result callback");
        }
        int answered = r->n_results > 0;
        sentra__v1__push_changes_response__free_unpacked(r, NULL);
        stats->batches++;
        done += (long)n;
        if (store->progress)
            store->progress(store->arg, done);
        if (rc)
            break;
        if (!answered) {
            /* A server that answers no mutation would make us loop forever
             * on the same pending batch. */
            rc = sentra__local_status(st, SENTRA_EPROTO, SENTRA_INTERNAL, "PushChanges answered no mutation");
            break;
        }
    }
    free(muts);
    if (st == &local_st)
        sentra_status_clear(&local_st);
    return rc;
}
