/*
 * cli.h: what the files of sentra-cli share: the run context, exit codes,
 * output helpers (aligned tables, JSON, CSV) and the protobuf <-> JSON
 * conversion.
 */
#ifndef SENTRA_CLI_H
#define SENTRA_CLI_H

#include <stdio.h>

#include <jansson.h>

#include <sentra/sentra.h>

/* Exit codes (docs/CLIENT.md, `sentra-cli --help`). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_PARTIAL 1   /* import/push: some rows were refused */
#define CLI_EXIT_USAGE 2     /* bad command line */
#define CLI_EXIT_LOCAL 3     /* local failure: file, memory, bad input file */
#define CLI_EXIT_STATUS 10   /* + gRPC status code of a failed call */

enum cli_format { FMT_TABLE, FMT_JSON, FMT_CSV };

typedef struct cli {
    const char *prog;          /* argv[0] */
    const char *addr;          /* --addr or $SENTRA_ADDR (NULL: library default) */
    const char *token;         /* --token or $SENTRA_TOKEN */
    int tls;                   /* --tls (or an address tls://host:port) */
    const char *ca;            /* --ca FILE (NULL: $SENTRA_CA, else the system store) */
    const char *cert, *key;    /* --cert, --key: client certificate (mutual TLS) */
    int insecure_no_hostname_check; /* --insecure-no-hostname-check */
    unsigned deadline_ms;      /* --deadline; 0: library default */
    enum cli_format fmt;       /* --json / --csv */
    int quiet;                 /* --quiet: no progress */
    sentra_client_t *client;   /* made by cli_client() on first use */
} cli_t;

/* One subcommand: argv[0] is the command's name. Returns an exit code. */
typedef int (*cli_cmd_fn)(cli_t *cli, int argc, char **argv);

/* Common options every command accepts, for getopt_long tables. */
#define CLI_OPT_ADDR 1001
#define CLI_OPT_TOKEN 1002
#define CLI_OPT_JSON 1003
#define CLI_OPT_CSV 1004
#define CLI_OPT_DEADLINE 1005
#define CLI_OPT_QUIET 1006
#define CLI_OPT_TLS 1007
#define CLI_OPT_CA 1008
#define CLI_OPT_CERT 1009
#define CLI_OPT_KEY 1010
#define CLI_OPT_INSECURE_HOST 1011
#define CLI_COMMON_OPTIONS                                                       \
    {"addr", required_argument, 0, CLI_OPT_ADDR},                                \
    {"tls", no_argument, 0, CLI_OPT_TLS},                                        \
    {"ca", required_argument, 0, CLI_OPT_CA},                                    \
    {"cert", required_argument, 0, CLI_OPT_CERT},                                \
    {"key", required_argument, 0, CLI_OPT_KEY},                                  \
    {"insecure-no-hostname-check", no_argument, 0, CLI_OPT_INSECURE_HOST},       \
    {"token", required_argument, 0, CLI_OPT_TOKEN},                              \
    {"json", no_argument, 0, CLI_OPT_JSON},                                      \
    {"csv", no_argument, 0, CLI_OPT_CSV},                                        \
    {"deadline", required_argument, 0, CLI_OPT_DEADLINE},                        \
    {"quiet", no_argument, 0, CLI_OPT_QUIET},                                    \
    {"help", no_argument, 0, 'h'}
#define CLI_COMMON_HELP                                                          \
    "common options:\n"                                                          \
    "  --addr ADDR       server (host:port, tls://host:port, unix:/path);\n"     \
    "                    default $SENTRA_ADDR\n"                                  \
    "  --tls             TLS (as a tls:// address does); the server's\n"         \
    "                    certificate is verified, its name included\n"           \
    "  --ca FILE         trust the CAs in FILE (PEM), not the system's;\n"        \
    "                    default $SENTRA_CA\n"                                    \
    "  --cert FILE       client certificate for mutual TLS; default $SENTRA_CERT\n" \
    "  --key FILE        its key (default: $SENTRA_KEY, else in --cert's file)\n" \
    "  --insecure-no-hostname-check\n"                                            \
    "                    DANGEROUS: accept a certificate issued for any name\n"   \
    "  --token TOKEN     bearer token; default $SENTRA_TOKEN\n"                   \
    "  --json            JSON output (one object per line for lists)\n"          \
    "  --csv             CSV output (list, export, stats, timeseries)\n"         \
    "  --deadline MS     per-call deadline in milliseconds (default 30000)\n"    \
    "  --quiet           no progress on stderr\n"                                \
    "  --help            this text\n"

/* Handles a common option code from getopt_long; returns 1 when it was one,
 * 0 when not, -1 on a bad value (message printed). */
int cli_common_opt(cli_t *cli, int code, const char *arg);

/* Inside a getopt_long loop: consumes common options (`continue`) and
 * returns CLI_EXIT_USAGE from the command on a bad value. */
#define CLI_PARSE_COMMON(cli, c)                                                 \
    {                                                                            \
        int r_ = cli_common_opt((cli), (c), optarg);                             \
        if (r_ < 0)                                                              \
            return CLI_EXIT_USAGE;                                               \
        if (r_)                                                                  \
            continue;                                                            \
    }

/* Prints "PROG CMD: message" to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(cli_t *cli, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The connected client, made on first use; NULL after printing why. */
sentra_client_t *cli_client(cli_t *cli);

/* Default call options (deadline from --deadline). */
sentra_call_opts_t cli_call_opts(const cli_t *cli);

/* Prints a failed call's status to stderr and returns the exit code
 * (CLI_EXIT_STATUS + code). */
int cli_fail(cli_t *cli, const char *what, int rc, const sentra_status_t *st);

