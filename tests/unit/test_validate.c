/*
 * test_validate.c: every rule of server/services/validate.c. Each failing input
 * breaks one rule of an otherwise valid record and must yield exactly one
 * violation, on exactly the expected field path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "validate.h"

#define TODAY 20261128   /* a fixed "today" so the tests do not age */

/* ---------------------------------------------------------------- fixture */

typedef struct seen {
    char field[8][96];
    char reason[8][256];
    int n;
} seen_t;

static void collect(void *arg, const char *field, const char *reason)
{
    seen_t *s = arg;
    if (s->n < 8) {
        snprintf(s->field[s->n], sizeof s->field[0], "%s", field);
        snprintf(s->reason[s->n], sizeof s->reason[0], "%s", reason);
    }
    s->n++;
}

/* A valid designated sentra, rebuilt for each test. */
typedef struct rec {
    Sentra__V1__Sentra s;
    Sentra__V1__GeoPoint loc;
    Sentra__V1__Decree dec;
    Sentra__V1__Figures f[3];
    Sentra__V1__Figures *fp[3];
    char *dest[3][4];
} rec_t;

static void rec_init(rec_t *r)
{
    memset(r, 0, sizeof *r);
    sentra__v1__sentra__init(&r->s);
    sentra__v1__geo_point__init(&r->loc);
    sentra__v1__decree__init(&r->dec);
    r->s.id = "";
    r->s.regency_code = "18.71";
    r->s.district_code = "18.71.01";
    r->s.village_code = "18.71.01.1001";
    r->s.address = "Jl. Pagar Alam No. 1\nKedaton";
    r->loc.latitude = -5.4;
    r->loc.longitude = 105.26;
    r->s.location = &r->loc;
    r->s.name = "Sentra IKM Tapis Kedaton";
    r->s.commodity = "kain tapis";
    r->s.main_product = "tapis";
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
        r->f[i].year = 2021 + i;
        r->f[i].business_units = 40 + i * 7;
        r->f[i].workers_male = 10;
        r->f[i].workers_female = 80;
        r->f[i].investment = 1500000000;
        r->f[i].production_value = 3000000000;
        r->f[i].material_value = 900000000;
        r->f[i].capacity = 5000;
        r->f[i].capacity_unit = "pcs";
        r->f[i].export_share_bp = 1200;
        r->dest[i][0] = "MY";
        r->dest[i][1] = "SG";
        r->f[i].export_destinations = r->dest[i];
        r->f[i].n_export_destinations = 2;
        r->fp[i] = &r->f[i];
    }
    r->s.figures = r->fp;
    r->s.n_figures = 2;
}

static seen_t run(const rec_t *r, unsigned fields, int is_update)
{
    seen_t seen = {.n = 0};
    validate_ctx_t vc = {.today = TODAY, .report = collect, .arg = &seen};
    int n = validate_sentra(&vc, &r->s, fields, is_update);
    assert_int_equal(n, seen.n);
    return seen;
}

/* Exactly one violation, on field. */
static void expect_one(const rec_t *r, const char *field)
{
    seen_t seen = run(r, VF_ALL, 0);
    if (seen.n != 1) {
        for (int i = 0; i < seen.n && i < 8; i++)
            print_message("  got %s: %s\n", seen.field[i], seen.reason[i]);
        print_message("expected exactly one violation on %s\n", field);
    }
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.field[0], field);
}

/* ---------------------------------------------------------------- tests */

static void valid_record(void **state)
{
    rec_t r;
    rec_init(&r);
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
    r.s.id = "0b7f3c9e-5d2a-4e8f-9a1b-2c3d4e5f6a7b";
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
    assert_int_equal(run(&r, VF_ALL, 1).n, 0);
    /* a formed sentra needs no decree nor figures, and optional codes may be empty */
    r.s.status = SENTRA__V1__STATUS__STATUS_FORMED;
    r.s.decree = NULL;
    r.s.n_figures = 0;
    r.s.district_code = "";
    r.s.village_code = "";
    r.s.location = NULL;
    r.s.formed_on = "";
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
    /* today itself is not in the future; 29 Feb of a leap year is real */
    rec_init(&r);
    r.dec.date = "2026-11-28";
    r.s.formed_on = "2024-02-29";
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
}

