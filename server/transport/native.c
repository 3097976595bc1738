/*
 * native.c: sentra's own framing (docs/PROTOCOL.md) on a connection.
 *
 * The codec (common/frame.c) cuts the bytes conn.c hands over into frames;
 * each REQUEST frame's envelope (sentra.v1.Request) becomes a call
 * (core/call.c), and what the call answers leaves as a RESPONSE frame
 * through the sink below. CANCEL, PING/PONG, GOAWAY, the keepalive and the
 * idle timeout are this protocol's; conn.c knows none of them.
 *
 * A server stream (METHOD_STREAM) is answered by several RESPONSE frames
 * with the request's stream id: each message in one whose flags carry
 * SENTRA_FRAME_F_MORE, then the status in one without it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "config.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "methods.h"
#include "server.h"

/* Request bytes in flight on one connection: past NATIVE_INFLIGHT_MAX the
 * connection is not read until they are back under NATIVE_INFLIGHT_LOW.
 * What a call holds is bounded by its bytes (the payload waiting for its
 * token check, then the decoded message: CALL_DECODE_BUDGET), so this
 * bounds the memory a connection's requests take. */
#define NATIVE_INFLIGHT_MAX ((size_t)8 << 20)
#define NATIVE_INFLIGHT_LOW ((size_t)4 << 20)
/* The envelope holds a copy of the payload, the method and metadata. */
#define ENVELOPE_BUDGET(len) ((size_t)(len) + 128 * 1024)

/* The protocol's state for one connection. */
typedef struct native {
    call_t *calls;              /* calls in flight (tnext/tprev) */
    int ncalls;                 /* how many */
    size_t inflight_bytes;      /* their request frames' bytes (call->tbytes) */
    int held;                   /* reading held for inflight_bytes */
    int shed;                   /* an answer was refused: end the other reads */
    uint32_t max_stream_id;     /* highest request stream id seen */
    uint64_t last_request_ms;   /* last request started (idle timeout) */
    uint64_t ping_sent_ms;      /* when our keepalive PING left */
    int ping_outstanding;       /* a PING of ours awaits its PONG */
} native_t;

static native_t *state(struct conn *c)
{
    return c->proto_state;
}

/* ---------------------------------------------------------------- sending */

static void send_frame(struct conn *c, uint8_t type, uint8_t flags, uint32_t stream_id,
                       const void *payload, size_t len)
{
    uint8_t *buf = malloc(SENTRA_FRAME_HEADER_LEN + len);
    if (buf == NULL)
        abort();
    sentra_frame_header(buf, type, flags, stream_id, (uint32_t)len);
    if (len > 0)
        memcpy(buf + SENTRA_FRAME_HEADER_LEN, payload, len);
    conn_write(c, buf, SENTRA_FRAME_HEADER_LEN + len);
}

/* Packs r into a RESPONSE frame for stream_id. */
static void send_response(struct conn *c, uint32_t stream_id, uint8_t flags,
                          const Sentra__V1__Response *r)
{
    size_t len = sentra__v1__response__get_packed_size(r);
    uint8_t *buf = malloc(SENTRA_FRAME_HEADER_LEN + len);
    if (buf == NULL)
        abort();
    sentra__v1__response__pack(r, buf + SENTRA_FRAME_HEADER_LEN);
    sentra_frame_header(buf, SENTRA_FRAME_RESPONSE, flags, stream_id, (uint32_t)len);
    conn_write(c, buf, SENTRA_FRAME_HEADER_LEN + len);
}

/* A RESPONSE that needs no call: refusals before a call exists. */
static void send_status(struct conn *c, uint32_t stream_id, int code, const char *msg)
{
    Sentra__V1__Response r = SENTRA__V1__RESPONSE__INIT;
    r.code = (Sentra__V1__Code)code;
    r.message = (char *)msg;
    send_response(c, stream_id, 0, &r);
}

