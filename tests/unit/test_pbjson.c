/*
 * test_pbjson.c: proto3's JSON mapping (common/pbjson.c): every top-level
 * message of the sentra.v1 protos, filled generically from its descriptor
 * with edge and random values, goes to JSON and back to identical binary;
 * then the exact forms printed (names, int64 strings, enums, bytes,
 * doubles, escapes, invalid UTF-8), what the parser accepts (either name,
 * numbers for int64, enum numbers, URL-safe base64, null) and what it
 * refuses, each with the field named, and the memory bound.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pbjson.h"
#define PB_INCLUDES
#include "pb_messages.h"
#undef PB_INCLUDES

#define PB_MESSAGE(name, desc) { name, &desc },
static const struct {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
} all_messages[] = {
#include "pb_messages.h"
};
#undef PB_MESSAGE
#define N_MESSAGES (sizeof(all_messages) / sizeof(all_messages[0]))

/* ---------------------------------------------------------------- filling */

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char *const strings[] = {
    "Sentra Tapis Lampung",
    "Kerajinan \"Bambu\" \\ Way Kanan",
    "tab\there, newline\nthere, bell\x07",
    "UTF-8: é ü 中文 😀",
    "<img src=x onerror=alert(1)>",
    "18.71",
};

static const double doubles[] = { 0.1, -5.4297, 105.2621, 1e300, -2.5e-300, 5e-324, 123456789.123,
                                  0.7397260273972602, 1.0 / 3.0, INFINITY, -INFINITY };

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static ProtobufCMessage *fill(const ProtobufCMessageDescriptor *d, int depth, int edge);

/* One value of field f at p: edge != 0 takes the extremes of its type. */
static void fill_value(const ProtobufCFieldDescriptor *f, void *p, int depth, int edge)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)p = edge ? (rnd() & 1 ? INT32_MIN : INT32_MAX) : (int32_t)(rnd() % 20001) - 10000;
        break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)p = edge ? UINT32_MAX : (uint32_t)rnd();
        break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)p = edge ? (rnd() & 1 ? INT64_MIN : INT64_MAX) : (int64_t)rnd();
        break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)p = edge ? UINT64_MAX : rnd();
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)p = (float)doubles[rnd() % 3];
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)p = edge ? doubles[9 + rnd() % 2] : doubles[rnd() % 9];
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)p = 1;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        /* A named value other than the default, or (edge) one with no name,
         * which prints as a number. */
        *(int *)p = edge ? 1000 + (int)(rnd() % 10) : ed->values[ed->n_values > 1 ? 1 + rnd() % (ed->n_values - 1) : 0].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        *(char **)p = strdup(strings[rnd() % (sizeof(strings) / sizeof(strings[0]))]);
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = p;
        b->len = 1 + rnd() % 20;
        b->data = malloc(b->len);
        for (size_t i = 0; i < b->len; i++)
            b->data[i] = (uint8_t)rnd();
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)p = depth < 3 ? fill(f->descriptor, depth + 1, edge) : NULL;
        break;
    }
}

/* A message of type d with every field set (repeated fields 1-3 long),
 * nested messages three deep. Free with protobuf_c_message_free_unpacked. */
static ProtobufCMessage *fill(const ProtobufCMessageDescriptor *d, int depth, int edge)
{
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    d->message_init(m);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *p = (char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= 3)
                continue;              /* no NULL elements: the list stays empty */
            size_t n = 1 + rnd() % 3, sz = type_size(f->type);
            char *items = calloc(n, sz);
            for (size_t k = 0; k < n; k++)
                fill_value(f, items + k * sz, depth, edge);
            *(void **)p = items;
            *(size_t *)((char *)m + f->quantifier_offset) = n;
            continue;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= 3)
            continue;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* The members of a oneof share their storage: set one of them
             * (a random one; the last when none was chosen before), never
             * one over another (what the first held would leak). */
            uint32_t *which = (uint32_t *)((char *)m + f->quantifier_offset);
            int last = 1;
            for (unsigned j = i + 1; j < d->n_fields; j++)
                if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    d->fields[j].quantifier_offset == f->quantifier_offset)
                    last = 0;
            if (*which != 0 || (!last && rnd() % 2 == 0))
                continue;
        }
        fill_value(f, p, depth, edge);
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
        else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                 f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
            *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
    }
    return m;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len ? *len : 1);
    protobuf_c_message_pack(m, b);
    return b;
}

