/*
 * pbjson.c: proto3's canonical JSON mapping over protobuf-c descriptors
 * (pbjson.h says what is printed and what is accepted).
 *
 * Output is written straight into a buffer in one pass over the message
 * (no JSON tree): the server prints every JSON answer this way. Input is
 * parsed by jansson into a tree, which is then walked against the
 * descriptor; both the tree and the message are allocated under one
 * memory budget when the caller gives one, because a small JSON text can
 * ask for much memory ("[{},{},...]" costs jansson ~100 bytes per input
 * byte, an empty nested message in a repeated field costs its whole
 * struct).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"

/* ---------------------------------------------------------------- buffer */

static __attribute__((noinline)) void buf_grow(pbjson_buf_t *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        abort();
    b->data = p;
    b->cap = cap;
}

/* Room for more bytes and the NUL: a compare on the way of every write,
 * the growing apart. */
static inline void buf_reserve(pbjson_buf_t *b, size_t more)
{
    if (b->len + more + 1 > b->cap)
        buf_grow(b, more);
}

static void buf_add(pbjson_buf_t *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_addc(pbjson_buf_t *b, char c)
{
    buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

static void buf_adds(pbjson_buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* ---------------------------------------------------------------- base64 */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t pbjson_b64_encode(const uint8_t *p, size_t n, char *out, int url)
{
    const char *a = url ? b64_url : b64_std;
    char *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = a[v >> 18 & 63];
        *o++ = a[v >> 12 & 63];
        if (i + 1 < n)
            *o++ = a[v >> 6 & 63];
        else if (!url)
            *o++ = '=';
        if (i + 2 < n)
            *o++ = a[v & 63];
        else if (!url)
            *o++ = '=';
    }
    *o = '\0';
    return (size_t)(o - out);
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

long pbjson_b64_decode(const char *s, size_t n, uint8_t *out)
{
    /* Padding only at the end, and only as much as the length needs. */
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad > 0 && (n + pad) % 4 != 0)
        return -1;
    if (n % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    long len = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (uint8_t)(acc >> bits);
        }
    }
    return len;
}

/* ---------------------------------------------------------------- names */

char *pbjson_json_name(const char *proto_name, char *out, size_t outlen)
{
    /* protoc's ToJsonName: drop each '_' and capitalize what follows. */
    size_t o = 0;
    int upper = 0;
    for (const char *p = proto_name; *p && o + 1 < outlen; p++) {
        if (*p == '_') {
            upper = 1;
            continue;
        }
        out[o++] = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
        upper = 0;
    }
    if (outlen > 0)
        out[o] = '\0';
    return out;
}

/* Whether key is the JSON name of proto_name, compared without copying. */
static int is_json_name(const char *key, const char *proto_name)
{
    const char *k = key;
    int upper = 0;
    for (const char *p = proto_name; *p; p++) {
        if (*p == '_') {
            upper = 1;
            continue;
        }
        char c = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
        upper = 0;
        if (*k++ != c)
            return 0;
    }
    return *k == '\0';
}

/* ---------------------------------------------------------------- printing */

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    default:
        return sizeof(int32_t);
    }
}

/* The length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

/* Bytes a JSON string cannot carry as they are: 1 for the control
 * characters, '"' and '\\' (escaped), 2 for bytes from 0x80 (kept only as
 * part of a valid UTF-8 sequence). One table look-up per byte: the
 * strings of an answer are mostly plain text, copied in runs. */
