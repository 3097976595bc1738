/*
 * auth.c: the cache of verified tokens (see auth.h). A chained hash table
 * keyed by the SHA-256 of the secret; the secret itself is never kept. It
 * is bounded: when full it is emptied, which costs one query per active
 * token to refill.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth.h"
#include "call.h"
#include "token_cli.h"

#define BUCKETS 1024
#define MAX_ENTRIES 20000
#define TTL_MS 60000

struct entry {
    struct entry *next;
    uint64_t expires_ms;
    auth_t auth;
    uint8_t digest[AUTH_DIGEST_LEN];
};

struct auth_cache {
    struct entry *buckets[BUCKETS];
    int n;                       /* entries */
    uint64_t gen;                /* bumped by every clear */
    int trusted;                 /* revocations are known to arrive */
};

/* The SHA-256 implementation, fetched once: fetching it at every call
 * (EVP_sha256() does) tripled the cost of a digest, to 1.4 us. It is
 * immutable and may be shared by every thread. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void auth_digest(const char *secret, uint8_t out[AUTH_DIGEST_LEN])
{
    unsigned int len = AUTH_DIGEST_LEN;
    pthread_once(&sha256_once, sha256_fetch);
    /* Fails only when out of memory (or without SHA-256 at all); the
     * convention here is to abort then, as call_alloc does. */
    if (sha256_md == NULL || !EVP_Digest(secret, strlen(secret), out, &len, sha256_md, NULL) ||
        len != AUTH_DIGEST_LEN)
        abort();
}

struct auth_memo {
    char secret[SENTRA_TOKEN_SECRET_LEN];   /* the last secret, not NUL-terminated */
    uint8_t digest[AUTH_DIGEST_LEN];        /* its SHA-256 */
};

void auth_digest_memo(auth_memo_t **memo, const char *secret, uint8_t out[AUTH_DIGEST_LEN])
{
    size_t n = strlen(secret);
    if (memo == NULL || n != SENTRA_TOKEN_SECRET_LEN) {
        auth_digest(secret, out);
        return;
    }
    auth_memo_t *m = *memo;
    if (m != NULL && CRYPTO_memcmp(m->secret, secret, n) == 0) {
        memcpy(out, m->digest, AUTH_DIGEST_LEN);
        return;
    }
    auth_digest(secret, out);
    if (m == NULL && (m = *memo = malloc(sizeof(*m))) == NULL)
        abort();
    memcpy(m->secret, secret, n);
    memcpy(m->digest, out, AUTH_DIGEST_LEN);
}

void auth_memo_free(auth_memo_t *m)
{
    if (m == NULL)
        return;
    OPENSSL_cleanse(m, sizeof(*m));
    free(m);
}

void auth_digest_param(const uint8_t d[AUTH_DIGEST_LEN], char out[AUTH_DIGEST_PARAM_LEN])
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'x';
    for (int i = 0; i < AUTH_DIGEST_LEN; i++) {
        out[2 + 2 * i] = hex[d[i] >> 4];
        out[3 + 2 * i] = hex[d[i] & 15];
    }
    out[AUTH_DIGEST_PARAM_LEN - 1] = '\0';
}

/* The digest is uniformly distributed already; and only verified tokens
 * are ever stored, so a client cannot fill one bucket on purpose. */
static unsigned bucket(const uint8_t d[AUTH_DIGEST_LEN])
{
    return ((unsigned)d[0] << 8 | d[1]) % BUCKETS;
}

auth_cache_t *auth_cache_new(void)
{
    return calloc(1, sizeof(auth_cache_t));
}

void auth_cache_clear(auth_cache_t *ac)
{
    for (int i = 0; i < BUCKETS; i++) {
        while (ac->buckets[i] != NULL) {
            struct entry *e = ac->buckets[i];
            ac->buckets[i] = e->next;
            OPENSSL_cleanse(e, sizeof(*e));
            free(e);
        }
    }
    ac->n = 0;
    ac->gen++;
}

void auth_cache_free(auth_cache_t *ac)
{
    if (ac == NULL)
        return;
    auth_cache_clear(ac);
    free(ac);
}

uint64_t auth_cache_gen(const auth_cache_t *ac)
{
    return ac->gen;
}

void auth_cache_trust(auth_cache_t *ac, int trusted)
{
    if (!trusted)
        auth_cache_clear(ac);
    ac->trusted = trusted != 0;
}

int auth_cache_trusted(const auth_cache_t *ac)
{
    return ac->trusted;
}

int auth_cache_get(auth_cache_t *ac, const uint8_t digest[AUTH_DIGEST_LEN], uint64_t now_ms,
                   struct auth *out)
{
    struct entry **pp = &ac->buckets[bucket(digest)];
    for (; *pp != NULL; pp = &(*pp)->next) {
        struct entry *e = *pp;
        if (CRYPTO_memcmp(e->digest, digest, AUTH_DIGEST_LEN) != 0)
            continue;
        if (e->expires_ms <= now_ms) {
            *pp = e->next;
            OPENSSL_cleanse(e, sizeof(*e));
            free(e);
            ac->n--;
            return 0;
        }
        *out = e->auth;
        return 1;
    }
    return 0;
}

void auth_cache_put(auth_cache_t *ac, const uint8_t digest[AUTH_DIGEST_LEN], uint64_t gen,
                    uint64_t now_ms, const struct auth *a)
{
    struct auth tmp;
    if (!ac->trusted || gen != ac->gen)
        return;                 /* a revocation may have been missed since */
    if (auth_cache_get(ac, digest, now_ms, &tmp))
        return;
    if (ac->n >= MAX_ENTRIES) {
        auth_cache_clear(ac);
        ac->gen = gen;          /* a clear for room only: nothing was revoked */
    }
    struct entry *e = malloc(sizeof(*e));
    if (e == NULL)
        abort();
    memcpy(e->digest, digest, AUTH_DIGEST_LEN);
    e->auth = *a;
    e->expires_ms = now_ms + TTL_MS;
    unsigned h = bucket(digest);
    e->next = ac->buckets[h];
    ac->buckets[h] = e;
    ac->n++;
}

int auth_role_from_name(const char *name)
{
    if (strcmp(name, "district") == 0) return SENTRA__V1__ROLE__ROLE_DISTRICT;
    if (strcmp(name, "province") == 0) return SENTRA__V1__ROLE__ROLE_PROVINCE;
    if (strcmp(name, "national") == 0) return SENTRA__V1__ROLE__ROLE_NATIONAL;
    if (strcmp(name, "admin") == 0) return SENTRA__V1__ROLE__ROLE_ADMIN;
    return 0;
}
