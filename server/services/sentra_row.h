/*
 * sentra_row.h: between PostgreSQL rows and sentra.v1.Sentra messages.
 *
 * Reading: the view sentra_rows (migrations/0004_sentra_functions.sql)
 * yields one row per (sentra, figures year), or one row with NULL figures
 * columns for a sentra without figures; rows of one sentra are adjacent and
 * ordered by year. The SENTRA_COL_* numbers below are its columns: change
 * both together.
 *
 * Writing: the write functions take the record's fields as text parameters
 * in the order of SENTRA_PARAM_*; sentra__params fills them from a message.
 */
#ifndef SENTRA_SENTRA_ROW_H
#define SENTRA_SENTRA_ROW_H

#include <stdint.h>

#include <libpq-fe.h>

#include "call.h"
#include "sentra/v1/sentra.pb-c.h"

enum sentra_col {
    SENTRA_COL_ID, SENTRA_COL_REGENCY, SENTRA_COL_DISTRICT, SENTRA_COL_VILLAGE,
    SENTRA_COL_ADDRESS, SENTRA_COL_LAT, SENTRA_COL_LON, SENTRA_COL_NAME,
    SENTRA_COL_COMMODITY, SENTRA_COL_MAIN_PRODUCT, SENTRA_COL_KBLI_CODE,
    SENTRA_COL_KBLI_VERSION, SENTRA_COL_SECTOR_GROUP, SENTRA_COL_STATUS,
    SENTRA_COL_FORMED_ON, SENTRA_COL_DECREE_NUMBER, SENTRA_COL_DECREE_DATE,
    SENTRA_COL_DECREE_OFFICIAL, SENTRA_COL_CONTACT_NAME, SENTRA_COL_CONTACT_PHONE,
    SENTRA_COL_VERSION, SENTRA_COL_CREATED_MS, SENTRA_COL_UPDATED_MS,
    SENTRA_COL_CREATED_BY, SENTRA_COL_UPDATED_BY, SENTRA_COL_PROVINCE,
    SENTRA_COL_DELETED,
    SENTRA_COL_FIG_YEAR, SENTRA_COL_BUSINESS_UNITS, SENTRA_COL_WORKERS_MALE,
    SENTRA_COL_WORKERS_FEMALE, SENTRA_COL_INVESTMENT, SENTRA_COL_PRODUCTION_VALUE,
    SENTRA_COL_MATERIAL_VALUE, SENTRA_COL_CAPACITY, SENTRA_COL_CAPACITY_UNIT,
    SENTRA_COL_EXPORT_SHARE_BP, SENTRA_COL_EXPORT_DESTINATIONS,
    SENTRA_NCOLS
};

/* The select list of sentra_rows, from a row `a` of the view sentra_api
 * and a row `f` of sentra_figures (both string literals naming aliases),
 * for queries that build the rows themselves (ListSentra computes the
 * output columns only for its page). */
#define SENTRA_ROW_COLUMNS_OF(a, f) \
    a ".id, " a ".regency_code, " a ".district_code, " a ".village_code, " \
    a ".address, " a ".latitude, " a ".longitude, " a ".name, " a ".commodity, " \
    a ".main_product, " a ".kbli_code, " a ".kbli_version, " a ".sector_group, " \
    a ".status, " a ".formed_on, " a ".decree_number, " a ".decree_date, " \
    a ".decree_official, " a ".contact_name, " a ".contact_phone, " a ".version, " \
    a ".created_ms, " a ".updated_ms, " a ".created_by, " a ".updated_by, " \
    a ".province_code, " a ".deleted, " \
    f ".year, " f ".business_units, " f ".workers_male, " f ".workers_female, " \
    f ".investment, " f ".production_value, " f ".material_value, " f ".capacity, " \
    f ".capacity_unit, " f ".export_share_bp, " \
    "array_to_string(" f ".export_destinations, ',')"

/* Parses the sentra starting at row *row of res and advances *row past its
 * rows. The message and everything in it are call_alloc() memory; its
 * strings point into res, so it is valid only while res is (serialize it
 * in the query callback). Returns NULL when res has too few columns or
 * *row is out of range. */
Sentra__V1__Sentra *sentra__from_rows(call_t *c, const PGresult *res, int *row);

