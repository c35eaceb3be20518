/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_chclient (owner: fuzz): ClickHouse answers and SQL/URL escaping in lg_chclient.
 *
 * Input: byte 0 picks the HTTP status (mostly 200, since an exception inside a 200 is the
 * case that matters), the rest is the response body; the same bytes are then quoted as a
 * ClickHouse string literal and URL-encoded. Properties checked (abort() on violation):
 *  - parse: the message is NUL-terminated and one line; LG_OK only for status 200 with no
 *    exception; any line "Code: <1..6 digits>" + an 18.16 or current exception marker in a
 *    200 body is detected (an exception inside a 200 must never pass as success);
 *  - classify agrees with parse (OK exactly when parse said OK) and BAD_ROW names a row;
 *  - quote: the literal is '...' with no raw quote, backslash-escape or control byte, and
 *    unquoting it gives the input back (so no user input can end the literal early);
 *  - urlencode: only RFC 3986 unreserved bytes and %XX, decoding to the input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lg_buf.h"
#include "lg_chclient.h"
#include "lg_err.h"

#define FUZZ_OUT_MAX (1024 * 1024)

#define LG_FUZZ_SMOKE_ITERATIONS 20000
#include "lg_fuzz_smoke.h"

static const long fuzz_statuses[] = {200, 200, 200, 200, 500, 400, 404, 503, 0, 204};

/* The exception oracle: a line starting with "Code: " + 1..6 digits + a known marker. */
static bool has_exception_line(const uint8_t *p, size_t len)
{
    static const char code[] = "Code: ";
    for (size_t i = 0; i + sizeof(code) - 1 < len; i++) {
        if ((i > 0 && p[i - 1] != '\n') || memcmp(p + i, code, sizeof(code) - 1) != 0) {
            continue;
        }
        size_t k = i + sizeof(code) - 1, d = 0;
        while (k < len && d < 6 && p[k] >= '0' && p[k] <= '9') {
            k++;
            d++;
        }
        if (d == 0) {
            continue;
        }
        if ((len - k >= 17 && memcmp(p + k, ", e.displayText()", 17) == 0) ||
            (len - k >= 15 && memcmp(p + k, ". DB::Exception", 15) == 0)) {
            return true;
        }
    }
    return false;
}

