/*
 * test_records_sync.c: the records of a sentra in the sync feed, against a
 * sentrad of its own on the synthetic Lampung demo data: a pull that names
 * kinds sees each kind of change in feed order (page by page and in one
 * page), and a pull that names none (an app that knows only sentra) sees
 * the sentra alone, as before; the children of a sentra that moves out of
 * a district or is deleted, softly or by SQL, reach that district as
 * tombstones and the new district as records; PushChanges applies every
 * kind exactly once (replays, conflicts with the server's record,
 * rejections, atomic batches, replays after a record left the scope);
 * pulled records equal the same records read by Get*; and compaction keeps
 * every record reachable.
 */
#define RECORDS_FIXTURE_SERVER "t_records_sync"
#include "records_fixture.h"

/* ---------------------------------------------------------------- the feed */

/* The (txid, seq) of a cursor (the hex of "v1:<txid>:<seq>"). */
static void cursor_pos(const char *c, char *txid, size_t tl, char *seq, size_t sl)
{
    char raw[128] = "";
    size_t n = strlen(c);
    for (size_t i = 0; i + 1 < n && i / 2 < sizeof raw - 1; i += 2) {
        unsigned v;
        sscanf(c + i, "%2x", &v);
        raw[i / 2] = (char)v;
    }
    char *a = strchr(raw, ':'), *b = a ? strchr(a + 1, ':') : NULL;
    assert_non_null(b);
    snprintf(txid, tl, "%.*s", (int)(b - a - 1), a + 1);
    snprintf(seq, sl, "%s", b + 1);
}

/* The change rows after cursor c, in feed order: kind, key, new version,
 * for rows the regency reg (NULL: any) sees. */
static PGresult *feed_after(const char *c, const char *reg)
{
    char t[32] = "0", s[32] = "0";
    if (c && c[0])
        cursor_pos(c, t, sizeof t, s, sizeof s);
    return q("SELECT kind, coalesce(record_id, sentra_id), new_version FROM sentra_change"
             " WHERE (txid, seq) > ('%s'::xid8, %s)%s%s%s%s%s ORDER BY txid, seq", t, s,
             reg ? " AND ('" : "", reg ? reg : "", reg ? "' IN (regency_code, coalesce(old_regency_code, ''))" : "",
             "", "");
}


static int64_t version_of(const char *table, const char *keycol, const char *key)
{
    return q_ll("SELECT version FROM %s WHERE %s = '%s'", table, keycol, key);
}


/* ---------------------------------------------------------------- feed order */

/* After a cursor: a sentra and one record of each kind, an update and a
 * delete. Pulled one change a page, the records come in exactly the order
 * of the change rows (each as it is now: the deleted obstacle as a
 * tombstone, also at its creation); in one page each record once, at its
 * last row. A pull naming no kinds sees the sentra alone; another district
 * sees nothing, and every cursor reaches the end. */
