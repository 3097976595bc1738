/*
 * test_stream_records.c: SyncService/StreamChanges naming kinds of record
 * (members, institutions, obstacles, assistance beside sentra), against a
 * sentrad of its own on the synthetic Lampung demo data:
 *
 *   the same as PullChanges: from the empty cursor and from a cursor in
 *     the feed, with every kind or some, a stream gives exactly the
 *     records, in the same order, and the same last cursor as PullChanges
 *     with the same kinds and page size, for the whole feed (national), a
 *     province and a district; naming none keeps the sentra-only stream
 *   scope: a district's stream never carries a record of another
 *     regency, and carries every live record of its own
 *   live: a member and an obstacle written while the stream is open
 *     arrive, then the obstacle's tombstone; a kind not asked never does
 *   refused: kinds unknown or repeated (INVALID_ARGUMENT, by field)
 */
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

static th_server_t srv;

enum { K_DIST, K_DIST2, K_PROV, K_NAT, K_COUNT };
static char *tok[K_COUNT];
static sentra_client_t *cl[K_COUNT];

/* ---------------------------------------------------------------- helpers
 * (as test_records_sync.c's) */

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

/* ---------------------------------------------------------------- stream */

/* What a stream brought: its records in order, its messages, the cursor of
 * the last, and what to do at the news of being caught up. */
typedef struct collect {
    seen_t *got;
    size_t n, cap;
    size_t legacy;               /* records in `changes` (no kinds named) */
    int msgs;
    int max_per_msg;
    char cursor[512];
    int caught_up;               /* messages that said more = false */
    /* Called at each message once caught up; returns non-zero to stop. */
    int (*live)(struct collect *k);
    void *arg;
} collect_t;

static int collect_msg(void *arg, const Sentra__V1__StreamChangesResponse *m)
{
    collect_t *k = arg;
    for (size_t i = 0; i < m->n_records; i++) {
        if (k->n == k->cap) {
            k->cap = k->cap ? 2 * k->cap : 256;
            k->got = realloc(k->got, k->cap * sizeof *k->got);
            assert_non_null(k->got);
        }
        k->got[k->n++] = seen_of(m->records[i]);
    }
    k->legacy += m->n_changes;
    if ((int)(m->n_records + m->n_changes) > k->max_per_msg)
        k->max_per_msg = (int)(m->n_records + m->n_changes);
    snprintf(k->cursor, sizeof k->cursor, "%s", m->next_cursor);
    k->msgs++;
    if (!m->more)
        k->caught_up++;
    if (k->caught_up == 0)
        return 0;
    return k->live ? k->live(k) : 1;     /* no live part: stop once caught up */
}

/* Streams from cursor with kinds and limit until k->live says stop (or,
 * without it, until caught up); fails on any other end. */
static void stream(int who, const char *cursor, const Sentra__V1__RecordKind *kinds, size_t nk,
                   int limit, collect_t *k)
{
    Sentra__V1__StreamChangesRequest rq = SENTRA__V1__STREAM_CHANGES_REQUEST__INIT;
    sentra_call_opts_t co = {0};
    sentra_status_t st;
    rq.cursor = (char *)(cursor ? cursor : "");
    rq.kinds = (Sentra__V1__RecordKind *)kinds;
    rq.n_kinds = nk;
    rq.limit = limit;
    co.deadline_ms = 30000;
    sentra_status_init(&st);
    int rc = sentra_stream_changes(cl[who], &rq, collect_msg, k, &co, &st);
    if (rc != SENTRA_ECANCELED)
        fail_msg("StreamChanges ended with %d: %s %s (%d messages, %zu records)", rc,
                 sentra_status_name(st.code), st.message ? st.message : "", k->msgs, k->n);
    sentra_status_clear(&st);
}

