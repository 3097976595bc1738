/*
 * handlers_stats.c: StatsService/GetStatistics and GetTimeSeries.
 *
 * Both read sentra_stat (migrations/0005_stats.sql), one narrow row per
 * sentra with its classification and latest figures, kept right by
 * triggers. Each request is one SQL statement built from fixed fragments:
 * the group-by columns come from a whitelist indexed by the GroupBy enum,
 * the filter conditions from server/services/filter.c, and every value travels as a
 * $n parameter. The text depends only on the request's "shape" (which
 * group-bys, which filters, whether a reporting year and an as-of date are
 * given); the pool prepares it, and keeps the most used shapes prepared. docs/STATS.md describes the meaning of every measure and of
 * as_of.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "filter.h"
#include "methods.h"
#include "validate.h"

/* ---------------------------------------------------------------- shapes */

/* A statement per shape. The text depends only on the request's shape,
 * but there are 2^7 group-by sets x 2^11 filter shapes x 4 figure modes,
 * so nothing is kept here: each request builds its SQL (a few
 * microseconds) into call memory, which lives until its query's callback
 * has run, and the pool keeps what it prepared in a bounded LRU per
 * connection, found by the text (issue 13: a cache per shape grew without
 * bound, in sentrad and in every backend). */

/* Key bits: group-by mask (7), filter shape (SF_BITS), then flags. */
#define K_GROUPS_SHIFT 0
#define K_FILTER_SHIFT 7
#define K_YEAR   (1u << (K_FILTER_SHIFT + SF_BITS))
#define K_ASOF   (1u << (K_FILTER_SHIFT + SF_BITS + 1))
#define K_SERIES (1u << (K_FILTER_SHIFT + SF_BITS + 2))

/* The statement of key, its SQL built by build() (malloc'ed text), in
 * call memory. */
static db_stmt_t *shape_stmt(call_t *c, uint32_t key, char *(*build)(uint32_t key))
{
    db_stmt_t *st = call_alloc(c, sizeof(*st));
    char *sql = build(key);
    if (!sql)
        abort();
    st->sql = call_strdup(c, sql);
    free(sql);
    return st;
}

/* A growing string for building SQL. */
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

/* The filter conditions of shape fshape, parameters from $first. With the
 * text filter the conditions read the sentra table (alias s, joined), which
 * alone holds the searched text; otherwise sentra_stat (alias t), which
 * carries the same columns under the same names. */
static void sb_filter(sbuf_t *b, unsigned fshape, int first)
{
    const char *alias = (fshape & SF_TEXT) ? "s" : "t";
    size_t need = sentra__filter_sql(fshape, alias, first, NULL, 0);
    char *tmp = malloc(need + 1);
    if (!tmp)
        abort();
    sentra__filter_sql(fshape, alias, first, tmp, need + 1);
    sb_add(b, "%s", tmp);
    free(tmp);
}

static const char *from_clause(unsigned fshape)
{
    return (fshape & SF_TEXT) ? " FROM sentra_stat t JOIN sentra s ON s.id = t.sentra_id"
                              : " FROM sentra_stat t";
}

/* Number of filter parameters of a shape (those sentra__filter_bind
 * stores): every condition but the two designation ones takes one. */
static int filter_nparams(unsigned fshape)
{
    int n = 0;
    for (unsigned bit = 1; bit < (1u << SF_BITS); bit <<= 1)
        if ((fshape & bit) && bit != SF_DESIGNATED && bit != SF_NOT_DESIGNATED)
            n++;
    return n;
}

/* ---------------------------------------------------------------- labels */

#define N_GROUP_BY 7   /* GroupBy values 1..7 */

