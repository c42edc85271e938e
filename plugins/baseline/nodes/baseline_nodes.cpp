// Plugin `baseline`: the classical (non-learned) localiser wav2pos must beat, over ../kernels.
//   baseline.multilateration          per-pair delays + known microphones -> source position
//   baseline.localization_metrics     estimates vs ground truth -> error per item and summary
#include <w2p/plugin.hpp>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "baseline/kernels/multilateration.hpp"

namespace w2p::baseline {
namespace {

// ---- baseline.multilateration
// --------------------------------------------------------------------

class Multilateration final : public Node {
 public:
  static constexpr const char* kDoc =
      "Source position from per-pair delay estimates and the known microphones (e.g. "
      "features.gcc_phat -> features.tdoa_peaks): `tdoa_field` f64[P] holds, per pair (a, b) "
      "of `pairs_field` i64[P, 2] (audio channel indices), T[a][b] = t_a - t_b in samples; "
      "`mic_field` f64[M, 3] the microphones, row m recorded on audio channel channels[m]. "
      "mode=tdoa: pairs between two listed microphones give, by least squares over all of "
      "them, each microphone's delay relative to the first one used; then the kernel's "
      "spherical-intersection start + Levenberg-Marquardt on range differences. mode=toa: "
      "pairs of a microphone with `source_channel` (the dry signal, channel 0 of a wav2pos "
      "item) give times of arrival, toa = delay + toa_offset samples (1 for items cut at the "
      "reference's mic_offset 41 QUIRK, 0 with fix_alignment); then Levenberg-Marquardt on "
      "ranges. Pairs with other channels are ignored. Emits `out_field` f64[3] (metres) and "
      "`residual_field` f64 (RMS range residual, metres). Every other field passes through. "
      "Errors: `channels` not one per microphone row, fewer than 4 usable microphones, pairs "
      "that do not connect them, degenerate geometry.";
  static constexpr Port kIn{"in"};
  static constexpr Port kOut{"out"};

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::choice("mode", {"tdoa", "toa"}, "tdoa")
            .describe("tdoa: delays between microphones; toa: delays from the known source "
                      "signal on `source_channel`"),
        OptionSpec::int_list("channels", std::vector<std::int64_t>{1, 2, 3, 4, 5, 6})
            .range(-1, 1e6)
            .describe("audio channel of each `mic_field` row (wav2pos: microphone m on "
                      "channel m + 1); -1 leaves that microphone out"),
        OptionSpec::integer("source_channel", 0)
            .range(0, 1e6)
            .describe("mode=toa: channel holding the emitted (dry) signal"),
        OptionSpec::number("toa_offset", 0.0)
            .range(-1e6, 1e6)
            .describe("mode=toa: samples added to each measured delay (1 for the reference's "
                      "mic_offset 41 QUIRK, 0 for fix_alignment items)"),
        OptionSpec::integer("sample_rate", 16000).range(1, 1e7).describe("Hz"),
        OptionSpec::number("c", 343.0).range(1, 1e5).describe("speed of sound, m/s"),
        OptionSpec::integer("max_iterations", 100)
            .range(0, 1e6)
            .describe("Levenberg-Marquardt iterations"),
        OptionSpec::string("tdoa_field", "tdoa_estimate")
            .describe("f64[P] delays T[a][b] = t_a - t_b, samples"),
        OptionSpec::string("pairs_field", "pairs").describe("i64[P, 2] channel pairs (a, b)"),
        OptionSpec::string("mic_field", "mic_pos").describe("f64[M, 3] microphones, metres"),
        OptionSpec::string("out_field", "position_estimate")
            .describe("output f64[3] source estimate, metres"),
        OptionSpec::string("residual_field", "position_residual")
            .describe("output f64 RMS range residual, metres"),
    };
  }

