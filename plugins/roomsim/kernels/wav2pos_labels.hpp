// wav2pos items from one simulation (spec §1.3 alignment, §1.4 labels): the 7-channel audio
// crop and the TOA/TDOA matrix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "roomsim/kernels/shoebox.hpp"
#include "roomsim/kernels/simulate_room.hpp"

namespace w2p::roomsim {

/// Time of arrival / time difference of arrival matrix, row-major [K, K] with K = 1 + M, in
/// samples: toa_0 = 0 (channel 0 is the source itself), toa_i = |s - m_i| fs / c for
/// microphone i >= 1, and T[a][b] = toa_a - toa_b. So T[i][0] = |s - m_i| fs / c,
/// T[0][i] = -T[i][0], T[i][j] = (|s - m_i| - |s - m_j|) fs / c; T is antisymmetric.
std::vector<double> tdoa_matrix(const Vec3& source, const std::vector<Vec3>& mics,
                                double sample_rate = 16000.0, double c = kSpeedOfSound);

/// Where the audio of an item is cut. Defaults are the reference's at 16 kHz.
struct CropOptions {
  std::int64_t start = 8000;       ///< first sample of the dry crop (0.5 s)
  std::int64_t length = 16000;     ///< samples per channel (1 s)
  std::int64_t global_delay = 40;  ///< delay of the RIR's fractional-delay filter, samples
  /// QUIRK(spec §1.3): the reference cuts the microphone signals at start + 41 although the
  /// simulator delays them by 40, so every microphone channel is one sample early relative to
  /// channel 0. `fix_alignment` cuts at start + global_delay instead.
  bool fix_alignment = false;

  /// Offset of the microphone crops relative to the dry crop, samples.
  std::int64_t mic_offset() const { return fix_alignment ? global_delay : global_delay + 1; }
};

/// Audio of one item, row-major [1 + M, options.length]: channel 0 is dry[start, start +
/// length), channel 1 + m is microphone m at [start + mic_offset, ... + length).
/// `mic_samples` is row-major [channels, mic_length]. Throws std::invalid_argument (naming the
/// lengths) when a window leaves its input: an utterance shorter than the crop is an error,
/// never silently zero-padded.
std::vector<float> crop_item_audio(const float* dry, std::size_t dry_length,
                                   const float* mic_samples, std::int64_t channels,
                                   std::int64_t mic_length, const CropOptions& options = {});

/// crop_item_audio for the output of ShoeboxSimulator::simulate.
std::vector<float> crop_item_audio(const float* dry, std::size_t dry_length, const MicSignals& mics,
                                   const CropOptions& options = {});

}  // namespace w2p::roomsim
