// Copyright © 2026 mlx-qmm contributors.

#include "csrc/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace mlx_qmm::cpu {

namespace {

// MLX_QMM_NUM_THREADS overrides the core count (tests force 1 and several
// threads to cover both schedules).
int configured_threads() {
  if (const char* env = std::getenv("MLX_QMM_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) {
      return n;
    }
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

class ThreadPool {
 public:
  explicit ThreadPool(int threads) {
    for (int i = 1; i < threads; ++i) {
      workers_.emplace_back([this] { work(); });
    }
  }

  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) {
      t.join();
    }
  }

  int size() const {
    return static_cast<int>(workers_.size()) + 1;
  }

  void run(int64_t num_tasks, const std::function<void(int64_t)>& task) {
    // One job at a time: streams of different devices may call concurrently.
    std::lock_guard job_lock(job_mutex_);
    {
      std::lock_guard lock(mutex_);
      task_ = &task;
      num_tasks_ = num_tasks;
      next_.store(0);
      active_ = static_cast<int>(workers_.size());
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return active_ == 0; });
    task_ = nullptr;
    if (error_) {
      std::rethrow_exception(error_);
    }
  }

 private:
  void drain() {
    for (int64_t i = next_.fetch_add(1); i < num_tasks_;
         i = next_.fetch_add(1)) {
      try {
        (*task_)(i);
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!error_) {
          error_ = std::current_exception();
        }
      }
    }
  }

  void work() {
    uint64_t seen = 0;
    while (true) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) {
          return;
        }
        seen = generation_;
      }
      drain();
      {
        std::lock_guard lock(mutex_);
        --active_;
      }
      done_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex job_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t num_tasks_ = 0;
  std::atomic<int64_t> next_{0};
  int active_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

ThreadPool& pool() {
  // Leaked on purpose: joining threads during static destruction at
  // interpreter exit can deadlock.
  static ThreadPool* instance = new ThreadPool(configured_threads());
  return *instance;
}

} // namespace

void parallel_for(int64_t num_tasks, const std::function<void(int64_t)>& task) {
  if (num_tasks <= 0) {
    return;
  }
  if (num_tasks == 1 || pool().size() == 1) {
    for (int64_t i = 0; i < num_tasks; ++i) {
      task(i);
    }
    return;
  }
  pool().run(num_tasks, task);
}

int concurrency() {
  return pool().size();
}

} // namespace mlx_qmm::cpu
