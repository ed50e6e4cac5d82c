// Copyright © 2026 mlx-qmm contributors.
//
// The Hopper (sm_90a) instructions the warpgroup GEMM is built from:
// mbarriers that hand shared-memory stages between warpgroups, the proxy
// fence that makes ordinary shared-memory writes visible to the tensor
// cores' asynchronous reads, the shared-memory matrix descriptor, and
// wgmma.mma_async (one warpgroup, 64 x N x 16, float32 accumulators).
//
// Everything here compiles to nothing outside sm_90a (MLX_QMM_WGMMA is 0):
// the sm_80 build of the kernels keeps its symbols, and the launch plan
// never picks them on a GPU other than sm_90.

#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/mma.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MLX_QMM_WGMMA 1
#else
#define MLX_QMM_WGMMA 0
#endif

namespace mlx_qmm::cuda {

// ---------------------------- mbarriers ----------------------------

__device__ __forceinline__ void barrier_init(uint64_t* bar, int arrivals) {
#if MLX_QMM_WGMMA
  asm volatile(
      "mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(shared_address(bar)),
      "r"(arrivals));
#endif
}

// One arrival (release): this thread's earlier writes are visible to the
// threads that see the phase complete.
__device__ __forceinline__ void barrier_arrive(uint64_t* bar) {
#if MLX_QMM_WGMMA
  asm volatile("mbarrier.arrive.release.cta.shared::cta.b64 _, [%0];\n" ::"r"(
                   shared_address(bar))
               : "memory");
#endif
}

// Waits (acquire) until the phase of the given parity has completed.
__device__ __forceinline__ void barrier_wait(uint64_t* bar, uint32_t parity) {
#if MLX_QMM_WGMMA
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\n"
        "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(shared_address(bar)), "r"(parity)
        : "memory");
  } while (!done);
#endif
}

// An arrival on `bar` that fires once every cp.async this thread has issued
// so far has landed; .noinc: the barrier's arrival count already includes
// it, so the thread need not wait for its own copies.
__device__ __forceinline__ void copy_async_arrive(uint64_t* bar) {
#if MLX_QMM_WGMMA
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(
                   shared_address(bar))
               : "memory");
#endif
}

