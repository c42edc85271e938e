#include "librispeech/reader/corpus_index.hpp"

#include <hdf5.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "librispeech/kernels/silence_split.hpp"
#include "w2p/error.hpp"

namespace fs = std::filesystem;

namespace w2p::librispeech {

namespace {

constexpr const char* kCacheFormat = "w2p-librispeech-index/1";
// What the voiced durations in a cache were computed with; a change invalidates every cache.
constexpr const char* kFilterSpec = "librosa-split frame 2048 hop 512 top_db 20 pad constant";

const char* kLayout =
    "<root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac with one "
    "<speaker>-<chapter>.trans.txt per chapter folder";

// Audio facts of one file, what the cache stores. Computed with permissive read options (first
// channel, resampled) so that the cache does not depend on the resample/multichannel options.
struct FileFacts {
  std::string rel;  // path relative to the subset folder
  std::int64_t mtime_ns = 0;
  std::int64_t size = 0;
  bool ok = false;
  std::string message;  // why the file is unreadable
  std::int64_t file_rate = 0;
  std::int64_t channels = 0;
  double seconds = 0;
  double voiced_seconds = 0;
};

struct Candidate {
  Utterance utt;
  FileFacts facts;
  bool has_transcript = false;
  bool chapter_without_transcript = false;  // already reported once for the whole chapter
};

bool all_digits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<fs::directory_entry> sorted_entries(const fs::path& dir) {
  std::vector<fs::directory_entry> entries;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind('.', 0) == 0) continue;  // hidden files
    entries.push_back(e);
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path() < b.path(); });
  return entries;
}

std::int64_t mtime_ns(const fs::path& p) {
  return static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       fs::last_write_time(p).time_since_epoch())
                                       .count());
}

std::map<std::string, std::string> read_transcripts(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(ErrorKind::kIo, "cannot read transcript file '" + file.string() + "'");
  std::map<std::string, std::string> lines;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto space = line.find(' ');
    if (space == std::string::npos || space == 0) {
      throw Error(ErrorKind::kData, "transcript file '" + file.string() + "' line " +
                                        std::to_string(number) + " has no utterance id and text")
          .note("expected lines '<speaker>-<chapter>-<utt> TEXT'");
    }
    lines[line.substr(0, space)] = line.substr(space + 1);
  }
  return lines;
}

// ---- HDF5 cache (plain HDF5, readable with h5py) --------------------------------------------
// The C library is not thread-safe: the reader calls this only from open(), which the runtime
// runs before the graph starts for sources without side inputs.

