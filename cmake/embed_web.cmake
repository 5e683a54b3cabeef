# Embeds the web chat page (web/*) into edgellm_server as a generated header, so the binary
# serves the page without the source tree. Include after edgellm_server is defined.
if(TARGET edgellm_server AND EDGELLM_SERVER_SOURCES)
  file(GLOB EDGELLM_WEB_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/web/*)
  set(EDGELLM_WEB_HEADER ${CMAKE_BINARY_DIR}/generated/edgellm_web_assets.h)
  add_custom_command(
    OUTPUT ${EDGELLM_WEB_HEADER}
    COMMAND ${CMAKE_COMMAND} -DWEB_DIR=${CMAKE_SOURCE_DIR}/web -DOUT=${EDGELLM_WEB_HEADER}
            -P ${CMAKE_SOURCE_DIR}/cmake/embed_web_gen.cmake
    DEPENDS ${EDGELLM_WEB_FILES} ${CMAKE_SOURCE_DIR}/cmake/embed_web_gen.cmake
    COMMENT "Embedding web/ into the server")
  add_custom_target(edgellm_web_assets DEPENDS ${EDGELLM_WEB_HEADER})
  add_dependencies(edgellm_server edgellm_web_assets)
  target_include_directories(edgellm_server PRIVATE ${CMAKE_BINARY_DIR}/generated)
  target_compile_definitions(edgellm_server PRIVATE EDGELLM_WEB_EMBEDDED=1)
endif()
