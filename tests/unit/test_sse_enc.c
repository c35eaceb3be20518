/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lg_err.h"
#include "lg_sse_enc.h"
#include "lg_test.h"

#define SID "0123456789abcdef0123456789abcdef"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

/* Counts lines of |s| that start with |prefix| (lines split on LF; the encoder never emits
 * CR, checked separately). */
static size_t count_lines(const char *s, const char *prefix)
{
    size_t n = 0;
    size_t plen = strlen(prefix);
    const char *p = s;
    while (*p != 0) {
        if (strncmp(p, prefix, plen) == 0) {
            n++;
        }
        const char *nl = strchr(p, '\n');
        if (nl == NULL) {
            break;
        }
        p = nl + 1;
    }
    return n;
}

static void test_sse_enc_content_event_format(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 4096);
    assert_int_equal(lg_sse_enc_content(&b, SID, 7, (const uint8_t *)"Hello", 5), LG_OK);
    assert_string_equal((char *)b.data, "id: " SID ".7\n"
                                        "event: content\n"
                                        "data: {\"type\":\"content\",\"data\":{\"content\":\"Hello\"}}\n"
                                        "\n");
    lg_buf_deinit(&b);
}

static void test_sse_enc_content_injection_is_escaped(void **state)
{
    (void)state;
    static const char evil[] = "x\n\nid: other.999\nevent: done\r\ndata: {}\r\rdata:\x00zz"
                               "\xe2\x80\xa8 \xff\xc0\xaf \"\\";
    struct lg_buf b;
    lg_buf_init(&b, 4096);
    assert_int_equal(lg_sse_enc_content(&b, SID, 1, (const uint8_t *)evil, sizeof(evil) - 1),
                     LG_OK);
    const char *s = (const char *)b.data;
    /* Exactly one event: one id line, one event line, one data line, one blank line. */
    assert_int_equal(count_lines(s, "id:"), 1);
    assert_int_equal(count_lines(s, "event:"), 1);
    assert_int_equal(count_lines(s, "data:"), 1);
    assert_null(strchr(s, '\r'));
    assert_int_equal(strlen(s), b.len); /* no NUL byte on the wire */
    assert_non_null(strstr(s, "x\\n\\nid: other.999\\nevent: done\\r\\n"));
    assert_non_null(strstr(s, "\\u0000zz"));
    assert_non_null(strstr(s, "\\u2028"));
    assert_non_null(strstr(s, "\\ufffd\\ufffd\\ufffd")); /* 0xff, overlong 0xc0 0xaf */
    assert_non_null(strstr(s, "\\\"\\\\"));
    assert_int_equal(memcmp(s + b.len - 2, "\n\n", 2), 0);
    lg_buf_deinit(&b);
}

static void test_sse_enc_multiline_data_split(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 4096);
    assert_int_equal(lg_sse_enc_event(&b, SID, 3, "content", (const uint8_t *)"a\nb\r\nc\rd", 8),
                     LG_OK);
    assert_string_equal((char *)b.data,
                        "id: " SID ".3\nevent: content\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
    lg_buf_deinit(&b);
}

static void test_sse_enc_bad_fields_refused(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 4096);
    assert_int_equal(lg_sse_enc_event(&b, "a\nid: x", 1, "content", NULL, 0), LG_ERR_INVALID);
    assert_int_equal(lg_sse_enc_event(&b, SID, 1, "con\ntent", NULL, 0), LG_ERR_INVALID);
    assert_int_equal(lg_sse_enc_event(&b, SID, 1, "x", (const uint8_t *)"a\0b", 3),
                     LG_ERR_INVALID);
    assert_int_equal(lg_sse_enc_content(&b, "bad id", 1, (const uint8_t *)"x", 1),
                     LG_ERR_INVALID);
    assert_int_equal(lg_sse_enc_error(&b, SID, 1, "Bad-Code", "m"), LG_ERR_INVALID);
    assert_int_equal(lg_sse_enc_comment(&b, "a\nb"), LG_ERR_INVALID);
    assert_int_equal(b.len, 0);
    lg_buf_deinit(&b);
}

