// Copyright © 2026 mlx-qmm contributors.

#include "csrc/ops.h"

#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "csrc/backend_info.h"
#include "csrc/matmul_shapes.h"
#include "csrc/primitives.h"
#include "csrc/quantized_format.h"
#include "mlx/ops.h"

namespace mlx_qmm {

namespace {

constexpr const char* kQuantizedTag = "quantized_matmul";
constexpr const char* kDenseTag = "matmul";

[[noreturn]] void fail(const char* tag, const std::string& what) {
  std::ostringstream msg;
  msg << "[" << tag << "] " << what;
  throw std::invalid_argument(msg.str());
}

template <typename T>
std::string str(const T& value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

std::string list_values(const auto& values) {
  std::ostringstream s;
  for (size_t i = 0; i < values.size(); ++i) {
    s << (i == 0 ? "" : i + 1 == values.size() ? " or " : ", ") << values[i];
  }
  return s.str();
}

bool is_real_floating(mx::Dtype t) {
  return mx::issubdtype(t, mx::floating);
}

void check_bias(const char* tag, const std::optional<mx::array>& bias, int n) {
  if (bias && (bias->ndim() != 1 || bias->shape(0) != n)) {
    fail(
        tag,
        "bias must have shape (" + std::to_string(n) + ",), one value per " +
            "output column, but has shape " + str(bias->shape()) + ".");
  }
}

// The output of a matmul over the batched operands `ops`: our primitive
// where our kernels serve the stream's device, otherwise `stock_graph`, the
// equivalent graph of stock ops (given the operands and the cast bias).
mx::array build_matmul(
    const BatchedOperands& ops,
    const std::optional<mx::array>& bias,
    mx::Dtype dtype,
    mx::Stream stream,
    KernelFamily family,
    std::shared_ptr<mx::Primitive> primitive,
    const std::function<mx::array(
        const std::vector<mx::array>&,
        const std::optional<mx::array>&)>& stock_graph) {
  std::optional<mx::array> bias_cast;
  if (bias) {
    bias_cast = mx::astype(*bias, dtype, stream);
  }
  std::optional<mx::array> out;
  if (has_own_kernels(stream.device, family)) {
    std::vector<mx::array> inputs = ops.arrays;
    if (bias_cast) {
      inputs.push_back(*bias_cast);
    }
    out = mx::array(
        ops.out_shape, dtype, std::move(primitive), std::move(inputs));
  } else {
    out = stock_graph(ops.arrays, bias_cast);
  }
  return ops.squeeze_m ? mx::squeeze(*out, -2, stream) : *out;
}

} // namespace

mx::array quantized_matmul(
    const mx::array& x,
    const mx::array& w,
    const mx::array& scales,
    const std::optional<mx::array>& biases,
    bool transpose,
    std::optional<int> group_size_arg,
    std::optional<int> bits_arg,
    const std::string& mode,
    const std::optional<mx::array>& bias,
    mx::StreamOrDevice s) {
  const char* tag = kQuantizedTag;
  if (mode != "affine") {
    fail(
        tag,
        "mode must be 'affine' for mlx_qmm's kernels but got '" + mode +
            "'; the Python function routes other modes to stock MLX.");
  }
  if (!biases) {
    fail(tag, "Biases must be provided for affine quantization.");
  }
  int group_size = group_size_arg.value_or(kDefaultGroupSize);
  int bits = bits_arg.value_or(kDefaultBits);
  if (!is_supported_bits(bits)) {
    fail(
        tag,
        "bits must be " + list_values(kSupportedBits) + " but got " +
            std::to_string(bits) + ".");
  }
  if (!is_supported_group_size(group_size)) {
    fail(
        tag,
        "group_size must be " + list_values(kSupportedGroupSizes) +
            " but got " + std::to_string(group_size) + ".");
  }
  if (w.dtype() != mx::uint32) {
    fail(
        tag,
        "w must be uint32 (the packed weights from mx.quantize) but has dtype " +
            str(w.dtype()) + ".");
  }
  // Like stock: the pair must promote to a floating type (it is cast to the
  // output dtype below).
  if (!is_real_floating(mx::promote_types(scales.dtype(), biases->dtype()))) {
    fail(
        tag,
        "scales and biases must promote to a floating point type but have "
        "dtypes " +
            str(scales.dtype()) + " and " + str(biases->dtype()) + ".");
  }
  if (x.ndim() < 1) {
    fail(tag, "x must have at least one dimension but is a scalar.");
  }
  if (w.ndim() < 2) {
    fail(
        tag,
        "w must have at least two dimensions but has shape " + str(w.shape()) +
            ".");
  }
  if (scales.shape() != biases->shape()) {
    fail(
        tag,
        "scales and biases must have the same shape but have shapes " +
            str(scales.shape()) + " and " + str(biases->shape()) + ".");
  }
  if (scales.ndim() != w.ndim() ||
      !std::equal(
          w.shape().begin(), w.shape().end() - 1, scales.shape().begin())) {
    fail(
        tag,
        "scales must have shape (..., " + std::to_string(w.shape(-2)) +
            ", groups) matching w " + str(w.shape()) + " but has shape " +
            str(scales.shape()) + ".");
  }
  // Each row of w packs `packed_len` values, in scales.shape(-1) groups.
  int64_t packed_len = static_cast<int64_t>(scales.shape(-1)) * group_size;
  if (static_cast<int64_t>(w.shape(-1)) * kWordBits != packed_len * bits) {
    fail(
        tag,
        "The shapes of w " + str(w.shape()) + " and scales " +
            str(scales.shape()) +
            " are incompatible with group_size=" + std::to_string(group_size) +
            " and bits=" + std::to_string(bits) + ": w should have " +
            std::to_string(packed_len * bits / kWordBits) + " words per row.");
  }
  int k = transpose ? static_cast<int>(packed_len) : w.shape(-2);
  int n = transpose ? w.shape(-2) : static_cast<int>(packed_len);
  if (x.shape(-1) != k) {
    fail(
        tag,
        "Last dimension of x with shape " + str(x.shape()) +
            " does not match the expanded quantized matrix (" +
            std::to_string(transpose ? n : k) + ", " +
            std::to_string(transpose ? k : n) + ") of w " + str(w.shape()) +
            " with group_size=" + std::to_string(group_size) +
            ", bits=" + std::to_string(bits) +
            " and transpose=" + (transpose ? "true" : "false") + ".");
  }
  check_bias(tag, bias, n);

  mx::Dtype dtype = mx::promote_types(
      x.dtype(), mx::promote_types(scales.dtype(), biases->dtype()));
  if (bias) {
    dtype = mx::promote_types(dtype, bias->dtype());
  }
  if (!is_real_floating(dtype) || dtype == mx::float64) {
    fail(
        tag,
        "x must promote with scales, biases and bias to float32, float16 or "
        "bfloat16 but x has dtype " +
            str(x.dtype()) + ", giving " + str(dtype) + ".");
  }

  auto stream = mx::to_stream(s);
  auto ops = broadcast_matmul_operands(
      tag,
      mx::astype(x, dtype, stream),
      {w,
       mx::astype(scales, dtype, stream),
       mx::astype(*biases, dtype, stream)},
      n,
      stream);
  return build_matmul(
      ops,
      bias,
      dtype,
      stream,
      KernelFamily::AffineQuantized,
      std::make_shared<AffineQuantizedMatmul>(
          stream, group_size, bits, transpose, bias.has_value()),
      [&](const std::vector<mx::array>& a,
          const std::optional<mx::array>& bias_cast) {
        auto out = mx::quantized_matmul(
            a[0],
            a[1],
            a[2],
            a[3],
            transpose,
            group_size,
            bits,
            "affine",
            stream);
        return bias_cast ? mx::add(out, *bias_cast, stream) : out;
      });
}

mx::array matmul(
    const mx::array& x,
    const mx::array& w,
    bool transpose,
    const std::optional<mx::array>& bias,
    mx::StreamOrDevice s) {
  const char* tag = kDenseTag;
  if (x.ndim() < 1) {
    fail(tag, "x must have at least one dimension but is a scalar.");
  }
  if (w.ndim() < 2) {
    fail(
        tag,
        "w must have at least two dimensions but has shape " + str(w.shape()) +
            ".");
  }
  int k = transpose ? w.shape(-1) : w.shape(-2);
  int n = transpose ? w.shape(-2) : w.shape(-1);
  if (x.shape(-1) != k) {
    fail(
        tag,
        "Last dimension of x with shape " + str(x.shape()) + " must match " +
            (transpose ? "the last" : "the second to last") +
            " dimension of w with shape " + str(w.shape()) +
            " (transpose=" + (transpose ? "true" : "false") + ").");
  }
  check_bias(tag, bias, n);

  mx::Dtype dtype = mx::promote_types(x.dtype(), w.dtype());
  if (bias) {
    dtype = mx::promote_types(dtype, bias->dtype());
  }
  if (!is_real_floating(dtype)) {
    fail(
        tag,
        "x and w must promote to a floating point type but have dtypes " +
            str(x.dtype()) + " and " + str(w.dtype()) + ", giving " +
            str(dtype) + ".");
  }

  auto stream = mx::to_stream(s);
  auto ops = broadcast_matmul_operands(
      tag,
      mx::astype(x, dtype, stream),
      {mx::astype(w, dtype, stream)},
      n,
      stream);
  return build_matmul(
      ops,
      bias,
      dtype,
      stream,
      KernelFamily::Dense,
      std::make_shared<DenseMatmul>(stream, transpose, bias.has_value()),
      [&](const std::vector<mx::array>& a,
          const std::optional<mx::array>& bias_cast) {
        auto w_op = transpose ? mx::swapaxes(a[1], -1, -2, stream) : a[1];
        return bias_cast ? mx::addmm(*bias_cast, a[0], w_op, 1.0f, 1.0f, stream)
                         : mx::matmul(a[0], w_op, stream);
      });
}

} // namespace mlx_qmm
