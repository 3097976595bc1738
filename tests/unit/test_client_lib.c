/*
 * test_client_lib.c: libsentra against a scripted mock server (a thread on a
 * Unix socket), so that reconnects, retries, GOAWAY, deadlines, cancels and
 * many calls in flight are tested without sentrad or PostgreSQL. The
 * behaviour per method is fixed below in mock_handle().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sentra/async.h>
#include <sentra/sentra.h>

#include "frame.h"

/* ---------------------------------------------------------------- mock server */

#define MAXP 4096

struct pend {
    uint32_t stream;
    int64_t due_ms;
    int used;
};

static struct mock {
    char path[108];
    int lfd;
    pthread_t th;
    volatile int stop;
    /* script knobs (set before a test's calls) */
    int unavail_left;     /* GetDescriptorSet answers UNAVAILABLE this often */
    int drop_get_left;    /* GetSentra closes the connection this often */
    int goaway_left;      /* Health/Check answers GOAWAY(last below it) this often */
    /* observations */
    int accepts;
    int cancels;
    int pongs;
    int requests;
    int max_pending;      /* most Sleep requests held at once */
    char last_auth[128];
    char last_idem[64];
    uint32_t last_timeout_ms;
} M;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_frame(int fd, uint8_t type, uint32_t stream, const void *p, size_t n)
{
    uint8_t h[SENTRA_FRAME_HEADER_LEN];
    sentra_frame_header(h, type, 0, stream, (uint32_t)n);
    if (write(fd, h, sizeof h) < 0 || (n && write(fd, p, n) < 0))
        return;
}

static void respond(int fd, uint32_t stream, int code, const ProtobufCMessage *msg,
                    int nviol)
{
    Sentra__V1__Response r = SENTRA__V1__RESPONSE__INIT;
    Sentra__V1__FieldViolation v[2] = {SENTRA__V1__FIELD_VIOLATION__INIT, SENTRA__V1__FIELD_VIOLATION__INIT};
    Sentra__V1__FieldViolation *vp[2] = {&v[0], &v[1]};
    uint8_t pay[1024];
    r.code = code;
    if (code)
        r.message = "mock says no";
    if (msg) {
        r.payload.len = protobuf_c_message_pack(msg, pay);
        r.payload.data = pay;
    }
    if (nviol) {
        v[0].field = "name";
        v[0].description = "must not be empty";
        v[1].field = "figures[0].year";
        v[1].description = "out of range";
        r.violations = vp;
        r.n_violations = 2;
        r.current_version = 7;
    }
    uint8_t out[4096];
    size_t n = protobuf_c_message_pack(&r.base, out);
    put_frame(fd, SENTRA_FRAME_RESPONSE, stream, out, n);
}

