/*
 * test_multi.c: several sentrad against one database (issue 17).
 *
 * Two servers of the test's own share one fresh database, as two
 * instances behind a load balancer would:
 *   - a long poll held on A wakes for a write made through B (NOTIFY
 *     sentra_change reaches every instance);
 *   - a token revoked through B is refused by A, which had it cached, well
 *     within the cache's 60 s lifetime (NOTIFY sentra_token empties every
 *     instance's cache);
 *   - a push or a create retried on the other instance returns the stored
 *     outcome (the same version, the same id), also when both copies arrive
 *     at the same moment, one on each instance: applied exactly once;
 *   - --db-read naming a server that is no standby sends reads to the
 *     primary (tests/ha/ha-test.sh covers a real standby).
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
#include <unistd.h>

#include <libpq-fe.h>
#include <sentra/sentra.h>

#include "harness.h"

static th_server_t A, B;
static char *t_admin, *t_dist;
static char run[32];

static sentra_client_t *client_for(th_server_t *s, const char *token)
{
    char addr[96];
    snprintf(addr, sizeof(addr), "%s:%d", s->host, s->port);
    sentra_client_opts_t o;
    sentra_client_opts_init(&o);
    o.address = addr;
    o.token = token;
    o.max_attempts = 1;         /* no retry: each call lands where it is sent */
    sentra_client_t *c = NULL;
    assert_int_equal(sentra_client_new(&c, &o), 0);
    return c;
}

static int setup(void **state)
{
    if (!th_env_ok())
        return -1;
    snprintf(run, sizeof(run), "%08x", (unsigned)getpid() ^ (unsigned)th_now_ms());
    if (th_server_start(&A, "multi_a", NULL) != 0)
        return -1;
    /* B: its own (unused) database is created, then --db points it at A's:
     * the last --db given wins. */
    const char *extra[] = { "--db", A.db_conninfo, NULL };
    if (th_server_start(&B, "multi_b", extra) != 0)
        return -1;
    t_admin = th_token(&A, "admin", NULL);
    t_dist = th_token(&A, "district", "18.71");
    return t_admin && t_dist ? 0 : -1;
}

static int teardown(void **state)
{
    th_server_free(&A);
    th_server_free(&B);
    free(t_admin);
    free(t_dist);
    return 0;
}

static Sentra__V1__Sentra *record(Sentra__V1__Sentra *s, char *name, char *id)
{
    sentra__v1__sentra__init(s);
    s->id = id;
    s->name = name;
    s->regency_code = "18.71";
    s->commodity = "Kopi";
    s->main_product = "Kopi bubuk";
    s->kbli_code = "10761";
    s->kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    s->sector_group = SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD;
    s->status = SENTRA__V1__STATUS__STATUS_FORMED;
    s->formed_on = "2020-01-02";
    return s;
}

static int create_on(th_server_t *s, const char *name, const char *key, char id_out[64])
{
    sentra_client_t *c = client_for(s, t_dist);
    Sentra__V1__Sentra rec;
    Sentra__V1__CreateSentraRequest req = SENTRA__V1__CREATE_SENTRA_REQUEST__INIT;
    req.sentra = record(&rec, (char *)name, NULL);
    sentra_call_opts_t co = { 10000, key, 1 };
    Sentra__V1__Sentra *got = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    int rc = sentra_create_sentra(c, &req, &got, &co, &st);
    if (rc == 0) {
        snprintf(id_out, 64, "%s", got->id);
        sentra__v1__sentra__free_unpacked(got, NULL);
    } else {
        fprintf(stderr, "create on :%d: %s %s\n", s->port, sentra_status_name(st.code),
                st.message ? st.message : "");
    }
    sentra_status_clear(&st);
    sentra_client_free(c);
    return rc;
}

