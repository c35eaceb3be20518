/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_limits: every limit and tunable default of llmgate, in one place, named with its unit.
 * Each says why this value and what happens when it is hit. Configuration may lower a
 * compiled hard maximum, never raise it (checked at load time by the owner of the limit).
 * Each area keeps its own section; add new limits to your area's section.
 */
#ifndef LG_LIMITS_H
#define LG_LIMITS_H

/* ---- common: logging ----------------------------------------------------------------- */

/* One log line's formatted message. Longer messages are truncated, never split: a log line
 * is one event (STYLE.md "Logging"). */
#define LG_LOG_MAX_LINE_BYTES 2048

/* ---- common: configuration ------------------------------------------------------------ */

/* Longest flag or environment value accepted; longer values are refused with a message
 * naming the key, so a pasted file cannot become a flag by accident. */
#define LG_CFG_MAX_VALUE_BYTES 4096

/* ---- common: metrics and admin -------------------------------------------------------- */

/* Series per metric family. A label fed from unbounded input (a user id, a raw path) would
 * otherwise grow memory and scrape size forever; past the cap new label tuples are refused
 * (LG_ERR_TOO_LARGE, counted in lg_metrics_get_refused) and their updates are dropped. */
#define LG_METRICS_MAX_SERIES_PER_FAMILY 1000
/* Label names per family: the metrics llmgate exposes use at most three or four. */
#define LG_METRICS_MAX_LABELS 8
/* Histogram buckets per family (without +Inf): each bucket costs one line per series. */
#define LG_METRICS_MAX_BUCKETS 32
/* One label value: model names and status codes fit; a longer value is refused. */
#define LG_METRICS_MAX_LABEL_VALUE_BYTES 256
/* Rendered /metrics text. 1000 series x ~40 families of short lines fits; past it the
 * scrape fails with 503 rather than serving a truncated body Prometheus would misread. */
#define LG_METRICS_MAX_RENDER_BYTES (8u * 1024u * 1024u)

/* Admin request headers: probes and Prometheus send a few hundred bytes. */
#define LG_ADMIN_MAX_HEADER_BYTES 8192
/* Admin request bodies: every admin path is a GET; a body is never needed. */
#define LG_ADMIN_MAX_BODY_BYTES 1024
/* Idle/read/write timeout of an admin connection: a stuck scraper or probe connection is
 * closed after this instead of holding a socket forever. Kubelet probes time out at 1 s by
 * default and Prometheus at 10 s, so 30 s never cuts off a healthy client. */
#define LG_ADMIN_TIMEOUT_MS 30000

/* ---- common: gRPC runtime ------------------------------------------------------------- */

/* gRPC codec and client (lg_grpc_frame, lg_grpc_client). */

/* Default receive limit for one gRPC message, as grpc core's
 * GRPC_DEFAULT_MAX_RECV_MESSAGE_LENGTH: a peer declaring more gets RESOURCE_EXHAUSTED from
 * the prefix alone, before any payload is buffered. Decompressed size is capped the same. */
#define LG_GRPC_FRAME_DEFAULT_MAX_MESSAGE_BYTES (4u * 1024u * 1024u)
/* zlib output is produced in steps of at most this size, each within the output cap, so a
 * gunzip stops at its cap instead of inflating a bomb, and buffers grow in small steps. */
#define LG_GRPC_FRAME_ZLIB_CHUNK_BYTES (16u * 1024u)

/* Client: hard maximum of opts.max_recv_msg_bytes (config can only tighten); the default
 * is LG_GRPC_FRAME_DEFAULT_MAX_MESSAGE_BYTES. 64 MiB keeps one call's worst-case memory
 * bounded while allowing a caller to raise the 4 MiB default for bulk responses. */
#define LG_GRPC_CLIENT_MAX_RECV_MSG_BYTES_HARD (64u * 1024u * 1024u)
/* Calls waiting for a connection or a stream slot. Past it lg_grpc_client_start returns
 * LG_ERR_EXHAUSTED: a stalled peer must not let the queue (and its request copies) grow
 * without bound. */
#define LG_GRPC_CLIENT_MAX_QUEUED_CALLS 4096u
/* A dial (TCP connect) slower than this fails and backs off; grpc's min connect timeout
 * (doc/connection-backoff.md MIN_CONNECT_TIMEOUT) is 20 s. */
#define LG_GRPC_CLIENT_CONNECT_TIMEOUT_MS 20000u
/* Redial backoff after failed dials, as grpc doc/connection-backoff.md: 1 s initial,
 * x1.6 per failure, capped at 120 s, +-20 % jitter so many clients do not redial in step. */
#define LG_GRPC_CLIENT_BACKOFF_INITIAL_MS 1000u
#define LG_GRPC_CLIENT_BACKOFF_MAX_MS 120000u
#define LG_GRPC_CLIENT_BACKOFF_MULT_NUM 16u
#define LG_GRPC_CLIENT_BACKOFF_MULT_DEN 10u
#define LG_GRPC_CLIENT_BACKOFF_JITTER_PCT 20u
/* Receive windows we announce. 1 MiB per stream lets a large response flow without a
 * WINDOW_UPDATE round trip per 64 KiB; 16 MiB per connection lets ~16 streams do so at once.
 * They bound what the server may send before we read it; nghttp2 consumes automatically as
 * callbacks return, so memory is bounded by them plus the read watermark below. */
