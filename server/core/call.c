/*
 * call.c: the life of one request, from a decoded envelope to its answer
 * (see call.h for the handler's side of the contract).
 *
 *   call_start  -> method lookup -> token check (cache, else one query,
 *                  the payload's bytes kept meanwhile) -> payload decode
 *                  (within a budget) -> deadline timer -> handler
 *   handler     -> call_query ... -> call_reply / call_fail
 *   answer      -> call_answer_t handed to the transport's sink, which
 *                  encodes it (transport/native.c: a RESPONSE frame)
 *
 * A call is reference counted: its transport holds one reference until it
 * is answered or detached, a query in flight one, the deadline timer one
 * until its handle has closed. It is freed when the last one drops, which
 * is also when the handler's call_alloc() memory and call_on_free() hooks
 * go.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "log.h"
#include "methods.h"
#include "server.h"
#include "sentra/v1/sentra.pb-c.h"

struct call_block {
    struct call_block *next;
    max_align_t data[];
};

struct call_cleanup {
    struct call_cleanup *next;
    void (*fn)(void *);
    void *ptr;
};

#define MAX_IDEMPOTENCY_KEY 128
#define MAX_TOKEN_LEN 256
#define MAX_MD_ENTRIES 64              /* metadata entries kept for a call */
#define MAX_MD_BYTES (16 * 1024)       /* and their bytes */

static void pending_release(call_t *c);
static void mem_release(call_t *c, size_t n);

static void call_free(call_t *c)
{
    pending_release(c);
    mem_release(c, c->mem);
    if (c->msg != NULL)
        protobuf_c_message_free_unpacked(c->msg, NULL);
    while (c->cleanups != NULL) {
        struct call_cleanup *k = c->cleanups;
        c->cleanups = k->next;
        k->fn(k->ptr);
        free(k);
    }
    while (c->arena != NULL) {
        struct call_block *b = c->arena;
        c->arena = b->next;
        free(b);
    }
    free(c);
}

void call_unref(call_t *c)
{
    if (--c->refs == 0)
        call_free(c);
}

/* ---------------------------------------------------------------- memory */

void *call_alloc(call_t *c, size_t n)
{
    struct call_block *b = calloc(1, sizeof(*b) + n);
    if (b == NULL)
        abort();
    b->next = c->arena;
    c->arena = b;
    return b->data;
}

char *call_strdup(call_t *c, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = call_alloc(c, n);
    memcpy(d, s, n);
    return d;
}

char *call_printf(call_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = call_alloc(c, (size_t)(n > 0 ? n : 0) + 1);
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

void call_on_free(call_t *c, void (*fn)(void *), void *ptr)
{
    struct call_cleanup *k = malloc(sizeof(*k));
    if (k == NULL)
        abort();
    k->fn = fn;
    k->ptr = ptr;
    k->next = c->cleanups;
    c->cleanups = k;
}

/* ---------------------------------------------------------------- answering */

static void timer_closed(uv_handle_t *h)
{
    call_t *c = h->data;
    free(h);
    call_unref(c);
}

static void timer_stop(call_t *c)
{
    if (c->timer != NULL) {
        uv_close(c->timer, timer_closed);
        c->timer = NULL;
    }
}

static void wait_end(call_t *c);

/* Marks c answered with code and lets go of its connection. */
static void finish(call_t *c, int code)
{
    c->flags |= CALL_F_ANSWERED;
    c->code = code;
    if (c->srv->cfg->request_log) {
        double ms = (double)(uv_hrtime() - c->start_ns) / 1e6;
        log_info("request", "method=%s code=%s ms=%.3f stream=%" PRIu32 " token=%s",
                 c->method ? c->method->name : "?", sentra_status_name(code), ms,
                 c->stream_id, c->auth.token_id[0] ? c->auth.token_id : "-");
    }
    timer_stop(c);
    wait_end(c);
    c->writable_cb = NULL;
    if (c->query != NULL && code != SENTRA_OK)
        db_query_cancel(c->query);
    if (c->sink_arg != NULL) {
        c->sink->done(c);        /* drops the transport's reference */
        c->sink_arg = NULL;
    }
}

/* Hands the answer to the transport, which encodes it. */
static void send_response(call_t *c, int code, const char *message,
                          const violations_t *v, int64_t current_version,
                          const ProtobufCMessage *payload)
{
    if (c->sink_arg == NULL)
        return;
    call_answer_t a = {
        .code = code,
        .message = message ? message : "",
        .violations = v != NULL && v->n > 0 ? v : NULL,
        .current_version = current_version,
        .payload = code == SENTRA_OK ? payload : NULL,
    };
    c->sink->answer(c, &a);
}

void call_reply(call_t *c, const ProtobufCMessage *resp)
{
    if (c->flags & CALL_F_ANSWERED)
        return;
    send_response(c, SENTRA_OK, NULL, NULL, 0, resp);
    finish(c, SENTRA_OK);
}

int call_send(call_t *c, const ProtobufCMessage *m)
{
    if ((c->flags & CALL_F_ANSWERED) || c->sink_arg == NULL || c->sink->message == NULL)
        return -1;
    return c->sink->message(c, m) ? 1 : 0;
}

void call_on_writable(call_t *c, void (*cb)(call_t *c))
{
    if (!(c->flags & CALL_F_ANSWERED))
        c->writable_cb = cb;
}

void call_writable(call_t *c)
{
    void (*cb)(call_t *) = c->writable_cb;
    if (cb == NULL || (c->flags & CALL_F_ANSWERED))
        return;
    c->writable_cb = NULL;
    c->refs++;
    cb(c);
    call_unref(c);
}

static void fail_v(call_t *c, int code, const violations_t *v, int64_t version,
                   const char *fmt, va_list ap)
{
    if (c->flags & CALL_F_ANSWERED)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    send_response(c, code, msg, v, version, NULL);
    finish(c, code);
}

void call_fail(call_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, code, NULL, 0, fmt, ap);
    va_end(ap);
}

