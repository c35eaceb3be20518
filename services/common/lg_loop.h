/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_loop: libevent glue shared by every binary: a TCP listener on "HOST:PORT" (port 0 picks
 * a free port and the bound address is reported), signal events for SIGTERM/SIGINT/SIGHUP,
 * SIGPIPE ignored, the monotonic clock in milliseconds, and the one way to make an event_base.
 *
 * Thread: each object belongs to the event_base it was created on and must be used and freed
 * on that loop's thread. lg_loop_ignore_sigpipe is process-wide and meant for startup.
 *
 * Ownership: the event_base is borrowed and must outlive the objects. Accepted sockets are
 * handed to the accept callback, which owns them from then on (non-blocking, close-on-exec).
 *
 * Errors: LG_ERR_INVALID (bad address), LG_ERR_IO (socket/bind/listen failed; errno is
 * logged once, here), LG_ERR_NOMEM.
 */
#ifndef LG_LOOP_H
#define LG_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evconnlistener;
struct sockaddr;

typedef struct lg_loop_listener lg_loop_listener;
typedef struct lg_loop_signals lg_loop_signals;

/* A connection was accepted: |fd| is owned by the callee from now on; |peer| (|peer_len|
 * bytes) is borrowed for the call. */
typedef void (*lg_loop_accept_cb)(int fd, const struct sockaddr *peer, int peer_len,
                                  void *user_data);
/* |signo| (SIGTERM, SIGINT or SIGHUP) arrived; runs on the loop, not in signal context. */
typedef void (*lg_loop_signal_cb)(int signo, void *user_data);

/* Creates an event_base for one loop thread with EVENT_BASE_FLAG_PRECISE_TIMER. Without the
 * flag libevent 2.1 reads CLOCK_MONOTONIC_COARSE, whose resolution is 4 ms here: every timer
 * (deadlines, heartbeats, token pacing, retry backoff) then moves in 4 ms steps, which was
 * measured as a 4.1 ms floor on paced messages. Returns the base (owned by the caller, free
 * with event_base_free) or NULL when libevent cannot allocate one. */
struct event_base *lg_loop_base_new(void);

/* Listens on |hostport| ("127.0.0.1:0", "[::1]:8080", "0.0.0.0:50051") with |backlog| and
 * SO_REUSEADDR, calling |cb| for each accepted connection. The bound address is written to
 * |bound| (|boundlen| bytes, NUL-terminated "HOST:PORT"; may be NULL). Returns LG_OK and the
 * listener in |*out| (returned owned, free with lg_loop_listener_free), LG_ERR_INVALID,
 * LG_ERR_IO or LG_ERR_NOMEM. */
int lg_loop_listen(lg_loop_listener **out, struct event_base *base, const char *hostport,
                   int backlog, lg_loop_accept_cb cb, void *user_data, char *bound,
                   size_t boundlen);
/* Stops accepting (the socket stays bound until freed). */
void lg_loop_listener_disable(lg_loop_listener *l);
/* Closes the listening socket and frees |l|. Accepts NULL. */
void lg_loop_listener_free(lg_loop_listener *l);

/* For a listener another library owns (evhttp's, from evhttp_bound_socket_get_listener):
 * when accept fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), stop
 * accepting for LG_LOOP_ACCEPT_PAUSE_MS and log one accept_failed line, instead of libevent's
 * default of a warning and an immediate retry, which spins on the still-readable socket (7.7
 * million warnings in 1.5 s were measured in llmgate-sse). Other accept errors are logged and
 * accepting goes on. Only the error callback is replaced; the accept callback and its
 * argument stay the owner's. The resume is a one-shot event_base_once timer that holds |ev|,
 * because the owner's callback argument is not ours to carry state in: |ev| must therefore
 * stay alive while its loop runs (free it only after event_base_dispatch has returned;
 * event_base_free drops a pending resume without running it). */
void lg_loop_pause_accept_on_exhaustion(struct evconnlistener *ev);

/* Sends libevent's own diagnostics (which otherwise go to stderr as plain text) through
 * lg_log as JSON lines with module "libevent". Process-wide; call once at startup. */
void lg_loop_route_libevent_logs(void);

/* Ignores SIGPIPE for the process (a write to a closed socket then fails with EPIPE instead
 * of killing the process). Startup only. Returns LG_OK or LG_ERR_IO. */
int lg_loop_ignore_sigpipe(void);

/* Registers signal events for SIGTERM, SIGINT and SIGHUP on |base| calling |cb|, and ignores
 * SIGPIPE. Returns LG_OK and |*out| (returned owned, free with lg_loop_signals_free),
 * LG_ERR_IO or LG_ERR_NOMEM. */
int lg_loop_signals_new(lg_loop_signals **out, struct event_base *base, lg_loop_signal_cb cb,
                        void *user_data);
/* Removes the signal events and frees |s|. Accepts NULL. */
void lg_loop_signals_free(lg_loop_signals *s);

/* Formats |sa| as "HOST:PORT" ("[v6]:PORT" for IPv6) into |out| (|outlen| bytes).
 * Returns LG_OK, LG_ERR_INVALID (unknown family) or LG_ERR_TOO_LARGE (|out| too small). */
int lg_loop_format_addr(const struct sockaddr *sa, char *out, size_t outlen);

/* CLOCK_MONOTONIC in milliseconds (for deadlines; never the wall clock). */
int64_t lg_loop_now_ms(void);

#endif /* LG_LOOP_H */
