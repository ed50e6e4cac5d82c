// Copyright © 2026 mlx-qmm contributors.
//
// The Metal simulator's executor: runs a launch as Metal defines it.
//
// - The grid's threadgroups are spread over worker OS threads (all cores).
// - A threadgroup runs on one worker: each of its threads is a fiber (a
//   ucontext with its own stack), run one at a time until it blocks. A
//   thread blocks at a threadgroup barrier (until every thread of the
//   threadgroup has reached it) and at a SIMD-group collective (until every
//   lane of its 32-lane SIMD group has), so barriers and SIMD-group
//   operations have exactly Metal's semantics whatever the interleaving.
// - Threadgroup memory is an arena per worker, handed out in declaration
//   order, filled with 0xFF bytes (NaN for floats) at each threadgroup start.
// - Kernel translation units are compiled with clang's
//   clang's AddressSanitizer instrumentation in callback mode, so every load,
//   store and memory copy a kernel makes calls __asan_* below. That is where
//   device accesses are bounds-checked and counted and threadgroup-memory
//   races are found, with no change to the kernel source.
//
// Diagnostics (the first one found fails the launch, naming the kernel, the
// threadgroup and the thread): a device access outside its buffer (within a
// red zone of kRedZone bytes on both sides it is reported with its offset;
// beyond that, anywhere in the kGuardBytes of reserved PROT_NONE address
// space on each side, it is reported before it is made, and a SIGSEGV
// handler catches what the instrumentation does not see); a
// threadgroup-memory race (a write and another thread's read or write of the
// same byte with no threadgroup barrier between them); a barrier not reached
// by every thread, or threads at different barriers; a SIMD-group operation
// not reached by every lane of the SIMD group; more threadgroup memory than
// Metal allows.

#include <cxxabi.h>
#include <dlfcn.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "metal_sim/launch.h"

namespace metal_sim {

namespace {

constexpr uint32_t kSimdWidth = 32;
constexpr uint32_t kQuadWidth = 4;
constexpr size_t kFiberStackBytes = 256 * 1024;
// Metal's threadgroup memory limit on Apple GPUs.
constexpr size_t kThreadgroupMemoryLimit = 32 * 1024;
// Bytes on each side of a device buffer in which accesses are reported as
// out of bounds (buffer and offset); beyond them lie the guards.
constexpr size_t kRedZone = 64 * 1024;
// Address space reserved (PROT_NONE, never backed) on each side of a device
// buffer. A 32-bit index into the widest element, a 16-byte vector, reaches
// 2^32 * 16 bytes either way, so every such stray access lands in the
// reservation and is reported, instead of landing in whatever else the
// process has mapped there and corrupting it silently.
constexpr size_t kGuardBytes = size_t(1) << 36;
constexpr size_t kMaxExchangeBytes = 256;
// Size of the read-only zeros an unbound buffer(n) points at.
constexpr size_t kUnboundBytes = 64 * 1024;
constexpr uint32_t kManyReaders = 0xFFFFFFFFu;

std::map<std::string, KernelEntry>& registry() {
  static std::map<std::string, KernelEntry> kernels;
  return kernels;
}

size_t page_size() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

// A device buffer copy surrounded by red zones and guard reservations. From
// `mapping` on: kGuardBytes of PROT_NONE, the read-write body (the leading
// red zone, rounded up to whole pages, the data, the trailing red zone),
// kGuardBytes of PROT_NONE. The data ends exactly where the trailing red
// zone starts, so the first byte past the end is already out of bounds.
struct DeviceAllocation {
  int index = -1;
  // Counted in the device bytes (not a by-value argument buffer).
  bool counted = true;
  unsigned char* mapping = nullptr;
  size_t mapping_bytes = 0;
  unsigned char* body = nullptr;
  size_t body_bytes = 0;
  unsigned char* data = nullptr;
  size_t size = 0;

  uintptr_t lo() const {
    return reinterpret_cast<uintptr_t>(data) - kRedZone;
  }
  uintptr_t hi() const {
    return reinterpret_cast<uintptr_t>(data) + size + kRedZone;
  }
  uintptr_t reserved_lo() const {
    return reinterpret_cast<uintptr_t>(mapping);
  }
  uintptr_t reserved_hi() const {
    return reinterpret_cast<uintptr_t>(mapping) + mapping_bytes;
  }

