/*
 * sync.h: libsentra's sync helper for offline-first district apps.
 *
 * Stream: sentra_sync_stream() does the same over one open
 * SyncService/StreamChanges, and goes on with each change as it commits.
 *
 * Pull: sentra_sync_pull() asks SyncService/PullChanges for the changes
 * after the caller's cursor, hands every changed record (or tombstone, with
 * `deleted` set) to the caller's `apply` callback, then hands the new cursor
 * to `save_cursor`, batch after batch until the server has no more. The
 * caller stores both in its own storage, in one transaction per batch if it
 * can: a crash between apply and save_cursor only replays that batch, and
 * applying a record twice must be harmless (records carry their version).
 *
 * Push: sentra_sync_push() takes the caller's pending local changes from
 * `next_mutations`, sends them in batches (PushChanges, at most 500), and
 * reports each mutation's outcome (APPLIED with the new version, CONFLICT
 * with the server's record, REJECTED with the field violations) to
 * `on_result`, which must then take the mutation out of the pending set
 * (whatever the outcome), or next_mutations would hand it out again.
 * Each batch carries an idempotency key derived from the client id and its
 * mutation ids, so a batch whose answer was lost is retried without being
 * applied twice.
 *
 * Both retry with exponential backoff when the server is unreachable or
 * answers UNAVAILABLE, on top of the client's own per-call retries.
 *
 * Ownership: records and results passed to callbacks are borrowed for the
 * duration of the callback. Mutations returned by next_mutations stay the
 * caller's; they are read, never freed, by the library.
 */
#ifndef SENTRA_SYNC_H
#define SENTRA_SYNC_H

#include <sentra/sentra.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sentra_sync_store {
    /* Pull: one changed record or tombstone (s->deleted). Return 0 to go
     * on, non-zero to stop the pull (it then returns SENTRA_ESYNC). */
    int (*apply)(void *arg, const Sentra__V1__Sentra *s);
    /* Pull: the cursor to resume from, after a batch was applied. */
    int (*save_cursor)(void *arg, const char *cursor);
    /* Push: fills out[0..max) with pending mutations (borrowed pointers)
     * and returns how many; 0 when nothing is left. The same mutations may
     * be asked for again after on_result ran for them only if they are
     * still pending. */
    size_t (*next_mutations)(void *arg, Sentra__V1__Mutation **out, size_t max);
    /* Push: the outcome of one mutation. Return 0 to go on. */
    int (*on_result)(void *arg, const Sentra__V1__Mutation *m, const Sentra__V1__MutationResult *r);
    /* Progress after each batch (may be NULL). */
    void (*progress)(void *arg, long done);
    void *arg;
} sentra_sync_store_t;

typedef struct sentra_sync_opts {
    const Sentra__V1__SentraFilter *filter; /* pull: borrowed; NULL: all */
    int32_t batch;                          /* pull limit / push batch; 0: 500 */
    unsigned max_retries;                   /* extra rounds per batch; 0: 5 */
    unsigned backoff_ms;                    /* first delay; 0: 500, doubling to 10 s */
} sentra_sync_opts_t;

typedef struct sentra_sync_stats {
    long batches;
    long changes;    /* pull: records applied */
    long applied;    /* push outcomes */
    long conflicts;
    long rejected;
    long retries;    /* rounds repeated after UNAVAILABLE or a lost connection */
} sentra_sync_stats_t;

/* Pulls everything after `cursor` (NULL or "": from the beginning).
 * Returns 0 when up to date, SENTRA_ESYNC when a callback stopped it, or
 * the error of the call that failed (status in st). stats may be NULL. */
int sentra_sync_pull(sentra_client_t *c, const char *cursor, const sentra_sync_opts_t *opts,
                     const sentra_sync_store_t *store, sentra_sync_stats_t *stats, sentra_status_t *st);

/* Streams every change after `cursor` (SyncService/StreamChanges): the
 * catch-up, then each change as it commits, for max_ms milliseconds (0:
 * until a callback stops it or an error that is not transient). Records
 * go to apply and each message's cursor to save_cursor, as for a pull
 * (one message is one batch, at most opts->batch records; 0: 5000);
 * progress runs after each message. When the stream ends because the
 * server went away, is stopping (UNAVAILABLE) or the connection was
 * lost, it is opened again after a backoff, from the last cursor saved;
 * when the server ends it with OK, at once. Returns 0 when max_ms passed,
 * SENTRA_ESYNC when a callback stopped it, or the error that ended it
 * (after opts->max_retries rounds without a message, for transient
 * ones). stats may be NULL; stats->batches counts messages. */
int sentra_sync_stream(sentra_client_t *c, const char *cursor, const sentra_sync_opts_t *opts,
                       unsigned max_ms, const sentra_sync_store_t *store, sentra_sync_stats_t *stats,
                       sentra_status_t *st);

/* Records of a sentra (libsentra 0.2): the kinds to receive, as
 * PullChangesRequest.kinds (docs/SYNC.md, "Several kinds of record"), and
 * the callback each record or tombstone goes to instead of store->apply
 * (which may then be NULL), with store->arg. A Record holds one record of
 * any kind; a tombstone has the kind's key, version and deleted = true.
 * Borrowed for the call. */
typedef struct sentra_sync_kinds {
    const Sentra__V1__RecordKind *kinds; /* each at most once */
    size_t n_kinds;                      /* 0: sentra only, to store->apply */
    int (*apply_record)(void *arg, const Sentra__V1__Record *r); /* 0: go on */
} sentra_sync_kinds_t;

/* sentra_sync_pull and sentra_sync_stream asking for those kinds: the
 * same loops, cursors and retries; stats->changes counts records. A
 * client that starts asking for more kinds must start from the empty
 * cursor (its old one has passed over their changes). */
int sentra_sync_pull_kinds(sentra_client_t *c, const char *cursor, const sentra_sync_opts_t *opts,
                           const sentra_sync_kinds_t *kinds, const sentra_sync_store_t *store,
                           sentra_sync_stats_t *stats, sentra_status_t *st);
int sentra_sync_stream_kinds(sentra_client_t *c, const char *cursor, const sentra_sync_opts_t *opts,
                             const sentra_sync_kinds_t *kinds, unsigned max_ms,
                             const sentra_sync_store_t *store, sentra_sync_stats_t *stats,
                             sentra_status_t *st);

/* Pushes every pending mutation of the store, as client `client_id`.
 * Returns 0 when all were sent (whatever their outcome: see stats and
 * on_result), SENTRA_ESYNC when a callback stopped it, or the error of the
 * call that failed. */
int sentra_sync_push(sentra_client_t *c, const char *client_id, const sentra_sync_opts_t *opts,
                     const sentra_sync_store_t *store, sentra_sync_stats_t *stats, sentra_status_t *st);

#ifdef __cplusplus
}
#endif
#endif
