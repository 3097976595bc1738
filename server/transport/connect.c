/*
 * connect.c: the Connect protocol's unary rules between HTTP and calls
 * (connect.h). What is Connect's lives here once for every HTTP transport:
 * content types, GET queries, connect-timeout-ms, the error JSON and its
 * HTTP statuses, ETags and If-None-Match.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "connect.h"
#include "methods.h"
#include "pbjson.h"
#include "server.h"
#include "status.h"

#define CT_JSON "application/json"
#define CT_PROTO "application/proto"
#define CT_TEXT "text/plain; charset=utf-8"
#define CT_STREAM_JSON "application/connect+json"
#define CT_STREAM_PROTO "application/connect+proto"

/* ---------------------------------------------------------------- codes */

static const struct {
    const char *name;   /* Connect's name */
    int http;           /* its HTTP status */
} codes[17] = {
    [SENTRA_OK] = { "ok", 200 },
    [SENTRA_CANCELLED] = { "canceled", 499 },
    [SENTRA_UNKNOWN] = { "unknown", 500 },
    [SENTRA_INVALID_ARGUMENT] = { "invalid_argument", 400 },
    [SENTRA_DEADLINE_EXCEEDED] = { "deadline_exceeded", 504 },
    [SENTRA_NOT_FOUND] = { "not_found", 404 },
    [SENTRA_ALREADY_EXISTS] = { "already_exists", 409 },
    [SENTRA_PERMISSION_DENIED] = { "permission_denied", 403 },
    [SENTRA_RESOURCE_EXHAUSTED] = { "resource_exhausted", 429 },
    [SENTRA_FAILED_PRECONDITION] = { "failed_precondition", 400 },
    [SENTRA_ABORTED] = { "aborted", 409 },
    [SENTRA_OUT_OF_RANGE] = { "out_of_range", 400 },
    [SENTRA_UNIMPLEMENTED] = { "unimplemented", 501 },
    [SENTRA_INTERNAL] = { "internal", 500 },
    [SENTRA_UNAVAILABLE] = { "unavailable", 503 },
    [SENTRA_DATA_LOSS] = { "data_loss", 500 },
    [SENTRA_UNAUTHENTICATED] = { "unauthenticated", 401 },
};

const char *connect_code_name(int code)
{
    return code >= 0 && code <= 16 ? codes[code].name : "unknown";
}

int connect_http_status(int code)
{
    return code >= 0 && code <= 16 ? codes[code].http : 500;
}

/* ---------------------------------------------------------------- replies */

void connect_reply_free(connect_reply_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

void connect_call_free(connect_call_t *cc)
{
    free(cc->payload);
    free(cc->if_none_match);
    cc->payload = NULL;
    cc->if_none_match = NULL;
}

static void reply_init(connect_reply_t *r, int status)
{
    memset(r, 0, sizeof(*r));
    r->status = status;
    r->cache_control = "no-store";
}

void connect_plain(int status, const char *text, connect_reply_t *r)
{
    reply_init(r, status);
    size_t n = strlen(text);
    r->body = malloc(n + 1);
    if (r->body == NULL)
        abort();
    memcpy(r->body, text, n);
    r->body[n] = '\n';
    r->len = n + 1;
    r->content_type = CT_TEXT;
}

/* Appends a varint, then a length-delimited field. */
static void pb_varint(pbjson_buf_t *b, uint64_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    pbjson_buf_add(b, tmp, n);
}

static void pb_bytes(pbjson_buf_t *b, unsigned field, const void *p, size_t n)
{
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, n);
    pbjson_buf_add(b, p, n);
}

/* One entry of "details": {"type":..., "value": base64 (standard alphabet,
 * unpadded, as Connect writes it), "debug": its JSON for people}. */
static void add_detail(pbjson_buf_t *out, const char *type, const pbjson_buf_t *bin, const char *debug)
{
    char *b64 = malloc(PBJSON_B64_LEN(bin->len) + 1);
    if (b64 == NULL)
        abort();
    size_t n = pbjson_b64_encode((const uint8_t *)bin->data, bin->len, b64, 0);
    while (n > 0 && b64[n - 1] == '=')
        b64[--n] = '\0';
    pbjson_buf_add(out, "{\"type\":", 8);
    pbjson_buf_string(out, type);
    pbjson_buf_add(out, ",\"value\":", 9);
    pbjson_buf_string(out, b64);
    pbjson_buf_add(out, ",\"debug\":", 9);
    pbjson_buf_add(out, debug, strlen(debug));
    pbjson_buf_add(out, "}", 1);
    free(b64);
}

