# tests/integration/grpc_server.cmake (owner: grpc-server): lg-grpc-testserver and the
# integration tests that drive it with real gRPC clients (python grpcio) and raw sockets.
if(NOT TARGET lg_grpc_server)
  return()
endif()

lg_grpc_descriptor_set(lg_testserver_fds lg_testserver_fds
  grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto)

add_executable(lg-grpc-testserver ${CMAKE_CURRENT_LIST_DIR}/grpc_server/lg_testserver.c)
lg_target_warnings(lg-grpc-testserver)
target_link_libraries(lg-grpc-testserver PRIVATE lg_grpc_server lg_grpc_testing_proto
                      lg_testserver_fds)
