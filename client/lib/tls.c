/*
 * tls.c: libsentra's TLS (OpenSSL 3) for the connection engine (async.c).
 *
 * The engine owns the socket; a session here only turns bytes into bytes
 * through two memory BIOs: ciphertext read from the socket goes in
 * (sentra__tls_feed), plaintext comes out (sentra__tls_read), plaintext to
 * send goes in (sentra__tls_write) and the records to write come out
 * (sentra__tls_take). Nothing here blocks or touches a socket.
 *
 * Verification is always on: the chain must lead to a trusted CA (the
 * system store, or the CA file given) and, unless the caller turned it off
 * by its loud name, the certificate must name the host (DNS name or IP
 * address) the client connects to. The last session ticket the server gave
 * is offered on the next connection of the same handle (resumption).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"

#define ALPN_NATIVE "\x08sentra/1"   /* ALPN's wire form: a length, then the name */
#define ALPN_NATIVE_NAME "sentra/1"

struct sentra__tls_cfg {
    SSL_CTX *ctx;           /* trust, client certificate, versions */
    char *name;             /* the name checked in the certificate and sent as SNI */
    int name_is_ip;         /* name is an IP address: checked, not sent */
    int check_name;         /* 0 only with insecure_no_hostname_check */
    SSL_SESSION *session;   /* the newest session the server gave; offered next time */
};

struct sentra__tls {
    SSL *ssl;
    BIO *rbio, *wbio;       /* memory BIOs: ciphertext in, ciphertext out (owned by ssl) */
    sentra__tls_cfg_t *cfg; /* the handle's; not owned */
};

