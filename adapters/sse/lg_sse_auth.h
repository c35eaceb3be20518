/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_sse_auth: who is calling the SSE adapter.
 *
 * Keys file: one key per line, `sha256:<64 hex> <user_id>`; blank lines and lines starting
 * with '#' are ignored. Only SHA-256 digests of API keys are stored, so the file is no secret
 * store. A presented key (Authorization: Bearer <key>) is hashed and compared against every
 * entry with a constant-time compare, without early exit, so timing does not reveal which
 * prefix matched. The file is re-read on SIGHUP by building a new lg_sse_keys and swapping it
 * in; a file that fails to load keeps the previous keys (the caller logs the reason).
 *
 * Tokens: EventSource cannot send Authorization, so GET /events accepts a short-lived token
 * in the query string: `<hex user_id>.<hex stream_id>.<unix expiry>.<hex HMAC-SHA256>` over
 * "llmgate-sse-token-v1\n<user>\n<stream>\n<expiry>", with a secret shared by all replicas.
 * A token names one stream and one user and is never logged.
 *
 * Thread: an lg_sse_keys is immutable once loaded and may be read from any thread.
 * Ownership: lg_sse_keys_load returns an owned object (lg_sse_keys_free); user ids returned
 * by lookups are borrowed from it (valid until it is freed) or copied into caller buffers.
 * Errors: LG_ERR_INVALID (malformed file/line/token), LG_ERR_TOO_LARGE (file or count over
 * the limits), LG_ERR_IO (cannot read the file), LG_ERR_UNAUTHENTICATED (unknown key, bad
 * token MAC), LG_ERR_EXPIRED (token past its expiry), LG_ERR_PERMISSION (token for another
 * stream), LG_ERR_NOMEM.
 */
#ifndef LG_SSE_AUTH_H
#define LG_SSE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of the token secret (HMAC-SHA256 key). */
#define LG_SSE_AUTH_SECRET_BYTES 32

typedef struct lg_sse_keys lg_sse_keys;

/* Parses keys file text |text| (|len| bytes). On error |*line_out| (may be NULL) receives the
 * 1-based line that failed. */
int lg_sse_keys_parse(lg_sse_keys **out, const char *text, size_t len, size_t *line_out);
/* Reads and parses the file at |path| (blocking: startup and SIGHUP only). */
int lg_sse_keys_load(lg_sse_keys **out, const char *path, size_t *line_out);
void lg_sse_keys_free(lg_sse_keys *k);
/* Number of keys held. */
size_t lg_sse_keys_count(const lg_sse_keys *k);

/* Maps the API key |key| (|len| bytes) to its user id (borrowed from |k|). Returns LG_OK or
 * LG_ERR_UNAUTHENTICATED. */
int lg_sse_keys_lookup(const lg_sse_keys *k, const char *key, size_t len, const char **user_out);

/* Extracts the key from an Authorization header value "Bearer <key>" (scheme case-insensitive).
 * |*key_out| points into |hdr|. Returns LG_OK or LG_ERR_UNAUTHENTICATED. */
int lg_sse_auth_bearer(const char *hdr, const char **key_out, size_t *len_out);

/* Writes "sha256:<hex>" of |key| into |out| (at least 72 bytes). For tools and tests. */
int lg_sse_auth_hash_key(const char *key, size_t len, char *out, size_t outlen);

/* Makes a token for |user| reading |stream_id| valid until |expiry| (unix seconds) into |out|
 * (|outlen| bytes with the NUL). LG_ERR_TOO_LARGE when it does not fit. */
int lg_sse_token_make(const uint8_t secret[LG_SSE_AUTH_SECRET_BYTES], const char *user,
                      const char *stream_id, int64_t expiry, char *out, size_t outlen);
/* Checks |token| for |stream_id| at time |now| (unix seconds) and copies its user into
 * |user_out| (|userlen| bytes). */
int lg_sse_token_verify(const uint8_t secret[LG_SSE_AUTH_SECRET_BYTES], const char *token,
                        const char *stream_id, int64_t now, char *user_out, size_t userlen);

/* Derives a token secret from text (hex of 64 chars, or any passphrase hashed with SHA-256);
 * NULL or empty fills |out| with random bytes (tokens then work only on this replica). */
int lg_sse_auth_secret(const char *text, uint8_t out[LG_SSE_AUTH_SECRET_BYTES]);

#endif /* LG_SSE_AUTH_H */
