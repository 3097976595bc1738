/*
 * test_db_pipeline.c: the PostgreSQL pool (server/db/db.c) against a real
 * PostgreSQL (a database of its own in the test cluster), without a server:
 *
 *   - quick statements sent in one turn of the loop share one Sync (a
 *     group), so a failure in a group must fail only its own query, and the
 *     queries the failure skipped must run again, a new statement's Parse
 *     included; quick statements must not wait behind a slow one;
 *   - an error raised at commit (a deferred constraint trigger) is the
 *     query's failure, alone on its connection, pipelined behind others, or
 *     in a group, and never hangs the query (issue 12);
 *   - a cancel reaches only what it was aimed at: a cancelled query that is
 *     not alone on its connection is left to finish, so another query's
 *     commit is never cancelled; a lone one is cancelled; SQLSTATE 57014
 *     (statement_timeout, a DBA's pg_cancel_backend) is delivered, never
 *     retried (issues 12 and 13);
 *   - prepared statements stay within max_prepared per connection; the
 *     queue refuses beyond max_queued (DB_EXHAUSTED, from the loop);
 *   - connecting: a multi-host conninfo whose first host refuses or never
 *     answers, a host name (resolved off the loop), keepalives on the
 *     socket; "notifications lost" is delivered from the loop after the
 *     state change, and again once LISTEN is active after a reconnect.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>

#include "db.h"
#include "harness.h"
#include "tcp_proxy.h"

static char conninfo[512];

static db_stmt_t q_double = {"SELECT $1::int * 2", 0, 1};
static db_stmt_t q_divide = {"SELECT 10 / $1::int", 0, 1};
static db_stmt_t q_shout = {"SELECT $1::text || '!'", 0, 1};
static db_stmt_t q_slow = {"SELECT $1::int FROM pg_sleep(0.3)", 0, 0};

typedef struct job {
    db_stmt_t *stmt;
    const char *arg;
    int done;
    int status;
    ExecStatusType rs;
    char value[64];
    char sqlstate[8];
    uint64_t done_ns;
} job_t;

static int pending;

static void on_result(void *arg, int status, PGresult *res)
{
    job_t *j = arg;
    j->done = 1;
    j->status = status;
    j->done_ns = uv_hrtime();
    if (res != NULL) {
        j->rs = PQresultStatus(res);
        if (j->rs == PGRES_TUPLES_OK && PQntuples(res) == 1)
            snprintf(j->value, sizeof j->value, "%s", PQgetvalue(res, 0, 0));
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(j->sqlstate, sizeof j->sqlstate, "%s", st ? st : "");
    }
    pending--;
}

typedef struct batch {
    db_pool_t *pool;
    job_t *jobs;
    int n;
} batch_t;

/* Sends every job from one callback: one turn of the loop. */
static void send_all(uv_timer_t *t)
{
    batch_t *b = t->data;
    for (int i = 0; i < b->n; i++) {
        const char *v[1] = {b->jobs[i].arg};
        db_query(b->pool, b->jobs[i].stmt, 1, v, on_result, &b->jobs[i]);
        pending++;
    }
}

static void wait_ready(uv_loop_t *loop, db_pool_t *pool, int n)
{
    for (int i = 0; i < 2000 && db_pool_ready(pool) < n; i++)
        uv_run(loop, UV_RUN_ONCE);
    assert_int_equal(db_pool_ready(pool), n);
}

