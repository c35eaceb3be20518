/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_grpc_frame.h"
#include "lg_limits.h"
#include "lg_test.h"

/* The interop special_status_message (grpc doc/interop-test-descriptions.md). */
static const char special_msg[] =
    "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88\t\n";
static const char special_msg_encoded[] = "%09%0Atest with whitespace%0D%0Aand Unicode BMP "
                                          "%E2%98%BA and non-BMP %F0%9F%98%88%09%0A";

#define TEST_MAX_MSGS 16

/* What a reader callback saw. */
struct collected {
    size_t count;
    size_t len[TEST_MAX_MSGS];
    bool compressed[TEST_MAX_MSGS];
    uint8_t data[TEST_MAX_MSGS][64];
    int fail_at; /* message index at which the callback returns LG_ERR_CANCELLED; -1 never */
};

static int collect_cb(const struct lg_grpc_frame_msg *m, void *ud)
{
    struct collected *c = ud;
    if (c->fail_at >= 0 && (size_t)c->fail_at == c->count) {
        return LG_ERR_CANCELLED;
    }
    assert_true(c->count < TEST_MAX_MSGS);
    c->len[c->count] = m->data.len;
    c->compressed[c->count] = m->compressed;
    size_t n = m->data.len < sizeof(c->data[0]) ? m->data.len : sizeof(c->data[0]);
    if (n) {
        memcpy(c->data[c->count], m->data.ptr, n);
    }
    c->count++;
    return LG_OK;
}

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

/* Builds the stream: "hello" (plain), "" (empty), 40 x 'z' (flag set, raw bytes). */
static void build_stream(struct lg_buf *b)
{
    lg_buf_init(b, 1024);
    assert_int_equal(lg_grpc_frame_encode(b, (const uint8_t *)"hello", 5, false), LG_OK);
    assert_int_equal(lg_grpc_frame_encode(b, NULL, 0, false), LG_OK);
    uint8_t pre[LG_GRPC_FRAME_PREFIX_BYTES];
    uint8_t z[40];
    memset(z, 'z', sizeof(z));
    lg_grpc_frame_write_prefix(pre, true, sizeof(z));
    assert_int_equal(lg_buf_append(b, pre, sizeof(pre)), LG_OK);
    assert_int_equal(lg_buf_append(b, z, sizeof(z)), LG_OK);
}

static void check_stream(const struct collected *c)
{
    assert_int_equal(c->count, 3);
    assert_int_equal(c->len[0], 5);
    assert_memory_equal(c->data[0], "hello", 5);
    assert_false(c->compressed[0]);
    assert_int_equal(c->len[1], 0);
    assert_false(c->compressed[1]);
    assert_int_equal(c->len[2], 40);
    assert_true(c->compressed[2]);
    for (size_t i = 0; i < 40; i++) {
        assert_int_equal(c->data[2][i], 'z');
    }
}

static void test_grpc_frame_encode_prefix(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 64);
    assert_int_equal(lg_grpc_frame_encode(&b, (const uint8_t *)"abc", 3, false), LG_OK);
    const uint8_t want[] = {0, 0, 0, 0, 3, 'a', 'b', 'c'};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    uint8_t pre[LG_GRPC_FRAME_PREFIX_BYTES];
    lg_grpc_frame_write_prefix(pre, true, 0x01020304u);
    const uint8_t want_pre[] = {1, 1, 2, 3, 4};
    assert_memory_equal(pre, want_pre, sizeof(want_pre));
    lg_buf_deinit(&b);
}

