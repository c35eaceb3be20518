#!/usr/bin/python3
"""gRPC benchmark: our nghttp2 server vs the grpc C++ 1.51 async peer, same run, same machine.

Owner: bench. Run with /usr/bin/python3 (it has grpcio and grpc_tools; the pyenv python3
first on PATH does not). See tests/bench/README.md for what the figures mean.

One run starts each server on 127.0.0.1 port 0 (it prints `listening grpc HOST:PORT`),
checks it with a real grpcio client (grpc-status OK, message count and sizes), then drives
h2load with pre-framed requests (5-byte gRPC prefix + protobuf) at:
  unary 1x1       1 connection x 1 stream     req/s, p50/p99 latency
  unary 10x10     10 connections x 10 streams req/s, p50/p99 latency
  stream 10x10    StreamingOutputCall, 1000 messages per stream; messages/s =
                  completed streams * 1000 / seconds
h2load counts HTTP 2xx only, and a gRPC error is HTTP 200 too, so every point also checks
that the DATA bytes received match what correct responses carry. The script prints a table
(ours vs peer, ratio) and never asserts on timing; it exits non-zero only when something
does not work (a server does not start, a response is wrong, h2load fails).

  tests/bench/grpc_bench.py --bin-dir build-bench/bin            # the full run (~1-2 min)
  tests/bench/grpc_bench.py --bin-dir build-bench/bin --smoke    # seconds; what ctest runs
"""
import argparse
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROTO_ROOT = os.path.join(ROOT, "protos")
SERVICE = "/grpc.testing.TestService/"
LISTEN_RE = re.compile(r"^listening grpc (\S+):(\d+)\s*$")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
H2LOAD_SLACK_S = 60.0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Protobuf messages: generated at run time from protos/ into a temporary directory.

def load_messages(tmp):
    """Returns (messages_pb2, test_pb2_grpc). The protos are copied under a private import
    path first: generated modules named grpc.testing.* would collide with the grpc package
    itself. The proto package (grpc.testing) and so the method paths stay unchanged."""
    from grpc_tools import protoc
    src = os.path.join(tmp, "protos")
    out = os.path.join(tmp, "py")
    os.makedirs(os.path.join(src, "lgbench_pb", "testing"))
    os.makedirs(out)
    names = ["empty.proto", "messages.proto", "test.proto"]
    for n in names:
        with open(os.path.join(PROTO_ROOT, "grpc", "testing", n)) as f:
            text = f.read().replace('import "grpc/testing/', 'import "lgbench_pb/testing/')
        with open(os.path.join(src, "lgbench_pb", "testing", n), "w") as f:
            f.write(text)
    rc = protoc.main(["protoc", "-I" + src, "--python_out=" + out, "--grpc_python_out=" + out]
                     + ["lgbench_pb/testing/" + n for n in names])
    if rc != 0:
        raise RuntimeError("grpc_tools.protoc failed on %s" % PROTO_ROOT)
    sys.path.insert(0, out)
    from lgbench_pb.testing import messages_pb2, test_pb2_grpc  # noqa: E402
    return messages_pb2, test_pb2_grpc


def frame(msg_bytes):
    """gRPC length-prefixed message: flag 0 (not compressed), 4-byte big-endian length."""
    return b"\x00" + len(msg_bytes).to_bytes(4, "big") + msg_bytes


class Workload:
    """The request files and the exact response bytes a correct server sends back."""

    def __init__(self, pb, tmp, payload, stream_messages):
        self.payload = payload
        self.stream_messages = stream_messages
        unary_req = pb.SimpleRequest(response_size=payload,
                                     payload=pb.Payload(body=b"\0" * payload))
        stream_req = pb.StreamingOutputCallRequest(
            response_parameters=[pb.ResponseParameters(size=payload)] * stream_messages)
        self.unary_req, self.stream_req = unary_req, stream_req
        self.unary_file = os.path.join(tmp, "unary.lpm")
        self.stream_file = os.path.join(tmp, "stream.lpm")
        with open(self.unary_file, "wb") as f:
            f.write(frame(unary_req.SerializeToString()))
        with open(self.stream_file, "wb") as f:
            f.write(frame(stream_req.SerializeToString()))
        unary_resp = pb.SimpleResponse(payload=pb.Payload(body=b"\0" * payload))
        one = pb.StreamingOutputCallResponse(payload=pb.Payload(body=b"\0" * payload))
        # DATA bytes per completed call: length prefixes + serialized messages.
        self.unary_resp_bytes = 5 + unary_resp.ByteSize()
        self.stream_resp_bytes = stream_messages * (5 + one.ByteSize())


