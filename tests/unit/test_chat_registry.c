/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lg_chat_registry.h"
#include "lg_err.h"
#include "lg_test.h"

static int setup(void **state)
{
    lg_test_use_cmocka_allocator();
    lg_chat_registry *reg;
    assert_int_equal(lg_chat_registry_new(&reg, 4), LG_OK);
    *state = reg;
    return 0;
}

static int teardown(void **state)
{
    lg_chat_registry_free(*state);
    return 0;
}

/* Test value: counts expirations and asks for a retention deadline on the first one. */
struct value {
    int expired;
    uint64_t retain_until; /* returned once, then 0 */
};

static uint64_t on_expire(const char *id, void *v, uint64_t now_ms, void *ud)
{
    (void)id;
    (void)now_ms;
    (void)ud;
    struct value *val = v;
    val->expired++;
    uint64_t next = val->retain_until;
    val->retain_until = 0;
    return next;
}

static void test_chat_registry_ids_are_urlsafe_and_unique(void **state)
{
    lg_chat_registry *reg = *state;
    char a[LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1];
    char b[LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1];
    struct value v = {0, 0};
    assert_int_equal(lg_chat_registry_add(reg, "alice", &v, a), LG_OK);
    assert_int_equal(lg_chat_registry_add(reg, "alice", &v, b), LG_OK);
    assert_int_equal(strlen(a), LG_CHAT_REGISTRY_ID_LEN);
    assert_string_not_equal(a, b);
    for (size_t i = 0; i < LG_CHAT_REGISTRY_ID_LEN; i++) {
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
    }
    assert_int_equal(lg_chat_registry_remove(reg, a), LG_OK);
    assert_int_equal(lg_chat_registry_remove(reg, b), LG_OK);
    assert_int_equal(lg_chat_registry_remove(reg, b), LG_ERR_NOT_FOUND);
}

static void test_chat_registry_owner_only(void **state)
{
    lg_chat_registry *reg = *state;
    char id[LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1];
    struct value v = {0, 0};
    assert_int_equal(lg_chat_registry_add(reg, "alice", &v, id), LG_OK);
    void *out = NULL;
    assert_int_equal(lg_chat_registry_lookup(reg, id, "alice", &out), LG_OK);
    assert_ptr_equal(out, &v);
    assert_int_equal(lg_chat_registry_lookup(reg, id, "mallory", &out), LG_ERR_PERMISSION);
    assert_int_equal(lg_chat_registry_lookup(reg, "AAAAAAAAAAAAAAAAAAAAAA", "alice", &out),
                     LG_ERR_NOT_FOUND);
    assert_int_equal(lg_chat_registry_remove(reg, id), LG_OK);
}

/* Grace then retention: the first expiry asks for a later deadline, the second removes. */
static void test_chat_registry_expiry(void **state)
{
    lg_chat_registry *reg = *state;
    char id[LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1];
    char keep[LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1];
    struct value v = {0, 5000};
    struct value k = {0, 0};
    assert_int_equal(lg_chat_registry_add(reg, "alice", &v, id), LG_OK);
    assert_int_equal(lg_chat_registry_add(reg, "bob", &k, keep), LG_OK); /* no deadline */
    assert_int_equal(lg_chat_registry_set_deadline(reg, id, 1000), LG_OK);
    assert_int_equal(lg_chat_registry_expire(reg, 999, on_expire, NULL), 0);
    assert_int_equal(v.expired, 0);
    assert_int_equal(lg_chat_registry_expire(reg, 1000, on_expire, NULL), 0);
    assert_int_equal(v.expired, 1); /* grace over: retained until 5000 */
    assert_int_equal(lg_chat_registry_expire(reg, 4999, on_expire, NULL), 0);
    assert_int_equal(v.expired, 1);
    assert_int_equal(lg_chat_registry_expire(reg, 6000, on_expire, NULL), 1);
    assert_int_equal(v.expired, 2);
    void *out;
    assert_int_equal(lg_chat_registry_lookup(reg, id, "alice", &out), LG_ERR_NOT_FOUND);
    assert_int_equal(lg_chat_registry_set_deadline(reg, id, 1), LG_ERR_NOT_FOUND);
    assert_int_equal(k.expired, 0);
    assert_int_equal(lg_chat_registry_count(reg), 1);
    assert_int_equal(lg_chat_registry_remove(reg, keep), LG_OK);
}