void call_fail_conflict(call_t *c, int64_t current_version, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, SENTRA_ABORTED, NULL, current_version, fmt, ap);
    va_end(ap);
}

static void fail_violations(call_t *c, const violations_t *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, SENTRA_INVALID_ARGUMENT, v, 0, fmt, ap);
    va_end(ap);
}

void call_fail_violations(call_t *c, const violations_t *v)
{
    if (v->n == 0) {
        call_fail(c, SENTRA_INVALID_ARGUMENT, "invalid request");
        return;
    }
    if (v->n == 1)
        fail_violations(c, v, "invalid %s: %s", v->items[0]->field, v->items[0]->description);
    else
        fail_violations(c, v, "%zu invalid fields, first %s: %s", v->n,
                        v->items[0]->field, v->items[0]->description);
}

void violations_add(violations_t *v, const char *field, const char *fmt, ...)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *p = realloc(v->items, cap * sizeof(*v->items));
        if (p == NULL)
            abort();
        v->items = p;
        v->cap = cap;
    }
    Sentra__V1__FieldViolation *fv = malloc(sizeof(*fv));
    char desc[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof(desc), fmt, ap);
    va_end(ap);
    if (fv == NULL)
        abort();
    sentra__v1__field_violation__init(fv);
    fv->field = strdup(field);
    fv->description = strdup(desc);
    if (fv->field == NULL || fv->description == NULL)
        abort();
    v->items[v->n++] = fv;
}

void violations_free(violations_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->items[i]->field);
        free(v->items[i]->description);
        free(v->items[i]);
    }
    free(v->items);
    v->items = NULL;
    v->n = v->cap = 0;
}

