/*
 * test_validate_records.c: every rule of server/services/validate_records.c
 * (members, institutions, obstacles, assistance, their masks and list
 * filters). Each case breaks one rule of an otherwise valid record and must
 * yield exactly one violation, on exactly the expected field path; the
 * boundaries are tried on both sides. The database's side of the same
 * rules is tested through the server (tests/integration/test_records.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate_records.h"

#define TODAY 20261128   /* a fixed "today" so the tests do not age */
#define ID "0b7f3c9e-5d2a-4e8f-9a1b-2c3d4e5f6a7b"
#define ID2 "1b7f3c9e-5d2a-4e8f-9a1b-2c3d4e5f6a7b"

/* ---------------------------------------------------------------- fixture */

typedef struct seen {
    char field[8][96];
    char reason[8][256];
    int n;
} seen_t;

static void collect(void *arg, const char *field, const char *reason)
{
    seen_t *s = arg;
    if (s->n < 8 && field) {
        snprintf(s->field[s->n], sizeof s->field[0], "%s", field);
        snprintf(s->reason[s->n], sizeof s->reason[0], "%s", reason);
    }
    s->n++;
}

static validate_ctx_t ctx(seen_t *s)
{
    memset(s, 0, sizeof *s);
    validate_ctx_t vc = {.today = TODAY, .report = collect, .arg = s, .max = 0};
    return vc;
}

/* Exactly one violation, on field, its reason containing want. */
static void one(const seen_t *s, const char *field, const char *want)
{
    if (s->n != 1) {
        for (int i = 0; i < s->n && i < 8; i++)
            fprintf(stderr, "  got %s: %s\n", s->field[i], s->reason[i]);
        fail_msg("expected one violation on %s, got %d", field, s->n);
    }
    assert_string_equal(s->field[0], field);
    if (want && !strstr(s->reason[0], want))
        fail_msg("%s: \"%s\" does not say \"%s\"", field, s->reason[0], want);
}

static void none(const seen_t *s)
{
    if (s->n != 0) {
        for (int i = 0; i < s->n && i < 8; i++)
            fprintf(stderr, "  got %s: %s\n", s->field[i], s->reason[i]);
        fail_msg("expected no violation, got %d", s->n);
    }
}

static Sentra__V1__Member member(void)
{
    Sentra__V1__Member m = SENTRA__V1__MEMBER__INIT;
    m.sentra_id = ID;
    m.name = "Tapis Ibu Ani";
    m.owner_name = "Ani";
    m.owner_sex = SENTRA__V1__SEX__SEX_FEMALE;
    m.nib = "9120001234567";
    m.kbli_code = "13121";
    m.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    m.products = "Kain tapis";
    m.workers_male = 1;
    m.workers_female = 4;
    m.investment = 50000000;
    m.production_value = 120000000;
    m.joined_year = 2015;
    return m;
}

/* ---------------------------------------------------------------- members */

