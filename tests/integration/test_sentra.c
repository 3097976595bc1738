/*
 * test_sentra.c: sentra records through the client library against a live
 * server and a real database: CRUD round trips, validation (in C and in
 * SQL), versions and concurrent updates, idempotency, listing with keyset
 * pages, regions and token management. See sentra_fixture.h for the set-up.
 */
#include "sentra_fixture.h"

#include <pthread.h>

/* ---------------------------------------------------------------- helpers */

static void assert_same_record(const Sentra__V1__Sentra *a, const Sentra__V1__Sentra *b)
{
    assert_string_equal(a->regency_code, b->regency_code);
    assert_string_equal(a->district_code, b->district_code);
    assert_string_equal(a->village_code, b->village_code);
    assert_string_equal(a->address, b->address);
    assert_int_equal(!a->location, !b->location);
    if (a->location) {
        assert_true(a->location->latitude == b->location->latitude);
        assert_true(a->location->longitude == b->location->longitude);
    }
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->commodity, b->commodity);
    assert_string_equal(a->main_product, b->main_product);
    assert_string_equal(a->kbli_code, b->kbli_code);
    assert_int_equal(a->kbli_version, b->kbli_version);
    assert_int_equal(a->sector_group, b->sector_group);
    assert_int_equal(a->status, b->status);
    assert_string_equal(a->formed_on, b->formed_on);
    assert_int_equal(!a->decree, !b->decree);
    if (a->decree) {
        assert_string_equal(a->decree->number, b->decree->number);
        assert_string_equal(a->decree->date, b->decree->date);
        assert_string_equal(a->decree->official, b->decree->official);
    }
    assert_string_equal(a->contact_name, b->contact_name);
    assert_string_equal(a->contact_phone, b->contact_phone);
    assert_int_equal(a->n_figures, b->n_figures);
    for (size_t i = 0; i < a->n_figures; i++) {
        const Sentra__V1__Figures *x = a->figures[i], *y = b->figures[i];
        assert_int_equal(x->year, y->year);
        assert_int_equal(x->business_units, y->business_units);
        assert_int_equal(x->workers_male, y->workers_male);
        assert_int_equal(x->workers_female, y->workers_female);
        assert_int_equal(x->investment, y->investment);
        assert_int_equal(x->production_value, y->production_value);
        assert_int_equal(x->material_value, y->material_value);
        assert_int_equal(x->capacity, y->capacity);
        assert_string_equal(x->capacity_unit, y->capacity_unit);
        assert_int_equal(x->export_share_bp, y->export_share_bp);
        assert_int_equal(x->n_export_destinations, y->n_export_destinations);
        for (size_t j = 0; j < x->n_export_destinations; j++)
            assert_string_equal(x->export_destinations[j], y->export_destinations[j]);
    }
}

static void uuid_of(char *out, int n)
{
    /* a v4-shaped UUID unique to this run */
    snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012lx", (unsigned)getpid(),
             (unsigned)(time(NULL) & 0xffff), (unsigned)(n & 0xfff),
             (unsigned)(random() & 0xfff), (unsigned long)random());
}

/* ---------------------------------------------------------------- CRUD */

