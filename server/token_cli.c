/*
 * token_cli.c: token secrets and `sentrad token create|list|revoke`.
 *
 * The secret is shown once; PostgreSQL keeps only sha256(secret), computed
 * here with auth.c's auth_digest (the one the server looks tokens up by),
 * so the secret itself never reaches the database. Blocking libpq is fine here: this
 * runs as a one-shot command, outside the event loop.
 */
#include "token_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "auth.h"

/* ---------------------------------------------------------------- secrets */

int sentra__token_secret(char *out, size_t cap)
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char raw[32];
    size_t got = 0;

    if (cap < SENTRA_TOKEN_SECRET_LEN + 1)
        return -1;
    out[0] = '\0';
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    /* base32 (RFC 4648 alphabet, lower case, no padding): 256 bits -> 52 chars */
    memcpy(out, "snt_", 4);
    size_t o = 4;
    unsigned buf = 0;
    int bits = 0;
    for (size_t i = 0; i < sizeof raw; i++) {
        buf = (buf << 8) | raw[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = b32[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = b32[(buf << (5 - bits)) & 31];
    out[o] = '\0';
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

/* ---------------------------------------------------------------- command */

static int usage(void)
{
    fprintf(stderr,
            "usage: sentrad token create --role district|province|national|admin\n"
            "                            [--region CODE] [--label TEXT] [--db CONNINFO]\n"
            "       sentrad token list [--db CONNINFO]\n"
            "       sentrad token revoke ID [--db CONNINFO]\n"
            "\n"
            "A district token needs --region with a regency/city code (18.71), a\n"
            "province token a province code (18). create prints only the secret on\n"
            "stdout; it is shown once and only its SHA-256 is stored.\n");
    return 2;
}

/* Prints an SQL error readably: the message, then its detail lines. */
static void print_error(const char *what, const PGresult *res, const PGconn *db)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;

    fprintf(stderr, "sentrad token %s: %s\n", what, msg ? msg : PQerrorMessage(db));
    if (detail)
        fprintf(stderr, "  %s\n", detail);
}

static int cmd_create(PGconn *db, const char *role, const char *region, const char *label)
{
    char secret[SENTRA_TOKEN_SECRET_LEN + 1];
    static const char *const roles[] = {"district", "province", "national", "admin"};
    int known = 0;

    for (size_t i = 0; i < 4; i++)
        known |= role && strcmp(role, roles[i]) == 0;
    if (!known) {
        fprintf(stderr, "sentrad token create: --role must be district, province, national or admin\n");
        return 2;
    }
    if ((strcmp(role, "district") == 0 || strcmp(role, "province") == 0) != (region != NULL)) {
        fprintf(stderr, "sentrad token create: %s\n",
                region ? "--region is only for district and province tokens"
                       : "a district or province token needs --region");
        return 2;
    }
    if (sentra__token_secret(secret, sizeof secret) != 0) {
        fprintf(stderr, "sentrad token create: no randomness available: %s\n", strerror(errno));
        return 1;
    }
    /* Only the SHA-256 goes to PostgreSQL, computed here as the server's
     * lookup does (auth.c): the secret never appears in a statement. */
    uint8_t digest[AUTH_DIGEST_LEN];
    char hash[AUTH_DIGEST_PARAM_LEN];
    auth_digest(secret, digest);
    auth_digest_param(digest, hash);
    const char *v[4] = {hash, role, region, label ? label : ""};
    PGresult *res = PQexecParams(db,
        "INSERT INTO api_token (secret_hash, role, region_code, label) "
        "VALUES ($1::bytea, $2, $3, $4) "
        "RETURNING id, role, coalesce(region_code, ''), label",
        4, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "23503") == 0)
            fprintf(stderr, "sentrad token create: no region %s\n", region);
        else
            print_error("create", res, db);
        PQclear(res);
        OPENSSL_cleanse(secret, sizeof secret);
        return 1;
    }
    fprintf(stderr, "created token %s role=%s region=%s label=\"%s\"\n"
            "the secret below is shown once; store it now\n",
            PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
            PQgetvalue(res, 0, 2)[0] ? PQgetvalue(res, 0, 2) : "-",
            PQgetvalue(res, 0, 3));
    printf("%s\n", secret);
    fflush(stdout);
    PQclear(res);
    OPENSSL_cleanse(secret, sizeof secret);
    return 0;
}

