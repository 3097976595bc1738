/*
 * test_scope.c: every SentraService and TokenService method tried from a
 * token of another district, another province and a read-only role, against
 * a live server. The rules (docs/DATA_MODEL.md): records outside a token's
 * scope are NOT_FOUND for Get (ids of other districts do not leak through
 * reads) and invisible to List; every write outside the scope (update,
 * delete, creating or moving a record there) is PERMISSION_DENIED; national tokens read everything and write
 * nothing; only admin tokens manage tokens; every valid token, admin
 * included, reads itself with WhoAmI (and nothing else through it); no or a
 * bad token is UNAUTHENTICATED.
 */
#include "sentra_fixture.h"

/* The record every test works on: created by the district 18.71 token. */
static Sentra__V1__Sentra *target;

static int make_target(void **state)
{
    rec_t r;
    sentra_status_t st;

    if (fixture_setup(state) != 0)
        return -1;
    sentra_status_init(&st);
    rec_init(&r, "scope target");
    target = create_as(T_DIST, &r, NULL, &st);
    if (!target) {
        fprintf(stderr, "cannot create the target: %s\n", st.message ? st.message : "");
        return -1;
    }
    sentra_status_clear(&st);
    return 0;
}

static int drop_target(void **state)
{
    if (target)
        sentra__v1__sentra__free_unpacked(target, NULL);
    return fixture_teardown(state);
}

/* The target's current version (read with the owner's token). */
static int64_t target_version(void)
{
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__Sentra *s = get_as(T_DIST, target->id, &st);
    assert_non_null(s);
    int64_t v = s->version;
    sentra__v1__sentra__free_unpacked(s, NULL);
    sentra_status_clear(&st);
    return v;
}

static const int outsiders[] = {T_DIST_OTHER, T_DIST_FAR, T_PROV_OTHER};

/* ---------------------------------------------------------------- create */

