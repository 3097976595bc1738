/*
 * tls.c: TLS on client connections, with OpenSSL 3, in the event loop
 * (see tls.h for the seam with conn.c).
 *
 * The session sits on a BIO of our own that reads from and writes to
 * memory: reading, it hands OpenSSL the bytes of the current socket read
 * (no copy into a BIO buffer); writing, it appends OpenSSL's records to a
 * malloc'ed buffer that becomes the socket write's buffer (no copy out of
 * one). OpenSSL's BIO_s_mem would do the same with two more copies and,
 * worse, keeps its buffers at their largest size for the connection's
 * life: 64 KiB after a single full read, which 10,000 idle connections
 * cannot afford. With our BIO and SSL_MODE_RELEASE_BUFFERS an idle
 * established connection holds only OpenSSL's session objects
 * (docs/DESIGN.md gives the measured figure; tests/integration/test_tls.c
 * checks it).
 *
 * Safe defaults, not settings: TLS 1.2 and 1.3 only, ECDHE with AEAD
 * ciphers only, no compression, no renegotiation, no 0-RTT, session
 * tickets (resumption without a server-side cache) under keys that rotate
 * every TICKET_ROTATE_S and are kept across certificate reloads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "server.h"
#include "tls.h"

/* TLS 1.2: ECDHE key exchange and AEAD ciphers only (Mozilla's
 * "intermediate" list without DHE); TLS 1.3: its three AEAD suites. */
#define TLS12_CIPHERS                                                       \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"            \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"            \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"

#define SESSION_LIFETIME_S 7200        /* a ticket resumes a session this long */
#define TICKET_ROTATE_S (12 * 3600)    /* a new ticket key this often; the last one still opens */
#define RECORD_MAX 16384               /* plaintext of one TLS record */
#define RECORD_OVERHEAD 64             /* header, nonce, tag, padding of one record, at most */
#define CERT_WARN_DAYS 30              /* warn when the certificate expires sooner */

/*
 * The protocols ALPN may name, in the server's order of preference: a
 * client that offers h2 and http/1.1 (browsers, curl, buf, connect-go)
 * gets HTTP/2, which serves everything HTTP/1.1 does (gRPC besides).
 */
static const struct {
    const char *name;
    const conn_proto_t *proto;
} alpn_protos[] = {
    { "h2", &sentra__h2_proto },            /* gRPC, Connect, /healthz, the web pages */
    { "http/1.1", &sentra__http1_proto },   /* Connect, /healthz, the web pages */
    { "sentra/1", &sentra__native_proto },  /* the native framing (docs/PROTOCOL.md) */
};
/* The same list in ALPN's wire format (a length byte before each name). */
static const unsigned char alpn_wire[] = "\x02h2\x08http/1.1\x08sentra/1";

/* One session ticket key (RFC 5077's layout, as OpenSSL uses it). */
struct ticket_key {
    unsigned char name[16];     /* sent in the ticket: which key sealed it */
    unsigned char aes[32];      /* AES-256-CBC key */
    unsigned char hmac[32];     /* HMAC-SHA256 key */
    time_t created;             /* wall clock; rotation goes by age */
    int valid;                  /* set */
};

struct tls_server {
    const config_t *cfg;        /* the file names (--tls-*); not owned */
    SSL_CTX *ctx;               /* for new connections; open ones hold their own reference */
    BIO_METHOD *bio_method;     /* our memory BIO (below); outlives every connection */
    EVP_CIPHER *ticket_cipher;  /* AES-256-CBC, fetched once (an implicit fetch per ticket costs) */
    struct ticket_key keys[2];  /* [0] seals new tickets, [1] the one before still opens */
    unsigned reloads;           /* successful SIGHUP reloads */
    uint8_t plain[RECORD_MAX];  /* one record's plaintext on its way to the protocol; one
                                 * loop uses it, never re-entered (conn.h: reads come only
                                 * from libuv's read callback) */
};

