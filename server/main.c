/*
 * main.c: sentrad's entry point: settings, subcommands, and the serve loop.
 *
 * Where things are: a request enters in transport/conn.c (on_read, which
 * hands the bytes to the connection's protocol: transport/native.c's
 * on_request), becomes a call in core/call.c (call_start), reaches its
 * handler through the table in core/methods.c, meets PostgreSQL through
 * db/db.c (call_query), and its reply leaves through call_reply -> the
 * transport's sink -> conn_write.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "migrate.h"
#include "server.h"
#include "token_cli.h"
#include "version.h"
#include "web.h"

/* The directory holding the sentrad binary's parent (the source tree when
 * run from bin/), for finding scripts/ and migrations/. */
static void tree_dir(char *out, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        snprintf(out, len, ".");
        return;
    }
    exe[n] = '\0';
    char *dir = dirname(exe);   /* .../bin */
    snprintf(out, len, "%s/..", dir);
}

/* The conninfo to use: --db, or the private cluster, started if needed by
 * scripts/pgcluster.sh. Returns a malloc'd string or NULL (reported). */
static char *resolve_db(const config_t *cfg)
{
    if (cfg->db_url != NULL && cfg->db_url[0])
        return strdup(cfg->db_url);

    char tree[PATH_MAX], script[PATH_MAX + 64], cmd[3 * PATH_MAX];
    tree_dir(tree, sizeof(tree));
    snprintf(script, sizeof(script), "%s/scripts/pgcluster.sh", tree);
    if (access(script, X_OK) != 0) {
        fprintf(stderr, "sentrad: no database given (--db or SENTRA_DB_URL) and no private "
                        "cluster script at %s\n", script);
        return NULL;
    }
    char var[PATH_MAX];
    if (realpath(cfg->data_dir, var) == NULL) {
        if (mkdir(cfg->data_dir, 0755) != 0 || realpath(cfg->data_dir, var) == NULL) {
            fprintf(stderr, "sentrad: cannot use state directory %s\n", cfg->data_dir);
            return NULL;
        }
    }
    snprintf(cmd, sizeof(cmd), "'%s' ensure '%s/pg'", script, var);
    log_info("private_cluster", "dir=%s/pg", var);
    FILE *p = popen(cmd, "r");
    if (p == NULL) {
        perror("sentrad: popen");
        return NULL;
    }
    char line[1024] = "";
    if (fgets(line, sizeof(line), p) == NULL)
        line[0] = '\0';
    int rc = pclose(p);
    line[strcspn(line, "\n")] = '\0';
    if (rc != 0 || line[0] == '\0') {
        fprintf(stderr, "sentrad: could not start the private PostgreSQL cluster (%s)\n", cmd);
        return NULL;
    }
    return strdup(line);
}

static PGconn *connect_blocking(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "sentrad: cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, NULL, NULL);
    return conn;
}

static const char *migrations_dir(const config_t *cfg, char *buf, size_t len)
{
    if (cfg->migrations_dir != NULL)
        return cfg->migrations_dir;
    char tree[PATH_MAX];
    tree_dir(tree, sizeof(tree));
    snprintf(buf, len, "%s/migrations", tree);
    return buf;
}

/* Applies pending migrations (or, with apply 0, only checks that the schema
 * is not newer than this binary). Returns 0 or -1. */
static int run_migrations(const config_t *cfg, const char *conninfo, int apply)
{
    char dirbuf[PATH_MAX + 16], err[1024];
    const char *dir = migrations_dir(cfg, dirbuf, sizeof(dirbuf));
    PGconn *conn = connect_blocking(conninfo);
    if (conn == NULL)
        return -1;
    int n = migrate_run(conn, dir, !apply, err, sizeof(err));
    PQfinish(conn);
    if (n < 0) {
        fprintf(stderr, "sentrad: migrations: %s\n", err);
        return -1;
    }
    if (apply && n > 0)
        log_info("migrations_applied", "count=%d dir=%s", n, dir);
    return 0;
}

