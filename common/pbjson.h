/*
 * pbjson.h: protobuf-c messages to and from proto3's canonical JSON mapping
 * (protobuf.dev/programming-guides/proto3/#json), driven by the generated
 * descriptors, so that every message type prints and parses without code
 * of its own. Shared by sentrad (the Connect transport's JSON codec) and
 * sentra-cli (--json).
 *
 * Output: fields in field-number order under their JSON names
 * (lowerCamelCase: "regency_code" is "regencyCode"), or under their proto
 * names with PBJSON_PROTO_NAMES; fields holding their default value left
 * out (unless PBJSON_EMIT_DEFAULTS); enums by name (a number when the value
 * has no name); int64, uint64 and their fixed/sint kinds as decimal
 * strings; other integers as numbers; doubles and floats in the shortest
 * form that reads back to the same value, "NaN", "Infinity" and
 * "-Infinity" as strings; bytes in standard base64 with padding. Strings
 * that are not valid UTF-8 (protobuf-c does not check) print with U+FFFD
 * in place of each bad byte, so the output is always valid JSON.
 *
 * Input: each field under its JSON name or its proto name; null as the
 * field's default; enums by name or number; 64-bit integers as strings or
 * numbers, other integers as numbers or strings (an integral real such as
 * 1.0 or 1e3 is accepted); bytes in standard or URL-safe base64, padded or
 * not. An unknown field, a field given twice (under either name), a value
 * of the wrong kind, an integer out of range, an unknown enum name and two
 * members of one oneof are refused with an error naming the field by its
 * path ("sentra.figures[1].year: ...").
 *
 * Not handled, because sentra's protos use none of them: maps, proto2
 * extensions, the well-known types (Timestamp, Duration, FieldMask, Any,
 * wrappers, Struct), which the mapping gives special forms.
 */
#ifndef SENTRA_PBJSON_H
#define SENTRA_PBJSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#define PBJSON_PROTO_NAMES   0x01  /* print proto field names, not JSON names */
#define PBJSON_EMIT_DEFAULTS 0x02  /* print fields that hold their default too */

/* A growable output buffer. Start from { 0 }; free data with free(). */
typedef struct pbjson_buf {
    char *data;   /* NUL-terminated once anything was written */
    size_t len;   /* bytes written, without the NUL */
    size_t cap;   /* bytes allocated */
} pbjson_buf_t;

/* Appends m as JSON (one object, no newline) to out. Aborts when memory
 * runs out. Does not take ownership of m. */
void pbjson_write(pbjson_buf_t *out, const ProtobufCMessage *m, unsigned flags);

/* Appends n bytes of s to out, as they are. */
void pbjson_buf_add(pbjson_buf_t *out, const char *s, size_t n);

/* Makes room for n more bytes (and the NUL) in out at once, so that a
 * writer that knows its size grows the buffer once. */
void pbjson_buf_reserve(pbjson_buf_t *out, size_t n);

/* Appends s as a JSON string: quoted, escaped, invalid UTF-8 bytes as
 * U+FFFD (NULL prints as ""). */
void pbjson_buf_string(pbjson_buf_t *out, const char *s);

/* m as a JSON text: malloc'ed, NUL-terminated, its length in *len (when len
 * is not NULL); the caller frees it. Aborts when memory runs out. */
char *pbjson_encode(const ProtobufCMessage *m, unsigned flags, size_t *len);

/* m as a jansson value (a new reference; json_decref it), for callers that
 * build larger JSON documents around messages. NULL only when memory runs
 * out. */
json_t *pbjson_to_json(const ProtobufCMessage *m, unsigned flags);

/* Parses text[0..len) as JSON for a message of type d. max_memory bounds
 * every byte allocated for it, the parsed JSON document and the message
 * together (0: no bound); a request that would need more is refused with
 * an error saying so. Returns the message (free it with
 * protobuf_c_message_free_unpacked(m, NULL)), or NULL with a reason in
 * err[0..errlen). */
ProtobufCMessage *pbjson_decode(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
                                size_t max_memory, char *err, size_t errlen);

/* The same from a jansson value (not taken; the caller still owns j),
 * without a memory bound. */
ProtobufCMessage *pbjson_from_json(const ProtobufCMessageDescriptor *d, const json_t *j, char *err,
                                   size_t errlen);

/* The JSON name of a proto field name ("regency_code" -> "regencyCode"),
 * into out[0..outlen); returns out. */
char *pbjson_json_name(const char *proto_name, char *out, size_t outlen);

/* ---------------------------------------------------------------- base64 */

/* Bytes base64 needs for n bytes, without the NUL (padded form). */
#define PBJSON_B64_LEN(n) (4 * (((size_t)(n) + 2) / 3))

/* Writes p[0..n) in base64 to out (PBJSON_B64_LEN(n) + 1 bytes) and NUL-
 * terminates it; url != 0 takes the URL-safe alphabet ("-_"), and then no
 * padding (as Connect's GET and its error details want it). Returns the
 * length written. */
size_t pbjson_b64_encode(const uint8_t *p, size_t n, char *out, int url);

/* Decodes s[0..n), standard or URL-safe base64, padded or not, into out
 * (at least n * 3 / 4 + 3 bytes). Returns the length decoded, or -1 when s
 * is not base64. */
long pbjson_b64_decode(const char *s, size_t n, uint8_t *out);

#endif
