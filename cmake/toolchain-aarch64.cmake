# Cross-compiles edgellm for 64-bit Arm Linux on a Debian amd64 host with multiarch:
#   dpkg --add-architecture arm64
#   apt-get install g++-aarch64-linux-gnu qemu-user-static libhwy-dev:arm64 libgtest-dev:arm64
# (scripts/test-arm does it all). The arm64 libraries and their CMake packages live in
# /usr/lib/aarch64-linux-gnu of the host itself, so there is no separate sysroot: setting the
# library architecture makes find_package() pick the arm64 hwy and GTest over the amd64 ones,
# and header-only packages (nlohmann-json) come from /usr/share as for a native build.
# Tests run under qemu-aarch64 (CMAKE_CROSSCOMPILING_EMULATOR), so ctest and
# gtest_discover_tests work unchanged; QEMU_CPU picks the emulated CPU (and so which Highway
# targets are available at run time).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(EDGELLM_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${EDGELLM_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${EDGELLM_CROSS_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${EDGELLM_CROSS_TRIPLE})

# Search only the arm64 multiarch directories for libraries (never /usr/lib/x86_64-linux-gnu);
# programs (pkg-config, python) are the host's.
set(CMAKE_FIND_ROOT_PATH /usr/${EDGELLM_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/cmake)

# libc6:arm64 puts the dynamic loader at /lib/ld-linux-aarch64.so.1, so qemu runs the test
# binaries without -L.
find_program(EDGELLM_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(EDGELLM_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${EDGELLM_QEMU_AARCH64})
endif()
