/*
 * methods.c: the typed blocking wrappers, one per rpc of sentra.v1, each a
 * thin shell around sentra_call with the method's name and response type.
 */
#include "internal.h"

#define SENTRA_DEFINE_CALL_(fn, Req, Resp, method, desc)                                   \
    int fn(sentra_client_t *c, const Req *req, Resp **out, const sentra_call_opts_t *opts, \
           sentra_status_t *status_out)                                                    \
    {                                                                                      \
        return sentra_call(c, method, req ? &req->base : NULL, &desc,                      \
                           (ProtobufCMessage **)out, opts, status_out);                    \
    }

SENTRA_DEFINE_CALL_(sentra_health_check, Sentra__V1__HealthCheckRequest, Sentra__V1__HealthCheckResponse,
                    SENTRA_M_HEALTH_CHECK, sentra__v1__health_check_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_ping, Sentra__V1__PingRequest, Sentra__V1__PingResponse, SENTRA_M_PING,
                    sentra__v1__ping_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_get_descriptor_set, Sentra__V1__GetDescriptorSetRequest,
                    Sentra__V1__GetDescriptorSetResponse, SENTRA_M_GET_DESCRIPTOR_SET,
                    sentra__v1__get_descriptor_set_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_sleep, Sentra__V1__SleepRequest, Sentra__V1__SleepResponse, SENTRA_M_SLEEP,
                    sentra__v1__sleep_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_create_sentra, Sentra__V1__CreateSentraRequest, Sentra__V1__Sentra,
                    SENTRA_M_CREATE_SENTRA, sentra__v1__sentra__descriptor)
SENTRA_DEFINE_CALL_(sentra_get_sentra, Sentra__V1__GetSentraRequest, Sentra__V1__Sentra,
                    SENTRA_M_GET_SENTRA, sentra__v1__sentra__descriptor)
SENTRA_DEFINE_CALL_(sentra_update_sentra, Sentra__V1__UpdateSentraRequest, Sentra__V1__Sentra,
                    SENTRA_M_UPDATE_SENTRA, sentra__v1__sentra__descriptor)
SENTRA_DEFINE_CALL_(sentra_delete_sentra, Sentra__V1__DeleteSentraRequest, Sentra__V1__DeleteSentraResponse,
                    SENTRA_M_DELETE_SENTRA, sentra__v1__delete_sentra_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_list_sentra, Sentra__V1__ListSentraRequest, Sentra__V1__ListSentraResponse,
                    SENTRA_M_LIST_SENTRA, sentra__v1__list_sentra_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_get_region, Sentra__V1__GetRegionRequest, Sentra__V1__Region,
                    SENTRA_M_GET_REGION, sentra__v1__region__descriptor)
SENTRA_DEFINE_CALL_(sentra_list_regions, Sentra__V1__ListRegionsRequest, Sentra__V1__ListRegionsResponse,
                    SENTRA_M_LIST_REGIONS, sentra__v1__list_regions_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_get_statistics, Sentra__V1__GetStatisticsRequest,
                    Sentra__V1__GetStatisticsResponse, SENTRA_M_GET_STATISTICS,
                    sentra__v1__get_statistics_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_get_time_series, Sentra__V1__GetTimeSeriesRequest,
                    Sentra__V1__GetTimeSeriesResponse, SENTRA_M_GET_TIME_SERIES,
                    sentra__v1__get_time_series_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_pull_changes, Sentra__V1__PullChangesRequest, Sentra__V1__PullChangesResponse,
                    SENTRA_M_PULL_CHANGES, sentra__v1__pull_changes_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_push_changes, Sentra__V1__PushChangesRequest, Sentra__V1__PushChangesResponse,
                    SENTRA_M_PUSH_CHANGES, sentra__v1__push_changes_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_create_token, Sentra__V1__CreateTokenRequest, Sentra__V1__CreateTokenResponse,
                    SENTRA_M_CREATE_TOKEN, sentra__v1__create_token_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_list_tokens, Sentra__V1__ListTokensRequest, Sentra__V1__ListTokensResponse,
                    SENTRA_M_LIST_TOKENS, sentra__v1__list_tokens_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_revoke_token, Sentra__V1__RevokeTokenRequest, Sentra__V1__Token,
                    SENTRA_M_REVOKE_TOKEN, sentra__v1__token__descriptor)
SENTRA_DEFINE_CALL_(sentra_who_am_i, Sentra__V1__WhoAmIRequest, Sentra__V1__Token,
                    SENTRA_M_WHO_AM_I, sentra__v1__token__descriptor)

struct changes_cb {
    sentra_stream_changes_cb fn;
    void *arg;
};

static int changes_message(void *arg, const ProtobufCMessage *m)
{
    const struct changes_cb *k = arg;
    return k->fn(k->arg, (const Sentra__V1__StreamChangesResponse *)m);
}

