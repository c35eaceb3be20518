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
