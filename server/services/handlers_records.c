/*
 * handlers_records.c: RecordService, the records of a sentra: Create, Get,
 * Update, Delete and List of members, obstacles and assistance, and Get,
 * Set, Delete and List of institutions.
 *
 * One code path serves every kind (records.h describes them): each method
 * is one SQL statement, one round trip, as for sentra. Writes call the
 * functions of migrations/0013_records.sql, which check the sentra, the
 * scope, the version and the rules that need the database, write, and
 * answer the record; reads carry the token's scope in their WHERE clause.
 * Requests are checked in C first (validate_records.c), so that the common
 * mistakes are answered without a query, one violation per field.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "log.h"
#include "methods.h"
#include "records.h"
#include "validate_records.h"
#include "sentra/v1/sentra.pb-c.h"

/* ---------------------------------------------------------------- requests */

/* The member of field number id of request m (requests are ours: the field
 * exists). */
static const void *req_field(const ProtobufCMessage *m, unsigned id)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(m->descriptor, id);
    return (const char *)m + f->offset;
}

#define REQ_MSG(m, id) (*(const ProtobufCMessage *const *)req_field((m), (id)))
#define REQ_STR(m, id) (*(const char *const *)req_field((m), (id)))
#define REQ_I64(m, id) (*(const int64_t *)req_field((m), (id)))
#define REQ_I32(m, id) (*(const int32_t *)req_field((m), (id)))
#define REQ_BOOL(m, id) (*(const protobuf_c_boolean *)req_field((m), (id)))

/* The kind a request is about, from its type. */
static const rec_kind_t *call_kind(const call_t *c)
{
    static const struct {
        const ProtobufCMessageDescriptor *req;
        const rec_kind_t *kind;
    } by_request[] = {
        {&sentra__v1__create_member_request__descriptor, &rec_member},
        {&sentra__v1__get_member_request__descriptor, &rec_member},
        {&sentra__v1__update_member_request__descriptor, &rec_member},
        {&sentra__v1__delete_member_request__descriptor, &rec_member},
        {&sentra__v1__list_members_request__descriptor, &rec_member},
        {&sentra__v1__get_institution_request__descriptor, &rec_institution},
        {&sentra__v1__set_institution_request__descriptor, &rec_institution},
        {&sentra__v1__delete_institution_request__descriptor, &rec_institution},
        {&sentra__v1__list_institutions_request__descriptor, &rec_institution},
        {&sentra__v1__create_obstacle_request__descriptor, &rec_obstacle},
        {&sentra__v1__get_obstacle_request__descriptor, &rec_obstacle},
        {&sentra__v1__update_obstacle_request__descriptor, &rec_obstacle},
        {&sentra__v1__delete_obstacle_request__descriptor, &rec_obstacle},
        {&sentra__v1__list_obstacles_request__descriptor, &rec_obstacle},
        {&sentra__v1__create_assistance_request__descriptor, &rec_assistance},
        {&sentra__v1__get_assistance_request__descriptor, &rec_assistance},
        {&sentra__v1__update_assistance_request__descriptor, &rec_assistance},
        {&sentra__v1__delete_assistance_request__descriptor, &rec_assistance},
        {&sentra__v1__list_assistance_request__descriptor, &rec_assistance},
    };
    for (size_t i = 0; i < sizeof by_request / sizeof *by_request; i++)
        if (by_request[i].req == c->msg->descriptor)
            return by_request[i].kind;
    abort();                    /* methods.c routes only these here */
}

#define VALIDATOR(vc, v)                                                   \
    violations_t v = {0};                                                  \
    validate_ctx_t vc = {.today = validate_today(), .report = violations_report, \
                         .arg = &v, .max = CALL_MAX_VIOLATIONS}

static int fail_if_invalid(call_t *c, validate_ctx_t *vc, violations_t *v)
{
    if (vc->count == 0) {
        violations_free(v);
        return 0;
    }
    call_fail_violations(c, v);
    violations_free(v);
    return 1;
}

static const char *idem(const call_t *c)
{
    return c->idempotency_key && c->idempotency_key[0] ? c->idempotency_key : NULL;
}

static void check_idem(call_t *c, validate_ctx_t *vc)
{
    if (idem(c))
        validate_text(vc, "idempotency_key", c->idempotency_key, 0, 128, TEXT_SINGLE_LINE);
}

static void required(validate_ctx_t *vc, const char *field, const char *why)
{
    violations_report(vc->arg, field, why);
    vc->count++;
}

/* ---------------------------------------------------------------- statements */

