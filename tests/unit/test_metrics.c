/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_metrics.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

/* cmocka checks for leaks after each test body, so each test owns its registry. */
static lg_metrics *registry_new(void)
{
    lg_metrics *m = NULL;
    assert_int_equal(lg_metrics_new(&m), LG_OK);
    return m;
}

/* Renders |m| and compares the whole text with |want|. */
static void expect_render(lg_metrics *m, const char *want)
{
    struct lg_buf b;
    lg_buf_init(&b, LG_METRICS_MAX_RENDER_BYTES);
    assert_int_equal(lg_metrics_render(m, &b), LG_OK);
    assert_string_equal((const char *)(b.data != NULL ? b.data : (const uint8_t *)""), want);
    lg_buf_deinit(&b);
}

static void test_metrics_counter_and_gauge_exposition(void **state)
{
    (void)state;
    lg_metrics *m = registry_new();
    static const char *const labels[] = {"method", "code"};
    struct lg_metrics_desc d = {.type = LG_METRICS_COUNTER,
                                .name = "llmgate_requests_total",
                                .help = "Requests handled.",
                                .label_names = labels,
                                .nlabels = 2};
    lg_metrics_family *f;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_OK);
    lg_metrics_series *ok, *bad, *again;
    assert_int_equal(
        lg_metrics_family_with_labels(f, (const char *const[]){"StreamChat", "OK"}, &ok), LG_OK);
    assert_int_equal(
        lg_metrics_family_with_labels(f, (const char *const[]){"Complete", "INTERNAL"}, &bad),
        LG_OK);
    assert_int_equal(
        lg_metrics_family_with_labels(f, (const char *const[]){"StreamChat", "OK"}, &again),
        LG_OK);
    assert_ptr_equal(ok, again); /* the same tuple resolves to the same series */
    lg_metrics_counter_inc(ok);
    lg_metrics_counter_add(ok, 41);
    lg_metrics_counter_inc(bad);

    lg_metrics_series *open;
    assert_int_equal(lg_metrics_register_gauge(m, "llmgate_open_streams", "Open streams.", &open),
                     LG_OK);
    lg_metrics_gauge_add(open, 5);
    lg_metrics_gauge_add(open, -7);
    lg_metrics_series *shipped;
    assert_int_equal(
        lg_metrics_register_counter(m, "llmgate_rows_shipped_total", "Rows shipped.", &shipped),
        LG_OK);

    expect_render(m, "# HELP llmgate_requests_total Requests handled.\n"
                     "# TYPE llmgate_requests_total counter\n"
                     "llmgate_requests_total{method=\"StreamChat\",code=\"OK\"} 42\n"
                     "llmgate_requests_total{method=\"Complete\",code=\"INTERNAL\"} 1\n"
                     "# HELP llmgate_open_streams Open streams.\n"
                     "# TYPE llmgate_open_streams gauge\n"
                     "llmgate_open_streams -2\n"
                     "# HELP llmgate_rows_shipped_total Rows shipped.\n"
                     "# TYPE llmgate_rows_shipped_total counter\n"
                     "llmgate_rows_shipped_total 0\n");
    assert_int_equal(lg_metrics_get_counter(ok), 42);
    assert_int_equal(lg_metrics_get_gauge(open), -2);
    lg_metrics_gauge_set(open, 9);
    assert_int_equal(lg_metrics_get_gauge(open), 9);
    lg_metrics_free(m);
}

static void test_metrics_label_and_help_escaping(void **state)
{
    (void)state;
    lg_metrics *m = registry_new();
    static const char *const labels[] = {"model"};
    struct lg_metrics_desc d = {.type = LG_METRICS_GAUGE,
                                .name = "x",
                                .help = "back\\slash \"quoted\"\nsecond line",
                                .label_names = labels,
                                .nlabels = 1};
    lg_metrics_family *f;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_OK);
    lg_metrics_series *s;
    assert_int_equal(
        lg_metrics_family_with_labels(f, (const char *const[]){"a\"b\\c\nd"}, &s), LG_OK);
    lg_metrics_gauge_set(s, 1);
    /* HELP escapes only backslash and newline; label values also the double quote. */
    expect_render(m, "# HELP x back\\\\slash \"quoted\"\\nsecond line\n"
                     "# TYPE x gauge\n"
                     "x{model=\"a\\\"b\\\\c\\nd\"} 1\n");
    lg_metrics_free(m);
}

