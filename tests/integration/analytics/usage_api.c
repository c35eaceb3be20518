/* SPDX-License-Identifier: Apache-2.0 */
/*
 * usage_api: exercises lg_usage (the C API behind UsageService) against a real ClickHouse
 * loaded by it_usage.sh with ship_driver records 0..N-1 (user i%7) plus a duplicated copy of
 * user-3's rows. Prints "ok: ..." lines; exits 1 on the first mismatch.
 * usage: usage_api CLICKHOUSE_URL N
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "lg_chclient.h"
#include "lg_err.h"
#include "lg_usage.h"

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fprintf(stderr, "\n");                                                             \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    struct lg_usage_logs logs;
    struct lg_usage_report report;
    pthread_t cb_thread;
};

static void on_logs(int rc, struct lg_usage_logs *logs, void *ud)
{
    struct waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->logs = *logs; /* taken */
    w->cb_thread = pthread_self();
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void on_report(int rc, struct lg_usage_report *r, void *ud)
{
    struct waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->report = *r; /* taken */
    w->cb_thread = pthread_self();
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void wait_done(struct waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    w->done = false;
    pthread_mutex_unlock(&w->mu);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: usage_api URL N\n");
        return 2;
    }
    int64_t n = 0;
    for (const char *p = argv[2]; *p >= '0' && *p <= '9' && n < INT64_C(100000000); p++) {
        n = n * 10 + (*p - '0');
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct lg_chclient_opts ch = {argv[1], NULL, NULL, 30000, 3000, NULL};
    lg_usage *u = NULL;
    CHECK(lg_usage_new(&u, &ch) == LG_OK, "new");
    struct waiter w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);

    /* Expected figures for user-3, from the driver's formulas (records i with i%7 == 3). */
    uint64_t want_req = 0;
    int64_t want_cost = 0, want_prompt = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i % 7 == 3) {
            want_req++;
            want_cost += INT64_C(1234567) * (1 + i % 1000);
            want_prompt += 10 + i % 90;
        }
    }

    /* ListLogs, async: newest first, only user-3, pages. */
    CHECK(lg_usage_list_logs(u, "user-3", 10, 0, on_logs, &w) == LG_OK, "submit logs");
    wait_done(&w);
    CHECK(w.rc == LG_OK, "logs rc %s", lg_err_name(w.rc));
    CHECK(!pthread_equal(w.cb_thread, pthread_self()), "callback must run on the worker");
    CHECK(w.logs.count == 10, "page size %zu", w.logs.count);
    for (size_t i = 1; i < w.logs.count; i++) {
        CHECK(w.logs.items[i - 1].start_time_ms >= w.logs.items[i].start_time_ms, "order");
    }
    /* No duplicates even though user-3's rows were inserted twice (FINAL). */
    for (size_t i = 1; i < w.logs.count; i++) {
        CHECK(strcmp(w.logs.items[i - 1].request_id, w.logs.items[i].request_id) != 0,
              "duplicate %s", w.logs.items[i].request_id);
    }
    char first[64];
    snprintf(first, sizeof(first), "%s", w.logs.items[0].request_id);
    lg_usage_logs_free(&w.logs);
    printf("ok: ListLogs page 0 has 10 distinct records of user-3, newest first (%s)\n", first);

    CHECK(lg_usage_list_logs(u, "user-3", 10, 1, on_logs, &w) == LG_OK, "submit page 1");
    wait_done(&w);
    CHECK(w.rc == LG_OK && w.logs.count == 10, "page 1");
    CHECK(strcmp(w.logs.items[0].request_id, first) != 0, "page 1 repeats page 0");
    lg_usage_logs_free(&w.logs);
    printf("ok: ListLogs page 1 continues after page 0\n");

    /* GetUsage, async: totals exact, breakdown consistent. */
    CHECK(lg_usage_get_usage(u, "user-3", 0, INT64_C(4102444800000), on_report, &w) == LG_OK,
          "submit usage");
    wait_done(&w);
    CHECK(w.rc == LG_OK, "usage rc %s", lg_err_name(w.rc));
    CHECK(w.report.total.requests == want_req, "requests %" PRIu64 " want %" PRIu64,
          w.report.total.requests, want_req);
    CHECK(w.report.total.cost_nano_usd == want_cost, "cost %" PRId64 " want %" PRId64,
          w.report.total.cost_nano_usd, want_cost);
    CHECK(w.report.total.prompt_tokens == want_prompt, "prompt tokens");
    uint64_t sum = 0;
    for (size_t i = 0; i < w.report.n_model; i++) {
        sum += w.report.by_model[i].requests;
    }
    CHECK(sum == want_req && w.report.n_model == 3, "by model");
    sum = 0;
    for (size_t i = 0; i < w.report.n_day; i++) {
        sum += w.report.by_day[i].requests;
    }
    CHECK(sum == want_req && w.report.n_day > 0, "by day");
    lg_usage_report_free(&w.report);
    printf("ok: GetUsage user-3 requests=%" PRIu64 " cost_nano_usd=%" PRId64
           " (exact, duplicates collapsed)\n", want_req, want_cost);

    /* Injection attempts: a quote cannot widen the match; control bytes are refused. */
    const char *evil[] = {"user-3' OR '1'='1", "user-3\\' OR 1=1 --", "' UNION SELECT 1 --"};
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        struct lg_usage_logs l;
        CHECK(lg_usage_list_logs_sync(&ch, evil[i], 100, 0, &l) == LG_OK, "evil logs rc");
        CHECK(l.count == 0, "injection matched %zu rows: %s", l.count, evil[i]);
        lg_usage_logs_free(&l);
        struct lg_usage_report r;
        CHECK(lg_usage_get_usage_sync(&ch, evil[i], 0, INT64_C(4102444800000), &r) == LG_OK,
              "evil usage rc");
        CHECK(r.total.requests == 0, "injection counted rows: %s", evil[i]);
        lg_usage_report_free(&r);
    }
    struct lg_usage_logs l;
    CHECK(lg_usage_list_logs_sync(&ch, "user-3\n", 10, 0, &l) == LG_ERR_INVALID, "ctl byte");
    CHECK(lg_usage_list_logs(u, "", 10, 0, on_logs, &w) == LG_ERR_INVALID, "empty id");
    CHECK(lg_usage_list_logs(u, "user-3", 0, 0, on_logs, &w) == LG_ERR_INVALID, "limit 0");
    printf("ok: injection attempts match nothing; invalid ids refused\n");

    /* Server gone: the callback reports the error, nothing hangs. */
    struct lg_chclient_opts dead = {"http://127.0.0.1:9", NULL, NULL, 2000, 1000, NULL};
    lg_usage *u2 = NULL;
    CHECK(lg_usage_new(&u2, &dead) == LG_OK, "new dead");
    CHECK(lg_usage_list_logs(u2, "user-3", 10, 0, on_logs, &w) == LG_OK, "submit dead");
    wait_done(&w);
    CHECK(w.rc == LG_ERR_UNAVAILABLE, "dead rc %s", lg_err_name(w.rc));
    lg_usage_logs_free(&w.logs);
    lg_usage_free(u2);
    printf("ok: unreachable ClickHouse -> UNAVAILABLE in the callback\n");

    lg_usage_free(u);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    curl_global_cleanup();
    return 0;
}