int call_db_error(call_t *c, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_FATAL_ERROR && st != PGRES_NONFATAL_ERROR && st != PGRES_PIPELINE_ABORTED)
        return 0;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    if (state == NULL)
        state = "";
    if (msg == NULL)
        msg = "database error";

    if (state[0] == 'S' && state[1] == 'E') {
        int code = atoi(state + 2);
        if (code == SENTRA_ABORTED) {
            call_fail_conflict(c, detail ? strtoll(detail, NULL, 10) : 0, "%s", msg);
        } else if (code == SENTRA_INVALID_ARGUMENT && detail != NULL) {
            /* DETAIL: one "field: reason" per line. */
            violations_t v = { 0 };
            const char *p = detail;
            while (*p) {
                const char *eol = strchr(p, '\n');
                size_t n = eol ? (size_t)(eol - p) : strlen(p);
                char line[512];
                snprintf(line, sizeof(line), "%.*s", (int)n, p);
                char *colon = strstr(line, ": ");
                if (colon != NULL) {
                    *colon = '\0';
                    violations_add(&v, line, "%s", colon + 2);
                } else if (line[0]) {
                    violations_add(&v, "", "%s", line);
                }
                p += n;
                if (*p == '\n')
                    p++;
            }
            fail_violations(c, &v, "%s", msg);
            violations_free(&v);
        } else if (code > 0 && code <= 16) {
            call_fail(c, code, "%s", msg);
        } else {
            call_fail(c, SENTRA_INTERNAL, "%s", msg);
        }
    } else if (strcmp(state, "23505") == 0) {
        call_fail(c, SENTRA_ALREADY_EXISTS, "%s", msg);
    } else if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0) {
        call_fail(c, SENTRA_INVALID_ARGUMENT, "%s", msg);
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
        call_fail(c, SENTRA_ABORTED, "%s; retry", msg);
    } else if (strcmp(state, "57014") == 0) {
        call_fail(c, SENTRA_CANCELLED, "statement cancelled");
    } else if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0) {
        call_fail(c, SENTRA_UNAVAILABLE, "database unavailable: %s", msg);
    } else {
        log_error("db_error", "method=%s sqlstate=%s error=\"%s\"",
                  c->method ? c->method->name : "?", state, msg);
        call_fail(c, SENTRA_INTERNAL, "internal database error (sqlstate %s)", state);
    }
    return 1;
}

/* ---------------------------------------------------------------- database */

static void on_query(void *arg, int status, PGresult *res)
{
    call_t *c = arg;
    c->query = NULL;
    if (!(c->flags & CALL_F_ANSWERED)) {
        if (status == DB_OK) {
            call_db_cb cb = c->query_cb;
            c->query_cb = NULL;
            cb(c, res);
        } else {
            call_fail(c, SENTRA_UNAVAILABLE, "database unavailable");
        }
    }
    call_unref(c);
}

void call_query(call_t *c, db_stmt_t *stmt, int nparams,
                const char *const *values, call_db_cb cb)
{
    if (c->flags & CALL_F_ANSWERED)
        return;
    c->refs++;
    c->query_cb = cb;
    c->query = db_query(c->srv->db, stmt, nparams, values, on_query, c);
}

struct ahead {
    db_query_t *q;
    call_ahead_cb cb;
    void *arg;
};

static void on_ahead(void *arg, int status, PGresult *res)
{
    struct ahead *a = arg;
    (void)res;
    a->cb(a->arg, status == DB_OK ? db_query_take_result(a->q) : NULL);
    free(a);
}

void call_query_ahead(call_t *c, db_stmt_t *stmt, int nparams,
                      const char *const *values, call_ahead_cb cb, void *arg)
{
    struct ahead *a = malloc(sizeof *a);
    if (a == NULL)
        abort();
    a->cb = cb;
    a->arg = arg;
    /* db_query never calls back before it returns: a->q is set in time. */
    a->q = db_query(c->srv->db, stmt, nparams, values, on_ahead, a);
}

/* ---------------------------------------------------------------- helpers */

const char *auth_role_name(int role)
{
    switch (role) {
    case SENTRA__V1__ROLE__ROLE_DISTRICT: return "district";
    case SENTRA__V1__ROLE__ROLE_PROVINCE: return "province";
    case SENTRA__V1__ROLE__ROLE_NATIONAL: return "national";
    case SENTRA__V1__ROLE__ROLE_ADMIN: return "admin";
    }
    return "none";
}

int64_t call_ms_left(const call_t *c)
{
    uint64_t now = uv_hrtime();
    return now >= c->deadline_ns ? 0 : (int64_t)((c->deadline_ns - now) / 1000000);
}

/* ---------------------------------------------------------------- starting */

const char *call_metadata(const call_t *c, const char *key)
{
    for (size_t i = 0; i < c->n_md; i++)
        if (strcmp(c->md[i].key, key) == 0)
            return c->md[i].value;
    return NULL;
}

call_t *call_new(struct server *srv, const call_sink_t *sink, void *sink_arg, uint32_t stream_id)
{
    call_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->srv = srv;
    c->sink = sink;
    c->sink_arg = sink_arg;
    c->stream_id = stream_id;
    c->refs = 1;
    c->idempotency_key = "";
    c->start_ns = uv_hrtime();
    return c;
}

static void on_deadline(uv_timer_t *t)
{
    call_cancel(t->data, SENTRA_DEADLINE_EXCEEDED);
}

