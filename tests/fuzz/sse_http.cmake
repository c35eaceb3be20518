# tests/fuzz/sse_http.cmake (owner: fuzz): the SSE adapter's HTTP/1.1 edge driven over a
# loopback connection to an in-process lg_sse_http server (evhttp has no sans-I/O part).
if(NOT TARGET lg_sse_edge)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/lg_fuzz_target.cmake)
lg_fuzz_target(sse_http LIBS lg_sse_edge
               INCLUDES ${CMAKE_BINARY_DIR}/gen
               INSTRUMENT ${PROJECT_SOURCE_DIR}/adapters/sse/lg_sse_http.c
                          ${PROJECT_SOURCE_DIR}/adapters/sse/lg_sse_json.c
                          ${PROJECT_SOURCE_DIR}/adapters/sse/lg_sse_auth.c)
