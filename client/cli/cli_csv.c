/*
 * cli_csv.c: CSV export and import of sentra records (libcsv).
 *
 * The column layout (docs/CLIENT.md) is one row per sentra: the record's
 * fields, the latest year's figures in plain columns, and every earlier
 * year's figures as a JSON array in `earlier_figures`, so that a spreadsheet
 * shows the current figures while export followed by import loses nothing.
 *
 * Import keeps up to 32 CreateSentra calls in flight on one connection
 * through the asynchronous API (a few hundred rows a second instead of one
 * round trip per row), and reports refused rows in file order at the end,
 * each with its line number and the server's reasons.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <csv.h>
#include <sentra/async.h>

#include "cli.h"

/* ---------------------------------------------------------------- layout */

enum ckind { K_STR, K_INT, K_DBL, K_ENUM, K_LIST, K_JSON };

static const struct column {
    const char *name;
    const char *key;   /* JSON key in Sentra, "location.x", "decree.x" or "fig.x" */
    enum ckind kind;
    const ProtobufCEnumDescriptor *ed;
    const char *prefix;
} columns[] = {
    {"id", "id", K_STR, 0, 0},
    {"name", "name", K_STR, 0, 0},
    {"regency_code", "regency_code", K_STR, 0, 0},
    {"district_code", "district_code", K_STR, 0, 0},
    {"village_code", "village_code", K_STR, 0, 0},
    {"address", "address", K_STR, 0, 0},
    {"latitude", "location.latitude", K_DBL, 0, 0},
    {"longitude", "location.longitude", K_DBL, 0, 0},
    {"commodity", "commodity", K_STR, 0, 0},
    {"main_product", "main_product", K_STR, 0, 0},
    {"kbli_code", "kbli_code", K_STR, 0, 0},
    {"kbli_version", "kbli_version", K_ENUM, &sentra__v1__kbli_version__descriptor, "KBLI_VERSION_"},
    {"sector_group", "sector_group", K_ENUM, &sentra__v1__sector_group__descriptor, "SECTOR_GROUP_"},
    {"status", "status", K_ENUM, &sentra__v1__status__descriptor, "STATUS_"},
    {"formed_on", "formed_on", K_STR, 0, 0},
    {"decree_number", "decree.number", K_STR, 0, 0},
    {"decree_date", "decree.date", K_STR, 0, 0},
    {"decree_official", "decree.official", K_STR, 0, 0},
    {"contact_name", "contact_name", K_STR, 0, 0},
    {"contact_phone", "contact_phone", K_STR, 0, 0},
    {"year", "fig.year", K_INT, 0, 0},
    {"business_units", "fig.business_units", K_INT, 0, 0},
    {"workers_male", "fig.workers_male", K_INT, 0, 0},
    {"workers_female", "fig.workers_female", K_INT, 0, 0},
    {"investment", "fig.investment", K_INT, 0, 0},
    {"production_value", "fig.production_value", K_INT, 0, 0},
    {"material_value", "fig.material_value", K_INT, 0, 0},
    {"capacity", "fig.capacity", K_INT, 0, 0},
    {"capacity_unit", "fig.capacity_unit", K_STR, 0, 0},
    {"export_share_bp", "fig.export_share_bp", K_INT, 0, 0},
    {"export_destinations", "fig.export_destinations", K_LIST, 0, 0},
    {"earlier_figures", "figures", K_JSON, 0, 0},
};
#define NCOLS (int)(sizeof columns / sizeof *columns)

void cli_csv_write_header(FILE *out)
{
    for (int i = 0; i < NCOLS; i++)
        cli_csv_field(out, columns[i].name, i == NCOLS - 1 ? '\n' : ',');
}

static const Sentra__V1__Figures *latest(const Sentra__V1__Sentra *s)
{
    const Sentra__V1__Figures *best = NULL;
    for (size_t i = 0; i < s->n_figures; i++)
        if (!best || s->figures[i]->year > best->year)
            best = s->figures[i];
    return best;
}

