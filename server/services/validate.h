/*
 * validate.h: the rules a sentra record and the other SentraService
 * requests must follow, checked in pure C (no I/O, no allocation beyond the
 * stack, no global state) so they can be unit-tested and fuzzed.
 *
 * Every broken rule is reported once through a callback as (field path,
 * reason), e.g. ("decree.date", "is before the formation date"). Rules that
 * need the database (the region exists and is a regency or city, the
 * sub-district and village are known and inside it, cross-field rules of a
 * partial update against the stored record) are checked again by the SQL
 * write functions (migrations/0004_sentra_functions.sql), which also hold
 * every rule below as constraints and triggers.
 */
#ifndef SENTRA_VALIDATE_H
#define SENTRA_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "sentra/v1/sentra.pb-c.h"

/* Called once per violation; field and reason are valid only during the
 * call (copy them). Past the context's max, both are NULL: one more
 * violation to count, nothing to list. */
typedef void (*validate_report_fn)(void *arg, const char *field, const char *reason);

typedef struct validate_ctx {
    int today;                  /* "today" as YYYYMMDD (see validate_today) */
    validate_report_fn report;  /* where violations go; may be NULL (count only) */
    void *arg;                  /* passed to report */
    int count;                  /* violations found so far (listed or not) */
    int max;                    /* list only the first max (0: all); the
                                 * rest reach report as (NULL, NULL), never
                                 * formatted, so 25,000 bad entries cost little */
} validate_ctx_t;

/* Limits on repeated fields, checked before their entries are (each over
 * the limit is one violation on the list itself). */
#define VALIDATE_MAX_MASK_PATHS 32     /* update_mask (19 fields and aliases) */
#define VALIDATE_MAX_STATUS_FILTER 5   /* filter.status: one per status */
#define VALIDATE_MAX_SECTOR_FILTER 6   /* filter.sector_group: one per group */
/* Times in Unix milliseconds stop before the year 10000
 * (9999-12-31T23:59:59.999Z), the range of PostgreSQL's arithmetic too. */
#define VALIDATE_MAX_TIME_MS 253402300799999LL

/* Today's date in Indonesia's easternmost zone (WIT, UTC+9) as YYYYMMDD:
 * a date that is today anywhere in the country is not "in the future". The
 * SQL function sentra_today() uses the same rule. */
int validate_today(void);

/* The largest money figure (investment, production and material value, in
 * whole rupiah) a record may hold: Rp 100 trillion. The CHECK
 * sentra_figures_money_bound (migrations/0009_integrity.sql) holds the same
 * bound for every writer; docs/DATA_MODEL.md says why this one. */
#define VALIDATE_MONEY_MAX INT64_C(100000000000000)

/* ---------------------------------------------------------------- fields */

/* The updatable fields of a sentra, as bits. A field mask path names one of
 * them, or "decree" (all three decree fields), or "*" (all). */
enum {
    VF_REGENCY_CODE    = 1u << 0,
    VF_DISTRICT_CODE   = 1u << 1,
    VF_VILLAGE_CODE    = 1u << 2,
    VF_ADDRESS         = 1u << 3,
    VF_LOCATION        = 1u << 4,
    VF_NAME            = 1u << 5,
    VF_COMMODITY       = 1u << 6,
    VF_MAIN_PRODUCT    = 1u << 7,
    VF_KBLI_CODE       = 1u << 8,
    VF_KBLI_VERSION    = 1u << 9,
    VF_SECTOR_GROUP    = 1u << 10,
    VF_STATUS          = 1u << 11,
    VF_FORMED_ON       = 1u << 12,
    VF_DECREE_NUMBER   = 1u << 13,
    VF_DECREE_DATE     = 1u << 14,
    VF_DECREE_OFFICIAL = 1u << 15,
    VF_FIGURES         = 1u << 16,
    VF_CONTACT_NAME    = 1u << 17,
    VF_CONTACT_PHONE   = 1u << 18,
    VF_ALL             = (1u << 19) - 1
};
#define VF_COUNT 19