static void ids(void **state)
{
    rec_t r;
    rec_init(&r);
    r.s.id = "not-a-uuid";
    expect_one(&r, "id");
    r.s.id = "0b7f3c9e-5d2a-4e8f-9a1b-2c3d4e5f6a7";   /* one short */
    expect_one(&r, "id");
    r.s.id = "0b7f3c9e-5d2a-4e8f-9a1b-2c3d4e5f6a7g";
    expect_one(&r, "id");
    /* an update needs the id */
    rec_init(&r);
    seen_t seen = run(&r, VF_NAME, 1);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.field[0], "id");
    assert_string_equal(seen.reason[0], "is required");
}

static void names(void **state)
{
    rec_t r;
    char long_name[260];

    rec_init(&r);
    r.s.name = "ab";
    expect_one(&r, "name");
    r.s.name = "";
    expect_one(&r, "name");
    r.s.name = "  ab   ";                 /* trimmed: 2 characters */
    expect_one(&r, "name");
    r.s.name = "\xC3\x28 bad utf8";        /* invalid continuation */
    expect_one(&r, "name");
    r.s.name = "overlong \xC0\xAF";
    expect_one(&r, "name");
    r.s.name = "surrogate \xED\xA0\x80";
    expect_one(&r, "name");
    r.s.name = "truncated \xE2\x82";
    expect_one(&r, "name");
    r.s.name = "tab\there";
    expect_one(&r, "name");
    memset(long_name, 'a', 201);
    long_name[201] = '\0';
    r.s.name = long_name;
    expect_one(&r, "name");
    long_name[200] = '\0';                /* exactly 200: fine */
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
    /* 200 characters of 2 bytes each are 200 characters, not 400 */
    char wide[420];
    for (int i = 0; i < 200; i++) {
        wide[2 * i] = (char)0xC3;
        wide[2 * i + 1] = (char)0xA9;      /* é */
    }
    wide[400] = '\0';
    r.s.name = wide;
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
    r.s.name = "Kopi \xE2\x98\x95 Lampung";   /* a 3-byte character is fine */
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
}

static void other_texts(void **state)
{
    rec_t r;
    char buf[600];

    rec_init(&r);
    memset(buf, 'x', 501);
    buf[501] = '\0';
    r.s.address = buf;
    expect_one(&r, "address");
    rec_init(&r);
    r.s.commodity = "\xFF";
    expect_one(&r, "commodity");
    rec_init(&r);
    buf[201] = '\0';
    r.s.main_product = buf;
    expect_one(&r, "main_product");
    rec_init(&r);
    r.s.contact_name = "line\nbreak";
    expect_one(&r, "contact_name");
    rec_init(&r);
    r.s.contact_phone = "0721-abc";
    expect_one(&r, "contact_phone");
    r.s.contact_phone = "012345678901234567890123456789012";   /* 33 */
    expect_one(&r, "contact_phone");
    rec_init(&r);
    r.dec.official = "\x01";
    expect_one(&r, "decree.official");
    rec_init(&r);
    buf[101] = '\0';
    r.dec.number = buf;
    expect_one(&r, "decree.number");
    rec_init(&r);
    r.f[1].capacity_unit = "a unit name longer than thirty-two";
    expect_one(&r, "figures[1].capacity_unit");
}

static void region_codes(void **state)
{
    rec_t r;
    rec_init(&r);
    r.s.regency_code = "";
    r.s.district_code = "";
    r.s.village_code = "";
    expect_one(&r, "regency_code");
    r.s.regency_code = "18";              /* a province, not a regency */
    expect_one(&r, "regency_code");
    r.s.regency_code = "1871";            /* the BPS shape */
    expect_one(&r, "regency_code");
    r.s.regency_code = "18.7a";
    expect_one(&r, "regency_code");

    rec_init(&r);
    r.s.district_code = "18.72.01";        /* another regency */
    r.s.village_code = "";
    expect_one(&r, "district_code");
    r.s.district_code = "18.71.1";
    expect_one(&r, "district_code");

    rec_init(&r);
    r.s.village_code = "18.71.02.1001";    /* another district */
    expect_one(&r, "village_code");
    r.s.village_code = "18.71.01.101";
    expect_one(&r, "village_code");
    r.s.district_code = "";
    r.s.village_code = "18.72.01.1001";    /* another regency, no district given */
    expect_one(&r, "village_code");
    r.s.village_code = "18.71.05.1001";    /* inside the regency: fine */
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
}

