// Copyright © 2026 mlx-qmm contributors.
//
// The Metal simulator's launch interface: the C ABI of a launch (shared with
// the extension, csrc/metal/simulator_abi.h) and what each simulated thread
// can ask of the executor. Shared by the executor (runtime/executor.cpp, compiled
// plainly) and the kernel translation units (compiled with the MSL shim and
// memory-access instrumentation).

#pragma once

#include <cstddef>
#include <cstdint>

#include "csrc/metal/simulator_abi.h"

namespace metal_sim {

// A kernel entry point as registered by METAL_SIM_KERNEL: calls the kernel
// with every argument defaulted (see attributes.h).
using KernelEntry = void (*)();

void register_kernel(const char* host_name, KernelEntry entry);

// The executor's answers to a running simulated thread.
void* buffer_pointer(int index);
uint64_t function_constant_bits(int index);
bool function_constant_defined(int index);

enum class Builtin {
  ThreadPositionInGrid,
  ThreadPositionInThreadgroup,
  ThreadgroupPositionInGrid,
  ThreadsPerThreadgroup,
  ThreadgroupsPerGrid,
  ThreadsPerGrid,
  ThreadIndexInThreadgroup,
  SimdgroupIndexInThreadgroup,
  ThreadIndexInSimdgroup,
  ThreadsPerSimdgroup,
  SimdgroupsPerThreadgroup,
  QuadgroupIndexInThreadgroup,
  ThreadIndexInQuadgroup,
  QuadgroupsPerThreadgroup,
};

struct Uint3 {
  uint32_t x, y, z;
};
Uint3 builtin_value(Builtin which);

// Storage for a threadgroup-scope variable of `bytes` bytes: the n-th call
// of each thread of a threadgroup returns the same memory.
void* threadgroup_allocate(size_t bytes, size_t alignment);

// Barriers and SIMD-group exchange. `site` identifies the call site, so
// that threads reaching different barriers are reported.
void threadgroup_barrier(const void* site);
void simdgroup_barrier(const void* site);

// A SIMD-group collective: every active lane of the calling thread's SIMD
// group contributes `bytes` bytes; when all have, each gets a pointer to the
// contributions of all 32 lanes (lane l at l * bytes; absent lanes zeroed)
// and the mask of lanes present. Valid until the lane's next collective.
struct Exchange {
  const unsigned char* values;
  uint32_t lanes_present;
  uint32_t lane;
  uint32_t width; // lanes in this SIMD group (32, fewer at a partial end)
};
Exchange simd_exchange(const void* value, size_t bytes, const void* site);

} // namespace metal_sim
