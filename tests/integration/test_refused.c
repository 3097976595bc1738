/*
 * test_refused.c: a connection refused before it chose a protocol (over
 * --max-connections; conn_accept, transport/refuse.c) is answered in the
 * protocol the client speaks, read here byte by byte over raw sockets:
 *
 *   - native: a GOAWAY frame, RESOURCE_EXHAUSTED "too many connections";
 *   - HTTP/2: the server's SETTINGS, then GOAWAY naming no stream
 *     (last_stream_id 0, NO_ERROR, the reason as debug data), a second
 *     after it connected (gRPC clients connect again at once after it);
 *   - HTTP/1.1: 503 Service Unavailable with Connection: close;
 *   - a client that says nothing: closed within a couple of seconds,
 *     without a byte.
 *
 * Each ends with the server closing. Once the connection that held the
 * only place closes, clients are served again. (tests/integration/
 * test_refused.sh asks the same of curl, nghttp, grpcio and sentra-cli.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>

#include "wire.h"

static th_server_t srv;
static int have_server;
static int holder = -1;                 /* the connection that holds the one place */

/* A native connection that the server serves (its Ping answered): tried
 * again while the server still counts a connection just closed. Returns
 * the fd, or -1 after 10 s. */
static int connect_served(void)
{
    int64_t end = th_now_ms() + 10000;
    while (th_now_ms() < end) {
        int fd = th_connect_raw(&srv);
        if (fd < 0)
            return -1;
        Sentra__V1__PingRequest p = SENTRA__V1__PING_REQUEST__INIT;
        wire_frame_t f;
        if (wire_send(fd, 1, "/sentra.v1.SystemService/Ping", &p.base, NULL, 10000) == 0 &&
            wire_next(fd, &f, WIRE_IO_MS) == 1) {
            int answered = f.type == SENTRA_FRAME_RESPONSE;
            wire_frame_free(&f);
            if (answered)
                return fd;
        }
        close(fd);
        usleep(100 * 1000);
    }
    return -1;
}

static int setup(void **state)
{
    if (!th_env_ok()) {
        fprintf(stderr, "test_refused: run through scripts/run-tests.sh (make test)\n");
        return -1;
    }
    static const char *const args[] = { "--max-connections", "1", NULL };
    if (th_server_start(&srv, "refused", args) != 0)
        return -1;
    have_server = 1;
    /* The one place: a native connection that has pinged (so it has chosen
     * its protocol) and stays open. */
    holder = connect_served();
    return holder >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    if (holder >= 0)
        close(holder);
    if (have_server)
        th_server_free(&srv);
    return 0;
}

/* Everything the server sends on fd until it closes (at most 10 s; the
 * refusal lingers 2 s at most). Returns the bytes (malloc'ed, NUL after
 * them), their number in *len, and how long the close took in *ms. */
static uint8_t *read_to_close(int fd, size_t *len, int64_t *ms)
{
    size_t cap = 65536;
    uint8_t *buf = malloc(cap + 1);
    assert_non_null(buf);
    *len = 0;
    int64_t start = th_now_ms(), end = start + 10000;
    for (;;) {
        uint8_t one;
        int r = th_read_full(fd, &one, 1, end);
        if (r == 0)
            break;                  /* closed */
        if (r < 0)
            fail_msg("the server did not close the refused connection within 10 s");
        if (*len < cap)
            buf[(*len)++] = one;
    }
    buf[*len] = '\0';
    *ms = th_now_ms() - start;
    return buf;
}

static void test_native_refused(void **state)
{
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    Sentra__V1__PingRequest p = SENTRA__V1__PING_REQUEST__INIT;
    assert_int_equal(wire_send(fd, 1, "/sentra.v1.SystemService/Ping", &p.base, NULL, 10000), 0);
    wire_frame_t f;
    assert_int_equal(wire_next(fd, &f, WIRE_IO_MS), 1);
    assert_int_equal(f.type, SENTRA_FRAME_GOAWAY);
    Sentra__V1__GoAway *g = sentra__v1__go_away__unpack(NULL, f.len, f.payload);
    assert_non_null(g);
    assert_int_equal(g->code, SENTRA__V1__CODE__RESOURCE_EXHAUSTED);
    assert_int_equal(g->last_stream_id, 0);
    assert_string_equal(g->reason, "too many connections");
    sentra__v1__go_away__free_unpacked(g, NULL);
    wire_frame_free(&f);
    size_t len;
    int64_t ms;
    free(read_to_close(fd, &len, &ms));
    assert_int_equal(len, 0);       /* nothing after the GOAWAY (the ping is not answered) */
    close(fd);
}

