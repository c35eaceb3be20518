# demo.once: scripts/demo --once end to end (ClickHouse, migrations, llmgate-chat, llmgate-sse,
# one streamed chat, its billing row in ClickHouse), on this build's binaries.
add_test(NAME integration.demo_once
  COMMAND ${CMAKE_COMMAND} -E env
    LLMGATE_BUILD_DIR=${CMAKE_BINARY_DIR} LLMGATE_DEMO_SKIP_INSTALL=1
    LLMGATE_DEMO_DIR=${CMAKE_BINARY_DIR}/demo-once
    ${PROJECT_SOURCE_DIR}/scripts/demo --once)
set_tests_properties(integration.demo_once PROPERTIES LABELS integration TIMEOUT 300
  RUN_SERIAL FALSE)

# The same through an OpenAI-compatible upstream (the fake), as `LLMGATE_OPENAI_BASE_URL=...
# LLMGATE_OPENAI_API_KEY=... scripts/demo` would run against a real one.
add_test(NAME integration.demo_once_openai
  COMMAND ${PROJECT_SOURCE_DIR}/tests/integration/demo_openai.sh ${CMAKE_BINARY_DIR}
          ${CMAKE_BINARY_DIR}/demo-once-openai)
set_tests_properties(integration.demo_once_openai PROPERTIES LABELS integration TIMEOUT 300)