static void test_grpc_frame_encode_errors(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 7);
    /* 5 + 3 > 7: refused and |b| unchanged. */
    assert_int_equal(lg_grpc_frame_encode(&b, (const uint8_t *)"abc", 3, false), LG_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);
    assert_int_equal(lg_grpc_frame_encode(&b, (const uint8_t *)"abc", 3, true), LG_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);
    /* Over the 32-bit length: checked before the bytes are touched. */
    uint8_t one = 0;
    assert_int_equal(
        lg_grpc_frame_encode(&b, &one, (size_t)LG_GRPC_FRAME_MAX_PAYLOAD_BYTES + 1u, false),
        LG_ERR_INVALID);
    lg_buf_deinit(&b);

    lg_buf_init(&b, 64);
    lg_test_fail_after(0);
    assert_int_equal(lg_grpc_frame_encode(&b, (const uint8_t *)"abc", 3, false), LG_ERR_NOMEM);
    assert_int_equal(b.len, 0);
    lg_test_fail_after(-1);
    lg_buf_deinit(&b);
}

static void test_grpc_frame_encode_gzip_roundtrip(void **state)
{
    (void)state;
    uint8_t msg[3000];
    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t)(i % 7);
    }
    struct lg_buf b;
    lg_buf_init(&b, 1 << 16);
    assert_int_equal(lg_grpc_frame_encode(&b, msg, sizeof(msg), true), LG_OK);
    assert_int_equal(b.data[0], LG_GRPC_FRAME_FLAG_COMPRESSED);
    size_t zlen =
        (size_t)b.data[1] << 24 | (size_t)b.data[2] << 16 | (size_t)b.data[3] << 8 | b.data[4];
    assert_int_equal(zlen + LG_GRPC_FRAME_PREFIX_BYTES, b.len);
    assert_true(zlen < sizeof(msg));
    struct lg_buf plain;
    lg_buf_init(&plain, sizeof(msg));
    assert_int_equal(lg_grpc_frame_gunzip(b.data + LG_GRPC_FRAME_PREFIX_BYTES, zlen, &plain),
                     LG_OK);
    assert_int_equal(plain.len, sizeof(msg));
    assert_memory_equal(plain.data, msg, sizeof(msg));
    lg_buf_deinit(&plain);
    lg_buf_deinit(&b);
}

/* Every split point, and every pair of split points, of a three-message stream. */
static void test_grpc_frame_reader_every_split(void **state)
{
    (void)state;
    struct lg_buf s;
    build_stream(&s);
    for (size_t i = 0; i <= s.len; i++) {
        for (size_t j = i; j <= s.len; j++) {
            lg_grpc_frame_reader *r;
            assert_int_equal(lg_grpc_frame_reader_new(&r, 100), LG_OK);
            struct collected c = {.fail_at = -1};
            assert_int_equal(lg_grpc_frame_reader_feed(r, s.data, i, collect_cb, &c), LG_OK);
            assert_int_equal(lg_grpc_frame_reader_feed(r, s.data + i, j - i, collect_cb, &c),
                             LG_OK);
            assert_int_equal(lg_grpc_frame_reader_feed(r, s.data + j, s.len - j, collect_cb, &c),
                             LG_OK);
            assert_int_equal(lg_grpc_frame_reader_finish(r), LG_OK);
            check_stream(&c);
            assert_int_equal(lg_grpc_frame_reader_count(r), 3);
            lg_grpc_frame_reader_free(r);
        }
    }
    lg_buf_deinit(&s);
}

static void test_grpc_frame_reader_byte_by_byte(void **state)
{
    (void)state;
    struct lg_buf s;
    build_stream(&s);
    lg_grpc_frame_reader *r;
    assert_int_equal(lg_grpc_frame_reader_new(&r, 100), LG_OK);
    struct collected c = {.fail_at = -1};
    for (size_t i = 0; i < s.len; i++) {
        assert_int_equal(lg_grpc_frame_reader_feed(r, s.data + i, 1, collect_cb, &c), LG_OK);
        if (i == 6) {
            /* after "hello"'s prefix and 2 payload bytes */
            assert_int_equal(lg_grpc_frame_reader_pending_len(r), 7);
        }
    }
    assert_int_equal(lg_grpc_frame_reader_pending_len(r), 0);
    assert_int_equal(lg_grpc_frame_reader_finish(r), LG_OK);
    check_stream(&c);
    /* After finish: no more feeds. */
    assert_int_equal(lg_grpc_frame_reader_feed(r, s.data, 1, collect_cb, &c), LG_ERR_STATE);
    lg_grpc_frame_reader_free(r);
    lg_buf_deinit(&s);
}

