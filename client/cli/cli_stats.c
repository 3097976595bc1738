/*
 * cli_stats.c: sentra-cli stats and timeseries: GetStatistics as an aligned
 * table with region names beside codes and a totals row, GetTimeSeries per
 * year; both also as JSON lines or CSV.
 */
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *group_title(int g)
{
    switch (g) {
    case SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE: return "PROVINCE";
    case SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY: return "REGENCY";
    case SENTRA__V1__GROUP_BY__GROUP_BY_STATUS: return "STATUS";
    case SENTRA__V1__GROUP_BY__GROUP_BY_SECTOR_GROUP: return "SECTOR";
    case SENTRA__V1__GROUP_BY__GROUP_BY_KBLI_MAIN_GROUP: return "KBLI";
    case SENTRA__V1__GROUP_BY__GROUP_BY_FORMATION_YEAR: return "FORMED";
    case SENTRA__V1__GROUP_BY__GROUP_BY_DECREE_YEAR: return "DECREED";
    case SENTRA__V1__GROUP_BY__GROUP_BY_SIZE_CLASS: return "SIZE_CLASS";
    case SENTRA__V1__GROUP_BY__GROUP_BY_OWNER_SEX: return "OWNER_SEX";
    case SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_CATEGORY: return "CATEGORY";
    case SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_STATUS: return "STATUS";
    case SENTRA__V1__GROUP_BY__GROUP_BY_SEVERITY: return "SEVERITY";
    case SENTRA__V1__GROUP_BY__GROUP_BY_ASSISTANCE_KIND: return "KIND";
    case SENTRA__V1__GROUP_BY__GROUP_BY_PROVIDER: return "PROVIDER";
    case SENTRA__V1__GROUP_BY__GROUP_BY_ASSISTANCE_YEAR: return "YEAR";
    }
    return "GROUP";
}

/* Parses "province,regency,status" into group_by values. */
static int parse_group_by(cli_t *cli, const char *arg, Sentra__V1__GetStatisticsRequest *rq)
{
    static const struct {
        const char *name;
        int v;
    } names[] = {
        {"province", SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE},
        {"regency", SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY},
        {"city", SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY},
        {"status", SENTRA__V1__GROUP_BY__GROUP_BY_STATUS},
        {"sector", SENTRA__V1__GROUP_BY__GROUP_BY_SECTOR_GROUP},
        {"sector_group", SENTRA__V1__GROUP_BY__GROUP_BY_SECTOR_GROUP},
        {"kbli", SENTRA__V1__GROUP_BY__GROUP_BY_KBLI_MAIN_GROUP},
        {"kbli_main_group", SENTRA__V1__GROUP_BY__GROUP_BY_KBLI_MAIN_GROUP},
        {"formation_year", SENTRA__V1__GROUP_BY__GROUP_BY_FORMATION_YEAR},
        {"formed", SENTRA__V1__GROUP_BY__GROUP_BY_FORMATION_YEAR},
        {"decree_year", SENTRA__V1__GROUP_BY__GROUP_BY_DECREE_YEAR},
        {"decreed", SENTRA__V1__GROUP_BY__GROUP_BY_DECREE_YEAR},
        {"size_class", SENTRA__V1__GROUP_BY__GROUP_BY_SIZE_CLASS},
        {"owner_sex", SENTRA__V1__GROUP_BY__GROUP_BY_OWNER_SEX},
        {"category", SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_CATEGORY},
        {"obstacle_category", SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_CATEGORY},
        {"obstacle_status", SENTRA__V1__GROUP_BY__GROUP_BY_OBSTACLE_STATUS},
        {"severity", SENTRA__V1__GROUP_BY__GROUP_BY_SEVERITY},
        {"assistance_kind", SENTRA__V1__GROUP_BY__GROUP_BY_ASSISTANCE_KIND},
        {"provider", SENTRA__V1__GROUP_BY__GROUP_BY_PROVIDER},
        {"assistance_year", SENTRA__V1__GROUP_BY__GROUP_BY_ASSISTANCE_YEAR},
    };
    char *copy = strdup(arg), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int v = -1;
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (strcmp(names[i].name, t) == 0)
                v = names[i].v;
        if (v < 0) {
            fprintf(stderr, "%s stats: --group-by: unknown \"%s\" (province, regency, status, sector, kbli,\n"
                            "formation_year, decree_year; members: size_class, owner_sex; obstacles:\n"
                            "category, obstacle_status, severity; assistance: assistance_kind, provider,\n"
                            "assistance_year)\n", cli->prog, t);
            free(copy);
            return -1;
        }
        rq->group_by = realloc(rq->group_by, (rq->n_group_by + 1) * sizeof *rq->group_by);
        rq->group_by[rq->n_group_by++] = v;
    }
    free(copy);
    return 0;
}

