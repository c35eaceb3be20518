# tests/integration/grpc_client.cmake (owner: grpc-client): lg_grpc_client against a real
# python grpcio TestService server, one ctest per case, each starting its own server.
if(NOT TARGET lg_grpc_client)
  return()
endif()

# The grpc.testing messages for the C driver (shared target: another part may define it).
if(NOT TARGET lg_grpc_testing_proto)
  lg_protoc_c(lg_grpc_testing_proto ${PROJECT_SOURCE_DIR}/protos
              grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto)
endif()

add_executable(lg-grpc-client-interop ${CMAKE_CURRENT_LIST_DIR}/grpc_client/client_interop.c)
lg_target_warnings(lg-grpc-client-interop)
target_link_libraries(lg-grpc-client-interop PRIVATE lg_grpc_client lg_grpc_testing_proto)
set_target_properties(lg-grpc-client-interop PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

# grpcio stubs for the python peer, generated into the build tree (never committed).
set(lg_gc_pygen ${CMAKE_BINARY_DIR}/gen-py-grpc-client)
set(lg_gc_protos grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto)
set(lg_gc_proto_deps)
foreach(p ${lg_gc_protos})
  list(APPEND lg_gc_proto_deps ${PROJECT_SOURCE_DIR}/protos/${p})
endforeach()
add_custom_command(OUTPUT ${lg_gc_pygen}/stamp
  COMMAND ${CMAKE_COMMAND} -E make_directory ${lg_gc_pygen}
  COMMAND /usr/bin/python3 -m grpc_tools.protoc -I${PROJECT_SOURCE_DIR}/protos
          --python_out=${lg_gc_pygen} --grpc_python_out=${lg_gc_pygen} ${lg_gc_protos}
  COMMAND ${CMAKE_COMMAND} -E touch ${lg_gc_pygen}/stamp
  DEPENDS ${lg_gc_proto_deps}
  COMMENT "grpcio stubs for the gRPC client tests")
add_custom_target(lg_grpc_client_pystubs ALL DEPENDS ${lg_gc_pygen}/stamp)
add_dependencies(lg-grpc-client-interop lg_grpc_client_pystubs)

set(lg_gc_cases empty_unary large_unary server_streaming special_status_message
    status_after_messages
    unimplemented_method unimplemented_service custom_metadata deadline_exceeded
    cancel_after_first_response concurrent_streams queue_beyond_max_streams gzip
    receive_limit reconnect)
foreach(c ${lg_gc_cases})
  set(extra)
  if(c STREQUAL "queue_beyond_max_streams")
    set(extra --max-concurrent-streams 4) # PEER_MAX_STREAMS in client_interop.c
  endif()
  add_test(NAME integration.grpc_client.${c}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/grpc_client/run_case.py
                   --driver $<TARGET_FILE:lg-grpc-client-interop> --case ${c} ${extra})
  set_tests_properties(integration.grpc_client.${c} PROPERTIES
    LABELS integration TIMEOUT 180
    ENVIRONMENT "LG_PYGEN=${lg_gc_pygen};PYTHONDONTWRITEBYTECODE=1")
endforeach()
