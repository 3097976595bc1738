/*
 * test_faults.c: sentrad under faults, on loopback, each test bounded in
 * time and stopping by itself (issue 8):
 *
 *   - PostgreSQL stopped and restarted under a running server: requests that
 *     need the database answer UNAVAILABLE meanwhile (Ping, which needs
 *     none, keeps working), Health says NOT_SERVING, and the server
 *     recovers by itself once PostgreSQL is back.
 *   - The server killed with SIGKILL in the middle of writes, then the
 *     client replays every write with its idempotency key on a restarted
 *     server: no acknowledged write is lost, none is applied twice, and a
 *     replay returns the record the first attempt made.
 *   - A client that never reads its replies: the server stops reading it,
 *     its memory stays bounded, and other clients are served meanwhile.
 *   - 1,000 connections opened and dropped abruptly (mid-frame, with
 *     requests in flight, by RST): the server stays up and its memory
 *     returns near where it was.
 *
 * Memory is read from /proc/<pid>/status (VmRSS). The bounds are generous
 * sanity limits (tens of MB), not performance assertions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "harness.h"
#include "status.h"
#include "sentra/v1/rpc.pb-c.h"
#include "sentra/v1/sentra.pb-c.h"
#include "sentra/v1/system.pb-c.h"

#define IO_TIMEOUT_MS 15000

static th_server_t srv;
static int have_server;
static char *district_token;

/* ---------------------------------------------------------------- helpers */

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* Whether the server runs under valgrind (SENTRAD a wrapper that execs
 * it): its RSS then counts valgrind's shadow memory and freed-block
 * quarantine, and the memory bounds below mean nothing. */
static int under_valgrind(pid_t pid)
{
    char path[64], comm[64] = "";
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fgets(comm, sizeof(comm), f) == NULL)
        comm[0] = '\0';
    fclose(f);
    return strncmp(comm, "memcheck", 8) == 0 || strncmp(comm, "valgrind", 8) == 0;
}

/* during - before stays under limit_kb, unless under valgrind. */
static void assert_growth(long before, long during, long limit_kb)
{
    if (under_valgrind(srv.pid)) {
        print_message("under valgrind: memory bound not checked (%ld kB growth)\n", during - before);
        return;
    }
    assert_true(during - before < limit_kb);
}

/* A whole REQUEST frame (malloc'd) for method with msg as payload. */
static uint8_t *request_frame(uint32_t sid, const char *method, const ProtobufCMessage *msg,
                              const char *token, const char *idem_key, uint32_t timeout_ms,
                              size_t *len)
{
    Sentra__V1__Request r = SENTRA__V1__REQUEST__INIT;
    Sentra__V1__Metadata md = SENTRA__V1__METADATA__INIT;
    Sentra__V1__Metadata *mds[1] = { &md };
    char auth[300];
    uint8_t *inner = NULL;
    r.method = (char *)method;
    r.timeout_ms = timeout_ms;
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Bearer %s", token);
        md.key = "authorization";
        md.value = auth;
        r.metadata = mds;
        r.n_metadata = 1;
    }
    if (idem_key != NULL)
        r.idempotency_key = (char *)idem_key;
    if (msg != NULL) {
        size_t n = protobuf_c_message_get_packed_size(msg);
        inner = malloc(n + 1);
        assert_non_null(inner);
        protobuf_c_message_pack(msg, inner);
        r.payload.data = inner;
        r.payload.len = n;
    }
    size_t plen = sentra__v1__request__get_packed_size(&r);
    uint8_t *out = malloc(SENTRA_FRAME_HEADER_LEN + plen);
    assert_non_null(out);
    sentra__v1__request__pack(&r, out + SENTRA_FRAME_HEADER_LEN);
    sentra_frame_header(out, SENTRA_FRAME_REQUEST, 0, sid, (uint32_t)plen);
    free(inner);
    *len = SENTRA_FRAME_HEADER_LEN + plen;
    return out;
}