static void feed_order(void **state)
{
    (void)state;
    char *c0 = NULL;
    pull_all(K_NAT, "", ALL_KINDS, 5, 5000, NULL, 0, &c0, NULL);
    char *c0_legacy = NULL;
    pull_all(K_NAT, "", NULL, 0, 5000, NULL, 0, &c0_legacy, NULL);

    char *sid = create_sentra(K_DIST, "18.71", "Sentra Uji Umpan (data uji)");
    char *mid = create_member(K_DIST, sid, "IKM Umpan Satu");
    set_institution(K_DIST, sid, 0);
    char *aid = create_assistance(K_DIST, sid);
    char *oid = create_obstacle(K_DIST, sid, aid);
    Sentra__V1__UpdateMemberRequest ur = SENTRA__V1__UPDATE_MEMBER_REQUEST__INIT;
    Sentra__V1__Member um = SENTRA__V1__MEMBER__INIT, *uo = NULL;
    const char *mask[] = {"products"};
    um.id = mid;
    um.products = "Keripik";
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

    PGresult *want = feed_after(c0, NULL);
    int nw = PQntuples(want);
    assert_int_equal(nw, 7);
    seen_t got[64];
    size_t n = pull_all(K_NAT, c0, ALL_KINDS, 5, 1, got, 64, NULL, NULL);
    assert_int_equal(n, (size_t)nw);
    for (int i = 0; i < nw; i++) {
        assert_int_equal(got[i].kind, atoi(PQgetvalue(want, i, 0)));
        assert_string_equal(got[i].key, PQgetvalue(want, i, 1));
        assert_true(got[i].version >= atoll(PQgetvalue(want, i, 2)));
        assert_int_equal(got[i].deleted, got[i].kind == 4);   /* the obstacle is gone now */
    }
    /* the same in one page: each record once, at its last row */
    n = pull_all(K_NAT, c0, ALL_KINDS, 5, 5000, got, 64, NULL, NULL);
    assert_int_equal(n, 5);
    static const int order[] = {1, 3, 5, 2, 4};      /* by each record's last change */
    for (int i = 0; i < 5; i++)
        assert_int_equal(got[i].kind, order[i]);
    assert_int_equal(got[3].version, 2);
    assert_string_equal(got[0].key, sid);
    /* the kinds asked, and only those */
    static const Sentra__V1__RecordKind members_only[] = {SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER};
    n = pull_all(K_NAT, c0, members_only, 1, 5000, got, 64, NULL, NULL);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].key, mid);

    /* an app that knows only sentra: the sentra, in `changes`, nothing more */
    size_t legacy = 0;
    char *c1 = NULL;
    n = pull_all(K_NAT, c0_legacy, NULL, 0, 5000, NULL, 0, &c1, &legacy);
    assert_int_equal(legacy, 1);
    Sentra__V1__PullChangesResponse *r = pull(K_NAT, c1, NULL, 0, 100);
    assert_int_equal(r->n_changes, 0);
    assert_false(r->more);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* and its cursor passed the records' rows: nothing more comes */
    r = pull(K_DIST, "", NULL, 0, 5000);
    int found = 0;
    for (size_t i = 0; i < r->n_changes; i++)
        found += strcmp(r->changes[i]->id, sid) == 0;
    assert_int_equal(found, 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* another district: nothing of this, but its cursor moves on */
    char *c2 = NULL;
    n = pull_all(K_DIST2, c0, ALL_KINDS, 5, 5000, got, 64, &c2, NULL);
    assert_int_equal(n, 0);
    assert_string_not_equal(c2, c0);

    PQclear(want);
    free(c0);
    free(c0_legacy);
    free(c1);
    free(c2);
    free(sid);
    free(mid);
    free(aid);
    free(oid);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- moves and deletes */

/* A sentra of 18.71 with a member, an institution, an assistance and an
 * obstacle moves to 18.72: 18.71's app gets a tombstone for the sentra and
 * for each record, 18.72's app gets them all as records. Then it is
 * deleted: 18.72's app gets a tombstone for each, at its new version. */
static void children_follow(void **state)
{
    (void)state;
    char *c71 = NULL, *c72 = NULL;
    char *sid = create_sentra(K_DIST, "18.71", "Sentra Uji Pindah (data uji)");
    char *mid = create_member(K_DIST, sid, "IKM Pindah Satu");
    char *mid2 = create_member(K_DIST, sid, "IKM Pindah Dua");
    set_institution(K_DIST, sid, 0);
    char *aid = create_assistance(K_DIST, sid);
    char *oid = create_obstacle(K_DIST, sid, aid);
    pull_all(K_DIST, "", ALL_KINDS, 5, 5000, NULL, 0, &c71, NULL);
    pull_all(K_DIST2, "", ALL_KINDS, 5, 5000, NULL, 0, &c72, NULL);

    /* the move, by the province */
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__GetSentraRequest gs = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra *s = NULL, *moved = NULL;
    gs.id = sid;
    assert_int_equal(sentra_get_sentra(cl[K_PROV], &gs, &s, NULL, &st), 0);
    Sentra__V1__Sentra mv = *s;
    mv.regency_code = "18.72";
    Sentra__V1__UpdateSentraRequest us = SENTRA__V1__UPDATE_SENTRA_REQUEST__INIT;
    const char *mask[] = {"regency_code"};
    us.sentra = &mv;
    us.update_mask = (char **)mask;
    us.n_update_mask = 1;
    us.expected_version = s->version;
    assert_int_equal(sentra_update_sentra(cl[K_PROV], &us, &moved, NULL, &st), 0);

    seen_t got[64];
    char *e71 = NULL, *e72 = NULL;
    size_t n = pull_all(K_DIST, c71, ALL_KINDS, 5, 5000, got, 64, &e71, NULL);
    assert_int_equal(n, 6);
    int kinds_seen = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(got[i].deleted);
        kinds_seen |= 1 << got[i].kind;
    }
    assert_int_equal(kinds_seen, 0x3e);
    assert_int_equal(got[0].kind, 1);                      /* the sentra first: its row */
    n = pull_all(K_DIST2, c72, ALL_KINDS, 5, 5000, got, 64, &e72, NULL);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++) {
        assert_false(got[i].deleted);
        if (got[i].kind == 2)
            assert_int_equal(got[i].version, version_of("member", "id", got[i].key));
    }
    assert_int_equal(version_of("member", "id", mid), 2);

    /* the delete, by the new district */
    Sentra__V1__DeleteSentraRequest ds = SENTRA__V1__DELETE_SENTRA_REQUEST__INIT;
    Sentra__V1__DeleteSentraResponse *dd = NULL;
    ds.id = sid;
    ds.expected_version = moved->version;
    assert_int_equal(sentra_delete_sentra(cl[K_DIST2], &ds, &dd, NULL, &st), 0);
    protobuf_c_message_free_unpacked(&dd->base, NULL);
    n = pull_all(K_DIST2, e72, ALL_KINDS, 5, 5000, got, 64, NULL, NULL);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++) {
        assert_true(got[i].deleted);
        if (got[i].kind == 2)
            assert_int_equal(got[i].version, 3);
    }
    /* the old district has nothing more to hear */
    n = pull_all(K_DIST, e71, ALL_KINDS, 5, 5000, got, 64, NULL, NULL);
    assert_int_equal(n, 0);

    protobuf_c_message_free_unpacked(&s->base, NULL);
    protobuf_c_message_free_unpacked(&moved->base, NULL);
    free(c71);
    free(c72);
    free(e71);
    free(e72);
    free(sid);
    free(mid);
    free(mid2);
    free(aid);
    free(oid);
    sentra_status_clear(&st);
}

