// librispeech.reader's library: layout rules, bad input, split, order, filter, resampling, cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>

#include "librispeech/reader/audio_file.hpp"
#include "librispeech/reader/corpus_index.hpp"
#include "test_corpus.hpp"
#include "w2p/error.hpp"

namespace fs = std::filesystem;
namespace ls = w2p::librispeech;
using ls::testing::TempDir;

namespace {

struct Built {
  ls::CorpusIndex index;
  std::vector<std::string> warnings;
};

ls::IndexOptions options_for(const std::string& root) {
  ls::IndexOptions o;
  o.root = root;
  o.min_voiced_seconds = 0;  // most tests look at every utterance
  o.threads = 2;
  return o;
}

Built build(const ls::IndexOptions& o) {
  Built b;
  b.index = ls::build_index(o, [&](const std::string& m) { b.warnings.push_back(m); });
  return b;
}

std::vector<std::string> ids(const ls::CorpusIndex& index) {
  std::vector<std::string> out;
  for (const auto& u : index.utterances) out.push_back(u.id);
  return out;
}

std::set<std::int64_t> speakers(const ls::CorpusIndex& index) {
  std::set<std::int64_t> out;
  for (const auto& u : index.utterances) out.insert(u.speaker);
  return out;
}

// Runs f, expects a w2p::Error of `kind` whose message (or notes) contain every `needle`.
template <typename F>
void expect_error(F f, w2p::ErrorKind kind, const std::vector<std::string>& needles) {
  try {
    f();
    FAIL() << "no error thrown";
  } catch (const w2p::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.format();
    for (const auto& n : needles) {
      EXPECT_NE(e.format().find(n), std::string::npos) << "'" << n << "' not in:\n" << e.format();
    }
  }
}

}  // namespace

TEST(LibrispeechReader, ReadsEveryUtteranceSortedByIdWithMetadata) {
  TempDir tmp;
  const auto root = ls::testing::make_corpus(tmp.path());
  const Built b = build(options_for(root));
  EXPECT_EQ(ids(b.index), ls::testing::good_ids());  // string order, as torchaudio sorts
  const ls::Utterance& u = b.index.utterances.back();
  EXPECT_EQ(u.speaker, 61);
  EXPECT_EQ(u.chapter, 100);
  EXPECT_EQ(u.transcript, "A SHORT ONE");
  EXPECT_NEAR(u.seconds, 4.2, 1e-3);
  EXPECT_EQ(b.index.stats.files, 6);
  EXPECT_TRUE(b.warnings.empty());
}

TEST(LibrispeechReader, SplitsBySpeakerAsTheReference) {
  TempDir tmp;
  auto o = options_for(ls::testing::make_corpus(tmp.path()));
  o.split = ls::Split::kTest;
  EXPECT_EQ(speakers(build(o).index), (std::set<std::int64_t>{61, 121}));
  o.split = ls::Split::kVal;
  EXPECT_EQ(speakers(build(o).index), (std::set<std::int64_t>{260}));
  o.split = ls::Split::kTrain;  // QUIRK: val speakers stay in train by default
  EXPECT_EQ(speakers(build(o).index), (std::set<std::int64_t>{260, 1089}));
  o.exclude_val = true;
  EXPECT_EQ(speakers(build(o).index), (std::set<std::int64_t>{1089}));
  o.split = ls::Split::kTest;
  o.test_speakers = {1089};
  EXPECT_EQ(speakers(build(o).index), (std::set<std::int64_t>{1089}));
  EXPECT_EQ(ls::parse_split("all"), ls::Split::kAll);
  EXPECT_THROW(ls::parse_split("dev"), w2p::Error);
}

TEST(LibrispeechReader, MinVoicedSecondsFilterUsesTheSilenceSplit) {
  TempDir tmp;
  auto o = options_for(ls::testing::make_corpus(tmp.path()));
  o.min_voiced_seconds = 2.0;
  const Built b = build(o);
  const auto kept = ids(b.index);
  EXPECT_EQ(std::count(kept.begin(), kept.end(), "61-100-0001"), 0);  // 1.2 s voiced in 4.2 s
  EXPECT_EQ(b.index.stats.filtered_out, 1);
  EXPECT_EQ(kept.size(), 5u);
  for (const auto& u : b.index.utterances) {
    if (u.id == "61-100-0000") {
      EXPECT_NEAR(u.voiced_seconds, 3.0, 0.2);
    }
  }
  o.min_voiced_seconds = 1.0;
  const Built low = build(o);
  ASSERT_EQ(low.index.utterances.size(), 6u);
  EXPECT_NEAR(low.index.utterances.back().voiced_seconds, 1.2, 0.2);
}

TEST(LibrispeechReader, LimitKeepsTheFirstUtterancesById) {
  TempDir tmp;
  auto o = options_for(ls::testing::make_corpus(tmp.path()));
  o.limit = 2;
  const Built b = build(o);
  EXPECT_EQ(ids(b.index), (std::vector<std::string>{"1089-300-0000", "1089-300-0002"}));
  EXPECT_EQ(b.index.stats.beyond_limit, 4);
}