/* Pushes one new record; returns the outcome (or -1), the version in *v. */
static int push_on(th_server_t *s, const char *client_id, const char *mid, char *id, char *name,
                   int64_t *v)
{
    sentra_client_t *c = client_for(s, t_dist);
    Sentra__V1__Sentra rec;
    Sentra__V1__Mutation m = SENTRA__V1__MUTATION__INIT;
    Sentra__V1__Mutation *ms[1] = { &m };
    m.mutation_id = (char *)mid;
    m.op = SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT;
    m.sentra = record(&rec, name, id);
    Sentra__V1__PushChangesRequest req = SENTRA__V1__PUSH_CHANGES_REQUEST__INIT;
    req.client_id = (char *)client_id;
    req.mutations = ms;
    req.n_mutations = 1;
    Sentra__V1__PushChangesResponse *resp = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = { 10000, NULL, 1 };
    int out = -1;
    if (sentra_push_changes(c, &req, &resp, &co, &st) == 0 && resp->n_results == 1) {
        out = resp->results[0]->outcome;
        *v = resp->results[0]->version;
    } else {
        fprintf(stderr, "push on :%d: %s %s\n", s->port, sentra_status_name(st.code),
                st.message ? st.message : "");
    }
    if (resp != NULL)
        sentra__v1__push_changes_response__free_unpacked(resp, NULL);
    sentra_status_clear(&st);
    sentra_client_free(c);
    return out;
}

static char *scalar(const char *sql)
{
    PGconn *pg = th_db(&A);
    assert_non_null(pg);
    PGresult *r = PQexec(pg, sql);
    char *out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? strdup(PQgetvalue(r, 0, 0))
                                                                           : NULL;
    if (out == NULL)
        fprintf(stderr, "sql failed: %s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
    PQfinish(pg);
    return out;
}

/* ---------------------------------------------------------------- tests */

static void test_long_poll_wakes_on_other_instance(void **state)
{
    sentra_client_t *c = client_for(&A, t_dist);
    sentra_status_t st;
    sentra_status_init(&st);
    /* To the head of the feed first. */
    char *cursor = strdup("");
    for (;;) {
        Sentra__V1__PullChangesRequest rq = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
        rq.cursor = cursor;
        rq.limit = 5000;
        Sentra__V1__PullChangesResponse *r = NULL;
        assert_int_equal(sentra_pull_changes(c, &rq, &r, NULL, &st), 0);
        free(cursor);
        cursor = strdup(r->next_cursor);
        int more = r->more;
        sentra__v1__pull_changes_response__free_unpacked(r, NULL);
        if (!more)
            break;
    }
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        usleep(500 * 1000);
        char name[64], key[64], id[64];
        snprintf(name, sizeof(name), "Multi poll %s", run);
        snprintf(key, sizeof(key), "multi-poll-%s", run);
        _exit(create_on(&B, name, key, id) == 0 ? 0 : 1);
    }
    Sentra__V1__PullChangesRequest rq = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
    rq.cursor = cursor;
    rq.limit = 100;
    rq.wait_ms = 20000;
    Sentra__V1__PullChangesResponse *r = NULL;
    sentra_call_opts_t co = { 30000, NULL, 1 };
    int64_t t0 = th_now_ms();
    assert_int_equal(sentra_pull_changes(c, &rq, &r, &co, &st), 0);
    int64_t waited = th_now_ms() - t0;
    int cst;
    waitpid(child, &cst, 0);
    assert_true(WIFEXITED(cst) && WEXITSTATUS(cst) == 0);
    /* Answered by the change, not by the end of the 20 s wait. */
    fprintf(stderr, "long poll on A answered after %lld ms with %zu change(s)\n",
            (long long)waited, r->n_changes);
    assert_true(r->n_changes >= 1);
    assert_true(waited < 15000);
    char want[64];
    snprintf(want, sizeof(want), "Multi poll %s", run);
    assert_string_equal(r->changes[r->n_changes - 1]->name, want);
    sentra__v1__pull_changes_response__free_unpacked(r, NULL);
    free(cursor);
    sentra_status_clear(&st);
    sentra_client_free(c);
}

static int health_of(sentra_client_t *c, sentra_status_t *st)
{
    Sentra__V1__ListSentraRequest rq = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
    rq.page_size = 1;
    Sentra__V1__ListSentraResponse *r = NULL;
    int rc = sentra_list_sentra(c, &rq, &r, NULL, st);
    if (r != NULL)
        sentra__v1__list_sentra_response__free_unpacked(r, NULL);
    return rc == 0 ? 0 : st->code;
}

