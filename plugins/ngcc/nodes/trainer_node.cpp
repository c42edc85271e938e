// ngcc.trainer: the reference's NGCC-PHAT pre-training (spec §2-3) as a node over batches.
// Per batch: one crop start shared by the batch, per-channel standardisation, coloured noise,
// a random microphone pair per example, cross-entropy, one AdamW step. The learning rate
// follows the reference's per-epoch schedule; every finished epoch is checkpointed atomically,
// so `--resume` continues from the last one and ends with the same weights.
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <w2p/node.hpp>
#include <w2p/torch_bridge.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "augment/kernels/colored_noise.hpp"
#include "ngcc/model/ngcc_phat.hpp"
#include "ngcc/nodes/ngcc_nodes.hpp"
#include "ngcc/nodes/ngcc_nodes_common.hpp"
#include "torch_common/optim.hpp"
#include "torch_common/runtime.hpp"
#include "torch_common/state_dict.hpp"
#include "torch_common/trainer_checkpoints.hpp"
#include "torch_common/training_files.hpp"
#include "torch_common/training_progress.hpp"
#include "torch_common/weights_io.hpp"

namespace w2p::ngcc {
namespace {

namespace fs = std::filesystem;
namespace tc = w2p::torch_common;
using Clock = std::chrono::steady_clock;

class Trainer final : public Node {
 public:
  static constexpr const char* kDoc =
      "NGCC-PHAT pre-training as the reference (spec §3): per batch one random crop of sig_len "
      "samples shared by the batch, per-channel standardisation, coloured noise (per row SNR ~ "
      "U[snr_db], f_decay ~ U[f_decay]), per example a random microphone pair (m1, m2) from "
      "1..num_mics, label trunc(T[m1][m2] + max_tau), cross-entropy, one AdamW step (lr, "
      "weight_decay, the reference's no-decay groups). Learning rate per epoch: linear warm-up "
      "over warmup_epochs, then cosine to lr * min_lr_ratio over `epochs` (the reference's "
      "schedule). After every epoch: <run_dir>/<prefix>_epoch<NNN>.pt (model, optimiser, "
      "epoch; written atomically), a row of <prefix>_train_log.csv and, with the optional side "
      "input `val`, validation loss / TDOA MAE / RMSE (samples) / accuracy within "
      "val_threshold on fixed pairs and crop start 0. With --resume training continues after "
      "the last checkpoint (earlier epochs of the stream are skipped). At the end the weights "
      "are written as <prefix>_weights.pt (torch.save state_dict, keys 'ngcc.*') and emitted "
      "once. Randomness comes from the per-batch generator: results do not depend on thread "
      "count.";
  static constexpr Port kBatch{"batch"};
  static constexpr Port kVal{"val"};
  static constexpr Port kCheckpoint{"checkpoint"};

  static std::vector<OptionSpec> options() {
    std::vector<OptionSpec> o = model_options();
    std::vector<OptionSpec> more = {
        OptionSpec::string("audio_field", "audio").describe("f32 field [B, K, L] of the batches"),
        OptionSpec::string("tdoa_field", "tdoa").describe("f64 field [B, K, K], samples"),
        OptionSpec::integer("num_mics", 6)
            .range(1, 1e4)
            .describe("microphones = channels 1..num_mics; pairs are drawn among them"),
        OptionSpec::integer("epochs", 0)
            .range(0, 1e6)
            .describe("epochs of the lr schedule; 0 = the epochs of the input stream"),
        OptionSpec::number("lr", 1e-3).range(0, 10).describe("AdamW base learning rate"),
        OptionSpec::number("weight_decay", 0.1).range(0, 10).describe("AdamW weight decay"),
        OptionSpec::integer("warmup_epochs", 5).range(0, 1e6).describe("linear warm-up epochs"),
        OptionSpec::number("min_lr_ratio", 0.01)
            .range(0, 1)
            .describe("cosine floor = lr * min_lr_ratio"),
        OptionSpec::boolean("noise", true).describe("coloured-noise augmentation of the input"),
        OptionSpec::float_list("snr_db", std::vector<double>{0.0, 30.0})
            .size(2)
            .range(-200, 200)
            .describe("[min, max) of the per-row SNR, dB"),
        OptionSpec::float_list("f_decay", std::vector<double>{-2.0, 2.0})
            .size(2)
            .range(-20, 20)
            .describe("[min, max) of the per-row spectral decay"),
        OptionSpec::integer("threads", 0)
            .range(0, 1024)
            .describe("LibTorch intra-op threads; 0 = the run's threads"),
        OptionSpec::string("prefix", "ngcc").describe("file name prefix in the run directory"),
        OptionSpec::number("val_threshold", 10.0)
            .range(0, 1e6)
            .describe("validation accuracy: share of |predicted - true TDOA| <= this (samples)"),
        OptionSpec::integer("val_batch", 64).range(1, 1e6).describe("validation batch size"),
    };
    o.insert(o.end(), more.begin(), more.end());
    return o;
  }