// Orders generic-proxy shared-memory writes that this thread has observed
// (its own st.shared, or cp.async copies whose mbarrier it has seen
// complete) before its later async-proxy reads (wgmma operands).
__device__ __forceinline__ void fence_async_shared() {
#if MLX_QMM_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// --------------------------- descriptors ---------------------------

// A K-major tile in the 128-byte swizzle: rows of 64 16-bit values (128
// bytes) one after the other, the 16-byte chunk c of row r stored at chunk
// c ^ (r % 8), so that the eight rows of a 1024-byte atom spread any
// chunk column over all 32 banks. The tile must start 1024-byte aligned.
inline constexpr int kSwizzleRowBytes = 128;
inline constexpr int kSwizzleAtomBytes = 8 * kSwizzleRowBytes;

__device__ __forceinline__ int swizzled_chunk_offset(int row, int chunk) {
  return row * kSwizzleRowBytes + ((chunk ^ (row % 8)) << 4);
}

// The wgmma descriptor of such a tile: start address >> 4 (bits 0-13),
// leading byte offset (bits 16-29; unused by swizzled K-major layouts,
// conventionally 1), stride byte offset >> 4 between 8-row atoms (bits
// 32-45) and the layout (bits 62-63: 1 = 128-byte swizzle). Advancing the
// start by 32 bytes steps to the next 16 values of K inside the swizzle.
__device__ __forceinline__ uint64_t swizzled_tile_descriptor(const void* tile) {
  const uint64_t start = (shared_address(tile) & 0x3FFFF) >> 4;
  return start | (uint64_t{1} << 16) |
      (uint64_t{kSwizzleAtomBytes >> 4} << 32) | (uint64_t{1} << 62);
}
inline constexpr uint64_t kDescriptorStepK16 = 32 >> 4;

// --------------------------- stage rings ---------------------------

// A warpgroup GEMM block's ring of stages in dynamic shared memory: kStages
// stages of kStageBytes from the first 1024-byte boundary (the swizzle is a
// function of address bits 4-9), then a full and an empty mbarrier a stage.
// The launch adds kWgmmaAlignSlack bytes for the alignment.
template <int kStages, int kStageBytes>
struct StageRing {
  unsigned char* base;
  uint64_t* full;
  uint64_t* empty;

  __device__ __forceinline__ unsigned char* stage(int s) const {
    return base + s * kStageBytes;
  }
};

// Thread 0 initialises the barriers (full: `full_arrivals` a phase; empty:
// one arrival from each consumer thread); the block then synchronises.
template <int kStages, int kStageBytes>
__device__ __forceinline__ StageRing<kStages, kStageBytes>
make_stage_ring(unsigned char* shared_bytes, int full_arrivals, int consumers) {
  const uint32_t misalignment = shared_address(shared_bytes) % 1024;
  StageRing<kStages, kStageBytes> ring;
  ring.base = shared_bytes + (misalignment ? 1024 - misalignment : 0);
  ring.full = reinterpret_cast<uint64_t*>(ring.base + kStages * kStageBytes);
  ring.empty = ring.full + kStages;
  if (threadIdx.x == 0) {
#pragma unroll
    for (int s = 0; s < kStages; ++s) {
      barrier_init(&ring.full[s], full_arrivals);
      barrier_init(&ring.empty[s], consumers);
    }
  }
  __syncthreads();
  return ring;
}

// One producer thread's share of the copies of a swizzled tile: rows
// [first_row, first_row + kRows) of a row-major matrix of `row_count` rows
// and k columns, 64 columns a K step, 16 bytes a copy spread over kThreads
// threads; rows and columns past the matrix are zero-filled.
//
// Why a struct set up once per block: thread t copies chunk t % 8 of rows
// t / 8 + (kThreads / 8) u, so its chunk, and its rows' place in their
// swizzle atoms, are the same for every copy u and every step. Each copy's
// shared-memory destination is then a constant offset from the first, and
// its source a row pointer plus the step's K offset. Computing both afresh
// for each copy, as an earlier version did, took 15 instructions a copy:
// the producer warpgroup issued about 380 instructions a K step and set
// the pace of the whole GEMM (bench/cuda_kernels.md).
template <int kRows, int kThreads, typename T>
struct SwizzledTileCopy {
  static constexpr int kChunks = kSwizzleRowBytes / 16;
  static constexpr int kRowsPerPass = kThreads / kChunks;
  static constexpr int kCopies = kRows / kRowsPerPass;
  static_assert(kThreads % kChunks == 0 && kRows % kRowsPerPass == 0);
  static_assert(kRowsPerPass % 8 == 0, "copies keep their swizzle phase");
  static_assert(kCopies <= 32, "one validity bit a copy");

  // This thread's chunk of each of its rows at K offset 0, as bytes (so
  // that adding a step's offset is one 64-bit add); rows past the matrix
  // point at the first row (never read: their copies are zero-filled), so
  // that every address stays inside the matrix.
  const char* rows[kCopies];
  uint32_t valid_rows; // bit u: row u exists
  uint32_t first_offset; // copy 0's byte offset in the tile
  int column; // the chunk's first column within a K step

  __device__ __forceinline__
  SwizzledTileCopy(const T* src, int first_row, int row_count, int k, int tid) {
    const int chunk = tid % kChunks;
    const int row = tid / kChunks;
    column = 8 * chunk;
    first_offset = swizzled_chunk_offset(row, chunk);
    valid_rows = 0;
#pragma unroll
    for (int u = 0; u < kCopies; ++u) {
      const int r = first_row + row + u * kRowsPerPass;
      const bool valid = r < row_count;
      valid_rows |= uint32_t{valid} << u;
      rows[u] = reinterpret_cast<const char*>(
          src + static_cast<int64_t>(valid ? r : first_row) * k + column);
    }
  }

  // Copies the step whose first column is k0 into the tile at shared
  // address `tile` (1024-byte aligned). Tiles inside the matrix, all but
  // the edges, skip the per-copy predicate.
  __device__ __forceinline__ void copy(uint32_t tile, int k0, int k) const {
    constexpr uint32_t kAllRows =
        kCopies == 32 ? ~uint32_t{0} : (uint32_t{1} << kCopies) - 1;
    const bool column_valid = k0 + column < k;
    const int64_t offset = column_valid ? int64_t{k0} * sizeof(T) : 0;
    const uint32_t first = tile + first_offset;
    constexpr int kPassBytes = kRowsPerPass * kSwizzleRowBytes;
    if (column_valid && valid_rows == kAllRows) {
#pragma unroll
      for (int u = 0; u < kCopies; ++u) {
        copy_async<16>(first + u * kPassBytes, rows[u] + offset);
      }
    } else {
#pragma unroll
      for (int u = 0; u < kCopies; ++u) {
        const bool valid = column_valid && ((valid_rows >> u) & 1);
        copy_async<16>(
            first + u * kPassBytes, rows[u] + offset, valid ? 16 : 0);
      }
    }
  }
};

// ------------------------------ wgmma ------------------------------

// Before the first wgmma that reads accumulators other instructions wrote.
__device__ __forceinline__ void wgmma_fence() {
#if MLX_QMM_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void wgmma_commit() {
#if MLX_QMM_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}

// The compiler sees a wgmma's register A operand consumed at issue, but the
// tensor cores read it until the product completes: touching the registers
// after the wait that covers it keeps the compiler from reusing them sooner.
__device__ __forceinline__ void wgmma_keep_operand(uint32_t (&a)[4]) {
  asm volatile("" : "+r"(a[0]), "+r"(a[1]), "+r"(a[2]), "+r"(a[3])::"memory");
}

// Waits until at most `pending` committed wgmma groups are in flight.
template <int pending>
__device__ __forceinline__ void wgmma_wait() {
#if MLX_QMM_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(pending) : "memory");
#endif
}

// The operand lists, by macro because an asm string must be a literal:
// 64 x N of float32 accumulators are N / 2 registers a thread, operands
// %0 to %(N / 2 - 1); the descriptors, A registers and the accumulate flag
// follow them.
// clang-format off
#define MLX_QMM_WGMMA_ACC_LIST_64 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define MLX_QMM_WGMMA_ACC_LIST_128 MLX_QMM_WGMMA_ACC_LIST_64 ", " \
  "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
  "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
  "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
  "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
#define MLX_QMM_WGMMA_ACC_OUT_64 \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
  "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
  "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
  "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
  "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
  "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
  "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define MLX_QMM_WGMMA_ACC_OUT_128 MLX_QMM_WGMMA_ACC_OUT_64, \
  "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
  "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), \
  "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), \
  "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), \
  "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), \
  "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), \
  "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), \
  "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])

