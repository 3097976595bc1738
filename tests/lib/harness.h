/*
 * harness.h: helpers for integration tests: a fresh database in the test
 * cluster, a sentrad of one's own on a free port, tokens, raw sockets,
 * and PostgreSQL outages.
 *
 * Linked into every test program, unit tests too, so it uses only libc,
 * POSIX and libpq (no cmocka). It reads the environment that
 * scripts/run-tests.sh sets: SENTRA_TEST_PGDIR (the test cluster),
 * SENTRA_TEST_SCRIPTS (scripts/), SENTRAD, SENTRA_TEST_TMP (scratch; logs
 * and port files go there, else /tmp), SENTRA_TEST_PIDS (a file the
 * harness appends each server pid to, so run-tests.sh can kill strays).
 *
 * Functions returning int give 0 on success and -1 after printing the
 * reason to stderr, unless said otherwise.
 */
#ifndef SENTRA_TEST_HARNESS_H
#define SENTRA_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

typedef struct th_server {
    char host[64];          /* "127.0.0.1" */
    int port;               /* bound TCP port; 0 when not running */
    pid_t pid;              /* sentrad's pid; 0 when not running */
    char db_conninfo[512];  /* conninfo of the server's own database */
    char dbname[64];        /* that database's name */
    char admin_token[128];  /* unused by the harness; for the test's own use */
    char logpath[256];      /* sentrad's stdout and stderr (appended) */
    char portpath[256];     /* the --port-file */
    char *extra[32];        /* extra arguments of th_server_start, copied */
} th_server_t;

/* Whether the environment of run-tests.sh is present (SENTRA_TEST_PGDIR,
 * SENTRA_TEST_SCRIPTS, SENTRAD). Integration tests may skip without it. */
int th_env_ok(void);

/* (Re)creates database NAME (lower-case letters, digits, _) in the test
 * cluster, empty, owned by sentra; writes its conninfo to out. */
int th_createdb(const char *name, char *out, size_t outlen);

/* Creates a fresh database NAME in the test cluster (scripts/pgcluster.sh
 * createdb), starts SENTRAD with --db <conninfo> --host 127.0.0.1 --port 0
 * --port-file <tmpfile> --enable-debug plus extra_args (NULL-terminated,
 * may be NULL; copied), and waits (up to 30 s) until the port file appears
 * and the port accepts connections. Server output goes to logpath; on
 * failure its last lines are printed. Migrations apply at start, as sentrad
 * does unless --no-migrate is among extra_args. */
int th_server_start(th_server_t *s, const char *name, const char *const *extra_args);

/* SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status (0..255),
 * 128+signal if it died of a signal, or -1 if it was not running. Frees the
 * copied extra args only in th_server_free. */
int th_server_stop(th_server_t *s);

/* Sends sig and reaps the process (waiting as long as it takes; use SIGKILL
 * for a crash). */
void th_server_kill(th_server_t *s, int sig);

/* Starts the server again on the same database with the same extra args
 * (the port may change). The previous process must have been stopped. */
int th_server_restart(th_server_t *s);

/* Stops the server if it runs and frees what th_server_start copied. */
void th_server_free(th_server_t *s);

/* Runs `SENTRAD token create --db <conninfo> --role ROLE [--region CODE]
 * --label test` and returns the secret it prints on stdout (malloc'd, the
 * caller frees), or NULL. region may be NULL. */
char *th_token(th_server_t *s, const char *role, const char *region);

/* Writes a fresh token secret of the server's shape ("snt_" and 52
 * lower-case base32 characters, from /dev/urandom) into out, which holds
 * at least 57 bytes: for tests that insert tokens straight into api_token
 * (the server refuses any other shape without a lookup). Returns out. */
char *th_token_secret(char *out);

/* A blocking libpq connection to the server's database (caller PQfinish-es
 * it), or NULL. */
PGconn *th_db(th_server_t *s);

/* Stops / starts the whole test cluster (outage tests). Every database in
 * it goes down: restart it before the test ends. */
int th_pg_stop(void);
int th_pg_start(void);

/* A plain blocking TCP socket connected to the server, or -1. */
int th_connect_raw(th_server_t *s);

/* Milliseconds on the monotonic clock. */
int64_t th_now_ms(void);

/* Writes all of buf to fd; returns 0, or -1 when the peer has gone (which
 * abuse tests allow: the server may close on them mid-write). */
int th_send_all(int fd, const void *buf, size_t len);

/* Reads exactly len bytes before deadline (th_now_ms() clock). Returns 1,
 * 0 on EOF or reset, -1 on timeout. */
int th_read_full(int fd, uint8_t *buf, size_t len, int64_t deadline);

/* Runs argv (argv[0] a path) with stdin from /dev/null, collects at most
 * outlen-1 bytes of its stdout into out (NUL-terminated, trailing newline
 * removed); stderr passes through. Returns the exit status, 128+signal, or
 * -1 if it could not run. */
int th_run(const char *const *argv, char *out, size_t outlen);

#endif
