/*
 * test_records_stats.c: the statistics of the records of a sentra
 * (members, institutions, obstacles, assistance), against a sentrad of its
 * own on the synthetic Lampung demo data. Every number GetStatistics and
 * GetTimeSeries answer is compared with the same number computed here by
 * plain SQL from the base tables (never from the record counts on sentra_stat
 * the server reads): the SENTRA subject's record measures by regency, the
 * MEMBERS subject by regency x size class x owner's sex (the class
 * recomputed here from workers and investment), OBSTACLES by category x
 * status and by severity with a sector filter, ASSISTANCE by kind x
 * provider x year; a district token's scope; the time series of each
 * subject; bad requests; and the figures moving exactly with a write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sentra/sentra.h>

#include "harness.h"

static th_server_t srv;

enum { K_PROV, K_NAT, K_DIST_LB, K_COUNT };
static char *tok[K_COUNT];
static sentra_client_t *cl[K_COUNT];

static sentra_client_t *client(const char *token)
{
    sentra_client_opts_t o;
    sentra_client_t *c = NULL;
    char addr[96];
    snprintf(addr, sizeof(addr), "%s:%d", srv.host, srv.port);
    sentra_client_opts_init(&o);
    o.address = addr;
    o.token = token;
    o.default_deadline_ms = 20000;
    o.max_attempts = 1;
    assert_int_equal(sentra_client_new(&c, &o), 0);
    return c;
}

static PGresult *q(const char *sql)
{
    PGconn *c = th_db(&srv);
    assert_non_null(c);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQfinish(c);
    return r;
}

static Sentra__V1__GetStatisticsResponse *stats(int who, int subject, const Sentra__V1__SentraFilter *f,
                                                const Sentra__V1__GroupBy *g, size_t ng)
{
    Sentra__V1__GetStatisticsRequest rq = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
    Sentra__V1__GetStatisticsResponse *r = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    rq.subject = subject;
    rq.filter = (Sentra__V1__SentraFilter *)f;
    rq.group_by = (Sentra__V1__GroupBy *)g;
    rq.n_group_by = ng;
    if (sentra_get_statistics(cl[who], &rq, &r, NULL, &st) != 0)
        fail_msg("GetStatistics: %s %s", sentra_status_name(st.code), st.message ? st.message : "");
    sentra_status_clear(&st);
    assert_non_null(r->total);
    return r;
}

/* The measures of a row, by name (those the record subjects fill). */
static int64_t measure(const Sentra__V1__StatsRow *r, const char *name)
{
    static const struct {
        const char *name;
        size_t off;
    } m[] = {
#define F(x) {#x, offsetof(Sentra__V1__StatsRow, x)}
        F(sentra), F(designated), F(business_units), F(members), F(members_female_owned),
        F(members_male_owned), F(members_small), F(members_medium), F(members_large),
        F(sentra_with_members), F(business_units_effective), F(with_institution), F(obstacles),
        F(obstacles_open), F(obstacles_in_progress), F(obstacles_resolved), F(assistance_count),
        F(assistance_value),
#undef F
    };
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (strcmp(m[i].name, name) == 0)
            return *(const int64_t *)((const char *)r + m[i].off);
    fail_msg("no measure %s", name);
    return 0;
}

/* Compares the rows of r with the rows of sql: the first nk columns are
 * the keys (as text, in the response's key order), the rest the measures
 * named in names (comma-separated), in order. Every row of either side
 * must be on the other with the same measures; the total row is compared
 * with the column sums. */
