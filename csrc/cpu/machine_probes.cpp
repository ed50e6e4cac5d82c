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

// Runs body(begin, count) on one slice of `words` per thread, as the kernels
// split their work.
template <typename Body>
void each_slice(int64_t words, Body&& body) {
  const int64_t slices = concurrency();
  const int64_t slice = (words + slices - 1) / slices;
  parallel_for(slices, [&](int64_t s) {
    const int64_t begin = std::min(words, s * slice);
    body(begin, std::min(words, begin + slice) - begin);
  });
}

} // namespace

BandwidthProbe::BandwidthProbe(int64_t bytes)
    : source_(std::max<int64_t>(bytes / 8, 1)), destination_(source_.size()) {
  // Touch every page first (in parallel, as the passes will).
  each_slice(source_.size(), [&](int64_t begin, int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      source_[begin + i] = static_cast<uint64_t>(begin + i);
    }
    std::memset(destination_.data() + begin, 0, count * 8);
  });
}

MemoryBandwidth BandwidthProbe::measure(int repeats) {
  const int64_t words = source_.size();
  std::atomic<uint64_t> sink{0};
  const double read_s = median_seconds(repeats, [&] {
    each_slice(words, [&](int64_t begin, int64_t count) {
      // The slice as kStreams runs read in lockstep: one sequential run per
      // core reaches about half of what the memory delivers (the hardware
      // prefetchers keep too few misses in flight for one stream), and the
      // kernels read several rows at once anyway.
      constexpr int kStreams = 8;
      const int64_t run = count / kStreams;
      const uint64_t* p = source_.data() + begin;
      uint64_t sums[kStreams] = {};
      for (int64_t i = 0; i < run; ++i) {
        for (int s = 0; s < kStreams; ++s) {
          sums[s] += p[s * run + i];
        }
      }
      uint64_t total = 0;
      for (int s = 0; s < kStreams; ++s) {
        total += sums[s];
      }
      for (int64_t i = run * kStreams; i < count; ++i) {
        total += p[i];
      }
      sink += total;
    });
  });
  const double copy_s = median_seconds(repeats, [&] {
    each_slice(words, [&](int64_t begin, int64_t count) {
      std::memcpy(
          destination_.data() + begin, source_.data() + begin, count * 8);
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
