// Copyright © 2026 mlx-qmm contributors.

#include "csrc/cpu/machine_probes.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "csrc/cpu/thread_pool.h"

namespace mlx_qmm::cpu {

namespace {

template <typename Pass>
double median_seconds(int repeats, Pass&& pass) {
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    pass();
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

} // namespace

MemoryBandwidth measure_memory_bandwidth(int64_t bytes, int repeats) {
  const int64_t words = std::max<int64_t>(bytes / 8, 1);
  std::vector<uint64_t> source(words);
  std::vector<uint64_t> destination(words);
  // One slice per thread, as the kernels split their work.
  const int64_t slices = concurrency();
  const int64_t slice = (words + slices - 1) / slices;
  auto each_slice = [&](auto&& body) {
    parallel_for(slices, [&](int64_t s) {
      const int64_t begin = std::min(words, s * slice);
      body(begin, std::min(words, begin + slice) - begin);
    });
  };
  // Touch every page first (in parallel, as the passes will).
  each_slice([&](int64_t begin, int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      source[begin + i] = static_cast<uint64_t>(begin + i);
    }
    std::memset(destination.data() + begin, 0, count * 8);
  });

  std::atomic<uint64_t> sink{0};
  const double read_s = median_seconds(repeats, [&] {
    each_slice([&](int64_t begin, int64_t count) {
      // Four independent sums keep several loads in flight.
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      const uint64_t* p = source.data() + begin;
      int64_t i = 0;
      for (; i + 4 <= count; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
      }
      for (; i < count; ++i) {
        s0 += p[i];
      }
      sink += s0 + s1 + s2 + s3;
    });
  });
  const double copy_s = median_seconds(repeats, [&] {
    each_slice([&](int64_t begin, int64_t count) {
      std::memcpy(destination.data() + begin, source.data() + begin, count * 8);
    });
  });
  const double moved = static_cast<double>(words) * 8;
  return {moved / read_s, 2 * moved / copy_s};
}

double measure_fma_peak(const Kernels& kernels, double seconds, int repeats) {
  // Calibrate the iterations of one pass on one thread.
  int64_t iterations = 1 << 16;
  while (true) {
    const auto start = std::chrono::steady_clock::now();
    kernels.fma_peak(iterations);
    const double t =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (t >= seconds / 4 || iterations >= (int64_t{1} << 40)) {
      iterations =
          static_cast<int64_t>(iterations * seconds / std::max(t, 1e-9));
      break;
    }
    iterations *= 4;
  }
  const int64_t threads = concurrency();
  std::atomic<double> flops{0};
  const double t = median_seconds(repeats, [&] {
    parallel_for(threads, [&](int64_t) {
      const double done = kernels.fma_peak(iterations);
      double expected = flops.load();
      while (!flops.compare_exchange_weak(expected, expected + done)) {
      }
    });
  });
  return flops.load() / repeats / t;
}

} // namespace mlx_qmm::cpu