static void send_goaway(struct conn *c, int code, const char *reason)
{
    Sentra__V1__GoAway g = SENTRA__V1__GO_AWAY__INIT;
    g.last_stream_id = state(c)->max_stream_id;
    g.code = (Sentra__V1__Code)code;
    g.reason = (char *)reason;
    size_t len = sentra__v1__go_away__get_packed_size(&g);
    uint8_t *buf = malloc(SENTRA_FRAME_HEADER_LEN + len);
    if (buf == NULL)
        abort();
    sentra_frame_header(buf, SENTRA_FRAME_GOAWAY, 0, 0, (uint32_t)len);
    sentra__v1__go_away__pack(&g, buf + SENTRA_FRAME_HEADER_LEN);
    conn_write(c, buf, SENTRA_FRAME_HEADER_LEN + len);
}

/* ---------------------------------------------------------------- the sink */

/* Response.payload's tag: field 5, length-delimited. */
#define RESPONSE_PAYLOAD_TAG ((5 << 3) | 2)

static size_t varint_size(size_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* r (its payload field empty) and then payload (plen bytes packed) as
 * field 5, packed once straight into the frame: packing the payload on
 * its own and copying it into the envelope cost a second copy of every
 * answer and of every stream message (several MB for a page of
 * StreamChanges), and the page faults of a second buffer that size. */
static void send_response_payload(struct conn *c, uint32_t stream_id, uint8_t flags,
                                  const Sentra__V1__Response *r, const ProtobufCMessage *payload,
                                  size_t plen)
{
    size_t head = sentra__v1__response__get_packed_size(r);
    size_t len = head + 1 + varint_size(plen) + plen;
    uint8_t *buf = malloc(SENTRA_FRAME_HEADER_LEN + len);
    if (buf == NULL)
        abort();
    uint8_t *p = buf + SENTRA_FRAME_HEADER_LEN;
    p += sentra__v1__response__pack(r, p);
    *p++ = RESPONSE_PAYLOAD_TAG;
    for (size_t v = plen; ; v >>= 7) {
        *p++ = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
        if (v < 0x80)
            break;
    }
    protobuf_c_message_pack(payload, p);
    sentra_frame_header(buf, SENTRA_FRAME_RESPONSE, flags, stream_id, (uint32_t)len);
    conn_write(c, buf, SENTRA_FRAME_HEADER_LEN + len);
}

/* A Response carrying payload (packed here) or the answer's status; one
 * too large for a frame becomes RESOURCE_EXHAUSTED. */
static void sink_send(call_t *call, uint8_t flags, const call_answer_t *a,
                      const ProtobufCMessage *payload)
{
    struct conn *c = call->sink_arg;
    Sentra__V1__Response r = SENTRA__V1__RESPONSE__INIT;
    size_t plen = 0;

    if (payload != NULL)
        plen = protobuf_c_message_get_packed_size(payload);
    if (a != NULL) {
        r.code = (Sentra__V1__Code)a->code;
        r.message = (char *)a->message;
        if (a->violations != NULL) {
            r.n_violations = a->violations->n;
            r.violations = a->violations->items;
        }
        r.current_version = a->current_version;
    }
    size_t size = sentra__v1__response__get_packed_size(&r);
    if (payload != NULL && plen > 0)
        size += 1 + varint_size(plen) + plen;
    if (size > c->srv->cfg->max_frame) {
        /* Too large to send: say so rather than break the frame limit. */
        Sentra__V1__Response small = SENTRA__V1__RESPONSE__INIT;
        small.code = SENTRA__V1__CODE__RESOURCE_EXHAUSTED;
        small.message = "response larger than the maximum frame size; ask for less (smaller page)";
        send_response(c, call->stream_id, 0, &small);
    } else if (a != NULL && payload != NULL && !conn_answer_fits(c, SENTRA_FRAME_HEADER_LEN + size) &&
               !(call->method != NULL && (call->method->flags & METHOD_WRITE))) {
        /* The client leaves its answers unread: this one would take the
         * connection (or the server) past its bound on queued answers.
         * The outcome of a write is always sent. */
        char msg[200];
        Sentra__V1__Response small = SENTRA__V1__RESPONSE__INIT;
        snprintf(msg, sizeof(msg), "answer of %zu bytes not sent: %zu bytes of earlier answers "
                 "are still unread on this connection; read them, then retry", size, c->wqueued);
        small.code = SENTRA__V1__CODE__RESOURCE_EXHAUSTED;
        small.message = msg;
        send_response(c, call->stream_id, 0, &small);
        state(c)->shed = 1;     /* the reads still running would fare no better */
    } else if (payload != NULL && plen > 0) {
        send_response_payload(c, call->stream_id, flags, &r, payload, plen);
    } else {
        send_response(c, call->stream_id, flags, &r);
    }
}

static void sink_answer(call_t *call, const call_answer_t *a)
{
    sink_send(call, 0, a, a->payload);
}

static int sink_message(call_t *call, const ProtobufCMessage *m)
{
    struct conn *c = call->sink_arg;
    sink_send(call, SENTRA_FRAME_F_MORE, NULL, m);
    return (c->flags & CONN_F_PAUSED) != 0;
}

static void unlink_call(native_t *n, call_t *call)
{
    if (call->tprev != NULL)
        call->tprev->tnext = call->tnext;
    else
        n->calls = call->tnext;
    if (call->tnext != NULL)
        call->tnext->tprev = call->tprev;
    call->tnext = call->tprev = NULL;
    n->ncalls--;
}

/* A client that leaves its answers unread: its other reads in flight are
 * answered RESOURCE_EXHAUSTED now, which also drops their queries, rather
 * than take database time to build answers that would be refused too.
 * Writes go on: their outcome is always sent. */
static void shed_reads(struct conn *c)
{
    native_t *n = state(c);
    n->shed = 0;
    for (call_t *call = n->calls, *next; call != NULL; call = next) {
        next = call->tnext;
        if (call->method != NULL && (call->method->flags & METHOD_WRITE))
            continue;
        call_fail(call, SENTRA_RESOURCE_EXHAUSTED,
                  "not run: earlier answers are still unread on this connection; read them, then retry");
    }
}

static void sink_done(call_t *call)
{
    struct conn *c = call->sink_arg;
    native_t *n = state(c);
    unlink_call(n, call);
    n->inflight_bytes -= call->tbytes;
    call_unref(call);
    if (n->shed)
        shed_reads(c);
    if (c->state == CONN_DRAINING && n->ncalls == 0)
        conn_close_after_write(c);
    if (n->held && n->inflight_bytes <= NATIVE_INFLIGHT_LOW) {
        n->held = 0;
        conn_hold(c, 0);
    }
}

static const call_sink_t native_sink = {
    .name = "native",
    .answer = sink_answer,
    .message = sink_message,
    .done = sink_done,
};

/* ---------------------------------------------------------------- frames */

static void detach_all(struct conn *c)
{
    native_t *n = state(c);
    while (n->calls != NULL) {
        call_t *call = n->calls;
        unlink_call(n, call);
        n->inflight_bytes -= call->tbytes;
        call_detach(call);
    }
}

/* A violation of the protocol: GOAWAY naming it, then close. Calls in
 * flight are cancelled, nothing more from this peer can be trusted; each
 * is answered CANCELLED before the GOAWAY, so that every stream up to its
 * last_stream_id has its answer (docs/PROTOCOL.md, section 6). */
static void protocol_error(struct conn *c, int code, const char *reason)
{
    native_t *n = state(c);
    log_info("conn_protocol_error", "peer=%s reason=\"%s\"", c->peer, reason);
    if (c->state == CONN_CLOSING)
        return;
    /* Answered while the state says OPEN, so that the last answer does not
     * close the connection before the GOAWAY is queued (sink_done). */
    c->state = CONN_OPEN;
    for (call_t *call = n->calls, *next; call != NULL; call = next) {
        next = call->tnext;
        call_fail(call, SENTRA_CANCELLED, "cancelled: the connection closes after a protocol error");
    }
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_DRAINING;
    send_goaway(c, code, reason);
    conn_close_after_write(c);
}

static void on_request(struct conn *c, const sentra_frame_t *f)
{
    native_t *n = state(c);
    if (f->stream_id <= n->max_stream_id) {
        protocol_error(c, SENTRA_INVALID_ARGUMENT, "stream ids must increase");
        return;
    }
    n->max_stream_id = f->stream_id;
    if (c->state != CONN_OPEN) {
        send_status(c, f->stream_id, SENTRA_UNAVAILABLE, "server is going away; retry on a new connection");
        return;
    }
    if (n->ncalls >= c->srv->cfg->max_inflight) {
        send_status(c, f->stream_id, SENTRA_RESOURCE_EXHAUSTED, "too many requests in flight on this connection");
        return;
    }
    int too_big = 0;
    size_t used = 0;
    Sentra__V1__Request *req = (Sentra__V1__Request *)call_unpack_bounded(
        &sentra__v1__request__descriptor, f->length, f->payload, ENVELOPE_BUDGET(f->length),
        &too_big, &used);
    if (req == NULL) {
        if (too_big)
            send_status(c, f->stream_id, SENTRA_RESOURCE_EXHAUSTED,
                        "request envelope decodes into too much memory (too many metadata entries)");
        else
            send_status(c, f->stream_id, SENTRA_INVALID_ARGUMENT,
                        "request envelope is not a valid sentra.v1.Request");
        return;
    }
    n->last_request_ms = conn_now_ms(c);

    /* The envelope's metadata, and its idempotency key as one more entry. */
    call_md_t md_small[8], *md = md_small;
    size_t nmd = req->n_metadata + (req->idempotency_key && req->idempotency_key[0] ? 1 : 0);
    if (nmd > sizeof(md_small) / sizeof(md_small[0]) && (md = malloc(nmd * sizeof(*md))) == NULL)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < req->n_metadata; i++) {
        md[k].key = req->metadata[i]->key ? req->metadata[i]->key : "";
        md[k].value = req->metadata[i]->value ? req->metadata[i]->value : "";
        k++;
    }
    if (req->idempotency_key && req->idempotency_key[0]) {
        md[k].key = "idempotency-key";
        md[k].value = req->idempotency_key;
        k++;
    }
    call_request_t r = {
        .method = req->method ? req->method : "",
        .payload = req->payload.data,
        .len = req->payload.len,
        .codec = CALL_CODEC_PROTO,
        .timeout_ms = req->timeout_ms,
        .md = md,
        .n_md = k,
        .auth_memo = &c->auth_memo,
    };

    call_t *call = call_new(c->srv, &native_sink, c, f->stream_id);
    call->tnext = n->calls;
    if (n->calls != NULL)
        n->calls->tprev = call;
    n->calls = call;
    n->ncalls++;
    call->tbytes = SENTRA_FRAME_HEADER_LEN + (size_t)f->length;
    n->inflight_bytes += call->tbytes;
    call_start(call, &r);
    if (md != md_small)
        free(md);
    sentra__v1__request__free_unpacked(req, NULL);
    if (!n->held && n->inflight_bytes > NATIVE_INFLIGHT_MAX && c->state != CONN_CLOSING) {
        /* Enough request bytes in progress: read more once some are done. */
        n->held = 1;
        conn_hold(c, 1);
    }
}

