/*
 * test_stats.c: StatsService against a sentrad of its own on a fresh
 * database loaded with the synthetic Lampung demo data
 * (scripts/demo-data.sh): the seed's headline (73 formed, 54 designated),
 * statistics equal to the counts of ListSentra with the same filters, a
 * district token seeing only its district, figures that move exactly with
 * create/update/delete, the time series, as_of and reporting_year checked
 * against independent SQL over the base tables, and bad requests refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sentra/sentra.h>

#include "harness.h"

static th_server_t srv;

enum { K_PROV, K_NAT, K_DIST_LB, K_DIST_METRO, K_DIST_FAR, K_COUNT };
static char *tok[K_COUNT];
static sentra_client_t *cl[K_COUNT];

/* The demo data per regency/city: formed, designated. */
static const struct {
    const char *code;
    int formed, designated;
} demo[15] = {
    {"18.01", 6, 4}, {"18.02", 6, 4}, {"18.03", 4, 3}, {"18.04", 14, 13},
    {"18.05", 3, 2}, {"18.06", 6, 5}, {"18.07", 5, 3}, {"18.08", 3, 2},
    {"18.09", 4, 3}, {"18.10", 5, 4}, {"18.11", 2, 1}, {"18.12", 3, 2},
    {"18.13", 3, 2}, {"18.71", 6, 4}, {"18.72", 3, 2},
};

/* ---------------------------------------------------------------- helpers */

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
    assert_int_equal(sentra_client_new(&c, &o), 0);
    return c;
}

/* GetStatistics; fails the test unless it succeeds. */
static Sentra__V1__GetStatisticsResponse *stats(int who, const Sentra__V1__SentraFilter *f,
                                                const Sentra__V1__GroupBy *g, size_t ng,
                                                int year, const char *as_of)
{
    Sentra__V1__GetStatisticsRequest req = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
    Sentra__V1__GetStatisticsResponse *resp = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    req.filter = (Sentra__V1__SentraFilter *)f;
    req.group_by = (Sentra__V1__GroupBy *)g;
    req.n_group_by = ng;
    req.reporting_year = year;
    req.as_of = (char *)(as_of ? as_of : "");
    int rc = sentra_get_statistics(cl[who], &req, &resp, NULL, &st);
    if (rc != 0)
        fail_msg("GetStatistics: %s %s", sentra_status_name(st.code), st.message ? st.message : "");
    sentra_status_clear(&st);
    assert_non_null(resp->total);
    return resp;
}

static void stats_free(Sentra__V1__GetStatisticsResponse *r)
{
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* The status code of a GetStatistics that is expected to fail. */
static int stats_code(int who, const Sentra__V1__GetStatisticsRequest *req)
{
    Sentra__V1__GetStatisticsResponse *resp = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    int rc = sentra_get_statistics(cl[who], req, &resp, NULL, &st);
    int code = st.code;
    if (rc == 0)
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    sentra_status_clear(&st);
    return code;
}

/* ListSentra's total for filter f. */
static int64_t list_total(int who, const Sentra__V1__SentraFilter *f)
{
    Sentra__V1__ListSentraRequest req = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
    Sentra__V1__ListSentraResponse *resp = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    req.filter = (Sentra__V1__SentraFilter *)f;
    req.page_size = 1;
    req.include_total = 1;
    int rc = sentra_list_sentra(cl[who], &req, &resp, NULL, &st);
    if (rc != 0)
        fail_msg("ListSentra: %s %s", sentra_status_name(st.code), st.message ? st.message : "");
    sentra_status_clear(&st);
    int64_t n = resp->total;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return n;
}

/* One integer from SQL on the server's database. */
static long long q_ll(const char *sql)
{
    PGconn *db = th_db(&srv);
    assert_non_null(db);
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(db));
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(db);
    return v;
}

