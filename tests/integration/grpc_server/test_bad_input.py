# SPDX-License-Identifier: Apache-2.0
"""Bad and unusual input on raw sockets (plain TCP and a raw HTTP/2 client, python h2): each
case gets the protocol's answer, and the server keeps serving other connections (proved with a
real grpcio call after each case)."""
import gzip
import os
import re
import select
import socket
import struct
import threading
import time
import unittest

import grpc

import h2.config
import h2.connection
import h2.events
import h2.settings

from lgts import Server, messages_pb2, raw_connect, recv_until_closed

UNARY = "/grpc.testing.TestService/UnaryCall"
STREAM = "/grpc.testing.TestService/StreamingOutputCall"
H2_FRAME_GOAWAY = 0x7
H2_PROTOCOL_ERROR = 0x1
H2_CANCEL = 0x8
H2_NO_ERROR = 0x0
H2_ENHANCE_YOUR_CALM = 0xB
CLOSE_REASONS = ("closed_finished", "closed_cancelled", "closed_deadline", "closed_conn_lost",
                 "closed_shutdown", "closed_error")


def grpc_server_limit(name):
    """A limit of the gRPC server section of services/common/lg_limits.h."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                        "services", "common", "lg_limits.h")
    with open(path) as f:
        return int(re.search(r"#define %s (\d+)u?\b" % name, f.read()).group(1))


def calls_ended(stats):
    """Calls whose handler ran and ended (every started call gets exactly one on_close)."""
    return sum(stats[k] for k in CLOSE_REASONS)


def lpm(payload, compressed=False):
    return struct.pack(">BI", 1 if compressed else 0, len(payload)) + payload


def grpc_headers(path, extra=(), content_type="application/grpc", method="POST"):
    return [(":method", method), (":scheme", "http"), (":path", path),
            (":authority", "localhost"), ("content-type", content_type), ("te", "trailers"),
            *extra]


class H2Client:
    """A minimal HTTP/2 client over a raw socket, driving the h2 state machine."""

    def __init__(self, server):
        self.sock = raw_connect(server)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False)
        self.conn = h2.connection.H2Connection(cfg)
        self.conn.initiate_connection()
        self.flush()
        self.remote_settings = {}
        self.streams = {}
        self.ping_acks = 0
        self.goaway = None
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, headers, body=b"", end=True):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, headers, end_stream=end and not body)
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        self.streams[sid] = {"headers": None, "data": b"", "trailers": None, "reset": None,
                             "ended": False}
        return sid

    def pump(self, pred, timeout=20.0):
        deadline = time.monotonic() + timeout
        while not pred():
            if self.closed:
                return False
            if time.monotonic() > deadline:
                raise AssertionError("timed out")
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                self.closed = True
                continue
            for ev in self.conn.receive_data(data):
                self.on_event(ev)
            self.flush()
        return True

    def on_event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived):
            st["headers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.TrailersReceived):
            st["trailers"] = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            st["data"] += ev.data
            st.setdefault("frames", []).append(ev.data)
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            st["ended"] = True
        elif isinstance(ev, h2.events.StreamReset):
            if st is not None:
                st["reset"] = ev.error_code
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[k] = v.new_value
        elif isinstance(ev, h2.events.PingAckReceived):
            self.ping_acks += 1
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev

    def wait_done(self, sid, timeout=20.0):
        st = self.streams[sid]
        self.pump(lambda: st["ended"] or st["reset"] is not None, timeout)
        return st

    def status(self, sid):
        """grpc-status of a finished stream: from the trailers or a Trailers-Only response."""
        st = self.streams[sid]
        src = st["trailers"] or st["headers"] or {}
        return int(src["grpc-status"]) if "grpc-status" in src else None

    def close(self):
        self.sock.close()


def h2_frames(data):
    """Splits raw bytes into (type, flags, stream, payload) HTTP/2 frames (best effort)."""
    out = []
    while len(data) >= 9:
        length = int.from_bytes(data[0:3], "big")
        ftype, flags = data[3], data[4]
        sid = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        out.append((ftype, flags, sid, data[9:9 + length]))
        data = data[9 + length:]
    return out


class ServerCase(unittest.TestCase):
    """One server per test class; after each test it must still be serving."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def tearDown(self):
        self.server.assert_serving()