static void test_sse_enc_heartbeat_has_no_id(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 4096);
    assert_int_equal(lg_sse_enc_heartbeat(&b), LG_OK);
    assert_string_equal((char *)b.data,
                        "event: heartbeat\ndata: {\"type\":\"heartbeat\",\"data\":{}}\n\n");
    lg_buf_reset(&b);
    assert_int_equal(lg_sse_enc_retry(&b, 2000), LG_OK);
    assert_int_equal(lg_sse_enc_comment(&b, "ping"), LG_OK);
    assert_string_equal((char *)b.data, "retry: 2000\n\n: ping\n\n");
    lg_buf_deinit(&b);
}

static void test_sse_enc_start_done_error(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 4096);
    assert_int_equal(lg_sse_enc_start(&b, SID, 1, "demo"), LG_OK);
    assert_non_null(strstr((char *)b.data, "data: {\"type\":\"start\",\"data\":{\"stream_id\":\"" SID
                                           "\",\"model\":\"demo\"}}\n\n"));
    lg_buf_reset(&b);
    struct lg_sse_done d = {"length", 3, 5, 1, 8, 1234, 42};
    assert_int_equal(lg_sse_enc_done(&b, SID, 9, &d), LG_OK);
    assert_non_null(strstr((char *)b.data, "id: " SID ".9\nevent: done\n"));
    assert_non_null(strstr((char *)b.data, "\"finish_reason\":\"length\",\"usage\":{"
                                           "\"prompt_tokens\":3,\"completion_tokens\":5,"
                                           "\"cached_tokens\":1,\"total_tokens\":8},"
                                           "\"estimated_cost_nano_usd\":1234,\"duration_ms\":42"));
    lg_buf_reset(&b);
    assert_int_equal(lg_sse_enc_error(&b, NULL, 0, "resume_expired", "too \"old\""), LG_OK);
    assert_string_equal((char *)b.data, "event: error\ndata: {\"type\":\"error\",\"data\":{\"code\":"
                                        "\"resume_expired\",\"message\":\"too \\\"old\\\"\"}}\n\n");
    lg_buf_deinit(&b);
}

static void test_sse_enc_cap_leaves_buffer_unchanged(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 64);
    assert_int_equal(lg_buf_append_str(&b, "keep"), LG_OK);
    assert_int_equal(lg_sse_enc_content(&b, SID, 1, (const uint8_t *)"0123456789", 10),
                     LG_ERR_TOO_LARGE);
    assert_int_equal(b.len, 4);
    assert_string_equal((char *)b.data, "keep");
    lg_buf_deinit(&b);
}

static void test_sse_enc_nomem(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 4096);
    lg_test_fail_after(0);
    assert_int_equal(lg_sse_enc_heartbeat(&b), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_int_equal(b.len, 0);
    lg_buf_deinit(&b);
}

static void test_sse_enc_last_event_id_parse(void **state)
{
    (void)state;
    uint64_t seq = 99;
    const char *v = SID ".42";
    assert_int_equal(lg_sse_parse_last_event_id(v, strlen(v), SID, &seq), LG_OK);
    assert_int_equal(seq, 42);
    assert_int_equal(lg_sse_parse_last_event_id("", 0, SID, &seq), LG_OK);
    assert_int_equal(seq, 0);
    v = SID ".18446744073709551615";
    assert_int_equal(lg_sse_parse_last_event_id(v, strlen(v), SID, &seq), LG_OK);
    assert_true(seq == UINT64_MAX);
    static const char *const bad[] = {
        SID,                         /* no seq */
        SID ".",                     /* empty seq */
        SID ".18446744073709551616", /* overflow */
        SID ".123456789012345678901",
        SID ".-1",
        SID ".+1",
        SID ".1 ",
        ".5",
        "a b.5",
        "x\n.5",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(lg_sse_parse_last_event_id(bad[i], strlen(bad[i]), SID, &seq),
                         LG_ERR_INVALID);
    }
    v = "ffffffffffffffffffffffffffffffff.3";
    assert_int_equal(lg_sse_parse_last_event_id(v, strlen(v), SID, &seq), LG_ERR_PERMISSION);
    /* Not NUL-terminated input: only |len| bytes count. */
    v = SID ".12345";
    assert_int_equal(lg_sse_parse_last_event_id(v, strlen(SID) + 3, SID, &seq), LG_OK);
    assert_int_equal(seq, 12);
}

