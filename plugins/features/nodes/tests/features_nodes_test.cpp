// Node-level tests of features.gcc_phat and features.tdoa_peaks: tiny real pipelines through the
// built w2p-run (core.tensor_source noise, or roomsim anechoic scenes with known delays), their
// stores read back with the HDF5 C API.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "features/kernels/gcc_phat.hpp"
#include "support/fixture_h5.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using w2p::test::H5Reader;
using w2p::test::ScratchDir;
using w2p::test::shell_quote;

namespace {

// Runs `yaml` with w2p-run into run_dir `name`; stdout and stderr together.
w2p::test::CommandResult run(const ScratchDir& dir, const std::string& name,
                             const std::string& yaml, const std::string& extra = "") {
  const fs::path file = dir.write(name + ".yaml", yaml);
  return w2p::test::run_command(shell_quote(W2P_RUN_EXE) + " --quiet --plugin-path " +
                                shell_quote(W2P_PLUGIN_DIR) + " --run-dir " +
                                shell_quote((dir.path() / name).string()) + " " + extra + " " +
                                shell_quote(file.string()) + " 2>&1");
}

// Noise items [channels, length] -> gcc_phat(gcc_options) -> tdoa_peaks(peak_options) -> store.
std::string noise_pipeline(int channels, int length, const std::string& gcc_options,
                           const std::string& peak_options = "{}") {
  return "graph: {seed: 3, max_in_flight: 8}\n"
         "channels: {delays: {store: delays.h5}}\n"
         "nodes:\n"
         "  - {name: src, type: core.tensor_source, options: {count: 3, shape: [" +
         std::to_string(channels) + ", " + std::to_string(length) +
         "], field: audio, fill: normal}, outputs: {out: items}}\n"
         "  - {name: gcc, type: features.gcc_phat, options: " +
         gcc_options +
         ", inputs: {in: items}, outputs: {out: correlations}}\n"
         "  - {name: peaks, type: features.tdoa_peaks, options: " +
         peak_options + ", inputs: {in: correlations}, outputs: {out: delays}}\n";
}

bool has_roomsim() { return fs::exists(fs::path(W2P_PLUGIN_DIR) / "libw2p_roomsim.so"); }

TEST(FeaturesNodes, GccPhatEqualsTheKernelForEveryPairOfTheChosenChannels) {
  const ScratchDir dir;
  const auto out = run(dir, "run",
                       noise_pipeline(7, 2000,
                                      "{channels: [1, 2, 3, 4, 5, 6], "
                                      "max_tau: 50}"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const H5Reader store((dir.path() / "run" / "delays.h5").string());
  const auto audio = store.read<float>("audio");
  const auto gcc = store.read<float>("gcc");
  const auto pairs = store.read<std::int64_t>("pairs");
  ASSERT_EQ(gcc.shape, (std::vector<std::int64_t>{3, 15, 101}));
  ASSERT_EQ(pairs.shape, (std::vector<std::int64_t>{3, 15, 2}));
  std::vector<w2p::features::ChannelPair> expected;
  for (int a = 1; a <= 6; ++a) {
    for (int b = a + 1; b <= 6; ++b) expected.push_back({a, b});
  }
  for (int k = 0; k < 3; ++k) {
    for (std::size_t p = 0; p < expected.size(); ++p) {
      EXPECT_EQ(pairs.values[k * 30 + 2 * p], expected[p].a);
      EXPECT_EQ(pairs.values[k * 30 + 2 * p + 1], expected[p].b);
    }
    const std::vector<float> ref =
        w2p::features::gcc_phat_pairs(audio.values.data() + k * 7 * 2000, 7, 2000, expected, 50);
    const std::vector<float> got(gcc.values.begin() + k * 15 * 101,
                                 gcc.values.begin() + (k + 1) * 15 * 101);
    EXPECT_EQ(got, ref) << "item " << k;  // same kernel, same float path: bit for bit
  }
}

TEST(FeaturesNodes, ExplicitPairsInTheGivenOrder) {
  const ScratchDir dir;
  const auto out = run(dir, "run", noise_pipeline(7, 500, "{pairs: [0, 3, 5, 2], max_tau: 10}"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const H5Reader store((dir.path() / "run" / "delays.h5").string());
  const auto audio = store.read<float>("audio");
  const auto gcc = store.read<float>("gcc");
  ASSERT_EQ(gcc.shape, (std::vector<std::int64_t>{3, 2, 21}));
  EXPECT_EQ(store.read<std::int64_t>("pairs").values,
            (std::vector<std::int64_t>{0, 3, 5, 2, 0, 3, 5, 2, 0, 3, 5, 2}));
  const std::vector<float> ref =
      w2p::features::gcc_phat_pairs(audio.values.data(), 7, 500, {{0, 3}, {5, 2}}, 10);
  EXPECT_EQ(std::vector<float>(gcc.values.begin(), gcc.values.begin() + 42), ref);
  const auto peaks = store.read<double>("tdoa_estimate");
  EXPECT_EQ(peaks.shape, (std::vector<std::int64_t>{3, 2}));
}

TEST(FeaturesNodes, TdoaPeaksRecoverTheDelaysOfAnechoicScenes) {
  if (!has_roomsim()) GTEST_SKIP() << "needs the roomsim plugin";
  const ScratchDir dir;
  // Noise utterances -> wav2pos scenes -> anechoic simulation (delays known from the labels).
  const std::string yaml =
      "graph: {seed: 21, max_in_flight: 8}\n"
      "channels: {delays: {store: delays.h5}}\n"
      "nodes:\n"
      "  - {name: corpus, type: core.tensor_source, options: {count: 2, shape: [26000], field: "
      "audio, fill: normal}, outputs: {out: utterances}}\n"
      "  - {name: geometry, type: roomsim.wav2pos_geometry, options: {repeats: 2}, inputs: "
      "{utterance: utterances}, outputs: {scene: scenes}}\n"
      "  - {name: sim, type: roomsim.shoebox, options: {fix_alignment: true}, inputs: {scene: "
      "scenes}, outputs: {item: items}}\n"
      "  - {name: gcc, type: features.gcc_phat, options: {max_tau: 342}, inputs: {in: items}, "
      "outputs: {out: correlations}}\n"
      "  - {name: peaks, type: features.tdoa_peaks, inputs: {in: correlations}, outputs: {out: "
      "delays}}\n"
      "  - {name: coarse, type: features.tdoa_peaks, options: {refine: false, out_field: lag, "
      "value_field: lag_value}, inputs: {in: delays}, outputs: {out: both}}\n"
      "  - {name: sink, type: core.null_sink, inputs: {in: both}}\n";
  const auto out = run(dir, "run", yaml);
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const H5Reader store((dir.path() / "run" / "delays.h5").string());
  const auto tdoa = store.read<double>("tdoa");  // label T[a][b] = t_a - t_b, samples
  const auto est = store.read<double>("tdoa_estimate");
  const auto pairs = store.read<std::int64_t>("pairs");
  ASSERT_EQ(est.shape, (std::vector<std::int64_t>{4, 21}));  // all pairs of 7 channels
  double worst = 0;
  double sum = 0;
  for (int k = 0; k < 4; ++k) {
    for (int p = 0; p < 21; ++p) {
      const auto a = pairs.values[k * 42 + 2 * p];
      const auto b = pairs.values[k * 42 + 2 * p + 1];
      const double err = est.values[k * 21 + p] - tdoa.values[k * 49 + a * 7 + b];
      worst = std::max(worst, std::abs(err));
      sum += std::abs(err);
    }
  }
  // Fractional delays through the simulator's sinc filter: refined to a fraction of a sample.
  EXPECT_LT(worst, 0.3);
  EXPECT_LT(sum / 84, 0.1);
  std::printf("tdoa_peaks on anechoic scenes: mean |error| %.4f, max %.4f samples\n", sum / 84,
              worst);
}

TEST(FeaturesNodes, IdenticalWithOneAndTwoThreads) {
  const ScratchDir dir;
  const std::string yaml = noise_pipeline(7, 3000, "{max_tau: 100}");
  const auto one = run(dir, "one", yaml, "--threads 1");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = run(dir, "two", yaml, "--threads 2");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const H5Reader a((dir.path() / "one" / "delays.h5").string());
  const H5Reader b((dir.path() / "two" / "delays.h5").string());
  EXPECT_EQ(a.read<float>("gcc").values, b.read<float>("gcc").values);
  EXPECT_EQ(a.read<double>("tdoa_estimate").values, b.read<double>("tdoa_estimate").values);
}

TEST(FeaturesNodes, MaxTauTooLargeForTheLengthNamesNodeOptionAndLimit) {
  const ScratchDir dir;
  const auto out = run(dir, "run", noise_pipeline(7, 100, "{max_tau: 100}"));
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.output.find("node 'gcc'"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("option 'max_tau' = 100"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("expected max_tau <= L - 1 = 99"), std::string::npos) << out.output;
}

TEST(FeaturesNodes, PairOutOfRangeNamesNodeOptionAndRange) {
  const ScratchDir dir;
  const auto out = run(dir, "run", noise_pipeline(7, 500, "{pairs: [0, 7], max_tau: 10}"));
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.output.find("node 'gcc'"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("option 'pairs': channel 7"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("expected channel indices in [0, 6]"), std::string::npos) << out.output;
}

TEST(FeaturesNodes, BadOptionsAreReportedBeforeRunning) {
  const ScratchDir dir;
  const auto odd = run(dir, "odd", noise_pipeline(7, 500, "{pairs: [0, 1, 2]}"), "--check");
  EXPECT_EQ(odd.exit_code, 2) << odd.output;
  EXPECT_NE(odd.output.find("option 'pairs': odd number"), std::string::npos) << odd.output;
  const auto both =
      run(dir, "both", noise_pipeline(7, 500, "{pairs: [0, 1], channels: [1, 2]}"), "--check");
  EXPECT_EQ(both.exit_code, 2) << both.output;
  EXPECT_NE(both.output.find("'pairs' and 'channels'"), std::string::npos) << both.output;
  const auto tau = run(dir, "tau", noise_pipeline(7, 500, "{max_tau: 10}", "{max_tau: 12}"));
  EXPECT_NE(tau.exit_code, 0);
  EXPECT_NE(tau.output.find("node 'peaks'"), std::string::npos) << tau.output;
  EXPECT_NE(tau.output.find("expected max_tau = 10"), std::string::npos) << tau.output;
}

}  // namespace