static const unsigned char json_special[256] = {
    [0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 2,
};

static const char hex_digits[] = "0123456789abcdef";

/* Whether any of the 8 bytes of w is special (json_special): below 0x20,
 * '"', '\\' or from 0x80. Bit Twiddling Hacks' hasless(w, 0x20) and
 * haszero(w ^ c), exact as a yes or no; plain text goes 8 bytes a test. */
static inline int word_special(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
    uint64_t r = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | w;
    return (r & high) != 0;
}

/* Appends n bytes without the NUL (the caller writes it). */
static void buf_put(pbjson_buf_t *b, const void *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void write_string(pbjson_buf_t *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t n = strlen((const char *)s);
    buf_reserve(b, n + 2);
    b->data[b->len++] = '"';
    size_t i = 0;
    for (;;) {
        /* A run of bytes that go as they are. */
        size_t start = i;
        while (i < n) {
            if (n - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (!word_special(w)) {
                    i += 8;
                    continue;
                }
            }
            unsigned k = json_special[s[i]];
            if (k == 0) {
                i++;
            } else if (k == 2) {
                size_t seq = utf8_seq(s + i, n - i);
                if (seq == 0)
                    break;
                i += seq;
            } else {
                break;
            }
        }
        buf_put(b, s + start, i - start);
        if (i >= n)
            break;
        /* One byte that needs an escape. */
        unsigned c = s[i++];
        char e[6] = { '\\', 0 };
        size_t elen = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        default:
            if (c < 0x20) {
                memcpy(e, "\\u00", 4);
                e[4] = hex_digits[c >> 4];
                e[5] = hex_digits[c & 15];
            } else {
                memcpy(e, "\\ufffd", 6);   /* not UTF-8: U+FFFD */
            }
            elen = 6;
            break;
        }
        buf_put(b, e, elen);
    }
    buf_reserve(b, 1);
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
}

/* A field's name and the colon after it. Names are identifiers (protoc
 * allows nothing else), so they need no escaping; the JSON name is
 * protoc's ToJsonName, written as it is made (pbjson_json_name). */
static void write_key(pbjson_buf_t *b, const char *name, unsigned flags)
{
    size_t n = strlen(name);
    buf_reserve(b, n + 3);
    char *o = b->data + b->len;
    *o++ = '"';
    if (flags & PBJSON_PROTO_NAMES) {
        memcpy(o, name, n);
        o += n;
    } else {
        /* The runs between underscores as they are; each '_' (or run of
         * them) dropped and a lower-case letter after it capitalized. */
        const char *p = name, *end = name + n;
        for (;;) {
            const char *u = memchr(p, '_', (size_t)(end - p));
            size_t k = (size_t)((u != NULL ? u : end) - p);
            memcpy(o, p, k);
            o += k;
            if (u == NULL)
                break;
            for (p = u; p < end && *p == '_'; p++)
                ;
            if (p < end && *p >= 'a' && *p <= 'z')
                *o++ = (char)(*p++ - 'a' + 'A');
        }
    }
    *o++ = '"';
    *o++ = ':';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

/* An integer in decimal, quoted for the 64-bit types (proto3's JSON), as
 * printf's %lld / %llu would print it. */
static void write_int(pbjson_buf_t *b, uint64_t magnitude, int negative, int quoted)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    char tmp[24], *e = tmp + sizeof(tmp), *p = e;
    if (quoted)
        *--p = '"';
    while (magnitude >= 100) {       /* two digits a division */
        unsigned d = (unsigned)(magnitude % 100) * 2;
        magnitude /= 100;
        *--p = pairs[d + 1];
        *--p = pairs[d];
    }
    if (magnitude >= 10) {
        unsigned d = (unsigned)magnitude * 2;
        *--p = pairs[d + 1];
        *--p = pairs[d];
    } else {
        *--p = (char)('0' + magnitude);
    }
    if (negative)
        *--p = '-';
    if (quoted)
        *--p = '"';
    buf_put(b, p, (size_t)(e - p));
    b->data[b->len] = '\0';
}

static void write_signed(pbjson_buf_t *b, int64_t v, int quoted)
{
    /* The magnitude of INT64_MIN does not fit an int64_t: negate unsigned. */
    write_int(b, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, quoted);
}

/* The shortest of %.15g, %.16g, %.17g that reads back as v. */
static void write_double(pbjson_buf_t *b, double v, int is_float)
{
    char tmp[40];
    if (isnan(v)) {
        buf_adds(b, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        buf_adds(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    if (v == 0 && signbit(v)) {
        /* "-0" would read back as the integer 0, losing the sign. */
        buf_adds(b, "-0.0");
        return;
    }
    if (is_float) {
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
            if ((float)strtod(tmp, NULL) == (float)v)
                break;
        }
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
    }
    buf_adds(b, tmp);
}

static void write_message(pbjson_buf_t *b, const ProtobufCMessage *m, unsigned flags);

static void write_value(pbjson_buf_t *b, const ProtobufCFieldDescriptor *f, const void *p,
                        unsigned flags)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        write_signed(b, *(const int32_t *)p, 0);
        return;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        write_int(b, *(const uint32_t *)p, 0, 0);
        return;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        write_signed(b, *(const int64_t *)p, 1);
        return;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        write_int(b, *(const uint64_t *)p, 0, 1);
        return;
    case PROTOBUF_C_TYPE_FLOAT:
        write_double(b, *(const float *)p, 1);
        return;
    case PROTOBUF_C_TYPE_DOUBLE:
        write_double(b, *(const double *)p, 0);
        return;
    case PROTOBUF_C_TYPE_BOOL:
        buf_adds(b, *(const protobuf_c_boolean *)p ? "true" : "false");
        return;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        if (ev != NULL)
            write_string(b, ev->name);
        else
            write_signed(b, v, 0);
        return;
    }
    case PROTOBUF_C_TYPE_STRING:
        write_string(b, *(char *const *)p);
        return;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = p;
        buf_reserve(b, PBJSON_B64_LEN(bd->len) + 2);
        b->data[b->len++] = '"';
        b->len += pbjson_b64_encode(bd->data, bd->len, b->data + b->len, 0);
        b->data[b->len++] = '"';
        b->data[b->len] = '\0';
        return;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (sub != NULL)
            write_message(b, sub, flags);
        else
            buf_adds(b, "null");
        return;
    }
    }
    buf_adds(b, "null");
}