void cli_csv_write_sentra(FILE *out, const Sentra__V1__Sentra *s)
{
    const Sentra__V1__Figures *f = latest(s);
    char b[NCOLS][40];
    const char *v[NCOLS];
    char *dest = NULL, *earlier = NULL;
    memset(v, 0, sizeof v);
    v[0] = s->id;
    v[1] = s->name;
    v[2] = s->regency_code;
    v[3] = s->district_code;
    v[4] = s->village_code;
    v[5] = s->address;
    if (s->location) {
        snprintf(b[6], 40, "%.15g", s->location->latitude);
        snprintf(b[7], 40, "%.15g", s->location->longitude);
        v[6] = b[6];
        v[7] = b[7];
    }
    v[8] = s->commodity;
    v[9] = s->main_product;
    v[10] = s->kbli_code;
    v[11] = s->kbli_version ? cli_enum_short(columns[11].ed, columns[11].prefix, s->kbli_version) : "";
    v[12] = s->sector_group ? cli_enum_short(columns[12].ed, columns[12].prefix, s->sector_group) : "";
    v[13] = s->status ? cli_enum_short(columns[13].ed, columns[13].prefix, s->status) : "";
    v[14] = s->formed_on;
    if (s->decree) {
        v[15] = s->decree->number;
        v[16] = s->decree->date;
        v[17] = s->decree->official;
    }
    v[18] = s->contact_name;
    v[19] = s->contact_phone;
    if (f) {
        long long nums[] = {f->year, f->business_units, f->workers_male, f->workers_female, f->investment,
                            f->production_value, f->material_value, f->capacity};
        for (int i = 0; i < 8; i++) {
            snprintf(b[20 + i], 40, "%lld", nums[i]);
            v[20 + i] = b[20 + i];
        }
        v[28] = f->capacity_unit;
        snprintf(b[29], 40, "%d", f->export_share_bp);
        v[29] = b[29];
        size_t len = 1;
        for (size_t i = 0; i < f->n_export_destinations; i++)
            len += strlen(f->export_destinations[i]) + 1;
        dest = calloc(1, len);
        for (size_t i = 0; i < f->n_export_destinations; i++) {
            if (i)
                strcat(dest, " ");
            strcat(dest, f->export_destinations[i]);
        }
        v[30] = dest;
        if (s->n_figures > 1) {
            json_t *arr = json_array();
            for (size_t i = 0; i < s->n_figures; i++)
                if (s->figures[i] != f)
                    json_array_append_new(arr, cli_pb_to_json(&s->figures[i]->base, 0));
            earlier = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(arr);
            v[31] = earlier;
        }
    }
    for (int i = 0; i < NCOLS; i++)
        cli_csv_field(out, v[i], i == NCOLS - 1 ? '\n' : ',');
    free(dest);
    free(earlier);
}

/* ---------------------------------------------------------------- export */

