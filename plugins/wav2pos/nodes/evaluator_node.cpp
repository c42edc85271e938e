// wav2pos.evaluator: the reference's evaluation (spec §4.4) for the setups 1a / 1b / 2a, with the
// classical baselines on the same items: GCC-PHAT + multilateration and NGCC-PHAT +
// multilateration (TDOA when the source audio is unknown, TOA when it is known; only the
// microphones whose location and audio the setup keeps).
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <w2p/node.hpp>
#include <w2p/torch_bridge.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "baseline/kernels/multilateration.hpp"
#include "features/kernels/gcc_phat.hpp"
#include "features/kernels/tdoa_peaks.hpp"
#include "ngcc/model/ngcc_phat.hpp"
#include "torch_common/runtime.hpp"
#include "torch_common/state_dict.hpp"
#include "torch_common/training_files.hpp"
#include "torch_common/weights_io.hpp"
#include "wav2pos/model/losses.hpp"
#include "wav2pos/model/masking.hpp"
#include "wav2pos/model/wav2pos.hpp"
#include "wav2pos/nodes/wav2pos_nodes.hpp"
#include "wav2pos/nodes/wav2pos_nodes_common.hpp"

namespace w2p::wav2pos {
namespace {

namespace tc = w2p::torch_common;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const std::vector<std::string> kMethods = {"wav2pos", "gcc_phat+multilateration",
                                           "ngcc_phat+multilateration"};

// Errors of one (setup, method), cm; NaN = no estimate.
struct ErrorList {
  std::vector<double> cm;
  std::vector<double> mic_cm;  // wav2pos only: masked microphones
};

class Evaluator final : public Node {
 public:
  static constexpr const char* kDoc =
      "Evaluates a trained wav2pos model as the reference (spec §4.4): per test batch, crop "
      "start 0 of audio_len samples, per-channel standardisation, positions normalised with "
      "the side input `stats`; for each setup in `setups` (1a: microphone locations and audios "
      "known, source audio unknown; 1b: source audio known too; 2a: as 1b with the last "
      "microphone's location unknown) the model's source estimate (metres) and its estimates "
      "of the masked microphones. Baselines on the same crops and the same known microphones: "
      "GCC-PHAT (lags +-baseline_max_tau, parabolic peak) and, with the side input `ngcc`, the "
      "pre-trained NGCC-PHAT (argmax), each followed by multilateration: TDOA over all pairs "
      "of the known microphones when the source audio is masked, TOA (delay to the source "
      "channel + mic_offset - rir_delay samples) when it is kept. Emits one `predictions` item "
      "per test item and setup, and at the end one `summary` row per setup and method: count, "
      "failures, MAE / median / 90th percentile (cm), accuracy (error < threshold_m), mean "
      "masked-microphone error (cm).";
  static constexpr Port kBatch{"batch"};
  static constexpr Port kWeights{"weights"};
  static constexpr Port kStats{"stats"};
  static constexpr Port kNgcc{"ngcc"};
  static constexpr Port kPredictions{"predictions"};
  static constexpr Port kSummary{"summary"};

  static std::vector<OptionSpec> options() {
    std::vector<OptionSpec> o = model_options();
    std::vector<OptionSpec> more = {
        OptionSpec::path("weights", "")
            .describe(
                "wav2pos state_dict (torch.save) or a trainer epoch checkpoint; empty = from the "
                "side input `weights`"),
        OptionSpec::path("ngcc_weights", "")
            .describe("pre-trained NGCC-PHAT for its baseline; empty = from the side input `ngcc` "
                      "(neither: no NGCC baseline)"),
        OptionSpec::string_list("setups", std::vector<std::string>{"1a", "1b", "2a"})
            .describe("evaluation setups (1a, 1b, 2a)"),
        OptionSpec::number("threshold_m", 0.3).range(0, 1e3).describe("accuracy threshold, m"),
        OptionSpec::integer("baseline_max_tau", 342)
            .range(1, 1e6)
            .describe("lags of the GCC-PHAT and NGCC-PHAT baselines (the pre-training's 342)"),
        OptionSpec::integer("rir_delay", 40)
            .range(0, 1e6)
            .describe("samples every simulated RIR is delayed by (pyroomacoustics: 40)"),
        OptionSpec::number("c", 343.0).range(1, 1e5).describe("speed of sound, m/s"),
        OptionSpec::integer("threads", 0)
            .range(0, 1024)
            .describe("LibTorch intra-op threads; 0 = the run's threads"),
    };
    o.insert(o.end(), more.begin(), more.end());
    return o;
  }

