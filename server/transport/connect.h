/*
 * connect.h: the Connect protocol (connectrpc.com/docs/protocol) over any
 * HTTP transport: from an HTTP request (method, path, query, headers,
 * body) to a call_request_t, and from what the call answers to an HTTP
 * status, headers and body. No I/O and no HTTP framing: http1.c uses it
 * for HTTP/1.1, and an HTTP/2 transport can use it per stream.
 *
 * Unary calls: POST /sentra.v1.Service/Method with Content-Type
 * application/json (proto3 JSON, common/pbjson.h) or application/proto,
 * the bare message as body; or GET for methods marked NO_SIDE_EFFECTS with
 * ?encoding=json|proto&message=...[&base64=1]. Answers: 200 with the same
 * content type, or Connect's error JSON with its HTTP status. The ETag of
 * a GET is made from the process instance, the data generation read when
 * the call started (call_t.generation), the method, the request and the
 * token (docs/PROTOCOL.md, HTTP and JSON). Server-streaming methods in
 * Connect's streaming envelopes: below.
 */
#ifndef SENTRA_CONNECT_H
#define SENTRA_CONNECT_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"
#include "pbjson.h"

struct server;

/* An HTTP answer for the transport to frame. */
typedef struct connect_reply {
    int status;                 /* HTTP status */
    const char *content_type;   /* static string; NULL when there is no body */
    uint8_t *body;              /* malloc'ed, owned by the reply; NULL when none */
    size_t len;                 /* body length */
    char etag[96];              /* quoted entity tag, or "" */
    const char *cache_control;  /* static string, or NULL */
    const char *allow;          /* "Allow" header (405), or NULL */
    const char *accept_post;    /* "Accept-Post" header (415), or NULL */
} connect_reply_t;

/* One Connect request while its call runs: the transport keeps it beside
 * the call (its memory backs cc->req until call_start returns, and the
 * ETag state until the answer). */
typedef struct connect_call {
    call_request_t req;         /* for call_start() */
    call_md_t md[8];            /* req.md: authorization, idempotency keys, sentra-* */
    uint8_t *payload;           /* a GET's decoded message (owned), or NULL */
    int codec;                  /* CALL_CODEC_* of request and answer */
    int is_get;                 /* Connect GET: answers may carry an ETag */
    int stream;                 /* server streaming (application/connect+json|proto) */
    unsigned method_flags;      /* METHOD_* of the method, 0 if unknown */
    uint64_t req_hash;          /* hash of method, codec and message (ETag) */
    char *if_none_match;        /* the client's If-None-Match (owned), or NULL */
    char etag[96];              /* the ETag this answer carries, or "" */
} connect_call_t;

/* Whether path[0..len) names a procedure: "/pkg.Service/Method" (a dot in
 * the service, one slash between). Other paths are not Connect's. */
int connect_is_procedure(const char *path, size_t len);

/* Reads an HTTP request for a procedure: http_method ("POST", "GET"),
 * path[0..path_len) (no query), query (after '?', or NULL), headers (lower-
 * case names; copied where kept), body. Returns 0 with cc filled: start the
 * call with call_start(c, &cc->req) (cc and the transport's header and
 * body buffers must live until call_start returns; after that only cc).
 * Returns -1 with the answer to send in *reply instead of a call (415, 405,
 * a bad timeout or GET query...). Free cc with connect_call_free either
 * way. */
int connect_prepare(connect_call_t *cc, const char *http_method, const char *path, size_t path_len,
                    const char *query, const call_md_t *headers, size_t n_headers,
                    const uint8_t *body, size_t body_len, connect_reply_t *reply);

/* For the sink's ready(): once the token is checked, computes the ETag of
 * a GET of a METHOD_ETAG method; returns 1 with a 304 in *reply when the
 * client's If-None-Match holds it (the handler then does not run), else 0. */
int connect_ready(connect_call_t *cc, const call_t *c, connect_reply_t *reply);

/* The HTTP answer for what the call answered. */
void connect_answer(const connect_call_t *cc, const call_answer_t *a, connect_reply_t *reply);

/* ---------------------------------------------------------------- streams
 *
 * A server-streaming method (METHOD_STREAM) is called with Content-Type
 * application/connect+json or application/connect+proto and one enveloped
 * request message (flags byte 0, 4-byte big-endian length, the message).
 * The answer is 200 with the same content type and a body of envelopes:
 * each message (flags 0), then the end of the stream (flags 0x02) whose
 * JSON is {} or {"error":{...}}, Connect's error object. The transport
 * frames the body (HTTP/1.1: chunked; HTTP/2: DATA). */

/* The Content-Type of cc's answers. */
const char *connect_content_type(const connect_call_t *cc);

/* Appends m as one message envelope of cc's stream. */
void connect_stream_message(const connect_call_t *cc, const ProtobufCMessage *m, pbjson_buf_t *out);

/* Appends the end-of-stream envelope for what the call answered. */
void connect_stream_end(const connect_call_t *cc, const call_answer_t *a, pbjson_buf_t *out);

/* A Connect error answer (code: SENTRA_*), for refusals made without a
 * call (a transport's limits). */
void connect_error(int code, const char *message, connect_reply_t *reply);

/* A plain-text answer (HTTP-level refusals that Connect gives no JSON:
 * 400 for malformed HTTP, 404, 405, 413, 415, 431). */
void connect_plain(int status, const char *text, connect_reply_t *reply);

/* The HTTP status of a SENTRA_* code under Connect's mapping. */
int connect_http_status(int code);

/* Connect's name of a SENTRA_* code ("invalid_argument"). */
const char *connect_code_name(int code);

void connect_call_free(connect_call_t *cc);
void connect_reply_free(connect_reply_t *reply);

/* ---------------------------------------------------------------- CORS */

/* Whether origin is in the comma-separated allow-list (config
 * --cors-origin; NULL or "": none is). */
int connect_cors_allowed(const char *allow_list, const char *origin);

/* What a preflight allows (Access-Control-Allow-Methods / -Headers) and
 * what answers expose to scripts. */
#define CONNECT_CORS_METHODS "GET, POST"
#define CONNECT_CORS_HEADERS "Authorization, Content-Type, Connect-Protocol-Version, Connect-Timeout-Ms, " \
                             "Idempotency-Key, X-Idempotency-Key, If-None-Match"
#define CONNECT_CORS_EXPOSE "ETag, Content-Length"

#endif
