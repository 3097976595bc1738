/*
 * fuzz_http1.c: libFuzzer target for the HTTP/1.1 transport
 * (transport/http1.c on http-parser, the Connect rules in connect.c, the
 * JSON decoder in common/pbjson.c, with call.c behind them).
 *
 * The input is what a client sends: request lines, headers, bodies (JSON
 * or not), pipelined requests, or anything else. A real connection object
 * runs the real protocol over one end of a socketpair: the input goes
 * through conn.c's protocol interface (on_bytes) cut into pieces whose
 * sizes the first input byte picks, the event loop runs (the database is
 * unreachable, so calls that need it fail UNAVAILABLE; those that do not,
 * Ping and the refusals, answer), then the connection closes. What the
 * server wrote is read back from the other end and must be a sequence of
 * HTTP/1.1 answers whose lengths add up (a HEAD's without its body). Crashes, sanitizer reports and
 * leaks are what the fuzzer finds.
 */
#include "fuzz_conn.h"

#define CHECK(cond) FZ_CHECK(cond)

/* The server's bytes: HTTP/1.1 answers, each a status line, headers and
 * (when Content-Length says so) a body; a 100 Continue may come first. A
 * cut-off last answer is allowed (the connection was closed under it). */
static void h1f_check_output(const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        CHECK(len - off < 9 || memcmp(p + off, "HTTP/1.1 ", 9) == 0);
        const uint8_t *end = memmem(p + off, len - off, "\r\n\r\n", 4);
        if (end == NULL)
            break;
        size_t hlen = (size_t)(end - (p + off)) + 4;
        if (memmem(p + off, hlen, "\r\nTransfer-Encoding: chunked\r\n", 30) != NULL) {
            /* A stream: chunks (hex size, CRLF, data, CRLF) up to the
             * empty one. */
            size_t q = off + hlen;
            for (;;) {
                const uint8_t *eol = memmem(p + q, len - q, "\r\n", 2);
                if (eol == NULL)
                    return; /* cut off */
                char *e;
                unsigned long n = strtoul((const char *)p + q, &e, 16);
                CHECK((const uint8_t *)e == eol && e != (const char *)p + q);
                q = (size_t)(eol - p) + 2 + n;
                if (q + 2 > len)
                    return;
                CHECK(memcmp(p + q, "\r\n", 2) == 0);
                q += 2;
                if (n == 0)
                    break;
            }
            off = q;
            continue;
        }
        if (memmem(p + off, hlen, "\r\nContent-Length: ", 18) == NULL &&
            memmem(p + off, hlen, "Content-Type: application/connect+", 34) != NULL)
            return; /* an HTTP/1.0 stream: its body runs to the close */
        size_t blen = 0;
        const uint8_t *cl = memmem(p + off, hlen, "\r\nContent-Length: ", 18);
        if (cl != NULL)
            blen = strtoul((const char *)cl + 18, NULL, 10);
        CHECK(blen <= 64 * 1024 * 1024);
        /* A HEAD's answer has the length of the body it does not carry:
         * the next answer may start right after the headers. */
        size_t next = off + hlen + blen;
        if (blen > 0 && next < len && (len - next < 9 || memcmp(p + next, "HTTP/1.1 ", 9) != 0) &&
            len - (off + hlen) >= 9 && memcmp(p + off + hlen, "HTTP/1.1 ", 9) == 0)
            next = off + hlen;
        off = next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);

    struct conn *c = fz_conn_new(sv[0]);

    uint8_t *out = NULL;
    size_t olen = 0, ocap = 0;
    if (conn_choose_proto(c, &sentra__http1_proto) == 0) {
        /* The first byte: how the stream is cut into reads (1..255 bytes,
         * or all at once for 0). */
        size_t chunk = size > 0 && data[0] != 0 ? data[0] : (size_t)-1;
        const uint8_t *in = size > 0 ? data + 1 : data;
        size_t total = size > 0 ? size - 1 : 0, off = 0, end = 0;
        int idle = 0;
        /* The loop may free the connection (nconns drops to 0): look at c
         * only while it is counted. */
        while (off < total && fz_srv.nconns > 0 && c->state != CONN_CLOSING &&
               !(c->flags & CONN_F_CLOSE_AFTER) && idle < 100) {
            /* One read brings chunk more bytes; what the protocol left
             * (a body not all here yet; held: answers owed) is offered
             * again with them, as conn.c does. */
            end = total - end < chunk ? total : end + chunk;
            size_t n = end - off;
            size_t used = 0;
            if (!conn_reading_held(c)) {
                used = c->proto->on_bytes(c, in + off, n);
                CHECK(used <= n);
            }
            off += used;
            idle = used == 0 && end == total ? idle + 1 : 0;
            fz_turn(sv[1], &out, &olen, &ocap);
        }
    }
    fz_finish(c, sv[1], &out, &olen, &ocap);
    if (olen > 0)
        h1f_check_output(out, olen);
    free(out);
    return 0;
}