/* Returns -1 when the connection must be dropped. */
static int mock_handle(int fd, uint32_t stream, const uint8_t *p, size_t n, struct pend *pend)
{
    Sentra__V1__Request *rq = sentra__v1__request__unpack(NULL, n, p);
    if (!rq)
        return -1;
    __atomic_add_fetch(&M.requests, 1, __ATOMIC_SEQ_CST);
    M.last_auth[0] = 0;
    for (size_t i = 0; i < rq->n_metadata; i++)
        if (strcmp(rq->metadata[i]->key, "authorization") == 0)
            snprintf(M.last_auth, sizeof M.last_auth, "%s", rq->metadata[i]->value);
    snprintf(M.last_idem, sizeof M.last_idem, "%s", rq->idempotency_key);
    M.last_timeout_ms = rq->timeout_ms;
    const char *m = rq->method;
    int rc = 0;
    if (strcmp(m, SENTRA_M_PING) == 0) {
        Sentra__V1__PingRequest *pr = sentra__v1__ping_request__unpack(NULL, rq->payload.len, rq->payload.data);
        Sentra__V1__PingResponse resp = SENTRA__V1__PING_RESPONSE__INIT;
        if (pr)
            resp.data = pr->data;
        respond(fd, stream, 0, &resp.base, 0);
        sentra__v1__ping_request__free_unpacked(pr, NULL);
    } else if (strcmp(m, SENTRA_M_SLEEP) == 0) {
        Sentra__V1__SleepRequest *sr = sentra__v1__sleep_request__unpack(NULL, rq->payload.len, rq->payload.data);
        int held = 1;
        for (int i = 0; i < MAXP; i++)
            held += pend[i].used;
        if (held > M.max_pending)
            M.max_pending = held;
        for (int i = 0; i < MAXP; i++)
            if (!pend[i].used) {
                pend[i].used = 1;
                pend[i].stream = stream;
                pend[i].due_ms = now_ms() + (sr ? sr->ms : 0);
                break;
            }
        sentra__v1__sleep_request__free_unpacked(sr, NULL);
    } else if (strcmp(m, SENTRA_M_GET_DESCRIPTOR_SET) == 0) {
        Sentra__V1__GetDescriptorSetResponse resp = SENTRA__V1__GET_DESCRIPTOR_SET_RESPONSE__INIT;
        if (M.unavail_left > 0) {
            M.unavail_left--;
            respond(fd, stream, SENTRA__V1__CODE__UNAVAILABLE, NULL, 0);
        } else {
            respond(fd, stream, 0, &resp.base, 0);
        }
    } else if (strcmp(m, SENTRA_M_CREATE_SENTRA) == 0) {
        respond(fd, stream, SENTRA__V1__CODE__INVALID_ARGUMENT, NULL, 1);
    } else if (strcmp(m, SENTRA_M_GET_SENTRA) == 0) {
        if (M.drop_get_left > 0) {
            M.drop_get_left--;
            rc = -1;
        } else {
            Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
            s.id = "abc";
            s.name = "Sentra Keripik Pisang";
            respond(fd, stream, 0, &s.base, 0);
        }
    } else if (strcmp(m, SENTRA_M_DELETE_SENTRA) == 0) {
        rc = -1; /* "crash" while a non-idempotent write is in flight */
    } else if (strcmp(m, SENTRA_M_HEALTH_CHECK) == 0) {
        if (M.goaway_left > 0) {
            M.goaway_left--;
            Sentra__V1__GoAway g = SENTRA__V1__GO_AWAY__INIT;
            g.last_stream_id = stream - 2 < stream ? stream - 2 : 0;
            g.code = SENTRA__V1__CODE__UNAVAILABLE;
            g.reason = "shutting down";
            uint8_t out[256];
            size_t gn = protobuf_c_message_pack(&g.base, out);
            put_frame(fd, SENTRA_FRAME_GOAWAY, 0, out, gn);
            rc = -1;
        } else {
            Sentra__V1__HealthCheckResponse h = SENTRA__V1__HEALTH_CHECK_RESPONSE__INIT;
            h.status = SENTRA__V1__SERVING_STATUS__SERVING_STATUS_SERVING;
            h.version = "mock";
            respond(fd, stream, 0, &h.base, 0);
        }
    } else {
        respond(fd, stream, SENTRA__V1__CODE__UNIMPLEMENTED, NULL, 0);
    }
    sentra__v1__request__free_unpacked(rq, NULL);
    return rc;
}

static void serve_conn(int fd)
{
    static uint8_t buf[1 << 20];
    static struct pend pend[MAXP];
    size_t len = 0;
    memset(pend, 0, sizeof pend);
    put_frame(fd, SENTRA_FRAME_PING, 0, "hello", 5); /* the client must PONG */
    while (!M.stop) {
        int64_t next = -1, t = now_ms();
        for (int i = 0; i < MAXP; i++)
            if (pend[i].used && (next < 0 || pend[i].due_ms < next))
                next = pend[i].due_ms;
        int to = next < 0 ? 50 : (int)(next > t ? next - t : 0);
        if (to > 50)
            to = 50;
        struct pollfd pf = {fd, POLLIN, 0};
        int pr = poll(&pf, 1, to);
        t = now_ms();
        for (int i = 0; i < MAXP; i++)
            if (pend[i].used && pend[i].due_ms <= t) {
                Sentra__V1__SleepResponse sr = SENTRA__V1__SLEEP_RESPONSE__INIT;
                respond(fd, pend[i].stream, 0, &sr.base, 0);
                pend[i].used = 0;
            }
        if (pr <= 0)
            continue;
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        size_t start = 0;
        for (;;) {
            sentra_frame_t f;
            size_t used;
            int r = sentra_frame_decode(buf + start, len - start, 1 << 19, &f, &used);
            if (r == 0)
                break;
            if (r < 0)
                return;
            start += used;
            if (f.type == SENTRA_FRAME_REQUEST) {
                if (mock_handle(fd, f.stream_id, f.payload, f.length, pend) < 0)
                    return;
            } else if (f.type == SENTRA_FRAME_CANCEL) {
                __atomic_add_fetch(&M.cancels, 1, __ATOMIC_SEQ_CST);
                for (int i = 0; i < MAXP; i++)
                    if (pend[i].used && pend[i].stream == f.stream_id) {
                        pend[i].used = 0;
                        respond(fd, f.stream_id, SENTRA__V1__CODE__CANCELLED, NULL, 0);
                    }
            } else if (f.type == SENTRA_FRAME_PONG) {
                if (f.length == 5 && memcmp(f.payload, "hello", 5) == 0)
                    __atomic_add_fetch(&M.pongs, 1, __ATOMIC_SEQ_CST);
            }
        }
        memmove(buf, buf + start, len - start);
        len -= start;
    }
}

