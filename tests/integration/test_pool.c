/*
 * test_pool.c: the database pool seen from outside, through a real
 * sentrad, real sockets and the test cluster (issues 12 and 13). Each test
 * runs a server of its own and is bounded in time.
 *
 *   - An OK means committed: writers (creates, updates, deletes, pushes)
 *     run for a bounded time beside cancellers (CANCEL frames, expired
 *     deadlines, clients that disconnect with calls in flight); then every
 *     acknowledged id and version is in the database.
 *   - A create whose commit fails (a deferred constraint trigger installed
 *     in the test database) is answered with an error, with --db-pool 1 and
 *     other queries pipelined, and with the default pool, and never hangs.
 *   - Thousands of parked PullChanges long polls and a database restart:
 *     every poll is answered, sentrad survives and serves again.
 *   - A silent database host (the TCP forwarder in front of PostgreSQL
 *     stopped with SIGSTOP): queries are answered UNAVAILABLE after
 *     --db-stall-timeout, Health says NOT_SERVING, and both recover.
 *   - Thousands of GetStatistics and ListSentra shapes keep sentrad's VmRSS
 *     and its backends' private memory flat.
 *   - --max-deadline, --db-statement-timeout and the pool queue's bound
 *     (RESOURCE_EXHAUSTED).
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "harness.h"
#include "status.h"
#include "tcp_proxy.h"
#include "sentra/v1/rpc.pb-c.h"
#include "sentra/v1/sentra.pb-c.h"
#include "sentra/v1/system.pb-c.h"

#define M_CREATE "/sentra.v1.SentraService/CreateSentra"
#define M_GET "/sentra.v1.SentraService/GetSentra"
#define M_UPDATE "/sentra.v1.SentraService/UpdateSentra"
#define M_DELETE "/sentra.v1.SentraService/DeleteSentra"
#define M_LIST "/sentra.v1.SentraService/ListSentra"
#define M_STATS "/sentra.v1.StatsService/GetStatistics"
#define M_PULL "/sentra.v1.SyncService/PullChanges"
#define M_PUSH "/sentra.v1.SyncService/PushChanges"
#define M_SLEEP "/sentra.v1.SystemService/Sleep"
#define M_PING "/sentra.v1.SystemService/Ping"
#define M_HEALTH "/sentra.v1.Health/Check"

#define IO_TIMEOUT_MS 20000

/* ---------------------------------------------------------------- frames */

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

static int send_req(int fd, uint32_t sid, const char *method, const ProtobufCMessage *msg,
                    const char *token, const char *idem, uint32_t timeout_ms)
{
    size_t len;
    uint8_t *f = request_frame(sid, method, msg, token, idem, timeout_ms, &len);
    int r = th_send_all(fd, f, len);
    free(f);
    return r;
}

static int send_cancel(int fd, uint32_t sid)
{
    uint8_t h[SENTRA_FRAME_HEADER_LEN];
    sentra_frame_header(h, SENTRA_FRAME_CANCEL, 0, sid, 0);
    return th_send_all(fd, h, sizeof h);
}

/* Reads the next RESPONSE (answering PINGs, skipping GOAWAY) before
 * deadline_ms (th_now_ms clock). Returns 1, 0 on EOF, -1 on timeout. */
static int read_response_until(int fd, uint32_t *sid, Sentra__V1__Response **resp, int64_t deadline)
{
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

static int read_response(int fd, uint32_t *sid, Sentra__V1__Response **resp)
{
    return read_response_until(fd, sid, resp, th_now_ms() + IO_TIMEOUT_MS);
}

/* One request on a fresh connection; returns its code (-1: no answer), the
 * response in *out if wanted (caller frees). */
static int call_once(th_server_t *s, const char *method, const ProtobufCMessage *msg,
                     const char *token, uint32_t timeout_ms, Sentra__V1__Response **out)
{
    int fd = th_connect_raw(s);
    assert_true(fd >= 0);
    assert_int_equal(send_req(fd, 1, method, msg, token, NULL, timeout_ms), 0);
    uint32_t sid = 0;
    Sentra__V1__Response *r = NULL;
    int got = read_response_until(fd, &sid, &r, th_now_ms() + (int64_t)timeout_ms + 5000);
    close(fd);
    if (got != 1)
        return -1;
    int code = r->code;
    if (out != NULL)
        *out = r;
    else
        sentra__v1__response__free_unpacked(r, NULL);
    return code;
}

static int health(th_server_t *s)
{
    Sentra__V1__HealthCheckRequest h = SENTRA__V1__HEALTH_CHECK_REQUEST__INIT;
    Sentra__V1__Response *r = NULL;
    if (call_once(s, M_HEALTH, &h.base, NULL, 5000, &r) != SENTRA_OK)
        return -1;
    Sentra__V1__HealthCheckResponse *hr =
        sentra__v1__health_check_response__unpack(NULL, r->payload.len, r->payload.data);
    assert_non_null(hr);
    int st = hr->status;
    sentra__v1__health_check_response__free_unpacked(hr, NULL);
    sentra__v1__response__free_unpacked(r, NULL);
    return st;
}

#define SERVING SENTRA__V1__SERVING_STATUS__SERVING_STATUS_SERVING
#define NOT_SERVING SENTRA__V1__SERVING_STATUS__SERVING_STATUS_NOT_SERVING

static int sleep_call(th_server_t *s, uint32_t ms, uint32_t timeout_ms)
{
    Sentra__V1__SleepRequest q = SENTRA__V1__SLEEP_REQUEST__INIT;
    q.ms = ms;
    return call_once(s, M_SLEEP, &q.base, NULL, timeout_ms, NULL);
}

static void fill_sentra(Sentra__V1__Sentra *s, const char *name)
{
    s->regency_code = "18.71";
    s->name = (char *)name;
    s->commodity = "Kopi";
    s->main_product = "Kopi bubuk";
    s->kbli_code = "10761";
    s->kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    s->sector_group = SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD;
    s->status = SENTRA__V1__STATUS__STATUS_FORMED;
    s->formed_on = "2020-01-02";
}

static int send_create(int fd, uint32_t sid, const char *token, const char *name, const char *key,
                       uint32_t timeout_ms)
{
    Sentra__V1__CreateSentraRequest req = SENTRA__V1__CREATE_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
    fill_sentra(&s, name);
    req.sentra = &s;
    return send_req(fd, sid, M_CREATE, &req.base, token, key, timeout_ms);
}

static long rss_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kb;
}

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

