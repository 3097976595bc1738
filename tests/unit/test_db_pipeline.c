/*
 * test_db_pipeline.c: the PostgreSQL pool (server/db/db.c) against a real
 * PostgreSQL (a database of its own in the test cluster), without a server:
 * quick statements sent in one turn of the loop share one Sync (a group),
 * so a failure in a group must fail only its own query, and the queries
 * the failure skipped must run again, a new statement's Parse included;
 * quick statements must not wait behind a slow one.
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
#include <uv.h>

#include "db.h"
#include "harness.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_failure_fails_one),
        cmocka_unit_test(test_quick_not_behind_slow),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
