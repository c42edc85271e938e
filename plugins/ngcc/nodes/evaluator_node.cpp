// ngcc.evaluator: the reference's TDOA evaluation of a pre-trained NGCC-PHAT next to plain
// GCC-PHAT on the same crops: MAE / RMSE in samples and the share within a threshold, over
// every microphone pair (a < b) of every item.
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <w2p/node.hpp>
#include <w2p/torch_bridge.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ngcc/model/ngcc_phat.hpp"
#include "ngcc/nodes/ngcc_nodes.hpp"
#include "ngcc/nodes/ngcc_nodes_common.hpp"
#include "torch_common/runtime.hpp"
#include "torch_common/state_dict.hpp"
#include "torch_common/weights_io.hpp"

namespace w2p::ngcc {
namespace {

namespace fs = std::filesystem;
namespace tc = w2p::torch_common;

struct ErrorSums {
  double abs = 0, sq = 0, within = 0;
  void add(const torch::Tensor& err, double threshold) {
    const auto a = err.abs();
    abs += a.sum().item<double>();
    sq += (a * a).sum().item<double>();
    within += (a <= threshold).sum().item<double>();
  }
};

class Evaluator final : public Node {
 public:
  static constexpr const char* kDoc =
      "TDOA evaluation (the reference's): for every item and every microphone pair a < b "
      "(channels 1..num_mics), crop start 0 of sig_len samples, per-channel standardisation, "
      "the NGCC-PHAT prediction (eval mode, argmax - max_tau) and the plain GCC-PHAT one "
      "(n = 2 sig_len, eps 1e-3, same lags) against T[a][b]; MAE and RMSE in samples and the "
      "share within `threshold`. Weights: the side input `weights` (field checkpoint: a "
      "torch.save state_dict path, as ngcc.trainer emits) or option `weights`. Emits one "
      "summary item at the end and writes <run_dir>/<prefix>.csv.";
  static constexpr Port kBatch{"batch"};
  static constexpr Port kWeights{"weights"};
  static constexpr Port kMetrics{"metrics"};

  static std::vector<OptionSpec> options() {
    std::vector<OptionSpec> o = model_options();
    std::vector<OptionSpec> more = {
        OptionSpec::string("audio_field", "audio").describe("f32 field [B, K, L]"),
        OptionSpec::string("tdoa_field", "tdoa").describe("f64 field [B, K, K], samples"),
        OptionSpec::integer("num_mics", 6).range(1, 1e4).describe("microphones = channels 1.."),
        OptionSpec::string("weights", "")
            .describe("torch.save state_dict (keys 'ngcc.*'); empty = from the side input"),
        OptionSpec::number("threshold", 10.0)
            .range(0, 1e6)
            .describe("accuracy: share of |predicted - true TDOA| <= this (samples)"),
        OptionSpec::integer("threads", 0)
            .range(0, 1024)
            .describe("LibTorch intra-op threads; 0 = the run's threads"),
        OptionSpec::string("prefix", "ngcc_eval").describe("CSV file name in the run directory"),
    };
    o.insert(o.end(), more.begin(), more.end());
    return o;
  }

  static Contract declare(const Options& o) {
    check_model_options(o);
    const std::string a = o.get_string("audio_field");
    const std::string t = o.get_string("tdoa_field");
    const Schema batch{{{a, spec(DType::kF32, {"B", "K", "L"}), "signals, channel 0 = source"},
                        {t, spec(DType::kF64, {"B", "K", "K"}), "TDOA matrix, samples"}}};
    const Schema weights{{{"checkpoint", spec(DType::kStr), "state_dict path"}}};
    Schema metrics;
    for (const char* m : {"ngcc", "gcc"}) {
      const std::string p(m);
      metrics.fields.push_back({p + "_mae", spec(DType::kF64), "mean |error|, samples"});
      metrics.fields.push_back({p + "_rmse", spec(DType::kF64), "root mean square error"});
      metrics.fields.push_back({p + "_accuracy", spec(DType::kF64), "share within threshold"});
    }
    metrics.fields.push_back({"pairs", spec(DType::kI64), "pairs evaluated"});
    return Contract()
        .input(kBatch, batch, "test batches")
        .side_input(kWeights, weights, "the trained weights (ngcc.trainer's output)")
        .optional()
        .output(kMetrics, metrics, "one summary at the end")
        .optional()
        .cardinality(Cardinality::kAny);
  }

  explicit Evaluator(const Options& o)
      : config_(model_config(o)),
        audio_field_(o.get_string("audio_field")),
        tdoa_field_(o.get_string("tdoa_field")),
        num_mics_(o.get_int("num_mics")),
        weights_(o.get_string("weights")),
        threshold_(o.get_float("threshold")),
        threads_(static_cast<int>(o.get_int("threads"))),
        prefix_(o.get_string("prefix")) {}

