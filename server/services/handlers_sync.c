/*
 * handlers_sync.c: PullChanges (the change feed, with long poll) and
 * PushChanges (batched, exactly-once mutations) for the district apps.
 *
 * A pull is one SQL statement over sentra_change (migrations/0003 and
 * 0006): the changes after the cursor in (txid, seq) order, only those of
 * transactions below the statement snapshot's xmin, joined to the records
 * as they are now. docs/SYNC.md explains why no committed change is ever
 * skipped. When nothing is there and the client asked to wait, the call
 * parks with call_wait_change until a change commits and queries again.
 *
 * A push is one call of the PL/pgSQL function sync_push, which applies the
 * whole batch in one transaction (each mutation in a subtransaction) and
 * stores every outcome beside the change it made, so that a repeated
 * mutation id returns the stored outcome and changes nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "call.h"
#include "log.h"
#include "methods.h"
#include "records.h"
#include "region_check.h"
#include "config.h"
#include "sentra_row.h"
#include "server.h"
#include "validate.h"
#include "validate_records.h"
#include "sentra/v1/sentra.pb-c.h"

#define PULL_LIMIT_DEFAULT 500
#define PULL_LIMIT_MAX 5000
#define PULL_WAIT_MAX_MS 60000
/* Re-query this often while committed changes wait behind a transaction
 * still running (they cannot be served yet, and the transaction that holds
 * them back may never send a NOTIFY of its own). */
#define PULL_PENDING_RETRY_MS 200
/* Every commit wakes every waiting pull (the NOTIFY says nothing about
 * where the change is). A woken pull queries at most this often, so a burst
 * of commits costs each waiter one query per interval, not one per commit. */
#define PULL_MIN_INTERVAL_MS 100
/* Stop adding records to a page past this many encoded bytes: the default
 * frame limit is 4 MiB. */
#define PULL_MAX_BYTES (3u * 1024 * 1024)
#define PUSH_MAX_MUTATIONS 500
#define PUSH_MAX_ID 200
/* Violations kept per refused mutation (the rest are counted in a last
 * line): they are stored with its outcome for 30 days. */
#define PUSH_MAX_VIOLATIONS 20

/* ---------------------------------------------------------------- helpers */

static const char *nonempty(const char *s)
{
    return s && s[0] ? s : NULL;
}

/* ---------------------------------------------------------------- cursor */

/*
 * A cursor is the feed position (txid, seq) of the last change served (or
 * passed over as outside the caller's scope), as the hex of the text
 * "v1:<txid>:<seq>": opaque to clients, stable across restarts because it
 * names rows of the database, never server memory.
 */

/* The longest cursor's text ("v2:" and three fields, below) and its hex. */
#define CURSOR_RAW_MAX 96
#define CURSOR_MAX (2 * CURSOR_RAW_MAX + 1)

