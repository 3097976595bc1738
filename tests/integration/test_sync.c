/*
 * test_sync.c: SyncService against a live sentrad and PostgreSQL.
 *
 * The test runs its own sentrad (it must kill it with SIGKILL and start it
 * again): under scripts/run-tests.sh through tests/lib/harness.h, on a
 * fresh database of its own; run by hand, on the database named by
 * SENTRA_TEST_DB (else SENTRA_DB_URL), with $SENTRAD (else bin/sentrad).
 * The server applies pending migrations at start. Tokens are made straight
 * in the database.
 *
 *   pull/push basics, scope, replay of a mutation id, validation
 *   every pulled record is byte for byte what ListSentra (from the tables)
 *     and GetSentra return
 *   a repeated push racing its original: applied once either way
 *   conflicts: two district apps editing one record at once
 *   atomic batches: all or none
 *   long poll: returns promptly when a change commits, waits otherwise
 *   moves between regencies: a tombstone for the old scope
 *   many concurrent writers (some through long SQL transactions that
 *     commit out of order) and pullers: every committed version reaches
 *     the puller, nothing rolled back does; a naive seq cursor run beside
 *     it shows the hazard was there
 *   SIGKILL of the server in the middle of pushes, then the pushes
 *     replayed: no duplicates, nothing lost
 *   a change held back by an older open transaction, served (to a waiting
 *     long poll) once that transaction ends
 *   compaction of the feed keeps every record's current version
 *
 * SYNC_TEST_SECONDS sets the length of the concurrent run (default 6).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sentra/sentra.h>

#include "harness.h"

/* ---------------------------------------------------------------- fixture */

enum { T_DIST, T_DIST_OTHER, T_PROV, T_NATIONAL, T_COUNT };

static struct {
    int harness;                  /* 1: the server is the harness's */
    th_server_t srv;              /* then: that server */
    const char *db;
    const char *sentrad;
    char run[32];                 /* unique per run */
    char secret[T_COUNT][80];
    char token_id[T_COUNT][40];
    pid_t pid;                    /* the server */
    int port;
    char addr[96];
    char dir[64];                 /* temp dir: port file, server log */
} fx;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static PGconn *pg_connect(void)
{
    PGconn *pg = PQconnectdb(fx.db);
    if (PQstatus(pg) != CONNECTION_OK) {
        print_error("cannot connect to %s: %s", fx.db, PQerrorMessage(pg));
        fail();
    }
    return pg;
}

/* Runs sql with parameters; fails the test on an error. Returns the result
 * (the caller clears it). */
static PGresult *pg_q(PGconn *pg, const char *sql, int n, const char *const *v)
{
    PGresult *res = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        print_error("SQL failed: %s\n%s", sql, PQerrorMessage(pg));
        fail();
    }
    return res;
}

static long long pg_int(PGconn *pg, const char *sql, int n, const char *const *v)
{
    PGresult *res = pg_q(pg, sql, n, v);
    long long x = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return x;
}

static void harness_addr(void)
{
    fx.port = fx.srv.port;
    fx.pid = fx.srv.pid;
    snprintf(fx.addr, sizeof fx.addr, "%s:%d", fx.srv.host, fx.srv.port);
}

/* Starts sentrad on port (0: any) and waits until it listens. With the
 * harness, restarts its server (the port may change). */
static void server_start(int port)
{
    if (fx.harness) {
        assert_int_equal(th_server_restart(&fx.srv), 0);
        harness_addr();
        return;
    }
    char portfile[128], logfile[128], portarg[16];
    snprintf(portfile, sizeof portfile, "%s/port", fx.dir);
    snprintf(logfile, sizeof logfile, "%s/sentrad.log", fx.dir);
    snprintf(portarg, sizeof portarg, "%d", port);
    unlink(portfile);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(fx.sentrad, "sentrad", "--db", fx.db, "--port", portarg, "--port-file", portfile,
              "--host", "127.0.0.1", "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    fx.pid = pid;
    for (int i = 0; i < 300; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int p = 0;
            if (fscanf(f, "%d", &p) == 1 && p > 0) {
                fclose(f);
                fx.port = p;
                snprintf(fx.addr, sizeof fx.addr, "127.0.0.1:%d", p);
                return;
            }
            fclose(f);
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            print_error("sentrad exited at start; see %s\n", logfile);
            fail();
        }
        sleep_ms(50);
    }
    print_error("sentrad did not start within 15 s; see %s\n", logfile);
    fail();
}

static void server_kill(int sig)
{
    if (fx.harness) {
        th_server_kill(&fx.srv, sig);
        fx.pid = 0;
        return;
    }
    if (fx.pid > 0) {
        kill(fx.pid, sig);
        waitpid(fx.pid, NULL, 0);
        fx.pid = 0;
    }
}

static sentra_client_t *client(int who)
{
    sentra_client_opts_t o;
    sentra_client_t *c = NULL;
    sentra_client_opts_init(&o);
    o.address = fx.addr;
    o.token = fx.secret[who];
    o.default_deadline_ms = 30000;
    assert_int_equal(sentra_client_new(&c, &o), 0);
    return c;
}

