"""The Metal simulator's own tests: Metal semantics (builtins, threadgroup
memory, barriers, SIMD-group functions, simdgroup_matrix, function
constants, byte counts) on small kernels, and each diagnostic seen on a
kernel with the bug planted in it."""

from __future__ import annotations

import metal_sim
import numpy as np
import pytest
from metal_sim import MetalSimError

pytestmark = metal_sim.needs_compiler()

KERNELS = r"""
#include <metal_stdlib>
using namespace metal;

template <typename T>
[[kernel]] void axpy(
    device const T* x [[buffer(0)]],
    device T* y [[buffer(1)]],
    constant float& a [[buffer(2)]],
    uint gid [[thread_position_in_grid]]) {
  y[gid] = T(a * float(x[gid]) + float(y[gid]));
}

// Every builtin, written out per thread: 12 uints each.
[[kernel]] void builtins(
    device uint* out [[buffer(0)]],
    uint3 grid_pos [[thread_position_in_grid]],
    uint3 tg_pos [[threadgroup_position_in_grid]],
    uint3 local [[thread_position_in_threadgroup]],
    uint3 tg_size [[threads_per_threadgroup]],
    uint3 grid_size [[threads_per_grid]],
    uint index [[thread_index_in_threadgroup]],
    ushort simd_gid [[simdgroup_index_in_threadgroup]],
    ushort simd_lid [[thread_index_in_simdgroup]],
    uint quad_lid [[thread_index_in_quadgroup]]) {
  uint linear = grid_pos.x + grid_size.x * (grid_pos.y + grid_size.y * grid_pos.z);
  device uint* o = out + 12 * linear;
  o[0] = grid_pos.x; o[1] = grid_pos.y; o[2] = grid_pos.z;
  o[3] = tg_pos.x; o[4] = tg_pos.y; o[5] = tg_pos.z;
  o[6] = local.x; o[7] = local.y; o[8] = index;
  o[9] = simd_gid; o[10] = simd_lid; o[11] = quad_lid + 100 * tg_size.x;
}

[[kernel]] void reverse_in_threadgroup(
    device const float* x [[buffer(0)]],
    device float* y [[buffer(1)]],
    uint tid [[thread_index_in_threadgroup]],
    uint3 tg [[threadgroup_position_in_grid]],
    uint n [[threads_per_threadgroup]]) {
  threadgroup float buf[256];
  buf[tid] = x[tg.x * n + tid];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  y[tg.x * n + tid] = buf[n - 1 - tid];
}

// One row per function: sum, prefix sums, shuffles, broadcast, quad sum.
[[kernel]] void simd_functions(
    device const float* x [[buffer(0)]],
    device float* out [[buffer(1)]],
    uint tid [[thread_index_in_threadgroup]],
    uint n [[threads_per_threadgroup]],
    ushort lane [[thread_index_in_simdgroup]]) {
  float v = x[tid];
  out[0 * n + tid] = simd_sum(v);
  out[1 * n + tid] = simd_prefix_inclusive_sum(v);
  out[2 * n + tid] = simd_prefix_exclusive_sum(v);
  out[3 * n + tid] = simd_shuffle_down(v, 3);
  out[4 * n + tid] = simd_shuffle_up(v, 5);
  out[5 * n + tid] = simd_shuffle_xor(v, 6);
  out[6 * n + tid] = simd_broadcast(v, 7);
  out[7 * n + tid] = simd_max(v);
  out[8 * n + tid] = quad_sum(v);
  out[9 * n + tid] = simd_shuffle_and_fill_down(v, -v, 4);
  out[10 * n + tid] = simd_shuffle(v, ushort(31 - lane));
  out[11 * n + tid] = quad_max(v);
  out[12 * n + tid] = quad_prefix_inclusive_sum(v);
  out[13 * n + tid] = quad_shuffle_xor(v, 1);
}

// C = A * B for 8x8 float matrices through simdgroup_matrix.
[[kernel]] void mma8(
    device const float* a [[buffer(0)]],
    device const float* b [[buffer(1)]],
    device float* c [[buffer(2)]]) {
  simdgroup_float8x8 A, B;
  simdgroup_load(A, a, 8);
  simdgroup_load(B, b, 8);
  simdgroup_float8x8 C = make_filled_simdgroup_matrix<float, 8, 8>(0.f);
  simdgroup_multiply_accumulate(C, A, B, C);
  simdgroup_store(C, c, 8);
}

// The same through thread_elements(), with each lane placing its two
// elements itself at the coordinates `layout` says.
template <bool kAppleLayout>
[[kernel]] void mma8_by_elements(
    device const float* a [[buffer(0)]],
    device const float* b [[buffer(1)]],
    device float* c [[buffer(2)]],
    ushort lane [[thread_index_in_simdgroup]]) {
  short row, col;
  if (kAppleLayout) {
    const short qid = lane / 4;
    row = (qid & 4) + (lane / 2) % 4;
    col = (qid & 2) * 2 + (lane % 2) * 2;
  } else {
    // A plausible but wrong guess: lanes fill the matrix row by row.
    row = lane / 4;
    col = (lane % 4) * 2;
  }
  simdgroup_float8x8 A, B, C;
  A.thread_elements()[0] = a[row * 8 + col];
  A.thread_elements()[1] = a[row * 8 + col + 1];
  B.thread_elements()[0] = b[row * 8 + col];
  B.thread_elements()[1] = b[row * 8 + col + 1];
  C = make_filled_simdgroup_matrix<float, 8, 8>(0.f);
  simdgroup_multiply_accumulate(C, A, B, C);
  c[row * 8 + col] = C.thread_elements()[0];
  c[row * 8 + col + 1] = C.thread_elements()[1];
}

constant bool use_offset [[function_constant(0)]];
constant float offset [[function_constant(1)]];

[[kernel]] void with_constants(
    device float* y [[buffer(0)]],
    uint gid [[thread_position_in_grid]]) {
  y[gid] = use_offset ? y[gid] + offset : -y[gid];
}

// Whole-vector copies: clang emits them as memcpy, which is checked and
// counted like any other access.
[[kernel]] void copy_vectors(
    device const float4* x [[buffer(0)]],
    device float4* y [[buffer(1)]],
    uint gid [[thread_position_in_grid]]) {
  y[gid] = x[gid];
}

// ------------------------------ planted bugs -------------------------------

[[kernel]] void copy_vectors_past_end(
    device const float4* x [[buffer(0)]],
    device float4* y [[buffer(1)]],
    uint gid [[thread_position_in_grid]]) {
  y[gid] = x[gid + 1];
}

[[kernel]] void read_past_end(
    device const float* x [[buffer(0)]],
    device float* y [[buffer(1)]],
    uint gid [[thread_position_in_grid]]) {
  y[gid] = x[gid + 1];  // the last thread reads one element too far
}

[[kernel]] void write_before_start(
    device float* y [[buffer(0)]],
    uint gid [[thread_position_in_grid]]) {
  y[int(gid) - 1] = 1.0f;  // thread 0 writes y[-1]
}

[[kernel]] void write_far_away(
    device float* y [[buffer(0)]],
    uint gid [[thread_position_in_grid]]) {
  y[gid + (1u << 26)] = 1.0f;  // 256 MB past the end
}

[[kernel]] void read_far_before(
    device const float4* x [[buffer(0)]],
    device float* y [[buffer(1)]],
    uint gid [[thread_position_in_grid]]) {
  y[gid] = x[int(gid) - (1 << 30)].x;  // 16 GB before the start
}

[[kernel]] void missing_barrier(
    device float* y [[buffer(0)]],
    uint tid [[thread_index_in_threadgroup]],
    uint n [[threads_per_threadgroup]]) {
  threadgroup float buf[64];
  buf[tid] = float(tid);
  y[tid] = buf[(tid + 1) % n];  // reads a neighbour's write: no barrier
}

[[kernel]] void barrier_in_branch(
    device float* y [[buffer(0)]],
    uint tid [[thread_index_in_threadgroup]]) {
  if (tid < 16) {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  y[tid] = 1.0f;
}

[[kernel]] void early_return_before_barrier(
    device float* y [[buffer(0)]],
    uint tid [[thread_index_in_threadgroup]]) {
  if (tid == 5) {
    return;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  y[tid] = 1.0f;
}

[[kernel]] void different_barriers(
    device float* y [[buffer(0)]],
    uint tid [[thread_index_in_threadgroup]]) {
  if (tid % 2) {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  } else {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  y[tid] = 1.0f;
}

[[kernel]] void simd_sum_in_branch(
    device float* y [[buffer(0)]],
    uint tid [[thread_index_in_threadgroup]],
    ushort lane [[thread_index_in_simdgroup]]) {
  float v = 1.0f;
  if (lane < 16) {
    v = simd_sum(v);
  }
  y[tid] = v;
}

METAL_SIM_KERNEL("axpy_float", axpy<float>)
METAL_SIM_KERNEL("axpy_half", axpy<half>)
METAL_SIM_KERNEL("axpy_bfloat", axpy<bfloat>)
METAL_SIM_KERNEL("builtins", builtins)
METAL_SIM_KERNEL("reverse_in_threadgroup", reverse_in_threadgroup)
METAL_SIM_KERNEL("simd_functions", simd_functions)
METAL_SIM_KERNEL("mma8", mma8)
METAL_SIM_KERNEL("mma8_apple_layout", mma8_by_elements<true>)
METAL_SIM_KERNEL("mma8_wrong_layout", mma8_by_elements<false>)
METAL_SIM_KERNEL("with_constants", with_constants)
METAL_SIM_KERNEL("copy_vectors", copy_vectors)
METAL_SIM_KERNEL("copy_vectors_past_end", copy_vectors_past_end)
METAL_SIM_KERNEL("read_past_end", read_past_end)
METAL_SIM_KERNEL("write_before_start", write_before_start)
METAL_SIM_KERNEL("write_far_away", write_far_away)
METAL_SIM_KERNEL("read_far_before", read_far_before)
METAL_SIM_KERNEL("missing_barrier", missing_barrier)
METAL_SIM_KERNEL("barrier_in_branch", barrier_in_branch)
METAL_SIM_KERNEL("early_return_before_barrier", early_return_before_barrier)
METAL_SIM_KERNEL("different_barriers", different_barriers)
METAL_SIM_KERNEL("simd_sum_in_branch", simd_sum_in_branch)
"""


