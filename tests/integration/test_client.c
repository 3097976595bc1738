/*
 * test_client.c: libsentra against a live sentrad that this test starts,
 * restarts and stops itself: Ping and Health, reflection, CRUD round trips
 * with statuses and field violations, a server restart in the middle of a
 * session (the client reconnects by itself), deadlines that expire on a
 * slow request (SystemService/Sleep, sentrad --enable-debug), and many
 * asynchronous calls in flight on one connection.
 *
 * Environment: that of scripts/run-tests.sh (tests/lib/harness.h makes a
 * database of its own in the test cluster); without it, SENTRA_TEST_DB, else
 * a private cluster in /tmp/sentra-test-client-pg. The server is started
 * here rather than by th_server_start so that a restart keeps its port:
 * the point is that the same client handle finds it again. The admin token is inserted straight into the database (the
 * bootstrap path), the district token made through TokenService.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sentra/async.h>
#include "harness.h"
#include <sentra/sentra.h>

/* ---------------------------------------------------------------- server */

static struct {
    char db[1024];
    char addr[64];
    char portfile[256];
    char logfile[256];
    int port;
    pid_t pid;
    char admin[80];
    char district[256];
    char run[32];
} S;

static const char *envor(const char *k, const char *d)
{
    const char *v = getenv(k);
    return v && *v ? v : d;
}

/* Runs a shell command and returns its first output line (trimmed). */
static int run_line(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    out[0] = 0;
    char buf[2048];
    while (fgets(buf, sizeof buf, p))
        if (!out[0]) {
            size_t l = strnlen(buf, len - 1);
            memcpy(out, buf, l);
            out[l] = 0;
        }
    int st = pclose(p);
    out[strcspn(out, "\r\n")] = 0;
    return st == 0 && out[0] ? 0 : -1;
}

