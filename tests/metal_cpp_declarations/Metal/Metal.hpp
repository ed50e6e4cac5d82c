// Declarations standing in for Apple's metal-cpp (<Metal/Metal.hpp>) on
// Linux: just the names and signatures that MLX's Metal headers
// (mlx/backend/metal/device.h) and csrc/metal/eval_metal.cpp use, so that
// tests/test_metal_encoder.py can compile eval_metal.cpp against MLX's real
// Metal API without a Mac. Signatures follow metal-cpp; nothing here is
// ever linked or run.

#pragma once

#include <cstdint>

namespace NS {

using UInteger = std::uintptr_t;

template <typename T>
class SharedPtr {
 public:
  T* get() const {
    return ptr_;
  }
  T* operator->() const {
    return ptr_;
  }

 private:
  T* ptr_ = nullptr;
};

class AutoreleasePool;
class Error;
class String;

} // namespace NS

namespace MTL {

enum DataType : NS::UInteger {
  DataTypeNone = 0,
  DataTypeInt = 29,
  DataTypeBool = 53,
};

struct Size {
  Size(NS::UInteger width, NS::UInteger height, NS::UInteger depth)
      : width(width), height(height), depth(depth) {}
  NS::UInteger width;
  NS::UInteger height;
  NS::UInteger depth;
};

class Allocation;
class Buffer;
class CommandBuffer;
class CommandQueue;
class ComputePipelineState;
class Device;
class Fence;
class Function;
class Library;
class LinkedFunctions;
class ResidencySet;
class Resource;

class ComputeCommandEncoder {
 public:
  void setComputePipelineState(const ComputePipelineState* state);
  void setBytes(const void* bytes, NS::UInteger length, NS::UInteger index);
  void setThreadgroupMemoryLength(NS::UInteger length, NS::UInteger index);
};

} // namespace MTL
