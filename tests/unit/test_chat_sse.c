/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lg_buf.h"
#include "lg_chat_sse.h"
#include "lg_err.h"
#include "lg_test.h"

/* A recorded OpenAI stream (with include_usage), as the wire carries it. */
static const char recorded[] =
    ": keep-alive\n"
    "\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],"
    "\"usage\":null}\n"
    "\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},"
    "\"finish_reason\":null}]}\n"
    "\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\\n\"},"
    "\"finish_reason\":\"stop\"}]}\n"
    "\n"
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
    "\"completion_tokens\":2,\"total_tokens\":11}}\n"
    "\n"
    "data: [DONE]\n"
    "\n";

#define MAX_EVENTS 16

struct collected {
    struct lg_buf all; /* every event as "<event>|<data>\n" */
    size_t n;
    int fail_at; /* return an error from the n-th callback (1-based); 0 = never */
};

static int collect(struct lg_slice event, struct lg_slice data, void *ud)
{
    struct collected *c = ud;
    c->n++;
    if (c->fail_at != 0 && (int)c->n == c->fail_at) {
        return LG_ERR_CANCELLED;
    }
    assert_int_equal(lg_buf_append(&c->all, event.ptr, event.len), LG_OK);
    assert_int_equal(lg_buf_append_byte(&c->all, '|'), LG_OK);
    assert_int_equal(lg_buf_append(&c->all, data.ptr, data.len), LG_OK);
    assert_int_equal(lg_buf_append_byte(&c->all, '\n'), LG_OK);
    return LG_OK;
}

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

/* Parses |text| in one go and returns the collected events (caller deinits). */
static void parse_whole(const char *text, size_t len, struct collected *c)
{
    memset(c, 0, sizeof(*c));
    lg_buf_init(&c->all, 1 << 20);
    lg_chat_sse *p;
    assert_int_equal(lg_chat_sse_new(&p, 4096, 4096), LG_OK);
    assert_int_equal(lg_chat_sse_feed(p, (const uint8_t *)text, len, collect, c), LG_OK);
    lg_chat_sse_free(p);
}

static void test_chat_sse_recorded_stream(void **state)
{
    (void)state;
    struct collected c;
    parse_whole(recorded, sizeof(recorded) - 1, &c);
    assert_int_equal(c.n, 5); /* the comment-only block dispatches nothing */
    assert_non_null(strstr((char *)c.all.data, "|{\"id\":\"c1\",\"choices\":[{\"index\":0,"
                                               "\"delta\":{\"content\":\"Hel\"}"));
    assert_non_null(strstr((char *)c.all.data, "|[DONE]\n"));
    lg_buf_deinit(&c.all);
}

/* Every split point into two reads, and then three reads, gives the same events. */
static void test_chat_sse_every_split_point(void **state)
{
    (void)state;
    struct collected whole;
    const size_t len = sizeof(recorded) - 1;
    parse_whole(recorded, len, &whole);
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j += 7) {
            struct collected c;
            memset(&c, 0, sizeof(c));
            lg_buf_init(&c.all, 1 << 20);
            lg_chat_sse *p;
            assert_int_equal(lg_chat_sse_new(&p, 4096, 4096), LG_OK);
            const uint8_t *b = (const uint8_t *)recorded;
            assert_int_equal(lg_chat_sse_feed(p, b, i, collect, &c), LG_OK);
            assert_int_equal(lg_chat_sse_feed(p, b + i, j - i, collect, &c), LG_OK);
            assert_int_equal(lg_chat_sse_feed(p, b + j, len - j, collect, &c), LG_OK);
            assert_int_equal(c.n, whole.n);
            assert_int_equal(c.all.len, whole.all.len);
            assert_memory_equal(c.all.data, whole.all.data, whole.all.len);
            lg_chat_sse_free(p);
            lg_buf_deinit(&c.all);
        }
    }
    lg_buf_deinit(&whole.all);
}

/* The same stream with CR and with CRLF line ends, fed byte by byte, gives the same events
 * (a CRLF split between two reads is one line end, not two). */
static void test_chat_sse_cr_lf_crlf(void **state)
{
    (void)state;
    struct collected lf;
    const size_t len = sizeof(recorded) - 1;
    parse_whole(recorded, len, &lf);
    const char *ends[] = {"\r", "\r\n"};
    for (size_t e = 0; e < 2; e++) {
        struct lg_buf conv;
        lg_buf_init(&conv, 1 << 20);
        for (size_t i = 0; i < len; i++) {
            if (recorded[i] == '\n') {
                assert_int_equal(lg_buf_append_str(&conv, ends[e]), LG_OK);
            } else {
                assert_int_equal(lg_buf_append_byte(&conv, (uint8_t)recorded[i]), LG_OK);
            }
        }
        struct collected c;
        memset(&c, 0, sizeof(c));
        lg_buf_init(&c.all, 1 << 20);
        lg_chat_sse *p;
        assert_int_equal(lg_chat_sse_new(&p, 4096, 4096), LG_OK);
        for (size_t i = 0; i < conv.len; i++) {
            assert_int_equal(lg_chat_sse_feed(p, conv.data + i, 1, collect, &c), LG_OK);
        }
        assert_int_equal(c.n, lf.n);
        assert_memory_equal(c.all.data, lf.all.data, lf.all.len);
        lg_chat_sse_free(p);
        lg_buf_deinit(&c.all);
        lg_buf_deinit(&conv);
    }
    lg_buf_deinit(&lf.all);
}