static void coordinates(void **state)
{
    rec_t r;
    rec_init(&r);
    r.loc.latitude = -11.6;
    expect_one(&r, "location.latitude");
    r.loc.latitude = 6.6;
    expect_one(&r, "location.latitude");
    r.loc.latitude = NAN;
    expect_one(&r, "location.latitude");
    rec_init(&r);
    r.loc.longitude = 94.4;
    expect_one(&r, "location.longitude");
    r.loc.longitude = 141.6;
    expect_one(&r, "location.longitude");
    r.loc.longitude = INFINITY;
    expect_one(&r, "location.longitude");
    /* the corners are inside */
    r.loc.latitude = -11.5;
    r.loc.longitude = 141.5;
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
    /* (0, 0) is in the Atlantic: caught by longitude */
    r.loc.latitude = 0;
    r.loc.longitude = 0;
    expect_one(&r, "location.longitude");
}

static void kbli(void **state)
{
    rec_t r;
    rec_init(&r);
    r.s.kbli_code = "";
    expect_one(&r, "kbli_code");
    r.s.kbli_code = "09900";              /* mining support, not manufacturing */
    expect_one(&r, "kbli_code");
    r.s.kbli_code = "34000";
    expect_one(&r, "kbli_code");
    r.s.kbli_code = "1391";
    expect_one(&r, "kbli_code");
    r.s.kbli_code = "1391a";
    expect_one(&r, "kbli_code");
    r.s.kbli_code = "C13912";
    expect_one(&r, "kbli_code");
    r.s.kbli_code = "10000";
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
    r.s.kbli_code = "33999";
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
    r.s.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_UNSPECIFIED;
    expect_one(&r, "kbli_version");
    r.s.kbli_version = 7;
    expect_one(&r, "kbli_version");
}

static void enums(void **state)
{
    rec_t r;
    rec_init(&r);
    r.s.sector_group = 0;
    expect_one(&r, "sector_group");
    r.s.sector_group = 7;
    expect_one(&r, "sector_group");
    rec_init(&r);
    r.s.status = 0;
    expect_one(&r, "status");
    r.s.status = 6;
    expect_one(&r, "status");
    r.s.status = -1;
    expect_one(&r, "status");
}

static void dates(void **state)
{
    rec_t r;
    rec_init(&r);
    r.s.formed_on = "2023-02-29";          /* not a leap year */
    expect_one(&r, "formed_on");
    r.s.formed_on = "2019-13-01";
    expect_one(&r, "formed_on");
    r.s.formed_on = "2019-04-31";
    expect_one(&r, "formed_on");
    r.s.formed_on = "19-03-01";
    expect_one(&r, "formed_on");
    r.s.formed_on = "2019/03/01";
    expect_one(&r, "formed_on");
    r.s.formed_on = "1900-02-29";          /* 1900 is no leap year */
    expect_one(&r, "formed_on");
    r.s.formed_on = "1944-12-31";          /* before 1945 */
    expect_one(&r, "formed_on");
    r.s.formed_on = "2026-11-29";          /* tomorrow; decree then also before it, but
                                              the formation date is already refused */
    expect_one(&r, "formed_on");

    rec_init(&r);
    r.dec.date = "2026-11-29";             /* in the future */
    expect_one(&r, "decree.date");
    r.dec.date = "2022-02-30";
    expect_one(&r, "decree.date");
    r.dec.date = "2019-02-28";             /* before formation (2019-03-01) */
    expect_one(&r, "decree.date");
    r.dec.date = "2019-03-01";             /* the same day is fine */
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
}

