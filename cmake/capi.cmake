# The C API (include/edgellm/edgellm.h, src/capi) as a layer on top of the engine, the shared
# and static libedgellm built from it, and `cmake --install` of the SDK: header, both
# libraries, edgellmConfig.cmake (+ version file, targets edgellm::edgellm and
# edgellm::edgellm_static) and edgellm.pc. Include after the engine layers are defined.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Hybrid routing (edgellm_router_*) needs the hybrid layer and libcurl, absent from engine-only
# builds and left out with -DEDGELLM_CAPI_ROUTING=OFF; there those calls return
# EDGELLM_ERR_UNSUPPORTED. (hybrid is defined after this file: targets are resolved at generation
# time.)
set(EDGELLM_CAPI_HYBRID 0)
set(capi_hybrid)
if(NOT EDGELLM_ENGINE_ONLY AND EDGELLM_CAPI_ROUTING)
  set(EDGELLM_CAPI_HYBRID 1)
  set(capi_hybrid hybrid)
endif()
edgellm_layer(capi PRIVATE runtime sampling tokenizer chat model io util nlohmann_json::nlohmann_json ${capi_hybrid})
target_compile_definitions(edgellm_capi PRIVATE EDGELLM_CAPI_HYBRID=${EDGELLM_CAPI_HYBRID})
target_include_directories(edgellm_capi PUBLIC $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>)
target_compile_definitions(edgellm_capi PRIVATE EDGELLM_VERSION_STRING="${PROJECT_VERSION}")
# Only the edgellm_* functions are exported from the shared library.
set_target_properties(edgellm_capi PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)

# The engine layers whose objects make up the libraries (bottom first).
set(EDGELLM_ENGINE_LAYERS io ops model tokenizer chat sampling runtime)

add_library(edgellm_shared SHARED $<TARGET_OBJECTS:edgellm_capi>)
target_link_libraries(edgellm_shared PRIVATE edgellm_runtime $<$<BOOL:${EDGELLM_CAPI_HYBRID}>:edgellm_hybrid>)
# The engine's archives are linked in, their symbols kept private; the library must be complete
# (except under sanitizers: with clang their runtime lives in the executable, not in the library).
target_link_options(edgellm_shared PRIVATE -Wl,--exclude-libs,ALL)
if(NOT EDGELLM_SANITIZE AND NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize")
  target_link_options(edgellm_shared PRIVATE -Wl,--no-undefined)
endif()
target_include_directories(edgellm_shared PUBLIC $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
                                                 $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
set_target_properties(edgellm_shared PROPERTIES OUTPUT_NAME edgellm EXPORT_NAME edgellm
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib ARCHIVE_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)

set(objs $<TARGET_OBJECTS:edgellm_capi>)
foreach(l ${EDGELLM_ENGINE_LAYERS} ${capi_hybrid})
  list(APPEND objs $<TARGET_OBJECTS:edgellm_${l}>)
endforeach()
add_library(edgellm_static STATIC ${objs})
target_link_libraries(edgellm_static INTERFACE Threads::Threads hwy::hwy)
set(EDGELLM_PC_CURL "")
if(EDGELLM_CAPI_HYBRID)
  target_link_libraries(edgellm_static INTERFACE CURL::libcurl)
  set(EDGELLM_PC_CURL " -lcurl")
endif()
target_include_directories(edgellm_static INTERFACE $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
                                                    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
set_target_properties(edgellm_static PROPERTIES OUTPUT_NAME edgellm EXPORT_NAME edgellm_static
  ARCHIVE_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib LINKER_LANGUAGE CXX)

install(FILES ${CMAKE_SOURCE_DIR}/include/edgellm/edgellm.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/edgellm)
install(TARGETS edgellm_shared edgellm_static EXPORT edgellmTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
set(EDGELLM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/edgellm)
install(EXPORT edgellmTargets NAMESPACE edgellm:: DESTINATION ${EDGELLM_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/edgellmConfig.cmake.in
  ${CMAKE_BINARY_DIR}/edgellmConfig.cmake INSTALL_DESTINATION ${EDGELLM_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/edgellmConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
file(RELATIVE_PATH EDGELLM_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(${CMAKE_SOURCE_DIR}/cmake/edgellm.pc.in ${CMAKE_BINARY_DIR}/edgellm.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/edgellmConfig.cmake ${CMAKE_BINARY_DIR}/edgellmConfigVersion.cmake
  DESTINATION ${EDGELLM_CMAKE_DIR})
install(FILES ${CMAKE_BINARY_DIR}/edgellm.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The examples, built in this tree against the shared library (tests/python/test_capi.py runs
# them); tests/c_api/install_test.cmake builds them again against the installed package.
if(NOT CMAKE_CROSSCOMPILING)
  enable_language(C)
  add_executable(edgellm_chat_example ${CMAKE_SOURCE_DIR}/examples/chat.c)
  target_link_libraries(edgellm_chat_example PRIVATE edgellm_shared)
  set_target_properties(edgellm_chat_example PROPERTIES OUTPUT_NAME edgellm-chat
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples)
  add_executable(edgellm_cockpit_example ${CMAKE_SOURCE_DIR}/examples/cockpit.c)
  target_link_libraries(edgellm_cockpit_example PRIVATE edgellm_shared)
  set_target_properties(edgellm_cockpit_example PROPERTIES OUTPUT_NAME edgellm-cockpit
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples)
  if(EDGELLM_SANITIZE)  # as capi_test (tests/CMakeLists.txt): UBSan's C++ runtime
    set_target_properties(edgellm_chat_example edgellm_cockpit_example PROPERTIES LINKER_LANGUAGE CXX)
  endif()
endif()