class BadInput(ServerCase):
    def test_garbage_bytes_get_goaway_and_close(self):
        s = raw_connect(self.server)
        s.sendall(b"\x16\x03\x01\x02\x00garbage that is not an HTTP/2 preface" * 4)
        data = recv_until_closed(s)
        s.close()
        goaways = [f for f in h2_frames(data) if f[0] == H2_FRAME_GOAWAY]
        self.assertEqual(len(goaways), 1, data[:200])
        code = int.from_bytes(goaways[0][3][4:8], "big")
        self.assertEqual(code, H2_PROTOCOL_ERROR)

    def test_http1_request_gets_505(self):
        s = raw_connect(self.server)
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = recv_until_closed(s)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 505 "), data[:100])
        head, body = data.split(b"\r\n\r\n", 1)
        self.assertIn(b"Content-Length: %d" % len(body), head)

    def test_connection_closed_midway_through_preface(self):
        s = raw_connect(self.server)
        s.sendall(b"PRI * HTTP/2.0\r\n")
        s.close()

    def test_wrong_content_type_is_415(self):
        c = H2Client(self.server)
        sid = c.request(grpc_headers(UNARY, content_type="application/json"), b"{}")
        st = c.wait_done(sid)
        self.assertEqual(st["headers"][":status"], "415")
        self.assertEqual(c.status(sid), 13)
        c.close()

    def test_te_other_than_trailers_is_reset(self):
        c = H2Client(self.server)
        headers = [h for h in grpc_headers(UNARY) if h[0] != "te"] + [("te", "gzip")]
        sid = c.request(headers,
                        lpm(messages_pb2.SimpleRequest(response_size=1).SerializeToString()))
        st = c.wait_done(sid)
        self.assertEqual(st["reset"], H2_PROTOCOL_ERROR)
        c.close()

    def test_missing_te_is_tolerated(self):
        c = H2Client(self.server)
        headers = [h for h in grpc_headers(UNARY) if h[0] != "te"]
        sid = c.request(headers,
                        lpm(messages_pb2.SimpleRequest(response_size=3).SerializeToString()))
        c.wait_done(sid)
        self.assertEqual(c.status(sid), 0)
        c.close()

    def test_get_is_refused(self):
        c = H2Client(self.server)
        sid = c.request(grpc_headers(UNARY, method="GET"))
        st = c.wait_done(sid)
        self.assertEqual(st["headers"][":status"], "405")
        c.close()

    def test_oversized_headers(self):
        c = H2Client(self.server)
        sid = c.request(grpc_headers(UNARY, extra=[("x-big", "a" * 20000)]),
                        lpm(messages_pb2.SimpleRequest(response_size=1).SerializeToString()))
        st = c.wait_done(sid)
        # Refused before the handler runs: RESOURCE_EXHAUSTED (Trailers-Only) or a reset.
        self.assertTrue(c.status(sid) == 8 or st["reset"] is not None, st)
        if c.status(sid) == 8:
            self.assertEqual(st["headers"][":status"], "200")
        c.close()

    def test_truncated_message_frame_is_internal(self):
        c = H2Client(self.server)
        body = lpm(messages_pb2.SimpleRequest(response_size=1).SerializeToString() + b"x" * 50)
        sid = c.request(grpc_headers(UNARY), body[:20])  # prefix promises more than is sent
        c.wait_done(sid)
        self.assertEqual(c.status(sid), 13)
        c.close()

    def test_compressed_flag_without_encoding_is_internal(self):
        c = H2Client(self.server)
        payload = gzip.compress(messages_pb2.SimpleRequest(response_size=1).SerializeToString())
        sid = c.request(grpc_headers(UNARY), lpm(payload, compressed=True))
        c.wait_done(sid)
        self.assertEqual(c.status(sid), 13)
        c.close()

    def test_unsupported_encoding_is_unimplemented_with_accept_encoding(self):
        c = H2Client(self.server)
        sid = c.request(grpc_headers(UNARY, extra=[("grpc-encoding", "snappy")]),
                        lpm(b"\x01\x02", compressed=True))
        st = c.wait_done(sid)
        self.assertEqual(c.status(sid), 12)
        self.assertIn("gzip", st["headers"].get("grpc-accept-encoding", ""))
        c.close()

    def test_message_over_receive_limit_is_resource_exhausted(self):
        c = H2Client(self.server)
        # Only the prefix: the 5 MiB length alone must be refused (limit 4 MiB).
        sid = c.request(grpc_headers(UNARY), struct.pack(">BI", 0, 5 * 1024 * 1024), end=False)
        st = c.wait_done(sid)
        self.assertEqual(c.status(sid), 8)
        # Early trailers: the server resets the half-open stream with NO_ERROR afterwards.
        c.pump(lambda: st["reset"] is not None, 10)
        self.assertEqual(st["reset"], H2_NO_ERROR)
        c.close()

    def test_connection_receive_buffer_is_bounded(self):
        # 17 streams each hold an almost complete 4 000 000-byte message (68 MB > 64 MiB):
        # the connection refuses to hold more and fails a call RESOURCE_EXHAUSTED.
        c = H2Client(self.server)
        n, size = 17, 4000000
        sids = [c.request(grpc_headers(UNARY), struct.pack(">BI", 0, size), end=False)
                for _ in range(n)]
        left = {sid: size - 10 for sid in sids}
        chunk = b"\0" * 16384
        deadline = time.monotonic() + 120
        while left and time.monotonic() < deadline:
            progressed = False
            for sid in list(left):
                st = c.streams[sid]
                if st["ended"] or st["reset"] is not None:
                    del left[sid]
                    continue
                win = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size)
                k = min(win, left[sid], len(chunk))
                if k > 0:
                    c.conn.send_data(sid, chunk[:k])
                    left[sid] -= k
                    progressed = True
                    if left[sid] == 0:
                        del left[sid]
            c.flush()
            # Take in what the server sent (WINDOW_UPDATEs, answers) without blocking long.
            while select.select([c.sock], [], [], 0 if progressed else 0.05)[0]:
                data = c.sock.recv(65536)
                if not data:
                    left = {}
                    break
                for ev in c.conn.receive_data(data):
                    c.on_event(ev)
                c.flush()
        c.pump(lambda: any(c.status(sid) == 8 for sid in sids), 30)
        failed = [sid for sid in sids if c.status(sid) == 8]
        self.assertGreaterEqual(len(failed), 1)
        self.assertIn("receive buffer limit", c.streams[failed[0]]["headers"]["grpc-message"])
        c.close()

    def test_unknown_method_trailers_only_then_rst_no_error(self):
        c = H2Client(self.server)
        sid = c.request(grpc_headers("/grpc.testing.TestService/Nope"), end=False)
        st = c.wait_done(sid)
        self.assertEqual(st["headers"][":status"], "200")
        self.assertEqual(st["headers"]["grpc-status"], "12")
        self.assertIsNone(st["trailers"])  # Trailers-Only: one HEADERS frame
        c.pump(lambda: st["reset"] is not None, 10)
        self.assertEqual(st["reset"], H2_NO_ERROR)
        c.close()

    def test_undecodable_protobuf_is_internal(self):
        c = H2Client(self.server)
        sid = c.request(grpc_headers(UNARY), lpm(b"\xff\xff\xff\xff\xff"))
        c.wait_done(sid)
        self.assertEqual(c.status(sid), 13)
        c.close()

    def test_zero_and_two_messages_on_unary_are_unimplemented(self):
        c = H2Client(self.server)
        sid0 = c.request(grpc_headers(UNARY))
        m = lpm(messages_pb2.SimpleRequest(response_size=1).SerializeToString())
        sid2 = c.request(grpc_headers(UNARY), m + m)
        c.wait_done(sid0)
        c.wait_done(sid2)
        self.assertEqual(c.status(sid0), 12)
        self.assertEqual(c.status(sid2), 12)
        c.close()

    def test_split_message_across_data_frames(self):
        c = H2Client(self.server)
        m = lpm(messages_pb2.SimpleRequest(response_size=3,
                                           payload=messages_pb2.Payload(body=b"z" * 3000))
                .SerializeToString())
        sid = c.request(grpc_headers(UNARY), m[:1], end=False)
        for i in range(1, len(m), 997):
            c.conn.send_data(sid, m[i:i + 997], end_stream=i + 997 >= len(m))
            c.flush()
        st = c.wait_done(sid)
        self.assertEqual(c.status(sid), 0)
        r = messages_pb2.SimpleResponse.FromString(st["data"][5:])
        self.assertEqual(len(r.payload.body), 3)
        c.close()

    def test_gzip_response_has_flag_and_encoding(self):
        c = H2Client(self.server)
        req = messages_pb2.SimpleRequest(response_size=50000)
        req.response_compressed.value = True
        sid = c.request(grpc_headers(UNARY, extra=[("grpc-accept-encoding", "identity,gzip")]),
                        lpm(req.SerializeToString()))
        st = c.wait_done(sid)
        self.assertEqual(c.status(sid), 0)
        self.assertEqual(st["headers"].get("grpc-encoding"), "gzip")
        flag, n = struct.unpack(">BI", st["data"][:5])
        self.assertEqual(flag, 1)
        self.assertLess(n, 50000)
        r = messages_pb2.SimpleResponse.FromString(gzip.decompress(st["data"][5:5 + n]))
        self.assertEqual(len(r.payload.body), 50000)
        c.close()

    def test_server_compressed_streaming_per_message(self):
        c = H2Client(self.server)
        req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=31415, compressed=messages_pb2.BoolValue(value=True)),
            messages_pb2.ResponseParameters(size=92653, compressed=messages_pb2.BoolValue(value=False))])
        sid = c.request(grpc_headers(STREAM, extra=[("grpc-accept-encoding", "gzip")]),
                        lpm(req.SerializeToString()))
        st = c.wait_done(sid)
        self.assertEqual(c.status(sid), 0)
        self.assertEqual(st["headers"].get("grpc-encoding"), "gzip")
        data, sizes, flags = st["data"], [], []
        while data:
            flag, n = struct.unpack(">BI", data[:5])
            body = data[5:5 + n]
            data = data[5 + n:]
            flags.append(flag)
            if flag:
                body = gzip.decompress(body)
            sizes.append(len(messages_pb2.StreamingOutputCallResponse.FromString(body).payload.body))
        self.assertEqual(flags, [1, 0])
        self.assertEqual(sizes, [31415, 92653])
        c.close()

    def test_messages_go_out_as_produced(self):
        # A producer that emits one message per timer tick (as a token stream does): each
        # message leaves in its own DATA frame as soon as it is produced, never batched.
        c = H2Client(self.server)
        req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=10 + i, interval_us=20000) for i in range(5)])
        sid = c.request(grpc_headers(STREAM), lpm(req.SerializeToString()))
        st = c.wait_done(sid)
        self.assertEqual(c.status(sid), 0)
        frames = [f for f in st.get("frames", []) if f]
        self.assertEqual(len(frames), 5)
        for i, f in enumerate(frames):
            flag, n = struct.unpack(">BI", f[:5])
            self.assertEqual(len(f), 5 + n)  # exactly one whole message per frame
            body = messages_pb2.StreamingOutputCallResponse.FromString(f[5:]).payload.body
            self.assertEqual(len(body), 10 + i)
        c.close()

    def test_server_deadline_all_units(self):
        before = self.server.stats()
        c = H2Client(self.server)
        req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=1, interval_us=30000000)])
        sids = [c.request(grpc_headers(STREAM, extra=[("grpc-timeout", t)]),
                          lpm(req.SerializeToString()))
                for t in ("100m", "150000u", "20000000n", "1S")]
        for sid in sids:
            st = c.wait_done(sid, 30)
            self.assertEqual(c.status(sid), 4, st)  # DEADLINE_EXCEEDED from the server
        self.server.wait_stats(
            lambda s: s["closed_deadline"] >= before["closed_deadline"] + len(sids),
            "handlers told of the deadline")
        # Long units parse too and do not expire early: the call completes normally.
        fast = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=2)])
        for t in ("1H", "1M", "99999999S"):
            sid = c.request(grpc_headers(STREAM, extra=[("grpc-timeout", t)]),
                            lpm(fast.SerializeToString()))
            c.wait_done(sid)
            self.assertEqual(c.status(sid), 0, t)
        c.close()

    def test_malformed_timeout_is_refused(self):
        c = H2Client(self.server)
        sid = c.request(grpc_headers(UNARY, extra=[("grpc-timeout", "123456789S")]),
                        lpm(b""))
        c.wait_done(sid)
        self.assertEqual(c.status(sid), 13)
        c.close()

    def test_settings_and_ping_ack(self):
        c = H2Client(self.server)
        codes = h2.settings.SettingCodes
        c.pump(lambda: codes.MAX_CONCURRENT_STREAMS in c.remote_settings)
        self.assertEqual(c.remote_settings[codes.MAX_CONCURRENT_STREAMS], 100)
        self.assertEqual(c.remote_settings[codes.INITIAL_WINDOW_SIZE], 1024 * 1024)
        self.assertEqual(c.remote_settings[codes.MAX_HEADER_LIST_SIZE], 16384)
        c.conn.ping(b"12345678")
        c.flush()
        c.pump(lambda: c.ping_acks == 1)
        c.close()

    def test_ping_flood_gets_goaway_enhance_your_calm(self):
        c = H2Client(self.server)
        c.pump(lambda: h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS in c.remote_settings)
        for i in range(6):  # no calls, pings far closer than 5 min apart: strikes
            c.conn.ping(b"%08d" % i)
        c.flush()
        c.pump(lambda: c.goaway is not None)
        self.assertEqual(c.goaway.error_code, 0xB)  # ENHANCE_YOUR_CALM
        self.assertEqual(c.goaway.additional_data, b"too_many_pings")
        c.close()

    def test_client_reset_mid_stream(self):
        before = self.server.stats()
        c = H2Client(self.server)
        req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=1, interval_us=30000000)])
        sid = c.request(grpc_headers(STREAM), lpm(req.SerializeToString()))
        self.server.wait_stats(lambda s: s["calls"] > before["calls"], "call running")
        c.conn.reset_stream(sid, H2_CANCEL)
        c.flush()
        self.server.wait_stats(lambda s: s["closed_cancelled"] > before["closed_cancelled"],
                               "handler told of the RST_STREAM")
        c.close()

    def test_connection_loss_tells_handlers(self):
        before = self.server.stats()
        c = H2Client(self.server)
        req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=1, interval_us=30000000)])
        for _ in range(3):
            c.request(grpc_headers(STREAM), lpm(req.SerializeToString()))
        self.server.wait_stats(lambda s: s["calls"] >= before["calls"] + 3, "calls running")
        c.sock.close()
        self.server.wait_stats(lambda s: s["closed_conn_lost"] >= before["closed_conn_lost"] + 3,
                               "handlers told of the connection loss")


