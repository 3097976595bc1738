/*
 * fuzz_tls.c: libFuzzer target for our TLS glue (transport/tls.c and its
 * seam in conn.c): the BIO pump that feeds ciphertext to OpenSSL and
 * queues its records, and the choice of protocol after the handshake (by
 * ALPN, or by the first plaintext bytes as in plaintext). OpenSSL's record
 * layer itself is not our code; what we give it, and what we do with what
 * it gives back, is.
 *
 * A real connection (on a socketpair, as fuzz_h2.c makes one) with a real
 * TLS session faces an OpenSSL client on memory BIOs in this process. The
 * input: byte 0 cuts the client's ciphertext into reads of 1..255 bytes (0:
 * whole); byte 1 picks the ALPN list the client offers (bits: h2,
 * http/1.1, sentra/1, an unknown name; none set: no ALPN); byte 2 the
 * mode: 0 handshake, then the rest as plaintext (the protocols see it);
 * 1 the rest as raw ciphertext instead of a handshake; 2 handshake, then
 * the rest as raw bytes inside the session (forged records). Checks: the
 * protocol chosen is the one ALPN agreed; every record the server sends
 * decrypts at the client (unless the client forged records itself);
 * nothing crashes or leaks. The server's certificate is made at start.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "db.h"
#include "log.h"
#include "server.h"
#include "tls.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_tls: %s:%d: check failed: %s\n",           \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)

static uv_loop_t tlsf_loop;
static config_t tlsf_cfg;
static server_t tlsf_srv;
static SSL_CTX *tlsf_client;
static char tlsf_dir[64] = "/tmp/sentra-fuzz-tls.XXXXXX";

/* A self-signed P-256 certificate for localhost, written to tlsf_dir. */
static void tlsf_make_cert(char *cert, char *key, size_t len)
{
    CHECK(mkdtemp(tlsf_dir) != NULL);
    snprintf(cert, len, "%s/cert.pem", tlsf_dir);
    snprintf(key, len, "%s/key.pem", tlsf_dir);
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    CHECK(pk != NULL && x != NULL);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, pk);
    CHECK(X509_sign(x, pk, EVP_sha256()) > 0);
    FILE *f = fopen(cert, "w");
    CHECK(f != NULL && PEM_write_X509(f, x) == 1);
    fclose(f);
    f = fopen(key, "w");
    CHECK(f != NULL && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static void tlsf_cleanup(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/cert.pem", tlsf_dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/key.pem", tlsf_dir);
    unlink(p);
    rmdir(tlsf_dir);
}

static void tlsf_setup(void)
{
    static int done;
    static char cert[128], key[128];
    if (done)
        return;
    done = 1;
    char *argv[] = { (char *)"fuzz_tls", NULL };
    int nrest = 0;
    CHECK(config_load(&tlsf_cfg, 1, argv, &nrest) == 0);
    log_set_level("error");
    tlsf_make_cert(cert, key, sizeof(cert));
    atexit(tlsf_cleanup);
    tlsf_cfg.tls_cert = strdup(cert);
    tlsf_cfg.tls_key = strdup(key);
    uv_loop_init(&tlsf_loop);
    tlsf_srv.loop = &tlsf_loop;
    tlsf_srv.cfg = &tlsf_cfg;
    tlsf_srv.auth = auth_cache_new();
    /* Nowhere to connect: queries fail, as in a database outage. */
    tlsf_srv.db = db_pool_new(&tlsf_loop, "host=/nonexistent-sentra-fuzz connect_timeout=1", 1, 1);
    tlsf_srv.tls = tls_server_new(&tlsf_cfg);
    CHECK(tlsf_srv.auth != NULL && tlsf_srv.db != NULL && tlsf_srv.tls != NULL);
    tlsf_client = SSL_CTX_new(TLS_client_method());
    CHECK(tlsf_client != NULL);
    SSL_CTX_set_verify(tlsf_client, SSL_VERIFY_NONE, NULL);   /* the glue is under test, not PKI */
}

/* What the server wrote to its socket so far, into the client's BIO. */
static void tlsf_pump_back(int fd, BIO *rbio)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            return;
        BIO_write(rbio, buf, (int)n);
    }
}

/* Gives the server data[0..len) as socket reads of chunk bytes. */
static void tlsf_feed(struct conn *c, const uint8_t *data, size_t len, size_t chunk)
{
    size_t off = 0;
    while (off < len && tlsf_srv.nconns > 0 && c->state != CONN_CLOSING && !(c->flags & CONN_F_CLOSE_AFTER)) {
        size_t n = len - off < chunk ? len - off : chunk;
        sentra__tls_recv(c, data + off, n);
        off += n;
        uv_run(&tlsf_loop, UV_RUN_NOWAIT);
    }
}

/* The client's pending records, to the server. */
static void tlsf_flush_client(struct conn *c, BIO *wbio, size_t chunk)
{
    uint8_t buf[65536];
    int n;
    while ((n = BIO_read(wbio, buf, sizeof(buf))) > 0)
        tlsf_feed(c, buf, (size_t)n, chunk);
}

