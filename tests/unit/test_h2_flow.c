/*
 * test_h2_flow.c: server streaming over gRPC honours HTTP/2 flow control
 * through the call_sink_t message function (transport/grpc.c, h2.c),
 * shown with a grpc.health.v1.Health/Watch stream.
 *
 * A real connection runs the real HTTP/2 transport over a socketpair; the
 * test is the client. It opens a Watch with SETTINGS_INITIAL_WINDOW_SIZE 0,
 * so that nothing of the stream can leave. The Watch parks (call_wait_change)
 * and the test, holding its call, sends more messages with call_send():
 * after about H2_STREAM_HIGH bytes call_send must answer 1 ("full"), and
 * the continuation given to call_on_writable must not run while the
 * window stays shut. Once the client opens its windows and reads, the
 * continuation runs and every message arrives. The database is
 * unreachable (the Watch says NOT_SERVING), which the stream does not
 * care about.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "call.h"
#include "config.h"
#include "conn.h"
#include "db.h"
#include "h2.h"
#include "log.h"
#include "methods.h"
#include "server.h"
#include "grpc/health/v1/health.pb-c.h"

static uv_loop_t loop;
static config_t cfg;
static server_t srv;
static int writable_ran;

static void on_writable(call_t *c)
{
    (void)c;
    writable_ran++;
}

static size_t put_frame(uint8_t *p, uint8_t type, uint8_t flags, uint32_t sid, const uint8_t *payload,
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

/* HPACK literal field without indexing, new name, no Huffman (short strings). */
static size_t put_header(uint8_t *p, const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value), off = 0;
    p[off++] = 0;
    p[off++] = (uint8_t)n;
    memcpy(p + off, name, n);
    off += n;
    p[off++] = (uint8_t)v;
    memcpy(p + off, value, v);
    return off + v;
}

/* Bytes of DATA frames for stream 1 in what the server wrote. */
static size_t data_bytes(const uint8_t *p, size_t len)
{
    size_t off = 0, total = 0;
    while (len - off >= 9) {
        size_t flen = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
        uint32_t sid = ((uint32_t)p[off + 5] << 24 | (uint32_t)p[off + 6] << 16 |
                        (uint32_t)p[off + 7] << 8 | p[off + 8]) & 0x7fffffff;
        if (off + 9 + flen > len)
            break;
        if (p[off + 3] == 0 && sid == 1)
            total += flen;
        off += 9 + flen;
    }
    return total;
}

static void drain(int fd, uint8_t **out, size_t *len, size_t *cap)
{
    for (;;) {
        if (*len + 65536 > *cap) {
            *cap = *cap * 2 + 65536;
            *out = realloc(*out, *cap);
            assert_non_null(*out);
        }
        ssize_t n = recv(fd, *out + *len, *cap - *len, MSG_DONTWAIT);
        if (n <= 0)
            return;
        *len += (size_t)n;
    }
}

static void test_watch_flow_control(void **state)
{
    (void)state;
    char *argv[] = { (char *)"test_h2_flow", NULL };
    int nrest = 0;
    assert_int_equal(config_load(&cfg, 1, argv, &nrest), 0);
    log_set_level("error");
    uv_loop_init(&loop);
    srv.loop = &loop;
    srv.cfg = &cfg;
    srv.auth = auth_cache_new();
    srv.db = db_pool_new(&loop, "host=/nonexistent-sentra-test connect_timeout=1", 1, 1);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct conn *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    uv_pipe_init(&loop, &c->h.pipe, 0);
    assert_int_equal(uv_pipe_open(&c->h.pipe, sv[0]), 0);
    c->h.handle.data = c;
    c->srv = &srv;
    c->handles = 2;
    uv_timer_init(&loop, &c->timer);
    c->timer.data = c;
    srv.conns = c;
    srv.nconns = 1;
    snprintf(c->peer, sizeof(c->peer), "test");
    assert_int_equal(conn_choose_proto(c, &sentra__h2_proto), 0);

    /* Preface, SETTINGS(INITIAL_WINDOW_SIZE = 0), the Watch request. */
    uint8_t in[1024], hb[512];
    size_t n = 0, h = 0;
    memcpy(in, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    n = 24;
    static const uint8_t settings[] = { 0, 4, 0, 0, 0, 0 };
    n += put_frame(in + n, 4, 0, 0, settings, sizeof(settings));
    h += put_header(hb + h, ":method", "POST");
    h += put_header(hb + h, ":scheme", "http");
    h += put_header(hb + h, ":path", "/grpc.health.v1.Health/Watch");
    h += put_header(hb + h, ":authority", "test");
    h += put_header(hb + h, "content-type", "application/grpc");
    h += put_header(hb + h, "te", "trailers");
    n += put_frame(in + n, 1, 4, 1, hb, h);
    static const uint8_t empty_msg[5] = { 0, 0, 0, 0, 0 };
    n += put_frame(in + n, 0, 1, 1, empty_msg, sizeof(empty_msg));
    c->proto->on_bytes(c, in, n);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);

    uint8_t *out = NULL;
    size_t olen = 0, ocap = 0;
    drain(sv[1], &out, &olen, &ocap);
    assert_int_equal(data_bytes(out, olen), 0);    /* the window is shut */

    /* The Watch is parked, waiting for a change: its call. */
    call_t *w = srv.waiters;
    assert_non_null(w);
    assert_string_equal(w->method->name, "/grpc.health.v1.Health/Watch");

    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    size_t msg = 5 + grpc__health__v1__health_check_response__get_packed_size(&resp);
    int r = 0, sent = 0;
    while (sent < 100000 && (r = call_send(w, &resp.base)) == 0)
        sent++;
    sent++;       /* the one that answered 1 was queued too */
    assert_int_equal(r, 1);
    print_message("call_send said full after %d messages (%zu bytes)\n", sent, sent * msg);
    assert_true((sent + 1) * msg >= H2_STREAM_HIGH && sent * msg < H2_STREAM_HIGH + 2 * msg);

    call_on_writable(w, on_writable);
    for (int i = 0; i < 5; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        drain(sv[1], &out, &olen, &ocap);
    }
    assert_int_equal(writable_ran, 0);             /* still shut: no resume */
    assert_int_equal(data_bytes(out, olen), 0);

    /* The client opens its windows (stream 1 and the connection). */
    uint8_t wu[64];
    size_t m = 0;
    static const uint8_t inc[4] = { 0x00, 0x10, 0x00, 0x00 };  /* 1 MiB */
    m += put_frame(wu + m, 8, 0, 1, inc, 4);
    m += put_frame(wu + m, 8, 0, 0, inc, 4);
    c->proto->on_bytes(c, wu, m);
    for (int i = 0; i < 50 && (writable_ran == 0 || data_bytes(out, olen) < sent * msg); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        drain(sv[1], &out, &olen, &ocap);
    }
    assert_int_equal(writable_ran, 1);
    /* Every message arrived: the first (NOT_SERVING) and ours. */
    assert_true(data_bytes(out, olen) >= sent * msg);

    conn_close(c);
    while (srv.nconns > 0)
        uv_run(&loop, UV_RUN_NOWAIT);
    close(sv[1]);
    free(out);
    db_pool_close(srv.db);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    auth_cache_free(srv.auth);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_flow_control),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