class H5Quiet {  // silences HDF5's automatic error printing while a cache is probed
 public:
  H5Quiet() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~H5Quiet() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  H5Quiet(const H5Quiet&) = delete;
  H5Quiet& operator=(const H5Quiet&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

hid_t vlen_string_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

bool write_string_attr(hid_t obj, const char* name, const std::string& value) {
  hid_t t = vlen_string_type();
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
  const char* p = value.c_str();
  const bool ok = a >= 0 && H5Awrite(a, t, &p) >= 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  H5Tclose(t);
  return ok;
}

bool read_string_attr(hid_t obj, const char* name, std::string* out) {
  if (H5Aexists(obj, name) <= 0) return false;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return false;
  hid_t t = vlen_string_type();
  char* p = nullptr;
  const bool ok = H5Aread(a, t, &p) >= 0 && p != nullptr;
  if (ok) *out = p;
  if (p != nullptr) H5free_memory(p);
  H5Tclose(t);
  H5Aclose(a);
  return ok;
}

template <typename T>
bool write_column(hid_t file, const char* name, hid_t type, const std::vector<T>& values) {
  const hsize_t n = values.size();
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const bool ok =
      d >= 0 && (n == 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0);
  if (d >= 0) H5Dclose(d);
  H5Sclose(space);
  return ok;
}

template <typename T>
bool read_column(hid_t file, const char* name, hid_t type, std::size_t n, std::vector<T>* out) {
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  if (d < 0) return false;
  hid_t space = H5Dget_space(d);
  hsize_t dims = 0;
  const bool shape_ok = H5Sget_simple_extent_ndims(space) == 1 &&
                        H5Sget_simple_extent_dims(space, &dims, nullptr) == 1 && dims == n;
  H5Sclose(space);
  out->assign(n, T{});
  const bool ok =
      shape_ok && (n == 0 || H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data()) >= 0);
  H5Dclose(d);
  return ok;
}

bool read_string_column(hid_t file, const char* name, std::size_t n,
                        std::vector<std::string>* out) {
  std::vector<char*> raw;
  hid_t t = vlen_string_type();
  const bool ok = read_column(file, name, t, n, &raw);
  out->clear();
  for (char* p : raw) {
    out->push_back(p != nullptr ? p : "");
    if (p != nullptr) H5free_memory(p);
  }
  H5Tclose(t);
  return ok;
}

std::string cache_key(const std::string& subset, int rate) {
  return std::string(kCacheFormat) + "|" + subset + "|" + std::to_string(rate) + "|" + kFilterSpec;
}

// Returns the cached facts by relative path, or nothing when the cache is absent or was made for
// another corpus, rate or filter.
std::map<std::string, FileFacts> read_cache(const std::string& path, const std::string& key) {
  std::map<std::string, FileFacts> facts;
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec)) return facts;
  H5Quiet quiet;
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return facts;
  std::string stored_key;
  std::int64_t n = 0;
  hid_t a = H5Aexists(file, "files") > 0 ? H5Aopen(file, "files", H5P_DEFAULT) : -1;
  const bool header_ok = read_string_attr(file, "key", &stored_key) && stored_key == key &&
                         a >= 0 && H5Aread(a, H5T_NATIVE_INT64, &n) >= 0 && n >= 0;
  if (a >= 0) H5Aclose(a);
  if (header_ok) {
    const auto count = static_cast<std::size_t>(n);
    std::vector<std::string> rel, message;
    std::vector<std::int64_t> mtime, size, ok, rate, channels;
    std::vector<double> seconds, voiced;
    const bool all = read_string_column(file, "path", count, &rel) &&
                     read_string_column(file, "message", count, &message) &&
                     read_column(file, "mtime_ns", H5T_NATIVE_INT64, count, &mtime) &&
                     read_column(file, "size", H5T_NATIVE_INT64, count, &size) &&
                     read_column(file, "ok", H5T_NATIVE_INT64, count, &ok) &&
                     read_column(file, "file_rate", H5T_NATIVE_INT64, count, &rate) &&
                     read_column(file, "channels", H5T_NATIVE_INT64, count, &channels) &&
                     read_column(file, "seconds", H5T_NATIVE_DOUBLE, count, &seconds) &&
                     read_column(file, "voiced_seconds", H5T_NATIVE_DOUBLE, count, &voiced);
    if (all) {
      for (std::size_t i = 0; i < count; ++i) {
        facts[rel[i]] = FileFacts{rel[i],  mtime[i],    size[i],    ok[i] != 0, message[i],
                                  rate[i], channels[i], seconds[i], voiced[i]};
      }
    }
  }
  H5Fclose(file);
  return facts;
}

bool write_cache(const std::string& path, const std::string& key, const std::string& subset,
                 const std::vector<FileFacts>& facts) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp";
  H5Quiet quiet;
  hid_t file = H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) return false;
  std::vector<const char*> rel, message;
  std::vector<std::int64_t> mtime, size, ok, rate, channels;
  std::vector<double> seconds, voiced;
  for (const auto& f : facts) {
    rel.push_back(f.rel.c_str());
    message.push_back(f.message.c_str());
    mtime.push_back(f.mtime_ns);
    size.push_back(f.size);
    ok.push_back(f.ok ? 1 : 0);
    rate.push_back(f.file_rate);
    channels.push_back(f.channels);
    seconds.push_back(f.seconds);
    voiced.push_back(f.voiced_seconds);
  }
  hid_t st = vlen_string_type();
  const auto n = static_cast<std::int64_t>(facts.size());
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(file, "files", H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT);
  bool good = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &n) >= 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  good = good && write_string_attr(file, "key", key) &&
         write_string_attr(file, "subset_dir", subset) && write_column(file, "path", st, rel) &&
         write_column(file, "message", st, message) &&
         write_column(file, "mtime_ns", H5T_NATIVE_INT64, mtime) &&
         write_column(file, "size", H5T_NATIVE_INT64, size) &&
         write_column(file, "ok", H5T_NATIVE_INT64, ok) &&
         write_column(file, "file_rate", H5T_NATIVE_INT64, rate) &&
         write_column(file, "channels", H5T_NATIVE_INT64, channels) &&
         write_column(file, "seconds", H5T_NATIVE_DOUBLE, seconds) &&
         write_column(file, "voiced_seconds", H5T_NATIVE_DOUBLE, voiced);
  H5Tclose(st);
  good = H5Fclose(file) >= 0 && good;
  if (good) fs::rename(tmp, path, ec);
  if (!good || ec) fs::remove(tmp, ec);
  return good && !ec;
}

