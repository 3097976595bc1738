/*
 * test_connect.c: the Connect protocol's rules (server/transport/connect.c)
 * without a socket: which paths are procedures, what a POST or GET becomes
 * (codec, payload, timeout, metadata) or why it is refused, the error JSON
 * and its details, the HTTP status of every code, ETags and If-None-Match,
 * and the CORS allow-list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "connect.h"
#include "methods.h"
#include "pbjson.h"
#include "server.h"

#define HDR(k, v) { k, v }

static void test_procedures(void **state)
{
    (void)state;
    const char *yes[] = { "/sentra.v1.SentraService/GetSentra", "/grpc.health.v1.Health/Check", "/a.B/C" };
    const char *no[] = { "/", "/index.html", "/favicon.ico", "/assets/app.js", "/sentra.v1.X/", "/Svc/Method",
                         "/sentra.v1.X/Get/More", "/sentra.v1.X/Get.x", "/a%2eB/C", "//x" };
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
        assert_true(connect_is_procedure(yes[i], strlen(yes[i])));
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        if (connect_is_procedure(no[i], strlen(no[i])))
            fail_msg("%s taken for a procedure", no[i]);
}

static int prep(connect_call_t *cc, const char *method, const char *path, const char *query,
                const call_md_t *h, size_t nh, const char *body, connect_reply_t *r)
{
    memset(r, 0, sizeof(*r));
    return connect_prepare(cc, method, path, strlen(path), query, h, nh, (const uint8_t *)body,
                           body ? strlen(body) : 0, r);
}

static void test_post(void **state)
{
    (void)state;
    connect_call_t cc;
    connect_reply_t r;
    const char *path = "/sentra.v1.SentraService/GetSentra";
    call_md_t h[] = { HDR("content-type", "application/json; charset=UTF-8"), HDR("authorization", "Bearer t"),
                      HDR("connect-timeout-ms", "2500"), HDR("x-idempotency-key", "k1"),
                      HDR("user-agent", "curl") };
    assert_int_equal(prep(&cc, "POST", path, NULL, h, 5, "{\"id\":\"x\"}", &r), 0);
    assert_int_equal(cc.codec, CALL_CODEC_JSON);
    assert_int_equal(cc.req.codec, CALL_CODEC_JSON);
    assert_int_equal(cc.req.len, 10);
    assert_int_equal(cc.req.timeout_ms, 2500);
    assert_string_equal(cc.req.method, path);
    assert_int_equal(cc.req.n_md, 2); /* authorization and the key; nothing else */
    assert_string_equal(cc.req.md[0].key, "authorization");
    assert_string_equal(cc.req.md[1].key, "x-idempotency-key");
    connect_call_free(&cc);

    /* An empty JSON body is the empty message. */
    assert_int_equal(prep(&cc, "POST", path, NULL, h, 1, "", &r), 0);
    assert_int_equal(cc.req.len, 2);
    assert_memory_equal(cc.req.payload, "{}", 2);
    connect_call_free(&cc);

    call_md_t hp[] = { HDR("content-type", "application/proto") };
    assert_int_equal(prep(&cc, "POST", path, NULL, hp, 1, "\x0a\x01x", &r), 0);
    assert_int_equal(cc.codec, CALL_CODEC_PROTO);
    connect_call_free(&cc);

    /* Refusals, each with its status. */
    const struct {
        const char *method, *ct, *extra_k, *extra_v;
        int status;
    } bad[] = {
        { "POST", "text/plain", NULL, NULL, 415 },
        { "POST", "application/json; charset=latin1", NULL, NULL, 415 },
        { "POST", "application/grpc", NULL, NULL, 415 },
        { "POST", "application/jsonx", NULL, NULL, 415 },
        { "POST", NULL, NULL, NULL, 415 },
        { "PUT", "application/json", NULL, NULL, 405 },
        { "POST", "application/json", "connect-timeout-ms", "12345678901", 400 },
        { "POST", "application/json", "connect-timeout-ms", "-1", 400 },
        { "POST", "application/json", "connect-protocol-version", "2", 400 },
        { "POST", "application/json", "content-encoding", "gzip", 501 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        call_md_t hb[2];
        size_t n = 0;
        if (bad[i].ct)
            hb[n++] = (call_md_t)HDR("content-type", bad[i].ct);
        if (bad[i].extra_k)
            hb[n++] = (call_md_t)HDR(bad[i].extra_k, bad[i].extra_v);
        if (prep(&cc, bad[i].method, path, NULL, hb, n, "{}", &r) == 0)
            fail_msg("case %zu accepted", i);
        if (r.status != bad[i].status)
            fail_msg("case %zu: status %d, wanted %d", i, r.status, bad[i].status);
        if (r.status == 415)
            assert_non_null(r.accept_post);
        connect_reply_free(&r);
        connect_call_free(&cc);
    }
}

