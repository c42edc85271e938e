#include "torch_common/trainer_checkpoints.hpp"

#include <w2p/error.hpp>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <vector>

#include "torch_common/checkpoint.hpp"

namespace w2p::torch_common {
namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream in(line);
  for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
  return cells;
}

}  // namespace

TrainerCheckpoints::TrainerCheckpoints(const std::string& run_dir, const std::string& prefix)
    : files_(run_dir, prefix), run_dir_(run_dir) {}

std::int64_t TrainerCheckpoints::resolve_epochs(std::int64_t option, std::int64_t stream_epochs) {
  if (option > 0 && stream_epochs > option) {
    throw Error(ErrorKind::kConfig, "option 'epochs': " + std::to_string(option) +
                                        " is fewer than the " + std::to_string(stream_epochs) +
                                        " epochs of the input stream")
        .note("expected epochs >= the stream's epochs (0 = take the stream's)");
  }
  return option > 0 ? option : stream_epochs;
}

std::int64_t TrainerCheckpoints::resume(NodeContext& ctx, bool resume, torch::nn::Module& model,
                                        torch::optim::Optimizer* optimizer,
                                        const std::string& mismatch_note) {
  if (!resume) return 0;
  const auto [epoch, path] = files_.last_checkpoint();
  if (epoch == 0) {
    ctx.info("--resume: no checkpoint in " + run_dir_ + ", starting at epoch 0");
    return 0;
  }
  std::int64_t done = 0;
  try {
    done = load_checkpoint(path, model, optimizer).epoch;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kIo, "cannot resume from checkpoint '" + path + "': " + e.what())
        .note(mismatch_note);
  }
  last_checkpoint_ = path;
  ctx.info("resuming after epoch " + std::to_string(done) + " from " + path);
  return done;
}

TrainerCheckpoints::LoggedEpoch TrainerCheckpoints::open_log(const std::string& header,
                                                             std::int64_t keep_epochs) {
  std::vector<std::string> kept;
  try {
    kept = files_.open_log(header, keep_epochs);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kIo, e.what());
  }
  LoggedEpoch last;
  if (kept.empty()) return last;
  const std::vector<std::string> names = split_csv(header), values = split_csv(kept.back());
  const auto column = [&](const char* name) -> double {
    const auto it = std::find(names.begin(), names.end(), name);
    const auto i = static_cast<std::size_t>(it - names.begin());
    if (it == names.end() || i >= values.size() || values[i].empty()) return 0.0;
    return std::strtod(values[i].c_str(), nullptr);
  };
  last.loss = column("loss");
  last.steps = static_cast<std::int64_t>(column("steps"));
  last.ms_per_step = column("ms_per_step");
  return last;
}

void TrainerCheckpoints::append_log(const std::string& row) {
  try {
    files_.append_log(row);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kIo, e.what());
  }
}

void TrainerCheckpoints::save(std::int64_t finished, const torch::nn::Module& model,
                              torch::optim::Optimizer* optimizer, double lr) {
  CheckpointMeta meta;
  meta.epoch = finished;
  meta.scheduler_state = {static_cast<double>(finished), lr};
  meta.torch_rng_state = capture_torch_rng_state();
  const std::string path = files_.checkpoint_path(finished);
  try {
    save_checkpoint(path, model, optimizer, meta);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kIo, std::string("cannot write checkpoint: ") + e.what())
        .note(last_good_note());
  }
  last_checkpoint_ = path;
}

std::string TrainerCheckpoints::last_good_note() const {
  return last_checkpoint_.empty() ? std::string("no checkpoint written yet")
                                  : "last good checkpoint: " + last_checkpoint_;
}

}  // namespace w2p::torch_common