static void test_grpc_frame_reader_too_large(void **state)
{
    (void)state;
    lg_grpc_frame_reader *r;
    assert_int_equal(lg_grpc_frame_reader_new(&r, 4), LG_OK);
    struct collected c = {.fail_at = -1};
    /* 4 bytes is the limit: accepted. */
    const uint8_t ok[] = {0, 0, 0, 0, 4, 'a', 'b', 'c', 'd'};
    assert_int_equal(lg_grpc_frame_reader_feed(r, ok, sizeof(ok), collect_cb, &c), LG_OK);
    assert_int_equal(c.count, 1);
    /* 5 declared: refused from the prefix alone, before any payload arrives. */
    const uint8_t big[] = {0, 0, 0, 0, 5};
    assert_int_equal(lg_grpc_frame_reader_feed(r, big, sizeof(big), collect_cb, &c),
                     LG_ERR_TOO_LARGE);
    /* Sticky. */
    assert_int_equal(lg_grpc_frame_reader_feed(r, ok, sizeof(ok), collect_cb, &c),
                     LG_ERR_TOO_LARGE);
    assert_int_equal(lg_grpc_frame_reader_finish(r), LG_ERR_TOO_LARGE);
    assert_int_equal(c.count, 1);
    lg_grpc_frame_reader_free(r);

    /* A 4 GiB - 1 declared length against the default limit. */
    assert_int_equal(lg_grpc_frame_reader_new(&r, LG_GRPC_FRAME_DEFAULT_MAX_MESSAGE_BYTES), LG_OK);
    const uint8_t huge[] = {0, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(lg_grpc_frame_reader_feed(r, huge, 3, collect_cb, &c), LG_OK);
    assert_int_equal(lg_grpc_frame_reader_feed(r, huge + 3, 2, collect_cb, &c), LG_ERR_TOO_LARGE);
    lg_grpc_frame_reader_free(r);
}

static void test_grpc_frame_reader_reserved_flag(void **state)
{
    (void)state;
    lg_grpc_frame_reader *r;
    assert_int_equal(lg_grpc_frame_reader_new(&r, 100), LG_OK);
    struct collected c = {.fail_at = -1};
    const uint8_t bad[] = {2, 0, 0, 0, 0};
    assert_int_equal(lg_grpc_frame_reader_feed(r, bad, sizeof(bad), collect_cb, &c),
                     LG_ERR_MALFORMED);
    assert_int_equal(c.count, 0);
    lg_grpc_frame_reader_free(r);
}

static void test_grpc_frame_reader_truncated(void **state)
{
    (void)state;
    const uint8_t s[] = {0, 0, 0, 0, 3, 'a', 'b', 'c'};
    /* End-of-stream inside the prefix, and inside the payload. */
    for (size_t cut = 1; cut < sizeof(s); cut++) {
        lg_grpc_frame_reader *r;
        assert_int_equal(lg_grpc_frame_reader_new(&r, 100), LG_OK);
        struct collected c = {.fail_at = -1};
        assert_int_equal(lg_grpc_frame_reader_feed(r, s, cut, collect_cb, &c), LG_OK);
        assert_int_equal(lg_grpc_frame_reader_finish(r), LG_ERR_MALFORMED);
        assert_int_equal(c.count, 0);
        lg_grpc_frame_reader_free(r);
    }
}

static void test_grpc_frame_reader_callback_error(void **state)
{
    (void)state;
    struct lg_buf s;
    build_stream(&s);
    lg_grpc_frame_reader *r;
    assert_int_equal(lg_grpc_frame_reader_new(&r, 100), LG_OK);
    struct collected c = {.fail_at = 1};
    assert_int_equal(lg_grpc_frame_reader_feed(r, s.data, s.len, collect_cb, &c), LG_ERR_CANCELLED);
    assert_int_equal(c.count, 1);
    assert_int_equal(lg_grpc_frame_reader_feed(r, s.data, s.len, collect_cb, &c), LG_ERR_STATE);
    assert_int_equal(lg_grpc_frame_reader_finish(r), LG_ERR_STATE);
    lg_grpc_frame_reader_free(r);
    lg_buf_deinit(&s);
}

static void test_grpc_frame_reader_nomem(void **state)
{
    (void)state;
    lg_test_fail_after(0);
    lg_grpc_frame_reader *r = NULL;
    assert_int_equal(lg_grpc_frame_reader_new(&r, 100), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_int_equal(lg_grpc_frame_reader_new(&r, 100), LG_OK);
    struct collected c = {.fail_at = -1};
    const uint8_t s[] = {0, 0, 0, 0, 3, 'a', 'b', 'c'};
    /* A message split across feeds needs the internal buffer. */
    lg_test_fail_after(0);
    assert_int_equal(lg_grpc_frame_reader_feed(r, s, 6, collect_cb, &c), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_int_equal(lg_grpc_frame_reader_feed(r, s + 6, 2, collect_cb, &c), LG_ERR_NOMEM);
    lg_grpc_frame_reader_free(r);
    lg_grpc_frame_reader_free(NULL);
}

static void test_grpc_frame_gzip_bomb_capped(void **state)
{
    (void)state;
    /* 8 MiB of zeros compresses to a few KiB; the cap stops inflation at 64 KiB. */
    size_t big = 8u * 1024u * 1024u;
    uint8_t *zeros = test_calloc(1, big);
    struct lg_buf z;
    lg_buf_init(&z, big);
    assert_int_equal(lg_grpc_frame_gzip(zeros, big, &z), LG_OK);
    assert_true(z.len < 64u * 1024u);
    struct lg_buf out;
    lg_buf_init(&out, 64u * 1024u);
    assert_int_equal(lg_grpc_frame_gunzip(z.data, z.len, &out), LG_ERR_TOO_LARGE);
    assert_true(out.len <= 64u * 1024u);
    lg_buf_deinit(&out);
    /* Exactly at the cap: fits. */
    lg_buf_init(&out, big);
    assert_int_equal(lg_grpc_frame_gunzip(z.data, z.len, &out), LG_OK);
    assert_int_equal(out.len, big);
    lg_buf_deinit(&out);
    lg_buf_deinit(&z);
    test_free(zeros);
}

static void test_grpc_frame_gzip_errors(void **state)
{
    (void)state;
    const uint8_t text[] = "the quick brown fox jumps over the lazy dog, twice: the quick brown";
    struct lg_buf z;
    lg_buf_init(&z, 1024);
    assert_int_equal(lg_grpc_frame_gzip(text, sizeof(text), &z), LG_OK);
    struct lg_buf out;
    lg_buf_init(&out, 1024);
    /* Truncated at every length. */
    for (size_t cut = 0; cut < z.len; cut++) {
        lg_buf_reset(&out);
        assert_int_equal(lg_grpc_frame_gunzip(z.data, cut, &out), LG_ERR_MALFORMED);
    }
    /* Trailing garbage after the member. */
    lg_buf_reset(&out);
    assert_int_equal(lg_buf_append(&z, "x", 1), LG_OK);
    assert_int_equal(lg_grpc_frame_gunzip(z.data, z.len, &out), LG_ERR_MALFORMED);
    /* Not gzip at all. */
    lg_buf_reset(&out);
    assert_int_equal(lg_grpc_frame_gunzip(text, sizeof(text), &out), LG_ERR_MALFORMED);
    /* Corrupt CRC. */
    z.data[z.len - 6] ^= 0xff;
    lg_buf_reset(&out);
    assert_int_equal(lg_grpc_frame_gunzip(z.data, z.len - 1, &out), LG_ERR_MALFORMED);
    /* Compress into a buffer too small. */
    struct lg_buf tiny;
    lg_buf_init(&tiny, 8);
    assert_int_equal(lg_grpc_frame_gzip(text, sizeof(text), &tiny), LG_ERR_TOO_LARGE);
    lg_buf_deinit(&tiny);
    /* Out of memory inside zlib. */
    lg_buf_reset(&out);
    lg_test_fail_after(0);
    assert_int_equal(lg_grpc_frame_gzip(text, sizeof(text), &out), LG_ERR_NOMEM);
    lg_test_fail_after(0);
    assert_int_equal(lg_grpc_frame_gunzip(z.data, z.len, &out), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    lg_buf_deinit(&out);
    lg_buf_deinit(&z);
}

static void test_grpc_frame_percent_special_message(void **state)
{
    (void)state;
    struct lg_buf e;
    lg_buf_init(&e, 1024);
    assert_int_equal(
        lg_grpc_frame_percent_encode((const uint8_t *)special_msg, sizeof(special_msg) - 1, &e),
        LG_OK);
    assert_string_equal((const char *)e.data, special_msg_encoded);
    struct lg_buf d;
    lg_buf_init(&d, 1024);
    assert_int_equal(lg_grpc_frame_percent_decode(e.data, e.len, &d), LG_OK);
    assert_int_equal(d.len, sizeof(special_msg) - 1);
    assert_memory_equal(d.data, special_msg, d.len);
    /* '%' itself is escaped. */
    lg_buf_reset(&e);
    assert_int_equal(lg_grpc_frame_percent_encode((const uint8_t *)"100%", 4, &e), LG_OK);
    assert_string_equal((const char *)e.data, "100%25");
    lg_buf_deinit(&d);
    lg_buf_deinit(&e);
}

static void test_grpc_frame_percent_decode_lenient(void **state)
{
    (void)state;
    struct lg_buf d;
    lg_buf_init(&d, 64);
    const char in[] = "a%zz%4%41%e2%98%ba%";
    assert_int_equal(lg_grpc_frame_percent_decode((const uint8_t *)in, sizeof(in) - 1, &d), LG_OK);
    assert_string_equal((const char *)d.data, "a%zz%4A\xe2\x98\xba%");
    lg_buf_deinit(&d);
    /* Caps apply. */
    lg_buf_init(&d, 3);
    assert_int_equal(lg_grpc_frame_percent_encode((const uint8_t *)"\n", 1, &d), LG_OK);
    assert_int_equal(lg_grpc_frame_percent_encode((const uint8_t *)"\n", 1, &d), LG_ERR_TOO_LARGE);
    lg_buf_reset(&d);
    assert_int_equal(lg_grpc_frame_percent_decode((const uint8_t *)"abcd", 4, &d),
                     LG_ERR_TOO_LARGE);
    lg_buf_deinit(&d);
}

static void test_grpc_frame_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10, without padding. */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    static const char *const padded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                         "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    struct lg_buf b;
    lg_buf_init(&b, 64);
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        lg_buf_reset(&b);
        assert_int_equal(
            lg_grpc_frame_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), &b), LG_OK);
        assert_int_equal(b.len, strlen(enc[i]));
        assert_memory_equal(b.data, enc[i], b.len);
        lg_buf_reset(&b);
        assert_int_equal(lg_grpc_frame_base64_decode((const uint8_t *)enc[i], strlen(enc[i]), &b),
                         LG_OK);
        assert_int_equal(b.len, strlen(plain[i]));
        assert_memory_equal(b.data, plain[i], b.len);
        lg_buf_reset(&b);
        assert_int_equal(
            lg_grpc_frame_base64_decode((const uint8_t *)padded[i], strlen(padded[i]), &b), LG_OK);
        assert_int_equal(b.len, strlen(plain[i]));
        assert_memory_equal(b.data, plain[i], b.len);
    }
    /* The interop trailing-bin value 0xababab. */
    lg_buf_reset(&b);
    const uint8_t ab[] = {0xab, 0xab, 0xab};
    assert_int_equal(lg_grpc_frame_base64_encode(ab, sizeof(ab), &b), LG_OK);
    assert_string_equal((const char *)b.data, "q6ur");
    /* Every byte value round-trips. */
    uint8_t all[256];
    for (size_t i = 0; i < sizeof(all); i++) {
        all[i] = (uint8_t)i;
    }
    struct lg_buf e;
    lg_buf_init(&e, 1024);
    assert_int_equal(lg_grpc_frame_base64_encode(all, sizeof(all), &e), LG_OK);
    lg_buf_reset(&b);
    lg_buf_deinit(&b);
    lg_buf_init(&b, 1024);
    assert_int_equal(lg_grpc_frame_base64_decode(e.data, e.len, &b), LG_OK);
    assert_int_equal(b.len, sizeof(all));
    assert_memory_equal(b.data, all, sizeof(all));
    lg_buf_deinit(&e);
    lg_buf_deinit(&b);
}