static const char *status_key[6] = {
    "", "formed", "designated", "revitalised", "inactive", "revoked"
};
static const char *status_label[6] = {
    "", "Terbentuk", "Ditetapkan", "Direvitalisasi", "Tidak aktif", "Dicabut"
};
static const char *sector_key[7] = {
    "", "food", "textiles", "chemicals_building", "crafts", "furniture", "metal_machinery"
};
static const char *sector_label[7] = {
    "", "Pangan", "Sandang", "Kimia dan bahan bangunan", "Kerajinan dan aneka",
    "Furnitur", "Logam, mesin, elektronika dan alat angkut"
};
/* KBLI 2020 main groups of category C (manufacturing), 10..33. */
static const char *kbli_label[24] = {
    "Industri makanan", "Industri minuman", "Industri pengolahan tembakau",
    "Industri tekstil", "Industri pakaian jadi",
    "Industri kulit, barang dari kulit dan alas kaki",
    "Industri kayu, barang dari kayu, bambu dan rotan",
    "Industri kertas dan barang dari kertas",
    "Industri pencetakan dan reproduksi media rekaman",
    "Industri produk dari batu bara dan pengilangan minyak bumi",
    "Industri bahan kimia dan barang dari bahan kimia",
    "Industri farmasi, produk obat kimia dan obat tradisional",
    "Industri karet, barang dari karet dan plastik",
    "Industri barang galian bukan logam", "Industri logam dasar",
    "Industri barang logam, bukan mesin dan peralatannya",
    "Industri komputer, barang elektronik dan optik",
    "Industri peralatan listrik", "Industri mesin dan perlengkapan ytdl",
    "Industri kendaraan bermotor, trailer dan semi trailer",
    "Industri alat angkutan lainnya", "Industri furnitur",
    "Industri pengolahan lainnya",
    "Jasa reparasi dan pemasangan mesin dan peralatan"
};

/* ---------------------------------------------------------------- GetStatistics SQL */

/*
 * Result columns: 0 gset (0 for a group row, non-zero for the total), then
 * one column per group-by present, in GroupBy order (not the request's),
 * then the measures (sentra, designated, business units, workers male,
 * workers female, investment, production value, material value), then the
 * province name and the regency name when those are grouped.
 */
#define M_COLS 8

/* The key expression of group-by g (1..7). asof_p: the as-of date's
 * parameter number, 0 when none. */
static void sb_key(sbuf_t *b, int g, int asof_p)
{
    switch (g) {
    case SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE:
        sb_add(b, "t.province_code");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY:
        sb_add(b, "t.regency_code");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_STATUS:
        /* As of a date before the decree, a designated sentra was formed. */
        if (asof_p)
            sb_add(b, "CASE WHEN t.designated AND t.decree_date > $%d::date"
                      " THEN 1::smallint ELSE t.status END", asof_p);
        else
            sb_add(b, "t.status");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_SECTOR_GROUP:
        sb_add(b, "t.sector_group");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_KBLI_MAIN_GROUP:
        sb_add(b, "left(t.kbli_code, 2)");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_FORMATION_YEAR:
        sb_add(b, "extract(year FROM t.formed_on)::int");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_DECREE_YEAR:
        if (asof_p)
            sb_add(b, "CASE WHEN t.decree_date <= $%d::date"
                      " THEN extract(year FROM t.decree_date)::int END", asof_p);
        else
            sb_add(b, "extract(year FROM t.decree_date)::int");
        break;
    }
}

static void sb_keys(sbuf_t *b, unsigned groups, int asof_p, const char *sep0)
{
    const char *sep = sep0;
    for (int g = 1; g <= N_GROUP_BY; g++)
        if (groups & (1u << (g - 1))) {
            sb_add(b, "%s", sep);
            sb_key(b, g, asof_p);
            sep = ", ";
        }
}

