/*
 * methods.h: the dispatch table, from full method name to handler.
 *
 * A handler is void fn(call_t *): see call.h for what it may do. Each
 * handlers_*.c file defines its handlers; methods.c lists them all.
 */
#ifndef SENTRA_METHODS_H
#define SENTRA_METHODS_H

#include <protobuf-c/protobuf-c.h>

#include "call.h"

typedef void (*handler_fn)(call_t *c);

#define METHOD_PUBLIC 0x01   /* no token needed */
#define METHOD_DEBUG  0x02   /* served only with --enable-debug */
#define METHOD_WRITE  0x04   /* changes data: refused to the national role */
#define METHOD_ADMIN  0x08   /* token management: the admin role only */
#define METHOD_STREAM 0x10   /* server streaming: call_send() messages, then the status */
#define METHOD_NO_SIDE_EFFECTS 0x20 /* idempotency_level = NO_SIDE_EFFECTS in the .proto
                                     * (tests/unit/test_methods.c checks): Connect GET allowed */
#define METHOD_ETAG   0x40   /* reads only data whose every change bumps
                              * srv->generation: Connect GETs get ETags */
#define METHOD_RECORD_PATHS 0x80 /* violations name the fields of the record in
                                  * the request's field 1 without its name ("name",
                                  * "figures[0].year", not "sentra.name") */
#define METHOD_ANY_ROLE 0x100 /* any valid token, admin included: no role check
                               * (WhoAmI answers the token itself) */

typedef struct method {
    const char *name;                             /* "/sentra.v1.SentraService/GetSentra" */
    const ProtobufCMessageDescriptor *input;      /* request message type */
    handler_fn handler;
    unsigned flags;                               /* METHOD_* */
} method_t;

/* NULL when no such method. */
const method_t *method_find(const char *name);

/* The table, ending with a zeroed entry. */
extern const method_t methods[];

/* Handlers, by file. */
/* handlers_system.c */
void h_health_check(call_t *c);
void h_ping(call_t *c);
void h_get_descriptor_set(call_t *c);
void h_sleep(call_t *c);
/* handlers_health.c: grpc.health.v1.Health */
void h_grpc_health_check(call_t *c);
void h_grpc_health_watch(call_t *c);
/* handlers_sentra.c */
void h_create_sentra(call_t *c);
void h_get_sentra(call_t *c);
void h_update_sentra(call_t *c);
void h_delete_sentra(call_t *c);
void h_list_sentra(call_t *c);
/* handlers_region.c */
void h_get_region(call_t *c);
void h_list_regions(call_t *c);
/* handlers_stats.c */
void h_get_statistics(call_t *c);
void h_get_time_series(call_t *c);
/* handlers_sync.c */
void h_pull_changes(call_t *c);
/* Frees the read-aheads of pulls (server.c, once the pool is closed). */
void h_sync_shutdown(void);
void h_push_changes(call_t *c);
void h_stream_changes(call_t *c);
/* handlers_records.c */
void h_create_member(call_t *c);
void h_get_member(call_t *c);
void h_update_member(call_t *c);
void h_delete_member(call_t *c);
void h_list_members(call_t *c);
void h_get_institution(call_t *c);
void h_set_institution(call_t *c);
void h_delete_institution(call_t *c);
void h_list_institutions(call_t *c);
void h_create_obstacle(call_t *c);
void h_get_obstacle(call_t *c);
void h_update_obstacle(call_t *c);
void h_delete_obstacle(call_t *c);
void h_list_obstacles(call_t *c);
void h_create_assistance(call_t *c);
void h_get_assistance(call_t *c);
void h_update_assistance(call_t *c);
void h_delete_assistance(call_t *c);
void h_list_assistance(call_t *c);
/* handlers_token.c */
void h_create_token(call_t *c);
void h_list_tokens(call_t *c);
void h_revoke_token(call_t *c);
void h_who_am_i(call_t *c);

#endif
