// Plugin `librispeech`: the speech corpus the reference trains on (spec §1.1).
//
//   librispeech.reader  source: one utterance per item from a LibriSpeech-layout tree, split by
//                       speaker, filtered by voiced duration, sorted by utterance id
//   librispeech.stats   sink: utterance/speaker counts and a duration histogram, at the end
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <thread>

#include <w2p/plugin.hpp>

#include "librispeech/reader/audio_file.hpp"
#include "librispeech/reader/corpus_index.hpp"

namespace {

namespace ls = w2p::librispeech;

class Reader final : public w2p::Node {
 public:
  static constexpr const char* kDoc =
      "Reads a LibriSpeech-layout corpus (<root>/LibriSpeech/<subset>/<speaker>/<chapter>/"
      "<speaker>-<chapter>-<utt>.flac + <speaker>-<chapter>.trans.txt) and emits one utterance "
      "per item, sorted by utterance id: the raw waveform (16 kHz mono f32, resampled with "
      "libsoxr if needed), id, speaker, chapter, transcript, duration and voiced duration. "
      "Speaker split as the reference (test 61/121/237; val 260/672/908 declared but kept in "
      "train unless exclude_val). Keeps utterances whose silence-removed length (librosa "
      "effects.split rule, top_db 20, frame 2048, hop 512) exceeds min_voiced_seconds. The "
      "per-file index (duration, voiced duration, mtime, size) is cached in an HDF5 file next to "
      "the run outputs and refreshed for files that change. Corpus files are only ever read.";
  static constexpr w2p::Port kUtterance{"utterance"};

  static std::vector<w2p::OptionSpec> options() {
    using w2p::OptionSpec;
    return {
        OptionSpec::path("root").describe(
            "folder holding LibriSpeech/ (a download, or tools/make-default-corpus's output)"),
        OptionSpec::string("subset", "test-clean").describe("subset folder under LibriSpeech/"),
        OptionSpec::choice("split", {"train", "test", "val", "all"}, "all")
            .describe("speakers to emit: test = test_speakers, val = val_speakers, train = the "
                      "others (minus val_speakers when exclude_val), all = every speaker"),
        OptionSpec::int_list("test_speakers", std::vector<std::int64_t>{61, 121, 237})
            .describe("speaker ids of the test split"),
        OptionSpec::int_list("val_speakers", std::vector<std::int64_t>{260, 672, 908})
            .describe("speaker ids of the val split"),
        OptionSpec::boolean("exclude_val", false)
            .describe("remove val speakers from train (the reference keeps them: QUIRK)"),
        OptionSpec::number("min_voiced_seconds", 2.0)
            .range(0, 1e6)
            .describe("keep an utterance whose silence-removed length is longer than this"),
        OptionSpec::integer("limit", 0)
            .range(0, 1e12)
            .describe("at most this many utterances (the first by id after filtering); 0 = all"),
        OptionSpec::choice("on_bad_file", {"error", "skip"}, "error")
            .describe("unreadable/corrupt audio or a missing transcript: stop, or skip it with a "
                      "warning naming it and a count at the end"),
        OptionSpec::choice("resample", {"soxr", "error"}, "soxr")
            .describe("a file not at 16 kHz: resample with libsoxr (logged once), or fail"),
        OptionSpec::choice("multichannel", {"first", "error"}, "first")
            .describe("a file with several channels: use the first (logged once), or fail"),
        OptionSpec::boolean("emit_audio", true)
            .describe("emit the waveform; false emits only the metadata (statistics: no decoding "
                      "once the index is cached)"),
        OptionSpec::path("cache", "")
            .describe("HDF5 index cache file; empty = <run_dir>/librispeech_index_<subset>.h5"),
        OptionSpec::boolean("use_cache", true).describe("false: rescan every file on every run"),
    };
  }

  static w2p::Schema schema(bool with_audio) {
    using w2p::DType;
    using w2p::FieldSpec;
    using w2p::spec;
    w2p::Schema s;
    if (with_audio) {
      s.fields.push_back(FieldSpec{"audio", w2p::TensorSpec{DType::kF32, {w2p::Dim::ragged()}},
                                   "raw waveform, 16 kHz mono, not silence-removed (QUIRK §1.1)"});
    }
    s.fields.push_back(FieldSpec{"utterance_id", spec(DType::kStr), "<speaker>-<chapter>-<utt>"});
    s.fields.push_back(FieldSpec{"speaker", spec(DType::kI64), "speaker id"});
    s.fields.push_back(FieldSpec{"chapter", spec(DType::kI64), "chapter id"});
    s.fields.push_back(FieldSpec{"transcript", spec(DType::kStr), "text from the .trans.txt"});
    s.fields.push_back(FieldSpec{"seconds", spec(DType::kF64), "duration in seconds"});
    s.fields.push_back(
        FieldSpec{"voiced_seconds", spec(DType::kF64), "duration with silence removed"});
    return s;
  }