static void test_revocation_reaches_every_instance(void **state)
{
    char *victim = th_token(&A, "district", "18.71");
    assert_non_null(victim);
    sentra_client_t *ca = client_for(&A, victim), *cb = client_for(&B, victim);
    sentra_status_t st;
    sentra_status_init(&st);
    /* Both instances verify it once and cache it. */
    assert_int_equal(health_of(ca, &st), 0);
    assert_int_equal(health_of(cb, &st), 0);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT id FROM api_token WHERE secret_hash = sha256(convert_to('%s', 'UTF8'))", victim);
    char *id = scalar(sql);
    assert_non_null(id);

    sentra_client_t *adm = client_for(&B, t_admin);
    Sentra__V1__RevokeTokenRequest rq = SENTRA__V1__REVOKE_TOKEN_REQUEST__INIT;
    rq.id = id;
    Sentra__V1__Token *tok = NULL;
    assert_int_equal(sentra_revoke_token(adm, &rq, &tok, NULL, &st), 0);
    sentra__v1__token__free_unpacked(tok, NULL);
    int64_t t0 = th_now_ms();
    /* B answers at once; A must stop accepting it long before its cache
     * entry would expire (60 s): the bound is the NOTIFY's delivery. */
    assert_int_equal(health_of(cb, &st), SENTRA__V1__CODE__UNAUTHENTICATED);
    int code = 0;
    int64_t took = 0;
    while ((took = th_now_ms() - t0) < 5000) {
        code = health_of(ca, &st);
        if (code == SENTRA__V1__CODE__UNAUTHENTICATED)
            break;
        usleep(10 * 1000);
    }
    fprintf(stderr, "revoked through B; refused by A after %lld ms\n", (long long)took);
    assert_int_equal(code, SENTRA__V1__CODE__UNAUTHENTICATED);
    free(id);
    free(victim);
    sentra_status_clear(&st);
    sentra_client_free(ca);
    sentra_client_free(cb);
    sentra_client_free(adm);
}

static void test_retry_on_other_instance(void **state)
{
    char name[64], key[64], id1[64], id2[64];
    snprintf(name, sizeof(name), "Multi retry %s", run);
    snprintf(key, sizeof(key), "multi-retry-%s", run);
    assert_int_equal(create_on(&A, name, key, id1), 0);
    assert_int_equal(create_on(&B, name, key, id2), 0);
    assert_string_equal(id1, id2);

    char rid[40] = "", mid[64], cid[64], sql[256];
    char *u = scalar("SELECT gen_random_uuid()");
    snprintf(rid, sizeof(rid), "%s", u);
    free(u);
    snprintf(mid, sizeof(mid), "m-%s", run);
    snprintf(cid, sizeof(cid), "multi-%s", run);
    snprintf(name, sizeof(name), "Multi push %s", run);
    int64_t v1 = 0, v2 = 0;
    assert_int_equal(push_on(&A, cid, mid, rid, name, &v1), SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);
    assert_int_equal(push_on(&B, cid, mid, rid, name, &v2), SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);
    assert_int_equal(v1, v2);
    snprintf(sql, sizeof(sql), "SELECT version || '/' || (SELECT count(*) FROM sentra_change WHERE sentra_id = '%s')"
             " FROM sentra WHERE id = '%s'", rid, rid);
    char *got = scalar(sql);
    assert_non_null(got);
    assert_string_equal(got, "1/1");
    free(got);
}

/* The same write sent to both instances at once, ROUNDS times: a client
 * that timed out on A and retried on B while A was still at it. */
