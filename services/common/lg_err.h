/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_err: the one error vocabulary of llmgate.
 *
 * Every function that can fail returns int: LG_OK (0) or a negative lg_err code; a function
 * that produces bytes returns ptrdiff_t (>= 0 a count, < 0 an lg_err code). Each code comes
 * from one X-macro row that also gives its message, its gRPC status and its HTTP status, so
 * the three mappings cannot drift apart (libuv's UV_ERRNO_MAP).
 *
 * Scope: a code <= LG_ERR_FATAL (out of memory, peer protocol violation, broken invariant)
 * tears down the connection; anything above fails only the stream or request. LG_ERR_AGAIN
 * means "not now, call again" and is never logged as a failure.
 *
 * Thread-safety: pure functions over constant tables; any thread.
 */
#ifndef LG_ERR_H
#define LG_ERR_H

/* gRPC status codes (grpc/grpc doc/statuscodes.md). */
enum lg_grpc_status {
    LG_GRPC_OK = 0,
    LG_GRPC_CANCELLED = 1,
    LG_GRPC_UNKNOWN = 2,
    LG_GRPC_INVALID_ARGUMENT = 3,
    LG_GRPC_DEADLINE_EXCEEDED = 4,
    LG_GRPC_NOT_FOUND = 5,
    LG_GRPC_ALREADY_EXISTS = 6,
    LG_GRPC_PERMISSION_DENIED = 7,
    LG_GRPC_RESOURCE_EXHAUSTED = 8,
    LG_GRPC_FAILED_PRECONDITION = 9,
    LG_GRPC_ABORTED = 10,
    LG_GRPC_OUT_OF_RANGE = 11,
    LG_GRPC_UNIMPLEMENTED = 12,
    LG_GRPC_INTERNAL = 13,
    LG_GRPC_UNAVAILABLE = 14,
    LG_GRPC_DATA_LOSS = 15,
    LG_GRPC_UNAUTHENTICATED = 16,
};

/* X(name, value, message, grpc status, http status) */
#define LG_ERR_MAP(X)                                                                          \
    X(OK, 0, "ok", OK, 200)                                                                    \
    X(AGAIN, -1, "try again", UNAVAILABLE, 503)                                                \
    X(INVALID, -2, "invalid argument", INVALID_ARGUMENT, 400)                                  \
    X(TOO_LARGE, -3, "limit exceeded", RESOURCE_EXHAUSTED, 413)                                \
    X(NOT_FOUND, -4, "not found", NOT_FOUND, 404)                                              \
    X(PERMISSION, -5, "permission denied", PERMISSION_DENIED, 403)                             \
    X(UNAUTHENTICATED, -6, "unauthenticated", UNAUTHENTICATED, 401)                            \
    X(UNIMPLEMENTED, -7, "not implemented", UNIMPLEMENTED, 501)                                \
    X(UNAVAILABLE, -8, "unavailable", UNAVAILABLE, 503)                                        \
    X(TIMEOUT, -9, "deadline exceeded", DEADLINE_EXCEEDED, 504)                                \
    X(CANCELLED, -10, "cancelled", CANCELLED, 499)                                             \
    X(EXHAUSTED, -11, "resource exhausted", RESOURCE_EXHAUSTED, 429)                           \
    X(STATE, -12, "invalid state", FAILED_PRECONDITION, 409)                                   \
    X(IO, -13, "i/o error", UNAVAILABLE, 502)                                                  \
    X(MALFORMED, -14, "malformed message", INTERNAL, 400)                                      \
    X(UPSTREAM, -15, "upstream error", UNAVAILABLE, 502)                                       \
    X(UNSUPPORTED_MEDIA, -16, "unsupported media type", INTERNAL, 415)                         \
    X(EXPIRED, -17, "expired", NOT_FOUND, 410)                                                 \
    X(CLOSED, -18, "closed", UNAVAILABLE, 503)                                                 \
    X(CORRUPT, -19, "data corrupted", DATA_LOSS, 500)                                          \
    X(FATAL, -100, "fatal error", INTERNAL, 500)                                               \
    X(NOMEM, -101, "out of memory", RESOURCE_EXHAUSTED, 503)                                   \
    X(PROTOCOL, -102, "protocol violation", INTERNAL, 400)                                     \
    X(INTERNAL, -103, "internal error", INTERNAL, 500)

typedef enum lg_err {
#define LG_ERR_ENUM(name, value, msg, grpc, http) LG_ERR_##name = (value),
    LG_ERR_MAP(LG_ERR_ENUM)
#undef LG_ERR_ENUM
} lg_err;

#define LG_OK LG_ERR_OK

/* True when |code| must tear down the whole connection, not just one stream. */
#define LG_ERR_IS_FATAL(code) ((code) <= LG_ERR_FATAL)

/* Human-readable message for |code|; "unknown error" for values outside the table. */
const char *lg_err_str(int code);

/* Short symbolic name ("TOO_LARGE") for |code|; "UNKNOWN" outside the table. */
const char *lg_err_name(int code);

/* gRPC status (enum lg_grpc_status) for |code|; LG_GRPC_UNKNOWN outside the table. */
int lg_err_grpc_status(int code);

/* HTTP status for |code|; 500 outside the table. */
int lg_err_http_status(int code);

/* Name of a gRPC status ("DEADLINE_EXCEEDED"); "UNKNOWN" outside 0..16. */
const char *lg_grpc_status_name(int status);

#endif /* LG_ERR_H */
