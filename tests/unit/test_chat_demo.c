/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "lg_buf.h"
#include "lg_chat_demo.h"
#include "lg_chat_request.h"
#include "lg_err.h"
#include "lg_test.h"

static const struct lg_chat_message msgs[] = {
    {"system", "You are helpful.", 16},
    {"user", "How does streaming with resume work in a gateway?", 49},
};

static struct lg_chat_request request(void)
{
    struct lg_chat_request r = {.user_id = "u",
                                .conversation_id = "",
                                .agent_id = "",
                                .provider_config_id = "",
                                .model = "demo",
                                .messages = msgs,
                                .n_messages = 2};
    return r;
}

struct run {
    struct event_base *base;
    struct lg_buf text;
    uint32_t deltas;
    bool done;
    struct lg_chat_outcome outcome;
    char finish[32];
    struct lg_chat_upcall *up;
    uint32_t cancel_after; /* cancel from inside the n-th delta; 0 = never */
};

static void on_delta(const char *t, size_t n, void *ud)
{
    struct run *r = ud;
    assert_false(r->done);
    assert_true(n > 0);
    assert_int_equal(lg_buf_append(&r->text, t, n), LG_OK);
    r->deltas++;
    if (r->cancel_after != 0 && r->deltas == r->cancel_after) {
        lg_chat_upcall_cancel(r->up);
        event_base_loopbreak(r->base);
    }
}

static void on_done(const struct lg_chat_outcome *o, void *ud)
{
    struct run *r = ud;
    assert_false(r->done);
    r->done = true;
    r->outcome = *o;
    strncpy(r->finish, o->finish_reason, sizeof(r->finish) - 1);
    r->outcome.finish_reason = r->finish;
    event_base_loopbreak(r->base);
}

static void run_demo(struct run *r, const struct lg_chat_request *req)
{
    r->base = event_base_new();
    assert_non_null(r->base);
    lg_buf_init(&r->text, 1 << 16);
    struct lg_chat_call_params p = {.req = req, .upstream_model = "demo", .demo_pace_ms = 0};
    struct lg_chat_provider_cbs cbs = {on_delta, on_done};
    assert_int_equal(lg_chat_demo_start(r->base, &p, &cbs, r, &r->up), LG_OK);
    assert_int_equal(r->deltas, 0); /* nothing from inside start */
    event_base_dispatch(r->base);
}

static void run_end(struct run *r)
{
    lg_buf_deinit(&r->text);
    event_base_free(r->base);
}

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static void test_chat_demo_tokenizer(void **state)
{
    (void)state;
    assert_int_equal(lg_chat_demo_count_tokens("", 0), 0);
    assert_int_equal(lg_chat_demo_count_tokens("Hello, world!", 13), 4);
    assert_int_equal(lg_chat_demo_token_len(" world!", 7), 6);
    assert_int_equal(lg_chat_demo_token_len("   ", 3), 3);
    assert_int_equal(lg_chat_demo_count_tokens("a\nb", 3), 3);
    struct lg_chat_request r = request();
    /* 3 per reply + (3 + 4 tokens: "You are helpful .") + (3 + 10 tokens). */
    assert_int_equal(lg_chat_demo_prompt_tokens(&r), 3 + 7 + 13);
}

static void test_chat_demo_compose_is_deterministic_and_on_topic(void **state)
{
    (void)state;
    struct lg_chat_request r = request();
    struct lg_buf a, b;
    lg_buf_init(&a, 1 << 16);
    lg_buf_init(&b, 1 << 16);
    assert_int_equal(lg_chat_demo_compose(&r, &a), LG_OK);
    assert_int_equal(lg_chat_demo_compose(&r, &b), LG_OK);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_true(a.len > 100);
    assert_non_null(strstr((char *)a.data, "streaming"));
    lg_buf_deinit(&a);
    lg_buf_deinit(&b);
    struct lg_chat_message hi[] = {{"user", "hi", 2}};
    r.messages = hi;
    r.n_messages = 1;
    lg_buf_init(&a, 1 << 16);
    assert_int_equal(lg_chat_demo_compose(&r, &a), LG_OK);
    assert_non_null(strstr((char *)a.data, "Hello!"));
    lg_buf_deinit(&a);
}

