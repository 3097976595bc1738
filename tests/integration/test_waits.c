/*
 * test_waits.c: long polls and the notifications that wake them (issue 12,
 * item 7), against a sentrad of its own with two pool connections:
 *
 *   - A change that commits after a pull's snapshot, and whose NOTIFY the
 *     server handles before that pull's (empty) result arrives, must still
 *     end the long poll at once: the pull queries again instead of sleeping
 *     its whole wait. The pull is held inside PostgreSQL after its snapshot
 *     (a row-level security policy on sentra_change that waits for a flag,
 *     on the backend the pull runs on), and a second long poll, parked
 *     before, witnesses that the server has handled the NOTIFY (it answers
 *     with the change) before the held pull is let go.
 *   - The same for a StreamChanges stream, caught up, whose feed query is
 *     held the same way: it reads again at once instead of parking for
 *     its re-check interval.
 *
 * The bound on "at once" (15 s against a 60 s wait) is a sanity limit, not
 * a performance figure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>

#include "wire.h"

static th_server_t srv;
static int have_server;
static int listener;               /* backend pid of the LISTENing connection */
static char *district, *national;

#define PULL "/sentra.v1.SyncService/PullChanges"

static PGconn *db_nodelay(void)
{
    PGconn *db = th_db(&srv);
    assert_non_null(db);
    sql1(db, "SET sentra_test.nodelay = 'on'", 0, NULL);
    return db;
}

/* A pull request frame (no filter). */
static void send_pull(int fd, uint32_t sid, const char *token, const char *cursor, uint32_t wait_ms)
{
    Sentra__V1__PullChangesRequest p = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
    p.cursor = (char *)cursor;
    p.wait_ms = wait_ms;
    p.limit = 100;
    assert_int_equal(wire_send(fd, sid, PULL, &p.base, token, 90000), 0);
}

/* The answer of stream sid on fd as a PullChangesResponse (caller frees),
 * failing unless it is OK within timeout_ms. */