/* Connect's error JSON for an answer that is not OK. Field violations go
 * in a google.rpc.BadRequest detail (its FieldViolation has the same field
 * numbers as sentra.v1.FieldViolation: field 1, description 2); the
 * current version of an ABORTED version conflict in a google.rpc.ErrorInfo
 * detail (reason VERSION_CONFLICT, domain sentra.v1, metadata
 * current_version). */
static void error_object(pbjson_buf_t *out, int code, const char *message, const violations_t *v,
                         int64_t current_version)
{
    pbjson_buf_add(out, "{\"code\":", 8);
    pbjson_buf_string(out, connect_code_name(code));
    if (message != NULL && message[0]) {
        pbjson_buf_add(out, ",\"message\":", 11);
        pbjson_buf_string(out, message);
    }
    int details = 0;
    if (v != NULL && v->n > 0) {
        pbjson_buf_t bin = { 0 }, debug = { 0 };
        pbjson_buf_add(&debug, "{\"fieldViolations\":[", 20);
        for (size_t i = 0; i < v->n; i++) {
            size_t n = protobuf_c_message_get_packed_size(&v->items[i]->base);
            uint8_t *fv = malloc(n ? n : 1);
            if (fv == NULL)
                abort();
            protobuf_c_message_pack(&v->items[i]->base, fv);
            pb_bytes(&bin, 1, fv, n);
            free(fv);
            if (i > 0)
                pbjson_buf_add(&debug, ",", 1);
            pbjson_write(&debug, &v->items[i]->base, 0);
        }
        pbjson_buf_add(&debug, "]}", 2);
        pbjson_buf_add(out, ",\"details\":[", 12);
        add_detail(out, "google.rpc.BadRequest", &bin, debug.data);
        details = 1;
        free(bin.data);
        free(debug.data);
    }
    if (code == SENTRA_ABORTED && current_version > 0) {
        char ver[32], dbg[160];
        snprintf(ver, sizeof(ver), "%" PRId64, current_version);
        pbjson_buf_t bin = { 0 }, entry = { 0 };
        pb_bytes(&bin, 1, "VERSION_CONFLICT", 16);
        pb_bytes(&bin, 2, "sentra.v1", 9);
        pb_bytes(&entry, 1, "current_version", 15);
        pb_bytes(&entry, 2, ver, strlen(ver));
        pb_bytes(&bin, 3, entry.data, entry.len);
        snprintf(dbg, sizeof(dbg),
                 "{\"reason\":\"VERSION_CONFLICT\",\"domain\":\"sentra.v1\",\"metadata\":{\"current_version\":\"%s\"}}",
                 ver);
        pbjson_buf_add(out, details ? "," : ",\"details\":[", details ? 1 : 12);
        add_detail(out, "google.rpc.ErrorInfo", &bin, dbg);
        details = 1;
        free(bin.data);
        free(entry.data);
    }
    if (details)
        pbjson_buf_add(out, "]", 1);
    pbjson_buf_add(out, "}", 1);
}

static void error_json(int code, const char *message, const violations_t *v, int64_t current_version,
                       connect_reply_t *r)
{
    reply_init(r, connect_http_status(code));
    pbjson_buf_t out = { 0 };
    error_object(&out, code, message, v, current_version);
    r->body = (uint8_t *)out.data;
    r->len = out.len;
    r->content_type = CT_JSON;
}

/* ---------------------------------------------------------------- streams */

const char *connect_content_type(const connect_call_t *cc)
{
    if (cc->stream)
        return cc->codec == CALL_CODEC_JSON ? CT_STREAM_JSON : CT_STREAM_PROTO;
    return cc->codec == CALL_CODEC_JSON ? CT_JSON : CT_PROTO;
}

/* Appends an envelope: flags, 4-byte big-endian length, then data. */
static void envelope(pbjson_buf_t *out, uint8_t flags, const void *data, size_t len)
{
    uint8_t h[5] = { flags, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len };
    pbjson_buf_add(out, (const char *)h, 5);
    pbjson_buf_add(out, data, len);
}

void connect_stream_message(const connect_call_t *cc, const ProtobufCMessage *m, pbjson_buf_t *out)
{
    size_t n;
    uint8_t *b = call_encode(m, cc->codec, &n);
    envelope(out, 0, b, n);
    free(b);
}

/* The end-of-stream message: {} on success, {"error":{...}} otherwise
 * (always JSON, whatever the codec). */