int cmd_export(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {CLI_FILTER_OPTIONS, {"out", required_argument, 0, 'o'},
                                      CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    const char *outpath = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "ho:", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        int r = cli_filter_opt(cli, &f, c, optarg);
        if (r < 0) {
            cli_filter_free(&f);
            return CLI_EXIT_USAGE;
        }
        if (r)
            continue;
        switch (c) {
        case 'o': outpath = optarg; break;
        case 'h':
            printf("usage: %s export [--csv | --json] [--out FILE] [filters]\n\n"
                   "Writes every sentra the token may read (paging through ListSentra),\n"
                   "as CSV (the default; the column layout of docs/CLIENT.md, which\n"
                   "`import` reads back) or as one JSON object per line.\n\n%s\n%s",
                   cli->prog, CLI_FILTER_HELP, CLI_COMMON_HELP);
            cli_filter_free(&f);
            return 0;
        default:
            cli_filter_free(&f);
            return cli_usage_error(cli, "export", "unknown option");
        }
    }
    if (optind != argc) {
        cli_filter_free(&f);
        return cli_usage_error(cli, "export", "takes no arguments");
    }
    sentra_client_t *cl = cli_client(cli);
    if (!cl) {
        cli_filter_free(&f);
        return CLI_EXIT_USAGE;
    }
    FILE *out = stdout;
    char *tmp = NULL;
    if (outpath) {
        /* Write beside the target and rename at the end, so that a failed
         * export never leaves a truncated file that looks complete. */
        if (asprintf(&tmp, "%s.partial", outpath) < 0 || !(out = fopen(tmp, "w"))) {
            fprintf(stderr, "%s export: %s: %s\n", cli->prog, outpath, strerror(errno));
            free(tmp);
            cli_filter_free(&f);
            return CLI_EXIT_LOCAL;
        }
    }
    int json = cli->fmt == FMT_JSON;
    if (!json)
        cli_csv_write_header(out);
    Sentra__V1__ListSentraRequest rq = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
    rq.filter = &f;
    rq.page_size = 1000;
    rq.order_by = SENTRA__V1__SENTRA_ORDER__SENTRA_ORDER_CREATED;
    rq.include_total = 1;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    char *token = NULL;
    long n = 0;
    long long total = -1;
    int rc = 0;
    for (;;) {
        Sentra__V1__ListSentraResponse *r;
        rc = sentra_list_sentra(cl, &rq, &r, &co, &st);
        if (rc) {
            cli_progress_end(cli);
            rc = cli_fail(cli, "export", rc, &st);
            break;
        }
        if (total < 0)
            total = r->total;
        rq.include_total = 0;
        for (size_t i = 0; i < r->n_sentra; i++, n++) {
            if (json) {
                json_t *j = cli_pb_to_json(&r->sentra[i]->base, 0);
                char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
                fprintf(out, "%s\n", s);
                free(s);
                json_decref(j);
            } else {
                cli_csv_write_sentra(out, r->sentra[i]);
            }
        }
        free(token);
        token = r->next_page_token && *r->next_page_token ? strdup(r->next_page_token) : NULL;
        sentra__v1__list_sentra_response__free_unpacked(r, NULL);
        cli_progress(cli, "exported", n, total > 0 ? (long)total : -1);
        if (!token)
            break;
        rq.page_token = token;
    }
    free(token);
    cli_progress_end(cli);
    if (outpath) {
        if (fclose(out) != 0 && !rc) {
            fprintf(stderr, "%s export: %s: %s\n", cli->prog, tmp, strerror(errno));
            rc = CLI_EXIT_LOCAL;
        }
        if (!rc && rename(tmp, outpath) != 0) {
            fprintf(stderr, "%s export: %s: %s\n", cli->prog, outpath, strerror(errno));
            rc = CLI_EXIT_LOCAL;
        }
        if (rc)
            unlink(tmp);
        free(tmp);
    }
    if (!rc)
        fprintf(stderr, "exported %ld sentra\n", n);
    cli_filter_free(&f);
    sentra_status_clear(&st);
    return rc;
}

/* ---------------------------------------------------------------- import */

#define WINDOW 32

struct row_err {
    long line;
    char *text; /* the reasons, one per line */
};

struct import {
    cli_t *cli;
    const char *path;
    uv_loop_t loop;
    sentra_async_t *async;
    int colmap[64];        /* file column -> columns[] index, -1: ignored */
    int nfilecols;
    int have_header;
    char *fields[64];      /* the current record's fields */
    int nfields;
    int too_many;          /* the record has more fields than the header */
    long cur_line;         /* the physical line being parsed */
    long line_start;       /* the last line that began outside quotes */
    int in_quotes;         /* odd number of '"' seen: inside a quoted field */
    long rec_line;         /* where the current record started */
    long rows, ok, bad, skipped, inflight;
    long total_lines;
    int skip_existing;
    int fatal;             /* stop: the connection is gone or a local error */
    struct row_err *errs;
    size_t nerrs, caperrs;
};

struct pending_row {
    struct import *im;
    long line;
    char id[64];
};

static void add_err(struct import *im, long line, char *text)
{
    if (im->nerrs == im->caperrs) {
        im->caperrs = im->caperrs ? im->caperrs * 2 : 64;
        im->errs = realloc(im->errs, im->caperrs * sizeof *im->errs);
    }
    im->errs[im->nerrs].line = line;
    im->errs[im->nerrs++].text = text;
    im->bad++;
}

static int cmp_err(const void *a, const void *b)
{
    long x = ((const struct row_err *)a)->line, y = ((const struct row_err *)b)->line;
    return x < y ? -1 : x > y;
}

/* A random (version 4) UUID, so that rows without an id still get one the
 * client knows, which makes the create idempotent across retries. */
