// Node-level tests of roomsim.wav2pos_geometry, roomsim.shoebox and roomsim.position_stats: tiny
// real pipelines through the built w2p-run (core.tensor_source stands in for the LibriSpeech
// reader), their stores read back with the HDF5 C API.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/fixture_h5.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using w2p::test::H5Reader;

namespace {

struct Output {
  int code = -1;
  std::string text;
};

Output shell(const std::string& command) {
  const auto r = w2p::test::run_command(command + " 2>&1");
  return Output{r.exit_code, r.output};
}

std::string quote(const fs::path& p) { return w2p::test::shell_quote(p.string()); }

// utterances (tensor_source, `count` x f32[length], 2 epochs) -> geometry -> shoebox -> store.
std::string scene_pipeline(int count, int length, const std::string& geometry_options,
                           const std::string& shoebox_options = "{}", int epochs = 2) {
  return "graph: {seed: 11, max_in_flight: 16}\n"
         "channels: {utterances: {store: utterances.h5}, items: {store: items.h5}}\n"
         "nodes:\n"
         "  - {name: corpus, type: core.tensor_source, epochs: " +
         std::to_string(epochs) + ", options: {count: " + std::to_string(count) + ", shape: [" +
         std::to_string(length) +
         "], field: audio, fill: normal}, outputs: {out: utterances}}\n"
         "  - {name: geometry, type: roomsim.wav2pos_geometry, options: " +
         geometry_options + ", inputs: {utterance: utterances}, outputs: {scene: scenes}}\n" +
         "  - {name: sim, type: roomsim.shoebox, options: " + shoebox_options +
         ", inputs: {scene: scenes}, outputs: {item: items}}\n"
         "  - {name: sink, type: core.null_sink, inputs: {in: items}}\n";
}

class RoomsimNodes : public ::testing::Test {
 protected:
  Output run(const std::string& yaml, const std::string& run_dir, const std::string& extra = "") {
    const fs::path file = dir_ / (run_dir + ".yaml");
    std::ofstream(file) << yaml;
    return shell(std::string("'") + W2P_RUN_EXE + "' --quiet --plugin-path '" + W2P_PLUGIN_DIR +
                 "' --run-dir " + quote(dir_ / run_dir) + " " + extra + " " + quote(file));
  }
  std::string store(const std::string& run_dir, const std::string& name) const {
    return (dir_ / run_dir / name).string();
  }
  w2p::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

double distance(const double* a, const double* b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                   (a[2] - b[2]) * (a[2] - b[2]));
}

// Lag in [0, max_lag] maximising sum_t x[t] y[t + lag]: where y repeats x delayed.
int best_lag(const float* x, const float* y, int n, int max_lag) {
  int best = 0;
  double best_value = -1e300;
  for (int lag = 0; lag <= max_lag; ++lag) {
    double sum = 0;
    for (int t = 0; t + lag < n; ++t) sum += static_cast<double>(x[t]) * y[t + lag];
    if (sum > best_value) {
      best_value = sum;
      best = lag;
    }
  }
  return best;
}

constexpr int kUtterances = 3;
constexpr int kRepeats = 2;
constexpr int kLength = 26000;

TEST_F(RoomsimNodes, AnechoicItemsHaveTheWav2posLayoutAndLabels) {
  const Output out = run(
      scene_pipeline(kUtterances, kLength, "{repeats: " + std::to_string(kRepeats) + "}"), "run");
  ASSERT_EQ(out.code, 0) << out.text;
  const H5Reader items(store("run", "items.h5"));
  const H5Reader utts(store("run", "utterances.h5"));
  const auto audio = items.read<float>("audio");
  const auto source = items.read<double>("source_pos");
  const auto mics = items.read<double>("mic_pos");
  const auto tdoa = items.read<double>("tdoa");
  const auto uidx = items.read<std::int64_t>("utterance_index");
  const auto repeat = items.read<std::int64_t>("repeat");
  const auto offset = items.read<std::int64_t>("mic_offset");
  const auto order = items.read<std::int64_t>("max_order");
  const auto dry = utts.read<float>("audio");
  const std::int64_t n = 2 * kUtterances * kRepeats;  // 2 epochs
  ASSERT_EQ(audio.shape, (std::vector<std::int64_t>{n, 7, 16000}));
  EXPECT_EQ(source.shape, (std::vector<std::int64_t>{n, 3}));
  EXPECT_EQ(mics.shape, (std::vector<std::int64_t>{n, 6, 3}));
  EXPECT_EQ(tdoa.shape, (std::vector<std::int64_t>{n, 7, 7}));
  ASSERT_EQ(dry.shape, (std::vector<std::int64_t>{2 * kUtterances, kLength}));
  EXPECT_NE(items.attr_string("/audio", "w2p_doc").find("crop_start + 41"), std::string::npos);

  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t epoch = k / (kUtterances * kRepeats);
    EXPECT_EQ(uidx.values[k], (k / kRepeats) % kUtterances);
    EXPECT_EQ(repeat.values[k], k % kRepeats);
    EXPECT_EQ(offset.values[k], 41);
    EXPECT_EQ(order.values[k], 0);
    // Channel 0 is the dry crop [8000, 24000) of the item's utterance, bit for bit.
    const float* ch0 = audio.values.data() + k * 7 * 16000;
    const float* utt = dry.values.data() + (epoch * kUtterances + uidx.values[k]) * kLength;
    for (int t = 0; t < 16000; ++t) ASSERT_EQ(ch0[t], utt[8000 + t]) << "item " << k << " t " << t;
    // Labels agree with the stored positions; every microphone on its face.
    const double* s = source.values.data() + 3 * k;
    const double* m = mics.values.data() + 18 * k;
    const double faces[6][2] = {{2, 0}, {2, 2}, {1, 0}, {0, 0}, {0, 5}, {1, 5}};
    for (int i = 0; i < 6; ++i) {
      EXPECT_EQ(m[3 * i + static_cast<int>(faces[i][0])], faces[i][1]) << "mic " << i;
      const double toa = distance(s, m + 3 * i) * 16000.0 / 343.0;
      EXPECT_NEAR(tdoa.values[k * 49 + (i + 1) * 7], toa, 1e-9);
      EXPECT_NEAR(tdoa.values[k * 49 + (i + 1)], -toa, 1e-9);
      // QUIRK: microphone crops start at +41, so the audio lags the dry crop by toa - 1.
      const float* chi = ch0 + (i + 1) * 16000;
      const int lag = best_lag(ch0, chi, 16000, 400);
      EXPECT_LE(std::abs(lag - (toa - 1.0)), 0.6) << "item " << k << " mic " << i;
    }
    EXPECT_GE(s[0], 0.5);
    EXPECT_LE(s[0], 4.5);
    EXPECT_GE(s[2], 0.25);
    EXPECT_LE(s[2], 1.75);
  }
  // Microphones: fixed per utterance index (across repeats and epochs); sources: new per scene.
  const std::int64_t per_epoch = kUtterances * kRepeats;
  for (std::int64_t k = 0; k < per_epoch; ++k) {
    for (std::int64_t other : {k + per_epoch, k % kRepeats == 0 ? k + 1 : k - 1}) {
      for (int j = 0; j < 18; ++j) {
        ASSERT_EQ(mics.values[18 * k + j], mics.values[18 * other + j]) << k << " vs " << other;
      }
      EXPECT_NE(source.values[3 * k], source.values[3 * other]) << k << " vs " << other;
    }
  }
  EXPECT_NE(mics.values[0], mics.values[18 * kRepeats]);  // another utterance, other mics
}

