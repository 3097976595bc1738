/*
 * test_sentra_row.c: server/services/sentra_row.c without a database. Results are
 * built client-side with libpq's PQmakeEmptyPGresult/PQsetvalue in the
 * shape of the view sentra_rows, and in the shape a pull reads (the record
 * printed into one text by the table sentra_pull,
 * migrations/0007_pull_rows.sql), then parsed; parameters are built from a
 * message and checked, the figures JSON included. The integration tests
 * compare pulled and got records with ListSentra.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "sentra_row.h"

/* A call used only for its memory arena (call_alloc); freed by call_unref. */
static call_t *arena_call(void)
{
    call_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->refs = 1;
    return c;
}

/* A result of ncols text columns, every value NULL until set. */
static PGresult *text_result(int nrows, int ncols)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc att[SENTRA_NCOLS];
    static char names[SENTRA_NCOLS][16];

    assert_true(ncols <= SENTRA_NCOLS);
    memset(att, 0, sizeof att);
    for (int i = 0; i < ncols; i++) {
        snprintf(names[i], sizeof names[i], "c%d", i);
        att[i].name = names[i];
        att[i].format = 0;
        att[i].typlen = -1;
        att[i].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(res, ncols, att), 1);
    for (int r = 0; r < nrows; r++)
        for (int i = 0; i < ncols; i++)
            assert_int_equal(PQsetvalue(res, r, i, NULL, -1), 1);
    return res;
}

/* A result with the columns of sentra_rows. */
static PGresult *rows_result(int nrows)
{
    return text_result(nrows, SENTRA_NCOLS);
}

static void set(PGresult *res, int row, int col, const char *v)
{
    assert_int_equal(PQsetvalue(res, row, col, (char *)v, (int)strlen(v)), 1);
}

static void set_sentra(PGresult *res, int row, const char *id, int with_loc)
{
    set(res, row, SENTRA_COL_ID, id);
    set(res, row, SENTRA_COL_REGENCY, "18.71");
    set(res, row, SENTRA_COL_ADDRESS, "Jl. Teuku Umar");
    if (with_loc) {
        set(res, row, SENTRA_COL_LAT, "-5.3971");
        set(res, row, SENTRA_COL_LON, "105.2668");
    }
    set(res, row, SENTRA_COL_NAME, "Sentra Tapis");
    set(res, row, SENTRA_COL_COMMODITY, "");
    set(res, row, SENTRA_COL_MAIN_PRODUCT, "");
    set(res, row, SENTRA_COL_KBLI_CODE, "13912");
    set(res, row, SENTRA_COL_KBLI_VERSION, "2025");
    set(res, row, SENTRA_COL_SECTOR_GROUP, "2");
    set(res, row, SENTRA_COL_STATUS, "2");
    set(res, row, SENTRA_COL_FORMED_ON, "2019-03-01");
    set(res, row, SENTRA_COL_DECREE_NUMBER, "SK 1");
    set(res, row, SENTRA_COL_DECREE_DATE, "2022-09-27");
    set(res, row, SENTRA_COL_CONTACT_NAME, "");
    set(res, row, SENTRA_COL_CONTACT_PHONE, "");
    set(res, row, SENTRA_COL_VERSION, "7");
    set(res, row, SENTRA_COL_CREATED_MS, "1700000000123");
    set(res, row, SENTRA_COL_UPDATED_MS, "1700000000456");
    set(res, row, SENTRA_COL_PROVINCE, "18");
    set(res, row, SENTRA_COL_DELETED, "f");
}

static void set_figures(PGresult *res, int row, const char *year, const char *dest)
{
    set(res, row, SENTRA_COL_FIG_YEAR, year);
    set(res, row, SENTRA_COL_BUSINESS_UNITS, "47");
    set(res, row, SENTRA_COL_WORKERS_MALE, "12");
    set(res, row, SENTRA_COL_WORKERS_FEMALE, "85");
    set(res, row, SENTRA_COL_INVESTMENT, "9000000000000");
    set(res, row, SENTRA_COL_PRODUCTION_VALUE, "3400000000");
    set(res, row, SENTRA_COL_MATERIAL_VALUE, "0");
    set(res, row, SENTRA_COL_CAPACITY, "5000");
    set(res, row, SENTRA_COL_CAPACITY_UNIT, "pcs");
    set(res, row, SENTRA_COL_EXPORT_SHARE_BP, "1200");
    set(res, row, SENTRA_COL_EXPORT_DESTINATIONS, dest);
}