static void uuid4(char out[37])
{
    uint8_t b[16];
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b) {
        for (int i = 0; i < 16; i++)
            b[i] = (uint8_t)rand();
    }
    if (fd >= 0)
        close(fd);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void row_done(sentra_async_call_t *call, int rc, ProtobufCMessage *resp, const sentra_status_t *st,
                     void *arg)
{
    struct pending_row *pr = arg;
    struct import *im = pr->im;
    im->inflight--;
    if (rc == 0) {
        im->ok++;
        protobuf_c_message_free_unpacked(resp, NULL);
    } else if (st->code == 6 /* ALREADY_EXISTS */ && im->skip_existing) {
        im->skipped++;
    } else {
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        fprintf(m, "%s", sentra_status_name(st->code));
        if (st->message && *st->message)
            fprintf(m, ": %s", st->message);
        for (size_t i = 0; i < st->n_violations; i++)
            fprintf(m, "\n    %s: %s", st->violations[i].field, st->violations[i].description);
        fclose(m);
        add_err(im, pr->line, text);
        /* Nothing more will get through without a server. */
        if (st->local && (rc == SENTRA_ECONNECT || rc == SENTRA_ECONNLOST || rc == SENTRA_ECLOSED))
            im->fatal = 1;
    }
    free(pr);
    cli_progress(im->cli, "imported", im->ok + im->bad + im->skipped, im->total_lines);
}

/* Sets obj.key (with "a.b" nesting) to v. */
static void set_path(json_t *obj, json_t *fig, const char *key, json_t *v)
{
    const char *dot = strchr(key, '.');
    if (!dot) {
        json_object_set_new(obj, key, v);
        return;
    }
    if (strncmp(key, "fig.", 4) == 0) {
        json_object_set_new(fig, dot + 1, v);
        return;
    }
    char parent[32];
    snprintf(parent, sizeof parent, "%.*s", (int)(dot - key), key);
    json_t *sub = json_object_get(obj, parent);
    if (!sub) {
        sub = json_object();
        json_object_set_new(obj, parent, sub);
    }
    json_object_set_new(sub, dot + 1, v);
}

/* Converts one record to a Sentra; NULL with the reasons in *why. */
static Sentra__V1__Sentra *row_to_sentra(struct import *im, char **why)
{
    json_t *obj = json_object(), *fig = json_object(), *earlier = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    int nerr = 0;
    for (int i = 0; i < im->nfields && i < im->nfilecols; i++) {
        int ci = im->colmap[i];
        const char *s = im->fields[i];
        if (ci < 0 || !s || !*s)
            continue;
        const struct column *col = &columns[ci];
        char *end;
        json_t *v = NULL;
        switch (col->kind) {
        case K_STR: v = json_string(s); break;
        case K_INT: {
            errno = 0;
            long long x = strtoll(s, &end, 10);
            if (*end || errno) {
                fprintf(m, "%s    %s: not an integer: \"%s\"", nerr++ ? "\n" : "", col->name, s);
                continue;
            }
            v = json_integer(x);
            break;
        }
        case K_DBL: {
            double x = strtod(s, &end);
            if (*end) {
                fprintf(m, "%s    %s: not a number: \"%s\"", nerr++ ? "\n" : "", col->name, s);
                continue;
            }
            v = json_real(x);
            break;
        }
        case K_ENUM: {
            int x = cli_enum_parse(col->ed, col->prefix, s);
            if (x < 0) {
                fprintf(m, "%s    %s: unknown value \"%s\"", nerr++ ? "\n" : "", col->name, s);
                continue;
            }
            v = json_string(protobuf_c_enum_descriptor_get_value(col->ed, x)->name);
            break;
        }
        case K_LIST: {
            v = json_array();
            char *copy = strdup(s), *save = NULL;
            for (char *t = strtok_r(copy, " ,;", &save); t; t = strtok_r(NULL, " ,;", &save))
                json_array_append_new(v, json_string(t));
            free(copy);
            break;
        }
        case K_JSON: {
            json_error_t je;
            earlier = json_loads(s, 0, &je);
            if (!json_is_array(earlier)) {
                fprintf(m, "%s    %s: not a JSON array of figures: %s", nerr++ ? "\n" : "", col->name,
                        earlier ? "not an array" : je.text);
                json_decref(earlier);
                earlier = NULL;
            }
            continue;
        }
        }
        set_path(obj, fig, col->key, v);
    }
    if (earlier || json_object_size(fig)) {
        json_t *arr = earlier ? earlier : json_array();
        if (json_object_size(fig))
            json_array_append(arr, fig);
        json_object_set_new(obj, "figures", arr);
    }
    Sentra__V1__Sentra *s = NULL;
    if (!nerr) {
        char err[256];
        s = (Sentra__V1__Sentra *)cli_json_to_pb(&sentra__v1__sentra__descriptor, obj, err, sizeof err);
        if (!s)
            fprintf(m, "    %s", err);
    }
    fclose(m);
    json_decref(obj);
    json_decref(fig);
    if (s) {
        free(text);
        *why = NULL;
    } else {
        *why = text;
    }
    return s;
}