static void test_metrics_histogram_bucket_math(void **state)
{
    (void)state;
    lg_metrics *m = registry_new();
    static const char *const labels[] = {"method"};
    static const double bounds[] = {0.005, 0.1, 1, 2.5};
    struct lg_metrics_desc d = {.type = LG_METRICS_HISTOGRAM,
                                .name = "llmgate_request_duration_seconds",
                                .help = "Latency.",
                                .label_names = labels,
                                .nlabels = 1,
                                .buckets = bounds,
                                .nbuckets = 4};
    lg_metrics_family *f;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_OK);
    lg_metrics_series *s;
    assert_int_equal(lg_metrics_family_with_labels(f, (const char *const[]){"Complete"}, &s),
                     LG_OK);
    /* A value equal to a bound falls in that bucket (le = "less or equal"). */
    lg_metrics_histogram_observe(s, 0.005);
    lg_metrics_histogram_observe(s, 0.05);
    lg_metrics_histogram_observe(s, 0.1);
    lg_metrics_histogram_observe(s, 2);
    lg_metrics_histogram_observe(s, 7.25);
    lg_metrics_histogram_observe(s, NAN); /* ignored */
    assert_int_equal(lg_metrics_get_histogram_count(s), 5);
    expect_render(m,
                  "# HELP llmgate_request_duration_seconds Latency.\n"
                  "# TYPE llmgate_request_duration_seconds histogram\n"
                  "llmgate_request_duration_seconds_bucket{method=\"Complete\",le=\"0.005\"} 1\n"
                  "llmgate_request_duration_seconds_bucket{method=\"Complete\",le=\"0.1\"} 3\n"
                  "llmgate_request_duration_seconds_bucket{method=\"Complete\",le=\"1\"} 3\n"
                  "llmgate_request_duration_seconds_bucket{method=\"Complete\",le=\"2.5\"} 4\n"
                  "llmgate_request_duration_seconds_bucket{method=\"Complete\",le=\"+Inf\"} 5\n"
                  "llmgate_request_duration_seconds_sum{method=\"Complete\"} 9.405\n"
                  "llmgate_request_duration_seconds_count{method=\"Complete\"} 5\n");
    lg_metrics_free(m);
}

static void test_metrics_histogram_default_buckets(void **state)
{
    (void)state;
    lg_metrics *m = registry_new();
    lg_metrics_series *s;
    assert_int_equal(lg_metrics_register_histogram(m, "ttft_seconds", "T", &s), LG_OK);
    lg_metrics_histogram_observe(s, 0.3);
    expect_render(m, "# HELP ttft_seconds T\n"
                     "# TYPE ttft_seconds histogram\n"
                     "ttft_seconds_bucket{le=\"0.005\"} 0\n"
                     "ttft_seconds_bucket{le=\"0.01\"} 0\n"
                     "ttft_seconds_bucket{le=\"0.025\"} 0\n"
                     "ttft_seconds_bucket{le=\"0.05\"} 0\n"
                     "ttft_seconds_bucket{le=\"0.1\"} 0\n"
                     "ttft_seconds_bucket{le=\"0.25\"} 0\n"
                     "ttft_seconds_bucket{le=\"0.5\"} 1\n"
                     "ttft_seconds_bucket{le=\"1\"} 1\n"
                     "ttft_seconds_bucket{le=\"2.5\"} 1\n"
                     "ttft_seconds_bucket{le=\"5\"} 1\n"
                     "ttft_seconds_bucket{le=\"10\"} 1\n"
                     "ttft_seconds_bucket{le=\"30\"} 1\n"
                     "ttft_seconds_bucket{le=\"60\"} 1\n"
                     "ttft_seconds_bucket{le=\"120\"} 1\n"
                     "ttft_seconds_bucket{le=\"+Inf\"} 1\n"
                     "ttft_seconds_sum 0.3\n"
                     "ttft_seconds_count 1\n");
    lg_metrics_free(m);
}