/* m -> JSON -> message -> binary equals m's binary, and the JSON printed
 * again is the same text. */
static void roundtrip(const ProtobufCMessage *m, unsigned flags)
{
    size_t alen, blen, jlen, j2len;
    uint8_t *a = pack(m, &alen);
    char *json = pbjson_encode(m, flags, &jlen);
    char err[512] = "";
    ProtobufCMessage *back = pbjson_decode(m->descriptor, json, jlen, 64 << 20, err, sizeof(err));
    if (back == NULL)
        fail_msg("%s: %s\nJSON: %s", m->descriptor->name, err, json);
    uint8_t *b = pack(back, &blen);
    if (alen != blen || memcmp(a, b, alen) != 0)
        fail_msg("%s: binary differs after JSON (%zu vs %zu bytes)\nJSON: %s", m->descriptor->name, alen,
                 blen, json);
    char *json2 = pbjson_encode(back, flags, &j2len);
    assert_string_equal(json, json2);
    free(json2);
    free(b);
    protobuf_c_message_free_unpacked(back, NULL);
    free(json);
    free(a);
}

static void test_every_message_roundtrips(void **state)
{
    (void)state;
    assert_true(N_MESSAGES >= 40);
    for (size_t i = 0; i < N_MESSAGES; i++) {
        const ProtobufCMessageDescriptor *d = all_messages[i].desc;
        assert_string_equal(d->short_name, all_messages[i].name);
        for (int round = 0; round < 20; round++) {
            ProtobufCMessage *m = fill(d, 0, round % 4 == 3);
            roundtrip(m, 0);
            roundtrip(m, PBJSON_PROTO_NAMES);
            roundtrip(m, PBJSON_EMIT_DEFAULTS);
            protobuf_c_message_free_unpacked(m, NULL);
        }
        /* The empty message: "{}" and back. */
        ProtobufCMessage *e = calloc(1, d->sizeof_message);
        d->message_init(e);
        char *json = pbjson_encode(e, 0, NULL);
        assert_string_equal(json, "{}");
        free(json);
        roundtrip(e, 0);
        roundtrip(e, PBJSON_EMIT_DEFAULTS);
        free(e);
    }
}

/* ---------------------------------------------------------------- output forms */

static Sentra__V1__Sentra *sample(void)
{
    static Sentra__V1__GeoPoint loc = SENTRA__V1__GEO_POINT__INIT;
    static Sentra__V1__Figures fig = SENTRA__V1__FIGURES__INIT;
    static Sentra__V1__Figures *figs[1] = { &fig };
    static Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
    static char *dest[2] = { "JP", "SG" };
    loc.latitude = -5.4297;
    loc.longitude = 105.2621;
    fig.year = 2024;
    fig.business_units = 12;
    fig.workers_female = 31;
    fig.n_export_destinations = 2;
    fig.export_destinations = dest;
    s.id = "3f1c";
    s.regency_code = "18.71";
    s.location = &loc;
    s.status = SENTRA__V1__STATUS__STATUS_DESIGNATED;
    s.n_figures = 1;
    s.figures = figs;
    s.version = 3;
    s.created_at_ms = -1;
    return &s;
}

