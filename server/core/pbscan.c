/*
 * pbscan.c: NUL bytes in the string fields of an encoded message (see
 * pbscan.h). The wire format: each field is a varint key (number << 3 |
 * wire type) and a value: a varint (0), 8 bytes (1), a varint length and
 * that many bytes (2) or 4 bytes (5). Strings and sub-messages are
 * length-delimited; repeated ones appear once per entry, in order.
 */
#include <stdio.h>
#include <string.h>

#include "pbscan.h"

typedef struct scan {
    sentra_pbscan_fn fn;
    void *arg;
    int found;                          /* fields holding a NUL so far */
    char path[SENTRA_PBSCAN_MAX_PATH];  /* the path of the field being read */
} scan_t;

/* Reads a varint at *p (< end); returns 0, or -1 when truncated or longer
 * than 10 bytes. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;

    for (int shift = 0; shift < 70; shift += 7) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Appends ".name" (or "name" at the start) and "[i]" for a repeated field to
 * s->path at plen; returns the new length (the path is cut, never
 * overflowed, when too deep to spell). */
static size_t path_push(scan_t *s, size_t plen, const ProtobufCFieldDescriptor *f, unsigned i)
{
    size_t room = sizeof s->path - plen;
    int n = f->label == PROTOBUF_C_LABEL_REPEATED
                ? snprintf(s->path + plen, room, "%s%s[%u]", plen ? "." : "", f->name, i)
                : snprintf(s->path + plen, room, "%s%s", plen ? "." : "", f->name);
    if (n < 0)
        return plen;
    return (size_t)n < room ? plen + (size_t)n : sizeof s->path - 1;
}

static int walk(scan_t *s, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                const uint8_t *end, size_t plen, int depth, const char *strip)
{
    /* Entries seen of each repeated field (by index in d->fields), for
     * their [i]. Our messages have at most 25 fields. */
    unsigned seen[64] = {0};

    while (p < end) {
        uint64_t key, len;
        if (read_varint(&p, end, &key) != 0)
            return -1;
        switch (key & 7) {
        case 0:
            if (read_varint(&p, end, &len) != 0)
                return -1;
            continue;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            continue;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            continue;
        case 2:
            if (read_varint(&p, end, &len) != 0 || len > (uint64_t)(end - p))
                return -1;
            break;
        default:
            return -1;              /* groups (3, 4) or no such type */
        }
        const uint8_t *v = p;
        p += len;
        uint64_t num = key >> 3;
        const ProtobufCFieldDescriptor *f =
            num <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)num) : NULL;
        if (f == NULL || (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE))
            continue;               /* unknown, bytes, or packed numbers */
        size_t idx = (size_t)(f - d->fields);
        unsigned entry = idx < sizeof seen / sizeof *seen ? seen[idx]++ : 0;
        size_t n = plen;
        if (!(strip != NULL && depth == 0 && f->type == PROTOBUF_C_TYPE_MESSAGE &&
              f->label != PROTOBUF_C_LABEL_REPEATED && strcmp(f->name, strip) == 0))
            n = path_push(s, plen, f, entry);
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            if (len > 0 && memchr(v, 0, (size_t)len) != NULL) {
                s->found++;
                s->fn(s->arg, s->path);
            }
        } else if (depth + 1 < SENTRA_PBSCAN_MAX_DEPTH) {
            if (walk(s, f->descriptor, v, v + len, n, depth + 1, NULL) != 0)
                return -1;
        }
        s->path[plen] = '\0';
    }
    return 0;
}

int sentra__pbscan_nul(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                       const char *strip, sentra_pbscan_fn fn, void *arg)
{
    scan_t s = {.fn = fn, .arg = arg};

    /* Most requests hold no zero byte at all (no zero varint, no empty
     * string): nothing to walk. */
    if (len == 0 || memchr(data, 0, len) == NULL)
        return 0;
    return walk(&s, d, data, data + len, 0, 0, strip) != 0 ? -1 : s.found;
}
