/*
 * harness.c: the integration-test helpers declared in harness.h: databases
 * in the throwaway cluster of run-tests.sh, sentrad processes of the tests'
 * own, tokens, raw sockets and cluster outages.
 *
 * Everything here blocks; tests are sequential programs. Children are
 * started with fork/execv (never a shell), so conninfo strings with spaces
 * and quotes pass through untouched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* ---------------------------------------------------------------- helpers */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] ? v : NULL;
}

static const char *tmpdir(void)
{
    const char *t = env("SENTRA_TEST_TMP");
    return t ? t : "/tmp";
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int wait_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Prints the last lines of a log, to show why a server went away. */
static void print_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char buf[4096];
    if (fseek(f, 0, SEEK_END) == 0) {
        long end = ftell(f);
        fseek(f, end > (long)sizeof(buf) - 1 ? end - (long)sizeof(buf) + 1 : 0, SEEK_SET);
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    fprintf(stderr, "--- last output of %s:\n%s\n---\n", path, buf);
}

int th_env_ok(void)
{
    return env("SENTRA_TEST_PGDIR") && env("SENTRA_TEST_SCRIPTS") && env("SENTRAD");
}

static int need_env(void)
{
    if (th_env_ok())
        return 0;
    fprintf(stderr, "harness: SENTRA_TEST_PGDIR, SENTRA_TEST_SCRIPTS and SENTRAD are not set; "
                    "run the tests with `make test` (scripts/run-tests.sh)\n");
    return -1;
}

int th_run(const char *const *argv, char *out, size_t outlen)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("harness: pipe");
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("harness: fork");
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    char sink[512];
    for (;;) {
        char *dst = sink;
        size_t room = sizeof(sink);
        if (out != NULL && len + 1 < outlen) {
            dst = out + len;
            room = outlen - 1 - len;
        }
        ssize_t n = read(fds[0], dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (dst != sink)
            len += (size_t)n;
    }
    close(fds[0]);
    if (out != NULL && outlen > 0) {
        out[len] = '\0';
        while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
            out[--len] = '\0';
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return wait_status(st);
}

static int pgcluster(const char *cmd, const char *arg, char *out, size_t outlen)
{
    if (need_env() != 0)
        return -1;
    char script[512];
    snprintf(script, sizeof(script), "%s/pgcluster.sh", env("SENTRA_TEST_SCRIPTS"));
    const char *argv[] = { script, cmd, env("SENTRA_TEST_PGDIR"), arg, NULL };
    int rc = th_run(argv, out, outlen);
    if (rc != 0) {
        fprintf(stderr, "harness: pgcluster.sh %s %s failed (status %d)\n", cmd,
                arg ? arg : "", rc);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- databases */

int th_createdb(const char *name, char *out, size_t outlen)
{
    char buf[512];
    if (pgcluster("createdb", name, buf, sizeof(buf)) != 0)
        return -1;
    if (strncmp(buf, "host=", 5) != 0) {
        fprintf(stderr, "harness: createdb %s printed no conninfo: \"%s\"\n", name, buf);
        return -1;
    }
    snprintf(out, outlen, "%s", buf);
    return 0;
}

int th_pg_stop(void)
{
    return pgcluster("stop", NULL, NULL, 0);
}

int th_pg_start(void)
{
    return pgcluster("start", NULL, NULL, 0);
}

PGconn *th_db(th_server_t *s)
{
    PGconn *c = PQconnectdb(s->db_conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "harness: cannot connect to %s: %s", s->db_conninfo,
                PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------------------- servers */

static int try_connect(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int read_port(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int port = 0;
    if (fscanf(f, "%d", &port) != 1)
        port = 0;
    fclose(f);
    return port > 0 && port < 65536 ? port : 0;
}

static void record_pid(pid_t pid)
{
    const char *p = env("SENTRA_TEST_PIDS");
    if (p == NULL)
        return;
    FILE *f = fopen(p, "a");
    if (f != NULL) {
        fprintf(f, "%ld\n", (long)pid);
        fclose(f);
    }
}

/* Starts sentrad for s (conninfo, paths and extra args already set). */
static int spawn(th_server_t *s)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = env("SENTRAD");
    argv[n++] = "--db";
    argv[n++] = s->db_conninfo;
    argv[n++] = "--host";
    argv[n++] = s->host;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--port-file";
    argv[n++] = s->portpath;
    argv[n++] = "--enable-debug";
    for (int i = 0; s->extra[i] != NULL && n < 63; i++)
        argv[n++] = s->extra[i];
    argv[n] = NULL;

    unlink(s->portpath);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("harness: fork");
        return -1;
    }
    if (pid == 0) {
        int log = open(s->logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        if (log >= 0) {
            dup2(log, 1);
            dup2(log, 2);
        }
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    s->port = 0;
    record_pid(pid);

    double deadline = now_s() + 30.0;
    while (now_s() < deadline) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "harness: sentrad (%s) exited during start-up with status %d\n",
                    s->dbname, wait_status(st));
            print_tail(s->logpath);
            s->pid = 0;
            return -1;
        }
        int port = read_port(s->portpath);
        if (port > 0) {
            int fd = try_connect(s->host, port);
            if (fd >= 0) {
                close(fd);
                s->port = port;
                return 0;
            }
        }
        sleep_ms(20);
    }
    fprintf(stderr, "harness: sentrad (%s) did not listen within 30 s\n", s->dbname);
    print_tail(s->logpath);
    th_server_kill(s, SIGKILL);
    return -1;
}

int th_server_start(th_server_t *s, const char *name, const char *const *extra_args)
{
    memset(s, 0, sizeof(*s));
    if (need_env() != 0)
        return -1;
    if (strlen(name) >= sizeof(s->dbname)) {
        fprintf(stderr, "harness: database name too long: %s\n", name);
        return -1;
    }
    snprintf(s->dbname, sizeof(s->dbname), "%s", name);
    snprintf(s->host, sizeof(s->host), "127.0.0.1");
    snprintf(s->logpath, sizeof(s->logpath), "%s/%s.server.log", tmpdir(), name);
    snprintf(s->portpath, sizeof(s->portpath), "%s/%s.%ld.port", tmpdir(), name,
             (long)getpid());
    int n = 0;
    for (; extra_args != NULL && extra_args[n] != NULL; n++) {
        if (n >= (int)(sizeof(s->extra) / sizeof(s->extra[0])) - 1) {
            fprintf(stderr, "harness: too many extra arguments\n");
            th_server_free(s);
            return -1;
        }
        s->extra[n] = strdup(extra_args[n]);
    }
    s->extra[n] = NULL;
    if (th_createdb(name, s->db_conninfo, sizeof(s->db_conninfo)) != 0)
        return -1;
    return spawn(s);
}

int th_server_restart(th_server_t *s)
{
    if (s->pid > 0) {
        fprintf(stderr, "harness: restart of a running server (pid %ld); stop it first\n",
                (long)s->pid);
        return -1;
    }
    return spawn(s);
}

int th_server_stop(th_server_t *s)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    double deadline = now_s() + 10.0;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid)
            break;
        if (r < 0 && errno != EINTR) {
            s->pid = 0;
            s->port = 0;
            return -1;
        }
        if (now_s() >= deadline) {
            fprintf(stderr, "harness: sentrad (%s) ignored SIGTERM for 10 s; killing it\n",
                    s->dbname);
            kill(s->pid, SIGKILL);
            while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        sleep_ms(10);
    }
    s->pid = 0;
    s->port = 0;
    return wait_status(st);
}

void th_server_kill(th_server_t *s, int sig)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, sig);
    int st;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
        ;
    s->pid = 0;
    s->port = 0;
}

