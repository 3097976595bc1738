/*
 * test_push_bulk.c: sync_push's set-wise path for batches of new records
 * (migrations/0006_sync.sql, sync_push_new_records) leaves exactly what the
 * mutation-by-mutation loop leaves. Two fresh databases get the same
 * records: one as a batch of creates only (the set-wise path), the other
 * with one refused mutation added (which sends the batch through the loop);
 * records, figures, change rows, statistics and stored outcomes must then
 * be equal. And a batch the set-wise path cannot take whole (a record the
 * rules refuse, an id already used, a regency outside the scope) still gets
 * its outcomes one by one, with nothing left behind by the attempt.
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

#include "harness.h"

#define TOKEN "9b0c3c9e-7a51-4d1e-9a55-1f5f0c3e2a01"

static PGconn *fresh_db(const char *name)
{
    char conninfo[1024], out[4096];
    assert_int_equal(th_createdb(name, conninfo, sizeof conninfo), 0);
    const char *argv[] = {getenv("SENTRAD"), "migrate", "--db", conninfo, NULL};
    if (th_run(argv, out, sizeof out) != 0)
        fail_msg("sentrad migrate: %s", out);
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect %s: %s", conninfo, PQerrorMessage(c));
    return c;
}

/* Runs sql; returns every row as "a|b|c\n" lines (malloc'ed). */
static char *rows(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    for (int i = 0; i < PQntuples(r); i++)
        for (int j = 0; j < PQnfields(r); j++) {
            const char *v = PQgetisnull(r, i, j) ? "<null>" : PQgetvalue(r, i, j);
            size_t n = strlen(v) + 2;
            while (len + n + 1 > cap)
                cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
            len += (size_t)sprintf(out + len, "%s%c", v, j + 1 < PQnfields(r) ? '|' : '\n');
        }
    PQclear(r);
    return out;
}

/* A batch of n new records in province 18 ("m<i>"/ids from seed), the
 * statuses, figures and codes varied; extra: more mutations appended (JSON
 * text starting with ',' or ""). Returns the sync_push call. */
static char *push_sql(int n, int seed, const char *extra)
{
    char *sql = NULL;
    int rc = asprintf(&sql,
        "SELECT idx, outcome, version, violations, (rec).id FROM sync_push('" TOKEN "', 'province', '18',"
        " 'bulk-test', false, (SELECT jsonb_agg(m ORDER BY g) || '[%s]'::jsonb FROM ("
        " SELECT g, jsonb_build_object('m', 'm%d-' || g, 'op', 1, 'base', 0,"
        "  'id', md5('bulk-%d-' || g)::uuid, 'regency', r.code,"
        "  'name', 'Sentra Uji ' || g, 'commodity', 'Kopi', 'main_product', 'Kopi bubuk',"
        "  'address', CASE WHEN g %% 2 = 0 THEN 'Jl. ' || g END,"
        "  'lat', CASE WHEN g %% 3 = 0 THEN '-5.4' END, 'lon', CASE WHEN g %% 3 = 0 THEN '105.26' END,"
        "  'kbli_code', '10761', 'kbli_version', '2020', 'sector_group', '1',"
        "  'status', CASE WHEN g %% 4 = 0 THEN '2' ELSE '1' END, 'formed_on', '2019-02-0' || (1 + g %% 9),"
        "  'decree_number', CASE WHEN g %% 4 = 0 THEN 'SK/' || g END,"
        "  'decree_date', CASE WHEN g %% 4 = 0 THEN '2020-01-15' END,"
        "  'contact_name', 'Ibu ' || g, 'contact_phone', '0812 ' || g,"
        "  'figures', CASE WHEN g %% 5 = 1 AND g %% 4 <> 0 THEN '[]'::jsonb ELSE jsonb_build_array("
        "   jsonb_build_object('year', 2023, 'business_units', 5 + g %% 7, 'workers_male', g,"
        "    'workers_female', 2 * g, 'investment', 1000 * g, 'production_value', 5000 * g,"
        "    'material_value', 7 * g, 'capacity', 10 * g, 'capacity_unit', 'kg',"
        "    'export_share_bp', g %% 100, 'export_destinations', jsonb_build_array('MY', 'SG')),"
        "   jsonb_build_object('year', 2024, 'business_units', 6 + g %% 5)) END) AS m"
        " FROM generate_series(1, %d) g,"
        " LATERAL (SELECT code FROM region WHERE parent_code = '18' AND level IN ('regency', 'city')"
        "  ORDER BY code OFFSET g %% 10 LIMIT 1) r) b)) ORDER BY idx",
        extra, seed, seed, n);
    assert_true(rc > 0);
    return sql;
}

