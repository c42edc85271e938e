#include "test_corpus.hpp"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace w2p::librispeech::testing {

TempDir::TempDir() {
  std::string templ = (fs::temp_directory_path() / "w2p-librispeech-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_flac(const std::string& path, int rate, int channels, double voiced, double lead,
                double tail) {
  fs::create_directories(fs::path(path).parent_path());
  const auto n_lead = static_cast<std::int64_t>(lead * rate);
  const auto n_voiced = static_cast<std::int64_t>(voiced * rate);
  const auto n = n_lead + n_voiced + static_cast<std::int64_t>(tail * rate);
  std::vector<float> data(static_cast<std::size_t>(n * channels), 0.0f);
  const double pi = 3.14159265358979323846;
  for (std::int64_t i = n_lead; i < n_lead + n_voiced; ++i) {
    const double t = static_cast<double>(i) / rate;
    const double v = 0.3 * std::sin(2 * pi * 220 * t) + 0.2 * std::sin(2 * pi * 330 * t);
    data[static_cast<std::size_t>(i * channels)] = static_cast<float>(v);
    for (int c = 1; c < channels; ++c) {
      data[static_cast<std::size_t>(i * channels + c)] =
          static_cast<float>(0.1 * std::sin(2 * pi * 1000 * t));
    }
  }
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (f == nullptr) throw std::runtime_error("cannot write " + path + ": " + sf_strerror(nullptr));
  sf_writef_float(f, data.data(), n);
  sf_close(f);
}

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string make_corpus(const std::string& root, const CorpusSpec& spec) {
  const std::string d = root + "/LibriSpeech/test-clean/";
  write_flac(d + "61/100/61-100-0000.flac", 16000, 1, 3.0);
  write_flac(d + "61/100/61-100-0001.flac", 16000, 1, 1.2, 1.5, 1.5);
  write_text(d + "61/100/61-100.trans.txt",
             "61-100-0000 THE FIRST UTTERANCE\n61-100-0001 A SHORT ONE\n");
  write_flac(d + "121/200/121-200-0000.flac", 22050, 1, 3.0);
  write_text(d + "121/200/121-200.trans.txt", "121-200-0000 RESAMPLED SPEECH\n");
  write_flac(d + "1089/300/1089-300-0000.flac", 16000, 2, 2.5);
  write_flac(d + "1089/300/1089-300-0002.flac", 16000, 1, 2.5);
  std::string trans = "1089-300-0000 TWO CHANNELS\n1089-300-0002 TRAIN SPEECH\n";
  if (spec.corrupt_file) {
    std::ofstream(d + "1089/300/1089-300-0001.flac", std::ios::binary)
        << "fLaC this is not a valid stream at all";
    trans += "1089-300-0001 BROKEN\n";
  }
  write_text(d + "1089/300/1089-300.trans.txt", trans);
  write_flac(d + "260/400/260-400-0000.flac", 16000, 1, 2.5);
  write_text(d + "260/400/260-400.trans.txt", "260-400-0000 VALIDATION SPEECH\n");
  if (spec.missing_transcript) write_flac(d + "672/500/672-500-0000.flac", 16000, 1, 2.5);
  return root;
}

std::vector<std::string> good_ids() {
  return {"1089-300-0000", "1089-300-0002", "121-200-0000",
          "260-400-0000",  "61-100-0000",   "61-100-0001"};
}

std::string fingerprint(const std::string& dir) {
  std::vector<std::string> lines;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::uint64_t h = 1469598103934665603ull;
    char c;
    while (in.get(c)) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    std::ostringstream s;
    s << e.path().string() << " " << e.file_size() << " " << h << " "
      << fs::last_write_time(e.path()).time_since_epoch().count();
    lines.push_back(s.str());
  }
  std::sort(lines.begin(), lines.end());
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  return all;
}

}  // namespace w2p::librispeech::testing
