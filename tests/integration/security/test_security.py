#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Security tests (issue 7) against the real binaries:
- HTTP/2 abuse on llmgate-chat's gRPC port with raw frames (python3-h2 / hyperframe):
  rapid reset, CONTINUATION flood, SETTINGS flood, PING flood, huge header list, zero-window
  stall. Each must be refused (GOAWAY / RST_STREAM / connection closed) or bounded, and the
  service must go on serving other clients afterwards.
- SSE/CRLF injection from model output (through the fault upstream's `fault-inject` model)
  cannot forge events, ids or retry through llmgate-sse, nor lines of the OpenAI stream.
- Planted secrets (the upstream API key and an edge API key) never reach logs, records or
  /metrics of either process; the prompt text never reaches the logs.
- Body logging respects the privacy setting (none, truncated:N).
  test_security.py --chat BIN --sse BIN --protos DIR --workdir DIR
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import sys
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "faults"))
import lib  # noqa: E402

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import hyperframe.frame as hf  # noqa: E402

ARGS = None
ENV = {}
UPSTREAM_KEY = "sk-upstream-planted-9d2e41c0"
EDGE_KEY = "lgk-edge-planted-5b7a13ff"
PROMPT_MARK = "PROMPT-MARK-c81f2e"
INJECT_TEXT = None


def setUpModule():
    try:
        start_all()
    except BaseException:
        for k in ("sse", "chat", "chat_none", "chat_trunc", "fake"):
            if k in ENV:
                ENV[k].kill()
        raise


def chat_proc(name, body_logging):
    work = ARGS.workdir
    rec = os.path.join(work, "records-%s.jsonl" % name)
    log = os.path.join(work, "chat-%s.log" % name)
    p = lib.Proc([ARGS.chat, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                  "--config", ENV["cfg"], "--records-file", rec, "--log-level", "debug",
                  "--demo-pace-ms", "5", "--grace-ms", "2000", "--retention-ms", "1000", "--body-logging", body_logging],
                 ["grpc", "admin"], env=dict(os.environ, LG_SEC_KEY=UPSTREAM_KEY), log=log)
    p.records, p.logfile = rec, log
    p.channel = grpc.insecure_channel(p.addr["grpc"])
    p.stub = pbg.ChatServiceStub(p.channel)
    return p


def start_all():
    global grpc, pb, pbg, INJECT_TEXT
    work = ARGS.workdir
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    grpc, pb, pbg = lib.gen_stubs(ARGS.protos, work)
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "fault_upstream", os.path.join(HERE, "..", "faults", "fault_upstream.py"))
    fu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fu)
    INJECT_TEXT = "".join(fu.INJECT)
    fake = lib.Proc([sys.executable, os.path.join(HERE, "..", "faults", "fault_upstream.py")],
                    ["fake", "blackhole"])
    ENV["fake"] = fake
    cfg = {"providers": [
        {"id": "fault", "kind": "openai", "base_url": "http://%s/v1" % fake.addr["fake"],
         "api_key_env": "LG_SEC_KEY", "max_retries": 0,
         "models": [{"name": m, "input_usd_per_mtok": 1, "output_usd_per_mtok": 1}
                    for m in ("fault-inject", "fake-normal", "fault-503")]},
        {"id": "demo", "kind": "demo"}]}
    ENV["cfg"] = os.path.join(work, "chat.json")
    with open(ENV["cfg"], "w") as f:
        json.dump(cfg, f)
    ENV["chat"] = chat_proc("full", "full")
    ENV["chat_none"] = chat_proc("none", "none")
    ENV["chat_trunc"] = chat_proc("trunc", "truncated:16")
    keys = os.path.join(work, "keys")
    with open(keys, "w") as f:
        f.write("sha256:%s alice\n" % hashlib.sha256(EDGE_KEY.encode()).hexdigest())
    ENV["sse_log"] = os.path.join(work, "sse.log")
    ENV["sse"] = lib.Proc([ARGS.sse, "--listen", "127.0.0.1:0", "--chat",
                           ENV["chat"].addr["grpc"], "--keys", keys, "--log-level", "debug",
                           "--heartbeat-ms", "60000"], ["http"], log=ENV["sse_log"])


