/* SPDX-License-Identifier: Apache-2.0 */
/*
 * llmgate-sse: the browser-facing edge. HTTP/1.1 + SSE in front of llmgate-chat (gRPC).
 * See lg_sse_http.h for the endpoints and DESIGN.md contract 2 for the wire format.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "lg_admin.h"
#include "lg_buf.h"
#include "lg_cfg.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_loop.h"
#include "lg_mem.h"
#include "lg_metrics.h"
#include "lg_sse_auth.h"
#include "lg_sse_chat.h"
#include "lg_sse_http.h"
#include "lg_sse_json.h"

#define LG_LOG_MODULE "sse_main"
#include "lg_log.h"

#ifndef LG_SSE_WEB_DIR
#    define LG_SSE_WEB_DIR "adapters/sse/web"
#endif

/* Largest file of the demo page loaded at startup. */
#define MAIN_MAX_WEB_FILE_BYTES (1024 * 1024)
/* Most worker processes --workers accepts. */
#define MAIN_MAX_WORKERS 64
/* listen(2) backlog of worker sockets. */
#define MAIN_LISTEN_BACKLOG 4096
/* While draining, how often the open streams are counted (the drain ends when none is left or
 * at --drain-ms). */
#define MAIN_DRAIN_CHECK_MS 50
/* Room for "HOST:PORT" of the bound listener. */
#define MAIN_ADDR_BYTES 128
/* The demo page: URL path, file name in --web-dir, content type. */
static const struct {
    const char *path;
    const char *file;
    const char *ctype;
} main_web_files[] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/index.html", "index.html", "text/html; charset=utf-8"},
    {"/app.js", "app.js", "text/javascript; charset=utf-8"},
    {"/style.css", "style.css", "text/css; charset=utf-8"},
};
#define MAIN_NWEB (sizeof(main_web_files) / sizeof(main_web_files[0]))

struct main_cfg {
    const char *listen;
    const char *chat;
    const char *chat_pod_addr;
    const char *chat_node_map;
    const char *keys;
    const char *web_dir;
    const char *cors_origins;
    const char *token_secret;
    const char *log_level;
    int64_t heartbeat_ms;
    int64_t max_body_bytes;
    int64_t max_header_bytes;
    int64_t idle_timeout_ms;
    int64_t header_timeout_ms;
    int64_t tcp_user_timeout_ms;
    int64_t max_streams_per_user;
    int64_t max_requests_per_conn;
    int64_t outbuf_bytes;
    int64_t workers;
    int64_t drain_ms;
};

struct main_ctx {
    struct event_base *base;
    lg_sse_http *http;
    lg_sse_chat *chat;
    lg_admin *admin;
    struct event *drain_ev;    /* drain check timer, while draining */
    int64_t drain_deadline_ms; /* lg_loop_now_ms() at which the drain gives up */
    int64_t drain_ms;          /* --drain-ms */
    bool draining;
    const char *keys_path;
    const pid_t *children; /* worker processes this leader forked (signals are forwarded) */
    size_t nchildren;
};

