# tests/integration/grpc_server.cmake (owner: grpc-server): lg-grpc-testserver and the
# integration tests that drive it with real gRPC clients (python grpcio) and raw sockets.
if(NOT TARGET lg_grpc_server)
  return()
endif()

lg_grpc_descriptor_set(lg_testserver_fds lg_testserver_fds
  grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto)

add_executable(lg-grpc-testserver ${CMAKE_CURRENT_LIST_DIR}/grpc_server/lg_testserver.c)
lg_target_warnings(lg-grpc-testserver)
target_link_libraries(lg-grpc-testserver PRIVATE lg_grpc_server lg_grpc_testing_proto
                      lg_testserver_fds)

# grpcio stubs for the python tests, generated into the build tree (never committed).
set(lg_ts_pygen ${CMAKE_BINARY_DIR}/gen-py-grpc-server)
set(lg_ts_protos grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto
    grpc/health/v1/health.proto grpc/reflection/v1/reflection.proto
    grpc/reflection/v1alpha/reflection.proto)
set(lg_ts_proto_deps)
foreach(p ${lg_ts_protos})
  list(APPEND lg_ts_proto_deps ${PROJECT_SOURCE_DIR}/protos/${p})
endforeach()
add_custom_command(OUTPUT ${lg_ts_pygen}/stamp
  COMMAND ${CMAKE_COMMAND} -E make_directory ${lg_ts_pygen}
  COMMAND /usr/bin/python3 -m grpc_tools.protoc -I${PROJECT_SOURCE_DIR}/protos
          --python_out=${lg_ts_pygen} --grpc_python_out=${lg_ts_pygen} ${lg_ts_protos}
  COMMAND ${CMAKE_COMMAND} -E touch ${lg_ts_pygen}/stamp
  DEPENDS ${lg_ts_proto_deps}
  COMMENT "grpcio stubs for the gRPC server tests")
add_custom_target(lg_grpc_server_pystubs ALL DEPENDS ${lg_ts_pygen}/stamp)

foreach(t interop bad_input health_reflection slow_reader shutdown)
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/grpc_server/test_${t}.py)
    add_test(NAME integration.grpc_server.${t}
             COMMAND /usr/bin/python3 -m unittest -v test_${t}
             WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/grpc_server)
    set_tests_properties(integration.grpc_server.${t} PROPERTIES
      LABELS integration TIMEOUT 300
      ENVIRONMENT "LG_TESTSERVER=$<TARGET_FILE:lg-grpc-testserver>;LG_PYGEN=${lg_ts_pygen};PYTHONDONTWRITEBYTECODE=1")
  endif()
endforeach()

# Unit tests of health and reflection (reflection indexes the test server's descriptor set,
# which is defined in this file).
lg_unit_test(test_grpc_health ${PROJECT_SOURCE_DIR}/tests/unit/test_grpc_health.c lg_grpc_server)
lg_unit_test(test_grpc_reflection ${PROJECT_SOURCE_DIR}/tests/unit/test_grpc_reflection.c
             lg_grpc_server lg_testserver_fds)

# The grpc C++ client (grpc core's chttp2 transport) against lg-grpc-testserver. Uses the C++
# TestService stubs of tests/bench/bench.cmake, so it is built when that peer is built.
if(TARGET lg_bench_testproto_cpp)
  add_executable(grpc-cpp-interop-client ${CMAKE_CURRENT_LIST_DIR}/grpc_server/grpc_cpp_client.cc)
  target_link_libraries(grpc-cpp-interop-client PRIVATE lg_bench_testproto_cpp Threads::Threads)
  target_compile_options(grpc-cpp-interop-client PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                         $<$<BOOL:${LLMGATE_WERROR}>:-Werror>)
  # libgrpc is not instrumented: the client is built without sanitizers (the server under
  # test keeps them).
  get_target_property(lg_ts_cxx_opts grpc-cpp-interop-client COMPILE_OPTIONS)
  list(FILTER lg_ts_cxx_opts EXCLUDE REGEX "sanitize")
  set_target_properties(grpc-cpp-interop-client PROPERTIES COMPILE_OPTIONS "${lg_ts_cxx_opts}")
  get_target_property(lg_ts_cxx_lopts grpc-cpp-interop-client LINK_OPTIONS)
  if(lg_ts_cxx_lopts)
    list(FILTER lg_ts_cxx_lopts EXCLUDE REGEX "sanitize")
    set_target_properties(grpc-cpp-interop-client PROPERTIES LINK_OPTIONS "${lg_ts_cxx_lopts}")
  endif()
  add_test(NAME integration.grpc_server.cpp_client
           COMMAND /usr/bin/python3 -m unittest -v test_cpp_client
           WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/grpc_server)
  set_tests_properties(integration.grpc_server.cpp_client PROPERTIES
    LABELS integration TIMEOUT 300
    ENVIRONMENT "LG_TESTSERVER=$<TARGET_FILE:lg-grpc-testserver>;LG_PYGEN=${lg_ts_pygen};LG_CPP_CLIENT=$<TARGET_FILE:grpc-cpp-interop-client>;PYTHONDONTWRITEBYTECODE=1")
endif()

# The grpc-go client (Debian golang-google-grpc-dev, GOPATH mode, no network) against
# lg-grpc-testserver. Skipped when Go is not installed (scripts/install-deps installs it).
find_program(LG_GO go)
if(LG_GO AND EXISTS /usr/share/gocode/src/google.golang.org/grpc)
  set(lg_go_client ${CMAKE_BINARY_DIR}/bin/grpc-go-interop-client)
  add_custom_command(OUTPUT ${lg_go_client}
    COMMAND ${CMAKE_COMMAND} -E env GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS=
            GOCACHE=${CMAKE_BINARY_DIR}/go-cache
            ${LG_GO} build -o ${lg_go_client}
            ${CMAKE_CURRENT_LIST_DIR}/grpc_server/grpc_go_client.go
    DEPENDS ${CMAKE_CURRENT_LIST_DIR}/grpc_server/grpc_go_client.go
    COMMENT "go build grpc-go-interop-client")
  add_custom_target(grpc_go_interop_client ALL DEPENDS ${lg_go_client})
  add_test(NAME integration.grpc_server.go_client
           COMMAND /usr/bin/python3 -m unittest -v test_go_client
           WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/grpc_server)
  set_tests_properties(integration.grpc_server.go_client PROPERTIES
    LABELS integration TIMEOUT 300
    ENVIRONMENT "LG_TESTSERVER=$<TARGET_FILE:lg-grpc-testserver>;LG_PYGEN=${lg_ts_pygen};LG_GO_CLIENT=${lg_go_client};PYTHONDONTWRITEBYTECODE=1")
else()
  message(STATUS "grpc_server: go or golang-google-grpc-dev missing; go_client test skipped")
endif()