static Sentra__V1__PullChangesResponse *read_pull(int fd, uint32_t want, int timeout_ms)
{
    uint32_t sid = 0;
    Sentra__V1__Response *r = NULL;
    int got = wire_response(fd, &sid, &r, timeout_ms);
    if (got != 1)
        fail_msg("pull %u: no answer within %d ms (%s)", want, timeout_ms,
                 got == 0 ? "connection closed" : "timeout");
    assert_int_equal(sid, want);
    if ((int)r->code != SENTRA_OK)
        fail_msg("pull %u: %s %s", want, sentra_status_name(r->code), r->message);
    Sentra__V1__PullChangesResponse *p =
        sentra__v1__pull_changes_response__unpack(NULL, r->payload.len, r->payload.data);
    assert_non_null(p);
    sentra__v1__response__free_unpacked(r, NULL);
    return p;
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    if (!th_env_ok()) {
        fprintf(stderr, "test_waits: run through scripts/run-tests.sh (make test)\n");
        return -1;
    }
    static const char *const args[] = { "--db-pool", "2", NULL };
    if (th_server_start(&srv, "waits", args) != 0)
        return -1;
    have_server = 1;
    /* The LISTENing backend: the server's log names it (db_connected). */
    listener = listener_pid_wait(&srv, 10000);
    if (listener == 0)
        fprintf(stderr, "test_waits: no LISTENing backend found\n");
    district = th_token(&srv, "district", "18.71");
    national = th_token(&srv, "national", NULL);
    return district != NULL && national != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    if (have_server)
        th_server_free(&srv);
    free(district);
    free(national);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_change_announced_during_the_pull_query(void **state)
{
    if (listener == 0)
        fail_msg("the listening backend is not known");
    PGconn *db = db_nodelay();

    /* A record, and the feed's tail as a cursor. */
    sql1(db, "INSERT INTO sentra (id, regency_code, name, commodity, main_product, kbli_code,"
             " kbli_version, sector_group, status, formed_on) VALUES (gen_random_uuid(), '18.71', 'Sentra Uji Tunggu',"
             " 'Kopi', 'Kopi bubuk', '10761', 2020, 1, 1, '2020-01-02')", 0, NULL);
    char id[40];
    snprintf(id, sizeof(id), "%s", sql1(db, "SELECT id FROM sentra WHERE name = 'Sentra Uji Tunggu'", 0, NULL));
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    send_pull(fd, 1, district, "", 0);
    Sentra__V1__PullChangesResponse *p = read_pull(fd, 1, WIRE_IO_MS);
    assert_int_equal(p->n_changes, 1);
    char *cursor = strdup(p->next_cursor);
    sentra__v1__pull_changes_response__free_unpacked(p, NULL);
    close(fd);

    /* The witness: a long poll parked now (its query done, nothing to
     * find), woken by the change's NOTIFY. */
    int w = th_connect_raw(&srv);
    assert_true(w >= 0);
    send_pull(w, 7, national, cursor, 60000);
    usleep(300 * 1000);
    for (int i = 0; i < 100 && wait_running(db, "%sentra_change%", 1) != 0; i++)
        usleep(20 * 1000);

    /* Pulls on the other pool connection wait after their snapshot. */
    char lp[16];
    snprintf(lp, sizeof(lp), "%d", listener);
    const char *lv[1] = { lp };
    int other = atoi(sql1(db, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                              " AND pid <> pg_backend_pid() AND pid <> $1::int"
                              " AND backend_type = 'client backend' LIMIT 1", 1, lv));
    assert_int_not_equal(other, 0);
    char op[16];
    snprintf(op, sizeof(op), "%d", other);
    const char *v[1] = { op };
    sql1(db, "CREATE TABLE test_hold (pid int PRIMARY KEY, go boolean NOT NULL DEFAULT false)", 0, NULL);
    sql1(db, "INSERT INTO test_hold (pid) VALUES ($1::int)", 1, v);
    sql1(db,
         "CREATE FUNCTION test_hold_here() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$\n"
         "BEGIN\n"
         "  IF current_setting('sentra_test.nodelay', true) IS DISTINCT FROM 'on' THEN\n"
         "    FOR i IN 1..400 LOOP\n"
         "      EXIT WHEN NOT EXISTS (SELECT 1 FROM test_hold WHERE pid = pg_backend_pid() AND NOT go);\n"
         "      PERFORM pg_sleep(0.05);\n"
         "    END LOOP;\n"
         "  END IF;\n"
         "  RETURN true;\n"
         "END $$", 0, NULL);
    sql1(db, "ALTER TABLE sentra_change ENABLE ROW LEVEL SECURITY", 0, NULL);
    sql1(db, "ALTER TABLE sentra_change FORCE ROW LEVEL SECURITY", 0, NULL);
    sql1(db, "CREATE POLICY test_hold ON sentra_change USING (test_hold_here())", 0, NULL);

    /* The LISTENing connection busy for a moment, so that the pull goes to
     * the other one; then free again to hear the NOTIFY. */
    int a = th_connect_raw(&srv), b = th_connect_raw(&srv);
    assert_true(a >= 0 && b >= 0);
    Sentra__V1__SleepRequest sl = SENTRA__V1__SLEEP_REQUEST__INIT;
    sl.ms = 400;
    assert_int_equal(wire_send(a, 1, "/sentra.v1.SystemService/Sleep", &sl.base, NULL, 10000), 0);
    assert_int_not_equal(wait_running(db, "%pg_sleep%", 5000), 0);
    send_pull(b, 1, district, cursor, 60000);
    assert_int_equal(wait_running(db, "%sentra_change%", 5000), other);
    uint32_t sid;
    Sentra__V1__Response *r = NULL;
    assert_int_equal(wire_response(a, &sid, &r, WIRE_IO_MS), 1);
    assert_int_equal(r->code, SENTRA_OK);
    sentra__v1__response__free_unpacked(r, NULL);

    /* The change commits after the held pull's snapshot. */
    const char *idv[1] = { id };
    sql1(db, "UPDATE sentra SET name = name || ' (diubah)' WHERE id = $1::uuid", 1, idv);
    /* The witness answers with it: the server has handled the NOTIFY. */
    p = read_pull(w, 7, WIRE_IO_MS);
    assert_int_equal(p->n_changes, 1);
    sentra__v1__pull_changes_response__free_unpacked(p, NULL);
    close(w);

    /* Only now does the held pull find its (empty) page. It must not sleep
     * for its 60 s: it queries again and answers with the change. */
    sql1(db, "UPDATE test_hold SET go = true", 0, NULL);
    int64_t t0 = th_now_ms();
    p = read_pull(b, 1, 15000);
    int64_t took = th_now_ms() - t0;
    assert_int_equal(p->n_changes, 1);
    assert_string_equal(p->changes[0]->id, id);
    sentra__v1__pull_changes_response__free_unpacked(p, NULL);
    print_message("held pull answered %lld ms after its query was let go\n", (long long)took);
    close(a);
    close(b);

    sql1(db, "DROP POLICY test_hold ON sentra_change", 0, NULL);
    sql1(db, "ALTER TABLE sentra_change NO FORCE ROW LEVEL SECURITY", 0, NULL);
    sql1(db, "ALTER TABLE sentra_change DISABLE ROW LEVEL SECURITY", 0, NULL);
    free(cursor);
    PQfinish(db);
}

/* The same rule for StreamChanges: a stream caught up, whose feed query
 * is held after its snapshot while a change commits and is announced,
 * must not park for its re-check interval (30 s) after that empty page:
 * it reads again at once and sends the change. */
static void test_change_announced_during_the_stream_query(void **state)
{
    if (listener == 0)
        fail_msg("the listening backend is not known");
    PGconn *db = db_nodelay();

    sql1(db, "INSERT INTO sentra (id, regency_code, name, commodity, main_product, kbli_code,"
             " kbli_version, sector_group, status, formed_on) VALUES (gen_random_uuid(), '18.71', 'Sentra Uji Arus',"
             " 'Kopi', 'Kopi bubuk', '10761', 2020, 1, 1, '2020-01-02')", 0, NULL);
    char id[40];
    snprintf(id, sizeof(id), "%s", sql1(db, "SELECT id FROM sentra WHERE name = 'Sentra Uji Arus'", 0, NULL));
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    send_pull(fd, 1, district, "", 0);
    Sentra__V1__PullChangesResponse *p = read_pull(fd, 1, WIRE_IO_MS);
    char *cursor = strdup(p->next_cursor);
    sentra__v1__pull_changes_response__free_unpacked(p, NULL);
    close(fd);

    int w = th_connect_raw(&srv);
    assert_true(w >= 0);
    send_pull(w, 7, national, cursor, 60000);
    usleep(300 * 1000);
    for (int i = 0; i < 100 && wait_running(db, "%sentra_change%", 1) != 0; i++)
        usleep(20 * 1000);

    char lp[16];
    snprintf(lp, sizeof(lp), "%d", listener);
    const char *lv[1] = { lp };
    int other = atoi(sql1(db, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                              " AND pid <> pg_backend_pid() AND pid <> $1::int"
                              " AND backend_type = 'client backend' LIMIT 1", 1, lv));
    assert_int_not_equal(other, 0);
    char op[16];
    snprintf(op, sizeof(op), "%d", other);
    const char *v[1] = { op };
    sql1(db, "DELETE FROM test_hold", 0, NULL);
    sql1(db, "INSERT INTO test_hold (pid) VALUES ($1::int)", 1, v);
    sql1(db, "ALTER TABLE sentra_change ENABLE ROW LEVEL SECURITY", 0, NULL);
    sql1(db, "ALTER TABLE sentra_change FORCE ROW LEVEL SECURITY", 0, NULL);
    sql1(db, "CREATE POLICY test_hold ON sentra_change USING (test_hold_here())", 0, NULL);

    int a = th_connect_raw(&srv), b = th_connect_raw(&srv);
    assert_true(a >= 0 && b >= 0);
    Sentra__V1__SleepRequest sl = SENTRA__V1__SLEEP_REQUEST__INIT;
    sl.ms = 400;
    assert_int_equal(wire_send(a, 1, "/sentra.v1.SystemService/Sleep", &sl.base, NULL, 10000), 0);
    assert_int_not_equal(wait_running(db, "%pg_sleep%", 5000), 0);
    Sentra__V1__StreamChangesRequest sr = SENTRA__V1__STREAM_CHANGES_REQUEST__INIT;
    sr.cursor = cursor;
    assert_int_equal(wire_send(b, 1, "/sentra.v1.SyncService/StreamChanges", &sr.base, district, 90000), 0);
    assert_int_equal(wait_running(db, "%sentra_change%", 5000), other);
    uint32_t sid;
    Sentra__V1__Response *r = NULL;
    assert_int_equal(wire_response(a, &sid, &r, WIRE_IO_MS), 1);
    assert_int_equal(r->code, SENTRA_OK);
    sentra__v1__response__free_unpacked(r, NULL);

    const char *idv[1] = { id };
    sql1(db, "UPDATE sentra SET name = name || ' (diubah)' WHERE id = $1::uuid", 1, idv);
    p = read_pull(w, 7, WIRE_IO_MS);
    assert_int_equal(p->n_changes, 1);
    sentra__v1__pull_changes_response__free_unpacked(p, NULL);
    close(w);

    /* Let the held query go: its page is empty; the change must follow
     * on the stream at once, not after the 30 s re-check. */
    sql1(db, "UPDATE test_hold SET go = true", 0, NULL);
    int64_t t0 = th_now_ms();
    int found = 0, msgs = 0;
    while (!found && th_now_ms() - t0 < 15000) {
        r = NULL;
        int got = wire_response(b, &sid, &r, (int)(15000 - (th_now_ms() - t0)));
        if (got != 1)
            break;
        assert_int_equal(r->code, SENTRA_OK);
        Sentra__V1__StreamChangesResponse *m =
            sentra__v1__stream_changes_response__unpack(NULL, r->payload.len, r->payload.data);
        assert_non_null(m);
        msgs++;
        for (size_t i = 0; i < m->n_changes; i++)
            found |= strcmp(m->changes[i]->id, id) == 0 && m->changes[i]->version == 2;
        sentra__v1__stream_changes_response__free_unpacked(m, NULL);
        sentra__v1__response__free_unpacked(r, NULL);
    }
    int64_t took = th_now_ms() - t0;
    print_message("the held stream sent the change %lld ms after its query was let go (%d messages)\n",
                  (long long)took, msgs);
    assert_true(found);
    close(a);
    close(b);

    sql1(db, "DROP POLICY test_hold ON sentra_change", 0, NULL);
    sql1(db, "ALTER TABLE sentra_change NO FORCE ROW LEVEL SECURITY", 0, NULL);
    sql1(db, "ALTER TABLE sentra_change DISABLE ROW LEVEL SECURITY", 0, NULL);
    free(cursor);
    PQfinish(db);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_announced_during_the_pull_query),
        cmocka_unit_test(test_change_announced_during_the_stream_query),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
