# tests/fuzz/sse_auth.cmake (owner: fuzz): properties of the SSE adapter's identity code
# (Bearer parsing, key hashes and keys files, token make/verify round trips, secrets).
if(NOT TARGET lg_sse_core)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/lg_fuzz_target.cmake)
lg_fuzz_target(sse_auth LIBS lg_sse_core
               INSTRUMENT ${PROJECT_SOURCE_DIR}/adapters/sse/lg_sse_auth.c)