static void test_forms(void **state)
{
    (void)state;
    char *j = pbjson_encode(&sample()->base, 0, NULL);
    assert_string_equal(j, "{\"id\":\"3f1c\",\"regencyCode\":\"18.71\","
                           "\"location\":{\"latitude\":-5.4297,\"longitude\":105.2621},"
                           "\"status\":\"STATUS_DESIGNATED\","
                           "\"figures\":[{\"year\":2024,\"businessUnits\":\"12\",\"workersFemale\":\"31\","
                           "\"exportDestinations\":[\"JP\",\"SG\"]}],"
                           "\"version\":\"3\",\"createdAtMs\":\"-1\"}");
    free(j);
    j = pbjson_encode(&sample()->base, PBJSON_PROTO_NAMES, NULL);
    assert_non_null(strstr(j, "\"regency_code\":\"18.71\""));
    assert_non_null(strstr(j, "\"business_units\":\"12\""));
    assert_null(strstr(j, "regencyCode"));
    free(j);

    Sentra__V1__GetSentraRequest g = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    j = pbjson_encode(&g.base, PBJSON_EMIT_DEFAULTS, NULL);
    assert_string_equal(j, "{\"id\":\"\"}");
    free(j);

    Sentra__V1__ListRegionsRequest lr = SENTRA__V1__LIST_REGIONS_REQUEST__INIT;
    j = pbjson_encode(&lr.base, PBJSON_EMIT_DEFAULTS, NULL);
    assert_string_equal(j, "{\"parentCode\":\"\",\"level\":\"REGION_LEVEL_UNSPECIFIED\",\"pageSize\":0,\"pageToken\":\"\"}");
    free(j);
}

static void test_strings_and_numbers(void **state)
{
    (void)state;
    Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
    s.name = "q\"\\\n\x01 a\xff" "b \xc3\xa9 \xed\xa0\x80";  /* bad byte, é, a surrogate */
    char *j = pbjson_encode(&s.base, 0, NULL);
    assert_string_equal(j, "{\"name\":\"q\\\"\\\\\\n\\u0001 a\\ufffdb \xc3\xa9 \\ufffd\\ufffd\\ufffd\"}");
    json_t *parsed = json_loads(j, 0, NULL);
    assert_non_null(parsed); /* valid JSON whatever the bytes were */
    json_decref(parsed);
    free(j);

    s.name = "";
    s.version = INT64_MIN;
    j = pbjson_encode(&s.base, 0, NULL);
    assert_string_equal(j, "{\"version\":\"-9223372036854775808\"}");
    free(j);

    Sentra__V1__StatsRow r = SENTRA__V1__STATS_ROW__INIT;
    r.designation_rate = 0.1;
    j = pbjson_encode(&r.base, 0, NULL);
    assert_string_equal(j, "{\"designationRate\":0.1}");
    free(j);
    r.designation_rate = NAN;
    j = pbjson_encode(&r.base, 0, NULL);
    assert_string_equal(j, "{\"designationRate\":\"NaN\"}");
    free(j);
    r.designation_rate = -INFINITY;
    j = pbjson_encode(&r.base, 0, NULL);
    assert_string_equal(j, "{\"designationRate\":\"-Infinity\"}");
    free(j);

    Sentra__V1__PingRequest p = SENTRA__V1__PING_REQUEST__INIT;
    uint8_t bytes[] = { 0xfb, 0xff };
    p.data.data = bytes;
    p.data.len = 2;
    j = pbjson_encode(&p.base, 0, NULL);
    assert_string_equal(j, "{\"data\":\"+/8=\"}");
    free(j);
}

/* ---------------------------------------------------------------- input */

static ProtobufCMessage *dec(const ProtobufCMessageDescriptor *d, const char *text, char *err, size_t errlen)
{
    return pbjson_decode(d, text, strlen(text), 1 << 20, err, errlen);
}

