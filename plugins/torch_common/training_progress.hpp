// Step counting and an ETA for the trainers' status line. The trainers' input streams are
// usually read ahead completely (stored items are cheap), so the sources' ETA says nothing about
// training time; this one extrapolates the mean step time over the steps left in the schedule.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace w2p::torch_common {

class TrainingProgress {
 public:
  explicit TrainingProgress(std::int64_t epochs = 0) : epochs_(epochs) {}

  /// A training step of `seconds` finished in epoch `epoch` (0-based).
  void step(std::int64_t epoch, double seconds) {
    epoch_ = epoch;
    ++steps_in_epoch_;
    ++steps_;
    seconds_ += seconds;
  }
  /// After --resume: the last logged epoch's step count and mean step time stand in for an
  /// epoch seen by this run, so the ETA shows from the first step (no-op when steps <= 0).
  void resume(std::int64_t steps_per_epoch, double seconds_per_step) {
    if (steps_per_epoch <= 0 || seconds_per_step <= 0) return;
    steps_per_epoch_ = steps_ = steps_per_epoch;
    seconds_ = static_cast<double>(steps_per_epoch) * seconds_per_step;
  }
  /// The epoch ended: its step count sizes the epochs still to come.
  void end_epoch() {
    steps_per_epoch_ = steps_in_epoch_;
    steps_in_epoch_ = 0;
  }

  /// "epoch 3/30 step 12/137 ETA 1h04m" (step total and ETA once an epoch has been seen).
  std::string text() const {
    std::string s = "epoch " + std::to_string(epoch_ + 1) + "/" + std::to_string(epochs_) +
                    " step " + std::to_string(steps_in_epoch_);
    if (steps_per_epoch_ <= 0 || steps_ <= 0) return s;
    s += "/" + std::to_string(steps_per_epoch_);
    const std::int64_t left_in_epoch =
        steps_per_epoch_ > steps_in_epoch_ ? steps_per_epoch_ - steps_in_epoch_ : 0;
    const std::int64_t left = (epochs_ - epoch_ - 1) * steps_per_epoch_ + left_in_epoch;
    return s + " ETA " +
           duration(static_cast<double>(left) * seconds_ / static_cast<double>(steps_));
  }

  /// "45s", "12m30s", "5h04m", "3d07h".
  static std::string duration(double seconds) {
    const auto t = static_cast<long long>(seconds + 0.5);
    char buf[32];
    if (t < 60) {
      std::snprintf(buf, sizeof buf, "%llds", t);
    } else if (t < 3600) {
      std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
    } else if (t < 86400) {
      std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, t % 3600 / 60);
    } else {
      std::snprintf(buf, sizeof buf, "%lldd%02lldh", t / 86400, t % 86400 / 3600);
    }
    return buf;
  }

 private:
  std::int64_t epochs_;
  std::int64_t epoch_ = 0;
  std::int64_t steps_in_epoch_ = 0, steps_per_epoch_ = 0, steps_ = 0;
  double seconds_ = 0;
};

}  // namespace w2p::torch_common