static const Sentra__V1__StatsRow *find_row(const Sentra__V1__GetStatisticsResponse *r,
                                            const char *key0)
{
    for (size_t i = 0; i < r->n_rows; i++)
        if (strcmp(r->rows[i]->keys[0], key0) == 0)
            return r->rows[i];
    return NULL;
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (!th_env_ok())
        return -1;
    if (th_server_start(&srv, "t_stats", NULL) != 0)
        return -1;
    char script[512], out[1024];
    snprintf(script, sizeof(script), "%s/demo-data.sh", getenv("SENTRA_TEST_SCRIPTS"));
    const char *argv[] = { script, srv.db_conninfo, NULL };
    if (th_run(argv, out, sizeof(out)) != 0) {
        fprintf(stderr, "demo-data.sh failed: %s\n", out);
        return -1;
    }
    /* Loading twice changes nothing (idempotent). */
    if (th_run(argv, out, sizeof(out)) != 0)
        return -1;
    tok[K_PROV] = th_token(&srv, "province", "18");
    tok[K_NAT] = th_token(&srv, "national", NULL);
    tok[K_DIST_LB] = th_token(&srv, "district", "18.04");
    tok[K_DIST_METRO] = th_token(&srv, "district", "18.72");
    tok[K_DIST_FAR] = th_token(&srv, "district", "31.71");
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

/* The seed's headline straight out of GetStatistics: per regency/city and
 * in total, 73 formed and 54 designated, with names beside codes. */
static void test_headline(void **state)
{
    (void)state;
    Sentra__V1__GroupBy g[] = { SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY };
    Sentra__V1__GetStatisticsResponse *r = stats(K_PROV, NULL, g, 1, 0, NULL);
    assert_int_equal(r->n_rows, 15);
    assert_int_equal(r->total->sentra, 73);
    assert_int_equal(r->total->designated, 54);
    assert_true(r->total->designation_rate > 0.739 && r->total->designation_rate < 0.740);
    for (int i = 0; i < 15; i++) {
        const Sentra__V1__StatsRow *row = r->rows[i];
        assert_int_equal(row->n_keys, 1);
        assert_string_equal(row->keys[0], demo[i].code);
        assert_int_equal(row->sentra, demo[i].formed);
        assert_int_equal(row->designated, demo[i].designated);
        assert_true(row->workers_total == row->workers_male + row->workers_female);
    }
    assert_string_equal(r->rows[3]->labels[0], "Kabupaten Lampung Barat");
    assert_string_equal(r->rows[13]->labels[0], "Kota Bandar Lampung");
    stats_free(r);

    /* The national view of Lampung: the same figures. */
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    f.province_code = "18";
    Sentra__V1__GroupBy gp[] = { SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE };
    r = stats(K_NAT, &f, gp, 1, 0, NULL);
    assert_int_equal(r->n_rows, 1);
    assert_string_equal(r->rows[0]->keys[0], "18");
    assert_string_equal(r->rows[0]->labels[0], "Lampung");
    assert_int_equal(r->rows[0]->sentra, 73);
    assert_int_equal(r->rows[0]->designated, 54);
    stats_free(r);

    /* Figures equal independent SQL over the base tables (latest year). */
    r = stats(K_PROV, NULL, NULL, 0, 0, NULL);
    long long units = q_ll(
        "SELECT sum(f.business_units) FROM sentra s JOIN LATERAL (SELECT * FROM sentra_figures x"
        " WHERE x.sentra_id = s.id ORDER BY year DESC LIMIT 1) f ON true"
        " WHERE s.deleted_at IS NULL AND s.province_code = '18'");
    long long inv = q_ll(
        "SELECT sum(f.investment) FROM sentra s JOIN LATERAL (SELECT * FROM sentra_figures x"
        " WHERE x.sentra_id = s.id ORDER BY year DESC LIMIT 1) f ON true"
        " WHERE s.deleted_at IS NULL AND s.province_code = '18'");
    assert_int_equal(r->total->business_units, units);
    assert_int_equal(r->total->investment, inv);
    assert_int_equal(r->n_rows, 0);
    stats_free(r);
}

/* Statistics equal the counts of ListSentra with the same filters. */
static void test_equals_list(void **state)
{
    (void)state;
    Sentra__V1__Status st_des[] = { SENTRA__V1__STATUS__STATUS_DESIGNATED };
    Sentra__V1__Status st_fi[] = { SENTRA__V1__STATUS__STATUS_FORMED,
                                   SENTRA__V1__STATUS__STATUS_INACTIVE };
    Sentra__V1__SectorGroup food[] = { SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD };
    Sentra__V1__SectorGroup tex[] = { SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_TEXTILES,
                                      SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_CRAFTS };
    Sentra__V1__SentraFilter fs[12];
    for (int i = 0; i < 12; i++)
        sentra__v1__sentra_filter__init(&fs[i]);
    fs[1].status = st_des; fs[1].n_status = 1;
    fs[2].status = st_fi; fs[2].n_status = 2;
    fs[3].sector_group = food; fs[3].n_sector_group = 1;
    fs[4].kbli_prefix = "1076";
    fs[5].text = "KOPI";
    fs[6].designation = SENTRA__V1__DESIGNATION__DESIGNATION_NOT_DESIGNATED;
    fs[7].regency_code = "18.04"; fs[7].designation = SENTRA__V1__DESIGNATION__DESIGNATION_DESIGNATED;
    fs[8].sector_group = tex; fs[8].n_sector_group = 2; fs[8].text = "tapis";
    fs[9].province_code = "18"; fs[9].kbli_prefix = "10"; fs[9].status = st_des; fs[9].n_status = 1;
    fs[10].updated_since_ms = 1000;              /* all of them */
    fs[11].updated_since_ms = 4102444800000LL;   /* 2100-01-01: none */

    for (int who = K_PROV; who <= K_DIST_LB; who++)
        for (int i = 0; i < 12; i++) {
            Sentra__V1__GetStatisticsResponse *r = stats(who, &fs[i], NULL, 0, 0, NULL);
            int64_t n = list_total(who, &fs[i]);
            if (r->total->sentra != n)
                fail_msg("token %d filter %d: statistics %lld, list %lld", who, i,
                         (long long)r->total->sentra, (long long)n);
            /* designated = listing with the designation filter added (where
             * the filter does not already fix it) */
            if (fs[i].designation == SENTRA__V1__DESIGNATION__DESIGNATION_ANY) {
                Sentra__V1__SentraFilter d = fs[i];
                d.designation = SENTRA__V1__DESIGNATION__DESIGNATION_DESIGNATED;
                assert_int_equal(r->total->designated, list_total(who, &d));
            }
            stats_free(r);
        }

    /* Per group too: every regency row equals the listing of its regency. */
    Sentra__V1__GroupBy g[] = { SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY,
                                SENTRA__V1__GROUP_BY__GROUP_BY_SECTOR_GROUP };
    Sentra__V1__GetStatisticsResponse *r = stats(K_PROV, &fs[5], g, 2, 0, NULL);
    assert_true(r->n_rows > 0);
    int64_t sum = 0;
    for (size_t i = 0; i < r->n_rows; i++) {
        Sentra__V1__SentraFilter f = fs[5];
        f.regency_code = r->rows[i]->keys[0];
        assert_string_equal(r->rows[i]->keys[1], "food");   /* coffee is food */
        assert_string_equal(r->rows[i]->labels[1], "Pangan");
        assert_int_equal(r->rows[i]->sentra, list_total(K_PROV, &f));
        sum += r->rows[i]->sentra;
    }
    assert_int_equal(sum, r->total->sentra);
    stats_free(r);
}

/* A district token sees only its own district's figures. */
static void test_district_scope(void **state)
{
    (void)state;
    Sentra__V1__GroupBy g[] = { SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE,
                                SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY };
    Sentra__V1__GetStatisticsResponse *d = stats(K_DIST_LB, NULL, g, 2, 0, NULL);
    assert_int_equal(d->n_rows, 1);
    assert_string_equal(d->rows[0]->keys[0], "18");
    assert_string_equal(d->rows[0]->keys[1], "18.04");
    assert_int_equal(d->total->sentra, 14);
    assert_int_equal(d->total->designated, 13);

    /* ...the same figures the province sees for that district. */
    Sentra__V1__GroupBy gr[] = { SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY };
    Sentra__V1__GetStatisticsResponse *p = stats(K_PROV, NULL, gr, 1, 0, NULL);
    const Sentra__V1__StatsRow *row = find_row(p, "18.04");
    assert_non_null(row);
    assert_int_equal(row->business_units, d->total->business_units);
    assert_int_equal(row->workers_female, d->total->workers_female);
    assert_int_equal(row->production_value, d->total->production_value);
    stats_free(p);
    stats_free(d);

    /* Filters cannot reach outside the scope: they intersect with it. */
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    f.regency_code = "18.71";
    d = stats(K_DIST_LB, &f, NULL, 0, 0, NULL);
    assert_int_equal(d->total->sentra, 0);
    stats_free(d);
    d = stats(K_DIST_FAR, NULL, gr, 1, 0, NULL);
    assert_int_equal(d->n_rows, 0);
    assert_int_equal(d->total->sentra, 0);
    assert_int_equal(d->total->business_units, 0);
    stats_free(d);

    /* The time series too. */
    Sentra__V1__GetTimeSeriesRequest req = SENTRA__V1__GET_TIME_SERIES_REQUEST__INIT;
    Sentra__V1__GetTimeSeriesResponse *ts = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    assert_int_equal(sentra_get_time_series(cl[K_DIST_LB], &req, &ts, NULL, &st), 0);
    assert_true(ts->n_points > 0);
    assert_int_equal(ts->points[ts->n_points - 1]->formed_cumulative, 14);
    assert_int_equal(ts->points[ts->n_points - 1]->designated_cumulative, 13);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
    sentra_status_clear(&st);
}

/* Metro's figures, grouped by status. */
typedef struct snap {
    int64_t sentra, designated, formed_rows, designated_rows, units, wm, wf, inv, prod, mat;
} snap_t;

static snap_t metro(int year)
{
    Sentra__V1__GroupBy g[] = { SENTRA__V1__GROUP_BY__GROUP_BY_STATUS };
    Sentra__V1__GetStatisticsResponse *r = stats(K_DIST_METRO, NULL, g, 1, year, NULL);
    snap_t s = { r->total->sentra, r->total->designated, 0, 0, r->total->business_units,
                 r->total->workers_male, r->total->workers_female, r->total->investment,
                 r->total->production_value, r->total->material_value };
    const Sentra__V1__StatsRow *row = find_row(r, "formed");
    s.formed_rows = row ? row->sentra : 0;
    row = find_row(r, "designated");
    s.designated_rows = row ? row->sentra : 0;
    stats_free(r);
    return s;
}

static Sentra__V1__Figures *figures(int year, int units, int wm, int wf, int64_t inv)
{
    Sentra__V1__Figures *f = calloc(1, sizeof(*f));
    sentra__v1__figures__init(f);
    f->year = year;
    f->business_units = units;
    f->workers_male = wm;
    f->workers_female = wf;
    f->investment = inv;
    f->production_value = inv * 2;
    f->material_value = inv;
    return f;
}

/* After create, update and delete the figures move exactly as they should. */
static void test_moves(void **state)
{
    (void)state;
    snap_t base = metro(0), base21 = metro(2021);
    sentra_status_t st;
    sentra_status_init(&st);

    /* Create: a formed sentra with 2021 figures. */
    Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
    Sentra__V1__Figures *figs[2] = { figures(2021, 7, 5, 9, 300000000), NULL };
    s.regency_code = "18.72";
    s.name = "Sentra IKM Uji Statistik (data sintetis)";
    s.commodity = "Kopi robusta";
    s.main_product = "Kopi bubuk";
    s.kbli_code = "10761";
    s.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    s.sector_group = SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD;
    s.status = SENTRA__V1__STATUS__STATUS_FORMED;
    s.formed_on = "2020-02-03";
    s.figures = figs;
    s.n_figures = 1;
    Sentra__V1__CreateSentraRequest creq = SENTRA__V1__CREATE_SENTRA_REQUEST__INIT;
    creq.sentra = &s;
    Sentra__V1__Sentra *created = NULL;
    if (sentra_create_sentra(cl[K_DIST_METRO], &creq, &created, NULL, &st) != 0)
        fail_msg("CreateSentra: %s %s", sentra_status_name(st.code), st.message ? st.message : "");

    snap_t a = metro(0);
    assert_int_equal(a.sentra, base.sentra + 1);
    assert_int_equal(a.designated, base.designated);
    assert_int_equal(a.formed_rows, base.formed_rows + 1);
    assert_int_equal(a.designated_rows, base.designated_rows);
    assert_int_equal(a.units, base.units + 7);
    assert_int_equal(a.wm, base.wm + 5);
    assert_int_equal(a.wf, base.wf + 9);
    assert_int_equal(a.inv, base.inv + 300000000);
    assert_int_equal(a.prod, base.prod + 600000000);
    assert_int_equal(a.mat, base.mat + 300000000);

    /* Update: designated by decree, with a newer year of figures. */
    Sentra__V1__Sentra u = SENTRA__V1__SENTRA__INIT;
    Sentra__V1__Decree dec = SENTRA__V1__DECREE__INIT;
    Sentra__V1__Figures *figs2[2] = { figures(2021, 7, 5, 9, 300000000),
                                      figures(2022, 10, 6, 11, 450000000) };
    dec.number = "188.4/999/D-3/2022";
    dec.date = "2022-06-01";
    dec.official = "Walikota Metro";
    u.id = created->id;
    u.status = SENTRA__V1__STATUS__STATUS_DESIGNATED;
    u.decree = &dec;
    u.figures = figs2;
    u.n_figures = 2;
    char *mask[] = { "status", "decree", "figures" };
    Sentra__V1__UpdateSentraRequest ureq = SENTRA__V1__UPDATE_SENTRA_REQUEST__INIT;
    ureq.sentra = &u;
    ureq.update_mask = mask;
    ureq.n_update_mask = 3;
    ureq.expected_version = created->version;
    Sentra__V1__Sentra *updated = NULL;
    if (sentra_update_sentra(cl[K_DIST_METRO], &ureq, &updated, NULL, &st) != 0)
        fail_msg("UpdateSentra: %s %s", sentra_status_name(st.code), st.message ? st.message : "");

    snap_t b = metro(0);
    assert_int_equal(b.sentra, base.sentra + 1);
    assert_int_equal(b.designated, base.designated + 1);
    assert_int_equal(b.formed_rows, base.formed_rows);
    assert_int_equal(b.designated_rows, base.designated_rows + 1);
    assert_int_equal(b.units, base.units + 10);   /* the latest year now: 2022 */
    assert_int_equal(b.wm, base.wm + 6);
    assert_int_equal(b.wf, base.wf + 11);
    assert_int_equal(b.inv, base.inv + 450000000);
    /* The 2021 figures are still there for reporting year 2021. */
    snap_t b21 = metro(2021);
    assert_int_equal(b21.units, base21.units + 7);
    assert_int_equal(b21.sentra, base21.sentra + 1);

    /* Delete: everything back to where it was. */
    Sentra__V1__DeleteSentraRequest dreq = SENTRA__V1__DELETE_SENTRA_REQUEST__INIT;
    Sentra__V1__DeleteSentraResponse *dresp = NULL;
    dreq.id = created->id;
    dreq.expected_version = updated->version;
    if (sentra_delete_sentra(cl[K_DIST_METRO], &dreq, &dresp, NULL, &st) != 0)
        fail_msg("DeleteSentra: %s %s", sentra_status_name(st.code), st.message ? st.message : "");
    snap_t c = metro(0), c21 = metro(2021);
    assert_memory_equal(&c, &base, sizeof(c));
    assert_memory_equal(&c21, &base21, sizeof(c21));

    protobuf_c_message_free_unpacked(&dresp->base, NULL);
    protobuf_c_message_free_unpacked(&updated->base, NULL);
    protobuf_c_message_free_unpacked(&created->base, NULL);
    free(figs[0]);
    free(figs2[0]);
    free(figs2[1]);
    sentra_status_clear(&st);
}

/* Formed and designated per year add up; cumulative values include the
 * years before the window. */
static void test_time_series(void **state)
{
    (void)state;
    Sentra__V1__GetTimeSeriesRequest req = SENTRA__V1__GET_TIME_SERIES_REQUEST__INIT;
    Sentra__V1__GetTimeSeriesResponse *ts = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    assert_int_equal(sentra_get_time_series(cl[K_PROV], &req, &ts, NULL, &st), 0);
    assert_true(ts->n_points > 5);
    assert_int_equal(ts->points[0]->year, 2011);   /* the earliest formation */
    int64_t f = 0, d = 0;
    for (size_t i = 0; i < ts->n_points; i++) {
        f += ts->points[i]->formed;
        d += ts->points[i]->designated;
        assert_int_equal(ts->points[i]->formed_cumulative, f);
        assert_int_equal(ts->points[i]->designated_cumulative, d);
        if (i > 0)
            assert_int_equal(ts->points[i]->year, ts->points[i - 1]->year + 1);
    }
    assert_int_equal(f, 73);
    assert_int_equal(d, 54);
    protobuf_c_message_free_unpacked(&ts->base, NULL);

    req.from_year = 2018;
    req.to_year = 2020;
    assert_int_equal(sentra_get_time_series(cl[K_PROV], &req, &ts, NULL, &st), 0);
    assert_int_equal(ts->n_points, 3);
    assert_int_equal(ts->points[0]->year, 2018);
    assert_int_equal(ts->points[0]->formed_cumulative,
                     q_ll("SELECT count(*) FROM sentra WHERE province_code = '18' AND deleted_at IS NULL"
                          " AND formed_on < '2019-01-01'"));
    assert_int_equal(ts->points[2]->designated_cumulative,
                     q_ll("SELECT count(*) FROM sentra WHERE province_code = '18' AND deleted_at IS NULL"
                          " AND designated AND decree_date < '2021-01-01'"));
    assert_int_equal(ts->points[1]->formed,
                     q_ll("SELECT count(*) FROM sentra WHERE province_code = '18' AND deleted_at IS NULL"
                          " AND extract(year FROM formed_on) = 2019"));
    protobuf_c_message_free_unpacked(&ts->base, NULL);

    req.from_year = 2021;
    req.to_year = 2019;
    assert_int_not_equal(sentra_get_time_series(cl[K_PROV], &req, &ts, NULL, &st), 0);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    sentra_status_clear(&st);
}

/* as_of: the registry reconstructed from its dates; reporting_year: that
 * year's figures. Both against independent SQL over the base tables. */
static void test_as_of_and_year(void **state)
{
    (void)state;
    /* The headline's own date: everything was formed and decreed by then. */
    Sentra__V1__GetStatisticsResponse *r = stats(K_PROV, NULL, NULL, 0, 0, "2022-09-27");
    assert_int_equal(r->total->sentra, 73);
    assert_int_equal(r->total->designated, 54);
    /* ...with everyone's latest figures (all years are before 2022). */
    Sentra__V1__GetStatisticsResponse *latest = stats(K_PROV, NULL, NULL, 0, 0, NULL);
    assert_int_equal(r->total->business_units, latest->total->business_units);
    assert_int_equal(r->total->material_value, latest->total->material_value);
    stats_free(latest);
    stats_free(r);

    Sentra__V1__GroupBy g[] = { SENTRA__V1__GROUP_BY__GROUP_BY_STATUS };
    r = stats(K_PROV, NULL, g, 1, 0, "2017-12-31");
    assert_int_equal(r->total->sentra,
                     q_ll("SELECT count(*) FROM sentra WHERE province_code = '18' AND deleted_at IS NULL"
                          " AND coalesce(formed_on, created_at::date) <= '2017-12-31'"));
    assert_int_equal(r->total->designated,
                     q_ll("SELECT count(*) FROM sentra WHERE province_code = '18' AND deleted_at IS NULL"
                          " AND designated AND decree_date <= '2017-12-31'"));
    /* A sentra decreed later counted as formed then. */
    const Sentra__V1__StatsRow *row = find_row(r, "designated");
    int64_t des_rows = row ? row->sentra : 0;
    row = find_row(r, "revitalised");
    des_rows += row ? row->sentra : 0;
    assert_int_equal(des_rows, r->total->designated);
    /* Figures: the latest year up to 2017 (the demo has 2019 onwards). */
    assert_int_equal(r->total->business_units, 0);
    stats_free(r);

    r = stats(K_PROV, NULL, NULL, 0, 0, "2020-12-31");
    assert_int_equal(r->total->business_units,
                     q_ll("SELECT coalesce(sum(f.business_units), 0) FROM sentra s JOIN LATERAL"
                          " (SELECT * FROM sentra_figures x WHERE x.sentra_id = s.id AND x.year <= 2020"
                          " ORDER BY year DESC LIMIT 1) f ON true WHERE s.province_code = '18'"
                          " AND s.deleted_at IS NULL AND coalesce(s.formed_on, s.created_at::date) <= '2020-12-31'"));
    stats_free(r);

    /* The national token takes another path (one pass over all figures):
     * the same answers. */
    r = stats(K_NAT, NULL, NULL, 0, 0, "2020-12-31");
    assert_int_equal(r->total->business_units,
                     q_ll("SELECT coalesce(sum(f.business_units), 0) FROM sentra s JOIN LATERAL"
                          " (SELECT * FROM sentra_figures x WHERE x.sentra_id = s.id AND x.year <= 2020"
                          " ORDER BY year DESC LIMIT 1) f ON true WHERE s.deleted_at IS NULL"
                          " AND coalesce(s.formed_on, s.created_at::date) <= '2020-12-31'"));
    assert_int_equal(r->total->sentra,
                     q_ll("SELECT count(*) FROM sentra WHERE deleted_at IS NULL"
                          " AND coalesce(formed_on, created_at::date) <= '2020-12-31'"));
    stats_free(r);
    r = stats(K_NAT, NULL, NULL, 0, 0, "2022-09-27");
    Sentra__V1__GetStatisticsResponse *now = stats(K_NAT, NULL, NULL, 0, 0, NULL);
    assert_int_equal(r->total->investment, now->total->investment);
    stats_free(now);
    stats_free(r);

    Sentra__V1__GroupBy gy[] = { SENTRA__V1__GROUP_BY__GROUP_BY_FORMATION_YEAR };
    r = stats(K_PROV, NULL, gy, 1, 2020, NULL);
    assert_int_equal(r->total->sentra, 73);   /* every sentra counts, with or without figures */
    assert_int_equal(r->total->workers_female,
                     q_ll("SELECT sum(f.workers_female) FROM sentra s JOIN sentra_figures f ON f.sentra_id = s.id"
                          " WHERE f.year = 2020 AND s.province_code = '18' AND s.deleted_at IS NULL"));
    assert_string_equal(r->rows[0]->keys[0], "2011");
    stats_free(r);
}

static void test_bad_requests(void **state)
{
    (void)state;
    Sentra__V1__GetStatisticsRequest req = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
    Sentra__V1__GroupBy bad[] = { (Sentra__V1__GroupBy)9 };
    Sentra__V1__GroupBy zero[] = { SENTRA__V1__GROUP_BY__GROUP_BY_UNSPECIFIED };
    Sentra__V1__GroupBy twice[] = { SENTRA__V1__GROUP_BY__GROUP_BY_STATUS,
                                    SENTRA__V1__GROUP_BY__GROUP_BY_STATUS };
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;

    req.group_by = bad; req.n_group_by = 1;
    assert_int_equal(stats_code(K_PROV, &req), SENTRA__V1__CODE__INVALID_ARGUMENT);
    req.group_by = zero;
    assert_int_equal(stats_code(K_PROV, &req), SENTRA__V1__CODE__INVALID_ARGUMENT);
    req.group_by = twice; req.n_group_by = 2;
    assert_int_equal(stats_code(K_PROV, &req), SENTRA__V1__CODE__INVALID_ARGUMENT);
    req.n_group_by = 0;
    req.reporting_year = 1800;
    assert_int_equal(stats_code(K_PROV, &req), SENTRA__V1__CODE__INVALID_ARGUMENT);
    req.reporting_year = 0;
    req.as_of = "2022-02-30";
    assert_int_equal(stats_code(K_PROV, &req), SENTRA__V1__CODE__INVALID_ARGUMENT);
    req.as_of = "27/09/2022";
    assert_int_equal(stats_code(K_PROV, &req), SENTRA__V1__CODE__INVALID_ARGUMENT);
    req.as_of = "";
    f.kbli_prefix = "10'; --";
    req.filter = &f;
    assert_int_equal(stats_code(K_PROV, &req), SENTRA__V1__CODE__INVALID_ARGUMENT);
    f.kbli_prefix = "";
    f.regency_code = "18";
    assert_int_equal(stats_code(K_PROV, &req), SENTRA__V1__CODE__INVALID_ARGUMENT);
    /* Text is a parameter, LIKE wildcards included: "%" matches nothing. */
    f.regency_code = "";
    f.text = "%";
    Sentra__V1__GetStatisticsResponse *r = stats(K_PROV, &f, NULL, 0, 0, NULL);
    assert_int_equal(r->total->sentra, 0);
    stats_free(r);
    f.text = "' OR true --";
    r = stats(K_PROV, &f, NULL, 0, 0, NULL);
    assert_int_equal(r->total->sentra, 0);
    stats_free(r);
    /* No token: refused. */
    sentra_client_t *anon = client("");
    Sentra__V1__GetStatisticsRequest ok = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
    Sentra__V1__GetStatisticsResponse *resp = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    assert_int_not_equal(sentra_get_statistics(anon, &ok, &resp, NULL, &st), 0);
    assert_int_equal(st.code, SENTRA__V1__CODE__UNAUTHENTICATED);
    sentra_status_clear(&st);
    sentra_client_free(anon);
}

/* Rows of sentra_stat that differ from a recomputation over the base
 * tables (or are missing or extra). */
static const char *const mismatch_sql =
    "SELECT count(*) FROM ("
    " SELECT s.id, s.regency_code, s.province_code, s.status, s.sector_group, s.kbli_code,"
    "  s.designated, coalesce(s.formed_on, (s.created_at AT TIME ZONE 'Asia/Jayapura')::date),"
    "  s.decree_date, s.updated_at, s.deleted_at, f.year, f.business_units, f.workers_male,"
    "  f.workers_female, f.investment, f.production_value, f.material_value"
    " FROM sentra s LEFT JOIN LATERAL (SELECT * FROM sentra_figures x WHERE x.sentra_id = s.id"
    "  ORDER BY x.year DESC LIMIT 1) f ON true"
    " EXCEPT SELECT sentra_id, regency_code, province_code, status, sector_group, kbli_code,"
    "  designated, formed_on, decree_date, updated_at, deleted_at, fig_year, business_units,"
    "  workers_male, workers_female, investment, production_value, material_value"
    " FROM sentra_stat) d";   /* its columns of the sentra (the rest count its records) */

static void exec_ok(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(db));
    PQclear(r);
}

