/*
 * sentra_fixture.h: what test_sentra.c and test_scope.c share, as static
 * functions (this header is included by each; it is not a test program).
 *
 * Both run against a live sentrad and its PostgreSQL: the server address
 * comes from SENTRA_TEST_ADDR (else SENTRA_ADDR), the database from
 * SENTRA_TEST_DB (else SENTRA_DB_URL). The fixture bootstraps one admin
 * token straight in the database (the only way to get a first token, as
 * `sentrad token create` does), then makes every other token through
 * TokenService.CreateToken, so token management is exercised too.
 *
 * Regions used (present in the reference data): province 18 (Lampung) with
 * city 18.71 (Bandar Lampung) and city 18.72 (Metro), province 31 (DKI
 * Jakarta) with city 31.71.
 */
#ifndef SENTRA_TEST_FIXTURE_H
#define SENTRA_TEST_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sentra/sentra.h>

#include "harness.h"

/* Tokens by who holds them. */
enum {
    T_ADMIN,        /* admin */
    T_DIST,         /* district 18.71: the owner of the records under test */
    T_DIST_OTHER,   /* district 18.72: same province, another district */
    T_DIST_FAR,     /* district 31.71: another province */
    T_PROV,         /* province 18: the owner's province */
    T_PROV_OTHER,   /* province 31 */
    T_NATIONAL,     /* read-only */
    T_COUNT
};

static const char *const token_names[T_COUNT] = {
    "admin", "district 18.71", "district 18.72", "district 31.71",
    "province 18", "province 31", "national",
};

typedef struct fixture {
    char *secret[T_COUNT];
    char *token_id[T_COUNT];
    sentra_client_t *cl[T_COUNT];
    char run[32];           /* unique per run: names and keys carry it */
} fixture_t;

static fixture_t fx;

/* The first column of the first row of sql, run on the test database
 * (malloc'ed; NULL on error). */
static inline char *db_scalar(const char *sql)
{
    const char *db = getenv("SENTRA_TEST_DB");
    PGconn *pg = PQconnectdb(db && db[0] ? db : getenv("SENTRA_DB_URL"));
    char *out = NULL;
    if (PQstatus(pg) == CONNECTION_OK) {
        PGresult *res = PQexec(pg, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
            out = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    PQfinish(pg);
    return out;
}

static const char *env2(const char *a, const char *b)
{
    const char *v = getenv(a);
    return v && v[0] ? v : getenv(b);
}

static sentra_client_t *client_with(const char *secret)
{
    sentra_client_opts_t o;
    sentra_client_t *c = NULL;

    sentra_client_opts_init(&o);
    o.address = env2("SENTRA_TEST_ADDR", "SENTRA_ADDR");
    o.token = secret ? secret : "";
    o.default_deadline_ms = 10000;
    assert_int_equal(sentra_client_new(&c, &o), 0);
    return c;
}

/* Makes a token through CreateToken with the admin client. */
static void make_token(int who, Sentra__V1__Role role, const char *region)
{
    Sentra__V1__CreateTokenRequest req = SENTRA__V1__CREATE_TOKEN_REQUEST__INIT;
    Sentra__V1__CreateTokenResponse *resp = NULL;
    sentra_status_t st;
    char label[64];

    sentra_status_init(&st);
    snprintf(label, sizeof label, "test %s %s", fx.run, token_names[who]);
    req.role = role;
    req.region_code = (char *)(region ? region : "");
    req.label = label;
    int rc = sentra_create_token(fx.cl[T_ADMIN], &req, &resp, NULL, &st);
    if (rc != 0)
        print_error("CreateToken %s: %s %s\n", token_names[who],
                    sentra_status_name(st.code), st.message ? st.message : "");
    assert_int_equal(rc, 0);
    assert_non_null(resp->token);
    assert_int_equal(resp->token->role, role);
    assert_string_equal(resp->token->region_code, region ? region : "");
    assert_int_equal(strncmp(resp->secret, "snt_", 4), 0);
    assert_int_equal(strlen(resp->secret), 56);
    fx.secret[who] = strdup(resp->secret);
    fx.token_id[who] = strdup(resp->token->id);
    fx.cl[who] = client_with(fx.secret[who]);
    sentra__v1__create_token_response__free_unpacked(resp, NULL);
    sentra_status_clear(&st);
}

static int fixture_setup(void **state)
{
    const char *db = env2("SENTRA_TEST_DB", "SENTRA_DB_URL");
    const char *addr = env2("SENTRA_TEST_ADDR", "SENTRA_ADDR");
    char secret[80];

    if (!db || !addr) {
        fprintf(stderr, "set SENTRA_TEST_ADDR and SENTRA_TEST_DB (a running sentrad and its database)\n");
        return -1;
    }
    snprintf(fx.run, sizeof fx.run, "%ld%d", (long)time(NULL) % 100000, (int)getpid());
    th_token_secret(secret);

    PGconn *pg = PQconnectdb(db);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to %s: %s", db, PQerrorMessage(pg));
        PQfinish(pg);
        return -1;
    }
    const char *v[1] = {secret};
    PGresult *res = PQexecParams(pg,
        "INSERT INTO api_token (secret_hash, role, label) "
        "VALUES (sha256(convert_to($1, 'UTF8')), 'admin', 'integration test') RETURNING id",
        1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "cannot create the admin token: %s", PQerrorMessage(pg));
        PQclear(res);
        PQfinish(pg);
        return -1;
    }
    fx.token_id[T_ADMIN] = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(pg);
    fx.secret[T_ADMIN] = strdup(secret);
    fx.cl[T_ADMIN] = client_with(secret);

    make_token(T_DIST, SENTRA__V1__ROLE__ROLE_DISTRICT, "18.71");
    make_token(T_DIST_OTHER, SENTRA__V1__ROLE__ROLE_DISTRICT, "18.72");
    make_token(T_DIST_FAR, SENTRA__V1__ROLE__ROLE_DISTRICT, "31.71");
    make_token(T_PROV, SENTRA__V1__ROLE__ROLE_PROVINCE, "18");
    make_token(T_PROV_OTHER, SENTRA__V1__ROLE__ROLE_PROVINCE, "31");
    make_token(T_NATIONAL, SENTRA__V1__ROLE__ROLE_NATIONAL, NULL);
    return 0;
}