/* A connection's TLS state. */
struct tls_conn {
    SSL *ssl;                   /* the session */
    struct conn *conn;          /* owner */
    const uint8_t *in;          /* ciphertext of the read being handled (not owned) */
    size_t in_len;              /* how much of it OpenSSL has not taken */
    uint8_t *out;               /* records OpenSSL wrote, not yet queued; malloc'ed */
    size_t out_len, out_cap;    /* bytes in out, bytes allocated */
    unsigned established : 1;   /* handshake done */
    unsigned shutdown_sent : 1; /* our close_notify went (nothing may follow) */
    unsigned failed : 1;        /* a TLS error: the connection is closing */
};

/* ---------------------------------------------------------------- errors */

/* OpenSSL's error queue as "reason; reason" (oldest first), emptied. */
static const char *ssl_errors(char *buf, size_t len)
{
    size_t off = 0;
    unsigned long e;
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        const char *r = ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
        char tmp[64];
        if (r == NULL) {
            snprintf(tmp, sizeof(tmp), "error %lu", e);
            r = tmp;
        }
        if (strstr(buf, r) != NULL)
            continue;
        int n = snprintf(buf + off, len - off, "%s%s", off ? "; " : "", r);
        if (n < 0 || (size_t)n >= len - off)
            break;
        off += (size_t)n;
    }
    ERR_clear_error();
    if (off == 0)
        snprintf(buf, len, "unknown error");
    /* A log value in double quotes: keep it free of them. */
    for (char *p = buf; *p; p++)
        if (*p == '"')
            *p = '\'';
    return buf;
}

/* ---------------------------------------------------------------- our BIO */

static int bio_write(BIO *b, const char *data, int len)
{
    struct tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    size_t need = t->out_len + (size_t)len;
    if (need > t->out_cap) {
        size_t cap = t->out_cap ? t->out_cap : 512;
        while (cap < need)
            cap *= 2;
        uint8_t *p = realloc(t->out, cap);
        if (p == NULL)
            abort();    /* as everywhere in the server */
        t->out = p;
        t->out_cap = cap;
    }
    memcpy(t->out + t->out_len, data, (size_t)len);
    t->out_len += (size_t)len;
    return len;
}

static int bio_read(BIO *b, char *out, int len)
{
    struct tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (t->in_len == 0) {
        /* Nothing more in this read: OpenSSL keeps a partial record and
         * asks again at the next one. */
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = t->in_len < (size_t)len ? t->in_len : (size_t)len;
    memcpy(out, t->in, n);
    t->in += n;
    t->in_len -= n;
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct tls_conn *t = BIO_get_data(b);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;       /* every write is already "out" */
    case BIO_CTRL_PENDING:
        return t != NULL ? (long)t->in_len : 0;
    case BIO_CTRL_WPENDING:
        return 0;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int bio_destroy(BIO *b)
{
    BIO_set_data(b, NULL);
    return 1;
}

static BIO_METHOD *bio_method_new(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sentra conn");
    if (m == NULL || !BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create) ||
        !BIO_meth_set_destroy(m, bio_destroy)) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* ---------------------------------------------------------------- session tickets */

static int ticket_key_new(struct ticket_key *k, time_t now)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
        return -1;
    k->created = now;
    k->valid = 1;
    return 0;
}

static int ticket_mac(EVP_MAC_CTX *hctx, struct ticket_key *k)
{
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->hmac, sizeof(k->hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

/*
 * OpenSSL's session ticket callback: seals new tickets with the current
 * key, opens tickets sealed by the current or the previous one, and always
 * asks for a new ticket then. OpenSSL's own keys would live as long as the
 * SSL_CTX: never rotated, and lost at every certificate reload.
 */
static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    tls_server_t *ts = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
    time_t now = time(NULL);
    if (enc) {
        if (now - ts->keys[0].created >= TICKET_ROTATE_S || now < ts->keys[0].created) {
            struct ticket_key k;
            if (ticket_key_new(&k, now) != 0)
                return -1;
            ts->keys[1] = ts->keys[0];
            ts->keys[0] = k;
            log_info("tls_ticket_key_rotated", "every_s=%d", TICKET_ROTATE_S);
        }
        struct ticket_key *k = &ts->keys[0];
        memcpy(key_name, k->name, sizeof(k->name));
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(ts->ticket_cipher)) != 1 ||
            EVP_EncryptInit_ex(cctx, ts->ticket_cipher, NULL, k->aes, iv) != 1 || ticket_mac(hctx, k) != 1)
            return -1;
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        struct ticket_key *k = &ts->keys[i];
        if (!k->valid || memcmp(key_name, k->name, sizeof(k->name)) != 0)
            continue;
        if (EVP_DecryptInit_ex(cctx, ts->ticket_cipher, NULL, k->aes, iv) != 1 || ticket_mac(hctx, k) != 1)
            return -1;
        /* 2: valid, and a new ticket goes out. TLS 1.3 sends tickets after
         * a resumption only then (and a client uses one ticket once); in
         * TLS 1.2 it moves clients onto the current key. */
        return 2;
    }
    return 0;   /* unknown key (rotated out, or another server's): a full handshake */
}