static void test_grpc_frame_base64_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Z", "Zm9vY", "Zg=", "Zg===", "Z===", "Zm9v====", "Zm=v", "Zm9*", "Zm9v\n", "Zg=a", "-_-_"};
    struct lg_buf b;
    lg_buf_init(&b, 64);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lg_buf_reset(&b);
        assert_int_equal(lg_grpc_frame_base64_decode((const uint8_t *)bad[i], strlen(bad[i]), &b),
                         LG_ERR_MALFORMED);
        assert_int_equal(b.len, 0);
    }
    lg_buf_deinit(&b);
    /* Caps and memory. */
    lg_buf_init(&b, 2);
    assert_int_equal(lg_grpc_frame_base64_decode((const uint8_t *)"Zm9v", 4, &b), LG_ERR_TOO_LARGE);
    assert_int_equal(lg_grpc_frame_base64_encode((const uint8_t *)"foo", 3, &b), LG_ERR_TOO_LARGE);
    lg_test_fail_after(0);
    assert_int_equal(lg_grpc_frame_base64_decode((const uint8_t *)"Zg", 2, &b), LG_ERR_NOMEM);
    lg_test_fail_after(0);
    assert_int_equal(lg_grpc_frame_base64_encode((const uint8_t *)"f", 1, &b), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    lg_buf_deinit(&b);
}

