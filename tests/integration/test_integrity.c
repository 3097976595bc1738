/*
 * test_integrity.c: the promises of issue 12 that hold for every writer,
 * against a sentrad and a database of this test's own (it drops CHECK
 * constraints there to prove who refuses what).
 *
 *   derived rows under two plain-SQL writers of one sentra (READ
 *     COMMITTED): a figures update held open while the sector changes, a
 *     sector change held open while a newer figures year arrives, and a
 *     bounded run of concurrent writers; sentra_stat (the statistics) and
 *     sentra_pull (GetSentra, PullChanges) must say what the tables say.
 *     Before the fix sentra_stat lost the other writer's change in both
 *     orders while sentra_pull stayed right: the triggers upsert
 *     sentra_stat first, that upsert took the wait, and the reprint after
 *     it ran with a fresh snapshot. The pull checks stay, as the lock is
 *     now what makes both right.
 *   a hard DELETE in SQL reaches incremental and fresh pullers as a
 *     tombstone above the version they hold, and its id stays taken
 *   sync_compact keeps the move that is the old district's tombstone
 *   a replayed push mutation id does not show a record that left the
 *     caller's scope
 *   money is bounded (C and CHECK); a sum beyond int64 fails only the
 *     statistics request that meets it, with OUT_OF_RANGE
 *   the CHECK "a designated sentra needs a decree" holds by itself
 *     (triggers disabled); the server refuses KBLI main group 45 by its own
 *     validation (the database CHECK dropped)
 *
 * The tokens and records come from sentra_fixture.h, pointed at this
 * test's server. INTEGRITY_TEST_SECONDS sets the concurrent run (default 3).
 */
#include "sentra_fixture.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>

#include <sentra/sync.h>

#include "harness.h"

/* The documented bound of money figures (docs/DATA_MODEL.md). */
#define MONEY_MAX INT64_C(100000000000000)

static th_server_t srv;

static int setup(void **state)
{
    char addr[96];

    if (th_server_start(&srv, "t_integrity", NULL) != 0)
        return -1;
    snprintf(addr, sizeof addr, "%s:%d", srv.host, srv.port);
    setenv("SENTRA_TEST_ADDR", addr, 1);
    setenv("SENTRA_TEST_DB", srv.db_conninfo, 1);
    return fixture_setup(state);
}

static int teardown(void **state)
{
    fixture_teardown(state);
    th_server_free(&srv);
    return 0;
}

/* ---------------------------------------------------------------- SQL */

/* Connections of the running test, closed by close_conns after it
 * whatever its outcome: a test that fails with a transaction open (and
 * its locks held) must not hold up the tests after it. */
static PGconn *conns[8];

static PGconn *db(void)
{
    PGconn *c = th_db(&srv);
    assert_non_null(c);
    for (size_t i = 0; i < sizeof conns / sizeof conns[0]; i++)
        if (conns[i] == NULL) {
            conns[i] = c;
            return c;
        }
    fail_msg("more than %zu connections in one test", sizeof conns / sizeof conns[0]);
    return NULL;
}

static int close_conns(void **state)
{
    for (size_t i = 0; i < sizeof conns / sizeof conns[0]; i++)
        if (conns[i] != NULL) {
            PQfinish(conns[i]);
            conns[i] = NULL;
        }
    return 0;
}

/* Runs a statement (printf-formatted; the values are this test's own ids
 * and numbers); fails the test on an error. */
static void sql_ok(PGconn *c, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* The first value of a query as a number (-1 when there is no row). */
static long long sql_ll(PGconn *c, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    long long v = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return v;
}

/* Runs a statement that must fail; returns its SQLSTATE and (into
 * constraint, when given) the constraint it names. */
static void sql_fails(PGconn *c, char sqlstate[6], char *constraint, size_t clen,
                      const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR)
        fail_msg("expected an error from: %s", sql);
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *k = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    snprintf(sqlstate, 6, "%s", s ? s : "");
    if (constraint)
        snprintf(constraint, clen, "%s", k ? k : "");
    PQclear(r);
}

/* Waits (at most 10 s) until the statement sent on `waiter` has either
 * finished or waits for a lock (as seen from `obs`): then it has run
 * while the other session's transaction was open. Returns 1 when so. */
static int ran_meanwhile(PGconn *obs, PGconn *waiter)
{
    int pid = PQbackendPID(waiter);
    for (int i = 0; i < 1000; i++) {
        if (!PQconsumeInput(waiter) || !PQisBusy(waiter))
            return 1;
        if (sql_ll(obs, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d"
                        " AND wait_event_type = 'Lock'", pid) == 1)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* The outcome of the statement sent with PQsendQuery on c: fails the test
 * unless it succeeded. */
static void sent_ok(PGconn *c)
{
    PGresult *r;
    int ok = 1;
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
            print_error("%s", PQerrorMessage(c));
            ok = 0;
        }
        PQclear(r);
    }
    assert_true(ok);
}

/* Records whose sentra_stat or sentra_pull row disagrees with the tables
 * (migrations/0009_integrity.sql, sentra_derived_drift). */
static long long drift(PGconn *c)
{
    return sql_ll(c, "SELECT count(*) FROM sentra_derived_drift()");
}

/* ---------------------------------------------------------------- records */

/* Creates a record of the fixture's shape with `who`: designated with two
 * figures years (2022, 2023), or, with formed, a formed one without a
 * decree. Returns its id (malloc'ed). */
