# services/common/grpc_server.cmake (owner: grpc-server): the gRPC server runtime.
# lg_loop (libevent glue), lg_grpc_server (nghttp2 server), lg_grpc_health and
# lg_grpc_reflection (standard services). Included by services/common/CMakeLists.txt.

# lg_loop is shared by every binary and has no gRPC dependency.
add_library(lg_loop STATIC ${CMAKE_CURRENT_LIST_DIR}/lg_loop.c)
lg_target_warnings(lg_loop)
target_include_directories(lg_loop PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lg_loop PUBLIC lg_common PkgConfig::LIBEVENT)
lg_unit_test(test_loop ${PROJECT_SOURCE_DIR}/tests/unit/test_loop.c lg_loop)

if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/lg_grpc_frame.c AND TARGET lg_grpc_frame)
  add_library(lg_grpc_server STATIC ${CMAKE_CURRENT_LIST_DIR}/lg_grpc_server.c)
  lg_target_warnings(lg_grpc_server)
  target_include_directories(lg_grpc_server PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(lg_grpc_server PUBLIC lg_loop lg_grpc_frame lg_common
                        PkgConfig::NGHTTP2 PkgConfig::LIBEVENT PkgConfig::PROTOBUFC)
  lg_unit_test(test_grpc_server ${PROJECT_SOURCE_DIR}/tests/unit/test_grpc_server.c
               lg_grpc_server)
endif()