static int send_request(int fd, uint32_t sid, const char *method, const ProtobufCMessage *msg,
                        const char *token, const char *idem_key)
{
    size_t len;
    uint8_t *f = request_frame(sid, method, msg, token, idem_key, 10000, &len);
    int r = th_send_all(fd, f, len);
    free(f);
    return r;
}

/* Reads the next RESPONSE (answering keepalive PINGs, skipping GOAWAY).
 * Returns 1 and fills sid and the unpacked response, 0 on EOF, -1 on
 * timeout. */
static int read_response(int fd, uint32_t *sid, Sentra__V1__Response **resp)
{
    int64_t deadline = th_now_ms() + IO_TIMEOUT_MS;
    for (;;) {
        uint8_t h[SENTRA_FRAME_HEADER_LEN];
        int r = th_read_full(fd, h, sizeof(h), deadline);
        if (r != 1)
            return r;
        uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        assert_true(len <= SENTRA_FRAME_DEFAULT_MAX);
        uint8_t *p = malloc(len + 1);
        assert_non_null(p);
        r = th_read_full(fd, p, len, deadline);
        if (r != 1) {
            free(p);
            return r;
        }
        if (h[4] == SENTRA_FRAME_PING) {
            h[4] = SENTRA_FRAME_PONG;
            th_send_all(fd, h, sizeof(h));
            th_send_all(fd, p, len);
        }
        if (h[4] == SENTRA_FRAME_RESPONSE) {
            *sid = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
            *resp = sentra__v1__response__unpack(NULL, len, p);
            free(p);
            assert_non_null(*resp);
            return 1;
        }
        free(p);
    }
}

/* One request on a fresh connection; returns its status code (the
 * response's payload, if wanted, goes to *out and must be freed). */
static int call_once(const char *method, const ProtobufCMessage *msg, const char *token,
                     Sentra__V1__Response **out)
{
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    assert_int_equal(send_request(fd, 1, method, msg, token, NULL), 0);
    uint32_t sid = 0;
    Sentra__V1__Response *r = NULL;
    assert_int_equal(read_response(fd, &sid, &r), 1);
    assert_int_equal(sid, 1);
    close(fd);
    int code = r->code;
    if (out != NULL)
        *out = r;
    else
        sentra__v1__response__free_unpacked(r, NULL);
    return code;
}

static int ping(void)
{
    Sentra__V1__PingRequest p = SENTRA__V1__PING_REQUEST__INIT;
    return call_once("/sentra.v1.SystemService/Ping", &p.base, NULL, NULL);
}

/* Health status: SERVING_STATUS_*. */
static int health(void)
{
    Sentra__V1__HealthCheckRequest h = SENTRA__V1__HEALTH_CHECK_REQUEST__INIT;
    Sentra__V1__Response *r = NULL;
    assert_int_equal(call_once("/sentra.v1.Health/Check", &h.base, NULL, &r), SENTRA_OK);
    Sentra__V1__HealthCheckResponse *hr =
        sentra__v1__health_check_response__unpack(NULL, r->payload.len, r->payload.data);
    assert_non_null(hr);
    int st = hr->status;
    sentra__v1__health_check_response__free_unpacked(hr, NULL);
    sentra__v1__response__free_unpacked(r, NULL);
    return st;
}