static void make_token(PGconn *pg, int who, const char *role, const char *region)
{
    th_token_secret(fx.secret[who]);
    const char *v[3] = {fx.secret[who], role, region};
    PGresult *res = pg_q(pg,
        "INSERT INTO api_token (secret_hash, role, region_code, label) "
        "VALUES (sha256(convert_to($1, 'UTF8')), $2, $3, 'test_sync') RETURNING id", 3, v);
    snprintf(fx.token_id[who], sizeof fx.token_id[who], "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

static int own_server_start(void);

static int setup(void **state)
{
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    snprintf(fx.run, sizeof fx.run, "%ld%d", (long)time(NULL) % 100000, (int)getpid());
    if (th_env_ok()) {
        fx.harness = 1;
        if (th_server_start(&fx.srv, "test_sync", NULL) != 0)
            return -1;
        fx.db = fx.srv.db_conninfo;
        harness_addr();
    } else if (own_server_start() != 0) {
        return -1;
    }
    PGconn *pg = pg_connect();
    make_token(pg, T_DIST, "district", "18.71");
    make_token(pg, T_DIST_OTHER, "district", "18.72");
    make_token(pg, T_PROV, "province", "18");
    make_token(pg, T_NATIONAL, "national", NULL);
    PQfinish(pg);
    return 0;
}

static int own_server_start(void)
{
    const char *db = getenv("SENTRA_TEST_DB");
    if (!db || !db[0])
        db = getenv("SENTRA_DB_URL");
    if (!db || !db[0]) {
        fprintf(stderr, "test_sync: set SENTRA_TEST_DB to a PostgreSQL conninfo\n");
        return -1;
    }
    fx.db = db;
    fx.sentrad = getenv("SENTRAD") && getenv("SENTRAD")[0] ? getenv("SENTRAD") : "bin/sentrad";
    snprintf(fx.dir, sizeof fx.dir, "/tmp/test_sync.%d", (int)getpid());
    mkdir(fx.dir, 0755);
    server_start(0);            /* also applies the migrations */
    return 0;
}

static int teardown(void **state)
{
    if (fx.harness)
        th_server_free(&fx.srv);
    else
        server_kill(SIGTERM);
    return 0;
}

/* ---------------------------------------------------------------- records */

static void uuid_new(char out[37])
{
    unsigned char b[16];
    for (int i = 0; i < 16; i++)
        b[i] = (unsigned char)(random() & 0xff);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

/* A mutation with its record; everything points into the struct. */
typedef struct mut {
    Sentra__V1__Mutation m;
    Sentra__V1__Sentra s;
    char id[37];
    char mid[64];
    char name[96];
    char regency[8];
} mut_t;

/* Mutation ids: unique within the run by a counter (random() alone repeated
 * once in a few hundred runs of 2,400 ids, and a batch with one id twice is
 * refused as a whole), and across runs by fx.run and random(). */
static unsigned mut_seq;

static void mut_upsert(mut_t *x, const char *id, int64_t base, const char *regency,
                       const char *tag)
{
    memset(x, 0, sizeof *x);
    sentra__v1__mutation__init(&x->m);
    sentra__v1__sentra__init(&x->s);
    snprintf(x->id, sizeof x->id, "%s", id);
    snprintf(x->mid, sizeof x->mid, "m-%s-%u-%ld", fx.run, ++mut_seq, random());
    snprintf(x->name, sizeof x->name, "Sentra Sync %s %s", fx.run, tag);
    snprintf(x->regency, sizeof x->regency, "%s", regency);
    x->s.id = x->id;
    x->s.regency_code = x->regency;
    x->s.name = x->name;
    x->s.kbli_code = "13912";
    x->s.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    x->s.sector_group = SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_TEXTILES;
    x->s.status = SENTRA__V1__STATUS__STATUS_FORMED;
    x->m.mutation_id = x->mid;
    x->m.op = SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT;
    x->m.sentra = &x->s;
    x->m.base_version = base;
}

static void mut_delete(mut_t *x, const char *id, int64_t base)
{
    memset(x, 0, sizeof *x);
    sentra__v1__mutation__init(&x->m);
    sentra__v1__sentra__init(&x->s);
    snprintf(x->id, sizeof x->id, "%s", id);
    snprintf(x->mid, sizeof x->mid, "d-%s-%u-%ld", fx.run, ++mut_seq, random());
    x->s.id = x->id;
    x->m.mutation_id = x->mid;
    x->m.op = SENTRA__V1__MUTATION_OP__MUTATION_OP_DELETE;
    x->m.sentra = &x->s;
    x->m.base_version = base;
}

/* Pushes n mutations; returns the response (caller frees) or NULL with the
 * status in *st. */
static Sentra__V1__PushChangesResponse *push(sentra_client_t *c, const char *client_id,
                                             mut_t *xs, size_t n, int atomic,
                                             sentra_status_t *st)
{
    Sentra__V1__PushChangesRequest req = SENTRA__V1__PUSH_CHANGES_REQUEST__INIT;
    Sentra__V1__Mutation **ms = calloc(n ? n : 1, sizeof *ms);
    Sentra__V1__PushChangesResponse *resp = NULL;
    sentra_call_opts_t o = {0};
    for (size_t i = 0; i < n; i++)
        ms[i] = &xs[i].m;
    req.client_id = (char *)client_id;
    req.mutations = ms;
    req.n_mutations = n;
    req.atomic = atomic;
    o.no_retry = 1;
    sentra_status_init(st);
    sentra_push_changes(c, &req, &resp, &o, st);
    free(ms);
    return resp;
}

static Sentra__V1__PushChangesResponse *push_ok(sentra_client_t *c, const char *client_id,
                                                mut_t *xs, size_t n, int atomic)
{
    sentra_status_t st;
    Sentra__V1__PushChangesResponse *r = push(c, client_id, xs, n, atomic, &st);
    if (r == NULL)
        print_error("PushChanges: %s %s\n", sentra_status_name(st.code), st.message ? st.message : "");
    assert_non_null(r);
    assert_int_equal(r->n_results, n);
    sentra_status_clear(&st);
    return r;
}

static Sentra__V1__PullChangesResponse *pull(sentra_client_t *c, const char *cursor, int limit,
                                             unsigned wait_ms, const char *f_regency,
                                             sentra_status_t *st)
{
    Sentra__V1__PullChangesRequest req = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    Sentra__V1__PullChangesResponse *resp = NULL;
    req.cursor = (char *)(cursor ? cursor : "");
    req.limit = limit;
    req.wait_ms = wait_ms;
    if (f_regency) {
        f.regency_code = (char *)f_regency;
        req.filter = &f;
    }
    sentra_status_init(st);
    sentra_pull_changes(c, &req, &resp, NULL, st);
    return resp;
}

/* Pulls until nothing more waits; returns the final cursor (malloc'ed).
 * Calls fn for each record. */
static char *pull_all(sentra_client_t *c, const char *cursor, int limit,
                      void (*fn)(const Sentra__V1__Sentra *, void *), void *arg)
{
    char *cur = strdup(cursor ? cursor : "");
    for (;;) {
        sentra_status_t st;
        Sentra__V1__PullChangesResponse *r = pull(c, cur, limit, 0, NULL, &st);
        if (r == NULL)
            print_error("PullChanges: %s %s\n", sentra_status_name(st.code), st.message ? st.message : "");
        assert_non_null(r);
        sentra_status_clear(&st);
        for (size_t i = 0; fn && i < r->n_changes; i++)
            fn(r->changes[i], arg);
        free(cur);
        cur = strdup(r->next_cursor);
        int more = r->more;
        sentra__v1__pull_changes_response__free_unpacked(r, NULL);
        if (!more)
            return cur;
    }
}

/* ---------------------------------------------------------------- seen map */

/* id -> highest version seen (and whether last seen as a tombstone). */
#define SEEN_CAP (1 << 17)
typedef struct seen {
    struct { char id[37]; int64_t version; int deleted; int count; } *e;
    size_t n;
} seen_t;

static void seen_init(seen_t *m)
{
    m->e = calloc(SEEN_CAP, sizeof *m->e);
    m->n = 0;
}

static size_t seen_slot(const seen_t *m, const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    size_t i = (size_t)h & (SEEN_CAP - 1);
    while (m->e[i].id[0] && strcmp(m->e[i].id, id) != 0)
        i = (i + 1) & (SEEN_CAP - 1);
    return i;
}

static void seen_put(seen_t *m, const char *id, int64_t version, int deleted)
{
    size_t i = seen_slot(m, id);
    if (!m->e[i].id[0]) {
        snprintf(m->e[i].id, sizeof m->e[i].id, "%s", id);
        m->n++;
    }
    if (version >= m->e[i].version) {
        m->e[i].version = version;
        m->e[i].deleted = deleted;
    }
    m->e[i].count++;
}

static int64_t seen_get(const seen_t *m, const char *id, int *deleted)
{
    size_t i = seen_slot(m, id);
    if (deleted)
        *deleted = m->e[i].deleted;
    return m->e[i].id[0] ? m->e[i].version : -1;
}

static void seen_cb(const Sentra__V1__Sentra *s, void *arg)
{
    seen_put(arg, s->id, s->version, s->deleted);
}

/* ---------------------------------------------------------------- basics */

static void test_push_pull_basic(void **state)
{
    sentra_client_t *d = client(T_DIST), *other = client(T_DIST_OTHER), *prov = client(T_PROV);
    char *head = pull_all(d, "", 5000, NULL, NULL);
    char *head_other = pull_all(other, "", 5000, NULL, NULL);
    mut_t xs[3];
    char id[3][37];
    for (int i = 0; i < 3; i++) {
        uuid_new(id[i]);
        mut_upsert(&xs[i], id[i], 0, "18.71", i == 0 ? "a" : i == 1 ? "b" : "c");
    }
    Sentra__V1__PushChangesResponse *r = push_ok(d, "app-basic", xs, 3, 0);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(r->results[i]->mutation_id, xs[i].mid);
        assert_int_equal(r->results[i]->outcome, SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);
        assert_int_equal(r->results[i]->version, 1);
    }
    sentra__v1__push_changes_response__free_unpacked(r, NULL);

    /* The district sees its three records, in full. */
    seen_t seen;
    seen_init(&seen);
    char *cur = pull_all(d, head, 2, seen_cb, &seen);
    for (int i = 0; i < 3; i++)
        assert_int_equal(seen_get(&seen, id[i], NULL), 1);
    assert_int_equal(seen.n, 3);

    /* Replaying the same mutation ids changes nothing and answers the same;
     * the feed stays where it was. */
    xs[1].s.name = "Sentra Sync changed on replay";
    r = push_ok(d, "app-basic", xs, 3, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r->results[i]->outcome, SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);
        assert_int_equal(r->results[i]->version, 1);
    }
    sentra__v1__push_changes_response__free_unpacked(r, NULL);
    sentra_status_t st;
    Sentra__V1__PullChangesResponse *p = pull(d, cur, 100, 0, NULL, &st);
    assert_non_null(p);
    assert_int_equal(p->n_changes, 0);
    assert_false(p->more);
    sentra__v1__pull_changes_response__free_unpacked(p, NULL);

    /* Another district sees none of them; the province sees them all. */
    seen_t so;
    seen_init(&so);
    free(pull_all(other, head_other, 500, seen_cb, &so));
    for (int i = 0; i < 3; i++)
        assert_int_equal(seen_get(&so, id[i], NULL), -1);
    seen_t sp;
    seen_init(&sp);
    free(pull_all(prov, "", 5000, seen_cb, &sp));
    for (int i = 0; i < 3; i++)
        assert_int_equal(seen_get(&sp, id[i], NULL), 1);

    /* An update and a delete arrive as a new version and a tombstone. */
    mut_upsert(&xs[0], id[0], 1, "18.71", "a2");
    mut_delete(&xs[1], id[1], 1);
    r = push_ok(d, "app-basic", xs, 2, 0);
    assert_int_equal(r->results[0]->version, 2);
    assert_int_equal(r->results[1]->version, 2);
    sentra__v1__push_changes_response__free_unpacked(r, NULL);
    seen_t s2;
    seen_init(&s2);
    free(pull_all(d, cur, 500, seen_cb, &s2));
    int del = 0;
    assert_int_equal(seen_get(&s2, id[0], &del), 2);
    assert_false(del);
    assert_int_equal(seen_get(&s2, id[1], &del), 2);
    assert_true(del);
    assert_int_equal(s2.n, 2);

    free(cur);
    free(head);
    free(head_other);
    free(seen.e);
    free(so.e);
    free(sp.e);
    free(s2.e);
    sentra_client_free(d);
    sentra_client_free(other);
    sentra_client_free(prov);
}

static void test_rejections(void **state)
{
    sentra_client_t *d = client(T_DIST), *nat = client(T_NATIONAL);
    mut_t xs[4];
    char id[37];
    sentra_status_t st;

    uuid_new(id);
    mut_upsert(&xs[0], id, 0, "18.71", "x");
    xs[0].s.name = "";                            /* C validation */
    uuid_new(id);
    mut_upsert(&xs[1], id, 0, "18.72", "other");  /* outside the district */
    uuid_new(id);
    mut_upsert(&xs[2], id, 0, "18.71", "designated without decree");
    xs[2].s.status = SENTRA__V1__STATUS__STATUS_DESIGNATED;
    uuid_new(id);
    mut_upsert(&xs[3], id, 5, "18.71", "unknown");   /* update of nothing */
    Sentra__V1__PushChangesResponse *r = push_ok(d, "app-rej", xs, 4, 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r->results[i]->outcome, SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED);
        assert_true(r->results[i]->n_violations >= 1);
    }
    assert_string_equal(r->results[0]->violations[0]->field, "sentra.name");
    assert_string_equal(r->results[1]->violations[0]->field, "sentra.regency_code");
    assert_int_equal(strncmp(r->results[2]->violations[0]->field, "sentra.decree", 13), 0);
    assert_string_equal(r->results[3]->violations[0]->field, "sentra.id");
    sentra__v1__push_changes_response__free_unpacked(r, NULL);

    /* The rejection is stored: the same id answers it again, even if the
     * record is now valid. */
    xs[0].s.name = "Sentra Sync now valid";
    r = push_ok(d, "app-rej", xs, 1, 0);
    assert_int_equal(r->results[0]->outcome, SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED);
    sentra__v1__push_changes_response__free_unpacked(r, NULL);

    /* Request-level errors: no client id, too many, a national token. */
    r = push(d, "", xs, 1, 0, &st);
    assert_null(r);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    sentra_status_clear(&st);
    mut_t *many = calloc(501, sizeof *many);
    for (int i = 0; i < 501; i++) {
        uuid_new(id);
        mut_upsert(&many[i], id, 0, "18.71", "many");
    }
    r = push(d, "app-rej", many, 501, 0, &st);
    assert_null(r);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    sentra_status_clear(&st);
    free(many);
    mut_t twice[2];
    uuid_new(id);
    mut_upsert(&twice[0], id, 0, "18.71", "twice");
    twice[1] = twice[0];
    twice[1].m.sentra = &twice[1].s;
    r = push(d, "app-rej", twice, 2, 1, &st);
    assert_null(r);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    sentra_status_clear(&st);
    r = push(nat, "app-nat", xs, 1, 0, &st);
    assert_null(r);
    assert_int_equal(st.code, SENTRA__V1__CODE__PERMISSION_DENIED);
    sentra_status_clear(&st);

    /* Pull: a bad cursor, an unsupported filter. */
    Sentra__V1__PullChangesResponse *p = pull(d, "zz", 10, 0, NULL, &st);
    assert_null(p);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    sentra_status_clear(&st);
    Sentra__V1__PullChangesRequest req = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    f.text = "tapis";
    req.filter = &f;
    sentra_status_init(&st);
    assert_int_not_equal(sentra_pull_changes(d, &req, &p, NULL, &st), 0);
    assert_int_equal(st.code, SENTRA__V1__CODE__INVALID_ARGUMENT);
    sentra_status_clear(&st);
    /* A cursor from the future (another database) */
    p = pull(d, "76313a393939393939393939393939393a31", 10, 0, NULL, &st);   /* v1:9999999999999:1 */
    assert_null(p);
    assert_int_equal(st.code, SENTRA__V1__CODE__OUT_OF_RANGE);
    sentra_status_clear(&st);

    sentra_client_free(d);
    sentra_client_free(nat);
}