@pytest.fixture(scope="module")
def lib():
    return metal_sim.Library(KERNELS)


@pytest.fixture
def rng():
    return np.random.default_rng()


@pytest.mark.parametrize(
    "kernel,dtype,tol",
    [
        ("axpy_float", np.float32, 1e-6),
        ("axpy_half", np.float16, 1e-3),
        ("axpy_bfloat", "bfloat16", 1e-2),
    ],
)
def test_axpy(lib, rng, kernel, dtype, tol):
    n = 96
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    if dtype == "bfloat16":
        # bfloat as the upper 16 bits of float32 (x, y exactly representable).
        x = (x.view(np.uint32) & 0xFFFF0000).view(np.float32)
        y = (y.view(np.uint32) & 0xFFFF0000).view(np.float32)
        xb = (x.view(np.uint32) >> 16).astype(np.uint16)
        yb = (y.view(np.uint32) >> 16).astype(np.uint16)
        lib.launch(kernel, 3, 32, {0: xb, 1: yb, 2: np.float32([1.5])})
        out = (yb.astype(np.uint32) << 16).view(np.float32)
    else:
        xd, yd = x.astype(dtype), y.astype(dtype)
        lib.launch(kernel, 3, 32, {0: xd, 1: yd, 2: np.float32([1.5])})
        out = yd.astype(np.float32)
        x, y = xd.astype(np.float32), y.astype(dtype).astype(np.float32)
    ref = 1.5 * x + y
    assert np.linalg.norm(out - ref) <= tol * np.linalg.norm(ref)


