/*
 * auth.h: verifying API tokens, with a cache.
 *
 * A token is looked up in PostgreSQL by the SHA-256 of its secret, computed
 * here: the secret itself never leaves the process (not in a query, not in
 * a result, so not in a database log). Valid tokens are cached in memory,
 * keyed by that digest, so that a request costs no extra round trip.
 *
 * Revocation. Revoking a token notifies every server (NOTIFY sentra_token),
 * which then empties its cache. Two races are closed here:
 *
 *   - A lookup sent before a revocation may answer "valid" after the
 *     NOTIFY emptied the cache. Every clear starts a new generation; an
 *     answer is cached only if no clear happened since its query was sent
 *     (auth_cache_gen() taken before sending, checked by auth_cache_put()).
 *   - While notifications are not known to arrive (at start, after the
 *     listening connection was lost, until server.c saw one of its own
 *     probes come back), a revocation could be missed: the cache is then
 *     "untrusted" and keeps nothing; every request looks its token up.
 *
 * Entries also expire after a minute regardless.
 */
#ifndef SENTRA_AUTH_H
#define SENTRA_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct auth;

#define AUTH_DIGEST_LEN 32                       /* SHA-256 */
#define AUTH_DIGEST_PARAM_LEN (2 + 2 * AUTH_DIGEST_LEN + 1)  /* "\x" + hex + NUL */

typedef struct auth_cache auth_cache_t;

/* A new, empty, untrusted cache; NULL when out of memory. */
auth_cache_t *auth_cache_new(void);
void auth_cache_free(auth_cache_t *ac);

/* The SHA-256 of secret (its bytes, without the NUL), as PostgreSQL's
 * sha256(convert_to(secret, 'UTF8')) would compute it. */
void auth_digest(const char *secret, uint8_t out[AUTH_DIGEST_LEN]);

/* A connection's memo of the last token secret it presented and that
 * secret's digest: a client sends the same token with every request, and
 * its SHA-256 (about an eighth of a GetSentra's CPU) is then computed
 * once per connection rather than once per request. It maps a secret to
 * its digest and nothing else: whether the token is valid is still looked
 * up (cache, else database) for every request. Allocated at the first
 * token; the connection frees it with auth_memo_free, which wipes it. */
typedef struct auth_memo auth_memo_t;

/* auth_digest(secret, out), through *memo when memo is not NULL (set or
 * replaced here; secrets other than tokens' length are not kept). */
void auth_digest_memo(auth_memo_t **memo, const char *secret, uint8_t out[AUTH_DIGEST_LEN]);

/* Wipes and frees m (NULL: nothing). */
void auth_memo_free(auth_memo_t *m);

/* d as a bytea parameter in PostgreSQL's text form ("\x" and 64 hex
 * digits), for `secret_hash = $1::bytea`. */
void auth_digest_param(const uint8_t d[AUTH_DIGEST_LEN], char out[AUTH_DIGEST_PARAM_LEN]);

/* Copies the cached identity of digest into *out and returns 1, or 0 when
 * not cached (or expired). Digests are compared in constant time. now_ms:
 * a monotonic clock. */
int auth_cache_get(auth_cache_t *ac, const uint8_t digest[AUTH_DIGEST_LEN], uint64_t now_ms,
                   struct auth *out);

/* The current generation: take it before sending a lookup, give it to
 * auth_cache_put() with the answer. */
uint64_t auth_cache_gen(const auth_cache_t *ac);

/* Remembers a verified identity, unless the cache was cleared since gen
 * was taken or the cache is untrusted (then nothing happens). */
void auth_cache_put(auth_cache_t *ac, const uint8_t digest[AUTH_DIGEST_LEN], uint64_t gen,
                    uint64_t now_ms, const struct auth *a);

/* Forgets everything and starts a new generation (a token was revoked, or
 * notifications were lost or came back). */
void auth_cache_clear(auth_cache_t *ac);

/* Whether revocations are known to reach this server (see the file
 * comment). Untrusting also clears. */
void auth_cache_trust(auth_cache_t *ac, int trusted);
int auth_cache_trusted(const auth_cache_t *ac);

/* Role number from its SQL name; 0 when unknown. */
int auth_role_from_name(const char *name);

#endif