static int cmd_serve(config_t *cfg, const char *conninfo)
{
    if (run_migrations(cfg, conninfo, cfg->migrate) != 0)
        return 1;

    if (cfg->web_root == NULL) {
        char tree[PATH_MAX], web[PATH_MAX + 8];
        tree_dir(tree, sizeof(tree));
        snprintf(web, sizeof(web), "%s/web", tree);
        cfg->web_root = strdup(web);
    }
    uv_loop_t *loop = uv_default_loop();
    server_t srv;
    if (server_start(&srv, loop, cfg, conninfo) != 0) {
        /* Let the handles that were opened close. */
        server_stop(&srv);
        uv_run(loop, UV_RUN_DEFAULT);
        return 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    auth_cache_free(srv.auth);
    web_free(srv.web);
    uv_loop_close(loop);
    return 0;
}

static int cmd_migrate(config_t *cfg, const char *conninfo, int argc, char **argv)
{
    char dirbuf[PATH_MAX + 16], err[1024];
    const char *dir = migrations_dir(cfg, dirbuf, sizeof(dirbuf));
    int dry = argc > 1 && strcmp(argv[1], "--dry-run") == 0;
    int status = argc > 1 && strcmp(argv[1], "status") == 0;
    if (argc > 1 && !dry && !status) {
        fprintf(stderr, "usage: sentrad migrate [--dry-run | status]\n");
        return 2;
    }
    PGconn *conn = connect_blocking(conninfo);
    if (conn == NULL)
        return 1;
    int n = status ? migrate_status(conn, dir, stdout, err, sizeof(err))
                   : migrate_run(conn, dir, dry, err, sizeof(err));
    PQfinish(conn);
    if (n < 0) {
        fprintf(stderr, "sentrad: migrations: %s\n", err);
        return 1;
    }
    if (!status)
        printf("%d migration%s %s\n", n, n == 1 ? "" : "s", dry ? "pending" : "applied");
    return 0;
}

int main(int argc, char **argv)
{
    config_t cfg;
    int nrest = 0;
    if (config_load(&cfg, argc, argv, &nrest) != 0) {
        config_free(&cfg);  /* what was set before the refused setting */
        return 2;
    }
    if (log_set_level(cfg.log_level) != 0) {
        fprintf(stderr, "sentrad: unknown log level \"%s\"\n", cfg.log_level);
        config_free(&cfg);
        return 2;
    }
    const char *cmd = nrest > 0 ? argv[1] : "serve";
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        config_usage(argv[0]);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("sentrad %s\n", SENTRA_VERSION);
        return 0;
    }
    int sub_argc = nrest > 0 ? nrest : 1;
    char **sub_argv = argv + 1;
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0 && strcmp(cmd, "token") != 0 &&
        strcmp(cmd, "db-url") != 0) {
        fprintf(stderr, "sentrad: unknown command or option \"%s\" (see sentrad --help)\n", cmd);
        return 2;
    }
    if (strcmp(cmd, "serve") == 0 && sub_argc > 1) {
        if (strcmp(sub_argv[1], "--help") == 0) {
            config_usage(argv[0]);
            return 0;
        }
        fprintf(stderr, "sentrad: unknown option \"%s\" (see sentrad --help)\n", sub_argv[1]);
        return 2;
    }

    char *conninfo = resolve_db(&cfg);
    if (conninfo == NULL)
        return 1;
    int rc;
    if (strcmp(cmd, "migrate") == 0)
        rc = cmd_migrate(&cfg, conninfo, sub_argc, sub_argv);
    else if (strcmp(cmd, "token") == 0)
        rc = token_cli_main(conninfo, sub_argc, sub_argv);
    else if (strcmp(cmd, "db-url") == 0) {
        printf("%s\n", conninfo);
        rc = 0;
    } else
        rc = cmd_serve(&cfg, conninfo);
    free(conninfo);
    config_free(&cfg);
    return rc;
}