/* A frame header of HTTP/2 (RFC 9113 section 4.1). */
static size_t h2_frame(uint8_t *p, uint8_t type, uint8_t flags, uint32_t sid, const void *payload,
                       size_t len)
{
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    p[5] = (uint8_t)(sid >> 24);
    p[6] = (uint8_t)(sid >> 16);
    p[7] = (uint8_t)(sid >> 8);
    p[8] = (uint8_t)sid;
    if (len > 0)
        memcpy(p + 9, payload, len);
    return 9 + len;
}

static void test_h2_refused(void **state)
{
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    /* The preface, empty SETTINGS, and a gRPC request's HEADERS (HPACK
     * literals without indexing). */
    uint8_t out[512];
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t n = sizeof(preface) - 1;
    memcpy(out, preface, n);
    n += h2_frame(out + n, 0x4, 0, 0, NULL, 0);
    uint8_t hb[256];
    size_t hl = 0;
    const char *h[][2] = { { ":method", "POST" }, { ":scheme", "http" }, { ":authority", "sentra" },
                           { ":path", "/sentra.v1.SystemService/Ping" },
                           { "content-type", "application/grpc" }, { "te", "trailers" } };
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
        hb[hl++] = 0;
        hb[hl++] = (uint8_t)strlen(h[i][0]);
        memcpy(hb + hl, h[i][0], strlen(h[i][0]));
        hl += strlen(h[i][0]);
        hb[hl++] = (uint8_t)strlen(h[i][1]);
        memcpy(hb + hl, h[i][1], strlen(h[i][1]));
        hl += strlen(h[i][1]);
    }
    n += h2_frame(out + n, 0x1, 0x4 | 0x1, 1, hb, hl);   /* END_HEADERS | END_STREAM */
    assert_int_equal(th_send_all(fd, out, n), 0);

    size_t len;
    int64_t ms;
    uint8_t *in = read_to_close(fd, &len, &ms);
    /* SETTINGS first (the server's preface), then GOAWAY, nothing else. */
    size_t off = 0;
    int settings = 0, goaway = 0, other = 0;
    while (off + 9 <= len) {
        size_t flen = (size_t)in[off] << 16 | (size_t)in[off + 1] << 8 | in[off + 2];
        uint8_t type = in[off + 3];
        assert_true(off + 9 + flen <= len);
        const uint8_t *pl = in + off + 9;
        if (type == 0x4 && goaway == 0 && other == 0) {
            settings++;
        } else if (type == 0x7 && settings == 1) {
            goaway++;
            assert_true(flen >= 8);
            uint32_t last = (uint32_t)pl[0] << 24 | (uint32_t)pl[1] << 16 | (uint32_t)pl[2] << 8 | pl[3];
            uint32_t code = (uint32_t)pl[4] << 24 | (uint32_t)pl[5] << 16 | (uint32_t)pl[6] << 8 | pl[7];
            assert_int_equal(last, 0);
            assert_int_equal(code, 0);  /* NO_ERROR: nothing was processed */
            char debug[128];
            snprintf(debug, sizeof(debug), "%.*s", (int)(flen - 8), (const char *)pl + 8);
            assert_string_equal(debug, "too many connections");
        } else {
            other++;
            print_message("unexpected frame type %u after %d SETTINGS, %d GOAWAY\n", type, settings, goaway);
        }
        off += 9 + flen;
    }
    if (off != len || settings != 1 || goaway != 1 || other != 0)
        fail_msg("the server's %zu bytes are not SETTINGS then GOAWAY (first byte 0x%02x)", len,
                 len > 0 ? in[0] : 0);
    print_message("answered and closed after %lld ms\n", (long long)ms);
    assert_true(ms >= 900);         /* CONN_REFUSE_WAIT_MS after connecting */
    free(in);
    close(fd);
}

static void test_http1_refused(void **state)
{
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: sentra\r\n\r\n";
    assert_int_equal(th_send_all(fd, req, sizeof(req) - 1), 0);
    size_t len;
    int64_t ms;
    char *in = (char *)read_to_close(fd, &len, &ms);
    print_message("%s", in);
    assert_true(strncmp(in, "HTTP/1.1 503 ", 13) == 0);
    assert_non_null(strstr(in, "\r\nConnection: close\r\n"));
    char *body = strstr(in, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, "too many connections\n");
    free(in);
    close(fd);
}

static void test_silent_closed(void **state)
{
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    size_t len;
    int64_t ms;
    free(read_to_close(fd, &len, &ms));
    print_message("a silent refused client was closed after %lld ms\n", (long long)ms);
    assert_int_equal(len, 0);
    assert_true(ms >= 500);         /* it had its chance to speak (1 s) */
    close(fd);
}

static void test_served_again(void **state)
{
    close(holder);
    holder = -1;
    /* Once the server has seen the close, the place is free. */
    int fd = connect_served();
    assert_true(fd >= 0);
    close(fd);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_native_refused),
        cmocka_unit_test(test_h2_refused),
        cmocka_unit_test(test_http1_refused),
        cmocka_unit_test(test_silent_closed),
        cmocka_unit_test(test_served_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
