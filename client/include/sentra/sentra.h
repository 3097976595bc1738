/*
 * sentra.h: the public API of libsentra, the C client of the sentra service.
 *
 * One opaque handle, sentra_client_t, holds the address, the token, the
 * timeouts and (lazily) one connection to sentrad. Every call is blocking;
 * <sentra/async.h> offers the same calls on the caller's libuv loop.
 *
 * TLS: an address "tls://host:port" (or sentra_tls_opts_t.enable) makes
 * the connection TLS 1.2 or 1.3. The server's certificate is always
 * verified: its chain against the system's trusted CAs, or the CA file in
 * sentra_tls_opts_t.ca_file / $SENTRA_CA, and its name against the host
 * connected to (sentra_tls_opts_t, below).
 *
 * Messages are the protobuf-c types generated from proto/sentra/v1/ (one .proto per service)
 * (installed as <sentra/v1/NAME.pb-c.h>): Sentra__V1__Sentra and so on.
 *
 * Ownership, once for all functions below:
 *  - Request messages are borrowed: the library reads them during the call
 *    and never keeps or frees them.
 *  - A response message returned through `**resp_out` belongs to the caller,
 *    who frees it with protobuf_c_message_free_unpacked(msg, NULL) (or the
 *    generated sentra__v1__xxx__free_unpacked). It is set only on success;
 *    on failure *resp_out is NULL.
 *  - A sentra_status_t is a struct the caller provides (usually on the
 *    stack). The library fills it on every call, success included; its
 *    strings and violation array are allocated by the library and freed by
 *    sentra_status_clear(). The struct itself is never freed by the library.
 *  - Strings returned by accessors (sentra_client_address, sentra_strerror)
 *    are owned by the library; do not free them.
 *
 * Signals: creating a handle sets SIGPIPE to SIG_IGN if it still has its
 * default action (a write to a closed connection must not kill the
 * process); a handler the program installed is left alone.
 *
 * Thread-safety: a sentra_client_t may be used by one thread at a time (it
 * has its own private libuv loop and no locks). Different handles may be
 * used in different threads at once. Nothing in the library is global
 * except read-only tables.
 *
 * Errors: every function returning int returns 0 on success and a negative
 * SENTRA_E* value on failure. A failed call also reports a gRPC status in
 * sentra_status_t: the server's when it answered (SENTRA_ESTATUS), or a
 * local one (UNAVAILABLE when the server cannot be reached,
 * DEADLINE_EXCEEDED when the call's deadline passed, and so on). Status
 * codes are the values of Sentra__V1__Code (SENTRA__V1__CODE__NOT_FOUND...).
 */
#ifndef SENTRA_SENTRA_H
#define SENTRA_SENTRA_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include <sentra/v1/rpc.pb-c.h>
#include <sentra/v1/sentra.pb-c.h>
#include <sentra/v1/system.pb-c.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SENTRA_VERSION_MAJOR 0
#define SENTRA_VERSION_MINOR 2
#define SENTRA_VERSION_PATCH 0

/* ---------------------------------------------------------------- errors */

/* name, value, message. Errors that end a connection and errors that end
 * one call share this table; the comments say which. */
#define SENTRA_ERRNO_MAP(XX)                                                   \
    XX(EINVAL, -1, "invalid argument")                                         \
    XX(ENOMEM, -2, "out of memory")                                            \
    XX(EADDR, -3, "malformed address (want host:port, unix:/path or /path)")   \
    XX(ECONNECT, -4, "cannot connect to the server")                           \
    XX(ECONNLOST, -5, "connection lost while the call was in flight")          \
    XX(ETIMEDOUT, -6, "deadline exceeded")                                     \
    XX(ECANCELED, -7, "call cancelled")                                        \
    XX(ECLOSED, -8, "client handle closed")                                    \
    XX(EPROTO, -9, "protocol error from the server")                           \
    XX(EDECODE, -10, "undecodable response payload")                           \
    XX(ETOOBIG, -11, "request larger than the maximum frame size")             \
    XX(ESTATUS, -12, "the server answered with a non-OK status")               \
    XX(EIO, -13, "input/output error")                                         \
    XX(ESYNC, -14, "the sync store callback failed")                           \
    XX(ETLS, -15, "TLS failed (certificate not accepted, or refused by the server)")