#define LG_GRPC_CLIENT_STREAM_WINDOW_BYTES (1u * 1024u * 1024u)
#define LG_GRPC_CLIENT_CONN_WINDOW_BYTES (16u * 1024u * 1024u)
/* bufferevent read high watermark: libevent stops reading the socket past this many
 * unprocessed bytes (STYLE.md: every bufferevent gets one; the default 0 is unlimited). */
#define LG_GRPC_CLIENT_READ_HIGH_BYTES (256u * 1024u)
/* Output backpressure: nghttp2's send callback returns WOULDBLOCK once this many bytes wait
 * in the socket's output buffer, and sending resumes when it drains to half. */
#define LG_GRPC_CLIENT_OUTBUF_HIGH_BYTES (64u * 1024u)
/* Response header list (initial or trailing metadata) per call, counted as HTTP/2 does
 * (name + value + 32 per field). Announced as SETTINGS_MAX_HEADER_LIST_SIZE; a response
 * past it ends the call RESOURCE_EXHAUSTED. Also caps the request metadata we send. 16 KiB
 * is twice the 8 KiB the gRPC spec suggests. */
#define LG_GRPC_CLIENT_MAX_HEADER_LIST_BYTES (16u * 1024u)
/* HPACK's per-field overhead in header list size accounting (RFC 7540 6.5.2). */
#define LG_GRPC_CLIENT_HEADER_FIELD_OVERHEAD_BYTES 32u
/* Keepalive: time to wait for a PING ACK before the connection counts as dead (grpc
 * doc/keepalive.md KEEPALIVE_TIMEOUT default, 20 s). Keepalive itself is off by default. */
#define LG_GRPC_CLIENT_KEEPALIVE_TIMEOUT_MS 20000u

/* -- gRPC server (lg_grpc_server, lg_loop) -- */

/* Default largest request message, decompressed (grpc core's GRPC_DEFAULT_MAX_RECV_MESSAGE_
 * LENGTH). Over it the call ends RESOURCE_EXHAUSTED before the payload is buffered. Hard
 * maximum: 64 MiB (config may only lower it). */
#define LG_GRPC_SERVER_MAX_RECV_MSG_BYTES_DEFAULT (4u * 1024u * 1024u)
#define LG_GRPC_SERVER_MAX_RECV_MSG_BYTES_MAX (64u * 1024u * 1024u)
/* SETTINGS_MAX_CONCURRENT_STREAMS. 100 is what grpc-go and the nghttp2 tutorial use; a
 * client opening more gets RST_STREAM(REFUSED_STREAM) from nghttp2 for the extra ones. Each
 * stream costs at most its send queue plus one reassembled message. */
#define LG_GRPC_SERVER_MAX_CONCURRENT_STREAMS 100
#define LG_GRPC_SERVER_MAX_CONCURRENT_STREAMS_MAX 10000
/* SETTINGS_MAX_HEADER_LIST_SIZE, and the cap on one request's decoded header list: 8 KiB as
 * PROTOCOL-HTTP2.md suggests for metadata, doubled for headroom. Past it nghttp2 resets the
 * stream (the call never starts). */
#define LG_GRPC_SERVER_MAX_HEADER_LIST_BYTES (16u * 1024u)
#define LG_GRPC_SERVER_MAX_HEADER_LIST_BYTES_MAX (1024u * 1024u)
/* Request metadata entries kept per call; more is refused as a malformed request. */
#define LG_GRPC_SERVER_MAX_METADATA 64
/* Response metadata bytes (initial plus trailing, after base64) a handler may add. */
#define LG_GRPC_SERVER_MAX_RESPONSE_METADATA_BYTES (16u * 1024u)
/* Flow-control windows we advertise: 1 MiB per stream, 16 MiB per connection, so a 4 MiB
 * request needs few WINDOW_UPDATE round trips; grpc-go starts at 64 KiB and grows by BDP. */
#define LG_GRPC_SERVER_STREAM_WINDOW_BYTES (1024u * 1024u)
#define LG_GRPC_SERVER_CONN_WINDOW_BYTES (16u * 1024u * 1024u)
/* Per-call send queue: lg_grpc_call_send returns LG_ERR_AGAIN while this many bytes wait
 * unsent (a client that stops reading stops us producing, instead of growing memory); the
 * writable callback fires when the queue has drained below half of it. */
#define LG_GRPC_SERVER_CALL_SEND_QUEUE_BYTES (256u * 1024u)
/* Output buffered toward one socket before nghttp2 is told to stop producing frames
 * (NGHTTP2_ERR_WOULDBLOCK, as in nghttp2's examples/libevent-server.c); writing resumes when
 * the kernel has taken it. */
