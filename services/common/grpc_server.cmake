# services/common/grpc_server.cmake (owner: grpc-server): the gRPC server runtime.
# lg_loop (libevent glue), lg_grpc_server (nghttp2 server), lg_grpc_health and
# lg_grpc_reflection (standard services). Included by services/common/CMakeLists.txt.

# lg_loop is shared by every binary and has no gRPC dependency.
add_library(lg_loop STATIC ${CMAKE_CURRENT_LIST_DIR}/lg_loop.c)
lg_target_warnings(lg_loop)
target_include_directories(lg_loop PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lg_loop PUBLIC lg_common PkgConfig::LIBEVENT)
lg_unit_test(test_loop ${PROJECT_SOURCE_DIR}/tests/unit/test_loop.c lg_loop)

# ---- descriptor sets for reflection ---------------------------------------------------------
# lg_grpc_descriptor_set(<target> <symbol> <proto files relative to protos/...>) builds a static
# library <target> holding `const uint8_t <symbol>[]` and `const size_t <symbol>_len`: the
# FileDescriptorSet that `protoc --descriptor_set_out --include_imports` writes for the given
# files plus grpc.health.v1 and grpc.reflection (always served), declared in <symbol>.h.
# Generated into the build tree, never committed.
find_program(LG_PROTOC protoc)
if(NOT LG_PROTOC)
  message(FATAL_ERROR "protoc not found (Debian protobuf-compiler): run scripts/install-deps")
endif()
set(LG_EMBED_SCRIPT ${CMAKE_BINARY_DIR}/lg_embed_bytes.cmake CACHE INTERNAL "")
file(WRITE ${LG_EMBED_SCRIPT} [=[
# cmake -DIN=file -DOUT=file.c -DHDR=file.h -DSYM=name -P lg_embed_bytes.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* Generated from ${IN}; do not edit. */\n#include \"${SYM}.h\"\nconst uint8_t ${SYM}[] = {\n${body}\n};\nconst size_t ${SYM}_len = ${len};\n")
file(WRITE ${HDR} "/* Generated; do not edit. */\n#ifndef ${SYM}_H\n#define ${SYM}_H\n#include <stddef.h>\n#include <stdint.h>\nextern const uint8_t ${SYM}[];\nextern const size_t ${SYM}_len;\n#endif\n")
]=])
set(LG_GRPC_STD_PROTOS grpc/health/v1/health.proto grpc/reflection/v1/reflection.proto
    grpc/reflection/v1alpha/reflection.proto CACHE INTERNAL "")
function(lg_grpc_descriptor_set tgt sym)
  set(dir ${CMAKE_BINARY_DIR}/gen-fds)
  set(deps)
  foreach(p ${ARGN} ${LG_GRPC_STD_PROTOS})
    list(APPEND deps ${PROJECT_SOURCE_DIR}/protos/${p})
  endforeach()
  add_custom_command(OUTPUT ${dir}/${sym}.c ${dir}/${sym}.h
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND ${LG_PROTOC} -I${PROJECT_SOURCE_DIR}/protos --include_imports
            --descriptor_set_out=${dir}/${sym}.pb ${ARGN} ${LG_GRPC_STD_PROTOS}
    COMMAND ${CMAKE_COMMAND} -DIN=${dir}/${sym}.pb -DOUT=${dir}/${sym}.c -DHDR=${dir}/${sym}.h
            -DSYM=${sym} -P ${LG_EMBED_SCRIPT}
    DEPENDS ${deps} ${LG_EMBED_SCRIPT}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/protos
    COMMENT "descriptor set ${sym}")
  add_library(${tgt} STATIC ${dir}/${sym}.c)
  target_include_directories(${tgt} PUBLIC ${dir})
endfunction()

# ---- generated protobuf-c code ---------------------------------------------------------------
lg_protoc_c(lg_grpc_std_proto ${PROJECT_SOURCE_DIR}/protos ${LG_GRPC_STD_PROTOS})
find_file(LG_DESCRIPTOR_PROTO google/protobuf/descriptor.proto PATHS /usr/include /usr/local/include)
if(NOT LG_DESCRIPTOR_PROTO)
  message(FATAL_ERROR "google/protobuf/descriptor.proto not found (Debian libprotobuf-dev): "
                      "run scripts/install-deps")
endif()
get_filename_component(LG_DESCRIPTOR_PROTO_ROOT ${LG_DESCRIPTOR_PROTO} DIRECTORY)
get_filename_component(LG_DESCRIPTOR_PROTO_ROOT ${LG_DESCRIPTOR_PROTO_ROOT} DIRECTORY)
get_filename_component(LG_DESCRIPTOR_PROTO_ROOT ${LG_DESCRIPTOR_PROTO_ROOT} DIRECTORY)
lg_protoc_c(lg_descriptor_proto ${LG_DESCRIPTOR_PROTO_ROOT} google/protobuf/descriptor.proto)
# The grpc.testing TestService messages (tests and benchmarks only). Shared: another part may
# have defined the target first.
if(NOT TARGET lg_grpc_testing_proto)
  lg_protoc_c(lg_grpc_testing_proto ${PROJECT_SOURCE_DIR}/protos
              grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto)
endif()

if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/lg_grpc_frame.c AND TARGET lg_grpc_frame)
  add_library(lg_grpc_server STATIC
    ${CMAKE_CURRENT_LIST_DIR}/lg_grpc_server.c
    ${CMAKE_CURRENT_LIST_DIR}/lg_grpc_health.c
    ${CMAKE_CURRENT_LIST_DIR}/lg_grpc_reflection.c)
  lg_target_warnings(lg_grpc_server)
  target_include_directories(lg_grpc_server PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(lg_grpc_server PUBLIC lg_loop lg_grpc_frame lg_common lg_metrics
                        lg_grpc_std_proto lg_descriptor_proto
                        PkgConfig::NGHTTP2 PkgConfig::LIBEVENT PkgConfig::PROTOBUFC)
  lg_unit_test(test_grpc_server ${PROJECT_SOURCE_DIR}/tests/unit/test_grpc_server.c
               lg_grpc_server)
endif()
