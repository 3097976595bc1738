/*
 * cli_main.c: sentra-cli's entry point: global options, the table of
 * subcommands, the exit-code contract, and the top-level help.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct command {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} commands[] = {
    {"health", cmd_health, "server health (Health/Check)"},
    {"ping", cmd_ping, "round-trip latency (SystemService/Ping)"},
    {"describe", cmd_describe, "methods the server serves (reflection)"},
    {"create", cmd_create, "create a sentra from flags or a JSON file"},
    {"get", cmd_get, "show one sentra"},
    {"update", cmd_update, "change fields of a sentra"},
    {"delete", cmd_delete, "delete a sentra"},
    {"list", cmd_list, "list sentra (filters, paging)"},
    {"regions", cmd_regions, "list regions (provinces, or children of a code)"},
    {"region", cmd_region, "show one region"},
    {"members", cmd_records, "member businesses of sentra: list, get, create, update, delete, import"},
    {"institution", cmd_records, "the institution of a sentra: list, get, set, delete, import"},
    {"obstacles", cmd_records, "obstacles of sentra: list, get, create, update, delete, import"},
    {"assistance", cmd_records, "assistance received: list, get, create, update, delete, import"},
    {"stats", cmd_stats, "statistics grouped by region, status, sector, ..."},
    {"report", cmd_report, "the brief of a province for its coordination meeting"},
    {"timeseries", cmd_timeseries, "sentra formed and designated per year"},
    {"tokens", cmd_tokens, "create, list, revoke tokens (admin)"},
    {"whoami", cmd_whoami, "the token in use: its role, region and label"},
    {"sync", cmd_sync, "pull changes into / push changes from a local JSONL store"},
    {"import", cmd_import, "create sentra from a CSV file"},
    {"export", cmd_export, "write every sentra the token may read as CSV or JSON"},
    {"sleep", cmd_sleep, "debug: a call that sleeps on the server (--enable-debug)"},
};

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [--addr ADDR] [--token TOKEN] [--tls --ca FILE] COMMAND [options] [args]\n\n"
            "The command-line client of sentra, the Sentra IKM registry.\n\ncommands:\n",
            prog);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n%s"
            "\nenvironment: SENTRA_ADDR (default 127.0.0.1:7600), SENTRA_TOKEN; with TLS,\n"
            "SENTRA_CA, SENTRA_CERT, SENTRA_KEY.\n"
            "\nexit codes:\n"
            "  0       success\n"
            "  1       import/push finished, but some rows were refused (listed on stderr)\n"
            "  2       usage error\n"
            "  3       local error (unreadable file, malformed input)\n"
            "  10+N    a call failed with gRPC status N, e.g. 15 NOT_FOUND,\n"
            "          13 INVALID_ARGUMENT, 14 DEADLINE_EXCEEDED, 17 PERMISSION_DENIED,\n"
            "          20 ABORTED (version conflict), 24 UNAVAILABLE (server unreachable),\n"
            "          26 UNAUTHENTICATED\n"
            "\n`%s COMMAND --help` describes each command. docs/CLIENT.md has the rest.\n",
            CLI_COMMON_HELP, prog);
}

int main(int argc, char **argv)
{
    cli_t cli;
    memset(&cli, 0, sizeof cli);
    cli.prog = "sentra-cli";
    signal(SIGPIPE, SIG_IGN);
    cli.addr = getenv("SENTRA_ADDR");
    if (cli.addr && !*cli.addr)
        cli.addr = NULL;
    cli.token = getenv("SENTRA_TOKEN");

    /* Global options before the command. */
    static const struct option opts[] = {CLI_COMMON_OPTIONS, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int c;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        int r = cli_common_opt(&cli, c, optarg);
        if (r < 0)
            return CLI_EXIT_USAGE;
        if (r)
            continue;
        if (c == 'h') {
            usage(stdout, cli.prog);
            return CLI_EXIT_OK;
        }
        if (c == 'V') {
            printf("sentra-cli %d.%d.%d\n", SENTRA_VERSION_MAJOR, SENTRA_VERSION_MINOR, SENTRA_VERSION_PATCH);
            return CLI_EXIT_OK;
        }
        usage(stderr, cli.prog);
        return CLI_EXIT_USAGE;
    }
    if (optind >= argc) {
        usage(stderr, cli.prog);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (strcmp(name, "help") == 0) {
        usage(stdout, cli.prog);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            optind = 0; /* glibc: 0 re-initializes getopt for the new argv */
            int rc = commands[i].fn(&cli, sub_argc, sub_argv);
            fflush(stdout);
            if (ferror(stdout) && rc == 0) {
                fprintf(stderr, "%s: error writing output\n", cli.prog);
                rc = CLI_EXIT_LOCAL;
            }
            sentra_client_free(cli.client);
            return rc;
        }
    }
    fprintf(stderr, "%s: unknown command \"%s\"\n\n", cli.prog, name);
    usage(stderr, cli.prog);
    return CLI_EXIT_USAGE;
}
