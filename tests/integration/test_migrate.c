/*
 * test_migrate.c: the migrations runner (server/db/migrate.c) against real
 * databases in the test cluster: the project's own migrations apply and
 * re-apply as a no-op, the region reference data has the right counts, and
 * every refusal (edited, unknown newer, misnamed, duplicated, out of order,
 * failing, self-committing migrations) leaves the database as it was.
 *
 * Integration test programs are not linked with the server library, so the
 * runner is compiled in here directly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "migrate.c"

/* ---------------------------------------------------------------- helpers */

static const char *migrations(void)
{
    const char *m = getenv("SENTRA_MIGRATIONS");
    return m && m[0] ? m : "migrations";
}

/* A fresh database and a connection to it. */
static PGconn *fresh_db(const char *name)
{
    char conninfo[512];
    assert_int_equal(th_createdb(name, conninfo, sizeof(conninfo)), 0);
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect %s: %s", conninfo, PQerrorMessage(c));
    return c;
}

/* The single value of a query, as a long. */
static long q_long(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    long v = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static int table_exists(PGconn *c, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT (to_regclass('%s') IS NOT NULL)::int", table);
    return (int)q_long(c, sql);
}

static int count_sql_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] != '.' && l > 4 && strcmp(e->d_name + l - 4, ".sql") == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* A scratch migrations directory. */
static void scratch_dir(char *out, size_t len, const char *tag)
{
    const char *t = getenv("SENTRA_TEST_TMP");
    snprintf(out, len, "%s/mig_%s_XXXXXX", t && t[0] ? t : "/tmp", tag);
    assert_non_null(mkdtemp(out));
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void drop(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(unlink(path), 0);
}

static void expect_refusal(PGconn *c, const char *dir, const char *needle)
{
    char err[1024] = "";
    int n = migrate_run(c, dir, 0, err, sizeof(err));
    if (n != -1 || strstr(err, needle) == NULL)
        fail_msg("want -1 with \"%s\", got %d: \"%s\"", needle, n, err);
}

/* Two small migrations; the second has a plpgsql body with semicolons. */
static const char *M1 = "CREATE TABLE t1 (id int PRIMARY KEY, v text);\n"
                        "INSERT INTO t1 VALUES (1, 'one; two');\n";
static const char *M2 =
    "CREATE FUNCTION t1_count() RETURNS bigint LANGUAGE plpgsql AS $$\n"
    "DECLARE n bigint;\n"
    "BEGIN\n"
    "    SELECT count(*) INTO n FROM t1;\n"
    "    RETURN n;\n"
    "END $$;\n"
    "CREATE TABLE t2 (id int);\n";

/* ---------------------------------------------------------------- tests */

static void project_migrations_apply_once(void **state)
{
    (void)state;
    PGconn *c = fresh_db("t_mig_project");
    char err[1024];
    int files = count_sql_files(migrations());
    assert_true(files >= 1);

    int n = migrate_run(c, migrations(), 0, err, sizeof(err));
    if (n != files)
        fail_msg("first run applied %d of %d: %s", n, files, err);
    assert_int_equal(q_long(c, "SELECT count(*) FROM schema_migrations"), files);

    /* Again: nothing to do, nothing changes. */
    n = migrate_run(c, migrations(), 0, err, sizeof(err));
    if (n != 0)
        fail_msg("second run: %d: %s", n, err);
    assert_int_equal(migrate_run(c, migrations(), 1, err, sizeof(err)), 0);
    assert_int_equal(q_long(c, "SELECT count(*) FROM schema_migrations"), files);

    /* The reference regions. */
    assert_int_equal(q_long(c, "SELECT count(*) FROM region WHERE level = 'province'"), 38);
    assert_int_equal(q_long(c, "SELECT count(*) FROM region WHERE level IN ('regency', 'city')"),
                     514);
    assert_int_equal(q_long(c, "SELECT count(*) FROM region WHERE level = 'regency'"), 416);
    assert_int_equal(q_long(c, "SELECT count(*) FROM region WHERE level = 'city'"), 98);
    assert_int_equal(q_long(c, "SELECT count(*) FROM region WHERE parent_code = '18'"), 15);
    /* Lampung's BPS codes, as in docs/DATA_SOURCES.md. */
    assert_int_equal(q_long(c, "SELECT count(*) FROM region WHERE (code, bps_code, name) IN ("
                               "('18.01','1803','Kabupaten Lampung Selatan'),"
                               "('18.02','1805','Kabupaten Lampung Tengah'),"
                               "('18.03','1806','Kabupaten Lampung Utara'),"
                               "('18.04','1801','Kabupaten Lampung Barat'),"
                               "('18.05','1808','Kabupaten Tulang Bawang'),"
                               "('18.06','1802','Kabupaten Tanggamus'),"
                               "('18.07','1804','Kabupaten Lampung Timur'),"
                               "('18.08','1807','Kabupaten Way Kanan'),"
                               "('18.09','1809','Kabupaten Pesawaran'),"
                               "('18.10','1810','Kabupaten Pringsewu'),"
                               "('18.11','1811','Kabupaten Mesuji'),"
                               "('18.12','1812','Kabupaten Tulang Bawang Barat'),"
                               "('18.13','1813','Kabupaten Pesisir Barat'),"
                               "('18.71','1871','Kota Bandar Lampung'),"
                               "('18.72','1872','Kota Metro'))"),
                     15);
    assert_int_equal(q_long(c, "SELECT count(*) FROM region WHERE bps_code IS NOT NULL"), 15);
    /* Every regency/city hangs under an existing province. */
    assert_int_equal(q_long(c, "SELECT count(*) FROM region r JOIN region p ON p.code = "
                               "r.parent_code WHERE r.level IN ('regency','city') AND "
                               "p.level = 'province'"),
                     514);

    /* The table's rules hold. */
    PGresult *r = PQexec(c, "INSERT INTO region VALUES ('18.99.01', 'district', 'x', '18', NULL)");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    r = PQexec(c, "INSERT INTO region VALUES ('18.73', 'village', 'x', '18', NULL)");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    r = PQexec(c, "INSERT INTO region VALUES ('18.73', 'city', 'x', '19', NULL)");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);

    /* Status lists every file as applied. */
    char *buf = NULL;
    size_t blen = 0;
    FILE *out = open_memstream(&buf, &blen);
    assert_int_equal(migrate_status(c, migrations(), out, err, sizeof(err)), 0);
    fclose(out);
    assert_non_null(strstr(buf, "applied  0001_regions.sql"));
    assert_null(strstr(buf, "pending"));
    free(buf);
    PQfinish(c);
}