struct bin_seen {
    size_t count;
    char vals[4][16];
    int stop_at;
};

static int bin_cb(struct lg_slice v, void *ud)
{
    struct bin_seen *s = ud;
    if (s->stop_at >= 0 && (size_t)s->stop_at == s->count) {
        return LG_ERR_CANCELLED;
    }
    assert_true(s->count < 4 && v.len < 16);
    memcpy(s->vals[s->count], v.ptr, v.len);
    s->vals[s->count][v.len] = 0;
    s->count++;
    return LG_OK;
}

static void test_grpc_frame_base64_list(void **state)
{
    (void)state;
    struct lg_buf scratch;
    lg_buf_init(&scratch, 64);
    const char in[] = "Zm9v, YmFy==,YmE=";
    struct bin_seen s = {.stop_at = -1};
    assert_int_equal(
        lg_grpc_frame_bin_decode_list((const uint8_t *)in, sizeof(in) - 1, &scratch, bin_cb, &s),
        LG_ERR_MALFORMED); /* "YmFy==" has excess padding */
    const char in2[] = "Zm9v, YmFy ,YmE=";
    s = (struct bin_seen){.stop_at = -1};
    assert_int_equal(
        lg_grpc_frame_bin_decode_list((const uint8_t *)in2, sizeof(in2) - 1, &scratch, bin_cb, &s),
        LG_OK);
    assert_int_equal(s.count, 3);
    assert_string_equal(s.vals[0], "foo");
    assert_string_equal(s.vals[1], "bar");
    assert_string_equal(s.vals[2], "ba");
    s = (struct bin_seen){.stop_at = 1};
    assert_int_equal(
        lg_grpc_frame_bin_decode_list((const uint8_t *)in2, sizeof(in2) - 1, &scratch, bin_cb, &s),
        LG_ERR_CANCELLED);
    assert_int_equal(s.count, 1);
    lg_buf_deinit(&scratch);
}