static void assert_same(const seen_t *a, size_t na, const seen_t *b, size_t nb, const char *what)
{
    if (na != nb)
        fail_msg("%s: the stream brought %zu records, PullChanges %zu", what, na, nb);
    for (size_t i = 0; i < na; i++)
        if (a[i].kind != b[i].kind || strcmp(a[i].key, b[i].key) != 0 ||
            a[i].version != b[i].version || a[i].deleted != b[i].deleted)
            fail_msg("%s: record %zu: stream kind %d %s v%lld%s, pull kind %d %s v%lld%s", what, i,
                     a[i].kind, a[i].key, (long long)a[i].version, a[i].deleted ? " (deleted)" : "",
                     b[i].kind, b[i].key, (long long)b[i].version, b[i].deleted ? " (deleted)" : "");
}

/* One comparison: stream and pull from cursor with kinds and limit. */
static void compare(int who, const char *cursor, const Sentra__V1__RecordKind *kinds, size_t nk,
                    int limit, const char *what)
{
    static seen_t want[20000];
    char *end = NULL;
    size_t nw = pull_all(who, cursor, kinds, nk, limit, want, 20000, &end, NULL);
    assert_true(nw < 20000);
    collect_t k = {0};
    stream(who, cursor, kinds, nk, limit, &k);
    assert_same(k.got, k.n, want, nw, what);
    assert_int_equal(k.legacy, 0);
    assert_true(k.max_per_msg <= limit);
    if (strcmp(k.cursor, end) != 0)
        fail_msg("%s: the stream's last cursor %s, PullChanges' %s", what, k.cursor, end);
    free(k.got);
    free(end);
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (!th_env_ok())
        return -1;
    if (th_server_start(&srv, "t_stream_records", NULL) != 0)
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

/* ---------------------------------------------------------------- tests */

/* Writes of every kind after a cursor (a sentra, a member updated, an
 * institution, assistance, an obstacle deleted), then the stream and
 * PullChanges compared record by record, for three shapes of scope, from
 * the empty cursor and from that cursor, with every kind and with some,
 * one record a message and many. */
static void same_as_pull(void **state)
{
    (void)state;
    char *c0 = NULL;
    pull_all(K_NAT, "", ALL_KINDS, 5, 5000, NULL, 0, &c0, NULL);

    char *sid = create_sentra(K_DIST, "18.71", "Sentra Uji Arus (data uji)");
    char *mid = create_member(K_DIST, sid, "IKM Arus Satu");
    set_institution(K_DIST, sid, 0);
    char *aid = create_assistance(K_DIST, sid);
    char *oid = create_obstacle(K_DIST, sid, aid);
    Sentra__V1__UpdateMemberRequest ur = SENTRA__V1__UPDATE_MEMBER_REQUEST__INIT;
    Sentra__V1__Member um = SENTRA__V1__MEMBER__INIT, *uo = NULL;
    const char *mask[] = {"products"};
    um.id = mid;
    um.products = "Kain tapis";
    ur.member = &um;
    ur.update_mask = (char **)mask;
    ur.n_update_mask = 1;
    ur.expected_version = 1;
    sentra_status_t st;
    sentra_status_init(&st);
    assert_int_equal(sentra_update_member(cl[K_DIST], &ur, &uo, NULL, &st), 0);
    protobuf_c_message_free_unpacked(&uo->base, NULL);
    Sentra__V1__DeleteObstacleRequest dr = SENTRA__V1__DELETE_OBSTACLE_REQUEST__INIT;
    Sentra__V1__DeleteRecordResponse *dd = NULL;
    dr.id = oid;
    dr.expected_version = 1;
    assert_int_equal(sentra_delete_obstacle(cl[K_DIST], &dr, &dd, NULL, &st), 0);
    protobuf_c_message_free_unpacked(&dd->base, NULL);
    sentra_status_clear(&st);

    static const Sentra__V1__RecordKind some[] = {SENTRA__V1__RECORD_KIND__RECORD_KIND_OBSTACLE,
                                                  SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER};
    static const int who[] = {K_NAT, K_PROV, K_DIST};
    static const int limits[] = {1, 7, 5000};
    for (size_t w = 0; w < 3; w++)
        for (size_t l = 0; l < 3; l++) {
            char what[96];
            snprintf(what, sizeof what, "token %d, limit %d, every kind, from the start", who[w], limits[l]);
            compare(who[w], "", ALL_KINDS, 5, limits[l], what);
            snprintf(what, sizeof what, "token %d, limit %d, every kind, from a cursor", who[w], limits[l]);
            compare(who[w], c0, ALL_KINDS, 5, limits[l], what);
            snprintf(what, sizeof what, "token %d, limit %d, obstacle and member", who[w], limits[l]);
            compare(who[w], "", some, 2, limits[l], what);
        }

    /* from c0, one record a message: the 7 changes in feed order, the
     * obstacle a tombstone at both of its rows */
    collect_t k = {0};
    stream(K_DIST, c0, ALL_KINDS, 5, 1, &k);
    assert_int_equal(k.n, 7);
    static const int kinds_at[] = {1, 2, 3, 5, 4, 2, 4};
    for (int i = 0; i < 7; i++) {
        assert_int_equal(k.got[i].kind, kinds_at[i]);
        assert_int_equal(k.got[i].deleted, kinds_at[i] == 4);
    }
    assert_string_equal(k.got[0].key, sid);
    assert_string_equal(k.got[1].key, mid);
    assert_int_equal(k.got[5].version, 2);
    free(k.got);

    /* naming no kinds: sentra alone, in `changes`, as before */
    collect_t s = {0};
    stream(K_DIST, c0, NULL, 0, 5000, &s);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.legacy, 1);
    free(s.got);
    free(sid);
    free(mid);
    free(aid);
    free(oid);
    free(c0);
}