  void open(NodeContext& ctx) override {
    tc::prepare_torch_runtime(threads_, ctx.run().threads);
    std::string path = weights_;
    if (path.empty() && ctx.connected(kWeights) && !ctx.side(kWeights).empty()) {
      const Tensor& t = ctx.side(kWeights).back().get("checkpoint");
      path = t.data<std::string>()[0];
    }
    if (path.empty()) {
      throw Error(ErrorKind::kConfig, "no weights to evaluate")
          .note("expected option 'weights' or a connected side input 'weights'");
    }
    model_ = MaskedNgccPhat(config_);
    try {
      tc::load_state_dict(*model_, tc::to_map(tc::read_torch_state_dict(path)));
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kIo, "cannot load weights '" + path + "': " + e.what())
          .note("expected an NGCC-PHAT state_dict (keys 'ngcc.*') with this num_channels");
    }
    model_->eval();
    dir_ = ctx.run().run_dir;
  }

  Flow process(NodeContext& ctx) override {
    torch::NoGradGuard no_grad;
    const Item& item = ctx.in(kBatch);
    const torch::Tensor audio = to_torch(item.get(audio_field_));
    const torch::Tensor tdoa = to_torch(item.get(tdoa_field_));
    check_batch(ctx, item, audio, tdoa, config_.sig_len, num_mics_);
    const int64_t b = audio.size(0);
    const auto x = crop_standardise(audio, 0, config_.sig_len).narrow(1, 1, num_mics_);
    auto& net = *model_->ngcc;
    // The backbone once per microphone signal, then the pairs from its features.
    const auto y = net.backbone_forward(x.reshape({b * num_mics_, config_.sig_len}))
                       .view({b, num_mics_, -1, config_.sig_len});
    for (int64_t i = 0; i < num_mics_; ++i) {
      for (int64_t j = i + 1; j < num_mics_; ++j) {
        const auto truth = tdoa.select(1, i + 1).select(1, j + 1).to(torch::kFloat64);
        const auto logits = net.head(net.gcc(y.select(1, i), y.select(1, j)));
        ngcc_.add(model_->predict_tdoa(logits).to(torch::kFloat64) - truth, threshold_);
        const auto cc = gcc_phat(x.select(1, i), x.select(1, j), config_.max_tau, config_.phat_eps);
        gcc_.add((cc.argmax(-1) - config_.max_tau).to(torch::kFloat64) - truth, threshold_);
        pairs_ += b;
      }
    }
    ctx.status(std::to_string(pairs_) + " pairs, NGCC MAE " +
               std::to_string(ngcc_.abs / static_cast<double>(pairs_)).substr(0, 6));
    return Flow::kContinue;
  }

  void finish(NodeContext& ctx) override {
    const double n = std::max<double>(1.0, static_cast<double>(pairs_));
    Item out;
    std::ostringstream csv, text;
    csv << "method,mae,rmse,accuracy,pairs\n";
    for (const auto& [name, s] : {std::pair<std::string, const ErrorSums&>{"ngcc", ngcc_},
                                  std::pair<std::string, const ErrorSums&>{"gcc", gcc_}}) {
      const double mae = s.abs / n, rmse = std::sqrt(s.sq / n), acc = s.within / n;
      out.set(name + "_mae", Tensor::scalar(mae));
      out.set(name + "_rmse", Tensor::scalar(rmse));
      out.set(name + "_accuracy", Tensor::scalar(acc));
      csv << name << "," << mae << "," << rmse << "," << acc << "," << pairs_ << "\n";
      text << " " << name << ": MAE " << mae << " RMSE " << rmse << " acc " << acc << ";";
    }
    out.set("pairs", Tensor::scalar<std::int64_t>(pairs_));
    const std::string path = (fs::path(dir_) / (prefix_ + ".csv")).string();
    std::ofstream file(path, std::ios::trunc);
    file << csv.str();
    if (!file) throw Error(ErrorKind::kIo, "cannot write " + path);
    ctx.info("TDOA over " + std::to_string(pairs_) + " pairs (samples):" + text.str());
    ctx.emit(kMetrics, std::move(out));
  }

 private:
  NgccPhatConfig config_;
  std::string audio_field_, tdoa_field_;
  int64_t num_mics_;
  std::string weights_;
  double threshold_;
  int threads_;
  std::string prefix_;
  std::string dir_;
  MaskedNgccPhat model_{nullptr};
  ErrorSums ngcc_, gcc_;
  int64_t pairs_ = 0;
};

}  // namespace

NodeType evaluator_node_type() { return make_node_type<Evaluator>("ngcc.evaluator"); }

}  // namespace w2p::ngcc
