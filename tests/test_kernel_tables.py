"""Each SIMD table of the CPU kernels against the scalar one, function by
function, outside MLX (tests/cpu_kernels/check_tables.cpp): natively for
this machine's tables (AVX2, and AVX-512 and AVX-512 VNNI where the CPU
has them), and the
arm64 NEON table under qemu-aarch64, since no
arm64 machine runs our CI. The arm64 check needs a cross compiler and qemu
(Debian: apt-get install g++-aarch64-linux-gnu qemu-user) and is skipped,
saying so, without them on a developer's machine; never under CI=true,
where .ci/run installs them and their absence must fail."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import mlx.core as mx
import mlx_qmm
import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "csrc" / "cpu"
CHECK = ROOT / "tests" / "cpu_kernels" / "check_tables.cpp"
# The scalar table converts 16-bit floats with MLX's own (header-only) types.
MLX_INCLUDE = Path(mx.__file__).resolve().parent / "include"


# CMakeLists.txt's flags for the x86 tables.
ISA_FLAGS = {
    "kernels_avx2": ["-mavx2", "-mfma", "-mf16c"],
    "kernels_avx512": [
        "-mavx512f",
        "-mavx512bw",
        "-mavx512dq",
        "-mavx512vl",
        "-mfma",
        "-mf16c",
    ],
    "kernels_avx512_vnni": [
        "-mavx512f",
        "-mavx512bw",
        "-mavx512dq",
        "-mavx512vl",
        "-mavx512vnni",
        "-mfma",
        "-mf16c",
    ],
}


def build_and_run(cxx: str, target_flags: list[str], tmp: Path, runner=()):
    """Compile the checker with the five tables (the AVX2, AVX-512 and
    AVX-512 VNNI files alone with their instruction-set flags, as CMake
    does) and run it."""
    common = ["-O2", "-std=c++20", f"-I{ROOT}", f"-I{MLX_INCLUDE}", *target_flags]
    x86 = not runner and platform.machine() in ("x86_64", "AMD64")
    objects = []
    for source in (
        "check",
        "kernels_scalar",
        "kernels_neon",
        "kernels_avx2",
        "kernels_avx512",
        "kernels_avx512_vnni",
    ):
        path = CHECK if source == "check" else KERNELS / f"{source}.cpp"
        # On other targets the x86 files compile to stubs.
        extra = ISA_FLAGS.get(source, []) if x86 else []
        obj = tmp / f"{source}.o"
        subprocess.run(
            [cxx, *common, *extra, "-c", str(path), "-o", str(obj)],
            check=True,
            capture_output=True,
            text=True,
        )
        objects.append(str(obj))
    exe = tmp / "check_tables"
    subprocess.run(
        [cxx, *common, *objects, "-o", str(exe)],
        check=True,
        capture_output=True,
        text=True,
    )
    return subprocess.run([*runner, str(exe)], capture_output=True, text=True)


def test_native_simd_table(tmp_path):
    machine = platform.machine()
    isas = mlx_qmm._loader._ext.cpu_isas()
    if machine in ("x86_64", "AMD64") and "avx2" not in isas:
        pytest.skip("this CPU lacks AVX2/FMA/F16C: no SIMD table to check")
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if cxx is None and not os.environ.get("CI"):
        pytest.skip("no C++ compiler on PATH")
    assert cxx is not None, "CI must have a C++ compiler"
    result = build_and_run(cxx, [], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    simd = [isa for isa in isas if isa != "scalar"]
    assert simd, isas
    for isa in simd:
        assert f"{isa} against scalar" in result.stdout, result.stdout
    assert result.stdout.count(" 0 failures") == len(simd), result.stdout


def test_neon_table_under_qemu(tmp_path):
    cxx = shutil.which("aarch64-linux-gnu-g++")
    qemu = shutil.which("qemu-aarch64")
    if platform.machine() in ("arm64", "aarch64"):
        pytest.skip("on arm64 test_native_simd_table checks the NEON table")
    if (cxx is None or qemu is None) and not os.environ.get("CI"):
        pytest.skip(
            "needs aarch64-linux-gnu-g++ and qemu-aarch64 "
            "(apt-get install g++-aarch64-linux-gnu qemu-user)"
        )
    assert cxx is not None and qemu is not None, ".ci/run installs both"
    result = build_and_run(cxx, ["-static"], tmp_path, runner=(qemu,))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "neon against scalar" in result.stdout
    assert "0 failures" in result.stdout
