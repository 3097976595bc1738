/*
 * test_sentra_row_pull.c: sentra__from_pull (server/sentra_row.c), the
 * record as PullChanges reads it, printed into one text by the table
 * sentra_pull (migrations/0007_pull_rows.sql), without a database: results
 * built client-side with PQmakeEmptyPGresult/PQsetvalue. The integration
 * tests compare what a pull returns with GetSentra.
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

#define NCOLS (SENTRA_PULL_NCOLS + 1)   /* and a column of the caller's own */

static call_t *arena_call(void)
{
    call_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->refs = 1;
    return c;
}

static PGresult *pull_result(int nrows)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc att[NCOLS];
    static char names[NCOLS][16];

    memset(att, 0, sizeof att);
    for (int i = 0; i < NCOLS; i++) {
        snprintf(names[i], sizeof names[i], "c%d", i);
        att[i].name = names[i];
        att[i].typlen = -1;
        att[i].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(res, NCOLS, att), 1);
    for (int r = 0; r < nrows; r++)
        for (int i = 0; i < NCOLS; i++)
            assert_int_equal(PQsetvalue(res, r, i, NULL, -1), 1);
    return res;
}

static void set(PGresult *res, int row, int col, const char *v)
{
    assert_int_equal(PQsetvalue(res, row, col, (char *)v, (int)strlen(v)), 1);
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
    PGresult *res = pull_result(1);
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
    PGresult *res = pull_result(3);
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
static void refused(void **state)
{
    (void)state;
    call_t *c = arena_call();
    PGresult *res = pull_result(1);
    set_live(res, 0, "55555555-5555-4555-8555-555555555555", "");
    assert_null(sentra__from_pull(c, res, 1));
    assert_null(sentra__from_pull(c, res, -1));
    PQclear(res);

    PGresult *narrow = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc att[SENTRA_PULL_NCOLS - 1];
    memset(att, 0, sizeof att);
    for (int i = 0; i < SENTRA_PULL_NCOLS - 1; i++) {
        att[i].name = (char *)"x";
        att[i].typlen = -1;
        att[i].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(narrow, SENTRA_PULL_NCOLS - 1, att), 1);
    assert_int_equal(PQsetvalue(narrow, 0, 0, (char *)"x", 1), 1);
    assert_null(sentra__from_pull(c, narrow, 0));
    PQclear(narrow);
    call_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_and_two_years),
        cmocka_unit_test(none_tombstone_and_short),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
