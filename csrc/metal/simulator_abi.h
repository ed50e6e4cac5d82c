// Copyright © 2026 mlx-qmm contributors.
//
// The C interface of the Metal simulator (tests/metal_sim): what a launch is
// and what it reports. The simulator's executor implements it; the
// extension's metal-sim backend (simulator_bridge.cpp) and the Python
// harness (ctypes) call it. Plain C, so every side agrees on the layout.

#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// One buffer bound at [[buffer(index)]]. The executor runs the kernel on a
// guarded copy; a buffer that is not `writable` is mapped read-only there
// (a write to it is reported) and is not copied back. A `by_value` buffer
// holds arguments set by value (Metal's setBytes, read through the constant
// address space and its cache): its reads are checked but not counted as
// device bytes.
struct MslSimBuffer {
  int32_t index;
  int32_t writable;
  void* data;
  uint64_t size;
  int32_t by_value;
};

// One [[function_constant(index)]] value, as raw bits (bool, int, uint,
// float... in the low bytes).
struct MslSimConstant {
  int32_t index;
  uint64_t bits;
};

struct MslSimLaunch {
  const char* kernel; // host name
  uint32_t grid[3]; // threadgroups per grid
  uint32_t threadgroup[3]; // threads per threadgroup
  int32_t num_buffers;
  const struct MslSimBuffer* buffers;
  int32_t num_constants;
  const struct MslSimConstant* constants;
  int32_t worker_threads; // 0: all cores
  // 0: run every threadgroup. Otherwise run only this many, evenly spaced
  // over the grid, for an estimate of the bytes a large launch moves (the
  // rest of the output stays unwritten).
  uint64_t sample_threadgroups;
};

// What a launch measured and found. `error` is empty when the launch ran
// clean; otherwise it names the kernel, threadgroup and thread.
struct MslSimReport {
  uint64_t device_bytes_read;
  uint64_t device_bytes_written;
  // Threadgroups run, and in the grid: the bytes above are those of the
  // threadgroups run.
  uint64_t threadgroups_run;
  uint64_t threadgroups_total;
  char error[1024];
};

typedef int (*MslSimLaunchFn)(const struct MslSimLaunch*, struct MslSimReport*);

int msl_sim_launch(
    const struct MslSimLaunch* launch,
    struct MslSimReport* report);

// Host names of the kernels in this library, separated by '\n'.
const char* msl_sim_kernel_names(void);

#ifdef __cplusplus
} // extern "C"
#endif
