/*
 * wire.h: what the tests of the call core and the connection layer share
 * (test_auth.c, test_waits.c, test_stop.c, test_memory.c): native frames
 * over raw sockets, the server's memory from /proc, its log, and SQL on
 * the server's own database.
 *
 * Include after cmocka.h and harness.h; one server per test program, named
 * by the program's `static th_server_t srv`.
 */
#ifndef SENTRA_TEST_WIRE_H
#define SENTRA_TEST_WIRE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "frame.h"
#include "harness.h"
#include "status.h"
#include "sentra/v1/rpc.pb-c.h"
#include "sentra/v1/sentra.pb-c.h"
#include "sentra/v1/system.pb-c.h"

#define WIRE_FN static __attribute__((unused))
#define WIRE_IO_MS 15000

/* ---------------------------------------------------------------- memory */

/* A field of /proc/<pid>/status in kB ("VmRSS", "VmHWM"), or -1. */
WIRE_FN long proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t n = strlen(field);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kb;
}

WIRE_FN long rss_kb(pid_t pid)
{
    return proc_kb(pid, "VmRSS");
}

/* Resets the peak (VmHWM) to the current RSS. */
WIRE_FN void reset_peak(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs("5", f);
        fclose(f);
    }
}

/* Whether the server's RSS means something: not under valgrind (its
 * shadow memory) nor AddressSanitizer (its shadow and quarantine of freed
 * blocks, 256 MB by default). */
WIRE_FN int memory_measurable(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fgets(line, sizeof(line), f) != NULL &&
            (strncmp(line, "memcheck", 8) == 0 || strncmp(line, "valgrind", 8) == 0)) {
            fclose(f);
            return 0;
        }
        fclose(f);
    }
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 1;
    int asan = 0;
    while (!asan && fgets(line, sizeof(line), f) != NULL)
        asan = strstr(line, "libasan") != NULL;
    fclose(f);
    return !asan;
}

/* ---------------------------------------------------------------- frames */

/* A whole REQUEST frame (malloc'd) for method with msg as payload (msg
 * may be NULL), an optional token. */
WIRE_FN uint8_t *wire_request(uint32_t sid, const char *method, const ProtobufCMessage *msg,
                              const char *token, uint32_t timeout_ms, size_t *len)
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

WIRE_FN int wire_send(int fd, uint32_t sid, const char *method, const ProtobufCMessage *msg,
                      const char *token, uint32_t timeout_ms)
{
    size_t len;
    uint8_t *f = wire_request(sid, method, msg, token, timeout_ms, &len);
    int r = th_send_all(fd, f, len);
    free(f);
    return r;
}

typedef struct wire_frame {
    uint8_t type;
    uint32_t sid;
    uint32_t len;
    uint8_t *payload;     /* malloc'd; wire_frame_free */
} wire_frame_t;

WIRE_FN void wire_frame_free(wire_frame_t *f)
{
    free(f->payload);
    f->payload = NULL;
}

/* The next frame other than PING (answered with PONG) and PONG. Returns 1,
 * 0 on EOF or reset, -1 on timeout. */
WIRE_FN int wire_next(int fd, wire_frame_t *f, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    for (;;) {
        uint8_t h[SENTRA_FRAME_HEADER_LEN];
        memset(f, 0, sizeof(*f));
        int r = th_read_full(fd, h, sizeof(h), deadline);
        if (r != 1)
            return r;
        f->len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        f->type = h[4];
        f->sid = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
        assert_true(f->len <= 16u << 20);
        f->payload = malloc(f->len + 1);
        assert_non_null(f->payload);
        r = th_read_full(fd, f->payload, f->len, deadline);
        if (r != 1) {
            wire_frame_free(f);
            return r;
        }
        if (f->type == SENTRA_FRAME_PING) {
            h[4] = SENTRA_FRAME_PONG;
            th_send_all(fd, h, sizeof(h));
            th_send_all(fd, f->payload, f->len);
        }
        if (f->type != SENTRA_FRAME_PING && f->type != SENTRA_FRAME_PONG)
            return 1;
        wire_frame_free(f);
    }
}

/* The next RESPONSE (GOAWAY frames skipped): 1 with *sid and the unpacked
 * response (sentra__v1__response__free_unpacked), 0 on EOF, -1 on timeout. */
WIRE_FN int wire_response(int fd, uint32_t *sid, Sentra__V1__Response **resp, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    for (;;) {
        wire_frame_t f;
        int64_t left = deadline - th_now_ms();
        int r = wire_next(fd, &f, left > 0 ? (int)left : 0);
        if (r != 1)
            return r;
        if (f.type == SENTRA_FRAME_RESPONSE) {
            *sid = f.sid;
            *resp = sentra__v1__response__unpack(NULL, f.len, f.payload);
            wire_frame_free(&f);
            assert_non_null(*resp);
            return 1;
        }
        wire_frame_free(&f);
    }
}

/* One request on a fresh connection: its status code; the response goes
 * to *out when out is not NULL (caller frees). */