#define LG_GRPC_SERVER_OUTBUF_HIGH_BYTES (64u * 1024u)
/* Read high watermark of a connection's input buffer: at most this much is read from the
 * socket before it is fed to nghttp2, so a fast sender cannot grow our input buffer. */
#define LG_GRPC_SERVER_INBUF_HIGH_BYTES (256u * 1024u)
/* Rounds of (nghttp2 produces up to OUTBUF_HIGH, write to the socket) per event for one
 * connection: 16 x 64 KiB = 1 MiB, then other connections get their turn (redis
 * NET_MAX_WRITES_PER_EVENT). */
#define LG_GRPC_SERVER_MAX_WRITE_ROUNDS 16
/* accept() failing for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM)
 * leaves the connection queued, so the listener would be readable again at once: a hot loop
 * and a log line per turn. Instead accepting pauses this long, then resumes (nginx pauses
 * 500 ms on EMFILE; 100 ms lets a freed descriptor be used soon). Every listener: lg_loop's own
 * and the evhttp ones of llmgate-sse and the admin port (lg_loop_pause_accept_on_exhaustion). */
#define LG_LOOP_ACCEPT_PAUSE_MS 100
/* Input chunks fed to nghttp2 per evbuffer_peek (the input is at most INBUF_HIGH bytes). */
#define LG_GRPC_SERVER_READ_IOVECS 16
/* Connections served at once; more are accepted and closed at once (file descriptors and
 * per-connection buffers are the cost). */
#define LG_GRPC_SERVER_MAX_CONNECTIONS 10000
/* Request bytes one connection may hold at once across its calls (partial messages being
 * reassembled, unary requests waiting for END_STREAM). A call whose data would pass it fails
 * RESOURCE_EXHAUSTED: without it one connection could pin max_concurrent_streams x
 * max_recv_msg_bytes (400 MiB). 64 MiB still lets 16 calls upload 4 MiB messages at once. */
#define LG_GRPC_SERVER_CONN_RECV_HELD_BYTES (64u * 1024u * 1024u)
/* Listen addresses one server may have (e.g. an IPv4 and an IPv6 address); a fifth
 * lg_grpc_server_listen returns LG_ERR_EXHAUSTED. */
#define LG_GRPC_SERVER_MAX_LISTENERS 4
/* Listen backlog. */
#define LG_GRPC_SERVER_LISTEN_BACKLOG 1024
/* Keepalive (grpc doc/keepalive.md server defaults): PING after 2 h idle, close if no ack in
 * 20 s; client PINGs closer than 5 min apart without calls are strikes, and after 2 strikes
 * the connection gets GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"). */
#define LG_GRPC_SERVER_KEEPALIVE_TIME_MS (2u * 3600u * 1000u)
#define LG_GRPC_SERVER_KEEPALIVE_TIMEOUT_MS 20000u
#define LG_GRPC_SERVER_MIN_PING_INTERVAL_MS (5u * 60u * 1000u)
#define LG_GRPC_SERVER_MAX_PING_STRIKES 2u
/* Rapid reset (CVE-2023-44487), our own budget, per connection, as a token bucket: client
 * resets (RST_STREAM) of calls that were about to start (reset in the read that brought their
 * headers: they never start) or running (handler started, not finished) may come
 * LG_GRPC_SERVER_CLIENT_RESET_BURST at once, refilled at LG_GRPC_SERVER_CLIENT_RESETS_PER_SEC.
 * Past it the connection gets GOAWAY(ENHANCE_YOUR_CALM) with the last started stream and
 * closes. A running StreamChat reset is a model call started and billed `cancelled`. A
 * legitimate client cancelling 10% of 500 calls/s resets 50 running calls/s (half the rate); a
 * burst of 100 lets it cancel all of its LG_GRPC_SERVER_MAX_CONCURRENT_STREAMS calls at once.
 * Methods marked with lg_grpc_server_exempt_from_reset_budget (ResumeStream: llmgate-sse cancels
 * one per browser that goes away) are not counted when running. Options may only lower these. */
#define LG_GRPC_SERVER_CLIENT_RESET_BURST 100u
#define LG_GRPC_SERVER_CLIENT_RESETS_PER_SEC 100u
/* nghttp2's own stream reset rate limit (nghttp2_option_set_stream_reset_rate_limit; Debian's
 * 1.52 backport defaults to 1000 and 33/s) counts every RST_STREAM frame and cannot tell a
 * proxy from an attacker: llmgate-sse, whose one connection carries every browser's
 * ResumeStream, resets them at ~2,700/s in integration.faults.clients' reconnect storm, and the
 * defaults (as any low limit) cut that shared connection with GOAWAY(INTERNAL_ERROR), failing
 * every other browser's stream on it. The costly resets are counted above; this stays as a
 * backstop for floods of resets that count nowhere else (of closed or unknown streams), raised
 * well above that storm. */
#define LG_GRPC_SERVER_STREAM_RESET_BURST 10000u
#define LG_GRPC_SERVER_STREAM_RESETS_PER_SEC 10000u
/* Graceful shutdown: in-flight calls get this long to finish after the GOAWAY, then are
 * cancelled. Hard maximum one hour. */
