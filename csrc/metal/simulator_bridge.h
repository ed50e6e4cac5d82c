// Copyright © 2026 mlx-qmm contributors.
//
// The metal-sim backend: with MLX_QMM_BACKEND=metal-sim, our primitives
// evaluate CPU streams by running their Metal launch plans on the Metal
// simulator (tests/metal_sim), a shared library of the project's .metal
// kernels that the test harness builds and registers with
// load_simulator(). Cases no Metal kernel serves yet stay on the CPU
// kernels.

#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "csrc/metal/launch_plan.h"

namespace mlx_qmm::metal {

// Loads the simulator library at `path` (replacing any loaded before).
void load_simulator(const std::string& path);

// MLX_QMM_BACKEND is "metal-sim".
bool simulator_requested();

// Requested and a simulator library is loaded.
bool simulator_active();

// Runs `plan` on the simulator, binding `inputs` and `out` (already
// allocated). Throws std::runtime_error with the simulator's diagnostic.
void run_on_simulator(
    const LaunchPlan& plan,
    const std::vector<mx::array>& inputs,
    mx::array& out);

// A primitive's eval_cpu under the metal-sim backend: when `plan` exists,
// encodes its launch on the simulator as the primitive's CPU task and
// returns true; otherwise returns false (the CPU kernels serve the case).
bool encode_on_simulator(
    mx::Stream stream,
    const std::vector<mx::array>& inputs,
    mx::array& out,
    std::optional<LaunchPlan> plan);

// Launches run on the simulator so far, by kernel host name.
std::map<std::string, uint64_t> simulator_launches();

// The device bytes the latest simulator launch read and wrote, as counted by
// the simulator (for the bytes model in bench/), in the threadgroups it ran:
// all of them unless METAL_SIM_SAMPLE_THREADGROUPS asks for a sample.
struct LaunchBytes {
  std::string kernel;
  uint64_t read = 0;
  uint64_t written = 0;
  uint64_t threadgroups_run = 0;
  uint64_t threadgroups_total = 0;
};
LaunchBytes simulator_last_launch();

// The plan of the latest simulator launch (with its input copies), if any.
std::optional<LaunchPlan> simulator_last_plan();

} // namespace mlx_qmm::metal
