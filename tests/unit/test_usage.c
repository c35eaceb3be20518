/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of lg_usage that need no ClickHouse: user-id validation (the first defence
 * against injection; quoting is the second, tested in test_chclient and against a real
 * server in tests/integration/analytics/it_usage.sh), argument checks, and the worker's
 * callback on an unreachable server. The worker allocates on its own thread, so this file
 * keeps libc's allocator (cmocka's is not thread-safe); LeakSanitizer checks for leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>

#include <cmocka.h>

#include "lg_chclient.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_usage.h"

static const struct lg_chclient_opts dead = {"http://127.0.0.1:9", NULL, NULL, 2000, 1000, NULL};

static void test_usage_user_id_validation(void **state)
{
    (void)state;
    assert_int_equal(lg_usage_check_user_id("user-1"), LG_OK);
    assert_int_equal(lg_usage_check_user_id("x' OR '1'='1"), LG_OK); /* quoted later */
    assert_int_equal(lg_usage_check_user_id(NULL), LG_ERR_INVALID);
    assert_int_equal(lg_usage_check_user_id(""), LG_ERR_INVALID);
    assert_int_equal(lg_usage_check_user_id("a\nb"), LG_ERR_INVALID);
    assert_int_equal(lg_usage_check_user_id("a\x7f"), LG_ERR_INVALID);
    char big[LG_USAGE_MAX_USER_ID_BYTES + 2];
    memset(big, 'u', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(lg_usage_check_user_id(big), LG_ERR_INVALID);
    big[LG_USAGE_MAX_USER_ID_BYTES] = 0;
    assert_int_equal(lg_usage_check_user_id(big), LG_OK);
}

static void test_usage_sync_argument_checks(void **state)
{
    (void)state;
    struct lg_usage_logs l;
    assert_int_equal(lg_usage_list_logs_sync(&dead, "u", 0, 0, &l), LG_ERR_INVALID);
    assert_int_equal(lg_usage_list_logs_sync(&dead, "u", LG_USAGE_MAX_LIMIT + 1, 0, &l),
                     LG_ERR_INVALID);
    assert_int_equal(lg_usage_list_logs_sync(&dead, "u", 10, LG_USAGE_MAX_PAGE + 1, &l),
                     LG_ERR_INVALID);
    assert_int_equal(lg_usage_list_logs_sync(&dead, "a\tb", 10, 0, &l), LG_ERR_INVALID);
    /* Filter strings are checked like user ids; negative times are refused. */
    struct lg_usage_log_filter bad_model = {"gpt\n4", NULL, 0, 0};
    struct lg_usage_log_filter bad_conv = {NULL, "c\x01", 0, 0};
    struct lg_usage_log_filter bad_time = {NULL, NULL, -5, 0};
    struct lg_usage_log_filter fine = {"", "conv-1", 1000, 2000};
    assert_int_equal(lg_usage_list_logs_filtered_sync(&dead, "u", 10, 0, &bad_model, &l),
                     LG_ERR_INVALID);
    assert_int_equal(lg_usage_list_logs_filtered_sync(&dead, "u", 10, 0, &bad_conv, &l),
                     LG_ERR_INVALID);
    assert_int_equal(lg_usage_list_logs_filtered_sync(&dead, "u", 10, 0, &bad_time, &l),
                     LG_ERR_INVALID);
    assert_int_equal(lg_usage_list_logs_filtered_sync(&dead, "u", 10, 0, &fine, &l),
                     LG_ERR_UNAVAILABLE); /* valid: reaches the (absent) server */
    struct lg_usage_report r;
    assert_int_equal(lg_usage_get_usage_sync(&dead, "u", 10, 10, &r), LG_ERR_INVALID);
    assert_int_equal(lg_usage_get_usage_sync(&dead, "u", -1, 10, &r), LG_ERR_INVALID);
    /* Valid arguments, no server: the transport error comes back. */
    assert_int_equal(lg_usage_list_logs_sync(&dead, "u", 10, 0, &l), LG_ERR_UNAVAILABLE);
    assert_int_equal(l.count, 0);
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int rc;
};

static void on_report(int rc, struct lg_usage_report *r, void *ud)
{
    struct waiter *w = ud;
    lg_usage_report_free(r);
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->done++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void on_logs(int rc, struct lg_usage_logs *l, void *ud)
{
    struct waiter *w = ud;
    lg_usage_logs_free(l);
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->done++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void test_usage_async_reports_errors(void **state)
{
    (void)state;
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    lg_usage *u = NULL;
    assert_int_equal(lg_usage_new(&u, &dead), LG_OK);
    assert_int_equal(lg_usage_get_usage(u, "", 0, 1, on_report, &w), LG_ERR_INVALID);
    assert_int_equal(lg_usage_list_logs(u, "u", 0, 0, on_logs, &w), LG_ERR_INVALID);
    assert_int_equal(lg_usage_get_usage(u, "u", 0, 1000, on_report, &w), LG_OK);
    pthread_mutex_lock(&w.mu);
    while (w.done < 1) {
        pthread_cond_wait(&w.cv, &w.mu);
    }
    pthread_mutex_unlock(&w.mu);
    assert_int_equal(w.rc, LG_ERR_UNAVAILABLE);
    /* Jobs still queued at free are answered (CLOSED or their result), never dropped. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lg_usage_list_logs(u, "u", 5, 0, on_logs, &w), LG_OK);
    }
    lg_usage_free(u);
    assert_int_equal(w.done, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_user_id_validation),
        cmocka_unit_test(test_usage_sync_argument_checks),
        cmocka_unit_test(test_usage_async_reports_errors),
    };
    return cmocka_run_group_tests_name("usage", tests, NULL, NULL);
}