/* Writes the hex of raw[0..n) into out (room for 2n + 1). */
static void cursor_hex(char *out, const char *raw, int n)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) {
        out[2 * i] = hex[(unsigned char)raw[i] >> 4];
        out[2 * i + 1] = hex[(unsigned char)raw[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The cursor of feed position (txid, seq) into out[CURSOR_MAX]. */
static void cursor_format(char *out, uint64_t txid, int64_t seq)
{
    char raw[CURSOR_RAW_MAX];
    int n = snprintf(raw, sizeof raw, "v1:%" PRIu64 ":%" PRId64, txid, seq);
    cursor_hex(out, raw, n);
}

static char *cursor_encode(call_t *c, uint64_t txid, int64_t seq)
{
    char *out = call_alloc(c, CURSOR_MAX);
    cursor_format(out, txid, seq);
    return out;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Parses a decimal number of at most 19 digits (fits int64). */
static int parse_dec(const char *s, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    if (s == end || end - s > 19)
        return 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 1;
}

/* The text of cursor tok into raw[CURSOR_RAW_MAX]; 0 when it is not hex
 * of a text that fits. */
static int cursor_unhex(const char *tok, char *raw)
{
    size_t n = strlen(tok);
    if (n % 2 || n / 2 >= CURSOR_RAW_MAX)
        return 0;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(tok[2 * i]), lo = hexval(tok[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        raw[i] = (char)(hi << 4 | lo);
        if (raw[i] == '\0')
            return 0;
    }
    raw[n / 2] = '\0';
    return 1;
}

/* Returns 1 and the position, or 0 when tok is not a cursor. "" is the
 * beginning of the feed. */
static int cursor_decode(const char *tok, uint64_t *txid, int64_t *seq)
{
    char raw[CURSOR_RAW_MAX];
    size_t n = tok ? strlen(tok) : 0;
    uint64_t t, s;

    if (n == 0) {
        *txid = 0;
        *seq = 0;
        return 1;
    }
    if (!cursor_unhex(tok, raw))
        return 0;
    n = 2 * strlen(raw);
    if (strncmp(raw, "v1:", 3) != 0)
        return 0;
    char *colon = strchr(raw + 3, ':');
    if (colon == NULL || !parse_dec(raw + 3, colon, &t) ||
        !parse_dec(colon + 1, raw + n / 2, &s) || s > INT64_MAX)
        return 0;
    *txid = t;
    *seq = (int64_t)s;
    return 1;
}

/* (a1, a2) > (b1, b2) */
static int pos_after(uint64_t a1, int64_t a2, uint64_t b1, int64_t b2)
{
    return a1 > b1 || (a1 == b1 && a2 > b2);
}

/* ---------------------------------------------------------------- pull state */

/*
 * A long poll queries several times; its cursor moves between the queries
 * (past changes outside the caller's scope), and a callback gets only the
 * call. The state of each pull in progress is found here by its call, and
 * dropped when the call is freed.
 */
typedef struct pull_state {
    call_t *c;                   /* the call (the key) */
    uint64_t txid;               /* cursor: feed position already covered */
    int64_t seq;
    int limit;                   /* records per page */
    const char *f_province;      /* filter, or NULL */
    const char *f_regency;
    int shape;                   /* PULL_ALL, PULL_REGENCY or PULL_PROVINCE */
    const char *key;             /* the region of a keyed shape */
    unsigned kinds;              /* kinds asked, bit k for RecordKind k; 0: none
                                  * named (sentra only, in `changes`) */
    const char *kinds_param;     /* the same as a smallint[] literal */
    uint64_t wait_until_ns;      /* long poll ends then (uv_hrtime); 0: no wait */
    uint64_t queried_ns;         /* when the last query was sent */
    uint64_t mark;               /* call_change_mark() when the page's query left */
    struct readahead *ra;        /* the read-ahead this pull waits for */
    struct pull_state *next;     /* hash chain */
} pull_state_t;

#define PULL_BUCKETS 256
static pull_state_t *pulls[PULL_BUCKETS];

static size_t pull_bucket(const call_t *c)
{
    uintptr_t p = (uintptr_t)c;
    return (size_t)((p >> 4) ^ (p >> 12)) % PULL_BUCKETS;
}

static pull_state_t *pull_find(const call_t *c)
{
    for (pull_state_t *p = pulls[pull_bucket(c)]; p != NULL; p = p->next)
        if (p->c == c)
            return p;
    return NULL;
}

static void ra_unwait(pull_state_t *ps);

static void pull_forget(void *arg)
{
    pull_state_t *ps = arg;
    ra_unwait(ps);
    for (pull_state_t **pp = &pulls[pull_bucket(ps->c)]; *pp != NULL; pp = &(*pp)->next)
        if (*pp == ps) {
            *pp = ps->next;
            break;
        }
    free(ps);
}

/* ---------------------------------------------------------------- pull */

/*
 * $1 role, $2 region, $3 cursor txid, $4 cursor seq, $5 limit, $6 filter
 * province, $7 filter regency, $8 the region key of the keyed shapes; then
 * the kinds asked (a smallint[]) when the client named any.
 *
 * h: the horizon, the xmin of this statement's snapshot (pg_current_snapshot
 * is the statement's snapshot, so the horizon and the rows read agree).
 * page: up to limit + 1 visible changes after the cursor below the horizon
 * (one more than served only tells that more are waiting), read in one of
 * three shapes (PULL_ALL, PULL_REGENCY, PULL_PROVINCE below). served: the
 * first limit of them; last: each record once, at its last position in the
 * page (repeats within a page would carry the same current record).
 * meta: more, the tail (the last position below the horizon, whatever its
 * scope: when the page is not full the cursor may jump there, as nothing
 * between was for this caller), pending (committed changes above the
 * horizon, waiting for an older transaction) and xmax (a cursor at or above
 * it comes from another database).
 * Each record: its current state when the caller may read it, else a
 * tombstone (deleted, or moved out of the caller's scope). One row per
 * record: the columns of enum sentra_pull_col (server/services/sentra_row.h), the
 * record as sentra_pull keeps it printed (migrations/0007_pull_rows.sql:
 * printing it here was two thirds of the statement's time), then the feed
 * position, meta and the record's kind (a record of another kind than
 * sentra: its key, its version, gone or not, its <kind>_pull_src text). The packed record is NULL unless v.ok (live and
 * visible to the caller), so that one join serves records and tombstones
 * alike. The rows come in no particular order: pull_done puts them in feed
 * order (sorting them in SQL took a fifth of the statement's time).
 */
#define PULL_META_COL SENTRA_PULL_NCOLS
enum { PM_TXID, PM_SEQ, PM_MORE, PM_TAIL_TXID, PM_TAIL_SEQ, PM_PENDING, PM_XMAX, PM_KIND };

#define PULL_VISIBLE(t) \
    "(sync_visible($1, $2, $6, $7, " t ".regency_code)" \
    " OR sync_visible($1, $2, $6, $7, " t ".old_regency_code))"
#define PULL_AFTER_CURSOR \
    " (c.txid, c.seq) > ($3::xid8, $4::bigint) AND c.txid < (SELECT xmin FROM h)"

/* Which kinds of record a page reads (docs/SYNC.md, "Several kinds of
 * record"): a client that names none gets the sentra rows alone, through
 * the partial index sentra_change_sentra_feed for the whole feed; one that
 * names kinds gets those, the list being a smallint[] parameter ($8 in
 * the whole feed's shape, $9 in the keyed ones). A record is (kind, id):
 * rec_id is the record's id, a sentra's own rows carrying it in sentra_id. */
#define PULL_KIND_SENTRA " AND c.kind = 1"
#define PULL_KIND_ANY(p) " AND c.kind = ANY (" p "::smallint[])"
#define PULL_COLS \
    "c.txid, c.seq, c.kind, coalesce(c.record_id, c.sentra_id) AS rec_id, c.new_version"

/* The whole feed, filtered: national and admin tokens without a region
 * filter (whose scope is everything anyway). */
#define PULL_PAGE_ALL(kinds) \
    "SELECT " PULL_COLS " FROM sentra_change c" \
    " WHERE" PULL_AFTER_CURSOR kinds " AND " PULL_VISIBLE("c") \
    " ORDER BY c.txid, c.seq LIMIT $5::int + 1"

/* One region's part of the feed, through the regional indexes of
 * sentra_change (migrations/0006_sync.sql, "feed scope"): the changes
 * whose regency (KEY of regency_code) is $8, and the moves out of it (KEY
 * of old_regency_code), each read in feed order and merged.
 * Every visible change is in one of the two (the scope and the filter name
 * that region or a part of it), so the tail rule stays sound. */
#define PULL_PAGE_KEYED(key_new, key_old, kinds) \
    "SELECT u.txid, u.seq, u.kind, u.rec_id, u.new_version FROM (" \
    "(SELECT " PULL_COLS ", c.regency_code," \
    " c.old_regency_code FROM sentra_change c WHERE " key_new " = $8 AND" \
    PULL_AFTER_CURSOR kinds " ORDER BY c.txid, c.seq LIMIT $5::int + 1)" \
    " UNION ALL " \
    "(SELECT " PULL_COLS ", c.regency_code," \
    " c.old_regency_code FROM sentra_change c WHERE " key_old " = $8" \
    " AND c.old_regency_code IS NOT NULL AND" PULL_AFTER_CURSOR kinds \
    " ORDER BY c.txid, c.seq LIMIT $5::int + 1)) u" \
    " WHERE " PULL_VISIBLE("u") " ORDER BY u.txid, u.seq LIMIT $5::int + 1"

/* extra_cte: more common table expressions, each followed by a comma;
 * extra_col (below): more columns after the kind (StreamChanges' token
 * check). */
#define PULL_WITH(page, extra_cte) \
    "WITH " extra_cte " h AS MATERIALIZED (" \
    " SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)," \
    " page AS MATERIALIZED (" page ")," \
    " served AS (SELECT * FROM page ORDER BY txid, seq LIMIT $5::int)," \
    " last AS (SELECT DISTINCT ON (kind, rec_id) * FROM served" \
    " ORDER BY kind, rec_id, txid DESC, seq DESC)," \
    " meta AS MATERIALIZED (" \
    " SELECT (SELECT count(*) FROM page) > $5::int AS more," \
    " t.txid AS tail_txid, t.seq AS tail_seq," \
    " coalesce((SELECT p.txid FROM sentra_change p ORDER BY p.txid DESC, p.seq DESC" \
    " LIMIT 1) >= h.xmin, false) AS pending," \
    " pg_snapshot_xmax(pg_current_snapshot()) AS xmax" \
    " FROM h LEFT JOIN LATERAL (" \
    " SELECT c.txid, c.seq FROM sentra_change c WHERE c.txid < h.xmin" \
    " ORDER BY c.txid DESC, c.seq DESC LIMIT 1) t ON true)"

/* Sentra only: each record as sentra_pull keeps it printed. */
#define PULL_STMT(page) PULL_STMT_X(page, "", "")
#define PULL_STMT_X(page, extra_cte, extra_col) \
    PULL_WITH(page, extra_cte) \
    " SELECT l.rec_id, coalesce(p.version, l.new_version)," \
    " l.rec_id IS NOT NULL AND NOT coalesce(v.ok, false)," \
    " CASE WHEN v.ok THEN p.packed END," \
    " l.txid, l.seq, m.more, m.tail_txid, m.tail_seq, m.pending, m.xmax, l.kind" extra_col \
    " FROM meta m" \
    " LEFT JOIN last l ON true" \
    " LEFT JOIN sentra_pull p ON p.sentra_id = l.rec_id" \
    " LEFT JOIN LATERAL (SELECT NOT p.deleted" \
    " AND sync_visible($1, $2, $6, $7, p.regency_code) AS ok) v ON true"

/* Every kind: each record as its kind prints it (the sentra's sentra_pull,
 * the others' <kind>_pull_src of migrations/0013_records.sql), the branch
 * of its kind alone running for each row (a one-time filter). */
#define PULL_STMT_KINDS(page) PULL_STMT_KINDS_X(page, "", "")
#define PULL_STMT_KINDS_X(page, extra_cte, extra_col) \
    PULL_WITH(page, extra_cte) \
    " SELECT l.rec_id, coalesce(r.version, l.new_version)," \
    " l.rec_id IS NOT NULL AND NOT coalesce(v.ok, false)," \
    " CASE WHEN v.ok THEN r.packed END," \
    " l.txid, l.seq, m.more, m.tail_txid, m.tail_seq, m.pending, m.xmax, l.kind" extra_col \
    " FROM meta m" \
    " LEFT JOIN last l ON true" \
    " LEFT JOIN LATERAL (" \
    " SELECT p.regency_code, p.version, p.deleted, p.packed FROM sentra_pull p" \
    " WHERE l.kind = 1 AND p.sentra_id = l.rec_id" \
    " UNION ALL SELECT x.regency_code, x.version, x.deleted, x.packed FROM member_pull_src x" \
    " WHERE l.kind = 2 AND x.id = l.rec_id" \
    " UNION ALL SELECT x.regency_code, x.version, x.deleted, x.packed FROM institution_pull_src x" \
    " WHERE l.kind = 3 AND x.id = l.rec_id" \
    " UNION ALL SELECT x.regency_code, x.version, x.deleted, x.packed FROM obstacle_pull_src x" \
    " WHERE l.kind = 4 AND x.id = l.rec_id" \
    " UNION ALL SELECT x.regency_code, x.version, x.deleted, x.packed FROM assistance_pull_src x" \
    " WHERE l.kind = 5 AND x.id = l.rec_id) r ON true" \
    " LEFT JOIN LATERAL (SELECT NOT r.deleted" \
    " AND sync_visible($1, $2, $6, $7, r.regency_code) AS ok) v ON true"

enum { PULL_ALL, PULL_REGENCY, PULL_PROVINCE };

#define KEY_NEW_REGENCY "c.regency_code"
#define KEY_OLD_REGENCY "c.old_regency_code"
#define KEY_NEW_PROVINCE "split_part(c.regency_code, '.', 1)"
#define KEY_OLD_PROVINCE "split_part(c.old_regency_code, '.', 1)"

/* [kinds named][shape]. 7 parameters for the whole feed, 8 keyed; one more
 * (the kinds) when kinds are named. */
static db_stmt_t pull_stmts[2][3] = {
    {
        [PULL_ALL] = {PULL_STMT(PULL_PAGE_ALL(PULL_KIND_SENTRA)), 0},
        [PULL_REGENCY] = {PULL_STMT(PULL_PAGE_KEYED(KEY_NEW_REGENCY, KEY_OLD_REGENCY, PULL_KIND_SENTRA)), 0},
        [PULL_PROVINCE] = {PULL_STMT(PULL_PAGE_KEYED(KEY_NEW_PROVINCE, KEY_OLD_PROVINCE, PULL_KIND_SENTRA)), 0},
    },
    {
        [PULL_ALL] = {PULL_STMT_KINDS(PULL_PAGE_ALL(PULL_KIND_ANY("$8"))), 0},
        [PULL_REGENCY] = {PULL_STMT_KINDS(PULL_PAGE_KEYED(KEY_NEW_REGENCY, KEY_OLD_REGENCY, PULL_KIND_ANY("$9"))), 0},
        [PULL_PROVINCE] = {PULL_STMT_KINDS(PULL_PAGE_KEYED(KEY_NEW_PROVINCE, KEY_OLD_PROVINCE, PULL_KIND_ANY("$9"))), 0},
    },
};

static void pull_query(call_t *c);
static void pull_query_db(call_t *c, pull_state_t *ps);
static void pull_done(call_t *c, PGresult *res);
static int pull_params(call_t *c, const pull_state_t *ps, const char **v);

/* ---------------------------------------------------------------- read-ahead */

/*
 * A full pull is a chain of requests, each naming the cursor that the
 * answer before it returned. When an answer says more, the query for the
 * next page starts at once, while that answer is packed, travels and is
 * digested by the client: the database works during the round trip
 * instead of after it. The next request of the chain (same token, filter,
 * page size and cursor) takes that result, or waits for the query still
 * running; any other request queries as usual. The result is the answer
 * the request would have had a moment earlier, which a pull may give:
 * every change after the cursor below an earlier horizon, in feed order
 * (docs/SYNC.md). An unclaimed read-ahead is dropped after RA_TTL_MS, and
 * at most RA_MAX exist at once (each holds up to a page of rows, a few MB
 * at 5000 a page). docs/BENCHMARKS.md has what it is worth.
 */
#define RA_MAX 8
#define RA_TTL_MS 5000
#define RA_CODE_MAX 16          /* region codes are shorter */

typedef struct readahead {
    char token_id[sizeof(((auth_t *)0)->token_id)];
    int shape, limit;
    unsigned kinds;              /* as in pull_state_t */
    char f_province[RA_CODE_MAX];  /* the filter; "" for none */
    char f_regency[RA_CODE_MAX];
    uint64_t txid;               /* the cursor it answers */
    int64_t seq;
    uint64_t born_ns;
    uint64_t mark;               /* call_change_mark() when its query left */
    int running;                 /* its query has not answered yet */
    int dropped;                 /* out of the list: its answer frees it */
    PGresult *res;               /* the answer; NULL: none could be had */
    pull_state_t *waiter;        /* the pull waiting for it, if any */
    struct readahead *next;
} readahead_t;

static readahead_t *ra_list;
static int ra_count;

static void ra_unlink(readahead_t *ra)
{
    for (readahead_t **pp = &ra_list; *pp != NULL; pp = &(*pp)->next)
        if (*pp == ra) {
            *pp = ra->next;
            ra_count--;
            return;
        }
}

/* Forgets ra (no pull waits for it); a running one is freed by its answer. */
static void ra_drop(readahead_t *ra)
{
    ra_unlink(ra);
    if (ra->running) {
        ra->dropped = 1;
        return;
    }
    if (ra->res != NULL)
        PQclear(ra->res);
    free(ra);
}

static void ra_expire(uint64_t now)
{
    readahead_t *next;
    for (readahead_t *ra = ra_list; ra != NULL; ra = next) {
        next = ra->next;
        if (ra->waiter == NULL && now - ra->born_ns > RA_TTL_MS * 1000000ull)
            ra_drop(ra);
    }
}

static int ra_code_copy(char *dst, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= RA_CODE_MAX)
        return 0;
    memcpy(dst, src ? src : "", n + 1);
    return 1;
}

/* Would ra answer the query of pull ps of call c? */
static int ra_matches(const readahead_t *ra, const call_t *c, const pull_state_t *ps)
{
    return ra->txid == ps->txid && ra->seq == ps->seq && ra->shape == ps->shape &&
           ra->kinds == ps->kinds &&
           ra->limit == ps->limit && strcmp(ra->token_id, c->auth.token_id) == 0 &&
           strcmp(ra->f_province, ps->f_province ? ps->f_province : "") == 0 &&
           strcmp(ra->f_regency, ps->f_regency ? ps->f_regency : "") == 0;
}

/* Answers the pull of c with ra's result (ra is out of the list; freed). */
static void ra_deliver(call_t *c, readahead_t *ra)
{
    PGresult *res = ra->res;
    pull_find(c)->mark = ra->mark;
    free(ra);
    if (res == NULL) {
        /* The read-ahead found no database: ask the usual way. */
        pull_query_db(c, pull_find(c));
        return;
    }
    pull_done(c, res);
    PQclear(res);
}

static void ra_answered(void *arg, PGresult *res)
{
    readahead_t *ra = arg;
    pull_state_t *ps = ra->waiter;

    if (ra->dropped) {
        if (res != NULL)
            PQclear(res);
        free(ra);
        return;
    }
    ra->running = 0;
    ra->res = res;
    if (ps == NULL)
        return;                 /* kept for the request to come */
    ra->waiter = NULL;
    ps->ra = NULL;
    ra_unlink(ra);
    ra_deliver(ps->c, ra);
}

/* Starts reading ahead the page after the one ps has just answered. */
static void ra_start(call_t *c, const pull_state_t *ps)
{
    const char *v[9];

    ra_expire(uv_hrtime());
    if (ra_count >= RA_MAX)
        return;
    readahead_t *ra = calloc(1, sizeof *ra);
    if (ra == NULL)
        abort();
    if (!ra_code_copy(ra->f_province, ps->f_province) ||
        !ra_code_copy(ra->f_regency, ps->f_regency)) {
        free(ra);
        return;
    }
    memcpy(ra->token_id, c->auth.token_id, sizeof ra->token_id);
    ra->shape = ps->shape;
    ra->kinds = ps->kinds;
    ra->limit = ps->limit;
    ra->txid = ps->txid;
    ra->seq = ps->seq;
    ra->born_ns = uv_hrtime();
    ra->mark = call_change_mark(c);
    ra->running = 1;
    ra->next = ra_list;
    ra_list = ra;
    ra_count++;
    int n = pull_params(c, ps, v);
    call_query_ahead(c, &pull_stmts[ps->kinds != 0][ps->shape], n, v, ra_answered, ra);
}

/* Answers the pull ps of c from a read-ahead, now or when it comes in;
 * returns 0 when there is none for it. */
static int ra_take(call_t *c, pull_state_t *ps)
{
    ra_expire(uv_hrtime());
    for (readahead_t *ra = ra_list; ra != NULL; ra = ra->next) {
        if (ra->waiter != NULL || !ra_matches(ra, c, ps))
            continue;
        if (ra->running) {
            ra->waiter = ps;
            ps->ra = ra;
        } else {
            ra_unlink(ra);
            ra_deliver(c, ra);
        }
        return 1;
    }
    return 0;
}

/* The pull ps is going away: its read-ahead stays for another request. */
static void ra_unwait(pull_state_t *ps)
{
    if (ps->ra != NULL) {
        ps->ra->waiter = NULL;
        ps->ra = NULL;
    }
}

void h_sync_shutdown(void)
{
    while (ra_list != NULL)
        ra_drop(ra_list);
}

/* The answer of a long poll that stops waiting: no changes, the cursor as
 * far as the last page went. */
static void pull_reply_empty(call_t *c, const pull_state_t *ps)
{
    Sentra__V1__PullChangesResponse resp = SENTRA__V1__PULL_CHANGES_RESPONSE__INIT;
    resp.next_cursor = cursor_encode(c, ps->txid, ps->seq);
    call_reply(c, &resp.base);
}

static void pull_wake(call_t *c)
{
    pull_state_t *ps = pull_find(c);
    uint64_t now = uv_hrtime(), next = ps->queried_ns + PULL_MIN_INTERVAL_MS * 1000000ull;

    if (call_draining(c)) {
        /* The server is stopping: answer now rather than hold the stop
         * (docs/PROTOCOL.md, GOAWAY). */
        pull_reply_empty(c, ps);
        return;
    }
    if (now < next && next < ps->wait_until_ns) {
        /* Woken too soon after the last query: wait out the interval (a
         * later NOTIFY may wake it again, to find the same). */
        call_wait_change(c, call_change_mark(c), (int)((next - now) / 1000000) + 1, pull_wake);
        return;
    }
    pull_query(c);
}

static uint64_t col_u64(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : (uint64_t)sentra__dec_i64(PQgetvalue(res, row, col));
}

/* A row of the page and its feed position. */
typedef struct pull_pos {
    uint64_t txid;
    int64_t seq;
    int row;
} pull_pos_t;

static int pos_cmp(const void *a, const void *b)
{
    const pull_pos_t *x = a, *y = b;
    return pos_after(x->txid, x->seq, y->txid, y->seq) ? 1
         : pos_after(y->txid, y->seq, x->txid, x->seq) ? -1 : 0;
}

/* The n rows of res in feed order, into pos[0..n). */
static void pull_order_into(pull_pos_t *pos, const PGresult *res, int n)
{
    int sorted = 1;

    for (int i = 0; i < n; i++) {
        pos[i].txid = col_u64(res, i, PULL_META_COL + PM_TXID);
        pos[i].seq = (int64_t)col_u64(res, i, PULL_META_COL + PM_SEQ);
        pos[i].row = i;
        if (i > 0 && !pos_after(pos[i].txid, pos[i].seq, pos[i - 1].txid, pos[i - 1].seq))
            sorted = 0;
    }
    if (!sorted)
        qsort(pos, (size_t)n, sizeof *pos, pos_cmp);
}

/* The same in call memory. */
static pull_pos_t *pull_order(call_t *c, const PGresult *res, int n)
{
    pull_pos_t *pos = call_alloc(c, (size_t)(n > 0 ? n : 1) * sizeof *pos);
    pull_order_into(pos, res, n);
    return pos;
}

/* The record of row r of a pull's result: a sentra as sentra_pull prints
 * it, a record of another kind as its <kind>_pull_src does, or the
 * tombstone of either. NULL when the row cannot be read. */
static ProtobufCMessage *pull_record(call_t *c, const PGresult *res, int r)
{
    int kind = (int)col_u64(res, r, PULL_META_COL + PM_KIND);
    const rec_kind_t *k = rec__kind(kind);

    if (k == NULL) {
        Sentra__V1__Sentra *s = sentra__from_pull(c, res, r);
        return s ? &s->base : NULL;
    }
    if (PQgetisnull(res, r, SENTRA_PULL_PACKED))
        return rec__tombstone(c, k, PQgetvalue(res, r, SENTRA_PULL_ID),
                              sentra__dec_i64(PQgetvalue(res, r, SENTRA_PULL_VERSION)));
    return rec__from_packed(c, k, PQgetvalue(res, r, SENTRA_PULL_PACKED));
}

static void pull_done(call_t *c, PGresult *res)
{
    pull_state_t *ps = pull_find(c);
    Sentra__V1__PullChangesResponse resp = SENTRA__V1__PULL_CHANGES_RESPONSE__INIT;
    int n, row = 0, more;
    uint64_t last_txid = ps->txid, tail_txid;
    int64_t last_seq = ps->seq, tail_seq;
    size_t bytes = 0;

    if (call_db_error(c, res))
        return;
    n = PQntuples(res);
    if (n < 1 || PQnfields(res) < PULL_META_COL + PM_KIND + 1) {
        call_fail(c, SENTRA_INTERNAL, "pull: unexpected result shape");
        return;
    }
    if (ps->txid != 0 && ps->txid >= col_u64(res, 0, PULL_META_COL + PM_XMAX)) {
        /* No transaction of this database has reached that id yet: the
         * cursor was made by another database (a restore, a new cluster). */
        call_fail(c, SENTRA_OUT_OF_RANGE,
                  "cursor is ahead of this database; pull again from an empty cursor");
        return;
    }
    more = PQgetvalue(res, 0, PULL_META_COL + PM_MORE)[0] == 't';
    if (PQgetisnull(res, 0, SENTRA_COL_ID))
        n = 0;                  /* the single meta row of an empty page */

    if (ps->kinds == 0)
        resp.changes = call_alloc(c, (size_t)(n > 0 ? n : 1) * sizeof *resp.changes);
    else
        resp.records = call_alloc(c, (size_t)(n > 0 ? n : 1) * sizeof *resp.records);
    pull_pos_t *pos = pull_order(c, res, n);
    while (row < n) {
        uint64_t t = pos[row].txid;
        int64_t s = pos[row].seq;
        int r = pos[row].row;
        ProtobufCMessage *rec = pull_record(c, res, r);
        if (rec == NULL)
            break;
        row++;
        size_t sz = protobuf_c_message_get_packed_size(rec) + 8;
        if (resp.n_changes + resp.n_records > 0 && bytes + sz > PULL_MAX_BYTES) {
            more = 1;           /* the rest next time, from last_* */
            break;
        }
        bytes += sz;
        if (ps->kinds == 0)
            resp.changes[resp.n_changes++] = (Sentra__V1__Sentra *)rec;
        else
            resp.records[resp.n_records++] =
                rec__record(c, (int)col_u64(res, r, PULL_META_COL + PM_KIND), rec);
        last_txid = t;
        last_seq = s;
    }
    if (!more && row >= n && !PQgetisnull(res, 0, PULL_META_COL + PM_TAIL_TXID)) {
        /* Everything below the horizon after the cursor was looked at: the
         * cursor may pass over what was not for this caller. */
        tail_txid = col_u64(res, 0, PULL_META_COL + PM_TAIL_TXID);
        tail_seq = (int64_t)col_u64(res, 0, PULL_META_COL + PM_TAIL_SEQ);
        if (pos_after(tail_txid, tail_seq, last_txid, last_seq)) {
            last_txid = tail_txid;
            last_seq = tail_seq;
        }
    }
    ps->txid = last_txid;
    ps->seq = last_seq;

    if (resp.n_changes == 0 && ps->wait_until_ns != 0 && !call_draining(c)) {
        uint64_t now = uv_hrtime();
        if (now + 1000000 < ps->wait_until_ns) {
            int ms = (int)((ps->wait_until_ns - now) / 1000000);
            if (PQgetvalue(res, 0, PULL_META_COL + PM_PENDING)[0] == 't' &&
                ms > PULL_PENDING_RETRY_MS)
                ms = PULL_PENDING_RETRY_MS;
            /* ps->mark: a change announced while this page's query was out
             * (committed after its snapshot) ends the wait at once. */
            call_wait_change(c, ps->mark, ms, pull_wake);
            return;
        }
    }
    resp.next_cursor = cursor_encode(c, ps->txid, ps->seq);
    resp.more = more;
    if (more)
        ra_start(c, ps);        /* the next page, while this one travels */
    call_reply(c, &resp.base);
}

/* The parameters of the pull statement for ps; returns their number. */
static int pull_params(call_t *c, const pull_state_t *ps, const char **v)
{
    int n;
    v[0] = auth_role_name(c->auth.role);
    v[1] = c->auth.region;
    v[2] = call_printf(c, "%" PRIu64, ps->txid);
    v[3] = call_printf(c, "%" PRId64, ps->seq);
    v[4] = call_printf(c, "%d", ps->limit);
    v[5] = ps->f_province;
    v[6] = ps->f_regency;
    n = 7;
    if (ps->shape != PULL_ALL)
        v[n++] = ps->key;
    if (ps->kinds != 0)
        v[n++] = ps->kinds_param;
    return n;
}

/* Queries the page of ps now. */
static void pull_query_db(call_t *c, pull_state_t *ps)
{
    const char *v[9];
    int n = pull_params(c, ps, v);
    ps->mark = call_change_mark(c);
    call_query_read(c, &pull_stmts[ps->kinds != 0][ps->shape], n, v, pull_done);
}

static void pull_query(call_t *c)
{
    pull_state_t *ps = pull_find(c);

    ps->queried_ns = uv_hrtime();
    if (!ra_take(c, ps))
        pull_query_db(c, ps);
}

/* What PullChanges and StreamChanges share: the request's cursor, limit,
 * filter and kinds checked (violations answered: returns 0), and the pull
 * statement chosen (*shape, *key; *f_province and *f_regency point into
 * the request). */
typedef struct feed_req {
    uint64_t txid;               /* the cursor */
    int64_t seq;
    int cursor_ok;               /* a PullChanges cursor (else see the caller) */
    int limit;                   /* clamped; 0 when not given */
    const char *f_province, *f_regency;
    int shape;
    const char *key;
    unsigned kinds;              /* bit k for RecordKind k; 0: none named (sentra
                                  * only, in `changes`) */
    char kinds_param[16];        /* the same as a smallint[] literal ("{1,2}") */
} feed_req_t;

static int feed_setup(call_t *c, const char *cursor, int32_t limit,
                      const Sentra__V1__SentraFilter *f, const Sentra__V1__RecordKind *req_kinds,
                      size_t n_kinds, const char *method,
                      int (*cursor_other)(const char *tok, void *arg), void *arg,
                      feed_req_t *fr)
{
    violations_t viol = {0};
    validate_ctx_t vc = {.today = validate_today(), .report = violations_report, .arg = &viol,
                         .max = CALL_MAX_VIOLATIONS};

    memset(fr, 0, sizeof *fr);
    fr->cursor_ok = cursor_decode(cursor, &fr->txid, &fr->seq);
    if (!fr->cursor_ok && (cursor_other == NULL || !cursor_other(cursor, arg))) {
        violations_add(&viol, "cursor", "is not a cursor returned by PullChanges or StreamChanges");
        vc.count++;
    }
    if (limit < 0) {
        violations_add(&viol, "limit", "must not be negative");
        vc.count++;
    }
    if (f != NULL) {
        validate_filter(&vc, f, "filter.");
        /* A record drifting in and out of a status or text filter has no
         * change to announce its leaving: only region filters, which the
         * feed tracks (a move yields a tombstone for the old region). Each
         * other filter field is refused by name. */
        const struct {
            int set;
            const char *field;
        } unsupported[] = {
            {f->n_status > 0, "filter.status"},
            {f->n_sector_group > 0, "filter.sector_group"},
            {nonempty(f->kbli_prefix) != NULL, "filter.kbli_prefix"},
            {f->designation != 0, "filter.designation"},
            {nonempty(f->text) != NULL, "filter.text"},
            {f->updated_since_ms != 0, "filter.updated_since_ms"},
        };
        for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
            if (unsupported[i].set) {
                violations_add(&viol, unsupported[i].field,
                               "is not a %s filter: it filters only by "
                               "province_code and regency_code", method);
                vc.count++;
            }
    }
    /* The kinds asked, each once: bits, and the same as a smallint[]. */
    unsigned kinds = 0;
    if (n_kinds > 5) {
        violations_add(&viol, "kinds", "has more than 5 entries (one per kind)");
        vc.count++;
    } else {
        for (size_t i = 0; i < n_kinds; i++) {
            int k = (int)req_kinds[i];
            if (k < 1 || k > 5) {
                violations_add(&viol, call_printf(c, "kinds[%zu]", i), "is not a known kind");
                vc.count++;
            } else if (kinds & (1u << k)) {
                violations_add(&viol, call_printf(c, "kinds[%zu]", i), "repeats an earlier kind");
                vc.count++;
            }
            if (k >= 1 && k <= 5)
                kinds |= 1u << k;
        }
    }
    if (vc.count > 0) {
        call_fail_violations(c, &viol);
        violations_free(&viol);
        return 0;
    }
    fr->limit = limit > PULL_LIMIT_MAX ? PULL_LIMIT_MAX : limit;
    fr->kinds = kinds;
    if (kinds != 0) {
        size_t off = 0;
        fr->kinds_param[off++] = '{';
        for (int k = 1; k <= 5; k++)
            if (kinds & (1u << k))
                off += (size_t)snprintf(fr->kinds_param + off, sizeof fr->kinds_param - off,
                                        "%s%d", off > 1 ? "," : "", k);
        snprintf(fr->kinds_param + off, sizeof fr->kinds_param - off, "}");
    }
    fr->f_province = f ? nonempty(f->province_code) : NULL;
    fr->f_regency = f ? nonempty(f->regency_code) : NULL;
    /* The narrowest region that holds everything the caller may see here:
     * its index range is all a pull needs to read. */
    fr->shape = PULL_REGENCY;
    if (c->auth.role == SENTRA__V1__ROLE__ROLE_DISTRICT) {
        fr->key = c->auth.region;
    } else if (fr->f_regency) {
        fr->key = fr->f_regency;
    } else if (c->auth.role == SENTRA__V1__ROLE__ROLE_PROVINCE) {
        fr->shape = PULL_PROVINCE;
        fr->key = c->auth.region;
    } else if (fr->f_province) {
        fr->shape = PULL_PROVINCE;
        fr->key = fr->f_province;
    } else {
        fr->shape = PULL_ALL;
        fr->key = NULL;
    }
    return 1;
}

static int cursor_decode_snap(const char *tok, void *arg);

/* PullChanges given a cursor of StreamChanges' catch-up (v2): it starts
 * from the beginning of the feed, as from the empty cursor, which loses
 * nothing (the records of the catch-up come again, which versions make
 * harmless). */
static int pull_cursor_snap(const char *tok, void *arg)
{
    char raw[CURSOR_RAW_MAX];
    return tok != NULL && cursor_unhex(tok, raw) && strncmp(raw, "v2:", 3) == 0 &&
           cursor_decode_snap(tok, NULL);
}

void h_pull_changes(call_t *c)
{
    const Sentra__V1__PullChangesRequest *req = (const void *)c->msg;
    feed_req_t fr;

    if (!feed_setup(c, req->cursor, req->limit, req->filter, req->kinds, req->n_kinds,
                    "PullChanges", pull_cursor_snap, NULL, &fr))
        return;
    pull_state_t *ps = calloc(1, sizeof *ps);
    if (ps == NULL)
        abort();
    ps->c = c;
    ps->txid = fr.txid;
    ps->seq = fr.seq;
    ps->limit = fr.limit == 0 ? PULL_LIMIT_DEFAULT : fr.limit;
    ps->kinds = fr.kinds;
    ps->kinds_param = fr.kinds != 0 ? call_strdup(c, fr.kinds_param) : NULL;
    ps->f_province = fr.f_province;
    ps->f_regency = fr.f_regency;
    ps->shape = fr.shape;
    ps->key = fr.key;
    if (req->wait_ms > 0) {
        /* Wait at most 60 s, and leave time before the call's deadline to
         * query once more and answer. */
        int64_t left = call_ms_left(c);
        int64_t margin = left / 10 < 1000 ? left / 10 : 1000;
        int64_t ms = req->wait_ms > PULL_WAIT_MAX_MS ? PULL_WAIT_MAX_MS : req->wait_ms;
        if (ms > left - margin)
            ms = left - margin;
        if (ms > 0)
            ps->wait_until_ns = uv_hrtime() + (uint64_t)ms * 1000000;
    }
    ps->next = pulls[pull_bucket(c)];
    pulls[pull_bucket(c)] = ps;
    call_on_free(c, pull_forget, ps);
    pull_query(c);
}

/* ---------------------------------------------------------------- stream */

/*
 * StreamChanges: the feed of PullChanges on one open server stream
 * (METHOD_STREAM). The catch-up goes out in messages of up to `limit`
 * records, then each change as it commits: the stream parks with
 * call_wait_change until the NOTIFY of a commit that concerns the caller
 * (as a long poll does) and reads the feed again. Every message carries
 * its records and the cursor after them; docs/SYNC.md ("Stream") has the
 * rules and why nothing is lost or repeated across messages.
 *
 * From the empty cursor the catch-up reads the records themselves, not the
 * feed (the "snapshot" phase): every record the caller may read now, in id
 * order, from sentra_pull, then the feed from the position below the
 * horizon of the first page's snapshot (the "tail"). Walking the feed
 * instead joins every change row to its record and sorts each page twice,
 * a third of the speed, to reach the same records. While the snapshot
 * phase lasts, the cursor of a message names the tail and the next id
 * ("v2:<txid>:<seq>:<id>"), so that a stream resumed from it goes on with
 * the ids not yet sent. A stream that names kinds has no snapshot phase:
 * it walks the feed from its cursor, the empty one too, with the pull
 * statement of those kinds, so that it gives exactly what PullChanges
 * with the same kinds gives (docs/SYNC.md, "Stream").
 *
 * Flow control: a message is handed to the transport as one call_send();
 * when it returns 1 (the client does not read fast enough) the stream
 * stops until call_on_writable(). The next page's query is sent as soon as
 * a page is encoded, before it is sent, so the database reads the next page
 * while this one travels and the client decodes it; a page
 * that arrives while the stream is paused is encoded and held (one at
 * most), and no further query is sent until it has gone.
 *
 * Memory: nothing per message comes from call memory (a stream may last
 * for days): the records are encoded into buffers the stream reuses, as
 * protobuf wire bytes (sentra__pull_wire), attached to the message as
 * unknown fields of number 1 (protobuf-c packs them verbatim, so every
 * transport sends them as the repeated `changes`); with kinds, each
 * Record is built as a pull builds it, packed at once and its call memory
 * given back (call_mem_release), sent as field 4, `records`.
 */

#define STREAM_LIMIT_DEFAULT PULL_LIMIT_MAX
/* While caught up, re-read the feed this often even without a NOTIFY
 * (one lost with the listening connection is answered by waking every
 * waiter; this only bounds how long anything else could keep it parked). */
#define STREAM_RECHECK_MS 30000

enum { STREAM_SNAPSHOT, STREAM_FEED };

/* The snapshot phase's statements. $1 role, $2 region, $3 the first id to
 * read, $4 limit, $5 filter province, $6 filter regency, $7 the region key
 * of the keyed shapes, $8 the caller's token id. The first row is the
 * page's meta: NULL record columns, the tail (the last feed position below
 * this statement's horizon; NULL when the feed is empty) and whether the
 * token is still valid (StreamChanges re-checks it with every page: a
 * stream outlives the check of its start). Then one row per record: its
 * id, version and packed text, the meta columns NULL (printing them for
 * every row cost a tenth of the statement). Only live records the caller may read: a client
 * starting from the empty cursor holds nothing that a tombstone would
 * delete. Keyed shapes start from sentra's regional indexes. */
enum { SNAP_ID, SNAP_VERSION, SNAP_PACKED, SNAP_TAIL_TXID, SNAP_TAIL_SEQ, SNAP_LIVE, SNAP_NCOLS };

#define STREAM_TOKEN_LIVE \
    "(SELECT count(*) FROM api_token a WHERE a.id = $8::uuid AND a.revoked_at IS NULL) = 1"

#define SNAP_STMT(page) \
    "WITH h AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)," \
    " m AS MATERIALIZED (SELECT t.txid, t.seq, " STREAM_TOKEN_LIVE " AS live," \
    " $7::text AS k FROM h LEFT JOIN LATERAL (SELECT c.txid, c.seq FROM sentra_change c" \
    " WHERE c.txid < h.xmin ORDER BY c.txid DESC, c.seq DESC LIMIT 1) t ON true)" \
    " SELECT NULL::uuid, NULL::bigint, NULL::text, m.txid, m.seq, m.live FROM m" \
    " UNION ALL" \
    " SELECT r.sentra_id, r.version, r.packed, NULL, NULL, NULL" \
    " FROM m CROSS JOIN LATERAL (" page ") r WHERE m.live"

#define SNAP_VISIBLE " AND NOT p.deleted AND sync_visible($1, $2, $5, $6, p.regency_code)"
#define SNAP_PAGE_KEYED(col) \
    "SELECT p.sentra_id, p.version, p.packed FROM sentra s" \
    " JOIN sentra_pull p ON p.sentra_id = s.id" \
    " WHERE s." col " = m.k AND s.deleted_at IS NULL AND s.id >= $3::uuid" SNAP_VISIBLE \
    " ORDER BY s.id LIMIT $4::int"

static db_stmt_t snap_stmts[3] = {
    [PULL_ALL] = {SNAP_STMT("SELECT p.sentra_id, p.version, p.packed FROM sentra_pull p"
                            " WHERE p.sentra_id >= $3::uuid" SNAP_VISIBLE
                            " ORDER BY p.sentra_id LIMIT $4::int"), 0, 0},
    [PULL_REGENCY] = {SNAP_STMT(SNAP_PAGE_KEYED("regency_code")), 0, 0},
    [PULL_PROVINCE] = {SNAP_STMT(SNAP_PAGE_KEYED("province_code")), 0, 0},
};

/* The feed phase: the pull statement with the token check as a last
 * column ($9; $8 is named in every shape so that its type is known). */
#define PM_LIVE (PM_KIND + 1)
#define FEED_TOKEN_CTE "tok AS MATERIALIZED (SELECT " STREAM_TOKEN_LIVE_9 " AS live, $8::text AS k),"
#define STREAM_TOKEN_LIVE_9 \
    "(SELECT count(*) FROM api_token a WHERE a.id = $9::uuid AND a.revoked_at IS NULL) = 1"
#define FEED_TOKEN_COL ", (SELECT live FROM tok)"

static db_stmt_t feed_stmts[3] = {
    [PULL_ALL] = {PULL_STMT_X(PULL_PAGE_ALL(PULL_KIND_SENTRA), FEED_TOKEN_CTE, FEED_TOKEN_COL), 0, 0},
    [PULL_REGENCY] = {PULL_STMT_X(PULL_PAGE_KEYED(KEY_NEW_REGENCY, KEY_OLD_REGENCY, PULL_KIND_SENTRA),
                                  FEED_TOKEN_CTE, FEED_TOKEN_COL), 0, 0},
    [PULL_PROVINCE] = {PULL_STMT_X(PULL_PAGE_KEYED(KEY_NEW_PROVINCE, KEY_OLD_PROVINCE, PULL_KIND_SENTRA),
                                   FEED_TOKEN_CTE, FEED_TOKEN_COL), 0, 0},
};

/* The same when kinds are named: the kinds as $10 (a smallint[]), each
 * record as its kind prints it (PULL_STMT_KINDS). */
static db_stmt_t feed_kinds_stmts[3] = {
    [PULL_ALL] = {PULL_STMT_KINDS_X(PULL_PAGE_ALL(PULL_KIND_ANY("$10")), FEED_TOKEN_CTE,
                                    FEED_TOKEN_COL), 0, 0},
    [PULL_REGENCY] = {PULL_STMT_KINDS_X(PULL_PAGE_KEYED(KEY_NEW_REGENCY, KEY_OLD_REGENCY,
                                                        PULL_KIND_ANY("$10")),
                                        FEED_TOKEN_CTE, FEED_TOKEN_COL), 0, 0},
    [PULL_PROVINCE] = {PULL_STMT_KINDS_X(PULL_PAGE_KEYED(KEY_NEW_PROVINCE, KEY_OLD_PROVINCE,
                                                         PULL_KIND_ANY("$10")),
                                         FEED_TOKEN_CTE, FEED_TOKEN_COL), 0, 0},
};

/* One message being built or held: the records' wire bytes (each with its
 * length prefix: the data of an unknown field of number 1), its cursor and
 * whether more is servable now. */
typedef struct stream_msg {
    sentra_wbuf_t rec;           /* the records, one after the other */
    size_t *off;                 /* where each starts in rec */
    size_t n, cap;               /* records, room in off */
    char cursor[CURSOR_MAX];     /* next_cursor */
    int more;
} stream_msg_t;

typedef struct stream_state {
    call_t *c;
    int phase;                   /* STREAM_SNAPSHOT, STREAM_FEED */
    uint64_t txid;               /* feed: the position covered; snapshot: the tail */
    int64_t seq;
    int tail_known;              /* snapshot: txid/seq hold the tail (first page or cursor) */
    char next_id[37];            /* snapshot: the first id not sent yet */
    int limit;                   /* records per message */
    const char *f_province;      /* filter (request memory), or NULL */
    const char *f_regency;
    int shape;                   /* PULL_* */
    const char *key;             /* the region of a keyed shape */
    unsigned kinds;              /* as in pull_state_t: 0, sentra only in `changes`
                                  * (field 1); else those kinds in `records` (4) */
    const char *kinds_param;     /* the same as a smallint[] literal (call memory) */
    int querying;                /* a page's query is out */
    int paused;                  /* call_send said full: waiting for writable */
    int held;                    /* msg[1] holds a page to send when writable */
    int more;                    /* the last page said more is servable */
    int pending;                 /* the last feed page saw changes above its horizon */
    int sent_more;               /* `more` of the last message sent (1 before any) */
    char sent_cursor[CURSOR_MAX];/* the cursor of the last message sent ("" before any) */
    uint64_t queried_ns;         /* when the last page's query was sent */
    uint64_t mark;               /* call_change_mark() when that query left: a change
                                  * announced since ends the next wait at once */
    stream_msg_t msg[2];         /* [0] built and sent at once, [1] held while paused */
    pull_pos_t *pos;             /* feed rows in feed order (room for pos_cap) */
    size_t pos_cap;
    ProtobufCMessageUnknownField *uf; /* the records as unknown fields of a message */
    size_t uf_cap;
} stream_state_t;

static void stream_free(void *arg)
{
    stream_state_t *ss = arg;
    for (int i = 0; i < 2; i++) {
        free(ss->msg[i].rec.p);
        free(ss->msg[i].off);
    }
    free(ss->pos);
    free(ss->uf);
    free(ss);
}

/* A v2 cursor: the snapshot phase at (tail txid, tail seq, next id). */
static void cursor_format_snap(char *out, uint64_t txid, int64_t seq, const char *id)
{
    char raw[CURSOR_RAW_MAX], hex[33];
    int k = 0;
    for (const char *p = id; *p && k < 32; p++)
        if (*p != '-')
            hex[k++] = *p;
    hex[k] = '\0';
    int n = snprintf(raw, sizeof raw, "v2:%" PRIu64 ":%" PRId64 ":%s", txid, seq, hex);
    cursor_hex(out, raw, n);
}

/* Parses a v2 cursor into ss (tail and next id; ss NULL: only checks);
 * 0 when tok is not one. */
static int cursor_decode_snap(const char *tok, void *arg)
{
    stream_state_t *ss = arg;
    char raw[CURSOR_RAW_MAX];
    uint64_t t, s;

    if (tok == NULL || !cursor_unhex(tok, raw) || strncmp(raw, "v2:", 3) != 0)
        return 0;
    char *c1 = strchr(raw + 3, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL || !parse_dec(raw + 3, c1, &t) || !parse_dec(c1 + 1, c2, &s) ||
        s > INT64_MAX || strlen(c2 + 1) != 32)
        return 0;
    const char *h = c2 + 1;
    char id[37];
    int k = 0;
    for (int i = 0; i < 32; i++) {
        if (h[i] < '0' || (h[i] > '9' && h[i] < 'a') || h[i] > 'f')
            return 0;
        if (i == 8 || i == 12 || i == 16 || i == 20)
            id[k++] = '-';
        id[k++] = h[i];
    }
    id[k] = '\0';
    if (ss == NULL)
        return 1;               /* only checked (PullChanges) */
    memcpy(ss->next_id, id, sizeof id);
    ss->txid = t;
    ss->seq = (int64_t)s;
    ss->tail_known = 1;
    ss->phase = STREAM_SNAPSHOT;
    return 1;
}

/* The id after id (UUID text, lower case) into out; 0 when id is the
 * last one there can be. */
static int uuid_next(const char *id, char *out)
{
    memcpy(out, id, 37);
    for (int i = 35; i >= 0; i--) {
        if (out[i] == '-')
            continue;
        if (out[i] == 'f') {
            out[i] = '0';
            continue;
        }
        out[i] = out[i] == '9' ? 'a' : (char)(out[i] + 1);
        return 1;
    }
    return 0;
}

static void stream_next(call_t *c);
static void stream_query(call_t *c);

/* Sends m (records and cursor) as one StreamChangesResponse. Returns what
 * call_send does. */
static int stream_emit(stream_state_t *ss, stream_msg_t *m)
{
    Sentra__V1__StreamChangesResponse resp = SENTRA__V1__STREAM_CHANGES_RESPONSE__INIT;

    if (m->n > ss->uf_cap) {
        free(ss->uf);
        ss->uf_cap = m->n;
        ss->uf = malloc(ss->uf_cap * sizeof *ss->uf);
        if (ss->uf == NULL)
            abort();
    }
    for (size_t i = 0; i < m->n; i++) {
        size_t end = i + 1 < m->n ? m->off[i + 1] : m->rec.len;
        ss->uf[i].tag = ss->kinds ? 4 : 1;
        ss->uf[i].wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
        ss->uf[i].len = end - m->off[i];
        ss->uf[i].data = m->rec.p + m->off[i];
    }
    resp.base.n_unknown_fields = (unsigned)m->n;
    resp.base.unknown_fields = ss->uf;
    resp.next_cursor = m->cursor;
    resp.more = m->more;
    int r;
    if (ss->c->codec == CALL_CODEC_JSON) {
        /* A JSON printer knows fields by their descriptors, not unknown
         * fields: give it the message decoded (Connect with JSON only). */
        size_t n = protobuf_c_message_get_packed_size(&resp.base);
        uint8_t *buf = malloc(n ? n : 1);
        if (buf == NULL)
            abort();
        protobuf_c_message_pack(&resp.base, buf);
        ProtobufCMessage *full = protobuf_c_message_unpack(&sentra__v1__stream_changes_response__descriptor,
                                                           NULL, n, buf);
        free(buf);
        if (full == NULL)
            abort();            /* our own bytes: cannot fail but for memory */
        r = call_send(ss->c, full);
        protobuf_c_message_free_unpacked(full, NULL);
    } else {
        r = call_send(ss->c, &resp.base);
    }
    if (r >= 0) {
        ss->sent_more = m->more;
        memcpy(ss->sent_cursor, m->cursor, sizeof ss->sent_cursor);
    }
    return r;
}

/* The most record bytes in one message: about 3 MiB, as a pull's page,
 * and well below the frame limit when --max-frame is set lower (a message
 * over it could not be sent). */
static size_t stream_max_bytes(const call_t *c)
{
    size_t half = c->srv->cfg->max_frame / 2;
    return half < PULL_MAX_BYTES ? half : PULL_MAX_BYTES;
}

/* Appends a record (its wire bytes behind a length prefix) to m. */
static size_t msg_add(stream_msg_t *m, const char *id, const char *version,
                      const char *deleted, const char *packed, size_t plen)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 1024;
        m->off = realloc(m->off, m->cap * sizeof *m->off);
        if (m->off == NULL)
            abort();
    }
    size_t at = m->rec.len;
    m->off[m->n++] = at;
    /* Room for a length prefix of 4 bytes, then the record; the prefix is
     * moved up against it once its length is known. */
    sentra__wbuf_reserve(&m->rec, 4);
    m->rec.len += 4;
    size_t n = sentra__pull_wire(&m->rec, id, version, deleted, packed, plen);
    uint8_t len[5];
    size_t k = 0;
    for (size_t v = n; ; v >>= 7) {
        len[k++] = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
        if (v < 0x80)
            break;
    }
    memmove(m->rec.p + at + k, m->rec.p + at + 4, n);
    memcpy(m->rec.p + at, len, k);
    m->rec.len = at + k + n;
    return k + n + 1;            /* with its tag, as it will be sent */
}

/* Appends rec (a Record) to m as its wire bytes behind a length prefix. */
static size_t msg_add_record(stream_msg_t *m, const ProtobufCMessage *rec)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 1024;
        m->off = realloc(m->off, m->cap * sizeof *m->off);
        if (m->off == NULL)
            abort();
    }
    size_t n = protobuf_c_message_get_packed_size(rec), k = 0;
    uint8_t len[10];
    for (size_t v = n; ; v >>= 7) {
        len[k++] = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
        if (v < 0x80)
            break;
    }
    m->off[m->n++] = m->rec.len;
    sentra__wbuf_reserve(&m->rec, k + n);
    memcpy(m->rec.p + m->rec.len, len, k);
    protobuf_c_message_pack(rec, (uint8_t *)m->rec.p + m->rec.len + k);
    m->rec.len += k + n;
    return k + n + 1;
}