/* Whether pid runs with AddressSanitizer: its RSS then holds the
 * quarantine of freed memory (up to 256 MB), and growth means nothing. */
static int under_asan(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, "libasan") != NULL;
    fclose(f);
    return found;
}

static int alive(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' && p[2] != 'Z';
}

static PGresult *db_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    return r;
}

static long db_long(PGconn *c, const char *sql)
{
    PGresult *r = db_exec(c, sql);
    long v = PQntuples(r) > 0 ? atol(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

/* ---------------------------------------------------------------- an OK means committed */

/*
 * The stress test of issue 12. One process drives every client through
 * poll(): writers keep a few writes in flight each and record every
 * acknowledged (id, version); cancellers send slow requests and CANCEL
 * them, send requests with deadlines of a few milliseconds, or close their
 * sockets with requests in flight. The server has two connections, so the
 * writes share pipelines with what is being cancelled. Afterwards every
 * acknowledged version must be in sentra_change (and every acknowledged
 * create in sentra).
 */

enum role { R_WRITER, R_CANCEL, R_DEADLINE, R_DROP };
enum wop { W_NONE, W_CREATE, W_UPDATE, W_DELETE, W_PUSH, W_NOISE };

#define MAX_RECS 400
#define MAX_PEND 64

typedef struct rec {
    char id[40];
    int64_t version;
    int busy;            /* a write on it is in flight */
    int gone;            /* deleted, or its state is unknown: no more writes */
} rec_t;

typedef struct pend {
    uint32_t sid;
    enum wop op;
    int rec;             /* index into the peer's recs */
    int64_t cancel_at;   /* send CANCEL then (0: never) */
} pend_t;

typedef struct peer {
    enum role role;
    int fd;
    int index;
    uint8_t *buf;
    size_t len, cap;
    uint32_t next_sid;
    pend_t pend[MAX_PEND];
    int npend;
    int64_t drop_at;     /* R_DROP: close the socket then */
    rec_t recs[MAX_RECS];
    int nrecs;
    int seq;
} peer_t;

typedef struct ack {
    char id[40];
    int64_t version;
    char kind;           /* C, U, D, P */
} ack_t;

static ack_t *acks;
static int nacks, acks_cap;
static int n_cancelled, n_deadline, n_dropped_calls, n_unavailable, n_other;

static void add_ack(const char *id, int64_t version, char kind)
{
    if (nacks == acks_cap) {
        acks_cap = acks_cap ? acks_cap * 2 : 1024;
        acks = realloc(acks, (size_t)acks_cap * sizeof *acks);
        assert_non_null(acks);
    }
    snprintf(acks[nacks].id, sizeof acks[nacks].id, "%s", id);
    acks[nacks].version = version;
    acks[nacks].kind = kind;
    nacks++;
}

static const char *stress_token;
static th_server_t stress_srv;

static void peer_connect(peer_t *p)
{
    p->fd = th_connect_raw(&stress_srv);
    assert_true(p->fd >= 0);
    p->len = 0;
    p->npend = 0;
    p->next_sid = 1;
}

static pend_t *pend_add(peer_t *p, enum wop op, int rec)
{
    assert_true(p->npend < MAX_PEND);
    pend_t *d = &p->pend[p->npend++];
    d->sid = p->next_sid++;
    d->op = op;
    d->rec = rec;
    d->cancel_at = 0;
    return d;
}

static void send_full_sentra_push(peer_t *p, pend_t *d, rec_t *r)
{
    Sentra__V1__PushChangesRequest req = SENTRA__V1__PUSH_CHANGES_REQUEST__INIT;
    Sentra__V1__Mutation m = SENTRA__V1__MUTATION__INIT;
    Sentra__V1__Mutation *ms[1] = { &m };
    Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
    char name[64], mid[64], client[32];
    snprintf(name, sizeof name, "pool push %d.%d", p->index, p->seq);
    snprintf(mid, sizeof mid, "m-%d-%d", p->index, p->seq++);
    snprintf(client, sizeof client, "writer-%d", p->index);
    fill_sentra(&s, name);
    s.id = r->id;
    m.mutation_id = mid;
    m.op = SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT;
    m.sentra = &s;
    m.base_version = r->version;
    req.client_id = client;
    req.mutations = ms;
    req.n_mutations = 1;
    assert_int_equal(send_req(p->fd, d->sid, M_PUSH, &req.base, stress_token, NULL, 15000), 0);
}

/* A writer's next write: a create, or a write on an idle record. */
static void writer_next(peer_t *p)
{
    int idle[MAX_RECS], n = 0;
    for (int i = 0; i < p->nrecs; i++)
        if (!p->recs[i].busy && !p->recs[i].gone)
            idle[n++] = i;
    int pick = rand() % 100;
    if ((n < 4 || pick < 30) && p->nrecs < MAX_RECS) {
        char name[64], key[64];
        snprintf(name, sizeof name, "pool create %d.%d", p->index, p->seq);
        snprintf(key, sizeof key, "k-%d-%d-%d", p->index, p->seq++, rand());
        pend_t *d = pend_add(p, W_CREATE, -1);
        assert_int_equal(send_create(p->fd, d->sid, stress_token, name, key, 15000), 0);
        return;
    }
    if (n == 0)
        return;
    int ri = idle[rand() % n];
    rec_t *r = &p->recs[ri];
    r->busy = 1;
    if (pick < 65) {
        Sentra__V1__UpdateSentraRequest req = SENTRA__V1__UPDATE_SENTRA_REQUEST__INIT;
        Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
        char name[64];
        char *mask[1] = { "name" };
        snprintf(name, sizeof name, "pool update %d.%d", p->index, p->seq++);
        s.id = r->id;
        s.name = name;
        req.sentra = &s;
        req.update_mask = mask;
        req.n_update_mask = 1;
        req.expected_version = r->version;
        pend_t *d = pend_add(p, W_UPDATE, ri);
        assert_int_equal(send_req(p->fd, d->sid, M_UPDATE, &req.base, stress_token, NULL, 15000), 0);
    } else if (pick < 75) {
        Sentra__V1__DeleteSentraRequest req = SENTRA__V1__DELETE_SENTRA_REQUEST__INIT;
        req.id = r->id;
        req.expected_version = r->version;
        pend_t *d = pend_add(p, W_DELETE, ri);
        assert_int_equal(send_req(p->fd, d->sid, M_DELETE, &req.base, stress_token, NULL, 15000), 0);
    } else {
        pend_t *d = pend_add(p, W_PUSH, ri);
        send_full_sentra_push(p, d, r);
    }
}

/* A request whose fate is to be cancelled, time out or be dropped. */
static void noise_next(peer_t *p, int64_t now)
{
    uint32_t timeout = 15000;
    if (p->role == R_DEADLINE)
        timeout = 1 + (uint32_t)(rand() % 15);
    pend_t *d = pend_add(p, W_NOISE, -1);
    int kind = rand() % 5;
    if (kind == 0) {
        char name[64];
        snprintf(name, sizeof name, "pool noise %d.%d", p->index, p->seq++);
        assert_int_equal(send_create(p->fd, d->sid, stress_token, name, NULL, timeout), 0);
    } else if (kind == 1) {
        Sentra__V1__GetStatisticsRequest q = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
        Sentra__V1__GroupBy g[2] = { SENTRA__V1__GROUP_BY__GROUP_BY_STATUS,
                                     SENTRA__V1__GROUP_BY__GROUP_BY_FORMATION_YEAR };
        q.group_by = g;
        q.n_group_by = 2;
        assert_int_equal(send_req(p->fd, d->sid, M_STATS, &q.base, stress_token, NULL, timeout), 0);
    } else if (kind == 2) {
        Sentra__V1__PullChangesRequest q = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
        q.limit = 200;
        assert_int_equal(send_req(p->fd, d->sid, M_PULL, &q.base, stress_token, NULL, timeout), 0);
    } else {
        Sentra__V1__SleepRequest q = SENTRA__V1__SLEEP_REQUEST__INIT;
        q.ms = 1 + (uint32_t)(rand() % 25);
        assert_int_equal(send_req(p->fd, d->sid, M_SLEEP, &q.base, NULL, NULL, timeout), 0);
    }
    if (p->role == R_CANCEL)
        d->cancel_at = now + rand() % 25;
}

static void pend_remove(peer_t *p, int i)
{
    p->pend[i] = p->pend[--p->npend];
}

/* One response for peer p. */
static void on_response(peer_t *p, uint32_t sid, Sentra__V1__Response *r)
{
    int i;
    for (i = 0; i < p->npend && p->pend[i].sid != sid; i++)
        ;
    if (i == p->npend) {
        /* Its CANCEL went out: CANCELLED, or the answer that left first. */
        n_cancelled += (int)r->code == SENTRA_CANCELLED;
        sentra__v1__response__free_unpacked(r, NULL);
        return;
    }
    pend_t d = p->pend[i];
    pend_remove(p, i);
    if ((int)r->code == SENTRA_CANCELLED)
        n_cancelled++;
    else if ((int)r->code == SENTRA_DEADLINE_EXCEEDED)
        n_deadline++;
    else if ((int)r->code == SENTRA_UNAVAILABLE)
        n_unavailable++;
    else if ((int)r->code != SENTRA_OK)
        n_other++;
    rec_t *rec = d.rec >= 0 ? &p->recs[d.rec] : NULL;
    if (rec != NULL) {
        rec->busy = 0;
        if ((int)r->code != SENTRA_OK)
            rec->gone = 1;  /* unknown now: leave it */
    }
    if ((int)r->code == SENTRA_OK) {
        switch (d.op) {
        case W_CREATE: case W_UPDATE: {
            Sentra__V1__Sentra *s = sentra__v1__sentra__unpack(NULL, r->payload.len, r->payload.data);
            assert_non_null(s);
            add_ack(s->id, s->version, d.op == W_CREATE ? 'C' : 'U');
            if (d.op == W_CREATE) {
                rec = &p->recs[p->nrecs++];
                memset(rec, 0, sizeof *rec);
                snprintf(rec->id, sizeof rec->id, "%s", s->id);
            }
            rec->version = s->version;
            sentra__v1__sentra__free_unpacked(s, NULL);
            break;
        }
        case W_DELETE: {
            Sentra__V1__DeleteSentraResponse *dr =
                sentra__v1__delete_sentra_response__unpack(NULL, r->payload.len, r->payload.data);
            assert_non_null(dr);
            add_ack(dr->id, dr->version, 'D');
            rec->gone = 1;
            sentra__v1__delete_sentra_response__free_unpacked(dr, NULL);
            break;
        }
        case W_PUSH: {
            Sentra__V1__PushChangesResponse *pr =
                sentra__v1__push_changes_response__unpack(NULL, r->payload.len, r->payload.data);
            assert_non_null(pr);
            assert_int_equal(pr->n_results, 1);
            if (pr->results[0]->outcome == SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED) {
                add_ack(rec->id, pr->results[0]->version, 'P');
                rec->version = pr->results[0]->version;
            } else {
                rec->gone = 1;
            }
            sentra__v1__push_changes_response__free_unpacked(pr, NULL);
            break;
        }
        default:
            break;
        }
    }
    sentra__v1__response__free_unpacked(r, NULL);
}

/* Reads what p's socket has; returns -1 when it closed. */
static int peer_read(peer_t *p)
{
    if (p->cap - p->len < 65536) {
        p->cap = p->cap ? p->cap * 2 : 131072;
        p->buf = realloc(p->buf, p->cap);
        assert_non_null(p->buf);
    }
    ssize_t n = read(p->fd, p->buf + p->len, p->cap - p->len);
    if (n <= 0)
        return n == 0 || (errno != EAGAIN && errno != EINTR) ? -1 : 0;
    p->len += (size_t)n;
    size_t off = 0;
    while (p->len - off >= SENTRA_FRAME_HEADER_LEN) {
        const uint8_t *h = p->buf + off;
        uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (p->len - off < SENTRA_FRAME_HEADER_LEN + len)
            break;
        if (h[4] == SENTRA_FRAME_RESPONSE) {
            uint32_t sid = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
            Sentra__V1__Response *r = sentra__v1__response__unpack(NULL, len, h + SENTRA_FRAME_HEADER_LEN);
            assert_non_null(r);
            on_response(p, sid, r);
        } else if (h[4] == SENTRA_FRAME_PING) {
            uint8_t pong[SENTRA_FRAME_HEADER_LEN + SENTRA_PING_MAX_PAYLOAD];
            memcpy(pong, h, SENTRA_FRAME_HEADER_LEN + len);
            pong[4] = SENTRA_FRAME_PONG;
            th_send_all(p->fd, pong, SENTRA_FRAME_HEADER_LEN + len);
        }
        off += SENTRA_FRAME_HEADER_LEN + len;
    }
    memmove(p->buf, p->buf + off, p->len - off);
    p->len -= off;
    return 0;
}

#define N_WRITERS 4
#define N_NOISE 6
#define STRESS_MS 10000

static void stress_round(int pool_size)
{
    char npool[8];
    snprintf(npool, sizeof npool, "%d", pool_size);
    const char *args[] = { "--db-pool", npool, NULL };
    assert_int_equal(th_server_start(&stress_srv, "pool_ack", args), 0);
    char *tok = th_token(&stress_srv, "district", "18.71");
    assert_non_null(tok);
    stress_token = tok;
    nacks = n_cancelled = n_deadline = n_dropped_calls = n_unavailable = n_other = 0;

    static peer_t peers[N_WRITERS + N_NOISE];
    int np = N_WRITERS + N_NOISE;
    for (int i = 0; i < np; i++) {
        peer_t *p = &peers[i];
        memset(p, 0, sizeof *p);
        p->index = i;
        p->role = i < N_WRITERS ? R_WRITER : (enum role)(R_CANCEL + (i - N_WRITERS) % 3);
        peer_connect(p);
    }
    int64_t start = th_now_ms(), end = start + STRESS_MS, drain_end = end + 20000;
    struct pollfd pfd[N_WRITERS + N_NOISE];
    for (;;) {
        int64_t now = th_now_ms();
        int busy = 0;
        for (int i = 0; i < np; i++) {
            peer_t *p = &peers[i];
            if (now < end) {
                if (p->role == R_WRITER) {
                    while (p->npend < 6 && p->nrecs < MAX_RECS)
                        writer_next(p);
                } else {
                    while (p->npend < 8)
                        noise_next(p, now);
                    if (p->role == R_DROP && p->drop_at == 0)
                        p->drop_at = now + rand() % 30;
                }
            }
            for (int k = 0; k < p->npend; k++)
                if (p->pend[k].cancel_at != 0 && p->pend[k].cancel_at <= now) {
                    send_cancel(p->fd, p->pend[k].sid);
                    pend_remove(p, k--);
                }
            if (p->role == R_DROP && p->drop_at != 0 && p->drop_at <= now) {
                /* Gone with calls in flight (RST when unread data waits). */
                n_dropped_calls += p->npend;
                close(p->fd);
                p->drop_at = 0;
                peer_connect(p);
            }
            if (p->role == R_WRITER && p->npend > 0)
                busy = 1;
            pfd[i] = (struct pollfd){ p->fd, POLLIN, 0 };
        }
        if (now >= end && (!busy || now >= drain_end))
            break;
        assert_true(poll(pfd, (nfds_t)np, 5) >= 0 || errno == EINTR);
        for (int i = 0; i < np; i++)
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (peer_read(&peers[i]) < 0) {
                    /* The server never closes a well-behaved client. */
                    assert_true(peers[i].role != R_WRITER);
                    close(peers[i].fd);
                    peer_connect(&peers[i]);
                }
            }
    }
    int unanswered = 0;
    for (int i = 0; i < N_WRITERS; i++)
        unanswered += peers[i].npend;
    for (int i = 0; i < np; i++) {
        close(peers[i].fd);
        free(peers[i].buf);
        peers[i].buf = NULL;
        peers[i].cap = 0;
    }

    /* Every acknowledged version is in the change log; every acknowledged
     * create is a row. */
    PGconn *db = th_db(&stress_srv);
    assert_non_null(db);
    int lost = 0, created = 0;
    for (int i = 0; i < nacks; i++) {
        char ver[32];
        snprintf(ver, sizeof ver, "%lld", (long long)acks[i].version);
        const char *v[2] = { acks[i].id, ver };
        PGresult *r = PQexecParams(db, "SELECT (SELECT count(*) FROM sentra_change WHERE sentra_id = $1::uuid"
                                       " AND new_version = $2::bigint) + (SELECT count(*) FROM sentra"
                                       " WHERE id = $1::uuid AND version >= $2::bigint)",
                                   2, NULL, v, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        if (atol(PQgetvalue(r, 0, 0)) != 2) {
            if (lost < 10)
                print_message("acknowledged but not in the database: %c %s version %s\n", acks[i].kind,
                              acks[i].id, ver);
            lost++;
        }
        created += acks[i].kind == 'C';
        PQclear(r);
    }
    PQfinish(db);
    print_message("pool %d: %d acknowledged writes (%d creates), %d lost; cancelled %d, deadline %d, "
                  "dropped with calls %d, unavailable %d, other errors %d, writes unanswered %d\n",
                  pool_size, nacks, created, lost, n_cancelled, n_deadline, n_dropped_calls,
                  n_unavailable, n_other, unanswered);
    free(tok);
    int st = th_server_stop(&stress_srv);
    th_server_free(&stress_srv);
    assert_int_equal(lost, 0);
    assert_int_equal(unanswered, 0);
    assert_int_equal(st, 0);
    /* The run meant something: writes of every kind, and cancellations. */
    assert_true(nacks > 300 && created > 50);
    assert_true(n_cancelled > 50 && n_deadline > 50 && n_dropped_calls > 50);
}

static void test_ack_means_committed(void **state)
{
    stress_round(2);
}

static void test_ack_means_committed_one_conn(void **state)
{
    stress_round(1);
}

/* ---------------------------------------------------------------- errors at commit */

static void install_commit_trigger(th_server_t *s)
{
    PGconn *db = th_db(s);
    assert_non_null(db);
    PQclear(db_exec(db, "CREATE FUNCTION test_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$"
                        " BEGIN IF NEW.name LIKE 'fail at commit%' THEN"
                        " RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'check_violation';"
                        " END IF; RETURN NULL; END $$"));
    PQclear(db_exec(db, "CREATE CONSTRAINT TRIGGER test_fail_at_commit AFTER INSERT ON sentra"
                        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_fail_at_commit()"));
    PQfinish(db);
}

static void commit_failure_round(const char *const *args, int with_traffic)
{
    th_server_t s;
    assert_int_equal(th_server_start(&s, "pool_commit", args), 0);
    install_commit_trigger(&s);
    char *tok = th_token(&s, "district", "18.71");
    assert_non_null(tok);

    int fd = th_connect_raw(&s);
    assert_true(fd >= 0);
    uint32_t sid = 1;
    int n = 0;
    if (with_traffic) {
        /* A slow query first, so that what follows waits in the pipeline
         * of the one connection, then writes and reads around the bad one. */
        Sentra__V1__SleepRequest sl = SENTRA__V1__SLEEP_REQUEST__INIT;
        sl.ms = 300;
        assert_int_equal(send_req(fd, sid++, M_SLEEP, &sl.base, NULL, NULL, 10000), 0);
        assert_int_equal(send_create(fd, sid++, tok, "commit ok 1", NULL, 10000), 0);
        n += 2;
    }
    uint32_t bad_sid = sid;
    assert_int_equal(send_create(fd, sid++, tok, "fail at commit 1", NULL, 10000), 0);
    n++;
    if (with_traffic) {
        Sentra__V1__GetSentraRequest g = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
        g.id = "00000000-0000-4000-8000-000000000001";
        assert_int_equal(send_create(fd, sid++, tok, "commit ok 2", NULL, 10000), 0);
        assert_int_equal(send_req(fd, sid++, M_GET, &g.base, tok, NULL, 10000), 0);
        n += 2;
    }
    int64_t t0 = th_now_ms();
    int bad_code = -1, oks = 0;
    for (int i = 0; i < n; i++) {
        uint32_t rs = 0;
        Sentra__V1__Response *r = NULL;
        assert_int_equal(read_response(fd, &rs, &r), 1);
        if (rs == bad_sid) {
            bad_code = r->code;
            print_message("the create failing at commit: %s \"%s\" after %lld ms\n",
                          sentra_status_name(r->code), r->message, (long long)(th_now_ms() - t0));
        } else {
            oks += (int)r->code == SENTRA_OK || (int)r->code == SENTRA_NOT_FOUND;
        }
        sentra__v1__response__free_unpacked(r, NULL);
    }
    close(fd);
    PGconn *db = th_db(&s);
    long bad_rows = db_long(db, "SELECT count(*) FROM sentra WHERE name LIKE 'fail at commit%'");
    long ok_rows = db_long(db, "SELECT count(*) FROM sentra WHERE name LIKE 'commit ok%'");
    PQfinish(db);
    free(tok);
    th_server_free(&s);
    /* Refused (check_violation: INVALID_ARGUMENT), not OK and not hung
     * until its deadline; the others unaffected. */
    assert_int_equal(bad_code, SENTRA_INVALID_ARGUMENT);
    assert_int_equal(bad_rows, 0);
    assert_int_equal(oks, n - 1);
    assert_int_equal(ok_rows, with_traffic ? 2 : 0);
}

static void test_commit_failure_one_conn(void **state)
{
    const char *args[] = { "--db-pool", "1", NULL };
    commit_failure_round(args, 1);
}

static void test_commit_failure_default_pool(void **state)
{
    commit_failure_round(NULL, 0);
}

/* ---------------------------------------------------------------- long polls and a restart */

#define POLL_CONNS 100
#define POLLS_PER_CONN 100

/* 10,000 long polls park, then PostgreSQL stops and starts again. The old
 * pool called "notifications lost" from inside conn_broken, while the
 * broken connection still looked ready: every woken pull picked it,
 * failed, and broke it again, one stack level each. */
static void test_long_polls_and_restart(void **state)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* sentrad gets a 2 MB stack, what a loop on a thread of its own would
     * have (docs/DESIGN.md, "Several loops later"): the old recursion, one
     * level per parked poll, went 10,000 deep. */
    struct rlimit old_stack, small = { 2u << 20, 2u << 20 };
    assert_int_equal(getrlimit(RLIMIT_STACK, &old_stack), 0);
    if (old_stack.rlim_max != RLIM_INFINITY && old_stack.rlim_max < small.rlim_max)
        small.rlim_cur = small.rlim_max = old_stack.rlim_max;
    small.rlim_max = old_stack.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_STACK, &small), 0);
    th_server_t s;
    int started_srv = th_server_start(&s, "pool_polls", NULL);
    setrlimit(RLIMIT_STACK, &old_stack);
    assert_int_equal(started_srv, 0);
    char *tok = th_token(&s, "district", "18.71");
    assert_non_null(tok);
    int fds[POLL_CONNS];
    for (int c = 0; c < POLL_CONNS; c++) {
        fds[c] = th_connect_raw(&s);
        assert_true(fds[c] >= 0);
        for (int i = 0; i < POLLS_PER_CONN; i++) {
            Sentra__V1__PullChangesRequest q = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
            q.wait_ms = 60000;
            assert_int_equal(send_req(fds[c], (uint32_t)i + 1, M_PULL, &q.base, tok, NULL, 90000), 0);
        }
    }
    /* Parked: the first query of each has answered (nothing to pull). A
     * Ping on each connection answers after its pulls were read. */
    for (int c = 0; c < POLL_CONNS; c++) {
        Sentra__V1__PingRequest pq = SENTRA__V1__PING_REQUEST__INIT;
        assert_int_equal(send_req(fds[c], 1000, M_PING, &pq.base, NULL, NULL, 10000), 0);
        uint32_t sid = 0;
        Sentra__V1__Response *r = NULL;
        assert_int_equal(read_response(fds[c], &sid, &r), 1);
        assert_int_equal(sid, 1000);
        sentra__v1__response__free_unpacked(r, NULL);
    }
    sleep(2);
    assert_true(alive(s.pid));

    assert_int_equal(th_pg_stop(), 0);
    int answered = 0, codes_ok = 1;
    int64_t deadline = th_now_ms() + 20000;
    for (int c = 0; c < POLL_CONNS; c++)
        for (int i = 0; i < POLLS_PER_CONN; i++) {
            uint32_t sid = 0;
            Sentra__V1__Response *r = NULL;
            if (read_response_until(fds[c], &sid, &r, deadline) != 1)
                break;
            answered++;
            codes_ok &= (int)r->code == SENTRA_OK || (int)r->code == SENTRA_UNAVAILABLE;
            sentra__v1__response__free_unpacked(r, NULL);
        }
    int up = alive(s.pid);
    int started = th_pg_start();
    print_message("long polls answered after the stop: %d of %d; sentrad %s\n", answered,
                  POLL_CONNS * POLLS_PER_CONN, up ? "alive" : "dead");
    for (int c = 0; c < POLL_CONNS; c++)
        close(fds[c]);
    assert_int_equal(started, 0);
    assert_true(up);
    assert_int_equal(answered, POLL_CONNS * POLLS_PER_CONN);
    assert_true(codes_ok);

    /* It serves again once PostgreSQL is back. */
    int code = -1;
    for (int64_t end = th_now_ms() + 30000; th_now_ms() < end;) {
        Sentra__V1__PullChangesRequest q = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
        code = call_once(&s, M_PULL, &q.base, tok, 5000, NULL);
        if (code == SENTRA_OK)
            break;
        usleep(200 * 1000);
    }
    assert_int_equal(code, SENTRA_OK);
    assert_true(alive(s.pid));
    free(tok);
    assert_int_equal(th_server_stop(&s), 0);
    th_server_free(&s);
}

/* ---------------------------------------------------------------- a silent host */

/* Guards the frozen forwarder: if this test dies, a child of its own
 * (out of the test's process group) thaws it, so nothing stays stopped. */
static pid_t thaw_guard(pid_t frozen)
{
    pid_t parent = getpid();
    pid_t g = fork();
    if (g == 0) {
        setsid();
        for (int i = 0; i < 600 && getppid() == parent; i++)
            usleep(100 * 1000);
        kill(frozen, SIGCONT);
        _exit(0);
    }
    return g;
}

/* sentrad reaches PostgreSQL through the forwarder, over TCP. Stopped,
 * the forwarder is a host that accepts and never answers. The old pool
 * let a query wait for its deadline, and Health said SERVING throughout. */
static void test_silent_database(void **state)
{
    char ci[512], sock[256], tcp[768];
    assert_int_equal(th_createdb("pool_silent", ci, sizeof ci), 0);
    assert_int_equal(th_pg_socket_path(ci, sock, sizeof sock), 0);
    th_proxy_t px;
    assert_int_equal(th_proxy_start(&px, sock), 0);
    char *err = NULL;
    PQconninfoOption *o = PQconninfoParse(ci, &err);
    assert_non_null(o);
    const char *db = "", *user = "";
    for (PQconninfoOption *p = o; p->keyword != NULL; p++) {
        if (strcmp(p->keyword, "dbname") == 0 && p->val)
            db = p->val;
        if (strcmp(p->keyword, "user") == 0 && p->val)
            user = p->val;
    }
    snprintf(tcp, sizeof tcp, "host=127.0.0.1 port=%d dbname=%s user=%s", px.port, db, user);
    PQconninfoFree(o);
    const char *args[] = { "--db", tcp, "--db-pool", "2", "--db-stall-timeout", "1500",
                           "--db-statement-timeout", "1000", "--db-connect-timeout", "1000", NULL };
    th_server_t s;
    assert_int_equal(th_server_start(&s, "pool_silent", args), 0);
    char *tok = th_token(&s, "district", "18.71");
    assert_non_null(tok);
    Sentra__V1__GetSentraRequest g = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    g.id = "00000000-0000-4000-8000-000000000001";
    assert_int_equal(call_once(&s, M_GET, &g.base, tok, 5000, NULL), SENTRA_NOT_FOUND);
    assert_int_equal(health(&s), SERVING);

    th_proxy_freeze(&px);
    pid_t guard = thaw_guard(px.pid);
    int64_t t0 = th_now_ms();
    int code = call_once(&s, M_GET, &g.base, tok, 8000, NULL);
    int64_t took = th_now_ms() - t0;
    int st = -1;
    for (int64_t end = th_now_ms() + 6000; th_now_ms() < end;) {
        st = health(&s);
        if (st == NOT_SERVING)
            break;
        usleep(100 * 1000);
    }
    th_proxy_thaw(&px);
    kill(guard, SIGKILL);
    waitpid(guard, NULL, 0);
    print_message("while silent: GetSentra %s after %lld ms; health %d\n", sentra_status_name(code),
                  (long long)took, st);
    assert_int_equal(code, SENTRA_UNAVAILABLE);
    assert_int_equal(st, NOT_SERVING);

    int back = -1;
    for (int64_t end = th_now_ms() + 20000; th_now_ms() < end;) {
        if (health(&s) == SERVING && (back = call_once(&s, M_GET, &g.base, tok, 5000, NULL)) == SENTRA_NOT_FOUND)
            break;
        usleep(200 * 1000);
    }
    assert_int_equal(back, SENTRA_NOT_FOUND);
    free(tok);
    assert_int_equal(th_server_stop(&s), 0);
    th_server_free(&s);
    th_proxy_stop(&px);
}

/* ---------------------------------------------------------------- shapes and memory */

/* The private memory of the backends serving sentrad (every other client
 * of its database), kB; their pids in pids. */
static long backends_kb(PGconn *db, pid_t *pids, int max, int *n)
{
    PGresult *r = db_exec(db, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                              " AND backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY pid");
    long sum = 0;
    *n = 0;
    for (int i = 0; i < PQntuples(r) && *n < max; i++) {
        pid_t pid = (pid_t)atol(PQgetvalue(r, i, 0));
        long kb = rss_kb(pid, "RssAnon");
        if (kb >= 0) {
            pids[(*n)++] = pid;
            sum += kb;
        }
    }
    PQclear(r);
    return sum;
}

/* Sends n requests of distinct shapes from first on, eight in flight. */
static void cycle_shapes(th_server_t *s, const char *tok, int first, int n)
{
    int fd = th_connect_raw(s);
    assert_true(fd >= 0);
    int sent = 0, got = 0, inflight = 0, ok = 0;
    while (got < n) {
        while (inflight < 8 && sent < n) {
            /* An odd multiplier permutes 0..2^14-1: every thousand spans
             * all kinds of shape, and none repeats. */
            int k = (int)(((unsigned)(first + sent) * 40503u) & 0x3fffu);
            uint32_t sid = (uint32_t)sent + 1;
            Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
            Sentra__V1__Status stv[1] = { SENTRA__V1__STATUS__STATUS_FORMED };
            Sentra__V1__SectorGroup sgv[1] = { SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD };
            /* Filter bits from k's high bits: status, sector, kbli, text,
             * designation, updated_since. */
            int fb = k >> 7;
            if (fb & 1) { f.status = stv; f.n_status = 1; }
            if (fb & 2) { f.sector_group = sgv; f.n_sector_group = 1; }
            if (fb & 4) f.kbli_prefix = "10";
            if (fb & 8) f.text = "kopi";
            if (fb & 16) f.designation = SENTRA__V1__DESIGNATION__DESIGNATION_NOT_DESIGNATED;
            if (fb & 32) f.updated_since_ms = 1000;
            if (k % 3 != 2) {
                /* GetStatistics: a group-by set from k's low 7 bits. */
                Sentra__V1__GetStatisticsRequest q = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
                Sentra__V1__GroupBy gb[7];
                size_t ng = 0;
                for (int b = 0; b < 7; b++)
                    if ((k >> b) & 1)
                        gb[ng++] = (Sentra__V1__GroupBy)(b + 1);
                q.group_by = gb;
                q.n_group_by = ng;
                q.filter = &f;
                if (fb & 64)
                    q.reporting_year = 2024;
                assert_int_equal(send_req(fd, sid, M_STATS, &q.base, tok, NULL, 20000), 0);
            } else {
                Sentra__V1__ListSentraRequest q = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
                q.filter = &f;
                q.order_by = (Sentra__V1__SentraOrder)(k % 3);
                q.descending = (k >> 2) & 1;
                q.include_total = (k >> 3) & 1;
                assert_int_equal(send_req(fd, sid, M_LIST, &q.base, tok, NULL, 20000), 0);
            }
            sent++;
            inflight++;
        }
        uint32_t sid = 0;
        Sentra__V1__Response *r = NULL;
        assert_int_equal(read_response(fd, &sid, &r), 1);
        if ((int)r->code != SENTRA_OK && ok == 0)
            print_message("shape answered %s: %s\n", sentra_status_name(r->code), r->message);
        ok += (int)r->code == SENTRA_OK;
        sentra__v1__response__free_unpacked(r, NULL);
        got++;
        inflight--;
    }
    close(fd);
    assert_int_equal(ok, n);
}

/* Thousands of statement shapes: sentrad keeps no SQL per shape, each
 * backend at most --db-prepared statements. Growth from the first 2,000
 * shapes (every LRU full by then) to 6,000 must stay within a few MB; the
 * old server kept every shape's SQL and every backend every plan. */
static void test_shapes_memory_flat(void **state)
{
    th_server_t s;
    assert_int_equal(th_server_start(&s, "pool_shapes", NULL), 0);
    char *tok = th_token(&s, "province", "18");
    assert_non_null(tok);
    PGconn *db = th_db(&s);
    assert_non_null(db);
    pid_t pids[8];
    int n = 0;

    cycle_shapes(&s, tok, 0, 2000);
    long s0 = rss_kb(s.pid, "VmRSS");
    long b0 = backends_kb(db, pids, 8, &n);
    for (int step = 1; getenv("POOL_SHAPES_STEPS") && step < 8; step++) {
        cycle_shapes(&s, tok, 1000 + 1000 * step, 1000);
        int nn;
        pid_t pp[8];
        print_message("step %d: sentrad %ld kB, backends %ld kB\n", step, rss_kb(s.pid, "VmRSS"),
                      backends_kb(db, pp, 8, &nn));
    }
    cycle_shapes(&s, tok, 2000, 4000);
    long s1 = rss_kb(s.pid, "VmRSS");
    int n1 = 0;
    pid_t pids1[8];
    long b1 = backends_kb(db, pids1, 8, &n1);
    print_message("after 2,000 shapes: sentrad %ld kB, %d backends %ld kB; after 6,000: %ld kB, "
                  "%d backends %ld kB\n", s0, n, b0, s1, n1, b1);
    PQfinish(db);
    free(tok);
    int vg = under_valgrind(s.pid), asan = under_asan(s.pid);
    assert_int_equal(th_server_stop(&s), 0);
    th_server_free(&s);
    assert_int_equal(n, n1);
    for (int i = 0; i < n; i++)
        assert_int_equal(pids[i], pids1[i]);   /* the same backends throughout */
    assert_true(b1 - b0 < 16384);
    if (vg || asan) {
        print_message("under %s: sentrad's memory bound not checked\n", vg ? "valgrind" : "ASan");
        return;
    }
    assert_true(s1 - s0 < 4096);
}

/* ---------------------------------------------------------------- limits */

/* A request asking a deadline above --max-deadline gets the cap: a 3 s
 * sleep asked with 60 s answers DEADLINE_EXCEEDED (the old server let it
 * finish: OK). */
static void test_max_deadline(void **state)
{
    const char *args[] = { "--max-deadline", "1000", NULL };
    th_server_t s;
    assert_int_equal(th_server_start(&s, "pool_deadline", args), 0);
    assert_int_equal(sleep_call(&s, 3000, 60000), SENTRA_DEADLINE_EXCEEDED);
    assert_int_equal(sleep_call(&s, 10, 60000), SENTRA_OK);
    assert_int_equal(th_server_stop(&s), 0);
    th_server_free(&s);
}

/* --db-statement-timeout ends a statement that runs longer (CANCELLED,
 * sent once, not again), and the pool's queue refuses beyond --db-queue
 * with RESOURCE_EXHAUSTED, while what it admitted is answered. */
static void test_statement_timeout_and_queue(void **state)
{
    const char *args[] = { "--db-statement-timeout", "500", "--db-pool", "1", "--db-pipeline", "1",
                           "--db-queue", "4", NULL };
    th_server_t s;
    assert_int_equal(th_server_start(&s, "pool_queue", args), 0);
    int64_t t0 = th_now_ms();
    assert_int_equal(sleep_call(&s, 3000, 20000), SENTRA_CANCELLED);
    assert_true(th_now_ms() - t0 < 3000);   /* not sent again after the timeout */

    int fd = th_connect_raw(&s);
    assert_true(fd >= 0);
    for (uint32_t i = 1; i <= 16; i++) {
        Sentra__V1__SleepRequest q = SENTRA__V1__SLEEP_REQUEST__INIT;
        q.ms = 100;
        assert_int_equal(send_req(fd, i, M_SLEEP, &q.base, NULL, NULL, 20000), 0);
    }
    int ok = 0, full = 0;
    for (int i = 0; i < 16; i++) {
        uint32_t sid = 0;
        Sentra__V1__Response *r = NULL;
        assert_int_equal(read_response(fd, &sid, &r), 1);
        ok += (int)r->code == SENTRA_OK;
        full += (int)r->code == SENTRA_RESOURCE_EXHAUSTED;
        sentra__v1__response__free_unpacked(r, NULL);
    }
    close(fd);
    print_message("16 sleeps: %d OK, %d RESOURCE_EXHAUSTED\n", ok, full);
    assert_int_equal(ok + full, 16);
    /* One running and four queued: five, or four when a query of the
     * server's own (a notification probe, a watchdog SELECT 1) holds a
     * place in the queue at that moment. */
    assert_true(full >= 8 && ok >= 4);
    assert_int_equal(th_server_stop(&s), 0);
    th_server_free(&s);
}

static int setup(void **state)
{
    if (!th_env_ok()) {
        fprintf(stderr, "test_pool: run through scripts/run-tests.sh (make test)\n");
        return -1;
    }
    srand(12);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_failure_one_conn),
        cmocka_unit_test(test_commit_failure_default_pool),
        cmocka_unit_test(test_ack_means_committed),
        cmocka_unit_test(test_ack_means_committed_one_conn),
        cmocka_unit_test(test_max_deadline),
        cmocka_unit_test(test_statement_timeout_and_queue),
        cmocka_unit_test(test_silent_database),
        cmocka_unit_test(test_shapes_memory_flat),
        cmocka_unit_test(test_long_polls_and_restart),
    };
    /* TEST_POOL_FILTER=test_silent* runs some of them (cmocka's pattern). */
    if (getenv("TEST_POOL_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TEST_POOL_FILTER"));
    return cmocka_run_group_tests(tests, setup, NULL);
}
