# tests/fuzz/record_row.cmake (owner: fuzz): the shipper's row encoding of hostile billing
# records (lg_record) and batch assembly (lg_batch, plain and gzip): valid JSONEachRow.
if(NOT TARGET lg_analytics)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/lg_fuzz_target.cmake)
lg_fuzz_target(record_row LIBS lg_analytics
               INSTRUMENT ${PROJECT_SOURCE_DIR}/analytics/lg_record.c
                          ${PROJECT_SOURCE_DIR}/analytics/lg_batch.c)
