/*
 * handlers_sentra.c: CreateSentra, GetSentra, UpdateSentra, DeleteSentra
 * and ListSentra.
 *
 * Each method is one SQL statement, one round trip. Writes call the
 * PL/pgSQL functions of migrations/0004_sentra_functions.sql, which check
 * scope, version and the rules that need the database, write the record
 * and answer it back; reads carry the token's scope in their WHERE clause.
 * Requests are validated here first (validate.c), so the common mistakes
 * are answered without a query and with one violation per field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "filter.h"
#include "log.h"
#include "methods.h"
#include "region_check.h"
#include "sentra_row.h"
#include "validate.h"
#include "sentra/v1/sentra.pb-c.h"

/* ---------------------------------------------------------------- helpers */

/* Answers INVALID_ARGUMENT if vc found anything; returns 1 when it did. */
static int fail_if_invalid(call_t *c, validate_ctx_t *vc, violations_t *v)
{
    if (vc->count == 0)
        return 0;
    call_fail_violations(c, v);
    violations_free(v);
    return 1;
}

#define VALIDATOR(vc, v)                                                   \
    violations_t v = {0};                                                  \
    validate_ctx_t vc = {.today = validate_today(), .report = violations_report, \
                         .arg = &v, .max = CALL_MAX_VIOLATIONS}

static const char *idem(const call_t *c)
{
    return c->idempotency_key && c->idempotency_key[0] ? c->idempotency_key : NULL;
}

/* The idempotency key is stored as text: the text rule applies (UTF-8, no
 * control or formatting character). The call layer caps its bytes. */
static void check_idem(call_t *c, validate_ctx_t *vc)
{
    if (idem(c))
        validate_text(vc, "idempotency_key", c->idempotency_key, 0, 128, TEXT_SINGLE_LINE);
}

/* Adds the lines of a region check (region_check.h) to the violations of a
 * refused record; an error there leaves the C violations to answer alone. */
static void merge_region_rows(call_t *c, validate_ctx_t *vc, PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_warn("region_check_failed", "method=%s error=\"%s\"", c->method->name,
                 PQresultErrorField(res, PG_DIAG_SQLSTATE) ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "?");
        return;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        vc->count++;
        violations_report(vc->arg, PQgetvalue(res, r, REGION_CHECK_COL_FIELD),
                          PQgetvalue(res, r, REGION_CHECK_COL_REASON));
    }
}

/* Replies with the single sentra in res, or NOT_FOUND. */
static void reply_one(call_t *c, PGresult *res)
{
    int row = 0;
    Sentra__V1__Sentra *s;

    if (call_db_error(c, res))
        return;
    s = sentra__from_rows(c, res, &row);
    if (s == NULL) {
        call_fail(c, SENTRA_NOT_FOUND, "no such sentra");
        return;
    }
    call_reply(c, &s->base);
}

/* ---------------------------------------------------------------- create */

static db_stmt_t create_stmt = {
    "SELECT * FROM sentra_create($1::uuid, $2, $3, $4, $5::uuid, "
    "$6, $7, $8, $9, $10::float8, $11::float8, $12, $13, $14, $15, "
    "$16::smallint, $17::smallint, $18::smallint, $19::date, $20, $21::date, "
    "$22, $23, $24, $25::jsonb)", 0, 0};

/* Every rule of a create that needs no database. */
static void create_validate(call_t *c, validate_ctx_t *vc)
{
    const Sentra__V1__CreateSentraRequest *req = (const void *)c->msg;

    if (req->sentra == NULL) {
        violations_report(vc->arg, "sentra", "is required");
        vc->count++;
    } else {
        validate_sentra(vc, req->sentra, VF_ALL, 0);
    }
    check_idem(c, vc);
}

/* A refused create, once the database has checked its regions. */
static void create_refused(call_t *c, PGresult *res)
{
    VALIDATOR(vc, viol);

    create_validate(c, &vc);
    merge_region_rows(c, &vc, res);
    fail_if_invalid(c, &vc, &viol);
}

