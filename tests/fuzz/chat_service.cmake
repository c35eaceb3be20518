# tests/fuzz/chat_service.cmake (owner: fuzz): hostile request messages through the real chat
# service (lg_grpc_server + lg_chat_service + lg_usage) from an nghttp2 client on a socketpair.
# lg_chat_service.c is compiled here rather than linked from lg_chat: with clang, lg_chat does
# not build under -Werror (the generated headers' INIT macros cast away const and reach it as
# non-system headers), so its dependencies are linked instead.
if(NOT TARGET lg_chat_pb OR NOT TARGET lg_grpc_server
   OR NOT TARGET lg_analytics OR NOT TARGET lg_metrics OR NOT TARGET lg_curlm)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/lg_fuzz_target.cmake)
lg_fuzz_target(chat_service
               LIBS lg_chat_pb lg_grpc_server lg_curlm lg_analytics lg_metrics
                    PkgConfig::NGHTTP2 PkgConfig::LIBEVENT PkgConfig::PROTOBUFC
               INCLUDES ${CMAKE_BINARY_DIR}/gen
               SOURCES ${PROJECT_SOURCE_DIR}/services/chat/lg_chat_service.c
               INSTRUMENT ${PROJECT_SOURCE_DIR}/services/chat/lg_chat_request.c
                          ${PROJECT_SOURCE_DIR}/services/chat/lg_chat_pb.c)
# Source properties are per directory: this affects only the copy compiled in tests/.
set_source_files_properties(${PROJECT_SOURCE_DIR}/services/chat/lg_chat_service.c
                            PROPERTIES COMPILE_OPTIONS -Wno-cast-qual)
