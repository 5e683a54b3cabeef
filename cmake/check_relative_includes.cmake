# Run by the layering_relative_includes test: a quoted include that climbs out of its folder
# ("../model/model.h") would reach another layer without its include root, around the check
# the per-layer roots make. None is allowed under src/.
file(GLOB_RECURSE sources ${SRC}/*.h ${SRC}/*.cpp)
set(found "")
foreach(f ${sources})
  file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"[^\"]*\\.\\./")
  foreach(l ${lines})
    string(APPEND found "${f}: ${l}\n")
  endforeach()
endforeach()
if(found)
  message(FATAL_ERROR "includes with '../' (include the layer by its name instead):\n${found}")
endif()
list(LENGTH sources n)
message(STATUS "${n} files under src/, no '../' include")
