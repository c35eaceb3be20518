# services/common/curlm.cmake (owner: chat): lg_curlm, libcurl multi-socket on libevent.
add_library(lg_curlm STATIC ${CMAKE_CURRENT_LIST_DIR}/lg_curlm.c)
lg_target_warnings(lg_curlm)
target_include_directories(lg_curlm PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lg_curlm PUBLIC lg_common PkgConfig::CURL PkgConfig::LIBEVENT)

if(EXISTS ${PROJECT_SOURCE_DIR}/tests/unit/test_curlm.c)
  lg_unit_test(test_curlm ${PROJECT_SOURCE_DIR}/tests/unit/test_curlm.c lg_curlm)
endif()
