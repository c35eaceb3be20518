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

#include "lg_err.h"
#include "lg_sse_auth.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

/* Builds a keys file text with the given key -> user pairs. */
static void keys_text(char *out, size_t outlen, const char *const *pairs, size_t n)
{
    size_t off = 0;
    off += (size_t)snprintf(out + off, outlen - off, "# llmgate keys\n\n");
    for (size_t i = 0; i < n; i++) {
        char h[80];
        assert_int_equal(lg_sse_auth_hash_key(pairs[2 * i], strlen(pairs[2 * i]), h, sizeof(h)),
                         LG_OK);
        off += (size_t)snprintf(out + off, outlen - off, "%s  %s\r\n", h, pairs[2 * i + 1]);
    }
}

static void test_sse_auth_keys_lookup(void **state)
{
    (void)state;
    static const char *const pairs[] = {"sk-alice", "alice", "sk-bob", "bob@example.com",
                                        "sk-carol", "carol"};
    char text[2048];
    keys_text(text, sizeof(text), pairs, 3);
    lg_sse_keys *k = NULL;
    assert_int_equal(lg_sse_keys_parse(&k, text, strlen(text), NULL), LG_OK);
    assert_int_equal(lg_sse_keys_count(k), 3);
    const char *user = NULL;
    assert_int_equal(lg_sse_keys_lookup(k, "sk-bob", 6, &user), LG_OK);
    assert_string_equal(user, "bob@example.com");
    assert_int_equal(lg_sse_keys_lookup(k, "sk-alice", 8, &user), LG_OK);
    assert_string_equal(user, "alice");
    assert_int_equal(lg_sse_keys_lookup(k, "sk-carol", 8, &user), LG_OK);
    assert_string_equal(user, "carol");
    assert_int_equal(lg_sse_keys_lookup(k, "sk-dave", 7, &user), LG_ERR_UNAUTHENTICATED);
    assert_int_equal(lg_sse_keys_lookup(k, "sk-bo", 5, &user), LG_ERR_UNAUTHENTICATED);
    assert_int_equal(lg_sse_keys_lookup(k, "", 0, &user), LG_ERR_UNAUTHENTICATED);
    lg_sse_keys_free(k);
}

static void test_sse_auth_keys_bad_lines(void **state)
{
    (void)state;
    lg_sse_keys *k = NULL;
    size_t line = 0;
    static const char *const bad[] = {
        "sha256:abcd alice\n",
        "md5:0123456789abcdef0123456789abcdef alice\n",
        "sha256:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
        "sha256:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg a\n",
        "sha256:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef a b\n",
        "sha256:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef a\"b\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), "# c\n%s", bad[i]);
        assert_int_equal(lg_sse_keys_parse(&k, text, strlen(text), &line), LG_ERR_INVALID);
        assert_int_equal(line, 2);
    }
    static const char dup[] =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef a\n"
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef b\n";
    assert_int_equal(lg_sse_keys_parse(&k, dup, strlen(dup), &line), LG_ERR_INVALID);
    /* An empty file is valid: it admits nobody. */
    assert_int_equal(lg_sse_keys_parse(&k, "# none\n", 7, &line), LG_OK);
    assert_int_equal(lg_sse_keys_count(k), 0);
    const char *user;
    assert_int_equal(lg_sse_keys_lookup(k, "x", 1, &user), LG_ERR_UNAUTHENTICATED);
    lg_sse_keys_free(k);
}

static void test_sse_auth_keys_load_file(void **state)
{
    (void)state;
    static const char *const pairs[] = {"sk-file", "fileuser"};
    char text[512];
    char path[] = "/tmp/lg_sse_keys_XXXXXX";
    keys_text(text, sizeof(text), pairs, 1);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    lg_sse_keys *k = NULL;
    assert_int_equal(lg_sse_keys_load(&k, path, NULL), LG_OK);
    const char *user;
    assert_int_equal(lg_sse_keys_lookup(k, "sk-file", 7, &user), LG_OK);
    assert_string_equal(user, "fileuser");
    lg_sse_keys_free(k);
    unlink(path);
    assert_int_equal(lg_sse_keys_load(&k, path, NULL), LG_ERR_IO);
}

static void test_sse_auth_keys_nomem(void **state)
{
    (void)state;
    static const char *const pairs[] = {"a", "u1", "b", "u2"};
    char text[512];
    keys_text(text, sizeof(text), pairs, 2);
    for (long n = 0; n < 4; n++) {
        lg_sse_keys *k = NULL;
        lg_test_fail_after(n);
        int rc = lg_sse_keys_parse(&k, text, strlen(text), NULL);
        lg_test_fail_after(-1);
        assert_int_equal(rc, LG_ERR_NOMEM);
    }
}

