/*
 * test_harness.c: the integration-test harness itself (tests/lib/harness.c)
 * against the real sentrad and test cluster: start, tokens, database
 * access, raw sockets, graceful stop, restart on the same database, a
 * PostgreSQL outage the server rides out, and a kill. Other integration
 * tests rely on all of these behaving as harness.h says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sentra/sentra.h>

#include "harness.h"

static th_server_t srv;
static char *national;

static sentra_client_t *client(const char *token)
{
    sentra_client_opts_t o;
    sentra_client_t *c = NULL;
    char addr[96];
    snprintf(addr, sizeof(addr), "%s:%d", srv.host, srv.port);
    sentra_client_opts_init(&o);
    o.address = addr;
    o.token = token;
    o.default_deadline_ms = 5000;
    assert_int_equal(sentra_client_new(&c, &o), 0);
    return c;
}

/* The number of regions under parent, or -1 when the call fails. */
static int count_regions(const char *token, const char *parent)
{
    sentra_client_t *c = client(token);
    Sentra__V1__ListRegionsRequest req = SENTRA__V1__LIST_REGIONS_REQUEST__INIT;
    Sentra__V1__ListRegionsResponse *resp = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    req.parent_code = (char *)parent;
    int n = -1;
    if (sentra_list_regions(c, &req, &resp, NULL, &st) == 0) {
        n = (int)resp->n_regions;
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
    sentra_status_clear(&st);
    sentra_client_free(c);
    return n;
}

static long q_long(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    long v = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void start_and_tokens(void **state)
{
    (void)state;
    assert_int_equal(th_server_start(&srv, "t_harness", NULL), 0);
    assert_true(srv.port > 0);
    assert_true(srv.pid > 0);
    assert_string_equal(srv.dbname, "t_harness");

    /* The server migrated its fresh database at start. */
    PGconn *db = th_db(&srv);
    assert_non_null(db);
    assert_true(q_long(db, "SELECT count(*) FROM schema_migrations") >= 1);
    assert_int_equal(q_long(db, "SELECT count(*) FROM region WHERE level = 'province'"), 38);

    national = th_token(&srv, "national", NULL);
    assert_non_null(national);
    assert_int_equal(strncmp(national, "snt_", 4), 0);
    assert_null(strchr(national, '\n'));
    char *district = th_token(&srv, "district", "18.71");
    assert_non_null(district);
    assert_string_not_equal(district, national);
    /* Refusals come back as NULL. */
    assert_null(th_token(&srv, "district", "18"));
    assert_null(th_token(&srv, "nosuchrole", NULL));
    assert_int_equal(q_long(db, "SELECT count(*) FROM api_token"), 2);
    PQfinish(db);

    assert_int_equal(count_regions(national, "18"), 15);
    assert_int_equal(count_regions("snt_not_a_token", "18"), -1);
    free(district);
}

static void raw_socket(void **state)
{
    (void)state;
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    /* Garbage in (not a frame, not HTTP): the server closes the
     * connection (EOF or reset). */
    static const char junk[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff garbage";
    assert_int_equal(write(fd, junk, sizeof(junk) - 1), (ssize_t)(sizeof(junk) - 1));
    char buf[256];
    ssize_t n;
    int rounds = 0;
    while ((n = read(fd, buf, sizeof(buf))) > 0 && ++rounds < 100)
        ;
    assert_true(n <= 0);
    close(fd);
}

static void stop_and_restart(void **state)
{
    (void)state;
    int old_port = srv.port;
    assert_int_equal(th_server_stop(&srv), 0);   /* a clean exit on SIGTERM */
    assert_int_equal(srv.pid, 0);
    assert_int_equal(th_server_stop(&srv), -1);  /* not running */
    th_server_t probe = srv;
    probe.port = old_port;
    assert_int_equal(th_connect_raw(&probe), -1);

    assert_int_equal(th_server_restart(&srv), 0);
    assert_true(srv.port > 0);
    /* Same database: the tokens made before still work. */
    assert_int_equal(count_regions(national, "18"), 15);
    assert_int_equal(th_server_restart(&srv), -1);  /* still running */
}

static void postgres_outage(void **state)
{
    (void)state;
    assert_int_equal(th_pg_stop(), 0);
    assert_null(th_db(&srv));
    /* The server stays up without its database... */
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(th_pg_start(), 0);
    /* ...and serves again once it is back (the pool reconnects with
     * backoff, so allow it some seconds). */
    int n = -1;
    for (int i = 0; i < 100 && n != 15; i++) {
        n = count_regions(national, "18");
        if (n != 15)
            usleep(200 * 1000);
    }
    if (n != 15) {
        /* Say why: a server that died (or was signalled) vs. one that
         * never reconnected. */
        int st;
        pid_t r = waitpid(srv.pid, &st, WNOHANG);
        fprintf(stderr, "server pid %ld %s; last lines of %s:\n", (long)srv.pid,
                r == srv.pid ? "has exited" : "is running", srv.logpath);
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "tail -n 15 '%s' >&2", srv.logpath);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
        if (r == srv.pid)
            srv.pid = 0;
    }
    assert_int_equal(n, 15);
}

static void kill_hard(void **state)
{
    (void)state;
    pid_t pid = srv.pid;
    th_server_kill(&srv, SIGKILL);
    assert_int_equal(srv.pid, 0);
    assert_int_equal(kill(pid, 0), -1);   /* reaped: gone */
    th_server_free(&srv);
    free(national);
}

static int group_setup(void **state)
{
    (void)state;
    if (!th_env_ok()) {
        fprintf(stderr, "test_harness: needs the environment of scripts/run-tests.sh\n");
        return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(start_and_tokens),
        cmocka_unit_test(raw_socket),
        cmocka_unit_test(stop_and_restart),
        cmocka_unit_test(postgres_outage),
        cmocka_unit_test(kill_hard),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