/* ---------------------------------------------------------------- the context */

static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)s;
    (void)arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, alpn_wire, sizeof(alpn_wire) - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    /* None of ours: go on without ALPN; the first bytes will tell. */
    return SSL_TLSEXT_ERR_NOACK;
}

/* Encrypted keys would make OpenSSL prompt on the terminal, blocking the
 * loop: refuse them instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static void asn1_time_text(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "?");
}

/* What a loaded context serves, for log lines. */
struct cert_info {
    char subject[256];
    char issuer[256];
    char not_after[32];
    int days_left;
};

static void cert_describe(X509 *x, struct cert_info *ci)
{
    memset(ci, 0, sizeof(*ci));
    X509_NAME_oneline(X509_get_subject_name(x), ci->subject, sizeof(ci->subject));
    X509_NAME_oneline(X509_get_issuer_name(x), ci->issuer, sizeof(ci->issuer));
    asn1_time_text(X509_get0_notAfter(x), ci->not_after, sizeof(ci->not_after));
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) == 1)
        ci->days_left = days;
    for (char *p = ci->subject; *p; p++)
        if (*p == '"')
            *p = '\'';
    for (char *p = ci->issuer; *p; p++)
        if (*p == '"')
            *p = '\'';
}

/* 0, or -1 with why set (OpenSSL's words for a missing file are "system
 * lib"). */
static int readable(const char *what, const char *path, char *why, size_t whylen)
{
    if (access(path, R_OK) == 0)
        return 0;
    snprintf(why, whylen, "cannot read the %s %s: %s", what, path, strerror(errno));
    return -1;
}

