/* timer_at.c: see timer_at.h. */
#include "timer_at.h"

void timer_at(uv_timer_t *t, uv_timer_cb cb, uint64_t at_ns)
{
    uv_update_time(t->loop);
    uint64_t now = uv_hrtime();
    /* uv_now() is the millisecond part of uv_hrtime(): it may lag the
     * true time by almost 1 ms, so a rounded-up delay counted from it
     * ends at most that much before at_ns. */
    uint64_t ms = at_ns > now ? (at_ns - now + 999999) / 1000000 : 0;
    uv_timer_start(t, cb, ms, 0);
}