typedef enum {
    SENTRA_EOK = 0,
#define SENTRA_ERR_ENUM_(name, val, msg) SENTRA_##name = (val),
    SENTRA_ERRNO_MAP(SENTRA_ERR_ENUM_)
#undef SENTRA_ERR_ENUM_
} sentra_err_t;

/* Message of an error code ("deadline exceeded"); "unknown error" for an
 * unknown value. Static storage. */
const char *sentra_strerror(int err);

/* Name of an error code ("SENTRA_ETIMEDOUT"); static storage. */
const char *sentra_err_name(int err);

/* Name ("NOT_FOUND") of a gRPC status code; "UNKNOWN_CODE" when out of
 * range. Static storage. */
const char *sentra_status_name(int code);

/* The code of a status name ("NOT_FOUND"), or -1 when unknown. */
int sentra_status_from_name(const char *name);

/* ---------------------------------------------------------------- status */

/* One invalid field of a request (sentra.v1.FieldViolation). */
typedef struct sentra_violation {
    char *field;       /* "name", "figures[0].year"; owned by the status */
    char *description; /* plain English; owned by the status */
} sentra_violation_t;

/* The outcome of one call. Fill with sentra_status_init (or zero it) before
 * first use; every call clears and refills it. */
typedef struct sentra_status {
    int code;                       /* Sentra__V1__Code; 0 is OK */
    char *message;                  /* NULL or a string owned by the status */
    size_t n_violations;
    sentra_violation_t *violations; /* INVALID_ARGUMENT: one per bad field */
    int64_t current_version;        /* ABORTED on a version conflict */
    int local;                      /* 1 when made up by the library (the
                                       server never answered), 0 when the
                                       server sent it */
} sentra_status_t;

/* Zeroes a status (code OK, no message). */
void sentra_status_init(sentra_status_t *st);

/* Frees what the status holds and zeroes it; the struct itself stays the
 * caller's. Safe on an initialized or already cleared status. */
void sentra_status_clear(sentra_status_t *st);

/* Deep copy of src into dst (dst is overwritten, not cleared first).
 * Returns 0 or SENTRA_ENOMEM (dst is then zeroed). */
int sentra_status_copy(sentra_status_t *dst, const sentra_status_t *src);

/* ---------------------------------------------------------------- options */

/* Options of a client handle. Initialize with sentra_client_opts_init, then
 * set what you need. Strings are copied by the functions that take the
 * struct; the struct may be freed right after. */
typedef struct sentra_client_opts {
    const char *address;          /* "host:port", "[::1]:port", "tls://host:port",
                                     "unix:/path" or "/path"; NULL:
                                     $SENTRA_ADDR, else "127.0.0.1:7600" */
    const char *token;            /* NULL: $SENTRA_TOKEN; "" for none */
    unsigned connect_timeout_ms;  /* per connection attempt; default 5000 */
    unsigned default_deadline_ms; /* per call when the call names none;
                                     default 30000; 0 in opts means default */
    unsigned max_attempts;        /* sends or connection attempts per call,
                                     retries included; default 4 */
    unsigned backoff_initial_ms;  /* first retry delay; default 100 */
    unsigned backoff_max_ms;      /* cap of the doubling delay; default 3000 */
    uint32_t max_frame;           /* largest frame payload; default 4 MiB */
    unsigned max_inflight;        /* requests on the wire at once; more wait
                                     in the client; default 100 (sentrad
                                     refuses more than its --max-inflight,
                                     128 by default, with RESOURCE_EXHAUSTED) */
} sentra_client_opts_t;

void sentra_client_opts_init(sentra_client_opts_t *opts);

/* Per-call options; NULL anywhere means all defaults. */
typedef struct sentra_call_opts {
    int64_t deadline_ms;         /* relative to the call's start, covering all
                                    retries; 0: the client's default; <0: none */
    const char *idempotency_key; /* NULL or "": none. A write with a key is
                                    retried on connection loss/UNAVAILABLE. */
    int no_retry;                /* 1: never retry, even when it is safe */
} sentra_call_opts_t;

/* ---------------------------------------------------------------- client */

typedef struct sentra_client sentra_client_t;