/* The measure columns of each subject: header, field (a rate when rate). */
typedef struct mcol {
    const char *head;
    size_t off;             /* offsetof the measure in StatsRow */
    int rate;               /* a double 0..1 shown as a percentage */
    int plain;              /* a small count: no thousands separators */
} mcol_t;

#define MC(h, f) {h, offsetof(Sentra__V1__StatsRow, f), 0, 0}
#define MP(h, f) {h, offsetof(Sentra__V1__StatsRow, f), 0, 1}
#define MR(h, f) {h, offsetof(Sentra__V1__StatsRow, f), 1, 0}
static const mcol_t cols_sentra[] = {
    MP("SENTRA", sentra), MP("DESIGNATED", designated), MR("RATE", designation_rate),
    MC("UNITS", business_units), MC("WORKERS_M", workers_male), MC("WORKERS_F", workers_female),
    MC("WORKERS", workers_total), MC("INVESTMENT", investment), MC("PRODUCTION", production_value),
    MC("MATERIAL", material_value), MC("MEMBERS", members), MP("INSTITUTION", with_institution),
    MC("OBSTACLES", obstacles), MC("AID", assistance_count), MC("AID_VALUE", assistance_value),
    {NULL, 0, 0, 0}};
static const mcol_t cols_members[] = {
    MP("SENTRA", sentra), MC("MEMBERS", members), MC("WOMEN_OWNED", members_female_owned),
    MC("MEN_OWNED", members_male_owned), MC("SMALL", members_small), MC("MEDIUM", members_medium),
    MC("LARGE", members_large), {NULL, 0, 0, 0}};
static const mcol_t cols_obstacles[] = {
    MP("SENTRA", sentra), MC("OBSTACLES", obstacles), MC("OPEN", obstacles_open),
    MC("IN_PROGRESS", obstacles_in_progress), MC("RESOLVED", obstacles_resolved),
    {NULL, 0, 0, 0}};
static const mcol_t cols_assistance[] = {
    MP("SENTRA", sentra), MC("AID", assistance_count), MC("AID_VALUE", assistance_value),
    {NULL, 0, 0, 0}};
#undef MC
#undef MP
#undef MR

static const mcol_t *subject_cols(int subject)
{
    switch (subject) {
    case SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_MEMBERS: return cols_members;
    case SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_OBSTACLES: return cols_obstacles;
    case SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_ASSISTANCE: return cols_assistance;
    }
    return cols_sentra;
}

/* The measures of r as cells (CSV: plain numbers, rates as fractions). */
static int stats_cells(const mcol_t *mc, const Sentra__V1__StatsRow *r, int csv, char buf[][32],
                       const char **cells)
{
    int n = 0;
    for (; mc[n].head; n++) {
        const char *p = (const char *)r + mc[n].off;
        if (mc[n].rate) {
            double v = *(const double *)p;
            if (csv)
                snprintf(buf[n], 32, "%.4f", v);
            else
                snprintf(buf[n], 32, "%.1f%%", v * 100);
        } else if (csv || mc[n].plain) {
            snprintf(buf[n], 32, "%lld", (long long)*(const int64_t *)p);
        } else {
            cli_num(buf[n], 32, *(const int64_t *)p);
        }
        cells[n] = buf[n];
    }
    return n;
}

