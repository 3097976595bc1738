/*
 * test_frame.c: the frame codec (common/frame.c): whole frames, partial
 * frames, byte-by-byte input, many frames in one buffer, and every header
 * error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

#define MAX (4u * 1024 * 1024)

/* Writes a frame into out; returns its total length. */
static size_t put(uint8_t *out, uint8_t type, uint32_t stream, const char *payload)
{
    size_t n = payload ? strlen(payload) : 0;
    sentra_frame_header(out, type, 0, stream, (uint32_t)n);
    if (n)
        memcpy(out + SENTRA_FRAME_HEADER_LEN, payload, n);
    return SENTRA_FRAME_HEADER_LEN + n;
}

static void test_header_layout(void **state)
{
    uint8_t h[12];
    sentra_frame_header(h, SENTRA_FRAME_REQUEST, 0, 0x01020304, 0x0a0b0c0d);
    const uint8_t want[12] = { 0x0a, 0x0b, 0x0c, 0x0d, 1, 0, 0, 0, 1, 2, 3, 4 };
    assert_memory_equal(h, want, 12);
}

static void test_roundtrip(void **state)
{
    uint8_t buf[64];
    size_t n = put(buf, SENTRA_FRAME_REQUEST, 7, "hello");
    sentra_frame_t f;
    size_t used;
    assert_int_equal(sentra_frame_decode(buf, n, MAX, &f, &used), SENTRA_FRAME_OK);
    assert_int_equal(used, n);
    assert_int_equal(f.type, SENTRA_FRAME_REQUEST);
    assert_int_equal(f.stream_id, 7);
    assert_int_equal(f.length, 5);
    assert_memory_equal(f.payload, "hello", 5);
}

static void test_empty_payload(void **state)
{
    uint8_t buf[16];
    size_t n = put(buf, SENTRA_FRAME_CANCEL, 3, NULL);
    sentra_frame_t f;
    size_t used;
    assert_int_equal(sentra_frame_decode(buf, n, MAX, &f, &used), SENTRA_FRAME_OK);
    assert_int_equal(used, 12);
    assert_int_equal(f.length, 0);
}

/* Every prefix shorter than the frame needs more and consumes nothing. */
static void test_partial(void **state)
{
    uint8_t buf[64];
    size_t n = put(buf, SENTRA_FRAME_RESPONSE, 9, "partial payload");
    for (size_t i = 0; i < n; i++) {
        sentra_frame_t f;
        size_t used = 99;
        assert_int_equal(sentra_frame_decode(buf, i, MAX, &f, &used), SENTRA_FRAME_NEED_MORE);
        assert_int_equal(used, 0);
    }
}

/* Feeding a stream one byte at a time yields the same frames. */
static void test_byte_by_byte(void **state)
{
    uint8_t stream[256], acc[256];
    size_t n = 0, have = 0, frames = 0;
    n += put(stream + n, SENTRA_FRAME_REQUEST, 1, "a");
    n += put(stream + n, SENTRA_FRAME_PING, 0, "12345678");
    n += put(stream + n, SENTRA_FRAME_REQUEST, 3, "");
    n += put(stream + n, SENTRA_FRAME_CANCEL, 3, NULL);
    for (size_t i = 0; i < n; i++) {
        acc[have++] = stream[i];
        sentra_frame_t f;
        size_t used;
        int r = sentra_frame_decode(acc, have, MAX, &f, &used);
        assert_true(r == SENTRA_FRAME_OK || r == SENTRA_FRAME_NEED_MORE);
        if (r == SENTRA_FRAME_OK) {
            frames++;
            memmove(acc, acc + used, have - used);
            have -= used;
        }
    }
    assert_int_equal(frames, 4);
    assert_int_equal(have, 0);
}

/* Many frames in one buffer decode in order. */
static void test_many_in_one(void **state)
{
    uint8_t *buf = malloc(1000 * 20);
    size_t n = 0;
    char p[8];
    for (uint32_t i = 1; i <= 1000; i++) {
        snprintf(p, sizeof(p), "%u", i);
        n += put(buf + n, SENTRA_FRAME_REQUEST, i, p);
    }
    size_t off = 0;
    for (uint32_t i = 1; i <= 1000; i++) {
        sentra_frame_t f;
        size_t used;
        assert_int_equal(sentra_frame_decode(buf + off, n - off, MAX, &f, &used), SENTRA_FRAME_OK);
        assert_int_equal(f.stream_id, i);
        snprintf(p, sizeof(p), "%u", i);
        assert_int_equal(f.length, strlen(p));
        assert_memory_equal(f.payload, p, f.length);
        off += used;
    }
    assert_int_equal(off, n);
    free(buf);
}