static void test_atomic(void **state)
{
    sentra_client_t *d = client(T_DIST);
    PGconn *pg = pg_connect();
    mut_t xs[3];
    char id[3][37];
    for (int i = 0; i < 3; i++) {
        uuid_new(id[i]);
        mut_upsert(&xs[i], id[i], 0, "18.71", "atomic");
    }
    xs[2].s.regency_code = "18.72";               /* refused: outside */
    Sentra__V1__PushChangesResponse *r = push_ok(d, "app-atomic", xs, 3, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r->results[i]->outcome, SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED);
    assert_string_equal(r->results[0]->violations[0]->field, "atomic");
    assert_string_equal(r->results[2]->violations[0]->field, "sentra.regency_code");
    sentra__v1__push_changes_response__free_unpacked(r, NULL);
    const char *v[1] = {id[0]};
    assert_int_equal(pg_int(pg, "SELECT count(*) FROM sentra WHERE id = $1::uuid", 1, v), 0);

    /* Fixed, the same mutation ids apply: the refusal was not stored. */
    xs[2].s.regency_code = "18.71";
    r = push_ok(d, "app-atomic", xs, 3, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r->results[i]->outcome, SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);
    sentra__v1__push_changes_response__free_unpacked(r, NULL);
    assert_int_equal(pg_int(pg, "SELECT count(*) FROM sentra WHERE id = $1::uuid", 1, v), 1);
    PQfinish(pg);
    sentra_client_free(d);
}

/* A repeat racing its original (a client retrying while the first attempt
 * still runs in PostgreSQL): the repeat waits for the original's
 * transaction; if that commits, the repeat returns its outcomes and applies
 * nothing; if it rolls back, the repeat applies. Straight through SQL, to
 * hold the original's transaction open. */
static void test_repeat_racing_original(void **state)
{
    PGconn *a = pg_connect(), *b = pg_connect();
    for (int round = 0; round < 2; round++) {
        int commit = round == 0;
        char id[37], json[1024];
        uuid_new(id);
        snprintf(json, sizeof json,
                 "[{\"m\":\"race-%s-%d\",\"op\":1,\"base\":0,\"id\":\"%s\",\"regency\":\"18.71\","
                 "\"name\":\"Sentra Race %s\",\"kbli_code\":\"13912\",\"kbli_version\":\"2020\","
                 "\"sector_group\":\"2\",\"status\":\"1\",\"figures\":[]}]",
                 fx.run, round, id, fx.run);
        const char *v[2] = {fx.token_id[T_DIST], json};
        const char *sql = "SELECT outcome, version FROM sync_push($1::uuid, 'district', '18.71', "
                          "'app-race', false, $2::jsonb)";
        PQclear(pg_q(a, "BEGIN", 0, NULL));
        PGresult *ra = pg_q(a, sql, 2, v);
        assert_string_equal(PQgetvalue(ra, 0, 0), "1");
        PQclear(ra);
        /* the repeat, from another session: it must wait */
        assert_int_equal(PQsendQueryParams(b, sql, 2, NULL, v, NULL, NULL, 0), 1);
        sleep_ms(300);
        assert_int_equal(PQconsumeInput(b), 1);
        assert_int_equal(PQisBusy(b), 1);
        PQclear(pg_q(a, commit ? "COMMIT" : "ROLLBACK", 0, NULL));
        PGresult *rb = PQgetResult(b);
        assert_int_equal(PQresultStatus(rb), PGRES_TUPLES_OK);
        assert_string_equal(PQgetvalue(rb, 0, 0), "1");
        assert_string_equal(PQgetvalue(rb, 0, 1), "1");
        PQclear(rb);
        while ((rb = PQgetResult(b)) != NULL)
            PQclear(rb);
        const char *vi[1] = {id};
        assert_int_equal(pg_int(a, "SELECT count(*) FROM sentra_change WHERE sentra_id = $1::uuid",
                                1, vi), 1);
        print_message("repeat racing its original (original %s): applied once\n",
                      commit ? "committed" : "rolled back");
    }
    PQfinish(a);
    PQfinish(b);
}