/* Per kind, indexed by RecordKind number. */
#define WRITE_ARGS "$1::uuid, $2, $3, $4"
static db_stmt_t create_stmts[6] = {
    [2] = {"SELECT * FROM member_create(" WRITE_ARGS ", $5::jsonb)", 0, 0},
    [4] = {"SELECT * FROM obstacle_create(" WRITE_ARGS ", $5::jsonb)", 0, 0},
    [5] = {"SELECT * FROM assistance_create(" WRITE_ARGS ", $5::jsonb)", 0, 0},
};
static db_stmt_t update_stmts[6] = {
    [2] = {"SELECT * FROM member_update(" WRITE_ARGS ", $5::uuid, $6::bigint, $7::text[], $8::jsonb)", 0, 0},
    [4] = {"SELECT * FROM obstacle_update(" WRITE_ARGS ", $5::uuid, $6::bigint, $7::text[], $8::jsonb)", 0, 0},
    [5] = {"SELECT * FROM assistance_update(" WRITE_ARGS ", $5::uuid, $6::bigint, $7::text[], $8::jsonb)", 0, 0},
};
static db_stmt_t set_institution_stmt = {
    "SELECT * FROM institution_set(" WRITE_ARGS ", $5::jsonb, $6::bigint)", 0, 0};
static db_stmt_t delete_stmt = {
    "SELECT id, version FROM record_delete($1::smallint, $2::uuid, $3, $4, $5, $6::uuid, $7::bigint)",
    0, 0};
/* A key probe, scope in the WHERE clause: a record the token may not read
 * is not found, exactly as a missing or deleted one. */
#define GET_SQL(view, key) \
    "SELECT * FROM " view " a WHERE a." key " = $1::uuid AND NOT a.deleted" \
    " AND sentra_can_read($2, $3, a.regency_code, a.province_code)"
static db_stmt_t get_stmts[6] = {
    [2] = {GET_SQL("member_api", "id"), 0, 1},
    [3] = {GET_SQL("institution_api", "sentra_id"), 0, 1},
    [4] = {GET_SQL("obstacle_api", "id"), 0, 1},
    [5] = {GET_SQL("assistance_api", "id"), 0, 1},
};

/* ---------------------------------------------------------------- answers */

/* Replies with the record in row 0 of res, or NOT_FOUND when there is none. */
static void reply_record(call_t *c, PGresult *res)
{
    const rec_kind_t *k = call_kind(c);

    if (call_db_error(c, res))
        return;
    if (PQntuples(res) == 0) {
        call_fail(c, SENTRA_NOT_FOUND, "no such %s", k->name);
        return;
    }
    ProtobufCMessage *m = rec__row_shape(k, res, 0) ? rec__from_row(c, k, res, 0, 0) : NULL;
    if (m == NULL) {
        call_fail(c, SENTRA_INTERNAL, "%s: unexpected result shape", k->name);
        return;
    }
    call_reply(c, m);
}

static void reply_deleted(call_t *c, PGresult *res)
{
    Sentra__V1__DeleteRecordResponse resp = SENTRA__V1__DELETE_RECORD_RESPONSE__INIT;

    if (call_db_error(c, res))
        return;
    if (PQntuples(res) != 1) {
        call_fail(c, SENTRA_NOT_FOUND, "no such %s", call_kind(c)->name);
        return;
    }
    resp.id = PQgetvalue(res, 0, 0);
    resp.version = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    call_reply(c, &resp.base);
}

/* ---------------------------------------------------------------- writes */

static void rec_create(call_t *c)
{
    const rec_kind_t *k = call_kind(c);
    const ProtobufCMessage *rec = REQ_MSG(c->msg, 1);
    const char *v[5];
    VALIDATOR(vc, viol);

    if (rec == NULL)
        required(&vc, k->name, "is required");
    else
        k->validate(&vc, rec, REC_ALL, VR_SENTRA);
    check_idem(c, &vc);
    if (fail_if_invalid(c, &vc, &viol))
        return;
    v[0] = c->auth.token_id;
    v[1] = auth_role_name(c->auth.role);
    v[2] = c->auth.region;
    v[3] = idem(c);
    v[4] = rec__json(c, k, rec, REC_ALL, 1, NULL);
    call_query(c, &create_stmts[k->kind], 5, v, reply_record);
}

