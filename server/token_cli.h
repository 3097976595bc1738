/*
 * token_cli.h: API token secrets, and the `sentrad token` subcommand that
 * manages tokens directly in PostgreSQL (blocking libpq; no server needed).
 */
#ifndef SENTRA_TOKEN_CLI_H
#define SENTRA_TOKEN_CLI_H

#include <stddef.h>

/* Length of a secret: "snt_" and 52 base32 characters (256 random bits). */
#define SENTRA_TOKEN_SECRET_LEN 56

/* Writes a new secret (NUL-terminated) into out, which holds at least
 * SENTRA_TOKEN_SECRET_LEN + 1 bytes. The 32 random bytes come from
 * getrandom(2). Returns 0, or -1 when no randomness could be had (out is
 * then "", never a weak secret). */
int sentra__token_secret(char *out, size_t cap);

/* `sentrad token ...`: argv holds the words after "token" (a leading
 * "token" is skipped too):
 *   create --role district|province|national|admin [--region CODE] [--label L]
 *   list
 *   revoke ID
 * each optionally with --db CONNINFO, which overrides conninfo (conninfo may
 * be NULL: then --db or the SENTRA_DB_URL environment variable is needed).
 * `create` prints only the secret on stdout (details on stderr), so that
 * `TOKEN=$(sentrad token create ...)` works. Returns the process exit
 * status: 0 done, 1 failed, 2 usage error. */
int token_cli_main(const char *conninfo, int argc, char **argv);

#endif