static void test_metrics_float_format(void **state)
{
    (void)state;
    lg_metrics *m = registry_new();
    /* Bounds print as Go's FormatFloat(v, 'g', -1) does (what Prometheus clients emit):
     * shortest round-trip digits, exponent form below 1e-4 and from 1e6 on. */
    static const double bounds[] = {1e-5, 0.0001, 0.5, 123456.5, 1e6, 2.5e7};
    struct lg_metrics_desc d = {
        .type = LG_METRICS_HISTOGRAM, .name = "f", .help = "", .buckets = bounds, .nbuckets = 6};
    lg_metrics_family *f;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_OK);
    lg_metrics_series *s;
    assert_int_equal(lg_metrics_family_with_labels(f, NULL, &s), LG_OK);
    lg_metrics_histogram_observe(s, -0.25);
    expect_render(m, "# HELP f \n# TYPE f histogram\n"
                     "f_bucket{le=\"1e-05\"} 1\n"
                     "f_bucket{le=\"0.0001\"} 1\n"
                     "f_bucket{le=\"0.5\"} 1\n"
                     "f_bucket{le=\"123456.5\"} 1\n"
                     "f_bucket{le=\"1e+06\"} 1\n"
                     "f_bucket{le=\"2.5e+07\"} 1\n"
                     "f_bucket{le=\"+Inf\"} 1\n"
                     "f_sum -0.25\n"
                     "f_count 1\n");
    lg_metrics_free(m);
}

static int64_t scrape_depth(void *ud)
{
    const int64_t *depth = ud;
    return *depth;
}

static void test_metrics_gauge_callback_at_scrape(void **state)
{
    (void)state;
    lg_metrics *m = registry_new();
    int64_t depth = 3;
    lg_metrics_series *s;
    assert_int_equal(lg_metrics_register_gauge_cb(m, "llmgate_queue_depth", "Queue depth.",
                                                  scrape_depth, &depth, &s),
                     LG_OK);
    lg_metrics_gauge_set(s, 100); /* ignored while a callback is bound */
    expect_render(m, "# HELP llmgate_queue_depth Queue depth.\n"
                     "# TYPE llmgate_queue_depth gauge\n"
                     "llmgate_queue_depth 3\n");
    depth = 17;
    assert_int_equal(lg_metrics_get_gauge(s), 17);
    lg_metrics_gauge_set_cb(s, NULL, NULL);
    assert_int_equal(lg_metrics_get_gauge(s), 100);
    assert_int_equal(lg_metrics_register_gauge_cb(m, "other", "", NULL, NULL, NULL),
                     LG_ERR_INVALID);
    lg_metrics_free(m);
}

static uint64_t scrape_shipped(void *ud)
{
    const uint64_t *rows = ud;
    return *rows;
}

static void test_metrics_counter_callback_at_scrape(void **state)
{
    (void)state;
    lg_metrics *m = registry_new();
    uint64_t rows = 41;
    lg_metrics_series *s;
    assert_int_equal(lg_metrics_register_counter_cb(m, "llmgate_shipper_rows_shipped_total",
                                                    "Rows acknowledged.", scrape_shipped,
                                                    &rows, &s),
                     LG_OK);
    lg_metrics_counter_add(s, 1000); /* ignored: the callback is the source of truth */
    rows = 42;
    expect_render(m, "# HELP llmgate_shipper_rows_shipped_total Rows acknowledged.\n"
                     "# TYPE llmgate_shipper_rows_shipped_total counter\n"
                     "llmgate_shipper_rows_shipped_total 42\n");
    assert_int_equal(lg_metrics_get_counter(s), 42);
    assert_int_equal(lg_metrics_register_counter_cb(m, "x_total", "", NULL, NULL, NULL),
                     LG_ERR_INVALID);
    assert_int_equal(
        lg_metrics_register_counter_cb(m, "llmgate_shipper_rows_shipped_total", "",
                                       scrape_shipped, &rows, NULL),
        LG_ERR_STATE);
    lg_metrics_free(m);
}

static void test_metrics_cardinality_cap(void **state)
{
    (void)state;
    lg_metrics *m = registry_new();
    static const char *const labels[] = {"user"};
    struct lg_metrics_desc d = {
        .type = LG_METRICS_COUNTER, .name = "c_total", .label_names = labels, .nlabels = 1};
    lg_metrics_family *f;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_OK);
    char v[32];
    lg_metrics_series *s;
    for (int i = 0; i < LG_METRICS_MAX_SERIES_PER_FAMILY; i++) {
        snprintf(v, sizeof(v), "u%d", i);
        assert_int_equal(lg_metrics_family_with_labels(f, (const char *const[]){v}, &s), LG_OK);
        lg_metrics_counter_inc(s);
    }
    assert_int_equal(lg_metrics_get_refused(m), 0);
    /* One more tuple is refused, counted, and its NULL handle is a harmless no-op. */
    assert_int_equal(lg_metrics_family_with_labels(f, (const char *const[]){"new"}, &s),
                     LG_ERR_TOO_LARGE);
    assert_null(s);
    lg_metrics_counter_inc(s);
    lg_metrics_histogram_observe(s, 1);
    lg_metrics_gauge_set(s, 1);
    assert_int_equal(lg_metrics_get_refused(m), 1);
    /* Existing tuples still resolve. */
    assert_int_equal(lg_metrics_family_with_labels(f, (const char *const[]){"u7"}, &s), LG_OK);
    assert_int_equal(lg_metrics_get_counter(s), 1);
    lg_metrics_free(m);
}