/* Everything a push leaves, without what differs between databases by
 * nature (times, transaction ids, the sequence's absolute values). */
static const char *const STATE[] = {
    "SELECT id, regency_code, province_code, district_code, village_code, address, latitude,"
    " longitude, name, commodity, main_product, kbli_code, kbli_version, sector_group, status,"
    " designated, formed_on, decree_number, decree_date, decree_official, contact_name,"
    " contact_phone, search, version, created_by, updated_by, deleted_at IS NULL,"
    " created_at = updated_at FROM sentra ORDER BY id",
    "SELECT sentra_id, year, business_units, workers_male, workers_female, investment,"
    " production_value, material_value, capacity, capacity_unit, export_share_bp,"
    " export_destinations FROM sentra_figures ORDER BY sentra_id, year",
    "SELECT row_number() OVER (ORDER BY txid, seq), sentra_id, op, old_version, new_version,"
    " token_id, regency_code, old_regency_code FROM sentra_change ORDER BY txid, seq",
    "SELECT sentra_id, regency_code, province_code, status, sector_group, kbli_code, designated,"
    " formed_on, decree_date, deleted_at, fig_year, business_units, workers_male, workers_female,"
    " investment, production_value, material_value FROM sentra_stat ORDER BY sentra_id",
    "SELECT mutation_id, outcome, sentra_id, version, violations FROM sync_mutation"
    " WHERE mutation_id LIKE 'm%' ORDER BY mutation_id",
    "SELECT count(*) FROM sync_mutation",
};

static void same_as_loop(void **state)
{
    (void)state;
    enum { N = 60 };
    PGconn *a = fresh_db("t_push_bulk_a"), *b = fresh_db("t_push_bulk_b");

    /* a: creates only (set-wise); b: the same plus one mutation refused by
     * the service's own checks, which only the loop handles */
    char *qa = push_sql(N, 1, ""), *qb = push_sql(N, 1,
        "{\"m\": \"x-refused\", \"reject\": \"sentra.name: is required\"}");
    char *ra = rows(a, qa), *rb = rows(b, qb);
    /* the same results for the records (b has one more line, the refusal) */
    assert_true(strlen(rb) > strlen(ra));
    assert_memory_equal(ra, rb, strlen(ra));
    assert_non_null(strstr(rb + strlen(ra), "3|<null>|sentra.name: is required|<null>"));
    for (int i = 0; i < N; i++) {
        char want[32];
        snprintf(want, sizeof want, "%d|1|1|<null>|<null>\n", i);
        if (strstr(ra, want) == NULL)
            fail_msg("no \"%s\" in\n%.3000s", want, ra);
    }
    /* a took the set-wise path (every record written by one transaction),
     * b the loop (one subtransaction per mutation) */
    char *xa = rows(a, "SELECT count(DISTINCT xmin::text) FROM sentra");
    char *xb = rows(b, "SELECT count(DISTINCT xmin::text) FROM sentra");
    assert_string_equal(xa, "1\n");
    assert_int_equal(atoi(xb), N);
    free(xa);
    free(xb);
    for (size_t k = 0; k < sizeof STATE / sizeof *STATE; k++) {
        char *sa = rows(a, STATE[k]), *sb = rows(b, STATE[k]);
        if (k + 1 == sizeof STATE / sizeof *STATE) {
            assert_int_equal(atoi(sa), N);
            assert_int_equal(atoi(sb), N + 1);
        } else {
            if (strcmp(sa, sb) != 0)
                fail_msg("%s\n-- set-wise:\n%.2000s\n-- loop:\n%.2000s", STATE[k], sa, sb);
            assert_true(strlen(sa) > 0);
        }
        free(sa);
        free(sb);
    }
    /* a repeat of the whole batch returns the stored outcomes, changes nothing */
    char *before = rows(a, STATE[2]), *again = rows(a, qa), *after = rows(a, STATE[2]);
    assert_string_equal(again, ra);
    assert_string_equal(before, after);
    free(before);
    free(again);
    free(after);
    free(qa);
    free(qb);
    free(ra);
    free(rb);
    PQfinish(a);
    PQfinish(b);
}

