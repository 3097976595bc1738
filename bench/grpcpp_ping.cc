// grpcpp_ping.cc: the stock gRPC server `make bench` compares sentrad's
// gRPC side with: gRPC C++ (Debian libgrpc++-dev) answering
// sentra.v1.SystemService/Ping from the same proto/sentra/v1/system.proto,
// with the callback API (the one gRPC recommends for performance), on
// 127.0.0.1:PORT. Built only by `make bench` (bench/bench.mk).
//
//   grpcpp_ping PORT
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "sentra/v1/system.grpc.pb.h"

namespace {

class PingService final : public sentra::v1::SystemService::CallbackService {
    grpc::ServerUnaryReactor *Ping(grpc::CallbackServerContext *ctx, const sentra::v1::PingRequest *req,
                                   sentra::v1::PingResponse *resp) override
    {
        resp->set_data(req->data());
        auto *reactor = ctx->DefaultReactor();
        reactor->Finish(grpc::Status::OK);
        return reactor;
    }
};

} // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    std::string addr = std::string("127.0.0.1:") + argv[1];
    PingService service;
    grpc::ServerBuilder builder;
    builder.AddListeningPort(addr, grpc::InsecureServerCredentials());
    builder.RegisterService(&service);
    std::unique_ptr<grpc::Server> server(builder.BuildAndStart());
    if (!server) {
        std::fprintf(stderr, "grpcpp_ping: cannot listen on %s\n", addr.c_str());
        return 1;
    }
    std::fprintf(stderr, "grpcpp_ping: listening on %s\n", addr.c_str());
    server->Wait();
    return 0;
}
