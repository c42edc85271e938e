// Plugin `features`: time-delay feature nodes over the kernels in ../kernels.
//   features.gcc_phat    multi-channel audio -> GCC-PHAT correlation per channel pair (spec §3)
//   features.tdoa_peaks  correlations -> refined peak lag (TDOA in samples) per pair
#include <fftw3.h>
#include <w2p/plugin.hpp>

#include <algorithm>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "features/kernels/gcc_phat.hpp"
#include "features/kernels/real_fft.hpp"
#include "features/kernels/tdoa_peaks.hpp"

namespace w2p::features {
namespace {

// ---- features.gcc_phat
// ---------------------------------------------------------------------------

class GccPhatNode final : public Node {
 public:
  static constexpr const char* kDoc =
      "GCC-PHAT (spec §3) of channel pairs of the f32 field `field` [C, L]: per pair (a, b) "
      "n = 2 L, G = rfft(x_a, n) conj(rfft(x_b, n)), cc = irfft(G / (|G| + epsilon), n), lags "
      "-max_tau..max_tau -> `out_field` f32[P, 2 max_tau + 1] (index i = lag i - max_tau; the "
      "peak of pair (a, b) lies at T[a][b] = t_a - t_b, the sign of the items' `tdoa` label). "
      "Pairs: `pairs` (flat [a0, b0, a1, b1, ...] of channel indices of `field`), else every "
      "a < b of `channels` (all C channels when empty), in the order (c0,c1), (c0,c2), ..., "
      "(c1,c2), ... The pair list is emitted as `pairs_field` i64[P, 2] (channel indices of "
      "`field`). Every other input field passes through. Errors: max_tau >= L (lags beyond the "
      "signal repeat), a channel outside [0, C).";
  static constexpr Port kIn{"in"};
  static constexpr Port kOut{"out"};

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::string("field", "audio").describe("f32 signals [C, L] (channels x time)"),
        OptionSpec::string("out_field", "gcc").describe("output correlations [P, 2 max_tau + 1]"),
        OptionSpec::string("pairs_field", "pairs").describe("output pair list i64[P, 2]"),
        OptionSpec::integer("max_tau", 342)
            .range(0, 1e7)
            .describe("largest lag in samples (spec: int(sqrt(5^2 + 5^2 + 2^2) / c fs) = 342); "
                      "must be below the signal length L"),
        OptionSpec::int_list("channels", std::vector<std::int64_t>{})
            .range(0, 1e6)
            .describe("channels whose every pair a < b is correlated; empty = all channels "
                      "(e.g. [1, 2, 3, 4, 5, 6]: the microphones of a wav2pos item)"),
        OptionSpec::int_list("pairs", std::vector<std::int64_t>{})
            .range(0, 1e6)
            .describe("explicit pairs as a flat list [a0, b0, a1, b1, ...] of channel "
                      "indices; empty = all pairs of `channels`"),
        OptionSpec::number("epsilon", static_cast<double>(kGccPhatEpsilon))
            .range(0, 1e6)
            .describe("PHAT regulariser: G / (|G| + epsilon)"),
    };
  }

  // The fixed pair list the options ask for; empty when it depends on the channel count.
  static std::vector<ChannelPair> option_pairs(const Options& o) {
    const std::vector<std::int64_t> flat = o.get_int_list("pairs");
    const std::vector<std::int64_t> channels = o.get_int_list("channels");
    if (!flat.empty() && !channels.empty()) {
      throw Error(ErrorKind::kConfig, "options 'pairs' and 'channels' are both set")
          .note("expected either explicit pairs or the channels to pair up, not both");
    }
    std::vector<ChannelPair> pairs;
    if (!flat.empty()) {
      if (flat.size() % 2 != 0) {
        throw Error(ErrorKind::kConfig,
                    "option 'pairs': odd number of values (" + std::to_string(flat.size()) + ")")
            .note("expected a flat list of index pairs [a0, b0, a1, b1, ...]");
      }
      for (std::size_t i = 0; i < flat.size(); i += 2) {
        pairs.push_back({static_cast<int>(flat[i]), static_cast<int>(flat[i + 1])});
      }
      return pairs;
    }
    const std::set<std::int64_t> unique(channels.begin(), channels.end());
    if (unique.size() != channels.size()) {
      throw Error(ErrorKind::kConfig, "option 'channels': a channel is listed twice")
          .note("expected distinct channel indices");
    }
    for (const ChannelPair& p : all_channel_pairs(static_cast<int>(channels.size()))) {
      pairs.push_back({static_cast<int>(channels[static_cast<std::size_t>(p.a)]),
                       static_cast<int>(channels[static_cast<std::size_t>(p.b)])});
    }
    if (!channels.empty() && pairs.empty()) {
      throw Error(ErrorKind::kConfig, "option 'channels': one channel makes no pair")
          .note("expected at least 2 channels (or an empty list for all)");
    }
    return pairs;
  }

