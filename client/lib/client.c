/*
 * client.c: the blocking API. Each sentra_client_t runs the asynchronous
 * engine (async.c) on a private libuv loop, turning the loop only while a
 * call waits; one code path serves both APIs, so reconnects, retries and
 * deadlines behave the same in both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "status.h"

struct sentra_client {
    uv_loop_t loop;         /* private; runs only inside calls */
    sentra_async_t *async;  /* the engine on `loop` */
    char errmsg[256];       /* last failure, for sentra_client_error_message */
};

int sentra_client_new(sentra_client_t **out, const sentra_client_opts_t *opts)
{
    return sentra_client_new_tls(out, opts, NULL);
}

int sentra_client_new_tls(sentra_client_t **out, const sentra_client_opts_t *opts,
                          const sentra_tls_opts_t *tls)
{
    *out = NULL;
    const char *addr = opts && opts->address ? opts->address : getenv("SENTRA_ADDR");
    if (addr && *addr) {
        int rc = sentra__check_address(addr);
        if (rc)
            return rc;
    }
    sentra_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return SENTRA_ENOMEM;
    if (uv_loop_init(&c->loop) != 0)
        goto fail_free;
    c->async = sentra_async_new_tls(&c->loop, opts, tls);
    if (!c->async)
        goto fail_loop;
    /* A TLS file that could not be loaded is told from the start. */
    snprintf(c->errmsg, sizeof c->errmsg, "%s", sentra_async_error_message(c->async));
    *out = c;
    return 0;

fail_loop:
    uv_loop_close(&c->loop);
fail_free:
    free(c);
    return SENTRA_ENOMEM;
}

void sentra_client_free(sentra_client_t *c)
{
    if (!c)
        return;
    sentra_async_close(c->async, NULL, NULL);
    /* Runs the close callbacks of every handle; then the loop is empty. */
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    free(c);
}

const char *sentra_client_address(const sentra_client_t *c) { return sentra_async_address(c->async); }
int sentra_client_is_connected(const sentra_client_t *c) { return sentra_async_is_connected(c->async); }
uint64_t sentra_client_connections(const sentra_client_t *c) { return sentra_async_connections(c->async); }
const char *sentra_client_error_message(const sentra_client_t *c) { return c->errmsg; }
int sentra_client_set_token(sentra_client_t *c, const char *token) { return sentra_async_set_token(c->async, token); }
void sentra_client_set_deadline(sentra_client_t *c, unsigned ms) { sentra_async_set_deadline(c->async, ms); }

/* ---------------------------------------------------------------- calls */

struct wait {
    int done;
    int rc;
    ProtobufCMessage *resp;
    sentra_status_t *status; /* the caller's, or a local one */
};

static void call_done(sentra_async_call_t *call, int rc, ProtobufCMessage *resp,
                      const sentra_status_t *status, void *arg)
{
    struct wait *w = arg;
    w->done = 1;
    w->rc = rc;
    w->resp = resp;
    sentra_status_clear(w->status);
    if (sentra_status_copy(w->status, status) != 0 && rc == 0) {
        protobuf_c_message_free_unpacked(resp, NULL);
        w->resp = NULL;
        w->rc = SENTRA_ENOMEM;
    }
}

int sentra_call(sentra_client_t *c, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp_out,
                const sentra_call_opts_t *opts, sentra_status_t *status_out)
{
    sentra_status_t local;
    sentra_status_t *st = status_out ? status_out : &local;
    if (!status_out)
        sentra_status_init(&local);
    if (resp_out)
        *resp_out = NULL;
    if (!c || !method || !req || !resp_desc) {
        if (c)
            strcpy(c->errmsg, "invalid argument");
        int rc = sentra__local_status(st, SENTRA_EINVAL, SENTRA_INVALID_ARGUMENT, "invalid argument");
        if (!status_out)
            sentra_status_clear(&local);
        return rc;
    }
    /* Let the loop see what happened while nobody turned it (the server
     * closing an idle connection, a GOAWAY, a PING) before a request goes
     * out on a connection that is no longer there. */
    uv_run(&c->loop, UV_RUN_NOWAIT);

    struct wait w = {0, 0, NULL, st};
    sentra_async_call_t *call = sentra_async_call(c->async, method, req, resp_desc, opts, call_done, &w);
    if (!call) {
        int rc = protobuf_c_message_get_packed_size(req) + 1024 > 4u * 1024 * 1024
                     ? SENTRA_ETOOBIG : SENTRA_ENOMEM;
        sentra__local_status(st, rc, sentra__err_code(rc), "%s", sentra_strerror(rc));
        snprintf(c->errmsg, sizeof c->errmsg, "%s", sentra_strerror(rc));
        if (!status_out)
            sentra_status_clear(&local);
        return rc;
    }
    while (!w.done)
        uv_run(&c->loop, UV_RUN_ONCE);

    if (w.rc != 0)
        snprintf(c->errmsg, sizeof c->errmsg, "%s: %s", sentra_status_name(st->code),
                 st->message ? st->message : sentra_strerror(w.rc));
    else
        c->errmsg[0] = 0;
    if (resp_out)
        *resp_out = w.resp;
    else if (w.resp)
        protobuf_c_message_free_unpacked(w.resp, NULL);
    if (!status_out)
        sentra_status_clear(&local);
    return w.rc;
}

