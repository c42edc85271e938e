// Node-level tests of wav2pos.masker / trainer / evaluator: tiny real runs through the built
// w2p-run. Data: 16 anechoic items simulated once per suite (noise "utterances" in a
// 1 x 1 x 0.5 m room, so every delay fits 80 lags), stored with the position statistics; a tiny
// NGCC-PHAT (4 channels, 31-tap SincConv) pre-trained in the same pipeline and a tiny wav2pos
// (width 16, 1 block, 256-sample crops) keep each run to seconds.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace fs = std::filesystem;

namespace {

std::string quote(const fs::path& p) { return w2p::test::shell_quote(p.string()); }

using Output = w2p::test::CommandResult;

Output run_pipeline(const fs::path& yaml_file, const std::string& yaml, const fs::path& run_dir,
                    const std::string& extra = "") {
  return w2p::test::run_pipeline(W2P_RUN_EXE, W2P_PLUGIN_DIR, yaml_file, yaml, run_dir, extra);
}

// 4 noise utterances x 4 scenes -> 16 items audio f32[7, 1024] + the position statistics.
const char* kSimulate =
    "graph: {seed: 3, max_in_flight: 16}\n"
    "channels: {items: {store: items.h5}, stats: {store: stats.h5}}\n"
    "nodes:\n"
    "  - {name: corpus, type: core.tensor_source, options: {count: 4, shape: [4000], field: "
    "audio, fill: normal}, outputs: {out: utterances}}\n"
    "  - {name: geometry, type: roomsim.wav2pos_geometry, options: {repeats: 4, room_dim: [1.0, "
    "1.0, 0.5], source_margin: [0.2, 0.2, 0.1]}, inputs: {utterance: utterances}, outputs: "
    "{scene: scenes}}\n"
    "  - {name: sim, type: roomsim.shoebox, options: {crop_start: 1000, crop_length: 1024}, "
    "inputs: {scene: scenes}, outputs: {item: items}}\n"
    "  - {name: stats, type: roomsim.position_stats, options: {field: source_pos}, inputs: {in: "
    "items}, outputs: {stats: stats}}\n";

const char* kModel =
    "{audio_len: 256, embed_dim: 16, depth: 1, num_heads: 2, decoder_embed_dim: 16, "
    "decoder_depth: 1, decoder_num_heads: 2, ngcc_max_tau: 80, ngcc_num_channels: 4, "
    "ngcc_sinc_kernel: 31, baseline_max_tau: 80}";

std::string pipeline(const fs::path& data) {
  const std::string items = (data / "items.h5").string();
  const std::string stats = (data / "stats.h5").string();
  std::string model = kModel;
  std::string trainer_model = model;
  trainer_model.replace(trainer_model.find(", baseline_max_tau: 80"), 22, "");
  return "vars: {epochs: 2}\n"
         "graph: {seed: 9, max_in_flight: 8}\n"
         "channels: {predictions: {store: predictions.h5}, summary: {store: summary.h5}}\n"
         "nodes:\n"
         "  - {name: stats, type: core.store_reader, options: {path: '" +
         stats +
         "'}, outputs: {items: stats}}\n"
         "  - {name: ngcc_reader, type: core.store_reader, options: {path: '" +
         items +
         "', fields: [audio, tdoa]}, outputs: {items: ngcc_items}}\n"
         "  - {name: ngcc_batch, type: core.batch, options: {size: 4}, inputs: {in: ngcc_items}, "
         "outputs: {out: ngcc_batches}}\n"
         "  - {name: ngcc_trainer, type: ngcc.trainer, options: {max_tau: 80, sig_len: 256, "
         "num_channels: 4, sinc_kernel: 31}, inputs: {batch: ngcc_batches}, outputs: "
         "{checkpoint: ngcc}}\n"
         "  - name: reader\n"
         "    type: core.store_reader\n"
         "    epochs: ${epochs}\n"
         "    options: {path: '" +
         items +
         "', shuffle: true, fields: [audio, source_pos, mic_pos]}\n"
         "    outputs: {items: train}\n"
         "  - {name: val_reader, type: core.store_reader, options: {path: '" +
         items +
         "', limit: 6, fields: [audio, source_pos, mic_pos, mic_offset]}, outputs: {items: "
         "val}}\n"
         "  - {name: batch, type: core.batch, options: {size: 4}, inputs: {in: train}, outputs: "
         "{out: batches}}\n"
         "  - {name: masker, type: wav2pos.masker, inputs: {in: batches}, outputs: {out: "
         "masked}}\n"
         "  - name: trainer\n"
         "    type: wav2pos.trainer\n"
         "    options: " +
         trainer_model.substr(0, trainer_model.size() - 1) +
         ", epochs: 2, warmup_epochs: 1, val_batch: 4}\n"
         "    inputs: {batch: masked, stats: stats, ngcc: ngcc, val: val}\n"
         "    outputs: {checkpoint: weights}\n"
         "  - {name: test_batch, type: core.batch, options: {size: 4}, inputs: {in: val}, "
         "outputs: {out: test_batches}}\n"
         "  - name: evaluator\n"
         "    type: wav2pos.evaluator\n"
         "    options: " +
         model +
         "\n"
         "    inputs: {batch: test_batches, weights: weights, stats: stats, ngcc: ngcc}\n"
         "    outputs: {predictions: predictions, summary: summary}\n";
}

// The summary store read back with h5py: "setup method mae_cm accuracy count" per line.
std::map<std::string, std::vector<double>> read_summary(const fs::path& store,
                                                        std::string* text = nullptr) {
  const auto r = w2p::test::run_command(
      "HDF5_USE_FILE_LOCKING=FALSE /usr/bin/python3 -c \"import h5py,sys\n"
      "f=h5py.File(sys.argv[1],'r')\n"
      "def s(v): return v.decode() if isinstance(v, bytes) else str(v)\n"
      "for i in range(len(f['setup'])): print(s(f['setup'][i])+'/'+s(f['method'][i]), "
      "f['mae_cm'][i], f['accuracy'][i], f['count'][i], f['failures'][i], f['mic_mae_cm'][i])\" " +
      quote(store) + " 2>&1");
  if (text != nullptr) *text = r.output;
  std::map<std::string, std::vector<double>> rows;
  std::stringstream s(r.output);
  std::string key;
  while (s >> key) {
    std::vector<double> v(5);
    for (double& x : v) {
      std::string word;
      s >> word;
      x = std::stod(word);  // accepts "nan" (operator>> does not)
    }
    rows[key] = v;
  }
  return rows;
}

class Wav2PosNodes : public ::testing::Test {
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
  Output run(const std::string& name, const std::string& extra = "") {
    return run_pipeline(dir_.path() / (name + ".yaml"), pipeline(data_->path() / "sim"),
                        dir_.path() / name, extra);
  }