static void on_cancel(struct conn *c, uint32_t stream_id)
{
    for (call_t *call = state(c)->calls; call != NULL; call = call->tnext) {
        if (call->stream_id == stream_id) {
            call_cancel(call, SENTRA_CANCELLED);
            return;
        }
    }
    /* Already answered, or never seen: nothing to do. */
}

static void on_frame(struct conn *c, const sentra_frame_t *f)
{
    switch (f->type) {
    case SENTRA_FRAME_REQUEST:
        on_request(c, f);
        break;
    case SENTRA_FRAME_CANCEL:
        on_cancel(c, f->stream_id);
        break;
    case SENTRA_FRAME_PING:
        state(c)->last_request_ms = conn_now_ms(c);
        send_frame(c, SENTRA_FRAME_PONG, 0, 0, f->payload, f->length);
        break;
    case SENTRA_FRAME_PONG:
        state(c)->ping_outstanding = 0;
        break;
    case SENTRA_FRAME_GOAWAY:
        /* The client is leaving; it will close. Answer what is in flight. */
        break;
    case SENTRA_FRAME_RESPONSE:
        protocol_error(c, SENTRA_INVALID_ARGUMENT, "clients do not send RESPONSE frames");
        break;
    }
}

/* Decodes and handles the frames in data[0..len); returns the bytes used. */
static size_t on_bytes(struct conn *c, const uint8_t *data, size_t len)
{
    native_t *n = state(c);
    size_t off = 0;
    while (off < len && !conn_reading_held(c)) {
        sentra_frame_t f;
        size_t used;
        int r = sentra_frame_decode(data + off, len - off, c->srv->cfg->max_frame, &f, &used);
        if (r == SENTRA_FRAME_NEED_MORE)
            break;
        if (r == SENTRA_FRAME_OK) {
            on_frame(c, &f);
            off += used;
            continue;
        }
        char reason[160];
        if (r == SENTRA_FRAME_ETOOBIG) {
            snprintf(reason, sizeof(reason), "frame of %u bytes exceeds the maximum frame size of %u bytes",
                     f.length, c->srv->cfg->max_frame);
            if (f.type == SENTRA_FRAME_REQUEST && f.stream_id > n->max_stream_id) {
                n->max_stream_id = f.stream_id;
                send_status(c, f.stream_id, SENTRA_RESOURCE_EXHAUSTED, reason);
            }
            protocol_error(c, SENTRA_RESOURCE_EXHAUSTED, reason);
        } else {
            snprintf(reason, sizeof(reason), "protocol error: %s", sentra_frame_strerror(r));
            protocol_error(c, SENTRA_INVALID_ARGUMENT, reason);
        }
        return len;
    }
    return off;
}

