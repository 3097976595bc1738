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

/* Key bits: group-by mask (15), filter shape (SF_BITS), flags, then the
 * subject (2 bits). */
#define K_GROUPS_SHIFT 0
#define K_GROUPS_MASK 0x7fffu
#define K_FILTER_SHIFT 15
#define K_YEAR   (1u << (K_FILTER_SHIFT + SF_BITS))
#define K_ASOF   (1u << (K_FILTER_SHIFT + SF_BITS + 1))
#define K_SERIES (1u << (K_FILTER_SHIFT + SF_BITS + 2))
#define K_SUBJECT_SHIFT (K_FILTER_SHIFT + SF_BITS + 3)
#define K_SUBJECT(key) ((int)((key) >> K_SUBJECT_SHIFT) & 3)

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

#define N_GROUP_BY 15  /* GroupBy values 1..15 */
#define N_SENTRA_GROUP_BY 7   /* 1..7 group sentra; 8..15 one subject's records */

enum { SUBJ_SENTRA, SUBJ_MEMBERS, SUBJ_OBSTACLES, SUBJ_ASSISTANCE };

/* The subject whose records group-by g (8..15) groups. */
static int group_subject(int g)
{
    return g <= N_SENTRA_GROUP_BY ? SUBJ_SENTRA
         : g <= SENTRA__V1__GROUP_BY__GROUP_BY_OWNER_SEX ? SUBJ_MEMBERS
         : g <= SENTRA__V1__GROUP_BY__GROUP_BY_SEVERITY ? SUBJ_OBSTACLES : SUBJ_ASSISTANCE;
}

/* Keys and labels of the records' enumerations, indexed by value. */
static const char *size_key[4] = {"", "small", "medium", "large"};
static const char *size_label[4] = {"", "Industri kecil", "Industri menengah", "Industri besar"};
static const char *sex_key[3] = {"", "male", "female"};
static const char *sex_label[3] = {"", "Laki-laki", "Perempuan"};
static const char *category_key[11] = {
    "", "raw_materials", "technology", "quality", "marketing", "capital", "human_resources",
    "infrastructure", "permits", "institution", "other"
};
static const char *category_label[11] = {
    "", "Bahan baku", "Teknologi produksi dan mesin", "Mutu produk dan sertifikasi",
    "Pemasaran dan akses pasar", "Permodalan dan pembiayaan", "Sumber daya manusia",
    "Infrastruktur", "Perizinan dan regulasi", "Kelembagaan", "Lainnya"
};
static const char *ostatus_key[4] = {"", "open", "in_progress", "resolved"};
static const char *ostatus_label[4] = {"", "Terbuka", "Sedang ditangani", "Selesai"};
static const char *severity_key[4] = {"", "low", "medium", "high"};
static const char *severity_label[4] = {"", "Rendah", "Sedang", "Tinggi"};
static const char *akind_key[8] = {
    "", "machines", "training", "certification", "promotion", "capital_access",
    "infrastructure", "mentoring"
};
static const char *akind_label[8] = {
    "", "Mesin dan peralatan", "Pelatihan dan bimbingan teknis", "Sertifikasi",
    "Promosi dan pameran", "Akses permodalan", "Sarana dan revitalisasi (DAK)", "Pendampingan"
};
static const char *provider_key[6] = {
    "", "kemenperin", "province", "regency", "other_ministry", "private"
};
static const char *provider_label[6] = {
    "", "Kementerian Perindustrian", "Pemerintah provinsi", "Pemerintah kabupaten/kota",
    "Kementerian/lembaga lain", "Swasta"
};

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
 * then the measures (M_COLS: sentra, designated, business units, workers
 * male, workers female, investment, production value, material value, then
 * those of the records, R_* below), then the province name and the regency
 * name when those are grouped. Every subject yields every measure column
 * (0 where it does not count that measure), so one reader serves all.
 */
#define M_COLS 22