static void rec_update(call_t *c)
{
    const rec_kind_t *k = call_kind(c);
    const ProtobufCMessage *rec = REQ_MSG(c->msg, 1);
    const ProtobufCFieldDescriptor *mf = protobuf_c_message_descriptor_get_field(c->msg->descriptor, 2);
    size_t n_mask = *(const size_t *)((const char *)c->msg + mf->quantifier_offset);
    const char *const *paths = *(const char *const *const *)req_field(c->msg, 2);
    int64_t expected = REQ_I64(c->msg, 3);
    uint64_t fields = 0;
    const char *v[8], *mask = NULL;
    VALIDATOR(vc, viol);

    if (rec == NULL) {
        required(&vc, k->name, "is required");
    } else {
        fields = validate_record_mask(&vc, k->desc, paths, n_mask);
        if (fields)
            k->validate(&vc, rec, fields, VR_ID);
    }
    if (expected <= 0)
        required(&vc, "expected_version", "is required (the version last read)");
    check_idem(c, &vc);
    if (fail_if_invalid(c, &vc, &viol))
        return;
    v[0] = c->auth.token_id;
    v[1] = auth_role_name(c->auth.role);
    v[2] = c->auth.region;
    v[3] = idem(c);
    v[4] = rec__str(rec, "id");
    v[5] = call_printf(c, "%lld", (long long)expected);
    v[7] = rec__json(c, k, rec, fields, 0, &mask);
    v[6] = mask;
    call_query(c, &update_stmts[k->kind], 8, v, reply_record);
}

/* Delete of any kind: its request is (key, expected_version). */
static void rec_delete(call_t *c)
{
    const rec_kind_t *k = call_kind(c);
    const char *key = REQ_STR(c->msg, 1);
    int64_t expected = REQ_I64(c->msg, 2);
    const char *v[7];
    VALIDATOR(vc, viol);

    if (!validate_uuid(key))
        required(&vc, k->key, key && key[0] ? "must be a UUID" : "is required");
    if (expected <= 0)
        required(&vc, "expected_version", "is required (the version last read)");
    check_idem(c, &vc);
    if (fail_if_invalid(c, &vc, &viol))
        return;
    v[0] = call_printf(c, "%d", k->kind);
    v[1] = c->auth.token_id;
    v[2] = auth_role_name(c->auth.role);
    v[3] = c->auth.region;
    v[4] = idem(c);
    v[5] = key;
    v[6] = call_printf(c, "%lld", (long long)expected);
    call_query(c, &delete_stmt, 7, v, reply_deleted);
}

void h_set_institution(call_t *c)
{
    const Sentra__V1__SetInstitutionRequest *req = (const void *)c->msg;
    const char *v[6];
    VALIDATOR(vc, viol);

    if (req->institution == NULL)
        required(&vc, "institution", "is required");
    else
        validate_institution(&vc, req->institution);
    if (req->expected_version < 0)
        required(&vc, "expected_version",
                 "must be 0 (the sentra has no institution) or the version last read");
    check_idem(c, &vc);
    if (fail_if_invalid(c, &vc, &viol))
        return;
    v[0] = c->auth.token_id;
    v[1] = auth_role_name(c->auth.role);
    v[2] = c->auth.region;
    v[3] = idem(c);
    v[4] = rec__json(c, &rec_institution, &req->institution->base, REC_ALL, 1, NULL);
    v[5] = call_printf(c, "%lld", (long long)req->expected_version);
    call_query(c, &set_institution_stmt, 6, v, reply_record);
}

/* ---------------------------------------------------------------- get */

static void rec_get(call_t *c)
{
    const rec_kind_t *k = call_kind(c);
    const char *key = REQ_STR(c->msg, 1);
    const char *v[3];

    if (!validate_uuid(key)) {
        violations_t viol = {0};
        violations_add(&viol, k->key, "%s", key && key[0] ? "must be a UUID" : "is required");
        call_fail_violations(c, &viol);
        violations_free(&viol);
        return;
    }
    v[0] = key;
    v[1] = auth_role_name(c->auth.role);
    v[2] = c->auth.region;
    call_query(c, &get_stmts[k->kind], 3, v, reply_record);
}

/* ---------------------------------------------------------------- list */

/*
 * Lists page by a keyset cursor over (sort key, key) of the kind (records.h:
 * members by name, obstacles by reported_on, assistance by year,
 * institutions by sentra id alone), so that each page of a million members
 * costs one range scan of the index matching the caller's scope and filter
 * (docs/DATA_MODEL.md, "Indexes: a million members"). The page is read
 * from the view <kind>_api in index order (obstacles: chosen on the table,
 * then joined to the view; view_sorts below). The SQL text depends only on
 * the request's shape (kind, which conditions, direction, cursor). In
 * binary protobuf the answer is written from the rows (rec__row_wire).
 */

enum {
    L_SCOPE_REGENCY = 1u << 0,   /* district token */
    L_SCOPE_PROVINCE = 1u << 1,  /* province token */
    L_SENTRA = 1u << 2,
    L_PROVINCE = 1u << 3,
    L_REGENCY = 1u << 4,
    L_K1 = 1u << 5,              /* the kind's own filters, table below */
    L_K2 = 1u << 6,
    L_K3 = 1u << 7,
    L_CURSOR = 1u << 8,
    L_DESC = 1u << 9,
};
#define L_KIND_SHIFT 10

/* The conditions of each kind's own filter fields, in L_K1..L_K3 order;
 * a term without a parameter takes none. */
