// wav2pos training loss and localisation metrics (spec §4.4, reference forward_loss / main.py).
#pragma once

#include <torch/types.h>

namespace w2p::wav2pos {

/// Weights of the total loss (reference cfg lam_audio, lam_locs).
struct LossWeights {
  double audio = 0.1;
  double locations = 1.0;
};

/// The loss terms, each a () float32 tensor.
struct Wav2PosLosses {
  torch::Tensor audio;      ///< MSE vs the standardised target over the KEPT audio patches
  torch::Tensor locations;  ///< source MSE + MSE of the masked microphone locations
  torch::Tensor total;      ///< weights.audio * audio + weights.locations * locations
};

/// The reference's forward_loss (cfg all_patch_loss = False).
/// target_audio [B, K, L]: the CLEAN input (standardised here per patch, unbiased std);
/// pred_audio [B, K, L]; pred_locs, locations [B, K, 3] normalised; mask [B, 2K] (1 = masked).
/// Audio: per-patch mean squared error, averaged over the patches whose audio token was KEPT
/// (the model is trained to reproduce what it saw, spec §4.4). Locations: MSE of row 0 (the
/// source) + per-row MSE averaged over the masked microphone rows of the whole batch (0 when
/// none is masked).
Wav2PosLosses forward_loss(const torch::Tensor& target_audio, const torch::Tensor& pred_audio,
                           const torch::Tensor& pred_locs, const torch::Tensor& locations,
                           const torch::Tensor& mask, const LossWeights& weights = {});

/// Source position in metres: pred_locs[:, 0] * loc_sigma + loc_mu, computed in float64
/// (as main.py: float32 prediction times float64 statistics). pred_locs [B, K, 3];
/// loc_mu, loc_sigma [3] -> [B, 3] float64.
torch::Tensor source_position_m(const torch::Tensor& pred_locs, const torch::Tensor& loc_mu,
                                const torch::Tensor& loc_sigma);

/// Euclidean source error in metres: estimate [B, 3], truth [B, 3] or [B, 1, 3] -> [B] float64.
torch::Tensor source_error_m(const torch::Tensor& estimate_m, const torch::Tensor& truth_m);

/// Share of errors below `threshold_m` (reference t = 0.3 m), () float64.
torch::Tensor accuracy(const torch::Tensor& error_m, double threshold_m = 0.3);

}  // namespace w2p::wav2pos