/* ---------------------------------------------------------------- conflicts */

typedef struct racer {
    sentra_client_t *c;
    const char *client_id;
    mut_t x;
    pthread_barrier_t *go;
    Sentra__V1__PushChangesResponse *resp;
} racer_t;

static void *racer_run(void *arg)
{
    racer_t *r = arg;
    sentra_status_t st;
    pthread_barrier_wait(r->go);
    r->resp = push(r->c, r->client_id, &r->x, 1, 0, &st);
    sentra_status_clear(&st);
    return NULL;
}

static void test_conflicting_edits(void **state)
{
    sentra_client_t *a = client(T_DIST), *b = client(T_PROV);
    char id[37];
    mut_t x;
    uuid_new(id);
    mut_upsert(&x, id, 0, "18.71", "shared");
    sentra__v1__push_changes_response__free_unpacked(push_ok(a, "app-a", &x, 1, 0), NULL);

    for (int round = 0; round < 5; round++) {
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        racer_t ra, rb;
        memset(&ra, 0, sizeof ra);
        memset(&rb, 0, sizeof rb);
        ra.c = a;
        ra.client_id = "app-a";
        ra.go = &go;
        rb.c = b;
        rb.client_id = "app-b";
        rb.go = &go;
        char tag[32];
        snprintf(tag, sizeof tag, "edit A %d", round);
        mut_upsert(&ra.x, id, round + 1, "18.71", tag);
        snprintf(tag, sizeof tag, "edit B %d", round);
        mut_upsert(&rb.x, id, round + 1, "18.71", tag);
        pthread_t ta, tb;
        pthread_create(&ta, NULL, racer_run, &ra);
        pthread_create(&tb, NULL, racer_run, &rb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        pthread_barrier_destroy(&go);
        assert_non_null(ra.resp);
        assert_non_null(rb.resp);
        Sentra__V1__MutationResult *x1 = ra.resp->results[0], *x2 = rb.resp->results[0];
        int a_won = x1->outcome == SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED;
        Sentra__V1__MutationResult *win = a_won ? x1 : x2, *lose = a_won ? x2 : x1;
        const char *win_name = a_won ? ra.x.name : rb.x.name;
        assert_int_equal(win->outcome, SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);
        assert_int_equal(win->version, round + 2);
        assert_int_equal(lose->outcome, SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT);
        assert_non_null(lose->current);
        assert_int_equal(lose->current->version, round + 2);
        assert_string_equal(lose->current->id, id);
        assert_string_equal(lose->current->name, win_name);
        sentra__v1__push_changes_response__free_unpacked(ra.resp, NULL);
        sentra__v1__push_changes_response__free_unpacked(rb.resp, NULL);
    }
    sentra_client_free(a);
    sentra_client_free(b);
}

/* ---------------------------------------------------------------- long poll */

typedef struct poller {
    sentra_client_t *c;
    const char *cursor;
    unsigned wait_ms;
    double returned_at;
    Sentra__V1__PullChangesResponse *resp;
} poller_t;

static void *poller_run(void *arg)
{
    poller_t *p = arg;
    sentra_status_t st;
    p->resp = pull(p->c, p->cursor, 100, p->wait_ms, NULL, &st);
    p->returned_at = now_ms();
    sentra_status_clear(&st);
    return NULL;
}

static void test_long_poll(void **state)
{
    sentra_client_t *d = client(T_DIST), *w = client(T_DIST);
    char *head = pull_all(d, "", 5000, NULL, NULL);

    /* Nothing comes: the pull waits about as long as asked. */
    double t0 = now_ms();
    poller_t idle = {d, head, 700, 0, NULL};
    poller_run(&idle);
    assert_non_null(idle.resp);
    assert_int_equal(idle.resp->n_changes, 0);
    double waited = idle.returned_at - t0;
    print_message("long poll, nothing committed: returned after %.0f ms (asked 700)\n", waited);
    assert_true(waited >= 650 && waited < 2500);
    sentra__v1__pull_changes_response__free_unpacked(idle.resp, NULL);

    /* A change commits while it waits: it returns with it, promptly. */
    for (int round = 0; round < 3; round++) {
        poller_t p = {d, head, 20000, 0, NULL};
        pthread_t t;
        pthread_create(&t, NULL, poller_run, &p);
        sleep_ms(400);
        char id[37];
        mut_t x;
        uuid_new(id);
        mut_upsert(&x, id, 0, "18.71", "long poll");
        Sentra__V1__PushChangesResponse *r = push_ok(w, "app-lp", &x, 1, 0);
        double committed = now_ms();
        sentra__v1__push_changes_response__free_unpacked(r, NULL);
        pthread_join(t, NULL);
        assert_non_null(p.resp);
        assert_int_equal(p.resp->n_changes, 1);
        assert_string_equal(p.resp->changes[0]->id, id);
        double lag = p.returned_at - committed;
        print_message("long poll: returned %.1f ms after the push was answered\n", lag);
        assert_true(lag < 1000);
        free(head);
        head = strdup(p.resp->next_cursor);
        sentra__v1__pull_changes_response__free_unpacked(p.resp, NULL);
    }
    free(head);
    sentra_client_free(d);
    sentra_client_free(w);
}

/* A transaction that took a txid before a change and stays open holds the
 * change back (it might still write something that sorts before it); the
 * change is served once that transaction ends, even though it ends without
 * a NOTIFY of its own. */
static void test_held_back_by_open_transaction(void **state)
{
    sentra_client_t *d = client(T_DIST), *w = client(T_DIST);
    PGconn *blocker = pg_connect();
    char *head = pull_all(d, "", 5000, NULL, NULL);
    sentra_status_t st;

    PQclear(pg_q(blocker, "BEGIN", 0, NULL));
    PQclear(pg_q(blocker, "SELECT pg_current_xact_id()", 0, NULL));   /* takes a txid */
    char id[37];
    mut_t x;
    uuid_new(id);
    mut_upsert(&x, id, 0, "18.71", "held back");
    sentra__v1__push_changes_response__free_unpacked(push_ok(w, "app-held", &x, 1, 0), NULL);

    Sentra__V1__PullChangesResponse *p = pull(d, head, 100, 0, NULL, &st);
    assert_non_null(p);
    assert_int_equal(p->n_changes, 0);          /* committed, but not yet servable */
    sentra__v1__pull_changes_response__free_unpacked(p, NULL);

    poller_t lp = {d, head, 15000, 0, NULL};
    pthread_t t;
    pthread_create(&t, NULL, poller_run, &lp);
    sleep_ms(800);
    PQclear(pg_q(blocker, "COMMIT", 0, NULL));
    double ended = now_ms();
    pthread_join(t, NULL);
    assert_non_null(lp.resp);
    assert_int_equal(lp.resp->n_changes, 1);
    assert_string_equal(lp.resp->changes[0]->id, id);
    double lag = lp.returned_at - ended;
    print_message("held-back change served %.0f ms after the blocking transaction ended\n", lag);
    assert_true(lag < 1500);
    sentra__v1__pull_changes_response__free_unpacked(lp.resp, NULL);
    sentra_status_clear(&st);
    free(head);
    PQfinish(blocker);
    sentra_client_free(d);
    sentra_client_free(w);
}

/* sync_compact keeps what every cursor needs: pulled from the beginning
 * after compaction, every record still arrives, at its current version. */
static void test_compaction(void **state)
{
    sentra_client_t *d = client(T_DIST);
    PGconn *pg = pg_connect();
    char id[37];
    mut_t x;
    uuid_new(id);
    mut_upsert(&x, id, 0, "18.71", "compact v1");
    sentra__v1__push_changes_response__free_unpacked(push_ok(d, "app-cmp", &x, 1, 0), NULL);
    for (int v = 1; v <= 3; v++) {
        mut_upsert(&x, id, v, "18.71", "compact vN");
        sentra__v1__push_changes_response__free_unpacked(push_ok(d, "app-cmp", &x, 1, 0), NULL);
    }
    seen_t before, after;
    seen_init(&before);
    seen_init(&after);
    free(pull_all(d, "", 5000, seen_cb, &before));
    long long rows0 = pg_int(pg, "SELECT count(*) FROM sentra_change", 0, NULL);
    long long gone = pg_int(pg, "SELECT sync_compact(interval '0 seconds')", 0, NULL);
    long long rows1 = pg_int(pg, "SELECT count(*) FROM sentra_change", 0, NULL);
    long long recs = pg_int(pg, "SELECT count(DISTINCT sentra_id) FROM sentra_change", 0, NULL);
    print_message("compaction: %lld change rows, %lld deleted, %lld left for %lld records\n",
                  rows0, gone, rows1, recs);
    assert_true(gone >= 3);
    assert_int_equal(rows1, recs);              /* one row per record left */
    free(pull_all(d, "", 5000, seen_cb, &after));
    assert_int_equal(seen_get(&after, id, NULL), 4);
    assert_int_equal(after.n, before.n);
    for (size_t i = 0; i < SEEN_CAP; i++)
        if (before.e[i].id[0]) {
            int del0, del1;
            int64_t v0 = seen_get(&before, before.e[i].id, &del0);
            assert_int_equal(seen_get(&after, before.e[i].id, &del1), v0);
            assert_int_equal(del0, del1);
        }
    free(before.e);
    free(after.e);
    PQfinish(pg);
    sentra_client_free(d);
}

/* ---------------------------------------------------------------- moves */

static void test_move_between_regencies(void **state)
{
    sentra_client_t *d = client(T_DIST), *o = client(T_DIST_OTHER), *prov = client(T_PROV);
    char *hd = pull_all(d, "", 5000, NULL, NULL), *ho = pull_all(o, "", 5000, NULL, NULL);
    char id[37];
    mut_t x;
    uuid_new(id);
    mut_upsert(&x, id, 0, "18.71", "moving");
    sentra__v1__push_changes_response__free_unpacked(push_ok(d, "app-mv", &x, 1, 0), NULL);
    char *hd2 = pull_all(d, hd, 500, NULL, NULL);
    mut_upsert(&x, id, 1, "18.72", "moved");
    Sentra__V1__PushChangesResponse *r = push_ok(prov, "app-prov", &x, 1, 0);
    assert_int_equal(r->results[0]->outcome, SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);
    sentra__v1__push_changes_response__free_unpacked(r, NULL);

    seen_t sd, so;
    seen_init(&sd);
    seen_init(&so);
    free(pull_all(d, hd2, 500, seen_cb, &sd));
    free(pull_all(o, ho, 500, seen_cb, &so));
    int del;
    assert_int_equal(seen_get(&sd, id, &del), 2);
    assert_true(del);                   /* left 18.71: a tombstone there */
    assert_int_equal(seen_get(&so, id, &del), 2);
    assert_false(del);                  /* arrived in 18.72: the record */
    free(sd.e);
    free(so.e);
    free(hd);
    free(ho);
    free(hd2);
    sentra_client_free(d);
    sentra_client_free(o);
    sentra_client_free(prov);
}

/* ---------------------------------------------------------------- concurrency */

#define MAX_IDS 4096

typedef struct writer {
    int n;                        /* index */
    int sql;                      /* 1: libpq with long transactions; 0: the API */
    double until;
    /* what committed: id -> version (own records only) */
    char (*ids)[37];
    int64_t *ver;
    char *reg;                    /* index into regencies[] */
    int nids;
    char (*rolled)[37];           /* created in transactions rolled back */
    int nrolled;
    int commits, errors;
    char err[256];
} writer_t;

static const char *const regencies[2] = {"18.71", "18.72"};

static void *writer_run(void *arg)
{
    writer_t *w = arg;
    unsigned seed = (unsigned)(w->n * 7919 + getpid());
    sentra_client_t *c = NULL;
    PGconn *pg = NULL;
    char client_id[32];
    int batch = 0;
    snprintf(client_id, sizeof client_id, "writer-%d", w->n);

    if (w->sql) {
        pg = PQconnectdb(fx.db);
        if (PQstatus(pg) != CONNECTION_OK) {
            snprintf(w->err, sizeof w->err, "connect: %s", PQerrorMessage(pg));
            w->errors++;
            PQfinish(pg);
            return NULL;
        }
    } else {
        c = client(T_PROV);
    }
    while (now_ms() < w->until && w->nids < MAX_IDS - 8) {
        int k = 1 + (int)(rand_r(&seed) % 4);
        mut_t xs[4];
        int upd[4];
        for (int i = 0; i < k; i++) {
            upd[i] = w->nids > 0 && rand_r(&seed) % 2;
            char tag[48];
            snprintf(tag, sizeof tag, "w%d", w->n);
            if (upd[i]) {
                int j = (int)(rand_r(&seed) % (unsigned)w->nids);
                /* one mutation per record per batch keeps base versions exact */
                int dup = 0;
                for (int q = 0; q < i; q++)
                    dup |= upd[q] && strcmp(xs[q].id, w->ids[j]) == 0;
                if (dup) {
                    upd[i] = 0;
                } else {
                    mut_upsert(&xs[i], w->ids[j], w->ver[j], regencies[(int)w->reg[j]], tag);
                    upd[i] = j + 1;
                    continue;
                }
            }
            char id[37];
            snprintf(id, sizeof id, "%08x-%04x-4%03x-8%03x-%012x", rand_r(&seed),
                     rand_r(&seed) & 0xffff, rand_r(&seed) & 0xfff, rand_r(&seed) & 0xfff,
                     rand_r(&seed));
            mut_upsert(&xs[i], id, 0, regencies[rand_r(&seed) % 2], tag);
        }
        for (int i = 0; i < k; i++)
            snprintf(xs[i].mid, sizeof xs[i].mid, "w%d-%d-%d-%s", w->n, batch, i, fx.run);
        batch++;
        if (w->sql) {
            /* Through the SQL function, inside a transaction that may stay
             * open a while after its changes (and so commit after later
             * ones), or roll back. */
            char json[8192];
            size_t len = 0;
            len += (size_t)snprintf(json + len, sizeof json - len, "[");
            for (int i = 0; i < k; i++)
                len += (size_t)snprintf(json + len, sizeof json - len,
                    "%s{\"m\":\"%s\",\"op\":1,\"base\":%lld,\"id\":\"%s\",\"regency\":\"%s\","
                    "\"name\":\"%s\",\"kbli_code\":\"13912\",\"kbli_version\":\"2020\","
                    "\"sector_group\":\"2\",\"status\":\"1\",\"figures\":[]}",
                    i ? "," : "", xs[i].mid, (long long)xs[i].m.base_version, xs[i].id,
                    xs[i].regency, xs[i].name);
            snprintf(json + len, sizeof json - len, "]");
            const char *v[2] = {fx.token_id[T_PROV], json};
            PGresult *res = PQexec(pg, "BEGIN");
            PQclear(res);
            res = PQexecParams(pg, "SELECT outcome, version FROM sync_push($1::uuid, 'province', '18', "
                               "'sqlwriter', false, $2::jsonb)", 2, NULL, v, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != k) {
                snprintf(w->err, sizeof w->err, "sync_push: %s", PQerrorMessage(pg));
                w->errors++;
                PQclear(res);
                PQclear(PQexec(pg, "ROLLBACK"));
                continue;
            }
            int64_t got[4];
            int ok = 1;
            for (int i = 0; i < k; i++) {
                ok &= atoi(PQgetvalue(res, i, 0)) == 1;
                got[i] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
            }
            PQclear(res);
            int ms = (int)(rand_r(&seed) % 250);
            char sl[64];
            snprintf(sl, sizeof sl, "SELECT pg_sleep(%d / 1000.0)", ms);
            PQclear(PQexec(pg, sl));
            int rollback = rand_r(&seed) % 8 == 0;
            res = PQexec(pg, rollback ? "ROLLBACK" : "COMMIT");
            int committed = !rollback && PQresultStatus(res) == PGRES_COMMAND_OK;
            PQclear(res);
            if (!ok) {
                snprintf(w->err, sizeof w->err, "a mutation was not applied");
                w->errors++;
            }
            for (int i = 0; i < k; i++) {
                if (committed && upd[i]) {
                    w->ver[upd[i] - 1] = got[i];
                } else if (committed) {
                    snprintf(w->ids[w->nids], 37, "%s", xs[i].id);
                    w->reg[w->nids] = strcmp(xs[i].regency, regencies[0]) != 0;
                    w->ver[w->nids++] = got[i];
                } else if (!upd[i] && w->nrolled < MAX_IDS) {
                    snprintf(w->rolled[w->nrolled++], 37, "%s", xs[i].id);
                }
            }
            w->commits += committed;
        } else {
            sentra_status_t st;
            Sentra__V1__PushChangesResponse *r = push(c, client_id, xs, (size_t)k, 0, &st);
            if (r == NULL) {
                snprintf(w->err, sizeof w->err, "push: %s %s", sentra_status_name(st.code),
                         st.message ? st.message : "");
                w->errors++;
                sentra_status_clear(&st);
                continue;
            }
            sentra_status_clear(&st);
            for (int i = 0; i < k; i++) {
                if (r->results[i]->outcome != SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED) {
                    snprintf(w->err, sizeof w->err, "outcome %d", r->results[i]->outcome);
                    w->errors++;
                    continue;
                }
                if (upd[i]) {
                    w->ver[upd[i] - 1] = r->results[i]->version;
                } else {
                    snprintf(w->ids[w->nids], 37, "%s", xs[i].id);
                    w->reg[w->nids] = strcmp(xs[i].regency, regencies[0]) != 0;
                    w->ver[w->nids++] = r->results[i]->version;
                }
            }
            w->commits++;
            sentra__v1__push_changes_response__free_unpacked(r, NULL);
        }
    }
    if (pg)
        PQfinish(pg);
    if (c)
        sentra_client_free(c);
    return NULL;
}

typedef struct puller {
    int who;                      /* token */
    volatile int *stop;           /* set once the writers are done */
    seen_t seen;
    int pulls, errors, records;
    char err[256];
    char *cursor;
} puller_t;

static void *puller_run(void *arg)
{
    puller_t *p = arg;
    sentra_client_t *c = client(p->who);
    int empty_after_stop = 0;
    seen_init(&p->seen);
    for (;;) {
        int stopping = *p->stop;
        sentra_status_t st;
        /* small pages, so that the run takes many pulls */
        Sentra__V1__PullChangesResponse *r = pull(c, p->cursor, 37, stopping ? 0 : 300, NULL, &st);
        p->pulls++;
        if (r == NULL) {
            snprintf(p->err, sizeof p->err, "pull: %s %s", sentra_status_name(st.code),
                     st.message ? st.message : "");
            p->errors++;
            sentra_status_clear(&st);
            sleep_ms(50);
            continue;
        }
        sentra_status_clear(&st);
        for (size_t i = 0; i < r->n_changes; i++)
            seen_put(&p->seen, r->changes[i]->id, r->changes[i]->version, r->changes[i]->deleted);
        p->records += (int)r->n_changes;
        free(p->cursor);
        p->cursor = strdup(r->next_cursor);
        int done = stopping && r->n_changes == 0 && !r->more;
        sentra__v1__pull_changes_response__free_unpacked(r, NULL);
        if (done && ++empty_after_stop >= 2)
            break;
    }
    sentra_client_free(c);
    return NULL;
}

/* A naive reader beside it: "seq > last seq", straight from the table. */
typedef struct naive {
    volatile int *stop;
    long long last;
    char (*seen)[1];              /* by seq: delivered */
    long long cap;
    long long delivered;
} naive_t;

static void *naive_run(void *arg)
{
    naive_t *nv = arg;
    PGconn *pg = PQconnectdb(fx.db);
    int quiet = 0;
    while (PQstatus(pg) == CONNECTION_OK) {
        char last[32];
        snprintf(last, sizeof last, "%lld", nv->last);
        const char *v[1] = {last};
        PGresult *res = PQexecParams(pg, "SELECT seq FROM sentra_change WHERE seq > $1::bigint "
                                     "ORDER BY seq LIMIT 1000", 1, NULL, v, NULL, NULL, 0);
        int n = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;
        for (int i = 0; i < n; i++) {
            long long s = strtoll(PQgetvalue(res, i, 0), NULL, 10);
            if (s < nv->cap)
                nv->seen[s][0] = 1;
            nv->last = s;
            nv->delivered++;
        }
        PQclear(res);
        if (*nv->stop && n == 0 && ++quiet >= 3)
            break;
        sleep_ms(20);
    }
    PQfinish(pg);
    return NULL;
}

static void test_concurrent_writers_and_pullers(void **state)
{
    const char *secs_env = getenv("SYNC_TEST_SECONDS");
    int secs = secs_env && atoi(secs_env) > 0 ? atoi(secs_env) : 6;
    enum { NSQL = 5, NAPI = 3, NW = NSQL + NAPI };
    PGconn *pg = pg_connect();
    long long seq0 = pg_int(pg, "SELECT coalesce(max(seq), 0) FROM sentra_change", 0, NULL);
    volatile int stop = 0;

    writer_t w[NW];
    memset(w, 0, sizeof w);
    double until = now_ms() + secs * 1000.0;
    for (int i = 0; i < NW; i++) {
        w[i].n = i;
        w[i].sql = i < NSQL;
        w[i].until = until;
        w[i].ids = calloc(MAX_IDS, 37);
        w[i].ver = calloc(MAX_IDS, sizeof(int64_t));
        w[i].reg = calloc(MAX_IDS, 1);
        w[i].rolled = calloc(MAX_IDS, 37);
    }
    /* Pullers start at the head of the feed as it is now. */
    sentra_client_t *c = client(T_PROV);
    puller_t pp = {T_PROV, &stop, {0}, 0, 0, 0, "", pull_all(c, "", 5000, NULL, NULL)};
    sentra_client_free(c);
    c = client(T_DIST);
    puller_t pd = {T_DIST, &stop, {0}, 0, 0, 0, "", pull_all(c, "", 5000, NULL, NULL)};
    sentra_client_free(c);
    c = client(T_NATIONAL);     /* the unscoped shape of the pull */
    puller_t pn = {T_NATIONAL, &stop, {0}, 0, 0, 0, "", pull_all(c, "", 5000, NULL, NULL)};
    sentra_client_free(c);
    naive_t nv = {&stop, seq0, NULL, seq0 + 2000000, 0};
    nv.seen = calloc((size_t)nv.cap, 1);

    pthread_t tw[NW], tp, td, tn, tnat;
    pthread_create(&tp, NULL, puller_run, &pp);
    pthread_create(&tnat, NULL, puller_run, &pn);
    pthread_create(&td, NULL, puller_run, &pd);
    pthread_create(&tn, NULL, naive_run, &nv);
    for (int i = 0; i < NW; i++)
        pthread_create(&tw[i], NULL, writer_run, &w[i]);
    for (int i = 0; i < NW; i++)
        pthread_join(tw[i], NULL);
    stop = 1;
    pthread_join(tp, NULL);
    pthread_join(tnat, NULL);
    pthread_join(td, NULL);
    pthread_join(tn, NULL);

    int records = 0, commits = 0, missed = 0, stale = 0, dist_missed = 0, leaked = 0, ghosts = 0;
    int nat_missed = 0;
    for (int i = 0; i < NW; i++) {
        if (w[i].errors)
            print_error("writer %d: %d errors, last: %s\n", i, w[i].errors, w[i].err);
        assert_int_equal(w[i].errors, 0);
        commits += w[i].commits;
        for (int j = 0; j < w[i].nids; j++) {
            records++;
            int64_t v = seen_get(&pp.seen, w[i].ids[j], NULL);
            if (v < 0)
                missed++;
            else if (v < w[i].ver[j])
                stale++;
            if (seen_get(&pn.seen, w[i].ids[j], NULL) != w[i].ver[j])
                nat_missed++;
            int64_t vd = seen_get(&pd.seen, w[i].ids[j], NULL);
            if (w[i].reg[j] == 0 && vd < w[i].ver[j])
                dist_missed++;          /* 18.71 records: the district's */
            if (w[i].reg[j] == 1 && vd >= 0)
                leaked++;               /* 18.72 records: not the district's */
        }
        for (int j = 0; j < w[i].nrolled; j++)
            if (seen_get(&pp.seen, w[i].rolled[j], NULL) >= 0)
                ghosts++;
    }
    /* What the naive reader missed: committed rows of this run it never
     * delivered (their seq was passed while their transaction ran). */
    char s0[32];
    snprintf(s0, sizeof s0, "%lld", seq0);
    const char *v[1] = {s0};
    PGresult *res = pg_q(pg, "SELECT seq FROM sentra_change WHERE seq > $1::bigint", 1, v);
    long long rows = PQntuples(res), naive_missed = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        long long s = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (s < nv.cap && !nv.seen[s][0])
            naive_missed++;
    }
    PQclear(res);
    print_message("concurrent run: %d s, %d writers (%d with long SQL transactions), %d commits, "
                  "%d records, %lld change rows; province puller: %d pulls, %d records served, "
                  "missed %d, stale %d; national puller: %d pulls, missed or stale %d; "
                  "district puller: %d pulls, missed %d, out of scope %d; "
                  "rolled back but served %d; naive seq cursor missed %lld\n",
                  secs, NW, NSQL, commits, records, rows, pp.pulls, pp.records, missed, stale,
                  pn.pulls, nat_missed, pd.pulls, dist_missed, leaked, ghosts, naive_missed);
    assert_true(records > 50);
    assert_int_equal(pp.errors, 0);
    assert_int_equal(pd.errors, 0);
    assert_int_equal(pn.errors, 0);
    assert_int_equal(nat_missed, 0);
    assert_int_equal(missed, 0);
    assert_int_equal(stale, 0);
    assert_int_equal(dist_missed, 0);
    assert_int_equal(leaked, 0);
    assert_int_equal(ghosts, 0);
    /* The run did commit out of order: a seq cursor would have lost rows. */
    assert_true(naive_missed > 0);

    for (int i = 0; i < NW; i++) {
        free(w[i].ids);
        free(w[i].ver);
        free(w[i].reg);
        free(w[i].rolled);
    }
    free(nv.seen);
    free(pp.seen.e);
    free(pd.seen.e);
    free(pn.seen.e);
    free(pn.cursor);
    free(pp.cursor);
    free(pd.cursor);
    PQfinish(pg);
}