static int db_call(void)
{
    /* A read that needs the token check and a query. */
    Sentra__V1__GetSentraRequest g = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    g.id = "00000000-0000-4000-8000-000000000001";
    return call_once("/sentra.v1.SentraService/GetSentra", &g.base, district_token, NULL);
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    if (!th_env_ok()) {
        fprintf(stderr, "test_faults: run through scripts/run-tests.sh (make test)\n");
        return -1;
    }
    /* 1,000 connections need descriptors on both sides. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (th_server_start(&srv, "faults", NULL) != 0)
        return -1;
    have_server = 1;
    district_token = th_token(&srv, "district", "18.71");
    return district_token != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    if (have_server)
        th_server_free(&srv);
    free(district_token);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_postgres_restart(void **state)
{
    assert_int_equal(ping(), SENTRA_OK);
    assert_int_equal(db_call(), SENTRA_NOT_FOUND);
    assert_int_equal(health(), SENTRA__V1__SERVING_STATUS__SERVING_STATUS_SERVING);

    assert_int_equal(th_pg_stop(), 0);
    /* Meanwhile: UNAVAILABLE for the database, NOT_SERVING, Ping fine. */
    int code = -1, st = -1;
    for (int64_t end = th_now_ms() + 15000; th_now_ms() < end;) {
        code = db_call();
        st = health();
        if (code == SENTRA_UNAVAILABLE && st == SENTRA__V1__SERVING_STATUS__SERVING_STATUS_NOT_SERVING)
            break;
        usleep(200 * 1000);
    }
    int pong = ping();
    /* Whatever happens below, the cluster must come back for the others. */
    int started = th_pg_start();
    assert_int_equal(started, 0);
    assert_int_equal(code, SENTRA_UNAVAILABLE);
    assert_int_equal(st, SENTRA__V1__SERVING_STATUS__SERVING_STATUS_NOT_SERVING);
    assert_int_equal(pong, SENTRA_OK);

    /* It recovers by itself. */
    for (int64_t end = th_now_ms() + 30000; th_now_ms() < end;) {
        code = db_call();
        st = health();
        if (code == SENTRA_NOT_FOUND && st == SENTRA__V1__SERVING_STATUS__SERVING_STATUS_SERVING)
            break;
        usleep(200 * 1000);
    }
    assert_int_equal(code, SENTRA_NOT_FOUND);
    assert_int_equal(st, SENTRA__V1__SERVING_STATUS__SERVING_STATUS_SERVING);
}

#define NWRITES 300
#define WINDOW 8

struct write_state {
    char name[64];
    char key[64];
    char id[40];   /* the id of the first acknowledgement */
    int acked;
};

static void create_frame(struct write_state *w, uint32_t sid, uint8_t **frame, size_t *len)
{
    Sentra__V1__CreateSentraRequest req = SENTRA__V1__CREATE_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
    s.regency_code = "18.71";
    s.name = w->name;
    s.commodity = "Kopi";
    s.main_product = "Kopi bubuk";
    s.kbli_code = "10761";
    s.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    s.sector_group = SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD;
    s.status = SENTRA__V1__STATUS__STATUS_FORMED;
    s.formed_on = "2020-01-02";
    req.sentra = &s;
    *frame = request_frame(sid, "/sentra.v1.SentraService/CreateSentra", &req.base, district_token,
                           w->key, 10000, len);
}

/* Sends writes [0, n) with WINDOW in flight; records acknowledgements.
 * With kill_after > 0, SIGKILLs the server once that many are acknowledged
 * and returns. Returns the number of answers read. */
static int run_writes(struct write_state *ws, int n, int kill_after, int replay)
{
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    int next = 0, inflight = 0, answers = 0, acked_now = 0;
    uint32_t *sid_of = calloc((size_t)n + 1, sizeof(*sid_of));
    assert_non_null(sid_of);
    while (answers < n) {
        while (inflight < WINDOW && next < n) {
            uint8_t *f;
            size_t len;
            create_frame(&ws[next], (uint32_t)next + 1, &f, &len);
            int r = th_send_all(fd, f, len);
            free(f);
            if (r != 0)
                break;
            next++;
            inflight++;
        }
        uint32_t sid;
        Sentra__V1__Response *resp = NULL;
        int r = read_response(fd, &sid, &resp);
        if (r != 1) {
            /* Only a kill may end the connection early. */
            assert_true(kill_after > 0);
            break;
        }
        assert_true(sid >= 1 && sid <= (uint32_t)n);
        struct write_state *w = &ws[sid - 1];
        answers++;
        inflight--;
        if ((int)resp->code == SENTRA_OK) {
            Sentra__V1__Sentra *s =
                sentra__v1__sentra__unpack(NULL, resp->payload.len, resp->payload.data);
            assert_non_null(s);
            assert_string_equal(s->name, w->name);
            if (w->acked) {
                /* A replay: the stored outcome, the same record. */
                assert_string_equal(s->id, w->id);
                assert_int_equal(s->version, 1);
            } else {
                snprintf(w->id, sizeof(w->id), "%s", s->id);
                w->acked = 1;
            }
            sentra__v1__sentra__free_unpacked(s, NULL);
            acked_now++;
        } else {
            /* Before the kill, every write must succeed; a replay too. */
            fail_msg("write %u answered %s: %s", sid, sentra_status_name(resp->code),
                     resp->message);
        }
        sentra__v1__response__free_unpacked(resp, NULL);
        if (kill_after > 0 && acked_now == kill_after) {
            th_server_kill(&srv, SIGKILL);
            break;
        }
    }
    if (replay)
        assert_int_equal(answers, n);
    close(fd);
    free(sid_of);
    return answers;
}

