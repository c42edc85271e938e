// The header comments of a malformed-pipeline fixture and how errors are matched against them.
//
//   # expect: 14:7: error: node 'sim' (cfgtest.sink7): option 'repeats':
//   # expect-note: did you mean 'repeats'?
//   # expect-count: 3
// An `expect` is "LINE:COL: error: TEXT" (optionally "FILE.yaml:LINE:COL: error: TEXT" for an
// error in another file): some error must sit exactly at that place and its formatted first
// line must contain TEXT. An `expect-note` must be one of the notes of some error.
#pragma once

#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "w2p/error.hpp"

namespace cfgtest {

struct Expectations {
  std::vector<std::string> errors;
  std::vector<std::string> notes;
  int count = -1;  ///< -1 = not given
};

inline std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

/// Reads the leading comment block of a fixture.
inline Expectations read_expectations(const std::string& path) {
  Expectations x;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("#", 0) != 0) break;
    const std::string body = line.substr(1);
    auto value_of = [&](const std::string& key) -> const char* {
      const std::string k = " " + key + ":";
      return body.rfind(k, 0) == 0 ? body.c_str() + k.size() : nullptr;
    };
    if (const char* v = value_of("expect")) {
      x.errors.push_back(trim(v));
    } else if (const char* n = value_of("expect-note")) {
      x.notes.push_back(trim(n));
    } else if (const char* c = value_of("expect-count")) {
      x.count = std::stoi(trim(c));
    }
  }
  return x;
}

/// First line of the formatted error without the directory part of its file:
/// "name.yaml:14:7: error: ...".
inline std::string first_line(const w2p::Error& e) {
  std::string text = e.format();
  text = text.substr(0, text.find('\n'));
  const std::string& file = e.location().file;
  if (!file.empty() && text.rfind(file, 0) == 0) {
    const auto slash = file.find_last_of('/');
    text = file.substr(slash == std::string::npos ? 0 : slash + 1) + text.substr(file.size());
  }
  return text;
}

/// Whether `e` is the error `expect` describes.
inline bool matches(const w2p::Error& e, const std::string& expect) {
  const std::string line = first_line(e);
  const auto mark = expect.find("error: ");
  if (mark == std::string::npos) return line.find(expect) != std::string::npos;
  const std::string where = expect.substr(0, mark);  // "14:7: " or "x.yaml:14:7: "
  const std::string text = expect.substr(mark);      // "error: ..."
  const auto head = line.find("error: ");
  if (head == std::string::npos) return false;
  const std::string line_where = line.substr(0, head);
  const bool place =
      where.empty() ? line_where.empty()
      : std::isdigit(static_cast<unsigned char>(where[0]))
          ? line_where.size() >= where.size() &&
                line_where.compare(line_where.size() - where.size(), where.size(), where) == 0 &&
                (line_where.size() == where.size() ||
                 line_where[line_where.size() - where.size() - 1] == ':')
          : line_where == where;
  return place && line.find(text, head) != std::string::npos;
}

inline bool has_note(const std::vector<w2p::Error>& errors, const std::string& note) {
  for (const auto& e : errors) {
    for (const auto& n : e.notes()) {
      if (n.find(note) != std::string::npos) return true;
    }
  }
  return false;
}

inline std::string describe(const std::vector<w2p::Error>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.format() + "\n";
  return out;
}

}  // namespace cfgtest