static const struct {
    const char *term;
    int param;
} kind_terms[6][3] = {
    [2] = {{"m.size_class = ANY ($%d::smallint[])", 1}, {"m.owner_sex = $%d::smallint", 1},
           {"m.left_year IS NULL", 0}},
    [4] = {{"m.category = ANY ($%d::smallint[])", 1}, {"m.status = ANY ($%d::smallint[])", 1},
           {NULL, 0}},
    [5] = {{"m.kind = ANY ($%d::smallint[])", 1}, {"m.provider = ANY ($%d::smallint[])", 1},
           {"m.year = $%d::smallint", 1}},
};

/* A sentra's (or a region's) count of live records, from the statistics
 * row each sentra keeps (sentra_stat, migrations/0013_records.sql): the
 * same number as counting the rows, for the price of one row per sentra. */
static const char *const stat_count[6] = {
    [2] = "s.member_rows",
    [3] = "(s.institution_form IS NOT NULL)::int",
    [4] = "s.obstacles_open + s.obstacles_in_progress + s.obstacles_resolved",
    [5] = "s.assistance_count",
};

/* A growing string for the SQL of a shape (aborts on OOM). */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort();
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            abort();
        b->p = p;
        b->cap = cap;
    }
}

/* Appends the conditions of shape on alias a (m: the record's table; s:
 * sentra_stat, region and sentra conditions only), numbering parameters
 * from *p in the order list_bind stores them. */
static void sb_conds(sbuf_t *b, unsigned shape, int kind, const char *a, int *p, int own)
{
    if (shape & L_SCOPE_REGENCY)
        sb_add(b, " AND %s.regency_code = $%d", a, (*p)++);
    if (shape & L_SCOPE_PROVINCE)
        sb_add(b, " AND %s.province_code = $%d", a, (*p)++);
    if (shape & L_SENTRA)
        sb_add(b, " AND %s.sentra_id = $%d::uuid", a, (*p)++);
    if (shape & L_PROVINCE)
        sb_add(b, " AND %s.province_code = $%d", a, (*p)++);
    if (shape & L_REGENCY)
        sb_add(b, " AND %s.regency_code = $%d", a, (*p)++);
    for (int i = 0; i < 3; i++) {
        if (!(shape & (L_K1 << i)))
            continue;
        if (own) {
            sb_add(b, " AND ");
            if (kind_terms[kind][i].param)
                sb_add(b, kind_terms[kind][i].term, *p);
            else
                sb_add(b, "%s", kind_terms[kind][i].term);
        }
        if (kind_terms[kind][i].param)
            (*p)++;
    }
}

/* The total's subquery of shape, parameter ptot saying whether it is
 * wanted: from the sentra's statistics rows when only the region or the
 * sentra narrows it, else a count over the same index range. */
static void sb_total(sbuf_t *b, const rec_kind_t *k, unsigned shape, int ptot)
{
    int q = 1;
    sb_add(b, "(SELECT CASE WHEN $%d::boolean THEN ", ptot);
    if (!(shape & (L_K1 | L_K2 | L_K3))) {
        sb_add(b, "(SELECT coalesce(sum(%s), 0) FROM sentra_stat s WHERE s.deleted_at IS NULL",
               stat_count[k->kind]);
        sb_conds(b, shape, k->kind, "s", &q, 0);
    } else {
        sb_add(b, "(SELECT count(*) FROM %s m WHERE m.deleted_at IS NULL", k->name);
        sb_conds(b, shape, k->kind, "m", &q, 1);
    }
    sb_add(b, ") END AS total) t");
}

/* The kinds whose view shows the sort column as the table stores it
 * (members by name, assistance by year, institutions by key alone): their
 * page is read from the view itself, whose conditions and order PostgreSQL
 * applies to the table underneath, so the same range scan of the same index
 * yields the rows. Obstacles sort by a date the view prints as text, so
 * their page is chosen on the table and joined to the view by key
 * (build_list_sql_join), a probe of the primary key a row more. */
static int view_sorts(const rec_kind_t *k)
{
    return k->sort == NULL || strcmp(k->sort_type, "date") != 0;
}

/* "a.name ASC, a.id ASC": the listing's order on alias a. */
static void sb_order(sbuf_t *b, const rec_kind_t *k, const char *a, const char *dir)
{
    if (k->sort)
        sb_add(b, "%s.%s %s, ", a, k->sort, dir);
    sb_add(b, "%s.%s %s", a, k->key, dir);
}