  static Contract declare(const Options& o) {
    check_model_options(o);
    if (o.get_int("sample_rate") % 2 != 0) {
      throw Error(ErrorKind::kConfig,
                  "option 'sample_rate': must be even for the coloured "
                  "noise, got " +
                      std::to_string(o.get_int("sample_rate")))
          .note("expected an even rate, e.g. 16000");
    }
    for (const char* key : {"snr_db", "f_decay"}) {
      const std::vector<double> r = o.get_float_list(key);
      if (r[0] > r[1]) {
        throw Error(ErrorKind::kConfig, std::string("option '") + key + "': minimum above maximum")
            .note("expected [min, max] with min <= max");
      }
    }
    const std::string a = o.get_string("audio_field");
    const std::string t = o.get_string("tdoa_field");
    const Schema batch{{{a, spec(DType::kF32, {"B", "K", "L"}), "signals, channel 0 = source"},
                        {t, spec(DType::kF64, {"B", "K", "K"}), "TDOA matrix, samples"}}};
    const Schema val{{{a, spec(DType::kF32, {"K", "L"}), "signals"},
                      {t, spec(DType::kF64, {"K", "K"}), "TDOA matrix, samples"}}};
    const Schema out{{
        {"checkpoint", spec(DType::kStr), "path of the final weights (torch.save state_dict)"},
        {"last_checkpoint", spec(DType::kStr), "path of the last epoch checkpoint"},
        {"epochs", spec(DType::kI64), "epochs trained in total"},
        {"loss", spec(DType::kF64), "mean training loss of the last epoch"},
    }};
    return Contract()
        .input(kBatch, batch, "training batches (core.batch of stored items)")
        .side_input(kVal, val, "validation items, evaluated after every epoch")
        .optional()
        .output(kCheckpoint, out, "the trained weights, once at the end")
        .optional()
        .cardinality(Cardinality::kAny);
  }

  explicit Trainer(const Options& o)
      : config_(model_config(o)),
        audio_field_(o.get_string("audio_field")),
        tdoa_field_(o.get_string("tdoa_field")),
        num_mics_(o.get_int("num_mics")),
        epochs_option_(o.get_int("epochs")),
        lr_(o.get_float("lr")),
        weight_decay_(o.get_float("weight_decay")),
        warmup_(static_cast<int>(o.get_int("warmup_epochs"))),
        min_lr_ratio_(o.get_float("min_lr_ratio")),
        noise_(o.get_bool("noise")),
        threads_(static_cast<int>(o.get_int("threads"))),
        prefix_(o.get_string("prefix")),
        val_threshold_(o.get_float("val_threshold")),
        val_batch_(o.get_int("val_batch")) {
    const std::vector<double> snr = o.get_float_list("snr_db");
    const std::vector<double> decay = o.get_float_list("f_decay");
    ranges_ = {static_cast<float>(snr[0]), static_cast<float>(snr[1]), static_cast<float>(decay[0]),
               static_cast<float>(decay[1])};
  }

