/*
 * sentra_row.c: PostgreSQL rows of the view sentra_rows to Sentra messages,
 * and Sentra messages to the text parameters of the write functions.
 *
 * Rows are parsed in place: strings of the message point into the PGresult
 * (the handler serializes the reply inside its query callback, while the
 * result is alive), so a GetSentra costs a few allocations, not one per
 * field. PullChanges reads each record printed once, when it was written
 * (table sentra_pull), through sentra__from_pull.
 */
#include "sentra_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- reading */

/* The value of a column, or "" for NULL (protobuf-c's empty string). */
static char *col(const PGresult *res, int row, int c)
{
    return PQgetisnull(res, row, c) ? (char *)"" : PQgetvalue(res, row, c);
}

static int64_t col_i64(const PGresult *res, int row, int c)
{
    return PQgetisnull(res, row, c) ? 0 : sentra__dec_i64(PQgetvalue(res, row, c));
}

int sentra__kbli_year(int v)
{
    switch (v) {
    case SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020: return 2020;
    case SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2025: return 2025;
    }
    return 0;
}

int sentra__kbli_enum(int year)
{
    switch (year) {
    case 2020: return SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    case 2025: return SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2025;
    }
    return SENTRA__V1__KBLI_VERSION__KBLI_VERSION_UNSPECIFIED;
}

/* One allocation holds a sentra and its nested singletons. */
struct sentra_block {
    Sentra__V1__Sentra s;
    Sentra__V1__GeoPoint loc;
    Sentra__V1__Decree dec;
};

/* A sentra from the values of its columns 0 .. SENTRA_COL_DELETED (NULL
 * for SQL NULL); strings point into v's text. */
static Sentra__V1__Sentra *record_from(call_t *c, char *const *v)
{
#define STR(k) (v[k] != NULL ? v[k] : (char *)"")
#define I64(k) (v[k] != NULL ? sentra__dec_i64(v[k]) : 0)
    struct sentra_block *b = call_alloc(c, sizeof *b);
    Sentra__V1__Sentra *s = &b->s;
    sentra__v1__sentra__init(s);
    s->id = STR(SENTRA_COL_ID);
    s->regency_code = STR(SENTRA_COL_REGENCY);
    s->district_code = STR(SENTRA_COL_DISTRICT);
    s->village_code = STR(SENTRA_COL_VILLAGE);
    s->address = STR(SENTRA_COL_ADDRESS);
    if (v[SENTRA_COL_LAT] != NULL && v[SENTRA_COL_LON] != NULL) {
        sentra__v1__geo_point__init(&b->loc);
        b->loc.latitude = strtod(v[SENTRA_COL_LAT], NULL);
        b->loc.longitude = strtod(v[SENTRA_COL_LON], NULL);
        s->location = &b->loc;
    }
    s->name = STR(SENTRA_COL_NAME);
    s->commodity = STR(SENTRA_COL_COMMODITY);
    s->main_product = STR(SENTRA_COL_MAIN_PRODUCT);
    s->kbli_code = STR(SENTRA_COL_KBLI_CODE);
    s->kbli_version = sentra__kbli_enum((int)I64(SENTRA_COL_KBLI_VERSION));
    s->sector_group = (int)I64(SENTRA_COL_SECTOR_GROUP);
    s->status = (int)I64(SENTRA_COL_STATUS);
    s->formed_on = STR(SENTRA_COL_FORMED_ON);
    if (v[SENTRA_COL_DECREE_NUMBER] != NULL || v[SENTRA_COL_DECREE_DATE] != NULL ||
        v[SENTRA_COL_DECREE_OFFICIAL] != NULL) {
        sentra__v1__decree__init(&b->dec);
        b->dec.number = STR(SENTRA_COL_DECREE_NUMBER);
        b->dec.date = STR(SENTRA_COL_DECREE_DATE);
        b->dec.official = STR(SENTRA_COL_DECREE_OFFICIAL);
        s->decree = &b->dec;
    }
    s->contact_name = STR(SENTRA_COL_CONTACT_NAME);
    s->contact_phone = STR(SENTRA_COL_CONTACT_PHONE);
    s->version = I64(SENTRA_COL_VERSION);
    s->created_at_ms = I64(SENTRA_COL_CREATED_MS);
    s->updated_at_ms = I64(SENTRA_COL_UPDATED_MS);
    s->created_by = STR(SENTRA_COL_CREATED_BY);
    s->updated_by = STR(SENTRA_COL_UPDATED_BY);
    s->province_code = STR(SENTRA_COL_PROVINCE);
    s->deleted = STR(SENTRA_COL_DELETED)[0] == 't';
    return s;
#undef STR
#undef I64
}

