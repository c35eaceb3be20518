# SPDX-License-Identifier: Apache-2.0
"""A client that stops reading a long stream must not make the server buffer without bound:
the per-call send queue refuses with LG_ERR_AGAIN at its bound, the handler waits for the
writable callback, and the stream completes once the client reads again. Observed through the
test server's counters (/llmgate.testing.Stats/Get)."""
import unittest

from lgts import Server, messages_pb2

QUEUE_BYTES = 65536
MSG_BYTES = 32768
COUNT = 2000  # 64 MiB in total: far more than every buffer on the way (kernel, windows)


class SlowReader(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("--send-queue-bytes", str(QUEUE_BYTES))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_stalled_reader_bounds_the_queue_then_completes(self):
        with self.server.channel() as ch:
            stub = self.server.stub(ch)
            req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
                messages_pb2.ResponseParameters(size=MSG_BYTES) for _ in range(COUNT)])
            it = stub.StreamingOutputCall(req, timeout=120)
            self.assertEqual(len(next(it).payload.body), MSG_BYTES)
            # The client stops reading: the producer must hit the queue bound and wait.
            s = self.server.wait_stats(lambda s: s["again"] > 0, "backpressure (LG_ERR_AGAIN)")
            self.assertLess(s["messages_sent"], COUNT, "server produced everything: no stall")
            # Queue high mark: at most the bound plus one framed message.
            self.assertLessEqual(s["max_queued_bytes"], QUEUE_BYTES + MSG_BYTES + 16)
            stalled = s["messages_sent"]
            # Still stalled a moment later (nothing is produced while nobody reads): poll the
            # counters a few times and check the send count does not run away.
            for _ in range(5):
                s2 = self.server.stats()
                self.assertLessEqual(s2["max_queued_bytes"], QUEUE_BYTES + MSG_BYTES + 16)
            self.assertLess(s2["messages_sent"], COUNT)
            # The client reads again: everything arrives, in order and complete.
            n = 1 + sum(1 for r in it if len(r.payload.body) == MSG_BYTES)
            self.assertEqual(n, COUNT)
            s3 = self.server.stats()
            self.assertGreater(s3["writable"], 0)
            self.assertGreaterEqual(s3["messages_sent"], stalled)


if __name__ == "__main__":
    unittest.main()
