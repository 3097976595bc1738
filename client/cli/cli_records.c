/*
 * cli_records.c: sentra-cli members | institution | obstacles | assistance:
 * the records of a sentra (RecordService): list (table, JSON lines, CSV),
 * get, create, update, delete, and import from CSV.
 *
 * One code path for the four kinds, driven by the protobuf descriptors:
 * fields are named by their paths ("owner_sex", "board.chair"), values
 * typed by the field's type (enums by their short names: "female",
 * "koperasi"), so that `--set path=value`, CSV columns and JSON share one
 * vocabulary. A CSV header names the paths, in any order; the columns
 * `export`-like listings write (--csv) are the same, so a listing can be
 * imported again elsewhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <csv.h>

#include "cli.h"

/* ---------------------------------------------------------------- the kinds */

typedef struct ckind {
    const char *cmd;                          /* "members" */
    const char *one;                          /* "member": the request's field */
    const ProtobufCMessageDescriptor *rec;    /* Member */
    const char *key;                          /* "id", or "sentra_id" */
    const char *m_create, *m_get, *m_update, *m_delete, *m_list;
    const ProtobufCMessageDescriptor *q_create, *q_get, *q_update, *q_delete, *q_list;
    const ProtobufCMessageDescriptor *r_list, *r_delete;
    const char *const *cols;                  /* the columns of a table listing */
} ckind_t;

static const char *const member_cols[] = {"id", "name", "owner_name", "owner_sex", "size_class",
                                          "workers_male", "workers_female", "nib", "joined_year",
                                          "left_year", NULL};
static const char *const institution_cols[] = {"sentra_id", "form", "board.chair", "facility.name",
                                               "facility.condition", "version", NULL};
static const char *const obstacle_cols[] = {"id", "reported_on", "category", "severity", "status",
                                            "resolved_on", "description", NULL};
static const char *const assistance_cols[] = {"id", "year", "kind", "provider", "programme",
                                              "value", "recipient_member_ids", NULL};

#define D(x) &sentra__v1__##x##__descriptor
static const ckind_t kinds[] = {
    {"members", "member", D(member), "id", SENTRA_M_CREATE_MEMBER, SENTRA_M_GET_MEMBER,
     SENTRA_M_UPDATE_MEMBER, SENTRA_M_DELETE_MEMBER, SENTRA_M_LIST_MEMBERS,
     D(create_member_request), D(get_member_request), D(update_member_request),
     D(delete_member_request), D(list_members_request), D(list_members_response),
     D(delete_record_response), member_cols},
    {"institution", "institution", D(institution), "sentra_id", SENTRA_M_SET_INSTITUTION,
     SENTRA_M_GET_INSTITUTION, SENTRA_M_SET_INSTITUTION, SENTRA_M_DELETE_INSTITUTION,
     SENTRA_M_LIST_INSTITUTIONS, D(set_institution_request), D(get_institution_request),
     D(set_institution_request), D(delete_institution_request), D(list_institutions_request),
     D(list_institutions_response), D(delete_record_response), institution_cols},
    {"obstacles", "obstacle", D(obstacle), "id", SENTRA_M_CREATE_OBSTACLE, SENTRA_M_GET_OBSTACLE,
     SENTRA_M_UPDATE_OBSTACLE, SENTRA_M_DELETE_OBSTACLE, SENTRA_M_LIST_OBSTACLES,
     D(create_obstacle_request), D(get_obstacle_request), D(update_obstacle_request),
     D(delete_obstacle_request), D(list_obstacles_request), D(list_obstacles_response),
     D(delete_record_response), obstacle_cols},
    {"assistance", "assistance", D(assistance), "id", SENTRA_M_CREATE_ASSISTANCE,
     SENTRA_M_GET_ASSISTANCE, SENTRA_M_UPDATE_ASSISTANCE, SENTRA_M_DELETE_ASSISTANCE,
     SENTRA_M_LIST_ASSISTANCE, D(create_assistance_request), D(get_assistance_request),
     D(update_assistance_request), D(delete_assistance_request), D(list_assistance_request),
     D(list_assistance_response), D(delete_record_response), assistance_cols},
};
#undef D

static int is_institution(const ckind_t *k)
{
    return strcmp(k->one, "institution") == 0;
}

/* ---------------------------------------------------------------- fields */

/* The prefix of an enum's value names: its zero value's name without
 * "UNSPECIFIED" ("SEX_" for SEX_UNSPECIFIED). */
static const char *enum_prefix(const ProtobufCEnumDescriptor *d, char *buf, size_t len)
{
    const ProtobufCEnumValue *z = protobuf_c_enum_descriptor_get_value(d, 0);
    const char *n = z ? z->name : "";
    const char *u = strstr(n, "UNSPECIFIED");
    size_t pl = u ? (size_t)(u - n) : 0;
    snprintf(buf, len, "%.*s", (int)pl, n);
    return buf;
}

