/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "lg_err.h"
#include "lg_limits.h"
#include "lg_sse_json.h"
#include "lg_test.h"

/* cmocka checks for leaks before teardown, so each test makes and frees its own arena. */
static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    lg_sse_json_use_lg_alloc();
    return 0;
}

static lg_arena *arena_new(void)
{
    lg_arena *a = NULL;
    assert_int_equal(lg_arena_new(&a, 0, 0), LG_OK);
    return a;
}

static int parse(lg_arena *a, const char *body, struct lg_sse_chat_req *r, char *why)
{
    return lg_sse_json_parse_chat(a, body, strlen(body), r, why, 128);
}

static void test_sse_json_parse_full_request(void **state)
{
    (void)state;
    lg_arena *a = arena_new();
    struct lg_sse_chat_req r;
    char why[128];
    const char *body = "{\"model\":\"demo\",\"conversation_id\":\"c1\",\"agent_id\":\"ag\","
                       "\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"he\"},"
                       "{\"type\":\"text\",\"text\":\"llo\"}]}],"
                       "\"temperature\":0.5,\"max_tokens\":64,\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true},"
                       "\"metadata\":{\"k\":\"v\"},\"user\":\"ignored\"}";
    assert_int_equal(parse(a, body, &r, why), LG_OK);
    assert_string_equal(r.model, "demo");
    assert_string_equal(r.conversation_id, "c1");
    assert_string_equal(r.agent_id, "ag");
    assert_null(r.provider_config_id);
    assert_int_equal(r.n_msgs, 2);
    assert_string_equal(r.msgs[0].role, "system");
    assert_string_equal(r.msgs[1].content, "hello");
    assert_true(r.has_temperature);
    assert_true(r.temperature == 0.5);
    assert_int_equal(r.max_tokens, 64);
    assert_true(r.stream);
    assert_true(r.include_usage);
    assert_int_equal(r.n_meta, 1);
    assert_string_equal(r.meta[0].key, "k");
    assert_string_equal(r.meta[0].value, "v");
    lg_arena_free(a);
}

static void test_sse_json_parse_refusals(void **state)
{
    (void)state;
    lg_arena *a = arena_new();
    struct lg_sse_chat_req r;
    char why[128];
    static const struct {
        const char *body;
        int rc;
    } cases[] = {
        {"", LG_ERR_MALFORMED},
        {"{", LG_ERR_MALFORMED},
        {"[1]", LG_ERR_INVALID},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", LG_ERR_INVALID},
        {"{\"model\":\"m\"}", LG_ERR_INVALID},
        {"{\"model\":\"m\",\"messages\":[]}", LG_ERR_INVALID},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"root\",\"content\":\"x\"}]}", LG_ERR_INVALID},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", LG_ERR_INVALID},
        {"{\"model\":\"m\",\"model\":\"n\",\"messages\":[{\"role\":\"user\"}]}", LG_ERR_MALFORMED},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}",
         LG_ERR_MALFORMED},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"temperature\":3}", LG_ERR_INVALID},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"max_tokens\":0}", LG_ERR_INVALID},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"stream\":\"yes\"}", LG_ERR_INVALID},
        {"{\"model\":7,\"messages\":[{\"role\":\"user\"}]}", LG_ERR_INVALID},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"metadata\":{\"k\":1}}",
         LG_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = 0;
        assert_int_equal(parse(a, cases[i].body, &r, why), cases[i].rc);
        assert_true(why[0] != 0);
    }
    lg_arena_free(a);
}

static void test_sse_json_depth_limit(void **state)
{
    (void)state;
    lg_arena *a = arena_new();
    struct lg_sse_chat_req r;
    char why[128];
    char body[512];
    size_t off = 0;
    off += (size_t)snprintf(body, sizeof(body), "{\"model\":\"m\",\"messages\":"
                                                "[{\"role\":\"user\"}],\"x\":");
    for (int i = 0; i < LG_SSE_MAX_JSON_DEPTH; i++) {
        body[off++] = '[';
    }
    for (int i = 0; i < LG_SSE_MAX_JSON_DEPTH; i++) {
        body[off++] = ']';
    }
    body[off++] = '}';
    body[off] = 0;
    assert_int_equal(parse(a, body, &r, why), LG_ERR_TOO_LARGE);
    /* Brackets inside strings do not count. */
    const char *ok = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[\"}]}";
    assert_int_equal(parse(a, ok, &r, why), LG_OK);
    lg_arena_free(a);
}

static void test_sse_json_too_many_messages(void **state)
{
    (void)state;
    lg_arena *a = arena_new();
    struct lg_sse_chat_req r;
    char why[128];
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_buf_append_str(&b, "{\"model\":\"m\",\"messages\":["), LG_OK);
    for (int i = 0; i <= LG_SSE_MAX_MESSAGES; i++) {
        assert_int_equal(lg_buf_append_str(&b, i ? ",{\"role\":\"user\"}" : "{\"role\":\"user\"}"),
                         LG_OK);
    }
    assert_int_equal(lg_buf_append_str(&b, "]}"), LG_OK);
    assert_int_equal(parse(a, (const char *)b.data, &r, why), LG_ERR_TOO_LARGE);
    lg_buf_deinit(&b);
    lg_arena_free(a);
}

