/*
 * test_wire_text.c: the text the server reads and writes (issue 13, items
 * 11 and 14): server/core/utf8.c (cutting and scrubbing answers so they stay
 * valid UTF-8) and server/core/pbscan.c (NUL bytes in the string fields of
 * an encoded request, which protobuf-c's char * would silently drop).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbscan.h"
#include "utf8.h"
#include "sentra/v1/sentra.pb-c.h"

/* ---------------------------------------------------------------- utf8 */

static void clip_on_boundaries(void **state)
{
    /* "é" is 2 bytes, "€" 3, "😀" 4 */
    const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z";
    assert_int_equal(sentra__utf8_clip(s, 100), strlen(s));
    assert_int_equal(sentra__utf8_clip(s, 0), 0);
    assert_int_equal(sentra__utf8_clip(s, 1), 1);
    assert_int_equal(sentra__utf8_clip(s, 2), 1);     /* inside é */
    assert_int_equal(sentra__utf8_clip(s, 3), 3);
    assert_int_equal(sentra__utf8_clip(s, 4), 3);     /* inside € */
    assert_int_equal(sentra__utf8_clip(s, 5), 3);
    assert_int_equal(sentra__utf8_clip(s, 6), 6);
    for (size_t max = 7; max < 10; max++)
        assert_int_equal(sentra__utf8_clip(s, max), 6);   /* inside 😀 */
    assert_int_equal(sentra__utf8_clip(s, 10), 10);
    /* every cut of a long run of é is valid UTF-8 */
    char buf[301];
    for (int i = 0; i < 150; i++) {
        buf[2 * i] = (char)0xC3;
        buf[2 * i + 1] = (char)0xA9;
    }
    buf[300] = '\0';
    for (size_t max = 0; max <= 300; max++) {
        size_t n = sentra__utf8_clip(buf, max);
        assert_true(n <= max);
        assert_true(sentra__utf8_valid(buf, n, NULL));
        assert_true(max - n <= 1);
    }
}

static void scrub_invalid_bytes(void **state)
{
    char a[] = "ok \xC3\xA9 \xFF bad \xE2\x82 cut \xC0\xAF overlong \xED\xA0\x80 surrogate";
    size_t bad = sentra__utf8_scrub(a);
    assert_true(sentra__utf8_valid(a, strlen(a), NULL));
    assert_int_equal(bad, 1 + 2 + 2 + 3);
    assert_string_equal(a, "ok \xC3\xA9 ? bad ?? cut ?? overlong ??? surrogate");
    char b[] = "plain";
    assert_int_equal(sentra__utf8_scrub(b), 0);
    assert_string_equal(b, "plain");
}

static void printable(void **state)
{
    assert_true(sentra__printable_ascii("/sentra.v1.SentraService/GetSentra"));
    assert_false(sentra__printable_ascii(""));
    assert_false(sentra__printable_ascii(NULL));
    assert_false(sentra__printable_ascii("a\nb"));
    assert_false(sentra__printable_ascii("\x1b[31m"));
    assert_false(sentra__printable_ascii("caf\xC3\xA9"));
}

/* ---------------------------------------------------------------- pbscan */

typedef struct found {
    char path[8][SENTRA_PBSCAN_MAX_PATH];
    int n;
} found_t;

static void collect(void *arg, const char *path)
{
    found_t *f = arg;
    if (f->n < 8)
        snprintf(f->path[f->n], sizeof f->path[0], "%s", path);
    f->n++;
}

/* Packs m and turns every '#' of the encoding into a NUL: the strings
 * that held '#' now hold NUL, as a client's bytes could. */
static uint8_t *pack_with_nuls(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len + 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    for (size_t i = 0; i < *len; i++)
        if (buf[i] == '#')
            buf[i] = 0;
    return buf;
}

