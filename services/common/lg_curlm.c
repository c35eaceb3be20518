/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_curlm.h"

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "lg_err.h"
#include "lg_mem.h"

#define LG_LOG_MODULE "curlm"
#include "lg_log.h"

/* One transfer: what CURLOPT_PRIVATE points to. Linked so that free can abort them all. */
struct curlm_xfer {
    struct curlm_xfer *prev, *next;
    CURL *easy;
    lg_curlm_done_cb cb;
    void *user_data;
};

/* One socket curl wants watched (curl_multi_assign'd to the socket). */
struct curlm_sock {
    struct event *ev;
    short kind; /* EV_READ/EV_WRITE currently registered */
};

struct lg_curlm {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;      /* curl's single timeout */
    struct curlm_xfer *xfers; /* transfers added and not finished */
    size_t count;
};

static void curlm_unlink(lg_curlm *m, struct curlm_xfer *x)
{
    if (x->prev != NULL) {
        x->prev->next = x->next;
    } else {
        m->xfers = x->next;
    }
    if (x->next != NULL) {
        x->next->prev = x->prev;
    }
    m->count--;
}

/* Hands finished transfers to their owners. */
static void curlm_check_done(lg_curlm *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        struct curlm_xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(m->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        if (x == NULL) {
            continue;
        }
        curlm_unlink(m, x);
        lg_curlm_done_cb cb = x->cb;
        void *ud = x->user_data;
        lg_free(x);
        /* May add or remove transfers: curl_multi_info_read copes with both. */
        cb(easy, result, ud);
    }
}

static void curlm_socket_action(lg_curlm *m, curl_socket_t s, int action)
{
    int running = 0;
    CURLMcode mc = curl_multi_socket_action(m->multi, s, action, &running);
    if (mc != CURLM_OK) {
        lg_log(LG_LOG_ERROR, NULL, "socket_action", "curl: %s", curl_multi_strerror(mc));
    }
    curlm_check_done(m);
    if (running <= 0 && m->count == 0) {
        evtimer_del(m->timer);
    }
}

static void curlm_on_event(evutil_socket_t fd, short kind, void *arg)
{
    lg_curlm *m = arg;
    int action =
        ((kind & EV_READ) ? CURL_CSELECT_IN : 0) | ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    curlm_socket_action(m, fd, action);
}

static void curlm_on_timer(evutil_socket_t fd, short kind, void *arg)
{
    (void)fd;
    (void)kind;
    curlm_socket_action(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_TIMERFUNCTION: -1 deletes the timer; 0 means "call socket_action soon", which a
 * zero timeout does on the next loop turn (never from inside this callback). */
static int curlm_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    (void)multi;
    lg_curlm *m = arg;
    if (timeout_ms < 0) {
        evtimer_del(m->timer);
        return 0;
    }
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000)};
    return evtimer_add(m->timer, &tv) == 0 ? 0 : -1;
}

/* CURLMOPT_SOCKETFUNCTION: keep one persistent event per socket matching curl's interest. */
static int curlm_socket_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
    (void)easy;
    lg_curlm *m = arg;
    struct curlm_sock *cs = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (cs != NULL) {
            event_free(cs->ev);
            lg_free(cs);
            curl_multi_assign(m->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (cs == NULL) {
        cs = lg_calloc(1, sizeof(*cs));
        if (cs == NULL) {
            return -1; /* curl fails the transfer with CURLE_ABORTED_BY_CALLBACK */
        }
        curl_multi_assign(m->multi, s, cs);
    } else if (cs->kind == kind) {
        return 0;
    } else {
        event_free(cs->ev);
        cs->ev = NULL;
    }
    cs->ev = event_new(m->base, s, kind, curlm_on_event, m);
    if (cs->ev == NULL || event_add(cs->ev, NULL) != 0) {
        return -1;
    }
    cs->kind = kind;
    return 0;
}

int lg_curlm_new(lg_curlm **out, struct event_base *base)
{
    lg_curlm *m = lg_calloc(1, sizeof(*m));
    if (m == NULL) {
        return LG_ERR_NOMEM;
    }
    m->base = base;
    m->multi = curl_multi_init();
    m->timer = evtimer_new(base, curlm_on_timer, m);
    if (m->multi == NULL || m->timer == NULL) {
        lg_curlm_free(m);
        return LG_ERR_NOMEM;
    }
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, curlm_socket_cb);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, curlm_timer_cb);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    /* Several streams to one HTTP/2 upstream share a connection. */
    curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    *out = m;
    return LG_OK;
}

void lg_curlm_free(lg_curlm *m)
{
    if (m == NULL) {
        return;
    }
    while (m->xfers != NULL) {
        lg_curlm_remove(m, m->xfers->easy);
    }
    if (m->multi != NULL) {
        curl_multi_cleanup(m->multi);
    }
    if (m->timer != NULL) {
        event_free(m->timer);
    }
    lg_free(m);
}

int lg_curlm_add(lg_curlm *m, CURL *easy, lg_curlm_done_cb cb, void *user_data)
{
    struct curlm_xfer *x = lg_calloc(1, sizeof(*x));
    if (x == NULL) {
        return LG_ERR_NOMEM;
    }
    x->easy = easy;
    x->cb = cb;
    x->user_data = user_data;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (void *)x);
    CURLMcode mc = curl_multi_add_handle(m->multi, easy);
    if (mc != CURLM_OK) {
        lg_log(LG_LOG_ERROR, NULL, "add_failed", "curl: %s", curl_multi_strerror(mc));
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        lg_free(x);
        return mc == CURLM_OUT_OF_MEMORY ? LG_ERR_NOMEM : LG_ERR_INTERNAL;
    }
    x->next = m->xfers;
    if (m->xfers != NULL) {
        m->xfers->prev = x;
    }
    m->xfers = x;
    m->count++;
    return LG_OK;
}

int lg_curlm_remove(lg_curlm *m, CURL *easy)
{
    struct curlm_xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    if (x == NULL) {
        return LG_ERR_NOT_FOUND;
    }
    curl_multi_remove_handle(m->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    curlm_unlink(m, x);
    lg_free(x);
    return LG_OK;
}

size_t lg_curlm_count(const lg_curlm *m)
{
    return m->count;
}
