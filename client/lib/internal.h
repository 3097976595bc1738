/*
 * internal.h: what the files of libsentra share and do not export.
 */
#ifndef SENTRA_CLIENT_INTERNAL_H
#define SENTRA_CLIENT_INTERNAL_H

#include <sentra/async.h>
#include <sentra/sentra.h>

/* Defaults of sentra_client_opts_t. */
#define SENTRA__DEFAULT_ADDR "127.0.0.1:7600"
#define SENTRA__DEFAULT_CONNECT_MS 5000u
#define SENTRA__DEFAULT_DEADLINE_MS 30000u
#define SENTRA__DEFAULT_ATTEMPTS 4u
#define SENTRA__DEFAULT_BACKOFF_MS 100u
#define SENTRA__DEFAULT_BACKOFF_MAX_MS 3000u
#define SENTRA__DEFAULT_MAX_INFLIGHT 100u

/* Fills st with a status made up by the library (local = 1); st is cleared
 * first. Returns err unchanged, for `return sentra__local_status(...)`. */
int sentra__local_status(sentra_status_t *st, int err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Copies a server Response's status into st (cleared first). Returns 0 or
 * SENTRA_ENOMEM. */
int sentra__status_from_response(sentra_status_t *st, const Sentra__V1__Response *r);

/* The gRPC code that stands for a local error. */
int sentra__err_code(int err);

/* strdup that accepts NULL. */
char *sentra__strdup(const char *s);

/* Checks an address' form; 0 or SENTRA_EADDR. */
int sentra__check_address(const char *addr);

/* ---------------------------------------------------------------- TLS (tls.c) */

/* A handle's TLS settings: trust, client certificate, the name to check,
 * the session to resume. */
typedef struct sentra__tls_cfg sentra__tls_cfg_t;
/* One connection's TLS session, on memory BIOs. */
typedef struct sentra__tls sentra__tls_t;

/* Loads o's files (NULL fields from $SENTRA_CA, $SENTRA_CERT, $SENTRA_KEY);
 * host is the address' host, checked in the server's certificate. Returns
 * 0, SENTRA_ENOMEM, or SENTRA_ETLS with the reason in err. */
int sentra__tls_cfg_new(sentra__tls_cfg_t **out, const sentra_tls_opts_t *o, const char *host, char *err,
                        size_t errlen);
void sentra__tls_cfg_free(sentra__tls_cfg_t *cfg);

/* A client session (NULL: out of memory); cfg must outlive it. */
sentra__tls_t *sentra__tls_new(sentra__tls_cfg_t *cfg);
void sentra__tls_free(sentra__tls_t *t);
/* Ciphertext from the socket. 0 or SENTRA_ENOMEM. */
int sentra__tls_feed(sentra__tls_t *t, const uint8_t *data, size_t n);
/* Drives the handshake: 1 done, 0 more bytes needed, or a negative error
 * (SENTRA_ETLS: refused or not verified; SENTRA_ECONNLOST) with the reason
 * in err. Records to send may be pending after every call. */
int sentra__tls_handshake(sentra__tls_t *t, char *err, size_t errlen);
/* Plaintext into buf: 1 (*got bytes), 0 none for now, or a negative error
 * as for the handshake (SENTRA_ECONNLOST on close_notify). */
int sentra__tls_read(sentra__tls_t *t, uint8_t *buf, size_t cap, size_t *got, char *err, size_t errlen);
/* Encrypts n bytes (all of them, or SENTRA_EIO). */
int sentra__tls_write(sentra__tls_t *t, const uint8_t *data, size_t n);
/* Records waiting to be written, and taking them (up to n into dst). */
size_t sentra__tls_pending(const sentra__tls_t *t);
size_t sentra__tls_take(sentra__tls_t *t, uint8_t *dst, size_t n);
int sentra__tls_resumed(const sentra__tls_t *t);
/* Prepares a close_notify (then take what is pending). */
void sentra__tls_close_notify(sentra__tls_t *t);

#endif
