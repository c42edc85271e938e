// Integration tests of report.localization: the built w2p-run on small YAMLs whose inputs come
// from the test-only plugin reporttest (hand-made summary rows, predictions and a training log).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "support/process.hpp"

namespace fs = std::filesystem;
using w2p::test::ScratchDir;
using w2p::test::shell_quote;

namespace {

w2p::test::CommandResult run(const ScratchDir& dir, const std::string& name,
                             const std::string& yaml) {
  const fs::path file = dir.write(name + ".yaml", yaml);
  return w2p::test::run_command(
      shell_quote(W2P_RUN_EXE) + " --quiet --plugin-path " + shell_quote(W2P_PLUGIN_DIR) +
      " --plugin-path " + shell_quote(W2P_REPORTTEST_PLUGIN_DIR) + " --run-dir " +
      shell_quote((dir.path() / name).string()) + " " + shell_quote(file.string()) + " 2>&1");
}

std::string pipeline(const std::string& report_options, bool training = true) {
  std::string y =
      "nodes:\n"
      "  - {name: rows, type: reporttest.source, options: {kind: summary}, outputs: {out: "
      "summary}}\n"
      "  - {name: preds, type: reporttest.source, options: {kind: predictions}, outputs: {out: "
      "predictions}}\n";
  if (training) {
    y += "  - {name: train, type: reporttest.source, options: {kind: training, log: train.csv}, "
         "outputs: {out: training}}\n";
  }
  y += "  - {name: report, type: report.localization, options: " + report_options +
       ", inputs: {summary: summary, predictions: predictions" +
       (training ? ", training: training" : "") + "}}\n";
  return y;
}

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Evaluates a Python expression over the parsed summary.json `j` and prints it.
std::string json_query(const fs::path& file, const std::string& expr) {
  const auto r = w2p::test::run_command(
      "/usr/bin/python3 -c " +
      shell_quote("import json,sys; j=json.load(open(sys.argv[1])); print(" + expr + ")") + " " +
      shell_quote(file.string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::string out = r.output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void write_logs(const ScratchDir& dir) {
  dir.write("train.csv",
            "epoch,loss,audio_loss,location_loss,lr,steps,ms_per_step,val_loss,val_mae_cm,"
            "val_accuracy\n"
            "1,2.0,1.5,0.5,0.001,100,12.5,1.9,80.0,0.10\n"
            "2,1.2,0.9,0.3,0.001,100,12.4,,,\n"
            "3,0.8,0.6,0.2,0.001,100,12.6,0.9,35.5,0.45\n");
  dir.write("ngcc.csv",
            "epoch,loss,lr,steps,ms_per_step,val_loss,val_mae,val_rmse,val_accuracy\n"
            "1,3.0,0.001,50,4.0,2.8,5.0,7.0,0.4\n"
            "2,2.0,0.001,50,4.1,1.9,3.0,4.5,0.6\n");
}

TEST(ReportNode, WritesSummaryJsonAndSelfContainedHtml) {
  const ScratchDir dir;
  write_logs(dir);
  const auto out = run(dir, "run", pipeline("{extra_logs: [ngcc.csv, missing.csv]}"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const fs::path results = dir.path() / "run" / "results";
  const fs::path json = results / "summary.json";
  ASSERT_TRUE(fs::exists(json));
  EXPECT_FALSE(fs::exists(results / "summary.json.tmp"));

  // Valid JSON with the rows' values; NaN written as null.
  EXPECT_EQ(json_query(json, "j['setups']['1a']['wav2pos']['mae_cm']"), "10.0");
  EXPECT_EQ(json_query(json, "j['setups']['1b']['gcc_phat+multilateration']['mae_cm']"), "41.0");
  EXPECT_EQ(json_query(json, "j['setups']['2a']['ngcc_phat+multilateration']['failures']"), "0");
  EXPECT_EQ(json_query(json, "j['setups']['1a']['wav2pos']['mic_mae_cm']"), "None");
  EXPECT_EQ(json_query(json, "j['setups']['2a']['wav2pos']['mic_mae_cm']"), "7.5");
  EXPECT_EQ(json_query(json, "list(j['setups'])"), "['1a', '1b', '2a']");
  EXPECT_EQ(json_query(json, "j['counts']['predictions']"), "24");
  EXPECT_EQ(json_query(json, "j['counts']['summary_rows']"), "9");
  // The training log's last row (empty cells -> null only where the last row is empty).
  EXPECT_EQ(json_query(json, "j['training']['last']['val_mae_cm']"), "35.5");
  EXPECT_EQ(json_query(json, "j['training']['epochs']"), "3");
  EXPECT_EQ(json_query(json, "len(j['extra_logs'])"), "1");
  EXPECT_EQ(json_query(json, "len(j['missing_logs'])"), "1");
  EXPECT_EQ(json_query(json, "j['figures']['cdf']['1b']"), "figures/cdf_1b.svg");
  EXPECT_EQ(json_query(json, "j['figures']['room']"), "figures/room_1a.svg");
  EXPECT_EQ(json_query(json, "len(j['figures']['learning'])"), "4");
  EXPECT_NE(json_query(json, "j['generated']"), "");

  // Figures kept as files.
  for (const char* f : {"cdf_1a.svg", "cdf_1b.svg", "cdf_2a.svg", "room_1a.svg"})
    EXPECT_TRUE(fs::exists(results / "figures" / f)) << f;

  const std::string html = read(results / "report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  for (const char* s : {"wav2pos", "gcc_phat+multilateration", "ngcc_phat+multilateration",
                        "Setup 1a", "Setup 1b", "Setup 2a", "missing.csv", "class=\"best\""}) {
    EXPECT_NE(html.find(s), std::string::npos) << s;
  }
  // Self-contained: no URLs but the SVG namespaces.
  const std::string stripped =
      std::regex_replace(html, std::regex("xmlns(:[a-z]+)?=[\"'][^\"']*[\"']"), "");
  EXPECT_EQ(stripped.find("http://"), std::string::npos);
  EXPECT_EQ(stripped.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

TEST(ReportNode, EscapesTheTitleAndWorksWithoutTraining) {
  const ScratchDir dir;
  const auto out =
      run(dir, "run", pipeline("{out_dir: out, title: 'A <b> & \"q\"', room_examples: 2}", false));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const fs::path results = dir.path() / "run" / "out";
  const std::string html = read(results / "report.html");
  EXPECT_NE(html.find("A &lt;b&gt; &amp; &quot;q&quot;"), std::string::npos);
  EXPECT_EQ(html.find("A <b>"), std::string::npos);
  EXPECT_EQ(json_query(results / "summary.json", "j['title']"), "A <b> & \"q\"");
  EXPECT_EQ(json_query(results / "summary.json", "j['training']"), "None");
}

TEST(ReportNode, MissingGnuplotFailsNamingIt) {
  const ScratchDir dir;
  write_logs(dir);
  const auto out = run(dir, "run", pipeline("{gnuplot: /nonexistent/gnuplot}"));
  EXPECT_NE(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("gnuplot"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("install-deps"), std::string::npos) << out.output;
  EXPECT_FALSE(fs::exists(dir.path() / "run" / "results" / "summary.json"));
}

}  // namespace