static void create_outside_scope(void **state)
{
    sentra_status_t st;
    rec_t r;

    sentra_status_init(&st);
    rec_init(&r, "scope create");
    for (size_t i = 0; i < 3; i++) {
        assert_null(create_as(outsiders[i], &r, NULL, &st));
        assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    }
    /* read-only and admin roles write nothing */
    assert_null(create_as(T_NATIONAL, &r, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    assert_null(create_as(T_ADMIN, &r, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    /* the province writes in its regencies */
    Sentra__V1__Sentra *s = create_as(T_PROV, &r, NULL, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_string_equal(s->created_by, fx.token_id[T_PROV]);
    sentra__v1__sentra__free_unpacked(s, NULL);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- get */

static void get_outside_scope(void **state)
{
    sentra_status_t st;

    sentra_status_init(&st);
    for (size_t i = 0; i < 3; i++) {
        assert_null(get_as(outsiders[i], target->id, &st));
        assert_code(st, SENTRA__V1__CODE__NOT_FOUND);   /* not PERMISSION_DENIED */
    }
    /* admin tokens manage tokens only */
    assert_null(get_as(T_ADMIN, target->id, &st));
    assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    int readers[] = {T_DIST, T_PROV, T_NATIONAL};
    for (size_t i = 0; i < 3; i++) {
        Sentra__V1__Sentra *s = get_as(readers[i], target->id, &st);
        assert_code(st, SENTRA__V1__CODE__OK);
        assert_string_equal(s->id, target->id);
        sentra__v1__sentra__free_unpacked(s, NULL);
    }
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- update */

static void update_outside_scope(void **state)
{
    sentra_status_t st;
    rec_t r;
    const char *mask[] = {"address"};

    sentra_status_init(&st);
    rec_init(&r, "scope target");
    r.s.id = target->id;
    r.s.address = "changed by an outsider";
    int64_t v = target_version();
    for (size_t i = 0; i < 3; i++) {
        /* with the right version, so only the scope can refuse it */
        assert_null(update_as(outsiders[i], &r.s, mask, 1, v, NULL, &st));
        assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    }
    assert_null(update_as(T_NATIONAL, &r.s, mask, 1, v, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    assert_int_equal(target_version(), v);          /* nothing changed */

    /* moving the record out of the owner's scope is refused */
    const char *mmask[] = {"regency_code", "district_code", "village_code"};
    r.s.regency_code = "18.72";
    r.s.district_code = "";
    r.s.village_code = "";
    assert_null(update_as(T_DIST, &r.s, mmask, 3, v, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    r.s.regency_code = "31.71";                      /* the province cannot either */
    assert_null(update_as(T_PROV, &r.s, mmask, 3, v, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    assert_int_equal(target_version(), v);

    /* the owner's province may change it */
    r.s.address = "changed by the province";
    Sentra__V1__Sentra *s = update_as(T_PROV, &r.s, mask, 1, v, NULL, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_int_equal(s->version, v + 1);
    assert_string_equal(s->updated_by, fx.token_id[T_PROV]);
    sentra__v1__sentra__free_unpacked(s, NULL);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- delete */

static void delete_outside_scope(void **state)
{
    sentra_status_t st;

    sentra_status_init(&st);
    int64_t v = target_version();
    for (size_t i = 0; i < 3; i++) {
        assert_null(delete_as(outsiders[i], target->id, v, NULL, &st));
        assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    }
    assert_null(delete_as(T_NATIONAL, target->id, v, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    assert_null(delete_as(T_ADMIN, target->id, v, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    assert_int_equal(target_version(), v);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- list */

static void list_outside_scope(void **state)
{
    sentra_status_t st;
    char text[64];

    sentra_status_init(&st);
    snprintf(text, sizeof text, "uji %s scope target", fx.run);
    for (size_t i = 0; i < 3; i++) {
        Sentra__V1__ListSentraResponse *l = list_as(outsiders[i], text, NULL, 50, NULL, 0, 0, 1, &st);
        assert_code(st, SENTRA__V1__CODE__OK);
        assert_int_equal(l->n_sentra, 0);
        assert_int_equal(l->total, 0);
        sentra__v1__list_sentra_response__free_unpacked(l, NULL);
        /* filtering on the target's regency does not reach past the scope */
        l = list_as(outsiders[i], text, "18.71", 50, NULL, 0, 0, 1, &st);
        assert_code(st, SENTRA__V1__CODE__OK);
        assert_int_equal(l->n_sentra, 0);
        sentra__v1__list_sentra_response__free_unpacked(l, NULL);
    }
    int readers[] = {T_DIST, T_PROV, T_NATIONAL};
    for (size_t i = 0; i < 3; i++) {
        Sentra__V1__ListSentraResponse *l = list_as(readers[i], text, NULL, 50, NULL, 0, 0, 1, &st);
        assert_code(st, SENTRA__V1__CODE__OK);
        assert_int_equal(l->n_sentra, 1);
        assert_int_equal(l->total, 1);
        assert_string_equal(l->sentra[0]->id, target->id);
        sentra__v1__list_sentra_response__free_unpacked(l, NULL);
    }
    /* a district token's whole listing holds only its own regency */
    Sentra__V1__ListSentraResponse *l = list_as(T_DIST_OTHER, NULL, NULL, 1000, NULL, 0, 0, 0, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    for (size_t i = 0; i < l->n_sentra; i++)
        assert_string_equal(l->sentra[i]->regency_code, "18.72");
    sentra__v1__list_sentra_response__free_unpacked(l, NULL);
    l = list_as(T_PROV_OTHER, NULL, NULL, 1000, NULL, 0, 0, 0, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    for (size_t i = 0; i < l->n_sentra; i++)
        assert_string_equal(l->sentra[i]->province_code, "31");
    sentra__v1__list_sentra_response__free_unpacked(l, NULL);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- replays */

/* A create retried with its idempotency key after the province moved the
 * record to another district: the replay does not reveal it. */
static void idempotent_replay_respects_scope(void **state)
{
    sentra_status_t st;
    rec_t r;
    char key[64];

    sentra_status_init(&st);
    rec_init(&r, "scope replay");
    snprintf(key, sizeof key, "replay-%s", fx.run);
    Sentra__V1__Sentra *s = create_as(T_DIST, &r, key, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    Sentra__V1__Sentra *again = create_as(T_DIST, &r, key, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_string_equal(again->id, s->id);
    sentra__v1__sentra__free_unpacked(again, NULL);

    const char *mask[] = {"regency_code", "district_code", "village_code"};
    r.s.id = s->id;
    r.s.regency_code = "18.72";
    r.s.district_code = "";
    r.s.village_code = "";
    Sentra__V1__Sentra *moved = update_as(T_PROV, &r.s, mask, 3, s->version, NULL, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_string_equal(moved->regency_code, "18.72");
    sentra__v1__sentra__free_unpacked(moved, NULL);

    rec_init(&r, "scope replay");
    assert_null(create_as(T_DIST, &r, key, &st));
    assert_code(st, SENTRA__V1__CODE__NOT_FOUND);
    /* and the new district sees it */
    Sentra__V1__Sentra *got = get_as(T_DIST_OTHER, s->id, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    sentra__v1__sentra__free_unpacked(got, NULL);
    sentra__v1__sentra__free_unpacked(s, NULL);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- regions */

static void regions_for_everyone(void **state)
{
    sentra_status_t st;
    Sentra__V1__GetRegionRequest g = SENTRA__V1__GET_REGION_REQUEST__INIT;
    Sentra__V1__ListRegionsRequest l = SENTRA__V1__LIST_REGIONS_REQUEST__INIT;

    sentra_status_init(&st);
    g.code = "31.71";
    l.parent_code = "31";
    for (int who = T_DIST; who < T_COUNT; who++) {   /* every role but admin */
        Sentra__V1__Region *r = NULL;
        Sentra__V1__ListRegionsResponse *lr = NULL;
        assert_int_equal(sentra_get_region(fx.cl[who], &g, &r, NULL, &st), 0);
        assert_string_equal(r->code, "31.71");
        sentra__v1__region__free_unpacked(r, NULL);
        assert_int_equal(sentra_list_regions(fx.cl[who], &l, &lr, NULL, &st), 0);
        assert_true(lr->n_regions >= 1);
        sentra__v1__list_regions_response__free_unpacked(lr, NULL);
    }
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- tokens */

static void tokens_admin_only(void **state)
{
    sentra_status_t st;
    Sentra__V1__CreateTokenRequest c = SENTRA__V1__CREATE_TOKEN_REQUEST__INIT;
    Sentra__V1__ListTokensRequest l = SENTRA__V1__LIST_TOKENS_REQUEST__INIT;
    Sentra__V1__RevokeTokenRequest r = SENTRA__V1__REVOKE_TOKEN_REQUEST__INIT;

    sentra_status_init(&st);
    c.role = SENTRA__V1__ROLE__ROLE_NATIONAL;
    r.id = fx.token_id[T_DIST];
    for (int who = T_DIST; who < T_COUNT; who++) {
        Sentra__V1__CreateTokenResponse *cr = NULL;
        Sentra__V1__ListTokensResponse *lr = NULL;
        Sentra__V1__Token *t = NULL;
        assert_int_not_equal(sentra_create_token(fx.cl[who], &c, &cr, NULL, &st), 0);
        assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
        assert_int_not_equal(sentra_list_tokens(fx.cl[who], &l, &lr, NULL, &st), 0);
        assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
        assert_int_not_equal(sentra_revoke_token(fx.cl[who], &r, &t, NULL, &st), 0);
        assert_code(st, SENTRA__V1__CODE__PERMISSION_DENIED);
    }
    /* the district token still works: nobody revoked it */
    assert_int_equal(target_version() > 0, 1);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- who am I */

static void whoami_for_every_token(void **state)
{
    sentra_status_t st;
    Sentra__V1__WhoAmIRequest w = SENTRA__V1__WHO_AM_IREQUEST__INIT;
    static const struct { int role; const char *region; } want[T_COUNT] = {
        [T_ADMIN] = {SENTRA__V1__ROLE__ROLE_ADMIN, ""},
        [T_DIST] = {SENTRA__V1__ROLE__ROLE_DISTRICT, "18.71"},
        [T_DIST_OTHER] = {SENTRA__V1__ROLE__ROLE_DISTRICT, "18.72"},
        [T_DIST_FAR] = {SENTRA__V1__ROLE__ROLE_DISTRICT, "31.71"},
        [T_PROV] = {SENTRA__V1__ROLE__ROLE_PROVINCE, "18"},
        [T_PROV_OTHER] = {SENTRA__V1__ROLE__ROLE_PROVINCE, "31"},
        [T_NATIONAL] = {SENTRA__V1__ROLE__ROLE_NATIONAL, ""},
    };

    sentra_status_init(&st);
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    for (int who = T_ADMIN; who < T_COUNT; who++) {
        Sentra__V1__Token *t = NULL;
        int rc = sentra_who_am_i(fx.cl[who], &w, &t, NULL, &st);
        if (rc != 0)
            fail_msg("WhoAmI as %s: %s %s", token_names[who], sentra_status_name(st.code),
                     st.message ? st.message : "");
        assert_string_equal(t->id, fx.token_id[who]);
        assert_int_equal(t->role, want[who].role);
        assert_string_equal(t->region_code, want[who].region);
        if (who == T_ADMIN) {
            assert_string_equal(t->label, "integration test");
        } else {
            char label[64];
            snprintf(label, sizeof label, "test %s %s", fx.run, token_names[who]);
            assert_string_equal(t->label, label);
        }
        assert_true(t->created_at_ms > now_ms - 3600 * 1000 && t->created_at_ms <= now_ms + 60 * 1000);
        assert_int_equal(t->revoked_at_ms, 0);
        sentra__v1__token__free_unpacked(t, NULL);
    }
    sentra_status_clear(&st);
}

static void whoami_after_revocation(void **state)
{
    sentra_status_t st;
    sentra_status_init(&st);
    /* A token of its own, revoked: it is no one any more. */
    Sentra__V1__CreateTokenRequest c = SENTRA__V1__CREATE_TOKEN_REQUEST__INIT;
    Sentra__V1__CreateTokenResponse *cr = NULL;
    c.role = SENTRA__V1__ROLE__ROLE_DISTRICT;
    c.region_code = "18.71";
    c.label = "whoami revoked";
    assert_int_equal(sentra_create_token(fx.cl[T_ADMIN], &c, &cr, NULL, &st), 0);
    sentra_client_t *cl = client_with(cr->secret);
    Sentra__V1__WhoAmIRequest w = SENTRA__V1__WHO_AM_IREQUEST__INIT;
    Sentra__V1__Token *t = NULL;
    assert_int_equal(sentra_who_am_i(cl, &w, &t, NULL, &st), 0);
    assert_string_equal(t->id, cr->token->id);
    sentra__v1__token__free_unpacked(t, NULL);
    Sentra__V1__RevokeTokenRequest r = SENTRA__V1__REVOKE_TOKEN_REQUEST__INIT;
    r.id = cr->token->id;
    assert_int_equal(sentra_revoke_token(fx.cl[T_ADMIN], &r, &t, NULL, &st), 0);
    sentra__v1__token__free_unpacked(t, NULL);
    /* The revocation reaches the cache through NOTIFY: give it a moment. */
    int code = 0;
    for (int i = 0; i < 50; i++) {
        t = NULL;
        if (sentra_who_am_i(cl, &w, &t, NULL, &st) == 0) {
            sentra__v1__token__free_unpacked(t, NULL);
            usleep(100 * 1000);
            continue;
        }
        code = st.code;
        break;
    }
    assert_int_equal(code, SENTRA__V1__CODE__UNAUTHENTICATED);
    sentra_client_free(cl);
    sentra__v1__create_token_response__free_unpacked(cr, NULL);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- no token */

static void without_a_valid_token(void **state)
{
    sentra_status_t st;
    /* the last two are not even token-shaped: bytes that are not UTF-8
     * (once answered INVALID_ARGUMENT by the database's text input) and a
     * control character */
    const char *bad[] = {"", "snt_not_a_real_token", "Bearer x", "snt_\xff\xfe\x80", "snt_a\x01b"};

    sentra_status_init(&st);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sentra_client_t *cl = client_with(bad[i]);
        Sentra__V1__GetSentraRequest g = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
        Sentra__V1__Sentra *s = NULL;
        Sentra__V1__GetRegionRequest gr = SENTRA__V1__GET_REGION_REQUEST__INIT;
        Sentra__V1__Region *r = NULL;
        g.id = target->id;
        assert_int_not_equal(sentra_get_sentra(cl, &g, &s, NULL, &st), 0);
        assert_code(st, SENTRA__V1__CODE__UNAUTHENTICATED);
        gr.code = "18";
        assert_int_not_equal(sentra_get_region(cl, &gr, &r, NULL, &st), 0);
        assert_code(st, SENTRA__V1__CODE__UNAUTHENTICATED);
        Sentra__V1__WhoAmIRequest w = SENTRA__V1__WHO_AM_IREQUEST__INIT;
        Sentra__V1__Token *t = NULL;
        assert_int_not_equal(sentra_who_am_i(cl, &w, &t, NULL, &st), 0);
        assert_code(st, SENTRA__V1__CODE__UNAUTHENTICATED);
        sentra_client_free(cl);
    }
    sentra_status_clear(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_outside_scope),
        cmocka_unit_test(get_outside_scope),
        cmocka_unit_test(update_outside_scope),
        cmocka_unit_test(delete_outside_scope),
        cmocka_unit_test(list_outside_scope),
        cmocka_unit_test(idempotent_replay_respects_scope),
        cmocka_unit_test(regions_for_everyone),
        cmocka_unit_test(tokens_admin_only),
        cmocka_unit_test(whoami_for_every_token),
        cmocka_unit_test(whoami_after_revocation),
        cmocka_unit_test(without_a_valid_token),
    };
    return cmocka_run_group_tests(tests, make_target, drop_target);
}
