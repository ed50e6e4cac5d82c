#!/usr/bin/env bash
# Build, test and benchmark mlx-qmm's CUDA backend on an NVIDIA machine, in
# one go:
#
#   bash bench/cuda_device.sh [OUT_DIR]
#
# Needs MLX's CUDA build importable (mlx[cuda13]==0.32.4, or the offline
# wheels of ../shared/tools/mlx-cuda-wheels), nanobind, scikit-build-core,
# CMake, nvcc, pytest and hypothesis. Writes pytest.log, bench.log and
# bench.json to OUT_DIR (default $OUT, else /tmp/mlx-qmm-cuda).
#
# MLX_QMM_PREBUILT=DIR skips the build and imports the mlx_qmm package in
# DIR (one built elsewhere for this Python and MLX); MLX_QMM_BENCH_ARGS
# replaces the benchmark's arguments; MLX_QMM_PYTEST_ARGS adds pytest's;
# MLX_QMM_PYTEST_JOBS=N runs the suite as N pytest processes side by side,
# each on every Nth collected test (the suite is bound by its CPU-side
# references, about 15 minutes in one process; the GPU has room for all).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-${OUT:-/tmp/mlx-qmm-cuda}}
mkdir -p "$out"
cd "$here"

python3 -c 'import mlx.core as mx; print("mlx", mx.__version__, mx.default_device())' || exit 1
"${CXX:-g++}" --version | head -1; /usr/bin/g++ --version 2>/dev/null | head -1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv

if [ -n "${MLX_QMM_PREBUILT:-}" ]; then
  export PYTHONPATH=$MLX_QMM_PREBUILT${PYTHONPATH:+:$PYTHONPATH}
else
  # MLX's CMake package looks for cuDNN; the pip wheel of it has the headers
  # and libraries under site-packages/nvidia/cudnn.
  cudnn=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null ||
    python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cudnn"))')
  # The system compiler where there is one: an extension built on our H100
  # machine by the GCC first on PATH (/opt/gcc) crashed on its first C++
  # exception, one built by Debian's g++ 12 did not. A libstdc++ mismatch
  # is our guess, not established (README, install notes).
  if [ -x /usr/bin/g++ ] && [ -z "${CXX:-}" ]; then
    export CC=/usr/bin/gcc CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++
  fi
  site=/tmp/mlx-qmm-site
  rm -rf "$site"
  start=$(date +%s)
  CMAKE_ARGS="-DCUDNN_INCLUDE_PATH=$cudnn/include -DCUDNN_LIBRARY_PATH=$cudnn/lib" \
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    python3 -m pip install --no-build-isolation --no-deps --no-compile -q \
    --target "$site" . 2>&1 | tee "$out/build.log" | tail -20
  echo "build: $(($(date +%s) - start)) s"
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
fi
# Run from outside the source tree so that `import mlx_qmm` is the build.
python3 -c 'import mlx_qmm, json; print(mlx_qmm.__file__); print(json.dumps(mlx_qmm.backend_info()["kernels"], indent=1))' || exit 1

# The whole suite, on MLX's default device (the GPU).
jobs=${MLX_QMM_PYTEST_JOBS:-1}
start=$(date +%s)
if [ "$jobs" -le 1 ]; then
  # shellcheck disable=SC2086
  PYTHONUNBUFFERED=1 python3 -m pytest -q -p no:cacheprovider tests ${MLX_QMM_PYTEST_ARGS:-} 2>&1 |
    tee "$out/pytest.log" | tail -40
else
  shards=$(mktemp -d)
  python3 -m pytest --collect-only -q -p no:cacheprovider tests | grep "::" > "$shards/ids"
  split -n "r/$jobs" -d "$shards/ids" "$shards/shard."
  for f in "$shards"/shard.*; do
    # Test ids may hold spaces: one argument a line.
    mapfile -t ids < "$f"
    # shellcheck disable=SC2086
    PYTHONUNBUFFERED=1 python3 -m pytest -q -p no:cacheprovider ${MLX_QMM_PYTEST_ARGS:-} \
      "${ids[@]}" > "$f.log" 2>&1 &
  done
  wait
  cat "$shards"/shard.*.log > "$out/pytest.log"
  grep -hE "^(FAILED|ERROR)" "$out/pytest.log" | head -40
  echo "collected: $(wc -l < "$shards/ids") tests in $jobs processes"
  # Each process ends with its own counts: add them up.
  python3 - "$shards"/shard.*.log <<'SUM'
import re, sys
totals = {}
for path in sys.argv[1:]:
    lines = [l for l in open(path) if re.search(r"\d+ (passed|failed|skipped|error)", l)]
    print(path.rsplit("/", 1)[-1], lines[-1].strip() if lines else "no summary line")
    for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)", lines[-1] if lines else ""):
        totals[what] = totals.get(what, 0) + int(n)
print("suite:", ", ".join(f"{n} {what}" for what, n in sorted(totals.items())))
SUM
  rm -rf "$shards"
fi
echo "suite took $(($(date +%s) - start)) s"

# The benchmark's target rows (issue 7): bfloat16, group 64.
# shellcheck disable=SC2086
PYTHONUNBUFFERED=1 python3 -m mlx_qmm.bench --device gpu \
  ${MLX_QMM_BENCH_ARGS:---shape 14336x4096 4096x14336 --m 1 8 32 512 2048 --bits 4 8 --dtype bfloat16} \
  --json "$out/bench.json" 2>&1 | tee "$out/bench.log" | tail -60
