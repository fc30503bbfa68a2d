# Cross build for 64-bit Arm Linux with Debian's cross toolchain (package g++-aarch64-linux-gnu;
# `make test-aarch64` installs it). Tests run under qemu user-mode emulation (package
# qemu-user-static) with the cross libraries' sysroot, through CMAKE_CROSSCOMPILING_EMULATOR, which
# ctest and gtest_discover_tests both use.
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         -DLOWBIT_WITH_TORCH=OFF -DLOWBIT_BENCH=OFF -DLOWBIT_GTEST_SOURCE=/usr/src/googletest
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(LOWBIT_AARCH64_SYSROOT /usr/aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Libraries and headers come from the cross sysroot only (never the host's x86-64 GoogleTest);
# programs (cmake's helpers, ccache) from the host.
set(CMAKE_FIND_ROOT_PATH ${LOWBIT_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# qemu's default CPU in user mode ("max") has every Armv8 extension qemu emulates, dot product
# included, so the neon and neondot levels both run.
find_program(LOWBIT_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(LOWBIT_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${LOWBIT_QEMU_AARCH64} -L ${LOWBIT_AARCH64_SYSROOT})
endif()