def tearDownModule():
    codes = {}
    leaked = []
    metrics_text = b""
    for k in ("chat", "chat_none", "chat_trunc"):
        if k in ENV:
            metrics_text += lib.http_get(ENV[k].addr["admin"], "/metrics")[1]
    if "sse" in ENV:
        sse = ENV["sse"].addr["http"]
        metrics_text += lib.http_get(sse, "/metrics")[1]
        codes["sse"] = ENV["sse"].stop()
    for k in ("chat", "chat_none", "chat_trunc"):
        if k in ENV:
            ENV[k].channel.close()
            codes[k] = ENV[k].stop()
    ENV["fake"].kill()
    outputs = [("metrics", metrics_text)]
    for path in [ENV["sse_log"]] + [getattr(ENV[k], a) for k in ("chat", "chat_none",
                                                                 "chat_trunc")
                                    for a in ("logfile", "records")]:
        with open(path, "rb") as f:
            outputs.append((path, f.read()))
    for name, data in outputs:
        for secret in (UPSTREAM_KEY, EDGE_KEY):
            if secret.encode() in data:
                leaked.append("%s in %s" % (secret, name))
        if name.endswith(".log") and PROMPT_MARK.encode() in data:
            leaked.append("prompt text in " + name)
    for k, code in codes.items():
        assert code == 0, "%s exited with %s" % (k, code)
    assert not leaked, "leaked: %s" % leaked


# ---------------------------------------------------------------- raw HTTP/2 helpers
GRPC_HEADERS = [(":method", "POST"), (":scheme", "http"), (":path",
                "/llmgate.chat.v1.ChatService/StreamChat"), (":authority", "x"),
                ("content-type", "application/grpc"), ("te", "trailers")]


def h2_connect(addr, settings=None, rcvbuf=None):
    host, port = addr.rsplit(":", 1)
    s = socket.socket()
    if rcvbuf:  # before connect, so the TCP window is small from the start
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect((host, int(port)))
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                              header_encoding="utf-8"))
    c.initiate_connection()
    if settings:
        c.update_settings(settings)
    s.sendall(c.data_to_send())
    return s, c


def grpc_msg(u, model="demo", max_tokens=50):
    body = pb.ChatRequest(user_id=u, model=model, max_tokens=max_tokens,
                          messages=[pb.ChatMessage(role="user", content="hi")]
                          ).SerializeToString()
    return b"\x00" + len(body).to_bytes(4, "big") + body


def drain_until_closed(s, c, deadline_s=20):
    """Reads until the peer closes or the deadline; returns (goaway error code or None,
    closed?, events)."""
    s.settimeout(0.5)
    goaway = None
    evs = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return goaway, True, evs
        if not data:
            return goaway, True, evs
        try:
            for ev in c.receive_data(data):
                evs.append(ev)
                if isinstance(ev, h2.events.ConnectionTerminated):
                    goaway = ev.error_code
        except Exception:  # h2 may reject frames after GOAWAY: the server closed on us
            return goaway, True, evs
        try:
            s.sendall(c.data_to_send())
        except OSError:
            return goaway, True, evs
    return goaway, False, evs


def send_raw(s, frames):
    """Sends serialized frames; returns how many went out before the peer closed."""
    sent = 0
    for fr in frames:
        try:
            s.sendall(fr)
        except OSError:
            break
        sent += 1
    return sent


H2_INTERNAL_ERROR = 0x2
H2_ENHANCE_YOUR_CALM = 0xB


def grpc_server_limit(name):
    """A limit of the gRPC server section of services/common/lg_limits.h."""
    path = os.path.join(HERE, "..", "..", "..", "services", "common", "lg_limits.h")
    with open(path) as f:
        m = re.search(r"#define %s (\d+)u?\b" % name, f.read())
    return int(m.group(1))


def reset_bound(elapsed_s, in_flight):
    """Calls a resetting connection may start within |elapsed_s| (measured by the client,
    first frame to close, so at least the server's time): the reset budget, its refill, the
    calls started but not yet reset when the GOAWAY came (|in_flight|), and one for the reset
    that tripped the GOAWAY."""
    burst = grpc_server_limit("LG_GRPC_SERVER_CLIENT_RESET_BURST")
    rate = grpc_server_limit("LG_GRPC_SERVER_CLIENT_RESETS_PER_SEC")
    return burst + int(rate * elapsed_s) + 1 + in_flight


def goaway_event(evs):
    for ev in evs:
        if isinstance(ev, h2.events.ConnectionTerminated):
            return ev
    return None


