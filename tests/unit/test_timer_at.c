/*
 * test_timer_at.c: timer_at (server/core/timer_at.c) never runs a timer
 * before its moment, even when it is armed late in a long loop iteration
 * (the loop's cached time is then stale). Call deadlines and long-poll
 * waits use it: a deadline that expired early answered DEADLINE_EXCEEDED
 * to a stream (sentra-cli sync stream --seconds) before the client's own
 * end, seen under load in test_cli.sh. Only lower bounds on time are
 * asserted: a loaded machine makes timers late, never early.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "timer_at.h"

typedef struct {
    uv_timer_t arm;       /* runs first and stays busy, then arms `t` */
    uv_timer_t t;         /* the timer under test */
    uv_timer_t tick;      /* other work that wakes the loop every ms */
    uint64_t busy_ms;     /* how long the first callback keeps the loop */
    uint64_t wait_ms;     /* how far ahead `t` is armed */
    uint64_t at_ns;       /* the moment `t` is armed for */
    uint64_t fired_ns;    /* when `t` ran */
} fixture_t;

static void on_fire(uv_timer_t *h)
{
    fixture_t *f = h->data;
    f->fired_ns = uv_hrtime();
    uv_timer_stop(&f->tick);
}

static void on_tick(uv_timer_t *h)
{
    (void)h;
}

static void on_arm(uv_timer_t *h)
{
    fixture_t *f = h->data;
    /* A long iteration: uv_now() stays where it was when it began. */
    uint64_t until = uv_hrtime() + f->busy_ms * 1000000;
    while (uv_hrtime() < until)
        ;
    f->at_ns = uv_hrtime() + f->wait_ms * 1000000;
    timer_at(&f->t, on_fire, f->at_ns);
    /* A server's loop has other work: it wakes and refreshes its time
     * long before a timer's delay has passed (a loop with nothing else
     * would sleep the delay counted from the stale time, and hide it). */
    uv_timer_start(&f->tick, on_tick, 1, 1);
}

static void run(fixture_t *f)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &f->arm);
    uv_timer_init(&loop, &f->t);
    uv_timer_init(&loop, &f->tick);
    f->arm.data = f->t.data = f->tick.data = f;
    uv_timer_start(&f->arm, on_arm, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&f->arm, NULL);
    uv_close((uv_handle_t *)&f->t, NULL);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Armed 50 ms ahead after 200 ms of busy iteration: plain uv_timer_start
 * with 50 would run it at once (the loop believes 200 ms less time has
 * passed). */
static void test_not_early_after_long_iteration(void **state)
{
    fixture_t f = {.busy_ms = 200, .wait_ms = 50};
    run(&f);
    assert_true(f.fired_ns != 0);
    /* libuv keeps milliseconds: at most 1 ms before the moment. */
    if (f.fired_ns + 1000000 < f.at_ns)
        fail_msg("the timer ran %.1f ms early", (double)(f.at_ns - f.fired_ns) / 1e6);
}

/* A moment already past runs on the next iteration. */
static void test_past_moment_runs(void **state)
{
    fixture_t f = {.busy_ms = 0, .wait_ms = 0};
    run(&f);
    assert_true(f.fired_ns >= f.at_ns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_early_after_long_iteration),
        cmocka_unit_test(test_past_moment_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
