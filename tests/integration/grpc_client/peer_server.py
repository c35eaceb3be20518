# SPDX-License-Identifier: Apache-2.0
"""A python grpcio grpc.testing.TestService server: the real peer of lg_grpc_client's
integration tests (owner: grpc-client).

Run with /usr/bin/python3 (it has grpcio 1.51). LG_PYGEN names the directory where the build
generated the grpcio stubs (grpc_tools.protoc, never committed). Listens on 127.0.0.1:PORT
(0 = a free port) and prints `listening grpc 127.0.0.1:PORT` once it accepts connections.
The behaviour follows grpc/grpc doc/interop-test-descriptions.md ("Server" section): echo of
x-grpc-test-echo-initial / x-grpc-test-echo-trailing-bin, response_status echo,
response_compressed, expect_compressed, response sizes and intervals.
"""
import argparse
import os
import sys
import time
from concurrent import futures

import grpc

# grpc is a regular package: extend its search path with the generated grpc.testing modules.
grpc.__path__.append(os.path.join(os.environ["LG_PYGEN"], "grpc"))

from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
# Pacing between streamed responses is checked in these steps, so a cancelled or expired
# call stops its worker promptly (this is the server's pace, not a test wait).
PACE_STEP_S = 0.01


def status_code(code):
    for c in grpc.StatusCode:
        if c.value[0] == code:
            return c
    return grpc.StatusCode.UNKNOWN


def echo_metadata(ctx):
    md = dict(ctx.invocation_metadata())
    if ECHO_INITIAL in md:
        ctx.send_initial_metadata(((ECHO_INITIAL, md[ECHO_INITIAL]),))
    if ECHO_TRAILING in md:
        ctx.set_trailing_metadata(((ECHO_TRAILING, md[ECHO_TRAILING]),))
    return md


def apply_status(ctx, st):
    if st.code != 0:
        ctx.set_code(status_code(st.code))
        ctx.set_details(st.message)
        return True
    return False


def pace(ctx, interval_us):
    end = time.monotonic() + interval_us / 1e6
    while ctx.is_active() and time.monotonic() < end:
        time.sleep(PACE_STEP_S)
    return ctx.is_active()


class TestService(test_pb2_grpc.TestServiceServicer):
    def EmptyCall(self, request, ctx):
        echo_metadata(ctx)
        return empty_pb2.Empty()

    def UnaryCall(self, request, ctx):
        echo_metadata(ctx)
        # expect_compressed cannot be checked here: grpcio decompresses the request and hides
        # grpc-encoding. The response carries the request size instead, so a request that the
        # server could not decompress exactly fails the test.
        if request.response_compressed.value:
            ctx.set_compression(grpc.Compression.Gzip)
        if apply_status(ctx, request.response_status):
            return messages_pb2.SimpleResponse()
        return messages_pb2.SimpleResponse(
            payload=messages_pb2.Payload(body=b"\0" * request.response_size),
            username=str(len(request.payload.body)))

    def StreamingOutputCall(self, request, ctx):
        echo_metadata(ctx)
        for p in request.response_parameters:
            if p.interval_us and not pace(ctx, p.interval_us):
                return
            if p.compressed.value:
                ctx.set_compression(grpc.Compression.Gzip)
            yield messages_pb2.StreamingOutputCallResponse(
                payload=messages_pb2.Payload(body=b"\0" * p.size))
        apply_status(ctx, request.response_status)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-concurrent-streams", type=int, default=0)
    args = ap.parse_args()
    options = [("grpc.so_reuseport", 0)]
    if args.max_concurrent_streams:
        options.append(("grpc.max_concurrent_streams", args.max_concurrent_streams))
    # Enough workers that 100 concurrent streaming calls are all in flight at once.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=160), options=options,
                         maximum_concurrent_rpcs=None)
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    port = server.add_insecure_port("127.0.0.1:%d" % args.port)
    if port == 0:
        print("bind failed", file=sys.stderr)
        return 1
    server.start()
    print("listening grpc 127.0.0.1:%d" % port, flush=True)
    try:
        # Runs until the harness kills it or closes stdin.
        while sys.stdin.read(4096):
            pass
    except KeyboardInterrupt:
        pass
    server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
