# tests/integration/replicas.cmake (owner: ops2): issue 6 operations with the real binaries:
# resume routed across two chat processes and two adapters, metrics that move, SIGTERM drain,
# second SIGTERM, SIGHUP price reload; shipper metrics against a real ClickHouse.
if(TARGET llmgate-chat AND TARGET llmgate-sse)
  set(LG_REPLICAS_CH_ARGS)
  if(TARGET llmgate-analytics)
    set(LG_REPLICAS_CH_ARGS --analytics $<TARGET_FILE:llmgate-analytics>
        --ch-scripts ${PROJECT_SOURCE_DIR}/tests/integration/clickhouse)
  endif()
  add_test(NAME integration.replicas
    COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/integration/replicas/test_replicas.py
            --chat $<TARGET_FILE:llmgate-chat> --sse $<TARGET_FILE:llmgate-sse>
            --fake ${PROJECT_SOURCE_DIR}/tests/fakes/openai_fake.py
            ${LG_REPLICAS_CH_ARGS}
            --workdir ${CMAKE_BINARY_DIR}/it-replicas)
  set_tests_properties(integration.replicas PROPERTIES LABELS integration TIMEOUT 300)
endif()
