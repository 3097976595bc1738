/*
 * tls.h: TLS 1.2 and 1.3 on client connections (OpenSSL 3), between the
 * socket and the protocol.
 *
 * A connection whose first byte is a TLS handshake record (0x16) gets a
 * TLS session (conn.c calls sentra__tls_accept); from then on the bytes
 * read from the socket go through sentra__tls_recv, which hands the
 * plaintext to the connection as if it had been read (sentra__conn_plain),
 * and conn_write() hands the protocol's plaintext to sentra__tls_send,
 * which queues the records for the socket (sentra__conn_write_raw). The
 * write accounting of conn.c (wqueued, CONN_WQ_HIGH, the server's totals)
 * therefore counts the encrypted bytes that really wait: OpenSSL never
 * holds plaintext back, because its BIO (ours, below the session) accepts
 * every byte it is given.
 *
 * After the handshake ALPN names the protocol ("h2": gRPC and Connect over
 * HTTP/2, "http/1.1": Connect and the web pages, "sentra/1": the native
 * framing); a client that named
 * none gets the same sniffing as plaintext. Everything runs in the loop:
 * the session reads from and writes to memory, never a socket.
 *
 * The server's TLS state (tls_server_t: the SSL_CTX, the session ticket
 * keys) is reloaded on SIGHUP; open connections keep the context they
 * started with (OpenSSL counts its references), new ones get the new one.
 */
#ifndef SENTRA_TLS_H
#define SENTRA_TLS_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct conn;
struct config;

typedef struct tls_server tls_server_t;
struct tls_conn;

/* The first byte of every TLS connection: a handshake record. Native
 * frames start with 0 and HTTP with a letter. */
#define TLS_RECORD_HANDSHAKE 0x16

/* Loads --tls-cert, --tls-key and --tls-client-ca. Returns a new
 * tls_server_t (free with tls_server_free), or NULL after logging why
 * (unreadable or malformed files, a key that does not match, a
 * certificate that is not valid now). */
tls_server_t *tls_server_new(const struct config *cfg);

/* Loads the files again (SIGHUP). Returns 0 when the new certificate is in
 * use for new connections; -1 when it was refused (logged; the old one
 * stays). */
int tls_server_reload(tls_server_t *t);

/* Frees t; every connection that used it must be gone. NULL is a no-op. */
void tls_server_free(tls_server_t *t);

/* Whether mutual TLS is on (--tls-client-ca). */
int tls_server_verifies_clients(const tls_server_t *t);

/* ---------------------------------------------------------------- conn.c's seam */

/* Starts a TLS session on c (its first byte was TLS_RECORD_HANDSHAKE).
 * Returns 0, or -1 when it could not (logged; c is closing). */
int sentra__tls_accept(struct conn *c);

/* Bytes read from c's socket: decrypted and given to the connection
 * (sentra__conn_plain), answers to the handshake queued. On a TLS error
 * the connection is closed and a line logged. */
void sentra__tls_recv(struct conn *c, const uint8_t *data, size_t len);

/* conn_write() on a TLS connection: encrypts buf[0..len) and queues the
 * records; takes ownership of buf (freed before it returns). */
void sentra__tls_send(struct conn *c, uint8_t *buf, size_t len);

/* conn_write_copy() on a TLS connection: the same, data stays the
 * caller's (the records are made in the connection's own buffer). */
void sentra__tls_write(struct conn *c, const uint8_t *data, size_t len);

/* Queues a close_notify alert when the session is established and none
 * was sent; returns 1 when something was queued, else 0. Nothing may be
 * sent after it. */
int sentra__tls_close_notify(struct conn *c);

/* Whether c's handshake is still running (the handshake deadline). */
int sentra__tls_handshaking(const struct conn *c);

/* Frees c's TLS session (from conn.c's last close callback). */
void sentra__tls_conn_free(struct conn *c);

#endif
