# tests/fuzz/sse.cmake (owner: sse): fuzzing of the SSE adapter's sans-I/O codecs (encoder,
# Last-Event-ID, query strings, request JSON, tokens, keys files). Every build: a
# deterministic smoke run under ctest. With clang: also the libFuzzer binary fuzz_sse_codec.
if(NOT TARGET lg_sse_core)
  return()
endif()

add_executable(fuzz_sse_codec_smoke ${CMAKE_CURRENT_LIST_DIR}/fuzz_sse_codec.c)
lg_target_warnings(fuzz_sse_codec_smoke)
target_link_libraries(fuzz_sse_codec_smoke PRIVATE lg_sse_core)
set_target_properties(fuzz_sse_codec_smoke PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME fuzz.sse_codec_smoke COMMAND fuzz_sse_codec_smoke)
set_tests_properties(fuzz.sse_codec_smoke PROPERTIES LABELS fuzz TIMEOUT 300)

if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_sse_codec ${CMAKE_CURRENT_LIST_DIR}/fuzz_sse_codec.c)
  lg_target_warnings(fuzz_sse_codec)
  target_compile_definitions(fuzz_sse_codec PRIVATE LG_FUZZ_LIBFUZZER=1)
  target_compile_options(fuzz_sse_codec PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_sse_codec PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_sse_codec PRIVATE lg_sse_core)
  set_target_properties(fuzz_sse_codec PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
endif()
