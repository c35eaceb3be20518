/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lg_buf.h"
#include "lg_chat_request.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_test.h"

static const struct lg_chat_message msgs[] = {
    {"system", "You are terse.", 14},
    {"user", "Say \"hi\"\n", 9},
};

static struct lg_chat_request valid_request(void)
{
    struct lg_chat_request r = {
        .user_id = "alice",
        .conversation_id = "c1",
        .agent_id = "",
        .provider_config_id = "",
        .model = "demo",
        .messages = msgs,
        .n_messages = 2,
    };
    return r;
}

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static void expect_invalid(const struct lg_chat_request *r, const char *reason_part)
{
    char why[256] = "";
    assert_int_equal(lg_chat_request_validate(r, why, sizeof(why)), LG_ERR_INVALID);
    assert_non_null(strstr(why, reason_part));
}

static void test_chat_request_valid(void **state)
{
    (void)state;
    struct lg_chat_request r = valid_request();
    char why[128];
    assert_int_equal(lg_chat_request_validate(&r, why, sizeof(why)), LG_OK);
    r.has_max_tokens = true;
    r.max_tokens = LG_CHAT_MAX_TOKENS_LIMIT;
    r.has_temperature = true;
    r.temperature = 2.0;
    assert_int_equal(lg_chat_request_validate(&r, why, sizeof(why)), LG_OK);
}

static void test_chat_request_no_messages(void **state)
{
    (void)state;
    struct lg_chat_request r = valid_request();
    r.n_messages = 0;
    expect_invalid(&r, "messages must not be empty");
}

static void test_chat_request_unknown_role(void **state)
{
    (void)state;
    struct lg_chat_message bad[] = {{"user", "a", 1}, {"wizard", "b", 1}};
    struct lg_chat_request r = valid_request();
    r.messages = bad;
    r.n_messages = 2;
    expect_invalid(&r, "messages[1].role");
}

static void test_chat_request_absurd_max_tokens(void **state)
{
    (void)state;
    struct lg_chat_request r = valid_request();
    r.has_max_tokens = true;
    r.max_tokens = LG_CHAT_MAX_TOKENS_LIMIT + 1;
    expect_invalid(&r, "max_tokens");
    r.max_tokens = 0;
    expect_invalid(&r, "max_tokens");
}

static void test_chat_request_bad_temperature(void **state)
{
    (void)state;
    struct lg_chat_request r = valid_request();
    r.has_temperature = true;
    r.temperature = 2.5;
    expect_invalid(&r, "temperature");
    r.temperature = -0.1;
    expect_invalid(&r, "temperature");
}

static void test_chat_request_missing_ids(void **state)
{
    (void)state;
    struct lg_chat_request r = valid_request();
    r.user_id = "";
    expect_invalid(&r, "user_id is required");
    r = valid_request();
    r.model = "";
    expect_invalid(&r, "model is required");
    char longid[LG_CHAT_MAX_ID_BYTES + 2];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    r = valid_request();
    r.conversation_id = longid;
    expect_invalid(&r, "conversation_id is longer");
}

static void test_chat_request_too_many_metadata(void **state)
{
    (void)state;
    struct lg_chat_kv kv[LG_CHAT_MAX_METADATA + 1];
    for (size_t i = 0; i < LG_CHAT_MAX_METADATA + 1; i++) {
        kv[i].key = "k";
        kv[i].value = "v";
    }
    struct lg_chat_request r = valid_request();
    r.metadata = kv;
    r.n_metadata = LG_CHAT_MAX_METADATA + 1;
    expect_invalid(&r, "metadata");
}

static void test_chat_request_json(void **state)
{
    (void)state;
    struct lg_chat_kv kv[] = {{"team", "a\"b"}, {"env", "dev"}};
    struct lg_chat_request r = valid_request();
    r.metadata = kv;
    r.n_metadata = 2;
    struct lg_buf b;
    lg_buf_init(&b, 1024);
    assert_int_equal(lg_chat_request_append_messages_json(&r, &b), LG_OK);
    assert_string_equal((char *)b.data, "[{\"role\":\"system\",\"content\":\"You are terse.\"},"
                                        "{\"role\":\"user\",\"content\":\"Say \\\"hi\\\"\\n\"}]");
    lg_buf_reset(&b);
    assert_int_equal(lg_chat_request_append_metadata_json(&r, &b), LG_OK);
    assert_string_equal((char *)b.data, "{\"team\":\"a\\\"b\",\"env\":\"dev\"}");
    lg_buf_deinit(&b);
    lg_buf_init(&b, 8);
    assert_int_equal(lg_chat_request_append_messages_json(&r, &b), LG_ERR_TOO_LARGE);
    lg_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_chat_request_valid, setup),
        cmocka_unit_test_setup(test_chat_request_no_messages, setup),
        cmocka_unit_test_setup(test_chat_request_unknown_role, setup),
        cmocka_unit_test_setup(test_chat_request_absurd_max_tokens, setup),
        cmocka_unit_test_setup(test_chat_request_bad_temperature, setup),
        cmocka_unit_test_setup(test_chat_request_missing_ids, setup),
        cmocka_unit_test_setup(test_chat_request_too_many_metadata, setup),
        cmocka_unit_test_setup(test_chat_request_json, setup),
    };
    return cmocka_run_group_tests_name("chat_request", tests, NULL, NULL);
}
