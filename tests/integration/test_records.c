/*
 * test_records.c: RecordService (members, institutions, obstacles,
 * assistance) against a sentrad of its own on a fresh database loaded with
 * the synthetic Lampung demo data: every method through the server and
 * PostgreSQL; scope (a district writes only its own regency's records,
 * reads outside its scope are NOT_FOUND, writes there PERMISSION_DENIED);
 * validation, C rules through the server and every database rule through
 * plain SQL (CHECK constraints also with the row triggers disabled);
 * versions and conflicts; tombstones; the change rows (the audit log) of
 * each write; the size class at its boundaries; keyset pages of a large
 * sentra and totals against SQL; records following their sentra when it
 * moves and is deleted; idempotency keys; and no derived row drifting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sentra/sentra.h>

#include "frame.h"
#include "harness.h"

static th_server_t srv;

enum { K_DIST, K_DIST2, K_PROV, K_PROV_FAR, K_NAT, K_COUNT };
static char *tok[K_COUNT];
static sentra_client_t *cl[K_COUNT];

/* Demo sentra (data/demo/lampung.sql): 65 Sentra IKM Tapis Lampung
 * Kemiling in 18.71 (members kept), 67 Ikan Asin Panjang in 18.71,
 * 71 Batik Metro in 18.72. */
static char s65[40], s67[40], s71[40];

/* ---------------------------------------------------------------- helpers */

static sentra_client_t *client(const char *token)
{
    sentra_client_opts_t o;
    sentra_client_t *c = NULL;
    char addr[96];
    snprintf(addr, sizeof(addr), "%s:%d", srv.host, srv.port);
    sentra_client_opts_init(&o);
    o.address = addr;
    o.token = token;
    o.default_deadline_ms = 20000;
    o.max_attempts = 1;
    assert_int_equal(sentra_client_new(&c, &o), 0);
    return c;
}

static PGconn *db(void)
{
    PGconn *c = th_db(&srv);
    assert_non_null(c);
    return c;
}