  static w2p::test::ScratchDir* data_;
  w2p::test::ScratchDir dir_;
};

w2p::test::ScratchDir* Wav2PosNodes::data_ = nullptr;

TEST_F(Wav2PosNodes, TrainsCheckpointsAndEvaluatesAgainstTheBaselines) {
  const Output out = run("run");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const fs::path dir = dir_.path() / "run";
  EXPECT_TRUE(fs::exists(dir / "wav2pos_epoch001.pt"));
  EXPECT_TRUE(fs::exists(dir / "wav2pos_epoch002.pt"));
  EXPECT_TRUE(fs::exists(dir / "wav2pos_weights.pt"));
  const auto rows = w2p::test::read_csv(dir / "wav2pos_train_log.csv");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0], "epoch");
  for (int e = 1; e <= 2; ++e) {
    ASSERT_EQ(rows[e].size(), 10u) << e;
    for (int c : {1, 2, 3, 7, 8, 9}) {
      EXPECT_TRUE(std::isfinite(std::stod(rows[e][c]))) << "epoch " << e << " column " << c;
    }
    EXPECT_EQ(rows[e][5], "4");  // 16 items / batch 4
  }
  // 3 setups x 3 methods, 6 items each.
  std::string text;
  const auto summary = read_summary(dir / "summary.h5", &text);
  ASSERT_EQ(summary.size(), 9u) << text;
  for (const auto& [key, v] : summary) {
    EXPECT_EQ(v[2], 6) << key;
    EXPECT_TRUE(std::isfinite(v[0]) || v[3] == 6) << key;
  }
  // GCC-PHAT + multilateration on anechoic noise: TDOA (1a) and TOA (1b, which needs the
  // microphone crop offset right) both find the source to within a few centimetres.
  EXPECT_LT(summary.at("1a/gcc_phat+multilateration")[0], 5.0);
  EXPECT_LT(summary.at("1b/gcc_phat+multilateration")[0], 5.0);
  EXPECT_LT(summary.at("2a/gcc_phat+multilateration")[0], 5.0);
  EXPECT_EQ(summary.at("1a/gcc_phat+multilateration")[1], 1.0);
  // Only 2a masks a microphone location.
  EXPECT_TRUE(std::isnan(summary.at("1a/wav2pos")[4]));
  EXPECT_TRUE(std::isfinite(summary.at("2a/wav2pos")[4]));

  // The last epoch checkpoint holds the final weights: evaluated on its own (no NGCC baseline),
  // it gives the same wav2pos errors.
  const std::string evaluate =
      "graph: {seed: 9}\n"
      "channels: {summary: {store: summary.h5}}\n"
      "nodes:\n"
      "  - {name: stats, type: core.store_reader, options: {path: '" +
      (data_->path() / "sim" / "stats.h5").string() +
      "'}, outputs: {items: stats}}\n"
      "  - {name: val_reader, type: core.store_reader, options: {path: '" +
      (data_->path() / "sim" / "items.h5").string() +
      "', limit: 6, fields: [audio, source_pos, mic_pos, mic_offset]}, outputs: {items: val}}\n"
      "  - {name: test_batch, type: core.batch, options: {size: 4}, inputs: {in: val}, outputs: "
      "{out: test_batches}}\n"
      "  - name: evaluator\n"
      "    type: wav2pos.evaluator\n"
      "    options: " +
      std::string(kModel).substr(0, std::string(kModel).size() - 1) + ", weights: '" +
      (dir / "wav2pos_epoch002.pt").string() +
      "'}\n"
      "    inputs: {batch: test_batches, stats: stats}\n"
      "    outputs: {summary: summary}\n";
  const Output again = run_pipeline(dir_.path() / "evaluate.yaml", evaluate, dir_.path() / "eval");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  const auto from_checkpoint = read_summary(dir_.path() / "eval" / "summary.h5");
  ASSERT_EQ(from_checkpoint.size(), 6u);  // no NGCC-PHAT baseline without its weights
  for (const char* setup : {"1a", "1b", "2a"}) {
    const std::string key = std::string(setup) + "/wav2pos";
    EXPECT_DOUBLE_EQ(from_checkpoint.at(key)[0], summary.at(key)[0]) << key;
  }
}