static void msg_reset(stream_msg_t *m)
{
    m->rec.len = 0;
    m->n = 0;
}

/* Ends the stream when the server is stopping: UNAVAILABLE, so that the
 * client resumes from its last cursor on another connection. */
static int stream_stopping(call_t *c)
{
    if (!call_draining(c))
        return 0;
    call_fail(c, SENTRA_UNAVAILABLE, "server shutting down; resume from the last cursor received");
    return 1;
}

/* Builds the message of a snapshot page into m; moves ss on. Returns 0,
 * or -1 when the call was answered. */
static int snap_page(call_t *c, stream_state_t *ss, PGresult *res, stream_msg_t *m)
{
    int n = PQntuples(res);

    if (n < 1 || PQnfields(res) < SNAP_NCOLS || !PQgetisnull(res, 0, SNAP_ID) ||
        PQgetisnull(res, 0, SNAP_LIVE)) {
        call_fail(c, SENTRA_INTERNAL, "stream: unexpected result shape");
        return -1;
    }
    if (PQgetvalue(res, 0, SNAP_LIVE)[0] != 't') {
        call_fail(c, SENTRA_UNAUTHENTICATED, "token revoked");
        return -1;
    }
    if (!ss->tail_known) {
        ss->txid = col_u64(res, 0, SNAP_TAIL_TXID);
        ss->seq = (int64_t)col_u64(res, 0, SNAP_TAIL_SEQ);
        ss->tail_known = 1;
    }
    /* Records in rows 1 .. n-1, in id order (the page's ORDER BY; checked,
     * as is that UNION ALL kept the meta row first). */
    int sorted = 1;
    for (int i = 1; i < n && sorted; i++)
        sorted = !PQgetisnull(res, i, SNAP_ID) &&
                 (i == 1 || strcmp(PQgetvalue(res, i - 1, SNAP_ID), PQgetvalue(res, i, SNAP_ID)) < 0);
    if (!sorted) {
        call_fail(c, SENTRA_INTERNAL, "stream: page not in id order");
        return -1;
    }
    msg_reset(m);
    size_t bytes = 0, max = stream_max_bytes(c);
    int row;
    for (row = 1; row < n; row++) {
        if (m->n > 0 && bytes > max)
            break;              /* the rest next time, from its id */
        bytes += msg_add(m, PQgetvalue(res, row, SNAP_ID), PQgetvalue(res, row, SNAP_VERSION),
                         "f", PQgetvalue(res, row, SNAP_PACKED),
                         (size_t)PQgetlength(res, row, SNAP_PACKED));
    }
    int done = row == n && n - 1 < ss->limit;
    if (!done && row > 1 && !uuid_next(PQgetvalue(res, row - 1, SNAP_ID), ss->next_id))
        done = 1;               /* the last possible id was sent */
    if (done) {
        ss->phase = STREAM_FEED;
        cursor_format(m->cursor, ss->txid, ss->seq);
    } else {
        cursor_format_snap(m->cursor, ss->txid, ss->seq, ss->next_id);
    }
    /* The feed after the tail may hold changes made during the catch-up:
     * the next page says whether the client has everything. */
    m->more = 1;
    ss->more = 1;
    return 0;
}