/* The record's own columns (0 .. SENTRA_COL_DELETED) of one row. */
static Sentra__V1__Sentra *record_of(call_t *c, const PGresult *res, int row)
{
    char *v[SENTRA_COL_DELETED + 1];
    for (int k = 0; k <= SENTRA_COL_DELETED; k++)
        v[k] = PQgetisnull(res, row, k) ? NULL : PQgetvalue(res, row, k);
    return record_from(c, v);
}

/* Splits "MY,SG" (two-letter codes: a CHECK constraint) in place. */
static void split_destinations(call_t *c, Sentra__V1__Figures *g, char *d)
{
    size_t nd = 1;
    char *save = NULL;

    if (d[0] == '\0')
        return;
    for (const char *p = d; *p; p++)
        nd += *p == ',';
    g->export_destinations = call_alloc(c, nd * sizeof(char *));
    for (char *tok = strtok_r(d, ",", &save); tok && g->n_export_destinations < nd;
         tok = strtok_r(NULL, ",", &save))
        g->export_destinations[g->n_export_destinations++] = tok;
}

Sentra__V1__Sentra *sentra__from_rows(call_t *c, const PGresult *res, int *rowp)
{
    int row = *rowp, n = PQntuples(res), end;

    if (row < 0 || row >= n || PQnfields(res) < SENTRA_NCOLS)
        return NULL;
    const char *id = PQgetvalue(res, row, SENTRA_COL_ID);
    for (end = row + 1; end < n; end++)
        if (strcmp(PQgetvalue(res, end, SENTRA_COL_ID), id) != 0)
            break;
    *rowp = end;

    Sentra__V1__Sentra *s = record_of(c, res, row);

    /* Figures: one per row, unless the single row has none (LEFT JOIN). */
    size_t nf = 0;
    for (int r = row; r < end; r++)
        if (!PQgetisnull(res, r, SENTRA_COL_FIG_YEAR))
            nf++;
    if (nf == 0)
        return s;
    Sentra__V1__Figures *f = call_alloc(c, nf * sizeof *f);
    s->figures = call_alloc(c, nf * sizeof *s->figures);
    s->n_figures = nf;
    size_t i = 0;
    for (int r = row; r < end; r++) {
        if (PQgetisnull(res, r, SENTRA_COL_FIG_YEAR))
            continue;
        Sentra__V1__Figures *g = &f[i];
        sentra__v1__figures__init(g);
        g->year = (int32_t)col_i64(res, r, SENTRA_COL_FIG_YEAR);
        g->business_units = col_i64(res, r, SENTRA_COL_BUSINESS_UNITS);
        g->workers_male = col_i64(res, r, SENTRA_COL_WORKERS_MALE);
        g->workers_female = col_i64(res, r, SENTRA_COL_WORKERS_FEMALE);
        g->investment = col_i64(res, r, SENTRA_COL_INVESTMENT);
        g->production_value = col_i64(res, r, SENTRA_COL_PRODUCTION_VALUE);
        g->material_value = col_i64(res, r, SENTRA_COL_MATERIAL_VALUE);
        g->capacity = col_i64(res, r, SENTRA_COL_CAPACITY);
        g->capacity_unit = col(res, r, SENTRA_COL_CAPACITY_UNIT);
        g->export_share_bp = (int32_t)col_i64(res, r, SENTRA_COL_EXPORT_SHARE_BP);
        const char *d = col(res, r, SENTRA_COL_EXPORT_DESTINATIONS);
        if (d[0])
            split_destinations(c, g, call_strdup(c, d));
        s->figures[i++] = g;
    }
    return s;
}

/* The fields of one packed figures entry, in the order of sentra_pull_src
 * (migrations/0007_pull_rows.sql). */
enum { PF_YEAR, PF_UNITS, PF_MALE, PF_FEMALE, PF_INVESTMENT, PF_PRODUCTION,
       PF_MATERIAL, PF_CAPACITY, PF_EXPORT_SHARE, PF_DESTINATIONS, PF_UNIT, PF_N };

/* The figures of s from their packed text (cut in place; the strings of
 * the figures point into it). */
