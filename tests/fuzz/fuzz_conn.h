/*
 * fuzz_conn.h: what the transport fuzzers (fuzz_h2.c, fuzz_http1.c) share:
 * a server object with default settings, errors logged only, and a
 * database pool that cannot connect (queries fail, as in an outage), made
 * once per process; a connection on one end of a socketpair, made as
 * conn_accept makes one; reading back what the server wrote; and closing
 * the connection with the loop run until it is gone. test_fuzz_regress
 * includes several fuzzers in one file: they share the one server.
 */
#ifndef SENTRA_FUZZ_CONN_H
#define SENTRA_FUZZ_CONN_H

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

#define FZ_CHECK(cond)                                                       \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz: %s:%d: check failed: %s\n", __FILE__,     \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

static uv_loop_t fz_loop;
static config_t fz_cfg;
static server_t fz_srv;

static server_t *fz_server(void)
{
    static int done;
    if (done)
        return &fz_srv;
    done = 1;
    char *argv[] = { (char *)"fuzz", NULL };
    int nrest = 0;
    FZ_CHECK(config_load(&fz_cfg, 1, argv, &nrest) == 0);
    log_set_level("error");
    uv_loop_init(&fz_loop);
    fz_srv.loop = &fz_loop;
    fz_srv.cfg = &fz_cfg;
    fz_srv.auth = auth_cache_new();
    /* Nowhere to connect: queries fail, as in a database outage. */
    fz_srv.db = db_pool_new(&fz_loop, "host=/nonexistent-sentra-fuzz connect_timeout=1", 1, 1);
    FZ_CHECK(fz_srv.auth != NULL && fz_srv.db != NULL);
    return &fz_srv;
}

/* A connection of fz_server() on fd, as conn_accept makes one. */
static struct conn *fz_conn_new(int fd)
{
    server_t *srv = fz_server();
    struct conn *c = calloc(1, sizeof(*c));
    FZ_CHECK(c != NULL);
    uv_pipe_init(srv->loop, &c->h.pipe, 0);
    FZ_CHECK(uv_pipe_open(&c->h.pipe, fd) == 0);
    c->h.handle.data = c;
    c->srv = srv;
    c->handles = 2;
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    snprintf(c->peer, sizeof(c->peer), "fuzz");
    c->opened_ms = c->last_read_ms = uv_now(srv->loop);
    return c;
}

/* Reads what the server wrote so far into out (grown as needed). */
static void fz_drain(int fd, uint8_t **out, size_t *len, size_t *cap)
{
    for (;;) {
        if (*len + 65536 > *cap) {
            *cap = (*cap ? *cap * 2 : 65536) + 65536;
            *out = realloc(*out, *cap);
            FZ_CHECK(*out != NULL);
        }
        ssize_t n = recv(fd, *out + *len, *cap - *len, MSG_DONTWAIT);
        if (n <= 0)
            return;
        *len += (size_t)n;
    }
}

/* One turn of the loop, then what the server wrote meanwhile. */
static void fz_turn(int fd, uint8_t **out, size_t *len, size_t *cap)
{
    uv_run(&fz_loop, UV_RUN_NOWAIT);
    fz_drain(fd, out, len, cap);
}

/* A few turns for what is still due, then c closed (when the loop has
 * not freed it) and the loop run until it is gone; the last bytes read,
 * the client's end closed. The loop may free c: it is looked at only
 * while the server counts a connection. */
static void fz_finish(struct conn *c, int fd, uint8_t **out, size_t *len, size_t *cap)
{
    for (int i = 0; i < 4 && fz_srv.nconns > 0; i++)
        fz_turn(fd, out, len, cap);
    if (fz_srv.nconns > 0)
        conn_close(c);
    while (fz_srv.nconns > 0)
        uv_run(&fz_loop, UV_RUN_NOWAIT);
    fz_drain(fd, out, len, cap);
    close(fd);
}

#endif