// Shared-memory A: "{d}, a-desc, b-desc, p, 1, 1, 0, 0" (scales 1, both
// operands K-major). Register A: "{d}, {a0..a3}, b-desc, p, 1, 1, 0".
#define MLX_QMM_WGMMA_SS(shape, type, acc, outs, a_op, b_op, p_op) \
  asm volatile( \
      "{\n.reg .pred p;\nsetp.ne.b32 p, " p_op ", 0;\n" \
      "wgmma.mma_async.sync.aligned." shape ".f32." #type "." #type \
      " {" acc "}, " a_op ", " b_op ", p, 1, 1, 0, 0;\n}\n" \
      : outs \
      : "l"(a), "l"(b), "r"(accumulate))
#define MLX_QMM_WGMMA_RS(shape, type, acc, outs, a_ops, b_op, p_op) \
  asm volatile( \
      "{\n.reg .pred p;\nsetp.ne.b32 p, " p_op ", 0;\n" \
      "wgmma.mma_async.sync.aligned." shape ".f32." #type "." #type \
      " {" acc "}, {" a_ops "}, " b_op ", p, 1, 1, 0;\n}\n" \
      : outs \
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate))
#define MLX_QMM_WGMMA_M64N128K16(type) \
  MLX_QMM_WGMMA_SS("m64n128k16", type, MLX_QMM_WGMMA_ACC_LIST_64, \
                   MLX_QMM_WGMMA_ACC_OUT_64, "%64", "%65", "%66")