  static Contract declare(const Options& o) {
    const std::vector<std::int64_t> channels = o.get_int_list("channels");
    const auto used =
        std::count_if(channels.begin(), channels.end(), [](std::int64_t c) { return c >= 0; });
    if (used < 4) {
      throw Error(ErrorKind::kConfig,
                  "option 'channels': " + std::to_string(used) + " microphone(s) used")
          .note("expected at least 4 microphones (channel >= 0) for a 3-D position");
    }
    for (std::size_t i = 0; i < channels.size(); ++i) {
      for (std::size_t j = i + 1; j < channels.size(); ++j) {
        if (channels[i] >= 0 && channels[i] == channels[j]) {
          throw Error(ErrorKind::kConfig, "option 'channels': channel " +
                                              std::to_string(channels[i]) + " is listed twice")
              .note("expected one distinct audio channel per microphone row");
        }
      }
    }
    if (o.get_string("mode") == "toa" && std::find(channels.begin(), channels.end(),
                                                   o.get_int("source_channel")) != channels.end()) {
      throw Error(ErrorKind::kConfig,
                  "option 'source_channel' = " + std::to_string(o.get_int("source_channel")) +
                      " is also a microphone channel in 'channels'")
          .note("expected the channel of the dry source signal (0 in wav2pos items)");
    }
    const std::string out_field = o.get_string("out_field");
    const std::string residual_field = o.get_string("residual_field");
    const Schema in{{
        {o.get_string("tdoa_field"), spec(DType::kF64, {"?"}), "per-pair delays, samples"},
        {o.get_string("pairs_field"), spec(DType::kI64, {"?", 2}), "channel pairs"},
        {o.get_string("mic_field"), spec(DType::kF64, {"?", 3}), "microphones, metres"},
    }};
    return Contract()
        .input(kIn, in, "delay estimates and microphones (other fields pass through)")
        .output_from(
            kOut, kIn,
            [out_field, residual_field](const Schema& s) {
              Schema out = s;
              out.remove(out_field);
              out.remove(residual_field);
              out.fields.push_back(
                  {out_field, spec(DType::kF64, {3}), "estimated source position, metres"});
              out.fields.push_back(
                  {residual_field, spec(DType::kF64), "RMS range residual, metres"});
              return out;
            },
            "the items with the position estimate added")
        .max_concurrency(0);  // stateless
  }

  explicit Multilateration(const Options& o)
      : toa_(o.get_string("mode") == "toa"),
        channels_(o.get_int_list("channels")),
        source_channel_(o.get_int("source_channel")),
        toa_offset_(o.get_float("toa_offset")),
        sample_rate_(static_cast<double>(o.get_int("sample_rate"))),
        tdoa_field_(o.get_string("tdoa_field")),
        pairs_field_(o.get_string("pairs_field")),
        mic_field_(o.get_string("mic_field")),
        out_field_(o.get_string("out_field")),
        residual_field_(o.get_string("residual_field")) {
    options_.speed_of_sound = o.get_float("c");
    options_.max_iterations = static_cast<int>(o.get_int("max_iterations"));
  }

