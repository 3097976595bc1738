/*
 * records_fixture.h: what the tests of records in the sync feed share
 * (test_records_sync.c, test_stream_records.c): a sentrad of their own on
 * the synthetic Lampung demo data, a client for each of four tokens (two
 * districts, Lampung's province, national), SQL on its database, pulls of
 * every page, and writes of each kind of record through the service.
 * Included once, by the test's .c file, after it defines
 * RECORDS_FIXTURE_SERVER (the name of its database and logs).
 */
#ifndef SENTRA_RECORDS_FIXTURE_H
#define SENTRA_RECORDS_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sentra/sentra.h>

#include "harness.h"

#ifndef RECORDS_FIXTURE_SERVER
#error "define RECORDS_FIXTURE_SERVER before including records_fixture.h"
#endif

static th_server_t srv;

enum { K_DIST, K_DIST2, K_PROV, K_NAT, K_COUNT };
static char *tok[K_COUNT];
static sentra_client_t *cl[K_COUNT];


static sentra_client_t *client(const char *token)
{
    sentra_client_opts_t o;
    sentra_client_t *c = NULL;
    char addr[96];
    snprintf(addr, sizeof(addr), "%s:%d", srv.host, srv.port);
    sentra_client_opts_init(&o);
    o.address = addr;
    o.token = token;
    o.default_deadline_ms = 30000;
    o.max_attempts = 1;
    assert_int_equal(sentra_client_new(&c, &o), 0);
    return c;
}

