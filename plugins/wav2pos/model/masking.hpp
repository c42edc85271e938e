// Token masks for the wav2pos masked autoencoder (spec §4.3), in the reference's layout.
//
// A wav2pos input of K channels (channel 0 = the source, 1..K-1 = microphones) is a sequence of
// 2K tokens: location tokens 0..K-1 (channel order), then audio tokens K..2K-1 (one patch per
// channel, channel order). A mask says which tokens the encoder sees ("kept"); the others are
// replaced by mask tokens in the decoder. The reference feeds the model `ids_keep` (kept token
// ids, ascending) and derives everything else from it; the other lists are provided here for
// tests, data writers and the loss.
//
// Constraints every mask obeys (the model checks them again):
// - the source location (token 0) is always masked: the model predicts it;
// - every sample of a batch keeps the same number of location tokens and of audio tokens (the
//   reference counts them on sample 0 and applies the counts to the whole batch).
//
// This header has no LibTorch dependency; all lists are row-major std::vector<int64_t>.
// Thread-safety: pure functions; `random_mask` uses only the generator it is given.
#pragma once

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace w2p::wav2pos {

/// The evaluation setups of the paper (spec §4.3), for K channels.
enum class MaskPreset {
  k1a,  ///< keep all microphone locations and microphone audios; source location+audio masked.
  k1b,  ///< as 1a but the source audio is kept (time-of-arrival problem).
  k2a,  ///< as 1b but the last microphone's location (token K-1, mic 6 for K=7) is masked too.
};

/// Parses "1a", "1b" or "2a"; throws std::invalid_argument otherwise.
MaskPreset parse_mask_preset(const std::string& name);

/// The masks of one batch. Row-major lists, all rows of equal length.
struct MaskPlan {
  std::int64_t batch = 0;               ///< B
  std::int64_t num_channels = 0;        ///< K (source + microphones)
  std::int64_t num_kept_locations = 0;  ///< kept location tokens per sample
  std::int64_t num_kept_audio = 0;      ///< kept audio tokens per sample
  std::vector<std::int64_t> ids_keep;   ///< [B, num_kept()] kept token ids, ascending per row

  std::int64_t num_tokens() const { return 2 * num_channels; }
  std::int64_t num_kept() const { return num_kept_locations + num_kept_audio; }
  std::int64_t num_masked() const { return num_tokens() - num_kept(); }

  /// [B, 2K] 1 = masked, 0 = kept (the reference's float mask).
  std::vector<float> mask() const;
  /// [B, num_kept()] kept token ids ascending (= ids_keep; the reference's `non_masked`).
  std::vector<std::int64_t> non_masked() const;
  /// [B, num_masked()] masked token ids ascending (the reference's `masked`): the mask tokens
  /// fill them in the order source location, microphone locations, audio.
  std::vector<std::int64_t> masked() const;
  /// [B, num_kept_audio] channels whose audio is kept, ascending (the NGCC input channels).
  std::vector<std::int64_t> ids_keep_audio() const;
  /// [B, 2K] MAE-style restore order: position of token t in concat(kept, masked) lists.
  std::vector<std::int64_t> ids_restore() const;
};

/// Checks a mask and fills the counts: each row ascending, unique, in [0, 2K), token 0 masked,
/// equal numbers of kept location / audio tokens in every row, at least 2 kept audio tokens.
/// `ids_keep` is [batch, n] row-major. Throws std::invalid_argument naming the problem.
MaskPlan make_mask_plan(std::vector<std::int64_t> ids_keep, std::int64_t batch,
                        std::int64_t num_channels);

/// The same kept-token list for every sample (sorted here). Throws as make_mask_plan.
MaskPlan explicit_mask(const std::vector<std::int64_t>& keep, std::int64_t batch,
                       std::int64_t num_channels);

/// An evaluation setup for every sample of the batch.
MaskPlan preset_mask(MaskPreset preset, std::int64_t batch, std::int64_t num_channels);

/// Options of the training strategy "random" (spec §4.3, reference create_mask).
struct RandomMaskOptions {
  /// Probability of a time-of-arrival sample (source audio kept, one microphone audio masked);
  /// otherwise the source audio is masked and every microphone audio kept (TDOA sample).
  double toa_prob = 0.5;
  /// Number of kept microphone locations, drawn uniformly from [min, max] once per batch.
  std::int64_t min_mic_keep = 5;
  std::int64_t max_mic_keep = 6;
  /// QUIRK(spec §4.3, reference create_mask): the microphone whose audio is masked in a TOA
  /// sample is drawn with randint(2, K-1), i.e. from microphones 2..K-2 (2..5 for K=7):
  /// microphone 1 and the last microphone never lose their audio. true draws from 1..K-1.
  bool toa_mask_any_mic = false;
};

/// The draws of numpy's legacy RandomState (np.random.seed, rand, randint, permutation) on
/// MT19937, bit for bit: the reference draws its training masks with them, so a mask drawn here
/// from the reference's seed is the reference's mask (and any seed gives a reproducible stream
/// that does not depend on the platform, unlike the std distributions). Not thread-safe.
class NumpyLegacyRandom {
 public:
  /// np.random.seed(seed) (seeds up to 2^32 - 1, as numpy).
  explicit NumpyLegacyRandom(std::uint32_t seed) : mt_(seed) {}

  /// np.random.rand(): 53-bit double in [0, 1) from two 32-bit words.
  double rand();
  /// np.random.randint(low, high): integer in [low, high) by masked rejection; draws nothing
  /// when the range holds one value. Throws std::invalid_argument for an empty range.
  std::int64_t randint(std::int64_t low, std::int64_t high);
  /// np.random.permutation(n): Fisher-Yates from the back, as numpy's legacy shuffle.
  std::vector<std::int64_t> permutation(std::int64_t n);

 private:
  std::uint64_t interval(std::uint64_t max);  // uniform in [0, max], numpy's masked rejection
  std::mt19937 mt_;
};

namespace detail {

/// A "random" mask from its draws: per sample the channel whose audio is masked (0 = source)
/// and an order of microphones 1..K-1 (the first `num_mic_keep` keep their location).
MaskPlan mask_from_draws(std::int64_t batch, std::int64_t num_channels,
                         const std::vector<std::int64_t>& masked_audio_channel,
                         const std::vector<std::vector<std::int64_t>>& mic_orders,
                         std::int64_t num_mic_keep);

}  // namespace detail

/// Training strategy "random" (spec §4.3), drawn exactly as the reference's create_mask draws
/// it: per sample rand() > toa_prob decides a TDOA sample (source audio masked, all microphone
/// audios kept), else randint picks the microphone whose audio is masked (see the QUIRK); then
/// per sample a permutation of the microphones; then n = randint(min_mic_keep, max_mic_keep + 1)
/// for the batch; the first n permuted microphones keep their location. The source location is
/// always masked. Throws std::invalid_argument for impossible options.
MaskPlan random_mask(const RandomMaskOptions& options, std::int64_t batch,
                     std::int64_t num_channels, NumpyLegacyRandom& rng);

}  // namespace w2p::wav2pos
