/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "lg_err.h"
#include "lg_loop.h"
#include "lg_test.h"

struct loop_fixture {
    struct event_base *base;
    int accepted; /* fds accepted so far */
    int signals;  /* signals seen */
    int last_signo;
};

static int setup(void **state)
{
    lg_test_use_cmocka_allocator();
    struct loop_fixture *f = test_calloc(1, sizeof(*f));
    f->base = event_base_new();
    assert_non_null(f->base);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct loop_fixture *f = *state;
    event_base_free(f->base);
    test_free(f);
    return 0;
}

static void on_accept(int fd, const struct sockaddr *peer, int peer_len, void *user_data)
{
    (void)peer;
    (void)peer_len;
    struct loop_fixture *f = user_data;
    f->accepted++;
    close(fd);
    event_base_loopbreak(f->base);
}

static void test_loop_listen_port_zero_reports_bound_address(void **state)
{
    struct loop_fixture *f = *state;
    lg_loop_listener *l = NULL;
    char bound[64];
    assert_int_equal(
        lg_loop_listen(&l, f->base, "127.0.0.1:0", 16, on_accept, f, bound, sizeof(bound)), LG_OK);
    assert_true(strncmp(bound, "127.0.0.1:", 10) == 0);
    assert_true(strcmp(bound, "127.0.0.1:0") != 0);
    /* Connect to the reported port: the accept callback proves the address is real. */
    int port = 0;
    for (const char *p = bound + 10; *p; p++) {
        port = port * 10 + (*p - '0');
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    event_base_dispatch(f->base);
    assert_int_equal(f->accepted, 1);
    close(fd);
    lg_loop_listener_free(l);
}

static void test_loop_listen_rejects_bad_address(void **state)
{
    struct loop_fixture *f = *state;
    lg_loop_listener *l = NULL;
    assert_int_equal(lg_loop_listen(&l, f->base, "no-port", 16, on_accept, f, NULL, 0),
                     LG_ERR_INVALID);
    assert_null(l);
}

static void test_loop_listen_busy_port_is_io_error(void **state)
{
    struct loop_fixture *f = *state;
    lg_loop_listener *a = NULL, *b = NULL;
    char bound[64];
    assert_int_equal(
        lg_loop_listen(&a, f->base, "127.0.0.1:0", 16, on_accept, f, bound, sizeof(bound)), LG_OK);
    /* SO_REUSEADDR does not allow two listeners on one port. */
    assert_int_equal(lg_loop_listen(&b, f->base, bound, 16, on_accept, f, NULL, 0), LG_ERR_IO);
    lg_loop_listener_free(a);
}

static void test_loop_listen_nomem(void **state)
{
    struct loop_fixture *f = *state;
    lg_loop_listener *l = NULL;
    lg_test_fail_after(0);
    assert_int_equal(lg_loop_listen(&l, f->base, "127.0.0.1:0", 16, on_accept, f, NULL, 0),
                     LG_ERR_NOMEM);
    lg_test_fail_after(-1);
}

static void on_signal(int signo, void *user_data)
{
    struct loop_fixture *f = user_data;
    f->signals++;
    f->last_signo = signo;
    event_base_loopbreak(f->base);
}

static void test_loop_signals_deliver_on_loop(void **state)
{
    struct loop_fixture *f = *state;
    lg_loop_signals *s = NULL;
    assert_int_equal(lg_loop_signals_new(&s, f->base, on_signal, f), LG_OK);
    assert_int_equal(raise(SIGHUP), 0);
    event_base_dispatch(f->base);
    assert_int_equal(f->signals, 1);
    assert_int_equal(f->last_signo, SIGHUP);
    /* SIGPIPE is ignored now: raising it does not kill the process. */
    assert_int_equal(raise(SIGPIPE), 0);
    lg_loop_signals_free(s);
}

static void test_loop_format_addr_ipv6(void **state)
{
    (void)state;
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(8080);
    s6.sin6_addr = in6addr_loopback;
    char out[64];
    assert_int_equal(lg_loop_format_addr((struct sockaddr *)&s6, out, sizeof(out)), LG_OK);
    assert_string_equal(out, "[::1]:8080");
    char tiny[4];
    assert_int_equal(lg_loop_format_addr((struct sockaddr *)&s6, tiny, sizeof(tiny)),
                     LG_ERR_TOO_LARGE);
}

static void test_loop_now_ms_is_monotonic(void **state)
{
    (void)state;
    int64_t a = lg_loop_now_ms();
    int64_t b = lg_loop_now_ms();
    assert_true(a > 0);
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loop_listen_port_zero_reports_bound_address, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_loop_listen_rejects_bad_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_listen_busy_port_is_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_listen_nomem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_signals_deliver_on_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_format_addr_ipv6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_now_ms_is_monotonic, setup, teardown),
    };
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