# ---------------------------------------------------------------------------------------------
# Server processes.

class Server:
    """A server process that prints `listening grpc HOST:PORT`; its stdout is drained by a
    thread (so a chatty server never blocks on a full pipe), stderr goes to a file."""

    def __init__(self, label, argv, tmp):
        self.label = label
        self.argv = argv
        self.err_path = os.path.join(tmp, re.sub(r"[^A-Za-z0-9]+", "_", label) + ".stderr")
        self.proc = None
        self.addr = None

    def start(self):
        err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=err,
                                     stdin=subprocess.DEVNULL)
        err.close()
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT_S
        buf = b""
        while self.addr is None:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("%s did not print `listening grpc HOST:PORT` (argv %s; "
                                   "stderr in %s): %s" % (self.label, self.argv,
                                                          self.err_path, self.stderr_tail()))
            if not sel.select(timeout=left):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                m = LISTEN_RE.match(line.decode("utf-8", "replace"))
                if m:
                    self.addr = "%s:%s" % (m.group(1), m.group(2))
                    break
        sel.close()
        threading.Thread(target=self._drain, daemon=True).start()
        return self.addr

    def _drain(self):
        try:
            while os.read(self.proc.stdout.fileno(), 65536):
                pass
        except (OSError, ValueError):
            pass

    def cpu_seconds(self):
        """User + system CPU time of the whole process (all threads), from /proc."""
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            tick = os.sysconf("SC_CLK_TCK")
            return (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            return None

    def stderr_tail(self, n=2000):
        try:
            with open(self.err_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        """SIGTERM, wait; returns the exit status (or a string when it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "killed after %.0fs" % STOP_TIMEOUT_S


# ---------------------------------------------------------------------------------------------
# Correctness sample with a real grpcio client: grpc-status OK, sizes and counts.

def grpcio_check(addr, pb, pb_grpc, wl):
    import grpc
    with grpc.insecure_channel(addr) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        stub = pb_grpc.TestServiceStub(ch)
        resp, call = stub.UnaryCall.with_call(wl.unary_req, timeout=10)
        if call.code() != grpc.StatusCode.OK or len(resp.payload.body) != wl.payload:
            raise RuntimeError("UnaryCall: status %s, %d payload bytes (want OK, %d)"
                               % (call.code(), len(resp.payload.body), wl.payload))
        it = stub.StreamingOutputCall(wl.stream_req, timeout=30)
        n = 0
        for m in it:
            if len(m.payload.body) != wl.payload:
                raise RuntimeError("StreamingOutputCall message %d: %d bytes (want %d)"
                                   % (n, len(m.payload.body), wl.payload))
            n += 1
        if it.code() != grpc.StatusCode.OK or n != wl.stream_messages:
            raise RuntimeError("StreamingOutputCall: status %s, %d messages (want OK, %d)"
                               % (it.code(), n, wl.stream_messages))


def nghttp_sample(addr, wl, args):
    """One 1000-message stream with nghttp -v (a second real HTTP/2 client, idle server):
    how many DATA frames carried it (messages sent as produced give one frame per message;
    fewer means messages were coalesced) and grpc-status in the trailers."""
    cmd = [args.nghttp, "-v", "-n", "-H", "content-type: application/grpc", "-H",
           "te: trailers", "-d", wl.stream_file,
           "http://%s%sStreamingOutputCall" % (addr, SERVICE)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=H2LOAD_SLACK_S)
    out = p.stdout.decode("utf-8", "replace")
    frames = len(re.findall(r"recv DATA frame", out))
    status = re.findall(r"recv \(stream_id=\d+\) grpc-status: (\d+)", out)
    if p.returncode != 0 or status != ["0"]:
        raise RuntimeError("nghttp StreamingOutputCall: rc %d, grpc-status %s:\n%s"
                           % (p.returncode, status, out[-2000:]))
    return frames


# ---------------------------------------------------------------------------------------------
# h2load.

def parse_h2load(out):
    r = {}
    m = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", out)
    if m:
        scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6}.get(m.group(2), 1.0)
        r["seconds"] = float(m.group(1)) * scale
        r["h2load_rps"] = float(m.group(3))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    if m:
        (r["total"], r["started"], r["done"], r["succeeded"], r["failed"], r["errored"],
         r["timeout"]) = (int(x) for x in m.groups())
    m = re.search(r"traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?, .*?\((\d+)\) data",
                  out)
    if m:
        r["bytes_total"], r["bytes_headers"], r["bytes_data"] = (int(x) for x in m.groups())
    return r


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def read_latencies(path):
    """h2load --log-file: start time (us since epoch), HTTP status, microseconds to the end
    of the response. Only 2xx rows count."""
    vals = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3 and parts[1].startswith("2"):
                    vals.append(int(parts[2]))
    except OSError:
        pass
    vals.sort()
    return vals


def run_h2load(server, tmp, point, req_file, resp_bytes, args, warm):
    """One measured run of one point (after a warm-up run when warm). Returns a dict of
    figures; raises when h2load fails or the byte check shows wrong responses."""
    c, m = point["c"], point["m"]
    logf = os.path.join(tmp, "h2load.log")
    if os.path.exists(logf):
        os.unlink(logf)
    cmd = [args.h2load, "-c", str(c), "-m", str(m), "-t", "1", "-d", req_file,
           "-H", "content-type: application/grpc", "-H", "te: trailers",
           "--log-file", logf]
    url = "http://%s%s%s" % (server.addr, SERVICE, point["method"])
    if args.pin_client is not None:
        cmd = ["taskset", "-c", args.pin_client] + cmd
    if warm and not args.smoke and args.warmup > 0:
        # Warm-up as a separate, unchecked h2load run: h2load's own --warm-up-time counts the
        # warm-up DATA bytes in its traffic total but not its requests, which would break the
        # byte check below.
        subprocess.run(cmd[:-2] + ["-D", str(args.warmup), url], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=args.warmup + H2LOAD_SLACK_S)
    if args.smoke:
        cmd += ["-n", str(point["smoke_n"])]
    else:
        cmd += ["-D", str(args.duration)]
    cmd.append(url)
    cpu0 = server.cpu_seconds()
    limit = (0 if args.smoke else args.duration) + H2LOAD_SLACK_S
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=limit)
    cpu1 = server.cpu_seconds()
    out = p.stdout.decode("utf-8", "replace")
    r = parse_h2load(out)
    if p.returncode != 0 or "succeeded" not in r or "bytes_data" not in r:
        raise RuntimeError("h2load failed (rc %d) against %s:\n%s" % (p.returncode,
                                                                      server.label, out))
    if r["succeeded"] == 0:
        raise RuntimeError("h2load: no request succeeded against %s:\n%s" % (server.label, out))
    # Byte check: every succeeded call carried exactly resp_bytes of DATA. In timed mode the
    # calls still in flight when h2load stops may have carried part of theirs as well.
    want_min = r["succeeded"] * resp_bytes
    inflight = 0 if args.smoke else c * m
    want_max = (r["succeeded"] + inflight) * resp_bytes
    r["bytes_ok"] = want_min <= r["bytes_data"] <= want_max
    if not r["bytes_ok"]:
        raise RuntimeError("%s %s: %d DATA bytes for %d succeeded calls (want %d..%d): some "
                           "responses are not what a correct server sends (h2load counts "
                           "HTTP 200 as success, gRPC errors included)\n%s"
                           % (server.label, point["name"], r["bytes_data"], r["succeeded"],
                              want_min, want_max, out))
    if r["failed"] or r["errored"] or r["timeout"]:
        raise RuntimeError("%s %s: h2load reports failures:\n%s" % (server.label,
                                                                    point["name"], out))
    lat = read_latencies(logf)
    r["p50_us"] = percentile(lat, 0.50)
    r["p99_us"] = percentile(lat, 0.99)
    # h2load's req/s is succeeded requests over the measured duration.
    secs = float(args.duration) if not args.smoke else (r.get("seconds") or 0.0)
    r["rps"] = r.get("h2load_rps", 0.0)
    r["msgs_per_s"] = r["rps"] * point.get("messages", 1)
    if cpu0 is not None and cpu1 is not None and secs > 0:
        # Server CPU time during the measured run per second: a rough indication of how much
        # of the 2 cores the server took (clock-tick resolution), not a precise figure.
        r["server_cpu_pct"] = 100.0 * (cpu1 - cpu0) / secs
        if cpu1 > cpu0:
            # Rate per second of server CPU: what the server would do on a core of its own
            # when h2load, not the server, is the bottleneck.
            r["per_core"] = r["msgs_per_s"] * secs / (cpu1 - cpu0)
    return r


# ---------------------------------------------------------------------------------------------

def median(vals):
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2.0


def summarize(runs):
    """Median over the repeated runs of one server at one point, plus the req/s range."""
    out = {}
    for key in ("msgs_per_s", "p50_us", "p99_us", "server_cpu_pct", "per_core"):
        out[key] = median([r.get(key) for r in runs])
    rates = [r["msgs_per_s"] for r in runs]
    out["min_msgs_per_s"], out["max_msgs_per_s"] = min(rates), max(rates)
    out["runs"] = runs
    return out


def fmt(v, kind):
    if v is None:
        return "-"
    if kind == "rate":
        return "%.0f" % v
    if kind == "range":
        return "%.0f-%.0f" % v
    if kind == "us":
        return "%.0f" % v
    if kind == "pct":
        return "%.0f%%" % v
    return str(v)


def print_table(servers, results, points, args, load, frames):
    base = servers[0].label if servers else ""
    rows = []
    for pt in points:
        unit = "msg/s" if pt["kind"] == "stream" else "req/s"
        # (row name, key, format, ratio: "hi" = base/other, "lo" = other/base, None = none)
        metrics = [(unit, "msgs_per_s", "rate", "hi"),
                   (unit + " range", "range", "range", None),
                   ("p50 us", "p50_us", "us", "lo"), ("p99 us", "p99_us", "us", "lo"),
                   ("server cpu", "server_cpu_pct", "pct", None),
                   (unit + " per core", "per_core", "rate", "hi")]
        for mname, key, kind, ratio in metrics:
            row = [pt["name"], mname]
            vals = []
            for s in servers:
                res = results.get((s.label, pt["name"]))
                if res is None:
                    v = None
                elif key == "range":
                    v = (res["min_msgs_per_s"], res["max_msgs_per_s"])
                else:
                    v = res.get(key)
                vals.append(v)
                row.append(fmt(v, kind))
            for v in vals[1:]:
                ref = vals[0]
                if ratio is None or ref is None or not v:
                    row.append("-")
                else:
                    row.append("%.2fx" % (ref / v if ratio == "hi" else v / ref))
            rows.append(row)
    if frames:
        rows.append(["stream 1 idle", "DATA frames"] +
                     [str(frames.get(s.label, "-")) for s in servers] +
                     ["-" for s in servers[1:]])
    head = ["point", "metric"] + [s.label for s in servers] + \
        ["%s vs %s" % (base, s.label) for s in servers[1:]]
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = "  ".join("%-*s" % (widths[i], head[i]) for i in range(len(head)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(("%-*s" if i < 2 else "%*s") % (widths[i], r[i])
                        for i in range(len(r))))
    if args.smoke:
        mode = "smoke: fixed small request counts, figures meaningless"
    else:
        mode = "median of %d runs of %ds per point (servers interleaved), %ds warm-up" % (
            args.repeat, args.duration, args.warmup)
    print("\nmode: %s" % mode)
    print("load: payload %d B per message; streams of %d messages; h2load 1 thread" % (
        args.payload, args.stream_messages))
    print("machine: %d cores shared by h2load and the server under test%s; load average "
          "%.2f before, %.2f after" % (
              os.cpu_count() or 0,
              "" if args.pin_client is None else
              " (h2load pinned to CPU %s, servers to CPU %s)" % (args.pin_client,
                                                                  args.pin_server),
              load[0], load[1]))
    print("server cpu: utime+stime of the server process over the run (100% = one core); "
          "per core = rate / server CPU seconds (meaningless in smoke mode)")
    print("ratios: %s's advantage, >1 is better for %s (rates: %s/other; latency: "
          "other/%s)" % (base, base, base, base))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build-bench", "bin"),
                    help="directory with lg-grpc-testserver and grpc-peer-server")
    ap.add_argument("--ours", help="our server binary (default BIN_DIR/lg-grpc-testserver)")
    ap.add_argument("--ours-arg", action="append", default=[],
                    help="extra argument for our server (repeatable)")
    ap.add_argument("--peer", help="grpc C++ peer binary (default BIN_DIR/grpc-peer-server)")
    ap.add_argument("--peer-threads", default="1,0",
                    help="peer --threads values to measure, comma separated (0 = one per "
                         "core); default 1,0")
    ap.add_argument("--duration", type=int, default=3, help="seconds per run (h2load -D)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per server and point; the table shows medians (default 3)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="warm-up seconds per server and point, before the first run")
    ap.add_argument("--payload", type=int, default=32,
                    help="payload bytes per response message (default 32, token-sized)")
    ap.add_argument("--stream-messages", type=int, default=1000)
    ap.add_argument("--smoke", action="store_true",
                    help="tiny request counts: checks the harness end to end, not speed")
    ap.add_argument("--require-ours", action="store_true",
                    help="fail when our server binary is missing (default: measure the "
                         "peer alone and say so)")
    ap.add_argument("--pin", action="store_true",
                    help="pin servers to CPU 0 and h2load to CPU 1 (default: unpinned)")
    ap.add_argument("--json", help="also write all figures to this JSON file")
    ap.add_argument("--h2load", default=shutil.which("h2load") or "h2load")
    ap.add_argument("--nghttp", default=shutil.which("nghttp"),
                    help="nghttp client for the DATA-frame sample (skipped when absent)")
    args = ap.parse_args()
    args.pin_client = "1" if args.pin else None
    args.pin_server = "0" if args.pin else None

    if not shutil.which(args.h2load):
        log("grpc_bench: h2load not found (Debian package nghttp2-client)")
        return 2
    ours = args.ours or os.path.join(args.bin_dir, "lg-grpc-testserver")
    peer = args.peer or os.path.join(args.bin_dir, "grpc-peer-server")
    if not os.access(peer, os.X_OK):
        log("grpc_bench: peer %s not built (cmake --build ... --target grpc-peer-server)"
            % peer)
        return 2

    tmp = tempfile.mkdtemp(prefix="lg-bench-")
    servers = []
    try:
        pb, pb_grpc = load_messages(tmp)
        wl = Workload(pb, tmp, args.payload, args.stream_messages)
        points = [
            {"name": "unary 1x1", "kind": "unary", "method": "UnaryCall", "c": 1, "m": 1,
             "smoke_n": 50},
            {"name": "unary 10x10", "kind": "unary", "method": "UnaryCall", "c": 10,
             "m": 10, "smoke_n": 500},
            {"name": "stream 10x10", "kind": "stream", "method": "StreamingOutputCall",
             "c": 10, "m": 10, "smoke_n": 20, "messages": args.stream_messages},
        ]
        taskset = ["taskset", "-c", args.pin_server] if args.pin_server else []
        if os.access(ours, os.X_OK):
            servers.append(Server("ours", taskset + [ours, "--listen", "127.0.0.1:0"] +
                                  args.ours_arg, tmp))
        elif args.require_ours:
            log("grpc_bench: our server %s is not built" % ours)
            return 2
        else:
            log("grpc_bench: our server %s is not built yet: measuring the peer alone" % ours)
        for t in [x.strip() for x in args.peer_threads.split(",") if x.strip()]:
            label = "grpc++ %s" % ("1cq" if t == "1" else ("%scq" % t if t != "0" else
                                                           "%dcq" % (os.cpu_count() or 1)))
            servers.append(Server(label, taskset + [peer, "--listen", "127.0.0.1:0",
                                                    "--threads", t], tmp))

        load0 = os.getloadavg()[0]
        results = {}
        failures = []
        frames = {}
        live = []
        for s in servers:
            try:
                s.start()
                log("grpc_bench: %s listening on %s" % (s.label, s.addr))
                grpcio_check(s.addr, pb, pb_grpc, wl)
                log("grpc_bench: %s: grpcio sample calls OK (unary %d B, stream %d x %d B)"
                    % (s.label, wl.payload, wl.stream_messages, wl.payload))
                if args.nghttp:
                    frames[s.label] = nghttp_sample(s.addr, wl, args)
                    log("grpc_bench: %s: nghttp sample stream OK: %d DATA frames for %d "
                        "messages" % (s.label, frames[s.label], wl.stream_messages))
                live.append(s)
            except Exception as e:
                failures.append("%s: %s" % (s.label, e))
                log("grpc_bench: FAILED %s: %s\nserver stderr tail:\n%s"
                    % (s.label, e, s.stderr_tail()))
        # All servers stay up; each point runs them in turn, rotating the order each round,
        # so that load from elsewhere on the machine hits every server alike.
        repeat = 1 if args.smoke else args.repeat
        runs = {}
        for pt in points:
            req = wl.stream_file if pt["kind"] == "stream" else wl.unary_file
            rb = wl.stream_resp_bytes if pt["kind"] == "stream" else wl.unary_resp_bytes
            for rnd in range(repeat):
                order = live[rnd % len(live):] + live[:rnd % len(live)] if live else []
                for s in order:
                    if s not in live:
                        continue
                    try:
                        r = run_h2load(s, tmp, pt, req, rb, args, warm=(rnd == 0))
                    except Exception as e:
                        failures.append("%s: %s" % (s.label, e))
                        log("grpc_bench: FAILED %s: %s\nserver stderr tail:\n%s"
                            % (s.label, e, s.stderr_tail()))
                        live.remove(s)
                        continue
                    runs.setdefault((s.label, pt["name"]), []).append(r)
                    log("grpc_bench: %s %s run %d: %.0f %s, p50 %s us, p99 %s us, bytes ok"
                        % (s.label, pt["name"], rnd + 1, r["msgs_per_s"],
                           "msg/s" if pt["kind"] == "stream" else "req/s",
                           r["p50_us"], r["p99_us"]))
        for s in servers:
            if s in live:
                try:
                    # A sample after the load too: the server still answers correctly.
                    grpcio_check(s.addr, pb, pb_grpc, wl)
                except Exception as e:
                    failures.append("%s after load: %s" % (s.label, e))
            rc = s.stop()
            if rc not in (0, -signal.SIGTERM, None):
                failures.append("%s exited with %s after SIGTERM: %s"
                                % (s.label, rc, s.stderr_tail()))
                log("grpc_bench: %s exited with %s after SIGTERM" % (s.label, rc))
        for k, v in runs.items():
            results[k] = summarize(v)
        print_table(servers, results, points, args, (load0, os.getloadavg()[0]), frames)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"results": {"%s|%s" % k: v for k, v in results.items()},
                           "stream_data_frames": frames}, f, indent=1, sort_keys=True)
        if failures:
            log("grpc_bench: %d failure(s):\n  %s" % (len(failures), "\n  ".join(failures)))
            return 1
        return 0
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
