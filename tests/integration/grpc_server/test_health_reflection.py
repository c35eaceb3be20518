# SPDX-License-Identifier: Apache-2.0
"""grpc.health.v1 and grpc.reflection (v1 and v1alpha) on lg-grpc-testserver, with grpcio
stubs generated from the standard protos (what grpcurl and health checkers use)."""
import unittest

from google.protobuf import descriptor_pb2, descriptor_pool

from lgts import Server, grpc
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc.reflection.v1 import reflection_pb2 as r1, reflection_pb2_grpc as r1g  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2 as ra  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2_grpc as rag  # noqa: E402

SERVICES = {"grpc.testing.TestService", "grpc.testing.UnimplementedService",
            "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"}


class HealthReflection(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.channel = cls.server.channel()

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop()

    def test_health_check(self):
        stub = health_pb2_grpc.HealthStub(self.channel)
        S = health_pb2.HealthCheckResponse
        self.assertEqual(stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status,
                         S.SERVING)
        self.assertEqual(stub.Check(health_pb2.HealthCheckRequest(
            service="grpc.testing.TestService"), timeout=10).status, S.SERVING)
        with self.assertRaises(grpc.RpcError) as cm:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_health_watch_sends_current_status(self):
        stub = health_pb2_grpc.HealthStub(self.channel)
        S = health_pb2.HealthCheckResponse
        w = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        self.assertEqual(next(w).status, S.SERVING)
        w.cancel()
        u = stub.Watch(health_pb2.HealthCheckRequest(service="not.yet.Known"), timeout=10)
        self.assertEqual(next(u).status, S.SERVICE_UNKNOWN)
        u.cancel()

    def reflect(self, mod, stub_cls, requests):
        stub = stub_cls(self.channel)
        return list(stub.ServerReflectionInfo(iter(requests), timeout=10))

    def check_version(self, mod, stub_cls):
        reqs = [mod.ServerReflectionRequest(host="h", list_services=""),
                mod.ServerReflectionRequest(file_containing_symbol="grpc.testing.TestService"),
                mod.ServerReflectionRequest(
                    file_containing_symbol="grpc.testing.TestService.UnaryCall"),
                mod.ServerReflectionRequest(file_containing_symbol="grpc.testing.SimpleRequest"),
                mod.ServerReflectionRequest(file_by_filename="grpc/health/v1/health.proto"),
                mod.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
                mod.ServerReflectionRequest(file_by_filename="no/such.proto")]
        resps = self.reflect(mod, stub_cls, reqs)
        self.assertEqual(len(resps), len(reqs))  # one answer per request, in order
        self.assertEqual(resps[0].valid_host, "h")
        self.assertEqual(resps[0].original_request, reqs[0])
        names = {s.name for s in resps[0].list_services_response.service}
        self.assertTrue(SERVICES <= names, names)

        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in resps[1].file_descriptor_response.file_descriptor_proto]
        self.assertEqual(files[0].name, "grpc/testing/test.proto")
        self.assertEqual({f.name for f in files},
                         {"grpc/testing/test.proto", "grpc/testing/empty.proto",
                          "grpc/testing/messages.proto"})  # transitive dependencies
        # The bytes describe the service completely: a descriptor pool can resolve it.
        pool = descriptor_pool.DescriptorPool()
        for f in reversed(files):
            pool.Add(f)
        svc = pool.FindServiceByName("grpc.testing.TestService")
        self.assertIn("UnaryCall", [m.name for m in svc.methods])
        self.assertEqual(pool.FindMessageTypeByName("grpc.testing.SimpleRequest").name,
                         "SimpleRequest")

        f2 = [descriptor_pb2.FileDescriptorProto.FromString(b).name
              for b in resps[2].file_descriptor_response.file_descriptor_proto]
        self.assertEqual(f2[0], "grpc/testing/test.proto")
        f3 = [descriptor_pb2.FileDescriptorProto.FromString(b).name
              for b in resps[3].file_descriptor_response.file_descriptor_proto]
        self.assertEqual(f3, ["grpc/testing/messages.proto"])
        f4 = [descriptor_pb2.FileDescriptorProto.FromString(b).name
              for b in resps[4].file_descriptor_response.file_descriptor_proto]
        self.assertEqual(f4, ["grpc/health/v1/health.proto"])
        for r in resps[5:]:
            self.assertEqual(r.WhichOneof("message_response"), "error_response")
            self.assertEqual(r.error_response.error_code, 5)

    def test_reflection_v1(self):
        self.check_version(r1, r1g.ServerReflectionStub)

    def test_reflection_v1alpha(self):
        self.check_version(ra, rag.ServerReflectionStub)


if __name__ == "__main__":
    unittest.main()