/* Parses |s| (a JSON text) with jansson and returns it; the test owns the result. */
static json_t *load(const char *s, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(s, len, 0, &e);
    assert_non_null(j);
    return j;
}

static void test_sse_json_openai_chunks(void **state)
{
    (void)state;
    struct lg_buf b;
    struct lg_sse_oai_ctx c = {"chatcmpl-abc", "demo", 1700000000};
    static const char text[] = "he said \"hi\"\n\x01";
    lg_buf_init(&b, 8192);
    assert_int_equal(lg_sse_json_oai_chunk_text(&b, &c, (const uint8_t *)text, sizeof(text) - 1),
                     LG_OK);
    assert_int_equal(memcmp(b.data, "data: ", 6), 0);
    assert_int_equal(memcmp(b.data + b.len - 2, "\n\n", 2), 0);
    assert_null(memchr(b.data, '\n', b.len - 2)); /* one line */
    json_t *j = load((const char *)b.data + 6, b.len - 8);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion.chunk");
    assert_string_equal(json_string_value(json_object_get(j, "id")), "chatcmpl-abc");
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ch, "delta"), "content")),
                        text);
    assert_true(json_is_null(json_object_get(ch, "finish_reason")));
    json_decref(j);

    lg_buf_reset(&b);
    struct lg_sse_done d = {"stop", 3, 4, 0, 7, 0, 0};
    assert_int_equal(lg_sse_json_oai_chunk_usage(&b, &c, &d), LG_OK);
    j = load((const char *)b.data + 6, b.len - 8);
    assert_int_equal(json_array_size(json_object_get(j, "choices")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"),
                                                        "total_tokens")),
                     7);
    json_decref(j);

    lg_buf_reset(&b);
    assert_int_equal(lg_sse_json_oai_chunk_finish(&b, &c, "length"), LG_OK);
    j = load((const char *)b.data + 6, b.len - 8);
    ch = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "length");
    json_decref(j);

    lg_buf_reset(&b);
    assert_int_equal(lg_sse_json_oai_done(&b), LG_OK);
    assert_string_equal((char *)b.data, "data: [DONE]\n\n");
    lg_buf_deinit(&b);
}

static void test_sse_json_openai_completion_and_errors(void **state)
{
    (void)state;
    struct lg_buf b;
    struct lg_sse_oai_ctx c = {"chatcmpl-x", "demo", 5};
    struct lg_sse_done d = {NULL, 1, 2, 0, 3, 0, 0};
    lg_buf_init(&b, 8192);
    assert_int_equal(lg_sse_json_oai_completion(&b, &c, (const uint8_t *)"Hi!", 3, &d), LG_OK);
    json_t *j = load((const char *)b.data, b.len);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ch, "message"), "content")), "Hi!");
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "stop");
    json_decref(j);

    lg_buf_reset(&b);
    assert_int_equal(lg_sse_json_openai_error(&b, "invalid_request_error", "bad", "no \"model\""),
                     LG_OK);
    j = load((const char *)b.data, b.len);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "no \"model\"");
    assert_string_equal(json_string_value(json_object_get(e, "type")), "invalid_request_error");
    json_decref(j);

    lg_buf_reset(&b);
    assert_int_equal(lg_sse_json_error(&b, "not_found", "no such stream"), LG_OK);
    assert_string_equal((char *)b.data,
                        "{\"error\":{\"code\":\"not_found\",\"message\":\"no such stream\"}}");
    lg_buf_reset(&b);
    assert_int_equal(lg_sse_json_created(&b, "abc", "/v1/chat/streams/abc/events"), LG_OK);
    assert_string_equal((char *)b.data,
                        "{\"stream_id\":\"abc\",\"events_url\":\"/v1/chat/streams/abc/events\"}");
    lg_buf_deinit(&b);
}

static void test_sse_json_nomem(void **state)
{
    struct lg_sse_chat_req r;
    char why[128];
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    int nomem = 0;
    for (long n = 0; n < 64; n++) {
        lg_arena *a = NULL;
        assert_int_equal(lg_arena_new(&a, 0, 0), LG_OK);
        lg_test_fail_after(n);
        int rc = lg_sse_json_parse_chat(a, body, strlen(body), &r, why, sizeof(why));
        lg_test_fail_after(-1);
        lg_arena_free(a);
        if (rc == LG_OK) {
            break;
        }
        /* jansson reports its own allocation failures as a parse error. */
        assert_true(rc == LG_ERR_NOMEM || rc == LG_ERR_MALFORMED);
        nomem++;
    }
    assert_true(nomem > 0);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sse_json_parse_full_request, setup),
        cmocka_unit_test_setup(test_sse_json_parse_refusals, setup),
        cmocka_unit_test_setup(test_sse_json_depth_limit, setup),
        cmocka_unit_test_setup(test_sse_json_too_many_messages, setup),
        cmocka_unit_test_setup(test_sse_json_openai_chunks, setup),
        cmocka_unit_test_setup(test_sse_json_openai_completion_and_errors, setup),
        cmocka_unit_test_setup(test_sse_json_nomem, setup),
    };
    return cmocka_run_group_tests_name("sse_json", tests, NULL, NULL);
}
