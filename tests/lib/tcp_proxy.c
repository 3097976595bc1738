/*
 * tcp_proxy.c: the loopback TCP forwarder and misbehaving hosts of
 * tcp_proxy.h.
 *
 * The forwarder is one child process with one poll() loop; each direction
 * of each connection has a buffer, read only when empty and written as
 * the peer takes it, so neither side can block the other (a backend that
 * writes a large result while we write it a large query).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "tcp_proxy.h"

#define MAX_PAIRS 512
#define BUF 65536

int th_pg_socket_path(const char *conninfo, char *out, size_t outlen)
{
    char *err = NULL;
    PQconninfoOption *o = PQconninfoParse(conninfo, &err);
    if (o == NULL) {
        fprintf(stderr, "tcp_proxy: bad conninfo: %s\n", err ? err : "?");
        PQfreemem(err);
        return -1;
    }
    const char *host = NULL, *port = "5432";
    for (PQconninfoOption *p = o; p->keyword != NULL; p++) {
        if (strcmp(p->keyword, "host") == 0 && p->val != NULL)
            host = p->val;
        if (strcmp(p->keyword, "port") == 0 && p->val != NULL)
            port = p->val;
    }
    int r = -1;
    if (host != NULL && host[0] == '/') {
        snprintf(out, outlen, "%s/.s.PGSQL.%s", host, port);
        r = 0;
    } else {
        fprintf(stderr, "tcp_proxy: conninfo has no Unix socket host\n");
    }
    PQconninfoFree(o);
    return r;
}

static int listen_loopback(int *port, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

int th_silent_listener(int *port)
{
    int fd = listen_loopback(port, 64);
    if (fd < 0)
        perror("tcp_proxy: silent listener");
    return fd;
}

pid_t th_closing_listener(int *port)
{
    int fd = listen_loopback(port, 64);
    if (fd < 0) {
        perror("tcp_proxy: closing listener");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
            int c = accept(fd, NULL, NULL);
            if (c >= 0) {
                usleep(20000);      /* after libpq has polled at least once */
                close(c);
            }
        }
    }
    close(fd);
    return pid;
}

void th_child_stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

int th_closed_port(void)
{
    int port = 0;
    int fd = listen_loopback(&port, 1);
    if (fd < 0)
        return -1;
    close(fd);
    return port;
}

/* One direction of a forwarded connection. */
struct half {
    int from, to;
    char buf[BUF];
    size_t len, off;
};

struct pair {
    int used;
    struct half up, down;   /* client -> server, server -> client */
};

static int connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un su;
    memset(&su, 0, sizeof(su));
    su.sun_family = AF_UNIX;
    snprintf(su.sun_path, sizeof(su.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&su, sizeof(su)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void pair_close(struct pair *p)
{
    close(p->up.from);
    close(p->up.to);
    p->used = 0;
}

/* Moves what it can in one direction; returns -1 when the pair is done. */
static int half_step(struct half *h, short rev_from, short rev_to)
{
    if (h->len == 0 && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = read(h->from, h->buf, sizeof(h->buf));
        if (n <= 0)
            return n == 0 || (errno != EAGAIN && errno != EINTR) ? -1 : 0;
        h->len = (size_t)n;
        h->off = 0;
    }
    if (h->len > 0 && (rev_to & (POLLOUT | POLLHUP | POLLERR))) {
        ssize_t n = write(h->to, h->buf + h->off, h->len - h->off);
        if (n < 0)
            return errno != EAGAIN && errno != EINTR ? -1 : 0;
        h->off += (size_t)n;
        if (h->off == h->len)
            h->len = h->off = 0;
    }
    return 0;
}

static void proxy_run(int lfd, const char *path)
{
    static struct pair pairs[MAX_PAIRS];
    static struct pollfd pfd[1 + 2 * MAX_PAIRS];
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int n = 0;
        pfd[n++] = (struct pollfd){ lfd, POLLIN, 0 };
        for (int i = 0; i < MAX_PAIRS; i++) {
            struct pair *p = &pairs[i];
            if (!p->used)
                continue;
            /* fd a: the client; fd b: the server. */
            short ea = (short)((p->up.len == 0 ? POLLIN : 0) | (p->down.len ? POLLOUT : 0));
            short eb = (short)((p->down.len == 0 ? POLLIN : 0) | (p->up.len ? POLLOUT : 0));
            pfd[n++] = (struct pollfd){ p->up.from, ea, 0 };
            pfd[n++] = (struct pollfd){ p->up.to, eb, 0 };
        }
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        int k = 1;
        for (int i = 0; i < MAX_PAIRS; i++) {
            struct pair *p = &pairs[i];
            if (!p->used)
                continue;
            short ra = pfd[k++].revents, rb = pfd[k++].revents;
            if (half_step(&p->up, ra, rb) < 0 || half_step(&p->down, rb, ra) < 0)
                pair_close(p);
        }
        if (pfd[0].revents & POLLIN) {
            int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c < 0)
                continue;
            int s = connect_unix(path);
            int slot = -1;
            for (int i = 0; i < MAX_PAIRS && slot < 0; i++)
                if (!pairs[i].used)
                    slot = i;
            if (s < 0 || slot < 0) {
                close(c);
                if (s >= 0)
                    close(s);
                continue;
            }
            fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
            struct pair *p = &pairs[slot];
            memset(p, 0, sizeof(*p));
            p->used = 1;
            p->up.from = c;
            p->up.to = s;
            p->down.from = s;
            p->down.to = c;
        }
    }
}

int th_proxy_start(th_proxy_t *p, const char *unix_path)
{
    int port = 0;
    int lfd = listen_loopback(&port, 128);
    if (lfd < 0) {
        perror("tcp_proxy: listen");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("tcp_proxy: fork");
        close(lfd);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        proxy_run(lfd, unix_path);
        _exit(0);
    }
    close(lfd);
    p->pid = pid;
    p->port = port;
    return 0;
}

void th_proxy_freeze(th_proxy_t *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGSTOP);
}

void th_proxy_thaw(th_proxy_t *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGCONT);
}

void th_proxy_stop(th_proxy_t *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}