/* Batches of creates the set-wise path cannot apply whole: each mutation
 * still gets its own outcome, and the records that could apply do. */
static void refused_inside(void **state)
{
    (void)state;
    PGconn *c = fresh_db("t_push_bulk_c");
    char *first = push_sql(3, 2, ""), *r = rows(c, first);
    free(r);
    free(first);
    const char *cases[] = {
        /* designated without figures: the designation rule */
        "{\"m\": \"bad-1\", \"op\": 1, \"base\": 0, \"id\": \"6d1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c11\","
        " \"regency\": \"18.71\", \"name\": \"Sentra Tanpa Angka\", \"kbli_code\": \"10761\","
        " \"kbli_version\": \"2020\", \"sector_group\": \"1\", \"status\": \"2\","
        " \"decree_number\": \"SK/1\", \"decree_date\": \"2020-01-01\", \"figures\": []}",
        /* an id already used (the first batch's first record) */
        "{\"m\": \"bad-2\", \"op\": 1, \"base\": 0, \"id\": \"%s\","
        " \"regency\": \"18.71\", \"name\": \"Sentra Kembar\", \"kbli_code\": \"10761\","
        " \"kbli_version\": \"2020\", \"sector_group\": \"1\", \"status\": \"1\", \"figures\": []}",
        /* a regency of another province */
        "{\"m\": \"bad-3\", \"op\": 1, \"base\": 0, \"id\": \"6d1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c13\","
        " \"regency\": \"31.71\", \"name\": \"Sentra Jakarta\", \"kbli_code\": \"10761\","
        " \"kbli_version\": \"2020\", \"sector_group\": \"1\", \"status\": \"1\", \"figures\": []}",
    };
    const char *want[] = {
        "5|3|<null>|sentra.figures: a designated sentra needs figures",
        "5|2|<null>|<null>|",
        "5|3|<null>|sentra.regency_code: ",
    };
    char *used = rows(c, "SELECT md5('bulk-2-1')::uuid");
    used[strcspn(used, "\n")] = '\0';
    for (int k = 0; k < 3; k++) {
        char extra[1024];
        snprintf(extra, sizeof extra, cases[k], used);
        char *changes0 = rows(c, "SELECT count(*) FROM sentra_change");
        char *q = push_sql(5, 10 + k, extra), *res = rows(c, q);
        char *changes1 = rows(c, "SELECT count(*) FROM sentra_change");
        /* the five good ones applied, once each */
        for (int i = 0; i < 5; i++) {
            char line[32];
            snprintf(line, sizeof line, "%d|1|1|<null>|<null>\n", i);
            assert_non_null(strstr(res, line));
        }
        if (strstr(res, want[k]) == NULL)
            fail_msg("case %d: want %s in\n%s", k, want[k], res);
        assert_int_equal(atoi(changes1) - atoi(changes0), 5);
        free(changes0);
        free(changes1);
        free(q);
        free(res);
    }
    /* outcomes stored once per mutation, records once per id */
    char *dup = rows(c, "SELECT count(*) FROM (SELECT id FROM sentra GROUP BY id HAVING count(*) > 1) x");
    assert_string_equal(dup, "0\n");
    char *n = rows(c, "SELECT count(*) FROM sentra");
    assert_int_equal(atoi(n), 3 + 15);
    char *stat = rows(c, "SELECT count(*) FROM sentra s LEFT JOIN sentra_stat t ON t.sentra_id = s.id"
                         " WHERE t.sentra_id IS NULL");
    assert_string_equal(stat, "0\n");
    free(dup);
    free(n);
    free(stat);
    free(used);
    PQfinish(c);
}

int main(void)
{
    if (!th_env_ok()) {
        printf("test_push_bulk: no test environment (run through scripts/run-tests.sh); skipped\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_as_loop),
        cmocka_unit_test(refused_inside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
