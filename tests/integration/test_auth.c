/*
 * test_auth.c: tokens as the call core checks them (issue 12, items 6 and
 * 8), against a sentrad of its own whose database connections all pass
 * through a proxy in this program, which records every byte:
 *
 *   - secrets never reach PostgreSQL: not from `sentrad token create`, not
 *     from CreateToken (neither sent nor returned), not from a token check
 *     of a valid or an unknown token; only their SHA-256 goes.
 *   - a token check that started before a revocation, and answers after the
 *     revocation's NOTIFY emptied the cache, does not fill the cache again:
 *     the next request with that token is refused. The check is held inside
 *     PostgreSQL (a row-level security policy that waits for a flag) so
 *     that the order is forced, not hoped for.
 *   - a revocation committed while the listening connection is down (its
 *     NOTIFY is heard by nobody) is seen: requests meanwhile, and after the
 *     connection is back, are refused.
 *
 * The server's pool has two connections; the first LISTENs. Which one a
 * query runs on is checked in pg_stat_activity where it matters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "wire.h"

static th_server_t srv;
static int have_server;
static char direct_conninfo[512];  /* the database, not through the proxy */
static int listener;               /* backend pid of the LISTENing connection */

/* ---------------------------------------------------------------- the proxy */

/*
 * A Unix-socket proxy in front of the cluster's socket: sentrad (and
 * `sentrad token create`) connect to it, it connects on to PostgreSQL and
 * copies bytes both ways, keeping a copy of everything.
 */
#define PROXY_PAIRS 64

static struct {
    pthread_t thread;
    int running, stop;
    int lfd;                        /* listening socket */
    char dir[64];                   /* its directory */
    char target[108];               /* the cluster's socket path */
    int fds[PROXY_PAIRS][2];        /* client side, server side; -1 when free */
    pthread_mutex_t mu;
    uint8_t *seen;                  /* every byte, both directions */
    size_t nseen, capseen;
} px;

static void px_record(const uint8_t *b, size_t n)
{
    pthread_mutex_lock(&px.mu);
    if (px.nseen + n > px.capseen) {
        size_t cap = px.capseen ? px.capseen : 1 << 20;
        while (cap < px.nseen + n)
            cap *= 2;
        px.seen = realloc(px.seen, cap);
        px.capseen = cap;
    }
    memcpy(px.seen + px.nseen, b, n);
    px.nseen += n;
    pthread_mutex_unlock(&px.mu);
}

/* Whether s (as bytes) went through the proxy either way. */
static int px_saw(const char *s)
{
    pthread_mutex_lock(&px.mu);
    int r = px.seen != NULL && memmem(px.seen, px.nseen, s, strlen(s)) != NULL;
    pthread_mutex_unlock(&px.mu);
    return r;
}

static void px_close_pair(int i)
{
    close(px.fds[i][0]);
    close(px.fds[i][1]);
    px.fds[i][0] = px.fds[i][1] = -1;
}

