// Copyright © 2026 mlx-qmm contributors.
//
// The CPU's memory bandwidth and FMA rate, measured with the same threads
// the kernels use, so that the benchmark can put our times beside the
// memory and compute floors of the same machine in the same run (MLX's own
// CPU copy runs on one thread and measures far less than the memory
// delivers).

#pragma once

#include <cstdint>
#include <vector>

#include "csrc/cpu/kernels.h"

namespace mlx_qmm::cpu {

struct MemoryBandwidth {
  double read; // bytes read per second (a sum over the buffer)
  double copy; // bytes read plus bytes written per second (memcpy)
};

// Two buffers of `bytes` each (choose it well above the last-level cache),
// allocated and touched once, so that the benchmark can measure again next
// to each memory-bound case: on a shared machine the bandwidth moves by a
// third from one minute to the next, and a case timed in a slow minute
// against a probe taken in a fast one reads as a slow kernel.
class BandwidthProbe {
 public:
  explicit BandwidthProbe(int64_t bytes);

  // Medians over `repeats` passes of each kind.
  MemoryBandwidth measure(int repeats);

 private:
  std::vector<uint64_t> source_;
  std::vector<uint64_t> destination_;
};

// Floating-point operations per second of independent register FMAs (the
// kernels' fma_peak) on every thread at once: the median of `repeats`
// passes of about `seconds` each.
double measure_fma_peak(const Kernels& kernels, double seconds, int repeats);

} // namespace mlx_qmm::cpu
