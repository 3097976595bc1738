/*
 * stats_latency.c: the latency of GetStatistics as a client sees it, for
 * scripts/bench-stats.sh. One libsentra connection, a few warm-up calls
 * (so every connection of the server's pool has prepared the statement),
 * then N sequential calls, each timed from the request sent to the
 * response decoded. Prints one line of key=value:
 *   calls=50 median_ms=4.210 p90_ms=4.800 min_ms=3.900 rows=515 sentra=20000 designated=13954
 *
 *   stats_latency ADDR TOKEN N GROUP[,GROUP..] [PROVINCE|- [AS_OF]]
 * GROUP: province, regency, status, sector, kbli, formation_year,
 * decree_year, or "none"; PROVINCE filters on a province ("-": none);
 * AS_OF (YYYY-MM-DD) asks for the registry as of that date.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sentra/sentra.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    static const char *names[] = { "", "province", "regency", "status", "sector", "kbli",
                                   "formation_year", "decree_year" };
    Sentra__V1__GroupBy groups[7];
    size_t ngroups = 0;

    if (argc < 5) {
        fprintf(stderr, "usage: %s ADDR TOKEN N GROUP[,GROUP..] [PROVINCE|- [AS_OF]]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[3]);
    if (n < 1 || n > 100000) {
        fprintf(stderr, "stats_latency: N from 1 to 100000\n");
        return 2;
    }
    char *list = strdup(argv[4]);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int g = 0;
        for (int i = 1; i <= 7; i++)
            if (strcmp(tok, names[i]) == 0)
                g = i;
        if (g == 0 && strcmp(tok, "none") != 0) {
            fprintf(stderr, "stats_latency: unknown group \"%s\"\n", tok);
            return 2;
        }
        if (g && ngroups < 7)
            groups[ngroups++] = (Sentra__V1__GroupBy)g;
    }
    free(list);

    sentra_client_opts_t o;
    sentra_client_opts_init(&o);
    o.address = argv[1];
    o.token = argv[2];
    sentra_client_t *cl;
    if (sentra_client_new(&cl, &o) != 0 || sentra_client_connect(cl) != 0) {
        fprintf(stderr, "stats_latency: cannot connect to %s\n", argv[1]);
        return 1;
    }

    Sentra__V1__SentraFilter filter = SENTRA__V1__SENTRA_FILTER__INIT;
    Sentra__V1__GetStatisticsRequest req = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
    if (argc > 5 && strcmp(argv[5], "-") != 0) {
        filter.province_code = argv[5];
        req.filter = &filter;
    }
    if (argc > 6)
        req.as_of = argv[6];
    req.group_by = groups;
    req.n_group_by = ngroups;

    double *t = calloc((size_t)n, sizeof(double));
    size_t rows = 0;
    int64_t sentra = 0, designated = 0;
    int warm = 8;   /* enough for every pooled connection to prepare */
    for (int i = -warm; i < n; i++) {
        Sentra__V1__GetStatisticsResponse *resp = NULL;
        sentra_status_t st;
        sentra_status_init(&st);
        double t0 = now_ms();
        int rc = sentra_get_statistics(cl, &req, &resp, NULL, &st);
        double dt = now_ms() - t0;
        if (rc != 0) {
            fprintf(stderr, "stats_latency: %s: %s\n", sentra_status_name(st.code),
                    st.message ? st.message : sentra_strerror(rc));
            sentra_status_clear(&st);
            return 1;
        }
        sentra_status_clear(&st);
        if (i >= 0)
            t[i] = dt;
        rows = resp->n_rows;
        sentra = resp->total ? resp->total->sentra : 0;
        designated = resp->total ? resp->total->designated : 0;
        sentra__v1__get_statistics_response__free_unpacked(resp, NULL);
    }
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    double median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
    printf("calls=%d median_ms=%.3f p90_ms=%.3f min_ms=%.3f rows=%zu sentra=%lld designated=%lld\n",
           n, median, t[(int)(n * 0.9) < n ? (int)(n * 0.9) : n - 1], t[0], rows,
           (long long)sentra, (long long)designated);
    free(t);
    sentra_client_free(cl);
    return 0;
}
