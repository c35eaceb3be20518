#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark of llmgate-chat (issue 3): prints figures, asserts nothing about timing.

1. Streams/s and tokens/s through the service with the demo provider at pace 0, driven by
   h2load with a pre-framed ChatRequest on /llmgate.chat.v1.ChatService/StreamChat.
2. The same through the OpenAI-compatible fake upstream (tests/fakes/openai_fake.py, a
   Python ThreadingHTTPServer: it is the bottleneck there, so the fake's own rate, measured
   directly with h2load --h1 in the same run, is printed beside it).
3. Time to first token added by the gateway: sequential requests, interleaved, (a) straight
   to the fake over a raw socket (HTTP/1.1, first content chunk) and (b) through llmgate-chat
   with a grpcio client (first ContentDelta event); p50 and p99 of each and of (b) - (a).
   Both clients are Python; grpcio's own per-call cost is included in (b).

Correctness is checked, not timed: every stream must have produced exactly one billing record
with status success, and h2load must report no failures (exit status non-zero otherwise).

  chat_bench.py --chat build/bin/llmgate-chat [--smoke] [--duration S] [--ttft-n N]
"""
import argparse
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def start(argv, names, **kw):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, **kw)
    addr = {}
    deadline = time.monotonic() + 20
    while set(names) - set(addr):
        if time.monotonic() > deadline:
            raise RuntimeError("%s did not start" % argv[0])
        line = p.stdout.readline().decode()
        if not line:
            raise RuntimeError("%s exited with %s" % (argv[0], p.wait()))
        parts = line.split()
        if len(parts) == 3 and parts[0] == "listening":
            addr[parts[1]] = parts[2]
    return p, addr


def parse_h2load(out):
    r = {}
    m = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", out)
    if m:
        scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6}.get(m.group(2), 1.0)
        r["seconds"] = float(m.group(1)) * scale
        r["rps"] = float(m.group(3))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    if m:
        (r["total"], r["started"], r["done"], r["succeeded"], r["failed"], r["errored"],
         r["timeout"]) = (int(x) for x in m.groups())
    return r


def h2load(url, body_file, headers, n, c, m, h1=False):
    argv = ["h2load", "-n", str(n), "-c", str(c), "-m", str(m), "-t", "1", "-d", body_file]
    for h in headers:
        argv += ["-H", h]
    if h1:
        argv.append("--h1")
    argv.append(url)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout
    r = parse_h2load(out)
    if r.get("succeeded") != n or r.get("failed") or r.get("errored"):
        raise RuntimeError("h2load failed:\n" + out[-1500:])
    return r


def pct(vals, q):
    s = sorted(vals)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def count_success(path):
    n = 0
    with open(path) as f:
        for line in f:
            if '"status":"success"' in line:
                n += 1
    return n


def wait_records(path, n):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(path) and count_success(path) >= n:
            return count_success(path)
        time.sleep(0.05)
    return count_success(path) if os.path.exists(path) else 0


def ttft_direct(fake, body):
    host, port = fake.rsplit(":", 1)
    req = ("POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\nConnection: close\r\n\r\n" % (fake, len(body))).encode() + body
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter()
    s.sendall(req)
    buf = b""
    while b'"content":"tok' not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("fake closed before the first token")
        buf += chunk
    t = time.perf_counter() - t0
    while s.recv(65536):
        pass
    s.close()
    return t


def ttft_gateway(stub, req):
    t0 = time.perf_counter()
    it = stub.StreamChat(req, timeout=30)
    t = None
    for ev in it:
        if t is None and ev.WhichOneof("event") == "content":
            t = time.perf_counter() - t0
    return t


def overhead_hist(admin):
    """Cumulative bucket counts of llmgate_chat_gateway_ttft_overhead_seconds."""
    import urllib.request
    with urllib.request.urlopen("http://%s/metrics" % admin) as f:
        text = f.read().decode()
    out = {}
    for m in re.finditer(r'^llmgate_chat_gateway_ttft_overhead_seconds_bucket\{le="([^"]+)"\} (\d+)',
                         text, re.M):
        out[m.group(1)] = int(m.group(2))
    return out


def hist_quantile(before, after, q):
    """Upper bound (ms) of the bucket holding quantile q of the observations in between."""
    les = sorted((float(k) if k != "+Inf" else float("inf"), k) for k in after)
    total = after["+Inf"] - before.get("+Inf", 0)
    if total <= 0:
        return None
    for bound, k in les:
        if after[k] - before.get(k, 0) >= q * total:
            return bound * 1000
    return float("inf")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat", required=True)
    ap.add_argument("--fake", default=os.path.join(ROOT, "tests/fakes/openai_fake.py"))
    ap.add_argument("--protos", default=os.path.join(ROOT, "protos"))
    ap.add_argument("--smoke", action="store_true", help="tiny run (ctest)")
    ap.add_argument("--streams", type=int, default=20000, help="demo streams per h2load run")
    ap.add_argument("--fake-streams", type=int, default=2000)
    ap.add_argument("--tokens", type=int, default=50, help="tokens per stream")
    ap.add_argument("--ttft-n", type=int, default=500)
    ap.add_argument("--ttft-tool", help="chat_ttft binary: TTFT from one C client on both paths")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.smoke:
        a.streams, a.fake_streams, a.ttft_n = 200, 50, 20

    tmp = tempfile.mkdtemp(prefix="lg-chat-bench-")
    subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "-I" + a.protos,
                           "--python_out=" + tmp, "--grpc_python_out=" + tmp,
                           "llmgate/chat/v1/chat.proto"])
    sys.path.insert(0, tmp)
    import grpc
    from llmgate.chat.v1 import chat_pb2 as pb, chat_pb2_grpc as pbg

    fake, fa = start([sys.executable, a.fake, "--listen", "127.0.0.1:0"], ["fake"])
    fake_model = "fake-long-%d" % a.tokens
    cfg = {"providers": [
        {"id": "fake", "kind": "openai", "base_url": "http://%s/v1" % fa["fake"],
         "max_retries": 0, "models": [{"name": fake_model, "input_usd_per_mtok": 2.5,
                                       "output_usd_per_mtok": 10}]},
        {"id": "demo", "kind": "demo"}]}
    cfg_path = os.path.join(tmp, "chat.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    records = os.path.join(tmp, "records.jsonl")
    chat, ca = start([a.chat, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                      "--config", cfg_path, "--records-file", records, "--demo-pace-ms", "0",
                      "--log-level", "warn", "--retention-ms", "1000"], ["grpc", "admin"],
                     stderr=open(os.path.join(tmp, "chat.log"), "wb"))
    results = {}
    try:
        ch = grpc.insecure_channel(ca["grpc"])
        stub = pbg.ChatServiceStub(ch)
        user = [pb.ChatMessage(role="user", content="Explain streaming backpressure briefly")]
        demo_req = pb.ChatRequest(user_id="bench", model="demo", max_tokens=a.tokens,
                                  messages=user)
        fake_req = pb.ChatRequest(user_id="bench", model=fake_model, messages=user)
        # Correctness sample with a real client.
        evs = list(stub.StreamChat(demo_req, timeout=30))
        demo_tokens = sum(1 for e in evs if e.WhichOneof("event") == "content")
        assert evs[-1].WhichOneof("event") == "done", evs[-1]
        evs = list(stub.StreamChat(fake_req, timeout=30))
        fake_tokens = sum(1 for e in evs if e.WhichOneof("event") == "content")
        assert fake_tokens == a.tokens and evs[-1].done.usage.completion_tokens == a.tokens
        base_records = 2

        def lpm(msg):
            b = msg.SerializeToString()
            return struct.pack(">BI", 0, len(b)) + b
        demo_file = os.path.join(tmp, "demo.lpm")
        fake_file = os.path.join(tmp, "fake.lpm")
        with open(demo_file, "wb") as f:
            f.write(lpm(demo_req))
        with open(fake_file, "wb") as f:
            f.write(lpm(fake_req))
        hdrs = ["content-type: application/grpc", "te: trailers"]
        url = "http://%s/llmgate.chat.v1.ChatService/StreamChat" % ca["grpc"]

        r = h2load(url, demo_file, hdrs, a.streams, 10, 10)
        results["demo"] = {"streams_per_s": r["rps"], "tokens_per_s": r["rps"] * demo_tokens,
                           "streams": r["succeeded"], "tokens_per_stream": demo_tokens}
        got = wait_records(records, base_records + a.streams)
        if got != base_records + a.streams:
            raise RuntimeError("records: %d success, expected %d" % (got, base_records + a.streams))

        body = json.dumps({"model": fake_model, "stream": True,
                           "stream_options": {"include_usage": True},
                           "messages": [{"role": "user", "content": "x"}]}).encode()
        body_file = os.path.join(tmp, "direct.json")
        with open(body_file, "wb") as f:
            f.write(body)
        rd = h2load("http://%s/v1/chat/completions" % fa["fake"], body_file,
                    ["content-type: application/json"], a.fake_streams, 10, 1, h1=True)
        rg = h2load(url, fake_file, hdrs, a.fake_streams, 10, 1)
        results["fake"] = {"direct_streams_per_s": rd["rps"], "gateway_streams_per_s": rg["rps"],
                           "gateway_tokens_per_s": rg["rps"] * a.tokens}
        want = base_records + a.streams + a.fake_streams
        got = wait_records(records, want)
        if got != want:
            raise RuntimeError("records: %d success, expected %d" % (got, want))

        direct, gw = [], []
        h0 = overhead_hist(ca["admin"])
        for i in range(a.ttft_n):
            if i % 2 == 0:
                direct.append(ttft_direct(fa["fake"], body))
                gw.append(ttft_gateway(stub, fake_req))
            else:
                gw.append(ttft_gateway(stub, fake_req))
                direct.append(ttft_direct(fa["fake"], body))
        h1 = overhead_hist(ca["admin"])
        ctool = None
        if a.ttft_tool:
            out = subprocess.run([a.ttft_tool, "--gateway", ca["grpc"], "--fake", fa["fake"],
                                  "--model", fake_model, "--n", str(a.ttft_n)],
                                 capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                raise RuntimeError("chat_ttft failed: " + out.stderr[-500:])
            ctool = {}
            for line in out.stdout.splitlines():
                f = line.split()
                ctool[f[0]] = {f[1]: int(f[2]), f[3]: int(f[4]), f[5]: int(f[6])}
        # The floor of the gateway path: the demo provider answers from inside the gateway,
        # so this is grpcio + HTTP/2 + the service with no upstream at all.
        floor_req = pb.ChatRequest(user_id="bench", model="demo", max_tokens=2, messages=user)
        floor = [ttft_gateway(stub, floor_req) for _ in range(a.ttft_n)]
        ms = lambda v: round(v * 1000, 3)
        results["ttft"] = {
            "n": a.ttft_n,
            "direct_p50_ms": ms(pct(direct, 0.5)), "direct_p99_ms": ms(pct(direct, 0.99)),
            "gateway_p50_ms": ms(pct(gw, 0.5)), "gateway_p99_ms": ms(pct(gw, 0.99)),
            "added_p50_ms": ms(pct(gw, 0.5) - pct(direct, 0.5)),
            "added_p99_ms": ms(pct(gw, 0.99) - pct(direct, 0.99)),
            "added_mean_ms": ms(statistics.mean(gw) - statistics.mean(direct)),
            "demo_p50_ms": ms(pct(floor, 0.5)), "demo_p99_ms": ms(pct(floor, 0.99)),
            "inside_p50_ms_le": hist_quantile(h0, h1, 0.5),
            "inside_p99_ms_le": hist_quantile(h0, h1, 0.99),
        }
        if ctool:
            results["ttft_c"] = ctool
        ch.close()
    finally:
        chat.terminate()
        code = chat.wait(timeout=30)
        fake.kill()
        fake.wait()
    d, fk, t = results["demo"], results["fake"], results["ttft"]
    print("llmgate-chat benchmark%s" % (" (smoke: figures meaningless)" if a.smoke else ""))
    print("  demo pace 0, h2load 10 conns x 10 streams, %d streams of %d tokens:"
          % (d["streams"], d["tokens_per_stream"]))
    print("    %.0f streams/s, %.0f tokens/s" % (d["streams_per_s"], d["tokens_per_s"]))
    print("  fake upstream (python), %d tokens per stream, 10 conns x 1 stream:" % a.tokens)
    print("    fake direct (h2load --h1): %.0f streams/s" % fk["direct_streams_per_s"])
    print("    through llmgate-chat:      %.0f streams/s, %.0f tokens/s"
          % (fk["gateway_streams_per_s"], fk["gateway_tokens_per_s"]))
    print("  TTFT, %d sequential requests each, interleaved (ms):" % t["n"])
    print("    direct to fake   p50 %.3f  p99 %.3f" % (t["direct_p50_ms"], t["direct_p99_ms"]))
    print("    through gateway  p50 %.3f  p99 %.3f" % (t["gateway_p50_ms"], t["gateway_p99_ms"]))
    print("    added            p50 %.3f  p99 %.3f  mean %.3f"
          % (t["added_p50_ms"], t["added_p99_ms"], t["added_mean_ms"]))
    print("    demo provider    p50 %.3f  p99 %.3f  (grpcio client + gateway, no upstream)"
          % (t["demo_p50_ms"], t["demo_p99_ms"]))
    print("    inside gateway   p50 <= %s  p99 <= %s  (histogram bucket bounds, ms: request in"
          " -> upstream hand-off + first token in -> event queued)"
          % (t["inside_p50_ms_le"], t["inside_p99_ms_le"]))
    if "ttft_c" in results:
        c = results["ttft_c"]
        print("  TTFT from one C client (raw keep-alive socket vs lg_grpc_client), %d each (ms):"
              % t["n"])
        for q in ("p50", "p90", "p99"):
            print("    %s  direct %.3f  through gateway %.3f  added %.3f"
                  % (q, c["direct_us"][q] / 1000, c["gateway_us"][q] / 1000,
                     (c["gateway_us"][q] - c["direct_us"][q]) / 1000))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    if code != 0:
        print("llmgate-chat exited with %d" % code)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
