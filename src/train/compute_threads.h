// The CPU threads LibTorch computes with: its intra-op pool and the BLAS library its matrix
// products call. Debian's LibTorch calls sgemm through libblas.so.3, usually OpenBLAS, which
// starts its own pool of one thread per core and ignores at::set_num_threads. With --threads 1
// a "single-threaded" run then still multiplies matrices on every core, and with --threads N the
// two pools spin against each other: on a shared 2-core machine that made gpt-tiny training
// steps 2.5-4x slower (docs/BENCHMARKS.md, "Training threads").
#pragma once

namespace lowbit::train {

// Sets LibTorch's intra-op threads to `threads` and, when the process uses OpenBLAS (found at
// run time, no link dependency) and the user has not set OPENBLAS_NUM_THREADS, OpenBLAS's pool
// to the same count. Returns the BLAS thread count now in force (0: no OpenBLAS control found).
int set_compute_threads(int threads);

}  // namespace lowbit::train
