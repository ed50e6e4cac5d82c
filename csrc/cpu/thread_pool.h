// Copyright © 2026 mlx-qmm contributors.
//
// A persistent pool of worker threads for the CPU kernels. MLX runs each
// primitive on its stream's single thread; the kernels fan their independent
// tiles out over all cores with parallel_for.

#pragma once

#include <cstdint>
#include <functional>

namespace mlx_qmm::cpu {

// Runs task(i) for every i in [0, num_tasks), spread over the pool and the
// calling thread; returns when all have finished. Tasks must be independent.
// Small jobs (num_tasks == 1) run inline.
void parallel_for(int64_t num_tasks, const std::function<void(int64_t)>& task);

// Threads that parallel_for uses (workers plus the caller).
int concurrency();

} // namespace mlx_qmm::cpu