TEST_F(RoomsimNodes, FixAlignmentCutsTheMicrophonesAtTheFilterDelay) {
  const Output out =
      run(scene_pipeline(1, kLength, "{repeats: 2}", "{fix_alignment: true}", 1), "fixed");
  ASSERT_EQ(out.code, 0) << out.text;
  const Output quirk = run(scene_pipeline(1, kLength, "{repeats: 2}", "{}", 1), "quirk");
  ASSERT_EQ(quirk.code, 0) << quirk.text;
  const H5Reader items(store("fixed", "items.h5"));
  const auto audio = items.read<float>("audio");
  const auto source = items.read<double>("source_pos");
  const auto mics = items.read<double>("mic_pos");
  EXPECT_EQ(items.read<std::int64_t>("mic_offset").values[0], 40);
  EXPECT_NE(items.attr_string("/audio", "w2p_doc").find("crop_start + 40"), std::string::npos);
  const auto quirk_audio = H5Reader(store("quirk", "items.h5")).read<float>("audio");
  ASSERT_EQ(quirk_audio.shape, audio.shape);
  for (int k = 0; k < 2; ++k) {
    const float* fixed = audio.values.data() + k * 7 * 16000;
    const float* early = quirk_audio.values.data() + k * 7 * 16000;
    for (int t = 0; t < 16000; ++t) ASSERT_EQ(early[t], fixed[t]);  // same dry crop
    for (int i = 0; i < 6; ++i) {
      // Same scene: the reference's crop is the fixed one advanced by exactly one sample.
      const float* a = early + (i + 1) * 16000;
      const float* b = fixed + (i + 1) * 16000;
      for (int t = 0; t + 1 < 16000; ++t) ASSERT_EQ(a[t], b[t + 1]) << "mic " << i << " t " << t;
      // And the fixed crop lags the dry crop by the time of arrival (nearest sample).
      const double toa =
          distance(source.values.data() + 3 * k, mics.values.data() + 18 * k + 3 * i) * 16000 /
          343.0;
      EXPECT_LE(std::abs(best_lag(fixed, b, 16000, 400) - toa), 0.6)
          << "item " << k << " mic " << i;
    }
  }
}