/* Creates a client handle in *out. Does not connect: the first call (or
 * sentra_client_connect) does. opts may be NULL (defaults and environment).
 * Returns 0, SENTRA_EINVAL, SENTRA_EADDR or SENTRA_ENOMEM; *out is NULL on
 * failure. Free with sentra_client_free. */
int sentra_client_new(sentra_client_t **out, const sentra_client_opts_t *opts);

/* TLS settings (libsentra 0.2). Initialize with sentra_tls_opts_init;
 * strings are copied by the functions that take the struct. Files are PEM.
 * A field added later comes with new functions, never by growing this
 * struct under the old ones. */
typedef struct sentra_tls_opts {
    int enable;                   /* 1: TLS even when the address has no
                                     "tls://" (which enables it too) */
    const char *ca_file;          /* CAs to trust instead of the system's;
                                     NULL: $SENTRA_CA, else the system store */
    const char *cert_file;        /* client certificate for mutual TLS (leaf,
                                     then chain); NULL: $SENTRA_CERT, else none */
    const char *key_file;         /* its unencrypted key; NULL: $SENTRA_KEY,
                                     else in cert_file */
    const char *server_name;      /* the name the certificate must carry (and
                                     SNI); NULL: the address' host */
    int insecure_no_hostname_check; /* 1: DANGEROUS. Accepts a certificate the
                                     trusted CA issued for ANY name, so anyone
                                     holding one can pose as the server. The
                                     chain is still verified. For tests. */
} sentra_tls_opts_t;

void sentra_tls_opts_init(sentra_tls_opts_t *tls);

/* sentra_client_new with TLS settings (tls may be NULL: as
 * sentra_client_new, which reads $SENTRA_CA, $SENTRA_CERT and $SENTRA_KEY
 * for a tls:// address). TLS is used when tls->enable is set or the
 * address starts with "tls://"; the files are loaded now. When they cannot
 * be, the handle is still made (0 is returned), every call fails with
 * SENTRA_ETLS, and sentra_client_error_message() says why from the start:
 * check it when the files may be wrong. Other returns as
 * sentra_client_new. */
int sentra_client_new_tls(sentra_client_t **out, const sentra_client_opts_t *opts,
                          const sentra_tls_opts_t *tls);

/* Closes the connection, fails nothing (no call can be running: the API is
 * blocking) and frees the handle. NULL is a no-op. */
void sentra_client_free(sentra_client_t *c);

/* Connects now (within the connect timeout and max_attempts) instead of at
 * the first call. Returns 0 or SENTRA_ECONNECT; the reason is in
 * sentra_client_error_message(c). */
int sentra_client_connect(sentra_client_t *c);

/* Accessors. Returned strings are owned by the handle and valid until the
 * handle is freed or the value is changed. */
const char *sentra_client_address(const sentra_client_t *c);
int sentra_client_is_connected(const sentra_client_t *c);
/* Connections established so far (1 after the first connect, more after
 * reconnects). */
uint64_t sentra_client_connections(const sentra_client_t *c);
/* A human-readable account of the last failure (connect errors name the
 * address and the OS error); "" when none. */
const char *sentra_client_error_message(const sentra_client_t *c);
/* Replaces the token used by later calls (copied). Returns 0 or ENOMEM. */
int sentra_client_set_token(sentra_client_t *c, const char *token);
/* Changes the default per-call deadline (0: none). */
void sentra_client_set_deadline(sentra_client_t *c, unsigned ms);

/* ---------------------------------------------------------------- calls */

/* Calls `method` ("/sentra.v1.SentraService/GetSentra") with request `req`
 * and waits for the answer, reconnecting and retrying where that is safe
 * (reads: Get*, List*, PullChanges, StreamChanges, Check, Ping; writes only with an
 * idempotency key). On success returns 0 and stores the decoded response
 * (type resp_desc) in *resp_out, which the caller frees with
 * protobuf_c_message_free_unpacked. On failure returns a negative
 * SENTRA_E* code (SENTRA_ESTATUS when the server said no) and *resp_out is
 * NULL. status_out, when not NULL, receives the status in both cases. */
int sentra_call(sentra_client_t *c, const char *method,
                const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp_desc,
                ProtobufCMessage **resp_out, const sentra_call_opts_t *opts,
                sentra_status_t *status_out);

