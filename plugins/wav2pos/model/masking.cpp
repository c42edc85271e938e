#include "wav2pos/model/masking.hpp"

#include <algorithm>
#include <cstddef>

namespace w2p::wav2pos {
namespace {

std::size_t at(std::int64_t row, std::int64_t width, std::int64_t col) {
  return static_cast<std::size_t>(row * width + col);
}

std::string row_text(const std::vector<std::int64_t>& ids, std::int64_t row, std::int64_t width) {
  std::string s = "[";
  for (std::int64_t j = 0; j < width; ++j) {
    if (j > 0) s += ", ";
    s += std::to_string(ids[at(row, width, j)]);
  }
  return s + "]";
}

}  // namespace

MaskPreset parse_mask_preset(const std::string& name) {
  if (name == "1a") return MaskPreset::k1a;
  if (name == "1b") return MaskPreset::k1b;
  if (name == "2a") return MaskPreset::k2a;
  throw std::invalid_argument("unknown wav2pos mask preset '" + name + "' (expected 1a, 1b or 2a)");
}

std::vector<float> MaskPlan::mask() const {
  std::vector<float> out(static_cast<std::size_t>(batch * num_tokens()), 1.0F);
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t j = 0; j < num_kept(); ++j) {
      out[at(b, num_tokens(), ids_keep[at(b, num_kept(), j)])] = 0.0F;
    }
  }
  return out;
}

std::vector<std::int64_t> MaskPlan::non_masked() const { return ids_keep; }

std::vector<std::int64_t> MaskPlan::masked() const {
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(batch * num_masked()));
  const std::vector<float> m = mask();
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t t = 0; t < num_tokens(); ++t) {
      if (m[at(b, num_tokens(), t)] != 0.0F) out.push_back(t);
    }
  }
  return out;
}

std::vector<std::int64_t> MaskPlan::ids_keep_audio() const {
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(batch * num_kept_audio));
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t j = num_kept_locations; j < num_kept(); ++j) {
      out.push_back(ids_keep[at(b, num_kept(), j)] - num_channels);
    }
  }
  return out;
}

std::vector<std::int64_t> MaskPlan::ids_restore() const {
  std::vector<std::int64_t> out(static_cast<std::size_t>(batch * num_tokens()));
  const std::vector<std::int64_t> m = masked();
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t j = 0; j < num_kept(); ++j) {
      out[at(b, num_tokens(), ids_keep[at(b, num_kept(), j)])] = j;
    }
    for (std::int64_t j = 0; j < num_masked(); ++j) {
      out[at(b, num_tokens(), m[at(b, num_masked(), j)])] = num_kept() + j;
    }
  }
  return out;
}

MaskPlan make_mask_plan(std::vector<std::int64_t> ids_keep, std::int64_t batch,
                        std::int64_t num_channels) {
  if (batch <= 0 || num_channels < 3) {
    throw std::invalid_argument("wav2pos mask: need batch >= 1 and at least 3 channels, got B = " +
                                std::to_string(batch) + ", K = " + std::to_string(num_channels));
  }
  if (ids_keep.empty() || static_cast<std::int64_t>(ids_keep.size()) % batch != 0) {
    throw std::invalid_argument("wav2pos mask: " + std::to_string(ids_keep.size()) +
                                " kept ids do not form " + std::to_string(batch) + " equal rows");
  }
  MaskPlan plan;
  plan.batch = batch;
  plan.num_channels = num_channels;
  const std::int64_t width = static_cast<std::int64_t>(ids_keep.size()) / batch;
  for (std::int64_t b = 0; b < batch; ++b) {
    std::int64_t locs = 0;
    for (std::int64_t j = 0; j < width; ++j) {
      const std::int64_t id = ids_keep[at(b, width, j)];
      const bool ordered = j == 0 || ids_keep[at(b, width, j - 1)] < id;
      if (id < 0 || id >= 2 * num_channels || !ordered) {
        throw std::invalid_argument("wav2pos mask: row " + std::to_string(b) + " " +
                                    row_text(ids_keep, b, width) +
                                    " must be strictly ascending token ids in [0, " +
                                    std::to_string(2 * num_channels) + ")");
      }
      if (id < num_channels) ++locs;
    }
    if (ids_keep[at(b, width, 0)] == 0) {
      throw std::invalid_argument("wav2pos mask: row " + std::to_string(b) +
                                  " keeps the source location (token 0), which must be masked");
    }
    if (b == 0) {
      plan.num_kept_locations = locs;
    } else if (locs != plan.num_kept_locations) {
      throw std::invalid_argument(
          "wav2pos mask: every sample must keep the same number of location tokens; row 0 keeps " +
          std::to_string(plan.num_kept_locations) + ", row " + std::to_string(b) + " keeps " +
          std::to_string(locs));
    }
  }
  plan.num_kept_audio = width - plan.num_kept_locations;
  if (plan.num_kept_audio < 2) {
    throw std::invalid_argument(
        "wav2pos mask: at least 2 audio tokens must be kept (the time-delay feature needs a "
        "channel pair), got " +
        std::to_string(plan.num_kept_audio));
  }
  plan.ids_keep = std::move(ids_keep);
  return plan;
}

MaskPlan explicit_mask(const std::vector<std::int64_t>& keep, std::int64_t batch,
                       std::int64_t num_channels) {
  std::vector<std::int64_t> row = keep;
  std::sort(row.begin(), row.end());
  std::vector<std::int64_t> ids;
  ids.reserve(row.size() * static_cast<std::size_t>(std::max<std::int64_t>(batch, 0)));
  for (std::int64_t b = 0; b < batch; ++b) ids.insert(ids.end(), row.begin(), row.end());
  return make_mask_plan(std::move(ids), batch, num_channels);
}

