/*
 * call.h: one request in flight, as handlers see it.
 *
 * This is the whole interface between a handler and the rest of the server.
 * A handler receives a call whose request message is already decoded and
 * whose token is already checked, may run queries through call_query(), and
 * ends by answering exactly once with call_reply() or one of the call_fail
 * functions. Handlers know nothing of frames, streams or connections: a
 * transport (the native framing in transport/native.c, and any other)
 * creates calls with call_new() + call_start() and turns what they answer
 * into its own bytes through the call_sink_t it gave.
 *
 * Server streaming (methods marked METHOD_STREAM): the handler sends
 * messages with call_send(), waits with call_on_writable() when the
 * transport says it is full, and ends the stream with call_reply(c, NULL)
 * or a call_fail.
 *
 * Cancellation: when the client cancels, the deadline passes or the
 * connection closes, the call layer answers (if still possible), cancels the
 * query in flight and never invokes the handler's pending callback. Whatever
 * the handler needs freed must therefore be allocated with call_alloc() or
 * registered with call_on_free(); then nothing leaks on any path.
 */
#ifndef SENTRA_CALL_H
#define SENTRA_CALL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <protobuf-c/protobuf-c.h>

#include "auth.h"
#include "db.h"
#include "status.h"
#include "sentra/v1/rpc.pb-c.h"
#include "sentra/v1/sentra.pb-c.h"
#include "sentra/v1/system.pb-c.h"

struct server;
struct method;

/* Who is calling: filled from the token before the handler runs. */
typedef struct auth {
    char token_id[40];   /* UUID text */
    int role;            /* SENTRA__V1__ROLE__ROLE_* */
    char region[24];     /* district: regency code; province: province code; else "" */
} auth_t;

typedef struct call call_t;
typedef struct violations violations_t;

typedef void (*call_db_cb)(call_t *c, PGresult *res);

/* ---------------------------------------------------------------- transport side */

/* How a request's message is encoded. */
enum call_codec {
    CALL_CODEC_PROTO = 0,        /* binary protobuf */
    CALL_CODEC_JSON = 1          /* proto3's canonical JSON mapping */
};

/* One metadata entry as a transport read it (NUL-terminated strings). */
typedef struct call_md {
    const char *key;             /* lower-case */
    const char *value;
} call_md_t;

/* A request as any transport hands it to call_start(). Nothing here is
 * kept: call_start() copies what it needs before it returns. */
typedef struct call_request {
    const char *method;          /* "/sentra.v1.SentraService/GetSentra" */
    const uint8_t *payload;      /* the method's request message ... */
    size_t len;
    int codec;                   /* ... encoded as CALL_CODEC_* */
    uint32_t timeout_ms;         /* relative deadline; 0: the server's default */
    const call_md_t *md;         /* metadata: authorization, idempotency key, */
    size_t n_md;                 /* custom entries (kept for handlers) */
    struct auth_memo **auth_memo; /* the connection's memo of its token's digest
                                  * (auth.h: auth_digest_memo), or NULL */
} call_request_t;

/* What a call answers, for its transport to encode. */
typedef struct call_answer {
    int code;                          /* SENTRA_* status */
    const char *message;               /* "" on OK */
    const violations_t *violations;    /* INVALID_ARGUMENT; NULL when none */
    int64_t current_version;           /* ABORTED on a version conflict; else 0 */
    const ProtobufCMessage *payload;   /* OK: the response; NULL at the end of a stream */
} call_answer_t;

/* The transport's side of a call. Each function gets the call; the
 * transport finds its own state in c->sink_arg. */
typedef struct call_sink {
    const char *name;                  /* "native", "grpc", "connect", ... for logs */
    /* The final answer (exactly once, unless the transport went away). */
    void (*answer)(call_t *c, const call_answer_t *a);
    /* One message of a server stream. Returns 0 when another may follow
     * at once, 1 when the transport holds as much as it may: the handler
     * waits for call_on_writable() before the next (what was given is
     * sent either way). */
    int (*message)(call_t *c, const ProtobufCMessage *m);
    /* The call is finished with the transport (answered or cancelled):
     * the transport drops its reference (call_unref) and forgets c. */
    void (*done)(call_t *c);
    /* Optional. The token is checked and the method's role rules passed;
     * the handler is about to run. Returns 0 to run it, or 1 when the
     * transport answers by itself without it (Connect's 304 Not Modified
     * for a GET whose ETag still holds: no query is made). After 1 the
     * call ends as OK without answer() being called: done() follows, and
     * the transport sends what it prepared. */
    int (*ready)(call_t *c);
} call_sink_t;

