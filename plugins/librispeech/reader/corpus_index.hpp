// The utterance index of a LibriSpeech-layout corpus: layout checks, transcripts, per-file audio
// facts (duration, voiced duration) with an HDF5 cache, the speaker split and the filter.
//
// Layout (as downloaded from openslr.org/12, and as tools/make-default-corpus writes it):
//   <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
//   <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
// No file of the corpus is ever written: the cache lives elsewhere (next to the run outputs).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "librispeech/reader/audio_file.hpp"

namespace w2p::librispeech {

struct Utterance {
  std::string id;  ///< "<speaker>-<chapter>-<utt>"
  std::int64_t speaker = 0;
  std::int64_t chapter = 0;
  std::string path;  ///< absolute path of the audio file
  std::string transcript;
  double seconds = 0;         ///< duration at the output rate
  double voiced_seconds = 0;  ///< duration with silence removed (spec §1.1)
  int file_rate = 0;
  int file_channels = 0;
};

enum class Split { kTrain, kTest, kVal, kAll };
/// "train" -> kTrain...; throws w2p::Error (kConfig) for other names.
Split parse_split(const std::string& name);
const char* to_string(Split split);

struct IndexOptions {
  std::string root;  ///< the folder holding LibriSpeech/
  std::string subset = "test-clean";
  Split split = Split::kAll;
  std::vector<std::int64_t> test_speakers{61, 121, 237};
  std::vector<std::int64_t> val_speakers{260, 672, 908};
  bool exclude_val = false;  ///< QUIRK(spec §1.1): the reference keeps val speakers in train
  double min_voiced_seconds = 2.0;
  std::int64_t limit = 0;  ///< 0 = no limit
  bool skip_bad_files = false;
  AudioReadOptions audio;
  std::string cache_path;  ///< HDF5 index cache; empty = no cache
  int threads = 1;         ///< decoding threads while scanning
};

struct IndexStats {
  std::int64_t files = 0;            ///< audio files found in the subset
  std::int64_t from_cache = 0;       ///< whose facts came from the cache
  std::int64_t scanned = 0;          ///< decoded in this build
  std::int64_t resampled = 0;        ///< files not at the output rate
  std::int64_t multichannel = 0;     ///< files with more than one channel
  std::vector<std::string> skipped;  ///< bad files (or chapters) skipped, one message each
  std::int64_t in_split = 0;         ///< usable utterances of the split's speakers
  std::int64_t filtered_out = 0;     ///< removed by min_voiced_seconds
  std::int64_t beyond_limit = 0;     ///< kept by the filter but past `limit`
  bool cache_written = false;
};

struct CorpusIndex {
  std::vector<Utterance> utterances;  ///< the split after filtering and limit, sorted by id
  IndexStats stats;
};

/// Builds the index. `warn` receives one line per skipped file and per notable fact.
/// Throws w2p::Error naming the file and what was expected for every bad-input rule.
CorpusIndex build_index(const IndexOptions& options,
                        const std::function<void(const std::string&)>& warn);

/// The subset folder the options point at: <root>/LibriSpeech/<subset>.
std::string subset_dir(const IndexOptions& options);

}  // namespace w2p::librispeech