static char *new_record(int who, const char *tag, int formed, const char *regency)
{
    rec_t r;
    sentra_status_t st;
    sentra_status_init(&st);
    rec_init(&r, tag);
    if (formed) {
        r.s.status = SENTRA__V1__STATUS__STATUS_FORMED;
        r.s.decree = NULL;
    }
    if (regency) {
        r.s.regency_code = (char *)regency;
        r.s.district_code = "";
        r.s.village_code = "";
    }
    Sentra__V1__Sentra *s = create_as(who, &r, NULL, &st);
    if (!s)
        print_error("create %s: %s %s\n", tag, sentra_status_name(st.code),
                    st.message ? st.message : "");
    assert_non_null(s);
    char *id = strdup(s->id);
    sentra__v1__sentra__free_unpacked(s, NULL);
    sentra_status_clear(&st);
    return id;
}

/* The record as ListSentra reads it from the tables (by its name), and as
 * GetSentra reads it from sentra_pull: they must be the same. */
static void same_in_list_and_get(int who, const char *id)
{
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__Sentra *g = get_as(who, id, &st);
    assert_non_null(g);
    Sentra__V1__ListSentraResponse *l = list_as(who, g->name, NULL, 10, NULL, 0, 0, 0, &st);
    assert_non_null(l);
    assert_int_equal(l->n_sentra, 1);
    const Sentra__V1__Sentra *t = l->sentra[0];
    assert_string_equal(t->id, g->id);
    assert_int_equal(t->version, g->version);
    assert_int_equal(t->sector_group, g->sector_group);
    assert_int_equal(t->status, g->status);
    assert_int_equal(t->n_figures, g->n_figures);
    for (size_t i = 0; i < t->n_figures; i++) {
        assert_int_equal(t->figures[i]->year, g->figures[i]->year);
        assert_int_equal(t->figures[i]->business_units, g->figures[i]->business_units);
        assert_int_equal(t->figures[i]->workers_male, g->figures[i]->workers_male);
        assert_int_equal(t->figures[i]->investment, g->figures[i]->investment);
    }
    sentra__v1__list_sentra_response__free_unpacked(l, NULL);
    sentra__v1__sentra__free_unpacked(g, NULL);
    sentra_status_clear(&st);
}

static Sentra__V1__GetStatisticsResponse *stats_as(int who, const char *regency,
                                                   Sentra__V1__GroupBy g, sentra_status_t *st)
{
    Sentra__V1__GetStatisticsRequest req = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    Sentra__V1__GetStatisticsResponse *out = NULL;
    f.regency_code = (char *)(regency ? regency : "");
    req.filter = &f;
    if (g) {
        req.group_by = &g;
        req.n_group_by = 1;
    }
    sentra_get_statistics(fx.cl[who], &req, &out, NULL, st);
    return out;
}

/* The statistics row of sector `key` ("crafts"), or NULL. */
static const Sentra__V1__StatsRow *sector_row(const Sentra__V1__GetStatisticsResponse *r,
                                              const char *key)
{
    for (size_t i = 0; i < r->n_rows; i++)
        if (strcmp(r->rows[i]->keys[0], key) == 0)
            return r->rows[i];
    return NULL;
}

/* ---------------------------------------------------------------- pulls */

/* What a district app holds: the cursor, and per record the highest
 * version seen and whether that was a tombstone. */
typedef struct held {
    char *cursor;
    int n;
    struct { char id[37]; int64_t version; int deleted; } e[256];
} held_t;

static int held_apply(void *arg, const Sentra__V1__Sentra *s)
{
    held_t *h = arg;
    int i;
    for (i = 0; i < h->n && strcmp(h->e[i].id, s->id) != 0; i++)
        ;
    if (i == h->n) {
        if (h->n == 256)
            return -1;
        snprintf(h->e[h->n++].id, sizeof h->e[0].id, "%s", s->id);
    }
    /* "apply if newer", as the docs tell clients to */
    if (s->version > h->e[i].version) {
        h->e[i].version = s->version;
        h->e[i].deleted = s->deleted;
    }
    return 0;
}

static int held_cursor(void *arg, const char *cursor)
{
    held_t *h = arg;
    free(h->cursor);
    h->cursor = strdup(cursor);
    return 0;
}

/* Pulls everything after h's cursor with `who`'s token. */
static void held_pull(held_t *h, int who)
{
    sentra_sync_store_t store = {.apply = held_apply, .save_cursor = held_cursor, .arg = h};
    sentra_status_t st;
    sentra_status_init(&st);
    int rc = sentra_sync_pull(fx.cl[who], h->cursor, NULL, &store, NULL, &st);
    if (rc != 0)
        print_error("pull: %s %s\n", sentra_status_name(st.code), st.message ? st.message : "");
    assert_int_equal(rc, 0);
    sentra_status_clear(&st);
}

/* The version held for id (-1: never seen), and whether it is a tombstone. */
static int64_t held_get(const held_t *h, const char *id, int *deleted)
{
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->e[i].id, id) == 0) {
            *deleted = h->e[i].deleted;
            return h->e[i].version;
        }
    *deleted = 0;
    return -1;
}

/* ---------------------------------------------------------------- pushes */

/* Pushes one mutation as client `client`; returns the response (caller
 * frees), failing the test when the call fails. */
