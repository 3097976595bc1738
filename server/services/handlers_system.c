/*
 * handlers_system.c: Health/Check, SystemService/Ping (touches no
 * database: for latency measurement), GetDescriptorSet (reflection) and the
 * debug-only Sleep (a slow query, for cancellation and deadline tests).
 */
#include <stdio.h>
#include <string.h>

#include "call.h"
#include "methods.h"
#include "server.h"
#include "version.h"

extern const unsigned char sentra__descriptor_set[];
extern const size_t sentra__descriptor_set_len;

void h_health_check(call_t *c)
{
    Sentra__V1__HealthCheckRequest *req = (Sentra__V1__HealthCheckRequest *)c->msg;
    Sentra__V1__HealthCheckResponse resp = SENTRA__V1__HEALTH_CHECK_RESPONSE__INIT;
    if (req->service[0] && method_find(req->service) == NULL) {
        /* gRPC health: an unknown service name is NOT_FOUND. Accept service
         * names ("sentra.v1.SentraService") as well as method names. */
        int known = 0;
        for (const method_t *m = methods; m->name != NULL; m++) {
            size_t n = strlen(req->service);
            if (m->name[0] == '/' && strncmp(m->name + 1, req->service, n) == 0 && m->name[n + 1] == '/')
                known = 1;
        }
        if (!known) {
            call_fail(c, SENTRA_NOT_FOUND, "unknown service \"%.100s\"", req->service);
            return;
        }
    }
    int ready = db_pool_ready(c->srv->db);
    /* Healthy: a connection is up and none of its queries waits without
     * an answer beyond --db-stall-timeout (db_pool_healthy). */
    resp.status = db_pool_healthy(c->srv->db) > 0 && !c->srv->stopping ? SENTRA__V1__SERVING_STATUS__SERVING_STATUS_SERVING
                                                 : SENTRA__V1__SERVING_STATUS__SERVING_STATUS_NOT_SERVING;
    resp.version = SENTRA_VERSION;
    resp.db_connections = ready;
    call_reply(c, &resp.base);
}

void h_ping(call_t *c)
{
    Sentra__V1__PingRequest *req = (Sentra__V1__PingRequest *)c->msg;
    Sentra__V1__PingResponse resp = SENTRA__V1__PING_RESPONSE__INIT;
    resp.data = req->data;
    call_reply(c, &resp.base);
}

void h_get_descriptor_set(call_t *c)
{
    Sentra__V1__GetDescriptorSetResponse resp = SENTRA__V1__GET_DESCRIPTOR_SET_RESPONSE__INIT;
    resp.file_descriptor_set.data = (uint8_t *)sentra__descriptor_set;
    resp.file_descriptor_set.len = sentra__descriptor_set_len;
    size_t n = 0;
    for (const method_t *m = methods; m->name != NULL; m++)
        if (!(m->flags & METHOD_DEBUG) || c->srv->cfg->enable_debug)
            n++;
    char **names = call_alloc(c, n * sizeof(char *));
    n = 0;
    for (const method_t *m = methods; m->name != NULL; m++)
        if (!(m->flags & METHOD_DEBUG) || c->srv->cfg->enable_debug)
            names[n++] = (char *)m->name;
    resp.methods = names;
    resp.n_methods = n;
    call_reply(c, &resp.base);
}

static db_stmt_t sleep_stmt = { "SELECT pg_sleep($1::double precision / 1000)", 0, 0 };

static void on_slept(call_t *c, PGresult *res)
{
    if (call_db_error(c, res))
        return;
    Sentra__V1__SleepResponse resp = SENTRA__V1__SLEEP_RESPONSE__INIT;
    call_reply(c, &resp.base);
}

void h_sleep(call_t *c)
{
    Sentra__V1__SleepRequest *req = (Sentra__V1__SleepRequest *)c->msg;
    if (req->ms > 600000) {
        call_fail(c, SENTRA_INVALID_ARGUMENT, "ms: at most 600000");
        return;
    }
    char ms[16];
    snprintf(ms, sizeof(ms), "%u", req->ms);
    const char *p[1] = { ms };
    call_query(c, &sleep_stmt, 1, p, on_slept);
}