static char *build_stats_sql(uint32_t key)
{
    unsigned groups = (key >> K_GROUPS_SHIFT) & 0x7f;
    unsigned fshape = (key >> K_FILTER_SHIFT) & ((1u << SF_BITS) - 1);
    int p = filter_nparams(fshape) + 1;
    int year_p = (key & K_YEAR) ? p++ : 0;
    int asof_p = (key & K_ASOF) ? p++ : 0;
    sbuf_t b = { 0 };
    int k = 0;

    sb_add(&b, "SELECT g.*");
    if (groups & (1u << 0))
        sb_add(&b, ", rp.name");
    if (groups & (1u << 1))
        sb_add(&b, ", rr.name");
    sb_add(&b, " FROM (SELECT ");
    if (groups) {
        sb_add(&b, "GROUPING(");
        sb_keys(&b, groups, asof_p, "");
        sb_add(&b, ") AS gset");
        for (int g = 1; g <= N_GROUP_BY; g++)
            if (groups & (1u << (g - 1))) {
                sb_add(&b, ", ");
                sb_key(&b, g, asof_p);
                sb_add(&b, " AS k%d", ++k);
            }
    } else {
        sb_add(&b, "1 AS gset");
    }
    if (asof_p)
        sb_add(&b, ", count(*) AS n, count(*) FILTER (WHERE t.designated"
                   " AND t.decree_date <= $%d::date) AS d", asof_p);
    else
        sb_add(&b, ", count(*) AS n, count(*) FILTER (WHERE t.designated) AS d");
    /* Sums as PostgreSQL computes them (bigint for the integer counts,
     * numeric for the bigint money), never cast: a cast to bigint failed
     * the whole statement when a sum passed 2^63 - 1. fill_measures
     * refuses sums the reply's int64 cannot carry. */
    sb_add(&b, ", coalesce(sum(f.business_units), 0)"
               ", coalesce(sum(f.workers_male), 0)"
               ", coalesce(sum(f.workers_female), 0)"
               ", coalesce(sum(f.investment), 0)"
               ", coalesce(sum(f.production_value), 0)"
               ", coalesce(sum(f.material_value), 0)");
    sb_add(&b, "%s", from_clause(fshape));
    /* Which figures: the latest (kept on the row), a chosen year, or the
     * latest up to the as-of date's year. */
    if (year_p)
        sb_add(&b, " LEFT JOIN sentra_figures f ON f.sentra_id = t.sentra_id"
                   " AND f.year = $%d::smallint", year_p);
    else if (asof_p && !(fshape & (SF_SCOPE_REGENCY | SF_SCOPE_PROVINCE | SF_PROVINCE | SF_REGENCY)))
        /* The latest figures up to the as-of year, for the whole country:
         * one pass over sentra_figures in its primary key's order read
         * backwards (so no sort), hash-joined: measured about twice as
         * fast as a probe per sentra at 20,000 sentra. */
        sb_add(&b, " LEFT JOIN (SELECT DISTINCT ON (x.sentra_id) x.sentra_id, x.business_units,"
                   " x.workers_male, x.workers_female, x.investment, x.production_value,"
                   " x.material_value FROM sentra_figures x"
                   " WHERE x.year <= extract(year FROM $%d::date)::int"
                   " ORDER BY x.sentra_id DESC, x.year DESC) f ON f.sentra_id = t.sentra_id", asof_p);
    else if (asof_p)
        /* ...for a province or a regency (a few hundred sentra): the
         * maintained latest figures when they are not newer (no lookup),
         * else one index probe for the greatest year before. The branches
         * exclude each other. */
        sb_add(&b, " LEFT JOIN LATERAL (SELECT t.business_units, t.workers_male,"
                   " t.workers_female, t.investment, t.production_value, t.material_value"
                   " WHERE t.fig_year <= extract(year FROM $%d::date)::int"
                   " UNION ALL (SELECT x.business_units, x.workers_male, x.workers_female,"
                   " x.investment, x.production_value, x.material_value"
                   " FROM sentra_figures x WHERE t.fig_year > extract(year FROM $%d::date)::int"
                   " AND x.sentra_id = t.sentra_id"
                   " AND x.year <= extract(year FROM $%d::date)::int"
                   " ORDER BY x.year DESC LIMIT 1)) f ON true", asof_p, asof_p, asof_p);
    else
        sb_add(&b, " CROSS JOIN LATERAL (SELECT t.business_units, t.workers_male,"
                   " t.workers_female, t.investment, t.production_value,"
                   " t.material_value) f");
    sb_add(&b, " WHERE true");
    sb_filter(&b, fshape, 1);
    if (asof_p)
        sb_add(&b, " AND t.formed_on <= $%d::date", asof_p);
    if (groups) {
        sb_add(&b, " GROUP BY GROUPING SETS ((");
        sb_keys(&b, groups, asof_p, "");
        sb_add(&b, "), ())");
    }
    sb_add(&b, ") g");
    k = 0;
    for (int g = 1; g <= N_GROUP_BY; g++)
        if (groups & (1u << (g - 1))) {
            k++;
            if (g == SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE)
                sb_add(&b, " LEFT JOIN region rp ON rp.code = g.k%d", k);
            if (g == SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY)
                sb_add(&b, " LEFT JOIN region rr ON rr.code = g.k%d", k);
        }
    sb_add(&b, " ORDER BY g.gset");
    for (int i = 1; i <= k; i++)
        sb_add(&b, ", g.k%d", i);
    return b.p;
}

/* ---------------------------------------------------------------- GetStatistics */

/* The state of one GetStatistics call, in call memory. */
typedef struct stats_req {
    unsigned groups;        /* group-by bits, bit g-1 for GroupBy g */
    int col_of[N_GROUP_BY + 1];/* result column of each GroupBy present */
    int name_col[3];        /* result column of the province/regency name */
} stats_req_t;