  static Contract declare(const Options& o) {
    const std::vector<ChannelPair> pairs = option_pairs(o);
    const std::string field = o.get_string("field");
    const std::string out_field = o.get_string("out_field");
    const std::string pairs_field = o.get_string("pairs_field");
    if (out_field == pairs_field) {
      throw Error(ErrorKind::kConfig,
                  "options 'out_field' and 'pairs_field' are both '" + out_field + "'")
          .note("expected two different field names");
    }
    const auto lags =
        static_cast<std::int64_t>(gcc_phat_num_lags(static_cast<int>(o.get_int("max_tau"))));
    // P is fixed when the options name the pairs or (below) the input's channel count is fixed;
    // only otherwise ragged (a store then keeps the field in its values/shapes group layout).
    const Dim fixed_p =
        pairs.empty() ? Dim::ragged() : Dim::fixed(static_cast<std::int64_t>(pairs.size()));
    const Schema in{{FieldSpec{field, spec(DType::kF32, {"?", "?"}), "signals [C, L]"}}};
    return Contract()
        .input(kIn, in, "multi-channel signals (other fields pass through)")
        .output_from(
            kOut, kIn,
            [field, out_field, pairs_field, lags, fixed_p](const Schema& s) {
              Dim p = fixed_p;
              const FieldSpec* signals = s.find(field);
              if (p.is_ragged() && signals != nullptr && !signals->spec.any_shape() &&
                  !signals->spec.dims.empty() && signals->spec.dims[0].is_fixed()) {
                const std::int64_t c = signals->spec.dims[0].size;  // all pairs of C channels
                p = Dim::fixed(c * (c - 1) / 2);
              }
              Schema out = s;
              out.remove(out_field);
              out.remove(pairs_field);
              out.fields.push_back({out_field, TensorSpec{DType::kF32, {p, Dim::fixed(lags)}},
                                    "GCC-PHAT per pair, lags -max_tau..max_tau"});
              out.fields.push_back({pairs_field, TensorSpec{DType::kI64, {p, Dim::fixed(2)}},
                                    "channel pair (a, b) of each row"});
              return out;
            },
            "the items with the correlations and their pair list added")
        .max_concurrency(0);  // per-item work; FFT workspaces come from a pool
  }

  explicit GccPhatNode(const Options& o)
      : field_(o.get_string("field")),
        out_field_(o.get_string("out_field")),
        pairs_field_(o.get_string("pairs_field")),
        max_tau_(static_cast<int>(o.get_int("max_tau"))),
        epsilon_(static_cast<float>(o.get_float("epsilon"))),
        pairs_(option_pairs(o)),
        pairs_from_option_(!o.get_int_list("pairs").empty()) {}

  void open(NodeContext& /*ctx*/) override {
    // The first RealFft makes FFTW's planner thread-safe (fftwf_make_planner_thread_safe). Do it
    // here, where nothing else runs: lazily, in process(), it could race with another plugin
    // planning FFTW at the same moment (roomsim's convolution has its own planner mutex).
    const RealFft warm_up(2);
  }