void th_server_free(th_server_t *s)
{
    if (s->pid > 0)
        th_server_stop(s);
    for (size_t i = 0; i < sizeof(s->extra) / sizeof(s->extra[0]); i++) {
        free(s->extra[i]);
        s->extra[i] = NULL;
    }
}

/* ---------------------------------------------------------------- clients */

char *th_token(th_server_t *s, const char *role, const char *region)
{
    if (need_env() != 0)
        return NULL;
    const char *argv[16];
    int n = 0;
    argv[n++] = env("SENTRAD");
    argv[n++] = "token";
    argv[n++] = "create";
    argv[n++] = "--db";
    argv[n++] = s->db_conninfo;
    argv[n++] = "--role";
    argv[n++] = role;
    if (region != NULL) {
        argv[n++] = "--region";
        argv[n++] = region;
    }
    argv[n++] = "--label";
    argv[n++] = "test";
    argv[n] = NULL;
    char out[512];
    int rc = th_run(argv, out, sizeof(out));
    if (rc != 0 || out[0] == '\0' || strchr(out, '\n') != NULL) {
        fprintf(stderr, "harness: token create --role %s%s%s failed (status %d, output \"%s\")\n",
                role, region ? " --region " : "", region ? region : "", rc, out);
        return NULL;
    }
    return strdup(out);
}

int th_connect_raw(th_server_t *s)
{
    if (s->port <= 0) {
        fprintf(stderr, "harness: th_connect_raw: the server is not running\n");
        return -1;
    }
    int fd = try_connect(s->host, s->port);
    if (fd < 0)
        fprintf(stderr, "harness: cannot connect to %s:%d: %s\n", s->host, s->port,
                strerror(errno));
    return fd;
}

/* ---------------------------------------------------------------- raw sockets */

char *th_token_secret(char *out)
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char r[52];
    int fd = open("/dev/urandom", O_RDONLY);
    size_t got = 0;

    while (fd >= 0 && got < sizeof r) {
        ssize_t n = read(fd, r + got, sizeof r - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (fd >= 0)
        close(fd);
    for (; got < sizeof r; got++)       /* no /dev/urandom: still unique enough */
        r[got] = (unsigned char)random();
    memcpy(out, "snt_", 4);
    for (size_t i = 0; i < sizeof r; i++)
        out[4 + i] = b32[r[i] & 31];
    out[56] = '\0';
    return out;
}

int64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int th_send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int th_read_full(int fd, uint8_t *buf, size_t len, int64_t deadline)
{
    size_t got = 0;
    while (got < len) {
        int left = (int)(deadline - th_now_ms());
        if (left <= 0)
            return -1;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -1;
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        got += (size_t)n;
    }
    return 1;
}
