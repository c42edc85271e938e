// Room impulse responses from image sources: every image adds a windowed-sinc fractional delay
// of its propagation time, scaled by attenuation / distance (spec §1.3).
#pragma once

#include <cstddef>
#include <vector>

#include "roomsim/kernels/shoebox.hpp"

namespace w2p::roomsim {

/// The fractional-delay interpolator of pyroomacoustics: an odd-length Hann-windowed sinc read
/// from a table sampled every 1/granularity sample with linear interpolation.
///
/// The table is laid out by phase so that the taps of one image are contiguous (the inner loop
/// vectorises); every value and every float operation is the reference's, so the result is the
/// reference's to the last bit for the same inputs. Immutable after construction: one instance
/// may be shared by any number of threads.
class FractionalDelayTable {
 public:
  /// `length` taps (odd, >= 3), table granularity `granularity` points per sample (>= 1).
  /// Throws std::invalid_argument otherwise.
  explicit FractionalDelayTable(int length = 81, int granularity = 20);

  int length() const { return length_; }
  int granularity() const { return granularity_; }
  /// (length - 1) / 2: the delay the filter adds, in samples (40 for 81 taps).
  int half_length() const { return (length_ - 1) / 2; }

  /// Adds the filter of one arrival to `out`: `out[f + k] += amplitude * hann[k] *
  /// sinc(f + k - sample_position)` for k in [0, length) with f = floor(sample_position) -
  /// half_length(), the sinc read from the table. `sample_position` in samples (already
  /// including half_length()); the caller guarantees 0 <= f and f + length <= out size.
  void accumulate(float sample_position, float amplitude, float* out) const;
  /// accumulate() for n arrivals in order (the summation order of the reference).
  void accumulate_many(const float* sample_positions, const float* amplitudes, std::size_t n,
                       float* out) const;
  /// accumulate_many() up to float rounding, in O(1) per arrival plus a dense FIR over `out`
  /// (see PolyphaseGrid). Same preconditions, with `out_size` the size of `out`.
  void accumulate_polyphase(const float* sample_positions, const float* amplitudes, std::size_t n,
                            float* out, std::size_t out_size) const;

  /// The Hann window, w[k] = 0.5 - 0.5 cos(2 pi k / (length - 1)), as the reference computes it.
  const std::vector<float>& hann() const { return hann_; }
  /// The raw sinc table: entry i is sinc(-half_length() - 1 + i / granularity) (the argument
  /// accumulated in float steps as in the reference), (length + 2) * granularity entries.
  const std::vector<float>& sinc_table() const { return sinc_; }

  /// A shared instance with the reference's parameters (81 taps, granularity 20).
  static const FractionalDelayTable& reference();

 private:
  int length_;
  int granularity_;
  int stride_;  // row length of the phase tables (length rounded up to 4)
  std::vector<float> hann_;
  std::vector<float> sinc_;
  std::vector<float> phase_value_;  // [granularity + 1][stride]: sinc at phase q, tap k
  std::vector<float> phase_slope_;  // [granularity + 1][stride]: next entry minus this one
  friend class PolyphaseGrid;
  // PolyphaseGrid's filter bank: row r holds tap length - 1 - r of the windowed sinc of
  // phases 0..granularity (row length granularity + 1), zero-padded at the end.
  std::vector<float> polyphase_;
};

/// The arrivals of one RIR summed through a polyphase grid. The interpolated filter of an
/// arrival at table phase q and offset x is (1 - x) times phase q plus x times phase q + 1, so
/// add() costs O(1) per arrival (two weights into a grid [first sample][phase]) and add_to()
/// adds each phase's windowed sinc convolved with its grid column, a dense FIR of
/// length x (granularity + 1) multiply-adds per output sample. Equal to accumulate_many() up
/// to float rounding (the summation order differs). One instance per thread.
class PolyphaseGrid {
 public:
  /// A zero grid for an output of `out_size` samples; `table` must outlive it.
  PolyphaseGrid(const FractionalDelayTable& table, std::size_t out_size);
  /// Deposits n arrivals; the preconditions of FractionalDelayTable::accumulate() with an
  /// output of out_size samples.
  void add(const float* sample_positions, const float* amplitudes, std::size_t n);
  /// out[i] += the filters of all arrivals added, i in [0, out_size).
  void add_to(float* out) const;

 private:
  const FractionalDelayTable& table_;
  std::size_t out_size_;
  std::vector<float> grid_;
};

/// RIR length as the reference sizes it, in samples: ceil(fs t_max + half + 1) + 1 where t_max
/// is the latest arrival time in seconds including the filter delay half / fs.
std::size_t rir_length_for(double t_max_seconds, int sample_rate, int half_length);

/// The impulse response from all `images` to the microphone at `mic` (metres): for each image
/// at distance r, amplitude attenuation / r at delay fs r / c + half_length samples. Distances
/// and times are computed in double and handed to the interpolator in float, as in the
/// reference; the length follows rir_length_for. With `exact_summation`, or with fewer images
/// than RIR samples (anechoic rooms, low orders: there it is also the faster), the filters are
/// summed in the reference's order and the RIR is bit-identical to it; otherwise through a
/// PolyphaseGrid, with amplitudes divided in float: equal to float rounding (a few 1e-7 of the
/// peak). Throws std::invalid_argument if an image coincides with the microphone.
std::vector<float> build_rir(const ImageSources& images, const Vec3& mic, int sample_rate, double c,
                             const FractionalDelayTable& table = FractionalDelayTable::reference(),
                             bool exact_summation = false);

}  // namespace w2p::roomsim
