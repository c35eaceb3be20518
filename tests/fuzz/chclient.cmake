# tests/fuzz/chclient.cmake (owner: fuzz): ClickHouse HTTP answer parsing (exception inside a
# 200, "(at row N)"), failure classification, SQL string quoting and URL encoding.
if(NOT TARGET lg_analytics)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/lg_fuzz_target.cmake)
lg_fuzz_target(chclient LIBS lg_analytics
               INSTRUMENT ${PROJECT_SOURCE_DIR}/analytics/lg_chclient.c)