static void designation(void **state)
{
    rec_t r;
    rec_init(&r);
    r.dec.number = "";
    expect_one(&r, "decree.number");
    rec_init(&r);
    r.dec.date = "";
    expect_one(&r, "decree.date");
    rec_init(&r);
    r.s.decree = NULL;
    seen_t seen = run(&r, VF_ALL, 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.field[0], "decree.number");
    assert_string_equal(seen.field[1], "decree.date");

    /* at least 5 business units in the latest figures */
    rec_init(&r);
    r.f[1].business_units = 4;             /* 2022 is the latest */
    expect_one(&r, "figures[1].business_units");
    rec_init(&r);
    r.f[0].business_units = 4;             /* 2021 is not the latest: fine */
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
    /* the order of the list does not matter, the year does */
    rec_init(&r);
    r.f[0].year = 2023;
    r.f[0].business_units = 3;
    expect_one(&r, "figures[0].business_units");
    rec_init(&r);
    r.s.n_figures = 0;
    expect_one(&r, "figures");
    /* revitalised sentra follow the same rule */
    rec_init(&r);
    r.s.status = SENTRA__V1__STATUS__STATUS_REVITALISED;
    r.dec.number = "";
    expect_one(&r, "decree.number");
    /* a formed one does not */
    rec_init(&r);
    r.s.status = SENTRA__V1__STATUS__STATUS_FORMED;
    r.f[1].business_units = 1;
    r.dec.number = "";
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
}

static void figures(void **state)
{
    rec_t r;
    rec_init(&r);
    r.f[1].year = 2021;                    /* duplicate */
    r.f[0].business_units = 5;
    expect_one(&r, "figures[1].year");
    rec_init(&r);
    r.f[0].year = 1944;
    expect_one(&r, "figures[0].year");
    rec_init(&r);
    r.f[1].year = 2027;                    /* after this year */
    r.f[0].business_units = 5;
    expect_one(&r, "figures[1].year");

#define NEG(member, path) \
    rec_init(&r); r.f[0].member = -1; expect_one(&r, path)
    NEG(business_units, "figures[0].business_units");
    NEG(workers_male, "figures[0].workers_male");
    NEG(workers_female, "figures[0].workers_female");
    NEG(investment, "figures[0].investment");
    NEG(production_value, "figures[0].production_value");
    NEG(material_value, "figures[0].material_value");
    NEG(capacity, "figures[0].capacity");
#undef NEG
    rec_init(&r);
    r.f[0].workers_female = (int64_t)INT32_MAX + 1;   /* beyond the column */
    expect_one(&r, "figures[0].workers_female");
    rec_init(&r);
    r.f[1].export_share_bp = 10001;
    expect_one(&r, "figures[1].export_share_bp");
    r.f[1].export_share_bp = -1;
    expect_one(&r, "figures[1].export_share_bp");
    rec_init(&r);
    r.dest[1][1] = "sg";
    expect_one(&r, "figures[1].export_destinations[1]");
    r.dest[1][1] = "SGP";
    expect_one(&r, "figures[1].export_destinations[1]");
}

static void masks(void **state)
{
    seen_t seen = {.n = 0};
    validate_ctx_t vc = {.today = TODAY, .report = collect, .arg = &seen};

    assert_int_equal(validate_mask(&vc, NULL, 0), VF_ALL);
    const char *a[] = {"name", "decree", "figures", "location.latitude"};
    assert_int_equal(validate_mask(&vc, a, 4),
                     VF_NAME | VF_DECREE_NUMBER | VF_DECREE_DATE |
                         VF_DECREE_OFFICIAL | VF_FIGURES | VF_LOCATION);
    const char *b[] = {"*"};
    assert_int_equal(validate_mask(&vc, b, 1), VF_ALL);
    assert_int_equal(seen.n, 0);
    const char *c[] = {"name", "version", "nmae"};
    assert_int_equal(validate_mask(&vc, c, 3), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.field[0], "update_mask[1]");
    assert_string_equal(seen.field[1], "update_mask[2]");
    for (int i = 0; i < VF_COUNT; i++) {
        const char *p = validate_field_name(i);
        seen.n = 0;
        assert_int_equal(validate_mask(&vc, &p, 1), 1u << i);
        assert_int_equal(seen.n, 0);
    }
}

/* A partial update checks only the masked fields, and cross-field rules only
 * when all their fields are masked (the SQL function does the rest). */