#define MLX_QMM_WGMMA_M64N256K16(type) \
  MLX_QMM_WGMMA_SS("m64n256k16", type, MLX_QMM_WGMMA_ACC_LIST_128, \
                   MLX_QMM_WGMMA_ACC_OUT_128, "%128", "%129", "%130")
#define MLX_QMM_WGMMA_M64N128K16_RS(type) \
  MLX_QMM_WGMMA_RS("m64n128k16", type, MLX_QMM_WGMMA_ACC_LIST_64, \
                   MLX_QMM_WGMMA_ACC_OUT_64, "%64, %65, %66, %67", "%68", \
                   "%69")
#define MLX_QMM_WGMMA_M64N256K16_RS(type) \
  MLX_QMM_WGMMA_RS("m64n256k16", type, MLX_QMM_WGMMA_ACC_LIST_128, \
                   MLX_QMM_WGMMA_ACC_OUT_128, "%128, %129, %130, %131", \
                   "%132", "%133")
// clang-format on

// d (+)= A * B^T for a 64 x N x 16 product, A and B^T both K-major tiles in
// shared memory given by descriptors; accumulate 0 overwrites d. Per warp w
// of the warpgroup and lane l, d[4j + 2h + e] holds row 16w + l / 4 + 8h,
// column 8j + 2 (l % 4) + e (the m16n8 accumulator layout, repeated over
// N / 8 column blocks).
template <typename T, int N>
__device__ __forceinline__ void
wgmma_64xNx16(float (&d)[N / 2], uint64_t a, uint64_t b, uint32_t accumulate) {
#if MLX_QMM_WGMMA
  static_assert(N == 128 || N == 256, "wgmma shapes in use");
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if constexpr (N == 128) {
      MLX_QMM_WGMMA_M64N128K16(bf16);
    } else {
      MLX_QMM_WGMMA_M64N256K16(bf16);
    }
  } else {
    if constexpr (N == 128) {
      MLX_QMM_WGMMA_M64N128K16(f16);
    } else {
      MLX_QMM_WGMMA_M64N256K16(f16);
    }
  }
#endif
}

// d (+)= A * B^T as above, A (64 x 16) in registers: per warp w and lane
// l, a[2i + h] holds row 16w + l / 4 + 8h, columns 8i + 2 (l % 4) and the
// next (the m16n8k16 A fragment), two 16-bit values a register.
template <typename T, int N>
__device__ __forceinline__ void wgmma_64xNx16_registers(
    float (&d)[N / 2],
    const uint32_t (&a)[4],
    uint64_t b,
    uint32_t accumulate) {
#if MLX_QMM_WGMMA
  static_assert(N == 128 || N == 256, "wgmma shapes in use");
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if constexpr (N == 128) {
      MLX_QMM_WGMMA_M64N128K16_RS(bf16);
    } else {
      MLX_QMM_WGMMA_M64N256K16_RS(bf16);
    }
  } else {
    if constexpr (N == 128) {
      MLX_QMM_WGMMA_M64N128K16_RS(f16);
    } else {
      MLX_QMM_WGMMA_M64N256K16_RS(f16);
    }
  }
#endif
}

#undef MLX_QMM_WGMMA_M64N128K16
#undef MLX_QMM_WGMMA_M64N256K16
#undef MLX_QMM_WGMMA_M64N128K16_RS
#undef MLX_QMM_WGMMA_M64N256K16_RS
#undef MLX_QMM_WGMMA_SS
#undef MLX_QMM_WGMMA_RS
#undef MLX_QMM_WGMMA_ACC_LIST_64
#undef MLX_QMM_WGMMA_ACC_LIST_128
#undef MLX_QMM_WGMMA_ACC_OUT_64
#undef MLX_QMM_WGMMA_ACC_OUT_128

} // namespace mlx_qmm::cuda