static void nul_in_nested_fields(void **state)
{
    Sentra__V1__PushChangesRequest req = SENTRA__V1__PUSH_CHANGES_REQUEST__INIT;
    Sentra__V1__Mutation m[2], *mp[2];
    Sentra__V1__Sentra s[2];
    Sentra__V1__Figures f[3], *fp[3];
    char *dest[2] = {"MY", "S#"};

    for (int i = 0; i < 2; i++) {
        sentra__v1__mutation__init(&m[i]);
        sentra__v1__sentra__init(&s[i]);
        m[i].sentra = &s[i];
        m[i].mutation_id = i ? "m-2" : "m-1";
        mp[i] = &m[i];
    }
    for (int i = 0; i < 3; i++) {
        sentra__v1__figures__init(&f[i]);
        f[i].year = 2020 + i;
        f[i].capacity_unit = "kg";
        fp[i] = &f[i];
    }
    f[2].capacity_unit = "k#g";
    f[1].export_destinations = dest;
    f[1].n_export_destinations = 2;
    s[1].figures = fp;
    s[1].n_figures = 3;
    s[0].name = "abc#hidden";
    s[1].address = "Jl. Merdeka";
    req.client_id = "app#1";
    req.mutations = mp;
    req.n_mutations = 2;

    size_t len;
    uint8_t *buf = pack_with_nuls(&req.base, &len);
    found_t fd = {.n = 0};
    int n = sentra__pbscan_nul(&sentra__v1__push_changes_request__descriptor, buf, len, NULL,
                               collect, &fd);
    assert_int_equal(n, 4);
    assert_int_equal(fd.n, 4);
    assert_string_equal(fd.path[0], "client_id");
    assert_string_equal(fd.path[1], "mutations[0].sentra.name");
    assert_string_equal(fd.path[2], "mutations[1].sentra.figures[1].export_destinations[1]");
    assert_string_equal(fd.path[3], "mutations[1].sentra.figures[2].capacity_unit");
    /* what protobuf-c makes of it: the strings end at the NUL */
    Sentra__V1__PushChangesRequest *u = sentra__v1__push_changes_request__unpack(NULL, len, buf);
    assert_non_null(u);
    assert_string_equal(u->mutations[0]->sentra->name, "abc");
    sentra__v1__push_changes_request__free_unpacked(u, NULL);
    free(buf);
}

static void strip_names_record_fields(void **state)
{
    Sentra__V1__UpdateSentraRequest req = SENTRA__V1__UPDATE_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
    Sentra__V1__Decree d = SENTRA__V1__DECREE__INIT;
    char *mask[] = {"name", "dec#ree"};

    s.name = "#";
    d.official = "Bupati#";
    s.decree = &d;
    req.sentra = &s;
    req.update_mask = mask;
    req.n_update_mask = 2;
    size_t len;
    uint8_t *buf = pack_with_nuls(&req.base, &len);
    found_t fd = {.n = 0};
    assert_int_equal(sentra__pbscan_nul(&sentra__v1__update_sentra_request__descriptor, buf, len,
                                        "sentra", collect, &fd), 3);
    assert_string_equal(fd.path[0], "name");
    assert_string_equal(fd.path[1], "decree.official");
    assert_string_equal(fd.path[2], "update_mask[1]");
    fd.n = 0;
    assert_int_equal(sentra__pbscan_nul(&sentra__v1__update_sentra_request__descriptor, buf, len,
                                        NULL, collect, &fd), 3);
    assert_string_equal(fd.path[0], "sentra.name");
    free(buf);
}

static void clean_and_malformed(void **state)
{
    Sentra__V1__GetSentraRequest g = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    found_t fd = {.n = 0};
    uint8_t buf[64];

    /* no NUL: nothing */
    g.id = "0b7f3c9e-5d2a-4e8f-9a1b-2c3d4e5f6a7b";
    size_t len = sentra__v1__get_sentra_request__pack(&g, buf);
    assert_int_equal(sentra__pbscan_nul(&sentra__v1__get_sentra_request__descriptor, buf, len,
                                        NULL, collect, &fd), 0);
    /* zero bytes that are not in strings: a zero varint, an empty string,
     * an unknown field holding a NUL, a bytes field */
    const uint8_t zeros[] = {0x0a, 0x00,                 /* id = "" */
                             0x78, 0x00,                 /* field 15 varint 0 (unknown) */
                             0x82, 0x01, 0x02, 'a', 0x00 /* field 16 string "a\0" (unknown) */};
    assert_int_equal(sentra__pbscan_nul(&sentra__v1__get_sentra_request__descriptor, zeros,
                                        sizeof zeros, NULL, collect, &fd), 0);
    assert_int_equal(fd.n, 0);
    /* truncated length, truncated varint, a group: -1, never a read past */
    const uint8_t bad1[] = {0x0a, 0x05, 'a', 0x00};
    const uint8_t bad2[] = {0x0a, 0x00, 0x08, 0xFF};
    const uint8_t bad3[] = {0x0a, 0x00, 0x0b};
    assert_int_equal(sentra__pbscan_nul(&sentra__v1__get_sentra_request__descriptor, bad1,
                                        sizeof bad1, NULL, collect, &fd), -1);
    assert_int_equal(sentra__pbscan_nul(&sentra__v1__get_sentra_request__descriptor, bad2,
                                        sizeof bad2, NULL, collect, &fd), -1);
    assert_int_equal(sentra__pbscan_nul(&sentra__v1__get_sentra_request__descriptor, bad3,
                                        sizeof bad3, NULL, collect, &fd), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clip_on_boundaries),
        cmocka_unit_test(scrub_invalid_bytes),
        cmocka_unit_test(printable),
        cmocka_unit_test(nul_in_nested_fields),
        cmocka_unit_test(strip_names_record_fields),
        cmocka_unit_test(clean_and_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