void h_create_sentra(call_t *c)
{
    const Sentra__V1__CreateSentraRequest *req = (const void *)c->msg;
    const char *v[5 + SENTRA_NPARAMS];
    region_codes_t rc;
    VALIDATOR(vc, viol);

    create_validate(c, &vc);
    if (vc.count > 0 && req->sentra && sentra__region_codes(req->sentra, VF_ALL, &rc) &&
        sentra__region_check(c, &rc, 1, NULL, create_refused)) {
        /* Refused: but say in the same answer whether its regions exist. */
        violations_free(&viol);
        return;
    }
    if (fail_if_invalid(c, &vc, &viol))
        return;
    v[0] = c->auth.token_id;
    v[1] = auth_role_name(c->auth.role);
    v[2] = c->auth.region;
    v[3] = idem(c);
    v[4] = req->sentra->id && req->sentra->id[0] ? req->sentra->id : NULL;
    sentra__params(c, req->sentra, v + 5);
    call_query(c, &create_stmt, 5 + SENTRA_NPARAMS, v, reply_one);
}

/* ---------------------------------------------------------------- get */

/* The record as sentra_pull keeps it printed (migrations/0007_pull_rows.sql),
 * the text PullChanges sends too: one key probe and one text column. Reading
 * sentra_rows (the record joined to its figures, about 40 columns printed
 * per figures year), GetSentra ran at 19,000 to 21,000 a second against
 * 33,000 to 36,000 (docs/BENCHMARKS.md). Scope in the WHERE clause: a record the token may
 * not read is simply not found, exactly like a missing or deleted one. */
static db_stmt_t get_stmt = {
    "SELECT p.sentra_id, p.version, p.deleted, p.packed FROM sentra_pull p "
    "WHERE p.sentra_id = $1::uuid AND NOT p.deleted "
    "AND sentra_can_read($2, $3, p.regency_code, split_part(p.regency_code, '.', 1))", 0, 1};

static void reply_printed(call_t *c, PGresult *res)
{
    Sentra__V1__Sentra *s;

    if (call_db_error(c, res))
        return;
    s = PQntuples(res) == 1 ? sentra__from_pull(c, res, 0) : NULL;
    if (s == NULL) {
        call_fail(c, SENTRA_NOT_FOUND, "no such sentra");
        return;
    }
    call_reply(c, &s->base);
}

void h_get_sentra(call_t *c)
{
    const Sentra__V1__GetSentraRequest *req = (const void *)c->msg;
    const char *v[3];

    if (!validate_uuid(req->id)) {
        violations_t viol = {0};
        violations_add(&viol, "id", "%s", req->id && req->id[0] ? "must be a UUID" : "is required");
        call_fail_violations(c, &viol);
        violations_free(&viol);
        return;
    }
    v[0] = req->id;
    v[1] = auth_role_name(c->auth.role);
    v[2] = c->auth.region;
    call_query(c, &get_stmt, 3, v, reply_printed);
}

/* ---------------------------------------------------------------- update */

static db_stmt_t update_stmt = {
    "SELECT * FROM sentra_update($1::uuid, $2, $3, $4, $5::uuid, $6::bigint, $7::text[], "
    "$8, $9, $10, $11, $12::float8, $13::float8, $14, $15, $16, $17, "
    "$18::smallint, $19::smallint, $20::smallint, $21::date, $22, $23::date, "
    "$24, $25, $26, $27::jsonb)", 0, 0};

/* Every rule of an update that needs no database; returns the fields
 * written (0 when the mask is bad or the record missing). */
static unsigned update_validate(call_t *c, validate_ctx_t *vc)
{
    const Sentra__V1__UpdateSentraRequest *req = (const void *)c->msg;
    unsigned fields = 0;

    if (req->sentra == NULL) {
        violations_report(vc->arg, "sentra", "is required");
        vc->count++;
    } else {
        fields = validate_mask(vc, (const char *const *)req->update_mask, req->n_update_mask);
        if (fields)
            validate_sentra(vc, req->sentra, fields, 1);
    }
    if (req->expected_version <= 0) {
        violations_report(vc->arg, "expected_version", "is required (the version last read)");
        vc->count++;
    }
    check_idem(c, vc);
    return fields;
}

static void update_refused(call_t *c, PGresult *res)
{
    VALIDATOR(vc, viol);

    update_validate(c, &vc);
    merge_region_rows(c, &vc, res);
    fail_if_invalid(c, &vc, &viol);
}