static Sentra__V1__PushChangesResponse *push1(int who, const char *client, const char *mid,
                                              Sentra__V1__MutationOp op,
                                              Sentra__V1__Sentra *s, int64_t base)
{
    Sentra__V1__PushChangesRequest req = SENTRA__V1__PUSH_CHANGES_REQUEST__INIT;
    Sentra__V1__Mutation m = SENTRA__V1__MUTATION__INIT;
    Sentra__V1__Mutation *ms[1] = {&m};
    Sentra__V1__PushChangesResponse *out = NULL;
    sentra_status_t st;
    sentra_status_init(&st);
    m.mutation_id = (char *)mid;
    m.op = op;
    m.sentra = s;
    m.base_version = base;
    req.client_id = (char *)client;
    req.mutations = ms;
    req.n_mutations = 1;
    if (sentra_push_changes(fx.cl[who], &req, &out, NULL, &st) != 0)
        print_error("push: %s %s\n", sentra_status_name(st.code), st.message ? st.message : "");
    assert_non_null(out);
    assert_int_equal(out->n_results, 1);
    sentra_status_clear(&st);
    return out;
}

/* ================================================================ item 2 */

/* Session A updates a figures row and holds its transaction open; session
 * B changes the sector meanwhile (and so waits). The statistics must hold
 * both: the new sector and A's figures. */
static void test_race_figures_then_sector(void **state)
{
    char *id = new_record(T_DIST, "race fig-sector", 0, NULL);
    PGconn *a = db(), *b = db(), *obs = db();

    sql_ok(a, "BEGIN");
    sql_ok(a, "UPDATE sentra_figures SET workers_male = 9999 WHERE sentra_id = '%s'"
              " AND year = 2023", id);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE sentra SET sector_group = 4 WHERE id = '%s'", id);
    assert_int_equal(PQsendQuery(b, sql), 1);
    assert_true(ran_meanwhile(obs, b));
    sql_ok(a, "COMMIT");
    sent_ok(b);

    assert_int_equal(sql_ll(obs, "SELECT workers_male FROM sentra_stat WHERE sentra_id = '%s'", id),
                     9999);
    assert_int_equal(sql_ll(obs, "SELECT sector_group FROM sentra_stat WHERE sentra_id = '%s'", id),
                     4);
    assert_int_equal(drift(obs), 0);
    /* the statistics and the list agree: GetStatistics counts the record
     * under crafts with A's figures */
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__GetStatisticsResponse *r =
        stats_as(T_DIST, "18.71", SENTRA__V1__GROUP_BY__GROUP_BY_SECTOR_GROUP, &st);
    assert_non_null(r);
    const Sentra__V1__StatsRow *crafts = sector_row(r, "crafts");
    assert_non_null(crafts);
    assert_int_equal(crafts->workers_male,
                     sql_ll(obs, "SELECT sum(f.workers_male) FROM sentra s JOIN LATERAL"
                                 " (SELECT * FROM sentra_figures x WHERE x.sentra_id = s.id"
                                 " ORDER BY year DESC LIMIT 1) f ON true WHERE s.regency_code"
                                 " = '18.71' AND s.sector_group = 4 AND s.deleted_at IS NULL"));
    assert_true(crafts->workers_male >= 9999);
    sentra__v1__get_statistics_response__free_unpacked(r, NULL);
    sentra_status_clear(&st);
    same_in_list_and_get(T_DIST, id);

    free(id);
}

/* The reverse: A changes the sector and holds its transaction open; B adds
 * a newer figures year meanwhile. The record must count in A's sector with
 * B's figures. */
static void test_race_sector_then_figures(void **state)
{
    char *id = new_record(T_DIST, "race sector-fig", 0, NULL);
    PGconn *a = db(), *b = db(), *obs = db();

    sql_ok(a, "BEGIN");
    sql_ok(a, "UPDATE sentra SET sector_group = 5 WHERE id = '%s'", id);
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO sentra_figures (sentra_id, year, business_units,"
                              " workers_male) VALUES ('%s', 2024, 50, 777)", id);
    assert_int_equal(PQsendQuery(b, sql), 1);
    assert_true(ran_meanwhile(obs, b));
    sql_ok(a, "COMMIT");
    sent_ok(b);

    assert_int_equal(sql_ll(obs, "SELECT sector_group FROM sentra_stat WHERE sentra_id = '%s'", id),
                     5);
    assert_int_equal(sql_ll(obs, "SELECT fig_year FROM sentra_stat WHERE sentra_id = '%s'", id),
                     2024);
    assert_int_equal(drift(obs), 0);
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__GetStatisticsResponse *r =
        stats_as(T_DIST, "18.71", SENTRA__V1__GROUP_BY__GROUP_BY_SECTOR_GROUP, &st);
    assert_non_null(r);
    const Sentra__V1__StatsRow *furniture = sector_row(r, "furniture");
    assert_non_null(furniture);
    assert_int_equal(furniture->sentra, 1);
    assert_int_equal(furniture->workers_male, 777);
    sentra__v1__get_statistics_response__free_unpacked(r, NULL);
    sentra_status_clear(&st);
    same_in_list_and_get(T_DIST, id);

    free(id);
}

/* Concurrent plain-SQL writers of a few records, for a bounded time. */
#define RACE_RECORDS 3
#define RACE_WRITERS 4

static struct {
    char *id[RACE_RECORDS];
    int64_t stop_ms;
    long commits, rollbacks, errors;
    pthread_mutex_t mu;
} race;