static void compare(const Sentra__V1__GetStatisticsResponse *r, int nk, const char *sql,
                    const char *names)
{
    char list[512], *save = NULL;
    const char *nm[32];
    int nn = 0;
    snprintf(list, sizeof list, "%s", names);
    for (char *t = strtok_r(list, ",", &save); t && nn < 32; t = strtok_r(NULL, ",", &save))
        nm[nn++] = t;
    PGresult *res = q(sql);
    int rows = PQntuples(res);
    assert_int_equal(PQnfields(res), nk + nn);
    if ((size_t)rows != r->n_rows) {
        for (size_t i = 0; i < r->n_rows; i++)
            fprintf(stderr, "  server: %s %s %s\n", r->rows[i]->keys[0],
                    nk > 1 ? r->rows[i]->keys[1] : "", nk > 2 ? r->rows[i]->keys[2] : "");
        for (int i = 0; i < rows; i++)
            fprintf(stderr, "  sql:    %s %s %s\n", PQgetvalue(res, i, 0), nk > 1 ? PQgetvalue(res, i, 1) : "",
                    nk > 2 ? PQgetvalue(res, i, 2) : "");
        fail_msg("%zu rows from the server, %d from SQL: %s", r->n_rows, rows, sql);
    }
    int64_t sums[32] = {0};
    for (int i = 0; i < rows; i++) {
        const Sentra__V1__StatsRow *row = NULL;
        for (size_t j = 0; j < r->n_rows && !row; j++) {
            int same = 1;
            for (int k = 0; k < nk; k++)
                same = same && strcmp(r->rows[j]->keys[k], PQgetvalue(res, i, k)) == 0;
            if (same)
                row = r->rows[j];
        }
        if (!row)
            fail_msg("SQL row %s/%s/%s missing from the server's", PQgetvalue(res, i, 0),
                     nk > 1 ? PQgetvalue(res, i, 1) : "", nk > 2 ? PQgetvalue(res, i, 2) : "");
        for (int k = 0; k < nn; k++) {
            int64_t want = atoll(PQgetvalue(res, i, nk + k));
            sums[k] += want;
            if (measure(row, nm[k]) != want)
                fail_msg("%s of %s/%s/%s: server %lld, SQL %lld", nm[k], PQgetvalue(res, i, 0),
                         nk > 1 ? PQgetvalue(res, i, 1) : "", nk > 2 ? PQgetvalue(res, i, 2) : "",
                         (long long)measure(row, nm[k]), (long long)want);
        }
    }
    for (int k = 0; k < nn; k++)
        if (strcmp(nm[k], "sentra") != 0 && strcmp(nm[k], "sentra_with_members") != 0 &&
            measure(r->total, nm[k]) != sums[k])
            fail_msg("total %s: server %lld, SQL %lld", nm[k], (long long)measure(r->total, nm[k]),
                     (long long)sums[k]);
    PQclear(res);
}

/* The live records of live sentra, with the size class recomputed from
 * the rule of Permenperin 64/2016 (not the generated column). */
#define LIVE_MEMBERS \
    "(SELECT m.*, s.regency_code AS s_regency, s.sector_group AS s_sector," \
    " CASE WHEN m.workers_male + m.workers_female <= 19 AND m.investment < 1000000000 THEN 'small'" \
    " WHEN m.workers_male + m.workers_female <= 19 OR m.investment <= 15000000000 THEN 'medium'" \
    " ELSE 'large' END AS cls FROM member m JOIN sentra s ON s.id = m.sentra_id" \
    " WHERE m.deleted_at IS NULL AND s.deleted_at IS NULL)"

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (!th_env_ok())
        return -1;
    if (th_server_start(&srv, "t_records_stats", NULL) != 0)
        return -1;
    char script[512], out[1024];
    snprintf(script, sizeof script, "%s/demo-data.sh", getenv("SENTRA_TEST_SCRIPTS"));
    const char *argv[] = {script, srv.db_conninfo, NULL};
    if (th_run(argv, out, sizeof out) != 0) {
        fprintf(stderr, "demo-data.sh failed: %s\n", out);
        return -1;
    }
    tok[K_PROV] = th_token(&srv, "province", "18");
    tok[K_NAT] = th_token(&srv, "national", NULL);
    tok[K_DIST_LB] = th_token(&srv, "district", "18.04");
    for (int i = 0; i < K_COUNT; i++) {
        if (!tok[i])
            return -1;
        cl[i] = client(tok[i]);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < K_COUNT; i++) {
        sentra_client_free(cl[i]);
        free(tok[i]);
    }
    th_server_free(&srv);
    return 0;
}

/* ---------------------------------------------------------------- tests */

