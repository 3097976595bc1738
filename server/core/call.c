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
#include "pbjson.h"
#include "pbscan.h"
#include "replica.h"
#include "server.h"
#include "timer_at.h"
#include "token_cli.h"
#include "utf8.h"
#include "sentra/v1/sentra.pb-c.h"

/* call_alloc's memory: small allocations are cut from 1 KiB blocks, front
 * to back (a bump allocator); a large one gets a block of its own. All go
 * with the call. A GetSentra makes about ten small allocations here (its
 * metadata, the record's copy and message); a calloc each cost about as
 * much as decoding the request, and glibc's calloc never takes the fast
 * per-thread cache that malloc of at most 1 KiB does. */
struct call_block {
    struct call_block *next;
    size_t used, cap;              /* bytes of data[] handed out, and its size */
    max_align_t data[];
};

#define ARENA_BLOCK (1024 - sizeof(struct call_block))   /* a block's room */
#ifdef __SANITIZE_ADDRESS__
#define ARENA_OWN 0                /* under ASan a block each, so that overflows are caught */
#else
#define ARENA_OWN (ARENA_BLOCK / 2) /* larger allocations get a block of their own */
#endif

struct call_cleanup {
    struct call_cleanup *next;
    void (*fn)(void *);
    void *ptr;
};

#define MAX_IDEMPOTENCY_KEY 128
#define MAX_MD_ENTRIES 64              /* metadata entries kept for a call */
#define MAX_MD_BYTES (16 * 1024)       /* and their bytes */
/* What decoding a JSON request of len bytes may allocate, the parsed
 * document and the message together: legitimate requests take about 5
 * times their length; "[{},{},...]" would take 100. */
#define JSON_DECODE_MEMORY(len) ((size_t)1024 * 1024 + 16 * (size_t)(len))

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
    size_t align = sizeof(max_align_t);
    if (n > SIZE_MAX - align - sizeof(struct call_block))
        abort();
    size_t need = (n + align - 1) / align * align;
    struct call_block *b = c->arena;
    if (need > ARENA_OWN || b == NULL || b->cap - b->used < need) {
        size_t cap = need > ARENA_OWN ? need : ARENA_BLOCK;
        struct call_block *nb = malloc(sizeof(*nb) + cap);
        if (nb == NULL)
            abort();
        nb->used = 0;
        nb->cap = cap;
        if (need > ARENA_OWN && b != NULL) {
            /* Behind the current block, which keeps serving small ones. */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            c->arena = nb;
        }
        b = nb;
    }
    void *p = (char *)b->data + b->used;
    b->used += need;
    memset(p, 0, n);
    return p;
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

void *call_mem_mark(const call_t *c)
{
    return c->arena;
}

void call_mem_release(call_t *c, void *mark)
{
    while (c->arena != NULL && c->arena != mark) {
        struct call_block *b = c->arena;
        c->arena = b->next;
        free(b);
    }
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

/* Formats into buf (len > 0) as valid UTF-8: a cut falls between
 * characters, and a byte that is not UTF-8 (which no caller should pass)
 * becomes '?'. */
static void format_text(char *buf, size_t len, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, len, fmt, ap);
    if (n < 0)
        buf[0] = '\0';
    else if ((size_t)n >= len)
        buf[sentra__utf8_clip(buf, len - 1)] = '\0';
    sentra__utf8_scrub(buf);
}