static void test_sse_auth_bearer(void **state)
{
    (void)state;
    const char *key;
    size_t len;
    assert_int_equal(lg_sse_auth_bearer("Bearer sk-123 ", &key, &len), LG_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(key, "sk-123", 6);
    assert_int_equal(lg_sse_auth_bearer("bearer   x", &key, &len), LG_OK);
    assert_int_equal(lg_sse_auth_bearer("Basic abc", &key, &len), LG_ERR_UNAUTHENTICATED);
    assert_int_equal(lg_sse_auth_bearer("Bearer", &key, &len), LG_ERR_UNAUTHENTICATED);
    assert_int_equal(lg_sse_auth_bearer("Bearer    ", &key, &len), LG_ERR_UNAUTHENTICATED);
    assert_int_equal(lg_sse_auth_bearer("Bearerx abc", &key, &len), LG_ERR_UNAUTHENTICATED);
    assert_int_equal(lg_sse_auth_bearer(NULL, &key, &len), LG_ERR_UNAUTHENTICATED);
}

static void test_sse_auth_token_roundtrip(void **state)
{
    (void)state;
    uint8_t secret[LG_SSE_AUTH_SECRET_BYTES];
    uint8_t other[LG_SSE_AUTH_SECRET_BYTES];
    char tok[512];
    char user[80];
    assert_int_equal(lg_sse_auth_secret("correct horse battery staple", secret), LG_OK);
    assert_int_equal(lg_sse_auth_secret(NULL, other), LG_OK);
    assert_int_equal(lg_sse_token_make(secret, "bob@example.com", "abc123", 1000, tok, sizeof(tok)),
                     LG_OK);
    assert_null(strstr(tok, "bob")); /* the user is hex-coded, not readable in URLs */
    assert_int_equal(lg_sse_token_verify(secret, tok, "abc123", 999, user, sizeof(user)), LG_OK);
    assert_string_equal(user, "bob@example.com");
    assert_int_equal(lg_sse_token_verify(secret, tok, "abc123", 1000, user, sizeof(user)), LG_OK);
    assert_int_equal(lg_sse_token_verify(secret, tok, "abc123", 1001, user, sizeof(user)),
                     LG_ERR_EXPIRED);
    assert_int_equal(lg_sse_token_verify(secret, tok, "abc124", 999, user, sizeof(user)),
                     LG_ERR_PERMISSION);
    assert_int_equal(lg_sse_token_verify(other, tok, "abc123", 999, user, sizeof(user)),
                     LG_ERR_UNAUTHENTICATED);
    /* Any changed byte breaks the MAC or the format. */
    size_t n = strlen(tok);
    for (size_t i = 0; i < n; i++) {
        char t2[512];
        memcpy(t2, tok, n + 1);
        t2[i] = t2[i] == '1' ? '2' : '1';
        int rc = lg_sse_token_verify(secret, t2, "abc123", 999, user, sizeof(user));
        assert_true(rc == LG_ERR_UNAUTHENTICATED || rc == LG_ERR_INVALID);
    }
    static const char *const bad[] = {"", "a.b.c", "a.b.c.d.e", "zz.00.1.00", "61.61..00",
                                      "61.61.99999999999999999999.00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(lg_sse_token_verify(secret, bad[i], "a", 0, user, sizeof(user)),
                         LG_ERR_INVALID);
    }
    assert_int_equal(lg_sse_token_make(secret, "bad user", "abc", 1, tok, sizeof(tok)),
                     LG_ERR_INVALID);
    assert_int_equal(lg_sse_token_make(secret, "u", "abc", 1, tok, 8), LG_ERR_TOO_LARGE);
}

static void test_sse_auth_secret_hex(void **state)
{
    (void)state;
    uint8_t s[LG_SSE_AUTH_SECRET_BYTES];
    assert_int_equal(
        lg_sse_auth_secret("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", s),
        LG_OK);
    assert_int_equal(s[0], 0x00);
    assert_int_equal(s[1], 0x11);
    assert_int_equal(s[31], 0xff);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sse_auth_keys_lookup, setup),
        cmocka_unit_test_setup(test_sse_auth_keys_bad_lines, setup),
        cmocka_unit_test_setup(test_sse_auth_keys_load_file, setup),
        cmocka_unit_test_setup(test_sse_auth_keys_nomem, setup),
        cmocka_unit_test_setup(test_sse_auth_bearer, setup),
        cmocka_unit_test_setup(test_sse_auth_token_roundtrip, setup),
        cmocka_unit_test_setup(test_sse_auth_secret_hex, setup),
    };
    return cmocka_run_group_tests_name("sse_auth", tests, NULL, NULL);
}
