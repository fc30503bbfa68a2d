// A small fixed-size thread pool running one parallel loop at a time.
//
// Waiting spins for a bounded time before it sleeps: a batch-1 inference runs loops of a few
// microseconds back to back, and a condition-variable wake-up (a futex system call and a
// reschedule, 5-20 us) would cost more than the loop itself. Workers that find no new loop within
// the spin budget (~0.2 ms) sleep on a condition variable, so an idle pool uses no CPU.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lowbit::runtime {

class ThreadPool {
 public:
  // threads <= 1: everything runs on the calling thread.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // Calls fn(task, thread_index) for task in [0, tasks), spread over the pool and the caller.
  // thread_index is in [0, threads()). The first exception thrown is rethrown here.
  void parallel_for(int64_t tasks, const std::function<void(int64_t, int)>& fn);

 private:
  void worker_main(int index);
  // Runs tasks of loop `generation` until none is left to claim.
  void run_tasks(int index, uint64_t generation);

  std::vector<std::thread> workers_;
  // The loop in progress. A loop is finished when all its tasks have run (done_ == tasks_), not
  // when every worker has seen it: the caller takes tasks too, so a worker that another process
  // keeps off its core (a shared machine) never holds a loop up; it finds the tasks taken when it
  // runs. state_ packs (generation << 32) | next task index, so a task is claimed with one
  // compare-exchange that fails for a worker still on an earlier loop; between loops the caller
  // closes the index (kClosed) before it writes tasks_ and fn_ for the next one.
  std::atomic<const std::function<void(int64_t, int)>*> fn_{nullptr};
  std::atomic<int64_t> tasks_{0};
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> done_{0};          // tasks of the current loop that have run
  std::atomic<bool> failed_{false};       // a task threw: the others are skipped
  std::atomic<uint64_t> generation_{0};   // incremented once per loop (wakes the workers)
  std::atomic<bool> stop_{false};
  std::mutex mu_;                          // guards error_ and the sleeping handshakes
  std::condition_variable wake_, done_cv_;
  std::exception_ptr error_;
};

}  // namespace lowbit::runtime
