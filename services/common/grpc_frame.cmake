# lg_grpc_frame: the sans-I/O gRPC codec (owner: grpc-client). Included by
# services/common/CMakeLists.txt.
add_library(lg_grpc_frame STATIC ${CMAKE_CURRENT_LIST_DIR}/lg_grpc_frame.c)
lg_target_warnings(lg_grpc_frame)
target_include_directories(lg_grpc_frame PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lg_grpc_frame PUBLIC lg_common PkgConfig::ZLIB)

lg_unit_test(test_grpc_frame ${PROJECT_SOURCE_DIR}/tests/unit/test_grpc_frame.c lg_grpc_frame)
