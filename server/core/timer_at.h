/*
 * timer_at.h: a libuv timer armed for a moment on the uv_hrtime() clock.
 *
 * uv_timer_start counts its timeout from the loop's cached time
 * (uv_now), which libuv refreshes once a loop iteration. A callback that
 * arms a timer late in a long iteration (many requests in one read, a
 * big result, a process the machine has descheduled) would have it fire
 * early by as long as the iteration has run so far: a deadline of 50 ms
 * could expire after 10. timer_at refreshes the loop's time first and
 * rounds up, so the timer never runs before at_ns (to the millisecond
 * libuv keeps).
 */
#ifndef SENTRA_TIMER_AT_H
#define SENTRA_TIMER_AT_H

#include <stdint.h>

#include <uv.h>

void timer_at(uv_timer_t *t, uv_timer_cb cb, uint64_t at_ns);

#endif