/* The leaf field of path in d and, for a nested path, the outer field. */
static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d, const char *path,
                                                const ProtobufCFieldDescriptor **outer)
{
    char head[64];
    const char *dot = strchr(path, '.');
    *outer = NULL;
    if (!dot)
        return protobuf_c_message_descriptor_get_field_by_name(d, path);
    snprintf(head, sizeof head, "%.*s", (int)(dot - path), path);
    const ProtobufCFieldDescriptor *o = protobuf_c_message_descriptor_get_field_by_name(d, head);
    if (!o || o->type != PROTOBUF_C_TYPE_MESSAGE)
        return NULL;
    *outer = o;
    return protobuf_c_message_descriptor_get_field_by_name(o->descriptor, dot + 1);
}

/* Every field path of a record, nested messages flattened (the server's
 * column order, records.h): into out (at most max), returns how many. */
static size_t all_paths(const ProtobufCMessageDescriptor *d, char out[][64], size_t max)
{
    size_t n = 0;
    for (unsigned i = 0; i < d->n_fields && n < max; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED) {
            const ProtobufCMessageDescriptor *sub = f->descriptor;
            for (unsigned j = 0; j < sub->n_fields && n < max; j++)
                snprintf(out[n++], 64, "%s.%s", f->name, sub->fields[j].name);
        } else {
            snprintf(out[n++], 64, "%s", f->name);
        }
    }
    return n;
}

/* The text of field path of m: enums by short name, lists joined by ','.
 * Returns a malloc'ed string. */
static char *field_text(const ProtobufCMessage *m, const char *path)
{
    const ProtobufCFieldDescriptor *outer, *f = field_of(m->descriptor, path, &outer);
    const char *base = (const char *)m;
    char buf[64], pre[48];

    if (!f)
        return strdup("");
    if (outer) {
        base = *(const char *const *)(base + outer->offset);
        if (!base)
            return strdup("");
    }
    const char *p = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)(base + f->quantifier_offset), len = 1;
        char *const *v = *(char *const *const *)p;
        for (size_t i = 0; i < n; i++)
            len += strlen(v[i]) + 1;
        char *s = calloc(1, len);
        for (size_t i = 0; s && i < n; i++) {
            if (i)
                strcat(s, ",");
            strcat(s, v[i]);
        }
        return s;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return strdup(*(char *const *)p ? *(char *const *)p : "");
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        if (v == 0)
            return strdup("");
        return strdup(cli_enum_short(f->descriptor, enum_prefix(f->descriptor, pre, sizeof pre), v));
    }
    case PROTOBUF_C_TYPE_INT32:
        if (*(const int32_t *)p == 0)
            return strdup("");        /* years: 0 is "not known" */
        snprintf(buf, sizeof buf, "%d", *(const int32_t *)p);
        return strdup(buf);
    case PROTOBUF_C_TYPE_INT64:
        snprintf(buf, sizeof buf, "%lld", (long long)*(const int64_t *)p);
        return strdup(buf);
    case PROTOBUF_C_TYPE_BOOL:
        return strdup(*(const protobuf_c_boolean *)p ? "true" : "false");
    default:
        return strdup("");
    }
}

/* Sets path=value in the JSON object rec (nested paths in nested objects),
 * the value typed by the field. Returns 0, or -1 with a message on stderr. */
static int set_field(cli_t *cli, const ckind_t *k, json_t *rec, const char *path, const char *value)
{
    const ProtobufCFieldDescriptor *outer, *f = field_of(k->rec, path, &outer);
    char pre[48];
    json_t *v = NULL;

    if (!f) {
        fprintf(stderr, "%s %s: no field \"%s\" in a %s\n", cli->prog, k->cmd, path, k->one);
        return -1;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        v = json_array();
        char *copy = strdup(value), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(v, json_string(t));
        free(copy);
    } else {
        switch (f->type) {
        case PROTOBUF_C_TYPE_ENUM: {
            int e = value[0] ? cli_enum_parse(f->descriptor, enum_prefix(f->descriptor, pre, sizeof pre),
                                              value) : 0;
            if (e < 0) {
                fprintf(stderr, "%s %s: %s: unknown value \"%s\"\n", cli->prog, k->cmd, path, value);
                return -1;
            }
            v = json_integer(e);
            break;
        }
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_INT64: {
            char *end;
            long long n = value[0] ? strtoll(value, &end, 10) : 0;
            if (value[0] && *end) {
                fprintf(stderr, "%s %s: %s: \"%s\" is not a whole number\n", cli->prog, k->cmd, path, value);
                return -1;
            }
            v = json_integer(n);
            break;
        }
        case PROTOBUF_C_TYPE_BOOL:
            v = json_boolean(strcmp(value, "true") == 0 || strcmp(value, "1") == 0);
            break;
        default:
            v = json_string(value);
            break;
        }
    }
    if (outer) {
        json_t *sub = json_object_get(rec, outer->name);
        if (!sub) {
            sub = json_object();
            json_object_set_new(rec, outer->name, sub);
        }
        json_object_set_new(sub, f->name, v);
    } else {
        json_object_set_new(rec, f->name, v);
    }
    return 0;
}

/* ---------------------------------------------------------------- output */

