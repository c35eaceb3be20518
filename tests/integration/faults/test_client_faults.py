#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Client faults through the SSE edge (issue 7): real llmgate-chat (demo provider) and
llmgate-sse, clients on raw sockets.
- disconnect at every phase: before a byte, mid request line, mid body, after POST before the
  answer, right after the event-stream headers, mid stream (FIN and RST), mid resume;
- never-reading consumers (tiny receive buffer): the adapter cuts them off, its open-stream
  gauge and fd count come back, generation and billing are unaffected;
- a reconnect storm with Last-Event-ID (LG_FAULTS_STORM reconnects, default 2000 in CI; set
  10000 for the issue's figure): every resume answers 200/204, and the events seen across all
  reconnects have no gap and no duplicate;
- resume with forged ids (garbage, wrong stream, huge seq), another user's id (403/404) and an
  expired id (resume_expired / 204 / 404): refused with a status, never another's events.
Every POST makes exactly one billing record; the processes exit 0 under LeakSanitizer.
  test_client_faults.py --chat BIN --sse BIN --workdir DIR
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import struct
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

ARGS = None
ENV = {}
KEYS = {"alice": "lgk-alice-4c1d", "bob": "lgk-bob-92ae"}
POSTS = {"n": 0}
STORM = int(os.environ.get("LG_FAULTS_STORM", "2000"))


def setUpModule():
    try:
        start_all()
    except BaseException:
        for k in ("sse", "chat", "fake"):
            if k in ENV:
                ENV[k].kill()
        raise


def start_all():
    work = ARGS.workdir
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    here = os.path.dirname(os.path.abspath(__file__))
    ENV["fake"] = lib.Proc([sys.executable, os.path.join(here, "fault_upstream.py")],
                           ["fake", "blackhole"])
    cfg = {"providers": [
        {"id": "demo", "kind": "demo"},
        {"id": "fake", "kind": "openai", "base_url": "http://%s/v1" % ENV["fake"].addr["fake"],
         "max_retries": 0, "models": [{"name": "fake-long-20000", "input_usd_per_mtok": 1,
                                       "output_usd_per_mtok": 1}]}]}
    ENV["cfg"] = os.path.join(work, "chat.json")
    with open(ENV["cfg"], "w") as f:
        json.dump(cfg, f)
    ENV["records"] = os.path.join(work, "records.jsonl")
    ENV["chat_log"] = os.path.join(work, "chat.log")
    ENV["chat"] = lib.Proc([ARGS.chat, "--listen", "127.0.0.1:0", "--admin-listen",
                            "127.0.0.1:0", "--config", ENV["cfg"], "--records-file", ENV["records"],
                            "--demo-pace-ms",
                            "10", "--grace-ms", "2000", "--retention-ms", "4000",
                            "--replay-max-events", "64"], ["grpc", "admin"],
                           log=ENV["chat_log"])
    keys = os.path.join(work, "keys")
    with open(keys, "w") as f:
        for user, key in KEYS.items():
            f.write("sha256:%s %s\n" % (hashlib.sha256(key.encode()).hexdigest(), user))
    ENV["sse_log"] = os.path.join(work, "sse.log")
    ENV["sse"] = lib.Proc([ARGS.sse, "--listen", "127.0.0.1:0", "--chat",
                           ENV["chat"].addr["grpc"], "--keys", keys, "--heartbeat-ms", "500",
                           "--outbuf-bytes", "65536", "--max-streams-per-user", "10000",
                           "--max-requests-per-conn", "1000"], ["http"],
                          log=ENV["sse_log"], env=quiet_asan_env())


def quiet_asan_env():
    """ASan keeps up to 256 MB of freed memory in quarantine, which reads as RSS growth; cap
    it so the memory bound below measures buffering, not the sanitizer (leaks still fail)."""
    env = dict(os.environ)
    asan = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=16"
    return env


def tearDownModule():
    code_sse = ENV["sse"].stop()
    code_chat = ENV["chat"].stop()
    ENV["fake"].kill()
    assert code_sse == 0, "llmgate-sse exited with %s (see %s)" % (code_sse, ENV["sse_log"])
    assert code_chat == 0, "llmgate-chat exited with %s (see %s)" % (code_chat, ENV["chat_log"])
    recs = lib.records(ENV["records"])
    assert len(recs) == POSTS["n"], "records %d != streams started %d" % (len(recs), POSTS["n"])
    assert len({r["request_id"] for r in recs}) == len(recs)


def addr():
    host, port = ENV["sse"].addr["http"].rsplit(":", 1)
    return host, int(port)


def conn(rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(30)
    s.connect(addr())
    return s


def req_bytes(method, path, user="alice", body=None, headers=()):
    h = ["%s %s HTTP/1.1" % (method, path), "Host: x", "Authorization: Bearer " + KEYS[user]]
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        h += ["Content-Type: application/json", "Content-Length: %d" % len(data)]
    h += list(headers)
    return ("\r\n".join(h) + "\r\n\r\n").encode() + data


def read_response(s):
    """Reads one HTTP response (Content-Length bodies); returns (status, headers, body)."""
    f = s.makefile("rb")
    status = int(f.readline().split()[1])
    headers = {}
    while True:
        line = f.readline().strip()
        if not line:
            break
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return status, headers, body, f


def start_stream(user="alice", max_tokens=40, model="demo"):
    s = conn()
    s.sendall(req_bytes("POST", "/v1/chat/streams", user, {
        "model": model, "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "tell me about TCP"}]}))
    status, _, body, _ = read_response(s)
    s.close()
    assert status == 201, (status, body)
    POSTS["n"] += 1
    return json.loads(body)


def read_events(path, user="alice", last=None, until_done=True, max_events=None):
    """GET the event stream; returns (status, [(id, event, data)])."""
    s = conn()
    hdr = ["Last-Event-ID: " + last] if last else []
    s.sendall(req_bytes("GET", path, user, headers=hdr))
    f = s.makefile("rb")
    status = int(f.readline().split()[1])
    while f.readline().strip():
        pass
    evs = []
    if status != 200:
        s.close()
        return status, evs
    cur = {}
    while True:
        line = f.readline()
        if not line:
            break
        line = line.decode().rstrip("\n")
        if line.startswith(":") or line.startswith("retry:"):
            continue
        if line == "":
            if "event" in cur and cur["event"] != "heartbeat":
                evs.append((cur.get("id"), cur["event"], cur.get("data")))
                if cur["event"] in ("done", "error") and until_done:
                    break
                if max_events and len(evs) >= max_events:
                    break
            cur = {}
            continue
        k, _, v = line.partition(": ")
        cur[k] = v
    s.close()
    return status, evs


def seq(ev_id):
    return int(ev_id.rsplit(".", 1)[1])


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def streams_open():
    return lib.metrics(ENV["sse"].addr["http"]).get("llmgate_sse_streams_open", 0)


class ClientFaults(unittest.TestCase):
    def test_disconnect_at_every_phase(self):
        sse = ENV["sse"]
        fds0 = sse.fds()
        # 1 connect, nothing sent; 2 half a request line; 3 headers, half the body
        s = conn()
        s.close()
        s = conn()
        s.sendall(b"POST /v1/chat/str")
        s.close()
        s = conn()
        full = req_bytes("POST", "/v1/chat/streams", "alice", {
            "model": "demo", "messages": [{"role": "user", "content": "x" * 200}]})
        s.sendall(full[:-100])
        rst_close(s)
        # 4 full POST, gone before the answer: the stream starts, is billed once
        s = conn()
        s.sendall(req_bytes("POST", "/v1/chat/streams", "alice", {
            "model": "demo", "max_tokens": 5,
            "messages": [{"role": "user", "content": "bye"}]}))
        POSTS["n"] += 1
        s.close()
        # 5 right after the event-stream headers; 6 mid stream (FIN); 7 mid stream (RST)
        for mode in ("headers", "fin", "rst"):
            st = start_stream(max_tokens=60)
            s = conn()
            s.sendall(req_bytes("GET", st["events_url"]))
            f = s.makefile("rb")
            self.assertIn(b"200", f.readline())
            if mode != "headers":
                n = 0
                while n < 5:
                    if f.readline().startswith(b"event: content"):
                        n += 1
            f.close()
            if mode == "rst":
                rst_close(s)
            else:
                s.close()
            # 8 mid resume: the stream is still resumable after each of those
            status, evs = read_events(st["events_url"], last=st["stream_id"] + ".2")
            self.assertEqual(status, 200)
            self.assertEqual(seq(evs[0][0]), 3)  # no gap after a client vanished
            self.assertEqual(evs[-1][1], "done")
        lib.wait_for(lambda: streams_open() == 0, "adapter streams released")
        lib.wait_for(lambda: sse.fds() <= fds0 + 2, "adapter fds back (%d)" % fds0)
        lib.wait_for(lambda: len(lib.records(ENV["records"])) >= POSTS["n"] - 0,
                     "one record per started stream")

    def test_never_reading_consumers_are_cut_off(self):
        sse = ENV["sse"]
        fds0 = sse.fds()
        rss0 = sse.rss_kb()
        socks = []
        for _ in range(20):
            st = start_stream(max_tokens=30000, model="fake-long-20000")  # ~2 MB of events
            s = conn(rcvbuf=1024)
            s.sendall(req_bytes("GET", st["events_url"]))
            socks.append(s)
        m0 = lib.metrics(sse.addr["http"])
        # ~2 MB per stream outgrows 1 KiB of receive buffer, the adapter's fixed SO_SNDBUF
        # and --outbuf-bytes 64 KiB, and chat's replay buffer (64 events): every stalled
        # reader is let go by the server (adapter cutoff, or chat's "reader fell behind"),
        # while the client still holds its socket open and never reads.
        lib.wait_for(lambda: len(lib.records(ENV["records"])) >= POSTS["n"],
                     "generation finished for every stalled reader", 120)
        lib.wait_for(lambda: streams_open() == 0, "stalled readers released by the server", 120)
        m1 = lib.metrics(sse.addr["http"])
        rss1 = sse.rss_kb()
        delta = {k.split("{")[0]: m1.get(k, 0) - m0.get(k, 0) for k in m1
                 if k.startswith(("llmgate_sse_slow_clients_total",
                                  "llmgate_sse_upstream_errors_total"))}
        sys.stderr.write("[slow consumers] adapter RSS %d -> %d kB with 20 stalled readers; "
                         "%s\n" % (rss0, rss1, delta))
        # Bound: 20 readers x 64 KiB outbuf, with a generous factor for the ASan allocator.
        self.assertLess(rss1 - rss0, 20 * 64 * 8 + 64 * 1024)
        for s in socks:
            s.close()
        lib.wait_for(lambda: sse.fds() <= fds0 + 2, "adapter fds back")

    def test_reconnect_storm_with_last_event_id(self):
        st = start_stream(max_tokens=300)
        path, sid = st["events_url"], st["stream_id"]
        seen = []
        last = None
        reconnects = 0
        lock = threading.Lock()
        errors = []
        tally = {}

        def storm_worker(k):
            # Parallel reconnects of other readers of the same stream, each from a random
            # point: they must all be answered (200 or 204 once finished).
            nonlocal reconnects
            rnd = random.Random(k)
            while True:
                with lock:
                    if reconnects >= STORM:
                        return
                    reconnects += 1
                    top = seq(seen[-1]) if seen else 1
                at = "%s.%d" % (sid, rnd.randint(1, max(1, top)))
                status, evs = read_events(path, last=at, max_events=1)
                with lock:
                    key = "live" if status == 200 and not done_flag else str(status)
                    tally[key] = tally.get(key, 0) + 1
                if status not in (200, 204):
                    errors.append(status)
                if status == 200 and evs and evs[0][1] not in ("error",):
                    if seq(evs[0][0]) != seq(at) + 1:
                        errors.append("gap/dup after %s: %s" % (at, evs[0][0]))
        done_flag = False
        ts = [threading.Thread(target=storm_worker, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        # The main reader reconnects after every 3 events with Last-Event-ID.
        while True:
            status, evs = read_events(path, last=last, max_events=3)
            if status == 204:
                break
            self.assertEqual(status, 200)
            for ev_id, kind, _ in evs:
                seen.append(ev_id)
            if evs:
                last = evs[-1][0]
            if evs and evs[-1][1] == "done":
                break
        done_flag = True
        for t in ts:
            t.join()
        seqs = [seq(i) for i in seen]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "gap or duplicate")
        self.assertEqual(errors, [])
        sys.stderr.write("[reconnect storm] %d reconnects with Last-Event-ID + %d main, "
                         "%d events in order; answers %s (live = 200 while generating)\n"
                         % (reconnects, len(seqs) // 3, len(seqs), tally))

    def test_resume_with_forged_foreign_and_expired_ids(self):
        st = start_stream(max_tokens=20)
        path, sid = st["events_url"], st["stream_id"]
        status, evs = read_events(path)
        self.assertEqual(evs[-1][1], "done")
        forged = [sid + ".x", sid + ".-1", sid + ".99999999999999999999", "garbage",
                  "A" * 5000, "%s.%d" % ("B" * 22, 1)]
        for bad in forged:
            s = conn()
            s.sendall(req_bytes("GET", path, headers=["Last-Event-ID: " + bad]))
            try:
                status, _, _, _ = read_response(s)
            except (IndexError, ValueError, OSError):
                status = 0  # closed: refused without an answer is acceptable for 5000 bytes
            s.close()
            self.assertIn(status, (0, 204, 400, 403, 404, 431), bad[:40])
        # Another user's stream, with a valid id: never served.
        status, evs = read_events(path, user="bob", last=sid + ".1")
        self.assertIn(status, (401, 403, 404))
        self.assertEqual(evs, [])
        # Expired: after --retention-ms the stream is gone (404) or reports resume_expired.
        lib.wait_for(lambda: read_events(path, last=sid + ".1")[0] in (404, 410),
                     "stream expired", 30)

    def test_zz_nothing_left_open(self):
        lib.wait_for(lambda: streams_open() == 0, "no stream open in the adapter")
        lib.wait_for(lambda: lib.metrics(ENV["chat"].addr["admin"]).get(
            "llmgate_chat_streams", 0) == 0, "chat released every stream", 60)


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
