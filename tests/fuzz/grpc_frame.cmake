# tests/fuzz/grpc_frame.cmake (owner: grpc-client): fuzzing of the sans-I/O gRPC codec.
# Every build: a deterministic smoke run of the fuzz target (fixed seeds + fixed-seed
# mutations) under ctest. With clang: also the libFuzzer binary fuzz_grpc_frame (run by hand,
# e.g. `build/tests/fuzz_grpc_frame -max_total_time=60`).
if(NOT TARGET lg_grpc_frame)
  return()
endif()

add_executable(fuzz_grpc_frame_smoke ${CMAKE_CURRENT_LIST_DIR}/fuzz_grpc_frame.c)
lg_target_warnings(fuzz_grpc_frame_smoke)
target_link_libraries(fuzz_grpc_frame_smoke PRIVATE lg_grpc_frame)
set_target_properties(fuzz_grpc_frame_smoke PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME fuzz.grpc_frame_smoke COMMAND fuzz_grpc_frame_smoke)
set_tests_properties(fuzz.grpc_frame_smoke PROPERTIES LABELS fuzz TIMEOUT 300)

if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_grpc_frame ${CMAKE_CURRENT_LIST_DIR}/fuzz_grpc_frame.c)
  lg_target_warnings(fuzz_grpc_frame)
  target_compile_definitions(fuzz_grpc_frame PRIVATE LG_FUZZ_LIBFUZZER=1)
  target_compile_options(fuzz_grpc_frame PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_grpc_frame PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_grpc_frame PRIVATE lg_grpc_frame)
  set_target_properties(fuzz_grpc_frame PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
endif()