/* A server-streaming call (SyncService/StreamChanges): sends req, then
 * hands each message (decoded as msg_desc; borrowed for the duration of
 * the callback) to on_message until the server ends the stream. Returns 0
 * when the server ended it with OK, SENTRA_ECANCELED when on_message
 * returned non-zero (the stream is cancelled), or the error that ended it
 * (SENTRA_ESTATUS with the server's status, SENTRA_ETIMEDOUT when
 * opts->deadline_ms passed, SENTRA_ECONNLOST, ...). No deadline applies
 * unless opts->deadline_ms > 0. A loss before the first message is
 * retried as for reads; after it, not (resume from your last cursor). */
typedef int (*sentra_stream_cb)(void *arg, const ProtobufCMessage *msg);
int sentra_call_stream(sentra_client_t *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *msg_desc, const sentra_call_opts_t *opts,
                       sentra_stream_cb on_message, void *arg, sentra_status_t *status_out);

/* SyncService/StreamChanges through sentra_call_stream; each message is
 * a Sentra__V1__StreamChangesResponse. */
typedef int (*sentra_stream_changes_cb)(void *arg, const Sentra__V1__StreamChangesResponse *msg);
int sentra_stream_changes(sentra_client_t *c, const Sentra__V1__StreamChangesRequest *req,
                          sentra_stream_changes_cb on_message, void *arg,
                          const sentra_call_opts_t *opts, sentra_status_t *status_out);

/* 1 when a call of `method` may be retried without an idempotency key. */
int sentra_method_is_read(const char *method);

/* Typed wrappers: the same contract as sentra_call, with the method's
 * request and response types. *out is the caller's on success. */
#define SENTRA_DECLARE_CALL_(fn, Req, Resp)                                    \
    int fn(sentra_client_t *c, const Req *req, Resp **out,                     \
           const sentra_call_opts_t *opts, sentra_status_t *status_out);

/* Health and system (no token needed). */
SENTRA_DECLARE_CALL_(sentra_health_check, Sentra__V1__HealthCheckRequest,
                     Sentra__V1__HealthCheckResponse)
SENTRA_DECLARE_CALL_(sentra_ping, Sentra__V1__PingRequest,
                     Sentra__V1__PingResponse)
SENTRA_DECLARE_CALL_(sentra_get_descriptor_set,
                     Sentra__V1__GetDescriptorSetRequest,
                     Sentra__V1__GetDescriptorSetResponse)
SENTRA_DECLARE_CALL_(sentra_sleep, Sentra__V1__SleepRequest,
                     Sentra__V1__SleepResponse)
/* SentraService */
SENTRA_DECLARE_CALL_(sentra_create_sentra, Sentra__V1__CreateSentraRequest,
                     Sentra__V1__Sentra)
SENTRA_DECLARE_CALL_(sentra_get_sentra, Sentra__V1__GetSentraRequest,
                     Sentra__V1__Sentra)
SENTRA_DECLARE_CALL_(sentra_update_sentra, Sentra__V1__UpdateSentraRequest,
                     Sentra__V1__Sentra)
SENTRA_DECLARE_CALL_(sentra_delete_sentra, Sentra__V1__DeleteSentraRequest,
                     Sentra__V1__DeleteSentraResponse)
SENTRA_DECLARE_CALL_(sentra_list_sentra, Sentra__V1__ListSentraRequest,
                     Sentra__V1__ListSentraResponse)
SENTRA_DECLARE_CALL_(sentra_get_region, Sentra__V1__GetRegionRequest,
                     Sentra__V1__Region)
SENTRA_DECLARE_CALL_(sentra_list_regions, Sentra__V1__ListRegionsRequest,
                     Sentra__V1__ListRegionsResponse)
/* StatsService */
SENTRA_DECLARE_CALL_(sentra_get_statistics, Sentra__V1__GetStatisticsRequest,
                     Sentra__V1__GetStatisticsResponse)
SENTRA_DECLARE_CALL_(sentra_get_time_series, Sentra__V1__GetTimeSeriesRequest,
                     Sentra__V1__GetTimeSeriesResponse)