static void test_metrics_invalid_registrations(void **state)
{
    (void)state;
    lg_metrics *m = registry_new();
    lg_metrics_family *f;
    static const char *const le[] = {"le"};
    static const char *const dup[] = {"a", "a"};
    static const char *const reserved[] = {"__name"};
    static const char *const bad[] = {"1x"};
    static const double not_increasing[] = {1, 1};
    static const double inf[] = {1, INFINITY};
    static const double many[LG_METRICS_MAX_BUCKETS + 1] = {0};
    static const char *const nine[LG_METRICS_MAX_LABELS + 1] = {"a", "b", "c", "d", "e",
                                                                  "f", "g", "h", "i"};
    struct lg_metrics_desc d = {.type = LG_METRICS_COUNTER, .name = "9bad"};
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_ERR_INVALID);
    d.name = "bad-name";
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_ERR_INVALID);
    d.name = "ok:name_1";
    d.label_names = bad;
    d.nlabels = 1;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_ERR_INVALID);
    d.label_names = reserved;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_ERR_INVALID);
    d.label_names = dup;
    d.nlabels = 2;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_ERR_INVALID);
    d.label_names = nine;
    d.nlabels = LG_METRICS_MAX_LABELS + 1;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_ERR_TOO_LARGE);
    d.type = LG_METRICS_HISTOGRAM;
    d.label_names = le;
    d.nlabels = 1;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_ERR_INVALID);
    d.nlabels = 0;
    d.buckets = not_increasing;
    d.nbuckets = 2;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_ERR_INVALID);
    d.buckets = inf;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_ERR_INVALID);
    d.nbuckets = 0;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_ERR_INVALID);
    d.buckets = many;
    d.nbuckets = LG_METRICS_MAX_BUCKETS + 1;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_ERR_TOO_LARGE);

    /* A name can be registered once. */
    lg_metrics_series *s;
    assert_int_equal(lg_metrics_register_counter(m, "once_total", "", &s), LG_OK);
    assert_int_equal(lg_metrics_register_gauge(m, "once_total", "", &s), LG_ERR_STATE);

    /* Label values: count and length are checked. */
    static const char *const one[] = {"k"};
    struct lg_metrics_desc g = {
        .type = LG_METRICS_GAUGE, .name = "g", .label_names = one, .nlabels = 1};
    assert_int_equal(lg_metrics_register(m, &g, &f), LG_OK);
    assert_int_equal(lg_metrics_family_with_labels(f, NULL, &s), LG_ERR_INVALID);
    char longv[LG_METRICS_MAX_LABEL_VALUE_BYTES + 2];
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = 0;
    assert_int_equal(lg_metrics_family_with_labels(f, (const char *const[]){longv}, &s),
                     LG_ERR_TOO_LARGE);
    /* Updates of the wrong type are ignored rather than corrupting the series. */
    lg_metrics_series *c;
    assert_int_equal(lg_metrics_register_counter(m, "typed_total", "", &c), LG_OK);
    lg_metrics_gauge_set(c, 5);
    lg_metrics_histogram_observe(c, 5);
    assert_int_equal(lg_metrics_get_counter(c), 0);
    assert_int_equal(lg_metrics_get_gauge(c), 0);
    lg_metrics_free(m);
}

static void test_metrics_render_cap(void **state)
{
    (void)state;
    lg_metrics *m = registry_new();
    lg_metrics_series *s;
    assert_int_equal(lg_metrics_register_counter(m, "a_total", "help text", &s), LG_OK);
    struct lg_buf b;
    lg_buf_init(&b, 16);
    assert_int_equal(lg_metrics_render(m, &b), LG_ERR_TOO_LARGE);
    lg_buf_deinit(&b);
    lg_metrics_free(m);
}

