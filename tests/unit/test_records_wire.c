/*
 * test_records_wire.c: server/services/records.c's rows to wire bytes
 * (rec__row_wire) without a database. Results in the shape of each kind's
 * view <kind>_api are built client-side (PQmakeEmptyPGresult, PQsetvalue)
 * with fixed and with random values of every sort a column can hold (NULL,
 * empty, zero, negative, the largest, unknown KBLI editions, repeated
 * strings with empty elements, nested messages partly or not at all set),
 * and the bytes must be exactly those protobuf-c packs from rec__from_row's
 * message of the same row. rec__row_shape must refuse a result whose
 * columns are not the kind's.
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
#include "records.h"

/* A call used only for its memory arena (call_alloc); freed by call_unref. */
static call_t *arena_call(void)
{
    call_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->refs = 1;
    return c;
}

/* A result with the columns of kind k, every value NULL until set. */
static PGresult *kind_result(const rec_kind_t *k, int nrows)
{
    size_t n;
    const rec_col_t *cols = rec__cols(k, &n);
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc att[REC_MAX_COLS];

    memset(att, 0, sizeof att);
    for (size_t i = 0; i < n; i++) {
        att[i].name = (char *)cols[i].name;
        att[i].typlen = -1;
        att[i].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(res, (int)n, att), 1);
    for (int r = 0; r < nrows; r++)
        for (size_t i = 0; i < n; i++)
            assert_int_equal(PQsetvalue(res, r, (int)i, NULL, -1), 1);
    return res;
}

static void set(PGresult *res, int row, int col, const char *v)
{
    assert_int_equal(PQsetvalue(res, row, col, (char *)v, v ? (int)strlen(v) : -1), 1);
}

/* The wire bytes of row `row` are those protobuf-c packs from the message. */
static void assert_wire_same(const rec_kind_t *k, PGresult *res, int row)
{
    sentra_wbuf_t b = {0};
    /* Something already in the buffer: the record is appended after it. */
    sentra__wbuf_reserve(&b, 3);
    memcpy(b.p, "abc", 3);
    b.len = 3;
    /* The wire first: rec__from_row cuts repeated strings in place. */
    size_t got = rec__row_wire(&b, k, res, row, 0);

    call_t *c = arena_call();
    ProtobufCMessage *m = rec__from_row(c, k, res, row, 0);
    assert_non_null(m);
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *want = malloc(n + 1);
    assert_non_null(want);
    assert_int_equal(protobuf_c_message_pack(m, want), n);
    if (got != n || memcmp(b.p + 3, want, n) != 0) {
        size_t nc;
        const rec_col_t *cols = rec__cols(k, &nc);
        fprintf(stderr, "%s row %d: wire %zu bytes, protobuf-c %zu bytes; columns:\n", k->name,
                row, got, n);
        for (size_t i = 0; i < nc; i++)
            fprintf(stderr, "  %s = %s\n", cols[i].name,
                    PQgetisnull(res, row, (int)i) ? "NULL" : PQgetvalue(res, row, (int)i));
        (void)cols;
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

/* ---------------------------------------------------------------- fixtures */

static void member_fixture(void **state)
{
    (void)state;
    PGresult *res = kind_result(&rec_member, 2);
    const char *row0[] = {
        "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222",
        "Tapis Jaya", "Siti", "2", "1234567890123", "13912", "2020", "kain tapis", "3", "12",
        "250000000", "900000000", "2019", NULL, "1", "7", "1764700000000", "1764700000001",
        "33333333-3333-4333-8333-333333333333", "33333333-3333-4333-8333-333333333333",
        "18.71", "18", "f",
    };
    size_t n;
    (void)rec__cols(&rec_member, &n);
    assert_int_equal(n, sizeof row0 / sizeof *row0);
    for (size_t i = 0; i < n; i++)
        set(res, 0, (int)i, row0[i]);
    /* a tombstone: key, version, deleted; the rest NULL */
    set(res, 1, 0, "11111111-1111-4111-8111-111111111111");
    set(res, 1, 16, "8");
    set(res, 1, 23, "t");
    assert_true(rec__row_shape(&rec_member, res, 0));
    assert_wire_same(&rec_member, res, 0);
    assert_wire_same(&rec_member, res, 1);
    PQclear(res);
}

/* The values a column of field f may be given at random. */
static const char *random_value(const ProtobufCFieldDescriptor *f, unsigned r)
{
    static const char *const ints[] = {"0", "1", "-1", "7", "127", "128", "16383", "16384",
                                       "2147483647", "-2147483648", "2009", "2015", "2020",
                                       "2025", "1999", "9223372036854775807",
                                       "-9223372036854775808", "300000000000"};
    static const char *const strs[] = {"x", "Tapis Jaya", "Kopi, bubuk", "é ü 中文",
                                       "11111111-1111-4111-8111-111111111111",
                                       "a,b", ",a,,b,", ",", ",,", "a,", ",a",
                                       "11111111-1111-4111-8111-111111111111,"
                                       "22222222-2222-4222-8222-222222222222"};
    static const char *const bools[] = {"t", "f"};
    static char longs[4][520];

    if (longs[0][0] == '\0')
        for (int i = 0; i < 4; i++) {
            memset(longs[i], 'a' + i, 126 + 127 * (size_t)i);    /* lengths round 128 */
            longs[i][126 + 127 * i] = '\0';
        }
    switch (r % 4) {
    case 0: return NULL;
    case 1: return "";
    default: break;
    }
    r /= 4;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        if (r % 5 == 0)
            return longs[(r / 5) % 4];
        return strs[r % (sizeof strs / sizeof *strs)];
    case PROTOBUF_C_TYPE_BOOL:
        return bools[r % 2];
    default:
        return ints[r % (sizeof ints / sizeof *ints)];
    }
}

/* 3000 rows of random values per kind, each compared. */
static void random_rows(void **state)
{
    (void)state;
    const rec_kind_t *kinds[] = {&rec_member, &rec_institution, &rec_obstacle, &rec_assistance};
    unsigned seed = 12345;

    for (size_t ki = 0; ki < sizeof kinds / sizeof *kinds; ki++) {
        const rec_kind_t *k = kinds[ki];
        size_t n;
        const rec_col_t *cols = rec__cols(k, &n);
        enum { ROWS = 3000 };
        PGresult *res = kind_result(k, ROWS);
        for (int r = 0; r < ROWS; r++)
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                /* a third of the rows with every column NULL or empty:
                 * nested messages absent, the empty record */
                unsigned v = (seed >> 8) & 0xffff;
                if (r % 3 == 0)
                    v &= 1;
                set(res, r, (int)i, random_value(cols[i].leaf, v));
            }
        assert_true(rec__row_shape(k, res, 0));
        for (int r = 0; r < ROWS; r++)
            assert_wire_same(k, res, r);
        PQclear(res);
    }
}

/* A result whose columns are not the kind's is refused (and logged). */
static void shape_refused(void **state)
{
    (void)state;
    PGresult *res = kind_result(&rec_obstacle, 1);
    assert_false(rec__row_shape(&rec_member, res, 0));
    assert_true(rec__row_shape(&rec_obstacle, res, 0));
    assert_false(rec__row_shape(&rec_obstacle, res, 1));
    PQclear(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(member_fixture),
        cmocka_unit_test(random_rows),
        cmocka_unit_test(shape_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
