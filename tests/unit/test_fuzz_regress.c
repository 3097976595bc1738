/*
 * test_fuzz_regress.c: replays the fuzzers' seed corpus and every input a
 * fuzzer ever crashed on (tests/fuzz/corpus/<target>/ and
 * tests/fuzz/regress/<target>/) through the same target code
 * (tests/fuzz/fuzz_*.c, compiled here without libFuzzer), so a fixed bug
 * stays fixed in every `make test`, with or without clang. A target's
 * checks abort on failure, which fails this test program.
 *
 * tests/fuzz/regress/request/tag-field-zero: protobuf-c accepts the tag
 * bytes 80 00 (field 0, written with a redundant byte) and repacks them as
 * 00, which it then rejects; the target had to learn that exception.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LLVMFuzzerTestOneInput fuzz_frame_one
#include "../fuzz/fuzz_frame.c"
#undef LLVMFuzzerTestOneInput
#undef CHECK
#define LLVMFuzzerTestOneInput fuzz_request_one
#include "../fuzz/fuzz_request.c"
#undef LLVMFuzzerTestOneInput
#undef CHECK
#define LLVMFuzzerTestOneInput fuzz_validate_one
#include "../fuzz/fuzz_validate.c"
#undef LLVMFuzzerTestOneInput
#undef CHECK
#define LLVMFuzzerTestOneInput fuzz_h2_one
#include "../fuzz/fuzz_h2.c"
#undef LLVMFuzzerTestOneInput
#undef CHECK
#define LLVMFuzzerTestOneInput fuzz_http1_one
#include "../fuzz/fuzz_http1.c"
#undef LLVMFuzzerTestOneInput
#undef CHECK
#define LLVMFuzzerTestOneInput fuzz_tls_one
#include "../fuzz/fuzz_tls.c"
#undef LLVMFuzzerTestOneInput

typedef int (*fuzz_fn)(const uint8_t *, size_t);

/* tests/fuzz, found from the working directory or from this file's path. */
static const char *fuzz_dir(void)
{
    static char dir[4096];
    struct stat st;
    if (stat("tests/fuzz/corpus", &st) == 0)
        return "tests/fuzz";
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        strncat(dir, "/../fuzz", sizeof(dir) - strlen(dir) - 1);
        return dir;
    }
    return "tests/fuzz";
}

/* Feeds every file of dir/kind/target to fn; returns how many. */
static int replay(const char *kind, const char *target, fuzz_fn fn)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s/%s", fuzz_dir(), kind, target);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char file[8400];
        snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        FILE *f = fopen(file, "rb");
        assert_non_null(f);
        uint8_t *buf = malloc(1 << 20);
        assert_non_null(buf);
        size_t len = fread(buf, 1, 1 << 20, f);
        fclose(f);
        /* An exact-size copy, so that ASan catches reads past the end. */
        uint8_t *exact = malloc(len ? len : 1);
        assert_non_null(exact);
        memcpy(exact, buf, len);
        free(buf);
        fn(exact, len);
        free(exact);
        n++;
    }
    closedir(d);
    return n;
}

static void test_frame(void **state)
{
    int n = replay("corpus", "frame", fuzz_frame_one) + replay("regress", "frame", fuzz_frame_one);
    assert_true(n >= 10); /* the committed seeds were found */
}

static void test_request(void **state)
{
    int n = replay("corpus", "request", fuzz_request_one) +
            replay("regress", "request", fuzz_request_one);
    assert_true(n >= 10);
}

static void test_validate(void **state)
{
    int n = replay("corpus", "validate", fuzz_validate_one) +
            replay("regress", "validate", fuzz_validate_one);
    assert_true(n >= 10);
}

static void test_h2(void **state)
{
    int n = replay("corpus", "h2", fuzz_h2_one) + replay("regress", "h2", fuzz_h2_one);
    assert_true(n >= 10);
}

static void test_http1(void **state)
{
    int n = replay("corpus", "http1", fuzz_http1_one) + replay("regress", "http1", fuzz_http1_one);
    assert_true(n >= 10);
}

static void test_tls(void **state)
{
    int n = replay("corpus", "tls", fuzz_tls_one) + replay("regress", "tls", fuzz_tls_one);
    assert_true(n >= 10);
}

/* Inputs written here, not found by a fuzzer: the edges the targets'
 * checks care most about. */
static void test_edges(void **state)
{
    static const uint8_t huge[] = { 7, 0x7f, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 1 };
    static const uint8_t negative[] = { 7, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 1 };
    static const uint8_t zero_len[] = { 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t field_zero[] = { 0x80, 0x00, 0xf8, 0xfe, 0x0a };
    /* CreateSentraRequest{sentra{formed_on "0001-01-01", name "abc"}}: the
     * earliest valid date (the target once expected years >= 1000). */
    static const uint8_t year_one[] = { 4, 0x0a, 0x11, 0x72, 0x0a, '0', '0', '0', '1', '-', '0', '1',
                                        '-', '0', '1', 0x3a, 0x03, 'a', 'b', 'c' };
    fuzz_frame_one(huge, sizeof(huge));
    fuzz_frame_one(negative, sizeof(negative));
    fuzz_frame_one(zero_len, sizeof(zero_len));
    fuzz_frame_one(NULL, 0);
    fuzz_request_one(field_zero, sizeof(field_zero));
    fuzz_request_one(NULL, 0);
    fuzz_validate_one(year_one, sizeof(year_one));
    fuzz_validate_one(NULL, 0);
    fuzz_h2_one(NULL, 0);
    fuzz_http1_one(NULL, 0);
    fuzz_tls_one(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame),
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_h2),
        cmocka_unit_test(test_http1),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
