// wav2pos.trainer: the reference's wav2pos training (spec §2, §4) as a node over masked batches.
// Per batch: one crop start shared by the batch, per-channel standardisation (the clean target),
// coloured noise on the model input only, positions normalised by the training set's source
// mean/std, the model's forward with the batch's mask, 0.1 audio + 1.0 location loss, one AdamW
// step. The pre-trained NGCC-PHAT is loaded from the side input and stays frozen. Every
// finished epoch is checkpointed atomically; --resume continues after the last one.
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
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "augment/kernels/colored_noise.hpp"
#include "torch_common/optim.hpp"
#include "torch_common/runtime.hpp"
#include "torch_common/state_dict.hpp"
#include "torch_common/trainer_checkpoints.hpp"
#include "torch_common/training_files.hpp"
#include "torch_common/training_progress.hpp"
#include "torch_common/weights_io.hpp"
#include "wav2pos/model/losses.hpp"
#include "wav2pos/model/masking.hpp"
#include "wav2pos/model/wav2pos.hpp"
#include "wav2pos/nodes/wav2pos_nodes.hpp"
#include "wav2pos/nodes/wav2pos_nodes_common.hpp"

namespace w2p::wav2pos {
namespace {

namespace fs = std::filesystem;
namespace tc = w2p::torch_common;
using Clock = std::chrono::steady_clock;

class Trainer final : public Node {
 public:
  static constexpr const char* kDoc =
      "wav2pos training as the reference (spec §2, §4): per batch one random crop of audio_len "
      "samples shared by the batch, per-channel standardisation (the clean audio target), "
      "coloured noise on the model input (per row SNR ~ U[snr_db], f_decay ~ U[f_decay]), "
      "positions normalised with the side input `stats` (roomsim.position_stats of the "
      "training set), the batch's mask (ids_keep from wav2pos.masker), loss lam_audio * audio "
      "MSE over kept patches + lam_locs * (source MSE + masked-microphone MSE), one AdamW step "
      "(the reference's no-decay groups). Learning rate per epoch: linear warm-up over "
      "warmup_epochs, then cosine to lr * min_lr_ratio over `epochs`. The NGCC-PHAT comes "
      "pre-trained from the side input `ngcc` (ngcc.trainer's output) or option ngcc_weights "
      "and stays frozen. After every epoch: <run_dir>/<prefix>_epochNNN.pt (model, optimiser, "
      "epoch; atomic), a row of <prefix>_train_log.csv and, with the side input `val`, the "
      "validation loss and source error (setup 1a, crop start 0). --resume continues after "
      "the last checkpoint. At the end <prefix>_weights.pt (torch.save state_dict with the "
      "reference's keys) is written and emitted once. Randomness comes from the per-batch "
      "generator: results do not depend on the pipeline's thread count.";
  static constexpr Port kBatch{"batch"};
  static constexpr Port kStats{"stats"};
  static constexpr Port kNgcc{"ngcc"};
  static constexpr Port kVal{"val"};
  static constexpr Port kCheckpoint{"checkpoint"};

  static std::vector<OptionSpec> options() {
    std::vector<OptionSpec> o = model_options();
    std::vector<OptionSpec> more = {
        OptionSpec::path("ngcc_weights", "")
            .describe("pre-trained NGCC-PHAT state_dict; empty = from the side input `ngcc`"),
        OptionSpec::integer("epochs", 0)
            .range(0, 1e6)
            .describe("epochs of the lr schedule; 0 = the epochs of the input stream"),
        OptionSpec::number("lr", 1e-3).range(0, 10).describe("AdamW base learning rate"),
        OptionSpec::number("weight_decay", 0.1).range(0, 10).describe("AdamW weight decay"),
        OptionSpec::integer("warmup_epochs", 5).range(0, 1e6).describe("linear warm-up epochs"),
        OptionSpec::number("min_lr_ratio", 0.01)
            .range(0, 1)
            .describe("cosine floor = lr * min_lr_ratio"),
        OptionSpec::number("lam_audio", 0.1).range(0, 1e6).describe("audio loss weight"),
        OptionSpec::number("lam_locs", 1.0).range(0, 1e6).describe("location loss weight"),
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
        OptionSpec::string("prefix", "wav2pos").describe("file name prefix in the run directory"),
        OptionSpec::integer("val_batch", 64).range(1, 1e6).describe("validation batch size"),
        OptionSpec::number("val_threshold_m", 0.3)
            .range(0, 1e3)
            .describe("validation accuracy: share of source errors below this (metres)"),
    };
    o.insert(o.end(), more.begin(), more.end());
    return o;
  }