  static Contract declare(const Options& o) {
    (void)model_config(o);
    for (const std::string& s : o.get_string_list("setups")) {
      try {
        (void)parse_mask_preset(s);
      } catch (const std::invalid_argument&) {
        throw Error(ErrorKind::kConfig, "option 'setups': unknown setup '" + s + "'")
            .note("expected some of 1a, 1b, 2a");
      }
    }
    if (o.get_string_list("setups").empty()) {
      throw Error(ErrorKind::kConfig, "option 'setups' is empty")
          .note("expected e.g. [1a, 1b, 2a]");
    }
    const Schema batch =
        scene_batch_schema(o, {"mic_offset", spec(DType::kI64, {"B"}), "microphone crop offset"});
    const Schema weights{{{"checkpoint", spec(DType::kStr), "state_dict path"}}};
    const Schema stats = position_stats_schema();
    const Schema predictions{{
        {"setup", spec(DType::kStr), "evaluation setup"},
        {"index", spec(DType::kI64), "position of the test item in the stream"},
        {"source_pos", spec(DType::kF64, {3}), "true source, metres"},
        {"mic_pos", spec(DType::kF64, {"M", 3}), "true microphones, metres"},
        {"mic_masked", spec(DType::kI64, {"M"}), "1 = the microphone's location was unknown"},
        {"wav2pos_source", spec(DType::kF64, {3}), "wav2pos source estimate, metres"},
        {"wav2pos_error_cm", spec(DType::kF64), "wav2pos source error, cm"},
        {"wav2pos_mics", spec(DType::kF64, {"M", 3}), "wav2pos microphone estimates, metres"},
        {"mic_error_cm", spec(DType::kF64), "mean error of the masked microphones, cm (NaN: none)"},
        {"gcc_source", spec(DType::kF64, {3}), "GCC-PHAT + multilateration, metres"},
        {"gcc_error_cm", spec(DType::kF64), "its error, cm (NaN: failed)"},
        {"ngcc_source", spec(DType::kF64, {3}), "NGCC-PHAT + multilateration, metres"},
        {"ngcc_error_cm", spec(DType::kF64), "its error, cm (NaN: failed or no NGCC)"},
    }};
    const Schema summary{{
        {"setup", spec(DType::kStr), "evaluation setup"},
        {"method", spec(DType::kStr), "wav2pos, gcc_phat+multilateration, ..."},
        {"count", spec(DType::kI64), "items"},
        {"failures", spec(DType::kI64), "items without an estimate"},
        {"mae_cm", spec(DType::kF64), "mean source error over the estimates, cm"},
        {"median_cm", spec(DType::kF64), "median source error, cm"},
        {"p90_cm", spec(DType::kF64), "90th percentile of the source error, cm"},
        {"accuracy", spec(DType::kF64), "share of items with error < threshold_m"},
        {"threshold_m", spec(DType::kF64), "accuracy threshold, metres"},
        {"mic_mae_cm", spec(DType::kF64), "mean masked-microphone error, cm (NaN: n/a)"},
    }};
    return Contract()
        .input(kBatch, batch, "test batches")
        .side_input(kWeights, weights, "the trained wav2pos weights (wav2pos.trainer)")
        .optional()
        .side_input(kStats, stats, "position normaliser (roomsim.position_stats of train)")
        .side_input(kNgcc, weights, "the pre-trained NGCC-PHAT for its baseline (ngcc.trainer)")
        .optional()
        .output(kPredictions, predictions, "per test item and setup")
        .optional()
        .output(kSummary, summary, "one row per setup and method, at the end")
        .optional()
        .cardinality(Cardinality::kAny);
  }

  explicit Evaluator(const Options& o)
      : config_(model_config(o)),
        device_(model_device(o)),
        gcc_phat_(o.get_string("time_delay") == "gcc_phat"),
        audio_field_(o.get_string("audio_field")),
        source_field_(o.get_string("source_field")),
        mic_field_(o.get_string("mic_field")),
        weights_(o.get_string("weights")),
        ngcc_weights_(o.get_string("ngcc_weights")),
        setups_(o.get_string_list("setups")),
        threshold_m_(o.get_float("threshold_m")),
        baseline_max_tau_(static_cast<int>(o.get_int("baseline_max_tau"))),
        rir_delay_(static_cast<double>(o.get_int("rir_delay"))),
        threads_(static_cast<int>(o.get_int("threads"))),
        gcc_(static_cast<int>(o.get_int("audio_len")),
             static_cast<int>(o.get_int("baseline_max_tau"))) {
    multilateration_.speed_of_sound = o.get_float("c");
  }