/* A district's stream of every kind: no record of another regency, and
 * every live record of its own (each kind counted against the tables). */
static void scope(void **state)
{
    (void)state;
    char *sid = create_sentra(K_DIST, "18.71", "Sentra Uji Lingkup (data uji)");
    char *mid = create_member(K_DIST, sid, "IKM Lingkup Satu");
    for (int who = K_DIST; who <= K_DIST2; who++) {
        const char *reg = who == K_DIST ? "18.71" : "18.72";
        collect_t k = {0};
        stream(who, "", ALL_KINDS, 5, 50, &k);
        long long live[6] = {0};
        for (size_t i = 0; i < k.n; i++) {
            static const char *const table[] = {"", "sentra", "member", "institution", "obstacle",
                                                "assistance"};
            const char *col = k.got[i].kind == 1 ? "id" : k.got[i].kind == 3 ? "sentra_id" : "id";
            char *r = q_str("SELECT regency_code FROM %s WHERE %s = '%s'", table[k.got[i].kind], col,
                            k.got[i].key);
            if (!k.got[i].deleted && strcmp(r, reg) != 0)
                fail_msg("the stream of district %s carried %s %s of regency %s", reg,
                         table[k.got[i].kind], k.got[i].key, r);
            free(r);
            live[k.got[i].kind] += !k.got[i].deleted;
        }
        assert_int_equal(live[1], q_ll("SELECT count(*) FROM sentra WHERE regency_code = '%s'"
                                       " AND deleted_at IS NULL", reg));
        assert_int_equal(live[2], q_ll("SELECT count(*) FROM member WHERE regency_code = '%s'"
                                       " AND deleted_at IS NULL", reg));
        assert_int_equal(live[3], q_ll("SELECT count(*) FROM institution WHERE regency_code = '%s'"
                                       " AND deleted_at IS NULL", reg));
        assert_int_equal(live[4], q_ll("SELECT count(*) FROM obstacle WHERE regency_code = '%s'"
                                       " AND deleted_at IS NULL", reg));
        assert_int_equal(live[5], q_ll("SELECT count(*) FROM assistance WHERE regency_code = '%s'"
                                       " AND deleted_at IS NULL", reg));
        assert_true(live[2] > 0 || who == K_DIST2);
        int found = 0;
        for (size_t i = 0; i < k.n; i++)
            found += k.got[i].kind == 2 && strcmp(k.got[i].key, mid) == 0;
        assert_int_equal(found, who == K_DIST ? 1 : 0);
        free(k.got);
    }
    free(sid);
    free(mid);
}

/* While the stream of members and obstacles is open: a member, an
 * assistance record (a kind not asked) and an obstacle are written; the
 * member and the obstacle arrive, then the obstacle's delete as a
 * tombstone; the assistance never does. */