  static Contract declare(const Options& o) {
    (void)model_config(o);  // option checks
    if (o.get_int("sample_rate") % 2 != 0) {
      throw Error(ErrorKind::kConfig, "option 'sample_rate': must be even for the coloured noise")
          .note("expected an even rate, e.g. 16000");
    }
    const std::string a = o.get_string("audio_field");
    const std::string s = o.get_string("source_field");
    const std::string m = o.get_string("mic_field");
    const Schema batch =
        scene_batch_schema(o, {"ids_keep", spec(DType::kI64, {"B", "?"}), "kept tokens"});
    const Schema val{{{a, spec(DType::kF32, {"K", "L"}), "signals"},
                      {s, spec(DType::kF64, {3}), "source position, metres"},
                      {m, spec(DType::kF64, {"M", 3}), "microphone positions, metres"}}};
    const Schema stats = position_stats_schema();
    const Schema ngcc{{{"checkpoint", spec(DType::kStr), "NGCC-PHAT state_dict path"}}};
    const Schema out{{
        {"checkpoint", spec(DType::kStr), "path of the final weights (torch.save state_dict)"},
        {"last_checkpoint", spec(DType::kStr), "path of the last epoch checkpoint"},
        {"log", spec(DType::kStr), "path of the training log (CSV)"},
        {"epochs", spec(DType::kI64), "epochs trained in total"},
        {"loss", spec(DType::kF64), "mean training loss of the last epoch"},
    }};
    return Contract()
        .input(kBatch, batch, "masked training batches (wav2pos.masker)")
        .side_input(kStats, stats, "position normaliser (roomsim.position_stats of train)")
        .side_input(kNgcc, ngcc, "the pre-trained NGCC-PHAT (ngcc.trainer's output)")
        .optional()
        .side_input(kVal, val, "validation items, evaluated (setup 1a) after every epoch")
        .optional()
        .output(kCheckpoint, out, "the trained weights, once at the end")
        .optional()
        .cardinality(Cardinality::kAny);
  }

  explicit Trainer(const Options& o)
      : config_(model_config(o)),
        device_(model_device(o)),
        gcc_phat_(o.get_string("time_delay") == "gcc_phat"),
        audio_field_(o.get_string("audio_field")),
        source_field_(o.get_string("source_field")),
        mic_field_(o.get_string("mic_field")),
        ngcc_weights_(o.get_string("ngcc_weights")),
        epochs_option_(o.get_int("epochs")),
        lr_(o.get_float("lr")),
        weight_decay_(o.get_float("weight_decay")),
        warmup_(static_cast<int>(o.get_int("warmup_epochs"))),
        min_lr_ratio_(o.get_float("min_lr_ratio")),
        noise_(o.get_bool("noise")),
        threads_(static_cast<int>(o.get_int("threads"))),
        prefix_(o.get_string("prefix")),
        val_batch_(o.get_int("val_batch")),
        val_threshold_(o.get_float("val_threshold_m")) {
    weights_.audio = o.get_float("lam_audio");
    weights_.locations = o.get_float("lam_locs");
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
    normaliser_ = PositionNormaliser::from_side(ctx.side(kStats));
    fs::create_directories(run.run_dir);
    checkpoints_ = std::make_unique<tc::TrainerCheckpoints>(run.run_dir, prefix_);

    torch::manual_seed(run.seed);  // deterministic initialisation
    model_ = Wav2Pos(config_);
    std::string ngcc = ngcc_weights_;
    if (ngcc.empty() && ctx.connected(kNgcc) && !ctx.side(kNgcc).empty()) {
      ngcc = ctx.side(kNgcc).back().get("checkpoint").data<std::string>()[0];
    }
    if (ngcc.empty() && !gcc_phat_) {
      throw Error(ErrorKind::kConfig, "no pre-trained NGCC-PHAT weights")
          .note(
              "expected option 'ngcc_weights' or a connected side input 'ngcc' (ngcc.trainer), "
              "or time_delay: gcc_phat");
    }
    if (!ngcc.empty()) load_pretrained_ngcc(*model_, ngcc);
    for (auto& p : model_->ngcc->parameters()) p.set_requires_grad(false);  // frozen either way
    model_->to(device_);
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
        "expected a checkpoint of this node's architecture; remove it to start afresh");
    const auto logged = checkpoints_->open_log(
        "epoch,loss,audio_loss,location_loss,lr,steps,ms_per_step,val_loss,val_mae_cm,"
        "val_accuracy",
        start_epoch_);
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
    const torch::Tensor source = to_torch(item.get(source_field_));
    const torch::Tensor mics = to_torch(item.get(mic_field_));
    const torch::Tensor ids_keep = to_torch(item.get("ids_keep"));
    check_batch(ctx, item, audio, source, mics, config_.audio_len);
    check_finite(ctx, item, audio, audio_field_);
    check_finite(ctx, item, source, source_field_);
    check_finite(ctx, item, mics, mic_field_);
    const int64_t b = audio.size(0), k = audio.size(1), length = audio.size(2);