class RapidReset(ServerCase):
    """Rapid reset (CVE-2023-44487) against the per-connection budget for resets of running
    calls, and a legitimate client that cancels some of its calls."""

    def test_resets_of_running_calls_past_budget_get_enhance_your_calm(self):
        """Batches of calls, each reset once it has answered (so it runs): past the budget
        (LG_GRPC_SERVER_CLIENT_RESET_BURST, refilled at ..._RESETS_PER_SEC) the connection gets
        GOAWAY(ENHANCE_YOUR_CALM); exactly the calls up to its last-stream-id started."""
        burst = grpc_server_limit("LG_GRPC_SERVER_CLIENT_RESET_BURST")
        rate = grpc_server_limit("LG_GRPC_SERVER_CLIENT_RESETS_PER_SEC")
        before = self.server.wait_stats(lambda s: s["calls"] <= 1, "no calls")  # the Stats call itself
        req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=1),
            messages_pb2.ResponseParameters(size=1, interval_us=30000000)])
        body = lpm(req.SerializeToString())
        c = H2Client(self.server)
        c.sock.settimeout(0.5)
        batch = 20
        opened = []
        t0 = time.monotonic()
        while c.goaway is None and not c.closed and time.monotonic() - t0 < 60:
            sids = []
            try:
                for _ in range(batch):
                    sids.append(c.request(grpc_headers(STREAM), body))
            except OSError:  # closed after its GOAWAY, which is still to be read
                opened.extend(sids)
                break
            opened.extend(sids)
            try:  # until each call of the batch has answered (runs), or the GOAWAY
                c.pump(lambda: c.goaway is not None or
                       all(c.streams[sid]["data"] for sid in sids), 20)
            except (OSError, h2.exceptions.ProtocolError):
                break
            if c.goaway is not None or c.closed:
                break
            for sid in sids:
                c.conn.reset_stream(sid, H2_CANCEL)
            try:
                c.flush()
            except OSError:
                break
        try:
            c.pump(lambda: c.goaway is not None, 10)
        except (OSError, h2.exceptions.ProtocolError, AssertionError):
            pass
        elapsed = time.monotonic() - t0
        c.close()
        self.assertIsNotNone(c.goaway, "no GOAWAY")
        self.assertEqual(c.goaway.error_code, H2_ENHANCE_YOUR_CALM)
        last = c.goaway.last_stream_id
        after = self.server.wait_stats(lambda s: s["calls"] <= 1, "calls released")
        # The calls of this test never finish (they wait 30 s): they end cancelled (reset) or
        # with the connection; the Stats calls polling here end finished.
        started = ((calls_ended(after) - after["closed_finished"]) -
                   (calls_ended(before) - before["closed_finished"]))
        answered = [sid for sid in opened if c.streams[sid]["data"]]
        print("[rapid reset] %d calls started in %.2f s (budget %d + %d/s), GOAWAY "
              "last_stream=%d" % (started, elapsed, burst, rate, last))
        # Exactly the streams up to the GOAWAY's last-stream-id started, none above it.
        self.assertEqual(started, len([sid for sid in opened if sid <= last]))
        self.assertEqual([sid for sid in answered if sid > last], [])
        # The budget is honoured both ways: at least the burst, at most burst + refill, plus
        # the batch that was running when the GOAWAY came.
        self.assertGreaterEqual(started, burst)
        self.assertLessEqual(started, burst + int(rate * elapsed) + 1 + batch)

    def test_client_cancelling_a_tenth_of_its_calls_keeps_its_connection(self):
        """grpcio on one channel at a few hundred calls/s for several seconds, cancelling every
        tenth call once it has answered (a reset of a running call, as a user pressing stop):
        the budget's refill covers it, so no call fails and the connection is never cut."""
        target_rate = 400.0  # calls/s: cancels at 40/s, sustained past the burst of resets
        total = 2000
        workers = 8
        before = self.server.wait_stats(lambda s: s["calls"] <= 1, "no calls")  # the Stats call itself
        quick = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=1)])
        slow = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=1),
            messages_pb2.ResponseParameters(size=1, interval_us=30000000)])
        results = {"ok": 0, "cancelled": 0, "bad": []}
        lock = threading.Lock()
        t0 = time.monotonic()

        def worker(w, stub):
            for j in range(w, total, workers):
                delay = t0 + j / target_rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing to the target rate, not a wait for a condition
                try:
                    if j % 10 == 0:
                        it = stub.StreamingOutputCall(slow, timeout=30)
                        next(it)
                        it.cancel()
                        try:
                            next(it)
                            outcome = "bad: no error after cancel"
                        except grpc.RpcError as e:
                            outcome = ("cancelled" if e.code() == grpc.StatusCode.CANCELLED
                                       else "bad: %s" % e.code())
                    else:
                        n = len(list(stub.StreamingOutputCall(quick, timeout=30)))
                        outcome = "ok" if n == 1 else "bad: %d responses" % n
                except grpc.RpcError as e:
                    outcome = "bad: %s %s" % (e.code(), e.details())
                with lock:
                    if outcome.startswith("bad"):
                        results["bad"].append(outcome)
                    else:
                        results[outcome] += 1

        with self.server.channel() as ch:
            stub = self.server.stub(ch)
            threads = [threading.Thread(target=worker, args=(w, stub)) for w in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        elapsed = time.monotonic() - t0
        after = self.server.wait_stats(lambda s: s["calls"] <= 1, "calls released")
        print("[cancelling client] %d calls in %.2f s (%.0f calls/s), %d cancelled, %d bad"
              % (total, elapsed, total / elapsed, results["cancelled"], len(results["bad"])))
        self.assertEqual(results["bad"], [])
        self.assertEqual(results["cancelled"], total // 10)
        self.assertEqual(results["ok"], total - total // 10)
        # The server saw every cancel as a reset of a running call, and no connection was lost.
        self.assertEqual(after["closed_cancelled"] - before["closed_cancelled"], total // 10)
        self.assertEqual(after["closed_conn_lost"], before["closed_conn_lost"])
        # The cancels went past the burst, so the refill was needed (and enough).
        self.assertGreater(total // 10, grpc_server_limit("LG_GRPC_SERVER_CLIENT_RESET_BURST"))


class Keepalive(unittest.TestCase):
    """A client that never acknowledges the server's keepalive PING is disconnected."""

    def test_unanswered_keepalive_ping_closes_connection(self):
        server = Server("--keepalive-ms", "200", "--keepalive-timeout-ms", "300")
        try:
            s = raw_connect(server)
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            data, closed = b"", False
            while not closed:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                # socket.timeout (10 s) propagates: the server did not close the connection.
                closed = not chunk
                data += chunk
            s.close()
            pings = [f for f in h2_frames(data) if f[0] == 0x6 and not f[1] & 0x1]
            self.assertGreaterEqual(len(pings), 1)
            server.assert_serving()
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
