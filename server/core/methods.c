/*
 * methods.c: the dispatch table. One line per method: its full name, its
 * request type, its handler and its flags (methods.h). Adding a method is
 * adding a line here and a handler in a handlers_*.c file.
 */
#include <string.h>

#include "methods.h"
#include "sentra/v1/sentra.pb-c.h"
#include "sentra/v1/system.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#define M(svc, name, req, fn, flags) \
    { "/sentra.v1." svc "/" name, &sentra__v1__##req##__descriptor, fn, flags }

/* RO: NO_SIDE_EFFECTS. Regions, tokens and health change without the
 * notifications that bump srv->generation, so only reads of sentra and of
 * their records get ETags (every write of a record logs a change row in
 * sentra_change, whose trigger sync_notify NOTIFYs: migrations/0006_sync.sql,
 * 0013_records.sql); a pull may long-poll, which a 304 would cut short. */
#define RO METHOD_NO_SIDE_EFFECTS

const method_t methods[] = {
    M("Health", "Check", health_check_request, h_health_check, METHOD_PUBLIC | RO),
    M("SystemService", "Ping", ping_request, h_ping, METHOD_PUBLIC | RO),
    M("SystemService", "GetDescriptorSet", get_descriptor_set_request, h_get_descriptor_set, METHOD_PUBLIC | RO),
    M("SystemService", "Sleep", sleep_request, h_sleep, METHOD_PUBLIC | METHOD_DEBUG),
    M("SentraService", "CreateSentra", create_sentra_request, h_create_sentra, METHOD_WRITE | METHOD_RECORD_PATHS),
    M("SentraService", "GetSentra", get_sentra_request, h_get_sentra, RO | METHOD_ETAG),
    M("SentraService", "UpdateSentra", update_sentra_request, h_update_sentra, METHOD_WRITE | METHOD_RECORD_PATHS),
    M("SentraService", "DeleteSentra", delete_sentra_request, h_delete_sentra, METHOD_WRITE),
    M("SentraService", "ListSentra", list_sentra_request, h_list_sentra, RO | METHOD_ETAG),
    M("SentraService", "GetRegion", get_region_request, h_get_region, RO),
    M("SentraService", "ListRegions", list_regions_request, h_list_regions, RO),
    M("StatsService", "GetStatistics", get_statistics_request, h_get_statistics, RO | METHOD_ETAG),
    M("StatsService", "GetTimeSeries", get_time_series_request, h_get_time_series, RO | METHOD_ETAG),
    M("SyncService", "PullChanges", pull_changes_request, h_pull_changes, RO),
    M("SyncService", "PushChanges", push_changes_request, h_push_changes, METHOD_WRITE),
    M("SyncService", "StreamChanges", stream_changes_request, h_stream_changes, METHOD_STREAM),
    M("RecordService", "CreateMember", create_member_request, h_create_member, METHOD_WRITE | METHOD_RECORD_PATHS),
    M("RecordService", "GetMember", get_member_request, h_get_member, RO | METHOD_ETAG),
    M("RecordService", "UpdateMember", update_member_request, h_update_member, METHOD_WRITE | METHOD_RECORD_PATHS),
    M("RecordService", "DeleteMember", delete_member_request, h_delete_member, METHOD_WRITE),
    M("RecordService", "ListMembers", list_members_request, h_list_members, RO | METHOD_ETAG),
    M("RecordService", "GetInstitution", get_institution_request, h_get_institution, RO | METHOD_ETAG),
    M("RecordService", "SetInstitution", set_institution_request, h_set_institution, METHOD_WRITE | METHOD_RECORD_PATHS),
    M("RecordService", "DeleteInstitution", delete_institution_request, h_delete_institution, METHOD_WRITE),
    M("RecordService", "ListInstitutions", list_institutions_request, h_list_institutions, RO | METHOD_ETAG),
    M("RecordService", "CreateObstacle", create_obstacle_request, h_create_obstacle, METHOD_WRITE | METHOD_RECORD_PATHS),
    M("RecordService", "GetObstacle", get_obstacle_request, h_get_obstacle, RO | METHOD_ETAG),
    M("RecordService", "UpdateObstacle", update_obstacle_request, h_update_obstacle, METHOD_WRITE | METHOD_RECORD_PATHS),
    M("RecordService", "DeleteObstacle", delete_obstacle_request, h_delete_obstacle, METHOD_WRITE),
    M("RecordService", "ListObstacles", list_obstacles_request, h_list_obstacles, RO | METHOD_ETAG),
    M("RecordService", "CreateAssistance", create_assistance_request, h_create_assistance, METHOD_WRITE | METHOD_RECORD_PATHS),
    M("RecordService", "GetAssistance", get_assistance_request, h_get_assistance, RO | METHOD_ETAG),
    M("RecordService", "UpdateAssistance", update_assistance_request, h_update_assistance, METHOD_WRITE | METHOD_RECORD_PATHS),
    M("RecordService", "DeleteAssistance", delete_assistance_request, h_delete_assistance, METHOD_WRITE),
    M("RecordService", "ListAssistance", list_assistance_request, h_list_assistance, RO | METHOD_ETAG),
    M("TokenService", "CreateToken", create_token_request, h_create_token, METHOD_ADMIN),
    M("TokenService", "ListTokens", list_tokens_request, h_list_tokens, METHOD_ADMIN | RO),
    M("TokenService", "RevokeToken", revoke_token_request, h_revoke_token, METHOD_ADMIN),
    M("TokenService", "WhoAmI", who_am_irequest, h_who_am_i, METHOD_ANY_ROLE | RO),
    /* gRPC's standard health service (handlers_health.c). Reflection is
     * not here: it is bidirectional streaming, answered by the gRPC
     * transport itself (transport/grpc.c, services/reflection.c). */
    { "/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor,
      h_grpc_health_check, METHOD_PUBLIC },
    { "/grpc.health.v1.Health/Watch", &grpc__health__v1__health_check_request__descriptor,
      h_grpc_health_watch, METHOD_PUBLIC | METHOD_STREAM },
    { NULL, NULL, NULL, 0 }
};

const method_t *method_find(const char *name)
{
    /* A handful of methods: a linear scan beats hashing here. */
    for (const method_t *m = methods; m->name != NULL; m++)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}
