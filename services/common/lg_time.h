/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_time: the clocks, in one place. Deadlines, timeouts and durations use the monotonic
 * clock (never the wall clock, which jumps); only timestamps that leave the process (billing
 * records, log lines) use the wall clock.
 *
 * Thread: any. No state, no errors (clock_gettime on these clocks cannot fail on Linux).
 */
#ifndef LG_TIME_H
#define LG_TIME_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds / microseconds. */
int64_t lg_time_mono_ms(void);
int64_t lg_time_mono_us(void);

/* CLOCK_REALTIME (Unix epoch) in milliseconds. */
int64_t lg_time_wall_ms(void);

#endif /* LG_TIME_H */
