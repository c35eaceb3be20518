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
       [--idle-streams 10000] [--drain-streams 1000] [--workers 1] [--fanout 1] [--smoke]
  50k: --idle-streams 50000 --workers 4 --fanout 16 (a chat process holds at most 10000
  streams, so 16 readers share each chat stream; a process here holds at most ~20000 fds)
"""
import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
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


# One process may hold about 20000 open files here (a hard limit): split the load.
LOAD_PER_PROCESS = 16000


def run_load(load, addr, urls, mode, expect=0):
    procs = []
    nprocs = max(1, (len(urls) + LOAD_PER_PROCESS - 1) // LOAD_PER_PROCESS)
    per = (expect + nprocs - 1) // nprocs  # events each load process waits for
    for i in range(0, len(urls), LOAD_PER_PROCESS):
        extra = ["--expect-events", str(per)] if expect else []
        p = subprocess.Popen([load, "--target", addr, "--mode", mode, "--src-ips", "16"] + extra,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        p.stdin.write("\n".join(urls[i:i + LOAD_PER_PROCESS]) + "\n\n")
        p.stdin.flush()
        procs.append(p)
    total = {}
    for p in procs:
        kind, _, js = p.stdout.readline().partition(" ")
        for k, v in json.loads(js).items():
            total[k] = max(total.get(k, 0), v) if k == "seconds" else total.get(k, 0) + v
    if total.get("seconds"):
        total["events_per_s"] = total["events"] / total["seconds"]
    return procs, total


def release(procs):
    for p in procs:
        p.stdin.close()
    for p in procs:
        p.wait()


def workers_of(pid):
    """The adapter's processes: the leader and the workers it forked."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return pids


def stack(bins, pace, heartbeat_ms, workers=1):
    chat, ca = start([f"{bins}/llmgate-chat", "--listen", "127.0.0.1:0", "--admin-listen",
                      "127.0.0.1:0", "--records-file", "/dev/null", "--log-level", "error",
                      "--demo-pace-ms", str(pace)], "grpc")
    sse, sa = start([f"{bins}/llmgate-sse", "--listen", "127.0.0.1:0", "--chat", ca["grpc"],
                     "--heartbeat-ms", str(heartbeat_ms), "--max-streams-per-user", "1000000",
                     "--workers", str(workers), "--log-level", "error"], "http")
    return chat, sse, sa["http"]


def stop(*ps):
    for p in ps:
        p.terminate()
    for p in ps:
        try:
            p.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            p.kill()