/* Streams every token of the composed reply, then "stop" with exact usage. */
static void test_chat_demo_streams_with_exact_usage(void **state)
{
    (void)state;
    struct lg_chat_request req = request();
    struct run r;
    memset(&r, 0, sizeof(r));
    run_demo(&r, &req);
    assert_true(r.done);
    assert_int_equal(r.outcome.err, LG_OK);
    assert_string_equal(r.finish, "stop");
    assert_true(r.outcome.has_usage);
    assert_int_equal(r.outcome.usage.completion_tokens, r.deltas);
    assert_int_equal(r.outcome.usage.completion_tokens,
                     lg_chat_demo_count_tokens((char *)r.text.data, r.text.len));
    assert_int_equal(r.outcome.usage.prompt_tokens, lg_chat_demo_prompt_tokens(&req));
    struct lg_buf whole;
    lg_buf_init(&whole, 1 << 16);
    assert_int_equal(lg_chat_demo_compose(&req, &whole), LG_OK);
    assert_int_equal(whole.len, r.text.len);
    assert_memory_equal(whole.data, r.text.data, whole.len);
    lg_buf_deinit(&whole);
    run_end(&r);
}

static void test_chat_demo_max_tokens_gives_length(void **state)
{
    (void)state;
    struct lg_chat_request req = request();
    req.has_max_tokens = true;
    req.max_tokens = 5;
    struct run r;
    memset(&r, 0, sizeof(r));
    run_demo(&r, &req);
    assert_true(r.done);
    assert_string_equal(r.finish, "length");
    assert_int_equal(r.deltas, 5);
    assert_int_equal(r.outcome.usage.completion_tokens, 5);
    run_end(&r);
}

/* Cancel from inside on_delta: no more callbacks, no leak (cmocka checks). */
static void test_chat_demo_cancel_inside_delta(void **state)
{
    (void)state;
    struct lg_chat_request req = request();
    struct run r;
    memset(&r, 0, sizeof(r));
    r.cancel_after = 3;
    run_demo(&r, &req);
    assert_false(r.done);
    assert_int_equal(r.deltas, 3);
    event_base_loop(r.base, EVLOOP_NONBLOCK);
    assert_int_equal(r.deltas, 3);
    run_end(&r);
}

static void test_chat_demo_start_out_of_memory(void **state)
{
    (void)state;
    struct lg_chat_request req = request();
    struct event_base *base = event_base_new();
    struct lg_chat_call_params p = {.req = &req, .upstream_model = "demo"};
    struct lg_chat_provider_cbs cbs = {on_delta, on_done};
    struct lg_chat_upcall *up = NULL;
    lg_test_fail_after(0);
    assert_int_equal(lg_chat_demo_start(base, &p, &cbs, NULL, &up), LG_ERR_NOMEM);
    lg_test_fail_after(1);
    assert_int_equal(lg_chat_demo_start(base, &p, &cbs, NULL, &up), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    /* Cancel before the first token, from outside any callback. */
    assert_int_equal(lg_chat_demo_start(base, &p, &cbs, NULL, &up), LG_OK);
    lg_chat_upcall_cancel(up);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_chat_demo_tokenizer, setup),
        cmocka_unit_test_setup(test_chat_demo_compose_is_deterministic_and_on_topic, setup),
        cmocka_unit_test_setup(test_chat_demo_streams_with_exact_usage, setup),
        cmocka_unit_test_setup(test_chat_demo_max_tokens_gives_length, setup),
        cmocka_unit_test_setup(test_chat_demo_cancel_inside_delta, setup),
        cmocka_unit_test_setup(test_chat_demo_start_out_of_memory, setup),
    };
    return cmocka_run_group_tests_name("chat_demo", tests, NULL, NULL);
}
