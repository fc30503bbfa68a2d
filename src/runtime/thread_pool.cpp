#include "runtime/thread_pool.h"

namespace lowbit::runtime {
namespace {

// About 0.2 ms of polling on a 3-4 GHz core (a pause is tens of cycles on current x86 cores).
constexpr int kSpinIterations = 1 << 14;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Polls `ready` up to the spin budget; true when it became true.
template <class Ready>
bool spin_until(Ready ready) {
  for (int i = 0; i < kSpinIterations; ++i) {
    if (ready()) return true;
    cpu_relax();
  }
  return ready();
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {
constexpr uint64_t kClosed = 0xFFFFFFFFull;  // task index of a loop being set up
}  // namespace

void ThreadPool::run_tasks(int index, uint64_t generation) {
  const uint64_t gen = generation & 0xFFFFFFFFull;
  uint64_t s = state_.load();
  for (;;) {
    if ((s >> 32) != gen) return;  // a later loop (or one being set up): not ours
    const uint64_t task = s & 0xFFFFFFFFull;
    const int64_t tasks = tasks_.load();
    if (task == kClosed || static_cast<int64_t>(task) >= tasks) return;
    // Fails, reloading s, when another thread took the task or the loop changed; on success the
    // loop cannot finish before this task counts itself done, so fn_ and tasks_ are this loop's.
    if (!state_.compare_exchange_weak(s, s + 1)) continue;
    if (!failed_.load(std::memory_order_relaxed)) {
      try {
        (*fn_.load())(static_cast<int64_t>(task), index);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
    }
    if (done_.fetch_add(1) + 1 == tasks) {
      // Taking the lock orders this notification after a waiter's predicate check.
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
    s = state_.load();
  }
}

void ThreadPool::worker_main(int index) {
  uint64_t seen = 0;
  for (;;) {
    const auto ready = [&] {
      return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
    };
    if (!spin_until(ready)) {
      // parallel_for publishes a generation under mu_, so the predicate cannot miss it.
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, ready);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    run_tasks(index, seen);
  }
}

void ThreadPool::parallel_for(int64_t tasks, const std::function<void(int64_t, int)>& fn) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  // The previous loop's tasks have all run; workers may still be looking at it (they were
  // descheduled), so close its index first: their compare-exchange then fails, and they cannot
  // read this loop's tasks_ and fn_ as the old one's.
  const uint64_t gen = generation_.load() + 1;
  state_.store(((gen & 0xFFFFFFFFull) << 32) | kClosed);
  fn_.store(&fn);
  tasks_.store(tasks);
  done_.store(0);
  failed_.store(false);
  error_ = nullptr;
  state_.store((gen & 0xFFFFFFFFull) << 32);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.store(gen, std::memory_order_release);
  }
  wake_.notify_all();
  run_tasks(0, gen);
  const auto all_done = [&] { return done_.load() == tasks; };
  if (!spin_until(all_done)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, all_done);
  }
  if (error_) std::rethrow_exception(error_);
}

}  // namespace lowbit::runtime