TEST(LibrispeechReader, ResamplesWithSoxrOrRefuses) {
  TempDir tmp;
  auto o = options_for(ls::testing::make_corpus(tmp.path()));
  const Built b = build(o);
  EXPECT_EQ(b.index.stats.resampled, 1);
  const std::string path = tmp.path() + "/LibriSpeech/test-clean/121/200/121-200-0000.flac";
  const ls::AudioData a = ls::read_audio(path, o.audio);
  EXPECT_TRUE(a.resampled);
  EXPECT_EQ(a.file_rate, 22050);
  EXPECT_NEAR(static_cast<double>(a.samples.size()), 4.0 * 16000, 2);
  // A 220 + 330 Hz signal keeps its frequencies: count zero crossings over the voiced part.
  int crossings = 0;
  for (std::size_t i = 16000; i < 48000; ++i) {
    crossings += (a.samples[i - 1] < 0) != (a.samples[i] < 0);
  }
  const int at_source_rate = [] {
    int c = 0;
    const double pi = 3.14159265358979323846;
    for (int i = 1; i < 32000; ++i) {
      const auto v = [&](int k) {
        const double t = 1.0 + k / 16000.0;
        return 0.3 * std::sin(2 * pi * 220 * t) + 0.2 * std::sin(2 * pi * 330 * t);
      };
      c += (v(i - 1) < 0) != (v(i) < 0);
    }
    return c;
  }();
  EXPECT_NEAR(crossings, at_source_rate, 4);
  o.audio.allow_resample = false;
  expect_error([&] { build(o); }, w2p::ErrorKind::kData,
               {"121-200-0000.flac", "22050 Hz", "expected 16000 Hz", "resample: soxr"});
  expect_error([&] { ls::read_audio(path, o.audio); }, w2p::ErrorKind::kData, {"22050 Hz"});
}

TEST(LibrispeechReader, MultichannelUsesTheFirstChannelOrRefuses) {
  TempDir tmp;
  auto o = options_for(ls::testing::make_corpus(tmp.path()));
  EXPECT_EQ(build(o).index.stats.multichannel, 1);
  const std::string path = tmp.path() + "/LibriSpeech/test-clean/1089/300/1089-300-0000.flac";
  const std::string mono = tmp.path() + "/LibriSpeech/test-clean/1089/300/1089-300-0002.flac";
  EXPECT_EQ(ls::read_audio(path, o.audio).samples, ls::read_audio(mono, o.audio).samples);
  o.audio.allow_multichannel = false;
  expect_error([&] { build(o); }, w2p::ErrorKind::kData,
               {"1089-300-0000.flac", "2 channels", "multichannel: first"});
}

TEST(LibrispeechReader, CorruptFileIsAnErrorOrASkipThatIsCounted) {
  TempDir tmp;
  ls::testing::CorpusSpec spec;
  spec.corrupt_file = true;
  auto o = options_for(ls::testing::make_corpus(tmp.path(), spec));
  expect_error([&] { build(o); }, w2p::ErrorKind::kData, {"1089-300-0001.flac", "on_bad_file"});
  o.skip_bad_files = true;
  const Built b = build(o);
  EXPECT_EQ(ids(b.index), ls::testing::good_ids());
  ASSERT_EQ(b.index.stats.skipped.size(), 1u);
  EXPECT_NE(b.index.stats.skipped[0].find("1089-300-0001.flac"), std::string::npos);
  ASSERT_EQ(b.warnings.size(), 1u);
  EXPECT_NE(b.warnings[0].find("skipped"), std::string::npos);
  // A bad file outside the split does not matter.
  o.skip_bad_files = false;
  o.split = ls::Split::kTest;
  EXPECT_EQ(build(o).index.utterances.size(), 3u);
}

TEST(LibrispeechReader, MissingTranscriptFileIsAnErrorOrASkippedChapter) {
  TempDir tmp;
  ls::testing::CorpusSpec spec;
  spec.missing_transcript = true;
  auto o = options_for(ls::testing::make_corpus(tmp.path(), spec));
  expect_error([&] { build(o); }, w2p::ErrorKind::kData,
               {"missing transcript file", "672-500.trans.txt"});
  o.skip_bad_files = true;
  const Built b = build(o);
  EXPECT_EQ(ids(b.index), ls::testing::good_ids());
  EXPECT_EQ(b.index.stats.skipped.size(), 1u);
}

TEST(LibrispeechReader, AudioWithoutTranscriptLineIsBad) {
  TempDir tmp;
  auto o = options_for(ls::testing::make_corpus(tmp.path()));
  ls::testing::write_flac(tmp.path() + "/LibriSpeech/test-clean/260/400/260-400-0009.flac", 16000,
                          1, 2.5);
  expect_error([&] { build(o); }, w2p::ErrorKind::kData,
               {"260-400-0009.flac", "no line in its transcript"});
}

