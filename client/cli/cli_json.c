/*
 * cli_json.c: protobuf-c messages to and from JSON (jansson), driven by the
 * generated descriptors, so that every request and response type of
 * sentra.v1 prints and parses without per-message code. The mapping
 * follows proto3's JSON conventions where they are simple: proto field
 * names, enum values by name, zero values omitted, bytes as base64; 64-bit
 * integers stay JSON numbers (jansson holds them exactly).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

/* ---------------------------------------------------------------- base64 */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const uint8_t *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *o = 0;
    return out;
}

static int b64_decode(const char *s, ProtobufCBinaryData *out)
{
    size_t n = strlen(s);
    out->data = malloc(n / 4 * 3 + 3);
    out->len = 0;
    if (!out->data)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    for (const char *c = s; *c && *c != '='; c++) {
        const char *q = strchr(b64, *c);
        if (!q || !*c) {
            free(out->data);
            out->data = NULL;
            return -1;
        }
        acc = acc << 6 | (uint32_t)(q - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->data[out->len++] = (uint8_t)(acc >> bits);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- to JSON */

static json_t *value_to_json(const ProtobufCFieldDescriptor *f, const void *p, int all)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer((json_int_t)*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return json_integer((json_int_t)*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return json_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        char *s = b64_encode(b->data, b->len);
        json_t *j = json_string(s ? s : "");
        free(s);
        return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? cli_pb_to_json(m, all) : json_null();
    }
    }
    return json_null();
}

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static int is_zero(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)p == NULL;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0;
    default: {
        size_t n = type_size(f->type);
        const uint8_t *b = p;
        for (size_t i = 0; i < n; i++)
            if (b[i])
                return 0;
        return 1;
    }
    }
}

json_t *cli_pb_to_json(const ProtobufCMessage *m, int all)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *o = json_object();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            if (!n && !all)
                continue;
            json_t *arr = json_array();
            const char *items = *(char *const *)base;
            size_t sz = type_size(f->type);
            for (size_t k = 0; k < n; k++)
                json_array_append_new(arr, value_to_json(f, items + k * sz, all));
            json_object_set_new(o, f->name, arr);
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
            f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING &&
            !*(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset))
            continue;
        if (!all && is_zero(f, base))
            continue;
        json_object_set_new(o, f->name, value_to_json(f, base, all));
    }
    return o;
}

void cli_print_json(const ProtobufCMessage *m)
{
    json_t *j = cli_pb_to_json(m, 0);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
    json_decref(j);
}

/* ---------------------------------------------------------------- from JSON */

static int json_to_value(const ProtobufCFieldDescriptor *f, json_t *v, void *p, char *err,
                         size_t errlen, const char *path)
{
    json_int_t iv = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        if (json_is_integer(v)) {
            iv = json_integer_value(v);
        } else if (json_is_string(v)) { /* proto3 JSON writes int64 as strings */
            char *end;
            const char *s = json_string_value(v);
            iv = strtoll(s, &end, 10);
            if (!*s || *end)
                goto bad;
        } else {
            goto bad;
        }
        if (type_size(f->type) == 8) {
            *(int64_t *)p = iv;
        } else {
            int is_signed = f->type == PROTOBUF_C_TYPE_INT32 || f->type == PROTOBUF_C_TYPE_SINT32 ||
                            f->type == PROTOBUF_C_TYPE_SFIXED32;
            if (is_signed ? (iv < INT32_MIN || iv > INT32_MAX) : (iv < 0 || iv > UINT32_MAX))
                goto bad;
            if (is_signed)
                *(int32_t *)p = (int32_t)iv;
            else
                *(uint32_t *)p = (uint32_t)iv;
        }
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(v))
            goto bad;
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)p = (float)json_number_value(v);
        else
            *(double *)p = json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            goto bad;
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (json_is_integer(v)) {
            *(int *)p = (int)json_integer_value(v);
            return 0;
        }
        if (!json_is_string(v))
            goto bad;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
        if (!ev)
            goto bad;
        *(int *)p = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING:
        if (!json_is_string(v))
            goto bad;
        if (!(*(char **)p = strdup(json_string_value(v))))
            goto bad;
        return 0;
    case PROTOBUF_C_TYPE_BYTES:
        if (!json_is_string(v) || b64_decode(json_string_value(v), p) < 0)
            goto bad;
        return 0;
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (!json_is_object(v))
            goto bad;
        ProtobufCMessage *sub = cli_json_to_pb(f->descriptor, v, err, errlen);
        if (!sub)
            return -1;
        *(ProtobufCMessage **)p = sub;
        return 0;
    }
    }
