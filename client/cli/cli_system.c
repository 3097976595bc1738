/*
 * cli_system.c: sentra-cli commands for the service itself: health, ping
 * (latency), describe (reflection), sleep (debug), token management and
 * whoami (the token in use).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---------------------------------------------------------------- health */

int cmd_health(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {{"service", required_argument, 0, 's'}, CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    Sentra__V1__HealthCheckRequest rq = SENTRA__V1__HEALTH_CHECK_REQUEST__INIT;
    int c;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        switch (c) {
        case 's': rq.service = optarg; break;
        case 'h':
            printf("usage: %s health [--service NAME]\n\n"
                   "Asks the server whether it serves (it does not when its database is\n"
                   "unreachable). Exit 0 when SERVING, 24 (UNAVAILABLE) otherwise.\n\n%s",
                   cli->prog, CLI_COMMON_HELP);
            return 0;
        default: return cli_usage_error(cli, "health", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error(cli, "health", "takes no arguments");
    sentra_client_t *cl = cli_client(cli);
    if (!cl)
        return CLI_EXIT_USAGE;
    Sentra__V1__HealthCheckResponse *r;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    int rc = sentra_health_check(cl, &rq, &r, &co, &st);
    if (rc) {
        rc = cli_fail(cli, "health", rc, &st);
        sentra_status_clear(&st);
        return rc;
    }
    int serving = r->status == SENTRA__V1__SERVING_STATUS__SERVING_STATUS_SERVING;
    if (cli->fmt == FMT_JSON) {
        cli_print_json(&r->base);
    } else {
        printf("status          %s\n", cli_enum_short(&sentra__v1__serving_status__descriptor,
                                                      "SERVING_STATUS_", r->status));
        printf("version         %s\n", r->version);
        printf("db connections  %d\n", r->db_connections);
        printf("address         %s\n", sentra_client_address(cl));
    }
    sentra__v1__health_check_response__free_unpacked(r, NULL);
    sentra_status_clear(&st);
    return serving ? 0 : CLI_EXIT_STATUS + 14;
}

/* ---------------------------------------------------------------- ping */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int cmd_ping(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {{"count", required_argument, 0, 'c'},
                                      {"size", required_argument, 0, 's'},
                                      CLI_COMMON_OPTIONS,
                                      {0, 0, 0, 0}};
    long count = 5, size = 16;
    int c;
    while ((c = getopt_long(argc, argv, "hc:s:", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        switch (c) {
        case 'c': count = strtol(optarg, NULL, 10); break;
        case 's': size = strtol(optarg, NULL, 10); break;
        case 'h':
            printf("usage: %s ping [-c COUNT] [-s BYTES]\n\n"
                   "Sends COUNT (default 5) pings of BYTES (default 16) on one connection\n"
                   "and prints the round-trip times. Touches no database.\n\n%s",
                   cli->prog, CLI_COMMON_HELP);
            return 0;
        default: return cli_usage_error(cli, "ping", "unknown option");
        }
    }
    if (count < 1 || count > 1000000 || size < 0 || size > 65536)
        return cli_usage_error(cli, "ping", "COUNT must be 1..1000000 and BYTES 0..65536");
    sentra_client_t *cl = cli_client(cli);
    if (!cl)
        return CLI_EXIT_USAGE;
    uint8_t *data = malloc((size_t)size + 1);
    for (long i = 0; i < size; i++)
        data[i] = (uint8_t)('a' + i % 26);
    Sentra__V1__PingRequest rq = SENTRA__V1__PING_REQUEST__INIT;
    rq.data.data = data;
    rq.data.len = (size_t)size;
    double *t = calloc((size_t)count, sizeof *t);
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    int rc = 0;
    for (long i = 0; i < count; i++) {
        Sentra__V1__PingResponse *r;
        double t0 = now_ms();
        rc = sentra_ping(cl, &rq, &r, &co, &st);
        t[i] = now_ms() - t0;
        if (rc) {
            rc = cli_fail(cli, "ping", rc, &st);
            break;
        }
        int same = r->data.len == (size_t)size && (!size || memcmp(r->data.data, data, (size_t)size) == 0);
        sentra__v1__ping_response__free_unpacked(r, NULL);
        if (!same) {
            fprintf(stderr, "%s: ping: the server echoed different bytes\n", cli->prog);
            rc = CLI_EXIT_STATUS + 13;
            break;
        }
        if (cli->fmt == FMT_TABLE && count <= 20)
            printf("%ld bytes from %s: seq=%ld time=%.3f ms\n", size, sentra_client_address(cl), i, t[i]);
    }
    if (!rc) {
        double sum = 0;
        for (long i = 0; i < count; i++)
            sum += t[i];
        qsort(t, (size_t)count, sizeof *t, cmp_double);
        double p50 = t[count / 2], p99 = t[(count * 99) / 100 < count ? (count * 99) / 100 : count - 1];
        if (cli->fmt == FMT_JSON)
            printf("{\"count\":%ld,\"min_ms\":%.3f,\"avg_ms\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
                   "\"max_ms\":%.3f}\n",
                   count, t[0], sum / count, p50, p99, t[count - 1]);
        else
            printf("%ld pings: min %.3f / avg %.3f / p50 %.3f / p99 %.3f / max %.3f ms\n", count, t[0],
                   sum / count, p50, p99, t[count - 1]);
    }
    free(t);
    free(data);
    sentra_status_clear(&st);
    return rc;
}

/* ---------------------------------------------------------------- describe */

int cmd_describe(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {{"out", required_argument, 0, 'o'}, CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    const char *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "ho:", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        switch (c) {
        case 'o': out = optarg; break;
        case 'h':
            printf("usage: %s describe [--out FILE]\n\n"
                   "Lists the full method names the server serves (SystemService/\n"
                   "GetDescriptorSet). --out writes the google.protobuf.FileDescriptorSet\n"
                   "to FILE, for protoc --decode and other generic tools.\n\n%s",
                   cli->prog, CLI_COMMON_HELP);
            return 0;
        default: return cli_usage_error(cli, "describe", "unknown option");
        }
    }
    sentra_client_t *cl = cli_client(cli);
    if (!cl)
        return CLI_EXIT_USAGE;
    Sentra__V1__GetDescriptorSetRequest rq = SENTRA__V1__GET_DESCRIPTOR_SET_REQUEST__INIT;
    Sentra__V1__GetDescriptorSetResponse *r;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    int rc = sentra_get_descriptor_set(cl, &rq, &r, &co, &st);
    if (rc) {
        rc = cli_fail(cli, "describe", rc, &st);
        sentra_status_clear(&st);
        return rc;
    }
    for (size_t i = 0; i < r->n_methods; i++) {
        if (cli->fmt == FMT_JSON)
            printf("{\"method\":\"%s\"}\n", r->methods[i]);
        else
            printf("%s\n", r->methods[i]);
    }
    if (cli->fmt == FMT_TABLE)
        fprintf(stderr, "%zu methods; descriptor set of %zu bytes\n", r->n_methods, r->file_descriptor_set.len);
    if (out) {
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(r->file_descriptor_set.data, 1, r->file_descriptor_set.len, f) != r->file_descriptor_set.len ||
            fclose(f) != 0) {
            perror(out);
            rc = CLI_EXIT_LOCAL;
        }
    }
    sentra__v1__get_descriptor_set_response__free_unpacked(r, NULL);
    sentra_status_clear(&st);
    return rc;
}

/* ---------------------------------------------------------------- sleep */

int cmd_sleep(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        if (c == 'h') {
            printf("usage: %s sleep MS\n\nDebug (sentrad --enable-debug): the server sleeps MS in\n"
                   "PostgreSQL. For trying deadlines: %s --deadline 100 sleep 1000.\n\n%s",
                   cli->prog, cli->prog, CLI_COMMON_HELP);
            return 0;
        }
        return cli_usage_error(cli, "sleep", "unknown option");
    }
    if (optind + 1 != argc)
        return cli_usage_error(cli, "sleep", "wants one argument, MS");
    sentra_client_t *cl = cli_client(cli);
    if (!cl)
        return CLI_EXIT_USAGE;
    Sentra__V1__SleepRequest rq = SENTRA__V1__SLEEP_REQUEST__INIT;
    rq.ms = (uint32_t)strtoul(argv[optind], NULL, 10);
    Sentra__V1__SleepResponse *r;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    double t0 = now_ms();
    int rc = sentra_sleep(cl, &rq, &r, &co, &st);
    if (rc) {
        rc = cli_fail(cli, "sleep", rc, &st);
    } else {
        printf("slept %u ms (round trip %.1f ms)\n", rq.ms, now_ms() - t0);
        sentra__v1__sleep_response__free_unpacked(r, NULL);
    }
    sentra_status_clear(&st);
    return rc;
}

/* ---------------------------------------------------------------- tokens */

static void token_row(cli_table_t *t, const Sentra__V1__Token *k)
{
    char created[32], revoked[32];
    time_t s = (time_t)(k->created_at_ms / 1000);
    strftime(created, sizeof created, "%Y-%m-%d %H:%M", gmtime(&s));
    if (k->revoked_at_ms) {
        s = (time_t)(k->revoked_at_ms / 1000);
        strftime(revoked, sizeof revoked, "%Y-%m-%d %H:%M", gmtime(&s));
    } else {
        strcpy(revoked, "-");
    }
    const char *cells[] = {k->id, cli_enum_short(&sentra__v1__role__descriptor, "ROLE_", k->role),
                           k->region_code, k->label, created, revoked};
    cli_table_row(t, cells);
}

int cmd_tokens(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {{"role", required_argument, 0, 'r'},
                                      {"region", required_argument, 0, 'g'},
                                      {"label", required_argument, 0, 'l'},
                                      CLI_COMMON_OPTIONS,
                                      {0, 0, 0, 0}};
    Sentra__V1__CreateTokenRequest cr = SENTRA__V1__CREATE_TOKEN_REQUEST__INIT;
    int c;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        switch (c) {
        case 'r': {
            int v = cli_enum_parse(&sentra__v1__role__descriptor, "ROLE_", optarg);
            if (v <= 0)
                return cli_usage_error(cli, "tokens", "--role: district, province, national or admin");
            cr.role = v;
            break;
        }
        case 'g': cr.region_code = optarg; break;
        case 'l': cr.label = optarg; break;
        case 'h':
            printf("usage: %s tokens create --role ROLE [--region CODE] [--label TEXT]\n"
                   "       %s tokens list\n"
                   "       %s tokens revoke ID\n\n"
                   "Manages API tokens (needs an admin token). ROLE is district (region: a\n"
                   "regency code like 18.71), province (region: a province code like 18),\n"
                   "national (reads everything) or admin. `create` prints the secret once.\n\n%s",
                   cli->prog, cli->prog, cli->prog, CLI_COMMON_HELP);
            return 0;
        default: return cli_usage_error(cli, "tokens", "unknown option");
        }
    }
    if (optind >= argc)
        return cli_usage_error(cli, "tokens", "wants create, list or revoke");
    const char *sub = argv[optind];
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    int rc = 0;
    if (strcmp(sub, "create") == 0) {
        if (!cr.role)
            return cli_usage_error(cli, "tokens", "create wants --role");
        sentra_client_t *cl = cli_client(cli);
        if (!cl)
            return CLI_EXIT_USAGE;
        Sentra__V1__CreateTokenResponse *r;
        rc = sentra_create_token(cl, &cr, &r, &co, &st);
        if (rc) {
            rc = cli_fail(cli, "tokens create", rc, &st);
        } else {
            if (cli->fmt == FMT_JSON) {
                cli_print_json(&r->base);
            } else {
                printf("id      %s\nrole    %s\nregion  %s\nsecret  %s\n", r->token->id,
                       cli_enum_short(&sentra__v1__role__descriptor, "ROLE_", r->token->role),
                       r->token->region_code, r->secret);
                fprintf(stderr, "(the secret is shown only now)\n");
            }
            sentra__v1__create_token_response__free_unpacked(r, NULL);
        }
    } else if (strcmp(sub, "list") == 0) {
        sentra_client_t *cl = cli_client(cli);
        if (!cl)
            return CLI_EXIT_USAGE;
        Sentra__V1__ListTokensRequest lr = SENTRA__V1__LIST_TOKENS_REQUEST__INIT;
        Sentra__V1__ListTokensResponse *r;
        rc = sentra_list_tokens(cl, &lr, &r, &co, &st);
        if (rc) {
            rc = cli_fail(cli, "tokens list", rc, &st);
        } else {
            static const char *h[] = {"ID", "ROLE", "REGION", "LABEL", "CREATED (UTC)", "REVOKED"};
            cli_table_t *t = cli_table_new(6, h);
            for (size_t i = 0; i < r->n_tokens; i++) {
                if (cli->fmt == FMT_JSON)
                    cli_print_json(&r->tokens[i]->base);
                else
                    token_row(t, r->tokens[i]);
            }
            if (cli->fmt == FMT_TABLE)
                cli_table_print(t, stdout);
            else if (cli->fmt == FMT_CSV)
                cli_table_print_csv(t, stdout);
            cli_table_free(t);
            sentra__v1__list_tokens_response__free_unpacked(r, NULL);
        }
    } else if (strcmp(sub, "revoke") == 0) {
        if (optind + 2 != argc)
            return cli_usage_error(cli, "tokens", "revoke wants one token ID");
        sentra_client_t *cl = cli_client(cli);
        if (!cl)
            return CLI_EXIT_USAGE;
        Sentra__V1__RevokeTokenRequest rr = SENTRA__V1__REVOKE_TOKEN_REQUEST__INIT;
        rr.id = argv[optind + 1];
        Sentra__V1__Token *r;
        rc = sentra_revoke_token(cl, &rr, &r, &co, &st);
        if (rc) {
            rc = cli_fail(cli, "tokens revoke", rc, &st);
        } else {
            if (cli->fmt == FMT_JSON)
                cli_print_json(&r->base);
            else
                printf("revoked %s\n", r->id);
            sentra__v1__token__free_unpacked(r, NULL);
        }
    } else {
        return cli_usage_error(cli, "tokens", "unknown subcommand \"%s\"", sub);
    }
    sentra_status_clear(&st);
    return rc;
}

/* ---------------------------------------------------------------- whoami */

int cmd_whoami(cli_t *cli, int argc, char **argv)
{
    static const struct option o[] = {CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", o, NULL)) != -1) {
        CLI_PARSE_COMMON(cli, c);
        if (c == 'h') {
            printf("usage: %s whoami\n\n"
                   "Shows the token in use (TokenService/WhoAmI): its id, role, region,\n"
                   "label and creation time. Its role and region are the scope of\n"
                   "everything it reads and writes. Any valid token may ask.\n\n%s",
                   cli->prog, CLI_COMMON_HELP);
            return 0;
        }
        return cli_usage_error(cli, "whoami", "unknown option");
    }
    if (optind != argc)
        return cli_usage_error(cli, "whoami", "takes no arguments");
    sentra_client_t *cl = cli_client(cli);
    if (!cl)
        return CLI_EXIT_USAGE;
    Sentra__V1__WhoAmIRequest rq = SENTRA__V1__WHO_AM_IREQUEST__INIT;
    Sentra__V1__Token *r;
    sentra_status_t st;
    sentra_status_init(&st);
    sentra_call_opts_t co = cli_call_opts(cli);
    int rc = sentra_who_am_i(cl, &rq, &r, &co, &st);
    if (rc) {
        rc = cli_fail(cli, "whoami", rc, &st);
    } else if (cli->fmt == FMT_JSON) {
        cli_print_json(&r->base);
        sentra__v1__token__free_unpacked(r, NULL);
    } else if (cli->fmt == FMT_CSV) {
        static const char *h[] = {"ID", "ROLE", "REGION", "LABEL", "CREATED (UTC)", "REVOKED"};
        cli_table_t *t = cli_table_new(6, h);
        token_row(t, r);
        cli_table_print_csv(t, stdout);
        cli_table_free(t);
        sentra__v1__token__free_unpacked(r, NULL);
    } else {
        char created[32];
        time_t s = (time_t)(r->created_at_ms / 1000);
        strftime(created, sizeof created, "%Y-%m-%d %H:%M UTC", gmtime(&s));
        printf("id       %s\nrole     %s\nregion   %s\nlabel    %s\ncreated  %s\n", r->id,
               cli_enum_short(&sentra__v1__role__descriptor, "ROLE_", r->role),
               r->region_code[0] ? r->region_code : "-", r->label, created);
        sentra__v1__token__free_unpacked(r, NULL);
    }
    sentra_status_clear(&st);
    return rc;
}
