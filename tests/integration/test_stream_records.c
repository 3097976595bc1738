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
#define RECORDS_FIXTURE_SERVER "t_stream_records"
#include "records_fixture.h"


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