  Flow process(NodeContext& ctx) override {
    const Item& in = ctx.in(kIn);
    const Tensor& x = in.get(field_);
    const auto channels = static_cast<int>(x.dim(0));
    const auto length = static_cast<int>(x.dim(1));
    if (max_tau_ >= length) {
      throw Error(ErrorKind::kConfig, "option 'max_tau' = " + std::to_string(max_tau_) +
                                          " is too large for signals of length " +
                                          std::to_string(length) + " (field '" + field_ + "', " +
                                          describe_item(ctx) + ")")
          .note("expected max_tau <= L - 1 = " + std::to_string(length - 1) +
                ": lags -max_tau..max_tau of the 2 L-point correlation must not repeat");
    }
    const std::vector<ChannelPair> pairs = pairs_.empty() ? all_channel_pairs(channels) : pairs_;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      for (int c : {pairs[i].a, pairs[i].b}) {
        if (c >= channels) {
          throw Error(ErrorKind::kConfig,
                      std::string("option '") + (pairs_from_option_ ? "pairs" : "channels") +
                          "': channel " + std::to_string(c) + " (pair " + std::to_string(i) +
                          ") is out of range for field '" + field_ + "' with " +
                          std::to_string(channels) + " channels (" + describe_item(ctx) + ")")
              .note("expected channel indices in [0, " + std::to_string(channels - 1) + "]");
        }
      }
    }
    const auto num_pairs = static_cast<std::int64_t>(pairs.size());
    Tensor cc = Tensor::zeros(DType::kF32, {num_pairs, gcc_phat_num_lags(max_tau_)});
    {
      Lease gcc(*this, length);
      gcc.get().correlate_pairs(x.data<float>(), channels, pairs, cc.mutable_data<float>());
    }
    std::vector<std::int64_t> flat;
    flat.reserve(pairs.size() * 2);
    for (const ChannelPair& p : pairs) {
      flat.push_back(p.a);
      flat.push_back(p.b);
    }
    Item out = in;
    out.set(out_field_, std::move(cc));
    out.set(pairs_field_, Tensor::from_vector(flat, {num_pairs, 2}));
    ctx.emit(kOut, std::move(out));
    return Flow::kContinue;
  }

 private:
  // A GCC-PHAT workspace (not thread-safe) of the item's length, borrowed for one item.
  class Lease {
   public:
    Lease(GccPhatNode& node, int length) : node_(node) {
      std::lock_guard<std::mutex> lock(node_.mutex_);
      auto& pool = node_.pool_;
      const auto it = std::find_if(pool.begin(), pool.end(),
                                   [&](const auto& g) { return g->length() == length; });
      if (it != pool.end()) {
        gcc_ = std::move(*it);
        pool.erase(it);
      }
      if (!gcc_) gcc_ = std::make_unique<GccPhat>(length, node_.max_tau_, node_.epsilon_);
    }
    ~Lease() {
      std::lock_guard<std::mutex> lock(node_.mutex_);
      node_.pool_.push_back(std::move(gcc_));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    GccPhat& get() { return *gcc_; }

   private:
    GccPhatNode& node_;
    std::unique_ptr<GccPhat> gcc_;
  };

  std::string field_;
  std::string out_field_;
  std::string pairs_field_;
  int max_tau_;
  float epsilon_;
  std::vector<ChannelPair> pairs_;  // empty: all pairs of the item's channels
  bool pairs_from_option_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<GccPhat>> pool_;
};

// ---- features.tdoa_peaks
// -------------------------------------------------------------------------

