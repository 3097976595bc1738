/*
 * cli_sentra.c: sentra-cli commands for records and regions: create, get,
 * update, delete, list, regions, region.
 *
 * create and update take a record from a JSON file (the proto3 JSON form
 * that `get --json` prints) and/or from flags; flags are merged into the
 * JSON before it is converted, so both paths share one converter and one
 * set of error messages.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* ---------------------------------------------------------------- flags */

struct sflag {
    const char *opt;   /* --opt */
    const char *key;   /* JSON key; "a.b" for nested, "figures.x" for figures */
    char kind;         /* s string, i integer, d double, e enum, l comma list */
    const ProtobufCEnumDescriptor *ed;
    const char *prefix;
};

static const struct sflag sflags[] = {
    {"id", "id", 's', 0, 0},
    {"name", "name", 's', 0, 0},
    {"regency", "regency_code", 's', 0, 0},
    {"district", "district_code", 's', 0, 0},
    {"village", "village_code", 's', 0, 0},
    {"address", "address", 's', 0, 0},
    {"lat", "location.latitude", 'd', 0, 0},
    {"lon", "location.longitude", 'd', 0, 0},
    {"commodity", "commodity", 's', 0, 0},
    {"product", "main_product", 's', 0, 0},
    {"kbli", "kbli_code", 's', 0, 0},
    {"kbli-version", "kbli_version", 'e', &sentra__v1__kbli_version__descriptor, "KBLI_VERSION_"},
    {"sector", "sector_group", 'e', &sentra__v1__sector_group__descriptor, "SECTOR_GROUP_"},
    {"status", "status", 'e', &sentra__v1__status__descriptor, "STATUS_"},
    {"formed-on", "formed_on", 's', 0, 0},
    {"decree-number", "decree.number", 's', 0, 0},
    {"decree-date", "decree.date", 's', 0, 0},
    {"decree-official", "decree.official", 's', 0, 0},
    {"contact-name", "contact_name", 's', 0, 0},
    {"contact-phone", "contact_phone", 's', 0, 0},
    {"year", "figures.year", 'i', 0, 0},
    {"units", "figures.business_units", 'i', 0, 0},
    {"workers-male", "figures.workers_male", 'i', 0, 0},
    {"workers-female", "figures.workers_female", 'i', 0, 0},
    {"investment", "figures.investment", 'i', 0, 0},
    {"production", "figures.production_value", 'i', 0, 0},
    {"material", "figures.material_value", 'i', 0, 0},
    {"capacity", "figures.capacity", 'i', 0, 0},
    {"capacity-unit", "figures.capacity_unit", 's', 0, 0},
    {"export-bp", "figures.export_share_bp", 'i', 0, 0},
    {"export-dest", "figures.export_destinations", 'l', 0, 0},
};
#define N_SFLAGS (int)(sizeof sflags / sizeof *sflags)
#define SFLAG_BASE 3000

#define SFLAG_HELP                                                                   \
    "record fields:\n"                                                               \
    "  --id UUID  --name TEXT  --regency CODE  --district CODE  --village CODE\n"    \
    "  --address TEXT  --lat DEG  --lon DEG  --commodity TEXT  --product TEXT\n"     \
    "  --kbli CODE  --kbli-version 2020|2025  --sector GROUP  --status STATUS\n"     \
    "  --formed-on YYYY-MM-DD  --decree-number TEXT  --decree-date YYYY-MM-DD\n"     \
    "  --decree-official TEXT  --contact-name TEXT  --contact-phone TEXT\n"          \
    "figures of one year (--year required with any of them):\n"                      \
    "  --year YYYY  --units N  --workers-male N  --workers-female N\n"               \
    "  --investment RP  --production RP  --material RP  --capacity N\n"              \
    "  --capacity-unit UNIT  --export-bp BASIS_POINTS  --export-dest CC[,CC..]\n"

static void add_sflag_options(struct option *o, int *n)
{
    for (int i = 0; i < N_SFLAGS; i++)
        o[(*n)++] = (struct option){sflags[i].opt, required_argument, 0, SFLAG_BASE + i};
}