static void member_rules(void **state)
{
    (void)state;
    seen_t s;
    validate_ctx_t vc;
    Sentra__V1__Member m;

#define CASE(change, how, field, want)               \
    do {                                             \
        m = member();                                \
        change;                                      \
        vc = ctx(&s);                                \
        validate_member(&vc, &m, REC_ALL, how);      \
        if (field)                                   \
            one(&s, field, want);                    \
        else                                         \
            none(&s);                                \
    } while (0)

    CASE((void)0, VR_SENTRA, NULL, NULL);
    CASE(m.id = ID2, VR_SENTRA, NULL, NULL);                 /* a client-chosen id */
    CASE(m.id = "x", VR_SENTRA, "id", "UUID");
    CASE(m.id = "", VR_ID, "id", "required");
    CASE(m.sentra_id = "", VR_SENTRA, "sentra_id", "required");
    CASE(m.sentra_id = "abc", VR_SENTRA, "sentra_id", "UUID");
    CASE((m.sentra_id = "", m.id = ID), VR_ID, NULL, NULL);  /* an update does not read it */
    CASE(m.name = "ab", VR_SENTRA, "name", "at least 3");
    CASE(m.name = "   ", VR_SENTRA, "name", "required");
    CASE(m.name = "Tapis\nAni", VR_SENTRA, "name", "control");
    CASE(m.name = "Tapis \xe2\x80\xae" "Ani", VR_SENTRA, "name", "U+202E");
    CASE(m.owner_name = "", VR_SENTRA, "owner_name", "required");
    CASE(m.owner_name = "A", VR_SENTRA, NULL, NULL);
    CASE(m.owner_sex = 0, VR_SENTRA, "owner_sex", "required");
    CASE(m.owner_sex = 3, VR_SENTRA, "owner_sex", "known");
    CASE(m.nib = "", VR_SENTRA, NULL, NULL);                 /* many micro members have none */
    CASE(m.nib = "912000123456", VR_SENTRA, "nib", "13 digits");
    CASE(m.nib = "91200012345678", VR_SENTRA, "nib", "13 digits");
    CASE(m.nib = "912000123456x", VR_SENTRA, "nib", "13 digits");
    CASE(m.kbli_code = "1312", VR_SENTRA, "kbli_code", "5 digits");
    CASE(m.kbli_code = "45111", VR_SENTRA, "kbli_code", "manufacturing");
    CASE(m.kbli_code = "09111", VR_SENTRA, "kbli_code", "manufacturing");
    CASE(m.kbli_code = "33111", VR_SENTRA, NULL, NULL);
    CASE(m.kbli_version = 0, VR_SENTRA, "kbli_version", "required with");
    CASE(m.kbli_version = 7, VR_SENTRA, "kbli_version", "known");
    CASE(m.kbli_code = "", VR_SENTRA, "kbli_version", "empty without");
    CASE((m.kbli_code = "", m.kbli_version = 0), VR_SENTRA, NULL, NULL);
    CASE(m.products = "a\tb", VR_SENTRA, "products", "control");
    CASE(m.workers_male = -1, VR_SENTRA, "workers_male", "negative");
    CASE(m.workers_female = (int64_t)INT32_MAX + 1, VR_SENTRA, "workers_female", "larger");
    CASE(m.investment = VALIDATE_MONEY_MAX + 1, VR_SENTRA, "investment", "larger");
    CASE(m.investment = VALIDATE_MONEY_MAX, VR_SENTRA, NULL, NULL);
    CASE(m.production_value = -5, VR_SENTRA, "production_value", "negative");
    CASE(m.joined_year = 1944, VR_SENTRA, "joined_year", "1945");
    CASE(m.joined_year = 2027, VR_SENTRA, "joined_year", "future");
    CASE(m.joined_year = 0, VR_SENTRA, NULL, NULL);          /* not known */
    CASE(m.left_year = 2026, VR_SENTRA, NULL, NULL);
    CASE(m.left_year = 2027, VR_SENTRA, "left_year", "future");
    CASE(m.left_year = 2014, VR_SENTRA, "left_year", "before joined_year");
    CASE((m.left_year = 2014, m.joined_year = 0), VR_SENTRA, NULL, NULL);
#undef CASE
}

/* Only the fields of a mask are checked; cross-field rules only when every
 * field they read is in it. */
static void member_partial(void **state)
{
    (void)state;
    seen_t s;
    validate_ctx_t vc = ctx(&s);
    Sentra__V1__Member m = member();
    m.id = ID;
    m.name = "";
    m.left_year = 2010;      /* before joined, but joined_year is not written */
    validate_member(&vc, &m, REC_FIELD(15), VR_ID);
    none(&s);
    vc = ctx(&s);
    validate_member(&vc, &m, REC_FIELD(3), VR_ID);
    one(&s, "name", "required");
    vc = ctx(&s);
    m.kbli_code = "";
    validate_member(&vc, &m, REC_FIELD(8), VR_ID);   /* version alone: the database checks */
    none(&s);
}

/* ---------------------------------------------------------------- institution */