    const auto t0 = Clock::now();
    Rng rng = ctx.rng();
    // The reference's start in [0, L - len - 1), shared by the batch.
    const int64_t span = length - config_.audio_len - 1;
    const int64_t start =
        span > 0 ? static_cast<int64_t>(rng.below(static_cast<uint64_t>(span))) : 0;
    const torch::Tensor clean = ngcc::crop_standardise(audio, start, config_.audio_len);
    torch::Tensor noisy = clean.clone();
    if (noise_) {
      augment::add_colored_noise(noisy.data_ptr<float>(), static_cast<int>(b * k),
                                 static_cast<int>(config_.audio_len), rng, *shaper_, ranges_);
    }
    torch::manual_seed(rng());  // the NGCC's dropout from the per-batch generator too
    const torch::Tensor locs = normaliser_.normalise(source, mics);

    Wav2PosOutput out;
    try {
      out =
          run_model(*model_, gcc_phat_, noisy.to(device_), locs.to(device_), ids_keep.to(device_));
    } catch (const c10::Error& e) {
      throw Error(ErrorKind::kData, describe_item(ctx, &item) + ": " + e.what_without_backtrace());
    } catch (const std::invalid_argument& e) {
      throw Error(ErrorKind::kData, describe_item(ctx, &item) + ": " + e.what());
    }
    const Wav2PosLosses losses = forward_loss(clean.to(device_), out.pred_audio, out.pred_locs,
                                              locs.to(device_), out.mask, weights_);
    const double loss = losses.total.item<double>();
    if (!std::isfinite(loss)) {
      throw Error(ErrorKind::kData, "non-finite loss " + std::to_string(loss) + " at epoch " +
                                        std::to_string(epoch) + ", " + describe_item(ctx, &item))
          .note(checkpoints_->last_good_note());
    }
    optimizer_->zero_grad();
    losses.total.backward();
    optimizer_->step();
    const double step = std::chrono::duration<double>(Clock::now() - t0).count();
    step_seconds_ += step;
    progress_.step(epoch, step);
    const auto db = static_cast<double>(b);
    loss_sum_ += loss * db;
    audio_sum_ += losses.audio.item<double>() * db;
    location_sum_ += losses.locations.item<double>() * db;
    examples_ += b;
    ++steps_;
    ctx.status(progress_.text() + " loss " +
               tc::format_number(loss_sum_ / static_cast<double>(examples_)).substr(0, 6));
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
                               {"log", Tensor::scalar(checkpoints_->files().log_path())},
                               {"epochs", Tensor::scalar<std::int64_t>(finished_epochs())},
                               {"loss", Tensor::scalar(last_loss_)}});
  }

 private:
  int64_t finished_epochs() const {
    return current_epoch_ >= 0 ? current_epoch_ + 1 : start_epoch_;
  }

  void begin_epoch(int64_t epoch) {
    current_epoch_ = epoch;
    tc::set_learning_rate(*optimizer_, tc::reference_lr(static_cast<int>(epoch), lr_, warmup_,
                                                        static_cast<int>(epochs_), min_lr_ratio_));
    loss_sum_ = audio_sum_ = location_sum_ = step_seconds_ = 0;
    examples_ = steps_ = 0;
  }

  void checkpoint_epoch(NodeContext& ctx) {
    const int64_t finished = current_epoch_ + 1;
    progress_.end_epoch();
    const double lr = tc::learning_rate(*optimizer_);
    const double n = examples_ > 0 ? static_cast<double>(examples_) : 1.0;
    last_loss_ = loss_sum_ / n;
    std::string val_cols = ",,";
    std::string val_text;
    if (!val_.empty()) {
      const Validation v = validate(ctx);
      val_cols = tc::format_number(v.loss) + "," + tc::format_number(v.mae_cm) + "," +
                 tc::format_number(v.accuracy);
      val_text = " val loss " + tc::format_number(v.loss) + " source MAE " +
                 tc::format_number(v.mae_cm) + " cm acc " + tc::format_number(v.accuracy);
    }
    checkpoints_->save(finished, *model_, optimizer_.get(), lr);
    const double ms = steps_ > 0 ? 1e3 * step_seconds_ / static_cast<double>(steps_) : 0.0;
    checkpoints_->append_log(std::to_string(finished) + "," + tc::format_number(last_loss_) + "," +
                             tc::format_number(audio_sum_ / n) + "," +
                             tc::format_number(location_sum_ / n) + "," + tc::format_number(lr) +
                             "," + std::to_string(steps_) + "," + tc::format_number(ms) + "," +
                             val_cols);
    ctx.info("epoch " + std::to_string(finished) + "/" + std::to_string(epochs_) + " loss " +
             tc::format_number(last_loss_) + " lr " + tc::format_number(lr) + val_text + " (" +
             tc::format_number(ms) + " ms/step)");
  }

  struct Validation {
    double loss = 0, mae_cm = 0, accuracy = 0;
  };

  // Setup 1a, eval mode, crop start 0, no noise.
  Validation validate(NodeContext& ctx) {
    torch::NoGradGuard no_grad;
    model_->eval();
    Validation v;
    int64_t count = 0;
    for (size_t first = 0; first < val_.size(); first += static_cast<size_t>(val_batch_)) {
      const size_t last = std::min(val_.size(), first + static_cast<size_t>(val_batch_));
      std::vector<torch::Tensor> audio, source, mics;
      for (size_t i = first; i < last; ++i) {
        audio.push_back(to_torch(val_[i].get(audio_field_)));
        source.push_back(to_torch(val_[i].get(source_field_)));
        mics.push_back(to_torch(val_[i].get(mic_field_)));
      }
      const auto a = torch::stack(audio), s = torch::stack(source), m = torch::stack(mics);
      check_batch(ctx, val_[first], a, s, m, config_.audio_len);
      const int64_t b = a.size(0);
      const auto x = ngcc::crop_standardise(a, 0, config_.audio_len).to(device_);
      const auto locs = normaliser_.normalise(s, m).to(device_);
      const auto ids = ids_keep_tensor(preset_mask(MaskPreset::k1a, b, a.size(1))).to(device_);
      const Wav2PosOutput out = run_model(*model_, gcc_phat_, x, locs, ids);
      const auto losses = forward_loss(x, out.pred_audio, out.pred_locs, locs, out.mask, weights_);
      const auto err = source_error_m(
          source_position_m(out.pred_locs.cpu(), normaliser_.mu, normaliser_.sigma), s);
      v.loss += losses.total.item<double>() * static_cast<double>(b);
      v.mae_cm += 100.0 * err.sum().item<double>();
      v.accuracy += (err < val_threshold_).sum().item<double>();
      count += b;
    }
    model_->train();
    if (count > 0) {
      const auto n = static_cast<double>(count);
      v.loss /= n;
      v.mae_cm /= n;
      v.accuracy /= n;
    }
    return v;
  }

  Wav2PosConfig config_;
  torch::Device device_;
  bool gcc_phat_;
  std::string audio_field_, source_field_, mic_field_, ngcc_weights_;
  int64_t epochs_option_;
  double lr_, weight_decay_;
  int warmup_;
  double min_lr_ratio_;
  bool noise_;
  int threads_;
  std::string prefix_;
  int64_t val_batch_;
  double val_threshold_;
  LossWeights weights_;
  augment::ColoredNoiseRanges ranges_;

  int64_t epochs_ = 0;
  PositionNormaliser normaliser_;
  std::unique_ptr<tc::TrainerCheckpoints> checkpoints_;
  tc::TrainingProgress progress_;
  Wav2Pos model_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<augment::ColoredNoiseShaper> shaper_;
  std::vector<Item> val_;

  int64_t start_epoch_ = 0;     // first epoch to train (after a resume)
  int64_t current_epoch_ = -1;  // epoch being trained, -1 before the first batch
  double loss_sum_ = 0, audio_sum_ = 0, location_sum_ = 0, step_seconds_ = 0, last_loss_ = 0;
  int64_t examples_ = 0, steps_ = 0;
};

}  // namespace

NodeType trainer_node_type() { return make_node_type<Trainer>("wav2pos.trainer"); }

}  // namespace w2p::wav2pos
