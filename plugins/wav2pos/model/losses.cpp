#include "wav2pos/model/losses.hpp"

#include <stdexcept>

namespace w2p::wav2pos {

Wav2PosLosses forward_loss(const torch::Tensor& target_audio, const torch::Tensor& pred_audio,
                           const torch::Tensor& pred_locs, const torch::Tensor& locations,
                           const torch::Tensor& mask, const LossWeights& weights) {
  const int64_t k = target_audio.size(1);
  if (pred_audio.sizes() != target_audio.sizes() || pred_locs.sizes() != locations.sizes() ||
      pred_locs.size(1) != k || mask.dim() != 2 || mask.size(1) != 2 * k) {
    throw std::invalid_argument(
        "wav2pos forward_loss: need target/pred audio [B, K, L], pred/true locations [B, K, 3] "
        "and mask [B, 2K]");
  }
  const torch::Tensor mu = target_audio.mean(-1, /*keepdim=*/true);
  const torch::Tensor sigma = target_audio.std(-1, /*unbiased=*/true, /*keepdim=*/true);
  const torch::Tensor target = (target_audio - mu) / sigma;

  const torch::Tensor kept_audio = 1.0 - mask.slice(1, k, 2 * k);  // [B, K]
  const torch::Tensor per_patch = (pred_audio - target).pow(2).mean(-1);
  Wav2PosLosses losses;
  losses.audio = (per_patch * kept_audio).sum() / kept_audio.sum();

  const torch::Tensor loss_source = (pred_locs.select(1, 0) - locations.select(1, 0)).pow(2).mean();
  const torch::Tensor masked_mics = mask.slice(1, 1, k);  // [B, K-1]
  const torch::Tensor per_mic =
      (pred_locs.slice(1, 1, k) - locations.slice(1, 1, k)).pow(2).mean(-1);
  // The reference's `if mask_locs.sum() > 0` branch, without a host sync: with no masked
  // microphone the numerator is 0 and the clamped denominator 1.
  const torch::Tensor count = masked_mics.sum();
  const torch::Tensor loss_mics = (per_mic * masked_mics).sum() / count.clamp_min(1.0);
  losses.locations = loss_mics + loss_source;
  losses.total = weights.audio * losses.audio + weights.locations * losses.locations;
  return losses;
}

torch::Tensor source_position_m(const torch::Tensor& pred_locs, const torch::Tensor& loc_mu,
                                const torch::Tensor& loc_sigma) {
  const torch::Tensor source = pred_locs.select(1, 0).to(torch::kFloat64);
  return source * loc_sigma.to(torch::kFloat64) + loc_mu.to(torch::kFloat64);
}

torch::Tensor source_error_m(const torch::Tensor& estimate_m, const torch::Tensor& truth_m) {
  const torch::Tensor truth = truth_m.reshape({truth_m.size(0), -1}).to(torch::kFloat64);
  return (estimate_m.to(torch::kFloat64) - truth).pow(2).sum(-1).sqrt();
}

torch::Tensor accuracy(const torch::Tensor& error_m, double threshold_m) {
  return (error_m < threshold_m).to(torch::kFloat64).mean();
}

}  // namespace w2p::wav2pos