/* A new context from the files cfg names, or NULL with *why set. */
static SSL_CTX *ctx_build(tls_server_t *ts, struct cert_info *ci, char *why, size_t whylen)
{
    const config_t *cfg = ts->cfg;
    const char *key = cfg->tls_key != NULL && cfg->tls_key[0] ? cfg->tls_key : cfg->tls_cert;
    const char *ca = cfg->tls_client_ca != NULL && cfg->tls_client_ca[0] ? cfg->tls_client_ca : NULL;
    char err[512];
    if (readable("certificate", cfg->tls_cert, why, whylen) != 0 || readable("key", key, why, whylen) != 0 ||
        (ca != NULL && readable("client CA", ca, why, whylen) != 0))
        return NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(why, whylen, "SSL_CTX_new: %s", ssl_errors(err, sizeof(err)));
        return NULL;
    }
    SSL_CTX_set_app_data(ctx, ts);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 || SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
        snprintf(why, whylen, "TLS settings: %s", ssl_errors(err, sizeof(err)));
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_PRIORITIZE_CHACHA);
    /* Idle connections give their record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Resumption by tickets only: no session cache to bound. No 0-RTT
     * (max early data stays 0): early data can be replayed. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_timeout(ctx, SESSION_LIFETIME_S);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"sentrad", 7);
    /* One TLS 1.3 ticket per handshake, not OpenSSL's two: a client
     * resumes one connection at a time, and each ticket costs a seal. */
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, ts);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);

    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        ssl_errors(err, sizeof(err));
        snprintf(why, whylen, "certificate %s: %s%s", cfg->tls_cert, err,
                 strstr(err, "no start line") != NULL ? " (not a PEM certificate)" : "");
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ssl_errors(err, sizeof(err));
        if (strstr(err, "mismatch") != NULL)
            snprintf(why, whylen, "key %s does not match certificate %s: %s", key, cfg->tls_cert, err);
        else
            snprintf(why, whylen, "key %s: %s (an unencrypted PEM key is needed)", key, err);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(why, whylen, "key %s does not match certificate %s: %s", key, cfg->tls_cert,
                 ssl_errors(err, sizeof(err)));
        goto fail;
    }
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    cert_describe(leaf, ci);
    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
        char nb[32];
        asn1_time_text(X509_get0_notBefore(leaf), nb, sizeof(nb));
        snprintf(why, whylen, "certificate %s (%s) is not valid before %s", cfg->tls_cert, ci->subject, nb);
        goto fail;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
        snprintf(why, whylen, "certificate %s (%s) expired at %s", cfg->tls_cert, ci->subject, ci->not_after);
        goto fail;
    }
    if (cfg->tls_client_ca != NULL && cfg->tls_client_ca[0]) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_client_ca);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            snprintf(why, whylen, "client CA %s: %s", cfg->tls_client_ca, ssl_errors(err, sizeof(err)));
            goto fail;
        }
        /* Sent in the CertificateRequest, so that a client picks a
         * certificate of this CA. */
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    ERR_clear_error();
    return ctx;

fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

static void log_loaded(const char *event, const tls_server_t *ts, const struct cert_info *ci)
{
    const config_t *cfg = ts->cfg;
    log_info(event, "cert=%s subject=\"%s\" issuer=\"%s\" not_after=%s days_left=%d client_ca=%s",
             cfg->tls_cert, ci->subject, ci->issuer, ci->not_after, ci->days_left,
             cfg->tls_client_ca != NULL && cfg->tls_client_ca[0] ? cfg->tls_client_ca : "-");
    if (ci->days_left < CERT_WARN_DAYS)
        log_warn("tls_cert_expires_soon", "cert=%s subject=\"%s\" not_after=%s days_left=%d", cfg->tls_cert,
                 ci->subject, ci->not_after, ci->days_left);
}

