# tests/bench/analytics.cmake (owner: analytics): shipper benchmarks. They print figures and
# assert nothing. `bench.analytics.smoke` (label bench) runs both harnesses end to end in a
# tiny mode under the normal build; the real run is tests/bench/analytics/run.sh (README at
# the top of it), on an optimized, unsanitized build.
if(TARGET lg_analytics)
  add_executable(bench_enqueue ${CMAKE_CURRENT_LIST_DIR}/analytics/bench_enqueue.c
                               ${CMAKE_CURRENT_LIST_DIR}/../integration/analytics/drv_record.c)
  target_include_directories(bench_enqueue PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../integration/analytics)
  lg_target_warnings(bench_enqueue)
  target_link_libraries(bench_enqueue PRIVATE lg_analytics)
  set_target_properties(bench_enqueue PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME bench.analytics.smoke
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/analytics/run.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR} smoke)
  set_tests_properties(bench.analytics.smoke PROPERTIES LABELS "bench;analytics" TIMEOUT 600)
endif()
