/*
 * test_conn_accept.c: conn_accept when memory runs out (issue 13, item 9).
 *
 * The server's convention is to abort on allocation failure (call_alloc,
 * conn_write, ...). conn_accept used to return instead, leaving the
 * connection unaccepted: libuv then stops accepting on that listener and the
 * server, still running, serves nobody new. Here a child process runs a
 * listener whose conn_accept cannot allocate (sentra__conn_calloc made to
 * fail); a client connects; the child must die of SIGABRT, not keep running.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "server.h"

static void *no_memory(size_t n, size_t size)
{
    (void)n;
    (void)size;
    return NULL;
}

static void on_connection(uv_stream_t *listener, int status)
{
    if (status == 0)
        conn_accept(listener->data, listener);
}

/* The child: a listener on 127.0.0.1 whose port goes down the pipe. */
static void child(int out)
{
    static server_t srv;
    static config_t cfg;
    static uv_tcp_t tcp;
    struct sockaddr_in addr;
    uv_loop_t *loop = uv_default_loop();

    cfg.max_connections = 10;
    cfg.idle_timeout_ms = 1000;
    cfg.keepalive_ms = 1000;
    cfg.max_frame = 65536;
    srv.loop = loop;
    srv.cfg = &cfg;
    uv_tcp_init(loop, &tcp);
    tcp.data = &srv;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&tcp, (struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&tcp, 16, on_connection) != 0)
        _exit(3);
    struct sockaddr_in bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&tcp, (struct sockaddr *)&bound, &len);
    int port = ntohs(bound.sin_port);
    if (write(out, &port, sizeof(port)) != (ssize_t)sizeof(port))
        _exit(4);
    close(out);
    sentra__conn_calloc = no_memory;
    /* Returns only if conn_accept gave up quietly and the loop ran dry. */
    for (;;)
        uv_run(loop, UV_RUN_DEFAULT);
}

static void test_accept_without_memory_aborts(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    int port = 0;
    assert_int_equal(read(fds[0], &port, sizeof(port)), (ssize_t)sizeof(port));
    close(fds[0]);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);

    /* Up to 5 s for the child to end. */
    int status = 0, done = 0;
    for (int i = 0; i < 500 && !done; i++) {
        done = waitpid(pid, &status, WNOHANG) == pid;
        if (!done) {
            struct timespec ts = { 0, 10 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    close(fd);
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("conn_accept returned without memory: the server ran on, accepting nothing");
    }
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_without_memory_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
