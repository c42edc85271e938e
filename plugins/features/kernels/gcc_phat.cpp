#include "features/kernels/gcc_phat.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace w2p::features {

std::vector<ChannelPair> all_channel_pairs(int channels) {
  std::vector<ChannelPair> pairs;
  for (int a = 0; a < channels; ++a) {
    for (int b = a + 1; b < channels; ++b) pairs.push_back({a, b});
  }
  return pairs;
}

namespace {

int checked_fft_length(int length) {
  if (length < 1) {
    throw std::invalid_argument("GccPhat: signal length must be >= 1, got " +
                                std::to_string(length));
  }
  return 2 * length;
}

}  // namespace

GccPhat::GccPhat(int length, int max_tau, float epsilon)
    : length_(length),
      max_tau_(max_tau),
      epsilon_(epsilon),
      n_(checked_fft_length(length)),
      fft_(n_),
      stride_(aligned_row_stride(static_cast<std::size_t>(fft_.bins()))),
      padded_(static_cast<std::size_t>(n_), 0.0f),
      cc_(static_cast<std::size_t>(n_)),
      scratch_(stride_),
      spectra_(2 * stride_) {
  // The reference slices cc[n - max_tau:] and cc[:max_tau + 1]; both windows stay inside cc
  // (and give 2 max_tau + 1 values) only for max_tau < n.
  if (max_tau < 0 || max_tau >= n_) {
    throw std::invalid_argument("GccPhat: max_tau must be in [0, 2 * length), got " +
                                std::to_string(max_tau) + " for length " + std::to_string(length));
  }
  if (!(epsilon >= 0.0f)) {
    throw std::invalid_argument("GccPhat: epsilon must be >= 0");
  }
}

void GccPhat::cross_spectrum_to_lags(const std::complex<float>* x_spec,
                                     const std::complex<float>* y_spec, float* out) {
  const int bins = fft_.bins();
  for (int k = 0; k < bins; ++k) {
    // G = X conj(Y), then G / (|G| + eps), all in float32 as the reference (torch complex64).
    // Written out by hand: std::complex's operator* adds a NaN-recovery branch that blocks
    // vectorisation, and |G| by sqrt(re^2 + im^2) differs from hypot by at most an ulp
    // (no overflow: |G| would need to exceed 1e19).
    const float xr = x_spec[k].real(), xi = x_spec[k].imag();
    const float yr = y_spec[k].real(), yi = y_spec[k].imag();
    const float gr = xr * yr + xi * yi;
    const float gi = xi * yr - xr * yi;
    const float denominator = std::sqrt(gr * gr + gi * gi) + epsilon_;
    scratch_[static_cast<std::size_t>(k)] = {gr / denominator, gi / denominator};
  }
  fft_.inverse(scratch_.data(), cc_.data());
  // irfft normalisation (1/n, numpy's "backward" norm) applied to the kept lags only.
  const float scale = 1.0f / static_cast<float>(n_);
  const float* negative = cc_.data() + (n_ - max_tau_);  // lags -max_tau..-1
  for (int i = 0; i < max_tau_; ++i) out[i] = negative[i] * scale;
  for (int i = 0; i <= max_tau_; ++i) out[max_tau_ + i] = cc_[static_cast<std::size_t>(i)] * scale;
}

void GccPhat::correlate(const float* x, const float* y, float* out) {
  std::complex<float>* x_spec = spectra_.data();
  std::complex<float>* y_spec = spectra_.data() + stride_;
  // padded_[length_:] stays zero for the lifetime of the object.
  std::copy(x, x + length_, padded_.begin());
  fft_.forward(padded_.data(), x_spec);
  std::copy(y, y + length_, padded_.begin());
  fft_.forward(padded_.data(), y_spec);
  cross_spectrum_to_lags(x_spec, y_spec, out);
}

void GccPhat::correlate_pairs(const float* signals, int channels,
                              const std::vector<ChannelPair>& pairs, float* out) {
  if (channels < 0) throw std::invalid_argument("GccPhat: negative channel count");
  // Only the channels that occur in a pair are transformed.
  std::vector<char> used(static_cast<std::size_t>(channels), 0);
  for (const ChannelPair& p : pairs) {
    if (p.a < 0 || p.a >= channels || p.b < 0 || p.b >= channels) {
      throw std::invalid_argument("GccPhat: pair (" + std::to_string(p.a) + ", " +
                                  std::to_string(p.b) + ") outside [0, " +
                                  std::to_string(channels) + ")");
    }
    used[static_cast<std::size_t>(p.a)] = 1;
    used[static_cast<std::size_t>(p.b)] = 1;
  }
  const std::size_t needed = static_cast<std::size_t>(channels) * stride_;
  if (spectra_.size() < needed) spectra_.resize(needed);
  for (int c = 0; c < channels; ++c) {
    if (!used[static_cast<std::size_t>(c)]) continue;
    const float* x = signals + static_cast<std::size_t>(c) * static_cast<std::size_t>(length_);
    std::copy(x, x + length_, padded_.begin());
    fft_.forward(padded_.data(), spectra_.data() + static_cast<std::size_t>(c) * stride_);
  }
  const std::size_t lags = static_cast<std::size_t>(num_lags());
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    cross_spectrum_to_lags(spectra_.data() + static_cast<std::size_t>(pairs[p].a) * stride_,
                           spectra_.data() + static_cast<std::size_t>(pairs[p].b) * stride_,
                           out + p * lags);
  }
}

std::vector<float> gcc_phat(const std::vector<float>& x, const std::vector<float>& y, int max_tau,
                            float epsilon) {
  if (x.size() != y.size()) {
    throw std::invalid_argument("gcc_phat: x and y differ in length (" + std::to_string(x.size()) +
                                " vs " + std::to_string(y.size()) + ")");
  }
  GccPhat gcc(static_cast<int>(x.size()), max_tau, epsilon);
  std::vector<float> out(static_cast<std::size_t>(gcc.num_lags()));
  gcc.correlate(x.data(), y.data(), out.data());
  return out;
}

std::vector<float> gcc_phat_pairs(const float* signals, int channels, int length,
                                  const std::vector<ChannelPair>& pairs, int max_tau,
                                  float epsilon) {
  GccPhat gcc(length, max_tau, epsilon);
  std::vector<float> out(pairs.size() * static_cast<std::size_t>(gcc.num_lags()));
  gcc.correlate_pairs(signals, channels, pairs, out.data());
  return out;
}

}  // namespace w2p::features
