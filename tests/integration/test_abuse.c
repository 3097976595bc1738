/*
 * test_abuse.c: protocol abuse against a live sentrad (issue 3), through
 * raw sockets: garbage, truncated frames, huge and "negative" lengths,
 * unknown frame types, reserved bits, unknown methods, undecodable
 * payloads, oversize messages, stream ids that do not increase. After each
 * abuse a normal Ping on a NEW connection must succeed: nothing a client
 * sends may hurt the server or other clients.
 *
 * Also: many requests in flight answered in completion order (the debug
 * method SystemService/Sleep, served with --enable-debug); cancel and
 * deadline on a slow request, which must answer promptly AND stop the SQL
 * (pg_stat_activity shows no pg_sleep afterwards); the per-connection cap
 * on requests in flight; SIGTERM during load (requests in flight are
 * answered, a GOAWAY arrives, the server exits 0).
 *
 * The server is started by tests/lib/harness.h with a small maximum frame
 * (64 KiB) and in-flight cap (16) so that the limits can be reached
 * cheaply. Time bounds in here are generous upper limits on "promptly",
 * never performance assertions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "harness.h"
#include "status.h"
#include "sentra/v1/rpc.pb-c.h"
#include "sentra/v1/system.pb-c.h"

#define MAX_FRAME 65536
#define MAX_INFLIGHT 16
#define IO_TIMEOUT_MS 10000

static th_server_t srv;
static int have_server;

/* ---------------------------------------------------------------- helpers */

static int connect_raw(void)
{
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    return fd;
}

static void send_raw_frame(int fd, uint8_t type, uint8_t flags, uint16_t reserved,
                           uint32_t sid, const void *payload, uint32_t len)
{
    uint8_t *buf = malloc(SENTRA_FRAME_HEADER_LEN + (size_t)len);
    assert_non_null(buf);
    sentra_frame_header(buf, type, flags, sid, len);
    buf[6] = (uint8_t)(reserved >> 8);
    buf[7] = (uint8_t)reserved;
    if (len > 0)
        memcpy(buf + SENTRA_FRAME_HEADER_LEN, payload, len);
    th_send_all(fd, buf, SENTRA_FRAME_HEADER_LEN + (size_t)len);
    free(buf);
}

/* A REQUEST frame's payload: the envelope around msg (may be NULL). */
static uint8_t *envelope(const char *method, const ProtobufCMessage *msg, uint32_t timeout_ms,
                         size_t *len)
{
    Sentra__V1__Request r = SENTRA__V1__REQUEST__INIT;
    uint8_t *inner = NULL;
    r.method = (char *)method;
    r.timeout_ms = timeout_ms;
    if (msg != NULL) {
        size_t n = protobuf_c_message_get_packed_size(msg);
        inner = malloc(n + 1);
        assert_non_null(inner);
        protobuf_c_message_pack(msg, inner);
        r.payload.data = inner;
        r.payload.len = n;
    }
    *len = sentra__v1__request__get_packed_size(&r);
    uint8_t *out = malloc(*len + 1);
    assert_non_null(out);
    sentra__v1__request__pack(&r, out);
    free(inner);
    return out;
}

static void send_request(int fd, uint32_t sid, const char *method, const ProtobufCMessage *msg,
                         uint32_t timeout_ms)
{
    size_t len;
    uint8_t *p = envelope(method, msg, timeout_ms, &len);
    send_raw_frame(fd, SENTRA_FRAME_REQUEST, 0, 0, sid, p, (uint32_t)len);
    free(p);
}

static void send_ping_request(int fd, uint32_t sid)
{
    Sentra__V1__PingRequest pr = SENTRA__V1__PING_REQUEST__INIT;
    pr.data.data = (uint8_t *)"abuse";
    pr.data.len = 5;
    send_request(fd, sid, "/sentra.v1.SystemService/Ping", &pr.base, 5000);
}

static void send_sleep(int fd, uint32_t sid, uint32_t ms, uint32_t timeout_ms)
{
    Sentra__V1__SleepRequest sr = SENTRA__V1__SLEEP_REQUEST__INIT;
    sr.ms = ms;
    send_request(fd, sid, "/sentra.v1.SystemService/Sleep", &sr.base, timeout_ms);
}

typedef struct {
    uint8_t type;
    uint32_t sid;
    uint32_t len;
    uint8_t *payload; /* malloc'd */
} rframe_t;