static void test_get(void **state)
{
    (void)state;
    connect_call_t cc;
    connect_reply_t r;
    const char *path = "/sentra.v1.StatsService/GetStatistics";
    assert_int_equal(prep(&cc, "GET", path, "encoding=json&message=%7B%22reportingYear%22%3A2024%7D&connect=v1",
                          NULL, 0, NULL, &r), 0);
    assert_int_equal(cc.codec, CALL_CODEC_JSON);
    assert_int_equal(cc.req.len, strlen("{\"reportingYear\":2024}"));
    assert_memory_equal(cc.req.payload, "{\"reportingYear\":2024}", cc.req.len);
    assert_true(cc.is_get);
    connect_call_free(&cc);

    /* '+' is a space in a query; base64=1 takes URL-safe base64 (and a
     * '+' of standard base64 that was not escaped). */
    assert_int_equal(prep(&cc, "GET", path, "message=%7B+%7D&encoding=json", NULL, 0, NULL, &r), 0);
    assert_memory_equal(cc.req.payload, "{ }", 3);
    connect_call_free(&cc);
    assert_int_equal(prep(&cc, "GET", path, "encoding=proto&base64=1&message=GOg-", NULL, 0, NULL, &r), 0);
    assert_int_equal(cc.req.len, 3);
    assert_memory_equal(cc.req.payload, "\x18\xe8\x3e", 3);
    connect_call_free(&cc);
    assert_int_equal(prep(&cc, "GET", path, "encoding=proto&base64=1&message=GOg+", NULL, 0, NULL, &r), 0);
    assert_memory_equal(cc.req.payload, "\x18\xe8\x3e", 3);
    connect_call_free(&cc);

    const struct {
        const char *path, *query;
        int status;
    } bad[] = {
        { "/sentra.v1.SentraService/CreateSentra", "encoding=json&message=%7B%7D", 405 },
        { "/sentra.v1.TokenService/RevokeToken", "encoding=json&message=%7B%7D", 405 },
        { "/sentra.v1.SentraService/GetSentra", "message=%7B%7D", 400 },
        { "/sentra.v1.SentraService/GetSentra", "encoding=xml&message=%7B%7D", 415 },
        { "/sentra.v1.SentraService/GetSentra", "encoding=json&message=%7", 400 },
        { "/sentra.v1.SentraService/GetSentra", "encoding=proto&base64=1&message=***", 400 },
        { "/sentra.v1.SentraService/GetSentra", "encoding=json&compression=gzip&message=%7B%7D", 501 },
        { "/sentra.v1.SentraService/GetSentra", "encoding=json&connect=v2&message=%7B%7D", 400 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (prep(&cc, "GET", bad[i].path, bad[i].query, NULL, 0, NULL, &r) == 0)
            fail_msg("case %zu accepted", i);
        if (r.status != bad[i].status)
            fail_msg("case %zu: status %d, wanted %d", i, r.status, bad[i].status);
        connect_reply_free(&r);
        connect_call_free(&cc);
    }
}

static void test_stream_requests(void **state)
{
    (void)state;
    connect_call_t cc;
    connect_reply_t r;
    const char *watch = "/grpc.health.v1.Health/Watch";
    call_md_t hj[] = { HDR("content-type", "application/connect+json") };
    assert_int_equal(prep(&cc, "POST", watch, NULL, hj, 1, "\0\0\0\0\x02{}", &r), -1); /* strlen stops at 0 */
    connect_reply_free(&r);
    connect_call_free(&cc);
    memset(&r, 0, sizeof(r));
    static const uint8_t env[] = { 0, 0, 0, 0, 2, '{', '}' };
    assert_int_equal(connect_prepare(&cc, "POST", watch, strlen(watch), NULL, hj, 1, env, sizeof(env), &r), 0);
    assert_true(cc.stream);
    assert_int_equal(cc.codec, CALL_CODEC_JSON);
    assert_int_equal(cc.req.len, 2);
    assert_memory_equal(cc.req.payload, "{}", 2);
    assert_string_equal(connect_content_type(&cc), "application/connect+json");
    connect_call_free(&cc);

    /* Refused inside the stream: 200 and an end-of-stream envelope. */
    static const uint8_t compressed[] = { 1, 0, 0, 0, 2, '{', '}' };
    assert_int_equal(connect_prepare(&cc, "POST", watch, strlen(watch), NULL, hj, 1, compressed,
                                     sizeof(compressed), &r), -1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body[0], 2);
    assert_non_null(memmem(r.body, r.len, "\"unimplemented\"", 15));
    connect_reply_free(&r);
    connect_call_free(&cc);

    /* The wrong kind of content type for the method: 415 both ways. */
    call_md_t hu[] = { HDR("content-type", "application/json") };
    assert_int_equal(connect_prepare(&cc, "POST", watch, strlen(watch), NULL, hu, 1, env, sizeof(env), &r), -1);
    assert_int_equal(r.status, 415);
    connect_reply_free(&r);
    connect_call_free(&cc);
    const char *ping = "/sentra.v1.SystemService/Ping";
    assert_int_equal(connect_prepare(&cc, "POST", ping, strlen(ping), NULL, hj, 1, env, sizeof(env), &r), -1);
    assert_int_equal(r.status, 415);
    connect_reply_free(&r);
    connect_call_free(&cc);

    /* Envelopes out: a message, then the end with the error as JSON. */
    connect_call_t out = { .codec = CALL_CODEC_JSON, .stream = 1 };
    pbjson_buf_t b = { 0 };
    Sentra__V1__PingResponse pr = SENTRA__V1__PING_RESPONSE__INIT;
    connect_stream_message(&out, &pr.base, &b);
    call_answer_t a = { .code = SENTRA_DEADLINE_EXCEEDED, .message = "deadline exceeded" };
    connect_stream_end(&out, &a, &b);
    static const char want[] = "\0\0\0\0\x02{}\x02\0\0\0\x44{\"error\":{\"code\":\"deadline_exceeded\","
                               "\"message\":\"deadline exceeded\"}}";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, sizeof(want) - 1);
    free(b.data);
}

