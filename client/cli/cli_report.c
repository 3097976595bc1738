/*
 * cli_report.c: sentra-cli report --province CODE: the brief a provincial
 * office takes to its coordination meeting (issue 18). Per regency/city of
 * the province: sentra formed and designated, member businesses (women-
 * owned among them), sentra with an institution, obstacles still open (and
 * the categories most of them fall in), assistance received in the year;
 * then the province's total. Three GetStatistics calls (docs/STATS.md):
 * sentra by regency, open obstacles by regency and category, assistance by
 * regency and year. As an aligned table, CSV, or one JSON object per line.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define TOP 3                    /* obstacle categories named per regency */
#define MAX_ROWS 64              /* a province has fewer regencies/cities */
#define MAX_CATS 11

typedef struct regency_line {
    char code[16];
    char name[128];
    const Sentra__V1__StatsRow *sentra;    /* the SENTRA subject's row */
    int64_t open[MAX_CATS];                /* open + in progress, by category */
    int64_t aid_count, aid_value;          /* in the year */
} regency_line_t;

static const char *category_key[MAX_CATS] = {
    "", "raw_materials", "technology", "quality", "marketing", "capital", "human_resources",
    "infrastructure", "permits", "institution", "other"
};
static const char *category_label[MAX_CATS] = {
    "", "bahan baku", "teknologi dan mesin", "mutu dan sertifikasi", "pemasaran", "permodalan",
    "SDM", "infrastruktur", "perizinan", "kelembagaan", "lainnya"
};

static int category_of(const char *key)
{
    for (int i = 1; i < MAX_CATS; i++)
        if (strcmp(key, category_key[i]) == 0)
            return i;
    return 0;
}

static int stats_call(cli_t *cli, const char *province, int subject, const Sentra__V1__GroupBy *g,
                      size_t ng, Sentra__V1__GetStatisticsResponse **out)
{
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    Sentra__V1__GetStatisticsRequest rq = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
    f.province_code = (char *)province;
    rq.filter = &f;
    rq.group_by = (Sentra__V1__GroupBy *)g;
    rq.n_group_by = ng;
    rq.subject = subject;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    int rc = sentra_get_statistics(cli_client(cli), &rq, out, &co, &st);
    if (rc)
        rc = cli_fail(cli, "report", rc, &st);
    sentra_status_clear(&st);
    return rc;
}

/* The top categories of open obstacles of line l, as "bahan baku 4, ..."
 * (or as keys, for CSV/JSON), into idx[TOP] (0: none). */
static int top_categories(const regency_line_t *l, int idx[TOP])
{
    int n = 0;
    int used[MAX_CATS] = {0};
    for (int t = 0; t < TOP; t++) {
        int best = 0;
        for (int c = 1; c < MAX_CATS; c++)
            if (!used[c] && l->open[c] > 0 && (best == 0 || l->open[c] > l->open[best]))
                best = c;
        idx[t] = best;
        if (best) {
            used[best] = 1;
            n++;
        }
    }
    return n;
}

