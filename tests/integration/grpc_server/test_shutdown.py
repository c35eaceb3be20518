# SPDX-License-Identifier: Apache-2.0
"""Graceful shutdown: SIGTERM turns health NOT_SERVING (pushed to watchers), sends the
two-phase GOAWAY (last-stream-id 2^31-1, then the real one), lets in-flight calls finish,
refuses new connections, cancels what is left at the drain deadline, and exits 0."""
import signal
import time
import unittest

import h2.events

from lgts import Server, grpc, messages_pb2
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
import h2.config
import h2.connection
import hpack
from lgts import raw_connect
from test_bad_input import STREAM, grpc_headers, lpm

FRAME_HEADERS, FRAME_SETTINGS, FRAME_PING, FRAME_GOAWAY = 0x1, 0x4, 0x6, 0x7
FLAG_END_STREAM, FLAG_ACK = 0x1, 0x1


class RawConn:
    """HTTP/2 by hand: h2 encodes the request; frames coming back are parsed here, PINGs and
    SETTINGS acknowledged, GOAWAY last-stream-ids recorded, header blocks HPACK-decoded."""

    def __init__(self, server):
        self.sock = raw_connect(server)
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.h2.initiate_connection()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.goaways = []
        self.headers = []
        self.ended = False
        self.sid = None

    def start_call(self, req):
        self.sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(self.sid, grpc_headers(STREAM))
        self.h2.send_data(self.sid, lpm(req.SerializeToString()), end_stream=True)
        self.sock.sendall(self.h2.data_to_send())
        return self.sid

    def frame(self, ftype, flags, sid, payload):
        return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) +
                sid.to_bytes(4, "big") + payload)

    def run_until_closed(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, OSError):
                break
            if not data:
                break
            self.buf += data
            while len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + n:
                    break
                ftype, flags = self.buf[3], self.buf[4]
                sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                payload = self.buf[9:9 + n]
                self.buf = self.buf[9 + n:]
                if ftype == FRAME_PING and not flags & FLAG_ACK:
                    self.sock.sendall(self.frame(FRAME_PING, FLAG_ACK, 0, payload))
                elif ftype == FRAME_SETTINGS and not flags & FLAG_ACK:
                    self.sock.sendall(self.frame(FRAME_SETTINGS, FLAG_ACK, 0, b""))
                elif ftype == FRAME_GOAWAY:
                    self.goaways.append(int.from_bytes(payload[:4], "big") & 0x7FFFFFFF)
                elif ftype == FRAME_HEADERS:
                    self.headers += [(k.decode() if isinstance(k, bytes) else k,
                                      v.decode() if isinstance(v, bytes) else v)
                                     for k, v in self.dec.decode(payload)]
                    if sid == self.sid and flags & FLAG_END_STREAM:
                        self.ended = True
        self.sock.close()


class Shutdown(unittest.TestCase):
    def test_graceful_shutdown(self):
        server = Server("--drain-ms", "3000")
        ch = server.channel()
        stub = server.stub(ch)
        health = health_pb2_grpc.HealthStub(ch)
        S = health_pb2.HealthCheckResponse
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
        self.assertEqual(next(watch).status, S.SERVING)

        # A raw HTTP/2 connection records the GOAWAY frames (parsed by hand: the h2 state
        # machine treats the first GOAWAY as the end of the connection).
        raw = RawConn(server)
        raw_sid = raw.start_call(messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=5, interval_us=300000)]))

        # An in-flight stream of 5 messages, 200 ms apart (about 1 s).
        req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=100 + i, interval_us=200000) for i in range(5)])
        it = stub.StreamingOutputCall(req, timeout=60)
        got = [len(next(it).payload.body)]
        server.proc.send_signal(signal.SIGTERM)

        # Health flips to NOT_SERVING for the watcher.
        self.assertEqual(next(watch).status, S.NOT_SERVING)
        # The in-flight stream completes normally.
        got += [len(r.payload.body) for r in it]
        self.assertEqual(got, [100 + i for i in range(5)])
        # Raw connection: GOAWAY(2^31-1) first, then GOAWAY(last real stream); its call
        # finishes with grpc-status 0, and then the server closes the connection.
        raw.run_until_closed()
        self.assertEqual(raw.goaways[:2], [2**31 - 1, raw_sid])
        self.assertIn(("grpc-status", "0"), raw.headers)
        self.assertTrue(raw.ended)
        # New connections are refused.
        with server.channel() as ch2:
            with self.assertRaises(grpc.RpcError) as cm:
                server.stub(ch2).EmptyCall(messages_pb2.SimpleRequest(), timeout=5)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        # The watch never ends by itself: the drain deadline cancels it and the process exits.
        with self.assertRaises(grpc.RpcError):
            list(watch)
        ch.close()
        server.stop(sig=None)  # the drain deadline ends the process by itself, exit code 0


if __name__ == "__main__":
    unittest.main()
