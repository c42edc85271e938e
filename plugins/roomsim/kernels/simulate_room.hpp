// One shoebox simulation as the wav2pos reference runs it (pyroomacoustics ShoeBox:
// add_source, add_microphone, simulate): image sources, one RIR per microphone, optional RIR
// high-pass, full convolution of the dry signal with every RIR.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "roomsim/kernels/rir_builder.hpp"
#include "roomsim/kernels/shoebox.hpp"

namespace w2p::roomsim {

/// Options of the impulse-response synthesis. Defaults are the reference's.
struct RirOptions {
  int frac_delay_length = 81;  ///< taps of the fractional-delay filter (odd)
  int lut_granularity = 20;    ///< sinc table points per sample
  /// pyroomacoustics' `rir_hpf_enable`: zero-phase 2nd-order Butterworth high-pass on every
  /// RIR. Off in the wav2pos reference (pyroomacoustics 0.7.x had none).
  bool high_pass = false;
  double high_pass_cutoff_hz = 10.0;  ///< -3 dB point of the high-pass
  /// Sum the fractional-delay filters in the reference's order (bit-identical RIRs, ~10x
  /// slower in reverberant rooms) instead of the polyphase grid, which agrees with it to float
  /// rounding (see FractionalDelayTable::accumulate_polyphase).
  bool exact_summation = false;
};

/// Microphone signals, row-major [channels, length].
struct MicSignals {
  std::int64_t channels = 0;
  std::int64_t length = 0;
  std::vector<float> samples;
  const float* channel(std::int64_t m) const { return samples.data() + m * length; }
};

/// Length of the reference's microphone signals: max RIR length + signal length - 1, rounded
/// up to even.
std::int64_t mic_signal_length(const std::vector<std::vector<float>>& rirs,
                               std::size_t signal_length);

/// A reusable simulator: holds the fractional-delay table built once from the options.
/// Const methods are thread-safe; one instance may serve all items of a pipeline.
class ShoeboxSimulator {
 public:
  /// Throws std::invalid_argument for an invalid filter length, granularity or cutoff.
  explicit ShoeboxSimulator(const RirOptions& options = {});

  const RirOptions& options() const { return options_; }
  const FractionalDelayTable& table() const { return table_; }

  /// One RIR per microphone (metres, inside the room or on its walls), lengths as
  /// rir_length_for. Validates the room, the source and every microphone
  /// (std::invalid_argument naming the bad value).
  std::vector<std::vector<float>> compute_rirs(const ShoeboxRoom& room, const Vec3& source,
                                               const std::vector<Vec3>& mics) const;

  /// The microphone signals: each RIR convolved (full) with `signal` (n samples at
  /// room.sample_rate), zero-padded to mic_signal_length(). The RIRs are returned in `rirs`
  /// when it is not null.
  MicSignals simulate(const ShoeboxRoom& room, const Vec3& source, const std::vector<Vec3>& mics,
                      const float* signal, std::size_t n,
                      std::vector<std::vector<float>>* rirs = nullptr) const;

 private:
  RirOptions options_;
  FractionalDelayTable table_;
};

}  // namespace w2p::roomsim
