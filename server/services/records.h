/*
 * records.h: the records of a sentra (members, institution, obstacles,
 * assistance) between their protobuf messages and PostgreSQL.
 *
 * Every kind is described once (rec_kind_t) and handled by the same code:
 * the RecordService handlers (handlers_records.c), the pull and the push
 * (handlers_sync.c). The mapping between a message and SQL is one rule,
 * not a list kept in step by hand: the fields of the message in field
 * number order, a nested message's fields in place of it, each a column
 * named by its path with '.' written '_' ("board.chair" is board_chair).
 * The views <kind>_api of migrations/0013_records.sql have exactly those
 * columns in that order, and every result read by name is checked against
 * them (rec__row_shape), so a view and a message that drift apart fail the
 * request (INTERNAL, logged), not silently.
 *
 * Values: enums as their numbers (KbliVersion as the year of the edition,
 * as stored), dates YYYY-MM-DD, times Unix ms, repeated strings joined by
 * commas (they hold UUIDs only). Writing, a field's empty value is JSON
 * null (the write functions store NULL or '' as the column wants), except
 * int64 values, which are numbers always.
 */
#ifndef SENTRA_RECORDS_H
#define SENTRA_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <protobuf-c/protobuf-c.h>

#include "call.h"
#include "sentra_row.h"
#include "validate.h"
#include "sentra/v1/sentra.pb-c.h"

/* One kind of record. */
typedef struct rec_kind {
    int kind;                                     /* RecordKind number (2..5) */
    const char *name;                             /* "member": its table, view <name>_api,
                                                   * SQL functions, push paths */
    const ProtobufCMessageDescriptor *desc;       /* the record message */
    const char *key;                              /* key field: "id", or "sentra_id" */
    const char *sort;                             /* list order column; NULL: the key alone */
    const char *sort_type;                        /* its SQL type ("text", "date", "smallint") */
    const ProtobufCMessageDescriptor *list_resp;  /* List*Response (records, token, total) */
    /* The C rules (validate_records.h) of record m for the fields covered
     * (bits by field number) and `how` (VR_*). */
    int (*validate)(validate_ctx_t *vc, const ProtobufCMessage *m, uint64_t fields,
                    unsigned how);
} rec_kind_t;

extern const rec_kind_t rec_member, rec_institution, rec_obstacle, rec_assistance;

/* The kind of RecordKind number k, or NULL (sentra, unknown). */
const rec_kind_t *rec__kind(int k);

/* A column of a kind: one field of the message (leaf), possibly inside a
 * nested message (outer). */
typedef struct rec_col {
    char name[48];                                /* "board_chair" */
    char path[48];                                /* "board.chair" */
    const ProtobufCFieldDescriptor *outer;        /* "board"; NULL at the top */
    const ProtobufCFieldDescriptor *leaf;         /* "chair" */
    unsigned top;                                 /* field number at the top level */
    int out;                                      /* output only (set by the server) */
} rec_col_t;

#define REC_MAX_COLS 40

/* The columns of kind k in order: a table built once for the process
 * (static, never freed; safe from any thread), *n of them. */
const rec_col_t *rec__cols(const rec_kind_t *k, size_t *n);

/* The writable fields of m covered by fields (bits by top-level field
 * number; REC_ALL) as a JSON object keyed by column name: call memory.
 * keys: id and sentra_id too (a create, a push); else not (an update
 * cannot change them). When mask is not NULL, *mask gets the same column
 * names as a text[] literal ("{name,products}"), for the update functions. */
char *rec__json(call_t *c, const rec_kind_t *k, const ProtobufCMessage *m, uint64_t fields,
                int keys, const char **mask);

/* 1 when the columns of res from first_col on are those of rec__cols (by
 * name, in order); else 0, logged. Checked once a result, before reading
 * its rows with rec__from_row, so that a view and a message that drift
 * apart fail the request. */
int rec__row_shape(const rec_kind_t *k, const PGresult *res, int first_col);

/* A record from row `row` of res, whose shape the caller has checked
 * (rec__row_shape). Strings point into res (valid while it is). NULL when
 * there is no such row or too few columns. */
ProtobufCMessage *rec__from_row(call_t *c, const rec_kind_t *k, const PGresult *res, int row,
                                int first_col);

/* Appends to b the protobuf wire encoding of the record in row `row` of
 * res (shape checked, as for rec__from_row): exactly the bytes of
 * protobuf_c_message_pack(rec__from_row(...)), without building the
 * message (tests/unit/test_records_wire.c compares both). Returns the
 * number of bytes appended. Aborts on OOM. */
size_t rec__row_wire(sentra_wbuf_t *b, const rec_kind_t *k, const PGresult *res, int row,
                     int first_col);

/* A record from its printed text (<kind>_pull_src.packed): the same
 * columns, separated by U+001F. The text is copied into call memory. */
ProtobufCMessage *rec__from_packed(call_t *c, const rec_kind_t *k, const char *packed);

/* A tombstone: the key, the version, deleted = true. key is copied. */
ProtobufCMessage *rec__tombstone(call_t *c, const rec_kind_t *k, const char *key,
                                 int64_t version);

/* m wrapped in a Record (call memory). kind 1 is a Sentra. */
Sentra__V1__Record *rec__record(call_t *c, int kind, ProtobufCMessage *m);

/* The value of the string field `name` of m ("" when unset). */
const char *rec__str(const ProtobufCMessage *m, const char *name);

#endif