  void open(NodeContext& ctx) override {
    tc::prepare_torch_runtime(threads_, ctx.run().threads);
    normaliser_ = PositionNormaliser::from_side(ctx.side(kStats));
    const std::string path = side_path(ctx, kWeights, weights_);
    if (path.empty()) {
      throw Error(ErrorKind::kConfig, "no wav2pos weights to evaluate")
          .note("expected option 'weights' or a connected side input 'weights'");
    }
    model_ = Wav2Pos(config_);
    load_wav2pos_weights(*model_, path);
    model_->to(device_);
    model_->eval();
    const std::string ngcc = side_path(ctx, kNgcc, ngcc_weights_);
    if (!ngcc.empty()) {
      ngcc::NgccPhatConfig c;
      c.max_tau = baseline_max_tau_;
      c.sig_len = config_.audio_len;
      c.num_channels = config_.ngcc_num_channels;
      c.sinc_kernel = config_.ngcc_sinc_kernel;
      c.fs = config_.fs;
      c.fft_sinc_conv = config_.ngcc_fft_sinc_conv;
      c.fft_conv = config_.ngcc_fft_conv;
      ngcc_ = ngcc::MaskedNgccPhat(c);
      try {
        tc::load_state_dict(*ngcc_, tc::to_map(tc::read_torch_state_dict(ngcc)), true);
      } catch (const std::exception& e) {
        throw Error(ErrorKind::kConfig, "NGCC weights '" + ngcc + "' do not fit: " + e.what())
            .note("expected ngcc.trainer's weights with this node's ngcc_num_channels");
      }
      ngcc_->to(device_);
      ngcc_->eval();
    }
  }

