/*
 * config.c: every server setting, defined once in the table below, read
 * from defaults, an optional file, the environment and flags.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

enum opt_type { OPT_STR, OPT_INT, OPT_BOOL, OPT_NOBOOL };

struct opt {
    const char *name;      /* flag without "--", and the config file key */
    const char *env;       /* environment variable, or NULL */
    enum opt_type type;
    size_t offset;         /* into config_t */
    const char *def;       /* default, as text; NULL for none */
    long min, max;         /* OPT_INT range */
    const char *help;
};

#define F(field) offsetof(config_t, field)

static const struct opt opts[] = {
    { "host", "SENTRA_HOST", OPT_STR, F(listen_host), "127.0.0.1", 0, 0, "address to listen on" },
    { "port", "SENTRA_PORT", OPT_INT, F(port), "7600", 0, 65535, "TCP port (0: any free port)" },
    { "unix", "SENTRA_UNIX", OPT_STR, F(unix_path), NULL, 0, 0, "also listen on this Unix socket path" },
    { "db", "SENTRA_DB_URL", OPT_STR, F(db_url), NULL, 0, 0,
      "PostgreSQL URL or conninfo; none: the private cluster under --var" },
    { "var", "SENTRA_VAR", OPT_STR, F(data_dir), "var", 0, 0, "state directory (private cluster in VAR/pg)" },
    { "migrations", "SENTRA_MIGRATIONS", OPT_STR, F(migrations_dir), NULL, 0, 0,
      "migrations directory (default: migrations/ beside bin/)" },
    { "db-pool", "SENTRA_DB_POOL", OPT_INT, F(db_pool_size), "4", 1, 256, "PostgreSQL connections" },
    { "db-read", "SENTRA_DB_READ_URL", OPT_STR, F(db_read_url), NULL, 0, 0,
      "a hot standby for statistics, lists and pulls (conninfo; target_session_attrs=prefer-standby)" },
    { "db-read-max-lag", "SENTRA_DB_READ_MAX_LAG_MS", OPT_INT, F(db_read_max_lag_ms), "5000", 0, 3600000,
      "reads marked sentra-consistency: bounded accept this much staleness from the standby, ms" },
    { "db-read-wait", "SENTRA_DB_READ_WAIT_MS", OPT_INT, F(db_read_wait_ms), "250", 0, 60000,
      "other reads wait this long for the standby to replay the primary's position, then go to the primary, ms" },
    { "db-pipeline", "SENTRA_DB_PIPELINE", OPT_INT, F(db_pipeline_depth), "16", 1, 1024,
      "queries in flight per PostgreSQL connection" },
    { "db-statement-timeout", "SENTRA_DB_STATEMENT_TIMEOUT_MS", OPT_INT, F(db_statement_timeout_ms), "60000",
      0, INT_MAX, "statement_timeout of the server's database sessions, ms (0: the database's own)" },
    { "db-connect-timeout", "SENTRA_DB_CONNECT_TIMEOUT_MS", OPT_INT, F(db_connect_timeout_ms), "10000",
      100, INT_MAX, "give up on a database address after this long, ms (connect_timeout in --db wins)" },
    { "db-stall-timeout", "SENTRA_DB_STALL_TIMEOUT_MS", OPT_INT, F(db_stall_timeout_ms), "75000", 100,
      INT_MAX, "break a database connection whose queries get no answer this long, ms" },
    { "db-queue", "SENTRA_DB_QUEUE", OPT_INT, F(db_queue_max), "10000", 1, INT_MAX,
      "queries waiting for a database connection, at most (RESOURCE_EXHAUSTED beyond)" },
    { "db-queue-bytes", "SENTRA_DB_QUEUE_BYTES", OPT_INT, F(db_queue_bytes), "67108864", 1024, INT_MAX,
      "parameter bytes of the queries waiting, at most (RESOURCE_EXHAUSTED beyond)" },
    { "db-prepared", "SENTRA_DB_PREPARED", OPT_INT, F(db_prepared_max), "128", 1, 65536,
      "prepared statements kept per database connection (least recently used go)" },
    { "max-frame", "SENTRA_MAX_FRAME", OPT_INT, F(max_frame), "4194304", 1024, 16777215,
      "largest frame payload (and gRPC message) accepted, bytes (at most 16 MiB - 1)" },
    { "max-connections", "SENTRA_MAX_CONNECTIONS", OPT_INT, F(max_connections), "20000", 1, 1000000,
      "client connections at most" },
    { "max-inflight", "SENTRA_MAX_INFLIGHT", OPT_INT, F(max_inflight), "128", 1, 65536,
      "requests in flight per connection" },
    { "idle-timeout", "SENTRA_IDLE_TIMEOUT_MS", OPT_INT, F(idle_timeout_ms), "300000", 100, INT_MAX,
      "close a connection with no request for this long, ms" },
    { "keepalive", "SENTRA_KEEPALIVE_MS", OPT_INT, F(keepalive_ms), "60000", 100, INT_MAX,
      "ping a silent client this often; close when no pong within as long, ms" },
    { "default-deadline", "SENTRA_DEFAULT_DEADLINE_MS", OPT_INT, F(default_deadline_ms), "30000", 1,
      INT_MAX, "deadline of requests that name none, ms" },
    { "max-deadline", "SENTRA_MAX_DEADLINE_MS", OPT_INT, F(max_deadline_ms), "300000", 1, INT_MAX,
      "longest deadline a request gets, ms (a longer one is cut to this)" },
    { "grace", "SENTRA_GRACE_MS", OPT_INT, F(grace_ms), "10000", 0, INT_MAX,
      "on SIGTERM/SIGINT, time given to requests in flight, ms" },
    { "no-migrate", "SENTRA_NO_MIGRATE", OPT_NOBOOL, F(migrate), NULL, 0, 0,
      "do not apply pending migrations at start" },
    { "enable-debug", "SENTRA_ENABLE_DEBUG", OPT_BOOL, F(enable_debug), NULL, 0, 0,
      "serve debug methods (SystemService/Sleep)" },
    { "request-log", "SENTRA_REQUEST_LOG", OPT_BOOL, F(request_log), NULL, 0, 0,
      "log one line per request: method, status, duration" },
    { "log-level", "SENTRA_LOG_LEVEL", OPT_STR, F(log_level), "info", 0, 0, "debug, info, warn or error" },
    { "port-file", NULL, OPT_STR, F(port_file), NULL, 0, 0, "write the bound TCP port to this file" },
    { "web-root", "SENTRA_WEB_ROOT", OPT_STR, F(web_root), NULL, 0, 0,
      "static files served over HTTP at / (default: web/ beside bin/), read at start" },
    { "cors-origin", "SENTRA_CORS_ORIGIN", OPT_STR, F(cors_origin), NULL, 0, 0,
      "origins whose web pages may call the HTTP API (comma-separated; default none)" },
    { "http-request-timeout", "SENTRA_HTTP_REQUEST_TIMEOUT_MS", OPT_INT, F(http_request_timeout_ms), "30000",
      100, INT_MAX, "an HTTP request's headers and body must arrive within this long, ms" },
    { "tls-cert", "SENTRA_TLS_CERT", OPT_STR, F(tls_cert), NULL, 0, 0,
      "serve TLS with this PEM certificate (leaf first, then its chain); reloaded on SIGHUP" },
    { "tls-key", "SENTRA_TLS_KEY", OPT_STR, F(tls_key), NULL, 0, 0,
      "the certificate's unencrypted PEM private key (default: in the --tls-cert file)" },
    { "tls-client-ca", "SENTRA_TLS_CLIENT_CA", OPT_STR, F(tls_client_ca), NULL, 0, 0,
      "mutual TLS: require a client certificate issued by this PEM CA (the token is still required); implies --tls-only" },
    { "tls-only", "SENTRA_TLS_ONLY", OPT_BOOL, F(tls_only), NULL, 0, 0,
      "refuse plaintext connections on TCP (the Unix socket stays plaintext)" },
    { "tls-handshake-timeout", "SENTRA_TLS_HANDSHAKE_TIMEOUT_MS", OPT_INT, F(tls_handshake_timeout_ms), "10000",
      100, 600000, "close a connection whose TLS handshake has not finished after this long, ms" },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int set_opt(config_t *cfg, const struct opt *o, const char *value, const char *from)
{
    char *base = (char *)cfg;
    switch (o->type) {
    case OPT_STR: {
        char **p = (char **)(base + o->offset);
        free(*p);
        *p = value ? strdup(value) : NULL;
        return 0;
    }
    case OPT_INT: {
        char *end;
        errno = 0;
        long v = strtol(value ? value : "", &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            fprintf(stderr, "sentrad: %s: %s must be an integer from %ld to %ld, not \"%s\"\n",
                    from, o->name, o->min, o->max, value ? value : "");
            return -1;
        }
        if (o->offset == F(max_frame))
            *(uint32_t *)(base + o->offset) = (uint32_t)v;
        else
            *(int *)(base + o->offset) = (int)v;
        return 0;
    }
    case OPT_BOOL:
    case OPT_NOBOOL: {
        int v = 1;
        if (value != NULL) {
            if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on"))
                v = 1;
            else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off"))
                v = 0;
            else {
                fprintf(stderr, "sentrad: %s: %s must be true or false, not \"%s\"\n", from, o->name, value);
                return -1;
            }
        }
        *(int *)(base + o->offset) = o->type == OPT_NOBOOL ? !v : v;
        return 0;
    }
    }
    return -1;
}

static const struct opt *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

static int load_file(config_t *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "sentrad: cannot read config file %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char *p = line + strspn(line, " \t");
        p[strcspn(p, "\r\n")] = '\0';
        if (*p == '\0' || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (eq == NULL) {
            fprintf(stderr, "sentrad: %s:%d: expected \"name = value\"\n", path, lineno);
            rc = -1;
            break;
        }
        char *end = eq;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        char *val = eq + 1 + strspn(eq + 1, " \t");
        size_t vl = strlen(val);
        while (vl > 0 && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
            val[--vl] = '\0';
        const struct opt *o = find_opt(p, (size_t)(end - p));
        if (o == NULL) {
            fprintf(stderr, "sentrad: %s:%d: unknown setting \"%.*s\"\n", path, lineno, (int)(end - p), p);
            rc = -1;
            break;
        }
        char where[1100];
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        rc = set_opt(cfg, o, val, where);
    }
    fclose(f);
    return rc;
}

int config_load(config_t *cfg, int argc, char **argv, int *nrest)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->migrate = 1;
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].def != NULL && set_opt(cfg, &opts[i], opts[i].def, "default") != 0)
            return -1;

    /* The file first, so that the environment and flags override it. */
    const char *file = getenv("SENTRA_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
    }
    if (file != NULL && load_file(cfg, file) != 0)
        return -1;

    for (size_t i = 0; i < NOPTS; i++) {
        const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
        if (v != NULL && *v && set_opt(cfg, &opts[i], v, opts[i].env) != 0)
            return -1;
    }

    int out = 1;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        const struct opt *o = NULL;
        const char *val = NULL;
        if (a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a, '=');
            o = find_opt(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
            if (o != NULL && eq != NULL)
                val = eq + 1;
        }
        if (o == NULL) {
            argv[out++] = a; /* the subcommand's */
            continue;
        }
        if (val == NULL && (o->type == OPT_STR || o->type == OPT_INT)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sentrad: --%s needs a value\n", o->name);
                return -1;
            }
            val = argv[++i];
        }
        if (set_opt(cfg, o, val, "flag") != 0)
            return -1;
    }
    *nrest = out - 1;

    /* TLS settings that only make sense together. */
    int tls = cfg->tls_cert != NULL && cfg->tls_cert[0];
    if (!tls && ((cfg->tls_key != NULL && cfg->tls_key[0]) || (cfg->tls_client_ca != NULL && cfg->tls_client_ca[0]) ||
                 cfg->tls_only)) {
        fprintf(stderr, "sentrad: --tls-key, --tls-client-ca and --tls-only need --tls-cert\n");
        return -1;
    }
    /* A client certificate that plaintext could go around would prove
     * nothing. */
    if (cfg->tls_client_ca != NULL && cfg->tls_client_ca[0])
        cfg->tls_only = 1;
    return 0;
}

