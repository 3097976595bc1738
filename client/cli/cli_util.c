/*
 * cli_util.c: the pieces every sentra-cli command uses: common options,
 * the client handle, error reporting with exit codes, aligned tables,
 * CSV quoting, progress lines and the shared filter options.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <csv.h>

#include "cli.h"

int cli_common_opt(cli_t *cli, int code, const char *arg)
{
    switch (code) {
    case CLI_OPT_ADDR: cli->addr = arg; return 1;
    case CLI_OPT_TOKEN: cli->token = arg; return 1;
    case CLI_OPT_JSON: cli->fmt = FMT_JSON; return 1;
    case CLI_OPT_CSV: cli->fmt = FMT_CSV; return 1;
    case CLI_OPT_QUIET: cli->quiet = 1; return 1;
    case CLI_OPT_TLS: cli->tls = 1; return 1;
    case CLI_OPT_CA: cli->ca = arg; return 1;
    case CLI_OPT_CERT: cli->cert = arg; return 1;
    case CLI_OPT_KEY: cli->key = arg; return 1;
    case CLI_OPT_INSECURE_HOST: cli->insecure_no_hostname_check = 1; return 1;
    case CLI_OPT_DEADLINE: {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*end || v <= 0 || v > 86400000) {
            fprintf(stderr, "%s: --deadline wants milliseconds (1..86400000), not \"%s\"\n", cli->prog, arg);
            return -1;
        }
        cli->deadline_ms = (unsigned)v;
        return 1;
    }
    }
    return 0;
}

int cli_usage_error(cli_t *cli, const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s %s: ", cli->prog, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(try: %s %s --help)\n", cli->prog, cmd);
    return CLI_EXIT_USAGE;
}

sentra_client_t *cli_client(cli_t *cli)
{
    if (cli->client)
        return cli->client;
    sentra_client_opts_t o;
    sentra_client_opts_init(&o);
    o.address = cli->addr;
    o.token = cli->token;
    o.default_deadline_ms = cli->deadline_ms;
    sentra_tls_opts_t t;
    sentra_tls_opts_init(&t);
    t.enable = cli->tls;
    t.ca_file = cli->ca;
    t.cert_file = cli->cert;
    t.key_file = cli->key;
    t.insecure_no_hostname_check = cli->insecure_no_hostname_check;
    int rc = sentra_client_new_tls(&cli->client, &o, &t);
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", cli->prog, cli->addr ? cli->addr : "$SENTRA_ADDR", sentra_strerror(rc));
        return NULL;
    }
    const char *err = sentra_client_error_message(cli->client);
    if (err[0]) {
        /* A TLS file that cannot be used. */
        fprintf(stderr, "%s: %s\n", cli->prog, err);
        sentra_client_free(cli->client);
        cli->client = NULL;
        return NULL;
    }
    if (cli->insecure_no_hostname_check)
        fprintf(stderr, "%s: WARNING: --insecure-no-hostname-check: the server's certificate is not checked "
                        "for its name; anyone holding a certificate from the same CA can pose as the server\n",
                cli->prog);
    return cli->client;
}

sentra_call_opts_t cli_call_opts(const cli_t *cli)
{
    sentra_call_opts_t o = {0, NULL, 0};
    o.deadline_ms = cli->deadline_ms;
    return o;
}

int cli_fail(cli_t *cli, const char *what, int rc, const sentra_status_t *st)
{
    fprintf(stderr, "%s: %s: %s", cli->prog, what, sentra_status_name(st->code));
    if (st->message && *st->message)
        fprintf(stderr, ": %s", st->message);
    else if (rc != SENTRA_ESTATUS)
        fprintf(stderr, ": %s", sentra_strerror(rc));
    fputc('\n', stderr);
    for (size_t i = 0; i < st->n_violations; i++)
        fprintf(stderr, "  %s: %s\n", st->violations[i].field, st->violations[i].description);
    if (st->code == 10 /* ABORTED */ && st->current_version)
        fprintf(stderr, "  current version on the server: %lld\n", (long long)st->current_version);
    int code = st->code > 0 && st->code <= 16 ? st->code : 2;
    return CLI_EXIT_STATUS + code;
}

/* ---------------------------------------------------------------- tables */

struct cli_table {
    int ncols;
    size_t nrows, cap;
    char ***rows;          /* rows[0] are the headers */
    unsigned char *rule;   /* rule[i]: a line before row i */
    unsigned right;        /* right-aligned columns (bit per column) */
    int pending_rule;      /* cli_table_rule was called: mark the next row */
};

cli_table_t *cli_table_new(int ncols, const char *const *headers)
{
    cli_table_t *t = calloc(1, sizeof *t);
    t->ncols = ncols;
    cli_table_row(t, headers);
    return t;
}

void cli_table_row(cli_table_t *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->rows = realloc(t->rows, t->cap * sizeof *t->rows);
        t->rule = realloc(t->rule, t->cap);
        if (!t->rows || !t->rule) {
            fprintf(stderr, "out of memory\n");
            exit(CLI_EXIT_LOCAL);
        }
    }
    char **r = calloc((size_t)t->ncols, sizeof *r);
    for (int i = 0; i < t->ncols; i++)
        r[i] = strdup(cells[i] ? cells[i] : "");
    t->rule[t->nrows] = (unsigned char)t->pending_rule;
    t->pending_rule = 0;
    t->rows[t->nrows++] = r;
}