static void parse_rows(void **state)
{
    call_t *c = arena_call();
    PGresult *res = rows_result(3);

    /* sentra A with two figures years, then sentra B with none */
    set_sentra(res, 0, "aaaaaaaa-0000-4000-8000-000000000001", 1);
    set_figures(res, 0, "2022", "");
    set_sentra(res, 1, "aaaaaaaa-0000-4000-8000-000000000001", 1);
    set_figures(res, 1, "2023", "MY,SG,JP");
    set_sentra(res, 2, "bbbbbbbb-0000-4000-8000-000000000002", 0);

    int row = 0;
    Sentra__V1__Sentra *a = sentra__from_rows(c, res, &row);
    assert_non_null(a);
    assert_int_equal(row, 2);
    assert_string_equal(a->id, "aaaaaaaa-0000-4000-8000-000000000001");
    assert_string_equal(a->district_code, "");          /* NULL -> "" */
    assert_non_null(a->location);
    assert_true(a->location->latitude == -5.3971);
    assert_true(a->location->longitude == 105.2668);
    assert_int_equal(a->kbli_version, SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2025);
    assert_int_equal(a->status, SENTRA__V1__STATUS__STATUS_DESIGNATED);
    assert_non_null(a->decree);
    assert_string_equal(a->decree->number, "SK 1");
    assert_string_equal(a->decree->official, "");
    assert_int_equal(a->version, 7);
    assert_int_equal(a->created_at_ms, 1700000000123LL);
    assert_false(a->deleted);
    assert_int_equal(a->n_figures, 2);
    assert_int_equal(a->figures[0]->year, 2022);
    assert_int_equal(a->figures[0]->n_export_destinations, 0);
    assert_int_equal(a->figures[1]->year, 2023);
    assert_int_equal(a->figures[1]->investment, 9000000000000LL);
    assert_int_equal(a->figures[1]->n_export_destinations, 3);
    assert_string_equal(a->figures[1]->export_destinations[2], "JP");

    Sentra__V1__Sentra *b = sentra__from_rows(c, res, &row);
    assert_non_null(b);
    assert_int_equal(row, 3);
    assert_null(b->location);
    assert_int_equal(b->n_figures, 0);
    assert_null(sentra__from_rows(c, res, &row));      /* past the end */

    /* the message packs (every pointer set where protobuf-c needs one) */
    size_t n = sentra__v1__sentra__get_packed_size(a);
    uint8_t *buf = malloc(n);
    sentra__v1__sentra__pack(a, buf);
    Sentra__V1__Sentra *back = sentra__v1__sentra__unpack(NULL, n, buf);
    assert_non_null(back);
    assert_int_equal(back->n_figures, 2);
    sentra__v1__sentra__free_unpacked(back, NULL);
    free(buf);

    PQclear(res);
    call_unref(c);
}

static void too_few_columns(void **state)
{
    call_t *c = arena_call();
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    int row = 0;
    assert_null(sentra__from_rows(c, res, &row));
    PQclear(res);
    call_unref(c);
}

static void json_strings(void **state)
{
    char buf[64];
    int n = sentra__json_string(buf, sizeof buf, 0, "a\"b\\c\n\x01\xC2\xB2");
    assert_true(n > 0);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\u000a\\u0001\xC2\xB2\"");
    /* does not fit: -1, never an overflow */
    assert_int_equal(sentra__json_string(buf, 4, 0, "abcdef"), -1);
}

