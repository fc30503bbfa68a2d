// A small fixed-size thread pool running one parallel loop at a time.
#pragma once
#include <condition_variable>
#include <cstdint>
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
  void run_tasks(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  int64_t tasks_ = 0, next_ = 0;
  int active_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace lowbit::runtime
