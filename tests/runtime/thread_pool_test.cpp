// The runtime's thread pool: every task runs exactly once, on a valid thread index, loop after
// loop (back to back, while workers spin, and after they have gone to sleep); an exception
// reaches the caller and the pool stays usable.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/thread_pool.h"

using lowbit::runtime::ThreadPool;

namespace {

void expect_each_task_once(ThreadPool& pool, int64_t tasks) {
  std::vector<std::atomic<int>> runs(static_cast<size_t>(tasks));
  std::atomic<bool> bad_index{false};
  pool.parallel_for(tasks, [&](int64_t t, int thread) {
    if (thread < 0 || thread >= pool.threads()) bad_index = true;
    runs[static_cast<size_t>(t)].fetch_add(1);
  });
  EXPECT_FALSE(bad_index);
  for (int64_t t = 0; t < tasks; ++t) ASSERT_EQ(runs[static_cast<size_t>(t)].load(), 1) << "task " << t << " of " << tasks;
}

}  // namespace

TEST(ThreadPool, EveryTaskRunsOnceLoopAfterLoop) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (int loop = 0; loop < 2000; ++loop) expect_each_task_once(pool, 1 + loop % 17);
  }
}

TEST(ThreadPool, WorkersThatWentToSleepWakeUp) {
  ThreadPool pool(3);
  for (int loop = 0; loop < 4; ++loop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // well past the spin budget
    expect_each_task_once(pool, 64);
  }
}

TEST(ThreadPool, AnExceptionReachesTheCallerAndThePoolStaysUsable) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(100,
                                 [](int64_t t, int) {
                                   if (t == 37) throw std::runtime_error("task 37 failed");
                                 }),
               std::runtime_error);
  expect_each_task_once(pool, 100);
}
