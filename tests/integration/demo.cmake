# demo.once: scripts/demo --once end to end (ClickHouse, migrations, llmgate-chat, llmgate-sse,
# one streamed chat, its billing row in ClickHouse), on this build's binaries.
add_test(NAME integration.demo_once
  COMMAND ${CMAKE_COMMAND} -E env
    LLMGATE_BUILD_DIR=${CMAKE_BINARY_DIR} LLMGATE_DEMO_SKIP_INSTALL=1
    LLMGATE_DEMO_DIR=${CMAKE_BINARY_DIR}/demo-once
    ${PROJECT_SOURCE_DIR}/scripts/demo --once)
set_tests_properties(integration.demo_once PROPERTIES LABELS integration TIMEOUT 300
  RUN_SERIAL FALSE)
