// Running programs from tests (w2p-run, w2p-inspect, python3 with h5py, cmake) and scratch
// directories for their files.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace w2p::test {

struct CommandResult {
  int exit_code = -1;  ///< 128 + signal when the command was killed
  std::string output;  ///< what the command wrote to stdout (redirect stderr in the command)
};

/// Runs `command` through /bin/sh and captures its stdout.
CommandResult run_command(const std::string& command);

/// 'text' quoted for /bin/sh.
std::string shell_quote(const std::string& text);

/// Writes `yaml` to `yaml_file`, then runs `w2p_run --quiet --plugin-path plugin_dir --run-dir
/// run_dir <extra> yaml_file` with stderr captured too (node logs, errors).
CommandResult run_pipeline(const std::string& w2p_run, const std::string& plugin_dir,
                           const std::filesystem::path& yaml_file, const std::string& yaml,
                           const std::filesystem::path& run_dir, const std::string& extra = "");

/// The bytes of a file ("" if it cannot be read).
std::string read_text(const std::filesystem::path& path);

/// The rows of a CSV file split at commas (no quoting, as the trainers' logs).
std::vector<std::vector<std::string>> read_csv(const std::filesystem::path& path);

/// A fresh directory under the temp dir, named after the running test and this process;
/// removed with everything in it when destroyed.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  /// Writes `text` to `relative` (creating folders) and returns the absolute path.
  std::filesystem::path write(const std::string& relative, const std::string& text) const;

 private:
  std::filesystem::path path_;
};

}  // namespace w2p::test
