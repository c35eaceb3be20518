/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_admin over a real socket: the server runs on its own event loop thread on 127.0.0.1:0,
 * the test thread fetches with libcurl's easy interface (blocking, which is fine in a test).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "lg_admin.h"
#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_metrics.h"
#include "lg_test.h"

/* Bound for every poll in this file; a poll that runs out fails the test. */
#define POLL_DEADLINE_MS 10000

struct fixture {
    struct event_base *base;
    lg_metrics *metrics;
    lg_admin *admin;
    pthread_t loop;
    atomic_bool ready;       /* what the readiness callback reports */
    char url[128];           /* "http://127.0.0.1:PORT" */
    struct evhttp *edge;     /* only in the embedded-mode test */
};

struct response {
    long status;
    char content_type[128];
    struct lg_buf body;
};

static bool fixture_ready(void *ud)
{
    struct fixture *fx = ud;
    return atomic_load(&fx->ready);
}

static void *loop_main(void *arg)
{
    struct fixture *fx = arg;
    event_base_loop(fx->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void fixture_start(struct fixture *fx)
{
    assert_int_equal(pthread_create(&fx->loop, NULL, loop_main, fx), 0);
}

static int setup(void **state)
{
    lg_test_use_cmocka_allocator();
    /* libc calloc, not lg_malloc: the fixture outlives the test body that cmocka checks. */
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL) {
        return -1;
    }
    atomic_init(&fx->ready, true);
    fx->base = event_base_new();
    if (fx->base == NULL) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

/* Stops the loop thread, then frees on this thread (the loop no longer runs). */
static void fixture_stop(struct fixture *fx)
{
    event_base_loopbreak(fx->base);
    pthread_join(fx->loop, NULL);
    lg_admin_free(fx->admin);
    fx->admin = NULL;
    if (fx->edge != NULL) {
        evhttp_free(fx->edge);
        fx->edge = NULL;
    }
    lg_metrics_free(fx->metrics);
    fx->metrics = NULL;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    event_base_free(fx->base);
    free(fx);
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct response *r = ud;
    return lg_buf_append(&r->body, p, size * n) == LG_OK ? size * n : 0;
}

/* Performs one request; |method| NULL = GET. |header| is an extra request header or NULL.
 * Returns the curl result; |r| holds status, content type and body (free with resp_free). */
static CURLcode fetch(const char *url, const char *method, const char *header,
                      struct response *r)
{
    memset(r, 0, sizeof(*r));
    lg_buf_init(&r->body, LG_METRICS_MAX_RENDER_BYTES);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *hdrs = header != NULL ? curl_slist_append(NULL, header) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)POLL_DEADLINE_MS);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (method != NULL && strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (method != NULL) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    if (hdrs != NULL) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct != NULL) {
        snprintf(r->content_type, sizeof(r->content_type), "%s", ct);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc;
}

static void resp_free(struct response *r)
{
    lg_buf_deinit(&r->body);
}

static const char *body_str(const struct response *r)
{
    return r->body.data != NULL ? (const char *)r->body.data : "";
}

/* GETs |path| and checks status and exact body. */
static void expect_get(struct fixture *fx, const char *path, long status, const char *body)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", fx->url, path);
    struct response r;
    assert_int_equal(fetch(url, NULL, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, status);
    assert_string_equal(body_str(&r), body);
    resp_free(&r);
}

/* Starts metrics + admin on 127.0.0.1:0 and the loop thread. */
static void start_admin(struct fixture *fx)
{
    assert_int_equal(lg_metrics_new(&fx->metrics), LG_OK);
    struct lg_admin_opts o = {.listen = "127.0.0.1:0",
                              .metrics = fx->metrics,
                              .ready_cb = fixture_ready,
                              .ready_user_data = fx};
    assert_int_equal(lg_admin_new(&fx->admin, fx->base, &o), LG_OK);
    const char *addr = lg_admin_get_address(fx->admin);
    assert_true(strncmp(addr, "127.0.0.1:", 10) == 0);
    assert_string_not_equal(addr, "127.0.0.1:0"); /* the bound port, not the asked one */
    snprintf(fx->url, sizeof(fx->url), "http://%s", addr);
    fixture_start(fx);
}

static void test_admin_healthz(void **state)
{
    struct fixture *fx = *state;
    start_admin(fx);
    char url[256];
    snprintf(url, sizeof(url), "%s/healthz", fx->url);
    struct response r;
    assert_int_equal(fetch(url, NULL, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(body_str(&r), "{\"status\":\"ok\"}");
    resp_free(&r);
    /* HEAD gets the status without a body. */
    assert_int_equal(fetch(url, "HEAD", NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fixture_stop(fx);
}

/* Flips readiness on the loop thread, as a drain does (lg_admin_set_ready is loop-only). */
static void set_not_ready_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg_admin_set_ready(arg, false);
}

/* Polls /readyz until it answers |status|; fails after POLL_DEADLINE_MS. */
static void poll_readyz(struct fixture *fx, long status)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/readyz", fx->url);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct response r;
        assert_int_equal(fetch(url, NULL, NULL, &r), CURLE_OK);
        long got = r.status;
        resp_free(&r);
        if (got == status) {
            return;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        assert_true(ms < POLL_DEADLINE_MS);
    }
}

static void test_admin_readyz_flips(void **state)
{
    struct fixture *fx = *state;
    start_admin(fx);
    expect_get(fx, "/readyz", 200, "{\"status\":\"ready\"}");
    /* The callback says no: 503 at once (it is asked on every request). */
    atomic_store(&fx->ready, false);
    expect_get(fx, "/readyz", 503, "{\"status\":\"not_ready\"}");
    atomic_store(&fx->ready, true);
    expect_get(fx, "/readyz", 200, "{\"status\":\"ready\"}");
    /* The flag says no (drain started on the loop thread): 503 although the callback says
     * yes. Liveness is unaffected. */
    assert_int_equal(event_base_once(fx->base, -1, EV_TIMEOUT, set_not_ready_cb, fx->admin, NULL),
                     0);
    poll_readyz(fx, 503);
    expect_get(fx, "/healthz", 200, "{\"status\":\"ok\"}");
    fixture_stop(fx);
}

static void test_admin_metrics(void **state)
{
    struct fixture *fx = *state;
    start_admin(fx);
    lg_metrics_series *c;
    assert_int_equal(lg_metrics_register_counter(fx->metrics, "llmgate_test_total", "Test.", &c),
                     LG_OK);
    lg_metrics_counter_inc(c);
    char url[256];
    snprintf(url, sizeof(url), "%s/metrics", fx->url);
    struct response r;
    assert_int_equal(fetch(url, NULL, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, LG_METRICS_CONTENT_TYPE);
    assert_string_equal(body_str(&r), "# HELP llmgate_test_total Test.\n"
                                      "# TYPE llmgate_test_total counter\n"
                                      "llmgate_test_total 1\n");
    resp_free(&r);
    /* Counters move between scrapes. */
    lg_metrics_counter_add(c, 4);
    assert_int_equal(fetch(url, NULL, NULL, &r), CURLE_OK);
    assert_non_null(strstr(body_str(&r), "\nllmgate_test_total 5\n"));
    resp_free(&r);
    fixture_stop(fx);
}

static void test_admin_not_found_and_bad_method(void **state)
{
    struct fixture *fx = *state;
    start_admin(fx);
    char url[256];
    snprintf(url, sizeof(url), "%s/nope?x=1", fx->url);
    struct response r;
    assert_int_equal(fetch(url, NULL, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.content_type, "application/json");
    assert_non_null(strstr(body_str(&r), "{\"error\":{\"code\":\"not_found\""));
    resp_free(&r);
    snprintf(url, sizeof(url), "%s/metrics", fx->url);
    assert_int_equal(fetch(url, "POST", NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(body_str(&r), "method_not_allowed"));
    resp_free(&r);
    /* A query string does not change the route. */
    expect_get(fx, "/healthz?verbose=1", 200, "{\"status\":\"ok\"}");
    fixture_stop(fx);
}

static void test_admin_header_limit(void **state)
{
    struct fixture *fx = *state;
    start_admin(fx);
    /* One header past LG_ADMIN_MAX_HEADER_BYTES: refused by evhttp before any handler. */
    static char big[LG_ADMIN_MAX_HEADER_BYTES + 64];
    memcpy(big, "X-Big: ", 7);
    memset(big + 7, 'a', sizeof(big) - 8);
    big[sizeof(big) - 1] = 0;
    char url[256];
    snprintf(url, sizeof(url), "%s/healthz", fx->url);
    struct response r;
    CURLcode rc = fetch(url, NULL, big, &r);
    /* Either an error status or a closed connection; never a 200. */
    assert_true(rc != CURLE_OK || r.status >= 400);
    resp_free(&r);
    /* The server still serves normal requests afterwards. */
    expect_get(fx, "/healthz", 200, "{\"status\":\"ok\"}");
    fixture_stop(fx);
}

static void test_admin_bind_errors(void **state)
{
    struct fixture *fx = *state;
    lg_admin *a = NULL;
    struct lg_admin_opts o = {.listen = "no-port-here"};
    assert_int_equal(lg_admin_new(&a, fx->base, &o), LG_ERR_INVALID);
    assert_null(a);
    /* A port already bound by another admin server. */
    lg_admin *first;
    o.listen = "127.0.0.1:0";
    assert_int_equal(lg_admin_new(&first, fx->base, &o), LG_OK);
    struct lg_admin_opts again = {.listen = lg_admin_get_address(first)};
    assert_int_equal(lg_admin_new(&a, fx->base, &again), LG_ERR_IO);
    lg_admin_free(first);
    assert_int_equal(lg_admin_new(&a, NULL, &o), LG_ERR_INVALID);
    /* Allocation failure: nothing bound, nothing leaked. */
    lg_test_fail_after(0);
    assert_int_equal(lg_admin_new(&a, fx->base, &o), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
}

/* The port of a "HOST:PORT" address (digits after the last ':'). */
static uint16_t port_of(const char *addr)
{
    unsigned port = 0;
    for (const char *p = strrchr(addr, ':') + 1; *p >= '0' && *p <= '9'; p++) {
        port = port * 10 + (unsigned)(*p - '0');
    }
    return (uint16_t)port;
}

static void test_admin_body_limit(void **state)
{
    struct fixture *fx = *state;
    start_admin(fx);
    /* A body past LG_ADMIN_MAX_BODY_BYTES is refused by evhttp before the handler runs (which
     * would have answered 405 for a POST). */
    static char big[LG_ADMIN_MAX_BODY_BYTES * 2];
    memset(big, 'b', sizeof(big));
    char url[256];
    snprintf(url, sizeof(url), "%s/healthz", fx->url);
    struct response r;
    memset(&r, 0, sizeof(r));
    lg_buf_init(&r.body, LG_METRICS_MAX_RENDER_BYTES);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, big);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)sizeof(big));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)POLL_DEADLINE_MS);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    assert_true(rc != CURLE_OK || r.status == 413);
    resp_free(&r);
    expect_get(fx, "/healthz", 200, "{\"status\":\"ok\"}");
    fixture_stop(fx);
}

static void test_admin_idle_timeout(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(lg_metrics_new(&fx->metrics), LG_OK);
    /* A short timeout so the test does not wait LG_ADMIN_TIMEOUT_MS; the assertion is only
     * that the server closes a silent connection, not when. */
    struct lg_admin_opts o = {.listen = "127.0.0.1:0", .metrics = fx->metrics, .timeout_ms = 100};
    assert_int_equal(lg_admin_new(&fx->admin, fx->base, &o), LG_OK);
    fixture_start(fx);
    const char *addr = lg_admin_get_address(fx->admin);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port_of(addr));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    /* Half a request line, then silence: a slow client must not hold the socket forever. */
    assert_int_equal(send(fd, "GET /hea", 8, MSG_NOSIGNAL), 8);
    struct timeval tv = {.tv_sec = POLL_DEADLINE_MS / 1000, .tv_usec = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    char buf[512];
    ssize_t n;
    do {
        n = recv(fd, buf, sizeof(buf), 0);
    } while (n > 0); /* libevent may answer 408 or just close; either ends in EOF */
    assert_int_equal(n, 0); /* EOF from the server, not our receive deadline (-1) */
    close(fd);
    fixture_stop(fx);
}

/* True when this machine can bind the IPv6 loopback (some containers have no IPv6). */
static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void test_admin_ipv6_address(void **state)
{
    struct fixture *fx = *state;
    if (!have_ipv6_loopback()) {
        skip();
    }
    struct lg_admin_opts o = {.listen = "[::1]:0"};
    assert_int_equal(lg_admin_new(&fx->admin, fx->base, &o), LG_OK);
    const char *addr = lg_admin_get_address(fx->admin);
    assert_true(strncmp(addr, "[::1]:", 6) == 0); /* bracketed, ready for a URL */
    snprintf(fx->url, sizeof(fx->url), "http://%s", addr);
    fixture_start(fx);
    expect_get(fx, "/healthz", 200, "{\"status\":\"ok\"}");
    fixture_stop(fx);
}

/* Embedded mode: a binary's own evhttp hands requests to lg_admin_serve. */
static void edge_cb(struct evhttp_request *req, void *ud)
{
    struct fixture *fx = ud;
    if (lg_admin_serve(fx->admin, req) == LG_ERR_NOT_FOUND) {
        evhttp_send_reply(req, 418, "Teapot", NULL);
    }
}

static void test_admin_serve_embedded(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(lg_metrics_new(&fx->metrics), LG_OK);
    struct lg_admin_opts o = {.metrics = fx->metrics};
    assert_int_equal(lg_admin_new(&fx->admin, fx->base, &o), LG_OK);
    assert_string_equal(lg_admin_get_address(fx->admin), "");
    fx->edge = evhttp_new(fx->base);
    assert_non_null(fx->edge);
    evhttp_set_gencb(fx->edge, edge_cb, fx);
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(fx->edge, "127.0.0.1", 0);
    assert_non_null(s);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sin, &sl),
                     0);
    snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    fixture_start(fx);
    expect_get(fx, "/healthz", 200, "{\"status\":\"ok\"}");
    expect_get(fx, "/metrics", 200, ""); /* empty registry */
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/chat/streams", fx->url);
    struct response r;
    assert_int_equal(fetch(url, NULL, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 418); /* left to the binary's own handler */
    resp_free(&r);
    fixture_stop(fx);
}

/* Parses |text| with the Prometheus project's own Python parser (prometheus_client, Debian
 * python3-prometheus-client) and returns its canonical dump (lg_free), or NULL. */
static char *parse_with_prometheus_client(const char *text)
{
    static const char script[] =
        "import sys\n"
        "from prometheus_client.parser import text_string_to_metric_families\n"
        "for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
        "    print('family', fam.name, fam.type, repr(fam.documentation))\n"
        "    for s in fam.samples:\n"
        "        ls = ','.join('%s=%r' % kv for kv in sorted(s.labels.items()))\n"
        "        print(' ', s.name, '{' + ls + '}', repr(s.value))\n";
    char spath[] = "/tmp/lg_admin_parse_XXXXXX";
    char bpath[] = "/tmp/lg_admin_body_XXXXXX";
    int sfd = mkstemp(spath);
    int bfd = mkstemp(bpath);
    assert_true(sfd >= 0 && bfd >= 0);
    assert_int_equal(write(sfd, script, sizeof(script) - 1), (ssize_t)(sizeof(script) - 1));
    assert_int_equal(write(bfd, text, strlen(text)), (ssize_t)strlen(text));
    close(sfd);
    close(bfd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s", spath, bpath);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    struct lg_buf out;
    lg_buf_init(&out, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
        assert_int_equal(lg_buf_append(&out, chunk, n), LG_OK);
    }
    int status = pclose(p);
    unlink(spath);
    unlink(bpath);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(lg_buf_take(&out, &data, &len), LG_OK);
    lg_buf_deinit(&out);
    if (status != 0) {
        lg_free(data);
        return NULL;
    }
    return (char *)data;
}

static void test_admin_metrics_parse_with_prometheus_client(void **state)
{
    struct fixture *fx = *state;
    start_admin(fx);
    static const char *const labels[] = {"method", "code"};
    static const double bounds[] = {0.1, 1};
    struct lg_metrics_desc hd = {.type = LG_METRICS_HISTOGRAM,
                                 .name = "llmgate_rpc_seconds",
                                 .help = "RPC time.\nSecond line \\ backslash.",
                                 .label_names = labels,
                                 .nlabels = 1,
                                 .buckets = bounds,
                                 .nbuckets = 2};
    struct lg_metrics_desc cd = {.type = LG_METRICS_COUNTER,
                                 .name = "llmgate_rpcs_total",
                                 .help = "RPCs.",
                                 .label_names = labels,
                                 .nlabels = 2};
    lg_metrics_family *hf, *cf;
    assert_int_equal(lg_metrics_register(fx->metrics, &hd, &hf), LG_OK);
    assert_int_equal(lg_metrics_register(fx->metrics, &cd, &cf), LG_OK);
    lg_metrics_series *h, *c1, *c2, *g;
    assert_int_equal(lg_metrics_family_with_labels(hf, (const char *const[]){"Chat"}, &h),
                     LG_OK);
    assert_int_equal(
        lg_metrics_family_with_labels(cf, (const char *const[]){"Chat", "OK"}, &c1), LG_OK);
    assert_int_equal(lg_metrics_family_with_labels(
                         cf, (const char *const[]){"we\"ird\\na\nme", "INTERNAL"}, &c2),
                     LG_OK);
    assert_int_equal(lg_metrics_register_gauge(fx->metrics, "llmgate_open", "Open.", &g), LG_OK);
    lg_metrics_histogram_observe(h, 0.05);
    lg_metrics_histogram_observe(h, 0.5);
    lg_metrics_histogram_observe(h, 3);
    lg_metrics_counter_add(c1, 7);
    lg_metrics_counter_inc(c2);
    lg_metrics_gauge_set(g, -4);

    char url[256];
    snprintf(url, sizeof(url), "%s/metrics", fx->url);
    struct response r;
    assert_int_equal(fetch(url, NULL, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    char *dump = parse_with_prometheus_client(body_str(&r));
    assert_non_null(dump); /* the parser accepted the whole scrape */
    assert_string_equal(dump,
                        "family llmgate_rpc_seconds histogram 'RPC time.\\nSecond line \\\\ "
                        "backslash.'\n"
                        "  llmgate_rpc_seconds_bucket {le='0.1',method='Chat'} 1.0\n"
                        "  llmgate_rpc_seconds_bucket {le='1',method='Chat'} 2.0\n"
                        "  llmgate_rpc_seconds_bucket {le='+Inf',method='Chat'} 3.0\n"
                        "  llmgate_rpc_seconds_sum {method='Chat'} 3.55\n"
                        "  llmgate_rpc_seconds_count {method='Chat'} 3.0\n"
                        "family llmgate_rpcs counter 'RPCs.'\n"
                        "  llmgate_rpcs_total {code='OK',method='Chat'} 7.0\n"
                        "  llmgate_rpcs_total {code='INTERNAL',method='we\"ird\\\\na\\nme'} "
                        "1.0\n"
                        "family llmgate_open gauge 'Open.'\n"
                        "  llmgate_open {} -4.0\n");
    lg_free(dump);
    resp_free(&r);
    fixture_stop(fx);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_admin_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_readyz_flips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_metrics_parse_with_prometheus_client, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_admin_not_found_and_bad_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_header_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_body_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_bind_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_ipv6_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_serve_embedded, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("admin", tests, NULL, NULL);
    curl_global_cleanup();
    libevent_global_shutdown();
    return rc;
}
