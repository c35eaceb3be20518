# tests/fuzz/chat.cmake (owner: chat): fuzzing of the upstream stream codecs (lg_chat_sse +
# lg_chat_openai_parse_chunk). Every build: a deterministic smoke run under ctest. With clang:
# also the libFuzzer binary fuzz_chat_sse (e.g. `build/tests/fuzz_chat_sse -max_total_time=60`).
if(NOT TARGET lg_chat_core)
  return()
endif()

add_executable(fuzz_chat_sse_smoke ${CMAKE_CURRENT_LIST_DIR}/fuzz_chat_sse.c)
lg_target_warnings(fuzz_chat_sse_smoke)
target_link_libraries(fuzz_chat_sse_smoke PRIVATE lg_chat_core)
set_target_properties(fuzz_chat_sse_smoke PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME fuzz.chat_sse_smoke COMMAND fuzz_chat_sse_smoke)
set_tests_properties(fuzz.chat_sse_smoke PROPERTIES LABELS fuzz TIMEOUT 300)

if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_chat_sse ${CMAKE_CURRENT_LIST_DIR}/fuzz_chat_sse.c)
  lg_target_warnings(fuzz_chat_sse)
  target_compile_definitions(fuzz_chat_sse PRIVATE LG_FUZZ_LIBFUZZER=1)
  target_compile_options(fuzz_chat_sse PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_chat_sse PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_chat_sse PRIVATE lg_chat_core)
  set_target_properties(fuzz_chat_sse PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
endif()
