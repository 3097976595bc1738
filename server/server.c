/*
 * server.c: listeners, signals and the graceful stop.
 *
 * Stopping (SIGTERM or SIGINT): the listeners close, every connection gets
 * a GOAWAY and closes once its calls are answered; after the grace period
 * whatever is left is cancelled and closed. Then the database pool closes
 * and uv_run() returns. A write is acknowledged only after its transaction
 * committed, so nothing acknowledged is lost on any of these paths.
 *
 * Also here: what the pool's notifications mean (token revocations, changes
 * for long polls, and probes that confirm that notifications arrive), and
 * giving freed memory back to the system.
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "call.h"
#include "conn.h"
#include "log.h"
#include "methods.h"
#include "reflection.h"
#include "replica.h"
#include "server.h"
#include "status.h"
#include "web.h"
#include "tls.h"

static void on_connection(uv_stream_t *listener, int status)
{
    server_t *srv = listener->data;
    if (status < 0) {
        log_warn("listen_error", "error=%s", uv_strerror(status));
        return;
    }
    conn_accept(srv, listener);
}

/* ---------------------------------------------------------------- notifications */

/*
 * A revocation committed while the pool's LISTEN is not in place (at start,
 * or between the loss of the listening connection and its LISTENs on the
 * new one) sends a NOTIFY nobody hears. So the token cache is trusted only
 * once this server has seen a NOTIFY of its own come back: the probe,
 * `SELECT pg_notify('sentra_token', 'probe <id> <epoch>')`, sent every
 * PROBE_MS through the pool until it arrives. Its arrival proves that the
 * LISTEN was active when it committed; the cache is cleared then (a lookup
 * answered earlier may predate it) and trusted from there on. Until then
 * every request looks its token up. Each "notifications lost" from the
 * pool (channel NULL, on a loss and, with pools that say so, once the
 * LISTENs are back) starts this again: treating both as a loss is always
 * safe.
 */
#define PROBE_MS 200

static db_stmt_t probe_stmt = { "SELECT pg_notify('sentra_token', $1)", 0, 0 };

static void on_probe_done(void *arg, int status, PGresult *res)
{
    server_t *srv = arg;
    (void)res;
    srv->probe_inflight = 0;
    if (status != DB_OK)
        log_debug("notify_probe_failed", "status=%d", status);
}

static void on_probe(uv_timer_t *t)
{
    server_t *srv = t->data;
    char payload[96];
    if (srv->stopping || srv->db == NULL || auth_cache_trusted(srv->auth)) {
        uv_timer_stop(&srv->probe);
        return;
    }
    if (srv->probe_inflight)
        return;
    snprintf(payload, sizeof(payload), "%s %" PRIu64, srv->probe_id, srv->probe_epoch);
    const char *v[1] = { payload };
    srv->probe_inflight = 1;
    db_query(srv->db, &probe_stmt, 1, v, on_probe_done, srv);
}

/* Notifications may have been missed: no caching until a probe is back. */
static void notifications_unsure(server_t *srv)
{
    if (auth_cache_trusted(srv->auth))
        log_info("token_cache_off", "reason=\"notifications lost; until one comes back\"");
    auth_cache_trust(srv->auth, 0);
    srv->probe_epoch++;
    if (!srv->stopping && srv->db != NULL)
        uv_timer_start(&srv->probe, on_probe, 0, PROBE_MS);
}

