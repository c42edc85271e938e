#include "augment/kernels/colored_noise.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace w2p::augment {

namespace {

constexpr float kRmsEpsilon = 1e-8f;  // Audio.rms_normalize's guard
// Floats per SIMD vector in the torch build that produced the reference data (AVX2: 8); only
// the last-ulp rounding of the linspace depends on it.
constexpr std::int64_t kTorchLanes = 8;

int checked_sample_rate(int sample_rate) {
  if (sample_rate < 2 || sample_rate % 2 != 0) {
    throw std::invalid_argument("ColoredNoiseShaper: sample_rate must be even and >= 2, got " +
                                std::to_string(sample_rate));
  }
  return sample_rate;
}

}  // namespace

std::vector<float> colored_noise_frequency_base(int sample_rate, ShapingAxis axis) {
  checked_sample_rate(sample_rate);
  const std::int64_t steps = sample_rate / 2 + 1;
  if (axis == ShapingAxis::kSqrtFrequency) {
    std::vector<float> base(static_cast<std::size_t>(steps));
    const double half = static_cast<double>(sample_rate) / 2.0;
    for (std::int64_t k = 0; k < steps; ++k) {
      const double f = 1.0 + (half - 1.0) * static_cast<double>(k) / static_cast<double>(steps - 1);
      base[static_cast<std::size_t>(k)] = static_cast<float>(std::sqrt(f));
    }
    return base;
  }
  // torch.linspace(1, (fs / 2) ** 0.5, steps) in float32, rounded as torch's CPU kernel (AVX2
  // build, as the reference data were made) does, which colored_noise.h5 pins bit for bit:
  // both ends are converted to float, step = (end - start) / (steps - 1) in float; a vector of
  // kTorchLanes values starting at index i0 is base + j * step (j = 0..lanes-1, plain float
  // multiply and add) where the compiler fused base's multiply-add:
  // base = fma(step, i0, start) in the first half (i0 < steps / 2),
  // base = fma(-step, steps - 1 - i0, end) in the second. The vector loop runs over whole pairs
  // of vectors; the remaining tail is filled one value at a time with the base formula.
  // (Built with -ffp-contract=off, see CMakeLists.txt, so only the explicit fma calls fuse.)
  const float start = 1.0f;
  const float end = static_cast<float>(std::sqrt(static_cast<double>(sample_rate) / 2.0));
  const float step = (end - start) / static_cast<float>(steps - 1);
  const std::int64_t halfway = steps / 2;
  const auto value_at = [&](std::int64_t i) {
    return i < halfway ? std::fma(step, static_cast<float>(i), start)
                       : std::fma(-step, static_cast<float>(steps - 1 - i), end);
  };
  std::vector<float> base(static_cast<std::size_t>(steps));
  const std::int64_t vectorised = steps / (2 * kTorchLanes) * (2 * kTorchLanes);
  for (std::int64_t i0 = 0; i0 < vectorised; i0 += kTorchLanes) {
    const float first = value_at(i0);
    for (std::int64_t j = 0; j < kTorchLanes; ++j) {
      base[static_cast<std::size_t>(i0 + j)] = first + static_cast<float>(j) * step;
    }
  }
  for (std::int64_t i = vectorised; i < steps; ++i) base[static_cast<std::size_t>(i)] = value_at(i);
  return base;
}

void colored_noise_gain(const float* base, std::size_t bins, float f_decay, float* gain) {
  for (std::size_t k = 0; k < bins; ++k) gain[k] = 1.0f / std::pow(base[k], f_decay);
}

float root_mean_square(const float* x, std::int64_t n) {
  if (n <= 0) return 0.0f;
  double sum = 0.0;
  for (std::int64_t t = 0; t < n; ++t) sum += static_cast<double>(x[t]) * x[t];
  return static_cast<float>(std::sqrt(sum / static_cast<double>(n)));
}

float colored_noise_scale(const float* signal, std::int64_t n, float snr_db) {
  return root_mean_square(signal, n) / std::pow(10.0f, snr_db / 20.0f);
}

void add_scaled_noise(const float* signal, std::int64_t n, const float* noise,
                      std::int64_t noise_length, float scale, float* out) {
  if (n < 0 || noise_length < 1) {
    throw std::invalid_argument("add_scaled_noise: need n >= 0 and noise_length >= 1");
  }
  for (std::int64_t begin = 0; begin < n; begin += noise_length) {
    const std::int64_t count = std::min(noise_length, n - begin);
    for (std::int64_t t = 0; t < count; ++t) {
      out[begin + t] = signal[begin + t] + scale * noise[t];
    }
  }
}

ColoredNoiseShaper::ColoredNoiseShaper(int sample_rate, ShapingAxis axis)
    : sample_rate_(checked_sample_rate(sample_rate)),
      fft_(sample_rate),
      base_(colored_noise_frequency_base(sample_rate, axis)),
      gain_(base_.size()),
      real_(static_cast<std::size_t>(sample_rate)),
      spectrum_(static_cast<std::size_t>(fft_.bins())),
      noise_(static_cast<std::size_t>(sample_rate)) {}

void ColoredNoiseShaper::shape(const float* white, float f_decay, float* out) {
  std::copy(white, white + sample_rate_, real_.begin());
  fft_.forward(real_.data(), spectrum_.data());
  colored_noise_gain(base_.data(), base_.size(), f_decay, gain_.data());
  // torch multiplies complex64 by the real mask promoted to complex (g + 0i): exactly the real
  // and imaginary parts scaled by g.
  for (std::size_t k = 0; k < spectrum_.size(); ++k) spectrum_[k] *= gain_[k];
  fft_.inverse(spectrum_.data(), real_.data());
  // irfft's 1/n first, then the RMS normalisation, in the reference's order.
  const float inv_n = 1.0f / static_cast<float>(sample_rate_);
  for (float& v : real_) v *= inv_n;
  const float rms = root_mean_square(real_.data(), sample_rate_);
  const float denominator = rms + kRmsEpsilon;
  for (int t = 0; t < sample_rate_; ++t) out[t] = real_[static_cast<std::size_t>(t)] / denominator;
}

void ColoredNoiseShaper::apply(const float* signal, std::int64_t n, const float* white,
                               float snr_db, float f_decay, float* out) {
  if (n < 0) throw std::invalid_argument("ColoredNoiseShaper::apply: negative length");
  shape(white, f_decay, noise_.data());
  // The scale comes from the clean signal, before out (which may alias it) is written.
  const float scale = colored_noise_scale(signal, n, snr_db);
  add_scaled_noise(signal, n, noise_.data(), sample_rate_, scale, out);
}

}  // namespace w2p::augment