void cli_table_rule(cli_table_t *t)
{
    t->pending_rule = 1;
}

void cli_table_align_right(cli_table_t *t, unsigned mask) { t->right = mask; }

/* Display width of a UTF-8 string: one column per code point. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void cli_table_print(cli_table_t *t, FILE *out)
{
    size_t *w = calloc((size_t)t->ncols, sizeof *w);
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            size_t x = width(t->rows[r][c]);
            if (x > w[c])
                w[c] = x;
        }
    size_t total = 0;
    for (int c = 0; c < t->ncols; c++)
        total += w[c] + (c ? 2 : 0);
    for (size_t r = 0; r < t->nrows; r++) {
        if (r == 1 || (r > 1 && t->rule[r])) {
            for (size_t i = 0; i < total; i++)
                fputc('-', out);
            fputc('\n', out);
        }
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->rows[r][c];
            size_t pad = w[c] - width(s);
            int last = c == t->ncols - 1;
            if (c)
                fputs("  ", out);
            if (t->right & (1u << c)) {
                for (size_t i = 0; i < pad; i++)
                    fputc(' ', out);
                fputs(s, out);
            } else {
                fputs(s, out);
                if (!last)
                    for (size_t i = 0; i < pad; i++)
                        fputc(' ', out);
            }
        }
        fputc('\n', out);
    }
    free(w);
}

void cli_csv_field(FILE *out, const char *s, int sep)
{
    csv_fwrite(out, s ? s : "", strlen(s ? s : ""));
    fputc(sep, out);
}

void cli_table_print_csv(cli_table_t *t, FILE *out)
{
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++)
            cli_csv_field(out, t->rows[r][c], c == t->ncols - 1 ? '\n' : ',');
}

void cli_table_free(cli_table_t *t)
{
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++)
            free(t->rows[r][c]);
        free(t->rows[r]);
    }
    free(t->rows);
    free(t->rule);
    free(t);
}

/* ---------------------------------------------------------------- progress */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t last_progress;
static int progress_shown;

void cli_progress(cli_t *cli, const char *what, long done, long total)
{
    if (cli->quiet || !isatty(2))
        return;
    int64_t now = mono_ms();
    if (now - last_progress < 100 && !(total > 0 && done == total))
        return;
    last_progress = now;
    progress_shown = 1;
    if (total > 0)
        fprintf(stderr, "\r%s %ld/%ld (%ld%%)   ", what, done, total, total ? done * 100 / total : 0);
    else
        fprintf(stderr, "\r%s %ld   ", what, done);
    fflush(stderr);
}

void cli_progress_end(cli_t *cli)
{
    if (progress_shown) {
        fputs("\r\033[K", stderr);
        progress_shown = 0;
    }
}

/* ---------------------------------------------------------------- filters */

static int add_enum_list(cli_t *cli, const ProtobufCEnumDescriptor *d, const char *prefix, const char *arg,
                         size_t *n, int **arr, const char *opt)
{
    char *copy = strdup(arg), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int v = cli_enum_parse(d, prefix, tok);
        if (v <= 0) {
            fprintf(stderr, "%s: --%s: unknown value \"%s\"\n", cli->prog, opt, tok);
            free(copy);
            return -1;
        }
        *arr = realloc(*arr, (*n + 1) * sizeof **arr);
        (*arr)[(*n)++] = v;
    }
    free(copy);
    return 1;
}

int cli_filter_opt(cli_t *cli, Sentra__V1__SentraFilter *f, int code, const char *arg)
{
    switch (code) {
    case 2001: f->province_code = (char *)arg; return 1;
    case 2002: f->regency_code = (char *)arg; return 1;
    case 2003:
        return add_enum_list(cli, &sentra__v1__status__descriptor, "STATUS_", arg, &f->n_status,
                             (int **)&f->status, "status");
    case 2004:
        return add_enum_list(cli, &sentra__v1__sector_group__descriptor, "SECTOR_GROUP_", arg,
                             &f->n_sector_group, (int **)&f->sector_group, "sector");
    case 2005: f->kbli_prefix = (char *)arg; return 1;
    case 2006: f->designation = SENTRA__V1__DESIGNATION__DESIGNATION_DESIGNATED; return 1;
    case 2007: f->designation = SENTRA__V1__DESIGNATION__DESIGNATION_NOT_DESIGNATED; return 1;
    case 2008: f->text = (char *)arg; return 1;
    case 2009: {
        char *end;
        long long v = strtoll(arg, &end, 10);
        if (*end || v < 0) {
            fprintf(stderr, "%s: --updated-since wants Unix milliseconds\n", cli->prog);
            return -1;
        }
        f->updated_since_ms = v;
        return 1;
    }
    }
    return 0;
}

void cli_filter_free(Sentra__V1__SentraFilter *f)
{
    free(f->status);
    free(f->sector_group);
    f->status = NULL;
    f->sector_group = NULL;
    f->n_status = f->n_sector_group = 0;
}

const char *cli_num(char *buf, size_t len, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v < 0 ? -v : v);
    size_t o = 0;
    if (v < 0 && o + 1 < len)
        buf[o++] = '-';
    for (int i = 0; i < n && o + 1 < len; i++) {
        if (i && (n - i) % 3 == 0 && o + 1 < len)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}
