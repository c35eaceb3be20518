/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_admin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "lg_buf.h"
#include "lg_cfg.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_loop.h"
#include "lg_mem.h"

/* "[" + an IPv6 literal + "]:" + 5 port digits + NUL. */
#define ADMIN_ADDRESS_BYTES (INET6_ADDRSTRLEN + 8)

#define ADMIN_MS_PER_S 1000
#define ADMIN_US_PER_MS 1000

_Static_assert(LG_ADMIN_TIMEOUT_MS > 0, "admin connections need a timeout");

struct lg_admin {
    struct event_base *base;           /* borrowed */
    struct evhttp *http;               /* owned; NULL when no listener was asked for */
    lg_metrics *metrics;               /* borrowed; NULL serves an empty /metrics */
    lg_admin_ready_cb ready_cb;        /* NULL = flag only */
    void *ready_user_data;             /* passed to ready_cb */
    bool ready;                        /* lg_admin_set_ready; starts true */
    char address[ADMIN_ADDRESS_BYTES]; /* bound "HOST:PORT", "" without a listener */
};

/* ---- replies ---- */

static void admin_reply(struct evhttp_request *req, int code, const char *reason,
                        const char *content_type, const void *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", content_type);
    /* Probes and scrapes must see the live state, never a cached copy. */
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    if (len > 0 && evbuffer_add(b, body, len) != 0) {
        evbuffer_free(b);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void admin_reply_json(struct evhttp_request *req, int code, const char *reason,
                             const char *json)
{
    admin_reply(req, code, reason, "application/json", json, strlen(json));
}

/* A JSON error body in the shape the SSE edge uses: {"error":{"code":..,"message":..}}.
 * |code| and |message| are constants of this file (no escaping needed). */
static void admin_reply_error(struct evhttp_request *req, int status, const char *reason,
                              const char *code, const char *message)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                     code, message);
    if (n < 0 || (size_t)n >= sizeof(body)) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    admin_reply_json(req, status, reason, body);
}

static void admin_serve_metrics(lg_admin *a, struct evhttp_request *req)
{
    struct lg_buf out;
    lg_buf_init(&out, LG_METRICS_MAX_RENDER_BYTES);
    int rc = a->metrics != NULL ? lg_metrics_render(a->metrics, &out) : LG_OK;
    if (rc != LG_OK) {
        /* Never a truncated body: Prometheus would store a partial scrape as truth. */
        lg_buf_deinit(&out);
        admin_reply_error(req, HTTP_SERVUNAVAIL, "Service Unavailable", "metrics_unavailable",
                          lg_err_str(rc));
        return;
    }
    admin_reply(req, HTTP_OK, "OK", LG_METRICS_CONTENT_TYPE, out.data, out.len);
    lg_buf_deinit(&out);
}

/* ---- routing ---- */

enum admin_path { ADMIN_PATH_NONE, ADMIN_PATH_HEALTHZ, ADMIN_PATH_READYZ, ADMIN_PATH_METRICS };

static enum admin_path admin_route(struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL) {
        return ADMIN_PATH_NONE;
    }
    if (strcmp(path, "/healthz") == 0) {
        return ADMIN_PATH_HEALTHZ;
    }
    if (strcmp(path, "/readyz") == 0) {
        return ADMIN_PATH_READYZ;
    }
    if (strcmp(path, "/metrics") == 0) {
        return ADMIN_PATH_METRICS;
    }
    return ADMIN_PATH_NONE;
}

int lg_admin_serve(lg_admin *a, struct evhttp_request *req)
{
    if (a == NULL || req == NULL) {
        return LG_ERR_INVALID;
    }
    enum admin_path p = admin_route(req);
    if (p == ADMIN_PATH_NONE) {
        return LG_ERR_NOT_FOUND;
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        admin_reply_error(req, HTTP_BADMETHOD, "Method Not Allowed", "method_not_allowed",
                          "admin paths accept GET and HEAD");
        return LG_OK;
    }
    switch (p) {
    case ADMIN_PATH_HEALTHZ:
        /* Answering at all proves the loop runs: that is what liveness means here. */
        admin_reply_json(req, HTTP_OK, "OK", "{\"status\":\"ok\"}");
        break;
    case ADMIN_PATH_READYZ:
        if (lg_admin_is_ready(a)) {
            admin_reply_json(req, HTTP_OK, "OK", "{\"status\":\"ready\"}");
        } else {
            admin_reply_json(req, HTTP_SERVUNAVAIL, "Service Unavailable",
                             "{\"status\":\"not_ready\"}");
        }
        break;
    case ADMIN_PATH_METRICS:
        admin_serve_metrics(a, req);
        break;
    case ADMIN_PATH_NONE:
        break;
    }
    return LG_OK;
}