  void open(NodeContext& ctx) override {
    const RunInfo& run = ctx.run();
    tc::prepare_torch_runtime(threads_, run.threads);
    epochs_ = tc::TrainerCheckpoints::resolve_epochs(epochs_option_, run.epochs);
    progress_ = tc::TrainingProgress(epochs_);
    dir_ = run.run_dir;
    fs::create_directories(dir_);
    checkpoints_ = std::make_unique<tc::TrainerCheckpoints>(dir_, prefix_);
    torch::manual_seed(run.seed);  // deterministic initialisation
    model_ = MaskedNgccPhat(config_);
    model_->train();
    const auto groups =
        tc::split_weight_decay(model_->named_parameters(), tc::reference_no_decay_names());
    tc::AdamWConfig adam;
    adam.lr = lr_;
    adam.weight_decay = weight_decay_;
    optimizer_ = tc::make_adamw(groups, adam);
    if (noise_)
      shaper_ = std::make_unique<augment::ColoredNoiseShaper>(
          static_cast<int>(config_.fs), augment::ShapingAxis::kReferenceLinspace);
    if (ctx.connected(kVal)) val_ = ctx.side(kVal);

    start_epoch_ = checkpoints_->resume(
        ctx, run.resume, *model_, optimizer_.get(),
        "expected a checkpoint of this node's architecture (same num_channels; "
        "max_tau may differ); remove it to start afresh");
    // A fresh log, or on resume the rows of the epochs kept (later rows are dropped).
    const auto logged = checkpoints_->open_log(
        "epoch,loss,lr,steps,ms_per_step,val_loss,val_mae,val_rmse,val_accuracy", start_epoch_);
    last_loss_ = logged.loss;
    progress_.resume(logged.steps, logged.ms_per_step / 1e3);
  }