struct call {
    /* ---- read-only for handlers ---- */
    struct server *srv;            /* the server (config, db pool) */
    const struct method *method;   /* what was called */
    ProtobufCMessage *msg;         /* decoded request; freed with the call */
    auth_t auth;                   /* valid when the method needs a token */
    const char *idempotency_key;   /* "" when none; freed with the call */
    uint64_t start_ns;             /* when the request arrived */
    uint64_t deadline_ns;          /* absolute, uv_hrtime() clock; CALL_NO_DEADLINE:
                                    * a stream (METHOD_STREAM) whose client named none */

    const call_md_t *md;           /* the request's metadata (call memory) */
    size_t n_md;
    int codec;                     /* CALL_CODEC_* of the request (answers use the same) */
    uint64_t generation;           /* srv->generation when the call started: the
                                    * data it reads are at least this new */
    void *handler_state;           /* the handler's own, kept across its
                                    * continuations (call_alloc'd, or freed
                                    * through call_on_free); NULL at first */

    /* ---- private to call.c and the transport ---- */
    const call_sink_t *sink;       /* the transport's functions */
    void *sink_arg;                /* its state for this call; NULL once it is gone */
    uint32_t stream_id;            /* the client's id for this request (logs) */
    unsigned flags;                /* CALL_F_* below */
    int refs;                      /* conn list + pending query + timer */
    db_query_t *query;             /* the query in flight, if any */
    call_db_cb query_cb;           /* its continuation */
    struct call_block *arena;      /* call_alloc() memory */
    struct call_cleanup *cleanups; /* call_on_free() hooks */
    void *timer;                   /* deadline timer (uv_timer_t *) */
    struct call *next, *prev;      /* in conn's list of calls */
    int code;                      /* the status answered, for the request log */
    uint8_t digest[AUTH_DIGEST_LEN]; /* the token's SHA-256, while it is looked up */
    uint64_t auth_gen;             /* the token cache's generation when the lookup left */
    uint8_t *pending;              /* the request's message bytes (malloc'ed) while its
                                    * token is looked up: decoded only once it is valid */
    size_t pending_len;
    int pending_codec;             /* CALL_CODEC_* of pending */
    size_t mem;                    /* request memory counted in srv->req_mem */
    void (*wait_cb)(call_t *);     /* call_wait_change continuation */
    void *wait_timer;              /* its timer (uv_timer_t *) */
    struct call *wnext, *wprev;    /* in the server's list of waiting calls */
    void (*writable_cb)(call_t *); /* call_on_writable continuation */
    struct call *tnext, *tprev;    /* the transport's list (its own to use) */
    size_t tbytes;                 /* the transport's own count for the call
                                    * (native.c: its request frame's bytes) */
};

#define CALL_NO_DEADLINE UINT64_MAX

#define CALL_F_ANSWERED  0x01   /* a reply was sent (or could not be) */
#define CALL_F_CANCELLED 0x02   /* the client cancelled */

/* ---------------------------------------------------------------- answering */

/* Answers OK with resp serialized. Does not take ownership of resp. */
void call_reply(call_t *c, const ProtobufCMessage *resp);

/* Answers with code (not OK) and a printf-style message. The message is
 * cut to 1023 bytes on a character boundary and any byte that is not UTF-8
 * becomes '?' (Response.message is a proto3 string), but handlers must not
 * quote client input that is not valid, printable text in the first place. */