static const conn_proto_t *tlsf_proto_for(const unsigned char *p, unsigned n)
{
    if (n == 2 && memcmp(p, "h2", 2) == 0)
        return &sentra__h2_proto;
    if (n == 8 && memcmp(p, "http/1.1", 8) == 0)
        return &sentra__http1_proto;
    if (n == 8 && memcmp(p, "sentra/1", 8) == 0)
        return &sentra__native_proto;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tlsf_setup();
    if (size < 3)
        return 0;
    size_t chunk = data[0] ? data[0] : (size_t)-1;
    unsigned alpn_bits = data[1];
    unsigned mode = data[2] % 3;
    const uint8_t *rest = data + 3;
    size_t rlen = size - 3;

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct conn *c = calloc(1, sizeof(*c));
    CHECK(c != NULL);
    uv_pipe_init(&tlsf_loop, &c->h.pipe, 0);
    CHECK(uv_pipe_open(&c->h.pipe, sv[0]) == 0);
    c->h.handle.data = c;
    c->srv = &tlsf_srv;
    c->handles = 2;
    uv_timer_init(&tlsf_loop, &c->timer);
    c->timer.data = c;
    c->next = tlsf_srv.conns;
    if (tlsf_srv.conns != NULL)
        tlsf_srv.conns->prev = c;
    tlsf_srv.conns = c;
    tlsf_srv.nconns++;
    snprintf(c->peer, sizeof(c->peer), "fuzz");
    c->opened_ms = c->last_read_ms = uv_now(&tlsf_loop);

    SSL *cl = SSL_new(tlsf_client);
    BIO *crd = BIO_new(BIO_s_mem()), *cwr = BIO_new(BIO_s_mem());
    CHECK(cl != NULL && crd != NULL && cwr != NULL);
    BIO_set_mem_eof_return(crd, -1);
    SSL_set_bio(cl, crd, cwr);
    SSL_set_connect_state(cl);
    unsigned char alpn[64];
    size_t alen = 0;
    static const char *const names[] = { "h2", "http/1.1", "sentra/1", "x-other/0" };
    for (int i = 0; i < 4; i++) {
        if (alpn_bits & (1u << i)) {
            size_t n = strlen(names[i]);
            alpn[alen++] = (unsigned char)n;
            memcpy(alpn + alen, names[i], n);
            alen += n;
        }
    }
    if (alen > 0)
        SSL_set_alpn_protos(cl, alpn, (unsigned)alen);

    CHECK(sentra__tls_accept(c) == 0);
    int established = 0, forged = 0;
    if (mode == 1) {
        /* Ciphertext that is not a handshake (or half of one). */
        tlsf_feed(c, rest, rlen, chunk);
    } else {
        for (int round = 0; round < 8 && !established && tlsf_srv.nconns > 0 && c->state != CONN_CLOSING;
             round++) {
            int r = SSL_do_handshake(cl);
            tlsf_flush_client(c, cwr, chunk);
            uv_run(&tlsf_loop, UV_RUN_NOWAIT);
            tlsf_pump_back(sv[1], crd);
            if (r == 1)
                established = 1;
        }
        ERR_clear_error();
        if (established && tlsf_srv.nconns > 0 && c->state != CONN_CLOSING) {
            /* The protocol ALPN agreed was started; without one, none yet. */
            const unsigned char *sel;
            unsigned sn;
            SSL_get0_alpn_selected(cl, &sel, &sn);
            /* (The server's side may still be between its Finished and
             * the client's; drive it once more.) */
            tlsf_flush_client(c, cwr, chunk);
            uv_run(&tlsf_loop, UV_RUN_NOWAIT);
            if (tlsf_srv.nconns > 0 && c->state != CONN_CLOSING && !sentra__tls_handshaking(c))
                CHECK(c->proto == tlsf_proto_for(sel, sn) || (sn == 0 && c->proto == NULL));
            if (mode == 0) {
                size_t off = 0;
                while (off < rlen) {
                    size_t n = rlen - off < 4096 ? rlen - off : 4096;
                    if (SSL_write(cl, rest + off, (int)n) <= 0)
                        break;
                    off += n;
                }
                tlsf_flush_client(c, cwr, chunk);
            } else {
                forged = 1;
                tlsf_feed(c, rest, rlen, chunk);
            }
        }
    }
    for (int i = 0; i < 4 && tlsf_srv.nconns > 0; i++) {
        uv_run(&tlsf_loop, UV_RUN_NOWAIT);
        tlsf_pump_back(sv[1], crd);
    }
    if (tlsf_srv.nconns > 0)
        conn_close(c);
    while (tlsf_srv.nconns > 0)
        uv_run(&tlsf_loop, UV_RUN_NOWAIT);
    tlsf_pump_back(sv[1], crd);
    close(sv[1]);
    /* Every record the server sent opens at the client: application data,
     * alerts, tickets. A client that forged records itself may see the
     * server's alert about them, which is fine too. */
    if (established && !forged) {
        uint8_t buf[16384];
        for (;;) {
            ERR_clear_error();
            int r = SSL_read(cl, buf, sizeof(buf));
            if (r > 0)
                continue;
            int e = SSL_get_error(cl, r);
            unsigned long err = ERR_peek_error();
            /* An alert the server sent about the handshake is allowed, a
             * record that does not decrypt is not. */
            CHECK(e != SSL_ERROR_SSL || ERR_GET_REASON(err) != SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC);
            break;
        }
    }
    ERR_clear_error();
    SSL_free(cl);
    return 0;
}
