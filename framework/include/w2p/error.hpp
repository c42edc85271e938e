// w2p::Error: the one exception type the framework and plugins throw.
//
// Every error has a kind (what went wrong), a user-facing message, an optional detail (the
// debug level, GStreamer-style), a location in the pipeline YAML when known, the node and the
// port involved, and `note:` lines (expected values, did-you-mean suggestions, file paths).
// The runtime prints errors in compiler format so editors can jump to them:
//   pipelines/x.yaml:27:5: error: node 'sim' (roomsim.shoebox): option 'repeats': ...
//   note: expected an integer in [1, 1000]
// Thread safety: an Error is a value; copy it freely across threads. Errors raised inside a
// plugin are copied into framework-owned values at the node boundary, so they outlive the
// library that threw them.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace w2p {

enum class ErrorKind : std::uint8_t {
  kConfig,     ///< the pipeline YAML or the command line is wrong
  kType,       ///< dtype/shape/field mismatch between ports or against a contract
  kPlugin,     ///< a plugin library could not be loaded or registered
  kIo,         ///< a file could not be read or written
  kData,       ///< input data is malformed (corrupt audio, wrong layout, ...)
  kCancelled,  ///< the run was stopped (Ctrl-C or an error elsewhere)
  kInternal,   ///< a bug: an invariant did not hold
};

/// "config", "type", ...: used in messages.
const char* to_string(ErrorKind kind);

/// A position in a YAML file; line and column are 1-based (0 = unknown).
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  bool known() const { return !file.empty(); }
  /// "file:line:col" (or "file" when the line is unknown).
  std::string str() const;
};

class Error : public std::exception {
 public:
  Error(ErrorKind kind, std::string message, std::string detail = {});

  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  const std::string& detail() const { return detail_; }
  const SourceLocation& location() const { return location_; }
  const std::string& node() const { return node_; }
  const std::string& port() const { return port_; }
  const std::vector<std::string>& notes() const { return notes_; }

  Error& at(SourceLocation location);
  Error& in_node(std::string node);
  Error& on_port(std::string port);
  Error& note(std::string note);

  /// The whole error in compiler format: "file:line:col: error: message" + "note: ..." lines.
  std::string format() const;
  const char* what() const noexcept override;

 private:
  ErrorKind kind_;
  std::string message_;
  std::string detail_;
  SourceLocation location_;
  std::string node_;
  std::string port_;
  std::vector<std::string> notes_;
  std::string what_;  // cache for what()
};

/// Several errors at once (whole-graph validation reports all of them).
class ErrorList : public std::exception {
 public:
  explicit ErrorList(std::vector<Error> errors);
  const std::vector<Error>& errors() const { return errors_; }
  const char* what() const noexcept override;

 private:
  std::vector<Error> errors_;
  std::string what_;
};

/// Throws ErrorKind::kInternal naming the source line: for programmer errors only, never for
/// user input.
[[noreturn]] void assertion_failed(const char* condition, const char* message, const char* file,
                                   int line);

}  // namespace w2p

#define W2P_ASSERT(cond, msg)                                             \
  do {                                                                    \
    if (!(cond)) ::w2p::assertion_failed(#cond, msg, __FILE__, __LINE__); \
  } while (false)