static int read_file(const char *dir, const char *name, uint8_t **out, size_t *len)
{
    char path[4096];
    struct stat st;
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return LG_ERR_TOO_LARGE;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return LG_ERR_IO;
    }
    int rc = LG_ERR_IO;
    if (fstat(fd, &st) != 0 || st.st_size < 0 || st.st_size > MAIN_MAX_WEB_FILE_BYTES) {
        goto out_close;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *b = lg_malloc(size + 1);
    if (b == NULL) {
        rc = LG_ERR_NOMEM;
        goto out_close;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, b + got, size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    if (got != size) {
        lg_free(b);
        goto out_close;
    }
    *out = b;
    *len = size;
    rc = LG_OK;
out_close:
    close(fd);
    return rc;
}

static void on_drain_check(evutil_socket_t fd, short what, void *ud)
{
    struct main_ctx *m = ud;
    (void)fd;
    (void)what;
    size_t open = m->http != NULL ? lg_sse_http_get_stream_count(m->http) : 0;
    if (open == 0 || lg_loop_now_ms() >= m->drain_deadline_ms) {
        lg_log(LG_LOG_INFO, NULL, "drain_done", "open_streams=%zu", open);
        event_base_loopexit(m->base, NULL);
        return;
    }
    struct timeval tv = {0, MAIN_DRAIN_CHECK_MS * 1000};
    event_add(m->drain_ev, &tv);
}

/* SIGTERM/SIGINT: readiness off at once (Kubernetes stops sending new connections), open
 * event streams may end by themselves until --drain-ms, then every connection is closed
 * (browsers reconnect through another replica with Last-Event-ID and lose nothing). A
 * second signal, or --drain-ms 0, exits at once. */
static void main_shutdown(struct main_ctx *m, int signo)
{
    if (m->draining || m->drain_ms <= 0) {
        lg_log(LG_LOG_INFO, NULL, "shutdown", "signal=%d", signo);
        event_base_loopexit(m->base, NULL);
        return;
    }
    m->draining = true;
    if (m->admin != NULL) {
        lg_admin_set_ready(m->admin, false);
    }
    m->drain_deadline_ms = lg_loop_now_ms() + m->drain_ms;
    m->drain_ev = event_new(m->base, -1, 0, on_drain_check, m);
    lg_log(LG_LOG_INFO, NULL, "shutdown", "signal=%d: draining open_streams=%zu drain_ms=%lld",
           signo, m->http != NULL ? lg_sse_http_get_stream_count(m->http) : 0,
           (long long)m->drain_ms);
    if (m->drain_ev == NULL) {
        event_base_loopexit(m->base, NULL);
        return;
    }
    event_active(m->drain_ev, 0, 0);
}

static void on_signal(int signo, void *ud)
{
    struct main_ctx *m = ud;
    for (size_t i = 0; i < m->nchildren; i++) {
        kill(m->children[i], signo);
    }
    if (signo != SIGHUP) {
        main_shutdown(m, signo);
        return;
    }
    if (m->keys_path == NULL) {
        lg_log(LG_LOG_WARN, NULL, "keys_reload", "no --keys file: open development mode stays");
        return;
    }
    lg_sse_keys *k = NULL;
    size_t line = 0;
    int rc = lg_sse_keys_load(&k, m->keys_path, &line);
    if (rc != LG_OK) {
        lg_log(LG_LOG_ERROR, NULL, "keys_reload_failed", "rc=%s line=%zu kept previous keys",
               lg_err_name(rc), line);
        return;
    }
    lg_log(LG_LOG_INFO, NULL, "keys_reloaded", "keys=%zu", lg_sse_keys_count(k));
    lg_sse_http_set_keys(m->http, k);
}

static bool ready_cb(void *ud)
{
    return lg_sse_chat_is_ready(ud);
}

static int parse_args(struct main_cfg *c, int argc, char **argv)
{
    const struct lg_cfg_opt opts[] = {
        {"listen", LG_CFG_STRING, &c->listen, "127.0.0.1:8080", 0, 0,
         "HTTP listen address HOST:PORT (port 0 picks one)"},
        {"chat", LG_CFG_STRING, &c->chat, "127.0.0.1:50051", 0, 0,
         "llmgate-chat gRPC address HOST:PORT (new streams)"},
        {"chat-pod-addr", LG_CFG_STRING, &c->chat_pod_addr, NULL, 0, 0,
         "address template of the chat pod owning a stream, {ordinal} replaced by the node "
         "in its id, for resume/cancel (e.g. llmgate-chat-{ordinal}.llmgate-chat-headless:50051)"},
        {"chat-node-map", LG_CFG_STRING, &c->chat_node_map, NULL, 0, 0,
         "node=HOST:PORT,... owner addresses by node (wins over --chat-pod-addr)"},
        {"keys", LG_CFG_STRING, &c->keys, NULL, 0, 0,
         "keys file (sha256:<hex> <user> per line; SIGHUP reloads); unset = open dev mode"},
        {"heartbeat-ms", LG_CFG_INT, &c->heartbeat_ms, "15000", 1, 3600000,
         "heartbeat period of open event streams (ms)"},
        {"max-body-bytes", LG_CFG_INT, &c->max_body_bytes, "1048576", 1, LG_SSE_MAX_BODY_BYTES,
         "largest request body"},
        {"max-header-bytes", LG_CFG_INT, &c->max_header_bytes, "16384", 256,
         LG_SSE_MAX_HEADER_BYTES, "largest request line plus headers"},
        {"idle-timeout-ms", LG_CFG_INT, &c->idle_timeout_ms, "30000", 1, LG_SSE_IDLE_TIMEOUT_MS_MAX,
         "idle keep-alive and read timeout (ms)"},
        {"header-timeout-ms", LG_CFG_INT, &c->header_timeout_ms, "10000", 1,
         LG_SSE_IDLE_TIMEOUT_MS_MAX, "a new connection's first request must arrive within (ms)"},
        {"tcp-user-timeout-ms", LG_CFG_INT, &c->tcp_user_timeout_ms, "30000", 0,
         LG_SSE_IDLE_TIMEOUT_MS_MAX,
         "drop a client whose TCP stops acknowledging for this long (ms; 0 = kernel default)"},
        {"max-streams-per-user", LG_CFG_INT, &c->max_streams_per_user, "32", 1,
         LG_SSE_MAX_STREAMS_PER_USER_MAX, "concurrent event streams per user (429 beyond)"},
        {"max-requests-per-conn", LG_CFG_INT, &c->max_requests_per_conn, "1000", 1,
         LG_SSE_MAX_REQUESTS_PER_CONN, "requests per keep-alive connection"},
        {"outbuf-bytes", LG_CFG_INT, &c->outbuf_bytes, "262144", 1, LG_SSE_OUTBUF_HIGH_BYTES,
         "bytes queued to one client before it is disconnected (it can resume)"},
        {"cors-origins", LG_CFG_STRING, &c->cors_origins, NULL, 0, 0,
         "comma-separated CORS allow-list of origins"},
        {"token-secret", LG_CFG_STRING, &c->token_secret, NULL, 0, 0,
         "secret for events tokens, shared by replicas (64 hex or a passphrase); unset = random"},
        {"web-dir", LG_CFG_STRING, &c->web_dir, LG_SSE_WEB_DIR, 0, 0,
         "directory of the demo page (index.html, app.js, style.css)"},
        {"workers", LG_CFG_INT, &c->workers, "1", 1, MAIN_MAX_WORKERS,
         "processes serving the port together (SO_REUSEPORT), e.g. one per core"},
        {"drain-ms", LG_CFG_INT, &c->drain_ms, "0", 0, 600000,
         "on SIGTERM: readiness off, open event streams get this long to end (0 = exit at "
         "once; a second SIGTERM always does)"},
        {"log-level", LG_CFG_STRING, &c->log_level, "info", 0, 0, "debug|info|warn|error|off"},
    };
    size_t n = sizeof(opts) / sizeof(opts[0]);
    char err[512];
    int rc = lg_cfg_parse(opts, n, argc, argv, NULL, 0, NULL, err, sizeof(err));
    if (rc == 1) {
        struct lg_buf b;
        lg_buf_init(&b, 64 * 1024);
        lg_cfg_usage(opts, n, "llmgate-sse", "[flags]", &b);
        fwrite(b.data, 1, b.len, stdout);
        lg_buf_deinit(&b);
        return 1;
    }
    if (rc != LG_OK) {
        fprintf(stderr, "llmgate-sse: %s\n", err);
        return -1;
    }
    enum lg_log_level lvl;
    if (lg_log_parse_level(c->log_level, &lvl) != 0) {
        fprintf(stderr, "llmgate-sse: --log-level: unknown level\n");
        return -1;
    }
    lg_log_init(lvl, -1);
    lg_loop_route_libevent_logs();
    return 0;
}

static int load_web(const char *dir, struct lg_sse_http_file *files, uint8_t **bufs)
{
    for (size_t i = 0; i < MAIN_NWEB; i++) {
        size_t len = 0;
        int rc = read_file(dir, main_web_files[i].file, &bufs[i], &len);
        if (rc != LG_OK) {
            lg_log(LG_LOG_ERROR, NULL, "web_load_failed", "dir=%s file=%s rc=%s", dir,
                   main_web_files[i].file, lg_err_name(rc));
            return rc;
        }
        files[i].path = main_web_files[i].path;
        files[i].content_type = main_web_files[i].ctype;
        files[i].data = bufs[i];
        files[i].len = len;
    }
    return LG_OK;
}

/* Binds a SO_REUSEPORT listening socket to |cfg->listen| (its port replaced by |port| when not
 * 0). Startup only (getaddrinfo may block). Returns the fd or -1. */
static int bind_reuseport(const char *listen_addr, uint16_t port, uint16_t *port_out)
{
    char host[256];
    char portstr[16];
    uint16_t p;
    struct addrinfo hints = {0};
    struct addrinfo *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int one = 1;
    if (lg_cfg_split_hostport(listen_addr, host, sizeof(host), &p) != LG_OK) {
        return -1;
    }
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)(port != 0 ? port : p));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host, portstr, &hints, &ai) != 0 || ai == NULL) {
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, MAIN_LISTEN_BACKLOG) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static int run(const struct main_cfg *cfg, const uint8_t *secret, int listen_fd,
               const pid_t *children, size_t nchildren, bool leader);

