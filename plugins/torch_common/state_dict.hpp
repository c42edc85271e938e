// PyTorch-compatible state_dicts for LibTorch modules.
//
// The keys are PyTorch's module paths ("backbone.conv.1.weight"), so a state_dict saved by the
// reference loads into our modules and the other way round (spec §5). Threading: the functions
// only read/write the module's tensors; do not call them while another thread runs the module.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace w2p::torch_common {

/// A state_dict in PyTorch's order: key -> tensor (shallow: the tensors alias the module's).
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

/// Keys and tensors of `module` in PyTorch's state_dict order: for each module its own
/// parameters (registration order), then its own buffers, then its children recursively
/// (registration order), keys joined with '.'. Undefined (optional) tensors are skipped.
StateDict state_dict(const torch::nn::Module& module);

/// The same as a map (key -> tensor), e.g. for load_state_dict.
std::map<std::string, torch::Tensor> to_map(const StateDict& state);

/// Keys of `state` that start with `prefix`, with the prefix removed ("ngcc." strips one level).
std::map<std::string, torch::Tensor> strip_prefix(const std::map<std::string, torch::Tensor>& state,
                                                  const std::string& prefix);

/// What load_state_dict found besides the matched keys (filled only when strict = false).
struct LoadResult {
  std::vector<std::string> missing_keys;     ///< in the module, not in the values
  std::vector<std::string> unexpected_keys;  ///< in the values, not in the module
};

/// Copies `values` into the module's parameters and buffers (under NoGradGuard, converting the
/// dtype and device to the destination's). Shape mismatches always throw std::runtime_error
/// listing key, expected shape and got shape. With `strict`, missing or unexpected keys throw too
/// (one message listing all problems); nothing is copied when it throws.
LoadResult load_state_dict(torch::nn::Module& module,
                           const std::map<std::string, torch::Tensor>& values, bool strict = true);

/// Deep copy of a state_dict (cloned, detached tensors), e.g. to snapshot a model.
StateDict clone_state_dict(const StateDict& state);

}  // namespace w2p::torch_common