static char *build_list_sql_view(const rec_kind_t *k, unsigned shape)
{
    sbuf_t b = {0};
    const char *dir = (shape & L_DESC) ? "DESC" : "ASC";
    const char *cmp = (shape & L_DESC) ? "<" : ">";
    int p = 1;

    sb_add(&b, "SELECT p.*, t.total FROM ");
    /* conditions first: they number the parameters as list_bind stores them */
    sbuf_t w = {0};
    sb_add(&w, " FROM %s_api m WHERE NOT m.deleted", k->name);
    sb_conds(&w, shape, k->kind, "m", &p, 1);
    int pkey = p, pid = p + 1, plim = p + 2, ptot = p + 3;
    if (shape & L_CURSOR) {
        if (k->sort)
            sb_add(&w, " AND (m.%s, m.%s) %s ($%d::%s, $%d::uuid)", k->sort, k->key, cmp, pkey,
                   k->sort_type, pid);
        else
            sb_add(&w, " AND m.%s %s $%d::uuid AND ($%d::text IS NULL OR true)", k->key, cmp,
                   pid, pkey);
    } else {
        /* every parameter referenced, so that its type is known */
        sb_add(&w, " AND ($%d::text IS NULL OR true) AND ($%d::uuid IS NULL OR true)", pkey, pid);
    }
    sb_total(&b, k, shape, ptot);
    if (k->sort)
        sb_add(&b, " LEFT JOIN LATERAL (SELECT m.*, m.%s::text AS kt%s ORDER BY ", k->sort, w.p);
    else
        sb_add(&b, " LEFT JOIN LATERAL (SELECT m.*, NULL::text AS kt%s ORDER BY ", w.p);
    sb_order(&b, k, "m", dir);
    sb_add(&b, " LIMIT $%d::int) p ON true ORDER BY ", plim);
    sb_order(&b, k, "p", dir);
    free(w.p);
    return b.p;
}

static char *build_list_sql_join(const rec_kind_t *k, unsigned shape)
{
    sbuf_t b = {0};
    const char *dir = (shape & L_DESC) ? "DESC" : "ASC";
    int p = 1;
    char keycol[64], keytext[96];

    if (k->sort) {
        snprintf(keycol, sizeof keycol, "m.%s", k->sort);
        if (strcmp(k->sort_type, "date") == 0)
            snprintf(keytext, sizeof keytext, "to_char(m.%s, 'YYYY-MM-DD')", k->sort);
        else
            snprintf(keytext, sizeof keytext, "m.%s::text", k->sort);
    }
    sb_add(&b, "WITH page AS (SELECT m.%s AS id", k->key);
    if (k->sort)
        sb_add(&b, ", %s AS k, %s AS kt", keycol, keytext);
    else
        sb_add(&b, ", NULL::text AS kt");
    sb_add(&b, " FROM %s m WHERE m.deleted_at IS NULL", k->name);
    sb_conds(&b, shape, k->kind, "m", &p, 1);
    int pkey = p, pid = p + 1, plim = p + 2, ptot = p + 3;
    const char *cmp = (shape & L_DESC) ? "<" : ">";
    if (shape & L_CURSOR) {
        if (k->sort)
            sb_add(&b, " AND (%s, m.%s) %s ($%d::%s, $%d::uuid)", keycol, k->key, cmp, pkey,
                   k->sort_type, pid);
        else
            sb_add(&b, " AND m.%s %s $%d::uuid AND ($%d::text IS NULL OR true)", k->key, cmp,
                   pid, pkey);
    } else {
        /* every parameter referenced, so that its type is known */
        sb_add(&b, " AND ($%d::text IS NULL OR true) AND ($%d::uuid IS NULL OR true)", pkey, pid);
    }
    if (k->sort)
        sb_add(&b, " ORDER BY %s %s, m.%s %s", keycol, dir, k->key, dir);
    else
        sb_add(&b, " ORDER BY m.%s %s", k->key, dir);
    sb_add(&b, " LIMIT $%d::int)", plim);

    sb_add(&b, " SELECT a.*, p.kt, t.total FROM ");
    sb_total(&b, k, shape, ptot);
    sb_add(&b, " LEFT JOIN (page p JOIN %s_api a ON a.%s = p.id) ON true", k->name, k->key);
    if (k->sort)
        sb_add(&b, " ORDER BY p.k %s, p.id %s", dir, dir);
    else
        sb_add(&b, " ORDER BY p.id %s", dir);
    return b.p;
}

static char *build_list_sql(const rec_kind_t *k, unsigned shape)
{
    return view_sorts(k) ? build_list_sql_view(k, shape) : build_list_sql_join(k, shape);
}

/* The statement of (kind, shape), in call memory: up to 4 kinds x 2^10
 * shapes, so nothing is kept here (each request builds its SQL, a few
 * microseconds), and the pool keeps what it prepared in its bounded LRU
 * per connection, found by the text (as handlers_stats.c does). */
static db_stmt_t *list_stmt(call_t *c, const rec_kind_t *k, unsigned shape)
{
    db_stmt_t *st = call_alloc(c, sizeof *st);
    char *sql = build_list_sql(k, shape);
    st->sql = call_strdup(c, sql);
    free(sql);
    return st;
}

