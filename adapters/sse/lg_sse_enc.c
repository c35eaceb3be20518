/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_sse_enc.h"

#include <inttypes.h>
#include <string.h>

#include "lg_err.h"
#include "lg_limits.h"

/* SSE field names (WHATWG HTML, "Parsing an event stream"). */
#define SSE_FIELD_ID    "id: "
#define SSE_FIELD_EVENT "event: "
#define SSE_FIELD_DATA  "data: "
#define SSE_FIELD_RETRY "retry: "
/* Decimal digits of UINT64_MAX (18446744073709551615). */
#define ENC_U64_MAX_DIGITS 20
/* Longest event name we emit (ours are at most "heartbeat"). */
#define SSE_MAX_EVENT_NAME_BYTES 32
/* Longest error code in an error event. */
#define SSE_MAX_ERROR_CODE_BYTES 64
/* Decimal digits of UINT64_MAX. */
#define SSE_MAX_SEQ_DIGITS 20
/* Longest percent-decoded Last-Event-ID: stream id, dot, seq. */
#define SSE_MAX_LAST_ID_BYTES (LG_SSE_MAX_STREAM_ID_BYTES + 1 + SSE_MAX_SEQ_DIGITS)

const char *lg_sse_type_name(enum lg_sse_type t)
{
    switch (t) {
    case LG_SSE_TYPE_START:
        return "start";
    case LG_SSE_TYPE_CONTENT:
        return "content";
    case LG_SSE_TYPE_DONE:
        return "done";
    case LG_SSE_TYPE_ERROR:
        return "error";
    case LG_SSE_TYPE_HEARTBEAT:
        return "heartbeat";
    }
    return "message";
}

static bool is_id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

bool lg_sse_is_stream_id(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > LG_SSE_MAX_STREAM_ID_BYTES) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_id_char((unsigned char)id[i])) {
            return false;
        }
    }
    return true;
}

/* Length of the valid UTF-8 sequence at |s| (1..4), or 0 when it is invalid (overlong,
 * surrogate, above U+10FFFF, truncated). |s[0]| >= 0x80. */
static size_t utf8_seq_len(const uint8_t *s, size_t left)
{
    uint8_t c = s[0];
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1fU;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0fU;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07U;
    } else {
        return 0;
    }
    if (left < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0U) != 0x80U) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3fU);
    }
    if ((n == 3 && cp < 0x800U) || (n == 4 && cp < 0x10000U) || cp > 0x10ffffU ||
        (cp >= 0xd800U && cp <= 0xdfffU)) {
        return 0;
    }
    return n;
}

/* Escape for one ASCII byte, or NULL when it is copied as it is. |u| receives \u00XX. */
static const char *json_ascii_escape(uint8_t c, char u[7])
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
        u[0] = '\\';
        u[1] = 'u';
        u[2] = '0';
        u[3] = '0';
        u[4] = hex[c >> 4];
        u[5] = hex[c & 0x0fU];
        u[6] = 0;
        return u;
    }
    return NULL;
}