/* ---------------------------------------------------------------- SIGKILL */

#define KILL_BATCHES 6
#define KILL_BATCH 400

typedef struct killpush {
    mut_t *xs;                    /* KILL_BATCHES * KILL_BATCH */
    volatile int done, failed;    /* batches answered / failed */
    volatile double started;      /* when the first batch was sent */
} killpush_t;

static void *killpush_run(void *arg)
{
    killpush_t *k = arg;
    sentra_client_t *c = client(T_DIST);
    k->started = now_ms();
    for (int b = 0; b < KILL_BATCHES; b++) {
        sentra_status_t st;
        Sentra__V1__PushChangesResponse *r =
            push(c, "app-kill", k->xs + b * KILL_BATCH, KILL_BATCH, b % 2, &st);
        sentra_status_clear(&st);
        if (r == NULL) {
            k->failed++;
            break;                /* the server is gone */
        }
        k->done++;
        sentra__v1__push_changes_response__free_unpacked(r, NULL);
    }
    sentra_client_free(c);
    return NULL;
}

static void test_sigkill_mid_push(void **state)
{
    PGconn *pg = pg_connect();
    mut_t *xs = calloc(KILL_BATCHES * KILL_BATCH, sizeof *xs);
    char id[37];
    for (int i = 0; i < KILL_BATCHES * KILL_BATCH; i++) {
        uuid_new(id);
        mut_upsert(&xs[i], id, 0, "18.71", "kill");
    }

    /* Two batches answered, the third just sent: kill a third of a batch's
     * time into it. */
    killpush_t k = {xs, 0, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, killpush_run, &k);
    while (k.done < 2 && !k.failed)
        sleep_ms(2);
    double batch_ms = (now_ms() - k.started) / 2;
    int delay = (int)(batch_ms / 3);
    sleep_ms(delay);
    server_kill(SIGKILL);
    pthread_join(t, NULL);
    print_message("SIGKILL %d ms into the third push (one batch of %d takes %.0f ms): "
                  "%d batches answered, %d cut off\n", delay, KILL_BATCH, batch_ms, k.done, k.failed);

    /* What committed regardless: the transaction of the push cut off may
     * have finished in PostgreSQL after its server died. */
    char mids[32];
    snprintf(mids, sizeof mids, "%d", k.done * KILL_BATCH);
    const char *cv[2] = {fx.token_id[T_DIST], mids};
    long long stored = pg_int(pg, "SELECT count(*) FROM sync_mutation WHERE token_id = $1::uuid "
                              "AND client_id = 'app-kill'", 1, cv);
    print_message("before the replay: %lld outcomes stored (%s answered)\n", stored, mids);
    server_start(fx.port);        /* before asserting, so later tests have a server */
    assert_int_equal(k.failed, 1);        /* the kill did land inside a push */
    assert_true(k.done < KILL_BATCHES);
    assert_true(stored >= k.done * KILL_BATCH);

    /* The app replays every batch it has not seen answered, and (to be
     * sure) the answered ones too: same mutation ids, same records. */
    sentra_client_t *c = client(T_DIST);
    for (int b = 0; b < KILL_BATCHES; b++) {
        Sentra__V1__PushChangesResponse *r =
            push_ok(c, "app-kill", xs + b * KILL_BATCH, KILL_BATCH, b % 2);
        for (int i = 0; i < KILL_BATCH; i++) {
            assert_int_equal(r->results[i]->outcome,
                             SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED);
            assert_int_equal(r->results[i]->version, 1);
        }
        sentra__v1__push_changes_response__free_unpacked(r, NULL);
    }
    sentra_client_free(c);

    /* Exactly once: every record once, created once, one stored outcome. */
    size_t cap = KILL_BATCHES * KILL_BATCH * 40 + 8;
    char *arr = malloc(cap);
    size_t len = 0;
    arr[len++] = '{';
    for (int i = 0; i < KILL_BATCHES * KILL_BATCH; i++)
        len += (size_t)snprintf(arr + len, cap - len, "%s%s", i ? "," : "", xs[i].id);
    snprintf(arr + len, cap - len, "}");
    const char *v[2] = {arr, fx.token_id[T_DIST]};
    long long n_rec = pg_int(pg, "SELECT count(*) FROM sentra WHERE id = ANY ($1::uuid[])", 1, v);
    long long n_chg = pg_int(pg, "SELECT count(*) FROM sentra_change WHERE sentra_id = ANY ($1::uuid[])", 1, v);
    long long n_ver = pg_int(pg, "SELECT count(*) FROM sentra WHERE id = ANY ($1::uuid[]) AND version = 1", 1, v);
    long long n_mut = pg_int(pg, "SELECT count(*) FROM sync_mutation WHERE token_id = $2::uuid "
                             "AND client_id = 'app-kill' AND sentra_id = ANY ($1::uuid[])", 2, v);
    print_message("after replay: %lld records, %lld change rows, %lld at version 1, "
                  "%lld stored outcomes (expected %d each)\n",
                  n_rec, n_chg, n_ver, n_mut, KILL_BATCHES * KILL_BATCH);
    assert_int_equal(n_rec, KILL_BATCHES * KILL_BATCH);
    assert_int_equal(n_chg, KILL_BATCHES * KILL_BATCH);
    assert_int_equal(n_ver, KILL_BATCHES * KILL_BATCH);
    assert_int_equal(n_mut, KILL_BATCHES * KILL_BATCH);
    free(arr);
    free(xs);
    PQfinish(pg);
}