  Flow process(NodeContext& ctx) override {
    torch::NoGradGuard no_grad;
    const Item& item = ctx.in(kBatch);
    const torch::Tensor audio = to_torch(item.get(audio_field_));
    const torch::Tensor source = to_torch(item.get(source_field_)).to(torch::kFloat64);
    const torch::Tensor mics = to_torch(item.get(mic_field_)).to(torch::kFloat64).contiguous();
    const torch::Tensor offsets = to_torch(item.get("mic_offset"));
    check_batch(ctx, item, audio, source, mics, config_.audio_len);
    check_finite(ctx, item, audio, audio_field_);
    const int64_t b = audio.size(0), k = audio.size(1), m = k - 1;
    const torch::Tensor x = ngcc::crop_standardise(audio, 0, config_.audio_len);
    const torch::Tensor locs = normaliser_.normalise(source, mics).to(device_);
    const torch::Tensor xd = x.to(device_);

    // Delays of every channel pair a < b (t_a - t_b, samples) per item, for both baselines.
    const std::vector<features::ChannelPair> pairs =
        features::all_channel_pairs(static_cast<int>(k));
    std::vector<double> gcc_lag(static_cast<size_t>(b) * pairs.size());
    std::vector<float> cc(pairs.size() * static_cast<size_t>(gcc_.num_lags()));
    for (int64_t i = 0; i < b; ++i) {
      gcc_.correlate_pairs(x[i].data_ptr<float>(), static_cast<int>(k), pairs, cc.data());
      const auto peaks =
          features::find_tdoa_peaks(cc.data(), static_cast<int>(pairs.size()), baseline_max_tau_);
      for (size_t p = 0; p < pairs.size(); ++p) gcc_lag[i * pairs.size() + p] = peaks[p].lag;
    }
    std::vector<double> ngcc_lag;
    if (ngcc_) {
      // Rows (a, b), (b, a) per pair a < b: keep the (a, b) rows.
      const auto logits = ngcc_->pair_features(xd).cpu();  // [B, 2P, lags]
      const auto lag = (logits.argmax(-1) - baseline_max_tau_).to(torch::kFloat64).contiguous();
      const double* l = lag.data_ptr<double>();
      ngcc_lag.resize(gcc_lag.size());
      for (int64_t i = 0; i < b; ++i) {
        for (size_t p = 0; p < pairs.size(); ++p) {
          ngcc_lag[i * pairs.size() + p] = l[i * 2 * static_cast<int64_t>(pairs.size()) + 2 * p];
        }
      }
    }

    for (const std::string& name : setups_) {
      const MaskPlan plan = preset_mask(parse_mask_preset(name), b, k);
      const Wav2PosOutput out =
          run_model(*model_, gcc_phat_, xd, locs, ids_keep_tensor(plan).to(device_));
      const torch::Tensor est = normaliser_.metres(out.pred_locs).contiguous();  // [B, K, 3]
      const std::vector<float> mask = plan.mask();
      ErrorList& w2p = errors_[{name, kMethods[0]}];
      ErrorList& gcc = errors_[{name, kMethods[1]}];
      ErrorList& ngcc = errors_[{name, kMethods[2]}];
      for (int64_t i = 0; i < b; ++i) {
        const float* row_mask = mask.data() + i * 2 * k;
        const double* truth = source[i].data_ptr<double>();
        const double* e = est[i].data_ptr<double>();
        const double err = 100.0 * distance(e, truth);
        w2p.cm.push_back(err);
        std::vector<std::int64_t> masked(static_cast<size_t>(m));
        double mic_sum = 0;
        int mic_count = 0;
        for (int64_t r = 0; r < m; ++r) {
          masked[static_cast<size_t>(r)] = row_mask[1 + r] > 0.5f ? 1 : 0;
          if (masked[static_cast<size_t>(r)] != 0) {
            mic_sum += 100.0 * distance(e + 3 * (1 + r), mics[i][r].data_ptr<double>());
            ++mic_count;
          }
        }
        const double mic_err = mic_count > 0 ? mic_sum / mic_count : kNaN;
        if (mic_count > 0) w2p.mic_cm.push_back(mic_err);
        const double offset = static_cast<double>(offsets[i].item<int64_t>()) - rir_delay_;
        const auto g =
            locate(mics[i], row_mask, k, gcc_lag.data() + i * pairs.size(), pairs, offset);
        const auto n =
            ngcc_ ? locate(mics[i], row_mask, k, ngcc_lag.data() + i * pairs.size(), pairs, offset)
                  : std::vector<double>{kNaN, kNaN, kNaN};
        const double gerr = 100.0 * distance(g.data(), truth);
        const double nerr = 100.0 * distance(n.data(), truth);
        gcc.cm.push_back(gerr);
        ngcc.cm.push_back(nerr);
        std::vector<double> mic_est(e + 3, e + 3 * k);
        ctx.emit(kPredictions,
                 Item{{"setup", Tensor::scalar(name)},
                      {"index", Tensor::scalar<std::int64_t>(seen_ + i)},
                      {"source_pos", Tensor::from_vector(std::vector<double>(truth, truth + 3))},
                      {"mic_pos", from_torch(mics[i].clone())},
                      {"mic_masked", Tensor::from_vector(masked)},
                      {"wav2pos_source", Tensor::from_vector(std::vector<double>(e, e + 3))},
                      {"wav2pos_error_cm", Tensor::scalar(err)},
                      {"wav2pos_mics", Tensor::from_vector(mic_est, {m, 3})},
                      {"mic_error_cm", Tensor::scalar(mic_err)},
                      {"gcc_source", Tensor::from_vector(g)},
                      {"gcc_error_cm", Tensor::scalar(gerr)},
                      {"ngcc_source", Tensor::from_vector(n)},
                      {"ngcc_error_cm", Tensor::scalar(nerr)}});
      }
    }
    seen_ += b;
    ctx.status(std::to_string(seen_) + " items");
    return Flow::kContinue;
  }

  void finish(NodeContext& ctx) override {
    for (const std::string& name : setups_) {
      for (const std::string& method : kMethods) {
        if (method == kMethods[2] && !ngcc_) continue;
        const ErrorList& list = errors_[{name, method}];
        std::vector<double> finite;
        for (double v : list.cm) {
          if (std::isfinite(v)) finite.push_back(v);
        }
        std::sort(finite.begin(), finite.end());
        double sum = 0, within = 0;
        for (double v : finite) {
          sum += v;
          within += v < 100.0 * threshold_m_ ? 1.0 : 0.0;
        }
        double mic_sum = 0;
        for (double v : list.mic_cm) mic_sum += v;
        const auto count = static_cast<std::int64_t>(list.cm.size());
        const auto failures = count - static_cast<std::int64_t>(finite.size());
        const double mae = finite.empty() ? kNaN : sum / static_cast<double>(finite.size());
        const double mic_mae =
            list.mic_cm.empty() ? kNaN : mic_sum / static_cast<double>(list.mic_cm.size());
        const double acc = count > 0 ? within / static_cast<double>(count) : kNaN;
        ctx.emit(kSummary, Item{{"setup", Tensor::scalar(name)},
                                {"method", Tensor::scalar(method)},
                                {"count", Tensor::scalar<std::int64_t>(count)},
                                {"failures", Tensor::scalar<std::int64_t>(failures)},
                                {"mae_cm", Tensor::scalar(mae)},
                                {"median_cm", Tensor::scalar(baseline::percentile(finite, 50))},
                                {"p90_cm", Tensor::scalar(baseline::percentile(finite, 90))},
                                {"accuracy", Tensor::scalar(acc)},
                                {"threshold_m", Tensor::scalar(threshold_m_)},
                                {"mic_mae_cm", Tensor::scalar(mic_mae)}});
        ctx.info("setup " + name + " " + method + ": MAE " + tc::format_number(mae) +
                 " cm, accuracy " + tc::format_number(acc) + " (" + std::to_string(count) +
                 " items, " + std::to_string(failures) + " failures)");
      }
    }
  }

