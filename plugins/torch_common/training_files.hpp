// The files a trainer keeps in its run directory: one checkpoint per finished epoch
// (<prefix>_epochNNN.pt), a CSV training log (<prefix>_train_log.csv) and the final weights
// (<prefix>_weights.pt). Shared by the ngcc and wav2pos trainers so that --resume finds and
// trims their files the same way. No LibTorch here: paths and text only.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace w2p::torch_common {

class TrainingFiles {
 public:
  TrainingFiles(std::string dir, std::string prefix);

  /// <dir>/<prefix>_epochNNN.pt for a checkpoint written after `finished_epochs` epochs.
  std::string checkpoint_path(std::int64_t finished_epochs) const;
  /// The highest-numbered checkpoint in the directory: (epochs, path), or (0, "") if none.
  std::pair<std::int64_t, std::string> last_checkpoint() const;
  std::string log_path() const;
  std::string weights_path() const;

  /// Starts the log: a fresh file with `header`, or (keep_epochs > 0, a resume) the header and
  /// the rows of epochs 1..keep_epochs of the existing log (later rows were never checkpointed
  /// and are dropped). Returns the kept rows. Throws std::runtime_error naming the file.
  std::vector<std::string> open_log(const std::string& header, std::int64_t keep_epochs) const;
  /// Appends one row (no trailing newline needed). Throws std::runtime_error naming the file.
  void append_log(const std::string& row) const;

 private:
  std::string dir_, prefix_;
};

/// Shortest round-trip-safe text of a double for logs ("0.125", "1e-05"; "" for NaN).
std::string format_number(double value);

}  // namespace w2p::torch_common
