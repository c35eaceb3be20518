/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_sse_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

#define KEY_PREFIX    "sha256:"
#define TOKEN_CONTEXT "llmgate-sse-token-v1"
/* Decimal digits of an expiry: 18 cannot overflow int64 while parsing. */
#define TOKEN_MAX_EXPIRY_DIGITS 18

struct key_entry {
    uint8_t digest[SHA256_DIGEST_LENGTH]; /* SHA-256 of the API key */
    char *user;                           /* NUL-terminated, owned by the entry */
};

struct lg_sse_keys {
    struct key_entry *e; /* sorted by digest */
    size_t n;
};

static const char hexd[] = "0123456789abcdef";

static int hex_nibble(char c)
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

/* Decodes exactly |n| bytes from 2n hex chars at |s|. */
static int hex_decode(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n) {
        return LG_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = hex_nibble(s[2 * i]);
        int lo = hex_nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return LG_ERR_INVALID;
        }
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return LG_OK;
}

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[p[i] >> 4];
        out[2 * i + 1] = hexd[p[i] & 0x0fU];
    }
    out[2 * n] = 0;
}

static bool is_user_id(const char *u, size_t n)
{
    if (n == 0 || n > LG_SSE_MAX_USER_ID_BYTES) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = u[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '@')) {
            return false;
        }
    }
    return true;
}

static int entry_cmp(const void *a, const void *b)
{
    return memcmp(((const struct key_entry *)a)->digest, ((const struct key_entry *)b)->digest,
                  SHA256_DIGEST_LENGTH);
}

void lg_sse_keys_free(lg_sse_keys *k)
{
    if (k == NULL) {
        return;
    }
    for (size_t i = 0; i < k->n; i++) {
        lg_free(k->e[i].user);
    }
    lg_free(k->e);
    lg_free(k);
}

size_t lg_sse_keys_count(const lg_sse_keys *k)
{
    return k->n;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses one non-comment line [p, p+len) into |e|. */
static int keys_parse_line(const char *p, size_t len, struct key_entry *e)
{
    size_t plen = sizeof(KEY_PREFIX) - 1;
    size_t hexlen = 2 * SHA256_DIGEST_LENGTH;
    while (len > 0 && (is_blank(p[len - 1]) || p[len - 1] == '\r')) {
        len--;
    }
    if (len < plen + hexlen + 2 || memcmp(p, KEY_PREFIX, plen) != 0 ||
        hex_decode(p + plen, hexlen, e->digest, SHA256_DIGEST_LENGTH) != LG_OK ||
        !is_blank(p[plen + hexlen])) {
        return LG_ERR_INVALID;
    }
    size_t u = plen + hexlen;
    while (u < len && is_blank(p[u])) {
        u++;
    }
    if (!is_user_id(p + u, len - u)) {
        return LG_ERR_INVALID;
    }
    e->user = lg_strndup(p + u, len - u);
    return e->user != NULL ? LG_OK : LG_ERR_NOMEM;
}

/* Counts the lines that carry a key, to size the table once. */
static size_t keys_count_lines(const char *text, size_t len)
{
    size_t n = 0;
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t s = i;
        while (s < end && is_blank(text[s])) {
            s++;
        }
        if (s < end && text[s] != '#' && text[s] != '\r') {
            n++;
        }
        i = end + 1;
    }
    return n;
}

int lg_sse_keys_parse(lg_sse_keys **out, const char *text, size_t len, size_t *line_out)
{
    size_t cap = keys_count_lines(text, len);
    size_t line = 0;
    int rc;
    if (cap > LG_SSE_MAX_KEYS) {
        return LG_ERR_TOO_LARGE;
    }
    lg_sse_keys *k = lg_calloc(1, sizeof(*k));
    if (k == NULL) {
        return LG_ERR_NOMEM;
    }
    if (cap > 0 && (k->e = lg_calloc(cap, sizeof(*k->e))) == NULL) {
        rc = LG_ERR_NOMEM;
        goto out_free_keys;
    }
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t s = i;
        line++;
        while (s < end && is_blank(text[s])) {
            s++;
        }
        if (s < end && text[s] != '#' && text[s] != '\r') {
            rc = keys_parse_line(text + s, end - s, &k->e[k->n]);
            if (rc != LG_OK) {
                goto out_free_keys;
            }
            k->n++;
        }
        i = end + 1;
    }
    if (k->n > 1) {
        qsort(k->e, k->n, sizeof(*k->e), entry_cmp);
    }
    for (size_t j = 1; j < k->n; j++) {
        if (memcmp(k->e[j - 1].digest, k->e[j].digest, SHA256_DIGEST_LENGTH) == 0) {
            line = 0; /* duplicate key: the line is not known after sorting */
            rc = LG_ERR_INVALID;
            goto out_free_keys;
        }
    }
    *out = k;
    return LG_OK;

out_free_keys:
    if (line_out != NULL) {
        *line_out = line;
    }
    lg_sse_keys_free(k);
    return rc;
}

