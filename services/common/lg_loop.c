/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "lg_cfg.h"
#include "lg_err.h"
#include "lg_limits.h"
#define LG_LOG_MODULE "loop"
#include "lg_log.h"
#include "lg_mem.h"
#include "lg_time.h"

/* Longest host part of a listen address ("[...]" IPv6 literal or a name). */
#define LOOP_HOST_BYTES 256

struct lg_loop_listener {
    struct evconnlistener *ev; /* owns the listening socket */
    struct event *resume;      /* re-enables accepting after a pause for EMFILE and kin */
    bool user_disabled;        /* lg_loop_listener_disable was called: never re-enable */
    lg_loop_accept_cb cb;
    void *user_data;
};

/* The three signals a service reacts to (shutdown on TERM/INT, reload on HUP). */
static const int loop_signals[] = {SIGTERM, SIGINT, SIGHUP};
#define LOOP_NSIGNALS (sizeof(loop_signals) / sizeof(loop_signals[0]))

struct lg_loop_signals {
    struct event *ev[LOOP_NSIGNALS];
    lg_loop_signal_cb cb;
    void *user_data;
};

struct event_base *lg_loop_base_new(void)
{
    struct event_config *cfg = event_config_new();
    if (!cfg) {
        return NULL;
    }
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

int64_t lg_loop_now_ms(void)
{
    return lg_time_mono_ms();
}

int lg_loop_format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];
    int n;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        if (!inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host))) {
            return LG_ERR_INVALID;
        }
        n = snprintf(out, outlen, "%s:%u", host, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host))) {
            return LG_ERR_INVALID;
        }
        n = snprintf(out, outlen, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
    } else {
        return LG_ERR_INVALID;
    }
    if (n < 0 || (size_t)n >= outlen) {
        return LG_ERR_TOO_LARGE;
    }
    return LG_OK;
}

static void loop_on_accept(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg)
{
    (void)ev;
    lg_loop_listener *l = arg;
    l->cb(fd, sa, salen, l->user_data);
}

static void loop_on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg_loop_listener *l = arg;
    if (!l->user_disabled) {
        evconnlistener_enable(l->ev);
    }
}

/* Out of descriptors or memory: the connection stays queued and the socket readable, so
 * retrying at once would spin. Returns true when accepting must pause; logs one line. */
static bool loop_accept_error_pauses(struct evconnlistener *ev, struct timeval *pause)
{
    int err = EVUTIL_SOCKET_ERROR();
    bool p = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
    lg_log(LG_LOG_WARN, NULL, "accept_failed", "errno=%d %s fd=%d pause_ms=%d", err,
           evutil_socket_error_to_string(err), (int)evconnlistener_get_fd(ev),
           p ? LG_LOOP_ACCEPT_PAUSE_MS : 0);
    pause->tv_sec = LG_LOOP_ACCEPT_PAUSE_MS / 1000;
    pause->tv_usec = (LG_LOOP_ACCEPT_PAUSE_MS % 1000) * 1000;
    return p;
}

static void loop_on_accept_error(struct evconnlistener *ev, void *arg)
{
    lg_loop_listener *l = arg;
    struct timeval tv;
    if (loop_accept_error_pauses(ev, &tv)) {
        evconnlistener_disable(ev);
        evtimer_add(l->resume, &tv);
    }
}

static void loop_on_foreign_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evconnlistener_enable(arg);
}

static void loop_on_foreign_accept_error(struct evconnlistener *ev, void *arg)
{
    (void)arg; /* the owner's (evhttp's) argument */
    struct timeval tv;
    if (loop_accept_error_pauses(ev, &tv)) {
        evconnlistener_disable(ev);
        if (event_base_once(evconnlistener_get_base(ev), -1, EV_TIMEOUT,
                            loop_on_foreign_accept_resume, ev, &tv) != 0) {
            evconnlistener_enable(ev); /* no timer: spinning beats never accepting again */
        }
    }
}

void lg_loop_pause_accept_on_exhaustion(struct evconnlistener *ev)
{
    evconnlistener_set_error_cb(ev, loop_on_foreign_accept_error);
}

static void loop_on_libevent_log(int severity, const char *msg)
{
    enum lg_log_level level = severity >= EVENT_LOG_ERR    ? LG_LOG_ERROR
                              : severity >= EVENT_LOG_WARN ? LG_LOG_WARN
                              : severity >= EVENT_LOG_MSG  ? LG_LOG_INFO
                                                           : LG_LOG_DEBUG;
    if (level >= lg_log_get_level()) {
        lg_log_write(level, "libevent", NULL, "libevent", "%s", msg);
    }
}

