# services/common/ops.cmake (owner: ops): metrics registry and admin HTTP endpoints.
# lg_metrics: counters, gauges, histograms with labels, Prometheus text format 0.0.4.
add_library(lg_metrics STATIC ${CMAKE_CURRENT_LIST_DIR}/lg_metrics.c)
lg_target_warnings(lg_metrics)
target_include_directories(lg_metrics PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lg_metrics PUBLIC lg_common Threads::Threads m)

# lg_admin: /healthz, /readyz, /metrics over HTTP/1.1 (libevent evhttp).
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/lg_admin.c)
  add_library(lg_admin STATIC ${CMAKE_CURRENT_LIST_DIR}/lg_admin.c)
  lg_target_warnings(lg_admin)
  target_include_directories(lg_admin PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(lg_admin PUBLIC lg_loop lg_metrics lg_common PkgConfig::LIBEVENT)
endif()

foreach(t metrics admin)
  if(EXISTS ${PROJECT_SOURCE_DIR}/tests/unit/test_${t}.c AND TARGET lg_${t})
    lg_unit_test(test_${t} ${PROJECT_SOURCE_DIR}/tests/unit/test_${t}.c lg_${t}
                 PkgConfig::CURL Threads::Threads)
  endif()
endforeach()