static void test_sigkill_then_replay(void **state)
{
    struct write_state *ws = calloc(NWRITES, sizeof(*ws));
    assert_non_null(ws);
    unsigned tag = (unsigned)getpid() ^ (unsigned)th_now_ms();
    for (int i = 0; i < NWRITES; i++) {
        snprintf(ws[i].name, sizeof(ws[i].name), "Sentra Fault %08x %03d", tag, i);
        snprintf(ws[i].key, sizeof(ws[i].key), "fault-%08x-%03d", tag, i);
    }
    /* Killed with writes in flight, about a third of the way in. */
    run_writes(ws, NWRITES, NWRITES / 3, 0);
    int acked = 0;
    for (int i = 0; i < NWRITES; i++)
        acked += ws[i].acked;
    assert_true(acked >= NWRITES / 3);
    assert_true(acked < NWRITES);

    assert_int_equal(th_server_restart(&srv), 0);
    /* The client replays everything with the same keys. */
    run_writes(ws, NWRITES, 0, 1);

    /* Every write exactly once; the acknowledged ones kept their ids. */
    PGconn *db = th_db(&srv);
    assert_non_null(db);
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "Sentra Fault %08x %%", tag);
    const char *params[1] = { pattern };
    PGresult *res = PQexecParams(db,
                                 "SELECT name, count(*), min(id::text) FROM sentra "
                                 "WHERE name LIKE $1 AND deleted_at IS NULL GROUP BY name",
                                 1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), NWRITES);
    for (int r = 0; r < PQntuples(res); r++) {
        assert_string_equal(PQgetvalue(res, r, 1), "1");
        int i = atoi(PQgetvalue(res, r, 0) + strlen(pattern) - 1);
        assert_true(i >= 0 && i < NWRITES);
        assert_string_equal(PQgetvalue(res, r, 2), ws[i].id);
    }
    PQclear(res);
    PQfinish(db);
    free(ws);
}

