#include "cli/heap_reuse.h"

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace lowbit::cli {

bool keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  for (const char* user_setting : {"GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"}) {
    if (std::getenv(user_setting) != nullptr) return false;
  }
  // 32 MiB is the largest mmap threshold glibc accepts on 64-bit; blocks below it come from the
  // heap and are reused. Up to 1 GiB of free heap top stays mapped between steps.
  const bool mmap_set = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  const bool trim_set = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return mmap_set && trim_set;
#else
  return false;
#endif
}

}  // namespace lowbit::cli
