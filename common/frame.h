/*
 * frame.h: the sentra frame codec, shared by server and client.
 *
 * Bytes in, frames out; no I/O and no allocation. Every frame starts with a
 * 12-byte header, all integers big-endian:
 *
 *   offset 0  u32  length     payload bytes that follow the header
 *   offset 4  u8   type       SENTRA_FRAME_*
 *   offset 5  u8   flags      SENTRA_FRAME_F_*; receivers ignore bits they do not know
 *   offset 6  u16  reserved   must be 0
 *   offset 8  u32  stream_id  request id chosen by the client; 0 for
 *                             connection-level frames (PING, PONG, GOAWAY)
 *
 * docs/PROTOCOL.md is the full specification.
 */
#ifndef SENTRA_FRAME_H
#define SENTRA_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define SENTRA_FRAME_HEADER_LEN 12
#define SENTRA_FRAME_DEFAULT_MAX (4u * 1024 * 1024)
#define SENTRA_PING_MAX_PAYLOAD 64

/* RESPONSE: a message of a server stream; more RESPONSE frames follow on
 * this stream id, the last (without the flag) carrying the status. */
#define SENTRA_FRAME_F_MORE 0x01

enum sentra_frame_type {
    SENTRA_FRAME_REQUEST = 1,  /* payload: sentra.v1.Request */
    SENTRA_FRAME_RESPONSE = 2, /* payload: sentra.v1.Response */
    SENTRA_FRAME_CANCEL = 3,   /* empty; cancels stream_id */
    SENTRA_FRAME_PING = 4,     /* 0..64 opaque bytes, stream 0 */
    SENTRA_FRAME_PONG = 5,     /* echoes the PING's bytes, stream 0 */
    SENTRA_FRAME_GOAWAY = 6    /* payload: sentra.v1.GoAway, stream 0 */
};

/* Decoder results. Negative values are protocol errors that end the
 * connection; SENTRA_FRAME_ETOOBIG is the one case where the header is still
 * valid (type and stream id can be read) so that the peer can be told
 * RESOURCE_EXHAUSTED for that stream before the GOAWAY. */
enum sentra_frame_result {
    SENTRA_FRAME_OK = 1,          /* a whole frame was decoded */
    SENTRA_FRAME_NEED_MORE = 0,   /* not enough bytes yet */
    SENTRA_FRAME_ETOOBIG = -1,    /* declared length above the maximum */
    SENTRA_FRAME_ETYPE = -2,      /* unknown frame type */
    SENTRA_FRAME_ERESERVED = -3,  /* reserved bits set */
    SENTRA_FRAME_ESTREAM = -4,    /* stream id 0 where one is needed, or the reverse */
    SENTRA_FRAME_EPING = -5       /* PING/PONG payload above 64 bytes */
};

typedef struct {
    uint32_t length;        /* payload length */
    uint8_t type;           /* enum sentra_frame_type */
    uint8_t flags;
    uint32_t stream_id;
    const uint8_t *payload; /* points into the caller's buffer; not owned */
} sentra_frame_t;

/* Decodes one frame from buf[0..len). On SENTRA_FRAME_OK fills *out and sets
 * *consumed to the bytes the frame took (header + payload); out->payload
 * points into buf. On SENTRA_FRAME_NEED_MORE nothing is consumed. On
 * SENTRA_FRAME_ETOOBIG the header fields of *out are filled (payload NULL).
 * max_payload is the largest payload accepted. */
int sentra_frame_decode(const uint8_t *buf, size_t len, uint32_t max_payload,
                        sentra_frame_t *out, size_t *consumed);

/* Writes a 12-byte header into out. */
void sentra_frame_header(uint8_t out[SENTRA_FRAME_HEADER_LEN], uint8_t type,
                         uint8_t flags, uint32_t stream_id, uint32_t length);

/* Name of a decoder result or frame type, for logs and GOAWAY reasons. */
const char *sentra_frame_strerror(int result);
const char *sentra_frame_type_name(uint8_t type);

#endif
