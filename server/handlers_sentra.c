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
#include "methods.h"
#include "sentra_row.h"
#include "validate.h"
#include "sentra/v1/sentra.pb-c.h"

/* ---------------------------------------------------------------- helpers */

static void add_violation(void *arg, const char *field, const char *reason)
{
    violations_add(arg, field, "%s", reason);
}

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
    validate_ctx_t vc = {.today = validate_today(), .report = add_violation, \
                         .arg = &v}

static const char *idem(const call_t *c)
{
    return c->idempotency_key && c->idempotency_key[0] ? c->idempotency_key : NULL;
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
    "$22, $23, $24, $25::jsonb)", 0};

void h_create_sentra(call_t *c)
{
    const Sentra__V1__CreateSentraRequest *req = (const void *)c->msg;
    const char *v[5 + SENTRA_NPARAMS];
    VALIDATOR(vc, viol);

    if (req->sentra == NULL) {
        violations_add(&viol, "sentra", "is required");
        vc.count++;
    } else {
        validate_sentra(&vc, req->sentra, VF_ALL, 0);
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

/* Scope in the WHERE clause: a record the token may not read is simply not
 * found, exactly like a missing or deleted one. */
static db_stmt_t get_stmt = {
    "SELECT * FROM sentra_rows "
    "WHERE id = $1::uuid AND NOT deleted "
    "AND sentra_can_read($2, $3, regency_code, province_code) "
    "ORDER BY fig_year", 0};

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
    call_query(c, &get_stmt, 3, v, reply_one);
}

/* ---------------------------------------------------------------- update */

static db_stmt_t update_stmt = {
    "SELECT * FROM sentra_update($1::uuid, $2, $3, $4, $5::uuid, $6::bigint, $7::text[], "
    "$8, $9, $10, $11, $12::float8, $13::float8, $14, $15, $16, $17, "
    "$18::smallint, $19::smallint, $20::smallint, $21::date, $22, $23::date, "
    "$24, $25, $26, $27::jsonb)", 0};

void h_update_sentra(call_t *c)
{
    const Sentra__V1__UpdateSentraRequest *req = (const void *)c->msg;
    const char *v[7 + SENTRA_NPARAMS];
    unsigned fields = 0;
    VALIDATOR(vc, viol);

    if (req->sentra == NULL) {
        violations_add(&viol, "sentra", "is required");
        vc.count++;
    } else {
        fields = validate_mask(&vc, (const char *const *)req->update_mask, req->n_update_mask);
        if (fields)
            validate_sentra(&vc, req->sentra, fields, 1);
    }
    if (req->expected_version <= 0) {
        violations_add(&viol, "expected_version", "is required (the version last read)");
        vc.count++;
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
    "SELECT id, version FROM sentra_delete($1::uuid, $2, $3, $4, $5::uuid, $6::bigint)", 0};

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
 * hex-encoded. One statement per (order, direction), built once from a
 * template; the filters are "$n IS NULL OR ..." terms, which PostgreSQL's
 * custom plans fold away, leaving the indexable ones.
 */

#define LIST_FILTERS \
    " s.deleted_at IS NULL" \
    " AND sentra_can_read($1, $2, s.regency_code, s.province_code)" \
    " AND ($3::text IS NULL OR s.province_code = $3)" \
    " AND ($4::text IS NULL OR s.regency_code = $4)" \
    " AND ($5::smallint[] IS NULL OR s.status = ANY ($5::smallint[]))" \
    " AND ($6::smallint[] IS NULL OR s.sector_group = ANY ($6::smallint[]))" \
    " AND ($7::text IS NULL OR s.kbli_code LIKE $7 || '%%')" \
    " AND ($8::boolean IS NULL OR s.designated = $8)" \
    " AND ($9::text IS NULL OR s.search LIKE '%%' || lower($9) || '%%')" \
    " AND ($10::bigint IS NULL OR s.updated_at >= 'epoch'::timestamptz + $10::bigint * interval '1 millisecond')"

#define LIST_NPARAMS 14

/* Per order: the key column, its cursor text, and its cursor comparison
 * value built from $11. */
static const struct {
    const char *key, *key_text, *key_param;
} orders[3] = {
    [SENTRA__V1__SENTRA_ORDER__SENTRA_ORDER_NAME] =
        {"s.name", "s.name", "$11::text"},
    [SENTRA__V1__SENTRA_ORDER__SENTRA_ORDER_CREATED] =
        {"s.created_at", "(extract(epoch FROM s.created_at) * 1000000)::bigint::text",
         "'epoch'::timestamptz + $11::bigint * interval '1 microsecond'"},
    [SENTRA__V1__SENTRA_ORDER__SENTRA_ORDER_UPDATED] =
        {"s.updated_at", "(extract(epoch FROM s.updated_at) * 1000000)::bigint::text",
         "'epoch'::timestamptz + $11::bigint * interval '1 microsecond'"},
};

static db_stmt_t list_stmts[3][2];
static char list_sql[3][2][4096];

static db_stmt_t *list_stmt(int order, int desc)
{
    db_stmt_t *st = &list_stmts[order][desc];
    if (st->sql == NULL) {
        const char *dir = desc ? "DESC" : "ASC", *cmp = desc ? "<" : ">";
        snprintf(list_sql[order][desc], sizeof list_sql[0][0],
                 "WITH page AS ("
                 "SELECT s.id, %s AS k, %s AS kt FROM sentra s WHERE" LIST_FILTERS
                 " AND ($12::uuid IS NULL OR (%s, s.id) %s (%s, $12::uuid))"
                 " ORDER BY %s %s, s.id %s LIMIT $13::int) "
                 "SELECT " SENTRA_ROW_COLUMNS ", p.kt, t.total "
                 "FROM (SELECT CASE WHEN $14::boolean THEN (SELECT count(*) FROM sentra s WHERE"
                 LIST_FILTERS ") END AS total) t "
                 "LEFT JOIN (page p JOIN sentra_rows r ON r.id = p.id) ON true "
                 "ORDER BY p.k %s, p.id %s, r.fig_year",
                 orders[order].key, orders[order].key_text, orders[order].key,
                 cmp, orders[order].key_param, orders[order].key, dir, dir, dir, dir);
        st->sql = list_sql[order][desc];
    }
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
    *key = bar1 + 1;
    *id = bar2 + 1;
    return 1;
}

/* An SQL array literal of small integers, or NULL when n == 0. */
static const char *int_array(call_t *c, const int *vals, size_t n)
{
    if (n == 0)
        return NULL;
    char *out = call_alloc(c, n * 12 + 3), *p = out;
    *p++ = '{';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%d", i ? "," : "", vals[i]);
    *p++ = '}';
    *p = '\0';
    return out;
}

/* LIKE metacharacters escaped with backslash (LIKE's default escape). */
static const char *like_escape(call_t *c, const char *s)
{
    char *out = call_alloc(c, 2 * strlen(s) + 1), *p = out;
    for (; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\')
            *p++ = '\\';
        *p++ = *s;
    }
    *p = '\0';
    return out;
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
    const Sentra__V1__SentraFilter *f = req->filter;
    const char *v[LIST_NPARAMS] = {0};
    const char *key = NULL, *id = NULL;
    int order = (int)req->order_by, desc = req->descending ? 1 : 0;
    VALIDATOR(vc, viol);

    validate_filter(&vc, f, "filter.");
    if (order < 0 || order > 2) {
        violations_add(&viol, "order_by", "is not a known order");
        vc.count++;
    }
    if (req->page_size < 0) {
        violations_add(&viol, "page_size", "must not be negative");
        vc.count++;
    }
    if (vc.count == 0 && req->page_token && req->page_token[0] &&
        !page_token_decode(c, req->page_token, order, desc, &key, &id)) {
        violations_add(&viol, "page_token", "is not a token from this listing and order");
        vc.count++;
    }
    if (fail_if_invalid(c, &vc, &viol))
        return;

    v[0] = auth_role_name(c->auth.role);
    v[1] = c->auth.region;
    if (f) {
        int vals[64];
        size_t k;
        v[2] = f->province_code && f->province_code[0] ? f->province_code : NULL;
        v[3] = f->regency_code && f->regency_code[0] ? f->regency_code : NULL;
        for (k = 0; k < f->n_status && k < 64; k++)
            vals[k] = (int)f->status[k];
        v[4] = int_array(c, vals, k);
        for (k = 0; k < f->n_sector_group && k < 64; k++)
            vals[k] = (int)f->sector_group[k];
        v[5] = int_array(c, vals, k);
        v[6] = f->kbli_prefix && f->kbli_prefix[0] ? f->kbli_prefix : NULL;
        v[7] = f->designation == SENTRA__V1__DESIGNATION__DESIGNATION_DESIGNATED ? "true"
             : f->designation == SENTRA__V1__DESIGNATION__DESIGNATION_NOT_DESIGNATED ? "false"
             : NULL;
        v[8] = f->text && f->text[0] ? like_escape(c, f->text) : NULL;
        v[9] = f->updated_since_ms > 0
             ? call_printf(c, "%lld", (long long)f->updated_since_ms) : NULL;
    }
    v[10] = key;
    v[11] = id;
    v[12] = call_printf(c, "%d", list_page_size(req) + 1);
    v[13] = req->include_total ? "true" : "false";
    call_query(c, list_stmt(order, desc), LIST_NPARAMS, v, list_reply);
}