#define LG_GRPC_SERVER_DRAIN_MS 30000u
#define LG_GRPC_SERVER_DRAIN_MS_MAX 3600000u
/* Shutdown hooks (health etc.) a server keeps. */
#define LG_GRPC_MAX_SHUTDOWN_HOOKS 8
/* Methods one server registers (chat + usage + health + reflection + tests fit easily). */
#define LG_GRPC_SERVER_MAX_METHODS 256
/* Per-call arena cap (parsed request, header copies): the request message limit plus room
 * for metadata; an allocation past it fails that call with RESOURCE_EXHAUSTED. */
#define LG_GRPC_SERVER_CALL_ARENA_BYTES (LG_GRPC_SERVER_MAX_RECV_MSG_BYTES_MAX * 3u)
/* Bytes of a grpc-message we send (after percent-encoding); longer status messages are cut. */
#define LG_GRPC_SERVER_MAX_STATUS_MESSAGE_BYTES 4096u
/* Service names the health service tracks, and the longest name; more are refused
 * (LG_ERR_EXHAUSTED / LG_ERR_INVALID) so a caller cannot grow the table without bound. */
#define LG_GRPC_HEALTH_MAX_SERVICES 64
#define LG_GRPC_HEALTH_MAX_NAME_BYTES 256
/* Files and symbols the reflection service indexes from the embedded descriptor set; a larger
 * set fails lg_grpc_reflection_new at startup (LG_ERR_TOO_LARGE). */
#define LG_GRPC_REFLECTION_MAX_FILES 256
#define LG_GRPC_REFLECTION_MAX_SYMBOLS 8192
/* -- end gRPC server -- */

/* ---- chat service --------------------------------------------------------------------- */

/* Messages in one ChatRequest. Real conversations stay far below; a client sending more is
 * broken or hostile and gets INVALID_ARGUMENT before any upstream call is made. */
#define LG_CHAT_MAX_MESSAGES 1024
/* Total bytes of message content in one request (all roles). Above this the request is
 * refused with INVALID_ARGUMENT; the gRPC runtime's message cap bounds it further. */
#define LG_CHAT_MAX_PROMPT_BYTES (2u * 1024u * 1024u)
/* Largest max_tokens accepted. No model generates a million tokens in one call; a larger
 * value is a bug in the caller ("absurd max_tokens" -> INVALID_ARGUMENT). */
#define LG_CHAT_MAX_TOKENS_LIMIT 1000000u
/* Longest id-like field (user_id, conversation_id, agent_id, model, provider_config_id,
 * metadata key). Ids are copied into logs and records; longer ones are refused. */
#define LG_CHAT_MAX_ID_BYTES 256
/* Metadata entries per request and bytes per metadata value. */
#define LG_CHAT_MAX_METADATA 64
#define LG_CHAT_MAX_METADATA_VALUE_BYTES 4096

/* Events and bytes kept per stream for ResumeStream. When either is exceeded the oldest
 * events are dropped; a resume from before the oldest kept event gets NOT_FOUND
 * ("resume_expired"). 4096 events covers a long answer at one token per event. */
#define LG_CHAT_REPLAY_MAX_EVENTS 4096
#define LG_CHAT_REPLAY_MAX_BYTES (1024u * 1024u)
/* Streams alive at once (generating, in grace, or retained): it bounds the replay memory to
 * MAX_STREAMS * REPLAY_MAX_BYTES worst case. When full, the oldest finished stream is
 * evicted (retention is a cache); only when every slot holds a generating stream does a new
 * stream get RESOURCE_EXHAUSTED. */
#define LG_CHAT_MAX_STREAMS 10000
/* Resumers attached to one stream at a time; more get RESOURCE_EXHAUSTED. */
#define LG_CHAT_MAX_SUBSCRIBERS 16
/* Default time generation continues after the last client left (--grace-ms). */
#define LG_CHAT_GRACE_MS_DEFAULT 30000
/* Default time a finished stream stays resumable (--retention-ms). */
#define LG_CHAT_RETENTION_MS_DEFAULT 300000
/* Hard maxima for the two above: config can only tighten. One hour bounds how long a
 * forgotten stream pins its replay buffer. */
#define LG_CHAT_GRACE_MS_MAX 3600000
#define LG_CHAT_RETENTION_MS_MAX 3600000
/* Default time in-flight calls get to finish on SIGTERM (--drain-ms), and its maximum. The
 * k8s StatefulSet sets its own: its terminationGracePeriodSeconds minus 5 s. */
#define LG_CHAT_DRAIN_MS_DEFAULT 10000
#define LG_CHAT_DRAIN_MS_MAX 600000
/* Period of the sweep that expires streams past grace or retention (O(streams) per tick). */
#define LG_CHAT_SWEEP_MS 200
/* Durable answers: a call's final event / unary answer waits until its billing record is in
 * the spool file (a kill -9 cannot lose the record of a call its client saw end). Taking the
 * ticket wakes the shipper, so the wait is about one shipper turn; it is polled this often
 * while any answer waits (a timer, armed only then). */
