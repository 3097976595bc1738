/*
 * filter.c: a SentraFilter as SQL conditions plus $n parameters, within the
 * caller's token scope. See filter.h for what each condition means; this
 * file is the only place that writes them, so every reader of the registry
 * selects the same rows for the same filter.
 */
#include <stdio.h>
#include <string.h>

#include "filter.h"
#include "validate.h"

/* ---------------------------------------------------------------- checking */

int sentra__filter_check(const Sentra__V1__SentraFilter *f, violations_t *v)
{
    validate_ctx_t vc = { 0 };
    vc.today = validate_today();
    vc.report = violations_report;
    vc.arg = v;
    vc.max = CALL_MAX_VIOLATIONS;
    return validate_filter(&vc, f, "filter.");
}

/* ---------------------------------------------------------------- binding */

/* "{1,2,5}": a smallint[] literal of enum values (validated small ints). */
static const char *int_array(call_t *c, const int *vals, size_t n)
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

void sentra__filter_bind(call_t *c, const Sentra__V1__SentraFilter *f,
                         sentra_filter_t *out)
{
    memset(out, 0, sizeof(*out));
    /* The order of params[] here is the order of the terms written by
     * sentra__filter_sql: keep the two in step. */
    if (c->auth.role == SENTRA__V1__ROLE__ROLE_DISTRICT) {
        out->shape |= SF_SCOPE_REGENCY;
        out->params[out->nparams++] = c->auth.region;
    } else if (c->auth.role == SENTRA__V1__ROLE__ROLE_PROVINCE) {
        out->shape |= SF_SCOPE_PROVINCE;
        out->params[out->nparams++] = c->auth.region;
    }
    if (!f)
        return;
    if (f->province_code && f->province_code[0]) {
        out->shape |= SF_PROVINCE;
        out->params[out->nparams++] = f->province_code;
    }
    if (f->regency_code && f->regency_code[0]) {
        out->shape |= SF_REGENCY;
        out->params[out->nparams++] = f->regency_code;
    }
    if (f->n_status > 0) {
        int *vals = call_alloc(c, f->n_status * sizeof(int));
        for (size_t i = 0; i < f->n_status; i++)
            vals[i] = (int)f->status[i];
        out->shape |= SF_STATUS;
        out->params[out->nparams++] = int_array(c, vals, f->n_status);
    }
    if (f->n_sector_group > 0) {
        int *vals = call_alloc(c, f->n_sector_group * sizeof(int));
        for (size_t i = 0; i < f->n_sector_group; i++)
            vals[i] = (int)f->sector_group[i];
        out->shape |= SF_SECTOR;
        out->params[out->nparams++] = int_array(c, vals, f->n_sector_group);
    }
    if (f->kbli_prefix && f->kbli_prefix[0]) {
        out->shape |= SF_KBLI;
        out->params[out->nparams++] = f->kbli_prefix;
    }
    if (f->designation == SENTRA__V1__DESIGNATION__DESIGNATION_DESIGNATED)
        out->shape |= SF_DESIGNATED;
    else if (f->designation == SENTRA__V1__DESIGNATION__DESIGNATION_NOT_DESIGNATED)
        out->shape |= SF_NOT_DESIGNATED;
    if (f->text && f->text[0]) {
        out->shape |= SF_TEXT;
        out->params[out->nparams++] = f->text;
    }
    if (f->updated_since_ms > 0) {
        out->shape |= SF_UPDATED_SINCE;
        out->params[out->nparams++] = call_printf(c, "%lld", (long long)f->updated_since_ms);
    }
}

/* ---------------------------------------------------------------- SQL text */

size_t sentra__filter_sql(unsigned shape, const char *a, int p,
                          char *buf, size_t len)
{
    size_t off = 0;
    /* Appends one formatted term; counts what would be written even when
     * the buffer is full, so the caller learns the size it needs. */
#define TERM(...)                                                              \
    do {                                                                       \
        int n_ = snprintf(off < len ? buf + off : NULL,                        \
                          off < len ? len - off : 0, __VA_ARGS__);             \
        off += (size_t)n_;                                                     \
    } while (0)

    if (len > 0)
        buf[0] = '\0';
    TERM(" AND %s.deleted_at IS NULL", a);
    if (shape & SF_SCOPE_REGENCY)
        TERM(" AND %s.regency_code = $%d", a, p++);
    if (shape & SF_SCOPE_PROVINCE)
        TERM(" AND %s.province_code = $%d", a, p++);
    if (shape & SF_PROVINCE)
        TERM(" AND %s.province_code = $%d", a, p++);
    if (shape & SF_REGENCY)
        TERM(" AND %s.regency_code = $%d", a, p++);
    if (shape & SF_STATUS)
        TERM(" AND %s.status = ANY ($%d::smallint[])", a, p++);
    if (shape & SF_SECTOR)
        TERM(" AND %s.sector_group = ANY ($%d::smallint[])", a, p++);
    if (shape & SF_KBLI)
        TERM(" AND %s.kbli_code LIKE $%d::text || '%%'", a, p++);
    if (shape & SF_DESIGNATED)
        TERM(" AND %s.designated", a);
    if (shape & SF_NOT_DESIGNATED)
        TERM(" AND NOT %s.designated", a);
    if (shape & SF_TEXT)
        /* LIKE wildcards in the client's text match themselves. */
        TERM(" AND %s.search LIKE '%%' || replace(replace(replace(lower($%d::text),"
             " '\\', '\\\\'), '%%', '\\%%'), '_', '\\_') || '%%'", a, p++);
    if (shape & SF_UPDATED_SINCE)
        TERM(" AND %s.updated_at >= 'epoch'::timestamptz + $%d::bigint * interval '1 millisecond'",
             a, p++);
#undef TERM
    return off;
}
