# tests/integration/sse.cmake (owner: sse): integration tests of llmgate-sse against the real
# llmgate-chat (demo provider): raw-socket SSE checks, the official openai npm client, and a
# real browser (Debian chromium driven by playwright-core). Node modules come from
# scripts/install-npm (tests/integration/sse/node_modules); tests are registered only when
# node and both binaries exist.
find_program(LG_NODE node)
if(LG_NODE AND TARGET llmgate-sse AND TARGET llmgate-chat)
  set(LG_SSE_IT_DIR ${CMAKE_CURRENT_LIST_DIR}/sse)
  set(LG_SSE_IT_ENV
    LLMGATE_SSE_BIN=$<TARGET_FILE:llmgate-sse>
    LLMGATE_CHAT_BIN=$<TARGET_FILE:llmgate-chat>
    LLMGATE_SSE_ARTIFACTS=${CMAKE_BINARY_DIR}/artifacts/sse)
  foreach(t sse_http conn openai browser)
    if(EXISTS ${LG_SSE_IT_DIR}/${t}.test.mjs)
      add_test(NAME integration.sse.${t} COMMAND ${LG_NODE} ${LG_SSE_IT_DIR}/${t}.test.mjs
               WORKING_DIRECTORY ${LG_SSE_IT_DIR})
      set_tests_properties(integration.sse.${t} PROPERTIES LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77
                           ENVIRONMENT "${LG_SSE_IT_ENV}")
    endif()
  endforeach()
endif()
