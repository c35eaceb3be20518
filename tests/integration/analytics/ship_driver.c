/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ship_driver: a stand-in for llmgate-chat in the shipper's integration tests. Makes N
 * deterministic billing records (request ids req-<first+i>), hands them to a real
 * lg_shipper, and reports on stdout, one line per step:
 *   enqueued made=N accepted=A dropped=D
 *   spooled                      (every accepted record is in the spool and fsync'd)
 *   stats rows_shipped=.. dead_letters=.. dropped=.. retries=.. landed_on_check=.. drained=0|1
 * --expect FILE writes each record as the JSON line it should become (lg_record_encode_json)
 * so the test can compare every field with what ClickHouse holds. --inject-bad-row puts one
 * malformed row straight into the spool first (a row ClickHouse must reject). --hold keeps
 * shipping after "spooled" until SIGTERM, then drains like a service's SIGTERM hook
 * (prints "sigterm", drains within LG_SHIPPER_DRAIN_DEADLINE_MS, stats, exits).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drv_record.h"
#include "lg_buf.h"
#include "lg_cfg.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_log.h"
#include "lg_mem.h"
#include "lg_record.h"
#include "lg_shipper.h"
#include "lg_spool.h"
#include "lg_time.h"

struct drv {
    const char *url, *spool_dir, *expect, *log_level, *compression, *format, *bad_format;
    int64_t count, first, batch_rows, batch_bytes, batch_age_ms, spool_max, queue_cap, drain_ms,
        seg_bytes;
    int64_t bad_at, rate, steady_after_ms;
    bool hold, inject_bad, no_ship, metrics, premake;
};

/* Writes records [first, first + bad_at) straight into the spool, then one malformed row,
 * before the shipper starts; the main loop then enqueues the rest. So the bad row sits at
 * position bad_at + 1 of its batch, and the test sees whether ClickHouse's "(at row N)"
 * picks the right one. --bad-row-format json (the default): JSON rows and a row ClickHouse
 * rejects; rowbinary: RowBinary rows and the row of record "bad-1" cut 3 bytes short,
 * which the shipper must refuse itself (ClickHouse would read on into the next row). */
static int inject_bad_row(struct drv *d)
{
    struct lg_spool_opts so = {d->spool_dir,
                               d->spool_max > 0 ? (uint64_t)d->spool_max
                                                : LG_SPOOL_DEFAULT_MAX_BYTES,
                               d->seg_bytes > 0 ? (uint64_t)d->seg_bytes
                                                : LG_SPOOL_DEFAULT_SEGMENT_BYTES};
    lg_spool *sp = NULL;
    int rc = lg_spool_open(&sp, &so);
    if (rc != LG_OK) {
        return rc;
    }
    struct lg_buf row;
    lg_buf_init(&row, LG_RECORD_MAX_ROW_BYTES);
    bool rb = strcmp(d->bad_format, "rowbinary") == 0;
    for (int64_t i = 0; i < d->bad_at && rc == LG_OK; i++) {
        struct lg_record *r = drv_record_make(d->first + i);
        lg_buf_reset(&row);
        rc = r == NULL ? LG_ERR_NOMEM
             : rb      ? lg_record_encode_rowbinary(r, &row)
                       : lg_record_encode_row(r, &row);
        if (rc == LG_OK) {
            rc = lg_spool_append(sp, row.data, row.len);
        }
        lg_record_free(r);
    }
    /* prompt_tokens is Int64: a word there is rejected by ClickHouse (Code 27/72). */
    const char bad[] = "{\"request_id\":\"bad-1\",\"user_id\":\"user-bad\","
                       "\"prompt_tokens\":\"not-a-number\",\"start_time_ms\":1793491200000";
    if (rc == LG_OK && rb) {
        struct lg_record *r = drv_record_make(d->first + d->bad_at);
        lg_buf_reset(&row);
        rc = r != NULL ? lg_record_set_str(&r->request_id, "bad-1", 5) : LG_ERR_NOMEM;
        if (rc == LG_OK) {
            rc = lg_record_encode_rowbinary(r, &row);
        }
        if (rc == LG_OK) {
            rc = lg_spool_append(sp, row.data, row.len - 3);
        }
        lg_record_free(r);
    } else if (rc == LG_OK) {
        rc = lg_spool_append(sp, bad, sizeof(bad) - 1);
    }
    lg_buf_deinit(&row);
    lg_spool_close(sp);
    d->first += d->bad_at;
    d->count -= d->bad_at;
    return rc;
}

int main(int argc, char **argv)
{
    struct drv d;
    memset(&d, 0, sizeof(d));
    const struct lg_cfg_opt opts[] = {
        {"clickhouse-url", LG_CFG_STRING, &d.url, NULL, 0, 0, "ClickHouse URL"},
        {"spool-dir", LG_CFG_STRING, &d.spool_dir, NULL, 0, 0, "spool directory"},
        {"expect", LG_CFG_STRING, &d.expect, NULL, 0, 0, "write expected rows here"},
        {"count", LG_CFG_INT, &d.count, "1000", 0, INT64_C(100000000), "records"},
        {"first", LG_CFG_INT, &d.first, "0", 0, INT64_C(100000000), "first index"},
        {"batch-rows", LG_CFG_INT, &d.batch_rows, "0", 0, INT64_C(10000000), "batch rows"},
        {"batch-bytes", LG_CFG_INT, &d.batch_bytes, "0", 0, INT64_C(1) << 34, "batch bytes"},
        {"batch-age-ms", LG_CFG_INT, &d.batch_age_ms, "0", 0, INT64_C(100000), "batch age"},
        {"spool-max-bytes", LG_CFG_INT, &d.spool_max, "0", 0, INT64_MAX, "spool cap"},
        {"segment-bytes", LG_CFG_INT, &d.seg_bytes, "0", 0, INT64_MAX, "segment size"},
        {"queue-capacity", LG_CFG_INT, &d.queue_cap, "0", 0, INT64_C(1) << 30, "ring slots"},
        {"drain-ms", LG_CFG_INT, &d.drain_ms, "120000", 0, INT64_C(3600000), "drain wait"},
        {"hold", LG_CFG_BOOL, &d.hold, "false", 0, 0, "ship forever after spooling"},
        {"inject-bad-row", LG_CFG_BOOL, &d.inject_bad, "false", 0, 0, "add a malformed row"},
        {"bad-row-format", LG_CFG_STRING, &d.bad_format, "json", 0, 0,
         "json (a row ClickHouse rejects) | rowbinary (a row cut short)"},
        {"bad-row-at", LG_CFG_INT, &d.bad_at, "0", 0, INT64_C(100000000),
         "good records spooled before the malformed one"},
        {"no-ship", LG_CFG_BOOL, &d.no_ship, "false", 0, 0, "spool only"},
        {"metrics", LG_CFG_BOOL, &d.metrics, "false", 0, 0, "print Prometheus metrics"},
        {"log-level", LG_CFG_STRING, &d.log_level, "warn", 0, 0, "log level"},
        {"compression", LG_CFG_STRING, &d.compression, "auto", 0, 0, "auto | gzip | none"},
        {"format", LG_CFG_STRING, &d.format, "rowbinary", 0, 0, "rowbinary | json"},
        {"rate", LG_CFG_INT, &d.rate, "0", 0, INT64_C(100000000),
         "records per second to enqueue (paced in 1 ms steps, sleeping between them: a "
         "gateway whose calls finish at this rate); 0 = as fast as possible"},
        {"steady-after-ms", LG_CFG_INT, &d.steady_after_ms, "0", 0, INT64_C(3600000),
         "with --rate: also report the shipper threads' CPU from this long after the first "
         "enqueue to the last one (steady_cpu_pct: the cost of the rate itself, without "
         "start-up (buffers faulted in, connection) and the final drain); 0 = not"},
        {"premake", LG_CFG_BOOL, &d.premake, "false", 0, 0,
         "make every record before the clock starts (benchmark: time and CPU are the "
         "shipper's alone, as they are for ClickHouse's peer reading a ready file)"},
    };
    char err[256];
    if (lg_cfg_parse(opts, sizeof(opts) / sizeof(opts[0]), argc, argv, NULL, 0, NULL, err,
                     sizeof(err)) != LG_OK ||
        d.spool_dir == NULL) {
        fprintf(stderr, "ship_driver: bad arguments: %s\n", err);
        return 2;
    }
    enum lg_log_level lvl = LG_LOG_WARN;
    lg_log_parse_level(d.log_level, &lvl);
    lg_log_init(lvl, -1);
    int64_t made = d.count;
    if (d.bad_at > d.count) {
        d.bad_at = d.count;
    }
    if (d.inject_bad && inject_bad_row(&d) != LG_OK) {
        fprintf(stderr, "ship_driver: cannot inject\n");
        return 1;
    }
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, NULL);
    struct lg_shipper_opts o;
    memset(&o, 0, sizeof(o));
    o.clickhouse_url = d.url;
    o.spool_dir = d.spool_dir;
    o.batch_rows = (size_t)d.batch_rows;
    o.batch_age_ms = d.batch_age_ms;
    o.batch_bytes = (size_t)d.batch_bytes;
    o.spool_max_bytes = (uint64_t)d.spool_max;
    o.spool_segment_bytes = (uint64_t)d.seg_bytes;
    o.queue_capacity = (size_t)d.queue_cap;
    o.no_ship = d.no_ship;
    if (lg_shipper_compression_parse(d.compression, &o.compression) != LG_OK) {
        fprintf(stderr, "ship_driver: bad --compression\n");
        return 2;
    }
    if (lg_shipper_format_parse(d.format, &o.format) != LG_OK) {
        fprintf(stderr, "ship_driver: bad --format\n");
        return 2;
    }
    lg_shipper *s = NULL;
    int rc = lg_shipper_new(&s, &o);
    if (rc != LG_OK) {
        fprintf(stderr, "ship_driver: shipper: %s\n", lg_err_name(rc));
        return 1;
    }
    struct lg_record_sink sink;
    lg_shipper_sink(s, &sink);
    FILE *ex = d.expect != NULL ? fopen(d.expect, "w") : NULL;
    struct lg_buf line;
    lg_buf_init(&line, LG_RECORD_MAX_ROW_BYTES);
    int64_t accepted = 0, dropped = 0;
    /* --premake: the records exist before the clock starts, as they would in a gateway
     * that made them while serving calls; making 1M of them takes a core for ~10 s here
     * (snprintf), which would otherwise compete with the shipper and ClickHouse. */
    struct lg_record **pre = NULL;
    if (d.premake) {
        pre = lg_malloc((size_t)d.count * sizeof(*pre));
        for (int64_t i = 0; pre != NULL && i < d.count; i++) {
            if ((pre[i] = drv_record_make(d.first + i)) == NULL) {
                return 1;
            }
        }
        if (pre == NULL) {
            return 1;
        }
    }
    struct timespec t0, t1, t2, c0, c2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    /* The steady window: shipper threads' CPU and the clock at its start and end. */
    bool steady = d.rate > 0 && d.steady_after_ms > 0;
    int64_t steady_us[2] = {-1, -1}, steady_cpu[2] = {0, 0};
    for (int64_t i = d.first; i < d.first + d.count; i++) {
        if (d.rate > 0 && (i - d.first) % (d.rate / 1000 > 0 ? d.rate / 1000 : 1) == 0) {
            /* Record k is due at t0 + k / rate: sleep until then (absolute, so the pace
             * does not drift with the work done between steps). */
            int64_t due_ns = (i - d.first) * INT64_C(1000000000) / d.rate;
            struct timespec at = t0;
            at.tv_sec += (time_t)(due_ns / 1000000000);
            at.tv_nsec += (long)(due_ns % 1000000000);
            if (at.tv_nsec >= 1000000000L) {
                at.tv_sec++;
                at.tv_nsec -= 1000000000L;
            }
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {
            }
        }
        if (steady && (steady_us[0] < 0 || i == d.first + d.count - 1) &&
            (i - d.first) * INT64_C(1000) / d.rate >= d.steady_after_ms) {
            /* The window opens at the first record due after --steady-after-ms and closes
             * at the last record. */
            struct lg_shipper_stats w;
            lg_shipper_get_stats(s, &w);
            int k = steady_us[0] < 0 ? 0 : 1;
            steady_us[k] = lg_time_mono_us();
            steady_cpu[k] = (int64_t)w.thread_cpu_ns;
        }
        struct lg_record *r = pre != NULL ? pre[i - d.first] : drv_record_make(i);
        if (r == NULL) {
            return 1;
        }
        if (ex != NULL) {
            lg_buf_reset(&line);
            lg_record_encode_json(r, &line);
            fwrite(line.data, 1, line.len, ex);
        }
        if (lg_record_sink_enqueue(&sink, r) == LG_OK) {
            accepted++;
        } else {
            dropped++;
            lg_record_free(r);
        }
    }
    lg_buf_deinit(&line);
    lg_free(pre);
    if (ex != NULL) {
        fclose(ex);
    }
    printf("enqueued made=%" PRId64 " accepted=%" PRId64 " dropped=%" PRId64 "\n", made,
           accepted + (made - d.count), dropped);
    fflush(stdout);
    rc = lg_shipper_sync(s, 60000);
    if (rc == LG_ERR_TIMEOUT) {
        fprintf(stderr, "ship_driver: sync timed out\n");
        return 1;
    }
    printf(rc == LG_OK ? "spooled\n" : "spool_full\n");
    fflush(stdout);
    if (d.hold) {
        /* Ship until SIGTERM, then run the drain hook as a service would: ship within
         * the deadline, spool the rest, exit 0. SIGTERM is blocked in every thread (mask
         * set before the shipper started) and taken here with sigwait. */
        int sig = 0;
        sigwait(&term, &sig);
        printf("sigterm\n");
        fflush(stdout);
        d.drain_ms = LG_SHIPPER_DRAIN_DEADLINE_MS;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int drained = d.no_ship ? LG_OK : lg_shipper_drain(s, d.drain_ms);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c2);
    struct lg_shipper_stats st;
    lg_shipper_get_stats(s, &st); /* thread CPU is read while the thread lives */
    uint64_t cpu_ns = st.thread_cpu_ns;
    lg_shipper_stop(s); /* final counts, drops at stop included */
    lg_shipper_get_stats(s, &st);
    struct lg_buf metrics;
    lg_buf_init(&metrics, 1 << 16);
    if (lg_shipper_format_metrics(s, &metrics) == LG_OK && d.metrics) {
        fwrite(metrics.data, 1, metrics.len, stdout);
    }
    lg_buf_deinit(&metrics);
    double spool_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double total_s = (double)(t2.tv_sec - t0.tv_sec) + (double)(t2.tv_nsec - t0.tv_nsec) / 1e9;
    double proc_s = (double)(c2.tv_sec - c0.tv_sec) + (double)(c2.tv_nsec - c0.tv_nsec) / 1e9;
    /* process_cpu_s: every thread from the first enqueue to drained. With --premake that
     * is all shipping work (enqueue, the producers' overflow spooling, the shipper
     * thread); without it, it includes making the records. */
    /* steady_cpu_pct: -1 when no window was measured (no --steady-after-ms, or the run
     * ended before it opened). */
    double steady_pct = -1;
    if (steady_us[0] >= 0 && steady_us[1] > steady_us[0]) {
        steady_pct = 100.0 * (double)(steady_cpu[1] - steady_cpu[0]) /
                     ((double)(steady_us[1] - steady_us[0]) * 1e3);
    }
    printf("timing made_and_spooled_s=%.3f enqueue_to_drained_s=%.3f shipper_cpu_s=%.3f "
           "process_cpu_s=%.3f steady_cpu_pct=%.2f\n",
           spool_s, total_s, (double)cpu_ns / 1e9, proc_s, steady_pct);
    printf("stats accepted=%" PRIu64 " rows_shipped=%" PRIu64 " dead_letters=%" PRIu64
           " dropped=%" PRIu64 " retries=%" PRIu64 " landed_checks=%" PRIu64
           " landed_on_check=%" PRIu64 " overflowed=%" PRIu64 " batches=%" PRIu64
           " read_memory=%" PRIu64 " read_file=%" PRIu64 " recycled=%" PRIu64 " drained=%d\n",
           st.accepted, st.rows_shipped, st.dead_letters, st.dropped, st.retries,
           st.landed_checks, st.landed_on_check, st.overflowed, st.batches,
           st.spool_read_memory, st.spool_read_file, st.spool_recycled,
           drained == LG_OK ? 1 : 0);
    fflush(stdout);
    lg_shipper_free(s);
    return drained == LG_OK ? 0 : 1;
}