/* Reads one frame. Returns 1, 0 on EOF, -1 on timeout. */
static int read_frame(int fd, rframe_t *f, int timeout_ms)
{
    uint8_t h[SENTRA_FRAME_HEADER_LEN];
    int64_t deadline = th_now_ms() + timeout_ms;
    memset(f, 0, sizeof(*f));
    int r = th_read_full(fd, h, sizeof(h), deadline);
    if (r != 1)
        return r;
    f->len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    f->type = h[4];
    f->sid = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
    assert_true(h[6] == 0 && h[7] == 0);
    assert_true(f->len <= SENTRA_FRAME_DEFAULT_MAX);
    f->payload = malloc(f->len + 1);
    assert_non_null(f->payload);
    r = th_read_full(fd, f->payload, f->len, deadline);
    if (r != 1) {
        free(f->payload);
        f->payload = NULL;
        return r;
    }
    return 1;
}

/* Reads frames, answering the server's keepalive PINGs, until a RESPONSE
 * or GOAWAY; fails on timeout or EOF. */
static void next_frame(int fd, rframe_t *f)
{
    for (;;) {
        int r = read_frame(fd, f, IO_TIMEOUT_MS);
        assert_int_equal(r, 1);
        if (f->type != SENTRA_FRAME_PING)
            return;
        send_raw_frame(fd, SENTRA_FRAME_PONG, 0, 0, 0, f->payload, f->len);
        free(f->payload);
    }
}

/* The status of a RESPONSE frame for stream sid. */
static int expect_response(int fd, uint32_t sid)
{
    rframe_t f;
    next_frame(fd, &f);
    if (f.type != SENTRA_FRAME_RESPONSE)
        fail_msg("expected a RESPONSE for stream %u, got a %s frame", sid,
                 sentra_frame_type_name(f.type));
    assert_int_equal(f.sid, sid);
    Sentra__V1__Response *r = sentra__v1__response__unpack(NULL, f.len, f.payload);
    assert_non_null(r);
    int code = r->code;
    if (code != SENTRA_OK)
        assert_true(r->message != NULL && r->message[0] != '\0');
    sentra__v1__response__free_unpacked(r, NULL);
    free(f.payload);
    return code;
}

/* Expects the connection to end with a GOAWAY (returning its code) and
 * then to be closed by the server; RESPONSE frames before the GOAWAY are
 * allowed (counted in *responses when not NULL). */
static int expect_goaway_close(int fd, int *responses)
{
    rframe_t f;
    int code = -1;
    for (;;) {
        next_frame(fd, &f);
        if (f.type == SENTRA_FRAME_GOAWAY)
            break;
        assert_int_equal(f.type, SENTRA_FRAME_RESPONSE);
        if (responses != NULL)
            (*responses)++;
        free(f.payload);
    }
    Sentra__V1__GoAway *g = sentra__v1__go_away__unpack(NULL, f.len, f.payload);
    assert_non_null(g);
    assert_true(g->reason != NULL && g->reason[0] != '\0');
    code = g->code;
    sentra__v1__go_away__free_unpacked(g, NULL);
    free(f.payload);
    /* Then the server closes: EOF (or a reset), not a timeout. */
    uint8_t b[256];
    int64_t deadline = th_now_ms() + IO_TIMEOUT_MS;
    for (;;) {
        int r = th_read_full(fd, b, 1, deadline);
        assert_int_not_equal(r, -1);
        if (r == 0)
            break;
    }
    return code;
}

/* A normal Ping on a fresh connection succeeds. */
static void ping_new_connection(void)
{
    int fd = connect_raw();
    send_ping_request(fd, 1);
    assert_int_equal(expect_response(fd, 1), SENTRA_OK);
    close(fd);
}