/* sentra_stat is kept right by the triggers whoever writes: a record and
 * its figures written with plain SQL (as a loader or psql would) move the
 * statistics exactly, and sentra_stat always equals a recomputation. */
static void test_other_writers(void **state)
{
    (void)state;
    const char *id = "md5('test-stats-direct')::uuid";
    char sql[1024];
    assert_int_equal(q_ll(mismatch_sql), 0);
    assert_int_equal(q_ll("SELECT (SELECT count(*) FROM sentra) - (SELECT count(*) FROM sentra_stat)"), 0);
    Sentra__V1__GetStatisticsResponse *before = stats(K_PROV, NULL, NULL, 0, 0, NULL), *r;

    PGconn *db = th_db(&srv);
    assert_non_null(db);
    /* A designated record with two years of figures, in one transaction. */
    exec_ok(db, "BEGIN");
    snprintf(sql, sizeof sql,
             "INSERT INTO sentra (id, regency_code, name, kbli_code, kbli_version, sector_group,"
             " status, formed_on, decree_number, decree_date)"
             " VALUES (%s, '18.11', 'Sentra Uji Langsung (data sintetis)', '10794', 2020, 1, 2,"
             " '2019-01-01', '1/TEST/2020', '2020-01-01')", id);
    exec_ok(db, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO sentra_figures (sentra_id, year, business_units, workers_male, investment)"
             " VALUES (%s, 2020, 6, 3, 1000), (%s, 2021, 9, 4, 2000)", id, id);
    exec_ok(db, sql);
    exec_ok(db, "COMMIT");
    r = stats(K_PROV, NULL, NULL, 0, 0, NULL);
    assert_int_equal(r->total->sentra, before->total->sentra + 1);
    assert_int_equal(r->total->designated, before->total->designated + 1);
    assert_int_equal(r->total->business_units, before->total->business_units + 9);
    assert_int_equal(r->total->investment, before->total->investment + 2000);
    stats_free(r);

    /* Figures edited, then the latest year removed: 2020 is the latest. */
    snprintf(sql, sizeof sql, "UPDATE sentra_figures SET business_units = 11 WHERE sentra_id = %s"
             " AND year = 2021", id);
    exec_ok(db, sql);
    r = stats(K_PROV, NULL, NULL, 0, 0, NULL);
    assert_int_equal(r->total->business_units, before->total->business_units + 11);
    stats_free(r);
    exec_ok(db, "BEGIN");
    snprintf(sql, sizeof sql, "UPDATE sentra SET status = 1, decree_number = NULL, decree_date = NULL"
             " WHERE id = %s", id);
    exec_ok(db, sql);
    snprintf(sql, sizeof sql, "DELETE FROM sentra_figures WHERE sentra_id = %s AND year = 2021", id);
    exec_ok(db, sql);
    exec_ok(db, "COMMIT");
    r = stats(K_PROV, NULL, NULL, 0, 0, NULL);
    assert_int_equal(r->total->sentra, before->total->sentra + 1);
    assert_int_equal(r->total->designated, before->total->designated);
    assert_int_equal(r->total->business_units, before->total->business_units + 6);
    assert_int_equal(r->total->investment, before->total->investment + 1000);
    stats_free(r);
    assert_int_equal(q_ll(mismatch_sql), 0);

    /* A tombstone no longer counts; a hard delete removes the row. */
    snprintf(sql, sizeof sql, "UPDATE sentra SET deleted_at = now() WHERE id = %s", id);
    exec_ok(db, sql);
    r = stats(K_PROV, NULL, NULL, 0, 0, NULL);
    assert_int_equal(r->total->sentra, before->total->sentra);
    assert_int_equal(r->total->business_units, before->total->business_units);
    stats_free(r);
    assert_int_equal(q_ll(mismatch_sql), 0);
    snprintf(sql, sizeof sql, "DELETE FROM sentra WHERE id = %s", id);
    exec_ok(db, sql);
    PQfinish(db);
    assert_int_equal(q_ll(mismatch_sql), 0);
    assert_int_equal(q_ll("SELECT count(*) FROM sentra_stat WHERE sentra_id = md5('test-stats-direct')::uuid"), 0);
    stats_free(before);
}