typedef struct live_ctx {
    char *sid;
    char *mid, *aid, *oid;
    int step;
} live_ctx_t;

static int has(const collect_t *k, int kind, const char *key, int deleted)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->got[i].kind == kind && strcmp(k->got[i].key, key) == 0 && k->got[i].deleted == deleted)
            return 1;
    return 0;
}

static int live_step(collect_t *k)
{
    live_ctx_t *x = k->arg;
    if (x->step == 0) {
        /* through the province's client: the district's is busy streaming */
        x->mid = create_member(K_PROV, x->sid, "IKM Langsung Satu");
        x->aid = create_assistance(K_PROV, x->sid);
        x->oid = create_obstacle(K_PROV, x->sid, NULL);
        x->step = 1;
        return 0;
    }
    if (x->step == 1 && has(k, 2, x->mid, 0) && has(k, 4, x->oid, 0)) {
        Sentra__V1__DeleteObstacleRequest dr = SENTRA__V1__DELETE_OBSTACLE_REQUEST__INIT;
        Sentra__V1__DeleteRecordResponse *dd = NULL;
        sentra_status_t st;
        sentra_status_init(&st);
        dr.id = x->oid;
        dr.expected_version = 1;
        assert_int_equal(sentra_delete_obstacle(cl[K_PROV], &dr, &dd, NULL, &st), 0);
        protobuf_c_message_free_unpacked(&dd->base, NULL);
        sentra_status_clear(&st);
        x->step = 2;
        return 0;
    }
    return x->step == 2 && has(k, 4, x->oid, 1);
}

static void live(void **state)
{
    (void)state;
    static const Sentra__V1__RecordKind kinds[] = {SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER,
                                                   SENTRA__V1__RECORD_KIND__RECORD_KIND_OBSTACLE};
    live_ctx_t x = {0};
    x.sid = create_sentra(K_DIST, "18.71", "Sentra Uji Langsung (data uji)");
    char *end = NULL;
    pull_all(K_DIST, "", kinds, 2, 5000, NULL, 0, &end, NULL);
    collect_t k = {0};
    k.live = live_step;
    k.arg = &x;
    stream(K_DIST, end, kinds, 2, 100, &k);    /* fails after 30 s without them */
    assert_int_equal(x.step, 2);
    assert_true(has(&k, 2, x.mid, 0));
    assert_true(has(&k, 4, x.oid, 0));
    assert_true(has(&k, 4, x.oid, 1));
    for (size_t i = 0; i < k.n; i++)
        assert_true(k.got[i].kind == 2 || k.got[i].kind == 4);
    /* a district that is not theirs saw nothing of it go by */
    collect_t o = {0};
    stream(K_DIST2, end, kinds, 2, 100, &o);
    assert_false(has(&o, 2, x.mid, 0));
    assert_false(has(&o, 4, x.oid, 0));
    free(o.got);
    free(k.got);
    free(end);
    free(x.sid);
    free(x.mid);
    free(x.aid);
    free(x.oid);
}

/* Kinds unknown or repeated: INVALID_ARGUMENT, naming each entry. */
static void refused(void **state)
{
    (void)state;
    static const Sentra__V1__RecordKind bad[] = {2, 9, 2};
    Sentra__V1__StreamChangesRequest rq = SENTRA__V1__STREAM_CHANGES_REQUEST__INIT;
    sentra_call_opts_t co = {0};
    sentra_status_t st;
    collect_t k = {0};
    rq.cursor = "";
    rq.kinds = (Sentra__V1__RecordKind *)bad;
    rq.n_kinds = 3;
    co.deadline_ms = 10000;
    sentra_status_init(&st);
    assert_int_equal(sentra_stream_changes(cl[K_DIST], &rq, collect_msg, &k, &co, &st), SENTRA_ESTATUS);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_int_equal(k.msgs, 0);
    assert_int_equal(st.n_violations, 2);
    assert_string_equal(st.violations[0].field, "kinds[1]");
    assert_string_equal(st.violations[1].field, "kinds[2]");
    sentra_status_clear(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_as_pull),
        cmocka_unit_test(scope),
        cmocka_unit_test(live),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