/* Whether a field without presence holds its default (zero) value. */
static int is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || s[0] == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)p == NULL;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0 && !signbit(*(const double *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0 && !signbit(*(const float *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_ENUM:
        return *(const int *)p == 0;
    default:
        return type_size(f->type) == 8 ? *(const uint64_t *)p == 0 : *(const uint32_t *)p == 0;
    }
}

static void write_message(pbjson_buf_t *b, const ProtobufCMessage *m, unsigned flags)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    int first = 1;
    buf_addc(b, '{');
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = base + f->offset;
        size_t n = 0;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0 && !(flags & PBJSON_EMIT_DEFAULTS))
                continue;
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
                   f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
            /* Explicit presence (proto3 optional, proto2): its has_ flag. */
            if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
                continue;
        } else if (f->label != PROTOBUF_C_LABEL_REQUIRED && !(flags & PBJSON_EMIT_DEFAULTS) &&
                   is_default(f, p)) {
            continue;
        }
        if (!first)
            buf_addc(b, ',');
        first = 0;
        write_key(b, f->name, flags);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            const char *items = *(char *const *)p;
            size_t sz = type_size(f->type);
            buf_addc(b, '[');
            for (size_t k = 0; k < n; k++) {
                if (k > 0)
                    buf_addc(b, ',');
                write_value(b, f, items + k * sz, flags);
            }
            buf_addc(b, ']');
        } else {
            write_value(b, f, p, flags);
        }
    }
    buf_addc(b, '}');
}

void pbjson_buf_add(pbjson_buf_t *out, const char *s, size_t n)
{
    buf_add(out, s, n);
}

void pbjson_buf_reserve(pbjson_buf_t *out, size_t n)
{
    buf_reserve(out, n);
}

void pbjson_buf_string(pbjson_buf_t *out, const char *s)
{
    write_string(out, s);
}

void pbjson_write(pbjson_buf_t *out, const ProtobufCMessage *m, unsigned flags)
{
    write_message(out, m, flags);
}

char *pbjson_encode(const ProtobufCMessage *m, unsigned flags, size_t *len)
{
    pbjson_buf_t b = { 0 };
    buf_reserve(&b, 1024 - 1);   /* a record's JSON in one or two allocations, not five */
    write_message(&b, m, flags);
    if (len != NULL)
        *len = b.len;
    return b.data;
}

