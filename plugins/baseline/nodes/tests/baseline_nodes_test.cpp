// Node-level tests of baseline.multilateration and baseline.localization_metrics: tiny real
// pipelines through the built w2p-run (noise utterances -> roomsim anechoic scenes ->
// features.gcc_phat -> features.tdoa_peaks -> multilateration -> metrics), stores read back with
// the HDF5 C API; and pipelines/gcc_multilateration.yaml on a small stored test set.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "support/fixture_h5.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using w2p::test::H5Reader;
using w2p::test::ScratchDir;
using w2p::test::shell_quote;

namespace {

w2p::test::CommandResult run_file(const ScratchDir& dir, const std::string& name,
                                  const fs::path& file, const std::string& extra = "") {
  return w2p::test::run_command(shell_quote(W2P_RUN_EXE) + " --quiet --plugin-path " +
                                shell_quote(W2P_PLUGIN_DIR) + " --run-dir " +
                                shell_quote((dir.path() / name).string()) + " " + extra + " " +
                                shell_quote(file.string()) + " 2>&1");
}

w2p::test::CommandResult run(const ScratchDir& dir, const std::string& name,
                             const std::string& yaml, const std::string& extra = "") {
  return run_file(dir, name, dir.write(name + ".yaml", yaml), extra);
}

constexpr int kScenes = 6;  // 3 utterances x 2 repeats

// Anechoic wav2pos scenes (noise utterances) -> GCC-PHAT over `gcc_channels` -> peaks ->
// multilateration(locate_options) -> metrics; stores: errors.h5, metrics.h5.
std::string localise_pipeline(const std::string& gcc_options, const std::string& locate_options,
                              bool fix_alignment = true) {
  return std::string(
             "graph: {seed: 4, max_in_flight: 8}\n"
             "channels: {errors: {store: errors.h5}, metrics: {store: metrics.h5}}\n"
             "nodes:\n"
             "  - {name: corpus, type: core.tensor_source, options: {count: 3, shape: [26000], "
             "field: audio, fill: normal}, outputs: {out: utterances}}\n"
             "  - {name: geometry, type: roomsim.wav2pos_geometry, options: {repeats: 2}, "
             "inputs: {utterance: utterances}, outputs: {scene: scenes}}\n"
             "  - {name: sim, type: roomsim.shoebox, options: {fix_alignment: ") +
         (fix_alignment ? "true" : "false") +
         "}, inputs: {scene: scenes}, outputs: {item: items}}\n"
         "  - {name: gcc, type: features.gcc_phat, options: " +
         gcc_options +
         ", inputs: {in: items}, outputs: {out: correlations}}\n"
         "  - {name: peaks, type: features.tdoa_peaks, inputs: {in: correlations}, outputs: "
         "{out: delays}}\n"
         "  - {name: locate, type: baseline.multilateration, options: " +
         locate_options +
         ", inputs: {in: delays}, outputs: {out: estimates}}\n"
         "  - {name: metrics, type: baseline.localization_metrics, inputs: {in: estimates}, "
         "outputs: {errors: errors, summary: metrics}}\n";
}

bool has_plugins() {
  for (const char* name : {"libw2p_roomsim.so", "libw2p_features.so"}) {
    if (!fs::exists(fs::path(W2P_PLUGIN_DIR) / name)) return false;
  }
  return true;
}

struct Errors {
  std::vector<double> cm;
  double mae = 0;
  double max = 0;
};

Errors read_errors(const ScratchDir& dir, const std::string& name) {
  const H5Reader store((dir.path() / name / "errors.h5").string());
  Errors e;
  e.cm = store.read<double>("error_cm").values;
  for (double v : e.cm) {
    e.mae += v / static_cast<double>(e.cm.size());
    e.max = std::max(e.max, v);
  }
  return e;
}

TEST(BaselineNodes, TdoaMultilaterationRecoversAnechoicSources) {
  if (!has_plugins()) GTEST_SKIP() << "needs the roomsim and features plugins";
  const ScratchDir dir;
  const auto out =
      run(dir, "run", localise_pipeline("{channels: [1, 2, 3, 4, 5, 6], max_tau: 342}", "{}"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const Errors e = read_errors(dir, "run");
  ASSERT_EQ(e.cm.size(), static_cast<std::size_t>(kScenes));
  std::printf("TDOA multilateration, anechoic: MAE %.3f cm, max %.3f cm\n", e.mae, e.max);
  EXPECT_LT(e.max, 5.0);
  // The summary agrees with the per-item errors.
  const H5Reader metrics((dir.path() / "run" / "metrics.h5").string());
  EXPECT_EQ(metrics.read<std::int64_t>("count").values[0], kScenes);
  EXPECT_EQ(metrics.read<std::int64_t>("failures").values[0], 0);
  EXPECT_NEAR(metrics.read<double>("mae_cm").values[0], e.mae, 1e-9);
  EXPECT_EQ(metrics.read<double>("accuracy").values[0], 1.0);
  std::vector<double> sorted = e.cm;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NEAR(metrics.read<double>("median_cm").values[0], 0.5 * (sorted[2] + sorted[3]), 1e-9);
  EXPECT_NEAR(metrics.read<double>("p90_cm").values[0], sorted[4] + 0.5 * (sorted[5] - sorted[4]),
              1e-9);
}

TEST(BaselineNodes, ToaMultilaterationFromTheDrySourceChannel) {
  if (!has_plugins()) GTEST_SKIP() << "needs the roomsim and features plugins";
  const ScratchDir dir;
  // fix_alignment: the microphones lag the dry crop by exactly the time of arrival.
  const auto fixed = run(dir, "fixed", localise_pipeline("{max_tau: 342}", "{mode: toa}"));
  ASSERT_EQ(fixed.exit_code, 0) << fixed.output;
  const Errors e = read_errors(dir, "fixed");
  std::printf("TOA multilateration, anechoic: MAE %.3f cm, max %.3f cm\n", e.mae, e.max);
  EXPECT_LT(e.max, 5.0);
  // The reference's QUIRK crop (+41) is one sample early: toa_offset 1 restores the same result.
  const auto quirk =
      run(dir, "quirk", localise_pipeline("{max_tau: 342}", "{mode: toa, toa_offset: 1}", false));
  ASSERT_EQ(quirk.exit_code, 0) << quirk.output;
  EXPECT_LT(read_errors(dir, "quirk").max, 5.0);
}

TEST(BaselineNodes, IdenticalWithOneAndTwoThreads) {
  if (!has_plugins()) GTEST_SKIP() << "needs the roomsim and features plugins";
  const ScratchDir dir;
  const std::string yaml = localise_pipeline("{channels: [1, 2, 3, 4, 5, 6]}", "{}");
  const auto one = run(dir, "one", yaml, "--threads 1");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = run(dir, "two", yaml, "--threads 2");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const H5Reader a((dir.path() / "one" / "errors.h5").string());
  const H5Reader b((dir.path() / "two" / "errors.h5").string());
  EXPECT_EQ(a.read<double>("estimate").values, b.read<double>("estimate").values);
}

TEST(BaselineNodes, MicrophoneCountMismatchNamesNodeOptionAndExpectation) {
  if (!has_plugins()) GTEST_SKIP() << "needs the roomsim and features plugins";
  const ScratchDir dir;
  const auto out =
      run(dir, "run",
          localise_pipeline("{channels: [1, 2, 3, 4, 5, 6]}", "{channels: [1, 2, 3, 4, 5]}"));
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.output.find("node 'locate'"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("option 'channels' lists 5 microphone channels but field 'mic_pos' "
                            "has 6 microphones"),
            std::string::npos)
      << out.output;
  EXPECT_NE(out.output.find("expected one audio channel per row of 'mic_pos' (6 values"),
            std::string::npos)
      << out.output;
  // Too few microphones and a source channel among the microphones: before running.
  const auto few =
      run(dir, "few",
          localise_pipeline("{channels: [1, 2, 3, 4, 5, 6]}", "{channels: [1, 2, -1, -1, -1, 6]}"),
          "--check");
  EXPECT_EQ(few.exit_code, 2) << few.output;
  EXPECT_NE(few.output.find("at least 4 microphones"), std::string::npos) << few.output;
  const auto toa = run(
      dir, "toa", localise_pipeline("{max_tau: 342}", "{mode: toa, source_channel: 1}"), "--check");
  EXPECT_EQ(toa.exit_code, 2) << toa.output;
  EXPECT_NE(toa.output.find("option 'source_channel' = 1"), std::string::npos) << toa.output;
}

TEST(BaselineNodes, PipelineGccMultilaterationOnAStoredTestSet) {
  if (!has_plugins()) GTEST_SKIP() << "needs the roomsim and features plugins";
  const ScratchDir dir;
  // A small stored test set in the layout of simulate.yaml's test.h5 (reference QUIRK crop).
  const std::string simulate =
      "graph: {seed: 9, max_in_flight: 8}\n"
      "channels: {test_items: {store: test.h5}}\n"
      "nodes:\n"
      "  - {name: corpus, type: core.tensor_source, options: {count: 2, shape: [26000], field: "
      "audio, fill: normal}, outputs: {out: utterances}}\n"
      "  - {name: geometry, type: roomsim.wav2pos_geometry, options: {repeats: 3, "
      "deterministic: true}, inputs: {utterance: utterances}, outputs: {scene: scenes}}\n"
      "  - {name: sim, type: roomsim.shoebox, inputs: {scene: scenes}, outputs: {item: "
      "test_items}}\n"
      "  - {name: sink, type: core.null_sink, inputs: {in: test_items}}\n";
  const auto sim = run(dir, "sim", simulate);
  ASSERT_EQ(sim.exit_code, 0) << sim.output;
  const auto out =
      run_file(dir, "eval", fs::path(W2P_SOURCE_DIR) / "pipelines" / "gcc_multilateration.yaml",
               "--var test_set=" + shell_quote((dir.path() / "sim" / "test.h5").string()));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const H5Reader metrics((dir.path() / "eval" / "metrics.h5").string());
  EXPECT_EQ(metrics.read<std::int64_t>("count").values[0], 6);
  EXPECT_LT(metrics.read<double>("mae_cm").values[0], 5.0);
  EXPECT_EQ(metrics.read<double>("accuracy").values[0], 1.0);
  EXPECT_EQ(read_errors(dir, "eval").cm.size(), 6U);
}

}  // namespace
