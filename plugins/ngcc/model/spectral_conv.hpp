// 'same' Conv1d as a product of spectra. A K-tap convolution costs K multiply-adds per output
// sample and channel pair; through real FFTs it costs 3 per frequency bin (three real GEMMs per
// bin, the 3M form of a complex product), i.e. ~1.5 per sample: 3.5-7x fewer operations for the
// 128->128 layers of NGCC-PHAT (K = 7..11), forward and backward alike.
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace w2p::ngcc {

/// How the signal is extended past its ends for a 'same' convolution.
enum class ConvPadding {
  kCircular,  ///< padding_mode='circular': the signal is periodic; the FFT length is L
  kZeros,     ///< zero padding (F.pad + conv1d); the FFT length is the next 2^a 3^b 5^c >= L + K/2
};

/// Conv1d (cross-correlation, as torch::conv1d) of x [N, C, L] with weight [O, C, K] (K odd) and
/// bias [O] (may be undefined) over x padded by K/2 on both sides -> [N, O, L]. Equal to the
/// direct convolution up to float rounding (~1e-6 relative). Differentiable in all three inputs
/// (its own backward: two more spectral products and a K-tap projection of the weight
/// gradient's spectrum). float32 CPU tensors; others fall back to the direct convolution.
/// Without a graph the result may go into `out` (contiguous [N, O, L]), saving a copy when
/// the caller assembles a large output from chunks of rows.
torch::Tensor spectral_conv1d(const torch::Tensor& x, const torch::Tensor& weight,
                              const torch::Tensor& bias, ConvPadding padding,
                              const torch::Tensor& out = {});

/// The same convolution in the reference's form: x padded by K/2 (circular or zeros, F.pad), then
/// an unpadded conv1d (ngcc::conv1d; LibTorch's CPU convolution runs ~1.5x slower with its own
/// padding). Differentiable; any dtype and device.
torch::Tensor direct_conv1d(const torch::Tensor& x, const torch::Tensor& weight,
                            const torch::Tensor& bias, ConvPadding padding);

/// The FFT length spectral_conv1d uses for a signal of `length` samples and a kernel of `kernel`.
int64_t spectral_conv_fft_length(int64_t length, int64_t kernel, ConvPadding padding);

}  // namespace w2p::ngcc
