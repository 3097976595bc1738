/*
 * frame.c: the frame codec (see frame.h). Pure functions over caller buffers.
 */
#include "frame.h"

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int sentra_frame_decode(const uint8_t *buf, size_t len, uint32_t max_payload,
                        sentra_frame_t *out, size_t *consumed)
{
    *consumed = 0;
    if (len < SENTRA_FRAME_HEADER_LEN)
        return SENTRA_FRAME_NEED_MORE;

    out->length = get_u32(buf);
    out->type = buf[4];
    out->flags = buf[5];
    out->stream_id = get_u32(buf + 8);
    out->payload = NULL;

    /* Check everything the header says before trusting its length. */
    if (buf[6] != 0 || buf[7] != 0)
        return SENTRA_FRAME_ERESERVED;
    switch (out->type) {
    case SENTRA_FRAME_REQUEST:
    case SENTRA_FRAME_RESPONSE:
    case SENTRA_FRAME_CANCEL:
        if (out->stream_id == 0)
            return SENTRA_FRAME_ESTREAM;
        break;
    case SENTRA_FRAME_PING:
    case SENTRA_FRAME_PONG:
        if (out->stream_id != 0)
            return SENTRA_FRAME_ESTREAM;
        if (out->length > SENTRA_PING_MAX_PAYLOAD)
            return SENTRA_FRAME_EPING;
        break;
    case SENTRA_FRAME_GOAWAY:
        if (out->stream_id != 0)
            return SENTRA_FRAME_ESTREAM;
        break;
    default:
        return SENTRA_FRAME_ETYPE;
    }
    if (out->length > max_payload)
        return SENTRA_FRAME_ETOOBIG;
    if (len - SENTRA_FRAME_HEADER_LEN < out->length)
        return SENTRA_FRAME_NEED_MORE;

    out->payload = buf + SENTRA_FRAME_HEADER_LEN;
    *consumed = SENTRA_FRAME_HEADER_LEN + (size_t)out->length;
    return SENTRA_FRAME_OK;
}

void sentra_frame_header(uint8_t out[SENTRA_FRAME_HEADER_LEN], uint8_t type,
                         uint8_t flags, uint32_t stream_id, uint32_t length)
{
    put_u32(out, length);
    out[4] = type;
    out[5] = flags;
    out[6] = 0;
    out[7] = 0;
    put_u32(out + 8, stream_id);
}

const char *sentra_frame_strerror(int result)
{
    switch (result) {
    case SENTRA_FRAME_OK: return "ok";
    case SENTRA_FRAME_NEED_MORE: return "need more bytes";
    case SENTRA_FRAME_ETOOBIG: return "frame larger than the maximum frame size";
    case SENTRA_FRAME_ETYPE: return "unknown frame type";
    case SENTRA_FRAME_ERESERVED: return "reserved header bits set";
    case SENTRA_FRAME_ESTREAM: return "stream id not allowed for this frame type";
    case SENTRA_FRAME_EPING: return "ping payload longer than 64 bytes";
    }
    return "unknown frame error";
}

const char *sentra_frame_type_name(uint8_t type)
{
    static const char *const names[] = {
        "?", "REQUEST", "RESPONSE", "CANCEL", "PING", "PONG", "GOAWAY",
    };
    return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}