static void *mock_main(void *arg)
{
    while (!M.stop) {
        struct pollfd pf = {M.lfd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept(M.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        __atomic_add_fetch(&M.accepts, 1, __ATOMIC_SEQ_CST);
        serve_conn(fd);
        close(fd);
    }
    return NULL;
}

static int mock_start(void **state)
{
    memset(&M, 0, sizeof M);
    snprintf(M.path, sizeof M.path, "/tmp/sentra-mock-%d.sock", (int)getpid());
    unlink(M.path);
    M.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", M.path);
    if (bind(M.lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(M.lfd, 16) < 0)
        return -1;
    return pthread_create(&M.th, NULL, mock_main, NULL);
}

static int mock_stop(void **state)
{
    M.stop = 1;
    pthread_join(M.th, NULL);
    close(M.lfd);
    unlink(M.path);
    return 0;
}

static sentra_client_t *new_client(unsigned attempts)
{
    sentra_client_opts_t o;
    sentra_client_opts_init(&o);
    o.address = M.path;
    o.token = "tok123";
    o.max_attempts = attempts;
    o.backoff_initial_ms = 10;
    o.backoff_max_ms = 40;
    sentra_client_t *c = NULL;
    assert_int_equal(sentra_client_new(&c, &o), 0);
    return c;
}

/* ---------------------------------------------------------------- tests */

static void test_errors_table(void **state)
{
    assert_string_equal(sentra_err_name(SENTRA_ETIMEDOUT), "SENTRA_ETIMEDOUT");
    assert_string_equal(sentra_strerror(SENTRA_ETIMEDOUT), "deadline exceeded");
    assert_string_equal(sentra_strerror(12345), "unknown error");
    assert_string_equal(sentra_status_name(5), "NOT_FOUND");
    assert_int_equal(sentra_method_is_read(SENTRA_M_GET_SENTRA), 1);
    assert_int_equal(sentra_method_is_read(SENTRA_M_LIST_REGIONS), 1);
    assert_int_equal(sentra_method_is_read(SENTRA_M_PULL_CHANGES), 1);
    assert_int_equal(sentra_method_is_read(SENTRA_M_CREATE_SENTRA), 0);
    assert_int_equal(sentra_method_is_read(SENTRA_M_PUSH_CHANGES), 0);
    sentra_client_opts_t o;
    sentra_client_opts_init(&o);
    sentra_client_t *c = (sentra_client_t *)1;
    const char *bad[] = {"nohost", "host:", ":80", "host:99999", "host:8a", "[::1]80", "unix:"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        o.address = bad[i];
        assert_int_equal(sentra_client_new(&c, &o), SENTRA_EADDR);
        assert_null(c);
    }
    const char *good[] = {"localhost:7443", "[::1]:7443", "unix:/tmp/x.sock", "/tmp/x.sock"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        o.address = good[i];
        assert_int_equal(sentra_client_new(&c, &o), 0);
        assert_string_equal(sentra_client_address(c), good[i]);
        sentra_client_free(c);
    }
}

static void test_ping_and_pong(void **state)
{
    sentra_client_t *c = new_client(0);
    Sentra__V1__PingRequest rq = SENTRA__V1__PING_REQUEST__INIT;
    rq.data.data = (uint8_t *)"abc";
    rq.data.len = 3;
    Sentra__V1__PingResponse *resp = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    assert_int_equal(sentra_ping(c, &rq, &resp, NULL, &st), 0);
    assert_non_null(resp);
    assert_int_equal(resp->data.len, 3);
    assert_memory_equal(resp->data.data, "abc", 3);
    assert_int_equal(st.code, 0);
    assert_string_equal(M.last_auth, "Bearer tok123");
    /* default deadline 30 s travels as timeout_ms */
    assert_true(M.last_timeout_ms > 29000 && M.last_timeout_ms <= 30000);
    sentra__v1__ping_response__free_unpacked(resp, NULL);
    /* a second call reuses the connection and its PONG was sent */
    assert_int_equal(sentra_ping(c, &rq, &resp, NULL, &st), 0);
    sentra__v1__ping_response__free_unpacked(resp, NULL);
    assert_int_equal(sentra_client_connections(c), 1);
    assert_int_equal(M.pongs, 1);
    sentra_status_clear(&st);
    sentra_client_free(c);
}

static void test_status_violations(void **state)
{
    sentra_client_t *c = new_client(0);
    Sentra__V1__CreateSentraRequest rq = SENTRA__V1__CREATE_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra *out = (Sentra__V1__Sentra *)1;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = {0, "key-1", 0};
    assert_int_equal(sentra_create_sentra(c, &rq, &out, &co, &st), SENTRA_ESTATUS);
    assert_null(out);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_int_equal(st.local, 0);
    assert_string_equal(st.message, "mock says no");
    assert_int_equal(st.n_violations, 2);
    assert_string_equal(st.violations[1].field, "figures[0].year");
    assert_int_equal(st.current_version, 7);
    assert_string_equal(M.last_idem, "key-1");
    sentra_status_t cp;
    assert_int_equal(sentra_status_copy(&cp, &st), 0);
    assert_string_equal(cp.violations[0].description, "must not be empty");
    sentra_status_clear(&cp);
    sentra_status_clear(&st);
    assert_null(st.message);
    sentra_client_free(c);
}

static void test_retry_unavailable(void **state)
{
    sentra_client_t *c = new_client(4);
    Sentra__V1__GetDescriptorSetRequest rq = SENTRA__V1__GET_DESCRIPTOR_SET_REQUEST__INIT;
    Sentra__V1__GetDescriptorSetResponse *out = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    M.unavail_left = 2;
    int before = M.requests;
    assert_int_equal(sentra_get_descriptor_set(c, &rq, &out, NULL, &st), 0);
    assert_int_equal(M.requests - before, 3);
    protobuf_c_message_free_unpacked(&out->base, NULL);
    /* more failures than attempts: the server's UNAVAILABLE comes back */
    M.unavail_left = 10;
    before = M.requests;
    assert_int_equal(sentra_get_descriptor_set(c, &rq, &out, NULL, &st), SENTRA_ESTATUS);
    assert_int_equal(st.code, SENTRA__V1__CODE__UNAVAILABLE);
    assert_int_equal(M.requests - before, 4);
    /* no retry when asked not to */
    M.unavail_left = 10;
    before = M.requests;
    sentra_call_opts_t co = {0, NULL, 1};
    assert_int_equal(sentra_get_descriptor_set(c, &rq, &out, &co, &st), SENTRA_ESTATUS);
    assert_int_equal(M.requests - before, 1);
    M.unavail_left = 0;
    sentra_status_clear(&st);
    sentra_client_free(c);
}

static void test_connection_loss(void **state)
{
    sentra_client_t *c = new_client(0);
    sentra_status_t st;
    sentra_status_init(&st);
    /* a read is retried on a new connection */
    M.drop_get_left = 1;
    Sentra__V1__GetSentraRequest g = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    g.id = "abc";
    Sentra__V1__Sentra *s = NULL;
    assert_int_equal(sentra_get_sentra(c, &g, &s, NULL, &st), 0);
    assert_string_equal(s->name, "Sentra Keripik Pisang");
    sentra__v1__sentra__free_unpacked(s, NULL);
    assert_int_equal(sentra_client_connections(c), 2);
    /* a write without idempotency key is not: the outcome is unknown */
    Sentra__V1__DeleteSentraRequest d = SENTRA__V1__DELETE_SENTRA_REQUEST__INIT;
    Sentra__V1__DeleteSentraResponse *dr = NULL;
    int before = M.requests;
    assert_int_equal(sentra_delete_sentra(c, &d, &dr, NULL, &st), SENTRA_ECONNLOST);
    assert_int_equal(st.code, SENTRA__V1__CODE__UNAVAILABLE);
    assert_int_equal(st.local, 1);
    assert_int_equal(M.requests - before, 1);
    /* ... but one with a key is retried (until attempts run out here) */
    before = M.requests;
    sentra_call_opts_t co = {0, "del-1", 0};
    assert_int_equal(sentra_delete_sentra(c, &d, &dr, &co, &st), SENTRA_ECONNLOST);
    assert_int_equal(M.requests - before, 4);
    /* and the client recovers for the next call */
    assert_int_equal(sentra_get_sentra(c, &g, &s, NULL, &st), 0);
    sentra__v1__sentra__free_unpacked(s, NULL);
    sentra_status_clear(&st);
    sentra_client_free(c);
}

static void test_goaway_retry(void **state)
{
    sentra_client_t *c = new_client(0);
    sentra_status_t st;
    sentra_status_init(&st);
    M.goaway_left = 1;
    Sentra__V1__HealthCheckRequest h = SENTRA__V1__HEALTH_CHECK_REQUEST__INIT;
    Sentra__V1__HealthCheckResponse *hr = NULL;
    assert_int_equal(sentra_health_check(c, &h, &hr, NULL, &st), 0);
    assert_string_equal(hr->version, "mock");
    sentra__v1__health_check_response__free_unpacked(hr, NULL);
    assert_int_equal(sentra_client_connections(c), 2);
    sentra_status_clear(&st);
    sentra_client_free(c);
}

static void test_deadline(void **state)
{
    sentra_client_t *c = new_client(0);
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__SleepRequest s = SENTRA__V1__SLEEP_REQUEST__INIT;
    s.ms = 3000;
    Sentra__V1__SleepResponse *sr = NULL;
    sentra_call_opts_t co = {200, NULL, 0};
    int cancels = M.cancels;
    int64_t t0 = now_ms();
    assert_int_equal(sentra_sleep(c, &s, &sr, &co, &st), SENTRA_ETIMEDOUT);
    int64_t took = now_ms() - t0;
    assert_int_equal(st.code, SENTRA__V1__CODE__DEADLINE_EXCEEDED);
    assert_true(took >= 190 && took < 1000);
    assert_true(M.last_timeout_ms <= 200 && M.last_timeout_ms > 150);
    /* the CANCEL reaches the server */
    for (int i = 0; i < 100 && M.cancels == cancels; i++)
        usleep(10000);
    assert_int_equal(M.cancels, cancels + 1);
    /* the connection is still good */
    s.ms = 10;
    assert_int_equal(sentra_sleep(c, &s, &sr, NULL, &st), 0);
    sentra__v1__sleep_response__free_unpacked(sr, NULL);
    assert_int_equal(sentra_client_connections(c), 1);
    sentra_status_clear(&st);
    sentra_client_free(c);
}

static void test_connect_refused(void **state)
{
    sentra_client_opts_t o;
    sentra_client_opts_init(&o);
    o.address = "/tmp/sentra-no-such-socket.sock";
    o.backoff_initial_ms = 10;
    sentra_client_t *c;
    assert_int_equal(sentra_client_new(&c, &o), 0);
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__PingRequest rq = SENTRA__V1__PING_REQUEST__INIT;
    Sentra__V1__PingResponse *resp = NULL;
    assert_int_equal(sentra_ping(c, &rq, &resp, NULL, &st), SENTRA_ECONNECT);
    assert_int_equal(st.code, SENTRA__V1__CODE__UNAVAILABLE);
    assert_non_null(strstr(st.message, "sentra-no-such-socket"));
    assert_int_equal(sentra_client_connect(c), SENTRA_ECONNECT);
    /* Regression: with no deadline no timer of the call's own runs; the
     * reconnect backoff must keep the loop turning until attempts run out
     * (it once let the blocking loop spin without ever reconnecting). */
    sentra_call_opts_t co = {-1, NULL, 0};
    int64_t t0 = now_ms();
    assert_int_equal(sentra_ping(c, &rq, &resp, &co, &st), SENTRA_ECONNECT);
    assert_true(now_ms() - t0 < 5000);
    sentra_status_clear(&st);
    sentra_client_free(c);
}

/* -------- async: many calls in flight, completion order, cancel, close */

struct actx {
    int done, ok, cancelled, closed, calls_twice;
    int order[300];
    int n;
    int seen[300];
};

static void acb(sentra_async_call_t *call, int rc, ProtobufCMessage *resp, const sentra_status_t *st,
                void *arg)
{
    struct actx *x = *(struct actx **)arg;
    x->done++;
    if (rc == 0)
        x->ok++;
    else if (rc == SENTRA_ECANCELED)
        x->cancelled++;
    else if (rc == SENTRA_ECLOSED)
        x->closed++;
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
}

struct slot {
    struct actx *x;
    int i;
};

static void acb2(sentra_async_call_t *call, int rc, ProtobufCMessage *resp, const sentra_status_t *st,
                 void *arg)
{
    struct slot *s = arg;
    if (s->x->seen[s->i]++)
        s->x->calls_twice++;
    if (rc == 0)
        s->x->order[s->x->n++] = s->i;
    acb(call, rc, resp, st, &s->x);
}

static int closed_flag;
static void on_closed(sentra_async_t *a, void *arg) { closed_flag = 1; }

static void test_async_many(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sentra_client_opts_t o;
    sentra_client_opts_init(&o);
    o.address = M.path;
    o.max_inflight = 1000;
    sentra_async_t *a = sentra_async_new(&loop, &o);
    assert_non_null(a);
    static struct actx x;
    memset(&x, 0, sizeof x);
    static struct slot slots[300];
    sentra_async_call_t *calls[300];
    for (int i = 0; i < 300; i++) {
        Sentra__V1__SleepRequest s = SENTRA__V1__SLEEP_REQUEST__INIT;
        s.ms = (unsigned)(300 - i); /* later calls finish first */
        slots[i].x = &x;
        slots[i].i = i;
        calls[i] = sentra_async_call(a, SENTRA_M_SLEEP, &s.base, &sentra__v1__sleep_response__descriptor,
                                     NULL, acb2, &slots[i]);
        assert_non_null(calls[i]);
    }
    assert_int_equal(sentra_async_outstanding(a), 300);
    assert_int_equal(sentra_async_cancel(calls[0]), 0);
    assert_int_equal(x.done, 0); /* never from inside cancel */
    int64_t t0 = now_ms();
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once nothing is outstanding */
    int64_t took = now_ms() - t0;
    assert_int_equal(x.done, 300);
    assert_int_equal(x.ok, 299);
    assert_int_equal(x.cancelled, 1);
    assert_int_equal(x.calls_twice, 0);
    assert_true(took < 2000); /* in flight together, not one after another */
    /* completion order: the shortest sleeps first */
    assert_true(x.order[0] > x.order[x.n - 1]);
    assert_int_equal(sentra_async_connections(a), 1);

    /* closing with calls outstanding completes them with ECLOSED */
    memset(&x, 0, sizeof x);
    for (int i = 0; i < 5; i++) {
        Sentra__V1__SleepRequest s = SENTRA__V1__SLEEP_REQUEST__INIT;
        s.ms = 5000;
        assert_non_null(sentra_async_call(a, SENTRA_M_SLEEP, &s.base, &sentra__v1__sleep_response__descriptor,
                                          NULL, acb2, &slots[i]));
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    closed_flag = 0;
    sentra_async_close(a, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(x.closed, 5);
    assert_int_equal(closed_flag, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* More calls than max_inflight: the rest wait in the client, and the
 * server never holds more than the cap. */
static void test_async_inflight_cap(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sentra_client_opts_t o;
    sentra_client_opts_init(&o);
    o.address = M.path;
    o.max_inflight = 10;
    sentra_async_t *a = sentra_async_new(&loop, &o);
    static struct actx x;
    static struct slot slots[50];
    memset(&x, 0, sizeof x);
    M.max_pending = 0;
    for (int i = 0; i < 50; i++) {
        Sentra__V1__SleepRequest s = SENTRA__V1__SLEEP_REQUEST__INIT;
        s.ms = 40;
        slots[i].x = &x;
        slots[i].i = i;
        assert_non_null(sentra_async_call(a, SENTRA_M_SLEEP, &s.base, &sentra__v1__sleep_response__descriptor,
                                          NULL, acb2, &slots[i]));
    }
    int64_t t0 = now_ms();
    uv_run(&loop, UV_RUN_DEFAULT);
    int64_t took = now_ms() - t0;
    assert_int_equal(x.ok, 50);
    assert_true(M.max_pending <= 10);
    assert_true(took >= 5 * 40 - 10); /* five waves of ten */
    sentra_async_close(a, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_table),
        cmocka_unit_test(test_ping_and_pong),
        cmocka_unit_test(test_status_violations),
        cmocka_unit_test(test_retry_unavailable),
        cmocka_unit_test(test_connection_loss),
        cmocka_unit_test(test_goaway_retry),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_async_many),
        cmocka_unit_test(test_async_inflight_cap),
    };
    return cmocka_run_group_tests(tests, mock_start, mock_stop);
}
