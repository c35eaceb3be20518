# tests/fuzz/spool.cmake (owner: fuzz): the analytics spool's recovery and reader over
# corrupted segment and state files, written into a temporary directory per input.
if(NOT TARGET lg_analytics)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/lg_fuzz_target.cmake)
lg_fuzz_target(spool LIBS lg_analytics
               INSTRUMENT ${PROJECT_SOURCE_DIR}/analytics/lg_spool.c)
