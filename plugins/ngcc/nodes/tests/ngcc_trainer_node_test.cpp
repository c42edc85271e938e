// Node-level tests of ngcc.trainer: a tiny real pre-training run through the built w2p-run.
// Data: 16 anechoic items simulated once per suite (noise "utterances" in a 1 x 1 x 0.5 m room,
// so every TDOA fits max_tau 80), stored and replayed by core.store_reader; a tiny model
// (4 channels, 31-tap SincConv, 256-sample crops) keeps each run to a few seconds.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace fs = std::filesystem;

namespace {

using Output = w2p::test::CommandResult;

Output run_pipeline(const fs::path& yaml_file, const std::string& yaml, const fs::path& run_dir,
                    const std::string& extra = "") {
  return w2p::test::run_pipeline(W2P_RUN_EXE, W2P_PLUGIN_DIR, yaml_file, yaml, run_dir, extra);
}

// 4 noise utterances x 4 scenes -> 16 items audio f32[7, 1024], tdoa f64[7, 7].
const char* kSimulate =
    "graph: {seed: 3, max_in_flight: 16}\n"
    "channels: {items: {store: items.h5}}\n"
    "nodes:\n"
    "  - {name: corpus, type: core.tensor_source, options: {count: 4, shape: [4000], field: "
    "audio, fill: normal}, outputs: {out: utterances}}\n"
    "  - {name: geometry, type: roomsim.wav2pos_geometry, options: {repeats: 4, room_dim: [1.0, "
    "1.0, 0.5], source_margin: [0.2, 0.2, 0.1]}, inputs: {utterance: utterances}, outputs: "
    "{scene: scenes}}\n"
    "  - {name: sim, type: roomsim.shoebox, options: {crop_start: 1000, crop_length: 1024}, "
    "inputs: {scene: scenes}, outputs: {item: items}}\n"
    "  - {name: sink, type: core.null_sink, inputs: {in: items}}\n";

std::string train_pipeline(const fs::path& items) {
  const std::string path = items.string();
  return "vars: {epochs: 2}\n"
         "graph: {seed: 9, max_in_flight: 8}\n"
         "nodes:\n"
         "  - name: reader\n"
         "    type: core.store_reader\n"
         "    epochs: ${epochs}\n"
         "    options: {path: '" +
         path +
         "', shuffle: true, fields: [audio, tdoa]}\n"
         "    outputs: {items: train}\n"
         "  - {name: val_reader, type: core.store_reader, options: {path: '" +
         path +
         "', limit: 4, fields: [audio, tdoa]}, outputs: {items: val}}\n"
         "  - {name: batch, type: core.batch, options: {size: 4}, inputs: {in: train}, outputs: "
         "{out: batches}}\n"
         "  - name: trainer\n"
         "    type: ngcc.trainer\n"
         "    options: {epochs: 2, warmup_epochs: 1, max_tau: 80, sig_len: 256, num_channels: 4, "
         "sinc_kernel: 31, val_batch: 3}\n"
         "    inputs: {batch: batches, val: val}\n"
         "    outputs: {checkpoint: weights}\n"
         "  - {name: log, type: core.log, inputs: {in: weights}}\n"
         "  - {name: test_batch, type: core.batch, options: {size: 3}, inputs: {in: val}, "
         "outputs: {out: test_batches}}\n"
         "  - name: evaluator\n"
         "    type: ngcc.evaluator\n"
         "    options: {max_tau: 80, sig_len: 256, num_channels: 4, sinc_kernel: 31}\n"
         "    inputs: {batch: test_batches, weights: weights}\n"
         "    outputs: {metrics: metrics}\n"
         "  - {name: metrics_log, type: core.log, inputs: {in: metrics}}\n";
}

class NgccTrainer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new w2p::test::ScratchDir();
    const Output out =
        run_pipeline(data_->path() / "simulate.yaml", kSimulate, data_->path() / "sim");
    ASSERT_EQ(out.exit_code, 0) << out.output;
  }
  static void TearDownTestSuite() {
    delete data_;
    data_ = nullptr;
  }
  Output train(const std::string& run, const std::string& extra = "") {
    return run_pipeline(dir_.path() / (run + ".yaml"), train_pipeline(items()), dir_.path() / run,
                        extra);
  }
  static fs::path items() { return data_->path() / "sim" / "items.h5"; }

  static w2p::test::ScratchDir* data_;
  w2p::test::ScratchDir dir_;
};

w2p::test::ScratchDir* NgccTrainer::data_ = nullptr;

