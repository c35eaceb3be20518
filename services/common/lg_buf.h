/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_buf: a growable byte buffer with a required maximum, and lg_slice, a borrowed byte range.
 *
 * Output is assembled in an lg_buf whose cap is fixed at init (curl's dynbuf "toobig"): an
 * append past the cap fails with LG_ERR_TOO_LARGE and leaves the buffer as it was, so no
 * encoder can grow without bound. The contents are always NUL-terminated for convenience,
 * but may contain NULs; use len. Byte ranges passed around are lg_slice and are never
 * assumed NUL-terminated (h2o_iovec_t, ngx_str_t).
 *
 * Thread-safety: none; a buffer belongs to one owner.
 * Errors: LG_ERR_TOO_LARGE (cap), LG_ERR_NOMEM.
 */
#ifndef LG_BUF_H
#define LG_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* A borrowed byte range; the owner of the bytes says how long it stays valid. */
struct lg_slice {
    const uint8_t *ptr; /* first byte; may be NULL when len == 0 */
    size_t len;         /* number of bytes */
};

#define LG_SLICE_STR(s) ((struct lg_slice){(const uint8_t *)(s), sizeof(s) - 1})

/* Slice over a NUL-terminated string (borrowed). NULL gives an empty slice. */
struct lg_slice lg_slice_from_cstr(const char *s);
/* True when |a| holds exactly the bytes of NUL-terminated |s|. */
int lg_slice_eq_cstr(struct lg_slice a, const char *s);

/* Caller-owned buffer; fields are read-only to callers. */
struct lg_buf {
    uint8_t *data; /* lg_malloc'd, NUL-terminated after len; NULL until the first append */
    size_t len;    /* bytes held */
    size_t cap;    /* bytes allocated (excluding the NUL slot) */
    size_t max;    /* hard maximum of len; appends beyond fail */
};

/* Initialises an empty buffer that will never hold more than |max| bytes. No allocation. */
void lg_buf_init(struct lg_buf *b, size_t max);
/* Frees the contents; the buffer can be re-initialised. */
void lg_buf_deinit(struct lg_buf *b);
/* Empties the buffer, keeping its memory. */
void lg_buf_reset(struct lg_buf *b);
/* Empties the buffer and frees its memory when its capacity grew past |keep| (the maximum
 * stays), so a buffer that once held something huge does not keep it; otherwise leaves
 * it as it is. */
void lg_buf_trim(struct lg_buf *b, size_t keep);

int lg_buf_append(struct lg_buf *b, const void *p, size_t len);
int lg_buf_append_str(struct lg_buf *b, const char *s);
int lg_buf_append_byte(struct lg_buf *b, uint8_t c);
/* printf-style append. LG_ERR_TOO_LARGE past max, LG_ERR_INVALID on an encoding error. */
int lg_buf_appendf(struct lg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int lg_buf_vappendf(struct lg_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Makes room for |len| more bytes; returns a pointer to write them, then call
 * lg_buf_commit(b, n) with the number written. NULL on TOO_LARGE or NOMEM. */
uint8_t *lg_buf_reserve(struct lg_buf *b, size_t len);
void lg_buf_commit(struct lg_buf *b, size_t len);
/* Removes the first |len| bytes (memmove). */
void lg_buf_consume(struct lg_buf *b, size_t len);

/* Hands the contents to the caller (returned owned, free with lg_free; never NULL on LG_OK:
 * an empty buffer yields an allocated ""), and leaves |b| empty. */
int lg_buf_take(struct lg_buf *b, uint8_t **out, size_t *len_out);

/* Borrowed view of the contents, valid until the next mutation. */
struct lg_slice lg_buf_slice(const struct lg_buf *b);

/* Appends |s| JSON-escaped (without quotes): quote, backslash and control bytes are escaped;
 * bytes >= 0x80 are copied as they are (callers pass UTF-8). */
int lg_buf_append_json_escaped(struct lg_buf *b, const uint8_t *s, size_t len);

/* The most bytes |len| input bytes can take once JSON-escaped (a control byte becomes
 * \u00XX): room to reserve before lg_buf_json_escape_to without measuring. */
#define LG_BUF_JSON_ESCAPE_MAX_GROWTH 6u

/* Bytes that lg_buf_append_json_escaped would append for |s| (exact; one pass). */
size_t lg_buf_json_escaped_len(const uint8_t *s, size_t len);
/* Writes |s| JSON-escaped, exactly as lg_buf_append_json_escaped would append it, to |dst|
 * and returns the end of what it wrote. |dst| must have room for the escaped bytes
 * (lg_buf_json_escaped_len, or LG_BUF_JSON_ESCAPE_MAX_GROWTH * len); nothing past them is
 * written. For encoders that reserve a whole row once (lg_buf_reserve) and fill it with a
 * raw pointer instead of one append per piece. */
uint8_t *lg_buf_json_escape_to(uint8_t *dst, const uint8_t *s, size_t len);

#endif /* LG_BUF_H */
