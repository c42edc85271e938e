// wav2pos.masker: which tokens the model sees (spec §4.3). Adds ids_keep / ids_restore / mask to
// every batch: the training strategy "random", the evaluation setups 1a / 1b / 2a, or an
// explicit list of kept tokens.
#include <w2p/node.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "wav2pos/model/masking.hpp"
#include "wav2pos/nodes/wav2pos_nodes.hpp"

namespace w2p::wav2pos {
namespace {

class Masker final : public Node {
 public:
  static constexpr const char* kDoc =
      "Masks of a batch in the reference's layout (spec §4.3). Tokens for K channels: 0..K-1 "
      "locations (0 = source), K..2K-1 audio. strategy=random: source location always masked; "
      "per sample with probability toa_prob the source audio is kept and one microphone's audio "
      "masked (TOA), else the source audio masked (TDOA); n ~ U{min_mic_keep..max_mic_keep} "
      "microphone locations kept per batch, chosen per sample; drawn with numpy's legacy "
      "RandomState from the per-batch generator (independent of thread count). strategy=1a / "
      "1b / 2a: the evaluation setups (1a: all microphone locations and audios kept, source "
      "masked; 1b: also the source audio kept; 2a: as 1b with the last microphone's location "
      "masked). strategy=keep: the token ids in option `keep` for every sample. Adds ids_keep "
      "i64[B, n_keep] (ascending), ids_restore i64[B, 2K] and mask f32[B, 2K] (1 = masked).";
  static constexpr Port kIn{"in"};
  static constexpr Port kOut{"out"};

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::choice("strategy", {"random", "1a", "1b", "2a", "keep"}, "random")
            .describe("training strategy, an evaluation setup, or an explicit kept-token list"),
        OptionSpec::int_list("keep", std::vector<std::int64_t>{})
            .describe("strategy=keep: kept token ids (0..K-1 locations, K..2K-1 audio)"),
        OptionSpec::number("toa_prob", 0.5).range(0, 1).describe("random: P(TOA sample)"),
        OptionSpec::integer("min_mic_keep", 5).range(0, 1e4).describe("random: fewest kept mics"),
        OptionSpec::integer("max_mic_keep", 6).range(0, 1e4).describe("random: most kept mics"),
        OptionSpec::boolean("toa_mask_any_mic", false)
            .describe(
                "random: QUIRK(spec §4.3) the reference masks the audio of microphones 2..K-2 "
                "only; true draws from all microphones"),
        OptionSpec::string("audio_field", "audio").describe("f32 [B, K, L]: gives B and K"),
    };
  }

  static Contract declare(const Options& o) {
    const std::string strategy = o.get_string("strategy");
    if (strategy == "keep" && o.get_int_list("keep").empty()) {
      throw Error(ErrorKind::kConfig, "option 'keep': empty with strategy 'keep'")
          .note("expected the kept token ids, e.g. [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13]");
    }
    if (strategy != "keep" && !o.get_int_list("keep").empty()) {
      throw Error(ErrorKind::kConfig, "option 'keep' is set but strategy is '" + strategy + "'")
          .note("expected strategy: keep to use an explicit token list");
    }
    if (o.get_int("min_mic_keep") > o.get_int("max_mic_keep")) {
      throw Error(ErrorKind::kConfig, "option 'min_mic_keep' is above 'max_mic_keep'")
          .note("expected min_mic_keep <= max_mic_keep");
    }
    const std::string a = o.get_string("audio_field");
    return Contract()
        .input(kIn, Schema{{{a, spec(DType::kF32, {"B", "K", "?"}), "signals"}}},
               "batches (other fields pass through)")
        .output_from(
            kOut, kIn,
            [](const Schema& s) {
              Schema out = s;
              for (const char* f : {"ids_keep", "ids_restore", "mask"}) out.remove(f);
              out.fields.push_back(
                  {"ids_keep", spec(DType::kI64, {"B", "?"}), "kept token ids, ascending"});
              out.fields.push_back(
                  {"ids_restore", spec(DType::kI64, {"B", "?"}), "restore order, [B, 2K]"});
              out.fields.push_back({"mask", spec(DType::kF32, {"B", "?"}), "1 = masked, [B, 2K]"});
              return out;
            },
            "the batches with their masks")
        .max_concurrency(0);  // stateless: randomness from the per-batch generator
  }

  explicit Masker(const Options& o)
      : strategy_(o.get_string("strategy")),
        keep_(o.get_int_list("keep")),
        audio_field_(o.get_string("audio_field")) {
    random_.toa_prob = o.get_float("toa_prob");
    random_.min_mic_keep = o.get_int("min_mic_keep");
    random_.max_mic_keep = o.get_int("max_mic_keep");
    random_.toa_mask_any_mic = o.get_bool("toa_mask_any_mic");
  }

  Flow process(NodeContext& ctx) override {
    const Item& in = ctx.in(kIn);
    const Tensor& audio = in.get(audio_field_);
    const std::int64_t batch = audio.dim(0), channels = audio.dim(1);
    MaskPlan plan;
    try {
      if (strategy_ == "random") {
        NumpyLegacyRandom rng(static_cast<std::uint32_t>(ctx.rng()()));
        plan = random_mask(random_, batch, channels, rng);
      } else if (strategy_ == "keep") {
        plan = explicit_mask(keep_, batch, channels);
      } else {
        plan = preset_mask(parse_mask_preset(strategy_), batch, channels);
      }
    } catch (const std::invalid_argument& e) {
      throw Error(ErrorKind::kConfig, "strategy '" + strategy_ + "' for " +
                                          std::to_string(channels) + " channels (" +
                                          describe_item(ctx) + "): " + e.what())
          .note(
              "expected a mask that hides the source location and keeps >= 2 audio channels "
              "and >= 1 microphone location");
    }
    if (plan.num_kept_locations < 1) {
      throw Error(ErrorKind::kConfig, "strategy '" + strategy_ + "' keeps no microphone location")
          .note("expected at least one known microphone position to anchor the coordinates");
    }
    Item out = in;
    out.set("ids_keep", Tensor::from_vector(plan.ids_keep, {batch, plan.num_kept()}));
    out.set("ids_restore", Tensor::from_vector(plan.ids_restore(), {batch, plan.num_tokens()}));
    out.set("mask", Tensor::from_vector(plan.mask(), {batch, plan.num_tokens()}));
    ctx.emit(kOut, std::move(out));
    return Flow::kContinue;
  }

 private:
  std::string strategy_;
  std::vector<std::int64_t> keep_;
  std::string audio_field_;
  RandomMaskOptions random_;
};

}  // namespace

NodeType masker_node_type() { return make_node_type<Masker>("wav2pos.masker"); }

}  // namespace w2p::wav2pos