/* "{1,2}": a smallint[] literal of validated enum values. */
static const char *enum_array(call_t *c, const int *vals, size_t n)
{
    char *s = call_alloc(c, n * 12 + 3);
    size_t off = 0;
    s[off++] = '{';
    for (size_t i = 0; i < n; i++)
        off += (size_t)sprintf(s + off, "%s%d", i ? "," : "", vals[i]);
    s[off++] = '}';
    s[off] = '\0';
    return s;
}

#define LIST_MAX_PARAMS 12

/* The shape and parameters of filter f for kind k within c's scope. */
static unsigned list_bind(call_t *c, const rec_kind_t *k, const Sentra__V1__RecordFilter *f,
                          const char **v, int *n)
{
    unsigned shape = 0;
    *n = 0;
    if (c->auth.role == SENTRA__V1__ROLE__ROLE_DISTRICT) {
        shape |= L_SCOPE_REGENCY;
        v[(*n)++] = c->auth.region;
    } else if (c->auth.role == SENTRA__V1__ROLE__ROLE_PROVINCE) {
        shape |= L_SCOPE_PROVINCE;
        v[(*n)++] = c->auth.region;
    }
    if (f == NULL)
        return shape;
    if (f->sentra_id && f->sentra_id[0]) {
        shape |= L_SENTRA;
        v[(*n)++] = f->sentra_id;
    }
    if (f->province_code && f->province_code[0]) {
        shape |= L_PROVINCE;
        v[(*n)++] = f->province_code;
    }
    if (f->regency_code && f->regency_code[0]) {
        shape |= L_REGENCY;
        v[(*n)++] = f->regency_code;
    }
    switch (k->kind) {
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER:
        if (f->n_size_class) {
            shape |= L_K1;
            v[(*n)++] = enum_array(c, (const int *)f->size_class, f->n_size_class);
        }
        if (f->owner_sex) {
            shape |= L_K2;
            v[(*n)++] = call_printf(c, "%d", f->owner_sex);
        }
        if (f->current_only)
            shape |= L_K3;
        break;
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_OBSTACLE:
        if (f->n_category) {
            shape |= L_K1;
            v[(*n)++] = enum_array(c, (const int *)f->category, f->n_category);
        }
        if (f->n_obstacle_status) {
            shape |= L_K2;
            v[(*n)++] = enum_array(c, (const int *)f->obstacle_status, f->n_obstacle_status);
        }
        break;
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_ASSISTANCE:
        if (f->n_assistance_kind) {
            shape |= L_K1;
            v[(*n)++] = enum_array(c, (const int *)f->assistance_kind, f->n_assistance_kind);
        }
        if (f->n_provider) {
            shape |= L_K2;
            v[(*n)++] = enum_array(c, (const int *)f->provider, f->n_provider);
        }
        if (f->year) {
            shape |= L_K3;
            v[(*n)++] = call_printf(c, "%d", f->year);
        }
        break;
    }
    return shape;
}

#define LIST_DEFAULT 100
#define LIST_MAX 1000

static int list_size(int32_t asked)
{
    return asked <= 0 ? LIST_DEFAULT : asked > LIST_MAX ? LIST_MAX : asked;
}

