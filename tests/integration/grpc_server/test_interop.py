# SPDX-License-Identifier: Apache-2.0
"""python grpcio (a real, unmodified gRPC client) against lg-grpc-testserver: the grpc interop
cases (doc/interop-test-descriptions.md) the gRPC server runtime must pass."""
import queue
import threading
import unittest

from lgts import Server, empty_pb2, grpc, messages_pb2

SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


def stream_request(sizes, interval_us=0, status=None):
    req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=s, interval_us=interval_us) for s in sizes])
    if status is not None:
        req.response_status.code = status[0]
        req.response_status.message = status[1]
    return req


class Interop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.channel = cls.server.channel()
        cls.stub = cls.server.stub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop()

    def test_empty_unary(self):
        r = self.stub.EmptyCall(empty_pb2.Empty(), timeout=10)
        self.assertEqual(r, empty_pb2.Empty())

    def test_large_unary(self):
        req = messages_pb2.SimpleRequest(response_size=314159,
                                         payload=messages_pb2.Payload(body=b"\0" * 271828))
        r = self.stub.UnaryCall(req, timeout=10)
        self.assertEqual(len(r.payload.body), 314159)
        self.assertEqual(r.payload.body, b"\0" * 314159)

    def test_server_streaming(self):
        sizes = [31415, 9, 2653, 58979]
        got = [len(r.payload.body) for r in
               self.stub.StreamingOutputCall(stream_request(sizes), timeout=10)]
        self.assertEqual(got, sizes)

    def test_special_status_message(self):
        req = messages_pb2.SimpleRequest()
        req.response_status.code = 2
        req.response_status.message = SPECIAL_MESSAGE
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.UnaryCall(req, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNKNOWN)
        self.assertEqual(cm.exception.details(), SPECIAL_MESSAGE)

    def test_status_code_and_message_full_duplex(self):
        call = self.stub.FullDuplexCall(iter([stream_request([], status=(2, "test status message"))]),
                                        timeout=10)
        with self.assertRaises(grpc.RpcError) as cm:
            list(call)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNKNOWN)
        self.assertEqual(cm.exception.details(), "test status message")

    def test_unimplemented_method(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.UnimplementedCall(empty_pb2.Empty(), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_unimplemented_service(self):
        call = self.channel.unary_unary("/grpc.testing.UnimplementedService/UnimplementedCall",
                                        request_serializer=lambda x: x,
                                        response_deserializer=lambda x: x)
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"", timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_custom_metadata_unary(self):
        md = (("x-grpc-test-echo-initial", "test_initial_metadata_value"),
              ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab"))
        r, call = self.stub.UnaryCall.with_call(
            messages_pb2.SimpleRequest(response_size=314159,
                                       payload=messages_pb2.Payload(body=b"\0" * 271828)),
            metadata=md, timeout=10)
        self.assertEqual(len(r.payload.body), 314159)
        self.assertIn(("x-grpc-test-echo-initial", "test_initial_metadata_value"),
                      tuple(call.initial_metadata()))
        self.assertIn(("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab"),
                      tuple(call.trailing_metadata()))

    def test_custom_metadata_full_duplex(self):
        md = (("x-grpc-test-echo-initial", "test_initial_metadata_value"),
              ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab"))
        call = self.stub.FullDuplexCall(iter([stream_request([314159])]), metadata=md,
                                        timeout=10)
        got = [len(r.payload.body) for r in call]
        self.assertEqual(got, [314159])
        self.assertIn(("x-grpc-test-echo-initial", "test_initial_metadata_value"),
                      tuple(call.initial_metadata()))
        self.assertIn(("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab"),
                      tuple(call.trailing_metadata()))

    def test_ping_pong(self):
        sizes = [31415, 9, 2653, 58979]
        q = queue.Queue()

        def requests():
            for s in sizes:
                yield stream_request([s])
                q.get(timeout=10)  # the answer arrived: send the next one

        call = self.stub.FullDuplexCall(requests(), timeout=20)
        got = []
        for r in call:
            got.append(len(r.payload.body))
            q.put(1)
        self.assertEqual(got, sizes)

    def test_client_streaming(self):
        sizes = [27182, 8, 1828, 45904]
        reqs = (messages_pb2.StreamingInputCallRequest(
            payload=messages_pb2.Payload(body=b"\0" * n)) for n in sizes)
        r = self.stub.StreamingInputCall(reqs, timeout=10)
        self.assertEqual(r.aggregated_payload_size, 74922)

    def test_empty_stream(self):
        self.assertEqual(list(self.stub.FullDuplexCall(iter([]), timeout=10)), [])

    def test_deadline_exceeded(self):
        before = self.server.stats()
        # The server sleeps 5 s before its first response; the client gives it 200 ms.
        with self.assertRaises(grpc.RpcError) as cm:
            list(self.stub.StreamingOutputCall(stream_request([1], interval_us=5000000),
                                               timeout=0.2))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        # The handler was told to stop (its close callback ran): deadline or the client's
        # cancel, whichever reached the server first.
        self.server.wait_stats(
            lambda s: s["closed_deadline"] + s["closed_cancelled"] >
            before["closed_deadline"] + before["closed_cancelled"], "handler told to stop")

    def test_timeout_on_sleeping_server(self):
        # Interop "timeout_on_sleeping_server": 1 ms deadline on FullDuplexCall; the server
        # sleeps 5 s before answering, so the outcome does not depend on machine speed.
        call = self.stub.FullDuplexCall(iter([stream_request([27182], interval_us=5000000)]),
                                        timeout=0.001)
        with self.assertRaises(grpc.RpcError) as cm:
            list(call)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_cancel_after_first_response(self):
        before = self.server.stats()
        q = queue.Queue()

        def requests():
            yield stream_request([31415])
            q.get(timeout=30)  # keep the request side open until the test ends

        call = self.stub.FullDuplexCall(requests(), timeout=20)
        first = next(call)
        self.assertEqual(len(first.payload.body), 31415)
        call.cancel()
        q.put(1)
        with self.assertRaises(grpc.RpcError) as cm:
            next(call)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.CANCELLED)
        self.server.wait_stats(lambda s: s["closed_cancelled"] > before["closed_cancelled"],
                               "server saw the cancel")

    def test_100_concurrent_streams(self):
        # 100 streams, each answered twice 1 s apart: all 100 are open at the same time
        # (the server's stream limit is 100; every first answer comes before any second).
        def req(i):
            r = stream_request([10 + i, 20 + i])
            r.response_parameters[1].interval_us = 1000000
            return r

        calls = [self.stub.StreamingOutputCall(req(i), timeout=30) for i in range(100)]
        firsts = [len(next(c).payload.body) for c in calls]
        self.assertEqual(firsts, [10 + i for i in range(100)])
        rests = [[len(r.payload.body) for r in c] for c in calls]
        self.assertEqual(rests, [[20 + i] for i in range(100)])
        # And 100 unary calls in flight at once over one connection.
        futs = [self.stub.UnaryCall.future(messages_pb2.SimpleRequest(response_size=i),
                                           timeout=30) for i in range(100)]
        self.assertEqual([len(f.result().payload.body) for f in futs], list(range(100)))

    def test_concurrent_streams_from_threads(self):
        errors = []

        def worker(n):
            try:
                for _ in range(5):
                    got = [len(r.payload.body) for r in
                           self.stub.StreamingOutputCall(stream_request([n, 2 * n]), timeout=20)]
                    if got != [n, 2 * n]:
                        errors.append(got)
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)

        ts = [threading.Thread(target=worker, args=(i + 1,)) for i in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])

    def test_client_compressed_unary(self):
        req = messages_pb2.SimpleRequest(response_size=314159,
                                         payload=messages_pb2.Payload(body=b"\0" * 271828))
        req.expect_compressed.value = True
        # Probe: uncompressed while the server expects compression -> INVALID_ARGUMENT.
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.UnaryCall(req, timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # Compressed: the server saw the compressed flag and gunzipped the request.
        r = self.stub.UnaryCall(req, timeout=10, compression=grpc.Compression.Gzip)
        self.assertEqual(len(r.payload.body), 314159)

    def test_server_compressed_unary(self):
        req = messages_pb2.SimpleRequest(response_size=314159)
        req.response_compressed.value = True
        r = self.stub.UnaryCall(req, timeout=10)
        self.assertEqual(r.payload.body, b"\0" * 314159)

    def test_server_compressed_streaming(self):
        req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
            messages_pb2.ResponseParameters(size=31415,
                                            compressed=messages_pb2.BoolValue(value=True)),
            messages_pb2.ResponseParameters(size=92653,
                                            compressed=messages_pb2.BoolValue(value=False))])
        got = [len(r.payload.body) for r in self.stub.StreamingOutputCall(req, timeout=10)]
        self.assertEqual(got, [31415, 92653])

    def test_gzip_both_ways_on_a_gzip_channel(self):
        with self.server.channel(compression=grpc.Compression.Gzip) as ch:
            stub = self.server.stub(ch)
            req = messages_pb2.SimpleRequest(response_size=100000,
                                             payload=messages_pb2.Payload(body=b"\0" * 100000))
            req.response_compressed.value = True
            r = stub.UnaryCall(req, timeout=10)
            self.assertEqual(r.payload.body, b"\0" * 100000)


if __name__ == "__main__":
    unittest.main()
