# tests/bench/chat.cmake (owner: chat): llmgate-chat benchmark (streams/s, tokens/s, TTFT added
# over the fake upstream). `bench.chat.smoke` (label bench) runs it end to end in a tiny mode;
# figures come from a release build:
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel --target llmgate-chat
#   /usr/bin/python3 tests/bench/chat_bench.py --chat build-rel/bin/llmgate-chat
if(TARGET llmgate-chat)
  add_test(NAME bench.chat.smoke
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/chat_bench.py
                   --chat $<TARGET_FILE:llmgate-chat> --smoke)
  set_tests_properties(bench.chat.smoke PROPERTIES LABELS "bench;chat" TIMEOUT 300)
endif()
