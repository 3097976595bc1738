/*
 * fuzz_frame.c: libFuzzer target for the frame decoder (common/frame.c).
 *
 * The input is a byte stream as a connection would receive it. It is
 * decoded twice, the way conn.c does: once whole (frame after frame until
 * the decoder wants more bytes or reports an error) and once arriving byte
 * by byte (a growing buffer, decoded after every byte). Both must yield the
 * same frames and the same final result, and every answer must keep the
 * decoder's promises (frame.h): consumed bytes inside the buffer, payload
 * inside the frame, nothing consumed unless a frame was decoded, and a
 * decoded header that re-encodes to the bytes it came from. A broken
 * promise aborts, which libFuzzer reports as a crash.
 *
 * The first input byte picks the maximum payload (small maxima exercise
 * the too-big path); the rest is the stream.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_frame: %s:%d: check failed: %s\n",         \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)

#define MAX_FRAMES 4096

struct seen {
    uint32_t length, stream_id;
    uint8_t type, flags;
    size_t offset; /* where the frame started in the stream */
};

/* Checks one decoder answer against frame.h's contract. */
static void check_answer(int r, const uint8_t *buf, size_t len, uint32_t max,
                         const sentra_frame_t *f, size_t used)
{
    CHECK(r >= SENTRA_FRAME_EPING && r <= SENTRA_FRAME_OK);
    CHECK(sentra_frame_strerror(r) != NULL);
    if (r != SENTRA_FRAME_OK) {
        CHECK(used == 0);
    }
    if (r == SENTRA_FRAME_OK) {
        CHECK(used == SENTRA_FRAME_HEADER_LEN + (size_t)f->length);
        CHECK(used <= len);
        CHECK(f->length <= max);
        CHECK(f->payload == buf + SENTRA_FRAME_HEADER_LEN);
        CHECK(f->type >= SENTRA_FRAME_REQUEST && f->type <= SENTRA_FRAME_GOAWAY);
        CHECK(strcmp(sentra_frame_type_name(f->type), "?") != 0);
        if (f->type == SENTRA_FRAME_PING || f->type == SENTRA_FRAME_PONG)
            CHECK(f->length <= SENTRA_PING_MAX_PAYLOAD);
        if (f->type <= SENTRA_FRAME_CANCEL)
            CHECK(f->stream_id != 0);
        else
            CHECK(f->stream_id == 0);
        uint8_t hdr[SENTRA_FRAME_HEADER_LEN];
        sentra_frame_header(hdr, f->type, f->flags, f->stream_id, f->length);
        CHECK(memcmp(hdr, buf, SENTRA_FRAME_HEADER_LEN) == 0);
    }
    if (r == SENTRA_FRAME_NEED_MORE && len >= SENTRA_FRAME_HEADER_LEN) {
        /* The header was fine; only the payload is missing. */
        CHECK(f->length <= max);
        CHECK(len < SENTRA_FRAME_HEADER_LEN + (size_t)f->length);
    }
    if (r == SENTRA_FRAME_ETOOBIG) {
        CHECK(len >= SENTRA_FRAME_HEADER_LEN);
        CHECK(f->length > max);
        CHECK(f->payload == NULL);
    }
}

/* Decodes data whole; returns the number of frames, stores the final
 * result (NEED_MORE or an error) and the frames. */
static size_t decode_whole(const uint8_t *data, size_t size, uint32_t max,
                           struct seen *out, int *final)
{
    size_t off = 0, n = 0;
    for (;;) {
        sentra_frame_t f;
        size_t used = 12345;
        int r = sentra_frame_decode(data + off, size - off, max, &f, &used);
        check_answer(r, data + off, size - off, max, &f, used);
        if (r != SENTRA_FRAME_OK) {
            *final = r;
            return n;
        }
        if (n < MAX_FRAMES)
            out[n] = (struct seen){ f.length, f.stream_id, f.type, f.flags, off };
        n++;
        off += used;
    }
}

/* Decodes data arriving one byte at a time, as the connection buffer would
 * see it; compares each frame with the whole decode. */
static void decode_bytewise(const uint8_t *data, size_t size, uint32_t max,
                            const struct seen *whole, size_t nwhole, int final)
{
    size_t start = 0, n = 0;
    int last = SENTRA_FRAME_NEED_MORE;
    /* Decoding is O(1) per call, so the O(size) loop stays cheap. */
    for (size_t end = 1; end <= size; end++) {
        sentra_frame_t f;
        size_t used = 999;
        int r = sentra_frame_decode(data + start, end - start, max, &f, &used);
        check_answer(r, data + start, end - start, max, &f, used);
        last = r;
        if (r == SENTRA_FRAME_NEED_MORE)
            continue;
        if (r < 0)
            break;
        CHECK(n < nwhole);
        if (n < MAX_FRAMES) {
            CHECK(whole[n].offset == start);
            CHECK(whole[n].length == f.length);
            CHECK(whole[n].type == f.type);
            CHECK(whole[n].flags == f.flags);
            CHECK(whole[n].stream_id == f.stream_id);
        }
        n++;
        start += used;
        /* A zero-length frame ends exactly here; the next one starts at
         * the next byte, which the next iteration sees. */
    }
    CHECK(n == nwhole);
    if (size == 0 || start == size)
        CHECK(final == SENTRA_FRAME_NEED_MORE);
    else
        CHECK(last == final);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct seen whole[MAX_FRAMES];
    static const uint32_t maxima[] = { 0, 1, 12, 64, 100, 1024, 65535,
                                       SENTRA_FRAME_DEFAULT_MAX, 0x7fffffffu, 0xffffffffu };
    if (size < 1)
        return 0;
    uint32_t max = maxima[data[0] % (sizeof(maxima) / sizeof(maxima[0]))];
    data++;
    size--;
    int final = SENTRA_FRAME_NEED_MORE;
    size_t n = decode_whole(data, size, max, whole, &final);
    decode_bytewise(data, size, max, whole, n, final);
    return 0;
}
