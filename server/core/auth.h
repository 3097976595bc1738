/*
 * auth.h: verifying API tokens, with a cache.
 *
 * A token is looked up in PostgreSQL by the SHA-256 of its secret; valid
 * tokens are cached in memory so that a request costs no extra round trip.
 * Revoking a token notifies every server (NOTIFY sentra_token), which then
 * empties its cache; the cache is also emptied when the notification
 * connection is lost, and entries expire after a minute regardless.
 */
#ifndef SENTRA_AUTH_H
#define SENTRA_AUTH_H

#include <stdint.h>

struct auth;

typedef struct auth_cache auth_cache_t;

auth_cache_t *auth_cache_new(void);
void auth_cache_free(auth_cache_t *ac);

/* Copies the cached identity of secret into *out and returns 1, or 0 when
 * not cached (or expired). now_ms: a monotonic clock. */
int auth_cache_get(auth_cache_t *ac, const char *secret, uint64_t now_ms, struct auth *out);

/* Remembers a verified identity. */
void auth_cache_put(auth_cache_t *ac, const char *secret, uint64_t now_ms, const struct auth *a);

/* Forgets everything (a token was revoked, or notifications were lost). */
void auth_cache_clear(auth_cache_t *ac);

/* Role number from its SQL name; 0 when unknown. */
int auth_role_from_name(const char *name);

#endif
