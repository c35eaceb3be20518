/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_chat_sse.h"

#include <stdbool.h>
#include <string.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_mem.h"

struct lg_chat_sse {
    struct lg_buf line;  /* bytes of the current, unterminated line */
    struct lg_buf data;  /* data lines of the current event, each followed by LF */
    struct lg_buf event; /* "event:" field of the current event */
    bool skip_lf;        /* the previous byte was CR: a following LF ends nothing */
    bool broken;         /* a cap was hit; further feeding fails */
    uint64_t events;     /* events dispatched */
};

int lg_chat_sse_new(lg_chat_sse **out, size_t max_line_bytes, size_t max_event_bytes)
{
    lg_chat_sse *p = lg_calloc(1, sizeof(*p));
    if (p == NULL) {
        return LG_ERR_NOMEM;
    }
    lg_buf_init(&p->line, max_line_bytes);
    /* +1 per event for the LF joined after the last data line, dropped at dispatch. */
    lg_buf_init(&p->data, max_event_bytes + 1);
    lg_buf_init(&p->event, max_line_bytes);
    *out = p;
    return LG_OK;
}

void lg_chat_sse_free(lg_chat_sse *p)
{
    if (p == NULL) {
        return;
    }
    lg_buf_deinit(&p->line);
    lg_buf_deinit(&p->data);
    lg_buf_deinit(&p->event);
    lg_free(p);
}

uint64_t lg_chat_sse_get_event_count(const lg_chat_sse *p)
{
    return p->events;
}

static int sse_dispatch(lg_chat_sse *p, lg_chat_sse_event_cb cb, void *user_data)
{
    int rc = LG_OK;
    if (p->data.len > 0) {
        /* The spec drops the final LF joined after the last data line. */
        struct lg_slice data = {p->data.data, p->data.len - 1};
        p->events++;
        rc = cb(lg_buf_slice(&p->event), data, user_data);
    }
    lg_buf_reset(&p->data);
    lg_buf_reset(&p->event);
    return rc;
}

/* Handles one complete line (without its terminator). */
static int sse_line(lg_chat_sse *p, const uint8_t *s, size_t n, lg_chat_sse_event_cb cb,
                    void *user_data)
{
    if (n == 0) {
        return sse_dispatch(p, cb, user_data);
    }
    if (s[0] == ':') {
        return LG_OK; /* comment, e.g. ": OPENROUTER PROCESSING" keep-alives */
    }
    const uint8_t *colon = memchr(s, ':', n);
    size_t name_len = colon != NULL ? (size_t)(colon - s) : n;
    const uint8_t *val = colon != NULL ? colon + 1 : s + n;
    size_t val_len = n - (size_t)(val - s);
    if (val_len > 0 && val[0] == ' ') {
        val++;
        val_len--;
    }
    if (name_len == 4 && memcmp(s, "data", 4) == 0) {
        int rc = lg_buf_append(&p->data, val, val_len);
        if (rc == LG_OK) {
            rc = lg_buf_append_byte(&p->data, '\n');
        }
        return rc;
    }
    if (name_len == 5 && memcmp(s, "event", 5) == 0) {
        lg_buf_reset(&p->event);
        return lg_buf_append(&p->event, val, val_len);
    }
    return LG_OK; /* id, retry and unknown fields do not matter for an upstream body */
}

/* Ends the current line: from the buffered part (if any) plus |s|/|n| of this read. */
static int sse_end_line(lg_chat_sse *p, const uint8_t *s, size_t n, lg_chat_sse_event_cb cb,
                        void *user_data)
{
    if (p->line.len == 0) {
        return sse_line(p, s, n, cb, user_data);
    }
    int rc = lg_buf_append(&p->line, s, n);
    if (rc != LG_OK) {
        return rc;
    }
    /* sse_line never touches p->line, so the joined line can be parsed in place. */
    rc = sse_line(p, p->line.data, p->line.len, cb, user_data);
    lg_buf_reset(&p->line);
    return rc;
}

int lg_chat_sse_feed(lg_chat_sse *p, const uint8_t *data, size_t len, lg_chat_sse_event_cb cb,
                     void *user_data)
{
    if (p->broken) {
        return LG_ERR_TOO_LARGE;
    }
    size_t i = 0;
    while (i < len) {
        if (p->skip_lf) {
            p->skip_lf = false;
            if (data[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t start = i;
        while (i < len && data[i] != '\n' && data[i] != '\r') {
            i++;
        }
        int rc;
        if (i == len) {
            rc = lg_buf_append(&p->line, data + start, len - start);
        } else {
            p->skip_lf = data[i] == '\r';
            rc = sse_end_line(p, data + start, i - start, cb, user_data);
            i++;
        }
        if (rc != LG_OK) {
            if (rc == LG_ERR_TOO_LARGE || rc == LG_ERR_NOMEM) {
                p->broken = true;
            }
            return rc;
        }
    }
    return LG_OK;
}
