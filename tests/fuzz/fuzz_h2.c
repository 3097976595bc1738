/*
 * fuzz_h2.c: libFuzzer target for the HTTP/2 transport (transport/h2.c and
 * the gRPC app in transport/grpc.c, with call.c behind them).
 *
 * The input is what a client sends after the HTTP/2 preface: frames,
 * HPACK header blocks, gRPC messages, or anything else. A real connection
 * object runs the real protocol over one end of a socketpair: the preface
 * and the input go through conn.c's protocol interface (on_bytes) cut into
 * pieces whose sizes the first input byte picks, the event loop runs (the
 * database is unreachable, so calls that need it fail UNAVAILABLE), then
 * the connection closes. What the server wrote is read back from the other
 * end and must be a sequence of well-formed HTTP/2 frames starting with
 * SETTINGS. Crashes, sanitizer reports and leaks are what the fuzzer finds.
 */
#include "fuzz_conn.h"

#define CHECK(cond) FZ_CHECK(cond)

/* The server's bytes: HTTP/2 frames, SETTINGS first, none larger than the
 * default SETTINGS_MAX_FRAME_SIZE (nghttp2 never sends more), known flags
 * of END_STREAM only on DATA and HEADERS. A cut-off last frame is allowed
 * (the connection was closed under it). */
static void h2f_check_output(const uint8_t *p, size_t len)
{
    size_t off = 0;
    int first = 1;
    while (len - off >= 9) {
        size_t flen = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
        uint8_t type = p[off + 3];
        CHECK(flen <= 16384);
        if (first)
            CHECK(type == 4 && (p[off + 4] & 1) == 0);   /* our SETTINGS, not an ACK */
        first = 0;
        CHECK(type <= 9);                               /* no extension frames */
        if (off + 9 + flen > len)
            break;
        off += 9 + flen;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);

    struct conn *c = fz_conn_new(sv[0]);

    uint8_t *out = NULL;
    size_t olen = 0, ocap = 0;
    if (conn_choose_proto(c, &sentra__h2_proto) == 0) {
        /* The first byte: how the stream is cut into reads (1..256 bytes,
         * or all at once for 0). */
        size_t chunk = size > 0 && data[0] != 0 ? data[0] : (size_t)-1;
        const uint8_t *in = size > 0 ? data + 1 : data;
        size_t inlen = size > 0 ? size - 1 : 0;
        uint8_t *all = malloc(sizeof(preface) - 1 + inlen + 1);
        CHECK(all != NULL);
        memcpy(all, preface, sizeof(preface) - 1);
        if (inlen > 0)
            memcpy(all + sizeof(preface) - 1, in, inlen);
        size_t total = sizeof(preface) - 1 + inlen, off = 0;
        /* The loop may free the connection (nconns drops to 0): look at c
         * only while it is counted. */
        while (off < total && fz_srv.nconns > 0 && c->state != CONN_CLOSING &&
               !(c->flags & CONN_F_CLOSE_AFTER)) {
            size_t n = total - off < chunk ? total - off : chunk;
            size_t used = c->proto->on_bytes(c, all + off, n);
            CHECK(used <= n);
            off += n;   /* h2 consumes everything it is given */
            fz_turn(sv[1], &out, &olen, &ocap);
        }
        free(all);
    }
    fz_finish(c, sv[1], &out, &olen, &ocap);
    if (olen > 0)
        h2f_check_output(out, olen);
    free(out);
    return 0;
}