/* Sets one flag's value in obj (the record) or fig (the figures object).
 * Returns 0 or -1 after printing why. */
static int apply_sflag(cli_t *cli, json_t *obj, json_t *fig, int idx, const char *arg)
{
    const struct sflag *f = &sflags[idx];
    json_t *v = NULL;
    char *end;
    switch (f->kind) {
    case 's': v = json_string(arg); break;
    case 'i': {
        long long x = strtoll(arg, &end, 10);
        if (!*arg || *end) {
            fprintf(stderr, "%s: --%s wants an integer, not \"%s\"\n", cli->prog, f->opt, arg);
            return -1;
        }
        v = json_integer(x);
        break;
    }
    case 'd': {
        double x = strtod(arg, &end);
        if (!*arg || *end) {
            fprintf(stderr, "%s: --%s wants a number, not \"%s\"\n", cli->prog, f->opt, arg);
            return -1;
        }
        v = json_real(x);
        break;
    }
    case 'e': {
        int x = cli_enum_parse(f->ed, f->prefix, arg);
        if (x < 0) {
            fprintf(stderr, "%s: --%s: unknown value \"%s\"; one of:", cli->prog, f->opt, arg);
            for (unsigned k = 1; k < f->ed->n_values; k++)
                fprintf(stderr, " %s", cli_enum_short(f->ed, f->prefix, f->ed->values[k].value));
            fputc('\n', stderr);
            return -1;
        }
        v = json_string(protobuf_c_enum_descriptor_get_value(f->ed, x)->name);
        break;
    }
    case 'l': {
        v = json_array();
        char *copy = strdup(arg), *save = NULL;
        for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
            json_array_append_new(v, json_string(t));
        free(copy);
        break;
    }
    }
    const char *dot = strchr(f->key, '.');
    if (!dot) {
        json_object_set_new(obj, f->key, v);
    } else if (strncmp(f->key, "figures.", 8) == 0) {
        json_object_set_new(fig, dot + 1, v);
    } else {
        char parent[32];
        snprintf(parent, sizeof parent, "%.*s", (int)(dot - f->key), f->key);
        json_t *sub = json_object_get(obj, parent);
        if (!json_is_object(sub)) {
            sub = json_object();
            json_object_set_new(obj, parent, sub);
        }
        json_object_set_new(sub, dot + 1, v);
    }
    return 0;
}

/* Puts the figures given by flags into obj.figures, replacing an entry of
 * the same year. Returns 0 or -1 (figures without --year). */
static int merge_figures(cli_t *cli, json_t *obj, json_t *fig)
{
    if (json_object_size(fig) == 0)
        return 0;
    json_t *year = json_object_get(fig, "year");
    if (!year) {
        fprintf(stderr, "%s: figures flags need --year\n", cli->prog);
        return -1;
    }
    json_t *arr = json_object_get(obj, "figures");
    if (!json_is_array(arr)) {
        arr = json_array();
        json_object_set_new(obj, "figures", arr);
    }
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        if (json_integer_value(json_object_get(e, "year")) == json_integer_value(year)) {
            json_object_update(e, fig);
            return 0;
        }
    }
    json_array_append(arr, fig);
    return 0;
}

static json_t *load_json_file(cli_t *cli, const char *path)
{
    json_error_t je;
    json_t *j = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &je) : json_load_file(path, 0, &je);
    if (!j)
        fprintf(stderr, "%s: %s:%d: %s\n", cli->prog, path, je.line, je.text);
    else if (!json_is_object(j)) {
        fprintf(stderr, "%s: %s: expected one JSON object (a sentra record)\n", cli->prog, path);
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* ---------------------------------------------------------------- printing */

static void flatten(json_t *j, const char *path, cli_table_t *t)
{
    char p[256];
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", k);
            flatten(v, p, t);
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        int scalars = 1;
        json_array_foreach(j, i, v) if (json_is_object(v) || json_is_array(v)) scalars = 0;
        if (scalars) {
            char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
            const char *cells[] = {path, s};
            cli_table_row(t, cells);
            free(s);
            return;
        }
        json_array_foreach(j, i, v) {
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            flatten(v, p, t);
        }
    } else {
        char *s = json_is_string(j) ? strdup(json_string_value(j)) : json_dumps(j, JSON_ENCODE_ANY);
        const char *cells[] = {path, s};
        cli_table_row(t, cells);
        free(s);
    }
}

