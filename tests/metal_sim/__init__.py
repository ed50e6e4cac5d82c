"""A Metal simulator: runs real ``.metal`` compute kernels on the CPU.

A :class:`Library` is built from Metal sources the way a Metal library is:
the sources (and the headers under the given include roots) are translated
(``translate.py``), compiled by clang against the MSL headers in
``include/`` with every load and store instrumented, linked with the
executor (``runtime/executor.cpp``) into a shared library, and cached by
content. :meth:`Library.launch` then runs one kernel over a grid with Metal's
semantics and its diagnostics, and reports the device bytes it moved.

Requires clang 19 (``clang++-19`` or ``$METAL_SIM_CXX``); ``.ci/run``
installs it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .translate import translate, translate_tree

HERE = Path(__file__).resolve().parent
SHIM_INCLUDE = HERE / "include"
EXECUTOR = HERE / "runtime" / "executor.cpp"
REPO = HERE.parent.parent
# The launch ABI, shared with the extension's metal-sim backend.
ABI = REPO / "csrc" / "metal" / "simulator_abi.h"
CACHE = Path(
    os.environ.get("METAL_SIM_CACHE", Path(tempfile.gettempdir()) / "metal_sim")
)
# Metal 3.1, the language level our kernels target (native bfloat).
METAL_VERSION = 310

COMMON_FLAGS = [
    "-std=c++20",
    "-O1",
    "-g",
    "-fPIC",
    "-D_FORTIFY_SOURCE=0",
    "-U_FORTIFY_SOURCE",
    "-Wno-unknown-attributes",
    "-Wno-ignored-attributes",
    "-Wno-c++17-extensions",
    "-Wno-gnu-anonymous-struct",
    "-Wno-nested-anon-types",
]
KERNEL_FLAGS = [
    "-x",
    "c++",
    "-DMETAL_SIM=1",
    f"-D__METAL_VERSION__={METAL_VERSION}",
    # Every load, store and memory copy calls the executor's checks: the
    # AddressSanitizer instrumentation in callback mode, without its run-time
    # (executor.cpp defines the callbacks).
    "-fsanitize=address",
    "-mllvm",
    "-asan-instrumentation-with-call-threshold=0",
    "-mllvm",
    "-asan-stack=0",
    "-mllvm",
    "-asan-globals=0",
    "-mllvm",
    "-asan-use-after-return=never",
]


def compiler_available() -> bool:
    """Whether the simulator's compiler is installed."""
    try:
        compiler()
    except FileNotFoundError:
        return False
    return True


def needs_compiler():
    """A pytest mark for tests that run the simulator: skipped where clang 19
    is absent (a developer machine without it), never under CI=true, where
    .ci/run installs it and its absence must fail loudly."""
    import pytest

    return pytest.mark.skipif(
        not compiler_available() and not os.environ.get("CI"),
        reason="the Metal simulator needs clang 19 (apt-get install clang-19)",
    )


class MetalSimError(RuntimeError):
    """A diagnostic from a launch (names kernel, threadgroup and thread)."""


def compiler() -> str:
    """The clang++ the simulator uses."""
    for name in (os.environ.get("METAL_SIM_CXX"), "clang++-19", "clang++"):
        if name and shutil.which(name):
            return name
    raise FileNotFoundError(
        "the Metal simulator needs clang 19: apt-get install clang-19 "
        "(or set METAL_SIM_CXX)"
    )


class _Buffer(ctypes.Structure):
    _fields_ = [
        ("index", ctypes.c_int32),
        ("writable", ctypes.c_int32),
        ("data", ctypes.c_void_p),
        ("size", ctypes.c_uint64),
        ("by_value", ctypes.c_int32),
    ]


class _Constant(ctypes.Structure):
    _fields_ = [("index", ctypes.c_int32), ("bits", ctypes.c_uint64)]