  static w2p::Contract declare(const w2p::Options& o) {
    return w2p::Contract()
        .output(kUtterance, schema(o.get_bool("emit_audio")), "one utterance per item")
        .repeatable();
  }

  explicit Reader(const w2p::Options& o) : emit_audio_(o.get_bool("emit_audio")) {
    opt_.root = o.get_string("root");
    opt_.subset = o.get_string("subset");
    opt_.split = ls::parse_split(o.get_string("split"));
    opt_.test_speakers = o.get_int_list("test_speakers");
    opt_.val_speakers = o.get_int_list("val_speakers");
    opt_.exclude_val = o.get_bool("exclude_val");
    opt_.min_voiced_seconds = o.get_float("min_voiced_seconds");
    opt_.limit = o.get_int("limit");
    opt_.skip_bad_files = o.get_string("on_bad_file") == "skip";
    opt_.audio.allow_resample = o.get_string("resample") == "soxr";
    opt_.audio.allow_multichannel = o.get_string("multichannel") == "first";
    opt_.cache_path = o.get_bool("use_cache") ? o.get_string("cache") : "";
    use_cache_ = o.get_bool("use_cache");
  }

  void open(w2p::NodeContext& ctx) override {
    if (use_cache_ && opt_.cache_path.empty()) {
      opt_.cache_path = ctx.run().run_dir + "/librispeech_index_" + opt_.subset + ".h5";
    }
    opt_.threads = ctx.run().threads > 0 ? ctx.run().threads
                                         : static_cast<int>(std::thread::hardware_concurrency());
    // NOTE: the index cache is read and written here only: HDF5 (Debian's serial build) is not
    // thread-safe, and the runtime opens sources without side inputs before the graph starts.
    ls::CorpusIndex index = ls::build_index(opt_, [&](const std::string& m) { ctx.warn(m); });
    utterances_ = std::move(index.utterances);
    stats_ = index.stats;
    std::ostringstream m;
    m << "split '" << ls::to_string(opt_.split) << "' of " << ls::subset_dir(opt_) << ": "
      << utterances_.size() << " utterances (" << stats_.files << " files, " << stats_.in_split
      << " usable in the split, " << stats_.filtered_out
      << " with voiced time <= " << opt_.min_voiced_seconds << " s removed";
    if (stats_.beyond_limit > 0) m << ", " << stats_.beyond_limit << " beyond limit";
    m << "); index: " << stats_.from_cache << " from cache, " << stats_.scanned << " scanned";
    if (stats_.cache_written) m << ", cache " << opt_.cache_path << " updated";
    ctx.info(m.str());
    if (stats_.resampled > 0) {
      ctx.info(std::to_string(stats_.resampled) +
               " file(s) are not at 16000 Hz; they are resampled with libsoxr");
    }
    if (stats_.multichannel > 0) {
      ctx.info(std::to_string(stats_.multichannel) +
               " file(s) have several channels; their first channel is used");
    }
    if (!stats_.skipped.empty()) {
      ctx.warn("skipped " + std::to_string(stats_.skipped.size()) + " bad file(s)/chapter(s)");
    }
    ctx.expect_items(utterances_.size());
  }

  w2p::Flow process(w2p::NodeContext& ctx) override {
    const auto i = static_cast<std::size_t>(ctx.index());
    if (i >= utterances_.size()) return w2p::Flow::kEndOfStream;
    const ls::Utterance& u = utterances_[i];
    w2p::Item item;
    if (emit_audio_) {
      // The index was built with the same options, so a failure here means the file changed
      // during the run: always an error.
      ls::AudioData a = ls::read_audio(u.path, opt_.audio);
      item.set("audio", w2p::Tensor::from_vector(a.samples));
    }
    item.set("utterance_id", w2p::Tensor::scalar(u.id));
    item.set("speaker", w2p::Tensor::scalar(u.speaker));
    item.set("chapter", w2p::Tensor::scalar(u.chapter));
    item.set("transcript", w2p::Tensor::scalar(u.transcript));
    item.set("seconds", w2p::Tensor::scalar(u.seconds));
    item.set("voiced_seconds", w2p::Tensor::scalar(u.voiced_seconds));
    ctx.emit(kUtterance, std::move(item));
    return w2p::Flow::kContinue;
  }

  void finish(w2p::NodeContext& ctx) override {
    if (!stats_.skipped.empty()) {
      ctx.warn("skipped " + std::to_string(stats_.skipped.size()) +
               " bad file(s)/chapter(s) (on_bad_file: skip); the first: " + stats_.skipped[0]);
    }
  }

