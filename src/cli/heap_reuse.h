// Keeps freed heap memory in the process for the next allocation instead of handing it back to
// the kernel. LibTorch frees and re-allocates the same multi-megabyte activations and gradients
// every training step; with glibc's defaults large blocks are mmap'ed and unmapped (or the heap
// top trimmed) each time, so every step faults in and zero-fills fresh pages: 8.5% of a gpt-tiny
// training step's CPU time was the kernel's clear_page (docs/BENCHMARKS.md, "Heap reuse").
#pragma once

namespace lowbit::cli {

// Raises glibc's mmap and trim thresholds (no-op on other C libraries, and when the user tunes
// malloc through GLIBC_TUNABLES or MALLOC_*_ variables). Returns whether it changed anything.
bool keep_freed_memory_for_reuse();

}  // namespace lowbit::cli
