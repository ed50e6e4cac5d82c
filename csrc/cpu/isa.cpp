// Copyright © 2026 mlx-qmm contributors.

#include "csrc/cpu/isa.h"

#include <cstdlib>
#include <stdexcept>

namespace mlx_qmm::cpu {

namespace {

// The AVX2 and AVX-512 tables are compiled on every x86-64 build; whether
// they may run is a property of the CPU, asked once. (The compiler's check
// of AVX-512 includes the operating system's support for its registers.)
bool cpu_runs_avx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool supported = __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return supported;
#else
  return false;
#endif
}

// The AVX-512 file is also built with FMA and F16C (the compiler may use
// their VEX forms), which every AVX-512 CPU has; asked all the same.
bool cpu_runs_avx512() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool supported = cpu_runs_avx2() &&
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  return supported;
#else
  return false;
#endif
}

bool cpu_runs_avx512_vnni() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool supported =
      cpu_runs_avx512() && __builtin_cpu_supports("avx512vnni");
  return supported;
#else
  return false;
#endif
}

// Every arm64 CPU has NEON (Advanced SIMD is mandatory in ARMv8-A).
std::vector<const Kernels*> runnable_tables() {
  std::vector<const Kernels*> tables;
  if (const Kernels* vnni = avx512_vnni_kernels();
      vnni && cpu_runs_avx512_vnni()) {
    tables.push_back(vnni);
  }
  if (const Kernels* avx512 = avx512_kernels(); avx512 && cpu_runs_avx512()) {
    tables.push_back(avx512);
  }
  if (const Kernels* avx2 = avx2_kernels(); avx2 && cpu_runs_avx2()) {
    tables.push_back(avx2);
  }
  if (const Kernels* neon = neon_kernels()) {
    tables.push_back(neon);
  }
  tables.push_back(&scalar_kernels());
  return tables;
}

} // namespace

std::vector<std::string> available_isas() {
  std::vector<std::string> names;
  for (const Kernels* table : runnable_tables()) {
    names.emplace_back(table->name);
  }
  return names;
}

const Kernels& active_kernels() {
  static const std::vector<const Kernels*> tables = runnable_tables();
  const char* requested = std::getenv("MLX_QMM_CPU_ISA");
  if (!requested || !*requested || std::string(requested) == "auto") {
    return *tables.front();
  }
  for (const Kernels* table : tables) {
    if (table->name == std::string(requested)) {
      return *table;
    }
  }
  std::string message = "[mlx_qmm] MLX_QMM_CPU_ISA=";
  message += requested;
  message +=
      " is not a CPU kernel level this build and CPU can run; "
      "expected auto or one of:";
  for (const Kernels* table : tables) {
    message += ' ';
    message += table->name;
  }
  throw std::invalid_argument(message);
}

} // namespace mlx_qmm::cpu