int lg_sse_keys_load(lg_sse_keys **out, const char *path, size_t *line_out)
{
    struct stat st;
    int rc;
    if (line_out != NULL) {
        *line_out = 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return LG_ERR_IO;
    }
    if (fstat(fd, &st) != 0) {
        rc = LG_ERR_IO;
        goto out_close;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > LG_SSE_MAX_KEYS_FILE_BYTES) {
        rc = LG_ERR_TOO_LARGE;
        goto out_close;
    }
    size_t size = (size_t)st.st_size;
    char *text = lg_malloc(size + 1);
    if (text == NULL) {
        rc = LG_ERR_NOMEM;
        goto out_close;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, text + got, size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    rc = got == size ? lg_sse_keys_parse(out, text, size, line_out) : LG_ERR_IO;
    lg_free(text);
out_close:
    close(fd);
    return rc;
}

int lg_sse_keys_lookup(const lg_sse_keys *k, const char *key, size_t len, const char **user_out)
{
    struct key_entry probe;
    if (k == NULL || len == 0) {
        return LG_ERR_UNAUTHENTICATED;
    }
    SHA256((const unsigned char *)key, len, probe.digest);
    /* The search runs over SHA-256 digests, not over keys: its timing can only tell how many
     * leading digest bytes matched, which gives no handle on any key (finding a key for a
     * digest prefix is a preimage search). The final equality is constant time anyway. */
    size_t lo = 0;
    size_t hi = k->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(k->e[mid].digest, probe.digest, SHA256_DIGEST_LENGTH);
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < k->n && CRYPTO_memcmp(k->e[lo].digest, probe.digest, SHA256_DIGEST_LENGTH) == 0) {
        *user_out = k->e[lo].user;
        return LG_OK;
    }
    return LG_ERR_UNAUTHENTICATED;
}

int lg_sse_auth_bearer(const char *hdr, const char **key_out, size_t *len_out)
{
    static const char scheme[] = "bearer";
    size_t n = sizeof(scheme) - 1;
    if (hdr == NULL || strlen(hdr) <= n + 1 || strncasecmp(hdr, scheme, n) != 0 ||
        !is_blank(hdr[n])) {
        return LG_ERR_UNAUTHENTICATED;
    }
    const char *p = hdr + n;
    while (is_blank(*p)) {
        p++;
    }
    size_t len = strlen(p);
    while (len > 0 && is_blank(p[len - 1])) {
        len--;
    }
    if (len == 0) {
        return LG_ERR_UNAUTHENTICATED;
    }
    *key_out = p;
    *len_out = len;
    return LG_OK;
}

int lg_sse_auth_hash_key(const char *key, size_t len, char *out, size_t outlen)
{
    uint8_t d[SHA256_DIGEST_LENGTH];
    size_t plen = sizeof(KEY_PREFIX) - 1;
    if (outlen < plen + 2 * SHA256_DIGEST_LENGTH + 1) {
        return LG_ERR_TOO_LARGE;
    }
    SHA256((const unsigned char *)key, len, d);
    memcpy(out, KEY_PREFIX, plen);
    hex_encode(d, sizeof(d), out + plen);
    return LG_OK;
}

/* HMAC-SHA256 over the token context, user, stream and expiry. */
static int token_mac(const uint8_t secret[LG_SSE_AUTH_SECRET_BYTES], const char *user,
                     const char *stream_id, int64_t expiry, uint8_t mac[SHA256_DIGEST_LENGTH])
{
    char msg[sizeof(TOKEN_CONTEXT) + LG_SSE_MAX_USER_ID_BYTES + LG_SSE_MAX_STREAM_ID_BYTES + 32];
    int n = snprintf(msg, sizeof(msg), TOKEN_CONTEXT "\n%s\n%s\n%" PRId64, user, stream_id,
                     expiry);
    if (n < 0 || (size_t)n >= sizeof(msg)) {
        return LG_ERR_TOO_LARGE;
    }
    unsigned int maclen = 0;
    if (HMAC(EVP_sha256(), secret, LG_SSE_AUTH_SECRET_BYTES, (const unsigned char *)msg,
             (size_t)n, mac, &maclen) == NULL ||
        maclen != SHA256_DIGEST_LENGTH) {
        return LG_ERR_INTERNAL;
    }
    return LG_OK;
}

