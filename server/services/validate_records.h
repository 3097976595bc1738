/*
 * validate_records.h: the rules of the records of a sentra (members,
 * institution, obstacles, assistance), in pure C like validate.h: no I/O,
 * no allocation, no global state, so they are unit-tested and fuzzed
 * alone (tests/unit/test_validate_records.c).
 *
 * The same rules are held by the database for every other writer
 * (migrations/0013_records.sql: CHECK constraints, and the row triggers
 * *_before for what needs the date or other rows); docs/DATA_MODEL.md,
 * "Records of a sentra", lists them. Rules that need the database (the
 * sentra exists and is live; a NIB is not another live member's of the
 * sentra; recipients are members of the sentra; the assistance an obstacle
 * names is the sentra's) are checked only there.
 *
 * Which fields a check covers is a bit mask by proto field number
 * (REC_FIELD(n) = 1 << n): a create or a replacement covers every field
 * (REC_ALL), a partial update the fields of its mask. Cross-field rules
 * run when every field they involve is covered; the database checks them
 * against the merged record otherwise.
 */
#ifndef SENTRA_VALIDATE_RECORDS_H
#define SENTRA_VALIDATE_RECORDS_H

#include <stdint.h>

#include "validate.h"
#include "sentra/v1/sentra.pb-c.h"

#define REC_FIELD(n) (UINT64_C(1) << (n))
#define REC_ALL UINT64_MAX

/* Limits of repeated fields and of masks. */
#define VALIDATE_MAX_RECIPIENTS 500

/* The field of a record message named path: a top-level field name, or
 * "*" for all. Returns its bit, REC_ALL for "*", 0 when unknown. */
uint64_t validate_record_field_bit(const ProtobufCMessageDescriptor *d, const char *path);

/* 1 when top-level field f of a record message is set by the server only
 * (size_class, version, created_at_ms, updated_at_ms, created_by,
 * updated_by, regency_code, province_code, deleted). */
int validate_record_output_only(const char *name);

/* Parses the update mask of a record of type d: top-level field names that
 * an update may change (not output only, not id or sentra_id), or "*".
 * An empty mask means every field. Reports "update_mask[i]" and
 * "update_mask" (more than VALIDATE_MAX_MASK_PATHS paths) as validate_mask
 * does. Returns the bits, 0 when any path was bad. */
uint64_t validate_record_mask(validate_ctx_t *vc, const ProtobufCMessageDescriptor *d,
                              const char *const *paths, size_t n);

/* How a record is checked (the `how` of the functions below). */
#define VR_ID     0x01   /* the id is required (an update; a push, where the
                          * client chooses it); else it may be empty */
#define VR_SENTRA 0x02   /* sentra_id is required (a create, a push); else
                          * it is not read (an update cannot change it) */

/* Each checks the fields of its record covered by fields (an institution
 * is always written whole). Return the number of violations found by the
 * call. */
int validate_member(validate_ctx_t *vc, const Sentra__V1__Member *m, uint64_t fields,
                    unsigned how);
int validate_institution(validate_ctx_t *vc, const Sentra__V1__Institution *in);
int validate_obstacle(validate_ctx_t *vc, const Sentra__V1__Obstacle *o, uint64_t fields,
                      unsigned how);
int validate_assistance(validate_ctx_t *vc, const Sentra__V1__Assistance *a, uint64_t fields,
                        unsigned how);

/* The RecordFilter of a List of RecordService for records of kind (a
 * RecordKind number): shapes and known values; fields of another kind are
 * refused by name. prefix goes before field paths ("filter."). */
int validate_record_filter(validate_ctx_t *vc, const Sentra__V1__RecordFilter *f, int kind,
                           const char *prefix);

#endif