void h_update_sentra(call_t *c)
{
    const Sentra__V1__UpdateSentraRequest *req = (const void *)c->msg;
    const char *v[7 + SENTRA_NPARAMS];
    unsigned fields;
    region_codes_t rc;
    VALIDATOR(vc, viol);

    fields = update_validate(c, &vc);
    /* A sub-district written without its regency is checked against the
     * stored one. */
    const char *stored = fields && !(fields & VF_REGENCY_CODE) && validate_uuid(req->sentra->id)
                             ? req->sentra->id : NULL;
    if (vc.count > 0 && fields && sentra__region_codes(req->sentra, fields, &rc) &&
        sentra__region_check(c, &rc, 1, stored, update_refused)) {
        violations_free(&viol);
        return;
    }
    if (fail_if_invalid(c, &vc, &viol))
        return;

    /* The mask as a text[] literal of canonical names (plain identifiers
     * and dots: nothing to quote). */
    char mask[512];
    size_t len = 0;
    mask[len++] = '{';
    for (int i = 0; i < VF_COUNT; i++) {
        if (!(fields & (1u << i)))
            continue;
        len += (size_t)snprintf(mask + len, sizeof mask - len, "%s%s",
                                len > 1 ? "," : "", validate_field_name(i));
    }
    mask[len++] = '}';
    mask[len] = '\0';

    v[0] = c->auth.token_id;
    v[1] = auth_role_name(c->auth.role);
    v[2] = c->auth.region;
    v[3] = idem(c);
    v[4] = req->sentra->id;
    v[5] = call_printf(c, "%lld", (long long)req->expected_version);
    v[6] = mask;
    sentra__params(c, req->sentra, v + 7);
    call_query(c, &update_stmt, 7 + SENTRA_NPARAMS, v, reply_one);
}

/* ---------------------------------------------------------------- delete */

static db_stmt_t delete_stmt = {
    "SELECT id, version FROM sentra_delete($1::uuid, $2, $3, $4, $5::uuid, $6::bigint)", 0, 0};

static void delete_done(call_t *c, PGresult *res)
{
    Sentra__V1__DeleteSentraResponse resp = SENTRA__V1__DELETE_SENTRA_RESPONSE__INIT;

    if (call_db_error(c, res))
        return;
    if (PQntuples(res) != 1) {
        call_fail(c, SENTRA_NOT_FOUND, "no such sentra");
        return;
    }
    resp.id = PQgetvalue(res, 0, 0);
    resp.version = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    call_reply(c, &resp.base);
}

void h_delete_sentra(call_t *c)
{
    const Sentra__V1__DeleteSentraRequest *req = (const void *)c->msg;
    const char *v[6];
    VALIDATOR(vc, viol);

    if (!validate_uuid(req->id)) {
        violations_add(&viol, "id", "%s", req->id && req->id[0] ? "must be a UUID" : "is required");
        vc.count++;
    }
    if (req->expected_version <= 0) {
        violations_add(&viol, "expected_version", "is required (the version last read)");
        vc.count++;
    }
    check_idem(c, &vc);
    if (fail_if_invalid(c, &vc, &viol))
        return;
    v[0] = c->auth.token_id;
    v[1] = auth_role_name(c->auth.role);
    v[2] = c->auth.region;
    v[3] = idem(c);
    v[4] = req->id;
    v[5] = call_printf(c, "%lld", (long long)req->expected_version);
    call_query(c, &delete_stmt, 6, v, delete_done);
}

/* ---------------------------------------------------------------- list */

/*
 * ListSentra pages with a keyset cursor over (sort key, id): stable under
 * concurrent inserts and deletes, and each page costs the same. The page
 * token carries the order, the direction, the last key and the last id,
 * hex-encoded. The filter's conditions come from filter.c (the same rows
 * as the statistics for the same filter); the SQL text depends only on the
 * filter's shape, the order, the direction and whether a cursor is given
 * (3 x 2 x 2 x 2^11 combinations). Each request builds its text into call
 * memory (a few microseconds); the pool keeps the most used prepared, in a
 * bounded LRU per connection (db.h), so no shape costs memory for ever.
 */

/* Per order: the key column, its cursor text, and the key value rebuilt
 * from a cursor parameter (%d: its number). */
