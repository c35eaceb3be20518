# tests/integration/security.cmake (owner: faults): security tests of issue 7 against the real
# binaries: raw HTTP/2 abuse (python3-h2), SSE/CRLF injection from model output through the
# fault upstream, planted secrets grepped in every output, body-logging privacy settings.
if(TARGET llmgate-chat AND TARGET llmgate-sse)
  add_test(NAME integration.security
    COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/integration/security/test_security.py
            --chat $<TARGET_FILE:llmgate-chat>
            --sse $<TARGET_FILE:llmgate-sse>
            --protos ${PROJECT_SOURCE_DIR}/protos
            --workdir ${CMAKE_BINARY_DIR}/it-security)
  set_tests_properties(integration.security PROPERTIES LABELS integration TIMEOUT 300)
endif()