/* SyncService */
SENTRA_DECLARE_CALL_(sentra_pull_changes, Sentra__V1__PullChangesRequest,
                     Sentra__V1__PullChangesResponse)
SENTRA_DECLARE_CALL_(sentra_push_changes, Sentra__V1__PushChangesRequest,
                     Sentra__V1__PushChangesResponse)
/* RecordService: the records of a sentra */
SENTRA_DECLARE_CALL_(sentra_create_member, Sentra__V1__CreateMemberRequest,
                     Sentra__V1__Member)
SENTRA_DECLARE_CALL_(sentra_get_member, Sentra__V1__GetMemberRequest,
                     Sentra__V1__Member)
SENTRA_DECLARE_CALL_(sentra_update_member, Sentra__V1__UpdateMemberRequest,
                     Sentra__V1__Member)
SENTRA_DECLARE_CALL_(sentra_delete_member, Sentra__V1__DeleteMemberRequest,
                     Sentra__V1__DeleteRecordResponse)
SENTRA_DECLARE_CALL_(sentra_list_members, Sentra__V1__ListMembersRequest,
                     Sentra__V1__ListMembersResponse)
SENTRA_DECLARE_CALL_(sentra_get_institution, Sentra__V1__GetInstitutionRequest,
                     Sentra__V1__Institution)
SENTRA_DECLARE_CALL_(sentra_set_institution, Sentra__V1__SetInstitutionRequest,
                     Sentra__V1__Institution)
SENTRA_DECLARE_CALL_(sentra_delete_institution, Sentra__V1__DeleteInstitutionRequest,
                     Sentra__V1__DeleteRecordResponse)
SENTRA_DECLARE_CALL_(sentra_list_institutions, Sentra__V1__ListInstitutionsRequest,
                     Sentra__V1__ListInstitutionsResponse)
SENTRA_DECLARE_CALL_(sentra_create_obstacle, Sentra__V1__CreateObstacleRequest,
                     Sentra__V1__Obstacle)
SENTRA_DECLARE_CALL_(sentra_get_obstacle, Sentra__V1__GetObstacleRequest,
                     Sentra__V1__Obstacle)
SENTRA_DECLARE_CALL_(sentra_update_obstacle, Sentra__V1__UpdateObstacleRequest,
                     Sentra__V1__Obstacle)
SENTRA_DECLARE_CALL_(sentra_delete_obstacle, Sentra__V1__DeleteObstacleRequest,
                     Sentra__V1__DeleteRecordResponse)
SENTRA_DECLARE_CALL_(sentra_list_obstacles, Sentra__V1__ListObstaclesRequest,
                     Sentra__V1__ListObstaclesResponse)
SENTRA_DECLARE_CALL_(sentra_create_assistance, Sentra__V1__CreateAssistanceRequest,
                     Sentra__V1__Assistance)
SENTRA_DECLARE_CALL_(sentra_get_assistance, Sentra__V1__GetAssistanceRequest,
                     Sentra__V1__Assistance)
SENTRA_DECLARE_CALL_(sentra_update_assistance, Sentra__V1__UpdateAssistanceRequest,
                     Sentra__V1__Assistance)
SENTRA_DECLARE_CALL_(sentra_delete_assistance, Sentra__V1__DeleteAssistanceRequest,
                     Sentra__V1__DeleteRecordResponse)
SENTRA_DECLARE_CALL_(sentra_list_assistance, Sentra__V1__ListAssistanceRequest,
                     Sentra__V1__ListAssistanceResponse)
/* TokenService */
SENTRA_DECLARE_CALL_(sentra_create_token, Sentra__V1__CreateTokenRequest,
                     Sentra__V1__CreateTokenResponse)
SENTRA_DECLARE_CALL_(sentra_list_tokens, Sentra__V1__ListTokensRequest,
                     Sentra__V1__ListTokensResponse)
SENTRA_DECLARE_CALL_(sentra_revoke_token, Sentra__V1__RevokeTokenRequest,
                     Sentra__V1__Token)
/* The caller's own token (any valid token): its role and region are the
 * scope of everything it reads and writes. */
SENTRA_DECLARE_CALL_(sentra_who_am_i, Sentra__V1__WhoAmIRequest,
                     Sentra__V1__Token)

