// Silence removal as the reference's corpus filter uses it (spec §1.1): librosa.effects.split
// with top_db = 20, frame_length = 2048, hop_length = 512, ref = max.
#pragma once

#include <cstdint>
#include <vector>

namespace w2p::librispeech {

/// How centred frames are padded at the ends of the signal (librosa feature.rms pad_mode).
enum class PadMode {
  /// Zeros (np.pad mode 'constant'): librosa >= 0.10's default for feature.rms, and what the
  /// reference's filter is assumed to use.
  kConstant,
  /// Mirror without repeating the edge sample (np.pad mode 'reflect'): librosa <= 0.9's
  /// feature.rms default.
  kReflect,
};

/// Parameters of the split; the defaults are the reference's call.
struct SilenceSplitOptions {
  double top_db = 20.0;     ///< frames more than top_db below the loudest frame are silent
  int frame_length = 2048;  ///< samples per RMS frame
  int hop_length = 512;     ///< samples between frame starts
  PadMode pad_mode = PadMode::kConstant;
};

/// A half-open range of sample indices [begin, end).
struct SampleInterval {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  bool operator==(const SampleInterval& other) const {
    return begin == other.begin && end == other.end;
  }
};

/// RMS of centred frames (librosa feature.rms, center=True): the signal is padded by
/// frame_length / 2 on both sides, frame k covers padded samples [k hop, k hop + frame_length)
/// (original samples [k hop - frame_length/2, k hop + frame_length/2)), and there are
/// 1 + n / hop frames. Accumulated in double.
std::vector<double> frame_rms(const float* y, std::int64_t n, int frame_length, int hop_length,
                              PadMode pad_mode = PadMode::kConstant);

/// Frame level in dB relative to the loudest frame (librosa amplitude_to_db, ref = np.max,
/// amin = 1e-5, top_db = None): 10 log10(max(1e-10, rms^2)) - 10 log10(max(1e-10, max_rms^2)).
/// Always <= 0; frames at or below the amin floor are tied at the floor.
std::vector<double> frame_rms_to_relative_db(const std::vector<double>& rms);

/// Non-silent intervals of y[0..n), in sample indices (librosa.effects.split): frames with
/// level > -top_db dB are non-silent; each run of non-silent frames [f0, f1) becomes
/// [f0 hop, f1 hop) clipped to n. Intervals are sorted and disjoint.
/// QUIRK(spec §1.1): levels are relative to the loudest frame, so an all-zero signal (every frame
/// at the floor, 0 dB) is entirely "non-silent", as in librosa.
/// Throws std::invalid_argument for n < 0, frame_length < 1, hop_length < 1 or top_db not finite.
std::vector<SampleInterval> split_on_silence(const float* y, std::int64_t n,
                                             const SilenceSplitOptions& options = {});

/// Total number of samples in the intervals (the length of their concatenation).
std::int64_t total_samples(const std::vector<SampleInterval>& intervals);

/// Length in seconds of y with silence removed (the concatenated non-silent intervals) at
/// sample rate fs (Hz, > 0).
double voiced_duration_seconds(const float* y, std::int64_t n, double fs,
                               const SilenceSplitOptions& options = {});

/// The corpus filter: keep an utterance whose silence-removed length is strictly longer than
/// min_seconds.
inline bool keep_utterance(double voiced_seconds, double min_seconds = 2.0) {
  return voiced_seconds > min_seconds;
}

}  // namespace w2p::librispeech