static void test_accepts(void **state)
{
    (void)state;
    char err[512];
    Sentra__V1__Sentra *s = (Sentra__V1__Sentra *)dec(
        &sentra__v1__sentra__descriptor,
        "{\"regency_code\":\"18.71\",\"version\":3,\"createdAtMs\":\"5\",\"status\":2,"
        "\"sectorGroup\":\"SECTOR_GROUP_FOOD\",\"location\":{\"latitude\":\"-5.5\",\"longitude\":1e2},"
        "\"figures\":[{\"year\":2024.0,\"businessUnits\":\"1e3\"}],\"name\":null,\"decree\":null,"
        "\"kbliVersion\":null,\"contact_name\":null}",
        err, sizeof(err));
    if (s == NULL)
        fail_msg("%s", err);
    assert_string_equal(s->regency_code, "18.71");
    assert_int_equal(s->version, 3);
    assert_int_equal(s->created_at_ms, 5);
    assert_int_equal(s->status, SENTRA__V1__STATUS__STATUS_DESIGNATED);
    assert_int_equal(s->sector_group, SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD);
    assert_true(s->location->latitude == -5.5 && s->location->longitude == 100.0);
    assert_int_equal(s->n_figures, 1);
    assert_int_equal(s->figures[0]->year, 2024);
    assert_int_equal(s->figures[0]->business_units, 1000);
    assert_string_equal(s->name, "");
    assert_null(s->decree);
    sentra__v1__sentra__free_unpacked(s, NULL);

    /* Bytes: URL-safe and unpadded as well as standard. */
    const char *forms[] = { "{\"data\":\"+/8=\"}", "{\"data\":\"-_8\"}", "{\"data\":\"+/8\"}" };
    for (size_t i = 0; i < 3; i++) {
        Sentra__V1__PingRequest *p = (Sentra__V1__PingRequest *)dec(&sentra__v1__ping_request__descriptor,
                                                                     forms[i], err, sizeof(err));
        if (p == NULL)
            fail_msg("%s: %s", forms[i], err);
        assert_int_equal(p->data.len, 2);
        assert_int_equal(p->data.data[0], 0xfb);
        assert_int_equal(p->data.data[1], 0xff);
        sentra__v1__ping_request__free_unpacked(p, NULL);
    }
    /* Large uint32 and int64 values as strings and numbers. */
    Sentra__V1__PullChangesRequest *pr = (Sentra__V1__PullChangesRequest *)dec(
        &sentra__v1__pull_changes_request__descriptor, "{\"waitMs\":\"4294967295\",\"filter\":{\"updatedSinceMs\":9007199254740993}}",
        err, sizeof(err));
    if (pr == NULL)
        fail_msg("%s", err);
    assert_int_equal(pr->wait_ms, 4294967295u);
    assert_true(pr->filter->updated_since_ms == 9007199254740993LL);
    sentra__v1__pull_changes_request__free_unpacked(pr, NULL);
}

/* text for type d is refused with an error containing want. */
static void refused(const ProtobufCMessageDescriptor *d, const char *text, const char *want)
{
    char err[512] = "";
    ProtobufCMessage *m = dec(d, text, err, sizeof(err));
    if (m != NULL)
        fail_msg("accepted: %s", text);
    if (strstr(err, want) == NULL)
        fail_msg("for %s\nwanted \"%s\" in the error, got \"%s\"", text, want, err);
}