WIRE_FN int wire_call(th_server_t *s, const char *method, const ProtobufCMessage *msg,
                      const char *token, Sentra__V1__Response **out)
{
    int fd = th_connect_raw(s);
    assert_true(fd >= 0);
    assert_int_equal(wire_send(fd, 1, method, msg, token, 10000), 0);
    uint32_t sid = 0;
    Sentra__V1__Response *r = NULL;
    int got = wire_response(fd, &sid, &r, WIRE_IO_MS);
    close(fd);
    if (got != 1)
        fail_msg("%s: no answer (%s)", method, got == 0 ? "connection closed" : "timeout");
    assert_int_equal(sid, 1);
    int code = r->code;
    if (out != NULL)
        *out = r;
    else
        sentra__v1__response__free_unpacked(r, NULL);
    return code;
}

WIRE_FN int wire_ping(th_server_t *s)
{
    Sentra__V1__PingRequest p = SENTRA__V1__PING_REQUEST__INIT;
    return wire_call(s, "/sentra.v1.SystemService/Ping", &p.base, NULL, NULL);
}

/* GetSentra of an id nobody has: NOT_FOUND with a good token (the token
 * check and one query), UNAUTHENTICATED with a bad one. */
WIRE_FN int wire_get_missing(th_server_t *s, const char *token)
{
    Sentra__V1__GetSentraRequest g = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    g.id = "00000000-0000-4000-8000-000000000001";
    return wire_call(s, "/sentra.v1.SentraService/GetSentra", &g.base, token, NULL);
}

/* ---------------------------------------------------------------- the log */

/* How many lines of the server's log contain needle. */
WIRE_FN int log_count(const th_server_t *s, const char *needle)
{
    FILE *f = fopen(s->logpath, "r");
    if (f == NULL)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* Waits (up to timeout_ms) until at least n lines contain needle; returns
 * whether they came. */
WIRE_FN int log_wait(const th_server_t *s, const char *needle, int n, int timeout_ms)
{
    for (int64_t end = th_now_ms() + timeout_ms; th_now_ms() < end;) {
        if (log_count(s, needle) >= n)
            return 1;
        usleep(20 * 1000);
    }
    return log_count(s, needle) >= n;
}

/* ---------------------------------------------------------------- SQL */

/* Runs sql (no parameters, or params[0..n)) and expects success; returns
 * the first value of the first row (static buffer) or "". */
WIRE_FN const char *sql1(PGconn *db, const char *sql, int n, const char *const *params)
{
    static char out[1024];
    PGresult *res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg("SQL failed: %s\n  %s", PQresultErrorMessage(res), sql);
    snprintf(out, sizeof(out), "%s",
             PQntuples(res) > 0 && PQnfields(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return out;
}

/* The backend of the pool connection that LISTENs: the pid of the last
 * "db_connected ... listen=1" line of the server's log (db.c says it at
 * every connection), or 0 when none is there yet. The query text in
 * pg_stat_activity cannot tell it: the pool's watchdog probes idle
 * connections, the listening one included, with SELECT 1. */
WIRE_FN int listener_pid_log(const th_server_t *s)
{
    FILE *f = fopen(s->logpath, "r");
    char line[2048];
    int pid = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, "event=db_connected ");
        const char *q = p != NULL ? strstr(p, " pid=") : NULL;
        if (q != NULL && strstr(p, " listen=1 ") != NULL)
            pid = atoi(q + 5);
    }
    fclose(f);
    return pid;
}

/* listener_pid_log, waited for up to timeout_ms (the pool connects after
 * the server says it listens). */
WIRE_FN int listener_pid_wait(const th_server_t *s, int timeout_ms)
{
    int pid = 0;
    for (int64_t end = th_now_ms() + timeout_ms; (pid = listener_pid_log(s)) == 0 && th_now_ms() < end;)
        usleep(20 * 1000);
    return pid;
}

/* Waits until a backend other than ours runs a statement containing like
 * (a LIKE pattern) and returns its pid, or 0 after timeout_ms. */
WIRE_FN int wait_running(PGconn *db, const char *like, int timeout_ms)
{
    const char *p[1] = { like };
    for (int64_t end = th_now_ms() + timeout_ms; th_now_ms() < end;) {
        PGresult *res = PQexecParams(db,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1",
            1, NULL, p, NULL, NULL, 0);
        int pid = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1
                      ? atoi(PQgetvalue(res, 0, 0)) : 0;
        PQclear(res);
        if (pid > 0)
            return pid;
        usleep(20 * 1000);
    }
    return 0;
}

/* The pool's backends (connected to the server's database, other than
 * ours), waited for until there are n (up to 10 s); returns how many. */
WIRE_FN int wait_backends(PGconn *db, int n)
{
    int have = 0;
    for (int i = 0; i < 500; i++) {
        have = atoi(sql1(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                             " AND pid <> pg_backend_pid() AND backend_type = 'client backend'", 0, NULL));
        if (have >= n)
            return have;
        usleep(20 * 1000);
    }
    return have;
}

#endif
