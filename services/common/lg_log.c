/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lg_buf.h"
#include "lg_limits.h"

/* Set once at startup (lg_log_init) and read-only afterwards. */
static enum lg_log_level lg_log_level_min = LG_LOG_INFO;
static int lg_log_fd = STDERR_FILENO;

void lg_log_init(enum lg_log_level level, int fd)
{
    lg_log_level_min = level;
    if (fd >= 0) {
        lg_log_fd = fd;
    }
}

enum lg_log_level lg_log_get_level(void)
{
    return lg_log_level_min;
}

int lg_log_parse_level(const char *s, enum lg_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i <= LG_LOG_OFF; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum lg_log_level)i;
            return 0;
        }
    }
    return -1;
}

static void log_field(struct lg_buf *b, const char *key, const char *val)
{
    lg_buf_appendf(b, ",\"%s\":\"", key);
    lg_buf_append_json_escaped(b, (const uint8_t *)val, strlen(val));
    lg_buf_append_byte(b, '"');
}

void lg_log_write(enum lg_log_level level, const char *module, const struct lg_log_ctx *ctx,
                  const char *event, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    char msg[LG_LOG_MAX_LINE_BYTES];
    char ts[40];
    struct timespec now;
    struct tm tm;
    struct lg_buf b;
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        msg[0] = 0;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

    /* Escaping can at most sextuple the message; the cap keeps one line bounded. */
    lg_buf_init(&b, LG_LOG_MAX_LINE_BYTES * 8);
    lg_buf_appendf(&b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\"", ts, now.tv_nsec / 1000000L,
                   names[level <= LG_LOG_OFF ? level : LG_LOG_ERROR]);
    log_field(&b, "module", module);
    log_field(&b, "event", event);
    if (ctx) {
        if (ctx->conn) {
            lg_buf_appendf(&b, ",\"conn\":%llu", (unsigned long long)ctx->conn);
        }
        if (ctx->stream) {
            log_field(&b, "stream", ctx->stream);
        }
        if (ctx->request) {
            log_field(&b, "request", ctx->request);
        }
        if (ctx->user) {
            log_field(&b, "user", ctx->user);
        }
    }
    if (msg[0]) {
        log_field(&b, "msg", msg);
    }
    if (lg_buf_append_str(&b, "}\n") == 0) {
        /* One write per line; a short write to stderr is not worth a retry loop. */
        ssize_t w = write(lg_log_fd, b.data, b.len);
        (void)w;
    }
    lg_buf_deinit(&b);
}