static int server_start(int port)
{
    const char *tmp = envor("SENTRA_TEST_TMP", "/tmp");
    snprintf(S.portfile, sizeof S.portfile, "%s/sentra-test-client-%d.port", tmp, (int)getpid());
    snprintf(S.logfile, sizeof S.logfile, "%s/sentra-test-client-%d.log", tmp, (int)getpid());
    unlink(S.portfile);
    char portarg[16];
    snprintf(portarg, sizeof portarg, "%d", port);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(S.logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        const char *bin = envor("SENTRAD", "bin/sentrad");
        execl(bin, bin, "serve", "--port", portarg, "--port-file", S.portfile, "--db", S.db,
              "--migrations", envor("SENTRA_MIGRATIONS", "migrations"), "--enable-debug", "--grace", "2000",
              "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    S.pid = pid;
    const char *pids = getenv("SENTRA_TEST_PIDS");
    if (pids && *pids) {
        /* run-tests.sh kills what is listed there if we die first */
        FILE *pf = fopen(pids, "a");
        if (pf) {
            fprintf(pf, "%d\n", (int)pid);
            fclose(pf);
        }
    }
    for (int i = 0; i < 400; i++) { /* 20 s: the first start applies migrations */
        FILE *f = fopen(S.portfile, "r");
        if (f) {
            int p = 0;
            int n = fscanf(f, "%d", &p);
            fclose(f);
            if (n == 1 && p > 0) {
                S.port = p;
                snprintf(S.addr, sizeof S.addr, "127.0.0.1:%d", p);
                return 0;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "sentrad exited at start; see %s\n", S.logfile);
            S.pid = 0;
            return -1;
        }
        usleep(50000);
    }
    return -1;
}

static void server_stop(int sig)
{
    if (S.pid <= 0)
        return;
    kill(S.pid, sig);
    int st;
    for (int i = 0; i < 200; i++) {
        if (waitpid(S.pid, &st, WNOHANG) == S.pid) {
            S.pid = 0;
            return;
        }
        usleep(50000);
    }
    kill(S.pid, SIGKILL);
    waitpid(S.pid, &st, 0);
    S.pid = 0;
}

static int bootstrap_admin(void)
{
    PGconn *pg = PQconnectdb(S.db);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "database: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return -1;
    }
    th_token_secret(S.admin);
    const char *v[1] = {S.admin};
    PGresult *res = PQexecParams(pg,
                                 "INSERT INTO api_token (secret_hash, role, label) "
                                 "VALUES (sha256(convert_to($1, 'UTF8')), 'admin', 'test_client') RETURNING id",
                                 1, NULL, v, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "cannot create the admin token: %s", PQerrorMessage(pg));
    PQclear(res);
    PQfinish(pg);
    return ok ? 0 : -1;
}

static sentra_client_t *client(const char *token)
{
    sentra_client_opts_t o;
    sentra_client_opts_init(&o);
    o.address = S.addr;
    o.token = token ? token : "";
    o.default_deadline_ms = 10000;
    o.backoff_initial_ms = 50;
    sentra_client_t *c = NULL;
    assert_int_equal(sentra_client_new(&c, &o), 0);
    return c;
}

static int setup_all(void **state)
{
    snprintf(S.run, sizeof S.run, "%lx%x", (long)time(NULL), (unsigned)getpid());
    const char *db = getenv("SENTRA_TEST_DB");
    if (th_env_ok()) {
        /* Our own database: this test restarts and kills its server. */
        if (th_createdb("sentra_test_client", S.db, sizeof S.db) != 0)
            return -1;
    } else if (db && *db) {
        snprintf(S.db, sizeof S.db, "%s", db);
    } else {
        char cmd[1024];
        const char *dir = envor("SENTRA_TEST_PGDIR", "/tmp/sentra-test-client-pg");
        snprintf(cmd, sizeof cmd, "%s/pgcluster.sh ensure %s >/dev/null && %s/pgcluster.sh createdb %s sentra_test_client",
                 envor("SENTRA_TEST_SCRIPTS", "scripts"), dir, envor("SENTRA_TEST_SCRIPTS", "scripts"), dir);
        if (run_line(cmd, S.db, sizeof S.db) != 0) {
            fprintf(stderr, "test_client: no database (%s)\n", cmd);
            return -1;
        }
    }
    if (server_start(0) != 0) {
        fprintf(stderr, "test_client: cannot start sentrad; log in %s\n", S.logfile);
        return -1;
    }
    if (bootstrap_admin() != 0)
        return -1;
    /* A district token for Bandar Lampung, through TokenService. */
    sentra_client_t *c = client(S.admin);
    Sentra__V1__CreateTokenRequest rq = SENTRA__V1__CREATE_TOKEN_REQUEST__INIT;
    rq.role = SENTRA__V1__ROLE__ROLE_DISTRICT;
    rq.region_code = "18.71";
    rq.label = "test_client district";
    Sentra__V1__CreateTokenResponse *r = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    int rc = sentra_create_token(c, &rq, &r, NULL, &st);
    if (rc == 0) {
        snprintf(S.district, sizeof S.district, "%s", r->secret);
        sentra__v1__create_token_response__free_unpacked(r, NULL);
    } else {
        fprintf(stderr, "test_client: CreateToken: %s: %s (CRUD tests will be skipped)\n",
                sentra_status_name(st.code), st.message ? st.message : "");
    }
    sentra_status_clear(&st);
    sentra_client_free(c);
    return 0;
}

static int teardown_all(void **state)
{
    server_stop(SIGTERM);
    unlink(S.portfile);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static void ping_ok(sentra_client_t *c)
{
    Sentra__V1__PingRequest rq = SENTRA__V1__PING_REQUEST__INIT;
    rq.data.data = (uint8_t *)"sentra";
    rq.data.len = 6;
    Sentra__V1__PingResponse *r = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    int rc = sentra_ping(c, &rq, &r, NULL, &st);
    if (rc)
        fprintf(stderr, "ping: %s %s: %s\n", sentra_err_name(rc), sentra_status_name(st.code),
                st.message ? st.message : "");
    assert_int_equal(rc, 0);
    assert_int_equal(r->data.len, 6);
    assert_memory_equal(r->data.data, "sentra", 6);
    sentra__v1__ping_response__free_unpacked(r, NULL);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- tests */

static void test_ping_health(void **state)
{
    sentra_client_t *c = client(NULL);
    ping_ok(c);
    Sentra__V1__HealthCheckRequest hq = SENTRA__V1__HEALTH_CHECK_REQUEST__INIT;
    Sentra__V1__HealthCheckResponse *h = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    assert_int_equal(sentra_health_check(c, &hq, &h, NULL, &st), 0);
    assert_int_equal(h->status, SENTRA__V1__SERVING_STATUS__SERVING_STATUS_SERVING);
    assert_true(h->version[0] != 0);
    sentra__v1__health_check_response__free_unpacked(h, NULL);
    assert_int_equal(sentra_client_connections(c), 1);
    assert_true(sentra_client_is_connected(c));
    sentra_status_clear(&st);
    sentra_client_free(c);
}

static void test_describe_and_unknown(void **state)
{
    sentra_client_t *c = client(NULL);
    Sentra__V1__GetDescriptorSetRequest rq = SENTRA__V1__GET_DESCRIPTOR_SET_REQUEST__INIT;
    Sentra__V1__GetDescriptorSetResponse *r = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    assert_int_equal(sentra_get_descriptor_set(c, &rq, &r, NULL, &st), 0);
    assert_true(r->file_descriptor_set.len > 100);
    int found = 0;
    for (size_t i = 0; i < r->n_methods; i++)
        if (strcmp(r->methods[i], SENTRA_M_PING) == 0 || strcmp(r->methods[i], SENTRA_M_HEALTH_CHECK) == 0)
            found++;
    assert_int_equal(found, 2);
    sentra__v1__get_descriptor_set_response__free_unpacked(r, NULL);

    /* an unknown method is UNIMPLEMENTED, and the connection stays usable */
    Sentra__V1__PingRequest pq = SENTRA__V1__PING_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    assert_int_equal(sentra_call(c, "/sentra.v1.Nope/Nothing", &pq.base, &sentra__v1__ping_response__descriptor,
                                 &out, NULL, &st),
                     SENTRA_ESTATUS);
    assert_int_equal(st.code, SENTRA__V1__CODE__UNIMPLEMENTED);
    assert_int_equal(st.local, 0);
    assert_null(out);
    ping_ok(c);
    assert_int_equal(sentra_client_connections(c), 1);
    sentra_status_clear(&st);
    sentra_client_free(c);
}

static void test_unauthenticated(void **state)
{
    sentra_client_t *c = client("not-a-token");
    Sentra__V1__ListSentraRequest rq = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
    Sentra__V1__ListSentraResponse *r = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    int rc = sentra_list_sentra(c, &rq, &r, NULL, &st);
    assert_int_equal(rc, SENTRA_ESTATUS);
    if (st.code == SENTRA__V1__CODE__UNIMPLEMENTED) {
        sentra_status_clear(&st);
        sentra_client_free(c);
        skip();
    }
    assert_int_equal(st.code, SENTRA__V1__CODE__UNAUTHENTICATED);
    sentra_status_clear(&st);
    sentra_client_free(c);
}

static Sentra__V1__Sentra *make_sentra(const char *name)
{
    static Sentra__V1__Sentra s;
    static Sentra__V1__Figures f;
    static Sentra__V1__Figures *fp[1];
    sentra__v1__sentra__init(&s);
    sentra__v1__figures__init(&f);
    s.name = (char *)name;
    s.regency_code = "18.71";
    s.commodity = "keripik pisang";
    s.main_product = "keripik";
    s.kbli_code = "10794";
    s.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    s.sector_group = SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD;
    s.status = SENTRA__V1__STATUS__STATUS_FORMED;
    s.formed_on = "2021-03-01";
    f.year = 2023;
    f.business_units = 12;
    f.workers_male = 20;
    f.workers_female = 25;
    f.investment = 150000000;
    f.production_value = 900000000;
    fp[0] = &f;
    s.figures = fp;
    s.n_figures = 1;
    return &s;
}

static void test_crud_round_trip(void **state)
{
    if (!S.district[0])
        skip();
    sentra_client_t *c = client(S.district);
    sentra_status_t st;
    sentra_status_init(&st);
    char name[96];
    snprintf(name, sizeof name, "Sentra Keripik Pisang %s", S.run);

    Sentra__V1__CreateSentraRequest cq = SENTRA__V1__CREATE_SENTRA_REQUEST__INIT;
    cq.sentra = make_sentra(name);
    Sentra__V1__Sentra *created = NULL;
    char key[64];
    snprintf(key, sizeof key, "tc-create-%s", S.run);
    sentra_call_opts_t co = {0, key, 0};
    int rc = sentra_create_sentra(c, &cq, &created, &co, &st);
    if (rc == SENTRA_ESTATUS && st.code == SENTRA__V1__CODE__UNIMPLEMENTED) {
        sentra_status_clear(&st);
        sentra_client_free(c);
        skip();
    }
    if (rc)
        fprintf(stderr, "create: %s: %s\n", sentra_status_name(st.code), st.message ? st.message : "");
    assert_int_equal(rc, 0);
    assert_true(created->id[0] != 0);
    assert_int_equal(created->version, 1);
    assert_string_equal(created->province_code, "18");

    /* the same key again: the stored outcome, not a second record */
    Sentra__V1__Sentra *again = NULL;
    assert_int_equal(sentra_create_sentra(c, &cq, &again, &co, &st), 0);
    assert_string_equal(again->id, created->id);
    sentra__v1__sentra__free_unpacked(again, NULL);

    Sentra__V1__GetSentraRequest gq = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    gq.id = created->id;
    Sentra__V1__Sentra *got = NULL;
    assert_int_equal(sentra_get_sentra(c, &gq, &got, NULL, &st), 0);
    assert_string_equal(got->name, name);
    assert_int_equal(got->n_figures, 1);
    assert_int_equal(got->figures[0]->workers_female, 25);
    sentra__v1__sentra__free_unpacked(got, NULL);

    /* update with the right version, then a stale one: ABORTED + version */
    Sentra__V1__Sentra patch = SENTRA__V1__SENTRA__INIT;
    patch.id = created->id;
    patch.name = "Sentra Keripik Pisang Renamed";
    char *mask[] = {"name"};
    Sentra__V1__UpdateSentraRequest uq = SENTRA__V1__UPDATE_SENTRA_REQUEST__INIT;
    uq.sentra = &patch;
    uq.update_mask = mask;
    uq.n_update_mask = 1;
    uq.expected_version = 1;
    Sentra__V1__Sentra *upd = NULL;
    assert_int_equal(sentra_update_sentra(c, &uq, &upd, NULL, &st), 0);
    assert_int_equal(upd->version, 2);
    assert_string_equal(upd->name, "Sentra Keripik Pisang Renamed");
    sentra__v1__sentra__free_unpacked(upd, NULL);
    assert_int_equal(sentra_update_sentra(c, &uq, &upd, NULL, &st), SENTRA_ESTATUS);
    assert_int_equal(st.code, SENTRA__V1__CODE__ABORTED);
    assert_int_equal(st.current_version, 2);

    /* a bad record: INVALID_ARGUMENT with one violation per field */
    Sentra__V1__Sentra *bad = make_sentra("");
    bad->kbli_code = "99999";
    cq.sentra = bad;
    assert_int_equal(sentra_create_sentra(c, &cq, &again, NULL, &st), SENTRA_ESTATUS);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_true(st.n_violations >= 2);
    int saw_name = 0, saw_kbli = 0;
    for (size_t i = 0; i < st.n_violations; i++) {
        saw_name += strcmp(st.violations[i].field, "name") == 0;
        saw_kbli += strcmp(st.violations[i].field, "kbli_code") == 0;
    }
    assert_true(saw_name && saw_kbli);

    /* list finds it by text */
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    f.text = "Renamed";
    Sentra__V1__ListSentraRequest lq = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
    lq.filter = &f;
    Sentra__V1__ListSentraResponse *list = NULL;
    assert_int_equal(sentra_list_sentra(c, &lq, &list, NULL, &st), 0);
    int seen = 0;
    for (size_t i = 0; i < list->n_sentra; i++)
        seen += strcmp(list->sentra[i]->id, created->id) == 0;
    assert_int_equal(seen, 1);
    sentra__v1__list_sentra_response__free_unpacked(list, NULL);

    /* delete, then NOT_FOUND */
    Sentra__V1__DeleteSentraRequest dq = SENTRA__V1__DELETE_SENTRA_REQUEST__INIT;
    dq.id = created->id;
    dq.expected_version = 2;
    Sentra__V1__DeleteSentraResponse *dr = NULL;
    rc = sentra_delete_sentra(c, &dq, &dr, NULL, &st);
    if (rc)
        fprintf(stderr, "delete: %s: %s\n", sentra_status_name(st.code), st.message ? st.message : "");
    assert_int_equal(rc, 0);
    assert_int_equal(dr->version, 3);
    sentra__v1__delete_sentra_response__free_unpacked(dr, NULL);
    assert_int_equal(sentra_get_sentra(c, &gq, &got, NULL, &st), SENTRA_ESTATUS);
    assert_int_equal(st.code, SENTRA__V1__CODE__NOT_FOUND);

    sentra__v1__sentra__free_unpacked(created, NULL);
    sentra_status_clear(&st);
    sentra_client_free(c);
}

static void test_restart_mid_session(void **state)
{
    sentra_client_t *c = client(NULL);
    ping_ok(c);
    assert_int_equal(sentra_client_connections(c), 1);
    server_stop(SIGTERM);
    /* While the server is down a read fails after its retries. */
    Sentra__V1__PingRequest rq = SENTRA__V1__PING_REQUEST__INIT;
    Sentra__V1__PingResponse *r = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    assert_int_equal(sentra_ping(c, &rq, &r, NULL, &st), SENTRA_ECONNECT);
    assert_int_equal(st.code, SENTRA__V1__CODE__UNAVAILABLE);
    assert_int_equal(server_start(S.port), 0);
    /* Same handle, no action from the caller: it reconnects. */
    ping_ok(c);
    assert_int_equal(sentra_client_connections(c), 2);
    /* And once more with a kill -9 in between. */
    server_stop(SIGKILL);
    assert_int_equal(server_start(S.port), 0);
    ping_ok(c);
    assert_int_equal(sentra_client_connections(c), 3);
    sentra_status_clear(&st);
    sentra_client_free(c);
}

static void test_deadline_expires(void **state)
{
    sentra_client_t *c = client(NULL);
    Sentra__V1__SleepRequest rq = SENTRA__V1__SLEEP_REQUEST__INIT;
    rq.ms = 3000;
    Sentra__V1__SleepResponse *r = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = {300, NULL, 0};
    int64_t t0 = th_now_ms();
    int rc = sentra_sleep(c, &rq, &r, &co, &st);
    int64_t took = th_now_ms() - t0;
    if (rc == SENTRA_ESTATUS && st.code == SENTRA__V1__CODE__UNIMPLEMENTED) {
        sentra_status_clear(&st);
        sentra_client_free(c);
        skip();
    }
    /* The client's timer and the server's (the deadline travels with the
     * request) race: either may report it first. */
    assert_true(rc == SENTRA_ETIMEDOUT || rc == SENTRA_ESTATUS);
    assert_int_equal(st.code, SENTRA__V1__CODE__DEADLINE_EXCEEDED);
    assert_true(took >= 280 && took < 2000);
    /* the connection is still good and the server was not held up */
    ping_ok(c);
    rq.ms = 50;
    t0 = th_now_ms();
    assert_int_equal(sentra_sleep(c, &rq, &r, NULL, &st), 0);
    assert_true(th_now_ms() - t0 < 2000);
    sentra__v1__sleep_response__free_unpacked(r, NULL);
    assert_int_equal(sentra_client_connections(c), 1);
    sentra_status_clear(&st);
    sentra_client_free(c);
}

/* ---------------------------------------------------------------- async */

struct tally {
    int done, ok, failed, twice;
    unsigned char seen[1200];
};

struct slot {
    struct tally *t;
    int i;
};

static void on_done(sentra_async_call_t *call, int rc, ProtobufCMessage *resp, const sentra_status_t *st, void *arg)
{
    struct slot *s = arg;
    if (s->t->seen[s->i]++)
        s->t->twice++;
    s->t->done++;
    if (rc == 0)
        s->t->ok++;
    else {
        s->t->failed++;
        if (s->t->failed < 5 && rc != SENTRA_ECANCELED)
            fprintf(stderr, "async call %d: %s %s\n", s->i, sentra_status_name(st->code), st->message ? st->message : "");
    }
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
}

static void test_async_many_in_flight(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sentra_client_opts_t o;
    sentra_client_opts_init(&o);
    o.address = S.addr;
    o.token = "";
    sentra_async_t *a = sentra_async_new(&loop, &o);
    assert_non_null(a);
    static struct tally t;
    static struct slot slots[1200];
    memset(&t, 0, sizeof t);
    /* 1000 pings and 40 short sleeps, all started at once: more than the
     * server's per-connection cap (128), so the client's max_inflight (100)
     * must hold the rest back instead of earning RESOURCE_EXHAUSTED. */
    int64_t t0 = th_now_ms();
    for (int n = 0; n < 1040; n++) {
        slots[n].t = &t;
        slots[n].i = n;
        sentra_async_call_t *call;
        if (n % 26 == 0) {
            Sentra__V1__SleepRequest s = SENTRA__V1__SLEEP_REQUEST__INIT;
            s.ms = 20 + (unsigned)(n % 7) * 10;
            call = sentra_async_call(a, SENTRA_M_SLEEP, &s.base, &sentra__v1__sleep_response__descriptor, NULL,
                                     on_done, &slots[n]);
        } else {
            Sentra__V1__PingRequest p = SENTRA__V1__PING_REQUEST__INIT;
            call = sentra_async_call(a, SENTRA_M_PING, &p.base, &sentra__v1__ping_response__descriptor, NULL,
                                     on_done, &slots[n]);
        }
        assert_non_null(call);
    }
    assert_int_equal(sentra_async_outstanding(a), 1040);
    uv_run(&loop, UV_RUN_DEFAULT);
    int64_t took = th_now_ms() - t0;
    assert_int_equal(t.done, 1040);
    assert_int_equal(t.twice, 0);
    assert_int_equal(t.ok, 1040);
    assert_int_equal(sentra_async_connections(a), 1);
    fprintf(stderr, "      1040 async calls (40 sleeps) in %lld ms\n", (long long)took);

    /* a cancelled slow call completes once, with CANCELLED */
    memset(&t, 0, sizeof t);
    Sentra__V1__SleepRequest s = SENTRA__V1__SLEEP_REQUEST__INIT;
    s.ms = 5000;
    slots[0].t = &t;
    slots[0].i = 0;
    sentra_async_call_t *call =
        sentra_async_call(a, SENTRA_M_SLEEP, &s.base, &sentra__v1__sleep_response__descriptor, NULL, on_done, &slots[0]);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(sentra_async_cancel(call), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(t.done, 1);
    assert_int_equal(t.failed, 1);

    sentra_async_close(a, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_health),
        cmocka_unit_test(test_describe_and_unknown),
        cmocka_unit_test(test_unauthenticated),
        cmocka_unit_test(test_crud_round_trip),
        cmocka_unit_test(test_deadline_expires),
        cmocka_unit_test(test_async_many_in_flight),
        cmocka_unit_test(test_restart_mid_session),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
