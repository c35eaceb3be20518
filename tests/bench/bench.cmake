# tests/bench/bench.cmake (owner: bench): the grpc C++ reference peer and the gRPC benchmark.
#
# Builds grpc-peer-server (grpc C++ async server for grpc.testing.TestService) when
# LLMGATE_BENCH is ON and grpc++ / protobuf / protoc / grpc_cpp_plugin are present; skips
# cleanly otherwise. C++ is enabled here only, so the rest of the build stays pure C.
# Registers ctest `bench.smoke` (label bench): the harness end to end in a very short mode,
# never a timing assertion. The real run is `tests/bench/grpc_bench.py` (see README.md).
if(LLMGATE_BENCH)
  pkg_check_modules(LG_BENCH_GRPCPP IMPORTED_TARGET grpc++ protobuf)
  find_program(LG_BENCH_PROTOC protoc)
  find_program(LG_BENCH_GRPC_CPP_PLUGIN grpc_cpp_plugin)
  if(LG_BENCH_GRPCPP_FOUND AND LG_BENCH_PROTOC AND LG_BENCH_GRPC_CPP_PLUGIN)
    enable_language(CXX)
    set(CMAKE_CXX_STANDARD 17)
    set(CMAKE_CXX_STANDARD_REQUIRED ON)
    set(CMAKE_CXX_EXTENSIONS OFF)

    # C++ code for the TestService protos, generated into the build tree (never committed).
    set(lg_bench_proto_root ${CMAKE_SOURCE_DIR}/protos)
    set(lg_bench_gen ${CMAKE_BINARY_DIR}/gen-cpp)
    set(lg_bench_gen_srcs)
    foreach(p grpc/testing/empty grpc/testing/messages grpc/testing/test)
      list(APPEND lg_bench_gen_srcs ${lg_bench_gen}/${p}.pb.cc ${lg_bench_gen}/${p}.grpc.pb.cc)
    endforeach()
    set(lg_bench_protos
      ${lg_bench_proto_root}/grpc/testing/empty.proto
      ${lg_bench_proto_root}/grpc/testing/messages.proto
      ${lg_bench_proto_root}/grpc/testing/test.proto)
    add_custom_command(OUTPUT ${lg_bench_gen_srcs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${lg_bench_gen}
      COMMAND ${LG_BENCH_PROTOC} -I${lg_bench_proto_root}
              --cpp_out=${lg_bench_gen} --grpc_out=${lg_bench_gen}
              --plugin=protoc-gen-grpc=${LG_BENCH_GRPC_CPP_PLUGIN}
              grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto
      DEPENDS ${lg_bench_protos}
      COMMENT "protoc (C++ + grpc) grpc/testing/*.proto for grpc-peer-server")
    # Generated code builds without the first-party warning set (STYLE.md).
    add_library(lg_bench_testproto_cpp STATIC ${lg_bench_gen_srcs})
    target_include_directories(lg_bench_testproto_cpp SYSTEM PUBLIC ${lg_bench_gen})
    target_link_libraries(lg_bench_testproto_cpp PUBLIC PkgConfig::LG_BENCH_GRPCPP)

    add_executable(grpc-peer-server ${CMAKE_CURRENT_LIST_DIR}/grpc_peer_server.cc)
    target_link_libraries(grpc-peer-server PRIVATE lg_bench_testproto_cpp Threads::Threads)
    # The C warning set has C-only flags; this is its C++ subset.
    set(lg_bench_cxx_warnings -Wall -Wextra -Wpedantic -Wshadow -Wconversion
        -Wsign-conversion -Wcast-qual -Wpointer-arith -Wformat=2 -Wimplicit-fallthrough)
    if(LLMGATE_WERROR)
      list(APPEND lg_bench_cxx_warnings -Werror)
    endif()
    target_compile_options(grpc-peer-server PRIVATE ${lg_bench_cxx_warnings})

    # The peer is a reference measurement, not code under test: it is always optimized and
    # never sanitized (libgrpc itself is not instrumented, and its process-lifetime caches
    # would only add LeakSanitizer noise to the ASan suite).
    foreach(tgt grpc-peer-server lg_bench_testproto_cpp)
      get_target_property(lg_bench_opts ${tgt} COMPILE_OPTIONS)
      if(lg_bench_opts)
        list(FILTER lg_bench_opts EXCLUDE REGEX "sanitize")
        set_target_properties(${tgt} PROPERTIES COMPILE_OPTIONS "${lg_bench_opts}")
      endif()
      get_target_property(lg_bench_lopts ${tgt} LINK_OPTIONS)
      if(lg_bench_lopts)
        list(FILTER lg_bench_lopts EXCLUDE REGEX "sanitize")
        set_target_properties(${tgt} PROPERTIES LINK_OPTIONS "${lg_bench_lopts}")
      endif()
      target_compile_options(${tgt} PRIVATE -O2)
    endforeach()

    # bench.smoke: the harness end to end with tiny request counts; it checks that every
    # server answers the right bytes and grpc-status, never how fast. Our server
    # (lg-grpc-testserver) is measured too when it is built in the same bin directory.
    add_test(NAME bench.smoke
      COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/grpc_bench.py --smoke
              --bin-dir ${CMAKE_RUNTIME_OUTPUT_DIRECTORY})
    set_tests_properties(bench.smoke PROPERTIES LABELS bench TIMEOUT 180)
  else()
    message(STATUS "bench: grpc++/protobuf/protoc/grpc_cpp_plugin not found; "
                   "grpc-peer-server and bench.smoke are skipped")
  endif()
endif()
