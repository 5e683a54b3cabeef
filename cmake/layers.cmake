# One library per layer (docs/architecture.md), so that the layering is checked by the build:
# a layer's sources see only their own folder and the folders of the layers they link.
#
# Each layer gets an include root of its own, build/layers/<layer>/, holding one symbolic link
# <layer> -> src/<layer>. `#include "model/model.h"` therefore resolves only in a target that
# has build/layers/model on its include path, i.e. that links edgellm_model (directly, or
# through a PUBLIC dependency of a layer it links). src/ itself is never an include directory.
# tests/layering (cmake/check_layering.cmake) compiles each layer's forbidden includes and
# expects them to fail.

# edgellm_layer(<layer> [PUBLIC targets...] [PRIVATE targets...])
# Sources: src/<layer>/*.cpp (globbed, so new files are picked up). A layer without sources
# (util) is an INTERFACE target. Dependencies named by layer (`io`) become edgellm_<layer>.
function(edgellm_layer layer)
  cmake_parse_arguments(L "" "" "PUBLIC;PRIVATE" ${ARGN})
  set(root ${CMAKE_BINARY_DIR}/layers/${layer})
  file(MAKE_DIRECTORY ${root})
  file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${layer} ${root}/${layer} SYMBOLIC)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${layer}/*.cpp)
  set(t edgellm_${layer})
  set(deps_PUBLIC)
  set(deps_PRIVATE)
  foreach(kind PUBLIC PRIVATE)
    foreach(d ${L_${kind}})
      if(d MATCHES "::" OR NOT d IN_LIST EDGELLM_LAYERS)
        list(APPEND deps_${kind} ${d})
      else()
        list(APPEND deps_${kind} edgellm_${d})
        set_property(GLOBAL APPEND PROPERTY EDGELLM_LAYER_DEPS_${layer} ${d})
      endif()
    endforeach()
  endforeach()
  if(srcs)
    add_library(${t} STATIC ${srcs})
    # The shared libedgellm.so is linked from these archives.
    set_target_properties(${t} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    target_include_directories(${t} PUBLIC $<BUILD_INTERFACE:${root}>)
    target_link_libraries(${t} PUBLIC ${deps_PUBLIC} PRIVATE ${deps_PRIVATE})
  else()
    add_library(${t} INTERFACE)
    target_include_directories(${t} INTERFACE $<BUILD_INTERFACE:${root}>)
    target_link_libraries(${t} INTERFACE ${deps_PUBLIC} ${deps_PRIVATE})
  endif()
  set_property(GLOBAL APPEND PROPERTY EDGELLM_BUILT_LAYERS ${layer})
endfunction()

# Every layer name, bottom first (used to tell layer names from other link items).
set(EDGELLM_LAYERS util io ops model tokenizer chat sampling runtime train hybrid server capi)

# layering_<layer> tests: see cmake/check_layering.cmake. Call after every layer is defined.
function(edgellm_layering_tests)
  set(headers util=util/error.h io=io/gguf.h ops=ops/ops.h model=model/model.h
      tokenizer=tokenizer/tokenizer.h chat=chat/chat.h sampling=sampling/sampler.h
      runtime=runtime/engine.h train=train/trainer.h hybrid=hybrid/router.h server=server/server.h capi=capi/capi_impl.h)
  add_test(NAME layering_relative_includes COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR}/src
    -P ${CMAKE_SOURCE_DIR}/cmake/check_relative_includes.cmake)
  get_property(built GLOBAL PROPERTY EDGELLM_BUILT_LAYERS)
  foreach(layer ${built})
    # Everything below `layer`: the closure of its dependencies.
    get_property(direct GLOBAL PROPERTY EDGELLM_LAYER_DEPS_${layer})
    set(below ${direct})
    set(queue ${direct})
    while(queue)
      list(POP_FRONT queue d)
      get_property(dd GLOBAL PROPERTY EDGELLM_LAYER_DEPS_${d})
      foreach(x ${dd})
        if(NOT x IN_LIST below)
          list(APPEND below ${x})
          list(APPEND queue ${x})
        endif()
      endforeach()
    endwhile()
    set(forbidden)
    foreach(other ${built})
      if(NOT other STREQUAL layer AND NOT other IN_LIST below)
        list(APPEND forbidden ${other})
      endif()
    endforeach()
    # A layer with sources takes its include flags from compile_commands.json (the
    # TARGET_PROPERTY genex is not transitive); util has only its own root.
    add_test(NAME layering_${layer}
      COMMAND ${CMAKE_COMMAND} -DCXX=${CMAKE_CXX_COMPILER}
        -DCOMPILE_COMMANDS=${CMAKE_BINARY_DIR}/compile_commands.json -DSRC=${CMAKE_SOURCE_DIR}/src
        "-DINCLUDES=${CMAKE_BINARY_DIR}/layers/${layer}"
        -DLAYER=${layer} -DALLOWED=${layer} "-DFORBIDDEN=${forbidden}"
        "-DHEADERS=${headers}" -DOUT=${CMAKE_BINARY_DIR}/layering
        -P ${CMAKE_SOURCE_DIR}/cmake/check_layering.cmake)
  endforeach()
endfunction()
