/*
 * async.h: libsentra's asynchronous interface on the caller's libuv loop.
 *
 * One sentra_async_t owns one connection (made lazily, remade after a loss)
 * on which many calls may be in flight; answers come in completion order.
 * Every call's callback runs exactly once, on the loop's thread: with the
 * response, with the server's non-OK status, or with a local failure
 * (deadline, cancel, connection loss, handle closed). Retries and reconnects
 * follow the rules of sentra_call (see sentra.h).
 *
 * Thread-safety: a sentra_async_t is used only from its loop's thread.
 *
 * Following libuv, a function that takes a callback and fails never calls
 * that callback.
 */
#ifndef SENTRA_ASYNC_H
#define SENTRA_ASYNC_H

#include <uv.h>

#include <sentra/sentra.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sentra_async sentra_async_t;
typedef struct sentra_async_call sentra_async_call_t;

/* Completion of one call.
 *  rc      0, or a negative SENTRA_E* code (SENTRA_ESTATUS: the server said
 *          no; see status->code).
 *  resp    on rc == 0 the decoded response, owned by the callback from now
 *          on: free it with protobuf_c_message_free_unpacked(resp, NULL).
 *          NULL otherwise.
 *  status  borrowed for the duration of the callback; copy it with
 *          sentra_status_copy to keep it. Never NULL.
 *  The call handle is freed by the library right after the callback
 *  returns; do not use it afterwards. */
typedef void (*sentra_async_cb)(sentra_async_call_t *call, int rc,
                                ProtobufCMessage *resp,
                                const sentra_status_t *status, void *arg);

typedef void (*sentra_async_close_cb)(sentra_async_t *a, void *arg);

/* A handle on `loop` (not owned). opts as for sentra_client_new (NULL:
 * defaults and environment); copied. Returns NULL on a malformed address or
 * out of memory. Close with sentra_async_close. */
sentra_async_t *sentra_async_new(uv_loop_t *loop, const sentra_client_opts_t *opts);

/* sentra_async_new with TLS settings (see sentra_client_new_tls in
 * sentra.h; tls may be NULL). When the TLS files cannot be loaded the
 * handle is still made; its calls fail with SENTRA_ETLS and
 * sentra_async_error_message() says why. */
sentra_async_t *sentra_async_new_tls(uv_loop_t *loop, const sentra_client_opts_t *opts,
                                     const sentra_tls_opts_t *tls);

/* Starts a call. req is packed before this returns (borrowed, not kept);
 * opts borrowed likewise. Returns the call's handle, valid until its
 * callback has returned, or NULL (and cb will never run) when an argument
 * is NULL, the packed request exceeds the maximum frame, the handle is
 * closing, or memory ran out. */
sentra_async_call_t *sentra_async_call(sentra_async_t *a, const char *method,
                                       const ProtobufCMessage *req,
                                       const ProtobufCMessageDescriptor *resp_desc,
                                       const sentra_call_opts_t *opts,
                                       sentra_async_cb cb, void *arg);

/* One message of a server stream. msg is the decoded message, owned by
 * the callback from now on (protobuf_c_message_free_unpacked(msg, NULL)).
 * Return 0 for more; non-zero cancels the stream (as sentra_async_cancel:
 * its end callback then runs with SENTRA_ECANCELED). */
typedef int (*sentra_async_message_cb)(sentra_async_call_t *call, ProtobufCMessage *msg,
                                       void *arg);

/* Starts a server-streaming call (SyncService/StreamChanges): on_message
 * runs for each message (of type msg_desc) as it arrives, then on_end
 * exactly once with the end: rc 0 and resp NULL when the server ended
 * the stream with OK, else as for sentra_async_call. A stream has no
 * deadline unless opts->deadline_ms > 0 (the client's default deadline
 * does not apply). It is retried after a connection loss or UNAVAILABLE
 * only while no message has arrived (StreamChanges is a read); after
 * that the caller resumes, from the last cursor it got, say. The
 * messages' pace is the caller's: while on_message runs, nothing more is
 * read from the connection, and the server waits (flow control) instead
 * of queueing without bound. Returns the call's handle or NULL as
 * sentra_async_call does. */
sentra_async_call_t *sentra_async_stream(sentra_async_t *a, const char *method,
                                         const ProtobufCMessage *req,
                                         const ProtobufCMessageDescriptor *msg_desc,
                                         const sentra_call_opts_t *opts,
                                         sentra_async_message_cb on_message,
                                         sentra_async_cb on_end, void *arg);

/* Cancels a call whose callback has not run yet: a CANCEL frame is sent if
 * the request was on the wire, and the callback runs on a later loop
 * iteration (never inside this function) with SENTRA_ECANCELED and status
 * CANCELLED. Returns 0, or SENTRA_EINVAL when the call is already
 * completing. */
int sentra_async_cancel(sentra_async_call_t *call);

/* Closes the handle: calls still outstanding complete with SENTRA_ECLOSED
 * (status CANCELLED; those on the wire get a CANCEL frame), the connection
 * is closed, then close_cb (may be NULL) runs and the handle is freed. Must
 * not be called twice. */
void sentra_async_close(sentra_async_t *a, sentra_async_close_cb close_cb, void *arg);

/* Accessors. */
int sentra_async_set_token(sentra_async_t *a, const char *token);
void sentra_async_set_deadline(sentra_async_t *a, unsigned ms);
const char *sentra_async_address(const sentra_async_t *a);
/* Calls started and not yet completed. */
unsigned sentra_async_outstanding(const sentra_async_t *a);
int sentra_async_is_connected(const sentra_async_t *a);
uint64_t sentra_async_connections(const sentra_async_t *a);
const char *sentra_async_error_message(const sentra_async_t *a);

#ifdef __cplusplus
}
#endif
#endif