/* Role checks common to all methods, then the handler. */
static void dispatch(call_t *c)
{
    const method_t *m = c->method;
    int role = c->auth.role;
    if (!(m->flags & METHOD_PUBLIC)) {
        if (m->flags & METHOD_ADMIN) {
            if (role != SENTRA__V1__ROLE__ROLE_ADMIN) {
                call_fail(c, SENTRA_PERMISSION_DENIED, "%s needs an admin token", m->name);
                return;
            }
        } else if (role == SENTRA__V1__ROLE__ROLE_ADMIN) {
            call_fail(c, SENTRA_PERMISSION_DENIED,
                      "admin tokens manage tokens only; use a district, province or national token");
            return;
        } else if ((m->flags & METHOD_WRITE) && role == SENTRA__V1__ROLE__ROLE_NATIONAL) {
            call_fail(c, SENTRA_PERMISSION_DENIED, "national tokens are read-only");
            return;
        }
    }
    m->handler(c);
}

/* The token lookup: $1 is the SHA-256 of the secret (auth_digest_param),
 * so the secret itself never reaches PostgreSQL. Columns: id, role, region. */
static db_stmt_t auth_stmt = {
    "SELECT id, role, coalesce(region_code, '') FROM api_token"
    " WHERE secret_hash = $1::bytea AND revoked_at IS NULL",
    0, 1
};

static const char *call_secret(const call_request_t *req)
{
    for (size_t i = 0; i < req->n_md; i++) {
        const call_md_t *md = &req->md[i];
        if (md->key == NULL || strcasecmp(md->key, "authorization") != 0)
            continue;
        const char *v = md->value ? md->value : "";
        if (strncasecmp(v, "Bearer ", 7) != 0)
            return NULL;
        v += 7;
        while (*v == ' ')
            v++;
        /* Tokens are printable ASCII ("snt_" and base32): anything else is
         * refused here, not by the database's text input. */
        for (const char *p = v; *p; p++)
            if (*p < '!' || *p > '~')
                return NULL;
        return *v && strlen(v) <= MAX_TOKEN_LEN ? v : NULL;
    }
    return NULL;
}

static int decode(call_t *c, int codec, const uint8_t *data, size_t len);

static void on_auth(call_t *c, PGresult *res)
{
    if (call_db_error(c, res))
        return;
    if (PQntuples(res) != 1) {
        call_fail(c, SENTRA_UNAUTHENTICATED, "unknown or revoked token");
        return;
    }
    snprintf(c->auth.token_id, sizeof(c->auth.token_id), "%s", PQgetvalue(res, 0, 0));
    c->auth.role = auth_role_from_name(PQgetvalue(res, 0, 1));
    snprintf(c->auth.region, sizeof(c->auth.region), "%s", PQgetvalue(res, 0, 2));
    /* Cached only if no revocation (nor loss of notifications) was handled
     * since the lookup left: its snapshot may predate a revocation whose
     * NOTIFY has already emptied the cache. This call itself goes on: the
     * token was valid when the lookup ran. */
    auth_cache_put(c->srv->auth, c->digest, c->auth_gen, uv_hrtime() / 1000000, &c->auth);
    int r = decode(c, c->pending_codec, c->pending, c->pending_len);
    pending_release(c);
    if (r == 0)
        dispatch(c);
}

/* Arms the deadline timer of a call that is still waiting for something. */
static void arm_deadline(call_t *c)
{
    uv_timer_t *t = malloc(sizeof(*t));
    if (t == NULL)
        abort();
    uv_timer_init(c->srv->loop, t);
    t->data = c;
    uv_timer_start(t, on_deadline, (uint64_t)call_ms_left(c), 0);
    c->timer = t;
    c->refs++;
}

static void start(call_t *c, const call_request_t *req);

void call_start(call_t *c, const call_request_t *req)
{
    /* Most refusals and the methods that need no database answer before
     * start() returns: only a call still waiting needs a deadline timer. */
    c->refs++;
    start(c, req);
    if (!(c->flags & CALL_F_ANSWERED) && c->timer == NULL)
        arm_deadline(c);
    call_unref(c);
}

/* The request's value for key (case-insensitive), or NULL. */
static const char *req_md(const call_request_t *req, const char *key)
{
    for (size_t i = 0; i < req->n_md; i++)
        if (req->md[i].key != NULL && strcasecmp(req->md[i].key, key) == 0)
            return req->md[i].value ? req->md[i].value : "";
    return NULL;
}