def test_builtins(lib):
    grid, tg = (3, 2, 1), (8, 5, 1)  # 40 threads: one full and one partial SIMD group
    threads = (grid[0] * tg[0], grid[1] * tg[1])
    out = np.full(threads[0] * threads[1] * 12, 0xDEADBEEF, np.uint32)
    lib.launch("builtins", grid, tg, {0: out})
    out = out.reshape(threads[1], threads[0], 12)
    for gy in range(threads[1]):
        for gx in range(threads[0]):
            lx, ly = gx % tg[0], gy % tg[1]
            index = lx + tg[0] * ly
            expected = [
                gx,
                gy,
                0,
                gx // tg[0],
                gy // tg[1],
                0,
                lx,
                ly,
                index,
                index // 32,
                index % 32,
                index % 4 + 100 * tg[0],
            ]
            assert list(out[gy, gx]) == expected, (gx, gy)


def test_threadgroup_memory_and_barrier(lib, rng):
    x = rng.standard_normal(4 * 64).astype(np.float32)
    y = np.full_like(x, np.nan)
    lib.launch("reverse_in_threadgroup", 4, 64, {0: x, 1: y})
    np.testing.assert_array_equal(y, x.reshape(4, 64)[:, ::-1].reshape(-1))


@pytest.mark.parametrize("n", [64, 40])  # 40: a partial second SIMD group
def test_simd_functions(lib, rng, n):
    x = rng.integers(-8, 8, n).astype(np.float32)  # exact sums
    out = np.full(14 * n, np.nan, np.float32)
    lib.launch("simd_functions", 1, n, {0: x, 1: out})
    out = out.reshape(14, n)
    for g in range(0, n, 32):
        v = x[g : g + 32]
        w = len(v)
        lanes = np.arange(w)
        expect = [
            np.full(w, v.sum()),
            np.cumsum(v),
            np.cumsum(v) - v,
            np.where(lanes + 3 < w, v[np.minimum(lanes + 3, w - 1)], v),
            np.where(lanes >= 5, v[np.maximum(lanes - 5, 0)], v),
            np.where((lanes ^ 6) < w, v[np.minimum(lanes ^ 6, w - 1)], v),
            np.full(w, v[7]),
            np.full(w, v.max()),
            np.array([v[(i & ~3) : (i & ~3) + 4].sum() for i in lanes]),
            np.where(
                lanes + 4 < w, v[np.minimum(lanes + 4, w - 1)], -v[(lanes + 4 - w) % w]
            ),
            np.where(31 - lanes < w, v[np.minimum(31 - lanes, w - 1)], v),
            np.array([v[(i & ~3) : (i & ~3) + 4].max() for i in lanes]),
            np.array([v[(i & ~3) : i + 1].sum() for i in lanes]),
            v[lanes ^ 1],
        ]
        for row, e in enumerate(expect):
            np.testing.assert_array_equal(out[row, g : g + w], e, err_msg=f"row {row}")