static void params(void **state)
{
    call_t *c = arena_call();
    Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
    Sentra__V1__Decree d = SENTRA__V1__DECREE__INIT;
    Sentra__V1__Figures f = SENTRA__V1__FIGURES__INIT;
    Sentra__V1__Figures *fp[] = {&f};
    char *dest[] = {"MY", "SG"};
    const char *v[SENTRA_NPARAMS];

    s.regency_code = "18.71";
    s.district_code = "";
    s.name = "Sentra";
    s.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    s.status = SENTRA__V1__STATUS__STATUS_FORMED;
    d.number = "SK 9";
    d.date = "";
    s.decree = &d;
    f.year = 2024;
    f.business_units = 5;
    f.capacity_unit = "m\xC2\xB2 \"x\"";
    f.export_destinations = dest;
    f.n_export_destinations = 2;
    s.figures = fp;
    s.n_figures = 1;

    sentra__params(c, &s, v);
    assert_string_equal(v[SENTRA_PARAM_REGENCY], "18.71");
    assert_null(v[SENTRA_PARAM_DISTRICT]);              /* empty -> NULL */
    assert_null(v[SENTRA_PARAM_LAT]);                   /* no location */
    assert_string_equal(v[SENTRA_PARAM_KBLI_VERSION], "2020");
    assert_null(v[SENTRA_PARAM_SECTOR_GROUP]);          /* unspecified -> NULL */
    assert_string_equal(v[SENTRA_PARAM_STATUS], "1");
    assert_string_equal(v[SENTRA_PARAM_DECREE_NUMBER], "SK 9");
    assert_null(v[SENTRA_PARAM_DECREE_DATE]);
    assert_string_equal(v[SENTRA_PARAM_FIGURES],
        "[{\"year\":2024,\"business_units\":5,\"workers_male\":0,\"workers_female\":0,"
        "\"investment\":0,\"production_value\":0,\"material_value\":0,\"capacity\":0,"
        "\"export_share_bp\":0,\"capacity_unit\":\"m\xC2\xB2 \\\"x\\\"\","
        "\"export_destinations\":[\"MY\",\"SG\"]}]");

    s.n_figures = 0;
    sentra__params(c, &s, v);
    assert_string_equal(v[SENTRA_PARAM_FIGURES], "[]");
    call_unref(c);
}

/* ---------------------------------------------------------------- pull */

/* A result with the columns a pull reads (enum sentra_pull_col) and one
 * of the caller's own after them. */
static PGresult *pull_rows_result(int nrows)
{
    return text_result(nrows, SENTRA_PULL_NCOLS + 1);
}

/* The 25 record fields, regency_code to province_code, as sentra_pull_src
 * prints them (U+001F between), then U+001D and figs. */
static char *packed(const char *figs)
{
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "18.71\x1f" "18.71.01\x1f" "\x1f" "Jl. Kopi 1\n\tRT 2\x1f"
             "-5.4321987654321\x1f" "105.26\x1f" "Sentra Kopi Tanggamus\x1f" "Kopi\x1f"
             "Kopi bubuk\x1f" "10761\x1f" "2020\x1f" "1\x1f" "2\x1f"
             "2019-03-15\x1f" "SK/12/2021\x1f" "2021-04-01\x1f" "\x1f"
             "Bu Sari\x1f" "+62 812\x1f" "7\x1f" "1600000000000\x1f" "1700000000123\x1f"
             "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa\x1f" "\x1f" "18"
             "\x1d%s", figs);
    return buf;
}

static void set_live(PGresult *res, int row, const char *id, const char *figs)
{
    set(res, row, SENTRA_PULL_ID, id);
    set(res, row, SENTRA_PULL_VERSION, "7");
    set(res, row, SENTRA_PULL_DELETED, "f");
    set(res, row, SENTRA_PULL_PACKED, packed(figs));
    set(res, row, SENTRA_PULL_NCOLS, "999");
}

