/*
 * cli_stats.c: sentra-cli stats and timeseries: GetStatistics as an aligned
 * table with region names beside codes and a totals row, GetTimeSeries per
 * year; both also as JSON lines or CSV.
 */
#include <getopt.h>
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
    };
    char *copy = strdup(arg), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int v = -1;
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (strcmp(names[i].name, t) == 0)
                v = names[i].v;
        if (v < 0) {
            fprintf(stderr, "%s stats: --group-by: unknown \"%s\" (province, regency, status, sector, kbli,\n"
                            "formation_year, decree_year)\n", cli->prog, t);
            free(copy);
            return -1;
        }
        rq->group_by = realloc(rq->group_by, (rq->n_group_by + 1) * sizeof *rq->group_by);
        rq->group_by[rq->n_group_by++] = v;
    }
    free(copy);
    return 0;
}

static void stats_cells(const Sentra__V1__StatsRow *r, char buf[][32], const char **cells)
{
    snprintf(buf[0], 32, "%lld", (long long)r->sentra);
    snprintf(buf[1], 32, "%lld", (long long)r->designated);
    snprintf(buf[2], 32, "%.1f%%", r->designation_rate * 100);
    cli_num(buf[3], 32, r->business_units);
    cli_num(buf[4], 32, r->workers_male);
    cli_num(buf[5], 32, r->workers_female);
    cli_num(buf[6], 32, r->workers_total);
    cli_num(buf[7], 32, r->investment);
    cli_num(buf[8], 32, r->production_value);
    cli_num(buf[9], 32, r->material_value);
    for (int i = 0; i < 10; i++)
        cells[i] = buf[i];
}

/* Plain numbers for CSV (no separators, the rate as a fraction). */
static void stats_cells_raw(const Sentra__V1__StatsRow *r, char buf[][32], const char **cells)
{
    long long v[] = {r->sentra, r->designated, 0, r->business_units, r->workers_male, r->workers_female,
                     r->workers_total, r->investment, r->production_value, r->material_value};
    for (int i = 0; i < 10; i++)
        snprintf(buf[i], 32, "%lld", v[i]);
    snprintf(buf[2], 32, "%.4f", r->designation_rate);
    for (int i = 0; i < 10; i++)
        cells[i] = buf[i];
}

int cmd_stats(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {CLI_FILTER_OPTIONS,
                                      {"group-by", required_argument, 0, 'g'},
                                      {"year", required_argument, 0, 'y'},
                                      {"as-of", required_argument, 0, 'a'},
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
        case 'h':
            printf("usage: %s stats [--group-by G[,G..]] [--year YYYY] [--as-of YYYY-MM-DD] [filters]\n\n"
                   "Counts sentra, designations, business units, workers, investment and\n"
                   "production, grouped by G: province, regency, status, sector, kbli,\n"
                   "formation_year, decree_year (several: nested groups). --year uses that\n"
                   "reporting year's figures (default: each sentra's latest); --as-of shows\n"
                   "the registry as it stood on that date. A totals row ends the table.\n\n"
                   "example: %s stats --province 18 --group-by regency\n\n%s\n%s",
                   cli->prog, cli->prog, CLI_FILTER_HELP, CLI_COMMON_HELP);
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
        static const char *fig[] = {"SENTRA", "DESIGNATED", "RATE", "UNITS", "WORKERS_M", "WORKERS_F",
                                    "WORKERS", "INVESTMENT", "PRODUCTION", "MATERIAL"};
        int first_num = nh;
        for (int i = 0; i < 10; i++)
            hdr[nh++] = fig[i];
        cli_table_t *t = cli_table_new(nh, hdr);
        unsigned mask = 0;
        for (int i = first_num; i < nh; i++)
            mask |= 1u << i;
        cli_table_align_right(t, mask);
        char buf[10][32];
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
            if (cli->fmt == FMT_CSV)
                stats_cells_raw(row, buf, cells + k);
            else
                stats_cells(row, buf, cells + k);
            cli_table_row(t, cells);
        }
        if (r->total) {
            int k = 0;
            for (int g = 0; g < ng && g < 16; g++) {
                cells[k++] = g == 0 ? "TOTAL" : "";
                if (named[g])
                    cells[k++] = "";
            }
            if (ng == 0) {
                /* no grouping: the total is the only row; no label column */
            }
            if (cli->fmt == FMT_CSV)
                stats_cells_raw(r->total, buf, cells + k);
            else
                stats_cells(r->total, buf, cells + k);
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
        case 'h':
            printf("usage: %s timeseries [--from YYYY] [--to YYYY] [filters]\n\n"
                   "Sentra formed and designated per year, with running totals.\n\n%s\n%s",
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
        static const char *h[] = {"YEAR", "FORMED", "DESIGNATED", "FORMED_TOTAL", "DESIGNATED_TOTAL"};
        cli_table_t *t = cli_table_new(5, h);
        cli_table_align_right(t, 0x1f);
        for (size_t i = 0; i < r->n_points; i++) {
            const Sentra__V1__TimeSeriesPoint *p = r->points[i];
            if (cli->fmt == FMT_JSON) {
                cli_print_json(&p->base);
                continue;
            }
            char b[5][32];
            snprintf(b[0], 32, "%d", p->year);
            snprintf(b[1], 32, "%lld", (long long)p->formed);
            snprintf(b[2], 32, "%lld", (long long)p->designated);
            snprintf(b[3], 32, "%lld", (long long)p->formed_cumulative);
            snprintf(b[4], 32, "%lld", (long long)p->designated_cumulative);
            const char *cells[] = {b[0], b[1], b[2], b[3], b[4]};
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