def test_simdgroup_matrix(lib, rng):
    a = rng.standard_normal((8, 8)).astype(np.float32)
    b = rng.standard_normal((8, 8)).astype(np.float32)
    for kernel in ("mma8", "mma8_apple_layout"):
        c = np.full((8, 8), np.nan, np.float32)
        lib.launch(kernel, 1, 32, {0: a, 1: b, 2: c})
        np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5, err_msg=kernel)


def test_wrong_simdgroup_matrix_layout_is_caught(lib, rng):
    """A kernel that assumes another lane layout computes a wrong product."""
    a = rng.standard_normal((8, 8)).astype(np.float32)
    b = rng.standard_normal((8, 8)).astype(np.float32)
    c = np.full((8, 8), np.nan, np.float32)
    lib.launch("mma8_wrong_layout", 1, 32, {0: a, 1: b, 2: c})
    assert not np.allclose(c, a @ b, rtol=1e-3, atol=1e-3)


def test_function_constants(lib, rng):
    y = rng.standard_normal(32).astype(np.float32)
    out = y.copy()
    lib.launch("with_constants", 1, 32, {0: out}, constants={0: True, 1: 2.5})
    np.testing.assert_allclose(out, y + 2.5)
    out = y.copy()
    lib.launch("with_constants", 1, 32, {0: out}, constants={0: False, 1: 2.5})
    np.testing.assert_array_equal(out, -y)


