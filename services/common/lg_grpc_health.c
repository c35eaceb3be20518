/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_grpc_health.h"

#include <stddef.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "grpc/health/v1/health.pb-c.h"
#include "lg_err.h"
#include "lg_limits.h"
#define LG_LOG_MODULE "grpc_health"
#include "lg_log.h"
#include "lg_mem.h"

struct health_service {
    char *name; /* lg_malloc'd */
    enum lg_grpc_health_status status;
};

/* One Watch call (heap; freed in on_close). */
struct health_watch {
    lg_grpc_health *h;
    lg_grpc_call *call;
    struct health_watch *prev, *next;
    const char *service; /* in the call arena */
    int sent;            /* last status sent, -1 = none */
    bool blocked;        /* the last send got LG_ERR_AGAIN */
};

struct lg_grpc_health {
    lg_grpc_server *srv;
    struct health_service services[LG_GRPC_HEALTH_MAX_SERVICES];
    size_t nservices;
    struct health_watch *watches;
};

static ptrdiff_t health_index(const lg_grpc_health *h, const char *name)
{
    for (size_t i = 0; i < h->nservices; i++) {
        if (strcmp(h->services[i].name, name) == 0) {
            return (ptrdiff_t)i;
        }
    }
    return -1;
}

enum lg_grpc_health_status lg_grpc_health_get_status(const lg_grpc_health *h, const char *service)
{
    ptrdiff_t i = health_index(h, service ? service : "");
    return i >= 0 ? h->services[i].status : LG_GRPC_HEALTH_SERVICE_UNKNOWN;
}

/* Sends the current status to |w| if it changed. */
static void health_watch_push(struct health_watch *w)
{
    int status = (int)lg_grpc_health_get_status(w->h, w->service);
    if (status == w->sent) {
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    int rc = lg_grpc_call_send_pb(w->call, &resp.base);
    if (rc == LG_OK) {
        w->sent = status;
        w->blocked = false;
    } else if (rc == LG_ERR_AGAIN) {
        w->blocked = true; /* the newest status goes out from on_writable */
    }
}

int lg_grpc_health_set_status(lg_grpc_health *h, const char *service,
                              enum lg_grpc_health_status status)
{
    if (!service || strlen(service) > LG_GRPC_HEALTH_MAX_NAME_BYTES ||
        (int)status < LG_GRPC_HEALTH_UNKNOWN || status > LG_GRPC_HEALTH_NOT_SERVING) {
        return LG_ERR_INVALID;
    }
    ptrdiff_t idx = health_index(h, service);
    struct health_service *s = idx >= 0 ? &h->services[idx] : NULL;
    if (!s) {
        if (h->nservices >= LG_GRPC_HEALTH_MAX_SERVICES) {
            return LG_ERR_EXHAUSTED;
        }
        char *name = lg_strdup(service);
        if (!name) {
            return LG_ERR_NOMEM;
        }
        s = &h->services[h->nservices++];
        s->name = name;
    }
    s->status = status;
    for (struct health_watch *w = h->watches; w; w = w->next) {
        if (strcmp(w->service, service) == 0) {
            health_watch_push(w);
        }
    }
    return LG_OK;
}

void lg_grpc_health_set_all(lg_grpc_health *h, enum lg_grpc_health_status status)
{
    for (size_t i = 0; i < h->nservices; i++) {
        h->services[i].status = status;
    }
    for (struct health_watch *w = h->watches; w; w = w->next) {
        health_watch_push(w);
    }
}

static Grpc__Health__V1__HealthCheckRequest *health_unpack(lg_grpc_call *call, const uint8_t *msg,
                                                           size_t len)
{
    ProtobufCAllocator a;
    lg_arena_protobuf_allocator(lg_grpc_call_get_arena(call), &a);
    Grpc__Health__V1__HealthCheckRequest *req =
        grpc__health__v1__health_check_request__unpack(&a, len, msg);
    if (!req) {
        lg_grpc_call_finish(call, LG_GRPC_INTERNAL, "cannot parse HealthCheckRequest");
    }
    return req;
}

static void health_check_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len,
                                    void *user_data)
{
    lg_grpc_health *h = user_data;
    Grpc__Health__V1__HealthCheckRequest *req = health_unpack(call, msg, len);
    if (!req) {
        return;
    }
    ptrdiff_t i = health_index(h, req->service ? req->service : "");
    if (i < 0) {
        lg_grpc_call_finish(call, LG_GRPC_NOT_FOUND, "unknown service");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)h->services[i].status;
    if (lg_grpc_call_send_pb(call, &resp.base) == LG_OK) {
        lg_grpc_call_finish(call, LG_GRPC_OK, NULL);
    }
}