  Flow process(NodeContext& ctx) override {
    const Item& in = ctx.in(kIn);
    const Tensor& tdoa = in.get(tdoa_field_);
    const Tensor& pairs = in.get(pairs_field_);
    const Tensor& mic_pos = in.get(mic_field_);
    const std::int64_t rows = mic_pos.dim(0);
    if (static_cast<std::int64_t>(channels_.size()) != rows) {
      throw Error(ErrorKind::kConfig,
                  "option 'channels' lists " + std::to_string(channels_.size()) +
                      " microphone channels but field '" + mic_field_ + "' has " +
                      std::to_string(rows) + " microphones (" + describe_item(ctx) + ")")
          .note("expected one audio channel per row of '" + mic_field_ + "' (" +
                std::to_string(rows) + " values, -1 to leave a microphone out)");
    }
    if (pairs.dim(0) != tdoa.dim(0)) {
      throw Error(ErrorKind::kData, describe_item(ctx) + ": " + std::to_string(tdoa.dim(0)) +
                                        " delays in '" + tdoa_field_ + "' but " +
                                        std::to_string(pairs.dim(0)) + " pairs in '" +
                                        pairs_field_ + "'")
          .note("expected one delay per pair");
    }
    // Row of the microphone recorded on channel c, or -1.
    auto mic_of = [&](std::int64_t c) -> int {
      if (c < 0) return -1;
      const auto it = std::find(channels_.begin(), channels_.end(), c);
      return it == channels_.end() ? -1 : static_cast<int>(it - channels_.begin());
    };
    const double* d = tdoa.data<double>();
    const std::int64_t* p = pairs.data<std::int64_t>();
    const std::int64_t num_pairs = tdoa.dim(0);
    MicArray mics(rows, 3);
    const double* m = mic_pos.data<double>();
    for (std::int64_t r = 0; r < rows; ++r) {
      for (int x = 0; x < 3; ++x) mics(r, x) = m[3 * r + x];
    }
    MultilaterationResult result;
    if (toa_) {
      // Times of arrival from pairs (source_channel, microphone) in either order.
      std::vector<int> toa_rows;
      std::vector<double> toa_s;
      for (std::int64_t k = 0; k < num_pairs; ++k) {
        int mic = -1;
        double delay = 0;  // t_mic - t_source, samples
        if (p[2 * k] == source_channel_) {
          mic = mic_of(p[2 * k + 1]);
          delay = -d[k];
        } else if (p[2 * k + 1] == source_channel_) {
          mic = mic_of(p[2 * k]);
          delay = d[k];
        }
        if (mic < 0) continue;
        toa_rows.push_back(mic);
        toa_s.push_back((delay + toa_offset_) / sample_rate_);
      }
      try {
        result = locate_from_arrival_times(mics, toa_rows, toa_s, options_);
      } catch (const std::invalid_argument& e) {
        throw Error(ErrorKind::kData,
                    describe_item(ctx) + ": pairs with option 'source_channel' = " +
                        std::to_string(source_channel_) + " in '" + pairs_field_ + "': " + e.what())
            .note(
                "expected pairs (source_channel, microphone channel) for at least 4 "
                "microphones of option 'channels', not all on one plane");
      }
    } else {
      // Delays between two listed microphones; pairs with other channels are ignored.
      std::vector<PairDelay> delays;
      for (std::int64_t k = 0; k < num_pairs; ++k) {
        const int a = mic_of(p[2 * k]);
        const int b = mic_of(p[2 * k + 1]);
        if (a < 0 || b < 0 || a == b) continue;
        delays.push_back({a, b, d[k] / sample_rate_});
      }
      try {
        result = locate_from_pair_delays(mics, delays, options_);
      } catch (const std::invalid_argument& e) {
        throw Error(ErrorKind::kData, describe_item(ctx) + ": the pairs in '" + pairs_field_ +
                                          "' between microphones of option 'channels': " + e.what())
            .note(
                "expected pairs between at least 4 microphones, not all on one plane, every "
                "microphone linked to the others through some chain of pairs");
      }
    }
    Item out = in;
    const Eigen::Vector3d& s = result.position;
    out.set(out_field_, Tensor::from_vector(std::vector<double>{s(0), s(1), s(2)}));
    out.set(residual_field_, Tensor::scalar<double>(result.rms_residual_m));
    ctx.emit(kOut, std::move(out));
    return Flow::kContinue;
  }

 private:
  bool toa_;
  std::vector<std::int64_t> channels_;
  std::int64_t source_channel_;
  double toa_offset_;
  double sample_rate_;
  std::string tdoa_field_;
  std::string pairs_field_;
  std::string mic_field_;
  std::string out_field_;
  std::string residual_field_;
  MultilaterationOptions options_;
};

// ---- baseline.localization_metrics
// ---------------------------------------------------------------

