// set_compute_threads sizes both LibTorch's intra-op pool and OpenBLAS's own pool.
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "base/error.h"
#include "train/compute_threads.h"

namespace lowbit::train {
namespace {

TEST(ComputeThreads, SetsTorchAndOpenBlasPools) {
  using GetFn = int (*)();
  auto openblas_threads = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  const bool user_set = std::getenv("OPENBLAS_NUM_THREADS") != nullptr;
  for (int n : {1, 2}) {
    const int blas = set_compute_threads(n);
    EXPECT_EQ(at::get_num_threads(), n);
    if (openblas_threads == nullptr) {
      EXPECT_EQ(blas, 0) << "no OpenBLAS in this process, so no BLAS pool to size";
    } else {
      EXPECT_EQ(blas, openblas_threads());
      // OpenBLAS caps its pool at the cores it was started with, so 2 may read back as 1 on a
      // one-core machine; 1 always reads back as 1.
      if (!user_set && n == 1) EXPECT_EQ(blas, 1);
      if (!user_set) EXPECT_LE(blas, n);
    }
  }
}

TEST(ComputeThreads, RejectsZeroThreads) { EXPECT_THROW(set_compute_threads(0), Error); }

}  // namespace
}  // namespace lowbit::train
