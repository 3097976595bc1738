/*
 * pbscan.h: finds the string fields of an encoded protobuf message that
 * hold a NUL byte.
 *
 * Protobuf strings may hold U+0000, but protobuf-c hands them to C as
 * NUL-terminated char *: "abc\0hidden" arrives as "abc", and the bytes
 * after the NUL would vanish without anyone noticing (libpq would store
 * "abc"). The call layer therefore walks the request's wire bytes once,
 * guided by the message's descriptor, and refuses every string field (at
 * any depth) that holds a NUL, naming it by its path. No allocation; the
 * depth is bounded by the schema (and by SENTRA_PBSCAN_MAX_DEPTH).
 */
#ifndef SENTRA_PBSCAN_H
#define SENTRA_PBSCAN_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define SENTRA_PBSCAN_MAX_DEPTH 16
#define SENTRA_PBSCAN_MAX_PATH 256

/* Called once per string field holding a NUL; path is valid during the
 * call only: proto field names joined by '.', a repeated field's entry as
 * name[i] ("mutations[3].sentra.figures[0].capacity_unit"). */
typedef void (*sentra_pbscan_fn)(void *arg, const char *path);

/* Walks the message of type d encoded in data[0..len) and calls fn for
 * every string field holding a NUL byte. strip (may be NULL) names a
 * singular message field of the top level whose fields are reported
 * without its name ("sentra": "name" rather than "sentra.name"), for
 * methods whose violations name a record's fields that way. Unknown fields
 * and bytes fields are skipped. Returns the number of such fields, or -1
 * when data is not a well-formed message (those found before are
 * reported). */
int sentra__pbscan_nul(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                       const char *strip, sentra_pbscan_fn fn, void *arg);

#endif