/* A record as "field  value" lines (or one JSON line with --json). */
static void print_record(cli_t *cli, const ProtobufCMessage *m)
{
    if (cli->fmt == FMT_JSON) {
        cli_print_json(m);
        return;
    }
    json_t *j = cli_pb_to_json(m, 0);
    static const char *h[] = {"FIELD", "VALUE"};
    cli_table_t *t = cli_table_new(2, h);
    flatten(j, "", t);
    cli_table_print(t, stdout);
    cli_table_free(t);
    json_decref(j);
}

/* The figures with the highest year, or NULL. */
static const Sentra__V1__Figures *latest_figures(const Sentra__V1__Sentra *s)
{
    const Sentra__V1__Figures *best = NULL;
    for (size_t i = 0; i < s->n_figures; i++)
        if (!best || s->figures[i]->year > best->year)
            best = s->figures[i];
    return best;
}

/* ---------------------------------------------------------------- create/update */

static int write_cmd(cli_t *cli, int argc, char **argv, int update)
{
    const char *cmd = update ? "update" : "create";
    struct option common[] = {CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    /* The flags of a sentra, four of this command's, the common ones. */
    struct option o[N_SFLAGS + 4 + sizeof common / sizeof *common];
    int n = 0;
    add_sflag_options(o, &n);
    o[n++] = (struct option){"file", required_argument, 0, 'f'};
    o[n++] = (struct option){"idempotency-key", required_argument, 0, 'k'};
    o[n++] = (struct option){"mask", required_argument, 0, 'm'};
    o[n++] = (struct option){"expected-version", required_argument, 0, 'v'};
    for (size_t i = 0; i < sizeof common / sizeof *common; i++)
        o[n++] = common[i];

    json_t *obj = json_object(), *fig = json_object(), *file = NULL;
    const char *key = NULL, *mask = NULL;
    long long expected = 0;
    int c, rc = CLI_EXIT_USAGE;
    while ((c = getopt_long(argc, argv, "hf:k:", o, NULL)) != -1) {
        {
            int r_ = cli_common_opt(cli, c, optarg);
            if (r_ < 0)
                goto out;
            if (r_)
                continue;
        }
        if (c >= SFLAG_BASE && c < SFLAG_BASE + N_SFLAGS) {
            if (apply_sflag(cli, obj, fig, c - SFLAG_BASE, optarg) < 0)
                goto out;
            continue;
        }
        switch (c) {
        case 'f':
            if (!(file = load_json_file(cli, optarg))) {
                rc = CLI_EXIT_LOCAL;
                goto out;
            }
            break;
        case 'k': key = optarg; break;
        case 'm': mask = optarg; break;
        case 'v': expected = strtoll(optarg, NULL, 10); break;
        case 'h':
            if (update)
                printf("usage: %s update ID [--file RECORD.json] [field flags] [--mask F,F..]\n"
                       "                 [--expected-version V] [--idempotency-key KEY]\n\n"
                       "Changes the fields given (by flags, or present in the file; --mask\n"
                       "names them explicitly, e.g. --mask figures,decree). The update fails\n"
                       "with ABORTED (exit 20) when the record changed since the expected\n"
                       "version: --expected-version, else the file's \"version\", else the\n"
                       "version on the server now.\n\n%s\n%s",
                       cli->prog, SFLAG_HELP, CLI_COMMON_HELP);
            else
                printf("usage: %s create [--file RECORD.json|-] [field flags] [--idempotency-key KEY]\n\n"
                       "Creates a sentra from a JSON record (as `get --json` prints it) and/or\n"
                       "flags (flags win). Prints the stored record. With an idempotency key a\n"
                       "repeated create returns the first outcome and is retried safely.\n\n"
                       "example: %s create --name 'Sentra Keripik Pisang' --regency 18.71 \\\n"
                       "           --commodity 'keripik pisang' --kbli 10794 --sector food \\\n"
                       "           --status formed --formed-on 2021-03-01 --year 2023 --units 12\n\n%s\n%s",
                       cli->prog, cli->prog, SFLAG_HELP, CLI_COMMON_HELP);
            rc = 0;
            goto out;
        default:
            rc = cli_usage_error(cli, cmd, "unknown option");
            goto out;
        }
    }
    if (update) {
        if (optind + 1 != argc) {
            rc = cli_usage_error(cli, cmd, "wants one argument, the sentra ID");
            goto out;
        }
        json_object_set_new(obj, "id", json_string(argv[optind]));
    } else if (optind != argc) {
        rc = cli_usage_error(cli, cmd, "takes no arguments (use flags or --file)");
        goto out;
    }
    /* The mask: explicit, or every top-level field that was given. */
    json_t *maskarr = json_array();
    if (mask) {
        char *copy = strdup(mask), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(maskarr, json_string(t));
        free(copy);
    }
    if (file) {
        json_object_update_missing(obj, file);
        /* a nested object given by both: flags win field by field */
        json_t *fd = json_object_get(file, "decree");
        json_t *od = json_object_get(obj, "decree");
        if (json_is_object(fd) && json_is_object(od) && fd != od)
            json_object_update_missing(od, fd);
    }
    if (update && json_object_size(fig) && !json_object_get(obj, "figures")) {
        /* Figures flags change one year: the mask "figures" replaces the
         * whole list, so start from the years the server holds now. */
        sentra_client_t *gc = cli_client(cli);
        if (!gc) {
            json_decref(maskarr);
            goto out;
        }
        Sentra__V1__GetSentraRequest gq = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
        gq.id = argv[optind];
        Sentra__V1__Sentra *cur;
        sentra_status_t gst;
        sentra_status_init(&gst);
        sentra_call_opts_t gco = cli_call_opts(cli);
        int grc = sentra_get_sentra(gc, &gq, &cur, &gco, &gst);
        if (grc) {
            rc = cli_fail(cli, cmd, grc, &gst);
            sentra_status_clear(&gst);
            json_decref(maskarr);
            goto out;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < cur->n_figures; i++)
            json_array_append_new(arr, cli_pb_to_json(&cur->figures[i]->base, 0));
        json_object_set_new(obj, "figures", arr);
        if (!expected)
            expected = cur->version;
        sentra__v1__sentra__free_unpacked(cur, NULL);
        sentra_status_clear(&gst);
    }
    if (merge_figures(cli, obj, fig) < 0) {
        json_decref(maskarr);
        goto out;
    }
    if (!mask) {
        const char *k;
        json_t *v;
        json_object_foreach(obj, k, v) {
            if (strcmp(k, "id") && strcmp(k, "version"))
                json_array_append_new(maskarr, json_string(k));
        }
    }
    if (update && json_array_size(maskarr) == 0) {
        json_decref(maskarr);
        rc = cli_usage_error(cli, cmd, "nothing to change: give field flags or --file");
        goto out;
    }
    /* Output-only fields from a `get --json` dump would be refused. */
    static const char *output_only[] = {"version", "created_at_ms", "updated_at_ms", "created_by",
                                        "updated_by", "province_code", "deleted"};
    /* A record edited from `get --json` carries the version it was read at:
     * that is the version the update expects. */
    if (update && !expected && json_is_integer(json_object_get(obj, "version")))
        expected = json_integer_value(json_object_get(obj, "version"));
    for (size_t i = 0; i < sizeof output_only / sizeof *output_only; i++)
        json_object_del(obj, output_only[i]);

    char err[256];
    Sentra__V1__Sentra *s = (Sentra__V1__Sentra *)cli_json_to_pb(&sentra__v1__sentra__descriptor, obj, err, sizeof err);
    if (!s) {
        json_decref(maskarr);
        fprintf(stderr, "%s %s: %s\n", cli->prog, cmd, err);
        rc = CLI_EXIT_LOCAL;
        goto out;
    }
    sentra_client_t *cl = cli_client(cli);
    if (!cl) {
        json_decref(maskarr);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        goto out;
    }
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    Sentra__V1__Sentra *r = NULL;
    rc = 0;
    if (update && !expected) {
        /* No version given: update what is there now. */
        Sentra__V1__GetSentraRequest gq = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
        gq.id = s->id;
        Sentra__V1__Sentra *cur;
        rc = sentra_get_sentra(cl, &gq, &cur, &co, &st);
        if (rc == 0) {
            expected = cur->version;
            sentra__v1__sentra__free_unpacked(cur, NULL);
        }
    }
    if (rc) {
        rc = cli_fail(cli, cmd, rc, &st);
        json_decref(maskarr);
        protobuf_c_message_free_unpacked(&s->base, NULL);
        sentra_status_clear(&st);
        goto out;
    }
    co.idempotency_key = key;
    if (update) {
        Sentra__V1__UpdateSentraRequest rq = SENTRA__V1__UPDATE_SENTRA_REQUEST__INIT;
        rq.sentra = s;
        rq.expected_version = expected;
        rq.n_update_mask = json_array_size(maskarr);
        rq.update_mask = calloc(rq.n_update_mask + 1, sizeof(char *));
        for (size_t i = 0; i < rq.n_update_mask; i++)
            rq.update_mask[i] = (char *)json_string_value(json_array_get(maskarr, i));
        rc = sentra_update_sentra(cl, &rq, &r, &co, &st);
        free(rq.update_mask);
    } else {
        Sentra__V1__CreateSentraRequest rq = SENTRA__V1__CREATE_SENTRA_REQUEST__INIT;
        rq.sentra = s;
        rc = sentra_create_sentra(cl, &rq, &r, &co, &st);
    }
    json_decref(maskarr);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    if (rc) {
        rc = cli_fail(cli, cmd, rc, &st);
    } else {
        if (cli->fmt == FMT_TABLE)
            fprintf(stderr, "%s %s (version %lld)\n", update ? "updated" : "created", r->id, (long long)r->version);
        print_record(cli, &r->base);
        sentra__v1__sentra__free_unpacked(r, NULL);
    }
    sentra_status_clear(&st);
out:
    json_decref(obj);
    json_decref(fig);
    json_decref(file);
    return rc;
}

int cmd_create(cli_t *cli, int argc, char **argv) { return write_cmd(cli, argc, argv, 0); }
int cmd_update(cli_t *cli, int argc, char **argv) { return write_cmd(cli, argc, argv, 1); }

/* ---------------------------------------------------------------- get/delete */

int cmd_get(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        if (c == 'h') {
            printf("usage: %s get ID [ID..]\n\nShows sentra records: field by field, or one JSON\n"
                   "object per line with --json (the form create --file reads).\n\n%s",
                   cli->prog, CLI_COMMON_HELP);
            return 0;
        }
        return cli_usage_error(cli, "get", "unknown option");
    }
    if (optind >= argc)
        return cli_usage_error(cli, "get", "wants a sentra ID");
    sentra_client_t *cl = cli_client(cli);
    if (!cl)
        return CLI_EXIT_USAGE;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    int rc = 0;
    for (int i = optind; i < argc && !rc; i++) {
        Sentra__V1__GetSentraRequest rq = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
        rq.id = argv[i];
        Sentra__V1__Sentra *r;
        rc = sentra_get_sentra(cl, &rq, &r, &co, &st);
        if (rc) {
            rc = cli_fail(cli, "get", rc, &st);
            break;
        }
        if (i > optind && cli->fmt == FMT_TABLE)
            putchar('\n');
        print_record(cli, &r->base);
        sentra__v1__sentra__free_unpacked(r, NULL);
    }
    sentra_status_clear(&st);
    return rc;
}

