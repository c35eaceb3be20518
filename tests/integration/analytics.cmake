# Analytics integration tests: each starts its own ClickHouse (tests/integration/clickhouse)
# on free loopback ports, drives the real shipper / CLI, and checks ClickHouse's contents.
if(TARGET lg_analytics)
  add_executable(ship_driver ${CMAKE_CURRENT_LIST_DIR}/analytics/ship_driver.c
                             ${CMAKE_CURRENT_LIST_DIR}/analytics/drv_record.c)
  lg_target_warnings(ship_driver)
  target_link_libraries(ship_driver PRIVATE lg_analytics)
  set_target_properties(ship_driver PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/analytics/usage_api.c)
    add_executable(usage_api ${CMAKE_CURRENT_LIST_DIR}/analytics/usage_api.c)
    lg_target_warnings(usage_api)
    target_link_libraries(usage_api PRIVATE lg_analytics)
    set_target_properties(usage_api PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  endif()

  file(GLOB LG_ANALYTICS_IT CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/analytics/it_*.sh)
  foreach(script ${LG_ANALYTICS_IT})
    get_filename_component(name ${script} NAME_WE)
    add_test(NAME integration.analytics.${name}
             COMMAND ${script} ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
    set_tests_properties(integration.analytics.${name} PROPERTIES
      LABELS "integration;analytics" TIMEOUT 600
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1")
  endforeach()

  # The same scripts against current ClickHouse (26.x: the chDB engine behind
  # tests/integration/clickhouse/chdb/chdb_http.js, LG_CLICKHOUSE_IMPL=chdb in start.sh):
  # the migrations, the analyst queries, retention, UsageService, every field of 100k
  # shipped rows, dead-lettering by current error messages, the batch_id check, and a spool of
  # JSON then RowBinary rows. Not the
  # tests that watch system.processes mid-insert (it_outage, it_kill_shipper): that layer
  # runs one request at a time.
  foreach(name it_migrate it_queries it_retention it_usage it_ship_100k it_dead_letter
               it_ambiguous it_format_upgrade)
    add_test(NAME integration.analytics.current.${name}
             COMMAND ${CMAKE_CURRENT_LIST_DIR}/analytics/${name}.sh ${CMAKE_BINARY_DIR}
                     ${PROJECT_SOURCE_DIR})
    set_tests_properties(integration.analytics.current.${name} PROPERTIES
      LABELS "integration;analytics;current" TIMEOUT 600
      ENVIRONMENT "LG_CLICKHOUSE_IMPL=chdb;ASAN_OPTIONS=detect_leaks=1:abort_on_error=1")
  endforeach()
endif()