/* Builds the message of a feed page into m (as pull_done reads a page). */
static int feed_page(call_t *c, stream_state_t *ss, PGresult *res, stream_msg_t *m)
{
    int n = PQntuples(res);
    uint64_t last_txid = ss->txid;
    int64_t last_seq = ss->seq;

    if (n < 1 || PQnfields(res) < PULL_META_COL + PM_LIVE + 1) {
        call_fail(c, SENTRA_INTERNAL, "stream: unexpected result shape");
        return -1;
    }
    if (PQgetvalue(res, 0, PULL_META_COL + PM_LIVE)[0] != 't') {
        call_fail(c, SENTRA_UNAUTHENTICATED, "token revoked");
        return -1;
    }
    if (ss->txid != 0 && ss->txid >= col_u64(res, 0, PULL_META_COL + PM_XMAX)) {
        call_fail(c, SENTRA_OUT_OF_RANGE,
                  "cursor is ahead of this database; stream again from an empty cursor");
        return -1;
    }
    int more = PQgetvalue(res, 0, PULL_META_COL + PM_MORE)[0] == 't';
    ss->pending = PQgetvalue(res, 0, PULL_META_COL + PM_PENDING)[0] == 't';
    if (PQgetisnull(res, 0, SENTRA_PULL_ID))
        n = 0;
    if ((size_t)n > ss->pos_cap) {
        free(ss->pos);
        ss->pos_cap = (size_t)n;
        ss->pos = malloc(ss->pos_cap * sizeof *ss->pos);
        if (ss->pos == NULL)
            abort();
    }
    pull_order_into(ss->pos, res, n);
    msg_reset(m);
    size_t bytes = 0, max = stream_max_bytes(c);
    int row;
    for (row = 0; row < n; row++) {
        if (m->n > 0 && bytes > max) {
            more = 1;
            break;
        }
        int r = ss->pos[row].row;
        if (ss->kinds != 0) {
            /* A record of any kind, built as a pull builds it and packed
             * at once: its call memory is given back (a stream lasts). */
            void *mark = call_mem_mark(c);
            ProtobufCMessage *rec = pull_record(c, res, r);
            if (rec == NULL) {
                call_mem_release(c, mark);
                call_fail(c, SENTRA_INTERNAL, "stream: unreadable record");
                return -1;
            }
            bytes += msg_add_record(m, &rec__record(c, (int)col_u64(res, r, PULL_META_COL + PM_KIND),
                                                    rec)->base);
            call_mem_release(c, mark);
            last_txid = ss->pos[row].txid;
            last_seq = ss->pos[row].seq;
            continue;
        }
        bytes += msg_add(m, PQgetvalue(res, r, SENTRA_PULL_ID), PQgetvalue(res, r, SENTRA_PULL_VERSION),
                         PQgetvalue(res, r, SENTRA_PULL_DELETED),
                         PQgetisnull(res, r, SENTRA_PULL_PACKED) ? NULL
                                                                 : PQgetvalue(res, r, SENTRA_PULL_PACKED),
                         (size_t)PQgetlength(res, r, SENTRA_PULL_PACKED));
        last_txid = ss->pos[row].txid;
        last_seq = ss->pos[row].seq;
    }
    if (!more && row >= n && !PQgetisnull(res, 0, PULL_META_COL + PM_TAIL_TXID)) {
        uint64_t tail_txid = col_u64(res, 0, PULL_META_COL + PM_TAIL_TXID);
        int64_t tail_seq = (int64_t)col_u64(res, 0, PULL_META_COL + PM_TAIL_SEQ);
        if (pos_after(tail_txid, tail_seq, last_txid, last_seq)) {
            last_txid = tail_txid;
            last_seq = tail_seq;
        }
    }
    ss->txid = last_txid;
    ss->seq = last_seq;
    ss->more = more;
    m->more = more;
    cursor_format(m->cursor, ss->txid, ss->seq);
    return 0;
}

