#include "train/compute_threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <cstdlib>

#include "base/error.h"

namespace lowbit::train {

int set_compute_threads(int threads) {
  LOWBIT_CHECK(threads >= 1, "thread count must be at least 1, got " + std::to_string(threads));
  at::set_num_threads(threads);
  // Looked up, not linked: the BLAS behind libblas.so.3 is chosen by Debian's alternatives
  // (OpenBLAS, BLIS, the reference BLAS); only OpenBLAS has a pool to size.
  using SetFn = void (*)(int);
  using GetFn = int (*)();
  auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  auto get = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (set == nullptr || get == nullptr) return 0;
  if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr) set(threads);  // an explicit user choice wins
  return get();
}

}  // namespace lowbit::train