TEST(LibrispeechReader, FolderAndFileNamesMustMatchTheLayout) {
  {
    TempDir tmp;
    auto o = options_for(ls::testing::make_corpus(tmp.path()));
    fs::create_directories(tmp.path() + "/LibriSpeech/test-clean/speaker7/1");
    expect_error([&] { build(o); }, w2p::ErrorKind::kData,
                 {"speaker7", "numeric speaker id", "<speaker>-<chapter>-<utt>.flac"});
  }
  {
    TempDir tmp;
    auto o = options_for(ls::testing::make_corpus(tmp.path()));
    ls::testing::write_flac(tmp.path() + "/LibriSpeech/test-clean/61/100/62-100-0005.flac", 16000,
                            1, 2.5);
    expect_error([&] { build(o); }, w2p::ErrorKind::kData,
                 {"62-100-0005.flac", "expected '61-100-<utt>.flac'"});
  }
  {
    TempDir tmp;
    auto o = options_for(ls::testing::make_corpus(tmp.path()));
    fs::create_directories(tmp.path() + "/LibriSpeech/test-clean/61/ch1");
    expect_error([&] { build(o); }, w2p::ErrorKind::kData, {"ch1", "numeric chapter id"});
  }
}

TEST(LibrispeechReader, MissingRootSaysWhatWasExpectedAndHowToMakeTheCorpus) {
  TempDir tmp;
  auto o = options_for(tmp.path() + "/nowhere");
  expect_error([&] { build(o); }, w2p::ErrorKind::kIo,
               {"nowhere", "does not exist", "LibriSpeech/<subset>/<speaker>/<chapter>",
                "tools/make-default-corpus", ".root="});
  o.root = tmp.path();  // exists, but holds no LibriSpeech/test-clean
  expect_error([&] { build(o); }, w2p::ErrorKind::kIo,
               {"no LibriSpeech subset 'test-clean'", "make-default-corpus"});
}

TEST(LibrispeechReader, HalfWrittenCorpusIsNeverUsed) {
  TempDir tmp;
  auto o = options_for(ls::testing::make_corpus(tmp.path()));
  ls::testing::write_text(tmp.path() + "/INCOMPLETE", "generating\n");
  expect_error([&] { build(o); }, w2p::ErrorKind::kData, {"half-written", "make-default-corpus"});
}

TEST(LibrispeechReader, EmptySplitNamesTheSplitAndTheFilter) {
  TempDir tmp;
  auto o = options_for(ls::testing::make_corpus(tmp.path()));
  o.split = ls::Split::kTest;
  o.min_voiced_seconds = 50;
  expect_error([&] { build(o); }, w2p::ErrorKind::kData,
               {"split 'test'", "empty after filtering", "{61, 121, 237}", "min_voiced_seconds 50",
                "3 removed"});
  o.min_voiced_seconds = 0;
  o.test_speakers = {4242};
  expect_error([&] { build(o); }, w2p::ErrorKind::kData, {"split 'test'", "{4242}"});
}

TEST(LibrispeechReader, IndexCacheIsReusedAndInvalidatedWhenAFileChanges) {
  TempDir tmp;
  TempDir run;
  auto o = options_for(ls::testing::make_corpus(tmp.path()));
  o.cache_path = run.path() + "/index.h5";
  const std::string corpus = tmp.path() + "/LibriSpeech";
  const std::string before = ls::testing::fingerprint(corpus);

  const Built first = build(o);
  EXPECT_EQ(first.index.stats.scanned, 6);
  EXPECT_EQ(first.index.stats.from_cache, 0);
  EXPECT_TRUE(first.index.stats.cache_written);
  ASSERT_TRUE(fs::exists(o.cache_path));

  const Built second = build(o);
  EXPECT_EQ(second.index.stats.scanned, 0);
  EXPECT_EQ(second.index.stats.from_cache, 6);
  EXPECT_FALSE(second.index.stats.cache_written);
  ASSERT_EQ(second.index.utterances.size(), first.index.utterances.size());
  for (std::size_t i = 0; i < first.index.utterances.size(); ++i) {
    EXPECT_EQ(second.index.utterances[i].voiced_seconds, first.index.utterances[i].voiced_seconds);
    EXPECT_EQ(second.index.utterances[i].seconds, first.index.utterances[i].seconds);
  }
  EXPECT_EQ(ls::testing::fingerprint(corpus), before);  // nothing in the corpus was touched

  // Touching a file (new mtime) re-measures that file only.
  const fs::path touched = corpus + "/test-clean/260/400/260-400-0000.flac";
  fs::last_write_time(touched, fs::last_write_time(touched) + std::chrono::seconds(5));
  const Built third = build(o);
  EXPECT_EQ(third.index.stats.scanned, 1);
  EXPECT_EQ(third.index.stats.from_cache, 5);

  // Rewriting a file with other content is picked up too (size and mtime change).
  ls::testing::write_flac(touched.string(), 16000, 1, 0.5, 3.0, 3.0);
  o.min_voiced_seconds = 2.0;
  const Built fourth = build(o);
  EXPECT_EQ(fourth.index.stats.scanned, 1);
  const auto kept = ids(fourth.index);
  EXPECT_EQ(std::count(kept.begin(), kept.end(), "260-400-0000"), 0);

  // A cache made for another output rate is not used.
  o.audio.sample_rate = 8000;
  EXPECT_EQ(build(o).index.stats.scanned, 6);
}