/* Whether m is worth a message: records, a cursor that moved (past
 * changes outside the caller's scope), or the news of being caught up. */
static int msg_worth(const stream_state_t *ss, const stream_msg_t *m)
{
    return m->n > 0 || strcmp(m->cursor, ss->sent_cursor) != 0 || (ss->sent_more && !m->more);
}

static void stream_writable(call_t *c)
{
    stream_state_t *ss = c->handler_state;
    ss->paused = 0;
    if (ss->held) {
        ss->held = 0;
        int r = stream_emit(ss, &ss->msg[1]);
        if (r < 0)
            return;
        if (r == 1) {
            ss->paused = 1;
            call_on_writable(c, stream_writable);
            return;
        }
    }
    stream_next(c);
}

static void stream_done(call_t *c, PGresult *res)
{
    stream_state_t *ss = c->handler_state;
    int was_snapshot = ss->phase == STREAM_SNAPSHOT;

    ss->querying = 0;
    if (call_db_error(c, res))
        return;
    stream_msg_t *m = &ss->msg[ss->paused ? 1 : 0];
    if ((was_snapshot ? snap_page(c, ss, res, m) : feed_page(c, ss, res, m)) != 0)
        return;
    if (!msg_worth(ss, m)) {
        stream_next(c);
        return;
    }
    if (ss->paused) {
        ss->held = 1;           /* sent when the transport has room */
        return;
    }
    /* The next page is read while this one is encoded and sent. */
    if (ss->more && !call_draining(c))
        stream_query(c);
    int r = stream_emit(ss, m);
    if (r < 0)
        return;
    if (r == 1) {
        ss->paused = 1;
        call_on_writable(c, stream_writable);
        return;
    }
    if (!ss->querying)
        stream_next(c);
}

