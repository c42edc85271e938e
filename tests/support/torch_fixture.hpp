// Golden fixtures as LibTorch tensors, for the parity tests of the LibTorch plugins.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>

#include "support/fixture_h5.hpp"

namespace w2p::test {

/// A dataset as a tensor with its stored shape and dtype (float32, float64 or int64).
torch::Tensor read_tensor(const H5Reader& file, const std::string& name);

/// Every dataset directly under `group` (e.g. "state_dict"), keyed by member name
/// (state_dict keys keep their dots).
std::map<std::string, torch::Tensor> read_tensor_group(const H5Reader& file,
                                                       const std::string& group);

}  // namespace w2p::test