class _Launch(ctypes.Structure):
    _fields_ = [
        ("kernel", ctypes.c_char_p),
        ("grid", ctypes.c_uint32 * 3),
        ("threadgroup", ctypes.c_uint32 * 3),
        ("num_buffers", ctypes.c_int32),
        ("buffers", ctypes.POINTER(_Buffer)),
        ("num_constants", ctypes.c_int32),
        ("constants", ctypes.POINTER(_Constant)),
        ("worker_threads", ctypes.c_int32),
        ("sample_threadgroups", ctypes.c_uint64),
    ]


class _Report(ctypes.Structure):
    _fields_ = [
        ("device_bytes_read", ctypes.c_uint64),
        ("device_bytes_written", ctypes.c_uint64),
        ("threadgroups_run", ctypes.c_uint64),
        ("threadgroups_total", ctypes.c_uint64),
        ("error", ctypes.c_char * 1024),
    ]


@dataclass
class LaunchReport:
    kernel: str
    device_bytes_read: int
    device_bytes_written: int
    threadgroups_run: int
    threadgroups_total: int


def _digest(paths: list[Path], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(root.parent)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:24]


def _dim3(value) -> tuple[int, int, int]:
    value = (value,) if isinstance(value, int) else tuple(value)
    return tuple(value) + (1,) * (3 - len(value))


