/*
 * handlers_region.c: GetRegion and ListRegions.
 *
 * Regions are public reference data: any valid token reads all of them.
 * ListRegions pages by code (a keyset cursor: the last code served).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "methods.h"
#include "validate.h"
#include "sentra/v1/sentra.pb-c.h"

/* region.level in SQL <-> sentra.v1.RegionLevel */
static const char *const level_names[] = {
    [SENTRA__V1__REGION_LEVEL__REGION_LEVEL_PROVINCE] = "province",
    [SENTRA__V1__REGION_LEVEL__REGION_LEVEL_REGENCY] = "regency",
    [SENTRA__V1__REGION_LEVEL__REGION_LEVEL_CITY] = "city",
    [SENTRA__V1__REGION_LEVEL__REGION_LEVEL_DISTRICT] = "district",
    [SENTRA__V1__REGION_LEVEL__REGION_LEVEL_VILLAGE] = "village",
};

static int level_from_name(const char *s)
{
    for (int i = 1; i <= 5; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return SENTRA__V1__REGION_LEVEL__REGION_LEVEL_UNSPECIFIED;
}

/* Columns: code, level, name, parent_code, bps_code (never NULL). */
#define REGION_COLS \
    "code, level, name, coalesce(parent_code, ''), coalesce(bps_code, '')"

static void region_from_row(Sentra__V1__Region *r, const PGresult *res, int row)
{
    sentra__v1__region__init(r);
    r->code = PQgetvalue(res, row, 0);
    r->level = level_from_name(PQgetvalue(res, row, 1));
    r->name = PQgetvalue(res, row, 2);
    r->parent_code = PQgetvalue(res, row, 3);
    r->bps_code = PQgetvalue(res, row, 4);
}

static void fail_field(call_t *c, const char *field, const char *reason)
{
    violations_t v = {0};
    violations_add(&v, field, "%s", reason);
    call_fail_violations(c, &v);
    violations_free(&v);
}

/* ---------------------------------------------------------------- get */

static db_stmt_t get_stmt = {"SELECT " REGION_COLS " FROM region WHERE code = $1", 0, 1};

static void get_done(call_t *c, PGresult *res)
{
    Sentra__V1__Region r;

    if (call_db_error(c, res))
        return;
    if (PQntuples(res) != 1) {
        const Sentra__V1__GetRegionRequest *req = (const void *)c->msg;
        call_fail(c, SENTRA_NOT_FOUND, "no region %s", req->code);
        return;
    }
    region_from_row(&r, res, 0);
    call_reply(c, &r.base);
}

void h_get_region(call_t *c)
{
    const Sentra__V1__GetRegionRequest *req = (const void *)c->msg;
    const char *v[1] = {req->code};

    if (!validate_region_code(req->code)) {
        fail_field(c, "code", req->code && req->code[0] ? "is not a Kemendagri region code"
                                                        : "is required");
        return;
    }
    call_query(c, &get_stmt, 1, v, get_done);
}

/* ---------------------------------------------------------------- list */

/* Empty parent and no level: the provinces. Empty parent with a level:
 * every region of that level (e.g. all 514 regencies and cities). */
static db_stmt_t list_stmt = {
    "SELECT " REGION_COLS " FROM region "
    "WHERE (CASE WHEN $1::text IS NOT NULL THEN parent_code = $1 "
    "            WHEN $2::text IS NULL THEN parent_code IS NULL "
    "            ELSE true END) "
    "AND ($2::text IS NULL OR level = $2) "
    "AND ($3::text IS NULL OR code > $3) "
    "ORDER BY code LIMIT $4::int", 0, 0};

static int list_page_size(const Sentra__V1__ListRegionsRequest *req)
{
    if (req->page_size <= 0)
        return 1000;
    return req->page_size > 10000 ? 10000 : req->page_size;
}

static void list_done(call_t *c, PGresult *res)
{
    const Sentra__V1__ListRegionsRequest *req = (const void *)c->msg;
    Sentra__V1__ListRegionsResponse resp = SENTRA__V1__LIST_REGIONS_RESPONSE__INIT;
    int page = list_page_size(req), n;

    if (call_db_error(c, res))
        return;
    n = PQntuples(res);
    if (n > page) {
        /* the extra row only says more exist; the token is the last code served */
        n = page;
        resp.next_page_token = PQgetvalue(res, n - 1, 0);
    }
    if (n > 0) {
        Sentra__V1__Region *rs = call_alloc(c, (size_t)n * sizeof *rs);
        resp.regions = call_alloc(c, (size_t)n * sizeof *resp.regions);
        for (int i = 0; i < n; i++) {
            region_from_row(&rs[i], res, i);
            resp.regions[i] = &rs[i];
        }
        resp.n_regions = (size_t)n;
    }
    call_reply(c, &resp.base);
}

void h_list_regions(call_t *c)
{
    const Sentra__V1__ListRegionsRequest *req = (const void *)c->msg;
    const char *v[4];

    if (req->parent_code && req->parent_code[0] && !validate_region_code(req->parent_code)) {
        fail_field(c, "parent_code", "is not a Kemendagri region code");
        return;
    }
    if (req->level < 0 || req->level > 5) {
        fail_field(c, "level", "is not a known region level");
        return;
    }
    if (req->page_size < 0) {
        fail_field(c, "page_size", "must not be negative");
        return;
    }
    /* The page token is the last code of the previous page. */
    if (req->page_token && req->page_token[0] && !validate_region_code(req->page_token)) {
        fail_field(c, "page_token", "is not a token from this listing");
        return;
    }
    v[0] = req->parent_code && req->parent_code[0] ? req->parent_code : NULL;
    v[1] = req->level ? level_names[req->level] : NULL;
    v[2] = req->page_token && req->page_token[0] ? req->page_token : NULL;
    v[3] = call_printf(c, "%d", list_page_size(req) + 1);
    call_query(c, &list_stmt, 4, v, list_done);
}
