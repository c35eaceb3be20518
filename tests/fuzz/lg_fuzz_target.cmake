# tests/fuzz/lg_fuzz_target.cmake (owner: fuzz): lg_fuzz_target(), the build recipe of the
# fuzz targets owned by "fuzz" (chat_request, chat_service, spool, chclient, record_row,
# sse_http, sse_auth).
#
# lg_fuzz_target(NAME LIBS libs... [SOURCES sources...] [INSTRUMENT sources...]
#                [INCLUDES dirs...])
#   fuzz_NAME_smoke  every build: the deterministic driver (tests/fuzz/lg_fuzz_smoke.h),
#                    registered as ctest fuzz.NAME_smoke; it replays tests/fuzz/corpus/NAME
#                    and tests/fuzz/regressions/NAME, then fixed-seed mutations.
#   SOURCES          module sources compiled into both binaries (when the library holding them
#                    cannot be linked as it is).
#   fuzz_NAME        with clang: the libFuzzer binary. INSTRUMENT lists the module sources
#                    compiled into it (so libFuzzer sees their coverage even when the
#                    libraries are built without -fsanitize=fuzzer-no-link; tests/fuzz/run-long
#                    instruments every library anyway).
# Included by tests/CMakeLists.txt (it globs */*.cmake) and by each target's .cmake file.
include_guard(GLOBAL)

function(lg_fuzz_target name)
  cmake_parse_arguments(F "" "" "LIBS;SOURCES;INSTRUMENT;INCLUDES" ${ARGN})
  set(dir ${CMAKE_CURRENT_FUNCTION_LIST_DIR})
  add_executable(fuzz_${name}_smoke ${dir}/fuzz_${name}.c ${F_SOURCES})
  lg_target_warnings(fuzz_${name}_smoke)
  target_include_directories(fuzz_${name}_smoke PRIVATE ${dir})
  target_include_directories(fuzz_${name}_smoke SYSTEM PRIVATE ${F_INCLUDES})
  target_link_libraries(fuzz_${name}_smoke PRIVATE ${F_LIBS})
  set_target_properties(fuzz_${name}_smoke PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME fuzz.${name}_smoke
           COMMAND fuzz_${name}_smoke ${dir}/corpus/${name} ${dir}/regressions/${name})
  set_tests_properties(fuzz.${name}_smoke PROPERTIES LABELS fuzz TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    add_executable(fuzz_${name} ${dir}/fuzz_${name}.c ${F_SOURCES} ${F_INSTRUMENT})
    lg_target_warnings(fuzz_${name})
    target_compile_definitions(fuzz_${name} PRIVATE LG_FUZZ_LIBFUZZER=1)
    target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    target_include_directories(fuzz_${name} PRIVATE ${dir})
    target_include_directories(fuzz_${name} SYSTEM PRIVATE ${F_INCLUDES})
    target_link_libraries(fuzz_${name} PRIVATE ${F_LIBS})
    set_target_properties(fuzz_${name} PROPERTIES
      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  endif()
endfunction()