static void *race_writer(void *arg)
{
    PGconn *c = PQconnectdb(srv.db_conninfo);
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + (unsigned)th_now_ms();
    long commits = 0, rollbacks = 0, errors = 0;

    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        pthread_mutex_lock(&race.mu);
        race.errors++;
        pthread_mutex_unlock(&race.mu);
        return NULL;
    }
    while (th_now_ms() < race.stop_ms) {
        const char *id = race.id[rand_r(&seed) % RACE_RECORDS];
        char sql[512];
        int op = rand_r(&seed) % 4, hold_ms = rand_r(&seed) % 40;
        switch (op) {
        case 0:     /* figures of the latest year */
            snprintf(sql, sizeof sql, "UPDATE sentra_figures SET workers_male = %d,"
                     " investment = %d WHERE sentra_id = '%s' AND year = (SELECT max(year)"
                     " FROM sentra_figures WHERE sentra_id = '%s')",
                     rand_r(&seed) % 100000, rand_r(&seed) % 100000, id, id);
            break;
        case 1:     /* the record's classification */
            snprintf(sql, sizeof sql, "UPDATE sentra SET sector_group = %d, kbli_code = '%d'"
                     " WHERE id = '%s'", 1 + rand_r(&seed) % 6, 10000 + rand_r(&seed) % 24000, id);
            break;
        case 2:     /* a newer year comes */
            snprintf(sql, sizeof sql, "INSERT INTO sentra_figures (sentra_id, year, business_units,"
                     " workers_male) VALUES ('%s', 2024, %d, %d) ON CONFLICT DO NOTHING",
                     id, 5 + rand_r(&seed) % 50, rand_r(&seed) % 1000);
            break;
        default:    /* and goes */
            snprintf(sql, sizeof sql, "DELETE FROM sentra_figures WHERE sentra_id = '%s'"
                     " AND year = 2024", id);
            break;
        }
        char body[768];
        snprintf(body, sizeof body, "BEGIN; %s; SELECT pg_sleep(%d / 1000.0)", sql, hold_ms);
        PGresult *r = PQexec(c, body);
        int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        const char *e = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        char sqlstate[6];
        snprintf(sqlstate, sizeof sqlstate, "%s", e ? e : "");
        PQclear(r);
        int rollback = !ok || rand_r(&seed) % 8 == 0;
        r = PQexec(c, rollback ? "ROLLBACK" : "COMMIT");
        PQclear(r);
        if (ok && !rollback)
            commits++;
        else if (ok || strcmp(sqlstate, "40P01") == 0 || strcmp(sqlstate, "40001") == 0)
            rollbacks++;
        else
            errors++;
    }
    PQfinish(c);
    pthread_mutex_lock(&race.mu);
    race.commits += commits;
    race.rollbacks += rollbacks;
    race.errors += errors;
    pthread_mutex_unlock(&race.mu);
    return NULL;
}

static void test_race_writers(void **state)
{
    const char *secs = getenv("INTEGRITY_TEST_SECONDS");
    int seconds = secs && atoi(secs) > 0 ? atoi(secs) : 3;
    pthread_t t[RACE_WRITERS];
    PGconn *obs = db();

    for (int i = 0; i < RACE_RECORDS; i++)
        race.id[i] = new_record(T_DIST, i == 0 ? "race many 0" : i == 1 ? "race many 1"
                                                                         : "race many 2", 1, NULL);
    pthread_mutex_init(&race.mu, NULL);
    race.stop_ms = th_now_ms() + seconds * 1000;
    for (intptr_t i = 0; i < RACE_WRITERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race_writer, (void *)i), 0);
    for (int i = 0; i < RACE_WRITERS; i++)
        pthread_join(t[i], NULL);
    print_message("race: %ld commits, %ld rollbacks, %ld errors in %d s\n",
                  race.commits, race.rollbacks, race.errors, seconds);
    assert_int_equal(race.errors, 0);
    assert_true(race.commits > 10);
    assert_int_equal(drift(obs), 0);
    for (int i = 0; i < RACE_RECORDS; i++) {
        same_in_list_and_get(T_DIST, race.id[i]);
        free(race.id[i]);
    }
    pthread_mutex_destroy(&race.mu);
}

/* ================================================================ item 3 */

/* A hard DELETE reaches the district's incremental puller, a fresh puller
 * and the province as a tombstone above the version they held; another
 * district sees nothing; the id is not used again. */
