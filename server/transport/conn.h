/*
 * conn.h: one client connection: reads frames, starts calls, writes
 * replies. The only transport today; call.c talks to it through
 * conn_send_response() and conn_call_done().
 */
#ifndef SENTRA_CONN_H
#define SENTRA_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct server;
struct call;
struct conn;

/* Accepts a pending connection on listener. */
void conn_accept(struct server *srv, uv_stream_t *listener);

/* Queues a RESPONSE frame: buf holds SENTRA_FRAME_HEADER_LEN free bytes
 * followed by len payload bytes; the connection takes ownership of buf. */
void conn_send_response(struct conn *c, uint32_t stream_id, uint8_t *buf, size_t len);

/* The call is finished with this connection (answered or cancelled). */
void conn_call_done(struct conn *c, struct call *call);

/* Sends GOAWAY and closes once the calls in flight are answered. */
void conn_drain(struct conn *c, int code, const char *reason);

/* Closes now: calls in flight are detached and cancelled. */
void conn_close(struct conn *c);

/* For server.c: walking and unlinking its list of connections. */
struct conn *sentra__conn_next(struct conn *c);
void sentra__conn_unlink(struct server *srv, struct conn *c);

#endif