static void partial(void **state)
{
    rec_t r;
    rec_init(&r);
    r.s.id = "0b7f3c9e-5d2a-4e8f-9a1b-2c3d4e5f6a7b";
    r.s.kbli_code = "99999";               /* not masked: ignored */
    r.dec.date = "2019-01-01";             /* before formation, but formed_on not masked */
    seen_t seen = run(&r, VF_NAME | VF_DECREE_DATE, 1);
    assert_int_equal(seen.n, 0);
    seen = run(&r, VF_NAME | VF_DECREE_DATE | VF_FORMED_ON, 1);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.field[0], "decree.date");
    rec_init(&r);
    r.s.id = "0b7f3c9e-5d2a-4e8f-9a1b-2c3d4e5f6a7b";
    r.s.name = "x";
    seen = run(&r, VF_NAME, 1);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.field[0], "name");
    /* a district code alone cannot be checked against the stored regency here */
    rec_init(&r);
    r.s.id = "0b7f3c9e-5d2a-4e8f-9a1b-2c3d4e5f6a7b";
    r.s.district_code = "31.71.01";
    assert_int_equal(run(&r, VF_DISTRICT_CODE, 1).n, 0);
    r.s.district_code = "31.71";
    assert_int_equal(run(&r, VF_DISTRICT_CODE, 1).n, 1);
}

static void filters(void **state)
{
    seen_t seen = {.n = 0};
    validate_ctx_t vc = {.today = TODAY, .report = collect, .arg = &seen};
    Sentra__V1__SentraFilter f;
    Sentra__V1__Status st[] = {1, 9};

    sentra__v1__sentra_filter__init(&f);
    assert_int_equal(validate_filter(&vc, &f, "filter."), 0);
    f.province_code = "18.71";
    f.regency_code = "18";
    f.status = st;
    f.n_status = 2;
    f.kbli_prefix = "10%";
    f.text = "\xFF";
    assert_int_equal(validate_filter(&vc, &f, "filter."), 5);
    assert_string_equal(seen.field[0], "filter.province_code");
    assert_string_equal(seen.field[1], "filter.regency_code");
    assert_string_equal(seen.field[2], "filter.status[1]");
    assert_string_equal(seen.field[3], "filter.kbli_prefix");
    assert_string_equal(seen.field[4], "filter.text");
}

/* Characters that make text display as other than what it holds (issue 13,
 * item 11): refused in every text field, one violation each. */
static void misleading_characters(void **state)
{
    static const char *const refused[] = {
        "abc\xC2\x85" "def",           /* U+0085 NEL, a C1 control */
        "abc\xC2\x9F",                 /* U+009F */
        "abc\xC2\x80",                 /* U+0080 */
        "abc\x7F",                     /* DEL */
        "abc\xE2\x80\xAE" "cba",       /* U+202E right-to-left override */
        "abc\xE2\x80\xAA",             /* U+202A LRE */
        "abc\xE2\x81\xA6",             /* U+2066 LRI */
        "abc\xE2\x81\xA9",             /* U+2069 PDI */
        "abc\xE2\x80\xA8" "def",       /* U+2028 line separator */
        "abc\xE2\x80\xA9",             /* U+2029 paragraph separator */
        "ab\xE2\x80\x8B" "c",          /* U+200B zero width space */
        "ab\xE2\x81\xA0" "c",          /* U+2060 word joiner */
        "ab\xEF\xBB\xBF" "c",          /* U+FEFF */
        "ab\xEF\xBF\xB9" "c",          /* U+FFF9 interlinear annotation */
        "ab\xF3\xA0\x81\x81" "c",      /* U+E0041 tag latin capital A */
    };
    static const char *const allowed[] = {
        "Sentra Kopi \xC3\xA9 Lampung",      /* é */
        "abc\xC2\xA0" "def",                 /* U+00A0 no-break space */
        "Jawi \xD8\xA8\xE2\x80\x8F" "abc",   /* U+200F right-to-left mark */
        "abc\xD8\x9C" "def",                 /* U+061C Arabic letter mark */
        "abc\xE2\x80\x8E",                   /* U+200E left-to-right mark */
        "emoji \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x8D\xB3",   /* ZWJ sequence */
        "abc\xE2\x80\x8C" "def",             /* U+200C zero width non-joiner */
    };
    rec_t r;

    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        rec_init(&r);
        r.s.name = (char *)refused[i];
        expect_one(&r, "name");
        rec_init(&r);
        r.s.address = (char *)refused[i];
        expect_one(&r, "address");
        rec_init(&r);
        r.f[0].capacity_unit = (char *)refused[i];
        expect_one(&r, "figures[0].capacity_unit");
        rec_init(&r);
        r.dec.official = (char *)refused[i];
        expect_one(&r, "decree.official");
    }
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
        rec_init(&r);
        r.s.name = (char *)allowed[i];
        r.s.commodity = (char *)allowed[i];
        r.s.address = (char *)allowed[i];
        assert_int_equal(run(&r, VF_ALL, 0).n, 0);
    }
    /* The address may hold line breaks and tabs, nothing else of C0. */
    rec_init(&r);
    r.s.address = "Jl. Pagar Alam 1\r\n\tKedaton";
    assert_int_equal(run(&r, VF_ALL, 0).n, 0);
    r.s.address = "Jl. Pagar Alam 1\x0b";
    expect_one(&r, "address");
    /* The reason names the code point, so the client can find it. */
    rec_init(&r);
    r.s.name = "abc\xE2\x80\xAE";
    seen_t seen = run(&r, VF_ALL, 0);
    assert_non_null(strstr(seen.reason[0], "U+202E"));
    /* The rule as a function of the code point. */
    assert_false(validate_text_char(0x85, 1));
    assert_false(validate_text_char('\n', 0));
    assert_true(validate_text_char('\n', 1));
    assert_true(validate_text_char(0xA0, 0));
    assert_true(validate_text_char(0x10FFFD, 0));
    assert_false(validate_text_char(0xE007F, 0));
    assert_true(validate_text_char(0xE0080, 0));
}