/* ---------------------------------------------------------------- JSON */

/* The message as a JSON object: proto3's JSON mapping (common/pbjson.h)
 * with proto field names (enums by name, 64-bit integers as strings, bytes
 * as base64; zero values left out unless `all_fields`). New reference. */
json_t *cli_pb_to_json(const ProtobufCMessage *m, int all_fields);

/* A new message of type desc from a JSON object (either field name, 64-bit
 * integers as strings or numbers); NULL with a message in
 * err (size errlen) naming the offending field. Free with
 * protobuf_c_message_free_unpacked(msg, NULL). */
ProtobufCMessage *cli_json_to_pb(const ProtobufCMessageDescriptor *desc, json_t *j, char *err,
                                 size_t errlen);

/* Prints the message as one JSON line on stdout. */
void cli_print_json(const ProtobufCMessage *m);

/* Enum helpers: parse "designated", "STATUS_DESIGNATED" or "2" for an enum
 * whose values share the prefix; -1 when unknown. */
int cli_enum_parse(const ProtobufCEnumDescriptor *d, const char *prefix, const char *s);
/* Short lower-case name ("designated") of a value; static buffer. */
const char *cli_enum_short(const ProtobufCEnumDescriptor *d, const char *prefix, int v);

/* ---------------------------------------------------------------- tables */

typedef struct cli_table cli_table_t;

cli_table_t *cli_table_new(int ncols, const char *const *headers);
/* Adds a row of ncols strings (copied). right: bitmask of right-aligned
 * columns, set once with cli_table_align. */
void cli_table_row(cli_table_t *t, const char *const *cells);
void cli_table_align_right(cli_table_t *t, unsigned mask);
/* Adds a separator line before the next row (for totals). */
void cli_table_rule(cli_table_t *t);
void cli_table_print(cli_table_t *t, FILE *out);
/* Writes the table as CSV (headers first) through libcsv's quoting. */
void cli_table_print_csv(cli_table_t *t, FILE *out);
void cli_table_free(cli_table_t *t);

/* Writes one CSV field (quoted when needed) followed by `sep` (',' or '\n'). */
void cli_csv_field(FILE *out, const char *s, int sep);

/* ---------------------------------------------------------------- misc */

/* Progress on stderr when it is a terminal and not --quiet:
 * "\r<what> <done>[/<total>]". cli_progress_end clears the line. */
void cli_progress(cli_t *cli, const char *what, long done, long total);
void cli_progress_end(cli_t *cli);

/* Filter options shared by list, export, stats, timeseries, sync pull. */
#define CLI_FILTER_OPTIONS                                                       \
    {"province", required_argument, 0, 2001},                                    \
    {"regency", required_argument, 0, 2002},                                     \
    {"status", required_argument, 0, 2003},                                      \
    {"sector", required_argument, 0, 2004},                                      \
    {"kbli", required_argument, 0, 2005},                                        \
    {"designated", no_argument, 0, 2006},                                        \
    {"not-designated", no_argument, 0, 2007},                                    \
    {"text", required_argument, 0, 2008},                                        \
    {"updated-since", required_argument, 0, 2009}
#define CLI_FILTER_HELP                                                          \
    "filters:\n"                                                                 \
    "  --province CODE   --regency CODE   --kbli PREFIX   --text WORDS\n"        \
    "  --status S[,S..]  (formed, designated, revitalised, inactive, revoked)\n" \
    "  --sector G[,G..]  (food, textiles, chemicals_building, crafts,\n"         \
    "                     furniture, metal_machinery)\n"                         \
    "  --designated | --not-designated   --updated-since UNIX_MS\n"

/* Applies a filter option to f (a Sentra__V1__SentraFilter the caller owns;
 * strings point into argv, repeated arrays are malloc'ed: free with
 * cli_filter_free). Returns 1 when code was a filter option, 0 when not, -1
 * on a bad value. */
int cli_filter_opt(cli_t *cli, Sentra__V1__SentraFilter *f, int code, const char *arg);
void cli_filter_free(Sentra__V1__SentraFilter *f);

/* Formats an integer with thousands separators into buf. */
const char *cli_num(char *buf, size_t len, long long v);

/* Commands, by file. */
int cmd_health(cli_t *, int, char **);      /* cli_system.c */
int cmd_ping(cli_t *, int, char **);
int cmd_describe(cli_t *, int, char **);
int cmd_tokens(cli_t *, int, char **);
int cmd_whoami(cli_t *, int, char **);
int cmd_sleep(cli_t *, int, char **);
int cmd_create(cli_t *, int, char **);      /* cli_sentra.c */
int cmd_get(cli_t *, int, char **);
int cmd_update(cli_t *, int, char **);
int cmd_delete(cli_t *, int, char **);
int cmd_list(cli_t *, int, char **);
int cmd_regions(cli_t *, int, char **);
int cmd_region(cli_t *, int, char **);
int cmd_stats(cli_t *, int, char **);       /* cli_stats.c */
int cmd_timeseries(cli_t *, int, char **);
int cmd_import(cli_t *, int, char **);      /* cli_csv.c */
int cmd_export(cli_t *, int, char **);
int cmd_sync(cli_t *, int, char **);        /* cli_sync.c */
int cmd_records(cli_t *, int, char **);     /* cli_records.c: members, institution, obstacles, assistance */
int cmd_report(cli_t *, int, char **);      /* cli_report.c */

/* cli_csv.c: a sentra as one row of the CSV layout of docs/CLIENT.md. */
void cli_csv_write_header(FILE *out);
void cli_csv_write_sentra(FILE *out, const Sentra__V1__Sentra *s);

#endif
