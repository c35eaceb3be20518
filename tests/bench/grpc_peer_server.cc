/*
 * grpc-peer-server: the grpc C++ reference peer for tests/bench (owner: bench).
 *
 * Purpose: a grpc C++ (Debian libgrpc++ 1.51) asynchronous, completion-queue server that
 * implements the grpc.testing.TestService methods the benchmark drives, so that
 * tests/bench/grpc_bench.py can measure our nghttp2 runtime and grpc C++ side by side, in the
 * same run, on the same machine, with the same h2load client and the same request bytes.
 *
 * Methods served: EmptyCall; UnaryCall (a payload of response_size zero bytes, as the interop
 * server does); StreamingOutputCall (one message per response_parameters entry, each written
 * as soon as the previous write completes: messages are sent as produced, never batched).
 * interval_us, compression and response_status are ignored: the benchmark sends none. The
 * other TestService methods are never requested by this server (grpc C++ then holds such a
 * call until shutdown); the benchmark does not call them.
 *
 * Threads: --threads N runs N server completion queues, each drained by its own thread
 * (the layout of grpc's own qps benchmark async server). N = 1 (the default) is the
 * configuration comparable to a single-threaded event-loop server; N = 0 means one per core
 * (std::thread::hardware_concurrency()), the configuration grpc's qps benchmark uses.
 * grpc core adds its own helper threads (timer manager, executor) in both cases.
 *
 * Output: prints "listening grpc HOST:PORT" on stdout once the server accepts connections.
 * SIGINT/SIGTERM shut it down cleanly (in-flight calls get up to LG_PEER_SHUTDOWN_MS).
 *
 * Ownership: every call object owns itself; it is created when a request slot is posted and
 * deletes itself when its last completion-queue event arrives (or when the slot is cancelled
 * by shutdown).
 */
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>

#include <grpcpp/grpcpp.h>

#include "grpc/testing/test.grpc.pb.h"

namespace {

using grpc::testing::Empty;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;
using grpc::testing::TestService;

/* Largest payload a request may ask for; grpc's default receive limit on clients is 4 MiB,
 * so a bigger response could not be received anyway. Beyond it: INVALID_ARGUMENT. */
constexpr int LG_PEER_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
/* Request slots posted per method per completion queue. The 10x10 point keeps 100 calls in
 * flight; fewer slots would make new streams wait for a slot to be re-posted. */
constexpr int LG_PEER_SLOTS_PER_METHOD = 128;
/* Grace period for in-flight calls at shutdown. */
constexpr int LG_PEER_SHUTDOWN_MS = 1000;
/* Upper bound for --threads, a sanity limit for a 2-core bench machine and larger ones. */
constexpr unsigned LG_PEER_MAX_THREADS = 64;

class Call {
  public:
    virtual ~Call() = default;
    /* Handles one completion-queue event for this call; ok is the event's success flag. */
    virtual void Proceed(bool ok) = 0;
};

grpc::Status CheckSize(int size)
{
    if (size < 0 || size > LG_PEER_MAX_PAYLOAD_BYTES) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "payload size out of range");
    }
    return grpc::Status::OK;
}

class EmptyCallData final : public Call {
  public:
    EmptyCallData(TestService::AsyncService *svc, grpc::ServerCompletionQueue *cq)
        : svc_(svc), cq_(cq), responder_(&ctx_)
    {
        svc_->RequestEmptyCall(&ctx_, &req_, &responder_, cq_, cq_, this);
    }
    void Proceed(bool ok) override
    {
        if (!ok || finishing_) {
            delete this;
            return;
        }
        new EmptyCallData(svc_, cq_);
        finishing_ = true;
        responder_.Finish(Empty(), grpc::Status::OK, this);
    }

  private:
    TestService::AsyncService *svc_;
    grpc::ServerCompletionQueue *cq_;
    grpc::ServerContext ctx_;
    Empty req_;
    grpc::ServerAsyncResponseWriter<Empty> responder_;
    bool finishing_ = false;
};

class UnaryCallData final : public Call {
  public:
    UnaryCallData(TestService::AsyncService *svc, grpc::ServerCompletionQueue *cq)
        : svc_(svc), cq_(cq), responder_(&ctx_)
    {
        svc_->RequestUnaryCall(&ctx_, &req_, &responder_, cq_, cq_, this);
    }
    void Proceed(bool ok) override
    {
        if (!ok || finishing_) {
            delete this;
            return;
        }
        new UnaryCallData(svc_, cq_);
        finishing_ = true;
        grpc::Status st = CheckSize(req_.response_size());
        if (!st.ok()) {
            responder_.FinishWithError(st, this);
            return;
        }
        SimpleResponse resp;
        resp.mutable_payload()->set_body(std::string(static_cast<size_t>(req_.response_size()), '\0'));
        responder_.Finish(resp, grpc::Status::OK, this);
    }

  private:
    TestService::AsyncService *svc_;
    grpc::ServerCompletionQueue *cq_;
    grpc::ServerContext ctx_;
    SimpleRequest req_;
    grpc::ServerAsyncResponseWriter<SimpleResponse> responder_;
    bool finishing_ = false;
};