json_t *pbjson_to_json(const ProtobufCMessage *m, unsigned flags)
{
    pbjson_buf_t b = { 0 };
    write_message(&b, m, flags);
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    free(b.data);
    return j;
}

/* ---------------------------------------------------------------- memory budget */

/*
 * One budget for one decode: the message's memory through a
 * ProtobufCAllocator, jansson's through its allocation hooks, which are
 * process-wide: they count into the budget of the decode running on this
 * thread, if any, and are plain malloc and free otherwise (so memory
 * jansson allocated before or outside a decode is freed alike). Frees are
 * not credited back: the count is what was asked for in total, an upper
 * bound of what was held at once.
 */
typedef struct budget {
    ProtobufCAllocator alloc;   /* for protobuf-c; allocator_data is this */
    size_t used;                /* bytes asked for so far */
    size_t max;                 /* 0: no bound */
    int exceeded;               /* an allocation was refused */
} budget_t;

static _Thread_local budget_t *current_budget;

static int budget_take(budget_t *bg, size_t n)
{
    if (bg == NULL || bg->max == 0)
        return 1;
    if (n > bg->max - bg->used) {
        bg->exceeded = 1;
        return 0;
    }
    bg->used += n;
    return 1;
}

static void *json_hook_malloc(size_t n)
{
    return budget_take(current_budget, n) ? malloc(n) : NULL;
}

static void *pb_alloc(void *data, size_t n)
{
    return budget_take(data, n) ? malloc(n ? n : 1) : NULL;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static void budget_init(budget_t *bg, size_t max)
{
    memset(bg, 0, sizeof(*bg));
    bg->alloc.alloc = pb_alloc;
    bg->alloc.free = pb_free;
    bg->alloc.allocator_data = bg;
    bg->max = max;
}

/* ---------------------------------------------------------------- parsing */

typedef struct parse {
    budget_t *bg;       /* allocations */
    char *err;          /* the reason of a failure */
    size_t errlen;
    char path[512];     /* where we are: "sentra.figures[1]" */
    size_t pathlen;
    int depth;          /* nesting of messages */
} parse_t;

#define MAX_DEPTH 64

static int fail(parse_t *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(parse_t *ps, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ps->pathlen > 0)
        snprintf(ps->err, ps->errlen, "%s: %s", ps->path, msg);
    else
        snprintf(ps->err, ps->errlen, "%s", msg);
    return -1;
}

static int fail_memory(parse_t *ps)
{
    if (ps->bg->exceeded)
        snprintf(ps->err, ps->errlen, "the JSON request needs more than %zu bytes of memory to decode",
                 ps->bg->max);
    else
        snprintf(ps->err, ps->errlen, "out of memory");
    return -1;
}

/* Appends ".name" or "[i]" to the path; returns the old length to restore. */
static size_t path_push(parse_t *ps, const char *name, long index)
{
    size_t old = ps->pathlen;
    int n;
    if (name != NULL)
        n = snprintf(ps->path + old, sizeof(ps->path) - old, "%s%s", old ? "." : "", name);
    else
        n = snprintf(ps->path + old, sizeof(ps->path) - old, "[%ld]", index);
    if (n > 0)
        ps->pathlen = old + (size_t)n < sizeof(ps->path) ? old + (size_t)n : sizeof(ps->path) - 1;
    return old;
}

static void path_pop(parse_t *ps, size_t old)
{
    ps->pathlen = old;
    ps->path[old] = '\0';
}

static const char *kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

/* Reads v as an integer in [min, max] (signed) or [0, umax] (is_unsigned). */
static int parse_int(parse_t *ps, const json_t *v, int is_unsigned, int64_t min, int64_t max,
                     uint64_t umax, int64_t *sout, uint64_t *uout)
{
    const char *what = is_unsigned ? "an unsigned integer" : "an integer";
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (is_unsigned) {
            if (x < 0 || (uint64_t)x > umax)
                return fail(ps, "%lld is out of range for this field (0 to %llu)", (long long)x,
                            (unsigned long long)umax);
            *uout = (uint64_t)x;
        } else {
            if (x < min || x > max)
                return fail(ps, "%lld is out of range for this field (%lld to %lld)", (long long)x,
                            (long long)min, (long long)max);
            *sout = x;
        }
        return 0;
    }
    double d;
    if (json_is_real(v)) {
        d = json_real_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        if (s[0] != '\0' && s[0] != ' ' && s[0] != '+' && !(is_unsigned && s[0] == '-')) {
            if (is_unsigned) {
                unsigned long long x = strtoull(s, &end, 10);
                if (*end == '\0' && errno == ERANGE)
                    return fail(ps, "\"%.40s\" is out of range for this field (0 to %llu)", s,
                                (unsigned long long)umax);
                if (*end == '\0' && errno == 0) {
                    if (x > umax)
                        return fail(ps, "\"%s\" is out of range for this field (0 to %llu)", s,
                                    (unsigned long long)umax);
                    *uout = x;
                    return 0;
                }
            } else {
                long long x = strtoll(s, &end, 10);
                if (*end == '\0' && errno == ERANGE)
                    return fail(ps, "\"%.40s\" is out of range for this field (%lld to %lld)", s,
                                (long long)min, (long long)max);
                if (*end == '\0' && errno == 0) {
                    if (x < min || x > max)
                        return fail(ps, "\"%s\" is out of range for this field (%lld to %lld)", s,
                                    (long long)min, (long long)max);
                    *sout = x;
                    return 0;
                }
            }
        }
        /* "1e3" and the like: a number in a string. */
        errno = 0;
        d = strtod(s, &end);
        if (s[0] == '\0' || s[0] == ' ' || *end != '\0' || errno != 0 || !isfinite(d))
            return fail(ps, "expected %s, got the string \"%.40s\"", what, s);
    } else {
        return fail(ps, "expected %s, got %s", what, kind_name(v));
    }
    if (!isfinite(d) || d != floor(d))
        return fail(ps, "expected %s, got %g", what, d);
    /* Integral reals: exact only up to 2^53, which bounds what we take. */
    if (fabs(d) > 9007199254740992.0)
        return fail(ps, "%g is too large to be exact; write it as a string", d);
    if (is_unsigned) {
        if (d < 0 || d > (double)umax)
            return fail(ps, "%g is out of range for this field", d);
        *uout = (uint64_t)d;
    } else {
        if (d < (double)min || d > (double)max)
            return fail(ps, "%g is out of range for this field", d);
        *sout = (int64_t)d;
    }
    return 0;
}