static void test_client_never_reads(void **state)
{
    long before = rss_kb(srv.pid);
    assert_true(before > 0);
    int fd = th_connect_raw(&srv);
    assert_true(fd >= 0);
    /* Small receive buffer: the replies pile up on the server's side. */
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    /* Pings with 32 KiB of data each, sent without ever reading, until the
     * server stops taking them for a full second. */
    uint8_t *data = calloc(1, 32768);
    assert_non_null(data);
    Sentra__V1__PingRequest p = SENTRA__V1__PING_REQUEST__INIT;
    p.data.data = data;
    p.data.len = 32768;
    size_t sent = 0, flen = 0;
    uint32_t sid = 1;
    uint8_t *frame = request_frame(sid, "/sentra.v1.SystemService/Ping", &p.base, NULL, NULL, 0,
                                   &flen);
    size_t off = 0;
    int64_t last_progress = th_now_ms(), start = th_now_ms();
    const size_t cap = 512u << 20; /* a server that never stops reading fails here */
    while (th_now_ms() - last_progress < 1000 && sent < cap && th_now_ms() - start < 60000) {
        ssize_t n = send(fd, frame + off, flen - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            sent += (size_t)n;
            last_progress = th_now_ms();
            if (off == flen) {
                free(frame);
                frame = request_frame(++sid, "/sentra.v1.SystemService/Ping", &p.base, NULL,
                                      NULL, 0, &flen);
                off = 0;
            }
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            fail_msg("send: %s", strerror(errno));
        usleep(10 * 1000);
    }
    free(frame);
    assert_true(sent < cap);
    /* The server holds at most its write queue cap plus socket buffers and
     * a read buffer for this client: a few MB, far below what was sent
     * when the client sends much more. */
    long during = rss_kb(srv.pid);
    assert_growth(before, during, 64 * 1024);

    /* Others are served meanwhile. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(ping(), SENTRA_OK);
    assert_int_equal(db_call(), SENTRA_NOT_FOUND);

    close(fd);
    free(data);
    assert_int_equal(ping(), SENTRA_OK);
    print_message("never-reading client: %zu bytes sent before the server stopped reading; "
                  "server RSS %ld kB before, %ld kB while stalled\n", sent, before, during);
}

static void test_thousand_dropped_connections(void **state)
{
    enum { N = 1000 };
    long before = rss_kb(srv.pid);
    int *fds = malloc(N * sizeof(int));
    assert_non_null(fds);
    Sentra__V1__SleepRequest sl = SENTRA__V1__SLEEP_REQUEST__INIT;
    sl.ms = 2000;
    size_t flen;
    uint8_t *sleep_frame = request_frame(1, "/sentra.v1.SystemService/Sleep", &sl.base, NULL, NULL,
                                         10000, &flen);
    Sentra__V1__PingRequest p = SENTRA__V1__PING_REQUEST__INIT;
    size_t plen;
    uint8_t *ping_frame = request_frame(1, "/sentra.v1.SystemService/Ping", &p.base, NULL, NULL,
                                        0, &plen);
    for (int i = 0; i < N; i++) {
        fds[i] = th_connect_raw(&srv);
        assert_true(fds[i] >= 0);
        switch (i % 5) {
        case 0: /* nothing sent */
            break;
        case 1: /* half a header */
            th_send_all(fds[i], ping_frame, 6);
            break;
        case 2: /* half a frame */
            th_send_all(fds[i], ping_frame, plen - 1);
            break;
        case 3: /* a request answered but never read */
            th_send_all(fds[i], ping_frame, plen);
            break;
        case 4: /* a slow request in flight (only some: the pool is small) */
            if (i % 50 == 4)
                th_send_all(fds[i], sleep_frame, flen);
            else
                th_send_all(fds[i], ping_frame, plen);
            break;
        }
    }
    assert_int_equal(ping(), SENTRA_OK);
    long during = rss_kb(srv.pid);
    /* Dropped abruptly: half with a reset (SO_LINGER 0), half closed. */
    for (int i = 0; i < N; i++) {
        if (i % 2) {
            struct linger lg = { 1, 0 };
            setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(fds[i]);
    }
    free(fds);
    free(sleep_frame);
    free(ping_frame);
    /* The server stays up and serves; the dropped requests' SQL stops. */
    assert_int_equal(ping(), SENTRA_OK);
    int code = -1;
    for (int64_t end = th_now_ms() + 10000; th_now_ms() < end && code != SENTRA_NOT_FOUND;) {
        code = db_call();
        if (code != SENTRA_NOT_FOUND)
            usleep(100 * 1000);
    }
    assert_int_equal(code, SENTRA_NOT_FOUND);
    usleep(500 * 1000);
    long after = rss_kb(srv.pid);
    print_message("1000 connections: server RSS %ld kB before, %ld kB open, %ld kB after\n",
                  before, during, after);
    assert_growth(before, during, 64 * 1024);
    assert_growth(before, after, 64 * 1024);
    assert_int_equal(kill(srv.pid, 0), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_never_reads),
        cmocka_unit_test(test_thousand_dropped_connections),
        cmocka_unit_test(test_sigkill_then_replay),
        cmocka_unit_test(test_postgres_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