MaskPlan preset_mask(MaskPreset preset, std::int64_t batch, std::int64_t num_channels) {
  const std::int64_t k = num_channels;
  std::vector<std::int64_t> keep;
  // Microphone locations 1..K-1 (2a: without the last microphone).
  const std::int64_t last_loc = preset == MaskPreset::k2a ? k - 2 : k - 1;
  for (std::int64_t t = 1; t <= last_loc; ++t) keep.push_back(t);
  // Audio tokens K..2K-1 (1a: without the source audio, token K).
  const std::int64_t first_audio = preset == MaskPreset::k1a ? k + 1 : k;
  for (std::int64_t t = first_audio; t < 2 * k; ++t) keep.push_back(t);
  return explicit_mask(keep, batch, num_channels);
}

namespace detail {

MaskPlan mask_from_draws(std::int64_t batch, std::int64_t num_channels,
                         const std::vector<std::int64_t>& masked_audio_channel,
                         const std::vector<std::vector<std::int64_t>>& mic_orders,
                         std::int64_t num_mic_keep) {
  std::vector<std::int64_t> ids;
  for (std::int64_t b = 0; b < batch; ++b) {
    const auto ub = static_cast<std::size_t>(b);
    std::vector<std::int64_t> row(
        mic_orders[ub].begin(), mic_orders[ub].begin() + static_cast<std::ptrdiff_t>(num_mic_keep));
    for (std::int64_t c = 0; c < num_channels; ++c) {
      if (c != masked_audio_channel[ub]) row.push_back(num_channels + c);
    }
    std::sort(row.begin(), row.end());
    ids.insert(ids.end(), row.begin(), row.end());
  }
  return make_mask_plan(std::move(ids), batch, num_channels);
}

}  // namespace detail

// ---- numpy's legacy RandomState ---------------------------------------------------------------

double NumpyLegacyRandom::rand() {
  const std::uint32_t a = mt_() >> 5U;
  const std::uint32_t b = mt_() >> 6U;
  return (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) / 9007199254740992.0;
}

std::uint64_t NumpyLegacyRandom::interval(std::uint64_t max) {
  if (max == 0) return 0;
  // Smallest all-ones mask covering max; draws above max are rejected (no modulo bias).
  std::uint64_t mask = max;
  for (unsigned shift = 1; shift <= 32; shift *= 2) mask |= mask >> shift;
  if (max <= 0xFFFFFFFFULL) {
    for (;;) {
      const std::uint64_t v = static_cast<std::uint64_t>(mt_()) & mask;
      if (v <= max) return v;
    }
  }
  for (;;) {  // numpy's next_uint64 on MT19937: high word first
    const std::uint64_t hi = mt_();
    const std::uint64_t v = ((hi << 32U) | static_cast<std::uint64_t>(mt_())) & mask;
    if (v <= max) return v;
  }
}

std::int64_t NumpyLegacyRandom::randint(std::int64_t low, std::int64_t high) {
  if (high <= low) {
    throw std::invalid_argument("randint: empty range [" + std::to_string(low) + ", " +
                                std::to_string(high) + ")");
  }
  return low + static_cast<std::int64_t>(interval(static_cast<std::uint64_t>(high - 1 - low)));
}

std::vector<std::int64_t> NumpyLegacyRandom::permutation(std::int64_t n) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::int64_t>(i);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = interval(static_cast<std::uint64_t>(i));
    std::swap(out[static_cast<std::size_t>(i)], out[static_cast<std::size_t>(j)]);
  }
  return out;
}

// ---- strategy "random" ------------------------------------------------------------------------

MaskPlan random_mask(const RandomMaskOptions& options, std::int64_t batch,
                     std::int64_t num_channels, NumpyLegacyRandom& rng) {
  const std::int64_t num_mics = num_channels - 1;
  if (batch <= 0 || num_mics < 2) {
    throw std::invalid_argument("random_mask: need batch >= 1 and at least 2 microphones");
  }
  if (options.min_mic_keep < 1 || options.max_mic_keep < options.min_mic_keep ||
      options.max_mic_keep > num_mics) {
    throw std::invalid_argument("random_mask: need 1 <= min_mic_keep <= max_mic_keep <= K-1 (" +
                                std::to_string(num_mics) + ")");
  }
  // The reference's randint(2, K-1) (QUIRK) or the fix randint(1, K): [lo, hi).
  const std::int64_t lo = options.toa_mask_any_mic ? 1 : 2;
  const std::int64_t hi = options.toa_mask_any_mic ? num_channels : num_channels - 1;
  std::vector<std::int64_t> masked_audio(static_cast<std::size_t>(batch), 0);  // 0 = TDOA
  // The reference draws nothing here when toa_prob is 0.
  if (options.toa_prob > 0.0) {
    for (auto& channel : masked_audio) {
      if (rng.rand() > options.toa_prob) continue;  // TDOA sample: the source audio is masked
      if (hi <= lo) {
        throw std::invalid_argument("random_mask: no microphone can lose its audio with K = " +
                                    std::to_string(num_channels) +
                                    " (reference range 2..K-2; set toa_mask_any_mic)");
      }
      channel = rng.randint(lo, hi);
    }
  }
  std::vector<std::vector<std::int64_t>> orders(static_cast<std::size_t>(batch));
  for (auto& order : orders) {
    order = rng.permutation(num_mics);
    for (auto& m : order) ++m;  // microphones are channels 1..K-1
  }
  const std::int64_t n_keep = rng.randint(options.min_mic_keep, options.max_mic_keep + 1);
  return detail::mask_from_draws(batch, num_channels, masked_audio, orders, n_keep);
}

}  // namespace w2p::wav2pos
