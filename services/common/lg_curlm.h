/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_curlm: libcurl's multi-socket interface driven by a libevent loop (the pattern of
 * curl's docs/examples/hiperfifo.c): CURLMOPT_SOCKETFUNCTION turns curl's socket interest
 * into libevent events, CURLMOPT_TIMERFUNCTION into one libevent timer, and both call
 * curl_multi_socket_action. Any number of transfers share the loop thread; no thread per
 * request, no blocking call on the loop (DNS uses curl's threaded resolver).
 *
 * Thread: everything on the thread running |base|. Callbacks fire from the loop.
 * Ownership: the caller creates and owns each easy handle and its options; lg_curlm borrows
 * it from lg_curlm_add until the done callback returns or lg_curlm_remove. lg_curlm uses the
 * handle's CURLOPT_PRIVATE: callers must not set it.
 * Re-entry: do not call lg_curlm_remove from inside a curl callback of that transfer
 * (write/header/progress): make the callback fail instead (e.g. return 0 from the write
 * callback), and the done callback reports the abort. The done callback may free the easy
 * handle, add new transfers and remove others.
 * Errors: LG_ERR_NOMEM, LG_ERR_INTERNAL (curl refused: logged once with curl's text),
 * LG_ERR_NOT_FOUND (remove of a handle not added).
 */
#ifndef LG_CURLM_H
#define LG_CURLM_H

#include <stddef.h>

#include <curl/curl.h>

struct event_base;

typedef struct lg_curlm lg_curlm;

/* The transfer |easy| finished with |result| (CURLE_OK, or why it failed). It has been
 * removed from the multi handle already; the callee owns |easy| again. */
typedef void (*lg_curlm_done_cb)(CURL *easy, CURLcode result, void *user_data);

/* Creates the multi handle on |base| (borrowed, must outlive it). Call curl_global_init once
 * at startup before. Returned owned. */
int lg_curlm_new(lg_curlm **out, struct event_base *base);
/* Aborts every transfer still added (no done callbacks) and frees |m|. Accepts NULL. */
void lg_curlm_free(lg_curlm *m);

/* Starts |easy| (borrowed, see above); |cb| fires once when it ends. LG_OK, LG_ERR_NOMEM or
 * LG_ERR_INTERNAL. On error nothing was started and no callback will fire. */
int lg_curlm_add(lg_curlm *m, CURL *easy, lg_curlm_done_cb cb, void *user_data);
/* Aborts |easy| now; its done callback never fires. LG_OK or LG_ERR_NOT_FOUND. */
int lg_curlm_remove(lg_curlm *m, CURL *easy);

/* Transfers currently added. */
size_t lg_curlm_count(const lg_curlm *m);

#endif /* LG_CURLM_H */