static void fields_and_two_years(void **state)
{
    (void)state;
    call_t *c = arena_call();
    PGresult *res = pull_rows_result(1);
    /* 2023 without destinations; 2024 with two and a unit holding spaces,
     * commas and non-ASCII text */
    set_live(res, 0, "11111111-1111-4111-8111-111111111111",
        "2023\x1f" "10\x1f" "4\x1f" "6\x1f" "5000000\x1f" "9000000\x1f" "1000\x1f" "0\x1f" "0\x1f" "\x1f"
        "\x1e"
        "2024\x1f" "12\x1f" "20\x1f" "31\x1f" "250000000\x1f" "900000000\x1f" "7\x1f" "4000\x1f"
        "1500\x1f" "MY,SG\x1f" "karung, 50 kg (±)");

    Sentra__V1__Sentra *s = sentra__from_pull(c, res, 0);
    assert_non_null(s);
    assert_string_equal(s->id, "11111111-1111-4111-8111-111111111111");
    assert_string_equal(s->regency_code, "18.71");
    assert_string_equal(s->district_code, "18.71.01");
    assert_string_equal(s->village_code, "");
    assert_string_equal(s->address, "Jl. Kopi 1\n\tRT 2");
    assert_non_null(s->location);
    assert_true(s->location->latitude == -5.4321987654321);
    assert_true(s->location->longitude == 105.26);
    assert_string_equal(s->name, "Sentra Kopi Tanggamus");
    assert_string_equal(s->commodity, "Kopi");
    assert_string_equal(s->main_product, "Kopi bubuk");
    assert_string_equal(s->kbli_code, "10761");
    assert_int_equal(s->kbli_version, SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020);
    assert_int_equal(s->sector_group, 1);
    assert_int_equal(s->status, 2);
    assert_string_equal(s->formed_on, "2019-03-15");
    assert_non_null(s->decree);
    assert_string_equal(s->decree->number, "SK/12/2021");
    assert_string_equal(s->decree->date, "2021-04-01");
    assert_string_equal(s->decree->official, "");
    assert_string_equal(s->contact_name, "Bu Sari");
    assert_string_equal(s->contact_phone, "+62 812");
    assert_int_equal(s->version, 7);
    assert_int_equal(s->created_at_ms, 1600000000000LL);
    assert_int_equal(s->updated_at_ms, 1700000000123LL);
    assert_string_equal(s->created_by, "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa");
    assert_string_equal(s->updated_by, "");
    assert_string_equal(s->province_code, "18");
    assert_false(s->deleted);
    assert_int_equal(s->n_figures, 2);

    const Sentra__V1__Figures *a = s->figures[0], *b = s->figures[1];
    assert_int_equal(a->year, 2023);
    assert_int_equal(a->business_units, 10);
    assert_int_equal(a->workers_male, 4);
    assert_int_equal(a->workers_female, 6);
    assert_int_equal(a->investment, 5000000);
    assert_int_equal(a->production_value, 9000000);
    assert_int_equal(a->material_value, 1000);
    assert_int_equal(a->capacity, 0);
    assert_int_equal(a->export_share_bp, 0);
    assert_int_equal(a->n_export_destinations, 0);
    assert_string_equal(a->capacity_unit, "");

    assert_int_equal(b->year, 2024);
    assert_int_equal(b->business_units, 12);
    assert_int_equal(b->workers_male, 20);
    assert_int_equal(b->workers_female, 31);
    assert_int_equal(b->investment, 250000000);
    assert_int_equal(b->production_value, 900000000);
    assert_int_equal(b->material_value, 7);
    assert_int_equal(b->capacity, 4000);
    assert_int_equal(b->export_share_bp, 1500);
    assert_int_equal(b->n_export_destinations, 2);
    assert_string_equal(b->export_destinations[0], "MY");
    assert_string_equal(b->export_destinations[1], "SG");
    assert_string_equal(b->capacity_unit, "karung, 50 kg (±)");

    /* the result itself is left as it was (the text was copied) */
    const char *v = PQgetvalue(res, 0, SENTRA_PULL_PACKED);
    assert_int_equal(PQgetlength(res, 0, SENTRA_PULL_PACKED), (int)strlen(v));
    assert_non_null(strchr(v, '\x1e'));
    PQclear(res);
    call_unref(c);
}

/* No figures, no location, no decree; a tombstone (packed NULL): id,
 * version and deleted only. A text cut short leaves the rest empty. */