/* Server-side activity of the server's own database: pg_sleep calls. */
static int running_sleeps(void)
{
    PGconn *db = th_db(&srv);
    assert_non_null(db);
    PGresult *res = PQexec(db, "SELECT count(*) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                               "AND state = 'active' AND query LIKE '%pg_sleep%'");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    int n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(db);
    return n;
}

/* Waits (up to 5 s) for no pg_sleep to run; returns how many still run. */
static int wait_no_sleeps(void)
{
    int n = 0;
    for (int i = 0; i < 50; i++) {
        if ((n = running_sleeps()) == 0)
            return 0;
        usleep(100 * 1000);
    }
    return n;
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    if (!th_env_ok()) {
        fprintf(stderr, "test_abuse: run through scripts/run-tests.sh (make test)\n");
        return -1;
    }
    static const char *const args[] = { "--max-frame", "65536", "--max-inflight", "16", NULL };
    if (th_server_start(&srv, "abuse", args) != 0)
        return -1;
    have_server = 1;
    return 0;
}

static int teardown(void **state)
{
    if (have_server)
        th_server_free(&srv);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_ping_works(void **state)
{
    ping_new_connection();
}

static void test_garbage(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
    } inputs[] = {
#define IN(s) { s, sizeof(s) - 1 }
        IN("GET / HTTP/1.1\r\nHost: sentra\r\n\r\n"),
        IN("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00"), /* a TLS ClientHello */
        IN("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
        IN("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), /* type 0 */
        IN("PING\r\n"),
#undef IN
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        int fd = connect_raw();
        th_send_all(fd, inputs[i].bytes, inputs[i].len);
        if (inputs[i].bytes[0] >= 'A' && inputs[i].bytes[0] <= 'Z') {
            /* A request line: the HTTP/1.1 transport answers it (a page,
             * or 400 for "PING"), never the native codec. */
            char line[9];
            assert_int_equal(th_read_full(fd, (uint8_t *)line, 8, th_now_ms() + IO_TIMEOUT_MS), 1);
            line[8] = '\0';
            assert_string_equal(line, "HTTP/1.1");
        } else if (inputs[i].bytes[0] == 0x16) {
            /* A TLS handshake to a server without --tls-cert: closed, with
             * no plaintext answer the client could not read anyway. */
            uint8_t b;
            assert_int_equal(th_read_full(fd, &b, 1, th_now_ms() + IO_TIMEOUT_MS), 0);
        } else if (inputs[i].len >= SENTRA_FRAME_HEADER_LEN) {
            int code = expect_goaway_close(fd, NULL);
            assert_true(code == SENTRA_INVALID_ARGUMENT || code == SENTRA_RESOURCE_EXHAUSTED);
        } else {
            /* Too short to be a header: the server waits for more; the
             * client leaves. */
            shutdown(fd, SHUT_WR);
            uint8_t b;
            assert_int_equal(th_read_full(fd, &b, 1, th_now_ms() + IO_TIMEOUT_MS), 0);
        }
        close(fd);
        ping_new_connection();
    }
}

static void test_truncated(void **state)
{
    /* A header promising 100 bytes, 50 sent, then the client leaves. */
    int fd = connect_raw();
    uint8_t buf[SENTRA_FRAME_HEADER_LEN + 50];
    memset(buf, 'x', sizeof(buf));
    sentra_frame_header(buf, SENTRA_FRAME_REQUEST, 0, 1, 100);
    th_send_all(fd, buf, sizeof(buf));
    shutdown(fd, SHUT_WR);
    uint8_t b;
    assert_int_equal(th_read_full(fd, &b, 1, th_now_ms() + IO_TIMEOUT_MS), 0);
    close(fd);
    ping_new_connection();

    /* Half a header, then an abrupt close. */
    fd = connect_raw();
    th_send_all(fd, buf, 5);
    close(fd);
    ping_new_connection();

    /* A partial frame left hanging on an open connection does not block
     * others. */
    fd = connect_raw();
    th_send_all(fd, buf, sizeof(buf));
    ping_new_connection();
    close(fd);
}

static void test_huge_and_negative_lengths(void **state)
{
    static const uint32_t lengths[] = { MAX_FRAME + 1, 0x7fffffffu, 0x80000000u, 0xffffffffu };
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        int fd = connect_raw();
        uint8_t h[SENTRA_FRAME_HEADER_LEN];
        sentra_frame_header(h, SENTRA_FRAME_REQUEST, 0, 7, lengths[i]);
        th_send_all(fd, h, sizeof(h));
        /* RESOURCE_EXHAUSTED for that stream, then GOAWAY and close. */
        assert_int_equal(expect_response(fd, 7), SENTRA_RESOURCE_EXHAUSTED);
        assert_int_equal(expect_goaway_close(fd, NULL), SENTRA_RESOURCE_EXHAUSTED);
        close(fd);
        ping_new_connection();
    }
}

static void test_unknown_frame_types(void **state)
{
    static const uint8_t types[] = { 0, 7, 8, 100, 255 };
    for (size_t i = 0; i < sizeof(types); i++) {
        int fd = connect_raw();
        send_raw_frame(fd, types[i], 0, 0, 1, "abc", 3);
        assert_int_equal(expect_goaway_close(fd, NULL), SENTRA_INVALID_ARGUMENT);
        close(fd);
        ping_new_connection();
    }
}

static void test_reserved_bits_and_flags(void **state)
{
    static const uint16_t reserved[] = { 1, 0x100, 0xffff };
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        int fd = connect_raw();
        size_t len;
        uint8_t *p = envelope("/sentra.v1.SystemService/Ping", NULL, 0, &len);
        send_raw_frame(fd, SENTRA_FRAME_REQUEST, 0, reserved[i], 1, p, (uint32_t)len);
        free(p);
        assert_int_equal(expect_goaway_close(fd, NULL), SENTRA_INVALID_ARGUMENT);
        close(fd);
        ping_new_connection();
    }
    /* Flags are ignored by receivers: the request is served. */
    int fd = connect_raw();
    size_t len;
    uint8_t *p = envelope("/sentra.v1.SystemService/Ping", NULL, 0, &len);
    send_raw_frame(fd, SENTRA_FRAME_REQUEST, 0xff, 0, 1, p, (uint32_t)len);
    free(p);
    assert_int_equal(expect_response(fd, 1), SENTRA_OK);
    close(fd);
}

static void test_bad_stream_ids(void **state)
{
    /* A REQUEST on stream 0. */
    int fd = connect_raw();
    size_t len;
    uint8_t *p = envelope("/sentra.v1.SystemService/Ping", NULL, 0, &len);
    send_raw_frame(fd, SENTRA_FRAME_REQUEST, 0, 0, 0, p, (uint32_t)len);
    assert_int_equal(expect_goaway_close(fd, NULL), SENTRA_INVALID_ARGUMENT);
    close(fd);
    ping_new_connection();

    /* A PING on a stream. */
    fd = connect_raw();
    send_raw_frame(fd, SENTRA_FRAME_PING, 0, 0, 3, "12345678", 8);
    assert_int_equal(expect_goaway_close(fd, NULL), SENTRA_INVALID_ARGUMENT);
    close(fd);
    ping_new_connection();

    /* The same stream id twice, and then a smaller one. */
    static const uint32_t seconds[] = { 5, 4 };
    for (size_t i = 0; i < 2; i++) {
        fd = connect_raw();
        send_raw_frame(fd, SENTRA_FRAME_REQUEST, 0, 0, 5, p, (uint32_t)len);
        assert_int_equal(expect_response(fd, 5), SENTRA_OK);
        send_raw_frame(fd, SENTRA_FRAME_REQUEST, 0, 0, seconds[i], p, (uint32_t)len);
        int responses = 0;
        assert_int_equal(expect_goaway_close(fd, &responses), SENTRA_INVALID_ARGUMENT);
        assert_int_equal(responses, 0);
        close(fd);
        ping_new_connection();
    }
    free(p);
}

static void test_client_sends_response_and_big_ping(void **state)
{
    int fd = connect_raw();
    send_raw_frame(fd, SENTRA_FRAME_RESPONSE, 0, 0, 1, "", 0);
    assert_int_equal(expect_goaway_close(fd, NULL), SENTRA_INVALID_ARGUMENT);
    close(fd);
    ping_new_connection();

    uint8_t big[SENTRA_PING_MAX_PAYLOAD + 1];
    memset(big, 'p', sizeof(big));
    fd = connect_raw();
    send_raw_frame(fd, SENTRA_FRAME_PING, 0, 0, 0, big, sizeof(big));
    assert_int_equal(expect_goaway_close(fd, NULL), SENTRA_INVALID_ARGUMENT);
    close(fd);
    ping_new_connection();
}

static void test_ping_frame_echoed(void **state)
{
    int fd = connect_raw();
    send_raw_frame(fd, SENTRA_FRAME_PING, 0, 0, 0, "0123456789abcdef", 16);
    rframe_t f;
    assert_int_equal(read_frame(fd, &f, IO_TIMEOUT_MS), 1);
    assert_int_equal(f.type, SENTRA_FRAME_PONG);
    assert_int_equal(f.sid, 0);
    assert_int_equal(f.len, 16);
    assert_memory_equal(f.payload, "0123456789abcdef", 16);
    free(f.payload);
    close(fd);
}

static void test_unknown_method(void **state)
{
    int fd = connect_raw();
    send_request(fd, 1, "/sentra.v1.NoSuchService/Nothing", NULL, 0);
    assert_int_equal(expect_response(fd, 1), SENTRA_UNIMPLEMENTED);
    send_request(fd, 2, "", NULL, 0);
    assert_int_equal(expect_response(fd, 2), SENTRA_UNIMPLEMENTED);
    send_request(fd, 3, "/sentra.v1.SystemService/Ping/", NULL, 0);
    assert_int_equal(expect_response(fd, 3), SENTRA_UNIMPLEMENTED);
    /* The connection is still good. */
    send_ping_request(fd, 4);
    assert_int_equal(expect_response(fd, 4), SENTRA_OK);
    close(fd);
    ping_new_connection();
}

static void test_undecodable_payloads(void **state)
{
    int fd = connect_raw();
    /* An envelope that is not a sentra.v1.Request. */
    send_raw_frame(fd, SENTRA_FRAME_REQUEST, 0, 0, 1, "\xff\xff\xff\xff", 4);
    assert_int_equal(expect_response(fd, 1), SENTRA_INVALID_ARGUMENT);
    /* A good envelope whose payload is not a PingRequest. */
    Sentra__V1__Request r = SENTRA__V1__REQUEST__INIT;
    r.method = "/sentra.v1.SystemService/Ping";
    r.payload.data = (uint8_t *)"\x0a\x7f\x01";  /* field 1, length 127, 1 byte */
    r.payload.len = 3;
    uint8_t buf[128];
    size_t n = sentra__v1__request__pack(&r, buf);
    send_raw_frame(fd, SENTRA_FRAME_REQUEST, 0, 0, 2, buf, (uint32_t)n);
    assert_int_equal(expect_response(fd, 2), SENTRA_INVALID_ARGUMENT);
    /* The connection is still good. */
    send_ping_request(fd, 3);
    assert_int_equal(expect_response(fd, 3), SENTRA_OK);
    close(fd);
    ping_new_connection();
}

static void test_oversize_message(void **state)
{
    /* A whole frame just above the server's maximum (64 KiB here). */
    size_t plen = MAX_FRAME + 100;
    uint8_t *payload = malloc(plen);
    assert_non_null(payload);
    memset(payload, 0x41, plen);
    Sentra__V1__PingRequest pr = SENTRA__V1__PING_REQUEST__INIT;
    pr.data.data = payload;
    pr.data.len = plen;
    int fd = connect_raw();
    send_request(fd, 9, "/sentra.v1.SystemService/Ping", &pr.base, 0);
    free(payload);
    assert_int_equal(expect_response(fd, 9), SENTRA_RESOURCE_EXHAUSTED);
    assert_int_equal(expect_goaway_close(fd, NULL), SENTRA_RESOURCE_EXHAUSTED);
    close(fd);
    ping_new_connection();

    /* Just below the maximum is served. */
    plen = MAX_FRAME - 200;
    payload = calloc(1, plen);
    assert_non_null(payload);
    pr.data.data = payload;
    pr.data.len = plen;
    fd = connect_raw();
    send_request(fd, 1, "/sentra.v1.SystemService/Ping", &pr.base, 0);
    free(payload);
    assert_int_equal(expect_response(fd, 1), SENTRA_OK);
    close(fd);
}

static void test_bytewise_and_batched(void **state)
{
    /* One request dripped byte by byte. */
    size_t len;
    uint8_t *p = envelope("/sentra.v1.SystemService/Ping", NULL, 0, &len);
    uint8_t *frame = malloc(SENTRA_FRAME_HEADER_LEN + len);
    assert_non_null(frame);
    sentra_frame_header(frame, SENTRA_FRAME_REQUEST, 0, 1, (uint32_t)len);
    memcpy(frame + SENTRA_FRAME_HEADER_LEN, p, len);
    int fd = connect_raw();
    for (size_t i = 0; i < SENTRA_FRAME_HEADER_LEN + len; i++) {
        th_send_all(fd, frame + i, 1);
        usleep(1000);
    }
    assert_int_equal(expect_response(fd, 1), SENTRA_OK);

    /* 100 requests in one write: 100 answers. */
    size_t one = SENTRA_FRAME_HEADER_LEN + len;
    uint8_t *batch = malloc(100 * one);
    assert_non_null(batch);
    for (uint32_t i = 0; i < 100; i++) {
        sentra_frame_header(batch + i * one, SENTRA_FRAME_REQUEST, 0, 2 + i, (uint32_t)len);
        memcpy(batch + i * one + SENTRA_FRAME_HEADER_LEN, p, len);
    }
    th_send_all(fd, batch, 100 * one);
    int seen[102] = { 0 };
    for (int i = 0; i < 100; i++) {
        rframe_t f;
        next_frame(fd, &f);
        assert_int_equal(f.type, SENTRA_FRAME_RESPONSE);
        assert_true(f.sid >= 2 && f.sid <= 101);
        assert_int_equal(seen[f.sid], 0);
        seen[f.sid] = 1;
        free(f.payload);
    }
    close(fd);
    free(batch);
    free(frame);
    free(p);
}

static void test_out_of_order_completion(void **state)
{
    int fd = connect_raw();
    /* Three sleeps on three pool connections and a Ping: the answers come
     * as the work completes, not as the requests arrived. */
    send_sleep(fd, 1, 900, 10000);
    send_sleep(fd, 2, 500, 10000);
    send_sleep(fd, 3, 100, 10000);
    send_ping_request(fd, 4);
    uint32_t order[4];
    for (int i = 0; i < 4; i++) {
        rframe_t f;
        next_frame(fd, &f);
        assert_int_equal(f.type, SENTRA_FRAME_RESPONSE);
        Sentra__V1__Response *r = sentra__v1__response__unpack(NULL, f.len, f.payload);
        assert_non_null(r);
        assert_int_equal(r->code, SENTRA_OK);
        sentra__v1__response__free_unpacked(r, NULL);
        order[i] = f.sid;
        free(f.payload);
    }
    assert_int_equal(order[0], 4);
    assert_int_equal(order[1], 3);
    assert_int_equal(order[2], 2);
    assert_int_equal(order[3], 1);
    close(fd);
}

static void test_cancel_stops_sql(void **state)
{
    int fd = connect_raw();
    send_sleep(fd, 1, 30000, 60000);
    /* Let the query reach PostgreSQL. */
    int running = 0;
    for (int i = 0; i < 50 && running == 0; i++) {
        usleep(100 * 1000);
        running = running_sleeps();
    }
    assert_int_equal(running, 1);
    int64_t t0 = th_now_ms();
    send_raw_frame(fd, SENTRA_FRAME_CANCEL, 0, 0, 1, NULL, 0);
    assert_int_equal(expect_response(fd, 1), SENTRA_CANCELLED);
    int64_t took = th_now_ms() - t0;
    assert_true(took < 5000); /* promptly: far below the 30 s sleep */
    assert_int_equal(wait_no_sleeps(), 0);
    /* The connection goes on; a CANCEL for an unknown stream is ignored. */
    send_raw_frame(fd, SENTRA_FRAME_CANCEL, 0, 0, 77, NULL, 0);
    send_ping_request(fd, 2);
    assert_int_equal(expect_response(fd, 2), SENTRA_OK);
    close(fd);
}

static void test_deadline_stops_sql(void **state)
{
    int fd = connect_raw();
    int64_t t0 = th_now_ms();
    send_sleep(fd, 1, 30000, 300);
    assert_int_equal(expect_response(fd, 1), SENTRA_DEADLINE_EXCEEDED);
    int64_t took = th_now_ms() - t0;
    assert_true(took >= 250);
    assert_true(took < 5000);
    assert_int_equal(wait_no_sleeps(), 0);
    close(fd);
    ping_new_connection();
}

static void test_close_stops_sql(void **state)
{
    /* A client that leaves with a request in flight: its SQL stops too. */
    int fd = connect_raw();
    send_sleep(fd, 1, 30000, 60000);
    int running = 0;
    for (int i = 0; i < 50 && running == 0; i++) {
        usleep(100 * 1000);
        running = running_sleeps();
    }
    assert_int_equal(running, 1);
    close(fd);
    assert_int_equal(wait_no_sleeps(), 0);
    ping_new_connection();
}

static void test_inflight_cap(void **state)
{
    int fd = connect_raw();
    for (uint32_t i = 1; i <= MAX_INFLIGHT; i++)
        send_sleep(fd, i, 3000, 10000);
    send_ping_request(fd, MAX_INFLIGHT + 1);
    /* The one above the cap is refused at once. */
    assert_int_equal(expect_response(fd, MAX_INFLIGHT + 1), SENTRA_RESOURCE_EXHAUSTED);
    /* Cancel the rest; each answers CANCELLED; then the connection serves
     * again. */
    for (uint32_t i = 1; i <= MAX_INFLIGHT; i++)
        send_raw_frame(fd, SENTRA_FRAME_CANCEL, 0, 0, i, NULL, 0);
    int cancelled = 0;
    for (uint32_t i = 1; i <= MAX_INFLIGHT; i++) {
        rframe_t f;
        next_frame(fd, &f);
        assert_int_equal(f.type, SENTRA_FRAME_RESPONSE);
        Sentra__V1__Response *r = sentra__v1__response__unpack(NULL, f.len, f.payload);
        assert_non_null(r);
        cancelled += (int)r->code == SENTRA_CANCELLED;
        sentra__v1__response__free_unpacked(r, NULL);
        free(f.payload);
    }
    assert_int_equal(cancelled, MAX_INFLIGHT);
    send_ping_request(fd, MAX_INFLIGHT + 2);
    assert_int_equal(expect_response(fd, MAX_INFLIGHT + 2), SENTRA_OK);
    close(fd);
    assert_int_equal(wait_no_sleeps(), 0);
}

/* Last: it stops the server. */
static void test_sigterm_during_load(void **state)
{
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = connect_raw();
        send_sleep(fds[i], 1, 600, 10000);
        send_ping_request(fds[i], 2);
        assert_int_equal(expect_response(fds[i], 2), SENTRA_OK);
    }
    assert_int_equal(kill(srv.pid, SIGTERM), 0);
    for (int i = 0; i < 4; i++) {
        /* The request in flight is answered OK, a GOAWAY arrives (either
         * order), then the server closes the connection. */
        int ok = 0, goaway = 0;
        while (!(ok && goaway)) {
            rframe_t f;
            next_frame(fds[i], &f);
            if (f.type == SENTRA_FRAME_GOAWAY) {
                goaway = 1;
            } else {
                assert_int_equal(f.type, SENTRA_FRAME_RESPONSE);
                assert_int_equal(f.sid, 1);
                Sentra__V1__Response *r = sentra__v1__response__unpack(NULL, f.len, f.payload);
                assert_non_null(r);
                assert_int_equal(r->code, SENTRA_OK);
                sentra__v1__response__free_unpacked(r, NULL);
                ok = 1;
            }
            free(f.payload);
        }
        uint8_t b;
        assert_int_equal(th_read_full(fds[i], &b, 1, th_now_ms() + IO_TIMEOUT_MS), 0);
        close(fds[i]);
    }
    /* It exits by itself, with status 0. */
    int status = -1;
    for (int i = 0; i < 100; i++) {
        pid_t w = waitpid(srv.pid, &status, WNOHANG);
        if (w == srv.pid)
            break;
        usleep(100 * 1000);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    srv.pid = 0;
    srv.port = 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_works),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_huge_and_negative_lengths),
        cmocka_unit_test(test_unknown_frame_types),
        cmocka_unit_test(test_reserved_bits_and_flags),
        cmocka_unit_test(test_bad_stream_ids),
        cmocka_unit_test(test_client_sends_response_and_big_ping),
        cmocka_unit_test(test_ping_frame_echoed),
        cmocka_unit_test(test_unknown_method),
        cmocka_unit_test(test_undecodable_payloads),
        cmocka_unit_test(test_oversize_message),
        cmocka_unit_test(test_bytewise_and_batched),
        cmocka_unit_test(test_out_of_order_completion),
        cmocka_unit_test(test_cancel_stops_sql),
        cmocka_unit_test(test_deadline_stops_sql),
        cmocka_unit_test(test_close_stops_sql),
        cmocka_unit_test(test_inflight_cap),
        cmocka_unit_test(test_sigterm_during_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