/* OpenSSL's error queue as text, emptied. */
static void ssl_errors(char *buf, size_t len)
{
    size_t off = 0;
    unsigned long e;
    buf[0] = 0;
    while ((e = ERR_get_error()) != 0 && off + 1 < len) {
        const char *r = ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
        if (!r)
            r = "unknown error";
        if (strstr(buf, r))
            continue;
        int n = snprintf(buf + off, len - off, "%s%s", off ? "; " : "", r);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    ERR_clear_error();
    if (!buf[0])
        snprintf(buf, len, "unknown error");
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* A new session (ticket) from the server: keep the newest. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    sentra__tls_cfg_t *cfg = SSL_get_app_data(ssl);
    if (!cfg)
        return 0;
    if (cfg->session)
        SSL_SESSION_free(cfg->session);
    cfg->session = sess;
    return 1; /* we keep the reference */
}

/* 0, or -1 with the reason in err (OpenSSL's own words for a missing file
 * are "system lib"). */
static int readable(const char *what, const char *path, char *err, size_t errlen)
{
    if (access(path, R_OK) == 0)
        return 0;
    snprintf(err, errlen, "TLS: cannot read the %s %s: %s", what, path, strerror(errno));
    return -1;
}

static const char *env_or(const char *v, const char *name)
{
    if (v)
        return v[0] ? v : NULL;
    const char *e = getenv(name);
    return e && e[0] ? e : NULL;
}

int sentra__tls_cfg_new(sentra__tls_cfg_t **out, const sentra_tls_opts_t *o, const char *host, char *err,
                        size_t errlen)
{
    char why[512];
    *out = NULL;
    sentra__tls_cfg_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return SENTRA_ENOMEM;
    const char *ca = env_or(o ? o->ca_file : NULL, "SENTRA_CA");
    const char *cert = env_or(o ? o->cert_file : NULL, "SENTRA_CERT");
    const char *key = env_or(o ? o->key_file : NULL, "SENTRA_KEY");
    const char *name = o && o->server_name && o->server_name[0] ? o->server_name : host;
    if (!key)
        key = cert;
    cfg->check_name = !(o && o->insecure_no_hostname_check);
    cfg->name = strdup(name ? name : "");
    if (!cfg->name)
        goto nomem;
    unsigned char addr[16];
    cfg->name_is_ip = inet_pton(AF_INET, cfg->name, addr) == 1 || inet_pton(AF_INET6, cfg->name, addr) == 1;

    ERR_clear_error();
    if (!(cfg->ctx = SSL_CTX_new(TLS_client_method())))
        goto nomem;
    SSL_CTX_set_min_proto_version(cfg->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(cfg->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(cfg->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_default_passwd_cb(cfg->ctx, no_passphrase);
    SSL_CTX_set_session_cache_mode(cfg->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(cfg->ctx, on_new_session);
    if ((ca && readable("CA file", ca, err, errlen)) || (cert && readable("client certificate", cert, err, errlen)) ||
        (key && readable("client key", key, err, errlen)))
        goto fail;
    if (ca) {
        if (SSL_CTX_load_verify_locations(cfg->ctx, ca, NULL) != 1) {
            ssl_errors(why, sizeof why);
            snprintf(err, errlen, "TLS: cannot load the CA file %s: %s", ca, why);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(cfg->ctx) != 1) {
        ssl_errors(why, sizeof why);
        snprintf(err, errlen, "TLS: cannot load the system's trusted CAs: %s", why);
        goto fail;
    }
    if (cert) {
        if (SSL_CTX_use_certificate_chain_file(cfg->ctx, cert) != 1) {
            ssl_errors(why, sizeof why);
            snprintf(err, errlen, "TLS: cannot load the client certificate %s: %s", cert, why);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(cfg->ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(cfg->ctx) != 1) {
            ssl_errors(why, sizeof why);
            snprintf(err, errlen, "TLS: cannot use the key %s with %s: %s (an unencrypted PEM key is needed)",
                     key, cert, why);
            goto fail;
        }
    }
    *out = cfg;
    return 0;

nomem:
    sentra__tls_cfg_free(cfg);
    return SENTRA_ENOMEM;
fail:
    sentra__tls_cfg_free(cfg);
    return SENTRA_ETLS;
}

void sentra__tls_cfg_free(sentra__tls_cfg_t *cfg)
{
    if (!cfg)
        return;
    if (cfg->session)
        SSL_SESSION_free(cfg->session);
    SSL_CTX_free(cfg->ctx);
    free(cfg->name);
    free(cfg);
}

sentra__tls_t *sentra__tls_new(sentra__tls_cfg_t *cfg)
{
    sentra__tls_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cfg = cfg;
    ERR_clear_error();
    if (!(t->ssl = SSL_new(cfg->ctx)) || !(t->rbio = BIO_new(BIO_s_mem())) || !(t->wbio = BIO_new(BIO_s_mem())))
        goto fail;
    /* An empty read BIO means "more later", not end of file. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_app_data(t->ssl, cfg);
    SSL_set_connect_state(t->ssl);
    if (SSL_set_alpn_protos(t->ssl, (const unsigned char *)ALPN_NATIVE, sizeof ALPN_NATIVE - 1) != 0)
        goto fail;
    if (!cfg->name_is_ip && cfg->name[0] && SSL_set_tlsext_host_name(t->ssl, cfg->name) != 1)
        goto fail;
    if (cfg->check_name) {
        X509_VERIFY_PARAM *p = SSL_get0_param(t->ssl);
        /* Only the subjectAltName counts, never a common name. */
        X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
        int ok = cfg->name_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(p, cfg->name)
                                 : X509_VERIFY_PARAM_set1_host(p, cfg->name, 0);
        if (ok != 1)
            goto fail;
    }
    if (cfg->session)
        SSL_set_session(t->ssl, cfg->session);
    ERR_clear_error();
    return t;

fail:
    ERR_clear_error();
    if (t->ssl)
        SSL_free(t->ssl); /* frees the BIOs once set */
    else {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
    }
    free(t);
    return NULL;
}

void sentra__tls_free(sentra__tls_t *t)
{
    if (!t)
        return;
    /* OpenSSL takes a session freed without a shutdown for a bad one and
     * marks it not resumable (ssl_clear_bad_session), the copy kept for
     * the next connection too. A connection the server ended (a GOAWAY,
     * an idle timeout) is not bad; a fatal TLS error marks its session
     * by itself. */
    if (SSL_is_init_finished(t->ssl))
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(t->ssl);
    free(t);
}

int sentra__tls_feed(sentra__tls_t *t, const uint8_t *data, size_t n)
{
    size_t done = 0;
    return BIO_write_ex(t->rbio, data, n, &done) == 1 && done == n ? 0 : SENTRA_ENOMEM;
}

/* A failed handshake or read: the words for it. */
static int tls_failure(sentra__tls_t *t, int e, char *err, size_t errlen)
{
    char why[512];
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK) {
        ERR_clear_error();
        snprintf(err, errlen, "TLS: the certificate of %s is not accepted: %s", t->cfg->name,
                 X509_verify_cert_error_string(vr));
        return SENTRA_ETLS;
    }
    if (e == SSL_ERROR_SSL) {
        ssl_errors(why, sizeof why);
        snprintf(err, errlen, "TLS with %s failed: %s", t->cfg->name, why);
        return SENTRA_ETLS;
    }
    ERR_clear_error();
    snprintf(err, errlen, "TLS with %s: the connection ended", t->cfg->name);
    return SENTRA_ECONNLOST;
}

int sentra__tls_handshake(sentra__tls_t *t, char *err, size_t errlen)
{
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        const unsigned char *p;
        unsigned n;
        SSL_get0_alpn_selected(t->ssl, &p, &n);
        if (n && !(n == sizeof ALPN_NATIVE_NAME - 1 && memcmp(p, ALPN_NATIVE_NAME, n) == 0)) {
            snprintf(err, errlen, "TLS with %s: the server chose the protocol \"%.*s\"", t->cfg->name, (int)n,
                     (const char *)p);
            return SENTRA_ETLS;
        }
        return 1;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return 0;
    return tls_failure(t, e, err, errlen);
}

int sentra__tls_read(sentra__tls_t *t, uint8_t *buf, size_t cap, size_t *got, char *err, size_t errlen)
{
    *got = 0;
    ERR_clear_error();
    if (SSL_read_ex(t->ssl, buf, cap, got) == 1)
        return 1;
    int e = SSL_get_error(t->ssl, 0);
    if (e == SSL_ERROR_WANT_READ)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(err, errlen, "closed by the server");
        return SENTRA_ECONNLOST;
    }
    return tls_failure(t, e, err, errlen);
}

int sentra__tls_write(sentra__tls_t *t, const uint8_t *data, size_t n)
{
    size_t done = 0;
    ERR_clear_error();
    if (n == 0)
        return 0;
    int r = SSL_write_ex(t->ssl, data, n, &done);
    ERR_clear_error();
    return r == 1 && done == n ? 0 : SENTRA_EIO;
}

size_t sentra__tls_pending(const sentra__tls_t *t)
{
    return BIO_ctrl_pending(t->wbio);
}

size_t sentra__tls_take(sentra__tls_t *t, uint8_t *dst, size_t n)
{
    size_t done = 0;
    if (BIO_read_ex(t->wbio, dst, n, &done) != 1)
        return 0;
    return done;
}

int sentra__tls_resumed(const sentra__tls_t *t)
{
    return SSL_session_reused(t->ssl);
}

void sentra__tls_close_notify(sentra__tls_t *t)
{
    ERR_clear_error();
    if (SSL_is_init_finished(t->ssl))
        SSL_shutdown(t->ssl);
    ERR_clear_error();
}