int cmd_stats(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {CLI_FILTER_OPTIONS,
                                      {"group-by", required_argument, 0, 'g'},
                                      {"year", required_argument, 0, 'y'},
                                      {"as-of", required_argument, 0, 'a'},
                                      {"subject", required_argument, 0, 's'},
                                      CLI_COMMON_OPTIONS,
                                      {0, 0, 0, 0}};
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    Sentra__V1__GetStatisticsRequest rq = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
    int c, rc = CLI_EXIT_USAGE;
    while ((c = getopt_long(argc, argv, "hg:y:", o, NULL)) != -1) {
        {
            int r_ = cli_common_opt(cli, c, optarg);
            if (r_ < 0)
                goto out;
            if (r_)
                continue;
        }
        int r = cli_filter_opt(cli, &f, c, optarg);
        if (r < 0)
            goto out;
        if (r)
            continue;
        switch (c) {
        case 'g':
            if (parse_group_by(cli, optarg, &rq) < 0)
                goto out;
            break;
        case 'y': rq.reporting_year = (int32_t)strtol(optarg, NULL, 10); break;
        case 'a': rq.as_of = optarg; break;
        case 's': {
            int v = cli_enum_parse(&sentra__v1__stats_subject__descriptor, "STATS_SUBJECT_", optarg);
            if (v < 0) {
                fprintf(stderr, "%s stats: --subject: sentra, members, obstacles or assistance\n", cli->prog);
                goto out;
            }
            rq.subject = v;
            break;
        }
        case 'h':
            printf("usage: %s stats [--subject S] [--group-by G[,G..]] [--year YYYY] [--as-of YYYY-MM-DD]\n"
                   "       [filters]\n\n"
                   "Counts sentra, designations, business units, workers, investment and\n"
                   "production, and their members, institutions, obstacles and assistance,\n"
                   "grouped by G: province, regency, status, sector, kbli, formation_year,\n"
                   "decree_year (several: nested groups). --subject members | obstacles |\n"
                   "assistance counts those records instead, also grouped by their own\n"
                   "dimensions: size_class, owner_sex (members); category, obstacle_status,\n"
                   "severity (obstacles); assistance_kind, provider, assistance_year\n"
                   "(assistance). --year uses that reporting year's figures (default: each\n"
                   "sentra's latest); --as-of shows the registry as it stood on that date\n"
                   "(both: sentra only). A totals row ends the table.\n\n"
                   "example: %s stats --province 18 --group-by regency\n"
                   "         %s stats --subject members --group-by size_class,owner_sex\n\n%s\n%s",
                   cli->prog, cli->prog, cli->prog, CLI_FILTER_HELP, CLI_COMMON_HELP);
            rc = 0;
            goto out;
        default:
            rc = cli_usage_error(cli, "stats", "unknown option");
            goto out;
        }
    }
    if (optind != argc) {
        rc = cli_usage_error(cli, "stats", "takes no arguments");
        goto out;
    }
    sentra_client_t *cl = cli_client(cli);
    if (!cl)
        goto out;
    rq.filter = &f;
    Sentra__V1__GetStatisticsResponse *r;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    rc = sentra_get_statistics(cl, &rq, &r, &co, &st);
    if (rc) {
        rc = cli_fail(cli, "stats", rc, &st);
        sentra_status_clear(&st);
        goto out;
    }
    sentra_status_clear(&st);
    if (cli->fmt == FMT_JSON) {
        for (size_t i = 0; i < r->n_rows; i++)
            cli_print_json(&r->rows[i]->base);
        if (r->total) {
            json_t *j = cli_pb_to_json(&r->total->base, 0);
            json_object_set_new(j, "total", json_true());
            char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
            puts(s);
            free(s);
            json_decref(j);
        }
    } else {
        /* Columns: per group a code column (and a name column for regions),
         * then the ten figures. */
        int ng = (int)r->n_group_by;
        const char *hdr[64];
        int nh = 0;
        int named[16] = {0};
        for (int g = 0; g < ng && g < 16; g++) {
            hdr[nh++] = group_title(r->group_by[g]);
            named[g] = r->group_by[g] == SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE ||
                       r->group_by[g] == SENTRA__V1__GROUP_BY__GROUP_BY_REGENCY;
            if (named[g])
                hdr[nh++] = "NAME";
        }
        const mcol_t *mc = subject_cols((int)rq.subject);
        int first_num = nh;
        for (int i = 0; mc[i].head; i++)
            hdr[nh++] = mc[i].head;
        cli_table_t *t = cli_table_new(nh, hdr);
        unsigned mask = 0;
        for (int i = first_num; i < nh; i++)
            mask |= 1u << i;
        cli_table_align_right(t, mask);
        char buf[32][32];
        const char *cells[64];
        for (size_t i = 0; i < r->n_rows; i++) {
            const Sentra__V1__StatsRow *row = r->rows[i];
            int k = 0;
            for (int g = 0; g < ng && g < 16; g++) {
                const char *key = (size_t)g < row->n_keys ? row->keys[g] : "";
                const char *label = (size_t)g < row->n_labels ? row->labels[g] : "";
                cells[k++] = key;
                if (named[g])
                    cells[k++] = label;
            }
            stats_cells(mc, row, cli->fmt == FMT_CSV, buf, cells + k);
            cli_table_row(t, cells);
        }
        if (r->total) {
            int k = 0;
            for (int g = 0; g < ng && g < 16; g++) {
                cells[k++] = g == 0 ? "TOTAL" : "";
                if (named[g])
                    cells[k++] = "";
            }
            stats_cells(mc, r->total, cli->fmt == FMT_CSV, buf, cells + k);
            cli_table_rule(t);
            cli_table_row(t, cells);
        }
        if (cli->fmt == FMT_CSV)
            cli_table_print_csv(t, stdout);
        else
            cli_table_print(t, stdout);
        cli_table_free(t);
    }
    sentra__v1__get_statistics_response__free_unpacked(r, NULL);
    rc = 0;
out:
    free(rq.group_by);
    cli_filter_free(&f);
    return rc;
}