  void allocate(int buffer_index, size_t bytes) {
    index = buffer_index;
    size = bytes;
    body_bytes = round_up(kRedZone + bytes + kRedZone, page_size());
    mapping_bytes = kGuardBytes + body_bytes + kGuardBytes;
    // PROT_NONE and MAP_NORESERVE: the guards cost address space only.
    void* m = mmap(
        nullptr,
        mapping_bytes,
        PROT_NONE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
        -1,
        0);
    if (m == MAP_FAILED) {
      throw std::runtime_error(
          "metal_sim: cannot reserve address space for a buffer's guards");
    }
    mapping = static_cast<unsigned char*>(m);
    body = mapping + kGuardBytes;
    if (mprotect(body, body_bytes, PROT_READ | PROT_WRITE) != 0) {
      throw std::runtime_error("metal_sim: out of memory for a buffer");
    }
    data = body + body_bytes - kRedZone - bytes;
  }

  // Inputs the kernel must not write: any write then faults.
  void make_read_only() {
    mprotect(body, body_bytes, PROT_READ);
  }

  ~DeviceAllocation() {
    if (mapping) {
      munmap(mapping, mapping_bytes);
    }
  }
};

struct LaunchState {
  const MslSimLaunch* launch = nullptr;
  std::string kernel;
  KernelEntry entry = nullptr;
  std::vector<std::unique_ptr<DeviceAllocation>> device;
  uintptr_t device_lo = UINTPTR_MAX;
  uintptr_t device_hi = 0;
  uint32_t threads_per_threadgroup = 0;
  std::atomic<uint64_t> next_threadgroup{0};
  uint64_t num_threadgroups = 0;
  // Threadgroups to run: all of them, or an evenly spaced sample.
  uint64_t threadgroups_to_run = 0;
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string error;
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> bytes_written{0};