 private:
  ls::IndexOptions opt_;
  bool emit_audio_;
  bool use_cache_;
  std::vector<ls::Utterance> utterances_;
  ls::IndexStats stats_;
};

class Stats final : public w2p::Node {
 public:
  static constexpr const char* kDoc =
      "Counts utterances and speakers (per speaker too) and prints a histogram of utterance "
      "durations and of voiced durations when the stream ends. Feed it librispeech.reader's "
      "items (emit_audio: false is enough).";
  static constexpr w2p::Port kIn{"in"};

  static std::vector<w2p::OptionSpec> options() {
    return {w2p::OptionSpec::number("bin_seconds", 1.0)
                .range(0.01, 1e4)
                .describe("histogram bin width in seconds"),
            w2p::OptionSpec::boolean("per_speaker", true).describe("also list every speaker")};
  }
  static w2p::Contract declare(const w2p::Options&) {
    using w2p::DType;
    using w2p::spec;
    const w2p::Schema s{{w2p::FieldSpec{"speaker", spec(DType::kI64), "speaker id"},
                         w2p::FieldSpec{"seconds", spec(DType::kF64), "duration"},
                         w2p::FieldSpec{"voiced_seconds", spec(DType::kF64), "voiced duration"}}};
    return w2p::Contract().input(kIn, s, "utterances").cardinality(w2p::Cardinality::kAny);
  }
  explicit Stats(const w2p::Options& o)
      : bin_(o.get_float("bin_seconds")), per_speaker_(o.get_bool("per_speaker")) {}

  w2p::Flow process(w2p::NodeContext& ctx) override {
    const w2p::Item& in = ctx.in(kIn);
    const double s = in.get("seconds").item<double>();
    const double v = in.get("voiced_seconds").item<double>();
    auto& spk = speakers_[in.get("speaker").item<std::int64_t>()];
    ++spk.first;
    spk.second += s;
    ++hist_[static_cast<std::int64_t>(std::floor(s / bin_))].first;
    ++hist_[static_cast<std::int64_t>(std::floor(v / bin_))].second;
    total_ += s;
    voiced_ += v;
    ++count_;
    return w2p::Flow::kContinue;
  }

  void finish(w2p::NodeContext& ctx) override {
    char line[160];
    std::snprintf(line, sizeof line, "%lld utterances, %zu speakers, %.2f h (%.2f h voiced)",
                  static_cast<long long>(count_), speakers_.size(), total_ / 3600, voiced_ / 3600);
    ctx.info(line);
    std::int64_t peak = 1;
    for (const auto& [bin, c] : hist_) peak = std::max({peak, c.first, c.second});
    ctx.info("duration histogram (seconds: utterances | voiced):");
    const std::int64_t first = hist_.empty() ? 0 : hist_.begin()->first;
    const std::int64_t last = hist_.empty() ? -1 : hist_.rbegin()->first;
    for (std::int64_t bin = first; bin <= last; ++bin) {  // empty bins too: gaps stay visible
      const auto found = hist_.find(bin);
      const std::pair<std::int64_t, std::int64_t> c =
          found == hist_.end() ? std::pair<std::int64_t, std::int64_t>{0, 0} : found->second;
      const auto bar = [&](std::int64_t n) {
        return std::string(static_cast<std::size_t>((n * 30 + peak - 1) / peak), '#');
      };
      std::snprintf(line, sizeof line, "  [%5.1f, %5.1f) %6lld %-30s | %6lld %s",
                    static_cast<double>(bin) * bin_, static_cast<double>(bin + 1) * bin_,
                    static_cast<long long>(c.first), bar(c.first).c_str(),
                    static_cast<long long>(c.second), bar(c.second).c_str());
      ctx.info(line);
    }
    if (per_speaker_) {
      std::ostringstream s;
      s << "per speaker (id: utterances, minutes):";
      for (const auto& [id, c] : speakers_) {
        char one[64];
        std::snprintf(one, sizeof one, " %lld: %lld, %.1f;", static_cast<long long>(id),
                      static_cast<long long>(c.first), c.second / 60);
        s << one;
      }
      ctx.info(s.str());
    }
  }

 private:
  double bin_;
  bool per_speaker_;
  std::map<std::int64_t, std::pair<std::int64_t, double>> speakers_;
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> hist_;
  double total_ = 0;
  double voiced_ = 0;
  std::int64_t count_ = 0;
};

void register_nodes(w2p::Registry& registry) {
  registry.add(w2p::make_node_type<Reader>("librispeech.reader"));
  registry.add(w2p::make_node_type<Stats>("librispeech.stats"));
}

}  // namespace

W2P_PLUGIN("librispeech", "0.1.0", register_nodes)
