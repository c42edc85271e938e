// librispeech.reader inside the real w2p-run, and the default corpus generator.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "librispeech/reader/corpus_index.hpp"
#include "test_corpus.hpp"
#include "w2p/error.hpp"

namespace fs = std::filesystem;
namespace ls = w2p::librispeech;
using ls::testing::TempDir;

namespace {

struct Result {
  int code = -1;
  std::string output;
};

// Runs a shell command line, capturing stdout and stderr together.
Result run(const std::string& command) {
  Result r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), pipe) != nullptr) r.output += buf.data();
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string w2p_run(const std::string& args) {
  return std::string(W2P_RUN_EXE) + " --quiet --plugin-path " + W2P_PLUGIN_DIR + " " + args;
}

void write_pipeline(const std::string& path, const std::string& root, const std::string& extra) {
  std::ofstream(path) << "graph: {seed: 1, threads: 2}\n"
                         "nodes:\n"
                         "  - name: reader\n"
                         "    type: librispeech.reader\n"
                         "    options: {root: '"
                      << root << "', on_bad_file: skip" << extra
                      << "}\n"
                         "    outputs: {utterance: utts}\n"
                         "  - name: log\n"
                         "    type: core.log\n"
                         "    inputs: {in: utts}\n";
}

bool have(const char* program) {
  return run(std::string("command -v ") + program + " >/dev/null").code == 0;
}

}  // namespace

TEST(LibrispeechIntegration, ReaderFeedsCoreLogInW2pRun) {
  TempDir tmp;
  ls::testing::CorpusSpec spec;
  spec.corrupt_file = true;
  const auto root = ls::testing::make_corpus(tmp.path() + "/corpus", spec);
  const std::string yaml = tmp.path() + "/p.yaml";
  write_pipeline(yaml, root, ", split: test");
  const std::string run_dir = tmp.path() + "/run";
  const Result r = run(w2p_run("--run-dir " + run_dir + " " + yaml));
  ASSERT_EQ(r.code, 0) << r.output;
  // 61-100-0001 is below the 2 s filter: 121-200-0000 and 61-100-0000 remain, in id order.
  EXPECT_NE(r.output.find("2 items"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"121-200-0000\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resampled with libsoxr"), std::string::npos) << r.output;
  EXPECT_LT(r.output.find("121-200-0000"), r.output.find("61-100-0000")) << r.output;
  EXPECT_TRUE(fs::exists(run_dir + "/librispeech_index_test-clean.h5"));
  // The bad file is in the train split: not mentioned for the test split.
  EXPECT_EQ(r.output.find("1089-300-0001"), std::string::npos) << r.output;

  // The second run reads the index from the cache; the skipped file is warned about and counted.
  write_pipeline(yaml, root, ", split: train");
  const Result again = run(w2p_run("--run-dir " + run_dir + " " + yaml));
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("7 from cache, 0 scanned"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("1089-300-0001.flac"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("skipped 1 bad file"), std::string::npos) << again.output;
}

TEST(LibrispeechIntegration, BadRootFailsWithTheLayoutAndTheGenerator) {
  TempDir tmp;
  const std::string yaml = tmp.path() + "/p.yaml";
  write_pipeline(yaml, tmp.path() + "/missing", "");
  const Result r = run(w2p_run("--run-dir " + tmp.path() + "/run " + yaml));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tools/make-default-corpus"), std::string::npos) << r.output;
}

TEST(LibrispeechIntegration, CorpusStatsPipelinePrintsCountsAndHistogram) {
  TempDir tmp;
  const auto root = ls::testing::make_corpus(tmp.path() + "/corpus");
  const std::string pipeline = std::string(W2P_SOURCE_DIR) + "/pipelines/corpus_stats.yaml";
  const Result r =
      run(w2p_run("--run-dir " + tmp.path() + "/run --set reader.root=" + root + " " + pipeline));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("5 utterances, 4 speakers"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("duration histogram"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("61: 1,"), std::string::npos) << r.output;
}

TEST(LibrispeechIntegration, DefaultCorpusGeneratorIsDeterministicAndResumable) {
  for (const char* p : {"espeak-ng", "flite", "text2wave", "sox"}) {
    if (!have(p)) GTEST_SKIP() << p << " is not installed (tools/install-deps installs it)";
  }
  if (!fs::exists("/usr/share/dictd/devil.dict.dz")) GTEST_SKIP() << "dict-devil not installed";
  TempDir tmp;
  const std::string tool = std::string(W2P_SOURCE_DIR) + "/tools/make-default-corpus";
  // Speakers 61 (espeak-ng) and 908 (festival) with 2 (+0..4) utterances each: a few seconds.
  const std::string args = " --speakers 61,908 --utterances 2 --quiet";
  const std::string a = tmp.path() + "/a";
  const std::string b = tmp.path() + "/b";
  Result r = run(tool + " --out " + a + args);
  ASSERT_EQ(r.code, 0) << r.output;
  r = run(tool + " --out " + b + args);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto manifest = [](const std::string& dir) {
    std::ifstream in(dir + "/MANIFEST.sha256");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  const std::string ma = manifest(a);
  ASSERT_FALSE(ma.empty());
  EXPECT_EQ(ma, manifest(b));  // same bytes: every file's SHA-256 is in the manifest
  EXPECT_FALSE(fs::exists(a + "/INCOMPLETE"));

  // Complete: a rerun does nothing. Half-written: a rerun finishes it with the same bytes.
  r = run(tool + " --out " + a + " --speakers 61,908 --utterances 2");
  EXPECT_NE(r.output.find("complete"), std::string::npos) << r.output;
  fs::remove(a + "/MANIFEST.sha256");
  fs::remove(a + "/.progress/908.sha256");
  for (const auto& e : fs::recursive_directory_iterator(a + "/LibriSpeech/test-clean/908")) {
    if (e.path().extension() == ".flac") {
      fs::resize_file(e.path(), 100);  // a torn write
      break;
    }
  }
  ls::testing::write_text(a + "/INCOMPLETE", "interrupted\n");
  ls::IndexOptions o;
  o.root = a;
  EXPECT_THROW(ls::build_index(o, [](const std::string&) {}), w2p::Error);
  r = run(tool + " --out " + a + args);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(manifest(a), ma);

  // A file changed in a complete corpus fails its checksum: its speaker is made again.
  for (const auto& e : fs::recursive_directory_iterator(a + "/LibriSpeech/test-clean/61")) {
    if (e.path().extension() == ".flac") {
      fs::resize_file(e.path(), 50);
      break;
    }
  }
  r = run(tool + " --out " + a + args);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(manifest(a), ma);

  // The reader takes the generated corpus as it is.
  o.split = ls::Split::kAll;
  o.min_voiced_seconds = 0;
  const auto index = ls::build_index(o, [](const std::string&) {});
  std::size_t flacs = 0;
  for (std::size_t at = ma.find(".flac"); at != std::string::npos; at = ma.find(".flac", at + 1)) {
    ++flacs;
  }
  EXPECT_GE(flacs, 4u);  // 2 per speaker plus a per-speaker 0..4 extra
  EXPECT_EQ(index.utterances.size(), flacs);
  EXPECT_EQ(index.stats.resampled, 0);
  for (const auto& u : index.utterances) {
    EXPECT_GE(u.seconds, 2.0);
    EXPECT_LE(u.seconds, 15.0);
    EXPECT_FALSE(u.transcript.empty());
  }
}