  void fail(const std::string& message) {
    std::lock_guard lock(error_mutex);
    if (error.empty()) {
      error = message;
    }
    failed.store(true);
  }
};

enum class FiberState { Runnable, AtBarrier, AtSimdgroupBarrier, AtSimd, Done };

struct Fiber {
  ucontext_t context;
  unsigned char* stack = nullptr;
  FiberState state = FiberState::Runnable;
  const void* site = nullptr;
  uint32_t linear = 0; // thread_index_in_threadgroup
  Uint3 position{}; // thread_position_in_threadgroup
  size_t next_allocation = 0;
};

struct SimdGroupState {
  unsigned char contributions[kSimdWidth * kMaxExchangeBytes];
  unsigned char results[kSimdWidth * kMaxExchangeBytes];
  uint32_t present = 0;
};

// Shadow of one threadgroup-memory byte, for race detection.
struct ShadowByte {
  uint32_t write_epoch;
  uint32_t writer;
  uint32_t read_epoch;
  uint32_t reader; // kManyReaders once two threads have read it
};

struct Worker {
  LaunchState* state = nullptr;
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  Fiber* current = nullptr;
  Uint3 threadgroup_position{};
  std::vector<SimdGroupState> simdgroups;
  // Threadgroup memory.
  std::vector<unsigned char> arena;
  std::vector<size_t> allocations; // offsets, in declaration order
  size_t arena_used = 0;
  uintptr_t arena_lo = 0;
  uintptr_t arena_hi = 0;
  std::vector<ShadowByte> shadow;
  uint32_t epoch = 1;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  std::vector<unsigned char> signal_stack;
  bool aborted = false;
};

thread_local Worker* tls_worker = nullptr;

std::string describe_thread(const Worker& w, const Fiber* f) {
  char text[256];
  std::snprintf(
      text,
      sizeof(text),
      "kernel '%s', threadgroup (%u, %u, %u), thread (%u, %u, %u) [index %u]",
      w.state->kernel.c_str(),
      w.threadgroup_position.x,
      w.threadgroup_position.y,
      w.threadgroup_position.z,
      f ? f->position.x : 0,
      f ? f->position.y : 0,
      f ? f->position.z : 0,
      f ? f->linear : 0);
  return text;
}

void report(Worker& w, const Fiber* f, const char* format, ...) {
  char what[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(what, sizeof(what), format, args);
  va_end(args);
  w.state->fail(std::string(what) + " in " + describe_thread(w, f));
}

// ------------------------------ memory checks ------------------------------

void check_device_access(
    Worker& w,
    uintptr_t address,
    size_t bytes,
    bool is_write) {
  for (const auto& d : w.state->device) {
    if (address < d->reserved_lo() || address >= d->reserved_hi()) {
      continue;
    }
    const auto start = reinterpret_cast<uintptr_t>(d->data);
    if (address < start || address + bytes > start + d->size) {
      // In the red zone: out of bounds. Beyond it, in the guard: the
      // access would fault, but reporting it here, before it is made,
      // names the buffer and the distance.
      const bool in_red_zone = address >= d->lo() && address < d->hi();
      report(
          w,
          w.current,
          "%s device %s of %zu bytes at offset %lld of buffer(%d) (%zu "
          "bytes)%s",
          in_red_zone ? "out-of-bounds" : "invalid memory access:",
          is_write ? "write" : "read",
          bytes,
          static_cast<long long>(address) - static_cast<long long>(start),
          d->index,
          d->size,
          in_red_zone ? "" : ", outside its red zone");
      return;
    }
    if (d->counted) {
      (is_write ? w.bytes_written : w.bytes_read) += bytes;
    }
    return;
  }
}

void check_threadgroup_access(
    Worker& w,
    uintptr_t address,
    size_t bytes,
    bool is_write) {
  if (address + bytes > w.arena_lo + w.arena_used) {
    report(
        w,
        w.current,
        "out-of-bounds threadgroup-memory %s at offset %zu (%zu bytes "
        "declared)",
        is_write ? "write" : "read",
        static_cast<size_t>(address - w.arena_lo),
        w.arena_used);
    return;
  }
  const uint32_t me = w.current->linear;
  for (size_t i = 0; i < bytes; ++i) {
    const size_t offset = address - w.arena_lo + i;
    ShadowByte& s = w.shadow[offset];
    const bool written_by_other = s.write_epoch == w.epoch && s.writer != me;
    if (is_write) {
      const bool read_by_other = s.read_epoch == w.epoch &&
          (s.reader == kManyReaders || s.reader != me);
      if (written_by_other || read_by_other) {
        report(
            w,
            w.current,
            "threadgroup-memory race: write of byte %zu, which thread %u "
            "%s with no barrier in between",
            offset,
            written_by_other ? s.writer : s.reader,
            written_by_other ? "wrote" : "read");
        return;
      }
      s.write_epoch = w.epoch;
      s.writer = me;
    } else {
      if (written_by_other) {
        report(
            w,
            w.current,
            "threadgroup-memory race: read of byte %zu, which thread %u wrote "
            "with no barrier in between",
            offset,
            s.writer);
        return;
      }
      if (s.read_epoch != w.epoch) {
        s.read_epoch = w.epoch;
        s.reader = me;
      } else if (s.reader != me) {
        s.reader = kManyReaders;
      }
    }
  }
}

inline void on_access(void* pointer, size_t bytes, bool is_write) {
  Worker* w = tls_worker;
  if (w == nullptr || w->current == nullptr || w->state->failed.load()) {
    return;
  }
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  if (address >= w->arena_lo && address < w->arena_hi) {
    check_threadgroup_access(*w, address, bytes, is_write);
  } else if (address >= w->state->device_lo && address < w->state->device_hi) {
    check_device_access(*w, address, bytes, is_write);
  }
}

// ------------------------------- scheduling --------------------------------

void yield_to_scheduler(Worker& w) {
  Fiber* f = w.current;
  swapcontext(&f->context, &w.scheduler);
}

void fiber_main() {
  Worker& w = *tls_worker;
  w.state->entry();
  w.current->state = FiberState::Done;
  // Returning resumes uc_link, the scheduler.
}

// Releases the threads blocked at a barrier or collective once every thread
// that must take part is there; reports divergence when none can proceed.
// Returns false when the threadgroup cannot make progress.
bool resolve_blocked(Worker& w) {
  const size_t n = w.fibers.size();
  // SIMD groups: collectives and SIMD-group barriers.
  for (size_t g = 0; g < w.simdgroups.size(); ++g) {
    const size_t first = g * kSimdWidth;
    const size_t last = std::min(n, first + kSimdWidth);
    bool any_waiting = false;
    bool all_waiting = true;
    const void* site = nullptr;
    FiberState kind = FiberState::Runnable;
    for (size_t i = first; i < last; ++i) {
      const Fiber& f = w.fibers[i];
      if (f.state == FiberState::AtSimd ||
          f.state == FiberState::AtSimdgroupBarrier) {
        if (any_waiting && (f.site != site || f.state != kind)) {
          report(
              w,
              &f,
              "lanes of one SIMD group are at different SIMD-group "
              "operations");
          return false;
        }
        any_waiting = true;
        site = f.site;
        kind = f.state;
      } else {
        all_waiting = false;
      }
    }
    if (!any_waiting) {
      continue;
    }
    if (!all_waiting) {
      // Some lanes are elsewhere: still running (fine, wait) or blocked at a
      // threadgroup barrier or finished (they will never join).
      for (size_t i = first; i < last; ++i) {
        const Fiber& f = w.fibers[i];
        if (f.state == FiberState::Done || f.state == FiberState::AtBarrier) {
          const Fiber* waiting = nullptr;
          for (size_t j = first; j < last; ++j) {
            if (w.fibers[j].state == kind) {
              waiting = &w.fibers[j];
              break;
            }
          }
          report(
              w,
              waiting,
              "SIMD-group operation not reached by every lane of the SIMD "
              "group (lane %zu %s)",
              i - first,
              f.state == FiberState::Done ? "has returned"
                                          : "waits at a threadgroup barrier");
          return false;
        }
      }
      continue;
    }
    SimdGroupState& sg = w.simdgroups[g];
    if (kind == FiberState::AtSimd) {
      std::memcpy(sg.results, sg.contributions, sizeof(sg.results));
    }
    for (size_t i = first; i < last; ++i) {
      w.fibers[i].state = FiberState::Runnable;
    }
  }

  // The threadgroup barrier.
  size_t at_barrier = 0;
  size_t done = 0;
  const Fiber* first_waiting = nullptr;
  for (const Fiber& f : w.fibers) {
    if (f.state == FiberState::AtBarrier) {
      if (first_waiting && f.site != first_waiting->site) {
        report(
            w,
            &f,
            "threads of one threadgroup wait at different threadgroup "
            "barriers");
        return false;
      }
      first_waiting = first_waiting ? first_waiting : &f;
      ++at_barrier;
    } else if (f.state == FiberState::Done) {
      ++done;
    } else if (f.state == FiberState::Runnable) {
      return true;
    }
  }
  if (at_barrier > 0 && at_barrier + done == n) {
    if (done > 0) {
      const Fiber* finished = nullptr;
      for (const Fiber& f : w.fibers) {
        if (f.state == FiberState::Done) {
          finished = &f;
          break;
        }
      }
      report(
          w,
          first_waiting,
          "threadgroup barrier not reached by every thread (thread %u has "
          "returned)",
          finished->linear);
      return false;
    }
    ++w.epoch;
    for (Fiber& f : w.fibers) {
      f.state = FiberState::Runnable;
    }
    return true;
  }
  for (const Fiber& f : w.fibers) {
    if (f.state == FiberState::Runnable) {
      return true;
    }
  }
  return done == n;
}

void prepare_fibers(Worker& w, const uint32_t* size) {
  const uint32_t count = size[0] * size[1] * size[2];
  if (w.fibers.size() != count) {
    for (auto& f : w.fibers) {
      munmap(f.stack, kFiberStackBytes);
    }
    w.fibers.assign(count, Fiber{});
    for (uint32_t i = 0; i < count; ++i) {
      void* stack = mmap(
          nullptr,
          kFiberStackBytes,
          PROT_READ | PROT_WRITE,
          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
          -1,
          0);
      if (stack == MAP_FAILED) {
        throw std::runtime_error("metal_sim: out of memory for fiber stacks");
      }
      // A guard page at the low end catches a stack overflow.
      mprotect(stack, page_size(), PROT_NONE);
      w.fibers[i].stack = static_cast<unsigned char*>(stack);
    }
    w.simdgroups.assign((count + kSimdWidth - 1) / kSimdWidth, {});
  }
  for (uint32_t i = 0; i < count; ++i) {
    Fiber& f = w.fibers[i];
    f.linear = i;
    f.position = {
        i % size[0], (i / size[0]) % size[1], i / (size[0] * size[1])};
    f.state = FiberState::Runnable;
    f.next_allocation = 0;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack;
    f.context.uc_stack.ss_size = kFiberStackBytes;
    f.context.uc_link = &w.scheduler;
    makecontext(&f.context, fiber_main, 0);
  }
}

void run_threadgroup(Worker& w, Uint3 position) {
  w.threadgroup_position = position;
  prepare_fibers(w, w.state->launch->threadgroup);
  w.allocations.clear();
  w.arena_used = 0;
  std::fill(w.arena.begin(), w.arena.end(), 0xFF);
  std::fill(w.shadow.begin(), w.shadow.end(), ShadowByte{0, 0, 0, 0});
  w.epoch = 1;

  while (!w.state->failed.load()) {
    for (Fiber& f : w.fibers) {
      if (f.state != FiberState::Runnable) {
        continue;
      }
      w.current = &f;
      swapcontext(&w.scheduler, &f.context);
      w.current = nullptr;
      if (w.aborted) {
        return;
      }
    }
    if (!resolve_blocked(w)) {
      return;
    }
    bool all_done = std::all_of(w.fibers.begin(), w.fibers.end(), [](auto& f) {
      return f.state == FiberState::Done;
    });
    if (all_done) {
      return;
    }
  }
}

// A fault in a kernel (a device access far outside its buffer, a stack
// overflow): report it and abandon the launch.
// The function containing `pc`, demangled, for fault reports.
std::string function_at(const void* pc) {
  Dl_info info{};
  if (pc == nullptr || !dladdr(pc, &info) || info.dli_sname == nullptr) {
    return "an unknown function";
  }
  int status = 0;
  char* name = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
  std::string result = status == 0 && name ? name : info.dli_sname;
  std::free(name);
  return result;
}

void on_fault(int signal, siginfo_t* info, void* context) {
  Worker* w = tls_worker;
  if (w == nullptr || w->current == nullptr) {
    ::signal(signal, SIG_DFL);
    ::raise(signal);
    return;
  }
  const void* pc = nullptr;
#if defined(__x86_64__)
  pc = reinterpret_cast<const void*>(
      static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  pc = reinterpret_cast<const void*>(
      static_cast<ucontext_t*>(context)->uc_mcontext.pc);
#endif
  report(
      *w,
      w->current,
      "invalid memory access (signal %d) at address %p, outside every "
      "buffer's red zone, in %s",
      signal,
      info->si_addr,
      function_at(pc).c_str());
  w->aborted = true;
  setcontext(&w->scheduler);
}

void work(LaunchState& state) {
  Worker w;
  w.state = &state;
  w.arena.assign(2 * kThreadgroupMemoryLimit, 0xFF);
  w.shadow.assign(w.arena.size(), ShadowByte{0, 0, 0, 0});
  w.arena_lo = reinterpret_cast<uintptr_t>(w.arena.data());
  w.arena_hi = w.arena_lo + w.arena.size();
  w.signal_stack.resize(64 * 1024);
  stack_t alt{};
  alt.ss_sp = w.signal_stack.data();
  alt.ss_size = w.signal_stack.size();
  sigaltstack(&alt, nullptr);
  tls_worker = &w;

  const uint32_t* grid = state.launch->grid;
  for (uint64_t j = state.next_threadgroup.fetch_add(1);
       j < state.threadgroups_to_run && !state.failed.load();
       j = state.next_threadgroup.fetch_add(1)) {
    // Sample j of threadgroups_to_run, spread over the whole grid.
    const uint64_t i = state.threadgroups_to_run == state.num_threadgroups
        ? j
        : j * state.num_threadgroups / state.threadgroups_to_run;
    Uint3 position{
        static_cast<uint32_t>(i % grid[0]),
        static_cast<uint32_t>((i / grid[0]) % grid[1]),
        static_cast<uint32_t>(i / (uint64_t(grid[0]) * grid[1]))};
    run_threadgroup(w, position);
    if (w.aborted) {
      break;
    }
  }
  state.bytes_read += w.bytes_read;
  state.bytes_written += w.bytes_written;
  tls_worker = nullptr;
  for (auto& f : w.fibers) {
    munmap(f.stack, kFiberStackBytes);
  }
  stack_t off{};
  off.ss_flags = SS_DISABLE;
  sigaltstack(&off, nullptr);
}

} // namespace

// ------------------------- services for the kernels -------------------------

void register_kernel(const char* host_name, KernelEntry entry) {
  registry()[host_name] = entry;
}

void* buffer_pointer(int index) {
  Worker& w = *tls_worker;
  for (const auto& d : w.state->device) {
    if (d->index == index) {
      return d->data;
    }
  }
  // Unbound. Kernels declare parameters a launch leaves unbound (those
  // behind a false function constant, the batch strides of an unbatched
  // launch), and may read them in code that Apple's compiler removes once
  // the function constants are known, which here are known only at run
  // time. So an unbound buffer reads as zeros; a write to it faults and is
  // reported.
  static void* const unbound = mmap(
      nullptr, kUnboundBytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return unbound;
}

uint64_t function_constant_bits(int index) {
  const MslSimLaunch* launch = tls_worker->state->launch;
  for (int i = 0; i < launch->num_constants; ++i) {
    if (launch->constants[i].index == index) {
      return launch->constants[i].bits;
    }
  }
  return 0;
}

bool function_constant_defined(int index) {
  const MslSimLaunch* launch = tls_worker->state->launch;
  for (int i = 0; i < launch->num_constants; ++i) {
    if (launch->constants[i].index == index) {
      return true;
    }
  }
  return false;
}

Uint3 builtin_value(Builtin which) {
  const Worker& w = *tls_worker;
  const Fiber& f = *w.current;
  const uint32_t* tg = w.state->launch->threadgroup;
  const uint32_t* grid = w.state->launch->grid;
  const uint32_t threads = w.state->threads_per_threadgroup;
  const Uint3 g = w.threadgroup_position;
  switch (which) {
    case Builtin::ThreadPositionInGrid:
      return {
          g.x * tg[0] + f.position.x,
          g.y * tg[1] + f.position.y,
          g.z * tg[2] + f.position.z};
    case Builtin::ThreadPositionInThreadgroup:
      return f.position;
    case Builtin::ThreadgroupPositionInGrid:
      return g;
    case Builtin::ThreadsPerThreadgroup:
      return {tg[0], tg[1], tg[2]};
    case Builtin::ThreadgroupsPerGrid:
      return {grid[0], grid[1], grid[2]};
    case Builtin::ThreadsPerGrid:
      return {grid[0] * tg[0], grid[1] * tg[1], grid[2] * tg[2]};
    case Builtin::ThreadIndexInThreadgroup:
      return {f.linear, 0, 0};
    case Builtin::SimdgroupIndexInThreadgroup:
      return {f.linear / kSimdWidth, 0, 0};
    case Builtin::ThreadIndexInSimdgroup:
      return {f.linear % kSimdWidth, 0, 0};
    case Builtin::ThreadsPerSimdgroup:
      return {kSimdWidth, 0, 0};
    case Builtin::SimdgroupsPerThreadgroup:
      return {(threads + kSimdWidth - 1) / kSimdWidth, 0, 0};
    case Builtin::QuadgroupIndexInThreadgroup:
      return {f.linear / kQuadWidth, 0, 0};
    case Builtin::ThreadIndexInQuadgroup:
      return {f.linear % kQuadWidth, 0, 0};
    case Builtin::QuadgroupsPerThreadgroup:
      return {(threads + kQuadWidth - 1) / kQuadWidth, 0, 0};
  }
  return {0, 0, 0};
}

void* threadgroup_allocate(size_t bytes, size_t alignment) {
  Worker& w = *tls_worker;
  Fiber& f = *w.current;
  if (f.next_allocation == w.allocations.size()) {
    const size_t offset = round_up(w.arena_used, alignment);
    if (offset + bytes > kThreadgroupMemoryLimit) {
      report(
          w,
          &f,
          "threadgroup memory of %zu bytes exceeds Metal's %zu",
          offset + bytes,
          kThreadgroupMemoryLimit);
      w.aborted = true;
      setcontext(&w.scheduler);
    }
    w.allocations.push_back(offset);
    w.arena_used = offset + bytes;
  }
  return w.arena.data() + w.allocations[f.next_allocation++];
}

void threadgroup_barrier(const void* site) {
  Worker& w = *tls_worker;
  w.current->state = FiberState::AtBarrier;
  w.current->site = site;
  yield_to_scheduler(w);
}

void simdgroup_barrier(const void* site) {
  Worker& w = *tls_worker;
  w.current->state = FiberState::AtSimdgroupBarrier;
  w.current->site = site;
  yield_to_scheduler(w);
}

Exchange simd_exchange(const void* value, size_t bytes, const void* site) {
  Worker& w = *tls_worker;
  Fiber& f = *w.current;
  const uint32_t group = f.linear / kSimdWidth;
  const uint32_t lane = f.linear % kSimdWidth;
  SimdGroupState& sg = w.simdgroups[group];
  std::memcpy(sg.contributions + lane * bytes, value, bytes);
  f.state = FiberState::AtSimd;
  f.site = site;
  yield_to_scheduler(w);
  const uint32_t first = group * kSimdWidth;
  const uint32_t width = std::min<uint32_t>(
      kSimdWidth, static_cast<uint32_t>(w.fibers.size()) - first);
  const uint32_t present = width == 32 ? 0xFFFFFFFFu : (1u << width) - 1u;
  return {sg.results, present, lane, width};
}

} // namespace metal_sim

// ------------------------------ instrumentation -----------------------------
// Kernel translation units are compiled with clang's AddressSanitizer
// instrumentation in callback mode and without its run-time library: every
// load and store becomes a call to __asan_{load,store}N below, and every
// memcpy/memmove/memset (clang emits them for struct copies and copy loops)
// a call to __asan_mem*. These callbacks are the simulator's: they check and
// count the access. Stack and global instrumentation are off.

extern "C" {

#define METAL_SIM_TRACE(bytes)                                            \
  void __asan_load##bytes(uintptr_t address) {                            \
    metal_sim::on_access(reinterpret_cast<void*>(address), bytes, false); \
  }                                                                       \
  void __asan_store##bytes(uintptr_t address) {                           \
    metal_sim::on_access(reinterpret_cast<void*>(address), bytes, true);  \
  }

METAL_SIM_TRACE(1)
METAL_SIM_TRACE(2)
METAL_SIM_TRACE(4)
METAL_SIM_TRACE(8)
METAL_SIM_TRACE(16)

#undef METAL_SIM_TRACE

void __asan_loadN(uintptr_t address, size_t bytes) {
  metal_sim::on_access(reinterpret_cast<void*>(address), bytes, false);
}
void __asan_storeN(uintptr_t address, size_t bytes) {
  metal_sim::on_access(reinterpret_cast<void*>(address), bytes, true);
}
void* __asan_memcpy(void* to, const void* from, size_t bytes) {
  metal_sim::on_access(const_cast<void*>(from), bytes, false);
  metal_sim::on_access(to, bytes, true);
  return std::memcpy(to, from, bytes);
}
void* __asan_memmove(void* to, const void* from, size_t bytes) {
  metal_sim::on_access(const_cast<void*>(from), bytes, false);
  metal_sim::on_access(to, bytes, true);
  return std::memmove(to, from, bytes);
}
void* __asan_memset(void* to, int value, size_t bytes) {
  metal_sim::on_access(to, bytes, true);
  return std::memset(to, value, bytes);
}
// The instrumentation's module constructor and no-return hook: nothing to
// set up, as there is no AddressSanitizer run-time.
void __asan_init() {}
void __asan_version_mismatch_check_v8() {}
void __asan_handle_no_return() {}

// ------------------------------- the C API ---------------------------------

const char* msl_sim_kernel_names() {
  static std::string names;
  names.clear();
  for (const auto& [name, entry] : metal_sim::registry()) {
    names += name;
    names += '\n';
  }
  return names.c_str();
}

int msl_sim_launch(const MslSimLaunch* launch, MslSimReport* report) {
  using namespace metal_sim;
  std::memset(report, 0, sizeof(*report));
  auto set_error = [&](const std::string& message) {
    std::snprintf(report->error, sizeof(report->error), "%s", message.c_str());
    return 1;
  };
  auto it = registry().find(launch->kernel);
  if (it == registry().end()) {
    return set_error(std::string("no kernel named '") + launch->kernel + "'");
  }
  LaunchState state;
  state.launch = launch;
  state.kernel = launch->kernel;
  state.entry = it->second;
  state.threads_per_threadgroup =
      launch->threadgroup[0] * launch->threadgroup[1] * launch->threadgroup[2];
  if (state.threads_per_threadgroup == 0 ||
      state.threads_per_threadgroup > 1024) {
    return set_error("threads per threadgroup must be 1 to 1024");
  }
  state.num_threadgroups =
      uint64_t(launch->grid[0]) * launch->grid[1] * launch->grid[2];
  state.threadgroups_to_run = launch->sample_threadgroups > 0
      ? std::min(launch->sample_threadgroups, state.num_threadgroups)
      : state.num_threadgroups;

  // Every buffer, set_bytes data included, gets a guarded copy.
  for (int i = 0; i < launch->num_buffers; ++i) {
    const MslSimBuffer& b = launch->buffers[i];
    auto d = std::make_unique<DeviceAllocation>();
    d->allocate(b.index, b.size);
    d->counted = b.by_value == 0;
    std::memcpy(d->data, b.data, b.size);
    if (!b.writable) {
      d->make_read_only();
    }
    state.device_lo = std::min(state.device_lo, d->reserved_lo());
    state.device_hi = std::max(state.device_hi, d->reserved_hi());
    state.device.push_back(std::move(d));
  }

  struct sigaction action{};
  action.sa_sigaction = on_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  struct sigaction old_segv, old_bus;
  sigaction(SIGSEGV, &action, &old_segv);
  sigaction(SIGBUS, &action, &old_bus);

  int workers = launch->worker_threads > 0
      ? launch->worker_threads
      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  workers = static_cast<int>(std::min<uint64_t>(
      workers, std::max<uint64_t>(1, state.threadgroups_to_run)));
  try {
    if (workers == 1) {
      work(state);
    } else {
      std::vector<std::thread> threads;
      for (int i = 0; i < workers; ++i) {
        threads.emplace_back([&state] { work(state); });
      }
      for (auto& t : threads) {
        t.join();
      }
    }
  } catch (const std::exception& e) {
    state.fail(e.what());
  }
  sigaction(SIGSEGV, &old_segv, nullptr);
  sigaction(SIGBUS, &old_bus, nullptr);

  for (int i = 0; i < launch->num_buffers; ++i) {
    const MslSimBuffer& b = launch->buffers[i];
    if (b.writable) {
      std::memcpy(b.data, state.device[i]->data, b.size);
    }
  }
  report->device_bytes_read = state.bytes_read.load();
  report->device_bytes_written = state.bytes_written.load();
  report->threadgroups_run = state.threadgroups_to_run;
  report->threadgroups_total = state.num_threadgroups;
  if (state.failed.load()) {
    return set_error(state.error);
  }
  return 0;
}

} // extern "C"

// float -> bfloat conversion (round to nearest even, NaN kept quiet), which
// clang emits as a call for __bf16 and which GCC 12's libgcc lacks.
extern "C" __bf16 __truncsfbf2(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  uint16_t out;
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
    out = static_cast<uint16_t>((bits >> 16) | 0x0040u);
  } else {
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    out = static_cast<uint16_t>(bits >> 16);
  }
  __bf16 result;
  std::memcpy(&result, &out, sizeof(result));
  return result;
}

extern "C" __bf16 __truncdfbf2(double value) {
  return __truncsfbf2(static_cast<float>(value));
}
