/* SPDX-License-Identifier: Apache-2.0 */
/* The sans-I/O parts of the openai provider: request body, chunk parsing, Retry-After,
 * status mapping. The transfer itself is covered by tests/integration/chat. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "lg_buf.h"
#include "lg_chat_config.h"
#include "lg_chat_openai.h"
#include "lg_chat_request.h"
#include "lg_err.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static struct lg_chat_openai_chunk parse_ok(const char *s)
{
    struct lg_chat_openai_chunk c;
    assert_int_equal(lg_chat_openai_parse_chunk(lg_slice_from_cstr(s), &c), LG_OK);
    return c;
}

static void test_chat_openai_content_and_finish(void **state)
{
    (void)state;
    struct lg_chat_openai_chunk c =
        parse_ok("{\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
                 "\"delta\":{\"content\":\"Hi \\u00e9\"},\"finish_reason\":null}],\"usage\":null}");
    assert_false(c.done);
    assert_int_equal(c.content_len, 5);
    assert_memory_equal(c.content, "Hi \xc3\xa9", 5);
    assert_null(c.finish_reason);
    assert_false(c.has_usage);
    lg_chat_openai_chunk_deinit(&c);
    c = parse_ok("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}");
    assert_null(c.content);
    assert_string_equal(c.finish_reason, "length");
    lg_chat_openai_chunk_deinit(&c);
    /* The role-only first chunk carries an empty content: not a token. */
    c = parse_ok("{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}");
    assert_null(c.content);
    lg_chat_openai_chunk_deinit(&c);
}

static void test_chat_openai_usage_chunk(void **state)
{
    (void)state;
    struct lg_chat_openai_chunk c =
        parse_ok("{\"choices\":[],\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":30,"
                 "\"total_tokens\":1230,\"prompt_tokens_details\":{\"cached_tokens\":1024},"
                 "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}");
    assert_true(c.has_usage);
    assert_int_equal(c.usage.prompt_tokens, 1200);
    assert_int_equal(c.usage.completion_tokens, 30);
    assert_int_equal(c.usage.cached_tokens, 1024);
    lg_chat_openai_chunk_deinit(&c);
    /* A final chunk with both text and usage (LiteLLM #36168): both are kept. */
    c = parse_ok("{\"choices\":[{\"delta\":{\"content\":\"!\"},\"finish_reason\":\"stop\"}],"
                 "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":-3}}");
    assert_int_equal(c.content_len, 1);
    assert_true(c.has_usage);
    assert_int_equal(c.usage.prompt_tokens, 5);
    assert_int_equal(c.usage.completion_tokens, 0); /* negative: refused, not wrapped */
    lg_chat_openai_chunk_deinit(&c);
}

static void test_chat_openai_done_error_malformed(void **state)
{
    (void)state;
    struct lg_chat_openai_chunk c = parse_ok("[DONE]");
    assert_true(c.done);
    lg_chat_openai_chunk_deinit(&c);
    c = parse_ok("{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}");
    assert_string_equal(c.error_message, "overloaded");
    lg_chat_openai_chunk_deinit(&c);
    c = parse_ok("{\"error\":\"plain text error\"}");
    assert_string_equal(c.error_message, "plain text error");
    lg_chat_openai_chunk_deinit(&c);
    c = parse_ok("{\"error\":null,\"choices\":[]}");
    assert_null(c.error_message);
    lg_chat_openai_chunk_deinit(&c);
    assert_int_equal(lg_chat_openai_parse_chunk(lg_slice_from_cstr("{\"id\": \"bro"), &c),
                     LG_ERR_MALFORMED);
    assert_int_equal(lg_chat_openai_parse_chunk(lg_slice_from_cstr("[1,2]"), &c), LG_ERR_MALFORMED);
    assert_int_equal(lg_chat_openai_parse_chunk(lg_slice_from_cstr(""), &c), LG_ERR_MALFORMED);
}

