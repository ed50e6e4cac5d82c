// Copyright © 2026 mlx-qmm contributors.

#include "csrc/metal/simulator_bridge.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "csrc/cpu/encode_task.h"
#include "csrc/metal/simulator_abi.h"
#include "mlx/allocator.h"

namespace mlx_qmm::metal {

namespace {

struct Simulator {
  std::mutex mutex;
  void* handle = nullptr;
  MslSimLaunchFn launch = nullptr;
  std::map<std::string, uint64_t> launches;
  LaunchBytes last;
  std::optional<LaunchPlan> last_plan;
};

Simulator& simulator() {
  static Simulator* instance = new Simulator();
  return *instance;
}

// METAL_SIM_SAMPLE_THREADGROUPS: for bench/metal_bytes_model.py only, runs
// that many threadgroups of each launch (see MslSimLaunch).
uint64_t sample_threadgroups() {
  const char* sample = std::getenv("METAL_SIM_SAMPLE_THREADGROUPS");
  return sample == nullptr ? 0 : std::strtoull(sample, nullptr, 10);
}

} // namespace

void load_simulator(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    throw std::invalid_argument(
        std::string("[load_metal_simulator] cannot load ") + path + ": " +
        dlerror());
  }
  auto launch =
      reinterpret_cast<MslSimLaunchFn>(dlsym(handle, "msl_sim_launch"));
  if (launch == nullptr) {
    dlclose(handle);
    throw std::invalid_argument(
        "[load_metal_simulator] " + path + " is not a Metal simulator library");
  }
  auto& sim = simulator();
  std::lock_guard lock(sim.mutex);
  // The previous library stays loaded: kernels may still be running on it.
  sim.handle = handle;
  sim.launch = launch;
}

bool simulator_requested() {
  const char* backend = std::getenv("MLX_QMM_BACKEND");
  return backend != nullptr && std::string(backend) == "metal-sim";
}

bool simulator_active() {
  if (!simulator_requested()) {
    return false;
  }
  auto& sim = simulator();
  std::lock_guard lock(sim.mutex);
  return sim.launch != nullptr;
}

void run_on_simulator(
    const LaunchPlan& plan,
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  // The strided copies run first, into row-contiguous temporaries that
  // replace their inputs, as in the Metal encoder.
  if (!plan.input_copies.empty()) {
    std::vector<mx::array> bound = inputs;
    for (const auto& copy : plan.input_copies) {
      const auto& a = inputs[copy.copy_of_input];
      mx::array temporary(a.shape(), a.dtype(), nullptr, {});
      temporary.set_data(mx::allocator::malloc(temporary.nbytes()));
      run_on_simulator(copy, inputs, temporary);
      bound[copy.copy_of_input] = temporary;
    }
    LaunchPlan main = plan;
    main.input_copies.clear();
    run_on_simulator(main, bound, out);
    auto& sim = simulator();
    std::lock_guard lock(sim.mutex);
    sim.last_plan = plan;
    return;
  }
  std::vector<MslSimBuffer> buffers;
  for (const auto& b : plan.buffers) {
    MslSimBuffer buffer{b.index, 0, nullptr, 0, 0};
    switch (b.source) {
      case BufferBinding::Source::Input: {
        const auto& a = inputs[b.input];
        // The kernel must not write its inputs: the simulator maps them
        // read-only, so the const_cast never leads to a write.
        buffer.data =
            const_cast<void*>(static_cast<const void*>(a.data<char>()));
        buffer.size = a.data_size() * a.itemsize();
        break;
      }
      case BufferBinding::Source::Output:
        buffer.writable = 1;
        buffer.data = out.data<char>();
        buffer.size = out.nbytes();
        break;
      case BufferBinding::Source::Bytes:
        buffer.data = const_cast<uint8_t*>(b.bytes.data());
        buffer.size = b.bytes.size();
        buffer.by_value = 1;
        break;
    }
    buffers.push_back(buffer);
  }
  std::vector<MslSimConstant> constants;
  for (const auto& c : plan.constants) {
    constants.push_back({c.index, c.bits});
  }
  MslSimLaunch launch{
      plan.kernel.c_str(),
      {plan.grid[0], plan.grid[1], plan.grid[2]},
      {plan.threadgroup[0], plan.threadgroup[1], plan.threadgroup[2]},
      static_cast<int32_t>(buffers.size()),
      buffers.data(),
      static_cast<int32_t>(constants.size()),
      constants.data(),
      0,
      sample_threadgroups()};

  auto& sim = simulator();
  MslSimLaunchFn run;
  {
    std::lock_guard lock(sim.mutex);
    run = sim.launch;
    ++sim.launches[plan.kernel];
  }
  MslSimReport report{};
  if (run(&launch, &report) != 0) {
    throw std::runtime_error(std::string("[metal-sim] ") + report.error);
  }
  std::lock_guard lock(sim.mutex);
  sim.last = {
      plan.kernel,
      report.device_bytes_read,
      report.device_bytes_written,
      report.threadgroups_run,
      report.threadgroups_total};
  sim.last_plan = plan;
}

bool encode_on_simulator(
    mx::Stream stream,
    const std::vector<mx::array>& inputs,
    mx::array& out,
    std::optional<LaunchPlan> plan) {
  if (!plan) {
    return false;
  }
  cpu::encode_task(
      stream,
      inputs,
      out,
      [plan = std::move(*plan)](
          const std::vector<mx::array>& in, mx::array& o) {
        run_on_simulator(plan, in, o);
      });
  return true;
}

LaunchBytes simulator_last_launch() {
  auto& sim = simulator();
  std::lock_guard lock(sim.mutex);
  return sim.last;
}

std::optional<LaunchPlan> simulator_last_plan() {
  auto& sim = simulator();
  std::lock_guard lock(sim.mutex);
  return sim.last_plan;
}

std::map<std::string, uint64_t> simulator_launches() {
  auto& sim = simulator();
  std::lock_guard lock(sim.mutex);
  return sim.launches;
}

} // namespace mlx_qmm::metal
