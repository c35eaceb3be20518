/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_grpc_frame: the sans-I/O codec of gRPC over HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md).
 * Bytes in, bytes or events out: no fds, no loop, no logging. Used by lg_grpc_server and
 * lg_grpc_client alike.
 *
 *  - Length-Prefixed-Message encoder: 1-byte compressed flag, 4-byte big-endian length,
 *    payload (optionally gzip-compressed, flag set).
 *  - Incremental reassembler (lg_grpc_frame_reader): feed arbitrary DATA-frame chunks;
 *    messages split across chunks and packed within one chunk come out whole, in order,
 *    through a callback. It enforces a maximum message size, reports the compressed flag
 *    (the caller decides: flag set but no grpc-encoding is INTERNAL) and detects a
 *    truncated trailing message at end-of-stream.
 *  - gzip compress/decompress with a hard cap on the output (zip-bomb guard), via zlib.
 *  - Metadata helpers: grpc-message percent-encoding, base64 for "-bin" values (emit
 *    unpadded; accept padded and unpadded; comma-separated lists), grpc-timeout parse and
 *    format, metadata key validation, content-type check, grpc-status parse.
 *
 * Thread: none of these functions touch shared state; a reader belongs to one stream on one
 * thread. Memory goes through lg_malloc (zlib's state too).
 *
 * Ownership: output is appended to a caller-owned struct lg_buf, whose max is the cap (an
 * append past it fails with LG_ERR_TOO_LARGE). On an error, lg_grpc_frame_encode and the
 * base64 functions leave the buffer as it was; the others may leave a partial append, which
 * callers discard (lg_buf_reset). Input pointers are borrowed for the call.
 * Message slices handed to a reader callback are borrowed until the callback returns.
 *
 * Errors (each function lists the ones it returns):
 *   LG_ERR_INVALID    bad argument (a length that does not fit the 32-bit prefix, an
 *                     empty or out-of-alphabet metadata key, a bad grpc-timeout string)
 *   LG_ERR_TOO_LARGE  a message above the reader's maximum, or output past an lg_buf max
 *   LG_ERR_MALFORMED  peer bytes that break the format: a reserved flag bit, bad base64,
 *                     corrupt gzip data, a truncated message at end-of-stream, a bad
 *                     grpc-status value
 *   LG_ERR_STATE      a reader used after a callback refused a message, or after finish
 *   LG_ERR_NOMEM      out of memory
 *   LG_ERR_INTERNAL   zlib refused its own fixed parameters (a broken invariant; not
 *                     reachable from input)
 *   Any other negative value returned by a reader callback is passed through unchanged.
 */
#ifndef LG_GRPC_FRAME_H
#define LG_GRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lg_buf.h"

/* Length-Prefixed-Message prefix: 1 flag byte + 4-byte big-endian length (PROTOCOL-HTTP2.md,
 * "Length-Prefixed-Message"). */
#define LG_GRPC_FRAME_PREFIX_BYTES 5
/* Compressed-Flag bit; the other seven bits are reserved and must be zero. */
#define LG_GRPC_FRAME_FLAG_COMPRESSED 0x01u
/* Largest payload the 4-byte length can carry. */
#define LG_GRPC_FRAME_MAX_PAYLOAD_BYTES 0xFFFFFFFFu
/* grpc-timeout: "TimeoutValue -> {positive integer as ASCII string of at most 8 digits}" plus
 * one unit letter, so 9 bytes; the buffer size includes the NUL. */
#define LG_GRPC_FRAME_TIMEOUT_STR_BYTES 10

/* ---- Length-Prefixed-Message encoder ------------------------------------------------- */

/* Writes the 5-byte prefix for a payload of |len| bytes into |out| (for callers that send
 * the payload separately, e.g. evbuffer_add_reference). |len| must be
 * <= LG_GRPC_FRAME_MAX_PAYLOAD_BYTES (checked with assert: it is our own length). */
void lg_grpc_frame_write_prefix(uint8_t out[LG_GRPC_FRAME_PREFIX_BYTES], bool compressed,
                                size_t len);

/* Appends one whole message (prefix + payload) for the |len| bytes at |msg| to |out|. With
 * |gzip| the payload is gzip-compressed and the compressed flag set.
 * Returns LG_OK, LG_ERR_INVALID (payload over 4 GiB - 1), LG_ERR_TOO_LARGE (past out->max),
 * LG_ERR_NOMEM. On error |out| is restored to its previous length. */
int lg_grpc_frame_encode(struct lg_buf *out, const uint8_t *msg, size_t len, bool gzip);

/* ---- Incremental reassembler --------------------------------------------------------- */

/* One message out of the reader. */
struct lg_grpc_frame_msg {
    struct lg_slice data; /* payload as sent (still compressed when |compressed|); borrowed
                             until the callback returns */
    bool compressed;      /* the Compressed-Flag was set: the caller must decompress with the
                             stream's grpc-encoding, or fail with INTERNAL if it has none */
};

/* Called once per whole message, in order. Return LG_OK to continue; any negative value
 * stops the feed, is returned by lg_grpc_frame_reader_feed, and fails the reader (later
 * feeds return LG_ERR_STATE): a message the caller could not take fails its stream. The
 * callback must not call back into the same reader. */
typedef int (*lg_grpc_frame_msg_cb)(const struct lg_grpc_frame_msg *msg, void *user_data);

typedef struct lg_grpc_frame_reader lg_grpc_frame_reader;

/* Creates a reader that refuses messages whose declared length exceeds |max_message_bytes|
 * (the gRPC receive limit; 4 MiB by default in grpc, see LG_GRPC_FRAME_DEFAULT_MAX_MESSAGE_BYTES
 * in lg_limits.h). Returns LG_OK and |*out| (returned owned, free with
 * lg_grpc_frame_reader_free) or LG_ERR_NOMEM. */
int lg_grpc_frame_reader_new(lg_grpc_frame_reader **out, size_t max_message_bytes);
/* Frees |r| and any partial message it holds. Accepts NULL. */
void lg_grpc_frame_reader_free(lg_grpc_frame_reader *r);

/* Feeds |len| bytes at |p| (borrowed; any split of the stream is fine). Each whole message
 * is passed to |cb|; a message wholly inside |p| is handed out without a copy, a message
 * spanning feeds is assembled in an internal buffer bounded by the maximum.
 * Returns LG_OK; LG_ERR_TOO_LARGE (declared length over the maximum, detected from the
 * prefix before any payload is buffered); LG_ERR_MALFORMED (reserved flag bits set);
 * LG_ERR_NOMEM; LG_ERR_STATE (reader already failed or finished); or the callback's
 * negative value. Every error is sticky: the stream must be failed. */
int lg_grpc_frame_reader_feed(lg_grpc_frame_reader *r, const uint8_t *p, size_t len,
                              lg_grpc_frame_msg_cb cb, void *user_data);

/* Marks end-of-stream. Returns LG_OK when the stream ended on a message boundary,
 * LG_ERR_MALFORMED when a partial message (prefix or payload) was left over, or the sticky
 * error of an earlier failure. Later feeds return LG_ERR_STATE. */
int lg_grpc_frame_reader_finish(lg_grpc_frame_reader *r);

/* Bytes of an incomplete message currently held (for accounting and tests). */
size_t lg_grpc_frame_reader_pending_len(const lg_grpc_frame_reader *r);
/* Whole messages delivered so far. */
uint64_t lg_grpc_frame_reader_count(const lg_grpc_frame_reader *r);

/* ---- gzip ---------------------------------------------------------------------------- */

/* Appends the gzip (RFC 1952) compression of |len| bytes at |in| to |out|. On error |out|
 * may hold part of the output (the header's rule: reset it).
 * Returns LG_OK, LG_ERR_TOO_LARGE (past out->max), LG_ERR_NOMEM, LG_ERR_INTERNAL (zlib
 * refused its own parameters: a broken invariant). */
int lg_grpc_frame_gzip(const uint8_t *in, size_t len, struct lg_buf *out);

/* Appends the decompression of the gzip data |in| to |out|. The output cap is out->max:
 * a small input that inflates beyond it fails with LG_ERR_TOO_LARGE as soon as the cap is
 * passed, without inflating the rest (zip-bomb guard). Returns LG_OK, LG_ERR_TOO_LARGE,
 * LG_ERR_MALFORMED (not gzip, corrupt, truncated, or bytes after the gzip member),
 * LG_ERR_NOMEM. */
int lg_grpc_frame_gunzip(const uint8_t *in, size_t len, struct lg_buf *out);

/* ---- grpc-message percent-encoding --------------------------------------------------- */

/* Appends |in| percent-encoded as grpc-message requires: bytes outside 0x20..0x7E and '%'
 * become "%XX" (upper-case hex); UTF-8 is encoded byte by byte so it round-trips exactly.
 * Returns LG_OK, LG_ERR_TOO_LARGE, LG_ERR_NOMEM. */
int lg_grpc_frame_percent_encode(const uint8_t *in, size_t len, struct lg_buf *out);

/* Appends the decoding of a received grpc-message. As the spec asks, invalid input never
 * fails: a '%' not followed by two hex digits is kept as it is.
 * Returns LG_OK, LG_ERR_TOO_LARGE, LG_ERR_NOMEM. */
int lg_grpc_frame_percent_decode(const uint8_t *in, size_t len, struct lg_buf *out);

/* ---- base64 for "-bin" metadata ------------------------------------------------------ */

/* Appends the standard-alphabet base64 of |in| without '=' padding (what gRPC emits).
 * Returns LG_OK, LG_ERR_TOO_LARGE, LG_ERR_NOMEM. */
int lg_grpc_frame_base64_encode(const uint8_t *in, size_t len, struct lg_buf *out);

/* Appends the decoding of ONE base64 value, padded or unpadded. Returns LG_OK,
 * LG_ERR_MALFORMED (a byte outside the alphabet, misplaced or excess padding, a length of
 * 4n+1), LG_ERR_TOO_LARGE, LG_ERR_NOMEM. Non-zero unused trailing bits are ignored, as
 * most decoders do (grpc-go's encoding/base64), so a lenient peer's value is accepted. */
int lg_grpc_frame_base64_decode(const uint8_t *in, size_t len, struct lg_buf *out);

/* Called once per element of a comma-separated "-bin" header value, with the decoded bytes
 * (borrowed until return). Return LG_OK to continue or a negative value to stop. */
typedef int (*lg_grpc_frame_bin_cb)(struct lg_slice value, void *user_data);

/* Splits a "-bin" header value on ',' (HTTP/2 may join repeated fields so), trims spaces and
 * tabs around each element, decodes each with lg_grpc_frame_base64_decode into |scratch|
 * (reset before each element; its max bounds one element) and passes it to |cb|.
 * Returns LG_OK, the decode errors above, or the callback's negative value. */
int lg_grpc_frame_bin_decode_list(const uint8_t *in, size_t len, struct lg_buf *scratch,
                                  lg_grpc_frame_bin_cb cb, void *user_data);

/* ---- grpc-timeout -------------------------------------------------------------------- */

/* Parses a grpc-timeout value: 1 to 8 ASCII digits then one unit of H (hours), M (minutes),
 * S (seconds), m (milliseconds), u (microseconds), n (nanoseconds). Stores the duration in
 * nanoseconds in |*ns_out|, saturated at UINT64_MAX (99999999H does not fit in 64 bits).
 * Returns LG_OK or LG_ERR_INVALID (empty, more than 8 digits, a non-digit, unknown unit). */
int lg_grpc_frame_timeout_parse(const uint8_t *in, size_t len, uint64_t *ns_out);

/* Formats |ns| as a grpc-timeout value into |out| (NUL-terminated), choosing the finest
 * unit whose value fits 8 digits and rounding up, so the peer's deadline is never earlier
 * than ours. 0 becomes "0n". Durations above 99999999H are clamped to "99999999H".
 * Returns the string length (always > 0). */
size_t lg_grpc_frame_timeout_format(uint64_t ns, char out[LG_GRPC_FRAME_TIMEOUT_STR_BYTES]);

/* ---- metadata and headers ------------------------------------------------------------ */

/* True when |key| is a valid custom metadata name: non-empty, only [0-9a-z_.-]. (Names
 * starting "grpc-" are valid syntax but reserved: see lg_grpc_frame_is_reserved_key.) */
bool lg_grpc_frame_is_valid_key(const uint8_t *key, size_t len);
/* True when |key| starts with "grpc-" (reserved for the protocol) or ':' (pseudo-header). */
bool lg_grpc_frame_is_reserved_key(const uint8_t *key, size_t len);
/* True when |key| ends in "-bin": its value is binary and travels base64-encoded. */
bool lg_grpc_frame_is_bin_key(const uint8_t *key, size_t len);
/* True when |val| is a valid ASCII metadata value: every byte in 0x20..0x7E. */
bool lg_grpc_frame_is_valid_ascii_value(const uint8_t *val, size_t len);

/* True when |val| is a gRPC content-type: "application/grpc" (ASCII case-insensitive),
 * optionally followed by "+subtype" (e.g. "+proto") or ";parameters". Anything else gets
 * HTTP 415 from a server and INTERNAL/UNKNOWN at a client. */
bool lg_grpc_frame_is_grpc_content_type(const uint8_t *val, size_t len);

/* Parses a grpc-status value: decimal without leading zeros ("0" itself allowed), at most
 * 10 digits, fitting an int. Codes above 16 are returned as they are (callers may map them
 * to UNKNOWN). Returns LG_OK or LG_ERR_MALFORMED. */
int lg_grpc_frame_status_parse(const uint8_t *in, size_t len, int *status_out);

#endif /* LG_GRPC_FRAME_H */