typedef struct tally {
    int listed;         /* violations reported with a field */
    int unlisted;       /* (NULL, NULL): past the context's max */
} tally_t;

static void tally(void *arg, const char *field, const char *reason)
{
    tally_t *t = arg;
    if (field == NULL && reason == NULL)
        t->unlisted++;
    else
        t->listed++;
}

/* Repeated fields are counted before they are looked at, and a context with
 * max lists only max violations (issue 13, item 7). */
static void repeated_limits(void **state)
{
    seen_t seen = {.n = 0};
    validate_ctx_t vc = {.today = TODAY, .report = collect, .arg = &seen};
    Sentra__V1__SentraFilter f;
    size_t big = 4u << 20;
    Sentra__V1__Status *st = malloc(big * sizeof *st);
    Sentra__V1__SectorGroup *sg = malloc(big * sizeof *sg);

    assert_non_null(st);
    assert_non_null(sg);
    for (size_t i = 0; i < big; i++) {
        st[i] = 9;
        sg[i] = 9;
    }
    sentra__v1__sentra_filter__init(&f);
    f.status = st;
    f.n_status = big;
    f.sector_group = sg;
    f.n_sector_group = big;
    assert_int_equal(validate_filter(&vc, &f, "filter."), 2);
    assert_string_equal(seen.field[0], "filter.status");
    assert_string_equal(seen.field[1], "filter.sector_group");
    /* at the limit, each entry is looked at */
    seen.n = 0;
    f.n_status = 5;
    f.n_sector_group = 6;
    assert_int_equal(validate_filter(&vc, &f, "filter."), 11);
    free(st);
    free(sg);

    /* a mask of a million paths: one violation */
    size_t np = 1000000;
    const char **paths = malloc(np * sizeof *paths);
    assert_non_null(paths);
    for (size_t i = 0; i < np; i++)
        paths[i] = "nmae";
    seen.n = 0;
    assert_int_equal(validate_mask(&vc, paths, np), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.field[0], "update_mask");
    seen.n = 0;
    assert_int_equal(validate_mask(&vc, paths, VALIDATE_MAX_MASK_PATHS), 0);
    assert_int_equal(seen.n, VALIDATE_MAX_MASK_PATHS);
    free(paths);

    /* 80 figures of 250 bad destinations: 20,000 counted, 3 listed, the
     * rest reported as (NULL, NULL) */
    rec_t r;
    Sentra__V1__Figures fig[80], *fp[80];
    char *dest[250];
    rec_init(&r);
    for (int i = 0; i < 250; i++)
        dest[i] = "xx";
    for (int i = 0; i < 80; i++) {
        fig[i] = r.f[0];
        fig[i].year = 1946 + i;
        fig[i].export_destinations = dest;
        fig[i].n_export_destinations = 250;
        fp[i] = &fig[i];
    }
    r.s.figures = fp;
    r.s.n_figures = 80;
    tally_t t = {0, 0};
    validate_ctx_t capped = {.today = TODAY, .max = 3, .report = tally, .arg = &t};
    assert_int_equal(validate_sentra(&capped, &r.s, VF_ALL, 0), 20000);
    assert_int_equal(t.listed, 3);
    assert_int_equal(t.unlisted, 20000 - 3);
}

