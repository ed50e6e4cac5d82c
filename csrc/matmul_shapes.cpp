// Copyright © 2026 mlx-qmm contributors.

#include "csrc/matmul_shapes.h"

#include <sstream>
#include <stdexcept>

#include "mlx/ops.h"

namespace mlx_qmm {

BatchedOperands broadcast_matmul_operands(
    const char* tag,
    const mx::array& x,
    const std::vector<mx::array>& weights,
    int n,
    mx::StreamOrDevice s) {
  const mx::array& w = weights.front();
  bool squeeze_m = x.ndim() == 1;
  mx::array x_mat = squeeze_m ? mx::reshape(x, {1, x.shape(0)}, s) : x;

  BatchedOperands result{{}, {}, squeeze_m};
  if (w.ndim() == 2) {
    result.arrays.push_back(x_mat);
    result.arrays.insert(result.arrays.end(), weights.begin(), weights.end());
    result.out_shape = x_mat.shape();
    result.out_shape.back() = n;
    return result;
  }

  mx::Shape x_batch(x_mat.shape().begin(), x_mat.shape().end() - 2);
  mx::Shape w_batch(w.shape().begin(), w.shape().end() - 2);
  mx::Shape batch;
  try {
    batch = mx::broadcast_shapes(x_batch, w_batch);
  } catch (const std::invalid_argument&) {
    std::ostringstream msg;
    msg << "[" << tag << "] The batch shapes of x " << x.shape() << " and w "
        << w.shape() << " cannot be broadcast together.";
    throw std::invalid_argument(msg.str());
  }

  auto with_batch = [&batch](const mx::array& a) {
    mx::Shape shape = batch;
    shape.push_back(a.shape(-2));
    shape.push_back(a.shape(-1));
    return shape;
  };
  result.arrays.push_back(mx::broadcast_to(x_mat, with_batch(x_mat), s));
  for (const auto& a : weights) {
    result.arrays.push_back(mx::broadcast_to(a, with_batch(a), s));
  }
  result.out_shape = batch;
  result.out_shape.push_back(x_mat.shape(-2));
  result.out_shape.push_back(n);
  return result;
}

} // namespace mlx_qmm
