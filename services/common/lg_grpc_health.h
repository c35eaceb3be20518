/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_grpc_health: the standard gRPC health service (grpc.health.v1.Health, grpc
 * doc/health-checking.md) on an lg_grpc_server: Check (unary) and Watch (server streaming).
 *
 * The empty service name "" stands for the whole server and starts SERVING. Check on an
 * unknown name answers NOT_FOUND; Watch on an unknown name sends SERVICE_UNKNOWN and waits for
 * the name to appear. Every status change is pushed to the matching watchers (the newest
 * status wins when a watcher cannot keep up). When the server begins a graceful shutdown,
 * every service turns NOT_SERVING, so load balancers stop sending new calls.
 *
 * Thread: the server's loop thread only.
 * Ownership: the health object registers its methods on |srv| (borrowed; must outlive it)
 * and must be freed after lg_grpc_server_free (the server ends the Watch calls first).
 * Errors: LG_ERR_INVALID, LG_ERR_NOMEM, LG_ERR_EXHAUSTED (too many service names), and what
 * lg_grpc_server_register returns.
 */
#ifndef LG_GRPC_HEALTH_H
#define LG_GRPC_HEALTH_H

#include "lg_grpc_server.h"

/* grpc.health.v1.HealthCheckResponse.ServingStatus values. */
enum lg_grpc_health_status {
    LG_GRPC_HEALTH_UNKNOWN = 0,
    LG_GRPC_HEALTH_SERVING = 1,
    LG_GRPC_HEALTH_NOT_SERVING = 2,
    LG_GRPC_HEALTH_SERVICE_UNKNOWN = 3, /* only sent by Watch */
};

typedef struct lg_grpc_health lg_grpc_health;

/* Registers /grpc.health.v1.Health/Check and /Watch on |srv| and a shutdown hook that turns
 * every service NOT_SERVING. Returns LG_OK and |*out| (returned owned, free with
 * lg_grpc_health_free after the server), or an error from registration / LG_ERR_NOMEM. A
 * failure is a startup failure: methods already registered stay on |srv|, so free the server
 * (registration cannot be undone). */
int lg_grpc_health_new(lg_grpc_health **out, lg_grpc_server *srv);
/* Frees |h| (after lg_grpc_server_free). Accepts NULL. */
void lg_grpc_health_free(lg_grpc_health *h);

/* Sets the status of |service| (copied; "" = whole server) and notifies its watchers.
 * Returns LG_OK, LG_ERR_INVALID (status out of range, name too long), LG_ERR_EXHAUSTED
 * (more than LG_GRPC_HEALTH_MAX_SERVICES names) or LG_ERR_NOMEM. */
int lg_grpc_health_set_status(lg_grpc_health *h, const char *service,
                              enum lg_grpc_health_status status);
/* Sets every known service (including "") to |status|. */
void lg_grpc_health_set_all(lg_grpc_health *h, enum lg_grpc_health_status status);

/* Status of |service|, or LG_GRPC_HEALTH_SERVICE_UNKNOWN when it was never set. */
enum lg_grpc_health_status lg_grpc_health_get_status(const lg_grpc_health *h, const char *service);

#endif /* LG_GRPC_HEALTH_H */