static void check_parse(long status, const uint8_t *body, size_t len)
{
    struct lg_chclient_result r;
    int rc = lg_chclient_parse_response(status, body, len, &r);
    if (memchr(r.message, 0, sizeof(r.message)) == NULL ||
        strchr(r.message, '\n') != NULL) {
        abort();
    }
    if (rc == LG_OK && (status != 200 || r.ch_code != 0 || r.message[0] != 0)) {
        abort();
    }
    if (rc != LG_OK && rc != LG_ERR_UPSTREAM) {
        abort();
    }
    if (status == 200 && (rc == LG_OK) == has_exception_line(body, len)) {
        abort();
    }
    enum lg_chclient_verdict v = lg_chclient_classify(&r);
    if ((v == LG_CHCLIENT_OK) != (rc == LG_OK) || (v == LG_CHCLIENT_BAD_ROW && r.row <= 0)) {
        abort();
    }
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static void check_quote(const uint8_t *s, size_t len)
{
    struct lg_buf b;
    lg_buf_init(&b, FUZZ_OUT_MAX);
    if (lg_chclient_quote(&b, (const char *)s, len) != LG_OK) {
        abort(); /* the cap is far above 4x any input here */
    }
    const uint8_t *q = b.data;
    if (b.len < 2 || q[0] != '\'' || q[b.len - 1] != '\'') {
        abort();
    }
    size_t n = 0; /* bytes decoded so far, compared against s as we go */
    for (size_t i = 1; i < b.len - 1; i++) {
        uint8_t c = q[i];
        uint8_t dec;
        if (c < 0x20 || c == 0x7f || c == '\'') {
            abort(); /* raw control byte or an unescaped quote ends/breaks the literal */
        }
        if (c == '\\') {
            if (i + 1 >= b.len - 1) {
                abort(); /* a trailing backslash would escape the closing quote */
            }
            uint8_t e = q[++i];
            if (e == '\'' || e == '\\') {
                dec = e;
            } else if (e == 'x' && i + 2 < b.len - 1 && hexval(q[i + 1]) >= 0 &&
                       hexval(q[i + 2]) >= 0) {
                dec = (uint8_t)(hexval(q[i + 1]) * 16 + hexval(q[i + 2]));
                i += 2;
            } else {
                abort();
            }
        } else {
            dec = c;
        }
        if (n >= len || s[n] != dec) {
            abort();
        }
        n++;
    }
    if (n != len) {
        abort();
    }
    lg_buf_deinit(&b);
}

static void check_urlencode(const uint8_t *s, size_t len)
{
    char *z = malloc(len + 1);
    if (z == NULL) {
        return;
    }
    memcpy(z, s, len);
    z[len] = 0;
    size_t zl = strlen(z);
    struct lg_buf b;
    lg_buf_init(&b, FUZZ_OUT_MAX);
    if (lg_chclient_urlencode(&b, z) != LG_OK) {
        abort();
    }
    size_t n = 0;
    for (size_t i = 0; i < b.len; i++) {
        uint8_t c = b.data[i];
        uint8_t dec = c;
        if (c == '%') {
            if (i + 2 >= b.len) {
                abort();
            }
            int hi = hexval(b.data[i + 1]), lo = hexval(b.data[i + 2]);
            if (hi < 0 || lo < 0) {
                abort();
            }
            dec = (uint8_t)(hi * 16 + lo);
            i += 2;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~')) {
            abort();
        }
        if (n >= zl || (uint8_t)z[n] != dec) {
            abort();
        }
        n++;
    }
    if (n != zl) {
        abort();
    }
    lg_buf_deinit(&b);
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    long status = fuzz_statuses[data[0] % (sizeof(fuzz_statuses) / sizeof(fuzz_statuses[0]))];
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    check_parse(status, body, len);
    check_parse(status, NULL, 0);
    check_quote(body, len);
    check_urlencode(body, len);
    if (len >= sizeof(int)) {
        int code;
        bool ambiguous = false;
        memcpy(&code, body, sizeof(code));
        int rc = lg_chclient_curl_error(code, &ambiguous);
        if ((rc == LG_ERR_UNAVAILABLE) == ambiguous ||
            (rc != LG_ERR_UNAVAILABLE && rc != LG_ERR_TIMEOUT && rc != LG_ERR_IO)) {
            abort();
        }
    }
    return 0;
}

#ifndef LG_FUZZ_LIBFUZZER
static void fuzz_seed_str(lg_fuzz_emit_fn emit, void *ud, char status_sel, const char *s)
{
    uint8_t buf[1024];
    size_t n = strlen(s);
    buf[0] = (uint8_t)status_sel;
    memcpy(buf + 1, s, n);
    emit(buf, n + 1, ud);
}

static void fuzz_seeds(lg_fuzz_emit_fn emit, void *ud)
{
    fuzz_seed_str(emit, ud, 0, "");
    fuzz_seed_str(emit, ud, 0, "1\n2\n");
    fuzz_seed_str(emit, ud, 0,
                  "{\"a\":1}\nCode: 27, e.displayText() = DB::Exception: Cannot parse input: "
                  "expected { before: x (at row 3)\n, e.what() = DB::Exception\n");
    fuzz_seed_str(emit, ud, 1,
                  "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_"
                  "EXCEEDED) (version 23.8.1.1)\n");
    fuzz_seed_str(emit, ud, 4,
                  "Code: 60. DB::Exception: Table default.llm_ingest doesn't exist. "
                  "(UNKNOWN_TABLE)\n");
    fuzz_seed_str(emit, ud, 5, "Code: 117, e.displayText() = DB::Exception: bad\r\tx");
    fuzz_seed_str(emit, ud, 7, "Service Unavailable\r\n");
    fuzz_seed_str(emit, ud, 2, "o'brien\\' OR 1=1 --\x01\x7f\xc3\xa9 a%20b~");
}
#endif