/* SENTRA subject: every record measure of every regency of Lampung. */
static void sentra_subject(void **state)
{
    (void)state;
    Sentra__V1__GroupBy g[] = {SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY};
    Sentra__V1__GetStatisticsResponse *r = stats(K_PROV, 0, NULL, g, 1);
    assert_int_equal(r->n_rows, 15);
    assert_int_equal(r->total->sentra, 73);       /* the seed's headline is untouched */
    assert_int_equal(r->total->designated, 54);
    compare(r, 1,
            "SELECT s.regency_code, count(*),"
            " (SELECT count(*) FROM " LIVE_MEMBERS " m WHERE m.s_regency = s.regency_code AND m.left_year IS NULL),"
            " (SELECT count(*) FROM " LIVE_MEMBERS " m WHERE m.s_regency = s.regency_code AND m.left_year IS NULL"
            "  AND m.owner_sex = 2),"
            " (SELECT count(*) FROM " LIVE_MEMBERS " m WHERE m.s_regency = s.regency_code AND m.left_year IS NULL"
            "  AND m.owner_sex = 1),"
            " (SELECT count(*) FROM " LIVE_MEMBERS " m WHERE m.s_regency = s.regency_code AND m.left_year IS NULL"
            "  AND m.cls = 'small'),"
            " (SELECT count(*) FROM " LIVE_MEMBERS " m WHERE m.s_regency = s.regency_code AND m.left_year IS NULL"
            "  AND m.cls = 'medium'),"
            " (SELECT count(*) FROM " LIVE_MEMBERS " m WHERE m.s_regency = s.regency_code AND m.left_year IS NULL"
            "  AND m.cls = 'large'),"
            " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM member m WHERE m.sentra_id = s.id"
            "  AND m.deleted_at IS NULL)),"
            " sum(CASE WHEN EXISTS (SELECT 1 FROM member m WHERE m.sentra_id = s.id AND m.deleted_at IS NULL)"
            "  THEN (SELECT count(*) FROM member m WHERE m.sentra_id = s.id AND m.deleted_at IS NULL"
            "        AND m.left_year IS NULL)"
            "  ELSE coalesce((SELECT f.business_units FROM sentra_figures f WHERE f.sentra_id = s.id"
            "        ORDER BY f.year DESC LIMIT 1), 0) END),"
            " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM institution i WHERE i.sentra_id = s.id"
            "  AND i.deleted_at IS NULL AND i.form <> 1)),"
            " (SELECT count(*) FROM obstacle o JOIN sentra x ON x.id = o.sentra_id WHERE x.deleted_at IS NULL"
            "  AND o.deleted_at IS NULL AND x.regency_code = s.regency_code),"
            " (SELECT count(*) FROM obstacle o JOIN sentra x ON x.id = o.sentra_id WHERE x.deleted_at IS NULL"
            "  AND o.deleted_at IS NULL AND x.regency_code = s.regency_code AND o.status = 1),"
            " (SELECT count(*) FROM obstacle o JOIN sentra x ON x.id = o.sentra_id WHERE x.deleted_at IS NULL"
            "  AND o.deleted_at IS NULL AND x.regency_code = s.regency_code AND o.status = 2),"
            " (SELECT count(*) FROM obstacle o JOIN sentra x ON x.id = o.sentra_id WHERE x.deleted_at IS NULL"
            "  AND o.deleted_at IS NULL AND x.regency_code = s.regency_code AND o.status = 3),"
            " (SELECT count(*) FROM assistance a JOIN sentra x ON x.id = a.sentra_id WHERE x.deleted_at IS NULL"
            "  AND a.deleted_at IS NULL AND x.regency_code = s.regency_code),"
            " (SELECT coalesce(sum(a.value), 0) FROM assistance a JOIN sentra x ON x.id = a.sentra_id"
            "  WHERE x.deleted_at IS NULL AND a.deleted_at IS NULL AND x.regency_code = s.regency_code)"
            " FROM sentra s WHERE s.deleted_at IS NULL AND s.province_code = '18' GROUP BY s.regency_code",
            "sentra,members,members_female_owned,members_male_owned,members_small,members_medium,"
            "members_large,sentra_with_members,business_units_effective,with_institution,obstacles,"
            "obstacles_open,obstacles_in_progress,obstacles_resolved,assistance_count,assistance_value");
    /* the demo's three districts keep members; their effective units are
     * members, the others' reported units */
    assert_true(r->total->sentra_with_members > 0 && r->total->sentra_with_members < 73);
    assert_true(r->total->institution_share > 0.5 && r->total->institution_share < 1.0);
    assert_true(r->total->obstacles_per_sentra > 1.0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* MEMBERS subject: members that have not left, by regency, class and sex. */
static void members_subject(void **state)
{
    (void)state;
    Sentra__V1__GroupBy g[] = {SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY, SENTRA__V1__GROUP_BY__GROUP_BY_SIZE_CLASS,
                               SENTRA__V1__GROUP_BY__GROUP_BY_OWNER_SEX};
    Sentra__V1__GetStatisticsResponse *r = stats(K_NAT, SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_MEMBERS, NULL, g, 3);
    PGresult *tot;
    compare(r, 3,
            "SELECT s_regency, cls, CASE owner_sex WHEN 1 THEN 'male' ELSE 'female' END, count(DISTINCT sentra_id),"
            " count(*), count(*) FILTER (WHERE cls = 'small'), count(*) FILTER (WHERE cls = 'medium'),"
            " count(*) FILTER (WHERE owner_sex = 2)"
            " FROM " LIVE_MEMBERS " m WHERE left_year IS NULL GROUP BY 1, 2, 3",
            "sentra,members,members_small,members_medium,members_female_owned");
    /* the total counts each sentra once, whatever its rows of the groups */
    tot = q("SELECT count(DISTINCT sentra_id), count(*) FROM " LIVE_MEMBERS " m WHERE left_year IS NULL");
    assert_int_equal(r->total->sentra, atoll(PQgetvalue(tot, 0, 0)));
    assert_int_equal(r->total->sentra_with_members, atoll(PQgetvalue(tot, 0, 0)));
    assert_int_equal(r->total->members, atoll(PQgetvalue(tot, 0, 1)));
    PQclear(tot);
    /* the labels name the class */
    int labelled = 0;
    for (size_t i = 0; i < r->n_rows; i++)
        labelled += strcmp(r->rows[i]->keys[1], "small") == 0 &&
                    strcmp(r->rows[i]->labels[1], "Industri kecil") == 0;
    assert_true(labelled > 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* one grouping, with a sentra filter: the sector is the sentra's */
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    Sentra__V1__SectorGroup food[] = {SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD};
    f.sector_group = food;
    f.n_sector_group = 1;
    Sentra__V1__GroupBy g1[] = {SENTRA__V1__GROUP_BY__GROUP_BY_SIZE_CLASS};
    r = stats(K_PROV, SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_MEMBERS, &f, g1, 1);
    compare(r, 1,
            "SELECT cls, count(DISTINCT sentra_id), count(*) FROM " LIVE_MEMBERS " m"
            " WHERE left_year IS NULL AND s_sector = 1 GROUP BY 1",
            "sentra,members");
    tot = q("SELECT count(DISTINCT sentra_id) FROM " LIVE_MEMBERS " m WHERE left_year IS NULL AND s_sector = 1");
    assert_int_equal(r->total->sentra, atoll(PQgetvalue(tot, 0, 0)));
    PQclear(tot);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* by sex alone, and by nothing of the members */
    Sentra__V1__GroupBy g2[] = {SENTRA__V1__GROUP_BY__GROUP_BY_OWNER_SEX};
    r = stats(K_NAT, SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_MEMBERS, NULL, g2, 1);
    compare(r, 1,
            "SELECT CASE owner_sex WHEN 1 THEN 'male' ELSE 'female' END, count(DISTINCT sentra_id), count(*),"
            " count(*) FILTER (WHERE cls = 'medium') FROM " LIVE_MEMBERS " m WHERE left_year IS NULL GROUP BY 1",
            "sentra,members,members_medium");
    tot = q("SELECT count(DISTINCT sentra_id) FROM " LIVE_MEMBERS " m WHERE left_year IS NULL");
    assert_int_equal(r->total->sentra, atoll(PQgetvalue(tot, 0, 0)));
    PQclear(tot);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    Sentra__V1__GroupBy g3[] = {SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY};
    r = stats(K_NAT, SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_MEMBERS, NULL, g3, 1);
    compare(r, 1,
            "SELECT s_regency, count(DISTINCT sentra_id), count(*), count(*) FILTER (WHERE owner_sex = 2)"
            " FROM " LIVE_MEMBERS " m WHERE left_year IS NULL GROUP BY 1",
            "sentra,members,members_female_owned");
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void obstacles_subject(void **state)
{
    (void)state;
    Sentra__V1__GroupBy g[] = {SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_CATEGORY,
                               SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_STATUS};
    Sentra__V1__GetStatisticsResponse *r = stats(K_NAT, SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_OBSTACLES, NULL, g, 2);
    compare(r, 2,
            "SELECT (ARRAY['raw_materials', 'technology', 'quality', 'marketing', 'capital', 'human_resources',"
            " 'infrastructure', 'permits', 'institution', 'other'])[o.category],"
            " (ARRAY['open', 'in_progress', 'resolved'])[o.status], count(DISTINCT o.sentra_id), count(*),"
            " count(*) FILTER (WHERE o.status = 1), count(*) FILTER (WHERE o.status = 3)"
            " FROM obstacle o JOIN sentra s ON s.id = o.sentra_id WHERE o.deleted_at IS NULL"
            " AND s.deleted_at IS NULL GROUP BY 1, 2",
            "sentra,obstacles,obstacles_open,obstacles_resolved");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    f.regency_code = "18.04";
    Sentra__V1__GroupBy g2[] = {SENTRA__V1__GROUP_BY__GROUP_BY_SEVERITY};
    r = stats(K_PROV, SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_OBSTACLES, &f, g2, 1);
    compare(r, 1,
            "SELECT (ARRAY['low', 'medium', 'high'])[o.severity], count(*), count(*) FILTER (WHERE o.status = 2)"
            " FROM obstacle o JOIN sentra s ON s.id = o.sentra_id WHERE o.deleted_at IS NULL"
            " AND s.deleted_at IS NULL AND s.regency_code = '18.04' GROUP BY 1",
            "obstacles,obstacles_in_progress");
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void assistance_subject(void **state)
{
    (void)state;
    Sentra__V1__GroupBy g[] = {SENTRA__V1__GROUP_BY__GROUP_BY_ASSISTANCE_KIND, SENTRA__V1__GROUP_BY__GROUP_BY_PROVIDER,
                               SENTRA__V1__GROUP_BY__GROUP_BY_ASSISTANCE_YEAR};
    Sentra__V1__GetStatisticsResponse *r = stats(K_PROV, SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_ASSISTANCE, NULL, g, 3);
    compare(r, 3,
            "SELECT (ARRAY['machines', 'training', 'certification', 'promotion', 'capital_access',"
            " 'infrastructure', 'mentoring'])[a.kind],"
            " (ARRAY['kemenperin', 'province', 'regency', 'other_ministry', 'private'])[a.provider],"
            " a.year::text, count(DISTINCT a.sentra_id), count(*), sum(a.value)"
            " FROM assistance a JOIN sentra s ON s.id = a.sentra_id WHERE a.deleted_at IS NULL"
            " AND s.deleted_at IS NULL GROUP BY 1, 2, 3",
            "sentra,assistance_count,assistance_value");
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* A district token's statistics cover its regency only. */
static void district_scope(void **state)
{
    (void)state;
    Sentra__V1__GetStatisticsResponse *r = stats(K_DIST_LB, 0, NULL, NULL, 0);
    PGresult *res = q("SELECT count(*) FROM member m JOIN sentra s ON s.id = m.sentra_id"
                      " WHERE s.regency_code = '18.04' AND m.deleted_at IS NULL AND s.deleted_at IS NULL"
                      " AND m.left_year IS NULL");
    assert_int_equal(r->total->members, atoll(PQgetvalue(res, 0, 0)));
    PQclear(res);
    assert_int_equal(r->total->sentra, 14);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    Sentra__V1__GroupBy g[] = {SENTRA__V1__GROUP_BY__GROUP_BY_PROVIDER};
    r = stats(K_DIST_LB, SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_ASSISTANCE, NULL, g, 1);
    compare(r, 1,
            "SELECT (ARRAY['kemenperin', 'province', 'regency', 'other_ministry', 'private'])[a.provider],"
            " count(*) FROM assistance a JOIN sentra s ON s.id = a.sentra_id WHERE a.deleted_at IS NULL"
            " AND s.deleted_at IS NULL AND s.regency_code = '18.04' GROUP BY 1",
            "assistance_count");
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* GetTimeSeries of each subject against SQL, year by year. */
static void time_series(void **state)
{
    (void)state;
    static const struct {
        int subject;
        const char *sql;   /* year, then the three numbers of the subject */
    } cases[] = {
        {SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_MEMBERS,
         "SELECT y, (SELECT count(*) FROM " LIVE_MEMBERS " m WHERE joined_year = y),"
         " (SELECT count(*) FROM " LIVE_MEMBERS " m WHERE left_year = y),"
         " (SELECT count(*) FROM " LIVE_MEMBERS " m WHERE coalesce(joined_year, 0) <= y"
         "  AND coalesce(left_year, 9999) > y) FROM generate_series(2010, 2022) y ORDER BY y"},
        {SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_OBSTACLES,
         "SELECT y, (SELECT count(*) FROM obstacle o JOIN sentra s ON s.id = o.sentra_id WHERE o.deleted_at IS NULL"
         "  AND s.deleted_at IS NULL AND extract(year FROM o.reported_on) = y),"
         " (SELECT count(*) FROM obstacle o JOIN sentra s ON s.id = o.sentra_id WHERE o.deleted_at IS NULL"
         "  AND s.deleted_at IS NULL AND extract(year FROM o.resolved_on) = y),"
         " (SELECT count(*) FROM obstacle o JOIN sentra s ON s.id = o.sentra_id WHERE o.deleted_at IS NULL"
         "  AND s.deleted_at IS NULL AND extract(year FROM o.reported_on) <= y"
         "  AND coalesce(extract(year FROM o.resolved_on), 9999) > y)"
         " FROM generate_series(2010, 2022) y ORDER BY y"},
        {SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_ASSISTANCE,
         "SELECT y, (SELECT count(*) FROM assistance a JOIN sentra s ON s.id = a.sentra_id WHERE a.deleted_at IS NULL"
         "  AND s.deleted_at IS NULL AND a.year = y),"
         " (SELECT coalesce(sum(a.value), 0) FROM assistance a JOIN sentra s ON s.id = a.sentra_id"
         "  WHERE a.deleted_at IS NULL AND s.deleted_at IS NULL AND a.year = y), 0"
         " FROM generate_series(2010, 2022) y ORDER BY y"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        Sentra__V1__GetTimeSeriesRequest rq = SENTRA__V1__GET_TIME_SERIES_REQUEST__INIT;
        Sentra__V1__GetTimeSeriesResponse *r = NULL;
        sentra_status_t st;
        sentra_status_init(&st);
        rq.subject = cases[c].subject;
        rq.from_year = 2010;
        rq.to_year = 2022;
        if (sentra_get_time_series(cl[K_NAT], &rq, &r, NULL, &st) != 0)
            fail_msg("GetTimeSeries: %s %s", sentra_status_name(st.code), st.message ? st.message : "");
        sentra_status_clear(&st);
        PGresult *res = q(cases[c].sql);
        assert_int_equal(r->n_points, PQntuples(res));
        for (size_t i = 0; i < r->n_points; i++) {
            const Sentra__V1__TimeSeriesPoint *p = r->points[i];
            int64_t got[3];
            switch (cases[c].subject) {
            case SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_MEMBERS:
                got[0] = p->members_joined, got[1] = p->members_left, got[2] = p->members_active;
                break;
            case SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_OBSTACLES:
                got[0] = p->obstacles_reported, got[1] = p->obstacles_resolved, got[2] = p->obstacles_unresolved;
                break;
            default:
                got[0] = p->assistance_count, got[1] = p->assistance_value, got[2] = 0;
                break;
            }
            assert_int_equal(p->year, atoi(PQgetvalue(res, (int)i, 0)));
            for (int k = 0; k < 3; k++)
                if (got[k] != atoll(PQgetvalue(res, (int)i, k + 1)))
                    fail_msg("subject %d, %d, number %d: server %lld, SQL %s", cases[c].subject, p->year, k,
                             (long long)got[k], PQgetvalue(res, (int)i, k + 1));
        }
        PQclear(res);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
}

/* Groupings of one subject's records with another subject, and the years
 * of the sentra's figures with a record subject, are refused. */
static void bad_requests(void **state)
{
    (void)state;
    Sentra__V1__GetStatisticsRequest rq = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
    Sentra__V1__GetStatisticsResponse *r = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__GroupBy g[] = {SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY, SENTRA__V1__GROUP_BY__GROUP_BY_SIZE_CLASS};
    rq.group_by = g;
    rq.n_group_by = 2;
    assert_int_not_equal(sentra_get_statistics(cl[K_NAT], &rq, &r, NULL, &st), 0);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_string_equal(st.violations[0].field, "group_by[1]");
    rq.subject = SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_OBSTACLES;
    assert_int_not_equal(sentra_get_statistics(cl[K_NAT], &rq, &r, NULL, &st), 0);
    assert_string_equal(st.violations[0].field, "group_by[1]");
    rq.subject = SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_MEMBERS;
    rq.reporting_year = 2021;
    assert_int_not_equal(sentra_get_statistics(cl[K_NAT], &rq, &r, NULL, &st), 0);
    assert_string_equal(st.violations[0].field, "reporting_year");
    rq.subject = 7;
    rq.reporting_year = 0;
    assert_int_not_equal(sentra_get_statistics(cl[K_NAT], &rq, &r, NULL, &st), 0);
    assert_string_equal(st.violations[0].field, "subject");
    sentra_status_clear(&st);
}

/* A member created and deleted moves the figures by exactly one. */
static void moves_with_writes(void **state)
{
    (void)state;
    Sentra__V1__GetStatisticsResponse *a = stats(K_DIST_LB, 0, NULL, NULL, 0);
    PGresult *res = q("SELECT md5('demo-lampung-20')::uuid");
    char sid[40];
    snprintf(sid, sizeof sid, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    Sentra__V1__CreateMemberRequest rq = SENTRA__V1__CREATE_MEMBER_REQUEST__INIT;
    Sentra__V1__Member m = SENTRA__V1__MEMBER__INIT, *out = NULL;
    m.sentra_id = sid;
    m.name = "IKM Uji Statistik";
    m.owner_name = "Ibu Uji";
    m.owner_sex = SENTRA__V1__SEX__SEX_FEMALE;
    m.workers_female = 25;
    m.investment = 3000000000;
    rq.member = &m;
    sentra_status_t st;
    sentra_status_init(&st);
    assert_int_equal(sentra_create_member(cl[K_DIST_LB], &rq, &out, NULL, &st), 0);
    Sentra__V1__GetStatisticsResponse *b = stats(K_DIST_LB, 0, NULL, NULL, 0);
    assert_int_equal(b->total->members, a->total->members + 1);
    assert_int_equal(b->total->members_female_owned, a->total->members_female_owned + 1);
    assert_int_equal(b->total->members_medium, a->total->members_medium + 1);
    assert_int_equal(b->total->business_units_effective, a->total->business_units_effective + 1);
    Sentra__V1__DeleteMemberRequest dr = SENTRA__V1__DELETE_MEMBER_REQUEST__INIT;
    Sentra__V1__DeleteRecordResponse *d = NULL;
    dr.id = out->id;
    dr.expected_version = 1;
    assert_int_equal(sentra_delete_member(cl[K_DIST_LB], &dr, &d, NULL, &st), 0);
    Sentra__V1__GetStatisticsResponse *c = stats(K_DIST_LB, 0, NULL, NULL, 0);
    assert_int_equal(c->total->members, a->total->members);
    assert_int_equal(c->total->members_medium, a->total->members_medium);
    res = q("SELECT count(*) FROM sentra_derived_drift()");
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    protobuf_c_message_free_unpacked(&c->base, NULL);
    protobuf_c_message_free_unpacked(&out->base, NULL);
    protobuf_c_message_free_unpacked(&d->base, NULL);
    sentra_status_clear(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sentra_subject),
        cmocka_unit_test(members_subject),
        cmocka_unit_test(obstacles_subject),
        cmocka_unit_test(assistance_subject),
        cmocka_unit_test(district_scope),
        cmocka_unit_test(time_series),
        cmocka_unit_test(bad_requests),
        cmocka_unit_test(moves_with_writes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