static void print_one(cli_t *cli, const ckind_t *k, const ProtobufCMessage *m)
{
    char paths[48][64];
    size_t n = all_paths(k->rec, paths, 48);

    if (cli->fmt == FMT_JSON) {
        cli_print_json(m);
        return;
    }
    if (cli->fmt == FMT_CSV) {
        for (size_t i = 0; i < n; i++)
            cli_csv_field(stdout, paths[i], i + 1 < n ? ',' : '\n');
        for (size_t i = 0; i < n; i++) {
            char *s = field_text(m, paths[i]);
            cli_csv_field(stdout, s, i + 1 < n ? ',' : '\n');
            free(s);
        }
        return;
    }
    static const char *h[] = {"FIELD", "VALUE"};
    cli_table_t *t = cli_table_new(2, h);
    for (size_t i = 0; i < n; i++) {
        char *s = field_text(m, paths[i]);
        if (s[0]) {
            const char *cells[] = {paths[i], s};
            cli_table_row(t, cells);
        }
        free(s);
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

/* ---------------------------------------------------------------- calls */

/* Calls method with the request built from the JSON object req (taken). */
static int call_json(cli_t *cli, const ckind_t *k, const char *what, const char *method,
                     const ProtobufCMessageDescriptor *qd, json_t *req,
                     const ProtobufCMessageDescriptor *rd, ProtobufCMessage **out, const char *idem)
{
    char err[256];
    ProtobufCMessage *q = cli_json_to_pb(qd, req, err, sizeof err);
    json_decref(req);
    *out = NULL;
    if (!q) {
        fprintf(stderr, "%s %s %s: %s\n", cli->prog, k->cmd, what, err);
        return CLI_EXIT_USAGE;
    }
    sentra_client_t *cl = cli_client(cli);
    if (!cl) {
        protobuf_c_message_free_unpacked(q, NULL);
        return CLI_EXIT_USAGE;
    }
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    co.idempotency_key = idem;
    int rc = sentra_call(cl, method, q, rd, out, &co, &st);
    protobuf_c_message_free_unpacked(q, NULL);
    char label[64];
    snprintf(label, sizeof label, "%s %s", k->cmd, what);
    if (rc)
        rc = cli_fail(cli, label, rc, &st);
    sentra_status_clear(&st);
    return rc;
}

/* The version of record key now (for update and delete without one). */
static int current_version(cli_t *cli, const ckind_t *k, const char *key, long long *v)
{
    json_t *q = json_object();
    json_object_set_new(q, k->key, json_string(key));
    ProtobufCMessage *r;
    int rc = call_json(cli, k, "get", k->m_get, k->q_get, q, k->rec, &r, NULL);
    if (rc)
        return rc;
    char *s = field_text(r, "version");
    *v = strtoll(s, NULL, 10);
    free(s);
    protobuf_c_message_free_unpacked(r, NULL);
    return 0;
}

/* ---------------------------------------------------------------- list */

static int add_enums(cli_t *cli, json_t *f, const char *name, const ProtobufCEnumDescriptor *d,
                     const char *arg)
{
    char pre[48];
    json_t *arr = json_array();
    char *copy = strdup(arg), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int v = cli_enum_parse(d, enum_prefix(d, pre, sizeof pre), t);
        if (v < 0) {
            fprintf(stderr, "%s: --%s: unknown value \"%s\"\n", cli->prog, name, t);
            free(copy);
            json_decref(arr);
            return -1;
        }
        json_array_append_new(arr, json_integer(v));
    }
    free(copy);
    json_object_set_new(f, name, arr);
    return 0;
}

static int do_list(cli_t *cli, const ckind_t *k, int argc, char **argv)
{
    static const struct option o[] = {
        {"sentra", required_argument, 0, 's'}, {"regency", required_argument, 0, 'r'},
        {"province", required_argument, 0, 'P'}, {"size-class", required_argument, 0, 1},
        {"owner-sex", required_argument, 0, 2}, {"current", no_argument, 0, 3},
        {"category", required_argument, 0, 4}, {"status", required_argument, 0, 5},
        {"kind", required_argument, 0, 6}, {"provider", required_argument, 0, 7},
        {"year", required_argument, 0, 8}, {"page-size", required_argument, 0, 'p'},
        {"limit", required_argument, 0, 'n'}, {"desc", no_argument, 0, 'd'},
        {"total", no_argument, 0, 'T'}, CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    json_t *f = json_object();
    long limit = -1, page = 0;
    int desc = 0, total = 0, c, rc = 0;
    char pre[48];

    while ((c = getopt_long(argc, argv, "hs:r:P:p:n:dT", o, NULL)) != -1) {
        int r_ = cli_common_opt(cli, c, optarg);
        if (r_ < 0)
            goto usage;
        if (r_)
            continue;
        switch (c) {
        case 's': json_object_set_new(f, "sentra_id", json_string(optarg)); break;
        case 'r': json_object_set_new(f, "regency_code", json_string(optarg)); break;
        case 'P': json_object_set_new(f, "province_code", json_string(optarg)); break;
        case 1: if (add_enums(cli, f, "size_class", &sentra__v1__size_class__descriptor, optarg)) goto usage; break;
        case 2: {
            int v = cli_enum_parse(&sentra__v1__sex__descriptor,
                                   enum_prefix(&sentra__v1__sex__descriptor, pre, sizeof pre), optarg);
            if (v < 0) {
                fprintf(stderr, "%s: --owner-sex: male or female\n", cli->prog);
                goto usage;
            }
            json_object_set_new(f, "owner_sex", json_integer(v));
            break;
        }
        case 3: json_object_set_new(f, "current_only", json_true()); break;
        case 4: if (add_enums(cli, f, "category", &sentra__v1__obstacle_category__descriptor, optarg)) goto usage; break;
        case 5: if (add_enums(cli, f, "obstacle_status", &sentra__v1__obstacle_status__descriptor, optarg)) goto usage; break;
        case 6: if (add_enums(cli, f, "assistance_kind", &sentra__v1__assistance_kind__descriptor, optarg)) goto usage; break;
        case 7: if (add_enums(cli, f, "provider", &sentra__v1__provider__descriptor, optarg)) goto usage; break;
        case 8: json_object_set_new(f, "year", json_integer(strtol(optarg, NULL, 10))); break;
        case 'p': page = strtol(optarg, NULL, 10); break;
        case 'n': limit = strtol(optarg, NULL, 10); break;
        case 'd': desc = 1; break;
        case 'T': total = 1; break;
        case 'h':
            printf("usage: %s %s list [--sentra ID] [--regency CODE] [--province CODE]\n"
                   "       [--size-class small,medium,large] [--owner-sex male|female] [--current]  (members)\n"
                   "       [--category C,..] [--status open,in_progress,resolved]                   (obstacles)\n"
                   "       [--kind K,..] [--provider P,..] [--year Y]                               (assistance)\n"
                   "       [--page-size N] [--limit N] [--desc] [--total]\n\n"
                   "Lists the %s the token may read, page after page (keyset pages of\n"
                   "--page-size, default 100), until --limit records or the end. --total\n"
                   "prints the number of all matches on stderr. --csv writes every field\n"
                   "(the columns `%s import` reads).\n\n%s",
                   cli->prog, k->cmd, k->cmd, k->cmd, CLI_COMMON_HELP);
            json_decref(f);
            return 0;
        default:
            goto usage;
        }
    }
    if (optind != argc)
        goto usage;

    char paths[48][64];
    size_t np = all_paths(k->rec, paths, 48);
    size_t ncols = 0;
    while (k->cols[ncols])
        ncols++;
    cli_table_t *t = NULL;
    if (cli->fmt == FMT_TABLE) {
        const char *heads[16];
        char hb[16][64];
        for (size_t i = 0; i < ncols; i++) {
            size_t j = 0;
            for (; k->cols[i][j] && j < 63; j++)
                hb[i][j] = (char)(k->cols[i][j] >= 'a' && k->cols[i][j] <= 'z' ? k->cols[i][j] - 32
                                  : k->cols[i][j] == '.' ? '_' : k->cols[i][j]);
            hb[i][j] = 0;
            heads[i] = hb[i];
        }
        t = cli_table_new((int)ncols, heads);
    } else if (cli->fmt == FMT_CSV) {
        for (size_t i = 0; i < np; i++)
            cli_csv_field(stdout, paths[i], i + 1 < np ? ',' : '\n');
    }
    char *token = NULL;
    long shown = 0;
    for (;;) {
        json_t *q = json_object();
        json_object_set(q, "filter", f);
        json_object_set_new(q, "page_size", json_integer(limit > 0 && limit - shown < (page ? page : 100)
                                                             ? limit - shown : page));
        if (token)
            json_object_set_new(q, "page_token", json_string(token));
        if (total && !token)
            json_object_set_new(q, "include_total", json_true());
        if (desc)
            json_object_set_new(q, "descending", json_true());
        ProtobufCMessage *r;
        rc = call_json(cli, k, "list", k->m_list, k->q_list, q, k->r_list, &r, NULL);
        if (rc)
            break;
        const ProtobufCFieldDescriptor *fr = protobuf_c_message_descriptor_get_field(k->r_list, 1);
        const ProtobufCFieldDescriptor *ft = protobuf_c_message_descriptor_get_field(k->r_list, 2);
        const ProtobufCFieldDescriptor *fn = protobuf_c_message_descriptor_get_field(k->r_list, 3);
        size_t n = *(size_t *)((char *)r + fr->quantifier_offset);
        ProtobufCMessage **recs = *(ProtobufCMessage ***)((char *)r + fr->offset);
        const char *next = *(char **)((char *)r + ft->offset);
        if (total && !token)
            fprintf(stderr, "total: %lld\n", (long long)*(int64_t *)((char *)r + fn->offset));
        for (size_t i = 0; i < n && (limit < 0 || shown < limit); i++, shown++) {
            if (cli->fmt == FMT_JSON) {
                cli_print_json(recs[i]);
            } else if (cli->fmt == FMT_CSV) {
                for (size_t j = 0; j < np; j++) {
                    char *s = field_text(recs[i], paths[j]);
                    cli_csv_field(stdout, s, j + 1 < np ? ',' : '\n');
                    free(s);
                }
            } else {
                char *cells[16];
                for (size_t j = 0; j < ncols; j++) {
                    cells[j] = field_text(recs[i], k->cols[j]);
                    if (strlen(cells[j]) > 60)
                        strcpy(cells[j] + 57, "...");
                }
                cli_table_row(t, (const char *const *)cells);
                for (size_t j = 0; j < ncols; j++)
                    free(cells[j]);
            }
        }
        free(token);
        token = next && next[0] ? strdup(next) : NULL;
        protobuf_c_message_free_unpacked(r, NULL);
        if (!token || (limit >= 0 && shown >= limit))
            break;
    }
    free(token);
    if (t) {
        if (!rc)
            cli_table_print(t, stdout);
        cli_table_free(t);
    }
    json_decref(f);
    return rc;
usage:
    json_decref(f);
    return cli_usage_error(cli, k->cmd, "bad options for list");
}

/* ---------------------------------------------------------------- get, create, update, delete */

static int do_get(cli_t *cli, const ckind_t *k, int argc, char **argv)
{
    static const struct option o[] = {CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c, rc = 0;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        if (c == 'h') {
            printf("usage: %s %s get %s [%s..]\n\nShows records field by field (--json: one object\n"
                   "per line; --csv: a header and a row each).\n\n%s",
                   cli->prog, k->cmd, is_institution(k) ? "SENTRA_ID" : "ID",
                   is_institution(k) ? "SENTRA_ID" : "ID", CLI_COMMON_HELP);
            return 0;
        }
        return cli_usage_error(cli, k->cmd, "unknown option");
    }
    if (optind >= argc)
        return cli_usage_error(cli, k->cmd, "get wants an id");
    for (int i = optind; i < argc && !rc; i++) {
        json_t *q = json_object();
        json_object_set_new(q, k->key, json_string(argv[i]));
        ProtobufCMessage *r;
        rc = call_json(cli, k, "get", k->m_get, k->q_get, q, k->rec, &r, NULL);
        if (rc)
            break;
        if (i > optind && cli->fmt == FMT_TABLE)
            putchar('\n');
        print_one(cli, k, r);
        protobuf_c_message_free_unpacked(r, NULL);
    }
    return rc;
}

/* create (update = 0) or update: fields from --set path=value and/or a
 * JSON file (--file, the form --json prints). */
static int do_write(cli_t *cli, const ckind_t *k, int argc, char **argv, int update)
{
    static const struct option o[] = {{"set", required_argument, 0, 's'}, {"file", required_argument, 0, 'f'},
                                      {"sentra", required_argument, 0, 'S'},
                                      {"expected-version", required_argument, 0, 'v'},
                                      {"idempotency-key", required_argument, 0, 'k'},
                                      CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    json_t *rec = json_object(), *mask = json_array();
    const char *idem = NULL;
    long long expected = -1;
    int c, rc;

    while ((c = getopt_long(argc, argv, "hs:f:S:k:", o, NULL)) != -1) {
        int r_ = cli_common_opt(cli, c, optarg);
        if (r_ < 0)
            goto usage;
        if (r_)
            continue;
        switch (c) {
        case 's': {
            const char *eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "%s %s: --set wants PATH=VALUE\n", cli->prog, k->cmd);
                goto usage;
            }
            char path[64];
            snprintf(path, sizeof path, "%.*s", (int)(eq - optarg), optarg);
            if (set_field(cli, k, rec, path, eq + 1) < 0)
                goto usage;
            /* a nested path is updated with its message: "board" */
            char *dot = strchr(path, '.');
            if (dot)
                *dot = '\0';
            json_array_append_new(mask, json_string(path));
            break;
        }
        case 'f': {
            json_error_t je;
            json_t *j = strcmp(optarg, "-") == 0 ? json_loadf(stdin, 0, &je) : json_load_file(optarg, 0, &je);
            if (!j || !json_is_object(j)) {
                fprintf(stderr, "%s %s: %s: not one JSON object\n", cli->prog, k->cmd, optarg);
                json_decref(j);
                goto usage;
            }
            json_object_update(rec, j);
            const char *key;
            json_t *v;
            json_object_foreach(j, key, v) json_array_append_new(mask, json_string(key));
            json_decref(j);
            break;
        }
        case 'S': json_object_set_new(rec, "sentra_id", json_string(optarg)); break;
        case 'v': expected = strtoll(optarg, NULL, 10); break;
        case 'k': idem = optarg; break;
        case 'h':
            printf("usage: %s %s %s %s[--set PATH=VALUE].. [--file FILE.json] [--expected-version V]\n"
                   "       [--idempotency-key KEY]%s\n\n"
                   "%s. Fields are named by their paths (name, owner_sex, board.chair);\n"
                   "enums by short names (female, koperasi, raw_materials, resolved);\n"
                   "lists comma-separated. %s\n\n%s",
                   cli->prog, k->cmd, is_institution(k) ? "set" : update ? "update" : "create",
                   update ? (is_institution(k) ? "SENTRA_ID " : "ID ") : "",
                   update ? "" : " [--sentra SENTRA_ID]",
                   is_institution(k) ? "Creates or replaces the institution of a sentra (every field)"
                   : update ? "Changes the fields named (the others stay)" : "Creates a record",
                   update ? "Without --expected-version, the version on the server now is used." : "",
                   CLI_COMMON_HELP);
            json_decref(rec);
            json_decref(mask);
            return 0;
        default:
            goto usage;
        }
    }
    if (optind + (update ? 1 : 0) != argc)
        goto usage;
    if (update)
        json_object_set_new(rec, k->key, json_string(argv[optind]));
    if (update && expected < 0) {
        if (is_institution(k) && argc > optind) {
            /* a sentra without an institution (or with a tombstone) is at 0 */
            json_t *q = json_object();
            json_object_set_new(q, "sentra_id", json_string(argv[optind]));
            ProtobufCMessage *r = NULL;
            sentra_client_t *cl = cli_client(cli);
            char err[128];
            ProtobufCMessage *qm = cl ? cli_json_to_pb(k->q_get, q, err, sizeof err) : NULL;
            json_decref(q);
            sentra_status_t st;
            sentra_status_init(&st);
            expected = 0;
            if (qm && sentra_call(cl, k->m_get, qm, k->rec, &r, NULL, &st) == 0) {
                char *s = field_text(r, "version");
                expected = strtoll(s, NULL, 10);
                free(s);
                protobuf_c_message_free_unpacked(r, NULL);
            } else if (st.code != 5 /* NOT_FOUND: none yet */) {
                rc = cli_fail(cli, "institution set", SENTRA_ESTATUS, &st);
                sentra_status_clear(&st);
                if (qm)
                    protobuf_c_message_free_unpacked(qm, NULL);
                json_decref(rec);
                json_decref(mask);
                return rc;
            }
            sentra_status_clear(&st);
            if (qm)
                protobuf_c_message_free_unpacked(qm, NULL);
        } else if ((rc = current_version(cli, k, argv[optind], &expected)) != 0) {
            json_decref(rec);
            json_decref(mask);
            return rc;
        }
    }
    json_t *q = json_object();
    json_object_set_new(q, k->one, rec);
    const char *method = k->m_create;
    const ProtobufCMessageDescriptor *qd = k->q_create;
    if (is_institution(k)) {
        json_object_set_new(q, "expected_version", json_integer(expected > 0 ? expected : 0));
    } else if (update) {
        method = k->m_update;
        qd = k->q_update;
        json_object_set_new(q, "update_mask", mask);
        mask = NULL;
        json_object_set_new(q, "expected_version", json_integer(expected));
    }
    json_decref(mask);
    ProtobufCMessage *r;
    rc = call_json(cli, k, update ? "update" : "create", method, qd, q, k->rec, &r, idem);
    if (rc)
        return rc;
    print_one(cli, k, r);
    protobuf_c_message_free_unpacked(r, NULL);
    return 0;
usage:
    json_decref(rec);
    json_decref(mask);
    return cli_usage_error(cli, k->cmd, "bad options");
}

static int do_delete(cli_t *cli, const ckind_t *k, int argc, char **argv)
{
    static const struct option o[] = {{"expected-version", required_argument, 0, 'v'},
                                      {"idempotency-key", required_argument, 0, 'k'},
                                      CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    long long expected = -1;
    const char *idem = NULL;
    int c, rc;
    while ((c = getopt_long(argc, argv, "hk:", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        switch (c) {
        case 'v': expected = strtoll(optarg, NULL, 10); break;
        case 'k': idem = optarg; break;
        case 'h':
            printf("usage: %s %s delete %s [--expected-version V] [--idempotency-key KEY]\n\n"
                   "Deletes a record (a tombstone stays for sync). Without --expected-version\n"
                   "the version on the server now is used.\n\n%s",
                   cli->prog, k->cmd, is_institution(k) ? "SENTRA_ID" : "ID", CLI_COMMON_HELP);
            return 0;
        default: return cli_usage_error(cli, k->cmd, "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(cli, k->cmd, "delete wants one id");
    if (expected < 0 && (rc = current_version(cli, k, argv[optind], &expected)) != 0)
        return rc;
    json_t *q = json_object();
    json_object_set_new(q, k->key, json_string(argv[optind]));
    json_object_set_new(q, "expected_version", json_integer(expected));
    ProtobufCMessage *r;
    rc = call_json(cli, k, "delete", k->m_delete, k->q_delete, q, k->r_delete, &r, idem);
    if (rc)
        return rc;
    const Sentra__V1__DeleteRecordResponse *d = (const void *)r;
    if (cli->fmt == FMT_JSON)
        cli_print_json(r);
    else
        printf("deleted %s %s (tombstone version %lld)\n", k->one, d->id, (long long)d->version);
    protobuf_c_message_free_unpacked(r, NULL);
    return 0;
}

/* ---------------------------------------------------------------- import */

struct imp {
    cli_t *cli;
    const ckind_t *k;
    const char *path;
    const char *sentra;        /* --sentra: for rows without sentra_id */
    char **head;               /* the header's paths */
    size_t nhead;
    char **row;                /* the fields of the record being read */
    size_t nrow;
    long line, rows, ok, bad;
    int fatal;                 /* the server is unreachable: stop */
};

static void uuid4(char out[37])
{
    uint8_t b[16];
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b)
        for (int i = 0; i < 16; i++)
            b[i] = (uint8_t)rand();
    if (fd >= 0)
        close(fd);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void imp_field(void *s, size_t len, void *data)
{
    struct imp *im = data;
    im->row = realloc(im->row, (im->nrow + 1) * sizeof *im->row);
    im->row[im->nrow++] = s ? strndup(s, len) : strdup("");
}

/* One row: a create (an institution: a set over none), its id chosen here
 * when the row has none, with the idempotency key import-<kind>-<id>, so
 * that an interrupted import can be run again. */
static void imp_row(struct imp *im)
{
    cli_t *cli = im->cli;
    const ckind_t *k = im->k;
    json_t *rec = json_object();
    int bad = 0;

    for (size_t i = 0; i < im->nrow && i < im->nhead; i++) {
        const char *p = im->head[i];
        const ProtobufCFieldDescriptor *outer, *f = field_of(k->rec, p, &outer);
        const char *top = outer ? outer->name : p;
        if (!f || !im->row[i][0])
            continue;
        /* what the server sets is not imported (a listing's columns) */
        if (!outer && (strcmp(top, "version") == 0 || strcmp(top, "created_at_ms") == 0 ||
                       strcmp(top, "updated_at_ms") == 0 || strcmp(top, "created_by") == 0 ||
                       strcmp(top, "updated_by") == 0 || strcmp(top, "regency_code") == 0 ||
                       strcmp(top, "province_code") == 0 || strcmp(top, "deleted") == 0 ||
                       strcmp(top, "size_class") == 0))
            continue;
        if (set_field(cli, k, rec, p, im->row[i]) < 0)
            bad = 1;
    }
    if (!json_object_get(rec, "sentra_id") && im->sentra)
        json_object_set_new(rec, "sentra_id", json_string(im->sentra));
    char id[37];
    if (!is_institution(k)) {
        json_t *v = json_object_get(rec, "id");
        if (!v || !json_is_string(v) || !json_string_value(v)[0]) {
            uuid4(id);
            json_object_set_new(rec, "id", json_string(id));
        } else {
            snprintf(id, sizeof id, "%.36s", json_string_value(v));
        }
    } else {
        json_t *v = json_object_get(rec, "sentra_id");
        snprintf(id, sizeof id, "%.36s", v && json_is_string(v) ? json_string_value(v) : "");
    }
    im->rows++;
    if (bad) {
        fprintf(stderr, "%s:%ld: refused (see above)\n", im->path, im->line);
        im->bad++;
        json_decref(rec);
        return;
    }
    json_t *q = json_object();
    json_object_set_new(q, k->one, rec);
    if (is_institution(k))
        json_object_set_new(q, "expected_version", json_integer(0));
    char idem[96], err[256];
    snprintf(idem, sizeof idem, "import-%s-%s", k->one, id);
    ProtobufCMessage *qm = cli_json_to_pb(k->q_create, q, err, sizeof err);
    json_decref(q);
    if (!qm) {
        fprintf(stderr, "%s:%ld: %s\n", im->path, im->line, err);
        im->bad++;
        return;
    }
    sentra_client_t *cl = cli_client(cli);
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    co.idempotency_key = idem;
    ProtobufCMessage *r = NULL;
    int rc = cl ? sentra_call(cl, k->m_create, qm, k->rec, &r, &co, &st) : SENTRA_EINVAL;
    protobuf_c_message_free_unpacked(qm, NULL);
    if (rc == 0) {
        im->ok++;
        protobuf_c_message_free_unpacked(r, NULL);
    } else {
        im->bad++;
        fprintf(stderr, "%s:%ld: %s%s%s\n", im->path, im->line, sentra_status_name(st.code),
                st.message ? ": " : "", st.message ? st.message : "");
        for (size_t i = 0; i < st.n_violations; i++)
            fprintf(stderr, "  %s: %s\n", st.violations[i].field, st.violations[i].description);
        if (st.code == 14 || st.code == 16 || st.code == 7)
            im->fatal = 1;        /* every row would fail alike */
    }
    sentra_status_clear(&st);
}

static void imp_record(int ch, void *data)
{
    struct imp *im = data;
    (void)ch;
    if (im->head == NULL) {
        im->head = im->row;
        im->nhead = im->nrow;
    } else {
        if (!im->fatal)
            imp_row(im);
        for (size_t i = 0; i < im->nrow; i++)
            free(im->row[i]);
        free(im->row);
    }
    im->row = NULL;
    im->nrow = 0;
}

static int do_import(cli_t *cli, const ckind_t *k, int argc, char **argv)
{
    static const struct option o[] = {{"sentra", required_argument, 0, 's'}, CLI_COMMON_OPTIONS,
                                      {0, 0, 0, 0}};
    struct imp im = {.cli = cli, .k = k};
    int c;
    while ((c = getopt_long(argc, argv, "hs:", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        switch (c) {
        case 's': im.sentra = optarg; break;
        case 'h':
            printf("usage: %s %s import [--sentra SENTRA_ID] FILE.csv\n\n"
                   "Creates a %s for every row of FILE.csv (- for stdin). The header names\n"
                   "the fields by path, in any order (those `%s list --csv` writes; what\n"
                   "the server sets is ignored). --sentra gives the sentra of rows without a\n"
                   "sentra_id column. Rows without an id get a new UUID; every row carries\n"
                   "the idempotency key import-%s-<id>, so an interrupted import can be run\n"
                   "again. Refused rows are reported with their line. Exit 0 when every row\n"
                   "was applied, 1 when some were refused.\n\n%s",
                   cli->prog, k->cmd, k->one, k->cmd, k->one, CLI_COMMON_HELP);
            return 0;
        default: return cli_usage_error(cli, k->cmd, "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(cli, k->cmd, "import wants one CSV file");
    im.path = argv[optind];
    FILE *in = strcmp(im.path, "-") == 0 ? stdin : fopen(im.path, "r");
    if (!in) {
        fprintf(stderr, "%s %s import: %s: %s\n", cli->prog, k->cmd, im.path, strerror(errno));
        return CLI_EXIT_LOCAL;
    }
    struct csv_parser p;
    csv_init(&p, CSV_STRICT | CSV_APPEND_NULL);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0, in_quotes = 0;
    long cur = 0;
    while (!im.fatal && (n = getline(&line, &cap, in)) > 0) {
        char *start = line;
        cur++;
        if (cur == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            start += 3;            /* a spreadsheet's UTF-8 byte order mark */
            n -= 3;
        }
        if (!in_quotes)
            im.line = cur;         /* the line a record starts on */
        for (ssize_t i = 0; i < n; i++)
            if (start[i] == '"')
                in_quotes = !in_quotes;
        if (csv_parse(&p, start, (size_t)n, imp_field, imp_record, &im) != (size_t)n) {
            fprintf(stderr, "%s %s import: %s:%ld: malformed CSV: %s\n", cli->prog, k->cmd, im.path, cur,
                    csv_strerror(csv_error(&p)));
            rc = CLI_EXIT_LOCAL;
            break;
        }
    }
    if (!rc && !im.fatal && csv_fini(&p, imp_field, imp_record, &im) != 0) {
        fprintf(stderr, "%s %s import: %s: malformed CSV at the end (unclosed quote?)\n", cli->prog, k->cmd,
                im.path);
        rc = CLI_EXIT_LOCAL;
    }
    free(line);
    csv_free(&p);
    if (in != stdin)
        fclose(in);
    for (size_t i = 0; i < im.nhead; i++)
        free(im.head[i]);
    free(im.head);
    for (size_t i = 0; i < im.nrow; i++)
        free(im.row[i]);
    free(im.row);
    fprintf(stderr, "%ld rows: %ld imported, %ld refused\n", im.rows, im.ok, im.bad);
    if (cli->fmt == FMT_JSON)
        printf("{\"rows\":%ld,\"imported\":%ld,\"refused\":%ld}\n", im.rows, im.ok, im.bad);
    if (rc)
        return rc;
    if (im.fatal)
        return CLI_EXIT_STATUS + 14;
    return im.bad ? CLI_EXIT_PARTIAL : CLI_EXIT_OK;
}

/* ---------------------------------------------------------------- dispatch */

int cmd_records(cli_t *cli, int argc, char **argv)
{
    const ckind_t *k = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strcmp(argv[0], kinds[i].cmd) == 0)
            k = &kinds[i];
    if (!k)
        return cli_usage_error(cli, argv[0], "unknown kind of record");
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: %s %s ACTION [options]\n\nactions: list, get, %s, delete%s\n"
               "(`%s %s ACTION --help` describes each)\n",
               cli->prog, k->cmd, is_institution(k) ? "set" : "create, update",
               is_institution(k) ? ", import" : ", import", cli->prog, k->cmd);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const char *action = argv[1];
    argc--;
    argv++;
    if (strcmp(action, "list") == 0)
        return do_list(cli, k, argc, argv);
    if (strcmp(action, "get") == 0)
        return do_get(cli, k, argc, argv);
    if (strcmp(action, "create") == 0 && !is_institution(k))
        return do_write(cli, k, argc, argv, 0);
    if ((strcmp(action, "update") == 0 && !is_institution(k)) ||
        (strcmp(action, "set") == 0 && is_institution(k)))
        return do_write(cli, k, argc, argv, 1);
    if (strcmp(action, "delete") == 0)
        return do_delete(cli, k, argc, argv);
    if (strcmp(action, "import") == 0)
        return do_import(cli, k, argc, argv);
    return cli_usage_error(cli, k->cmd, "unknown action \"%s\"", action);
}