/* ---------------------------------------------------------------- pull = get */

typedef struct same_ctx {
    sentra_client_t *c;
    Sentra__V1__ListSentraResponse *pages[64];
    size_t npages;
    int live, gone;
} same_ctx_t;

/* Every live record of regency 18.71 as ListSentra returns it: read from
 * the tables (the view sentra_api and the figures), not from the printed
 * copy that PullChanges and GetSentra read. */
static void list_district(same_ctx_t *x)
{
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    char *token = strdup("");
    f.regency_code = "18.71";
    do {
        Sentra__V1__ListSentraRequest req = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
        Sentra__V1__ListSentraResponse *r = NULL;
        sentra_status_t st;
        req.filter = &f;
        req.page_size = 1000;
        req.page_token = token;
        sentra_status_init(&st);
        assert_int_equal(sentra_list_sentra(x->c, &req, &r, NULL, &st), 0);
        sentra_status_clear(&st);
        assert_true(x->npages < 64);
        x->pages[x->npages++] = r;
        free(token);
        token = strdup(r->next_page_token);
    } while (token[0]);
    free(token);
}

static void list_free(same_ctx_t *x)
{
    for (size_t i = 0; i < x->npages; i++)
        sentra__v1__list_sentra_response__free_unpacked(x->pages[i], NULL);
    x->npages = 0;
}

