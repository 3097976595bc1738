/*
 * handlers_health.c: gRPC's standard health service, grpc.health.v1.Health
 * (Check and Watch), which load balancers, orchestrators and gRPC tools
 * ask. sentra.v1.Health/Check (handlers_system.c) stays for our clients.
 *
 * The status of the server (service "") and of each service it serves is
 * one and the same: SERVING while at least one database connection is up
 * and the server is not stopping, NOT_SERVING otherwise. A name the server
 * does not serve is NOT_FOUND for Check and SERVICE_UNKNOWN for Watch.
 *
 * Watch is a server stream: the status at once, then each change. It wakes
 * on the server's stop (server.c wakes every parked call) and re-checks
 * the database every WATCH_RECHECK_MS; when the server stops it sends
 * NOT_SERVING and ends the stream (UNAVAILABLE), so that a draining
 * connection can close. A client that does not read pauses it
 * (call_send returns 1; it goes on from call_on_writable).
 */
#include <string.h>

#include "call.h"
#include "methods.h"
#include "server.h"
#include "grpc/health/v1/health.pb-c.h"

#define WATCH_RECHECK_MS 1000

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus status_t;

/* Whether the server serves service ("" is the server itself). */
static int service_known(const char *service)
{
    if (service[0] == '\0' || strcmp(service, "grpc.reflection.v1.ServerReflection") == 0 ||
        strcmp(service, "grpc.reflection.v1alpha.ServerReflection") == 0)
        return 1;
    size_t n = strlen(service);
    for (const method_t *m = methods; m->name != NULL; m++)
        if (m->name[0] == '/' && strncmp(m->name + 1, service, n) == 0 && m->name[n + 1] == '/')
            return 1;
    return 0;
}

static status_t server_status(const call_t *c)
{
    return db_pool_ready(c->srv->db) > 0 && !c->srv->stopping
               ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

void h_grpc_health_check(call_t *c)
{
    Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)c->msg;
    if (!service_known(req->service)) {
        call_fail(c, SENTRA_NOT_FOUND, "unknown service \"%.100s\"", req->service);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = server_status(c);
    call_reply(c, &resp.base);
}

/* A Watch's state (c->handler_state, call memory). */
typedef struct watch {
    int known;          /* the service is served */
    int sent;           /* a status went out */
    status_t last;      /* the last one sent */
} watch_t;

static void watch_send(call_t *c)
{
    watch_t *w = c->handler_state;
    status_t st = w->known ? server_status(c) : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    if (!w->sent || st != w->last) {
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        resp.status = st;
        int r = call_send(c, &resp.base);
        if (r < 0)
            return;                 /* the call is over */
        w->sent = 1;
        w->last = st;
        if (c->srv->stopping) {
            call_fail(c, SENTRA_UNAVAILABLE, "server shutting down");
            return;
        }
        if (r == 1) {
            call_on_writable(c, watch_send);
            return;
        }
    } else if (c->srv->stopping) {
        call_fail(c, SENTRA_UNAVAILABLE, "server shutting down");
        return;
    }
    call_wait_change(c, call_change_mark(c), WATCH_RECHECK_MS, watch_send);
}

void h_grpc_health_watch(call_t *c)
{
    Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)c->msg;
    watch_t *w = call_alloc(c, sizeof(*w));
    w->known = service_known(req->service);
    c->handler_state = w;
    watch_send(c);
}
