/*
 * test_sentra_row.c: server/sentra_row.c without a database. Results are
 * built client-side with libpq's PQmakeEmptyPGresult/PQsetvalue in the
 * shape of the view sentra_rows, then parsed; parameters are built from a
 * message and checked, the figures JSON included.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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

/* A result with the columns of sentra_rows, all text. */
static PGresult *rows_result(int nrows)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc att[SENTRA_NCOLS];
    static char names[SENTRA_NCOLS][16];

    memset(att, 0, sizeof att);
    for (int i = 0; i < SENTRA_NCOLS; i++) {
        snprintf(names[i], sizeof names[i], "c%d", i);
        att[i].name = names[i];
        att[i].format = 0;
        att[i].typlen = -1;
        att[i].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(res, SENTRA_NCOLS, att), 1);
    /* every value NULL until set */
    for (int r = 0; r < nrows; r++)
        for (int i = 0; i < SENTRA_NCOLS; i++)
            assert_int_equal(PQsetvalue(res, r, i, NULL, -1), 1);
    return res;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_rows),
        cmocka_unit_test(too_few_columns),
        cmocka_unit_test(json_strings),
        cmocka_unit_test(params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