static json_t *reply_json(const connect_reply_t *r)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)r->body, r->len, 0, &e);
    if (j == NULL)
        fail_msg("not JSON: %.*s (%s)", (int)r->len, (const char *)r->body, e.text);
    return j;
}

static void test_errors(void **state)
{
    (void)state;
    static const int want[17] = { 200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401 };
    for (int code = 0; code <= 16; code++)
        assert_int_equal(connect_http_status(code), want[code]);
    assert_string_equal(connect_code_name(SENTRA_CANCELLED), "canceled");
    assert_string_equal(connect_code_name(SENTRA_INVALID_ARGUMENT), "invalid_argument");

    connect_call_t cc = { .codec = CALL_CODEC_JSON };
    connect_reply_t r;
    violations_t v = { 0 };
    violations_add(&v, "name", "is required");
    violations_add(&v, "figures[0].year", "must be \"%s\"", "2024");
    call_answer_t a = { .code = SENTRA_INVALID_ARGUMENT, .message = "2 invalid fields\xff", .violations = &v };
    connect_answer(&cc, &a, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.content_type, "application/json");
    json_t *j = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "code")), "invalid_argument");
    assert_string_equal(json_string_value(json_object_get(j, "message")), "2 invalid fields\xef\xbf\xbd");
    json_t *d = json_array_get(json_object_get(j, "details"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "type")), "google.rpc.BadRequest");
    /* value: the BadRequest, base64 without padding; field 1 repeated. */
    const char *val = json_string_value(json_object_get(d, "value"));
    assert_null(strchr(val, '='));
    uint8_t bin[512];
    long n = pbjson_b64_decode(val, strlen(val), bin);
    assert_true(n > 0);
    assert_int_equal(bin[0], 0x0a);
    Sentra__V1__FieldViolation *fv = sentra__v1__field_violation__unpack(NULL, bin[1], bin + 2);
    assert_non_null(fv);
    assert_string_equal(fv->field, "name");
    sentra__v1__field_violation__free_unpacked(fv, NULL);
    json_t *dbg = json_object_get(json_object_get(d, "debug"), "fieldViolations");
    assert_int_equal(json_array_size(dbg), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(dbg, 1), "description")),
                        "must be \"2024\"");
    json_decref(j);
    connect_reply_free(&r);
    violations_free(&v);

    call_answer_t c = { .code = SENTRA_ABORTED, .message = "version conflict", .current_version = 7 };
    connect_answer(&cc, &c, &r);
    assert_int_equal(r.status, 409);
    j = reply_json(&r);
    d = json_array_get(json_object_get(j, "details"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "type")), "google.rpc.ErrorInfo");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(d, "debug"), "metadata"),
                                                          "current_version")), "7");
    json_decref(j);
    connect_reply_free(&r);

    /* OK in binary. */
    Sentra__V1__PingResponse pr = SENTRA__V1__PING_RESPONSE__INIT;
    pr.data.data = (uint8_t *)"hi";
    pr.data.len = 2;
    connect_call_t cp = { .codec = CALL_CODEC_PROTO };
    call_answer_t ok = { .code = SENTRA_OK, .payload = &pr.base };
    connect_answer(&cp, &ok, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/proto");
    assert_int_equal(r.len, 4);
    assert_memory_equal(r.body, "\x0a\x02hi", 4);
    assert_string_equal(r.cache_control, "no-store");
    connect_reply_free(&r);
}