void config_usage(const char *prog)
{
    printf("usage: %s [COMMAND] [OPTIONS]\n\n"
           "sentra's server: the registry of Sentra IKM and its statistics.\n\n"
           "Commands:\n"
           "  serve                 run the server (the default)\n"
           "  migrate [--dry-run]   apply pending migrations and exit\n"
           "  migrate status        list applied and pending migrations\n"
           "  token create --role ROLE [--region CODE] [--label TEXT]\n"
           "                        create an API token; prints the secret once\n"
           "  token list            list tokens\n"
           "  token revoke ID       revoke a token\n"
           "  db-url                print the database conninfo in use (starting the\n"
           "                        private cluster if needed)\n\n"
           "Options (flag, environment variable, default):\n", prog);
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s%s", o->name,
                 o->type == OPT_STR ? " TEXT" : o->type == OPT_INT ? " N" : "");
        printf("  %-26s %s\n  %-26s [%s%s%s]\n", flag, o->help, "", o->env ? o->env : "flag only",
               o->def ? ", default " : "", o->def ? o->def : "");
    }
    printf("  %-26s %s\n  %-26s [%s]\n", "--config FILE", "read settings from FILE (name = value lines)",
           "", "SENTRA_CONFIG");
    printf("  %-26s %s\n", "--help", "this text");
    printf("  %-26s %s\n", "--version", "print the version");
    printf("\nPrecedence: flags, then environment, then the config file, then defaults.\n"
           "Signals: SIGTERM or SIGINT stop gracefully (GOAWAY, then --grace for requests in flight);\n"
           "SIGHUP reloads the TLS certificate, key and client CA (open connections stay; a bad\n"
           "new certificate is refused and the old one kept).\n");
}

void config_free(config_t *cfg)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (opts[i].type == OPT_STR) {
            char **p = (char **)((char *)cfg + opts[i].offset);
            free(*p);
            *p = NULL;
        }
    }
}
