#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Soak (issue 7): N concurrent SSE streams through llmgate-sse -> llmgate-chat (demo
provider) for a bounded time, each client looping POST /v1/chat/streams + GET events until
`done`. RSS and fd counts of both processes are sampled every LG_SOAK_SAMPLE_S; the last
window of samples must stay within a generous bound of the first window (a plateau, not a
slope), and once the load stops the fds, open streams and stream registry come back down.
Nothing here is timed: the duration only bounds how long the load runs.

CI size: LG_SOAK_STREAMS=200, LG_SOAK_SECONDS=30 (defaults). The issue's size: 1000 streams
for minutes, e.g. LG_SOAK_STREAMS=1000 LG_SOAK_SECONDS=600.
  test_soak.py --chat BIN --sse BIN --workdir DIR
Under ASan the allocator's quarantine is capped (quarantine_size_mb=16) so freed memory held
for use-after-free detection is not mistaken for growth; leaks are still checked at exit.
"""
import argparse
import json
import os
import shutil
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "faults"))
import lib  # noqa: E402

ARGS = None
ENV = {}
STREAMS = int(os.environ.get("LG_SOAK_STREAMS", "200"))
SECONDS = float(os.environ.get("LG_SOAK_SECONDS", "30"))
SAMPLE_S = float(os.environ.get("LG_SOAK_SAMPLE_S", "1"))
LOG_LEVEL = os.environ.get("LG_SOAK_LOG_LEVEL", "warn")


def child_env():
    env = dict(os.environ)
    asan = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=16"
    return env


def setUpModule():
    work = ARGS.workdir
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    ENV["records"] = os.path.join(work, "records.jsonl")
    try:
        ENV["chat"] = lib.Proc([ARGS.chat, "--listen", "127.0.0.1:0", "--admin-listen",
                                "127.0.0.1:0", "--records-file", ENV["records"],
                                "--demo-pace-ms", "50", "--retention-ms", "2000",
                                "--grace-ms", "2000", "--log-level", LOG_LEVEL],
                               ["grpc", "admin"], env=child_env(),
                               log=os.path.join(work, "chat.log"))
        ENV["sse"] = lib.Proc([ARGS.sse, "--listen", "127.0.0.1:0", "--chat",
                               ENV["chat"].addr["grpc"], "--heartbeat-ms", "1000",
                               "--max-requests-per-conn", "1000",
                               "--max-streams-per-user", "100000",
                               "--log-level", LOG_LEVEL],
                              ["http"], env=child_env(), log=os.path.join(work, "sse.log"))
    except BaseException:
        for k in ("sse", "chat"):
            if k in ENV:
                ENV[k].kill()
        raise


def tearDownModule():
    c1 = ENV["sse"].stop()
    c2 = ENV["chat"].stop()
    assert c1 == 0 and c2 == 0, "exit codes sse=%s chat=%s (LeakSanitizer?)" % (c1, c2)


def one_stream(host, port, stats):
    body = json.dumps({"model": "demo", "max_tokens": 40,
                       "messages": [{"role": "user", "content": "soak"}]}).encode()
    s = socket.create_connection((host, port), timeout=60)
    try:
        s.sendall(b"POST /v1/chat/streams HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        f = s.makefile("rb")
        status = int(f.readline().split()[1])
        n = 0
        while True:
            line = f.readline().strip()
            if not line:
                break
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        created = json.loads(f.read(n))
        if status != 201:
            stats["errors"] += 1
            return
        stats["started"] += 1
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % created["events_url"].encode())
        if b"200" not in f.readline():
            stats["errors"] += 1
            return
        while True:
            line = f.readline()
            if not line:
                stats["errors"] += 1
                return
            if line.startswith(b"event: done"):
                stats["done"] += 1
                return
            if line.startswith(b"event: error"):
                stats["errors"] += 1
                return
    finally:
        s.close()


def sample():
    out = {}
    for k in ("sse", "chat"):
        out[k + "_rss_kb"] = ENV[k].rss_kb()
        out[k + "_fds"] = ENV[k].fds()
    return out


class Soak(unittest.TestCase):
    def test_soak_streams_plateau(self):
        host, port = ENV["sse"].addr["http"].rsplit(":", 1)
        port = int(port)
        base = sample()
        stop = threading.Event()
        stats = {"started": 0, "done": 0, "errors": 0}
        lock = threading.Lock()

        def client():
            local = {"started": 0, "done": 0, "errors": 0}
            while not stop.is_set():
                try:
                    one_stream(host, port, local)
                except (OSError, ValueError, IndexError):
                    local["errors"] += 1
            with lock:
                for k in stats:
                    stats[k] += local[k]
        ts = [threading.Thread(target=client) for _ in range(STREAMS)]
        for t in ts:
            t.start()
        samples = []
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            time.sleep(SAMPLE_S)  # the sampling period, not a wait for a condition
            samples.append(sample())
        stop.set()
        for t in ts:
            t.join()
        third = max(1, len(samples) // 3)
        first, last = samples[:third], samples[-third:]
        report = {"streams": STREAMS, "seconds": SECONDS, "samples": len(samples),
                  "baseline": base, "stats": stats}
        for key in samples[0]:
            report[key] = {"first_max": max(s[key] for s in first),
                           "last_max": max(s[key] for s in last)}
        sys.stderr.write("[soak] %s\n" % json.dumps(report))
        self.assertEqual(stats["errors"], 0)
        self.assertGreater(stats["done"], STREAMS)
        for k in ("sse_rss_kb", "chat_rss_kb"):
            a, b = report[k]["first_max"], report[k]["last_max"]
            # Generous plateau bound: the last window may not exceed the first by half again
            # plus 32 MiB. A per-stream leak over thousands of streams would break it.
            self.assertLessEqual(b, a * 1.5 + 32 * 1024, "%s grew %d -> %d kB" % (k, a, b))
        for k in ("sse_fds", "chat_fds"):
            a, b = report[k]["first_max"], report[k]["last_max"]
            self.assertLessEqual(b, a + 64, "%s grew %d -> %d" % (k, a, b))
        # After the load: every client socket is released. The adapter keeps its pool of gRPC
        # connections to chat (100 calls each), so allow one per 100 streams, twice over.
        pool = 2 * (STREAMS // 100 + 1)
        lib.wait_for(lambda: ENV["sse"].fds() <= base["sse_fds"] + pool + 4, "adapter fds back")
        lib.wait_for(lambda: lib.metrics(ENV["sse"].addr["http"]).get(
            "llmgate_sse_streams_open", 0) == 0, "no stream open")
        lib.wait_for(lambda: lib.metrics(ENV["chat"].addr["admin"]).get(
            "llmgate_chat_streams", 0) == 0, "chat registry empty after retention")
        lib.wait_for(lambda: len(lib.records(ENV["records"])) == stats["started"],
                     "one record per stream started")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat", required=True)
    ap.add_argument("--sse", required=True)
    ap.add_argument("--workdir", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