static int fixture_teardown(void **state)
{
    for (int i = 0; i < T_COUNT; i++) {
        sentra_client_free(fx.cl[i]);
        free(fx.secret[i]);
        free(fx.token_id[i]);
    }
    return 0;
}

/* ---------------------------------------------------------------- records */

/* A valid designated sentra in 18.71, with a name unique to this run and
 * tag. Everything points into the struct, which must stay put. */
typedef struct rec {
    Sentra__V1__Sentra s;
    Sentra__V1__GeoPoint loc;
    Sentra__V1__Decree dec;
    Sentra__V1__Figures f[2];
    Sentra__V1__Figures *fp[2];
    char *dest[2];
    char name[128];
} rec_t;

static void rec_init(rec_t *r, const char *tag)
{
    memset(r, 0, sizeof *r);
    sentra__v1__sentra__init(&r->s);
    sentra__v1__geo_point__init(&r->loc);
    sentra__v1__decree__init(&r->dec);
    snprintf(r->name, sizeof r->name, "Sentra Uji %s %s", fx.run, tag);
    r->s.name = r->name;
    r->s.regency_code = "18.71";
    r->s.district_code = "18.71.01";
    r->s.village_code = "18.71.01.1006";         /* Sidodadi, Kedaton */
    r->s.address = "Jl. Teuku Umar 10";
    r->loc.latitude = -5.3971;
    r->loc.longitude = 105.2668;
    r->s.location = &r->loc;
    r->s.commodity = "kain tapis";
    r->s.main_product = "tapis \"asli\" Lampung";
    r->s.kbli_code = "13912";
    r->s.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    r->s.sector_group = SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_TEXTILES;
    r->s.status = SENTRA__V1__STATUS__STATUS_DESIGNATED;
    r->s.formed_on = "2019-03-01";
    r->dec.number = "500/123/III.01/HK/2022";
    r->dec.date = "2022-09-27";
    r->dec.official = "Walikota Bandar Lampung";
    r->s.decree = &r->dec;
    r->s.contact_name = "Ibu Siti";
    r->s.contact_phone = "+62 721 123456";
    for (int i = 0; i < 2; i++) {
        sentra__v1__figures__init(&r->f[i]);
        r->f[i].year = 2022 + i;
        r->f[i].business_units = 40 + 7 * i;
        r->f[i].workers_male = 12 + i;
        r->f[i].workers_female = 85 + i;
        r->f[i].investment = 1250000000LL + i;
        r->f[i].production_value = 3400000000LL + i;
        r->f[i].material_value = 900000000LL + i;
        r->f[i].capacity = 5000 + i;
        /* quotes, a backslash and a 2-byte character travel through the
         * figures JSON parameter and must come back unchanged */
        r->f[i].capacity_unit = i ? "lembar" : "m\xC2\xB2 \"kotak\" \\";
        r->f[i].export_share_bp = 1200 + i;
        r->fp[i] = &r->f[i];
    }
    r->dest[0] = "MY";
    r->dest[1] = "SG";
    r->f[1].export_destinations = r->dest;
    r->f[1].n_export_destinations = 2;
    r->s.figures = r->fp;
    r->s.n_figures = 2;
}

