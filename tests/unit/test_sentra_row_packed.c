/*
 * test_sentra_row_packed.c: sentra__from_packed_row (server/sentra_row.c),
 * the one-row-per-record shape PullChanges reads, without a database:
 * results built client-side with PQmakeEmptyPGresult/PQsetvalue, the
 * figures column in the format SENTRA_FIGURES_PACKED_OF produces.
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

#define FIGS_COL (SENTRA_COL_DELETED + 1)
#define NCOLS (FIGS_COL + 2)        /* and one more column after it */

static call_t *arena_call(void)
{
    call_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->refs = 1;
    return c;
}

static PGresult *packed_result(int nrows)
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

static void set_record(PGresult *res, int row, const char *id)
{
    set(res, row, SENTRA_COL_ID, id);
    set(res, row, SENTRA_COL_REGENCY, "18.71");
    set(res, row, SENTRA_COL_NAME, "Sentra Kopi Tanggamus");
    set(res, row, SENTRA_COL_KBLI_CODE, "10761");
    set(res, row, SENTRA_COL_KBLI_VERSION, "2020");
    set(res, row, SENTRA_COL_STATUS, "2");
    set(res, row, SENTRA_COL_DECREE_NUMBER, "SK/12/2021");
    set(res, row, SENTRA_COL_DECREE_DATE, "2021-04-01");
    set(res, row, SENTRA_COL_VERSION, "7");
    set(res, row, SENTRA_COL_UPDATED_MS, "1700000000123");
    set(res, row, SENTRA_COL_DELETED, "f");
    set(res, row, FIGS_COL + 1, "999");       /* a column of the caller's own */
}

static void two_years(void **state)
{
    (void)state;
    call_t *c = arena_call();
    PGresult *res = packed_result(1);
    set_record(res, 0, "11111111-1111-4111-8111-111111111111");
    /* 2023 without destinations; 2024 with two and a unit holding spaces,
     * commas and non-ASCII text */
    set(res, 0, FIGS_COL,
        "2023\x1f" "10\x1f" "4\x1f" "6\x1f" "5000000\x1f" "9000000\x1f" "1000\x1f" "0\x1f" "0\x1f" "\x1f"
        "\x1e"
        "2024\x1f" "12\x1f" "20\x1f" "31\x1f" "250000000\x1f" "900000000\x1f" "7\x1f" "4000\x1f"
        "1500\x1f" "MY,SG\x1f" "karung, 50 kg (±)");

    Sentra__V1__Sentra *s = sentra__from_packed_row(c, res, 0, FIGS_COL);
    assert_non_null(s);
    assert_string_equal(s->id, "11111111-1111-4111-8111-111111111111");
    assert_string_equal(s->regency_code, "18.71");
    assert_int_equal(s->version, 7);
    assert_int_equal(s->updated_at_ms, 1700000000123LL);
    assert_non_null(s->decree);
    assert_string_equal(s->decree->number, "SK/12/2021");
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

    /* the result itself is left as it was (the figures were copied) */
    assert_int_equal(PQgetlength(res, 0, FIGS_COL), (int)strlen(PQgetvalue(res, 0, FIGS_COL)));
    assert_non_null(strchr(PQgetvalue(res, 0, FIGS_COL), '\x1e'));
    PQclear(res);
    call_unref(c);
}

/* No figures ('' from array_to_string of none) and a tombstone (NULL
 * columns, deleted): no figures, empty strings, no decree. */
static void none_and_tombstone(void **state)
{
    (void)state;
    call_t *c = arena_call();
    PGresult *res = packed_result(2);
    set_record(res, 0, "22222222-2222-4222-8222-222222222222");
    set(res, 0, FIGS_COL, "");
    set(res, 1, SENTRA_COL_ID, "33333333-3333-4333-8333-333333333333");
    set(res, 1, SENTRA_COL_VERSION, "4");
    set(res, 1, SENTRA_COL_DELETED, "t");

    Sentra__V1__Sentra *s = sentra__from_packed_row(c, res, 0, FIGS_COL);
    assert_non_null(s);
    assert_int_equal(s->n_figures, 0);
    assert_null(s->figures);

    Sentra__V1__Sentra *t = sentra__from_packed_row(c, res, 1, FIGS_COL);
    assert_non_null(t);
    assert_string_equal(t->id, "33333333-3333-4333-8333-333333333333");
    assert_true(t->deleted);
    assert_int_equal(t->version, 4);
    assert_string_equal(t->name, "");
    assert_null(t->decree);
    assert_null(t->location);
    assert_int_equal(t->n_figures, 0);

    /* protobuf-c packs both (no NULL string where one is required) */
    uint8_t buf[1024];
    assert_true(protobuf_c_message_get_packed_size(&s->base) < sizeof buf);
    assert_true(protobuf_c_message_pack(&t->base, buf) > 0);
    PQclear(res);
    call_unref(c);
}

/* Out of range rows and a figures column that is not after the record's
 * columns are refused, not read. */
static void refused(void **state)
{
    (void)state;
    call_t *c = arena_call();
    PGresult *res = packed_result(1);
    set_record(res, 0, "44444444-4444-4444-8444-444444444444");
    assert_null(sentra__from_packed_row(c, res, 1, FIGS_COL));
    assert_null(sentra__from_packed_row(c, res, -1, FIGS_COL));
    assert_null(sentra__from_packed_row(c, res, 0, NCOLS));
    assert_null(sentra__from_packed_row(c, res, 0, SENTRA_COL_DELETED));
    PQclear(res);
    call_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_years),
        cmocka_unit_test(none_and_tombstone),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