static void test_grpc_frame_timeout_all_units(void **state)
{
    (void)state;
    struct {
        const char *s;
        uint64_t ns;
    } cases[] = {
        {"1n", 1u},
        {"7u", 7000u},
        {"250m", 250000000u},
        {"3S", 3000000000u},
        {"2M", 120000000000u},
        {"1H", 3600000000000u},
        {"0m", 0u},
        {"99999999n", 99999999u},
        {"00000010S", 10000000000u},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t ns = 1;
        assert_int_equal(
            lg_grpc_frame_timeout_parse((const uint8_t *)cases[i].s, strlen(cases[i].s), &ns),
            LG_OK);
        assert_true(ns == cases[i].ns);
    }
    /* 99999999H does not fit 64 bits of nanoseconds: saturates. */
    uint64_t ns = 0;
    assert_int_equal(lg_grpc_frame_timeout_parse((const uint8_t *)"99999999H", 9, &ns), LG_OK);
    assert_true(ns == UINT64_MAX);
    static const char *const bad[] = {"",    "n",   "1",    "123456789n", "1s", "1h",
                                      "-1S", "1 S", "1.5S", "S1",         "1SS"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(lg_grpc_frame_timeout_parse((const uint8_t *)bad[i], strlen(bad[i]), &ns),
                         LG_ERR_INVALID);
    }
}