#define LG_CHAT_DURABLE_POLL_US 100
/* With a sink that notifies (the shipper: lg_shipper_set_written_notify) the timer only
 * checks the give-up deadline below, this often. */
#define LG_CHAT_DURABLE_NOTIFIED_POLL_MS 50
/* ...and given up after this long (the spool cannot write: disk full): the answer goes out,
 * counted in llmgate_chat_answers_before_written_total and logged. */
#define LG_CHAT_DURABLE_WAIT_MS 1000
/* Response text kept for the billing record and for Complete. Text past this is still
 * streamed to the client but not kept; the record notes the truncation. */
#define LG_CHAT_MAX_RESPONSE_BYTES (4u * 1024u * 1024u)
/* Bytes of one serialized ChatEvent (one content delta plus framing). */
#define LG_CHAT_MAX_EVENT_BYTES (256u * 1024u)

/* Demo provider: default pace between tokens (--demo-pace-ms) and its maximum. 25 ms is
 * close to a hosted model's token rate, so the demo page streams visibly. */
#define LG_CHAT_DEMO_PACE_MS_DEFAULT 25
#define LG_CHAT_DEMO_PACE_MS_MAX 10000
/* Tokens the demo writes when the request sets no max_tokens (the reply is usually shorter). */
#define LG_CHAT_DEMO_MAX_REPLY_TOKENS 400

/* Upstream SSE parser: longest line and longest event (sum of data lines). A chunk is a few
 * hundred bytes; an event past 1 MiB is a broken upstream and fails the call as MALFORMED. */
#define LG_CHAT_SSE_MAX_LINE_BYTES (1024u * 1024u)
#define LG_CHAT_SSE_MAX_EVENT_BYTES (1024u * 1024u)
/* Body of a non-2xx upstream answer kept to extract the error message. */
#define LG_CHAT_UPSTREAM_ERROR_BODY_BYTES 8192

/* Upstream timeouts (defaults; each provider config may lower them). */
#define LG_CHAT_UPSTREAM_CONNECT_TIMEOUT_MS 5000
#define LG_CHAT_UPSTREAM_FIRST_BYTE_TIMEOUT_MS 60000
#define LG_CHAT_UPSTREAM_IDLE_TIMEOUT_MS 30000
#define LG_CHAT_UPSTREAM_TIMEOUT_MS_MAX 600000
/* Attempts after the first, only before the first token, on 408/409/429/5xx and connection
 * errors (not on timeouts or malformed streams: lg_chat_openai.c). */
#define LG_CHAT_UPSTREAM_MAX_RETRIES 2
#define LG_CHAT_UPSTREAM_MAX_RETRIES_MAX 10
/* Exponential backoff: base * 2^attempt, capped. A Retry-After above RETRY_AFTER_MAX_MS
 * is not waited for: the call fails at once with RESOURCE_EXHAUSTED/UNAVAILABLE. */
#define LG_CHAT_UPSTREAM_BACKOFF_BASE_MS 200
#define LG_CHAT_UPSTREAM_BACKOFF_MAX_MS 5000
#define LG_CHAT_UPSTREAM_RETRY_AFTER_MAX_MS 30000
/* Request body sent upstream (JSON of the whole conversation). */
#define LG_CHAT_UPSTREAM_MAX_REQUEST_BYTES (LG_CHAT_MAX_PROMPT_BYTES * 2u + 65536u)

/* Provider config file: size, providers, models per provider. */
#define LG_CHAT_CONFIG_MAX_BYTES (1024u * 1024u)
#define LG_CHAT_MAX_PROVIDERS 64
#define LG_CHAT_MAX_MODELS 256
/* Secret (API key) read from a file or the environment. */
#define LG_CHAT_MAX_SECRET_BYTES 4096
/* Price per 1M tokens, in nano-USD (USD * 1e9). $10,000 per 1M tokens is far above any
 * model; a larger value is a typo in the config and is refused at load. Keeping it below
 * 1e13 also keeps every intermediate of the cost math inside 64 bits (lg_chat_price.c). */
#define LG_CHAT_PRICE_MAX_NUSD_PER_MTOK 10000000000000ull

/* Body logging in records: "truncated" keeps at most this many bytes per body by default. */
#define LG_CHAT_BODY_TRUNCATE_DEFAULT_BYTES 4096

/* ---- SSE adapter ---------------------------------------------------------------------- */

/* One HTTP request body (POST /v1/chat/streams, /v1/chat/completions). A chat request with a
 * long history fits easily; past it the edge answers 413 before parsing anything. */
#define LG_SSE_MAX_BODY_BYTES (1024 * 1024)
/* Request line plus all headers. Browsers send ~1-2 KiB; past it libevent answers 431/400
 * before the request reaches a handler. */
#define LG_SSE_MAX_HEADER_BYTES (16 * 1024)
/* Nesting depth of a request JSON document. Chat requests need 4 levels; the cap stops a
 * deeply nested body from costing recursion and memory in later walks (400 past it). */
