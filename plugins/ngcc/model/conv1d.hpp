// A 1-D convolution with a hand-written backward pass. LibTorch's CPU (oneDNN) conv1d runs its
// forward near matmul speed, but its backward took ~3x the forward for NGCC-PHAT's 128->128
// layers, its input gradient alone ~2x the forward. Here the input gradient is itself a forward
// convolution (of the zero-padded output gradient with the flipped, transposed kernel); the
// weight gradient stays LibTorch's. Same function as torch::conv1d.
#pragma once

#include <torch/types.h>

namespace w2p::ngcc {

/// torch::conv1d(x, weight, bias) with stride 1, no padding (pad x first), no dilation, one
/// group: x [N, C, L], weight [O, C, K], bias [O] or undefined -> [N, O, L - K + 1].
/// Differentiable in all three.
torch::Tensor conv1d(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias);

}  // namespace w2p::ngcc