static void test_metrics_nomem(void **state)
{
    (void)state;
    /* Fail each allocation in turn: every path returns NOMEM and leaks nothing (cmocka's
     * allocator checks at teardown), until the run that needs no failure succeeds. */
    static const char *const labels[] = {"a", "b"};
    struct lg_metrics_desc d = {.type = LG_METRICS_HISTOGRAM,
                                .name = "h",
                                .help = "h",
                                .label_names = labels,
                                .nlabels = 2};
    for (long n = 0;; n++) {
        lg_metrics *m = NULL;
        lg_test_fail_after(n);
        int rc = lg_metrics_new(&m);
        lg_metrics_family *f = NULL;
        lg_metrics_series *s = NULL;
        if (rc == LG_OK) {
            rc = lg_metrics_register(m, &d, &f);
        }
        if (rc == LG_OK) {
            rc = lg_metrics_family_with_labels(f, (const char *const[]){"x", "y"}, &s);
        }
        lg_test_fail_after(-1);
        lg_metrics_free(m);
        if (rc == LG_OK) {
            assert_true(n > 3);
            break;
        }
        assert_int_equal(rc, LG_ERR_NOMEM);
    }
}

#define THREADS 4
#define ROUNDS 20000

static void *hammer(void *arg)
{
    lg_metrics_series **s = arg;
    for (int i = 0; i < ROUNDS; i++) {
        lg_metrics_counter_inc(s[0]);
        lg_metrics_gauge_add(s[1], 1);
        lg_metrics_histogram_observe(s[2], 0.5);
    }
    return NULL;
}

static void test_metrics_concurrent_updates(void **state)
{
    (void)state;
    lg_metrics *m = registry_new();
    lg_metrics_series *s[3];
    assert_int_equal(lg_metrics_register_counter(m, "n_total", "", &s[0]), LG_OK);
    assert_int_equal(lg_metrics_register_gauge(m, "g", "", &s[1]), LG_OK);
    static const double bounds[] = {1};
    struct lg_metrics_desc d = {
        .type = LG_METRICS_HISTOGRAM, .name = "h", .buckets = bounds, .nbuckets = 1};
    lg_metrics_family *f;
    assert_int_equal(lg_metrics_register(m, &d, &f), LG_OK);
    assert_int_equal(lg_metrics_family_with_labels(f, NULL, &s[2]), LG_OK);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, hammer, s), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    assert_int_equal(lg_metrics_get_counter(s[0]), THREADS * ROUNDS);
    assert_int_equal(lg_metrics_get_gauge(s[1]), THREADS * ROUNDS);
    assert_int_equal(lg_metrics_get_histogram_count(s[2]), THREADS * ROUNDS);
    /* 0.5 is exact in binary, so the concurrent CAS sum is exact too. */
    expect_render(m, "# HELP n_total \n# TYPE n_total counter\nn_total 80000\n"
                     "# HELP g \n# TYPE g gauge\ng 80000\n"
                     "# HELP h \n# TYPE h histogram\n"
                     "h_bucket{le=\"1\"} 80000\nh_bucket{le=\"+Inf\"} 80000\n"
                     "h_sum 40000\nh_count 80000\n");
    lg_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_counter_and_gauge_exposition, setup, NULL),
        cmocka_unit_test_setup_teardown(test_metrics_label_and_help_escaping, setup, NULL),
        cmocka_unit_test_setup_teardown(test_metrics_histogram_bucket_math, setup, NULL),
        cmocka_unit_test_setup_teardown(test_metrics_histogram_default_buckets, setup, NULL),
        cmocka_unit_test_setup_teardown(test_metrics_float_format, setup, NULL),
        cmocka_unit_test_setup_teardown(test_metrics_gauge_callback_at_scrape, setup, NULL),
        cmocka_unit_test_setup_teardown(test_metrics_counter_callback_at_scrape, setup, NULL),
        cmocka_unit_test_setup_teardown(test_metrics_cardinality_cap, setup, NULL),
        cmocka_unit_test_setup_teardown(test_metrics_invalid_registrations, setup, NULL),
        cmocka_unit_test_setup_teardown(test_metrics_render_cap, setup, NULL),
        cmocka_unit_test_setup_teardown(test_metrics_nomem, setup, NULL),
        cmocka_unit_test_setup_teardown(test_metrics_concurrent_updates, setup, NULL),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
