/* SPDX-License-Identifier: Apache-2.0 */
/*
 * drv_record: the realistic billing record of the shipper's tests and benchmarks
 * (ship_driver, bench_enqueue): request id req-<i>, ~1.5 KB of response with a few escapes,
 * messages with UTF-8 and escapes, ids, numbers, a temperature k/10 (~2.4 KB as a
 * JSONEachRow row), start times in November 2026 (one monthly partition).
 * Ownership: the record is returned owned (lg_record_free); NULL when out of memory.
 */
#ifndef DRV_RECORD_H
#define DRV_RECORD_H

#include <stdint.h>

struct lg_record;

struct lg_record *drv_record_make(int64_t i);

#endif /* DRV_RECORD_H */
