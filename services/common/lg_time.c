/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_time.h"

#include <time.h>

static int64_t time_read(clockid_t id, int64_t per_s, int64_t ns_per_unit)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * per_s + ts.tv_nsec / ns_per_unit;
}

int64_t lg_time_mono_ms(void)
{
    return time_read(CLOCK_MONOTONIC, 1000, 1000000);
}

int64_t lg_time_mono_us(void)
{
    return time_read(CLOCK_MONOTONIC, 1000000, 1000);
}

int64_t lg_time_wall_ms(void)
{
    return time_read(CLOCK_REALTIME, 1000, 1000000);
}