/* A hard DELETE of a sentra in SQL removes its records through the foreign
 * keys; each reaches the puller as a tombstone above the version it held. */
static void hard_delete(void **state)
{
    (void)state;
    char *sid = create_sentra(K_DIST, "18.71", "Sentra Uji Hapus Keras (data uji)");
    char *mid = create_member(K_DIST, sid, "IKM Hapus Keras");
    set_institution(K_DIST, sid, 0);
    char *c = NULL;
    seen_t got[16];
    size_t n = pull_all(K_DIST, "", ALL_KINDS, 5, 5000, NULL, 0, &c, NULL);
    PGresult *r = q("DELETE FROM sentra WHERE id = '%s'", sid);
    PQclear(r);
    n = pull_all(K_DIST, c, ALL_KINDS, 5, 5000, got, 16, NULL, NULL);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_true(got[i].deleted);
        assert_int_equal(got[i].version, 2);
    }
    assert_int_equal(q_ll("SELECT count(*) FROM record_purged WHERE id IN ('%s', '%s')", mid, sid), 2);
    free(c);
    free(sid);
    free(mid);
}

/* ---------------------------------------------------------------- push */

static Sentra__V1__PushChangesResponse *push(int who, const char *client_id, Sentra__V1__Mutation **m,
                                             size_t n, int atomic)
{
    Sentra__V1__PushChangesRequest rq = SENTRA__V1__PUSH_CHANGES_REQUEST__INIT;
    Sentra__V1__PushChangesResponse *r = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    rq.client_id = (char *)client_id;
    rq.mutations = m;
    rq.n_mutations = n;
    rq.atomic = atomic;
    if (sentra_push_changes(cl[who], &rq, &r, NULL, &st) != 0)
        fail_status("PushChanges", &st);
    sentra_status_clear(&st);
    assert_int_equal(r->n_results, n);
    return r;
}

static const Sentra__V1__FieldViolation *result_violation(const Sentra__V1__MutationResult *r,
                                                          const char *field)
{
    for (size_t i = 0; i < r->n_violations; i++)
        if (strcmp(r->violations[i]->field, field) == 0)
            return r->violations[i];
    for (size_t i = 0; i < r->n_violations; i++)
        fprintf(stderr, "  got %s: %s\n", r->violations[i]->field, r->violations[i]->description);
    fail_msg("no violation on %s (outcome %d)", field, r->outcome);
    return NULL;
}