/* The own listener's catch-all: admin paths, else a JSON 404. */
static void admin_http_cb(struct evhttp_request *req, void *user_data)
{
    lg_admin *a = user_data;
    if (lg_admin_serve(a, req) == LG_ERR_NOT_FOUND) {
        admin_reply_error(req, HTTP_NOTFOUND, "Not Found", "not_found",
                          "no such path; try /healthz, /readyz or /metrics");
    }
}

/* ---- lifecycle ---- */

/* Formats the bound address of |fd| into a->address. */
static int admin_record_address(lg_admin *a, evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        return LG_ERR_IO;
    }
    char host[INET6_ADDRSTRLEN];
    const void *addr;
    uint16_t port;
    bool v6 = ss.ss_family == AF_INET6;
    if (v6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        addr = &s6->sin6_addr;
        port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        addr = &s4->sin_addr;
        port = ntohs(s4->sin_port);
    }
    if (inet_ntop(ss.ss_family, addr, host, sizeof(host)) == NULL) {
        return LG_ERR_IO;
    }
    int n = snprintf(a->address, sizeof(a->address), v6 ? "[%s]:%u" : "%s:%u", host,
                     (unsigned)port);
    if (n < 0 || (size_t)n >= sizeof(a->address)) {
        return LG_ERR_INTERNAL;
    }
    return LG_OK;
}

/* Creates a->http with the admin limits and binds |listen|. */
static int admin_listen(lg_admin *a, const char *listen, int timeout_ms)
{
    char host[ADMIN_ADDRESS_BYTES];
    uint16_t port;
    if (lg_cfg_split_hostport(listen, host, sizeof(host), &port) != LG_OK) {
        return LG_ERR_INVALID;
    }
    a->http = evhttp_new(a->base);
    if (a->http == NULL) {
        return LG_ERR_NOMEM;
    }
    evhttp_set_max_headers_size(a->http, LG_ADMIN_MAX_HEADER_BYTES);
    evhttp_set_max_body_size(a->http, LG_ADMIN_MAX_BODY_BYTES);
    int ms = timeout_ms > 0 && timeout_ms < LG_ADMIN_TIMEOUT_MS ? timeout_ms : LG_ADMIN_TIMEOUT_MS;
    struct timeval tv = {.tv_sec = ms / ADMIN_MS_PER_S,
                         .tv_usec = (ms % ADMIN_MS_PER_S) * ADMIN_US_PER_MS};
    evhttp_set_timeout_tv(a->http, &tv);
    /* Every method reaches the callback, which answers 405 itself with a JSON body. */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(a->http, admin_http_cb, a);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(a->http, host, port);
    if (sock == NULL) {
        return LG_ERR_IO;
    }
    lg_loop_pause_accept_on_exhaustion(evhttp_bound_socket_get_listener(sock));
    return admin_record_address(a, evhttp_bound_socket_get_fd(sock));
}

int lg_admin_new(lg_admin **out, struct event_base *base, const struct lg_admin_opts *opts)
{
    if (out == NULL || base == NULL || opts == NULL) {
        return LG_ERR_INVALID;
    }
    lg_admin *a = lg_calloc(1, sizeof(*a));
    if (a == NULL) {
        return LG_ERR_NOMEM;
    }
    a->base = base;
    a->metrics = opts->metrics;
    a->ready_cb = opts->ready_cb;
    a->ready_user_data = opts->ready_user_data;
    a->ready = true;
    if (opts->listen != NULL) {
        int rc = admin_listen(a, opts->listen, opts->timeout_ms);
        if (rc != LG_OK) {
            lg_admin_free(a);
            return rc;
        }
    }
    *out = a;
    return LG_OK;
}

void lg_admin_free(lg_admin *a)
{
    if (a == NULL) {
        return;
    }
    if (a->http != NULL) {
        evhttp_free(a->http); /* closes the listener and every admin connection */
    }
    lg_free(a);
}

/* ---- operations and accessors ---- */

void lg_admin_set_ready(lg_admin *a, bool ready)
{
    if (a != NULL) {
        a->ready = ready;
    }
}

bool lg_admin_is_ready(const lg_admin *a)
{
    if (a == NULL || !a->ready) {
        return false;
    }
    return a->ready_cb == NULL || a->ready_cb(a->ready_user_data);
}

const char *lg_admin_get_address(const lg_admin *a)
{
    return a != NULL ? a->address : "";
}