static void stream_query(call_t *c)
{
    stream_state_t *ss = c->handler_state;
    char txid[24], seq[24], limit[16];
    const char *v[10];
    int n;

    snprintf(limit, sizeof limit, "%d", ss->limit);
    v[0] = auth_role_name(c->auth.role);
    v[1] = c->auth.region;
    ss->querying = 1;
    ss->queried_ns = uv_hrtime();
    /* Taken as the query leaves: a change that commits after its snapshot
     * may be announced before its result comes (the long poll's rule). */
    ss->mark = call_change_mark(c);
    if (ss->phase == STREAM_SNAPSHOT) {
        v[2] = ss->next_id;
        v[3] = limit;
        v[4] = ss->f_province;
        v[5] = ss->f_regency;
        v[6] = ss->key;
        v[7] = c->auth.token_id;
        n = 8;
        call_query_read(c, &snap_stmts[ss->shape], n, v, stream_done);
        return;
    }
    snprintf(txid, sizeof txid, "%" PRIu64, ss->txid);
    snprintf(seq, sizeof seq, "%" PRId64, ss->seq);
    v[2] = txid;
    v[3] = seq;
    v[4] = limit;
    v[5] = ss->f_province;
    v[6] = ss->f_regency;
    v[7] = ss->key;
    v[8] = c->auth.token_id;
    if (ss->kinds != 0) {
        v[9] = ss->kinds_param;
        call_query_read(c, &feed_kinds_stmts[ss->shape], 10, v, stream_done);
        return;
    }
    call_query_read(c, &feed_stmts[ss->shape], 9, v, stream_done);
}