#define ROUNDS 20
static void test_simultaneous_retries(void **state)
{
    char *uuids[ROUNDS];
    for (int i = 0; i < ROUNDS; i++)
        uuids[i] = scalar("SELECT gen_random_uuid()");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    int me = child == 0;                 /* the child writes through B */
    th_server_t *s = me ? &B : &A;
    int bad = 0;
    char outcomes[ROUNDS][96];
    for (int i = 0; i < ROUNDS; i++) {
        char name[64], key[64], id[64], mid[64], cid[64];
        int64_t v = 0;
        /* Line up: each side waits for the other before each round. */
        if (me) {
            char b;
            if (read(fds[0], &b, 1) != 1)
                _exit(3);
        } else if (write(fds[1], "x", 1) != 1) {
            bad++;
        }
        snprintf(name, sizeof(name), "Multi race %s %d", run, i);
        snprintf(key, sizeof(key), "multi-race-%s-%d", run, i);
        if (i % 2 == 0) {
            if (create_on(s, name, key, id) != 0)
                bad++;
            snprintf(outcomes[i], sizeof(outcomes[i]), "%s", id);
        } else {
            snprintf(mid, sizeof(mid), "race-%s-%d", run, i);
            snprintf(cid, sizeof(cid), "multi-race-%s", run);
            int o = push_on(s, cid, mid, uuids[i], name, &v);
            if (o != SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED)
                bad++;
            snprintf(outcomes[i], sizeof(outcomes[i]), "%d/%lld", o, (long long)v);
        }
    }
    if (me)
        _exit(bad ? 1 : 0);
    int st;
    waitpid(child, &st, 0);
    assert_int_equal(bad, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) || '/' || count(DISTINCT name) || '/' || max(version)"
             " FROM sentra WHERE name LIKE 'Multi race %s %%'", run);
    char *got = scalar(sql);
    assert_non_null(got);
    char want[64];
    snprintf(want, sizeof(want), "%d/%d/1", ROUNDS, ROUNDS);
    assert_string_equal(got, want);
    free(got);
    for (int i = 0; i < ROUNDS; i++)
        free(uuids[i]);
    close(fds[0]);
    close(fds[1]);
}

/* --db-read naming a server that is not a standby (a misconfiguration, or
 * what prefer-standby finds when the standby is down): every read goes to
 * the primary and answers as without it, and the server stops cleanly. */
static void test_db_read_not_a_standby(void **state)
{
    th_server_t C;
    const char *extra[] = { "--db", A.db_conninfo, "--db-read", A.db_conninfo, NULL };
    assert_int_equal(th_server_start(&C, "multi_c", extra), 0);
    sentra_client_t *c = client_for(&C, t_dist), *a = client_for(&A, t_dist);
    sentra_status_t st;
    sentra_status_init(&st);
    for (int round = 0; round < 3; round++) {
        Sentra__V1__GetStatisticsRequest rq = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
        Sentra__V1__GetStatisticsResponse *r1 = NULL, *r2 = NULL;
        assert_int_equal(sentra_get_statistics(c, &rq, &r1, NULL, &st), 0);
        assert_int_equal(sentra_get_statistics(a, &rq, &r2, NULL, &st), 0);
        assert_non_null(r1->total);
        assert_int_equal(r1->total->sentra, r2->total->sentra);
        sentra__v1__get_statistics_response__free_unpacked(r1, NULL);
        sentra__v1__get_statistics_response__free_unpacked(r2, NULL);

        Sentra__V1__PullChangesRequest pq = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
        pq.cursor = "";
        Sentra__V1__PullChangesResponse *p1 = NULL;
        assert_int_equal(sentra_pull_changes(c, &pq, &p1, NULL, &st), 0);
        assert_true(p1->n_changes >= 1);
        sentra__v1__pull_changes_response__free_unpacked(p1, NULL);
        usleep(300 * 1000);     /* across the router's samples */
    }
    sentra_status_clear(&st);
    sentra_client_free(c);
    sentra_client_free(a);
    assert_int_equal(th_server_stop(&C), 0);
    th_server_free(&C);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_poll_wakes_on_other_instance),
        cmocka_unit_test(test_revocation_reaches_every_instance),
        cmocka_unit_test(test_retry_on_other_instance),
        cmocka_unit_test(test_simultaneous_retries),
        cmocka_unit_test(test_db_read_not_a_standby),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