def started_streams(logfile, port):
    """The connection id of the client at 127.0.0.1:|port| and the stream ids of the calls
    started on it, from llmgate-chat's debug log (grpc_server conn_open and call_state
    HEADERS->STARTED lines), once its conn_close line is there."""
    def scan():
        conn, started, closed = None, [], False
        with open(logfile) as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("module") != "grpc_server":
                    continue
                msg = ev.get("msg", "")
                if ev.get("event") == "conn_open" and msg == "peer=127.0.0.1:%d" % port:
                    conn, started, closed = ev.get("conn"), [], False
                elif conn is not None and ev.get("conn") == conn:
                    if ev.get("event") == "call_state" and msg.endswith(" HEADERS->STARTED"):
                        started.append(int(msg.split()[0].split("=")[1]))
                    elif ev.get("event") == "conn_close":
                        closed = True
        return (conn, started) if closed else None
    return lib.wait_for(scan, "the attacking connection's close in the chat log")


def no_live_streams():
    return lib.metrics(ENV["chat"].addr["admin"]).get("llmgate_chat_streams", 0) < 100


class Http2Abuse(unittest.TestCase):
    def after(self, what):
        """The service still serves a fresh client, and memory stayed bounded."""
        chat = ENV["chat"]
        self.assertTrue(chat.alive(), "llmgate-chat died after " + what)
        u = "ok-" + uuid.uuid4().hex[:8]
        evs = list(chat.stub.StreamChat(pb.ChatRequest(
            user_id=u, model="demo", max_tokens=3,
            messages=[pb.ChatMessage(role="user", content="hi")]), timeout=30))
        self.assertEqual(evs[-1].WhichOneof("event"), "done")
        rss = chat.rss_kb()
        sys.stderr.write("[%s] llmgate-chat RSS %d kB, fds %d\n" % (what, rss, chat.fds()))
        # A generous bound (ASan build): a flood that grew memory per frame would pass it.
        self.assertLess(rss, 1024 * 1024)

    def test_h2_rapid_reset(self):
        """HEADERS+DATA+RST_STREAM in bulk, without reading: calls whose reset arrives in the
        same read as their headers never start, and those resets spend the connection's reset
        budget (LG_GRPC_SERVER_CLIENT_RESET_*), which ends it with GOAWAY(ENHANCE_YOUR_CALM)
        (or nghttp2's backstop limit with INTERNAL_ERROR); no call above the GOAWAY's
        last-stream-id ever starts."""
        s, c = h2_connect(ENV["chat"].addr["grpc"])
        port = s.getsockname()[1]
        n = 20000
        sent = 0
        evs = []
        t0 = time.monotonic()
        for i in range(n):
            sid = c.get_next_available_stream_id()
            try:
                c.send_headers(sid, GRPC_HEADERS)
                c.send_data(sid, grpc_msg("rr-%d" % i), end_stream=True)
                c.reset_stream(sid)
                s.sendall(c.data_to_send())
            except (OSError, h2.exceptions.ProtocolError):
                break
            sent += 1
            if i % 500 == 0:  # read what the server says (GOAWAY) without blocking
                s.setblocking(False)
                try:
                    data = s.recv(1 << 20)
                    if not data:
                        break
                    evs.extend(c.receive_data(data))
                except (BlockingIOError, h2.exceptions.ProtocolError):
                    pass
                except OSError:
                    break
                finally:
                    s.setblocking(True)
        goaway, closed, more = drain_until_closed(s, c, 5)
        elapsed = time.monotonic() - t0
        s.close()
        ga = goaway_event(evs + more)
        conn, started = started_streams(ENV["chat"].logfile, port)
        sys.stderr.write("[rapid reset] streams opened+reset %d of %d in %.2f s, goaway=%s "
                         "last_stream=%s closed=%s, calls started %d (bound %d)\n"
                         % (sent, n, elapsed, ga and ga.error_code,
                            ga and ga.last_stream_id, closed, len(started),
                            reset_bound(elapsed, 0)))
        # Our reset budget (or nghttp2's stream reset rate limit, the CVE-2023-44487 fix, as
        # a backstop) ends the connection.
        self.assertIsNotNone(ga, "rapid reset got no GOAWAY")
        self.assertIn(ga.error_code, (H2_INTERNAL_ERROR, H2_ENHANCE_YOUR_CALM))
        self.assertTrue(closed, "connection not closed after the GOAWAY")
        self.assertLessEqual(len(started), reset_bound(elapsed, 0))
        above = [sid for sid in started if sid > ga.last_stream_id]
        self.assertEqual(above, [], "calls above the GOAWAY's last-stream-id started")
        # Every started call that got its request made exactly one record; no more.
        recs = lambda: [r for r in lib.records(ENV["chat"].records)
                        if r["user_id"].startswith("rr-")]
        lib.wait_for(lambda: no_live_streams(), "reset streams released")
        self.assertLessEqual(len(recs()), len(started))
        # Every started call is cancelled at once: no generation piles up.
        self.after("rapid reset")

    def test_h2_rapid_reset_of_running_calls(self):
        """A client that lets each call start (waits for its first response) and then resets
        it, in batches: our per-connection budget for resets of running calls
        (LG_GRPC_SERVER_CLIENT_RESET_BURST, refilled at ..._RESETS_PER_SEC) ends it with
        GOAWAY(ENHANCE_YOUR_CALM); the calls started stay within that budget, none above the
        GOAWAY's last-stream-id, and each started call is billed once."""
        s, c = h2_connect(ENV["chat"].addr["grpc"])
        port = s.getsockname()[1]
        s.settimeout(0.5)
        batch = 20
        evs = []
        responded = set()
        t0 = time.monotonic()
        done = False
        k = 0
        while not done and time.monotonic() - t0 < 60:
            sids = []
            try:
                for _ in range(batch):
                    sid = c.get_next_available_stream_id()
                    c.send_headers(sid, GRPC_HEADERS)
                    c.send_data(sid, grpc_msg("rrr-%d" % k), end_stream=True)
                    k += 1
                    sids.append(sid)
                s.sendall(c.data_to_send())
            except (OSError, h2.exceptions.ProtocolError):
                break
            # Wait until every call of the batch has answered (it runs), or the GOAWAY.
            while not done and not all(sid in responded for sid in sids):
                try:
                    data = s.recv(1 << 20)
                except socket.timeout:
                    continue
                except OSError:
                    done = True
                    break
                if not data:
                    done = True
                    break
                try:
                    for ev in c.receive_data(data):
                        evs.append(ev)
                        if isinstance(ev, (h2.events.ResponseReceived,
                                           h2.events.DataReceived)):
                            responded.add(ev.stream_id)
                        if isinstance(ev, h2.events.ConnectionTerminated):
                            done = True
                except h2.exceptions.ProtocolError:
                    done = True
            if done:
                break
            try:
                for sid in sids:
                    c.reset_stream(sid)
                s.sendall(c.data_to_send())
            except (OSError, h2.exceptions.ProtocolError):
                break
        goaway, closed, more = drain_until_closed(s, c, 5)
        elapsed = time.monotonic() - t0
        s.close()
        ga = goaway_event(evs + more)
        conn, started = started_streams(ENV["chat"].logfile, port)
        bound = reset_bound(elapsed, batch)
        sys.stderr.write("[rapid reset, running calls] %d calls answered then reset in "
                         "batches of %d in %.2f s, goaway=%s last_stream=%s closed=%s, calls "
                         "started %d (bound %d)\n"
                         % (len(responded), batch, elapsed, ga and ga.error_code,
                            ga and ga.last_stream_id, closed, len(started), bound))
        self.assertIsNotNone(ga, "no GOAWAY")
        self.assertEqual(ga.error_code, H2_ENHANCE_YOUR_CALM)
        self.assertTrue(closed)
        self.assertLessEqual(len(started), bound)
        self.assertGreaterEqual(len(started), len(responded))
        self.assertEqual([sid for sid in started if sid > ga.last_stream_id], [])
        self.assertEqual([sid for sid in responded if sid > ga.last_stream_id], [])
        # One record per started call that got its request, and none for the others.
        recs = lambda: [r for r in lib.records(ENV["chat"].records)
                        if r["user_id"].startswith("rrr-")]
        lib.wait_for(lambda: len(recs()) >= len(responded) and no_live_streams(),
                     "records of the reset calls")
        self.assertLessEqual(len(recs()), len(started))
        self.after("rapid reset of running calls")

    def test_h2_continuation_flood(self):
        s, c = h2_connect(ENV["chat"].addr["grpc"])
        s.sendall(c.data_to_send())
        hdr = hf.HeadersFrame(1)
        hdr.data = c.encoder.encode(GRPC_HEADERS)
        hdr.flags.add("END_STREAM") if False else None
        frames = [hdr.serialize()]
        block = c.encoder.encode([("x-flood-%d" % i, "v" * 200) for i in range(60)])
        for _ in range(20000):  # ~240 MB of header block if nothing stopped it
            cf = hf.ContinuationFrame(1)
            cf.data = block
            frames.append(cf.serialize())
        sent = send_raw(s, frames)
        goaway, closed, _ = drain_until_closed(s, c, 10)
        s.close()
        sys.stderr.write("[continuation flood] frames sent %d of %d, goaway=%s closed=%s\n"
                         % (sent, len(frames), goaway, closed))
        self.assertTrue(closed or sent < len(frames), "CONTINUATION flood was not refused")
        self.after("continuation flood")

    def flood(self, what, make_frame, n=400000):
        # Never read: the server's ACKs pile up in its own queue (nghttp2's outbound ack
        # limit must answer GOAWAY ENHANCE_YOUR_CALM rather than queue without bound).
        s, c = h2_connect(ENV["chat"].addr["grpc"], rcvbuf=4096)
        s.sendall(c.data_to_send())
        one = make_frame()
        sent = 0
        s.settimeout(10)
        batch = one * 1000
        for _ in range(n // 1000):
            try:
                s.sendall(batch)
            except OSError:  # reset by the server, or its window closed for 10 s
                break
            sent += 1000
        goaway, closed, _ = drain_until_closed(s, c, 10)
        s.close()
        sys.stderr.write("[%s] frames sent %d of %d, goaway=%s closed=%s\n"
                         % (what, sent, n, goaway, closed))
        self.assertTrue(closed or sent < n, what + " was not refused")
        self.after(what)

    def test_h2_settings_flood(self):
        def frame():
            f = hf.SettingsFrame(0)
            f.settings = {hf.SettingsFrame.INITIAL_WINDOW_SIZE: 65535}
            return f.serialize()
        self.flood("settings flood", frame)

    def test_h2_ping_flood(self):
        def frame():
            f = hf.PingFrame(0)
            f.opaque_data = b"12345678"
            return f.serialize()
        self.flood("ping flood", frame)

    def test_h2_huge_header_list(self):
        s, c = h2_connect(ENV["chat"].addr["grpc"])
        big = GRPC_HEADERS + [("x-big-%d" % i, "v" * 4000) for i in range(256)]  # ~1 MB
        refused = False
        try:
            c.send_headers(1, big)
            c.send_data(1, grpc_msg("hh"), end_stream=True)
            s.sendall(c.data_to_send())
        except OSError:
            refused = True
        goaway, closed, evs = drain_until_closed(s, c, 10)
        s.close()
        resets = [e for e in evs if isinstance(e, h2.events.StreamReset)]
        ended = [e for e in evs if isinstance(e, h2.events.StreamEnded)]
        trailers = [e for e in evs if isinstance(e, h2.events.TrailersReceived)]
        resp = [e for e in evs if isinstance(e, h2.events.ResponseReceived)]
        sys.stderr.write("[huge header list] goaway=%s closed=%s resets=%d responses=%s\n"
                         % (goaway, closed, len(resets), [dict(r.headers) for r in resp][:1]))
        ok_status = any(dict(t.headers).get("grpc-status") == "0" for t in trailers) or any(
            dict(r.headers).get("grpc-status") == "0" for r in resp)
        self.assertTrue(refused or closed or resets or goaway is not None or
                        (ended and not ok_status), "1 MB header list was accepted")
        self.after("huge header list")

    def test_h2_zero_window_stall(self):
        # Window 0: the server may send headers but no DATA; it must not buffer the whole
        # generation per stalled stream, and must release the stream when generation ends.
        s, c = h2_connect(ENV["chat"].addr["grpc"],
                          {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        for i in range(50):
            sid = c.get_next_available_stream_id()
            c.send_headers(sid, GRPC_HEADERS)
            c.send_data(sid, grpc_msg("zw-%d" % i, max_tokens=400), end_stream=True)
        s.sendall(c.data_to_send())
        # Generation never waits for readers: every record is written while the window is 0.
        rec = ENV["chat"].records
        lib.wait_for(lambda: sum(1 for r in lib.records(rec)
                                 if r["user_id"].startswith("zw-")) == 50,
                     "50 records while the client window stays 0")
        self.after("zero-window stall (held open)")
        s.close()
        lib.wait_for(lambda: lib.metrics(ENV["chat"].addr["admin"]).get(
            "llmgate_chat_streams", 0) < 100, "stalled streams released")


# ---------------------------------------------------------------- injection and privacy
def sse_request(method, path, body=None, headers=None):
    host, port = ENV["sse"].addr["http"].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    h = {"Authorization": "Bearer " + EDGE_KEY}
    if body is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = conn.getresponse()
    return conn, r


class Injection(unittest.TestCase):
    def test_sse_injection_cannot_forge_events(self):
        conn, r = sse_request("POST", "/v1/chat/streams", {
            "model": "fault-inject", "messages": [{"role": "user", "content": PROMPT_MARK}]})
        self.assertEqual(r.status, 201)
        created = json.loads(r.read())
        conn.close()
        sid = created["stream_id"]
        conn, r = sse_request("GET", created["events_url"])
        self.assertEqual(r.status, 200)
        raw = b""
        # Model text is JSON-escaped inside data lines, so a line of its own that says
        # "event: done" can only be the real end.
        while b"\nevent: done\n" not in raw and b"\nevent: error\n" not in raw:
            chunk = r.read1(65536)
            if not chunk:
                break
            raw += chunk
        while not raw.endswith(b"\n\n"):
            raw += r.read1(65536)
        conn.close()
        text = raw.decode("utf-8")
        self.assertNotIn("\r", text)
        content = ""
        retries = 0
        for block in text.split("\n\n"):
            if not block.strip():
                continue
            fields = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                self.assertIn(name, ("id", "event", "data", "retry"), "forged field: %r" % line)
                self.assertNotIn(name, fields, "field twice in one event: %r" % block)
                fields[name] = value[1:] if value.startswith(" ") else value
            if "retry" in fields:
                retries += 1
            if "id" in fields:
                self.assertRegex(fields["id"], r"^%s\.\d+$" % re.escape(sid))
            if "event" in fields:
                self.assertIn(fields["event"], ("start", "content", "done", "error",
                                                "heartbeat"))
                obj = json.loads(fields["data"])
                self.assertEqual(obj["type"], fields["event"])
                if fields["event"] == "content":
                    content += obj["data"]["content"]
        self.assertLessEqual(retries, 1)
        # The hostile text arrives intact, as data, and nothing else.
        self.assertEqual(content, INJECT_TEXT)

    def test_openai_stream_injection_cannot_forge_lines(self):
        conn, r = sse_request("POST", "/v1/chat/completions", {
            "model": "fault-inject", "stream": True,
            "messages": [{"role": "user", "content": PROMPT_MARK}]})
        self.assertEqual(r.status, 200)
        text = r.read().decode("utf-8")
        conn.close()
        self.assertNotIn("\r", text)
        content = ""
        datas = [ln for ln in text.split("\n") if ln and not ln.startswith(":")]
        for ln in datas:
            self.assertTrue(ln.startswith("data: "), "forged line: %r" % ln)
        self.assertEqual(datas[-1], "data: [DONE]")
        self.assertEqual(sum(1 for ln in datas if ln == "data: [DONE]"), 1)
        for ln in datas[:-1]:
            obj = json.loads(ln[6:])
            for ch in obj.get("choices", []):
                content += (ch.get("delta") or {}).get("content") or ""
        self.assertEqual(content, INJECT_TEXT)


def raw_http(data, timeout=10):
    """Sends raw bytes to llmgate-sse; returns everything it answers until it closes or goes
    quiet for |timeout| s."""
    host, port = ENV["sse"].addr["http"].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


class Smuggling(unittest.TestCase):
    """HTTP/1.1 framing ambiguities are refused at the edge, and nothing in a request body
    can set gRPC metadata (identity) on the call to llmgate-chat."""

    def statuses(self, out):
        return [int(line.split()[1]) for line in out.split(b"\r\n")
                if line.startswith(b"HTTP/1.1 ")]

    def test_cl_te_and_double_cl_are_refused(self):
        auth = b"Authorization: Bearer " + EDGE_KEY.encode() + b"\r\n"
        smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        valid = json.dumps({"model": "demo", "max_tokens": 2,
                            "messages": [{"role": "user", "content": "hi"}]}).encode()
        cases = {
            "CL+TE": b"POST /v1/chat/streams HTTP/1.1\r\nHost: x\r\n" + auth +
                     b"Content-Type: application/json\r\nContent-Length: 5\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
            # A valid body under the first length: libevent alone would serve it (201);
            # the adapter refuses two Content-Lengths itself.
            "two CL": b"POST /v1/chat/streams HTTP/1.1\r\nHost: x\r\n" + auth +
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(valid), len(valid) + 40, valid) +
                      smuggled,
            "obs-fold": b"POST /v1/chat/streams HTTP/1.1\r\nHost: x\r\n" + auth +
                        b"Content-Type: application/json\r\nX-A: a\r\n b\r\n"
                        b"Content-Length: 2\r\n\r\n{}",
        }
        for name, data in cases.items():
            st = self.statuses(raw_http(data, timeout=3))
            sys.stderr.write("[smuggling %s] statuses %s\n" % (name, st))
            self.assertTrue(st, name + ": no answer")
            self.assertNotIn(201, st, name + ": ambiguous request was served")
            self.assertTrue(all(400 <= x < 600 for x in st[:1]), name)
            # The smuggled request is never answered as a request of its own.
            self.assertLessEqual(len(st), 1, name + ": second response after ambiguity")

    def test_body_cannot_set_identity_metadata(self):
        conn, r = sse_request("POST", "/v1/chat/streams", {
            "model": "demo", "max_tokens": 3, "conversation_id": "c\r\nx-user-id: bob",
            "metadata": {"x-user-id": "bob", "x-user-id\r\nx-evil": "1"},
            "messages": [{"role": "user", "content": "who am I"}]})
        body = r.read()
        conn.close()
        sys.stderr.write("[metadata smuggling] POST answered %d\n" % r.status)
        if r.status != 201:  # refusing the odd metadata outright is also fine
            self.assertGreaterEqual(r.status, 400)
            self.assertLess(r.status, 500)
            return
        sid = json.loads(body)["stream_id"]
        rec = lib.wait_for(lambda: [x for x in lib.records(ENV["chat"].records)
                                    if x["stream_id"] == sid], "record")[0]
        self.assertEqual(rec["user_id"], "alice")


class Privacy(unittest.TestCase):
    def run_call(self, p):
        u = "priv-" + uuid.uuid4().hex[:8]
        prompt = PROMPT_MARK + " " + "z" * 100
        list(p.stub.StreamChat(pb.ChatRequest(user_id=u, model="fake-normal", messages=[
            pb.ChatMessage(role="user", content=prompt)]), timeout=30))
        return lib.wait_for(lambda: [r for r in lib.records(p.records) if r["user_id"] == u],
                            "record")[0]

    def test_body_logging_full_keeps_bodies(self):
        r = self.run_call(ENV["chat"])
        self.assertIn(PROMPT_MARK, r["request_messages"])
        self.assertEqual(r["response_content"], "Hello from the fake upstream.")

    def test_body_logging_none_keeps_no_bodies(self):
        r = self.run_call(ENV["chat_none"])
        self.assertNotIn(PROMPT_MARK, json.dumps(r))
        self.assertEqual(r["response_content"], "")
        self.assertGreater(r["completion_tokens"], 0)  # usage is still billed

    def test_body_logging_truncated_caps_bodies(self):
        r = self.run_call(ENV["chat_trunc"])
        self.assertLessEqual(len(r["response_content"].encode()), 16)
        self.assertNotIn("z" * 20, r["request_messages"])

    def test_upstream_error_does_not_echo_key(self):
        u = "err-" + uuid.uuid4().hex[:8]
        with self.assertRaises(grpc.RpcError) as cm:
            list(ENV["chat"].stub.StreamChat(pb.ChatRequest(user_id=u, model="fault-503",
                 messages=[pb.ChatMessage(role="user", content="x")]), timeout=30))
        self.assertNotIn(UPSTREAM_KEY, cm.exception.details() or "")

    def test_edge_rejects_wrong_key_without_echo(self):
        conn, r = sse_request("POST", "/v1/chat/streams", {"model": "demo", "messages": [
            {"role": "user", "content": "x"}]}, {"Authorization": "Bearer " + EDGE_KEY + "x"})
        body = r.read()
        conn.close()
        self.assertEqual(r.status, 401)
        self.assertNotIn(EDGE_KEY.encode(), body)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat", required=True)
    ap.add_argument("--sse", required=True)
    ap.add_argument("--protos", required=True)
    ap.add_argument("--workdir", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
