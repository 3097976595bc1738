/*
 * cli_sync.c: placeholder until the sync helper lands (see below).
 */
#include "cli.h"

int cmd_sync(cli_t *cli, int argc, char **argv)
{
    fprintf(stderr, "%s sync: not built yet\n", cli->prog);
    return CLI_EXIT_USAGE;
}