void call_fail(call_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends one message of a server stream (METHOD_STREAM methods only; does
 * not take ownership of m). Returns 0 when the next may be sent at once, 1
 * when the transport is full: wait with call_on_writable() (m was sent
 * anyway). Returns -1 when the call is already over (answered, cancelled,
 * the client gone): stop. */
int call_send(call_t *c, const ProtobufCMessage *m);

/* Runs cb once the transport can take more (after call_send returned 1).
 * If the call ends first, cb never runs. */
void call_on_writable(call_t *c, void (*cb)(call_t *c));

/* A list of field violations for INVALID_ARGUMENT (and push results). At
 * most CALL_MAX_VIOLATIONS are kept; the others are only counted in more,
 * and the answer ends with one entry saying how many were left out, so a
 * request of a million bad values costs a short answer, not a million. */
struct violations {
    Sentra__V1__FieldViolation **items;  /* the first ones found */
    size_t n, cap;                       /* items used, allocated */
    size_t more;                         /* found beyond CALL_MAX_VIOLATIONS */
};

#define CALL_MAX_VIOLATIONS 100

/* Adds "field: description" (both copied; cut to valid UTF-8), or only
 * counts it in v->more once CALL_MAX_VIOLATIONS are listed. */
void violations_add(violations_t *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void violations_free(violations_t *v);

/* A validate_report_fn (validate.h) for the violations_t at v: adds
 * (field, reason), or counts one more not listed when field is NULL. */
void violations_report(void *v, const char *field, const char *reason);

/* Answers INVALID_ARGUMENT listing v (which it does not free), with a message
 * summing them up; when v->more > 0, a last entry with an empty field says
 * "and N more violations not listed". */
void call_fail_violations(call_t *c, const violations_t *v);

/* Answers ABORTED carrying the version the server holds now. */
void call_fail_conflict(call_t *c, int64_t current_version, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* If res is an SQL error, answers it and returns 1; otherwise returns 0.
 * The mapping: SQLSTATE "SE" + 3 digits is a deliberate error from our SQL
 * functions carrying the gRPC code in its digits (SE005 NOT_FOUND, SE007
 * PERMISSION_DENIED, SE010 ABORTED with the current version in DETAIL, SE003
 * INVALID_ARGUMENT with "field: reason" lines in DETAIL), whose message and
 * details are ours and go to the client. Everything else is PostgreSQL's
 * own text, which never does (it names constraints and quotes input): it
 * is logged, and the client gets a plain message: 23505 -> ALREADY_EXISTS
 * (the message of our own RAISE is kept); other class 23 -> INVALID_ARGUMENT
 * with a violation on the field the constraint belongs to when known;
 * class 22 -> INVALID_ARGUMENT naming the kind of value; 40001 and 40P01 ->
 * ABORTED; 57014 -> CANCELLED; class 08, 57P01..57P03 -> UNAVAILABLE;
 * anything else -> INTERNAL. */
int call_db_error(call_t *c, PGresult *res);

/* ---------------------------------------------------------------- database */

/* Runs stmt with text parameters (NULL for SQL NULL; copied). When the
 * result arrives, cb runs with it (res is freed after cb returns). If the
 * database is unavailable the call is answered UNAVAILABLE and cb does not
 * run. At most one query per call at a time. */
void call_query(call_t *c, db_stmt_t *stmt, int nparams,
                const char *const *values, call_db_cb cb);

/* The same for a read that a hot standby may serve (--db-read; statistics,
 * lists, pulls): without a standby it is call_query. With one, the read
 * sees at least every write acknowledged before it arrived (on any
 * sentrad), unless the request's metadata says "sentra-consistency:
 * bounded", which accepts up to --db-read-max-lag of staleness. See
 * server/db/replica.h and docs/DESIGN.md. */
void call_query_read(call_t *c, db_stmt_t *stmt, int nparams,
                     const char *const *values, call_db_cb cb);

/* Runs stmt on behalf of no call: the read-ahead of a pull
 * (handlers_sync.c), which outlives the call that starts it. c only names
 * the server. cb runs once, from the loop, with the result, which it then
 * owns (PQclear), or with NULL when the database could not run it. A
 * standby may serve it, as call_query_read. */
typedef void (*call_ahead_cb)(void *arg, PGresult *res);
void call_query_ahead(call_t *c, db_stmt_t *stmt, int nparams,
                      const char *const *values, call_ahead_cb cb, void *arg);

/* A mark of the change notifications handled so far (each NOTIFY
 * sentra_change, and each loss or return of notifications, moves it).
 * Take it just before sending the query whose empty result would lead to
 * call_wait_change(): a change that commits after the query's snapshot may
 * be announced before its result arrives. */
uint64_t call_change_mark(const call_t *c);

/* Parks the call until a change to sentra its token may read commits (the
 * change-log trigger sends NOTIFY sentra_change naming the regencies
 * touched) or ms pass, whichever is first, then runs cb. When a
 * notification was handled since mark (call_change_mark), or the server is
 * stopping (call_draining), the wait ends at once: cb runs from the loop,
 * never before this returns. If the call ends first (cancel, deadline,
 * connection gone) cb never runs. For long polls: one wait per call at a
 * time; no query may be in flight. */
void call_wait_change(call_t *c, uint64_t mark, int ms, void (*cb)(call_t *c));

/* Whether the server is stopping: a long poll then answers with what it
 * has (an empty page) instead of waiting again. */
int call_draining(const call_t *c);

/* Wakes the waiting calls a change concerns (server.c, on NOTIFY
 * sentra_change): payload lists regency codes, comma-separated; NULL or ""
 * wakes every waiter. */
void sentra__call_wake_all(struct server *srv, const char *payload);

/* ---------------------------------------------------------------- memory */

/* Zeroed memory freed with the call. Never NULL (aborts on OOM). */
void *call_alloc(call_t *c, size_t n);
char *call_strdup(call_t *c, const char *s);
char *call_printf(call_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A point in the call's memory, and the release of everything call_alloc'd
 * since it (LIFO). For a stream, which may last for days: what it builds
 * for one message is given back once the message is sent. Nothing allocated
 * after the mark may be used after the release. */
void *call_mem_mark(const call_t *c);
void call_mem_release(call_t *c, void *mark);

/* Runs fn(ptr) when the call is freed, on every path. */
void call_on_free(call_t *c, void (*fn)(void *), void *ptr);

/* ---------------------------------------------------------------- helpers */

/* The value of the request's metadata entry key (lower-case), or NULL. */
const char *call_metadata(const call_t *c, const char *key);

/* Role name as stored in SQL: "district", "province", "national", "admin". */
const char *auth_role_name(int role);

/* Milliseconds left before the deadline (0 when passed). */
int64_t call_ms_left(const call_t *c);

/* ---------------------------------------------------------------- transport side */

/* A new call for a transport: one reference, the transport's, dropped in
 * sink->done (or through call_detach). sink_arg is the transport's state
 * for it; stream_id names it in logs. */
call_t *call_new(struct server *srv, const call_sink_t *sink, void *sink_arg, uint32_t stream_id);

/* Runs the request: the answer may come before this returns. */
void call_start(call_t *c, const call_request_t *req);

/* The client cancelled (CANCELLED) or its deadline passed
 * (DEADLINE_EXCEEDED): answers that code (the sink still gets it) and stops
 * the work. */
void call_cancel(call_t *c, int code);

/* The transport is going away: the call is cancelled without an answer
 * and the transport's reference dropped (sink->done is not called). */
void call_detach(call_t *c);

/* m encoded in codec (CALL_CODEC_*): binary protobuf, or proto3 JSON
 * (common/pbjson.h, lowerCamelCase names). malloc'ed (the caller frees it;
 * never NULL: aborts on OOM), its length in *len. For sinks. */
uint8_t *call_encode(const ProtobufCMessage *m, int codec, size_t *len);

/* Unpacks data[0..len) as a message of type d, allocating at most budget
 * bytes (each allocation counted with its malloc overhead), so that a small
 * message cannot decode into a huge one (empty sub-messages cost 2 bytes
 * each on the wire and a whole struct in memory). Returns the message
 * (free it with protobuf_c_message_free_unpacked(m, NULL)) and sets *used
 * to what it took, or NULL with *too_big set when the budget ran out (else
 * the bytes were not such a message). */
ProtobufCMessage *call_unpack_bounded(const ProtobufCMessageDescriptor *d, size_t len,
                                      const uint8_t *data, size_t budget, int *too_big,
                                      size_t *used);

/* The budget call_start() gives a request message of len bytes: ten times
 * its size and 64 KiB (a push of 500 full records decodes to 5.6 times its
 * size; 100 000 empty sub-messages to 60 times). */
#define CALL_DECODE_BUDGET(len) ((size_t)(len) * 10 + 64 * 1024)

/* The transport can take more messages of c's stream (call_on_writable). */
void call_writable(call_t *c);

void call_unref(call_t *c);

#endif