static void test_refuses(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *cs = &sentra__v1__create_sentra_request__descriptor;
    refused(cs, "{\"sentra\":{\"figures\":[{\"year\":2024},{\"yearr\":1}]}}",
            "sentra.figures[1]: unknown field \"yearr\" in sentra.v1.Figures");
    refused(cs, "{\"sentra\":{\"name\":5}}", "sentra.name: expected a string, got an integer");
    refused(cs, "{\"sentra\":{\"status\":\"FORMED\"}}", "sentra.status: \"FORMED\" is not a value of enum sentra.v1.Status");
    refused(cs, "{\"sentra\":{\"status\":true}}", "sentra.status: expected a name of enum");
    refused(cs, "{\"sentra\":{\"figures\":{}}}", "sentra.figures: expected an array, got an object");
    refused(cs, "{\"sentra\":{\"figures\":[null]}}", "sentra.figures[0]: null is not allowed");
    refused(cs, "{\"sentra\":{\"figures\":[{\"year\":1.5}]}}", "sentra.figures[0].year: expected an integer, got 1.5");
    refused(cs, "{\"sentra\":{\"figures\":[{\"year\":\"12x\"}]}}", "expected an integer, got the string \"12x\"");
    refused(cs, "{\"sentra\":{\"version\":\"9223372036854775808\"}}", "sentra.version: \"9223372036854775808\" is out of range");
    refused(cs, "{\"sentra\":{\"version\":1e300}}", "too large to be exact");
    refused(cs, "{\"sentra\":{\"deleted\":\"true\"}}", "sentra.deleted: expected true or false, got a string");
    refused(cs, "{\"sentra\":{\"regency_code\":\"a\",\"regencyCode\":\"b\"}}", "sentra.regencyCode: given twice");
    refused(cs, "{\"sentra\":{\"name\":\"a\",\"name\":\"b\"}}", "invalid JSON");
    refused(cs, "{\"sentra\":[]}", "sentra: expected an object, got an array");
    refused(cs, "[]", "expected a JSON object for sentra.v1.CreateSentraRequest, got an array");
    refused(cs, "{\"sentra\":", "invalid JSON at line 1");
    refused(cs, "{\"sentra\":{\"name\":\"a\\u0000b\"}}", "invalid JSON");
    refused(&sentra__v1__list_sentra_request__descriptor, "{\"pageSize\":3000000000}",
            "pageSize: 3000000000 is out of range for this field (-2147483648 to 2147483647)");
    refused(&sentra__v1__pull_changes_request__descriptor, "{\"wait_ms\":-1}", "wait_ms: -1 is out of range");
    refused(&sentra__v1__pull_changes_request__descriptor, "{\"waitMs\":\"-1\"}", "waitMs: -1 is out of range");
    refused(&sentra__v1__ping_request__descriptor, "{\"data\":\"***\"}", "data: not base64");
    refused(&sentra__v1__ping_request__descriptor, "{\"data\":\"QQ=A\"}", "data: not base64");
    refused(&sentra__v1__stats_row__descriptor, "{\"designationRate\":\"fast\"}", "expected a number, got the string");
}

/* A small text that asks for much memory is refused under a bound and
 * taken without one. */