/* Full method names, for sentra_call and the async API. */
#define SENTRA_M_HEALTH_CHECK "/sentra.v1.Health/Check"
#define SENTRA_M_PING "/sentra.v1.SystemService/Ping"
#define SENTRA_M_GET_DESCRIPTOR_SET "/sentra.v1.SystemService/GetDescriptorSet"
#define SENTRA_M_SLEEP "/sentra.v1.SystemService/Sleep"
#define SENTRA_M_CREATE_SENTRA "/sentra.v1.SentraService/CreateSentra"
#define SENTRA_M_GET_SENTRA "/sentra.v1.SentraService/GetSentra"
#define SENTRA_M_UPDATE_SENTRA "/sentra.v1.SentraService/UpdateSentra"
#define SENTRA_M_DELETE_SENTRA "/sentra.v1.SentraService/DeleteSentra"
#define SENTRA_M_LIST_SENTRA "/sentra.v1.SentraService/ListSentra"
#define SENTRA_M_GET_REGION "/sentra.v1.SentraService/GetRegion"
#define SENTRA_M_LIST_REGIONS "/sentra.v1.SentraService/ListRegions"
#define SENTRA_M_GET_STATISTICS "/sentra.v1.StatsService/GetStatistics"
#define SENTRA_M_GET_TIME_SERIES "/sentra.v1.StatsService/GetTimeSeries"
#define SENTRA_M_PULL_CHANGES "/sentra.v1.SyncService/PullChanges"
#define SENTRA_M_PUSH_CHANGES "/sentra.v1.SyncService/PushChanges"
#define SENTRA_M_STREAM_CHANGES "/sentra.v1.SyncService/StreamChanges"
#define SENTRA_M_CREATE_MEMBER "/sentra.v1.RecordService/CreateMember"
#define SENTRA_M_GET_MEMBER "/sentra.v1.RecordService/GetMember"
#define SENTRA_M_UPDATE_MEMBER "/sentra.v1.RecordService/UpdateMember"
#define SENTRA_M_DELETE_MEMBER "/sentra.v1.RecordService/DeleteMember"
#define SENTRA_M_LIST_MEMBERS "/sentra.v1.RecordService/ListMembers"
#define SENTRA_M_GET_INSTITUTION "/sentra.v1.RecordService/GetInstitution"
#define SENTRA_M_SET_INSTITUTION "/sentra.v1.RecordService/SetInstitution"
#define SENTRA_M_DELETE_INSTITUTION "/sentra.v1.RecordService/DeleteInstitution"
#define SENTRA_M_LIST_INSTITUTIONS "/sentra.v1.RecordService/ListInstitutions"
#define SENTRA_M_CREATE_OBSTACLE "/sentra.v1.RecordService/CreateObstacle"
#define SENTRA_M_GET_OBSTACLE "/sentra.v1.RecordService/GetObstacle"
#define SENTRA_M_UPDATE_OBSTACLE "/sentra.v1.RecordService/UpdateObstacle"
#define SENTRA_M_DELETE_OBSTACLE "/sentra.v1.RecordService/DeleteObstacle"
#define SENTRA_M_LIST_OBSTACLES "/sentra.v1.RecordService/ListObstacles"
#define SENTRA_M_CREATE_ASSISTANCE "/sentra.v1.RecordService/CreateAssistance"
#define SENTRA_M_GET_ASSISTANCE "/sentra.v1.RecordService/GetAssistance"
#define SENTRA_M_UPDATE_ASSISTANCE "/sentra.v1.RecordService/UpdateAssistance"
#define SENTRA_M_DELETE_ASSISTANCE "/sentra.v1.RecordService/DeleteAssistance"
#define SENTRA_M_LIST_ASSISTANCE "/sentra.v1.RecordService/ListAssistance"
#define SENTRA_M_CREATE_TOKEN "/sentra.v1.TokenService/CreateToken"
#define SENTRA_M_LIST_TOKENS "/sentra.v1.TokenService/ListTokens"
#define SENTRA_M_REVOKE_TOKEN "/sentra.v1.TokenService/RevokeToken"
#define SENTRA_M_WHO_AM_I "/sentra.v1.TokenService/WhoAmI"

#ifdef __cplusplus
}
#endif
#endif