int sentra_stream_changes(sentra_client_t *c, const Sentra__V1__StreamChangesRequest *req,
                          sentra_stream_changes_cb on_message, void *arg,
                          const sentra_call_opts_t *opts, sentra_status_t *status_out)
{
    struct changes_cb k = {on_message, arg};
    return sentra_call_stream(c, SENTRA_M_STREAM_CHANGES, req ? &req->base : NULL,
                              &sentra__v1__stream_changes_response__descriptor, opts,
                              on_message ? changes_message : NULL, &k, status_out);
}
SENTRA_DEFINE_CALL_(sentra_create_member, Sentra__V1__CreateMemberRequest, Sentra__V1__Member,
                    SENTRA_M_CREATE_MEMBER, sentra__v1__member__descriptor)
SENTRA_DEFINE_CALL_(sentra_get_member, Sentra__V1__GetMemberRequest, Sentra__V1__Member,
                    SENTRA_M_GET_MEMBER, sentra__v1__member__descriptor)
SENTRA_DEFINE_CALL_(sentra_update_member, Sentra__V1__UpdateMemberRequest, Sentra__V1__Member,
                    SENTRA_M_UPDATE_MEMBER, sentra__v1__member__descriptor)
SENTRA_DEFINE_CALL_(sentra_delete_member, Sentra__V1__DeleteMemberRequest, Sentra__V1__DeleteRecordResponse,
                    SENTRA_M_DELETE_MEMBER, sentra__v1__delete_record_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_list_members, Sentra__V1__ListMembersRequest, Sentra__V1__ListMembersResponse,
                    SENTRA_M_LIST_MEMBERS, sentra__v1__list_members_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_get_institution, Sentra__V1__GetInstitutionRequest, Sentra__V1__Institution,
                    SENTRA_M_GET_INSTITUTION, sentra__v1__institution__descriptor)
SENTRA_DEFINE_CALL_(sentra_set_institution, Sentra__V1__SetInstitutionRequest, Sentra__V1__Institution,
                    SENTRA_M_SET_INSTITUTION, sentra__v1__institution__descriptor)
SENTRA_DEFINE_CALL_(sentra_delete_institution, Sentra__V1__DeleteInstitutionRequest, Sentra__V1__DeleteRecordResponse,
                    SENTRA_M_DELETE_INSTITUTION, sentra__v1__delete_record_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_list_institutions, Sentra__V1__ListInstitutionsRequest, Sentra__V1__ListInstitutionsResponse,
                    SENTRA_M_LIST_INSTITUTIONS, sentra__v1__list_institutions_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_create_obstacle, Sentra__V1__CreateObstacleRequest, Sentra__V1__Obstacle,
                    SENTRA_M_CREATE_OBSTACLE, sentra__v1__obstacle__descriptor)
SENTRA_DEFINE_CALL_(sentra_get_obstacle, Sentra__V1__GetObstacleRequest, Sentra__V1__Obstacle,
                    SENTRA_M_GET_OBSTACLE, sentra__v1__obstacle__descriptor)
SENTRA_DEFINE_CALL_(sentra_update_obstacle, Sentra__V1__UpdateObstacleRequest, Sentra__V1__Obstacle,
                    SENTRA_M_UPDATE_OBSTACLE, sentra__v1__obstacle__descriptor)
SENTRA_DEFINE_CALL_(sentra_delete_obstacle, Sentra__V1__DeleteObstacleRequest, Sentra__V1__DeleteRecordResponse,
                    SENTRA_M_DELETE_OBSTACLE, sentra__v1__delete_record_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_list_obstacles, Sentra__V1__ListObstaclesRequest, Sentra__V1__ListObstaclesResponse,
                    SENTRA_M_LIST_OBSTACLES, sentra__v1__list_obstacles_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_create_assistance, Sentra__V1__CreateAssistanceRequest, Sentra__V1__Assistance,
                    SENTRA_M_CREATE_ASSISTANCE, sentra__v1__assistance__descriptor)
SENTRA_DEFINE_CALL_(sentra_get_assistance, Sentra__V1__GetAssistanceRequest, Sentra__V1__Assistance,
                    SENTRA_M_GET_ASSISTANCE, sentra__v1__assistance__descriptor)
SENTRA_DEFINE_CALL_(sentra_update_assistance, Sentra__V1__UpdateAssistanceRequest, Sentra__V1__Assistance,
                    SENTRA_M_UPDATE_ASSISTANCE, sentra__v1__assistance__descriptor)
SENTRA_DEFINE_CALL_(sentra_delete_assistance, Sentra__V1__DeleteAssistanceRequest, Sentra__V1__DeleteRecordResponse,
                    SENTRA_M_DELETE_ASSISTANCE, sentra__v1__delete_record_response__descriptor)
SENTRA_DEFINE_CALL_(sentra_list_assistance, Sentra__V1__ListAssistanceRequest, Sentra__V1__ListAssistanceResponse,
                    SENTRA_M_LIST_ASSISTANCE, sentra__v1__list_assistance_response__descriptor)