static int parse_double(parse_t *ps, const json_t *v, int is_float, double *out)
{
    double d;
    if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "NaN") == 0) {
            *out = NAN;
            return 0;
        }
        if (strcmp(s, "Infinity") == 0) {
            *out = INFINITY;
            return 0;
        }
        if (strcmp(s, "-Infinity") == 0) {
            *out = -INFINITY;
            return 0;
        }
        char *end;
        errno = 0;
        d = strtod(s, &end);
        if (s[0] == '\0' || s[0] == ' ' || *end != '\0' || errno == ERANGE || !isfinite(d))
            return fail(ps, "expected a number, got the string \"%.40s\"", s);
    } else {
        return fail(ps, "expected a number, got %s", kind_name(v));
    }
    if (is_float && isfinite(d) && fabs(d) > 3.4028234663852886e38)
        return fail(ps, "%g is out of range for a float", d);
    *out = d;
    return 0;
}

static ProtobufCMessage *parse_message(parse_t *ps, const ProtobufCMessageDescriptor *d,
                                       const json_t *j);

/* Parses one value of field f from v into p (a singular field's storage
 * or one element of a repeated field's array). */
static int parse_value(parse_t *ps, const ProtobufCFieldDescriptor *f, const json_t *v, void *p)
{
    int64_t s = 0;
    uint64_t u = 0;
    double dv;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (parse_int(ps, v, 0, INT32_MIN, INT32_MAX, 0, &s, &u) < 0)
            return -1;
        *(int32_t *)p = (int32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (parse_int(ps, v, 1, 0, 0, UINT32_MAX, &s, &u) < 0)
            return -1;
        *(uint32_t *)p = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (parse_int(ps, v, 0, INT64_MIN, INT64_MAX, 0, &s, &u) < 0)
            return -1;
        *(int64_t *)p = s;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (parse_int(ps, v, 1, 0, 0, UINT64_MAX, &s, &u) < 0)
            return -1;
        *(uint64_t *)p = u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (parse_double(ps, v, 1, &dv) < 0)
            return -1;
        *(float *)p = (float)dv;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (parse_double(ps, v, 0, &dv) < 0)
            return -1;
        *(double *)p = dv;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return fail(ps, "expected true or false, got %s", kind_name(v));
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (json_is_string(v)) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
            if (ev == NULL)
                return fail(ps, "\"%.60s\" is not a value of enum %s", json_string_value(v), ed->name);
            *(int *)p = ev->value;
            return 0;
        }
        /* Numbers: proto3 enums are open, any int32 is kept. */
        if (!json_is_integer(v) && !json_is_real(v))
            return fail(ps, "expected a name of enum %s, got %s", ed->name, kind_name(v));
        if (parse_int(ps, v, 0, INT32_MIN, INT32_MAX, 0, &s, &u) < 0)
            return -1;
        *(int *)p = (int)s;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return fail(ps, "expected a string, got %s", kind_name(v));
        size_t n = json_string_length(v);
        char *str = ps->bg->alloc.alloc(ps->bg, n + 1);
        if (str == NULL)
            return fail_memory(ps);
        memcpy(str, json_string_value(v), n + 1);
        *(char **)p = str;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (!json_is_string(v))
            return fail(ps, "expected a base64 string, got %s", kind_name(v));
        size_t n = json_string_length(v);
        uint8_t *data = ps->bg->alloc.alloc(ps->bg, n / 4 * 3 + 3);
        if (data == NULL)
            return fail_memory(ps);
        long len = pbjson_b64_decode(json_string_value(v), n, data);
        if (len < 0) {
            ps->bg->alloc.free(ps->bg, data);
            return fail(ps, "not base64");
        }
        ProtobufCBinaryData *bd = p;
        bd->data = data;
        bd->len = (size_t)len;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (!json_is_object(v))
            return fail(ps, "expected an object, got %s", kind_name(v));
        ProtobufCMessage *sub = parse_message(ps, f->descriptor, v);
        if (sub == NULL)
            return -1;
        *(ProtobufCMessage **)p = sub;
        return 0;
    }
    }
    return fail(ps, "field type not supported");
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d, const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (f != NULL)
        return f;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (is_json_name(key, d->fields[i].name))
            return &d->fields[i];
    return NULL;
}

