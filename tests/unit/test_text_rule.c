/*
 * test_text_rule.c: the text rule is one rule (issue 13, item 11). For
 * every Unicode code point, validate_text_char() in C and sentra_text_ok()
 * in SQL (migrations/0010_text_rules.sql) must agree, for one-line and for
 * multi-line fields; and the CHECK constraints must refuse what C refuses,
 * in every text column, whoever writes (psql, a loader).
 *
 * Needs the test cluster (run through make test): it migrates a database
 * of its own.
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
#include "migrate.h"
#include "validate.h"

static PGconn *db;

static int setup(void **state)
{
    char conninfo[512], err[512];
    const char *dir = getenv("SENTRA_MIGRATIONS");

    if (!th_env_ok()) {
        fprintf(stderr, "test_text_rule: run through make test (needs the test cluster)\n");
        return -1;
    }
    if (th_createdb("t_text_rule", conninfo, sizeof conninfo) != 0)
        return -1;
    db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(db));
        return -1;
    }
    if (migrate_run(db, dir && dir[0] ? dir : "migrations", 0, err, sizeof err) < 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    PQfinish(db);
    return 0;
}

/* The code points SQL refuses, ascending, as a malloc'ed array. */
static int32_t *sql_refused(int multiline, size_t *n)
{
    PGresult *res = PQexec(db, multiline
        ? "SELECT cp FROM generate_series(1, 1114111) cp"
          " WHERE cp NOT BETWEEN 55296 AND 57343 AND NOT sentra_text_ok(chr(cp), true) ORDER BY cp"
        : "SELECT cp FROM generate_series(1, 1114111) cp"
          " WHERE cp NOT BETWEEN 55296 AND 57343 AND NOT sentra_text_ok(chr(cp), false) ORDER BY cp");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s", PQerrorMessage(db));
    *n = (size_t)PQntuples(res);
    int32_t *v = malloc((*n + 1) * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < *n; i++)
        v[i] = (int32_t)atol(PQgetvalue(res, (int)i, 0));
    PQclear(res);
    return v;
}

static void same_rule_everywhere(void **state)
{
    for (int multiline = 0; multiline <= 1; multiline++) {
        size_t n, k = 0;
        int32_t *refused = sql_refused(multiline, &n);
        for (int32_t cp = 1; cp <= 0x10FFFF; cp++) {
            if (cp >= 0xD800 && cp <= 0xDFFF)
                continue;           /* no such characters */
            int c_refuses = !validate_text_char(cp, multiline);
            int sql_refuses = k < n && refused[k] == cp;
            if (sql_refuses)
                k++;
            if (c_refuses != sql_refuses)
                fail_msg("U+%04X (%s): C %s it, SQL %s it", (unsigned)cp,
                         multiline ? "multi-line" : "one line", c_refuses ? "refuses" : "allows",
                         sql_refuses ? "refuses" : "allows");
        }
        assert_int_equal(k, n);
        /* 31 C0 + DEL + 32 C1 + 21 formatting + 128 tags, less tab and
         * line breaks when multi-line */
        assert_int_equal(n, multiline ? 210 : 213);
        free(refused);
    }
}

/* Every text column refuses a C1 control and a bidi override when written
 * straight in SQL, with a constraint named after its column. */
static void checks_on_every_column(void **state)
{
    static const char *const cols[] = {"name", "commodity", "main_product", "contact_name",
                                       "decree_number", "decree_official", "address"};
    static const char *const bad[] = {"Sentra U+0085 \xC2\x85", "Sentra U+202E \xE2\x80\xAE",
                                      "Sentra U+2028 \xE2\x80\xA8"};
    char sql[1024];

    for (size_t i = 0; i < sizeof cols / sizeof *cols; i++) {
        for (size_t j = 0; j < sizeof bad / sizeof *bad; j++) {
            const char *v[1] = {bad[j]};
            /* name goes in as the name; the others beside a valid name */
            if (strcmp(cols[i], "name") == 0)
                snprintf(sql, sizeof sql,
                         "INSERT INTO sentra (id, regency_code, name, kbli_code, kbli_version,"
                         " sector_group, status) VALUES (gen_random_uuid(), '18.71', $1, '10710', 2020, 1, 1)");
            else
                snprintf(sql, sizeof sql,
                         "INSERT INTO sentra (id, regency_code, name, kbli_code, kbli_version,"
                         " sector_group, status, %s) VALUES (gen_random_uuid(), '18.71', 'Sentra Uji Teks', '10710',"
                         " 2020, 1, 1, $1)", cols[i]);
            PGresult *res = PQexecParams(db, sql, 1, NULL, v, NULL, NULL, 0);
            const char *state_ = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
            char want[64];
            snprintf(want, sizeof want, "sentra_%s_text", cols[i]);
            if (!state_ || strcmp(state_, "23514") != 0 || !cons || strcmp(cons, want) != 0)
                fail_msg("%s = %s: %s (constraint %s, want %s)", cols[i], bad[j],
                         PQresultErrorMessage(res), cons ? cons : "none", want);
            PQclear(res);
        }
    }
    /* and a line break where it belongs, a no-break space and RTL marks */
    const char *ok[1] = {"Jl. Teuku Umar 10\nKedaton \xC2\xA0 \xE2\x80\x8F"};
    PGresult *res = PQexecParams(db,
        "INSERT INTO sentra (id, regency_code, name, kbli_code, kbli_version, sector_group, status,"
        " address) VALUES (gen_random_uuid(), '18.71', 'Sentra Uji Teks', '10710', 2020, 1, 1, $1)",
        1, NULL, ok, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("%s", PQresultErrorMessage(res));
    PQclear(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_rule_everywhere),
        cmocka_unit_test(checks_on_every_column),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