static const char *kbli_name(const char *k)
{
    if (strlen(k) == 2 && k[0] >= '1' && k[0] <= '3' && k[1] >= '0' && k[1] <= '9') {
        int v = atoi(k);
        if (v >= 10 && v <= 33)
            return kbli_label[v - 10];
    }
    return "";
}

/* The key text and label of group g in row r. */
static void row_key(call_t *c, PGresult *res, int r, int g, const stats_req_t *sr,
                    char **key, char **label)
{
    int col = sr->col_of[g];
    const char *v = PQgetisnull(res, r, col) ? NULL : PQgetvalue(res, r, col);
    int iv = v ? atoi(v) : 0;

    *key = "";
    *label = "";
    switch (g) {
    case SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE:
    case SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY:
        if (v) {
            int nc = sr->name_col[g];
            *key = call_strdup(c, v);
            *label = PQgetisnull(res, r, nc) ? "" : call_strdup(c, PQgetvalue(res, r, nc));
        }
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_STATUS:
        if (iv >= 1 && iv <= 5) {
            *key = (char *)status_key[iv];
            *label = (char *)status_label[iv];
        }
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_SECTOR_GROUP:
        if (iv >= 1 && iv <= 6) {
            *key = (char *)sector_key[iv];
            *label = (char *)sector_label[iv];
        }
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_KBLI_MAIN_GROUP:
        if (v) {
            *key = call_strdup(c, v);
            *label = (char *)kbli_name(v);
        }
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_FORMATION_YEAR:
        if (v)
            *key = *label = call_strdup(c, v);
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_DECREE_YEAR:
        if (v)
            *key = *label = call_strdup(c, v);
        else
            *label = "tanpa SK";   /* no decree (as of the date asked) */
        break;
    }
}

static int64_t col_i64(PGresult *res, int r, int col)
{
    return PQgetisnull(res, r, col) ? 0 : strtoll(PQgetvalue(res, r, col), NULL, 10);
}

/* A sum column as int64 (NULL: 0). Returns 0, or -1 when the value does
 * not fit (a numeric sum beyond 2^63 - 1). */
static int col_sum(PGresult *res, int r, int col, int64_t *out)
{
    const char *v;
    char *end;
    long long x;

    *out = 0;
    if (PQgetisnull(res, r, col))
        return 0;
    v = PQgetvalue(res, r, col);
    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno == ERANGE || end == v || *end != '\0')
        return -1;
    *out = x;
    return 0;
}

/* The measures of row r (columns from m). Returns NULL, or the name of a
 * measure whose sum the reply cannot carry. With money bounded to
 * VALIDATE_MONEY_MAX a sum passes 2^63 - 1 only over more than 92,000
 * figures at that bound (docs/STATS.md). */
static const char *fill_measures(Sentra__V1__StatsRow *row, PGresult *res, int r, int m)
{
    static const char *const names[M_COLS] = {
        "sentra", "designated", "business_units", "workers_male", "workers_female",
        "investment", "production_value", "material_value",
    };
    int64_t v[M_COLS];

    for (int k = 0; k < M_COLS; k++)
        if (col_sum(res, r, m + k, &v[k]) != 0)
            return names[k];
    row->sentra = v[0];
    row->designated = v[1];
    row->designation_rate = row->sentra ? (double)row->designated / (double)row->sentra : 0.0;
    row->business_units = v[2];
    row->workers_male = v[3];
    row->workers_female = v[4];
    if (__builtin_add_overflow(v[3], v[4], &row->workers_total))
        return "workers_total";
    row->investment = v[5];
    row->production_value = v[6];
    row->material_value = v[7];
    return NULL;
}

