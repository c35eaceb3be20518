/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_chclient.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"

/* Finds "Code: <digits>" at the start of a line, followed by the 18.16 (", e.displayText()")
 * or current (". DB::Exception") exception marker. Returns its offset or -1. Data rows in
 * ClickHouse text formats escape newlines, so a line starting with this cannot be data. */
static ptrdiff_t find_exception(const uint8_t *p, size_t len)
{
    static const char code[] = "Code: ";
    ptrdiff_t found = -1;
    for (size_t i = 0; i + sizeof(code) - 1 < len; i++) {
        if ((i != 0 && p[i - 1] != '\n') || memcmp(p + i, code, sizeof(code) - 1) != 0) {
            continue;
        }
        size_t k = i + sizeof(code) - 1;
        size_t digits = 0;
        while (k < len && p[k] >= '0' && p[k] <= '9' && digits < 6) {
            k++;
            digits++;
        }
        if (digits == 0) {
            continue;
        }
        size_t rest = len - k;
        if ((rest >= 17 && memcmp(p + k, ", e.displayText()", 17) == 0) ||
            (rest >= 15 && memcmp(p + k, ". DB::Exception", 15) == 0)) {
            found = (ptrdiff_t)i;
        }
    }
    return found;
}

static long parse_long(const uint8_t *p, size_t len, size_t *used)
{
    long v = 0;
    size_t i = 0;
    while (i < len && i < 12 && p[i] >= '0' && p[i] <= '9') {
        v = v * 10 + (p[i] - '0');
        i++;
    }
    *used = i;
    return v;
}

int lg_chclient_parse_response(long http_status, const uint8_t *body, size_t len,
                               struct lg_chclient_result *out)
{
    memset(out, 0, sizeof(*out));
    out->http_status = http_status;
    ptrdiff_t at = body != NULL ? find_exception(body, len) : -1;
    if (at < 0) {
        if (http_status == 200) {
            return LG_OK;
        }
        /* Not 200 and no recognisable exception: keep the first line as the message. */
        size_t n = 0;
        while (body != NULL && n < len && n < sizeof(out->message) - 1 && body[n] != '\n') {
            n++;
        }
        if (n > 0) {
            memcpy(out->message, body, n);
        }
        return LG_ERR_UPSTREAM;
    }
    const uint8_t *p = body + at + 6;
    size_t rest = len - (size_t)at - 6, used;
    out->ch_code = (int)parse_long(p, rest, &used);
    size_t n = 0;
    const uint8_t *msg = body + at;
    size_t mlen = len - (size_t)at;
    while (n < mlen && n < sizeof(out->message) - 1 && msg[n] != '\n') {
        out->message[n] = msg[n] >= 0x20 ? (char)msg[n] : ' ';
        n++;
    }
    static const char atrow[] = "(at row ";
    for (size_t i = 0; i + sizeof(atrow) - 1 < mlen; i++) {
        if (memcmp(msg + i, atrow, sizeof(atrow) - 1) == 0) {
            size_t off = i + sizeof(atrow) - 1;
            out->row = parse_long(msg + off, mlen - off, &used);
            break;
        }
    }
    return LG_ERR_UPSTREAM;
}

enum lg_chclient_verdict lg_chclient_classify(const struct lg_chclient_result *r)
{
    /* An exception line with "Code: 0" is still an exception (message set): not OK. */
    if (r->http_status == 200 && r->ch_code == 0 && r->message[0] == '\0') {
        return LG_CHCLIENT_OK;
    }
    /* Codes from ClickHouse's ErrorCodes.cpp: CANNOT_PARSE_TEXT 6, CANNOT_PARSE_QUOTED_STRING
     * 26, CANNOT_PARSE_INPUT_ASSERTION_FAILED 27, CANNOT_PARSE_DATE 38, CANNOT_PARSE_DATETIME
     * 41, TYPE_MISMATCH 53, ARGUMENT_OUT_OF_BOUND 69, CANNOT_CONVERT_TYPE 70,
     * CANNOT_PARSE_NUMBER 72, INCORRECT_DATA 117, TOO_LARGE_STRING_SIZE 131. */
    static const int data_codes[] = {6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131};
    for (size_t i = 0; i < sizeof(data_codes) / sizeof(data_codes[0]); i++) {
        if (r->ch_code == data_codes[i]) {
            return r->row > 0 ? LG_CHCLIENT_BAD_ROW : LG_CHCLIENT_BAD_DATA;
        }
    }
    return LG_CHCLIENT_RETRY;
}

