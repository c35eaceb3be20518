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
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
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


def cpu_ticks(pid):
    """utime + stime of pid (clock ticks, 10 ms here)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


def proc_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return str(pid)


# Idle runs also sample the servers' CPU while they hold the streams (heartbeats only), over
# this window: a figure, not a check.
HOLD_CPU_S = 5


def hold_cpu(pids):
    """CPU of pids over HOLD_CPU_S, in % of one core, summed by process name."""
    names = {x: proc_name(x) for x in pids}
    t0 = {x: cpu_ticks(x) for x in pids}
    time.sleep(HOLD_CPU_S)
    out = {}
    for x in pids:
        pct = (cpu_ticks(x) - t0[x]) * 100.0 / os.sysconf("SC_CLK_TCK") / HOLD_CPU_S
        out[names[x]] = round(out.get(names[x], 0) + pct, 1)
    return out


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


def run_load(load, addr, urls, mode, expect=0, on_subscribed=None, deadline_s=0, pace=()):
    """on_subscribed: called once every load process has printed `subscribed` (all its
    streams have their response headers); the load processes time from that point on.
    addr: one HOST:PORT, or a list of them (several server instances): the urls are then
    split into that many equal parts, part i against addr[i].
    pace: extra sse_load arguments (--connect-rate / --max-pending), per load process."""
    addrs = addr if isinstance(addr, list) else [addr]
    part = (len(urls) + len(addrs) - 1) // len(addrs)
    jobs = []  # (addr, urls) per load process
    for a, j in zip(addrs, range(0, len(urls), part)):
        mine = urls[j:j + part]
        jobs += [(a, mine[i:i + LOAD_PER_PROCESS]) for i in range(0, len(mine), LOAD_PER_PROCESS)]
    procs = []
    per = (expect + len(jobs) - 1) // len(jobs)  # events each load process waits for
    for a, chunk in jobs:
        extra = ["--expect-events", str(per)] if expect else []
        extra += ["--sync", "1"] if on_subscribed else []
        extra += ["--deadline-s", str(deadline_s)] if deadline_s else []
        extra += list(pace)
        p = subprocess.Popen([load, "--target", a, "--mode", mode, "--src-ips", "16"] + extra,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        p.stdin.write("\n".join(chunk) + "\n\n")
        p.stdin.flush()
        procs.append(p)
    if on_subscribed:
        for p in procs:
            line = p.stdout.readline()
            if line.strip() != "subscribed":
                # Not every stream got its headers before the deadline: report that line.
                return procs, {"failed_to_subscribe": line.strip()}
        on_subscribed()
    total = {}
    for p in procs:
        kind, _, js = p.stdout.readline().partition(" ")
        for k, v in json.loads(js).items():
            if k == "headers_s":  # -1: some stream of that process never got headers
                total[k] = -1 if v < 0 or total.get(k, 0) < 0 else max(total.get(k, 0), v)
            elif k == "seconds":
                total[k] = max(total.get(k, 0), v)
            else:
                total[k] = total.get(k, 0) + v
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


def idle(bins, load, n, workers, fanout, pace=()):
    """n idle streams over n/fanout chat streams (each chat stream read by fanout clients,
    within the chat service's subscriber cap), served by |workers| adapter processes."""
    chat, sse, addr = stack(bins, 10000, 1000, workers)
    try:
        per_chat = max(1, fanout)
        urls = create(addr, (n + per_chat - 1) // per_chat, "hold this stream open please")
        urls = [u for u in urls for _ in range(per_chat)][:n]
        pids = workers_of(sse.pid)
        base = sum(rss_kb(p) for p in pids)
        lps, res = run_load(load, addr, urls, "idle", pace=pace)
        held = sum(rss_kb(p) for p in pids)
        cpu = hold_cpu(pids + [chat.pid])
        release(lps)
        per = (held - base) * 1024 / max(1, res["headers"])
        print(f"idle: {res['headers']}/{n} streams open on {workers} adapter process(es), "
              f"RSS {base} -> {held} KiB, {per:.0f} B/stream ({per / 1024:.2f} KiB), "
              f"failed {res['failed']}; CPU while holding (% of a core): {cpu}")
        return {"streams": n, "workers": workers, "open": res["headers"], "rss_base_kib": base,
                "rss_held_kib": held, "bytes_per_stream": round(per), "hold_cpu_pct": cpu}
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
    listen 127.0.0.1:{port} reuseport backlog=4096;
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


def nchan_idle(load, n, workers, pace=()):
    st = nchan_start(workers)
    if st is None:
        print("nchan: not installed (libnginx-mod-nchan), skipped")
        return None
    p, addr = st
    try:
        pids = nchan_pids(p.pid)
        base = sum(rss_kb(x) for x in pids)
        lps, res = run_load(load, addr, [f"/sub/c{i}" for i in range(n)], "idle", pace=pace)
        held = sum(rss_kb(x) for x in pids)
        cpu = hold_cpu(pids)
        release(lps)
        per = (held - base) * 1024 / max(1, res["headers"])
        print(f"nchan idle: {res['headers']}/{n} streams on {workers} worker(s), RSS {base} -> "
              f"{held} KiB, {per:.0f} B/stream ({per / 1024:.2f} KiB), failed {res['failed']}; "
              f"CPU while holding (% of a core): {cpu}")
        return {"streams": n, "workers": workers, "open": res["headers"], "rss_base_kib": base,
                "rss_held_kib": held, "bytes_per_stream": round(per), "hold_cpu_pct": cpu}
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


# ---- peer: Pushpin (GRIP proxy, Debian pushpin 1.36) ------------------------------------------
# Pushpin holds the client connections; an origin answers each GET with GRIP headers
# (`Grip-Hold: stream`, `Grip-Channel: <ch>`, `Grip-Keep-Alive` for the 1 s heartbeat) and
# events are published to the handler's HTTP publish port. Debian's internal.conf points the
# proxy at a system zurl (/var/run/zurl, not running here) and the runner's zurl template denies
# 127.*: so the config below runs zurl under the runner with the proxy's zurl sockets in the
# run directory. Routes to the origin are trusted (pushpin's proxy ignores zurl's policies for
# routed requests), which is how the origin on 127.0.0.1 is reached.

# Pushpin loses streams under a burst of connects: pushpin-proxy hands every new request to
# zurl over a ZeroMQ PUSH socket whose high-water mark is 100 (compiled in: OUT_HWM in its
# zhttpmanager) and answers 502 "Error while proxying to origin." (ErrorUnavailable) when that
# socket cannot take a message at once. So sse_load keeps at most PUSHPIN_MAX_PENDING
# connections opened but not yet answered (--max-pending): in a 3000-stream trial 100 lost
# none, 200 lost one, 400 lost 175; 50 keeps a margin (no loss at 10k in seven runs).
# Only Pushpin is paced by default: pacing makes our idle figure smaller, not larger (see
# --pace-all), and Pushpin's drain clock starts once every reader is subscribed. A run that
# still loses streams gives up after its deadline and says so.
PUSHPIN_MAX_PENDING = 50
PUSHPIN_PACE = ("--max-pending", str(PUSHPIN_MAX_PENDING))
PUSHPIN_DEADLINE_S = 120
# Streams per Pushpin instance: condure is one process, and a process holds at most ~20000
# files here (a hard limit). Above this, or with --workers N, the idle run starts several.
PUSHPIN_PER_INSTANCE = 16000

PUSHPIN_CONF = """
[global]
include=/usr/lib/pushpin/internal.conf
rundir={dir}/run
ipc_prefix=pp-
port_offset={offset}
stats_connection_ttl=120

[runner]
services=condure,zurl,pushpin-proxy,pushpin-handler
http_port=127.0.0.1:{port}
logdir={dir}/log
log_level=1
client_buffer_size=8192
client_maxconn=60000
condure_bin=condure
zurl_bin=zurl

[proxy]
routesfile={dir}/routes
updates_check=off
zurl_out_specs=ipc://{{rundir}}/{{ipc_prefix}}zurl-in
zurl_out_stream_specs=ipc://{{rundir}}/{{ipc_prefix}}zurl-in-stream
zurl_in_specs=ipc://{{rundir}}/{{ipc_prefix}}zurl-out
sig_key=bench

[handler]
push_in_spec=tcp://127.0.0.1:5560
push_in_sub_specs=tcp://127.0.0.1:5562
push_in_http_addr=127.0.0.1
push_in_http_port=5561
push_in_http_max_body_size=100000000
command_spec=tcp://127.0.0.1:5563
stats_spec=ipc://{{rundir}}/{{ipc_prefix}}stats
message_rate=100000000
message_hwm=10000000
message_wait=5000
id_cache_ttl=0
connection_subscription_max=20
subscription_linger=60
"""


class GripOrigin(http.server.BaseHTTPRequestHandler):
    """The origin behind Pushpin: GET /sub/<ch> -> hold the request as an SSE stream on <ch>."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        ch = self.path.rsplit("/", 1)[-1]
        body = b": ok\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Grip-Hold", "stream")
        self.send_header("Grip-Channel", ch)
        self.send_header("Grip-Keep-Alive",
                         "event: heartbeat\\ndata: {}\\n\\n; format=cstring; timeout=1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class GripOriginServer(http.server.ThreadingHTTPServer):
    """Quiet about clients (zurl) that closed first, which happens when Pushpin cancels."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def ports_free(first, count):
    for q in range(first, first + count):
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", q))
        except OSError:
            return False
    return True


def pushpin_start():
    if shutil.which("pushpin") is None or shutil.which("condure") is None:
        return None
    origin = GripOriginServer(("127.0.0.1", 0), GripOrigin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    d = tempfile.mkdtemp(prefix="lg-pushpin-")
    os.makedirs(f"{d}/run")
    os.makedirs(f"{d}/log")
    port = free_port()
    offset = 0
    for _ in range(100):
        base = free_port()
        if base > 5560 and ports_free(base, 4):
            offset = base - 5560
            break
    with open(f"{d}/routes", "w") as f:
        f.write(f"* 127.0.0.1:{origin.server_address[1]}\n")
    with open(f"{d}/pushpin.conf", "w") as f:
        f.write(PUSHPIN_CONF.format(dir=d, port=port, offset=offset))
    p = subprocess.Popen(["pushpin", "--config", f"{d}/pushpin.conf"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    addr = f"127.0.0.1:{port}"
    pub = ("127.0.0.1", 5561 + offset)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            # Ready once a held stream answers through the whole chain.
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /sub/probe HTTP/1.1\r\nHost: x\r\n\r\n")
            got = s.recv(4096)
            s.close()
            socket.create_connection(pub, timeout=1).close()
            if b"200" in got.split(b"\r\n", 1)[0]:
                return p, addr, pub, origin, d
        except OSError:
            pass
        time.sleep(0.1)
    pushpin_stop(p, origin)
    print(f"pushpin: did not become ready (logs in {d}/log)")
    return None


def pushpin_stop(p, origin, d=None):
    """Stops the runner's process group and the origin; removes the run directory d (config,
    sockets, logs) when given: runs that lose streams keep theirs for the logs."""
    try:
        os.killpg(p.pid, 15)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.wait()
    origin.shutdown()
    if d is not None:
        shutil.rmtree(d, ignore_errors=True)


def tree_pids(pid):
    """pid and all its descendants (pushpin's runner starts condure, zurl, proxy, handler)."""
    out = [pid]
    i = 0
    while i < len(out):
        try:
            with open(f"/proc/{out[i]}/task/{out[i]}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
        i += 1
    return out


def pushpin_idle(load, n, instances=1):
    """n idle streams over |instances| Pushpin instances (each its own condure, proxy,
    handler, zurl and origin; the urls split evenly). One process may hold at most ~20000
    files here and condure is one process, so 50k streams need several instances."""
    started = []
    keep = True  # keep the logs unless every stream was served
    try:
        for _ in range(instances):
            st = pushpin_start()
            if st is None:
                print("pushpin: not installed or not ready, skipped")
                return None
            started.append(st)
        pids = [x for st in started for x in tree_pids(st[0].pid)]
        before = {x: rss_kb(x) for x in pids}
        deadline_s = PUSHPIN_DEADLINE_S + n / 100
        lps, res = run_load(load, [st[1] for st in started], [f"/sub/c{i}" for i in range(n)],
                            "idle", deadline_s=deadline_s, pace=PUSHPIN_PACE)
        after = {x: rss_kb(x) for x in pids}
        names = {x: proc_name(x) for x in pids}
        cpu = hold_cpu(pids)
        release(lps)
        keep = bool(res.get("timed_out") or res["failed"] or res["headers"] < n)
        base, held = sum(before.values()), sum(after.values())
        per = (held - base) * 1024 / max(1, res["headers"])
        growth = {}  # KiB of growth per process name, summed over the instances
        for x in pids:
            growth[names[x]] = growth.get(names[x], 0) + after[x] - before[x]
        if res.get("timed_out"):
            print(f"pushpin idle: TIMED OUT after {deadline_s:.0f} s (streams without "
                  f"a heartbeat remained; logs in {[st[4] for st in started]})")
        print(f"pushpin idle: {res['headers']}/{n} streams on {instances} instance(s) "
              f"({len(pids)} processes), RSS {base} -> {held} KiB, {per:.0f} B/stream "
              f"({per / 1024:.2f} KiB), failed {res['failed']}, all had headers after "
              f"{res.get('headers_s', -1):.1f} s (-1: not all); growth by process (KiB): "
              f"{growth}; CPU while holding (% of a core): {cpu}")
        return {"streams": n, "instances": instances, "open": res["headers"],
                "rss_base_kib": base, "rss_held_kib": held, "bytes_per_stream": round(per),
                "growth_kib": growth, "headers_s": res.get("headers_s"), "hold_cpu_pct": cpu,
                "timed_out": res.get("timed_out", 0)}
    finally:
        for st in started:
            pushpin_stop(st[0], st[3], None if keep else st[4])


def pushpin_publish(pub, bodies):
    """POSTs each prepared JSON body to the handler's HTTP publish port over one connection."""
    c = http.client.HTTPConnection(*pub, timeout=WAIT_S)
    for body in bodies:
        c.request("POST", "/publish/", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"pushpin publish: {r.status}")
    c.close()


def pushpin_drain(load, n, per_stream):
    """Pushpin keeps no history, so readers subscribe first (sse_load --sync prints
    `subscribed` once every stream has its headers) and the events are published after;
    events/s counts from that line to the last expected event. The publish bodies (one POST
    per event index, an item per channel) are encoded before the clock starts."""
    st = pushpin_start()
    if st is None:
        return None
    p, addr, pub, origin, d = st
    keep = True  # keep the logs unless every event arrived
    try:
        data = json.dumps({"type": "content", "data": {"content": " word"}})
        bodies = [json.dumps({"items": [
            {"channel": f"c{i}", "formats": {"http-stream": {
                "content": f"id: c{i}.{k}\nevent: content\ndata: {data}\n\n"}}}
            for i in range(n)]}) for k in range(per_stream)]
        pids = tree_pids(p.pid)
        marks = {}

        def publish():
            marks["cpu0"] = {x: cpu_ticks(x) for x in pids}
            t = time.monotonic()
            pushpin_publish(pub, bodies)
            marks["publish_s"] = time.monotonic() - t

        lps, res = run_load(load, addr, [f"/sub/c{i}" for i in range(n)], "drain",
                            expect=n * per_stream, on_subscribed=publish,
                            deadline_s=PUSHPIN_DEADLINE_S, pace=PUSHPIN_PACE)
        if "cpu0" in marks:
            # CPU ticks (10 ms) each Pushpin process spent from `subscribed` to the last event.
            res["cpu_ticks"] = {proc_name(x): cpu_ticks(x) - marks["cpu0"][x] for x in pids}
            res["publish_s"] = round(marks["publish_s"], 3)
        release(lps)
        if "events" not in res or res.get("timed_out"):
            print(f"pushpin drain: FAILED or TIMED OUT ({PUSHPIN_DEADLINE_S} s): {res} "
                  f"(logs in {d}/log)")
            return res
        print(f"pushpin drain: {n} streams, {res['events']} events in {res['seconds']:.2f} s = "
              f"{res['events_per_s']:.0f} events/s (subscribed {res.get('headers_s', 0):.1f} s "
              f"after the first connect; the {per_stream} POSTs took {res['publish_s']:.2f} s; "
              f"CPU ticks {res['cpu_ticks']})")
        keep = False
        return res
    finally:
        pushpin_stop(p, origin, None if keep else d)


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
    ap.add_argument("--peers", default="nchan,pushpin",
                    help="peers measured in the same run: nchan,pushpin or none")
    ap.add_argument("--peers-only", action="store_true", help="measure only the peers")
    ap.add_argument("--pace-all", action="store_true",
                    help="idle: pace llmgate-sse's and nchan's connects as Pushpin's are "
                         "(sse_load --max-pending %d); by default only Pushpin is paced"
                         % PUSHPIN_MAX_PENDING)
    a = ap.parse_args()
    if a.smoke:
        a.idle_streams, a.drain_streams = 50, 20
    pace = PUSHPIN_PACE if a.pace_all else ()
    out = {}
    if not a.peers_only:
        out["idle"] = idle(a.bin_dir, a.load, a.idle_streams, a.workers, a.fanout, pace)
        out["drain"] = drain(a.bin_dir, a.load, a.drain_streams)
    if "pushpin" in a.peers.split(","):
        out["pushpin_idle"] = pushpin_idle(a.load, a.idle_streams, max(
            a.workers, (a.idle_streams + PUSHPIN_PER_INSTANCE - 1) // PUSHPIN_PER_INSTANCE))
        d = out.get("drain") or {"events": 161 * a.drain_streams, "streams": a.drain_streams}
        out["pushpin_drain"] = pushpin_drain(a.load, a.drain_streams,
                                             max(1, round(d["events"] / max(1, d["streams"]))))
    if "nchan" in a.peers.split(","):
        out["nchan_idle"] = nchan_idle(a.load, a.idle_streams, a.workers, pace)
        d = out.get("drain") or {"events": 161 * a.drain_streams, "streams": a.drain_streams}
        out["nchan_drain"] = nchan_drain(a.load, a.drain_streams,
                                         max(1, round(d["events"] / max(1, d["streams"]))))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