static void figures_from_packed(call_t *c, Sentra__V1__Sentra *s, char *text)
{
    size_t nf = 1;

    if (text[0] == '\0')
        return;
    for (const char *p = text; *p; p++)
        nf += *p == '\x1e';
    Sentra__V1__Figures *f = call_alloc(c, nf * sizeof *f);
    s->figures = call_alloc(c, nf * sizeof *s->figures);
    for (char *entry = text; entry != NULL && s->n_figures < nf;) {
        char *next = strchr(entry, '\x1e');
        if (next)
            *next++ = '\0';
        /* The fields; the last (capacity_unit) is the rest of the entry. */
        char *fld[PF_N];
        int k = 0;
        fld[k++] = entry;
        for (char *p = entry; k < PF_N && (p = strchr(p, '\x1f')) != NULL; ) {
            *p++ = '\0';
            fld[k++] = p;
        }
        for (; k < PF_N; k++)
            fld[k] = (char *)"";    /* cannot happen: concat_ws of NOT NULL columns */
        Sentra__V1__Figures *g = &f[s->n_figures];
        sentra__v1__figures__init(g);
        g->year = (int32_t)sentra__dec_i64(fld[PF_YEAR]);
        g->business_units = sentra__dec_i64(fld[PF_UNITS]);
        g->workers_male = sentra__dec_i64(fld[PF_MALE]);
        g->workers_female = sentra__dec_i64(fld[PF_FEMALE]);
        g->investment = sentra__dec_i64(fld[PF_INVESTMENT]);
        g->production_value = sentra__dec_i64(fld[PF_PRODUCTION]);
        g->material_value = sentra__dec_i64(fld[PF_MATERIAL]);
        g->capacity = sentra__dec_i64(fld[PF_CAPACITY]);
        g->export_share_bp = (int32_t)sentra__dec_i64(fld[PF_EXPORT_SHARE]);
        g->capacity_unit = fld[PF_UNIT];
        split_destinations(c, g, fld[PF_DESTINATIONS]);
        s->figures[s->n_figures++] = g;
        entry = next;
    }
}

Sentra__V1__Sentra *sentra__from_pull(call_t *c, const PGresult *res, int row)
{
    char *v[SENTRA_COL_DELETED + 1] = {0};

    if (row < 0 || row >= PQntuples(res) || PQnfields(res) < SENTRA_PULL_NCOLS)
        return NULL;
    v[SENTRA_COL_ID] = PQgetvalue(res, row, SENTRA_PULL_ID);
    v[SENTRA_COL_VERSION] = PQgetvalue(res, row, SENTRA_PULL_VERSION);
    v[SENTRA_COL_DELETED] = PQgetvalue(res, row, SENTRA_PULL_DELETED);
    if (PQgetisnull(res, row, SENTRA_PULL_PACKED))
        return record_from(c, v);           /* a tombstone: id and version */

    /* One copy, cut in place: the strings of the message point into it.
     * Fields REGENCY .. PROVINCE end with \x1f, the last with \x1d; ''
     * stands for NULL (no column that can be NULL can be ''). */
    char *p = call_strdup(c, PQgetvalue(res, row, SENTRA_PULL_PACKED)), *figs = NULL;
    for (int k = SENTRA_COL_REGENCY; k <= SENTRA_COL_PROVINCE; k++) {
        size_t n = strcspn(p, "\x1f\x1d");
        char sep = p[n];
        p[n] = '\0';
        if (k != SENTRA_COL_VERSION)
            v[k] = n > 0 ? p : NULL;
        if (sep == '\0')
            break;                          /* short: the rest stays NULL */
        p += n + 1;
        if (sep == '\x1d') {
            figs = p;
            break;
        }
    }
    Sentra__V1__Sentra *s = record_from(c, v);
    if (figs != NULL)
        figures_from_packed(c, s, figs);
    return s;
}

/* ---------------------------------------------------------------- writing */

int sentra__json_string(char *buf, size_t cap, size_t len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
#define PUT(ch) do { if (len + 1 >= cap) return -1; buf[len++] = (ch); } while (0)
    PUT('"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            PUT('\\');
            PUT((char)*p);
        } else if (*p < 0x20) {
            PUT('\\');
            PUT('u');
            PUT('0');
            PUT('0');
            PUT(hex[*p >> 4]);
            PUT(hex[*p & 15]);
        } else {
            PUT((char)*p);
        }
    }
    PUT('"');
    buf[len] = '\0';
    return (int)len;
#undef PUT
}

static size_t json_put(char *buf, size_t cap, size_t len, const char *s)
{
    int n = sentra__json_string(buf, cap, len, s);
    if (n < 0)
        abort();                /* cannot happen: cap bounds the output */
    return (size_t)n;
}