class Library:
    """Metal sources compiled for the simulator.

    Args:
        source (str): The Metal translation unit (what a ``.metal`` file
          holds): kernels and ``METAL_SIM_KERNEL`` / ``instantiate_kernel``
          instantiations.
        include_trees (dict[Path, str]): Headers the source includes: for
          each include directory, the subdirectory (relative to it) whose
          headers are translated and made available under the same paths.
    """

    def __init__(self, source: str, include_trees: dict[Path, str] | None = None):
        self.include_trees = {
            Path(base): sub for base, sub in (include_trees or {}).items()
        }
        trees = [base / sub for base, sub in self.include_trees.items()]
        key = _digest(
            [
                *trees,
                SHIM_INCLUDE,
                EXECUTOR,
                HERE / "translate.py",
                HERE / "__init__.py",
                ABI,
            ],
            source + compiler(),
        )
        self.path = CACHE / key / "library.so"
        if not self.path.exists():
            self._build(source, self.path.parent)
        self._lib = ctypes.CDLL(str(self.path))
        self._lib.msl_sim_launch.argtypes = [
            ctypes.POINTER(_Launch),
            ctypes.POINTER(_Report),
        ]
        self._lib.msl_sim_launch.restype = ctypes.c_int
        self._lib.msl_sim_kernel_names.restype = ctypes.c_char_p

    def _build(self, source: str, out: Path) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=CACHE))
        includes = []
        for i, (base, sub) in enumerate(self.include_trees.items()):
            translated = work / f"include{i}"
            translate_tree(base / sub, translated / sub)
            includes.append(f"-I{translated}")
        unit = work / "library.metal"
        unit.write_text(translate(source))
        cxx = compiler()
        # Translated headers first: they shadow the originals under REPO
        # (which is on the path for the launch ABI header).
        run = [cxx, *COMMON_FLAGS, *includes, f"-I{SHIM_INCLUDE}", f"-I{REPO}"]
        subprocess.run(
            [*run, "-c", str(EXECUTOR), "-o", str(work / "executor.o")],
            check=True,
            capture_output=True,
            text=True,
        )
        result = subprocess.run(
            [
                *run,
                *KERNEL_FLAGS,
                "-c",
                str(unit),
                "-o",
                str(work / "kernels.o"),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"Metal simulator: compiling the kernels failed:\n{result.stderr}"
            )
        subprocess.run(
            [
                cxx,
                "-shared",
                "-o",
                str(work / "library.so"),
                str(work / "kernels.o"),
                str(work / "executor.o"),
                "-lpthread",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        out.mkdir(parents=True, exist_ok=True)
        os.replace(work / "library.so", out / "library.so")
        shutil.rmtree(work, ignore_errors=True)

    @property
    def kernels(self) -> list[str]:
        """Host names of the kernels in the library."""
        return self._lib.msl_sim_kernel_names().decode().split()

    def launch(
        self,
        kernel: str,
        grid,
        threadgroup,
        buffers: dict[int, np.ndarray],
        constants: dict[int, bool | int | float] | None = None,
        workers: int = 0,
        sample: int = 0,
    ) -> LaunchReport:
        """Run ``kernel`` over ``grid`` threadgroups of ``threadgroup`` threads.

        ``buffers`` maps ``[[buffer(i)]]`` indices to contiguous numpy arrays;
        the kernel's writes land in them. ``constants`` maps
        ``[[function_constant(i)]]`` indices to values (bool, int as int32,
        float as float32). ``sample`` > 0 runs only that many threadgroups,
        evenly spaced over the grid (for byte counts of large launches; the
        rest of the output stays unwritten). Raises :class:`MetalSimError`
        on a diagnostic.
        """
        arrays = {i: np.ascontiguousarray(a) for i, a in buffers.items()}
        for i, a in buffers.items():
            if arrays[i] is not a:
                raise ValueError(f"buffer({i}) must be a contiguous array")
        c_buffers = (_Buffer * max(1, len(arrays)))(
            *[_Buffer(i, 1, a.ctypes.data, a.nbytes, 0) for i, a in arrays.items()]
        )
        c_constants = (_Constant * max(1, len(constants or {})))(
            *[_Constant(i, _constant_bits(v)) for i, v in (constants or {}).items()]
        )
        launch = _Launch(
            kernel.encode(),
            (ctypes.c_uint32 * 3)(*_dim3(grid)),
            (ctypes.c_uint32 * 3)(*_dim3(threadgroup)),
            len(arrays),
            c_buffers,
            len(constants or {}),
            c_constants,
            workers,
            sample,
        )
        report = _Report()
        if self._lib.msl_sim_launch(ctypes.byref(launch), ctypes.byref(report)):
            raise MetalSimError(report.error.decode())
        return LaunchReport(
            kernel,
            report.device_bytes_read,
            report.device_bytes_written,
            report.threadgroups_run,
            report.threadgroups_total,
        )


def strict_check(
    source: str, include_trees: dict[Path, str] | None = None
) -> subprocess.CompletedProcess:
    """Compile Metal ``source`` with Metal's address spaces enforced (as
    distinct clang address spaces), syntax only: a pointer of one address
    space passed where another is expected fails, as in Apple's compiler.
    Returns the finished compiler process (``returncode``, ``stderr``)."""
    with tempfile.TemporaryDirectory(prefix="strict-") as tmp:
        work = Path(tmp)
        includes = []
        for i, (base, sub) in enumerate((include_trees or {}).items()):
            translated = work / f"include{i}"
            translate_tree(Path(base) / sub, translated / sub)
            includes.append(f"-I{translated}")
        unit = work / "unit.metal"
        unit.write_text(translate(source))
        return subprocess.run(
            [
                compiler(),
                *COMMON_FLAGS,
                *includes,
                f"-I{SHIM_INCLUDE}",
                f"-I{REPO}",
                *KERNEL_FLAGS,
                "-DMETAL_SIM_STRICT=1",
                "-fsyntax-only",
                str(unit),
            ],
            capture_output=True,
            text=True,
        )


def project_sources() -> list[Path]:
    """The project's Metal translation units."""
    return sorted((REPO / "kernels" / "metal").glob("*.metal"))


def project_library() -> Library:
    """The project's own Metal kernels (kernels/metal/*.metal), built for the
    simulator: what MLX_QMM_BACKEND=metal-sim runs."""
    sources = sorted((REPO / "kernels" / "metal").glob("*.metal"))
    unit = "\n".join(f'#include "{p.relative_to(REPO).as_posix()}"' for p in sources)
    return Library(unit, include_trees={REPO: "kernels/metal"})


def _constant_bits(value) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return int(np.array(value, dtype=np.int32).view(np.uint32))
    return int(np.array(value, dtype=np.float32).view(np.uint32))