static void none_tombstone_and_short(void **state)
{
    (void)state;
    call_t *c = arena_call();
    PGresult *res = pull_rows_result(3);
    set_live(res, 0, "22222222-2222-4222-8222-222222222222", "");
    set(res, 0, SENTRA_PULL_PACKED,
        "18.71\x1f\x1f\x1f\x1f\x1f\x1fSentra Lada\x1f\x1f\x1f" "10799\x1f" "2025\x1f" "6\x1f" "1\x1f"
        "\x1f\x1f\x1f\x1f\x1f\x1f" "1\x1f" "5\x1f" "6\x1f\x1f\x1f" "18\x1d");
    set(res, 1, SENTRA_PULL_ID, "33333333-3333-4333-8333-333333333333");
    set(res, 1, SENTRA_PULL_VERSION, "4");
    set(res, 1, SENTRA_PULL_DELETED, "t");
    set(res, 2, SENTRA_PULL_ID, "44444444-4444-4444-8444-444444444444");
    set(res, 2, SENTRA_PULL_VERSION, "2");
    set(res, 2, SENTRA_PULL_DELETED, "f");
    set(res, 2, SENTRA_PULL_PACKED, "18.72\x1f" "18.72.01");

    Sentra__V1__Sentra *s = sentra__from_pull(c, res, 0);
    assert_non_null(s);
    assert_string_equal(s->name, "Sentra Lada");
    assert_int_equal(s->kbli_version, SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2025);
    assert_int_equal(s->sector_group, 6);
    assert_null(s->location);
    assert_null(s->decree);
    assert_int_equal(s->version, 7);        /* the column's */
    assert_int_equal(s->updated_at_ms, 6);
    assert_string_equal(s->province_code, "18");
    assert_int_equal(s->n_figures, 0);
    assert_null(s->figures);

    Sentra__V1__Sentra *t = sentra__from_pull(c, res, 1);
    assert_non_null(t);
    assert_string_equal(t->id, "33333333-3333-4333-8333-333333333333");
    assert_true(t->deleted);
    assert_int_equal(t->version, 4);
    assert_string_equal(t->name, "");
    assert_string_equal(t->regency_code, "");
    assert_null(t->decree);
    assert_null(t->location);
    assert_int_equal(t->n_figures, 0);

    Sentra__V1__Sentra *u = sentra__from_pull(c, res, 2);
    assert_non_null(u);
    assert_string_equal(u->regency_code, "18.72");
    assert_string_equal(u->district_code, "18.72.01");
    assert_string_equal(u->name, "");
    assert_int_equal(u->version, 2);
    assert_int_equal(u->n_figures, 0);

    /* protobuf-c packs all three (no NULL string where one is required) */
    uint8_t buf[1024];
    assert_true(protobuf_c_message_get_packed_size(&s->base) < sizeof buf);
    assert_true(protobuf_c_message_pack(&s->base, buf) > 0);
    assert_true(protobuf_c_message_pack(&t->base, buf) > 0);
    assert_true(protobuf_c_message_pack(&u->base, buf) > 0);
    PQclear(res);
    call_unref(c);
}

/* Out of range rows, and results with too few columns, are refused. */
static void pull_refused(void **state)
{
    (void)state;
    call_t *c = arena_call();
    PGresult *res = pull_rows_result(1);
    set_live(res, 0, "55555555-5555-4555-8555-555555555555", "");
    assert_null(sentra__from_pull(c, res, 1));
    assert_null(sentra__from_pull(c, res, -1));
    PQclear(res);

    PGresult *narrow = text_result(1, SENTRA_PULL_NCOLS - 1);
    assert_int_equal(PQsetvalue(narrow, 0, 0, (char *)"x", 1), 1);
    assert_null(sentra__from_pull(c, narrow, 0));
    PQclear(narrow);
    call_unref(c);
}

/* ---------------------------------------------------------------- wire */

/* sentra__pull_wire's bytes for row `row` are those protobuf-c packs from
 * sentra__from_pull's message of the same row. */