static int parse_field(parse_t *ps, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                       const json_t *v)
{
    char *base = (char *)m;
    void *p = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (json_is_null(v))
            return 0;
        if (!json_is_array(v))
            return fail(ps, "expected an array, got %s", kind_name(v));
        size_t n = json_array_size(v), sz = type_size(f->type);
        if (n == 0)
            return 0;
        char *items = ps->bg->alloc.alloc(ps->bg, n * sz);
        if (items == NULL)
            return fail_memory(ps);
        memset(items, 0, n * sz);
        *(void **)p = items;
        size_t *np = (size_t *)(base + f->quantifier_offset);
        for (size_t k = 0; k < n; k++) {
            const json_t *e = json_array_get(v, k);
            size_t old = path_push(ps, NULL, (long)k);
            if (json_is_null(e)) {
                fail(ps, "null is not allowed in a list");
                path_pop(ps, old);
                return -1;
            }
            int r = parse_value(ps, f, e, items + k * sz);
            path_pop(ps, old);
            if (r < 0)
                return -1;
            *np = k + 1; /* only filled items are freed on failure */
        }
        return 0;
    }
    if (json_is_null(v))
        return 0;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        /* The default is a shared empty string: never free it. */
        *(char **)p = NULL;
        if (parse_value(ps, f, v, p) < 0) {
            *(char **)p = (char *)f->default_value;
            return -1;
        }
    } else if (parse_value(ps, f, v, p) < 0) {
        return -1;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)(base + f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
             f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    return 0;
}

