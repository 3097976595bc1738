/*
 * test_filter.c: the SQL text of every SentraFilter shape (server/services/filter.c):
 * parameters numbered $first.. in order with none skipped, one term per
 * condition, the live-row condition always present, each term reading
 * its column through the alias, and the size query (len 0) agreeing with the text written.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

/* Conditions that take a parameter (all but the two designation ones). */
static int params_of(unsigned shape)
{
    int n = 0;
    for (unsigned bit = 1; bit < (1u << SF_BITS); bit <<= 1)
        if ((shape & bit) && bit != SF_DESIGNATED && bit != SF_NOT_DESIGNATED)
            n++;
    return n;
}

static void test_every_shape(void **state)
{
    (void)state;
    char buf[4096];
    for (unsigned shape = 0; shape < (1u << SF_BITS); shape++) {
        size_t need = sentra__filter_sql(shape, "t", 3, NULL, 0);
        size_t got = sentra__filter_sql(shape, "t", 3, buf, sizeof buf);
        assert_int_equal(need, got);
        assert_int_equal(strlen(buf), got);
        assert_non_null(strstr(buf, " AND t.deleted_at IS NULL"));

        /* $3, $4, ... in order, each once. */
        int expect = 3, count = 0;
        for (const char *p = strchr(buf, '$'); p; p = strchr(p + 1, '$')) {
            int n = atoi(p + 1);
            assert_int_equal(n, expect);
            expect++;
            count++;
        }
        assert_int_equal(count, params_of(shape));

        /* One " AND " term per condition, plus the live-row one (the text
         * term holds no inner AND). */
        int terms = 0;
        for (const char *p = strstr(buf, " AND "); p; p = strstr(p + 1, " AND "))
            terms++;
        assert_int_equal(terms, 1 + __builtin_popcount(shape));

        /* Each term reads one column, through the alias. */
        int refs = 0;
        for (const char *p = strstr(buf, " t."); p; p = strstr(p + 1, " t."))
            refs++;
        assert_int_equal(refs, terms);
    }
}

static void test_truncation(void **state)
{
    (void)state;
    char small[16];
    unsigned all = (1u << SF_BITS) - 1;
    size_t need = sentra__filter_sql(all, "s", 1, small, sizeof small);
    assert_true(need > sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);   /* cut, terminated */
}

static void test_text_escapes_like(void **state)
{
    (void)state;
    char buf[1024];
    sentra__filter_sql(SF_TEXT, "s", 1, buf, sizeof buf);
    /* The client's text is a parameter, lower-cased, with %, _ and \
     * escaped so that they match themselves. */
    assert_non_null(strstr(buf, "s.search LIKE '%' || replace(replace(replace(lower($1::text),"
                                " '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_shape),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_text_escapes_like),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