static void institution_rules(void **state)
{
    (void)state;
    seen_t s;
    validate_ctx_t vc;
    Sentra__V1__Institution in;
    Sentra__V1__Board b;
    Sentra__V1__Facility f;

#define CASE(change, field, want)                                  \
    do {                                                           \
        in = (Sentra__V1__Institution)SENTRA__V1__INSTITUTION__INIT; \
        b = (Sentra__V1__Board)SENTRA__V1__BOARD__INIT;             \
        f = (Sentra__V1__Facility)SENTRA__V1__FACILITY__INIT;       \
        in.sentra_id = ID;                                         \
        in.form = SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_KOPERASI; \
        in.legal_basis = "Akta notaris No. 12/2019";               \
        in.registration_number = "AHU-0012345.AH.01.26";           \
        b.chair = "Ibu Ani";                                       \
        b.secretary = "Budi";                                      \
        in.board = &b;                                             \
        f.name = "UPT Tapis";                                      \
        f.provides = "alat tenun bersama";                         \
        f.condition = SENTRA__V1__FACILITY_CONDITION__FACILITY_CONDITION_GOOD; \
        in.facility = &f;                                          \
        change;                                                    \
        vc = ctx(&s);                                              \
        validate_institution(&vc, &in);                            \
        if (field)                                                 \
            one(&s, field, want);                                  \
        else                                                       \
            none(&s);                                              \
    } while (0)

    CASE((void)0, NULL, NULL);
    CASE(in.sentra_id = "", "sentra_id", "required");
    CASE(in.form = 0, "form", "required");
    CASE(in.form = 6, "form", "known");
    CASE((in.form = SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_NONE, in.legal_basis = "",
          in.registration_number = "", b.chair = ""), NULL, NULL);
    CASE((in.form = SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_NONE,
          in.registration_number = ""), "legal_basis", "none");
    CASE((in.form = SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_NONE, in.legal_basis = ""),
         "registration_number", "none");
    CASE(b.chair = "  ", "board.chair", "required");
    CASE(in.board = NULL, "board.chair", "required");
    CASE(b.treasurer = "x\x7f", "board.treasurer", "control");
    CASE(in.legal_basis = "a\nb", "legal_basis", "control");
    CASE(f.condition = 0, "facility.condition", "required");
    CASE(f.condition = 5, "facility.condition", "known");
    CASE((f.name = "", f.provides = ""), "facility.condition", "without");
    CASE((f.name = "", f.condition = 0), "facility.provides", "without");
    CASE(in.facility = NULL, NULL, NULL);
#undef CASE
}

/* ---------------------------------------------------------------- obstacles */

static void obstacle_rules(void **state)
{
    (void)state;
    seen_t s;
    validate_ctx_t vc;
    Sentra__V1__Obstacle o;

#define CASE(change, field, want)                                        \
    do {                                                                 \
        o = (Sentra__V1__Obstacle)SENTRA__V1__OBSTACLE__INIT;            \
        o.sentra_id = ID;                                                \
        o.category = SENTRA__V1__OBSTACLE_CATEGORY__OBSTACLE_CATEGORY_RAW_MATERIALS; \
        o.description = "Harga benang emas naik\nsejak 2021";            \
        o.severity = SENTRA__V1__SEVERITY__SEVERITY_HIGH;                \
        o.reported_on = "2022-03-01";                                    \
        o.status = SENTRA__V1__OBSTACLE_STATUS__OBSTACLE_STATUS_OPEN;    \
        change;                                                          \
        vc = ctx(&s);                                                    \
        validate_obstacle(&vc, &o, REC_ALL, VR_SENTRA);                  \
        if (field)                                                       \
            one(&s, field, want);                                        \
        else                                                             \
            none(&s);                                                    \
    } while (0)
#define RESOLVED (o.status = SENTRA__V1__OBSTACLE_STATUS__OBSTACLE_STATUS_RESOLVED)

    CASE((void)0, NULL, NULL);
    CASE(o.category = 0, "category", "required");
    CASE(o.category = 11, "category", "known");
    CASE(o.category = 10, NULL, NULL);
    CASE(o.description = "ab", "description", "at least 3");
    CASE(o.description = "a\x01" "bcd", "description", "control");
    CASE(o.severity = 4, "severity", "known");
    CASE(o.reported_on = "", "reported_on", "required");
    CASE(o.reported_on = "2022-02-30", "reported_on", "real date");
    CASE(o.reported_on = "1944-12-31", "reported_on", "1945");
    CASE(o.reported_on = "2026-11-29", "reported_on", "future");
    CASE(o.status = 0, "status", "required");
    CASE(o.status = 4, "status", "known");
    CASE(o.resolution = "Sudah", "resolution", "until");
    CASE(o.resolved_on = "2022-04-01", "resolved_on", "until");
    CASE((RESOLVED, o.resolution = "Pemasok baru", o.resolved_on = "2022-04-01"), NULL, NULL);
    CASE((RESOLVED, o.resolved_on = "2022-04-01"), "resolution", "required");
    CASE((RESOLVED, o.resolution = " \n", o.resolved_on = "2022-04-01"), "resolution", "required");
    CASE((RESOLVED, o.resolution = "Pemasok baru"), "resolved_on", "required");
    CASE((RESOLVED, o.resolution = "x", o.resolved_on = "2022-02-28"), "resolved_on", "before");
    CASE((RESOLVED, o.resolution = "x", o.resolved_on = "2026-11-29"), "resolved_on", "future");
    CASE(o.assistance_id = "nope", "assistance_id", "UUID");
    CASE(o.assistance_id = ID2, NULL, NULL);
#undef RESOLVED
#undef CASE
}