static void dry_run_changes_nothing(void **state)
{
    (void)state;
    PGconn *c = fresh_db("t_mig_dry");
    char err[1024];
    int files = count_sql_files(migrations());
    assert_int_equal(migrate_run(c, migrations(), 1, err, sizeof(err)), files);
    assert_int_equal(table_exists(c, "schema_migrations"), 0);
    assert_int_equal(table_exists(c, "region"), 0);

    char *buf = NULL;
    size_t blen = 0;
    FILE *out = open_memstream(&buf, &blen);
    assert_int_equal(migrate_status(c, migrations(), out, err, sizeof(err)), files);
    fclose(out);
    assert_non_null(strstr(buf, "pending  0001_regions.sql"));
    free(buf);
    PQfinish(c);
}

static void edited_migration_refused(void **state)
{
    (void)state;
    char dir[512], err[1024];
    scratch_dir(dir, sizeof(dir), "edit");
    put(dir, "0001_first.sql", M1);
    put(dir, "0002_second.sql", M2);
    put(dir, "README", "not a migration\n");
    PGconn *c = fresh_db("t_mig_edit");
    assert_int_equal(migrate_run(c, dir, 0, err, sizeof(err)), 2);
    assert_int_equal(q_long(c, "SELECT t1_count()"), 1);

    /* Edit the applied 0001 and add a new 0003: nothing may happen. */
    put(dir, "0001_first.sql", "CREATE TABLE t1 (id bigint);\n");
    put(dir, "0003_third.sql", "CREATE TABLE t3 (id int);\n");
    expect_refusal(c, dir, "0001_first.sql was changed after it was applied");
    assert_int_equal(table_exists(c, "t3"), 0);
    assert_int_equal(q_long(c, "SELECT count(*) FROM schema_migrations"), 2);
    /* Dry runs refuse too (the server's --no-migrate check). */
    assert_int_equal(migrate_run(c, dir, 1, err, sizeof(err)), -1);

    char *buf = NULL;
    size_t blen = 0;
    FILE *out = open_memstream(&buf, &blen);
    assert_int_equal(migrate_status(c, dir, out, err, sizeof(err)), -1);
    fclose(out);
    assert_non_null(strstr(buf, "changed  0001_first.sql"));
    assert_non_null(strstr(buf, "pending  0003_third.sql"));
    free(buf);

    /* Restoring the file makes the run go through. */
    put(dir, "0001_first.sql", M1);
    assert_int_equal(migrate_run(c, dir, 0, err, sizeof(err)), 1);
    assert_int_equal(table_exists(c, "t3"), 1);

    /* Renaming an applied migration is refused as well. */
    drop(dir, "0003_third.sql");
    put(dir, "0003_renamed.sql", "CREATE TABLE t3 (id int);\n");
    expect_refusal(c, dir, "applied as 0003_third.sql");
    PQfinish(c);
}

