// Coloured-noise augmentation of the reference's training input (spec §2): torch_audiomentations
// 0.11 AddColoredNoise in per-channel mode, with every random draw passed in explicitly so the
// arithmetic can be checked against the golden data (reference/colored_noise.h5).
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "features/kernels/real_fft.hpp"

namespace w2p::augment {

/// Ranges of the per-row draws (AddColoredNoise as the reference constructs it).
struct ColoredNoiseRanges {
  float min_snr_db = 0.0f;
  float max_snr_db = 30.0f;
  float min_f_decay = -2.0f;
  float max_f_decay = 2.0f;
};

/// The two draws of one row (one channel of one example).
struct ColoredNoiseDraw {
  float snr_db = 0.0f;
  float f_decay = 0.0f;
};

/// Which axis the spectral shaping divides by (bin k gets 1 / g_k^f_decay).
enum class ShapingAxis {
  /// QUIRK(spec §2), the default: g = torch.linspace(1, sqrt(fs/2), fs/2 + 1) in float32, i.e.
  /// linear in the bin index up to sqrt(fs/2) instead of the square root of the bin frequency;
  /// the noise power then falls like k^(-2 f_decay) at high bins instead of f^(-f_decay) (f_decay
  /// 1 is not pink). Kept as the default so that results compare with the reference.
  kReferenceLinspace,
  /// The evident intent: g = sqrt(linspace(1, fs/2, fs/2 + 1)), so power ~ f^(-f_decay)
  /// (0 white, 1 pink, 2 brown).
  kSqrtFrequency,
};

/// The axis g for fs/2 + 1 bins. kReferenceLinspace is rounded as torch's CPU linspace kernel
/// rounds (bit for bit against colored_noise.h5; see the .cpp); kSqrtFrequency is computed in
/// double and rounded once. Throws std::invalid_argument for odd or non-positive sample_rate.
std::vector<float> colored_noise_frequency_base(int sample_rate,
                                                ShapingAxis axis = ShapingAxis::kReferenceLinspace);

/// gain[k] = 1 / base[k]^f_decay for k < bins (float32, as the reference).
void colored_noise_gain(const float* base, std::size_t bins, float f_decay, float* gain);

/// Root mean square of x[0..n) (accumulated in double, returned as float32).
float root_mean_square(const float* x, std::int64_t n);

/// Noise amplitude for a given SNR: rms(signal) / 10^(snr_db / 20).
float colored_noise_scale(const float* signal, std::int64_t n, float snr_db);

/// out[t] = signal[t] + scale * noise[t mod noise_length], t < n: the reference tiles its noise
/// (length fs) as often as needed and crops it to the signal. out may alias signal.
void add_scaled_noise(const float* signal, std::int64_t n, const float* noise,
                      std::int64_t noise_length, float scale, float* out);

/// Shapes white noise of fs samples into unit-RMS coloured noise: irfft(rfft(white) * gain)
/// with gain from colored_noise_frequency_base(fs, axis) and f_decay, then divided by
/// (rms + 1e-8). Holds the FFT workspace; not thread-safe (one instance per thread).
class ColoredNoiseShaper {
 public:
  /// sample_rate: even and >= 2 (the reference's irfft returns fs samples only for even fs).
  /// Throws std::invalid_argument otherwise.
  explicit ColoredNoiseShaper(int sample_rate = 16000,
                              ShapingAxis axis = ShapingAxis::kReferenceLinspace);

  int sample_rate() const { return sample_rate_; }

  /// white: sample_rate values; out: sample_rate values (may alias white).
  void shape(const float* white, float f_decay, float* out);

  /// One row of the augmentation with explicit draws: out[0..n) = signal + scale * noise, with
  /// noise = shape(white, f_decay) and scale = colored_noise_scale(signal, n, snr_db).
  /// white: sample_rate values. out may alias signal.
  void apply(const float* signal, std::int64_t n, const float* white, float snr_db, float f_decay,
             float* out);

 private:
  int sample_rate_;
  features::RealFft fft_;
  std::vector<float> base_;
  std::vector<float> gain_;
  features::AlignedVector<float> real_;
  features::AlignedVector<std::complex<float>> spectrum_;
  std::vector<float> noise_;
};

/// Convenience with a random generator: augments each row of a row-major [rows, n] array in
/// place, drawing in the reference's order: every row's SNR ~ U[min_snr, max_snr), then every
/// row's f_decay ~ U[min_f_decay, max_f_decay), then per row fs white N(0, 1) samples. (The
/// values cannot match torch's generator; the order and distributions do.) Returns the draws.
template <typename Generator>
std::vector<ColoredNoiseDraw> add_colored_noise(float* signals, int rows, std::int64_t n,
                                                Generator& gen, ColoredNoiseShaper& shaper,
                                                const ColoredNoiseRanges& ranges = {}) {
  if (rows < 0 || n < 0) throw std::invalid_argument("add_colored_noise: negative shape");
  std::vector<ColoredNoiseDraw> draws(static_cast<std::size_t>(rows));
  std::uniform_real_distribution<float> snr(ranges.min_snr_db, ranges.max_snr_db);
  std::uniform_real_distribution<float> decay(ranges.min_f_decay, ranges.max_f_decay);
  for (ColoredNoiseDraw& d : draws) d.snr_db = snr(gen);
  for (ColoredNoiseDraw& d : draws) d.f_decay = decay(gen);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> white(static_cast<std::size_t>(shaper.sample_rate()));
  for (int r = 0; r < rows; ++r) {
    for (float& v : white) v = normal(gen);
    float* row = signals + static_cast<std::size_t>(r) * static_cast<std::size_t>(n);
    shaper.apply(row, n, white.data(), draws[static_cast<std::size_t>(r)].snr_db,
                 draws[static_cast<std::size_t>(r)].f_decay, row);
  }
  return draws;
}

}  // namespace w2p::augment