/* Creates r with client `who`; returns the stored record (caller frees). */
static Sentra__V1__Sentra *create_as(int who, const rec_t *r, const char *idem,
                                     sentra_status_t *st)
{
    Sentra__V1__CreateSentraRequest req = SENTRA__V1__CREATE_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra *out = NULL;
    sentra_call_opts_t o = {.idempotency_key = idem};

    req.sentra = (Sentra__V1__Sentra *)&r->s;
    sentra_create_sentra(fx.cl[who], &req, &out, &o, st);
    return out;
}

static Sentra__V1__Sentra *get_as(int who, const char *id, sentra_status_t *st)
{
    Sentra__V1__GetSentraRequest req = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra *out = NULL;

    req.id = (char *)id;
    sentra_get_sentra(fx.cl[who], &req, &out, NULL, st);
    return out;
}

/* Updates one field set, given by mask, from r. */
static Sentra__V1__Sentra *update_as(int who, const Sentra__V1__Sentra *s,
                                     const char *const *mask, size_t nmask,
                                     int64_t expected, const char *idem,
                                     sentra_status_t *st)
{
    Sentra__V1__UpdateSentraRequest req = SENTRA__V1__UPDATE_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra *out = NULL;
    sentra_call_opts_t o = {.idempotency_key = idem};

    req.sentra = (Sentra__V1__Sentra *)s;
    req.update_mask = (char **)mask;
    req.n_update_mask = nmask;
    req.expected_version = expected;
    sentra_update_sentra(fx.cl[who], &req, &out, &o, st);
    return out;
}

static Sentra__V1__DeleteSentraResponse *delete_as(int who, const char *id, int64_t expected,
                                                   const char *idem, sentra_status_t *st)
{
    Sentra__V1__DeleteSentraRequest req = SENTRA__V1__DELETE_SENTRA_REQUEST__INIT;
    Sentra__V1__DeleteSentraResponse *out = NULL;
    sentra_call_opts_t o = {.idempotency_key = idem};

    req.id = (char *)id;
    req.expected_version = expected;
    sentra_delete_sentra(fx.cl[who], &req, &out, &o, st);
    return out;
}

/* Lists with a text filter (this run's names carry fx.run). */
static Sentra__V1__ListSentraResponse *list_as(int who, const char *text, const char *regency,
                                               int page_size, const char *page_token,
                                               int order, int desc, int total,
                                               sentra_status_t *st)
{
    Sentra__V1__ListSentraRequest req = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    Sentra__V1__ListSentraResponse *out = NULL;

    f.text = (char *)(text ? text : "");
    f.regency_code = (char *)(regency ? regency : "");
    req.filter = &f;
    req.page_size = page_size;
    req.page_token = (char *)(page_token ? page_token : "");
    req.order_by = order;
    req.descending = desc;
    req.include_total = total;
    sentra_list_sentra(fx.cl[who], &req, &out, NULL, st);
    return out;
}

/* Asserts the status code, printing the message when it differs. */
#define assert_code(st, want)                                                  \
    do {                                                                       \
        if ((st).code != (want))                                               \
            print_error("%s:%d: got %s (%s), want %s\n", __FILE__, __LINE__,   \
                        sentra_status_name((st).code),                         \
                        (st).message ? (st).message : "",                      \
                        sentra_status_name(want));                             \
        assert_int_equal((st).code, (want));                                   \
    } while (0)

/* 1 when the status lists a violation on field. */
static inline int has_violation(const sentra_status_t *st, const char *field)
{
    for (size_t i = 0; i < st->n_violations; i++)
        if (strcmp(st->violations[i].field, field) == 0)
            return 1;
    return 0;
}

#endif