/* --workers N: N sockets on one port (SO_REUSEPORT: the kernel spreads connections), one
 * process each; this process is worker 0 and the leader (prints the listening line, forwards
 * signals, reaps the others). Each worker is a full, independent adapter. */
static int run_workers(const struct main_cfg *cfg, const uint8_t *secret)
{
    int fds[MAIN_MAX_WORKERS];
    pid_t pids[MAIN_MAX_WORKERS];
    size_t n = (size_t)cfg->workers;
    size_t nkids = 0;
    uint16_t port = 0;
    for (size_t i = 0; i < n; i++) {
        fds[i] = bind_reuseport(cfg->listen, port, &port);
        if (fds[i] < 0) {
            fprintf(stderr, "llmgate-sse: --listen %s: cannot bind worker socket\n", cfg->listen);
            return 1;
        }
    }
    for (size_t i = 1; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the leader */
            for (size_t j = 0; j < n; j++) {
                if (j != i) {
                    close(fds[j]);
                }
            }
            exit(run(cfg, secret, fds[i], NULL, 0, false));
        }
        if (pid > 0) {
            pids[nkids++] = pid;
        }
        close(fds[i]);
    }
    int status = run(cfg, secret, fds[0], pids, nkids, true);
    for (size_t i = 0; i < nkids; i++) {
        int ws = 0;
        if (status != 0) {
            kill(pids[i], SIGTERM); /* after a clean stop the signal was already forwarded */
        }
        if (waitpid(pids[i], &ws, 0) > 0 && (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)) {
            status = 1;
        }
    }
    return status;
}

