// SPDX-License-Identifier: Apache-2.0
//
// grpc-cpp-interop-client: the grpc C++ 1.51 client (grpc core's chttp2 transport, used the
// way a native C++ service would: sync and async stubs, TryCancel, per-call compression)
// running interop cases against lg-grpc-testserver. Usage: grpc-cpp-interop-client HOST:PORT.
// Prints one line per case; exits 0 only when every case passed.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "grpc/testing/empty.pb.h"
#include "grpc/testing/messages.pb.h"
#include "grpc/testing/test.grpc.pb.h"

namespace {

using grpc::testing::TestService;

constexpr int kDeadlineS = 10;

std::unique_ptr<grpc::ClientContext> Ctx()
{
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(kDeadlineS));
    return ctx;
}

bool EmptyUnary(TestService::Stub &stub)
{
    grpc::testing::Empty req, resp;
    auto ctx = Ctx();
    return stub.EmptyCall(ctx.get(), req, &resp).ok() && resp.ByteSizeLong() == 0;
}

bool LargeUnary(TestService::Stub &stub)
{
    grpc::testing::SimpleRequest req;
    grpc::testing::SimpleResponse resp;
    req.set_response_size(314159);
    req.mutable_payload()->set_body(std::string(271828, '\0'));
    auto ctx = Ctx();
    return stub.UnaryCall(ctx.get(), req, &resp).ok() && resp.payload().body().size() == 314159;
}

bool ServerStreaming(TestService::Stub &stub)
{
    const std::vector<int> sizes = {31415, 9, 2653, 58979};
    grpc::testing::StreamingOutputCallRequest req;
    for (int s : sizes) {
        req.add_response_parameters()->set_size(s);
    }
    auto ctx = Ctx();
    auto reader = stub.StreamingOutputCall(ctx.get(), req);
    grpc::testing::StreamingOutputCallResponse resp;
    std::vector<int> got;
    while (reader->Read(&resp)) {
        got.push_back(static_cast<int>(resp.payload().body().size()));
    }
    return reader->Finish().ok() && got == sizes;
}

bool ClientStreaming(TestService::Stub &stub)
{
    grpc::testing::StreamingInputCallResponse resp;
    auto ctx = Ctx();
    auto writer = stub.StreamingInputCall(ctx.get(), &resp);
    for (int s : {27182, 8, 1828, 45904}) {
        grpc::testing::StreamingInputCallRequest req;
        req.mutable_payload()->set_body(std::string(static_cast<size_t>(s), '\0'));
        if (!writer->Write(req)) {
            return false;
        }
    }
    writer->WritesDone();
    return writer->Finish().ok() && resp.aggregated_payload_size() == 74922;
}

bool PingPong(TestService::Stub &stub)
{
    const std::vector<int> sizes = {31415, 9, 2653, 58979};
    auto ctx = Ctx();
    auto stream = stub.FullDuplexCall(ctx.get());
    for (int s : sizes) {
        grpc::testing::StreamingOutputCallRequest req;
        req.add_response_parameters()->set_size(s);
        grpc::testing::StreamingOutputCallResponse resp;
        if (!stream->Write(req) || !stream->Read(&resp) ||
            resp.payload().body().size() != static_cast<size_t>(s)) {
            return false;
        }
    }
    stream->WritesDone();
    grpc::testing::StreamingOutputCallResponse extra;
    return !stream->Read(&extra) && stream->Finish().ok();
}

bool SpecialStatusMessage(TestService::Stub &stub)
{
    const std::string msg = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP "
                            "\U0001f608\t\n";
    grpc::testing::SimpleRequest req;
    grpc::testing::SimpleResponse resp;
    req.mutable_response_status()->set_code(2);
    req.mutable_response_status()->set_message(msg);
    auto ctx = Ctx();
    grpc::Status st = stub.UnaryCall(ctx.get(), req, &resp);
    return st.error_code() == grpc::StatusCode::UNKNOWN && st.error_message() == msg;
}

bool CustomMetadata(TestService::Stub &stub)
{
    grpc::testing::SimpleRequest req;
    grpc::testing::SimpleResponse resp;
    req.set_response_size(314159);
    auto ctx = Ctx();
    ctx->AddMetadata("x-grpc-test-echo-initial", "test_initial_metadata_value");
    ctx->AddMetadata("x-grpc-test-echo-trailing-bin", std::string("\xab\xab\xab", 3));
    if (!stub.UnaryCall(ctx.get(), req, &resp).ok()) {
        return false;
    }
    auto ini = ctx->GetServerInitialMetadata().find("x-grpc-test-echo-initial");
    auto tra = ctx->GetServerTrailingMetadata().find("x-grpc-test-echo-trailing-bin");
    return ini != ctx->GetServerInitialMetadata().end() &&
           std::string(ini->second.data(), ini->second.size()) == "test_initial_metadata_value" &&
           tra != ctx->GetServerTrailingMetadata().end() &&
           std::string(tra->second.data(), tra->second.size()) == "\xab\xab\xab";
}