static void health_check_on_close(lg_grpc_call *call, enum lg_grpc_close_reason reason,
                                  void *user_data)
{
    (void)call;
    (void)reason;
    (void)user_data;
}

static int health_watch_on_start(lg_grpc_call *call, void *user_data)
{
    lg_grpc_health *h = user_data;
    struct health_watch *w = lg_calloc(1, sizeof(*w));
    if (!w) {
        return LG_ERR_NOMEM;
    }
    w->h = h;
    w->call = call;
    w->sent = -1;
    w->service = "";
    w->next = h->watches;
    if (h->watches) {
        h->watches->prev = w;
    }
    h->watches = w;
    lg_grpc_call_set_user_data(call, w);
    return LG_OK;
}

static void health_watch_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len,
                                    void *user_data)
{
    struct health_watch *w = user_data;
    Grpc__Health__V1__HealthCheckRequest *req = health_unpack(call, msg, len);
    if (!req) {
        return;
    }
    w->service = req->service ? req->service : ""; /* arena memory, lives with the call */
    health_watch_push(w);
}

static void health_watch_on_writable(lg_grpc_call *call, void *user_data)
{
    (void)call;
    struct health_watch *w = user_data;
    if (w->blocked) {
        health_watch_push(w);
    }
}

static void health_watch_on_close(lg_grpc_call *call, enum lg_grpc_close_reason reason,
                                  void *user_data)
{
    (void)call;
    (void)reason;
    struct health_watch *w = user_data;
    if (w->prev) {
        w->prev->next = w->next;
    } else {
        w->h->watches = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    lg_free(w);
}

static void health_on_shutdown(lg_grpc_server *srv, void *user_data)
{
    (void)srv;
    lg_grpc_health_set_all(user_data, LG_GRPC_HEALTH_NOT_SERVING);
}

int lg_grpc_health_new(lg_grpc_health **out, lg_grpc_server *srv)
{
    static const struct lg_grpc_method_cbs check = {NULL, health_check_on_message, NULL, NULL,
                                                    health_check_on_close};
    static const struct lg_grpc_method_cbs watch = {health_watch_on_start, health_watch_on_message,
                                                    NULL, health_watch_on_writable,
                                                    health_watch_on_close};
    lg_grpc_health *h = lg_calloc(1, sizeof(*h));
    if (!h) {
        return LG_ERR_NOMEM;
    }
    h->srv = srv;
    int rc = lg_grpc_health_set_status(h, "", LG_GRPC_HEALTH_SERVING);
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(srv, "/grpc.health.v1.Health/Check", LG_GRPC_UNARY, &check, h);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(srv, "/grpc.health.v1.Health/Watch", LG_GRPC_SERVER_STREAMING,
                                     &watch, h);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_server_add_shutdown_hook(srv, health_on_shutdown, h);
    }
    if (rc != LG_OK) {
        lg_grpc_health_free(h);
        return rc;
    }
    *out = h;
    return LG_OK;
}

void lg_grpc_health_free(lg_grpc_health *h)
{
    if (!h) {
        return;
    }
    for (size_t i = 0; i < h->nservices; i++) {
        lg_free(h->services[i].name);
    }
    lg_free(h);
}