static void test_memory_bound(void **state)
{
    (void)state;
    size_t n = 100000;
    char *text = malloc(3 * n + 32);
    size_t len = (size_t)sprintf(text, "{\"mutations\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(text + len, "%s{}", i ? "," : "");
    len += (size_t)sprintf(text + len, "]}");
    char err[512] = "";
    ProtobufCMessage *m = pbjson_decode(&sentra__v1__push_changes_request__descriptor, text, len, 4 << 20,
                                        err, sizeof(err));
    assert_null(m);
    assert_non_null(strstr(err, "needs more than 4194304 bytes of memory"));

    m = pbjson_decode(&sentra__v1__push_changes_request__descriptor, text, len, 0, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(((Sentra__V1__PushChangesRequest *)m)->n_mutations, n);
    protobuf_c_message_free_unpacked(m, NULL);
    free(text);
}

static void test_base64(void **state)
{
    (void)state;
    char out[16];
    uint8_t in[] = { 'f', 'o', 'o', 'b' };
    assert_int_equal(pbjson_b64_encode(in, 4, out, 0), 8);
    assert_string_equal(out, "Zm9vYg==");
    assert_int_equal(pbjson_b64_encode(in, 4, out, 1), 6);
    assert_string_equal(out, "Zm9vYg");
    uint8_t dec_out[8];
    assert_int_equal(pbjson_b64_decode("Zm9vYg", 6, dec_out), 4);
    assert_memory_equal(dec_out, in, 4);
    assert_int_equal(pbjson_b64_decode("Zm9vY", 5, dec_out), -1);
    assert_int_equal(pbjson_b64_decode("Zm9vYg===", 9, dec_out), -1);
    char name[64];
    assert_string_equal(pbjson_json_name("created_at_ms", name, sizeof(name)), "createdAtMs");
    assert_string_equal(pbjson_json_name("id", name, sizeof(name)), "id");
}


/* ---------------------------------------------------------------- against a reference */

/* The string rule written the plain way, one byte at a time (as pbjson.c
 * did before its output was made faster): controls, '"' and '\\'
 * escaped, valid UTF-8 kept, any other byte U+FFFD. */
static size_t ref_utf8(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

static void ref_string(const char *str, char *out)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str), o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
            out[o++] = '\\';
            out[o++] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
        } else if (c < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else if (c >= 0x80) {
            size_t seq = ref_utf8(s + i, n - i);
            if (seq == 0) {
                o += (size_t)sprintf(out + o, "\\ufffd");
            } else {
                memcpy(out + o, s + i, seq);
                o += seq;
                i += seq;
                continue;
            }
        } else {
            out[o++] = (char)c;
        }
        i++;
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* Random strings of every kind of byte (controls, quotes, ASCII, valid and
 * broken UTF-8: truncated, overlong, surrogates, above U+10FFFF) print
 * exactly as the reference says; so do integers at their extremes, as
 * printf prints them. */
static void test_output_matches_reference(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "a", "Sentra ", "\"", "\\", "\n", "\r", "\t", "\b", "\f", "\x01", "\x1f", "\x7f", " ",
        "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xff", "\x80", "\xc3", "\xe4\xb8",
        "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
        "\xf0\x9f\x98", "0123456789", "<img src=x>", "Kerajinan Tapis Lampung ",
    };
    char in[512], want[4096];
    for (int round = 0; round < 20000; round++) {
        size_t n = 0, parts = rnd() % 12;
        in[0] = '\0';
        for (size_t k = 0; k < parts; k++) {
            const char *p = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
            memcpy(in + n, p, strlen(p) + 1);
            n += strlen(p);
        }
        ref_string(in, want);
        pbjson_buf_t b = { 0 };
        pbjson_buf_string(&b, in);
        if (strcmp(b.data, want) != 0)
            fail_msg("string %zu bytes: got %s, want %s", n, b.data, want);
        assert_int_equal(b.len, strlen(want));
        free(b.data);
    }

    static const int64_t i64[] = { 0, 1, -1, 9, 10, -10, 99, 100, 123456789, INT32_MIN, INT32_MAX,
                                   INT64_MIN, INT64_MAX, INT64_MIN + 1, 1000000000000000000ll };
    for (size_t i = 0; i < sizeof(i64) / sizeof(i64[0]); i++) {
        Sentra__V1__Figures f = SENTRA__V1__FIGURES__INIT;
        f.business_units = i64[i];
        f.year = (int32_t)(i64[i] >= INT32_MIN && i64[i] <= INT32_MAX ? i64[i] : 7);
        snprintf(want, sizeof(want), "{\"year\":%d,\"businessUnits\":\"%lld\"}", (int)f.year,
                 (long long)f.business_units);
        if (f.year == 0)
            snprintf(want, sizeof(want), "{\"businessUnits\":\"%lld\"}", (long long)f.business_units);
        if (f.business_units == 0)
            snprintf(want, sizeof(want), "{}");
        char *j = pbjson_encode(&f.base, 0, NULL);
        assert_string_equal(j, want);
        free(j);
    }
    /* Every field of every message, printed with its defaults, under the
     * name pbjson_json_name gives it (protoc's ToJsonName). */
    for (size_t i = 0; i < N_MESSAGES; i++) {
        const ProtobufCMessageDescriptor *d = all_messages[i].desc;
        ProtobufCMessage *m = calloc(1, d->sizeof_message);
        d->message_init(m);
        char *text = pbjson_encode(m, PBJSON_EMIT_DEFAULTS, NULL);
        json_t *doc = json_loads(text, 0, NULL);
        assert_non_null(doc);
        for (unsigned k = 0; k < d->n_fields; k++) {
            char name[128];
            pbjson_json_name(d->fields[k].name, name, sizeof(name));
            if ((d->fields[k].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || d->fields[k].type == PROTOBUF_C_TYPE_MESSAGE)
                continue;   /* printed only when set */
            if (json_object_get(doc, name) == NULL)
                fail_msg("%s: field %s not printed as %s: %s", d->name, d->fields[k].name, name, text);
        }
        json_decref(doc);
        free(text);
        free(m);
    }

    Sentra__V1__Response r = SENTRA__V1__RESPONSE__INIT;
    r.current_version = INT64_MIN;
    char *j = pbjson_encode(&r.base, 0, NULL);
    assert_string_equal(j, "{\"currentVersion\":\"-9223372036854775808\"}");
    free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_message_roundtrips),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_strings_and_numbers),
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_output_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