def test_byte_counts(lib, rng):
    n = 128
    report = lib.launch(
        "axpy_float",
        4,
        32,
        {
            0: rng.standard_normal(n).astype(np.float32),
            1: np.zeros(n, np.float32),
            2: np.float32([1.0]),
        },
    )
    # x and y read, y written, a (4 bytes) read by every thread.
    assert report.device_bytes_read == 4 * n + 4 * n + 4 * n
    assert report.device_bytes_written == 4 * n


def test_vector_copies_are_counted_and_checked(lib, rng):
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = np.full_like(x, np.nan)
    report = lib.launch("copy_vectors", 1, 32, {0: x, 1: y})
    np.testing.assert_array_equal(y, x)
    assert report.device_bytes_read == x.nbytes
    assert report.device_bytes_written == y.nbytes
    with pytest.raises(MetalSimError, match="out-of-bounds device read of 16 bytes"):
        lib.launch("copy_vectors_past_end", 1, 32, {0: x, 1: y})


def test_workers_agree(lib, rng):
    x = rng.standard_normal(64 * 50).astype(np.float32)
    ys = []
    for workers in (1, 2):
        y = np.full_like(x, np.nan)
        lib.launch("reverse_in_threadgroup", 50, 64, {0: x, 1: y}, workers=workers)
        ys.append(y)
    np.testing.assert_array_equal(ys[0], ys[1])


@pytest.mark.parametrize(
    "kernel,tg,words",
    [
        (
            "read_past_end",
            32,
            [
                "out-of-bounds device read",
                "offset 128",
                "buffer(0)",
                "thread (31, 0, 0)",
            ],
        ),
        (
            "write_before_start",
            32,
            ["out-of-bounds device write", "offset -4", "thread (0, 0, 0)"],
        ),
        (
            "write_far_away",
            32,
            [
                "invalid memory access",
                "device write of 4 bytes",
                "offset 268435456 of buffer(0)",
                "outside its red zone",
            ],
        ),
        (
            "read_far_before",
            8,
            [
                "invalid memory access",
                "device read of 4 bytes",
                f"offset {-(1 << 34)} of buffer(0)",
            ],
        ),
        ("missing_barrier", 64, ["threadgroup-memory race", "no barrier"]),
        ("barrier_in_branch", 32, ["threadgroup barrier not reached by every thread"]),
        (
            "early_return_before_barrier",
            32,
            ["not reached by every thread", "thread 5 has returned"],
        ),
        ("different_barriers", 32, ["different threadgroup barriers"]),
        ("simd_sum_in_branch", 32, ["SIMD-group operation not reached by every lane"]),
    ],
)
def test_planted_bug_is_reported(lib, kernel, tg, words):
    buffers = {0: np.zeros(tg, np.float32), 1: np.zeros(tg, np.float32)}
    with pytest.raises(MetalSimError) as info:
        lib.launch(kernel, 1, tg, buffers)
    message = str(info.value)
    assert f"kernel '{kernel}'" in message and "threadgroup (0, 0, 0)" in message
    for word in words:
        assert word in message, message
