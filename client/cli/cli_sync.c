/*
 * cli_sync.c: sentra-cli sync pull / stream / push, on top of the library's
 * sync helper (sentra/sync.h), with plain files as the local storage:
 *
 *   pull: changes are appended to a JSONL journal (one record or tombstone
 *         per line: a sentra as its JSON; with --kinds, a Record, whose one
 *         key names the kind: {"member":{...}}) and the cursor is kept in a
 *         small file, replaced
 *         atomically after the journal is flushed to disk, so an interrupted
 *         pull resumes where the last complete batch ended.
 *   stream: the same store, over one StreamChanges stream (the catch-up,
 *         then each change as it commits), for --seconds.
 *   push: a JSONL file of mutations ({"mutation_id","op","sentra",
 *         "base_version"}) or of plain records (upserts whose base version
 *         is the record's `version`); each outcome is reported by line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sentra/sync.h>

#include "cli.h"

/* ---------------------------------------------------------------- pull */

struct pull_store {
    cli_t *cli;
    FILE *journal;
    const char *cursor_path;
};

static int pull_apply(void *arg, const Sentra__V1__Sentra *s)
{
    struct pull_store *ps = arg;
    json_t *j = cli_pb_to_json(&s->base, 0);
    char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    int rc = line && fprintf(ps->journal, "%s\n", line) > 0 ? 0 : -1;
    free(line);
    return rc;
}

/* With --kinds: the Record as its JSON, {"<kind>": {...}}, so that each
 * line says which kind it is. */
static int pull_apply_record(void *arg, const Sentra__V1__Record *r)
{
    struct pull_store *ps = arg;
    json_t *j = cli_pb_to_json(&r->base, 0);
    char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    int rc = line && fprintf(ps->journal, "%s\n", line) > 0 ? 0 : -1;
    free(line);
    return rc;
}

/* --kinds member,obstacle,...: RecordKind names (sentra, member,
 * institution, obstacle, assistance, or RECORD_KIND_*) into kinds[5], each
 * once; returns how many, or -1 with a message in err. */
static int parse_kinds(const char *arg, Sentra__V1__RecordKind *kinds, char *err, size_t errlen)
{
    char *copy = strdup(arg), *save = NULL;
    int n = 0;
    if (!copy)
        abort();
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = cli_enum_parse(&sentra__v1__record_kind__descriptor, "RECORD_KIND_", t);
        if (k < 1) {
            snprintf(err, errlen, "--kinds: unknown kind \"%s\" (sentra, member, institution, "
                     "obstacle, assistance)", t);
            n = -1;
            break;
        }
        for (int i = 0; i < n; i++)
            if ((int)kinds[i] == k) {
                snprintf(err, errlen, "--kinds: \"%s\" named twice", t);
                free(copy);
                return -1;
            }
        kinds[n++] = (Sentra__V1__RecordKind)k;
        if (n == 5 && strtok_r(NULL, ",", &save) != NULL) {
            snprintf(err, errlen, "--kinds: at most the 5 kinds, each once");
            n = -1;
            break;
        }
    }
    if (n == 0) {
        snprintf(err, errlen, "--kinds: names no kind");
        n = -1;
    }
    free(copy);
    return n;
}

static int pull_save_cursor(void *arg, const char *cursor)
{
    struct pull_store *ps = arg;
    if (fflush(ps->journal) != 0 || (ps->journal != stdout && fsync(fileno(ps->journal)) != 0))
        return -1;
    if (!ps->cursor_path)
        return 0;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", ps->cursor_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%s\n", cursor) > 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, ps->cursor_path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void pull_progress(void *arg, long done)
{
    struct pull_store *ps = arg;
    cli_progress(ps->cli, "pulled", done, -1);
}

/* sync pull, and sync stream (stream = 1): the same store, through
 * PullChanges until up to date, or StreamChanges for --seconds. */
