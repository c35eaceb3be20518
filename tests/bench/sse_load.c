/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sse_load: holds many concurrent SSE streams open against llmgate-sse (or any SSE server),
 * for tests/bench/sse_bench.py. One non-blocking connection per URL read from stdin (one
 * request path per line, up to --max), spread over --src-ips loopback source addresses
 * (127.0.0.2, 127.0.0.3, ...) so the ephemeral-port range of one address is not the limit.
 * Everything runs in one epoll loop; the reader only counts.
 *
 *   --target HOST:PORT  server address
 *   --mode idle|drain   idle: print "ready <json>" once every stream has seen a heartbeat
 *                       (or an event), then hold until stdin closes; drain: read every stream
 *                       to its end and print "done <json>" with events/s
 *   --expect-events N   drain: stop once N events arrived (for servers that keep streams open)
 *   --deadline-s N      give up after N seconds (a peer that loses streams or events) and
 *                       report what arrived, with "timed_out":1
 *   --sync 1            drain: print "subscribed" once every stream has its response headers
 *                       and time from then on (for servers that keep no history: the events
 *                       are published after that line)
 *   --connect-rate N    open at most N connections per second (default 0: all at once)
 *   --max-pending N     keep at most N connections opened but without response headers
 *                       (default 0: no cap). Pushpin needs these: its proxy hands each new
 *                       request to zurl over a ZeroMQ PUSH socket with a high-water mark of
 *                       100 and answers 502 ("Error while proxying to origin", condition
 *                       ErrorUnavailable) when that socket is full, so a burst of thousands
 *                       of connects loses most of them.
 *
 * Output figures: streams, streams that got headers, events (blocks with an id), heartbeats,
 * failures, seconds. Prints with printf: this is a benchmark tool, not a service.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOAD_MAX_STREAMS    20000
#define LOAD_MAX_PATH       512
#define LOAD_READ_BYTES     16384
#define LOAD_EPOLL_BATCH    256
#define LOAD_DEFAULT_SRC    8
#define LOAD_POLL_MS        100
/* Loop wake-up while connections still wait for their turn (--connect-rate/--max-pending). */
#define LOAD_PACE_POLL_MS   5
/* The tail kept between reads to find markers split across reads. */
#define LOAD_TAIL_BYTES     16

struct conn {
    int fd;
    int got_headers;
    int got_beat;   /* a heartbeat or an event arrived */
    int closed;
    uint64_t events;
    uint64_t beats;
    char tail[LOAD_TAIL_BYTES + 1];
    size_t tail_len;
    char path[LOAD_MAX_PATH];
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Counts |needle| in tail+buf (markers may straddle reads). A match that lies wholly inside
 * the tail was counted by the previous read and is skipped. */
static uint64_t count_marker(struct conn *c, const char *buf, size_t n, const char *needle)
{
    static char joined[LOAD_TAIL_BYTES + LOAD_READ_BYTES + 1];
    memcpy(joined, c->tail, c->tail_len);
    memcpy(joined + c->tail_len, buf, n);
    size_t len = c->tail_len + n;
    joined[len] = 0;
    uint64_t k = 0;
    size_t nl = strlen(needle);
    for (const char *p = joined; (p = memmem(p, (size_t)(joined + len - p), needle, nl)) != NULL;
         p += nl) {
        if ((size_t)(p - joined) + nl > c->tail_len) {
            k++;
        }
    }
    return k;
}

static void keep_tail(struct conn *c, const char *buf, size_t n)
{
    char tmp[LOAD_TAIL_BYTES + LOAD_READ_BYTES];
    memcpy(tmp, c->tail, c->tail_len);
    memcpy(tmp + c->tail_len, buf, n);
    size_t len = c->tail_len + n;
    size_t keep = len < LOAD_TAIL_BYTES ? len : LOAD_TAIL_BYTES;
    memcpy(c->tail, tmp + len - keep, keep);
    c->tail_len = keep;
}

static int open_conn(struct conn *c, const struct sockaddr_in *dst, int src_index, int nsrc,
                     int ep)
{
    struct sockaddr_in src = {0};
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        return -1;
    }
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(src_index % nsrc));
    int one = 1;
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
        return -1;
    }
    if (connect(c->fd, (const struct sockaddr *)dst, sizeof(*dst)) != 0 && errno != EINPROGRESS) {
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        return -1;
    }
    /* The request goes out on the first EPOLLOUT (connect completion). */
    return 0;
}