int lg_chclient_curl_error(int curl_code, bool *ambiguous)
{
    switch ((CURLcode)curl_code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    /* TLS handshake failures (an untrusted or wrong certificate, no common cipher, a bad CA
     * file): the handshake comes before any byte of the request, so nothing ran. */
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        *ambiguous = false;
        return LG_ERR_UNAVAILABLE;
    case CURLE_OPERATION_TIMEDOUT:
        *ambiguous = true;
        return LG_ERR_TIMEOUT;
    default:
        /* Send/receive errors, empty replies, resets, TLS record errors after the
         * handshake: the request may have been executed. */
        *ambiguous = true;
        return LG_ERR_IO;
    }
}

/* |host| as curl's URL parser gives it (IPv6 in brackets, no zone handling needed: a zone
 * id makes it link-local, not loopback). */
static bool host_is_loopback(const char *host)
{
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0) {
        return true;
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127u;
    }
    size_t n = strlen(host);
    if (n < 3 || host[0] != '[' || host[n - 1] != ']' || n - 2 >= INET6_ADDRSTRLEN) {
        return false;
    }
    char v6[INET6_ADDRSTRLEN];
    memcpy(v6, host + 1, n - 2);
    v6[n - 2] = 0;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, v6, &a6) != 1) {
        return false;
    }
    static const uint8_t lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a6.s6_addr, lo, 16) == 0 ||
           (memcmp(a6.s6_addr, mapped, 12) == 0 && a6.s6_addr[12] == 127u);
}

bool lg_chclient_url_is_loopback(const char *url)
{
    if (url == NULL) {
        return false;
    }
    CURLU *u = curl_url();
    if (u == NULL) {
        return false;
    }
    char *host = NULL;
    bool lo = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host_is_loopback(host);
    curl_free(host);
    curl_url_cleanup(u);
    return lo;
}

int lg_chclient_urlencode(struct lg_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != 0; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
        int rc;
        if (plain) {
            rc = lg_buf_append_byte(out, c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = lg_buf_append(out, e, sizeof(e));
        }
        if (rc != LG_OK) {
            return rc;
        }
    }
    return LG_OK;
}

int lg_chclient_quote(struct lg_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    int rc = lg_buf_append_byte(out, '\'');
    for (size_t i = 0; i < len && rc == LG_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\'' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rc = lg_buf_append(out, e, sizeof(e));
        } else if (c < 0x20 || c == 0x7f) {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            rc = lg_buf_append(out, e, sizeof(e));
        } else {
            rc = lg_buf_append_byte(out, c);
        }
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_byte(out, '\'');
    }
    return rc;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct lg_buf *resp = ud;
    size_t n = size * nmemb;
    /* Past the cap the transfer is aborted (CURLE_WRITE_ERROR -> LG_ERR_TOO_LARGE): a
     * truncated result must never pass for a whole one. */
    return lg_buf_append(resp, ptr, n) == LG_OK ? n : 0;
}

/* CURLOPT_READFUNCTION for lg_chclient_setup_reader. */
static size_t read_cb(char *dst, size_t size, size_t nitems, void *ud)
{
    struct lg_chclient_reader *r = ud;
    size_t cap = size * nitems;
    if (r->off >= r->len) {
        return 0;
    }
    if (cap > r->len - r->off) {
        cap = r->len - r->off;
    }
    size_t n = r->fn(r->ud, r->off, (uint8_t *)dst, cap);
    if (n == 0) {
        /* The source ended before the length announced: fail the transfer rather than
         * send a short body under a Content-Length it does not match. */
        return CURL_READFUNC_ABORT;
    }
    r->off += n;
    return n;
}

static int setup_common(CURL *e, const struct lg_chclient_opts *o, const char *params,
                        bool gzip_body, struct lg_buf *resp, struct lg_buf *url_buf,
                        struct curl_slist **headers_out);

int lg_chclient_setup(void *easy, const struct lg_chclient_opts *o, const char *params,
                      const void *body, size_t len, bool gzip_body, struct lg_buf *resp,
                      struct lg_buf *url_buf, struct curl_slist **headers_out)
{
    CURL *e = easy;
    int rc = setup_common(e, o, params, gzip_body, resp, url_buf, headers_out);
    if (rc == LG_OK) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    return rc;
}