static void fail_v(call_t *c, int code, const violations_t *v, int64_t version,
                   const char *fmt, va_list ap)
{
    if (c->flags & CALL_F_ANSWERED)
        return;
    char msg[1024];
    format_text(msg, sizeof(msg), fmt, ap);
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
    if (v->more > 0) {
        /* The listed ones, then one entry for the rest (call memory). */
        violations_t all = *v;
        Sentra__V1__FieldViolation *rest = call_alloc(c, sizeof *rest);
        sentra__v1__field_violation__init(rest);
        rest->field = "";
        rest->description = call_printf(c, "and %zu more violations not listed", v->more);
        all.items = call_alloc(c, (v->n + 1) * sizeof *all.items);
        memcpy(all.items, v->items, v->n * sizeof *all.items);
        all.items[all.n++] = rest;
        fail_violations(c, &all, "%zu invalid fields, first %s: %s", v->n + v->more,
                        v->items[0]->field, v->items[0]->description);
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
    if (v->n >= CALL_MAX_VIOLATIONS) {
        v->more++;          /* counted, never formatted */
        return;
    }
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
    format_text(desc, sizeof(desc), fmt, ap);
    va_end(ap);
    if (fv == NULL)
        abort();
    sentra__v1__field_violation__init(fv);
    fv->field = strdup(field);
    if (fv->field != NULL)
        sentra__utf8_scrub(fv->field);
    fv->description = strdup(desc);
    if (fv->field == NULL || fv->description == NULL)
        abort();
    v->items[v->n++] = fv;
}

void violations_report(void *arg, const char *field, const char *reason)
{
    violations_t *v = arg;
    if (field == NULL)
        v->more++;
    else
        violations_add(v, field, "%s", reason);
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
    v->n = v->cap = v->more = 0;
}

/* ---------------------------------------------------------------- database errors */

/* PostgreSQL's text for the log: quotes become ', control characters
 * spaces, and it stays valid UTF-8 (it may quote what a client sent). */
static void log_text(char *out, size_t len, const char *in)
{
    size_t n = sentra__utf8_clip(in ? in : "", len - 1);
    memcpy(out, in ? in : "", n);
    out[n] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '"')
            *p = '\'';
        else if ((unsigned char)*p < 0x20)
            *p = ' ';
    sentra__utf8_scrub(out);
}

/* Columns of the tables clients write, by the request field they come
 * from. A constraint PostgreSQL names "<table>_<column>..." (its own
 * "sentra_name_check", "sentra_regency_code_fkey", and ours such as
 * "sentra_name_text") belongs to that field. */
static const struct {
    const char *table, *column, *field;
} column_fields[] = {
    {"sentra", "regency_code", "regency_code"},
    {"sentra", "district_code", "district_code"},
    {"sentra", "village_code", "village_code"},
    {"sentra", "address", "address"},
    {"sentra", "latitude", "location.latitude"},
    {"sentra", "longitude", "location.longitude"},
    {"sentra", "name", "name"},
    {"sentra", "commodity", "commodity"},
    {"sentra", "main_product", "main_product"},
    {"sentra", "kbli_code", "kbli_code"},
    {"sentra", "kbli_version", "kbli_version"},
    {"sentra", "sector_group", "sector_group"},
    {"sentra", "status", "status"},
    {"sentra", "formed_on", "formed_on"},
    {"sentra", "decree_number", "decree.number"},
    {"sentra", "decree_date", "decree.date"},
    {"sentra", "decree_official", "decree.official"},
    {"sentra", "contact_name", "contact_name"},
    {"sentra", "contact_phone", "contact_phone"},
    {"sentra_figures", "year", "figures"},
    {"sentra_figures", "business_units", "figures"},
    {"sentra_figures", "workers_male", "figures"},
    {"sentra_figures", "workers_female", "figures"},
    {"sentra_figures", "investment", "figures"},
    {"sentra_figures", "production_value", "figures"},
    {"sentra_figures", "material_value", "figures"},
    {"sentra_figures", "capacity_unit", "figures"},
    {"sentra_figures", "capacity", "figures"},
    {"sentra_figures", "export_share_bp", "figures"},
    {"sentra_figures", "export_destinations", "figures"},
    /* the records of a sentra (migrations/0013_records.sql): columns are
     * the field paths, '.' written '_' */
    {"member", "sentra_id", "sentra_id"},
    {"member", "name", "name"},
    {"member", "owner_name", "owner_name"},
    {"member", "owner_sex", "owner_sex"},
    {"member", "nib", "nib"},
    {"member", "kbli_code", "kbli_code"},
    {"member", "kbli_version", "kbli_version"},
    {"member", "products", "products"},
    {"member", "workers_male", "workers_male"},
    {"member", "workers_female", "workers_female"},
    {"member", "investment", "investment"},
    {"member", "production_value", "production_value"},
    {"member", "joined_year", "joined_year"},
    {"member", "left_year", "left_year"},
    {"institution", "sentra_id", "sentra_id"},
    {"institution", "form", "form"},
    {"institution", "legal_basis", "legal_basis"},
    {"institution", "registration_number", "registration_number"},
    {"institution", "board_chair", "board.chair"},
    {"institution", "board_secretary", "board.secretary"},
    {"institution", "board_treasurer", "board.treasurer"},
    {"institution", "facility_name", "facility.name"},
    {"institution", "facility_provides", "facility.provides"},
    {"institution", "facility_condition", "facility.condition"},
    {"obstacle", "sentra_id", "sentra_id"},
    {"obstacle", "category", "category"},
    {"obstacle", "description", "description"},
    {"obstacle", "severity", "severity"},
    {"obstacle", "reported_on", "reported_on"},
    {"obstacle", "status", "status"},
    {"obstacle", "resolution", "resolution"},
    {"obstacle", "resolved_on", "resolved_on"},
    {"obstacle", "assistance_id", "assistance_id"},
    {"assistance", "sentra_id", "sentra_id"},
    {"assistance", "kind", "kind"},
    {"assistance", "certification", "certification"},
    {"assistance", "provider", "provider"},
    {"assistance", "provider_name", "provider_name"},
    {"assistance", "programme", "programme"},
    {"assistance", "year", "year"},
    {"assistance", "value", "value"},
    {"assistance", "recipient_member_ids", "recipient_member_ids"},
    {"api_token", "region_code", "region_code"},
    {"api_token", "label", "label"},
    {"idempotency", "key", "idempotency_key"},
    {"sync_mutation", "client_id", "client_id"},
    {"sync_mutation", "mutation_id", "mutation_id"},
};