int cmd_delete(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {{"expected-version", required_argument, 0, 'v'},
                                      {"idempotency-key", required_argument, 0, 'k'},
                                      CLI_COMMON_OPTIONS,
                                      {0, 0, 0, 0}};
    long long expected = 0;
    const char *key = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "hk:", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        switch (c) {
        case 'v': expected = strtoll(optarg, NULL, 10); break;
        case 'k': key = optarg; break;
        case 'h':
            printf("usage: %s delete ID [--expected-version V] [--idempotency-key KEY]\n\n"
                   "Deletes a sentra (a tombstone stays for sync). With --expected-version\n"
                   "it fails with ABORTED (exit 20) if the record changed since; without,\n"
                   "the version on the server now is used.\n\n%s",
                   cli->prog, CLI_COMMON_HELP);
            return 0;
        default: return cli_usage_error(cli, "delete", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(cli, "delete", "wants one sentra ID");
    sentra_client_t *cl = cli_client(cli);
    if (!cl)
        return CLI_EXIT_USAGE;
    Sentra__V1__DeleteSentraRequest rq = SENTRA__V1__DELETE_SENTRA_REQUEST__INIT;
    rq.id = argv[optind];
    rq.expected_version = expected;
    Sentra__V1__DeleteSentraResponse *r;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    int rc = 0;
    if (!expected) {
        /* The server wants the version the caller last saw; from the command
         * line that is the version there now. */
        Sentra__V1__GetSentraRequest gq = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
        gq.id = argv[optind];
        Sentra__V1__Sentra *cur;
        rc = sentra_get_sentra(cl, &gq, &cur, &co, &st);
        if (rc) {
            rc = cli_fail(cli, "delete", rc, &st);
            sentra_status_clear(&st);
            return rc;
        }
        rq.expected_version = cur->version;
        sentra__v1__sentra__free_unpacked(cur, NULL);
    }
    co.idempotency_key = key;
    rc = sentra_delete_sentra(cl, &rq, &r, &co, &st);
    if (rc) {
        rc = cli_fail(cli, "delete", rc, &st);
    } else {
        if (cli->fmt == FMT_JSON)
            cli_print_json(&r->base);
        else
            printf("deleted %s (tombstone version %lld)\n", r->id, (long long)r->version);
        sentra__v1__delete_sentra_response__free_unpacked(r, NULL);
    }
    sentra_status_clear(&st);
    return rc;
}

/* ---------------------------------------------------------------- list */

int cmd_list(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {CLI_FILTER_OPTIONS,
                                      {"all", no_argument, 0, 'a'},
                                      {"limit", required_argument, 0, 'n'},
                                      {"page-size", required_argument, 0, 'p'},
                                      {"page-token", required_argument, 0, 't'},
                                      {"order", required_argument, 0, 'o'},
                                      {"desc", no_argument, 0, 'd'},
                                      {"total", no_argument, 0, 'T'},
                                      CLI_COMMON_OPTIONS,
                                      {0, 0, 0, 0}};
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    Sentra__V1__ListSentraRequest rq = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
    int all = 0, rc = 0;
    long limit = 0;
    int c;
    while ((c = getopt_long(argc, argv, "han:", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        int r = cli_filter_opt(cli, &f, c, optarg);
        if (r < 0) {
            cli_filter_free(&f);
            return CLI_EXIT_USAGE;
        }
        if (r)
            continue;
        switch (c) {
        case 'a': all = 1; break;
        case 'n': limit = strtol(optarg, NULL, 10); break;
        case 'p': rq.page_size = (int32_t)strtol(optarg, NULL, 10); break;
        case 't': rq.page_token = optarg; break;
        case 'd': rq.descending = 1; break;
        case 'T': rq.include_total = 1; break;
        case 'o': {
            int v = cli_enum_parse(&sentra__v1__sentra_order__descriptor, "SENTRA_ORDER_", optarg);
            if (v < 0) {
                cli_filter_free(&f);
                return cli_usage_error(cli, "list", "--order: name, created or updated");
            }
            rq.order_by = v;
            break;
        }
        case 'h':
            printf("usage: %s list [filters] [--all | --limit N] [--order name|created|updated]\n"
                   "                [--desc] [--page-size N] [--page-token T] [--total]\n\n"
                   "Lists sentra the token may read. Without --all or --limit one page\n"
                   "(50 by default) is shown and the next page's token goes to stderr.\n"
                   "--csv writes the import/export column layout (docs/CLIENT.md).\n\n%s\n%s",
                   cli->prog, CLI_FILTER_HELP, CLI_COMMON_HELP);
            cli_filter_free(&f);
            return 0;
        default:
            cli_filter_free(&f);
            return cli_usage_error(cli, "list", "unknown option");
        }
    }
    if (optind != argc) {
        cli_filter_free(&f);
        return cli_usage_error(cli, "list", "takes no arguments");
    }
    sentra_client_t *cl = cli_client(cli);
    if (!cl) {
        cli_filter_free(&f);
        return CLI_EXIT_USAGE;
    }
    rq.filter = &f;
    if (limit > 0 && !rq.page_size)
        rq.page_size = limit > 1000 ? 1000 : (int32_t)limit;
    static const char *h[] = {"ID", "NAME", "REGENCY", "STATUS", "SECTOR", "KBLI", "YEAR", "UNITS", "WORKERS"};
    cli_table_t *t = cli_table_new(9, h);
    cli_table_align_right(t, 1u << 6 | 1u << 7 | 1u << 8);
    if (cli->fmt == FMT_CSV)
        cli_csv_write_header(stdout);
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    char *token = NULL;
    long shown = 0;
    long long total = -1;
    for (;;) {
        Sentra__V1__ListSentraResponse *r;
        rc = sentra_list_sentra(cl, &rq, &r, &co, &st);
        if (rc) {
            rc = cli_fail(cli, "list", rc, &st);
            break;
        }
        if (rq.include_total)
            total = r->total;
        for (size_t i = 0; i < r->n_sentra && (!limit || shown < limit); i++, shown++) {
            const Sentra__V1__Sentra *s = r->sentra[i];
            if (cli->fmt == FMT_JSON) {
                cli_print_json(&s->base);
            } else if (cli->fmt == FMT_CSV) {
                cli_csv_write_sentra(stdout, s);
            } else {
                const Sentra__V1__Figures *fg = latest_figures(s);
                char year[16] = "", units[32] = "", workers[32] = "";
                if (fg) {
                    snprintf(year, sizeof year, "%d", fg->year);
                    cli_num(units, sizeof units, fg->business_units);
                    cli_num(workers, sizeof workers, fg->workers_male + fg->workers_female);
                }
                const char *cells[] = {s->id, s->name, s->regency_code,
                                       cli_enum_short(&sentra__v1__status__descriptor, "STATUS_", s->status),
                                       cli_enum_short(&sentra__v1__sector_group__descriptor, "SECTOR_GROUP_",
                                                      s->sector_group),
                                       s->kbli_code, year, units, workers};
                cli_table_row(t, cells);
            }
        }
        free(token);
        token = r->next_page_token && *r->next_page_token ? strdup(r->next_page_token) : NULL;
        sentra__v1__list_sentra_response__free_unpacked(r, NULL);
        if (!token || (limit && shown >= limit) || (!all && !limit))
            break;
        rq.page_token = token;
        cli_progress(cli, "listing", shown, total);
    }
    cli_progress_end(cli);
    if (!rc && cli->fmt == FMT_TABLE) {
        cli_table_print(t, stdout);
        fprintf(stderr, "%ld shown", shown);
        if (total >= 0)
            fprintf(stderr, " of %lld", total);
        fputc('\n', stderr);
    }
    if (!rc && token && !all && !limit)
        fprintf(stderr, "more: --page-token %s (or --all)\n", token);
    free(token);
    cli_table_free(t);
    cli_filter_free(&f);
    sentra_status_clear(&st);
    return rc;
}

/* ---------------------------------------------------------------- regions */

int cmd_regions(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {{"parent", required_argument, 0, 'p'},
                                      {"level", required_argument, 0, 'l'},
                                      CLI_COMMON_OPTIONS,
                                      {0, 0, 0, 0}};
    Sentra__V1__ListRegionsRequest rq = SENTRA__V1__LIST_REGIONS_REQUEST__INIT;
    int c;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        switch (c) {
        case 'p': rq.parent_code = optarg; break;
        case 'l': {
            int v = cli_enum_parse(&sentra__v1__region_level__descriptor, "REGION_LEVEL_", optarg);
            if (v <= 0)
                return cli_usage_error(cli, "regions", "--level: province, regency, city, district or village");
            rq.level = v;
            break;
        }
        case 'h':
            printf("usage: %s regions [--parent CODE] [--level LEVEL] [PARENT]\n\n"
                   "Lists provinces, or the children of a region code (regencies and cities\n"
                   "of a province, districts of a regency, villages of a district).\n\n%s",
                   cli->prog, CLI_COMMON_HELP);
            return 0;
        default: return cli_usage_error(cli, "regions", "unknown option");
        }
    }
    if (optind < argc)
        rq.parent_code = argv[optind++];
    if (optind != argc)
        return cli_usage_error(cli, "regions", "takes at most one parent code");
    sentra_client_t *cl = cli_client(cli);
    if (!cl)
        return CLI_EXIT_USAGE;
    static const char *h[] = {"CODE", "LEVEL", "NAME", "PARENT", "BPS"};
    cli_table_t *t = cli_table_new(5, h);
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    char *token = NULL;
    int rc = 0;
    for (;;) {
        Sentra__V1__ListRegionsResponse *r;
        rc = sentra_list_regions(cl, &rq, &r, &co, &st);
        if (rc) {
            rc = cli_fail(cli, "regions", rc, &st);
            break;
        }
        for (size_t i = 0; i < r->n_regions; i++) {
            const Sentra__V1__Region *g = r->regions[i];
            if (cli->fmt == FMT_JSON) {
                cli_print_json(&g->base);
                continue;
            }
            const char *cells[] = {g->code, cli_enum_short(&sentra__v1__region_level__descriptor, "REGION_LEVEL_", g->level),
                                   g->name, g->parent_code, g->bps_code};
            cli_table_row(t, cells);
        }
        free(token);
        token = r->next_page_token && *r->next_page_token ? strdup(r->next_page_token) : NULL;
        sentra__v1__list_regions_response__free_unpacked(r, NULL);
        if (!token)
            break;
        rq.page_token = token;
    }
    free(token);
    if (!rc && cli->fmt == FMT_TABLE)
        cli_table_print(t, stdout);
    else if (!rc && cli->fmt == FMT_CSV)
        cli_table_print_csv(t, stdout);
    cli_table_free(t);
    sentra_status_clear(&st);
    return rc;
}

int cmd_region(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        if (c == 'h') {
            printf("usage: %s region CODE\n\nShows one region (Kemendagri code, e.g. 18.71).\n\n%s",
                   cli->prog, CLI_COMMON_HELP);
            return 0;
        }
        return cli_usage_error(cli, "region", "unknown option");
    }
    if (optind + 1 != argc)
        return cli_usage_error(cli, "region", "wants one region code");
    sentra_client_t *cl = cli_client(cli);
    if (!cl)
        return CLI_EXIT_USAGE;
    Sentra__V1__GetRegionRequest rq = SENTRA__V1__GET_REGION_REQUEST__INIT;
    rq.code = argv[optind];
    Sentra__V1__Region *r;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    int rc = sentra_get_region(cl, &rq, &r, &co, &st);
    if (rc) {
        rc = cli_fail(cli, "region", rc, &st);
    } else {
        print_record(cli, &r->base);
        sentra__v1__region__free_unpacked(r, NULL);
    }
    sentra_status_clear(&st);
    return rc;
}