static void assert_wire_same(PGresult *res, int row)
{
    call_t *c = arena_call();
    Sentra__V1__Sentra *s = sentra__from_pull(c, res, row);
    assert_non_null(s);
    size_t n = protobuf_c_message_get_packed_size(&s->base);
    uint8_t *want = malloc(n + 1);
    assert_non_null(want);
    assert_int_equal(protobuf_c_message_pack(&s->base, want), n);

    sentra_wbuf_t b = {0};
    /* Something already in the buffer: the record is appended after it. */
    sentra__wbuf_reserve(&b, 3);
    memcpy(b.p, "abc", 3);
    b.len = 3;
    const char *packed_text = PQgetisnull(res, row, SENTRA_PULL_PACKED)
                                  ? NULL : PQgetvalue(res, row, SENTRA_PULL_PACKED);
    size_t got = sentra__pull_wire(&b, PQgetvalue(res, row, SENTRA_PULL_ID),
                                   PQgetvalue(res, row, SENTRA_PULL_VERSION),
                                   PQgetvalue(res, row, SENTRA_PULL_DELETED), packed_text,
                                   (size_t)PQgetlength(res, row, SENTRA_PULL_PACKED));
    if (got != n || memcmp(b.p + 3, want, n) != 0) {
        fprintf(stderr, "row %d: wire %zu bytes, protobuf-c %zu bytes; text:", row, got, n);
        for (const char *q = packed_text ? packed_text : ""; *q; q++)
            fprintf(stderr, (unsigned char)*q < 0x20 ? "<%02x>" : "%c", (unsigned char)*q);
        fprintf(stderr, "\n");
        for (size_t i = 0; i < (got > n ? got : n); i++)
            fprintf(stderr, "%zu: %02x %02x\n", i, i < got ? b.p[3 + i] : 0, i < n ? want[i] : 0);
    }
    assert_int_equal(got, n);
    assert_memory_equal(b.p, "abc", 3);
    assert_memory_equal(b.p + 3, want, n);
    free(b.p);
    free(want);
    call_unref(c);
}

/* The fixtures above, and edge cases: negative and large numbers, zero
 * coordinates, empty destinations between commas, an entry cut short,
 * trailing separators, a text without its figures separator. */
static void wire_fixtures(void **state)
{
    (void)state;
    PGresult *res = pull_rows_result(12);
    set_live(res, 0, "11111111-1111-4111-8111-111111111111",
        "2023\x1f" "10\x1f" "4\x1f" "6\x1f" "5000000\x1f" "9000000\x1f" "1000\x1f" "0\x1f" "0\x1f" "\x1f"
        "\x1e"
        "2024\x1f" "12\x1f" "20\x1f" "31\x1f" "250000000\x1f" "900000000\x1f" "7\x1f" "4000\x1f"
        "1500\x1f" "MY,SG\x1f" "karung, 50 kg (\xc2\xb1)");
    set_live(res, 1, "22222222-2222-4222-8222-222222222222", "");
    set(res, 1, SENTRA_PULL_PACKED,
        "18.71\x1f\x1f\x1f\x1f\x1f\x1fSentra Lada\x1f\x1f\x1f" "10799\x1f" "2025\x1f" "6\x1f" "1\x1f"
        "\x1f\x1f\x1f\x1f\x1f\x1f" "1\x1f" "5\x1f" "6\x1f\x1f\x1f" "18\x1d");
    set(res, 2, SENTRA_PULL_ID, "33333333-3333-4333-8333-333333333333");
    set(res, 2, SENTRA_PULL_VERSION, "4");
    set(res, 2, SENTRA_PULL_DELETED, "t");
    set(res, 3, SENTRA_PULL_ID, "44444444-4444-4444-8444-444444444444");
    set(res, 3, SENTRA_PULL_VERSION, "2");
    set(res, 3, SENTRA_PULL_DELETED, "f");
    set(res, 3, SENTRA_PULL_PACKED, "18.72\x1f" "18.72.01");
    set_live(res, 4, "55555555-5555-4555-8555-555555555555",
        "-1\x1f" "-9223372036854775808\x1f" "9223372036854775807\x1f" "0\x1f" "100000000000000\x1f"
        "1\x1f" "2\x1f" "3\x1f" "-5\x1f" ",,MY,,SG,\x1f" "");
    set(res, 5, SENTRA_PULL_ID, "66666666-6666-4666-8666-666666666666");
    set(res, 5, SENTRA_PULL_VERSION, "123456789012");
    set(res, 5, SENTRA_PULL_DELETED, "f");
    set(res, 5, SENTRA_PULL_PACKED,
        "18.71\x1f\x1f\x1f" "a\tb\nc\rd, and a long address of many words, more than eight bytes\x1f"
        "0\x1f" "0\x1f" "N\x1f\x1f\x1f\x1f" "0\x1f" "0\x1f" "0\x1f\x1f\x1f\x1f\x1f\x1f\x1f"
        "1\x1f" "0\x1f" "0\x1f\x1f\x1f" "18\x1d" "2020\x1e" "2021\x1f" "1\x1e\x1e" "2022");
    set_live(res, 6, "77777777-7777-4777-8777-777777777777", "2024\x1f" "1\x1f" "2");
    set(res, 7, SENTRA_PULL_ID, "88888888-8888-4888-8888-888888888888");
    set(res, 7, SENTRA_PULL_VERSION, "1");
    set(res, 7, SENTRA_PULL_DELETED, "f");
    set(res, 7, SENTRA_PULL_PACKED, "");
    set_live(res, 8, "99999999-9999-4999-8999-999999999999",
        "2024\x1f" "1\x1f" "2\x1f" "3\x1f" "4\x1f" "5\x1f" "6\x1f" "7\x1f" "8\x1f" "US\x1f" "unit\x1f" "extra");
    set(res, 9, SENTRA_PULL_ID, "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa");
    set(res, 9, SENTRA_PULL_VERSION, "3");
    set(res, 9, SENTRA_PULL_DELETED, "f");
    set(res, 9, SENTRA_PULL_PACKED, "18.71\x1f\x1f\x1f\x1f" "-0\x1f" "1e-300\x1f" "x");
    set(res, 10, SENTRA_PULL_ID, "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb");
    set(res, 10, SENTRA_PULL_VERSION, "0");
    set(res, 10, SENTRA_PULL_DELETED, "t");
    set(res, 11, SENTRA_PULL_ID, "");
    set(res, 11, SENTRA_PULL_VERSION, "-3");
    set(res, 11, SENTRA_PULL_DELETED, "f");
    set(res, 11, SENTRA_PULL_PACKED, "\x1d");
    for (int r = 0; r < 12; r++)
        assert_wire_same(res, r);
    PQclear(res);
}