static void test_chat_openai_retry_after(void **state)
{
    (void)state;
    assert_int_equal(lg_chat_openai_retry_after_ms(NULL, NULL, 0), -1);
    assert_int_equal(lg_chat_openai_retry_after_ms("2", NULL, 0), 2000);
    assert_int_equal(lg_chat_openai_retry_after_ms("2", "150", 0), 150); /* ms wins */
    assert_int_equal(lg_chat_openai_retry_after_ms(NULL, "20.5", 0), 20);
    assert_int_equal(lg_chat_openai_retry_after_ms("soon", NULL, 0), -1);
    /* An HTTP date: Thu, 01 Jan 1970 00:00:30 GMT is 30 s after the epoch. */
    assert_int_equal(lg_chat_openai_retry_after_ms("Thu, 01 Jan 1970 00:00:30 GMT", NULL, 10),
                     20000);
    assert_int_equal(lg_chat_openai_retry_after_ms("Thu, 01 Jan 1970 00:00:30 GMT", NULL, 99), 0);
    assert_int_equal(lg_chat_openai_retry_after_ms("99999999999999999999999", NULL, 0), -1);
}

static void test_chat_openai_status_mapping(void **state)
{
    (void)state;
    assert_int_equal(lg_chat_openai_status_err(400), LG_ERR_INVALID);
    assert_int_equal(lg_chat_openai_status_err(404), LG_ERR_INVALID);
    assert_int_equal(lg_chat_openai_status_err(401), LG_ERR_UNAUTHENTICATED);
    assert_int_equal(lg_chat_openai_status_err(429), LG_ERR_EXHAUSTED);
    assert_int_equal(lg_chat_openai_status_err(503), LG_ERR_UNAVAILABLE);
    assert_int_equal(lg_chat_openai_status_err(418), LG_ERR_UPSTREAM);
    assert_true(lg_chat_openai_is_retryable(0));
    assert_true(lg_chat_openai_is_retryable(408));
    assert_true(lg_chat_openai_is_retryable(429));
    assert_true(lg_chat_openai_is_retryable(502));
    assert_false(lg_chat_openai_is_retryable(400));
    assert_false(lg_chat_openai_is_retryable(401));
}

static void test_chat_openai_body(void **state)
{
    (void)state;
    struct lg_chat_message m[] = {{"user", "say \"hi\"\n", 9}};
    struct lg_chat_request req = {.user_id = "u",
                                  .conversation_id = "",
                                  .agent_id = "",
                                  .provider_config_id = "",
                                  .model = "gpt",
                                  .messages = m,
                                  .n_messages = 1,
                                  .has_temperature = true,
                                  .temperature = 0.25,
                                  .has_max_tokens = true,
                                  .max_tokens = 64};
    struct lg_chat_provider_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    struct lg_chat_call_params p = {
        .req = &req, .cfg = &cfg, .upstream_model = "gpt-4o-2024", .request_id = "r"};
    struct lg_buf b;
    lg_buf_init(&b, 4096);
    assert_int_equal(lg_chat_openai_build_body(&p, &b), LG_OK);
    json_t *j = json_loadb((const char *)b.data, b.len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "gpt-4o-2024");
    assert_true(json_is_true(json_object_get(j, "stream")));
    assert_true(
        json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage")));
    assert_true(json_real_value(json_object_get(j, "temperature")) == 0.25);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 64);
    json_t *m0 = json_array_get(json_object_get(j, "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(m0, "content")), "say \"hi\"\n");
    json_decref(j);
    lg_buf_deinit(&b);
    lg_buf_init(&b, 16);
    assert_int_equal(lg_chat_openai_build_body(&p, &b), LG_ERR_TOO_LARGE);
    lg_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_chat_openai_content_and_finish, setup),
        cmocka_unit_test_setup(test_chat_openai_usage_chunk, setup),
        cmocka_unit_test_setup(test_chat_openai_done_error_malformed, setup),
        cmocka_unit_test_setup(test_chat_openai_retry_after, setup),
        cmocka_unit_test_setup(test_chat_openai_status_mapping, setup),
        cmocka_unit_test_setup(test_chat_openai_body, setup),
    };
    return cmocka_run_group_tests_name("chat_openai", tests, NULL, NULL);
}