/* The request field of a constraint (or of a column, for NOT NULL), or
 * NULL; *column gets the column's name. */
static const char *constraint_field(const char *table, const char *constraint,
                                    const char *column, const char **col_out)
{
    size_t best = 0;
    const char *field = NULL;

    if (table == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof column_fields / sizeof *column_fields; i++) {
        size_t tl = strlen(column_fields[i].table), cl = strlen(column_fields[i].column);
        if (strcmp(table, column_fields[i].table) != 0)
            continue;
        int match = column != NULL
            ? strcmp(column, column_fields[i].column) == 0
            : constraint != NULL && strncmp(constraint, table, tl) == 0 &&
                  constraint[tl] == '_' &&
                  strncmp(constraint + tl + 1, column_fields[i].column, cl) == 0 &&
                  (constraint[tl + 1 + cl] == '_' || constraint[tl + 1 + cl] == '\0');
        if (match && cl > best) {   /* the longest: "capacity_unit" over "capacity" */
            best = cl;
            field = column_fields[i].field;
            *col_out = column_fields[i].column;
        }
    }
    return field;
}

/* What a class 22 error says about the value, in words of our own. */
static const char *data_error_text(const char *state)
{
    if (strcmp(state, "22021") == 0 || strcmp(state, "22P05") == 0)
        return "a text value is not valid UTF-8";
    if (strcmp(state, "22007") == 0 || strcmp(state, "22008") == 0)
        return "a date or time is out of range";
    if (strcmp(state, "22003") == 0 || strcmp(state, "22015") == 0)
        return "a number is out of range";
    if (strcmp(state, "22001") == 0)
        return "a text value is too long";
    if (strcmp(state, "22P02") == 0)
        return "a value does not have the form its field needs";
    return "a value is not acceptable";
}

/* A refusal by PostgreSQL itself (classes 22 and 23): the request broke a
 * rule the C checks did not catch. */