static int sync_pull(cli_t *cli, int argc, char **argv, int stream)
{
    static const struct option o[] = {CLI_FILTER_OPTIONS,
                                      {"journal", required_argument, 0, 'j'},
                                      {"cursor-file", required_argument, 0, 'c'},
                                      {"batch", required_argument, 0, 'b'},
                                      {"seconds", required_argument, 0, 's'},
                                      {"kinds", required_argument, 0, 'k'},
                                      CLI_COMMON_OPTIONS,
                                      {0, 0, 0, 0}};
    const char *name = stream ? "sync stream" : "sync pull";
    unsigned seconds = 0;
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    struct pull_store ps = {cli, stdout, NULL};
    const char *journal = NULL;
    sentra_sync_opts_t so;
    memset(&so, 0, sizeof so);
    Sentra__V1__RecordKind kinds[5];
    sentra_sync_kinds_t sk = {kinds, 0, pull_apply_record};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        int r = cli_filter_opt(cli, &f, c, optarg);
        if (r < 0)
            return CLI_EXIT_USAGE;
        if (r)
            continue;
        switch (c) {
        case 'j': journal = optarg; break;
        case 'c': ps.cursor_path = optarg; break;
        case 'k': {
            char err[160];
            int n = parse_kinds(optarg, kinds, err, sizeof err);
            if (n < 0) {
                cli_filter_free(&f);
                return cli_usage_error(cli, name, err);
            }
            sk.n_kinds = (size_t)n;
            break;
        }
        case 'b': so.batch = (int32_t)strtol(optarg, NULL, 10); break;
        case 's':
            if (!stream) {
                cli_filter_free(&f);
                return cli_usage_error(cli, name, "--seconds is for sync stream");
            }
            seconds = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'h':
            if (stream) {
                printf("usage: %s sync stream [--journal FILE.jsonl] [--cursor-file FILE] [--batch N]\n"
                       "                  [--seconds S] [--kinds K,...] [filters]\n\n"
                       "Like sync pull, over one open stream (SyncService/StreamChanges): the\n"
                       "changes after the cursor in --cursor-file (none: from the beginning),\n"
                       "then each change as it commits, appended to the journal (default\n"
                       "stdout) as JSON lines, the cursor stored after each message is safely\n"
                       "on disk. Runs for --seconds (default: until interrupted; run it again\n"
                       "to resume where it stopped). Reconnects with backoff when the server\n"
                       "goes away or restarts. --kinds as for sync pull.\n\n%s\n%s",
                       cli->prog, CLI_FILTER_HELP, CLI_COMMON_HELP);
                cli_filter_free(&f);
                return 0;
            }
            printf("usage: %s sync pull [--journal FILE.jsonl] [--cursor-file FILE] [--batch N]\n"
                   "                [--kinds K,...] [filters]\n\n"
                   "Fetches every change after the cursor kept in --cursor-file (none: from\n"
                   "the beginning), appends each changed record or tombstone (\"deleted\":\n"
                   "true) as one JSON line to the journal (default stdout), and stores the\n"
                   "new cursor after each batch is safely on disk. Run it again to get only\n"
                   "what changed since. Retries with backoff while the server is away.\n\n"
                   "  --kinds K,...  the kinds of record to fetch: sentra, member, institution,\n"
                   "                 obstacle, assistance. Each line is then a Record, its one\n"
                   "                 key naming the kind ({\"member\":{...}}, tombstones with\n"
                   "                 \"deleted\":true). Without it, sentra only, each line the\n"
                   "                 sentra itself. Adding kinds later: start a new cursor file\n"
                   "                 (the old cursor has passed over their changes).\n\n%s\n%s",
                   cli->prog, CLI_FILTER_HELP, CLI_COMMON_HELP);
            cli_filter_free(&f);
            return 0;
        default:
            cli_filter_free(&f);
            return cli_usage_error(cli, name, "unknown option");
        }
    }
    char cursor[4096] = "";
    if (ps.cursor_path) {
        FILE *cf = fopen(ps.cursor_path, "r");
        if (cf) {
            if (fgets(cursor, sizeof cursor, cf))
                cursor[strcspn(cursor, "\r\n")] = 0;
            fclose(cf);
        } else if (errno != ENOENT) {
            fprintf(stderr, "%s %s: %s: %s\n", cli->prog, name, ps.cursor_path, strerror(errno));
            cli_filter_free(&f);
            return CLI_EXIT_LOCAL;
        }
    }
    if (journal && !(ps.journal = fopen(journal, "a"))) {
        fprintf(stderr, "%s %s: %s: %s\n", cli->prog, name, journal, strerror(errno));
        cli_filter_free(&f);
        return CLI_EXIT_LOCAL;
    }
    sentra_client_t *cl = cli_client(cli);
    int rc = CLI_EXIT_USAGE;
    if (cl) {
        so.filter = &f;
        sentra_sync_store_t store = {pull_apply, pull_save_cursor, NULL, NULL, pull_progress, &ps};
        sentra_sync_stats_t stats;
        sentra_status_t st;
        sentra_status_init(&st);
        if (stream)
            rc = sentra_sync_stream_kinds(cl, cursor, &so, &sk, seconds * 1000u, &store, &stats, &st);
        else
            rc = sentra_sync_pull_kinds(cl, cursor, &so, &sk, &store, &stats, &st);
        cli_progress_end(cli);
        if (rc == SENTRA_ESYNC) {
            fprintf(stderr, "%s %s: cannot write the journal or the cursor file: %s\n", cli->prog, name,
                    strerror(errno));
            rc = CLI_EXIT_LOCAL;
        } else if (rc) {
            rc = cli_fail(cli, name, rc, &st);
        } else {
            fprintf(stderr, "%s %ld changes in %ld %s (%ld retries)\n", stream ? "streamed" : "pulled",
                    stats.changes, stats.batches, stream ? "messages" : "batches", stats.retries);
        }
        sentra_status_clear(&st);
    }
    if (ps.journal != stdout && fclose(ps.journal) != 0 && rc == 0)
        rc = CLI_EXIT_LOCAL;
    cli_filter_free(&f);
    return rc;
}