static const struct {
    const char *key, *key_text, *key_param;
} orders[3] = {
    [SENTRA__V1__SENTRA_ORDER__SENTRA_ORDER_NAME] =
        {"a.name", "a.name", "$%d::text"},
    [SENTRA__V1__SENTRA_ORDER__SENTRA_ORDER_CREATED] =
        {"a.created_at", "(extract(epoch FROM a.created_at) * 1000000)::bigint::text",
         "'epoch'::timestamptz + $%d::bigint * interval '1 microsecond'"},
    [SENTRA__V1__SENTRA_ORDER__SENTRA_ORDER_UPDATED] =
        {"a.updated_at", "(extract(epoch FROM a.updated_at) * 1000000)::bigint::text",
         "'epoch'::timestamptz + $%d::bigint * interval '1 microsecond'"},
};

/* The statement for a filter shape with nf parameters, in call memory;
 * the four parameters after them are cursor key, cursor id, limit and
 * include_total. Aborts on OOM. */
static db_stmt_t *list_stmt(call_t *c, unsigned shape, int nf, int order, int desc, int cursor)
{
    char where[2048], where_s[2048], keyp[128], cur[384], sql[8192];
    const char *dir = desc ? "DESC" : "ASC";
    int pkey = nf + 1, pid = nf + 2, plim = nf + 3, ptot = nf + 4;

    if (sentra__filter_sql(shape, "a", 1, where, sizeof where) >= sizeof where ||
        sentra__filter_sql(shape, "s", 1, where_s, sizeof where_s) >= sizeof where_s)
        abort();
    cur[0] = '\0';
    if (cursor) {
        snprintf(keyp, sizeof keyp, orders[order].key_param, pkey);
        snprintf(cur, sizeof cur, " AND (%s, a.id) %s (%s, $%d::uuid)",
                 orders[order].key, desc ? "<" : ">", keyp, pid);
    } else {
        /* keep every parameter referenced, so their types are known */
        snprintf(cur, sizeof cur, " AND ($%d::text IS NULL OR true) AND ($%d::uuid IS NULL OR true)",
                 pkey, pid);
    }
    /* The page is chosen on sentra_api (the raw columns, in index order),
     * so the output columns are computed only for its rows; its figures
     * are joined after the LIMIT. */
    int n = snprintf(sql, sizeof sql,
        "WITH page AS ("
        "SELECT a.*, %s AS k, %s AS kt FROM sentra_api a WHERE true%s%s"
        " ORDER BY %s %s, a.id %s LIMIT $%d::int) "
        "SELECT " SENTRA_ROW_COLUMNS_OF("p", "f") ", p.kt, t.total "
        "FROM (SELECT CASE WHEN $%d::boolean THEN "
        "(SELECT count(*) FROM sentra s WHERE true%s) END AS total) t "
        "LEFT JOIN (page p LEFT JOIN sentra_figures f ON f.sentra_id = p.id) ON true "
        "ORDER BY p.k %s, p.id %s, f.year",
        orders[order].key, orders[order].key_text, where, cur,
        orders[order].key, dir, dir, plim, ptot, where_s, dir, dir);
    if (n < 0 || (size_t)n >= sizeof sql)
        abort();
    db_stmt_t *st = call_alloc(c, sizeof *st);
    st->sql = call_strdup(c, sql);
    return st;
}

