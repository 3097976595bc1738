/*
 * tcp_proxy.h: PostgreSQL over TCP on loopback for tests, and hosts that
 * misbehave.
 *
 * The test cluster listens on a Unix socket only. th_proxy_start() runs a
 * child process that accepts on 127.0.0.1 (a free port) and forwards each
 * connection to the cluster's socket, so a test can give sentrad or the
 * pool a TCP conninfo (multi-host lists, keepalives, name resolution).
 * Stopping the child with SIGSTOP (th_proxy_freeze) makes a silent host:
 * the kernel still accepts connections and data, nothing ever answers.
 *
 * Linked into every test program with the harness; libc and libpq only.
 * Functions returning int give 0 on success, -1 after printing why.
 */
#ifndef SENTRA_TEST_TCP_PROXY_H
#define SENTRA_TEST_TCP_PROXY_H

#include <stddef.h>
#include <sys/types.h>

typedef struct th_proxy {
    pid_t pid;      /* the forwarding child; 0 when not running */
    int port;       /* its TCP port on 127.0.0.1 */
} th_proxy_t;

/* The Unix socket path of a conninfo's server ("host=DIR port=P" gives
 * DIR/.s.PGSQL.P). */
int th_pg_socket_path(const char *conninfo, char *out, size_t outlen);

/* Starts forwarding 127.0.0.1:p->port to unix_path. The child dies with
 * the test (PR_SET_PDEATHSIG). */
int th_proxy_start(th_proxy_t *p, const char *unix_path);

/* SIGSTOP / SIGCONT the forwarder: a host that goes silent and comes back. */
void th_proxy_freeze(th_proxy_t *p);
void th_proxy_thaw(th_proxy_t *p);

/* Kills and reaps the forwarder (its connections drop). */
void th_proxy_stop(th_proxy_t *p);

/* A socket listening on 127.0.0.1 that never accepts: connections complete
 * (the kernel's backlog) but nothing is ever read or answered. Returns the
 * descriptor (the caller closes it) and sets *port; -1 on failure. */
int th_silent_listener(int *port);

/* A child that accepts on 127.0.0.1 and closes each connection at once (a
 * server that drops clients: libpq then goes on to its next host with a
 * new socket). Sets *port; returns the child's pid (th_child_stop), or -1. */
pid_t th_closing_listener(int *port);
void th_child_stop(pid_t pid);

/* A port on 127.0.0.1 where nothing listens (connections are refused). */
int th_closed_port(void);

#endif
