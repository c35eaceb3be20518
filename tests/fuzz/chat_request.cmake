# tests/fuzz/chat_request.cmake (owner: fuzz): protobuf decoding of every llmgate.chat.v1
# request type into a call arena, then the chat service's request validation.
if(NOT TARGET lg_chat_pb OR NOT TARGET lg_analytics)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/lg_fuzz_target.cmake)
lg_fuzz_target(chat_request LIBS lg_chat_pb lg_analytics
               INCLUDES ${CMAKE_BINARY_DIR}/gen
               INSTRUMENT ${PROJECT_SOURCE_DIR}/services/chat/lg_chat_request.c
                          ${PROJECT_SOURCE_DIR}/services/chat/lg_chat_pb.c
                          ${PROJECT_SOURCE_DIR}/analytics/lg_usage.c)