class StreamingCallData final : public Call {
  public:
    StreamingCallData(TestService::AsyncService *svc, grpc::ServerCompletionQueue *cq)
        : svc_(svc), cq_(cq), writer_(&ctx_)
    {
        svc_->RequestStreamingOutputCall(&ctx_, &req_, &writer_, cq_, cq_, this);
    }
    void Proceed(bool ok) override
    {
        switch (state_) {
        case State::kRequested:
            if (!ok) {
                delete this; /* shutdown cancelled the slot */
                return;
            }
            new StreamingCallData(svc_, cq_);
            state_ = State::kWriting;
            WriteNextOrFinish();
            return;
        case State::kWriting:
            if (!ok) {
                /* The client went away; the call is dead, only Finish remains. */
                Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
                return;
            }
            next_++;
            WriteNextOrFinish();
            return;
        case State::kFinishing:
            delete this;
            return;
        }
    }

  private:
    enum class State { kRequested, kWriting, kFinishing };

    void WriteNextOrFinish()
    {
        if (next_ >= req_.response_parameters_size()) {
            Finish(grpc::Status::OK);
            return;
        }
        int size = req_.response_parameters(next_).size();
        grpc::Status st = CheckSize(size);
        if (!st.ok()) {
            Finish(st);
            return;
        }
        /* Reuse the response buffer: the library serializes it during Write(). */
        resp_.mutable_payload()->mutable_body()->assign(static_cast<size_t>(size), '\0');
        writer_.Write(resp_, this);
    }
    void Finish(const grpc::Status &st)
    {
        state_ = State::kFinishing;
        writer_.Finish(st, this);
    }

    TestService::AsyncService *svc_;
    grpc::ServerCompletionQueue *cq_;
    grpc::ServerContext ctx_;
    StreamingOutputCallRequest req_;
    StreamingOutputCallResponse resp_;
    grpc::ServerAsyncWriter<StreamingOutputCallResponse> writer_;
    State state_ = State::kRequested;
    int next_ = 0;
};

void DrainQueue(grpc::ServerCompletionQueue *cq)
{
    void *tag = nullptr;
    bool ok = false;
    while (cq->Next(&tag, &ok)) {
        static_cast<Call *>(tag)->Proceed(ok);
    }
}

void Usage(const char *argv0)
{
    std::fprintf(stderr,
                 "usage: %s [--listen HOST:PORT] [--threads N]\n"
                 "  --listen HOST:PORT  address to serve h2c gRPC on (default 127.0.0.1:0;\n"
                 "                      port 0 picks a free port). Env LLMGATE_LISTEN.\n"
                 "  --threads N         completion queues, one polling thread each (default 1;\n"
                 "                      0 = one per core). Env LLMGATE_THREADS.\n",
                 argv0);
}

bool ParseThreads(const char *s, unsigned *out)
{
    char *end = nullptr;
    errno = 0;
    unsigned long v = std::strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > LG_PEER_MAX_THREADS) {
        return false;
    }
    if (v == 0) {
        v = std::thread::hardware_concurrency();
        if (v == 0) {
            v = 1;
        }
    }
    *out = static_cast<unsigned>(v);
    return true;
}

} // namespace

int main(int argc, char **argv)
{
    std::string listen = "127.0.0.1:0";
    const char *threads_arg = "1";
    if (const char *e = std::getenv("LLMGATE_LISTEN")) {
        listen = e;
    }
    if (const char *e = std::getenv("LLMGATE_THREADS")) {
        threads_arg = e;
    }
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            Usage(argv[0]);
            return 0;
        }
        if (i + 1 < argc && std::strcmp(argv[i], "--listen") == 0) {
            listen = argv[++i];
        } else if (i + 1 < argc && std::strcmp(argv[i], "--threads") == 0) {
            threads_arg = argv[++i];
        } else {
            Usage(argv[0]);
            return 2;
        }
    }
    unsigned nthreads = 1;
    if (!ParseThreads(threads_arg, &nthreads)) {
        std::fprintf(stderr, "grpc-peer-server: bad --threads '%s' (0..%u)\n", threads_arg,
                     LG_PEER_MAX_THREADS);
        return 2;
    }
    std::string host = listen.substr(0, listen.rfind(':'));

    /* Block the shutdown signals before grpc starts its threads, so that only the sigwait()
     * below receives them. SIGPIPE is ignored for the whole process. */
    std::signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    TestService::AsyncService service;
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
    for (unsigned i = 0; i < nthreads; i++) {
        cqs.push_back(builder.AddCompletionQueue());
    }
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server || port == 0) {
        std::fprintf(stderr, "grpc-peer-server: cannot listen on %s\n", listen.c_str());
        return 1;
    }
    for (auto &cq : cqs) {
        for (int i = 0; i < LG_PEER_SLOTS_PER_METHOD; i++) {
            new EmptyCallData(&service, cq.get());
            new UnaryCallData(&service, cq.get());
            new StreamingCallData(&service, cq.get());
        }
    }
    std::vector<std::thread> workers;
    for (auto &cq : cqs) {
        workers.emplace_back(DrainQueue, cq.get());
    }
    std::printf("listening grpc %s:%d\n", host.c_str(), port);
    std::fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(LG_PEER_SHUTDOWN_MS));
    for (auto &cq : cqs) {
        cq->Shutdown();
    }
    for (auto &t : workers) {
        t.join();
    }
    return 0;
}
