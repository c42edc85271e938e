// The epoch bookkeeping the ngcc and wav2pos trainers share: how many epochs to train, --resume
// from the last epoch checkpoint, an atomic checkpoint per finished epoch (errors name the last
// good one), and the training log whose last kept row restores the reported loss.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <w2p/node.hpp>

#include <cstdint>
#include <string>

#include "torch_common/training_files.hpp"

namespace w2p::torch_common {

class TrainerCheckpoints {
 public:
  TrainerCheckpoints(const std::string& run_dir, const std::string& prefix);

  /// Epochs to train: the node's `epochs` option when > 0, else the input stream's. A config
  /// Error when the option is fewer than the stream's.
  static std::int64_t resolve_epochs(std::int64_t option, std::int64_t stream_epochs);

  /// With `resume`, loads the directory's last epoch checkpoint into model and optimizer and
  /// returns its epoch count (0 when there is none or !resume); reports through ctx.info.
  /// An I/O Error naming the file, with `mismatch_note`, when it does not load.
  std::int64_t resume(NodeContext& ctx, bool resume, torch::nn::Module& model,
                      torch::optim::Optimizer* optimizer, const std::string& mismatch_note);

  /// What the last kept row of the log says (zeros when none was kept or a column is missing).
  struct LoggedEpoch {
    double loss = 0;
    std::int64_t steps = 0;
    double ms_per_step = 0;
  };
  /// Starts the log (TrainingFiles::open_log) and returns the columns `loss`, `steps` and
  /// `ms_per_step` of its last kept row.
  LoggedEpoch open_log(const std::string& header, std::int64_t keep_epochs);
  /// Appends a row; an I/O Error naming the file on failure.
  void append_log(const std::string& row);

  /// Writes the checkpoint after `finished` epochs (model, optimiser, scheduler state
  /// {finished, lr}, LibTorch RNG). An I/O Error naming the last good checkpoint on failure;
  /// the previous one is never touched before the new one is complete.
  void save(std::int64_t finished, const torch::nn::Module& model,
            torch::optim::Optimizer* optimizer, double lr);

  /// The note for an error that stops training: which checkpoint to go back to.
  std::string last_good_note() const;
  const std::string& last_checkpoint() const { return last_checkpoint_; }
  const TrainingFiles& files() const { return files_; }

 private:
  TrainingFiles files_;
  std::string run_dir_;
  std::string last_checkpoint_;
};

}  // namespace w2p::torch_common
