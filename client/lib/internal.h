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

#endif
