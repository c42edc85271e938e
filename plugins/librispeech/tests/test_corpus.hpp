// Tiny LibriSpeech-layout corpora written at test time (real FLAC through libsndfile).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace w2p::librispeech::testing {

/// A fresh temporary folder, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Writes `lead` s of silence, `voiced` s of a loud two-tone signal and `tail` s of silence
/// (channel 0; other channels carry a different, quieter signal) as 16-bit FLAC.
void write_flac(const std::string& path, int rate, int channels, double voiced, double lead = 0.5,
                double tail = 0.5);
void write_text(const std::string& path, const std::string& text);

struct CorpusSpec {
  bool corrupt_file = false;        ///< adds 1089/300/1089-300-0001.flac with garbage bytes
  bool missing_transcript = false;  ///< adds chapter 672/500 without its .trans.txt
};

/// Writes the corpus under root/LibriSpeech/test-clean and returns root. Good utterances:
///   61-100-0000 (3 s voiced), 61-100-0001 (1.2 s voiced in 4.2 s: below the 2 s filter),
///   121-200-0000 (22.05 kHz), 1089-300-0000 (stereo), 1089-300-0002, 260-400-0000 (val).
std::string make_corpus(const std::string& root, const CorpusSpec& spec = {});

/// The good utterance ids of make_corpus in lexicographic order.
std::vector<std::string> good_ids();

/// SHA-256-free fingerprint of every file under `dir`: path, size and FNV-1a of the bytes.
std::string fingerprint(const std::string& dir);

}  // namespace w2p::librispeech::testing