#define LG_SSE_MAX_JSON_DEPTH 16
/* Messages in one chat request; more answers 400 (bounds the gRPC request we build). */
#define LG_SSE_MAX_MESSAGES 256
/* Requests served on one keep-alive connection before the edge closes it, so one client
 * cannot pin a connection (and its buffers) forever. */
#define LG_SSE_MAX_REQUESTS_PER_CONN 1000
/* Idle keep-alive connection, and the longest silence while reading a request, in ms. */
#define LG_SSE_IDLE_TIMEOUT_MS 30000
/* Hard maximum of the two timeouts above (config can only lower it). */
#define LG_SSE_IDLE_TIMEOUT_MS_MAX 600000
/* Whole request headers must arrive within this many ms of the connection opening (or of the
 * previous response), whatever the byte rate: the slowloris guard. */
#define LG_SSE_HEADER_TIMEOUT_MS 10000
/* Concurrent event streams (SSE or OpenAI stream) one user may hold; the next gets 429.
 * The default suits a person with a few tabs; the hard maximum lets a load test or a service
 * account be configured higher (--max-streams-per-user, checked against the maximum). */
#define LG_SSE_MAX_STREAMS_PER_USER 32
#define LG_SSE_MAX_STREAMS_PER_USER_MAX (1024 * 1024)
/* How long GET /events waits for the first event (or the end) of a ResumeStream before it
 * commits to 200 and flushes the headers, in ms. Waiting lets a finished stream answer 204
 * and an unknown one 404; a live but silent stream still opens promptly. */
#define LG_SSE_FIRST_EVENT_WAIT_MS 500
/* Buckets of the per-connection and per-user tables start here and double when the load
 * passes two entries per bucket. */
#define LG_SSE_TABLE_MIN_BUCKETS 64
/* Bytes queued toward one client. A client that falls this far behind is disconnected (it
 * can resume with Last-Event-ID), so a slow reader costs bounded memory and is never
 * silently skipped over. */
#define LG_SSE_OUTBUF_HIGH_BYTES (256 * 1024)
/* Kernel send buffer of an event stream's socket (SO_SNDBUF, fixed: no autotuning), so a
 * client that stops reading is noticed by the outbuf bound after kilobytes, not megabytes. */
#define LG_SSE_SNDBUF_BYTES (32 * 1024)
/* Default heartbeat period in ms (--heartbeat-ms): below the 60 s idle cut of common
 * proxies, and what the WHATWG spec suggests (about 15 s). */
#define LG_SSE_HEARTBEAT_DEFAULT_MS 15000
/* Reconnection delay sent once per stream as `retry:`, in ms. */
#define LG_SSE_RETRY_MS 2000
/* Longest stream id accepted from a URL or Last-Event-ID (chat ids are 22 base64url chars,
 * prefixed n<node>_ when the chat service runs with --node: at most 29). */
#define LG_SSE_MAX_STREAM_ID_BYTES 64
/* Longest user id in the keys file; it travels as x-user-id metadata and in logs. */
#define LG_SSE_MAX_USER_ID_BYTES 64
/* Entries in the keys file; more refuses the file (reload keeps the previous keys). */
#define LG_SSE_MAX_KEYS 100000
/* Keys file size; a bigger file is refused at load. */
#define LG_SSE_MAX_KEYS_FILE_BYTES (16 * 1024 * 1024)
/* Lifetime of a signed events token in seconds (EventSource cannot send Authorization). */
#define LG_SSE_TOKEN_TTL_S 600
/* Longest signed events token accepted from a query string. */
#define LG_SSE_MAX_TOKEN_BYTES 512
/* Deadline of a unary gRPC call to the chat service (cancel, health), in ms. */
#define LG_SSE_RPC_TIMEOUT_MS 10000
/* Period of the health check of the chat service behind /readyz, in ms. */
#define LG_SSE_HEALTH_PERIOD_MS 2000
/* Calls the adapter puts on one HTTP/2 connection to the chat service before it opens the
 * next: the chat server's default SETTINGS_MAX_CONCURRENT_STREAMS
 * (LG_GRPC_SERVER_MAX_CONCURRENT_STREAMS), so open SSE streams never queue behind it. */
#define LG_SSE_CHAT_CALLS_PER_CONN 100
/* Connections to the chat service per adapter process; with the value above this carries
 * 100 * 1024 concurrent streams. Past it calls queue in the least loaded connection. */
#define LG_SSE_CHAT_MAX_CONNS 1024
/* Hard cap on one non-streaming completion body we assemble for a client. */
#define LG_SSE_MAX_COMPLETION_BYTES (4 * 1024 * 1024)
/* One encoded SSE event (id, event, data lines); content deltas are far smaller. */
#define LG_SSE_MAX_EVENT_BYTES (256 * 1024)

/* ---- analytics shipper ---------------------------------------------------------------- */

/* One encoded billing row (JSON). Bodies of long conversations can be megabytes; past this a
 * record cannot be encoded and is written to the dead-letter file with the reason. */
#define LG_RECORD_MAX_ROW_BYTES (32u * 1024u * 1024u)