static char *hex(call_t *c, const char *s)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = strlen(s);
    char *out = call_alloc(c, 2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[(unsigned char)s[i] >> 4];
        out[2 * i + 1] = digits[(unsigned char)s[i] & 15];
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

/* A page token "<kind><desc>|<key>|<id>" (hex). Returns 1 and points *key
 * (NULL for kinds ordered by id alone) and *id into call memory, or 0 when
 * it is not one of this listing's: another kind or direction, or a key a
 * cast could fail on (it goes to SQL as a parameter of the sort's type). */
static int token_decode(call_t *c, const rec_kind_t *k, int desc, const char *tok,
                        const char **key, const char **id)
{
    size_t n = strlen(tok);
    if (n % 2 || n > 2048)
        return 0;
    char *raw = call_alloc(c, n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(tok[2 * i]), lo = hexval(tok[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return 0;
        raw[i] = (char)(hi << 4 | lo);
    }
    char *bar1 = strchr(raw, '|'), *bar2 = strrchr(raw, '|');
    if (!bar1 || bar1 == bar2 || bar1 != raw + 2 || raw[0] != '0' + k->kind ||
        raw[1] != '0' + desc)
        return 0;
    *bar1 = *bar2 = '\0';
    const char *kv = bar1 + 1;
    if (!validate_uuid(bar2 + 1) || !validate_utf8(kv, strlen(kv), NULL))
        return 0;
    if (k->sort == NULL) {
        if (kv[0])
            return 0;
        kv = NULL;
    } else if (strcmp(k->sort_type, "date") == 0) {
        if (!validate_date(kv, NULL))
            return 0;
    } else if (strcmp(k->sort_type, "smallint") == 0) {
        size_t kl = strlen(kv);
        if (kl == 0 || kl > 4)
            return 0;
        for (size_t i = 0; i < kl; i++)
            if (kv[i] < '0' || kv[i] > '9')
                return 0;
    }
    *key = kv;
    *id = bar2 + 1;
    return 1;
}

/* The column of kind k's key in its rows. */
static int key_col(const rec_kind_t *k)
{
    size_t n;
    const rec_col_t *cols = rec__cols(k, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(cols[i].name, k->key) == 0)
            return (int)i;
    abort();                    /* every kind's message has its key */
}

/* Appends v as a varint to b. */
static void wb_varint(sentra_wbuf_t *b, uint64_t v)
{
    sentra__wbuf_reserve(b, 10);
    do {
        b->p[b->len++] = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
        v >>= 7;
    } while (v);
}

/* The page's answer in binary protobuf, written from the rows
 * (rec__row_wire) as unknown fields of an otherwise empty response, in
 * field order (records, next_page_token, total): protobuf-c packs an
 * unknown field as its tag then its bytes verbatim (a length-delimited
 * one's bytes begin with their length), so the bytes are those of the
 * response built as messages. */
static void list_reply_wire(call_t *c, const rec_kind_t *k, const PGresult *res, int count,
                            const char *token, int64_t total)
{
    ProtobufCMessage *resp = call_alloc(c, k->list_resp->sizeof_message);
    protobuf_c_message_init(k->list_resp, resp);
    ProtobufCMessageUnknownField *uf = call_alloc(c, (size_t)(count + 2) * sizeof *uf);
    size_t *off = call_alloc(c, (size_t)(count + 3) * sizeof *off);
    sentra_wbuf_t b = {0};
    unsigned nuf = 0;

    for (int r = 0; r < count; r++) {
        /* Room for a length of 4 bytes (a record is far below 2^28), the
         * record, then the length moved up against it. */
        size_t at = b.len;
        off[nuf] = at;
        uf[nuf++] = (ProtobufCMessageUnknownField){
            .tag = 1, .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED};
        sentra__wbuf_reserve(&b, 4);
        b.len += 4;
        size_t n = rec__row_wire(&b, k, res, r, 0);
        uint8_t len[5];
        size_t ln = 0;
        for (size_t v = n; ; v >>= 7) {
            len[ln++] = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
            if (v < 0x80)
                break;
        }
        memmove(b.p + at + ln, b.p + at + 4, n);
        memcpy(b.p + at, len, ln);
        b.len = at + ln + n;
    }
    if (token && token[0]) {
        off[nuf] = b.len;
        uf[nuf++] = (ProtobufCMessageUnknownField){
            .tag = 2, .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED};
        size_t n = strlen(token);
        wb_varint(&b, n);
        sentra__wbuf_reserve(&b, n);
        memcpy(b.p + b.len, token, n);
        b.len += n;
    }
    if (total != 0) {
        off[nuf] = b.len;
        uf[nuf++] = (ProtobufCMessageUnknownField){
            .tag = 3, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT};
        wb_varint(&b, (uint64_t)total);
    }
    off[nuf] = b.len;
    /* b has stopped moving: point the fields into it */
    for (unsigned i = 0; i < nuf; i++) {
        uf[i].data = b.p + off[i];
        uf[i].len = off[i + 1] - off[i];
    }
    resp->n_unknown_fields = nuf;
    resp->unknown_fields = uf;
    call_reply(c, resp);        /* the sink encodes it before returning */
    free(b.p);
}

/* Rows: the page's records (page_size + 1 at most: the extra one only says
 * that more exist), each followed by its cursor key text and the total; or
 * one row of NULLs but the total when the page is empty. */
static void list_done(call_t *c, PGresult *res)
{
    const rec_kind_t *k = call_kind(c);
    int page = list_size(REQ_I32(c->msg, 2));
    int desc = REQ_BOOL(c->msg, 5) ? 1 : 0;
    size_t nc;
    (void)rec__cols(k, &nc);
    int ncols = (int)nc;

    if (call_db_error(c, res))
        return;
    int n = PQntuples(res);
    if (n > 0 && PQgetisnull(res, 0, 0))
        n = 0;                          /* the empty page's single row */
    if (!rec__row_shape(k, res, 0) || PQnfields(res) < ncols + 2) {
        call_fail(c, SENTRA_INTERNAL, "%s: unexpected result shape", k->name);
        return;
    }
    int count = n < page ? n : page;
    const char *token = NULL;
    if (n > page) {
        /* one more exists: the cursor is the last one served */
        const char *kt = PQgetisnull(res, count - 1, ncols) ? "" : PQgetvalue(res, count - 1, ncols);
        const char *id = PQgetvalue(res, count - 1, key_col(k));
        token = hex(c, call_printf(c, "%d%d|%s|%s", k->kind, desc, kt, id));
    }
    int64_t total = 0;
    if (REQ_BOOL(c->msg, 4) && PQntuples(res) > 0 && !PQgetisnull(res, 0, ncols + 1))
        total = strtoll(PQgetvalue(res, 0, ncols + 1), NULL, 10);

    if (c->codec != CALL_CODEC_JSON) {
        list_reply_wire(c, k, res, count, token, total);
        return;
    }
    /* JSON: its printer knows fields by their descriptors, not unknown
     * fields; the records as messages. */
    const ProtobufCMessageDescriptor *rd = k->list_resp;
    ProtobufCMessage *resp = call_alloc(c, rd->sizeof_message);
    protobuf_c_message_init(rd, resp);
    const ProtobufCFieldDescriptor *f_recs = protobuf_c_message_descriptor_get_field(rd, 1);
    const ProtobufCFieldDescriptor *f_tok = protobuf_c_message_descriptor_get_field(rd, 2);
    const ProtobufCFieldDescriptor *f_tot = protobuf_c_message_descriptor_get_field(rd, 3);
    ProtobufCMessage **recs = call_alloc(c, (size_t)(count + 1) * sizeof *recs);
    for (int r = 0; r < count; r++) {
        recs[r] = rec__from_row(c, k, res, r, 0);
        if (recs[r] == NULL) {
            call_fail(c, SENTRA_INTERNAL, "%s: unexpected result shape", k->name);
            return;
        }
    }
    *(size_t *)((char *)resp + f_recs->quantifier_offset) = (size_t)count;
    *(ProtobufCMessage ***)((char *)resp + f_recs->offset) = recs;
    if (token)
        *(const char **)((char *)resp + f_tok->offset) = token;
    *(int64_t *)((char *)resp + f_tot->offset) = total;
    call_reply(c, resp);
}

static void rec_list(call_t *c)
{
    const rec_kind_t *k = call_kind(c);
    const Sentra__V1__RecordFilter *f = (const Sentra__V1__RecordFilter *)REQ_MSG(c->msg, 1);
    int32_t page = REQ_I32(c->msg, 2);
    const char *tok = REQ_STR(c->msg, 3);
    int total = REQ_BOOL(c->msg, 4), desc = REQ_BOOL(c->msg, 5) ? 1 : 0;
    const char *v[LIST_MAX_PARAMS], *key = NULL, *id = NULL;
    int n;
    VALIDATOR(vc, viol);

    validate_record_filter(&vc, f, k->kind, "filter.");
    if (page < 0)
        required(&vc, "page_size", "must not be negative");
    if (vc.count == 0 && tok && tok[0] && !token_decode(c, k, desc, tok, &key, &id))
        required(&vc, "page_token", "is not a token from this listing and direction");
    if (fail_if_invalid(c, &vc, &viol))
        return;

    unsigned shape = list_bind(c, k, f, v, &n);
    if (id != NULL)
        shape |= L_CURSOR;
    if (desc)
        shape |= L_DESC;
    v[n] = key;
    v[n + 1] = id;
    v[n + 2] = call_printf(c, "%d", list_size(page) + 1);
    v[n + 3] = total ? "true" : "false";
    /* A read a standby may serve (call_query_read), as ListSentra. */
    call_query_read(c, list_stmt(c, k, shape), n + 4, v, list_done);
}

/* ---------------------------------------------------------------- the table's handlers */

void h_create_member(call_t *c) { rec_create(c); }
void h_get_member(call_t *c) { rec_get(c); }
void h_update_member(call_t *c) { rec_update(c); }
void h_delete_member(call_t *c) { rec_delete(c); }
void h_list_members(call_t *c) { rec_list(c); }
void h_get_institution(call_t *c) { rec_get(c); }
void h_delete_institution(call_t *c) { rec_delete(c); }
void h_list_institutions(call_t *c) { rec_list(c); }
void h_create_obstacle(call_t *c) { rec_create(c); }
void h_get_obstacle(call_t *c) { rec_get(c); }
void h_update_obstacle(call_t *c) { rec_update(c); }
void h_delete_obstacle(call_t *c) { rec_delete(c); }
void h_list_obstacles(call_t *c) { rec_list(c); }
void h_create_assistance(call_t *c) { rec_create(c); }
void h_get_assistance(call_t *c) { rec_get(c); }
void h_update_assistance(call_t *c) { rec_update(c); }
void h_delete_assistance(call_t *c) { rec_delete(c); }
void h_list_assistance(call_t *c) { rec_list(c); }