/* ---------------------------------------------------------------- streams */

struct swait {
    int done;
    int rc;
    sentra_status_t *status;
    sentra_stream_cb on_message;
    void *arg;
    int stopped;             /* on_message asked to stop */
};

static int stream_message(sentra_async_call_t *call, ProtobufCMessage *msg, void *arg)
{
    struct swait *w = arg;
    int r = w->on_message(w->arg, msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (r != 0)
        w->stopped = 1;
    return r;
}

static void stream_done(sentra_async_call_t *call, int rc, ProtobufCMessage *resp,
                        const sentra_status_t *status, void *arg)
{
    struct swait *w = arg;
    w->done = 1;
    w->rc = rc;
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    sentra_status_clear(w->status);
    if (sentra_status_copy(w->status, status) != 0 && rc == 0)
        w->rc = SENTRA_ENOMEM;
}

int sentra_call_stream(sentra_client_t *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *msg_desc, const sentra_call_opts_t *opts,
                       sentra_stream_cb on_message, void *arg, sentra_status_t *status_out)
{
    sentra_status_t local;
    sentra_status_t *st = status_out ? status_out : &local;
    if (!status_out)
        sentra_status_init(&local);
    if (!c || !method || !req || !msg_desc || !on_message) {
        if (c)
            strcpy(c->errmsg, "invalid argument");
        int rc = sentra__local_status(st, SENTRA_EINVAL, SENTRA_INVALID_ARGUMENT, "invalid argument");
        if (!status_out)
            sentra_status_clear(&local);
        return rc;
    }
    uv_run(&c->loop, UV_RUN_NOWAIT);    /* as sentra_call: see what happened meanwhile */
    struct swait w = {0, 0, st, on_message, arg, 0};
    sentra_async_call_t *call = sentra_async_stream(c->async, method, req, msg_desc, opts,
                                                    stream_message, stream_done, &w);
    if (!call) {
        int rc = protobuf_c_message_get_packed_size(req) + 1024 > 4u * 1024 * 1024
                     ? SENTRA_ETOOBIG : SENTRA_ENOMEM;
        sentra__local_status(st, rc, sentra__err_code(rc), "%s", sentra_strerror(rc));
        snprintf(c->errmsg, sizeof c->errmsg, "%s", sentra_strerror(rc));
        if (!status_out)
            sentra_status_clear(&local);
        return rc;
    }
    while (!w.done)
        uv_run(&c->loop, UV_RUN_ONCE);
    if (w.rc != 0)
        snprintf(c->errmsg, sizeof c->errmsg, "%s: %s", sentra_status_name(st->code),
                 st->message ? st->message : sentra_strerror(w.rc));
    else
        c->errmsg[0] = 0;
    if (!status_out)
        sentra_status_clear(&local);
    return w.rc;
}

int sentra_client_connect(sentra_client_t *c)
{
    /* A Ping is the cheapest way to wait for a ready connection through
     * the same connect, timeout and retry path as every other call. */
    Sentra__V1__PingRequest req = SENTRA__V1__PING_REQUEST__INIT;
    int rc = sentra_call(c, SENTRA_M_PING, &req.base, &sentra__v1__ping_response__descriptor, NULL,
                         NULL, NULL);
    if (rc == SENTRA_ESTATUS)
        return 0; /* connected: the server answered, whatever it said */
    return rc == 0 ? 0 : SENTRA_ECONNECT;
}