/* The canonical name of field bit i (0 <= i < VF_COUNT), as the SQL update
 * function expects it in its mask: "regency_code", ..., "decree.number",
 * "decree.date", "decree.official", ..., "contact_phone". */
const char *validate_field_name(int i);

/* Parses an update mask into field bits. An empty mask means every field (a
 * full replacement). Unknown or output-only paths are reported as
 * "update_mask[i]" (a path is quoted back only when it is at most 64
 * printable ASCII characters); more than VALIDATE_MAX_MASK_PATHS paths as
 * "update_mask". Returns the bits (0 when any path was bad). */
unsigned validate_mask(validate_ctx_t *vc, const char *const *paths, size_t n);

/* ---------------------------------------------------------------- records */

/* Checks the fields of s named by fields (VF_ALL for a create). Cross-field
 * rules (decree needed when designated, decree date after formation,
 * 5 business units when designated, village inside district inside
 * regency) are checked when every field they involve is in fields; the SQL
 * update function checks them against the merged record otherwise.
 * is_update: the id is required (a create may leave it empty).
 * Returns the number of violations found by this call (0: valid). */
int validate_sentra(validate_ctx_t *vc, const Sentra__V1__Sentra *s,
                    unsigned fields, int is_update);

/* ---------------------------------------------------------------- pieces */

/* 1 if s is a UUID in canonical text form (8-4-4-4-12 hex digits). */
int validate_uuid(const char *s);

/* 1 if s is a real calendar date "YYYY-MM-DD"; stores YYYYMMDD in *ymd. */
int validate_date(const char *s, int *ymd);

/* 1 if the len bytes at s are valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF); stores the number of code points in *chars. */
int validate_utf8(const char *s, size_t len, size_t *chars);

/* Text fields: no character that makes text display as other than what it
 * holds. Returns 1 when code point cp may appear in a text field: not a C0
 * control (tab, line feed and carriage return are allowed when multiline),
 * DEL or a C1 control (U+0080..U+009F); not U+2028/U+2029 (line and
 * paragraph separators); not a bidirectional embedding, override or isolate
 * (U+202A..U+202E, U+2066..U+2069: "Trojan Source", CVE-2021-42574); not
 * an invisible character with no use in a name or address (U+200B zero
 * width space, U+2060..U+2064, U+FEFF, U+FFF9..U+FFFB interlinear
 * annotation, U+E0000..U+E007F tags). Allowed: every other character,
 * including the directional marks U+200E, U+200F and U+061C that
 * right-to-left text needs, and the joiners U+200C/U+200D of emoji and
 * scripts. NUL never reaches here: the call layer refuses it in every
 * string field of every request (pbscan.h). migrations/0010_text_rules.sql
 * holds the same rule as CHECK constraints; docs/DATA_MODEL.md states it. */
int validate_text_char(int32_t cp, int multiline);

#define TEXT_SINGLE_LINE 0x01   /* no line breaks or tabs either */
#define TEXT_REQUIRED    0x02   /* at least min characters after trimming spaces */

/* Checks a text field: valid UTF-8, only characters validate_text_char
 * allows (multiline unless TEXT_SINGLE_LINE), at most max characters, and
 * with TEXT_REQUIRED at least min characters once outer spaces are trimmed.
 * Reports at most one violation on field; returns 1 when valid. */
int validate_text(validate_ctx_t *vc, const char *field, const char *s,
                  size_t min, size_t max, int flags);

/* Region code shapes: "18" (level 1), "18.71" (2), "18.71.01" (3),
 * "18.71.01.1001" (4). Returns the level, 0 when the shape is none. */
int validate_region_code(const char *s);

/* ---------------------------------------------------------------- requests */

/* Checks a ListSentra / GetStatistics / PullChanges filter; prefix is
 * prepended to field paths ("filter."). Returns violations found. */
int validate_filter(validate_ctx_t *vc, const Sentra__V1__SentraFilter *f,
                    const char *prefix);

#endif