tls_server_t *tls_server_new(const config_t *cfg)
{
    tls_server_t *ts = calloc(1, sizeof(*ts));
    struct cert_info ci;
    char why[1024];
    if (ts == NULL)
        return NULL;
    ts->cfg = cfg;
    if ((ts->bio_method = bio_method_new()) == NULL || ticket_key_new(&ts->keys[0], time(NULL)) != 0 ||
        (ts->ticket_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL) {
        log_error("tls_failed", "reason=\"OpenSSL initialisation failed\"");
        goto fail;
    }
    if ((ts->ctx = ctx_build(ts, &ci, why, sizeof(why))) == NULL) {
        log_error("tls_cert_refused", "reason=\"%s\"", why);
        goto fail;
    }
    log_loaded("tls_loaded", ts, &ci);
    return ts;

fail:
    EVP_CIPHER_free(ts->ticket_cipher);
    BIO_meth_free(ts->bio_method);
    free(ts);
    return NULL;
}

int tls_server_reload(tls_server_t *ts)
{
    struct cert_info ci;
    char why[1024];
    SSL_CTX *ctx = ctx_build(ts, &ci, why, sizeof(why));
    if (ctx == NULL) {
        struct cert_info old;
        cert_describe(SSL_CTX_get0_certificate(ts->ctx), &old);
        log_error("tls_reload_refused", "reason=\"%s\" kept_subject=\"%s\" kept_not_after=%s", why,
                  old.subject, old.not_after);
        return -1;
    }
    /* Connections open now keep the old context (their SSL holds a
     * reference); it goes with the last of them. */
    SSL_CTX_free(ts->ctx);
    ts->ctx = ctx;
    ts->reloads++;
    log_loaded("tls_reloaded", ts, &ci);
    return 0;
}

void tls_server_free(tls_server_t *ts)
{
    if (ts == NULL)
        return;
    SSL_CTX_free(ts->ctx);
    BIO_meth_free(ts->bio_method);
    EVP_CIPHER_free(ts->ticket_cipher);
    OPENSSL_cleanse(ts->keys, sizeof(ts->keys));
    free(ts);
}

int tls_server_verifies_clients(const tls_server_t *ts)
{
    return ts->cfg->tls_client_ca != NULL && ts->cfg->tls_client_ca[0];
}

/* ---------------------------------------------------------------- a connection */

/* Queues what OpenSSL wrote (the buffer goes to the socket's queue). */
static void flush_out(struct conn *c)
{
    struct tls_conn *t = c->tls;
    if (t->out_len == 0)
        return;
    uint8_t *buf = t->out;
    size_t len = t->out_len;
    /* conn.c counts len bytes (and its overhead) as waiting: the buffer
     * must not hold much more. A shrinking realloc stays in place. */
    if (t->out_cap - len > 256) {
        uint8_t *p = realloc(buf, len);
        if (p != NULL)
            buf = p;
    }
    t->out = NULL;
    t->out_len = t->out_cap = 0;
    sentra__conn_write_raw(c, buf, len);
}

/* A TLS error: one log line, the alert OpenSSL prepared, then close. */
static void fail(struct conn *c, const char *event)
{
    struct tls_conn *t = c->tls;
    char err[512];
    long vr = SSL_get_verify_result(t->ssl);
    t->failed = 1;
    ssl_errors(err, sizeof(err));
    if (vr != X509_V_OK && tls_server_verifies_clients(c->srv->tls))
        log_info(event, "peer=%s reason=\"%s\" verify=\"%s\"", c->peer, err,
                 X509_verify_cert_error_string(vr));
    else
        log_info(event, "peer=%s reason=\"%s\"", c->peer, err);
    flush_out(c);
    /* A lingering close: the alert must not be lost to a reset, which
     * closing with the client's bytes unread would cause. */
    if (c->state != CONN_CLOSING)
        conn_linger_close(c);
}

static const char *alpn_of(SSL *ssl, char *buf, size_t len)
{
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    if (n == 0)
        return "-";
    snprintf(buf, len, "%.*s", (int)n, (const char *)p);
    return buf;
}

/* The handshake is done: the protocol ALPN named starts (none: the first
 * bytes choose, as in plaintext). Returns 0, or -1 when c is closing. */
static int established(struct conn *c)
{
    struct tls_conn *t = c->tls;
    char alpn[32];
    t->established = 1;
    alpn_of(t->ssl, alpn, sizeof(alpn));
    if (log_min_level <= LOG_DEBUG) {
        char subj[256] = "-";
        X509 *peer = SSL_get0_peer_certificate(t->ssl);
        if (peer != NULL)
            X509_NAME_oneline(X509_get_subject_name(peer), subj, sizeof(subj));
        log_debug("tls_established", "peer=%s version=%s cipher=%s alpn=%s resumed=%d client_cert=\"%s\"",
                  c->peer, SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl), alpn,
                  SSL_session_reused(t->ssl), subj);
    }
    for (size_t i = 0; i < sizeof(alpn_protos) / sizeof(alpn_protos[0]); i++)
        if (strcmp(alpn, alpn_protos[i].name) == 0)
            return conn_choose_proto(c, alpn_protos[i].proto);
    return 0;
}

int sentra__tls_accept(struct conn *c)
{
    tls_server_t *ts = c->srv->tls;
    struct tls_conn *t = calloc(1, sizeof(*t));
    if (t == NULL)
        abort();
    ERR_clear_error();
    BIO *bio = NULL;
    t->conn = c;
    if ((t->ssl = SSL_new(ts->ctx)) == NULL || (bio = BIO_new(ts->bio_method)) == NULL) {
        char err[256];
        log_warn("tls_failed", "peer=%s reason=\"%s\"", c->peer, ssl_errors(err, sizeof(err)));
        SSL_free(t->ssl);
        free(t);
        conn_close(c);
        return -1;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio);  /* the session owns it */
    SSL_set_accept_state(t->ssl);
    c->tls = t;
    return 0;
}