static const Sentra__V1__Sentra *listed(const same_ctx_t *x, const char *id)
{
    for (size_t i = 0; i < x->npages; i++)
        for (size_t k = 0; k < x->pages[i]->n_sentra; k++)
            if (strcmp(x->pages[i]->sentra[k]->id, id) == 0)
                return x->pages[i]->sentra[k];
    return NULL;
}

static void assert_same_bytes(const Sentra__V1__Sentra *a, const Sentra__V1__Sentra *b,
                              const char *what)
{
    size_t n1 = protobuf_c_message_get_packed_size(&a->base);
    size_t n2 = protobuf_c_message_get_packed_size(&b->base);
    uint8_t *b1 = malloc(n1 + 1), *b2 = malloc(n2 + 1);
    protobuf_c_message_pack(&a->base, b1);
    protobuf_c_message_pack(&b->base, b2);
    if (n1 != n2 || memcmp(b1, b2, n1) != 0)
        print_error("record %s: pulled (%zu bytes) and %s (%zu bytes) differ\n", a->id, n1, what, n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
}

/* Each pulled record is, byte for byte, what ListSentra returns from the
 * tables, and what GetSentra returns. */
static void same_as_get(const Sentra__V1__Sentra *s, void *arg)
{
    same_ctx_t *x = arg;
    if (s->deleted) {
        x->gone++;
        return;
    }
    const Sentra__V1__Sentra *l = listed(x, s->id);
    if (l == NULL)
        print_error("record %s: pulled but not listed\n", s->id);
    assert_non_null(l);
    assert_same_bytes(s, l, "listed");

    Sentra__V1__GetSentraRequest req = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra *g = NULL;
    sentra_status_t st;
    req.id = s->id;
    sentra_status_init(&st);
    assert_int_equal(sentra_get_sentra(x->c, &req, &g, NULL, &st), 0);
    sentra_status_clear(&st);
    assert_same_bytes(s, g, "got");
    protobuf_c_message_free_unpacked(&g->base, NULL);
    x->live++;
}

static void test_pull_equals_get(void **state)
{
    sentra_client_t *d = client(T_DIST);
    char *head = pull_all(d, "", 5000, NULL, NULL);
    mut_t xs[3];
    char id[3][37];
    Sentra__V1__GeoPoint loc = SENTRA__V1__GEO_POINT__INIT;
    Sentra__V1__Decree dec = SENTRA__V1__DECREE__INIT;
    Sentra__V1__Figures f1 = SENTRA__V1__FIGURES__INIT, f2 = SENTRA__V1__FIGURES__INIT;
    Sentra__V1__Figures *figs[2] = {&f1, &f2};
    char *dest[2] = {"MY", "SG"};

    loc.latitude = -5.4321987654321;
    loc.longitude = 105.2600000001;
    dec.number = "SK/77/HK/2023";
    dec.date = "2023-06-01";
    dec.official = "Walikota Bandar Lampung";
    f1.year = 2023;
    f1.business_units = 9;
    f1.workers_male = 4;
    f1.workers_female = 17;
    f1.investment = 123456789012LL;
    f1.production_value = 987654321;
    f2.year = 2024;
    f2.business_units = 12;
    f2.capacity = 4000;
    f2.capacity_unit = "karung, 50 kg (±)";
    f2.export_share_bp = 1250;
    f2.n_export_destinations = 2;
    f2.export_destinations = dest;
    for (int i = 0; i < 3; i++) {
        uuid_new(id[i]);
        mut_upsert(&xs[i], id[i], 0, "18.71", i == 0 ? "eq-a" : i == 1 ? "eq-b" : "eq-c");
    }
    /* one with everything, one designated, one bare */
    xs[0].s.location = &loc;
    xs[0].s.address = "Jl. Kopi No. 5\nRT 02\tRW 03";
    xs[0].s.district_code = "18.71.01";
    xs[0].s.commodity = "Tapis";
    xs[0].s.main_product = "Kain tapis";
    xs[0].s.contact_name = "Bu Sari";
    xs[0].s.contact_phone = "+62 812-7000";
    xs[0].s.formed_on = "2019-03-15";
    xs[0].s.n_figures = 2;
    xs[0].s.figures = figs;
    xs[1].s.status = SENTRA__V1__STATUS__STATUS_DESIGNATED;
    xs[1].s.decree = &dec;
    xs[1].s.formed_on = "2020-01-02";
    xs[1].s.n_figures = 1;
    xs[1].s.figures = figs;
    Sentra__V1__PushChangesResponse *r = push_ok(d, "app-eq", xs, 3, 0);
    sentra__v1__push_changes_response__free_unpacked(r, NULL);

    /* Another writer changes figures straight in SQL, and one record goes. */
    PGconn *pg = pg_connect();
    const char *v[1] = {id[0]};
    PQclear(pg_q(pg, "UPDATE sentra_figures SET material_value = 31337 WHERE sentra_id = $1", 1, v));
    PQclear(pg_q(pg, "UPDATE sentra SET name = name || ' (diubah)' WHERE id = $1", 1, v));
    PQfinish(pg);
    mut_delete(&xs[0], id[2], 1);
    r = push_ok(d, "app-eq", xs, 1, 0);
    sentra__v1__push_changes_response__free_unpacked(r, NULL);

    /* One page: each record once (the deleted one as a tombstone). */
    same_ctx_t x = {.c = d};
    list_district(&x);
    free(pull_all(d, head, 500, same_as_get, &x));
    assert_int_equal(x.live, 2);
    assert_int_equal(x.gone, 1);
    /* From the beginning, pages of 3 (read ahead by the server): every
     * record of the district, some more than once. */
    x.live = x.gone = 0;
    free(pull_all(d, "", 3, same_as_get, &x));
    assert_true(x.live >= 2);
    list_free(&x);
    free(head);
    sentra_client_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_pull_basic),
        cmocka_unit_test(test_pull_equals_get),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_atomic),
        cmocka_unit_test(test_repeat_racing_original),
        cmocka_unit_test(test_conflicting_edits),
        cmocka_unit_test(test_long_poll),
        cmocka_unit_test(test_move_between_regencies),
        cmocka_unit_test(test_concurrent_writers_and_pullers),
        cmocka_unit_test(test_sigkill_mid_push),
        cmocka_unit_test(test_held_back_by_open_transaction),
        cmocka_unit_test(test_compaction),
    };
    return cmocka_run_group_tests_name("sync", tests, setup, teardown);
}
