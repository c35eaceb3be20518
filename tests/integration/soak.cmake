# tests/integration/soak.cmake (owner: faults): bounded soak through llmgate-sse ->
# llmgate-chat, RSS and fds sampled, first and last windows compared with a generous bound.
# CI size 200 streams x 30 s; LG_SOAK_STREAMS / LG_SOAK_SECONDS for the issue's 1k x minutes
# (raise the ctest TIMEOUT with --timeout for long runs).
if(TARGET llmgate-chat AND TARGET llmgate-sse)
  add_test(NAME integration.soak
    COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/integration/soak/test_soak.py
            --chat $<TARGET_FILE:llmgate-chat>
            --sse $<TARGET_FILE:llmgate-sse>
            --workdir ${CMAKE_BINARY_DIR}/it-soak)
  set_tests_properties(integration.soak PROPERTIES LABELS integration TIMEOUT 300)
endif()