/* ---------------------------------------------------------------- push */

struct push_item {
    Sentra__V1__Mutation *m;
    long line;
    int sent;
};

struct push_store {
    cli_t *cli;
    const char *path;
    struct push_item *items;
    size_t n, next;
    long not_applied;
};

static size_t push_next(void *arg, Sentra__V1__Mutation **out, size_t max)
{
    struct push_store *ps = arg;
    size_t k = 0;
    while (ps->next < ps->n && k < max)
        out[k++] = ps->items[ps->next++].m;
    return k;
}

static int push_result(void *arg, const Sentra__V1__Mutation *m, const Sentra__V1__MutationResult *r)
{
    struct push_store *ps = arg;
    long line = 0;
    for (size_t i = 0; i < ps->n; i++)
        if (ps->items[i].m == m)
            line = ps->items[i].line;
    if (ps->cli->fmt == FMT_JSON) {
        json_t *j = cli_pb_to_json(&r->base, 0);
        json_object_set_new(j, "line", json_integer(line));
        char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        puts(s);
        free(s);
        json_decref(j);
    }
    if (r->outcome == SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED)
        return 0;
    ps->not_applied++;
    if (r->outcome == SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_CONFLICT) {
        fprintf(stderr, "%s:%ld: %s: CONFLICT: the server has version %lld\n", ps->path, line, m->mutation_id,
                r->current ? (long long)r->current->version : 0LL);
    } else {
        fprintf(stderr, "%s:%ld: %s: REJECTED\n", ps->path, line, m->mutation_id);
        for (size_t i = 0; i < r->n_violations; i++)
            fprintf(stderr, "    %s: %s\n", r->violations[i]->field, r->violations[i]->description);
    }
    return 0;
}

static void push_progress(void *arg, long done)
{
    struct push_store *ps = arg;
    cli_progress(ps->cli, "pushed", done, (long)ps->n);
}

/* One input line as a Mutation; NULL with err set. */
static Sentra__V1__Mutation *line_to_mutation(json_t *j, char *err, size_t errlen)
{
    if (json_object_get(j, "op") || json_object_get(j, "mutation_id") || json_object_get(j, "mutationId"))
        return (Sentra__V1__Mutation *)cli_json_to_pb(&sentra__v1__mutation__descriptor, j, err, errlen);
    /* A plain record: an upsert based on the version it carries. */
    json_t *copy = json_deep_copy(j);
    /* int64 fields are strings in proto3 JSON (as sync pull writes them);
     * numbers are read too. Output-only fields under either name. */
    json_t *jv = json_object_get(copy, "version");
    json_int_t version = json_is_string(jv) ? strtoll(json_string_value(jv), NULL, 10) : json_integer_value(jv);
    static const char *output_only[] = {"version", "created_at_ms", "updated_at_ms", "created_by",
                                        "updated_by", "province_code", "deleted", "createdAtMs",
                                        "updatedAtMs", "createdBy", "updatedBy", "provinceCode"};
    int deleted = json_is_true(json_object_get(copy, "deleted"));
    for (size_t i = 0; i < sizeof output_only / sizeof *output_only; i++)
        json_object_del(copy, output_only[i]);
    Sentra__V1__Sentra *s = (Sentra__V1__Sentra *)cli_json_to_pb(&sentra__v1__sentra__descriptor, copy, err, errlen);
    json_decref(copy);
    if (!s)
        return NULL;
    if (!s->id || !*s->id) {
        snprintf(err, errlen, "a record needs its id");
        sentra__v1__sentra__free_unpacked(s, NULL);
        return NULL;
    }
    Sentra__V1__Mutation *m = calloc(1, sizeof *m);
    sentra__v1__mutation__init(m);
    m->sentra = s;
    m->op = deleted ? SENTRA__V1__MUTATION_OP__MUTATION_OP_DELETE : SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT;
    m->base_version = version;
    if (asprintf(&m->mutation_id, "%s@%lld%s", s->id, (long long)version, deleted ? "-del" : "") < 0)
        m->mutation_id = NULL;
    return m;
}