static void test_etags(void **state)
{
    (void)state;
    server_t srv;
    memset(&srv, 0, sizeof(srv));
    srv.instance = 0x1234;
    call_t call;
    memset(&call, 0, sizeof(call));
    call.srv = &srv;
    call.generation = 5;
    snprintf(call.auth.token_id, sizeof(call.auth.token_id), "tok-a");

    connect_call_t cc;
    connect_reply_t r;
    const char *path = "/sentra.v1.SentraService/GetSentra", *q = "encoding=json&message=%7B%22id%22%3A%22x%22%7D";
    assert_int_equal(prep(&cc, "GET", path, q, NULL, 0, NULL, &r), 0);
    assert_int_equal(connect_ready(&cc, &call, &r), 0);
    char tag[96];
    snprintf(tag, sizeof(tag), "%s", cc.etag);
    assert_true(strncmp(tag, "\"0000000000001234-5-", 20) == 0);
    connect_call_free(&cc);

    /* The same request, token and generation: the same tag, and a 304. */
    char inm[200];
    snprintf(inm, sizeof(inm), "\"other\", W/%s", tag);
    call_md_t h[] = { HDR("if-none-match", inm) };
    assert_int_equal(prep(&cc, "GET", path, q, h, 1, NULL, &r), 0);
    assert_int_equal(connect_ready(&cc, &call, &r), 1);
    assert_int_equal(r.status, 304);
    assert_string_equal(r.etag, tag);
    connect_reply_free(&r);
    connect_call_free(&cc);

    /* Another generation, token or request: another tag, no 304. */
    call.generation = 6;
    assert_int_equal(prep(&cc, "GET", path, q, h, 1, NULL, &r), 0);
    assert_int_equal(connect_ready(&cc, &call, &r), 0);
    assert_string_not_equal(cc.etag, tag);
    connect_call_free(&cc);
    call.generation = 5;
    snprintf(call.auth.token_id, sizeof(call.auth.token_id), "tok-b");
    assert_int_equal(prep(&cc, "GET", path, q, h, 1, NULL, &r), 0);
    assert_int_equal(connect_ready(&cc, &call, &r), 0);
    connect_call_free(&cc);
    snprintf(call.auth.token_id, sizeof(call.auth.token_id), "tok-a");
    assert_int_equal(prep(&cc, "GET", path, "encoding=json&message=%7B%22id%22%3A%22y%22%7D", h, 1, NULL, &r), 0);
    assert_int_equal(connect_ready(&cc, &call, &r), 0);
    connect_call_free(&cc);

    /* No tags for POSTs, nor for methods whose data change unnotified. */
    call_md_t hj[] = { HDR("content-type", "application/json"), HDR("if-none-match", "*") };
    assert_int_equal(prep(&cc, "POST", path, NULL, hj, 2, "{}", &r), 0);
    assert_int_equal(connect_ready(&cc, &call, &r), 0);
    assert_string_equal(cc.etag, "");
    connect_call_free(&cc);
    assert_int_equal(prep(&cc, "GET", "/sentra.v1.SentraService/ListRegions", "encoding=json", hj + 1, 1, NULL, &r), 0);
    assert_int_equal(connect_ready(&cc, &call, &r), 0);
    assert_string_equal(cc.etag, "");
    connect_call_free(&cc);
}

static void test_cors(void **state)
{
    (void)state;
    const char *list = "https://dash.example.go.id, http://localhost:8080";
    assert_true(connect_cors_allowed(list, "https://dash.example.go.id"));
    assert_true(connect_cors_allowed(list, "http://localhost:8080"));
    assert_false(connect_cors_allowed(list, "http://localhost:808"));
    assert_false(connect_cors_allowed(list, "https://dash.example.go.id.evil.com"));
    assert_false(connect_cors_allowed(list, "null"));
    assert_false(connect_cors_allowed(NULL, "http://localhost:8080"));
    assert_false(connect_cors_allowed("", "http://localhost:8080"));
    assert_true(connect_cors_allowed("*", "https://anything.example"));
    assert_false(connect_cors_allowed(list, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_procedures),
        cmocka_unit_test(test_post),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_stream_requests),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_etags),
        cmocka_unit_test(test_cors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