/* Random texts of the packed form (fields from a small alphabet that
 * holds digits, signs, commas, tabs, multi-byte UTF-8 and the three
 * separators in every place): the same bytes every time. */
static void wire_random(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "0", "7", "-12", "2024", "9999999999", "-", "18.71", ",", "MY", "a b", "\t", "\n",
        "\xc3\xa9", "abcdefghij", "", "1.5", "-0.25", "1e5", "\x1f", "\x1f", "\x1f", "\x1f",
        "\x1e", "\x1d", "12345678", "123456789012345678901234", "00000000", "-99999999",
    };
    unsigned seed = 12345;
    char text[1024];
    PGresult *res = pull_rows_result(1);

    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0;
        int n = (int)((seed = seed * 1103515245 + 12345) >> 16) % 80;
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245 + 12345;
            const char *p = pieces[(seed >> 16) % (sizeof pieces / sizeof *pieces)];
            size_t k = strlen(p);
            if (len + k >= sizeof text)
                break;
            memcpy(text + len, p, k);
            len += k;
        }
        text[len] = '\0';
        set(res, 0, SENTRA_PULL_ID, "cccccccc-cccc-4ccc-8ccc-cccccccccccc");
        set(res, 0, SENTRA_PULL_VERSION, iter % 3 ? "5" : "0");
        set(res, 0, SENTRA_PULL_DELETED, iter % 5 ? "f" : "t");
        set(res, 0, SENTRA_PULL_PACKED, text);
        assert_wire_same(res, 0);
    }
    PQclear(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_rows),
        cmocka_unit_test(too_few_columns),
        cmocka_unit_test(json_strings),
        cmocka_unit_test(params),
        cmocka_unit_test(fields_and_two_years),
        cmocka_unit_test(none_tombstone_and_short),
        cmocka_unit_test(pull_refused),
        cmocka_unit_test(wire_fixtures),
        cmocka_unit_test(wire_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