static ProtobufCMessage *parse_message(parse_t *ps, const ProtobufCMessageDescriptor *d,
                                       const json_t *j)
{
    if (!json_is_object(j)) {
        fail(ps, "expected a JSON object for %s, got %s", d->name, kind_name(j));
        return NULL;
    }
    if (++ps->depth > MAX_DEPTH) {
        fail(ps, "messages nested more than %d deep", MAX_DEPTH);
        ps->depth--;
        return NULL;
    }
    ProtobufCMessage *m = ps->bg->alloc.alloc(ps->bg, d->sizeof_message);
    if (m == NULL) {
        fail_memory(ps);
        ps->depth--;
        return NULL;
    }
    d->message_init(m);

    /* Which fields were given, under either name, to refuse a second. */
    unsigned char seen_small[64];
    unsigned char *seen = seen_small;
    if (d->n_fields > sizeof(seen_small)) {
        seen = calloc(d->n_fields, 1);
        if (seen == NULL)
            abort();
    } else {
        memset(seen, 0, d->n_fields);
    }

    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v) {
        const ProtobufCFieldDescriptor *f = find_field(d, key);
        if (f == NULL) {
            fail(ps, "unknown field \"%.80s\" in %s", key, d->name);
            goto fail;
        }
        size_t idx = (size_t)(f - d->fields);
        size_t old = path_push(ps, key, 0);
        if (seen[idx]) {
            fail(ps, "given twice (as \"%s\" and as its JSON name, or the reverse)", f->name);
            path_pop(ps, old);
            goto fail;
        }
        seen[idx] = 1;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !json_is_null(v)) {
            uint32_t cs = *(const uint32_t *)((const char *)m + f->quantifier_offset);
            if (cs != 0 && cs != f->id) {
                const ProtobufCFieldDescriptor *other = protobuf_c_message_descriptor_get_field(d, cs);
                fail(ps, "only one of a oneof may be set; \"%s\" is set too",
                     other ? other->name : "another member");
                path_pop(ps, old);
                goto fail;
            }
        }
        int r = parse_field(ps, m, f, v);
        path_pop(ps, old);
        if (r < 0)
            goto fail;
    }
    if (seen != seen_small)
        free(seen);
    ps->depth--;
    return m;
fail:
    if (seen != seen_small)
        free(seen);
    protobuf_c_message_free_unpacked(m, &ps->bg->alloc);
    ps->depth--;
    return NULL;
}

static ProtobufCMessage *decode_tree(const ProtobufCMessageDescriptor *d, const json_t *j, budget_t *bg,
                                     char *err, size_t errlen)
{
    parse_t ps = { .bg = bg, .err = err, .errlen = errlen };
    if (errlen > 0)
        err[0] = '\0';
    if (!json_is_object(j)) {
        snprintf(err, errlen, "expected a JSON object for %s, got %s", d->name, kind_name(j));
        return NULL;
    }
    return parse_message(&ps, d, j);
}

ProtobufCMessage *pbjson_from_json(const ProtobufCMessageDescriptor *d, const json_t *j, char *err,
                                   size_t errlen)
{
    budget_t bg;
    budget_init(&bg, 0);
    return decode_tree(d, j, &bg, err, errlen);
}

ProtobufCMessage *pbjson_decode(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
                                size_t max_memory, char *err, size_t errlen)
{
    static int hooks_set;
    budget_t bg;
    budget_init(&bg, max_memory);
    if (max_memory > 0 && !hooks_set) {
        /* Harmless to set at any time: the hooks are malloc and free
         * whenever no budget is current. */
        json_set_alloc_funcs(json_hook_malloc, free);
        hooks_set = 1;
    }

    json_error_t je;
    current_budget = &bg;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    current_budget = NULL;
    if (j == NULL) {
        if (bg.exceeded)
            snprintf(err, errlen, "the JSON request needs more than %zu bytes of memory to decode",
                     max_memory);
        else
            snprintf(err, errlen, "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    ProtobufCMessage *m = decode_tree(d, j, &bg, err, errlen);
    json_decref(j);
    return m;
}