static void stats_done(call_t *c, PGresult *res)
{
    const Sentra__V1__GetStatisticsRequest *req = (const void *)c->msg;
    Sentra__V1__GetStatisticsResponse resp = SENTRA__V1__GET_STATISTICS_RESPONSE__INIT;
    Sentra__V1__StatsRow *total = call_alloc(c, sizeof(*total));
    stats_req_t sr = { 0 };
    const char *over = NULL;
    int n, ngroups = 0, mcol, col = 1;

    if (call_db_error(c, res))
        return;
    /* The request's group-by list (validated: no repeats) names the
     * columns, which the SQL lists in GroupBy order. */
    for (size_t i = 0; i < req->n_group_by; i++)
        sr.groups |= 1u << (req->group_by[i] - 1);
    for (int g = 1; g <= N_GROUP_BY; g++)
        if (sr.groups & (1u << (g - 1))) {
            sr.col_of[g] = col++;
            ngroups++;
        }
    mcol = col;
    col += M_COLS;
    if (sr.groups & (1u << (SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE - 1)))
        sr.name_col[SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE] = col++;
    if (sr.groups & (1u << (SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY - 1)))
        sr.name_col[SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY] = col++;

    sentra__v1__stats_row__init(total);
    n = PQntuples(res);
    resp.group_by = req->group_by;
    resp.n_group_by = req->n_group_by;
    resp.rows = call_alloc(c, (size_t)(n > 0 ? n : 1) * sizeof(*resp.rows));
    for (int r = 0; r < n; r++) {
        if (strcmp(PQgetvalue(res, r, 0), "0") != 0 || ngroups == 0) {
            if ((over = fill_measures(total, res, r, mcol)) != NULL)
                break;
            continue;
        }
        Sentra__V1__StatsRow *row = call_alloc(c, sizeof(*row));
        sentra__v1__stats_row__init(row);
        row->n_keys = row->n_labels = req->n_group_by;
        row->keys = call_alloc(c, req->n_group_by * sizeof(char *));
        row->labels = call_alloc(c, req->n_group_by * sizeof(char *));
        for (size_t i = 0; i < req->n_group_by; i++)
            row_key(c, res, r, (int)req->group_by[i], &sr, &row->keys[i], &row->labels[i]);
        if ((over = fill_measures(row, res, r, mcol)) != NULL)
            break;
        resp.rows[resp.n_rows++] = row;
    }
    if (over != NULL) {
        call_fail(c, SENTRA_OUT_OF_RANGE,
                  "the sum of %s over the sentra counted exceeds 2^63 - 1, the most a reply"
                  " carries: some figures are implausible (narrow the filter to find them)",
                  over);
        return;
    }
    resp.total = total;
    call_reply(c, &resp.base);
}

void h_get_statistics(call_t *c)
{
    const Sentra__V1__GetStatisticsRequest *req = (const void *)c->msg;
    violations_t v = { 0 };
    sentra_filter_t sf;
    unsigned groups = 0;
    uint32_t key;
    int ymd;

    sentra__filter_check(req->filter, &v);
    if (req->n_group_by > N_GROUP_BY) {
        /* Each grouping at most once: counted before any is looked at. */
        violations_add(&v, "group_by", "has more than %d entries (one per grouping)", N_GROUP_BY);
    } else {
        for (size_t i = 0; i < req->n_group_by; i++) {
            int g = (int)req->group_by[i];
            if (g < 1 || g > N_GROUP_BY)
                violations_add(&v, call_printf(c, "group_by[%zu]", i), "is not a known grouping");
            else if (groups & (1u << (g - 1)))
                violations_add(&v, call_printf(c, "group_by[%zu]", i), "repeats an earlier grouping");
            else
                groups |= 1u << (g - 1);
        }
    }
    if (req->reporting_year != 0 && (req->reporting_year < 1945 || req->reporting_year > 2100))
        violations_add(&v, "reporting_year", "must be 0 (each sentra's latest figures) or a year from 1945 to 2100");
    if (req->as_of && req->as_of[0] && !validate_date(req->as_of, &ymd))
        violations_add(&v, "as_of", "must be a date YYYY-MM-DD");
    if (v.n > 0) {
        call_fail_violations(c, &v);
        violations_free(&v);
        return;
    }
    violations_free(&v);

    sentra__filter_bind(c, req->filter, &sf);
    key = groups << K_GROUPS_SHIFT | sf.shape << K_FILTER_SHIFT;
    const char *params[SF_MAX_PARAMS + 2];
    int np = sf.nparams;
    memcpy(params, sf.params, (size_t)np * sizeof(char *));
    if (req->reporting_year != 0) {
        key |= K_YEAR;
        params[np++] = call_printf(c, "%d", req->reporting_year);
    }
    if (req->as_of && req->as_of[0]) {
        key |= K_ASOF;
        params[np++] = req->as_of;
    }
    call_query_read(c, shape_stmt(c, key, build_stats_sql), np, params, stats_done);
}

/* ---------------------------------------------------------------- GetTimeSeries */

/*
 * Per year: sentra formed (by formation date, or registration date when
 * none is recorded) and sentra designated now whose decree is dated that
 * year, with running totals from the first year on record (so the
 * cumulative figures of a window that starts later still count what came
 * before). Years run from from_year (0: the first year with data) to
 * to_year (0: this year, WIT).
 */
