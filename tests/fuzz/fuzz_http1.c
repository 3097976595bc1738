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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "db.h"
#include "log.h"
#include "server.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_http1: %s:%d: check failed: %s\n",            \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)

static uv_loop_t h1f_loop;
static config_t h1f_cfg;
static server_t h1f_srv;

static void h1f_setup(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    char *argv[] = { (char *)"fuzz_http1", NULL };
    int nrest = 0;
    CHECK(config_load(&h1f_cfg, 1, argv, &nrest) == 0);
    log_set_level("error");
    uv_loop_init(&h1f_loop);
    h1f_srv.loop = &h1f_loop;
    h1f_srv.cfg = &h1f_cfg;
    h1f_srv.auth = auth_cache_new();
    /* Nowhere to connect: queries fail, as in a database outage. */
    h1f_srv.db = db_pool_new(&h1f_loop, "host=/nonexistent-sentra-fuzz connect_timeout=1", 1, 1);
    CHECK(h1f_srv.auth != NULL && h1f_srv.db != NULL);
}

/* Reads what the server wrote so far into out (grown as needed). */
static void h1f_drain(int fd, uint8_t **out, size_t *len, size_t *cap)
{
    for (;;) {
        if (*len + 65536 > *cap) {
            *cap = (*cap ? *cap * 2 : 65536) + 65536;
            *out = realloc(*out, *cap);
            CHECK(*out != NULL);
        }
        ssize_t n = recv(fd, *out + *len, *cap - *len, MSG_DONTWAIT);
        if (n <= 0)
            return;
        *len += (size_t)n;
    }
}

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
    h1f_setup();
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);

    /* A connection as conn_accept makes one, on a socketpair. */
    struct conn *c = calloc(1, sizeof(*c));
    CHECK(c != NULL);
    uv_pipe_init(&h1f_loop, &c->h.pipe, 0);
    CHECK(uv_pipe_open(&c->h.pipe, sv[0]) == 0);
    c->h.handle.data = c;
    c->srv = &h1f_srv;
    c->handles = 2;
    uv_timer_init(&h1f_loop, &c->timer);
    c->timer.data = c;
    c->next = h1f_srv.conns;
    if (h1f_srv.conns != NULL)
        h1f_srv.conns->prev = c;
    h1f_srv.conns = c;
    h1f_srv.nconns++;
    snprintf(c->peer, sizeof(c->peer), "fuzz");
    c->opened_ms = c->last_read_ms = uv_now(&h1f_loop);

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
        while (off < total && h1f_srv.nconns > 0 && c->state != CONN_CLOSING &&
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
            uv_run(&h1f_loop, UV_RUN_NOWAIT);
            h1f_drain(sv[1], &out, &olen, &ocap);
        }
        for (int i = 0; i < 4 && h1f_srv.nconns > 0; i++) {
            uv_run(&h1f_loop, UV_RUN_NOWAIT);
            h1f_drain(sv[1], &out, &olen, &ocap);
        }
    }
    if (h1f_srv.nconns > 0)
        conn_close(c);
    while (h1f_srv.nconns > 0)
        uv_run(&h1f_loop, UV_RUN_NOWAIT);
    h1f_drain(sv[1], &out, &olen, &ocap);
    close(sv[1]);
    if (olen > 0)
        h1f_check_output(out, olen);
    free(out);
    return 0;
}
