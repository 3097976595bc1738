/*
 * cli_json.c: --json output and JSON input files. Messages go to and from
 * JSON through common/pbjson.c, the same proto3 JSON mapping the server's
 * HTTP API speaks, printed with proto field names ("regency_code", as
 * protobuf's JSON printers do with their preserve-proto-field-names
 * option); input takes either name.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "pbjson.h"

json_t *cli_pb_to_json(const ProtobufCMessage *m, int all)
{
    json_t *j = pbjson_to_json(m, PBJSON_PROTO_NAMES | (all ? PBJSON_EMIT_DEFAULTS : 0));
    if (j == NULL)
        abort();
    return j;
}

void cli_print_json(const ProtobufCMessage *m)
{
    size_t n;
    char *s = pbjson_encode(m, PBJSON_PROTO_NAMES, &n);
    fwrite(s, 1, n, stdout);
    fputc('\n', stdout);
    free(s);
}

ProtobufCMessage *cli_json_to_pb(const ProtobufCMessageDescriptor *d, json_t *j, char *err, size_t errlen)
{
    return pbjson_from_json(d, j, err, errlen);
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