static char *build_series_sql(uint32_t key)
{
    unsigned fshape = (key >> K_FILTER_SHIFT) & ((1u << SF_BITS) - 1);
    int p = filter_nparams(fshape) + 1;
    int from_p = p, to_p = p + 1;
    sbuf_t b = { 0 };

    sb_add(&b, "WITH ev AS (SELECT extract(year FROM t.formed_on)::int AS fy,"
               " CASE WHEN t.designated THEN extract(year FROM t.decree_date)::int END AS dy");
    sb_add(&b, "%s WHERE true", from_clause(fshape));
    sb_filter(&b, fshape, 1);
    sb_add(&b, "), f AS (SELECT fy AS y, count(*) AS n FROM ev GROUP BY fy)"
               ", d AS (SELECT dy AS y, count(*) AS n FROM ev WHERE dy IS NOT NULL GROUP BY dy)"
               ", lo AS (SELECT least((SELECT min(y) FROM f), (SELECT min(y) FROM d),"
               " nullif($%d::int, 0)) AS y)"
               ", yrs AS (SELECT generate_series(lo.y, coalesce(nullif($%d::int, 0),"
               " extract(year FROM sentra_today())::int)) AS y FROM lo)"
               ", s AS (SELECT yrs.y, coalesce(f.n, 0) AS formed, coalesce(d.n, 0) AS designated,"
               " sum(coalesce(f.n, 0)) OVER w AS formed_cum,"
               " sum(coalesce(d.n, 0)) OVER w AS designated_cum"
               " FROM yrs LEFT JOIN f ON f.y = yrs.y LEFT JOIN d ON d.y = yrs.y"
               " WINDOW w AS (ORDER BY yrs.y))"
               " SELECT y, formed, designated, formed_cum::bigint, designated_cum::bigint"
               " FROM s WHERE y >= coalesce(nullif($%d::int, 0), y) ORDER BY y",
           from_p, to_p, from_p);
    return b.p;
}

static void series_done(call_t *c, PGresult *res)
{
    Sentra__V1__GetTimeSeriesResponse resp = SENTRA__V1__GET_TIME_SERIES_RESPONSE__INIT;
    if (call_db_error(c, res))
        return;
    int n = PQntuples(res);
    resp.points = call_alloc(c, (size_t)(n > 0 ? n : 1) * sizeof(*resp.points));
    for (int r = 0; r < n; r++) {
        Sentra__V1__TimeSeriesPoint *pt = call_alloc(c, sizeof(*pt));
        sentra__v1__time_series_point__init(pt);
        pt->year = (int32_t)col_i64(res, r, 0);
        pt->formed = col_i64(res, r, 1);
        pt->designated = col_i64(res, r, 2);
        pt->formed_cumulative = col_i64(res, r, 3);
        pt->designated_cumulative = col_i64(res, r, 4);
        resp.points[resp.n_points++] = pt;
    }
    call_reply(c, &resp.base);
}

void h_get_time_series(call_t *c)
{
    const Sentra__V1__GetTimeSeriesRequest *req = (const void *)c->msg;
    violations_t v = { 0 };
    sentra_filter_t sf;

    sentra__filter_check(req->filter, &v);
    if (req->from_year != 0 && (req->from_year < 1900 || req->from_year > 2100))
        violations_add(&v, "from_year", "must be 0 (the first year with data) or a year from 1900 to 2100");
    if (req->to_year != 0 && (req->to_year < 1900 || req->to_year > 2100))
        violations_add(&v, "to_year", "must be 0 (this year) or a year from 1900 to 2100");
    if (req->from_year != 0 && req->to_year != 0 && req->from_year > req->to_year)
        violations_add(&v, "from_year", "must not be after to_year");
    if (v.n > 0) {
        call_fail_violations(c, &v);
        violations_free(&v);
        return;
    }
    violations_free(&v);

    sentra__filter_bind(c, req->filter, &sf);
    const char *params[SF_MAX_PARAMS + 2];
    int np = sf.nparams;
    memcpy(params, sf.params, (size_t)np * sizeof(char *));
    params[np++] = call_printf(c, "%d", req->from_year);
    params[np++] = call_printf(c, "%d", req->to_year);
    call_query_read(c, shape_stmt(c, K_SERIES | sf.shape << K_FILTER_SHIFT, build_series_sql),
                    np, params, series_done);
}
