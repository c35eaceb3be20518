# lg_grpc_client: gRPC client on nghttp2 + libevent (owner: grpc-client). Included by
# services/common/CMakeLists.txt.
add_library(lg_grpc_client STATIC ${CMAKE_CURRENT_LIST_DIR}/lg_grpc_client.c)
lg_target_warnings(lg_grpc_client)
target_include_directories(lg_grpc_client PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lg_grpc_client PUBLIC lg_grpc_frame lg_common PkgConfig::NGHTTP2
                      PkgConfig::LIBEVENT)

lg_unit_test(test_grpc_client ${PROJECT_SOURCE_DIR}/tests/unit/test_grpc_client.c lg_grpc_client)
