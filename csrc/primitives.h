// Copyright © 2026 mlx-qmm contributors.
//
// Our MLX primitives. Their names differ from MLX's own (QuantizedMatmul,
// Matmul) so that graphs, mx.export_to_dot and profiles show which kernels
// ran.
//
// Inputs, as built by the ops (csrc/ops.cpp, batching in matmul_shapes.h):
//   AffineQuantizedMatmul  x [..., M, K], w, scales, biases[, bias [N]]
//   DenseMatmul            x [..., M, K], w[, bias [N]]
// all of the output dtype except w of the quantized primitive (uint32).

#pragma once

#include "mlx/primitives.h"

namespace mlx_qmm {

namespace mx = mlx::core;

class AffineQuantizedMatmul : public mx::UnaryPrimitive {
 public:
  AffineQuantizedMatmul(
      mx::Stream stream,
      int group_size,
      int bits,
      bool transpose,
      bool has_bias)
      : mx::UnaryPrimitive(stream),
        group_size_(group_size),
        bits_(bits),
        transpose_(transpose),
        has_bias_(has_bias) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  std::vector<mx::array> jvp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& tangents,
      const std::vector<int>& argnums) override;
  std::vector<mx::array> vjp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& cotangents,
      const std::vector<int>& argnums,
      const std::vector<mx::array>& outputs) override;
  std::pair<std::vector<mx::array>, std::vector<int>> vmap(
      const std::vector<mx::array>& inputs,
      const std::vector<int>& axes) override;

  const char* name() const override {
    return "QmmAffineQuantizedMatmul";
  }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(
      const std::vector<mx::array>& inputs) override;

  int group_size() const {
    return group_size_;
  }
  int bits() const {
    return bits_;
  }
  bool transpose() const {
    return transpose_;
  }
  bool has_bias() const {
    return has_bias_;
  }

 private:
  int group_size_;
  int bits_;
  bool transpose_;
  bool has_bias_;
};

class DenseMatmul : public mx::UnaryPrimitive {
 public:
  DenseMatmul(mx::Stream stream, bool transpose, bool has_bias)
      : mx::UnaryPrimitive(stream),
        transpose_(transpose),
        has_bias_(has_bias) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  std::vector<mx::array> jvp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& tangents,
      const std::vector<int>& argnums) override;
  std::vector<mx::array> vjp(
      const std::vector<mx::array>& primals,
      const std::vector<mx::array>& cotangents,
      const std::vector<int>& argnums,
      const std::vector<mx::array>& outputs) override;
  std::pair<std::vector<mx::array>, std::vector<int>> vmap(
      const std::vector<mx::array>& inputs,
      const std::vector<int>& axes) override;

  const char* name() const override {
    return "QmmDenseMatmul";
  }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(
      const std::vector<mx::array>& inputs) override;

  bool transpose() const {
    return transpose_;
  }
  bool has_bias() const {
    return has_bias_;
  }

 private:
  bool transpose_;
  bool has_bias_;
};

} // namespace mlx_qmm