static void test_chat_registry_full_and_nomem(void **state)
{
    lg_chat_registry *reg = *state;
    char ids[5][LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1];
    struct value v = {0, 0};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lg_chat_registry_add(reg, "u", &v, ids[i]), LG_OK);
    }
    assert_int_equal(lg_chat_registry_add(reg, "u", &v, ids[4]), LG_ERR_EXHAUSTED);
    assert_int_equal(lg_chat_registry_remove(reg, ids[0]), LG_OK);
    lg_test_fail_after(0);
    assert_int_equal(lg_chat_registry_add(reg, "u", &v, ids[0]), LG_ERR_NOMEM);
    lg_test_fail_after(1);
    assert_int_equal(lg_chat_registry_add(reg, "u", &v, ids[0]), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_int_equal(lg_chat_registry_count(reg), 3);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(lg_chat_registry_remove(reg, ids[i]), LG_OK);
    }
    char longowner[300];
    memset(longowner, 'x', sizeof(longowner) - 1);
    longowner[sizeof(longowner) - 1] = '\0';
    assert_int_equal(lg_chat_registry_add(reg, longowner, &v, ids[0]), LG_ERR_INVALID);
}

static void test_chat_registry_node_prefix(void **state)
{
    lg_chat_registry *reg = *state;
    char id[LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1];
    char node[LG_CHAT_REGISTRY_NODE_MAX_DIGITS + 1];
    struct value v = {0, 0};
    assert_int_equal(lg_chat_registry_set_node(reg, "12"), LG_OK);
    assert_int_equal(lg_chat_registry_add(reg, "alice", &v, id), LG_OK);
    assert_int_equal(strlen(id), 4 + LG_CHAT_REGISTRY_ID_LEN);
    assert_memory_equal(id, "n12_", 4);
    assert_int_equal(lg_chat_registry_parse_node(id, node), LG_OK);
    assert_string_equal(node, "12");
    void *out = NULL;
    assert_int_equal(lg_chat_registry_lookup(reg, id, "alice", &out), LG_OK);
    /* Same random part under another node: a different id, not found here. */
    char forged[LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 2];
    memcpy(forged, "n13_", 4);
    memcpy(forged + 4, id + 4, LG_CHAT_REGISTRY_ID_LEN + 1);
    assert_int_equal(lg_chat_registry_lookup(reg, forged, "alice", &out), LG_ERR_NOT_FOUND);
    assert_int_equal(lg_chat_registry_remove(reg, id), LG_OK);
    /* Invalid nodes are refused and leave the prefix as it was. */
    const char *bad[] = {"", "01", "123456", "a", "-1", "1_", " 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(lg_chat_registry_is_node(bad[i]));
        if (bad[i][0] != '\0') {
            assert_int_equal(lg_chat_registry_set_node(reg, bad[i]), LG_ERR_INVALID);
        }
    }
    assert_true(lg_chat_registry_is_node("0"));
    assert_true(lg_chat_registry_is_node("99999"));
    assert_int_equal(lg_chat_registry_add(reg, "alice", &v, id), LG_OK);
    assert_memory_equal(id, "n12_", 4);
    assert_int_equal(lg_chat_registry_remove(reg, id), LG_OK);
    /* NULL clears the prefix. */
    assert_int_equal(lg_chat_registry_set_node(reg, NULL), LG_OK);
    assert_int_equal(lg_chat_registry_add(reg, "alice", &v, id), LG_OK);
    assert_int_equal(strlen(id), LG_CHAT_REGISTRY_ID_LEN);
    assert_int_equal(lg_chat_registry_parse_node(id, node), LG_ERR_NOT_FOUND);
    assert_string_equal(node, "");
    assert_int_equal(lg_chat_registry_remove(reg, id), LG_OK);
}

static void test_chat_registry_parse_node_rejects_forms(void **state)
{
    (void)state;
    char node[LG_CHAT_REGISTRY_NODE_MAX_DIGITS + 1];
    const char *r = "AAAAAAAAAAAAAAAAAAAAAA"; /* 22 characters */
    char buf[64];
    const char *bad[] = {"x_", "n_", "nx_", "n01_", "n123456_", "n1", "1_", "n1-"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf), "%s%s", bad[i], r);
        assert_int_equal(lg_chat_registry_parse_node(buf, node), LG_ERR_INVALID);
    }
    assert_int_equal(lg_chat_registry_parse_node("short", node), LG_ERR_INVALID);
    assert_int_equal(lg_chat_registry_parse_node("n1_AAAAAAAAAAAAAAAAAAAAA.", node),
                     LG_ERR_INVALID);
    snprintf(buf, sizeof(buf), "n0_%s", r);
    assert_int_equal(lg_chat_registry_parse_node(buf, node), LG_OK);
    assert_string_equal(node, "0");
    /* A random part that itself starts like a prefix is still just random. */
    assert_int_equal(lg_chat_registry_parse_node("n1_AAAAAAAAAAAAAAAAAAA", node), LG_ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chat_registry_ids_are_urlsafe_and_unique, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chat_registry_owner_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_registry_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_registry_full_and_nomem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_registry_node_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_registry_parse_node_rejects_forms, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("chat_registry", tests, NULL, NULL);
}
