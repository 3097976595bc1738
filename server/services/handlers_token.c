/*
 * handlers_token.c: TokenService. CreateToken, ListTokens and RevokeToken
 * are for admin tokens only; WhoAmI answers any valid token with itself.
 *
 * The admin role is checked three times: by the call layer (METHOD_ADMIN),
 * here, and in each statement's WHERE clause (the caller's role is a
 * parameter), so a mistake in one place cannot hand out tokens. WhoAmI
 * reads one row, found by the id the call layer took from the verified
 * token, never by anything the request says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "call.h"
#include "methods.h"
#include "token_cli.h"
#include "validate.h"
#include "sentra/v1/sentra.pb-c.h"

/* Columns of every statement: id, role, region, label, created_ms,
 * revoked_ms. */
#define TOKEN_COLS \
    "id, role, coalesce(region_code, ''), label, " \
    "(extract(epoch FROM created_at) * 1000)::bigint, " \
    "coalesce((extract(epoch FROM revoked_at) * 1000)::bigint, 0)"

static void token_from_row(Sentra__V1__Token *t, const PGresult *res, int row)
{
    sentra__v1__token__init(t);
    t->id = PQgetvalue(res, row, 0);
    t->role = auth_role_from_name(PQgetvalue(res, row, 1));
    t->region_code = PQgetvalue(res, row, 2);
    t->label = PQgetvalue(res, row, 3);
    t->created_at_ms = strtoll(PQgetvalue(res, row, 4), NULL, 10);
    t->revoked_at_ms = strtoll(PQgetvalue(res, row, 5), NULL, 10);
}

static int require_admin(call_t *c)
{
    if (c->auth.role == SENTRA__V1__ROLE__ROLE_ADMIN)
        return 1;
    call_fail(c, SENTRA_PERMISSION_DENIED, "only an admin token manages tokens");
    return 0;
}

static void fail_field(call_t *c, const char *field, const char *reason)
{
    violations_t v = {0};
    violations_add(&v, field, "%s", reason);
    call_fail_violations(c, &v);
    violations_free(&v);
}

/* ---------------------------------------------------------------- create */

/* $1 is the SHA-256 of the secret, computed here (auth_digest): the secret
 * never reaches PostgreSQL, so no statement or log there can show it. The
 * handler keeps it (c->handler_state) until the answer. */
static db_stmt_t create_stmt = {
    "INSERT INTO api_token (secret_hash, role, region_code, label) "
    "SELECT $1::bytea, $2, $3, $4 WHERE $5 = 'admin' "
    "RETURNING " TOKEN_COLS, 0, 0};

/* The secret must not linger in freed memory. */
static void wipe_secret(void *p)
{
    OPENSSL_cleanse(p, SENTRA_TOKEN_SECRET_LEN + 1);
}

static void create_done(call_t *c, PGresult *res)
{
    Sentra__V1__CreateTokenResponse resp = SENTRA__V1__CREATE_TOKEN_RESPONSE__INIT;
    Sentra__V1__Token t;

    if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "23503") == 0) {
            fail_field(c, "region_code", "is not a known region");
            return;
        }
    }
    if (call_db_error(c, res))
        return;
    if (PQntuples(res) != 1) {
        call_fail(c, SENTRA_PERMISSION_DENIED, "only an admin token manages tokens");
        return;
    }
    token_from_row(&t, res, 0);
    resp.token = &t;
    resp.secret = c->handler_state;
    call_reply(c, &resp.base);
}