/* The key expression of group-by g (1..15). asof_p: the as-of date's
 * parameter number, 0 when none. The records' dimensions read the aliases
 * of their subject's FROM (v: a sentra's members by size class and owner's
 * sex; o: obstacle; a: assistance). */
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
    case SENTRA__V1__GROUP_BY__GROUP_BY_SIZE_CLASS:
        sb_add(b, "v.size_class");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_OWNER_SEX:
        sb_add(b, "v.sex");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_CATEGORY:
        sb_add(b, "o.category");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_STATUS:
        sb_add(b, "o.status");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_SEVERITY:
        sb_add(b, "o.severity");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_ASSISTANCE_KIND:
        sb_add(b, "a.kind");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_PROVIDER:
        sb_add(b, "a.provider");
        break;
    case SENTRA__V1__GROUP_BY__GROUP_BY_ASSISTANCE_YEAR:
        sb_add(b, "a.year::int");
        break;
    }
}

static void sb_keys(sbuf_t *b, unsigned groups, int asof_p, const char *sep0);
#define G_BIT(g) (1u << ((g) - 1))

/* The measures of the records, after the eight of the sentra (M_COLS in
 * all), for each subject, as plain sums of stored counts (fill_measures
 * derives members, the sexes, the classes and the obstacles from them: a
 * sum of sums in SQL doubled the time of a national statistic). SENTRA
 * reads the counts each sentra's statistics row keeps of its records
 * (migrations/0013_records.sql); MEMBERS the same six counts of members by
 * size class x owner's sex, unpivoted (v, subject_join); OBSTACLES and
 * ASSISTANCE their tables (o, a). Order (R_*): the six counts (small male,
 * small female, medium male, medium female, large male, large female),
 * sentra with members, business units effective, with institution,
 * obstacles open, in progress, resolved, assistance count, value. */
static void sb_record_measures(sbuf_t *b, int subject, unsigned groups, int asof_p)
{
    switch (subject) {
    case SUBJ_SENTRA:
        sb_add(b, ", sum(t.small_male), sum(t.small_female), sum(t.medium_male)"
                  ", sum(t.medium_female), sum(t.large_male), sum(t.large_female)"
                  ", count(*) FILTER (WHERE t.member_rows > 0)"
                  /* the members of a sentra that keeps member records, else
                   * the business units it reports */
                  ", sum(CASE WHEN t.member_rows > 0 THEN t.small_male + t.small_female"
                  " + t.medium_male + t.medium_female + t.large_male + t.large_female"
                  " ELSE f.business_units END)"
                  ", count(*) FILTER (WHERE t.institution_form > 1)"
                  ", sum(t.obstacles_open), sum(t.obstacles_in_progress), sum(t.obstacles_resolved)"
                  ", sum(t.assistance_count), sum(t.assistance_value)");
        break;
    case SUBJ_MEMBERS:
        sb_add(b, ", sum(v.sm), sum(v.sf), sum(v.mm), sum(v.mf), sum(v.lm), sum(v.lf)");
        if (groups & (G_BIT(SENTRA__V1__GROUP_BY__GROUP_BY_SIZE_CLASS) |
                      G_BIT(SENTRA__V1__GROUP_BY__GROUP_BY_OWNER_SEX))) {
            /* a group row holds one row of v per sentra; the total row
             * all of them: there the sentra's first row counts it */
            sb_add(b, ", CASE WHEN GROUPING(");
            sb_keys(b, groups, asof_p, "");
            sb_add(b, ") = 0 THEN count(*) ELSE sum(v.first) END");
        } else {
            sb_add(b, ", count(*)");
        }
        sb_add(b, ", 0, 0, 0, 0, 0, 0, 0");
        break;
    case SUBJ_OBSTACLES:
        sb_add(b, ", 0, 0, 0, 0, 0, 0, 0, 0, 0"
                  ", count(*) FILTER (WHERE o.status = 1), count(*) FILTER (WHERE o.status = 2)"
                  ", count(*) FILTER (WHERE o.status = 3), 0, 0");
        break;
    case SUBJ_ASSISTANCE:
        sb_add(b, ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), sum(a.value)");
        break;
    }
}