static void submit_row(struct import *im)
{
    im->rows++;
    char *why = NULL;
    if (im->too_many) {
        add_err(im, im->rec_line, strdup("more fields than the header has columns"));
        return;
    }
    Sentra__V1__Sentra *s = row_to_sentra(im, &why);
    if (!s) {
        char *text;
        if (asprintf(&text, "not a valid row:\n%s", why) < 0)
            text = NULL;
        free(why);
        add_err(im, im->rec_line, text);
        return;
    }
    struct pending_row *pr = calloc(1, sizeof *pr);
    pr->im = im;
    pr->line = im->rec_line;
    if (!s->id || !*s->id) {
        uuid4(pr->id);
        if (s->id != (char *)protobuf_c_empty_string)
            free(s->id);
        s->id = strdup(pr->id);
    } else {
        snprintf(pr->id, sizeof pr->id, "%s", s->id);
    }
    char key[96];
    snprintf(key, sizeof key, "import-%s", pr->id);
    sentra_call_opts_t co = cli_call_opts(im->cli);
    co.idempotency_key = key;
    Sentra__V1__CreateSentraRequest rq = SENTRA__V1__CREATE_SENTRA_REQUEST__INIT;
    rq.sentra = s;
    while (im->inflight >= WINDOW)
        uv_run(&im->loop, UV_RUN_ONCE);
    if (!sentra_async_call(im->async, SENTRA_M_CREATE_SENTRA, &rq.base, &sentra__v1__sentra__descriptor, &co,
                           row_done, pr)) {
        add_err(im, pr->line, strdup("could not send (record too large?)"));
        free(pr);
    } else {
        im->inflight++;
    }
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void on_field(void *s, size_t len, void *data)
{
    struct import *im = data;
    if (im->nfields == 0)
        im->rec_line = im->line_start;
    if (im->nfields >= 64) {
        im->too_many = 1;
        return;
    }
    im->fields[im->nfields++] = s ? strndup(s, len) : NULL;
}

static void on_record(int c, void *data)
{
    struct import *im = data;
    if (im->nfields == 0)
        return;
    if (!im->have_header) {
        im->have_header = 1;
        im->nfilecols = im->nfields;
        for (int i = 0; i < im->nfields; i++) {
            im->colmap[i] = -1;
            const char *h = im->fields[i] ? im->fields[i] : "";
            for (int k = 0; k < NCOLS; k++)
                if (strcmp(h, columns[k].name) == 0)
                    im->colmap[i] = k;
            if (im->colmap[i] < 0 && *h) {
                fprintf(stderr, "%s import: %s:%ld: unknown column \"%s\" (see docs/CLIENT.md)\n", im->cli->prog,
                        im->path, im->rec_line, h);
                im->fatal = 2;
            }
        }
    } else if (!im->fatal) {
        if (im->nfields > im->nfilecols)
            im->too_many = 1;
        submit_row(im);
    }
    for (int i = 0; i < im->nfields && i < 64; i++)
        free(im->fields[i]);
    im->nfields = 0;
    im->too_many = 0;
}

int cmd_import(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {{"skip-existing", no_argument, 0, 's'}, CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    struct import im;
    memset(&im, 0, sizeof im);
    im.cli = cli;
    int c;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        switch (c) {
        case 's': im.skip_existing = 1; break;
        case 'h':
            printf("usage: %s import [--skip-existing] FILE.csv\n\n"
                   "Creates a sentra for every row of FILE.csv (the column layout of\n"
                   "docs/CLIENT.md; `export` writes it; the header row names the columns,\n"
                   "in any order, and columns may be left out). Valid rows are applied;\n"
                   "every refused row is reported with its line number and the reasons.\n"
                   "Rows without an id get a new UUID. Each row is created with the\n"
                   "idempotency key import-<id>, so an interrupted import can be re-run.\n"
                   "--skip-existing counts rows whose id exists already as skipped, not\n"
                   "refused. Exit 0 when every row was applied, 1 when some were refused.\n\n%s",
                   cli->prog, CLI_COMMON_HELP);
            return 0;
        default: return cli_usage_error(cli, "import", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(cli, "import", "wants one CSV file (- for stdin)");
    im.path = argv[optind];
    FILE *in = strcmp(im.path, "-") == 0 ? stdin : fopen(im.path, "r");
    if (!in) {
        fprintf(stderr, "%s import: %s: %s\n", cli->prog, im.path, strerror(errno));
        return CLI_EXIT_LOCAL;
    }
    if (in != stdin && isatty(2) && !cli->quiet) {
        int ch;
        while ((ch = getc(in)) != EOF)
            if (ch == '\n')
                im.total_lines++;
        im.total_lines = im.total_lines > 0 ? im.total_lines - 1 : 0; /* header */
        rewind(in);
    }
    sentra_client_opts_t opts;
    sentra_client_opts_init(&opts);
    opts.address = cli->addr;
    opts.token = cli->token;
    opts.default_deadline_ms = cli->deadline_ms;
    uv_loop_init(&im.loop);
    im.async = sentra_async_new(&im.loop, &opts);
    if (!im.async) {
        fprintf(stderr, "%s import: bad address \"%s\"\n", cli->prog, cli->addr ? cli->addr : "");
        uv_loop_close(&im.loop);
        if (in != stdin)
            fclose(in);
        return CLI_EXIT_USAGE;
    }
    struct csv_parser p;
    csv_init(&p, CSV_STRICT | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (!im.fatal && (n = getline(&line, &cap, in)) > 0) {
        im.cur_line++;
        char *start = line;
        if (im.cur_line == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            start += 3; /* a spreadsheet's UTF-8 byte order mark */
            n -= 3;
        }
        /* A record starts on a line that does not begin inside a quoted
         * field; every '"' toggles (an escaped "" toggles twice). This gives
         * a multi-line record the line number where it starts. */
        if (!im.in_quotes)
            im.line_start = im.cur_line;
        for (ssize_t i = 0; i < n; i++)
            if (start[i] == '"')
                im.in_quotes = !im.in_quotes;
        if (csv_parse(&p, start, (size_t)n, on_field, on_record, &im) != (size_t)n) {
            cli_progress_end(cli);
            fprintf(stderr, "%s import: %s:%ld: malformed CSV: %s; stopped here\n", cli->prog, im.path,
                    im.cur_line, csv_strerror(csv_error(&p)));
            rc = CLI_EXIT_LOCAL;
            break;
        }
    }
    if (!rc && !im.fatal && csv_fini(&p, on_field, on_record, &im) != 0) {
        fprintf(stderr, "%s import: %s:%ld: malformed CSV at the end of the file (unclosed quote?)\n",
                cli->prog, im.path, im.cur_line);
        rc = CLI_EXIT_LOCAL;
    }
    free(line);
    csv_free(&p);
    if (in != stdin)
        fclose(in);
    while (im.inflight > 0)
        uv_run(&im.loop, UV_RUN_ONCE);
    sentra_async_close(im.async, NULL, NULL);
    uv_run(&im.loop, UV_RUN_DEFAULT);
    uv_loop_close(&im.loop);
    cli_progress_end(cli);

    if (im.nerrs)
        qsort(im.errs, im.nerrs, sizeof *im.errs, cmp_err);
    for (size_t i = 0; i < im.nerrs; i++) {
        fprintf(stderr, "%s:%ld: %s\n", im.path, im.errs[i].line, im.errs[i].text ? im.errs[i].text : "refused");
        free(im.errs[i].text);
    }
    free(im.errs);
    if (im.fatal == 2)
        return CLI_EXIT_LOCAL;
    if (im.fatal)
        fprintf(stderr, "%s import: stopped: the server is unreachable\n", cli->prog);
    fprintf(stderr, "%ld rows: %ld imported, %ld refused%s", im.rows, im.ok, im.bad,
            im.skipped ? ", " : "\n");
    if (im.skipped)
        fprintf(stderr, "%ld skipped (already there)\n", im.skipped);
    if (cli->fmt == FMT_JSON)
        printf("{\"rows\":%ld,\"imported\":%ld,\"refused\":%ld,\"skipped\":%ld}\n", im.rows, im.ok, im.bad,
               im.skipped);
    if (rc)
        return rc;
    if (im.fatal)
        return CLI_EXIT_STATUS + 14;
    return im.bad ? CLI_EXIT_PARTIAL : CLI_EXIT_OK;
}