TEST_F(RoomsimNodes, CroppedItemsCutTheFullSimulation) {
  // The cropped mode simulates only the utterance prefix the crop can see: same samples as the
  // full microphone signals up to FFT rounding.
  const std::string geometry = "{repeats: 1, anechoic_prob: 0.5}";
  const Output full = run(scene_pipeline(2, kLength, geometry, "{output: full}", 1), "full");
  ASSERT_EQ(full.code, 0) << full.text;
  const Output cropped = run(scene_pipeline(2, kLength, geometry, "{}", 1), "cropped");
  ASSERT_EQ(cropped.code, 0) << cropped.text;
  const H5Reader f(store("full", "items.h5"));
  const auto values = f.read<float>("mic_signals/values");
  const auto shapes = f.read<std::int64_t>("mic_signals/shapes");
  const auto offsets = f.read<std::int64_t>("mic_signals/offsets");
  const auto audio = H5Reader(store("cropped", "items.h5")).read<float>("audio");
  ASSERT_EQ(shapes.shape, (std::vector<std::int64_t>{2, 2}));
  for (int k = 0; k < 2; ++k) {
    ASSERT_EQ(shapes.values[2 * k], 6);
    const std::int64_t length = shapes.values[2 * k + 1];
    EXPECT_GE(length, kLength);
    float peak = 0;
    for (int m = 0; m < 6; ++m) {
      for (int t = 0; t < 16000; ++t)
        peak = std::max(peak, std::abs(audio.values[(k * 7 + 1 + m) * 16000 + t]));
    }
    for (int m = 0; m < 6; ++m) {
      const float* mic = values.values.data() + offsets.values[k] + m * length + 8041;
      const float* cut = audio.values.data() + (k * 7 + 1 + m) * 16000;
      for (int t = 0; t < 16000; ++t)
        ASSERT_NEAR(cut[t], mic[t], 1e-5 * peak) << k << " " << m << " " << t;
    }
  }
}

TEST_F(RoomsimNodes, OutputIsIdenticalWithOneAndTwoThreads) {
  const std::string yaml = scene_pipeline(3, kLength, "{repeats: 2, anechoic_prob: 0.5}");
  const Output one = run(yaml, "one", "--threads 1");
  ASSERT_EQ(one.code, 0) << one.text;
  const Output two = run(yaml, "two", "--threads 2");
  ASSERT_EQ(two.code, 0) << two.text;
  const H5Reader a(store("one", "items.h5"));
  const H5Reader b(store("two", "items.h5"));
  EXPECT_EQ(a.read<float>("audio").values, b.read<float>("audio").values);
  EXPECT_EQ(a.read<double>("source_pos").values, b.read<double>("source_pos").values);
  EXPECT_EQ(a.read<double>("tdoa").values, b.read<double>("tdoa").values);
  EXPECT_EQ(a.read<double>("t60").values, b.read<double>("t60").values);
}

TEST_F(RoomsimNodes, DeterministicScenesRepeatEveryEpoch) {
  const Output out = run(scene_pipeline(2, kLength, "{repeats: 2, deterministic: true}"), "run");
  ASSERT_EQ(out.code, 0) << out.text;
  const auto source = H5Reader(store("run", "items.h5")).read<double>("source_pos");
  ASSERT_EQ(source.shape[0], 8);
  for (int j = 0; j < 12; ++j) EXPECT_EQ(source.values[j], source.values[12 + j]);
  EXPECT_NE(source.values[0], source.values[3]);  // repeats still differ
}

