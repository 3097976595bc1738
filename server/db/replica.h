/*
 * replica.h: reads served by a hot standby (--db-read), with a stated
 * staleness and read-your-writes by default.
 *
 * The router owns a second db_pool_t connected to the standby and decides,
 * read by read, which pool runs it:
 *
 *   REPLICA_LATEST (the default): the read must see every transaction that
 *     had committed on the primary when it arrived. The router reads the
 *     primary's WAL flush position (one quick query, shared by every read
 *     that arrives while none is in flight) and lets the standby serve the
 *     read once its replay position has reached it; a read still waiting
 *     after max_wait_ms goes to the primary. A write is acknowledged only
 *     after its commit record was flushed (synchronous_commit on), so this
 *     is read-your-writes for every client through every sentrad, and
 *     monotonic reads as well, with nothing remembered per client. While
 *     the standby is known to lag by more than max_wait_ms (plus the grain
 *     of the samples), LATEST reads go to the primary without waiting.
 *   REPLICA_BOUNDED: the standby serves the read when what it has replayed
 *     is at most max_lag_ms behind the primary (sampled every
 *     SAMPLE_MS); no primary round trip.
 *
 * Whenever the standby is down, is not in recovery (it was promoted, or
 * prefer-standby found only the primary) or is too far behind, reads go to
 * the primary. A read the standby could not run (DB_UNAVAILABLE) is sent to
 * the primary by the caller: reads are safe to run twice.
 */
#ifndef SENTRA_REPLICA_H
#define SENTRA_REPLICA_H

#include <stdint.h>
#include <uv.h>

#include "db.h"

typedef struct replica replica_t;

enum replica_mode {
    REPLICA_LATEST = 0,      /* see every commit older than the read */
    REPLICA_BOUNDED = 1      /* at most max_lag_ms stale */
};

/* Creates the router and its standby pool (conninfo and opts copied;
 * connects at once, never blocks; NULL when conninfo cannot be parsed).
 * primary is borrowed and must outlive the router. */
replica_t *replica_new(uv_loop_t *loop, db_pool_t *primary, const char *conninfo,
                       const db_pool_opts_t *opts, int max_lag_ms, int max_wait_ms);

/* Called once a pool is chosen for a read: pool is the standby's or the
 * primary's, or NULL when the router is closing (the read is not to run). */
typedef void (*replica_route_cb)(void *arg, db_pool_t *pool, int on_replica);

/* Chooses the pool for one read and calls cb once: at once (before this
 * returns) for a BOUNDED read or when there is no usable standby, else
 * within max_wait_ms plus one primary round trip. */
void replica_route(replica_t *r, int mode, replica_route_cb cb, void *arg);

/* What the standby lacks, in ms: every transaction that committed on the
 * primary more than this long ago is on the standby. -1 when unknown (the
 * standby is down, promoted, or not yet measured). */
int64_t replica_lag_ms(const replica_t *r);

/* Routes waiting reads with pool NULL, closes the standby pool and frees
 * the router once its handles have closed. */
void replica_close(replica_t *r);

/* Counters for logs and tests: reads routed to the standby, to the
 * primary. */
void replica_counts(const replica_t *r, uint64_t *to_replica, uint64_t *to_primary);

#endif
