# tests/integration/chat.cmake (owner: chat): llmgate-chat against real gRPC clients (python
# grpcio at /usr/bin/python3), the real binary and the OpenAI-compatible fake upstream.
if(TARGET llmgate-chat)
  add_test(NAME integration.chat
    COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/integration/chat/test_chat.py
            --chat $<TARGET_FILE:llmgate-chat>
            --fake ${PROJECT_SOURCE_DIR}/tests/fakes/openai_fake.py
            --protos ${PROJECT_SOURCE_DIR}/protos
            --workdir ${CMAKE_BINARY_DIR}/it-chat)
  set_tests_properties(integration.chat PROPERTIES LABELS integration TIMEOUT 300)
endif()

# Records through the ClickHouse shipper and back through UsageService (real ClickHouse on
# free loopback ports, started by tests/integration/clickhouse/start.sh).
if(TARGET llmgate-chat AND TARGET llmgate-analytics)
  add_test(NAME integration.chat.clickhouse
    COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/integration/chat/test_chat_clickhouse.py
            --chat $<TARGET_FILE:llmgate-chat>
            --analytics $<TARGET_FILE:llmgate-analytics>
            --protos ${PROJECT_SOURCE_DIR}/protos
            --ch-scripts ${PROJECT_SOURCE_DIR}/tests/integration/clickhouse
            --workdir ${CMAKE_BINARY_DIR}/it-chat-clickhouse)
  set_tests_properties(integration.chat.clickhouse PROPERTIES LABELS integration TIMEOUT 300)
  # The same against current ClickHouse (chDB 26.7 behind tests/integration/clickhouse/chdb).
  add_test(NAME integration.chat.clickhouse.current
    COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/integration/chat/test_chat_clickhouse.py
            --chat $<TARGET_FILE:llmgate-chat>
            --analytics $<TARGET_FILE:llmgate-analytics>
            --protos ${PROJECT_SOURCE_DIR}/protos
            --ch-scripts ${PROJECT_SOURCE_DIR}/tests/integration/clickhouse
            --workdir ${CMAKE_BINARY_DIR}/it-chat-clickhouse-current)
  set_tests_properties(integration.chat.clickhouse.current PROPERTIES
    LABELS "integration;current" TIMEOUT 300 ENVIRONMENT "LG_CLICKHOUSE_IMPL=chdb")
endif()
