#include "torch_common/training_files.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace w2p::torch_common {

namespace fs = std::filesystem;

TrainingFiles::TrainingFiles(std::string dir, std::string prefix)
    : dir_(std::move(dir)), prefix_(std::move(prefix)) {}

std::string TrainingFiles::checkpoint_path(std::int64_t finished_epochs) const {
  char name[32];
  std::snprintf(name, sizeof name, "_epoch%03lld.pt", static_cast<long long>(finished_epochs));
  return (fs::path(dir_) / (prefix_ + name)).string();
}

std::pair<std::int64_t, std::string> TrainingFiles::last_checkpoint() const {
  std::pair<std::int64_t, std::string> best{0, ""};
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return best;
  const std::regex pattern(
      std::regex_replace(prefix_, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
      "_epoch([0-9]+)\\.pt");
  for (const auto& entry : fs::directory_iterator(dir_)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, pattern)) {
      const std::int64_t e = std::stoll(m[1].str());
      if (e > best.first) best = {e, entry.path().string()};
    }
  }
  return best;
}

std::string TrainingFiles::log_path() const {
  return (fs::path(dir_) / (prefix_ + "_train_log.csv")).string();
}

std::string TrainingFiles::weights_path() const {
  return (fs::path(dir_) / (prefix_ + "_weights.pt")).string();
}

std::vector<std::string> TrainingFiles::open_log(const std::string& header,
                                                 std::int64_t keep_epochs) const {
  std::vector<std::string> keep;
  if (keep_epochs > 0) {
    std::ifstream in(log_path());
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      const auto comma = line.find(',');
      if (comma == 0 || comma == std::string::npos) continue;
      std::int64_t epoch = 0;
      try {
        epoch = std::stoll(line.substr(0, comma));
      } catch (const std::exception&) {
        continue;  // a torn last line of an interrupted run
      }
      if (epoch <= keep_epochs) keep.push_back(line);
    }
  }
  std::ofstream out(log_path(), std::ios::trunc);
  out << header << "\n";
  for (const auto& line : keep) out << line << "\n";
  if (!out) throw std::runtime_error("cannot write the training log " + log_path());
  return keep;
}

void TrainingFiles::append_log(const std::string& row) const {
  std::ofstream log(log_path(), std::ios::app);
  log << row << "\n";
  if (!log) throw std::runtime_error("cannot append to the training log " + log_path());
}

std::string format_number(double value) {
  if (std::isnan(value)) return "";
  std::ostringstream s;
  s.precision(8);
  s << value;
  return s.str();
}

}  // namespace w2p::torch_common