static char *hex_encode(call_t *c, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    char *out = call_alloc(c, 2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[(unsigned char)s[i] >> 4];
        out[2 * i + 1] = hex[(unsigned char)s[i] & 15];
    }
    return out;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* A time order's cursor key: microseconds since 1970 as printed by the
 * list statement, within PostgreSQL's timestamps of years 1 to 9999, so a
 * forged token can make neither a cast nor the date arithmetic fail. */
static int time_key_ok(const char *k)
{
    const char *d = k[0] == '-' ? k + 1 : k;
    size_t n = strlen(d);

    if (n == 0 || n > 18)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (d[i] < '0' || d[i] > '9')
            return 0;
    long long v = strtoll(k, NULL, 10);     /* 18 digits: no overflow */
    return v >= -62135596800000000LL && v <= 253402300799999999LL;
}

/* Decodes a page token "<order><dir>|<key>|<uuid>" (hex). Returns 1 and
 * points *key and *id into call memory, or 0 when malformed or made for
 * another order. */
static int page_token_decode(call_t *c, const char *tok, int order, int desc,
                             const char **key, const char **id)
{
    size_t n = strlen(tok);
    if (n % 2 || n > 4096)
        return 0;
    char *raw = call_alloc(c, n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(tok[2 * i]), lo = hexval(tok[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        raw[i] = (char)(hi << 4 | lo);
        if (raw[i] == '\0')
            return 0;
    }
    char *bar1 = strchr(raw, '|'), *bar2 = strrchr(raw, '|');
    if (!bar1 || bar1 == bar2 || bar1 != raw + 2)
        return 0;
    if (raw[0] != '0' + order || raw[1] != '0' + desc)
        return 0;
    *bar1 = *bar2 = '\0';
    if (!validate_uuid(bar2 + 1) || !validate_utf8(bar1 + 1, strlen(bar1 + 1), NULL))
        return 0;
    if (order != SENTRA__V1__SENTRA_ORDER__SENTRA_ORDER_NAME && !time_key_ok(bar1 + 1))
        return 0;
    *key = bar1 + 1;
    *id = bar2 + 1;
    return 1;
}

/* Page size as served: default 50, at most 1000. */
static int list_page_size(const Sentra__V1__ListSentraRequest *req)
{
    if (req->page_size <= 0)
        return 50;
    return req->page_size > 1000 ? 1000 : req->page_size;
}

/* Rows: the page's sentra (rows of one sentra adjacent, page_size + 1 at
 * most, the extra one only telling that more exist), each row ending with
 * the cursor text of its key and the total; or a single row of NULLs but
 * the total when the page is empty. The handler's settings are read again
 * from the request, which lives as long as the call. */
static void list_reply(call_t *c, PGresult *res)
{
    const Sentra__V1__ListSentraRequest *req = (const void *)c->msg;
    Sentra__V1__ListSentraResponse resp = SENTRA__V1__LIST_SENTRA_RESPONSE__INIT;
    int page_size = list_page_size(req);
    int order = (int)req->order_by, desc = req->descending ? 1 : 0;
    int n, row = 0, last_row = -1;

    if (call_db_error(c, res))
        return;
    n = PQntuples(res);
    if (n > 0 && PQgetisnull(res, 0, SENTRA_COL_ID))
        n = 0;                              /* the empty page's single row */
    resp.sentra = call_alloc(c, (size_t)(page_size + 1) * sizeof *resp.sentra);
    while (row < n) {
        int start = row;
        if (resp.n_sentra == (size_t)page_size) {
            /* one more exists: the cursor is the last one served */
            const char *tok = call_printf(c, "%d%d|%s|%s", order, desc,
                                          PQgetvalue(res, last_row, SENTRA_NCOLS),
                                          PQgetvalue(res, last_row, SENTRA_COL_ID));
            resp.next_page_token = hex_encode(c, tok);
            break;
        }
        Sentra__V1__Sentra *s = sentra__from_rows(c, res, &row);
        if (s == NULL)
            break;
        resp.sentra[resp.n_sentra++] = s;
        last_row = start;
    }
    if (req->include_total && PQntuples(res) > 0)
        resp.total = strtoll(PQgetvalue(res, 0, SENTRA_NCOLS + 1), NULL, 10);
    call_reply(c, &resp.base);
}

void h_list_sentra(call_t *c)
{
    const Sentra__V1__ListSentraRequest *req = (const void *)c->msg;
    const char *v[SF_MAX_PARAMS + 4];
    const char *key = NULL, *id = NULL;
    int order = (int)req->order_by, desc = req->descending ? 1 : 0;
    sentra_filter_t f;
    violations_t viol = {0};
    int bad;

    bad = sentra__filter_check(req->filter, &viol);
    if (order < 0 || order > 2) {
        violations_add(&viol, "order_by", "is not a known order");
        bad++;
    }
    if (req->page_size < 0) {
        violations_add(&viol, "page_size", "must not be negative");
        bad++;
    }
    if (!bad && req->page_token && req->page_token[0] &&
        !page_token_decode(c, req->page_token, order, desc, &key, &id)) {
        violations_add(&viol, "page_token", "is not a token from this listing and order");
        bad++;
    }
    if (bad) {
        call_fail_violations(c, &viol);
        violations_free(&viol);
        return;
    }

    sentra__filter_bind(c, req->filter, &f);
    memcpy(v, f.params, (size_t)f.nparams * sizeof *v);
    v[f.nparams] = key;
    v[f.nparams + 1] = id;
    v[f.nparams + 2] = call_printf(c, "%d", list_page_size(req) + 1);
    v[f.nparams + 3] = req->include_total ? "true" : "false";
    call_query_read(c, list_stmt(c, f.shape, f.nparams, order, desc, key != NULL),
                    f.nparams + 4, v, list_reply);
}