TEST_F(NgccTrainer, TrainsWithFiniteLossAndCheckpointsEveryEpoch) {
  const Output out = train("run");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const fs::path run = dir_.path() / "run";
  EXPECT_TRUE(fs::exists(run / "ngcc_epoch001.pt"));
  EXPECT_TRUE(fs::exists(run / "ngcc_epoch002.pt"));
  EXPECT_TRUE(fs::exists(run / "ngcc_weights.pt"));
  EXPECT_FALSE(fs::exists(run / "ngcc_epoch002.pt.tmp"));
  const auto rows = w2p::test::read_csv(run / "ngcc_train_log.csv");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0], "epoch");
  for (int e = 1; e <= 2; ++e) {
    ASSERT_GE(rows[e].size(), 9u);
    EXPECT_EQ(rows[e][0], std::to_string(e));
    const double loss = std::stod(rows[e][1]);
    EXPECT_TRUE(std::isfinite(loss) && loss > 0) << rows[e][1];
    EXPECT_EQ(rows[e][3], "4");                         // 16 items / batch 4
    EXPECT_TRUE(std::isfinite(std::stod(rows[e][5])));  // validation loss
    const double acc = std::stod(rows[e][8]);
    EXPECT_GE(acc, 0.0);
    EXPECT_LE(acc, 1.0);
  }
  // Evaluation of the final weights: 4 items x 15 microphone pairs; plain GCC-PHAT finds every
  // delay of these anechoic noise scenes to within a sample.
  const auto eval = w2p::test::read_csv(run / "ngcc_eval.csv");
  ASSERT_EQ(eval.size(), 3u);
  EXPECT_EQ(eval[1][0], "ngcc");
  EXPECT_EQ(eval[2][0], "gcc");
  EXPECT_EQ(eval[1][4], "60");
  EXPECT_TRUE(std::isfinite(std::stod(eval[1][1])));
  EXPECT_LT(std::stod(eval[2][1]), 1.0);
  EXPECT_EQ(std::stod(eval[2][3]), 1.0);
  // Warm-up of 1 epoch: epoch 1 runs at lr 0 (the reference's QUIRK), epoch 2 at lr 1e-3.
  EXPECT_EQ(std::stod(rows[1][2]), 0.0);
  EXPECT_NEAR(std::stod(rows[2][2]), 1e-3, 1e-12);
}

TEST_F(NgccTrainer, ATinyPreTrainingLowersTheLoss) {
  // 8 epochs of 4 steps at lr 1e-3 from the start (no warm-up), without the augmentation's and
  // dropout's noise: the training loss must fall well below the first epoch's.
  const Output out = train("lowers",
                           "--var epochs=8 --set trainer.epochs=8 --set "
                           "trainer.warmup_epochs=0 --set trainer.noise=false --set "
                           "trainer.dropout=0.0");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const auto rows = w2p::test::read_csv(dir_.path() / "lowers" / "ngcc_train_log.csv");
  ASSERT_EQ(rows.size(), 9u);
  const double first = std::stod(rows[1][1]), last = std::stod(rows[8][1]);
  EXPECT_LT(last, 0.6 * first) << "epoch 1 loss " << first << ", epoch 8 loss " << last;
}

TEST_F(NgccTrainer, ResumeAfterAnInterruptionEndsWithTheSameWeights) {
  const Output full = train("full");
  ASSERT_EQ(full.exit_code, 0) << full.output;
  // "Interrupted": the stream stops after epoch 1 of the 2-epoch schedule.
  const Output first = train("resumed", "--var epochs=1");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const fs::path resumed = dir_.path() / "resumed";
  ASSERT_TRUE(fs::exists(resumed / "ngcc_epoch001.pt"));
  ASSERT_FALSE(fs::exists(resumed / "ngcc_epoch002.pt"));
  const Output second = train("resumed", "--resume");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  const fs::path run = dir_.path() / "full";
  // (Checkpoint archives hold LibTorch's process-dependent module names, so the state_dict
  // files are compared; they hold every parameter and buffer.)
  EXPECT_TRUE(fs::exists(resumed / "ngcc_epoch002.pt"));
  EXPECT_TRUE(w2p::test::read_text(resumed / "ngcc_weights.pt") ==
              w2p::test::read_text(run / "ngcc_weights.pt"))
      << "final weights differ";
  const auto rows = w2p::test::read_csv(resumed / "ngcc_train_log.csv");
  ASSERT_EQ(rows.size(), 3u);
  const auto want = w2p::test::read_csv(run / "ngcc_train_log.csv");
  ASSERT_EQ(want.size(), 3u);
  for (std::size_t e = 1; e <= 2; ++e) {
    for (std::size_t col : {0u, 1u, 2u, 3u, 5u, 6u, 7u, 8u}) {  // all but the step time
      EXPECT_EQ(rows[e].at(col), want[e].at(col)) << "epoch " << e << " column " << col;
    }
  }
}

TEST_F(NgccTrainer, BadCheckpointsAreReportedOnResume) {
  const Output first = train("run", "--var epochs=1");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  // Another architecture: the error names the checkpoint and the mismatching key.
  const Output other = train("run", "--resume --set trainer.num_channels=8");
  EXPECT_NE(other.exit_code, 0) << other.output;
  EXPECT_NE(other.output.find("cannot resume from checkpoint"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("ngcc_epoch001.pt"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("low_hz_"), std::string::npos) << other.output;
  // A truncated checkpoint.
  const fs::path garbage = dir_.path() / "corrupt" / "ngcc_epoch001.pt";
  fs::create_directories(garbage.parent_path());
  std::ofstream(garbage) << "PK not a checkpoint";
  const Output corrupt = train("corrupt", "--resume");
  EXPECT_NE(corrupt.exit_code, 0) << corrupt.output;
  EXPECT_NE(corrupt.output.find("cannot resume from checkpoint"), std::string::npos)
      << corrupt.output;
}

TEST_F(NgccTrainer, BadOptionsAreReported) {
  const Output out = train("bad", "--set trainer.sinc_kernel=32 --check");
  EXPECT_NE(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("sinc_kernel"), std::string::npos) << out.output;
}

}  // namespace