static PGresult *q(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static PGresult *q(const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGconn *c = th_db(&srv);
    assert_non_null(c);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQfinish(c);
    return r;
}

static long long q_ll(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long q_ll(const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = q("%s", sql);
    long long v = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return v;
}

static char *q_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *q_str(const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = q("%s", sql);
    char *v = strdup(PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return v;
}

/* A pulled record: kind, key, version, deleted. */
typedef struct seen {
    int kind;
    char key[40];
    int64_t version;
    int deleted;
} seen_t;

static seen_t seen_of(const Sentra__V1__Record *r)
{
    seen_t s = {0};
    switch (r->record_case) {
    case SENTRA__V1__RECORD__RECORD_SENTRA:
        s.kind = 1;
        snprintf(s.key, sizeof s.key, "%s", r->sentra->id);
        s.version = r->sentra->version;
        s.deleted = r->sentra->deleted;
        break;
    case SENTRA__V1__RECORD__RECORD_MEMBER:
        s.kind = 2;
        snprintf(s.key, sizeof s.key, "%s", r->member->id);
        s.version = r->member->version;
        s.deleted = r->member->deleted;
        break;
    case SENTRA__V1__RECORD__RECORD_INSTITUTION:
        s.kind = 3;
        snprintf(s.key, sizeof s.key, "%s", r->institution->sentra_id);
        s.version = r->institution->version;
        s.deleted = r->institution->deleted;
        break;
    case SENTRA__V1__RECORD__RECORD_OBSTACLE:
        s.kind = 4;
        snprintf(s.key, sizeof s.key, "%s", r->obstacle->id);
        s.version = r->obstacle->version;
        s.deleted = r->obstacle->deleted;
        break;
    case SENTRA__V1__RECORD__RECORD_ASSISTANCE:
        s.kind = 5;
        snprintf(s.key, sizeof s.key, "%s", r->assistance->id);
        s.version = r->assistance->version;
        s.deleted = r->assistance->deleted;
        break;
    default:
        fail_msg("a Record with no record");
    }
    return s;
}

static const Sentra__V1__RecordKind ALL_KINDS[] = {1, 2, 3, 4, 5};

/* One PullChanges. kinds NULL: none named (sentra only). */
static Sentra__V1__PullChangesResponse *pull(int who, const char *cursor, const Sentra__V1__RecordKind *kinds,
                                             size_t nk, int limit)
{
    Sentra__V1__PullChangesRequest rq = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
    Sentra__V1__PullChangesResponse *r = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    rq.cursor = (char *)(cursor ? cursor : "");
    rq.kinds = (Sentra__V1__RecordKind *)kinds;
    rq.n_kinds = nk;
    rq.limit = limit;
    if (sentra_pull_changes(cl[who], &rq, &r, NULL, &st) != 0)
        fail_msg("PullChanges: %s %s", sentra_status_name(st.code), st.message ? st.message : "");
    sentra_status_clear(&st);
    return r;
}

/* Pulls to the end from cursor; every record into out (at most max, in
 * order; NULL: only to move the cursor). Returns the count; *end gets the
 * last cursor (malloc'ed). */
static size_t pull_all(int who, const char *cursor, const Sentra__V1__RecordKind *kinds, size_t nk,
                       int limit, seen_t *out, size_t max, char **end, size_t *legacy)
{
    char *cur = strdup(cursor ? cursor : "");
    size_t n = 0;
    if (legacy)
        *legacy = 0;
    for (int pages = 0; pages < 100000; pages++) {
        Sentra__V1__PullChangesResponse *r = pull(who, cur, kinds, nk, limit);
        for (size_t i = 0; i < r->n_records; i++) {
            if (out && n < max)
                out[n] = seen_of(r->records[i]);
            n++;
        }
        if (legacy)
            *legacy += r->n_changes;
        if (nk > 0)
            assert_int_equal(r->n_changes, 0);
        else
            assert_int_equal(r->n_records, 0);
        free(cur);
        cur = strdup(r->next_cursor);
        int more = r->more;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        if (!more)
            break;
    }
    if (end)
        *end = cur;
    else
        free(cur);
    return n;
}

static void fail_status(const char *what, const sentra_status_t *st)
{
    for (size_t i = 0; i < st->n_violations; i++)
        fprintf(stderr, "  %s: %s\n", st->violations[i].field, st->violations[i].description);
    fail_msg("%s: %s %s", what, sentra_status_name(st->code), st->message ? st->message : "");
}

/* Writes through the service. */
static char *create_sentra(int who, const char *regency, const char *name)
{
    Sentra__V1__CreateSentraRequest rq = SENTRA__V1__CREATE_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT, *out = NULL;
    s.regency_code = (char *)regency;
    s.name = (char *)name;
    s.kbli_code = "10761";
    s.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    s.sector_group = SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD;
    s.status = SENTRA__V1__STATUS__STATUS_FORMED;
    rq.sentra = &s;
    sentra_status_t st;
    sentra_status_init(&st);
    if (sentra_create_sentra(cl[who], &rq, &out, NULL, &st) != 0)
        fail_status("CreateSentra", &st);
    char *id = strdup(out->id);
    protobuf_c_message_free_unpacked(&out->base, NULL);
    sentra_status_clear(&st);
    return id;
}

static Sentra__V1__Member member_of(const char *sid, const char *name)
{
    Sentra__V1__Member m = SENTRA__V1__MEMBER__INIT;
    m.sentra_id = (char *)sid;
    m.name = (char *)name;
    m.owner_name = "Ibu Sinkron";
    m.owner_sex = SENTRA__V1__SEX__SEX_FEMALE;
    m.workers_female = 2;
    m.investment = 25000000;
    return m;
}

static char *create_member(int who, const char *sid, const char *name)
{
    Sentra__V1__CreateMemberRequest rq = SENTRA__V1__CREATE_MEMBER_REQUEST__INIT;
    Sentra__V1__Member m = member_of(sid, name), *out = NULL;
    rq.member = &m;
    sentra_status_t st;
    sentra_status_init(&st);
    if (sentra_create_member(cl[who], &rq, &out, NULL, &st) != 0)
        fail_status("CreateMember", &st);
    char *id = strdup(out->id);
    protobuf_c_message_free_unpacked(&out->base, NULL);
    sentra_status_clear(&st);
    return id;
}

static void set_institution(int who, const char *sid, int64_t expected)
{
    Sentra__V1__SetInstitutionRequest rq = SENTRA__V1__SET_INSTITUTION_REQUEST__INIT;
    Sentra__V1__Institution in = SENTRA__V1__INSTITUTION__INIT, *out = NULL;
    Sentra__V1__Board b = SENTRA__V1__BOARD__INIT;
    in.sentra_id = (char *)sid;
    in.form = SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_KUB;
    b.chair = "Ibu Ketua";
    in.board = &b;
    rq.institution = &in;
    rq.expected_version = expected;
    sentra_status_t st;
    sentra_status_init(&st);
    if (sentra_set_institution(cl[who], &rq, &out, NULL, &st) != 0)
        fail_status("SetInstitution", &st);
    protobuf_c_message_free_unpacked(&out->base, NULL);
    sentra_status_clear(&st);
}

static char *create_assistance(int who, const char *sid)
{
    Sentra__V1__CreateAssistanceRequest rq = SENTRA__V1__CREATE_ASSISTANCE_REQUEST__INIT;
    Sentra__V1__Assistance a = SENTRA__V1__ASSISTANCE__INIT, *out = NULL;
    a.sentra_id = (char *)sid;
    a.kind = SENTRA__V1__ASSISTANCE_KIND__ASSISTANCE_KIND_TRAINING;
    a.provider = SENTRA__V1__PROVIDER__PROVIDER_REGENCY;
    a.programme = "Pelatihan sinkron";
    a.year = 2022;
    a.value = 15000000;
    rq.assistance = &a;
    sentra_status_t st;
    sentra_status_init(&st);
    if (sentra_create_assistance(cl[who], &rq, &out, NULL, &st) != 0)
        fail_status("CreateAssistance", &st);
    char *id = strdup(out->id);
    protobuf_c_message_free_unpacked(&out->base, NULL);
    sentra_status_clear(&st);
    return id;
}

static char *create_obstacle(int who, const char *sid, const char *aid)
{
    Sentra__V1__CreateObstacleRequest rq = SENTRA__V1__CREATE_OBSTACLE_REQUEST__INIT;
    Sentra__V1__Obstacle o = SENTRA__V1__OBSTACLE__INIT, *out = NULL;
    o.sentra_id = (char *)sid;
    o.category = SENTRA__V1__OBSTACLE_CATEGORY__OBSTACLE_CATEGORY_MARKETING;
    o.description = "Pasar terbatas";
    o.severity = SENTRA__V1__SEVERITY__SEVERITY_MEDIUM;
    o.reported_on = "2022-05-01";
    o.status = SENTRA__V1__OBSTACLE_STATUS__OBSTACLE_STATUS_OPEN;
    o.assistance_id = (char *)(aid ? aid : "");
    rq.obstacle = &o;
    sentra_status_t st;
    sentra_status_init(&st);
    if (sentra_create_obstacle(cl[who], &rq, &out, NULL, &st) != 0)
        fail_status("CreateObstacle", &st);
    char *id = strdup(out->id);
    protobuf_c_message_free_unpacked(&out->base, NULL);
    sentra_status_clear(&st);
    return id;
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (!th_env_ok())
        return -1;
    if (th_server_start(&srv, RECORDS_FIXTURE_SERVER, NULL) != 0)
        return -1;
    char script[512], out[1024];
    snprintf(script, sizeof script, "%s/demo-data.sh", getenv("SENTRA_TEST_SCRIPTS"));
    const char *argv[] = {script, srv.db_conninfo, NULL};
    if (th_run(argv, out, sizeof out) != 0) {
        fprintf(stderr, "demo-data.sh failed: %s\n", out);
        return -1;
    }
    tok[K_DIST] = th_token(&srv, "district", "18.71");
    tok[K_DIST2] = th_token(&srv, "district", "18.72");
    tok[K_PROV] = th_token(&srv, "province", "18");
    tok[K_NAT] = th_token(&srv, "national", NULL);
    for (int i = 0; i < K_COUNT; i++) {
        if (!tok[i])
            return -1;
        cl[i] = client(tok[i]);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < K_COUNT; i++) {
        sentra_client_free(cl[i]);
        free(tok[i]);
    }
    th_server_free(&srv);
    return 0;
}

#endif
