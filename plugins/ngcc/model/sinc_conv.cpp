#include "ngcc/model/sinc_conv.hpp"

#include <torch/nn/functional/conv.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace w2p::ngcc {
namespace {

double to_mel(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }
double to_hz(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }

}  // namespace

SincConvImpl::SincConvImpl(SincConvOptions options) : options_(options) {
  const int64_t out = options_.out_channels;
  const int64_t k = options_.kernel_size;
  if (k % 2 == 0) throw std::invalid_argument("SincConv: kernel_size must be odd");
  // Mel-spaced band edges, computed in float64 as numpy.linspace does, then stored as float32.
  const double low = 30.0;
  const double high = static_cast<double>(options_.sample_rate) / 2.0 -
                      (options_.min_low_hz + options_.min_band_hz);
  const double mel_lo = to_mel(low);
  const double mel_hi = to_mel(high);
  const double step = (mel_hi - mel_lo) / static_cast<double>(out);
  std::vector<double> hz(static_cast<size_t>(out + 1));
  for (int64_t i = 0; i <= out; ++i) {
    const double mel = i == out ? mel_hi : static_cast<double>(i) * step + mel_lo;
    hz[static_cast<size_t>(i)] = to_hz(mel);
  }
  std::vector<float> low_init(static_cast<size_t>(out)), band_init(static_cast<size_t>(out));
  for (size_t i = 0; i < low_init.size(); ++i) {
    low_init[i] = static_cast<float>(hz[i]);
    band_init[i] = static_cast<float>(hz[i + 1] - hz[i]);
  }
  low_hz_ = register_parameter("low_hz_", torch::tensor(low_init).view({out, 1}));
  band_hz_ = register_parameter("band_hz_", torch::tensor(band_init).view({out, 1}));

  // Constants (float32, the same operations as the reference so the values agree bit for bit).
  const int64_t half = k / 2;  // int(K / 2) = 511 for K = 1023
  const auto n_lin = torch::linspace(0.0, static_cast<double>(k) / 2.0 - 1.0, half);
  window_ = 0.54 - 0.46 * torch::cos(2.0 * M_PI * n_lin / static_cast<double>(k));
  const double n = static_cast<double>(k - 1) / 2.0;
  n_ = 2.0 * M_PI * torch::arange(-n, 0.0, torch::kFloat32).view({1, -1}) /
       static_cast<double>(options_.sample_rate);
}

torch::Tensor SincConvImpl::low_hz() const { return options_.min_low_hz + torch::abs(low_hz_); }

torch::Tensor SincConvImpl::high_hz() const {
  return torch::clamp(low_hz() + options_.min_band_hz + torch::abs(band_hz_), options_.min_low_hz,
                      static_cast<double>(options_.sample_rate) / 2.0);
}

torch::Tensor SincConvImpl::filters() const {
  const auto low = low_hz();
  const auto high = high_hz();
  const auto band = (high - low).select(1, 0);
  const auto n = n_.to(low.device());
  const auto window = window_.to(low.device());
  const auto f_t_low = torch::matmul(low, n);
  const auto f_t_high = torch::matmul(high, n);
  const auto left = ((torch::sin(f_t_high) - torch::sin(f_t_low)) / (n / 2)) * window;
  const auto center = 2 * band.view({-1, 1});
  const auto right = torch::flip(left, {1});
  auto band_pass = torch::cat({left, center, right}, 1);
  band_pass = band_pass / (2 * band.unsqueeze(1));
  return band_pass.view({options_.out_channels, 1, options_.kernel_size});
}

torch::Tensor SincConvImpl::forward(const torch::Tensor& x) {
  return torch::nn::functional::conv1d(x, filters());
}

}  // namespace w2p::ngcc