void sentra__tls_recv(struct conn *c, const uint8_t *data, size_t len)
{
    struct tls_conn *t = c->tls;
    tls_server_t *ts = c->srv->tls;
    if (t->failed)
        return;
    t->in = data;
    t->in_len = len;
    if (!t->established) {
        ERR_clear_error();
        int r = SSL_do_handshake(t->ssl);
        if (r == 1) {
            flush_out(c);   /* the server's last flight (TLS 1.2), tickets (1.3) */
            if (c->state == CONN_CLOSING || established(c) != 0 || c->state == CONN_CLOSING)
                goto out;
        } else {
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                flush_out(c);
                goto out;
            }
            if (e == SSL_ERROR_ZERO_RETURN) {
                conn_close(c);
                goto out;
            }
            fail(c, "tls_handshake_failed");
            goto out;
        }
    }
    /* Records of application data (and after-handshake messages: tickets
     * we sent are done, a KeyUpdate is answered). Everything is read now,
     * also while the protocol holds reading: the plaintext waits in the
     * connection's own buffer, bounded as in plaintext, and the socket is
     * not read meanwhile. */
    while (c->state != CONN_CLOSING && !(c->flags & (CONN_F_CLOSE_AFTER | CONN_F_NOREAD))) {
        size_t got = 0;
        ERR_clear_error();
        int r = SSL_read_ex(t->ssl, ts->plain, sizeof(ts->plain), &got);
        if (r == 1) {
            sentra__conn_plain(c, ts->plain, got);
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            flush_out(c);
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* The client's close_notify: it sends nothing more. What is
             * already queued (and answers finishing within the close
             * linger) still goes, then our close_notify (maybe_close). */
            flush_out(c);
            conn_close_after_write(c);
            break;
        }
        fail(c, "tls_error");
        break;
    }
out:
    t->in = NULL;
    t->in_len = 0;
}

void sentra__tls_send(struct conn *c, uint8_t *buf, size_t len)
{
    sentra__tls_write(c, buf, len);
    free(buf);
}

void sentra__tls_write(struct conn *c, const uint8_t *buf, size_t len)
{
    struct tls_conn *t = c->tls;
    if (len == 0 || !t->established || t->shutdown_sent || t->failed)
        return;
    /* Room for all the records at once: one allocation, the socket write's. */
    size_t need = t->out_len + len + (len / RECORD_MAX + 1) * RECORD_OVERHEAD;
    if (need > t->out_cap) {
        uint8_t *p = realloc(t->out, need);
        if (p == NULL)
            abort();
        t->out = p;
        t->out_cap = need;
    }
    size_t written = 0;
    ERR_clear_error();
    int r = SSL_write_ex(t->ssl, buf, len, &written);
    if (r != 1 || written != len) {
        fail(c, "tls_error");
        return;
    }
    flush_out(c);
}

int sentra__tls_close_notify(struct conn *c)
{
    struct tls_conn *t = c->tls;
    if (!t->established || t->shutdown_sent || t->failed)
        return 0;
    t->shutdown_sent = 1;
    ERR_clear_error();
    SSL_shutdown(t->ssl);   /* 0: ours is sent; we do not wait for the client's */
    ERR_clear_error();
    if (t->out_len == 0)
        return 0;
    flush_out(c);
    return 1;
}

int sentra__tls_handshaking(const struct conn *c)
{
    return c->tls != NULL && !c->tls->established;
}

void sentra__tls_conn_free(struct conn *c)
{
    struct tls_conn *t = c->tls;
    if (t == NULL)
        return;
    SSL_free(t->ssl);   /* and its BIO */
    free(t->out);
    free(t);
    c->tls = NULL;
}
