/*
 * filter.h: the WHERE clause of a SentraFilter inside the caller's token
 * scope, built once for every reader of the registry (ListSentra,
 * GetStatistics, GetTimeSeries, PullChanges) so that the same filter means
 * the same rows everywhere: the statistics equal the counts of a listing.
 *
 * A filter becomes a "shape" (which conditions are present, as bits) plus
 * parameter values. The SQL text depends only on the shape, never on the
 * values, so a caller can cache one prepared statement per shape; values
 * always travel as $n parameters.
 *
 * Meaning of each condition (s is the sentra table's alias):
 *   scope       district token: s.regency_code = its regency; province
 *               token: s.province_code = its province; national and admin:
 *               everything. Tombstones are never included.
 *   province    s.province_code = $n
 *   regency     s.regency_code = $n
 *   status      s.status = ANY ($n::smallint[])     (any of the listed)
 *   sector      s.sector_group = ANY ($n::smallint[])
 *   kbli        s.kbli_code LIKE $n || '%'          (digits only, validated)
 *   designated  s.designated / NOT s.designated     (status 2 or 3)
 *   text        s.search LIKE '%' || <lower(text), LIKE-escaped> || '%'
 *               (s.search = lower(name || ' ' || commodity || ' ' ||
 *               main_product), trigram-indexed: a case-insensitive
 *               substring match)
 *   updated     s.updated_at >= 'epoch' + $n milliseconds
 * Filters a token cannot see past intersect with its scope (a district
 * token filtering on another province gets nothing, not an error).
 */
#ifndef SENTRA_FILTER_H
#define SENTRA_FILTER_H

#include "call.h"

/* Shape bits: which conditions a filter has. */
enum {
    SF_SCOPE_REGENCY  = 1u << 0,   /* district token */
    SF_SCOPE_PROVINCE = 1u << 1,   /* province token */
    SF_PROVINCE       = 1u << 2,
    SF_REGENCY        = 1u << 3,
    SF_STATUS         = 1u << 4,
    SF_SECTOR         = 1u << 5,
    SF_KBLI           = 1u << 6,
    SF_DESIGNATED     = 1u << 7,
    SF_NOT_DESIGNATED = 1u << 8,
    SF_TEXT           = 1u << 9,
    SF_UPDATED_SINCE  = 1u << 10
};
#define SF_BITS 11
#define SF_MAX_PARAMS 9

/* A bound filter: its shape and its parameter values in $n order. */
typedef struct sentra_filter {
    unsigned shape;                        /* SF_* bits */
    int nparams;                           /* values used in params[] */
    const char *params[SF_MAX_PARAMS];     /* call_alloc'ed or static text */
} sentra_filter_t;

/* Checks f (NULL: no filter) and reports violations under "filter." into v.
 * Returns the number of violations (0: valid). */
int sentra__filter_check(const Sentra__V1__SentraFilter *f, violations_t *v);

/* Binds a checked filter f (may be NULL) within c's token scope: fills out
 * with the shape and the parameter values (allocated with call_alloc, freed
 * with the call). */
void sentra__filter_bind(call_t *c, const Sentra__V1__SentraFilter *f,
                         sentra_filter_t *out);

/* Appends to buf the conditions of shape as " AND (...)" terms over the
 * sentra alias `alias`, with parameters numbered from first_param in the
 * order sentra__filter_bind stores them. The live-row condition
 * (deleted_at IS NULL) is included. Returns the length the text needs
 * (like snprintf); the text is truncated (and NUL-terminated) when len is
 * too small. */
size_t sentra__filter_sql(unsigned shape, const char *alias, int first_param,
                          char *buf, size_t len);

#endif