/* Every combination of group-bys (127 shapes, each prepared once) sums to
 * the total, and the group rows are distinct. */
static void test_all_shapes(void **state)
{
    (void)state;
    for (unsigned mask = 1; mask < 128; mask++) {
        Sentra__V1__GroupBy g[7];
        size_t n = 0;
        /* the request's order is reversed: the answer must follow it */
        for (int b = 6; b >= 0; b--)
            if (mask & (1u << b))
                g[n++] = (Sentra__V1__GroupBy)(b + 1);
        Sentra__V1__GetStatisticsResponse *r = stats(K_PROV, NULL, g, n, 0, NULL);
        int64_t sum = 0, des = 0;
        assert_int_equal(r->n_group_by, n);
        for (size_t i = 0; i < r->n_rows; i++) {
            assert_int_equal(r->rows[i]->n_keys, n);
            assert_int_equal(r->rows[i]->n_labels, n);
            sum += r->rows[i]->sentra;
            des += r->rows[i]->designated;
            if (g[0] == SENTRA__V1__GROUP_BY__GROUP_BY_DECREE_YEAR)
                assert_true(r->rows[i]->keys[0][0] == '\0' || strlen(r->rows[i]->keys[0]) == 4);
            if (g[n - 1] == SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE)
                assert_string_equal(r->rows[i]->keys[n - 1], "18");
        }
        assert_int_equal(sum, 73);
        assert_int_equal(des, 54);
        assert_int_equal(r->total->sentra, 73);
        stats_free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headline),
        cmocka_unit_test(test_equals_list),
        cmocka_unit_test(test_district_scope),
        cmocka_unit_test(test_moves),
        cmocka_unit_test(test_time_series),
        cmocka_unit_test(test_as_of_and_year),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_all_shapes),
        cmocka_unit_test(test_other_writers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