#define APPLIED SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED
#define CONFLICT SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT
#define REJECTED SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED

/* One batch of every kind, replayed; conflicts carry the server's record
 * of the kind; rejections name the kind's fields; atomic batches apply all
 * or nothing; a replayed conflict of a record that left the scope shows its
 * tombstone only. */
static void push_every_kind(void **state)
{
    (void)state;
    const char *P = "5e1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c01";
    const char *M1 = "5e1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c02";
    const char *A1 = "5e1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c03";
    const char *O1 = "5e1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c04";
    Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
    s.id = (char *)P;
    s.regency_code = "18.71";
    s.name = "Sentra Uji Dorong (data uji)";
    s.kbli_code = "10761";
    s.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    s.sector_group = SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD;
    s.status = SENTRA__V1__STATUS__STATUS_FORMED;
    Sentra__V1__Member mem = member_of(P, "IKM Dorong Satu");
    mem.id = (char *)M1;
    mem.nib = "0000777788889";
    Sentra__V1__Institution in = SENTRA__V1__INSTITUTION__INIT;
    Sentra__V1__Board b = SENTRA__V1__BOARD__INIT;
    in.sentra_id = (char *)P;
    in.form = SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_SENTRA_BOARD;
    b.chair = "Pak Ketua";
    in.board = &b;
    Sentra__V1__Assistance as = SENTRA__V1__ASSISTANCE__INIT;
    char *rcp[] = {(char *)M1};
    as.id = (char *)A1;
    as.sentra_id = (char *)P;
    as.kind = SENTRA__V1__ASSISTANCE_KIND__ASSISTANCE_KIND_CERTIFICATION;
    as.certification = SENTRA__V1__CERTIFICATION__CERTIFICATION_HALAL;
    as.provider = SENTRA__V1__PROVIDER__PROVIDER_KEMENPERIN;
    as.programme = "Sertifikasi halal dorong";
    as.year = 2022;
    as.value = 9000000;
    as.recipient_member_ids = rcp;
    as.n_recipient_member_ids = 1;
    Sentra__V1__Obstacle ob = SENTRA__V1__OBSTACLE__INIT;
    ob.id = (char *)O1;
    ob.sentra_id = (char *)P;
    ob.category = SENTRA__V1__OBSTACLE_CATEGORY__OBSTACLE_CATEGORY_QUALITY;
    ob.description = "Belum halal";
    ob.severity = SENTRA__V1__SEVERITY__SEVERITY_HIGH;
    ob.reported_on = "2022-02-01";
    ob.status = SENTRA__V1__OBSTACLE_STATUS__OBSTACLE_STATUS_RESOLVED;
    ob.resolution = "Sertifikat terbit";
    ob.resolved_on = "2022-09-01";
    ob.assistance_id = (char *)A1;

    Sentra__V1__Mutation mu[5];
    Sentra__V1__Mutation *mp[5];
    for (int i = 0; i < 5; i++) {
        sentra__v1__mutation__init(&mu[i]);
        mu[i].op = SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT;
        mp[i] = &mu[i];
    }
    mu[0].mutation_id = "k-1";
    mu[0].sentra = &s;
    mu[1].mutation_id = "k-2";
    mu[1].member = &mem;
    mu[2].mutation_id = "k-3";
    mu[2].institution = &in;
    mu[3].mutation_id = "k-4";
    mu[3].assistance = &as;
    mu[4].mutation_id = "k-5";
    mu[4].obstacle = &ob;
    long long rows0 = q_ll("SELECT count(*) FROM sentra_change");
    Sentra__V1__PushChangesResponse *r = push(K_DIST, "app-kinds", mp, 5, 0);
    for (int i = 0; i < 5; i++) {
        if (r->results[i]->outcome != APPLIED)
            result_violation(r->results[i], "?");
        assert_int_equal(r->results[i]->version, 1);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_int_equal(q_ll("SELECT count(*) FROM sentra_change") - rows0, 5);
    assert_int_equal(q_ll("SELECT count(*) FROM sentra_change WHERE sentra_id = '%s'", P), 5);
    /* replayed: the same outcomes, nothing new */
    r = push(K_DIST, "app-kinds", mp, 5, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(r->results[i]->outcome, APPLIED);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_int_equal(q_ll("SELECT count(*) FROM sentra_change") - rows0, 5);

    /* the server changes the member; a push based on version 1 conflicts */
    PGresult *x = q("UPDATE member SET products = 'Keripik' WHERE id = '%s'", M1);
    PQclear(x);
    Sentra__V1__Mutation cm = SENTRA__V1__MUTATION__INIT, *cmp = &cm;
    Sentra__V1__Member mem2 = mem;
    mem2.name = "IKM Dorong Satu Baru";
    cm.mutation_id = "k-6";
    cm.op = SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT;
    cm.member = &mem2;
    cm.base_version = 1;
    r = push(K_DIST, "app-kinds", &cmp, 1, 0);
    assert_int_equal(r->results[0]->outcome, CONFLICT);
    assert_non_null(r->results[0]->current_record);
    assert_int_equal(r->results[0]->current_record->record_case, SENTRA__V1__RECORD__RECORD_MEMBER);
    assert_int_equal(r->results[0]->current_record->member->version, 2);
    assert_string_equal(r->results[0]->current_record->member->products, "Keripik");
    assert_null(r->results[0]->current);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* based on the right version: a full replacement */
    cm.mutation_id = "k-7";
    cm.base_version = 2;
    r = push(K_DIST, "app-kinds", &cmp, 1, 0);
    assert_int_equal(r->results[0]->outcome, APPLIED);
    assert_int_equal(r->results[0]->version, 3);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    char *prod = q_str("SELECT products || '|' || name FROM member WHERE id = '%s'", M1);
    assert_string_equal(prod, "|IKM Dorong Satu Baru");    /* replaced whole */
    free(prod);

    /* rejections name the kind's fields */
    Sentra__V1__Member bad = member_of(P, "IKM Dorong Salah");
    bad.id = "5e1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c05";
    bad.nib = "12";
    Sentra__V1__Member far = member_of(q_str("SELECT md5('demo-lampung-71')::uuid"), "IKM Dorong Jauh");
    far.id = "5e1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c06";
    Sentra__V1__Member dup = member_of(P, "IKM Dorong Kembar");
    dup.id = "5e1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c07";
    dup.nib = "0000777788889";
    Sentra__V1__Mutation rm[4];
    Sentra__V1__Mutation *rmp[4];
    for (int i = 0; i < 4; i++) {
        sentra__v1__mutation__init(&rm[i]);
        rm[i].op = SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT;
        rmp[i] = &rm[i];
    }
    rm[0].mutation_id = "r-1";
    rm[0].member = &bad;
    rm[1].mutation_id = "r-2";
    rm[1].member = &far;
    rm[2].mutation_id = "r-3";
    rm[2].member = &dup;
    rm[3].mutation_id = "r-4";
    rm[3].member = &dup;
    rm[3].obstacle = &ob;                       /* two records in one mutation */
    r = push(K_DIST, "app-kinds", rmp, 4, 0);
    assert_int_equal(r->results[0]->outcome, REJECTED);
    result_violation(r->results[0], "member.nib");
    assert_int_equal(r->results[1]->outcome, REJECTED);
    result_violation(r->results[1], "member.sentra_id");
    assert_int_equal(r->results[2]->outcome, REJECTED);
    result_violation(r->results[2], "member.nib");
    assert_int_equal(r->results[3]->outcome, REJECTED);
    result_violation(r->results[3], "sentra");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    free(far.sentra_id);

    /* atomic: the good one is not applied either, and nothing is stored */
    Sentra__V1__Member good = member_of(P, "IKM Dorong Baik");
    good.id = "5e1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c08";
    rm[0].mutation_id = "a-1";
    rm[0].member = &good;
    rm[1].mutation_id = "a-2";
    rm[1].member = &bad;
    r = push(K_DIST, "app-kinds", rmp, 2, 1);
    assert_int_equal(r->results[0]->outcome, REJECTED);
    assert_non_null(strstr(result_violation(r->results[0], "atomic")->description, "mutations[1]"));
    assert_int_equal(r->results[1]->outcome, REJECTED);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_int_equal(q_ll("SELECT count(*) FROM member WHERE id = '%s'", good.id), 0);
    assert_int_equal(q_ll("SELECT count(*) FROM sync_mutation WHERE mutation_id IN ('a-1', 'a-2')"), 0);

    /* a delete of a child */
    Sentra__V1__Mutation dm = SENTRA__V1__MUTATION__INIT, *dmp = &dm;
    Sentra__V1__Obstacle key = SENTRA__V1__OBSTACLE__INIT;
    key.id = (char *)O1;
    dm.mutation_id = "d-1";
    dm.op = SENTRA__V1__MUTATION_OP__MUTATION_OP_DELETE;
    dm.obstacle = &key;
    dm.base_version = 1;
    r = push(K_DIST, "app-kinds", &dmp, 1, 0);
    assert_int_equal(r->results[0]->outcome, APPLIED);
    assert_int_equal(r->results[0]->version, 2);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* the sentra moves away: replaying the stored conflict shows only the
     * member's tombstone, not the record */
    x = q("UPDATE sentra SET regency_code = '18.72' WHERE id = '%s'", P);
    PQclear(x);
    cm.mutation_id = "k-6";
    cm.base_version = 1;
    r = push(K_DIST, "app-kinds", &cmp, 1, 0);
    assert_int_equal(r->results[0]->outcome, CONFLICT);
    const Sentra__V1__Member *t = r->results[0]->current_record->member;
    assert_true(t->deleted);
    assert_string_equal(t->id, M1);
    assert_int_equal(t->version, 4);
    assert_string_equal(t->name, "");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_int_equal(q_ll("SELECT count(*) FROM sync_mutation WHERE client_id = 'app-kinds' AND kind = 2"), 7);
}

/* ---------------------------------------------------------------- pull equals get */

/* A record pulled and the same record got are the same bytes, for every
 * kind: the printed text of <kind>_pull_src and the view <kind>_api agree. */
static void pull_equals_get(void **state)
{
    (void)state;
    char *mid = q_str("SELECT id FROM member WHERE deleted_at IS NULL AND regency_code = '18.71'"
                      " AND nib IS NOT NULL AND kbli_code IS NOT NULL ORDER BY id LIMIT 1");
    char *iid = q_str("SELECT sentra_id FROM institution WHERE deleted_at IS NULL AND regency_code = '18.71'"
                      " AND facility_name <> '' ORDER BY 1 LIMIT 1");
    char *oid = q_str("SELECT id FROM obstacle WHERE deleted_at IS NULL AND regency_code = '18.71'"
                      " AND assistance_id IS NOT NULL ORDER BY id LIMIT 1");
    char *aid = q_str("SELECT id FROM assistance WHERE deleted_at IS NULL AND regency_code = '18.71'"
                      " AND cardinality(recipient_member_ids) > 0 ORDER BY id LIMIT 1");
    assert_true(mid[0] && iid[0] && oid[0] && aid[0]);
    int found = 0;
    char *cur = strdup("");
    sentra_status_t st;
    sentra_status_init(&st);
    for (int pages = 0; pages < 1000; pages++) {
        Sentra__V1__PullChangesResponse *r = pull(K_DIST, cur, ALL_KINDS, 5, 500);
        for (size_t i = 0; i < r->n_records; i++) {
            const Sentra__V1__Record *rec = r->records[i];
            ProtobufCMessage *pulled = NULL, *got = NULL;
            int rc = -1;
            if (rec->record_case == SENTRA__V1__RECORD__RECORD_MEMBER && strcmp(rec->member->id, mid) == 0) {
                Sentra__V1__GetMemberRequest g = SENTRA__V1__GET_MEMBER_REQUEST__INIT;
                g.id = mid;
                pulled = &rec->member->base;
                rc = sentra_get_member(cl[K_DIST], &g, (Sentra__V1__Member **)&got, NULL, &st);
            } else if (rec->record_case == SENTRA__V1__RECORD__RECORD_INSTITUTION &&
                       strcmp(rec->institution->sentra_id, iid) == 0) {
                Sentra__V1__GetInstitutionRequest g = SENTRA__V1__GET_INSTITUTION_REQUEST__INIT;
                g.sentra_id = iid;
                pulled = &rec->institution->base;
                rc = sentra_get_institution(cl[K_DIST], &g, (Sentra__V1__Institution **)&got, NULL, &st);
            } else if (rec->record_case == SENTRA__V1__RECORD__RECORD_OBSTACLE &&
                       strcmp(rec->obstacle->id, oid) == 0) {
                Sentra__V1__GetObstacleRequest g = SENTRA__V1__GET_OBSTACLE_REQUEST__INIT;
                g.id = oid;
                pulled = &rec->obstacle->base;
                rc = sentra_get_obstacle(cl[K_DIST], &g, (Sentra__V1__Obstacle **)&got, NULL, &st);
            } else if (rec->record_case == SENTRA__V1__RECORD__RECORD_ASSISTANCE &&
                       strcmp(rec->assistance->id, aid) == 0) {
                Sentra__V1__GetAssistanceRequest g = SENTRA__V1__GET_ASSISTANCE_REQUEST__INIT;
                g.id = aid;
                pulled = &rec->assistance->base;
                rc = sentra_get_assistance(cl[K_DIST], &g, (Sentra__V1__Assistance **)&got, NULL, &st);
            }
            if (!pulled)
                continue;
            assert_int_equal(rc, 0);
            size_t a = protobuf_c_message_get_packed_size(pulled), b = protobuf_c_message_get_packed_size(got);
            uint8_t *pa = malloc(a + 1), *pb = malloc(b + 1);
            protobuf_c_message_pack(pulled, pa);
            protobuf_c_message_pack(got, pb);
            if (a != b || memcmp(pa, pb, a) != 0)
                fail_msg("kind %d: the pulled record (%zu bytes) is not the one Get answers (%zu bytes)",
                         (int)rec->record_case, a, b);
            free(pa);
            free(pb);
            protobuf_c_message_free_unpacked(got, NULL);
            found++;
        }
        free(cur);
        cur = strdup(r->next_cursor);
        int more = r->more;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        if (!more)
            break;
    }
    assert_int_equal(found, 4);
    free(cur);
    free(mid);
    free(iid);
    free(oid);
    free(aid);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- requests, compaction */

static void kinds_refused(void **state)
{
    (void)state;
    Sentra__V1__PullChangesRequest rq = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
    Sentra__V1__PullChangesResponse *r = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__RecordKind bad[] = {2, 9};
    rq.kinds = bad;
    rq.n_kinds = 2;
    assert_int_not_equal(sentra_pull_changes(cl[K_NAT], &rq, &r, NULL, &st), 0);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_int_equal(st.n_violations, 1);
    assert_string_equal(st.violations[0].field, "kinds[1]");
    Sentra__V1__RecordKind twice[] = {2, 2};
    rq.kinds = twice;
    assert_int_not_equal(sentra_pull_changes(cl[K_NAT], &rq, &r, NULL, &st), 0);
    assert_string_equal(st.violations[0].field, "kinds[1]");
    sentra_status_clear(&st);
}

/* Compaction (sync_compact) keeps every record reachable at its version:
 * a pull from the beginning after it yields each live member once, at the
 * version the table holds. */
static void compaction(void **state)
{
    (void)state;
    PGresult *r = q("SELECT sync_compact(interval '0 seconds')");
    PQclear(r);
    static const Sentra__V1__RecordKind members_only[] = {SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER};
    size_t max = 4096;
    seen_t *got = calloc(max, sizeof *got);
    size_t n = pull_all(K_NAT, "", members_only, 1, 5000, got, max, NULL, NULL);
    assert_int_equal((long long)n, q_ll("SELECT count(*) FROM member") +
                                   q_ll("SELECT count(*) FROM record_purged WHERE kind = 2"));
    size_t live = 0;
    for (size_t i = 0; i < n && i < max; i++) {
        if (got[i].deleted)
            continue;
        live++;
        assert_int_equal(got[i].version, version_of("member", "id", got[i].key));
    }
    assert_int_equal((long long)live, q_ll("SELECT count(*) FROM member WHERE deleted_at IS NULL"));
    assert_int_equal(q_ll("SELECT count(*) FROM sentra_derived_drift()"), 0);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(feed_order),
        cmocka_unit_test(children_follow),
        cmocka_unit_test(hard_delete),
        cmocka_unit_test(push_every_kind),
        cmocka_unit_test(pull_equals_get),
        cmocka_unit_test(kinds_refused),
        cmocka_unit_test(compaction),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