/* Whether payload is a probe of ours, of the current epoch. */
static int probe_ours(const server_t *srv, const char *payload)
{
    size_t n = strlen(srv->probe_id);
    return strncmp(payload, srv->probe_id, n) == 0 && payload[n] == ' ' &&
           strtoull(payload + n + 1, NULL, 10) == srv->probe_epoch;
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
    server_t *srv = arg;
    /* Whatever came (a change, a revoked token, notifications lost), what
     * was read before may be stale now (ETags, connect.c). */
    srv->generation++;
    if (channel == NULL) {
        /* Lost (or just re-established): long polls re-check, which is
         * always safe, and tokens are looked up until a probe is back. */
        notifications_unsure(srv);
        sentra__call_wake_all(srv, NULL);
        return;
    }
    if (strcmp(channel, "sentra_change") == 0) {
        log_debug("notify_change", "regencies=%s", payload ? payload : "-");
        sentra__call_wake_all(srv, payload);
        return;
    }
    if (payload != NULL && strncmp(payload, "probe ", 6) == 0) {
        /* Nothing was revoked: another server's probe, or ours. */
        if (!auth_cache_trusted(srv->auth) && probe_ours(srv, payload)) {
            auth_cache_clear(srv->auth);
            auth_cache_trust(srv->auth, 1);
            uv_timer_stop(&srv->probe);
            log_info("token_cache_on", "reason=\"notifications confirmed\"");
            /* A change committed while notifications were out may not
             * have woken anyone. */
            sentra__call_wake_all(srv, NULL);
        }
        return;
    }
    /* A token was revoked (or something unknown was said on the channel):
     * forget every cached token; the next requests look them up again. */
    auth_cache_clear(srv->auth);
    log_info("token_revoked", "channel=%s token=%s", channel, payload ? payload : "-");
}

/* ---------------------------------------------------------------- memory */

/*
 * glibc raises its mmap threshold each time it frees a large mmap'ed block
 * (up to 32 MiB), after which large buffers come from the heap and stay
 * there: after hostile traffic (huge frames), the heap kept hundreds of MB.
 * A fixed threshold keeps large buffers mmap'ed (given back when freed);
 * what many small allocations leave in the heap (decoded messages, query
 * results) is given back by malloc_trim once enough was freed.
 */
#define MMAP_THRESHOLD (128 * 1024)
#define TRIM_AFTER ((size_t)8 << 20)    /* freed since the last trim */
#define MEM_TICK_MS 1000

