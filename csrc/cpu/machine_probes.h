// Copyright © 2026 mlx-qmm contributors.
//
// The CPU's memory bandwidth and FMA rate, measured with the same threads
// the kernels use, so that the benchmark can put our times beside the
// memory and compute floors of the same machine in the same run (MLX's own
// CPU copy runs on one thread and measures far less than the memory
// delivers).

#pragma once

#include <cstdint>

#include "csrc/cpu/kernels.h"

namespace mlx_qmm::cpu {

struct MemoryBandwidth {
  double read; // bytes read per second (a sum over the buffer)
  double copy; // bytes read plus bytes written per second (memcpy)
};

// Medians over `repeats` passes over buffers of `bytes` each (choose it well
// above the last-level cache).
MemoryBandwidth measure_memory_bandwidth(int64_t bytes, int repeats);

// Floating-point operations per second of independent register FMAs (the
// kernels' fma_peak) on every thread at once: the median of `repeats`
// passes of about `seconds` each.
double measure_fma_peak(const Kernels& kernels, double seconds, int repeats);

} // namespace mlx_qmm::cpu