static void newer_schema_refused(void **state)
{
    (void)state;
    char dir[512], err[1024];
    scratch_dir(dir, sizeof(dir), "newer");
    put(dir, "0001_first.sql", M1);
    put(dir, "0002_second.sql", M2);
    PGconn *c = fresh_db("t_mig_newer");
    assert_int_equal(migrate_run(c, dir, 0, err, sizeof(err)), 2);
    /* This "binary" only knows 0001: the database is newer. */
    drop(dir, "0002_second.sql");
    expect_refusal(c, dir, "schema is newer than this sentrad");
    assert_int_equal(migrate_run(c, dir, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "0002_second"));
    PQfinish(c);
}

static void misnamed_and_duplicates_refused(void **state)
{
    (void)state;
    char dir[512], err[1024];
    PGconn *c = fresh_db("t_mig_names");
    const char *bad[] = { "1_short.sql", "0001-dash.sql", "0001_Upper.sql", "0000_zero.sql",
                          "00001_five.sql", "0001_.sql", NULL };
    for (int i = 0; bad[i] != NULL; i++) {
        scratch_dir(dir, sizeof(dir), "bad");
        put(dir, "0002_fine.sql", M1);
        put(dir, bad[i], M1);
        int n = migrate_run(c, dir, 0, err, sizeof(err));
        if (n != -1 || strstr(err, "misnamed") == NULL)
            fail_msg("%s: want misnamed, got %d: %s", bad[i], n, err);
    }
    scratch_dir(dir, sizeof(dir), "dup");
    put(dir, "0001_one.sql", M1);
    put(dir, "0001_other.sql", M1);
    expect_refusal(c, dir, "two migrations with version 0001");
    /* No refusal touched the database. */
    assert_int_equal(table_exists(c, "schema_migrations"), 0);
    assert_int_equal(table_exists(c, "t1"), 0);

    expect_refusal(c, "/nonexistent/migrations", "cannot open migrations directory");
    PQfinish(c);
}

static void out_of_order_refused(void **state)
{
    (void)state;
    char dir[512], err[1024];
    scratch_dir(dir, sizeof(dir), "order");
    put(dir, "0001_first.sql", M1);
    put(dir, "0003_third.sql", "CREATE TABLE t3 (id int);\n");
    PGconn *c = fresh_db("t_mig_order");
    assert_int_equal(migrate_run(c, dir, 0, err, sizeof(err)), 2);
    put(dir, "0002_second.sql", M2);
    expect_refusal(c, dir, "0002_second.sql is pending but the later version 0003");
    assert_int_equal(table_exists(c, "t2"), 0);
    PQfinish(c);
}