/* ---------------------------------------------------------------- assistance */

static void assistance_rules(void **state)
{
    (void)state;
    seen_t s;
    validate_ctx_t vc;
    Sentra__V1__Assistance a;
    char *ids[3];
    char *many[VALIDATE_MAX_RECIPIENTS + 1];

    for (int i = 0; i <= VALIDATE_MAX_RECIPIENTS; i++)
        many[i] = ID;

#define CASE(change, field, want)                                           \
    do {                                                                    \
        a = (Sentra__V1__Assistance)SENTRA__V1__ASSISTANCE__INIT;           \
        a.sentra_id = ID;                                                   \
        a.kind = SENTRA__V1__ASSISTANCE_KIND__ASSISTANCE_KIND_MACHINES;     \
        a.provider = SENTRA__V1__PROVIDER__PROVIDER_KEMENPERIN;             \
        a.provider_name = "Ditjen IKMA";                                    \
        a.programme = "Restrukturisasi mesin dan peralatan IKM";           \
        a.year = 2022;                                                      \
        a.value = 150000000;                                                \
        ids[0] = ID;                                                        \
        ids[1] = ID2;                                                       \
        a.recipient_member_ids = ids;                                       \
        a.n_recipient_member_ids = 2;                                       \
        change;                                                             \
        vc = ctx(&s);                                                       \
        validate_assistance(&vc, &a, REC_ALL, VR_SENTRA);                   \
        if (field)                                                          \
            one(&s, field, want);                                           \
        else                                                                \
            none(&s);                                                       \
    } while (0)

    CASE((void)0, NULL, NULL);
    CASE(a.n_recipient_member_ids = 0, NULL, NULL);            /* the sentra as a whole */
    CASE(a.kind = 0, "kind", "required");
    CASE(a.kind = 8, "kind", "known");
    CASE(a.certification = SENTRA__V1__CERTIFICATION__CERTIFICATION_HALAL, "certification",
         "unless");
    CASE(a.kind = SENTRA__V1__ASSISTANCE_KIND__ASSISTANCE_KIND_CERTIFICATION, "certification",
         "required");
    CASE((a.kind = SENTRA__V1__ASSISTANCE_KIND__ASSISTANCE_KIND_CERTIFICATION,
          a.certification = SENTRA__V1__CERTIFICATION__CERTIFICATION_SNI), NULL, NULL);
    CASE(a.certification = 9, "certification", "known");
    CASE(a.provider = 0, "provider", "required");
    CASE(a.provider = 6, "provider", "known");
    CASE(a.provider_name = "a\nb", "provider_name", "control");
    CASE(a.programme = "ab", "programme", "at least 3");
    CASE(a.year = 0, "year", "required");
    CASE(a.year = 1944, "year", "1945");
    CASE(a.year = 2027, "year", "future");
    CASE(a.value = -1, "value", "negative");
    CASE(a.value = VALIDATE_MONEY_MAX + 1, "value", "larger");
    CASE(ids[1] = "x", "recipient_member_ids[1]", "UUID");
    CASE(ids[1] = ID, "recipient_member_ids[1]", "repeats");
    CASE(ids[1] = "0B7F3C9E-5D2A-4E8F-9A1B-2C3D4E5F6A7B", "recipient_member_ids[1]", "repeats");
    /* a list over its limit is one violation, whatever it holds */
    CASE((a.recipient_member_ids = many, a.n_recipient_member_ids = VALIDATE_MAX_RECIPIENTS + 1),
         "recipient_member_ids", "more than 500");
#undef CASE
}

/* ---------------------------------------------------------------- masks, filters */