static void fail_db_refusal(call_t *c, PGresult *res, const char *state)
{
    const char *table = PQresultErrorField(res, PG_DIAG_TABLE_NAME);
    const char *constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    const char *column = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
    const char *col = NULL, *field = NULL;

    if (strncmp(state, "23", 2) == 0)
        field = constraint_field(table, constraint, column, &col);
    if (strcmp(state, "23505") == 0) {
        if (field != NULL)
            call_fail(c, SENTRA_ALREADY_EXISTS, "%s already exists", field);
        else
            call_fail(c, SENTRA_ALREADY_EXISTS, "already exists");
        return;
    }
    if (field == NULL) {
        call_fail(c, SENTRA_INVALID_ARGUMENT, "invalid request: %s",
                  strncmp(state, "22", 2) == 0 ? data_error_text(state)
                                              : "it breaks a rule of the registry");
        return;
    }
    violations_t v = { 0 };
    const char *why = strcmp(state, "23502") == 0 ? "is required"
                    : strcmp(state, "23503") == 0 ? "is not a known value"
                    : "breaks a rule of the registry";
    if (strcmp(field, "figures") == 0)
        violations_add(&v, field, "%s %s", col, why);
    else if (strcmp(col, "regency_code") == 0 && strcmp(state, "23503") == 0)
        violations_add(&v, field, "is not a known region");
    else
        violations_add(&v, field, "%s", why);
    call_fail_violations(c, &v);
    violations_free(&v);
}

