# tests/bench/sse.cmake (owner: sse): llmgate-sse benchmark. sse_load holds many SSE streams
# (epoll, several 127.x source addresses); sse_bench.py drives llmgate-chat + llmgate-sse and
# prints the adapter's RSS per idle heartbeating stream and events/s to many streams.
# `bench.sse.smoke` (label bench) runs it end to end at tiny sizes; figures come from a
# release build:
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DLLMGATE_SANITIZE=OFF
#   cmake --build build-rel --target llmgate-sse llmgate-chat sse_load
#   /usr/bin/python3 tests/bench/sse_bench.py --bin-dir build-rel/bin --load build-rel/tests/sse_load
# Peers measured in the same run: nchan and Pushpin (--peers). Figures and method: sse.md.
add_executable(sse_load ${CMAKE_CURRENT_LIST_DIR}/sse_load.c)
lg_target_warnings(sse_load)
set_target_properties(sse_load PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
if(TARGET llmgate-sse AND TARGET llmgate-chat)
  add_test(NAME bench.sse.smoke
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/sse_bench.py
                   --bin-dir $<TARGET_FILE_DIR:llmgate-sse> --load $<TARGET_FILE:sse_load> --smoke)
  set_tests_properties(bench.sse.smoke PROPERTIES LABELS "bench;sse" TIMEOUT 300)
endif()