static void run_batch(uv_loop_t *loop, db_pool_t *pool, job_t *jobs, int n)
{
    uv_timer_t t;
    batch_t b = {pool, jobs, n};
    uv_timer_init(loop, &t);
    t.data = &b;
    uv_timer_start(&t, send_all, 0, 0);
    uv_run(loop, UV_RUN_ONCE);          /* the timer: every job in one turn */
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void close_pool(uv_loop_t *loop, db_pool_t *pool)
{
    db_pool_close(pool);
    uv_run(loop, UV_RUN_DEFAULT);
}

static int setup(void **state)
{
    if (!th_env_ok()) {
        fprintf(stderr, "test_db_pipeline: run through make test (needs the test cluster)\n");
        return -1;
    }
    return th_createdb("t_db_pipeline", conninfo, sizeof conninfo) == 0 ? 0 : -1;
}

/* One connection: everything lands in one group. The division by zero
 * fails alone; what it skipped (including the first use of q_shout, whose
 * Parse was skipped too) runs again and answers right. Twice: the second
 * time every statement is prepared already. */
static void test_group_failure_fails_one(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    db_pool_t *pool = db_pool_new(&loop, conninfo, 1, 32);
    assert_non_null(pool);
    wait_ready(&loop, pool, 1);

    for (int round = 0; round < 2; round++) {
        job_t jobs[] = {
            {.stmt = &q_double, .arg = "1"}, {.stmt = &q_double, .arg = "2"}, {.stmt = &q_divide, .arg = "0"}, {.stmt = &q_double, .arg = "3"},
            {.stmt = &q_shout, .arg = "x"}, {.stmt = &q_divide, .arg = "5"}, {.stmt = &q_double, .arg = "4"},
        };
        int n = (int)(sizeof jobs / sizeof jobs[0]);
        run_batch(&loop, pool, jobs, n);
        for (int i = 0; i < n; i++) {
            assert_true(jobs[i].done);
            assert_int_equal(jobs[i].status, DB_OK);
        }
        assert_string_equal(jobs[0].value, "2");
        assert_string_equal(jobs[1].value, "4");
        assert_int_equal(jobs[2].rs, PGRES_FATAL_ERROR);
        assert_string_equal(jobs[2].sqlstate, "22012");
        assert_string_equal(jobs[3].value, "6");
        assert_string_equal(jobs[4].value, "x!");
        assert_string_equal(jobs[5].value, "2");
        assert_string_equal(jobs[6].value, "8");
    }
    close_pool(&loop, pool);
    uv_loop_close(&loop);
}

/* Two connections: a slow statement takes one, quick ones gather on the
 * other and answer long before it. With one connection, quick ones sent
 * after a slow one wait for it (a pipeline runs in order) but still answer. */
static void test_quick_not_behind_slow(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    db_pool_t *pool = db_pool_new(&loop, conninfo, 2, 32);
    assert_non_null(pool);
    wait_ready(&loop, pool, 2);

    job_t jobs[] = {
        {.stmt = &q_slow, .arg = "7"}, {.stmt = &q_double, .arg = "1"}, {.stmt = &q_double, .arg = "2"}, {.stmt = &q_shout, .arg = "a"}, {.stmt = &q_double, .arg = "3"},
    };
    int n = (int)(sizeof jobs / sizeof jobs[0]);
    run_batch(&loop, pool, jobs, n);
    assert_string_equal(jobs[0].value, "7");
    for (int i = 1; i < n; i++) {
        assert_int_equal(jobs[i].rs, PGRES_TUPLES_OK);
        assert_true(jobs[i].done_ns < jobs[0].done_ns);
    }
    assert_string_equal(jobs[4].value, "6");
    close_pool(&loop, pool);

    uv_loop_t loop1;
    uv_loop_init(&loop1);
    pool = db_pool_new(&loop1, conninfo, 1, 32);
    wait_ready(&loop1, pool, 1);
    job_t mixed[] = {
        {.stmt = &q_double, .arg = "1"}, {.stmt = &q_slow, .arg = "8"}, {.stmt = &q_double, .arg = "2"}, {.stmt = &q_divide, .arg = "0"}, {.stmt = &q_double, .arg = "3"},
    };
    n = (int)(sizeof mixed / sizeof mixed[0]);
    run_batch(&loop1, pool, mixed, n);
    assert_string_equal(mixed[0].value, "2");
    assert_string_equal(mixed[1].value, "8");
    assert_string_equal(mixed[2].value, "4");
    assert_string_equal(mixed[3].sqlstate, "22012");
    assert_string_equal(mixed[4].value, "6");
    close_pool(&loop1, pool);
    uv_loop_close(&loop);
    uv_loop_close(&loop1);
}

/* ---------------------------------------------------------------- helpers for the tests below */

/* A blocking side connection to the test database. */
static PGconn *side(void)
{
    PGconn *c = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

static void side_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static long side_long(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    long v = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static int timed_out;
static void on_time_up(uv_timer_t *t)
{
    timed_out = 1;
}

/* Runs the loop until *done reaches want or ms pass; returns 0 when it
 * did, -1 on timeout. */
static int run_until(uv_loop_t *loop, const int *done, int want, int ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    timed_out = 0;
    uv_timer_start(&t, on_time_up, (uint64_t)ms, 0);
    while (*done < want && !timed_out)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *done >= want ? 0 : -1;
}

static int ndone;
static void on_job(void *arg, int status, PGresult *res)
{
    on_result(arg, status, res);
    ndone++;
}

static void submit(db_pool_t *pool, job_t *j)
{
    const char *v[1] = {j->arg};
    memset(j->value, 0, sizeof j->value);
    j->done = 0;
    j->sqlstate[0] = '\0';
    db_query_t *q = db_query(pool, j->stmt, j->arg ? 1 : 0, v, on_job, j);
    (void)q;
    pending++;
}

static db_pool_t *pool_with(uv_loop_t *loop, const char *ci, int size, int depth,
                            void (*tweak)(db_pool_opts_t *))
{
    db_pool_opts_t o;
    db_pool_opts_init(&o);
    o.size = size;
    o.depth = depth;
    if (tweak != NULL)
        tweak(&o);
    db_pool_t *pool = db_pool_new_opts(loop, ci, &o);
    assert_non_null(pool);
    return pool;
}

/* Tables with deferred constraint triggers: bad_commit fails at commit
 * for x = 13; slow_commit spends a second in its commit. */
static void make_commit_tables(void)
{
    PGconn *c = side();
    side_exec(c, "DROP TABLE IF EXISTS bad_commit, slow_commit");
    side_exec(c, "CREATE TABLE bad_commit (x int)");
    side_exec(c, "CREATE TABLE slow_commit (x int)");
    side_exec(c, "CREATE OR REPLACE FUNCTION fail_13() RETURNS trigger LANGUAGE plpgsql AS $$"
                 " BEGIN IF NEW.x = 13 THEN RAISE EXCEPTION 'thirteen refused at commit'"
                 " USING ERRCODE = 'check_violation'; END IF; RETURN NULL; END $$");
    side_exec(c, "CREATE OR REPLACE FUNCTION sleep_1() RETURNS trigger LANGUAGE plpgsql AS $$"
                 " BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$");
    side_exec(c, "CREATE CONSTRAINT TRIGGER bad_commit_check AFTER INSERT ON bad_commit"
                 " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_13()");
    side_exec(c, "CREATE CONSTRAINT TRIGGER slow_commit_sleep AFTER INSERT ON slow_commit"
                 " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sleep_1()");
    PQfinish(c);
}

static db_stmt_t q_insert_bad = {"INSERT INTO bad_commit VALUES ($1::int) RETURNING x", 0, 0};
/* The same, wrongly marked quick, to put a commit failure into a group. */
static db_stmt_t q_insert_bad_quick = {"INSERT INTO bad_commit SELECT $1::int RETURNING x", 0, 1};
static db_stmt_t q_insert_slow = {"INSERT INTO slow_commit VALUES ($1::int) RETURNING x", 0, 0};
static db_stmt_t q_sleep = {"SELECT $1::float8 FROM pg_sleep($1::float8)", 0, 0};

/* ---------------------------------------------------------------- errors at commit */

/* Alone on its connection (the default pool, four connections): libpq
 * gives TUPLES_OK, NULL, FATAL_ERROR, NULL, PIPELINE_SYNC, the Sync already
 * read with the error. The query must fail with the error, at once. Before
 * the fix the pool waited for more input after the NULL and the query hung
 * (here: the 5 s bound), or answered TUPLES_OK for a rolled-back insert. */
static void test_error_at_commit_alone(void **state)
{
    make_commit_tables();
    uv_loop_t loop;
    uv_loop_init(&loop);
    db_pool_t *pool = db_pool_new(&loop, conninfo, 4, 16);
    wait_ready(&loop, pool, 4);

    job_t bad = {.stmt = &q_insert_bad, .arg = "13"};
    ndone = 0;
    submit(pool, &bad);
    assert_int_equal(run_until(&loop, &ndone, 1, 5000), 0);
    assert_int_equal(bad.status, DB_OK);
    assert_int_equal(bad.rs, PGRES_FATAL_ERROR);
    assert_string_equal(bad.sqlstate, "23514");

    PGconn *c = side();
    assert_int_equal(side_long(c, "SELECT count(*) FROM bad_commit"), 0);
    PQfinish(c);
    close_pool(&loop, pool);
    uv_loop_close(&loop);
}

/* One connection, other queries pipelined behind it (--db-pool 1): the
 * failing insert must not be reported done. Before the fix the error at
 * the Sync was dropped and its TUPLES_OK delivered: "created", 0 rows. */
static void test_error_at_commit_pipelined(void **state)
{
    make_commit_tables();
    uv_loop_t loop;
    uv_loop_init(&loop);
    db_pool_t *pool = db_pool_new(&loop, conninfo, 1, 16);
    wait_ready(&loop, pool, 1);

    job_t jobs[] = {
        {.stmt = &q_insert_bad, .arg = "1"}, {.stmt = &q_insert_bad, .arg = "13"},
        {.stmt = &q_double, .arg = "4"}, {.stmt = &q_insert_bad, .arg = "2"},
        {.stmt = &q_slow, .arg = "5"},
    };
    int n = (int)(sizeof jobs / sizeof jobs[0]);
    ndone = 0;
    for (int i = 0; i < n; i++)
        submit(pool, &jobs[i]);
    assert_int_equal(run_until(&loop, &ndone, n, 5000), 0);
    assert_int_equal(jobs[0].rs, PGRES_TUPLES_OK);
    assert_int_equal(jobs[1].rs, PGRES_FATAL_ERROR);
    assert_string_equal(jobs[1].sqlstate, "23514");
    assert_string_equal(jobs[2].value, "8");
    assert_int_equal(jobs[3].rs, PGRES_TUPLES_OK);
    assert_string_equal(jobs[4].value, "5");

    PGconn *c = side();
    assert_int_equal(side_long(c, "SELECT count(*) FROM bad_commit"), 2);
    assert_int_equal(side_long(c, "SELECT count(*) FROM bad_commit WHERE x = 13"), 0);
    PQfinish(c);
    close_pool(&loop, pool);
    uv_loop_close(&loop);
}

/* A group's Sync fails at commit: every query of the group is sent again
 * alone; the lookups answer right, the writer that caused it fails. */
static void test_error_at_commit_in_group(void **state)
{
    make_commit_tables();
    uv_loop_t loop;
    uv_loop_init(&loop);
    db_pool_t *pool = db_pool_new(&loop, conninfo, 1, 32);
    wait_ready(&loop, pool, 1);

    job_t jobs[] = {
        {.stmt = &q_double, .arg = "1"}, {.stmt = &q_insert_bad_quick, .arg = "13"},
        {.stmt = &q_shout, .arg = "g"}, {.stmt = &q_double, .arg = "2"},
    };
    int n = (int)(sizeof jobs / sizeof jobs[0]);
    run_batch(&loop, pool, jobs, n);
    assert_string_equal(jobs[0].value, "2");
    assert_int_equal(jobs[1].rs, PGRES_FATAL_ERROR);
    assert_string_equal(jobs[1].sqlstate, "23514");
    assert_string_equal(jobs[2].value, "g!");
    assert_string_equal(jobs[3].value, "4");
    PGconn *c = side();
    assert_int_equal(side_long(c, "SELECT count(*) FROM bad_commit"), 0);
    PQfinish(c);
    close_pool(&loop, pool);
    uv_loop_close(&loop);
}

/* ---------------------------------------------------------------- cancellation */

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* The case of issue 12, made deterministic. One connection runs A (a
 * 0.2 s sleep) and, behind it, B, an insert whose commit takes a second.
 * The loop does not run for 0.6 s, so A's result waits unread while the
 * backend is in B's commit; then A is cancelled. The old pool sent a
 * cancel request because A was at the head of the pipeline: it cancelled
 * B's commit, and B was delivered TUPLES_OK, a row that does not exist.
 * Now A is not alone there, so no cancel is sent: A answers DB_CANCELLED,
 * B commits. */
static void test_cancel_never_hits_another(void **state)
{
    make_commit_tables();
    uv_loop_t loop;
    uv_loop_init(&loop);
    db_pool_t *pool = db_pool_new(&loop, conninfo, 1, 16);
    wait_ready(&loop, pool, 1);

    job_t a = {.stmt = &q_sleep, .arg = "0.2"}, b = {.stmt = &q_insert_slow, .arg = "77"};
    ndone = 0;
    const char *va[1] = {a.arg}, *vb[1] = {b.arg};
    db_query_t *qa = db_query(pool, a.stmt, 1, va, on_job, &a);
    db_query(pool, b.stmt, 1, vb, on_job, &b);
    pending += 2;
    sleep_ms(600);
    db_query_cancel(qa);
    assert_false(a.done);              /* never from inside db_query_cancel */
    assert_int_equal(run_until(&loop, &ndone, 2, 5000), 0);
    assert_int_equal(a.status, DB_CANCELLED);
    assert_int_equal(b.status, DB_OK);
    assert_int_equal(b.rs, PGRES_TUPLES_OK);
    PGconn *c = side();
    assert_int_equal(side_long(c, "SELECT count(*) FROM slow_commit WHERE x = 77"), 1);
    PQfinish(c);
    close_pool(&loop, pool);
    uv_loop_close(&loop);
}

/* Alone on its connection, a cancelled statement is cancelled in
 * PostgreSQL: the connection is free again long before the 30 s sleep
 * would end. Several all cancelled on one connection go the same way. */
static void test_cancel_alone_stops_statement(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    db_pool_t *pool = db_pool_new(&loop, conninfo, 1, 16);
    wait_ready(&loop, pool, 1);

    for (int round = 0; round < 2; round++) {
        int n = round == 0 ? 1 : 6;
        job_t jobs[6];
        db_query_t *qs[6];
        ndone = 0;
        for (int i = 0; i < n; i++) {
            jobs[i] = (job_t){.stmt = &q_sleep, .arg = "30"};
            const char *v[1] = {"30"};
            qs[i] = db_query(pool, &q_sleep, 1, v, on_job, &jobs[i]);
            pending++;
        }
        sleep_ms(200);
        uint64_t t0 = uv_hrtime();
        for (int i = 0; i < n; i++)
            db_query_cancel(qs[i]);
        /* Bounds for a loaded machine: what is tested is "seconds, not
         * 30 s a query", and the statuses. */
        assert_int_equal(run_until(&loop, &ndone, n, 8000), 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(jobs[i].status, DB_CANCELLED);
        /* The connection answers again within seconds, not 30 x n (each
         * of the n statements is cancelled in turn, by a cancel request
         * that costs PostgreSQL a fork: slow on a loaded machine). */
        job_t next = {.stmt = &q_double, .arg = "21"};
        ndone = 0;
        submit(pool, &next);
        assert_int_equal(run_until(&loop, &ndone, 1, 25000), 0);
        assert_string_equal(next.value, "42");
        assert_true(uv_hrtime() - t0 < 25000000000ull);
    }
    close_pool(&loop, pool);
    uv_loop_close(&loop);
}

static void short_statement_timeout(db_pool_opts_t *o)
{
    o->statement_timeout_ms = 300;
}

/* SQLSTATE 57014 that sentrad did not cause is the query's answer: the
 * pool's statement_timeout, and a DBA's pg_cancel_backend. The old pool
 * sent every 57014 again (the 3 s sleep then answered OK after 6 s, or
 * never, with statement_timeout: read-aheads retried without end). */
static void test_57014_not_retried(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    db_pool_t *pool = pool_with(&loop, conninfo, 1, 16, short_statement_timeout);
    wait_ready(&loop, pool, 1);
    job_t j = {.stmt = &q_sleep, .arg = "2"};
    ndone = 0;
    submit(pool, &j);
    assert_int_equal(run_until(&loop, &ndone, 1, 5000), 0);
    assert_int_equal(j.rs, PGRES_FATAL_ERROR);
    assert_string_equal(j.sqlstate, "57014");
    close_pool(&loop, pool);

    pool = db_pool_new(&loop, conninfo, 1, 16);
    wait_ready(&loop, pool, 1);
    job_t k = {.stmt = &q_sleep, .arg = "3"};
    ndone = 0;
    submit(pool, &k);
    PGconn *c = side();
    long pid = 0;
    for (int i = 0; i < 500 && pid == 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        PGresult *r = PQexec(c, "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep($1%'"
                                " AND state = 'active' AND pid <> pg_backend_pid()");
        if (PQntuples(r) == 1)
            pid = atol(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (pid == 0)
            sleep_ms(20);
    }
    assert_true(pid > 0);
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT pg_cancel_backend(%ld)", pid);
    side_exec(c, sql);
    PQfinish(c);
    /* Sent again, it would answer OK 3 s later: the status tells. */
    assert_int_equal(run_until(&loop, &ndone, 1, 8000), 0);
    assert_int_equal(k.rs, PGRES_FATAL_ERROR);
    assert_string_equal(k.sqlstate, "57014");
    close_pool(&loop, pool);
    uv_loop_close(&loop);
}

/* ---------------------------------------------------------------- bounds */

static void four_prepared(db_pool_opts_t *o)
{
    o->max_prepared = 4;
}

static db_stmt_t q_count_prepared = {"SELECT count(*) FROM pg_prepared_statements", 0, 0};

/* 60 statement texts through one connection that keeps 4: every answer
 * is right (evicted ones are prepared again), and the backend holds at
 * most 4 prepared statements. The old pool kept all 61. */
static void test_prepared_bounded(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    db_pool_t *pool = pool_with(&loop, conninfo, 1, 16, four_prepared);
    wait_ready(&loop, pool, 1);
    enum { N = 60 };
    static db_stmt_t stmts[N];
    static char sql[N][64];
    for (int round = 0; round < 3; round++) {
        job_t jobs[N];
        ndone = 0;
        for (int i = 0; i < N; i++) {
            snprintf(sql[i], sizeof sql[i], "SELECT $1::int + %d", i);
            stmts[i] = (db_stmt_t){sql[i], 0, round == 1};   /* round 1: in groups */
            jobs[i] = (job_t){.stmt = &stmts[i], .arg = "1000"};
            if (round == 1 && i % 7 == 3)
                jobs[i] = (job_t){.stmt = &q_divide, .arg = "0"};
            submit(pool, &jobs[i]);
        }
        assert_int_equal(run_until(&loop, &ndone, N, 10000), 0);
        for (int i = 0; i < N; i++) {
            if (round == 1 && i % 7 == 3) {
                assert_string_equal(jobs[i].sqlstate, "22012");
                continue;
            }
            char want[16];
            snprintf(want, sizeof want, "%d", 1000 + i);
            assert_string_equal(jobs[i].value, want);
        }
    }
    job_t cnt = {.stmt = &q_count_prepared};
    ndone = 0;
    submit(pool, &cnt);
    assert_int_equal(run_until(&loop, &ndone, 1, 5000), 0);
    print_message("prepared statements on the backend: %s\n", cnt.value);
    assert_true(atoi(cnt.value) >= 1 && atoi(cnt.value) <= 4);
    close_pool(&loop, pool);
    uv_loop_close(&loop);
}

static void small_queue(db_pool_opts_t *o)
{
    o->max_queued = 5;
}

/* One connection with room for one query, a queue of five: of 12 sent in
 * one turn, one runs, five wait and six are refused with DB_EXHAUSTED,
 * from the loop (never inside db_query). */
static void test_queue_bounded(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    db_pool_t *pool = pool_with(&loop, conninfo, 1, 1, small_queue);
    wait_ready(&loop, pool, 1);
    job_t jobs[12];
    ndone = 0;
    for (int i = 0; i < 12; i++) {
        jobs[i] = (job_t){.stmt = i == 0 ? &q_slow : &q_double, .arg = "3"};
        submit(pool, &jobs[i]);
        assert_false(jobs[i].done);
    }
    assert_int_equal(run_until(&loop, &ndone, 12, 5000), 0);
    int ok = 0, full = 0;
    for (int i = 0; i < 12; i++) {
        ok += jobs[i].status == DB_OK;
        full += jobs[i].status == DB_EXHAUSTED;
    }
    assert_int_equal(ok, 6);
    assert_int_equal(full, 6);
    close_pool(&loop, pool);
    uv_loop_close(&loop);
}

/* ---------------------------------------------------------------- connecting */

/* The conninfo of the test database over TCP: hosts and ports as given. */
static void tcp_conninfo(char *out, size_t n, const char *hosts, const char *ports, const char *extra)
{
    char *err = NULL;
    PQconninfoOption *o = PQconninfoParse(conninfo, &err);
    assert_non_null(o);
    const char *db = "", *user = "";
    for (PQconninfoOption *p = o; p->keyword != NULL; p++) {
        if (strcmp(p->keyword, "dbname") == 0 && p->val)
            db = p->val;
        if (strcmp(p->keyword, "user") == 0 && p->val)
            user = p->val;
    }
    snprintf(out, n, "host=%s port=%s dbname=%s user=%s %s", hosts, ports, db, user, extra ? extra : "");
    PQconninfoFree(o);
}

static void short_connect(db_pool_opts_t *o)
{
    o->connect_timeout_ms = 500;
}

/* TCP sockets of this process connected to port: their keepalive and
 * user-timeout settings must be on. Returns how many were found. */
static int check_keepalives(int port)
{
    int found = 0;
    for (int fd = 3; fd < 1024; fd++) {
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        int type = 0;
        socklen_t tl = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM)
            continue;
        if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0 || sa.sin_family != AF_INET ||
            ntohs(sa.sin_port) != port)
            continue;
        int ka = 0, idle = 0, uto = 0;
        socklen_t l = sizeof(int);
        getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, &l);
        l = sizeof(int);
        getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &l);
        l = sizeof(int);
        getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, &l);
        assert_int_equal(ka, 1);
        assert_int_equal(idle, 15);
        assert_int_equal(uto, 30000);
        found++;
    }
    return found;
}