static void stream_end(pbjson_buf_t *out, int code, const char *message, const violations_t *v,
                       int64_t version)
{
    pbjson_buf_t j = { 0 };
    if (code == SENTRA_OK) {
        pbjson_buf_add(&j, "{}", 2);
    } else {
        pbjson_buf_add(&j, "{\"error\":", 9);
        error_object(&j, code, message, v, version);
        pbjson_buf_add(&j, "}", 1);
    }
    envelope(out, 0x02, j.data, j.len);
    free(j.data);
}

void connect_stream_end(const connect_call_t *cc, const call_answer_t *a, pbjson_buf_t *out)
{
    (void)cc;
    stream_end(out, a->code, a->message, a->violations, a->current_version);
}

/* A streaming request refused before its call: 200 and an end-of-stream
 * message carrying the error, as Connect's streaming rules want. */
static void stream_error(const connect_call_t *cc, int code, const char *message, connect_reply_t *r)
{
    reply_init(r, 200);
    pbjson_buf_t out = { 0 };
    stream_end(&out, code, message, NULL, 0);
    r->body = (uint8_t *)out.data;
    r->len = out.len;
    r->content_type = connect_content_type(cc);
}

void connect_error(int code, const char *message, connect_reply_t *r)
{
    error_json(code, message, NULL, 0, r);
}

void connect_answer(const connect_call_t *cc, const call_answer_t *a, connect_reply_t *r)
{
    if (a->code != SENTRA_OK || a->payload == NULL) {
        if (a->code == SENTRA_OK) {
            /* The end of a stream on a unary transport: nothing to send. */
            error_json(SENTRA_INTERNAL, "no message in the answer", NULL, 0, r);
            return;
        }
        error_json(a->code, a->message, a->violations, a->current_version, r);
        return;
    }
    reply_init(r, 200);
    r->body = call_encode(a->payload, cc->codec, &r->len);
    r->content_type = connect_content_type(cc);
    if (cc->etag[0]) {
        memcpy(r->etag, cc->etag, sizeof(r->etag));
        r->cache_control = "private, no-cache";
    }
}

/* ---------------------------------------------------------------- requests */

int connect_is_procedure(const char *path, size_t len)
{
    if (len < 4 || path[0] != '/')
        return 0;
    const char *slash = memchr(path + 1, '/', len - 1);
    if (slash == NULL || slash == path + 1 || slash == path + len - 1)
        return 0;
    if (memchr(path + 1, '.', (size_t)(slash - path - 1)) == NULL)
        return 0;
    for (const char *p = path + 1; p < path + len; p++) {
        char c = *p;
        if (p == slash)
            continue;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              (c == '.' && p < slash)))
            return 0;
    }
    return 1;
}

static const char *header(const call_md_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].key, name) == 0)
            return h[i].value;
    return NULL;
}

/* The media type of a Content-Type value, without parameters, compared
 * case-insensitively; *params points at what follows ';' (or ""). */
static int media_is(const char *ct, const char *type, const char **params)
{
    size_t n = strlen(type);
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, type, n) != 0)
        return 0;
    const char *p = ct + n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0' && *p != ';')
        return 0;
    if (params != NULL)
        *params = *p == ';' ? p + 1 : "";
    return 1;
}

/* JSON's charset parameter may only say UTF-8. */
static int charset_ok(const char *params)
{
    const char *cs = strcasestr(params, "charset=");
    if (cs == NULL)
        return 1;
    cs += 8;
    if (*cs == '"')
        cs++;
    return strncasecmp(cs, "utf-8", 5) == 0 || strncasecmp(cs, "utf8", 4) == 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) ('+' is a space, as forms and URLSearchParams
 * write it) into a malloc'ed buffer; -1 on a bad escape. */
static long pct_decode(const char *s, size_t n, uint8_t **out)
{
    uint8_t *o = malloc(n + 1);
    if (o == NULL)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = -1, lo = -1;
            if (i + 2 < n) {
                hi = hexval(s[i + 1]);
                lo = hexval(s[i + 2]);
            }
            if (hi < 0 || lo < 0) {
                free(o);
                return -1;
            }
            o[k++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else {
            o[k++] = s[i] == '+' ? ' ' : (uint8_t)s[i];
        }
    }
    o[k] = '\0';
    *out = o;
    return (long)k;
}

/* The value of query parameter name (percent-decoded, malloc'ed, its
 * length in *len), NULL when absent; *bad is set on a bad escape. */