static void stream_wake(call_t *c)
{
    stream_state_t *ss = c->handler_state;
    uint64_t now = uv_hrtime(), next = ss->queried_ns + PULL_MIN_INTERVAL_MS * 1000000ull;

    if (stream_stopping(c))
        return;
    if (now < next) {
        /* Woken too soon after the last query: wait out the interval. */
        call_wait_change(c, call_change_mark(c), (int)((next - now) / 1000000) + 1, stream_wake);
        return;
    }
    stream_query(c);
}

/* Neither a query out nor a message held: read on, or wait for a change. */
static void stream_next(call_t *c)
{
    stream_state_t *ss = c->handler_state;

    if (ss->querying || ss->paused || stream_stopping(c))
        return;
    if (ss->phase == STREAM_SNAPSHOT || ss->more) {
        stream_query(c);
        return;
    }
    call_wait_change(c, ss->mark, ss->pending ? PULL_PENDING_RETRY_MS : STREAM_RECHECK_MS, stream_wake);
}

void h_stream_changes(call_t *c)
{
    const Sentra__V1__StreamChangesRequest *req = (const void *)c->msg;
    stream_state_t *ss = calloc(1, sizeof *ss);
    feed_req_t fr;

    if (ss == NULL)
        abort();
    ss->c = c;
    call_on_free(c, stream_free, ss);
    if (!feed_setup(c, req->cursor, req->limit, req->filter, req->kinds, req->n_kinds,
                    "StreamChanges", cursor_decode_snap, ss, &fr))
        return;
    if (fr.kinds != 0) {
        /* Kinds named: the catch-up walks the feed, from its beginning for
         * the empty cursor and for a catch-up cursor (v2, which names
         * sentra ids only), exactly as PullChanges with these kinds does,
         * so that both give the same records in the same order. */
        ss->phase = STREAM_FEED;
        ss->txid = fr.cursor_ok ? fr.txid : 0;
        ss->seq = fr.cursor_ok ? fr.seq : 0;
        ss->tail_known = 0;
        ss->kinds = fr.kinds;
        ss->kinds_param = call_strdup(c, fr.kinds_param);
    } else if (fr.cursor_ok) {
        ss->txid = fr.txid;
        ss->seq = fr.seq;
        if (req->cursor == NULL || req->cursor[0] == '\0') {
            ss->phase = STREAM_SNAPSHOT;
            memcpy(ss->next_id, "00000000-0000-0000-0000-000000000000", 37);
        } else {
            ss->phase = STREAM_FEED;
        }
    }
    ss->limit = fr.limit == 0 ? STREAM_LIMIT_DEFAULT : fr.limit;
    ss->f_province = fr.f_province;
    ss->f_regency = fr.f_regency;
    ss->shape = fr.shape;
    ss->key = fr.key;
    ss->sent_more = 1;
    ss->more = 1;
    c->handler_state = ss;
    stream_next(c);
}

/* ---------------------------------------------------------------- push */

/* A growing buffer for the batch's JSON (malloc'ed: it is freed as soon as
 * call_query has copied it). */
typedef struct jbuf {
    char *p;
    size_t len, cap;
} jbuf_t;

static void jb_reserve(jbuf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        abort();
    b->p = p;
    b->cap = cap;
}