/* What a subject other than SENTRA counts, joined to its sentra (t). For
 * MEMBERS, the six counts of the sentra's row unpivoted into one row per
 * value of the members' dimensions grouped (both: six rows; size class:
 * three; owner's sex: two; neither: one), each row holding the counts that
 * fall in it (the others 0) and n, their sum, so that a sentra is one row
 * of each group and count(*) counts sentra without a DISTINCT; `first`
 * marks the sentra's first row with members, for the total row. */
#define V_COLS " v(size_class, sex, sm, sf, mm, mf, lm, lf, n, first)"
static const char *subject_join(int subject, unsigned groups)
{
    int by_class = (groups & G_BIT(SENTRA__V1__GROUP_BY__GROUP_BY_SIZE_CLASS)) != 0;
    int by_sex = (groups & G_BIT(SENTRA__V1__GROUP_BY__GROUP_BY_OWNER_SEX)) != 0;

    switch (subject) {
    case SUBJ_MEMBERS:
        if (by_class && by_sex)
            return " CROSS JOIN LATERAL (VALUES"
                   " (1::smallint, 1::smallint, t.small_male, 0, 0, 0, 0, 0, t.small_male,"
                   " (t.small_male > 0)::int),"
                   " (1, 2, 0, t.small_female, 0, 0, 0, 0, t.small_female,"
                   " (t.small_male = 0 AND t.small_female > 0)::int),"
                   " (2, 1, 0, 0, t.medium_male, 0, 0, 0, t.medium_male,"
                   " (t.small_male + t.small_female = 0 AND t.medium_male > 0)::int),"
                   " (2, 2, 0, 0, 0, t.medium_female, 0, 0, t.medium_female,"
                   " (t.small_male + t.small_female + t.medium_male = 0 AND t.medium_female > 0)::int),"
                   " (3, 1, 0, 0, 0, 0, t.large_male, 0, t.large_male,"
                   " (t.small_male + t.small_female + t.medium_male + t.medium_female = 0"
                   " AND t.large_male > 0)::int),"
                   " (3, 2, 0, 0, 0, 0, 0, t.large_female, t.large_female,"
                   " (t.small_male + t.small_female + t.medium_male + t.medium_female"
                   " + t.large_male = 0 AND t.large_female > 0)::int))" V_COLS;
        if (by_class)
            return " CROSS JOIN LATERAL (VALUES"
                   " (1::smallint, NULL::smallint, t.small_male, t.small_female, 0, 0, 0, 0,"
                   " t.small_male + t.small_female, (t.small_male + t.small_female > 0)::int),"
                   " (2, NULL, 0, 0, t.medium_male, t.medium_female, 0, 0,"
                   " t.medium_male + t.medium_female, (t.small_male + t.small_female = 0"
                   " AND t.medium_male + t.medium_female > 0)::int),"
                   " (3, NULL, 0, 0, 0, 0, t.large_male, t.large_female,"
                   " t.large_male + t.large_female, (t.small_male + t.small_female + t.medium_male"
                   " + t.medium_female = 0 AND t.large_male + t.large_female > 0)::int))" V_COLS;
        if (by_sex)
            return " CROSS JOIN LATERAL (VALUES"
                   " (NULL::smallint, 1::smallint, t.small_male, 0, t.medium_male, 0, t.large_male, 0,"
                   " t.small_male + t.medium_male + t.large_male,"
                   " (t.small_male + t.medium_male + t.large_male > 0)::int),"
                   " (NULL, 2, 0, t.small_female, 0, t.medium_female, 0, t.large_female,"
                   " t.small_female + t.medium_female + t.large_female,"
                   " (t.small_male + t.medium_male + t.large_male = 0"
                   " AND t.small_female + t.medium_female + t.large_female > 0)::int))" V_COLS;
        return " CROSS JOIN LATERAL (VALUES (NULL::smallint, NULL::smallint, t.small_male,"
               " t.small_female, t.medium_male, t.medium_female, t.large_male, t.large_female,"
               " t.small_male + t.small_female + t.medium_male + t.medium_female + t.large_male"
               " + t.large_female, 1))" V_COLS;
    case SUBJ_OBSTACLES:
        return " JOIN obstacle o ON o.sentra_id = t.sentra_id AND o.deleted_at IS NULL";
    case SUBJ_ASSISTANCE:
        return " JOIN assistance a ON a.sentra_id = t.sentra_id AND a.deleted_at IS NULL";
    }
    return "";
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
    unsigned groups = (key >> K_GROUPS_SHIFT) & K_GROUPS_MASK;
    unsigned fshape = (key >> K_FILTER_SHIFT) & ((1u << SF_BITS) - 1);
    int subject = K_SUBJECT(key);
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
    if (subject != SUBJ_SENTRA) {
        /* The sentra that have records of the subject in the group. */
        if (subject == SUBJ_MEMBERS) {
            /* sentra with members in the group (the measure R_SENTRA_WITH
             * counts the same) */
            if (groups & (G_BIT(SENTRA__V1__GROUP_BY__GROUP_BY_SIZE_CLASS) |
                          G_BIT(SENTRA__V1__GROUP_BY__GROUP_BY_OWNER_SEX))) {
                sb_add(&b, ", CASE WHEN GROUPING(");
                sb_keys(&b, groups, asof_p, "");
                sb_add(&b, ") = 0 THEN count(*) ELSE sum(v.first) END AS n");
            } else {
                sb_add(&b, ", count(*) AS n");
            }
            sb_add(&b, ", 0 AS d, 0, 0, 0, 0, 0, 0");
        } else {
            sb_add(&b, ", count(DISTINCT t.sentra_id) AS n, 0 AS d, 0, 0, 0, 0, 0, 0");
        }
        sb_record_measures(&b, subject, groups, asof_p);
        sb_add(&b, "%s%s WHERE true", from_clause(fshape), subject_join(subject, groups));
        if (subject == SUBJ_MEMBERS)
            sb_add(&b, " AND v.n > 0");
        sb_filter(&b, fshape, 1);
        goto group;
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
    sb_record_measures(&b, SUBJ_SENTRA, groups, asof_p);
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
group:
    if (groups && subject == SUBJ_SENTRA) {
        /* Each sentra falls in exactly one group and every measure is a
         * count or a sum: stats_done adds the groups up for the total, and
         * the statement aggregates each row once rather than twice (a
         * total in SQL cost about a third of a national statistic). */
        sb_add(&b, " GROUP BY ");
        sb_keys(&b, groups, asof_p, "");
    } else if (groups) {
        /* A sentra counts in several groups of its records: the total
         * counts it once. */
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
#define ENUM_KEY(keys, labels, max)            \
        if (iv >= 1 && iv <= (max)) {          \
            *key = (char *)(keys)[iv];         \
            *label = (char *)(labels)[iv];     \
        }                                      \
        break
    case SENTRA__V1__GROUP_BY__GROUP_BY_SIZE_CLASS:
        ENUM_KEY(size_key, size_label, 3);
    case SENTRA__V1__GROUP_BY__GROUP_BY_OWNER_SEX:
        ENUM_KEY(sex_key, sex_label, 2);
    case SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_CATEGORY:
        ENUM_KEY(category_key, category_label, 10);
    case SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_STATUS:
        ENUM_KEY(ostatus_key, ostatus_label, 3);
    case SENTRA__V1__GROUP_BY__GROUP_BY_SEVERITY:
        ENUM_KEY(severity_key, severity_label, 3);
    case SENTRA__V1__GROUP_BY__GROUP_BY_ASSISTANCE_KIND:
        ENUM_KEY(akind_key, akind_label, 7);
    case SENTRA__V1__GROUP_BY__GROUP_BY_PROVIDER:
        ENUM_KEY(provider_key, provider_label, 5);
#undef ENUM_KEY
    case SENTRA__V1__GROUP_BY__GROUP_BY_ASSISTANCE_YEAR:
        if (v)
            *key = *label = call_strdup(c, v);
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

/* The names of the measure columns, for a sum the reply cannot carry. */
static const char *const measure_name[M_COLS] = {
    "sentra", "designated", "business_units", "workers_male", "workers_female",
    "investment", "production_value", "material_value",
    "members_small", "members_small", "members_medium", "members_medium", "members_large",
    "members_large", "sentra_with_members", "business_units_effective", "with_institution",
    "obstacles_open", "obstacles_in_progress", "obstacles_resolved", "assistance_count",
    "assistance_value",
};

/* The measure columns of row r (from column m) into v. Returns NULL, or
 * the name of a measure whose sum the reply cannot carry. With money
 * bounded to VALIDATE_MONEY_MAX a sum passes 2^63 - 1 only over more than
 * 92,000 figures at that bound (docs/STATS.md). */
static const char *read_measures(PGresult *res, int r, int m, int64_t v[M_COLS])
{
    for (int k = 0; k < M_COLS; k++)
        if (col_sum(res, r, m + k, &v[k]) != 0)
            return measure_name[k];
    return NULL;
}

/* The measures of a row from its column sums v. Returns NULL, or the name
 * of a measure that does not fit. */
static const char *fill_measures(Sentra__V1__StatsRow *row, const int64_t v[M_COLS])
{
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
    /* Counts of members (each below 2^31 per sentra, summed in bigint over
     * at most a few million sentra): no sum of them can overflow. */
    row->members_small = v[8] + v[9];
    row->members_medium = v[10] + v[11];
    row->members_large = v[12] + v[13];
    row->members_male_owned = v[8] + v[10] + v[12];
    row->members_female_owned = v[9] + v[11] + v[13];
    row->members = row->members_male_owned + row->members_female_owned;
    row->sentra_with_members = v[14];
    row->business_units_effective = v[15];
    row->with_institution = v[16];
    row->institution_share = row->sentra ? (double)row->with_institution / (double)row->sentra : 0.0;
    row->obstacles_open = v[17];
    row->obstacles_in_progress = v[18];
    row->obstacles_resolved = v[19];
    row->obstacles = v[17] + v[18] + v[19];
    row->obstacles_per_sentra = row->sentra ? (double)row->obstacles / (double)row->sentra : 0.0;
    row->assistance_count = v[20];
    row->assistance_value = v[21];
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
    /* The SENTRA subject's total: the sum of its groups (build_stats_sql) */
    int sum_groups = req->subject == SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_SENTRA &&
                     req->n_group_by > 0;
    int64_t sum[M_COLS] = { 0 };

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
    for (int r = 0; r < n && over == NULL; r++) {
        int64_t v[M_COLS];
        if ((over = read_measures(res, r, mcol, v)) != NULL)
            break;
        if (strcmp(PQgetvalue(res, r, 0), "0") != 0 || ngroups == 0) {
            over = fill_measures(total, v);
            continue;
        }
        if (sum_groups)
            for (int k = 0; k < M_COLS && over == NULL; k++)
                if (__builtin_add_overflow(sum[k], v[k], &sum[k]))
                    over = measure_name[k];
        Sentra__V1__StatsRow *row = call_alloc(c, sizeof(*row));
        sentra__v1__stats_row__init(row);
        row->n_keys = row->n_labels = req->n_group_by;
        row->keys = call_alloc(c, req->n_group_by * sizeof(char *));
        row->labels = call_alloc(c, req->n_group_by * sizeof(char *));
        for (size_t i = 0; i < req->n_group_by; i++)
            row_key(c, res, r, (int)req->group_by[i], &sr, &row->keys[i], &row->labels[i]);
        if (over == NULL)
            over = fill_measures(row, v);
        resp.rows[resp.n_rows++] = row;
    }
    if (sum_groups && over == NULL)
        over = fill_measures(total, sum);
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
    static const char *const subject_name[4] = {"SENTRA", "MEMBERS", "OBSTACLES", "ASSISTANCE"};
    int subject = (int)req->subject;
    if (subject < 0 || subject > 3) {
        violations_add(&v, "subject", "is not a known subject");
        subject = -1;
    }
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
            else if (group_subject(g) != SUBJ_SENTRA && subject >= 0 && group_subject(g) != subject)
                violations_add(&v, call_printf(c, "group_by[%zu]", i),
                               "groups the records of subject %s, not %s",
                               subject_name[group_subject(g)], subject_name[subject]);
            else
                groups |= 1u << (g - 1);
        }
    }
    if (req->reporting_year != 0 && (req->reporting_year < 1945 || req->reporting_year > 2100))
        violations_add(&v, "reporting_year", "must be 0 (each sentra's latest figures) or a year from 1945 to 2100");
    if (req->as_of && req->as_of[0] && !validate_date(req->as_of, &ymd))
        violations_add(&v, "as_of", "must be a date YYYY-MM-DD");
    /* The records hold no history of their values (docs/STATS.md): only
     * the sentra's figures have years and the registry an as-of date. */
    if (subject > 0 && req->reporting_year != 0)
        violations_add(&v, "reporting_year", "applies to the SENTRA subject only");
    if (subject > 0 && req->as_of && req->as_of[0])
        violations_add(&v, "as_of", "applies to the SENTRA subject only");
    if (v.n > 0) {
        call_fail_violations(c, &v);
        violations_free(&v);
        return;
    }
    violations_free(&v);

    sentra__filter_bind(c, req->filter, &sf);
    key = groups << K_GROUPS_SHIFT | sf.shape << K_FILTER_SHIFT |
          (uint32_t)subject << K_SUBJECT_SHIFT;
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
    int subject = K_SUBJECT(key);
    int p = filter_nparams(fshape) + 1;
    int from_p = p, to_p = p + 1;
    sbuf_t b = { 0 };

    /* ev: one row per counted thing, with the years of its events; f and d:
     * the two events counted per year; each point's running totals count
     * from the first year on record. Columns: year, then four numbers whose
     * meaning is the subject's (series_done). */
    switch (subject) {
    case SUBJ_SENTRA:
        sb_add(&b, "WITH ev AS (SELECT extract(year FROM t.formed_on)::int AS fy,"
                   " CASE WHEN t.designated THEN extract(year FROM t.decree_date)::int END AS dy");
        sb_add(&b, "%s WHERE true", from_clause(fshape));
        break;
    case SUBJ_MEMBERS:
        /* joined, left; a member whose joining year is not known counts as
         * a member from the first year on record (x0) */
        sb_add(&b, "WITH ev AS (SELECT x.joined_year::int AS fy, x.left_year::int AS dy,"
                   " x.joined_year IS NULL AS x0");
        sb_add(&b, "%s JOIN member x ON x.sentra_id = t.sentra_id AND x.deleted_at IS NULL"
                   " WHERE true", from_clause(fshape));
        break;
    case SUBJ_OBSTACLES:
        sb_add(&b, "WITH ev AS (SELECT extract(year FROM x.reported_on)::int AS fy,"
                   " extract(year FROM x.resolved_on)::int AS dy");
        sb_add(&b, "%s JOIN obstacle x ON x.sentra_id = t.sentra_id AND x.deleted_at IS NULL"
                   " WHERE true", from_clause(fshape));
        break;
    case SUBJ_ASSISTANCE:
        sb_add(&b, "WITH ev AS (SELECT x.year::int AS fy, NULL::int AS dy, x.value");
        sb_add(&b, "%s JOIN assistance x ON x.sentra_id = t.sentra_id AND x.deleted_at IS NULL"
                   " WHERE true", from_clause(fshape));
        break;
    }
    sb_filter(&b, fshape, 1);
    sb_add(&b, "), f AS (SELECT fy AS y, count(*) AS n%s FROM ev WHERE fy IS NOT NULL GROUP BY fy)"
               ", d AS (SELECT dy AS y, count(*) AS n FROM ev WHERE dy IS NOT NULL GROUP BY dy)"
               ", lo AS (SELECT least((SELECT min(y) FROM f), (SELECT min(y) FROM d),"
               " nullif($%d::int, 0)) AS y)"
               ", yrs AS (SELECT generate_series(lo.y, coalesce(nullif($%d::int, 0),"
               " extract(year FROM sentra_today())::int)) AS y FROM lo)"
               ", s AS (SELECT yrs.y, coalesce(f.n, 0) AS a, coalesce(d.n, 0) AS b,"
               " sum(coalesce(f.n, 0)) OVER w AS a_cum, sum(coalesce(d.n, 0)) OVER w AS b_cum%s"
               " FROM yrs LEFT JOIN f ON f.y = yrs.y LEFT JOIN d ON d.y = yrs.y"
               " WINDOW w AS (ORDER BY yrs.y))",
           subject == SUBJ_ASSISTANCE ? ", sum(value) AS v" : "", from_p, to_p,
           subject == SUBJ_ASSISTANCE ? ", coalesce(f.v, 0) AS v" : "");
    switch (subject) {
    case SUBJ_SENTRA:
        /* formed, designated, and their running totals */
        sb_add(&b, " SELECT y, a, b, a_cum::bigint, b_cum::bigint");
        break;
    case SUBJ_MEMBERS:
        /* joined, left, members at the end of the year */
        sb_add(&b, " SELECT y, a, b, ((SELECT count(*) FROM ev WHERE x0) + a_cum - b_cum)::bigint, 0");
        break;
    case SUBJ_OBSTACLES:
        /* reported, resolved, not resolved at the end of the year */
        sb_add(&b, " SELECT y, a, b, (a_cum - b_cum)::bigint, 0");
        break;
    case SUBJ_ASSISTANCE:
        /* received, and its value */
        sb_add(&b, " SELECT y, a, v, 0, 0");
        break;
    }
    sb_add(&b, " FROM s WHERE y >= coalesce(nullif($%d::int, 0), y) ORDER BY y", from_p);
    return b.p;
}

static void series_done(call_t *c, PGresult *res)
{
    const Sentra__V1__GetTimeSeriesRequest *req = (const void *)c->msg;
    Sentra__V1__GetTimeSeriesResponse resp = SENTRA__V1__GET_TIME_SERIES_RESPONSE__INIT;
    if (call_db_error(c, res))
        return;
    int n = PQntuples(res);
    resp.points = call_alloc(c, (size_t)(n > 0 ? n : 1) * sizeof(*resp.points));
    for (int r = 0; r < n; r++) {
        Sentra__V1__TimeSeriesPoint *pt = call_alloc(c, sizeof(*pt));
        int64_t v[4];
        sentra__v1__time_series_point__init(pt);
        pt->year = (int32_t)col_i64(res, r, 0);
        for (int k = 0; k < 4; k++)
            if (col_sum(res, r, k + 1, &v[k]) != 0) {
                call_fail(c, SENTRA_OUT_OF_RANGE,
                          "a yearly sum exceeds 2^63 - 1, the most a reply carries");
                return;
            }
        switch ((int)req->subject) {
        case SUBJ_SENTRA:
            pt->formed = v[0];
            pt->designated = v[1];
            pt->formed_cumulative = v[2];
            pt->designated_cumulative = v[3];
            break;
        case SUBJ_MEMBERS:
            pt->members_joined = v[0];
            pt->members_left = v[1];
            pt->members_active = v[2];
            break;
        case SUBJ_OBSTACLES:
            pt->obstacles_reported = v[0];
            pt->obstacles_resolved = v[1];
            pt->obstacles_unresolved = v[2];
            break;
        case SUBJ_ASSISTANCE:
            pt->assistance_count = v[0];
            pt->assistance_value = v[1];
            break;
        }
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
    if ((int)req->subject < 0 || (int)req->subject > 3)
        violations_add(&v, "subject", "is not a known subject");
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
    call_query_read(c, shape_stmt(c, K_SERIES | sf.shape << K_FILTER_SHIFT |
                                     (uint32_t)req->subject << K_SUBJECT_SHIFT, build_series_sql),
                    np, params, series_done);
}