// Decodes one file and measures it (the expensive part of an index build).
void measure(const std::string& path, int rate, FileFacts* f) {
  AudioReadOptions permissive;
  permissive.sample_rate = rate;
  try {
    const AudioData a = read_audio(path, permissive);
    f->ok = true;
    f->file_rate = a.file_rate;
    f->channels = a.file_channels;
    f->seconds = static_cast<double>(a.samples.size()) / rate;
    f->voiced_seconds = voiced_duration_seconds(a.samples.data(),
                                                static_cast<std::int64_t>(a.samples.size()), rate);
  } catch (const Error& e) {
    f->ok = false;
    f->message = e.message();
  } catch (const std::exception& e) {
    f->ok = false;
    f->message = e.what();
  }
}

std::string list_text(const std::vector<std::int64_t>& v) {
  std::string s = "{";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "}";
}

}  // namespace

Split parse_split(const std::string& name) {
  if (name == "train") return Split::kTrain;
  if (name == "test") return Split::kTest;
  if (name == "val") return Split::kVal;
  if (name == "all") return Split::kAll;
  throw Error(ErrorKind::kConfig, "unknown split '" + name + "'")
      .note("expected train, test, val or all");
}

const char* to_string(Split split) {
  switch (split) {
    case Split::kTrain:
      return "train";
    case Split::kTest:
      return "test";
    case Split::kVal:
      return "val";
    case Split::kAll:
      break;
  }
  return "all";
}

std::string subset_dir(const IndexOptions& options) {
  return (fs::path(options.root) / "LibriSpeech" / options.subset).lexically_normal().string();
}

