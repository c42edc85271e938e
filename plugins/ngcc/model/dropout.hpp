// Dropout with a fast mask generator. LibTorch's CPU dropout draws one Bernoulli variate per
// element from its serial generator (~25 ns each); the frozen NGCC-PHAT inside wav2pos keeps its
// head dropout active (spec §4.2 QUIRK) over ~330 M activations per training step, which made
// the mask cost as much as the head's convolutions.
#pragma once

#include <torch/types.h>

namespace w2p::ngcc {

/// Inverted dropout: zeroes each element with probability p and scales the rest by 1 / (1 - p).
/// Identity when !training or p == 0. The mask is drawn from counter-based streams seeded by
/// one draw from LibTorch's default CPU generator, so torch::manual_seed makes it reproducible
/// and the result does not depend on the thread count (the masks differ from PyTorch's own
/// bernoulli_ stream; keep-probabilities are exact to 1/65536). Differentiable in x; without
/// gradient mode the multiply happens in place when `in_place` is set. CPU tensors use the fast
/// path, others fall back to torch::dropout.
torch::Tensor fast_dropout(const torch::Tensor& x, double p, bool training, bool in_place = false);

}  // namespace w2p::ngcc
