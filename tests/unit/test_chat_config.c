/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lg_chat_config.h"
#include "lg_err.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static const char good[] =
    "{\"providers\":["
    "{\"id\":\"fake\",\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1/\","
    " \"api_key_env\":\"LG_TEST_CHAT_KEY\",\"idle_timeout_ms\":1000,\"max_retries\":1,"
    " \"models\":[{\"name\":\"gpt-4o\",\"upstream_model\":\"gpt-4o-2024\","
    "   \"input_usd_per_mtok\":2.5,\"cached_input_usd_per_mtok\":1.25,"
    "   \"output_usd_per_mtok\":10},"
    "  {\"name\":\"free-model\"}]},"
    "{\"id\":\"local\",\"kind\":\"demo\"}]}";

static void test_chat_config_parse_and_resolve(void **state)
{
    (void)state;
    setenv("LG_TEST_CHAT_KEY", "sk-secret", 1);
    lg_chat_config *cfg;
    char why[256] = "";
    assert_int_equal(lg_chat_config_parse(&cfg, good, sizeof(good) - 1, why, sizeof(why)), LG_OK);
    assert_int_equal(lg_chat_config_count(cfg), 2);
    const struct lg_chat_provider_cfg *p = lg_chat_config_get(cfg, 0);
    assert_string_equal(p->base_url, "http://127.0.0.1:9/v1");
    assert_string_equal(p->api_key, "sk-secret");
    assert_int_equal(p->idle_timeout_ms, 1000);
    assert_int_equal(p->max_retries, 1);
    const struct lg_chat_model_cfg *m;
    assert_int_equal(lg_chat_config_resolve(cfg, "", "gpt-4o", &p, &m, why, sizeof(why)), LG_OK);
    assert_string_equal(m->upstream_model, "gpt-4o-2024");
    struct lg_chat_price_usage u = {1000000, 0, 0};
    uint64_t cost;
    assert_int_equal(lg_chat_price_cost(p->prices, "gpt-4o", &u, &cost), LG_CHAT_PRICE_PRICED);
    assert_int_equal(cost, 2500000000ull);
    assert_int_equal(lg_chat_price_cost(p->prices, "free-model", &u, &cost),
                     LG_CHAT_PRICE_UNPRICED);
    assert_int_equal(lg_chat_config_resolve(cfg, "local", "demo", &p, &m, why, sizeof(why)), LG_OK);
    assert_int_equal(p->kind, LG_CHAT_PROVIDER_DEMO);
    assert_int_equal(lg_chat_config_resolve(cfg, "local", "gpt-4o", &p, &m, why, sizeof(why)),
                     LG_ERR_INVALID);
    assert_int_equal(lg_chat_config_resolve(cfg, "nope", "demo", &p, &m, why, sizeof(why)),
                     LG_ERR_INVALID);
    assert_non_null(strstr(why, "provider_config_id"));
    assert_int_equal(lg_chat_config_resolve(cfg, "", "gpt-5", &p, &m, why, sizeof(why)),
                     LG_ERR_INVALID);
    assert_string_equal(why, "unknown model");
    lg_chat_config_free(cfg);
}

static void expect_refused(const char *text, const char *reason_part)
{
    lg_chat_config *cfg = NULL;
    char why[256] = "";
    assert_int_equal(lg_chat_config_parse(&cfg, text, strlen(text), why, sizeof(why)),
                     LG_ERR_INVALID);
    assert_non_null(strstr(why, reason_part));
    assert_null(strstr(why, "sk-")); /* a secret never appears in a reason */
}

static void test_chat_config_refuses_bad_files(void **state)
{
    (void)state;
    unsetenv("LG_TEST_CHAT_UNSET");
    expect_refused("{", "not valid JSON");
    expect_refused("{\"providers\":[]}", "providers");
    expect_refused("{\"providers\":[{\"id\":\"a\",\"kind\":\"grpc\"}]}", "kind");
    expect_refused("{\"providers\":[{\"id\":\"a\",\"kind\":\"openai\",\"base_url\":\"ftp://x\","
                   "\"models\":[{\"name\":\"m\"}]}]}",
                   "base_url");
    expect_refused("{\"providers\":[{\"id\":\"a\",\"kind\":\"openai\",\"base_url\":\"http://x\","
                   "\"api_key_env\":\"LG_TEST_CHAT_UNSET\",\"models\":[{\"name\":\"m\"}]}]}",
                   "LG_TEST_CHAT_UNSET");
    expect_refused("{\"providers\":[{\"id\":\"a\",\"kind\":\"openai\",\"base_url\":\"http://x\","
                   "\"idle_timeout_ms\":999999999,\"models\":[{\"name\":\"m\"}]}]}",
                   "idle_timeout_ms");
    expect_refused("{\"providers\":[{\"id\":\"a\",\"kind\":\"openai\",\"base_url\":\"http://x\","
                   "\"models\":[{\"name\":\"m\",\"input_usd_per_mtok\":-1}]}]}",
                   "input_usd_per_mtok");
    expect_refused("{\"providers\":[{\"id\":\"a\",\"kind\":\"demo\"},{\"id\":\"a\","
                   "\"kind\":\"demo\"}]}",
                   "used twice");
}

static void test_chat_config_secret_file_and_default(void **state)
{
    (void)state;
    char path[] = "/tmp/lg_test_chat_keyXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "sk-from-file\n", 13), 13);
    close(fd);
    char text[512];
    snprintf(text, sizeof(text),
             "{\"providers\":[{\"id\":\"a\",\"kind\":\"openai\",\"base_url\":\"http://x\","
             "\"api_key_file\":\"%s\",\"models\":[{\"name\":\"m\"}]}]}",
             path);
    lg_chat_config *cfg;
    char why[256] = "";
    assert_int_equal(lg_chat_config_parse(&cfg, text, strlen(text), why, sizeof(why)), LG_OK);
    assert_string_equal(lg_chat_config_get(cfg, 0)->api_key, "sk-from-file");
    lg_chat_config_free(cfg);
    unlink(path);
    assert_int_equal(lg_chat_config_load(&cfg, path, why, sizeof(why)), LG_ERR_IO);
    assert_int_equal(lg_chat_config_new_default(&cfg), LG_OK);
    const struct lg_chat_provider_cfg *p;
    const struct lg_chat_model_cfg *m;
    assert_int_equal(lg_chat_config_resolve(cfg, "", "demo", &p, &m, why, sizeof(why)), LG_OK);
    assert_int_equal(p->kind, LG_CHAT_PROVIDER_DEMO);
    lg_chat_config_free(cfg);
    lg_test_fail_after(0);
    assert_int_equal(lg_chat_config_new_default(&cfg), LG_ERR_NOMEM);
    lg_test_fail_after(3);
    assert_int_equal(lg_chat_config_new_default(&cfg), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_chat_config_parse_and_resolve, setup),
        cmocka_unit_test_setup(test_chat_config_refuses_bad_files, setup),
        cmocka_unit_test_setup(test_chat_config_secret_file_and_default, setup),
    };
    return cmocka_run_group_tests_name("chat_config", tests, NULL, NULL);
}
