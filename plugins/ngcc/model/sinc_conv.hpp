// SincNet's parametrised band-pass convolution (SincConv_fast), the first NGCC-PHAT layer.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>

namespace w2p::ngcc {

struct SincConvOptions {
  int64_t out_channels = 128;
  int64_t kernel_size = 1023;  ///< odd
  int64_t sample_rate = 16000;
  double min_low_hz = 50.0;
  double min_band_hz = 50.0;
};

/// 128 band-pass filters of `kernel_size` taps, learnt through their band edges (spec §3).
///
/// Parameters (state_dict keys) `low_hz_` and `band_hz_`, both [out_channels, 1], initialised
/// from mel-spaced edges between 30 Hz and fs/2 - (min_low_hz + min_band_hz). The window and
/// the time axis are constants, not state (as in the reference: not in its state_dict).
/// forward() is a VALID cross-correlation; the backbone applies the circular 'same' padding.
class SincConvImpl : public torch::nn::Module {
 public:
  explicit SincConvImpl(SincConvOptions options = {});

  /// Lower band edges 50 + |low_hz_| [out, 1] (Hz).
  torch::Tensor low_hz() const;
  /// Upper band edges clamp(low + 50 + |band_hz_|, 50, fs/2) [out, 1] (Hz).
  torch::Tensor high_hz() const;
  /// Filter bank [out, 1, kernel_size] computed from the parameters (differentiable).
  torch::Tensor filters() const;
  /// Half Hamming window [kernel_size / 2] (reference `window_`).
  const torch::Tensor& window() const { return window_; }
  /// Time axis 2 pi k / fs, k = -(K-1)/2 .. -1, [1, (K-1)/2] (reference `n_`).
  const torch::Tensor& time_axis() const { return n_; }

  /// x [N, 1, T] -> [N, out, T - kernel_size + 1] (no padding, no bias).
  torch::Tensor forward(const torch::Tensor& x);

  const SincConvOptions& options() const { return options_; }

  torch::Tensor low_hz_;   ///< [out, 1] parameter
  torch::Tensor band_hz_;  ///< [out, 1] parameter

 private:
  SincConvOptions options_;
  torch::Tensor window_;
  torch::Tensor n_;
};
TORCH_MODULE(SincConv);

}  // namespace w2p::ngcc