/* One value from SQL (malloc'ed; fails the test on error). */
static char *q_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *q_str(const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGconn *c = db();
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    char *v = strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

static long long q_ll(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long q_ll(const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    char *v = q_str("%s", sql);
    long long n = atoll(v);
    free(v);
    return n;
}

/* Runs sql on a connection of its own; returns the SQLSTATE of its error
 * ("" when it succeeded), and the detail in detail (may be NULL). */
static void q_state(char *state, size_t slen, char *detail, size_t dlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void q_state(char *state, size_t slen, char *detail, size_t dlen, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGconn *c = db();
    PGresult *r = PQexec(c, sql);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *de = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    snprintf(state, slen, "%s", st ? st : "");
    if (detail)
        snprintf(detail, dlen, "%s", de ? de : "");
    PQclear(r);
    PQfinish(c);
}

static void q_exec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void q_exec(const char *fmt, ...)
{
    char sql[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGconn *c = db();
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static const sentra_violation_t *violation(const sentra_status_t *st, const char *field)
{
    for (size_t i = 0; i < st->n_violations; i++)
        if (strcmp(st->violations[i].field, field) == 0)
            return &st->violations[i];
    return NULL;
}

static void expect_violation(const sentra_status_t *st, const char *field, const char *want)
{
    const sentra_violation_t *v = violation(st, field);
    if (!v) {
        for (size_t i = 0; i < st->n_violations; i++)
            fprintf(stderr, "  got %s: %s\n", st->violations[i].field, st->violations[i].description);
        fail_msg("no violation on %s (code %s: %s)", field, sentra_status_name(st->code),
                 st->message ? st->message : "");
    }
    if (want && !strstr(v->description, want))
        fail_msg("%s: \"%s\" does not say \"%s\"", field, v->description, want);
}

/* A valid member of sentra sid, named name. */
static Sentra__V1__Member member_of(const char *sid, const char *name)
{
    Sentra__V1__Member m = SENTRA__V1__MEMBER__INIT;
    m.sentra_id = (char *)sid;
    m.name = (char *)name;
    m.owner_name = "Ibu Uji";
    m.owner_sex = SENTRA__V1__SEX__SEX_FEMALE;
    m.workers_female = 3;
    m.workers_male = 1;
    m.investment = 40000000;
    m.production_value = 90000000;
    m.joined_year = 2018;
    return m;
}

/* CreateMember by who; returns the record (caller frees) or NULL with st. */
static Sentra__V1__Member *create_member(int who, Sentra__V1__Member *m, sentra_status_t *st,
                                         const char *idem)
{
    Sentra__V1__CreateMemberRequest rq = SENTRA__V1__CREATE_MEMBER_REQUEST__INIT;
    Sentra__V1__Member *out = NULL;
    sentra_call_opts_t co = {0, idem, 0};
    rq.member = m;
    sentra_create_member(cl[who], &rq, &out, &co, st);
    return out;
}

static Sentra__V1__Member *get_member(int who, const char *id, sentra_status_t *st)
{
    Sentra__V1__GetMemberRequest rq = SENTRA__V1__GET_MEMBER_REQUEST__INIT;
    Sentra__V1__Member *out = NULL;
    rq.id = (char *)id;
    sentra_get_member(cl[who], &rq, &out, NULL, st);
    return out;
}

static Sentra__V1__Member *update_member(int who, Sentra__V1__Member *m, const char **mask,
                                         size_t n, int64_t expected, sentra_status_t *st)
{
    Sentra__V1__UpdateMemberRequest rq = SENTRA__V1__UPDATE_MEMBER_REQUEST__INIT;
    Sentra__V1__Member *out = NULL;
    rq.member = m;
    rq.update_mask = (char **)mask;
    rq.n_update_mask = n;
    rq.expected_version = expected;
    sentra_update_member(cl[who], &rq, &out, NULL, st);
    return out;
}

static int delete_member(int who, const char *id, int64_t expected, int64_t *version,
                         sentra_status_t *st)
{
    Sentra__V1__DeleteMemberRequest rq = SENTRA__V1__DELETE_MEMBER_REQUEST__INIT;
    Sentra__V1__DeleteRecordResponse *out = NULL;
    rq.id = (char *)id;
    rq.expected_version = expected;
    int rc = sentra_delete_member(cl[who], &rq, &out, NULL, st);
    if (out) {
        *version = out->version;
        protobuf_c_message_free_unpacked(&out->base, NULL);
    }
    return rc;
}

static Sentra__V1__ListMembersResponse *list_members(int who, Sentra__V1__RecordFilter *f,
                                                     int page, const char *token, int total,
                                                     int desc, sentra_status_t *st)
{
    Sentra__V1__ListMembersRequest rq = SENTRA__V1__LIST_MEMBERS_REQUEST__INIT;
    Sentra__V1__ListMembersResponse *out = NULL;
    rq.filter = f;
    rq.page_size = page;
    rq.page_token = (char *)(token ? token : "");
    rq.include_total = total;
    rq.descending = desc;
    sentra_list_members(cl[who], &rq, &out, NULL, st);
    return out;
}

#define FREE(m) do { if (m) protobuf_c_message_free_unpacked(&(m)->base, NULL); (m) = NULL; } while (0)

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (!th_env_ok())
        return -1;
    if (th_server_start(&srv, "t_records", NULL) != 0)
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
    tok[K_PROV_FAR] = th_token(&srv, "province", "31");
    tok[K_NAT] = th_token(&srv, "national", NULL);
    for (int i = 0; i < K_COUNT; i++) {
        if (!tok[i])
            return -1;
        cl[i] = client(tok[i]);
    }
    char *v = q_str("SELECT md5('demo-lampung-65')::uuid");
    snprintf(s65, sizeof s65, "%s", v);
    free(v);
    v = q_str("SELECT md5('demo-lampung-67')::uuid");
    snprintf(s67, sizeof s67, "%s", v);
    free(v);
    v = q_str("SELECT md5('demo-lampung-71')::uuid");
    snprintf(s71, sizeof s71, "%s", v);
    free(v);
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

/* ---------------------------------------------------------------- lifecycle */

/* Create, read by every scope that may, update by mask, conflicts on a
 * stale version, delete into a tombstone that is never read, listed nor
 * reused; each write leaves its change row, by its token. */
static void member_lifecycle(void **state)
{
    (void)state;
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__Member m = member_of(s65, "IKM Uji Siklus");
    m.nib = "0000111122223";
    m.kbli_code = "13121";
    m.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    Sentra__V1__Member *c = create_member(K_DIST, &m, &st, NULL);
    assert_non_null(c);
    assert_int_equal(c->version, 1);
    assert_string_equal(c->regency_code, "18.71");
    assert_string_equal(c->province_code, "18");
    assert_int_equal(c->size_class, SENTRA__V1__SIZE_CLASS__SIZE_CLASS_SMALL);
    assert_int_equal(c->kbli_version, SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020);
    assert_string_equal(c->nib, "0000111122223");
    assert_false(c->deleted);
    char id[40];
    snprintf(id, sizeof id, "%s", c->id);
    assert_true(c->created_by[0] != '\0');
    assert_string_equal(c->created_by, c->updated_by);

    for (int who = K_DIST; who <= K_NAT; who++) {
        if (who == K_DIST2 || who == K_PROV_FAR)
            continue;
        Sentra__V1__Member *g = get_member(who, id, &st);
        assert_non_null(g);
        assert_string_equal(g->name, "IKM Uji Siklus");
        assert_int_equal(g->workers_female, 3);
        FREE(g);
    }

    /* an update by mask: the other fields stay */
    Sentra__V1__Member u = SENTRA__V1__MEMBER__INIT;
    u.id = id;
    u.workers_male = 30;
    u.investment = 2000000000;
    u.name = "";             /* not in the mask: ignored */
    const char *mask[] = {"workers_male", "investment"};
    Sentra__V1__Member *up = update_member(K_PROV, &u, mask, 2, 1, &st);
    assert_non_null(up);
    assert_int_equal(up->version, 2);
    assert_string_equal(up->name, "IKM Uji Siklus");
    assert_int_equal(up->size_class, SENTRA__V1__SIZE_CLASS__SIZE_CLASS_MEDIUM);
    assert_string_equal(up->nib, "0000111122223");
    FREE(up);

    /* stale versions: ABORTED with the current one */
    up = update_member(K_DIST, &u, mask, 2, 1, &st);
    assert_null(up);
    assert_int_equal(st.code, SENTRA__V1__CODE__ABORTED);
    assert_int_equal(st.current_version, 2);
    int64_t ver = 0;
    assert_int_not_equal(delete_member(K_DIST, id, 1, &ver, &st), 0);
    assert_int_equal(st.code, SENTRA__V1__CODE__ABORTED);
    assert_int_equal(st.current_version, 2);

    /* fields fixed at creation cannot be masked */
    const char *bad_mask[] = {"sentra_id"};
    assert_null(update_member(K_DIST, &u, bad_mask, 1, 2, &st));
    expect_violation(&st, "update_mask[0]", "fixed");

    assert_int_equal(delete_member(K_DIST, id, 2, &ver, &st), 0);
    assert_int_equal(ver, 3);
    assert_null(get_member(K_PROV, id, &st));
    assert_int_equal(st.code, SENTRA__V1__CODE__NOT_FOUND);
    assert_null(update_member(K_DIST, &u, mask, 2, 3, &st));
    assert_int_equal(st.code, SENTRA__V1__CODE__NOT_FOUND);
    Sentra__V1__Member again = member_of(s65, "IKM Uji Siklus Lagi");
    again.id = id;
    assert_null(create_member(K_DIST, &again, &st, NULL));
    assert_int_equal(st.code, SENTRA__V1__CODE__ALREADY_EXISTS);
    assert_int_equal(q_ll("SELECT count(*) FROM member_api WHERE id = '%s' AND deleted", id), 1);

    /* the audit log: one row per write, by its token, in order */
    assert_int_equal(q_ll("SELECT count(*) FROM sentra_change WHERE kind = 2 AND record_id = '%s'", id), 3);
    char *ops = q_str("SELECT string_agg(op || coalesce(old_version, 0) || '>' || new_version, ' ' ORDER BY seq)"
                      " FROM sentra_change WHERE kind = 2 AND record_id = '%s'", id);
    assert_string_equal(ops, "C0>1 U1>2 D2>3");
    free(ops);
    assert_int_equal(q_ll("SELECT count(DISTINCT token_id) FROM sentra_change WHERE kind = 2"
                          " AND record_id = '%s' AND token_id IS NOT NULL", id), 2);
    assert_int_equal(q_ll("SELECT count(*) FROM sentra_change c JOIN member m ON m.id = c.record_id"
                          " WHERE c.kind = 2 AND c.record_id = '%s' AND c.sentra_id = m.sentra_id"
                          " AND c.regency_code = '18.71'", id), 3);
    FREE(c);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- scope */

static void scope(void **state)
{
    (void)state;
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__Member m = member_of(s65, "IKM Uji Wilayah");
    Sentra__V1__Member *c = create_member(K_DIST, &m, &st, NULL);
    assert_non_null(c);

    /* reading outside the scope: NOT_FOUND, as for an id that does not exist */
    assert_null(get_member(K_DIST2, c->id, &st));
    assert_int_equal(st.code, SENTRA__V1__CODE__NOT_FOUND);
    assert_null(get_member(K_PROV_FAR, c->id, &st));
    assert_int_equal(st.code, SENTRA__V1__CODE__NOT_FOUND);

    /* writing outside it: PERMISSION_DENIED */
    Sentra__V1__Member u = SENTRA__V1__MEMBER__INIT;
    u.id = c->id;
    u.name = "Diubah dari luar";
    const char *mask[] = {"name"};
    assert_null(update_member(K_DIST2, &u, mask, 1, 1, &st));
    assert_int_equal(st.code, SENTRA__V1__CODE__PERMISSION_DENIED);
    int64_t ver;
    assert_int_not_equal(delete_member(K_PROV_FAR, c->id, 1, &ver, &st), 0);
    assert_int_equal(st.code, SENTRA__V1__CODE__PERMISSION_DENIED);
    Sentra__V1__Member other = member_of(s65, "IKM Uji Dari Metro");
    assert_null(create_member(K_DIST2, &other, &st, NULL));
    assert_int_equal(st.code, SENTRA__V1__CODE__PERMISSION_DENIED);
    assert_null(create_member(K_NAT, &other, &st, NULL));
    assert_int_equal(st.code, SENTRA__V1__CODE__PERMISSION_DENIED);
    /* the province writes in its regencies */
    Sentra__V1__Member metro = member_of(s71, "IKM Uji Metro");
    Sentra__V1__Member *pm = create_member(K_PROV, &metro, &st, NULL);
    assert_non_null(pm);
    assert_string_equal(pm->regency_code, "18.72");
    assert_int_equal(q_ll("SELECT count(*) FROM member WHERE name LIKE 'IKM Uji Dari Metro%%'"), 0);

    /* lists show only what the token reads, whatever the filter asks */
    Sentra__V1__RecordFilter f = SENTRA__V1__RECORD_FILTER__INIT;
    f.regency_code = "18.71";
    Sentra__V1__ListMembersResponse *l = list_members(K_DIST2, &f, 10, NULL, 1, 0, &st);
    assert_non_null(l);
    assert_int_equal(l->n_members, 0);
    assert_int_equal(l->total, 0);
    FREE(l);
    f.regency_code = "";
    f.sentra_id = s65;
    l = list_members(K_PROV_FAR, &f, 10, NULL, 1, 0, &st);
    assert_int_equal(l->n_members, 0);
    assert_int_equal(l->total, 0);
    FREE(l);
    l = list_members(K_NAT, &f, 1000, NULL, 1, 0, &st);
    assert_int_equal(l->total, q_ll("SELECT count(*) FROM member WHERE sentra_id = '%s'"
                                    " AND deleted_at IS NULL", s65));
    FREE(l);

    /* the other kinds: the same rules through the same code */
    Sentra__V1__GetInstitutionRequest gi = SENTRA__V1__GET_INSTITUTION_REQUEST__INIT;
    Sentra__V1__Institution *inst = NULL;
    gi.sentra_id = s65;
    assert_int_equal(sentra_get_institution(cl[K_DIST], &gi, &inst, NULL, &st), 0);
    FREE(inst);
    assert_int_not_equal(sentra_get_institution(cl[K_DIST2], &gi, &inst, NULL, &st), 0);
    assert_int_equal(st.code, SENTRA__V1__CODE__NOT_FOUND);
    Sentra__V1__ListObstaclesRequest lo = SENTRA__V1__LIST_OBSTACLES_REQUEST__INIT;
    Sentra__V1__ListObstaclesResponse *ol = NULL;
    lo.include_total = 1;
    assert_int_equal(sentra_list_obstacles(cl[K_DIST2], &lo, &ol, NULL, &st), 0);
    assert_int_equal(ol->total, q_ll("SELECT count(*) FROM obstacle o JOIN sentra s ON s.id = o.sentra_id"
                                     " WHERE s.regency_code = '18.72' AND o.deleted_at IS NULL"));
    for (size_t i = 0; i < ol->n_obstacles; i++)
        assert_string_equal(ol->obstacles[i]->regency_code, "18.72");
    FREE(ol);

    FREE(c);
    FREE(pm);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- validation */

/* The C rules come back as one violation per field, named as in the
 * record (no "member." before them), with nothing written. */
static void validation_in_c(void **state)
{
    (void)state;
    sentra_status_t st;
    sentra_status_init(&st);
    long long before = q_ll("SELECT count(*) FROM member");
    Sentra__V1__Member m = member_of(s65, "ab");
    m.owner_sex = 0;
    m.nib = "123";
    m.kbli_code = "45201";
    m.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    m.investment = -1;
    m.joined_year = 2040;
    assert_null(create_member(K_DIST, &m, &st, NULL));
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    expect_violation(&st, "name", "at least 3");
    expect_violation(&st, "owner_sex", "required");
    expect_violation(&st, "nib", "13 digits");
    expect_violation(&st, "kbli_code", "manufacturing");
    expect_violation(&st, "investment", "negative");
    expect_violation(&st, "joined_year", "future");
    assert_int_equal(st.n_violations, 6);
    assert_int_equal(q_ll("SELECT count(*) FROM member"), before);

    Sentra__V1__CreateObstacleRequest co = SENTRA__V1__CREATE_OBSTACLE_REQUEST__INIT;
    Sentra__V1__Obstacle o = SENTRA__V1__OBSTACLE__INIT, *oo = NULL;
    o.sentra_id = s65;
    o.category = 11;
    o.description = "xy";
    o.severity = SENTRA__V1__SEVERITY__SEVERITY_LOW;
    o.reported_on = "2022-02-30";
    o.status = SENTRA__V1__OBSTACLE_STATUS__OBSTACLE_STATUS_RESOLVED;
    co.obstacle = &o;
    assert_int_not_equal(sentra_create_obstacle(cl[K_DIST], &co, &oo, NULL, &st), 0);
    expect_violation(&st, "category", "known");
    expect_violation(&st, "description", "at least 3");
    expect_violation(&st, "reported_on", "real date");
    expect_violation(&st, "resolution", "required");
    expect_violation(&st, "resolved_on", "required");

    Sentra__V1__SetInstitutionRequest si = SENTRA__V1__SET_INSTITUTION_REQUEST__INIT;
    Sentra__V1__Institution in = SENTRA__V1__INSTITUTION__INIT, *io = NULL;
    Sentra__V1__Facility fac = SENTRA__V1__FACILITY__INIT;
    in.sentra_id = s67;
    in.form = SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_KUB;
    fac.name = "Rumah produksi";
    in.facility = &fac;
    si.institution = &in;
    si.expected_version = -1;
    assert_int_not_equal(sentra_set_institution(cl[K_DIST], &si, &io, NULL, &st), 0);
    expect_violation(&st, "board.chair", "required");
    expect_violation(&st, "facility.condition", "required");
    expect_violation(&st, "expected_version", NULL);

    Sentra__V1__CreateAssistanceRequest ca = SENTRA__V1__CREATE_ASSISTANCE_REQUEST__INIT;
    Sentra__V1__Assistance a = SENTRA__V1__ASSISTANCE__INIT, *ao = NULL;
    char *ids[] = {"not-a-uuid"};
    a.sentra_id = "";
    a.kind = SENTRA__V1__ASSISTANCE_KIND__ASSISTANCE_KIND_CERTIFICATION;
    a.provider = SENTRA__V1__PROVIDER__PROVIDER_KEMENPERIN;
    a.programme = "Sertifikasi";
    a.year = 2022;
    a.value = 100000000000001LL;
    a.recipient_member_ids = ids;
    a.n_recipient_member_ids = 1;
    ca.assistance = &a;
    assert_int_not_equal(sentra_create_assistance(cl[K_DIST], &ca, &ao, NULL, &st), 0);
    expect_violation(&st, "sentra_id", "required");
    expect_violation(&st, "certification", "required");
    expect_violation(&st, "value", "larger");
    expect_violation(&st, "recipient_member_ids[0]", "UUID");
    sentra_status_clear(&st);
}

/* A NUL byte inside a record's text is refused naming the record's field
 * as its other violations do ("name", not "member.name"). */
static void nul_refused(void **state)
{
    (void)state;
    Sentra__V1__Member m = member_of(s65, "IKM nul#hidden");
    Sentra__V1__CreateMemberRequest rq = SENTRA__V1__CREATE_MEMBER_REQUEST__INIT;
    rq.member = &m;
    size_t n = sentra__v1__create_member_request__get_packed_size(&rq);
    uint8_t *payload = malloc(n);
    sentra__v1__create_member_request__pack(&rq, payload);
    for (size_t i = 0; i + 4 <= n; i++)
        if (memcmp(payload + i, "nul#", 4) == 0)
            payload[i + 3] = 0;

    Sentra__V1__Request req = SENTRA__V1__REQUEST__INIT;
    Sentra__V1__Metadata md = SENTRA__V1__METADATA__INIT, *mdp = &md;
    char bearer[128];
    snprintf(bearer, sizeof bearer, "Bearer %s", tok[K_DIST]);
    md.key = "authorization";
    md.value = bearer;
    req.method = SENTRA_M_CREATE_MEMBER;
    req.metadata = &mdp;
    req.n_metadata = 1;
    req.payload.data = payload;
    req.payload.len = n;
    size_t rn = sentra__v1__request__get_packed_size(&req);
    uint8_t *buf = malloc(SENTRA_FRAME_HEADER_LEN + rn);
    sentra__v1__request__pack(&req, buf + SENTRA_FRAME_HEADER_LEN);
    sentra_frame_header(buf, SENTRA_FRAME_REQUEST, 0, 1, (uint32_t)rn);
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    assert_int_equal(th_send_all(fd, buf, SENTRA_FRAME_HEADER_LEN + rn), 0);
    free(buf);
    free(payload);
    uint8_t h[SENTRA_FRAME_HEADER_LEN];
    int64_t deadline = th_now_ms() + 10000;
    assert_int_equal(th_read_full(fd, h, sizeof h, deadline), 1);
    uint32_t flen = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    uint8_t *p = malloc(flen + 1);
    assert_int_equal(th_read_full(fd, p, flen, deadline), 1);
    close(fd);
    Sentra__V1__Response *r = sentra__v1__response__unpack(NULL, flen, p);
    free(p);
    assert_non_null(r);
    assert_int_equal(r->code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_int_equal(r->n_violations, 1);
    assert_string_equal(r->violations[0]->field, "name");
    assert_non_null(strstr(r->violations[0]->description, "NUL"));
    sentra__v1__response__free_unpacked(r, NULL);
    assert_int_equal(q_ll("SELECT count(*) FROM member WHERE name LIKE 'IKM nul%%'"), 0);
}

/* The rules that need the database, through the server: a NIB another live
 * member of the sentra has, recipients that are not the sentra's members,
 * an assistance of another sentra, a sentra that does not exist or is
 * deleted. */
static void validation_in_database(void **state)
{
    (void)state;
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__Member m = member_of(s65, "IKM Uji NIB Satu");
    m.nib = "0000555566667";
    Sentra__V1__Member *a = create_member(K_DIST, &m, &st, NULL);
    assert_non_null(a);
    m.name = "IKM Uji NIB Dua";
    assert_null(create_member(K_DIST, &m, &st, NULL));
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    expect_violation(&st, "nib", "another member");
    /* the same NIB in another sentra, and again once the first is deleted */
    m.sentra_id = s67;
    Sentra__V1__Member *b = create_member(K_DIST, &m, &st, NULL);
    assert_non_null(b);
    int64_t v;
    assert_int_equal(delete_member(K_DIST, a->id, 1, &v, &st), 0);
    m.sentra_id = s65;
    m.name = "IKM Uji NIB Tiga";
    Sentra__V1__Member *c = create_member(K_DIST, &m, &st, NULL);
    assert_non_null(c);

    Sentra__V1__CreateAssistanceRequest ca = SENTRA__V1__CREATE_ASSISTANCE_REQUEST__INIT;
    Sentra__V1__Assistance as = SENTRA__V1__ASSISTANCE__INIT, *ao = NULL;
    char *ids[] = {c->id, b->id};     /* b is a member of another sentra */
    as.sentra_id = s65;
    as.kind = SENTRA__V1__ASSISTANCE_KIND__ASSISTANCE_KIND_TRAINING;
    as.provider = SENTRA__V1__PROVIDER__PROVIDER_PROVINCE;
    as.programme = "Bimbingan teknis uji";
    as.year = 2022;
    as.value = 10000000;
    as.recipient_member_ids = ids;
    as.n_recipient_member_ids = 2;
    ca.assistance = &as;
    assert_int_not_equal(sentra_create_assistance(cl[K_DIST], &ca, &ao, NULL, &st), 0);
    expect_violation(&st, "recipient_member_ids[1]", "not a member of this sentra");
    as.n_recipient_member_ids = 1;
    assert_int_equal(sentra_create_assistance(cl[K_DIST], &ca, &ao, NULL, &st), 0);
    /* an obstacle of s67 cannot name the assistance of s65 */
    Sentra__V1__CreateObstacleRequest co = SENTRA__V1__CREATE_OBSTACLE_REQUEST__INIT;
    Sentra__V1__Obstacle o = SENTRA__V1__OBSTACLE__INIT, *oo = NULL;
    o.sentra_id = s67;
    o.category = SENTRA__V1__OBSTACLE_CATEGORY__OBSTACLE_CATEGORY_CAPITAL;
    o.description = "Modal kerja kurang";
    o.severity = SENTRA__V1__SEVERITY__SEVERITY_MEDIUM;
    o.reported_on = "2022-01-10";
    o.status = SENTRA__V1__OBSTACLE_STATUS__OBSTACLE_STATUS_OPEN;
    o.assistance_id = ao->id;
    co.obstacle = &o;
    assert_int_not_equal(sentra_create_obstacle(cl[K_DIST], &co, &oo, NULL, &st), 0);
    expect_violation(&st, "assistance_id", "this sentra");
    o.sentra_id = s65;
    assert_int_equal(sentra_create_obstacle(cl[K_DIST], &co, &oo, NULL, &st), 0);
    /* resolving by a mask that forgets the resolution: the merged record is
     * checked by the database */
    Sentra__V1__UpdateObstacleRequest uo = SENTRA__V1__UPDATE_OBSTACLE_REQUEST__INIT;
    Sentra__V1__Obstacle ou = SENTRA__V1__OBSTACLE__INIT, *ou_out = NULL;
    ou.id = oo->id;
    ou.status = SENTRA__V1__OBSTACLE_STATUS__OBSTACLE_STATUS_RESOLVED;
    const char *mask[] = {"status"};
    uo.obstacle = &ou;
    uo.update_mask = (char **)mask;
    uo.n_update_mask = 1;
    uo.expected_version = 1;
    assert_int_not_equal(sentra_update_obstacle(cl[K_DIST], &uo, &ou_out, NULL, &st), 0);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    expect_violation(&st, "resolution", "required");
    expect_violation(&st, "resolved_on", "required");
    const char *mask3[] = {"status", "resolution", "resolved_on"};
    ou.resolution = "Dibantu KUR";
    ou.resolved_on = "2022-06-01";
    uo.update_mask = (char **)mask3;
    uo.n_update_mask = 3;
    assert_int_equal(sentra_update_obstacle(cl[K_DIST], &uo, &ou_out, NULL, &st), 0);
    assert_int_equal(ou_out->version, 2);
    assert_string_equal(ou_out->assistance_id, ao->id);

    /* no such sentra; a deleted one */
    Sentra__V1__Member x = member_of("6d1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c11", "IKM Uji Tanpa Sentra");
    assert_null(create_member(K_DIST, &x, &st, NULL));
    expect_violation(&st, "sentra_id", "no sentra");
    FREE(a);
    FREE(b);
    FREE(c);
    FREE(ao);
    FREE(oo);
    FREE(ou_out);
    sentra_status_clear(&st);
}

/* Every rule as the database holds it for other writers (psql, loaders):
 * each statement breaks one rule of an otherwise valid row and is refused;
 * with the row triggers disabled (as a loader may), the CHECK constraints
 * alone still refuse the rules they hold. */
static void database_rules(void **state)
{
    (void)state;
    static const struct {
        const char *sql;      /* %s: a live sentra of 18.71 */
        const char *field;    /* in the DETAIL of SE003, or NULL for a constraint's */
        int check;            /* a CHECK holds it (also without triggers) */
    } cases[] = {
#define MEM(cols, vals) "INSERT INTO member (id, sentra_id, regency_code, name, owner_name, owner_sex" cols \
                        ") VALUES (gen_random_uuid(), '%s', '18.71', 'IKM SQL', 'Ani', 2" vals ")"
        {MEM("", ""), NULL, -1},                                   /* valid */
        {"INSERT INTO member (id, sentra_id, regency_code, name, owner_name, owner_sex)"
         " VALUES (gen_random_uuid(), '%s', '18.71', 'ab', 'Ani', 2)", NULL, 1},
        {"INSERT INTO member (id, sentra_id, regency_code, name, owner_name, owner_sex)"
         " VALUES (gen_random_uuid(), '%s', '18.71', 'IKM SQL', ' ', 2)", NULL, 1},
        {"INSERT INTO member (id, sentra_id, regency_code, name, owner_name, owner_sex)"
         " VALUES (gen_random_uuid(), '%s', '18.71', 'IKM SQL', 'Ani', 3)", NULL, 1},
        {MEM(", nib", ", '12345'"), NULL, 1},
        {MEM(", kbli_code, kbli_version", ", '45101', 2020"), NULL, 1},
        {MEM(", kbli_code", ", '10101'"), "kbli_version", 1},
        {MEM(", kbli_version", ", 2020"), "kbli_version", 1},
        {MEM(", kbli_code, kbli_version", ", '10101', 2021"), NULL, 1},
        {MEM(", products", ", E'a\\nb'"), NULL, 1},
        {MEM(", workers_male", ", -1"), NULL, 1},
        {MEM(", investment", ", 100000000000001"), NULL, 1},
        {MEM(", production_value", ", -5"), NULL, 1},
        {MEM(", joined_year", ", 1944"), NULL, 1},
        {MEM(", joined_year", ", 2100"), "joined_year", 0},
        {MEM(", left_year", ", 2100"), "left_year", 0},
        {MEM(", joined_year, left_year", ", 2020, 2019"), "left_year", 1},
        {"INSERT INTO obstacle (id, sentra_id, regency_code, category, description, severity,"
         " reported_on, status) VALUES (gen_random_uuid(), '%s', '', 11, 'Bahan baku', 1, '2022-01-01', 1)", NULL, 1},
        {"INSERT INTO obstacle (id, sentra_id, regency_code, category, description, severity,"
         " reported_on, status) VALUES (gen_random_uuid(), '%s', '', 1, 'ab', 1, '2022-01-01', 1)", NULL, 1},
        {"INSERT INTO obstacle (id, sentra_id, regency_code, category, description, severity,"
         " reported_on, status) VALUES (gen_random_uuid(), '%s', '', 1, E'Bahan \\u202e baku', 1, '2022-01-01', 1)", NULL, 1},
        {"INSERT INTO obstacle (id, sentra_id, regency_code, category, description, severity,"
         " reported_on, status) VALUES (gen_random_uuid(), '%s', '', 1, 'Bahan baku', 1, '2099-01-01', 1)", "reported_on", 0},
        {"INSERT INTO obstacle (id, sentra_id, regency_code, category, description, severity,"
         " reported_on, status) VALUES (gen_random_uuid(), '%s', '', 1, 'Bahan baku', 1, '2022-01-01', 3)", "resolution", 1},
        {"INSERT INTO obstacle (id, sentra_id, regency_code, category, description, severity,"
         " reported_on, status, resolution, resolved_on) VALUES (gen_random_uuid(), '%s', '', 1,"
         " 'Bahan baku', 1, '2022-01-01', 3, 'Beres', '2021-12-31')", "resolved_on", 1},
        {"INSERT INTO obstacle (id, sentra_id, regency_code, category, description, severity,"
         " reported_on, status, resolution) VALUES (gen_random_uuid(), '%s', '', 1,"
         " 'Bahan baku', 1, '2022-01-01', 1, 'Beres')", "resolution", 1},
        {"INSERT INTO obstacle (id, sentra_id, regency_code, category, description, severity,"
         " reported_on, status, resolved_on) VALUES (gen_random_uuid(), '%s', '', 1,"
         " 'Bahan baku', 1, '2022-01-01', 2, '2022-02-01')", "resolved_on", 1},
        {"INSERT INTO assistance (id, sentra_id, regency_code, kind, provider, programme, year)"
         " VALUES (gen_random_uuid(), '%s', '', 3, 1, 'Sertifikasi', 2022)", "certification", 1},
        {"INSERT INTO assistance (id, sentra_id, regency_code, kind, certification, provider, programme, year)"
         " VALUES (gen_random_uuid(), '%s', '', 2, 1, 1, 'Pelatihan', 2022)", "certification", 1},
        {"INSERT INTO assistance (id, sentra_id, regency_code, kind, provider, programme, year)"
         " VALUES (gen_random_uuid(), '%s', '', 2, 6, 'Pelatihan', 2022)", NULL, 1},
        {"INSERT INTO assistance (id, sentra_id, regency_code, kind, provider, programme, year)"
         " VALUES (gen_random_uuid(), '%s', '', 2, 1, 'Pelatihan', 2099)", "year", 0},
        {"INSERT INTO assistance (id, sentra_id, regency_code, kind, provider, programme, year, value)"
         " VALUES (gen_random_uuid(), '%s', '', 2, 1, 'Pelatihan', 2022, -1)", NULL, 1},
        {"INSERT INTO assistance (id, sentra_id, regency_code, kind, provider, programme, year,"
         " recipient_member_ids) VALUES (gen_random_uuid(), '%s', '', 2, 1, 'Pelatihan', 2022,"
         " ARRAY['6d1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c11', '6d1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c11']::uuid[])",
         NULL, 1},
        {"INSERT INTO assistance (id, sentra_id, regency_code, kind, provider, programme, year,"
         " recipient_member_ids) VALUES (gen_random_uuid(), '%s', '', 2, 1, 'Pelatihan', 2022,"
         " ARRAY['6d1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c11']::uuid[])", "recipient_member_ids[0]", 0},
        {"INSERT INTO institution (sentra_id, regency_code, form, legal_basis)"
         " VALUES ('%s', '', 1, 'Akta')", "legal_basis", 1},
        {"INSERT INTO institution (sentra_id, regency_code, form) VALUES ('%s', '', 2)", "board.chair", 1},
        {"INSERT INTO institution (sentra_id, regency_code, form, board_chair, facility_name)"
         " VALUES ('%s', '', 2, 'Ani', 'UPT')", "facility.condition", 1},
        {"INSERT INTO institution (sentra_id, regency_code, form, board_chair, facility_provides)"
         " VALUES ('%s', '', 2, 'Ani', 'mesin')", "facility.provides", 1},
        {"INSERT INTO institution (sentra_id, regency_code, form, board_chair) VALUES ('%s', '', 6, 'Ani')", NULL, 1},
#undef MEM
    };
    char state_[16], detail[512];
    /* a sentra of 18.71 without an institution, for the institution cases */
    char *fresh = q_str("SELECT s.id FROM sentra s WHERE s.regency_code = '18.71' AND s.deleted_at IS NULL"
                        " AND NOT EXISTS (SELECT 1 FROM institution i WHERE i.sentra_id = s.id) LIMIT 1");
    assert_true(fresh[0] != '\0');
    for (int replica = 0; replica <= 1; replica++) {
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            if (replica && cases[i].check == 0)
                continue;       /* a trigger's rule: off with the triggers */
            const char *sid = strstr(cases[i].sql, "institution") ? fresh : s65;
            char sql[2048];
            snprintf(sql, sizeof sql, cases[i].sql, sid);
            /* rolled back either way: each case is tried alone */
            q_state(state_, sizeof state_, detail, sizeof detail, "BEGIN; %s%s; %s; ROLLBACK",
                    replica ? "ALTER TABLE member DISABLE TRIGGER USER;"
                              " ALTER TABLE obstacle DISABLE TRIGGER USER;"
                              " ALTER TABLE assistance DISABLE TRIGGER USER;"
                              " ALTER TABLE institution DISABLE TRIGGER USER; " : "", "SELECT 1", sql);
            if (cases[i].check < 0) {
                if (state_[0])
                    fail_msg("case %zu (valid) refused: %s %s", i, state_, detail);
                continue;
            }
            if (!state_[0])
                fail_msg("case %zu%s not refused: %s", i, replica ? " (no triggers)" : "", sql);
            if (!replica && cases[i].field && strcmp(state_, "SE003") == 0 &&
                !strstr(detail, cases[i].field))
                fail_msg("case %zu: the detail \"%s\" does not name %s", i, detail, cases[i].field);
            if (replica && strncmp(state_, "23", 2) != 0)
                fail_msg("case %zu without triggers: SQLSTATE %s, not a constraint", i, state_);
        }
    }
    /* Every writer gets the scope from the sentra, whatever it writes, and
     * a member never moves to another sentra by an UPDATE. */
    q_exec("INSERT INTO member (id, sentra_id, regency_code, name, owner_name, owner_sex)"
           " VALUES ('7d1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c11', '%s', '31.71', 'IKM Lewat SQL', 'Ani', 2)", s65);
    char *reg = q_str("SELECT regency_code FROM member WHERE id = '7d1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c11'");
    assert_string_equal(reg, "18.71");
    free(reg);
    q_state(state_, sizeof state_, detail, sizeof detail,
            "UPDATE member SET sentra_id = '%s' WHERE id = '7d1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c11'", s71);
    assert_string_equal(state_, "SE003");
    assert_non_null(strstr(detail, "sentra_id"));
    /* the size class is never typed in */
    q_state(state_, sizeof state_, NULL, 0,
            "UPDATE member SET size_class = 3 WHERE id = '7d1a0f8e-4b1c-4c55-9d7e-0a6b4f3a2c11'");
    assert_string_equal(state_, "428C9");      /* generated_always */
    free(fresh);
}

/* ---------------------------------------------------------------- size class */

/* The size classes of Permenperin 64/2016 at both sides of each boundary,
 * through the server, and the same from the SQL function. */
static void size_classes(void **state)
{
    (void)state;
    static const struct {
        int64_t male, female, investment;
        int cls;
    } cases[] = {
        {19, 0, 999999999, 1}, {10, 9, 999999999, 1}, {0, 0, 0, 1},
        {19, 0, 1000000000, 2}, {20, 0, 999999999, 2}, {12, 8, 15000000000LL, 2},
        {20, 0, 15000000001LL, 3}, {0, 20, 15000000001LL, 3}, {19, 0, 15000000001LL, 2},
        {500, 500, 100000000000000LL, 3},
    };
    sentra_status_t st;
    sentra_status_init(&st);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[64];
        snprintf(name, sizeof name, "IKM Uji Kelas %zu", i);
        Sentra__V1__Member m = member_of(s67, name);
        m.workers_male = cases[i].male;
        m.workers_female = cases[i].female;
        m.investment = cases[i].investment;
        Sentra__V1__Member *c = create_member(K_DIST, &m, &st, NULL);
        assert_non_null(c);
        if ((int)c->size_class != cases[i].cls)
            fail_msg("case %zu: %lld workers, Rp %lld: class %d, want %d", i,
                     (long long)(cases[i].male + cases[i].female), (long long)cases[i].investment,
                     c->size_class, cases[i].cls);
        assert_int_equal(q_ll("SELECT member_size_class(%lld, %lld)",
                              (long long)(cases[i].male + cases[i].female),
                              (long long)cases[i].investment), cases[i].cls);
        FREE(c);
    }
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- institution */

static Sentra__V1__Institution *set_institution(int who, const char *sid, int form, const char *chair,
                                                int64_t expected, sentra_status_t *st)
{
    Sentra__V1__SetInstitutionRequest rq = SENTRA__V1__SET_INSTITUTION_REQUEST__INIT;
    Sentra__V1__Institution in = SENTRA__V1__INSTITUTION__INIT, *out = NULL;
    Sentra__V1__Board b = SENTRA__V1__BOARD__INIT;
    in.sentra_id = (char *)sid;
    in.form = form;
    b.chair = (char *)chair;
    in.board = &b;
    rq.institution = &in;
    rq.expected_version = expected;
    sentra_set_institution(cl[who], &rq, &out, NULL, st);
    return out;
}

/* One per sentra: created at "version 0", replaced at its version, deleted
 * into a tombstone, brought back above the tombstone (and above a hard
 * delete's logged version). */
static void institution_lifecycle(void **state)
{
    (void)state;
    sentra_status_t st;
    sentra_status_init(&st);
    char *sid = q_str("SELECT s.id FROM sentra s WHERE s.regency_code = '18.71' AND s.deleted_at IS NULL"
                      " AND NOT EXISTS (SELECT 1 FROM institution i WHERE i.sentra_id = s.id) LIMIT 1");
    Sentra__V1__Institution *i1 = set_institution(K_DIST, sid, SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_KUB,
                                                  "Ibu Ketua", 0, &st);
    assert_non_null(i1);
    assert_int_equal(i1->version, 1);
    assert_string_equal(i1->board->chair, "Ibu Ketua");
    assert_null(set_institution(K_DIST, sid, 2, "Lain", 0, &st));
    assert_int_equal(st.code, SENTRA__V1__CODE__ABORTED);
    assert_int_equal(st.current_version, 1);
    Sentra__V1__Institution *i2 = set_institution(K_PROV, sid, SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_KOPERASI,
                                                  "Pak Ketua", 1, &st);
    assert_non_null(i2);
    assert_int_equal(i2->version, 2);
    assert_int_equal(i2->form, SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_KOPERASI);
    assert_null(set_institution(K_DIST2, sid, 2, "Luar", 2, &st));
    assert_int_equal(st.code, SENTRA__V1__CODE__PERMISSION_DENIED);

    Sentra__V1__DeleteInstitutionRequest dr = SENTRA__V1__DELETE_INSTITUTION_REQUEST__INIT;
    Sentra__V1__DeleteRecordResponse *d = NULL;
    dr.sentra_id = sid;
    dr.expected_version = 2;
    assert_int_equal(sentra_delete_institution(cl[K_DIST], &dr, &d, NULL, &st), 0);
    assert_int_equal(d->version, 3);
    assert_string_equal(d->id, sid);
    FREE(d);
    Sentra__V1__GetInstitutionRequest gr = SENTRA__V1__GET_INSTITUTION_REQUEST__INIT;
    Sentra__V1__Institution *g = NULL;
    gr.sentra_id = sid;
    assert_int_not_equal(sentra_get_institution(cl[K_DIST], &gr, &g, NULL, &st), 0);
    assert_int_equal(st.code, SENTRA__V1__CODE__NOT_FOUND);
    /* back, above the tombstone */
    Sentra__V1__Institution *i4 = set_institution(K_DIST, sid, SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_NONE,
                                                  "", 0, &st);
    assert_non_null(i4);
    assert_int_equal(i4->version, 4);
    assert_false(i4->deleted);
    /* a hard delete logs version 5; the next one starts at 6 */
    q_exec("DELETE FROM institution WHERE sentra_id = '%s'", sid);
    assert_int_equal(q_ll("SELECT max(new_version) FROM sentra_change WHERE kind = 3 AND record_id = '%s'", sid), 5);
    Sentra__V1__Institution *i6 = set_institution(K_DIST, sid, SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_ASSOCIATION,
                                                  "Ketua Baru", 0, &st);
    assert_non_null(i6);
    assert_int_equal(i6->version, 6);
    char *ops = q_str("SELECT string_agg(op || new_version, ' ' ORDER BY seq) FROM sentra_change"
                      " WHERE kind = 3 AND record_id = '%s'", sid);
    assert_string_equal(ops, "C1 U2 D3 U4 D5 C6");
    free(ops);

    Sentra__V1__ListInstitutionsRequest lr = SENTRA__V1__LIST_INSTITUTIONS_REQUEST__INIT;
    Sentra__V1__ListInstitutionsResponse *l = NULL;
    Sentra__V1__RecordFilter f = SENTRA__V1__RECORD_FILTER__INIT;
    f.regency_code = "18.71";
    lr.filter = &f;
    lr.include_total = 1;
    lr.page_size = 2;
    assert_int_equal(sentra_list_institutions(cl[K_NAT], &lr, &l, NULL, &st), 0);
    assert_int_equal(l->total, q_ll("SELECT count(*) FROM institution WHERE regency_code = '18.71'"
                                    " AND deleted_at IS NULL"));
    assert_true(l->n_institutions <= 2);
    assert_true(strcmp(l->institutions[0]->sentra_id, l->institutions[1]->sentra_id) < 0);
    FREE(l);
    FREE(i1);
    FREE(i2);
    FREE(i4);
    FREE(i6);
    free(sid);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- paging */

/* 250 members in one sentra (through SQL, every trigger running) paged by
 * 100 in both directions: every member once, in (name, id) order, the
 * total equal to SQL's count; regional lists and filters likewise. */
static void keyset_pages(void **state)
{
    (void)state;
    sentra_status_t st;
    sentra_status_init(&st);
    q_exec("INSERT INTO member (id, sentra_id, regency_code, name, owner_name, owner_sex, workers_male,"
           " investment, left_year) SELECT gen_random_uuid(), '%s', '', 'IKM Halaman ' || (i %% 83),"
           " 'Pemilik', 1 + i %% 2, i %% 30, CASE WHEN i %% 7 = 0 THEN 2000000000 ELSE 5000000 END,"
           " CASE WHEN i %% 11 = 0 THEN 2020 END FROM generate_series(1, 250) i", s67);
    long long want = q_ll("SELECT count(*) FROM member WHERE sentra_id = '%s' AND deleted_at IS NULL", s67);
    for (int desc = 0; desc <= 1; desc++) {
        Sentra__V1__RecordFilter f = SENTRA__V1__RECORD_FILTER__INIT;
        f.sentra_id = s67;
        char *token = NULL, prev_name[256] = "", prev_id[40] = "";
        long long seen = 0;
        int pages = 0;
        for (;;) {
            Sentra__V1__ListMembersResponse *l = list_members(K_DIST, &f, 100, token, 1, desc, &st);
            assert_non_null(l);
            if (pages == 0)
                assert_int_equal(l->total, want);
            for (size_t i = 0; i < l->n_members; i++) {
                const Sentra__V1__Member *m = l->members[i];
                if (seen > 0) {
                    int c = strcmp(prev_name, m->name);
                    if (c == 0)
                        c = strcmp(prev_id, m->id);
                    if (desc ? c <= 0 : c >= 0)
                        fail_msg("out of order: (%s, %s) then (%s, %s)", prev_name, prev_id, m->name, m->id);
                }
                snprintf(prev_name, sizeof prev_name, "%s", m->name);
                snprintf(prev_id, sizeof prev_id, "%s", m->id);
                seen++;
            }
            pages++;
            free(token);
            token = l->next_page_token[0] ? strdup(l->next_page_token) : NULL;
            FREE(l);
            if (!token)
                break;
            assert_true(pages < 10);
        }
        assert_int_equal(seen, want);
        assert_int_equal(pages, (int)((want + 99) / 100));
    }
    /* a token of another direction or kind is refused */
    Sentra__V1__RecordFilter f = SENTRA__V1__RECORD_FILTER__INIT;
    f.sentra_id = s67;
    Sentra__V1__ListMembersResponse *l = list_members(K_DIST, &f, 5, NULL, 0, 0, &st);
    char *tok0 = strdup(l->next_page_token);
    FREE(l);
    assert_null(list_members(K_DIST, &f, 5, tok0, 0, 1, &st));
    expect_violation(&st, "page_token", NULL);
    assert_null(list_members(K_DIST, &f, 5, "7a7a", 0, 0, &st));
    expect_violation(&st, "page_token", NULL);
    Sentra__V1__ListObstaclesRequest lo = SENTRA__V1__LIST_OBSTACLES_REQUEST__INIT;
    Sentra__V1__ListObstaclesResponse *ol = NULL;
    lo.page_token = tok0;
    assert_int_not_equal(sentra_list_obstacles(cl[K_DIST], &lo, &ol, NULL, &st), 0);
    expect_violation(&st, "page_token", NULL);
    free(tok0);

    /* totals by region and by filter, against SQL */
    Sentra__V1__RecordFilter g = SENTRA__V1__RECORD_FILTER__INIT;
    l = list_members(K_NAT, &g, 1, NULL, 1, 0, &st);
    assert_int_equal(l->total, q_ll("SELECT count(*) FROM member WHERE deleted_at IS NULL"));
    FREE(l);
    l = list_members(K_PROV, &g, 1, NULL, 1, 0, &st);
    assert_int_equal(l->total, q_ll("SELECT count(*) FROM member WHERE deleted_at IS NULL AND province_code = '18'"));
    FREE(l);
    g.regency_code = "18.04";
    l = list_members(K_PROV, &g, 1, NULL, 1, 0, &st);
    assert_int_equal(l->total, q_ll("SELECT count(*) FROM member WHERE deleted_at IS NULL AND regency_code = '18.04'"));
    FREE(l);
    Sentra__V1__SizeClass medium[] = {SENTRA__V1__SIZE_CLASS__SIZE_CLASS_MEDIUM};
    g.regency_code = "";
    g.size_class = medium;
    g.n_size_class = 1;
    g.current_only = 1;
    g.owner_sex = SENTRA__V1__SEX__SEX_FEMALE;
    l = list_members(K_DIST, &g, 1000, NULL, 1, 0, &st);
    assert_int_equal(l->total, q_ll("SELECT count(*) FROM member WHERE deleted_at IS NULL AND regency_code = '18.71'"
                                    " AND size_class = 2 AND left_year IS NULL AND owner_sex = 2"));
    assert_int_equal((long long)l->n_members, l->total);
    FREE(l);
    /* a filter of another kind is refused by name */
    Sentra__V1__ObstacleCategory cat[] = {SENTRA__V1__OBSTACLE_CATEGORY__OBSTACLE_CATEGORY_CAPITAL};
    Sentra__V1__RecordFilter h = SENTRA__V1__RECORD_FILTER__INIT;
    h.category = cat;
    h.n_category = 1;
    assert_null(list_members(K_DIST, &h, 10, NULL, 0, 0, &st));
    expect_violation(&st, "filter.category", "obstacles");
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- the sentra's changes */

/* A sentra moved to another regency takes its records with it (a new
 * version each, the new regency); a deleted sentra tombstones them, and
 * no record can be written for it afterwards. */
static void records_follow_their_sentra(void **state)
{
    (void)state;
    sentra_status_t st;
    sentra_status_init(&st);
    char *sid = q_str("SELECT md5('demo-lampung-68')::uuid");   /* Batik Lampung, 18.71 */
    Sentra__V1__Member m = member_of(sid, "IKM Uji Pindah");
    Sentra__V1__Member *c = create_member(K_DIST, &m, &st, NULL);
    assert_non_null(c);
    long long n = q_ll("SELECT count(*) FROM member WHERE sentra_id = '%s' AND deleted_at IS NULL", sid);
    long long nrec = n + q_ll("SELECT count(*) FROM obstacle WHERE sentra_id = '%s' AND deleted_at IS NULL", sid)
                   + q_ll("SELECT count(*) FROM assistance WHERE sentra_id = '%s' AND deleted_at IS NULL", sid)
                   + q_ll("SELECT count(*) FROM institution WHERE sentra_id = '%s' AND deleted_at IS NULL", sid);
    long long rows0 = q_ll("SELECT count(*) FROM sentra_change WHERE sentra_id = '%s' AND kind > 1", sid);

    Sentra__V1__GetSentraRequest gs = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra *s = NULL;
    gs.id = sid;
    assert_int_equal(sentra_get_sentra(cl[K_PROV], &gs, &s, NULL, &st), 0);
    Sentra__V1__UpdateSentraRequest us = SENTRA__V1__UPDATE_SENTRA_REQUEST__INIT;
    const char *mask[] = {"regency_code", "district_code", "village_code"};
    /* the message is the library's (freed below): the changed fields go
     * on a copy of its top level */
    Sentra__V1__Sentra mv = *s;
    mv.regency_code = "18.72";
    mv.district_code = "";
    mv.village_code = "";
    us.sentra = &mv;
    us.update_mask = (char **)mask;
    us.n_update_mask = 3;
    us.expected_version = s->version;
    Sentra__V1__Sentra *moved = NULL;
    assert_int_equal(sentra_update_sentra(cl[K_PROV], &us, &moved, NULL, &st), 0);
    assert_int_equal(q_ll("SELECT count(*) FROM member WHERE sentra_id = '%s' AND deleted_at IS NULL"
                          " AND regency_code = '18.72' AND province_code = '18'", sid), n);
    assert_int_equal(q_ll("SELECT count(*) FROM sentra_change WHERE sentra_id = '%s' AND kind > 1", sid) - rows0, nrec);
    assert_int_equal(q_ll("SELECT count(*) FROM sentra_change WHERE sentra_id = '%s' AND kind > 1"
                          " AND old_regency_code = '18.71' AND regency_code = '18.72'", sid), nrec);
    assert_null(get_member(K_DIST, c->id, &st));
    assert_int_equal(st.code, SENTRA__V1__CODE__NOT_FOUND);
    Sentra__V1__Member *g = get_member(K_DIST2, c->id, &st);
    assert_non_null(g);
    assert_int_equal(g->version, 2);
    assert_string_equal(g->regency_code, "18.72");
    FREE(g);

    Sentra__V1__DeleteSentraRequest ds = SENTRA__V1__DELETE_SENTRA_REQUEST__INIT;
    Sentra__V1__DeleteSentraResponse *dd = NULL;
    ds.id = sid;
    ds.expected_version = moved->version;
    assert_int_equal(sentra_delete_sentra(cl[K_DIST2], &ds, &dd, NULL, &st), 0);
    FREE(dd);
    assert_int_equal(q_ll("SELECT count(*) FROM member WHERE sentra_id = '%s' AND deleted_at IS NULL", sid), 0);
    assert_int_equal(q_ll("SELECT count(*) FROM member WHERE sentra_id = '%s' AND deleted_at IS NOT NULL"
                          " AND version = 3 AND id = '%s'", sid, c->id), 1);
    assert_int_equal(q_ll("SELECT count(*) FROM sentra_change WHERE sentra_id = '%s' AND kind > 1 AND op = 'D'", sid),
                     nrec);
    assert_null(get_member(K_DIST2, c->id, &st));
    Sentra__V1__Member late = member_of(sid, "IKM Uji Terlambat");
    assert_null(create_member(K_DIST2, &late, &st, NULL));
    expect_violation(&st, "sentra_id", "no sentra");
    assert_int_equal(q_ll("SELECT coalesce(sum(member_rows + obstacles_open + assistance_count), 0)"
                          " FROM sentra_stat WHERE sentra_id = '%s'", sid), 0);
    FREE(s);
    FREE(moved);
    FREE(c);
    free(sid);
    sentra_status_clear(&st);
}

/* ---------------------------------------------------------------- idempotency */

static void idempotency(void **state)
{
    (void)state;
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__Member m = member_of(s65, "IKM Uji Sekali");
    Sentra__V1__Member *a = create_member(K_DIST, &m, &st, "uji-sekali-1");
    Sentra__V1__Member *b = create_member(K_DIST, &m, &st, "uji-sekali-1");
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a->id, b->id);
    assert_int_equal(q_ll("SELECT count(*) FROM member WHERE name = 'IKM Uji Sekali'"), 1);
    /* the key of another method */
    Sentra__V1__DeleteMemberRequest dr = SENTRA__V1__DELETE_MEMBER_REQUEST__INIT;
    Sentra__V1__DeleteRecordResponse *d = NULL;
    sentra_call_opts_t co = {0, "uji-sekali-1", 0};
    dr.id = a->id;
    dr.expected_version = 1;
    assert_int_not_equal(sentra_delete_member(cl[K_DIST], &dr, &d, &co, &st), 0);
    expect_violation(&st, "idempotency_key", NULL);
    FREE(a);
    FREE(b);
    sentra_status_clear(&st);
}

/* After everything above: the derived rows say what the tables say. */
static void no_drift(void **state)
{
    (void)state;
    assert_int_equal(q_ll("SELECT count(*) FROM sentra_derived_drift()"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(member_lifecycle),
        cmocka_unit_test(scope),
        cmocka_unit_test(validation_in_c),
        cmocka_unit_test(nul_refused),
        cmocka_unit_test(validation_in_database),
        cmocka_unit_test(database_rules),
        cmocka_unit_test(size_classes),
        cmocka_unit_test(institution_lifecycle),
        cmocka_unit_test(keyset_pages),
        cmocka_unit_test(records_follow_their_sentra),
        cmocka_unit_test(idempotency),
        cmocka_unit_test(no_drift),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