static void crud_round_trip(void **state)
{
    rec_t r;
    sentra_status_t st;
    char id[40];

    sentra_status_init(&st);
    rec_init(&r, "crud");
    uuid_of(id, 1);
    r.s.id = id;                                   /* chosen by the client */

    Sentra__V1__Sentra *made = create_as(T_DIST, &r, NULL, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_string_equal(made->id, id);
    assert_int_equal(made->version, 1);
    assert_string_equal(made->province_code, "18");
    assert_string_equal(made->created_by, fx.token_id[T_DIST]);
    assert_string_equal(made->updated_by, fx.token_id[T_DIST]);
    assert_true(made->created_at_ms > 1700000000000LL);
    assert_false(made->deleted);
    assert_same_record(&r.s, made);

    Sentra__V1__Sentra *got = get_as(T_DIST, id, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_same_record(&r.s, got);
    assert_int_equal(got->version, 1);
    assert_int_equal(got->created_at_ms, made->created_at_ms);

    /* partial update: the name and the whole figures list */
    rec_t u;
    rec_init(&u, "crud renamed");
    u.s.id = id;
    u.s.n_figures = 1;
    u.f[0].year = 2024;
    u.f[0].business_units = 51;
    u.s.address = "ignored: not in the mask";
    const char *mask[] = {"name", "figures"};
    Sentra__V1__Sentra *upd = update_as(T_DIST, &u.s, mask, 2, 1, NULL, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_int_equal(upd->version, 2);
    assert_string_equal(upd->name, u.name);
    assert_string_equal(upd->address, r.s.address);
    assert_int_equal(upd->n_figures, 1);
    assert_int_equal(upd->figures[0]->year, 2024);
    assert_int_equal(upd->figures[0]->business_units, 51);
    assert_true(upd->updated_at_ms >= made->updated_at_ms);

    /* a stale version: ABORTED with the current one, nothing changed */
    const char *mask2[] = {"address"};
    Sentra__V1__Sentra *stale = update_as(T_DIST, &u.s, mask2, 1, 1, NULL, &st);
    assert_null(stale);
    assert_code(st, SENTRA__V1__CODE__ABORTED);
    assert_int_equal(st.current_version, 2);

    /* delete with a stale version, then with the right one */
    Sentra__V1__DeleteSentraResponse *del = delete_as(T_DIST, id, 1, NULL, &st);
    assert_null(del);
    assert_code(st, SENTRA__V1__CODE__ABORTED);
    assert_int_equal(st.current_version, 2);
    del = delete_as(T_DIST, id, 2, NULL, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_string_equal(del->id, id);
    assert_int_equal(del->version, 3);

    /* the tombstone is not found, not listed, not updatable, and keeps its id */
    assert_null(get_as(T_DIST, id, &st));
    assert_code(st, SENTRA__V1__CODE__NOT_FOUND);
    assert_null(update_as(T_DIST, &u.s, mask2, 1, 3, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__NOT_FOUND);
    Sentra__V1__ListSentraResponse *l = list_as(T_DIST, "crud renamed", NULL, 10, NULL, 0, 0, 1, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_int_equal(l->n_sentra, 0);
    assert_int_equal(l->total, 0);
    assert_null(create_as(T_DIST, &r, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__ALREADY_EXISTS);

    sentra__v1__list_sentra_response__free_unpacked(l, NULL);
    sentra__v1__delete_sentra_response__free_unpacked(del, NULL);
    sentra__v1__sentra__free_unpacked(upd, NULL);
    sentra__v1__sentra__free_unpacked(got, NULL);
    sentra__v1__sentra__free_unpacked(made, NULL);
    sentra_status_clear(&st);
}

static void server_chosen_id_and_minimal_record(void **state)
{
    rec_t r;
    sentra_status_t st;

    sentra_status_init(&st);
    rec_init(&r, "minimal");
    r.s.status = SENTRA__V1__STATUS__STATUS_FORMED;   /* no decree, no figures needed */
    r.s.decree = NULL;
    r.s.n_figures = 0;
    r.s.location = NULL;
    r.s.district_code = "";
    r.s.village_code = "";
    r.s.formed_on = "";
    Sentra__V1__Sentra *made = create_as(T_DIST, &r, NULL, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_int_equal(strlen(made->id), 36);
    assert_null(made->location);
    assert_null(made->decree);
    assert_int_equal(made->n_figures, 0);
    assert_string_equal(made->district_code, "");
    assert_string_equal(made->formed_on, "");

    /* a full update (empty mask) that designates it without a decree or
     * figures is refused by the validator, field by field */
    r.s.id = made->id;
    r.s.status = SENTRA__V1__STATUS__STATUS_DESIGNATED;
    assert_null(update_as(T_DIST, &r.s, NULL, 0, 1, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_true(has_violation(&st, "decree.number"));
    assert_true(has_violation(&st, "decree.date"));
    assert_true(has_violation(&st, "figures"));

    /* designating through a partial mask is checked by SQL on the merged
     * record: the stored record has no decree and no figures */
    const char *mask[] = {"status"};
    assert_null(update_as(T_DIST, &r.s, mask, 1, 1, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_true(has_violation(&st, "decree.number"));
    assert_true(has_violation(&st, "decree.date"));

    Sentra__V1__Sentra *got = get_as(T_DIST, made->id, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_int_equal(got->version, 1);                  /* nothing stored */
    assert_int_equal(got->status, SENTRA__V1__STATUS__STATUS_FORMED);

    sentra__v1__sentra__free_unpacked(got, NULL);
    sentra__v1__sentra__free_unpacked(made, NULL);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- validation */

static void validation_errors(void **state)
{
    rec_t r;
    sentra_status_t st;

    sentra_status_init(&st);

    /* several broken fields at once: one violation each, nothing stored */
    rec_init(&r, "invalid");
    r.s.name = "ab";
    r.loc.latitude = 20;
    r.s.kbli_code = "47111";                             /* retail, not manufacturing */
    r.dec.date = "2018-01-01";                           /* before formation */
    r.f[1].workers_female = -3;
    assert_null(create_as(T_DIST, &r, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_int_equal(st.n_violations, 5);
    assert_true(has_violation(&st, "name"));
    assert_true(has_violation(&st, "location.latitude"));
    assert_true(has_violation(&st, "kbli_code"));
    assert_true(has_violation(&st, "decree.date"));
    assert_true(has_violation(&st, "figures[1].workers_female"));

    /* rules only the database knows: the regency must exist */
    rec_init(&r, "invalid region");
    r.s.regency_code = "18.99";
    r.s.district_code = "";
    r.s.village_code = "";
    /* a province token may write anywhere in 18, so scope lets it through */
    assert_null(create_as(T_PROV, &r, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_true(has_violation(&st, "regency_code"));

    /* sub-districts and villages: checked against the reference data once
     * it is loaded for the regency (scripts/load-regions.sh), by shape and
     * prefix before that */
    char *loaded = db_scalar("SELECT EXISTS (SELECT 1 FROM region WHERE parent_code = '18.71')");
    assert_non_null(loaded);
    rec_init(&r, "unchecked district");
    r.s.district_code = "18.71.99";
    r.s.village_code = "";
    Sentra__V1__Sentra *made = create_as(T_DIST, &r, NULL, &st);
    if (loaded[0] == 't') {
        assert_null(made);
        assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
        assert_true(has_violation(&st, "district_code"));
        rec_init(&r, "invalid village");
        r.s.village_code = "18.71.01.9999";
        assert_null(create_as(T_DIST, &r, NULL, &st));
        assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
        assert_true(has_violation(&st, "village_code"));
    } else {
        assert_code(st, SENTRA__V1__CODE__OK);
        sentra__v1__sentra__free_unpacked(made, NULL);
    }
    free(loaded);

    /* a bad update mask */
    rec_init(&r, "mask");
    r.s.id = "00000000-0000-4000-8000-000000000000";
    const char *mask[] = {"nmae", "version"};
    assert_null(update_as(T_DIST, &r.s, mask, 2, 1, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_true(has_violation(&st, "update_mask[0]"));
    assert_true(has_violation(&st, "update_mask[1]"));

    /* malformed ids and missing versions */
    assert_null(get_as(T_DIST, "not-a-uuid", &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_true(has_violation(&st, "id"));
    assert_null(delete_as(T_DIST, "00000000-0000-4000-8000-000000000000", 0, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_true(has_violation(&st, "expected_version"));
    /* a well-formed id that does not exist */
    assert_null(get_as(T_DIST, "00000000-0000-4000-8000-000000000000", &st));
    assert_code(st, SENTRA__V1__CODE__NOT_FOUND);

    Sentra__V1__ListSentraResponse *l = list_as(T_NATIONAL, "invalid", NULL, 10, NULL, 0, 0, 1, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    /* names of this run's invalid records never got stored */
    for (size_t i = 0; i < l->n_sentra; i++)
        assert_null(strstr(l->sentra[i]->name, fx.run));
    sentra__v1__list_sentra_response__free_unpacked(l, NULL);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- concurrency */

typedef struct racer {
    sentra_client_t *cl;
    const Sentra__V1__Sentra *s;
    int64_t expected;
    pthread_barrier_t *go;
    int code;
    int64_t current;
    int64_t version;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    Sentra__V1__UpdateSentraRequest req = SENTRA__V1__UPDATE_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra *out = NULL;
    sentra_status_t st;
    const char *mask[] = {"address"};

    sentra_status_init(&st);
    req.sentra = (Sentra__V1__Sentra *)r->s;
    req.update_mask = (char **)mask;
    req.n_update_mask = 1;
    req.expected_version = r->expected;
    pthread_barrier_wait(r->go);
    sentra_update_sentra(r->cl, &req, &out, NULL, &st);
    r->code = st.code;
    r->current = st.current_version;
    r->version = out ? out->version : 0;
    if (out)
        sentra__v1__sentra__free_unpacked(out, NULL);
    sentra_status_clear(&st);
    return NULL;
}

/* Two updates from the same version at the same moment, on two
 * connections: exactly one wins, the other is ABORTED with the winner's
 * version. Repeated, since one round proves little about a race. */
static void concurrent_updates(void **state)
{
    rec_t r;
    sentra_status_t st;

    sentra_status_init(&st);
    rec_init(&r, "race");
    Sentra__V1__Sentra *made = create_as(T_DIST, &r, NULL, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    sentra_client_t *second = client_with(fx.secret[T_PROV]);  /* the province writes too */

    int64_t version = made->version;
    for (int round = 0; round < 20; round++) {
        pthread_barrier_t go;
        pthread_t th[2];
        rec_t a, b;
        char addr_a[64], addr_b[64];
        racer_t rs[2];

        rec_init(&a, "race");
        rec_init(&b, "race");
        snprintf(addr_a, sizeof addr_a, "A round %d", round);
        snprintf(addr_b, sizeof addr_b, "B round %d", round);
        a.s.id = b.s.id = made->id;
        a.s.address = addr_a;
        b.s.address = addr_b;
        pthread_barrier_init(&go, NULL, 2);
        rs[0] = (racer_t){.cl = fx.cl[T_DIST], .s = &a.s, .expected = version, .go = &go};
        rs[1] = (racer_t){.cl = second, .s = &b.s, .expected = version, .go = &go};
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, race, &rs[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);

        int ok = (rs[0].code == 0) + (rs[1].code == 0);
        int aborted = (rs[0].code == SENTRA__V1__CODE__ABORTED) +
                      (rs[1].code == SENTRA__V1__CODE__ABORTED);
        assert_int_equal(ok, 1);
        assert_int_equal(aborted, 1);
        racer_t *win = rs[0].code == 0 ? &rs[0] : &rs[1];
        racer_t *lose = rs[0].code == 0 ? &rs[1] : &rs[0];
        assert_int_equal(win->version, version + 1);
        assert_int_equal(lose->current, version + 1);

        Sentra__V1__Sentra *got = get_as(T_DIST, made->id, &st);
        assert_code(st, SENTRA__V1__CODE__OK);
        assert_int_equal(got->version, version + 1);
        assert_string_equal(got->address, win == &rs[0] ? addr_a : addr_b);
        sentra__v1__sentra__free_unpacked(got, NULL);
        version++;
    }
    sentra_client_free(second);
    sentra__v1__sentra__free_unpacked(made, NULL);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- idempotency */

static void idempotent_writes(void **state)
{
    rec_t r;
    sentra_status_t st;
    char key[64];

    sentra_status_init(&st);
    rec_init(&r, "idem");
    snprintf(key, sizeof key, "create-%s", fx.run);
    Sentra__V1__Sentra *a = create_as(T_DIST, &r, key, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    Sentra__V1__Sentra *b = create_as(T_DIST, &r, key, &st);      /* the retry */
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_string_equal(a->id, b->id);                            /* one record */
    assert_int_equal(b->version, 1);

    /* the same key from another token is another key */
    rec_t p;
    rec_init(&p, "idem province");
    Sentra__V1__Sentra *c = create_as(T_PROV, &p, key, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_string_not_equal(c->id, a->id);

    /* an update applied once, however often it is sent */
    snprintf(key, sizeof key, "update-%s", fx.run);
    const char *mask[] = {"contact_name"};
    r.s.id = a->id;
    r.s.contact_name = "Pak Budi";
    Sentra__V1__Sentra *u1 = update_as(T_DIST, &r.s, mask, 1, 1, key, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    Sentra__V1__Sentra *u2 = update_as(T_DIST, &r.s, mask, 1, 1, key, &st);
    assert_code(st, SENTRA__V1__CODE__OK);   /* not ABORTED: it is the same write */
    assert_int_equal(u1->version, 2);
    assert_int_equal(u2->version, 2);

    /* a key reused for another method is refused */
    assert_null(delete_as(T_DIST, a->id, 2, key, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);

    /* a delete, twice */
    snprintf(key, sizeof key, "delete-%s", fx.run);
    Sentra__V1__DeleteSentraResponse *d1 = delete_as(T_DIST, a->id, 2, key, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    Sentra__V1__DeleteSentraResponse *d2 = delete_as(T_DIST, a->id, 2, key, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_int_equal(d1->version, 3);
    assert_int_equal(d2->version, 3);

    sentra__v1__delete_sentra_response__free_unpacked(d1, NULL);
    sentra__v1__delete_sentra_response__free_unpacked(d2, NULL);
    sentra__v1__sentra__free_unpacked(u1, NULL);
    sentra__v1__sentra__free_unpacked(u2, NULL);
    sentra__v1__sentra__free_unpacked(a, NULL);
    sentra__v1__sentra__free_unpacked(b, NULL);
    sentra__v1__sentra__free_unpacked(c, NULL);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- listing */

static void list_pages(void **state)
{
    sentra_status_t st;
    char tag[32], text[64];
    char *ids[7];

    sentra_status_init(&st);
    /* seven records with names in a known order */
    for (int i = 0; i < 7; i++) {
        rec_t r;
        snprintf(tag, sizeof tag, "page %c", 'G' - i);   /* created in reverse name order */
        rec_init(&r, tag);
        Sentra__V1__Sentra *s = create_as(T_DIST, &r, NULL, &st);
        assert_code(st, SENTRA__V1__CODE__OK);
        ids[i] = strdup(s->id);
        sentra__v1__sentra__free_unpacked(s, NULL);
    }
    snprintf(text, sizeof text, "UJI %s PAGE", fx.run);   /* case-insensitive */

    for (int order = 0; order < 3; order++) {
        for (int desc = 0; desc < 2; desc++) {
            char *tok = NULL;
            char seen[7][40];
            int n = 0, pages = 0;
            do {
                Sentra__V1__ListSentraResponse *l =
                    list_as(T_DIST, text, NULL, 3, tok, order, desc, 1, &st);
                assert_code(st, SENTRA__V1__CODE__OK);
                assert_int_equal(l->total, 7);
                assert_true(l->n_sentra <= 3);
                for (size_t i = 0; i < l->n_sentra; i++) {
                    assert_true(n < 7);
                    snprintf(seen[n++], 40, "%s", l->sentra[i]->id);
                    assert_int_equal(l->sentra[i]->n_figures, 2);   /* figures come along */
                }
                free(tok);
                tok = l->next_page_token[0] ? strdup(l->next_page_token) : NULL;
                sentra__v1__list_sentra_response__free_unpacked(l, NULL);
                pages++;
            } while (tok && pages < 10);
            assert_int_equal(n, 7);
            assert_int_equal(pages, 3);
            /* names A..G were created G first: by name ascending, the last
             * created comes first; by created ascending, the first */
            int first = (order == 0) == !desc ? 6 : 0;
            assert_string_equal(seen[0], ids[first]);
            assert_string_equal(seen[6], ids[6 - first]);
            for (int i = 0; i < 7; i++)
                for (int j = i + 1; j < 7; j++)
                    assert_string_not_equal(seen[i], seen[j]);
        }
    }

    /* a page token of one order is refused by another */
    Sentra__V1__ListSentraResponse *l = list_as(T_DIST, text, NULL, 3, NULL, 0, 0, 0, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    char *tok = strdup(l->next_page_token);
    sentra__v1__list_sentra_response__free_unpacked(l, NULL);
    assert_null(list_as(T_DIST, text, NULL, 3, tok, 1, 0, 0, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_true(has_violation(&st, "page_token"));
    assert_null(list_as(T_DIST, text, NULL, 3, "zz", 0, 0, 0, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    free(tok);

    /* the default page size is 50, and the cap 1000 */
    l = list_as(T_NATIONAL, NULL, NULL, 100000, NULL, 0, 0, 1, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    assert_true(l->n_sentra <= 1000);
    assert_true(l->total >= 7);
    sentra__v1__list_sentra_response__free_unpacked(l, NULL);

    /* a LIKE wildcard in the text matches itself only */
    l = list_as(T_DIST, "%", NULL, 10, NULL, 0, 0, 1, &st);
    assert_code(st, SENTRA__V1__CODE__OK);
    for (size_t i = 0; i < l->n_sentra; i++)
        assert_non_null(strchr(l->sentra[i]->name, '%'));
    sentra__v1__list_sentra_response__free_unpacked(l, NULL);

    for (int i = 0; i < 7; i++)
        free(ids[i]);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- regions */

static void regions(void **state)
{
    sentra_status_t st;
    Sentra__V1__GetRegionRequest g = SENTRA__V1__GET_REGION_REQUEST__INIT;
    Sentra__V1__ListRegionsRequest l = SENTRA__V1__LIST_REGIONS_REQUEST__INIT;
    Sentra__V1__Region *r = NULL;
    Sentra__V1__ListRegionsResponse *lr = NULL;

    sentra_status_init(&st);
    g.code = "18.71";
    assert_int_equal(sentra_get_region(fx.cl[T_DIST_FAR], &g, &r, NULL, &st), 0);
    assert_int_equal(r->level, SENTRA__V1__REGION_LEVEL__REGION_LEVEL_CITY);
    assert_string_equal(r->parent_code, "18");
    assert_non_null(strstr(r->name, "Bandar Lampung"));
    sentra__v1__region__free_unpacked(r, NULL);
    g.code = "99.99";
    assert_int_not_equal(sentra_get_region(fx.cl[T_DIST], &g, &r, NULL, &st), 0);
    assert_code(st, SENTRA__V1__CODE__NOT_FOUND);
    g.code = "lampung";
    assert_int_not_equal(sentra_get_region(fx.cl[T_DIST], &g, &r, NULL, &st), 0);
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);

    /* provinces, then the children of 18 in pages of 5 */
    assert_int_equal(sentra_list_regions(fx.cl[T_NATIONAL], &l, &lr, NULL, &st), 0);
    assert_true(lr->n_regions >= 2);
    int has18 = 0;
    for (size_t i = 0; i < lr->n_regions; i++) {
        assert_int_equal(lr->regions[i]->level, SENTRA__V1__REGION_LEVEL__REGION_LEVEL_PROVINCE);
        has18 |= strcmp(lr->regions[i]->code, "18") == 0;
    }
    assert_true(has18);
    sentra__v1__list_regions_response__free_unpacked(lr, NULL);

    l.parent_code = "18";
    l.page_size = 5;
    char *tok = NULL;
    int n = 0, has1871 = 0;
    do {
        l.page_token = tok ? tok : "";
        assert_int_equal(sentra_list_regions(fx.cl[T_DIST], &l, &lr, NULL, &st), 0);
        assert_true(lr->n_regions <= 5);
        for (size_t i = 0; i < lr->n_regions; i++) {
            assert_string_equal(lr->regions[i]->parent_code, "18");
            has1871 |= strcmp(lr->regions[i]->code, "18.71") == 0;
            n++;
        }
        free(tok);
        tok = lr->next_page_token[0] ? strdup(lr->next_page_token) : NULL;
        sentra__v1__list_regions_response__free_unpacked(lr, NULL);
    } while (tok);
    assert_true(has1871);
    assert_true(n >= 2);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- tokens */

static void tokens(void **state)
{
    sentra_status_t st;
    Sentra__V1__ListTokensRequest lreq = SENTRA__V1__LIST_TOKENS_REQUEST__INIT;
    Sentra__V1__ListTokensResponse *lr = NULL;
    Sentra__V1__CreateTokenRequest creq = SENTRA__V1__CREATE_TOKEN_REQUEST__INIT;
    Sentra__V1__CreateTokenResponse *cr = NULL;
    Sentra__V1__RevokeTokenRequest rreq = SENTRA__V1__REVOKE_TOKEN_REQUEST__INIT;
    Sentra__V1__Token *t = NULL;

    sentra_status_init(&st);
    assert_int_equal(sentra_list_tokens(fx.cl[T_ADMIN], &lreq, &lr, NULL, &st), 0);
    int found = 0;
    for (size_t i = 0; i < lr->n_tokens; i++)
        found |= strcmp(lr->tokens[i]->id, fx.token_id[T_DIST]) == 0;
    assert_true(found);
    sentra__v1__list_tokens_response__free_unpacked(lr, NULL);

    /* bad requests */
    creq.role = SENTRA__V1__ROLE__ROLE_DISTRICT;
    creq.region_code = "18";                      /* a province, for a district token */
    assert_int_not_equal(sentra_create_token(fx.cl[T_ADMIN], &creq, &cr, NULL, &st), 0);
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_true(has_violation(&st, "region_code"));
    creq.region_code = "18.99";                   /* the right shape, no such regency */
    assert_int_not_equal(sentra_create_token(fx.cl[T_ADMIN], &creq, &cr, NULL, &st), 0);
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);

    /* a token made, used, revoked, refused */
    creq.region_code = "18.72";
    creq.label = "to be revoked";
    assert_int_equal(sentra_create_token(fx.cl[T_ADMIN], &creq, &cr, NULL, &st), 0);
    sentra_client_t *cl = client_with(cr->secret);
    Sentra__V1__ListSentraRequest lsreq = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
    Sentra__V1__ListSentraResponse *ls = NULL;
    assert_int_equal(sentra_list_sentra(cl, &lsreq, &ls, NULL, &st), 0);
    sentra__v1__list_sentra_response__free_unpacked(ls, NULL);
    rreq.id = cr->token->id;
    assert_int_equal(sentra_revoke_token(fx.cl[T_ADMIN], &rreq, &t, NULL, &st), 0);
    assert_true(t->revoked_at_ms > 0);
    sentra__v1__token__free_unpacked(t, NULL);
    /* revocation reaches the server's token cache through NOTIFY: allow it
     * a moment */
    int code = 0;
    for (int i = 0; i < 50; i++) {
        ls = NULL;
        sentra_list_sentra(cl, &lsreq, &ls, NULL, &st);
        if (ls)
            sentra__v1__list_sentra_response__free_unpacked(ls, NULL);
        code = st.code;
        if (code == SENTRA__V1__CODE__UNAUTHENTICATED)
            break;
        usleep(100 * 1000);
    }
    assert_int_equal(code, SENTRA__V1__CODE__UNAUTHENTICATED);
    /* revoking again is harmless; an unknown id is NOT_FOUND */
    assert_int_equal(sentra_revoke_token(fx.cl[T_ADMIN], &rreq, &t, NULL, &st), 0);
    sentra__v1__token__free_unpacked(t, NULL);
    rreq.id = "00000000-0000-4000-8000-000000000000";
    assert_int_not_equal(sentra_revoke_token(fx.cl[T_ADMIN], &rreq, &t, NULL, &st), 0);
    assert_code(st, SENTRA__V1__CODE__NOT_FOUND);

    sentra_client_free(cl);
    sentra__v1__create_token_response__free_unpacked(cr, NULL);
    sentra_status_clear(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crud_round_trip),
        cmocka_unit_test(server_chosen_id_and_minimal_record),
        cmocka_unit_test(validation_errors),
        cmocka_unit_test(concurrent_updates),
        cmocka_unit_test(idempotent_writes),
        cmocka_unit_test(list_pages),
        cmocka_unit_test(regions),
        cmocka_unit_test(tokens),
    };
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
