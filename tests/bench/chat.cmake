# tests/bench/chat.cmake (owner: chat): llmgate-chat benchmark (streams/s, tokens/s, TTFT added
# over the fake upstream). `bench.chat.smoke` (label bench) runs it end to end in a tiny mode;
# figures come from a release build:
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-rel --target llmgate-chat chat_ttft
#   /usr/bin/python3 tests/bench/chat_bench.py --chat build-rel/bin/llmgate-chat \
#       --ttft-tool build-rel/tests/chat_ttft
# chat_ttft measures TTFT straight to the fake and through the gateway from one C process
# (raw keep-alive socket vs lg_grpc_client), so both paths pay the same client costs.
if(TARGET llmgate-chat)
  set(lg_chat_bench_args --chat $<TARGET_FILE:llmgate-chat> --smoke)
  if(TARGET lg_grpc_client AND TARGET lg_chat_proto)
    add_executable(chat_ttft ${CMAKE_CURRENT_LIST_DIR}/chat_ttft.c)
    lg_target_warnings(chat_ttft)
    target_include_directories(chat_ttft SYSTEM PRIVATE ${CMAKE_BINARY_DIR}/gen)
    target_link_libraries(chat_ttft PRIVATE lg_grpc_client lg_chat_proto lg_loop lg_common)
    set_target_properties(chat_ttft PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
    list(APPEND lg_chat_bench_args --ttft-tool $<TARGET_FILE:chat_ttft>)
  endif()
  add_test(NAME bench.chat.smoke
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/chat_bench.py ${lg_chat_bench_args})
  set_tests_properties(bench.chat.smoke PROPERTIES LABELS "bench;chat" TIMEOUT 300)
endif()