static int cmd_list(PGconn *db)
{
    PGresult *res = PQexec(db,
        "SELECT id, role, coalesce(region_code, '-'), "
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), "
        "coalesce(to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '-'), label "
        "FROM api_token ORDER BY created_at, id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        print_error("list", res, db);
        PQclear(res);
        return 1;
    }
    printf("%-36s  %-8s  %-6s  %-16s  %-16s  %s\n", "ID", "ROLE", "REGION",
           "CREATED (UTC)", "REVOKED (UTC)", "LABEL");
    for (int i = 0; i < PQntuples(res); i++)
        printf("%-36s  %-8s  %-6s  %-16s  %-16s  %s\n", PQgetvalue(res, i, 0),
               PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
               PQgetvalue(res, i, 4), PQgetvalue(res, i, 5));
    PQclear(res);
    return 0;
}

static int cmd_revoke(PGconn *db, const char *id)
{
    const char *v[1] = {id};
    PGresult *res = PQexecParams(db,
        "UPDATE api_token SET revoked_at = coalesce(revoked_at, now()) "
        "WHERE id::text = lower($1) RETURNING id, role",
        1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        print_error("revoke", res, db);
        PQclear(res);
        return 1;
    }
    if (PQntuples(res) != 1) {
        fprintf(stderr, "sentrad token revoke: no token %s\n", id);
        PQclear(res);
        return 1;
    }
    fprintf(stderr, "revoked token %s (%s)\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    PQclear(res);
    return 0;
}

int token_cli_main(const char *conninfo, int argc, char **argv)
{
    const char *role = NULL, *region = NULL, *label = NULL, *sub = NULL, *arg = NULL;
    int i = 0;

    if (argc > 0 && strcmp(argv[0], "token") == 0)
        i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--role") == 0)
            dst = &role;
        else if (strcmp(a, "--region") == 0)
            dst = &region;
        else if (strcmp(a, "--label") == 0)
            dst = &label;
        else if (strcmp(a, "--db") == 0)
            dst = &conninfo;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return usage(), 0;
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sentrad token: %s needs a value\n", a);
                return usage();
            }
            *dst = argv[++i];
        } else if (a[0] == '-') {
            fprintf(stderr, "sentrad token: unknown option %s\n", a);
            return usage();
        } else if (!sub) {
            sub = a;
        } else if (!arg) {
            arg = a;
        } else {
            fprintf(stderr, "sentrad token: unexpected argument %s\n", a);
            return usage();
        }
    }
    if (!sub)
        return usage();
    if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "revoke") != 0) {
        fprintf(stderr, "sentrad token: unknown command %s\n", sub);
        return usage();
    }
    if ((strcmp(sub, "revoke") == 0) != (arg != NULL))
        return usage();
    if (region && !region[0])
        region = NULL;
    if (!conninfo)
        conninfo = getenv("SENTRA_DB_URL");
    if (!conninfo) {
        fprintf(stderr, "sentrad token: no database: give --db CONNINFO or set SENTRA_DB_URL\n");
        return 2;
    }

    PGconn *db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, "sentrad token: cannot connect: %s", PQerrorMessage(db));
        PQfinish(db);
        return 1;
    }
    int rc;
    if (strcmp(sub, "create") == 0)
        rc = cmd_create(db, role, region, label);
    else if (strcmp(sub, "list") == 0)
        rc = cmd_list(db);
    else
        rc = cmd_revoke(db, arg);
    PQfinish(db);
    return rc;
}