static void test_hard_delete_reaches_pullers(void **state)
{
    held_t inc = {0}, other = {0}, fresh = {0}, prov = {0};
    int del;

    held_pull(&inc, T_DIST);
    held_pull(&other, T_DIST_OTHER);
    char *id = new_record(T_DIST, "hard delete", 0, NULL);
    held_pull(&inc, T_DIST);
    assert_int_equal(held_get(&inc, id, &del), 1);
    assert_false(del);

    /* A tombstone of the service, purged later: one more version too. */
    char *tomb = new_record(T_DIST, "hard delete tombstone", 0, NULL);
    sentra_status_t st;
    sentra_status_init(&st);
    Sentra__V1__DeleteSentraResponse *d = delete_as(T_DIST, tomb, 1, NULL, &st);
    assert_non_null(d);
    assert_int_equal(d->version, 2);
    sentra__v1__delete_sentra_response__free_unpacked(d, NULL);
    held_pull(&inc, T_DIST);
    assert_int_equal(held_get(&inc, tomb, &del), 2);
    assert_true(del);

    PGconn *c = db();
    sql_ok(c, "DELETE FROM sentra WHERE id IN ('%s', '%s')", id, tomb);

    held_pull(&inc, T_DIST);
    assert_int_equal(held_get(&inc, id, &del), 2);
    assert_true(del);
    assert_int_equal(held_get(&inc, tomb, &del), 3);
    assert_true(del);
    held_pull(&fresh, T_DIST);
    assert_int_equal(held_get(&fresh, id, &del), 2);
    assert_true(del);
    held_pull(&prov, T_PROV);
    assert_int_equal(held_get(&prov, id, &del), 2);
    assert_true(del);
    held_pull(&other, T_DIST_OTHER);
    assert_int_equal(held_get(&other, id, &del), -1);

    /* Gone for readers, and its id is not handed out again: a new record
     * would start at version 1, below the tombstone the apps hold. */
    assert_null(get_as(T_DIST, id, &st));
    assert_code(st, SENTRA__V1__CODE__NOT_FOUND);
    rec_t r;
    rec_init(&r, "hard delete again");
    r.s.id = id;
    assert_null(create_as(T_DIST, &r, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__ALREADY_EXISTS);
    Sentra__V1__PushChangesResponse *p = push1(T_DIST, "app-purge", "m-purge-1",
                                               SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT, &r.s, 0);
    assert_int_equal(p->results[0]->outcome,
                     SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED);
    sentra__v1__push_changes_response__free_unpacked(p, NULL);
    assert_int_equal(sql_ll(c, "SELECT count(*) FROM sentra WHERE id = '%s'", id), 0);
    assert_int_equal(drift(c), 0);
    sentra_status_clear(&st);

    free(inc.cursor);
    free(other.cursor);
    free(fresh.cursor);
    free(prov.cursor);
    free(tomb);
    free(id);
}

/* ================================================================ item 4 */

/* Create in 18.71, move to 18.72, update in 18.72, compact: the 18.71 app
 * that had pulled the create still gets its tombstone. */
static void test_compaction_keeps_move(void **state)
{
    held_t a = {0}, b = {0};
    int del;

    held_pull(&a, T_DIST);
    char *id = new_record(T_DIST, "compact move", 0, NULL);
    held_pull(&a, T_DIST);
    assert_int_equal(held_get(&a, id, &del), 1);

    sentra_status_t st;
    sentra_status_init(&st);
    rec_t r;
    rec_init(&r, "compact move");
    r.s.id = id;
    r.s.regency_code = "18.72";
    r.s.district_code = "";
    r.s.village_code = "";
    static const char *const move[] = {"regency_code", "district_code", "village_code"};
    Sentra__V1__Sentra *moved = update_as(T_PROV, &r.s, move, 3, 1, NULL, &st);
    assert_non_null(moved);
    assert_int_equal(moved->version, 2);
    r.s.name = "Sentra Uji compact moved, renamed in 18.72";
    static const char *const name[] = {"name"};
    Sentra__V1__Sentra *renamed = update_as(T_DIST_OTHER, &r.s, name, 1, 2, NULL, &st);
    assert_non_null(renamed);
    assert_int_equal(renamed->version, 3);

    PGconn *c = db();
    long long before = sql_ll(c, "SELECT count(*) FROM sentra_change WHERE sentra_id = '%s'", id);
    sql_ok(c, "SELECT sync_compact(interval '0 seconds')");
    long long after = sql_ll(c, "SELECT count(*) FROM sentra_change WHERE sentra_id = '%s'", id);
    print_message("compaction: %lld change rows of the moved record, %lld kept\n", before, after);
    assert_true(after < before);        /* the create went */
    /* nothing compaction may drop is left: another run deletes nothing */
    assert_int_equal(sql_ll(c, "SELECT sync_compact(interval '0 seconds')"), 0);

    held_pull(&a, T_DIST);
    assert_int_equal(held_get(&a, id, &del), 3);
    assert_true(del);                   /* left 18.71: a tombstone */
    held_pull(&b, T_DIST_OTHER);
    assert_int_equal(held_get(&b, id, &del), 3);
    assert_false(del);

    sentra__v1__sentra__free_unpacked(renamed, NULL);
    sentra__v1__sentra__free_unpacked(moved, NULL);
    sentra_status_clear(&st);
    free(a.cursor);
    free(b.cursor);
    free(id);
}

/* ================================================================ item 5 */

/* A district's push is refused with CONFLICT; the province moves the
 * record to another district; the district replays the mutation id: the
 * stored outcome comes back, without the record it can no longer read. */
static void test_replay_out_of_scope(void **state)
{
    char *id = new_record(T_DIST, "replay", 0, NULL);
    sentra_status_t st;
    sentra_status_init(&st);
    rec_t r;
    rec_init(&r, "replay");
    r.s.id = id;

    /* based on a version the server never had: CONFLICT with the record */
    r.s.name = "Sentra Uji replay, edited offline";
    Sentra__V1__PushChangesResponse *p = push1(T_DIST, "app-replay", "m-replay-1",
                                               SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT, &r.s, 7);
    assert_int_equal(p->results[0]->outcome,
                     SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT);
    assert_non_null(p->results[0]->current);
    assert_string_equal(p->results[0]->current->regency_code, "18.71");
    sentra__v1__push_changes_response__free_unpacked(p, NULL);

    rec_t m;
    rec_init(&m, "replay");
    m.s.id = id;
    m.s.regency_code = "18.72";
    m.s.district_code = "";
    m.s.village_code = "";
    m.s.name = "Sentra Uji replay, moved to Metro";
    static const char *const move[] = {"regency_code", "district_code", "village_code", "name"};
    Sentra__V1__Sentra *moved = update_as(T_PROV, &m.s, move, 4, 1, NULL, &st);
    assert_non_null(moved);
    assert_int_equal(moved->version, 2);

    p = push1(T_DIST, "app-replay", "m-replay-1",
              SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT, &r.s, 7);
    const Sentra__V1__MutationResult *res = p->results[0];
    assert_int_equal(res->outcome, SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT);
    if (res->current) {
        /* at most what a pull shows 18.71 of a record that left: a
         * tombstone with its id and version */
        assert_string_equal(res->current->id, id);
        assert_true(res->current->deleted);
        assert_int_equal(res->current->version, 2);
        assert_string_equal(res->current->regency_code, "");
        assert_string_equal(res->current->name, "");
        assert_string_equal(res->current->province_code, "");
        assert_int_equal(res->current->n_figures, 0);
    }
    sentra__v1__push_changes_response__free_unpacked(p, NULL);

    /* The province replaying a conflict of its own still sees the record. */
    m.s.name = "Sentra Uji replay, province offline edit";
    p = push1(T_PROV, "app-prov-replay", "m-prov-1",
              SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT, &m.s, 1);
    assert_int_equal(p->results[0]->outcome,
                     SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT);
    sentra__v1__push_changes_response__free_unpacked(p, NULL);
    p = push1(T_PROV, "app-prov-replay", "m-prov-1",
              SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT, &m.s, 1);
    assert_int_equal(p->results[0]->outcome,
                     SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT);
    assert_non_null(p->results[0]->current);
    assert_false(p->results[0]->current->deleted);
    assert_string_equal(p->results[0]->current->regency_code, "18.72");
    assert_string_equal(p->results[0]->current->name, "Sentra Uji replay, moved to Metro");
    assert_int_equal(p->results[0]->current->n_figures, 2);
    sentra__v1__push_changes_response__free_unpacked(p, NULL);

    sentra__v1__sentra__free_unpacked(moved, NULL);
    sentra_status_clear(&st);
    free(id);
}

/* ================================================================ item 9 */

/* Money is bounded by the service and by the table; at the bound the sums
 * are exact. */
static void test_money_bounds(void **state)
{
    sentra_status_t st;
    sentra_status_init(&st);
    PGconn *c = db();
    Sentra__V1__GetStatisticsResponse *before = stats_as(T_DIST_FAR, NULL, 0, &st);
    assert_non_null(before);

    /* The value of the issue (2^63 - 1), and one rupiah over the bound:
     * refused by validate.c, through both write paths. */
    rec_t r;
    rec_init(&r, "money max");
    r.s.regency_code = "31.71";
    r.s.district_code = "";
    r.s.village_code = "";
    r.f[0].production_value = INT64_MAX;
    assert_null(create_as(T_DIST_FAR, &r, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_true(has_violation(&st, "figures[0].production_value"));
    r.f[0].production_value = 1;
    r.f[1].investment = MONEY_MAX + 1;
    assert_null(create_as(T_DIST_FAR, &r, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_true(has_violation(&st, "figures[1].investment"));
    char mid[64];
    snprintf(mid, sizeof mid, "m-money-%s", fx.run);
    Sentra__V1__PushChangesResponse *p;
    r.s.id = "5e2b1c4a-0d7e-4f3a-9b61-2c8d9e0f1a23";
    p = push1(T_DIST_FAR, "app-money", mid, SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT, &r.s, 0);
    assert_int_equal(p->results[0]->outcome,
                     SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED);
    assert_string_equal(p->results[0]->violations[0]->field, "sentra.figures[1].investment");
    sentra__v1__push_changes_response__free_unpacked(p, NULL);
    r.s.id = "";

    /* At the bound: stored, and summed exactly. */
    r.f[1].investment = MONEY_MAX;
    r.f[1].production_value = MONEY_MAX;
    r.f[1].material_value = MONEY_MAX;
    Sentra__V1__Sentra *s1 = create_as(T_DIST_FAR, &r, NULL, &st);
    assert_non_null(s1);
    rec_init(&r, "money max two");
    r.s.regency_code = "31.71";
    r.s.district_code = "";
    r.s.village_code = "";
    r.f[1].investment = MONEY_MAX;
    Sentra__V1__Sentra *s2 = create_as(T_DIST_FAR, &r, NULL, &st);
    assert_non_null(s2);
    Sentra__V1__GetStatisticsResponse *after = stats_as(T_DIST_FAR, NULL, 0, &st);
    assert_non_null(after);
    assert_int_equal(after->total->sentra, before->total->sentra + 2);
    assert_int_equal(after->total->investment, before->total->investment + 2 * MONEY_MAX);
    assert_int_equal(after->total->production_value,
                     before->total->production_value + MONEY_MAX + r.f[1].production_value);

    /* Every other writer meets the CHECK. */
    char state_[6], con[64];
    sql_fails(c, state_, con, sizeof con,
              "UPDATE sentra_figures SET material_value = %" PRId64 " WHERE sentra_id = '%s'",
              MONEY_MAX + 1, s1->id);
    assert_string_equal(state_, "23514");
    assert_string_equal(con, "sentra_figures_money_bound");
    sql_fails(c, state_, con, sizeof con,
              "INSERT INTO sentra_figures (sentra_id, year, investment) VALUES ('%s', 2021, %" PRId64 ")",
              s2->id, INT64_MAX);
    assert_string_equal(state_, "23514");
    assert_string_equal(con, "sentra_figures_money_bound");

    sentra__v1__get_statistics_response__free_unpacked(after, NULL);
    sentra__v1__get_statistics_response__free_unpacked(before, NULL);
    sentra__v1__sentra__free_unpacked(s1, NULL);
    sentra__v1__sentra__free_unpacked(s2, NULL);
    sentra_status_clear(&st);
}

/* Sums beyond what an int64 carries (only possible here with the bound
 * dropped, or with some 92,000 figures at the bound): the request that
 * meets them is OUT_OF_RANGE, every other one still answers. */
static void test_money_sum_beyond_int64(void **state)
{
    sentra_status_t st;
    sentra_status_init(&st);
    PGconn *c = db();
    char *a = new_record(T_DIST_FAR, "huge a", 1, "31.71");
    char *b = new_record(T_DIST_FAR, "huge b", 0, "31.71");

    sql_ok(c, "ALTER TABLE sentra_figures DROP CONSTRAINT sentra_figures_money_bound");
    sql_ok(c, "UPDATE sentra_figures SET investment = 6000000000000000000 WHERE sentra_id"
              " IN ('%s', '%s')", a, b);
    Sentra__V1__GetStatisticsResponse *r = stats_as(T_DIST_FAR, NULL, 0, &st);
    assert_null(r);
    assert_code(st, SENTRA__V1__CODE__OUT_OF_RANGE);
    assert_non_null(strstr(st.message, "investment"));
    /* grouped: the group that holds them fails the request the same way */
    r = stats_as(T_DIST_FAR, NULL, SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY, &st);
    assert_null(r);
    assert_code(st, SENTRA__V1__CODE__OUT_OF_RANGE);
    /* another province is not affected */
    r = stats_as(T_PROV, NULL, 0, &st);
    assert_non_null(r);
    sentra__v1__get_statistics_response__free_unpacked(r, NULL);
    /* each status's group carries its sum, the total of the groups does
     * not: still OUT_OF_RANGE (the server adds the groups up) */
    sql_ok(c, "UPDATE sentra_figures SET investment = 5000000000000000000 WHERE sentra_id"
              " IN ('%s', '%s')", a, b);
    r = stats_as(T_DIST_FAR, NULL, SENTRA__V1__GROUP_BY__GROUP_BY_STATUS, &st);
    assert_null(r);
    assert_code(st, SENTRA__V1__CODE__OUT_OF_RANGE);
    assert_non_null(strstr(st.message, "investment"));

    /* Put back as it was. */
    sql_ok(c, "UPDATE sentra_figures SET investment = 1 WHERE sentra_id IN ('%s', '%s')", a, b);
    sql_ok(c, "UPDATE sentra SET deleted_at = now() WHERE id IN ('%s', '%s')", a, b);
    sql_ok(c, "ALTER TABLE sentra_figures ADD CONSTRAINT sentra_figures_money_bound CHECK ("
              "investment <= 100000000000000 AND production_value <= 100000000000000"
              " AND material_value <= 100000000000000)");
    r = stats_as(T_DIST_FAR, NULL, 0, &st);
    assert_non_null(r);
    sentra__v1__get_statistics_response__free_unpacked(r, NULL);
    sentra_status_clear(&st);
    free(a);
    free(b);
}

/* ================================================================ item 10 */

/* The CHECK sentra_designated_decree refuses a designated (or revitalised)
 * record without decree number and date by itself: the row trigger that
 * checks the same rule first is disabled for the attempt. */
static void test_decree_check_itself(void **state)
{
    PGconn *c = db();
    char st[6], con[64];
    static const char *const cols =
        "(id, regency_code, name, kbli_code, kbli_version, sector_group, status,"
        " decree_number, decree_date)";

    /* with the triggers: the rule answers first (SE003) */
    sql_fails(c, st, NULL, 0, "INSERT INTO sentra %s VALUES (gen_random_uuid(), '18.71',"
              " 'Sentra Uji tanpa SK', '13912', 2020, 2, 2, NULL, NULL)", cols);
    assert_string_equal(st, "SE003");

    sql_ok(c, "BEGIN");
    sql_ok(c, "ALTER TABLE sentra DISABLE TRIGGER USER");
    /* the control: a designated record with its decree goes in */
    sql_ok(c, "INSERT INTO sentra %s VALUES (gen_random_uuid(), '18.71', 'Sentra Uji dengan SK',"
              " '13912', 2020, 2, 2, '1/SK/2020', '2020-01-01')", cols);
    sql_ok(c, "SAVEPOINT s");
    sql_fails(c, st, con, sizeof con, "INSERT INTO sentra %s VALUES (gen_random_uuid(), '18.71',"
              " 'Sentra Uji tanpa SK', '13912', 2020, 2, 2, NULL, NULL)", cols);
    assert_string_equal(st, "23514");
    assert_string_equal(con, "sentra_designated_decree");
    sql_ok(c, "ROLLBACK TO s");
    sql_fails(c, st, con, sizeof con, "INSERT INTO sentra %s VALUES (gen_random_uuid(), '18.71',"
              " 'Sentra Uji tanpa tanggal', '13912', 2020, 2, 3, '1/SK/2020', NULL)", cols);
    assert_string_equal(st, "23514");
    assert_string_equal(con, "sentra_designated_decree");
    sql_ok(c, "ROLLBACK");
}

/* KBLI main group 45 (motor vehicle trade, not manufacturing) is refused by
 * the server's own validation: with the database's CHECK dropped, nothing
 * else stands in the way. */
static void test_kbli_refused_by_server(void **state)
{
    PGconn *c = db();
    sentra_status_t st;
    sentra_status_init(&st);
    char *id = new_record(T_DIST, "kbli", 0, NULL);

    sql_ok(c, "ALTER TABLE sentra DROP CONSTRAINT sentra_kbli_code_check");
    /* the database now takes it */
    sql_ok(c, "BEGIN");
    sql_ok(c, "UPDATE sentra SET kbli_code = '45201' WHERE id = '%s'", id);
    sql_ok(c, "ROLLBACK");

    static const char *const codes[] = {"45201", "09900", "34000"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        rec_t r;
        rec_init(&r, "kbli outside manufacturing");
        r.s.kbli_code = (char *)codes[i];
        assert_null(create_as(T_DIST, &r, NULL, &st));
        assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
        assert_true(has_violation(&st, "kbli_code"));

        rec_t u;
        rec_init(&u, "kbli");
        u.s.id = id;
        u.s.kbli_code = (char *)codes[i];
        static const char *const mask[] = {"kbli_code"};
        assert_null(update_as(T_DIST, &u.s, mask, 1, 1, NULL, &st));
        assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
        assert_true(has_violation(&st, "kbli_code"));

        char mid[64];
        snprintf(mid, sizeof mid, "m-kbli-%s-%zu", fx.run, i);
        Sentra__V1__PushChangesResponse *p =
            push1(T_DIST, "app-kbli", mid, SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT, &u.s, 1);
        assert_int_equal(p->results[0]->outcome,
                         SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED);
        assert_string_equal(p->results[0]->violations[0]->field, "sentra.kbli_code");
        sentra__v1__push_changes_response__free_unpacked(p, NULL);
    }
    assert_int_equal(sql_ll(c, "SELECT count(*) FROM sentra WHERE kbli_code !~"
                               " '^(1[0-9]|2[0-9]|3[0-3])[0-9]{3}$'"), 0);
    sql_ok(c, "ALTER TABLE sentra ADD CONSTRAINT sentra_kbli_code_check"
              " CHECK (kbli_code ~ '^(1[0-9]|2[0-9]|3[0-3])[0-9]{3}$')");
    sentra_status_clear(&st);
    free(id);
}

/* A database rule the C checks miss (here a trigger standing in for a
 * CHECK added by hand) refuses a pushed mutation with a plain reason: the
 * constraint's name and PostgreSQL's words reach the server's log, never
 * the client (0011_apply_errors.sql); a unary update says as little. */
static void test_push_refusal_no_sql_text(void **state)
{
    PGconn *c = db();
    sentra_status_t st;
    sentra_status_init(&st);
    char *id = new_record(T_DIST, "hidden rule", 0, NULL);

    sql_ok(c, "CREATE FUNCTION t_hidden_rule() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
              " IF NEW.name LIKE '%%forbidden%%' THEN RAISE EXCEPTION"
              " 'new row for relation \"sentra\" violates check constraint \"secret_rule_xyz\"'"
              " USING ERRCODE = '23514', CONSTRAINT = 'secret_rule_xyz'; END IF;"
              " RETURN NEW; END $$");
    sql_ok(c, "CREATE TRIGGER t_hidden_rule BEFORE UPDATE ON sentra FOR EACH ROW"
              " EXECUTE FUNCTION t_hidden_rule()");

    rec_t u;
    rec_init(&u, "forbidden name");
    u.s.id = id;
    char mid[64];
    snprintf(mid, sizeof mid, "m-hidden-%s", fx.run);
    Sentra__V1__PushChangesResponse *p =
        push1(T_DIST, "app-hidden", mid, SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT, &u.s, 1);
    assert_int_equal(p->results[0]->outcome, SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_REJECTED);
    assert_true(p->results[0]->n_violations >= 1);
    for (size_t i = 0; i < p->results[0]->n_violations; i++) {
        const Sentra__V1__FieldViolation *v = p->results[0]->violations[i];
        if (strstr(v->description, "secret_rule_xyz") || strstr(v->description, "relation"))
            fail_msg("the push's violation shows PostgreSQL's text: %s: %s", v->field, v->description);
    }
    sentra__v1__push_changes_response__free_unpacked(p, NULL);

    static const char *const mask[] = {"name"};
    assert_null(update_as(T_DIST, &u.s, mask, 1, 1, NULL, &st));
    assert_code(st, SENTRA__V1__CODE__INVALID_ARGUMENT);
    assert_null(strstr(st.message ? st.message : "", "secret_rule_xyz"));

    sql_ok(c, "DROP TRIGGER t_hidden_rule ON sentra");
    sql_ok(c, "DROP FUNCTION t_hidden_rule()");
    assert_int_equal(sql_ll(c, "SELECT version FROM sentra WHERE id = '%s'", id), 1);
    sentra_status_clear(&st);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_race_figures_then_sector, close_conns),
        cmocka_unit_test_teardown(test_race_sector_then_figures, close_conns),
        cmocka_unit_test_teardown(test_race_writers, close_conns),
        cmocka_unit_test_teardown(test_hard_delete_reaches_pullers, close_conns),
        cmocka_unit_test_teardown(test_compaction_keeps_move, close_conns),
        cmocka_unit_test_teardown(test_replay_out_of_scope, close_conns),
        cmocka_unit_test_teardown(test_money_bounds, close_conns),
        cmocka_unit_test_teardown(test_money_sum_beyond_int64, close_conns),
        cmocka_unit_test_teardown(test_decree_check_itself, close_conns),
        cmocka_unit_test_teardown(test_kbli_refused_by_server, close_conns),
        cmocka_unit_test_teardown(test_push_refusal_no_sql_text, close_conns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