/* Largest spool record: one encoded row plus slack. A larger length in a frame header can
 * only be corruption, so recovery stops there instead of allocating it. */
#define LG_SPOOL_MAX_RECORD_BYTES (LG_RECORD_MAX_ROW_BYTES + 64u * 1024u)
/* Appends are copied into a buffer of this size and written with one write(2) when it
 * fills or the shipper flushes (every LG_SHIPPER_SYNC_INTERVAL_MS): few syscalls, and a
 * crash loses at most what a flush had not yet written. */
#define LG_SPOOL_WRITE_BUFFER_BYTES (1024u * 1024u)
/* The shipper reads the spool back with one pread per this many bytes (not two per record:
 * header, payload), served from a buffer of this size plus one maximal record. */
#define LG_SPOOL_READ_AHEAD_BYTES (1024u * 1024u)
/* Written buffers the spool keeps for its reader (lg_spool.c, "Handoff"): records the
 * shipper reads soon after writing them come from memory, not from the file (a pread
 * copy and a CRC pass per record). Enough for the flushes between two batch fills; when
 * the reader is further behind (a backlog) it reads the file as before. */
#define LG_SPOOL_HANDOFF_SLOTS 16u
#define LG_SPOOL_HANDOFF_BYTES (8u * 1024u * 1024u)
/* Memory of read blocks that batches held and gave back (lg_spool_block_release), kept for
 * the reader's next blocks instead of freed: a batch lends its rows from these blocks, and
 * fresh memory for every block costs a page fault per 4 KiB. One default batch's worth:
 * the memory the batches' own row buffers held before they lent rows instead of copying
 * them. Paced 30k rows/s, shipper CPU (3 runs each): 32 MiB 0.93-0.97 s, 64 MiB
 * 0.95-0.98 s, 128 MiB 0.92-0.98 s, 256 MiB 0.89-0.96 s; not worth another 128 MiB. The
 * shipper trims it to LG_SHIPPER_IDLE_KEEP_BATCH_BYTES when idle. */
#define LG_SPOOL_FREE_BLOCK_BYTES (128ull * 1024u * 1024u)
/* Default disk cap for the spool (the test driver's --spool-max-bytes may change it): about 500k billing rows
 * of 2 KB, i.e. hours of a busy gateway's records during a ClickHouse outage. At the cap
 * new records are dropped, counted and logged (the only way a record is lost). */
#define LG_SPOOL_DEFAULT_MAX_BYTES (1024ull * 1024u * 1024u)
/* Segment size: acknowledged data is freed one whole segment at a time, so this is also the
 * most acknowledged data that still occupies disk. */
#define LG_SPOOL_DEFAULT_SEGMENT_BYTES (64u * 1024u * 1024u)
_Static_assert(LG_SPOOL_DEFAULT_SEGMENT_BYTES < LG_SPOOL_DEFAULT_MAX_BYTES,
               "a spool must hold more than one segment");

/* Bytes a sealed batch adds per row, at most: ,"batch_id":"<16 hex>-<count>"}\n for JSON
 * rows (a RowBinary row adds a length byte and the id). */
#define LG_BATCH_ROW_OVERHEAD_BYTES 64
/* Raw bytes per gzip member when bodies are compressed with libdeflate (whole buffers
 * only): large enough that the 18-byte member header/trailer and the restarted match
 * window cost nothing measurable (ratio 22.6 with 1 MiB members vs 19.6 for zlib's single
 * stream), small enough to copy cheaply into one buffer. */
#define LG_BATCH_GZIP_MEMBER_BYTES (1024u * 1024u)

/* One X-ClickHouse-* header line; user names and keys are short. Longer ones are cut. */
#define LG_CHCLIENT_MAX_HEADER_BYTES 512
/* Our request URLs carry an INSERT statement and a few settings; ClickHouse refuses URLs
 * over 1 MiB, we stay far below. */
#define LG_CHCLIENT_MAX_URL_BYTES (64u * 1024u)
/* An INSERT answer is empty or one exception; more than this is kept no further. */
#define LG_CHCLIENT_MAX_ERROR_BYTES (1024u * 1024u)
/* A query result read by the CLI or UsageService; larger results fail with TOO_LARGE
 * (queries carry LIMITs well below this). */
#define LG_CHCLIENT_MAX_RESPONSE_BYTES (64u * 1024u * 1024u)
/* curl's upload buffer for INSERT bodies pulled through a read callback: one callback and
 * about one send(2) per this many bytes (curl's default is 64 KiB; it allows up to 2 MiB).
 * The maximum: against 512 KiB, paced 30k rows/s made 57% fewer sends, 34% fewer loop
 * turns and 20% fewer wake-ups, and the shipper's threads used 0.1-0.35 points less of a
 * core in every repetition (10 s and 30 s runs); a 1M-row burst shipped no slower. */
#define LG_CHCLIENT_UPLOAD_BUFFER_BYTES (2048u * 1024u)

