// Copyright © 2026 mlx-qmm contributors.
//
// MLX's CUDA headers (mlx/backend/cuda/lru_cache.h, which device.h
// includes) include <fmt/format.h>, but the mlx-cuda wheels do not ship
// the fmt headers. We use only device.h's command encoder, never the paths
// that format messages, so this stand-in only has to make those headers
// compile: fmt::format replaces each "{}" with the next argument. CMake puts
// this directory after every other include path, so a real fmt wins.

#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace fmt {

template <typename... Args>
std::string format(std::string_view pattern, const Args&... args) {
  std::ostringstream out;
  std::string_view rest = pattern;
  auto put = [&](const auto& arg) {
    const auto at = rest.find("{}");
    if (at == std::string_view::npos) {
      return;
    }
    out << rest.substr(0, at) << arg;
    rest.remove_prefix(at + 2);
  };
  (put(args), ...);
  out << rest;
  return out.str();
}

} // namespace fmt