/* Values PostgreSQL's arithmetic cannot hold are refused in C (issue 13,
 * item 13: "interval out of range"), and mask paths are quoted back only
 * when they are short printable ASCII (item 14). */
static void bounds_and_echoes(void **state)
{
    seen_t seen = {.n = 0};
    validate_ctx_t vc = {.today = TODAY, .report = collect, .arg = &seen};
    Sentra__V1__SentraFilter f;

    sentra__v1__sentra_filter__init(&f);
    f.updated_since_ms = INT64_MAX;
    assert_int_equal(validate_filter(&vc, &f, "filter."), 1);
    assert_string_equal(seen.field[0], "filter.updated_since_ms");
    f.updated_since_ms = VALIDATE_MAX_TIME_MS;
    assert_int_equal(validate_filter(&vc, &f, "filter."), 0);

    char wide[81];
    for (int i = 0; i < 40; i++) {
        wide[2 * i] = (char)0xC3;
        wide[2 * i + 1] = (char)0xA9;
    }
    wide[80] = '\0';
    const char *m[] = {wide, "bogus", "\x1b[31mred", "\xFF"};
    seen.n = 0;
    assert_int_equal(validate_mask(&vc, m, 4), 0);
    assert_int_equal(seen.n, 4);
    assert_string_equal(seen.reason[0], "is not a field of Sentra");
    assert_string_equal(seen.reason[1], "\"bogus\" is not a field of Sentra");
    assert_string_equal(seen.reason[2], "is not a field of Sentra");
    assert_string_equal(seen.reason[3], "is not a field of Sentra");
}

static void pieces(void **state)
{
    int ymd;
    size_t n;
    assert_true(validate_date("2000-02-29", &ymd));
    assert_int_equal(ymd, 20000229);
    assert_false(validate_date("2100-02-29", &ymd));
    assert_false(validate_date("0000-01-01", &ymd));
    assert_false(validate_date("2020-01-00", &ymd));
    assert_false(validate_date("2020-01-01x", &ymd));
    assert_false(validate_date(NULL, &ymd));
    assert_int_equal(validate_region_code("18"), 1);
    assert_int_equal(validate_region_code("18.71"), 2);
    assert_int_equal(validate_region_code("18.71.01"), 3);
    assert_int_equal(validate_region_code("18.71.01.1001"), 4);
    assert_int_equal(validate_region_code("18.71.01.100"), 0);
    assert_int_equal(validate_region_code(""), 0);
    assert_int_equal(validate_region_code(NULL), 0);
    assert_true(validate_utf8("\xF0\x9F\x98\x80", 4, &n));   /* U+1F600 */
    assert_int_equal(n, 1);
    assert_false(validate_utf8("\xF4\x90\x80\x80", 4, &n));  /* > U+10FFFF */
    assert_false(validate_utf8("\xF0\x8F\xBF\xBF", 4, &n));  /* overlong */
    assert_false(validate_utf8("\xE0\x9F\xBF", 3, &n));      /* overlong */
    assert_false(validate_utf8("\x80", 1, &n));
    assert_true(validate_uuid("0B7F3C9E-5D2A-4E8F-9A1B-2C3D4E5F6A7B"));
    assert_false(validate_uuid("0b7f3c9e5d2a4e8f9a1b2c3d4e5f6a7b0000"));
    assert_true(validate_today() > 20250000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_record),
        cmocka_unit_test(ids),
        cmocka_unit_test(names),
        cmocka_unit_test(other_texts),
        cmocka_unit_test(region_codes),
        cmocka_unit_test(coordinates),
        cmocka_unit_test(kbli),
        cmocka_unit_test(enums),
        cmocka_unit_test(dates),
        cmocka_unit_test(designation),
        cmocka_unit_test(figures),
        cmocka_unit_test(masks),
        cmocka_unit_test(partial),
        cmocka_unit_test(filters),
        cmocka_unit_test(misleading_characters),
        cmocka_unit_test(repeated_limits),
        cmocka_unit_test(bounds_and_echoes),
        cmocka_unit_test(pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