int cmd_timeseries(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {CLI_FILTER_OPTIONS,
                                      {"from", required_argument, 0, 'f'},
                                      {"to", required_argument, 0, 't'},
                                      {"subject", required_argument, 0, 's'},
                                      CLI_COMMON_OPTIONS,
                                      {0, 0, 0, 0}};
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    Sentra__V1__GetTimeSeriesRequest rq = SENTRA__V1__GET_TIME_SERIES_REQUEST__INIT;
    int c;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        int r = cli_filter_opt(cli, &f, c, optarg);
        if (r < 0) {
            cli_filter_free(&f);
            return CLI_EXIT_USAGE;
        }
        if (r)
            continue;
        switch (c) {
        case 'f': rq.from_year = (int32_t)strtol(optarg, NULL, 10); break;
        case 't': rq.to_year = (int32_t)strtol(optarg, NULL, 10); break;
        case 's': {
            int v = cli_enum_parse(&sentra__v1__stats_subject__descriptor, "STATS_SUBJECT_", optarg);
            if (v < 0) {
                fprintf(stderr, "%s timeseries: --subject: sentra, members, obstacles or assistance\n",
                        cli->prog);
                cli_filter_free(&f);
                return CLI_EXIT_USAGE;
            }
            rq.subject = v;
            break;
        }
        case 'h':
            printf("usage: %s timeseries [--subject S] [--from YYYY] [--to YYYY] [filters]\n\n"
                   "Per year: sentra formed and designated, with running totals; or with\n"
                   "--subject members: members joined, left and active at the year's end;\n"
                   "obstacles: reported, resolved, unresolved at the year's end;\n"
                   "assistance: records received and their value.\n\n%s\n%s",
                   cli->prog, CLI_FILTER_HELP, CLI_COMMON_HELP);
            cli_filter_free(&f);
            return 0;
        default:
            cli_filter_free(&f);
            return cli_usage_error(cli, "timeseries", "unknown option");
        }
    }
    sentra_client_t *cl = cli_client(cli);
    if (!cl) {
        cli_filter_free(&f);
        return CLI_EXIT_USAGE;
    }
    rq.filter = &f;
    Sentra__V1__GetTimeSeriesResponse *r;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    int rc = sentra_get_time_series(cl, &rq, &r, &co, &st);
    if (rc) {
        rc = cli_fail(cli, "timeseries", rc, &st);
    } else {
        static const char *heads[4][5] = {
            {"YEAR", "FORMED", "DESIGNATED", "FORMED_TOTAL", "DESIGNATED_TOTAL"},
            {"YEAR", "JOINED", "LEFT", "MEMBERS", NULL},
            {"YEAR", "REPORTED", "RESOLVED", "UNRESOLVED", NULL},
            {"YEAR", "AID", "AID_VALUE", NULL, NULL},
        };
        int subj = rq.subject >= 0 && rq.subject <= 3 ? (int)rq.subject : 0;
        int nc = 0;
        while (nc < 5 && heads[subj][nc])
            nc++;
        cli_table_t *t = cli_table_new(nc, heads[subj]);
        cli_table_align_right(t, 0x1f);
        for (size_t i = 0; i < r->n_points; i++) {
            const Sentra__V1__TimeSeriesPoint *p = r->points[i];
            if (cli->fmt == FMT_JSON) {
                cli_print_json(&p->base);
                continue;
            }
            long long v[4][4] = {
                {p->formed, p->designated, p->formed_cumulative, p->designated_cumulative},
                {p->members_joined, p->members_left, p->members_active, 0},
                {p->obstacles_reported, p->obstacles_resolved, p->obstacles_unresolved, 0},
                {p->assistance_count, p->assistance_value, 0, 0},
            };
            char b[5][32];
            const char *cells[5];
            snprintf(b[0], 32, "%d", p->year);
            cells[0] = b[0];
            for (int k = 1; k < nc; k++) {
                snprintf(b[k], 32, "%lld", v[subj][k - 1]);
                cells[k] = b[k];
            }
            cli_table_row(t, cells);
        }
        if (cli->fmt == FMT_TABLE)
            cli_table_print(t, stdout);
        else if (cli->fmt == FMT_CSV)
            cli_table_print_csv(t, stdout);
        cli_table_free(t);
        sentra__v1__get_time_series_response__free_unpacked(r, NULL);
    }
    sentra_status_clear(&st);
    cli_filter_free(&f);
    return rc;
}