static void test_grpc_frame_timeout_format(void **state)
{
    (void)state;
    struct {
        uint64_t ns;
        const char *s;
    } cases[] = {
        {0u, "0n"},
        {1u, "1n"},
        {99999999u, "99999999n"},
        {100000000u, "100000u"},
        {100000001u, "100001u"}, /* rounded up */
        {5000000000u, "5000000u"},
        {100000000000u, "100000m"},
        {100000000000000u, "100000S"},
        {100000000000000000u, "1666667M"},
        {UINT64_MAX, "5124096H"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[LG_GRPC_FRAME_TIMEOUT_STR_BYTES];
        size_t n = lg_grpc_frame_timeout_format(cases[i].ns, out);
        assert_string_equal(out, cases[i].s);
        assert_int_equal(n, strlen(cases[i].s));
        /* Parsing back never gives a shorter deadline. */
        uint64_t back = 0;
        assert_int_equal(lg_grpc_frame_timeout_parse((const uint8_t *)out, n, &back), LG_OK);
        assert_true(back >= cases[i].ns);
    }
}

static bool key_ok(const char *k)
{
    return lg_grpc_frame_is_valid_key((const uint8_t *)k, strlen(k));
}

static bool ct_ok(const char *v)
{
    return lg_grpc_frame_is_grpc_content_type((const uint8_t *)v, strlen(v));
}

static void test_grpc_frame_metadata_checks(void **state)
{
    (void)state;
    assert_true(key_ok("x-grpc-test-echo-initial"));
    assert_true(key_ok("a.b_c-0"));
    assert_false(key_ok(""));
    assert_false(key_ok("X-Upper"));
    assert_false(key_ok("sp ace"));
    assert_false(key_ok(":path"));
    assert_true(lg_grpc_frame_is_reserved_key((const uint8_t *)"grpc-status", 11));
    assert_true(lg_grpc_frame_is_reserved_key((const uint8_t *)":path", 5));
    assert_false(lg_grpc_frame_is_reserved_key((const uint8_t *)"grpcx", 5));
    assert_true(lg_grpc_frame_is_bin_key((const uint8_t *)"x-trace-bin", 11));
    assert_false(lg_grpc_frame_is_bin_key((const uint8_t *)"-bin", 4));
    assert_false(lg_grpc_frame_is_bin_key((const uint8_t *)"x-bin-x", 7));
    assert_true(lg_grpc_frame_is_valid_ascii_value((const uint8_t *)"a b~", 4));
    assert_false(lg_grpc_frame_is_valid_ascii_value((const uint8_t *)"a\nb", 3));
    assert_false(lg_grpc_frame_is_valid_ascii_value((const uint8_t *)"\xc3\xa9", 2));

    assert_true(ct_ok("application/grpc"));
    assert_true(ct_ok("application/grpc+proto"));
    assert_true(ct_ok("application/grpc+json"));
    assert_true(ct_ok("application/grpc;charset=utf-8"));
    assert_true(ct_ok("Application/GRPC"));
    assert_false(ct_ok("application/grpcx"));
    assert_false(ct_ok("application/grp"));
    assert_false(ct_ok("application/json"));
    assert_false(ct_ok("text/plain"));
}

static void test_grpc_frame_status_parse(void **state)
{
    (void)state;
    int st = -1;
    assert_int_equal(lg_grpc_frame_status_parse((const uint8_t *)"0", 1, &st), LG_OK);
    assert_int_equal(st, 0);
    assert_int_equal(lg_grpc_frame_status_parse((const uint8_t *)"12", 2, &st), LG_OK);
    assert_int_equal(st, 12);
    assert_int_equal(lg_grpc_frame_status_parse((const uint8_t *)"2147483647", 10, &st), LG_OK);
    static const char *const bad[] = {"", "01", "-1", "1a", "2147483648", "99999999999", " 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(lg_grpc_frame_status_parse((const uint8_t *)bad[i], strlen(bad[i]), &st),
                         LG_ERR_MALFORMED);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_grpc_frame_encode_prefix, setup),
        cmocka_unit_test_setup(test_grpc_frame_encode_errors, setup),
        cmocka_unit_test_setup(test_grpc_frame_encode_gzip_roundtrip, setup),
        cmocka_unit_test_setup(test_grpc_frame_reader_every_split, setup),
        cmocka_unit_test_setup(test_grpc_frame_reader_byte_by_byte, setup),
        cmocka_unit_test_setup(test_grpc_frame_reader_too_large, setup),
        cmocka_unit_test_setup(test_grpc_frame_reader_reserved_flag, setup),
        cmocka_unit_test_setup(test_grpc_frame_reader_truncated, setup),
        cmocka_unit_test_setup(test_grpc_frame_reader_callback_error, setup),
        cmocka_unit_test_setup(test_grpc_frame_reader_nomem, setup),
        cmocka_unit_test_setup(test_grpc_frame_gzip_bomb_capped, setup),
        cmocka_unit_test_setup(test_grpc_frame_gzip_errors, setup),
        cmocka_unit_test_setup(test_grpc_frame_percent_special_message, setup),
        cmocka_unit_test_setup(test_grpc_frame_percent_decode_lenient, setup),
        cmocka_unit_test_setup(test_grpc_frame_base64_vectors, setup),
        cmocka_unit_test_setup(test_grpc_frame_base64_bad, setup),
        cmocka_unit_test_setup(test_grpc_frame_base64_list, setup),
        cmocka_unit_test_setup(test_grpc_frame_timeout_all_units, setup),
        cmocka_unit_test_setup(test_grpc_frame_timeout_format, setup),
        cmocka_unit_test_setup(test_grpc_frame_metadata_checks, setup),
        cmocka_unit_test_setup(test_grpc_frame_status_parse, setup),
    };
    return cmocka_run_group_tests_name("grpc_frame", tests, NULL, NULL);
}