def idle(bins, load, n, workers, fanout):
    """n idle streams over n/fanout chat streams (each chat stream read by fanout clients,
    within the chat service's subscriber cap), served by |workers| adapter processes."""
    chat, sse, addr = stack(bins, 10000, 1000, workers)
    try:
        per_chat = max(1, fanout)
        urls = create(addr, (n + per_chat - 1) // per_chat, "hold this stream open please")
        urls = [u for u in urls for _ in range(per_chat)][:n]
        pids = workers_of(sse.pid)
        base = sum(rss_kb(p) for p in pids)
        lps, res = run_load(load, addr, urls, "idle")
        held = sum(rss_kb(p) for p in pids)
        release(lps)
        per = (held - base) * 1024 / max(1, res["headers"])
        print(f"idle: {res['headers']}/{n} streams open on {workers} adapter process(es), "
              f"RSS {base} -> {held} KiB, {per:.0f} B/stream ({per / 1024:.2f} KiB), "
              f"failed {res['failed']}")
        return {"streams": n, "workers": workers, "open": res["headers"], "rss_base_kib": base,
                "rss_held_kib": held, "bytes_per_stream": round(per)}
    finally:
        stop(sse, chat)


def drain(bins, load, n):
    chat, sse, addr = stack(bins, 0, 15000)
    try:
        urls = create(addr, n, "Explain how a gateway relays events to many readers at once.")
        lps, res = run_load(load, addr, urls, "drain")
        release(lps)
        print(f"drain: {n} streams, {res['events']} events in {res['seconds']:.2f} s = "
              f"{res['events_per_s']:.0f} events/s")
        return res
    finally:
        stop(sse, chat)


# ---- peer: nchan (nginx module, Debian libnginx-mod-nchan) ---------------------------------

NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
NCHAN_CONF = """
load_module {module};
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 20000;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 19000; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  nchan_shared_memory_size 1024M;
  server {{
    listen 127.0.0.1:{port} reuseport;
    location ~ ^/sub/(\\w+)$ {{
      nchan_subscriber eventsource;
      nchan_channel_id $1;
      nchan_subscriber_first_message oldest;
      nchan_eventsource_ping_interval 1;
      nchan_eventsource_ping_event heartbeat;
    }}
    location ~ ^/pub/(\\w+)$ {{
      nchan_publisher;
      nchan_channel_id $1;
      nchan_message_buffer_length 400;
      nchan_message_timeout 10m;
    }}
  }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nchan_start(workers):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx) or not os.path.exists(NCHAN_MODULE):
        return None
    d = tempfile.mkdtemp(prefix="lg-nchan-")
    port = free_port()
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(NCHAN_CONF.format(module=NCHAN_MODULE, workers=workers, dir=d, port=port))
    p = subprocess.Popen([nginx, "-p", d, "-c", f"{d}/nginx.conf"], stderr=subprocess.DEVNULL)
    addr = f"127.0.0.1:{port}"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, addr
        except OSError:
            time.sleep(0.05)
    p.kill()
    return None


def nchan_pids(master):
    return workers_of(master)


def nchan_idle(load, n, workers):
    st = nchan_start(workers)
    if st is None:
        print("nchan: not installed (libnginx-mod-nchan), skipped")
        return None
    p, addr = st
    try:
        pids = nchan_pids(p.pid)
        base = sum(rss_kb(x) for x in pids)
        lps, res = run_load(load, addr, [f"/sub/c{i}" for i in range(n)], "idle")
        held = sum(rss_kb(x) for x in pids)
        release(lps)
        per = (held - base) * 1024 / max(1, res["headers"])
        print(f"nchan idle: {res['headers']}/{n} streams on {workers} worker(s), RSS {base} -> "
              f"{held} KiB, {per:.0f} B/stream ({per / 1024:.2f} KiB), failed {res['failed']}")
        return {"streams": n, "workers": workers, "open": res["headers"], "rss_base_kib": base,
                "rss_held_kib": held, "bytes_per_stream": round(per)}
    finally:
        p.terminate()
        p.wait()


def nchan_drain(load, n, per_stream):
    st = nchan_start(1)
    if st is None:
        return None
    p, addr = st
    try:
        host, port = addr.rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(port), timeout=WAIT_S)
        body = json.dumps({"type": "content", "data": {"content": " word"}})
        for i in range(n):
            for _ in range(per_stream):
                c.request("POST", f"/pub/c{i}", body=body)
                c.getresponse().read()
        c.close()
        lps, res = run_load(load, addr, [f"/sub/c{i}" for i in range(n)], "drain",
                            expect=n * per_stream)
        release(lps)
        print(f"nchan drain: {n} streams, {res['events']} events in {res['seconds']:.2f} s = "
              f"{res['events_per_s']:.0f} events/s")
        return res
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--idle-streams", type=int, default=10000)
    ap.add_argument("--drain-streams", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1, help="adapter processes for --idle")
    ap.add_argument("--fanout", type=int, default=1,
                    help="readers per chat stream for --idle (<= 16, the chat subscriber cap)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (ctest)")
    ap.add_argument("--peers", default="nchan", help="peers measured in the same run: nchan or none")
    ap.add_argument("--peers-only", action="store_true", help="measure only the peers")
    a = ap.parse_args()
    if a.smoke:
        a.idle_streams, a.drain_streams = 50, 20
    out = {}
    if not a.peers_only:
        out["idle"] = idle(a.bin_dir, a.load, a.idle_streams, a.workers, a.fanout)
        out["drain"] = drain(a.bin_dir, a.load, a.drain_streams)
    if "nchan" in a.peers.split(","):
        out["nchan_idle"] = nchan_idle(a.load, a.idle_streams, a.workers)
        d = out.get("drain") or {"events": 161 * a.drain_streams, "streams": a.drain_streams}
        out["nchan_drain"] = nchan_drain(a.load, a.drain_streams,
                                         max(1, round(d["events"] / max(1, d["streams"]))))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