int lg_chclient_setup_reader(void *easy, const struct lg_chclient_opts *o, const char *params,
                             struct lg_chclient_reader *rd, bool gzip_body, struct lg_buf *resp,
                             struct lg_buf *url_buf, struct curl_slist **headers_out)
{
    CURL *e = easy;
    int rc = setup_common(e, o, params, gzip_body, resp, url_buf, headers_out);
    if (rc == LG_OK) {
        rd->off = 0;
        /* No POSTFIELDS: curl reads the body through read_cb, Content-Length = len. No
         * CURLOPT_SEEKFUNCTION on purpose: a transfer that would need to rewind (and send
         * the INSERT again) fails instead (CURLE_SEND_FAIL_REWIND), and the shipper's
         * landed-check decides. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rd->len);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, rd);
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, (long)LG_CHCLIENT_UPLOAD_BUFFER_BYTES);
    }
    return rc;
}

static int setup_common(CURL *e, const struct lg_chclient_opts *o, const char *params,
                        bool gzip_body, struct lg_buf *resp, struct lg_buf *url_buf,
                        struct curl_slist **headers_out)
{
    lg_buf_reset(url_buf);
    int rc = lg_buf_append_str(url_buf, o->url);
    if (rc == LG_OK) {
        rc = lg_buf_append_str(url_buf, "/?");
    }
    if (rc == LG_OK && params != NULL) {
        rc = lg_buf_append_str(url_buf, params);
    }
    if (rc != LG_OK) {
        return rc;
    }
    struct curl_slist *h = NULL, *t;
    /* An empty Expect stops curl from waiting for 100-continue on large bodies. */
    const char *fixed[] = {"Expect:", gzip_body ? "Content-Encoding: gzip" : NULL};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (fixed[i] == NULL) {
            continue;
        }
        t = curl_slist_append(h, fixed[i]);
        if (t == NULL) {
            goto out_nomem;
        }
        h = t;
    }
    char line[LG_CHCLIENT_MAX_HEADER_BYTES];
    if (o->user != NULL && o->user[0] != 0) {
        snprintf(line, sizeof(line), "X-ClickHouse-User: %s", o->user);
        if ((t = curl_slist_append(h, line)) == NULL) {
            goto out_nomem;
        }
        h = t;
    }
    if (o->key != NULL && o->key[0] != 0) {
        snprintf(line, sizeof(line), "X-ClickHouse-Key: %s", o->key);
        if ((t = curl_slist_append(h, line)) == NULL) {
            goto out_nomem;
        }
        h = t;
    }
    curl_easy_setopt(e, CURLOPT_URL, (const char *)url_buf->data);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (o->ca_file != NULL && o->ca_file[0] != 0) {
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    }
    /* Compressed answers: ClickHouse gzips results when asked (enable_http_compression). */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    *headers_out = h;
    return LG_OK;

out_nomem:
    curl_slist_free_all(h);
    return LG_ERR_NOMEM;
}

static int perform(const struct lg_chclient_opts *o, const char *params, const void *body,
                   size_t len, bool gzip_body, struct lg_buf *resp,
                   struct lg_chclient_result *res)
{
    struct lg_chclient_result local;
    if (res == NULL) {
        res = &local;
    }
    memset(res, 0, sizeof(*res));
    CURL *e = curl_easy_init();
    if (e == NULL) {
        return LG_ERR_NOMEM;
    }
    struct lg_buf url;
    lg_buf_init(&url, LG_CHCLIENT_MAX_URL_BYTES);
    struct curl_slist *h = NULL;
    int rc = lg_chclient_setup(e, o, params, body, len, gzip_body, resp, &url, &h);
    if (rc != LG_OK) {
        goto out_cleanup;
    }
    CURLcode cc = curl_easy_perform(e);
    if (cc == CURLE_WRITE_ERROR) {
        rc = LG_ERR_TOO_LARGE;
        snprintf(res->message, sizeof(res->message), "response larger than %zu bytes",
                 resp->max);
        goto out_cleanup;
    }
    if (cc != CURLE_OK) {
        bool ambiguous;
        rc = lg_chclient_curl_error((int)cc, &ambiguous);
        snprintf(res->message, sizeof(res->message), "curl: %s", curl_easy_strerror(cc));
        goto out_cleanup;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    rc = lg_chclient_parse_response(status, resp->data, resp->len, res);
out_cleanup:
    curl_slist_free_all(h);
    lg_buf_deinit(&url);
    curl_easy_cleanup(e);
    return rc;
}

int lg_chclient_query(const struct lg_chclient_opts *o, const char *sql, struct lg_buf *resp,
                      struct lg_chclient_result *res)
{
    lg_buf_reset(resp);
    return perform(o, NULL, sql, strlen(sql), false, resp, res);
}

int lg_chclient_insert(const struct lg_chclient_opts *o, const char *insert_sql,
                       const void *data, size_t len, bool gzip_body,
                       struct lg_chclient_result *res)
{
    struct lg_buf params, resp;
    lg_buf_init(&params, LG_CHCLIENT_MAX_URL_BYTES);
    lg_buf_init(&resp, LG_CHCLIENT_MAX_ERROR_BYTES);
    int rc = lg_buf_append_str(&params, "query=");
    if (rc == LG_OK) {
        rc = lg_chclient_urlencode(&params, insert_sql);
    }
    if (rc == LG_OK) {
        rc = perform(o, (const char *)params.data, data, len, gzip_body, &resp, res);
    }
    lg_buf_deinit(&params);
    lg_buf_deinit(&resp);
    return rc;
}
