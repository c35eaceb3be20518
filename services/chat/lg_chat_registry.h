/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chat_registry: live streams by id, with owner checks and deadlines.
 *
 * Each entry has an unguessable id (128 bits from getrandom(2), base64url without padding:
 * 22 characters), an owner (user id), an opaque value and a deadline on the monotonic clock
 * (0 = none). The stream logic sets deadlines (end of grace after the last client left, end
 * of retention after the stream finished); lg_chat_registry_expire hands due entries back to
 * it, which either frees them or sets a later deadline. The registry itself never reads a
 * clock, so it is unit-tested with explicit times.
 *
 * Thread: one registry per loop thread; not thread-safe.
 * Ownership: owner strings are copied; values are borrowed (the caller frees a value after
 * removing it, or from the expire callback when it returns 0).
 * Stream ids may carry the owning node ("n<digits>_" before the random part) so that any
 * adapter replica can route a resume to the pod holding the replay buffer; the prefix is
 * not secret, the 128 random bits are what make an id unguessable.
 *
 * Errors: LG_ERR_EXHAUSTED (registry full), LG_ERR_NOT_FOUND (unknown or expired id),
 * LG_ERR_PERMISSION (another owner), LG_ERR_INVALID (bad owner), LG_ERR_NOMEM, LG_ERR_IO
 * (getrandom failed).
 */
#ifndef LG_CHAT_REGISTRY_H
#define LG_CHAT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of a stream id (22 base64url characters for 16 random bytes), without the NUL. */
#define LG_CHAT_REGISTRY_ID_LEN 22
/* Node prefix of a stream id: "n" + 1 to LG_CHAT_REGISTRY_NODE_MAX_DIGITS decimal digits +
 * "_" (docs/operations.md 6.2). The digits name the StatefulSet ordinal of the pod that owns
 * the stream, so an adapter can dial that pod for ResumeStream/CancelStream. Five digits are
 * far more pods than a StatefulSet runs; a longer prefix is refused at startup. */
#define LG_CHAT_REGISTRY_NODE_MAX_DIGITS 5
#define LG_CHAT_REGISTRY_PREFIX_MAX_LEN  (LG_CHAT_REGISTRY_NODE_MAX_DIGITS + 2)
/* Longest stream id the registry hands out: node prefix + random part, without the NUL. */
#define LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN                                                         \
    (LG_CHAT_REGISTRY_PREFIX_MAX_LEN + LG_CHAT_REGISTRY_ID_LEN)

typedef struct lg_chat_registry lg_chat_registry;

/* Called by lg_chat_registry_expire for an entry whose deadline is <= now. Returns the new
 * deadline (> now keeps the entry; 0 removes it, after which the callee owns |value|). The
 * callback must not add or remove registry entries. */
typedef uint64_t (*lg_chat_registry_expire_cb)(const char *id, void *value, uint64_t now_ms,
                                               void *user_data);

/* Creates a registry for at most |max_entries| entries. Returned owned. */
int lg_chat_registry_new(lg_chat_registry **out, size_t max_entries);
/* Frees the registry (not the values: remove or expire them first). Accepts NULL. */
void lg_chat_registry_free(lg_chat_registry *reg);

/* Sets the node this registry's ids name: |node| is 1 to LG_CHAT_REGISTRY_NODE_MAX_DIGITS
 * decimal digits without a leading zero ("0", "1", ... "99999"), or NULL/"" for none (ids
 * are then the bare random part). Ids added afterwards are "n<node>_<random>". LG_OK or
 * LG_ERR_INVALID (|node| is not such a number; the registry keeps its previous node). */
int lg_chat_registry_set_node(lg_chat_registry *reg, const char *node);
/* True when |node| is a valid node for lg_chat_registry_set_node (NULL and "" are not). */
bool lg_chat_registry_is_node(const char *node);

/* Reads the node prefix of |id| (NUL-terminated) into |node_out| (NUL-terminated, at most
 * LG_CHAT_REGISTRY_NODE_MAX_DIGITS + 1 bytes). LG_OK; LG_ERR_NOT_FOUND when |id| has no
 * prefix (|node_out| is then ""); LG_ERR_INVALID when |id| is not a well-formed stream id
 * (random part not 22 base64url characters, or a prefix other than n<digits>_). */
int lg_chat_registry_parse_node(const char *id,
                                char node_out[LG_CHAT_REGISTRY_NODE_MAX_DIGITS + 1]);

/* Adds |value| owned by |owner| under a fresh id (node prefix, if set, + random part) written
 * to |id_out| (NUL-terminated, LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1 bytes). */
int lg_chat_registry_add(lg_chat_registry *reg, const char *owner, void *value,
                         char id_out[LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1]);

/* Looks |id| up for |user|: LG_OK with |*value_out|, LG_ERR_NOT_FOUND, or LG_ERR_PERMISSION
 * when the entry belongs to someone else. */
int lg_chat_registry_lookup(const lg_chat_registry *reg, const char *id, const char *user,
                            void **value_out);

/* Sets the deadline of |id| (0 = none). LG_OK or LG_ERR_NOT_FOUND. */
int lg_chat_registry_set_deadline(lg_chat_registry *reg, const char *id, uint64_t deadline_ms);

/* Removes |id|. LG_OK or LG_ERR_NOT_FOUND. The caller owns the value again. */
int lg_chat_registry_remove(lg_chat_registry *reg, const char *id);

/* Calls |cb| for every entry whose deadline is set and <= |now_ms| (see the callback).
 * O(entries): called every LG_CHAT_SWEEP_MS, this stays cheap at LG_CHAT_MAX_STREAMS; a
 * timer heap would be the next step. Returns the number of entries removed. */
size_t lg_chat_registry_expire(lg_chat_registry *reg, uint64_t now_ms,
                               lg_chat_registry_expire_cb cb, void *user_data);

/* Entries held. */
size_t lg_chat_registry_count(const lg_chat_registry *reg);

/* Writes a fresh random id into |id_out| (exposed for request ids). LG_OK or LG_ERR_IO. */
int lg_chat_registry_new_id(char id_out[LG_CHAT_REGISTRY_ID_LEN + 1]);

#endif /* LG_CHAT_REGISTRY_H */
