/*
 * h2.h: HTTP/2 on a connection (transport/h2.c, on nghttp2), and the seam
 * where protocols that ride on HTTP/2 streams plug in.
 *
 * h2.c owns the HTTP/2 session: the preface and SETTINGS, HPACK, flow
 * control, PING (with gRPC's keepalive policy), GOAWAY, idle timeout,
 * graceful drain, rapid-reset and bad-input protection. It knows no
 * application protocol. Each request stream, once its headers are in, is
 * given to the first h2_app_t in its table whose match() accepts the
 * stream's content-type (the per-stream dispatch on content-type):
 *
 *   application/grpc, application/grpc+proto, ...   grpc.c (sentra__h2_grpc_app)
 *   application/json, application/proto, none       Connect (connect_h2.c)
 *   anything else                                   HTTP 415, no app
 *
 * An app sees only the stream functions below: request headers in,
 * response headers, body bytes and trailers out. It keeps its own state in
 * s->app_data. The rules an app follows:
 *
 *   - Everything it writes is buffered in the stream and sent as the
 *     client's flow-control windows allow. h2_stream_buffered() says how
 *     much waits; an app that produces a stream of messages stops at
 *     H2_STREAM_HIGH and goes on when on_drained() is called (the stream
 *     fell below H2_STREAM_LOW with the socket writable). That is how a
 *     client that does not read pauses its producer instead of filling
 *     memory. Stream buffers count as answers waiting for the client
 *     (conn_kept): a whole answer that does not fit (conn_answer_fits) is
 *     replaced by RESOURCE_EXHAUSTED, as the native protocol does.
 *   - Request bytes count against the connection's budget until the app
 *     releases them (h2_stream_release): once the call they made is done,
 *     or when it drops them.
 *   - on_close() is the last call for a stream, on every path (answered,
 *     reset by the client, connection closing): the app drops what it
 *     holds there. After it the stream is freed.
 *   - Callbacks into an app never come from inside a stream function the
 *     app called: on_drained() is deferred until nghttp2 has finished
 *     sending.
 *
 * Over TLS (tls.c): after the handshake, a connection whose ALPN is "h2"
 * starts this protocol with conn_choose_proto(c, &sentra__h2_proto) and
 * gives it the decrypted bytes; nothing here sniffs.
 */
#ifndef SENTRA_H2_H
#define SENTRA_H2_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

struct conn;
struct server;
typedef struct h2_stream h2_stream_t;

#define H2_STREAM_HIGH (64 * 1024)   /* a producer pauses above this many buffered bytes */
#define H2_STREAM_LOW (16 * 1024)    /* and is told to go on below this */
/* Request bytes a connection holds for its apps (not yet released: bodies
 * being received, and those of requests whose calls run) before the
 * client's connection window stops being given back: a client uploading
 * on many streams at once waits instead of filling memory. Bodies still
 * being received may hold as much (or a maximum frame and 64 KiB, if
 * more); beyond, the stream receiving is reset (ENHANCE_YOUR_CALM). */
#define H2_CONN_IN_BUDGET (8 * 1024 * 1024)

/* A protocol on HTTP/2 streams. */
typedef struct h2_app {
    const char *name;                                 /* "grpc", "connect" (logs) */
    /* Whether this app serves a request with this content-type ("" when
     * absent). Called once per stream, in table order. */
    int (*match)(const char *content_type);
    /* The request's headers are complete (h2_stream_header). */
    void (*on_headers)(h2_stream_t *s);
    /* Request body bytes, as they come (DATA frame boundaries mean
     * nothing). */
    void (*on_data)(h2_stream_t *s, const uint8_t *data, size_t len);
    /* The client ended its side (END_STREAM). */
    void (*on_end)(h2_stream_t *s);
    /* The stream buffer fell below H2_STREAM_LOW after an app saw it at
     * H2_STREAM_HIGH or more: produce more. Optional. */
    void (*on_drained)(h2_stream_t *s);
    /* The stream is gone (error_code: the RST_STREAM code, or 0 when it
     * ended normally; when the whole connection is closing, conn->state
     * is CONN_CLOSING and calls must be detached, not answered). Last
     * call; free app_data here. */
    void (*on_close)(h2_stream_t *s, uint32_t error_code);
} h2_app_t;

/* What an app may read of its stream. */
struct h2_stream {
    int32_t id;                     /* HTTP/2 stream id */
    struct conn *conn;              /* the connection */
    const h2_app_t *app;            /* who serves it; NULL: refused */
    void *app_data;                 /* the app's state */
};                                  /* (h2.c allocates it inside its own record) */

/* ---------------------------------------------------------------- requests */

/* The value of a request header (lower-case name, ":path" etc. too), or
 * NULL. Valid until on_close. */
const char *h2_stream_header(const h2_stream_t *s, const char *name);

/* The request headers in arrival order, for copying metadata: returns the
 * number of headers, and the i-th pair through name and value. */
size_t h2_stream_nheaders(const h2_stream_t *s);
void h2_stream_header_at(const h2_stream_t *s, size_t i, const char **name, const char **value);

/* The server this stream runs in. */
struct server *h2_stream_server(const h2_stream_t *s);

/* ---------------------------------------------------------------- responses */

/* Sends the response headers (":status" first, built here from status;
 * nva holds the others, copied). With end set the response is headers
 * only (END_STREAM: a gRPC trailers-only answer, a 415); otherwise body
 * and trailers follow. Returns 0, or -1 when the stream is gone or
 * headers were sent already. */
int h2_stream_respond(h2_stream_t *s, int status, const nghttp2_nv *nva, size_t n, int end);

/* Room for n body bytes at the end of the stream's buffer, to write into
 * directly (no copy); h2_stream_commit(s, n) then queues them. NULL when
 * the stream is gone. The buffer counts as answers waiting for the client
 * (conn_kept): before a large answer an app asks conn_answer_fits. */
uint8_t *h2_stream_reserve(h2_stream_t *s, size_t n);
void h2_stream_commit(h2_stream_t *s, size_t n);

/* Ends the response after the body queued so far, with trailers nva[0..n)
 * (copied; n may be 0: END_STREAM on the last DATA). When the client has
 * not ended its side yet, the stream is then reset with NO_ERROR, as
 * gRPC wants. */
void h2_stream_end(h2_stream_t *s, const nghttp2_nv *nva, size_t n);

/* Resets the stream with an HTTP/2 error code (NGHTTP2_CANCEL, ...). */
void h2_stream_reset(h2_stream_t *s, uint32_t error_code);

/* Body bytes queued and not yet sent. */
size_t h2_stream_buffered(const h2_stream_t *s);

/* Whether a producer should pause now: H2_STREAM_HIGH bytes or more wait
 * in the stream, or the socket's write queue is full. When it returns 1,
 * on_drained() follows once there is room again. */
int h2_stream_full(h2_stream_t *s);

/* The app is done with the request bytes it was given so far (the call
 * they made has ended, or they were dropped): they stop counting against
 * the connection's budget of request bytes (H2_CONN_IN_BUDGET), and the
 * client's connection window is given back. Bytes of a stream are
 * released on close anyway. */
void h2_stream_release(h2_stream_t *s);

/* Whether the stream can still be written to (not closed or reset). */
int h2_stream_open(const h2_stream_t *s);

/* ---------------------------------------------------------------- apps */

extern const h2_app_t sentra__h2_grpc_app;    /* grpc.c */
extern const h2_app_t sentra__h2_connect_app; /* connect_h2.c: Connect (JSON, proto, GET) */

#endif
