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
endif()