CorpusIndex build_index(const IndexOptions& options,
                        const std::function<void(const std::string&)>& warn) {
  const fs::path root(options.root);
  const fs::path dir(subset_dir(options));
  const std::string make_hint =
      "to generate the offline default corpus there: tools/make-default-corpus --out " +
      options.root;
  std::error_code ec;
  if (fs::exists(root / "INCOMPLETE", ec)) {
    throw Error(ErrorKind::kData, "corpus '" + options.root + "' is half-written (" +
                                      (root / "INCOMPLETE").string() + " exists)")
        .note("run tools/make-default-corpus to finish it; a half-written corpus is never used");
  }
  if (!fs::is_directory(dir, ec)) {
    Error e(ErrorKind::kIo, fs::is_directory(root, ec)
                                ? "no LibriSpeech subset '" + options.subset +
                                      "' under corpus root '" + options.root + "': '" +
                                      dir.string() + "' is missing"
                                : "corpus root '" + options.root + "' does not exist");
    e.note(std::string("expected the LibriSpeech layout ") + kLayout);
    e.note(make_hint);
    e.note("or point at a downloaded LibriSpeech: --set <node>.root=/path/holding/LibriSpeech");
    throw e;
  }

  // ---- layout walk: every folder and file name is checked against the LibriSpeech pattern
  std::vector<Candidate> candidates;
  std::vector<std::string> chapter_problems;  // missing transcripts etc. (bad-file rule)
  for (const auto& spk_entry : sorted_entries(dir)) {
    if (!spk_entry.is_directory()) continue;  // LibriSpeech keeps README files elsewhere
    const std::string spk_name = spk_entry.path().filename().string();
    if (!all_digits(spk_name)) {
      throw Error(ErrorKind::kData, "speaker folder '" + spk_entry.path().string() +
                                        "' is not named by a numeric speaker id")
          .note(std::string("expected the LibriSpeech layout ") + kLayout);
    }
    for (const auto& ch_entry : sorted_entries(spk_entry.path())) {
      if (!ch_entry.is_directory()) continue;
      const std::string ch_name = ch_entry.path().filename().string();
      if (!all_digits(ch_name)) {
        throw Error(ErrorKind::kData, "chapter folder '" + ch_entry.path().string() +
                                          "' is not named by a numeric chapter id")
            .note(std::string("expected the LibriSpeech layout ") + kLayout);
      }
      const std::string prefix = spk_name + "-" + ch_name;
      const fs::path trans_path = ch_entry.path() / (prefix + ".trans.txt");
      std::vector<Candidate> chapter;
      for (const auto& f : sorted_entries(ch_entry.path())) {
        const std::string name = f.path().filename().string();
        if (ends_with(name, ".trans.txt")) {
          if (name != prefix + ".trans.txt") {
            throw Error(ErrorKind::kData,
                        "transcript file '" + f.path().string() + "' does not match its folders")
                .note("expected '" + prefix + ".trans.txt' in folder " + spk_name + "/" + ch_name);
          }
          continue;
        }
        if (!ends_with(name, ".flac")) continue;
        const std::string id = name.substr(0, name.size() - 5);
        const std::string utt = id.size() > prefix.size() + 1 ? id.substr(prefix.size() + 1) : "";
        if (id.compare(0, prefix.size() + 1, prefix + "-") != 0 || !all_digits(utt)) {
          throw Error(ErrorKind::kData, "audio file '" + f.path().string() +
                                            "' does not match its speaker and chapter folders")
              .note("expected '" + prefix + "-<utt>.flac' (digits) in folder " + spk_name + "/" +
                    ch_name);
        }
        Candidate c;
        c.utt.id = id;
        c.utt.speaker = std::stoll(spk_name);
        c.utt.chapter = std::stoll(ch_name);
        c.utt.path = f.path().string();
        c.facts.rel = fs::path(f.path()).lexically_relative(dir).string();
        c.facts.mtime_ns = mtime_ns(f.path());
        c.facts.size = static_cast<std::int64_t>(f.file_size());
        chapter.push_back(std::move(c));
      }
      if (chapter.empty()) continue;
      if (!fs::exists(trans_path)) {
        const std::string msg = "missing transcript file '" + trans_path.string() + "' for " +
                                std::to_string(chapter.size()) + " audio file(s)";
        if (!options.skip_bad_files) {
          throw Error(ErrorKind::kData, msg)
              .note(
                  "expected one <speaker>-<chapter>.trans.txt per chapter folder; "
                  "on_bad_file: skip skips the chapter instead");
        }
        chapter_problems.push_back(msg);
        for (auto& c : chapter) c.chapter_without_transcript = true;
      } else {
        const auto lines = read_transcripts(trans_path);
        for (auto& c : chapter) {
          const auto it = lines.find(c.utt.id);
          c.has_transcript = it != lines.end();
          if (c.has_transcript) c.utt.transcript = it->second;
        }
        for (const auto& [id, text] : lines) {
          const bool has_audio = std::any_of(chapter.begin(), chapter.end(),
                                             [&](const Candidate& c) { return c.utt.id == id; });
          if (!has_audio) {
            warn("transcript '" + trans_path.string() + "' names utterance " + id +
                 " whose audio file is missing");
          }
        }
      }
      for (auto& c : chapter) candidates.push_back(std::move(c));
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.utt.id < b.utt.id; });

  CorpusIndex index;
  IndexStats& st = index.stats;
  st.files = static_cast<std::int64_t>(candidates.size());

  // ---- audio facts: from the cache when mtime and size still match, else decoded (parallel)
  const int rate = options.audio.sample_rate;
  const std::string key = cache_key(dir.string(), rate);
  const auto cached = read_cache(options.cache_path, key);
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    FileFacts& f = candidates[i].facts;
    const auto it = cached.find(f.rel);
    if (it != cached.end() && it->second.mtime_ns == f.mtime_ns && it->second.size == f.size) {
      f = it->second;
      ++st.from_cache;
    } else {
      todo.push_back(i);
    }
  }
  if (!todo.empty()) {
    const int workers = std::max(1, std::min<int>(options.threads, static_cast<int>(todo.size())));
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> pool;
    for (int w = 0; w < workers; ++w) {
      pool.emplace_back([&] {
        for (std::size_t k = next++; k < todo.size(); k = next++) {
          Candidate& c = candidates[todo[k]];
          measure(c.utt.path, rate, &c.facts);
        }
      });
    }
    for (auto& t : pool) t.join();
    st.scanned = static_cast<std::int64_t>(todo.size());
  }
  if (!options.cache_path.empty() && (st.scanned > 0 || cached.size() != candidates.size())) {
    std::vector<FileFacts> all;
    for (const auto& c : candidates) all.push_back(c.facts);
    st.cache_written = write_cache(options.cache_path, key, dir.string(), all);
    if (!st.cache_written) warn("could not write the index cache '" + options.cache_path + "'");
  }

  // ---- rules, split, filter
  std::set<std::int64_t> test(options.test_speakers.begin(), options.test_speakers.end());
  std::set<std::int64_t> val(options.val_speakers.begin(), options.val_speakers.end());
  const auto in_split = [&](std::int64_t spk) {
    switch (options.split) {
      case Split::kTest:
        return test.count(spk) != 0;
      case Split::kVal:
        return val.count(spk) != 0;
      case Split::kTrain:
        return test.count(spk) == 0 && !(options.exclude_val && val.count(spk) != 0);
      case Split::kAll:
        break;
    }
    return true;
  };
  for (const auto& m : chapter_problems) {
    warn("skipped: " + m);
    st.skipped.push_back(m);
  }
  std::int64_t usable = 0;
  for (auto& c : candidates) {
    if (c.chapter_without_transcript) continue;
    if (!c.has_transcript) {
      const std::string msg = "audio file '" + c.utt.path + "' has no line in its transcript";
      if (!options.skip_bad_files) {
        throw Error(ErrorKind::kData, msg)
            .note("expected a line '" + c.utt.id + " TEXT' in the chapter's .trans.txt");
      }
      warn("skipped: " + msg);
      st.skipped.push_back(msg);
      continue;
    }
    if (!in_split(c.utt.speaker)) continue;
    if (!c.facts.ok) {
      if (!options.skip_bad_files) {
        throw Error(ErrorKind::kData, c.facts.message)
            .note("on_bad_file: skip skips unreadable files (and counts them)");
      }
      warn("skipped: " + c.facts.message);
      st.skipped.push_back(c.facts.message);
      continue;
    }
    if (c.facts.channels > 1) {
      if (!options.audio.allow_multichannel) {
        throw Error(ErrorKind::kData, "audio file '" + c.utt.path + "' has " +
                                          std::to_string(c.facts.channels) + " channels")
            .note("expected mono; set option multichannel: first to use the first channel");
      }
      ++st.multichannel;
    }
    if (c.facts.file_rate != rate) {
      if (!options.audio.allow_resample) {
        throw Error(ErrorKind::kData, "audio file '" + c.utt.path + "' is at " +
                                          std::to_string(c.facts.file_rate) + " Hz")
            .note("expected " + std::to_string(rate) +
                  " Hz; set option resample: soxr to resample it");
      }
      ++st.resampled;
    }
    ++usable;
    ++st.in_split;
    if (!keep_utterance(c.facts.voiced_seconds, options.min_voiced_seconds)) {
      ++st.filtered_out;
      continue;
    }
    c.utt.seconds = c.facts.seconds;
    c.utt.voiced_seconds = c.facts.voiced_seconds;
    c.utt.file_rate = static_cast<int>(c.facts.file_rate);
    c.utt.file_channels = static_cast<int>(c.facts.channels);
    index.utterances.push_back(c.utt);
  }
  if (options.limit > 0 && static_cast<std::int64_t>(index.utterances.size()) > options.limit) {
    st.beyond_limit = static_cast<std::int64_t>(index.utterances.size()) - options.limit;
    index.utterances.resize(static_cast<std::size_t>(options.limit));
  }
  if (index.utterances.empty()) {
    std::ostringstream why;
    why << "split '" << to_string(options.split) << "' of '" << dir.string()
        << "' is empty after filtering: " << usable
        << " usable utterance(s) of the split's speakers";
    if (options.split == Split::kTest) why << " " << list_text(options.test_speakers);
    if (options.split == Split::kVal) why << " " << list_text(options.val_speakers);
    why << ", " << st.filtered_out << " removed by min_voiced_seconds "
        << options.min_voiced_seconds;
    throw Error(ErrorKind::kData, why.str())
        .note(std::to_string(st.files) + " audio file(s) in the subset, " +
              std::to_string(st.skipped.size()) + " skipped as bad")
        .note("check the speaker lists (test_speakers, val_speakers) and min_voiced_seconds");
  }
  return index;
}

}  // namespace w2p::librispeech