/* The columns a pull reads for a record (server/services/handlers_sync.c): its id,
 * version and whether it is gone for the caller (deleted or out of scope),
 * then, when it is not, the record as the table sentra_pull keeps it
 * printed (migrations/0007_pull_rows.sql; NULL for a tombstone). */
enum sentra_pull_col {
    SENTRA_PULL_ID, SENTRA_PULL_VERSION, SENTRA_PULL_DELETED, SENTRA_PULL_PACKED,
    SENTRA_PULL_NCOLS
};

/* Parses the record of row `row` of a pull's result (columns above). Memory
 * as for sentra__from_rows (the packed text is copied into call memory).
 * Returns NULL when res has too few columns or row is out of range. */
Sentra__V1__Sentra *sentra__from_pull(call_t *c, const PGresult *res, int row);

/* A growing byte buffer (malloc'ed; free b->p). */
typedef struct sentra_wbuf {
    uint8_t *p;
    size_t len, cap;
} sentra_wbuf_t;

/* Appends to b the sentra.v1.Sentra wire encoding of one pull row, given
 * its columns (enum sentra_pull_col): id, version, deleted ("t"/"f") and
 * packed of plen bytes followed by a NUL, as PQgetvalue gives it (NULL:
 * a tombstone). The bytes are exactly those of
 * protobuf_c_message_pack(sentra__from_pull(...)) (fields in number
 * order, proto3 defaults left out), without building the message: a
 * stream's catch-up sends 100,000 records (tests/unit/test_pull_wire.c
 * compares both). Returns the number of bytes appended. Aborts on OOM. */
size_t sentra__pull_wire(sentra_wbuf_t *b, const char *id, const char *version,
                         const char *deleted, const char *packed, size_t plen);

/* Reserves n more bytes in b (aborts on OOM). */
void sentra__wbuf_reserve(sentra_wbuf_t *b, size_t n);

/* Parameters of the write functions, after their leading (token, role,
 * region, idempotency key, id[, expected version, mask]) ones. */
enum sentra_param {
    SENTRA_PARAM_REGENCY, SENTRA_PARAM_DISTRICT, SENTRA_PARAM_VILLAGE,
    SENTRA_PARAM_ADDRESS, SENTRA_PARAM_LAT, SENTRA_PARAM_LON, SENTRA_PARAM_NAME,
    SENTRA_PARAM_COMMODITY, SENTRA_PARAM_MAIN_PRODUCT, SENTRA_PARAM_KBLI_CODE,
    SENTRA_PARAM_KBLI_VERSION, SENTRA_PARAM_SECTOR_GROUP, SENTRA_PARAM_STATUS,
    SENTRA_PARAM_FORMED_ON, SENTRA_PARAM_DECREE_NUMBER, SENTRA_PARAM_DECREE_DATE,
    SENTRA_PARAM_DECREE_OFFICIAL, SENTRA_PARAM_CONTACT_NAME,
    SENTRA_PARAM_CONTACT_PHONE, SENTRA_PARAM_FIGURES,
    SENTRA_NPARAMS
};

/* Fills values[0..SENTRA_NPARAMS) from s: empty optional strings become
 * NULL, enums their SQL numbers, figures a JSON array. The strings are
 * call_alloc() memory or point into s. s must have passed validation. */
void sentra__params(call_t *c, const Sentra__V1__Sentra *s, const char **values);

/* KBLI edition: proto enum <-> the year stored in SQL (0 / 0 when unknown). */
/* A decimal integer as PostgreSQL prints one (an optional '-', digits):
 * strtoll without its locale, base and error handling, which showed at
 * the top of a pull's profile. Stops at the first other character. */
static inline int64_t sentra__dec_i64(const char *p)
{
    uint64_t v = 0;
    int neg = *p == '-';

    p += neg;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    return neg ? (int64_t)(0 - v) : (int64_t)v;
}

int sentra__kbli_year(int version_enum);
int sentra__kbli_enum(int year);

/* Appends s to a JSON string being built in buf (quoted and escaped).
 * Exposed for tests. Returns the new length, or -1 when it does not fit. */
int sentra__json_string(char *buf, size_t cap, size_t len, const char *s);

#endif