TEST_F(RoomsimNodes, ReverberantScenesUseInverseSabine) {
  const Output out =
      run(scene_pipeline(1, kLength, "{repeats: 2, anechoic_prob: 0.0, t60: [0.3, 0.4]}", "{}", 1),
          "run");
  ASSERT_EQ(out.code, 0) << out.text;
  const H5Reader items(store("run", "items.h5"));
  const auto t60 = items.read<double>("t60");
  const auto absorption = items.read<double>("absorption");
  const auto order = items.read<std::int64_t>("max_order");
  const auto audio = items.read<float>("audio");
  for (int k = 0; k < 2; ++k) {
    EXPECT_GE(t60.values[k], 0.3);
    EXPECT_LT(t60.values[k], 0.4);
    // Sabine: a = 24 ln10 V / (c S T60) with V = 50, S = 90 for the 5 x 5 x 2 room.
    EXPECT_NEAR(absorption.values[6 * k], 24 * std::log(10.0) * 50 / (343 * 90 * t60.values[k]),
                1e-12);
    EXPECT_GT(order.values[k], 10);
  }
  for (float v : audio.values) ASSERT_TRUE(std::isfinite(v));
}

TEST_F(RoomsimNodes, BadInputIsReportedWithNodeItemAndValues) {
  const Output short_utt = run(scene_pipeline(1, 20000, "{repeats: 1}", "{}", 1), "short");
  EXPECT_EQ(short_utt.code, 1) << short_utt.text;
  EXPECT_NE(short_utt.text.find("node 'sim' (roomsim.shoebox)"), std::string::npos)
      << short_utt.text;
  EXPECT_NE(short_utt.text.find("item 0 of epoch 0: utterance has 20000 samples"),
            std::string::npos)
      << short_utt.text;
  EXPECT_FALSE(fs::exists(store("short", "items.h5")));

  const Output t60 =
      run(scene_pipeline(1, kLength, "{anechoic_prob: 0.5, t60: [0.01, 0.4]}"), "t60", "--check");
  EXPECT_EQ(t60.code, 2) << t60.text;
  EXPECT_NE(t60.text.find("option 't60'"), std::string::npos) << t60.text;
  EXPECT_NE(t60.text.find("too short"), std::string::npos) << t60.text;

  const Output margin =
      run(scene_pipeline(1, kLength, "{source_margin: [0.5, 0.5, 1.0]}"), "margin", "--check");
  EXPECT_EQ(margin.code, 2) << margin.text;
  EXPECT_NE(margin.text.find("option 'source_margin'"), std::string::npos) << margin.text;
}

TEST_F(RoomsimNodes, PositionStatsGiveMeanAndUnbiasedStd) {
  const std::string yaml = scene_pipeline(4, kLength, "{repeats: 3}", "{}", 1) +
                           "  - {name: stats, type: roomsim.position_stats, inputs: {in: items}, "
                           "outputs: {stats: stats}}\n"
                           "  - {name: stats_sink, type: core.null_sink, inputs: {in: stats}}\n";
  std::string with_store = yaml;
  with_store.replace(with_store.find("items: {store: items.h5}"), 24,
                     "items: {store: items.h5}, stats: {store: stats.h5}");
  const Output out = run(with_store, "run");
  ASSERT_EQ(out.code, 0) << out.text;
  const auto source = H5Reader(store("run", "items.h5")).read<double>("source_pos");
  const H5Reader stats(store("run", "stats.h5"));
  const auto mean = stats.read<double>("mean");
  const auto sd = stats.read<double>("std");
  ASSERT_EQ(mean.shape, (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(stats.read<std::int64_t>("count").values[0], 12);
  for (int d = 0; d < 3; ++d) {
    double m = 0, v = 0;
    for (int k = 0; k < 12; ++k) m += source.values[3 * k + d] / 12;
    for (int k = 0; k < 12; ++k) v += std::pow(source.values[3 * k + d] - m, 2) / 11;
    EXPECT_NEAR(mean.values[d], m, 1e-12);
    EXPECT_NEAR(sd.values[d], std::sqrt(v), 1e-12);
  }
}

TEST_F(RoomsimNodes, SimulatePipelinesValidate) {
  // They read the corpus with librispeech.reader, built only where plugins/librispeech is.
  if (!fs::exists(fs::path(W2P_PLUGIN_DIR) / "libw2p_librispeech.so")) {
    GTEST_SKIP() << "plugin librispeech not built in " << W2P_PLUGIN_DIR;
  }
  for (const char* name : {"simulate.yaml", "simulate_reverberant.yaml"}) {
    const Output out = shell(std::string("'") + W2P_RUN_EXE + "' --check " + "--plugin-path '" +
                             W2P_PLUGIN_DIR + "' --run-dir " + quote(dir_ / "check") + " '" +
                             W2P_SOURCE_DIR + "/pipelines/" + name + "'");
    EXPECT_EQ(out.code, 0) << name << "\n" << out.text;
  }
}

}  // namespace