bad:
    snprintf(err, errlen, "%s%s%s: bad value for a %s field", path, *path ? "." : "", f->name,
             f->type == PROTOBUF_C_TYPE_ENUM ? "enum" : f->type == PROTOBUF_C_TYPE_STRING ? "string"
                                                                                          : "typed");
    return -1;
}

ProtobufCMessage *cli_json_to_pb(const ProtobufCMessageDescriptor *d, json_t *j, char *err, size_t errlen)
{
    if (!json_is_object(j)) {
        snprintf(err, errlen, "%s: expected a JSON object", d->short_name);
        return NULL;
    }
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->message_init(m);
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
        if (!f) {
            snprintf(err, errlen, "%s: no field \"%s\"", d->short_name, key);
            goto fail;
        }
        if (json_is_null(v))
            continue;
        char *base = (char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!json_is_array(v)) {
                snprintf(err, errlen, "%s: expected an array", key);
                goto fail;
            }
            size_t n = json_array_size(v), sz = type_size(f->type);
            char *items = calloc(n ? n : 1, sz);
            if (!items) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            *(void **)base = items;
            size_t *np = (size_t *)((char *)m + f->quantifier_offset);
            for (size_t k = 0; k < n; k++) {
                if (json_to_value(f, json_array_get(v, k), items + k * sz, err, errlen, d->short_name) < 0)
                    goto fail;
                *np = k + 1; /* only filled items get freed */
            }
            continue;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(void **)base) {
            snprintf(err, errlen, "%s: given twice", key);
            goto fail;
        }
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            /* The default is a shared empty string: never free it. */
            *(char **)base = NULL;
        }
        if (json_to_value(f, v, base, err, errlen, d->short_name) < 0) {
            if (f->type == PROTOBUF_C_TYPE_STRING && !*(char **)base)
                *(char **)base = (char *)f->default_value;
            goto fail;
        }
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
            f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
            *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
    }
    return m;
fail:
    protobuf_c_message_free_unpacked(m, NULL);
    return NULL;
}

/* ---------------------------------------------------------------- enums */

int cli_enum_parse(const ProtobufCEnumDescriptor *d, const char *prefix, const char *s)
{
    if (!s || !*s)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    if (!*end && protobuf_c_enum_descriptor_get_value(d, (int)v))
        return (int)v;
    size_t pl = strlen(prefix);
    for (unsigned i = 0; i < d->n_values; i++) {
        const char *n = d->values[i].name;
        if (strcasecmp(n, s) == 0)
            return d->values[i].value;
        if (strncmp(n, prefix, pl) == 0 && strcasecmp(n + pl, s) == 0)
            return d->values[i].value;
    }
    return -1;
}

const char *cli_enum_short(const ProtobufCEnumDescriptor *d, const char *prefix, int v)
{
    static char buf[8][64];
    static int next;
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    char *b = buf[next++ % 8];
    if (!ev) {
        snprintf(b, 64, "%d", v);
        return b;
    }
    const char *n = ev->name;
    size_t pl = strlen(prefix);
    if (strncmp(n, prefix, pl) == 0)
        n += pl;
    size_t i = 0;
    for (; n[i] && i < 63; i++)
        b[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
    b[i] = 0;
    return b;
}