static void *px_main(void *arg)
{
    (void)arg;
    uint8_t buf[65536];
    while (!px.stop) {
        struct pollfd pf[1 + 2 * PROXY_PAIRS];
        int idx[1 + 2 * PROXY_PAIRS], n = 0;
        pf[n].fd = px.lfd;
        pf[n].events = POLLIN;
        idx[n++] = -1;
        for (int i = 0; i < PROXY_PAIRS; i++)
            for (int k = 0; k < 2; k++)
                if (px.fds[i][k] >= 0) {
                    pf[n].fd = px.fds[i][k];
                    pf[n].events = POLLIN;
                    idx[n++] = i * 2 + k;
                }
        if (poll(pf, (nfds_t)n, 100) <= 0)
            continue;
        for (int j = 0; j < n; j++) {
            if (!(pf[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (idx[j] < 0) {
                int c = accept(px.lfd, NULL, NULL);
                if (c < 0)
                    continue;
                int s = socket(AF_UNIX, SOCK_STREAM, 0);
                struct sockaddr_un a = { .sun_family = AF_UNIX };
                snprintf(a.sun_path, sizeof(a.sun_path), "%s", px.target);
                int slot = -1;
                for (int i = 0; i < PROXY_PAIRS && slot < 0; i++)
                    if (px.fds[i][0] < 0)
                        slot = i;
                if (s < 0 || slot < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
                    close(c);
                    if (s >= 0)
                        close(s);
                    continue;
                }
                px.fds[slot][0] = c;
                px.fds[slot][1] = s;
                continue;
            }
            int i = idx[j] / 2, k = idx[j] % 2;
            if (px.fds[i][k] < 0)
                continue;
            ssize_t got = read(px.fds[i][k], buf, sizeof(buf));
            if (got <= 0) {
                px_close_pair(i);
                continue;
            }
            px_record(buf, (size_t)got);
            if (th_send_all(px.fds[i][1 - k], buf, (size_t)got) != 0)
                px_close_pair(i);
        }
    }
    return NULL;
}

/* conninfo's value for key (no quoting in the test cluster's). */
static void conninfo_get(const char *conninfo, const char *key, char *out, size_t outlen)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "%s=", key);
    const char *p = strstr(conninfo, pat);
    out[0] = '\0';
    if (p == NULL)
        return;
    p += strlen(pat);
    size_t n = strcspn(p, " ");
    snprintf(out, outlen, "%.*s", (int)n, p);
}

/* Starts the proxy for srv's database; rewrites srv.db_conninfo to it. */
static int px_start(void)
{
    char host[80], port[16], dbname[64];
    conninfo_get(srv.db_conninfo, "host", host, sizeof(host));
    conninfo_get(srv.db_conninfo, "port", port, sizeof(port));
    conninfo_get(srv.db_conninfo, "dbname", dbname, sizeof(dbname));
    if (host[0] != '/') {
        fprintf(stderr, "test_auth: the cluster is not on a Unix socket (%s)\n", srv.db_conninfo);
        return -1;
    }
    snprintf(px.target, sizeof(px.target), "%s/.s.PGSQL.%s", host, port);
    /* In the suite's scratch directory when its path is short enough for
     * a socket (sun_path holds 108 bytes). */
    const char *tmp = getenv("SENTRA_TEST_TMP");
    if (tmp == NULL || strlen(tmp) > 40)
        tmp = "/tmp";
    snprintf(px.dir, sizeof(px.dir), "%s/px.XXXXXX", tmp);
    if (mkdtemp(px.dir) == NULL)
        return -1;
    for (int i = 0; i < PROXY_PAIRS; i++)
        px.fds[i][0] = px.fds[i][1] = -1;
    pthread_mutex_init(&px.mu, NULL);
    px.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s/.s.PGSQL.%s", px.dir, port);
    if (px.lfd < 0 || bind(px.lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(px.lfd, 64) != 0) {
        perror("test_auth: proxy");
        return -1;
    }
    if (pthread_create(&px.thread, NULL, px_main, NULL) != 0)
        return -1;
    px.running = 1;
    snprintf(direct_conninfo, sizeof(direct_conninfo), "%s", srv.db_conninfo);
    snprintf(srv.db_conninfo, sizeof(srv.db_conninfo), "host=%s port=%s dbname=%s user=sentra",
             px.dir, port, dbname);
    return 0;
}

static void px_stop(void)
{
    if (!px.running)
        return;
    px.stop = 1;
    pthread_join(px.thread, NULL);
    for (int i = 0; i < PROXY_PAIRS; i++)
        if (px.fds[i][0] >= 0)
            px_close_pair(i);
    close(px.lfd);
    char path[240];
    snprintf(path, sizeof(path), "%s/.s.PGSQL.%s", px.dir, strrchr(px.target, '.') + 1);
    unlink(path);
    rmdir(px.dir);
    free(px.seen);
    px.running = 0;
}

/* ---------------------------------------------------------------- helpers */

/* The database, straight (never through the proxy). */
static PGconn *db_direct(void)
{
    PGconn *db = PQconnectdb(direct_conninfo);
    if (PQstatus(db) != CONNECTION_OK)
        fail_msg("cannot connect to %s: %s", direct_conninfo, PQerrorMessage(db));
    /* This session's statements are not held by the delay policy below. */
    sql1(db, "SET sentra_test.nodelay = 'on'", 0, NULL);
    return db;
}

/* The hex SHA-256 of secret, computed by PostgreSQL. */
static void sha256_hex(PGconn *db, const char *secret, char *out, size_t outlen)
{
    const char *p[1] = { secret };
    snprintf(out, outlen, "%s", sql1(db, "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", 1, p));
}

/* The id of the token with this secret. */
static void token_id(PGconn *db, const char *secret, char *out, size_t outlen)
{
    const char *p[1] = { secret };
    snprintf(out, outlen, "%s",
             sql1(db, "SELECT id FROM api_token WHERE secret_hash = sha256(convert_to($1, 'UTF8'))", 1, p));
}

static void revoke_token(PGconn *db, const char *id)
{
    const char *p[1] = { id };
    sql1(db, "UPDATE api_token SET revoked_at = now() WHERE id = $1::uuid", 1, p);
}

/*
 * The delay: while test_delay holds a row (id, go = false), reading that
 * token's row of api_token waits (up to 15 s) inside the statement, after
 * its snapshot was taken. Sessions with sentra_test.nodelay = on (ours) are
 * not held.
 */
static void delay_install(PGconn *db)
{
    sql1(db, "CREATE TABLE IF NOT EXISTS test_delay (id uuid PRIMARY KEY, go boolean NOT NULL DEFAULT false)",
         0, NULL);
    sql1(db,
         "CREATE OR REPLACE FUNCTION test_delay_row(t uuid) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$\n"
         "BEGIN\n"
         "  IF current_setting('sentra_test.nodelay', true) IS DISTINCT FROM 'on' THEN\n"
         "    FOR i IN 1..300 LOOP\n"
         "      EXIT WHEN NOT EXISTS (SELECT 1 FROM test_delay WHERE id = t AND NOT go);\n"
         "      PERFORM pg_sleep(0.05);\n"
         "    END LOOP;\n"
         "  END IF;\n"
         "  RETURN true;\n"
         "END $$", 0, NULL);
    sql1(db, "ALTER TABLE api_token ENABLE ROW LEVEL SECURITY", 0, NULL);
    sql1(db, "ALTER TABLE api_token FORCE ROW LEVEL SECURITY", 0, NULL);
    sql1(db, "DROP POLICY IF EXISTS test_delay ON api_token", 0, NULL);
    sql1(db, "CREATE POLICY test_delay ON api_token USING (test_delay_row(id))", 0, NULL);
}

static void delay_remove(PGconn *db)
{
    sql1(db, "DROP POLICY IF EXISTS test_delay ON api_token", 0, NULL);
    sql1(db, "ALTER TABLE api_token NO FORCE ROW LEVEL SECURITY", 0, NULL);
    sql1(db, "ALTER TABLE api_token DISABLE ROW LEVEL SECURITY", 0, NULL);
}

static void send_sleep(int fd, uint32_t sid, uint32_t ms)
{
    Sentra__V1__SleepRequest sl = SENTRA__V1__SLEEP_REQUEST__INIT;
    sl.ms = ms;
    assert_int_equal(wire_send(fd, sid, "/sentra.v1.SystemService/Sleep", &sl.base, NULL, 10000), 0);
}

static int expect_code(int fd, uint32_t want_sid)
{
    uint32_t sid = 0;
    Sentra__V1__Response *r = NULL;
    int got = wire_response(fd, &sid, &r, WIRE_IO_MS);
    if (got != 1)
        fail_msg("no answer for stream %u (%s)", want_sid, got == 0 ? "closed" : "timeout");
    assert_int_equal(sid, want_sid);
    int code = r->code;
    sentra__v1__response__free_unpacked(r, NULL);
    return code;
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    if (!th_env_ok()) {
        fprintf(stderr, "test_auth: run through scripts/run-tests.sh (make test)\n");
        return -1;
    }
    /* debug: the log line of a revocation heard (which this test waits
     * for) is then there with any version of the server. */
    static const char *const args[] = { "--db-pool", "2", "--log-level", "debug", NULL };
    if (th_server_start(&srv, "auth", args) != 0)
        return -1;
    have_server = 1;
    /* Again, through the proxy. The LISTENing backend is the one the
     * server's log names (db_connected ... listen=1) after this start. */
    if (th_server_stop(&srv) != 0 || px_start() != 0)
        return -1;
    int on = log_count(&srv, "token_cache_on");
    int listens = log_count(&srv, " listen=1 ");
    if (th_server_restart(&srv) != 0)
        return -1;
    /* Until the server heard its own probe it caches no token; wait for
     * that, so that the tests below see caching at work. */
    if (!log_wait(&srv, "token_cache_on", on + 1, 10000))
        fprintf(stderr, "test_auth: the server did not say token_cache_on\n");
    if (log_wait(&srv, " listen=1 ", listens + 1, 10000))
        listener = listener_pid_log(&srv);
    if (listener == 0)
        fprintf(stderr, "test_auth: no LISTENing backend found\n");
    return 0;
}

static int teardown(void **state)
{
    if (have_server)
        th_server_free(&srv);
    px_stop();
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_secrets_never_reach_postgres(void **state)
{
    PGconn *db = db_direct();
    char admin_hash[80], dist_hash[80], unknown_hash[80];

    /* sentrad token create (through the proxy: srv.db_conninfo). */
    char *admin = th_token(&srv, "admin", NULL);
    assert_non_null(admin);

    /* CreateToken through the server. */
    Sentra__V1__CreateTokenRequest ct = SENTRA__V1__CREATE_TOKEN_REQUEST__INIT;
    ct.role = SENTRA__V1__ROLE__ROLE_DISTRICT;
    ct.region_code = "18.71";
    ct.label = "made by CreateToken";
    Sentra__V1__Response *r = NULL;
    assert_int_equal(wire_call(&srv, "/sentra.v1.TokenService/CreateToken", &ct.base, admin, &r), SENTRA_OK);
    Sentra__V1__CreateTokenResponse *made =
        sentra__v1__create_token_response__unpack(NULL, r->payload.len, r->payload.data);
    assert_non_null(made);
    assert_int_equal(strlen(made->secret), 56);
    char *district = strdup(made->secret);
    sentra__v1__create_token_response__free_unpacked(made, NULL);
    sentra__v1__response__free_unpacked(r, NULL);

    /* Token checks: the new token (twice: the second from the cache) and
     * a well-formed unknown one. */
    assert_int_equal(wire_get_missing(&srv, district), SENTRA_NOT_FOUND);
    assert_int_equal(wire_get_missing(&srv, district), SENTRA_NOT_FOUND);
    const char *unknown = "snt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_int_equal(wire_get_missing(&srv, unknown), SENTRA_UNAUTHENTICATED);

    sha256_hex(db, admin, admin_hash, sizeof(admin_hash));
    sha256_hex(db, district, dist_hash, sizeof(dist_hash));
    sha256_hex(db, unknown, unknown_hash, sizeof(unknown_hash));
    /* The secrets never went, either way (nor their base32 body alone). */
    if (px_saw(admin) || px_saw(admin + 4))
        fail_msg("the admin secret made by `sentrad token create` reached PostgreSQL");
    if (px_saw(district) || px_saw(district + 4))
        fail_msg("the secret made by CreateToken reached PostgreSQL (sent or returned)");
    if (px_saw(unknown + 4))
        fail_msg("the secret of an unknown token reached PostgreSQL");
    /* But the proxy did carry the traffic: the digests went, as hex. */
    assert_true(px_saw(admin_hash));
    assert_true(px_saw(dist_hash));
    assert_true(px_saw(unknown_hash));
    /* And the database keeps the digest: the district token works by it. */
    const char *p[1] = { dist_hash };
    assert_string_equal(sql1(db, "SELECT role FROM api_token WHERE secret_hash = decode($1, 'hex')", 1, p),
                        "district");
    free(district);
    free(admin);
    PQfinish(db);
}

static void test_lookup_racing_revocation(void **state)
{
    PGconn *db = db_direct();
    char id[64];
    if (listener == 0)
        fail_msg("the listening backend is not known");
    char *tok = th_token(&srv, "district", "18.71");
    assert_non_null(tok);
    token_id(db, tok, id, sizeof(id));
    delay_install(db);
    const char *p[1] = { id };
    sql1(db, "INSERT INTO test_delay (id) VALUES ($1::uuid)", 1, p);

    /* The LISTENing connection busy with a slow query, so that the token
     * check goes to the other one (quick lookups never queue behind a slow
     * query); once the sleep is over, it can hear the revocation while the
     * check is still held. */
    int a = th_connect_raw(&srv), b = th_connect_raw(&srv);
    assert_true(a >= 0 && b >= 0);
    send_sleep(a, 1, 400);
    assert_int_not_equal(wait_running(db, "%pg_sleep%", 5000), 0);
    Sentra__V1__GetSentraRequest g = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    g.id = "00000000-0000-4000-8000-000000000001";
    assert_int_equal(wire_send(b, 1, "/sentra.v1.SentraService/GetSentra", &g.base, tok, 20000), 0);
    int checker = wait_running(db, "%FROM api_token%", 5000);
    assert_int_not_equal(checker, 0);
    assert_int_not_equal(checker, listener);
    assert_int_equal(expect_code(a, 1), SENTRA_OK);          /* the sleep is over */

    /* Revoked while the check (whose snapshot came first) is held; the
     * server hears of it... */
    int before = log_count(&srv, id);
    revoke_token(db, id);
    assert_true(log_wait(&srv, id, before + 1, 10000));
    /* ... and only then does the check answer "valid". */
    sql1(db, "UPDATE test_delay SET go = true", 0, NULL);
    assert_int_equal(expect_code(b, 1), SENTRA_NOT_FOUND);  /* valid when it was checked */
    close(a);
    close(b);

    /* That stale answer was not cached: the token is refused now. */
    assert_int_equal(wire_get_missing(&srv, tok), SENTRA_UNAUTHENTICATED);
    delay_remove(db);
    free(tok);
    PQfinish(db);
}

/* Last: the listening connection is replaced. */
static void test_revocation_while_listener_reconnects(void **state)
{
    PGconn *db = db_direct();
    char id[64], dbname[64];
    if (listener == 0)
        fail_msg("the listening backend is not known");
    char *tok = th_token(&srv, "district", "18.71");
    char *other = th_token(&srv, "district", "18.71");
    assert_non_null(tok);
    assert_non_null(other);
    token_id(db, tok, id, sizeof(id));
    assert_int_equal(wire_get_missing(&srv, tok), SENTRA_NOT_FOUND);   /* cached */
    snprintf(dbname, sizeof(dbname), "%s", sql1(db, "SELECT current_database()", 0, NULL));

    /* The listening connection goes, and cannot come back for now (the
     * other pool connection stays). ALTER DATABASE from another database:
     * PostgreSQL refuses it on the current one. */
    char sql[256], other_db[600];
    snprintf(other_db, sizeof(other_db), "%s", direct_conninfo);
    char *at = strstr(other_db, "dbname=");
    assert_non_null(at);
    snprintf(at, sizeof(other_db) - (size_t)(at - other_db), "dbname=postgres user=sentra");
    PGconn *adm = PQconnectdb(other_db);
    assert_int_equal(PQstatus(adm), CONNECTION_OK);
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS false", dbname);
    sql1(adm, sql, 0, NULL);
    int lost = log_count(&srv, "db_disconnected");
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", listener);
    const char *p[1] = { pid };
    sql1(db, "SELECT pg_terminate_backend($1::int)", 1, p);
    int noticed = log_wait(&srv, "db_disconnected", lost + 1, 10000);

    /* Checked meanwhile (on the other connection), then revoked: nobody
     * hears that NOTIFY. */
    int during = wire_get_missing(&srv, tok);
    revoke_token(db, id);
    int after_revoke = wire_get_missing(&srv, tok);
    int other_during = wire_get_missing(&srv, other);

    /* The connection comes back. */
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true", dbname);
    sql1(adm, sql, 0, NULL);
    PQfinish(adm);
    int on = log_count(&srv, "token_cache_on");
    int back = log_wait(&srv, "token_cache_on", on + 1, 15000);
    int after_back = wire_get_missing(&srv, tok);
    int other_after = wire_get_missing(&srv, other);

    assert_true(noticed);
    assert_int_equal(during, SENTRA_NOT_FOUND);
    assert_int_equal(after_revoke, SENTRA_UNAUTHENTICATED);
    assert_int_equal(other_during, SENTRA_NOT_FOUND);
    assert_true(back);
    assert_int_equal(after_back, SENTRA_UNAUTHENTICATED);
    assert_int_equal(other_after, SENTRA_NOT_FOUND);
    free(tok);
    free(other);
    PQfinish(db);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secrets_never_reach_postgres),
        cmocka_unit_test(test_lookup_racing_revocation),
        cmocka_unit_test(test_revocation_while_listener_reconnects),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