class TdoaPeaksNode final : public Node {
 public:
  static constexpr const char* kDoc =
      "Time-delay estimate per row of a lag-indexed correlation `field` f32[..., 2 max_tau + 1] "
      "(GCC-PHAT or NGCC-PHAT logits; index i = lag i - max_tau): the argmax (first maximum, "
      "NaN skipped) refined by the vertex of the parabola through it and its neighbours "
      "(refine: false keeps the integer argmax - max_tau, the reference's evaluation). Emits "
      "`out_field` f64[...] (samples; for features.gcc_phat pair (a, b) this estimates "
      "T[a][b] = t_a - t_b) and `value_field` f32[...] (the correlation at the argmax). "
      "max_tau is the row width's (W - 1) / 2; the option, when set, must agree. Every other "
      "input field passes through.";
  static constexpr Port kIn{"in"};
  static constexpr Port kOut{"out"};

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::string("field", "gcc").describe("f32 correlations [..., 2 max_tau + 1]"),
        OptionSpec::string("out_field", "tdoa_estimate")
            .describe("output delays f64[...], samples"),
        OptionSpec::string("value_field", "tdoa_peak_value")
            .describe("output peak values f32[...]"),
        OptionSpec::integer("max_tau", -1)
            .range(-1, 1e7)
            .describe("largest lag; -1 = from the row width (W - 1) / 2"),
        OptionSpec::boolean("refine", true)
            .describe("parabolic sub-sample refinement (false: integer argmax - max_tau)"),
    };
  }

  static Contract declare(const Options& o) {
    const std::string field = o.get_string("field");
    const std::string out_field = o.get_string("out_field");
    const std::string value_field = o.get_string("value_field");
    if (out_field == value_field) {
      throw Error(ErrorKind::kConfig,
                  "options 'out_field' and 'value_field' are both '" + out_field + "'")
          .note("expected two different field names");
    }
    const Schema in{{FieldSpec{field, TensorSpec::any(DType::kF32), "correlations [..., W]"}}};
    return Contract()
        .input(kIn, in, "correlations (other fields pass through)")
        .output_from(
            kOut, kIn,
            [field, out_field, value_field](const Schema& s) {
              // The estimates have the correlation's leading dims.
              TensorSpec rows = s.find(field)->spec;
              if (!rows.any_shape() && !rows.dims.empty()) rows.dims.pop_back();
              Schema out = s;
              out.remove(out_field);
              out.remove(value_field);
              out.fields.push_back(
                  {out_field, TensorSpec{DType::kF64, rows.dims}, "peak lag per row, samples"});
              out.fields.push_back(
                  {value_field, TensorSpec{DType::kF32, rows.dims}, "correlation at the peak"});
              return out;
            },
            "the items with the delay estimates added")
        .max_concurrency(0);  // stateless
  }

  explicit TdoaPeaksNode(const Options& o)
      : field_(o.get_string("field")),
        out_field_(o.get_string("out_field")),
        value_field_(o.get_string("value_field")),
        max_tau_(static_cast<int>(o.get_int("max_tau"))),
        refine_(o.get_bool("refine")) {}

  Flow process(NodeContext& ctx) override {
    const Item& in = ctx.in(kIn);
    const Tensor& cc = in.get(field_);
    if (cc.rank() == 0) {
      throw Error(ErrorKind::kData, describe_item(ctx) + ": field '" + field_ +
                                        "' is a scalar; expected [..., 2 max_tau + 1]");
    }
    const std::int64_t width = cc.dim(cc.rank() - 1);
    if (width % 2 == 0) {
      throw Error(ErrorKind::kData, describe_item(ctx) + ": field '" + field_ + "' has " +
                                        std::to_string(width) + " lags per row")
          .note("expected an odd width 2 max_tau + 1 (lags -max_tau..max_tau)");
    }
    const auto max_tau = static_cast<int>((width - 1) / 2);
    if (max_tau_ >= 0 && max_tau_ != max_tau) {
      throw Error(ErrorKind::kConfig, "option 'max_tau' = " + std::to_string(max_tau_) +
                                          " does not match field '" + field_ + "' with " +
                                          std::to_string(width) + " lags per row")
          .note("expected max_tau = " + std::to_string(max_tau) + " (or -1 to infer it)");
    }
    Shape rows_shape(cc.shape().begin(), cc.shape().end() - 1);
    const std::int64_t rows = width == 0 ? 0 : cc.numel() / width;
    const std::vector<TdoaPeak> peaks =
        find_tdoa_peaks(cc.data<float>(), static_cast<int>(rows), max_tau);
    Tensor lag = Tensor::zeros(DType::kF64, rows_shape);
    Tensor value = Tensor::zeros(DType::kF32, rows_shape);
    for (std::size_t r = 0; r < peaks.size(); ++r) {
      lag.mutable_data<double>()[r] =
          refine_ ? peaks[r].lag : static_cast<double>(peaks[r].index - max_tau);
      value.mutable_data<float>()[r] = static_cast<float>(peaks[r].value);
    }
    Item out = in;
    out.set(out_field_, std::move(lag));
    out.set(value_field_, std::move(value));
    ctx.emit(kOut, std::move(out));
    return Flow::kContinue;
  }

 private:
  std::string field_;
  std::string out_field_;
  std::string value_field_;
  int max_tau_;
  bool refine_;
};

void register_nodes(Registry& registry) {
  // FFTW's planner is shared by every plugin in the process: make it take its own lock before
  // any node plans (registration runs before the graph, on one thread).
  fftwf_make_planner_thread_safe();
  registry.add(make_node_type<GccPhatNode>("features.gcc_phat"));
  registry.add(make_node_type<TdoaPeaksNode>("features.tdoa_peaks"));
}

}  // namespace
}  // namespace w2p::features

W2P_PLUGIN("features", "0.1.0", w2p::features::register_nodes)
