"""Benchmark mlx-qmm against stock MLX: ``python -m mlx_qmm.bench`` from a
source checkout. See ``python bench/bench_qmm.py --help``."""

import sys

from mlx_qmm.bench import main

if __name__ == "__main__":
    sys.exit(main())
