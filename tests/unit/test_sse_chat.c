/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of lg_sse_chat's resume routing: stream-id node prefixes, route configuration,
 * and that an id no route can reach is refused before any connection is attempted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "lg_err.h"
#include "lg_sse_chat.h"
#include "lg_test.h"

#define RND "AAAAAAAAAAAAAAAAAAAAAA" /* 22 characters: the random part */

struct fixture {
    struct event_base *base;
    lg_sse_chat *chat;
};

/* cmocka checks each test function for leaks on its own, so the object under test is made
 * and freed inside the test (fixture_open/fixture_close) rather than in setup/teardown. */
static void fixture_open(struct fixture *f)
{
    lg_test_use_cmocka_allocator();
    f->base = event_base_new();
    assert_non_null(f->base);
    /* A closed loopback port: nothing here ever needs an answer. */
    assert_int_equal(lg_sse_chat_new(&f->chat, f->base, "127.0.0.1:1"), LG_OK);
}

static void fixture_close(struct fixture *f)
{
    lg_sse_chat_free(f->chat);
    event_base_free(f->base);
}

static int on_event(const struct lg_sse_chat_event *ev, void *ud)
{
    (void)ev;
    (void)ud;
    return LG_OK;
}

static void on_end(int rc, const char *message, void *ud)
{
    (void)rc;
    (void)message;
    (void)ud;
}

static void on_cancel(int rc, bool cancelled, const char *message, void *ud)
{
    (void)rc;
    (void)cancelled;
    (void)message;
    (void)ud;
}

static void test_sse_chat_parse_node(void **state)
{
    (void)state;
    char node[LG_SSE_CHAT_NODE_MAX_DIGITS + 1];
    assert_int_equal(lg_sse_chat_parse_node("n2_" RND, node), LG_OK);
    assert_string_equal(node, "2");
    assert_int_equal(lg_sse_chat_parse_node("n99999_" RND, node), LG_OK);
    assert_string_equal(node, "99999");
    assert_int_equal(lg_sse_chat_parse_node(RND, node), LG_ERR_NOT_FOUND);
    assert_string_equal(node, "");
    /* A random part that starts like a prefix is still only a random part. */
    assert_int_equal(lg_sse_chat_parse_node("n1_AAAAAAAAAAAAAAAAAAA", node), LG_ERR_NOT_FOUND);
    const char *bad[] = {"x_" RND, "n_" RND, "n01_" RND, "n123456_" RND,
                         "n1" RND, "1_" RND, "n-1_" RND, "short"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(lg_sse_chat_parse_node(bad[i], node), LG_ERR_INVALID);
    }
}

static void test_sse_chat_routes_refuse_bad_config(void **state)
{
    (void)state;
    struct fixture fx;
    struct fixture *f = &fx;
    fixture_open(f);
    assert_int_equal(lg_sse_chat_set_routes(f->chat, "llmgate-chat:50051", NULL), LG_ERR_INVALID);
    const char *maps[] = {
        "x=127.0.0.1:1", "0127.0.0.1:1", "01=127.0.0.1:1", "1=", "1=127.0.0.1:1,,", "=127.0.0.1:1"};
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        assert_int_equal(lg_sse_chat_set_routes(f->chat, NULL, maps[i]), LG_ERR_INVALID);
    }
    fixture_close(f);
}

static void test_sse_chat_unknown_node_is_not_found(void **state)
{
    (void)state;
    struct fixture fx;
    struct fixture *f = &fx;
    fixture_open(f);
    assert_int_equal(lg_sse_chat_set_routes(f->chat, NULL, "0=127.0.0.1:1,1=127.0.0.1:2"), LG_OK);
    lg_sse_call *call = NULL;
    /* A node no route knows, and a malformed prefix: refused, nothing dialled. */
    assert_int_equal(lg_sse_chat_resume(f->chat, "u", "n7_" RND, 0, on_event, on_end, NULL, &call),
                     LG_ERR_NOT_FOUND);
    assert_int_equal(lg_sse_chat_resume(f->chat, "u", "nx_" RND, 0, on_event, on_end, NULL, &call),
                     LG_ERR_NOT_FOUND);
    assert_int_equal(lg_sse_chat_cancel(f->chat, "u", "n7_" RND, on_cancel, NULL, &call),
                     LG_ERR_NOT_FOUND);
    /* A known node gets a call (to its own address); aborting it leaves nothing behind. */
    assert_int_equal(lg_sse_chat_resume(f->chat, "u", "n1_" RND, 0, on_event, on_end, NULL, &call),
                     LG_OK);
    lg_sse_call_abort(call);
    /* An id without a node goes to the default target. */
    assert_int_equal(lg_sse_chat_resume(f->chat, "u", RND, 0, on_event, on_end, NULL, &call),
                     LG_OK);
    lg_sse_call_abort(call);
    fixture_close(f);
}

static void test_sse_chat_template_routes_any_node(void **state)
{
    (void)state;
    struct fixture fx;
    struct fixture *f = &fx;
    fixture_open(f);
    assert_int_equal(lg_sse_chat_set_routes(f->chat, "127.0.0.{ordinal}:1", NULL), LG_OK);
    lg_sse_call *call = NULL;
    assert_int_equal(lg_sse_chat_resume(f->chat, "u", "n3_" RND, 0, on_event, on_end, NULL, &call),
                     LG_OK);
    lg_sse_call_abort(call);
    assert_int_equal(lg_sse_chat_resume(f->chat, "u", "n01_" RND, 0, on_event, on_end, NULL, &call),
                     LG_ERR_NOT_FOUND);
    fixture_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_chat_parse_node),
        cmocka_unit_test(test_sse_chat_routes_refuse_bad_config),
        cmocka_unit_test(test_sse_chat_unknown_node_is_not_found),
        cmocka_unit_test(test_sse_chat_template_routes_any_node),
    };
    return cmocka_run_group_tests_name("sse_chat", tests, NULL, NULL);
}
