// Every fixture in malformed/ is a broken pipeline whose header comments say which errors
// validation must report (see fixture_expectations.hpp). Also: --set errors, which have no file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "config/pipeline_config.hpp"
#include "fixture_expectations.hpp"
#include "graph/pipeline_graph.hpp"
#include "nodes/builtin_nodes.hpp"
#include "plugin/plugin_catalog.hpp"

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMinFixtures = 35;

const std::string kFixtureDir = std::string(W2P_CFG_FIXTURE_DIR) + "/malformed";
const std::string kValidDir = std::string(W2P_CFG_FIXTURE_DIR) + "/valid";

const w2p::PluginCatalog& catalog() {
  static const w2p::PluginCatalog* const instance = [] {
    auto* c = new w2p::PluginCatalog();
    c->add_builtin(w2p::builtin_node_types());
    c->load_directory(W2P_CFGTEST_PLUGIN_DIR);
    return c;
  }();
  return *instance;
}

std::vector<std::string> fixture_files() {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(kFixtureDir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// Loads and validates; returns the errors (empty when the pipeline is valid).
std::vector<w2p::Error> validate(const std::string& path, const w2p::ConfigOverrides& o = {}) {
  try {
    w2p::build_graph(w2p::load_pipeline(path, o), catalog());
  } catch (const w2p::ErrorList& errors) {
    return errors.errors();
  }
  return {};
}

TEST(MalformedPipelines, EnoughFixtures) {
  EXPECT_GE(fixture_files().size(), kMinFixtures) << "in " << kFixtureDir;
}

TEST(MalformedPipelines, TestPluginLoads) {
  for (const char* id :
       {"cfgtest.sink7", "cfgtest.pair", "cfgtest.ints", "cfgtest.once", "cfgtest.trainer"}) {
    EXPECT_NE(catalog().find(id), nullptr) << id;
  }
}

// The test plugin's nodes wired correctly: the fixtures fail for their own reason only.
TEST(MalformedPipelines, ValidBaselineBuilds) {
  for (const auto& entry : fs::directory_iterator(kValidDir)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".yaml") continue;
    const auto errors = validate(entry.path().string());
    EXPECT_TRUE(errors.empty()) << entry.path() << ":\n" << cfgtest::describe(errors);
  }
}

class Fixture : public ::testing::TestWithParam<std::string> {};

TEST_P(Fixture, ReportsTheExpectedErrors) {
  const std::string& path = GetParam();
  const cfgtest::Expectations expected = cfgtest::read_expectations(path);
  ASSERT_FALSE(expected.errors.empty()) << path << " has no '# expect:' line";

  const std::vector<w2p::Error> errors = validate(path);
  ASSERT_FALSE(errors.empty()) << path << " validated without errors";
  const std::string all = cfgtest::describe(errors);

  for (const auto& want : expected.errors) {
    const bool found = std::any_of(errors.begin(), errors.end(),
                                   [&](const w2p::Error& e) { return cfgtest::matches(e, want); });
    EXPECT_TRUE(found) << "expected '" << want << "' among:\n" << all;
  }
  for (const auto& note : expected.notes) {
    EXPECT_TRUE(cfgtest::has_note(errors, note)) << "expected note '" << note << "' among:\n"
                                                 << all;
  }
  if (expected.count >= 0) {
    EXPECT_EQ(static_cast<int>(errors.size()), expected.count) << all;
  }
  // Every error names a file and a line in it, and says what is wrong in one line.
  for (const auto& e : errors) {
    EXPECT_TRUE(e.location().known() && e.location().line > 0) << "no line:col in\n" << e.format();
    EXPECT_FALSE(e.message().empty());
  }
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = fs::path(info.param).stem().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return "f" + name;
}

INSTANTIATE_TEST_SUITE_P(MalformedPipelines, Fixture, ::testing::ValuesIn(fixture_files()),
                         test_name);

// ---- --set (ConfigOverrides): command-line errors have no file, so no fixtures.

const std::string kBase = kValidDir + "/typed.yaml";

std::vector<w2p::Error> load_with_sets(std::vector<std::string> sets) {
  w2p::ConfigOverrides o;
  o.sets = std::move(sets);
  return validate(kBase, o);
}

bool any_message(const std::vector<w2p::Error>& errors, const std::string& text) {
  return std::any_of(errors.begin(), errors.end(), [&](const w2p::Error& e) {
    return e.format().find(text) != std::string::npos;
  });
}

TEST(SetOverrides, ValidSetApplies) {
  w2p::ConfigOverrides o;
  o.sets = {"sink.repeats=9", "graph.threads=2"};
  const w2p::PipelineGraph g = w2p::build_graph(w2p::load_pipeline(kBase, o), catalog());
  EXPECT_EQ(g.config.graph.threads, 2);
  bool seen = false;
  for (const auto& n : g.nodes) {
    if (n.name == "sink") {
      EXPECT_EQ(n.options.get_int("repeats"), 9);
      seen = true;
    }
  }
  EXPECT_TRUE(seen);
}

TEST(SetOverrides, UnknownNodeSuggestsAName) {
  const auto errors = load_with_sets({"snk.repeats=3"});
  ASSERT_EQ(errors.size(), 1u) << cfgtest::describe(errors);
  EXPECT_NE(errors[0].message().find("--set 'snk.repeats=3': no node named 'snk'"),
            std::string::npos)
      << errors[0].format();
  EXPECT_TRUE(cfgtest::has_note(errors, "did you mean 'sink'?")) << cfgtest::describe(errors);
  EXPECT_EQ(errors[0].location().file, "<command line>");
}

TEST(SetOverrides, BadSyntax) {
  for (const std::string bad : {"sink.repeats", "repeats=3", "=3", ".repeats=3", "sink.=3"}) {
    const auto errors = load_with_sets({bad});
    ASSERT_EQ(errors.size(), 1u) << bad << ":\n" << cfgtest::describe(errors);
    EXPECT_TRUE(any_message(errors, "expected NODE.OPTION=VALUE or graph.KEY=VALUE"))
        << bad << ":\n"
        << cfgtest::describe(errors);
  }
}

TEST(SetOverrides, ValueNotValidYaml) {
  const auto errors = load_with_sets({"sink.labels=[a, b"});
  ASSERT_EQ(errors.size(), 1u) << cfgtest::describe(errors);
  EXPECT_TRUE(any_message(errors, "value is not valid YAML")) << cfgtest::describe(errors);
}

TEST(SetOverrides, UnknownGraphSetting) {
  const auto errors = load_with_sets({"graph.thread=2"});
  ASSERT_EQ(errors.size(), 1u) << cfgtest::describe(errors);
  EXPECT_TRUE(any_message(errors, "unknown graph setting 'thread'")) << cfgtest::describe(errors);
  EXPECT_TRUE(cfgtest::has_note(errors, "did you mean 'threads'?")) << cfgtest::describe(errors);
}

TEST(SetOverrides, BadGraphValue) {
  const auto errors = load_with_sets({"graph.threads=-4"});
  ASSERT_EQ(errors.size(), 1u) << cfgtest::describe(errors);
  EXPECT_TRUE(any_message(errors, "<command line>: error: --set 'graph.threads=-4': graph.threads"))
      << cfgtest::describe(errors);
  EXPECT_TRUE(any_message(errors, "got '-4'")) << cfgtest::describe(errors);
}

TEST(SetOverrides, BadEpochs) {
  const auto errors = load_with_sets({"vectors.epochs=0"});
  ASSERT_EQ(errors.size(), 1u) << cfgtest::describe(errors);
  EXPECT_TRUE(any_message(errors,
                          "<command line>: error: --set 'vectors.epochs=0': epochs: "
                          "expected an integer >= 1, got '0'"))
      << cfgtest::describe(errors);
}

TEST(SetOverrides, OptionErrorsNameTheCommandLine) {
  const auto errors = load_with_sets({"sink.repeats=5000", "sink.mod=exact"});
  ASSERT_EQ(errors.size(), 2u) << cfgtest::describe(errors);
  EXPECT_TRUE(any_message(errors, "option 'repeats': '5000' is out of range"))
      << cfgtest::describe(errors);
  EXPECT_TRUE(any_message(errors, "unknown option 'mod'")) << cfgtest::describe(errors);
  EXPECT_TRUE(cfgtest::has_note(errors, "did you mean 'mode'?")) << cfgtest::describe(errors);
  for (const auto& e : errors) EXPECT_EQ(e.location().file, "<command line>") << e.format();
}

TEST(SetOverrides, AllReportedTogether) {
  const auto errors = load_with_sets({"nope.x=1", "bad", "graph.epoch=2"});
  EXPECT_EQ(errors.size(), 3u) << cfgtest::describe(errors);
}

}  // namespace