static int json_str_append(struct lg_buf *b, const uint8_t *s, size_t len)
{
    size_t run = 0; /* start of the pending run copied as it is */
    size_t i = 0;
    int rc;
    while (i < len) {
        const char *esc = NULL;
        size_t adv = 1;
        char u[7];
        if (s[i] < 0x80) {
            esc = json_ascii_escape(s[i], u);
        } else {
            adv = utf8_seq_len(s + i, len - i);
            if (adv == 0) {
                esc = "\\ufffd";
                adv = 1;
            } else if (adv == 3 && s[i] == 0xe2 && s[i + 1] == 0x80 &&
                       (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
                /* U+2028/U+2029 are line breaks to some JavaScript consumers. */
                esc = s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
            }
        }
        if (esc != NULL) {
            if ((rc = lg_buf_append(b, s + run, i - run)) != LG_OK) {
                return rc;
            }
            if ((rc = lg_buf_append_str(b, esc)) != LG_OK) {
                return rc;
            }
            run = i + adv;
        }
        i += adv;
    }
    return lg_buf_append(b, s + run, len - run);
}

/* Runs |rc| = expression; on failure truncates |b| back to |mark| and returns |rc|. */
#define ENC_TRY(b, mark, expr)                                                                 \
    do {                                                                                       \
        int enc_rc_ = (expr);                                                                  \
        if (enc_rc_ != LG_OK) {                                                                \
            (b)->len = (mark);                                                                 \
            if ((b)->data != NULL) {                                                           \
                (b)->data[mark] = 0;                                                           \
            }                                                                                  \
            return enc_rc_;                                                                    \
        }                                                                                      \
    } while (0)

int lg_sse_enc_json_str(struct lg_buf *b, const uint8_t *s, size_t len)
{
    size_t mark = b->len;
    ENC_TRY(b, mark, json_str_append(b, s, len));
    return LG_OK;
}

static bool is_event_name(const char *e)
{
    size_t n = strlen(e);
    if (n == 0 || n > SSE_MAX_EVENT_NAME_BYTES) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = e[i];
        if (!((c >= 'a' && c <= 'z') || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

/* Appends the decimal digits of |v|. The encoder runs once per event on the hot path, so it
 * formats without printf (which costs two vsnprintf passes through lg_buf_appendf). */
static int append_u64(struct lg_buf *b, uint64_t v)
{
    char digits[ENC_U64_MAX_DIGITS];
    size_t n = sizeof(digits);
    do {
        digits[--n] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0);
    return lg_buf_append(b, digits + n, sizeof(digits) - n);
}

static int enc_head(struct lg_buf *b, const char *stream_id, uint64_t seq, const char *event)
{
    int rc;
    if (stream_id != NULL) {
        if ((rc = lg_buf_append_str(b, SSE_FIELD_ID)) != LG_OK ||
            (rc = lg_buf_append_str(b, stream_id)) != LG_OK ||
            (rc = lg_buf_append_byte(b, '.')) != LG_OK || (rc = append_u64(b, seq)) != LG_OK ||
            (rc = lg_buf_append_byte(b, '\n')) != LG_OK) {
            return rc;
        }
    }
    if (event != NULL) {
        if ((rc = lg_buf_append_str(b, SSE_FIELD_EVENT)) != LG_OK ||
            (rc = lg_buf_append_str(b, event)) != LG_OK ||
            (rc = lg_buf_append_byte(b, '\n')) != LG_OK) {
            return rc;
        }
    }
    return LG_OK;
}

static int enc_data_lines(struct lg_buf *b, const uint8_t *data, size_t len)
{
    size_t start = 0;
    int rc;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && data[i] != '\r' && data[i] != '\n') {
            continue;
        }
        if ((rc = lg_buf_append_str(b, SSE_FIELD_DATA)) != LG_OK ||
            (rc = lg_buf_append(b, data + start, i - start)) != LG_OK ||
            (rc = lg_buf_append_byte(b, '\n')) != LG_OK) {
            return rc;
        }
        if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n') {
            i++;
        }
        start = i + 1;
    }
    return LG_OK;
}

static int check_fields(const char *stream_id, const char *event)
{
    if (stream_id != NULL && !lg_sse_is_stream_id(stream_id, strlen(stream_id))) {
        return LG_ERR_INVALID;
    }
    if (event != NULL && !is_event_name(event)) {
        return LG_ERR_INVALID;
    }
    return LG_OK;
}

int lg_sse_enc_event(struct lg_buf *b, const char *stream_id, uint64_t seq, const char *event,
                     const uint8_t *data, size_t len)
{
    size_t mark = b->len;
    int rc = check_fields(stream_id, event);
    if (rc != LG_OK) {
        return rc;
    }
    /* A NUL is not a line break for EventSource, but an id containing one is ignored and a
     * NUL in data reaches the application; we never emit one. */
    if (data != NULL && memchr(data, 0, len) != NULL) {
        return LG_ERR_INVALID;
    }
    ENC_TRY(b, mark, enc_head(b, stream_id, seq, event));
    ENC_TRY(b, mark, enc_data_lines(b, data, len));
    ENC_TRY(b, mark, lg_buf_append_byte(b, '\n'));
    return LG_OK;
}

/* Opens `{"type":"<t>","data":{` after id/event lines. */
static int enc_json_open(struct lg_buf *b, const char *stream_id, uint64_t seq,
                         enum lg_sse_type t)
{
    const char *name = lg_sse_type_name(t);
    int rc = check_fields(stream_id, name);
    if (rc != LG_OK) {
        return rc;
    }
    rc = enc_head(b, stream_id, seq, name);
    if (rc != LG_OK) {
        return rc;
    }
    if ((rc = lg_buf_append_str(b, SSE_FIELD_DATA "{\"type\":\"")) != LG_OK ||
        (rc = lg_buf_append_str(b, name)) != LG_OK) {
        return rc;
    }
    return lg_buf_append_str(b, "\",\"data\":{");
}

static int enc_json_close(struct lg_buf *b)
{
    return lg_buf_append_str(b, "}}\n\n");
}

int lg_sse_enc_start(struct lg_buf *b, const char *stream_id, uint64_t seq, const char *model)
{
    size_t mark = b->len;
    ENC_TRY(b, mark, enc_json_open(b, stream_id, seq, LG_SSE_TYPE_START));
    ENC_TRY(b, mark, lg_buf_append_str(b, "\"stream_id\":\""));
    ENC_TRY(b, mark, lg_buf_append_str(b, stream_id));
    ENC_TRY(b, mark, lg_buf_append_str(b, "\""));
    if (model != NULL) {
        ENC_TRY(b, mark, lg_buf_append_str(b, ",\"model\":\""));
        ENC_TRY(b, mark, json_str_append(b, (const uint8_t *)model, strlen(model)));
        ENC_TRY(b, mark, lg_buf_append_str(b, "\""));
    }
    ENC_TRY(b, mark, enc_json_close(b));
    return LG_OK;
}

int lg_sse_enc_content(struct lg_buf *b, const char *stream_id, uint64_t seq,
                       const uint8_t *text, size_t len)
{
    size_t mark = b->len;
    ENC_TRY(b, mark, enc_json_open(b, stream_id, seq, LG_SSE_TYPE_CONTENT));
    ENC_TRY(b, mark, lg_buf_append_str(b, "\"content\":\""));
    ENC_TRY(b, mark, json_str_append(b, text, len));
    ENC_TRY(b, mark, lg_buf_append_str(b, "\""));
    ENC_TRY(b, mark, enc_json_close(b));
    return LG_OK;
}

int lg_sse_enc_done(struct lg_buf *b, const char *stream_id, uint64_t seq,
                    const struct lg_sse_done *d)
{
    size_t mark = b->len;
    const char *fr = d->finish_reason != NULL ? d->finish_reason : "stop";
    ENC_TRY(b, mark, enc_json_open(b, stream_id, seq, LG_SSE_TYPE_DONE));
    ENC_TRY(b, mark, lg_buf_append_str(b, "\"finish_reason\":\""));
    ENC_TRY(b, mark, json_str_append(b, (const uint8_t *)fr, strlen(fr)));
    ENC_TRY(b, mark,
            lg_buf_appendf(b,
                           "\",\"usage\":{\"prompt_tokens\":%" PRIu64
                           ",\"completion_tokens\":%" PRIu64 ",\"cached_tokens\":%" PRIu64
                           ",\"total_tokens\":%" PRIu64 "},\"estimated_cost_nano_usd\":%" PRIu64
                           ",\"duration_ms\":%" PRIu64,
                           d->prompt_tokens, d->completion_tokens, d->cached_tokens,
                           d->total_tokens, d->cost_nano_usd, d->duration_ms));
    ENC_TRY(b, mark, enc_json_close(b));
    return LG_OK;
}

static bool is_error_code(const char *c)
{
    size_t n = strlen(c);
    if (n == 0 || n > SSE_MAX_ERROR_CODE_BYTES) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= '0' && c[i] <= '9') || c[i] == '_')) {
            return false;
        }
    }
    return true;
}