/* Keeps the request's metadata for handlers (call_metadata). Returns 0, or
 * -1 when there is more than a call keeps. */
static int keep_metadata(call_t *c, const call_request_t *req)
{
    size_t bytes = 0;
    if (req->n_md > MAX_MD_ENTRIES)
        return -1;
    for (size_t i = 0; i < req->n_md; i++)
        bytes += strlen(req->md[i].key ? req->md[i].key : "") +
                 strlen(req->md[i].value ? req->md[i].value : "") + 2;
    if (bytes > MAX_MD_BYTES)
        return -1;
    if (req->n_md == 0)
        return 0;
    call_md_t *md = call_alloc(c, req->n_md * sizeof(*md));
    for (size_t i = 0; i < req->n_md; i++) {
        char *k = call_strdup(c, req->md[i].key ? req->md[i].key : "");
        for (char *p = k; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        md[i].key = k;
        md[i].value = call_strdup(c, req->md[i].value ? req->md[i].value : "");
    }
    c->md = md;
    c->n_md = req->n_md;
    return 0;
}

/* ---------------------------------------------------------------- request memory */

/*
 * What requests hold (the message bytes of a call waiting for its token
 * check, the decoded message) is counted in srv->req_mem and bounded by
 * SERVER_REQ_MEM_MAX: past it a new request is refused RESOURCE_EXHAUSTED
 * rather than let requests in progress take memory without bound.
 * Transports bound it per connection (native.c stops reading a connection
 * whose requests in flight carry too many bytes).
 */
static int mem_take(call_t *c, size_t n)
{
    server_t *srv = c->srv;
    if (n > SERVER_REQ_MEM_MAX || srv->req_mem > SERVER_REQ_MEM_MAX - n)
        return -1;
    srv->req_mem += n;
    c->mem += n;
    return 0;
}

static void mem_release(call_t *c, size_t n)
{
    if (n == 0)
        return;
    c->srv->req_mem -= n;
    c->mem -= n;
}

static void pending_release(call_t *c)
{
    if (c->pending == NULL)
        return;
    free(c->pending);
    c->pending = NULL;
    mem_release(c, c->pending_len + 16);
    c->pending_len = 0;
}

/* Keeps the request's message bytes until its token is checked. Returns 0,
 * or -1 after answering. */
static int pending_keep(call_t *c, const call_request_t *req)
{
    if (mem_take(c, req->len + 16) != 0) {
        call_fail(c, SENTRA_RESOURCE_EXHAUSTED, "the server holds too many requests; retry later");
        return -1;
    }
    c->pending = malloc(req->len ? req->len : 1);
    if (c->pending == NULL)
        abort();
    if (req->len > 0)
        memcpy(c->pending, req->payload, req->len);
    c->pending_len = req->len;
    c->pending_codec = req->codec;
    return 0;
}

struct budget {
    size_t left;        /* bytes that may still be allocated */
    size_t used;        /* allocated, with malloc's overhead */
    int exceeded;       /* an allocation was refused */
};

#define ALLOC_OVERHEAD 16   /* glibc: a chunk header, 16-byte alignment */

static void *budget_alloc(void *data, size_t size)
{
    struct budget *b = data;
    size_t cost = size + ALLOC_OVERHEAD;
    if (cost > b->left) {
        b->exceeded = 1;
        return NULL;
    }
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        abort();
    b->left -= cost;
    b->used += cost;
    return p;
}

static void budget_free(void *data, void *p)
{
    (void)data;
    free(p);
}

ProtobufCMessage *call_unpack_bounded(const ProtobufCMessageDescriptor *d, size_t len,
                                      const uint8_t *data, size_t budget, int *too_big,
                                      size_t *used)
{
    struct budget b = { budget, 0, 0 };
    ProtobufCAllocator a = { budget_alloc, budget_free, &b };
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &a, len, data);
    *too_big = m == NULL && b.exceeded;
    *used = b.used;
    return m;
}

/* Decodes the request message data[0..len) in the method's type into
 * c->msg. Returns 0, or -1 after answering (not such a message, or one
 * that decodes into more than its budget). */