static void jb_raw(jbuf_t *b, const char *s)
{
    size_t n = strlen(s);
    jb_reserve(b, n);
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

/* A JSON string (escaped), or null for NULL. */
static void jb_str(jbuf_t *b, const char *s)
{
    if (s == NULL) {
        jb_raw(b, "null");
        return;
    }
    jb_reserve(b, 6 * strlen(s) + 2);
    int n = sentra__json_string(b->p, b->cap, b->len, s);
    if (n < 0)
        abort();                /* cannot happen: reserved 6 bytes per byte */
    b->len = (size_t)n;
}

/* The JSON keys of the record's fields, in SENTRA_PARAM_* order (the names
 * sync_push reads). */
static const char *const param_keys[SENTRA_NPARAMS] = {
    [SENTRA_PARAM_REGENCY] = "regency", [SENTRA_PARAM_DISTRICT] = "district",
    [SENTRA_PARAM_VILLAGE] = "village", [SENTRA_PARAM_ADDRESS] = "address",
    [SENTRA_PARAM_LAT] = "lat", [SENTRA_PARAM_LON] = "lon",
    [SENTRA_PARAM_NAME] = "name", [SENTRA_PARAM_COMMODITY] = "commodity",
    [SENTRA_PARAM_MAIN_PRODUCT] = "main_product", [SENTRA_PARAM_KBLI_CODE] = "kbli_code",
    [SENTRA_PARAM_KBLI_VERSION] = "kbli_version", [SENTRA_PARAM_SECTOR_GROUP] = "sector_group",
    [SENTRA_PARAM_STATUS] = "status", [SENTRA_PARAM_FORMED_ON] = "formed_on",
    [SENTRA_PARAM_DECREE_NUMBER] = "decree_number", [SENTRA_PARAM_DECREE_DATE] = "decree_date",
    [SENTRA_PARAM_DECREE_OFFICIAL] = "decree_official", [SENTRA_PARAM_CONTACT_NAME] = "contact_name",
    [SENTRA_PARAM_CONTACT_PHONE] = "contact_phone", [SENTRA_PARAM_FIGURES] = "figures",
};

/* Collects one mutation's violations as "field: reason" lines, at most
 * PUSH_MAX_VIOLATIONS of them: they are stored with the outcome for 30
 * days (sync_mutation), so a mutation of 25,000 bad values must not store
 * 25,000 lines. */
typedef struct reject_buf {
    jbuf_t b;
    const char *prefix;          /* "sentra." for the record's fields */
    int lines;                   /* lines in b */
    int more;                    /* violations past PUSH_MAX_VIOLATIONS */
} reject_buf_t;

static void reject_add(void *arg, const char *field, const char *reason)
{
    reject_buf_t *r = arg;
    if (field == NULL || r->lines >= PUSH_MAX_VIOLATIONS) {
        r->more++;              /* counted (validate.c did not format it) */
        return;
    }
    if (r->b.len)
        jb_raw(&r->b, "\n");
    jb_raw(&r->b, r->prefix);
    jb_raw(&r->b, field);
    jb_raw(&r->b, ": ");
    jb_raw(&r->b, reason);
    r->lines++;
}

#define REJECT(field, reason) (reject_add(&rj, (field), (reason)), vc.count++)

/* The record a mutation carries: its kind (RecordKind; 1 for sentra) and
 * message, or 0 when it carries none; *extra counts the records beyond
 * the first (a mutation carries one). */
static int mutation_record(const Sentra__V1__Mutation *m, const ProtobufCMessage **rec,
                           int *extra)
{
    const ProtobufCMessage *set[] = {
        m->sentra ? &m->sentra->base : NULL, m->member ? &m->member->base : NULL,
        m->institution ? &m->institution->base : NULL, m->obstacle ? &m->obstacle->base : NULL,
        m->assistance ? &m->assistance->base : NULL,
    };
    int kind = 0;
    *rec = NULL;
    *extra = 0;
    for (int i = 0; i < 5; i++) {
        if (set[i] == NULL)
            continue;
        if (kind == 0) {
            kind = i + 1;
            *rec = set[i];
        } else {
            (*extra)++;
        }
    }
    return kind;
}

/* Checks mutation m as the service does before sync_push, collecting its
 * violations in *out (NULL: count only; else the caller frees out->b.p).
 * Returns how many it has. */
static int mutation_check(const Sentra__V1__Mutation *m, reject_buf_t *out)
{
    reject_buf_t rj = {{0}, "", 0, 0};
    validate_ctx_t vc = {.today = validate_today(), .report = reject_add, .arg = &rj,
                         .max = PUSH_MAX_VIOLATIONS};
    const ProtobufCMessage *rec;
    int extra, kind = mutation_record(m, &rec, &extra);
    const rec_kind_t *k = rec__kind(kind);
    const Sentra__V1__Sentra *s = m->sentra;

    if (m->base_version < 0)
        REJECT("base_version", "must not be negative");
    if (extra > 0)
        REJECT("sentra", "a mutation carries one record: one of sentra, member, institution, "
                         "obstacle and assistance");
    if (m->op == SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT) {
        if (rec == NULL) {
            REJECT("sentra", "is required");
        } else if (k != NULL) {
            /* The client chooses the key (required), so that the outcome
             * names a record the client knows. */
            char prefix[32];
            snprintf(prefix, sizeof prefix, "%s.", k->name);
            rj.prefix = prefix;
            k->validate(&vc, rec, REC_ALL, VR_ID | VR_SENTRA);
            rj.prefix = "";
        } else {
            rj.prefix = "sentra.";
            validate_sentra(&vc, s, VF_ALL, 1);
            rj.prefix = "";
        }
    } else if (m->op == SENTRA__V1__MUTATION_OP__MUTATION_OP_DELETE) {
        const char *key = k ? rec__str(rec, k->key) : s ? s->id : NULL;
        if (rec == NULL || !validate_uuid(key)) {
            char field[40];
            snprintf(field, sizeof field, "%s.%s", k ? k->name : "sentra", k ? k->key : "id");
            REJECT(field, rec && nonempty(key) ? "must be a UUID" : "is required");
        }
        if (m->base_version <= 0)
            REJECT("base_version", "is required to delete (the version last seen)");
    } else {
        REJECT("op", "must be MUTATION_OP_UPSERT or MUTATION_OP_DELETE");
    }
    if (out != NULL)
        *out = rj;
    else
        free(rj.b.p);
    return vc.count;
}

/* Appends mutation m (number idx of the batch) as a JSON object: refused by
 * the checks here (refused: "reject" with its violations, then the lines of
 * the region check regions (may be NULL) for idx, read from *row on), or
 * the record's fields as sync_push reads them. */
static void push_mutation_json(call_t *c, jbuf_t *b, const Sentra__V1__Mutation *m,
                               size_t idx, int refused, PGresult *regions, int *row)
{
    reject_buf_t rj;
    const Sentra__V1__Sentra *s = m->sentra;

    jb_raw(b, "{\"m\":");
    jb_str(b, m->mutation_id);
    if (refused) {
        const ProtobufCMessage *rrec;
        int rextra, rkind = mutation_record(m, &rrec, &rextra);
        if (rkind > 1)
            jb_raw(b, call_printf(c, ",\"kind\":%d", rkind));
        mutation_check(m, &rj);
        rj.prefix = "sentra.";
        while (regions != NULL && *row < PQntuples(regions) &&
               strtoul(PQgetvalue(regions, *row, REGION_CHECK_COL_INDEX), NULL, 10) == idx) {
            reject_add(&rj, PQgetvalue(regions, *row, REGION_CHECK_COL_FIELD),
                       PQgetvalue(regions, *row, REGION_CHECK_COL_REASON));
            (*row)++;
        }
        if (rj.more > 0) {
            jb_raw(&rj.b, "\n");
            jb_raw(&rj.b, call_printf(c, "and %d more violations not listed", rj.more));
        }
        jb_raw(b, ",\"reject\":");
        jb_str(b, rj.b.p ? rj.b.p : "invalid");
        jb_raw(b, "}");
        free(rj.b.p);
        return;
    }
    jb_raw(b, ",\"op\":");
    jb_raw(b, m->op == SENTRA__V1__MUTATION_OP__MUTATION_OP_DELETE ? "2" : "1");
    jb_raw(b, ",\"base\":");
    jb_raw(b, call_printf(c, "%lld", (long long)m->base_version));
    const ProtobufCMessage *rec;
    int extra;
    const rec_kind_t *k = rec__kind(mutation_record(m, &rec, &extra));
    if (k != NULL) {
        /* a record of another kind: record_apply (migrations/0013_records.sql) */
        jb_raw(b, call_printf(c, ",\"kind\":%d,\"id\":", k->kind));
        jb_str(b, rec__str(rec, k->key));
        if (m->op == SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT) {
            jb_raw(b, ",\"rec\":");
            jb_raw(b, rec__json(c, k, rec, REC_ALL, 1, NULL));
        }
        jb_raw(b, "}");
        return;
    }
    jb_raw(b, ",\"id\":");
    jb_str(b, s->id);
    if (m->op == SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT) {
        const char *v[SENTRA_NPARAMS];
        sentra__params(c, s, v);
        for (int i = 0; i < SENTRA_NPARAMS; i++) {
            jb_raw(b, ",\"");
            jb_raw(b, param_keys[i]);
            jb_raw(b, "\":");
            if (i == SENTRA_PARAM_FIGURES)
                jb_raw(b, v[i] ? v[i] : "[]");      /* already JSON */
            else
                jb_str(b, v[i]);
        }
    }
    jb_raw(b, "}");
}
#undef REJECT

/* The rows: sentra_rows columns (the current sentra of a conflict, NULL
 * otherwise; one row per figures year), then these: the kind of the
 * mutation's record, and for a conflict of another kind than sentra the
 * record as a pull prints it (NULL: a tombstone at rec_version). */
#define PUSH_COL SENTRA_NCOLS
enum { PC_IDX, PC_OUTCOME, PC_VERSION, PC_VIOLATIONS, PC_KIND, PC_PACKED, PC_REC_VERSION };

static db_stmt_t push_stmt = {
    "SELECT (p.rec).*, p.idx, p.outcome, p.version, p.violations, p.kind, p.rec_packed,"
    " p.rec_version FROM sync_push($1::uuid, $2, $3, $4, $5::boolean, $6::jsonb) p", 0, 0};

/* "field: reason" lines into FieldViolations (call memory; strings copied). */
static void parse_violations(call_t *c, const char *text, Sentra__V1__MutationResult *r)
{
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    r->violations = call_alloc(c, n * sizeof *r->violations);
    char *copy = call_strdup(c, text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        Sentra__V1__FieldViolation *fv = call_alloc(c, sizeof *fv);
        sentra__v1__field_violation__init(fv);
        char *sep = strstr(line, ": ");
        if (sep) {
            *sep = '\0';
            fv->field = line;
            fv->description = sep + 2;
        } else {
            fv->field = "";
            fv->description = line;
        }
        if (r->n_violations < n)
            r->violations[r->n_violations++] = fv;
    }
}

static void push_done(call_t *c, PGresult *res)
{
    const Sentra__V1__PushChangesRequest *req = (const void *)c->msg;
    Sentra__V1__PushChangesResponse resp = SENTRA__V1__PUSH_CHANGES_RESPONSE__INIT;
    int n, row = 0;

    if (call_db_error(c, res))
        return;
    n = PQntuples(res);
    if (PQnfields(res) < PUSH_COL + PC_REC_VERSION + 1) {
        call_fail(c, SENTRA_INTERNAL, "push: unexpected result shape");
        return;
    }
    resp.results = call_alloc(c, (req->n_mutations + 1) * sizeof *resp.results);
    while (row < n) {
        int idx = atoi(PQgetvalue(res, row, PUSH_COL + PC_IDX)), end;
        for (end = row + 1; end < n; end++)
            if (atoi(PQgetvalue(res, end, PUSH_COL + PC_IDX)) != idx)
                break;
        if (idx < 0 || (size_t)idx >= req->n_mutations || resp.n_results >= req->n_mutations) {
            call_fail(c, SENTRA_INTERNAL, "push: result for an unknown mutation");
            return;
        }
        Sentra__V1__MutationResult *r = call_alloc(c, sizeof *r);
        sentra__v1__mutation_result__init(r);
        r->mutation_id = req->mutations[idx]->mutation_id;
        r->outcome = atoi(PQgetvalue(res, row, PUSH_COL + PC_OUTCOME));
        if (!PQgetisnull(res, row, PUSH_COL + PC_VERSION))
            r->version = strtoll(PQgetvalue(res, row, PUSH_COL + PC_VERSION), NULL, 10);
        if (!PQgetisnull(res, row, PUSH_COL + PC_VIOLATIONS))
            parse_violations(c, PQgetvalue(res, row, PUSH_COL + PC_VIOLATIONS), r);
        const rec_kind_t *rk = rec__kind(atoi(PQgetvalue(res, row, PUSH_COL + PC_KIND)));
        if (rk != NULL && r->outcome == SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT) {
            /* The record of another kind than sentra, as the caller may
             * read it now, or its tombstone (its key is the mutation's). */
            const ProtobufCMessage *rec;
            int extra;
            ProtobufCMessage *cur;
            mutation_record(req->mutations[idx], &rec, &extra);
            if (!PQgetisnull(res, row, PUSH_COL + PC_PACKED))
                cur = rec__from_packed(c, rk, PQgetvalue(res, row, PUSH_COL + PC_PACKED));
            else
                cur = rec__tombstone(c, rk, rec ? rec__str(rec, rk->key) : "",
                                     PQgetisnull(res, row, PUSH_COL + PC_REC_VERSION) ? 0
                                     : strtoll(PQgetvalue(res, row, PUSH_COL + PC_REC_VERSION),
                                               NULL, 10));
            r->current_record = rec__record(c, rk->kind, cur);
        } else if (!PQgetisnull(res, row, SENTRA_COL_ID)) {
            int at = row;
            r->current = sentra__from_rows(c, res, &at);
            /* Two results in a row may show the same record: keep only
             * this result's rows (its figures come first, by year). */
            if (r->current != NULL && at > end) {
                size_t nf = 0;
                for (int k = row; k < end; k++)
                    nf += !PQgetisnull(res, k, SENTRA_COL_FIG_YEAR);
                if (nf < r->current->n_figures)
                    r->current->n_figures = nf;
            }
        }
        resp.results[resp.n_results++] = r;
        row = end;
    }
    call_reply(c, &resp.base);
}

static void push_send(call_t *c, PGresult *regions, const int *nviol);
static void push_regions_done(call_t *c, PGresult *regions);

void h_push_changes(call_t *c)
{
    const Sentra__V1__PushChangesRequest *req = (const void *)c->msg;
    violations_t viol = {0};
    int bad = 0;

    if (!nonempty(req->client_id) || strlen(req->client_id) > PUSH_MAX_ID ||
        !validate_utf8(req->client_id, strlen(req->client_id), NULL))
        violations_add(&viol, "client_id", "is required: 1 to %d bytes of UTF-8", PUSH_MAX_ID), bad++;
    if (req->n_mutations > PUSH_MAX_MUTATIONS)
        violations_add(&viol, "mutations", "at most %d per push (got %zu)",
                       PUSH_MAX_MUTATIONS, req->n_mutations), bad++;
    for (size_t i = 0; i < req->n_mutations && i < PUSH_MAX_MUTATIONS; i++) {
        const char *id = req->mutations[i]->mutation_id;
        /* Without a usable id the outcome could not be stored: the whole
         * request is refused, before anything is applied. */
        if (!nonempty(id) || strlen(id) > PUSH_MAX_ID || !validate_utf8(id, strlen(id), NULL)) {
            violations_add(&viol, call_printf(c, "mutations[%zu].mutation_id", i),
                           "is required: 1 to %d bytes of UTF-8", PUSH_MAX_ID);
            bad++;
            continue;
        }
        /* One id twice in a batch would read its own uncommitted outcome,
         * which an atomic rollback then undoes. At most 500: quadratic is
         * fine (well under a millisecond). */
        for (size_t j = 0; j < i; j++)
            if (strcmp(req->mutations[j]->mutation_id, id) == 0) {
                violations_add(&viol, call_printf(c, "mutations[%zu].mutation_id", i),
                               "repeats mutations[%zu].mutation_id", j);
                bad++;
                break;
            }
    }
    if (bad) {
        call_fail_violations(c, &viol);
        violations_free(&viol);
        return;
    }
    if (req->n_mutations == 0) {
        Sentra__V1__PushChangesResponse resp = SENTRA__V1__PUSH_CHANGES_RESPONSE__INIT;
        call_reply(c, &resp.base);
        return;
    }

    /* Mutations the checks here refuse are refused whole, but the same
     * outcome also says whether their regions exist: ask the database
     * about those first (region_check.h), one statement for the batch. */
    region_codes_t *rc = call_alloc(c, req->n_mutations * sizeof *rc);
    int *nviol = call_alloc(c, req->n_mutations * sizeof *nviol), ask = 0;
    for (size_t i = 0; i < req->n_mutations; i++) {
        const Sentra__V1__Mutation *m = req->mutations[i];
        nviol[i] = mutation_check(m, NULL);
        if (nviol[i] > 0 && m->op == SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT &&
            m->sentra != NULL && sentra__region_codes(m->sentra, VF_ALL, &rc[i]))
            ask = 1;
    }
    if (!ask || !sentra__region_check(c, rc, req->n_mutations, NULL, push_regions_done))
        push_send(c, NULL, nviol);
}

/* The region check answered: the checks run again (the rare path of a
 * refused batch) to collect the violations beside its lines. */
static void push_regions_done(call_t *c, PGresult *regions)
{
    push_send(c, regions, NULL);
}

/* Sends the batch to sync_push, with the region lines of refused mutations
 * (regions: rows of region_check.h, or NULL). nviol: the number of
 * violations of each mutation, or NULL to count them here. */
static void push_send(call_t *c, PGresult *regions, const int *nviol)
{
    const Sentra__V1__PushChangesRequest *req = (const void *)c->msg;
    jbuf_t b = {0};
    int row = 0;

    if (regions != NULL && PQresultStatus(regions) != PGRES_TUPLES_OK) {
        log_warn("region_check_failed", "method=%s sqlstate=%s", c->method->name,
                 PQresultErrorField(regions, PG_DIAG_SQLSTATE) ? PQresultErrorField(regions, PG_DIAG_SQLSTATE) : "?");
        regions = NULL;         /* answer what the checks here found */
    }
    jb_raw(&b, "[");
    for (size_t i = 0; i < req->n_mutations; i++) {
        if (i)
            jb_raw(&b, ",");
        int n = nviol ? nviol[i] : mutation_check(req->mutations[i], NULL);
        push_mutation_json(c, &b, req->mutations[i], i, n > 0, regions, &row);
    }
    jb_raw(&b, "]");

    const char *v[6];
    v[0] = c->auth.token_id;
    v[1] = auth_role_name(c->auth.role);
    v[2] = c->auth.region;
    v[3] = req->client_id;
    v[4] = req->atomic ? "true" : "false";
    v[5] = b.p;
    call_query(c, &push_stmt, 6, v, push_done);   /* copies the values */
    free(b.p);
}