int lg_sse_enc_error(struct lg_buf *b, const char *stream_id, uint64_t seq, const char *code,
                     const char *message)
{
    size_t mark = b->len;
    if (!is_error_code(code)) {
        return LG_ERR_INVALID;
    }
    const char *m = message != NULL ? message : "";
    ENC_TRY(b, mark, enc_json_open(b, stream_id, seq, LG_SSE_TYPE_ERROR));
    ENC_TRY(b, mark, lg_buf_appendf(b, "\"code\":\"%s\",\"message\":\"", code));
    ENC_TRY(b, mark, json_str_append(b, (const uint8_t *)m, strlen(m)));
    ENC_TRY(b, mark, lg_buf_append_str(b, "\""));
    ENC_TRY(b, mark, enc_json_close(b));
    return LG_OK;
}

int lg_sse_enc_heartbeat(struct lg_buf *b)
{
    size_t mark = b->len;
    ENC_TRY(b, mark, enc_json_open(b, NULL, 0, LG_SSE_TYPE_HEARTBEAT));
    ENC_TRY(b, mark, enc_json_close(b));
    return LG_OK;
}

int lg_sse_enc_retry(struct lg_buf *b, uint64_t ms)
{
    return lg_buf_appendf(b, SSE_FIELD_RETRY "%" PRIu64 "\n\n", ms);
}