static int decode(call_t *c, int codec, const uint8_t *data, size_t len)
{
    const ProtobufCMessageDescriptor *d = c->method->input;
    size_t budget = CALL_DECODE_BUDGET(len), used = 0;
    int too_big = 0;

    if (codec != CALL_CODEC_PROTO) {
        call_fail(c, SENTRA_INVALID_ARGUMENT, "this server does not read that encoding");
        return -1;
    }
    /* The whole budget is reserved first, then only what was used kept. */
    if (mem_take(c, budget) != 0) {
        call_fail(c, SENTRA_RESOURCE_EXHAUSTED, "the server holds too many requests; retry later");
        return -1;
    }
    c->msg = call_unpack_bounded(d, len, data, budget, &too_big, &used);
    mem_release(c, c->msg != NULL ? budget - used : budget);
    if (c->msg != NULL)
        return 0;
    if (too_big)
        call_fail(c, SENTRA_RESOURCE_EXHAUSTED,
                  "payload decodes into more than %zu bytes (%zu bytes on the wire): "
                  "too many repeated or empty entries", budget, len);
    else
        call_fail(c, SENTRA_INVALID_ARGUMENT, "payload is not a valid %s", d->name);
    return -1;
}

static void start(call_t *c, const call_request_t *req)
{
    server_t *srv = c->srv;
    const config_t *cfg = srv->cfg;
    srv->requests++;

    const method_t *m = method_find(req->method ? req->method : "");
    if (m == NULL || ((m->flags & METHOD_DEBUG) && !cfg->enable_debug)) {
        call_fail(c, SENTRA_UNIMPLEMENTED, "unknown method \"%.200s\"", req->method ? req->method : "");
        return;
    }
    c->method = m;

    uint32_t ms = req->timeout_ms ? req->timeout_ms : (uint32_t)cfg->default_deadline_ms;
    c->deadline_ns = c->start_ns + (uint64_t)ms * 1000000;

    if (keep_metadata(c, req) != 0) {
        call_fail(c, SENTRA_INVALID_ARGUMENT, "more than %d metadata entries or %d bytes of metadata",
                  MAX_MD_ENTRIES, MAX_MD_BYTES);
        return;
    }
    const char *key = req_md(req, "idempotency-key");
    if (key == NULL)
        key = req_md(req, "x-idempotency-key");
    if (key != NULL && key[0]) {
        if (strlen(key) > MAX_IDEMPOTENCY_KEY) {
            call_fail(c, SENTRA_INVALID_ARGUMENT, "idempotency key longer than %d bytes",
                      MAX_IDEMPOTENCY_KEY);
            return;
        }
        c->idempotency_key = call_strdup(c, key);
    }
    if (m->flags & METHOD_PUBLIC) {
        if (decode(c, req->codec, req->payload, req->len) == 0)
            dispatch(c);
        return;
    }

    /* The token before the payload: a client without a valid token makes
     * the server decode nothing. */
    const char *secret = call_secret(req);
    if (secret == NULL) {
        call_fail(c, SENTRA_UNAUTHENTICATED,
                  "missing or malformed \"authorization: Bearer <token>\" metadata");
        return;
    }
    auth_digest(secret, c->digest);
    if (auth_cache_get(srv->auth, c->digest, uv_hrtime() / 1000000, &c->auth)) {
        if (decode(c, req->codec, req->payload, req->len) == 0)
            dispatch(c);
        return;
    }
    /* The request is freed when this function returns: its message bytes
     * wait here for the lookup, and are decoded only if the token is valid. */
    if (pending_keep(c, req) != 0)
        return;
    char param[AUTH_DIGEST_PARAM_LEN];
    auth_digest_param(c->digest, param);
    const char *params[1] = { param };
    c->auth_gen = auth_cache_gen(srv->auth);
    call_query(c, &auth_stmt, 1, params, on_auth);
}

void call_cancel(call_t *c, int code)
{
    if (c->flags & CALL_F_ANSWERED)
        return;
    if (code == SENTRA_CANCELLED)
        c->flags |= CALL_F_CANCELLED;
    call_fail(c, code, code == SENTRA_DEADLINE_EXCEEDED ? "deadline exceeded" : "cancelled by the client");
}

void call_detach(call_t *c)
{
    c->sink_arg = NULL;
    c->writable_cb = NULL;
    if (!(c->flags & CALL_F_ANSWERED)) {
        c->flags |= CALL_F_ANSWERED | CALL_F_CANCELLED;
        c->code = SENTRA_CANCELLED;
        timer_stop(c);
        wait_end(c);
        if (c->query != NULL)
            db_query_cancel(c->query);
    }
    call_unref(c);
}