int call_db_error(call_t *c, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_FATAL_ERROR && st != PGRES_NONFATAL_ERROR && st != PGRES_PIPELINE_ABORTED)
        return 0;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *where = PQresultErrorField(res, PG_DIAG_SOURCE_FUNCTION);
    const char *method = c->method ? c->method->name : "?";
    if (state == NULL)
        state = "";
    if (msg == NULL)
        msg = "database error";

    if (state[0] == 'S' && state[1] == 'E') {
        /* Ours: raised by the SQL functions for the client to read. */
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
        return 1;
    }

    /* PostgreSQL's own words, which name constraints and quote input: the
     * log gets them, the client a plain message. */
    char text[512], det[512];
    log_text(text, sizeof text, msg);
    log_text(det, sizeof det, detail);
    if (strcmp(state, "23505") == 0 && where != NULL && strcmp(where, "exec_stmt_raise") == 0) {
        /* A RAISE of ours with a standard code ("a sentra with id ... already exists"). */
        call_fail(c, SENTRA_ALREADY_EXISTS, "%s", msg);
        return 1;
    }
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0) {
        const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        log_warn("db_refused", "method=%s sqlstate=%s constraint=%s error=\"%s\" detail=\"%s\"",
                 method, state, cons ? cons : "-", text, det);
        fail_db_refusal(c, res, state);
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
        log_info("db_conflict", "method=%s sqlstate=%s error=\"%s\"", method, state, text);
        call_fail(c, SENTRA_ABORTED, "the request collided with a concurrent one; retry");
    } else if (strcmp(state, "57014") == 0) {
        call_fail(c, SENTRA_CANCELLED, "statement cancelled");
    } else if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
               strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0) {
        log_warn("db_unavailable", "method=%s sqlstate=%s error=\"%s\"", method, state, text);
        call_fail(c, SENTRA_UNAVAILABLE, "database unavailable");
    } else {
        log_error("db_error", "method=%s sqlstate=%s error=\"%s\" detail=\"%s\"",
                  method, state, text, det);
        call_fail(c, SENTRA_INTERNAL, "internal database error (sqlstate %s; logged)", state);
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
        } else if (status == DB_EXHAUSTED) {
            call_fail(c, SENTRA_RESOURCE_EXHAUSTED, "server busy: too many queries wait for the database; retry later");
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

/*
 * Reads a standby may serve (--db-read, server/db/replica.h). The router
 * may take a moment to choose (a LATEST read waits for the standby to
 * replay what the primary had when it arrived), so the statement and its
 * values are kept until then. A read the standby could not run (down,
 * or cancelled there for a conflict with recovery, 40001) runs again on
 * the primary: a read is safe to run twice.
 */
struct read_q {
    call_t *c;               /* NULL for a read-ahead */
    db_stmt_t *stmt;
    int nparams;
    char **values;           /* copies */
    int on_replica;          /* the query in flight runs on the standby */
    db_pool_t *primary;      /* read-ahead: where a failed standby read goes */
    db_query_t *q;           /* read-ahead: its query, for the result */
    call_ahead_cb ahead_cb;  /* read-ahead: the continuation */
    void *ahead_arg;
};

static int read_mode(const call_t *c)
{
    /* A pull's cursor may come from the primary: an older standby could
     * not place it (docs/SYNC.md, "xmax"), so pulls (and streams) never
     * take staleness. */
    if (c->method != NULL && (c->method->input == &sentra__v1__pull_changes_request__descriptor ||
                              c->method->input == &sentra__v1__stream_changes_request__descriptor))
        return REPLICA_LATEST;
    const char *v = call_metadata(c, "sentra-consistency");
    return v != NULL && strcmp(v, "bounded") == 0 ? REPLICA_BOUNDED : REPLICA_LATEST;
}

/* Whether a failed standby read should run again on the primary. */
static int read_retry(const struct read_q *rq, int status, PGresult *res)
{
    if (!rq->on_replica)
        return 0;
    if (status == DB_UNAVAILABLE)
        return 1;
    if (status != DB_OK || res == NULL)
        return 0;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return state != NULL && (strcmp(state, "40001") == 0 || strncmp(state, "08", 2) == 0 ||
                             strcmp(state, "57P01") == 0);
}

static void ahead_free(struct read_q *rq);

static void on_query_read(void *arg, int status, PGresult *res)
{
    struct read_q *rq = arg;
    call_t *c = rq->c;
    c->query = NULL;
    if (!(c->flags & CALL_F_ANSWERED) && read_retry(rq, status, res)) {
        rq->on_replica = 0;
        c->query = db_query(c->srv->db, rq->stmt, rq->nparams, (const char *const *)rq->values,
                            on_query_read, rq);
        return;    /* the reference passes to the new query */
    }
    ahead_free(rq);  /* the pool is done with the statement's values */
    on_query(c, status, res);
}

static void on_routed(void *arg, db_pool_t *pool, int on_replica)
{
    struct read_q *rq = arg;
    call_t *c = rq->c;
    if (pool == NULL || (c->flags & CALL_F_ANSWERED)) {
        ahead_free(rq);
        call_unref(c);
        return;
    }
    rq->on_replica = on_replica;
    c->query = db_query(pool, rq->stmt, rq->nparams, (const char *const *)rq->values,
                        on_query_read, rq);
}

static char **copy_values(call_t *c, int nparams, const char *const *values)
{
    char **v = c != NULL ? call_alloc(c, (size_t)(nparams + 1) * sizeof(char *))
                         : calloc((size_t)nparams + 1, sizeof(char *));
    if (v == NULL)
        abort();
    for (int i = 0; i < nparams; i++) {
        if (values[i] == NULL)
            continue;
        v[i] = c != NULL ? call_strdup(c, values[i]) : strdup(values[i]);
        if (v[i] == NULL)
            abort();
    }
    return v;
}

void call_query_read(call_t *c, db_stmt_t *stmt, int nparams,
                     const char *const *values, call_db_cb cb)
{
    if (c->srv->replica == NULL) {
        call_query(c, stmt, nparams, values, cb);
        return;
    }
    if (c->flags & CALL_F_ANSWERED)
        return;
    /* malloc'ed, not call memory, and freed when the query is done: a
     * stream (StreamChanges) reads again and again for as long as it is
     * open, and its call memory would grow with every read. */
    struct read_q *rq = calloc(1, sizeof(*rq));
    if (rq == NULL)
        abort();
    rq->c = c;
    rq->stmt = stmt;
    rq->nparams = nparams;
    rq->values = copy_values(NULL, nparams, values);
    c->refs++;
    c->query_cb = cb;
    replica_route(c->srv->replica, read_mode(c), on_routed, rq);
}

static void ahead_free(struct read_q *rq)
{
    for (int i = 0; i < rq->nparams; i++)
        free(rq->values[i]);
    free(rq->values);
    free(rq);
}

static void on_ahead(void *arg, int status, PGresult *res);

static void ahead_run(struct read_q *rq, db_pool_t *pool, int on_replica)
{
    rq->on_replica = on_replica;
    /* db_query never calls back before it returns: rq->q is set in time. */
    rq->q = db_query(pool, rq->stmt, rq->nparams, (const char *const *)rq->values, on_ahead, rq);
}

static void on_ahead(void *arg, int status, PGresult *res)
{
    struct read_q *rq = arg;
    if (read_retry(rq, status, res)) {
        ahead_run(rq, rq->primary, 0);
        return;
    }
    rq->ahead_cb(rq->ahead_arg, status == DB_OK ? db_query_take_result(rq->q) : NULL);
    ahead_free(rq);
}

static void on_ahead_routed(void *arg, db_pool_t *pool, int on_replica)
{
    struct read_q *rq = arg;
    if (pool == NULL) {
        rq->ahead_cb(rq->ahead_arg, NULL);
        ahead_free(rq);
        return;
    }
    ahead_run(rq, pool, on_replica);
}

void call_query_ahead(call_t *c, db_stmt_t *stmt, int nparams,
                      const char *const *values, call_ahead_cb cb, void *arg)
{
    struct read_q *rq = calloc(1, sizeof *rq);
    if (rq == NULL)
        abort();
    rq->stmt = stmt;
    rq->nparams = nparams;
    rq->values = copy_values(NULL, nparams, values);
    rq->primary = c->srv->db;
    rq->ahead_cb = cb;
    rq->ahead_arg = arg;
    if (c->srv->replica == NULL)
        ahead_run(rq, c->srv->db, 0);
    else
        replica_route(c->srv->replica, read_mode(c), on_ahead_routed, rq);
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
    if (!(m->flags & (METHOD_PUBLIC | METHOD_ANY_ROLE))) {
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
    if (c->sink->ready != NULL && c->sink_arg != NULL && c->sink->ready(c)) {
        /* The transport answered by itself (call_sink_t.ready). */
        finish(c, SENTRA_OK);
        return;
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

/* 1 when v has the shape of a token: "snt_" and 52 characters of RFC
 * 4648's base32 alphabet in lower case (token_cli.h). */
static int token_shaped(const char *v)
{
    if (strncmp(v, "snt_", 4) != 0 || strlen(v) != SENTRA_TOKEN_SECRET_LEN)
        return 0;
    for (v += 4; *v; v++)
        if (!((*v >= 'a' && *v <= 'z') || (*v >= '2' && *v <= '7')))
            return 0;
    return 1;
}

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
        /* Every token is made by sentra__token_secret: anything of another
         * shape is refused here, before any lookup. */
        return token_shaped(v) ? v : NULL;
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
    timer_at(t, on_deadline, c->deadline_ns);
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
    if (!(c->flags & CALL_F_ANSWERED) && c->timer == NULL && c->deadline_ns != CALL_NO_DEADLINE)
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

static void add_nul(void *arg, const char *path)
{
    violations_add(arg, path, "contains a NUL byte (U+0000), which no text field may hold");
}

/* Refuses a binary request whose string fields hold NUL bytes, which the
 * decoded strings would silently drop (pbscan.h). Returns 1 when it did. */
static int refuse_nul(call_t *c, const uint8_t *data, size_t len)
{
    violations_t v = { 0 };
    /* A method of METHOD_RECORD_PATHS names the fields of the record in
     * its request's field 1 without that field's name ("name", not
     * "sentra.name" or "member.name"). */
    const ProtobufCFieldDescriptor *rec =
        (c->method->flags & METHOD_RECORD_PATHS)
            ? protobuf_c_message_descriptor_get_field(c->method->input, 1) : NULL;
    int n = sentra__pbscan_nul(c->method->input, data, len,
                               rec && rec->type == PROTOBUF_C_TYPE_MESSAGE ? rec->name : NULL,
                               add_nul, &v);
    if (n > 0)
        call_fail_violations(c, &v);
    violations_free(&v);
    return n > 0;
}

/* Decodes the request message data[0..len) in the method's type into
 * c->msg. Returns 0, or -1 after answering (not such a message, or one
 * that decodes into more than its budget). */
static int decode(call_t *c, int codec, const uint8_t *data, size_t len)
{
    const ProtobufCMessageDescriptor *d = c->method->input;
    size_t budget = CALL_DECODE_BUDGET(len), used = 0;
    int too_big = 0;

    if (codec == CALL_CODEC_JSON) {
        /* pbjson counts jansson's memory and the message's against its own
         * cap; the server-wide account holds that cap while it decodes and
         * then twice the text for the message. */
        char why[320];
        size_t cap = JSON_DECODE_MEMORY(len), keep = 2 * len;
        if (mem_take(c, cap) != 0) {
            call_fail(c, SENTRA_RESOURCE_EXHAUSTED, "the server holds too many requests; retry later");
            return -1;
        }
        c->msg = pbjson_decode(d, (const char *)data, len, cap, why, sizeof(why));
        mem_release(c, c->msg != NULL && keep < cap ? cap - keep : cap);
        if (c->msg != NULL)
            return 0;
        call_fail(c, SENTRA_INVALID_ARGUMENT, "payload is not a valid %s in JSON: %s", d->name, why);
        return -1;
    }
    if (codec != CALL_CODEC_PROTO) {
        call_fail(c, SENTRA_INVALID_ARGUMENT, "this server does not read that encoding");
        return -1;
    }
    if (refuse_nul(c, data, len))
        return -1;
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

uint8_t *call_encode(const ProtobufCMessage *m, int codec, size_t *len)
{
    if (codec == CALL_CODEC_JSON)
        return (uint8_t *)pbjson_encode(m, 0, len);
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        abort();
    protobuf_c_message_pack(m, buf);
    *len = n;
    return buf;
}

static void start(call_t *c, const call_request_t *req)
{
    server_t *srv = c->srv;
    const config_t *cfg = srv->cfg;
    srv->requests++;
    /* Read before any query of this call is sent: what it reads can only
     * be newer (the ETags of Connect GETs rest on this). */
    c->generation = srv->generation;
    c->codec = req->codec;

    const method_t *m = method_find(req->method ? req->method : "");
    if (m == NULL || ((m->flags & METHOD_DEBUG) && !cfg->enable_debug)) {
        /* Quoted back only when it is short, printable ASCII, as every
         * method name is: never bytes that could break the answer. */
        const char *name = req->method ? req->method : "";
        if (sentra__printable_ascii(name) && strlen(name) <= 200)
            call_fail(c, SENTRA_UNIMPLEMENTED, "unknown method \"%s\"", name);
        else
            call_fail(c, SENTRA_UNIMPLEMENTED, "unknown method (its name is not shown: "
                                               "not 1 to 200 printable ASCII characters)");
        return;
    }
    c->method = m;

    uint32_t ms = req->timeout_ms ? req->timeout_ms : (uint32_t)cfg->default_deadline_ms;
    if (ms > (uint32_t)cfg->max_deadline_ms)
        ms = (uint32_t)cfg->max_deadline_ms;   /* bounds what one request may hold */
    c->deadline_ns = c->start_ns + (uint64_t)ms * 1000000;
    if (req->timeout_ms == 0 && (m->flags & METHOD_STREAM))
        c->deadline_ns = CALL_NO_DEADLINE;   /* a stream lasts as long as its client wants */

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
                  "missing or malformed \"authorization: Bearer <token>\" metadata"
                  " (a token is snt_ and 52 base32 characters)");
        return;
    }
    auth_digest_memo(req->auth_memo, secret, c->digest);
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
    c->sink_arg = NULL;          /* so finish() leaves the transport alone */
    c->writable_cb = NULL;
    if (!(c->flags & CALL_F_ANSWERED)) {
        /* As a cancel by the client (its connection went), and logged as
         * one: a stream's end is otherwise never in the request log. */
        c->flags |= CALL_F_CANCELLED;
        finish(c, SENTRA_CANCELLED);
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
    timer_at(t, on_wait_timer, uv_hrtime() + (ms > 0 ? (uint64_t)ms * 1000000 : 0));
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
