# CTest capi_install: `cmake --install` into a fresh prefix, then build examples/chat.c from a
# separate project with find_package(edgellm) (shared and static) and with pkg-config, run the
# results, and check that libedgellm.so exports only the C API.
# Inputs: BUILD_DIR, SOURCE_DIR, WORK (scratch directory), C_COMPILER, MODEL (may not exist).
cmake_minimum_required(VERSION 3.22)
file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
file(GLOB_RECURSE installed RELATIVE ${prefix} ${prefix}/*)
message(STATUS "installed: ${installed}")
foreach(f include/edgellm/edgellm.h edgellmConfig.cmake edgellmConfigVersion.cmake edgellm.pc libedgellm.a libedgellm.so)
  if(NOT installed MATCHES "${f}")
    message(FATAL_ERROR "${f} was not installed")
  endif()
endforeach()
file(GLOB_RECURSE so ${prefix}/*/libedgellm.so)

# Only edgellm_* functions are exported.
run(nm -D --defined-only ${so})
string(REGEX MATCHALL "[0-9a-f]+ [TDBRW] [^\n]+" syms "${out}")
set(n_api 0)
foreach(s ${syms})
  string(REGEX REPLACE "^[0-9a-f]+ [A-Z] " "" name "${s}")
  if(name MATCHES "^edgellm_")
    math(EXPR n_api "${n_api} + 1")
  elseif(NOT name MATCHES "^(_init|_fini|_edata|_end|__bss_start)$")
    message(FATAL_ERROR "libedgellm.so exports ${name}, which is not part of the C API")
  endif()
endforeach()
message(STATUS "libedgellm.so exports ${n_api} edgellm_* symbols and nothing else")

# find_package from a separate project.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/c_api/consumer -B ${WORK}/consumer -G Ninja
    -DCMAKE_PREFIX_PATH=${prefix} -DEDGELLM_EXAMPLES=${SOURCE_DIR}/examples -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK}/consumer)

# pkg-config, with a plain compiler call.
set(ENV{PKG_CONFIG_PATH} "")
get_filename_component(pcdir ${so} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pcdir}/pkgconfig)
run(pkg-config --cflags --libs edgellm)
separate_arguments(pc UNIX_COMMAND "${out}")
run(${C_COMPILER} -o ${WORK}/chat_pc ${SOURCE_DIR}/examples/chat.c ${pc} -Wl,-rpath,${pcdir})

execute_process(COMMAND ${WORK}/consumer/cockpit RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "usage: edgellm-cockpit")
  message(FATAL_ERROR "cockpit without arguments: rc ${rc}, ${err}")
endif()

foreach(exe ${WORK}/consumer/chat_shared ${WORK}/consumer/chat_static ${WORK}/chat_pc)
  # Without a model: the usage line, exit 2. With one: a greedy answer.
  execute_process(COMMAND ${exe} RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "usage: edgellm-chat")
    message(FATAL_ERROR "${exe} without arguments: rc ${rc}, ${err}")
  endif()
  if(EXISTS "${MODEL}")
    execute_process(COMMAND ${exe} ${MODEL} --temp 0 -n 8 -t 1 INPUT_FILE ${SOURCE_DIR}/tests/c_api/question.txt
                    RESULT_VARIABLE rc OUTPUT_VARIABLE answer ERROR_VARIABLE err)
    if(NOT rc EQUAL 0 OR answer STREQUAL "")
      message(FATAL_ERROR "${exe} ${MODEL}: rc ${rc}\n${answer}\n${err}")
    endif()
    list(APPEND answers "${answer}")
    message(STATUS "${exe}: ${answer}")
  endif()
endforeach()
if(answers)
  list(REMOVE_DUPLICATES answers)
  list(LENGTH answers n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "the three builds answered differently: ${answers}")
  endif()
endif()
