// Test-only plugin `reporttest`: reporttest.source emits hand-made items in the layout the
// evaluation produces, so that report.localization can be tested without models or simulation.
//   kind: summary      one row per (setup, method): mae_cm = 10 (setup 0) .. with known values
//   kind: predictions  `per_setup` items per setup with positions in a 5 x 5 m room
//   kind: training     one item {log: <option log>}
#include <w2p/plugin.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace w2p::reporttest {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const std::vector<std::string> kMethods = {"wav2pos", "gcc_phat+multilateration",
                                           "ngcc_phat+multilateration"};

Tensor vec3(double x, double y, double z) { return Tensor::from_vector<double>({x, y, z}); }

class Source final : public Node {
 public:
  static constexpr const char* kDoc = "Hand-made report inputs for tests (see the file header).";
  static constexpr Port kOut{"out"};

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::choice("kind", {"summary", "predictions", "training"}, "summary")
            .describe("which items"),
        OptionSpec::string_list("setups", std::vector<std::string>{"1a", "1b", "2a"})
            .describe("setups"),
        OptionSpec::integer("per_setup", 8).range(1, 1000).describe("predictions per setup"),
        OptionSpec::path("log", "").describe("training: the log path to emit"),
    };
  }

  static Contract declare(const Options& o) {
    const std::string kind = o.get_string("kind");
    Schema s;
    const auto f64 = spec(DType::kF64);
    const auto i64 = spec(DType::kI64);
    const auto str = spec(DType::kStr);
    if (kind == "summary") {
      s.fields = {{"setup", str, ""},     {"method", str, ""},   {"count", i64, ""},
                  {"failures", i64, ""},  {"mae_cm", f64, ""},   {"median_cm", f64, ""},
                  {"p90_cm", f64, ""},    {"accuracy", f64, ""}, {"threshold_m", f64, ""},
                  {"mic_mae_cm", f64, ""}};
    } else if (kind == "predictions") {
      const auto v3 = spec(DType::kF64, {3});
      const auto m3 = spec(DType::kF64, {6, 3});
      s.fields = {{"setup", str, ""},
                  {"index", i64, ""},
                  {"source_pos", v3, ""},
                  {"mic_pos", m3, ""},
                  {"mic_masked", spec(DType::kI64, {6}), ""},
                  {"wav2pos_source", v3, ""},
                  {"wav2pos_error_cm", f64, ""},
                  {"wav2pos_mics", m3, ""},
                  {"mic_error_cm", f64, ""},
                  {"gcc_source", v3, ""},
                  {"gcc_error_cm", f64, ""},
                  {"ngcc_source", v3, ""},
                  {"ngcc_error_cm", f64, ""}};
    } else {
      s.fields = {{"log", str, ""}};
    }
    return Contract().output(kOut, s, "test items");
  }

  explicit Source(const Options& o)
      : kind_(o.get_string("kind")),
        setups_(o.get_string_list("setups")),
        per_setup_(o.get_int("per_setup")),
        log_(o.get_string("log")) {}

  Flow process(NodeContext& ctx) override {
    const auto i = static_cast<std::int64_t>(ctx.index());
    const auto n_setups = static_cast<std::int64_t>(setups_.size());
    if (kind_ == "summary") {
      if (i >= n_setups * 3) return Flow::kEndOfStream;
      const auto s = static_cast<std::size_t>(i / 3);
      const auto m = static_cast<std::size_t>(i % 3);
      // MAE: wav2pos 10 + s, GCC 40 + s, NGCC 25 + s (cm); accuracy the other way round.
      const double mae = (m == 0 ? 10.0 : m == 1 ? 40.0 : 25.0) + static_cast<double>(s);
      Item item;
      item.set("setup", Tensor::scalar(setups_[s]));
      item.set("method", Tensor::scalar(kMethods[m]));
      item.set("count", Tensor::scalar<std::int64_t>(per_setup_));
      item.set("failures", Tensor::scalar<std::int64_t>(m == 1 ? 1 : 0));
      item.set("mae_cm", Tensor::scalar(mae));
      item.set("median_cm", Tensor::scalar(mae * 0.8));
      item.set("p90_cm", Tensor::scalar(mae * 2.0));
      item.set("accuracy", Tensor::scalar(m == 0 ? 0.9 : m == 1 ? 0.5 : 0.7));
      item.set("threshold_m", Tensor::scalar(0.3));
      item.set("mic_mae_cm", Tensor::scalar(m == 0 && setups_[s] == "2a" ? 7.5 : kNaN));
      ctx.emit(kOut, std::move(item));
      return Flow::kContinue;
    }
    if (kind_ == "training") {
      if (i >= 1) return Flow::kEndOfStream;
      ctx.emit(kOut, Item{{"log", Tensor::scalar(log_)}});
      return Flow::kContinue;
    }
    if (i >= n_setups * per_setup_) return Flow::kEndOfStream;
    const auto s = static_cast<std::size_t>(i / per_setup_);
    const std::int64_t k = i % per_setup_;
    const double t = static_cast<double>(k);
    const double sx = 1.0 + 0.4 * t, sy = 1.0 + 0.35 * t, sz = 1.0;
    std::vector<double> mics = {0.5, 0.5, 0.3, 4.5, 0.5, 0.3, 4.5, 4.5, 0.3,
                                0.5, 4.5, 0.3, 2.5, 0.3, 1.5, 2.5, 4.7, 1.5};
    std::vector<double> model_mics = mics;
    std::vector<std::int64_t> masked(6, 0);
    double mic_err = kNaN;
    if (setups_[s] == "2a") {
      masked[static_cast<std::size_t>(k % 6)] = 1;
      model_mics[static_cast<std::size_t>(k % 6) * 3] += 0.075;
      mic_err = 7.5;
    }
    const double dw = 0.05 + 0.01 * t, dg = 0.3 + 0.05 * t, dn = 0.15 + 0.02 * t;
    Item item;
    item.set("setup", Tensor::scalar(setups_[s]));
    item.set("index", Tensor::scalar<std::int64_t>(k));
    item.set("source_pos", vec3(sx, sy, sz));
    item.set("mic_pos", Tensor::from_vector(mics, Shape{6, 3}));
    item.set("mic_masked", Tensor::from_vector(masked, Shape{6}));
    item.set("wav2pos_source", vec3(sx + dw, sy, sz));
    item.set("wav2pos_error_cm", Tensor::scalar(100.0 * dw));
    item.set("wav2pos_mics", Tensor::from_vector(model_mics, Shape{6, 3}));
    item.set("mic_error_cm", Tensor::scalar(mic_err));
    const bool gcc_fails = k == 3;  // a failed baseline: NaN estimate and error
    item.set("gcc_source", gcc_fails ? vec3(kNaN, kNaN, kNaN) : vec3(sx, sy - dg, sz));
    item.set("gcc_error_cm", Tensor::scalar(gcc_fails ? kNaN : 100.0 * dg));
    item.set("ngcc_source", vec3(sx - dn, sy, sz));
    item.set("ngcc_error_cm", Tensor::scalar(100.0 * dn));
    ctx.emit(kOut, std::move(item));
    return Flow::kContinue;
  }

 private:
  std::string kind_;
  std::vector<std::string> setups_;
  std::int64_t per_setup_;
  std::string log_;
};

void register_nodes(Registry& registry) {
  registry.add(make_node_type<Source>("reporttest.source"));
}

}  // namespace
}  // namespace w2p::reporttest

W2P_PLUGIN("reporttest", "0.1.0", w2p::reporttest::register_nodes)
