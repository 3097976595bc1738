/*
 * refuse.c: the answer to a connection refused before it chose a protocol
 * (over --max-connections, or while the server stops: conn_accept), in
 * the protocol its first bytes name (sniff in conn.c), so that every kind
 * of client reads why instead of garbage:
 *
 *   native    GOAWAY (RESOURCE_EXHAUSTED "too many connections", or
 *             UNAVAILABLE "server shutting down"), last_stream_id 0
 *   HTTP/2    the server's SETTINGS (RFC 9113 section 3.4: its preface),
 *             then GOAWAY(last_stream_id 0, NO_ERROR, the reason as debug
 *             data): no stream was processed, retrying elsewhere is safe;
 *             sent once CONN_REFUSE_WAIT_MS have passed since the client
 *             connected (below)
 *   HTTP/1.1  503 Service Unavailable with Connection: close
 *
 * Why HTTP/2 waits: a gRPC client counts a connection whose SETTINGS came
 * as a success and connects again at once, without backoff, when GOAWAY
 * follows. Answered at once, Python grpcio (gRPC core 1.51) made 3,207
 * connections in the 8 s of one call waiting for the server (and
 * grpc-go resets its backoff the same way); answered after a second, it
 * makes one a second. A GOAWAY without SETTINGS would make it back off,
 * but is not HTTP/2, and clients then report a protocol error instead of
 * the reason.
 *
 * Nothing the client sent is served. The connection then closes the way
 * HTTP servers close (conn_linger_close): the client has sent bytes we do
 * not read, and a plain close would reset the connection, which can
 * destroy the answer before the client reads it. A client that says
 * nothing is closed without an answer (conn.c, CONN_REFUSE_WAIT_MS).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "frame.h"
#include "log.h"
#include "server.h"
#include "status.h"
#include "sentra/v1/rpc.pb-c.h"

#define H2_FRAME_SETTINGS 0x4
#define H2_FRAME_GOAWAY 0x7

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (b == NULL)
        abort();
    memcpy(b, p, n);
    return b;
}

/* An HTTP/2 frame header (RFC 9113 section 4.1) at p. */
static void h2_header(uint8_t *p, size_t len, uint8_t type)
{
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = 0;                  /* flags */
    memset(p + 5, 0, 4);       /* stream 0 */
}

static void refuse_h2(struct conn *c, const char *reason)
{
    size_t dlen = strlen(reason), glen = 8 + dlen;
    size_t len = 9 + 9 + glen;
    uint8_t *b = malloc(len);
    if (b == NULL)
        abort();
    h2_header(b, 0, H2_FRAME_SETTINGS);                /* our SETTINGS: all defaults */
    h2_header(b + 9, glen, H2_FRAME_GOAWAY);
    memset(b + 18, 0, 8);                              /* last stream 0, NO_ERROR */
    memcpy(b + 26, reason, dlen);
    conn_write(c, b, len);
}

static void refuse_http1(struct conn *c, const char *reason)
{
    char text[256];
    int n = snprintf(text, sizeof(text),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                     strlen(reason) + 1, reason);
    conn_write(c, dup_bytes(text, (size_t)n), (size_t)n);
}

static void refuse_native(struct conn *c, int code, const char *reason)
{
    Sentra__V1__GoAway g = SENTRA__V1__GO_AWAY__INIT;
    g.last_stream_id = 0;
    g.code = (Sentra__V1__Code)code;
    g.reason = (char *)reason;
    size_t len = sentra__v1__go_away__get_packed_size(&g);
    uint8_t *b = malloc(SENTRA_FRAME_HEADER_LEN + len);
    if (b == NULL)
        abort();
    sentra_frame_header(b, SENTRA_FRAME_GOAWAY, 0, 0, (uint32_t)len);
    sentra__v1__go_away__pack(&g, b + SENTRA_FRAME_HEADER_LEN);
    conn_write(c, b, SENTRA_FRAME_HEADER_LEN + len);
}

void sentra__conn_refuse(struct conn *c, const conn_proto_t *p)
{
    if (p == &sentra__h2_proto && conn_now_ms(c) - c->opened_ms < CONN_REFUSE_WAIT_MS)
        return;                 /* not yet: see the file comment */
    int stopping = c->srv->stopping;
    const char *reason = stopping ? "server shutting down" : "too many connections";
    log_debug("conn_refused", "peer=%s protocol=%s reason=\"%s\"", c->peer, p->name, reason);
    c->state = CONN_DRAINING;
    if (p == &sentra__h2_proto)
        refuse_h2(c, reason);
    else if (p == &sentra__http1_proto)
        refuse_http1(c, reason);
    else
        refuse_native(c, stopping ? SENTRA_UNAVAILABLE : SENTRA_RESOURCE_EXHAUSTED, reason);
    conn_linger_close(c);
}