static void test_sse_enc_resume_point_header_wins(void **state)
{
    (void)state;
    uint64_t seq = 0;
    assert_int_equal(lg_sse_resume_point(SID ".5", "lastEventId=" SID ".9", SID, &seq), LG_OK);
    assert_int_equal(seq, 5);
    assert_int_equal(lg_sse_resume_point(NULL, "t=abc&lastEventId=" SID "%2E9", SID, &seq),
                     LG_OK);
    assert_int_equal(seq, 9);
    assert_int_equal(lg_sse_resume_point(NULL, "t=abc", SID, &seq), LG_OK);
    assert_int_equal(seq, 0);
    assert_int_equal(lg_sse_resume_point(NULL, NULL, SID, &seq), LG_OK);
    assert_int_equal(seq, 0);
    assert_int_equal(lg_sse_resume_point(NULL, "lastEventId=%zz", SID, &seq), LG_ERR_INVALID);
    assert_int_equal(lg_sse_resume_point(NULL, "lastEventId=%0a", SID, &seq), LG_ERR_INVALID);
    assert_int_equal(lg_sse_resume_point(NULL, "lastEventId=%", SID, &seq), LG_ERR_INVALID);
}

static void test_sse_enc_query_get(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(lg_sse_query_get("a=1&token=x%2By+z&b", "token", out, sizeof(out)), LG_OK);
    assert_string_equal(out, "x+y z");
    assert_int_equal(lg_sse_query_get("a=1&b", "b", out, sizeof(out)), LG_OK);
    assert_string_equal(out, "");
    assert_int_equal(lg_sse_query_get("tokens=1", "token", out, sizeof(out)), LG_ERR_NOT_FOUND);
    assert_int_equal(lg_sse_query_get("t=0123456789abcdefXYZ", "t", out, sizeof(out)),
                     LG_ERR_TOO_LARGE);
    assert_int_equal(lg_sse_query_get("t=%00", "t", out, sizeof(out)), LG_ERR_INVALID);
}

static void test_sse_enc_stream_id_charset(void **state)
{
    (void)state;
    assert_true(lg_sse_is_stream_id(SID, strlen(SID)));
    assert_true(lg_sse_is_stream_id("a-b_C9", 6));
    assert_false(lg_sse_is_stream_id("", 0));
    assert_false(lg_sse_is_stream_id("a.b", 3));
    assert_false(lg_sse_is_stream_id("a/b", 3));
    char longid[80];
    memset(longid, 'a', sizeof(longid));
    assert_false(lg_sse_is_stream_id(longid, sizeof(longid)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sse_enc_content_event_format, setup),
        cmocka_unit_test_setup(test_sse_enc_content_injection_is_escaped, setup),
        cmocka_unit_test_setup(test_sse_enc_multiline_data_split, setup),
        cmocka_unit_test_setup(test_sse_enc_bad_fields_refused, setup),
        cmocka_unit_test_setup(test_sse_enc_heartbeat_has_no_id, setup),
        cmocka_unit_test_setup(test_sse_enc_start_done_error, setup),
        cmocka_unit_test_setup(test_sse_enc_cap_leaves_buffer_unchanged, setup),
        cmocka_unit_test_setup(test_sse_enc_nomem, setup),
        cmocka_unit_test_setup(test_sse_enc_last_event_id_parse, setup),
        cmocka_unit_test_setup(test_sse_enc_resume_point_header_wins, setup),
        cmocka_unit_test_setup(test_sse_enc_query_get, setup),
        cmocka_unit_test_setup(test_sse_enc_stream_id_charset, setup),
    };
    return cmocka_run_group_tests_name("sse_enc", tests, NULL, NULL);
}