/* host=a,b target_session_attrs=read-write where a drops the connection
 * (libpq then moves to another socket, often with the same number: the
 * old pool kept watching the closed one and stayed CONNECTING for ever),
 * where a refuses, where a never
 * answers (libpq ignores connect_timeout under PQconnectPoll: the old
 * pool waited for ever), and a host name (resolved with uv_getaddrinfo;
 * "localhost" may give ::1 first, where nothing listens). Keepalives and
 * tcp_user_timeout are on the sockets. */
static void test_connect_hosts(void **state)
{
    char sock[256], ci[768], ports[64];
    assert_int_equal(th_pg_socket_path(conninfo, sock, sizeof sock), 0);
    th_proxy_t px;
    assert_int_equal(th_proxy_start(&px, sock), 0);
    int silent_port = 0;
    int silent = th_silent_listener(&silent_port);
    assert_true(silent >= 0);
    int closed = th_closed_port();
    int closing_port = 0;
    pid_t closing = th_closing_listener(&closing_port);
    assert_true(closing > 0);
    struct { const char *hosts; int first_port; } cases[] = {
        {"127.0.0.1,127.0.0.1", closing_port},   /* first drops the connection */
        {"127.0.0.1,127.0.0.1", closed},         /* first refuses */
        {"127.0.0.1,127.0.0.1", silent_port},    /* first never answers */
        {"localhost", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (cases[k].first_port == 0)
            snprintf(ports, sizeof ports, "%d", px.port);
        else
            snprintf(ports, sizeof ports, "%d,%d", cases[k].first_port, px.port);
        tcp_conninfo(ci, sizeof ci, cases[k].hosts, ports, "target_session_attrs=read-write");
        print_message("conninfo: %s\n", ci);
        uv_loop_t loop;
        uv_loop_init(&loop);
        db_pool_t *pool = pool_with(&loop, ci, 2, 16, short_connect);
        uint64_t t0 = uv_hrtime();
        while (db_pool_ready(pool) < 2 && uv_hrtime() - t0 < 8000000000ull)
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(db_pool_ready(pool), 2);
        job_t j = {.stmt = &q_double, .arg = "5"};
        ndone = 0;
        submit(pool, &j);
        assert_int_equal(run_until(&loop, &ndone, 1, 5000), 0);
        assert_string_equal(j.value, "10");
        assert_int_equal(check_keepalives(px.port), 2);
        close_pool(&loop, pool);
        uv_loop_close(&loop);
    }
    close(silent);
    th_child_stop(closing);
    th_proxy_stop(&px);
}

/* ---------------------------------------------------------------- notifications */

static int nlost, nnotify;
static int lost_ready[8];       /* db_pool_ready() when each "lost" came */
static db_pool_t *listen_pool;

static void on_notify(void *arg, const char *channel, const char *payload)
{
    if (channel == NULL) {
        if (nlost < 8)
            lost_ready[nlost] = db_pool_ready(listen_pool);
        nlost++;
    } else {
        nnotify++;
    }
}

/* "Notifications lost" comes once LISTEN is active (after the first
 * connect: count 1), after the listening connection is lost, from the
 * loop once the connection no longer counts as ready (count 2), and again
 * once LISTEN is active after the reconnect (count 3); NOTIFY works
 * before and after. The old pool called back from inside conn_broken,
 * while the broken connection still counted as ready, and never after
 * the reconnect. */
static void test_notify_lost(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    db_pool_t *pool = db_pool_new(&loop, conninfo, 1, 16);
    static const char *const ch[] = {"t_pool_ch"};
    db_pool_listen(pool, ch, 1, on_notify, NULL);
    listen_pool = pool;
    nlost = nnotify = 0;
    assert_int_equal(run_until(&loop, &nlost, 1, 5000), 0);

    PGconn *c = side();
    side_exec(c, "NOTIFY t_pool_ch, 'one'");
    assert_int_equal(run_until(&loop, &nnotify, 1, 5000), 0);

    side_exec(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                 " WHERE application_name = 'sentrad' AND datname = current_database()");
    assert_int_equal(run_until(&loop, &nlost, 2, 5000), 0);
    assert_int_equal(run_until(&loop, &nlost, 3, 10000), 0);
    /* Up when listening; lost: called once the connection is down. */
    assert_int_equal(lost_ready[0], 1);
    assert_int_equal(lost_ready[1], 0);
    assert_int_equal(lost_ready[2], 1);
    assert_int_equal(nlost, 3);
    side_exec(c, "NOTIFY t_pool_ch, 'two'");
    assert_int_equal(run_until(&loop, &nnotify, 2, 5000), 0);
    PQfinish(c);
    close_pool(&loop, pool);
    uv_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_failure_fails_one),
        cmocka_unit_test(test_quick_not_behind_slow),
        cmocka_unit_test(test_error_at_commit_alone),
        cmocka_unit_test(test_error_at_commit_pipelined),
        cmocka_unit_test(test_error_at_commit_in_group),
        cmocka_unit_test(test_cancel_never_hits_another),
        cmocka_unit_test(test_cancel_alone_stops_statement),
        cmocka_unit_test(test_57014_not_retried),
        cmocka_unit_test(test_prepared_bounded),
        cmocka_unit_test(test_queue_bounded),
        cmocka_unit_test(test_connect_hosts),
        cmocka_unit_test(test_notify_lost),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