  Flow process(NodeContext& ctx) override {
    const auto epoch = static_cast<int64_t>(ctx.epoch());
    if (epoch < start_epoch_) return Flow::kContinue;  // done before the resume
    if (epoch >= epochs_) {
      throw Error(ErrorKind::kConfig, "epoch " + std::to_string(epoch) +
                                          " is beyond the schedule's " + std::to_string(epochs_) +
                                          " epochs")
          .note("expected option 'epochs' >= the input stream's epochs");
    }
    if (epoch != current_epoch_) begin_epoch(epoch);
    const Item& item = ctx.in(kBatch);
    const torch::Tensor audio = to_torch(item.get(audio_field_));
    const torch::Tensor tdoa = to_torch(item.get(tdoa_field_));
    check_batch(ctx, item, audio, tdoa, config_.sig_len, num_mics_);
    const int64_t b = audio.size(0), k = audio.size(1), length = audio.size(2);

    const auto t0 = Clock::now();
    Rng rng = ctx.rng();
    // The reference's start in [0, L - len - 1), shared by the batch.
    const int64_t span = length - config_.sig_len - 1;
    const int64_t start =
        span > 0 ? static_cast<int64_t>(rng.below(static_cast<uint64_t>(span))) : 0;
    torch::Tensor x = crop_standardise(audio, start, config_.sig_len);
    auto pairs = torch::empty({b, 2}, torch::kInt64);
    {
      auto acc = pairs.accessor<int64_t, 2>();
      for (int64_t i = 0; i < b; ++i) {
        acc[i][0] = 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(num_mics_)));
        acc[i][1] = 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(num_mics_)));
      }
    }
    check_labels(ctx, item, tdoa, pairs);
    if (noise_) {
      augment::add_colored_noise(x.data_ptr<float>(), static_cast<int>(b * k), config_.sig_len, rng,
                                 *shaper_, ranges_);
    }
    torch::manual_seed(rng());  // dropout masks from the per-batch generator too

    const PretrainOutput out = model_->forward(x, tdoa, pairs);
    const double loss = out.loss.item<double>();
    if (!std::isfinite(loss)) {
      throw Error(ErrorKind::kData, "non-finite loss " + std::to_string(loss) + " at epoch " +
                                        std::to_string(epoch) + ", " + describe_item(ctx, &item))
          .note(checkpoints_->last_good_note());
    }
    optimizer_->zero_grad();
    out.loss.backward();
    optimizer_->step();
    const double step = std::chrono::duration<double>(Clock::now() - t0).count();
    step_seconds_ += step;
    progress_.step(epoch, step);
    loss_sum_ += loss * static_cast<double>(b);
    examples_ += b;
    ++steps_;
    ctx.status(progress_.text() + " loss " + tc::format_number(loss_sum_ / examples_).substr(0, 6));
    return Flow::kContinue;
  }

  // The runtime calls it after each epoch's last batch (also the last epoch's, before finish).
  void end_epoch(NodeContext& ctx) override {
    if (static_cast<int64_t>(ctx.epoch()) != current_epoch_) return;  // done before the resume
    checkpoint_epoch(ctx);
  }

  void finish(NodeContext& ctx) override {
    const std::string weights = checkpoints_->files().weights_path();
    try {
      tc::write_torch_state_dict(weights, tc::state_dict(*model_));
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kIo, std::string("cannot write the weights: ") + e.what());
    }
    ctx.info("weights: " + weights);
    ctx.emit(kCheckpoint, Item{{"checkpoint", Tensor::scalar(weights)},
                               {"last_checkpoint", Tensor::scalar(checkpoints_->last_checkpoint())},
                               {"epochs", Tensor::scalar<std::int64_t>(finished_epochs())},
                               {"loss", Tensor::scalar(last_loss_)}});
  }

 private:
  int64_t finished_epochs() const {
    return current_epoch_ >= 0 ? current_epoch_ + 1 : start_epoch_;
  }

  void check_labels(const NodeContext& ctx, const Item& item, const torch::Tensor& tdoa,
                    const torch::Tensor& pairs) const {
    const auto labels = model_->pair_labels(tdoa, pairs);
    const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
    if (lo < 0 || hi > 2 * config_.max_tau) {
      throw Error(ErrorKind::kData, describe_item(ctx, &item) +
                                        ": a TDOA label falls outside "
                                        "the lags -max_tau..max_tau = " +
                                        std::to_string(config_.max_tau))
          .note("expected |T[m1][m2]| < max_tau; raise option 'max_tau' for this geometry");
    }
  }

  void begin_epoch(int64_t epoch) {
    current_epoch_ = epoch;
    tc::set_learning_rate(*optimizer_, tc::reference_lr(static_cast<int>(epoch), lr_, warmup_,
                                                        static_cast<int>(epochs_), min_lr_ratio_));
    loss_sum_ = 0;
    examples_ = 0;
    steps_ = 0;
    step_seconds_ = 0;
  }

  void checkpoint_epoch(NodeContext& ctx) {
    const int64_t finished = current_epoch_ + 1;
    progress_.end_epoch();
    const double lr = tc::learning_rate(*optimizer_);
    last_loss_ = examples_ > 0 ? loss_sum_ / static_cast<double>(examples_) : 0.0;
    std::string val_cols = ",,,";
    std::string val_text;
    if (!val_.empty()) {
      const Metrics m = validate(ctx);
      val_cols = tc::format_number(m.loss) + "," + tc::format_number(m.mae) + "," +
                 tc::format_number(m.rmse) + "," + tc::format_number(m.accuracy);
      val_text = " val loss " + tc::format_number(m.loss) + " mae " + tc::format_number(m.mae) +
                 " acc " + tc::format_number(m.accuracy);
    }
    checkpoints_->save(finished, *model_, optimizer_.get(), lr);
    const double ms = steps_ > 0 ? 1e3 * step_seconds_ / static_cast<double>(steps_) : 0.0;
    checkpoints_->append_log(std::to_string(finished) + "," + tc::format_number(last_loss_) + "," +
                             tc::format_number(lr) + "," + std::to_string(steps_) + "," +
                             tc::format_number(ms) + "," + val_cols);
    ctx.info("epoch " + std::to_string(finished) + "/" + std::to_string(epochs_) + " loss " +
             tc::format_number(last_loss_) + " lr " + tc::format_number(lr) + val_text + " (" +
             tc::format_number(ms) + " ms/step)");
    ctx.status("epoch " + std::to_string(finished) + "/" + std::to_string(epochs_) + " loss " +
               tc::format_number(last_loss_).substr(0, 6));
  }

  struct Metrics {
    double loss = 0, mae = 0, rmse = 0, accuracy = 0;
  };

  // Eval mode, crop start 0, one fixed pair per item (same pairs every epoch).
  Metrics validate(NodeContext& ctx) {
    torch::NoGradGuard no_grad;
    model_->eval();
    Metrics m;
    double se = 0;
    int64_t n = 0;
    for (size_t first = 0; first < val_.size(); first += static_cast<size_t>(val_batch_)) {
      const size_t last = std::min(val_.size(), first + static_cast<size_t>(val_batch_));
      std::vector<torch::Tensor> audio, tdoa;
      auto pairs = torch::empty({static_cast<int64_t>(last - first), 2}, torch::kInt64);
      auto acc = pairs.accessor<int64_t, 2>();
      for (size_t i = first; i < last; ++i) {
        audio.push_back(to_torch(val_[i].get(audio_field_)));
        tdoa.push_back(to_torch(val_[i].get(tdoa_field_)));
        Rng rng = Rng::for_item(ctx.run().seed, ctx.run().node_name + "/val", 0, i);
        acc[static_cast<int64_t>(i - first)][0] =
            1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(num_mics_)));
        acc[static_cast<int64_t>(i - first)][1] =
            1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(num_mics_)));
      }
      const auto a = torch::stack(audio);
      const auto t = torch::stack(tdoa);
      check_batch(ctx, val_[first], a, t, config_.sig_len, num_mics_);
      const auto x = crop_standardise(a, 0, config_.sig_len);
      const PretrainOutput out = model_->forward(x, t, pairs);
      const auto rows = torch::arange(t.size(0), torch::kInt64);
      const auto truth = t.index({rows, pairs.select(1, 0), pairs.select(1, 1)});
      const auto err = (out.pred_tdoa.to(torch::kFloat64) - truth).abs();
      const auto count = t.size(0);
      m.loss += out.loss.item<double>() * static_cast<double>(count);
      m.mae += err.sum().item<double>();
      se += (err * err).sum().item<double>();
      m.accuracy += (err <= val_threshold_).sum().item<double>();
      n += count;
    }
    model_->train();
    if (n > 0) {
      const auto dn = static_cast<double>(n);
      m.loss /= dn;
      m.mae /= dn;
      m.rmse = std::sqrt(se / dn);
      m.accuracy /= dn;
    }
    return m;
  }

  NgccPhatConfig config_;
  std::string audio_field_, tdoa_field_;
  int64_t num_mics_, epochs_option_;
  double lr_, weight_decay_;
  int warmup_;
  double min_lr_ratio_;
  bool noise_;
  int threads_;
  std::string prefix_;
  double val_threshold_;
  int64_t val_batch_;
  augment::ColoredNoiseRanges ranges_;

  int64_t epochs_ = 0;
  std::string dir_;
  std::unique_ptr<tc::TrainerCheckpoints> checkpoints_;
  tc::TrainingProgress progress_;
  MaskedNgccPhat model_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<augment::ColoredNoiseShaper> shaper_;
  std::vector<Item> val_;

  int64_t start_epoch_ = 0;     // first epoch to train (after a resume)
  int64_t current_epoch_ = -1;  // epoch being trained, -1 before the first batch
  double loss_sum_ = 0, step_seconds_ = 0, last_loss_ = 0;
  int64_t examples_ = 0, steps_ = 0;
};

}  // namespace

NodeType trainer_node_type() { return make_node_type<Trainer>("ngcc.trainer"); }

}  // namespace w2p::ngcc