 private:
  static double distance(const double* a, const double* b) {
    const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
    return std::sqrt(dx * dx + dy * dy + dz * dz);
  }

  static std::string side_path(const NodeContext& ctx, Port port, const std::string& option) {
    if (!option.empty()) return option;
    if (!ctx.connected(port) || ctx.side(port).empty()) return "";
    return ctx.side(port).back().get("checkpoint").data<std::string>()[0];
  }

  // Multilateration from the pair delays lag[p] (t_a - t_b, samples) of one item, using the
  // microphones whose location and audio the mask keeps: TOA against channel 0 when the source
  // audio is kept, else TDOA. NaN position when it fails (too few microphones, degenerate).
  std::vector<double> locate(const torch::Tensor& mic_pos, const float* row_mask, int64_t k,
                             const double* lag, const std::vector<features::ChannelPair>& pairs,
                             double toa_offset) const {
    const auto known = [&](int64_t c) {  // microphone channel c: location and audio kept
      return c >= 1 && row_mask[c] < 0.5f && row_mask[k + c] < 0.5f;
    };
    const double fs = static_cast<double>(config_.fs);
    const double* mp = mic_pos.data_ptr<double>();  // [K-1, 3], contiguous
    baseline::MicArray array(k - 1, 3);
    for (int64_t r = 0; r < k - 1; ++r) {
      for (int x = 0; x < 3; ++x) array(r, x) = mp[3 * r + x];
    }
    try {
      baseline::MultilaterationResult result;
      if (row_mask[k] < 0.5f) {  // source audio kept: times of arrival
        std::vector<int> rows;
        std::vector<double> toa;
        for (size_t p = 0; p < pairs.size(); ++p) {
          if (pairs[p].a == 0 && known(pairs[p].b)) {
            rows.push_back(pairs[p].b - 1);
            toa.push_back((-lag[p] + toa_offset) / fs);
          }
        }
        result = baseline::locate_from_arrival_times(array, rows, toa, multilateration_);
      } else {
        std::vector<baseline::PairDelay> delays;
        for (size_t p = 0; p < pairs.size(); ++p) {
          if (known(pairs[p].a) && known(pairs[p].b)) {
            delays.push_back({pairs[p].a - 1, pairs[p].b - 1, lag[p] / fs});
          }
        }
        result = baseline::locate_from_pair_delays(array, delays, multilateration_);
      }
      const auto& s = result.position;
      if (!s.allFinite()) return {kNaN, kNaN, kNaN};
      return {s(0), s(1), s(2)};
    } catch (const std::invalid_argument&) {
      return {kNaN, kNaN, kNaN};
    }
  }

  Wav2PosConfig config_;
  torch::Device device_;
  bool gcc_phat_;
  std::string audio_field_, source_field_, mic_field_, weights_, ngcc_weights_;
  std::vector<std::string> setups_;
  double threshold_m_;
  int baseline_max_tau_;
  double rir_delay_;
  int threads_;
  features::GccPhat gcc_;
  baseline::MultilaterationOptions multilateration_;

  PositionNormaliser normaliser_;
  Wav2Pos model_{nullptr};
  ngcc::MaskedNgccPhat ngcc_{nullptr};
  std::map<std::pair<std::string, std::string>, ErrorList> errors_;
  int64_t seen_ = 0;
};

}  // namespace

NodeType evaluator_node_type() { return make_node_type<Evaluator>("wav2pos.evaluator"); }

}  // namespace w2p::wav2pos
