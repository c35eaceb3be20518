/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sse_auth (owner: fuzz): properties of the SSE adapter's identity code
 * (adapters/sse/lg_sse_auth.h). fuzz_sse_codec feeds the token verifier and the keys-file
 * parser arbitrary bytes; this target checks what must hold for *valid* material made from
 * the input:
 *  - Authorization: the key lg_sse_auth_bearer returns lies inside the header, is non-empty
 *    and has no blank at either end;
 *  - API keys: lg_sse_auth_hash_key gives "sha256:" + 64 lowercase hex digits; a keys file
 *    holding that hash maps the key to its user, and a different key to nobody;
 *  - tokens: a token made for (user, stream, expiry) verifies for that stream before expiry
 *    and returns the user; it is refused for another stream, after expiry, and with any one
 *    character replaced by a non-hex one or with its MAC cut short;
 *  - token secrets: the same text always derives the same secret.
 * Input: three NUL-separated parts (key or header, user, stream id); the first 8 bytes of the
 * last part (if any) also pick the expiry.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_err.h"
#include "lg_sse_auth.h"

#define FUZZ_PART_MAX  512
#define FUZZ_TOKEN_MAX 4096
#define FUZZ_HASH_LEN  71 /* "sha256:" + 64 hex */

#define LG_FUZZ_SMOKE_ITERATIONS 20000
#include "lg_fuzz_smoke.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void check_bearer(const char *hdr)
{
    const char *key = NULL;
    size_t len = 0;
    if (lg_sse_auth_bearer(hdr, &key, &len) != LG_OK) {
        return;
    }
    size_t n = strlen(hdr);
    if (key < hdr || len == 0 || (size_t)(key - hdr) + len > n || is_blank(key[0]) ||
        is_blank(key[len - 1])) {
        abort();
    }
}

/* The user id alphabet of lg_sse_auth (keys files and tokens). */
static bool plain_user(const char *u)
{
    size_t n = strlen(u);
    return n > 0 && strspn(u, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.@") == n;
}

static void check_keys(const char *key, const char *user)
{
    char hash[96];
    if (lg_sse_auth_hash_key(key, strlen(key), hash, sizeof(hash)) != LG_OK ||
        strlen(hash) != FUZZ_HASH_LEN || memcmp(hash, "sha256:", 7) != 0 ||
        strspn(hash + 7, "0123456789abcdef") != FUZZ_HASH_LEN - 7) {
        abort();
    }
    if (key[0] == 0) {
        return; /* an empty presented key is refused before any compare */
    }
    char text[FUZZ_PART_MAX + 128];
    int n = snprintf(text, sizeof(text), "# fuzz\n\n%s %s\n", hash, user);
    if (n < 0 || (size_t)n >= sizeof(text)) {
        return;
    }
    lg_sse_keys *k = NULL;
    if (lg_sse_keys_parse(&k, text, (size_t)n, NULL) != LG_OK) {
        return; /* a user id the file format refuses (too long, bad bytes) */
    }
    if (!plain_user(user)) {
        lg_sse_keys_free(k); /* accepted in some normalised form: only plain ids compare */
        return;
    }
    const char *who = NULL;
    if (lg_sse_keys_count(k) != 1 || lg_sse_keys_lookup(k, key, strlen(key), &who) != LG_OK ||
        strcmp(who, user) != 0) {
        abort();
    }
    char other[FUZZ_PART_MAX + 2];
    n = snprintf(other, sizeof(other), "%sx", key);
    if (n > 0 && lg_sse_keys_lookup(k, other, (size_t)n, &who) == LG_OK) {
        abort();
    }
    lg_sse_keys_free(k);
}

static void check_token(const char *user, const char *stream, int64_t expiry)
{
    static const uint8_t secret[LG_SSE_AUTH_SECRET_BYTES] = {0x5a, 1, 2, 3};
    char tok[FUZZ_TOKEN_MAX];
    char who[FUZZ_PART_MAX + 1];
    if (lg_sse_token_make(secret, user, stream, expiry, tok, sizeof(tok)) != LG_OK) {
        return;
    }
    if (lg_sse_token_verify(secret, tok, stream, expiry - 1, who, sizeof(who)) != LG_OK ||
        strcmp(who, user) != 0) {
        abort();
    }
    if (lg_sse_token_verify(secret, tok, stream, expiry + 1, who, sizeof(who)) == LG_OK) {
        abort();
    }
    char other[FUZZ_PART_MAX + 2];
    snprintf(other, sizeof(other), "%s!", stream);
    if (lg_sse_token_verify(secret, tok, other, expiry - 1, who, sizeof(who)) == LG_OK) {
        abort();
    }
    size_t len = strlen(tok);
    for (size_t i = 0; i < len; i += 1 + len / 16) {
        char saved = tok[i];
        tok[i] = 'z';
        if (lg_sse_token_verify(secret, tok, stream, expiry - 1, who, sizeof(who)) == LG_OK) {
            abort();
        }
        tok[i] = saved;
    }
    tok[len - 1] = 0; /* MAC one hex digit short */
    if (lg_sse_token_verify(secret, tok, stream, expiry - 1, who, sizeof(who)) == LG_OK) {
        abort();
    }
}

static void check_secret(const char *text)
{
    uint8_t a[LG_SSE_AUTH_SECRET_BYTES], b[LG_SSE_AUTH_SECRET_BYTES];
    if (text[0] == 0) {
        return; /* empty means random by contract */
    }
    int ra = lg_sse_auth_secret(text, a);
    int rb = lg_sse_auth_secret(text, b);
    if (ra != rb || (ra == LG_OK && memcmp(a, b, sizeof(a)) != 0)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char parts[3][FUZZ_PART_MAX + 1];
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        size_t n = 0;
        while (off < size && data[off] != 0 && n < FUZZ_PART_MAX) {
            parts[i][n++] = (char)data[off++];
        }
        parts[i][n] = 0;
        while (off < size && data[off] != 0) {
            off++; /* the rest of an over-long part */
        }
        off++;
    }
    int64_t expiry = 1;
    for (size_t i = 0; i < 8 && parts[2][i] != 0; i++) {
        expiry = expiry * 31 + (unsigned char)parts[2][i];
    }
    expiry &= INT64_C(0x3fffffffffff); /* positive, far from overflow */
    expiry += 2;
    check_bearer(parts[0]);
    check_keys(parts[0], parts[1]);
    check_token(parts[1], parts[2], expiry);
    check_secret(parts[0]);
    return 0;
}

#ifndef LG_FUZZ_LIBFUZZER
static void fuzz_seed(lg_fuzz_emit_fn emit, void *ud, const char *a, const char *b, const char *c)
{
    uint8_t buf[3 * FUZZ_PART_MAX + 3];
    size_t n = 0;
    const char *parts[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(parts[i]);
        memcpy(buf + n, parts[i], l);
        n += l;
        if (i < 2) {
            buf[n++] = 0;
        }
    }
    emit(buf, n, ud);
}

static void fuzz_seeds(lg_fuzz_emit_fn emit, void *ud)
{
    fuzz_seed(emit, ud, "Bearer sk-live-0123456789", "alice", "0123456789abcdef0123456789abcdef");
    fuzz_seed(emit, ud, "bearer \t key with spaces \t", "bob@example.com", "n3_abcdef");
    fuzz_seed(emit, ud, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
              "u\xc3\xa9", "s");
    fuzz_seed(emit, ud, "BEARER", "", "x.y");
}
#endif
