/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "lg_buf.h"
#include "lg_chclient.h"
#include "lg_err.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static int parse(long status, const char *body, struct lg_chclient_result *r)
{
    return lg_chclient_parse_response(status, (const uint8_t *)body, strlen(body), r);
}

static void test_chclient_ok_is_200_without_exception(void **state)
{
    (void)state;
    struct lg_chclient_result r;
    assert_int_equal(parse(200, "", &r), LG_OK);
    assert_int_equal(lg_chclient_classify(&r), LG_CHCLIENT_OK);
    /* Data that merely mentions an exception mid-line is not one. */
    assert_int_equal(parse(200, "{\"error_message\":\"Code: 27, e.displayText() = x\"}\n", &r),
                     LG_OK);
}

static void test_chclient_exception_in_200(void **state)
{
    (void)state;
    struct lg_chclient_result r;
    const char *body = "1\n2\n3\nCode: 395, e.displayText() = DB::Exception: Value passed to "
                       "'throwIf' function is non zero, e.what() = DB::Exception\n";
    assert_int_equal(parse(200, body, &r), LG_ERR_UPSTREAM);
    assert_int_equal(r.ch_code, 395);
    assert_non_null(strstr(r.message, "throwIf"));
    assert_int_equal(lg_chclient_classify(&r), LG_CHCLIENT_RETRY);
    /* Current servers' wording. */
    assert_int_equal(parse(200, "x\nCode: 241. DB::Exception: Memory limit exceeded\n", &r),
                     LG_ERR_UPSTREAM);
    assert_int_equal(r.ch_code, 241);
    assert_int_equal(lg_chclient_classify(&r), LG_CHCLIENT_RETRY);
}

static void test_chclient_bad_row_named(void **state)
{
    (void)state;
    struct lg_chclient_result r;
    const char *body = "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected "
                       "\" before: zz\"}: (while read the value of key b): (at row 2)\n"
                       ", e.what() = DB::Exception\n";
    assert_int_equal(parse(500, body, &r), LG_ERR_UPSTREAM);
    assert_int_equal(r.http_status, 500);
    assert_int_equal(r.ch_code, 27);
    assert_int_equal(r.row, 2);
    assert_int_equal(lg_chclient_classify(&r), LG_CHCLIENT_BAD_ROW);
    assert_int_equal(parse(400, "Code: 26, e.displayText() = DB::Exception: x\n", &r),
                     LG_ERR_UPSTREAM);
    assert_int_equal(lg_chclient_classify(&r), LG_CHCLIENT_BAD_DATA);
}

static void test_chclient_retry_classes(void **state)
{
    (void)state;
    struct lg_chclient_result r;
    const int retry_codes[] = {252, 241, 242, 202, 60, 159};
    for (size_t i = 0; i < sizeof(retry_codes) / sizeof(retry_codes[0]); i++) {
        char body[128];
        snprintf(body, sizeof(body), "Code: %d, e.displayText() = DB::Exception: x\n",
                 retry_codes[i]);
        assert_int_equal(parse(500, body, &r), LG_ERR_UPSTREAM);
        assert_int_equal(lg_chclient_classify(&r), LG_CHCLIENT_RETRY);
    }
    /* A RowBinary INSERT naming a column an older schema lacks (18.16's exact answer): the
     * schema's fault, not the rows': retried until migrated, never dead-lettered. */
    assert_int_equal(parse(500, "Code: 16, e.displayText() = DB::Exception: No such column "
                                "b in table t, e.what() = DB::Exception\n", &r),
                     LG_ERR_UPSTREAM);
    assert_int_equal(r.ch_code, 16);
    assert_int_equal(lg_chclient_classify(&r), LG_CHCLIENT_RETRY);
    assert_int_equal(parse(503, "Service Unavailable", &r), LG_ERR_UPSTREAM);
    assert_string_equal(r.message, "Service Unavailable");
    assert_int_equal(lg_chclient_classify(&r), LG_CHCLIENT_RETRY);
    bool amb;
    assert_int_equal(lg_chclient_curl_error(CURLE_COULDNT_CONNECT, &amb), LG_ERR_UNAVAILABLE);
    assert_false(amb);
    assert_int_equal(lg_chclient_curl_error(CURLE_OPERATION_TIMEDOUT, &amb), LG_ERR_TIMEOUT);
    assert_true(amb);
    assert_int_equal(lg_chclient_curl_error(CURLE_GOT_NOTHING, &amb), LG_ERR_IO);
    assert_true(amb);
    assert_int_equal(lg_chclient_curl_error(CURLE_RECV_ERROR, &amb), LG_ERR_IO);
    assert_true(amb);
    /* A refused certificate or a failed handshake: nothing was sent, no landed-check. */
    assert_int_equal(lg_chclient_curl_error(CURLE_PEER_FAILED_VERIFICATION, &amb),
                     LG_ERR_UNAVAILABLE);
    assert_false(amb);
    assert_int_equal(lg_chclient_curl_error(CURLE_SSL_CONNECT_ERROR, &amb), LG_ERR_UNAVAILABLE);
    assert_false(amb);
    assert_int_equal(lg_chclient_curl_error(CURLE_SEND_ERROR, &amb), LG_ERR_IO);
    assert_true(amb);
}

static void test_chclient_quote_blocks_injection(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 1024);
    const char *evil = "x' OR 1=1 --\\'; DROP TABLE t;\n";
    assert_int_equal(lg_chclient_quote(&b, evil, strlen(evil)), LG_OK);
    assert_string_equal((char *)b.data, "'x\\' OR 1=1 --\\\\\\'; DROP TABLE t;\\x0a'");
    lg_buf_reset(&b);
    assert_int_equal(lg_chclient_urlencode(&b, "INSERT INTO t FORMAT X&a=b"), LG_OK);
    assert_string_equal((char *)b.data, "INSERT%20INTO%20t%20FORMAT%20X%26a%3Db");
    lg_buf_deinit(&b);
}

static void test_chclient_loopback_hosts(void **state)
{
    (void)state;
    const char *yes[] = {"http://localhost:8123", "http://LocalHost:8123",
                         "http://127.0.0.1:8123", "https://127.1.2.3", "http://[::1]:8123",
                         "http://u:p@127.0.0.1:8123", "http://[::ffff:127.0.0.1]:8123",
                         "http://localhost."};
    const char *no[] = {"http://10.0.0.1:8123", "http://clickhouse.example:8123",
                        "http://[::2]:8123", "http://128.0.0.1", "http://localhost.example",
                        "http://127.0.0.1.example", "http://[::ffff:10.0.0.1]:8123",
                        "http://u:p@10.1.1.1:8123", "", "not a url"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        assert_true(lg_chclient_url_is_loopback(yes[i]));
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        assert_false(lg_chclient_url_is_loopback(no[i]));
    }
    assert_false(lg_chclient_url_is_loopback(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_chclient_ok_is_200_without_exception, setup),
        cmocka_unit_test_setup(test_chclient_exception_in_200, setup),
        cmocka_unit_test_setup(test_chclient_bad_row_named, setup),
        cmocka_unit_test_setup(test_chclient_retry_classes, setup),
        cmocka_unit_test_setup(test_chclient_quote_blocks_injection, setup),
        cmocka_unit_test_setup(test_chclient_loopback_hosts, setup),
    };
    return cmocka_run_group_tests_name("chclient", tests, NULL, NULL);
}