static int decode_header(const uint8_t h[12], uint32_t max, sentra_frame_t *f)
{
    size_t used;
    return sentra_frame_decode(h, 12, max, f, &used);
}

static void test_too_big(void **state)
{
    uint8_t h[12];
    sentra_frame_t f;
    sentra_frame_header(h, SENTRA_FRAME_REQUEST, 0, 5, MAX + 1);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_ETOOBIG);
    /* The header is still readable, to answer that stream. */
    assert_int_equal(f.stream_id, 5);
    assert_int_equal(f.type, SENTRA_FRAME_REQUEST);
    /* "Negative" lengths (>= 2^31) are just too big. */
    sentra_frame_header(h, SENTRA_FRAME_REQUEST, 0, 5, 0x80000000u);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_ETOOBIG);
    sentra_frame_header(h, SENTRA_FRAME_REQUEST, 0, 5, 0xffffffffu);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_ETOOBIG);
    /* Exactly the maximum is fine (needs more bytes). */
    sentra_frame_header(h, SENTRA_FRAME_REQUEST, 0, 5, MAX);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_NEED_MORE);
}

static void test_header_errors(void **state)
{
    uint8_t h[12];
    sentra_frame_t f;

    sentra_frame_header(h, 0, 0, 1, 0);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_ETYPE);
    sentra_frame_header(h, 7, 0, 1, 0);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_ETYPE);
    sentra_frame_header(h, 255, 0, 1, 0);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_ETYPE);

    sentra_frame_header(h, SENTRA_FRAME_REQUEST, 0, 1, 0);
    h[7] = 1;
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_ERESERVED);

    sentra_frame_header(h, SENTRA_FRAME_REQUEST, 0, 0, 0);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_ESTREAM);
    sentra_frame_header(h, SENTRA_FRAME_CANCEL, 0, 0, 0);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_ESTREAM);
    sentra_frame_header(h, SENTRA_FRAME_PING, 0, 4, 0);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_ESTREAM);
    sentra_frame_header(h, SENTRA_FRAME_GOAWAY, 0, 4, 0);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_ESTREAM);

    sentra_frame_header(h, SENTRA_FRAME_PING, 0, 0, 65);
    assert_int_equal(decode_header(h, MAX, &f), SENTRA_FRAME_EPING);

    /* Unknown flags are ignored. */
    uint8_t buf[16];
    sentra_frame_header(buf, SENTRA_FRAME_CANCEL, 0xff, 1, 0);
    assert_int_equal(decode_header(buf, MAX, &f), SENTRA_FRAME_OK);
    assert_int_equal(f.flags, 0xff);
}

/* Errors are reported from the header alone, before the payload arrives. */
static void test_error_before_payload(void **state)
{
    uint8_t h[12];
    sentra_frame_t f;
    size_t used;
    sentra_frame_header(h, 42, 0, 1, 1000);
    assert_int_equal(sentra_frame_decode(h, 12, MAX, &f, &used), SENTRA_FRAME_ETYPE);
    assert_int_equal(used, 0);
}

/* Random bytes never crash the decoder and never over-consume. */
static void test_random_bytes(void **state)
{
    uint8_t buf[512];
    srand(1234);
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(rand() % (int)sizeof(buf));
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rand();
        sentra_frame_t f;
        size_t used;
        int r = sentra_frame_decode(buf, n, 256, &f, &used);
        if (r == SENTRA_FRAME_OK)
            assert_true(used <= n && used == 12 + f.length);
        else
            assert_int_equal(used, 0);
    }
}

static void test_names(void **state)
{
    assert_string_equal(sentra_frame_type_name(SENTRA_FRAME_GOAWAY), "GOAWAY");
    assert_string_equal(sentra_frame_type_name(99), "?");
    assert_non_null(strstr(sentra_frame_strerror(SENTRA_FRAME_ETOOBIG), "maximum"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_empty_payload),
        cmocka_unit_test(test_partial),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_many_in_one),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_error_before_payload),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
