// Copyright © 2026 mlx-qmm contributors.
//
// Explicit kernel instantiation under a host name, for Apple's compiler and
// for the Metal simulator (tests/metal_sim), which registers the kernel with
// its executor instead.

#pragma once

#ifdef METAL_SIM
#define QMM_INSTANTIATE_KERNEL(host_name_, ...) \
  METAL_SIM_KERNEL(host_name_, __VA_ARGS__)
#else
#define QMM_INSTANTIATE_KERNEL(host_name_, ...) \
  template                                      \
      [[host_name(host_name_)]] [[kernel]] decltype(__VA_ARGS__) __VA_ARGS__;
#endif
