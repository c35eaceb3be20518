/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_log: structured logs, one JSON object per line on stderr (or a chosen fd).
 *
 *   {"ts":"2026-11-26T13:52:42.123Z","level":"info","module":"grpc_server","event":"conn_open",
 *    "conn":"7","stream":"...","request":"...","user":"...","msg":"peer=127.0.0.1:5000"}
 *
 * Use the lg_log() macro: it checks the level before any formatting, so a disabled debug
 * line costs one branch. Each .c file may define LG_LOG_MODULE ("spool") before including
 * this header; the default is "llmgate". |fmt| must contain no CR/LF; the message is
 * JSON-escaped and truncated at LG_LOG_MAX_LINE_BYTES. Never log prompt or completion text,
 * Authorization headers or keys: log sizes, counts and ids.
 *
 * Configuration (level, fd) is set once at startup with lg_log_init and is then read-only;
 * writing a line is one write(2) of the whole line, so lines from threads never interleave.
 */
#ifndef LG_LOG_H
#define LG_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum lg_log_level {
    LG_LOG_DEBUG = 0,
    LG_LOG_INFO = 1,
    LG_LOG_WARN = 2,
    LG_LOG_ERROR = 3,
    LG_LOG_OFF = 4,
};

/* Ids attached to a line; any field may be NULL/0 (omitted). Borrowed for the call. */
struct lg_log_ctx {
    uint64_t conn;       /* connection number, 0 = none */
    const char *stream;  /* stream id */
    const char *request; /* request id */
    const char *user;    /* user id */
};

/* Sets the minimum level and the output fd (-1 keeps stderr). Startup only. */
void lg_log_init(enum lg_log_level level, int fd);
/* Parses "debug"/"info"/"warn"/"error"/"off"; returns 0 and sets |out|, or -1. */
int lg_log_parse_level(const char *s, enum lg_log_level *out);
/* The current minimum level. */
enum lg_log_level lg_log_get_level(void);

/* Writes one line. Prefer the lg_log() macro, which skips this below the level. */
void lg_log_write(enum lg_log_level level, const char *module, const struct lg_log_ctx *ctx,
                  const char *event, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#ifndef LG_LOG_MODULE
#    define LG_LOG_MODULE "llmgate"
#endif

#define lg_log(level, ctx, event, ...)                                                         \
    do {                                                                                       \
        if ((level) >= lg_log_get_level()) {                                                   \
            lg_log_write((level), LG_LOG_MODULE, (ctx), (event), __VA_ARGS__);                 \
        }                                                                                      \
    } while (0)

#endif /* LG_LOG_H */
