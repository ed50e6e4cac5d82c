// Copyright © 2026 mlx-qmm contributors.
//
// The Metal simulator's launch interface: what a launch is (the C structs the
// Python harness fills through ctypes) and what each simulated thread can ask
// of the executor. Shared by the executor (runtime/executor.cpp, compiled
// plainly) and the kernel translation units (compiled with the MSL shim and
// memory-access instrumentation).

#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

// One buffer bound at [[buffer(index)]]: either device memory (the harness
// allocates it with guard zones) or set_bytes data (a small copy).
struct MslSimBuffer {
  int32_t index;
  void* data;
  uint64_t size;
};

// One [[function_constant(index)]] value, as raw bits (bool, int, uint,
// float... widened to 64 bits).
struct MslSimConstant {
  int32_t index;
  uint64_t bits;
};

struct MslSimLaunch {
  const char* kernel; // host name
  uint32_t grid[3]; // threadgroups per grid
  uint32_t threadgroup[3]; // threads per threadgroup
  int32_t num_buffers;
  const MslSimBuffer* buffers;
  int32_t num_constants;
  const MslSimConstant* constants;
  int32_t worker_threads; // 0: all cores
};

// What a launch measured and found. `error` is empty when the launch ran
// clean; otherwise it names the kernel, threadgroup and thread.
struct MslSimReport {
  uint64_t device_bytes_read;
  uint64_t device_bytes_written;
  char error[1024];
};

int msl_sim_launch(const MslSimLaunch* launch, MslSimReport* report);

// Host names of the kernels in this library, separated by '\n'.
const char* msl_sim_kernel_names();

} // extern "C"

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