int lg_sse_enc_comment(struct lg_buf *b, const char *text)
{
    size_t mark = b->len;
    for (const char *p = text; *p != 0; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            return LG_ERR_INVALID;
        }
    }
    ENC_TRY(b, mark, lg_buf_appendf(b, ": %s\n\n", text));
    return LG_OK;
}

int lg_sse_parse_last_event_id(const char *value, size_t len, const char *expect_id,
                               uint64_t *seq_out)
{
    if (len == 0) {
        *seq_out = 0;
        return LG_OK;
    }
    const char *dot = NULL;
    for (size_t i = len; i > 0; i--) {
        if (value[i - 1] == '.') {
            dot = value + i - 1;
            break;
        }
    }
    if (dot == NULL) {
        return LG_ERR_INVALID;
    }
    size_t id_len = (size_t)(dot - value);
    size_t digits = len - id_len - 1;
    if (!lg_sse_is_stream_id(value, id_len) || digits == 0 || digits > SSE_MAX_SEQ_DIGITS) {
        return LG_ERR_INVALID;
    }
    uint64_t seq = 0;
    for (size_t i = 0; i < digits; i++) {
        char c = dot[1 + i];
        if (c < '0' || c > '9') {
            return LG_ERR_INVALID;
        }
        uint64_t d = (uint64_t)(c - '0');
        if (seq > (UINT64_MAX - d) / 10U) {
            return LG_ERR_INVALID;
        }
        seq = seq * 10U + d;
    }
    if (strlen(expect_id) != id_len || memcmp(expect_id, value, id_len) != 0) {
        return LG_ERR_PERMISSION;
    }
    *seq_out = seq;
    return LG_OK;
}

static int hex_val(char c)
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

/* Percent-decodes [p, p+len) into |out|; '+' is a space (form encoding). */
static int query_decode(const char *p, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '%') {
            if (i + 2 >= len) {
                return LG_ERR_INVALID;
            }
            int hi = hex_val(p[i + 1]);
            int lo = hex_val(p[i + 2]);
            if (hi < 0 || lo < 0) {
                return LG_ERR_INVALID;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == 0) {
            return LG_ERR_INVALID;
        }
        if (o + 1 >= outlen) {
            return LG_ERR_TOO_LARGE;
        }
        out[o++] = c;
    }
    out[o] = 0;
    return LG_OK;
}

int lg_sse_query_get(const char *query, const char *name, char *out, size_t outlen)
{
    if (query == NULL || outlen == 0) {
        return LG_ERR_NOT_FOUND;
    }
    size_t nlen = strlen(name);
    const char *p = query;
    while (*p != 0) {
        const char *amp = strchr(p, '&');
        size_t plen = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (plen > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            return query_decode(p + nlen + 1, plen - nlen - 1, out, outlen);
        }
        if (plen == nlen && memcmp(p, name, nlen) == 0) {
            out[0] = 0;
            return LG_OK;
        }
        if (amp == NULL) {
            break;
        }
        p = amp + 1;
    }
    return LG_ERR_NOT_FOUND;
}

int lg_sse_resume_point(const char *hdr, const char *query, const char *expect_id,
                        uint64_t *seq_out)
{
    char buf[SSE_MAX_LAST_ID_BYTES + 1];
    if (hdr != NULL) {
        return lg_sse_parse_last_event_id(hdr, strlen(hdr), expect_id, seq_out);
    }
    int rc = lg_sse_query_get(query, "lastEventId", buf, sizeof(buf));
    if (rc == LG_ERR_NOT_FOUND) {
        *seq_out = 0;
        return LG_OK;
    }
    if (rc != LG_OK) {
        return LG_ERR_INVALID;
    }
    return lg_sse_parse_last_event_id(buf, strlen(buf), expect_id, seq_out);
}