void h_create_token(call_t *c)
{
    const Sentra__V1__CreateTokenRequest *req = (const void *)c->msg;
    char *secret;
    const char *region = req->region_code && req->region_code[0] ? req->region_code : NULL;
    int scoped = req->role == SENTRA__V1__ROLE__ROLE_DISTRICT ||
                 req->role == SENTRA__V1__ROLE__ROLE_PROVINCE;
    size_t chars;

    if (!require_admin(c))
        return;
    if (req->role < SENTRA__V1__ROLE__ROLE_DISTRICT || req->role > SENTRA__V1__ROLE__ROLE_ADMIN) {
        fail_field(c, "role", "must be district, province, national or admin");
        return;
    }
    if (scoped && !region) {
        fail_field(c, "region_code", "is required for district and province tokens");
        return;
    }
    if (!scoped && region) {
        fail_field(c, "region_code", "must be empty for national and admin tokens");
        return;
    }
    if (region && validate_region_code(region) !=
                      (req->role == SENTRA__V1__ROLE__ROLE_DISTRICT ? 2 : 1)) {
        fail_field(c, "region_code", req->role == SENTRA__V1__ROLE__ROLE_DISTRICT
                                         ? "must be a regency/city code shaped NN.NN"
                                         : "must be a province code shaped NN");
        return;
    }
    if (!validate_utf8(req->label ? req->label : "", req->label ? strlen(req->label) : 0,
                       &chars) || chars > 200) {
        fail_field(c, "label", "must be valid UTF-8 of at most 200 characters");
        return;
    }
    /* Admins read labels in listings: the text rule of every other one-line
     * field (validate_text_char). */
    validate_ctx_t vc = {.report = violations_report};
    violations_t lv = {0};
    vc.arg = &lv;
    if (!validate_text(&vc, "label", req->label, 0, 200, TEXT_SINGLE_LINE)) {
        call_fail_violations(c, &lv);
        violations_free(&lv);
        return;
    }
    secret = call_alloc(c, SENTRA_TOKEN_SECRET_LEN + 1);
    call_on_free(c, wipe_secret, secret);
    if (sentra__token_secret(secret, SENTRA_TOKEN_SECRET_LEN + 1) != 0) {
        call_fail(c, SENTRA_UNAVAILABLE, "no randomness available for a secret");
        return;
    }
    c->handler_state = secret;
    uint8_t digest[AUTH_DIGEST_LEN];
    char hash[AUTH_DIGEST_PARAM_LEN];
    auth_digest(secret, digest);
    auth_digest_param(digest, hash);
    const char *v[5] = {hash, auth_role_name(req->role), region,
                        req->label ? req->label : "", auth_role_name(c->auth.role)};
    call_query(c, &create_stmt, 5, v, create_done);
}

/* ---------------------------------------------------------------- list */

static db_stmt_t list_stmt = {
    "SELECT " TOKEN_COLS " FROM api_token WHERE $1 = 'admin' ORDER BY created_at, id", 0, 0};

static void list_done(call_t *c, PGresult *res)
{
    Sentra__V1__ListTokensResponse resp = SENTRA__V1__LIST_TOKENS_RESPONSE__INIT;
    int n;

    if (call_db_error(c, res))
        return;
    n = PQntuples(res);
    if (n > 0) {
        Sentra__V1__Token *ts = call_alloc(c, (size_t)n * sizeof *ts);
        resp.tokens = call_alloc(c, (size_t)n * sizeof *resp.tokens);
        for (int i = 0; i < n; i++) {
            token_from_row(&ts[i], res, i);
            resp.tokens[i] = &ts[i];
        }
        resp.n_tokens = (size_t)n;
    }
    call_reply(c, &resp.base);
}

void h_list_tokens(call_t *c)
{
    const char *v[1] = {auth_role_name(c->auth.role)};

    if (!require_admin(c))
        return;
    call_query(c, &list_stmt, 1, v, list_done);
}

/* ---------------------------------------------------------------- revoke */

/* Revoking twice is harmless: the first revocation time stays. The
 * api_token_notify trigger tells every server to drop its cached tokens. */
static db_stmt_t revoke_stmt = {
    "UPDATE api_token SET revoked_at = coalesce(revoked_at, now()) "
    "WHERE id = $1::uuid AND $2 = 'admin' RETURNING " TOKEN_COLS, 0, 0};

static void revoke_done(call_t *c, PGresult *res)
{
    Sentra__V1__Token t;

    if (call_db_error(c, res))
        return;
    if (PQntuples(res) != 1) {
        call_fail(c, SENTRA_NOT_FOUND, "no such token");
        return;
    }
    token_from_row(&t, res, 0);
    call_reply(c, &t.base);
}

/* ---------------------------------------------------------------- who am I */

/* The caller's own token; revoked_at IS NULL because one revoked since its
 * check (cached for up to a minute) is answered as unknown. */
static db_stmt_t whoami_stmt = {
    "SELECT " TOKEN_COLS " FROM api_token WHERE id = $1::uuid AND revoked_at IS NULL", 0, 1};

static void whoami_done(call_t *c, PGresult *res)
{
    Sentra__V1__Token t;

    if (call_db_error(c, res))
        return;
    if (PQntuples(res) != 1) {
        call_fail(c, SENTRA_UNAUTHENTICATED, "token unknown or revoked");
        return;
    }
    token_from_row(&t, res, 0);
    call_reply(c, &t.base);
}

void h_who_am_i(call_t *c)
{
    const char *v[1] = {c->auth.token_id};
    call_query(c, &whoami_stmt, 1, v, whoami_done);
}

void h_revoke_token(call_t *c)
{
    const Sentra__V1__RevokeTokenRequest *req = (const void *)c->msg;

    if (!require_admin(c))
        return;
    if (!validate_uuid(req->id)) {
        fail_field(c, "id", req->id && req->id[0] ? "must be a UUID" : "is required");
        return;
    }
    const char *v[2] = {req->id, auth_role_name(c->auth.role)};
    call_query(c, &revoke_stmt, 2, v, revoke_done);
}
