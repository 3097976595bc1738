/*
 * test_stop.c: how calls end when a connection or the server goes away
 * (issue 13, item 15), against a sentrad of its own (with a long grace
 * period, so that waiting it out would show):
 *
 *   - a protocol error: the calls in flight on that connection are
 *     answered CANCELLED before the GOAWAY, whose last_stream_id covers
 *     them, and their SQL stops;
 *   - a graceful stop (SIGTERM): parked long polls answer at once with an
 *     empty page (OK, no changes, a cursor), a request in flight is still
 *     answered, every connection gets its GOAWAY, and the server exits 0
 *     well before the grace period ends.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "wire.h"

static th_server_t srv;
static int have_server;
static char *district;

#define GRACE_MS "30000"

static void send_sleep(int fd, uint32_t sid, uint32_t ms)
{
    Sentra__V1__SleepRequest sl = SENTRA__V1__SLEEP_REQUEST__INIT;
    sl.ms = ms;
    assert_int_equal(wire_send(fd, sid, "/sentra.v1.SystemService/Sleep", &sl.base, NULL, 60000), 0);
}

static void send_poll(int fd, uint32_t sid, const char *cursor)
{
    Sentra__V1__PullChangesRequest p = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
    p.cursor = (char *)cursor;
    p.wait_ms = 60000;
    assert_int_equal(wire_send(fd, sid, "/sentra.v1.SyncService/PullChanges", &p.base, district, 90000), 0);
}

/* pg_sleep calls running for this server's database. */
static int sleeps(void)
{
    PGconn *db = th_db(&srv);
    assert_non_null(db);
    int n = atoi(sql1(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                          " AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%pg_sleep%'",
                      0, NULL));
    PQfinish(db);
    return n;
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    if (!th_env_ok()) {
        fprintf(stderr, "test_stop: run through scripts/run-tests.sh (make test)\n");
        return -1;
    }
    static const char *const args[] = { "--grace", GRACE_MS, NULL };
    if (th_server_start(&srv, "stop", args) != 0)
        return -1;
    have_server = 1;
    district = th_token(&srv, "district", "18.71");
    return district != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    if (have_server)
        th_server_free(&srv);
    free(district);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_protocol_error_answers_calls_in_flight(void **state)
{
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    send_sleep(fd, 1, 20000);
    send_sleep(fd, 3, 20000);
    for (int i = 0; i < 100 && sleeps() < 2; i++)
        usleep(50 * 1000);
    assert_int_equal(sleeps(), 2);

    /* A client never sends RESPONSE frames. */
    uint8_t h[SENTRA_FRAME_HEADER_LEN];
    sentra_frame_header(h, SENTRA_FRAME_RESPONSE, 0, 5, 0);
    assert_int_equal(th_send_all(fd, h, sizeof(h)), 0);

    /* Both calls answered CANCELLED, then the GOAWAY naming them, then the
     * end of the connection. */
    int cancelled = 0, goaway = 0;
    uint32_t last = 0;
    while (!goaway) {
        wire_frame_t f;
        int r = wire_next(fd, &f, WIRE_IO_MS);
        if (r != 1)
            fail_msg("the connection ended (%d) after %d answers and no GOAWAY", r, cancelled);
        if (f.type == SENTRA_FRAME_RESPONSE) {
            Sentra__V1__Response *resp = sentra__v1__response__unpack(NULL, f.len, f.payload);
            assert_non_null(resp);
            assert_true(f.sid == 1 || f.sid == 3);
            assert_int_equal(resp->code, SENTRA_CANCELLED);
            assert_non_null(strstr(resp->message, "protocol error"));
            sentra__v1__response__free_unpacked(resp, NULL);
            cancelled++;
        } else {
            assert_int_equal(f.type, SENTRA_FRAME_GOAWAY);
            Sentra__V1__GoAway *g = sentra__v1__go_away__unpack(NULL, f.len, f.payload);
            assert_non_null(g);
            assert_int_equal(g->code, SENTRA_INVALID_ARGUMENT);
            last = g->last_stream_id;
            sentra__v1__go_away__free_unpacked(g, NULL);
            goaway = 1;
        }
        wire_frame_free(&f);
    }
    assert_int_equal(cancelled, 2);
    assert_int_equal(last, 3);
    uint8_t b;
    assert_int_equal(th_read_full(fd, &b, 1, th_now_ms() + WIRE_IO_MS), 0);
    close(fd);
    /* Their SQL stopped too. */
    for (int i = 0; i < 100 && sleeps() > 0; i++)
        usleep(50 * 1000);
    assert_int_equal(sleeps(), 0);
    assert_int_equal(wire_ping(&srv), SENTRA_OK);
}

/* Last: it stops the server. */
static void test_stop_answers_parked_long_polls(void **state)
{
    enum { N = 3 };
    int fds[N];
    /* The feed's tail, then long polls parked there (nothing to find). */
    int fd0 = th_connect_raw(&srv);
    assert_true(fd0 >= 0);
    Sentra__V1__PullChangesRequest p = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
    assert_int_equal(wire_send(fd0, 1, "/sentra.v1.SyncService/PullChanges", &p.base, district, 10000), 0);
    uint32_t sid;
    Sentra__V1__Response *r = NULL;
    assert_int_equal(wire_response(fd0, &sid, &r, WIRE_IO_MS), 1);
    assert_int_equal(r->code, SENTRA_OK);
    Sentra__V1__PullChangesResponse *page =
        sentra__v1__pull_changes_response__unpack(NULL, r->payload.len, r->payload.data);
    assert_non_null(page);
    char *cursor = strdup(page->next_cursor);
    sentra__v1__pull_changes_response__free_unpacked(page, NULL);
    sentra__v1__response__free_unpacked(r, NULL);
    close(fd0);

    for (int i = 0; i < N; i++) {
        fds[i] = th_connect_raw(&srv);
        assert_true(fds[i] >= 0);
        send_poll(fds[i], 1, cursor);
    }
    /* And on the first connection, an ordinary request in flight. */
    send_sleep(fds[0], 3, 1500);
    usleep(500 * 1000);        /* the polls have queried and parked */

    int64_t t0 = th_now_ms();
    assert_int_equal(kill(srv.pid, SIGTERM), 0);
    for (int i = 0; i < N; i++) {
        int poll_ok = 0, sleep_ok = i != 0, goaway = 0;
        while (!(poll_ok && sleep_ok && goaway)) {
            wire_frame_t f;
            int got = wire_next(fds[i], &f, 10000);
            if (got != 1)
                fail_msg("connection %d: %s before its answers (poll %d, goaway %d)", i,
                         got == 0 ? "closed" : "nothing for 10 s", poll_ok, goaway);
            if (f.type == SENTRA_FRAME_GOAWAY) {
                Sentra__V1__GoAway *g = sentra__v1__go_away__unpack(NULL, f.len, f.payload);
                assert_non_null(g);
                assert_int_equal(g->code, SENTRA_UNAVAILABLE);
                assert_true(g->last_stream_id >= (i == 0 ? 3u : 1u));
                sentra__v1__go_away__free_unpacked(g, NULL);
                goaway = 1;
            } else {
                assert_int_equal(f.type, SENTRA_FRAME_RESPONSE);
                Sentra__V1__Response *resp = sentra__v1__response__unpack(NULL, f.len, f.payload);
                assert_non_null(resp);
                assert_int_equal(resp->code, SENTRA_OK);
                if (f.sid == 1) {
                    /* The empty page: no changes, a cursor to go on from. */
                    Sentra__V1__PullChangesResponse *pr = sentra__v1__pull_changes_response__unpack(
                        NULL, resp->payload.len, resp->payload.data);
                    assert_non_null(pr);
                    assert_int_equal(pr->n_changes, 0);
                    assert_false(pr->more);
                    assert_string_equal(pr->next_cursor, cursor);
                    sentra__v1__pull_changes_response__free_unpacked(pr, NULL);
                    poll_ok = 1;
                } else {
                    assert_int_equal(f.sid, 3);
                    sleep_ok = 1;
                }
                sentra__v1__response__free_unpacked(resp, NULL);
            }
            wire_frame_free(&f);
        }
        uint8_t b;
        assert_int_equal(th_read_full(fds[i], &b, 1, th_now_ms() + 10000), 0);
        close(fds[i]);
    }
    /* It exits by itself, with status 0, long before the grace period. */
    int status = -1;
    for (int i = 0; i < 100; i++) {
        if (waitpid(srv.pid, &status, WNOHANG) == srv.pid)
            break;
        usleep(100 * 1000);
    }
    int64_t took = th_now_ms() - t0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(took < atoi(GRACE_MS) / 2);
    srv.pid = 0;
    srv.port = 0;
    print_message("stopped in %lld ms with %d long polls parked\n", (long long)took, N);
    free(cursor);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol_error_answers_calls_in_flight),
        cmocka_unit_test(test_stop_answers_parked_long_polls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