/* Multi-line data joins with LF; "event:" is reported; no space after the colon is fine;
 * unknown fields, id and retry are ignored; an event without data is not dispatched. */
static void test_chat_sse_fields(void **state)
{
    (void)state;
    static const char text[] = "event: error\n"
                               "data:{\"error\":{\"message\":\"overloaded\",\n"
                               "data: \"type\":\"server_error\"}}\n"
                               "id: 7\n"
                               "retry: 100\n"
                               "bogus\n"
                               "\n"
                               "event: ping\n"
                               "\n"
                               "data\n"
                               "\n";
    struct collected c;
    parse_whole(text, sizeof(text) - 1, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal((char *)c.all.data, "error|{\"error\":{\"message\":\"overloaded\",\n"
                                            "\"type\":\"server_error\"}}\n"
                                            "|\n");
    lg_buf_deinit(&c.all);
}

/* An event not terminated by a blank line is not dispatched (the stream was cut). */
static void test_chat_sse_incomplete_event_waits(void **state)
{
    (void)state;
    static const char text[] = "data: {\"a\":1}\n";
    struct collected c;
    parse_whole(text, sizeof(text) - 1, &c);
    assert_int_equal(c.n, 0);
    lg_buf_deinit(&c.all);
}

static void test_chat_sse_line_too_long(void **state)
{
    (void)state;
    lg_chat_sse *p;
    assert_int_equal(lg_chat_sse_new(&p, 16, 64), LG_OK);
    struct collected c;
    memset(&c, 0, sizeof(c));
    lg_buf_init(&c.all, 1024);
    static const char text[] = "data: 0123456789abcdef";
    assert_int_equal(lg_chat_sse_feed(p, (const uint8_t *)text, sizeof(text) - 1, collect, &c),
                     LG_ERR_TOO_LARGE);
    /* The parser stays broken: a later feed fails too. */
    assert_int_equal(lg_chat_sse_feed(p, (const uint8_t *)"\n\n", 2, collect, &c),
                     LG_ERR_TOO_LARGE);
    lg_chat_sse_free(p);
    lg_buf_deinit(&c.all);
}

static void test_chat_sse_event_too_large(void **state)
{
    (void)state;
    lg_chat_sse *p;
    assert_int_equal(lg_chat_sse_new(&p, 64, 16), LG_OK);
    struct collected c;
    memset(&c, 0, sizeof(c));
    lg_buf_init(&c.all, 1024);
    static const char text[] = "data: 0123456789\ndata: 0123456789\n\n";
    assert_int_equal(lg_chat_sse_feed(p, (const uint8_t *)text, sizeof(text) - 1, collect, &c),
                     LG_ERR_TOO_LARGE);
    lg_chat_sse_free(p);
    lg_buf_deinit(&c.all);
}

static void test_chat_sse_callback_error_stops(void **state)
{
    (void)state;
    lg_chat_sse *p;
    assert_int_equal(lg_chat_sse_new(&p, 4096, 4096), LG_OK);
    struct collected c;
    memset(&c, 0, sizeof(c));
    lg_buf_init(&c.all, 1 << 20);
    c.fail_at = 2;
    assert_int_equal(
        lg_chat_sse_feed(p, (const uint8_t *)recorded, sizeof(recorded) - 1, collect, &c),
        LG_ERR_CANCELLED);
    assert_int_equal(c.n, 2);
    lg_chat_sse_free(p);
    lg_buf_deinit(&c.all);
}

static void test_chat_sse_out_of_memory(void **state)
{
    (void)state;
    lg_chat_sse *p = NULL;
    lg_test_fail_after(0);
    assert_int_equal(lg_chat_sse_new(&p, 4096, 4096), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_int_equal(lg_chat_sse_new(&p, 4096, 4096), LG_OK);
    struct collected c;
    memset(&c, 0, sizeof(c));
    lg_buf_init(&c.all, 1 << 20);
    lg_test_fail_after(0); /* the first data line's buffer */
    assert_int_equal(lg_chat_sse_feed(p, (const uint8_t *)"data: x\n", 8, collect, &c),
                     LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    lg_chat_sse_free(p);
    lg_buf_deinit(&c.all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_chat_sse_recorded_stream, setup),
        cmocka_unit_test_setup(test_chat_sse_every_split_point, setup),
        cmocka_unit_test_setup(test_chat_sse_cr_lf_crlf, setup),
        cmocka_unit_test_setup(test_chat_sse_fields, setup),
        cmocka_unit_test_setup(test_chat_sse_incomplete_event_waits, setup),
        cmocka_unit_test_setup(test_chat_sse_line_too_long, setup),
        cmocka_unit_test_setup(test_chat_sse_event_too_large, setup),
        cmocka_unit_test_setup(test_chat_sse_callback_error_stops, setup),
        cmocka_unit_test_setup(test_chat_sse_out_of_memory, setup),
    };
    return cmocka_run_group_tests_name("chat_sse", tests, NULL, NULL);
}