/* ---------------------------------------------------------------- waiting */

static void wait_timer_closed(uv_handle_t *h)
{
    call_t *c = h->data;
    free(h);
    call_unref(c);
}

/* Takes c off the waiting list and closes its timer; returns the
 * continuation that was pending, or NULL. */
static void (*wait_take(call_t *c))(call_t *)
{
    void (*cb)(call_t *) = c->wait_cb;
    if (cb == NULL)
        return NULL;
    c->wait_cb = NULL;
    if (c->wprev != NULL)
        c->wprev->wnext = c->wnext;
    else
        c->srv->waiters = c->wnext;
    if (c->wnext != NULL)
        c->wnext->wprev = c->wprev;
    c->wnext = c->wprev = NULL;
    uv_close(c->wait_timer, wait_timer_closed);
    c->wait_timer = NULL;
    return cb;
}

static void wait_end(call_t *c)
{
    wait_take(c);
}

static void wait_fire(call_t *c)
{
    void (*cb)(call_t *) = wait_take(c);
    if (cb != NULL && !(c->flags & CALL_F_ANSWERED)) {
        c->refs++; /* cb may answer, which may drop the last other ref */
        cb(c);
        call_unref(c);
    }
}

static void on_wait_timer(uv_timer_t *t)
{
    wait_fire(t->data);
}

uint64_t call_change_mark(const call_t *c)
{
    return c->srv->change_seq;
}

int call_draining(const call_t *c)
{
    return c->srv->stopping;
}

void call_wait_change(call_t *c, uint64_t mark, int ms, void (*cb)(call_t *c))
{
    if ((c->flags & CALL_F_ANSWERED) || c->wait_cb != NULL)
        return;
    /* A change announced while the caller's query was out, or a stop: the
     * wake-up it waits for has come already. */
    if (mark != c->srv->change_seq || c->srv->stopping)
        ms = 0;
    uv_timer_t *t = malloc(sizeof(*t));
    if (t == NULL)
        abort();
    uv_timer_init(c->srv->loop, t);
    t->data = c;
    uv_timer_start(t, on_wait_timer, ms > 0 ? (uint64_t)ms : 0, 0);
    c->refs++; /* held by the timer until it has closed */
    c->wait_timer = t;
    c->wait_cb = cb;
    c->wprev = NULL;
    c->wnext = c->srv->waiters;
    if (c->wnext != NULL)
        c->wnext->wprev = c;
    c->srv->waiters = c;
}

/* Whether a change to the regencies listed in payload ("18.71,18.72", or
 * empty: unknown) may concern c: a district token reads one regency, a
 * province token the regencies of its province, others everything. */
static int wait_concerns(const call_t *c, const char *payload)
{
    if (payload == NULL || payload[0] == '\0')
        return 1;
    int role = c->auth.role;
    if (role != SENTRA__V1__ROLE__ROLE_DISTRICT && role != SENTRA__V1__ROLE__ROLE_PROVINCE)
        return 1;
    size_t n = strlen(c->auth.region);
    for (const char *p = payload; *p;) {
        size_t len = strcspn(p, ",");
        if (role == SENTRA__V1__ROLE__ROLE_DISTRICT ? (len == n && strncmp(p, c->auth.region, n) == 0)
                                                    : (len > n && strncmp(p, c->auth.region, n) == 0 &&
                                                       p[n] == '.'))
            return 1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

void sentra__call_wake_all(struct server *srv, const char *payload)
{
    /* Calls whose query is out now see this when they come to wait
     * (call_change_mark). */
    srv->change_seq++;
    /* Snapshot the waiters concerned, holding a reference on each call: a
     * woken call may answer (and be freed) or park again (and must not be
     * woken twice). */
    size_t n = 0;
    for (call_t *c = srv->waiters; c != NULL; c = c->wnext)
        n++;
    if (n == 0)
        return;
    call_t **v = malloc(n * sizeof(*v));
    if (v == NULL)
        abort();
    n = 0;
    for (call_t *c = srv->waiters; c != NULL; c = c->wnext) {
        if (!wait_concerns(c, payload))
            continue;
        c->refs++;
        v[n++] = c;
    }
    for (size_t i = 0; i < n; i++) {
        wait_fire(v[i]);
        call_unref(v[i]);
    }
    free(v);
}
