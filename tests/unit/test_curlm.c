/* SPDX-License-Identifier: Apache-2.0 */
/* lg_curlm against a real in-process HTTP server (libevent evhttp) on the same loop. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "lg_curlm.h"
#include "lg_err.h"
#include "lg_test.h"

#define TEST_PARALLEL 20

struct fixture {
    struct event_base *base;
    struct evhttp *http;
    uint16_t port;
    lg_curlm *m;
    int slow_requests;           /* requests that reached /slow */
    struct evhttp_request *held; /* a /slow request answered later */
};

struct xfer {
    struct fixture *f;
    CURL *easy;
    char body[64];
    size_t len;
    bool done;
    CURLcode result;
    int *pending; /* transfers still running; the loop stops at 0 */
};

static void on_hello(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, "hello", 5);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void on_slow(struct evhttp_request *req, void *arg)
{
    struct fixture *f = arg;
    f->slow_requests++;
    f->held = req; /* answered in teardown */
}

static int setup(void **state)
{
    lg_test_use_cmocka_allocator();
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    f.base = event_base_new();
    f.http = evhttp_new(f.base);
    evhttp_set_cb(f.http, "/hello", on_hello, &f);
    evhttp_set_cb(f.http, "/slow", on_slow, &f);
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(f.http, "127.0.0.1", 0);
    assert_non_null(s);
    struct sockaddr_in sin;
    ev_socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sin, &len), 0);
    f.port = ntohs(sin.sin_port);
    assert_int_equal(lg_curlm_new(&f.m, f.base), LG_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    lg_curlm_free(f->m);
    if (f->held != NULL) {
        evhttp_send_reply(f->held, 200, "OK", NULL);
    }
    evhttp_free(f->http);
    event_base_free(f->base);
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    size_t room = sizeof(x->body) - 1 - x->len;
    memcpy(x->body + x->len, p, len < room ? len : room);
    x->len += len < room ? len : room;
    return len;
}

static void on_done(CURL *easy, CURLcode result, void *ud)
{
    struct xfer *x = ud;
    assert_ptr_equal(easy, x->easy);
    assert_false(x->done);
    x->done = true;
    x->result = result;
    if (--*x->pending == 0) {
        event_base_loopbreak(x->f->base);
    }
}

static void xfer_start(struct fixture *f, struct xfer *x, const char *path, uint16_t port,
                       int *pending)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
    memset(x, 0, sizeof(*x));
    x->f = f;
    x->pending = pending;
    x->easy = curl_easy_init();
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    assert_int_equal(lg_curlm_add(f->m, x->easy, on_done, x), LG_OK);
    (*pending)++;
}

static void test_curlm_fetches_on_the_loop(void **state)
{
    struct fixture *f = *state;
    int pending = 0;
    struct xfer x;
    xfer_start(f, &x, "/hello", f->port, &pending);
    assert_int_equal(lg_curlm_count(f->m), 1);
    event_base_dispatch(f->base);
    assert_true(x.done);
    assert_int_equal(x.result, CURLE_OK);
    assert_string_equal(x.body, "hello");
    assert_int_equal(lg_curlm_count(f->m), 0);
    curl_easy_cleanup(x.easy);
}

static void test_curlm_many_transfers_share_the_loop(void **state)
{
    struct fixture *f = *state;
    int pending = 0;
    struct xfer x[TEST_PARALLEL];
    for (int i = 0; i < TEST_PARALLEL; i++) {
        xfer_start(f, &x[i], "/hello", f->port, &pending);
    }
    event_base_dispatch(f->base);
    for (int i = 0; i < TEST_PARALLEL; i++) {
        assert_true(x[i].done);
        assert_int_equal(x[i].result, CURLE_OK);
        assert_string_equal(x[i].body, "hello");
        curl_easy_cleanup(x[i].easy);
    }
}

static void test_curlm_refused_connection_reports_error(void **state)
{
    struct fixture *f = *state;
    int pending = 0;
    struct xfer x;
    xfer_start(f, &x, "/hello", 1, &pending); /* nothing listens on port 1 */
    event_base_dispatch(f->base);
    assert_true(x.done);
    assert_int_equal(x.result, CURLE_COULDNT_CONNECT);
    curl_easy_cleanup(x.easy);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fixture *f = arg;
    if (f->slow_requests > 0) {
        event_base_loopbreak(f->base);
    }
}

/* Remove aborts a running transfer: no done callback, the handle is the caller's again. */
static void test_curlm_remove_aborts_without_callback(void **state)
{
    struct fixture *f = *state;
    int pending = 0;
    struct xfer x;
    xfer_start(f, &x, "/slow", f->port, &pending);
    struct event *poll = event_new(f->base, -1, EV_PERSIST, on_poll, f);
    struct timeval tick = {0, 1000};
    event_add(poll, &tick);
    event_base_dispatch(f->base); /* until the server holds the request */
    event_free(poll);
    assert_int_equal(f->slow_requests, 1);
    assert_int_equal(lg_curlm_remove(f->m, x.easy), LG_OK);
    assert_int_equal(lg_curlm_remove(f->m, x.easy), LG_ERR_NOT_FOUND);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_false(x.done);
    assert_int_equal(lg_curlm_count(f->m), 0);
    curl_easy_cleanup(x.easy);
}

static void test_curlm_out_of_memory(void **state)
{
    struct fixture *f = *state;
    lg_curlm *m = NULL;
    lg_test_fail_after(0);
    assert_int_equal(lg_curlm_new(&m, f->base), LG_ERR_NOMEM);
    CURL *e = curl_easy_init();
    lg_test_fail_after(0);
    assert_int_equal(lg_curlm_add(f->m, e, on_done, NULL), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_int_equal(lg_curlm_count(f->m), 0);
    curl_easy_cleanup(e);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_curlm_fetches_on_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curlm_many_transfers_share_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curlm_refused_connection_reports_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curlm_remove_aborts_without_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curlm_out_of_memory, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("curlm", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