/* The figures as a JSON array of objects with proto field names. */
static char *figures_json(call_t *c, const Sentra__V1__Sentra *s)
{
    /* Bound the size first: numbers are at most 20 characters, strings at
     * most 6 bytes per input byte once escaped. */
    size_t cap = 3;
    for (size_t i = 0; i < s->n_figures; i++) {
        const Sentra__V1__Figures *g = s->figures[i];
        cap += 400 + 6 * strlen(g->capacity_unit ? g->capacity_unit : "") +
               8 * g->n_export_destinations;
        for (size_t j = 0; j < g->n_export_destinations; j++)
            cap += 6 * strlen(g->export_destinations[j] ? g->export_destinations[j] : "");
    }
    char *buf = call_alloc(c, cap);
    size_t len = 0;
    int n;

    buf[len++] = '[';
    for (size_t i = 0; i < s->n_figures; i++) {
        const Sentra__V1__Figures *g = s->figures[i];
        n = snprintf(buf + len, cap - len,
                     "%s{\"year\":%d,\"business_units\":%lld,\"workers_male\":%lld,"
                     "\"workers_female\":%lld,\"investment\":%lld,"
                     "\"production_value\":%lld,\"material_value\":%lld,"
                     "\"capacity\":%lld,\"export_share_bp\":%d,\"capacity_unit\":",
                     i ? "," : "", g->year, (long long)g->business_units,
                     (long long)g->workers_male, (long long)g->workers_female,
                     (long long)g->investment, (long long)g->production_value,
                     (long long)g->material_value, (long long)g->capacity,
                     g->export_share_bp);
        if (n < 0 || (size_t)n >= cap - len)
            abort();            /* cannot happen: cap bounds the output */
        len += (size_t)n;
        len = json_put(buf, cap, len, g->capacity_unit);
        memcpy(buf + len, ",\"export_destinations\":[", 24);
        len += 24;
        for (size_t j = 0; j < g->n_export_destinations; j++) {
            if (j)
                buf[len++] = ',';
            len = json_put(buf, cap, len, g->export_destinations[j]);
        }
        buf[len++] = ']';
        buf[len++] = '}';
    }
    buf[len++] = ']';
    buf[len] = '\0';
    return buf;
}

static const char *opt(const char *s)
{
    return s && s[0] ? s : NULL;
}

void sentra__params(call_t *c, const Sentra__V1__Sentra *s, const char **v)
{
    const Sentra__V1__Decree *d = s->decree;

    v[SENTRA_PARAM_REGENCY] = opt(s->regency_code);
    v[SENTRA_PARAM_DISTRICT] = opt(s->district_code);
    v[SENTRA_PARAM_VILLAGE] = opt(s->village_code);
    v[SENTRA_PARAM_ADDRESS] = s->address ? s->address : "";
    if (s->location) {
        v[SENTRA_PARAM_LAT] = call_printf(c, "%.17g", s->location->latitude);
        v[SENTRA_PARAM_LON] = call_printf(c, "%.17g", s->location->longitude);
    } else {
        v[SENTRA_PARAM_LAT] = v[SENTRA_PARAM_LON] = NULL;
    }
    v[SENTRA_PARAM_NAME] = s->name ? s->name : "";
    v[SENTRA_PARAM_COMMODITY] = s->commodity ? s->commodity : "";
    v[SENTRA_PARAM_MAIN_PRODUCT] = s->main_product ? s->main_product : "";
    v[SENTRA_PARAM_KBLI_CODE] = opt(s->kbli_code);
    v[SENTRA_PARAM_KBLI_VERSION] = s->kbli_version
        ? call_printf(c, "%d", sentra__kbli_year(s->kbli_version)) : NULL;
    v[SENTRA_PARAM_SECTOR_GROUP] = s->sector_group ? call_printf(c, "%d", s->sector_group) : NULL;
    v[SENTRA_PARAM_STATUS] = s->status ? call_printf(c, "%d", s->status) : NULL;
    v[SENTRA_PARAM_FORMED_ON] = opt(s->formed_on);
    v[SENTRA_PARAM_DECREE_NUMBER] = d ? opt(d->number) : NULL;
    v[SENTRA_PARAM_DECREE_DATE] = d ? opt(d->date) : NULL;
    v[SENTRA_PARAM_DECREE_OFFICIAL] = d ? opt(d->official) : NULL;
    v[SENTRA_PARAM_CONTACT_NAME] = s->contact_name ? s->contact_name : "";
    v[SENTRA_PARAM_CONTACT_PHONE] = s->contact_phone ? s->contact_phone : "";
    v[SENTRA_PARAM_FIGURES] = figures_json(c, s);
}
