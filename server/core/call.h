/*
 * call.h: one request in flight, as handlers see it.
 *
 * This is the whole interface between a handler and the rest of the server.
 * A handler receives a call whose request message is already decoded and
 * whose token is already checked, may run queries through call_query(), and
 * ends by answering exactly once with call_reply() or one of the call_fail
 * functions. Handlers know nothing of frames or connections: the transport
 * (conn.c) creates calls and sends what they answer.
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

typedef void (*call_db_cb)(call_t *c, PGresult *res);

struct call {
    /* ---- read-only for handlers ---- */
    struct server *srv;            /* the server (config, db pool) */
    const struct method *method;   /* what was called */
    ProtobufCMessage *msg;         /* decoded request; freed with the call */
    auth_t auth;                   /* valid when the method needs a token */
    const char *idempotency_key;   /* "" when none; freed with the call */
    uint64_t start_ns;             /* when the request arrived */
    uint64_t deadline_ns;          /* absolute, uv_hrtime() clock */

    /* ---- private to call.c and conn.c ---- */
    struct conn *conn;             /* NULL once the connection is gone */
    uint32_t stream_id;            /* the client's id for this request */
    unsigned flags;                /* CALL_F_* below */
    int refs;                      /* conn list + pending query + timer */
    db_query_t *query;             /* the query in flight, if any */
    call_db_cb query_cb;           /* its continuation */
    struct call_block *arena;      /* call_alloc() memory */
    struct call_cleanup *cleanups; /* call_on_free() hooks */
    void *timer;                   /* deadline timer (uv_timer_t *) */
    struct call *next, *prev;      /* in conn's list of calls */
    int code;                      /* the status answered, for the request log */
    char *secret;                  /* the token while it is being verified */
    void (*wait_cb)(call_t *);     /* call_wait_change continuation */
    void *wait_timer;              /* its timer (uv_timer_t *) */
    struct call *wnext, *wprev;    /* in the server's list of waiting calls */
};

#define CALL_F_ANSWERED  0x01   /* a reply was sent (or could not be) */
#define CALL_F_CANCELLED 0x02   /* the client cancelled */

/* ---------------------------------------------------------------- answering */

/* Answers OK with resp serialized. Does not take ownership of resp. */
void call_reply(call_t *c, const ProtobufCMessage *resp);

/* Answers with code (not OK) and a printf-style message. */
void call_fail(call_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A list of field violations for INVALID_ARGUMENT (and push results). */
typedef struct violations {
    Sentra__V1__FieldViolation **items;
    size_t n, cap;
} violations_t;

/* Adds "field: description". Copies both. */
void violations_add(violations_t *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void violations_free(violations_t *v);

/* Answers INVALID_ARGUMENT listing v (which it does not free), with a message
 * summing them up. */
void call_fail_violations(call_t *c, const violations_t *v);

/* Answers ABORTED carrying the version the server holds now. */
void call_fail_conflict(call_t *c, int64_t current_version, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* If res is an SQL error, answers it and returns 1; otherwise returns 0.
 * The mapping: SQLSTATE "SE" + 3 digits is a deliberate error from our SQL
 * functions carrying the gRPC code in its digits (SE005 NOT_FOUND, SE007
 * PERMISSION_DENIED, SE010 ABORTED with the current version in DETAIL, SE003
 * INVALID_ARGUMENT with "field: reason" lines in DETAIL); 23505 ->
 * ALREADY_EXISTS; other class 23 and class 22 -> INVALID_ARGUMENT; 40001 and
 * 40P01 -> ABORTED; 57014 -> CANCELLED; anything else -> INTERNAL (logged). */
int call_db_error(call_t *c, PGresult *res);

/* ---------------------------------------------------------------- database */

/* Runs stmt with text parameters (NULL for SQL NULL; copied). When the
 * result arrives, cb runs with it (res is freed after cb returns). If the
 * database is unavailable the call is answered UNAVAILABLE and cb does not
 * run. At most one query per call at a time. */
void call_query(call_t *c, db_stmt_t *stmt, int nparams,
                const char *const *values, call_db_cb cb);

/* Runs stmt on behalf of no call: the read-ahead of a pull
 * (handlers_sync.c), which outlives the call that starts it. c only names
 * the server. cb runs once, from the loop, with the result, which it then
 * owns (PQclear), or with NULL when the database could not run it. */
typedef void (*call_ahead_cb)(void *arg, PGresult *res);
void call_query_ahead(call_t *c, db_stmt_t *stmt, int nparams,
                      const char *const *values, call_ahead_cb cb, void *arg);

/* Parks the call until a change to sentra its token may read commits (the
 * change-log trigger sends NOTIFY sentra_change naming the regencies
 * touched) or ms pass, whichever is first, then runs cb. If the call ends
 * first (cancel, deadline, connection gone) cb never runs. For long polls:
 * one wait per call at a time; no query may be in flight. */
void call_wait_change(call_t *c, int ms, void (*cb)(call_t *c));

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

/* Runs fn(ptr) when the call is freed, on every path. */
void call_on_free(call_t *c, void (*fn)(void *), void *ptr);

/* ---------------------------------------------------------------- helpers */

/* Role name as stored in SQL: "district", "province", "national", "admin". */
const char *auth_role_name(int role);

/* Milliseconds left before the deadline (0 when passed). */
int64_t call_ms_left(const call_t *c);

/* ---------------------------------------------------------------- transport side */

/* Used by conn.c (and any other transport). */
call_t *call_new(struct server *srv, struct conn *conn, uint32_t stream_id);
void call_start(call_t *c, const Sentra__V1__Request *req);
void call_cancel(call_t *c, int code);    /* CANCELLED or DEADLINE_EXCEEDED */
void call_detach(call_t *c);              /* the connection is going away */
void call_unref(call_t *c);

#endif