static void masks(void **state)
{
    (void)state;
    seen_t s;
    validate_ctx_t vc = ctx(&s);
    const char *good[] = {"name", "left_year"};
    uint64_t bits = validate_record_mask(&vc, &sentra__v1__member__descriptor, good, 2);
    none(&s);
    assert_true(bits == (REC_FIELD(3) | REC_FIELD(15)));
    assert_true(validate_record_mask(&vc, &sentra__v1__member__descriptor, NULL, 0) == REC_ALL);
    const char *star[] = {"*"};
    assert_true(validate_record_mask(&vc, &sentra__v1__member__descriptor, star, 1) == REC_ALL);

    const char *out[] = {"name", "size_class"};
    vc = ctx(&s);
    assert_true(validate_record_mask(&vc, &sentra__v1__member__descriptor, out, 2) == 0);
    one(&s, "update_mask[1]", "output only");
    const char *fixed[] = {"sentra_id"};
    vc = ctx(&s);
    validate_record_mask(&vc, &sentra__v1__obstacle__descriptor, fixed, 1);
    one(&s, "update_mask[0]", "fixed");
    const char *unknown[] = {"status"};
    vc = ctx(&s);
    validate_record_mask(&vc, &sentra__v1__member__descriptor, unknown, 1);
    one(&s, "update_mask[0]", "\"status\" is not a field of Member");
    const char *hidden[] = {"st\x1b[2Jatus"};
    vc = ctx(&s);
    validate_record_mask(&vc, &sentra__v1__member__descriptor, hidden, 1);
    one(&s, "update_mask[0]", "is not a field of Member");
    assert_null(strchr(s.reason[0], '\x1b'));   /* never echoed */
    const char *lots[40];
    for (int i = 0; i < 40; i++)
        lots[i] = "name";
    vc = ctx(&s);
    validate_record_mask(&vc, &sentra__v1__member__descriptor, lots, 40);
    one(&s, "update_mask", "more than 32");
    assert_true(validate_record_output_only("deleted"));
    assert_false(validate_record_output_only("name"));
}

static void filters(void **state)
{
    (void)state;
    seen_t s;
    validate_ctx_t vc = ctx(&s);
    Sentra__V1__RecordFilter f = SENTRA__V1__RECORD_FILTER__INIT;
    Sentra__V1__SizeClass sizes[4] = {1, 2, 3, 3};
    Sentra__V1__ObstacleCategory cats[1] = {11};

    f.regency_code = "18.71";
    f.sentra_id = ID;
    f.size_class = sizes;
    f.n_size_class = 3;
    validate_record_filter(&vc, &f, SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER, "filter.");
    none(&s);
    vc = ctx(&s);
    validate_record_filter(&vc, &f, SENTRA__V1__RECORD_KIND__RECORD_KIND_OBSTACLE, "filter.");
    one(&s, "filter.size_class", "filters members, not obstacles");
    f.n_size_class = 4;
    vc = ctx(&s);
    validate_record_filter(&vc, &f, SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER, "filter.");
    one(&s, "filter.size_class", "more than 3");
    f.n_size_class = 0;
    f.category = cats;
    f.n_category = 1;
    vc = ctx(&s);
    validate_record_filter(&vc, &f, SENTRA__V1__RECORD_KIND__RECORD_KIND_OBSTACLE, "filter.");
    one(&s, "filter.category[0]", "known");
    f.n_category = 0;
    f.regency_code = "18";
    vc = ctx(&s);
    validate_record_filter(&vc, &f, SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER, "filter.");
    one(&s, "filter.regency_code", "NN.NN");
    f.regency_code = "";
    f.sentra_id = "x";
    vc = ctx(&s);
    validate_record_filter(&vc, &f, SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER, "filter.");
    one(&s, "filter.sentra_id", "UUID");
    f.sentra_id = "";
    f.year = 2022;
    vc = ctx(&s);
    validate_record_filter(&vc, &f, SENTRA__V1__RECORD_KIND__RECORD_KIND_INSTITUTION, "filter.");
    one(&s, "filter.year", "filters assistance, not institutions");
}

/* The list of violations is capped as validate.h promises: the rest only
 * counted, never formatted. */
static void capped(void **state)
{
    (void)state;
    seen_t s;
    validate_ctx_t vc = ctx(&s);
    Sentra__V1__Assistance a = SENTRA__V1__ASSISTANCE__INIT;
    char *bad[VALIDATE_MAX_RECIPIENTS];
    for (int i = 0; i < VALIDATE_MAX_RECIPIENTS; i++)
        bad[i] = "x";
    a.recipient_member_ids = bad;
    a.n_recipient_member_ids = VALIDATE_MAX_RECIPIENTS;
    vc.max = 5;
    int n = validate_assistance(&vc, &a, REC_ALL, VR_SENTRA);
    assert_true(n > VALIDATE_MAX_RECIPIENTS);
    assert_int_equal(s.n, n);            /* every one reported: 5 listed, the rest as NULL */
    assert_string_equal(s.field[0], "sentra_id");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(member_rules),
        cmocka_unit_test(member_partial),
        cmocka_unit_test(institution_rules),
        cmocka_unit_test(obstacle_rules),
        cmocka_unit_test(assistance_rules),
        cmocka_unit_test(masks),
        cmocka_unit_test(filters),
        cmocka_unit_test(capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