/* ---------------------------------------------------------------- the protocol */

static int native_open(struct conn *c)
{
    native_t *n = calloc(1, sizeof(*n));
    if (n == NULL)
        abort();                /* as everywhere: out of memory ends the server */
    n->last_request_ms = conn_now_ms(c);
    c->proto_state = n;
    return 0;
}

static void native_writable(struct conn *c)
{
    /* Streams that waited for room go on, each at most once. */
    for (call_t *call = state(c)->calls; call != NULL;) {
        call_t *next = call->tnext;
        call_writable(call);
        if (c->flags & CONN_F_PAUSED)
            break;
        call = next;
    }
}

static void native_tick(struct conn *c, uint64_t now)
{
    native_t *n = state(c);
    const config_t *cfg = c->srv->cfg;

    if (n->ping_outstanding && now - n->ping_sent_ms >= (uint64_t)cfg->keepalive_ms) {
        log_info("conn_keepalive_timeout", "peer=%s", c->peer);
        conn_close(c);
        return;
    }
    if (n->ncalls == 0 && c->state == CONN_OPEN &&
        now - n->last_request_ms >= (uint64_t)cfg->idle_timeout_ms) {
        conn_drain(c, SENTRA_UNAVAILABLE, "idle timeout");
        return;
    }
    if (!n->ping_outstanding && now - c->last_read_ms >= (uint64_t)cfg->keepalive_ms) {
        uint8_t payload[8];
        for (int i = 0; i < 8; i++)
            payload[i] = (uint8_t)(now >> (56 - 8 * i));
        n->ping_outstanding = 1;
        n->ping_sent_ms = now;
        send_frame(c, SENTRA_FRAME_PING, 0, 0, payload, sizeof(payload));
    }
}

static void native_drain(struct conn *c, int code, const char *reason)
{
    c->state = CONN_DRAINING;
    send_goaway(c, code, reason);
    if (state(c)->ncalls == 0)
        conn_close_after_write(c);
}

static void native_free(struct conn *c)
{
    free(c->proto_state);
    c->proto_state = NULL;
}

const conn_proto_t sentra__native_proto = {
    .name = "native",
    .open = native_open,
    .on_bytes = on_bytes,
    .on_writable = native_writable,
    .tick = native_tick,
    .drain = native_drain,
    .closing = detach_all,
    .free = native_free,
};