class LocalizationMetrics final : public Node {
 public:
  static constexpr const char* kDoc =
      "Localisation error of position estimates `estimate_field` f64[3] against the ground "
      "truth `truth_field` f64[3] (metres): per item the Euclidean error in cm on the "
      "optional output `errors` (with the estimate and the truth), and at the end of the "
      "stream one `summary` item: count, MAE (mean error, cm), median and 90th percentile (cm, "
      "linear interpolation as numpy), accuracy = fraction of items with error < threshold_m "
      "(the wav2pos paper's 0.3 m), failures (non-finite estimates: counted as misses and "
      "left out of MAE and percentiles). The summary is also logged.";
  static constexpr Port kIn{"in"};
  static constexpr Port kErrors{"errors"};
  static constexpr Port kSummary{"summary"};

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::string("estimate_field", "position_estimate")
            .describe("f64[3] estimated position, metres"),
        OptionSpec::string("truth_field", "source_pos").describe("f64[3] true position, metres"),
        OptionSpec::number("threshold_m", 0.3)
            .range(0, 1e6)
            .describe("an estimate closer than this counts as accurate, metres"),
    };
  }

  static Contract declare(const Options& o) {
    const std::string est = o.get_string("estimate_field");
    const std::string truth = o.get_string("truth_field");
    if (est == truth) {
      throw Error(ErrorKind::kConfig,
                  "options 'estimate_field' and 'truth_field' are both '" + est + "'")
          .note("expected two different fields");
    }
    return Contract()
        .input(kIn,
               Schema{{{est, spec(DType::kF64, {3}), "estimate, metres"},
                       {truth, spec(DType::kF64, {3}), "ground truth, metres"}}},
               "estimates with their ground truth")
        .output(kErrors,
                Schema{{{"error_cm", spec(DType::kF64), "Euclidean error, cm"},
                        {"estimate", spec(DType::kF64, {3}), "estimate, metres"},
                        {"truth", spec(DType::kF64, {3}), "ground truth, metres"}}},
                "one item per input item")
        .optional()
        .output(kSummary,
                Schema{{{"count", spec(DType::kI64), "items"},
                        {"failures", spec(DType::kI64), "non-finite estimates"},
                        {"mae_cm", spec(DType::kF64), "mean error, cm"},
                        {"median_cm", spec(DType::kF64), "median error, cm"},
                        {"p90_cm", spec(DType::kF64), "90th percentile of the error, cm"},
                        {"accuracy", spec(DType::kF64), "fraction with error < threshold_m"},
                        {"threshold_m", spec(DType::kF64), "accuracy threshold, metres"}}},
                "one item at the end of the stream")
        .optional()
        .cardinality(Cardinality::kAny);
  }

  explicit LocalizationMetrics(const Options& o)
      : estimate_field_(o.get_string("estimate_field")),
        truth_field_(o.get_string("truth_field")),
        threshold_m_(o.get_float("threshold_m")) {}

  Flow process(NodeContext& ctx) override {
    const Item& in = ctx.in(kIn);
    const Tensor& est = in.get(estimate_field_);
    const Tensor& truth = in.get(truth_field_);
    double sq = 0;
    for (int x = 0; x < 3; ++x) {
      const double diff = est.data<double>()[x] - truth.data<double>()[x];
      sq += diff * diff;
    }
    const double error_m = std::sqrt(sq);
    ++count_;
    if (std::isfinite(error_m)) {
      errors_cm_.push_back(100.0 * error_m);
      if (error_m < threshold_m_) ++accurate_;
    } else {
      ++failures_;
    }
    ctx.emit(kErrors, Item{{"error_cm", Tensor::scalar<double>(100.0 * error_m)},
                           {"estimate", est},
                           {"truth", truth}});
    return Flow::kContinue;
  }

  void finish(NodeContext& ctx) override {
    std::vector<double> sorted = errors_cm_;
    std::sort(sorted.begin(), sorted.end());
    double sum = 0;
    for (double e : sorted) sum += e;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double mae = sorted.empty() ? nan : sum / static_cast<double>(sorted.size());
    const double median = baseline::percentile(sorted, 50.0);
    const double p90 = baseline::percentile(sorted, 90.0);
    const double accuracy =
        count_ == 0 ? nan : static_cast<double>(accurate_) / static_cast<double>(count_);
    std::ostringstream line;
    line << count_ << " items: MAE " << mae << " cm, median " << median << " cm, p90 " << p90
         << " cm, accuracy (< " << threshold_m_ << " m) " << accuracy << ", failures " << failures_;
    ctx.info(line.str());
    ctx.emit(kSummary,
             Item{{"count", Tensor::scalar<std::int64_t>(static_cast<std::int64_t>(count_))},
                  {"failures", Tensor::scalar<std::int64_t>(static_cast<std::int64_t>(failures_))},
                  {"mae_cm", Tensor::scalar<double>(mae)},
                  {"median_cm", Tensor::scalar<double>(median)},
                  {"p90_cm", Tensor::scalar<double>(p90)},
                  {"accuracy", Tensor::scalar<double>(accuracy)},
                  {"threshold_m", Tensor::scalar<double>(threshold_m_)}});
  }

 private:
  std::string estimate_field_;
  std::string truth_field_;
  double threshold_m_;
  std::vector<double> errors_cm_;
  std::uint64_t count_ = 0;
  std::uint64_t accurate_ = 0;
  std::uint64_t failures_ = 0;
};

void register_nodes(Registry& registry) {
  registry.add(make_node_type<Multilateration>("baseline.multilateration"));
  registry.add(make_node_type<LocalizationMetrics>("baseline.localization_metrics"));
}

}  // namespace
}  // namespace w2p::baseline

W2P_PLUGIN("baseline", "0.1.0", w2p::baseline::register_nodes)
