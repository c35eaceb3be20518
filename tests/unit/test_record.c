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
#include <jansson.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_record.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static struct lg_record *make_record(void)
{
    struct lg_record *r;
    assert_int_equal(lg_record_new(&r), LG_OK);
    assert_int_equal(lg_record_set_str(&r->request_id, "req-1", 5), LG_OK);
    assert_int_equal(lg_record_set_str(&r->user_id, "u\"ser\\1", 7), LG_OK);
    assert_int_equal(lg_record_set_str(&r->model, "gpt-x", 5), LG_OK);
    const char *msgs = "[{\"role\":\"user\",\"content\":\"h\xc3\xa9llo\\n\x01\"}]";
    assert_int_equal(lg_record_set_str(&r->request_messages, msgs, strlen(msgs)), LG_OK);
    r->has_temperature = true;
    r->temperature = 0.7;
    r->has_max_tokens = true;
    r->max_tokens = 256;
    r->stream = true;
    r->prompt_tokens = 11;
    r->completion_tokens = 22;
    r->total_tokens = 33;
    r->estimated_cost_nano_usd = INT64_C(9223372036854775807);
    r->usage_source = LG_RECORD_USAGE_ESTIMATED;
    r->start_time_ms = INT64_C(1764165000123);
    r->status = LG_RECORD_STATUS_CANCELLED;
    return r;
}

static void test_record_encode_every_field(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_record_encode_json(r, &b), LG_OK);
    assert_int_equal(b.data[b.len - 1], '\n');
    json_error_t jerr;
    json_t *j = json_loadb((const char *)b.data, b.len, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "req-1");
    assert_string_equal(json_string_value(json_object_get(j, "user_id")), "u\"ser\\1");
    assert_string_equal(json_string_value(json_object_get(j, "request_messages")),
                        r->request_messages);
    assert_true(json_real_value(json_object_get(j, "temperature")) == 0.7);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 256);
    assert_int_equal(json_integer_value(json_object_get(j, "stream")), 1);
    /* Exact 64-bit decimal: the largest cost survives without float rounding. */
    assert_non_null(strstr((char *)b.data, "\"estimated_cost_nano_usd\":9223372036854775807"));
    assert_string_equal(json_string_value(json_object_get(j, "usage_source")), "estimated");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "cancelled");
    assert_string_equal(json_string_value(json_object_get(j, "metadata")), "{}");
    assert_int_equal(json_integer_value(json_object_get(j, "time_to_first_token_ms")), -1);
    assert_int_equal(json_integer_value(json_object_get(j, "start_time_ms")),
                     INT64_C(1764165000123));
    /* Control byte escaped as \u0001, no raw control bytes in the line. */
    assert_non_null(strstr((char *)b.data, "\\u0001"));
    for (size_t i = 0; i + 1 < b.len; i++) {
        assert_true(b.data[i] >= 0x20);
    }
    json_decref(j);
    lg_buf_deinit(&b);
    lg_record_free(r);
}

static void test_record_row_is_open(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_record_encode_row(r, &b), LG_OK);
    assert_int_not_equal(b.data[b.len - 1], '}');
    lg_buf_deinit(&b);
    lg_record_free(r);
}

static void test_record_cap_leaves_buffer(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    struct lg_buf b;
    lg_buf_init(&b, 64);
    assert_int_equal(lg_buf_append_str(&b, "keep"), LG_OK);
    assert_int_equal(lg_record_encode_json(r, &b), LG_ERR_TOO_LARGE);
    assert_int_equal(b.len, 4);
    lg_buf_deinit(&b);
    lg_record_free(r);
}

static void test_record_huge_body(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    size_t n = 3u << 20;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '"', n);
    assert_int_equal(lg_record_set_str(&r->response_content, big, n), LG_OK);
    free(big);
    struct lg_buf b;
    lg_buf_init(&b, 16u << 20);
    assert_int_equal(lg_record_encode_json(r, &b), LG_OK);
    json_t *j = json_loadb((const char *)b.data, b.len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_string_length(json_object_get(j, "response_content")), n);
    json_decref(j);
    lg_buf_deinit(&b);
    lg_record_free(r);
}

static void test_record_dup_and_nomem(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    struct lg_record *c = NULL;
    assert_int_equal(lg_record_dup(r, &c), LG_OK);
    assert_string_equal(c->user_id, r->user_id);
    assert_ptr_not_equal(c->user_id, r->user_id);
    lg_record_free(c);
    for (long i = 0; i < 4; i++) {
        lg_test_fail_after(i);
        assert_int_equal(lg_record_dup(r, &c), LG_ERR_NOMEM);
    }
    lg_test_fail_after(-1);
    lg_record_free(r);
}

static void test_record_file_sink_writes_lines(void **state)
{
    (void)state;
    char path[] = "/tmp/lg_test_record_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct lg_record_sink sink;
    assert_int_equal(lg_record_file_sink_open(&sink, path), LG_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lg_record_sink_enqueue(&sink, make_record()), LG_OK);
    }
    lg_record_sink_close(&sink);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        json_decref(j);
        lines++;
    }
    fclose(f);
    unlink(path);
    assert_int_equal(lines, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_record_encode_every_field, setup),
        cmocka_unit_test_setup(test_record_row_is_open, setup),
        cmocka_unit_test_setup(test_record_cap_leaves_buffer, setup),
        cmocka_unit_test_setup(test_record_huge_body, setup),
        cmocka_unit_test_setup(test_record_dup_and_nomem, setup),
        cmocka_unit_test_setup(test_record_file_sink_writes_lines, setup),
    };
    return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