bool UnimplementedMethod(TestService::Stub &stub)
{
    grpc::testing::Empty req, resp;
    auto ctx = Ctx();
    return stub.UnimplementedCall(ctx.get(), req, &resp).error_code() ==
           grpc::StatusCode::UNIMPLEMENTED;
}

bool DeadlineExceeded(TestService::Stub &stub)
{
    grpc::testing::StreamingOutputCallRequest req;
    auto *p = req.add_response_parameters();
    p->set_size(1);
    p->set_interval_us(5000000);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    auto reader = stub.StreamingOutputCall(&ctx, req);
    grpc::testing::StreamingOutputCallResponse resp;
    while (reader->Read(&resp)) {
    }
    return reader->Finish().error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

bool CancelAfterFirstResponse(TestService::Stub &stub)
{
    auto ctx = Ctx();
    auto stream = stub.FullDuplexCall(ctx.get());
    grpc::testing::StreamingOutputCallRequest req;
    req.add_response_parameters()->set_size(31415);
    grpc::testing::StreamingOutputCallResponse resp;
    if (!stream->Write(req) || !stream->Read(&resp)) {
        return false;
    }
    ctx->TryCancel();
    return stream->Finish().error_code() == grpc::StatusCode::CANCELLED;
}

bool GzipBothWays(TestService::Stub &stub)
{
    grpc::testing::SimpleRequest req;
    grpc::testing::SimpleResponse resp;
    req.set_response_size(314159);
    req.mutable_payload()->set_body(std::string(271828, '\0'));
    req.mutable_expect_compressed()->set_value(true);
    req.mutable_response_compressed()->set_value(true);
    auto ctx = Ctx();
    ctx->set_compression_algorithm(GRPC_COMPRESS_GZIP);
    return stub.UnaryCall(ctx.get(), req, &resp).ok() && resp.payload().body().size() == 314159;
}

bool ManyConcurrentUnary(TestService::Stub &stub)
{
    // 100 asynchronous unary calls in flight at once on one channel.
    grpc::CompletionQueue cq;
    struct Call {
        grpc::ClientContext ctx;
        grpc::testing::SimpleResponse resp;
        grpc::Status st;
        std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::testing::SimpleResponse>> rpc;
    };
    std::vector<std::unique_ptr<Call>> calls;
    for (int i = 0; i < 100; i++) {
        auto c = std::make_unique<Call>();
        grpc::testing::SimpleRequest req;
        req.set_response_size(i);
        c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(kDeadlineS));
        c->rpc = stub.AsyncUnaryCall(&c->ctx, req, &cq);
        c->rpc->Finish(&c->resp, &c->st, c.get());
        calls.push_back(std::move(c));
    }
    int ok = 0;
    for (int i = 0; i < 100; i++) {
        void *tag;
        bool fine;
        if (!cq.Next(&tag, &fine)) {
            break;
        }
        auto *c = static_cast<Call *>(tag);
        if (fine && c->st.ok()) {
            ok++;
        }
    }
    cq.Shutdown();
    void *tag;
    bool fine;
    while (cq.Next(&tag, &fine)) {
    }
    for (size_t i = 0; i < calls.size(); i++) {
        if (calls[i]->resp.payload().body().size() != i) {
            return false;
        }
    }
    return ok == 100;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    auto channel = grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
    auto stub = TestService::NewStub(channel);
    struct Case {
        const char *name;
        bool (*fn)(TestService::Stub &);
    };
    const Case cases[] = {
        {"empty_unary", EmptyUnary},
        {"large_unary", LargeUnary},
        {"server_streaming", ServerStreaming},
        {"client_streaming", ClientStreaming},
        {"ping_pong", PingPong},
        {"special_status_message", SpecialStatusMessage},
        {"custom_metadata", CustomMetadata},
        {"unimplemented_method", UnimplementedMethod},
        {"deadline_exceeded", DeadlineExceeded},
        {"cancel_after_first_response", CancelAfterFirstResponse},
        {"gzip_both_ways", GzipBothWays},
        {"100_concurrent_unary", ManyConcurrentUnary},
    };
    int failed = 0;
    for (const Case &c : cases) {
        bool ok = c.fn(*stub);
        std::printf("%-28s %s\n", c.name, ok ? "ok" : "FAILED");
        failed += ok ? 0 : 1;
    }
    return failed == 0 ? 0 : 1;
}