int lg_sse_token_make(const uint8_t secret[LG_SSE_AUTH_SECRET_BYTES], const char *user,
                      const char *stream_id, int64_t expiry, char *out, size_t outlen)
{
    uint8_t mac[SHA256_DIGEST_LENGTH];
    char uhex[2 * LG_SSE_MAX_USER_ID_BYTES + 1];
    char shex[2 * LG_SSE_MAX_STREAM_ID_BYTES + 1];
    char mhex[2 * SHA256_DIGEST_LENGTH + 1];
    size_t ulen = strlen(user);
    size_t slen = strlen(stream_id);
    if (!is_user_id(user, ulen) || slen == 0 || slen > LG_SSE_MAX_STREAM_ID_BYTES ||
        expiry < 0) {
        return LG_ERR_INVALID;
    }
    int rc = token_mac(secret, user, stream_id, expiry, mac);
    if (rc != LG_OK) {
        return rc;
    }
    hex_encode((const uint8_t *)user, ulen, uhex);
    hex_encode((const uint8_t *)stream_id, slen, shex);
    hex_encode(mac, sizeof(mac), mhex);
    int n = snprintf(out, outlen, "%s.%s.%" PRId64 ".%s", uhex, shex, expiry, mhex);
    if (n < 0 || (size_t)n >= outlen) {
        return LG_ERR_TOO_LARGE;
    }
    return LG_OK;
}

/* Splits |token| at dots into exactly four parts. */
static int token_split(const char *token, const char *part[4], size_t plen[4])
{
    const char *p = token;
    for (int i = 0; i < 4; i++) {
        const char *dot = strchr(p, '.');
        if ((dot == NULL) != (i == 3)) {
            return LG_ERR_INVALID;
        }
        part[i] = p;
        plen[i] = dot != NULL ? (size_t)(dot - p) : strlen(p);
        p = dot != NULL ? dot + 1 : p;
    }
    return LG_OK;
}

int lg_sse_token_verify(const uint8_t secret[LG_SSE_AUTH_SECRET_BYTES], const char *token,
                        const char *stream_id, int64_t now, char *user_out, size_t userlen)
{
    const char *part[4];
    size_t plen[4];
    char user[LG_SSE_MAX_USER_ID_BYTES + 1];
    char sid[LG_SSE_MAX_STREAM_ID_BYTES + 1];
    uint8_t mac[SHA256_DIGEST_LENGTH];
    uint8_t want[SHA256_DIGEST_LENGTH];
    if (token == NULL || strlen(token) > LG_SSE_MAX_TOKEN_BYTES ||
        token_split(token, part, plen) != LG_OK || plen[0] % 2 != 0 || plen[1] % 2 != 0 ||
        plen[0] / 2 > LG_SSE_MAX_USER_ID_BYTES || plen[1] / 2 > LG_SSE_MAX_STREAM_ID_BYTES ||
        plen[2] == 0 || plen[2] > TOKEN_MAX_EXPIRY_DIGITS) {
        return LG_ERR_INVALID;
    }
    if (hex_decode(part[0], plen[0], (uint8_t *)user, plen[0] / 2) != LG_OK ||
        hex_decode(part[1], plen[1], (uint8_t *)sid, plen[1] / 2) != LG_OK ||
        hex_decode(part[3], plen[3], mac, sizeof(mac)) != LG_OK) {
        return LG_ERR_INVALID;
    }
    user[plen[0] / 2] = 0;
    sid[plen[1] / 2] = 0;
    int64_t expiry = 0;
    for (size_t i = 0; i < plen[2]; i++) {
        char c = part[2][i];
        if (c < '0' || c > '9') {
            return LG_ERR_INVALID;
        }
        expiry = expiry * 10 + (c - '0');
    }
    if (!is_user_id(user, strlen(user)) || strlen(user) != plen[0] / 2 ||
        strlen(sid) != plen[1] / 2) {
        return LG_ERR_INVALID;
    }
    int rc = token_mac(secret, user, sid, expiry, want);
    if (rc != LG_OK) {
        return rc;
    }
    if (CRYPTO_memcmp(mac, want, sizeof(mac)) != 0) {
        return LG_ERR_UNAUTHENTICATED;
    }
    if (strcmp(sid, stream_id) != 0) {
        return LG_ERR_PERMISSION;
    }
    if (now > expiry) {
        return LG_ERR_EXPIRED;
    }
    size_t ulen = strlen(user);
    if (ulen + 1 > userlen) {
        return LG_ERR_TOO_LARGE;
    }
    memcpy(user_out, user, ulen + 1);
    return LG_OK;
}

int lg_sse_auth_secret(const char *text, uint8_t out[LG_SSE_AUTH_SECRET_BYTES])
{
    if (text == NULL || text[0] == 0) {
        size_t got = 0;
        while (got < LG_SSE_AUTH_SECRET_BYTES) {
            ssize_t r = getrandom(out + got, LG_SSE_AUTH_SECRET_BYTES - got, 0);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                return LG_ERR_INTERNAL;
            }
            got += (size_t)r;
        }
        return LG_OK;
    }
    if (hex_decode(text, strlen(text), out, LG_SSE_AUTH_SECRET_BYTES) == LG_OK) {
        return LG_OK;
    }
    _Static_assert(LG_SSE_AUTH_SECRET_BYTES == SHA256_DIGEST_LENGTH, "secret is one digest");
    SHA256((const unsigned char *)text, strlen(text), out);
    return LG_OK;
}