static void on_ready(struct conn *c, uint32_t events, const char *hostport, int ep)
{
    char buf[LOAD_READ_BYTES];
    if (events & EPOLLOUT) {
        char req[LOAD_MAX_PATH + 256];
        int n = snprintf(req, sizeof(req),
                         "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n",
                         c->path, hostport);
        if (n > 0 && write(c->fd, req, (size_t)n) != n) {
            c->closed = 1;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    for (;;) {
        ssize_t r = read(c->fd, buf, sizeof(buf));
        if (r > 0) {
            if (!c->got_headers && memmem(buf, (size_t)r, "HTTP/1.1 200", 12) != NULL) {
                c->got_headers = 1;
            }
            c->events += count_marker(c, buf, (size_t)r, "\nid: ");
            c->beats += count_marker(c, buf, (size_t)r, "event: heartbeat");
            keep_tail(c, buf, (size_t)r);
            if (c->events > 0 || c->beats > 0) {
                c->got_beat = 1;
            }
            /* The zero-length last chunk ends the response. */
            if (memmem(c->tail, c->tail_len, "\r\n0\r\n\r\n", 7) != NULL) {
                c->closed = 1;
                break;
            }
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            c->closed = 1;
        }
        break;
    }
    if (c->closed) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
}

int main(int argc, char **argv)
{
    const char *target = NULL;
    const char *mode = "idle";
    int nsrc = LOAD_DEFAULT_SRC;
    unsigned long long expect = 0; /* drain: stop at this many events (servers that never end) */
    int sync = 0;
    double deadline_s = 0; /* 0: none */
    double connect_rate = 0; /* connections per second; 0: all at once */
    size_t max_pending = 0;  /* opened without headers yet; 0: no cap */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--target") == 0) {
            target = argv[i + 1];
        } else if (strcmp(argv[i], "--mode") == 0) {
            mode = argv[i + 1];
        } else if (strcmp(argv[i], "--expect-events") == 0) {
            expect = strtoull(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--deadline-s") == 0) {
            deadline_s = strtod(argv[i + 1], NULL);
        } else if (strcmp(argv[i], "--sync") == 0) {
            sync = (int)strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--connect-rate") == 0) {
            connect_rate = strtod(argv[i + 1], NULL);
        } else if (strcmp(argv[i], "--max-pending") == 0) {
            max_pending = (size_t)strtoull(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--src-ips") == 0) {
            nsrc = (int)strtol(argv[i + 1], NULL, 10);
        }
    }
    if (target == NULL || nsrc < 1) {
        fprintf(stderr, "usage: sse_load --target HOST:PORT [--mode idle|drain] [--src-ips N] "
                        "[--connect-rate N] [--max-pending N] < paths\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char host[64];
    const char *colon = strrchr(target, ':');
    if (colon == NULL || (size_t)(colon - target) >= sizeof(host)) {
        return 2;
    }
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = 0;
    struct sockaddr_in dst = {0};
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)strtol(colon + 1, NULL, 10));
    inet_pton(AF_INET, host, &dst.sin_addr);

    struct conn *conns = calloc(LOAD_MAX_STREAMS, sizeof(*conns));
    size_t n = 0;
    char line[LOAD_MAX_PATH];
    while (n < LOAD_MAX_STREAMS && fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == 0) {
            break; /* a blank line ends the list; stdin stays open for the hold */
        }
        memcpy(conns[n].path, line, strlen(line) + 1);
        n++;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    double t0 = now_s();
    double t_open = t0;
    size_t failed = 0;
    size_t opened = 0;  /* conns[0..opened) have been opened */
    size_t pending = 0; /* opened, no headers yet, not closed (as of the last count) */
    double headers_s = -1; /* seconds from the first connect until every stream had headers */
    struct epoll_event evs[LOAD_EPOLL_BATCH];
    int drain = strcmp(mode, "drain") == 0;
    int timed_out = 0;
    for (;;) {
        /* Open the connections whose turn has come: all at once without pacing. */
        size_t allowed = n;
        if (connect_rate > 0) {
            double due = (now_s() - t_open) * connect_rate + 1;
            allowed = due < (double)n ? (size_t)due : n;
        }
        while (opened < allowed && (max_pending == 0 || pending < max_pending)) {
            if (open_conn(&conns[opened], &dst, (int)opened, nsrc, ep) != 0) {
                failed++;
                conns[opened].closed = 1;
            } else {
                pending++;
            }
            opened++;
        }
        int wait_ms = opened < n ? LOAD_PACE_POLL_MS : LOAD_POLL_MS;
        int k = epoll_wait(ep, evs, LOAD_EPOLL_BATCH, wait_ms);
        for (int i = 0; i < k; i++) {
            on_ready(evs[i].data.ptr, evs[i].events, target, ep);
        }
        pending = 0;
        for (size_t i = 0; i < opened; i++) {
            pending += (!conns[i].got_headers && !conns[i].closed) ? 1 : 0;
        }
        size_t ready = 0;
        size_t closed = 0;
        size_t with_headers = 0;
        unsigned long long seen = 0;
        for (size_t i = 0; i < n; i++) {
            with_headers += (conns[i].got_headers || conns[i].closed) ? 1 : 0;
            /* A stream the server closed before its first heartbeat counts as settled (and
             * as failed in the figures) so the hold never waits for it. */
            ready += (conns[i].got_beat || conns[i].closed) ? 1 : 0;
            closed += conns[i].closed ? 1 : 0;
            seen += conns[i].events;
        }
        if (headers_s < 0 && with_headers >= n) {
            headers_s = now_s() - t_open;
        }
        if (sync == 1 && with_headers >= n) {
            printf("subscribed\n");
            fflush(stdout);
            sync = 2;
            t0 = now_s();
        }
        if (deadline_s > 0 && now_s() - t0 > deadline_s) {
            timed_out = 1;
            break;
        }
        if ((!drain && ready >= n) || (drain && closed >= n) ||
            (drain && expect > 0 && seen >= expect)) {
            break;
        }
    }
    double dt = now_s() - t0;
    uint64_t events = 0;
    uint64_t beats = 0;
    size_t headers = 0;
    for (size_t i = 0; i < n; i++) {
        events += conns[i].events;
        beats += conns[i].beats;
        headers += conns[i].got_headers ? 1 : 0;
        if (!drain && conns[i].closed && !conns[i].got_beat) {
            failed++;
        }
    }
    printf("%s {\"streams\":%zu,\"headers\":%zu,\"failed\":%zu,\"events\":%llu,"
           "\"heartbeats\":%llu,\"seconds\":%.3f,\"events_per_s\":%.0f,\"timed_out\":%d,"
           "\"headers_s\":%.3f}\n",
           drain ? "done" : "ready", n, headers, failed, (unsigned long long)events,
           (unsigned long long)beats, dt, dt > 0 ? (double)events / dt : 0.0, timed_out,
           headers_s);
    fflush(stdout);
    if (!drain) {
        while (fgets(line, sizeof(line), stdin) != NULL) {
        }
    }
    return 0;
}
