#include "librispeech/kernels/silence_split.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace w2p::librispeech {

namespace {

// librosa amplitude_to_db's amin = 1e-5, squared because the level is taken on power.
constexpr double kPowerFloor = 1e-10;

void check_framing(std::int64_t n, int frame_length, int hop_length) {
  if (n < 0) throw std::invalid_argument("silence split: negative signal length");
  if (frame_length < 1 || hop_length < 1) {
    throw std::invalid_argument("silence split: frame_length and hop_length must be >= 1, got " +
                                std::to_string(frame_length) + " and " +
                                std::to_string(hop_length));
  }
}

// Index into y of padded position i (relative to the signal start) under np.pad 'reflect'.
// Repeated reflection (period 2 (n - 1)) covers pads longer than the signal, as numpy does.
std::int64_t reflect_index(std::int64_t i, std::int64_t n) {
  if (n == 1) return 0;
  const std::int64_t period = 2 * (n - 1);
  std::int64_t r = i % period;
  if (r < 0) r += period;
  return r < n ? r : period - r;
}

}  // namespace

std::vector<double> frame_rms(const float* y, std::int64_t n, int frame_length, int hop_length,
                              PadMode pad_mode) {
  check_framing(n, frame_length, hop_length);
  // util.frame on the padded signal of length n + 2 (frame_length / 2): 1 + (padded - frame) / hop
  // frames; for odd frame_length the padded signal is one sample shorter than n + frame_length.
  const std::int64_t half = frame_length / 2;
  const std::int64_t padded = n + 2 * half;
  if (padded < frame_length) return {};
  const std::int64_t frames = 1 + (padded - frame_length) / hop_length;
  std::vector<double> rms(static_cast<std::size_t>(frames));
  for (std::int64_t k = 0; k < frames; ++k) {
    const std::int64_t first = k * hop_length - half;  // original index of the frame's 1st sample
    const std::int64_t last = first + frame_length;    // one past the end
    double sum = 0.0;
    if (pad_mode == PadMode::kConstant || n == 0) {
      // Zero padding contributes nothing: sum over the part inside the signal only.
      for (std::int64_t t = std::max<std::int64_t>(first, 0); t < std::min(last, n); ++t) {
        const double v = y[t];
        sum += v * v;
      }
    } else {
      for (std::int64_t t = first; t < last; ++t) {
        const double v = y[(t >= 0 && t < n) ? t : reflect_index(t, n)];
        sum += v * v;
      }
    }
    rms[static_cast<std::size_t>(k)] = std::sqrt(sum / static_cast<double>(frame_length));
  }
  return rms;
}

std::vector<double> frame_rms_to_relative_db(const std::vector<double>& rms) {
  double loudest = 0.0;
  for (double r : rms) loudest = std::max(loudest, r);
  const double reference_db = 10.0 * std::log10(std::max(kPowerFloor, loudest * loudest));
  std::vector<double> db(rms.size());
  for (std::size_t k = 0; k < rms.size(); ++k) {
    db[k] = 10.0 * std::log10(std::max(kPowerFloor, rms[k] * rms[k])) - reference_db;
  }
  return db;
}

std::vector<SampleInterval> split_on_silence(const float* y, std::int64_t n,
                                             const SilenceSplitOptions& options) {
  if (!std::isfinite(options.top_db)) {
    throw std::invalid_argument("silence split: top_db must be finite");
  }
  const std::vector<double> db = frame_rms_to_relative_db(
      frame_rms(y, n, options.frame_length, options.hop_length, options.pad_mode));
  std::vector<SampleInterval> intervals;
  const std::int64_t frames = static_cast<std::int64_t>(db.size());
  std::int64_t k = 0;
  while (k < frames) {
    if (!(db[static_cast<std::size_t>(k)] > -options.top_db)) {
      ++k;
      continue;
    }
    const std::int64_t start = k;
    while (k < frames && db[static_cast<std::size_t>(k)] > -options.top_db) ++k;
    // librosa frames_to_samples (frame * hop) then np.minimum(edges, n). Like librosa, an
    // interval may become empty after clipping (a run that starts at the last frame with
    // n % hop == 0); it is kept, so the interval count matches librosa's.
    intervals.push_back(
        {std::min(start * options.hop_length, n), std::min(k * options.hop_length, n)});
  }
  return intervals;
}

std::int64_t total_samples(const std::vector<SampleInterval>& intervals) {
  std::int64_t total = 0;
  for (const SampleInterval& interval : intervals) total += interval.end - interval.begin;
  return total;
}

double voiced_duration_seconds(const float* y, std::int64_t n, double fs,
                               const SilenceSplitOptions& options) {
  if (!(fs > 0.0)) throw std::invalid_argument("voiced_duration_seconds: fs must be > 0");
  return static_cast<double>(total_samples(split_on_silence(y, n, options))) / fs;
}

}  // namespace w2p::librispeech