void lg_loop_route_libevent_logs(void)
{
    event_set_log_callback(loop_on_libevent_log);
}

static int loop_resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[LOOP_HOST_BYTES];
    uint16_t port;
    if (lg_cfg_split_hostport(hostport, host, sizeof(host), &port) != LG_OK) {
        return LG_ERR_INVALID;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
    struct addrinfo *res = NULL;
    /* Startup only: a listen address is resolved once, before the loop runs. */
    int rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (rc != 0 || !res) {
        lg_log(LG_LOG_ERROR, NULL, "resolve_failed", "addr=%s err=%s", hostport, gai_strerror(rc));
        return LG_ERR_INVALID;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return LG_OK;
}

int lg_loop_listen(lg_loop_listener **out, struct event_base *base, const char *hostport,
                   int backlog, lg_loop_accept_cb cb, void *user_data, char *bound, size_t boundlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int rc = loop_resolve(hostport, &ss, &sslen);
    if (rc != LG_OK) {
        return rc;
    }
    lg_loop_listener *l = lg_calloc(1, sizeof(*l));
    if (!l) {
        return LG_ERR_NOMEM;
    }
    l->cb = cb;
    l->user_data = user_data;
    l->ev = evconnlistener_new_bind(
        base, loop_on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        backlog, (struct sockaddr *)&ss, (int)sslen);
    if (!l->ev) {
        int err = errno;
        lg_log(LG_LOG_ERROR, NULL, "listen_failed", "addr=%s errno=%d %s", hostport, err,
               strerror(err));
        lg_free(l);
        return LG_ERR_IO;
    }
    l->resume = evtimer_new(base, loop_on_accept_resume, l);
    if (!l->resume) {
        evconnlistener_free(l->ev);
        lg_free(l);
        return LG_ERR_NOMEM;
    }
    evconnlistener_set_error_cb(l->ev, loop_on_accept_error);
    if (bound && boundlen) {
        struct sockaddr_storage bs;
        socklen_t bslen = sizeof(bs);
        if (getsockname(evconnlistener_get_fd(l->ev), (struct sockaddr *)&bs, &bslen) != 0 ||
            lg_loop_format_addr((struct sockaddr *)&bs, bound, boundlen) != LG_OK) {
            int err = errno;
            lg_log(LG_LOG_ERROR, NULL, "getsockname_failed", "addr=%s errno=%d", hostport, err);
            event_free(l->resume);
            evconnlistener_free(l->ev);
            lg_free(l);
            return LG_ERR_IO;
        }
    }
    *out = l;
    return LG_OK;
}

void lg_loop_listener_disable(lg_loop_listener *l)
{
    if (l) {
        l->user_disabled = true;
        event_del(l->resume);
        evconnlistener_disable(l->ev);
    }
}

void lg_loop_listener_free(lg_loop_listener *l)
{
    if (!l) {
        return;
    }
    event_free(l->resume);
    evconnlistener_free(l->ev);
    lg_free(l);
}

int lg_loop_ignore_sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0) {
        int err = errno;
        lg_log(LG_LOG_ERROR, NULL, "sigaction_failed", "errno=%d", err);
        return LG_ERR_IO;
    }
    return LG_OK;
}

static void loop_on_signal(evutil_socket_t signo, short what, void *arg)
{
    (void)what;
    lg_loop_signals *s = arg;
    s->cb((int)signo, s->user_data);
}

int lg_loop_signals_new(lg_loop_signals **out, struct event_base *base, lg_loop_signal_cb cb,
                        void *user_data)
{
    int rc = lg_loop_ignore_sigpipe();
    if (rc != LG_OK) {
        return rc;
    }
    lg_loop_signals *s = lg_calloc(1, sizeof(*s));
    if (!s) {
        return LG_ERR_NOMEM;
    }
    s->cb = cb;
    s->user_data = user_data;
    for (size_t i = 0; i < LOOP_NSIGNALS; i++) {
        s->ev[i] = evsignal_new(base, loop_signals[i], loop_on_signal, s);
        if (!s->ev[i]) {
            lg_loop_signals_free(s);
            return LG_ERR_NOMEM;
        }
        if (evsignal_add(s->ev[i], NULL) != 0) {
            lg_loop_signals_free(s);
            return LG_ERR_IO;
        }
    }
    *out = s;
    return LG_OK;
}

void lg_loop_signals_free(lg_loop_signals *s)
{
    if (!s) {
        return;
    }
    for (size_t i = 0; i < LOOP_NSIGNALS; i++) {
        if (s->ev[i]) {
            event_free(s->ev[i]);
        }
    }
    lg_free(s);
}