int cmd_report(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {{"province", required_argument, 0, 'p'},
                                      {"year", required_argument, 0, 'y'},
                                      CLI_COMMON_OPTIONS,
                                      {0, 0, 0, 0}};
    const char *province = NULL;
    int year = 0, c, rc;
    while ((c = getopt_long(argc, argv, "hp:y:", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        switch (c) {
        case 'p': province = optarg; break;
        case 'y': year = atoi(optarg); break;
        case 'h':
            printf("usage: %s report --province CODE [--year YEAR]\n\n"
                   "The brief of a province for its coordination meeting: per regency/city,\n"
                   "sentra formed and designated, member businesses (women-owned), sentra\n"
                   "with an institution, obstacles still open (open or being handled) and\n"
                   "the %d categories most of them fall in, and the assistance received in\n"
                   "YEAR (default: this year); then the province's total. --csv and --json\n"
                   "(one object per regency, then the total) for spreadsheets and scripts.\n\n%s",
                   cli->prog, TOP, CLI_COMMON_HELP);
            return 0;
        default: return cli_usage_error(cli, "report", "unknown option");
        }
    }
    if (!province || optind != argc)
        return cli_usage_error(cli, "report", "wants --province CODE");
    if (year == 0) {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        year = tm.tm_year + 1900;
    }
    if (!cli_client(cli))
        return CLI_EXIT_USAGE;

    Sentra__V1__GetStatisticsResponse *rs = NULL, *ro = NULL, *ra = NULL;
    Sentra__V1__GroupBy g_reg[] = {SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY};
    Sentra__V1__GroupBy g_obs[] = {SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY,
                                   SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_CATEGORY};
    Sentra__V1__GroupBy g_aid[] = {SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY,
                                   SENTRA__V1__GROUP_BY__GROUP_BY_ASSISTANCE_YEAR};
    if ((rc = stats_call(cli, province, SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_SENTRA, g_reg, 1, &rs)) ||
        (rc = stats_call(cli, province, SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_OBSTACLES, g_obs, 2, &ro)) ||
        (rc = stats_call(cli, province, SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_ASSISTANCE, g_aid, 2, &ra)))
        goto out;

    regency_line_t lines[MAX_ROWS + 1];
    size_t n = 0;
    memset(lines, 0, sizeof lines);
    for (size_t i = 0; i < rs->n_rows && n < MAX_ROWS; i++, n++) {
        snprintf(lines[n].code, sizeof lines[n].code, "%s", rs->rows[i]->keys[0]);
        snprintf(lines[n].name, sizeof lines[n].name, "%s", rs->rows[i]->labels[0]);
        lines[n].sentra = rs->rows[i];
    }
    regency_line_t *total = &lines[n];
    snprintf(total->name, sizeof total->name, "Total");
    total->sentra = rs->total;
    for (size_t i = 0; i < ro->n_rows; i++) {
        const Sentra__V1__StatsRow *r = ro->rows[i];
        int cat = category_of(r->keys[1]);
        for (size_t j = 0; j < n; j++)
            if (strcmp(lines[j].code, r->keys[0]) == 0) {
                lines[j].open[cat] += r->obstacles_open + r->obstacles_in_progress;
                total->open[cat] += r->obstacles_open + r->obstacles_in_progress;
            }
    }
    char ybuf[16];
    snprintf(ybuf, sizeof ybuf, "%d", year);
    for (size_t i = 0; i < ra->n_rows; i++) {
        const Sentra__V1__StatsRow *r = ra->rows[i];
        if (strcmp(r->keys[1], ybuf) != 0)
            continue;
        for (size_t j = 0; j < n; j++)
            if (strcmp(lines[j].code, r->keys[0]) == 0) {
                lines[j].aid_count += r->assistance_count;
                lines[j].aid_value += r->assistance_value;
                total->aid_count += r->assistance_count;
                total->aid_value += r->assistance_value;
            }
    }

    static const char *heads[] = {"REGENCY", "NAME", "FORMED", "DESIGNATED", "MEMBERS",
                                  "WOMEN-OWNED", "INSTITUTION", "OPEN OBSTACLES", "TOP OPEN CATEGORIES",
                                  "AID", "AID VALUE (RP)"};
    cli_table_t *t = cli_table_new(11, heads);
    cli_table_align_right(t, 0x6fc);
    if (cli->fmt == FMT_CSV)
        printf("regency,name,formed,designated,members,members_female_owned,with_institution,"
               "obstacles_open,top_open_1,top_open_2,top_open_3,assistance_year,assistance_count,"
               "assistance_value\n");
    for (size_t j = 0; j <= n; j++) {
        regency_line_t *l = &lines[j];
        const Sentra__V1__StatsRow *s = l->sentra;
        int top[TOP];
        int nt = top_categories(l, top);
        int64_t open = 0;
        for (int cat = 1; cat < MAX_CATS; cat++)
            open += l->open[cat];
        if (cli->fmt == FMT_JSON) {
            json_t *obj = json_object();
            json_object_set_new(obj, "regency", json_string(l->code));
            json_object_set_new(obj, "name", json_string(l->name));
            json_object_set_new(obj, "formed", json_integer(s->sentra));
            json_object_set_new(obj, "designated", json_integer(s->designated));
            json_object_set_new(obj, "members", json_integer(s->members));
            json_object_set_new(obj, "members_female_owned", json_integer(s->members_female_owned));
            json_object_set_new(obj, "with_institution", json_integer(s->with_institution));
            json_object_set_new(obj, "obstacles_open", json_integer(open));
            json_t *arr = json_array();
            for (int i = 0; i < nt; i++) {
                json_t *e = json_object();
                json_object_set_new(e, "category", json_string(category_key[top[i]]));
                json_object_set_new(e, "open", json_integer(l->open[top[i]]));
                json_array_append_new(arr, e);
            }
            json_object_set_new(obj, "top_open_categories", arr);
            json_object_set_new(obj, "assistance_year", json_integer(year));
            json_object_set_new(obj, "assistance_count", json_integer(l->aid_count));
            json_object_set_new(obj, "assistance_value", json_integer(l->aid_value));
            char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
            puts(line);
            free(line);
            json_decref(obj);
            continue;
        }
        if (cli->fmt == FMT_CSV) {
            char num[32];
            const char *cells[14];
            char b[14][48];
            long long v[] = {s->sentra, s->designated, s->members, s->members_female_owned,
                             s->with_institution, open};
            cells[0] = l->code;
            cells[1] = l->name;
            for (int i = 0; i < 6; i++) {
                snprintf(b[i], sizeof b[i], "%lld", v[i]);
                cells[2 + i] = b[i];
            }
            for (int i = 0; i < TOP; i++)
                cells[8 + i] = top[i] ? category_key[top[i]] : "";
            snprintf(num, sizeof num, "%d", year);
            snprintf(b[6], sizeof b[6], "%lld", (long long)l->aid_count);
            snprintf(b[7], sizeof b[7], "%lld", (long long)l->aid_value);
            cells[11] = num;
            cells[12] = b[6];
            cells[13] = b[7];
            for (int i = 0; i < 14; i++)
                cli_csv_field(stdout, cells[i], i < 13 ? ',' : '\n');
            continue;
        }
        char b[10][64], tops[256] = "";
        for (int i = 0; i < nt; i++) {
            size_t len = strlen(tops);
            snprintf(tops + len, sizeof tops - len, "%s%s %lld", i ? ", " : "", category_label[top[i]],
                     (long long)l->open[top[i]]);
        }
        cli_num(b[0], 64, s->sentra);
        cli_num(b[1], 64, s->designated);
        cli_num(b[2], 64, s->members);
        if (s->members)
            snprintf(b[3], 64, "%.0f%%", 100.0 * (double)s->members_female_owned / (double)s->members);
        else
            snprintf(b[3], 64, "-");
        cli_num(b[4], 64, s->with_institution);
        cli_num(b[5], 64, open);
        cli_num(b[6], 64, l->aid_count);
        cli_num(b[7], 64, l->aid_value);
        const char *cells[] = {l->code, l->name, b[0], b[1], b[2], b[3], b[4], b[5], tops, b[6], b[7]};
        if (j == n)
            cli_table_rule(t);
        cli_table_row(t, cells);
    }
    if (cli->fmt == FMT_TABLE) {
        printf("Sentra IKM of province %s: formed and designated, members, institutions,\n"
               "obstacles still open (open or being handled) and assistance received in %d.\n\n",
               province, year);
        cli_table_print(t, stdout);
        if (rs->total->sentra_with_members < rs->total->sentra)
            printf("\nMembers: recorded for %lld of the %lld sentra (districts that keep member records);\n"
                   "business units of all sentra, counting members where recorded: %lld.\n",
                   (long long)rs->total->sentra_with_members, (long long)rs->total->sentra,
                   (long long)rs->total->business_units_effective);
    }
    cli_table_free(t);
out:
    if (rs)
        protobuf_c_message_free_unpacked(&rs->base, NULL);
    if (ro)
        protobuf_c_message_free_unpacked(&ro->base, NULL);
    if (ra)
        protobuf_c_message_free_unpacked(&ra->base, NULL);
    return rc;
}
