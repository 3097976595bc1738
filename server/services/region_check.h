/*
 * region_check.h: the region rules that need the database, asked for
 * records that broke other rules, so that one answer lists every fault.
 *
 * A record that passes validate.c goes to its write function, whose SQL
 * checks the regions (the regency exists and is a regency or city; the
 * sub-district and village exist under their parents once that reference
 * data is loaded) together with every other database rule. A record that
 * fails validate.c never reaches it, so an unknown region used to be
 * reported only after every other fault was fixed. The handlers of
 * CreateSentra, UpdateSentra and PushChanges therefore run this one
 * statement first when they refuse a record, and merge its lines with the
 * C violations. The rules are those of sentra_violations()
 * (migrations/0004_sentra_functions.sql), called with a record that holds
 * only the codes; only codes whose shape validate.c accepts are sent.
 */
#ifndef SENTRA_REGION_CHECK_H
#define SENTRA_REGION_CHECK_H

#include <stddef.h>

#include "call.h"
#include "sentra/v1/sentra.pb-c.h"

/* The codes of one record for the database to check: each one the record
 * writes with a shape validate.c accepts (inside its parent), else NULL. */
typedef struct region_codes {
    const char *regency;
    const char *district;
    const char *village;
} region_codes_t;

/* Fills out from s for the fields (VF_* bits) written. Returns 1 when any
 * code is set (the check is worth a query), else 0. */
int sentra__region_codes(const Sentra__V1__Sentra *s, unsigned fields, region_codes_t *out);

/* Runs the check for n records (n >= 1) and calls cb with the result:
 * rows of (record index from 0, field, reason), fields being regency_code,
 * district_code or village_code. stored_id (may be NULL) names the stored
 * record of an update that does not write its regency: its sub-district is
 * then checked against the stored regency, if the token may read it. The
 * result may be an SQL error: the caller then answers without these lines.
 * Returns 1 when the query was sent, 0 (cb never runs) when no database
 * connection is up: the caller answers what it found itself, rather than
 * UNAVAILABLE for a request it knows to be wrong. */
int sentra__region_check(call_t *c, const region_codes_t *codes, size_t n,
                         const char *stored_id, call_db_cb cb);

enum { REGION_CHECK_COL_INDEX, REGION_CHECK_COL_FIELD, REGION_CHECK_COL_REASON };

#endif