static int sync_push(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {{"client-id", required_argument, 0, 'i'},
                                      {"batch", required_argument, 0, 'b'},
                                      CLI_COMMON_OPTIONS,
                                      {0, 0, 0, 0}};
    const char *client_id = NULL;
    sentra_sync_opts_t so;
    memset(&so, 0, sizeof so);
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        switch (c) {
        case 'i': client_id = optarg; break;
        case 'b': so.batch = (int32_t)strtol(optarg, NULL, 10); break;
        case 'h':
            printf("usage: %s sync push --client-id ID FILE.jsonl\n\n"
                   "Sends local changes: each line of FILE.jsonl is a mutation\n"
                   "  {\"mutation_id\":\"m1\",\"op\":\"MUTATION_OP_UPSERT\",\"sentra\":{...},\"base_version\":3}\n"
                   "or a plain record (as `get --json` or `sync pull` print it), sent as an\n"
                   "upsert based on its \"version\" (a tombstone as a delete). Conflicts and\n"
                   "rejections are reported by line; exit 1 when any mutation was not\n"
                   "applied. Batches are retried with backoff and idempotency keys.\n\n%s",
                   cli->prog, CLI_COMMON_HELP);
            return 0;
        default: return cli_usage_error(cli, "sync push", "unknown option");
        }
    }
    if (!client_id)
        return cli_usage_error(cli, "sync push", "wants --client-id (one per device/app install)");
    if (optind + 1 != argc)
        return cli_usage_error(cli, "sync push", "wants one JSONL file (- for stdin)");
    struct push_store ps;
    memset(&ps, 0, sizeof ps);
    ps.cli = cli;
    ps.path = argv[optind];
    FILE *in = strcmp(ps.path, "-") == 0 ? stdin : fopen(ps.path, "r");
    if (!in) {
        fprintf(stderr, "%s sync push: %s: %s\n", cli->prog, ps.path, strerror(errno));
        return CLI_EXIT_LOCAL;
    }
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    long lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, in) > 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == 0)
            continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        char err[256] = "";
        Sentra__V1__Mutation *m = NULL;
        if (!j)
            snprintf(err, sizeof err, "not JSON: %s", je.text);
        else if (!json_is_object(j))
            snprintf(err, sizeof err, "not a JSON object");
        else
            m = line_to_mutation(j, err, sizeof err);
        json_decref(j);
        if (!m) {
            fprintf(stderr, "%s:%ld: %s\n", ps.path, lineno, err);
            rc = CLI_EXIT_LOCAL;
            continue;
        }
        if (ps.n == alloc) {
            alloc = alloc ? alloc * 2 : 256;
            ps.items = realloc(ps.items, alloc * sizeof *ps.items);
        }
        ps.items[ps.n].m = m;
        ps.items[ps.n].line = lineno;
        ps.items[ps.n++].sent = 0;
    }
    free(line);
    if (in != stdin)
        fclose(in);
    if (rc) {
        fprintf(stderr, "%s sync push: nothing sent: fix the lines above first\n", cli->prog);
    } else {
        sentra_client_t *cl = cli_client(cli);
        if (!cl) {
            rc = CLI_EXIT_USAGE;
        } else {
            sentra_sync_store_t store = {NULL, NULL, push_next, push_result, push_progress, &ps};
            sentra_sync_stats_t stats;
            sentra_status_t st;
            sentra_status_init(&st);
            rc = sentra_sync_push(cl, client_id, &so, &store, &stats, &st);
            cli_progress_end(cli);
            if (rc) {
                rc = cli_fail(cli, "sync push", rc, &st);
            } else {
                fprintf(stderr, "pushed %zu mutations: %ld applied, %ld conflicts, %ld rejected (%ld retries)\n",
                        ps.n, stats.applied, stats.conflicts, stats.rejected, stats.retries);
                rc = ps.not_applied ? CLI_EXIT_PARTIAL : 0;
            }
            sentra_status_clear(&st);
        }
    }
    for (size_t i = 0; i < ps.n; i++)
        protobuf_c_message_free_unpacked(&ps.items[i].m->base, NULL);
    free(ps.items);
    return rc;
}

int cmd_sync(cli_t *cli, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "pull") == 0)
        return sync_pull(cli, argc - 1, argv + 1, 0);
    if (argc >= 2 && strcmp(argv[1], "stream") == 0)
        return sync_pull(cli, argc - 1, argv + 1, 1);
    if (argc >= 2 && strcmp(argv[1], "push") == 0)
        return sync_push(cli, argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: %s sync pull [options]     (see sync pull --help)\n"
               "       %s sync stream [options]   (see sync stream --help)\n"
               "       %s sync push [options]     (see sync push --help)\n",
               cli->prog, cli->prog, cli->prog);
        return 0;
    }
    return cli_usage_error(cli, "sync", "wants pull, stream or push");
}
