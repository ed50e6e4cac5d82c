// Copyright © 2026 mlx-qmm contributors.

#include "csrc/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
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

// How long a thread polls for the next job (or, the caller, for the last
// worker) before it sleeps on a condition variable. Waking a sleeping thread
// takes tens to hundreds of microseconds (more on a virtual machine): as
// long as a whole matrix-vector product. Back-to-back calls (a model's
// layers) find the workers still polling.
constexpr auto kSpin = std::chrono::microseconds(2000);

template <typename Ready>
bool spin_until(Ready&& ready) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  do {
    for (int i = 0; i < 64; ++i) {
      if (ready()) {
        return true;
      }
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  } while (std::chrono::steady_clock::now() < deadline);
  return ready();
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
      stopping_flag_.store(true);
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
      active_.store(static_cast<int>(workers_.size()));
      error_ = nullptr;
      // Published last (release): a polling worker that sees the new
      // generation sees the job.
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    drain();
    if (!spin_until([this] { return active_.load() == 0; })) {
      std::unique_lock lock(mutex_);
      done_.wait(lock, [this] { return active_.load() == 0; });
    }
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
      auto has_job = [&] {
        return generation_.load(std::memory_order_acquire) != seen;
      };
      if (!spin_until([&] { return has_job() || stopping_flag_.load(); })) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || has_job(); });
      }
      {
        std::lock_guard lock(mutex_);
        if (stopping_) {
          return;
        }
        seen = generation_.load(std::memory_order_acquire);
      }
      drain();
      {
        std::lock_guard lock(mutex_);
        active_.fetch_sub(1);
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
  std::atomic<int> active_{0};
  std::atomic<uint64_t> generation_{0};
  bool stopping_ = false;
  std::atomic<bool> stopping_flag_{false};
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