/* Shipper batching defaults (ClickHouse guidance: 10k-100k rows per insert, about one
 * insert per second per table; each insert is one part, too many parts fail with 252).
 * At steady load the 500 ms age closes batches (low-load latency of a few hundred ms, at
 * most ~2 inserts/s); the row and byte caps matter when catching up after an outage.
 * Measured on 18.16 (tests/bench/analytics, replay of 200k ~2.4 KB rows): 10k-row batches
 * 35k rows/s, 50k-row batches 45k rows/s gzip'd (57k uncompressed). Replay of 1M such rows,
 * same run, two repetitions: 64 MiB caps (~28k rows, 36 inserts) 53k rows/s and 16-18 s of
 * ClickHouse CPU; 128 MiB (the 50k-row cap binds, 20 inserts) 63k rows/s and 13-14 s, as
 * much as curl POSTing 50k-row files. Two batches are held (one in flight, one being
 * prepared), so a backlog replay holds up to ~2 x (118 MiB of rows + gzip output); given
 * back once caught up (LG_SHIPPER_IDLE_KEEP_BATCH_BYTES). */
#define LG_SHIPPER_DEFAULT_BATCH_ROWS 50000u
#define LG_SHIPPER_DEFAULT_BATCH_BYTES (128u * 1024u * 1024u)
/* When the shipper is idle (ring, spool and batches empty), batch buffers larger than this
 * are freed: steady-state batches (500 ms of records) stay well below it. */
#define LG_SHIPPER_IDLE_KEEP_BATCH_BYTES (8u * 1024u * 1024u)
#define LG_SHIPPER_DEFAULT_BATCH_AGE_MS 500
/* Hot-path queue: records waiting for the shipper thread. 64k slots (16 shards, 16-byte
 * slots and a dependency array) is 2 MiB and ~2 s of a very busy gateway; when full,
 * records are spooled by the caller. */
#define LG_SHIPPER_QUEUE_CAPACITY 65536u
/* The shipper thread wakes at least this often to drain the ring (no syscall on the hot
 * path to wake it), and fsyncs the spool at this interval: the window in which a record
 * accepted by enqueue is only in memory. */
#define LG_SHIPPER_TICK_MS 20
#define LG_SHIPPER_SYNC_INTERVAL_MS 100
/* Records moved from the ring to the spool per loop turn (~20 ms of encoding at most), so
 * that shipping keeps its turn under a flood. */
#define LG_SHIPPER_DRAIN_MAX_PER_TURN 8192u
/* The shipper thread moves records from the ring to the spool in runs: up to this many
 * records, or until this many bytes of frames are encoded, per spool lock (one lock per
 * record contended with producers on the overflow path). */
#define LG_SHIPPER_RUN_RECORDS 512u
#define LG_SHIPPER_RUN_BYTES (512u * 1024u)
/* The overflow path's shared encoding buffer is given back when a record grew it past this. */
#define LG_SHIPPER_OVERFLOW_KEEP_BYTES (1024u * 1024u)
/* While an insert is in flight, the next batch is read from the spool and compressed in
 * slices of this many raw bytes, one per loop turn, so curl keeps feeding the in-flight
 * request between slices (a slice is a few ms of gzip level 1; the loopback socket buffer
 * holds about as much as ClickHouse parses in that time). */
#define LG_SHIPPER_PREPARE_BYTES_PER_TURN (2u * 1024u * 1024u)
/* Retry backoff: exponential from MIN to MAX with full jitter (AWS architecture blog,
 * "Exponential Backoff and Jitter"); never gives up: a row leaves the spool only by landing
 * or being dead-lettered. */
#define LG_SHIPPER_BACKOFF_MIN_MS 100
#define LG_SHIPPER_BACKOFF_MAX_MS 10000
/* One insert's deadline, and the connect deadline. A 32 MB insert into a busy 18.16 server
 * takes seconds; a minute means hung, and the batch is retried (after a landed check). */
#define LG_SHIPPER_HTTP_TIMEOUT_MS 60000
#define LG_SHIPPER_CONNECT_TIMEOUT_MS 3000
/* SIGTERM drain: how long lg_shipper_close keeps trying to land what is queued before it
 * leaves the rest in the spool for the next start. */
#define LG_SHIPPER_DRAIN_DEADLINE_MS 10000

/* UsageService / CLI reads. A user id longer than this is refused before any query (ids
 * are short opaque strings). Pages of at most LG_USAGE_MAX_LIMIT records, at most
 * LG_USAGE_MAX_PAGE pages deep (deeper paging should use a time range). */
#define LG_USAGE_MAX_USER_ID_BYTES 256
#define LG_USAGE_MAX_LIMIT 1000u
#define LG_USAGE_MAX_PAGE 100000u
/* (day, model) buckets in one GetUsage answer: a year of 30 models is ~11k. */
#define LG_USAGE_MAX_BUCKETS 50000u
/* Queued usage queries waiting for the worker; beyond, callers get EXHAUSTED at once. */
#define LG_USAGE_MAX_PENDING 256u
/* Retention: at most 100 years kept; below 1 month nothing would be kept. */
#define LG_MIGRATE_MAX_KEEP_MONTHS 1200

#endif /* LG_LIMITS_H */
