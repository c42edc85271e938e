// Zero-copy conversion between w2p::Tensor and torch::Tensor, for LibTorch plugins only
// (the framework itself never includes LibTorch).
//
// to_torch(): the torch tensor views the w2p buffer and keeps it alive; do not write to it
// (w2p tensors from channels are shared). from_torch(): the w2p tensor views the torch
// tensor's storage (made contiguous and moved to CPU first) and keeps it alive.
#pragma once

#include <torch/types.h>

#include <memory>
#include <utility>

#include "w2p/error.hpp"
#include "w2p/tensor.hpp"

namespace w2p {

inline torch::Dtype to_torch_dtype(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return torch::kFloat32;
    case DType::kF64:
      return torch::kFloat64;
    case DType::kI32:
      return torch::kInt32;
    case DType::kI64:
      return torch::kInt64;
    case DType::kU8:
      return torch::kUInt8;
    case DType::kBool:
      return torch::kBool;
    case DType::kStr:
      break;
  }
  throw Error(ErrorKind::kType, "string tensors have no LibTorch equivalent");
}

inline DType from_torch_dtype(torch::Dtype dtype) {
  if (dtype == torch::kFloat32) return DType::kF32;
  if (dtype == torch::kFloat64) return DType::kF64;
  if (dtype == torch::kInt32) return DType::kI32;
  if (dtype == torch::kInt64) return DType::kI64;
  if (dtype == torch::kUInt8) return DType::kU8;
  if (dtype == torch::kBool) return DType::kBool;
  throw Error(ErrorKind::kType,
              std::string("unsupported LibTorch dtype ") + std::string(c10::toString(dtype)));
}

/// View of a w2p tensor as a CPU torch tensor (no copy).
inline torch::Tensor to_torch(const Tensor& tensor) {
  auto owner = tensor.owner();
  return torch::from_blob(
      const_cast<void*>(tensor.raw()), tensor.shape(), [owner](void*) mutable { owner.reset(); },
      torch::TensorOptions().dtype(to_torch_dtype(tensor.dtype())));
}

/// View of a torch tensor as a w2p tensor (no copy when already contiguous on the CPU).
inline Tensor from_torch(torch::Tensor tensor) {
  tensor = tensor.detach().to(torch::kCPU).contiguous();
  auto holder = std::make_shared<torch::Tensor>(tensor);
  void* data = holder->data_ptr();
  Shape shape(tensor.sizes().begin(), tensor.sizes().end());
  return Tensor::wrap(from_torch_dtype(tensor.scalar_type()), std::move(shape),
                      std::shared_ptr<void>(holder, holder.get()), data);
}

}  // namespace w2p
