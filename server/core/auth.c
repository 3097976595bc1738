/*
 * auth.c: the cache of verified tokens (see auth.h). A chained hash table
 * keyed by the secret. It is bounded: when full it is emptied, which costs
 * one query per active token to refill.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "call.h"

#define BUCKETS 1024
#define MAX_ENTRIES 20000
#define TTL_MS 60000

struct entry {
    struct entry *next;
    uint64_t expires_ms;
    auth_t auth;
    char secret[];
};

struct auth_cache {
    struct entry *buckets[BUCKETS];
    int n;
};

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % BUCKETS;
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
            /* The secret must not linger in freed memory. */
            memset(e->secret, 0, strlen(e->secret));
            free(e);
        }
    }
    ac->n = 0;
}

void auth_cache_free(auth_cache_t *ac)
{
    if (ac == NULL)
        return;
    auth_cache_clear(ac);
    free(ac);
}

int auth_cache_get(auth_cache_t *ac, const char *secret, uint64_t now_ms, struct auth *out)
{
    struct entry **pp = &ac->buckets[hash(secret)];
    for (; *pp != NULL; pp = &(*pp)->next) {
        struct entry *e = *pp;
        if (strcmp(e->secret, secret) != 0)
            continue;
        if (e->expires_ms <= now_ms) {
            *pp = e->next;
            free(e);
            ac->n--;
            return 0;
        }
        *out = e->auth;
        return 1;
    }
    return 0;
}

void auth_cache_put(auth_cache_t *ac, const char *secret, uint64_t now_ms, const struct auth *a)
{
    struct auth tmp;
    if (auth_cache_get(ac, secret, now_ms, &tmp))
        return;
    if (ac->n >= MAX_ENTRIES)
        auth_cache_clear(ac);
    size_t len = strlen(secret);
    struct entry *e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return;
    memcpy(e->secret, secret, len + 1);
    e->auth = *a;
    e->expires_ms = now_ms + TTL_MS;
    unsigned h = hash(secret);
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
