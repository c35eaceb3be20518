#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""llmgate-sse benchmark: adapter memory per idle heartbeating SSE stream, and events/s
delivered to many streams at full speed. Prints figures; asserts nothing about timing.

Starts llmgate-chat (demo provider) and llmgate-sse on 127.0.0.1 port 0, creates streams with
POST /v1/chat/streams, then drives the event streams with sse_load (epoll, one connection per
stream, several 127.x source addresses).

  idle:  chat paces tokens 10 s apart, the adapter heartbeats every second; once every stream
         has seen a heartbeat or an event, the adapter's RSS growth / streams is the cost of
         an idle stream (its HTTP connection, request, timers, and its ResumeStream call).
  drain: chat generates at full speed (pace 0) before the reads start; each stream replays
         its whole answer; events/s = all events / time until every stream ended.

Usage: /usr/bin/python3 tests/bench/sse_bench.py --bin-dir build-rel/bin --load build-rel/tests/sse_load
       [--idle-streams 10000] [--drain-streams 1000] [--smoke]
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import time

WAIT_S = 60


def start(args, name):
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    addrs = {}
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        m = re.match(r"listening (\S+) (\S+)", line)
        if m:
            addrs[m.group(1)] = m.group(2)
        if name in addrs:
            return p, addrs
    p.kill()
    raise SystemExit(f"{args[0]}: no listening line")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def create(addr, n, prompt):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=WAIT_S)
    urls = []
    body = json.dumps({"model": "demo", "messages": [{"role": "user", "content": prompt}]})
    for i in range(n):
        c.request("POST", "/v1/chat/streams", body=body,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 201:
            raise SystemExit(f"create {i}: {r.status} {data[:200]!r}")
        urls.append(json.loads(data)["events_url"])
        if r.getheader("Connection", "").lower() == "close":
            c.close()
            c = http.client.HTTPConnection(host, int(port), timeout=WAIT_S)
    c.close()
    return urls


def run_load(load, addr, urls, mode):
    p = subprocess.Popen([load, "--target", addr, "--mode", mode, "--src-ips", "16"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    p.stdin.write("\n".join(urls) + "\n\n")
    p.stdin.flush()
    line = p.stdout.readline()
    kind, _, js = line.partition(" ")
    return p, json.loads(js)


def stack(bins, pace, heartbeat_ms):
    chat, ca = start([f"{bins}/llmgate-chat", "--listen", "127.0.0.1:0", "--admin-listen",
                      "127.0.0.1:0", "--records-file", "/dev/null", "--log-level", "error",
                      "--demo-pace-ms", str(pace)], "grpc")
    sse, sa = start([f"{bins}/llmgate-sse", "--listen", "127.0.0.1:0", "--chat", ca["grpc"],
                     "--heartbeat-ms", str(heartbeat_ms), "--max-streams-per-user", "1000000",
                     "--log-level", "error"], "http")
    return chat, sse, sa["http"]


def stop(*ps):
    for p in ps:
        p.terminate()
    for p in ps:
        try:
            p.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            p.kill()


def idle(bins, load, n):
    chat, sse, addr = stack(bins, 10000, 1000)
    try:
        urls = create(addr, n, "hold this stream open please")
        base = rss_kb(sse.pid)
        lp, res = run_load(load, addr, urls, "idle")
        held = rss_kb(sse.pid)
        lp.stdin.close()
        lp.wait()
        per = (held - base) * 1024 / max(1, res["headers"])
        print(f"idle: {res['headers']}/{n} streams open, adapter RSS {base} -> {held} KiB, "
              f"{per:.0f} B/stream ({per / 1024:.2f} KiB), failed {res['failed']}")
        return {"streams": n, "open": res["headers"], "rss_base_kib": base,
                "rss_held_kib": held, "bytes_per_stream": round(per)}
    finally:
        stop(sse, chat)


def drain(bins, load, n):
    chat, sse, addr = stack(bins, 0, 15000)
    try:
        urls = create(addr, n, "Explain how a gateway relays events to many readers at once.")
        lp, res = run_load(load, addr, urls, "drain")
        lp.wait()
        print(f"drain: {n} streams, {res['events']} events in {res['seconds']:.2f} s = "
              f"{res['events_per_s']:.0f} events/s")
        return res
    finally:
        stop(sse, chat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--idle-streams", type=int, default=10000)
    ap.add_argument("--drain-streams", type=int, default=1000)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (ctest)")
    a = ap.parse_args()
    if a.smoke:
        a.idle_streams, a.drain_streams = 50, 20
    out = {"idle": idle(a.bin_dir, a.load, a.idle_streams),
           "drain": drain(a.bin_dir, a.load, a.drain_streams)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
