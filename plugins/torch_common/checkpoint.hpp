// Training checkpoints: model state, optimiser state, epoch, scheduler state and RNG state in
// one file (torch::serialize archive), written atomically (`<path>.tmp`, fsync, rename), so a
// crash or a failed write never leaves a truncated checkpoint in place of the previous one.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace w2p::torch_common {

/// Everything a checkpoint holds besides the model and optimiser tensors.
struct CheckpointMeta {
  int64_t epoch = 0;                    ///< next epoch to run (or the one finished; caller's rule)
  std::vector<double> scheduler_state;  ///< opaque to us
  torch::Tensor torch_rng_state;        ///< default CPU generator state (capture_torch_rng_state)
  std::vector<uint64_t> rng_words;      ///< opaque, e.g. a std::mt19937_64 state
};

/// State of LibTorch's default CPU generator, and setting it back.
torch::Tensor capture_torch_rng_state();
void restore_torch_rng_state(const torch::Tensor& state);

/// Writes model state_dict (PyTorch keys), optimiser state (if `optimizer` is not null) and
/// `meta` to `path` atomically. Throws std::runtime_error naming the path on failure (the old
/// file, if any, is left untouched).
void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const CheckpointMeta& meta);

/// Loads a checkpoint written by save_checkpoint into `model` (strict keys) and `optimizer`
/// (if not null; its parameter groups must be built the same way), returns the meta data. Does
/// not touch the RNG: call restore_torch_rng_state(meta.torch_rng_state) if wanted.
CheckpointMeta load_checkpoint(const std::string& path, torch::nn::Module& model,
                               torch::optim::Optimizer* optimizer);

}  // namespace w2p::torch_common