static void failing_migration_rolled_back(void **state)
{
    (void)state;
    char dir[512], err[1024];
    scratch_dir(dir, sizeof(dir), "fail");
    put(dir, "0001_first.sql", M1);
    put(dir, "0002_broken.sql", "CREATE TABLE t2 (id int);\n"
                                "INSERT INTO t2 VALUES (1);\n"
                                "SELECT no_such_column FROM t2;\n");
    put(dir, "0003_after.sql", "CREATE TABLE t3 (id int);\n");
    PGconn *c = fresh_db("t_mig_fail");
    int n = migrate_run(c, dir, 0, err, sizeof(err));
    assert_int_equal(n, -1);
    if (strstr(err, "0002_broken.sql failed, line 3") == NULL ||
        strstr(err, "no_such_column") == NULL)
        fail_msg("error message: %s", err);
    /* 0001 stays applied; nothing of 0002 or 0003 is there. */
    assert_int_equal(q_long(c, "SELECT count(*) FROM schema_migrations"), 1);
    assert_int_equal(table_exists(c, "t1"), 1);
    assert_int_equal(table_exists(c, "t2"), 0);
    assert_int_equal(table_exists(c, "t3"), 0);
    /* The connection is usable and back to its own settings. */
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    PGresult *r = PQexec(c, "SHOW client_min_messages");
    assert_string_equal(PQgetvalue(r, 0, 0), "notice");
    PQclear(r);

    /* A file that commits by itself is refused. */
    put(dir, "0002_broken.sql", "CREATE TABLE t2 (id int);\nCOMMIT;\n");
    expect_refusal(c, dir, "ended its own transaction");
    PQfinish(c);
}

/* Several servers starting together: each migration applies exactly once. */
static void concurrent_runners(void **state)
{
    (void)state;
    char conninfo[512];
    assert_int_equal(th_createdb("t_mig_concurrent", conninfo, sizeof(conninfo)), 0);
    int files = count_sql_files(migrations());
    enum { RUNNERS = 4 };
    pid_t pids[RUNNERS];
    int fds[RUNNERS][2];
    for (int i = 0; i < RUNNERS; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        fflush(NULL);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(fds[i][0]);
            PGconn *c = PQconnectdb(conninfo);
            char err[1024] = "";
            int n = PQstatus(c) == CONNECTION_OK
                        ? migrate_run(c, migrations(), 0, err, sizeof(err)) : -1;
            PQfinish(c);
            if (n < 0)
                fprintf(stderr, "runner %d: %s\n", i, err);
            if (write(fds[i][1], &n, sizeof(n)) != sizeof(n))
                _exit(2);
            _exit(0);
        }
        close(fds[i][1]);
    }
    int total = 0;
    for (int i = 0; i < RUNNERS; i++) {
        int n = -1, st;
        assert_int_equal(read(fds[i][0], &n, sizeof(n)), (ssize_t)sizeof(n));
        close(fds[i][0]);
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(n >= 0);
        total += n;
    }
    assert_int_equal(total, files);
    PGconn *c = PQconnectdb(conninfo);
    assert_int_equal(q_long(c, "SELECT count(*) FROM schema_migrations"), files);
    assert_int_equal(q_long(c, "SELECT count(*) FROM region WHERE level = 'province'"), 38);
    PQfinish(c);
}

static void bad_connection_refused(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(migrate_run(NULL, migrations(), 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no database connection"));
}

static int group_setup(void **state)
{
    (void)state;
    if (!th_env_ok()) {
        fprintf(stderr, "test_migrate: needs the environment of scripts/run-tests.sh\n");
        return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(project_migrations_apply_once),
        cmocka_unit_test(dry_run_changes_nothing),
        cmocka_unit_test(edited_migration_refused),
        cmocka_unit_test(newer_schema_refused),
        cmocka_unit_test(misnamed_and_duplicates_refused),
        cmocka_unit_test(out_of_order_refused),
        cmocka_unit_test(failing_migration_rolled_back),
        cmocka_unit_test(concurrent_runners),
        cmocka_unit_test(bad_connection_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