TEST_F(Wav2PosNodes, ResumeAfterAnInterruptionEndsWithTheSameWeights) {
  const Output full = run("full");
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const Output first = run("resumed", "--var epochs=1 --set trainer.epochs=2");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const fs::path resumed = dir_.path() / "resumed";
  ASSERT_TRUE(fs::exists(resumed / "wav2pos_epoch001.pt"));
  ASSERT_FALSE(fs::exists(resumed / "wav2pos_epoch002.pt"));
  const Output second = run("resumed", "--resume");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_TRUE(w2p::test::read_text(resumed / "wav2pos_weights.pt") ==
              w2p::test::read_text(dir_.path() / "full" / "wav2pos_weights.pt"))
      << "final weights differ";
  const auto rows = w2p::test::read_csv(resumed / "wav2pos_train_log.csv");
  const auto want = w2p::test::read_csv(dir_.path() / "full" / "wav2pos_train_log.csv");
  ASSERT_EQ(rows.size(), 3u);
  ASSERT_EQ(want.size(), 3u);
  for (std::size_t e = 1; e <= 2; ++e) {
    for (std::size_t col : {0u, 1u, 2u, 3u, 4u, 5u, 7u, 8u, 9u}) {  // all but the step time
      EXPECT_EQ(rows[e].at(col), want[e].at(col)) << "epoch " << e << " column " << col;
    }
  }
}

TEST_F(Wav2PosNodes, PlainGccPhatFeatureIsAnOptionSwap) {
  const Output out =
      run("gcc", "--set trainer.time_delay=gcc_phat --set evaluator.time_delay=gcc_phat");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(read_summary(dir_.path() / "gcc" / "summary.h5").size(), 9u);
}

TEST_F(Wav2PosNodes, BadInputIsNamed) {
  // NGCC weights of another architecture: the key and both shapes.
  Output out = run("arch", "--set trainer.ngcc_num_channels=8 --set evaluator.ngcc_num_channels=8");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.output.find("NGCC weights"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("ngcc.backbone"), std::string::npos) << out.output;
  // A mask that keeps one audio channel.
  out = run("mask", "--set masker.strategy=keep --set 'masker.keep=[1, 2, 3, 4, 5, 6, 7]'");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.output.find("masker"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("audio"), std::string::npos) << out.output;
  // An unknown setup is a configuration error before anything runs.
  out = run("setup", "--set 'evaluator.setups=[1a, 3c]'");
  EXPECT_EQ(out.exit_code, 2) << out.output;
  EXPECT_NE(out.output.find("3c"), std::string::npos) << out.output;
}

}  // namespace
