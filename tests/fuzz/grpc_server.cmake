# tests/fuzz/grpc_server.cmake (owner: grpc-server): fuzzing of lg_grpc_server's connection
# input. Every build: a deterministic smoke run (seed streams + fixed-seed mutations) under
# ctest. With clang: also the libFuzzer binary fuzz_grpc_server (run by hand, e.g.
# `build/tests/fuzz_grpc_server_smoke --write-seeds corpus/ &&
#  build/tests/fuzz_grpc_server corpus/ -max_total_time=60`).
if(NOT TARGET lg_grpc_server)
  return()
endif()

add_executable(fuzz_grpc_server_smoke ${CMAKE_CURRENT_LIST_DIR}/fuzz_grpc_server.c)
lg_target_warnings(fuzz_grpc_server_smoke)
target_link_libraries(fuzz_grpc_server_smoke PRIVATE lg_grpc_server)
set_target_properties(fuzz_grpc_server_smoke PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME fuzz.grpc_server_smoke COMMAND fuzz_grpc_server_smoke)
set_tests_properties(fuzz.grpc_server_smoke PROPERTIES LABELS fuzz TIMEOUT 300)

if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  # The server sources are compiled into the target so libFuzzer sees their coverage.
  add_executable(fuzz_grpc_server ${CMAKE_CURRENT_LIST_DIR}/fuzz_grpc_server.c
                 ${PROJECT_SOURCE_DIR}/services/common/lg_grpc_server.c)
  lg_target_warnings(fuzz_grpc_server)
  target_compile_definitions(fuzz_grpc_server PRIVATE LG_FUZZ_LIBFUZZER=1)
  target_compile_options(fuzz_grpc_server PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_grpc_server PRIVATE -fsanitize=fuzzer)
  target_include_directories(fuzz_grpc_server PRIVATE ${PROJECT_SOURCE_DIR}/services/common)
  target_link_libraries(fuzz_grpc_server PRIVATE lg_loop lg_grpc_frame lg_metrics lg_common
                        PkgConfig::NGHTTP2 PkgConfig::LIBEVENT PkgConfig::PROTOBUFC)
  set_target_properties(fuzz_grpc_server PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
endif()