int main(int argc, char **argv)
{
    struct main_cfg cfg = {0};
    uint8_t secret[LG_SSE_AUTH_SECRET_BYTES];
    int prc = parse_args(&cfg, argc, argv);
    if (prc != 0) {
        return prc > 0 ? 0 : 2;
    }
    /* One secret for every worker: a token made by one must verify in the others. */
    if (lg_sse_auth_secret(cfg.token_secret, secret) != LG_OK) {
        return 1;
    }
    if (cfg.token_secret == NULL || cfg.token_secret[0] == 0) {
        lg_log(LG_LOG_WARN, NULL, "token_secret_random",
               "no --token-secret: events tokens work on this replica only");
    }
    if (cfg.workers > 1) {
        return run_workers(&cfg, secret);
    }
    return run(&cfg, secret, -1, NULL, 0, true);
}

static int run(const struct main_cfg *cfg_in, const uint8_t *secret, int listen_fd,
               const pid_t *children, size_t nchildren, bool leader)
{
    struct main_cfg cfg = *cfg_in;
    struct main_ctx m = {0};
    struct lg_sse_http_file files[MAIN_NWEB];
    uint8_t *bufs[MAIN_NWEB] = {0};
    lg_metrics *metrics = NULL;
    lg_admin *admin = NULL;
    lg_loop_signals *sigs = NULL;
    lg_sse_keys *keys = NULL;
    char bound[MAIN_ADDR_BYTES];
    int status = 1;

    m.children = children;
    m.nchildren = nchildren;
    lg_sse_json_use_lg_alloc();
    if (lg_loop_ignore_sigpipe() != LG_OK || (m.base = lg_loop_base_new()) == NULL) {
        return 1;
    }
    if (cfg.keys != NULL && cfg.keys[0] != 0) {
        size_t line = 0;
        int rc = lg_sse_keys_load(&keys, cfg.keys, &line);
        if (rc != LG_OK) {
            fprintf(stderr, "llmgate-sse: --keys %s: %s (line %zu)\n", cfg.keys, lg_err_str(rc),
                    line);
            goto out;
        }
        m.keys_path = cfg.keys;
        lg_log(LG_LOG_INFO, NULL, "keys_loaded", "keys=%zu", lg_sse_keys_count(keys));
    } else {
        lg_log(LG_LOG_WARN, NULL, "open_mode",
               "NO KEYS FILE: open development mode, every caller is user 'anonymous'; "
               "set --keys (LLMGATE_KEYS) in any shared deployment");
    }
    if (load_web(cfg.web_dir, files, bufs) != LG_OK) {
        goto out;
    }
    struct lg_admin_opts ao = {NULL, NULL, ready_cb, NULL, 0};
    if (lg_metrics_new(&metrics) != LG_OK || lg_sse_chat_new(&m.chat, m.base, cfg.chat) != LG_OK) {
        fprintf(stderr, "llmgate-sse: --chat %s: cannot set up the client\n", cfg.chat);
        goto out;
    }
    if (lg_sse_chat_set_routes(m.chat, cfg.chat_pod_addr, cfg.chat_node_map) != LG_OK) {
        fprintf(stderr,
                "llmgate-sse: --chat-pod-addr (LLMGATE_CHAT_POD_ADDR) must contain {ordinal}; "
                "--chat-node-map (LLMGATE_CHAT_NODE_MAP) must be node=HOST:PORT,...\n");
        goto out;
    }
    ao.metrics = metrics;
    ao.ready_user_data = m.chat;
    if (lg_admin_new(&admin, m.base, &ao) != LG_OK) {
        goto out;
    }
    m.admin = admin;
    m.drain_ms = cfg.drain_ms;
    struct lg_sse_http_opts ho = {
        .listen = cfg.listen,
        .listen_fd = listen_fd,
        .heartbeat_ms = cfg.heartbeat_ms,
        .max_body_bytes = cfg.max_body_bytes,
        .max_header_bytes = cfg.max_header_bytes,
        .idle_timeout_ms = cfg.idle_timeout_ms,
        .header_timeout_ms = cfg.header_timeout_ms,
        .tcp_user_timeout_ms = cfg.tcp_user_timeout_ms,
        .max_streams_per_user = cfg.max_streams_per_user,
        .max_requests_per_conn = cfg.max_requests_per_conn,
        .outbuf_bytes = cfg.outbuf_bytes,
        .cors_origins = cfg.cors_origins,
        .token_secret = secret,
        .files = files,
        .nfiles = MAIN_NWEB,
        .chat = m.chat,
        .metrics = metrics,
        .admin = admin,
    };
    int rc = lg_sse_http_new(&m.http, m.base, &ho, bound, sizeof(bound));
    if (rc != LG_OK) {
        fprintf(stderr, "llmgate-sse: --listen %s: %s\n", cfg.listen, lg_err_str(rc));
        goto out;
    }
    lg_sse_http_set_keys(m.http, keys);
    keys = NULL;
    if (lg_loop_signals_new(&sigs, m.base, on_signal, &m) != LG_OK) {
        goto out;
    }
    if (leader) {
        printf("listening http %s\n", bound);
        fflush(stdout);
    }
    lg_log(LG_LOG_INFO, NULL, "listening", "http=%s chat=%s heartbeat_ms=%" PRId64, bound, cfg.chat,
           cfg.heartbeat_ms);
    event_base_dispatch(m.base);
    status = 0;
out:
    if (m.drain_ev != NULL) {
        event_free(m.drain_ev);
    }
    lg_loop_signals_free(sigs);
    lg_sse_http_free(m.http);
    lg_admin_free(admin);
    lg_sse_chat_free(m.chat);
    lg_metrics_free(metrics);
    lg_sse_keys_free(keys);
    for (size_t i = 0; i < MAIN_NWEB; i++) {
        lg_free(bufs[i]);
    }
    if (m.base != NULL) {
        event_base_free(m.base);
    }
    return status;
}