static uint8_t *query_param(const char *q, const char *name, size_t *len, int *bad)
{
    size_t nl = strlen(name);
    for (const char *p = q; p != NULL && *p;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            uint8_t *v;
            long n = pct_decode(p + nl + 1, seg - nl - 1, &v);
            if (n < 0) {
                *bad = 1;
                return NULL;
            }
            *len = (size_t)n;
            return v;
        }
        if (seg == nl && strncmp(p, name, nl) == 0) {
            uint8_t *v = calloc(1, 1);
            if (v == NULL)
                abort();
            *len = 0;
            return v;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* A GET's query into the request message: encoding, message, base64,
 * compression, connect. Returns 0, or -1 with *r set. */
static int read_get_query(connect_call_t *cc, const char *query, connect_reply_t *r)
{
    size_t n = 0;
    int bad = 0;
    char why[200];
    uint8_t *enc = query_param(query, "encoding", &n, &bad);
    uint8_t *b64 = NULL, *comp = NULL, *conn = NULL, *msg = NULL;
    int rc = -1;
    if (bad)
        goto bad_escape;
    if (enc == NULL) {
        connect_error(SENTRA_INVALID_ARGUMENT, "a Connect GET needs ?encoding=json or ?encoding=proto", r);
        goto out;
    }
    if (strcmp((char *)enc, "json") == 0) {
        cc->codec = CALL_CODEC_JSON;
    } else if (strcmp((char *)enc, "proto") == 0) {
        cc->codec = CALL_CODEC_PROTO;
    } else {
        snprintf(why, sizeof(why), "encoding \"%.40s\" is not served; use json or proto", (char *)enc);
        connect_plain(415, why, r);
        r->accept_post = CT_JSON ", " CT_PROTO;
        goto out;
    }
    conn = query_param(query, "connect", &n, &bad);
    if (!bad && conn != NULL && strcmp((char *)conn, "v1") != 0) {
        connect_error(SENTRA_INVALID_ARGUMENT, "connect must be v1", r);
        goto out;
    }
    comp = query_param(query, "compression", &n, &bad);
    if (!bad && comp != NULL && comp[0] && strcmp((char *)comp, "identity") != 0) {
        snprintf(why, sizeof(why), "compression \"%.40s\" is not supported; send identity", (char *)comp);
        connect_error(SENTRA_UNIMPLEMENTED, why, r);
        goto out;
    }
    b64 = query_param(query, "base64", &n, &bad);
    size_t mlen = 0;
    msg = query_param(query, "message", &mlen, &bad);
    if (bad)
        goto bad_escape;
    if (msg == NULL)
        msg = calloc(1, 1), mlen = 0; /* an empty message */
    if (msg == NULL)
        abort();
    if (b64 != NULL && strcmp((char *)b64, "1") == 0) {
        for (size_t i = 0; i < mlen; i++)
            if (msg[i] == ' ')
                msg[i] = '+'; /* an unescaped '+' of standard base64 */
        uint8_t *dec = malloc(mlen / 4 * 3 + 3);
        if (dec == NULL)
            abort();
        long dl = pbjson_b64_decode((char *)msg, mlen, dec);
        if (dl < 0) {
            free(dec);
            connect_error(SENTRA_INVALID_ARGUMENT, "message is not base64 (base64=1)", r);
            goto out;
        }
        free(msg);
        msg = dec;
        mlen = (size_t)dl;
    } else if (cc->codec == CALL_CODEC_PROTO) {
        /* Binary in a query without base64 cannot round-trip text rules;
         * Connect clients always set base64=1 for proto. Accepted anyway. */
    }
    cc->payload = msg;
    msg = NULL;
    cc->req.payload = cc->payload;
    cc->req.len = mlen;
    rc = 0;
    goto out;
bad_escape:
    connect_error(SENTRA_INVALID_ARGUMENT, "malformed percent-encoding in the query", r);
out:
    free(enc);
    free(b64);
    free(comp);
    free(conn);
    free(msg);
    return rc;
}

int connect_prepare(connect_call_t *cc, const char *http_method, const char *path, size_t path_len,
                    const char *query, const call_md_t *headers, size_t n_headers,
                    const uint8_t *body, size_t body_len, connect_reply_t *r)
{
    memset(cc, 0, sizeof(*cc));
    char name[256];
    size_t name_len = path_len < 255 ? path_len : 255;
    memcpy(name, path, name_len);
    name[name_len] = '\0';
    const method_t *m = method_find(name);
    cc->method_flags = m ? m->flags : 0;
    int is_get = strcmp(http_method, "GET") == 0;
    char why[512];

    if (!is_get && strcmp(http_method, "POST") != 0) {
        connect_plain(405, "procedures are called with POST (or GET when they have no side effects)", r);
        r->allow = m != NULL && (m->flags & METHOD_NO_SIDE_EFFECTS) ? "GET, POST" : "POST";
        return -1;
    }
    if (is_get && m != NULL && !(m->flags & METHOD_NO_SIDE_EFFECTS)) {
        snprintf(why, sizeof(why), "%s has side effects: call it with POST", name);
        connect_plain(405, why, r);
        r->allow = "POST";
        return -1;
    }
    const char *ct = header(headers, n_headers, "content-type"), *params = "";
    int streaming_ct = !is_get && ct != NULL &&
                       ((media_is(ct, CT_STREAM_JSON, &params) && charset_ok(params)) ||
                        media_is(ct, CT_STREAM_PROTO, NULL));
    int streams = m != NULL && (m->flags & METHOD_STREAM);
    if (streams != streaming_ct && (m != NULL || streaming_ct)) {
        /* Connect's rule: a streaming method takes the streaming content
         * types only, a unary one the unary types only. */
        if (streams)
            snprintf(why, sizeof(why), "%s streams: call it with Content-Type application/connect+json or "
                                       "application/connect+proto", name);
        else
            snprintf(why, sizeof(why), "%s is unary: call it with Content-Type application/json or "
                                       "application/proto", name);
        connect_plain(415, why, r);
        r->accept_post = streams ? CT_STREAM_JSON ", " CT_STREAM_PROTO : CT_JSON ", " CT_PROTO;
        return -1;
    }
    cc->stream = streaming_ct;
    if (cc->stream)
        cc->codec = media_is(ct, CT_STREAM_JSON, NULL) ? CALL_CODEC_JSON : CALL_CODEC_PROTO;
/* Refusals of a streaming request are end-of-stream messages (HTTP 200). */
#define REFUSE(code, msg)                      \
    do {                                       \
        if (cc->stream)                        \
            stream_error(cc, code, msg, r);    \
        else                                   \
            connect_error(code, msg, r);       \
        return -1;                             \
    } while (0)

    const char *ver = header(headers, n_headers, "connect-protocol-version");
    if (ver != NULL && strcmp(ver, "1") != 0)
        REFUSE(SENTRA_INVALID_ARGUMENT, "connect-protocol-version must be 1");

    cc->is_get = is_get;
    if (cc->stream) {
        /* One enveloped message: flags, 4-byte length, the message. */
        const char *enc = header(headers, n_headers, "connect-content-encoding");
        if (enc != NULL && enc[0] && strcasecmp(enc, "identity") != 0)
            REFUSE(SENTRA_UNIMPLEMENTED, "connect-content-encoding is not supported; send identity");
        if (body_len < 5)
            REFUSE(SENTRA_INVALID_ARGUMENT, "a server-streaming request is one enveloped message");
        size_t n = (size_t)body[1] << 24 | (size_t)body[2] << 16 | (size_t)body[3] << 8 | body[4];
        if (body[0] & 0x01)
            REFUSE(SENTRA_UNIMPLEMENTED, "compressed messages are not supported");
        if (body[0] != 0 || n != body_len - 5)
            REFUSE(SENTRA_INVALID_ARGUMENT, "a server-streaming request is exactly one enveloped message");
        cc->req.payload = body + 5;
        cc->req.len = n;
    } else if (is_get) {
        if (read_get_query(cc, query ? query : "", r) != 0)
            return -1;
    } else {
        if (ct != NULL && media_is(ct, CT_JSON, &params) && charset_ok(params)) {
            cc->codec = CALL_CODEC_JSON;
        } else if (ct != NULL && media_is(ct, CT_PROTO, NULL)) {
            cc->codec = CALL_CODEC_PROTO;
        } else {
            snprintf(why, sizeof(why), "Content-Type \"%.80s\" is not served; send application/json or "
                                       "application/proto", ct ? ct : "");
            connect_plain(415, why, r);
            r->accept_post = CT_JSON ", " CT_PROTO;
            return -1;
        }
        const char *enc = header(headers, n_headers, "content-encoding");
        if (enc != NULL && enc[0] && strcasecmp(enc, "identity") != 0) {
            snprintf(why, sizeof(why), "Content-Encoding \"%.40s\" is not supported; send identity", enc);
            connect_error(SENTRA_UNIMPLEMENTED, why, r);
            return -1;
        }
        /* An empty JSON body is the empty message, as for binary. */
        cc->req.payload = body_len > 0 || cc->codec == CALL_CODEC_PROTO ? body : (const uint8_t *)"{}";
        cc->req.len = body_len > 0 || cc->codec == CALL_CODEC_PROTO ? body_len : 2;
    }

    const char *tmo = header(headers, n_headers, "connect-timeout-ms");
    if (tmo != NULL) {
        size_t n = strlen(tmo);
        if (n == 0 || n > 10 || strspn(tmo, "0123456789") != n)
            REFUSE(SENTRA_INVALID_ARGUMENT, "connect-timeout-ms must be 1 to 10 digits");
        unsigned long long ms = strtoull(tmo, NULL, 10);
        cc->req.timeout_ms = ms == 0 ? 1 : ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    }

    size_t k = 0;
    static const char *const keep[] = { "authorization", "idempotency-key", "x-idempotency-key" };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        const char *v = header(headers, n_headers, keep[i]);
        if (v != NULL) {
            cc->md[k].key = keep[i];
            cc->md[k].value = v;
            k++;
        }
    }
    /* Custom metadata: headers named sentra-* (sentra-consistency, ...),
     * as many as fit; other headers are HTTP's and the browser's. */
    for (size_t i = 0; i < n_headers && k < sizeof(cc->md) / sizeof(cc->md[0]); i++) {
        if (strncmp(headers[i].key, "sentra-", 7) == 0) {
            cc->md[k].key = headers[i].key;
            cc->md[k].value = headers[i].value;
            k++;
        }
    }
    const char *inm = header(headers, n_headers, "if-none-match");
    if (inm != NULL && is_get && (cc->method_flags & METHOD_ETAG)) {
        cc->if_none_match = strdup(inm);
        if (cc->if_none_match == NULL)
            abort();
    }
    cc->req.method = path; /* NUL-terminated by the transport */
    cc->req.codec = cc->codec;
    cc->req.md = cc->md;
    cc->req.n_md = k;

    uint64_t h = fnv(1469598103934665603ull, name, strlen(name) + 1);
    h = fnv(h, &cc->codec, sizeof(cc->codec));
    cc->req_hash = fnv(h, cc->req.payload, cc->req.len);
    return 0;
}

/* ---------------------------------------------------------------- ETags */

/* Whether tag is among the entity tags of an If-None-Match value ("*",
 * or a comma-separated list, weak tags compared by their opaque part). */
static int inm_matches(const char *list, const char *tag)
{
    size_t tl = strlen(tag);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t n = strcspn(p, ",");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == tl && memcmp(p, tag, tl) == 0)
            return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

int connect_ready(connect_call_t *cc, const call_t *c, connect_reply_t *r)
{
    if (!cc->is_get || !(cc->method_flags & METHOD_ETAG))
        return 0;
    /* A read that accepts a standby's lag (docs/PROTOCOL.md,
     * sentra-consistency) may answer data older than the generation read at
     * its start: a tag would let a later 304 keep that stale answer. */
    const char *cons = call_metadata(c, "sentra-consistency");
    if (cons != NULL && strcmp(cons, "bounded") == 0)
        return 0;
    /* The token's id and today's date (answers about "this year" or "as
     * of now" change with it) join the request's hash. */
    uint64_t day = (uint64_t)time(NULL) / 86400;
    uint64_t h = fnv(cc->req_hash, c->auth.token_id, strlen(c->auth.token_id) + 1);
    h = fnv(h, &day, sizeof(day));
    snprintf(cc->etag, sizeof(cc->etag), "\"%016" PRIx64 "-%" PRIu64 "-%016" PRIx64 "\"", c->srv->instance,
             c->generation, h);
    if (cc->if_none_match == NULL || !inm_matches(cc->if_none_match, cc->etag))
        return 0;
    reply_init(r, 304);
    memcpy(r->etag, cc->etag, sizeof(r->etag));
    r->cache_control = "private, no-cache";
    return 1;
}

/* ---------------------------------------------------------------- CORS */

int connect_cors_allowed(const char *list, const char *origin)
{
    if (list == NULL || origin == NULL || origin[0] == '\0')
        return 0;
    size_t ol = strlen(origin);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t > 0 && p[t - 1] == ' ')
            t--;
        if (t > 0 && ((t == ol && strncasecmp(p, origin, ol) == 0) || (t == 1 && p[0] == '*')))
            return 1;
        p += n;
    }
    return 0;
}