static void on_mem_tick(uv_timer_t *t)
{
    server_t *srv = t->data;
    if (srv->mem_freed < TRIM_AFTER)
        return;
    srv->mem_freed = 0;
    malloc_trim(0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    server_t *srv = h->data;
    log_info("signal", "signal=%d", signum);
    if (srv->stopping) {
        if (signum == SIGINT)
            log_info("signal_again", "still stopping; waiting for calls in flight");
        return;
    }
    server_stop(srv);
}

/* SIGHUP: new certificate files (a renewal) for new connections; open
 * connections are left alone. */
static void on_sighup(uv_signal_t *h, int signum)
{
    server_t *srv = h->data;
    (void)signum;
    if (srv->tls == NULL) {
        log_info("signal", "signal=%d action=none reason=\"no --tls-cert to reload\"", signum);
        return;
    }
    log_info("signal", "signal=%d action=tls_reload", signum);
    tls_server_reload(srv->tls);
}

static void finish_stop(server_t *srv)
{
    if (srv->conns != NULL || srv->db == NULL)
        return;
    log_info("server_stopped", "requests=%llu", (unsigned long long)srv->requests);
    uv_timer_stop(&srv->grace);
    uv_close((uv_handle_t *)&srv->grace, NULL);
    uv_close((uv_handle_t *)&srv->probe, NULL);
    uv_close((uv_handle_t *)&srv->mem_timer, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sighup, NULL);
    tls_server_free(srv->tls);  /* the last connection, and its session, are gone */
    srv->tls = NULL;
    if (srv->replica != NULL) {
        replica_close(srv->replica);    /* before the primary: it borrows it */
        srv->replica = NULL;
    }
    db_pool_close(srv->db);
    srv->db = NULL;
    h_sync_shutdown();          /* the pool has answered every read-ahead */
    reflection_free(srv);
}

void server_conn_gone(server_t *srv, struct conn *c)
{
    sentra__conn_unlink(srv, c);
    if (srv->stopping)
        finish_stop(srv);
}

static void on_grace(uv_timer_t *t)
{
    server_t *srv = t->data;
    log_warn("grace_expired", "conns=%d", srv->nconns);
    for (struct conn *c = srv->conns; c != NULL;) {
        struct conn *next = sentra__conn_next(c);
        conn_close(c);
        c = next;
    }
}

void server_stop(server_t *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    log_info("server_stopping", "conns=%d grace_ms=%d", srv->nconns, srv->cfg->grace_ms);
    if (srv->tcp_open) {
        uv_close((uv_handle_t *)&srv->tcp, NULL);
        srv->tcp_open = 0;
    }
    if (srv->unix_open) {
        uv_close((uv_handle_t *)&srv->unix_sock, NULL);
        srv->unix_open = 0;
    }
    for (struct conn *c = srv->conns; c != NULL;) {
        struct conn *next = sentra__conn_next(c);
        conn_drain(c, SENTRA_UNAVAILABLE, "server shutting down");
        c = next;
    }
    /* Long polls answer now (with what they have) instead of holding the
     * stop for their whole wait. */
    sentra__call_wake_all(srv, NULL);
    uv_timer_start(&srv->grace, on_grace, (uint64_t)srv->cfg->grace_ms, 0);
    finish_stop(srv);
}

static int listen_tcp(server_t *srv)
{
    const config_t *cfg = srv->cfg;
    struct sockaddr_storage addr;
    int r;
    if (strchr(cfg->listen_host, ':') != NULL)
        r = uv_ip6_addr(cfg->listen_host, cfg->port, (struct sockaddr_in6 *)&addr);
    else
        r = uv_ip4_addr(cfg->listen_host, cfg->port, (struct sockaddr_in *)&addr);
    if (r != 0) {
        log_error("listen_failed", "host=%s error=\"bad address\"", cfg->listen_host);
        return r;
    }
    uv_tcp_init(srv->loop, &srv->tcp);
    srv->tcp.data = srv;
    srv->tcp_open = 1;
    if ((r = uv_tcp_bind(&srv->tcp, (struct sockaddr *)&addr, 0)) != 0 ||
        (r = uv_listen((uv_stream_t *)&srv->tcp, 1024, on_connection)) != 0) {
        log_error("listen_failed", "host=%s port=%d error=\"%s\"", cfg->listen_host, cfg->port,
                  uv_strerror(r));
        return r;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&bound, &len);
    srv->bound_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                         : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

static int listen_unix(server_t *srv)
{
    const char *path = srv->cfg->unix_path;
    int r;
    unlink(path);
    uv_pipe_init(srv->loop, &srv->unix_sock, 0);
    srv->unix_sock.data = srv;
    srv->unix_open = 1;
    if ((r = uv_pipe_bind(&srv->unix_sock, path)) != 0 ||
        (r = uv_listen((uv_stream_t *)&srv->unix_sock, 1024, on_connection)) != 0) {
        log_error("listen_failed", "unix=%s error=\"%s\"", path, uv_strerror(r));
        return r;
    }
    return 0;
}

/* Raises the open-file limit towards what max_connections needs (as Redis
 * does for maxclients): the soft limit is often 1024, the hard one higher. */
static void raise_fd_limit(const config_t *cfg)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->max_connections + (rlim_t)cfg->db_pool_size + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        log_warn("fd_limit_low", "max_connections=%d open_files=%llu wanted=%llu "
                 "hint=\"raise the hard limit (ulimit -Hn) or lower --max-connections\"",
                 cfg->max_connections, (unsigned long long)rl.rlim_cur, (unsigned long long)want);
    else
        log_info("fd_limit_raised", "from=%llu to=%llu", (unsigned long long)old,
                 (unsigned long long)rl.rlim_cur);
}

int server_start(server_t *srv, uv_loop_t *loop, config_t *cfg, const char *conninfo)
{
    int r;
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->cfg = cfg;
    if (getrandom(&srv->instance, sizeof(srv->instance), 0) != (ssize_t)sizeof(srv->instance))
        srv->instance = (uint64_t)getpid() << 32 ^ uv_hrtime();
    raise_fd_limit(cfg);
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    srv->auth = auth_cache_new();
    db_pool_opts_t po;
    db_pool_opts_init(&po);
    po.size = cfg->db_pool_size;
    po.depth = cfg->db_pipeline_depth;
    po.max_prepared = cfg->db_prepared_max;
    po.max_queued = cfg->db_queue_max;
    po.max_queued_bytes = (size_t)cfg->db_queue_bytes;
    po.statement_timeout_ms = cfg->db_statement_timeout_ms;
    po.connect_timeout_ms = cfg->db_connect_timeout_ms;
    po.stall_timeout_ms = cfg->db_stall_timeout_ms;
    srv->db = db_pool_new_opts(loop, conninfo, &po);
    if (srv->auth == NULL || srv->db == NULL)
        return UV_ENOMEM;
    if (cfg->db_read_url != NULL && cfg->db_read_url[0]) {
        srv->replica = replica_new(loop, srv->db, cfg->db_read_url, &po,
                                   cfg->db_read_max_lag_ms, cfg->db_read_wait_ms);
        if (srv->replica == NULL)
            return UV_ENOMEM;
        log_info("db_read", "max_lag_ms=%d wait_ms=%d", cfg->db_read_max_lag_ms,
                 cfg->db_read_wait_ms);
    }
    static const char *const channels[] = { "sentra_token", "sentra_change" };
    db_pool_listen(srv->db, channels, 2, on_notify, srv);

    uint64_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd = uv_hrtime();
    snprintf(srv->probe_id, sizeof(srv->probe_id), "probe %d-%016" PRIx64, (int)getpid(), rnd);
    uv_timer_init(loop, &srv->probe);
    srv->probe.data = srv;
    notifications_unsure(srv);          /* the LISTEN is not in place yet */
    uv_timer_init(loop, &srv->mem_timer);
    srv->mem_timer.data = srv;
    uv_timer_start(&srv->mem_timer, on_mem_tick, MEM_TICK_MS, MEM_TICK_MS);
    uv_unref((uv_handle_t *)&srv->mem_timer);

    uv_timer_init(loop, &srv->grace);
    srv->grace.data = srv;
    uv_signal_init(loop, &srv->sigterm);
    uv_signal_init(loop, &srv->sigint);
    uv_signal_init(loop, &srv->sighup);
    srv->sigterm.data = srv->sigint.data = srv->sighup.data = srv;
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_start(&srv->sighup, on_sighup, SIGHUP);
    signal(SIGPIPE, SIG_IGN);

    if (cfg->web_root != NULL && cfg->web_root[0]) {
        struct stat st;
        char err[512];
        if (stat(cfg->web_root, &st) != 0) {
            log_warn("web_root_missing", "dir=%s hint=\"no static files are served; see --web-root\"",
                     cfg->web_root);
        } else if ((srv->web = web_load(cfg->web_root, err, sizeof(err))) == NULL) {
            log_error("web_root_unusable", "dir=%s error=\"%s\"", cfg->web_root, err);
            return UV_EINVAL;
        } else {
            log_info("web_root", "dir=%s files=%zu bytes=%zu", cfg->web_root, srv->web->n, srv->web->bytes);
        }
    }
    if (cfg->tls_cert != NULL && cfg->tls_cert[0] && (srv->tls = tls_server_new(cfg)) == NULL)
        return UV_EINVAL;   /* logged */
    if ((r = listen_tcp(srv)) != 0)
        return r;
    if (cfg->unix_path != NULL && cfg->unix_path[0] && (r = listen_unix(srv)) != 0)
        return r;
    log_info("listening", "host=%s port=%d unix=%s max_frame=%u max_conns=%d tls=\"%s\"",
             cfg->listen_host, srv->bound_port, cfg->unix_path ? cfg->unix_path : "-",
             cfg->max_frame, cfg->max_connections,
             srv->tls == NULL ? "off" : !cfg->tls_only ? "on (plaintext too)"
                                : tls_server_verifies_clients(srv->tls) ? "required, with client certificates"
                                                                        : "required");
    if (cfg->port_file != NULL) {
        char tmp[1024];
        snprintf(tmp, sizeof(tmp), "%s.tmp", cfg->port_file);
        FILE *f = fopen(tmp, "w");
        if (f != NULL) {
            fprintf(f, "%d\n", srv->bound_port);
            fclose(f);
            rename(tmp, cfg->port_file);
        }
    }
    return 0;
}
