/*
 * config.h: the server's configuration, from defaults, an optional file,
 * environment variables and flags (later ones win). `sentrad --help` lists
 * every setting; config.c is the one table that defines them.
 */
#ifndef SENTRA_CONFIG_H
#define SENTRA_CONFIG_H

#include <stdint.h>

typedef struct config {
    char *listen_host;        /* SENTRA_HOST, --host; default 127.0.0.1 */
    int port;                 /* SENTRA_PORT, --port; default 7600 (0: any free port) */
    char *unix_path;          /* SENTRA_UNIX, --unix; also listen on this socket */
    char *db_url;             /* SENTRA_DB_URL, --db; NULL: the private cluster */
    char *data_dir;           /* SENTRA_VAR, --var; private cluster and state; default "var" */
    char *migrations_dir;     /* SENTRA_MIGRATIONS, --migrations; default "migrations" */
    int db_pool_size;         /* --db-pool; default 4 */
    char *db_read_url;        /* SENTRA_DB_READ_URL, --db-read: a hot standby for reads; NULL: none */
    int db_read_max_lag_ms;   /* --db-read-max-lag; bounded reads accept this staleness; default 5000 */
    int db_read_wait_ms;      /* --db-read-wait; a read waits this long for replay, then the primary; default 250 */
    int db_pipeline_depth;    /* --db-pipeline; queries in flight per db connection; default 16 */
    int db_statement_timeout_ms; /* --db-statement-timeout; session statement_timeout; 0: the db's; default 60000 */
    int db_connect_timeout_ms;   /* --db-connect-timeout; per database address; default 10000 */
    int db_stall_timeout_ms;     /* --db-stall-timeout; break a silent connection; default 75000 */
    int db_queue_max;            /* --db-queue; queries waiting for a connection; default 10000 */
    int db_queue_bytes;          /* --db-queue-bytes; their parameter bytes; default 64 MiB */
    int db_prepared_max;         /* --db-prepared; prepared statements per connection; default 128 */
    uint32_t max_frame;       /* --max-frame; bytes; default 4 MiB */
    int max_connections;      /* --max-connections; default 20000 */
    int max_inflight;         /* --max-inflight; requests in flight per connection; default 128 */
    int idle_timeout_ms;      /* --idle-timeout; no request for this long closes; default 300000 */
    int keepalive_ms;         /* --keepalive; ping an idle peer this often; default 60000 */
    int default_deadline_ms;  /* --default-deadline; when a request names none; default 30000 */
    int max_deadline_ms;      /* --max-deadline; longer deadlines are cut to it; default 300000 */
    int grace_ms;             /* --grace; shutdown grace period; default 10000 */
    int migrate;              /* --no-migrate clears; apply migrations at start */
    int enable_debug;         /* --enable-debug: serve SystemService/Sleep */
    int request_log;          /* --request-log: one line per request */
    char *log_level;          /* SENTRA_LOG_LEVEL, --log-level; default info */
    char *port_file;          /* --port-file: write the bound port here (tests) */
    char *web_root;           /* SENTRA_WEB_ROOT, --web-root; static files at "/"; default web/ beside bin/ */
    char *cors_origin;        /* SENTRA_CORS_ORIGIN, --cors-origin; origins allowed cross-origin calls
                               * over HTTP (comma-separated); default none */
    int http_request_timeout_ms; /* --http-request-timeout; an HTTP request must arrive whole within
                                  * this long of its first byte; default 30000 */
    char *tls_cert;           /* SENTRA_TLS_CERT, --tls-cert: PEM certificate (chain allowed); NULL: no TLS */
    char *tls_key;            /* SENTRA_TLS_KEY, --tls-key: its PEM key; NULL: in the --tls-cert file */
    char *tls_client_ca;      /* SENTRA_TLS_CLIENT_CA, --tls-client-ca: require client certificates of this CA */
    int tls_only;             /* --tls-only: refuse plaintext on TCP (the Unix socket stays plaintext) */
    int tls_handshake_timeout_ms; /* --tls-handshake-timeout; close a handshake not done by then; default 10000 */
} config_t;

/* Fills cfg with defaults, then the file named by SENTRA_CONFIG or
 * --config (lines "name = value", names as the long flags without "--"),
 * then the environment, then argv flags. Arguments that are not server
 * settings (the subcommand and its own flags) are moved, in order, to
 * argv[1..*nrest]. Returns 0, or -1 after printing why to stderr. */
int config_load(config_t *cfg, int argc, char **argv, int *nrest);

/* Prints the --help text. */
void config_usage(const char *prog);

void config_free(config_t *cfg);

#endif
